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
use kube_core::TypeMeta;
use kube_core::{DynamicObject, Status};
use serde::{Deserialize, Serialize};
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
    if ops.is_empty() {
        return resp;
    }
    // `with_patch` takes the response; keep what the error case needs (no clone).
    let warnings = resp.warnings.clone();
    match resp.with_patch(json_patch::Patch(ops)) {
        Ok(r) => r,
        Err(e) => {
            let mut resp = AdmissionResponse::from(req);
            resp.warnings = warnings;
            resp.allowed = false;
            resp.result = Status::failure(&format!("cannot encode patch: {e}"), "InternalError")
                .with_code(500);
            resp
        }
    }
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

/// An `AdmissionReview` as read: the same fields as kube-core's, without its flattened
/// `TypeMeta`, which makes serde buffer the whole review (object included) before reading it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Incoming {
    api_version: String,
    kind: String,
    #[serde(default)]
    request: Option<AdmissionRequest<DynamicObject>>,
    #[serde(default)]
    response: Option<AdmissionResponse>,
}

/// Reads an `AdmissionReview` from JSON: the same result as `serde_json::from_slice` into
/// kube-core's type, in one pass over the input.
pub fn parse_review(bytes: &[u8]) -> Result<AdmissionReview<DynamicObject>, serde_json::Error> {
    let r: Incoming = serde_json::from_slice(bytes)?;
    Ok(AdmissionReview {
        types: TypeMeta {
            api_version: r.api_version,
            kind: r.kind,
        },
        request: r.request,
        response: r.response,
    })
}

/// The response review as sent: `apiVersion` and `kind` of the request's review, and the
/// response with its patch as a base64 string.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    api_version: &'a str,
    kind: &'a str,
    response: WireResponse<'a>,
}

#[derive(Serialize)]
struct WireResponse<'a> {
    /// Everything but the patch (taken out of it).
    #[serde(flatten)]
    response: &'a AdmissionResponse,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
}

fn with_wire<R>(
    mut response: AdmissionResponse,
    f: impl FnOnce(&Wire<'_>) -> Result<R, serde_json::Error>,
) -> Result<R, serde_json::Error> {
    let patch = response
        .patch
        .take()
        .map(|p| <base64ct::Base64 as base64ct::Encoding>::encode_string(&p));
    f(&Wire {
        api_version: &response.types.api_version,
        kind: &response.types.kind,
        response: WireResponse {
            response: &response,
            patch,
        },
    })
}

/// The wire form of the review answering with `response` (the same document as
/// [`to_wire`] of `response.into_review()`), as JSON bytes, serialised once.
pub fn to_wire_bytes(response: AdmissionResponse) -> Result<Vec<u8>, serde_json::Error> {
    with_wire(response, |w| serde_json::to_vec(w))
}

/// [`to_wire_bytes`] as a JSON value.
pub fn to_wire_value(response: AdmissionResponse) -> Result<Value, serde_json::Error> {
    with_wire(response, |w| serde_json::to_value(w))
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
    fn wire_forms_agree() {
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "operation": "CREATE",
                "userInfo": {},
                "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                           "spec": {"containers": [{"name": "c", "image": "a.io/app:v1"}]}},
            }
        }))
        .unwrap();
        let req: AdmissionRequest<DynamicObject> = review.try_into().unwrap();
        let site = ImageSite {
            pointer: "/spec/containers/0/image".to_owned(),
            image: "a.io/app:v1".to_owned(),
        };
        for verdict in [
            Verdict::Allowed {
                pinned: Some("a.io/app:v1@sha256:00".to_owned()),
                reason: "verified",
            },
            Verdict::Denied {
                message: "no".to_owned(),
                reason: "unsigned",
            },
        ] {
            let resp = respond(&req, &[(site.clone(), verdict)], false, true);
            let old = to_wire(&resp.clone().into_review()).unwrap();
            let bytes: Value =
                serde_json::from_slice(&to_wire_bytes(resp.clone()).unwrap()).unwrap();
            assert_eq!(old, bytes);
            assert_eq!(old, to_wire_value(resp).unwrap());
            assert_eq!(old["response"]["uid"], "u-1");
        }
        let invalid = AdmissionResponse::invalid("x");
        assert_eq!(
            to_wire(&invalid.clone().into_review()).unwrap(),
            to_wire_value(invalid).unwrap()
        );
    }

    #[test]
    fn parsing_agrees_with_kube_core() {
        for file in [
            "pod-create.json",
            "deployment-create.json",
            "pod-ephemeralcontainers-update.json",
            "cronjob-create.json",
        ] {
            let bytes =
                std::fs::read(format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
            let ours = parse_review(&bytes).unwrap();
            let theirs: AdmissionReview<DynamicObject> = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(
                serde_json::to_value(&ours).unwrap(),
                serde_json::to_value(&theirs).unwrap(),
                "{file}"
            );
            let (a, b): (
                AdmissionRequest<DynamicObject>,
                AdmissionRequest<DynamicObject>,
            ) = (ours.try_into().unwrap(), theirs.try_into().unwrap());
            assert_eq!(a.types, b.types);
        }
        let bad: [&[u8]; 4] = [b"{}", b"{\"kind\":\"AdmissionReview\"}", b"[]", b"nope"];
        for bad in bad {
            assert!(parse_review(bad).is_err());
            assert!(serde_json::from_slice::<AdmissionReview<DynamicObject>>(bad).is_err());
        }
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
