//! The Notary v1 metadata dialect: parsing its documents and checking its signatures.
//!
//! Notary v1 (notary-server and the notary client, the trust store behind Docker Content
//! Trust) speaks an older dialect of TUF than the 1.0 specification vouch signs in. This
//! module reads that dialect, so that collections Notary clients trusted can be verified and
//! carried over; it is kept apart from the TUF 1.0 model in [`crate::metadata`] and never
//! mixed into it. The differences, and how they are handled:
//!
//! - `_type` is capitalised (`Root`, `Targets`, `Snapshot`, `Timestamp`), there is no
//!   `spec_version`, and `expires` is Go's RFC 3339 with nanoseconds ([`parse_expires`]).
//! - Hashes, public keys and signatures are base64, not hex. `meta` is keyed by role name
//!   without `.json`.
//! - Keys have no `scheme`; signatures carry a `method` (`ecdsa`, `eddsa`, `rsapss`) that must
//!   fit the key type ([`NotaryKey::verify`]). ECDSA signatures are raw `r || s`.
//! - Root keys are X.509 certificates (`ecdsa-x509`, `rsa-x509`) whose common name must name
//!   the GUN ([`Certificate::problem`]).
//! - Key ids follow Notary's rule ([`key_id`]); a key listed under another id is refused.
//! - Delegations (`targets/…`) use path *prefixes*, and a delegated role must be a direct
//!   child of its delegating role by name ([`is_delegation_name`], [`parent_of`]).
//! - The signed bytes are docker/go's canonical JSON of `signed`; where that could differ
//!   from [`crate::json::canonical`] the document is refused ([`Signed::parse`]).
//!
//! This module is pure: it checks one document at a time against keys it is given.
//! The order of the client workflow (root chain, timestamp, snapshot, targets, delegations)
//! and the rollback state live in the verifier crate.

mod keys;
mod metadata;
mod time;

use std::collections::BTreeMap;

use thiserror::Error;

use crate::json::JsonError;

pub use keys::{bare_key_id, key_id, Certificate, KeyType, NotaryKey};
pub use metadata::{
    is_delegation_name, parent_of, Common, Delegation, FileMeta, Method, PathPrefixes, RoleKeys,
    Root, Signature, Signed, Snapshot, Targets, Timestamp, MAX_DELEGATIONS, MAX_KEYIDS, MAX_KEYS,
    MAX_META, MAX_PATHS, MAX_SIGNATURES, MAX_TARGETS,
};
pub use time::{parse_expires, Expires};

/// Why a Notary document or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NotaryError {
    /// The document is not acceptable JSON.
    #[error("{role}: not valid JSON: {source}")]
    Json {
        /// The role the document was offered as.
        role: String,
        /// What the parser refused.
        source: JsonError,
    },
    /// The document does not have Notary's shape.
    #[error("{role}: {reason}")]
    Malformed {
        /// The role.
        role: String,
        /// What was wrong.
        reason: String,
    },
    /// A field Notary does not define (refused: Go matches field names case-insensitively).
    #[error("{role}: unknown field {field:?}")]
    UnknownField {
        /// The role.
        role: String,
        /// The field.
        field: String,
    },
    /// `_type` is not the expected one.
    #[error("{role}: expected type {expected}, found {found:?}")]
    WrongType {
        /// The role.
        role: String,
        /// The type expected.
        expected: &'static str,
        /// The type found.
        found: String,
    },
    /// An integer Go's verifier would not carry exactly into the signed bytes.
    #[error("{role}: the number {number} is beyond 2^53, which Notary cannot verify exactly")]
    InexactNumber {
        /// The role.
        role: String,
        /// The number (shortened).
        number: String,
    },
    /// Too many of something.
    #[error("{role}: more than {max} {what}")]
    TooMany {
        /// The role.
        role: String,
        /// What.
        what: &'static str,
        /// The bound.
        max: usize,
    },
    /// `expires` is not a Go RFC 3339 time.
    #[error("invalid expiry time {text:?}: {reason}")]
    BadExpires {
        /// The text (shortened).
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A key object does not parse.
    #[error("key {keyid}: {reason}")]
    BadKey {
        /// The key id it is listed under.
        keyid: String,
        /// What is wrong.
        reason: String,
    },
    /// A key is listed under an id that is not its Notary key id.
    #[error("key listed as {listed} has key id {computed}")]
    KeyIdMismatch {
        /// The id it is listed under.
        listed: String,
        /// Its Notary key id.
        computed: String,
    },
    /// A role name that is not `targets` or a valid delegated name.
    #[error("invalid role name {name:?}")]
    BadRoleName {
        /// The name.
        name: String,
    },
    /// A signature's method does not fit its key type.
    #[error("signature by key {keyid} ({keytype}) uses method {method:?}")]
    MethodMismatch {
        /// The key id.
        keyid: String,
        /// The key's type.
        keytype: &'static str,
        /// The method named.
        method: String,
    },
    /// A signature does not verify.
    #[error("signature by key {keyid} does not verify")]
    BadSignature {
        /// The key id.
        keyid: String,
    },
    /// Fewer distinct keys than the threshold signed.
    #[error("{role}: {valid} valid signature(s) from distinct trusted keys, threshold is {threshold}{}", if .problems.is_empty() { String::new() } else { format!(" ({})", .problems.join("; ")) })]
    Threshold {
        /// The role.
        role: String,
        /// Distinct keys with valid signatures.
        valid: usize,
        /// The threshold.
        threshold: u64,
        /// Why other signatures did not count.
        problems: Vec<String>,
    },
    /// The bytes are not as long as trusted metadata says.
    #[error("{role}: {found} bytes, but trusted metadata gives {expected}")]
    LengthMismatch {
        /// The role.
        role: String,
        /// Length from trusted metadata.
        expected: u64,
        /// Length found.
        found: u64,
    },
    /// A hash of the bytes is not the one trusted metadata gives.
    #[error("{role}: {algorithm} hash does not match the trusted metadata")]
    HashMismatch {
        /// The role.
        role: String,
        /// The hash algorithm.
        algorithm: &'static str,
    },
}

/// Checks that at least `threshold` distinct keys among `keys` (by key id) signed `doc`.
///
/// Signatures by key ids not in `keys` are ignored; a signature whose method does not fit its
/// key or that does not verify does not count (the reasons are reported if the threshold is
/// not met). Distinct means distinct key material: one public key listed under two ids (say
/// as `ecdsa` and as `ecdsa-x509`) counts once. Returns the ids of the keys that counted.
pub fn verify_threshold(
    doc: &Signed,
    role: &str,
    keys: &BTreeMap<String, &NotaryKey>,
    threshold: u64,
) -> Result<Vec<String>, NotaryError> {
    let mut counted: Vec<&NotaryKey> = Vec::new();
    let mut problems = Vec::new();
    for sig in doc.signatures.iter().take(MAX_SIGNATURES) {
        let Some(key) = keys.get(&sig.keyid) else {
            continue;
        };
        if counted
            .iter()
            .any(|k| k.verifying_key() == key.verifying_key())
        {
            continue;
        }
        match key.verify(&sig.method, &doc.signed_bytes, &sig.sig) {
            Ok(()) => counted.push(key),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if (counted.len() as u64) < threshold || threshold == 0 {
        return Err(NotaryError::Threshold {
            role: role.to_owned(),
            valid: counted.len(),
            threshold,
            problems,
        });
    }
    Ok(counted.iter().map(|k| k.id().to_owned()).collect())
}

#[cfg(test)]
mod tests;
