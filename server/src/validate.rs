//! What may be published: the pure check of one update against a repository's stored state.
//!
//! [`validate_update`] takes the current state, the uploaded files, the server's online
//! signers and a reference time, and returns either every file the update stores (the
//! uploads, exactly as received, plus the snapshot and timestamp the server signs) or a
//! [`Rejection`] naming the role and the [`Check`] that failed. It does no IO, so every rule is
//! unit-tested here, and the HTTP layer only loads, calls and stores.
//!
//! The rules (DESIGN.md, "What the server checks on publish"):
//! - **root**: signed by a threshold of its own root keys and, when a root exists, of the
//!   previous root's; version exactly previous + 1; not expired; its timestamp role (and its
//!   snapshot role, when the server holds that key) must be signable by the server's keys.
//! - **targets** and **delegated roles**: signed by a threshold of the keys the (new or
//!   current) root or delegating role assigns; version greater than the stored one; not
//!   expired; delegations well-formed; a delegated role lists only targets inside its paths.
//! - **snapshot**: when uploaded, signed by root's snapshot keys with a greater version and
//!   `meta` exactly matching what the stored state plus this update will hold; when the server
//!   holds the snapshot key, the server writes it.
//! - **timestamp**: never uploaded; always written by the server.
//!
//! A version that is not newer than the stored one is a [`Rejection::Conflict`]: someone
//! published first, and the client should refresh and retry.
//!
//! [`validate_proposal`] applies the same rules to a staged proposal, with one difference for
//! the roles uploaded: their thresholds need not be met yet, but every signature they carry
//! must be valid and by a key the role's authority assigns (a forged or foreign signature is
//! refused, not ignored), and how far each threshold is from being met is returned as
//! [`Quorum`]s. Stored roles the update touches are checked in full, as for a publish.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use vouch_tuf::api::proposal::Quorum;
use vouch_tuf::crypto::Signer;
use vouch_tuf::metadata::{
    check_each_signature, tally, Authority, DelegatedRole, Delegations, Key, MatchBudget, MetaFile,
    Metadata, Mismatch, PathScope, Role, Root, ScopeMatcher, SignatureError, Snapshot, Targets,
    TimestampRole,
};
use vouch_tuf::oci::TRUST_TAG;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{KeyId, RoleName, TargetName, Threshold, TopLevelRole, Version};

use crate::store::{NewFile, StoredFile, MAX_VERSION};

/// A role's stored file, parsed.
#[derive(Clone, Debug)]
pub struct Loaded<T: Role> {
    /// The parsed metadata.
    pub md: Metadata<T>,
    /// The bytes as stored (what clients download and what hashes cover).
    pub bytes: Vec<u8>,
}

impl<T: Role> Loaded<T> {
    fn parse(role: &str, bytes: Vec<u8>) -> Result<Self, String> {
        let md = Metadata::from_bytes_as(role, &bytes).map_err(|e| e.to_string())?;
        Ok(Loaded { md, bytes })
    }

    /// The version in `signed.version`.
    pub fn version(&self) -> u64 {
        self.md.version().get()
    }
}

/// The newest stored version of each role of one repository. Parsed files are shared, so a
/// [`ParseCache`] can hand the same parse to every publish while the stored bytes are unchanged.
#[derive(Clone, Debug, Default)]
pub struct RepoState {
    /// `root`.
    pub root: Option<Arc<Loaded<Root>>>,
    /// `targets`.
    pub targets: Option<Arc<Loaded<Targets>>>,
    /// `snapshot`.
    pub snapshot: Option<Arc<Loaded<Snapshot>>>,
    /// `timestamp`.
    pub timestamp: Option<Arc<Loaded<TimestampRole>>>,
    /// Delegated targets roles by name.
    pub delegated: BTreeMap<String, Arc<Loaded<Targets>>>,
}

/// One parsed stored file, of whichever role type.
#[derive(Clone, Debug)]
enum Parsed {
    Root(Arc<Loaded<Root>>),
    Targets(Arc<Loaded<Targets>>),
    Snapshot(Arc<Loaded<Snapshot>>),
    Timestamp(Arc<Loaded<TimestampRole>>),
}

impl Parsed {
    /// What the parse holds in memory, at most: see [`MEMORY_PER_STORED_BYTE`].
    fn memory(&self) -> usize {
        let stored = match self {
            Parsed::Root(l) => l.bytes.len(),
            Parsed::Targets(l) => l.bytes.len(),
            Parsed::Snapshot(l) => l.bytes.len(),
            Parsed::Timestamp(l) => l.bytes.len(),
        };
        stored
            .saturating_mul(MEMORY_PER_STORED_BYTE)
            .saturating_add(PARSE_OVERHEAD)
    }
}

/// Heap bytes one parsed file holds per byte stored, at most: the stored bytes, the
/// canonical bytes of `signed`, and the typed metadata (for a targets file of many short
/// tags, the maps and strings of each target cost several times its JSON).
/// `tests/parse_cache_memory.rs` measures this bound with a counting allocator.
pub const MEMORY_PER_STORED_BYTE: usize = 16;

/// Fixed heap cost of one parsed file, whatever its size.
const PARSE_OVERHEAD: usize = 4096;

/// Most memory the parses a [`ParseCache`] keeps may take; past it the cache starts over.
pub const PARSE_CACHE_MEMORY: usize = 128 << 20;

/// The parsed current files of recently published repositories, so that a publish parses
/// only what changed since the last one rather than every stored role (with hashed bins,
/// every tag of the repository). An entry is reused only when the stored bytes are exactly
/// the bytes it was parsed from, so a write by another process is never missed.
#[derive(Debug, Default)]
pub struct ParseCache {
    inner: Mutex<ParseCacheInner>,
}

#[derive(Debug, Default)]
struct ParseCacheInner {
    repos: HashMap<String, HashMap<String, Parsed>>,
    memory: usize,
}

impl ParseCache {
    /// Drops what is kept for `gun` (after a delete).
    pub fn forget(&self, gun: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(prev) = inner.repos.remove(gun) {
            inner.memory -= prev.values().map(Parsed::memory).sum::<usize>();
        }
    }

    /// The memory the kept parses take, as bounded by [`PARSE_CACHE_MEMORY`].
    pub fn memory(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).memory
    }
}

/// The role types a [`Parsed`] holds, and how to find one in it.
trait Cacheable: Role + Sized {
    fn cached(p: &Parsed) -> Option<&Arc<Loaded<Self>>>;
}

macro_rules! cacheable {
    ($($t:ty => $variant:ident),*) => {$(
        impl Cacheable for $t {
            fn cached(p: &Parsed) -> Option<&Arc<Loaded<Self>>> {
                match p {
                    Parsed::$variant(l) => Some(l),
                    _ => None,
                }
            }
        }
    )*};
}

cacheable!(Root => Root, Targets => Targets, Snapshot => Snapshot, TimestampRole => Timestamp);

/// The parse of `bytes`: `old`'s when it was parsed from exactly these bytes, else a new one.
fn reuse<T: Cacheable>(
    role: &str,
    bytes: Vec<u8>,
    old: Option<&Parsed>,
) -> Result<Arc<Loaded<T>>, String> {
    match old.and_then(T::cached) {
        Some(l) if l.bytes == bytes => Ok(Arc::clone(l)),
        _ => Loaded::parse(role, bytes).map(Arc::new),
    }
}

/// Puts `l` in `field` and returns it.
fn keep<T>(field: &mut Option<Arc<T>>, l: Arc<T>) -> Arc<T> {
    *field = Some(Arc::clone(&l));
    l
}

impl RepoState {
    /// Parses stored files. Stored files were validated when written, so a failure here
    /// means the storage was corrupted or tampered with.
    pub fn from_files(files: Vec<StoredFile>) -> Result<Self, String> {
        Self::build(files, &HashMap::new()).map(|(s, _)| s)
    }

    /// [`RepoState::from_files`] for repository `gun`, reusing the parses `cache` holds for
    /// files whose bytes are unchanged, and keeping this state's parses for next time.
    pub fn from_files_cached(
        gun: &str,
        files: Vec<StoredFile>,
        cache: &ParseCache,
    ) -> Result<Self, String> {
        let old = {
            let inner = cache.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.repos.get(gun).cloned().unwrap_or_default()
        };
        let (state, parsed) = Self::build(files, &old)?;
        let size: usize = parsed.values().map(Parsed::memory).sum();
        cache.forget(gun);
        let mut inner = cache.inner.lock().unwrap_or_else(|e| e.into_inner());
        if size <= PARSE_CACHE_MEMORY {
            if inner.memory + size > PARSE_CACHE_MEMORY {
                inner.repos.clear();
                inner.memory = 0;
            }
            inner.memory += size;
            if let Some(raced) = inner.repos.insert(gun.to_owned(), parsed) {
                inner.memory -= raced.values().map(Parsed::memory).sum::<usize>();
            }
        }
        Ok(state)
    }

    fn build(
        files: Vec<StoredFile>,
        old: &HashMap<String, Parsed>,
    ) -> Result<(Self, HashMap<String, Parsed>), String> {
        let mut s = RepoState::default();
        let mut parsed = HashMap::with_capacity(files.len());
        for f in files {
            let what = format!("stored {} version {}", f.role, f.version);
            let err = |e: String| format!("{what}: {e}");
            let prev = old.get(&f.role);
            let role = f.role.as_str();
            let p = match role {
                "root" => Parsed::Root(keep(&mut s.root, reuse(role, f.bytes, prev).map_err(err)?)),
                "snapshot" => Parsed::Snapshot(keep(
                    &mut s.snapshot,
                    reuse(role, f.bytes, prev).map_err(err)?,
                )),
                "timestamp" => Parsed::Timestamp(keep(
                    &mut s.timestamp,
                    reuse(role, f.bytes, prev).map_err(err)?,
                )),
                "targets" => Parsed::Targets(keep(
                    &mut s.targets,
                    reuse(role, f.bytes, prev).map_err(err)?,
                )),
                name => {
                    let l = reuse(name, f.bytes, prev).map_err(err)?;
                    s.delegated.insert(name.to_owned(), Arc::clone(&l));
                    Parsed::Targets(l)
                }
            };
            parsed.insert(f.role, p);
        }
        Ok((s, parsed))
    }

    /// True when the repository has no trust data.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }
}

/// One uploaded file: the role it claims to be and its bytes.
#[derive(Clone, Debug)]
pub struct Upload {
    /// Role name, from the multipart file name.
    pub role: String,
    /// The bytes received.
    pub bytes: Vec<u8>,
}

/// One online key the server holds: the id root must list, and the signer.
pub struct OnlineKey<'a> {
    /// Key id (SHA-256 of the canonical key object the server publishes).
    pub keyid: KeyId,
    /// The signer.
    pub signer: &'a dyn Signer,
}

/// The server's online keys for one repository.
#[derive(Default)]
pub struct OnlineSigners<'a> {
    /// Timestamp keys (there may be several after a rotation).
    pub timestamp: Vec<OnlineKey<'a>>,
    /// Snapshot keys.
    pub snapshot: Vec<OnlineKey<'a>>,
}

/// How long server-signed roles live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// Seconds a server-signed timestamp is valid (default 1 day).
    pub timestamp: i64,
    /// Seconds a server-signed snapshot is valid (default 7 days).
    pub snapshot: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            timestamp: 86_400,
            snapshot: 7 * 86_400,
        }
    }
}

/// The check an update failed, as named in a rejection's `detail.check` and in the
/// `vouch_publish_rejections_total{reason=...}` metric (see [`Check::as_str`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Check {
    /// `malformed`: the file is not well-formed metadata of its role.
    Malformed,
    /// `role-name`: the role name is not valid.
    RoleName,
    /// `empty`: the update holds no files.
    Empty,
    /// `duplicate`: the update holds one role twice.
    Duplicate,
    /// `server-signed`: a role only the server writes (timestamp) was uploaded.
    ServerSigned,
    /// `missing-role`: a role the update needs is neither uploaded nor stored.
    MissingRole,
    /// `signature`: a threshold of the assigned keys did not sign.
    Signature,
    /// `version`: a version is out of sequence or beyond what is stored.
    Version,
    /// `expired`: the metadata has expired.
    Expired,
    /// `keys`: a role lists a key id that is absent or unusable.
    Keys,
    /// `threshold`: a threshold is above the number of keys.
    Threshold,
    /// `delegation`: a delegation is malformed, or a delegated role hangs from no single role.
    Delegation,
    /// `paths`: a delegated role lists a target outside its delegated paths.
    Paths,
    /// `snapshot-meta`: an uploaded snapshot's meta does not match what the repository will hold.
    SnapshotMeta,
    /// `server-keys`: root does not let the server sign the roles it must sign.
    ServerKeys,
    /// `signing`: the server could not sign an online role.
    Signing,
    /// `reserved-name`: a target is named [`vouch_tuf::oci::TRUST_TAG`], the tag a
    /// registry keeps the repository's trust under.
    ReservedName,
}

impl Check {
    /// The check's short name, e.g. `signature`, `version`, `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Malformed => "malformed",
            Check::RoleName => "role-name",
            Check::Empty => "empty",
            Check::Duplicate => "duplicate",
            Check::ServerSigned => "server-signed",
            Check::MissingRole => "missing-role",
            Check::Signature => "signature",
            Check::Version => "version",
            Check::Expired => "expired",
            Check::Keys => "keys",
            Check::Threshold => "threshold",
            Check::Delegation => "delegation",
            Check::Paths => "paths",
            Check::SnapshotMeta => "snapshot-meta",
            Check::ServerKeys => "server-keys",
            Check::Signing => "signing",
            Check::ReservedName => "reserved-name",
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an update was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The update is invalid (HTTP 400).
    #[error("{role}: {message}")]
    Invalid {
        /// The role at fault.
        role: String,
        /// The failed check.
        check: Check,
        /// What was wrong, for a person.
        message: String,
    },
    /// A version is not newer than the stored one: someone published first (HTTP 409).
    #[error("{role}: {message}")]
    Conflict {
        /// The role at fault.
        role: String,
        /// What was wrong, for a person.
        message: String,
    },
}

fn invalid(role: &str, check: Check, message: impl Into<String>) -> Rejection {
    Rejection::Invalid {
        role: role.to_owned(),
        check,
        message: message.into(),
    }
}

/// Parses an upload as role type `T`.
fn parse<T: Role>(u: &Upload) -> Result<Metadata<T>, Rejection> {
    Metadata::from_bytes_as(&u.role, &u.bytes)
        .map_err(|e| invalid(&u.role, Check::Malformed, e.to_string()))
}

fn check_not_expired<T: Role>(
    role: &str,
    md: &Metadata<T>,
    now: Timestamp,
) -> Result<(), Rejection> {
    if md.signed().common().is_expired(now) {
        return Err(invalid(
            role,
            Check::Expired,
            format!("metadata expired at {} (server time {now})", md.expires()),
        ));
    }
    Ok(())
}

/// A version the store can hold (at most [`MAX_VERSION`]).
fn check_storable(role: &str, version: u64) -> Result<(), Rejection> {
    if version > MAX_VERSION {
        return Err(invalid(
            role,
            Check::Version,
            format!("version {version} is above {MAX_VERSION}, the highest version stored"),
        ));
    }
    Ok(())
}

/// A new version must be greater than the stored one, and storable.
fn check_newer(role: &str, stored: Option<u64>, new: u64) -> Result<(), Rejection> {
    check_storable(role, new)?;
    match stored {
        Some(old) if new <= old => Err(Rejection::Conflict {
            role: role.to_owned(),
            message: format!(
                "version {new} is not newer than the stored version {old}: someone published first, refresh and retry"
            ),
        }),
        _ => Ok(()),
    }
}

/// Every key a role uses must be usable, and a threshold must be reachable. Each key is
/// decoded once however many roles list it (`usable` remembers those already checked).
fn check_key_assignment<'k>(
    role: &str,
    what: &str,
    keys: &'k BTreeMap<KeyId, Key>,
    usable: &mut HashSet<&'k KeyId>,
    keyids: &[KeyId],
    threshold: u32,
) -> Result<(), Rejection> {
    for id in keyids {
        let (id, key) = keys.get_key_value(id).ok_or_else(|| {
            invalid(
                role,
                Check::Keys,
                format!("{what} lists key id {id}, which is not among the keys"),
            )
        })?;
        if usable.contains(id) {
            continue;
        }
        key.verifying_key().map_err(|e| {
            invalid(
                role,
                Check::Keys,
                format!("{what} lists key {id}, which cannot be used: {e}"),
            )
        })?;
        usable.insert(id);
    }
    if threshold as usize > keyids.len() {
        return Err(invalid(
            role,
            Check::Threshold,
            format!(
                "{what} has threshold {threshold} but only {} key(s)",
                keyids.len()
            ),
        ));
    }
    Ok(())
}

fn check_delegations(role: &str, d: &Option<Delegations>) -> Result<(), Rejection> {
    let Some(d) = d else { return Ok(()) };
    let mut usable = HashSet::new();
    for r in &d.roles {
        let what = format!("delegation to {}", r.name);
        check_key_assignment(
            role,
            &what,
            &d.keys,
            &mut usable,
            &r.keyids,
            r.threshold.get(),
        )?;
        if r.scope == PathScope::Nothing {
            return Err(invalid(
                role,
                Check::Delegation,
                format!("{what} lists neither paths nor path_hash_prefixes"),
            ));
        }
    }
    Ok(())
}

fn server_keys_listed<'k, 'a>(
    root: &Root,
    role: TopLevelRole,
    keys: &'k [OnlineKey<'a>],
) -> Vec<&'k OnlineKey<'a>> {
    let listed = &root.role_keys(role).keyids;
    keys.iter().filter(|k| listed.contains(&k.keyid)).collect()
}

/// True when the server can sign `role` for this root by itself.
fn server_can_sign(root: &Root, role: TopLevelRole, keys: &[OnlineKey<'_>]) -> bool {
    let n = server_keys_listed(root, role, keys).len();
    n > 0 && n >= root.role_keys(role).threshold.get() as usize
}

fn sign_as_server<T: Role>(
    role: TopLevelRole,
    signed: T,
    root: &Root,
    keys: &[OnlineKey<'_>],
) -> Result<Metadata<T>, Rejection> {
    let mut md = Metadata::new(signed);
    for k in server_keys_listed(root, role, keys) {
        md.sign_as(k.signer, k.keyid.clone()).map_err(|e| {
            invalid(
                role.as_str(),
                Check::Signing,
                format!("server could not sign: {e}"),
            )
        })?;
    }
    Ok(md)
}

/// The outcome of a valid update: the files to store, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// Files to store in one transaction.
    pub files: Vec<NewFile>,
}

/// How an update's own signatures are judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Every threshold must be met (a publish).
    Publish,
    /// Thresholds are tallied, not required; every signature must be good (a proposal).
    Propose,
}

/// The keys of one authority over a role, for people and for the checks: whose keys they
/// are (`root version 3`), the key objects, the ids assigned and the threshold.
struct Signers<'k> {
    by: String,
    keys: &'k BTreeMap<KeyId, Key>,
    keyids: &'k [KeyId],
    threshold: Threshold,
}

/// The thresholds of one uploaded role of a proposal, and how far each is met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleQuorum {
    /// The role.
    pub role: String,
    /// One entry per threshold it must meet (two for a new root).
    pub quorum: Vec<Quorum>,
    /// The stored role, not part of the update, whose keys decide who may sign this one
    /// (root for targets and snapshot, the delegating role for a delegated one); `None`
    /// when that role is itself in the update (or the role is root).
    pub decided_by: Option<String>,
}

impl RoleQuorum {
    /// True when every threshold is met.
    pub fn is_met(&self) -> bool {
        self.quorum.iter().all(Quorum::is_met)
    }
}

/// A valid proposal: how far each uploaded role's thresholds are met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staged {
    /// Per uploaded role, in upload order.
    pub roles: Vec<RoleQuorum>,
}

impl Staged {
    /// True when every threshold of every role is met: the update may be published.
    pub fn is_complete(&self) -> bool {
        self.roles.iter().all(RoleQuorum::is_met)
    }

    /// The thresholds of `role`.
    pub fn role(&self, role: &str) -> Option<&RoleQuorum> {
        self.roles.iter().find(|r| r.role == role)
    }
}

/// In [`Mode::Propose`], checks that every signature on `md` is good for one of
/// `authorities` and records how far each threshold is met; in [`Mode::Publish`], runs
/// `publish`, the role's threshold check.
#[allow(clippy::too_many_arguments)]
fn check_signed<T: Role>(
    mode: Mode,
    role: &str,
    md: &Metadata<T>,
    authorities: &[Signers<'_>],
    decided_by: Option<&str>,
    quorums: &mut Vec<RoleQuorum>,
    publish: impl FnOnce() -> Result<(), Rejection>,
) -> Result<(), Rejection> {
    if mode == Mode::Publish {
        return publish();
    }
    if authorities.is_empty() {
        return Err(invalid(
            role,
            Check::Delegation,
            format!("no role assigns keys to {role}"),
        ));
    }
    let each: Vec<Authority<'_>> = authorities
        .iter()
        .map(|a| Authority {
            keys: a.keys,
            keyids: a.keyids,
        })
        .collect();
    check_each_signature(role, md.canonical_signed(), md.signatures(), &each)
        .map_err(|e| invalid(role, Check::Signature, e.to_string()))?;
    let quorum = authorities
        .iter()
        .map(|a| Quorum {
            by: a.by.clone(),
            threshold: a.threshold.get(),
            keyids: a.keyids.iter().map(|k| k.as_str().to_owned()).collect(),
            signed: tally(md.canonical_signed(), md.signatures(), a.keys, a.keyids)
                .into_iter()
                .map(|k| k.as_str().to_owned())
                .collect(),
        })
        .collect();
    quorums.push(RoleQuorum {
        role: role.to_owned(),
        quorum,
        decided_by: decided_by.map(str::to_owned),
    });
    Ok(())
}

/// [`check_signed`] of a role whose keys root assigns (targets, snapshot): `root` is the new
/// root when the update changes it (`root_changed`), else the stored one, which the role's
/// signers then depend on.
fn check_root_signed<T: Role>(
    mode: Mode,
    role: TopLevelRole,
    md: &Metadata<T>,
    root: &Metadata<Root>,
    root_changed: bool,
    quorums: &mut Vec<RoleQuorum>,
) -> Result<(), Rejection> {
    let name = role.as_str();
    check_signed(
        mode,
        name,
        md,
        &[root_signers(root, role)],
        (!root_changed).then_some("root"),
        quorums,
        || {
            root.signed()
                .verify_role(role, md)
                .map(drop)
                .map_err(|e| invalid(name, Check::Signature, e.to_string()))
        },
    )
}

/// Root's keys for `role`, as an authority named after root's version.
fn root_signers(root: &Metadata<Root>, role: TopLevelRole) -> Signers<'_> {
    let rk = root.signed().role_keys(role);
    Signers {
        by: format!("root version {}", root.version()),
        keys: &root.signed().keys,
        keyids: &rk.keyids,
        threshold: rk.threshold,
    }
}

/// A role that delegates to another: its name, metadata, whether it was uploaded, and the
/// delegation itself.
type Delegator<'s> = (&'s str, &'s Metadata<Targets>, bool, &'s DelegatedRole);

/// The delegated-role tree after an update: name to (metadata, bytes, uploaded?).
struct TargetsTree<'s> {
    top: (&'s Metadata<Targets>, bool),
    delegated: BTreeMap<String, (&'s Metadata<Targets>, &'s [u8], bool)>,
}

impl TargetsTree<'_> {
    /// For every delegated role name, the roles that delegate to it, with the delegator's
    /// metadata and whether it was uploaded: one pass over every delegation.
    fn delegators(&self) -> HashMap<&str, Vec<Delegator<'_>>> {
        let mut out: HashMap<&str, Vec<Delegator<'_>>> = HashMap::new();
        let parents = std::iter::once(("targets", self.top.0, self.top.1)).chain(
            self.delegated
                .iter()
                .map(|(name, (md, _, uploaded))| (name.as_str(), *md, *uploaded)),
        );
        for (parent, md, uploaded) in parents {
            let Some(d) = &md.signed().delegations else {
                continue;
            };
            let mut named: BTreeSet<&str> = BTreeSet::new();
            for r in &d.roles {
                // A role listed twice by one parent is still one delegator.
                if named.insert(r.name.as_str()) {
                    out.entry(r.name.as_str())
                        .or_default()
                        .push((parent, md, uploaded, r));
                }
            }
        }
        out
    }

    /// Delegated roles reachable from `targets` through delegations, in the order found.
    fn reachable(&self) -> Vec<&str> {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut order = Vec::new();
        let mut stack: Vec<&Metadata<Targets>> = vec![self.top.0];
        while let Some(md) = stack.pop() {
            let Some(d) = &md.signed().delegations else {
                continue;
            };
            for r in &d.roles {
                let name = r.name.as_str();
                if let Some((child, _, _)) = self.delegated.get(name) {
                    if seen.insert(name) {
                        order.push(name);
                        stack.push(child);
                    }
                }
            }
        }
        order
    }
}

/// Checks one update and returns every file it stores. See the module documentation.
pub fn validate_update(
    state: &RepoState,
    uploads: &[Upload],
    signers: &OnlineSigners<'_>,
    lifetimes: Lifetimes,
    now: Timestamp,
) -> Result<Update, Rejection> {
    let mut quorums = Vec::new();
    validate(
        state,
        uploads,
        signers,
        lifetimes,
        now,
        Mode::Publish,
        &mut quorums,
    )
}

/// Checks a staged proposal: everything [`validate_update`] checks, except that the uploaded
/// roles' thresholds are tallied rather than required, while each signature they carry must
/// be valid and by a key of the role; and at least one must be there. See the module
/// documentation.
pub fn validate_proposal(
    state: &RepoState,
    uploads: &[Upload],
    signers: &OnlineSigners<'_>,
    lifetimes: Lifetimes,
    now: Timestamp,
) -> Result<Staged, Rejection> {
    let mut roles = Vec::new();
    validate(
        state,
        uploads,
        signers,
        lifetimes,
        now,
        Mode::Propose,
        &mut roles,
    )?;
    if roles
        .iter()
        .all(|r| r.quorum.iter().all(|q| q.signed.is_empty()))
    {
        return Err(invalid(
            "update",
            Check::Signature,
            "a proposal must carry at least one valid signature by a key of a role it changes",
        ));
    }
    // In upload order, as the proposal lists its roles.
    let order: HashMap<&str, usize> = uploads
        .iter()
        .enumerate()
        .map(|(i, u)| (u.role.as_str(), i))
        .collect();
    roles.sort_by_key(|r| order.get(r.role.as_str()).copied().unwrap_or(usize::MAX));
    Ok(Staged { roles })
}

fn validate(
    state: &RepoState,
    uploads: &[Upload],
    signers: &OnlineSigners<'_>,
    lifetimes: Lifetimes,
    now: Timestamp,
    mode: Mode,
    quorums: &mut Vec<RoleQuorum>,
) -> Result<Update, Rejection> {
    if uploads.is_empty() {
        return Err(invalid(
            "update",
            Check::Empty,
            "the update contains no metadata files",
        ));
    }
    let mut seen = BTreeSet::new();
    for u in uploads {
        if !seen.insert(u.role.as_str()) {
            return Err(invalid(
                &u.role,
                Check::Duplicate,
                "the update contains this role twice",
            ));
        }
        RoleName::new(u.role.clone())
            .map_err(|e| invalid(&u.role, Check::RoleName, e.to_string()))?;
        if u.role == "timestamp" {
            return Err(invalid(
                "timestamp",
                Check::ServerSigned,
                "timestamp metadata is written by the server: do not upload it",
            ));
        }
    }
    // By role name: one look-up per role rather than a scan of every upload.
    let by_role: HashMap<&str, &Upload> = uploads.iter().map(|u| (u.role.as_str(), u)).collect();
    let upload = |name: &str| by_role.get(name).copied();

    // ---- root ----
    let new_root = match upload("root") {
        Some(u) => Some(check_root(u, state, signers, now, mode, quorums)?),
        None => None,
    };
    let root_changed = new_root.is_some();
    let root: &Metadata<Root> = match (&new_root, &state.root) {
        (Some(r), _) => r,
        (None, Some(l)) => &l.md,
        (None, None) => {
            return Err(invalid(
                "root",
                Check::MissingRole,
                "the repository has no trust data yet: the first publish must include root",
            ))
        }
    };
    let root_s = root.signed();

    // ---- targets ----
    let new_targets = match upload("targets") {
        Some(u) => {
            let md: Metadata<Targets> = parse(u)?;
            check_root_signed(
                mode,
                TopLevelRole::Targets,
                &md,
                root,
                root_changed,
                quorums,
            )?;
            check_newer(
                "targets",
                state.targets.as_ref().map(|l| l.version()),
                md.version().get(),
            )?;
            check_not_expired("targets", &md, now)?;
            check_delegations("targets", &md.signed().delegations)?;
            check_no_reserved_target("targets", md.signed())?;
            Some(md)
        }
        None => None,
    };
    let top: &Metadata<Targets> = match (&new_targets, &state.targets) {
        (Some(t), _) => t,
        (None, Some(l)) => {
            if root_changed {
                root_s.verify_role(TopLevelRole::Targets, &l.md).map_err(|e| {
                    invalid(
                        "targets",
                        Check::Signature,
                        format!("the stored targets no longer verify under the new root ({e}): re-sign targets and upload it with the root"),
                    )
                })?;
            }
            &l.md
        }
        (None, None) => return Err(invalid(
            "targets",
            Check::MissingRole,
            "the repository has no targets metadata yet: the first publish must include targets",
        )),
    };

    // ---- delegated roles ----
    let mut new_delegated: BTreeMap<String, Metadata<Targets>> = BTreeMap::new();
    for u in uploads {
        if matches!(u.role.as_str(), "root" | "targets" | "snapshot") {
            continue;
        }
        let md: Metadata<Targets> = parse(u)?;
        check_no_reserved_target(&u.role, md.signed())?;
        new_delegated.insert(u.role.clone(), md);
    }
    let mut tree = TargetsTree {
        top: (top, new_targets.is_some()),
        delegated: BTreeMap::new(),
    };
    for (name, l) in &state.delegated {
        tree.delegated
            .insert(name.clone(), (&l.md, &l.bytes[..], false));
    }
    for u in uploads {
        if let Some(md) = new_delegated.get(&u.role) {
            tree.delegated
                .insert(u.role.clone(), (md, &u.bytes[..], true));
        }
    }
    let delegators_of = tree.delegators();
    let reachable = tree.reachable();
    let reachable_set: HashSet<&str> = reachable.iter().copied().collect();
    // An uploaded role must hang from `targets` by delegations: a role delegating to itself,
    // or roles delegating to each other, would otherwise be "verified" by keys their
    // uploader chose. Checked for every upload before any signature is.
    if let Some(name) = new_delegated
        .keys()
        .find(|n| !reachable_set.contains(n.as_str()))
    {
        return Err(invalid(
            name,
            Check::Delegation,
            format!("{name} is not reachable from targets through delegations: targets, or a role it delegates to, must delegate to it"),
        ));
    }
    let mut budget = MatchBudget::default();
    for (name, (md, _, uploaded)) in &tree.delegated {
        let delegators = delegators_of
            .get(name.as_str())
            .map_or(&[][..], Vec::as_slice);
        let (parent_name, parent, parent_uploaded, delegation) = match delegators {
            [one] => *one,
            [] if *uploaded => {
                return Err(invalid(
                    name,
                    Check::Delegation,
                    format!("no role delegates to {name}"),
                ));
            }
            // A stored role that is no longer delegated is simply no longer part of the tree.
            [] => continue,
            _ => {
                let names: Vec<&str> = delegators.iter().map(|d| d.0).collect();
                return Err(invalid(
                    name,
                    Check::Delegation,
                    format!("{name} is delegated by more than one role ({}); vouch requires exactly one", names.join(", ")),
                ));
            }
        };
        if !*uploaded && !parent_uploaded {
            continue;
        }
        // The delegation was found when the delegators were indexed: no scan of the
        // parent's delegations per role.
        let verified = match &parent.signed().delegations {
            Some(d) => d.verify_delegated(delegation, md),
            None => Err(SignatureError::NotDelegated { role: name.clone() }),
        };
        if *uploaded {
            let by = match (parent_name, &parent.signed().delegations) {
                (parent_name, Some(d)) => Some(Signers {
                    by: format!("{parent_name} version {}", parent.version()),
                    keys: &d.keys,
                    keyids: &delegation.keyids,
                    threshold: delegation.threshold,
                }),
                (_, None) => None,
            };
            let decided_by = (!parent_uploaded).then_some(parent_name);
            check_signed(mode, name, md, by.as_slice(), decided_by, quorums, || {
                verified
                    .map(drop)
                    .map_err(|e| invalid(name, Check::Signature, e.to_string()))
            })?;
            check_newer(
                name,
                state.delegated.get(name.as_str()).map(|l| l.version()),
                md.version().get(),
            )?;
            check_not_expired(name, md, now)?;
            check_delegations(name, &md.signed().delegations)?;
        } else {
            verified.map_err(|e| {
                invalid(
                    name,
                    Check::Signature,
                    format!("the stored {name} no longer verifies under the new {parent_name} ({e}): re-sign {name} and upload it too"),
                )
            })?;
        }
        // Every target a role lists must be within the paths delegated to it.
        check_paths(name, parent_name, delegation, md.signed(), &mut budget)?;
    }

    // ---- snapshot ----
    let mut expected: BTreeMap<String, (u64, &[u8])> = BTreeMap::new();
    let top_bytes: &[u8] = match (upload("targets"), &state.targets) {
        (Some(u), _) => &u.bytes,
        (None, Some(l)) => &l.bytes,
        (None, None) => &[],
    };
    expected.insert("targets.json".into(), (top.version().get(), top_bytes));
    for name in &reachable {
        if let Some((md, bytes, _)) = tree.delegated.get(*name) {
            expected.insert(Snapshot::meta_name(name), (md.version().get(), bytes));
        }
    }
    // A role the stored snapshot lists stays listed, even when no role delegates to it any
    // more: TUF clients refuse a snapshot that drops a role they have seen (spec 5.5.5).
    if let Some(old) = &state.snapshot {
        for file in old.md.signed().meta.keys() {
            let role = file.strip_suffix(".json").unwrap_or(file);
            if expected.contains_key(file) {
                continue;
            }
            if let Some((md, bytes, _)) = tree.delegated.get(role) {
                expected.insert(file.clone(), (md.version().get(), bytes));
            }
        }
    }
    let snapshot_server_held = server_can_sign(root_s, TopLevelRole::Snapshot, &signers.snapshot);
    let stored_snapshot_version = state.snapshot.as_ref().map(|l| l.version());
    let (snapshot_version, snapshot_bytes, snapshot_file) = match upload("snapshot") {
        Some(u) => {
            let md: Metadata<Snapshot> = parse(u)?;
            if mode == Mode::Propose && snapshot_server_held {
                return Err(invalid(
                    "snapshot",
                    Check::ServerSigned,
                    "the server holds the snapshot key and writes snapshot itself: leave snapshot out of the proposal",
                ));
            }
            check_root_signed(
                mode,
                TopLevelRole::Snapshot,
                &md,
                root,
                root_changed,
                quorums,
            )?;
            check_newer("snapshot", stored_snapshot_version, md.version().get())?;
            check_not_expired("snapshot", &md, now)?;
            if mode == Mode::Propose {
                check_proposed_meta(md.signed(), uploads)?;
            }
            check_snapshot_meta(md.signed(), &expected)?;
            (md.version(), u.bytes.clone(), None)
        }
        None if snapshot_server_held => {
            let mut snap = Snapshot::new(now.add_seconds(lifetimes.snapshot));
            snap.common.version = next_version(stored_snapshot_version);
            for (file, (version, bytes)) in &expected {
                let v = Version::new(*version)
                    .map_err(|e| invalid("snapshot", Check::Version, e.to_string()))?;
                snap.meta
                    .insert(file.clone(), MetaFile::for_bytes(v, bytes));
            }
            let md = sign_as_server(TopLevelRole::Snapshot, snap, root_s, &signers.snapshot)?;
            let bytes = md.to_bytes();
            (md.version(), bytes.clone(), Some(bytes))
        }
        None => {
            let changed = new_targets.is_some() || !new_delegated.is_empty();
            match &state.snapshot {
                Some(l) if !changed => {
                    if root_changed {
                        root_s.verify_role(TopLevelRole::Snapshot, &l.md).map_err(|e| {
                            invalid(
                                "snapshot",
                                Check::Signature,
                                format!("the stored snapshot no longer verifies under the new root ({e}): re-sign snapshot and upload it with the root"),
                            )
                        })?;
                    }
                    (l.md.version(), l.bytes.clone(), None)
                }
                _ => {
                    return Err(invalid(
                        "snapshot",
                        Check::MissingRole,
                        "the snapshot key is held by the client, not the server: upload a new snapshot with this update",
                    ))
                }
            }
        }
    };

    // ---- timestamp (always written by the server) ----
    if !server_can_sign(root_s, TopLevelRole::Timestamp, &signers.timestamp) {
        return Err(invalid(
            "root",
            Check::ServerKeys,
            "root must assign the timestamp role to the server's timestamp key (GET .../_trust/tuf/timestamp.key) with threshold 1",
        ));
    }
    let mut ts = TimestampRole::new(
        now.add_seconds(lifetimes.timestamp),
        MetaFile::for_bytes(snapshot_version, &snapshot_bytes),
    );
    ts.common.version = next_version(state.timestamp.as_ref().map(|l| l.version()));
    let ts_md = sign_as_server(TopLevelRole::Timestamp, ts, root_s, &signers.timestamp)?;

    // ---- the files to store ----
    let mut files = Vec::new();
    if let (Some(md), Some(u)) = (&new_root, upload("root")) {
        files.push(new_file("root", md.version(), u.bytes.clone()));
    }
    if let (Some(md), Some(u)) = (&new_targets, upload("targets")) {
        files.push(new_file("targets", md.version(), u.bytes.clone()));
    }
    for (name, md) in &new_delegated {
        if let Some(u) = upload(name) {
            files.push(new_file(name, md.version(), u.bytes.clone()));
        }
    }
    match (snapshot_file, upload("snapshot")) {
        (Some(bytes), _) => files.push(new_file("snapshot", snapshot_version, bytes)),
        (None, Some(u)) => files.push(new_file("snapshot", snapshot_version, u.bytes.clone())),
        (None, None) => {}
    }
    files.push(new_file("timestamp", ts_md.version(), ts_md.to_bytes()));
    check_files_storable(&files)?;
    Ok(Update { files })
}

/// The versions the server writes itself (one above the stored ones) must be storable too.
fn check_files_storable(files: &[NewFile]) -> Result<(), Rejection> {
    files
        .iter()
        .try_for_each(|f| check_storable(&f.role, f.version))
}

fn next_version(stored: Option<u64>) -> Version {
    Version::new(stored.unwrap_or(0).saturating_add(1)).unwrap_or(Version::ONE)
}

fn new_file(role: &str, version: Version, bytes: Vec<u8>) -> NewFile {
    NewFile {
        role: role.to_owned(),
        version: version.get(),
        bytes,
    }
}

/// No target is named [`TRUST_TAG`]: a registry keeps the repository's trust artifact under
/// that tag, so it never names an image (one look-up, whatever the number of targets).
fn check_no_reserved_target(role: &str, md: &Targets) -> Result<(), Rejection> {
    let reserved = TargetName::new(TRUST_TAG).ok();
    if reserved.is_some_and(|r| md.targets.contains_key(&r)) {
        return Err(invalid(
            role,
            Check::ReservedName,
            format!("target {TRUST_TAG:?} is the tag reserved for the repository's trust in its registry (docs/registry-trust.md): sign the image under another tag"),
        ));
    }
    Ok(())
}

/// Every target `role` lists lies inside the paths `parent` delegates to it: one pass over
/// the targets, charged to the update's `budget` (see [`ScopeMatcher`]).
fn check_paths(
    role: &str,
    parent: &str,
    delegation: &DelegatedRole,
    md: &Targets,
    budget: &mut MatchBudget,
) -> Result<(), Rejection> {
    let matcher = ScopeMatcher::new(&delegation.scope);
    for target in md.targets.keys() {
        let covered = matcher
            .covers(target.as_str(), budget)
            .map_err(|e| invalid(role, Check::Paths, format!("{e}: use fewer targets or simpler patterns (literal paths and hash prefixes cost one look-up)")))?;
        if !covered {
            return Err(invalid(
                role,
                Check::Paths,
                format!(
                    "target {target:?} is outside the paths {parent} delegates to {role} ({})",
                    describe_scope(&delegation.scope)
                ),
            ));
        }
    }
    Ok(())
}

/// The scope for a message: the first few patterns, and how many more there are.
fn describe_scope(scope: &PathScope) -> String {
    const SHOWN: usize = 5;
    /// Characters of one pattern shown.
    const WIDTH: usize = 64;
    let short = |p: &String| -> String {
        match p.char_indices().nth(WIDTH) {
            Some((i, _)) => format!("{}…", &p[..i]),
            None => p.clone(),
        }
    };
    let list = |what: &str, p: &[String]| {
        let head: Vec<String> = p.iter().take(SHOWN).map(short).collect();
        match p.len().saturating_sub(SHOWN) {
            0 => format!("{what} {}", head.join(", ")),
            more => format!("{what} {} and {more} more", head.join(", ")),
        }
    };
    match scope {
        PathScope::Paths(p) => list("paths", p),
        PathScope::HashPrefixes(p) => list("path hash prefixes", p),
        PathScope::Nothing => "no paths".into(),
    }
}

fn check_root(
    u: &Upload,
    state: &RepoState,
    signers: &OnlineSigners<'_>,
    now: Timestamp,
    mode: Mode,
    quorums: &mut Vec<RoleQuorum>,
) -> Result<Metadata<Root>, Rejection> {
    let md: Metadata<Root> = parse(u)?;
    let new = md.signed();
    check_storable("root", md.version().get())?;
    if let Some(old) = &state.root {
        let (old_v, new_v) = (old.version(), md.version().get());
        check_newer("root", Some(old_v), new_v)?;
        if new_v != old_v + 1 {
            return Err(invalid(
                "root",
                Check::Version,
                format!("root version must be exactly {} (the stored root is version {old_v}), got {new_v}", old_v + 1),
            ));
        }
    }
    // Both thresholds: the root it replaces (if any), then its own.
    let mut authorities: Vec<Signers<'_>> = Vec::with_capacity(2);
    if let Some(old) = &state.root {
        authorities.push(root_signers(&old.md, TopLevelRole::Root));
    }
    authorities.push(root_signers(&md, TopLevelRole::Root));
    check_signed(mode, "root", &md, &authorities, None, quorums, || {
        if let Some(old) = &state.root {
            old.md
                .signed()
                .verify_role(TopLevelRole::Root, &md)
                .map_err(|e| {
                    invalid(
                        "root",
                        Check::Signature,
                        format!("not signed by the previous root's keys: {e}"),
                    )
                })?;
        }
        new.verify_role(TopLevelRole::Root, &md).map_err(|e| {
            invalid(
                "root",
                Check::Signature,
                format!("not signed by its own root keys: {e}"),
            )
        })?;
        Ok(())
    })?;
    check_not_expired("root", &md, now)?;
    let mut usable = HashSet::new();
    for role in TopLevelRole::ALL {
        let rk = new.role_keys(role);
        check_key_assignment(
            "root",
            &format!("role {role}"),
            &new.keys,
            &mut usable,
            &rk.keyids,
            rk.threshold.get(),
        )?;
    }
    let lists_server_snapshot =
        !server_keys_listed(new, TopLevelRole::Snapshot, &signers.snapshot).is_empty();
    if lists_server_snapshot && !server_can_sign(new, TopLevelRole::Snapshot, &signers.snapshot) {
        return Err(invalid(
            "root",
            Check::ServerKeys,
            "root lists the server's snapshot key with a threshold the server alone cannot meet",
        ));
    }
    Ok(md)
}

/// A proposal's own snapshot names the other roles of the proposal by version alone: their
/// bytes change with every signature added, so a length or hash given now could never match
/// the files finally published.
fn check_proposed_meta(snap: &Snapshot, uploads: &[Upload]) -> Result<(), Rejection> {
    for u in uploads.iter().filter(|u| u.role != "snapshot") {
        let file = Snapshot::meta_name(&u.role);
        if let Some(m) = snap.meta.get(&file) {
            if m.length.is_some() || m.hashes.is_some() {
                return Err(invalid(
                    "snapshot",
                    Check::SnapshotMeta,
                    format!("a proposal's snapshot must list {file} by version only (no length or hashes): its bytes change as signatures are added"),
                ));
            }
        }
    }
    Ok(())
}

fn check_snapshot_meta(
    snap: &Snapshot,
    expected: &BTreeMap<String, (u64, &[u8])>,
) -> Result<(), Rejection> {
    let mismatch = |m: String| invalid("snapshot", Check::SnapshotMeta, m);
    for (file, (version, bytes)) in expected {
        let m = snap
            .meta
            .get(file)
            .ok_or_else(|| mismatch(format!("meta lacks {file} (version {version})")))?;
        if m.version.get() != *version {
            return Err(mismatch(format!(
                "meta gives {file} version {}, but the repository will hold version {version}",
                m.version
            )));
        }
        // The clients' own check (`vouch_tuf::metadata::hashes`), so the server stores no
        // snapshot that clients would refuse.
        m.check(bytes).map_err(|e| {
            mismatch(match e {
                Mismatch::Length { expected, got } => {
                    format!("meta gives {file} length {expected}, the file has {got} bytes")
                }
                Mismatch::Hash {
                    algorithm,
                    expected,
                    got,
                } => format!("meta gives {file} {algorithm} {expected}, the file's is {got}"),
                other => format!("meta gives {file} hashes that clients refuse: {other}"),
            })
        })?;
    }
    if let Some(extra) = snap.meta.keys().find(|k| !expected.contains_key(*k)) {
        return Err(mismatch(format!(
            "meta lists {extra}, which the repository does not hold"
        )));
    }
    Ok(())
}

/// The earliest time at which [`refresh_online`] will have something to re-sign for this
/// state: when less than half the lifetime of the timestamp, or of a server-held snapshot,
/// remains. `None` when the repository is empty (nothing to re-sign until a publish).
pub fn next_refresh_due(
    state: &RepoState,
    signers: &OnlineSigners<'_>,
    lifetimes: Lifetimes,
) -> Option<Timestamp> {
    let (Some(root), Some(ts), Some(snapshot)) = (&state.root, &state.timestamp, &state.snapshot)
    else {
        return None;
    };
    let mut due = ts.md.expires().unix() - lifetimes.timestamp / 2;
    if server_can_sign(root.md.signed(), TopLevelRole::Snapshot, &signers.snapshot) {
        due = due.min(snapshot.md.expires().unix() - lifetimes.snapshot / 2);
    }
    Some(Timestamp::from_unix(due))
}

/// Online roles that need re-signing at `now`: a new snapshot (when the server holds its key
/// and less than half its lifetime remains) and a new timestamp (likewise, or whenever the
/// snapshot is re-signed). `None` when nothing needs re-signing or the repository is empty.
pub fn refresh_online(
    state: &RepoState,
    signers: &OnlineSigners<'_>,
    lifetimes: Lifetimes,
    now: Timestamp,
) -> Result<Option<Update>, Rejection> {
    let (Some(root), Some(ts), Some(snapshot)) = (&state.root, &state.timestamp, &state.snapshot)
    else {
        return Ok(None);
    };
    let root_s = root.md.signed();
    if !server_can_sign(root_s, TopLevelRole::Timestamp, &signers.timestamp) {
        return Ok(None);
    }
    let half_gone = |expires: Timestamp, lifetime: i64| expires.unix() - now.unix() < lifetime / 2;
    let snapshot_due = server_can_sign(root_s, TopLevelRole::Snapshot, &signers.snapshot)
        && half_gone(snapshot.md.expires(), lifetimes.snapshot);
    let timestamp_due = snapshot_due || half_gone(ts.md.expires(), lifetimes.timestamp);
    if !timestamp_due {
        return Ok(None);
    }
    let mut files = Vec::new();
    let (snap_version, snap_bytes) = if snapshot_due {
        let mut snap = snapshot.md.signed().clone();
        snap.bump_version();
        snap.set_expires(now.add_seconds(lifetimes.snapshot));
        let md = sign_as_server(TopLevelRole::Snapshot, snap, root_s, &signers.snapshot)?;
        let bytes = md.to_bytes();
        files.push(new_file("snapshot", md.version(), bytes.clone()));
        (md.version(), bytes)
    } else {
        (snapshot.md.version(), snapshot.bytes.clone())
    };
    let mut t = TimestampRole::new(
        now.add_seconds(lifetimes.timestamp),
        MetaFile::for_bytes(snap_version, &snap_bytes),
    );
    t.common.version = ts.md.version().next();
    let md = sign_as_server(TopLevelRole::Timestamp, t, root_s, &signers.timestamp)?;
    files.push(new_file("timestamp", md.version(), md.to_bytes()));
    check_files_storable(&files)?;
    Ok(Some(Update { files }))
}

#[cfg(test)]
mod tests;
