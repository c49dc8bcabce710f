//! The decision: policy plus trust state applied to each image of an `AdmissionReview`.
//!
//! [`Webhook::review`] is the whole webhook behind the HTTP layer: it echoes the request
//! `uid`, skips exempt namespaces and kinds without containers, verifies each distinct
//! image on a blocking thread within the policy's deadline (failing closed when the
//! deadline passes), and answers with a status naming each rejected image, warnings in
//! warn mode, and for the mutating endpoint a JSONPatch pinning tags to signed digests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube_core::DynamicObject;
use vouch_tuf::reference::ImageRef;

use crate::metrics::Metrics;
use crate::policy::{Action, Mode, Policy};
use crate::review::{respond, scope, to_wire, ImageSite, Scope, Verdict};
use crate::trust::{self, RepoKey, TrustCache, TrustConfig};

/// The webhook: policy, warm trust state and metrics.
pub struct Webhook {
    policy: Policy,
    trust: TrustCache,
    metrics: Arc<Metrics>,
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
        Webhook {
            trust: TrustCache::new(config, metrics.clone()),
            policy,
            metrics,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Answers one review.
    pub async fn review(
        self: &Arc<Self>,
        review: AdmissionReview<DynamicObject>,
        endpoint: Endpoint,
    ) -> serde_json::Value {
        let started = Instant::now();
        let req: AdmissionRequest<DynamicObject> = match review.try_into() {
            Ok(r) => r,
            Err(_) => {
                self.metrics
                    .decision("denied", "invalid_review", started.elapsed());
                return wire(
                    &AdmissionResponse::invalid("not an AdmissionReview with a request")
                        .into_review(),
                );
            }
        };
        let (resp, result, reason) = self.decide(&req, endpoint).await;
        let took = started.elapsed();
        self.metrics.decision(result, reason, took);
        tracing::info!(
            uid = %req.uid,
            kind = %req.kind.kind,
            namespace = req.namespace.as_deref().unwrap_or(""),
            name = %req.name,
            operation = ?req.operation,
            result,
            reason,
            detail = %resp.result.message,
            micros = took.as_micros() as u64,
            "admission decision"
        );
        wire(&resp.into_review())
    }

    async fn decide(
        self: &Arc<Self>,
        req: &AdmissionRequest<DynamicObject>,
        endpoint: Endpoint,
    ) -> (AdmissionResponse, &'static str, &'static str) {
        if self.policy.is_exempt(req.namespace.as_deref()) {
            return (AdmissionResponse::from(req), "allowed", "exempt_namespace");
        }
        let sites = match scope(req) {
            Scope::Ignore(reason) => return (AdmissionResponse::from(req), "allowed", reason),
            Scope::Check(sites) => sites,
        };
        let warn = self.policy.mode == Mode::Warn;
        let this = self.clone();
        let images: Vec<String> = sites.iter().map(|s| s.image.clone()).collect();
        let work = tokio::task::spawn_blocking(move || this.verdicts_blocking(&images));
        let verdicts = match tokio::time::timeout(self.policy.deadline, work).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::error!(uid = %req.uid, error = %e, "verification task failed");
                fail_all(&sites, "verification failed internally", "internal")
            }
            Err(_) => fail_all(
                &sites,
                &format!(
                    "could not verify within the {} ms deadline",
                    self.policy.deadline.as_millis()
                ),
                "deadline",
            ),
        };
        let pairs: Vec<(ImageSite, Verdict)> = sites.into_iter().zip(verdicts).collect();
        let first_denial = pairs.iter().find_map(|(_, v)| match v {
            Verdict::Denied { reason, .. } => Some(*reason),
            Verdict::Allowed { .. } => None,
        });
        let resp = respond(req, &pairs, warn, endpoint == Endpoint::Mutate);
        let (result, reason) = match first_denial {
            None if pairs.is_empty() => ("allowed", "no_images"),
            None => (
                "allowed",
                if pairs.iter().all(|(_, v)| {
                    matches!(
                        v,
                        Verdict::Allowed {
                            reason: "policy_allow",
                            ..
                        }
                    )
                }) {
                    "policy_allow"
                } else {
                    "verified"
                },
            ),
            Some(r) if warn => ("warned", r),
            Some(r) => ("denied", r),
        };
        (resp, result, reason)
    }

    /// The verdict on each image, in order (each distinct image verified once). Blocking.
    pub fn verdicts_blocking(&self, images: &[String]) -> Vec<Verdict> {
        let mut seen: HashMap<&str, Verdict> = HashMap::new();
        images
            .iter()
            .map(|image| {
                seen.entry(image.as_str())
                    .or_insert_with(|| self.verdict(image))
                    .clone()
            })
            .collect()
    }

    /// The verdict on one image. Blocking.
    pub fn verdict(&self, image: &str) -> Verdict {
        let denied = |message: String, reason| Verdict::Denied { message, reason };
        let parsed = match ImageRef::parse(image.trim()) {
            Ok(r) => r,
            Err(e) => return denied(format!("invalid image reference: {e}"), "invalid_reference"),
        };
        let Some(rule) = self.policy.rule_for(&parsed) else {
            return denied(
                format!("no policy rule matches {}", parsed.name()),
                "no_rule",
            );
        };
        let source = match (rule.action, &rule.trust) {
            (Action::Allow, _) => {
                return Verdict::Allowed {
                    pinned: None,
                    reason: "policy_allow",
                }
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
        let key = RepoKey {
            server: source.server.clone(),
            gun: gun.clone(),
        };
        let repo = self.trust.repo(&key, source);
        let required = &source.required_roles;
        let missing_role = |path: &[String]| {
            required
                .iter()
                .find(|r| !path.iter().any(|p| p == *r))
                .map(|r| {
                    denied(
                        format!(
                            "signed through {}, not through required role {r}",
                            path.join(" -> ")
                        ),
                        "required_role",
                    )
                })
        };
        let trust_denied = |e: trust::TrustError| denied(format!("{gun}: {e}"), e.reason());

        match (parsed.tag(), parsed.digest()) {
            (tag, Some(digest)) => {
                if let Some(tag) = tag {
                    match trust::lookup(&self.trust, &repo, tag) {
                        Err(e) => trust_denied(e),
                        Ok(None) => denied(format!("tag {tag} is not signed in {gun}"), "unsigned"),
                        Ok(Some(t)) if &t.digest != digest => denied(
                            format!(
                                "{digest} is not the signed digest {} of tag {tag}",
                                t.digest
                            ),
                            "digest_mismatch",
                        ),
                        Ok(Some(t)) => {
                            let path: Vec<String> =
                                t.role_path.iter().map(|r| r.as_str().to_owned()).collect();
                            missing_role(&path).unwrap_or(Verdict::Allowed {
                                pinned: None,
                                reason: "verified",
                            })
                        }
                    }
                } else {
                    match trust::is_trusted(&self.trust, &repo, digest) {
                        Err(e) => trust_denied(e),
                        Ok(false) => denied(format!("{digest} is not signed in {gun}"), "unsigned"),
                        Ok(true) if required.is_empty() => Verdict::Allowed {
                            pinned: None,
                            reason: "verified",
                        },
                        Ok(true) => match trust::digest_role_paths(&self.trust, &repo, digest) {
                            Err(e) => trust_denied(e),
                            Ok(paths) => match paths.iter().find(|p| missing_role(p).is_none()) {
                                Some(_) => Verdict::Allowed {
                                    pinned: None,
                                    reason: "verified",
                                },
                                None => paths.first().and_then(|p| missing_role(p)).unwrap_or_else(
                                    || {
                                        denied(
                                            format!("{digest} is not signed in {gun}"),
                                            "unsigned",
                                        )
                                    },
                                ),
                            },
                        },
                    }
                }
            }
            (_, None) => {
                let tag = parsed.tag_or_latest();
                match trust::lookup(&self.trust, &repo, tag) {
                    Err(e) => trust_denied(e),
                    Ok(None) => denied(format!("tag {tag} is not signed in {gun}"), "unsigned"),
                    Ok(Some(t)) => {
                        let path: Vec<String> =
                            t.role_path.iter().map(|r| r.as_str().to_owned()).collect();
                        missing_role(&path).unwrap_or(Verdict::Allowed {
                            pinned: Some(format!("{}@{}", image.trim(), t.digest)),
                            reason: "verified",
                        })
                    }
                }
            }
        }
    }
}

fn wire(review: &AdmissionReview<DynamicObject>) -> serde_json::Value {
    to_wire(review).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode AdmissionReview");
        serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": "", "allowed": false,
                         "status": {"message": "internal error", "code": 500}}
        })
    })
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
