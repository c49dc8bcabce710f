//! Verifying Notary v1 collections the way the notary client does, against a root the user
//! already trusts.
//!
//! This is the migration path off Notary v1: what `vouch import notary`, `vouch verify
//! --notary` and the admission webhook's Notary rule build on. It is separate from the TUF
//! 1.0 workflow ([`TrustedSet`](crate::TrustedSet), [`Updater`](crate::Updater)) and shares
//! only transports and [`Limits`](crate::Limits) with it.
//!
//! - [`client`] is the sans-IO state machine ([`NotaryVerifier`]): root chain, timestamp,
//!   snapshot, targets and delegations, expiry, rollback against a kept [`NotaryState`].
//! - [`fetch`] drives it over a [`Transport`](crate::transport::Transport): a notary server
//!   (`https://NOTARY/v2/<gun>/_trust/tuf/`, files named as the notary client asks for them)
//!   or the notary client's own cache directory (`…/tuf/<gun>/metadata/`).
//!
//! The dialect itself (documents, keys, key ids, signatures) is
//! [`vouch_tuf::notary`].
//!
//! ```no_run
//! use std::path::Path;
//! use vouch_tuf::clock::{Clock, SystemClock};
//! use vouch_tuf::reference::Gun;
//! use vouch_verifier::notary::{client_trusted_root, fetch_collection, ExpiredMetadata, Layout};
//! use vouch_verifier::transport::{repository_url, HttpOptions, HttpTransport};
//! use vouch_verifier::Limits;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let gun = Gun::new("docker.io/library/app")?;
//! // The root the user's notary client (here Docker's) already trusts.
//! let state = client_trusted_root(Path::new("/home/me/.docker/trust"), &gun, Limits::DEFAULT)?;
//! // notary-server serves the same URL layout as vouch-server.
//! let http = HttpTransport::new(
//!     &repository_url("https://notary.example", &gun),
//!     &HttpOptions::default(),
//! )?;
//! let collection = fetch_collection(
//!     &http,
//!     Layout::Server,
//!     &state,
//!     SystemClock.now(),
//!     ExpiredMetadata::Refuse,
//!     Limits::DEFAULT,
//! )?;
//! if let Some(t) = collection.lookup("v1.2.0") {
//!     println!("v1.2.0 is sha256:{:?}, signed by {}", t.sha256, t.role);
//! }
//! // Keep collection.state (NotaryState::to_json) to catch rollback next time.
//! # Ok(()) }
//! ```

pub mod client;
pub mod fetch;

use thiserror::Error;
use vouch_tuf::notary::NotaryError;

use crate::transport::TransportError;

pub use client::{
    ExpiredMetadata, ExpiredRole, NotaryCollection, NotaryState, NotaryTarget, NotaryVerifier,
    SkippedRole, TargetsRequest, VerifiedRole, MAX_DELEGATION_DEPTH,
};
pub use fetch::{client_metadata_dir, client_trusted_root, fetch_collection, Layout};

/// Why a Notary collection was not verified.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NotaryVerifyError {
    /// A document was refused (shape, signatures, threshold, length or hash).
    #[error("{0}")]
    Document(#[from] NotaryError),
    /// A root did not have the next version number.
    #[error("root version {found} offered where version {expected} was expected")]
    RootVersion {
        /// The version expected (trusted + 1).
        expected: u64,
        /// The version offered.
        found: u64,
    },
    /// The server's latest root is older than the trusted one.
    #[error("rollback attempt: the server's root is version {found}, older than the trusted version {trusted}")]
    RootRollback {
        /// The trusted version.
        trusted: u64,
        /// The version served.
        found: u64,
    },
    /// The server's root has the trusted version but other content.
    #[error("the server's root version {version} is not the trusted root of that version")]
    RootDiffers {
        /// The version.
        version: u64,
    },
    /// A new root is not signed by a threshold of the previous root's root keys.
    #[error("root version {version} is not signed by the previously trusted root keys: {reason}")]
    RootRotation {
        /// The version of the new root.
        version: u64,
        /// What failed.
        reason: String,
    },
    /// No root key Notary accepts (certificates naming the GUN) is usable.
    #[error("no usable root keys: {reason}")]
    RootKeys {
        /// Why each key was unusable.
        reason: String,
    },
    /// More root versions than one update may walk.
    #[error("more than {max} root versions in one update")]
    TooManyRootVersions {
        /// The bound.
        max: u32,
    },
    /// A role's version is lower than one trusted before.
    #[error(
        "rollback attempt: {role} version {found} is older than the trusted version {trusted}"
    )]
    Rollback {
        /// The role.
        role: String,
        /// The trusted version.
        trusted: u64,
        /// The version offered.
        found: u64,
    },
    /// A role is expired (and expired metadata is refused).
    #[error("{role} metadata expired at {expires}")]
    Expired {
        /// The role.
        role: String,
        /// Its expiry.
        expires: String,
    },
    /// The snapshot lists a root other than the trusted one.
    #[error("the snapshot does not list the trusted root: {reason}")]
    SnapshotRoot {
        /// The mismatch.
        reason: String,
    },
    /// The calls came in an order the workflow does not allow.
    #[error("out of order: {what}")]
    OutOfOrder {
        /// What.
        what: &'static str,
    },
    /// A kept state document does not parse.
    #[error("invalid notary state: {reason}")]
    BadState {
        /// What is wrong.
        reason: String,
    },
    /// A fetch failed.
    #[error("fetching {what}: {source}")]
    Transport {
        /// What was being fetched.
        what: String,
        /// The failure.
        source: TransportError,
    },
}

#[cfg(test)]
mod tests;
