//! The trusted metadata set: the sans-IO heart of the TUF client workflow.
//!
//! A [`TrustedSet`] starts from a trusted root and accepts fetched bytes role by role, in the
//! order of the specification's detailed client workflow (1.0.34, section 5):
//!
//! 1. [`TrustedSet::update_root`] for each `N+1.root.json` (5.3): signed by a threshold of the
//!    trusted root's keys *and* of its own, version exactly `N+1`, at most
//!    [`Limits::max_root_rotations`] per update. Rotated timestamp or snapshot keys make cached
//!    timestamp and snapshot metadata unusable (fast-forward recovery, 5.3.11).
//! 2. [`TrustedSet::update_timestamp`] (5.4): the final root must not be expired (freeze check,
//!    5.3.10), timestamp threshold, version not lower than the trusted one (an equal version
//!    keeps the trusted copy), snapshot version it names not lower, not expired.
//! 3. [`TrustedSet::update_snapshot`] (5.5): length and hashes from timestamp, threshold,
//!    no targets role dropped or going backwards against the trusted snapshot, not expired,
//!    version equal to the one timestamp names.
//! 4. [`TrustedSet::update_targets`] and [`TrustedSet::update_delegated`] (5.6): length,
//!    hashes and version from snapshot, threshold of root's (or the delegating role's) keys,
//!    not expired.
//!
//! Every expiry check uses the one reference time given when the set is built
//! ([`TrustedSet::new`]): an update builds a new set, so time is fixed for the whole update.
//!
//! # Expired metadata and its owner
//!
//! Whether expiry is enforced is fixed when the set is built, by an [`Expiry`]:
//! [`TrustedSet::new`] always enforces it ([`Expiry::Enforce`]); only
//! [`TrustedSet::with_expiry`] with [`Expiry::IgnoreForEditing`] builds a set in which expired
//! metadata is accepted. That set is for the owner of a repository who loads its current state
//! in order to *write* the next one (renew, sign, rotate): an expired root or targets role can
//! only be repaired by re-signing it, and its owner must be able to read it to do that (Notary
//! repositories whose metadata expired could not be recovered by their own client). Every other
//! check stays: signatures and thresholds by the trusted keys, the root chain, rollback of
//! versions, lengths and hashes from timestamp and snapshot, size caps. [`TrustedSet::expired`]
//! names the roles that are expired at the reference time, so the editor can say so.
//!
//! A relaxed set never answers whether an image is trusted: [`Updater`](crate::Updater)
//! answers only from the set of its last [`refresh`](crate::Updater::refresh), which enforces
//! expiry; [`Updater::refresh_for_editing`](crate::Updater::refresh_for_editing) hands the
//! relaxed set to its caller and leaves the updater without answers.
//!
//! A relaxed load persists what it accepted to the trusted-metadata cache like any other
//! update. That is safe: each file passed every signature, version and hash check, so it is a
//! sound baseline for rollback checks (which is all the cache is for), and the next enforcing
//! update checks expiry again on everything it uses: the final root (freeze check), the
//! fetched timestamp (or the cached one when the versions are equal), the final snapshot, and
//! every targets role, cached or fetched. What a relaxed load does give up is freeze
//! protection for the editor alone: a server may show it old (validly signed) metadata that its
//! own cache cannot tell is stale, so tools that edit should show which roles were expired and
//! their versions.
//!
//! Metadata read back from a local cache goes through the same calls with
//! [`Origin::Cache`]: it is then a *baseline* for rollback checks, checked for signatures by
//! the current root but not for expiry or against newer timestamp metadata.
//!
//! This module does no IO: the [`Updater`](crate::Updater) fetches, persists and calls it.

use std::collections::{BTreeMap, HashMap};

use vouch_tuf::metadata::{MetaFile, Metadata, Role, Root, Snapshot, Targets, TimestampRole};
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{KeyId, RoleName, TopLevelRole, Version};

use crate::error::UpdateError;
use crate::limits::Limits;

/// Where metadata offered to the set comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Freshly fetched from the repository: every check applies.
    Remote,
    /// Read back from the local trusted cache: a baseline for rollback checks. Signatures by
    /// the current root are checked; expiry and consistency with newer metadata are not.
    Cache,
}

/// Whether a [`TrustedSet`] refuses expired metadata.
///
/// ```
/// use vouch_verifier::Expiry;
/// assert_ne!(Expiry::Enforce, Expiry::IgnoreForEditing);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Expired metadata is refused: what every consumer (verification, lookups, admission)
    /// uses, and what [`TrustedSet::new`] builds.
    Enforce,
    /// Expired metadata is accepted, every other check still applies: only for the owner
    /// of a repository loading its current state to write the next one (renewing expired
    /// roles). Never for deciding whether an image is trusted.
    IgnoreForEditing,
}

/// Whether a timestamp update changed the trusted timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampUpdate {
    /// The new timestamp is now trusted.
    Updated,
    /// The offered timestamp has the trusted version; the trusted copy is kept.
    Unchanged,
}

/// Trusted metadata of one role, with the exact bytes it was parsed from.
#[derive(Clone, Debug)]
pub struct Trusted<T: Role> {
    md: Metadata<T>,
    bytes: Vec<u8>,
}

impl<T: Role> Trusted<T> {
    /// The parsed metadata.
    pub fn metadata(&self) -> &Metadata<T> {
        &self.md
    }

    /// The role.
    pub fn signed(&self) -> &T {
        self.md.signed()
    }

    /// The bytes as served (what the cache stores).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The version.
    pub fn version(&self) -> Version {
        self.md.version()
    }
}

/// What to fetch next for a role whose version trusted metadata names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaRequest {
    /// The role.
    pub role: RoleName,
    /// The version trusted metadata names.
    pub version: Version,
    /// Most bytes to read: the trusted length, else the role's cap.
    pub max_len: u64,
    /// The file name to fetch: `VERSION.NAME.json` with consistent snapshots, else
    /// `NAME.json` (the name URL-encoded).
    pub file_name: String,
}

#[derive(Clone, Debug)]
struct DelegatedEntry {
    parent: RoleName,
    role: Trusted<Targets>,
}

/// The trusted metadata of one repository during and after an update.
///
/// ```
/// use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
/// use vouch_tuf::metadata::{Key, Metadata, Root};
/// use vouch_tuf::time::Timestamp;
/// use vouch_tuf::types::TopLevelRole;
/// use vouch_verifier::{Limits, TrustedSet, UpdateError};
///
/// let sk = PrivateKey::generate(Algorithm::Ed25519).unwrap();
/// let mut root = Root::new(Timestamp::from_unix(1_000));
/// for role in TopLevelRole::ALL {
///     root.add_key(role, Key::from_verifying_key(&sk.verifying_key()));
/// }
/// let bytes = Metadata::signed_by(root, &[&sk]).unwrap().to_bytes();
/// let set = TrustedSet::new(&bytes, Timestamp::from_unix(2_000), Limits::DEFAULT).unwrap();
/// // Root expired at 1000; the reference time is 2000: the freeze check refuses it.
/// assert!(matches!(set.check_root_expiry(), Err(UpdateError::Expired { .. })));
/// ```
#[derive(Clone, Debug)]
pub struct TrustedSet {
    now: Timestamp,
    expiry: Expiry,
    limits: Limits,
    root: Trusted<Root>,
    rotations: u32,
    timestamp_keys_rotated: bool,
    snapshot_keys_rotated: bool,
    timestamp: Option<Trusted<TimestampRole>>,
    snapshot: Option<Trusted<Snapshot>>,
    targets: Option<Trusted<Targets>>,
    delegated: HashMap<RoleName, DelegatedEntry>,
}

fn check_size(role: &str, bytes: &[u8], limit: u64) -> Result<(), UpdateError> {
    if bytes.len() as u64 > limit {
        return Err(UpdateError::TooLarge {
            role: role.to_owned(),
            limit,
        });
    }
    Ok(())
}

fn check_meta(role: &str, bytes: &[u8], meta: &MetaFile, cap: u64) -> Result<(), UpdateError> {
    if meta.length.is_none() {
        check_size(role, bytes, cap)?;
    }
    meta.check(bytes)
        .map_err(|mismatch| UpdateError::LengthOrHashMismatch {
            role: role.to_owned(),
            mismatch,
        })
}

fn check_expiry<T: Role>(
    role: &str,
    md: &Metadata<T>,
    now: Timestamp,
    expiry: Expiry,
) -> Result<(), UpdateError> {
    if expiry == Expiry::Enforce && md.signed().common().is_expired(now) {
        return Err(UpdateError::Expired {
            role: role.to_owned(),
            at: md.expires(),
        });
    }
    Ok(())
}

/// The keys and threshold that sign `role`, resolved to key material, for rotation checks.
fn signing_keys(root: &Root, role: TopLevelRole) -> (Vec<(KeyId, String, String, String)>, u32) {
    let rk = root.role_keys(role);
    let mut keys: Vec<_> = rk
        .keyids
        .iter()
        .map(|id| match root.keys.get(id) {
            Some(k) => (
                id.clone(),
                k.keytype.clone(),
                k.scheme.clone(),
                k.public.clone(),
            ),
            None => (id.clone(), String::new(), String::new(), String::new()),
        })
        .collect();
    keys.sort();
    (keys, rk.threshold.get())
}

impl TrustedSet {
    /// Starts from trusted root bytes (the pinned root or the cached `root.json`), with `now`
    /// as the reference time of every check made through this set.
    ///
    /// The root must be signed by a threshold of its own root keys. Its expiry is checked
    /// only after the root walk ([`TrustedSet::check_root_expiry`]), as the workflow says.
    /// Expiry is enforced ([`Expiry::Enforce`]).
    pub fn new(root_bytes: &[u8], now: Timestamp, limits: Limits) -> Result<Self, UpdateError> {
        Self::with_expiry(root_bytes, now, limits, Expiry::Enforce)
    }

    /// As [`TrustedSet::new`], with expiry enforced or not as `expiry` says: a set built with
    /// [`Expiry::IgnoreForEditing`] accepts expired metadata (and nothing else that
    /// [`TrustedSet::new`] would refuse), for the owner who renews it.
    ///
    /// ```
    /// use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
    /// use vouch_tuf::metadata::{Key, Metadata, Root};
    /// use vouch_tuf::time::Timestamp;
    /// use vouch_tuf::types::TopLevelRole;
    /// use vouch_verifier::{Expiry, Limits, TrustedSet};
    ///
    /// let sk = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    /// let mut root = Root::new(Timestamp::from_unix(1_000));
    /// for role in TopLevelRole::ALL {
    ///     root.add_key(role, Key::from_verifying_key(&sk.verifying_key()));
    /// }
    /// let bytes = Metadata::signed_by(root, &[&sk]).unwrap().to_bytes();
    /// let now = Timestamp::from_unix(2_000);
    /// let set = TrustedSet::with_expiry(&bytes, now, Limits::DEFAULT, Expiry::IgnoreForEditing).unwrap();
    /// assert!(set.check_root_expiry().is_ok());
    /// assert_eq!(set.expired()[0].0.as_str(), "root");
    /// ```
    pub fn with_expiry(
        root_bytes: &[u8],
        now: Timestamp,
        limits: Limits,
        expiry: Expiry,
    ) -> Result<Self, UpdateError> {
        let role = "root";
        check_size(role, root_bytes, limits.root_max_bytes)?;
        let md = Metadata::<Root>::from_bytes(root_bytes)?;
        md.signed()
            .verify_role(TopLevelRole::Root, &md)
            .map_err(|e| UpdateError::from_signature(e, role))?;
        Ok(TrustedSet {
            now,
            expiry,
            limits,
            root: Trusted {
                md,
                bytes: root_bytes.to_vec(),
            },
            rotations: 0,
            timestamp_keys_rotated: false,
            snapshot_keys_rotated: false,
            timestamp: None,
            snapshot: None,
            targets: None,
            delegated: HashMap::new(),
        })
    }

    /// The reference time of this update.
    pub fn reference_time(&self) -> Timestamp {
        self.now
    }

    /// Whether this set refuses expired metadata.
    pub fn expiry(&self) -> Expiry {
        self.expiry
    }

    /// The trusted roles that are expired at the reference time, with their expiry: root,
    /// timestamp, snapshot, targets, then the delegated roles loaded so far (by name). Empty
    /// for a set that enforces expiry, except for a root not checked yet
    /// ([`TrustedSet::check_root_expiry`]) and metadata read back from the cache.
    pub fn expired(&self) -> Vec<(RoleName, Timestamp)> {
        fn check<T: Role>(
            out: &mut Vec<(RoleName, Timestamp)>,
            name: RoleName,
            md: &Metadata<T>,
            now: Timestamp,
        ) {
            if md.signed().common().is_expired(now) {
                out.push((name, md.expires()));
            }
        }
        let now = self.now;
        let mut out = Vec::new();
        check(&mut out, TopLevelRole::Root.name(), &self.root.md, now);
        if let Some(t) = &self.timestamp {
            check(&mut out, TopLevelRole::Timestamp.name(), &t.md, now);
        }
        if let Some(s) = &self.snapshot {
            check(&mut out, TopLevelRole::Snapshot.name(), &s.md, now);
        }
        if let Some(t) = &self.targets {
            check(&mut out, TopLevelRole::Targets.name(), &t.md, now);
        }
        let mut delegated: Vec<_> = self.delegated.iter().collect();
        delegated.sort_by(|a, b| a.0.cmp(b.0));
        for (name, e) in delegated {
            check(&mut out, name.clone(), &e.role.md, now);
        }
        out
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The trusted root.
    pub fn root(&self) -> &Trusted<Root> {
        &self.root
    }

    /// The trusted timestamp, if any.
    pub fn timestamp(&self) -> Option<&Trusted<TimestampRole>> {
        self.timestamp.as_ref()
    }

    /// The trusted snapshot, if any.
    pub fn snapshot(&self) -> Option<&Trusted<Snapshot>> {
        self.snapshot.as_ref()
    }

    /// The trusted top-level targets, if any.
    pub fn targets(&self) -> Option<&Trusted<Targets>> {
        self.targets.as_ref()
    }

    /// The trusted targets role of that name: `targets` or a delegated role loaded so far.
    pub fn targets_role(&self, name: &str) -> Option<&Trusted<Targets>> {
        if name == "targets" {
            self.targets.as_ref()
        } else {
            self.delegated.get(name).map(|e| &e.role)
        }
    }

    /// Delegated roles loaded so far, with the role that delegated to each.
    pub fn delegated_roles(
        &self,
    ) -> impl Iterator<Item = (&RoleName, &RoleName, &Trusted<Targets>)> {
        self.delegated.iter().map(|(n, e)| (n, &e.parent, &e.role))
    }

    /// True when the repository uses consistent snapshots (versioned file names).
    pub fn consistent_snapshot(&self) -> bool {
        self.root.signed().consistent_snapshot.unwrap_or(false)
    }

    /// Root versions accepted by this update so far.
    pub fn root_rotations(&self) -> u32 {
        self.rotations
    }

    /// The file name of the next root version to look for: `N+1.root.json`.
    pub fn next_root_file(&self) -> String {
        format!("{}.root.json", self.root.version().next().get())
    }

    /// Accepts `N+1.root.json` (5.3.4–5.3.9).
    ///
    /// Checks, in order: the rotation cap; the size cap; signatures by a threshold of the
    /// trusted root's root keys; version exactly `N+1`; signatures by a threshold of the new
    /// root's own root keys. Expiry is not checked here: intermediate roots may be expired.
    /// When the new root changes the keys or threshold of timestamp or snapshot, trusted
    /// timestamp and snapshot metadata are dropped so that their versions can restart.
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<(), UpdateError> {
        let role = "root";
        if self.rotations >= self.limits.max_root_rotations {
            return Err(UpdateError::MaxRootRotations {
                limit: self.limits.max_root_rotations,
            });
        }
        check_size(role, bytes, self.limits.root_max_bytes)?;
        let md = Metadata::<Root>::from_bytes(bytes)?;
        self.root
            .signed()
            .verify_role(TopLevelRole::Root, &md)
            .map_err(|e| UpdateError::from_signature(e, role))?;
        let trusted = self.root.version().get();
        let got = md.version().get();
        if got <= trusted {
            return Err(UpdateError::RollbackAttempt {
                role: role.to_owned(),
                trusted,
                got,
            });
        }
        if got != trusted + 1 {
            return Err(UpdateError::VersionMismatch {
                role: role.to_owned(),
                expected: trusted + 1,
                got,
            });
        }
        md.signed()
            .verify_role(TopLevelRole::Root, &md)
            .map_err(|e| UpdateError::from_signature(e, role))?;

        let old = self.root.signed();
        let new = md.signed();
        let ts_rotated = signing_keys(old, TopLevelRole::Timestamp)
            != signing_keys(new, TopLevelRole::Timestamp);
        let sn_rotated =
            signing_keys(old, TopLevelRole::Snapshot) != signing_keys(new, TopLevelRole::Snapshot);
        let tg_rotated =
            signing_keys(old, TopLevelRole::Targets) != signing_keys(new, TopLevelRole::Targets);
        self.timestamp_keys_rotated |= ts_rotated;
        self.snapshot_keys_rotated |= sn_rotated;
        if ts_rotated || sn_rotated {
            self.timestamp = None;
            self.snapshot = None;
        }
        if ts_rotated || sn_rotated || tg_rotated {
            self.targets = None;
            self.delegated.clear();
        }
        self.root = Trusted {
            md,
            bytes: bytes.to_vec(),
        };
        self.rotations += 1;
        Ok(())
    }

    /// The freeze check on the final root (5.3.10): an expired root stops the update.
    pub fn check_root_expiry(&self) -> Result<(), UpdateError> {
        check_expiry("root", &self.root.md, self.now, self.expiry)
    }

    /// Accepts timestamp metadata (5.4).
    ///
    /// [`Origin::Remote`]: the final root must not be expired; signatures by a threshold of
    /// root's timestamp keys; against a trusted timestamp, the version must not be lower (an
    /// equal version keeps the trusted copy, which must itself not be expired) and the
    /// snapshot version it names must not be lower; the new timestamp must not be expired.
    ///
    /// [`Origin::Cache`]: signatures only; refused with [`UpdateError::KeysRotated`] when this
    /// update's root walk rotated the timestamp or snapshot keys.
    pub fn update_timestamp(
        &mut self,
        bytes: &[u8],
        origin: Origin,
    ) -> Result<TimestampUpdate, UpdateError> {
        let role = "timestamp";
        // A fast-forwarded snapshot version is also pinned by the timestamp that names it,
        // so rotating either role's keys discards the cached timestamp (5.3.11).
        if origin == Origin::Cache && (self.timestamp_keys_rotated || self.snapshot_keys_rotated) {
            return Err(UpdateError::KeysRotated {
                role: role.to_owned(),
            });
        }
        if origin == Origin::Remote {
            self.check_root_expiry()?;
        }
        check_size(role, bytes, self.limits.timestamp_max_bytes)?;
        let md = Metadata::<TimestampRole>::from_bytes(bytes)?;
        self.root
            .signed()
            .verify_role(TopLevelRole::Timestamp, &md)
            .map_err(|e| UpdateError::from_signature(e, role))?;
        if let Some(trusted) = &self.timestamp {
            let (t, g) = (trusted.version().get(), md.version().get());
            if g < t {
                return Err(UpdateError::RollbackAttempt {
                    role: role.to_owned(),
                    trusted: t,
                    got: g,
                });
            }
            if g == t {
                if origin == Origin::Remote {
                    check_expiry(role, &trusted.md, self.now, self.expiry)?;
                }
                return Ok(TimestampUpdate::Unchanged);
            }
            let (ts, gs) = (
                trusted.signed().snapshot.version.get(),
                md.signed().snapshot.version.get(),
            );
            if gs < ts {
                return Err(UpdateError::RollbackAttempt {
                    role: "snapshot".to_owned(),
                    trusted: ts,
                    got: gs,
                });
            }
        }
        if origin == Origin::Remote {
            check_expiry(role, &md, self.now, self.expiry)?;
        }
        self.timestamp = Some(Trusted {
            md,
            bytes: bytes.to_vec(),
        });
        Ok(TimestampUpdate::Updated)
    }

    fn trusted_timestamp(&self, for_role: &str) -> Result<&Trusted<TimestampRole>, UpdateError> {
        self.timestamp
            .as_ref()
            .ok_or_else(|| UpdateError::OutOfOrder {
                role: for_role.to_owned(),
                needs: "timestamp".to_owned(),
            })
    }

    /// What to fetch for snapshot: the version timestamp names and its length (or the cap).
    pub fn snapshot_request(&self) -> Result<MetaRequest, UpdateError> {
        let ts = self.trusted_timestamp("snapshot")?;
        let meta = &ts.signed().snapshot;
        Ok(self.request(
            TopLevelRole::Snapshot.name(),
            meta,
            self.limits.snapshot_max_bytes,
        ))
    }

    fn request(&self, role: RoleName, meta: &MetaFile, cap: u64) -> MetaRequest {
        let encoded = role.url_encoded();
        let file_name = if self.consistent_snapshot() {
            format!("{}.{encoded}.json", meta.version.get())
        } else {
            format!("{encoded}.json")
        };
        MetaRequest {
            role,
            version: meta.version,
            max_len: meta.length.unwrap_or(cap),
            file_name,
        }
    }

    /// Accepts snapshot metadata (5.5).
    ///
    /// [`Origin::Remote`]: the trusted timestamp must not be expired; length and hashes as
    /// timestamp gives them (else the size cap); signatures by a threshold of root's
    /// snapshot keys; against a trusted snapshot, version not lower and every targets role it
    /// lists still listed with a version not lower; not expired; version equal to the one
    /// timestamp names. Trusted targets metadata is dropped: it must be re-checked against the
    /// new snapshot.
    ///
    /// [`Origin::Cache`]: the size cap and signatures only, to serve as the rollback baseline;
    /// refused with [`UpdateError::KeysRotated`] when the root walk rotated the timestamp or
    /// snapshot keys.
    pub fn update_snapshot(&mut self, bytes: &[u8], origin: Origin) -> Result<(), UpdateError> {
        let role = "snapshot";
        match origin {
            Origin::Cache => {
                if self.timestamp_keys_rotated || self.snapshot_keys_rotated {
                    return Err(UpdateError::KeysRotated {
                        role: role.to_owned(),
                    });
                }
                check_size(role, bytes, self.limits.snapshot_max_bytes)?;
            }
            Origin::Remote => {
                let ts = self.trusted_timestamp(role)?;
                check_expiry("timestamp", &ts.md, self.now, self.expiry)?;
                check_meta(
                    role,
                    bytes,
                    &ts.signed().snapshot,
                    self.limits.snapshot_max_bytes,
                )?;
            }
        }
        let md = Metadata::<Snapshot>::from_bytes(bytes)?;
        self.root
            .signed()
            .verify_role(TopLevelRole::Snapshot, &md)
            .map_err(|e| UpdateError::from_signature(e, role))?;
        if origin == Origin::Remote {
            if let Some(trusted) = &self.snapshot {
                let (t, g) = (trusted.version().get(), md.version().get());
                if g < t {
                    return Err(UpdateError::RollbackAttempt {
                        role: role.to_owned(),
                        trusted: t,
                        got: g,
                    });
                }
                for (name, old) in &trusted.signed().meta {
                    let Some(new) = md.signed().meta.get(name) else {
                        return Err(UpdateError::RoleDropped { role: name.clone() });
                    };
                    if new.version < old.version {
                        return Err(UpdateError::RollbackAttempt {
                            role: name.trim_end_matches(".json").to_owned(),
                            trusted: old.version.get(),
                            got: new.version.get(),
                        });
                    }
                }
            }
            check_expiry(role, &md, self.now, self.expiry)?;
            let expected = self
                .trusted_timestamp(role)?
                .signed()
                .snapshot
                .version
                .get();
            if md.version().get() != expected {
                return Err(UpdateError::VersionMismatch {
                    role: role.to_owned(),
                    expected,
                    got: md.version().get(),
                });
            }
        }
        self.snapshot = Some(Trusted {
            md,
            bytes: bytes.to_vec(),
        });
        self.targets = None;
        self.delegated.clear();
        Ok(())
    }

    /// Checks that the trusted snapshot is the one to use for targets (5.5.6–5.5.7): the
    /// trusted timestamp is not expired, the snapshot is not expired, and it is the version
    /// (and, when timestamp gives them, the length and hashes) that timestamp names.
    ///
    /// A snapshot read back from the cache passes when the repository has not moved on, and
    /// then need not be fetched again.
    pub fn check_final_snapshot(&self) -> Result<(), UpdateError> {
        let role = "snapshot";
        let ts = self.trusted_timestamp(role)?;
        check_expiry("timestamp", &ts.md, self.now, self.expiry)?;
        let sn = self
            .snapshot
            .as_ref()
            .ok_or_else(|| UpdateError::OutOfOrder {
                role: "targets".to_owned(),
                needs: role.to_owned(),
            })?;
        check_expiry(role, &sn.md, self.now, self.expiry)?;
        let meta = &ts.signed().snapshot;
        if sn.version() != meta.version {
            return Err(UpdateError::VersionMismatch {
                role: role.to_owned(),
                expected: meta.version.get(),
                got: sn.version().get(),
            });
        }
        check_meta(role, &sn.bytes, meta, self.limits.snapshot_max_bytes)
    }

    /// What to fetch for a targets role (`targets` or delegated): the version snapshot names
    /// and its length (or the cap).
    pub fn targets_request(&self, role: &RoleName) -> Result<MetaRequest, UpdateError> {
        let meta = self.snapshot_meta(role.as_str())?;
        Ok(self.request(role.clone(), meta, self.limits.targets_max_bytes))
    }

    fn snapshot_meta(&self, role: &str) -> Result<&MetaFile, UpdateError> {
        let sn = self
            .snapshot
            .as_ref()
            .ok_or_else(|| UpdateError::OutOfOrder {
                role: role.to_owned(),
                needs: "snapshot".to_owned(),
            })?;
        sn.signed()
            .meta
            .get(&Snapshot::meta_name(role))
            .ok_or_else(|| UpdateError::NotInSnapshot {
                role: role.to_owned(),
            })
    }

    /// Accepts top-level targets metadata (5.6): the snapshot must be final
    /// ([`TrustedSet::check_final_snapshot`]); length, hashes and version as snapshot gives
    /// them; signatures by a threshold of root's targets keys; not expired.
    pub fn update_targets(&mut self, bytes: &[u8]) -> Result<(), UpdateError> {
        let role = TopLevelRole::Targets.name();
        let md = self.check_targets(&role, bytes, |this, md| {
            this.root
                .signed()
                .verify_role(TopLevelRole::Targets, md)
                .map(|_| ())
                .map_err(|e| UpdateError::from_signature(e, "root"))
        })?;
        self.targets = Some(Trusted {
            md,
            bytes: bytes.to_vec(),
        });
        self.delegated.clear();
        Ok(())
    }

    /// Accepts metadata of delegated role `role`, delegated to by the trusted targets role
    /// `parent` (5.6.7): as for targets, with signatures by a threshold of the keys `parent`
    /// delegates to `role`.
    pub fn update_delegated(
        &mut self,
        role: &RoleName,
        parent: &RoleName,
        bytes: &[u8],
    ) -> Result<(), UpdateError> {
        if role.top_level().is_some() {
            return Err(UpdateError::NotDelegated {
                role: role.to_string(),
                parent: parent.to_string(),
            });
        }
        let md = self.check_targets(role, bytes, |this, md| {
            this.verify_delegation_md(role, parent, md)
        })?;
        self.delegated.insert(
            role.clone(),
            DelegatedEntry {
                parent: parent.clone(),
                role: Trusted {
                    md,
                    bytes: bytes.to_vec(),
                },
            },
        );
        Ok(())
    }

    fn verify_delegation_md(
        &self,
        role: &RoleName,
        parent: &RoleName,
        md: &Metadata<Targets>,
    ) -> Result<(), UpdateError> {
        let p = self
            .targets_role(parent.as_str())
            .ok_or_else(|| UpdateError::OutOfOrder {
                role: role.to_string(),
                needs: parent.to_string(),
            })?;
        p.signed()
            .verify_delegate(role.as_str(), md)
            .map(|_| ())
            .map_err(|e| UpdateError::from_signature(e, parent.as_str()))
    }

    /// Checks that the already trusted delegated role `role` is also signed by a threshold of
    /// the keys `parent` delegates to it (a role reached through a second delegating role).
    pub fn verify_delegation(&self, role: &RoleName, parent: &RoleName) -> Result<(), UpdateError> {
        let entry = self
            .delegated
            .get(role.as_str())
            .ok_or_else(|| UpdateError::OutOfOrder {
                role: role.to_string(),
                needs: role.to_string(),
            })?;
        if &entry.parent == parent {
            return Ok(());
        }
        self.verify_delegation_md(role, parent, &entry.role.md)
    }

    /// The role that delegated to the loaded delegated role `role`.
    pub fn delegating_role(&self, role: &str) -> Option<&RoleName> {
        self.delegated.get(role).map(|e| &e.parent)
    }

    fn check_targets(
        &self,
        role: &RoleName,
        bytes: &[u8],
        verify: impl Fn(&Self, &Metadata<Targets>) -> Result<(), UpdateError>,
    ) -> Result<Metadata<Targets>, UpdateError> {
        let name = role.as_str();
        self.check_final_snapshot().map_err(|e| match e {
            UpdateError::OutOfOrder { needs, .. } => UpdateError::OutOfOrder {
                role: name.to_owned(),
                needs,
            },
            other => other,
        })?;
        let meta = self.snapshot_meta(name)?;
        check_meta(name, bytes, meta, self.limits.targets_max_bytes)?;
        let md = Metadata::<Targets>::from_bytes_as(name, bytes)?;
        verify(self, &md)?;
        if md.version() != meta.version {
            return Err(UpdateError::VersionMismatch {
                role: name.to_owned(),
                expected: meta.version.get(),
                got: md.version().get(),
            });
        }
        check_expiry(name, &md, self.now, self.expiry)?;
        Ok(md)
    }

    /// Every trusted file, by role name: what a persistent cache should hold.
    pub fn files(&self) -> BTreeMap<RoleName, &[u8]> {
        let mut out = BTreeMap::new();
        out.insert(TopLevelRole::Root.name(), self.root.bytes());
        if let Some(t) = &self.timestamp {
            out.insert(TopLevelRole::Timestamp.name(), t.bytes());
        }
        if let Some(s) = &self.snapshot {
            out.insert(TopLevelRole::Snapshot.name(), s.bytes());
        }
        if let Some(t) = &self.targets {
            out.insert(TopLevelRole::Targets.name(), t.bytes());
        }
        for (n, e) in &self.delegated {
            out.insert(n.clone(), e.role.bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_repo::*;
    use vouch_tuf::types::{Threshold, Version};

    fn set_at(repo: &Repo, now: Timestamp) -> TrustedSet {
        TrustedSet::new(&repo.root_bytes(1), now, Limits::DEFAULT).unwrap()
    }

    /// Runs the top-level update over the repo's files.
    fn full(repo: &Repo) -> TrustedSet {
        let mut s = set_at(repo, NOW);
        top_level(&mut s, repo).unwrap();
        s
    }

    fn top_level(s: &mut TrustedSet, repo: &Repo) -> Result<(), UpdateError> {
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)?;
        let req = s.snapshot_request()?;
        s.update_snapshot(&repo.file(&req.file_name), Origin::Remote)?;
        let req = s.targets_request(&rn("targets"))?;
        s.update_targets(&repo.file(&req.file_name))
    }

    /// A set built for editing, at `now`.
    fn editing_at(repo: &Repo, now: Timestamp) -> TrustedSet {
        TrustedSet::with_expiry(
            &repo.root_bytes(1),
            now,
            Limits::DEFAULT,
            Expiry::IgnoreForEditing,
        )
        .unwrap()
    }

    /// Past the expiry of everything `Repo::new` signs (a year after `NOW`).
    const LATER: Timestamp = NOW.add_seconds(400 * DAY);

    /// A way to build the set a check is run against: a mode, and the time it runs at.
    struct Mode {
        name: &'static str,
        expiry: Expiry,
        now: Timestamp,
    }

    impl Mode {
        /// A set in this mode, at this mode's time, trusting `repo`'s first root.
        fn set(&self, repo: &Repo) -> TrustedSet {
            TrustedSet::with_expiry(&repo.root_bytes(1), self.now, Limits::DEFAULT, self.expiry)
                .unwrap()
        }
    }

    /// Every mode a set can be built in, each at a time it accepts the repository at: enforcing
    /// expiry before anything expires, and for editing after everything has. A check that
    /// is not about expiry is one test body run under each of them ([`in_every_mode`]), so
    /// it cannot hold in one mode and be forgotten in the other.
    const MODES: [Mode; 2] = [
        Mode {
            name: "enforcing expiry",
            expiry: Expiry::Enforce,
            now: NOW,
        },
        Mode {
            name: "for editing, everything expired",
            expiry: Expiry::IgnoreForEditing,
            now: LATER,
        },
    ];

    /// Runs `check` once under each of [`MODES`], naming the mode if it panics.
    fn in_every_mode(check: impl Fn(&Mode)) {
        for mode in &MODES {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(mode)));
            if let Err(panic) = outcome {
                eprintln!("the check failed in the mode {}", mode.name);
                std::panic::resume_unwind(panic);
            }
        }
    }

    #[test]
    fn the_modes_cover_every_expiry_choice() {
        // A new `Expiry` variant fails to compile here until it is given a mode in `MODES`.
        for mode in &MODES {
            match mode.expiry {
                Expiry::Enforce | Expiry::IgnoreForEditing => {}
            }
        }
        for expiry in [Expiry::Enforce, Expiry::IgnoreForEditing] {
            assert!(MODES.iter().any(|m| m.expiry == expiry), "{expiry:?}");
        }
    }

    #[test]
    fn expired_metadata_is_accepted_only_by_a_set_built_for_editing() {
        let mut repo = Repo::new();
        repo.delegate("targets", "releases", &["v*"], false);
        repo.publish_delegated_as_is("releases");
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        let enforcing = set_at(&repo, LATER);
        assert_eq!(enforcing.expiry(), Expiry::Enforce);
        assert!(matches!(
            enforcing.check_root_expiry(),
            Err(UpdateError::Expired { ref role, .. }) if role == "root"
        ));
        let mut late = set_at(&repo, LATER);
        assert!(matches!(
            late.update_timestamp(&repo.file("timestamp.json"), Origin::Remote),
            Err(UpdateError::Expired { ref role, .. }) if role == "root"
        ));

        let mut e = editing_at(&repo, LATER);
        assert_eq!(e.expiry(), Expiry::IgnoreForEditing);
        e.check_root_expiry().unwrap();
        top_level(&mut e, &repo).unwrap();
        e.update_delegated(
            &rn("releases"),
            &rn("targets"),
            &repo.file("1.releases.json"),
        )
        .unwrap();
        e.check_final_snapshot().unwrap();
        let expired: Vec<String> = e.expired().iter().map(|(r, _)| r.to_string()).collect();
        assert_eq!(
            expired,
            ["root", "timestamp", "snapshot", "targets", "releases"]
        );
        assert!(e
            .expired()
            .iter()
            .all(|(_, at)| *at == NOW.add_seconds(365 * DAY)));
        // Before the expiry nothing is listed.
        let mut fresh = editing_at(&repo, NOW);
        top_level(&mut fresh, &repo).unwrap();
        assert!(fresh.expired().is_empty());
    }

    #[test]
    fn every_signature_check_applies_in_every_mode() {
        in_every_mode(|mode| {
            let mut repo = Repo::new();
            // A timestamp signed by a key root does not list.
            let mut bad = Repo::new();
            bad.root = repo.root.clone();
            bad.timestamp_keys = vec![key()];
            bad.timestamp.common.version = Version::new(2).unwrap();
            let forged = bad.publish_timestamp_as_is();
            let mut e = mode.set(&repo);
            assert!(matches!(
                e.update_timestamp(&forged, Origin::Remote),
                Err(UpdateError::ThresholdNotMet { ref role, valid: 0, needed: 1 }) if role == "timestamp"
            ));
            // Targets below its threshold.
            repo.targets_keys = vec![key()];
            repo.publish_targets();
            repo.publish_snapshot_and_timestamp();
            let mut e = mode.set(&repo);
            e.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
                .unwrap();
            e.update_snapshot(&repo.file("2.snapshot.json"), Origin::Remote)
                .unwrap();
            assert!(matches!(
                e.update_targets(&repo.file("2.targets.json")),
                Err(UpdateError::ThresholdNotMet { ref role, .. }) if role == "targets"
            ));
            // A root signed by the new key alone, not by the trusted root's.
            let mut repo = Repo::new();
            let old = repo.root_keys.remove(0);
            let new = key();
            repo.root
                .remove_key(TopLevelRole::Root, &pubkey(&old).key_id());
            repo.root.add_key(TopLevelRole::Root, pubkey(&new));
            repo.root_keys = vec![new];
            let only_new = repo.publish_root();
            let mut e = mode.set(&repo);
            assert!(matches!(
                e.update_root(&only_new),
                Err(UpdateError::ThresholdNotMet { ref role, .. }) if role == "root"
            ));
            // A delegated role signed by a key its parent does not delegate to.
            let mut repo = Repo::new();
            repo.delegate("targets", "releases", &["v*"], false);
            repo.publish_delegated_as_is("releases");
            repo.publish_targets();
            repo.publish_snapshot_and_timestamp();
            let mut e = mode.set(&repo);
            top_level(&mut e, &repo).unwrap();
            repo.delegated.get_mut("releases").unwrap().keys = vec![key()];
            let forged = repo.publish_delegated_as_is("releases");
            assert!(matches!(
                e.update_delegated(&rn("releases"), &rn("targets"), &forged),
                Err(UpdateError::ThresholdNotMet { ref role, .. }) if role == "releases"
            ));
        });
    }

    #[test]
    fn every_rollback_check_applies_in_every_mode() {
        in_every_mode(|mode| {
            // Timestamp version going back against the cached one.
            let mut repo = Repo::new();
            repo.publish_timestamp();
            let v2 = repo.file("timestamp.json");
            repo.timestamp.common.version = Version::ONE;
            let v1 = repo.publish_timestamp_as_is();
            let mut e = mode.set(&repo);
            e.update_timestamp(&v2, Origin::Cache).unwrap();
            assert_eq!(
                e.update_timestamp(&v1, Origin::Remote),
                Err(UpdateError::RollbackAttempt {
                    role: "timestamp".into(),
                    trusted: 2,
                    got: 1
                })
            );
            // Root versions: an old root offered as the next one.
            let mut e = mode.set(&repo);
            assert!(matches!(
                e.update_root(&repo.root_bytes(1)),
                Err(UpdateError::RollbackAttempt {
                    trusted: 1,
                    got: 1,
                    ..
                })
            ));
            // Snapshot going back against the cached one.
            let mut repo = Repo::new();
            repo.publish_snapshot_and_timestamp();
            let cached_v2 = repo.file("2.snapshot.json");
            let mut e = mode.set(&repo);
            e.update_snapshot(&cached_v2, Origin::Cache).unwrap();
            repo.timestamp.snapshot =
                MetaFile::for_bytes(Version::ONE, &repo.file("1.snapshot.json"));
            repo.publish_timestamp();
            e.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
                .unwrap();
            assert_eq!(
                e.update_snapshot(&repo.file("1.snapshot.json"), Origin::Remote),
                Err(UpdateError::RollbackAttempt {
                    role: "snapshot".into(),
                    trusted: 2,
                    got: 1
                })
            );
            // A targets role going back in a new snapshot.
            let mut repo = Repo::new();
            repo.publish_targets(); // v2
            repo.publish_snapshot_and_timestamp();
            let mut e = mode.set(&repo);
            top_level(&mut e, &repo).unwrap();
            repo.snapshot
                .meta
                .insert("targets.json".into(), MetaFile::version_only(Version::ONE));
            repo.publish_snapshot_and_timestamp();
            e.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
                .unwrap();
            assert_eq!(
                e.update_snapshot(
                    &repo.file(&e.snapshot_request().unwrap().file_name),
                    Origin::Remote
                ),
                Err(UpdateError::RollbackAttempt {
                    role: "targets".into(),
                    trusted: 2,
                    got: 1
                })
            );
        });
    }

    /// The current snapshot version signed again with another expiry: same version, other
    /// bytes than the ones timestamp names.
    fn resigned_snapshot(repo: &mut Repo) -> Vec<u8> {
        repo.snapshot.set_expires(NOW.add_seconds(10 * DAY));
        Metadata::signed_by(
            repo.snapshot.clone(),
            &[&repo.snapshot_keys[0] as &dyn vouch_tuf::crypto::Signer],
        )
        .unwrap()
        .to_bytes()
    }

    #[test]
    fn every_hash_and_version_check_applies_in_every_mode() {
        in_every_mode(|mode| {
            let mut repo = Repo::new();
            repo.snapshot_hashes = true;
            repo.publish_targets(); // v2, with hashes in snapshot
            repo.publish_snapshot_and_timestamp();
            let mut e = mode.set(&repo);
            e.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
                .unwrap();
            // Snapshot bytes other than the ones timestamp names.
            let other = resigned_snapshot(&mut repo);
            assert!(matches!(
                e.update_snapshot(&other, Origin::Remote),
                Err(UpdateError::LengthOrHashMismatch { ref role, .. }) if role == "snapshot"
            ));
            e.update_snapshot(&repo.file("2.snapshot.json"), Origin::Remote)
                .unwrap();
            // The old targets served under the new name.
            assert!(matches!(
                e.update_targets(&repo.file("1.targets.json")),
                Err(UpdateError::LengthOrHashMismatch { ref role, .. }) if role == "targets"
            ));
            // Without hashes, the version snapshot names.
            let mut repo = Repo::new();
            repo.publish_targets();
            repo.publish_snapshot_and_timestamp();
            let mut e = mode.set(&repo);
            e.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
                .unwrap();
            e.update_snapshot(&repo.file("2.snapshot.json"), Origin::Remote)
                .unwrap();
            assert_eq!(
                e.update_targets(&repo.file("1.targets.json")),
                Err(UpdateError::VersionMismatch {
                    role: "targets".into(),
                    expected: 2,
                    got: 1
                })
            );
        });
    }

    #[test]
    fn accepts_a_valid_repository_in_workflow_order() {
        let repo = Repo::new();
        let s = full(&repo);
        assert_eq!(s.timestamp().unwrap().version().get(), 1);
        assert_eq!(s.snapshot().unwrap().version().get(), 1);
        assert!(s.targets_role("targets").is_some());
        assert_eq!(s.files().len(), 4);
        assert_eq!(s.reference_time(), NOW);
    }

    #[test]
    fn root_must_be_self_signed() {
        let mut repo = Repo::new();
        repo.root_keys = vec![key()];
        let bytes = repo.publish_root();
        assert!(matches!(
            TrustedSet::new(&bytes, NOW, Limits::DEFAULT),
            Err(UpdateError::ThresholdNotMet { ref role, valid: 0, needed: 1 }) if role == "root"
        ));
    }

    #[test]
    fn root_rotation_needs_old_and_new_thresholds() {
        let mut repo = Repo::new();
        let mut s = set_at(&repo, NOW);
        let old = repo.root_keys.remove(0);
        let new = key();
        repo.root
            .remove_key(TopLevelRole::Root, &pubkey(&old).key_id());
        repo.root.add_key(TopLevelRole::Root, pubkey(&new));
        repo.root_keys = vec![new];
        // Signed by the new key only: the trusted root's threshold is not met.
        let only_new = repo.publish_root();
        assert!(matches!(
            s.update_root(&only_new),
            Err(UpdateError::ThresholdNotMet {
                valid: 0,
                needed: 1,
                ..
            })
        ));
        // Signed by the old key only: the new root's own threshold is not met.
        let (new_key, old_key) = (repo.root_keys.remove(0), old);
        repo.root_keys = vec![old_key];
        let only_old = repo.publish_root_as_is();
        assert!(matches!(
            s.update_root(&only_old),
            Err(UpdateError::ThresholdNotMet { .. })
        ));
        // Cross-signed: accepted.
        repo.extra_root_signers = vec![new_key];
        let both = repo.publish_root_as_is();
        s.update_root(&both).unwrap();
        assert_eq!(s.root().version().get(), 2);
        assert_eq!(s.next_root_file(), "3.root.json");
    }

    #[test]
    fn root_version_must_be_exactly_next() {
        let mut repo = Repo::new();
        let mut s = set_at(&repo, NOW);
        let v1 = repo.root_bytes(1);
        assert!(matches!(
            s.update_root(&v1),
            Err(UpdateError::RollbackAttempt {
                trusted: 1,
                got: 1,
                ..
            })
        ));
        repo.root.bump_version();
        let v3 = repo.publish_root();
        assert!(matches!(
            s.update_root(&v3),
            Err(UpdateError::VersionMismatch {
                expected: 2,
                got: 3,
                ..
            })
        ));
    }

    #[test]
    fn root_rotations_are_capped() {
        let mut repo = Repo::new();
        let limits = Limits {
            max_root_rotations: 2,
            ..Limits::DEFAULT
        };
        let mut s = TrustedSet::new(&repo.root_bytes(1), NOW, limits).unwrap();
        for _ in 0..3 {
            repo.publish_root();
        }
        s.update_root(&repo.root_bytes(2)).unwrap();
        s.update_root(&repo.root_bytes(3)).unwrap();
        assert_eq!(
            s.update_root(&repo.root_bytes(4)),
            Err(UpdateError::MaxRootRotations { limit: 2 })
        );
    }

    #[test]
    fn oversized_metadata_is_refused_before_parsing() {
        let repo = Repo::new();
        let limits = Limits {
            timestamp_max_bytes: 10,
            ..Limits::DEFAULT
        };
        let mut s = TrustedSet::new(&repo.root_bytes(1), NOW, limits).unwrap();
        assert!(matches!(
            s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote),
            Err(UpdateError::TooLarge { limit: 10, .. })
        ));
    }

    #[test]
    fn expired_final_root_freezes_the_update() {
        let repo = Repo::new();
        let mut s = set_at(&repo, NOW.add_seconds(366 * DAY));
        assert!(
            matches!(s.check_root_expiry(), Err(UpdateError::Expired { ref role, .. }) if role == "root")
        );
        assert!(matches!(
            s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote),
            Err(UpdateError::Expired { ref role, .. }) if role == "root"
        ));
    }

    #[test]
    fn expiry_is_exclusive_at_the_reference_time() {
        let mut repo = Repo::new();
        repo.timestamp.set_expires(NOW);
        repo.publish_timestamp();
        let mut s = set_at(&repo, NOW);
        assert!(matches!(
            s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote),
            Err(UpdateError::Expired { ref role, at }) if role == "timestamp" && at == NOW
        ));
        let mut s = set_at(&repo, NOW.add_seconds(-1));
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
    }

    #[test]
    fn timestamp_checks() {
        let mut repo = Repo::new();
        repo.publish_timestamp();
        let v2 = repo.file("timestamp.json");
        repo.timestamp.common.version = vouch_tuf::types::Version::ONE;
        let v1 = repo.publish_timestamp_as_is();
        let mut s = set_at(&repo, NOW);
        s.update_timestamp(&v2, Origin::Cache).unwrap();
        assert_eq!(
            s.update_timestamp(&v1, Origin::Remote),
            Err(UpdateError::RollbackAttempt {
                role: "timestamp".into(),
                trusted: 2,
                got: 1
            })
        );
        assert_eq!(
            s.update_timestamp(&v2, Origin::Remote),
            Ok(TimestampUpdate::Unchanged)
        );

        // Wrong key.
        let mut bad = Repo::new();
        bad.root = repo.root.clone();
        bad.timestamp_keys = vec![key()];
        bad.timestamp.common.version = vouch_tuf::types::Version::new(3).unwrap();
        let forged = bad.publish_timestamp_as_is();
        assert!(matches!(
            s.update_timestamp(&forged, Origin::Remote),
            Err(UpdateError::ThresholdNotMet { ref role, valid: 0, needed: 1 }) if role == "timestamp"
        ));
    }

    #[test]
    fn timestamp_may_not_name_an_older_snapshot() {
        let mut repo = Repo::new();
        repo.publish_snapshot_and_timestamp(); // ts v2 -> snapshot v2
        let mut s = set_at(&repo, NOW);
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        repo.timestamp.snapshot = MetaFile::version_only(vouch_tuf::types::Version::ONE);
        repo.publish_timestamp();
        assert_eq!(
            s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote),
            Err(UpdateError::RollbackAttempt {
                role: "snapshot".into(),
                trusted: 2,
                got: 1
            })
        );
    }

    #[test]
    fn equal_timestamp_version_keeps_trusted_copy_but_checks_its_expiry() {
        let mut repo = Repo::new();
        repo.timestamp.set_expires(NOW.add_seconds(DAY));
        repo.publish_timestamp();
        let mut s = set_at(&repo, NOW.add_seconds(2 * DAY));
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Cache)
            .unwrap();
        assert!(matches!(
            s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote),
            Err(UpdateError::Expired { ref role, .. }) if role == "timestamp"
        ));
    }

    #[test]
    fn snapshot_needs_timestamp_first() {
        let repo = Repo::new();
        let mut s = set_at(&repo, NOW);
        assert!(matches!(
            s.update_snapshot(&repo.file("1.snapshot.json"), Origin::Remote),
            Err(UpdateError::OutOfOrder { ref needs, .. }) if needs == "timestamp"
        ));
        assert!(matches!(
            s.snapshot_request(),
            Err(UpdateError::OutOfOrder { .. })
        ));
    }

    #[test]
    fn snapshot_must_match_timestamp_hash_and_version() {
        let mut repo = Repo::new();
        let mut s = set_at(&repo, NOW);
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        // Same version, different bytes (re-signed with another expiry).
        let other = resigned_snapshot(&mut repo);
        assert!(matches!(
            s.update_snapshot(&other, Origin::Remote),
            Err(UpdateError::LengthOrHashMismatch { ref role, .. }) if role == "snapshot"
        ));
        assert_eq!(s.snapshot_request().unwrap().file_name, "1.snapshot.json");
    }

    #[test]
    fn snapshot_version_must_equal_the_one_timestamp_names() {
        let mut repo = Repo::new();
        repo.publish_snapshot(); // v2
        repo.timestamp.snapshot = MetaFile::version_only(vouch_tuf::types::Version::ONE);
        repo.publish_timestamp();
        let mut s = set_at(&repo, NOW);
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        assert_eq!(
            s.update_snapshot(&repo.file("2.snapshot.json"), Origin::Remote),
            Err(UpdateError::VersionMismatch {
                role: "snapshot".into(),
                expected: 1,
                got: 2
            })
        );
    }

    #[test]
    fn snapshot_may_not_drop_or_roll_back_targets_roles() {
        let mut repo = Repo::new();
        repo.delegate("targets", "releases", &["v*"], false);
        repo.publish_delegated("releases"); // v2
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        let mut s = full(&repo);
        // releases back to version 1
        repo.snapshot.meta.insert(
            "releases.json".into(),
            MetaFile::version_only(vouch_tuf::types::Version::ONE),
        );
        repo.publish_snapshot_and_timestamp();
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        assert_eq!(
            s.update_snapshot(
                &repo.file(&s.snapshot_request().unwrap().file_name),
                Origin::Remote
            ),
            Err(UpdateError::RollbackAttempt {
                role: "releases".into(),
                trusted: 2,
                got: 1
            })
        );
        // releases gone
        repo.snapshot.meta.remove("releases.json");
        repo.publish_snapshot_and_timestamp();
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        assert_eq!(
            s.update_snapshot(
                &repo.file(&s.snapshot_request().unwrap().file_name),
                Origin::Remote
            ),
            Err(UpdateError::RoleDropped {
                role: "releases.json".into()
            })
        );
    }

    #[test]
    fn snapshot_version_may_not_go_back_against_the_cached_one() {
        let mut repo = Repo::new();
        repo.publish_snapshot_and_timestamp();
        let cached_v2 = repo.file("2.snapshot.json");
        let mut s = set_at(&repo, NOW);
        s.update_snapshot(&cached_v2, Origin::Cache).unwrap();
        repo.timestamp.snapshot = MetaFile::for_bytes(
            vouch_tuf::types::Version::ONE,
            &repo.file("1.snapshot.json"),
        );
        repo.publish_timestamp();
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        assert_eq!(
            s.update_snapshot(&repo.file("1.snapshot.json"), Origin::Remote),
            Err(UpdateError::RollbackAttempt {
                role: "snapshot".into(),
                trusted: 2,
                got: 1
            })
        );
    }

    #[test]
    fn expired_snapshot_is_refused() {
        let mut repo = Repo::new();
        repo.snapshot.set_expires(NOW.add_seconds(-1));
        repo.publish_snapshot_and_timestamp();
        let mut s = set_at(&repo, NOW);
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        assert!(matches!(
            s.update_snapshot(&repo.file("2.snapshot.json"), Origin::Remote),
            Err(UpdateError::Expired { ref role, .. }) if role == "snapshot"
        ));
    }

    #[test]
    fn targets_checks() {
        let mut repo = Repo::new();
        repo.snapshot_hashes = true;
        repo.publish_targets(); // v2, with hashes in snapshot
        repo.publish_snapshot_and_timestamp();
        let mut s = set_at(&repo, NOW);
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        s.update_snapshot(&repo.file("2.snapshot.json"), Origin::Remote)
            .unwrap();
        // The old version, served under the new name.
        assert!(matches!(
            s.update_targets(&repo.file("1.targets.json")),
            Err(UpdateError::LengthOrHashMismatch { ref role, .. }) if role == "targets"
        ));
        s.update_targets(&repo.file("2.targets.json")).unwrap();

        // Without hashes in snapshot, the version check catches it.
        let mut repo = Repo::new();
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        let mut s = set_at(&repo, NOW);
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        s.update_snapshot(&repo.file("2.snapshot.json"), Origin::Remote)
            .unwrap();
        assert_eq!(
            s.update_targets(&repo.file("1.targets.json")),
            Err(UpdateError::VersionMismatch {
                role: "targets".into(),
                expected: 2,
                got: 1
            })
        );
    }

    /// Snapshot's hashes for targets are checked by the shared rule
    /// (`vouch_tuf::metadata::hashes`); the server's
    /// `validate::tests::client_snapshot_hashes_follow_the_clients_rule` runs the same cases
    /// against an upload and must reach the same verdicts.
    #[test]
    fn snapshot_hashes_for_targets_follow_the_shared_rule() {
        use vouch_tuf::metadata::hashes::hex_digest;
        use vouch_tuf::metadata::Mismatch;

        let outcome = |hashes: &dyn Fn(&[u8]) -> BTreeMap<String, String>| {
            let mut repo = Repo::new();
            repo.publish_targets(); // v2, version only in snapshot
            let tb = repo.file("2.targets.json");
            repo.snapshot.meta.get_mut("targets.json").unwrap().hashes = Some(hashes(&tb));
            repo.publish_snapshot_and_timestamp();
            let mut s = set_at(&repo, NOW);
            s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
                .unwrap();
            s.update_snapshot(&repo.file("2.snapshot.json"), Origin::Remote)
                .unwrap();
            s.update_targets(&tb).map_err(|e| match e {
                UpdateError::LengthOrHashMismatch { role, mismatch } if role == "targets" => {
                    mismatch
                }
                other => panic!("unexpected {other:?}"),
            })
        };
        let of = |alg: &str, b: &[u8]| (alg.to_owned(), hex_digest(alg, b).unwrap());
        for alg in ["sha256", "sha384", "sha512"] {
            assert_eq!(outcome(&|b| BTreeMap::from([of(alg, b)])), Ok(()), "{alg}");
        }
        assert!(matches!(
            outcome(&|_| BTreeMap::from([("md5".to_owned(), "00".repeat(16))])),
            Err(Mismatch::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            outcome(&|b| BTreeMap::from([of("sha256", b), ("blake2b".into(), "00".repeat(64))])),
            Err(Mismatch::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            outcome(&|b| {
                let (alg, hex) = of("sha256", b);
                BTreeMap::from([(alg, hex.to_ascii_uppercase())])
            }),
            Err(Mismatch::MalformedHash { .. })
        ));
        assert!(matches!(
            outcome(&|b| BTreeMap::from([of("sha256", b), of("sha512", b"other bytes")])),
            Err(Mismatch::Hash { .. })
        ));
    }

    #[test]
    fn targets_need_a_final_snapshot() {
        let mut repo = Repo::new();
        let mut s = set_at(&repo, NOW);
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        assert!(matches!(
            s.update_targets(&repo.file("1.targets.json")),
            Err(UpdateError::OutOfOrder { ref role, ref needs }) if role == "targets" && needs == "snapshot"
        ));
        // A cached snapshot that timestamp no longer names cannot vouch for targets.
        let old = repo.file("1.snapshot.json");
        repo.publish_snapshot_and_timestamp();
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        s.update_snapshot(&old, Origin::Cache).unwrap();
        assert!(matches!(
            s.update_targets(&repo.file("1.targets.json")),
            Err(UpdateError::VersionMismatch { ref role, .. }) if role == "snapshot"
        ));
    }

    #[test]
    fn targets_threshold_and_expiry() {
        let mut repo = Repo::new();
        repo.targets_keys = vec![key()];
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        let mut s = set_at(&repo, NOW);
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        s.update_snapshot(&repo.file("2.snapshot.json"), Origin::Remote)
            .unwrap();
        assert!(matches!(
            s.update_targets(&repo.file("2.targets.json")),
            Err(UpdateError::ThresholdNotMet { ref role, .. }) if role == "targets"
        ));

        let mut repo = Repo::new();
        repo.targets.set_expires(NOW);
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        let mut s = set_at(&repo, NOW);
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        s.update_snapshot(&repo.file("2.snapshot.json"), Origin::Remote)
            .unwrap();
        assert!(matches!(
            s.update_targets(&repo.file("2.targets.json")),
            Err(UpdateError::Expired { ref role, .. }) if role == "targets"
        ));
    }

    #[test]
    fn delegated_roles_need_the_parent_keys_and_a_snapshot_entry() {
        let mut repo = Repo::new();
        repo.delegate("targets", "releases", &["v*"], false);
        repo.publish_delegated_as_is("releases");
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        let mut s = full(&repo);
        let (r, t) = (rn("releases"), rn("targets"));
        assert!(matches!(
            s.update_delegated(&r, &rn("nightly"), &repo.file("1.releases.json")),
            Err(UpdateError::OutOfOrder { .. })
        ));
        // Signed by a key targets does not delegate to.
        repo.delegated.get_mut("releases").unwrap().keys = vec![key()];
        let forged = repo.publish_delegated_as_is("releases");
        assert!(matches!(
            s.update_delegated(&r, &t, &forged),
            Err(UpdateError::ThresholdNotMet { ref role, .. }) if role == "releases"
        ));
        // Not listed in snapshot.
        repo.delegate("targets", "unlisted", &["u*"], false);
        assert!(matches!(
            s.update_delegated(&rn("unlisted"), &t, &forged),
            Err(UpdateError::NotInSnapshot { .. })
        ));
        // Named like a top-level role.
        assert!(matches!(
            s.update_delegated(&rn("snapshot"), &t, &forged),
            Err(UpdateError::NotDelegated { .. })
        ));
    }

    #[test]
    fn rotated_timestamp_keys_discard_the_cached_timestamp_and_snapshot() {
        let mut repo = Repo::new();
        // The cached state: timestamp v1000 (fast-forwarded by a compromised key).
        repo.timestamp.common.version = vouch_tuf::types::Version::new(1000).unwrap();
        let ff = repo.publish_timestamp_as_is();
        let cached_snapshot = repo.file("1.snapshot.json");
        // The repository rotates the timestamp key and restarts at version 1.
        repo.rotate_key(TopLevelRole::Timestamp);
        repo.timestamp.common.version = vouch_tuf::types::Version::ONE;
        repo.publish_timestamp_as_is();

        let mut s = set_at(&repo, NOW);
        s.update_root(&repo.root_bytes(2)).unwrap();
        assert_eq!(
            s.update_timestamp(&ff, Origin::Cache),
            Err(UpdateError::KeysRotated {
                role: "timestamp".into()
            })
        );
        assert_eq!(
            s.update_snapshot(&cached_snapshot, Origin::Cache),
            Err(UpdateError::KeysRotated {
                role: "snapshot".into()
            })
        );
        top_level(&mut s, &repo).unwrap();
        assert_eq!(s.timestamp().unwrap().version().get(), 1);
    }

    #[test]
    fn rotated_snapshot_keys_discard_the_cached_timestamp_too() {
        let mut repo = Repo::new();
        // Cached: a timestamp naming a fast-forwarded snapshot version 1000.
        repo.snapshot.common.version = Version::new(1000).unwrap();
        repo.publish_snapshot_as_is();
        repo.publish_timestamp();
        let cached_ts = repo.file("timestamp.json");
        // Recovery: new snapshot key in root v2, snapshot restarts at 1.
        repo.rotate_key(TopLevelRole::Snapshot);
        repo.snapshot.common.version = Version::ONE;
        repo.publish_snapshot_as_is();
        repo.publish_timestamp();

        let mut s = set_at(&repo, NOW);
        s.update_root(&repo.root_bytes(2)).unwrap();
        assert_eq!(
            s.update_timestamp(&cached_ts, Origin::Cache),
            Err(UpdateError::KeysRotated {
                role: "timestamp".into()
            })
        );
        top_level(&mut s, &repo).unwrap();
        assert_eq!(s.snapshot().unwrap().version().get(), 1);
    }

    #[test]
    fn root_update_after_loading_drops_timestamp_when_keys_rotate() {
        let mut repo = Repo::new();
        let mut s = full(&repo);
        repo.root
            .set_threshold(TopLevelRole::Snapshot, Threshold::ONE);
        repo.root.add_key(TopLevelRole::Snapshot, pubkey(&key()));
        repo.publish_root();
        s.update_root(&repo.root_bytes(2)).unwrap();
        assert!(s.timestamp().is_none());
        assert!(s.snapshot().is_none());
        assert!(s.targets().is_none());
    }

    #[test]
    fn file_names_follow_consistent_snapshot() {
        let mut repo = Repo::new();
        repo.delegate("targets", "team/app", &["*"], false);
        repo.publish_delegated_as_is("team/app");
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        let s = full(&repo);
        assert_eq!(
            s.targets_request(&rn("team/app")).unwrap().file_name,
            "1.team%2Fapp.json"
        );
        repo.root.consistent_snapshot = Some(false);
        repo.publish_root();
        let mut s2 = set_at(&repo, NOW);
        s2.update_root(&repo.root_bytes(2)).unwrap();
        s2.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        assert_eq!(s2.snapshot_request().unwrap().file_name, "snapshot.json");
        let req = s2.snapshot_request().unwrap();
        assert_eq!(req.max_len, repo.file("2.snapshot.json").len() as u64);
    }
}
