//! The [`Updater`]: the TUF client workflow with IO, and the answers image users need.
//!
//! An `Updater` ties a [`Transport`] (where metadata comes from), a [`MetadataStore`] (what
//! was trusted last time) and a [`Clock`] to the sans-IO [`TrustedSet`]:
//! [`Updater::refresh`] runs the top-level update (root walk, timestamp, snapshot,
//! targets), persisting each file as soon as it is trusted; the answers
//! ([`Updater::lookup`], [`Updater::is_trusted`], [`Updater::resolve`],
//! [`Updater::target`]) then search the delegation tree, fetching delegated roles lazily.
//! Questions by digest ([`Updater::is_trusted`], [`Updater::digest_role_paths`]) are
//! answered from an index of every reachable role's targets by digest, built by the first
//! such question after a refresh, so each later one costs a lookup rather than a pass over
//! every target.
//!
//! [`Updater::refresh_for_editing`] runs the same update with expiry not enforced
//! ([`Expiry::IgnoreForEditing`]) and hands the resulting set to its caller, for the owner of
//! a repository who renews expired metadata; it never becomes the set the answers come from
//! (see [`trusted`](crate::trusted) for why persisting what it accepted is safe).
//!
//! Every fetch is bounded in size: root and timestamp by their caps, the others by the
//! length trusted metadata gives but never beyond their cap ([`Limits`]). Every operation is
//! bounded in time: its fetches share one deadline, [`Limits::max_update_duration`] from its
//! start or the one [`Updater::set_deadline`] gives, whichever is earlier; no fetch starts
//! after it, and one still streaming is cut off at it. A failed refresh leaves the cache
//! holding only metadata that passed every check, so the previous trusted state stays usable
//! and the refresh can simply be retried; the in-memory answers are unavailable until a
//! refresh succeeds.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;
use vouch_tuf::json::Value;
use vouch_tuf::metadata::TargetFile;
use vouch_tuf::reference::{Digest, DigestAlgorithm, Gun, ImageRef};
use vouch_tuf::types::{RoleName, TopLevelRole};

use crate::cache::{CacheError, MetadataStore};
use crate::clock::{Clock, SystemClock};
use crate::error::UpdateError;
use crate::limits::Limits;
use crate::search::{Found, SearchStep, TargetSearch};
use crate::transport::{Transport, TransportError};
use crate::trusted::{Expiry, Origin, TimestampUpdate, TrustedSet};

/// Why an [`Updater`] call failed.
#[derive(Debug, Error)]
pub enum Error {
    /// Fetched metadata or a target failed a check of the workflow.
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// A fetch failed.
    #[error("fetch failed: {0}")]
    Transport(#[from] TransportError),
    /// The trusted-metadata cache could not be read or written.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The first root offered is not one the anchor admits ([`Updater::establish`]).
    #[error("{0}")]
    Pin(#[from] crate::pins::PinError),
    /// The cache holds no trusted root: pin one first ([`Updater::pin_root`]).
    #[error("no trusted root in {0}: pin a root first")]
    NoTrustedRoot(String),
    /// Answers need a successful [`Updater::refresh`] first.
    #[error("trusted metadata is not up to date: refresh first")]
    NotRefreshed,
    /// The target exists but carries no image digest (sha256 or sha512 hash).
    #[error("target {0} carries no image digest")]
    NotAnImage(String),
    /// No trusted target has that tag.
    #[error("no trusted target for tag {tag} in {gun}")]
    UnknownTag {
        /// The tag looked up.
        tag: String,
        /// The repository.
        gun: String,
    },
    /// No trusted target carries that digest (or the tag names another digest).
    #[error("digest {digest} is not trusted for {reference}")]
    UntrustedDigest {
        /// The digest.
        digest: String,
        /// The reference resolved.
        reference: String,
    },
    /// The image belongs to another repository than this updater's GUN.
    #[error("image {reference} is not in repository {gun}")]
    WrongRepository {
        /// The reference.
        reference: String,
        /// This updater's GUN.
        gun: String,
    },
}

/// A tag's trusted answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageTarget {
    /// The tag (target name) looked up.
    pub tag: String,
    /// The signed manifest digest (sha256 when the target has one).
    pub digest: Digest,
    /// The manifest's length in bytes.
    pub length: u64,
    /// The target's `custom` data (media type, annotations).
    pub custom: Option<Value>,
    /// The role path that vouched for the tag: the role names from `targets` down to the
    /// role that lists it, each delegated by the one before (compare it with a
    /// [`DelegationPath`](crate::search::DelegationPath), never by a role's name alone).
    pub role_path: Vec<RoleName>,
}

/// The TUF client of one repository: updates its trusted metadata and answers which
/// digests it signed.
pub struct Updater<T: Transport> {
    transport: T,
    store: MetadataStore,
    clock: Arc<dyn Clock>,
    limits: Limits,
    gun: Option<Gun>,
    trusted: Option<TrustedSet>,
    /// Answers of [`Updater::lookup`] since the last refresh (found tags only, so its size is
    /// bounded by the number of trusted targets).
    answers: HashMap<String, ImageTarget>,
    /// No fetch starts after this, nor lasts past it ([`Updater::set_deadline`]).
    deadline: Option<Instant>,
    /// Which targets carry which digest, over every role reachable from `targets`: built
    /// by the first digest question after a refresh, then answering every later one.
    digests: Option<DigestIndex>,
    /// How many times `digests` was built ([`Updater::digest_index_builds`]).
    digest_index_builds: u64,
}

/// Names of the targets carrying each digest (keyed `<algorithm>:<hex>`, as
/// [`Digest::as_str`] spells it), in every role reachable from `targets`, in the order the
/// roles are reached (a name listed by several roles appears once per role). Its size is
/// proportional to the trusted targets metadata it indexes, which the size caps bound.
type DigestIndex = HashMap<String, Vec<String>>;

impl<T: Transport> std::fmt::Debug for Updater<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updater")
            .field("store", &self.store)
            .field("limits", &self.limits)
            .field("gun", &self.gun)
            .finish_non_exhaustive()
    }
}

fn meta_fetch<T: Transport>(
    transport: &T,
    role: &str,
    path: &str,
    max_len: u64,
    deadline: Instant,
) -> Result<Vec<u8>, Error> {
    transport
        .fetch_by(path, max_len, deadline)
        .map_err(|e| match e {
            TransportError::TooLarge { limit, .. } => Error::Update(UpdateError::TooLarge {
                role: role.to_owned(),
                limit,
            }),
            other => Error::Transport(other),
        })
}

impl<T: Transport> Updater<T> {
    /// An updater fetching through `transport`, trusting what `store` holds (which must hold
    /// a root: see [`Updater::pin_root`]), with the system clock and default limits.
    pub fn new(store: MetadataStore, transport: T) -> Self {
        Updater {
            transport,
            store,
            clock: Arc::new(SystemClock),
            limits: Limits::DEFAULT,
            gun: None,
            trusted: None,
            answers: HashMap::new(),
            deadline: None,
            digests: None,
            digest_index_builds: 0,
        }
    }

    /// No fetch of later calls starts after `deadline`, and none still streaming lasts past
    /// it ([`crate::transport::TransportError::TimedOut`]); `None` leaves only
    /// [`Limits::max_update_duration`] per operation. For callers that must answer by a
    /// given time (an admission decision); the trusted state is never changed by a fetch
    /// that did not finish.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// The deadline of an operation starting now.
    fn op_deadline(&self) -> Instant {
        let now = Instant::now();
        let own = now
            .checked_add(self.limits.max_update_duration)
            .unwrap_or(now);
        self.deadline.map_or(own, |d| d.min(own))
    }

    /// Uses `clock` for the reference time of each update.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `limits`.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Names the repository this updater verifies, so [`Updater::resolve`] refuses images of
    /// other repositories.
    pub fn with_gun(mut self, gun: Gun) -> Self {
        self.gun = Some(gun);
        self
    }

    /// Pins `root_bytes` as the trusted root of `store` (the trust-on-first-use or
    /// out-of-band step), after checking that it is root metadata signed by a threshold of
    /// its own root keys.
    pub fn pin_root(store: &MetadataStore, root_bytes: &[u8]) -> Result<(), Error> {
        TrustedSet::new(
            root_bytes,
            vouch_tuf::time::Timestamp::from_unix(0),
            Limits::DEFAULT,
        )?;
        store.store(&TopLevelRole::Root.name(), root_bytes)?;
        Ok(())
    }

    /// Starts the trust of repository `gun` in an empty `store` from `anchor`: the pinned
    /// root file itself, or the repository's first root (`1.root.json`) fetched through
    /// `transport` and checked to be signed by the pinned threshold of pinned keys (or, for
    /// trust on first use, taken as it is); either way it must not name another repository
    /// ([`crate::pins::Anchor::admits`]). Returns the root pinned. Later updates walk the
    /// signed root chain forward from it; nothing is stored when the root is refused.
    ///
    /// The fetch starts no later than `deadline` and is cut off at it (`None`:
    /// [`Limits::max_update_duration`] from now).
    pub fn establish(
        store: &MetadataStore,
        gun: &Gun,
        anchor: &crate::pins::Anchor,
        transport: &T,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, Error> {
        use crate::pins::{Anchor, FirstRoot};
        let limits = Limits::DEFAULT;
        let own = Instant::now()
            .checked_add(limits.max_update_duration)
            .unwrap_or_else(Instant::now);
        let deadline = deadline.map_or(own, |d| d.min(own));
        let bytes = match (anchor, anchor.first_root()) {
            (Anchor::Root(root), _) => root.bytes().to_vec(),
            (_, FirstRoot::Given | FirstRoot::VersionOne) => meta_fetch(
                transport,
                "root",
                "1.root.json",
                limits.root_max_bytes,
                deadline,
            )?,
        };
        anchor.admits(&bytes, gun)?;
        Self::pin_root(store, &bytes)?;
        Ok(bytes)
    }

    /// The trusted set of the last successful refresh.
    pub fn trusted(&self) -> Option<&TrustedSet> {
        self.trusted.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &MetadataStore {
        &self.store
    }

    /// Runs the top-level update of the detailed client workflow (5.2–5.6): walks root
    /// versions, then timestamp, snapshot and targets, with one reference time read from the
    /// clock now. Each file is persisted as soon as it is trusted; snapshot and targets are
    /// only fetched when the cached copies are not the versions now current.
    pub fn refresh(&mut self) -> Result<(), Error> {
        let set = self.update(Expiry::Enforce)?;
        self.trusted = Some(set);
        Ok(())
    }

    /// Runs the same update as [`Updater::refresh`] with every check but expiry
    /// ([`Expiry::IgnoreForEditing`]), and returns the trusted set, for the owner of the
    /// repository who writes its next state: expired roles can then be re-signed. What it
    /// accepted is persisted like any update (a sound rollback baseline; the next
    /// [`Updater::refresh`] checks expiry again). The set is not kept: the answers
    /// ([`Updater::lookup`], [`Updater::is_trusted`], [`Updater::resolve`]) stay unavailable
    /// until a [`Updater::refresh`] succeeds.
    pub fn refresh_for_editing(&mut self) -> Result<TrustedSet, Error> {
        self.update(Expiry::IgnoreForEditing)
    }

    fn update(&mut self, expiry: Expiry) -> Result<TrustedSet, Error> {
        self.trusted = None;
        self.answers.clear();
        self.digests = None;
        // Files are flushed one by one as they are trusted; their directory once at the end,
        // whatever the outcome (what was persisted stays persisted).
        let mut wrote = false;
        let result = self.update_persisting(expiry, &mut wrote);
        if wrote {
            self.store.sync_dir();
        }
        result
    }

    fn update_persisting(&self, expiry: Expiry, wrote: &mut bool) -> Result<TrustedSet, Error> {
        let limits = self.limits;
        let deadline = self.op_deadline();
        let store = &self.store;
        let transport = &self.transport;
        let now = self.clock.now();
        let root_role = TopLevelRole::Root.name();
        let ts_role = TopLevelRole::Timestamp.name();
        let sn_role = TopLevelRole::Snapshot.name();
        let tg_role = TopLevelRole::Targets.name();

        // 5.2: the trusted root.
        let root = store
            .load(&root_role, limits.root_max_bytes)?
            .ok_or_else(|| Error::NoTrustedRoot(store.dir().display().to_string()))?;
        let mut set = TrustedSet::with_expiry(&root, now, limits, expiry)?;

        // 5.3: the root walk.
        while set.root_rotations() < limits.max_root_rotations {
            let name = set.next_root_file();
            match transport.fetch_by(&name, limits.root_max_bytes, deadline) {
                Ok(bytes) => {
                    set.update_root(&bytes)?;
                    store.store_leaving_dir(&root_role, &bytes)?;
                    *wrote = true;
                }
                Err(e) if e.is_not_found() => break,
                Err(TransportError::TooLarge { limit, .. }) => {
                    return Err(UpdateError::TooLarge {
                        role: "root".to_owned(),
                        limit,
                    }
                    .into())
                }
                Err(e) => return Err(e.into()),
            }
        }
        set.check_root_expiry()?;

        // 5.3.11: cached timestamp and snapshot, unless their keys rotated.
        if let Some(bytes) = store.load(&ts_role, limits.timestamp_max_bytes)? {
            if let Err(UpdateError::KeysRotated { .. }) =
                set.update_timestamp(&bytes, Origin::Cache)
            {
                store.remove(&ts_role)?;
            }
        }
        if let Some(bytes) = store.load(&sn_role, limits.snapshot_max_bytes)? {
            if let Err(UpdateError::KeysRotated { .. }) = set.update_snapshot(&bytes, Origin::Cache)
            {
                store.remove(&sn_role)?;
            }
        }

        // 5.4: timestamp.
        let bytes = meta_fetch(
            transport,
            "timestamp",
            "timestamp.json",
            limits.timestamp_max_bytes,
            deadline,
        )?;
        if set.update_timestamp(&bytes, Origin::Remote)? == TimestampUpdate::Updated {
            store.store_leaving_dir(&ts_role, &bytes)?;
            *wrote = true;
        }

        // 5.5: snapshot, unless the cached one is the current one. Read at most its cap,
        // whatever length the (online-key-signed) timestamp announces.
        if set.check_final_snapshot().is_err() {
            let req = set.snapshot_request()?;
            let max_len = limits.snapshot_fetch_len(req.max_len);
            let bytes = meta_fetch(transport, "snapshot", &req.file_name, max_len, deadline)?;
            set.update_snapshot(&bytes, Origin::Remote)?;
            store.store_leaving_dir(&sn_role, &bytes)?;
            *wrote = true;
        }

        // 5.6: top-level targets, unless the cached one is the current one.
        let cached = store.load(&tg_role, limits.targets_max_bytes)?;
        if cached.is_none_or(|b| set.update_targets(&b).is_err()) {
            let req = set.targets_request(&tg_role)?;
            let max_len = limits.targets_fetch_len(req.max_len);
            let bytes = meta_fetch(transport, "targets", &req.file_name, max_len, deadline)?;
            set.update_targets(&bytes)?;
            store.store_leaving_dir(&tg_role, &bytes)?;
            *wrote = true;
        }
        Ok(set)
    }

    /// Searches the delegation tree for target `name` (5.6.7), fetching delegated roles
    /// on the search path that are not trusted yet.
    pub fn target(&mut self, name: &str) -> Result<Option<Found>, Error> {
        // The search always visits top-level targets first: answer from it directly when it
        // lists the name (the common case, and what makes warm lookups cheap).
        let set = self.trusted.as_ref().ok_or(Error::NotRefreshed)?;
        if let Some(t) = set.targets().and_then(|md| md.signed().targets.get(name)) {
            return Ok(Some(Found {
                target: t.clone(),
                role_path: vec![TopLevelRole::Targets.name()],
            }));
        }
        let mut search = TargetSearch::new(name);
        self.run_search(&mut search)
    }

    fn run_search(&mut self, search: &mut TargetSearch) -> Result<Option<Found>, Error> {
        let deadline = self.op_deadline();
        let set = self.trusted.as_mut().ok_or(Error::NotRefreshed)?;
        loop {
            match search.step(set)? {
                SearchStep::Found(found) => return Ok(Some(found)),
                SearchStep::NotFound => return Ok(None),
                SearchStep::Load { role, parent } => {
                    load_delegated(set, &self.store, &self.transport, &role, &parent, deadline)?;
                }
            }
        }
    }

    /// What the repository signed for `tag`: the digest, length, custom data and the role
    /// path that signed it; `None` when no role that may sign the tag lists it.
    pub fn lookup(&mut self, tag: &str) -> Result<Option<ImageTarget>, Error> {
        if let Some(answer) = self.answers.get(tag) {
            return Ok(Some(answer.clone()));
        }
        let Some(found) = self.target(tag)? else {
            return Ok(None);
        };
        let digest =
            image_digest(&found.target).ok_or_else(|| Error::NotAnImage(tag.to_owned()))?;
        let answer = ImageTarget {
            tag: tag.to_owned(),
            digest,
            length: found.target.length,
            custom: found.target.custom,
            role_path: found.role_path,
        };
        self.answers.insert(tag.to_owned(), answer.clone());
        Ok(Some(answer))
    }

    /// True when some target visible through the delegation tree carries `digest`: a
    /// target whose name is found, by the delegation search, in a role that lists it with
    /// that hash.
    ///
    /// Reads every role reachable from `targets`, at most [`Limits::max_delegations`] of
    /// them; a larger delegation tree fails with [`UpdateError::DelegationLimit`].
    pub fn is_trusted(&mut self, digest: &Digest) -> Result<bool, Error> {
        if let Some(found) = self.target(digest.as_str())? {
            if found.target.has_digest(digest) {
                return Ok(true);
            }
        }
        for name in self.names_carrying(digest)? {
            if let Some(found) = self.target(&name)? {
                if found.target.has_digest(digest) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The role paths that vouch for `digest`: for each target carrying it in a role
    /// reachable from `targets`, the path the delegation search gives for that target's name
    /// (so delegation order, paths and terminating roles apply), each path once, in the
    /// order the roles are reached. Empty when the digest is not trusted
    /// ([`Updater::is_trusted`] is true exactly when this is not empty).
    ///
    /// Reads every role reachable from `targets`, at most [`Limits::max_delegations`] of
    /// them; a larger delegation tree fails with [`UpdateError::DelegationLimit`].
    pub fn digest_role_paths(&mut self, digest: &Digest) -> Result<Vec<Vec<RoleName>>, Error> {
        let mut names = self.names_carrying(digest)?;
        let mut seen = HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
        let mut paths: Vec<Vec<RoleName>> = Vec::new();
        for name in names {
            if let Some(found) = self.target(&name)? {
                if found.target.has_digest(digest) && !paths.contains(&found.role_path) {
                    paths.push(found.role_path);
                }
            }
        }
        Ok(paths)
    }

    /// Names of targets carrying `digest` in any role reachable from `targets`, in the order
    /// the roles are reached. The first call after a refresh reads every such role once (at
    /// most `max_delegations` of them) and indexes their targets by digest; later calls are
    /// one lookup in that index, so checking many digests against one trusted state costs
    /// one pass over its targets, not one per digest.
    fn names_carrying(&mut self, digest: &Digest) -> Result<Vec<String>, Error> {
        if self.digests.is_none() {
            let index = self.index_digests()?;
            self.digests = Some(index);
            self.digest_index_builds += 1;
        }
        Ok(self
            .digests
            .as_ref()
            .and_then(|index| index.get(digest.as_str()))
            .cloned()
            .unwrap_or_default())
    }

    /// The [`DigestIndex`] of the trusted state: every role reachable from `targets` (each at
    /// most once, at most `max_delegations` roles), fetched when not trusted yet.
    fn index_digests(&mut self) -> Result<DigestIndex, Error> {
        let max = self.limits.max_delegations;
        let deadline = self.op_deadline();
        let set = self.trusted.as_mut().ok_or(Error::NotRefreshed)?;
        let mut index = DigestIndex::new();
        let mut seen = HashSet::new();
        let mut stack = vec![(TopLevelRole::Targets.name(), TopLevelRole::Targets.name())];
        while let Some((role, parent)) = stack.pop() {
            if !seen.insert(role.clone()) {
                continue;
            }
            if seen.len() > max as usize {
                return Err(UpdateError::DelegationLimit { limit: max }.into());
            }
            if set.targets_role(role.as_str()).is_none() {
                load_delegated(set, &self.store, &self.transport, &role, &parent, deadline)?;
            }
            let Some(md) = set.targets_role(role.as_str()) else {
                continue;
            };
            let signed = md.signed();
            for (name, t) in &signed.targets {
                // Exactly what `TargetFile::has_digest` compares: the hash as listed.
                for alg in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
                    let alg = alg.as_str();
                    if let Some(hex) = t.hashes.get(alg) {
                        index
                            .entry(format!("{alg}:{hex}"))
                            .or_default()
                            .push(name.as_str().to_owned());
                    }
                }
            }
            if let Some(d) = &signed.delegations {
                for child in d.roles.iter().rev() {
                    stack.push((child.name.clone(), role.clone()));
                }
            }
        }
        Ok(index)
    }

    /// How many times this updater read the targets of every reachable role to answer a
    /// digest question ([`Updater::is_trusted`], [`Updater::digest_role_paths`]): once per
    /// trusted state at most, however many digests are asked about.
    pub fn digest_index_builds(&self) -> u64 {
        self.digest_index_builds
    }

    /// Pins an image reference to its trusted digest: `host/org/app:tag` becomes
    /// `host/org/app@sha256:…`. A reference that already carries a digest is returned
    /// pinned when that digest is trusted (and, if it also names a tag, is the tag's digest).
    pub fn resolve(&mut self, image: &ImageRef) -> Result<ImageRef, Error> {
        if let Some(gun) = &self.gun {
            if &image.gun() != gun {
                return Err(Error::WrongRepository {
                    reference: image.to_string(),
                    gun: gun.to_string(),
                });
            }
        }
        let pinned = |d: &Digest| {
            ImageRef::parse(&format!("{}@{}", image.name(), d)).map_err(|_| {
                Error::UntrustedDigest {
                    digest: d.to_string(),
                    reference: image.to_string(),
                }
            })
        };
        if let Some(digest) = image.digest() {
            let ok = match image.tag() {
                Some(tag) => self.lookup(tag)?.is_some_and(|t| &t.digest == digest),
                None => self.is_trusted(digest)?,
            };
            if !ok {
                return Err(Error::UntrustedDigest {
                    digest: digest.to_string(),
                    reference: image.to_string(),
                });
            }
            return pinned(digest);
        }
        let tag = image.tag_or_latest();
        match self.lookup(tag)? {
            Some(t) => pinned(&t.digest),
            None => Err(Error::UnknownTag {
                tag: tag.to_owned(),
                gun: image.name(),
            }),
        }
    }

    /// Downloads target `name`, as found by [`Updater::target`], through `targets`
    /// (whose base is the repository's targets URL or directory), reading at most its
    /// trusted length and checking its length and every hash. With consistent snapshots the
    /// file fetched is `DIR/HASH.BASENAME` (sha256 preferred).
    pub fn download_target(
        &self,
        name: &str,
        target: &TargetFile,
        targets: &impl Transport,
    ) -> Result<Vec<u8>, Error> {
        let set = self.trusted.as_ref().ok_or(Error::NotRefreshed)?;
        let path = target_path(name, target, set.consistent_snapshot());
        let bytes = targets
            .fetch_by(&path, target.length, self.op_deadline())
            .map_err(|e| match e {
                TransportError::TooLarge { limit, .. } => Error::Update(UpdateError::TooLarge {
                    role: name.to_owned(),
                    limit,
                }),
                other => Error::Transport(other),
            })?;
        check_target(name, target, &bytes)?;
        Ok(bytes)
    }
}

/// Checks downloaded target bytes against the trusted length and hashes.
pub fn check_target(name: &str, target: &TargetFile, bytes: &[u8]) -> Result<(), UpdateError> {
    target
        .check(bytes)
        .map_err(|mismatch| UpdateError::LengthOrHashMismatch {
            role: name.to_owned(),
            mismatch,
        })
}

/// The path a target is fetched from: `name`, or with consistent snapshots
/// `DIR/HASH.BASENAME`.
pub fn target_path(name: &str, target: &TargetFile, consistent_snapshot: bool) -> String {
    if !consistent_snapshot {
        return name.to_owned();
    }
    let hash = target
        .hashes
        .get("sha256")
        .or_else(|| target.hashes.values().next())
        .map(String::as_str)
        .unwrap_or_default();
    match name.rsplit_once('/') {
        Some((dir, base)) => format!("{dir}/{hash}.{base}"),
        None => format!("{hash}.{name}"),
    }
}

fn image_digest(target: &TargetFile) -> Option<Digest> {
    if let Some(d) = target
        .hashes
        .get("sha256")
        .and_then(|h| Digest::new(DigestAlgorithm::Sha256, h).ok())
    {
        return Some(d);
    }
    target.digests().into_iter().next()
}

fn load_delegated<T: Transport>(
    set: &mut TrustedSet,
    store: &MetadataStore,
    transport: &T,
    role: &RoleName,
    parent: &RoleName,
    deadline: Instant,
) -> Result<(), Error> {
    let limits = *set.limits();
    if let Some(bytes) = store.load(role, limits.targets_max_bytes)? {
        if set.update_delegated(role, parent, &bytes).is_ok() {
            return Ok(());
        }
    }
    let req = set.targets_request(role)?;
    let max_len = limits.targets_fetch_len(req.max_len);
    let bytes = meta_fetch(transport, role.as_str(), &req.file_name, max_len, deadline)?;
    set.update_delegated(role, parent, &bytes)?;
    store.store(role, &bytes)?;
    Ok(())
}
