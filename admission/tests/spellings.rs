//! Every spelling a container runtime accepts for one image gets one decision: upper- and
//! mixed-case registry hosts, the default port `:443`, Docker Hub's aliases
//! (`docker.io`, `index.docker.io`, `registry-1.docker.io`) and its implicit `library/`,
//! in tag, digest and tag@digest forms, for `verify`, `allow` and `deny` rules, against a
//! real vouch-server. The policy has the catch-all `allow` rule the docs permit, so a
//! spelling that slipped past the specific rules would be admitted unverified.
//!
//! A pinned tag keeps the pod's own spelling: the runtime pulls from exactly the registry
//! and repository it would have pulled from.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{digest_of, pinned_image, pod_running, signed_server, Harness, Repo};
use serde_json::Value;
use vouch_admission::decide::Endpoint;
use vouch_tuf::reference::ImageRef;

const CATCH_ALL: &str = "[[rule]]\npattern = \"**\"\naction = \"allow\"\n";

/// `registry.example.com/org/app` as a runtime may be given it.
const APP: [&str; 6] = [
    "registry.example.com/org/app",
    "REGISTRY.EXAMPLE.COM/org/app",
    "Registry.Example.Com/org/app",
    "registry.example.com:443/org/app",
    "Registry.Example.Com:443/org/app",
    "REGISTRY.EXAMPLE.COM:443/org/app",
];

/// `docker.io/library/nginx` as a runtime may be given it.
const NGINX: [&str; 12] = [
    "nginx",
    "library/nginx",
    "docker.io/nginx",
    "docker.io/library/nginx",
    "DOCKER.IO/library/nginx",
    "docker.io:443/library/nginx",
    "index.docker.io/nginx",
    "index.docker.io/library/nginx",
    "Index.Docker.Io:443/library/nginx",
    "registry-1.docker.io/nginx",
    "registry-1.docker.io/library/nginx",
    "registry-1.docker.io:443/library/nginx",
];

fn message(resp: &Value) -> String {
    resp["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn send(h: &Harness, image: &str, endpoint: Endpoint) -> (Value, Value) {
    let review = pod_running(image);
    let resp = h.send(&review, endpoint);
    assert_eq!(resp["uid"], review["request"]["uid"]);
    (review, resp)
}

fn assert_denied(h: &Harness, image: &str, needle: &str) {
    for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
        let (_, resp) = send(h, image, endpoint);
        assert_eq!(resp["allowed"], false, "{image}: {resp}");
        assert_eq!(resp["status"]["code"], 403, "{image}");
        assert!(resp.get("patch").is_none(), "{image}");
        let m = message(&resp);
        assert!(m.contains(image) && m.contains(needle), "{image}: {m}");
    }
}

/// Admitted; with `pinned`, the mutating response rewrites the image to exactly that.
fn assert_admitted(h: &Harness, image: &str, pinned: Option<&str>) {
    let (review, resp) = send(h, image, Endpoint::Mutate);
    assert_eq!(resp["allowed"], true, "{image}: {resp}");
    let got = pinned_image(&review, &resp);
    assert_eq!(got.as_deref(), pinned, "{image}");
    if let Some(p) = got {
        // The rewritten reference names the same repository as the pod's.
        assert_eq!(
            ImageRef::parse(&p).unwrap().name(),
            ImageRef::parse(image).unwrap().name(),
            "{image} -> {p}"
        );
    }
    let (_, resp) = send(h, image, Endpoint::Validate);
    assert_eq!(resp["allowed"], true, "{image}: {resp}");
    assert!(resp.get("patch").is_none(), "{image}");
}

fn metric_count(h: &Harness, prefix: &str) -> u64 {
    let m = h.webhook.metrics().render();
    m.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[test]
fn every_spelling_of_a_verified_image_is_verified_and_pinned_as_written() {
    let (server, mut repos) = signed_server();
    repos.push(Repo::init(
        &server,
        "docker.io/library/nginx",
        &[("v1", digest_of("v1"))],
    ));
    let h = Harness::new(&server.base, &repos, CATCH_ALL);
    let d1 = digest_of("v1");
    let other = digest_of("not signed");
    for (spellings, gun) in [
        (&APP[..], "registry.example.com/org/app"),
        (&NGINX[..], "docker.io/library/nginx"),
    ] {
        for name in spellings {
            // A signed tag: admitted and pinned, in the pod's own spelling.
            assert_admitted(&h, &format!("{name}:v1"), Some(&format!("{name}:v1@{d1}")));
            // By digest and by tag@digest: admitted as written.
            assert_admitted(&h, &format!("{name}@{d1}"), None);
            assert_admitted(&h, &format!("{name}:v1@{d1}"), None);
            // Unsigned tags and digests: denied, naming the canonical repository.
            assert_denied(
                &h,
                &format!("{name}:v2"),
                &format!("tag v2 is not signed in {gun}"),
            );
            assert_denied(
                &h,
                &format!("{name}@{other}"),
                &format!("is not signed in {gun}"),
            );
            assert_denied(
                &h,
                &format!("{name}:v1@{other}"),
                "is not the signed digest",
            );
            // No tag means `latest`, which is not signed.
            assert_denied(&h, name, &format!("tag latest is not signed in {gun}"));
        }
    }
    // Nothing went through the catch-all allow rule.
    assert_eq!(
        metric_count(
            &h,
            "vouch_admission_decisions_total{result=\"allowed\",reason=\"policy_allow\"} "
        ),
        0
    );
    // One repository each, whatever the spelling: one refresh per repository.
    assert_eq!(
        metric_count(&h, "vouch_admission_refreshes_total{result=\"ok\"} "),
        2
    );
}

#[test]
fn deny_rules_catch_every_spelling() {
    let (server, repos) = signed_server();
    // One deny pattern written canonically (the image's spelling must not matter), one in
    // another spelling (the pattern's must not either).
    let extra = format!(
        "{CATCH_ALL}[[rule]]\npattern = \"registry.example.com/org/debug-*\"\naction = \"deny\"\n\
         [[rule]]\npattern = \"Index.Docker.IO:443/busybox\"\naction = \"deny\"\n"
    );
    let h = Harness::new(&server.base, &repos, &extra);
    let d = digest_of("debug");
    for name in [
        "registry.example.com/org/debug-shell",
        "REGISTRY.EXAMPLE.COM/org/debug-shell",
        "Registry.Example.Com/org/debug-shell",
        "registry.example.com:443/org/debug-shell",
        "REGISTRY.EXAMPLE.COM:443/org/debug-shell",
    ] {
        for image in [
            name.to_owned(),
            format!("{name}:v1"),
            format!("{name}@{d}"),
            format!("{name}:v1@{d}"),
        ] {
            assert_denied(
                &h,
                &image,
                "denied by policy rule registry.example.com/org/debug-*",
            );
        }
    }
    for name in [
        "busybox",
        "library/busybox",
        "docker.io/busybox",
        "docker.io/library/busybox",
        "Docker.IO:443/library/busybox",
        "index.docker.io/busybox",
        "index.docker.io/library/busybox",
        "registry-1.docker.io/busybox",
        "registry-1.docker.io/library/busybox",
    ] {
        for image in [
            name.to_owned(),
            format!("{name}:1.36"),
            format!("{name}@{d}"),
            format!("{name}:1.36@{d}"),
        ] {
            assert_denied(
                &h,
                &image,
                "denied by policy rule docker.io/library/busybox",
            );
        }
    }
    // Another port is another endpoint: the catch-all applies.
    assert_admitted(&h, "registry.example.com:5000/org/debug-shell:v1", None);
    assert_admitted(&h, "docker.io/someone/busybox:1.36", None);
}

#[test]
fn allow_rules_match_every_spelling_and_nothing_more() {
    let (server, repos) = signed_server();
    let extra = "[[rule]]\npattern = \"Mirror.Example.com:443/base/**\"\naction = \"allow\"\n\
                 [[rule]]\npattern = \"library/nginx\"\naction = \"allow\"\n";
    let h = Harness::new(&server.base, &repos, extra);
    let d = digest_of("db");
    for name in [
        "mirror.example.com/base/db",
        "MIRROR.EXAMPLE.COM/base/db",
        "Mirror.Example.Com/base/db",
        "mirror.example.com:443/base/db",
        "MIRROR.example.com:443/base/db",
    ] {
        for image in [
            name.to_owned(),
            format!("{name}:16"),
            format!("{name}@{d}"),
            format!("{name}:16@{d}"),
        ] {
            // Allowed as is: never rewritten.
            assert_admitted(&h, &image, None);
        }
    }
    for name in NGINX {
        assert_admitted(&h, &format!("{name}:1.25"), None);
        assert_admitted(&h, &format!("{name}@{d}"), None);
    }
    // Not the allowed repositories: no rule (there is no catch-all here).
    for image in [
        "mirror.example.com:5000/base/db:16",
        "mirror.example.com/other/db:16",
        "docker.io/someone/nginx:1.25",
        "quay.io/library/nginx:1.25",
    ] {
        assert_denied(&h, image, "no policy rule matches");
    }
}
