//! From an `AdmissionReview` to a decision: which images a request carries (and where),
//! what the policy says of each, and the response with its JSONPatch.
//!
//! The object is read as JSON (kube-core's `DynamicObject`), so the JSON pointers of the
//! patch are exactly where each image sits in the object the API server sent:
//!
//! | kind | pod spec at |
//! |---|---|
//! | `Pod` | `/spec` |
//! | `Deployment`, `ReplicaSet`, `StatefulSet`, `DaemonSet`, `Job`, `ReplicationController` | `/spec/template/spec` |
//! | `CronJob` | `/spec/jobTemplate/spec/template/spec` |
//!
//! and within a pod spec, `containers`, `initContainers` and `ephemeralContainers`.
//! Verification itself is in [`crate::decide`].

use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube_core::{DynamicObject, Status};
use serde_json::Value;

/// One image of the object and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSite {
    /// JSON pointer of the `image` field, e.g. `/spec/containers/0/image`.
    pub pointer: String,
    /// The image string as written.
    pub image: String,
}

/// The pod-spec pointer of a workload kind (by API group and kind), or `None` when the
/// kind runs no containers the webhook knows of.
pub fn pod_spec_pointer(group: &str, kind: &str) -> Option<&'static str> {
    match (group, kind) {
        ("", "Pod") => Some("/spec"),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => Some("/spec/template/spec"),
        ("batch", "CronJob") => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

/// Every container image in `object` below the pod spec at `spec_pointer`. A container
/// whose `image` is missing or not a string is reported with an empty image (and denied).
pub fn images(object: &Value, spec_pointer: &str) -> Vec<ImageSite> {
    let mut out = Vec::new();
    let Some(spec) = object.pointer(spec_pointer) else {
        return out;
    };
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(containers) = spec.get(list).and_then(Value::as_array) else {
            continue;
        };
        for (i, c) in containers.iter().enumerate() {
            out.push(ImageSite {
                pointer: format!("{spec_pointer}/{list}/{i}/image"),
                image: c
                    .get("image")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
    }
    out
}

/// What the webhook should do with a request before looking at images.
#[derive(Debug, PartialEq, Eq)]
pub enum Scope {
    /// Not a request the webhook checks: allow as is. The reason is the metrics label
    /// (`other_kind`, `other_operation`, `subresource`).
    Ignore(&'static str),
    /// Check these images.
    Check(Vec<ImageSite>),
}

/// Which images of `req` need a decision.
pub fn scope(req: &AdmissionRequest<DynamicObject>) -> Scope {
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return Scope::Ignore("other_operation");
    }
    match req.sub_resource.as_deref() {
        None | Some("") | Some("ephemeralcontainers") => {}
        Some(_) => return Scope::Ignore("subresource"),
    }
    let Some(spec) = pod_spec_pointer(&req.kind.group, &req.kind.kind) else {
        return Scope::Ignore("other_kind");
    };
    let Some(object) = &req.object else {
        return Scope::Check(Vec::new());
    };
    // Everything but `apiVersion`, `kind` and `metadata` is in `data`, at the same pointers.
    Scope::Check(images(&object.data, spec))
}

/// The verdict on one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted; `pinned` is the reference to write instead (tags resolved to a digest).
    Allowed {
        /// The pinned reference, if the image is to be rewritten.
        pinned: Option<String>,
        /// A short label for metrics (`verified`, `policy_allow`).
        reason: &'static str,
    },
    /// Refused.
    Denied {
        /// Why, for the user.
        message: String,
        /// A short label for metrics.
        reason: &'static str,
    },
}

/// The response to a request given the verdict on each of its images.
///
/// In `warn` mode denials become warnings and the request is allowed. With `mutate`, the
/// response patches each allowed image that has a pinned form.
pub fn respond(
    req: &AdmissionRequest<DynamicObject>,
    verdicts: &[(ImageSite, Verdict)],
    warn_only: bool,
    mutate: bool,
) -> AdmissionResponse {
    let mut resp = AdmissionResponse::from(req);
    let mut denials = Vec::new();
    let mut ops = Vec::new();
    for (site, v) in verdicts {
        match v {
            Verdict::Allowed {
                pinned: Some(p), ..
            } if mutate => match json_patch::jsonptr::PointerBuf::parse(&site.pointer) {
                Ok(path) => ops.push(json_patch::PatchOperation::Replace(
                    json_patch::ReplaceOperation {
                        path,
                        value: Value::String(p.clone()),
                    },
                )),
                Err(e) => denials.push(format!(
                    "{} ({}): cannot patch: {e}",
                    site.image, site.pointer
                )),
            },
            Verdict::Allowed { .. } => {}
            Verdict::Denied { message, .. } => {
                denials.push(format!("{} ({}): {message}", site.image, site.pointer));
            }
        }
    }
    if !denials.is_empty() {
        if warn_only {
            resp.warnings = Some(
                denials
                    .iter()
                    .map(|d| format!("vouch (warn mode) would deny {d}"))
                    .collect(),
            );
        } else {
            resp.allowed = false;
            resp.result =
                Status::failure(&format!("vouch denied {}", denials.join("; ")), "Forbidden")
                    .with_code(403);
            return resp;
        }
    }
    if !ops.is_empty() {
        match resp.clone().with_patch(json_patch::Patch(ops)) {
            Ok(r) => resp = r,
            Err(e) => {
                resp.allowed = false;
                resp.result =
                    Status::failure(&format!("cannot encode patch: {e}"), "InternalError")
                        .with_code(500);
            }
        }
    }
    resp
}

/// The wire form of a response review: kube-core serialises the patch bytes as a JSON
/// array of numbers, while the API documents (and every other webhook sends) a base64
/// string, so the patch is re-encoded here.
pub fn to_wire(review: &AdmissionReview<DynamicObject>) -> Result<Value, serde_json::Error> {
    let mut v = serde_json::to_value(review)?;
    if let Some(resp) = review.response.as_ref() {
        if let Some(patch) = &resp.patch {
            v["response"]["patch"] = Value::String(
                <base64ct::Base64 as base64ct::Encoding>::encode_string(patch),
            );
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn images_of_every_container_list() {
        let pod = json!({"spec": {
            "initContainers": [{"name": "i", "image": "a.io/init:v1"}],
            "containers": [{"name": "c0", "image": "a.io/app:v1"}, {"name": "c1"}],
            "ephemeralContainers": [{"name": "e", "image": "a.io/dbg@sha256:00"}],
        }});
        let got = images(&pod, "/spec");
        let pairs: Vec<_> = got
            .iter()
            .map(|s| (s.pointer.as_str(), s.image.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("/spec/initContainers/0/image", "a.io/init:v1"),
                ("/spec/containers/0/image", "a.io/app:v1"),
                ("/spec/containers/1/image", ""),
                ("/spec/ephemeralContainers/0/image", "a.io/dbg@sha256:00"),
            ]
        );
    }

    #[test]
    fn pod_spec_pointers() {
        assert_eq!(pod_spec_pointer("", "Pod"), Some("/spec"));
        assert_eq!(
            pod_spec_pointer("apps", "Deployment"),
            Some("/spec/template/spec")
        );
        assert_eq!(
            pod_spec_pointer("batch", "CronJob"),
            Some("/spec/jobTemplate/spec/template/spec")
        );
        assert_eq!(pod_spec_pointer("", "ConfigMap"), None);
        assert_eq!(pod_spec_pointer("extensions", "Deployment"), None);
    }
}
