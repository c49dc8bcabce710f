//! Fuzzing entry points for what the webhook reads: the `AdmissionReview` the API server
//! posts, and the policy file the operator writes.
//!
//! Each function takes arbitrary bytes and must return normally for every input. They are
//! run by the cargo-fuzz targets of the repository's `fuzz/` project (long campaigns, outside
//! CI) and by this crate's `fuzz_corpus` test over the checked-in `fuzz/corpus/<target>/`.
//! Not part of the API: hidden from the documentation, and free to change.

use std::path::Path;

use kube_core::admission::AdmissionResponse;
use serde_json::Value;
use vouch_tuf::reference::{Digest, ImageRef};
use vouch_verifier::pins::{PinError, TrustPins};

use crate::policy::{Policy, PolicyFiles, RootFiles};
use crate::review::{self, ImageSite, Scope, Verdict};

/// The fuzz targets of this crate, by name (as in [`vouch_tuf::fuzz::TARGETS`]).
pub const TARGETS: &[vouch_tuf::fuzz::Target] =
    &[("admission_review", admission_review), ("policy", policy)];

/// The directory the [`policy()`] target's policy is read from (never touched).
const POLICY_BASE: &str = "/nonexistent-vouch-fuzz";

/// The files a fuzzed policy names: none exists, and nothing is read from the filesystem.
struct NoFiles;

impl PolicyFiles for NoFiles {
    fn read(&self, _path: &Path) -> std::io::Result<Vec<u8>> {
        Err(std::io::ErrorKind::NotFound.into())
    }

    fn trust_pins(&self, path: &Path) -> Result<TrustPins, PinError> {
        Err(PinError::Read {
            path: path.to_owned(),
            source: std::io::ErrorKind::NotFound.into(),
        })
    }
}

/// The webhook's policy file (`Policy::parse_from`, the parser of [`Policy::load`] with the
/// files it names read from nowhere: every `root_file`, Notary root and `trust_pins` file is
/// missing), both as `check-policy` reads it ([`RootFiles::Required`]) and as the running
/// webhook does ([`RootFiles::MayBeMissing`]), then what the webhook asks of a policy
/// (summary, warnings, the rule for each literal pattern, exemptions). Properties: what
/// loads with every file required loads with files allowed to be missing, to the same
/// rules, none of them unavailable; a loaded policy watches every file
/// [`Policy::named_root_files`] names; an unavailable rule has no trust source; a literal
/// pattern that reads as an image reference has a rule for that image; every exempt
/// namespace is exempt.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = Path::new(POLICY_BASE);
    let required = Policy::parse_from(text, base, RootFiles::Required, &NoFiles);
    let Ok(loaded) = Policy::parse_from(text, base, RootFiles::MayBeMissing, &NoFiles) else {
        assert!(
            required.is_err(),
            "a policy that loads with every file required fails when files may be missing"
        );
        return;
    };
    if let Ok(strict) = &required {
        assert_eq!(strict.rules.len(), loaded.rules.len());
        assert!(
            strict.rules.iter().all(|r| r.root_unavailable.is_none()),
            "a policy loaded with every file required has an unavailable rule"
        );
    }
    for path in Policy::named_root_files(text, base) {
        assert!(
            loaded.root_files.contains(&path),
            "{} is named but not watched",
            path.display()
        );
    }
    for rule in &loaded.rules {
        if rule.root_unavailable.is_some() {
            assert!(
                rule.trust.is_none(),
                "an unavailable rule has a trust source"
            );
        }
        let pattern = rule.pattern.as_str();
        if !pattern.contains(['*', '?']) {
            if let Ok(image) = ImageRef::parse(pattern) {
                assert!(
                    loaded.rule_for(&image).is_some(),
                    "no rule for {image}, which rule {pattern} names"
                );
            }
        }
    }
    for ns in &loaded.exempt_namespaces {
        assert!(loaded.is_exempt(Some(ns)), "{ns} is listed but not exempt");
    }
    let _ = (
        loaded.summary(),
        loaded.warnings(),
        loaded.unavailable_roots().count(),
    );
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The policy target reaches a loaded policy: the seed with an inline root loads with
    /// every file required, and the one naming a root file loads only when files may be
    /// missing, its rule then unavailable.
    #[test]
    fn policy_seeds_load_without_files() {
        let base = Path::new(POLICY_BASE);
        let inline = include_str!("../../fuzz/corpus/policy/inline-root-and-literal-rules.toml");
        let p = Policy::parse_from(inline, base, RootFiles::Required, &NoFiles).unwrap();
        assert_eq!(p.rules.len(), 4);
        let named = include_str!("../../fuzz/corpus/policy/root-file-missing.toml");
        assert!(Policy::parse_from(named, base, RootFiles::Required, &NoFiles).is_err());
        let p = Policy::parse_from(named, base, RootFiles::MayBeMissing, &NoFiles).unwrap();
        assert_eq!(p.unavailable_roots().count(), 1);
        policy(inline.as_bytes());
        policy(named.as_bytes());
    }
}
