//! TUF 1.0 metadata: the four top-level roles, delegated targets roles, and the signed
//! envelope around them.
//!
//! Parsing happens once: [`Metadata::from_bytes`] parses the bytes into a
//! [`Value`], computes the canonical form of its `signed` part (the bytes
//! every signature covers) and builds the typed role from that same value. Signatures are
//! then checked with [`verify_threshold`] (through [`Root::verify_role`] or
//! [`Targets::verify_delegate`]), the one function that counts signatures for top-level and
//! delegated roles alike.
//!
//! Unknown fields are kept at every level and written back unchanged, so metadata that
//! another implementation wrote round-trips and keeps verifying.
//!
//! [`hashes`] is the one check of downloaded bytes against the length and hashes that
//! trusted metadata gives ([`MetaFile::check`], [`TargetFile::check`]), shared by the
//! verifier and the server.
//!
//! What this module does not do: decide whether a role may follow another (rollback,
//! expiry at a given time, snapshot consistency). Those are the verifier's and the server's
//! rules, built from the accessors here.

mod fields;
pub mod hashes;
mod key;
mod paths;
mod root;
mod snapshot;
mod targets;
mod verify;

use std::fmt;

use thiserror::Error;

use crate::crypto::{CryptoError, Signer};
use crate::json::{self, JsonError, Map, Value};
use crate::time::Timestamp;
use crate::types::{KeyId, Version};

pub use hashes::Mismatch;
pub use key::Key;
pub use paths::{
    path_hash_prefix_matches, path_pattern_matches, MatchBudget, OverBudget, ScopeMatcher,
};
pub use root::{RoleKeys, Root};
pub use snapshot::{MetaFile, Snapshot, Timestamp as TimestampRole};
pub use targets::{DelegatedRole, Delegations, PathScope, TargetFile, Targets};
pub use verify::{
    check_each_signature, tally, verify_threshold, Authority, SignatureError, StrictError, Verified,
};

use fields::Fields;

/// The TUF specification version vouch writes.
pub const SPEC_VERSION: &str = "1.0.34";

/// Metadata that could not be parsed into a role.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetadataError {
    /// Not acceptable JSON.
    #[error("{role} metadata is not valid JSON: {source}")]
    Json {
        /// The role being parsed.
        role: String,
        /// What the JSON parser found.
        source: JsonError,
    },
    /// `_type` names another role type.
    #[error("{role} metadata has _type {found:?}, expected {expected:?}")]
    WrongType {
        /// The role being parsed.
        role: String,
        /// The `_type` wanted.
        expected: &'static str,
        /// The `_type` found.
        found: String,
    },
    /// `spec_version` is malformed or of another major version.
    #[error("{role} metadata has unsupported spec_version {found:?}: need 1.x or 1.x.y")]
    UnsupportedSpecVersion {
        /// The role being parsed.
        role: String,
        /// The version found.
        found: String,
    },
    /// Two signatures name the same key id.
    #[error("{role} metadata carries two signatures by key {keyid}")]
    DuplicateSignature {
        /// The role being parsed.
        role: String,
        /// The repeated key id.
        keyid: KeyId,
    },
    /// A field is missing, of the wrong kind or out of range.
    #[error("{role} metadata field {field}: {reason}")]
    Malformed {
        /// The role being parsed.
        role: String,
        /// Dotted path of the field, e.g. `signed.roles.root.threshold`.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// `spec_version`: `X.Y` or `X.Y.Z` in digits, with major version 1.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpecVersion(String);

impl SpecVersion {
    /// Checks a `spec_version` string.
    ///
    /// ```
    /// use vouch_tuf::metadata::SpecVersion;
    /// assert!(SpecVersion::new("1.0.34").is_some());
    /// assert!(SpecVersion::new("1.0").is_some());
    /// assert!(SpecVersion::new("2.0.0").is_none());
    /// assert!(SpecVersion::new("1.0.0-rc1").is_none());
    /// ```
    pub fn new(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split('.').collect();
        let digits = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(digits) {
            return None;
        }
        if parts[0].trim_start_matches('0') != "1" {
            return None;
        }
        Some(SpecVersion(s.to_owned()))
    }

    /// The version string as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for SpecVersion {
    fn default() -> Self {
        SpecVersion(SPEC_VERSION.to_owned())
    }
}

/// The fields every role's `signed` part has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Common {
    /// `spec_version`.
    pub spec_version: SpecVersion,
    /// `version`.
    pub version: Version,
    /// `expires`.
    pub expires: Timestamp,
}

impl Common {
    /// Version 1, expiring at `expires`, written with the current spec version.
    pub fn new(expires: Timestamp) -> Self {
        Common {
            spec_version: SpecVersion::default(),
            version: Version::ONE,
            expires,
        }
    }

    /// True when the role is expired at `now` (expiry is exclusive: metadata expiring at
    /// exactly `now` is expired).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires <= now
    }

    fn parse(f: &mut Fields<'_>, expected: &'static str) -> Result<Self, MetadataError> {
        let ty = f.req_str("_type")?;
        if ty != expected {
            return Err(MetadataError::WrongType {
                role: f.role().to_owned(),
                expected,
                found: ty,
            });
        }
        let sv = f.req_str("spec_version")?;
        let spec_version =
            SpecVersion::new(&sv).ok_or_else(|| MetadataError::UnsupportedSpecVersion {
                role: f.role().to_owned(),
                found: sv,
            })?;
        Ok(Common {
            spec_version,
            version: f.req_version("version")?,
            expires: f.req_time("expires")?,
        })
    }

    fn fields(&self, ty: &'static str) -> [(&'static str, Value); 4] {
        [
            ("_type", Value::from(ty)),
            ("spec_version", Value::from(self.spec_version.as_str())),
            ("version", Value::from(self.version.get())),
            ("expires", Value::from(self.expires.to_string())),
        ]
    }
}

/// A role's `signed` content: [`Root`], [`Targets`], [`Snapshot`] or [`TimestampRole`].
pub trait Role: Sized + Clone {
    /// The `_type` this role is written with.
    const TYPE: &'static str;

    /// Builds the role from its `signed` value; `role` names it in errors.
    fn from_value(role: &str, v: Value) -> Result<Self, MetadataError>;

    /// The `signed` value, unknown fields included.
    fn to_value(&self) -> Value;

    /// The common fields.
    fn common(&self) -> &Common;

    /// The common fields, to change the version or expiry.
    fn common_mut(&mut self) -> &mut Common;

    /// Moves to the next version (what every change before re-signing needs).
    fn bump_version(&mut self) {
        let c = self.common_mut();
        c.version = c.version.next();
    }

    /// Sets the expiry.
    fn set_expires(&mut self, expires: Timestamp) {
        self.common_mut().expires = expires;
    }
}

/// One signature of an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The key id the signature claims.
    pub keyid: KeyId,
    /// The signature as written (hex); not decoded until it is checked, so a malformed one
    /// simply does not count.
    pub sig: String,
    /// Unknown fields.
    pub extra: Map,
}

/// Most signatures one metadata file may carry. Each is checked against the whole signed
/// text, so their number multiplies the cost of every verification; no real role needs more
/// (thresholds are a handful of keys).
pub const MAX_SIGNATURES: usize = 64;

/// Most key ids one role (in root) or one delegation may list, for the same reason.
pub const MAX_ROLE_KEYS: usize = 64;

/// A role with its signatures: `{"signatures": [...], "signed": {...}}`.
///
/// Holds the typed role, the signatures and the canonical bytes of `signed` (what the
/// signatures cover), all derived from one parse of the input.
#[derive(Clone)]
pub struct Metadata<T: Role> {
    signed: T,
    canonical: Vec<u8>,
    signatures: Vec<Signature>,
    extra: Map,
}

impl<T: Role> fmt::Debug for Metadata<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metadata")
            .field("type", &T::TYPE)
            .field("version", &self.signed.common().version)
            .field("signatures", &self.signatures)
            .finish_non_exhaustive()
    }
}

/// Where [`Metadata`] gets the canonical bytes of `signed` from.
enum Canonical<'a> {
    /// The input already holds them.
    Given(&'a [u8]),
    /// Encode the parsed value; the number is a capacity hint.
    Encode(usize),
}

impl<T: Role> Metadata<T> {
    /// Parses metadata of role type `T`, named after its type in errors.
    ///
    /// Rejects malformed JSON, a wrong `_type`, an unsupported `spec_version`, malformed
    /// fields and two signatures with the same key id. It does not check signatures: see
    /// [`Root::verify_role`] and [`Targets::verify_delegate`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetadataError> {
        Self::from_bytes_as(T::TYPE, bytes)
    }

    /// Parses metadata of role type `T`, naming it `role` in errors (for delegated roles).
    pub fn from_bytes_as(role: &str, bytes: &[u8]) -> Result<Self, MetadataError> {
        let (v, span) = json::parse_with_canonical_member(bytes, "signed").map_err(|source| {
            MetadataError::Json {
                role: role.to_owned(),
                source,
            }
        })?;
        // When `signed` is already in canonical form (as vouch writes it), its bytes are the
        // canonical bytes: no need to encode the value again.
        let canonical = match span {
            Some(range) => Canonical::Given(&bytes[range]),
            None => Canonical::Encode(bytes.len()),
        };
        Self::from_value_sized(role, v, canonical)
    }

    /// Builds metadata from an already parsed envelope.
    pub fn from_value(role: &str, v: Value) -> Result<Self, MetadataError> {
        Self::from_value_sized(role, v, Canonical::Encode(256))
    }

    fn from_value_sized(
        role: &str,
        v: Value,
        canonical: Canonical<'_>,
    ) -> Result<Self, MetadataError> {
        let mut env = Fields::new(role, "", v)?;
        let signed_value = env.req("signed")?;
        let sig_values = env.req_array("signatures")?;
        if sig_values.len() > MAX_SIGNATURES {
            return Err(env.error(
                "signatures",
                format!(
                    "{} signatures, at most {MAX_SIGNATURES} are accepted",
                    sig_values.len()
                ),
            ));
        }
        let mut signatures: Vec<Signature> = Vec::with_capacity(sig_values.len());
        // One look-up per signature: a check against every earlier one would cost the
        // square of a number the sender chooses.
        let mut signers: std::collections::HashSet<KeyId> =
            std::collections::HashSet::with_capacity(sig_values.len());
        for (i, sv) in sig_values.into_iter().enumerate() {
            let mut sf = Fields::new(role, format!("signatures[{i}]"), sv)?;
            let keyid =
                KeyId::new(sf.req_str("keyid")?).map_err(|e| sf.error("keyid", e.to_string()))?;
            let sig = sf.req_str("sig")?;
            if !signers.insert(keyid.clone()) {
                return Err(MetadataError::DuplicateSignature {
                    role: role.to_owned(),
                    keyid,
                });
            }
            signatures.push(Signature {
                keyid,
                sig,
                extra: sf.rest(),
            });
        }
        let canonical = match canonical {
            Canonical::Given(bytes) => bytes.to_vec(),
            Canonical::Encode(size_hint) => json::canonical_with_capacity(&signed_value, size_hint),
        };
        let signed = T::from_value(role, signed_value)?;
        Ok(Metadata {
            signed,
            canonical,
            signatures,
            extra: env.rest(),
        })
    }

    /// Wraps `signed` with no signatures yet.
    pub fn new(signed: T) -> Self {
        let canonical = json::canonical(&signed.to_value());
        Metadata {
            signed,
            canonical,
            signatures: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Wraps `signed` and signs it with every signer, in order.
    ///
    /// Each signature's key id is the id vouch computes for the signer's public key
    /// ([`Key::key_id`]); use [`Metadata::sign_as`] where the delegating role lists the key
    /// under another id.
    pub fn signed_by(signed: T, signers: &[&dyn Signer]) -> Result<Self, CryptoError> {
        let mut md = Self::new(signed);
        for s in signers {
            md.sign(*s)?;
        }
        Ok(md)
    }

    /// Adds (or replaces) the signature of `signer` under its computed key id.
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<(), CryptoError> {
        let keyid = Key::from_verifying_key(&signer.verifying_key()).key_id();
        self.sign_as(signer, keyid)
    }

    /// Adds (or replaces) the signature of `signer`, recorded under `keyid`.
    pub fn sign_as(&mut self, signer: &dyn Signer, keyid: KeyId) -> Result<(), CryptoError> {
        let sig = crate::hex::encode(signer.sign(&self.canonical)?);
        self.signatures.retain(|s| s.keyid != keyid);
        self.signatures.push(Signature {
            keyid,
            sig,
            extra: Map::new(),
        });
        Ok(())
    }

    /// Adds a signature made elsewhere (by another key holder), unchecked: see
    /// [`check_each_signature`]. Refused when the key id already signed, or when the envelope
    /// already carries [`MAX_SIGNATURES`].
    pub fn add_signature(&mut self, signature: Signature) -> Result<(), MetadataError> {
        if self.signatures.iter().any(|s| s.keyid == signature.keyid) {
            return Err(MetadataError::DuplicateSignature {
                role: T::TYPE.to_owned(),
                keyid: signature.keyid,
            });
        }
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(MetadataError::Malformed {
                role: T::TYPE.to_owned(),
                field: "signatures".into(),
                reason: format!("already {MAX_SIGNATURES} signatures, the most accepted"),
            });
        }
        self.signatures.push(signature);
        Ok(())
    }

    /// The typed role.
    pub fn signed(&self) -> &T {
        &self.signed
    }

    /// Takes the role out to change it; the signatures no longer apply and are dropped.
    pub fn into_signed(self) -> T {
        self.signed
    }

    /// The signatures.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// The canonical bytes of `signed`: what the signatures cover.
    pub fn canonical_signed(&self) -> &[u8] {
        &self.canonical
    }

    /// The version of the role.
    pub fn version(&self) -> Version {
        self.signed.common().version
    }

    /// When the role expires.
    pub fn expires(&self) -> Timestamp {
        self.signed.common().expires
    }

    /// The whole envelope as a value.
    pub fn to_value(&self) -> Value {
        let mut env = self.envelope_without_signed();
        env.insert("signed".into(), self.signed.to_value());
        Value::Object(env)
    }

    /// The envelope's signatures and unknown fields.
    fn envelope_without_signed(&self) -> Map {
        let sigs = self
            .signatures
            .iter()
            .map(|s| {
                fields::object(
                    &s.extra,
                    [
                        ("keyid", Value::from(s.keyid.as_str())),
                        ("sig", Value::from(s.sig.as_str())),
                    ],
                )
            })
            .collect();
        let mut env = self.extra.clone();
        env.remove("signed");
        env.insert("signatures".into(), Value::Array(sigs));
        env
    }

    /// The envelope as compact JSON bytes, ready to publish or store.
    pub fn to_bytes(&self) -> Vec<u8> {
        // The canonical bytes of `signed` are already compact, sorted JSON unless a string
        // holds a raw control character; then write them in, rather than the role again.
        if self.canonical.iter().any(|&b| b < 0x20) {
            return json::to_json(&self.to_value());
        }
        json::to_json_with_raw_member(&self.envelope_without_signed(), "signed", &self.canonical)
    }
}
