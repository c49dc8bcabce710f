//! Staged proposals (`/v2/{gun}/_trust/proposals…`): create, list, read, sign, withdraw.
//!
//! Every route needs `push` on the GUN, reads included: a pending proposal may name tags not
//! yet released. Creating and signing are writes like a publish (they may publish): they
//! take a publish slot, read their body within the body timeout, and run within the request
//! timeout ([`super::publish::receive`], [`super::publish::write`]). The caller's identity
//! (the token's name, the JWT's subject) goes into the proposal's audit trail.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use vouch_tuf::api::proposal::{encode_list, Proposal, Signatures};
use vouch_tuf::reference::Gun;

use super::auth::authorize;
use super::publish::{read_uploads, receive, refused, write, Received, UploadError};
use super::{blocking, AppState};
use crate::auth::{Action, Target};
use crate::error::AppError;

/// `POST …/proposals`: a new proposal from a publish's multipart body; 201.
pub(super) async fn create(
    st: &AppState,
    gun: Gun,
    parts: Parts,
    body: &mut Option<Body>,
) -> Result<Response, AppError> {
    let who = authorize(st, &parts.headers, Target::Gun(&gun), Action::Push)?.identity();
    let (slot, uploads) = match receive(st, &gun, parts, body, read_uploads).await? {
        Received::Ready(slot, uploads) => (slot, uploads),
        Received::Answered(response) => return Ok(response),
    };
    let svc = st.service.clone();
    let g = gun.clone();
    match write(st, &gun, slot, move || svc.propose(&g, uploads, &who)).await? {
        Ok(Ok(doc)) => Ok(answer(st, StatusCode::CREATED, &doc)),
        Ok(Err(e)) => Err(refused(st, e)),
        Err(response) => Ok(response),
    }
}

/// `GET …/proposals[?all=true]`.
pub(super) async fn list(
    st: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    gun: Gun,
) -> Result<Response, AppError> {
    authorize(st, headers, Target::Gun(&gun), Action::Push)?;
    let all = all_param(uri.query())?;
    let svc = st.service.clone();
    let docs = blocking(move || svc.proposals(&gun, all)).await?;
    Ok(json_response(StatusCode::OK, encode_list(&docs)))
}

/// `GET …/proposals/{id}`.
pub(super) async fn get(
    st: &AppState,
    headers: &HeaderMap,
    gun: Gun,
    id: u64,
) -> Result<Response, AppError> {
    authorize(st, headers, Target::Gun(&gun), Action::Push)?;
    let svc = st.service.clone();
    let doc = blocking(move || svc.proposal(&gun, id)).await?;
    Ok(json_response(StatusCode::OK, doc.encode()))
}

/// `POST …/proposals/{id}/signatures`: `{"signatures":{ROLE:[{keyid,sig}]}}`.
pub(super) async fn sign(
    st: &AppState,
    gun: Gun,
    id: u64,
    parts: Parts,
    body: &mut Option<Body>,
) -> Result<Response, AppError> {
    let who = authorize(st, &parts.headers, Target::Gun(&gun), Action::Push)?.identity();
    let limit = st.max_body_bytes;
    let read = move |req: Request| read_signatures(req, limit);
    let (slot, signatures) = match receive(st, &gun, parts, body, read).await? {
        Received::Ready(slot, s) => (slot, s),
        Received::Answered(response) => return Ok(response),
    };
    let svc = st.service.clone();
    let g = gun.clone();
    let work = move || svc.sign_proposal(&g, id, &signatures, &who);
    match write(st, &gun, slot, work).await? {
        Ok(Ok(doc)) => Ok(answer(st, StatusCode::OK, &doc)),
        Ok(Err(e)) => Err(refused(st, e)),
        Err(response) => Ok(response),
    }
}

/// `DELETE …/proposals/{id}`: withdraw.
pub(super) async fn withdraw(
    st: &AppState,
    headers: &HeaderMap,
    gun: Gun,
    id: u64,
) -> Result<Response, AppError> {
    let who = authorize(st, headers, Target::Gun(&gun), Action::Push)?.identity();
    let svc = st.service.clone();
    let doc = blocking(move || svc.withdraw_proposal(&gun, id, &who)).await?;
    Ok(json_response(StatusCode::OK, doc.encode()))
}

/// The document, counting a publish it made.
fn answer(st: &AppState, status: StatusCode, doc: &Proposal) -> Response {
    if doc.status == vouch_tuf::api::proposal::ProposalStatus::Published {
        st.metrics.published();
    }
    json_response(status, doc.encode())
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// `all=true` or `all=false`, and nothing else.
fn all_param(query: Option<&str>) -> Result<bool, AppError> {
    let bad = |m: String| AppError::bad_request(vouch_tuf::api::code::INVALID_PARAMETER, m);
    let mut all = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("all", "true")) => all = true,
            Some(("all", "false")) => all = false,
            Some(("all", v)) => return Err(bad(format!("all={v:?}: expected true or false"))),
            _ => {
                return Err(bad(format!(
                    "unknown parameter {:?}: only all=true|false is accepted",
                    pair.split('=').next().unwrap_or(pair)
                )))
            }
        }
    }
    Ok(all)
}

/// Reads a signature submission of at most `limit` bytes.
async fn read_signatures(req: Request, limit: usize) -> Result<Signatures, UploadError> {
    let bytes = to_bytes(req.into_body(), limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            UploadError::TooLarge
        } else {
            UploadError::Malformed(format!("the request body could not be read: {e}"))
        }
    })?;
    Signatures::decode(&bytes).map_err(|e| {
        UploadError::Malformed(format!(
            "expected {{\"signatures\":{{ROLE:[{{\"keyid\":…,\"sig\":…}}]}}}}: {e}"
        ))
    })
}
