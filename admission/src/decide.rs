//! The decision: policy plus trust state applied to each image of an `AdmissionReview`.
//!
//! [`Webhook::review`] is the whole webhook behind the HTTP layer: it echoes the request
//! `uid`, skips exempt namespaces and kinds without containers, verifies each distinct
//! image on a blocking thread within the policy's deadline (failing closed when the
//! deadline passes, and starting no fetch after it) unless every image's verdict is
//! already known from fresh, unexpired trust state (then it is answered inline, without
//! blocking); a review naming more than [`TrustConfig::max_images_per_review`] distinct
//! images, or needing more than [`TrustConfig::max_repositories_per_review`] repositories
//! verified, is denied before anything is looked up or fetched. It answers with a status
//! naming each rejected image, warnings in warn mode, and for the mutating endpoint a
//! JSONPatch pinning tags to signed digests.
//!
//! The policy can be replaced while the webhook serves ([`Webhook::set_policy`], from
//! [`crate::reload`]): each review decides by the policy in force when it started, and
//! verdicts and image mappings remembered under an earlier policy are not used again.
//! Once [`Webhook::follow_events`] is called, each policy put in force also decides which
//! trust servers' events are followed ([`crate::events`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube_core::DynamicObject;
use vouch_tuf::reference::{Gun, ImageRef};

use crate::events::Followers;
use crate::metrics::Metrics;
use crate::policy::{Action, Mode, Policy, ReadFrom, TrustSource};
use crate::review::{respond, scope, to_wire_bytes, to_wire_value, ImageSite, Scope, Verdict};
use crate::trust::{self, Deadline, Fetch, Repo, RepoAnchor, RepoKey, TrustCache, TrustConfig};
use vouch_verifier::Error as VerifyError;

/// The webhook: policy, warm trust state and metrics.
pub struct Webhook {
    policy: RwLock<Snapshot>,
    trust: TrustCache,
    metrics: Arc<Metrics>,
    /// The followers of the trust servers' events, once [`Webhook::follow_events`] started
    /// them.
    followers: Mutex<Option<Followers>>,
}

/// The policy in force and its epoch ([`TrustCache::set_policy`]): each review decides by
/// one snapshot, whatever reload happens meanwhile.
#[derive(Clone)]
struct Snapshot {
    policy: Arc<Policy>,
    epoch: u64,
}

/// Which endpoint a review came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/validate`: allow or deny only.
    Validate,
    /// `/mutate`: allow or deny, and pin tags to digests.
    Mutate,
}

impl Webhook {
    /// A webhook for `policy`, caching trust per `config`.
    pub fn new(policy: Policy, config: TrustConfig) -> Self {
        let metrics = Arc::new(Metrics::default());
        let trust = TrustCache::new(config, metrics.clone());
        let epoch = trust.set_policy(policy.servers.clone());
        trust.set_registries(&policy.registries);
        Webhook {
            trust,
            policy: RwLock::new(Snapshot {
                policy: Arc::new(policy),
                epoch,
            }),
            metrics,
            followers: Mutex::new(None),
        }
    }

    /// Starts following the trust-change events of the vouch servers the policy names
    /// ([`Policy::followed_servers`], see [`crate::events`]), with event-started refreshes
    /// running on `runtime`; from now on, each policy put in force changes which servers
    /// are followed. Returns the servers followed.
    pub fn follow_events(
        self: &Arc<Self>,
        runtime: tokio::runtime::Handle,
    ) -> std::collections::BTreeSet<String> {
        let policy = self.policy();
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        let f = followers.get_or_insert_with(|| Followers::new(self, runtime));
        f.sync(&policy.followed_servers(), &policy.servers);
        f.servers()
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.snapshot().policy
    }

    fn snapshot(&self) -> Snapshot {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `policy` in force for the reviews that start from now on (reviews in flight
    /// finish under the policy they started with). The trusted state of repositories is
    /// kept; verdicts remembered under the previous policy are forgotten.
    pub fn set_policy(&self, policy: Policy) {
        let mut current = self.policy.write().unwrap_or_else(|p| p.into_inner());
        let epoch = self.trust.set_policy(policy.servers.clone());
        self.trust.set_registries(&policy.registries);
        if let Some(f) = self
            .followers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            f.sync(&policy.followed_servers(), &policy.servers);
        }
        *current = Snapshot {
            policy: Arc::new(policy),
            epoch,
        };
    }

    /// Whether the webhook can decide by its whole policy: `Err` names each `verify` rule
    /// whose pinned root file could not be read (those rules deny what they match meanwhile).
    pub fn readiness(&self) -> Result<(), String> {
        let policy = self.policy();
        let missing: Vec<String> = policy
            .unavailable_roots()
            .map(|(pattern, why)| format!("rule {pattern}: {why}"))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
        }
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The trust state of every repository in memory.
    pub fn trust(&self) -> &TrustCache {
        &self.trust
    }

    /// Answers one review (the response review as JSON).
    pub async fn review(
        self: &Arc<Self>,
        review: AdmissionReview<DynamicObject>,
        endpoint: Endpoint,
    ) -> serde_json::Value {
        let resp = self.response(review, endpoint).await;
        to_wire_value(resp).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot encode AdmissionReview");
            serde_json::json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {"uid": "", "allowed": false,
                             "status": {"message": "internal error", "code": 500}}
            })
        })
    }

    /// Answers one review with the response review's JSON bytes (what the HTTP layer
    /// sends; the same document as [`Webhook::review`], serialised once).
    pub async fn review_bytes(
        self: &Arc<Self>,
        review: AdmissionReview<DynamicObject>,
        endpoint: Endpoint,
    ) -> Vec<u8> {
        let resp = self.response(review, endpoint).await;
        to_wire_bytes(resp).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot encode AdmissionReview");
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":false,"status":{"message":"internal error","code":500}}}"#.to_vec()
        })
    }

    /// The response to one review, counted and logged.
    async fn response(
        self: &Arc<Self>,
        review: AdmissionReview<DynamicObject>,
        endpoint: Endpoint,
    ) -> AdmissionResponse {
        let started = Instant::now();
        let req: AdmissionRequest<DynamicObject> = match review.try_into() {
            Ok(r) => r,
            Err(_) => {
                self.metrics
                    .decision("denied", "invalid_review", started.elapsed());
                return AdmissionResponse::invalid("not an AdmissionReview with a request");
            }
        };
        let (resp, result, reason) = self.decide(&req, endpoint).await;
        let took = started.elapsed();
        self.metrics.decision(result, reason, took);
        // In warn mode the response admits and carries the denials as warnings: they are
        // what the log line must show.
        let detail = match &resp.warnings {
            Some(w) if resp.result.message.is_empty() && !w.is_empty() => w.join("; "),
            _ => resp.result.message.clone(),
        };
        tracing::info!(
            uid = %req.uid,
            kind = %req.kind.kind,
            namespace = req.namespace.as_deref().unwrap_or(""),
            name = %req.name,
            operation = ?req.operation,
            result,
            reason,
            detail = %detail,
            micros = took.as_micros() as u64,
            "admission decision"
        );
        resp
    }

    async fn decide(
        self: &Arc<Self>,
        req: &AdmissionRequest<DynamicObject>,
        endpoint: Endpoint,
    ) -> (AdmissionResponse, &'static str, &'static str) {
        let snap = self.snapshot();
        if snap.policy.is_exempt(req.namespace.as_deref()) {
            return (AdmissionResponse::from(req), "allowed", "exempt_namespace");
        }
        let sites = match scope(req) {
            Scope::Ignore(reason) => return (AdmissionResponse::from(req), "allowed", reason),
            Scope::Check(sites) => sites,
        };
        let warn = snap.policy.mode == Mode::Warn;
        let verdicts = match self.verdicts_warm(&snap, &sites) {
            Some(v) => v,
            None => self.verdicts_within_deadline(&snap, req, &sites).await,
        };
        let pairs: Vec<(ImageSite, Verdict)> = sites.into_iter().zip(verdicts).collect();
        let first_denial = pairs.iter().find_map(|(_, v)| match v {
            Verdict::Denied { reason, .. } => Some(*reason),
            Verdict::Allowed { .. } => None,
        });
        let resp = respond(req, &pairs, warn, endpoint == Endpoint::Mutate);
        let (result, reason) = match first_denial {
            None if pairs.is_empty() => ("allowed", "no_images"),
            None => ("allowed", allowed_reason(&pairs)),
            Some(r) if warn => ("warned", r),
            Some(r) => ("denied", r),
        };
        (resp, result, reason)
    }

    /// The verdict on every site's image without blocking: each is either decided by the
    /// policy alone or was already reached from its repository's trusted state, which is
    /// fresh and unexpired ([`TrustCache::warm`]). `None` when any image needs the
    /// blocking path (a refresh due, a lookup not answered yet, a denial).
    fn verdicts_warm(&self, snap: &Snapshot, sites: &[ImageSite]) -> Option<Vec<Verdict>> {
        // More images than repositories (or images) a review may name: the blocking path
        // counts them.
        let config = self.trust.config();
        if sites.len()
            > config
                .max_repositories_per_review
                .min(config.max_images_per_review)
        {
            return None;
        }
        sites
            .iter()
            .map(|site| {
                let image = site.image.trim();
                if let Some(repo) = self.trust.repo_for_image(image) {
                    return self.trust.warm(&repo, image);
                }
                match self.plan(&snap.policy, image) {
                    Plan::Done(v) => Some(v),
                    Plan::Verify { repo, .. } => {
                        self.trust.note_image(image, &repo, snap.epoch);
                        self.trust.warm(&repo, image)
                    }
                }
            })
            .collect()
    }

    /// The verdicts from the blocking pool within the policy's deadline, failing closed.
    ///
    /// A review naming more than [`TrustConfig::max_images_per_review`] distinct images is
    /// denied before any is parsed, and one whose images need more than
    /// [`TrustConfig::max_repositories_per_review`] repositories verified before anything is
    /// fetched. Otherwise the due refreshes of its repositories run first
    /// ([`TrustCache::prepare`]), their fetches over by four fifths of the deadline so that
    /// the last fifth is left to answer (from the last trusted state when a server was too
    /// slow); then the lookups run on one blocking thread, starting no fetch after the
    /// deadline.
    async fn verdicts_within_deadline(
        self: &Arc<Self>,
        snap: &Snapshot,
        req: &AdmissionRequest<DynamicObject>,
        sites: &[ImageSite],
    ) -> Vec<Verdict> {
        let policy = &snap.policy;
        let deadline = Deadline::after(policy.deadline);
        let refresh = Deadline::after(policy.deadline.mul_f64(0.8));
        let Some(images) = distinct_images(sites, self.trust.config().max_images_per_review) else {
            let limit = self.trust.config().max_images_per_review;
            return fail_all(
                sites,
                &format!(
                    "the review names more than {limit} distinct images, the most one review \
                     may name (--max-images-per-review)"
                ),
                "too_many_images",
            );
        };
        let repos = match self.repos_to_verify(policy, &images) {
            Ok(repos) => repos,
            Err(limit) => {
                return fail_all(
                    sites,
                    &format!(
                        "the images need trust data from more than {limit} repositories, the \
                         most one review may name (--max-repositories-per-review)"
                    ),
                    "too_many_repositories",
                )
            }
        };
        let this = self.clone();
        let images: Vec<String> = sites.iter().map(|s| s.image.clone()).collect();
        let for_blocking = snap.clone();
        let work = async move {
            for repo in &repos {
                this.trust.prepare(repo, refresh).await;
            }
            tokio::task::spawn_blocking(move || {
                this.verdicts_blocking_in(&for_blocking, &images, deadline)
            })
            .await
        };
        match tokio::time::timeout_at(deadline.at.into(), work).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::error!(uid = %req.uid, error = %e, "verification task failed");
                fail_all(sites, "verification failed internally", "internal")
            }
            Err(_) => fail_all(sites, &deadline_message(policy), "deadline"),
        }
    }

    /// The distinct repositories `images` (distinct, trimmed) need verified, or `Err(limit)`
    /// when they are more than [`TrustConfig::max_repositories_per_review`] (counted before
    /// any repository is set up). Does not block; the caller bounds how many images there
    /// are ([`TrustConfig::max_images_per_review`]).
    fn repos_to_verify(&self, policy: &Policy, images: &[&str]) -> Result<Vec<Arc<Repo>>, usize> {
        let limit = self.trust.config().max_repositories_per_review;
        let mut distinct: HashMap<(RepoKey, String), RepoAnchor> = HashMap::new();
        for image in images {
            if let Ok((parsed, source, gun, anchor)) = rule_plan(policy, image) {
                let key = repo_key(source, &parsed, gun);
                distinct.insert((key, anchor.id()), anchor);
                if distinct.len() > limit {
                    return Err(limit);
                }
            }
        }
        Ok(distinct
            .into_iter()
            .map(|((key, _), anchor)| self.trust.repo_anchored(key, &anchor))
            .collect())
    }

    /// The verdict on each image, in order (each distinct image, trimmed, verified once),
    /// starting no verification and no fetch after `deadline.at` (later images are denied as
    /// past it). Blocking.
    pub fn verdicts_blocking(&self, images: &[String], deadline: Deadline) -> Vec<Verdict> {
        self.verdicts_blocking_in(&self.snapshot(), images, deadline)
    }

    /// [`Webhook::verdicts_blocking`] under the policy of `snap`.
    fn verdicts_blocking_in(
        &self,
        snap: &Snapshot,
        images: &[String],
        deadline: Deadline,
    ) -> Vec<Verdict> {
        let mut seen: HashMap<&str, Verdict> = HashMap::new();
        images
            .iter()
            .map(|image| {
                seen.entry(image.trim())
                    .or_insert_with(|| {
                        if Instant::now() >= deadline.at {
                            return Verdict::Denied {
                                message: deadline_message(&snap.policy),
                                reason: "deadline",
                            };
                        }
                        self.verdict_in(snap, image, deadline)
                    })
                    .clone()
            })
            .collect()
    }

    /// What the policy says of one image, and for a `verify` rule its repository. Does not
    /// block.
    fn plan<'p>(&self, policy: &'p Policy, image: &str) -> Plan<'p> {
        match rule_plan(policy, image) {
            Err(v) => Plan::Done(v),
            Ok((parsed, source, gun, anchor)) => {
                let key = repo_key(source, &parsed, gun.clone());
                let repo = self.trust.repo_anchored(key, &anchor);
                Plan::Verify {
                    parsed,
                    source,
                    gun,
                    repo,
                }
            }
        }
    }

    /// The verdict on one image, within the policy's deadline from now. Blocking.
    pub fn verdict(&self, image: &str) -> Verdict {
        let snap = self.snapshot();
        self.verdict_in(&snap, image, Deadline::after(snap.policy.deadline))
    }

    /// The verdict on one image, starting no fetch after `deadline.at`. Blocking.
    pub fn verdict_by(&self, image: &str, deadline: Deadline) -> Verdict {
        self.verdict_in(&self.snapshot(), image, deadline)
    }

    /// [`Webhook::verdict_by`] under the policy of `snap`.
    fn verdict_in(&self, snap: &Snapshot, image: &str, deadline: Deadline) -> Verdict {
        match self.plan(&snap.policy, image) {
            Plan::Done(v) => v,
            Plan::Verify {
                parsed,
                source,
                gun,
                repo,
            } => {
                let generation = self.trust.generation(&repo);
                let v = self.verify(image, &parsed, source, &gun, &repo, deadline);
                self.trust
                    .remember(&repo, generation, snap.epoch, image.trim(), &v);
                v
            }
        }
    }

    /// The verdict on one image from its repository's trust data: [`trust::vouch`] (the
    /// verifier's [`Updater::vouch`](vouch_verifier::Updater::vouch)) says whether it is
    /// vouched for and through which role paths, and [`Vouched::unmet`] whether one of them
    /// meets every required delegation path. Blocking.
    ///
    /// [`Vouched::unmet`]: vouch_verifier::Vouched::unmet
    fn verify(
        &self,
        image: &str,
        parsed: &ImageRef,
        source: &TrustSource,
        gun: &Gun,
        repo: &Repo,
        deadline: Deadline,
    ) -> Verdict {
        let denied = |message: String, reason| Verdict::Denied { message, reason };
        if let Some(notary) = &source.notary {
            let required = &notary.required_roles;
            return match self.trust.with_notary(repo, deadline, |collection| {
                crate::notary::verdict(collection, image, parsed, gun, required)
            }) {
                Ok(v) => v,
                Err(e) => denied(format!("{gun}: {e}"), e.reason()),
            };
        }
        let required = &source.required_roles;
        let vouched = match trust::vouch(&self.trust, repo, parsed, required, deadline) {
            Err(e) => return denied(format!("{gun}: {e}"), e.reason()),
            Ok(Err(refused)) => {
                let message = match (parsed.tag(), parsed.digest(), refused) {
                    (
                        Some(tag),
                        Some(digest),
                        VerifyError::UntrustedDigest {
                            signed: Some(signed),
                            ..
                        },
                    ) => {
                        return denied(
                            format!("{digest} is not the signed digest {signed} of tag {tag}"),
                            "digest_mismatch",
                        )
                    }
                    (None, Some(digest), _) => format!("{digest} is not signed in {gun}"),
                    _ => format!("tag {} is not signed in {gun}", parsed.tag_or_latest()),
                };
                return denied(message, "unsigned");
            }
            Ok(Ok(v)) => v,
        };
        // A requirement is a delegation path from `targets`, compared position by position
        // with the role paths that vouched for the image (never by a role's name alone).
        // The decision is `satisfies`; `unmet` only words the denial.
        if !vouched.satisfies(required) {
            let message = match vouched.unmet(required) {
                Some(unmet) => format!(
                    "vouched for through {}, not through the required delegation path {}",
                    unmet.role_path_text(),
                    unmet.required
                ),
                None => {
                    "no path that vouched for it meets the required delegation paths".to_owned()
                }
            };
            return denied(message, "required_role");
        }
        Verdict::Allowed {
            // A tag is pinned in the pod's own spelling: the runtime pulls from exactly where
            // it would have (the canonical name only decided which rule applies).
            pinned: parsed
                .digest()
                .is_none()
                .then(|| format!("{}@{}", image.trim(), vouched.digest())),
            reason: "verified",
        }
    }
}

/// What the policy says of one image before any trust data is read.
enum Plan<'a> {
    /// Decided by the policy (or the reference is unusable).
    Done(Verdict),
    /// Verify against `source`, in `repo`.
    Verify {
        parsed: ImageRef,
        source: &'a TrustSource,
        gun: Gun,
        repo: Arc<Repo>,
    },
}

/// The distinct image references (trimmed) of `sites`, in order of first appearance, or
/// `None` when they are more than `limit`.
fn distinct_images(sites: &[ImageSite], limit: usize) -> Option<Vec<&str>> {
    let mut seen = HashSet::new();
    let mut images = Vec::new();
    for site in sites {
        let image = site.image.trim();
        if seen.insert(image) {
            if images.len() == limit {
                return None;
            }
            images.push(image);
        }
    }
    Some(images)
}

fn fail_all(sites: &[ImageSite], message: &str, reason: &'static str) -> Vec<Verdict> {
    sites
        .iter()
        .map(|_| Verdict::Denied {
            message: message.to_owned(),
            reason,
        })
        .collect()
}

/// What the policy says of one image: its verdict, or for a `verify` rule the trust
/// source and GUN to verify it against. Does not block and sets nothing up.
fn rule_plan<'p>(
    policy: &'p Policy,
    image: &str,
) -> Result<(ImageRef, &'p TrustSource, Gun, RepoAnchor), Verdict> {
    let denied = |message: String, reason| Err(Verdict::Denied { message, reason });
    let parsed = match ImageRef::parse(image.trim()) {
        Ok(r) => r,
        Err(e) => return denied(format!("invalid image reference: {e}"), "invalid_reference"),
    };
    let Some(rule) = policy.rule_for(&parsed) else {
        return denied(
            format!("no policy rule matches {}", parsed.name()),
            "no_rule",
        );
    };
    let source = match (rule.action, &rule.trust) {
        (Action::Allow, _) => {
            return Err(Verdict::Allowed {
                pinned: None,
                reason: "policy_allow",
            })
        }
        (Action::Verify, None) if rule.root_unavailable.is_some() => {
            return denied(
                format!(
                    "policy rule {} cannot verify: {}",
                    rule.pattern,
                    rule.root_unavailable.as_deref().unwrap_or_default()
                ),
                "root_unavailable",
            )
        }
        (Action::Deny, _) | (Action::Verify, None) => {
            return denied(
                format!("denied by policy rule {}", rule.pattern),
                "policy_deny",
            )
        }
        (Action::Verify, Some(t)) => t,
    };
    let gun = match source.gun_for(&parsed) {
        Ok(g) => g,
        Err(e) => return denied(format!("GUN mapping failed: {e}"), "invalid_reference"),
    };
    // A promoted or copied image has the trust of the repository a `trust_from` pin maps
    // its GUN to: that repository's pin, cached state and trust artifact. The tag looked up
    // and the registry copy read stay the image's own.
    let gun = match source.notary {
        Some(_) => gun,
        None => match policy.trusted_as(source, gun) {
            Ok(g) => g,
            Err(message) => return denied(message, "no_trust_pin"),
        },
    };
    let anchor = match &source.notary {
        Some(notary) => match notary.root_for(&gun) {
            Ok(root) => RepoAnchor::Notary(root.clone()),
            Err(message) => return denied(message, "no_trust_pin"),
        },
        None => match policy.anchor_for(source, &gun) {
            Ok(a) => RepoAnchor::Tuf(a),
            Err(message) => return denied(message, "no_trust_pin"),
        },
    };
    Ok((parsed, source, gun, anchor))
}

/// The repository key of an image verified under `source` as `gun`: the trust server and
/// GUN its trusted state is kept under, and, for a rule that reads the registry copy, the
/// image's own registry repository (where the copy travels with the image).
fn repo_key(source: &TrustSource, image: &ImageRef, gun: Gun) -> RepoKey {
    let (registry, repository) = (image.registry().to_owned(), image.repository().to_owned());
    RepoKey {
        server: source.server.clone(),
        gun,
        fetch: match source.read_from {
            ReadFrom::Server => Fetch::Server,
            ReadFrom::Registry => Fetch::Registry {
                registry,
                repository,
            },
            ReadFrom::ServerThenRegistry => Fetch::ServerThenRegistry {
                registry,
                repository,
            },
        },
    }
}

/// The reason an admitted review is counted under: `policy_allow` when the policy alone
/// admitted every image, `notary_verified` when every image it did not was verified
/// through a Notary server, else `verified`.
fn allowed_reason(pairs: &[(ImageSite, Verdict)]) -> &'static str {
    let reasons = || {
        pairs.iter().filter_map(|(_, v)| match v {
            Verdict::Allowed { reason, .. } if *reason != "policy_allow" => Some(*reason),
            _ => None,
        })
    };
    match reasons().next() {
        None => "policy_allow",
        Some(_) if reasons().all(|r| r == crate::notary::VERIFIED) => crate::notary::VERIFIED,
        Some(_) => "verified",
    }
}

fn deadline_message(policy: &Policy) -> String {
    format!(
        "could not verify within the {} ms deadline",
        policy.deadline.as_millis()
    )
}
