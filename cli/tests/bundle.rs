//! End-to-end: an offline bundle exported while the server runs verifies with the server
//! stopped, on machines that pin the root or trust the bundle's root on first use; a
//! tampered bundle is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{digest, Server, Vouch};

const GUN: &str = "registry.example.com/org/app";

#[test]
fn offline_bundle_verifies_with_the_server_stopped() {
    let mut server = Server::start();
    let owner = Vouch::new(&server);
    owner.run(&["init", GUN]).ok();
    // Root version 1, as the owner hands it out after init.
    let dir = owner.trust_dir.parent().unwrap().to_owned();
    let root_v1 = dir.join("root-v1.json");
    std::fs::copy(owner.cached_root(GUN), &root_v1).unwrap();
    owner
        .run(&[
            "sign",
            &format!("{GUN}:v1"),
            "--digest",
            &digest(1),
            "--length",
            "9",
        ])
        .ok();
    // A second root version, so the bundle carries a chain to walk.
    owner.run(&["renew", GUN, "--role", "root"]).ok();
    owner
        .run(&[
            "sign",
            &format!("{GUN}:v2"),
            "--digest",
            &digest(2),
            "--length",
            "9",
        ])
        .ok();
    let bundle = dir.join("app.bundle.json");
    let out = owner.run(&[
        "--output",
        "json",
        "export",
        GUN,
        "-o",
        bundle.to_str().unwrap(),
    ]);
    let files = out.json()["files"].clone();
    for f in [
        "1.root.json",
        "2.root.json",
        "timestamp.json",
        "3.targets.json",
    ] {
        assert!(
            files.as_array().unwrap().iter().any(|x| x == f),
            "{f} missing from {files}"
        );
    }
    let bundle_doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    assert_eq!(bundle_doc["vouch_bundle"], 1);
    assert_eq!(bundle_doc["gun"], GUN);
    server.kill();

    // Pinned to root 1: walks to root 2 from the bundle, no warning.
    let air = owner.elsewhere();
    let ok = air.run(&[
        "--trust-root",
        root_v1.to_str().unwrap(),
        "verify",
        &format!("{GUN}:v2"),
        "--no-registry",
        "--bundle",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(ok.ok().trim(), format!("{GUN}@{}", digest(2)));
    assert!(ok.stderr.is_empty(), "{ok:?}");
    air.run(&[
        "verify",
        &format!("{GUN}:v3"),
        "--no-registry",
        "--bundle",
        bundle.to_str().unwrap(),
    ])
    .fails(3, &["not trusted"]);

    // Import on first use: a warning with the fingerprint, then verify offline.
    let fresh = owner.elsewhere();
    let imp = fresh.run(&["--output", "json", "import", bundle.to_str().unwrap()]);
    assert_eq!(imp.json()["root_version"], 2);
    assert!(imp.stderr.contains("trusting the root"), "{imp:?}");
    fresh
        .run(&[
            "verify",
            &format!("{GUN}:v1"),
            "--no-registry",
            "--bundle",
            bundle.to_str().unwrap(),
        ])
        .ok();

    // A bundle for another repository, and a tampered bundle, are refused.
    fresh
        .run(&[
            "verify",
            "registry.example.com/org/other:v1",
            "--no-registry",
            "--bundle",
            bundle.to_str().unwrap(),
        ])
        .fails(1, &["is a bundle of registry.example.com/org/app"]);
    let mut doc = bundle_doc.clone();
    let t = doc["files"]["3.targets.json"].as_str().unwrap().to_owned();
    // Swap two base64 characters of the signed body: still base64, no longer what was signed.
    let mut chars: Vec<char> = t.chars().collect();
    let i = chars.len() / 2;
    chars.swap(i, i + 1);
    if chars[i] == chars[i + 1] {
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    }
    doc["files"]["3.targets.json"] = serde_json::Value::String(chars.into_iter().collect());
    let tampered = dir.join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec(&doc).unwrap()).unwrap();
    let other = owner.elsewhere();
    other
        .run(&[
            "--trust-root",
            root_v1.to_str().unwrap(),
            "verify",
            &format!("{GUN}:v1"),
            "--no-registry",
            "--bundle",
            tampered.to_str().unwrap(),
        ])
        .fails(3, &["not trusted", "failed verification"]);
}
