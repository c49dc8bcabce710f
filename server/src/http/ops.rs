//! The operational endpoints: `/healthz` (the process answers), `/readyz` (the store is
//! reachable) and `/metrics` (the Prometheus exposition, with `metrics.access = "token"` only
//! for a token that may read every repository).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::auth::authorize;
use super::{blocking, AppState};
use crate::auth::{Action, Target};
use crate::config::MetricsAccess;
use crate::error::AppError;

/// Liveness: the process answers.
pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the store is reachable (503 when not).
pub(super) async fn readyz(
    State(st): State<AppState>,
) -> Result<Json<serde_json::Value>, AppError> {
    let svc = st.service.clone();
    blocking(move || {
        svc.store().ping().map_err(|e| {
            tracing::warn!(error = %e, "storage not reachable");
            AppError::Unavailable {
                message: "storage is not reachable".into(),
            }
        })
    })
    .await?;
    Ok(Json(json!({"status": "ready"})))
}

/// The Prometheus exposition; with `metrics.access = "token"` only for a token that may read
/// every repository, since its series name them.
pub(super) async fn metrics(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if st.metrics_access == MetricsAccess::Token {
        if let Err(e) = authorize(&st, &headers, Target::All, Action::Pull) {
            return e.into_response();
        }
    }
    let now = vouch_tuf::clock::Clock::now(&vouch_tuf::clock::SystemClock).unix();
    // Up to the expiry series' 16 MiB of text, made for this scrape alone.
    let mut text = st.metrics.render(now);
    st.webhooks().render_metrics(st.events().head(), &mut text);
    st.mirror().render_metrics(st.events().head(), &mut text);
    let body = match st.own_body(Bytes::from(text)) {
        Ok(b) => b,
        Err(busy) => return busy.response(),
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}
