//! What every request passes through: [`observe`] gives it a request id (the client's
//! `x-request-id` when it sent a sane one, else a generated one, echoed in the response), runs
//! it in a `tracing` span carrying that id, enforces the in-flight cap and the per-request
//! timeout (503 with `Retry-After`, see [`overloaded`]), and counts it in [`Metrics`] under
//! its route class ([`route_class`], from [`routes::shape`]).
//!
//! [`Metrics`]: crate::metrics::Metrics

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::AppState;
use crate::error::AppError;
use crate::routes::{self, Shape};

/// The route class a request is counted under: from the path's shape as [`routes::shape`]
/// splits it (cheap: no GUN or file name validation, so a request with an invalid name is
/// counted under the route it tried).
pub(super) fn route_class(method: &Method, path: &str) -> &'static str {
    match path {
        "/healthz" | "/readyz" => return "health",
        "/metrics" => return "metrics",
        _ => {}
    }
    match routes::shape(path) {
        Ok(Shape::Base) => "base",
        Ok(Shape::Changefeed(_)) => "changefeed",
        Ok(Shape::Events(_)) => "events",
        Ok(Shape::Webhooks(_)) => "webhooks",
        Ok(Shape::Proposals(..)) => "proposals",
        Ok(Shape::Repository(_)) => match *method {
            Method::POST => "publish",
            Method::DELETE => "delete",
            _ => "other",
        },
        Ok(file @ Shape::File(..)) if file.addresses_key() => "key",
        Ok(Shape::File(..)) => "metadata",
        Err(_) => "other",
    }
}
pub(super) const X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// A request id: the client's when it is short and plain, else a new one.
pub(super) fn request_id(headers: &HeaderMap) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        if !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            return id.to_owned();
        }
    }
    let prefix = PREFIX.get_or_init(|| {
        use ring::rand::SecureRandom;
        let mut b = [0u8; 6];
        let _ = ring::rand::SystemRandom::new().fill(&mut b);
        vouch_tuf::hex::encode(b)
    });
    format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// 503 with `Retry-After`.
pub(super) fn overloaded(retry_after: u64, message: &str) -> Response {
    let mut r = AppError::Unavailable {
        message: message.to_owned(),
    }
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

/// Request ids, logs, the in-flight cap, the request timeout, and request metrics.
pub(super) async fn observe(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = request_id(req.headers());
    let method = req.method().clone();
    let class = route_class(&method, req.uri().path());
    let span = request_span(&id, &method, req.uri().path());
    let cap = &st.capacity;
    let mut resp = match cap.in_flight.clone().try_acquire_owned() {
        Err(_) => {
            st.metrics.overloaded("in_flight");
            span.in_scope(|| tracing::warn!("over capacity: too many requests in flight"));
            overloaded(cap.retry_after, "the server is over capacity: retry later")
        }
        // A publish times itself: its body has its own limit, and the request timeout
        // starts once the body is in.
        Ok(_permit) if class == "publish" => next.run(req).instrument(span.clone()).await,
        Ok(_permit) => {
            match tokio::time::timeout(cap.request_timeout, next.run(req).instrument(span.clone()))
                .await
            {
                Ok(r) => r,
                Err(_) => span.in_scope(|| timed_out(&st)),
            }
        }
    };
    let (status, ms) = finish(&st, &mut resp, id, class, &method, start);
    span.in_scope(|| log_outcome(&method, status, ms));
    resp
}

/// 503 for a request that ran past `timeouts.request_seconds`, counted and logged.
pub(super) fn timed_out(st: &AppState) -> Response {
    st.metrics.overloaded("timeout");
    tracing::warn!("request timed out");
    overloaded(
        st.capacity.retry_after,
        "the request took too long: retry later",
    )
}

/// The span every request's log lines carry.
pub(super) fn request_span(id: &str, method: &Method, path: &str) -> tracing::Span {
    tracing::info_span!("request", id = %id, method = %method, path = %path)
}

/// Sets the request id on the response and counts the request; returns its status and
/// duration in milliseconds.
pub(super) fn finish(
    st: &AppState,
    resp: &mut Response,
    id: String,
    class: &'static str,
    method: &Method,
    start: Instant,
) -> (u16, f64) {
    if let Ok(v) = HeaderValue::try_from(id) {
        resp.headers_mut().insert(X_REQUEST_ID, v);
    }
    let status = resp.status().as_u16();
    let seconds = start.elapsed().as_secs_f64();
    let method_label = match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        _ => "other",
    };
    st.metrics.request(class, method_label, status, seconds);
    (status, seconds * 1e3)
}

/// The log line of a finished request: failures as warnings, writes and refusals as info,
/// successful reads (and 404s) at debug level only.
pub(super) fn log_outcome(method: &Method, status: u16, ms: f64) {
    if status >= 500 {
        tracing::warn!(status, ms, "request failed");
    } else if method != Method::GET && method != Method::HEAD || (status >= 400 && status != 404) {
        tracing::info!(status, ms, "request");
    } else {
        tracing::debug!(status, ms, "request");
    }
}
