//! The Notary v1 client workflow as a sans-IO state machine.
//!
//! A [`NotaryVerifier`] starts from a root the user already trusts (held in a [`NotaryState`])
//! and accepts fetched bytes in the order the notary client loads them:
//!
//! 1. [`NotaryVerifier::update_root`] for each newer root, `N+1` up to the latest: each signed
//!    by a threshold of the previous root's root certificates *and* by a threshold of its
//!    own, whose common names must name the GUN and which must be valid now (Notary's trust
//!    pinning rules); at most [`Limits::max_root_rotations`] in one update.
//! 2. [`NotaryVerifier::update_timestamp`]: the final root must not be expired; signed by a
//!    threshold of root's timestamp keys; version not lower than the one trusted before; not
//!    expired.
//! 3. [`NotaryVerifier::update_snapshot`]: length and hashes from timestamp; snapshot keys;
//!    version not lower than before; not expired; the root it lists is the trusted root.
//! 4. [`NotaryVerifier::next_targets`] / [`NotaryVerifier::update_targets`] for `targets`
//!    and then its delegations in pre-order: length and hashes from snapshot, keys and
//!    threshold from root (for `targets`) or the delegating role, version not lower than
//!    before, not expired; a delegated role's paths are those of its own that fall under a
//!    path of its parent's (Notary's prefix rule), and its targets outside them are not
//!    trusted. As in the notary client, a delegated role that is expired or not signed by its
//!    threshold is skipped (and reported) rather than failing the update; roles the snapshot
//!    does not list are skipped too. At most [`Limits::max_delegations`] delegated roles are
//!    visited, at most [`MAX_DELEGATION_DEPTH`] deep.
//! 5. [`NotaryVerifier::finish`] gives the [`NotaryCollection`]: every trusted target per
//!    role, what was skipped and why, which roles were expired, and the new [`NotaryState`].
//!
//! The first failed call ends the update: every later call fails too (start again from the
//! kept state).
//!
//! Expired metadata is refused unless the verifier is built with
//! [`ExpiredMetadata::AllowAndReport`] (for importing a collection whose server is gone):
//! then every other check stays and [`NotaryCollection::expired`] names each expired role
//! and root certificate. The reference time is fixed when the verifier is built.

use std::collections::{BTreeMap, VecDeque};

use base64ct::{Base64, Encoding};
use vouch_tuf::json::{self, Map, Value};
use vouch_tuf::notary::{
    self, is_delegation_name, verify_threshold, Delegation, FileMeta, NotaryError, NotaryKey,
    PathPrefixes, RoleKeys, Root, Signed, Snapshot, Targets, Timestamp,
};
use vouch_tuf::time::Timestamp as Instant;

use crate::limits::Limits;

use super::NotaryVerifyError;

/// Deepest delegation visited (`targets/a` is depth 1).
pub const MAX_DELEGATION_DEPTH: usize = 16;

/// Whether expired metadata is refused (an enum, so that the choice is visible at the call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiredMetadata {
    /// Expired roles (and expired root certificates) fail the update: what a consumer
    /// deciding whether to trust an image must use.
    Refuse,
    /// Expired roles are accepted and reported in [`NotaryCollection::expired`]; every other
    /// check stays. For importing a collection whose server no longer re-signs it.
    AllowAndReport,
}

/// What a caller keeps between runs to catch rollback and freeze: the latest trusted root and
/// the latest trusted versions of the other roles, per GUN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotaryState {
    gun: String,
    root: Vec<u8>,
    timestamp_version: u64,
    snapshot_version: u64,
    targets_versions: BTreeMap<String, u64>,
}

impl NotaryState {
    /// The state of a GUN whose trust starts from `root` (the bytes of a Notary root the user
    /// trusts: the notary client's `…/tuf/<gun>/metadata/root.json`, or a file). Nothing is
    /// checked until a [`NotaryVerifier`] is built from it.
    pub fn from_trusted_root(gun: &str, root: Vec<u8>) -> Self {
        Self {
            gun: gun.to_owned(),
            root,
            timestamp_version: 0,
            snapshot_version: 0,
            targets_versions: BTreeMap::new(),
        }
    }

    /// The GUN.
    pub fn gun(&self) -> &str {
        &self.gun
    }

    /// The latest trusted root, as its bytes.
    pub fn root(&self) -> &[u8] {
        &self.root
    }

    /// The latest trusted timestamp version (0: none yet).
    pub fn timestamp_version(&self) -> u64 {
        self.timestamp_version
    }

    /// The latest trusted snapshot version (0: none yet).
    pub fn snapshot_version(&self) -> u64 {
        self.snapshot_version
    }

    /// The latest trusted version of a targets role, if one was trusted.
    pub fn targets_version(&self, role: &str) -> Option<u64> {
        self.targets_versions.get(role).copied()
    }

    /// The state as a JSON document (the root embedded as base64 of its exact bytes).
    pub fn to_json(&self) -> Vec<u8> {
        let versions: Map = self
            .targets_versions
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(*v)))
            .collect();
        let map = Map::from([
            ("gun".to_owned(), Value::from(self.gun.as_str())),
            (
                "root".to_owned(),
                Value::from(Base64::encode_string(&self.root)),
            ),
            (
                "snapshot_version".to_owned(),
                Value::from(self.snapshot_version),
            ),
            ("targets_versions".to_owned(), Value::Object(versions)),
            (
                "timestamp_version".to_owned(),
                Value::from(self.timestamp_version),
            ),
            ("type".to_owned(), Value::from("vouch-notary-state")),
        ]);
        json::to_json(&Value::Object(map))
    }

    /// Reads a state written by [`NotaryState::to_json`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, NotaryVerifyError> {
        let bad = |reason: &str| NotaryVerifyError::BadState {
            reason: reason.to_owned(),
        };
        let value = json::parse(bytes).map_err(|e| bad(&e.to_string()))?;
        let map = value.as_object().ok_or_else(|| bad("not a JSON object"))?;
        if map.get("type").and_then(Value::as_str) != Some("vouch-notary-state") {
            return Err(bad("not a vouch notary state document"));
        }
        let u = |k: &str| {
            map.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(&format!("{k} is missing")))
        };
        let root = map
            .get("root")
            .and_then(Value::as_str)
            .and_then(|s| Base64::decode_vec(s).ok())
            .ok_or_else(|| bad("root is missing or not base64"))?;
        let mut targets_versions = BTreeMap::new();
        if let Some(m) = map.get("targets_versions").and_then(Value::as_object) {
            for (k, v) in m {
                let v = v
                    .as_u64()
                    .ok_or_else(|| bad("a targets version is not a number"))?;
                targets_versions.insert(k.clone(), v);
            }
        }
        Ok(Self {
            gun: map
                .get("gun")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("gun is missing"))?
                .to_owned(),
            root,
            timestamp_version: u("timestamp_version")?,
            snapshot_version: u("snapshot_version")?,
            targets_versions,
        })
    }
}

/// A target a verified role lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotaryTarget {
    /// The target name (for images: the tag).
    pub name: String,
    /// Lowercase hex SHA-256 (the manifest digest), when the role gives one.
    pub sha256: Option<String>,
    /// Length in bytes.
    pub length: u64,
    /// `custom`, when given.
    pub custom: Option<Value>,
    /// The role that signed it (`targets`, `targets/releases`).
    pub role: String,
}

/// A targets role that was verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRole {
    /// The role name.
    pub name: String,
    /// Its version.
    pub version: u64,
    /// Its expiry, as written.
    pub expires: String,
    /// The ids of the keys whose signatures counted.
    pub signed_by: Vec<String>,
    /// The paths it may sign for, after Notary's restriction by its parents (`""` = all).
    pub paths: Vec<String>,
    /// The targets it trusts, by name.
    pub targets: BTreeMap<String, NotaryTarget>,
    /// Targets it lists outside its paths (not trusted).
    pub outside_paths: Vec<String>,
    /// The keys its signatures were checked against (for `targets`, root's targets keys;
    /// for a delegated role, the keys its parent lists for it).
    pub keys: Vec<NotaryKey>,
    /// How many of them must sign.
    pub threshold: u64,
}

/// A role that was not verified, and why (the update went on without it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedRole {
    /// The role name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// A role (or root certificate) that was expired at the reference time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiredRole {
    /// `root`, `timestamp`, `snapshot`, `targets`, a delegated role, or
    /// `root certificate <keyid>`.
    pub role: String,
    /// Its expiry, as written.
    pub expires: String,
}

/// The outcome of a verified update of one Notary collection.
#[derive(Clone, Debug)]
pub struct NotaryCollection {
    /// The GUN.
    pub gun: String,
    /// The final root's version.
    pub root_version: u64,
    /// The timestamp's version.
    pub timestamp_version: u64,
    /// The snapshot's version.
    pub snapshot_version: u64,
    /// Verified targets roles, `targets` first, then delegations in pre-order.
    pub roles: Vec<VerifiedRole>,
    /// Roles skipped, and why.
    pub skipped: Vec<SkippedRole>,
    /// Expired roles accepted under [`ExpiredMetadata::AllowAndReport`].
    pub expired: Vec<ExpiredRole>,
    /// The state to keep for the next run.
    pub state: NotaryState,
}

impl NotaryCollection {
    /// The target `name` resolves to, as the notary client resolves it: the first role in
    /// `targets`-first pre-order that trusts it.
    pub fn lookup(&self, name: &str) -> Option<&NotaryTarget> {
        self.roles.iter().find_map(|r| r.targets.get(name))
    }

    /// The target `name` resolves to when the roles are asked in the order given, each with
    /// the roles it delegates to (its descendants, in pre-order) — how `docker trust`
    /// resolves a tag: `&["targets/releases", "targets"]`.
    ///
    /// ```
    /// # fn f(c: &vouch_verifier::notary::NotaryCollection) {
    /// let signed = c.lookup_preferring("v1.2.0", &["targets/releases", "targets"]);
    /// # }
    /// ```
    pub fn lookup_preferring(&self, name: &str, roles: &[&str]) -> Option<&NotaryTarget> {
        roles.iter().find_map(|wanted| {
            self.roles
                .iter()
                .filter(|r| {
                    r.name == *wanted
                        || r.name
                            .strip_prefix(*wanted)
                            .is_some_and(|rest| rest.starts_with('/'))
                })
                .find_map(|r| r.targets.get(name))
        })
    }

    /// The verified role called `name`.
    pub fn role(&self, name: &str) -> Option<&VerifiedRole> {
        self.roles.iter().find(|r| r.name == name)
    }
}

/// A targets role the verifier wants next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetsRequest {
    /// The role name.
    pub role: String,
    /// Its file name as the notary client asks a server for it: `targets.<sha256 hex>.json`,
    /// `targets/releases.<sha256 hex>.json`.
    pub consistent_name: String,
    /// Its file name in the notary client's cache: `targets.json`, `targets/releases.json`.
    pub cached_name: String,
    /// Most bytes to read: the length snapshot gives, within the cap.
    pub max_len: u64,
}

struct Pending {
    name: String,
    keys: BTreeMap<String, NotaryKey>,
    threshold: u64,
    paths: Vec<String>,
    depth: usize,
}

/// The sans-IO Notary client (see the module documentation).
pub struct NotaryVerifier {
    state: NotaryState,
    now: Instant,
    expired_policy: ExpiredMetadata,
    limits: Limits,
    root: Root,
    root_bytes: Vec<u8>,
    /// True once the final root's own signatures were checked with certificate validity.
    root_checked_now: bool,
    rotations: u32,
    timestamp: Option<Timestamp>,
    snapshot: Option<Snapshot>,
    queue: VecDeque<Pending>,
    visited: u32,
    roles: Vec<VerifiedRole>,
    skipped: Vec<SkippedRole>,
    expired: Vec<ExpiredRole>,
    new_targets_versions: BTreeMap<String, u64>,
    /// Set by the first failed call: the update is over, and every later call fails.
    failed: bool,
}

impl NotaryVerifier {
    /// Starts an update from `state` at the reference time `now`.
    ///
    /// The trusted root is checked for shape and for its own signatures: a threshold of its
    /// root keys, certificates whose common name names the GUN. Their validity period is
    /// checked once it is known to be the final root.
    pub fn new(
        state: &NotaryState,
        now: Instant,
        expired: ExpiredMetadata,
        limits: Limits,
    ) -> Result<Self, NotaryVerifyError> {
        let (doc, root) = parse_root(&state.root)?;
        let gun = state.gun.clone();
        verify_root_by(&doc, &root, &gun, now, None)?;
        Ok(Self {
            state: state.clone(),
            now,
            expired_policy: expired,
            limits,
            root,
            root_bytes: state.root.clone(),
            root_checked_now: false,
            rotations: 0,
            timestamp: None,
            snapshot: None,
            queue: VecDeque::new(),
            visited: 0,
            roles: Vec::new(),
            skipped: Vec::new(),
            expired: Vec::new(),
            new_targets_versions: BTreeMap::new(),
            failed: false,
        })
    }

    /// The version of the trusted root (the latest one accepted so far).
    pub fn root_version(&self) -> u64 {
        self.root.common.version
    }

    /// The version a root document claims, read without checking it: to decide which
    /// intermediate versions (`N.root.json`) to fetch before offering the latest one.
    pub fn claimed_root_version(bytes: &[u8]) -> Result<u64, NotaryVerifyError> {
        Ok(parse_root(bytes)?.1.common.version)
    }

    /// Runs one step of the update: refused once an earlier step failed, and a failure ends
    /// the update (later steps fail, `next_targets` gives nothing, `finish` refuses).
    fn guarded<T>(
        &mut self,
        step: impl FnOnce(&mut Self) -> Result<T, NotaryVerifyError>,
    ) -> Result<T, NotaryVerifyError> {
        if self.failed {
            return Err(NotaryVerifyError::OutOfOrder {
                what: "a call after a failed one",
            });
        }
        let result = step(self);
        self.failed |= result.is_err();
        result
    }

    /// Accepts the next root version: version exactly one more than the trusted root, signed
    /// by a threshold of the trusted root's root certificates and by a threshold of its own
    /// valid ones. A root of the trusted version is accepted only with the trusted root's
    /// signed content (its bytes are then the ones the snapshot must list).
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<(), NotaryVerifyError> {
        self.guarded(|v| v.update_root_checked(bytes))
    }

    fn update_root_checked(&mut self, bytes: &[u8]) -> Result<(), NotaryVerifyError> {
        if self.timestamp.is_some() {
            return Err(NotaryVerifyError::OutOfOrder {
                what: "root after timestamp",
            });
        }
        if self.rotations >= self.limits.max_root_rotations {
            return Err(NotaryVerifyError::TooManyRootVersions {
                max: self.limits.max_root_rotations,
            });
        }
        let (doc, new) = parse_root(bytes)?;
        if new.common.version == self.root.common.version {
            // The trusted root again, perhaps spelled or signed differently: the same signed
            // content is required, and its own signatures; the snapshot then checks these
            // bytes.
            let (trusted, _) = parse_root(&self.root_bytes)?;
            if trusted.signed_bytes != doc.signed_bytes {
                return Err(NotaryVerifyError::RootDiffers {
                    version: new.common.version,
                });
            }
            let gun = self.state.gun.clone();
            verify_root_by(&doc, &new, &gun, self.now, None)?;
            self.root_bytes = bytes.to_vec();
            return Ok(());
        }
        let expected = self.root.common.version + 1;
        if new.common.version != expected {
            return Err(NotaryVerifyError::RootVersion {
                expected,
                found: new.common.version,
            });
        }
        let gun = self.state.gun.clone();
        verify_root_by(&doc, &self.root, &gun, self.now, None).map_err(|e| {
            NotaryVerifyError::RootRotation {
                version: expected,
                reason: e.to_string(),
            }
        })?;
        let mut expired = Vec::new();
        verify_root_by(
            &doc,
            &new,
            &gun,
            self.now,
            Some((self.expired_policy, &mut expired)),
        )?;
        self.note_expired(expired);
        self.root = new;
        self.root_bytes = bytes.to_vec();
        self.root_checked_now = true;
        self.rotations += 1;
        Ok(())
    }

    /// Accepts the timestamp (see the module documentation).
    pub fn update_timestamp(&mut self, bytes: &[u8]) -> Result<(), NotaryVerifyError> {
        self.guarded(|v| v.update_timestamp_checked(bytes))
    }

    fn update_timestamp_checked(&mut self, bytes: &[u8]) -> Result<(), NotaryVerifyError> {
        if self.timestamp.is_some() {
            return Err(NotaryVerifyError::OutOfOrder {
                what: "a second timestamp",
            });
        }
        if !self.root_checked_now {
            let (doc, root) = parse_root(&self.root_bytes)?;
            let mut expired = Vec::new();
            let gun = self.state.gun.clone();
            verify_root_by(
                &doc,
                &root,
                &gun,
                self.now,
                Some((self.expired_policy, &mut expired)),
            )?;
            self.note_expired(expired);
            self.root_checked_now = true;
        }
        let root_expires = self.root.common.expires.clone();
        self.check_expiry("root", &root_expires)?;
        let doc = Signed::parse("timestamp", bytes).map_err(doc_err)?;
        let ts = Timestamp::from_signed(&doc.signed).map_err(doc_err)?;
        self.verify_top_level(&doc, "timestamp")?;
        check_version("timestamp", ts.common.version, self.state.timestamp_version)?;
        self.check_expiry("timestamp", &ts.common.expires)?;
        self.timestamp = Some(ts);
        Ok(())
    }

    /// The snapshot file to fetch next: its name as a server serves it by checksum
    /// (`snapshot.<sha256 hex>.json`), and the most bytes to read.
    pub fn snapshot_request(&self) -> Result<(String, u64), NotaryVerifyError> {
        let ts = self
            .timestamp
            .as_ref()
            .ok_or(NotaryVerifyError::OutOfOrder {
                what: "snapshot before timestamp",
            })?;
        let hex = ts.snapshot.sha256_hex().unwrap_or_default();
        Ok((
            format!("snapshot.{hex}.json"),
            self.limits.snapshot_fetch_len(ts.snapshot.length),
        ))
    }

    /// Accepts the snapshot (see the module documentation).
    pub fn update_snapshot(&mut self, bytes: &[u8]) -> Result<(), NotaryVerifyError> {
        self.guarded(|v| v.update_snapshot_checked(bytes))
    }

    fn update_snapshot_checked(&mut self, bytes: &[u8]) -> Result<(), NotaryVerifyError> {
        let ts = self
            .timestamp
            .as_ref()
            .ok_or(NotaryVerifyError::OutOfOrder {
                what: "snapshot before timestamp",
            })?;
        if self.snapshot.is_some() {
            return Err(NotaryVerifyError::OutOfOrder {
                what: "a second snapshot",
            });
        }
        ts.snapshot.check("snapshot", bytes).map_err(doc_err)?;
        let doc = Signed::parse("snapshot", bytes).map_err(doc_err)?;
        let snap = Snapshot::from_signed(&doc.signed).map_err(doc_err)?;
        self.verify_top_level(&doc, "snapshot")?;
        check_version("snapshot", snap.common.version, self.state.snapshot_version)?;
        self.check_expiry("snapshot", &snap.common.expires)?;
        if let Some(root_meta) = snap.meta.get("root") {
            root_meta.check("root", &self.root_bytes).map_err(|e| {
                NotaryVerifyError::SnapshotRoot {
                    reason: e.to_string(),
                }
            })?;
        }
        let targets = self.root.role("targets").cloned().unwrap_or(RoleKeys {
            keyids: Vec::new(),
            threshold: 1,
        });
        self.queue.push_back(Pending {
            name: "targets".to_owned(),
            keys: select_keys(&self.root.keys, &targets.keyids),
            threshold: targets.threshold,
            paths: vec![String::new()],
            depth: 0,
        });
        self.snapshot = Some(snap);
        Ok(())
    }

    /// The next targets role to fetch, or `None` when the walk is over. Roles the snapshot
    /// does not list are skipped (and reported), as the notary client skips them.
    pub fn next_targets(&mut self) -> Option<TargetsRequest> {
        if self.failed {
            return None;
        }
        let snap = self.snapshot.as_ref()?;
        while let Some(p) = self.queue.front() {
            match snap.meta.get(&p.name) {
                Some(meta) => {
                    // By checksum when snapshot gives a SHA-256, else by name, as the notary
                    // client asks.
                    let consistent_name = match meta.sha256_hex() {
                        Some(hex) => format!("{}.{hex}.json", p.name),
                        None => format!("{}.json", p.name),
                    };
                    return Some(TargetsRequest {
                        role: p.name.clone(),
                        consistent_name,
                        cached_name: format!("{}.json", p.name),
                        max_len: self.limits.targets_fetch_len(meta.length),
                    });
                }
                None => {
                    let name = p.name.clone();
                    self.queue.pop_front();
                    self.skipped.push(SkippedRole {
                        name,
                        reason: "the snapshot does not list it".to_owned(),
                    });
                }
            }
        }
        None
    }

    /// Accepts the bytes of the role [`NotaryVerifier::next_targets`] asked for.
    pub fn update_targets(&mut self, role: &str, bytes: &[u8]) -> Result<(), NotaryVerifyError> {
        self.guarded(|v| v.update_targets_checked(role, bytes))
    }

    fn update_targets_checked(
        &mut self,
        role: &str,
        bytes: &[u8],
    ) -> Result<(), NotaryVerifyError> {
        let snap = self
            .snapshot
            .as_ref()
            .ok_or(NotaryVerifyError::OutOfOrder {
                what: "targets before snapshot",
            })?;
        let Some(pending) = self.queue.front() else {
            return Err(NotaryVerifyError::OutOfOrder {
                what: "targets that were not asked for",
            });
        };
        if pending.name != role {
            return Err(NotaryVerifyError::OutOfOrder {
                what: "targets of another role than the one asked for",
            });
        }
        let meta = snap
            .meta
            .get(role)
            .cloned()
            .ok_or(NotaryVerifyError::OutOfOrder {
                what: "targets the snapshot does not list",
            })?;
        let Some(pending) = self.queue.pop_front() else {
            return Ok(());
        };
        meta.check(role, bytes).map_err(doc_err)?;
        let doc = Signed::parse(role, bytes).map_err(doc_err)?;
        let targets = Targets::from_signed(&doc.signed, role).map_err(doc_err)?;
        let keys: BTreeMap<String, &NotaryKey> =
            pending.keys.iter().map(|(k, v)| (k.clone(), v)).collect();
        let signed_by = match verify_threshold(&doc, role, &keys, pending.threshold) {
            Ok(ids) => ids,
            Err(e) if role != "targets" => {
                self.skipped.push(SkippedRole {
                    name: role.to_owned(),
                    reason: e.to_string(),
                });
                return Ok(());
            }
            Err(e) => return Err(doc_err(e)),
        };
        let previous = self.state.targets_versions.get(role).copied().unwrap_or(0);
        check_version(role, targets.common.version, previous)?;
        if targets.common.expires.is_expired_at(self.now) {
            match (self.expired_policy, role) {
                (ExpiredMetadata::AllowAndReport, _) => self.expired.push(ExpiredRole {
                    role: role.to_owned(),
                    expires: targets.common.expires.text.clone(),
                }),
                (ExpiredMetadata::Refuse, "targets") => {
                    return Err(NotaryVerifyError::Expired {
                        role: role.to_owned(),
                        expires: targets.common.expires.text.clone(),
                    })
                }
                (ExpiredMetadata::Refuse, _) => {
                    self.skipped.push(SkippedRole {
                        name: role.to_owned(),
                        reason: format!("expired at {}", targets.common.expires.text),
                    });
                    return Ok(());
                }
            }
        }
        self.new_targets_versions
            .insert(role.to_owned(), targets.common.version);

        // Both the targets and the paths are counted by whoever signed the delegations:
        // matching goes through `PathPrefixes`, not every name against every path.
        let allowed = PathPrefixes::new(pending.paths.iter().map(String::as_str));
        let mut trusted = BTreeMap::new();
        let mut outside = Vec::new();
        for (name, m) in &targets.targets {
            if allowed.matches(name) {
                trusted.insert(name.clone(), target(name, m, role));
            } else {
                outside.push(name.clone());
            }
        }
        // Children in document order, before the siblings already queued (pre-order).
        let mut children = Vec::new();
        for d in &targets.delegations {
            if let Some(child) = self.child(&pending, &allowed, &targets, d) {
                children.push(child);
            }
        }
        for child in children.into_iter().rev() {
            self.queue.push_front(child);
        }
        self.roles.push(VerifiedRole {
            name: role.to_owned(),
            version: targets.common.version,
            expires: targets.common.expires.text.clone(),
            signed_by,
            paths: pending.paths,
            targets: trusted,
            outside_paths: outside,
            keys: pending.keys.into_values().collect(),
            threshold: pending.threshold,
        });
        Ok(())
    }

    fn child(
        &mut self,
        parent: &Pending,
        parent_paths: &PathPrefixes,
        targets: &Targets,
        d: &Delegation,
    ) -> Option<Pending> {
        let depth = parent.depth + 1;
        let skip = |me: &mut Self, reason: String| {
            me.skipped.push(SkippedRole {
                name: d.name.clone(),
                reason,
            });
            None
        };
        if !is_delegation_name(&d.name) || notary::parent_of(&d.name) != parent.name {
            return skip(self, format!("not a direct child of {}", parent.name));
        }
        if depth > MAX_DELEGATION_DEPTH {
            return skip(
                self,
                format!("deeper than {MAX_DELEGATION_DEPTH} delegations"),
            );
        }
        if self.visited >= self.limits.max_delegations {
            return skip(
                self,
                format!("more than {} delegated roles", self.limits.max_delegations),
            );
        }
        self.visited += 1;
        let paths: Vec<String> = d
            .paths
            .iter()
            .filter(|p| parent_paths.matches(p))
            .cloned()
            .collect();
        Some(Pending {
            name: d.name.clone(),
            keys: select_keys(&targets.delegation_keys, &d.keys.keyids),
            threshold: d.keys.threshold,
            paths,
            depth,
        })
    }

    /// Ends the update: every targets role asked for must have been offered.
    pub fn finish(self) -> Result<NotaryCollection, NotaryVerifyError> {
        if self.failed {
            return Err(NotaryVerifyError::OutOfOrder {
                what: "finish after a failed call",
            });
        }
        let (Some(ts), Some(snap)) = (&self.timestamp, &self.snapshot) else {
            return Err(NotaryVerifyError::OutOfOrder {
                what: "finish before timestamp and snapshot",
            });
        };
        if !self.queue.is_empty() {
            return Err(NotaryVerifyError::OutOfOrder {
                what: "finish before every targets role was offered",
            });
        }
        if self.role_named("targets").is_none() {
            return Err(NotaryVerifyError::OutOfOrder {
                what: "finish without the targets role",
            });
        }
        let mut targets_versions = self.state.targets_versions.clone();
        targets_versions.extend(self.new_targets_versions.clone());
        let state = NotaryState {
            gun: self.state.gun.clone(),
            root: self.root_bytes.clone(),
            timestamp_version: ts.common.version,
            snapshot_version: snap.common.version,
            targets_versions,
        };
        Ok(NotaryCollection {
            gun: self.state.gun.clone(),
            root_version: self.root.common.version,
            timestamp_version: ts.common.version,
            snapshot_version: snap.common.version,
            roles: self.roles,
            skipped: self.skipped,
            expired: self.expired,
            state,
        })
    }

    /// Records expired roles and certificates, each once (a certificate can sign several
    /// root versions).
    fn note_expired(&mut self, expired: Vec<ExpiredRole>) {
        for e in expired {
            if !self.expired.contains(&e) {
                self.expired.push(e);
            }
        }
    }

    fn role_named(&self, name: &str) -> Option<&VerifiedRole> {
        self.roles.iter().find(|r| r.name == name)
    }

    fn verify_top_level(&self, doc: &Signed, role: &str) -> Result<(), NotaryVerifyError> {
        let spec = self.root.role(role).ok_or_else(|| {
            doc_err(NotaryError::Malformed {
                role: "root".to_owned(),
                reason: format!("no {role} role"),
            })
        })?;
        let keys: BTreeMap<String, &NotaryKey> = spec
            .keyids
            .iter()
            .filter_map(|id| self.root.keys.get(id).map(|k| (id.clone(), k)))
            .collect();
        verify_threshold(doc, role, &keys, spec.threshold).map_err(doc_err)?;
        Ok(())
    }

    fn check_expiry(
        &mut self,
        role: &str,
        expires: &notary::Expires,
    ) -> Result<(), NotaryVerifyError> {
        if !expires.is_expired_at(self.now) {
            return Ok(());
        }
        match self.expired_policy {
            ExpiredMetadata::Refuse => Err(NotaryVerifyError::Expired {
                role: role.to_owned(),
                expires: expires.text.clone(),
            }),
            ExpiredMetadata::AllowAndReport => {
                self.expired.push(ExpiredRole {
                    role: role.to_owned(),
                    expires: expires.text.clone(),
                });
                Ok(())
            }
        }
    }
}

fn doc_err(source: NotaryError) -> NotaryVerifyError {
    NotaryVerifyError::Document(source)
}

fn parse_root(bytes: &[u8]) -> Result<(Signed, Root), NotaryVerifyError> {
    let doc = Signed::parse("root", bytes).map_err(doc_err)?;
    let root = Root::from_signed(&doc.signed).map_err(doc_err)?;
    Ok((doc, root))
}

fn select_keys(all: &BTreeMap<String, NotaryKey>, ids: &[String]) -> BTreeMap<String, NotaryKey> {
    ids.iter()
        .filter_map(|id| all.get(id).map(|k| (id.clone(), k.clone())))
        .collect()
}

fn check_version(role: &str, found: u64, trusted: u64) -> Result<(), NotaryVerifyError> {
    if found < trusted {
        return Err(NotaryVerifyError::Rollback {
            role: role.to_owned(),
            trusted,
            found,
        });
    }
    Ok(())
}

fn target(name: &str, m: &FileMeta, role: &str) -> NotaryTarget {
    NotaryTarget {
        name: name.to_owned(),
        sha256: m.sha256_hex(),
        length: m.length,
        custom: m.custom.clone(),
        role: role.to_owned(),
    }
}

/// Checks that `doc` (a root) is signed by a threshold of `by`'s root keys that Notary
/// accepts as root certificates for `gun`.
///
/// With `validity` = `None` the certificates' validity periods are not checked (Notary does
/// not check them for the previous root); with `Some((policy, expired))` they are: refused,
/// or under [`ExpiredMetadata::AllowAndReport`] counted and reported.
fn verify_root_by(
    doc: &Signed,
    by: &Root,
    gun: &str,
    now: Instant,
    validity: Option<(ExpiredMetadata, &mut Vec<ExpiredRole>)>,
) -> Result<(), NotaryVerifyError> {
    let Some(spec) = by.role("root") else {
        return Err(NotaryVerifyError::RootKeys {
            reason: "no root role".to_owned(),
        });
    };
    let mut keys = BTreeMap::new();
    let mut problems = Vec::new();
    let mut out_of_validity = Vec::new();
    for id in &spec.keyids {
        let Some(key) = by.keys.get(id) else { continue };
        let Some(cert) = key.certificate() else {
            problems.push(format!("root key {id} is not a certificate"));
            continue;
        };
        if let Some(p) = cert.problem(gun, now, false) {
            problems.push(format!("root key {id}: {p}"));
            continue;
        }
        if validity.is_some() {
            if let Some(p) = cert.problem(gun, now, true) {
                out_of_validity.push((id.clone(), p, cert.not_after));
            }
        }
        keys.insert(id.clone(), key);
    }
    if let Some((policy, expired)) = validity {
        for (id, p, not_after) in out_of_validity {
            match policy {
                ExpiredMetadata::Refuse => {
                    keys.remove(&id);
                    problems.push(format!("root key {id}: {p}"));
                }
                ExpiredMetadata::AllowAndReport => expired.push(ExpiredRole {
                    role: format!("root certificate {id}"),
                    expires: not_after.to_string(),
                }),
            }
        }
    }
    if keys.is_empty() {
        return Err(NotaryVerifyError::RootKeys {
            reason: if problems.is_empty() {
                "no root keys".to_owned()
            } else {
                problems.join("; ")
            },
        });
    }
    verify_threshold(doc, "root", &keys, spec.threshold).map_err(|e| match e {
        NotaryError::Threshold {
            role,
            valid,
            threshold,
            problems: mut p,
        } => {
            p.extend(problems);
            doc_err(NotaryError::Threshold {
                role,
                valid,
                threshold,
                problems: p,
            })
        }
        other => doc_err(other),
    })?;
    Ok(())
}
