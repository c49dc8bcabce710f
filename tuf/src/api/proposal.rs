//! Staged proposals (threshold signing by several people), as they travel: the document the
//! server answers with for a proposal, the list of a repository's proposals, and the
//! signatures an approver adds.
//!
//! A proposal is an update of one or more roles whose signatures do not yet meet every
//! threshold. The server keeps it pending (never served to TUF clients), other key holders
//! add signatures, and the server publishes it, exactly like a direct publish, once every
//! threshold is met. Which thresholds a role must meet is [`ProposedRole::quorum`]: one entry
//! for targets and delegated roles, two for a new root (the current root's root keys and
//! its own).
//!
//! The same [`Proposal`] document is the file `vouch proposals export` writes for an
//! air-gapped approver, with [`ProposedRole::current`] filled by the exporting client.
//!
//! ```
//! use vouch_tuf::api::proposal::{Proposal, ProposalStatus};
//! let doc = br#"{"id":7,"gun":"example.com/app","status":"pending","proposed_by":"token:alice",
//!   "created_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-08T00:00:00Z","roles":[],"approvals":[]}"#;
//! let p = Proposal::decode(doc).unwrap();
//! assert_eq!((p.id, p.status), (7, ProposalStatus::Pending));
//! assert_eq!(Proposal::decode(&p.encode()).unwrap(), p);
//! ```

use std::collections::BTreeMap;

use thiserror::Error;

use crate::json::{self, Map, Value};
use crate::metadata::Signature;
use crate::time::Timestamp;
use crate::types::KeyId;

/// Where a proposal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProposalStatus {
    /// Waiting for signatures.
    Pending,
    /// Every threshold was met and the update was published.
    Published,
    /// Withdrawn before it was published.
    Withdrawn,
    /// A role it changes was published again after it was proposed: it can no longer be
    /// signed or published (see [`Proposal::reason`]).
    Stale,
    /// Older than the server's proposal lifetime.
    Expired,
}

impl ProposalStatus {
    /// `pending`, `published`, `withdrawn`, `stale` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Pending => "pending",
            ProposalStatus::Published => "published",
            ProposalStatus::Withdrawn => "withdrawn",
            ProposalStatus::Stale => "stale",
            ProposalStatus::Expired => "expired",
        }
    }

    /// The status named `s`.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => ProposalStatus::Pending,
            "published" => ProposalStatus::Published,
            "withdrawn" => ProposalStatus::Withdrawn,
            "stale" => ProposalStatus::Stale,
            "expired" => ProposalStatus::Expired,
            _ => return None,
        })
    }

    /// True while signatures may still be added.
    pub fn is_open(self) -> bool {
        self == ProposalStatus::Pending
    }
}

impl std::fmt::Display for ProposalStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One proposal.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    /// Its number, unique on the server.
    pub id: u64,
    /// The repository.
    pub gun: String,
    /// Where it stands.
    pub status: ProposalStatus,
    /// Why it is stale or expired, or why it cannot be published, for people.
    pub reason: Option<String>,
    /// Who proposed it: the server's name for the credential (`token:NAME`, `jwt:SUBJECT`).
    pub proposed_by: String,
    /// When it was proposed.
    pub created_at: Timestamp,
    /// When it expires unless published first.
    pub expires_at: Timestamp,
    /// When it was published or withdrawn.
    pub closed_at: Option<Timestamp>,
    /// Who published (added the last signature) or withdrew it.
    pub closed_by: Option<String>,
    /// The changefeed entry of its publish.
    pub change_id: Option<i64>,
    /// The roles it changes, in the order proposed.
    pub roles: Vec<ProposedRole>,
    /// Every signature added, in order: the audit trail.
    pub approvals: Vec<Approval>,
}

/// One role of a proposal.
#[derive(Clone, Debug, PartialEq)]
pub struct ProposedRole {
    /// The role name.
    pub role: String,
    /// The version proposed.
    pub version: u64,
    /// The role's version on the server when it was proposed (`None`: the role was new).
    pub base_version: Option<u64>,
    /// The proposed metadata envelope with every signature so far; omitted in lists.
    pub metadata: Option<Value>,
    /// The envelope of the role's version the proposal replaces, as the exporting client
    /// verified it; only in exported files, for an approver with no network.
    pub current: Option<Value>,
    /// The thresholds the role must meet before the proposal is published.
    pub quorum: Vec<Quorum>,
}

/// One threshold a proposed role must meet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quorum {
    /// Whose keys count, for people: `root version 3`, `targets version 8`, `the proposed root`.
    pub by: String,
    /// How many distinct keys must sign.
    pub threshold: u32,
    /// The key ids that count.
    pub keyids: Vec<String>,
    /// Those of them whose signature is present and valid.
    pub signed: Vec<String>,
}

impl Quorum {
    /// True when enough keys signed.
    pub fn is_met(&self) -> bool {
        self.signed.len() >= self.threshold as usize
    }

    /// Signatures still needed.
    pub fn missing(&self) -> usize {
        (self.threshold as usize).saturating_sub(self.signed.len())
    }
}

/// One signature added to a proposal, and by whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// The role signed.
    pub role: String,
    /// The key that signed.
    pub keyid: String,
    /// Who sent it (the server's name for the credential).
    pub by: String,
    /// When.
    pub at: Timestamp,
}

/// The signatures an approver adds: per role, the signatures over the proposed `signed`.
/// Sent as `{"signatures":{"root":[{"keyid":"…","sig":"…"}]}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signatures {
    /// Role name to the signatures added to it.
    pub roles: BTreeMap<String, Vec<Signature>>,
}

/// A document that is not a proposal (or list, or signature set) of this shape.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("not a vouch proposal document: {0}")]
pub struct ProposalError(pub String);

fn err(m: impl Into<String>) -> ProposalError {
    ProposalError(m.into())
}

/// Most proposals one list holds.
pub const MAX_LISTED: usize = 100;
/// Most roles one proposal changes (and one signature submission names).
pub const MAX_ROLES: usize = 64;

fn object<'v>(v: &'v Value, what: &str) -> Result<&'v Map, ProposalError> {
    v.as_object()
        .ok_or_else(|| err(format!("{what} is not an object")))
}

fn text(m: &Map, key: &str) -> Result<String, ProposalError> {
    m.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| err(format!("\"{key}\" is missing or not text")))
}

fn opt_text(m: &Map, key: &str) -> Result<Option<String>, ProposalError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .map(|s| Some(s.to_owned()))
            .ok_or_else(|| err(format!("\"{key}\" is not text"))),
    }
}

fn number(m: &Map, key: &str) -> Result<u64, ProposalError> {
    m.get(key).and_then(Value::as_u64).ok_or_else(|| {
        err(format!(
            "\"{key}\" is missing or not a non-negative integer"
        ))
    })
}

fn opt_number(m: &Map, key: &str) -> Result<Option<u64>, ProposalError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| err(format!("\"{key}\" is not a non-negative integer"))),
    }
}

fn time(m: &Map, key: &str) -> Result<Timestamp, ProposalError> {
    Timestamp::parse(&text(m, key)?).map_err(|e| err(format!("\"{key}\": {e}")))
}

fn opt_time(m: &Map, key: &str) -> Result<Option<Timestamp>, ProposalError> {
    opt_text(m, key)?
        .map(|s| Timestamp::parse(&s).map_err(|e| err(format!("\"{key}\": {e}"))))
        .transpose()
}

fn array<'v>(m: &'v Map, key: &str, max: usize) -> Result<&'v [Value], ProposalError> {
    let a = m
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| err(format!("\"{key}\" is missing or not an array")))?;
    if a.len() > max {
        return Err(err(format!(
            "\"{key}\" has {} entries, at most {max} are accepted",
            a.len()
        )));
    }
    Ok(a)
}

fn texts(m: &Map, key: &str) -> Result<Vec<String>, ProposalError> {
    array(m, key, crate::metadata::MAX_ROLE_KEYS)?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| err(format!("\"{key}\" holds something other than text")))
        })
        .collect()
}

fn put(m: &mut Map, key: &str, v: impl Into<Value>) {
    m.insert(key.to_owned(), v.into());
}

fn put_opt(m: &mut Map, key: &str, v: Option<impl Into<Value>>) {
    if let Some(v) = v {
        put(m, key, v);
    }
}

fn strings(v: &[String]) -> Value {
    Value::from(
        v.iter()
            .map(|s| Value::from(s.as_str()))
            .collect::<Vec<_>>(),
    )
}

/// Most approvals one proposal's audit trail holds: every role's signatures, at most.
const MAX_APPROVALS: usize = MAX_ROLES * crate::metadata::MAX_SIGNATURES;

impl Proposal {
    /// The document as compact JSON.
    pub fn encode(&self) -> Vec<u8> {
        json::to_json(&self.to_value())
    }

    /// The document as a JSON value.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "id", self.id);
        put(&mut m, "gun", self.gun.as_str());
        put(&mut m, "status", self.status.as_str());
        put_opt(&mut m, "reason", self.reason.as_deref());
        put(&mut m, "proposed_by", self.proposed_by.as_str());
        put(&mut m, "created_at", self.created_at.to_string());
        put(&mut m, "expires_at", self.expires_at.to_string());
        put_opt(&mut m, "closed_at", self.closed_at.map(|t| t.to_string()));
        put_opt(&mut m, "closed_by", self.closed_by.as_deref());
        if let Some(c) = self.change_id {
            m.insert("change_id".into(), Value::Int(c.into()));
        }
        let roles = self.roles.iter().map(ProposedRole::to_value).collect();
        put(&mut m, "roles", Value::Array(roles));
        let approvals = self.approvals.iter().map(Approval::to_value).collect();
        put(&mut m, "approvals", Value::Array(approvals));
        Value::Object(m)
    }

    /// Reads a proposal document.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProposalError> {
        let v = json::parse(bytes).map_err(|e| err(format!("not JSON: {e}")))?;
        Self::from_value(&v)
    }

    /// Reads a proposal document from a parsed value.
    pub fn from_value(v: &Value) -> Result<Self, ProposalError> {
        let m = object(v, "the proposal")?;
        let status = text(m, "status")?;
        let status = ProposalStatus::from_name(&status)
            .ok_or_else(|| err(format!("unknown status {status:?}")))?;
        let change_id = match m.get("change_id") {
            None | Some(Value::Null) => None,
            Some(Value::Int(i)) => Some(
                i.as_i64()
                    .ok_or_else(|| err("\"change_id\" is out of range"))?,
            ),
            Some(_) => return Err(err("\"change_id\" is not an integer")),
        };
        Ok(Proposal {
            id: number(m, "id")?,
            gun: text(m, "gun")?,
            status,
            reason: opt_text(m, "reason")?,
            proposed_by: text(m, "proposed_by")?,
            created_at: time(m, "created_at")?,
            expires_at: time(m, "expires_at")?,
            closed_at: opt_time(m, "closed_at")?,
            closed_by: opt_text(m, "closed_by")?,
            change_id,
            roles: array(m, "roles", MAX_ROLES)?
                .iter()
                .map(ProposedRole::from_value)
                .collect::<Result<_, _>>()?,
            approvals: array(m, "approvals", MAX_APPROVALS)?
                .iter()
                .map(Approval::from_value)
                .collect::<Result<_, _>>()?,
        })
    }

    /// The proposed role named `role`.
    pub fn role(&self, role: &str) -> Option<&ProposedRole> {
        self.roles.iter().find(|r| r.role == role)
    }

    /// Signatures still needed, over every role and threshold.
    pub fn missing(&self) -> usize {
        self.roles
            .iter()
            .flat_map(|r| &r.quorum)
            .map(Quorum::missing)
            .sum()
    }
}

impl ProposedRole {
    fn to_value(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "role", self.role.as_str());
        put(&mut m, "version", self.version);
        put_opt(&mut m, "base_version", self.base_version);
        if let Some(md) = &self.metadata {
            m.insert("metadata".into(), md.clone());
        }
        if let Some(md) = &self.current {
            m.insert("current".into(), md.clone());
        }
        let quorum = self.quorum.iter().map(Quorum::to_value).collect();
        put(&mut m, "quorum", Value::Array(quorum));
        Value::Object(m)
    }

    fn from_value(v: &Value) -> Result<Self, ProposalError> {
        let m = object(v, "a proposed role")?;
        let envelope = |key: &str| -> Result<Option<Value>, ProposalError> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
                Some(_) => Err(err(format!("\"{key}\" is not a metadata envelope"))),
            }
        };
        Ok(ProposedRole {
            role: text(m, "role")?,
            version: number(m, "version")?,
            base_version: opt_number(m, "base_version")?,
            metadata: envelope("metadata")?,
            current: envelope("current")?,
            quorum: array(m, "quorum", 2)?
                .iter()
                .map(Quorum::from_value)
                .collect::<Result<_, _>>()?,
        })
    }

    /// The thresholds still unmet.
    pub fn is_complete(&self) -> bool {
        self.quorum.iter().all(Quorum::is_met)
    }
}

impl Quorum {
    /// The quorum as a JSON value.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "by", self.by.as_str());
        put(&mut m, "threshold", self.threshold);
        put(&mut m, "keyids", strings(&self.keyids));
        put(&mut m, "signed", strings(&self.signed));
        Value::Object(m)
    }

    /// Reads a quorum.
    pub fn from_value(v: &Value) -> Result<Self, ProposalError> {
        let m = object(v, "a quorum")?;
        let threshold = number(m, "threshold")?;
        Ok(Quorum {
            by: text(m, "by")?,
            threshold: u32::try_from(threshold).map_err(|_| err("\"threshold\" is too large"))?,
            keyids: texts(m, "keyids")?,
            signed: texts(m, "signed")?,
        })
    }
}

impl Approval {
    /// The approval as a JSON value.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "role", self.role.as_str());
        put(&mut m, "keyid", self.keyid.as_str());
        put(&mut m, "by", self.by.as_str());
        put(&mut m, "at", self.at.to_string());
        Value::Object(m)
    }

    /// Reads an approval.
    pub fn from_value(v: &Value) -> Result<Self, ProposalError> {
        let m = object(v, "an approval")?;
        Ok(Approval {
            role: text(m, "role")?,
            keyid: text(m, "keyid")?,
            by: text(m, "by")?,
            at: time(m, "at")?,
        })
    }
}

/// Encodes a list of proposals: `{"proposals":[…]}`.
pub fn encode_list(proposals: &[Proposal]) -> Vec<u8> {
    let items = proposals.iter().map(Proposal::to_value).collect();
    let mut m = Map::new();
    put(&mut m, "proposals", Value::Array(items));
    json::to_json(&Value::Object(m))
}

/// Reads a list of proposals (at most [`MAX_LISTED`]).
pub fn decode_list(bytes: &[u8]) -> Result<Vec<Proposal>, ProposalError> {
    let v = json::parse(bytes).map_err(|e| err(format!("not JSON: {e}")))?;
    let m = object(&v, "the list")?;
    array(m, "proposals", MAX_LISTED)?
        .iter()
        .map(Proposal::from_value)
        .collect()
}

impl Signatures {
    /// The submission as compact JSON.
    pub fn encode(&self) -> Vec<u8> {
        let mut roles = Map::new();
        for (role, sigs) in &self.roles {
            let list = sigs
                .iter()
                .map(|s| {
                    let mut o = Map::new();
                    put(&mut o, "keyid", s.keyid.as_str());
                    put(&mut o, "sig", s.sig.as_str());
                    Value::Object(o)
                })
                .collect();
            roles.insert(role.clone(), Value::Array(list));
        }
        let mut m = Map::new();
        put(&mut m, "signatures", Value::Object(roles));
        json::to_json(&Value::Object(m))
    }

    /// Reads a submission: at most [`MAX_ROLES`] roles, each with at most
    /// [`MAX_SIGNATURES`](crate::metadata::MAX_SIGNATURES) signatures, key ids well-formed.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProposalError> {
        let v = json::parse(bytes).map_err(|e| err(format!("not JSON: {e}")))?;
        let m = object(&v, "the body")?;
        let roles = m
            .get("signatures")
            .and_then(Value::as_object)
            .ok_or_else(|| err("\"signatures\" is missing or not an object"))?;
        if roles.len() > MAX_ROLES {
            return Err(err(format!(
                "signatures for {} roles, at most {MAX_ROLES} are accepted",
                roles.len()
            )));
        }
        let mut out = BTreeMap::new();
        for (role, list) in roles.iter() {
            let list = list
                .as_array()
                .ok_or_else(|| err(format!("the signatures of {role} are not an array")))?;
            if list.len() > crate::metadata::MAX_SIGNATURES {
                return Err(err(format!(
                    "{} signatures for {role}, at most {} are accepted",
                    list.len(),
                    crate::metadata::MAX_SIGNATURES
                )));
            }
            let sigs = list
                .iter()
                .map(|s| {
                    let o = object(s, "a signature")?;
                    let keyid = KeyId::new(text(o, "keyid")?)
                        .map_err(|e| err(format!("a signature of {role}: {e}")))?;
                    Ok(Signature {
                        keyid,
                        sig: text(o, "sig")?,
                        extra: Map::new(),
                    })
                })
                .collect::<Result<Vec<_>, ProposalError>>()?;
            out.insert(role.clone(), sigs);
        }
        Ok(Signatures { roles: out })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Proposal {
        Proposal {
            id: 3,
            gun: "example.com/org/app".into(),
            status: ProposalStatus::Published,
            reason: None,
            proposed_by: "token:alice".into(),
            created_at: Timestamp::from_unix(1_700_000_000),
            expires_at: Timestamp::from_unix(1_700_604_800),
            closed_at: Some(Timestamp::from_unix(1_700_000_100)),
            closed_by: Some("jwt:bob".into()),
            change_id: Some(42),
            roles: vec![ProposedRole {
                role: "root".into(),
                version: 4,
                base_version: Some(3),
                metadata: Some(json::parse(br#"{"signatures":[],"signed":{"a":1}}"#).unwrap()),
                current: None,
                quorum: vec![Quorum {
                    by: "root version 3".into(),
                    threshold: 2,
                    keyids: vec!["aa".into(), "bb".into(), "cc".into()],
                    signed: vec!["aa".into(), "bb".into()],
                }],
            }],
            approvals: vec![Approval {
                role: "root".into(),
                keyid: "bb".into(),
                by: "jwt:bob".into(),
                at: Timestamp::from_unix(1_700_000_100),
            }],
        }
    }

    #[test]
    fn a_proposal_round_trips() {
        let p = sample();
        assert_eq!(Proposal::decode(&p.encode()).unwrap(), p);
        assert_eq!(
            decode_list(&encode_list(&[p.clone(), p.clone()])).unwrap(),
            vec![p.clone(), p]
        );
    }

    #[test]
    fn quorum_counts_what_is_missing() {
        let mut p = sample();
        assert!(p.roles[0].is_complete());
        assert_eq!(p.missing(), 0);
        p.roles[0].quorum[0].signed.pop();
        assert!(!p.roles[0].is_complete());
        assert_eq!(p.missing(), 1);
    }

    #[test]
    fn malformed_documents_are_refused_with_the_field_named() {
        let e = Proposal::decode(br#"{"id":-1}"#).unwrap_err();
        assert!(e.to_string().contains("\"status\""), "{e}");
        let mut v = sample().to_value();
        if let Value::Object(m) = &mut v {
            m.insert("status".into(), Value::from("merged"));
        }
        let e = Proposal::from_value(&v).unwrap_err();
        assert!(e.to_string().contains("merged"), "{e}");
        assert!(Proposal::decode(b"[").is_err());
    }

    #[test]
    fn signatures_round_trip_and_are_bounded() {
        let keyid = KeyId::new("ab".repeat(32)).unwrap();
        let mut s = Signatures::default();
        s.roles.insert(
            "targets/prod".into(),
            vec![Signature {
                keyid,
                sig: "00ff".into(),
                extra: Map::new(),
            }],
        );
        assert_eq!(Signatures::decode(&s.encode()).unwrap(), s);
        let many: Vec<String> = (0..=crate::metadata::MAX_SIGNATURES)
            .map(|i| format!(r#"{{"keyid":"{:064x}","sig":"00"}}"#, i))
            .collect();
        let body = format!(r#"{{"signatures":{{"targets":[{}]}}}}"#, many.join(","));
        let e = Signatures::decode(body.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
        let e = Signatures::decode(br#"{"signatures":{"root":[{"keyid":"not hex!","sig":""}]}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("root"), "{e}");
    }
}
