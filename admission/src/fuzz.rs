//! Fuzzing entry point for what the webhook reads off the network: the `AdmissionReview`
//! the API server posts.
//!
//! [`admission_review`] takes arbitrary bytes and must return normally for every input. It
//! is run by the cargo-fuzz target of the repository's `fuzz/` project (long campaigns,
//! outside CI) and by this crate's `fuzz_corpus` test over `fuzz/corpus/admission_review/`.
//! Not part of the API: hidden from the documentation, and free to change.

use kube_core::admission::AdmissionResponse;
use serde_json::Value;
use vouch_tuf::reference::{Digest, ImageRef};

use crate::review::{self, ImageSite, Scope, Verdict};

/// The fuzz targets of this crate, by name (as in [`vouch_tuf::fuzz::TARGETS`]).
pub const TARGETS: &[vouch_tuf::fuzz::Target] = &[("admission_review", admission_review)];

/// [`review::parse_review`], then what the webhook does with a request short of verifying:
/// [`review::scope`], a verdict per image (one that parses as a reference is "verified" and
/// pinned to a digest made from its text, one that does not is denied), [`review::respond`]
/// with mutation, and the wire form. Properties: the response encodes, and its JSONPatch
/// applies to the object as sent, writing each pinned reference at its image's pointer.
pub fn admission_review(data: &[u8]) {
    let Ok(review) = review::parse_review(data) else {
        return;
    };
    let Some(req) = review.request.as_ref() else {
        return;
    };
    let Scope::Check(sites) = review::scope(req) else {
        return;
    };
    let verdicts: Vec<(ImageSite, Verdict)> = sites
        .into_iter()
        .map(|site| {
            let verdict = match ImageRef::parse(&site.image) {
                Ok(r) => Verdict::Allowed {
                    pinned: Some(
                        r.with_digest(Digest::sha256_of(site.image.as_bytes()))
                            .to_string(),
                    ),
                    reason: "verified",
                },
                Err(e) => Verdict::Denied {
                    message: e.to_string(),
                    reason: "invalid_reference",
                },
            };
            (site, verdict)
        })
        .collect();
    for warn_only in [false, true] {
        let response = review::respond(req, &verdicts, warn_only, true);
        check_patch(req.object.as_ref(), &verdicts, &response);
        if let Err(e) = review::to_wire_bytes(response) {
            panic!("a response does not encode: {e}");
        }
    }
}

/// The response's patch, if any, applies to the object and writes every pinned reference.
fn check_patch(
    object: Option<&kube_core::DynamicObject>,
    verdicts: &[(ImageSite, Verdict)],
    response: &AdmissionResponse,
) {
    let (Some(object), Some(patch)) = (object, response.patch.as_ref()) else {
        return;
    };
    assert!(response.allowed, "a denied response carries a patch");
    let patch: json_patch::Patch = match serde_json::from_slice(patch) {
        Ok(p) => p,
        Err(e) => panic!("the response's patch is not a JSONPatch: {e}"),
    };
    let mut doc = match serde_json::to_value(object) {
        Ok(v) => v,
        Err(e) => panic!("the object does not encode: {e}"),
    };
    if let Err(e) = json_patch::patch(&mut doc, &patch.0) {
        panic!("the patch does not apply to the object it was made for: {e}");
    }
    for (site, verdict) in verdicts {
        if let Verdict::Allowed {
            pinned: Some(pinned),
            ..
        } = verdict
        {
            assert_eq!(
                doc.pointer(&site.pointer).and_then(Value::as_str),
                Some(pinned.as_str()),
                "the patch did not pin {}",
                site.pointer
            );
        }
    }
}
