//! The online keys' endpoints: `GET …/_trust/tuf/{timestamp,snapshot}.key` answers the
//! server-held key of that role (creating it on first use, which needs push) and `POST`
//! rotates it.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use vouch_tuf::reference::Gun;

use super::auth::authorize;
use super::{blocking, AppState};
use crate::auth::{Action, Target};
use crate::error::AppError;

/// The newest online key of `role`, created when there is none yet.
pub(super) async fn get(
    st: &AppState,
    headers: &HeaderMap,
    gun: Gun,
    role: String,
) -> Result<Response, AppError> {
    authorize(st, headers, Target::Gun(&gun), Action::Pull)?;
    let svc = st.service.clone();
    let (g, r) = (gun.clone(), role.clone());
    if let Some(k) = blocking(move || svc.key(&g, &r, false)).await? {
        return Ok(key_response(k));
    }
    // Creating a key is a write: it needs push, even when pulls are anonymous.
    authorize(st, headers, Target::Gun(&gun), Action::Push)?;
    let svc = st.service.clone();
    let k = blocking(move || svc.key(&gun, &role, true)).await?;
    k.map(key_response)
        .ok_or_else(|| AppError::internal("online key missing after creation"))
}

/// A new online key of `role` (the client must then publish a root listing it).
pub(super) async fn rotate(
    st: &AppState,
    headers: &HeaderMap,
    gun: Gun,
    role: String,
) -> Result<Response, AppError> {
    authorize(st, headers, Target::Gun(&gun), Action::Push)?;
    let svc = st.service.clone();
    let k = blocking(move || svc.rotate_key(&gun, &role)).await?;
    Ok(key_response(k))
}

/// A public key object as JSON.
pub(super) fn key_response(public_json: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        public_json,
    )
        .into_response()
}
