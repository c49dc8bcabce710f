//! Staged proposals, the pure part: what the server keeps of a proposal (its body), when a
//! proposal has gone stale, adding signatures to its files, and the document clients read.
//!
//! The store keeps a proposal's body as opaque bytes; this module writes and reads them:
//! the proposed files exactly as they now stand (their envelopes with every signature
//! added so far), the version each role had on the server when it was proposed (its *base*),
//! the last tally of each role's thresholds, and the approvals (who added which signature,
//! when). No IO: [`crate::service`] loads, calls and stores.
//!
//! Rules kept here:
//! - a proposal is stale once the server holds a version of one of its roles other than
//!   the one it was made against ([`stale_reason`]): publishing it would silently undo
//!   that publish;
//! - a signature is added to a role only once per key id ([`Body::add_signatures`]); whether
//!   it is valid and by a key of the role is [`crate::validate::validate_proposal`]'s check,
//!   run on the result before anything is kept.

use vouch_tuf::api::proposal::{
    Approval, Proposal, ProposalStatus, ProposedRole, Quorum, Signatures, MAX_ROLES,
};
use vouch_tuf::json::{self, Map, Value};
use vouch_tuf::metadata::{Metadata, Role, Root, Snapshot, Targets};
use vouch_tuf::time::Timestamp;

use crate::store::{ProposalState, StoredProposal};
use crate::validate::{Check, Rejection, RepoState, Staged, Upload};

/// One proposed file as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedFile {
    /// The role.
    pub role: String,
    /// The version proposed.
    pub version: u64,
    /// The role's version on the server when proposed (`None`: it had none).
    pub base: Option<u64>,
    /// The envelope, with every signature so far.
    pub bytes: Vec<u8>,
    /// The last tally of its thresholds.
    pub quorum: Vec<Quorum>,
}

/// What the server keeps of a proposal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Body {
    /// The proposed files, in the order proposed.
    pub files: Vec<StagedFile>,
    /// The stored roles outside the proposal whose keys decide who may sign its roles (root,
    /// a delegating role), with their versions when it was made.
    pub context: Vec<(String, Option<u64>)>,
    /// Every signature added, in order.
    pub approvals: Vec<Approval>,
}

/// A stored body that cannot be read: the storage was corrupted or tampered with.
#[derive(Debug, thiserror::Error)]
#[error("stored proposal body: {0}")]
pub struct CorruptBody(String);

impl Body {
    /// The body of a new proposal of `uploads` against `state`, with `staged`'s tallies; every
    /// signature it already carries is recorded as an approval by `by` at `now`.
    pub fn new(
        state: &RepoState,
        uploads: &[Upload],
        staged: &Staged,
        by: &str,
        now: Timestamp,
    ) -> Result<Self, Rejection> {
        let mut body = Body::default();
        for u in uploads {
            let (version, signers) = envelope_facts(&u.role, &u.bytes)?;
            body.files.push(StagedFile {
                role: u.role.clone(),
                version,
                base: current_version(state, &u.role),
                bytes: u.bytes.clone(),
                quorum: staged
                    .role(&u.role)
                    .map(|r| r.quorum.clone())
                    .unwrap_or_default(),
            });
            body.approvals
                .extend(signers.into_iter().map(|keyid| Approval {
                    role: u.role.clone(),
                    keyid,
                    by: by.to_owned(),
                    at: now,
                }));
        }
        for r in &staged.roles {
            if let Some(decider) = &r.decided_by {
                if !body.context.iter().any(|(name, _)| name == decider) {
                    body.context
                        .push((decider.clone(), current_version(state, decider)));
                }
            }
        }
        Ok(body)
    }

    /// The files as uploads, for validation and publishing.
    pub fn uploads(&self) -> Vec<Upload> {
        self.files
            .iter()
            .map(|f| Upload {
                role: f.role.clone(),
                bytes: f.bytes.clone(),
            })
            .collect()
    }

    /// Adds `signatures` to the files they name, recording each as an approval by `by` at
    /// `now`. Refused, changing nothing, for a role the proposal does not change
    /// ([`AddError::UnknownRole`]) or a key that already signed the role
    /// ([`Check::Duplicate`]). Signatures are not checked here.
    pub fn add_signatures(
        &mut self,
        signatures: &Signatures,
        by: &str,
        now: Timestamp,
    ) -> Result<(), AddError> {
        if signatures.roles.values().all(Vec::is_empty) {
            return Err(AddError::Empty);
        }
        let mut files = self.files.clone();
        let mut approvals = Vec::new();
        for (role, sigs) in &signatures.roles {
            let file = files
                .iter_mut()
                .find(|f| &f.role == role)
                .ok_or_else(|| AddError::UnknownRole(role.clone()))?;
            file.bytes = with_signatures(role, &file.bytes, sigs)?;
            approvals.extend(sigs.iter().map(|s| Approval {
                role: role.clone(),
                keyid: s.keyid.as_str().to_owned(),
                by: by.to_owned(),
                at: now,
            }));
        }
        self.files = files;
        self.approvals.extend(approvals);
        Ok(())
    }

    /// Records `staged`'s tallies as each file's last.
    pub fn record(&mut self, staged: &Staged) {
        for f in &mut self.files {
            if let Some(r) = staged.role(&f.role) {
                f.quorum = r.quorum.clone();
            }
        }
    }

    /// The body as stored.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(true)
    }

    /// The summary stored beside the body, to list the proposal by: everything but the
    /// files' bytes, so its size does not grow with the metadata's.
    pub fn encode_summary(&self) -> Vec<u8> {
        self.encode_with(false)
    }

    fn encode_with(&self, with_bytes: bool) -> Vec<u8> {
        let files = self
            .files
            .iter()
            .map(|f| {
                let mut m = Map::new();
                m.insert("role".into(), Value::from(f.role.as_str()));
                m.insert("version".into(), Value::from(f.version));
                if let Some(b) = f.base {
                    m.insert("base".into(), Value::from(b));
                }
                // The envelope as text: exactly the bytes that will be published (metadata
                // is JSON, so UTF-8: anything else was refused when it was parsed).
                if with_bytes {
                    let text = String::from_utf8_lossy(&f.bytes).into_owned();
                    m.insert("bytes".into(), Value::from(text));
                }
                let quorum = f.quorum.iter().map(Quorum::to_value).collect();
                m.insert("quorum".into(), Value::Array(quorum));
                Value::Object(m)
            })
            .collect();
        let approvals = self.approvals.iter().map(Approval::to_value).collect();
        let context = self
            .context
            .iter()
            .map(|(role, base)| {
                let mut c = Map::new();
                c.insert("role".into(), Value::from(role.as_str()));
                if let Some(b) = base {
                    c.insert("base".into(), Value::from(*b));
                }
                Value::Object(c)
            })
            .collect();
        let mut m = Map::new();
        m.insert("files".into(), Value::Array(files));
        m.insert("context".into(), Value::Array(context));
        m.insert("approvals".into(), Value::Array(approvals));
        json::to_json(&Value::Object(m))
    }

    /// Reads a stored body.
    pub fn decode(bytes: &[u8]) -> Result<Self, CorruptBody> {
        Self::decode_with(bytes, true)
    }

    /// Reads a stored summary ([`Body::encode_summary`]): a body whose files have no bytes,
    /// for documents without metadata only.
    pub fn decode_summary(bytes: &[u8]) -> Result<Self, CorruptBody> {
        Self::decode_with(bytes, false)
    }

    fn decode_with(bytes: &[u8], with_bytes: bool) -> Result<Self, CorruptBody> {
        let bad = |m: String| CorruptBody(m);
        let v = json::parse(bytes).map_err(|e| bad(e.to_string()))?;
        let m = v.as_object().ok_or_else(|| bad("not an object".into()))?;
        let list = |k: &str| {
            m.get(k)
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("no {k}")))
        };
        let files = list("files")?;
        if files.len() > MAX_ROLES {
            return Err(bad("too many files".into()));
        }
        let mut out = Body::default();
        for f in files {
            let fm = f
                .as_object()
                .ok_or_else(|| bad("a file is not an object".into()))?;
            let text = |k: &str| fm.get(k).and_then(Value::as_str);
            let role = text("role").ok_or_else(|| bad("a file has no role".into()))?;
            let version = fm
                .get("version")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(format!("{role} has no version")))?;
            let envelope = match text("bytes") {
                Some(t) => t,
                None if !with_bytes => "",
                None => return Err(bad(format!("{role} has no bytes"))),
            };
            let quorum = fm
                .get("quorum")
                .and_then(Value::as_array)
                .unwrap_or_default()
                .iter()
                .map(Quorum::from_value)
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?;
            out.files.push(StagedFile {
                role: role.to_owned(),
                version,
                base: fm.get("base").and_then(Value::as_u64),
                bytes: envelope.as_bytes().to_vec(),
                quorum,
            });
        }
        for c in m
            .get("context")
            .and_then(Value::as_array)
            .unwrap_or_default()
            .iter()
            .take(MAX_ROLES)
        {
            let cm = c
                .as_object()
                .ok_or_else(|| bad("a context entry is not an object".into()))?;
            let role = cm
                .get("role")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("a context entry has no role".into()))?;
            out.context
                .push((role.to_owned(), cm.get("base").and_then(Value::as_u64)));
        }
        out.approvals = list("approvals")?
            .iter()
            .map(Approval::from_value)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        Ok(out)
    }
}

/// Why signatures could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The submission names no signature.
    #[error("the request adds no signature")]
    Empty,
    /// A role the proposal does not change.
    #[error("the proposal does not change {0}")]
    UnknownRole(String),
    /// A signature the envelope cannot take (a key that already signed, too many).
    #[error(transparent)]
    Rejected(#[from] Rejection),
}

/// The version in an envelope and the key ids that signed it.
fn envelope_facts(role: &str, bytes: &[u8]) -> Result<(u64, Vec<String>), Rejection> {
    fn facts<T: Role>(role: &str, bytes: &[u8]) -> Result<(u64, Vec<String>), Rejection> {
        let md = Metadata::<T>::from_bytes_as(role, bytes).map_err(|e| malformed(role, e))?;
        let keyids = md
            .signatures()
            .iter()
            .map(|s| s.keyid.as_str().to_owned())
            .collect();
        Ok((md.version().get(), keyids))
    }
    match role {
        "root" => facts::<Root>(role, bytes),
        "snapshot" => facts::<Snapshot>(role, bytes),
        _ => facts::<Targets>(role, bytes),
    }
}

/// `bytes` with `sigs` added to its signatures.
fn with_signatures(
    role: &str,
    bytes: &[u8],
    sigs: &[vouch_tuf::metadata::Signature],
) -> Result<Vec<u8>, Rejection> {
    fn add<T: Role>(
        role: &str,
        bytes: &[u8],
        sigs: &[vouch_tuf::metadata::Signature],
    ) -> Result<Vec<u8>, Rejection> {
        let mut md = Metadata::<T>::from_bytes_as(role, bytes).map_err(|e| malformed(role, e))?;
        for s in sigs {
            if md.signatures().iter().any(|have| have.keyid == s.keyid) {
                return Err(Rejection::Invalid {
                    role: role.to_owned(),
                    check: Check::Duplicate,
                    message: format!(
                        "key {} has already signed {role} in this proposal: thresholds count distinct keys",
                        s.keyid
                    ),
                });
            }
            md.add_signature(s.clone())
                .map_err(|e| malformed(role, e))?;
        }
        Ok(md.to_bytes())
    }
    match role {
        "root" => add::<Root>(role, bytes, sigs),
        "snapshot" => add::<Snapshot>(role, bytes, sigs),
        _ => add::<Targets>(role, bytes, sigs),
    }
}

fn malformed(role: &str, e: impl std::fmt::Display) -> Rejection {
    Rejection::Invalid {
        role: role.to_owned(),
        check: Check::Malformed,
        message: e.to_string(),
    }
}

/// The current version of `role` in `state`.
pub fn current_version(state: &RepoState, role: &str) -> Option<u64> {
    match role {
        "root" => state.root.as_ref().map(|l| l.version()),
        "targets" => state.targets.as_ref().map(|l| l.version()),
        "snapshot" => state.snapshot.as_ref().map(|l| l.version()),
        "timestamp" => state.timestamp.as_ref().map(|l| l.version()),
        name => state.delegated.get(name).map(|l| l.version()),
    }
}

/// Why a proposal made against `body`'s base versions can no longer be published as it
/// stands against `state`: the first role it changes whose version moved, or else the first
/// role deciding who may sign it (root, a delegating role) that moved. `None` while none did.
pub fn stale_reason(body: &Body, state: &RepoState) -> Option<String> {
    let moved = |role: &str, base: Option<u64>| {
        let now = current_version(state, role);
        (now != base).then(|| {
            let then = base.map_or("when it had none".to_owned(), |v| {
                format!("against version {v}")
            });
            let now = now.map_or("has no version".to_owned(), |v| {
                format!("is now at version {v}")
            });
            (now, then)
        })
    };
    let again = "withdraw it and propose again from the current version";
    body.files
        .iter()
        .find_map(|f| {
            moved(&f.role, f.base).map(|(now, then)| {
                format!("{} {now} on the server; this proposal was made {then}: {again}", f.role)
            })
        })
        .or_else(|| {
            body.context.iter().find_map(|(role, base)| {
                moved(role, *base).map(|(now, then)| {
                    format!("{role}, whose keys decide who may sign this proposal, {now} on the server; the proposal was made {then}: {again}")
                })
            })
        })
}

/// How a proposal reads to clients.
pub struct View<'a> {
    /// The stored proposal.
    pub stored: &'a StoredProposal,
    /// Its body.
    pub body: &'a Body,
    /// Why an open proposal can no longer be published (stale), if it cannot.
    pub stale: Option<String>,
    /// Whether to include each file's envelope.
    pub with_metadata: bool,
    /// The time its expiry is judged at.
    pub now: Timestamp,
}

impl View<'_> {
    /// The document.
    pub fn document(&self) -> Proposal {
        let s = self.stored;
        let (status, reason, change_id) = match s.state {
            ProposalState::Published(change) => (ProposalStatus::Published, None, Some(change)),
            ProposalState::Withdrawn => (ProposalStatus::Withdrawn, None, None),
            ProposalState::Open if s.expires_at <= self.now => (
                ProposalStatus::Expired,
                Some(format!(
                    "the proposal expired at {}: withdraw it and propose again",
                    s.expires_at
                )),
                None,
            ),
            ProposalState::Open => match &self.stale {
                Some(why) => (ProposalStatus::Stale, Some(why.clone()), None),
                None => (ProposalStatus::Pending, None, None),
            },
        };
        Proposal {
            id: u64::try_from(s.id).unwrap_or_default(),
            gun: s.gun.clone(),
            status,
            reason,
            proposed_by: s.proposed_by.clone(),
            created_at: s.created_at,
            expires_at: s.expires_at,
            closed_at: s.closed_at,
            closed_by: s.closed_by.clone(),
            change_id,
            roles: self
                .body
                .files
                .iter()
                .map(|f| ProposedRole {
                    role: f.role.clone(),
                    version: f.version,
                    base_version: f.base,
                    metadata: if self.with_metadata {
                        json::parse(&f.bytes).ok()
                    } else {
                        None
                    },
                    current: None,
                    quorum: f.quorum.clone(),
                })
                .collect(),
            approvals: self.body.approvals.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
