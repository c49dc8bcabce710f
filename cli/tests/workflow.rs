//! End-to-end: the `vouch` binary against a real `vouch-server`: init, sign, verify,
//! lookup, list, status, unsign, concurrent signers, trust on first use and pinned roots.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{digest, Server, Vouch};

const GUN: &str = "registry.example.com/org/app";

#[test]
fn init_sign_verify_lookup() {
    let server = Server::start();
    let v = Vouch::new(&server);

    let init = v.run(&["--output", "json", "init", GUN]);
    let init = init.json();
    assert_eq!(init["gun"], GUN);
    assert_eq!(init["snapshot"], "server");
    let keys = v.run(&["--output", "json", "key", "list"]).json();
    let roles: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["root", "targets"]);

    let d1 = digest(1);
    let signed = v.run(&[
        "sign",
        &format!("{GUN}:v1"),
        "--digest",
        &d1,
        "--length",
        "1234",
        "--media-type",
        "application/vnd.oci.image.manifest.v1+json",
        "--custom",
        r#"{"sbom":"sha256:feed"}"#,
    ]);
    assert!(signed.ok().contains("targets version 2"), "{signed:?}");

    // verify: exit 0 and the pinned reference, in text and JSON.
    let out = v.run(&["verify", &format!("{GUN}:v1"), "--no-registry"]);
    assert_eq!(out.ok().trim(), format!("{GUN}@{d1}"));
    let j = v
        .run(&[
            "--output",
            "json",
            "verify",
            &format!("{GUN}:v1"),
            "--no-registry",
        ])
        .json();
    assert_eq!(j["trusted"], true);
    assert_eq!(j["pinned"], format!("{GUN}@{d1}"));
    assert_eq!(j["role_path"], serde_json::json!(["targets"]));
    assert_eq!(j["role_paths"], serde_json::json!([["targets"]]));
    // The digest alone, and tag@digest, are trusted too.
    v.run(&["verify", &format!("{GUN}@{d1}"), "--no-registry"])
        .ok();
    v.run(&["verify", &format!("{GUN}:v1@{d1}"), "--no-registry"])
        .ok();

    // lookup
    let j = v
        .run(&["--output", "json", "lookup", &format!("{GUN}:v1")])
        .json();
    assert_eq!(j["digest"], d1);
    assert_eq!(j["length"], 1234);
    assert_eq!(
        j["custom"]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(j["custom"]["sbom"], "sha256:feed");
    let text = v.run(&["lookup", &format!("{GUN}:v1")]);
    assert!(text.ok().contains(&d1), "{text:?}");

    // Not trusted: an unsigned tag, another digest, a tag with the wrong digest (exit 3).
    v.run(&["verify", &format!("{GUN}:v2"), "--no-registry"])
        .fails(3, &["not trusted", "v2"]);
    v.run(&["verify", &format!("{GUN}@{}", digest(9)), "--no-registry"])
        .fails(3, &["not trusted"]);
    let j = v.run(&[
        "--output",
        "json",
        "verify",
        &format!("{GUN}:v1@{}", digest(9)),
        "--no-registry",
    ]);
    assert_eq!(j.code, 3);
    assert_eq!(j.json()["trusted"], false);

    // A bare digest, list and status.
    let d2 = digest(2);
    v.run(&["sign", &format!("{GUN}@{d2}"), "--length", "99"])
        .ok();
    let list = v.run(&["--output", "json", "list", GUN]).json();
    let names: Vec<&str> = list["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [d2.as_str(), "v1"]);
    let status = v.run(&["--output", "json", "status", GUN]).json();
    let targets = &status["roles"][1];
    assert_eq!(targets["role"], "targets");
    assert_eq!(targets["version"], 3);
    assert_eq!(targets["local_keys"], 1);
    assert_eq!(status["warnings"], serde_json::json!([]));
    let text = v.run(&["status", GUN]);
    assert!(text.ok().contains("timestamp"), "{text:?}");

    // unsign: the tag stops verifying.
    v.run(&["unsign", &format!("{GUN}:v1")]).ok();
    v.run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .fails(3, &["not trusted"]);
    v.run(&["unsign", &format!("{GUN}:v1")])
        .fails(1, &["has no signed target v1"]);
}

#[test]
fn client_held_snapshot() {
    let server = Server::start();
    let v = Vouch::new(&server);
    let init = v.run(&["--output", "json", "init", GUN, "--client-snapshot"]);
    assert_eq!(init.json()["snapshot"], "client");
    let d = digest(3);
    v.run(&[
        "sign",
        &format!("{GUN}:v1"),
        "--digest",
        &d,
        "--length",
        "5",
    ])
    .ok();
    v.run(&[
        "sign",
        &format!("{GUN}:v2"),
        "--digest",
        &d,
        "--length",
        "5",
    ])
    .ok();
    let out = v.run(&["verify", &format!("{GUN}:v2"), "--no-registry"]);
    assert_eq!(out.ok().trim(), format!("{GUN}@{d}"));
    let status = v.run(&["--output", "json", "status", GUN]).json();
    let snapshot = &status["roles"][2];
    assert_eq!(snapshot["role"], "snapshot");
    assert_eq!(snapshot["version"], 3);
    assert_eq!(snapshot["local_keys"], 1);
}

#[test]
fn concurrent_signers_of_one_repository_all_land() {
    let server = Server::start();
    let v = Vouch::new(&server);
    v.run(&["init", GUN]).ok();
    let tags = ["a", "b", "c", "d"];
    let children: Vec<_> = tags
        .iter()
        .enumerate()
        .map(|(i, tag)| {
            let d = digest(10 + i as u8);
            v.command(&[
                "--output",
                "json",
                "sign",
                &format!("{GUN}:{tag}"),
                "--digest",
                &d,
                "--length",
                "10",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut versions = Vec::new();
    let mut attempts = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        versions.push(j["version"].as_u64().unwrap());
        attempts += j["attempts"].as_u64().unwrap();
    }
    eprintln!("{} signers needed {attempts} publishes", tags.len());
    versions.sort_unstable();
    assert_eq!(versions, [2, 3, 4, 5], "each publish made its own version");
    for (i, tag) in tags.iter().enumerate() {
        let out = v.run(&["verify", &format!("{GUN}:{tag}"), "--no-registry"]);
        assert_eq!(out.ok().trim(), format!("{GUN}@{}", digest(10 + i as u8)));
    }
}

#[test]
fn other_machines_trust_on_first_use_or_a_pinned_root() {
    let server = Server::start();
    let owner = Vouch::new(&server);
    owner.run(&["init", GUN]).ok();
    owner
        .run(&[
            "sign",
            &format!("{GUN}:v1"),
            "--digest",
            &digest(4),
            "--length",
            "1",
        ])
        .ok();

    // Trust on first use: it works, and says so once, with the root's fingerprint.
    let mut ci = owner.elsewhere();
    ci.token = None;
    let first = ci.run(&["verify", &format!("{GUN}:v1"), "--no-registry"]);
    first.ok();
    assert!(
        first.stderr.contains("warning: trusting the root") && first.stderr.contains("sha256"),
        "{first:?}"
    );
    let second = ci.run(&["verify", &format!("{GUN}:v1"), "--no-registry"]);
    second.ok();
    assert!(second.stderr.is_empty(), "{second:?}");

    // A pinned root: no warning; a root of another repository is refused.
    let other = "registry.example.com/org/other";
    owner.run(&["init", other]).ok();
    let root_of = |gun: &str| owner.cached_root(gun);
    let pinned = owner.elsewhere();
    let ok = pinned.run(&[
        "--trust-root",
        root_of(GUN).to_str().unwrap(),
        "verify",
        &format!("{GUN}:v1"),
        "--no-registry",
    ]);
    ok.ok();
    assert!(ok.stderr.is_empty(), "{ok:?}");
    let wrong = owner.elsewhere();
    wrong
        .run(&[
            "--trust-root",
            root_of(other).to_str().unwrap(),
            "verify",
            &format!("{GUN}:v1"),
            "--no-registry",
        ])
        .fails(
            3,
            &[
                "not trusted",
                "is the root of registry.example.com/org/other, not of registry.example.com/org/app",
            ],
        );
}

#[test]
fn renew_root_and_targets() {
    let server = Server::start();
    let v = Vouch::new(&server);
    v.run(&["init", GUN]).ok();
    v.run(&[
        "sign",
        &format!("{GUN}:v1"),
        "--digest",
        &digest(5),
        "--length",
        "1",
    ])
    .ok();
    // Nothing expires soon: nothing to do.
    let none = v.run(&["--output", "json", "renew", GUN]).json();
    assert_eq!(none["renewed"], serde_json::json!([]));
    // Forced: root 2 (signed by the same key, so old clients walk to it), targets 3.
    let r = v
        .run(&[
            "--output", "json", "renew", GUN, "--role", "root", "--role", "targets",
        ])
        .json();
    assert_eq!(
        r["renewed"],
        serde_json::json!([{"role": "root", "version": 2}, {"role": "targets", "version": 3}])
    );
    let status = v.run(&["--output", "json", "status", GUN]).json();
    assert_eq!(status["roles"][0]["version"], 2);
    // Another machine that trusted root 1 walks the chain to root 2.
    let other = v.elsewhere();
    let out = other.run(&["verify", &format!("{GUN}:v1"), "--no-registry"]);
    assert_eq!(out.ok().trim(), format!("{GUN}@{}", digest(5)));
    v.run(&["renew", GUN, "--role", "root"]).ok();
    let out = other.run(&["verify", &format!("{GUN}:v1"), "--no-registry"]);
    out.ok();
}
