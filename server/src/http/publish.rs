//! Writes to a repository: the publish (`POST /v2/{gun}/_trust/tuf/`) and the delete.
//!
//! A publish takes a slot of the overall and the per-repository publish caps, waiting a
//! bounded time for one, then 503 with `Retry-After` ([`publish_slot`]); its body is read
//! within `timeouts.body_read_seconds` (else 408) as one multipart part per role
//! ([`read_uploads`]), and the request timeout counts from when it is in. A refused publish is
//! counted under its reason ([`rejection_reason`]): the failed check, `version`, `size` ….

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vouch_tuf::reference::Gun;

use super::auth::authorize;
use super::middleware::{overloaded, timed_out};
use super::{blocking, run_blocking, AppState, Capacity};
use crate::auth::{Action, Target};
use crate::error::AppError;
use crate::service::ServiceError;
use crate::validate::{Rejection, Upload};

/// A publish: authorise, bound the body, take a publish slot, read the uploads, run the
/// service's publish and count the outcome.
pub(super) async fn post(
    st: &AppState,
    gun: Gun,
    parts: Parts,
    body: &mut Option<Body>,
) -> Result<Response, AppError> {
    authorize(st, &parts.headers, Target::Gun(&gun), Action::Push)?;
    let (slot, uploads) = match receive(st, &gun, parts, body, read_uploads).await? {
        Received::Ready(slot, uploads) => (slot, uploads),
        Received::Answered(response) => return Ok(response),
    };
    let svc = st.service.clone();
    let g = gun.clone();
    let result = match write(st, &gun, slot, move || svc.publish(&g, uploads)).await? {
        Ok(result) => result,
        Err(response) => return Ok(response),
    };
    match result {
        Ok(()) => {
            st.metrics.published();
            Ok(Json(json!({})).into_response())
        }
        Err(e) => Err(refused(st, e)),
    }
}

/// A refused write, counted under its reason when it was the client's fault.
pub(super) fn refused(st: &AppState, e: ServiceError) -> AppError {
    if let Some(reason) = rejection_reason(&e) {
        st.metrics.rejected(reason);
    }
    e.into()
}

/// A write's body, read, with the publish slot its work holds; or the answer already given
/// (503 without a slot, 408 for a body too slow).
pub(super) enum Received<T> {
    /// Go ahead.
    Ready(PublishSlot, T),
    /// Answered already.
    Answered(Response),
}

/// Bounds the body by its declared length, takes a publish slot (waiting a bounded time),
/// and reads the body with `read` within `timeouts.body_read_seconds`.
pub(super) async fn receive<T, F>(
    st: &AppState,
    gun: &Gun,
    parts: Parts,
    body: &mut Option<Body>,
    read: impl FnOnce(Request) -> F,
) -> Result<Received<T>, AppError>
where
    F: std::future::Future<Output = Result<T, UploadError>>,
{
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > st.max_body_bytes as u64) {
        st.metrics.rejected("size");
        return Err(AppError::TooLarge {
            message: format!(
                "request body of {n} bytes exceeds the limit of {} bytes",
                st.max_body_bytes
            ),
        });
    }
    let slot = match publish_slot(st, gun).await {
        Ok(s) => s,
        Err(resp) => return Ok(Received::Answered(resp)),
    };
    let body = body.take().unwrap_or_default();
    match tokio::time::timeout(
        st.capacity.body_timeout,
        read(Request::from_parts(parts, body)),
    )
    .await
    {
        Ok(Ok(t)) => Ok(Received::Ready(slot, t)),
        Ok(Err(e)) => {
            st.metrics.rejected(e.reason());
            Err(e.into())
        }
        Err(_) => {
            st.metrics.overloaded("body_timeout");
            Ok(Received::Answered(request_timeout()))
        }
    }
}

/// Runs a write's `work` on the blocking pool, holding `slot` until the work ends (even if
/// the answer leaves first), within `timeouts.request_seconds` (else the 503 to answer);
/// then drops what the read cache holds of `gun`.
pub(super) async fn write<R: Send + 'static>(
    st: &AppState,
    gun: &Gun,
    slot: PublishSlot,
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<Result<R, Response>, AppError> {
    let work = run_blocking(move || {
        let _slot = slot;
        work()
    });
    // The request timeout counts from here: the body had its own limit.
    let Ok(result) = tokio::time::timeout(st.capacity.request_timeout, work).await else {
        return Ok(Err(timed_out(st)));
    };
    st.cache.invalidate(gun.as_str());
    result.map(Ok)
}

/// Deletes a repository's trust data (404 when it has none).
pub(super) async fn delete(
    st: &AppState,
    headers: &HeaderMap,
    gun: Gun,
) -> Result<Response, AppError> {
    authorize(st, headers, Target::Gun(&gun), Action::Delete)?;
    let svc = st.service.clone();
    let g = gun.clone();
    let deleted = blocking(move || svc.delete(&g)).await;
    st.cache.invalidate(gun.as_str());
    if deleted? {
        st.metrics.forget(gun.as_str());
        Ok(Json(json!({})).into_response())
    } else {
        Err(AppError::not_found(format!("{gun} has no trust data")))
    }
}

/// The rejection reason a failed publish is counted under, if it was the client's fault:
/// the check that failed, or what kind of refusal it was.
fn rejection_reason(e: &ServiceError) -> Option<&'static str> {
    match e {
        ServiceError::Rejected(Rejection::Invalid { check, .. }) => Some(check.as_str()),
        ServiceError::Rejected(Rejection::Conflict { .. }) | ServiceError::Contended => {
            Some("version")
        }
        ServiceError::TooLarge { .. } => Some("size"),
        ServiceError::NameInvalid { .. } => Some("name_invalid"),
        ServiceError::ProposalRequest(_) => Some("malformed_request"),
        ServiceError::ProposalClosed { .. } => Some("proposal_closed"),
        ServiceError::ProposalLimit { .. } => Some("proposal_limit"),
        ServiceError::NotFound { .. }
        | ServiceError::ProposalNotFound { .. }
        | ServiceError::Store(_)
        | ServiceError::Key(_)
        | ServiceError::Internal(_) => None,
    }
}

/// Why a publish's body could not be read as its uploads.
#[derive(Debug)]
pub(crate) enum UploadError {
    /// Not the multipart form expected (400 `MALFORMED_REQUEST`).
    Malformed(String),
    /// Larger than `limits.max_body_bytes` (413).
    TooLarge,
}

impl UploadError {
    /// The rejection reason it is counted under.
    pub(super) fn reason(&self) -> &'static str {
        match self {
            UploadError::Malformed(_) => "malformed_request",
            UploadError::TooLarge => "size",
        }
    }
}

impl From<UploadError> for AppError {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::Malformed(message) => {
                AppError::bad_request(vouch_tuf::api::code::MALFORMED_REQUEST, message)
            }
            UploadError::TooLarge => AppError::TooLarge {
                message: "request body exceeds the configured limit".into(),
            },
        }
    }
}

/// A held slot of the publish caps; frees the repository's entry when the last user leaves.
pub(super) struct PublishSlot {
    capacity: Arc<Capacity>,
    gun: String,
    permits: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
}

impl Drop for PublishSlot {
    fn drop(&mut self) {
        self.permits = None;
        let mut map = self
            .capacity
            .per_gun
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if map
            .get(&self.gun)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            map.remove(&self.gun);
        }
    }
}

async fn acquire(sem: Arc<Semaphore>, wait: Duration) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = sem.clone().try_acquire_owned() {
        return Some(p);
    }
    if wait.is_zero() {
        return None;
    }
    tokio::time::timeout(wait, sem.acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
}

/// Takes a slot of the per-repository cap, then of the overall cap, waiting at most the
/// configured time for each; `Err` is the 503 to answer.
pub(super) async fn publish_slot(st: &AppState, gun: &Gun) -> Result<PublishSlot, Response> {
    let cap = &st.capacity;
    let gun_sem = {
        let mut map = cap.per_gun.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(gun.as_str().to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(cap.per_gun_max)))
            .clone()
    };
    let mut slot = PublishSlot {
        capacity: cap.clone(),
        gun: gun.as_str().to_owned(),
        permits: None,
    };
    let Some(g) = acquire(gun_sem, cap.publish_wait).await else {
        drop(slot);
        st.metrics.overloaded("publish_gun");
        return Err(overloaded(
            cap.retry_after,
            &format!("too many publishes to {gun} at once: retry later"),
        ));
    };
    let Some(all) = acquire(cap.publishes.clone(), cap.publish_wait).await else {
        drop(g);
        drop(slot);
        st.metrics.overloaded("publish");
        return Err(overloaded(
            cap.retry_after,
            "too many publishes at once: retry later",
        ));
    };
    slot.permits = Some((g, all));
    Ok(slot)
}

/// Reads the multipart body: one part per role, field `files`, file name = role name.
///
/// Needs no state: the body limit travels in the request's extensions (the router's
/// `DefaultBodyLimit`), so the fuzz target runs exactly this on a bare request.
pub(crate) async fn read_uploads(req: Request) -> Result<Vec<Upload>, UploadError> {
    let mut mp = Multipart::from_request(req, &()).await.map_err(|e| {
        UploadError::Malformed(format!("expected multipart/form-data: {}", e.body_text()))
    })?;
    let mut uploads = Vec::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e)),
        };
        if field.name() != Some("files") {
            return Err(UploadError::Malformed(format!(
                "unexpected form field {:?}: every part must be named \"files\"",
                field.name().unwrap_or("")
            )));
        }
        let role = field
            .file_name()
            .map(str::to_owned)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                UploadError::Malformed("a part has no file name: it must be the role name".into())
            })?;
        let role = role.strip_suffix(".json").unwrap_or(&role).to_owned();
        let bytes = field.bytes().await.map_err(multipart_error)?;
        uploads.push(Upload {
            role,
            bytes: bytes.to_vec(),
        });
    }
    Ok(uploads)
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> UploadError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        UploadError::TooLarge
    } else {
        UploadError::Malformed(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// 408: the client sent its body too slowly.
fn request_timeout() -> Response {
    let mut r = crate::error::body(
        StatusCode::REQUEST_TIMEOUT,
        vouch_tuf::api::code::TIMEOUT,
        "the request body was not received in time",
        None,
    );
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}
