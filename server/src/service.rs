//! The repository operations behind the HTTP API, as blocking calls (the HTTP layer runs them
//! on the blocking thread pool): load state, validate, store.
//!
//! Failures are [`ServiceError`]s, which say what went wrong in the service's own terms (a
//! rejected update and its [`crate::validate::Check`], a conflict, a missing file, the store); they know
//! nothing of HTTP. [`crate::error`] maps them to responses, in one place.

use std::sync::Arc;

use vouch_tuf::reference::Gun;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{KeyId, TopLevelRole};

use crate::config::{Limits, ProposalsConfig};
use crate::keys::{KeyError, OnlineKeys, Rotation, Wanted};
use crate::routes::FileRef;
use crate::store::{Change, Direction, NewFile, Store, StoreError, StoredFile};

mod proposals;
use crate::validate::{
    next_refresh_due, refresh_online, validate_update, Lifetimes, OnlineSigners, ParseCache,
    Rejection, RepoState, Update, Upload,
};

/// How many times a publish is re-validated when a concurrent write (such as the server
/// re-signing the timestamp) changed the state between reading and writing.
const PUBLISH_ATTEMPTS: usize = 4;

/// A source of the current time: vouch's one clock abstraction
/// ([`vouch_tuf::clock::Clock`]), the wall clock in production and a
/// [`vouch_tuf::clock::TestClock`] in tests.
pub type Clock = Arc<dyn vouch_tuf::clock::Clock>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(vouch_tuf::clock::SystemClock)
}

/// Told what the service stored (for metrics): the files of one publish or re-sign, and how
/// many of them the server signed.
pub trait Observer: Send + Sync {
    /// `files` were stored for `gun`; `server_signed` of them carry a server signature.
    fn stored(&self, gun: &Gun, files: &[NewFile], server_signed: u64);
}

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The update failed a check or lost to an earlier publish (see [`crate::validate`]).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Concurrent writes kept changing the repository while an update was being stored.
    #[error("the repository kept changing while this update was being stored: refresh and retry")]
    Contended,
    /// An uploaded file is larger than its role's limit.
    #[error("{role} metadata is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// The role uploaded.
        role: String,
        /// Its size in bytes.
        size: usize,
        /// The limit for that role, in bytes.
        limit: usize,
    },
    /// A write under a name that is not the repository's canonical one.
    #[error(
        "{gun} is not the canonical name of its repository: write its trust data under {canonical}"
    )]
    NameInvalid {
        /// The name written to.
        gun: Gun,
        /// The canonical name to write under instead.
        canonical: Gun,
    },
    /// No such metadata file.
    #[error("{gun} has no such metadata: {file}")]
    NotFound {
        /// The repository.
        gun: Gun,
        /// The file asked for, e.g. `2.targets.json`.
        file: String,
    },
    /// The store failed (unreachable, or otherwise).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The online keys failed (the creation limit included).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// No proposal `id` for this repository.
    #[error("{gun} has no proposal {id}")]
    ProposalNotFound {
        /// The repository.
        gun: Gun,
        /// The proposal asked for.
        id: u64,
    },
    /// The proposal is no longer open: published, withdrawn, stale or expired.
    #[error("proposal {id} is {status}: {reason}")]
    ProposalClosed {
        /// The proposal.
        id: u64,
        /// What it is now.
        status: vouch_tuf::api::proposal::ProposalStatus,
        /// Why, for people.
        reason: String,
    },
    /// The repository has as many open proposals as allowed.
    #[error("{gun} already has {max} open proposals, the most allowed: withdraw one (vouch withdraw) or let it expire")]
    ProposalLimit {
        /// The repository.
        gun: Gun,
        /// The cap (`proposals.max_open`).
        max: usize,
    },
    /// Signatures sent to a proposal that it cannot take as sent (none, or for a role the
    /// proposal does not change).
    #[error("{0}")]
    ProposalRequest(String),
    /// Something that should not happen; the cause is for the log only.
    #[error("{0}")]
    Internal(String),
}

/// Repository operations.
pub struct Service {
    store: Arc<dyn Store>,
    keys: OnlineKeys,
    lifetimes: Lifetimes,
    limits: Limits,
    clock: Clock,
    observer: Option<Arc<dyn Observer>>,
    /// Per GUN, the time before which no online role needs re-signing (see
    /// [`next_refresh_due`]), so reads of `timestamp.json` skip the full check.
    refresh_due: std::sync::Mutex<std::collections::HashMap<String, Timestamp>>,
    /// Bumped on every write this service makes (publish, re-sign, delete), so readers that
    /// cache what they read can tell when a write may have overtaken them.
    writes: std::sync::atomic::AtomicU64,
    /// Parsed current files of recently used repositories (see [`ParseCache`]).
    parsed: ParseCache,
    /// How long proposals stay open and how many a repository may have.
    proposals: ProposalsConfig,
    /// Notified after every write that adds a changefeed entry, so the changefeed follower
    /// (`crate::events::follow`) reads it at once instead of at its next poll.
    wrote: Arc<tokio::sync::Notify>,
}

impl Service {
    /// A service over `store`, signing with `keys`.
    pub fn new(
        store: Arc<dyn Store>,
        keys: OnlineKeys,
        lifetimes: Lifetimes,
        limits: Limits,
        clock: Clock,
    ) -> Self {
        Service {
            store,
            keys,
            lifetimes,
            limits,
            clock,
            observer: None,
            refresh_due: Default::default(),
            writes: Default::default(),
            parsed: ParseCache::default(),
            proposals: ProposalsConfig::default(),
            wrote: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// What is notified after every write that adds a changefeed entry.
    pub(crate) fn write_signal(&self) -> Arc<tokio::sync::Notify> {
        self.wrote.clone()
    }

    /// Keeps proposals open and caps them as `config` says.
    pub fn with_proposals(mut self, config: ProposalsConfig) -> Self {
        self.proposals = config;
        self
    }

    /// Reports every store of files to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn observe(&self, gun: &Gun, files: &[NewFile], server_signed: u64) {
        if let Some(o) = &self.observer {
            o.stored(gun, files, server_signed);
        }
    }

    /// The store (for readiness checks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn state(&self, gun: &Gun) -> Result<RepoState, ServiceError> {
        RepoState::from_files_cached(gun.as_str(), self.store.current(gun)?, &self.parsed)
            .map_err(ServiceError::Internal)
    }

    fn check_sizes(&self, uploads: &[Upload]) -> Result<(), ServiceError> {
        for u in uploads {
            let limit = match u.role.as_str() {
                "root" => self.limits.max_root_bytes,
                "snapshot" => self.limits.max_snapshot_bytes,
                _ => self.limits.max_targets_bytes,
            };
            if u.bytes.len() > limit {
                return Err(ServiceError::TooLarge {
                    role: u.role.clone(),
                    size: u.bytes.len(),
                    limit,
                });
            }
        }
        Ok(())
    }

    /// Validates and stores one update.
    pub fn publish(&self, gun: &Gun, uploads: Vec<Upload>) -> Result<(), ServiceError> {
        writable(gun)?;
        self.check_sizes(&uploads)?;
        for _ in 0..PUBLISH_ATTEMPTS {
            let now = self.now();
            let state = self.state(gun)?;
            let update = self.with_signers(gun, &state, &uploads, |signers| {
                validate_update(&state, &uploads, signers, self.lifetimes, now)
            })??;
            let expected = state.timestamp.as_ref().map(|t| t.version());
            match self.store.publish(gun, expected, &update.files, now) {
                Ok(change) => {
                    self.published(gun, &uploads, &update, change);
                    return Ok(());
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Contended)
    }

    /// Runs `f` with the online signers an update of `uploads` to `state` may use: an
    /// uploaded root may name any of the server's keys; otherwise only those the stored root
    /// names (and the newest) are unsealed.
    fn with_signers<R>(
        &self,
        gun: &Gun,
        state: &RepoState,
        uploads: &[Upload],
        f: impl FnOnce(&OnlineSigners<'_>) -> R,
    ) -> Result<R, ServiceError> {
        let named = online_keyids(state);
        let wanted = if uploads.iter().any(|u| u.role == "root") {
            Wanted::All
        } else {
            Wanted::Named(&named)
        };
        let held = self.keys.signers(gun, &wanted)?;
        Ok(f(&held.as_online()))
    }

    /// Book-keeping after `update` (of `uploads`) was stored as changefeed entry `change`:
    /// forget when the repository's online roles are next due, log it, count it.
    fn published(&self, gun: &Gun, uploads: &[Upload], update: &Update, change: i64) {
        self.invalidate_refresh(gun);
        self.wrote.notify_one();
        let roles: Vec<String> = update
            .files
            .iter()
            .map(|f| format!("{}@{}", f.role, f.version))
            .collect();
        tracing::info!(%gun, change, roles = %roles.join(","), "published");
        let uploaded: std::collections::HashSet<&str> =
            uploads.iter().map(|u| u.role.as_str()).collect();
        let server_signed = update
            .files
            .iter()
            .filter(|f| !uploaded.contains(f.role.as_str()))
            .count();
        self.observe(gun, &update.files, server_signed as u64);
    }

    /// Re-signs the timestamp (and a server-held snapshot) when less than half their lifetime
    /// remains. A concurrent re-sign that wins is as good as our own.
    pub(crate) fn refresh(&self, gun: &Gun) -> Result<(), ServiceError> {
        let now = self.now();
        // Cheap test first: nothing is due before the time computed at the last full check.
        if self.online_roles_fresh(gun) {
            return Ok(());
        }
        let state = self.state(gun)?;
        let named = online_keyids(&state);
        let held = self.keys.signers(gun, &Wanted::Named(&named))?;
        let signers = held.as_online();
        let state = match refresh_online(&state, &signers, self.lifetimes, now) {
            Ok(None) => state,
            Ok(Some(update)) => {
                let expected = state.timestamp.as_ref().map(|t| t.version());
                match self.store.publish(gun, expected, &update.files, now) {
                    Ok(_) => {
                        self.writes
                            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                        self.wrote.notify_one();
                        tracing::info!(%gun, "re-signed online roles");
                        self.observe(gun, &update.files, update.files.len() as u64);
                    }
                    // Someone else re-signed or published first: theirs is as good.
                    Err(StoreError::Conflict { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                self.state(gun)?
            }
            Err(e) => return Err(ServiceError::Internal(e.to_string())),
        };
        if let (Some(due), Ok(mut m)) = (
            next_refresh_due(&state, &signers, self.lifetimes),
            self.refresh_due.lock(),
        ) {
            m.insert(gun.to_string(), due);
        }
        Ok(())
    }

    /// A counter of the writes this service has made; it changes whenever a publish, a
    /// re-sign or a delete may have changed what a read returns.
    pub fn write_generation(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Acquire)
    }

    /// True when no online role of `gun` needs re-signing now, as of the last full check (so
    /// the current timestamp and snapshot may be served as last read).
    pub fn online_roles_fresh(&self, gun: &Gun) -> bool {
        let now = self.now();
        self.refresh_due
            .lock()
            .ok()
            .and_then(|m| m.get(gun.as_str()).copied())
            .is_some_and(|due| now < due)
    }

    /// Forgets what this service remembers of `gun` because another process sharing the
    /// store changed it (seen in the changefeed): the next read of its online roles looks
    /// at the store again.
    pub fn forget(&self, gun: &Gun) {
        self.invalidate_refresh(gun);
        self.parsed.forget(gun.as_str());
    }

    /// Forgets when `gun` is next due for re-signing (after a publish or delete).
    fn invalidate_refresh(&self, gun: &Gun) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if let Ok(mut m) = self.refresh_due.lock() {
            m.remove(gun.as_str());
        }
    }

    /// One metadata file.
    pub fn file(&self, gun: &Gun, file: &FileRef) -> Result<StoredFile, ServiceError> {
        let found = match file {
            FileRef::Current(role) => {
                if role == "timestamp" || role == "snapshot" {
                    self.refresh(gun)?;
                }
                self.store.get_current(gun, role)?
            }
            FileRef::Version(role, v) => self.store.get_version(gun, role, *v)?,
            FileRef::Checksum(role, sha) => self.store.get_by_checksum(gun, role, sha)?,
            FileRef::Key(_) => None,
        };
        found.ok_or_else(|| ServiceError::NotFound {
            gun: gun.clone(),
            file: describe(file),
        })
    }

    /// The newest online key of (gun, role), created when `create` and absent.
    pub fn key(&self, gun: &Gun, role: &str, create: bool) -> Result<Option<String>, ServiceError> {
        if create {
            writable(gun)?;
        }
        Ok(self
            .keys
            .current(gun, role, create, self.now())?
            .map(|k| k.public))
    }

    /// A new online key for (gun, role), or the newest one while no root lists it yet (see
    /// [`OnlineKeys::rotate`]).
    pub fn rotate_key(&self, gun: &Gun, role: &str) -> Result<String, ServiceError> {
        writable(gun)?;
        let state = self.state(gun)?;
        let named: Vec<KeyId> = match (&state.root, TopLevelRole::from_name(role)) {
            (Some(root), Some(r)) => root.md.signed().role_keys(r).keyids.clone(),
            _ => Vec::new(),
        };
        match self.keys.rotate(gun, role, &named, self.now())? {
            Rotation::New(k) => {
                tracing::info!(%gun, role, keyid = %k.keyid, "rotated online key");
                Ok(k.public)
            }
            Rotation::Pending(k) => {
                tracing::info!(%gun, role, keyid = %k.keyid, "online key rotation already pending: no root lists the newest key yet");
                Ok(k.public)
            }
        }
    }

    /// Deletes a repository's trust data.
    pub fn delete(&self, gun: &Gun) -> Result<bool, ServiceError> {
        let deleted = self.store.delete(gun, self.now())?;
        self.invalidate_refresh(gun);
        self.wrote.notify_one();
        self.parsed.forget(gun.as_str());
        tracing::info!(%gun, deleted, "delete");
        Ok(deleted)
    }

    /// A page of the changefeed.
    pub fn changes(
        &self,
        gun: Option<&Gun>,
        change_id: i64,
        records: i64,
    ) -> Result<Vec<Change>, ServiceError> {
        let limit = records.unsigned_abs().clamp(1, 100) as usize;
        // 0 (or below) means "from the start" forwards and "from the newest" backwards.
        let cursor = (change_id > 0).then_some(change_id);
        let direction = if records < 0 {
            Direction::Backward
        } else {
            Direction::Forward
        };
        Ok(self.store.changes(gun, cursor, direction, limit)?)
    }
}

/// Trust data is written only under a repository's canonical name, the one every client
/// derives from any spelling of its images (`Registry.Example.com:443/org/app` is
/// `registry.example.com/org/app`): data written under another spelling would never be read
/// by a client that normalises names, and two spellings must not hold two trust histories.
fn writable(gun: &Gun) -> Result<(), ServiceError> {
    let canonical = gun.canonical();
    if canonical == *gun {
        return Ok(());
    }
    Err(ServiceError::NameInvalid {
        gun: gun.clone(),
        canonical,
    })
}

/// The key ids the stored root lists for the server-signed roles.
fn online_keyids(state: &RepoState) -> Vec<KeyId> {
    let Some(root) = &state.root else {
        return Vec::new();
    };
    let root = root.md.signed();
    [TopLevelRole::Timestamp, TopLevelRole::Snapshot]
        .into_iter()
        .flat_map(|r| root.role_keys(r).keyids.iter().cloned())
        .collect()
}

fn describe(file: &FileRef) -> String {
    match file {
        FileRef::Current(r) => format!("{r}.json"),
        FileRef::Version(r, v) => format!("{v}.{r}.json"),
        FileRef::Checksum(r, h) => format!("{r}.{h}.json"),
        FileRef::Key(r) => format!("{r}.key"),
    }
}
