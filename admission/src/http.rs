//! The HTTP(S) layer: the routes, and [`serve`], which hands them to the shared accept loop
//! of [`vouch_serve`] (TLS with certificate reload is [`vouch_serve::tls`]).
//!
//! | route | does |
//! |---|---|
//! | `POST /validate` | validating webhook: allow or deny |
//! | `POST /mutate` | mutating webhook: allow or deny, and pin tags to signed digests |
//! | `GET /healthz` | the process is serving |
//! | `GET /readyz` | 200 when every root file the policy pins could be loaded; 503 naming those that could not |
//! | `GET /metrics` | Prometheus metrics |

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::decide::{Endpoint, Webhook};

/// Largest AdmissionReview accepted (the API server's own request limit is 3 MiB).
const MAX_BODY: usize = 4 << 20;

/// The router (no socket: tests drive it with `tower::ServiceExt::oneshot`).
pub fn app(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(webhook)
}

async fn validate(State(w): State<Arc<Webhook>>, body: Bytes) -> Response {
    handle(w, body, Endpoint::Validate).await
}

async fn mutate(State(w): State<Arc<Webhook>>, body: Bytes) -> Response {
    handle(w, body, Endpoint::Mutate).await
}

async fn handle(w: Arc<Webhook>, body: Bytes, endpoint: Endpoint) -> Response {
    let review = match crate::review::parse_review(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not an admission.k8s.io/v1 AdmissionReview: {e}\n"),
            )
                .into_response()
        }
    };
    let bytes = w.review_bytes(review, endpoint).await;
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

async fn readyz(State(w): State<Arc<Webhook>>) -> Response {
    match w.readiness() {
        Ok(()) => "ready\n".into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(w): State<Arc<Webhook>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        w.metrics().render(),
    )
        .into_response()
}

/// Time a client has to send a request head, and to finish its TLS handshake.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long requests in flight get to finish after the shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` (HTTPS when `tls` is given) until `shutdown` completes, then
/// lets requests in flight finish (for at most 30 seconds).
///
/// The accept loop is [`vouch_serve::serve`]: HTTP/1.1 with keep-alive, and a client that
/// does not send a request head or finish its TLS handshake within 10 seconds is
/// disconnected.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt as _;

    let app = app.map_request(|req: axum::http::Request<hyper::body::Incoming>| {
        req.map(axum::body::Body::new)
    });
    let options = vouch_serve::Options {
        tls,
        header_read_timeout: CLIENT_TIMEOUT,
        tls_handshake_timeout: CLIENT_TIMEOUT,
        shutdown_grace: SHUTDOWN_GRACE,
    };
    vouch_serve::serve(listener, TowerToHyperService::new(app), options, shutdown).await;
}
