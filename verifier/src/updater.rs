//! The [`Updater`]: the TUF client workflow with IO, and the answers image users need.
//!
//! An `Updater` ties a [`Transport`] (where metadata comes from), a [`MetadataStore`] (what
//! was trusted last time) and a [`Clock`] to the sans-IO [`TrustedSet`]:
//! [`Updater::refresh`] runs the top-level update (root walk, timestamp, snapshot,
//! targets), persisting each file as soon as it is trusted; the answers
//! ([`Updater::lookup`], [`Updater::is_trusted`], [`Updater::resolve`],
//! [`Updater::target`]) then search the delegation tree, fetching delegated roles lazily.
//! [`Updater::vouch`] is the home of "resolve an image and say which role paths vouched
//! for it": the rules for a tag, a tag with a digest and a bare digest, with the answer
//! ([`Vouched`]) checking requirements on the role path; [`Updater::resolve`] is its pinned
//! image, and the CLI's `verify` and the admission webhook both decide by it.
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
use vouch_tuf::oci::TRUST_TAG;
use vouch_tuf::reference::{Digest, DigestAlgorithm, Gun, ImageRef};
use vouch_tuf::types::{RoleName, TopLevelRole};

use crate::cache::{CacheError, MetadataStore};
use crate::clock::{Clock, SystemClock};
use crate::error::UpdateError;
use crate::limits::Limits;
use crate::search::{DelegationPath, Found, SearchStep, TargetSearch};
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
    /// The cached root no longer parses or verifies against itself, and no usable record of
    /// the pin trust started from lies beside it. The cache only ever writes verified roots,
    /// atomically, so the files were damaged on disk: nothing fetched is involved, and the
    /// repository's trust must be established again from its pin (whoever holds the pin:
    /// [`Updater::establish`], or `vouch init` / the pins file for people).
    #[error(
        "the trusted root cached in {dir} is damaged ({root}), and {pin}: establish the \
         repository's trust again from its pin (or remove the directory)"
    )]
    DamagedCache {
        /// The repository's cache directory.
        dir: String,
        /// What is wrong with the cached root.
        root: String,
        /// Why the record of the pin cannot take its place.
        pin: String,
    },
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
        /// For a reference naming a tag and a digest, when the tag is signed: the digest it
        /// is signed for (another one). `None` when the tag is not signed, or the reference
        /// names no tag.
        signed: Option<Digest>,
    },
    /// A question by digest needed to examine more names carrying the digest than
    /// [`MAX_NAMES_PER_DIGEST`]: it fails closed rather than cost what a signer listing the
    /// digest under countless names chose.
    #[error("{count} target names carry {digest}; a question by digest examines at most {limit}")]
    TooManyNames {
        /// The digest.
        digest: String,
        /// How many distinct names carry it.
        count: usize,
        /// [`MAX_NAMES_PER_DIGEST`].
        limit: usize,
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
    /// [`DelegationPath`], never by a role's name alone).
    pub role_path: Vec<RoleName>,
}

/// What a repository vouches for an image ([`Updater::vouch`]): the image pinned to its
/// signed digest, and every role path that vouched for it.
///
/// Built only by [`Updater::vouch`], so it always holds at least one role path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vouched {
    pinned: ImageRef,
    digest: Digest,
    paths: Vec<Vec<RoleName>>,
}

/// A requirement that no role path which vouched for an image meets ([`Vouched::unmet`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unmet<'a> {
    /// The first role path that vouched for the image.
    pub role_path: &'a [RoleName],
    /// The first requirement that path does not meet.
    pub required: &'a DelegationPath,
}

impl Unmet<'_> {
    /// The role path as messages show it, written like a [`DelegationPath`]:
    /// `targets -> targets/dev`.
    pub fn role_path_text(&self) -> String {
        self.role_path
            .iter()
            .map(RoleName::as_str)
            .collect::<Vec<_>>()
            .join(" -> ")
    }
}

impl Vouched {
    /// The image pinned to its signed digest: `name@digest` (canonical name, no tag).
    pub fn pinned(&self) -> &ImageRef {
        &self.pinned
    }

    /// The signed digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Every role path that vouched for the image, each `targets` first and none twice: for
    /// a tag (with or without a digest) the one the delegation search finds the tag
    /// through; for a bare digest one per target carrying it, in the order the roles are
    /// reached ([`Updater::digest_role_paths`]). Never empty.
    pub fn paths(&self) -> &[Vec<RoleName>] {
        &self.paths
    }

    /// The first role path that vouched for the image (for a tag, the only one).
    pub fn role_path(&self) -> &[RoleName] {
        self.paths.first().map(Vec::as_slice).unwrap_or_default()
    }

    /// True when some role path that vouched for the image meets every requirement in
    /// `required` ([`DelegationPath::vouches_for`]); true for no requirement. One path must
    /// meet them all: a digest listed through `targets → a` and through `targets → b` does
    /// not meet `[a, b]`.
    pub fn satisfies(&self, required: &[DelegationPath]) -> bool {
        self.paths
            .iter()
            .any(|p| required.iter().all(|r| r.vouches_for(p)))
    }

    /// `None` when [`Vouched::satisfies`] holds; otherwise the first role path that vouched
    /// and the first of `required` it does not meet, to say why.
    pub fn unmet<'a>(&'a self, required: &'a [DelegationPath]) -> Option<Unmet<'a>> {
        if self.satisfies(required) {
            return None;
        }
        let role_path = self.role_path();
        required
            .iter()
            .find(|r| !r.vouches_for(role_path))
            .map(|required| Unmet {
                role_path,
                required,
            })
    }
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

/// When a question by digest has found what it needs: given a role path that vouches, true
/// to stop looking.
type Enough<'a> = &'a dyn Fn(&[RoleName]) -> bool;

/// Most distinct target names carrying one digest that a question by digest examines before
/// it has its answer: each costs a delegation search, and a delegated signer chooses how many
/// names it lists. A question that needs more fails closed ([`Error::TooManyNames`]); one
/// answered by an early name (the usual case) never gets near it.
pub const MAX_NAMES_PER_DIGEST: usize = 4096;

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

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
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
        match self.update_once(expiry) {
            // A key rotation the server committed between this update's root walk and a
            // later fetch looks like this: the timestamp, snapshot or targets is signed by a
            // key only the next root lists. Walking the roots again finds that root. Once:
            // what fails twice is reported, so a server that always answers so costs one
            // more update, not a loop.
            Err(Error::Update(UpdateError::ThresholdNotMet { role, .. })) if role != "root" => {
                self.update_once(expiry)
            }
            other => other,
        }
    }

    fn update_once(&mut self, expiry: Expiry) -> Result<TrustedSet, Error> {
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

        // 5.2: the trusted root. The cache only ever holds a root that verified, written
        // atomically; one that no longer parses or verifies against itself was damaged on
        // disk. Then trust starts again from where it started for this repository (the
        // pinned root, when recorded), as a new client with the same pin would, and walks
        // the signed chain forward; without a recorded pin the damage is reported.
        let root = store
            .load(&root_role, limits.root_max_bytes)?
            .ok_or_else(|| Error::NoTrustedRoot(store.dir().display().to_string()))?;
        let mut set = match TrustedSet::with_expiry(&root, now, limits, expiry) {
            Ok(set) => set,
            Err(damaged) => {
                let unusable = |pin: String| Error::DamagedCache {
                    dir: store.dir().display().to_string(),
                    root: damaged.to_string(),
                    pin,
                };
                let Some(pin) = store.pin()? else {
                    return Err(unusable("no pin is recorded beside it".to_owned()));
                };
                let set = TrustedSet::with_expiry(&pin.root, now, limits, expiry)
                    .map_err(|e| unusable(format!("the record of its pin is damaged too ({e})")))?;
                store.store_leaving_dir(&root_role, &pin.root)?;
                *wrote = true;
                set
            }
        };

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
    ///
    /// `_vouch.trust` ([`TRUST_TAG`]) is never an image: it is the tag a registry keeps the
    /// repository's trust under, which vouch-server refuses to sign; a target of that name
    /// (metadata from elsewhere, or stored before the rule) answers `None`.
    pub fn lookup(&mut self, tag: &str) -> Result<Option<ImageTarget>, Error> {
        if tag == TRUST_TAG {
            return Ok(None);
        }
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
        Ok(!self
            .digest_paths(digest, Some(&|_: &[RoleName]| true))?
            .is_empty())
    }

    /// The role paths that vouch for `digest`: for each target carrying it in a role
    /// reachable from `targets`, the path the delegation search gives for that target's name
    /// (so delegation order, paths and terminating roles apply), each path once, in the
    /// order the roles are reached. Empty when the digest is not trusted
    /// ([`Updater::is_trusted`] is true exactly when this is not empty).
    ///
    /// Reads every role reachable from `targets`, at most [`Limits::max_delegations`] of
    /// them; a larger delegation tree fails with [`UpdateError::DelegationLimit`]. At most
    /// [`MAX_NAMES_PER_DIGEST`] names carrying the digest are examined
    /// ([`Error::TooManyNames`] when there are more).
    pub fn digest_role_paths(&mut self, digest: &Digest) -> Result<Vec<Vec<RoleName>>, Error> {
        self.digest_paths(digest, None)
    }

    /// The one rule behind every question by digest ([`Updater::is_trusted`],
    /// [`Updater::digest_role_paths`], [`Updater::vouch_requiring`]): a target carrying
    /// `digest` vouches for it through the path the delegation search gives **for that
    /// target's name**, and only when the target the search finds under that name carries
    /// the digest (a role listing the name outside its delegated paths, or behind a
    /// terminating delegation, or after a role that lists the name with another digest,
    /// does not vouch). With `enough`, stops as soon as a path it accepts is found, trying
    /// a target named after the digest first (what `vouch sign` writes for a bare digest);
    /// without, returns every path in the order the roles are reached.
    fn digest_paths(
        &mut self,
        digest: &Digest,
        enough: Option<Enough<'_>>,
    ) -> Result<Vec<Vec<RoleName>>, Error> {
        let mut paths: Vec<Vec<RoleName>> = Vec::new();
        if let Some(enough) = enough {
            if let Some(found) = self.target(digest.as_str())? {
                if found.target.has_digest(digest) {
                    let done = enough(&found.role_path);
                    paths.push(found.role_path);
                    if done {
                        return Ok(paths);
                    }
                }
            }
        }
        let mut names = self.names_carrying(digest)?;
        let mut seen = HashSet::new();
        // The registry's trust tag never names an image (see `lookup`).
        names.retain(|n| n != TRUST_TAG && seen.insert(n.clone()));
        let count = names.len();
        for (examined, name) in names.into_iter().enumerate() {
            // Bounded whatever the signers listed: a question that has not found what it
            // needs among this many names fails closed.
            if examined == MAX_NAMES_PER_DIGEST {
                return Err(Error::TooManyNames {
                    digest: digest.to_string(),
                    count,
                    limit: MAX_NAMES_PER_DIGEST,
                });
            }
            if let Some(found) = self.target(&name)? {
                if found.target.has_digest(digest) && !paths.contains(&found.role_path) {
                    let done = enough.is_some_and(|e| e(&found.role_path));
                    paths.push(found.role_path);
                    if done {
                        break;
                    }
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

    /// Whether the repository vouches for `image`, and through which role paths: the one
    /// answer the CLI's `verify` and the admission webhook give.
    ///
    /// - A tag (`app:v1`, or no tag and no digest: `latest`) is vouched for when a role that
    ///   may sign it lists it ([`Updater::lookup`]); it is pinned to the digest signed, and
    ///   the role path is the one the delegation search finds the tag through. Otherwise
    ///   [`Error::UnknownTag`].
    /// - A tag with a digest (`app:v1@sha256:…`, `app:v1@sha512:…`) is vouched for when the
    ///   tag is signed for exactly that digest: the tag's hash of the digest's algorithm is
    ///   the digest's (a `sha512:` pin is never compared with the tag's sha256); the role
    ///   path is the tag's. Otherwise [`Error::UntrustedDigest`], whose `signed` names the
    ///   tag's digest when the tag is signed for another one, or carries no hash of that
    ///   algorithm (then `signed` is of another algorithm than the pin).
    /// - A bare digest (`app@sha256:…`) is vouched for when some target visible through the
    ///   delegation tree carries it; its role paths are every path that vouches for it
    ///   ([`Updater::digest_role_paths`]: a digest signed under several names, by several
    ///   roles, has several). Otherwise [`Error::UntrustedDigest`].
    ///
    /// When the updater names its repository ([`Updater::with_gun`]), an image of another
    /// repository is refused ([`Error::WrongRepository`]). Requirements on the role path
    /// are checked on the answer ([`Vouched::satisfies`]).
    pub fn vouch(&mut self, image: &ImageRef) -> Result<Vouched, Error> {
        self.vouch_with(image, None)
    }

    /// [`Updater::vouch`] for a caller that requires every vouching path it acts on to
    /// meet `required` ([`Vouched::satisfies`]): for a bare digest the search stops at the
    /// first path that meets them all (at the first path for no requirement), so a
    /// question costs what it needs rather than one delegation search per name the digest
    /// is listed under. The answer's [`Vouched::paths`] ends with that path; when none meets
    /// the requirements, it holds every vouching path, for [`Vouched::unmet`] to explain.
    pub fn vouch_requiring(
        &mut self,
        image: &ImageRef,
        required: &[DelegationPath],
    ) -> Result<Vouched, Error> {
        let meets = |p: &[RoleName]| required.iter().all(|r| r.vouches_for(p));
        self.vouch_with(image, Some(&meets))
    }

    fn vouch_with(
        &mut self,
        image: &ImageRef,
        enough: Option<Enough<'_>>,
    ) -> Result<Vouched, Error> {
        if let Some(gun) = &self.gun {
            if &image.gun() != gun {
                return Err(Error::WrongRepository {
                    reference: image.to_string(),
                    gun: gun.to_string(),
                });
            }
        }
        let untrusted = |digest: &Digest, signed: Option<Digest>| Error::UntrustedDigest {
            digest: digest.to_string(),
            reference: image.to_string(),
            signed,
        };
        let (digest, paths) = match (image.tag(), image.digest()) {
            (Some(tag), Some(digest)) => match self.lookup(tag)? {
                Some(t) if &t.digest == digest => (t.digest, vec![t.role_path]),
                // The pin names another algorithm than the tag's answer (`sha512:` for a
                // tag signed with both hashes): compare it with the tag's hash of that
                // algorithm, never with another algorithm's.
                Some(t) if t.digest.algorithm() != digest.algorithm() => match self.target(tag)? {
                    Some(found) if found.target.has_digest(digest) => {
                        (digest.clone(), vec![found.role_path])
                    }
                    Some(found) => {
                        let signed =
                            digest_of(&found.target, digest.algorithm()).unwrap_or(t.digest);
                        return Err(untrusted(digest, Some(signed)));
                    }
                    None => return Err(untrusted(digest, None)),
                },
                other => return Err(untrusted(digest, other.map(|t| t.digest))),
            },
            (None, Some(digest)) => {
                let paths = self.digest_paths(digest, enough)?;
                if paths.is_empty() {
                    return Err(untrusted(digest, None));
                }
                (digest.clone(), paths)
            }
            (_, None) => {
                let tag = image.tag_or_latest();
                match self.lookup(tag)? {
                    Some(t) => (t.digest, vec![t.role_path]),
                    None => {
                        return Err(Error::UnknownTag {
                            tag: tag.to_owned(),
                            gun: image.name(),
                        })
                    }
                }
            }
        };
        let pinned = ImageRef::parse(&format!("{}@{}", image.name(), digest))
            .map_err(|_| untrusted(&digest, None))?;
        Ok(Vouched {
            pinned,
            digest,
            paths,
        })
    }

    /// Pins an image reference to its trusted digest: `host/org/app:tag` becomes
    /// `host/org/app@sha256:…`. A reference that already carries a digest is returned
    /// pinned when that digest is trusted (and, if it also names a tag, is the tag's digest).
    /// The pinned image of [`Updater::vouch`].
    pub fn resolve(&mut self, image: &ImageRef) -> Result<ImageRef, Error> {
        self.vouch(image).map(|v| v.pinned)
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
        let path = target_path(name, target, set.consistent_snapshot())?;
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
/// `DIR/HASH.BASENAME` (sha256 preferred).
///
/// The hashes are checked first, by the one rule for them
/// ([`TargetFile::check_hashes`]): a hash that is not the lowercase hex digest of its
/// algorithm (say, `../../x`) is refused before it can become part of a path handed to a
/// transport, rather than after the download.
pub fn target_path(
    name: &str,
    target: &TargetFile,
    consistent_snapshot: bool,
) -> Result<String, UpdateError> {
    target
        .check_hashes()
        .map_err(|mismatch| UpdateError::LengthOrHashMismatch {
            role: name.to_owned(),
            mismatch,
        })?;
    if !consistent_snapshot {
        return Ok(name.to_owned());
    }
    let hash = target
        .hashes
        .get("sha256")
        .or_else(|| target.hashes.values().next())
        .map(String::as_str)
        .unwrap_or_default();
    Ok(match name.rsplit_once('/') {
        Some((dir, base)) => format!("{dir}/{hash}.{base}"),
        None => format!("{hash}.{name}"),
    })
}

/// The target's hash of `algorithm` as a digest, when it lists a well-formed one.
fn digest_of(target: &TargetFile, algorithm: DigestAlgorithm) -> Option<Digest> {
    let hex = target.hashes.get(&algorithm.to_string())?;
    Digest::new(algorithm, hex).ok()
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::clock::TestClock;
    use crate::test_repo::*;

    /// `targets` lists `latest` and a digest-named target; `targets/releases` (`*`) lists
    /// `v1` and a digest-named target; `targets/dev` (`*`) lists `nightly`, the same
    /// manifest as `v1`.
    struct Fixture {
        repo: Repo,
        latest: Digest,
        v1: Digest,
        untagged: Digest,
        delegated_untagged: Digest,
    }

    fn fixture() -> Fixture {
        let mut repo = Repo::new();
        let latest = repo.add_image("targets", "latest", b"latest");
        let untagged = Digest::sha256_of(b"untagged");
        repo.add_image("targets", untagged.as_str(), b"untagged");
        repo.delegate("targets", "targets/releases", &["*"], false);
        let v1 = repo.add_image("targets/releases", "v1", b"v1");
        let delegated_untagged = Digest::sha256_of(b"delegated untagged");
        repo.add_image(
            "targets/releases",
            delegated_untagged.as_str(),
            b"delegated untagged",
        );
        repo.delegate("targets", "targets/dev", &["*"], false);
        repo.add_image("targets/dev", "nightly", b"v1");
        repo.publish_all_delegated_as_is();
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        Fixture {
            repo,
            latest,
            v1,
            untagged,
            delegated_untagged,
        }
    }

    fn updater(dir: &std::path::Path, repo: &Repo) -> Updater<MemoryTransport> {
        let store = MetadataStore::open(dir).unwrap();
        Updater::<MemoryTransport>::pin_root(&store, &repo.root_bytes(1)).unwrap();
        let mut up = Updater::new(store, MemoryTransport::new(&repo.files))
            .with_clock(Arc::new(TestClock::new(NOW)))
            .with_gun(Gun::new("registry.example.com/org/app").unwrap());
        up.refresh().unwrap();
        up
    }

    /// A cached root damaged on disk: trust starts again from the recorded pin and walks
    /// forward; without a pin record, the damage is an error (nothing is guessed).
    #[test]
    fn a_damaged_cached_root_restarts_from_the_recorded_pin() {
        let f = fixture();
        let dir = tempfile::tempdir().unwrap();
        let mut up = updater(dir.path(), &f.repo);
        assert!(up.lookup("latest").is_ok());
        let root_file = dir.path().join("root.json");
        let good = std::fs::read(&root_file).unwrap();
        std::fs::write(&root_file, &good[..100]).unwrap();
        let fresh = || {
            Updater::new(
                MetadataStore::open(dir.path()).unwrap(),
                MemoryTransport::new(&f.repo.files),
            )
            .with_clock(Arc::new(TestClock::new(NOW)))
            .with_gun(Gun::new("registry.example.com/org/app").unwrap())
        };
        let damaged = |e: Error, pin: &str| match e {
            Error::DamagedCache {
                dir: d,
                root,
                pin: p,
            } => {
                assert_eq!(d, dir.path().display().to_string());
                assert!(root.contains("JSON"), "{root}");
                assert!(p.contains(pin), "{p}");
            }
            other => panic!("{other:?}"),
        };
        damaged(fresh().refresh().unwrap_err(), "no pin is recorded");
        let store = MetadataStore::open(dir.path()).unwrap();
        // A pin record damaged too is reported as such, and nothing is written.
        store.record_pin(b"{\"signed\": 1}", "test").unwrap();
        damaged(fresh().refresh().unwrap_err(), "is damaged too");
        assert_eq!(std::fs::read(&root_file).unwrap(), &good[..100]);
        store.record_pin(&f.repo.root_bytes(1), "test").unwrap();
        let mut again = fresh();
        again.refresh().unwrap();
        assert_eq!(again.lookup("latest").unwrap().unwrap().digest, f.latest);
        assert_eq!(std::fs::read(&root_file).unwrap(), good);
    }

    /// Serves one repository state, and another from the first fetch of `at` on: a change
    /// the server commits while an update is under way.
    struct CommitsAt {
        served: MemoryTransport,
        after: std::collections::BTreeMap<String, Vec<u8>>,
        at: &'static str,
        committed: std::sync::atomic::AtomicBool,
    }

    impl Transport for CommitsAt {
        fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
            use std::sync::atomic::Ordering;
            if path == self.at && !self.committed.swap(true, Ordering::SeqCst) {
                self.served.set(&self.after);
            }
            self.served.fetch(path, max_len)
        }
    }

    /// The snapshot key rotated (root v2, a snapshot signed by the new key) after an update
    /// walked the roots and before it fetched the timestamp: the update walks the roots
    /// again instead of failing, once; a snapshot no root lists the key of still fails.
    #[test]
    fn a_key_rotation_committed_during_a_refresh_is_followed_not_refused() {
        let mut repo = Repo::new();
        let dir = tempfile::tempdir().unwrap();
        let mut up = updater(dir.path(), &repo);
        assert!(up.lookup("latest").unwrap().is_none());
        let before = repo.files.clone();
        repo.rotate_key(TopLevelRole::Snapshot);
        repo.add_image("targets", "latest", b"after the rotation");
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        let racing = |after: &std::collections::BTreeMap<String, Vec<u8>>| {
            let t = CommitsAt {
                served: MemoryTransport::new(&before),
                after: after.clone(),
                at: "timestamp.json",
                committed: false.into(),
            };
            Updater::new(MetadataStore::open(dir.path()).unwrap(), t)
                .with_clock(Arc::new(TestClock::new(NOW)))
                .with_gun(Gun::new("registry.example.com/org/app").unwrap())
        };
        let mut up = racing(&repo.files);
        up.refresh().unwrap();
        assert!(up.lookup("latest").unwrap().is_some());
        assert_eq!(
            up.trusted().unwrap().root().signed().common.version.get(),
            2
        );
        let fetched = up.transport().served.take_log();
        assert_eq!(
            fetched.iter().filter(|p| *p == "2.root.json").count(),
            2,
            "{fetched:?}"
        );

        // A snapshot signed by a key no root lists: refused after one more try.
        let mut forged = repo.files.clone();
        repo.snapshot_keys = vec![key()];
        repo.publish_snapshot_and_timestamp();
        forged.insert("timestamp.json".into(), repo.file("timestamp.json"));
        for (name, bytes) in &repo.files {
            if name.ends_with(".snapshot.json") {
                forged.insert(name.clone(), bytes.clone());
            }
        }
        let mut up = racing(&forged);
        up.transport().served.set(&forged);
        let err = up.refresh().unwrap_err();
        assert!(
            matches!(&err, Error::Update(UpdateError::ThresholdNotMet { role, .. }) if role == "snapshot"),
            "{err:?}"
        );
        let fetched = up.transport().served.take_log();
        assert_eq!(
            fetched.iter().filter(|p| *p == "timestamp.json").count(),
            2,
            "{fetched:?}"
        );
    }

    /// A target named like the registry's trust tag (metadata not written by vouch-server,
    /// which refuses it) never answers for an image, by tag or by digest.
    #[test]
    fn the_registry_trust_tag_never_names_an_image() {
        let mut repo = Repo::new();
        let d = repo.add_image("targets", TRUST_TAG, b"not an image");
        repo.add_image("targets", "v1", b"v1");
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        let dir = tempfile::tempdir().unwrap();
        let mut up = updater(dir.path(), &repo);
        assert!(up.lookup(TRUST_TAG).unwrap().is_none());
        assert!(!up.is_trusted(&d).unwrap());
        assert!(up.lookup("v1").unwrap().is_some());
        let tagged = image(&format!(":{TRUST_TAG}"));
        assert!(up.vouch(&tagged).is_err());
    }

    fn image(s: &str) -> ImageRef {
        ImageRef::parse(&format!("registry.example.com/org/app{s}")).unwrap()
    }

    fn paths(v: &Vouched) -> Vec<Vec<&str>> {
        v.paths()
            .iter()
            .map(|p| p.iter().map(RoleName::as_str).collect())
            .collect()
    }

    fn required(names: &[&str]) -> Vec<DelegationPath> {
        names
            .iter()
            .map(|n| DelegationPath::parse(n).unwrap())
            .collect()
    }

    #[test]
    fn a_tag_is_pinned_to_its_signed_digest_with_the_path_that_signed_it() {
        let f = fixture();
        let dir = tempfile::tempdir().unwrap();
        let mut up = updater(dir.path(), &f.repo);

        let v = up.vouch(&image(":v1")).unwrap();
        assert_eq!(v.digest(), &f.v1);
        assert_eq!(v.pinned(), &image(&format!("@{}", f.v1)));
        assert_eq!(paths(&v), [["targets", "targets/releases"]]);
        assert_eq!(up.resolve(&image(":v1")).unwrap(), *v.pinned());

        // No tag and no digest: `latest`, signed by targets itself.
        let v = up.vouch(&image("")).unwrap();
        assert_eq!(v.digest(), &f.latest);
        assert_eq!(paths(&v), [["targets"]]);

        match up.vouch(&image(":v2")) {
            Err(Error::UnknownTag { tag, .. }) => assert_eq!(tag, "v2"),
            other => panic!("expected an unknown tag, got {other:?}"),
        }
        assert!(matches!(
            up.vouch(&ImageRef::parse("registry.example.com/other/app:v1").unwrap()),
            Err(Error::WrongRepository { .. })
        ));
    }

    #[test]
    fn a_tag_with_a_digest_is_vouched_for_only_when_the_tag_is_signed_for_it() {
        let f = fixture();
        let dir = tempfile::tempdir().unwrap();
        let mut up = updater(dir.path(), &f.repo);

        let v = up.vouch(&image(&format!(":v1@{}", f.v1))).unwrap();
        assert_eq!(v.pinned(), &image(&format!("@{}", f.v1)));
        // Only the tag's path, though `nightly` carries the same digest through targets/dev.
        assert_eq!(paths(&v), [["targets", "targets/releases"]]);

        // Signed, but for another digest: the answer names the one signed.
        match up.vouch(&image(&format!(":v1@{}", f.latest))) {
            Err(Error::UntrustedDigest { digest, signed, .. }) => {
                assert_eq!(digest, f.latest.to_string());
                assert_eq!(signed, Some(f.v1.clone()));
            }
            other => panic!("expected an untrusted digest, got {other:?}"),
        }
        // An unsigned tag with a trusted digest: not vouched for, and no signed digest.
        assert!(matches!(
            up.vouch(&image(&format!(":v9@{}", f.v1))),
            Err(Error::UntrustedDigest { signed: None, .. })
        ));
    }

    #[test]
    fn a_pin_is_compared_with_the_tags_hash_of_its_own_algorithm() {
        let mut repo = Repo::new();
        repo.delegate("targets", "targets/releases", &["*"], false);
        // `v2` is signed with a sha256 and a sha512 hash, `v1` with a sha256 hash only.
        let content = b"v2";
        let sha256 = Digest::of(DigestAlgorithm::Sha256, content);
        let sha512 = Digest::of(DigestAlgorithm::Sha512, content);
        let mut both = TargetFile::image(&sha256, content.len() as u64, None);
        both.hashes
            .insert("sha512".to_owned(), sha512.hex().to_owned());
        repo.role_mut("targets/releases")
            .add_target(vouch_tuf::types::TargetName::new("v2").unwrap(), both);
        let v1 = repo.add_image("targets/releases", "v1", b"v1");
        repo.publish_all_delegated_as_is();
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        let dir = tempfile::tempdir().unwrap();
        let mut up = updater(dir.path(), &repo);

        // The tag's sha512 pin: vouched for through the tag's path, pinned to that digest.
        let pin = image(&format!(":v2@{sha512}"));
        let v = up.vouch(&pin).unwrap();
        assert_eq!(v.digest(), &sha512);
        assert_eq!(v.pinned(), &image(&format!("@{sha512}")));
        assert_eq!(paths(&v), [["targets", "targets/releases"]]);
        assert_eq!(up.resolve(&pin).unwrap(), image(&format!("@{sha512}")));
        // The sha256 pin and the tag alone answer as before.
        let v = up.vouch(&image(&format!(":v2@{sha256}"))).unwrap();
        assert_eq!(v.digest(), &sha256);
        assert_eq!(paths(&v), [["targets", "targets/releases"]]);
        assert_eq!(up.vouch(&image(":v2")).unwrap().digest(), &sha256);

        // Another sha512 digest: refused, naming the tag's sha512.
        let other = Digest::of(DigestAlgorithm::Sha512, b"other");
        match up.vouch(&image(&format!(":v2@{other}"))) {
            Err(Error::UntrustedDigest { digest, signed, .. }) => {
                assert_eq!(digest, other.to_string());
                assert_eq!(signed, Some(sha512.clone()));
            }
            other => panic!("expected an untrusted digest, got {other:?}"),
        }
        // The sha512 of v1's very manifest, but v1 is signed with no sha512 hash: refused
        // (nothing signed says so), naming the digest v1 is signed for.
        let v1_sha512 = Digest::of(DigestAlgorithm::Sha512, b"v1");
        match up.vouch(&image(&format!(":v1@{v1_sha512}"))) {
            Err(Error::UntrustedDigest { digest, signed, .. }) => {
                assert_eq!(digest, v1_sha512.to_string());
                assert_eq!(signed, Some(v1.clone()));
            }
            other => panic!("expected an untrusted digest, got {other:?}"),
        }
        // A sha512 pin of a tag nobody signed.
        assert!(matches!(
            up.vouch(&image(&format!(":v9@{sha512}"))),
            Err(Error::UntrustedDigest { signed: None, .. })
        ));
        // A sha256 pin of v2 that is not its digest still names the tag's sha256.
        match up.vouch(&image(&format!(":v2@{v1}"))) {
            Err(Error::UntrustedDigest { signed, .. }) => assert_eq!(signed, Some(sha256)),
            other => panic!("expected an untrusted digest, got {other:?}"),
        }
    }

    #[test]
    fn a_bare_digest_is_vouched_for_by_every_target_carrying_it() {
        let f = fixture();
        let dir = tempfile::tempdir().unwrap();
        let mut up = updater(dir.path(), &f.repo);

        // Named by the digest itself, in targets and in a delegated role.
        let v = up.vouch(&image(&format!("@{}", f.untagged))).unwrap();
        assert_eq!(v.pinned(), &image(&format!("@{}", f.untagged)));
        assert_eq!(paths(&v), [["targets"]]);
        let v = up
            .vouch(&image(&format!("@{}", f.delegated_untagged)))
            .unwrap();
        assert_eq!(paths(&v), [["targets", "targets/releases"]]);
        // Carried by a tag only.
        let v = up.vouch(&image(&format!("@{}", f.latest))).unwrap();
        assert_eq!(paths(&v), [["targets"]]);

        // Listed as `v1` through targets/releases and as `nightly` through targets/dev.
        let v = up.vouch(&image(&format!("@{}", f.v1))).unwrap();
        assert_eq!(
            paths(&v),
            [["targets", "targets/releases"], ["targets", "targets/dev"]]
        );
        assert_eq!(v.role_path(), v.paths()[0].as_slice());

        let unsigned = Digest::sha256_of(b"unsigned");
        match up.vouch(&image(&format!("@{unsigned}"))) {
            Err(Error::UntrustedDigest { digest, signed, .. }) => {
                assert_eq!(digest, unsigned.to_string());
                assert_eq!(signed, None);
            }
            other => panic!("expected an untrusted digest, got {other:?}"),
        }
    }

    #[test]
    fn requirements_are_met_when_one_vouching_path_meets_them_all() {
        let f = fixture();
        let dir = tempfile::tempdir().unwrap();
        let mut up = updater(dir.path(), &f.repo);
        let both = up.vouch(&image(&format!("@{}", f.v1))).unwrap();

        // Either path is enough for a requirement it meets.
        assert!(both.satisfies(&[]));
        assert!(both.satisfies(&required(&["targets/releases"])));
        assert!(both.satisfies(&required(&["targets/dev"])));
        assert_eq!(both.unmet(&required(&["targets/dev"])), None);

        // Two requirements met by two different paths are not met: one path must meet all.
        let split = required(&["targets/releases", "targets/dev"]);
        assert!(!both.satisfies(&split));
        let unmet = both.unmet(&split).unwrap();
        let shown: Vec<&str> = unmet.role_path.iter().map(RoleName::as_str).collect();
        assert_eq!(shown, ["targets", "targets/releases"]);
        assert_eq!(unmet.required, &split[1]);

        // A role path is compared by position: `targets/releases/prod` below it is not met.
        assert!(!both.satisfies(&required(&["targets/releases/prod"])));

        // A tag has one path: signed by targets itself, it meets no delegation requirement.
        let latest = up.vouch(&image(":latest")).unwrap();
        let releases = required(&["targets/releases"]);
        assert!(!latest.satisfies(&releases));
        let unmet = latest.unmet(&releases).unwrap();
        assert_eq!(unmet.role_path, [TopLevelRole::Targets.name()]);
        assert_eq!(unmet.required, &releases[0]);
    }
}
