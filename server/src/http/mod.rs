//! The HTTP API: a thin router over [`crate::service`], with authorisation, request parsing,
//! the caps requests are held to, and responses.
//!
//! [`app`] builds the router; tests drive it without a socket (`tower::ServiceExt::oneshot`)
//! and through a real listening server. Paths under `/v2/` are parsed from the raw URI by
//! [`crate::routes`], never by the router, so `%2F` in a role name stays part of the name;
//! `dispatch` matches the parsed route and method to one handler. The parts, one job each:
//!
//! - [`middleware`]: every request's id, span, in-flight cap, timeout and metrics (`observe`);
//! - [`cache`]: the read cache and the cached fast path ([`serve_cached`]) in front of the
//!   router, and metadata file responses;
//! - [`budget`]: the bytes of responses made for one request alone that may wait to be sent;
//! - [`publish`]: publish (its slots, its multipart body) and delete;
//! - [`proposals`]: staged proposals for threshold signing (create, list, read, sign,
//!   withdraw);
//! - [`events`]: the changefeed as a stream of Server-Sent Events;
//! - [`webhooks`]: the webhook subscriptions' state, the key deliveries are signed with,
//!   and resuming a subscription that gave up;
//! - [`keys`], [`changefeed`], [`ops`] (`/healthz`, `/readyz`, `/metrics`): the other routes;
//! - [`auth`]: the request's token checked for a repository and an action.
//!
//! A body no handler reads (a refused publish, a body sent with a read) does not hold up the
//! answer or the request's in-flight slot: [`vouch_serve::discard`] reads it away in the
//! background within a small byte and time budget, else the connection is closed.
//!
//! Handlers call the blocking [`Service`] on the blocking thread pool; its
//! [`ServiceError`](crate::service::ServiceError)s become responses through
//! [`crate::error`], the one mapping to HTTP.

mod auth;
mod budget;
mod cache;
pub(crate) mod changefeed;
pub(crate) mod events;
mod keys;
mod middleware;
mod ops;
mod proposals;
pub(crate) mod publish;
mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::Semaphore;
use vouch_tuf::reference::Gun;

use crate::auth::Authorizer;
use crate::config::{Config, MetricsAccess};
use crate::error::AppError;
use crate::events::Hub;
use crate::metrics::Metrics;
use crate::mirror::Mirror;
use crate::routes::{self, FileRef, Route, RouteError};
use crate::service::Service;
use crate::webhooks::Webhooks;
use budget::ResponseBudget;
use cache::{ReadCache, READ_CACHE_TTL};

pub use cache::serve_cached;

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    service: Arc<Service>,
    auth: Arc<Authorizer>,
    max_body_bytes: usize,
    metrics: Arc<Metrics>,
    capacity: Arc<Capacity>,
    cache: Arc<ReadCache>,
    metrics_access: MetricsAccess,
    events: Arc<Hub>,
    webhooks: Arc<Webhooks>,
    mirror: Arc<Mirror>,
}

/// The concurrency caps and time limits requests are held to.
struct Capacity {
    in_flight: Arc<Semaphore>,
    publishes: Arc<Semaphore>,
    per_gun: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_gun_max: usize,
    publish_wait: Duration,
    retry_after: u64,
    request_timeout: Duration,
    body_timeout: Duration,
    /// How long a body no handler read may take to arrive, as a whole, before its connection
    /// is closed (see [`vouch_serve::discard`]).
    discard_within: Duration,
    /// Response bytes made for one request alone that may wait to be written.
    responses: Arc<ResponseBudget>,
    /// Connections open at once (enforced by the accept loop, see [`crate::run::serve_with`]).
    max_connections: usize,
}

impl AppState {
    /// State over a service and an authorizer, with the size, capacity and time limits of
    /// `config`. The service reports what it stores to this state's metrics.
    /// Fails when the store's changefeed cannot be read (the event streams start after its
    /// newest entry).
    pub(crate) fn new(
        service: Service,
        auth: Authorizer,
        config: &Config,
        webhooks: Webhooks,
        mirror: Mirror,
    ) -> Result<Self, crate::store::StoreError> {
        let metrics = Arc::new(Metrics::default());
        let c = &config.capacity;
        let e = &config.events;
        let events = Arc::new(Hub::new(
            crate::events::newest(service.store().as_ref())?,
            e.buffer_events,
            (e.max_streams, e.max_streams_per_client),
            e.stream_queue,
            Duration::from_secs(e.keep_alive_seconds),
            service.write_signal(),
        ));
        Ok(AppState {
            service: Arc::new(service.with_observer(metrics.clone())),
            auth: Arc::new(auth),
            max_body_bytes: config.limits.max_body_bytes,
            capacity: Arc::new(Capacity {
                in_flight: Arc::new(Semaphore::new(c.max_in_flight)),
                publishes: Arc::new(Semaphore::new(c.max_publishes)),
                per_gun: Mutex::default(),
                per_gun_max: c.max_publishes_per_gun,
                publish_wait: Duration::from_millis(c.publish_wait_ms),
                retry_after: c.retry_after_seconds,
                request_timeout: Duration::from_secs(config.timeouts.request_seconds),
                body_timeout: Duration::from_secs(config.timeouts.body_read_seconds),
                discard_within: Duration::from_secs(config.timeouts.header_read_seconds),
                responses: ResponseBudget::new(c.max_pending_response_bytes, metrics.clone()),
                max_connections: c.max_connections,
            }),
            cache: Arc::new(ReadCache::new(config.cache.read_bytes, metrics.clone())),
            metrics_access: config.metrics.effective(&config.auth),
            metrics,
            events,
            webhooks: Arc::new(webhooks),
            mirror: Arc::new(mirror),
        })
    }

    /// The webhook subscriptions and their signing key.
    pub(crate) fn webhooks(&self) -> &Arc<Webhooks> {
        &self.webhooks
    }

    /// The mirror of repositories' trust into their registries.
    pub(crate) fn mirror(&self) -> &Arc<Mirror> {
        &self.mirror
    }

    /// The repository operations (the mirror's refresher re-signs through them).
    pub(crate) fn service(&self) -> Arc<Service> {
        self.service.clone()
    }

    /// The buffer of newest changefeed entries the event streams read.
    pub(crate) fn events(&self) -> &Arc<Hub> {
        &self.events
    }

    /// Releases expired entries of the read cache; the server calls it once per cache TTL,
    /// so memory held by files nobody reads any more is given back.
    pub(crate) fn sweep_caches(&self) {
        self.cache.sweep();
    }

    /// Drops what this process cached of `gun` (its files in the read cache, when its
    /// online roles are next due for re-signing): another process sharing the store changed
    /// it. See [`crate::run::serve_with`], which follows the changefeed.
    pub(crate) fn forget_repository(&self, gun: &Gun) {
        self.service.forget(gun);
        self.cache.invalidate(gun.as_str());
    }

    /// The store behind the service.
    pub(crate) fn store(&self) -> Arc<dyn crate::store::Store> {
        self.service.store().clone()
    }

    /// How often [`AppState::sweep_caches`] is worth calling.
    pub(crate) const SWEEP_INTERVAL: Duration = READ_CACHE_TTL;

    /// The metrics this state counts into.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Connections the server keeps open at once (`capacity.max_connections`).
    pub(crate) fn max_connections(&self) -> usize {
        self.capacity.max_connections
    }
}

/// The router.
pub fn app(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(dispatch)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .with_state(state)
}

/// Runs `f` on the blocking thread pool; a task that failed (panicked) is a 500.
async fn run_blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::internal(format!("blocking task failed: {e}")))
}

/// Runs a fallible `f` on the blocking thread pool, its error as the response it maps to.
async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, AppError>
where
    T: Send + 'static,
    E: Into<AppError> + Send + 'static,
{
    run_blocking(f).await?.map_err(Into::into)
}

/// Every request the router has no route for (all of `/v2/`): answers it, then reads away a
/// body no handler read.
async fn dispatch(State(st): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let expects_continue = parts.headers.contains_key(header::EXPECT);
    let discard_within = st.capacity.discard_within;
    let mut body = Some(body);
    let result = handle(st, parts, &mut body).await;
    // A body no handler read (a refusal before a publish is read, a bad path, a method the
    // path does not take) is read away in the background, within a small byte and time
    // budget, so that a client still sending it gets to read the answer instead of a reset
    // connection; the answer leaves now, and the request's in-flight slot is freed with it.
    // A client waiting for `100 Continue` sends nothing more: its body is dropped, and the
    // connection closed after the answer.
    if let Some(unread) = body {
        if !expects_continue {
            vouch_serve::discard(unread, discard_within);
        }
    }
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Answers one request; takes `body` out of its option only when it reads it.
async fn handle(
    st: AppState,
    parts: axum::http::request::Parts,
    body: &mut Option<Body>,
) -> Result<Response, AppError> {
    let route = routes::parse(parts.uri.path()).map_err(|e| route_error(e, parts.uri.path()))?;
    let method = parts.method.clone();
    let headers = &parts.headers;
    match (route, method) {
        (Route::Base, Method::GET) => Ok(Json(json!({})).into_response()),
        (Route::Changefeed(gun), Method::GET) => {
            changefeed::get(&st, headers, &parts.uri, gun).await
        }
        (Route::Events(gun), Method::GET) => events::get(&st, headers, &parts.uri, gun).await,
        (Route::Webhooks, Method::GET) => webhooks::list(&st, headers).await,
        (Route::WebhookKey, Method::GET) => Ok(webhooks::key(&st)),
        (Route::WebhookResume(name), Method::POST) => webhooks::resume(&st, headers, name).await,
        (Route::Repository(gun), Method::POST) => publish::post(&st, gun, parts, body).await,
        (Route::Repository(gun), Method::DELETE) => publish::delete(&st, headers, gun).await,
        (Route::File(gun, FileRef::Key(role)), Method::GET) => {
            keys::get(&st, headers, gun, role).await
        }
        (Route::File(gun, FileRef::Key(role)), Method::POST) => {
            keys::rotate(&st, headers, gun, role).await
        }
        (Route::File(gun, file), Method::GET | Method::HEAD) => {
            cache::get(&st, &parts, gun, file).await
        }
        (Route::Proposals(gun), Method::GET) => {
            proposals::list(&st, headers, &parts.uri, gun).await
        }
        (Route::Proposals(gun), Method::POST) => proposals::create(&st, gun, parts, body).await,
        (Route::Proposal(gun, id), Method::GET) => proposals::get(&st, headers, gun, id).await,
        (Route::Proposal(gun, id), Method::DELETE) => {
            proposals::withdraw(&st, headers, gun, id).await
        }
        (Route::ProposalSignatures(gun, id), Method::POST) => {
            proposals::sign(&st, gun, id, parts, body).await
        }
        _ => Err(AppError::MethodNotAllowed),
    }
}

/// The answer to a path that addresses nothing (404) or names something invalid (400).
fn route_error(e: RouteError, path: &str) -> AppError {
    match e {
        RouteError::NotFound => AppError::not_found(format!("no such path: {path}")),
        RouteError::InvalidGun(m) => AppError::bad_request(vouch_tuf::api::code::NAME_INVALID, m),
        RouteError::InvalidFile(m) => AppError::bad_request(
            vouch_tuf::api::code::NAME_INVALID,
            format!("invalid file name {m}"),
        ),
    }
}

#[cfg(test)]
mod tests;
