//! Warm verifier state per (trust server, GUN): when to refresh, what to trust meanwhile.
//!
//! Each repository gets one [`Repo`]: a [`vouch_verifier::Updater`] of the last successful
//! refresh, kept in memory and answered from (its lookups are cached until the next
//! refresh). The rules:
//!
//! - a refresh runs at most once per refresh interval per repository; concurrent requests
//!   that find the state stale wait for the one refresh in flight (single flight) and use
//!   its result;
//! - a refresh builds a fresh updater and swaps it in only when the whole TUF update
//!   succeeded, so a failed verification is never remembered as trust;
//! - after a failed refresh the previous trusted metadata keeps answering only while none
//!   of it has expired (checked against the clock on every answer), and the failure itself
//!   is remembered for at most one interval, after which the next request tries again;
//! - with no trusted state at all, requests are denied with the refresh error.
//!
//! Verifier calls block (HTTP fetches, file reads): callers run them on a blocking thread.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use thiserror::Error;
use vouch_tuf::reference::{Digest, Gun};
use vouch_tuf::time::Timestamp;
use vouch_verifier::cache::{Durability, MetadataStore};
use vouch_verifier::clock::Clock;
use vouch_verifier::transport::{
    DirectoryTransport, HttpOptions, HttpTransport, Transport, TransportError,
};
use vouch_verifier::{ImageTarget, Updater};

use crate::metrics::Metrics;
use crate::policy::TrustSource;

/// Why a repository could not answer.
#[derive(Debug, Error, Clone)]
pub enum TrustError {
    /// The trust server could not be reached and nothing trusted is usable.
    #[error("trust server unreachable: {0}")]
    Unreachable(String),
    /// The trust server has no trust data for the repository (it was never signed, or its
    /// trust data was deleted).
    #[error("no trust data on the trust server ({0})")]
    NoTrustData(String),
    /// Trust metadata failed verification (bad signature, rollback, expired, …).
    #[error("trust metadata rejected: {0}")]
    Rejected(String),
    /// The last trusted metadata expired while the server could not be reached.
    #[error("trusted metadata expired at {expired}; refresh failed: {cause}")]
    Expired {
        /// Earliest expiry of the trusted metadata.
        expired: Timestamp,
        /// Why the refresh failed.
        cause: String,
    },
    /// The pinned root or the cache could not be set up.
    #[error("cannot set up trust for {0}")]
    Setup(String),
}

impl TrustError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            TrustError::Unreachable(_) => "unreachable",
            TrustError::NoTrustData(_) => "no_trust_data",
            TrustError::Rejected(_) => "metadata_rejected",
            TrustError::Expired { .. } => "expired",
            TrustError::Setup(_) => "setup",
        }
    }
}

/// Fetches metadata over HTTP(S) from a vouch server, or from a directory (`file://`).
#[derive(Debug)]
pub enum RepoTransport {
    /// A vouch server.
    Http(HttpTransport),
    /// A local directory holding the repository's metadata files.
    Dir(DirectoryTransport),
}

impl Transport for RepoTransport {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        match self {
            RepoTransport::Http(t) => t.fetch(path, max_len),
            RepoTransport::Dir(t) => t.fetch(path, max_len),
        }
    }
}

/// Identifies one repository.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RepoKey {
    /// Trust server base URL.
    pub server: String,
    /// The GUN.
    pub gun: Gun,
}

struct Current {
    updater: Updater<RepoTransport>,
    /// Earliest expiry among the trusted top-level metadata.
    expires: Timestamp,
}

#[derive(Default)]
struct State {
    current: Option<Arc<Mutex<Current>>>,
    /// When the last refresh attempt finished, and its error if it failed.
    last_attempt: Option<(Instant, Option<TrustError>)>,
}

/// One repository's warm state.
pub struct Repo {
    key: RepoKey,
    root: Vec<u8>,
    cache_dir: PathBuf,
    state: Mutex<State>,
    refresh: Mutex<()>,
}

/// Settings shared by every repository.
#[derive(Clone)]
pub struct TrustConfig {
    /// Where trusted metadata is cached on disk (per server and GUN below it).
    pub cache_dir: PathBuf,
    /// Minimum time between refreshes of one repository.
    pub refresh_interval: Duration,
    /// HTTP fetch timeout (keep it below the decision deadline).
    pub fetch_timeout: Duration,
    /// Reference time for expiry.
    pub clock: Arc<dyn Clock>,
}

/// Every repository the webhook has seen.
pub struct TrustCache {
    config: TrustConfig,
    repos: Mutex<HashMap<(RepoKey, String), Arc<Repo>>>,
    metrics: Arc<Metrics>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl TrustCache {
    /// An empty cache.
    pub fn new(config: TrustConfig, metrics: Arc<Metrics>) -> Self {
        TrustCache {
            config,
            repos: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// The repository for `key` trusting the root pinned in `source`, created on first use.
    ///
    /// Two policy rules pinning different roots for the same repository get separate
    /// state and separate on-disk caches (below a directory named after the root's hash),
    /// and a changed pinned root starts from itself rather than from what the old one led to.
    pub fn repo(&self, key: &RepoKey, source: &TrustSource) -> Arc<Repo> {
        let mut repos = lock(&self.repos);
        let id = (key.clone(), source.root_id.clone());
        if let Some(r) = repos.get(&id) {
            return r.clone();
        }
        repos
            .entry(id)
            .or_insert_with(|| {
                Arc::new(Repo {
                    key: key.clone(),
                    root: source.root.clone(),
                    cache_dir: self.config.cache_dir.join(&source.root_id),
                    state: Mutex::new(State::default()),
                    refresh: Mutex::new(()),
                })
            })
            .clone()
    }

    /// Runs `f` on the repository's trusted state, refreshing first if due. Blocking.
    pub fn with_trusted<R>(
        &self,
        repo: &Repo,
        f: impl FnOnce(&mut Updater<RepoTransport>) -> R,
    ) -> Result<R, TrustError> {
        let current = self.current(repo)?;
        let mut cur = lock(&current);
        let now = self.config.clock.now();
        if cur.expires <= now {
            let cause = lock(&repo.state)
                .last_attempt
                .as_ref()
                .and_then(|(_, e)| e.as_ref().map(ToString::to_string))
                .unwrap_or_else(|| "refresh pending".to_owned());
            return Err(TrustError::Expired {
                expired: cur.expires,
                cause,
            });
        }
        Ok(f(&mut cur.updater))
    }

    fn current(&self, repo: &Repo) -> Result<Arc<Mutex<Current>>, TrustError> {
        let interval = self.config.refresh_interval;
        let fresh = |st: &State| match &st.last_attempt {
            Some((at, err)) if at.elapsed() < interval => match (&st.current, err) {
                (Some(c), _) => Some(Ok(c.clone())),
                (None, Some(e)) => Some(Err(e.clone())),
                (None, None) => None,
            },
            _ => None,
        };
        if let Some(r) = fresh(&lock(&repo.state)) {
            self.metrics.cache_hit();
            return r;
        }
        // Single flight: one refresh per repository at a time; whoever waited uses the
        // result of the refresh that finished meanwhile.
        let _flight = lock(&repo.refresh);
        if let Some(r) = fresh(&lock(&repo.state)) {
            self.metrics.cache_hit();
            return r;
        }
        let result = self.refresh(repo);
        self.metrics.refresh(result.is_ok());
        let mut st = lock(&repo.state);
        match result {
            Ok(cur) => {
                let cur = Arc::new(Mutex::new(cur));
                st.current = Some(cur.clone());
                st.last_attempt = Some((Instant::now(), None));
                Ok(cur)
            }
            Err(e) => {
                tracing::warn!(server = %repo.key.server, gun = %repo.key.gun, error = %e, "refresh failed");
                // Metadata that failed verification, or trust data the server no longer
                // has, withdraws trust at once; an unreachable server leaves the last
                // trusted state in place (usable only until it expires).
                if matches!(e, TrustError::Rejected(_) | TrustError::NoTrustData(_)) {
                    st.current = None;
                }
                st.last_attempt = Some((Instant::now(), Some(e.clone())));
                match &st.current {
                    Some(c) => Ok(c.clone()),
                    None => Err(e),
                }
            }
        }
    }

    fn refresh(&self, repo: &Repo) -> Result<Current, TrustError> {
        let setup = |e: &dyn std::fmt::Display| TrustError::Setup(format!("{}: {e}", repo.key.gun));
        let store =
            MetadataStore::for_repository(&repo.cache_dir, &repo.key.server, repo.key.gun.as_str())
                .map_err(|e| setup(&e))?
                .with_durability(Durability::NoSync);
        if store
            .load(&vouch_tuf::types::TopLevelRole::Root.name(), 1 << 20)
            .map_err(|e| setup(&e))?
            .is_none()
        {
            Updater::<RepoTransport>::pin_root(&store, &repo.root).map_err(|e| setup(&e))?;
        }
        let transport = transport_for(&repo.key, self.config.fetch_timeout)?;
        let mut updater = Updater::new(store, transport)
            .with_clock(self.config.clock.clone())
            .with_gun(repo.key.gun.clone());
        updater.refresh().map_err(classify)?;
        let set = updater
            .trusted()
            .ok_or_else(|| TrustError::Rejected("refresh left no trusted set".to_owned()))?;
        let mut expires = set.root().signed().common.expires;
        if let Some(t) = set.timestamp() {
            expires = expires.min(t.signed().common.expires);
        }
        if let Some(s) = set.snapshot() {
            expires = expires.min(s.signed().common.expires);
        }
        if let Some(t) = set.targets() {
            expires = expires.min(t.signed().common.expires);
        }
        Ok(Current { updater, expires })
    }
}

fn classify(e: vouch_verifier::Error) -> TrustError {
    match e {
        vouch_verifier::Error::Transport(t) if t.is_not_found() => {
            TrustError::NoTrustData(t.to_string())
        }
        vouch_verifier::Error::Transport(t) => TrustError::Unreachable(t.to_string()),
        vouch_verifier::Error::Cache(c) => TrustError::Setup(c.to_string()),
        other => TrustError::Rejected(other.to_string()),
    }
}

/// The transport of a repository: `http(s)://server/v2/{gun}/_trust/tuf/`, or
/// `file:///dir/{gun}/` for metadata on disk.
fn transport_for(key: &RepoKey, timeout: Duration) -> Result<RepoTransport, TrustError> {
    if let Some(dir) = key.server.strip_prefix("file://") {
        return Ok(RepoTransport::Dir(DirectoryTransport::new(
            PathBuf::from(dir).join(key.gun.as_str()),
        )));
    }
    let options = HttpOptions {
        connect_timeout: timeout.min(Duration::from_secs(2)),
        timeout,
        ..HttpOptions::default()
    };
    let url = format!("{}/v2/{}/_trust/tuf/", key.server, key.gun);
    HttpTransport::new(&url, &options)
        .map(RepoTransport::Http)
        .map_err(|e| TrustError::Setup(e.to_string()))
}

impl Repo {
    /// The repository's key.
    pub fn key(&self) -> &RepoKey {
        &self.key
    }
}

/// Looks `tag` up (blocking).
pub fn lookup(
    cache: &TrustCache,
    repo: &Repo,
    tag: &str,
) -> Result<Option<ImageTarget>, TrustError> {
    cache
        .with_trusted(repo, |u| u.lookup(tag))?
        .map_err(classify)
}

/// Checks whether `digest` is signed (blocking).
pub fn is_trusted(cache: &TrustCache, repo: &Repo, digest: &Digest) -> Result<bool, TrustError> {
    cache
        .with_trusted(repo, |u| u.is_trusted(digest))?
        .map_err(classify)
}

/// The signing role paths under which `digest` is trusted: for each target carrying it in
/// any loaded role, the path the delegation search gives for that target's name (so
/// delegation order, paths and terminating roles apply). Call after [`is_trusted`] returned
/// true, which loads every reachable role. Blocking.
pub fn digest_role_paths(
    cache: &TrustCache,
    repo: &Repo,
    digest: &Digest,
) -> Result<Vec<Vec<String>>, TrustError> {
    cache
        .with_trusted(repo, |u| {
            let mut names: Vec<String> = Vec::new();
            if let Some(set) = u.trusted() {
                let top = set.targets().into_iter();
                let delegated = set.delegated_roles().map(|(_, _, role)| role);
                for role in top.chain(delegated) {
                    for (name, t) in &role.signed().targets {
                        if t.has_digest(digest) && !names.iter().any(|n| n == name.as_str()) {
                            names.push(name.as_str().to_owned());
                        }
                    }
                }
            }
            let mut paths = Vec::new();
            for name in names {
                if let Some(found) = u.target(&name)? {
                    if found.target.has_digest(digest) {
                        paths.push(
                            found
                                .role_path
                                .iter()
                                .map(|r| r.as_str().to_owned())
                                .collect(),
                        );
                    }
                }
            }
            Ok(paths)
        })?
        .map_err(classify)
}
