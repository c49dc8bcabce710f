//! Warm verifier state per (trust server, GUN): when to refresh, what to trust meanwhile.
//!
//! Each repository gets one [`Repo`]: a [`vouch_verifier::Updater`] of the last successful
//! refresh, kept in memory and answered from (its lookups are cached until the next
//! refresh) — or, for a repository read from a Notary v1 server ([`RepoAnchor::Notary`]),
//! the verified Notary collection, refreshed by `notary::refresh` under exactly the
//! rules below, with its Notary versions kept across refreshes. The rules:
//!
//! - a refresh runs at most once per refresh interval per repository, one at a time
//!   (single flight); a request that finds the state stale while a refresh is in flight
//!   answers from the last trusted state when it is unexpired, and otherwise (a repository
//!   with no usable state yet, or a state superseded by an event) waits for that refresh,
//!   as one of at most [`TrustConfig::max_waiters`] waiters ([`TrustError::Busy`] beyond
//!   them), until its deadline;
//! - a trust-change event for the repository ([`TrustCache::supersede`], from
//!   [`crate::events`]) marks its trusted state *superseded*: its remembered verdicts are
//!   dropped, a refresh is due at once whatever the interval (and one is started in the
//!   background, [`TrustCache::refresh_superseded`]), and the state is not answered from
//!   while that refresh is in flight. A refresh that started after the event clears the mark
//!   when it finishes, successful or not; after a failed one the rules below apply as
//!   always (the last trusted state answers while unexpired, unless the failure withdrew
//!   trust). A refresh already in flight when the event came does not clear it: the next
//!   request refreshes again;
//! - every fetch of a refresh or a lookup is bounded by the request's deadline (and each by
//!   [`TrustConfig::fetch_timeout`]): a server that answers too slowly, or trickles bytes,
//!   fails the refresh like an unreachable one, leaving the last trusted state in place;
//! - a refresh builds a fresh updater and swaps it in only when the whole TUF update
//!   succeeded, so a failed verification is never remembered as trust;
//! - after a failed refresh the previous trusted metadata keeps answering only while none
//!   of it has expired (checked against the clock on every answer), and the failure itself
//!   is remembered for at most one interval, after which the next request tries again;
//! - with no trusted state at all, requests are denied with the refresh error.
//!
//! Where a refresh reads the metadata files is the rule's `source` ([`Fetch`]): the trust
//! server, the trust artifact in the image's registry repository, or the server and that
//! artifact while the server is unreachable (a fallback logged and counted once per change,
//! not once per refresh). What rollback protection starts from — the trusted state on
//! disk — is kept per anchor and canonical GUN (`<anchor id>/<GUN>/` below the cache directory), never
//! per server, source or rule: a `server` rule, a `server-then-registry` rule and a
//! `registry` rule (keyed in memory under [`crate::policy::REGISTRY_ONLY`] when it names no
//! server) that anchor one GUN alike share it, as do two copies of one repository's trust (a
//! build and a promoted repository, mapped by `trust_from`). So whichever rule or source
//! verified the newer state, an older one read by another is refused as a rollback; and a
//! registry copy is checked exactly as the server's files, from the same pinned root. In
//! memory each rule keeps its own entry ([`RepoKey`] also names the server and the registry
//! repository read), but every refresh starts from what is on disk, whichever entry wrote it
//! last; entries sharing a directory share one refresh flight, so no two write it at once;
//! and a trust-change event for the GUN marks all of them superseded. Rules or pins
//! anchoring one GUN differently keep separate state.
//!
//! Verifier calls block (HTTP fetches, file reads): callers run them on a blocking thread.
//! [`TrustCache::prepare`] runs a due refresh before that, from async code: the refresh gets
//! one blocking thread, and requests waiting for it hold none, so a repository whose server
//! is slow cannot use up the blocking threads that requests for other repositories need.
//! What does not block is [`TrustCache::warm`]: the verdict already reached for an image
//! from the repository's current trusted state, while that state is fresh (no refresh due)
//! and unexpired. Only admitting verdicts are remembered, per trusted state, and dropped
//! with it, so nothing failed is answered from there.
//!
//! Repositories nobody asked about for [`TrustConfig::idle_expiry`] are dropped from
//! memory, and beyond [`TrustConfig::max_repositories`] the least recently used of those no
//! request is using are; the next request for a dropped repository refreshes it again
//! (from its on-disk cache, so rollback protection is kept).
//!
//! On disk, a repository keeps a directory only once it holds trusted state beyond the
//! pinned root: a refresh that fails while the directory holds nothing but that root
//! removes it, and [`TrustCache::discard_untrusted_dirs`] removes
//! such leftovers at startup. Directories with trusted state are never removed by the
//! webhook (not on a 404, a failed refresh or a repository dropped from memory): they are
//! what rollback protection starts from, and only repositories whose trust data verified
//! have them.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use thiserror::Error;
use vouch_tuf::reference::{Digest, Gun, ImageRef};
use vouch_tuf::time::Timestamp;
use vouch_verifier::cache::{Durability, MetadataStore};
use vouch_verifier::clock::Clock;
use vouch_verifier::pins::Anchor;
use vouch_verifier::registry::RegistryRepo;
use vouch_verifier::transport::{
    DirectoryTransport, FallbackTransport, HttpOptions, HttpTransport, OciTransport, Transport,
    TransportError,
};
use vouch_verifier::{DelegationPath, Updater, Vouched};

use crate::credentials::ServerToken;
use crate::metrics::Metrics;
use crate::policy::NotaryRoot;
use crate::registry::RegistryClients;
use crate::review::Verdict;
use vouch_verifier::notary::NotaryState;

/// Why a repository could not answer.
#[derive(Debug, Error, Clone)]
pub enum TrustError {
    /// The trust server could not be reached and nothing trusted is usable.
    #[error("trust server unreachable: {0}")]
    Unreachable(String),
    /// The trust server refused the webhook's request for want of a token, or refused the
    /// token sent (HTTP 401, or 403 to a request with a token), and nothing trusted is
    /// usable. Like an unreachable server, it leaves the last trusted state answering
    /// until that expires: it says nothing about the trust data.
    #[error("not authorised: {0}")]
    NotAuthorised(String),
    /// The trust server has no trust data for the repository (it was never signed, or its
    /// trust data was deleted).
    #[error("no trust data on the trust server ({0})")]
    NoTrustData(String),
    /// Trust metadata failed verification (bad signature, rollback, expired, …).
    #[error("trust metadata rejected: {0}")]
    Rejected(String),
    /// A Notary server served a timestamp, snapshot, targets or root older than one this
    /// webhook already trusted for the repository (a rollback, or a replica serving stale
    /// data): trust is withdrawn until it serves the newer state again.
    #[error("the Notary server rolled back: {0}")]
    NotaryRollback(String),
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
    /// As many requests as allowed already wait for the repository (for its refresh in
    /// flight, when it has no usable trusted state, or for its trusted state while another
    /// request reads it).
    #[error("{0} requests already wait for this repository's trust data, the most allowed")]
    Busy(usize),
}

impl TrustError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            TrustError::Unreachable(_) => "unreachable",
            TrustError::NotAuthorised(_) => "not_authorised",
            TrustError::NoTrustData(_) => "no_trust_data",
            TrustError::Rejected(_) => "metadata_rejected",
            TrustError::NotaryRollback(_) => "notary_rollback",
            TrustError::Expired { .. } => "expired",
            TrustError::Setup(_) => "setup",
            TrustError::Busy(_) => "busy",
        }
    }
}

/// The registry copy of a repository's trust: the trust artifact in one registry
/// repository.
pub type RegistryCopy = OciTransport<RegistryRepo>;

/// Fetches metadata over HTTP(S) from a vouch server, from a directory (`file://`), from
/// the registry copy, or from a server and the registry copy while the server is
/// unreachable.
#[derive(Debug)]
pub enum RepoTransport {
    /// A vouch server.
    Http(HttpTransport),
    /// A local directory holding the repository's metadata files.
    Dir(DirectoryTransport),
    /// The trust artifact in a registry repository.
    Registry(RegistryCopy),
    /// A vouch server (or directory), else the registry copy (shared, so that the refresh
    /// can tell whether it fell back).
    Fallback(Arc<FallbackTransport<RepoTransport, RegistryCopy>>),
}

impl Transport for RepoTransport {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        match self {
            RepoTransport::Http(t) => t.fetch(path, max_len),
            RepoTransport::Dir(t) => t.fetch(path, max_len),
            RepoTransport::Registry(t) => t.fetch(path, max_len),
            RepoTransport::Fallback(t) => t.fetch(path, max_len),
        }
    }

    fn fetch_by(
        &self,
        path: &str,
        max_len: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
        match self {
            RepoTransport::Http(t) => t.fetch_by(path, max_len, deadline),
            RepoTransport::Dir(t) => t.fetch_by(path, max_len, deadline),
            RepoTransport::Registry(t) => t.fetch_by(path, max_len, deadline),
            RepoTransport::Fallback(t) => t.fetch_by(path, max_len, deadline),
        }
    }
}

/// The time one request has: when it started, and when its work must be over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// When the request started: a refresh attempt that finished since then is recent
    /// enough for it, whatever the refresh interval (so a request never causes two).
    pub started: Instant,
    /// No fetch for the request starts after this, and none lasts past it.
    pub at: Instant,
}

impl Deadline {
    /// A request starting now with `budget` to go.
    pub fn after(budget: Duration) -> Self {
        let started = Instant::now();
        let at = started
            .checked_add(budget)
            .or_else(|| started.checked_add(Duration::from_secs(86_400)))
            .unwrap_or(started);
        Deadline { started, at }
    }
}

/// Identifies one repository as read by one rule: its trusted state on disk is keyed by
/// its anchor and `gun` only, whatever `server` and `fetch` say (see the module
/// documentation).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RepoKey {
    /// Trust server base URL ([`crate::policy::REGISTRY_ONLY`] for a registry-only rule
    /// without one).
    pub server: String,
    /// The GUN.
    pub gun: Gun,
    /// Where its metadata files are fetched.
    pub fetch: Fetch,
}

/// Where a repository's metadata files are fetched (`source = …` of its rule).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fetch {
    /// From the trust server.
    #[default]
    Server,
    /// From the trust artifact in `registry`'s `repository` (the image's own).
    Registry {
        /// `host[:port]`.
        registry: String,
        /// The repository path.
        repository: String,
    },
    /// From the trust server, else from the trust artifact in `registry`'s `repository`.
    ServerThenRegistry {
        /// `host[:port]`.
        registry: String,
        /// The repository path.
        repository: String,
    },
}

impl Fetch {
    /// The registry repository read, if any.
    fn registry_copy(&self) -> Option<(&str, &str)> {
        match self {
            Fetch::Server => None,
            Fetch::Registry {
                registry,
                repository,
            }
            | Fetch::ServerThenRegistry {
                registry,
                repository,
            } => Some((registry, repository)),
        }
    }
}

/// What a refresh needs to reach a repository's sources: the token for its trust server,
/// and the registry clients of the policy in force.
#[derive(Clone)]
pub(crate) struct Reach {
    pub(crate) token: Option<Arc<ServerToken>>,
    pub(crate) registries: Arc<RegistryClients>,
}

pub(crate) struct Current {
    trusted: Trusted,
    /// Earliest expiry among the trusted top-level metadata.
    expires: Timestamp,
    /// When the trusted root and targets expire (for metrics and warnings).
    expiring: RoleExpiries,
}

/// When roles expire, by role (`root`, `targets`).
pub(crate) type RoleExpiries = Vec<(&'static str, Timestamp)>;

/// The trusted state of a repository, by the dialect its trust server speaks.
enum Trusted {
    /// A vouch server (or a directory): a TUF 1.0 updater, which fetches delegated roles
    /// as lookups need them.
    Tuf(Box<Updater<RepoTransport>>),
    /// A Notary v1 server: the whole verified collection (Notary's client loads every
    /// delegated role on each update).
    Notary(vouch_verifier::notary::NotaryCollection),
}

/// Where a repository's trust starts.
#[derive(Clone, Debug)]
pub enum RepoAnchor {
    /// A vouch repository: a pinned root, or pinned root keys.
    Tuf(Anchor),
    /// A Notary v1 repository: the Notary root the policy pins for it.
    Notary(NotaryRoot),
}

impl RepoAnchor {
    /// Names the anchor in the cache's keys and directories ([`Anchor::id`], or
    /// [`NotaryRoot::id`]).
    pub fn id(&self) -> String {
        match self {
            RepoAnchor::Tuf(a) => a.id(),
            RepoAnchor::Notary(r) => r.id().to_owned(),
        }
    }
}

/// Most verdicts remembered per trusted state of one repository.
const MAX_REMEMBERED: usize = 1024;

#[derive(Default)]
struct State {
    current: Option<Arc<Mutex<Current>>>,
    /// The expiry of `current` (copied so that warm answers need not lock it).
    expires: Option<Timestamp>,
    /// Bumped whenever `current` changes or is superseded.
    generation: u64,
    /// Admitting verdicts reached from `current`, by image reference (trimmed).
    remembered: HashMap<String, Verdict>,
    /// When the last refresh attempt finished, and its error if it failed.
    last_attempt: Option<(Instant, Option<TrustError>)>,
    /// Trust-change events noted for the repository so far ([`TrustCache::supersede`]).
    marks: u64,
    /// `Some(mark)` while `current` is superseded by the event numbered `mark`: not
    /// answered from until a refresh that started after that event finishes.
    superseded: Option<u64>,
}

impl State {
    fn set_current(&mut self, current: Option<Arc<Mutex<Current>>>, expires: Option<Timestamp>) {
        self.current = current;
        self.expires = expires;
        self.generation += 1;
        self.remembered.clear();
    }
}

/// Which trusted state of a repository answers were reached from (see
/// [`TrustCache::generation`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generation(u64);

/// One repository's warm state.
pub struct Repo {
    key: RepoKey,
    /// Where its trust starts: a pinned root, or root keys its first root must be signed by;
    /// or a pinned Notary root.
    anchor: RepoAnchor,
    /// For a Notary repository: the latest root and versions trusted (kept across refreshes
    /// whatever their outcome, and on disk), so that a server rolling back is caught.
    notary_state: Mutex<Option<NotaryState>>,
    cache_dir: PathBuf,
    state: Mutex<State>,
    /// Signalled (with `state`) whenever a refresh attempt finishes.
    refreshed: Condvar,
    /// Held by the one refresh in flight (an async mutex: waiting for it in
    /// [`TrustCache::prepare`] holds no thread). Shared by every entry whose state is kept
    /// in the same directory ([`Repo::dir`]): one refresh writes it at a time.
    refresh: Arc<tokio::sync::Mutex<()>>,
    /// Requests waiting for the refresh in flight (bounded by [`TrustConfig::max_waiters`]).
    waiters: AtomicUsize,
    /// Milliseconds since the cache's epoch when it was last asked for.
    last_used: AtomicU64,
    /// When the last warning about its metadata expiring soon was logged.
    expiry_warned: Mutex<Option<Instant>>,
    /// Whether its last refresh read the registry copy because the trust server was
    /// unreachable (`server-then-registry`), so a change is logged and counted once.
    falling_back: std::sync::atomic::AtomicBool,
}

/// One place among a repository's waiters, given back when dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    /// A place among at most `max` waiters, or `None` when they are all taken.
    fn enter(waiters: &'a AtomicUsize, max: usize) -> Option<Self> {
        waiters
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Waiting(waiters))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Settings shared by every repository.
#[derive(Clone)]
pub struct TrustConfig {
    /// Where trusted metadata is cached on disk (per anchor and GUN below it).
    pub cache_dir: PathBuf,
    /// Minimum time between refreshes of one repository.
    pub refresh_interval: Duration,
    /// Longest one HTTP fetch may take, body included (each fetch is also cut off at the
    /// request's deadline, whichever comes first).
    pub fetch_timeout: Duration,
    /// Reference time for expiry.
    pub clock: Arc<dyn Clock>,
    /// A repository not asked about for this long is dropped from memory (and refreshed
    /// again on its next use). [`TrustConfig::new`] sets max(10 × refresh interval, 10 min).
    pub idle_expiry: Duration,
    /// Most repositories kept in memory: beyond it the least recently used ones that no
    /// request is using are dropped.
    pub max_repositories: usize,
    /// Most requests that wait for one repository's refresh in flight when it has no usable
    /// trusted state (a request for a repository with unexpired trusted state never waits:
    /// it answers from that state, unless an event superseded it,
    /// [`TrustCache::supersede`]). Beyond it requests are denied at once
    /// ([`TrustError::Busy`]).
    pub max_waiters: usize,
    /// Most distinct repositories one review may need verified; a review naming more is
    /// denied before any trust data is fetched.
    pub max_repositories_per_review: usize,
    /// Most distinct image references one review may name; a review naming more is denied
    /// before any of them is looked at.
    pub max_images_per_review: usize,
}

/// Default [`TrustConfig::max_repositories`].
pub const DEFAULT_MAX_REPOSITORIES: usize = 4096;
/// Default [`TrustConfig::max_waiters`].
pub const DEFAULT_MAX_WAITERS: usize = 64;
/// Default [`TrustConfig::max_repositories_per_review`].
pub const DEFAULT_MAX_REPOSITORIES_PER_REVIEW: usize = 32;
/// Default [`TrustConfig::max_images_per_review`].
pub const DEFAULT_MAX_IMAGES_PER_REVIEW: usize = 256;

impl TrustConfig {
    /// Settings with the default idle expiry and repository cap.
    pub fn new(
        cache_dir: PathBuf,
        refresh_interval: Duration,
        fetch_timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        TrustConfig {
            cache_dir,
            refresh_interval,
            fetch_timeout,
            clock,
            idle_expiry: Self::default_idle_expiry(refresh_interval),
            max_repositories: DEFAULT_MAX_REPOSITORIES,
            max_waiters: DEFAULT_MAX_WAITERS,
            max_repositories_per_review: DEFAULT_MAX_REPOSITORIES_PER_REVIEW,
            max_images_per_review: DEFAULT_MAX_IMAGES_PER_REVIEW,
        }
    }

    /// The default idle expiry for `refresh_interval`: max(10 × it, 10 min).
    pub fn default_idle_expiry(refresh_interval: Duration) -> Duration {
        refresh_interval
            .saturating_mul(10)
            .max(Duration::from_secs(600))
    }
}

type RepoMap = HashMap<(RepoKey, String), Arc<Repo>>;

/// Every repository the webhook has seen (and not dropped for being idle).
pub struct TrustCache {
    config: Arc<TrustConfig>,
    repos: Mutex<RepoMap>,
    metrics: Arc<Metrics>,
    /// Origin of [`Repo::last_used`].
    epoch: Instant,
    /// When (milliseconds since `epoch`) idle repositories are next looked for.
    next_sweep: AtomicU64,
    /// The repository each image reference (trimmed) was last mapped to by the policy, so
    /// warm answers skip parsing, rule matching and GUN mapping. Weak: a dropped repository
    /// is mapped again. Cleared when the policy changes ([`TrustCache::set_policy`]).
    by_image: RwLock<HashMap<String, Weak<Repo>>>,
    /// The token sent to each trust server, by URL (the policy's `[[server]]` tables).
    tokens: RwLock<BTreeMap<String, Arc<ServerToken>>>,
    /// The clients of the registries holding trust artifacts (the policy's `[[registry]]`
    /// tables).
    registries: RwLock<Arc<RegistryClients>>,
    /// Bumped whenever the policy changes: verdicts reached under an earlier policy are not
    /// remembered.
    policy_epoch: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl TrustCache {
    /// An empty cache.
    pub fn new(config: TrustConfig, metrics: Arc<Metrics>) -> Self {
        let config_timeout = config.fetch_timeout;
        TrustCache {
            config: Arc::new(config),
            repos: Mutex::new(HashMap::new()),
            metrics,
            epoch: Instant::now(),
            next_sweep: AtomicU64::new(0),
            by_image: RwLock::new(HashMap::new()),
            tokens: RwLock::new(BTreeMap::new()),
            registries: RwLock::new(Arc::new(RegistryClients::new(
                crate::policy::RegistryAccess::default(),
                config_timeout,
            ))),
            policy_epoch: AtomicU64::new(0),
        }
    }

    /// Takes on a new policy's registry access (`insecure_registries`, `[[registry]]`):
    /// refreshes from now on read registry copies with clients built for it. The clients
    /// of the previous access are kept when it is unchanged (they hold grants).
    pub fn set_registries(&self, access: &crate::policy::RegistryAccess) {
        let mut current = self.registries.write().unwrap_or_else(|p| p.into_inner());
        if current.access() != access {
            *current = Arc::new(RegistryClients::new(
                access.clone(),
                self.config.fetch_timeout,
            ));
        }
    }

    /// What a refresh of `repo` needs to reach its sources.
    fn reach(&self, repo: &Repo) -> Reach {
        Reach {
            token: self.token_for(&repo.key.server),
            registries: self
                .registries
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// Takes on a new policy's trust server tokens, and forgets every verdict remembered
    /// and every image mapped under the previous policy (a rule may have changed what they
    /// are). The trusted state of repositories is kept: it does not depend on the policy.
    /// Returns the new policy epoch, to pass to [`TrustCache::remember`].
    pub fn set_policy(&self, tokens: BTreeMap<String, Arc<ServerToken>>) -> u64 {
        *self.tokens.write().unwrap_or_else(|p| p.into_inner()) = tokens;
        // Bumped before the verdicts are cleared (each under its repository's lock), so a
        // verdict reached under the old policy is either cleared or refused by `remember`.
        let epoch = self.policy_epoch.fetch_add(1, Ordering::AcqRel) + 1;
        self.by_image
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        for repo in lock(&self.repos).values() {
            lock(&repo.state).remembered.clear();
        }
        epoch
    }

    /// The token sent to `server`, if the policy gives one.
    pub fn token_for(&self, server: &str) -> Option<Arc<ServerToken>> {
        self.tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(server)
            .cloned()
    }

    /// The repository `image` (trimmed) was mapped to by [`TrustCache::note_image`], if it
    /// is still in memory; counts as a use of it, like [`TrustCache::repo`].
    pub fn repo_for_image(&self, image: &str) -> Option<Arc<Repo>> {
        let repo = self
            .by_image
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(image)?
            .upgrade()?;
        let now = self.now_ms();
        repo.last_used.store(now, Ordering::Relaxed);
        if now >= self.next_sweep.load(Ordering::Relaxed) {
            self.prune_locked(&mut lock(&self.repos), now, 0);
        }
        Some(repo)
    }

    /// Notes that the policy of `policy_epoch` maps `image` (trimmed) to `repo`; nothing is
    /// noted when that policy has been replaced since ([`TrustCache::set_policy`]).
    pub fn note_image(&self, image: &str, repo: &Arc<Repo>, policy_epoch: u64) {
        let mut by_image = self.by_image.write().unwrap_or_else(|p| p.into_inner());
        // Checked under the lock `set_policy` clears the map under, after bumping the epoch.
        if self.policy_epoch.load(Ordering::Acquire) != policy_epoch {
            return;
        }
        if by_image.len() >= self.config.max_repositories.saturating_mul(8).max(1024) {
            by_image.clear();
        }
        by_image.insert(image.to_owned(), Arc::downgrade(repo));
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Removes every repository directory of [`TrustConfig::cache_dir`] that holds nothing
    /// but the root pinned for it (a directory `<root id>/<GUN>/`, whose root.json hashes to
    /// that id), as a refresh that failed leaves none: what a webhook
    /// stopped in the middle of a first refresh, or an earlier version, left behind.
    /// Directories holding trusted state are kept. Returns how many were removed. Blocking:
    /// for startup, before requests are served.
    pub fn discard_untrusted_dirs(&self) -> usize {
        let mut removed = 0;
        let subdirs = |dir: &Path| -> Vec<(PathBuf, String)> {
            fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| Some((e.path(), e.file_name().into_string().ok()?)))
                .collect()
        };
        for (root_dir, root_id) in subdirs(&self.config.cache_dir) {
            for (dir, _) in subdirs(&root_dir) {
                let root = dir.join("root.json");
                let Ok(bytes) = fs::read(&root) else { continue };
                if Digest::sha256_of(&bytes).hex().get(..16) == Some(root_id.as_str()) {
                    discard_untrusted(&dir, &bytes);
                    if !dir.exists() {
                        removed += 1;
                    }
                }
            }
        }
        removed
    }

    /// The settings.
    pub fn config(&self) -> &TrustConfig {
        &self.config
    }

    /// How many repositories are in memory.
    pub fn len(&self) -> usize {
        lock(&self.repos).len()
    }

    /// True when no repository is in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The repository for `key` whose trust starts from `anchor`, created on first use.
    ///
    /// Two policy rules (or pins) anchoring one repository differently get separate state
    /// and separate on-disk caches (below a directory named after [`Anchor::id`]: a pinned
    /// root's hash, or the hash of pinned keys and threshold), and a changed anchor starts
    /// from itself rather than from what the old one led to.
    ///
    /// Every call counts as a use of the repository for [`TrustConfig::idle_expiry`], and
    /// may drop idle repositories (see [`TrustCache::prune`]).
    pub fn repo(&self, key: RepoKey, anchor: &Anchor) -> Arc<Repo> {
        self.repo_anchored(key, &RepoAnchor::Tuf(anchor.clone()))
    }

    /// [`TrustCache::repo`] for any anchor: a vouch repository, or a Notary repository
    /// whose trust starts from a pinned Notary root.
    pub fn repo_anchored(&self, key: RepoKey, anchor: &RepoAnchor) -> Arc<Repo> {
        let now = self.now_ms();
        let mut repos = lock(&self.repos);
        if now >= self.next_sweep.load(Ordering::Relaxed) {
            self.prune_locked(&mut repos, now, 0);
        }
        let id = (key, anchor.id());
        if let Some(r) = repos.get(&id) {
            r.last_used.store(now, Ordering::Relaxed);
            return r.clone();
        }
        if repos.len() >= self.config.max_repositories {
            self.prune_locked(&mut repos, now, 1);
        }
        // Entries sharing this one's directory (same anchor and GUN, another server or
        // source) share its refresh flight, so that no two refreshes write it at once.
        let flight = repos
            .iter()
            .find(|((k, a), _)| k.gun == id.0.gun && *a == id.1)
            .map_or_else(
                || Arc::new(tokio::sync::Mutex::new(())),
                |(_, r)| r.refresh.clone(),
            );
        let repo = Arc::new(Repo {
            key: id.0.clone(),
            cache_dir: self.config.cache_dir.join(&id.1),
            anchor: anchor.clone(),
            notary_state: Mutex::new(None),
            state: Mutex::new(State::default()),
            refreshed: Condvar::new(),
            refresh: flight,
            waiters: AtomicUsize::new(0),
            last_used: AtomicU64::new(now),
            expiry_warned: Mutex::new(None),
            falling_back: std::sync::atomic::AtomicBool::new(false),
        });
        repos.insert(id, repo.clone());
        self.metrics.repositories(repos.len());
        repo
    }

    /// Drops the repositories not asked about for [`TrustConfig::idle_expiry`], then, while
    /// more than [`TrustConfig::max_repositories`] remain, the least recently used ones.
    /// A repository some request is still using is never dropped. Returns how many were.
    pub fn prune(&self) -> usize {
        let now = self.now_ms();
        self.prune_locked(&mut lock(&self.repos), now, 0)
    }

    /// [`TrustCache::prune`] on the locked map, leaving room for `room` more repositories.
    fn prune_locked(&self, repos: &mut RepoMap, now: u64, room: usize) -> usize {
        let idle = u64::try_from(self.config.idle_expiry.as_millis()).unwrap_or(u64::MAX);
        // Look again after a tenth of the idle expiry (at most a minute later): an idle
        // repository stays at most about 1.1 × the expiry (or a minute more).
        let every = (idle / 10).clamp(1, 60_000);
        self.next_sweep
            .store(now.saturating_add(every), Ordering::Relaxed);
        let before = repos.len();
        let guns_before: Vec<Gun> = repos.keys().map(|(k, _)| k.gun.clone()).collect();
        // The map holds one reference; a request using the repository holds another.
        repos.retain(|_, r| {
            Arc::strong_count(r) > 1
                || now.saturating_sub(r.last_used.load(Ordering::Relaxed)) < idle
        });
        let cap = self.config.max_repositories.saturating_sub(room);
        if repos.len() > cap {
            let mut unused: Vec<(u64, (RepoKey, String))> = repos
                .iter()
                .filter(|(_, r)| Arc::strong_count(r) == 1)
                .map(|(k, r)| (r.last_used.load(Ordering::Relaxed), k.clone()))
                .collect();
            unused.sort_unstable_by_key(|(used, _)| *used);
            let excess = repos.len() - cap;
            for (_, k) in unused.into_iter().take(excess) {
                repos.remove(&k);
            }
        }
        let dropped = before - repos.len();
        if dropped > 0 {
            let kept: std::collections::HashSet<&Gun> = repos.keys().map(|(k, _)| &k.gun).collect();
            for gun in &guns_before {
                if !kept.contains(gun) {
                    self.metrics.forget_expiries(gun.as_str());
                }
            }
            self.by_image
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|_, r| r.strong_count() > 0);
            tracing::debug!(dropped, kept = repos.len(), "idle repositories dropped");
            self.metrics.pruned(dropped);
        }
        self.metrics.repositories(repos.len());
        dropped
    }

    /// The verdict remembered for `image` (trimmed) from the repository's current trusted
    /// state, when that state is fresh (no refresh due, not superseded by an event) and has
    /// not expired. Never blocks
    /// on I/O: `None` means the caller must take the blocking path.
    pub fn warm(&self, repo: &Repo, image: &str) -> Option<Verdict> {
        let st = lock(&repo.state);
        let (Some((at, _)), Some(_), Some(expires)) = (&st.last_attempt, &st.current, st.expires)
        else {
            return None;
        };
        if st.superseded.is_some()
            || at.elapsed() >= self.config.refresh_interval
            || expires <= self.config.clock.now()
        {
            return None;
        }
        let v = st.remembered.get(image)?.clone();
        drop(st);
        self.metrics.cache_hit();
        Some(v)
    }

    /// The current trusted state of the repository, to pass to [`TrustCache::remember`]
    /// after answering from it. Read it before the answer's first lookup.
    pub fn generation(&self, repo: &Repo) -> Generation {
        Generation(lock(&repo.state).generation)
    }

    /// Remembers an admitting verdict on `image` (trimmed) for [`TrustCache::warm`], if
    /// the repository's trusted state is still `generation` (so every lookup behind the
    /// verdict was answered by that state). Denials are not remembered.
    ///
    /// `policy_epoch` is the epoch of the policy the verdict was reached under: a verdict
    /// reached under a policy since replaced is not remembered.
    pub fn remember(
        &self,
        repo: &Repo,
        generation: Generation,
        policy_epoch: u64,
        image: &str,
        verdict: &Verdict,
    ) {
        if !matches!(verdict, Verdict::Allowed { .. }) {
            return;
        }
        let mut st = lock(&repo.state);
        if st.generation == generation.0
            && self.policy_epoch.load(Ordering::Acquire) == policy_epoch
            && st.current.is_some()
            && st.superseded.is_none()
            && st.remembered.len() < MAX_REMEMBERED
            && !st.remembered.contains_key(image)
        {
            st.remembered.insert(image.to_owned(), verdict.clone());
        }
    }

    /// Refreshes `repo` first when it is due, from async code, so that the blocking path
    /// then finds it fresh. The refresh runs on one blocking thread, its fetches over by
    /// `refresh.at`; a request that has to wait for a refresh in flight waits here, holding
    /// no thread. Returns at once when no refresh is due, when a refresh is in flight and the
    /// repository has unexpired trusted state no event superseded (the answer then comes
    /// from that state), or
    /// when [`TrustConfig::max_waiters`] requests already wait (the blocking path then
    /// denies with [`TrustError::Busy`]); and at `refresh.at` at the latest.
    pub async fn prepare(&self, repo: &Arc<Repo>, refresh: Deadline) {
        if !self.due(repo, refresh.started) {
            return;
        }
        let flight = match repo.refresh.clone().try_lock_owned() {
            Ok(g) => g,
            Err(_) => {
                if self.answerable(repo).is_some() {
                    return;
                }
                let Some(_waiting) = Waiting::enter(&repo.waiters, self.config.max_waiters) else {
                    return;
                };
                let wait = repo.refresh.clone().lock_owned();
                match tokio::time::timeout_at(refresh.at.into(), wait).await {
                    Ok(g) => g,
                    Err(_) => return,
                }
            }
        };
        if !self.due(repo, refresh.started) {
            return;
        }
        let (config, metrics, repo) = (self.config.clone(), self.metrics.clone(), repo.clone());
        let reach = self.reach(&repo);
        // The flight is held by the blocking task: if this request gives up at its deadline,
        // the refresh still finishes (by `refresh.at`) before another may start.
        let _ = tokio::task::spawn_blocking(move || {
            let _flight = flight;
            let _ = refresh_and_record(&config, &metrics, &repo, reach, refresh.at);
        })
        .await;
    }

    /// Notes a trust-change event for the repository `gun` of `server` (an update or a
    /// deletion, [`crate::events`]): every repository in memory for that GUN has its trusted
    /// state marked superseded, whatever server or source its rule reads (one per anchor
    /// and rule: trusted state on disk is per anchor and GUN, so what the server now says
    /// concerns every entry starting from it, registry copies included). Until a refresh that starts after
    /// this call finishes, a superseded state answers nothing: its remembered verdicts are
    /// dropped ([`TrustCache::warm`] answers `None`), a refresh is due at once whatever the
    /// interval, and a request that finds a refresh in flight waits for it (as one of at
    /// most [`TrustConfig::max_waiters`], until its deadline) instead of answering from
    /// the superseded state. Returns the repositories marked, for
    /// [`TrustCache::refresh_superseded`]; none when the cache does not hold the repository.
    pub fn supersede(&self, _server: &str, gun: &str) -> Vec<Arc<Repo>> {
        let marked: Vec<Arc<Repo>> = lock(&self.repos)
            .iter()
            .filter(|((k, _), _)| k.gun.as_str() == gun)
            .map(|(_, r)| r.clone())
            .collect();
        for repo in &marked {
            let mut st = lock(&repo.state);
            st.marks += 1;
            st.superseded = Some(st.marks);
            st.generation += 1;
            st.remembered.clear();
        }
        marked
    }

    /// Whether an event superseded the repository's trusted state and no refresh started
    /// since has finished ([`TrustCache::supersede`]).
    pub fn is_superseded(&self, repo: &Repo) -> bool {
        lock(&repo.state).superseded.is_some()
    }

    /// Refreshes a repository [`TrustCache::supersede`] marked, in the background, so that
    /// the next review finds it fresh: waits for the refresh in flight (single flight,
    /// holding no thread), then, if the state is still superseded, refreshes on one
    /// blocking thread with fetches over by [`TrustConfig::fetch_timeout`] from then.
    /// Returns whether it refreshed (false when a request's refresh got there first).
    pub async fn refresh_superseded(&self, repo: &Arc<Repo>) -> bool {
        let flight = repo.refresh.clone().lock_owned().await;
        if !self.is_superseded(repo) {
            return false;
        }
        let (config, metrics, repo) = (self.config.clone(), self.metrics.clone(), repo.clone());
        let reach = self.reach(&repo);
        let deadline = Deadline::after(config.fetch_timeout);
        tokio::task::spawn_blocking(move || {
            let _flight = flight;
            let _ = refresh_and_record(&config, &metrics, &repo, reach, deadline.at);
        })
        .await
        .is_ok()
    }

    /// True when the repository's state is due for a refresh for a request that started at
    /// `started` (no attempt within the refresh interval, nor since it started).
    fn due(&self, repo: &Repo, started: Instant) -> bool {
        self.fresh(&lock(&repo.state), started).is_none()
    }

    /// The result of the last refresh attempt, when it finished within the refresh interval
    /// or after `started` (the start of the request asking).
    fn fresh(
        &self,
        st: &State,
        started: Instant,
    ) -> Option<Result<Arc<Mutex<Current>>, TrustError>> {
        if st.superseded.is_some() {
            return None;
        }
        match &st.last_attempt {
            Some((at, err)) if at.elapsed() < self.config.refresh_interval || *at >= started => {
                match (&st.current, err) {
                    (Some(c), _) => Some(Ok(c.clone())),
                    (None, Some(e)) => Some(Err(e.clone())),
                    (None, None) => None,
                }
            }
            _ => None,
        }
    }

    /// The last trusted state, when it has not expired and no trust-change event has
    /// superseded it: what a request answers from while a refresh is in flight.
    fn answerable(&self, repo: &Repo) -> Option<Arc<Mutex<Current>>> {
        let st = lock(&repo.state);
        if st.superseded.is_some() {
            return None;
        }
        match (&st.current, st.expires) {
            (Some(c), Some(expires)) if expires > self.config.clock.now() => Some(c.clone()),
            _ => None,
        }
    }

    /// Runs `f` on the repository's trusted state, refreshing first if due. No fetch, of
    /// the refresh or of `f`'s lookups, starts after `deadline.at` or lasts past it.
    /// Blocking.
    pub fn with_trusted<R>(
        &self,
        repo: &Repo,
        deadline: Deadline,
        f: impl FnOnce(&mut Updater<RepoTransport>) -> R,
    ) -> Result<R, TrustError> {
        self.with_current(repo, deadline, |trusted| match trusted {
            Trusted::Tuf(updater) => {
                updater.set_deadline(Some(deadline.at));
                Ok(f(updater))
            }
            Trusted::Notary(_) => Err(TrustError::Setup(format!(
                "{} is a Notary repository, not a vouch one",
                repo.key.gun
            ))),
        })?
    }

    /// Runs `f` on the repository's verified Notary collection, refreshing first if due
    /// (as [`TrustCache::with_trusted`] does for vouch repositories). Blocking.
    pub fn with_notary<R>(
        &self,
        repo: &Repo,
        deadline: Deadline,
        f: impl FnOnce(&vouch_verifier::notary::NotaryCollection) -> R,
    ) -> Result<R, TrustError> {
        self.with_current(repo, deadline, |trusted| match trusted {
            Trusted::Notary(collection) => Ok(f(collection)),
            Trusted::Tuf(_) => Err(TrustError::Setup(format!(
                "{} is a vouch repository, not a Notary one",
                repo.key.gun
            ))),
        })?
    }

    /// Runs `f` on the repository's unexpired trusted state, refreshing first if due.
    fn with_current<R>(
        &self,
        repo: &Repo,
        deadline: Deadline,
        f: impl FnOnce(&mut Trusted) -> R,
    ) -> Result<R, TrustError> {
        let current = self.current(repo, deadline)?;
        let mut cur = match current.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                // Another request reads this state (perhaps fetching a delegated role):
                // wait for it as one of a bounded number of waiters.
                let _waiting = Waiting::enter(&repo.waiters, self.config.max_waiters)
                    .ok_or(TrustError::Busy(self.config.max_waiters))?;
                lock(&current)
            }
        };
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
        Ok(f(&mut cur.trusted))
    }

    /// The trusted state to answer from, refreshing it first (inline, by `deadline.at`)
    /// when due and no refresh is in flight. Blocking.
    fn current(&self, repo: &Repo, deadline: Deadline) -> Result<Arc<Mutex<Current>>, TrustError> {
        let started = deadline.started;
        let mut waiting = None;
        loop {
            if let Some(r) = self.fresh(&lock(&repo.state), started) {
                self.metrics.cache_hit();
                return r;
            }
            // Single flight: one refresh per repository at a time.
            if let Ok(_flight) = repo.refresh.try_lock() {
                if let Some(r) = self.fresh(&lock(&repo.state), started) {
                    self.metrics.cache_hit();
                    return r;
                }
                drop(waiting);
                let reach = self.reach(repo);
                return refresh_and_record(&self.config, &self.metrics, repo, reach, deadline.at);
            }
            // A refresh is in flight: answer from the last trusted state while it is
            // unexpired (and not superseded by an event), as when the server is unreachable.
            if let Some(c) = self.answerable(repo) {
                self.metrics.cache_hit();
                return Ok(c);
            }
            // Nothing usable: wait for that refresh, as one of a bounded number of waiters.
            if waiting.is_none() {
                waiting = Some(
                    Waiting::enter(&repo.waiters, self.config.max_waiters)
                        .ok_or(TrustError::Busy(self.config.max_waiters))?,
                );
            }
            let st = lock(&repo.state);
            if self.fresh(&st, started).is_some() {
                continue;
            }
            let now = Instant::now();
            if now >= deadline.at {
                return Err(TrustError::Unreachable(
                    "the refresh in flight did not finish within the deadline".to_owned(),
                ));
            }
            // Woken when a refresh attempt finishes; the timeout also notices a refresh
            // that ended without recording one.
            let wait = deadline
                .at
                .saturating_duration_since(now)
                .min(Duration::from_millis(100));
            drop(
                repo.refreshed
                    .wait_timeout(st, wait)
                    .unwrap_or_else(|p| p.into_inner()),
            );
        }
    }
}

/// Root or targets metadata expiring within this long is logged as a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);
/// At most one expiry warning per repository this often.
const EXPIRY_WARNING_EVERY: Duration = Duration::from_secs(86_400);

/// Exports when the trusted root and targets of `repo` expire, and warns (at most once a
/// day per repository) when one does within [`EXPIRY_WARNING`]: they are signed by key
/// holders, who must renew them before every image of the repository is denied. The
/// timestamp and snapshot, re-signed by the server, are left out.
fn note_expiry(config: &TrustConfig, metrics: &Metrics, repo: &Repo, cur: &Current) {
    let roles = &cur.expiring;
    for (role, at) in roles {
        metrics.expiry(repo.key.gun.as_str(), role, at.unix());
    }
    let soon = expiring_soon(roles, config.clock.now());
    if soon.is_empty() {
        return;
    }
    let mut warned = repo.expiry_warned.lock().unwrap_or_else(|p| p.into_inner());
    if warned.is_some_and(|t| t.elapsed() < EXPIRY_WARNING_EVERY) {
        return;
    }
    *warned = Some(Instant::now());
    tracing::warn!(
        server = %repo.key.server,
        gun = %repo.key.gun,
        expiring = %soon.join(", "),
        "trusted metadata expires soon: its key holders must renew it (vouch renew GUN --role ROLE), or every image of the repository will be denied"
    );
}

/// The roles of `roles` (name, expiry) that expire within [`EXPIRY_WARNING`] of `now` and
/// have not expired yet, described: `targets expires 2026-12-20T00:00:00Z (in 19 days)`.
fn expiring_soon(roles: &[(&'static str, Timestamp)], now: Timestamp) -> Vec<String> {
    roles
        .iter()
        .filter_map(|(role, at)| {
            let left = at.unix() - now.unix();
            (left > 0 && left.unsigned_abs() < EXPIRY_WARNING.as_secs())
                .then(|| format!("{role} expires {at} (in {} days)", (left + 43_200) / 86_400))
        })
        .collect()
}

/// Runs one refresh of `repo` (the caller holds its flight), with fetches over by
/// `deadline`, and records the outcome. Blocking.
fn refresh_and_record(
    config: &TrustConfig,
    metrics: &Metrics,
    repo: &Repo,
    reach: Reach,
    deadline: Instant,
) -> Result<Arc<Mutex<Current>>, TrustError> {
    // Events noted before this refresh started are answered by it, whatever its outcome.
    let marks = lock(&repo.state).marks;
    let result = refresh(config, metrics, repo, reach, deadline);
    metrics.refresh(result.is_ok());
    if let Ok(cur) = &result {
        note_expiry(config, metrics, repo, cur);
    }
    let mut st = lock(&repo.state);
    if st.superseded.is_some_and(|mark| mark <= marks) {
        st.superseded = None;
    }
    let outcome = match result {
        Ok(cur) => {
            let expires = cur.expires;
            let cur = Arc::new(Mutex::new(cur));
            st.set_current(Some(cur.clone()), Some(expires));
            st.last_attempt = Some((Instant::now(), None));
            Ok(cur)
        }
        Err(e) => {
            tracing::warn!(server = %repo.key.server, gun = %repo.key.gun, error = %e, "refresh failed");
            // Metadata that failed verification, or trust data the server no longer
            // has, withdraws trust at once; an unreachable (or too slow) server leaves the
            // last trusted state in place (usable only until it expires).
            if matches!(e, TrustError::NotaryRollback(_)) {
                metrics.notary_rollback();
            }
            if matches!(
                e,
                TrustError::Rejected(_)
                    | TrustError::NoTrustData(_)
                    | TrustError::NotaryRollback(_)
            ) && st.current.is_some()
            {
                st.set_current(None, None);
            }
            st.last_attempt = Some((Instant::now(), Some(e.clone())));
            match &st.current {
                Some(c) => Ok(c.clone()),
                None => Err(e),
            }
        }
    };
    drop(st);
    repo.refreshed.notify_all();
    outcome
}

/// A fresh TUF update of `repo` from its on-disk cache, fetches over by `deadline`.
///
/// The cache directory is created for the update (holding the pinned root to start from);
/// when the update fails and the directory still holds nothing but that pinned root, it is
/// removed again ([`discard_untrusted`]), so only repositories whose trust data verified at
/// least once keep a directory on disk.
fn refresh(
    config: &TrustConfig,
    metrics: &Metrics,
    repo: &Repo,
    reach: Reach,
    deadline: Instant,
) -> Result<Current, TrustError> {
    let anchor = match &repo.anchor {
        RepoAnchor::Tuf(anchor) => anchor,
        RepoAnchor::Notary(root) => {
            return crate::notary::refresh(config, repo, root, reach.token, deadline)
        }
    };
    let setup = |e: &dyn std::fmt::Display| TrustError::Setup(format!("{}: {e}", repo.key.gun));
    let store = MetadataStore::for_gun(&repo.cache_dir, repo.key.gun.as_str())
        .map_err(|e| setup(&e))?
        .with_durability(Durability::NoSync);
    let root_role = vouch_tuf::types::TopLevelRole::Root.name();
    let had_root = matches!(
        store.load(&root_role, vouch_verifier::Limits::DEFAULT.root_max_bytes),
        Ok(Some(_))
    );
    let result = refresh_in(
        config,
        metrics,
        repo,
        anchor,
        reach,
        store.clone(),
        deadline,
    );
    if result.is_err() {
        // The root this repository's trust starts from: the pinned file, or the first root
        // this very refresh fetched and checked against pinned keys.
        let start = match anchor {
            Anchor::Root(r) => Some(r.bytes().to_vec()),
            _ if !had_root => store
                .load(&root_role, vouch_verifier::Limits::DEFAULT.root_max_bytes)
                .ok()
                .flatten(),
            _ => None,
        };
        if let Some(start) = start {
            discard_untrusted(store.dir(), &start);
        }
    }
    result
}

/// [`refresh`] in `store`, the repository's cache directory.
fn refresh_in(
    config: &TrustConfig,
    metrics: &Metrics,
    repo: &Repo,
    anchor: &Anchor,
    reach: Reach,
    store: MetadataStore,
    deadline: Instant,
) -> Result<Current, TrustError> {
    let token = reach.token.clone();
    let transport = repo_transport(&repo.key, config.fetch_timeout, &reach)?;
    let fallback = match &transport {
        RepoTransport::Fallback(f) => Some(f.clone()),
        _ => None,
    };
    let result = update(config, repo, anchor, token, store, transport, deadline);
    if let Some(f) = fallback {
        note_fallback(metrics, repo, f.falling_back());
    }
    result
}

/// Logs and counts a change of whether `repo`'s refreshes read the registry copy for want
/// of the trust server (`why`: the server's error while they do): once per change, not once
/// per refresh.
fn note_fallback(metrics: &Metrics, repo: &Repo, why: Option<String>) {
    let now = why.is_some();
    if repo.falling_back.swap(now, Ordering::AcqRel) == now {
        return;
    }
    let copy = repo
        .key
        .fetch
        .registry_copy()
        .map(|(r, p)| format!("{r}/{p}"))
        .unwrap_or_default();
    match why {
        Some(why) => {
            metrics.trust_fallback();
            tracing::warn!(
                server = %repo.key.server,
                gun = %repo.key.gun,
                registry_copy = %copy,
                error = %why,
                "trust server unreachable: reading the registry copy of the repository's trust until it answers again"
            );
        }
        None => tracing::info!(
            server = %repo.key.server,
            gun = %repo.key.gun,
            "trust server reachable again: reading it instead of the registry copy"
        ),
    }
}

/// The TUF update of [`refresh_in`], through `transport`.
fn update(
    config: &TrustConfig,
    repo: &Repo,
    anchor: &Anchor,
    token: Option<Arc<ServerToken>>,
    store: MetadataStore,
    transport: RepoTransport,
    deadline: Instant,
) -> Result<Current, TrustError> {
    let setup = |e: &dyn std::fmt::Display| TrustError::Setup(format!("{}: {e}", repo.key.gun));
    let failed = |e| classify(e, &repo.key.server, token.as_deref());
    // The repository's trust starts from what the policy admits, the first time, and again
    // when the cached root and the record of that start were both damaged on disk (nothing
    // the server sends leads here). Recorded, so that a cached root damaged later restarts
    // from it rather than denying the repository until the cache is cleared.
    let establish = |store: &MetadataStore, transport: &RepoTransport| {
        let root = Updater::establish(store, &repo.key.gun, anchor, transport, Some(deadline))
            .map_err(failed)?;
        store
            .record_pin(
                &root,
                &format!("admitted by the webhook's policy ({})", anchor.describe()),
            )
            .map_err(|e| setup(&e))
    };
    if store
        .load(
            &vouch_tuf::types::TopLevelRole::Root.name(),
            vouch_verifier::Limits::DEFAULT.root_max_bytes,
        )
        .map_err(|e| setup(&e))?
        .is_none()
    {
        establish(&store, &transport)?;
    }
    // No `with_gun` (it refuses images not named after the repository): the policy maps an
    // image to its repository (`gun = "mirror/{repository}"`, or a `trust_from` pin for a
    // promoted copy), so an image need not be named after the repository that vouches for
    // it. The GUN is checked where it matters: the anchor (`establish`, a root's
    // `x-vouch-gun`) and the registry copy's artifact (`OciTransport::expecting`).
    let mut updater = Updater::new(store, transport).with_clock(config.clock.clone());
    updater.set_deadline(Some(deadline));
    match updater.refresh() {
        // Whoever could damage both files could remove the directory, after which the
        // policy is the floor too: starting again from it gives nobody more than that.
        Err(damaged @ vouch_verifier::Error::DamagedCache { .. }) => {
            tracing::warn!(
                gun = %repo.key.gun,
                error = %damaged,
                "trust cache damaged on disk: establishing the repository again from the policy"
            );
            establish(updater.store(), updater.transport())?;
            updater.refresh().map_err(failed)?;
        }
        other => other.map_err(failed)?,
    }
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
    let expiring = [
        ("root", Some(set.root().signed().common.expires)),
        ("targets", set.targets().map(|t| t.signed().common.expires)),
    ]
    .into_iter()
    .filter_map(|(role, at)| Some((role, at?)))
    .collect();
    Ok(Current {
        trusted: Trusted::Tuf(Box::new(updater)),
        expires,
        expiring,
    })
}

/// Removes the cache directory `dir` of a repository when it holds nothing but `pinned`, the
/// root the policy pins (with the record of that pin, and perhaps the temporary file of an
/// interrupted write): the state
/// of a repository whose trust data never verified, which the policy holds anyway. A
/// directory holding anything else — a later root reached through the signed root chain, a
/// timestamp, snapshot, targets or delegated role — is trusted state that rollback
/// protection starts from, and is kept, whatever the server answers. Best effort: what
/// cannot be read or removed is left.
fn discard_untrusted(dir: &Path, pinned: &[u8]) {
    const ROOT: &str = "root.json";
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut leftovers = Vec::new();
    for entry in entries {
        let Ok(entry) = entry else { return };
        let name = entry.file_name();
        match name.to_str() {
            Some(ROOT) => {}
            // The record of the pin: what the policy pins, nothing learnt.
            Some("pin.root" | "pin.source") => leftovers.push(entry.path()),
            // `MetadataStore`'s temporary files: `.NAME.tmp.PID`.
            Some(n) if n.starts_with('.') && n.contains(".tmp.") => leftovers.push(entry.path()),
            _ => return,
        }
    }
    let root = dir.join(ROOT);
    match fs::metadata(&root) {
        Ok(m) if m.len() == pinned.len() as u64 => match fs::read(&root) {
            Ok(bytes) if bytes == pinned => leftovers.push(root),
            _ => return,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        _ => return,
    }
    for path in &leftovers {
        if fs::remove_file(path).is_err() {
            return;
        }
    }
    // Not recursive: a file another writer just added keeps the directory.
    if let Err(e) = fs::remove_dir(dir) {
        tracing::debug!(dir = %dir.display(), error = %e, "cache directory kept");
    }
}

/// The [`TrustError`] for a verifier error from `server`, to which `token` was to be sent.
fn classify(e: vouch_verifier::Error, server: &str, token: Option<&ServerToken>) -> TrustError {
    match e {
        vouch_verifier::Error::Transport(t) if t.is_not_found() => {
            TrustError::NoTrustData(t.to_string())
        }
        vouch_verifier::Error::Transport(TransportError::Unauthorized {
            path,
            status,
            sent_token,
            ..
        }) => TrustError::NotAuthorised(not_authorised(server, &path, status, sent_token, token)),
        // What a registry holds under the trust tag is not a trust artifact of this
        // repository (another repository's, a promoted copy without `trust_from`, content
        // not matching its digest): an answer, and a wrong one, not an unreachable source.
        vouch_verifier::Error::Transport(t @ TransportError::Invalid { .. }) => {
            TrustError::Rejected(t.to_string())
        }
        vouch_verifier::Error::Transport(t) => TrustError::Unreachable(t.to_string()),
        vouch_verifier::Error::Cache(c) => TrustError::Setup(c.to_string()),
        vouch_verifier::Error::Pin(p) => {
            TrustError::Rejected(format!("the repository's first root is not trusted: {p}"))
        }
        other => TrustError::Rejected(other.to_string()),
    }
}

/// What to tell the user when `server` answered `status` to `path`: whether a token was
/// sent, which one, and what to change.
pub(crate) fn not_authorised(
    server: &str,
    path: &str,
    status: u16,
    sent_token: bool,
    token: Option<&ServerToken>,
) -> String {
    match token {
        Some(t) if sent_token => format!(
            "the trust server {server} refused the token from {} ({path}: HTTP {status}): it is \
             invalid, expired or revoked, or does not allow pulling this repository",
            t.describe()
        ),
        Some(t) => format!(
            "the trust server {server} needs a token ({path}: HTTP {status}) and none was sent: \
             {} cannot be read: {}",
            t.describe(),
            t.read_error()
                .unwrap_or_else(|| "it holds no token".to_owned())
        ),
        None => format!(
            "the trust server {server} needs a token ({path}: HTTP {status}) and the policy \
             gives none: add a [[server]] table with url = \"{server}\" and token_file = \
             \"/path/to/token\""
        ),
    }
}

/// The transport of a repository: `http(s)://server/v2/{gun}/_trust/tuf/` (sending `token`
/// when there is one), or `file:///dir/{gun}/` for metadata on disk.
pub(crate) fn transport_for(
    key: &RepoKey,
    timeout: Duration,
    token: Option<Arc<ServerToken>>,
) -> Result<RepoTransport, TrustError> {
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
    let url = vouch_verifier::transport::repository_url(&key.server, &key.gun);
    let transport =
        HttpTransport::new(&url, &options).map_err(|e| TrustError::Setup(e.to_string()))?;
    Ok(RepoTransport::Http(match token {
        Some(t) => transport.with_bearer_token(t),
        None => transport,
    }))
}

/// The transport of a repository as its rule's `source` says: the trust server
/// ([`transport_for`]), the trust artifact in the image's registry repository (read with
/// the policy's client for that registry, and refused when it names another repository), or
/// the server falling back to that artifact.
pub(crate) fn repo_transport(
    key: &RepoKey,
    timeout: Duration,
    reach: &Reach,
) -> Result<RepoTransport, TrustError> {
    let copy = |registry: &str, repository: &str| -> Result<RegistryCopy, TrustError> {
        let client = reach
            .registries
            .client_for(registry)
            .map_err(|e| TrustError::NotAuthorised(format!("registry {registry}: {e}")))?;
        Ok(
            OciTransport::new(RegistryRepo::new(client, registry, repository))
                .expecting(key.gun.clone()),
        )
    };
    match &key.fetch {
        Fetch::Server => transport_for(key, timeout, reach.token.clone()),
        Fetch::Registry {
            registry,
            repository,
        } => Ok(RepoTransport::Registry(copy(registry, repository)?)),
        Fetch::ServerThenRegistry {
            registry,
            repository,
        } => Ok(RepoTransport::Fallback(Arc::new(FallbackTransport::new(
            transport_for(key, timeout, reach.token.clone())?,
            copy(registry, repository)?,
        )))),
    }
}

impl Repo {
    /// The repository's key.
    pub fn key(&self) -> &RepoKey {
        &self.key
    }

    /// Its directory in the on-disk cache, which may not exist (yet): `<anchor id>/<GUN>/`
    /// below the cache directory, whatever server or source the rule reads, so every rule
    /// anchoring this GUN alike starts from the newest state any of them verified.
    pub(crate) fn dir(&self) -> PathBuf {
        MetadataStore::dir_for_gun(&self.cache_dir, self.key.gun.as_str())
    }

    /// For a Notary repository: the latest state trusted, as kept in memory.
    pub(crate) fn notary_state(&self) -> MutexGuard<'_, Option<NotaryState>> {
        lock(&self.notary_state)
    }
}

impl Current {
    /// The trusted state of a Notary repository.
    pub(crate) fn notary(
        collection: vouch_verifier::notary::NotaryCollection,
        expires: Timestamp,
        expiring: RoleExpiries,
    ) -> Self {
        Current {
            trusted: Trusted::Notary(collection),
            expires,
            expiring,
        }
    }
}

/// Whether the repository vouches for `image`, and through which role paths, looking no
/// further than a path that meets `required` ([`Updater::vouch_requiring`], the rule the
/// CLI's `verify` applies too), fetching nothing after `deadline`. Blocking.
///
/// `Ok(Err(_))` is the answer "not vouched for": [`vouch_verifier::Error::UnknownTag`] or
/// [`vouch_verifier::Error::UntrustedDigest`]. `Err(_)` is a failure to get an answer.
pub fn vouch(
    cache: &TrustCache,
    repo: &Repo,
    image: &ImageRef,
    required: &[DelegationPath],
    deadline: Deadline,
) -> Result<Result<Vouched, vouch_verifier::Error>, TrustError> {
    match cache.with_trusted(repo, deadline, |u| u.vouch_requiring(image, required))? {
        Ok(v) => Ok(Ok(v)),
        Err(
            refused @ (vouch_verifier::Error::UnknownTag { .. }
            | vouch_verifier::Error::UntrustedDigest { .. }),
        ) => Ok(Err(refused)),
        Err(e) => Err(classify(
            e,
            &repo.key.server,
            cache.token_for(&repo.key.server).as_deref(),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            fs::write(dir.path().join(name), bytes).unwrap();
        }
        dir
    }

    /// A cache over `dir`, with one repository of an empty `file://` source (so a refresh
    /// fails at once: no trust data) given a trusted state that expires in a year, refreshed
    /// just now.
    fn warm_repo(dir: &Path) -> (TrustCache, Arc<Repo>) {
        let mut config = TrustConfig::new(
            dir.join("cache"),
            Duration::from_secs(3600),
            Duration::from_secs(5),
            Arc::new(vouch_verifier::clock::SystemClock),
        );
        config.max_waiters = 4;
        let cache = TrustCache::new(config, Arc::new(Metrics::default()));
        let source = dir.join("source");
        fs::create_dir_all(&source).unwrap();
        let key = RepoKey {
            server: format!("file://{}", source.display()),
            gun: Gun::new("example.com/org/app").unwrap(),
            fetch: Fetch::Server,
        };
        let repo = cache.repo(key.clone(), &Anchor::FirstUse);
        let store = MetadataStore::for_repository(dir.join("state"), &key.server, "app").unwrap();
        let transport = transport_for(&key, Duration::from_secs(5), None).unwrap();
        let current = Current {
            trusted: Trusted::Tuf(Box::new(Updater::new(store, transport))),
            expires: vouch_verifier::clock::Clock::now(&vouch_verifier::clock::SystemClock)
                .add_seconds(365 * 86_400),
            expiring: Vec::new(),
        };
        {
            let mut st = lock(&repo.state);
            let expires = current.expires;
            st.set_current(Some(Arc::new(Mutex::new(current))), Some(expires));
            st.last_attempt = Some((Instant::now(), None));
        }
        (cache, repo)
    }

    #[test]
    fn a_superseded_state_drops_its_verdicts_and_is_due_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, repo) = warm_repo(dir.path());
        cache.set_policy(BTreeMap::new());
        let generation = cache.generation(&repo);
        let epoch = cache.policy_epoch.load(Ordering::Acquire);
        let allowed = Verdict::Allowed {
            pinned: None,
            reason: "verified",
        };
        cache.remember(&repo, generation, epoch, "app:v1", &allowed);
        assert!(cache.warm(&repo, "app:v1").is_some());
        assert!(!cache.due(&repo, Instant::now()));

        // An event for another repository marks nothing.
        assert!(cache
            .supersede(&repo.key.server, "example.com/org/other")
            .is_empty());
        assert!(cache.warm(&repo, "app:v1").is_some());

        // One for the GUN marks every entry of it, a registry-only rule's too (whichever
        // server the event came from: the state on disk is the GUN's).
        let copy = cache.repo(
            RepoKey {
                server: crate::policy::REGISTRY_ONLY.to_owned(),
                gun: repo.key.gun.clone(),
                fetch: Fetch::Registry {
                    registry: "example.com".to_owned(),
                    repository: "org/app".to_owned(),
                },
            },
            &Anchor::FirstUse,
        );
        let marked = cache.supersede("https://elsewhere", repo.key.gun.as_str());
        assert_eq!(marked.len(), 2);
        assert!(cache.is_superseded(&copy));
        assert!(cache.is_superseded(&repo));
        assert!(cache.warm(&repo, "app:v1").is_none(), "warm verdict kept");
        assert!(cache.due(&repo, Instant::now()), "refresh not due at once");
        // A verdict reached from the superseded state is not remembered either.
        cache.remember(&repo, generation, epoch, "app:v1", &allowed);
        cache.remember(&repo, cache.generation(&repo), epoch, "app:v1", &allowed);
        assert!(cache.warm(&repo, "app:v1").is_none());
    }

    #[test]
    fn entries_of_one_gun_and_anchor_share_a_directory_and_one_refresh_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, repo) = warm_repo(dir.path());
        let key = |server: &str, fetch: Fetch| RepoKey {
            server: server.to_owned(),
            gun: repo.key.gun.clone(),
            fetch,
        };
        let registry = Fetch::Registry {
            registry: "example.com".to_owned(),
            repository: "prod/app".to_owned(),
        };
        let copy = cache.repo(
            key(crate::policy::REGISTRY_ONLY, registry),
            &Anchor::FirstUse,
        );
        let other_server = cache.repo(key("https://elsewhere", Fetch::Server), &Anchor::FirstUse);
        assert_eq!(copy.dir(), repo.dir());
        assert_eq!(other_server.dir(), repo.dir());
        // While one refreshes, the others' refreshes wait: no two write the directory.
        let flight = repo.refresh.try_lock().unwrap();
        assert!(copy.refresh.try_lock().is_err());
        assert!(other_server.refresh.try_lock().is_err());
        drop(flight);
        assert!(copy.refresh.try_lock().is_ok());

        // Another GUN is a directory (and a flight) of its own.
        let other = cache.repo(
            RepoKey {
                gun: Gun::new("example.com/org/other").unwrap(),
                ..repo.key.clone()
            },
            &Anchor::FirstUse,
        );
        assert_ne!(other.dir(), repo.dir());
        let _flight = repo.refresh.try_lock().unwrap();
        assert!(other.refresh.try_lock().is_ok());
    }

    #[test]
    fn a_superseded_state_is_not_answered_while_a_refresh_is_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, repo) = warm_repo(dir.path());
        // Due (interval passed) with a refresh in flight: today's rule answers from the
        // last trusted state while it is unexpired.
        lock(&repo.state).last_attempt = None;
        let flight = repo.refresh.try_lock().unwrap();
        assert!(cache
            .current(&repo, Deadline::after(Duration::from_millis(200)))
            .is_ok());
        // Superseded: the request waits for the refresh instead, until its deadline.
        cache.supersede(&repo.key.server, repo.key.gun.as_str());
        match cache.current(&repo, Deadline::after(Duration::from_millis(200))) {
            Err(TrustError::Unreachable(m)) => assert!(m.contains("in flight"), "{m}"),
            Ok(_) => panic!("answered from a superseded state"),
            Err(e) => panic!("unexpected {e}"),
        }
        // Beyond the waiter cap it is refused at once, never answered from that state.
        repo.waiters.store(4, Ordering::SeqCst);
        assert!(matches!(
            cache.current(&repo, Deadline::after(Duration::from_millis(200))),
            Err(TrustError::Busy(4))
        ));
        repo.waiters.store(0, Ordering::SeqCst);
        drop(flight);
    }

    #[test]
    fn a_refresh_that_finishes_clears_superseded() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, repo) = warm_repo(dir.path());
        cache.supersede(&repo.key.server, repo.key.gun.as_str());
        // A request takes the flight and refreshes; the empty source has no trust data, so
        // the refresh fails (and, as today, withdraws trust).
        let r = cache.current(&repo, Deadline::after(Duration::from_secs(5)));
        assert!(
            matches!(r, Err(TrustError::NoTrustData(_))),
            "{:?}",
            r.err()
        );
        assert!(!cache.is_superseded(&repo));

        let (cache, repo) = warm_repo(dir.path());
        cache.supersede(&repo.key.server, repo.key.gun.as_str());
        assert!(cache.is_superseded(&repo));

        // The background refresh clears it too (failure or success alike).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert!(rt.block_on(cache.refresh_superseded(&repo)));
        assert!(!cache.is_superseded(&repo));
        // Nothing left to do: a second call does not refresh.
        assert!(!rt.block_on(cache.refresh_superseded(&repo)));
    }

    #[test]
    fn roles_expiring_within_thirty_days_are_named() {
        let now = Timestamp::from_unix(1_000_000_000);
        let day = 86_400;
        let roles = [
            ("root", now.add_seconds(400 * day)),
            ("targets", now.add_seconds(19 * day + 3_600)),
        ];
        let soon = expiring_soon(&roles, now);
        assert_eq!(soon.len(), 1, "{soon:?}");
        assert!(soon[0].starts_with("targets expires ") && soon[0].ends_with("(in 19 days)"));
        // Already expired: refused elsewhere, not "expiring soon"; 30 days out: not yet.
        assert!(expiring_soon(&[("targets", now.add_seconds(-5))], now).is_empty());
        assert!(expiring_soon(&[("root", now.add_seconds(30 * day))], now).is_empty());
    }

    #[test]
    fn only_the_pinned_root_is_discarded() {
        let pinned: &[u8] = b"{\"pinned\":1}";
        // Nothing but the pinned root (and an interrupted write): removed.
        let d = dir_with(&[("root.json", pinned), (".timestamp.json.tmp.7", b"x")]);
        discard_untrusted(d.path(), pinned);
        assert!(!d.path().exists());
        // A later root reached through the chain: trusted state, kept.
        let d = dir_with(&[("root.json", b"{\"later\":22}")]);
        discard_untrusted(d.path(), pinned);
        assert!(d.path().join("root.json").exists());
        // Anything trusted beyond the root: kept, root included.
        let d = dir_with(&[("root.json", pinned), ("timestamp.json", b"{}")]);
        discard_untrusted(d.path(), pinned);
        assert!(d.path().join("root.json").exists());
        assert!(d.path().join("timestamp.json").exists());
    }

    #[test]
    fn startup_discards_directories_holding_only_their_pinned_root() {
        let base = tempfile::tempdir().unwrap();
        let pinned: &[u8] = b"{\"pinned\":1}";
        let digest = Digest::sha256_of(pinned);
        let id = &digest.hex()[..16];
        let repo = |gun: &str, files: &[(&str, &[u8])]| {
            let dir = base.path().join(id).join(gun);
            fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in files {
                fs::write(dir.join(name), bytes).unwrap();
            }
            dir
        };
        let unknown = repo("unknown", &[("root.json", pinned)]);
        let trusted = repo(
            "trusted",
            &[("root.json", pinned), ("timestamp.json", b"{}")],
        );
        let rotated = repo("rotated", &[("root.json", b"{\"later\":22}")]);
        let cache = TrustCache::new(
            TrustConfig::new(
                base.path().to_owned(),
                Duration::from_secs(30),
                Duration::from_secs(5),
                Arc::new(vouch_verifier::clock::SystemClock),
            ),
            Arc::new(Metrics::default()),
        );
        assert_eq!(cache.discard_untrusted_dirs(), 1);
        assert!(!unknown.exists());
        assert!(trusted.join("timestamp.json").exists());
        assert!(rotated.join("root.json").exists());
    }
}
