//! Decisions against a real vouch-server on loopback: signed, unsigned, tampered, expired,
//! unknown registry, exempt namespace, warn mode, policy actions; and the JSONPatch applied
//! to each workload pins its images at the right paths.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{digest_of, fixture, message, patched, set_image, signed_server, Harness, REG};
use serde_json::Value;
use vouch_admission::decide::Endpoint;

#[test]
fn signed_workloads_of_every_kind_are_admitted_and_pinned_at_their_paths() {
    let (server, repos) = signed_server();
    let h = Harness::new(&server.base, &repos, "");
    let d1 = digest_of("v1");
    for (file, spec) in [
        ("pod-create.json", "/spec"),
        ("pod-ephemeralcontainers-update.json", "/spec"),
        ("deployment-create.json", "/spec/template/spec"),
        ("replicaset-create.json", "/spec/template/spec"),
        ("statefulset-create.json", "/spec/template/spec"),
        ("daemonset-create.json", "/spec/template/spec"),
        ("job-create.json", "/spec/template/spec"),
        (
            "cronjob-create.json",
            "/spec/jobTemplate/spec/template/spec",
        ),
        ("replicationcontroller-create.json", "/spec/template/spec"),
    ] {
        let review = fixture(file);
        let resp = h.send(&review, Endpoint::Mutate);
        assert_eq!(resp["uid"], review["request"]["uid"], "{file}");
        assert_eq!(resp["allowed"], true, "{file}: {resp}");
        let obj = patched(&review, &resp);
        let app = obj.pointer(&format!("{spec}/containers/0/image")).unwrap();
        assert_eq!(app, &Value::String(format!("{REG}/app:v1@{d1}")), "{file}");
        if let Some(init) = obj.pointer(&format!("{spec}/initContainers/0/image")) {
            assert_eq!(
                init,
                &Value::String(format!("{REG}/init:v1@{d1}")),
                "{file}"
            );
        }
        // Images already pinned by digest are left as written.
        if file.starts_with("pod-") {
            assert_eq!(
                obj.pointer("/spec/containers/1/image").unwrap(),
                &Value::String(format!("{REG}/sidecar@{d1}"))
            );
        }
        if file == "pod-ephemeralcontainers-update.json" {
            assert_eq!(
                obj.pointer("/spec/ephemeralContainers/0/image").unwrap(),
                &Value::String(format!("{REG}/app:v1@{d1}"))
            );
        }
        // Nothing else changed.
        let mut expect = review["request"]["object"].clone();
        let mut got = obj.clone();
        for o in [&mut expect, &mut got] {
            for p in [
                format!("{spec}/containers/0/image"),
                format!("{spec}/initContainers/0/image"),
            ] {
                if let Some(v) = o.pointer_mut(&p) {
                    *v = Value::Null;
                }
            }
        }
        assert_eq!(expect, got, "{file}");

        // The validating endpoint decides the same without patching.
        let resp = h.send(&review, Endpoint::Validate);
        assert_eq!(resp["allowed"], true, "{file}");
        assert!(resp.get("patch").is_none(), "{file}");
    }
    let metrics = h.webhook.metrics().render();
    assert!(
        metrics
            .contains("vouch_admission_decisions_total{result=\"allowed\",reason=\"verified\"} 18"),
        "{metrics}"
    );
    // Three repositories: three refreshes, every other answer from warm state.
    assert!(
        metrics.contains("vouch_admission_refreshes_total{result=\"ok\"} 3"),
        "{metrics}"
    );
}

#[test]
fn unsigned_tampered_unknown_and_mismatched_images_are_denied_by_name() {
    let (server, repos) = signed_server();
    let h = Harness::new(&server.base, &repos, "");
    let other = digest_of("not signed");
    let cases = [
        (format!("{REG}/app:v2"), "tag v2 is not signed", "unsigned"),
        (format!("{REG}/app@{other}"), "is not signed in", "unsigned"),
        (
            format!("{REG}/app:v1@{other}"),
            "is not the signed digest",
            "digest_mismatch",
        ),
        (
            "unknown.example.net/org/app:v1".to_owned(),
            "no policy rule matches unknown.example.net/org/app",
            "no_rule",
        ),
        (
            "nginx".to_owned(),
            "no policy rule matches docker.io/library/nginx",
            "no_rule",
        ),
        (
            "Not An Image".to_owned(),
            "invalid image reference",
            "invalid_reference",
        ),
    ];
    for (image, needle, reason) in &cases {
        let mut review = fixture("deployment-create.json");
        set_image(&mut review, "/spec/template/spec/containers/0/image", image);
        let resp = h.send(&review, Endpoint::Mutate);
        assert_eq!(resp["allowed"], false, "{image}: {resp}");
        assert_eq!(resp["uid"], review["request"]["uid"]);
        assert_eq!(resp["status"]["code"], 403);
        let m = message(&resp);
        assert!(
            m.contains(image.as_str()) && m.contains(needle),
            "{image}: {m}"
        );
        assert!(m.contains("/spec/template/spec/containers/0/image"), "{m}");
        // The signed init container is not blamed.
        assert!(!m.contains("init:v1"), "{m}");
        assert!(resp.get("patch").is_none());
        let metrics = h.webhook.metrics().render();
        assert!(
            metrics.contains(&format!("result=\"denied\",reason=\"{reason}\"")),
            "{reason}: {metrics}"
        );
    }
}

#[test]
fn a_denied_request_names_every_rejected_image() {
    let (server, repos) = signed_server();
    let h = Harness::new(&server.base, &repos, "");
    let mut review = fixture("pod-create.json");
    set_image(
        &mut review,
        "/spec/initContainers/0/image",
        &format!("{REG}/init:bad"),
    );
    set_image(
        &mut review,
        "/spec/containers/0/image",
        "elsewhere.io/app:v1",
    );
    let m = message(&h.send(&review, Endpoint::Validate));
    assert!(m.contains(&format!("{REG}/init:bad")), "{m}");
    assert!(m.contains("elsewhere.io/app:v1"), "{m}");
    assert!(!m.contains("sidecar"), "{m}");
}

#[test]
fn expired_metadata_is_denied() {
    let (server, repos) = signed_server();
    let h = Harness::new(&server.base, &repos, "refresh_interval_secs = 0");
    let review = fixture("job-create.json");
    assert_eq!(h.send(&review, Endpoint::Mutate)["allowed"], true);
    // The server's timestamp lives one day: a week later nothing it signed is current.
    h.clock.advance(7 * 86_400);
    let resp = h.send(&review, Endpoint::Mutate);
    assert_eq!(resp["allowed"], false);
    let m = message(&resp);
    assert!(m.contains("expired"), "{m}");
}

#[test]
fn exempt_namespaces_are_admitted_untouched() {
    let (server, repos) = signed_server();
    let h = Harness::new(
        &server.base,
        &repos,
        "exempt_namespaces = [\"kube-system\"]",
    );
    let mut review = fixture("daemonset-create.json");
    set_image(
        &mut review,
        "/spec/template/spec/containers/0/image",
        "unknown.io/agent:v9",
    );
    assert_eq!(h.send(&review, Endpoint::Mutate)["allowed"], false);
    review["request"]["namespace"] = Value::from("kube-system");
    let resp = h.send(&review, Endpoint::Mutate);
    assert_eq!(resp["allowed"], true);
    assert!(resp.get("patch").is_none());
    assert!(resp.get("warnings").is_none());
}

#[test]
fn warn_mode_admits_with_a_warning_per_failing_image_and_still_pins_the_good_ones() {
    let (server, repos) = signed_server();
    let h = Harness::new(&server.base, &repos, "mode = \"warn\"");
    let mut review = fixture("deployment-create.json");
    set_image(
        &mut review,
        "/spec/template/spec/containers/0/image",
        &format!("{REG}/app:v2"),
    );
    let resp = h.send(&review, Endpoint::Mutate);
    assert_eq!(resp["allowed"], true);
    let warnings = resp["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0]
        .as_str()
        .unwrap()
        .contains(&format!("{REG}/app:v2")));
    let obj = patched(&review, &resp);
    assert_eq!(
        obj.pointer("/spec/template/spec/initContainers/0/image")
            .unwrap(),
        &Value::String(format!("{REG}/init:v1@{}", digest_of("v1")))
    );
    assert_eq!(
        obj.pointer("/spec/template/spec/containers/0/image")
            .unwrap(),
        &Value::String(format!("{REG}/app:v2"))
    );
    assert!(h
        .webhook
        .metrics()
        .render()
        .contains("result=\"warned\",reason=\"unsigned\""));
}

#[test]
fn allow_and_deny_rules_and_other_kinds() {
    let (server, repos) = signed_server();
    let extra = "[[rule]]\npattern = \"mirror.io/**\"\naction = \"allow\"\n\
                 [[rule]]\npattern = \"mirror.io/debug/*\"\naction = \"deny\"\n";
    let h = Harness::new(&server.base, &repos, extra);
    let mut review = fixture("statefulset-create.json");
    set_image(
        &mut review,
        "/spec/template/spec/containers/0/image",
        "mirror.io/base/db:16",
    );
    let resp = h.send(&review, Endpoint::Mutate);
    assert_eq!(resp["allowed"], true, "{resp}");
    // Allowed images are not rewritten; the verified init container is.
    let obj = patched(&review, &resp);
    assert_eq!(
        obj.pointer("/spec/template/spec/containers/0/image")
            .unwrap(),
        "mirror.io/base/db:16"
    );
    set_image(
        &mut review,
        "/spec/template/spec/containers/0/image",
        "mirror.io/debug/shell",
    );
    let resp = h.send(&review, Endpoint::Mutate);
    assert_eq!(resp["allowed"], false);
    assert!(message(&resp).contains("denied by policy rule mirror.io/debug/*"));

    for file in ["configmap-create.json", "pod-status-update.json"] {
        let review = fixture(file);
        let resp = h.send(&review, Endpoint::Mutate);
        assert_eq!(resp["allowed"], true, "{file}");
        assert_eq!(resp["uid"], review["request"]["uid"]);
        assert!(resp.get("patch").is_none());
    }
}

#[test]
fn required_roles_admit_only_what_the_delegated_role_signed() {
    let (server, mut repos) = signed_server();
    // app: v1 signed by top-level targets; v2 (and a digest-named target) by targets/releases.
    let (d2, d3) = (digest_of("v2"), digest_of("v3"));
    let d3_name = d3.to_string();
    repos[0].delegate(
        &server,
        &[("v1", digest_of("v1"))],
        "targets/releases",
        &["v*", "sha256:*"],
        &[("v2", d2.clone()), (d3_name.as_str(), d3.clone())],
    );
    let dir = tempfile::tempdir().unwrap();
    let text = common::policy_text(&server.base, &repos[..1], "", dir.path()).replace(
        "action = \"verify\"\n",
        "action = \"verify\"\nrequired_roles = [\"targets/releases\"]\n",
    );
    let webhook = vouch_admission::decide::Webhook::new(
        vouch_admission::policy::Policy::parse(&text, dir.path()).unwrap(),
        vouch_admission::trust::TrustConfig::new(
            dir.path().join("cache"),
            std::time::Duration::from_secs(30),
            std::time::Duration::from_secs(5),
            std::sync::Arc::new(vouch_verifier::clock::SystemClock),
        ),
    );
    use vouch_admission::review::Verdict;
    // Through the delegation: admitted (and the tag pinned).
    assert_eq!(
        webhook.verdict(&format!("{REG}/app:v2")),
        Verdict::Allowed {
            pinned: Some(format!("{REG}/app:v2@{d2}")),
            reason: "verified"
        }
    );
    for image in [
        format!("{REG}/app@{d2}"),
        format!("{REG}/app@{d3}"),
        format!("{REG}/app:v2@{d2}"),
    ] {
        assert!(
            matches!(
                webhook.verdict(&image),
                Verdict::Allowed { pinned: None, .. }
            ),
            "{image}"
        );
    }
    // Signed, but by top-level targets only: refused, naming the role.
    for image in [
        format!("{REG}/app:v1"),
        format!("{REG}/app@{}", digest_of("v1")),
    ] {
        match webhook.verdict(&image) {
            Verdict::Denied { message, reason } => {
                assert_eq!(reason, "required_role", "{image}");
                assert!(message.contains("targets/releases"), "{message}");
            }
            other => panic!("{image}: {other:?}"),
        }
    }
}

/// The policy maps an image to its repository: a rule for `mirror.example.com/org/app` with
/// `gun = "registry.example.com/{repository}"` verifies its images against the trust data
/// of `registry.example.com/org/app`, and pins tags in the image's own spelling.
#[test]
fn images_are_verified_against_the_repository_the_policy_maps_them_to() {
    use vouch_admission::review::Verdict;
    let (server, repos) = signed_server();
    let h = Harness::with_policy(&server.base, &repos[..1], "", |text| {
        let rule = format!("pattern = \"{REG}/app\"\n");
        assert!(text.contains(&rule), "{text}");
        text.replace(
            &rule,
            "pattern = \"mirror.example.com/org/app\"\ngun = \"registry.example.com/{repository}\"\n",
        )
    });
    let d1 = digest_of("v1");
    assert_eq!(
        h.webhook.verdict("mirror.example.com/org/app:v1"),
        Verdict::Allowed {
            pinned: Some(format!("mirror.example.com/org/app:v1@{d1}")),
            reason: "verified"
        }
    );
    assert_eq!(
        h.webhook
            .verdict(&format!("mirror.example.com/org/app@{d1}")),
        Verdict::Allowed {
            pinned: None,
            reason: "verified"
        }
    );
    match h.webhook.verdict("mirror.example.com/org/app:v2") {
        Verdict::Denied { message, reason } => {
            assert_eq!(reason, "unsigned");
            assert_eq!(message, format!("tag v2 is not signed in {REG}/app"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_repository_without_trust_data_is_denied_as_such() {
    let (server, repos) = signed_server();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.json");
    // A root that names no repository, pinned for all of them.
    std::fs::write(&root, repos[0].root_bytes_naming(None)).unwrap();
    let extra = format!(
        "[[rule]]\npattern = \"{REG}/**\"\naction = \"verify\"\nserver = \"{}\"\nroot_file = \"{}\"\n",
        server.base,
        root.display()
    );
    let h = Harness::new(&server.base, &repos, &extra);
    let mut review = fixture("pod-create.json");
    set_image(
        &mut review,
        "/spec/containers/0/image",
        &format!("{REG}/never-signed:v1"),
    );
    let resp = h.send(&review, Endpoint::Validate);
    assert_eq!(resp["allowed"], false);
    let m = message(&resp);
    assert!(
        m.contains(&format!("{REG}/never-signed: no trust data")),
        "{m}"
    );
    assert!(h
        .webhook
        .metrics()
        .render()
        .contains("result=\"denied\",reason=\"no_trust_data\""));
}

fn metric(h: &Harness, line: &str) -> bool {
    h.webhook.metrics().render().contains(&format!("{line}\n"))
}

#[test]
fn a_warm_answer_still_checks_expiry() {
    let (server, repos) = signed_server();
    let h = Harness::new(&server.base, &repos, "");
    let review = fixture("job-create.json");
    // The first decision refreshes, the second is remembered, the third answered warm.
    for _ in 0..3 {
        assert_eq!(h.send(&review, Endpoint::Mutate)["allowed"], true);
    }
    let warm_hits = |h: &Harness| {
        let m = h.webhook.metrics().render();
        m.lines()
            .find_map(|l| l.strip_prefix("vouch_admission_cache_hits_total "))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let before = warm_hits(&h);
    let resp = h.send(&review, Endpoint::Mutate);
    assert_eq!(resp["allowed"], true);
    assert!(warm_hits(&h) > before);
    // Well within the refresh interval, but a week later: the remembered verdict is not
    // used, the metadata has expired and the request is denied.
    h.clock.advance(7 * 86_400);
    let resp = h.send(&review, Endpoint::Mutate);
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = message(&resp);
    assert!(m.contains("expired"), "{m}");
    assert!(metric(
        &h,
        "vouch_admission_refreshes_total{result=\"ok\"} 2"
    ));
}

#[test]
fn idle_repositories_are_dropped_and_refreshed_again_on_next_use() {
    let (server, mut repos) = signed_server();
    let h = Harness::with_config(&server.base, &repos, "", |c| {
        c.idle_expiry = std::time::Duration::from_millis(200);
    });
    use vouch_admission::review::Verdict;
    let pinned = |image: &str| match h.webhook.verdict(image) {
        Verdict::Allowed {
            pinned: Some(p), ..
        } => p,
        other => panic!("{image}: {other:?}"),
    };
    let (app, init) = (format!("{REG}/app:v1"), format!("{REG}/init:v1"));
    let d1 = digest_of("v1");
    assert_eq!(pinned(&app), format!("{app}@{d1}"));
    assert_eq!(h.webhook.trust().len(), 1);

    // The tag is signed again. Within the (30 s) refresh interval a warm repository would
    // still answer the old digest; once it has been idle long enough it is dropped …
    let d2 = digest_of("v1 rebuilt");
    repos[0].sign(&server, &[("v1", d2.clone())]);
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(pinned(&init), format!("{init}@{d1}"));
    assert_eq!(h.webhook.trust().len(), 1);
    assert!(metric(&h, "vouch_admission_repositories 1"));
    assert!(metric(&h, "vouch_admission_repositories_pruned_total 1"));

    // … and its next use refreshes (and verifies) it again, from the on-disk cache.
    assert_eq!(pinned(&app), format!("{app}@{d2}"));
    assert!(metric(
        &h,
        "vouch_admission_refreshes_total{result=\"ok\"} 3"
    ));
    assert_eq!(h.webhook.trust().len(), 2);

    // Nothing of a dropped repository is trusted from memory: with the server gone its
    // images are denied as unreachable.
    let mut server = server;
    server.kill();
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(h.webhook.trust().prune(), 2);
    match h.webhook.verdict(&app) {
        Verdict::Denied { reason, .. } => assert_eq!(reason, "unreachable"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn beyond_the_cap_the_least_recently_used_repository_is_dropped() {
    let (server, repos) = signed_server();
    let h = Harness::with_config(&server.base, &repos, "", |c| c.max_repositories = 2);
    use vouch_admission::review::Verdict;
    let allowed = |name: &str| {
        let image = format!("{REG}/{name}:v1");
        assert!(
            matches!(h.webhook.verdict(&image), Verdict::Allowed { .. }),
            "{image}"
        );
    };
    let tick = || std::thread::sleep(std::time::Duration::from_millis(5));
    allowed("app");
    tick();
    allowed("init");
    tick();
    allowed("app");
    tick();
    allowed("sidecar");
    // `init` was the least recently used: dropped, `app` kept.
    assert_eq!(h.webhook.trust().len(), 2);
    assert!(metric(&h, "vouch_admission_repositories_pruned_total 1"));
    assert!(metric(
        &h,
        "vouch_admission_refreshes_total{result=\"ok\"} 3"
    ));
    allowed("app");
    assert!(metric(
        &h,
        "vouch_admission_refreshes_total{result=\"ok\"} 3"
    ));
    allowed("init");
    assert!(metric(
        &h,
        "vouch_admission_refreshes_total{result=\"ok\"} 4"
    ));
    assert_eq!(h.webhook.trust().len(), 2);
}
