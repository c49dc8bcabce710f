//! The HTTP API: routing, authorisation, request parsing and responses.
//!
//! [`app`] builds the router; tests drive it without a socket (`tower::ServiceExt::oneshot`)
//! and through a real listening server. Paths under `/v2/` are parsed from the raw URI by
//! [`crate::routes`], never by the router, so `%2F` in a role name stays part of the name.
//!
//! Every request passes one middleware ([`observe`]) that gives it a request id (the client's
//! `x-request-id` when it sent a sane one, else a generated one, echoed in the response),
//! runs it in a `tracing` span carrying that id, enforces the in-flight cap and the
//! per-request timeout (503 with `Retry-After`), and counts it in [`Metrics`]. Publishes also
//! take a slot of the overall and the per-repository publish caps, waiting a bounded time for
//! one, then 503 with `Retry-After`.
//!
//! A body no handler reads (a refused publish, a body sent with a read) does not hold up the
//! answer or the request's in-flight slot: [`vouch_serve::discard`] reads it away in the
//! background within a small byte and time budget, else the connection is closed. `/metrics`
//! needs a token that may read every repository when `metrics.access` is `token`.
//!
//! Current metadata is served from an in-memory cache bounded in bytes for up to a second
//! ([`ReadCache`]);
//! a publish or delete through this process drops the repository's entries before it answers,
//! and a read that a write (re-signing included) may have overtaken is not cached, so a client
//! never reads older metadata after a newer one. The current timestamp and snapshot are served
//! from it only while the service says nothing is due for re-signing. Such cached reads are
//! answered by [`serve_cached`] before the router and middleware, with the same response,
//! authorisation, request id, in-flight cap and metrics.
//!
//! A response whose body was made for that request alone — a file read from the store rather
//! than the cache, `/metrics` — may outlive its handler (and its in-flight slot) by as long as
//! the client takes to read it. Such bodies take their size from one budget of the process
//! ([`ResponseBudget`], `capacity.max_pending_response_bytes`) before they are sent and give
//! it back when they are dropped (written, or the connection closed); one that does not fit
//! gets 503 with `Retry-After`. Cached reads share the cache's buffer and take nothing.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::middleware::Next;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper::body::{Frame, SizeHint};
use serde::Deserialize;
use serde_json::json;
use vouch_tuf::reference::Gun;

use crate::auth::{Action, Authorizer, Denied, Target};
use crate::config::{Config, MetricsAccess};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::routes::{self, FileRef, Route, RouteError};
use crate::service::Service;
use crate::validate::Upload;

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
}

/// A metadata file as served.
#[derive(Clone)]
struct CachedFile {
    role: String,
    bytes: axum::body::Bytes,
    /// `"<sha256>"`, ready to send.
    etag: HeaderValue,
}

impl CachedFile {
    fn new(role: String, sha256: &str, bytes: Vec<u8>) -> Arc<Self> {
        let etag = HeaderValue::try_from(format!("\"{sha256}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("\"\""));
        Arc::new(CachedFile {
            role,
            bytes: axum::body::Bytes::from(bytes),
            etag,
        })
    }
}

/// How long a current root, targets or delegated role is served from memory. Publishes and
/// deletes through this process drop a repository's entries at once, so the bound only
/// matters for writes by another process on the same store.
const READ_CACHE_TTL: Duration = Duration::from_secs(1);
/// A file larger than this fraction of the cache's byte budget is not cached: a few large
/// roles cannot take the whole cache, and the budget holds at least this many files.
const READ_CACHE_ENTRY_SHARE: usize = 16;
/// What an entry costs beyond its file, its names and its tag: the maps' bookkeeping and the
/// allocations' headers (an estimate on the high side).
const READ_CACHE_ENTRY_OVERHEAD: usize = 256;

/// Recently read current versions of each role, bounded in bytes. Timestamp and snapshot
/// entries are used only while the service reports them fresh (see
/// [`Service::online_roles_fresh`]), since the server re-signs them on read once they are due.
///
/// The cache holds at most its budget of bytes (files plus their names and an overhead per
/// entry, see [`CachedFile::cost`]); a file larger than a [`READ_CACHE_ENTRY_SHARE`]th of the
/// budget is never cached, and while the cache is full new files are served without being
/// cached. Expired entries are released by [`ReadCache::sweep`], which runs at most once per
/// TTL on inserts and from a timer of the server. The bytes held are the
/// `vouch_read_cache_bytes` metric.
///
/// A reader notes the [`ReadCache::generation`] before it reads the store and inserts only if
/// no invalidation happened meanwhile, so a read racing a publish cannot put the old file
/// back after the publish dropped it.
struct ReadCache {
    generation: AtomicU64,
    /// Most bytes held.
    budget: usize,
    state: Mutex<CacheState>,
    metrics: Arc<Metrics>,
}

/// The entries of a [`ReadCache`] and what they cost.
#[derive(Default)]
struct CacheState {
    entries: HashMap<String, RolesCache>,
    /// The sum of the entries' [`CachedFile::cost`].
    bytes: usize,
    /// When expired entries were last released.
    swept: Option<Instant>,
}

/// One repository's cached roles, with when each was read and the service's write generation
/// at the time.
type RolesCache = HashMap<String, (Instant, u64, Arc<CachedFile>)>;

impl CachedFile {
    /// What holding this file as a current role of `gun` costs the cache, in bytes.
    fn cost(&self, gun: &str) -> usize {
        self.bytes.len() + self.role.len() + self.etag.len() + gun.len() + READ_CACHE_ENTRY_OVERHEAD
    }
}

impl ReadCache {
    /// An empty cache of at most `budget` bytes that reports what it holds to `metrics`.
    fn new(budget: usize, metrics: Arc<Metrics>) -> Self {
        ReadCache {
            generation: AtomicU64::new(0),
            budget,
            state: Mutex::default(),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached file, if it is younger than the TTL and no write by the service happened
    /// since it was read (`writes` is [`Service::write_generation`] now).
    fn get(&self, gun: &str, role: &str, writes: u64) -> Option<Arc<CachedFile>> {
        let state = self.lock();
        let (at, seen_writes, f) = state.entries.get(gun)?.get(role)?;
        (at.elapsed() < READ_CACHE_TTL && *seen_writes == writes).then(|| f.clone())
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches `f` as the current file of its role of `gun`, read when the generation was
    /// `seen` and the service's write generation `writes`, if it fits.
    fn insert(&self, seen: u64, writes: u64, gun: &str, f: Arc<CachedFile>) {
        let cost = f.cost(gun);
        if cost > self.budget / READ_CACHE_ENTRY_SHARE {
            return;
        }
        let mut state = self.lock();
        if self.generation.load(Ordering::Acquire) != seen {
            return;
        }
        let now = Instant::now();
        let due = state
            .swept
            .is_none_or(|t| now.duration_since(t) >= READ_CACHE_TTL);
        // At most once per TTL: a full cache does not make every miss walk all entries.
        if due {
            Self::release_expired(&mut state, now);
        }
        let replaced = state
            .entries
            .get_mut(gun)
            .and_then(|roles| roles.remove(&f.role));
        if let Some((_, _, old)) = replaced {
            state.bytes -= old.cost(gun);
        }
        if state.bytes + cost <= self.budget {
            state
                .entries
                .entry(gun.to_owned())
                .or_default()
                .insert(f.role.clone(), (now, writes, f));
            state.bytes += cost;
        } else if state.entries.get(gun).is_some_and(HashMap::is_empty) {
            state.entries.remove(gun);
        }
        self.metrics.read_cache_bytes(state.bytes);
    }

    /// Releases the entries older than the TTL.
    fn sweep(&self) {
        let mut state = self.lock();
        Self::release_expired(&mut state, Instant::now());
        self.metrics.read_cache_bytes(state.bytes);
    }

    fn release_expired(state: &mut CacheState, now: Instant) {
        let mut freed = 0;
        state.entries.retain(|gun, roles| {
            roles.retain(|_, (at, _, f)| {
                let live = now.duration_since(*at) < READ_CACHE_TTL;
                if !live {
                    freed += f.cost(gun);
                }
                live
            });
            !roles.is_empty()
        });
        state.bytes -= freed;
        state.swept = Some(now);
        // Give back the table's memory too once most of it is empty.
        if state.entries.capacity() > 4 * state.entries.len().max(64) {
            state.entries.shrink_to_fit();
        }
    }

    fn invalidate(&self, gun: &str) {
        let mut state = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(roles) = state.entries.remove(gun) {
            let freed: usize = roles.values().map(|(_, _, f)| f.cost(gun)).sum();
            state.bytes -= freed;
            self.metrics.read_cache_bytes(state.bytes);
        }
    }
}

/// The bytes of responses made for one request alone (not shared with the read cache) that
/// may wait to be written at once, over the whole process.
///
/// A response takes its body's length (at most the whole budget, so that a file larger than
/// the budget is still served when nothing else waits) before it is sent, as a [`Pending`]
/// that its body ([`OwnBody`]) holds until it is dropped: once hyper has taken the last
/// piece, or when the connection closes (the write deadline included). When the budget
/// cannot cover a response now, the request gets 503. Lock-free: one compare-and-swap to take,
/// one add to give back.
struct ResponseBudget {
    /// Bytes not taken.
    available: AtomicUsize,
    /// The whole budget.
    total: usize,
    metrics: Arc<Metrics>,
}

impl ResponseBudget {
    fn new(total: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(ResponseBudget {
            available: AtomicUsize::new(total),
            total,
            metrics,
        })
    }

    /// Takes `len` bytes (at most the whole budget), or `None` when that many are not free.
    fn take(self: &Arc<Self>, len: usize) -> Option<Pending> {
        let bytes = len.min(self.total);
        let mut free = self.available.load(Ordering::Acquire);
        loop {
            let left = free.checked_sub(bytes)?;
            match self.available.compare_exchange_weak(
                free,
                left,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => free = now,
            }
        }
        self.metrics.response_bytes_taken(bytes);
        Some(Pending {
            budget: self.clone(),
            bytes,
        })
    }
}

/// Bytes taken from a [`ResponseBudget`], given back when dropped.
struct Pending {
    budget: Arc<ResponseBudget>,
    bytes: usize,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.budget
            .available
            .fetch_add(self.bytes, Ordering::AcqRel);
        self.budget.metrics.response_bytes_returned(self.bytes);
    }
}

/// Most bytes of an [`OwnBody`] handed to hyper at once.
const OWN_BODY_PIECE: usize = 16 * 1024;

/// A response body made for one request alone, holding its share of the [`ResponseBudget`]
/// for as long as it holds the bytes.
///
/// It hands hyper copies of at most [`OWN_BODY_PIECE`] bytes, never slices of its buffer:
/// hyper buffers at most a small window of a response ahead of the socket and drops the body
/// after taking its last piece, so the buffer, and its share of the budget, live exactly as
/// long as the body (a slice would keep the whole buffer alive in hyper's queue after the
/// share was given back).
struct OwnBody {
    rest: Bytes,
    _pending: Pending,
}

impl hyper::body::Body for OwnBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.rest.len().min(OWN_BODY_PIECE);
        let piece = Bytes::copy_from_slice(&self.rest[..n]);
        self.rest = self.rest.slice(n..);
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// The response budget could not cover a response now (counted and logged when made).
struct OverBudget {
    retry_after: u64,
}

impl OverBudget {
    /// The 503 with `Retry-After` to answer instead.
    fn response(self) -> Response {
        overloaded(self.retry_after, "the server is over capacity: retry later")
    }
}

impl AppState {
    /// `bytes` as a response body that holds its share of the response budget until it is
    /// dropped, or [`OverBudget`] when the budget cannot cover it now.
    fn own_body(&self, bytes: Bytes) -> Result<Body, OverBudget> {
        match self.capacity.responses.take(bytes.len()) {
            Some(pending) => Ok(Body::new(OwnBody {
                rest: bytes,
                _pending: pending,
            })),
            None => {
                self.metrics.overloaded("response_bytes");
                tracing::warn!(
                    bytes = bytes.len(),
                    "over capacity: too many response bytes waiting to be written"
                );
                Err(OverBudget {
                    retry_after: self.capacity.retry_after,
                })
            }
        }
    }
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
    pub fn new(service: Service, auth: Authorizer, config: &Config) -> Self {
        let metrics = Arc::new(Metrics::default());
        let c = &config.capacity;
        AppState {
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
        }
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
    pub fn metrics(&self) -> &Arc<Metrics> {
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
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(dispatch)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The Prometheus exposition; with `metrics.access = "token"` only for a token that may read
/// every repository, since its series name them.
async fn metrics(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if st.metrics_access == MetricsAccess::Token {
        if let Err(e) = authorize(&st, &headers, Target::All, Action::Pull) {
            return e.into_response();
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // Up to the expiry series' 16 MiB of text, made for this scrape alone.
    let body = match st.own_body(Bytes::from(st.metrics.render(now))) {
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

/// The route class a request is counted under (cheap: no GUN validation).
fn route_class(method: &Method, path: &str) -> &'static str {
    match path {
        "/healthz" | "/readyz" => return "health",
        "/metrics" => return "metrics",
        "/v2/" => return "base",
        _ => {}
    }
    if !path.starts_with("/v2/") {
        return "other";
    }
    if path.ends_with("/_trust/changefeed") {
        return "changefeed";
    }
    if !path.contains("/_trust/tuf/") {
        return "other";
    }
    if path.ends_with("/_trust/tuf/") {
        return match *method {
            Method::POST => "publish",
            Method::DELETE => "delete",
            _ => "other",
        };
    }
    if path.ends_with(".key") {
        "key"
    } else {
        "metadata"
    }
}

const X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// A request id: the client's when it is short and plain, else a new one.
fn request_id(headers: &HeaderMap) -> String {
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
fn overloaded(retry_after: u64, message: &str) -> Response {
    let mut r = AppError::Unavailable {
        message: message.to_owned(),
    }
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

/// Request ids, logs, the in-flight cap, the request timeout, and request metrics.
async fn observe(State(st): State<AppState>, req: Request, next: Next) -> Response {
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
fn timed_out(st: &AppState) -> Response {
    st.metrics.overloaded("timeout");
    tracing::warn!("request timed out");
    overloaded(
        st.capacity.retry_after,
        "the request took too long: retry later",
    )
}

/// The span every request's log lines carry.
fn request_span(id: &str, method: &Method, path: &str) -> tracing::Span {
    tracing::info_span!("request", id = %id, method = %method, path = %path)
}

/// Sets the request id on the response and counts the request; returns its status and
/// duration in milliseconds.
fn finish(
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
fn log_outcome(method: &Method, status: u16, ms: f64) {
    if status >= 500 {
        tracing::warn!(status, ms, "request failed");
    } else if method != Method::GET && method != Method::HEAD || (status >= 400 && status != 404) {
        tracing::info!(status, ms, "request");
    } else {
        tracing::debug!(status, ms, "request");
    }
}

/// Answers a GET or HEAD of a repository's current metadata straight from the read cache,
/// when it can, with exactly the response the full path would give (same headers, request
/// id, metrics and debug log line) after the same authorisation and in-flight cap. It skips
/// the router, the middleware's timer and the span's bookkeeping, which is most of a cached
/// read's cost; it never waits, so the request timeout cannot apply.
///
/// `None` means "take the full path": another kind of request, a refused authorisation (the
/// full path answers and logs the 401/403), a full in-flight cap (the full path answers 503),
/// a cache miss, or an online role due for re-signing.
pub fn serve_cached<B>(st: &AppState, req: &axum::http::Request<B>) -> Option<Response> {
    let method = req.method();
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let start = Instant::now();
    let Ok(Route::File(gun, FileRef::Current(role))) = routes::parse(req.uri().path()) else {
        return None;
    };
    let _permit = st.capacity.in_flight.try_acquire().ok()?;
    let headers = req.headers();
    authorize(st, headers, Target::Gun(&gun), Action::Pull).ok()?;
    let f = cached_current(st, &gun, &role)?;
    let mut resp = file_response(&f, false, headers);
    let id = request_id(headers);
    // Its only line is at debug level: no span unless that is on.
    let span = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| request_span(&id, method, req.uri().path()));
    let (status, ms) = finish(st, &mut resp, id, "metadata", method, start);
    if let Some(span) = span {
        span.in_scope(|| log_outcome(method, status, ms));
    }
    Some(resp)
}

/// The cached current `role` of `gun`, if there is one still good to serve: timestamp and
/// snapshot only while nothing is due for re-signing (past that the service must look, and
/// maybe re-sign, first).
fn cached_current(st: &AppState, gun: &Gun, role: &str) -> Option<Arc<CachedFile>> {
    let online = role == "timestamp" || role == "snapshot";
    if online && !st.service.online_roles_fresh(gun) {
        return None;
    }
    st.cache
        .get(gun.as_str(), role, st.service.write_generation())
}

/// A held slot of the publish caps; frees the repository's entry when the last user leaves.
struct PublishSlot {
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
async fn publish_slot(st: &AppState, gun: &Gun) -> Result<PublishSlot, Response> {
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

/// The rejection reason a failed publish is counted under, if it was the client's fault.
fn rejection_reason(e: &AppError) -> Option<String> {
    match e {
        AppError::BadRequest { code, detail, .. } => Some(
            detail
                .get("check")
                .and_then(|c| c.as_str())
                .map_or_else(|| code.to_ascii_lowercase(), str::to_owned),
        ),
        AppError::Conflict { .. } => Some("version".into()),
        AppError::TooLarge { .. } => Some("size".into()),
        _ => None,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::internal(format!("blocking task failed: {e}")))?
}

async fn readyz(State(st): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
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

fn authorize(
    st: &AppState,
    headers: &HeaderMap,
    target: Target<'_>,
    action: Action,
) -> Result<(), AppError> {
    let authz = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match st.auth.authorize(authz, target, action) {
        Ok(_) => Ok(()),
        Err(Denied::Unauthenticated {
            scope,
            reason,
            error,
        }) => Err(AppError::Unauthorized {
            message: format!("authentication required: {reason}"),
            challenge: st.auth.challenge(&scope, error),
        }),
        Err(Denied::InsufficientScope { scope }) => Err(AppError::Unauthorized {
            message: format!("the token does not grant {scope}"),
            challenge: st.auth.challenge(&scope, Some("insufficient_scope")),
        }),
        Err(Denied::Forbidden { scope }) => Err(AppError::Forbidden {
            message: format!("the token does not grant {scope}"),
        }),
    }
}

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
    let route = match routes::parse(parts.uri.path()) {
        Ok(r) => r,
        Err(RouteError::NotFound) => {
            return Err(AppError::not_found(format!(
                "no such path: {}",
                parts.uri.path()
            )))
        }
        Err(RouteError::InvalidGun(m)) => return Err(AppError::bad_request("NAME_INVALID", m)),
        Err(RouteError::InvalidFile(m)) => {
            return Err(AppError::bad_request(
                "NAME_INVALID",
                format!("invalid file name {m}"),
            ))
        }
    };
    let method = parts.method.clone();
    let headers = &parts.headers;
    match (route, method) {
        (Route::Base, Method::GET) => Ok(Json(json!({})).into_response()),
        (Route::Changefeed(gun), Method::GET) => {
            let target = gun.as_ref().map_or(Target::All, Target::Gun);
            authorize(&st, headers, target, Action::Pull)?;
            let Query(q) = Query::<ChangefeedQuery>::try_from_uri(&parts.uri).map_err(|e| {
                AppError::bad_request("INVALID_PARAMETER", format!("changefeed query: {e}"))
            })?;
            changefeed(&st, gun, q).await
        }
        (Route::Repository(gun), Method::POST) => {
            authorize(&st, headers, Target::Gun(&gun), Action::Push)?;
            let declared = headers
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
            let slot = match publish_slot(&st, &gun).await {
                Ok(s) => s,
                Err(resp) => return Ok(resp),
            };
            let body = body.take().unwrap_or_default();
            let uploads = match tokio::time::timeout(
                st.capacity.body_timeout,
                read_uploads(&st, Request::from_parts(parts, body)),
            )
            .await
            {
                Ok(u) => u,
                Err(_) => {
                    st.metrics.overloaded("body_timeout");
                    return Ok(request_timeout());
                }
            };
            let result = match uploads {
                Ok(uploads) => {
                    let (svc, g) = (st.service.clone(), gun.clone());
                    // The slot is held until the work ends, even if the answer leaves first.
                    let work = blocking(move || {
                        let _slot = slot;
                        svc.publish(&g, uploads)
                    });
                    // The request timeout counts from here: the body had its own limit.
                    let Ok(r) = tokio::time::timeout(st.capacity.request_timeout, work).await
                    else {
                        return Ok(timed_out(&st));
                    };
                    st.cache.invalidate(gun.as_str());
                    r
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    st.metrics.published();
                    Ok(Json(json!({})).into_response())
                }
                Err(e) => {
                    if let Some(reason) = rejection_reason(&e) {
                        st.metrics.rejected(&reason);
                    }
                    Err(e)
                }
            }
        }
        (Route::Repository(gun), Method::DELETE) => {
            authorize(&st, headers, Target::Gun(&gun), Action::Delete)?;
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
        (Route::File(gun, FileRef::Key(role)), Method::GET) => {
            authorize(&st, headers, Target::Gun(&gun), Action::Pull)?;
            let svc = st.service.clone();
            let (g, r) = (gun.clone(), role.clone());
            if let Some(k) = blocking(move || svc.key(&g, &r, false)).await? {
                return Ok(key_response(k));
            }
            // Creating a key is a write: it needs push, even when pulls are anonymous.
            authorize(&st, headers, Target::Gun(&gun), Action::Push)?;
            let svc = st.service.clone();
            let k = blocking(move || svc.key(&gun, &role, true)).await?;
            k.map(key_response)
                .ok_or_else(|| AppError::internal("online key missing after creation"))
        }
        (Route::File(gun, FileRef::Key(role)), Method::POST) => {
            authorize(&st, headers, Target::Gun(&gun), Action::Push)?;
            let svc = st.service.clone();
            let k = blocking(move || svc.rotate_key(&gun, &role)).await?;
            Ok(key_response(k))
        }
        (Route::File(gun, file), Method::GET | Method::HEAD) => {
            authorize(&st, headers, Target::Gun(&gun), Action::Pull)?;
            let immutable = !matches!(file, FileRef::Current(_));
            let cacheable = matches!(&file, FileRef::Current(_));
            if let FileRef::Current(role) = &file {
                if let Some(f) = cached_current(&st, &gun, role) {
                    return Ok(file_response(&f, false, headers));
                }
            }
            let generation = (st.cache.generation(), st.service.write_generation());
            let svc = st.service.clone();
            let g = gun.clone();
            let f = blocking(move || svc.file(&g, &file)).await?;
            if !immutable {
                st.metrics.saw(gun.as_str(), &f.role, &f.sha256, &f.bytes);
            }
            let f = CachedFile::new(f.role, &f.sha256, f.bytes);
            // Not when a write by this process (a re-sign included) may have overtaken the read.
            if cacheable && st.service.write_generation() == generation.1 {
                st.cache
                    .insert(generation.0, generation.1, gun.as_str(), f.clone());
            }
            let mut resp = file_response(&f, immutable, headers);
            // This read's own buffer (whether or not the cache kept it too) waits for the
            // client under the response budget; a HEAD or a 304 sends no body.
            if parts.method == Method::GET && resp.status() == StatusCode::OK {
                match st.own_body(f.bytes.clone()) {
                    Ok(body) => *resp.body_mut() = body,
                    Err(busy) => return Ok(busy.response()),
                }
            }
            Ok(resp)
        }
        _ => Err(AppError::MethodNotAllowed),
    }
}

/// 408: the client sent its body too slowly.
fn request_timeout() -> Response {
    let body = json!({"errors": [{
        "code": "TIMEOUT",
        "message": "the request body was not received in time",
        "detail": null,
    }]});
    let mut r = (StatusCode::REQUEST_TIMEOUT, Json(body)).into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

fn key_response(public_json: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        public_json,
    )
        .into_response()
}

fn file_response(f: &CachedFile, immutable: bool, req_headers: &HeaderMap) -> Response {
    let etag = f.etag.as_bytes();
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else if f.role == "timestamp" {
        "no-cache"
    } else {
        "public, max-age=30, must-revalidate"
    };
    let not_modified = req_headers.get(header::IF_NONE_MATCH).is_some_and(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii() == etag)
    });
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(f.bytes.clone()))
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ETAG, f.etag.clone());
    resp
}

/// Reads the multipart body: one part per role, field `files`, file name = role name.
async fn read_uploads(st: &AppState, req: Request) -> Result<Vec<Upload>, AppError> {
    let mut mp = Multipart::from_request(req, st).await.map_err(|e| {
        AppError::bad_request(
            "MALFORMED_REQUEST",
            format!("expected multipart/form-data: {}", e.body_text()),
        )
    })?;
    let mut uploads = Vec::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e)),
        };
        if field.name() != Some("files") {
            return Err(AppError::bad_request(
                "MALFORMED_REQUEST",
                format!(
                    "unexpected form field {:?}: every part must be named \"files\"",
                    field.name().unwrap_or("")
                ),
            ));
        }
        let role = field
            .file_name()
            .map(str::to_owned)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                AppError::bad_request(
                    "MALFORMED_REQUEST",
                    "a part has no file name: it must be the role name",
                )
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

fn multipart_error(e: axum::extract::multipart::MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::TooLarge {
            message: "request body exceeds the configured limit".into(),
        }
    } else {
        AppError::bad_request(
            "MALFORMED_REQUEST",
            format!("malformed multipart body: {}", e.body_text()),
        )
    }
}

#[derive(Debug, Deserialize)]
struct ChangefeedQuery {
    #[serde(default)]
    change_id: Option<String>,
    #[serde(default)]
    records: Option<i64>,
}

async fn changefeed(
    st: &AppState,
    gun: Option<Gun>,
    q: ChangefeedQuery,
) -> Result<Response, AppError> {
    let change_id: i64 = match q.change_id.as_deref() {
        None | Some("") => 0,
        Some(s) => s.parse().map_err(|_| {
            AppError::bad_request(
                "INVALID_PARAMETER",
                format!("change_id {s:?} is not an integer"),
            )
        })?,
    };
    let records = q.records.unwrap_or(100);
    if records == 0 {
        return Err(AppError::bad_request(
            "INVALID_PARAMETER",
            "records must not be 0",
        ));
    }
    let svc = st.service.clone();
    let changes = blocking(move || svc.changes(gun.as_ref(), change_id, records)).await?;
    let records: Vec<_> = changes
        .iter()
        .map(|c| {
            json!({
                "ID": c.id.to_string(),
                "CreatedAt": c.created_at.to_string(),
                "GUN": c.gun,
                "Version": c.version,
                "SHA256": c.sha256,
                "Category": c.category.as_str(),
            })
        })
        .collect();
    Ok(Json(json!({"count": records.len(), "records": records})).into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use tower::ServiceExt;

    fn state(dir: &std::path::Path, f: impl FnOnce(&mut Config)) -> (AppState, String) {
        let mut config = Config {
            data_dir: dir.join("data"),
            ..Config::default()
        };
        f(&mut config);
        let prepared = crate::run::build_state(&config, None).unwrap();
        let token = std::fs::read_to_string(config.admin_token_path()).unwrap();
        (prepared.state, token.trim().to_owned())
    }

    fn publish_request(gun: &str, token: &str) -> Request {
        Request::builder()
            .method(Method::POST)
            .uri(format!("/v2/{gun}/_trust/tuf/"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "multipart/form-data; boundary=b")
            .body(Body::from("--b--\r\n"))
            .unwrap()
    }

    #[tokio::test]
    async fn publishes_over_capacity_get_503_with_retry_after() {
        let dir = tempfile::tempdir().unwrap();
        let (st, token) = state(dir.path(), |c| {
            c.capacity.max_publishes = 1;
            c.capacity.max_publishes_per_gun = 1;
            c.capacity.publish_wait_ms = 50;
            c.capacity.retry_after_seconds = 7;
        });
        let app = app(st.clone());
        let held = publish_slot(&st, &Gun::new("example.com/app").unwrap())
            .await
            .ok()
            .unwrap();

        // Same repository: its own cap is full.
        let r = app
            .clone()
            .oneshot(publish_request("example.com/app", &token))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
        assert!(r.headers().contains_key("x-request-id"));
        // Another repository: the overall cap is full.
        let r = app
            .clone()
            .oneshot(publish_request("example.com/other", &token))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let text = st.metrics.render(0);
        assert!(text.contains("vouch_overload_rejections_total{reason=\"publish_gun\"} 1"));
        assert!(text.contains("vouch_overload_rejections_total{reason=\"publish\"} 1"));

        // Freed: the request gets through to validation (an empty update is a 400).
        drop(held);
        let r = app
            .clone()
            .oneshot(publish_request("example.com/app", &token))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(st.capacity.per_gun.lock().unwrap().is_empty());
        assert_eq!(st.capacity.publishes.available_permits(), 1);
    }

    #[tokio::test]
    async fn requests_over_the_in_flight_cap_get_503() {
        let dir = tempfile::tempdir().unwrap();
        let (st, _) = state(dir.path(), |c| c.capacity.max_in_flight = 1);
        let app = app(st.clone());
        let get = |p: &str| Request::builder().uri(p).body(Body::empty()).unwrap();
        let held = st.capacity.in_flight.clone().try_acquire_owned().unwrap();
        let r = app.clone().oneshot(get("/healthz")).await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        drop(held);
        let r = app.clone().oneshot(get("/healthz")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn request_ids_are_echoed_or_generated() {
        let dir = tempfile::tempdir().unwrap();
        let (st, _) = state(dir.path(), |_| {});
        let app = app(st);
        let r = app
            .clone()
            .oneshot(
                Request::builder()
                    .uri("/v2/")
                    .header("x-request-id", "abc-123")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.headers()["x-request-id"], "abc-123");
        let r = app
            .clone()
            .oneshot(
                Request::builder()
                    .uri("/v2/")
                    .header("x-request-id", "bad id\twith junk")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap();
        assert!(id.len() > 12 && !id.contains(' '), "{id}");
    }

    /// Everything of a response but its request id and date: status, headers, body. Not
    /// `content-length` either: the router sets it, hyper writes it from the body's exact size
    /// on the wire for both paths.
    async fn comparable(r: Response) -> (StatusCode, Vec<(String, String)>, Vec<u8>) {
        use http_body_util::BodyExt;
        let status = r.status();
        let mut headers: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(k, _)| {
                *k != X_REQUEST_ID && *k != header::DATE && *k != header::CONTENT_LENGTH
            })
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, headers, body)
    }

    #[tokio::test]
    async fn cached_reads_skip_the_router_with_the_same_answer() {
        let dir = tempfile::tempdir().unwrap();
        let (st, token) = state(dir.path(), |_| {});
        let app = app(st.clone());
        let bytes = br#"{"signed":{"_type":"targets"}}"#.to_vec();
        let sha = vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
        let f = CachedFile::new("targets".into(), &sha, bytes.clone());
        let writes = st.service.write_generation();
        st.cache
            .insert(st.cache.generation(), writes, "example.com/app", f);
        let req = |method: Method, path: &str, h: &[(&str, &str)]| {
            let mut b = Request::builder().method(method).uri(path);
            for (k, v) in h {
                b = b.header(*k, *v);
            }
            b.body(Body::empty()).unwrap()
        };
        let targets = "/v2/example.com/app/_trust/tuf/targets.json";
        let etag = format!("\"{sha}\"");
        let bearer = format!("Bearer {token}");
        for (method, h) in [
            (Method::GET, vec![]),
            (Method::HEAD, vec![]),
            (Method::GET, vec![("if-none-match", etag.as_str())]),
            (Method::GET, vec![("authorization", bearer.as_str())]),
        ] {
            let fast = serve_cached(&st, &req(method.clone(), targets, &h)).expect("served");
            let full = app
                .clone()
                .oneshot(req(method.clone(), targets, &h))
                .await
                .unwrap();
            assert!(fast.headers().contains_key(X_REQUEST_ID));
            let (mut fast, mut full) = (comparable(fast).await, comparable(full).await);
            if method == Method::HEAD {
                // The router empties a HEAD response's body; hyper never sends one anyway.
                (fast.2, full.2) = (Vec::new(), Vec::new());
            }
            assert_eq!(fast, full, "{method} {h:?}");
        }
        let fast = serve_cached(&st, &req(Method::GET, targets, &[])).unwrap();
        assert_eq!(fast.status(), StatusCode::OK);
        let fast = serve_cached(&st, &req(Method::GET, targets, &[("x-request-id", "r-1")]));
        assert_eq!(fast.unwrap().headers()[X_REQUEST_ID], "r-1");
        // Counted like any other read: both paths above, and these two.
        let text = st.metrics.render(0);
        assert!(
            text.contains(
                "vouch_http_requests_total{route=\"metadata\",method=\"GET\",status=\"200\"} 6"
            ),
            "{text}"
        );
        assert!(text.contains("status=\"304\"} 2"), "{text}");

        // Everything else takes the full path.
        for r in [
            req(Method::POST, targets, &[]),
            req(Method::DELETE, targets, &[]),
            req(
                Method::GET,
                "/v2/example.com/app/_trust/tuf/1.targets.json",
                &[],
            ),
            req(
                Method::GET,
                &format!("/v2/example.com/app/_trust/tuf/targets.{sha}.json"),
                &[],
            ),
            req(Method::GET, "/v2/example.com/app/_trust/tuf/root.json", &[]),
            req(
                Method::GET,
                "/v2/example.com/other/_trust/tuf/targets.json",
                &[],
            ),
            req(
                Method::GET,
                "/v2/example.com/app/_trust/tuf/timestamp.key",
                &[],
            ),
            req(Method::GET, "/v2/Bad/_trust/tuf/targets.json", &[]),
            req(Method::GET, targets, &[("authorization", "Bearer wrong")]),
        ] {
            assert!(
                serve_cached(&st, &r).is_none(),
                "{} {}",
                r.method(),
                r.uri()
            );
        }
        // An online role is served from the cache only while nothing is due for re-signing,
        // which this service has not checked yet.
        let ts = CachedFile::new("timestamp".into(), &sha, bytes);
        st.cache
            .insert(st.cache.generation(), writes, "example.com/app", ts);
        let r = req(
            Method::GET,
            "/v2/example.com/app/_trust/tuf/timestamp.json",
            &[],
        );
        assert!(serve_cached(&st, &r).is_none());
        // A full in-flight cap: the full path answers 503.
        let held = st
            .capacity
            .in_flight
            .clone()
            .try_acquire_many_owned(st.capacity.in_flight.available_permits() as u32);
        assert!(serve_cached(&st, &req(Method::GET, targets, &[])).is_none());
        drop(held);
        assert!(serve_cached(&st, &req(Method::GET, targets, &[])).is_some());
        // A publish or delete drops the entry at once.
        st.cache.invalidate("example.com/app");
        assert!(serve_cached(&st, &req(Method::GET, targets, &[])).is_none());
    }

    #[tokio::test]
    async fn cached_reads_need_a_token_without_anonymous_pull() {
        let dir = tempfile::tempdir().unwrap();
        let (st, token) = state(dir.path(), |c| c.auth.anonymous_pull = false);
        let bytes = b"{}".to_vec();
        let f = CachedFile::new("targets".into(), &"0".repeat(64), bytes);
        st.cache.insert(
            st.cache.generation(),
            st.service.write_generation(),
            "example.com/app",
            f,
        );
        let get = |auth: Option<&str>| {
            let mut b = Request::builder().uri("/v2/example.com/app/_trust/tuf/targets.json");
            if let Some(a) = auth {
                b = b.header(header::AUTHORIZATION, a);
            }
            b.body(Body::empty()).unwrap()
        };
        assert!(serve_cached(&st, &get(None)).is_none());
        let r = app(st.clone()).oneshot(get(None)).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let ok = serve_cached(&st, &get(Some(&format!("Bearer {token}"))));
        assert_eq!(ok.unwrap().status(), StatusCode::OK);
    }

    /// The `vouch_read_cache_bytes` gauge.
    fn cache_bytes(m: &Metrics) -> usize {
        let text = m.render(0);
        text.lines()
            .find_map(|l| l.strip_prefix("vouch_read_cache_bytes "))
            .expect("no vouch_read_cache_bytes")
            .parse()
            .unwrap()
    }

    #[test]
    fn the_read_cache_is_bounded_in_bytes_and_releases_expired_files() {
        let metrics = Arc::new(Metrics::default());
        let budget = 64 * 1024;
        let cache = ReadCache::new(budget, metrics.clone());
        let file = |n: usize| CachedFile::new("targets".into(), &"0".repeat(64), vec![b'x'; n]);
        let insert = |gun: &str, n: usize| cache.insert(cache.generation(), 0, gun, file(n));

        // Larger than its share of the budget (a sixteenth): served, never cached.
        insert("example.com/big", budget / 16);
        assert!(cache.get("example.com/big", "targets", 0).is_none());
        assert_eq!(cache_bytes(&metrics), 0);

        // Files that fit one by one never take more than the budget: once it is full, the
        // files already held stay and new ones are not cached.
        for i in 0..40 {
            insert(&format!("example.com/app{i}"), 3000);
        }
        let held = cache_bytes(&metrics);
        assert!(held <= budget && held > budget - 4000, "{held}");
        assert!(cache.get("example.com/app0", "targets", 0).is_some());
        assert!(cache.get("example.com/app39", "targets", 0).is_none());
        // A newer read of a cached role replaces it, not adds to it.
        insert("example.com/app0", 3000);
        assert_eq!(cache_bytes(&metrics), held);
        // A write drops the repository's files and their bytes.
        cache.invalidate("example.com/app0");
        assert!(cache.get("example.com/app0", "targets", 0).is_none());
        assert!(cache_bytes(&metrics) < held);

        // Once past the TTL, a sweep releases every file, and the gauge says so.
        for roles in cache.lock().entries.values_mut() {
            for (at, _, _) in roles.values_mut() {
                *at = at.checked_sub(READ_CACHE_TTL).unwrap();
            }
        }
        cache.sweep();
        assert_eq!(cache_bytes(&metrics), 0);
        assert!(cache.lock().entries.is_empty());

        // A cache of 0 bytes holds nothing.
        let off = ReadCache::new(0, metrics.clone());
        off.insert(off.generation(), 0, "example.com/app", file(10));
        assert!(off.get("example.com/app", "targets", 0).is_none());
    }

    #[test]
    fn the_response_budget_is_shared_capped_and_given_back() {
        let metrics = Arc::new(Metrics::default());
        let budget = ResponseBudget::new(100, metrics.clone());
        let pending = |m: &Metrics| {
            m.render(0)
                .lines()
                .find_map(|l| l.strip_prefix("vouch_pending_response_bytes "))
                .map(str::to_owned)
        };
        // Two responses that fit, and a third that does not.
        let a = budget.take(60).expect("fits");
        let b = budget.take(40).expect("fits");
        assert!(budget.take(1).is_none());
        assert_eq!(pending(&metrics).as_deref(), Some("100"));
        // An empty body costs nothing.
        assert!(budget.take(0).is_some());
        drop(a);
        assert!(budget.take(61).is_none());
        let c = budget.take(60).expect("given back");
        drop((b, c));
        assert_eq!(pending(&metrics).as_deref(), Some("0"));
        // Larger than the whole budget: served when nothing else waits, taking all of it.
        let all = budget
            .take(1000)
            .expect("larger than the budget, nothing waiting");
        assert!(budget.take(1).is_none());
        drop(all);
        assert_eq!(budget.available.load(Ordering::Acquire), 100);
    }

    #[tokio::test]
    async fn own_bodies_hold_their_bytes_until_dropped_and_503_past_the_budget() {
        use http_body_util::BodyExt;

        let dir = tempfile::tempdir().unwrap();
        let (st, _) = state(dir.path(), |c| {
            c.capacity.max_pending_response_bytes = 1 << 20;
            c.capacity.retry_after_seconds = 3;
        });
        let app = app(st.clone());
        let get = || {
            Request::builder()
                .uri("/metrics")
                .body(Body::empty())
                .unwrap()
        };
        let budget = &st.capacity.responses;

        // A scrape's text waits under the budget until its body is read to the end.
        let r = app.clone().oneshot(get()).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(budget.available.load(Ordering::Acquire) < 1 << 20);
        let text = r.into_body().collect().await.unwrap().to_bytes();
        assert!(text.starts_with(b"# HELP"));
        assert_eq!(budget.available.load(Ordering::Acquire), 1 << 20);

        // With the budget taken, the next one gets 503 with Retry-After, counted.
        let held = budget.take(usize::MAX).unwrap();
        let r = app.clone().oneshot(get()).await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
        assert!(st
            .metrics
            .render(0)
            .contains("vouch_overload_rejections_total{reason=\"response_bytes\"} 1"));
        // A body dropped unread (a closed connection) gives its bytes back too.
        drop(held);
        let r = app.clone().oneshot(get()).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        drop(r);
        assert_eq!(budget.available.load(Ordering::Acquire), 1 << 20);
    }

    #[test]
    fn route_classes() {
        let c = |m: Method, p: &str| route_class(&m, p);
        assert_eq!(
            c(Method::GET, "/v2/a/b/_trust/tuf/targets.json"),
            "metadata"
        );
        assert_eq!(c(Method::GET, "/v2/a/_trust/tuf/timestamp.key"), "key");
        assert_eq!(c(Method::POST, "/v2/a/_trust/tuf/"), "publish");
        assert_eq!(c(Method::DELETE, "/v2/a/_trust/tuf/"), "delete");
        assert_eq!(c(Method::GET, "/v2/_trust/changefeed"), "changefeed");
        assert_eq!(c(Method::GET, "/metrics"), "metrics");
        assert_eq!(c(Method::GET, "/nope"), "other");
    }
}
