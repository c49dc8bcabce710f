//! `required_roles` against signed repositories on a real vouch-server: a requirement is a
//! delegation path from `targets`, not a role name. The holder of `targets/dev` can name a
//! role `targets/releases` below `targets/dev` and sign with it; a rule requiring
//! `targets/releases` must refuse what that role signed, and admit what the role `targets`
//! delegated `targets/releases` to signed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    digest_of, message, pinned_image, pod_running, Delegation, Harness, Repo, Server, REG,
};
use serde_json::Value;
use vouch_admission::decide::Endpoint;
use vouch_tuf::reference::Digest;

/// Three repositories, each signing `v1` with top-level targets:
///
/// - `org/app` (the attack): `targets` → `targets/dev` (`*`) → a role *named*
///   `targets/releases` (`*`, a key of the dev holder's choosing), which signs `v2` and the
///   digest-named target of `v2-digest`;
/// - `org/init` (the real thing): `targets` → `targets/releases` (`v*`, `sha256:*`) signs
///   `v2` and the digest-named target; `targets/releases` → `targets/releases/prod` (`v3*`)
///   signs `v3`;
/// - `org/sidecar`: `targets` → a role named `targets/releases/prod` (`*`), straight from
///   `targets`, which signs `v3`.
fn delegated_server() -> (Server, Vec<Repo>) {
    let s = Server::start();
    let v1 = [("v1", digest_of("v1"))];
    let mut repos: Vec<Repo> = ["app", "init", "sidecar"]
        .iter()
        .map(|name| Repo::init(&s, &format!("{REG}/{name}"), &v1))
        .collect();
    let d2 = digest_of("v2");
    let d2_name = d2.to_string();
    let v2 = [("v2", d2.clone()), (d2_name.as_str(), d2.clone())];
    let v3 = [("v3", digest_of("v3"))];
    repos[0].delegate_tree(
        &s,
        &v1,
        &[
            Delegation {
                parent: "targets",
                role: "targets/dev",
                paths: &["*"],
                tags: &[],
            },
            Delegation {
                parent: "targets/dev",
                role: "targets/releases",
                paths: &["*"],
                tags: &v2,
            },
        ],
    );
    repos[1].delegate_tree(
        &s,
        &v1,
        &[
            Delegation {
                parent: "targets",
                role: "targets/releases",
                paths: &["v*", "sha256:*"],
                tags: &v2,
            },
            Delegation {
                parent: "targets/releases",
                role: "targets/releases/prod",
                paths: &["v3*"],
                tags: &v3,
            },
        ],
    );
    repos[2].delegate_tree(
        &s,
        &v1,
        &[Delegation {
            parent: "targets",
            role: "targets/releases/prod",
            paths: &["*"],
            tags: &v3,
        }],
    );
    (s, repos)
}

/// A webhook whose rules (one per repository) all require `required`.
fn requiring(server: &Server, repos: &[Repo], required: &str) -> Harness {
    Harness::with_policy(&server.base, repos, "", |text| {
        text.replace(
            "action = \"verify\"\n",
            &format!("action = \"verify\"\nrequired_roles = {required}\n"),
        )
    })
}

/// Sends a pod running `image` to the mutating endpoint; returns the response.
fn admit(h: &Harness, image: &str) -> (Value, Value) {
    let review = pod_running(image);
    let resp = h.send(&review, Endpoint::Mutate);
    assert_eq!(resp["uid"], review["request"]["uid"]);
    (review, resp)
}

fn assert_denied_for_path(h: &Harness, image: &str, vouched: &str, required: &str) {
    let (_, resp) = admit(h, image);
    assert_eq!(resp["allowed"], false, "{image}: {resp}");
    assert_eq!(resp["status"]["code"], 403, "{image}");
    assert!(resp.get("patch").is_none(), "{image}");
    let m = message(&resp);
    assert!(
        m.contains(image)
            && m.contains(&format!(
                "vouched for through {vouched}, not through the required delegation path \
                 {required}"
            )),
        "{image}: {m}"
    );
}

fn assert_admitted(h: &Harness, image: &str, pinned: Option<String>) {
    let (review, resp) = admit(h, image);
    assert_eq!(resp["allowed"], true, "{image}: {resp}");
    assert_eq!(pinned_image(&review, &resp), pinned, "{image}");
}

#[test]
fn a_role_named_like_the_required_one_but_delegated_by_another_role_is_refused() {
    let (server, repos) = delegated_server();
    let h = requiring(&server, &repos, "[\"targets/releases\"]");
    let d2: Digest = digest_of("v2");
    let required = "targets -> targets/releases";

    // The dev holder's role named targets/releases: refused by tag, by digest, by both.
    let attack = "targets -> targets/dev -> targets/releases";
    assert_denied_for_path(&h, &format!("{REG}/app:v2"), attack, required);
    assert_denied_for_path(&h, &format!("{REG}/app:v2@{d2}"), attack, required);
    assert_denied_for_path(&h, &format!("{REG}/app@{d2}"), attack, required);
    // Top-level targets alone is not the required path either.
    assert_denied_for_path(&h, &format!("{REG}/app:v1"), "targets", required);

    // What targets delegated targets/releases to signed: admitted, the tag pinned.
    assert_admitted(
        &h,
        &format!("{REG}/init:v2"),
        Some(format!("{REG}/init:v2@{d2}")),
    );
    assert_admitted(&h, &format!("{REG}/init@{d2}"), None);
    assert_admitted(&h, &format!("{REG}/init:v2@{d2}"), None);
    // Signed further down the required path: targets -> targets/releases -> …/prod.
    assert_admitted(
        &h,
        &format!("{REG}/init:v3"),
        Some(format!("{REG}/init:v3@{}", digest_of("v3"))),
    );
    // A role named targets/releases/prod, but delegated straight from targets.
    assert_denied_for_path(
        &h,
        &format!("{REG}/sidecar:v3"),
        "targets -> targets/releases/prod",
        required,
    );

    let metrics = h.webhook.metrics().render();
    assert!(
        metrics.contains("result=\"denied\",reason=\"required_role\""),
        "{metrics}"
    );
}

#[test]
fn a_nested_requirement_names_the_whole_chain() {
    let (server, repos) = delegated_server();
    let h = requiring(&server, &repos, "[\"targets/releases/prod\"]");
    let required = "targets -> targets/releases -> targets/releases/prod";
    // targets -> targets/releases -> targets/releases/prod: admitted.
    assert_admitted(
        &h,
        &format!("{REG}/init:v3"),
        Some(format!("{REG}/init:v3@{}", digest_of("v3"))),
    );
    // Only the first step of the chain: refused.
    assert_denied_for_path(
        &h,
        &format!("{REG}/init:v2"),
        "targets -> targets/releases",
        required,
    );
    // The last role's name, delegated by targets itself: refused.
    assert_denied_for_path(
        &h,
        &format!("{REG}/sidecar:v3"),
        "targets -> targets/releases/prod",
        required,
    );
    assert_denied_for_path(
        &h,
        &format!("{REG}/sidecar@{}", digest_of("v3")),
        "targets -> targets/releases/prod",
        required,
    );
}

#[test]
fn an_explicit_chain_of_role_names_is_the_same_requirement() {
    let (server, repos) = delegated_server();
    let h = requiring(
        &server,
        &repos,
        "[[\"targets/releases\", \"targets/releases/prod\"]]",
    );
    let required = "targets -> targets/releases -> targets/releases/prod";
    assert_admitted(
        &h,
        &format!("{REG}/init:v3"),
        Some(format!("{REG}/init:v3@{}", digest_of("v3"))),
    );
    assert_denied_for_path(
        &h,
        &format!("{REG}/sidecar:v3"),
        "targets -> targets/releases/prod",
        required,
    );
}

/// A digest signed twice: as `v1` by top-level `targets`, and digest-named by
/// `targets/releases`. By the digest alone both role paths vouch for it, and the second
/// meets the requirement, so it is admitted; by the tag only `targets` vouched, so it is not.
#[test]
fn a_digest_signed_under_two_names_is_admitted_through_the_path_that_meets_the_requirement() {
    let s = Server::start();
    let d1 = digest_of("v1");
    let d1_name = d1.to_string();
    let v1 = [("v1", d1.clone())];
    let mut repo = Repo::init(&s, &format!("{REG}/app"), &v1);
    repo.delegate_tree(
        &s,
        &v1,
        &[Delegation {
            parent: "targets",
            role: "targets/releases",
            paths: &["sha256:*"],
            tags: &[(d1_name.as_str(), d1.clone())],
        }],
    );
    let h = requiring(&s, &[repo], "[\"targets/releases\"]");
    let required = "targets -> targets/releases";
    assert_admitted(&h, &format!("{REG}/app@{d1}"), None);
    assert_denied_for_path(&h, &format!("{REG}/app:v1"), "targets", required);
    assert_denied_for_path(&h, &format!("{REG}/app:v1@{d1}"), "targets", required);
}
