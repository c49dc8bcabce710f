//! The webhook subscriptions over HTTP: `GET /v2/_trust/webhooks` lists them with their
//! delivery state (a wildcard `pull` scope, like the global changefeed), `GET
//! /v2/_trust/webhooks/key` is the public key deliveries are signed with (no token: it is
//! public), and `POST /v2/_trust/webhooks/{name}/resume` lets a subscription that gave up
//! deliver again, from the event that failed (a wildcard `push` scope).

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::auth::authorize;
use super::{blocking, AppState};
use crate::auth::{Action, Target};
use crate::error::AppError;

/// The subscriptions, their stored delivery state and the public key.
pub(super) async fn list(st: &AppState, headers: &HeaderMap) -> Result<Response, AppError> {
    authorize(st, headers, Target::All, Action::Pull)?;
    let store = st.store();
    let stored = blocking(move || store.webhook_cursors()).await?;
    let head = st.events().head();
    Ok(Json(st.webhooks().listing(&stored, head)).into_response())
}

/// The public key, as `whpk_` and base64 (one line of text).
pub(super) fn key(st: &AppState) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        format!("{}\n", st.webhooks().public_key()),
    )
        .into_response()
}

/// Resumes subscription `name`.
pub(super) async fn resume(
    st: &AppState,
    headers: &HeaderMap,
    name: String,
) -> Result<Response, AppError> {
    let who = authorize(st, headers, Target::All, Action::Push)?;
    if !st.webhooks().has(&name) {
        return Err(AppError::not_found(format!(
            "no webhook subscription named {name:?} is configured"
        )));
    }
    let store = st.store();
    let n = name.clone();
    let resumed = blocking(move || store.resume_webhook(&n)).await?;
    if !resumed {
        return Err(AppError::not_found(format!(
            "webhook subscription {name:?} has not delivered anything yet"
        )));
    }
    tracing::info!(subscription = %name, by = %who.identity(), "webhook subscription resumed");
    Ok(Json(json!({"name": name, "resumed": true})).into_response())
}
