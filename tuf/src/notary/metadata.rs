//! Notary v1 signed envelopes and roles, parsed strictly.
//!
//! [`Signed::parse`] reads `{"signed": {...}, "signatures": [{"keyid", "method", "sig"}]}` and
//! keeps the bytes Notary's signers signed: the canonical JSON of the `signed` object as
//! docker/go's canonical encoder writes it. Notary's verifier decodes `signed` into Go's
//! generic values (numbers become `float64`) and re-encodes it canonically; its string
//! escaping in canonical mode (only `\` and `"`, everything else raw) and its key order
//! (bytewise) are those of [`crate::json::canonical`]. Where the two would differ, the
//! document is refused rather than guessed at:
//! - an integer beyond ±2^53, which Go's `float64` cannot hold exactly;
//! - a float, a duplicate key, invalid UTF-8 or a lone surrogate, which [`crate::json::parse`]
//!   refuses (Go would round, keep the last copy, or substitute U+FFFD);
//! - a field the Notary format does not define: Go's decoder matches field names without
//!   regard to case, so an unknown `Version` beside `version` would be read by Notary and
//!   not by vouch.
//!
//! The typed roles ([`Root`], [`Targets`], [`Snapshot`], [`Timestamp`]) check what Notary's
//! `isValid*Structure` checks (type, version at least 1, role specifications, key ids, hash
//! sizes, delegation names) and bound every count ([`MAX_KEYS`], [`MAX_SIGNATURES`],
//! [`MAX_DELEGATIONS`], [`MAX_TARGETS`], [`MAX_PATHS`]).

use std::collections::BTreeMap;

use base64ct::{Base64, Encoding};

use crate::json::{canonical, parse, Map, Value};

use super::keys::NotaryKey;
use super::time::{parse_expires, Expires};
use super::NotaryError;

/// Most keys one document may list (root keys, or delegation keys of one targets role).
pub const MAX_KEYS: usize = 256;
/// Most signatures one document may carry.
pub const MAX_SIGNATURES: usize = 64;
/// Most delegated roles one targets role may delegate to.
pub const MAX_DELEGATIONS: usize = 256;
/// Most targets one targets role may list.
pub const MAX_TARGETS: usize = 200_000;
/// Most paths one delegation may list.
pub const MAX_PATHS: usize = 1_024;
/// Most key ids one role specification may list.
pub const MAX_KEYIDS: usize = 64;
/// Most entries in a snapshot's or timestamp's `meta`.
pub const MAX_META: usize = 10_000;
/// Largest integer Go's `float64` holds exactly.
const MAX_EXACT: u64 = 1 << 53;

/// A signature method as Notary writes it (lower-cased, as Notary reads it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `ecdsa`: ECDSA P-256 with SHA-256, signature `r || s`.
    Ecdsa,
    /// `eddsa`: Ed25519.
    Eddsa,
    /// `rsapss`: RSASSA-PSS with SHA-256.
    RsaPss,
    /// Any other method (`rsapkcs1v15`, `pycrypto-pkcs#1 pss`, …): never counted.
    Other(String),
}

impl Method {
    /// Reads a method name, case-insensitively as Notary does.
    pub fn from_name(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "ecdsa" => Self::Ecdsa,
            "eddsa" => Self::Eddsa,
            "rsapss" => Self::RsaPss,
            other => Self::Other(other.chars().take(64).collect()),
        }
    }

    /// The method's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Ecdsa => "ecdsa",
            Self::Eddsa => "eddsa",
            Self::RsaPss => "rsapss",
            Self::Other(s) => s,
        }
    }
}

/// One signature of an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The key id it claims.
    pub keyid: String,
    /// How it was made.
    pub method: Method,
    /// The signature bytes (decoded from base64).
    pub sig: Vec<u8>,
}

/// A parsed envelope: the signatures and the exact bytes they are over.
#[derive(Clone, Debug)]
pub struct Signed {
    /// The `signed` object.
    pub signed: Map,
    /// The canonical JSON of `signed`: the bytes Notary signs and verifies.
    pub signed_bytes: Vec<u8>,
    /// The signatures, in document order.
    pub signatures: Vec<Signature>,
}

impl Signed {
    /// Parses an envelope; `role` names it in errors.
    pub fn parse(role: &str, bytes: &[u8]) -> Result<Self, NotaryError> {
        let value = parse(bytes).map_err(|source| NotaryError::Json {
            role: role.to_owned(),
            source,
        })?;
        let Value::Object(mut top) = value else {
            return Err(malformed(role, "the document is not a JSON object"));
        };
        only_fields(&top, &["signed", "signatures"], role)?;
        let [signed, signatures] = top.take_many(["signed", "signatures"]);
        let Some(Value::Object(signed)) = signed else {
            return Err(malformed(role, "`signed` is missing or not an object"));
        };
        let signed_value = Value::Object(signed);
        check_exact_numbers(role, &signed_value)?;
        let signed_bytes = canonical(&signed_value);
        let Value::Object(signed) = signed_value else {
            return Err(malformed(role, "`signed` is not an object"));
        };
        let signatures = match signatures {
            Some(Value::Array(list)) => list,
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err(malformed(role, "`signatures` is not a list")),
        };
        if signatures.len() > MAX_SIGNATURES {
            return Err(NotaryError::TooMany {
                role: role.to_owned(),
                what: "signatures",
                max: MAX_SIGNATURES,
            });
        }
        let mut sigs = Vec::with_capacity(signatures.len());
        for s in &signatures {
            let obj = s
                .as_object()
                .ok_or_else(|| malformed(role, "a signature is not an object"))?;
            only_fields(obj, &["keyid", "method", "sig"], role)?;
            let keyid = str_field(obj, "keyid", role)?.to_owned();
            let method = Method::from_name(str_field(obj, "method", role)?);
            let sig = Base64::decode_vec(str_field(obj, "sig", role)?)
                .map_err(|e| malformed(role, &format!("a signature is not base64: {e}")))?;
            sigs.push(Signature { keyid, method, sig });
        }
        Ok(Self {
            signed,
            signed_bytes,
            signatures: sigs,
        })
    }
}

/// `_type`, `expires` and `version`, which every role has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Common {
    /// `expires`.
    pub expires: Expires,
    /// `version` (at least 1).
    pub version: u64,
}

/// Keys and threshold of a role (in root's `roles`, or a delegation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleKeys {
    /// The key ids (each listed in the document's keys).
    pub keyids: Vec<String>,
    /// How many distinct keys must sign (at least 1).
    pub threshold: u64,
}

/// A Notary root role.
#[derive(Clone, Debug)]
pub struct Root {
    /// Type, expiry, version.
    pub common: Common,
    /// Keys by (checked) key id.
    pub keys: BTreeMap<String, NotaryKey>,
    /// `root`, `targets`, `snapshot` and `timestamp`, all present.
    pub roles: BTreeMap<String, RoleKeys>,
    /// `consistent_snapshot` (Notary ignores it).
    pub consistent_snapshot: bool,
}

/// Length, hashes and custom data of a file (a target, or a metadata file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    /// Length in bytes.
    pub length: u64,
    /// SHA-256, when given.
    pub sha256: Option<[u8; 32]>,
    /// SHA-512, when given.
    pub sha512: Option<Vec<u8>>,
    /// `custom`, when given.
    pub custom: Option<Value>,
}

impl FileMeta {
    /// Checks `bytes` against the length and every known hash (at least one must be given).
    pub fn check(&self, role: &str, bytes: &[u8]) -> Result<(), NotaryError> {
        if bytes.len() as u64 != self.length {
            return Err(NotaryError::LengthMismatch {
                role: role.to_owned(),
                expected: self.length,
                found: bytes.len() as u64,
            });
        }
        if self.sha256.is_none() && self.sha512.is_none() {
            return Err(malformed(role, "no sha256 or sha512 hash is given for it"));
        }
        if let Some(h) = &self.sha256 {
            if ring::digest::digest(&ring::digest::SHA256, bytes).as_ref() != h {
                return Err(NotaryError::HashMismatch {
                    role: role.to_owned(),
                    algorithm: "sha256",
                });
            }
        }
        if let Some(h) = &self.sha512 {
            if ring::digest::digest(&ring::digest::SHA512, bytes).as_ref() != h.as_slice() {
                return Err(NotaryError::HashMismatch {
                    role: role.to_owned(),
                    algorithm: "sha512",
                });
            }
        }
        Ok(())
    }

    /// The SHA-256 as lowercase hex.
    pub fn sha256_hex(&self) -> Option<String> {
        self.sha256.map(crate::hex::encode)
    }
}

/// A delegation from a targets role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delegation {
    /// The delegated role: a direct child of the delegating role (`targets/releases`).
    pub name: String,
    /// Its keys and threshold.
    pub keys: RoleKeys,
    /// Path prefixes (`""` matches every target).
    pub paths: Vec<String>,
}

/// A Notary targets role (`targets` or a delegated `targets/…`).
#[derive(Clone, Debug)]
pub struct Targets {
    /// Type, expiry, version.
    pub common: Common,
    /// Targets by name.
    pub targets: BTreeMap<String, FileMeta>,
    /// Delegation keys by (checked) key id.
    pub delegation_keys: BTreeMap<String, NotaryKey>,
    /// Delegations, in document order.
    pub delegations: Vec<Delegation>,
}

/// A Notary snapshot role.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Type, expiry, version.
    pub common: Common,
    /// Metadata files by role name (`root`, `targets`, `targets/releases`).
    pub meta: BTreeMap<String, FileMeta>,
}

/// A Notary timestamp role.
#[derive(Clone, Debug)]
pub struct Timestamp {
    /// Type, expiry, version.
    pub common: Common,
    /// The snapshot's length and hashes.
    pub snapshot: FileMeta,
}

impl Root {
    /// Parses and checks a root role's `signed` object.
    pub fn from_signed(signed: &Map) -> Result<Self, NotaryError> {
        let role = "root";
        only_fields(
            signed,
            &[
                "_type",
                "expires",
                "version",
                "keys",
                "roles",
                "consistent_snapshot",
            ],
            role,
        )?;
        let common = common(signed, role, "Root")?;
        let keys = parse_keys(signed.get("keys"), role)?;
        let roles_obj = signed
            .get("roles")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed(role, "`roles` is missing or not an object"))?;
        let mut roles = BTreeMap::new();
        for (name, spec) in roles_obj {
            if !["root", "targets", "snapshot", "timestamp"].contains(&name.as_str()) {
                return Err(malformed(
                    role,
                    &format!("unknown role {name:?} in `roles`"),
                ));
            }
            let obj = spec
                .as_object()
                .ok_or_else(|| malformed(role, &format!("role {name} is not an object")))?;
            only_fields(obj, &["keyids", "threshold"], role)?;
            roles.insert(name.clone(), role_keys(obj, role, name, &keys)?);
        }
        for name in ["root", "targets", "snapshot", "timestamp"] {
            if !roles.contains_key(name) {
                return Err(malformed(
                    role,
                    &format!("missing {name} role specification"),
                ));
            }
        }
        let consistent_snapshot = match signed.get("consistent_snapshot") {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| malformed(role, "`consistent_snapshot` is not a boolean"))?,
        };
        Ok(Self {
            common,
            keys,
            roles,
            consistent_snapshot,
        })
    }

    /// The keys and threshold of a top-level role.
    pub fn role(&self, name: &str) -> Option<&RoleKeys> {
        self.roles.get(name)
    }
}

impl Targets {
    /// Parses and checks a targets role's `signed` object; `role` is its name (`targets` or
    /// a valid delegated name), which delegations must be direct children of.
    pub fn from_signed(signed: &Map, role: &str) -> Result<Self, NotaryError> {
        if role != "targets" && !is_delegation_name(role) {
            return Err(NotaryError::BadRoleName {
                name: role.chars().take(300).collect(),
            });
        }
        only_fields(
            signed,
            &["_type", "expires", "version", "targets", "delegations"],
            role,
        )?;
        let common = common(signed, role, "Targets")?;
        let targets_obj = match signed.get("targets") {
            Some(Value::Object(m)) => Some(m),
            Some(Value::Null) | None => None,
            Some(_) => return Err(malformed(role, "`targets` is not an object")),
        };
        let mut targets = BTreeMap::new();
        if let Some(m) = targets_obj {
            if m.len() > MAX_TARGETS {
                return Err(NotaryError::TooMany {
                    role: role.to_owned(),
                    what: "targets",
                    max: MAX_TARGETS,
                });
            }
            for (name, v) in m {
                targets.insert(name.clone(), file_meta(v, role, name)?);
            }
        }
        let (delegation_keys, delegations) = match signed.get("delegations") {
            None | Some(Value::Null) => (BTreeMap::new(), Vec::new()),
            Some(Value::Object(d)) => {
                only_fields(d, &["keys", "roles"], role)?;
                let keys = parse_keys(d.get("keys"), role)?;
                let list = match d.get("roles") {
                    None | Some(Value::Null) => &[][..],
                    Some(Value::Array(a)) => a.as_slice(),
                    Some(_) => return Err(malformed(role, "`delegations.roles` is not a list")),
                };
                if list.len() > MAX_DELEGATIONS {
                    return Err(NotaryError::TooMany {
                        role: role.to_owned(),
                        what: "delegations",
                        max: MAX_DELEGATIONS,
                    });
                }
                let mut out: Vec<Delegation> = Vec::with_capacity(list.len());
                for r in list {
                    let obj = r
                        .as_object()
                        .ok_or_else(|| malformed(role, "a delegation is not an object"))?;
                    only_fields(obj, &["name", "keyids", "threshold", "paths"], role)?;
                    let name = str_field(obj, "name", role)?;
                    if !is_delegation_name(name) || parent_of(name) != role {
                        return Err(malformed(
                            role,
                            &format!(
                                "delegation role {name:?} is not a valid direct child of {role}"
                            ),
                        ));
                    }
                    if out.iter().any(|d| d.name == name) {
                        return Err(malformed(
                            role,
                            &format!("delegation {name} is listed twice"),
                        ));
                    }
                    let keys_of = role_keys(obj, role, name, &keys)?;
                    let paths = match obj.get("paths") {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Array(a)) => {
                            if a.len() > MAX_PATHS {
                                return Err(NotaryError::TooMany {
                                    role: role.to_owned(),
                                    what: "paths of one delegation",
                                    max: MAX_PATHS,
                                });
                            }
                            a.iter()
                                .map(|p| {
                                    p.as_str().map(str::to_owned).ok_or_else(|| {
                                        malformed(
                                            role,
                                            &format!("a path of {name} is not a string"),
                                        )
                                    })
                                })
                                .collect::<Result<_, _>>()?
                        }
                        Some(_) => {
                            return Err(malformed(role, &format!("paths of {name} is not a list")))
                        }
                    };
                    out.push(Delegation {
                        name: name.to_owned(),
                        keys: keys_of,
                        paths,
                    });
                }
                (keys, out)
            }
            Some(_) => return Err(malformed(role, "`delegations` is not an object")),
        };
        Ok(Self {
            common,
            targets,
            delegation_keys,
            delegations,
        })
    }
}

impl Snapshot {
    /// Parses and checks a snapshot role's `signed` object: `meta` must give sha256 hashes
    /// for `root` and `targets`.
    pub fn from_signed(signed: &Map) -> Result<Self, NotaryError> {
        let role = "snapshot";
        only_fields(signed, &["_type", "expires", "version", "meta"], role)?;
        let common = common(signed, role, "Snapshot")?;
        let meta = parse_meta(signed, role)?;
        for name in ["root", "targets"] {
            if meta.get(name).and_then(|m| m.sha256).is_none() {
                return Err(malformed(
                    role,
                    &format!("missing {name} sha256 checksum information"),
                ));
            }
        }
        Ok(Self { common, meta })
    }
}

impl Timestamp {
    /// Parses and checks a timestamp role's `signed` object: `meta` must give the
    /// snapshot's sha256 hash.
    pub fn from_signed(signed: &Map) -> Result<Self, NotaryError> {
        let role = "timestamp";
        only_fields(signed, &["_type", "expires", "version", "meta"], role)?;
        let common = common(signed, role, "Timestamp")?;
        let mut meta = parse_meta(signed, role)?;
        let snapshot = meta
            .remove("snapshot")
            .filter(|m| m.sha256.is_some())
            .ok_or_else(|| malformed(role, "missing snapshot sha256 checksum information"))?;
        Ok(Self { common, snapshot })
    }
}

/// True for a valid Notary delegated role name: `targets/` followed by characters from
/// `[-a-z0-9_/]`, fewer than 256 characters, with no empty, `.` or `..` segment and no
/// trailing slash.
///
/// ```
/// use vouch_tuf::notary::is_delegation_name;
/// assert!(is_delegation_name("targets/releases"));
/// assert!(!is_delegation_name("targets/Releases"));
/// assert!(!is_delegation_name("targets/a//b"));
/// assert!(!is_delegation_name("targets"));
/// ```
pub fn is_delegation_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("targets/") else {
        return false;
    };
    name.len() < 256
        && name
            .bytes()
            .all(|c| matches!(c, b'-' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'/'))
        && rest
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// A set of Notary delegation path prefixes, asked whether a name falls under one of them.
///
/// Notary's rule is plain prefix matching (`""` matches everything). Asking each of `m`
/// prefixes about each of `n` names costs `n × m` comparisons, and both counts are chosen by
/// whoever signs the delegation; here the prefixes are kept sorted with every prefix that
/// another one already covers dropped, so that only one candidate — the greatest prefix not
/// above the name — needs checking: `O(log m)` comparisons per name.
///
/// ```
/// use vouch_tuf::notary::PathPrefixes;
/// let p = PathPrefixes::new(["v1", "v1.2", "rel-"]);
/// assert!(p.matches("v1.2.0") && p.matches("rel-7") && !p.matches("v2"));
/// assert!(PathPrefixes::new([""]).matches("anything"));
/// assert!(!PathPrefixes::new(Vec::<&str>::new()).matches("v1"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathPrefixes {
    /// Sorted, and no entry is a prefix of another.
    minimal: Vec<String>,
}

impl PathPrefixes {
    /// The set of `prefixes`.
    pub fn new<'a>(prefixes: impl IntoIterator<Item = &'a str>) -> Self {
        let mut sorted: Vec<&str> = prefixes.into_iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut minimal: Vec<String> = Vec::with_capacity(sorted.len());
        for p in sorted {
            // In sorted order, a kept prefix of `p` can only be the last one kept.
            if !minimal
                .last()
                .is_some_and(|last| p.starts_with(last.as_str()))
            {
                minimal.push(p.to_owned());
            }
        }
        Self { minimal }
    }

    /// True when `name` starts with one of the prefixes.
    pub fn matches(&self, name: &str) -> bool {
        // A prefix of `name` is not above it, and any entry between that prefix and `name`
        // would start with it too, which `minimal` rules out: so it is the greatest entry
        // not above `name`.
        let below = self.minimal.partition_point(|p| p.as_str() <= name);
        below
            .checked_sub(1)
            .and_then(|i| self.minimal.get(i))
            .is_some_and(|p| name.starts_with(p.as_str()))
    }
}

/// The delegating role of a delegated role name (`targets/a/b` → `targets/a`).
pub fn parent_of(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(parent, _)| parent)
}

/// Refuses any member of `obj` not named in `allowed`.
pub(super) fn only_fields(obj: &Map, allowed: &[&str], role: &str) -> Result<(), NotaryError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(field) => Err(NotaryError::UnknownField {
            role: role.to_owned(),
            field: field.chars().take(80).collect(),
        }),
        None => Ok(()),
    }
}

fn malformed(role: &str, reason: &str) -> NotaryError {
    NotaryError::Malformed {
        role: role.to_owned(),
        reason: reason.to_owned(),
    }
}

fn str_field<'a>(obj: &'a Map, field: &str, role: &str) -> Result<&'a str, NotaryError> {
    obj.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(role, &format!("`{field}` is missing or not a string")))
}

fn uint_field(obj: &Map, field: &str, role: &str) -> Result<u64, NotaryError> {
    obj.get(field).and_then(Value::as_u64).ok_or_else(|| {
        malformed(
            role,
            &format!("`{field}` is missing or not a non-negative integer"),
        )
    })
}

/// Refuses integers that Go's `float64` would not carry exactly (beyond ±2^53).
fn check_exact_numbers(role: &str, v: &Value) -> Result<(), NotaryError> {
    // An explicit stack: depth is already bounded by the parser, but recursion is avoided.
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Int(i) => {
                let exact = match (i.as_u64(), i.as_i64()) {
                    (Some(u), _) => u <= MAX_EXACT,
                    (None, Some(s)) => s.unsigned_abs() <= MAX_EXACT,
                    (None, None) => false,
                };
                if !exact {
                    return Err(NotaryError::InexactNumber {
                        role: role.to_owned(),
                        number: i.to_string().chars().take(40).collect(),
                    });
                }
            }
            Value::Array(a) => stack.extend(a.iter()),
            Value::Object(m) => stack.extend(m.values()),
            _ => {}
        }
    }
    Ok(())
}

fn common(signed: &Map, role: &str, expected_type: &'static str) -> Result<Common, NotaryError> {
    let found = str_field(signed, "_type", role)?;
    if found != expected_type {
        return Err(NotaryError::WrongType {
            role: role.to_owned(),
            expected: expected_type,
            found: found.chars().take(40).collect(),
        });
    }
    let version = uint_field(signed, "version", role)?;
    if version < 1 {
        return Err(malformed(role, "version cannot be less than 1"));
    }
    let expires = parse_expires(str_field(signed, "expires", role)?)?;
    Ok(Common { expires, version })
}

fn parse_keys(v: Option<&Value>, role: &str) -> Result<BTreeMap<String, NotaryKey>, NotaryError> {
    let obj = match v {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(malformed(role, "`keys` is not an object")),
    };
    if obj.len() > MAX_KEYS {
        return Err(NotaryError::TooMany {
            role: role.to_owned(),
            what: "keys",
            max: MAX_KEYS,
        });
    }
    obj.iter()
        .map(|(id, k)| Ok((id.clone(), NotaryKey::parse(id, k)?)))
        .collect()
}

fn role_keys(
    obj: &Map,
    role: &str,
    name: &str,
    keys: &BTreeMap<String, NotaryKey>,
) -> Result<RoleKeys, NotaryError> {
    let threshold = uint_field(obj, "threshold", role)?;
    if threshold < 1 {
        return Err(malformed(
            role,
            &format!("invalid threshold {threshold} for {name}"),
        ));
    }
    let list = match obj.get("keyids") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(malformed(role, &format!("keyids of {name} is not a list"))),
    };
    if list.len() > MAX_KEYIDS {
        return Err(NotaryError::TooMany {
            role: role.to_owned(),
            what: "key ids of one role",
            max: MAX_KEYIDS,
        });
    }
    let mut keyids = Vec::with_capacity(list.len());
    for k in list {
        let id = k
            .as_str()
            .ok_or_else(|| malformed(role, &format!("a key id of {name} is not a string")))?;
        if !keys.contains_key(id) {
            return Err(malformed(
                role,
                &format!("key ID {id} specified in {name} without corresponding key"),
            ));
        }
        if !keyids.iter().any(|k: &String| k == id) {
            keyids.push(id.to_owned());
        }
    }
    Ok(RoleKeys { keyids, threshold })
}

fn parse_meta(signed: &Map, role: &str) -> Result<BTreeMap<String, FileMeta>, NotaryError> {
    let obj = signed
        .get("meta")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed(role, "`meta` is missing or not an object"))?;
    if obj.len() > MAX_META {
        return Err(NotaryError::TooMany {
            role: role.to_owned(),
            what: "meta entries",
            max: MAX_META,
        });
    }
    obj.iter()
        .map(|(name, v)| Ok((name.clone(), file_meta(v, role, name)?)))
        .collect()
}

fn file_meta(v: &Value, role: &str, name: &str) -> Result<FileMeta, NotaryError> {
    let obj = v
        .as_object()
        .ok_or_else(|| malformed(role, &format!("entry {name:?} is not an object")))?;
    only_fields(obj, &["length", "hashes", "custom"], role)?;
    let length = uint_field(obj, "length", role)?;
    let hashes = obj
        .get("hashes")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed(role, &format!("hashes of {name:?} are missing")))?;
    if hashes.len() > 8 {
        return Err(malformed(role, &format!("too many hashes for {name:?}")));
    }
    let decode = |alg: &str, len: usize| -> Result<Option<Vec<u8>>, NotaryError> {
        let Some(h) = hashes.get(alg) else {
            return Ok(None);
        };
        let bytes = h
            .as_str()
            .and_then(|s| Base64::decode_vec(s).ok())
            .ok_or_else(|| malformed(role, &format!("{alg} of {name:?} is not base64")))?;
        if bytes.len() != len {
            return Err(malformed(
                role,
                &format!("{alg} of {name:?} has {} bytes, not {len}", bytes.len()),
            ));
        }
        Ok(Some(bytes))
    };
    let sha256 = decode("sha256", 32)?.map(|b| {
        let mut out = [0u8; 32];
        out.copy_from_slice(&b);
        out
    });
    let sha512 = decode("sha512", 64)?;
    if sha256.is_none() && sha512.is_none() {
        return Err(malformed(
            role,
            &format!("{name:?} has no sha256 or sha512 hash"),
        ));
    }
    let custom = match obj.get("custom") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.clone()),
    };
    Ok(FileMeta {
        length,
        sha256,
        sha512,
        custom,
    })
}
