//! Staged proposals, as blocking service calls: create, read, add signatures (publishing
//! when the last threshold is met), withdraw.
//!
//! Every write re-reads the proposal and the repository, re-checks the whole proposal with
//! [`validate_proposal`] (so a forged or foreign signature is refused however it arrives),
//! and writes with a compare-and-swap on the proposal's revision — and, when it publishes,
//! on the repository's timestamp version too, in one transaction with marking the proposal
//! published ([`Store::publish_proposal`]). A lost race is retried from the top, a bounded
//! number of times. A publish through a proposal is exactly a publish: [`validate_update`]
//! decides what is stored, with the same online keys.

use vouch_tuf::api::proposal::{Proposal, ProposalStatus, Signatures, MAX_LISTED, MAX_ROLES};
use vouch_tuf::reference::Gun;
use vouch_tuf::time::Timestamp;

use super::{writable, Service, ServiceError, PUBLISH_ATTEMPTS};
use crate::proposal::{stale_reason, AddError, Body, View};
use crate::store::{Closing, NewProposal, ProposalState, StoreError, StoredProposal};
use crate::validate::{validate_proposal, validate_update, Rejection, RepoState, Staged, Upload};

impl Service {
    /// Creates a proposal of `uploads` for `gun`, proposed by `by`; published at once when
    /// its signatures already meet every threshold.
    pub fn propose(
        &self,
        gun: &Gun,
        uploads: Vec<Upload>,
        by: &str,
    ) -> Result<Proposal, ServiceError> {
        writable(gun)?;
        self.check_sizes(&uploads)?;
        if uploads.len() > MAX_ROLES {
            return Err(ServiceError::ProposalRequest(format!(
                "a proposal changes at most {MAX_ROLES} roles; this one has {}",
                uploads.len()
            )));
        }
        let now = self.now();
        let state = self.state(gun)?;
        let staged = self.stage(gun, &state, &uploads, now)?;
        let max = self.proposals.max_open;
        if self.store.proposals(gun, Some(now), max)?.len() >= max {
            return Err(ServiceError::ProposalLimit {
                gun: gun.clone(),
                max,
            });
        }
        let body = Body::new(&state, &uploads, &staged, by, now)?;
        let id = self.store.create_proposal(
            gun,
            &NewProposal {
                body: body.encode(),
                summary: Vec::new(),
                proposed_by: by.to_owned(),
                expires_at: now.add_seconds(self.proposals.lifetime_seconds),
            },
            now,
        )?;
        tracing::info!(%gun, id, by, "proposal created");
        if staged.is_complete() {
            // Signed well enough already: published at once, or not kept at all.
            return self.amend(gun, id, by, None).inspect_err(|e| {
                tracing::info!(%gun, id, error = %e, "publishing a complete proposal failed: withdrawing it");
                if let Ok(stored) = self.load(gun, public_id(id)) {
                    let closing = Closing {
                        id,
                        revision: stored.revision,
                        by,
                        body: &stored.body,
                        summary: &[],
                    };
                    if let Err(e) = self.store.close_proposal(gun, closing, self.now()) {
                        tracing::warn!(%gun, id, error = %e, "could not withdraw the proposal");
                    }
                }
            });
        }
        self.proposal(gun, public_id(id))
    }

    /// Proposal `id` of `gun`, with its metadata.
    pub fn proposal(&self, gun: &Gun, id: u64) -> Result<Proposal, ServiceError> {
        let stored = self.load(gun, id)?;
        let state = self.state(gun)?;
        self.document(&stored, &state, true)
    }

    /// The proposals of `gun`, newest first, without their metadata: the open ones (pending,
    /// stale or expired), or with `all` the published and withdrawn ones too.
    pub fn proposals(&self, gun: &Gun, all: bool) -> Result<Vec<Proposal>, ServiceError> {
        // Every open proposal expires after the epoch: "open at the epoch" is every open one.
        let open_at = (!all).then(|| Timestamp::from_unix(0));
        let stored = self.store.proposals(gun, open_at, MAX_LISTED)?;
        if stored.is_empty() {
            return Ok(Vec::new());
        }
        let state = self.state(gun)?;
        // One proposal that cannot be read (a corrupted store) does not hide the others.
        Ok(stored
            .iter()
            .filter_map(|p| {
                self.document(p, &state, false)
                    .inspect_err(|e| tracing::error!(%gun, id = p.id, error = %e, "unreadable proposal left out of the list"))
                    .ok()
            })
            .collect())
    }

    /// Adds `signatures` (sent by `by`) to proposal `id`, publishing it when every threshold
    /// is now met. One signature refused and none is added.
    pub fn sign_proposal(
        &self,
        gun: &Gun,
        id: u64,
        signatures: &Signatures,
        by: &str,
    ) -> Result<Proposal, ServiceError> {
        writable(gun)?;
        let id = stored_id(gun, id)?;
        self.amend(gun, id, by, Some(signatures))
    }

    /// Withdraws open proposal `id` (pending, stale or expired), on behalf of `by`.
    pub fn withdraw_proposal(
        &self,
        gun: &Gun,
        id: u64,
        by: &str,
    ) -> Result<Proposal, ServiceError> {
        for _ in 0..PUBLISH_ATTEMPTS {
            let stored = self.load(gun, id)?;
            if stored.state != ProposalState::Open {
                let state = self.state(gun)?;
                return Err(closed(&self.document(&stored, &state, false)?));
            }
            let closing = Closing {
                id: stored.id,
                revision: stored.revision,
                by,
                body: &stored.body,
                summary: &[],
            };
            match self.store.close_proposal(gun, closing, self.now()) {
                Ok(()) => {
                    tracing::info!(%gun, id, by, "proposal withdrawn");
                    return self.proposal(gun, id);
                }
                Err(StoreError::ProposalChanged { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Contended)
    }

    /// Adds `add` (if any) to open proposal `id` and stores it; publishes when complete.
    fn amend(
        &self,
        gun: &Gun,
        id: i64,
        by: &str,
        add: Option<&Signatures>,
    ) -> Result<Proposal, ServiceError> {
        for _ in 0..PUBLISH_ATTEMPTS {
            let now = self.now();
            let stored = self.load(gun, public_id(id))?;
            let state = self.state(gun)?;
            let doc = self.document(&stored, &state, false)?;
            if !doc.status.is_open() {
                return Err(closed(&doc));
            }
            let mut body = decode(&stored)?;
            if let Some(signatures) = add {
                body.add_signatures(signatures, by, now)
                    .map_err(|e| match e {
                        AddError::Rejected(r) => ServiceError::Rejected(r),
                        other => ServiceError::ProposalRequest(other.to_string()),
                    })?;
            }
            let uploads = body.uploads();
            // Signatures make files larger: each must still be within its role's limit.
            self.check_sizes(&uploads)?;
            let staged = match self.stage(gun, &state, &uploads, now) {
                Ok(s) => s,
                Err(ServiceError::Rejected(Rejection::Conflict { message, .. })) => {
                    return Err(ServiceError::ProposalClosed {
                        id: public_id(id),
                        status: ProposalStatus::Stale,
                        reason: message,
                    })
                }
                Err(e) => return Err(e),
            };
            body.record(&staged);
            let encoded = body.encode();
            if !staged.is_complete() {
                if add.is_none() {
                    return Ok(doc);
                }
                match self
                    .store
                    .amend_proposal(gun, id, stored.revision, &encoded, &[])
                {
                    Ok(()) => {
                        tracing::info!(%gun, id, by, "proposal signed");
                        return self.proposal(gun, public_id(id));
                    }
                    Err(StoreError::ProposalChanged { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            // Every threshold is met: publish exactly as a publish would.
            let update = self.with_signers(gun, &state, &uploads, |signers| {
                validate_update(&state, &uploads, signers, self.lifetimes, now)
            })?;
            let update = match update {
                Ok(u) => u,
                Err(Rejection::Conflict { message, .. }) => {
                    return Err(ServiceError::ProposalClosed {
                        id: public_id(id),
                        status: ProposalStatus::Stale,
                        reason: message,
                    })
                }
                Err(e) => return Err(e.into()),
            };
            let expected = state.timestamp.as_ref().map(|t| t.version());
            let closing = Closing {
                id,
                revision: stored.revision,
                by,
                body: &encoded,
                summary: &[],
            };
            match self
                .store
                .publish_proposal(gun, expected, &update.files, closing, now)
            {
                Ok(change) => {
                    tracing::info!(%gun, id, by, change, "proposal published");
                    self.published(gun, &uploads, &update, change);
                    return self.proposal(gun, public_id(id));
                }
                Err(StoreError::Conflict { .. } | StoreError::ProposalChanged { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Contended)
    }

    /// [`validate_proposal`] with the online keys an update of `uploads` may use.
    fn stage(
        &self,
        gun: &Gun,
        state: &RepoState,
        uploads: &[Upload],
        now: Timestamp,
    ) -> Result<Staged, ServiceError> {
        Ok(self.with_signers(gun, state, uploads, |signers| {
            validate_proposal(state, uploads, signers, self.lifetimes, now)
        })??)
    }

    /// The stored proposal `id` of `gun`.
    fn load(&self, gun: &Gun, id: u64) -> Result<StoredProposal, ServiceError> {
        let sid = stored_id(gun, id)?;
        self.store
            .proposal(gun, sid)?
            .ok_or_else(|| ServiceError::ProposalNotFound {
                gun: gun.clone(),
                id,
            })
    }

    /// How `stored` reads to clients against the repository's `state`.
    fn document(
        &self,
        stored: &StoredProposal,
        state: &RepoState,
        with_metadata: bool,
    ) -> Result<Proposal, ServiceError> {
        let body = decode(stored)?;
        let stale = match stored.state {
            ProposalState::Open => stale_reason(&body, state),
            _ => None,
        };
        Ok(View {
            stored,
            body: &body,
            stale,
            with_metadata,
            now: self.now(),
        }
        .document())
    }
}

/// A stored proposal's body; a body that cannot be read is the storage's fault.
fn decode(stored: &StoredProposal) -> Result<Body, ServiceError> {
    Body::decode(&stored.body)
        .map_err(|e| ServiceError::Internal(format!("proposal {}: {e}", stored.id)))
}

/// The refusal to change proposal `doc`, which is not open.
fn closed(doc: &Proposal) -> ServiceError {
    let reason = match doc.status {
        ProposalStatus::Published => format!(
            "it was published{}",
            doc.change_id
                .map(|c| format!(" (changefeed entry {c})"))
                .unwrap_or_default()
        ),
        ProposalStatus::Withdrawn => format!(
            "it was withdrawn{}",
            doc.closed_by
                .as_deref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default()
        ),
        _ => doc.reason.clone().unwrap_or_default(),
    };
    ServiceError::ProposalClosed {
        id: doc.id,
        status: doc.status,
        reason,
    }
}

/// A proposal number as stores keep it; one no store can hold names no proposal.
fn stored_id(gun: &Gun, id: u64) -> Result<i64, ServiceError> {
    i64::try_from(id).map_err(|_| ServiceError::ProposalNotFound {
        gun: gun.clone(),
        id,
    })
}

/// A stored proposal number as clients see it (stores hand out positive ids).
fn public_id(id: i64) -> u64 {
    u64::try_from(id).unwrap_or_default()
}
