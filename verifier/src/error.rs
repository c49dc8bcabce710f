//! Why an update, a search or a download was refused.
//!
//! [`UpdateError`] is what the sans-IO [`TrustedSet`](crate::TrustedSet) and the delegation
//! search return: each variant names the role and the check that failed. Transport and cache
//! failures have their own types ([`TransportError`](crate::transport::TransportError),
//! [`CacheError`](crate::cache::CacheError)); [`Error`](crate::Error) joins them for the
//! [`Updater`](crate::Updater).

use thiserror::Error;
use vouch_tuf::metadata::MetadataError;
use vouch_tuf::time::Timestamp;

/// What was wrong with a length or a hash: the error of the one length-and-hash check,
/// [`vouch_tuf::metadata::hashes`], which the verifier and the server share.
pub use vouch_tuf::metadata::Mismatch;

/// A check of the TUF client workflow that fetched metadata failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UpdateError {
    /// The bytes are not well-formed metadata of that role.
    #[error("{0}")]
    Malformed(#[from] MetadataError),
    /// Not enough distinct authorized keys signed the role.
    #[error("{role} metadata has {valid} valid signature(s) from distinct authorized keys, {needed} required")]
    ThresholdNotMet {
        /// The role checked.
        role: String,
        /// Distinct authorized keys with a valid signature.
        valid: usize,
        /// The threshold.
        needed: u32,
    },
    /// The delegating role does not delegate to this role.
    #[error("role {role} is not delegated by {parent}")]
    NotDelegated {
        /// The role.
        role: String,
        /// The role it was presented under.
        parent: String,
    },
    /// A version went backwards (or, for root, did not move forward).
    #[error("rollback attempt: {role} version {got} is older than the trusted version {trusted}")]
    RollbackAttempt {
        /// The role (for a role listed in snapshot or timestamp, its file name).
        role: String,
        /// The trusted version.
        trusted: u64,
        /// The version offered.
        got: u64,
    },
    /// A version differs from the one trusted metadata names.
    #[error("{role} version {got} is not the version {expected} that trusted metadata names")]
    VersionMismatch {
        /// The role.
        role: String,
        /// The version trusted metadata names.
        expected: u64,
        /// The version offered.
        got: u64,
    },
    /// The role expired at or before the update's reference time.
    #[error("{role} metadata expired at {at}")]
    Expired {
        /// The role.
        role: String,
        /// Its expiry.
        at: Timestamp,
    },
    /// The bytes do not match the length or hashes trusted metadata gives.
    #[error("{role} metadata does not match trusted metadata: {mismatch}")]
    LengthOrHashMismatch {
        /// The role (or target).
        role: String,
        /// What differs.
        mismatch: Mismatch,
    },
    /// More bytes than the role may have.
    #[error("{role} metadata is larger than its limit of {limit} bytes")]
    TooLarge {
        /// The role.
        role: String,
        /// The limit.
        limit: u64,
    },
    /// One update walked through more root versions than allowed.
    #[error("more than {limit} root rotations in one update")]
    MaxRootRotations {
        /// The limit.
        limit: u32,
    },
    /// A search visited more targets roles than allowed.
    #[error("target search visited more than {limit} targets roles")]
    DelegationLimit {
        /// The limit.
        limit: u32,
    },
    /// A new snapshot stopped listing a targets role the trusted snapshot lists.
    #[error("snapshot no longer lists {role}, which the trusted snapshot lists")]
    RoleDropped {
        /// The role's file name in snapshot.
        role: String,
    },
    /// Snapshot does not list the role, so it cannot be trusted.
    #[error("snapshot does not list {role}")]
    NotInSnapshot {
        /// The role.
        role: String,
    },
    /// The role was offered before the role it depends on is trusted.
    #[error("{role} cannot be updated before {needs} is trusted")]
    OutOfOrder {
        /// The role offered.
        role: String,
        /// The role it depends on.
        needs: String,
    },
    /// Cached metadata of this role is no longer usable: root rotated the keys that sign it
    /// (or those of the role it depends on). Fast-forward recovery discards it.
    #[error("cached {role} metadata discarded: its signing keys were rotated")]
    KeysRotated {
        /// The role.
        role: String,
    },
}

impl UpdateError {
    pub(crate) fn from_signature(err: vouch_tuf::metadata::SignatureError, parent: &str) -> Self {
        use vouch_tuf::metadata::SignatureError;
        match err {
            SignatureError::ThresholdNotMet {
                role,
                valid,
                needed,
            } => UpdateError::ThresholdNotMet {
                role,
                valid,
                needed,
            },
            SignatureError::NotDelegated { role } => UpdateError::NotDelegated {
                role,
                parent: parent.to_owned(),
            },
        }
    }
}
