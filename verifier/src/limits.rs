//! Bounds on what one update may download and visit.

/// Caps that keep a malicious or broken repository from exhausting memory, disk or time.
///
/// Root and timestamp are always fetched with their fixed cap (nothing trusted gives their
/// length). Snapshot, targets and delegated roles are fetched with the length trusted
/// metadata gives for them, or with their cap when it gives none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest root metadata file accepted, in bytes.
    pub root_max_bytes: u64,
    /// Largest timestamp metadata file accepted, in bytes.
    pub timestamp_max_bytes: u64,
    /// Largest snapshot accepted when timestamp gives no length.
    pub snapshot_max_bytes: u64,
    /// Largest targets or delegated-targets file accepted when snapshot gives no length.
    pub targets_max_bytes: u64,
    /// Most root versions one update walks through.
    pub max_root_rotations: u32,
    /// Most targets roles one target search visits.
    pub max_delegations: u32,
}

impl Limits {
    /// The defaults: 512 KiB root, 16 KiB timestamp, 2 MiB snapshot, 5 MiB targets, 256 root
    /// rotations, 32 roles per search.
    pub const DEFAULT: Limits = Limits {
        root_max_bytes: 512 * 1024,
        timestamp_max_bytes: 16 * 1024,
        snapshot_max_bytes: 2 * 1024 * 1024,
        targets_max_bytes: 5 * 1024 * 1024,
        max_root_rotations: 256,
        max_delegations: 32,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
