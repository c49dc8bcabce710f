//! Bounds on what one update may download, visit and take.

use std::time::Duration;

/// Caps that keep a malicious or broken repository from exhausting memory, disk or time.
///
/// Root and timestamp are always fetched with their fixed cap (nothing trusted gives their
/// length). Snapshot, targets and delegated roles are fetched with the length trusted
/// metadata gives for them, but never with more than their cap: whoever holds the online
/// timestamp key (a compromised server) can sign any length, so the cap holds whatever the
/// signed length says ([`Limits::snapshot_fetch_len`], [`Limits::targets_fetch_len`]).
///
/// Time is bounded too: each HTTP fetch by its transport's timeout, and one
/// [`Updater`](crate::Updater) operation (a refresh, or a lookup that loads delegated
/// roles) by [`Limits::max_update_duration`] in total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest root metadata file accepted, in bytes.
    pub root_max_bytes: u64,
    /// Largest timestamp metadata file accepted, in bytes.
    pub timestamp_max_bytes: u64,
    /// Largest snapshot accepted, whatever length timestamp gives.
    pub snapshot_max_bytes: u64,
    /// Largest targets or delegated-targets file accepted, whatever length snapshot gives.
    pub targets_max_bytes: u64,
    /// Most root versions one update walks through.
    pub max_root_rotations: u32,
    /// Most targets roles one target search visits.
    pub max_delegations: u32,
    /// Longest one update (every fetch of one refresh, or of one lookup) may take; no fetch
    /// starts after it and one in progress is cut off at it.
    pub max_update_duration: Duration,
}

impl Limits {
    /// The defaults: 512 KiB root, 16 KiB timestamp, 2 MiB snapshot, 5 MiB targets, 256 root
    /// rotations, 32 roles per search, 2 minutes per update.
    pub const DEFAULT: Limits = Limits {
        root_max_bytes: 512 * 1024,
        timestamp_max_bytes: 16 * 1024,
        snapshot_max_bytes: 2 * 1024 * 1024,
        targets_max_bytes: 5 * 1024 * 1024,
        max_root_rotations: 256,
        max_delegations: 32,
        max_update_duration: Duration::from_secs(120),
    };

    /// The most bytes read for a snapshot whose trusted length (or cap) is `signed`:
    /// min(`signed`, [`Limits::snapshot_max_bytes`]).
    ///
    /// ```
    /// use vouch_verifier::Limits;
    /// let l = Limits::DEFAULT;
    /// assert_eq!(l.snapshot_fetch_len(1_000_000_000_000), l.snapshot_max_bytes);
    /// assert_eq!(l.snapshot_fetch_len(900), 900);
    /// ```
    pub fn snapshot_fetch_len(&self, signed: u64) -> u64 {
        signed.min(self.snapshot_max_bytes)
    }

    /// The most bytes read for a targets or delegated role whose trusted length (or cap) is
    /// `signed`: min(`signed`, [`Limits::targets_max_bytes`]).
    pub fn targets_fetch_len(&self, signed: u64) -> u64 {
        signed.min(self.targets_max_bytes)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
