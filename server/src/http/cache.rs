//! The read cache and the cached fast path, as one layer: recently read current metadata
//! held in memory ([`ReadCache`]), answered before the router when it can be
//! ([`serve_cached`]), and the file responses both paths give ([`file_response`]).
//!
//! Current metadata is served from an in-memory cache bounded in bytes for up to a second;
//! a publish or delete through this process drops the repository's entries before it
//! answers, and a read that a write (re-signing included) may have overtaken is not cached,
//! so a client never reads older metadata after a newer one. The current timestamp and
//! snapshot are served from it only while the service says nothing is due for re-signing.
//! Cached reads are answered by [`serve_cached`] before the router and middleware, with the
//! same response, authorisation, request id, in-flight cap and metrics as [`get`], the
//! router's handler of metadata reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use vouch_tuf::reference::Gun;

use super::auth::authorize;
use super::middleware::{finish, log_outcome, request_id, request_span};
use super::{blocking, AppState};
use crate::auth::{Action, Target};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::routes::{self, FileRef, Route};

/// A metadata file as served.
#[derive(Clone)]
pub(super) struct CachedFile {
    role: String,
    bytes: axum::body::Bytes,
    /// `"<sha256>"`, ready to send.
    etag: HeaderValue,
}

impl CachedFile {
    pub(super) fn new(role: String, sha256: &str, bytes: Vec<u8>) -> Arc<Self> {
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
pub(super) const READ_CACHE_TTL: Duration = Duration::from_secs(1);
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
pub(super) struct ReadCache {
    generation: AtomicU64,
    /// Most bytes held.
    budget: usize,
    state: Mutex<CacheState>,
    metrics: Arc<Metrics>,
}

/// The entries of a [`ReadCache`] and what they cost.
#[derive(Default)]
pub(super) struct CacheState {
    pub(super) entries: HashMap<String, RolesCache>,
    /// The sum of the entries' [`CachedFile::cost`].
    bytes: usize,
    /// When expired entries were last released.
    swept: Option<Instant>,
}

/// One repository's cached roles, with when each was read and the service's write generation
/// at the time.
pub(super) type RolesCache = HashMap<String, (Instant, u64, Arc<CachedFile>)>;

impl CachedFile {
    /// What holding this file as a current role of `gun` costs the cache, in bytes.
    fn cost(&self, gun: &str) -> usize {
        self.bytes.len() + self.role.len() + self.etag.len() + gun.len() + READ_CACHE_ENTRY_OVERHEAD
    }
}

impl ReadCache {
    /// An empty cache of at most `budget` bytes that reports what it holds to `metrics`.
    pub(super) fn new(budget: usize, metrics: Arc<Metrics>) -> Self {
        ReadCache {
            generation: AtomicU64::new(0),
            budget,
            state: Mutex::default(),
            metrics,
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached file, if it is younger than the TTL and no write by the service happened
    /// since it was read (`writes` is [`Service::write_generation`] now).
    pub(super) fn get(&self, gun: &str, role: &str, writes: u64) -> Option<Arc<CachedFile>> {
        let state = self.lock();
        let (at, seen_writes, f) = state.entries.get(gun)?.get(role)?;
        (at.elapsed() < READ_CACHE_TTL && *seen_writes == writes).then(|| f.clone())
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches `f` as the current file of its role of `gun`, read when the generation was
    /// `seen` and the service's write generation `writes`, if it fits.
    pub(super) fn insert(&self, seen: u64, writes: u64, gun: &str, f: Arc<CachedFile>) {
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
    pub(super) fn sweep(&self) {
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

    pub(super) fn invalidate(&self, gun: &str) {
        let mut state = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(roles) = state.entries.remove(gun) {
            let freed: usize = roles.values().map(|(_, _, f)| f.cost(gun)).sum();
            state.bytes -= freed;
            self.metrics.read_cache_bytes(state.bytes);
        }
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

/// A GET or HEAD of a metadata file: from the read cache when it can, else from the
/// service (caching a current file read that no write overtook).
pub(super) async fn get(
    st: &AppState,
    parts: &Parts,
    gun: Gun,
    file: FileRef,
) -> Result<Response, AppError> {
    let headers = &parts.headers;
    authorize(st, headers, Target::Gun(&gun), Action::Pull)?;
    let immutable = !matches!(file, FileRef::Current(_));
    let cacheable = matches!(&file, FileRef::Current(_));
    if let FileRef::Current(role) = &file {
        if let Some(f) = cached_current(st, &gun, role) {
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
/// A file as both paths answer it: its tag, caching headers by kind (immutable by version or
/// checksum, `no-cache` for the current timestamp), and 304 when the client holds it.
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
