//! Reviews naming many distinct images: the cap on distinct images per review, and what
//! checking many digests against one repository costs.
//!
//! A real `vouch-server` holds the trust data. The tests assert verdicts, messages, the
//! decision metric and how often the verifier read the targets of every role to answer
//! digest questions, never durations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{digest_of, fixture, message, signed_server, Delegation, Harness, REG};
use serde_json::Value;
use vouch_admission::decide::Endpoint;
use vouch_admission::trust::{Deadline, RepoKey};
use vouch_tuf::reference::{Digest, ImageRef};

/// A pod review whose containers run `images`.
fn pod(images: &[String]) -> Value {
    let mut review = fixture("pod-create.json");
    let spec = review.pointer_mut("/request/object/spec").unwrap();
    spec.as_object_mut().unwrap().remove("initContainers");
    let template = spec["containers"][0].clone();
    spec["containers"] = Value::Array(
        images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                let mut c = template.clone();
                c["name"] = Value::from(format!("c{i}"));
                c["image"] = Value::from(image.as_str());
                c
            })
            .collect(),
    );
    review
}

/// `n` distinct references by digest alone to `app`, none of them signed.
fn unsigned_digests(from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("{REG}/app@{}", Digest::sha256_of(format!("{i}").as_bytes())))
        .collect()
}

/// A review naming more distinct images than a review may is denied before any of them is
/// looked at: the message names the cap and the flag, the decision is counted under
/// `too_many_images`, no repository is set up and nothing is refreshed. The same image
/// named many times counts once.
#[test]
fn a_review_naming_too_many_images_is_denied_before_any_work() {
    let (server, repos) = signed_server();
    let h = Harness::with_config(&server.base, &repos, "", |c| c.max_images_per_review = 16);
    let images = unsigned_digests(0, 17);
    let resp = h.send(&pod(&images), Endpoint::Validate);
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = message(&resp);
    assert!(
        m.contains("more than 16 distinct images") && m.contains("--max-images-per-review"),
        "{m}"
    );
    let metrics = h.webhook.metrics().render();
    assert!(
        metrics.contains(
            "vouch_admission_decisions_total{result=\"denied\",reason=\"too_many_images\"} 1\n"
        ),
        "{metrics}"
    );
    for result in ["ok", "failed"] {
        assert!(
            metrics.contains(&format!(
                "vouch_admission_refreshes_total{{result=\"{result}\"}} 0\n"
            )),
            "{metrics}"
        );
    }
    assert_eq!(h.webhook.trust().len(), 0);

    // Sixteen distinct images, each named (and spelled with surrounding blanks) many times.
    let app = format!("{REG}/app:v1");
    let mut within: Vec<String> = images[..15].to_vec();
    within.extend((0..100).map(|i| format!("{}{app}", " ".repeat(i % 3))));
    let resp = h.send(&pod(&within), Endpoint::Validate);
    assert!(!message(&resp).contains("max-images-per-review"), "{resp}");
    assert!(message(&resp).contains("is not signed in"), "{resp}");
    assert!(!message(&resp).contains(&app), "{resp}");
}

/// Checking many digests against one trusted state reads the targets of its roles once:
/// two reviews of 100 distinct unsigned digests each (all denied, so nothing is
/// remembered) and one signed digest make one pass over the delegation tree, not 201.
#[test]
fn digest_checks_read_the_targets_once_per_trusted_state() {
    let (server, mut repos) = signed_server();
    repos[0].delegate_tree(
        &server,
        &[("v1", digest_of("v1"))],
        &[
            Delegation {
                parent: "targets",
                role: "targets/releases",
                paths: &["release-*"],
                tags: &[("release-1", digest_of("release-1"))],
            },
            Delegation {
                parent: "targets/releases",
                role: "targets/releases/prod",
                paths: &["release-*"],
                tags: &[("release-2", digest_of("release-2"))],
            },
        ],
    );
    let h = Harness::new(&server.base, &repos, "");
    for from in [0, 100] {
        let resp = h.send(&pod(&unsigned_digests(from, 100)), Endpoint::Validate);
        assert_eq!(resp["allowed"], false, "{resp}");
        assert!(message(&resp).contains("is not signed in"), "{resp}");
    }
    let signed = format!("{REG}/app@{}", digest_of("release-2"));
    let resp = h.send(&pod(std::slice::from_ref(&signed)), Endpoint::Validate);
    assert_eq!(resp["allowed"], true, "{resp}");

    let parsed = ImageRef::parse(&signed).unwrap();
    let source = h
        .webhook
        .policy()
        .rule_for(&parsed)
        .unwrap()
        .trust
        .clone()
        .unwrap();
    let gun = source.gun_for(&parsed).unwrap();
    let anchor = h.webhook.policy().anchor_for(&source, &gun).unwrap();
    let repo = h.webhook.trust().repo(
        RepoKey {
            server: source.server.clone(),
            gun,
            fetch: vouch_admission::trust::Fetch::Server,
        },
        &anchor,
    );
    let builds = h
        .webhook
        .trust()
        .with_trusted(
            &repo,
            Deadline::after(std::time::Duration::from_secs(5)),
            |u| u.digest_index_builds(),
        )
        .unwrap();
    assert_eq!(builds, 1);
}
