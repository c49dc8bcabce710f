//! End-to-end: `vouch inspect` shows, from verified metadata, who signed each tag (the role,
//! the delegation path to it and the keys whose signatures verify) and every role's keys,
//! threshold, version and expiry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{digest, Server, Vouch};

const GUN: &str = "registry.example.com/org/app";

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn inspect_shows_who_signed_each_tag_and_every_role() {
    let server = Server::start();
    let mut owner = Vouch::new(&server);
    let init = owner
        .run(&["--output", "json", "init", GUN, "--root-threshold", "2"])
        .json();
    let root_keys = strings(&init["root_keys"]);
    let targets_key = init["targets_key"].as_str().unwrap().to_owned();
    owner
        .run(&[
            "sign",
            &format!("{GUN}:v1"),
            "--digest",
            &digest(1),
            "--length",
            "11",
        ])
        .ok();

    // A CI key signs v2 through the delegated role targets/releases.
    let mut ci = owner.elsewhere();
    ci.set("VOUCH_RELEASES_PASSPHRASE", "ci secret");
    let ci_key = ci.generate_key("releases");
    let public = ci.trust_dir.parent().unwrap().join("ci.pub.json");
    std::fs::write(
        &public,
        ci.run(&["key", "export", &ci_key[..8], "--public"]).ok(),
    )
    .unwrap();
    owner.set("VOUCH_RELEASES_PASSPHRASE", "unused");
    owner
        .run(&[
            "delegation",
            "add",
            GUN,
            "releases",
            "--key",
            public.to_str().unwrap(),
            "--paths",
            "v*",
        ])
        .ok();
    ci.run(&[
        "sign",
        &format!("{GUN}:v2"),
        "--digest",
        &digest(2),
        "--length",
        "22",
        "--role",
        "releases",
    ])
    .ok();

    let j = owner.run(&["--output", "json", "inspect", GUN]).json();
    assert_eq!(j["gun"], GUN);
    let targets = j["targets"].as_array().unwrap();
    let target = |name: &str| {
        targets
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {j}"))
    };
    let v1 = target("v1");
    assert_eq!(v1["digest"], digest(1));
    assert_eq!(v1["length"], 11);
    assert_eq!(v1["role"], "targets");
    assert_eq!(strings(&v1["role_path"]), vec!["targets"]);
    assert_eq!(strings(&v1["signed_by"]), vec![targets_key.clone()]);
    let v2 = target("v2");
    assert_eq!(v2["digest"], digest(2));
    assert_eq!(v2["length"], 22);
    assert_eq!(v2["role"], "targets/releases");
    assert_eq!(
        strings(&v2["role_path"]),
        vec!["targets", "targets/releases"]
    );
    assert_eq!(strings(&v2["signed_by"]), vec![ci_key.clone()]);
    assert_eq!(targets.len(), 2, "{j}");

    let roles = j["roles"].as_array().unwrap();
    let role = |name: &str| {
        roles
            .iter()
            .find(|r| r["role"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {j}"))
    };
    let root = role("root");
    let mut listed = strings(&root["keyids"]);
    listed.sort();
    let mut made = root_keys.clone();
    made.sort();
    assert_eq!(listed, made);
    assert_eq!(root["threshold"], 2);
    let mut signed = strings(&root["signed_by"]);
    signed.sort();
    assert_eq!(signed, made, "both root keys signed root");
    assert_eq!(root["delegated_by"], serde_json::Value::Null);
    assert!(root["expires"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        strings(&role("targets")["keyids"]),
        vec![targets_key.clone()]
    );
    assert_eq!(role("targets")["threshold"], 1);
    for online in ["snapshot", "timestamp"] {
        let r = role(online);
        assert_eq!(strings(&r["keyids"]).len(), 1, "{r}");
        assert_eq!(strings(&r["signed_by"]), strings(&r["keyids"]));
    }
    // The delegated role also lists v1, with another digest: the delegation search answers
    // from targets (it comes first), so that is all inspect shows, as verify would see it.
    ci.sign_digest(GUN, "v1", 9, Some("releases")).ok();
    let v1 = owner
        .run(&["--output", "json", "inspect", &format!("{GUN}:v1")])
        .json();
    let rows = v1["targets"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v1}");
    assert_eq!(rows[0]["digest"], digest(1));
    assert_eq!(strings(&rows[0]["role_path"]), vec!["targets"]);
    owner
        .run(&["inspect", &format!("{GUN}@{}", digest(9))])
        .fails(1, &["signs no target"]);
    owner
        .run(&["verify", &format!("{GUN}@{}", digest(9)), "--no-registry"])
        .fails(3, &["not trusted"]);

    let releases = role("targets/releases");
    assert_eq!(releases["delegated_by"], "targets");
    assert_eq!(strings(&releases["keyids"]), vec![ci_key.clone()]);
    assert_eq!(releases["threshold"], 1);
    assert_eq!(releases["version"], 1);

    // One tag, or one digest.
    let one = ci
        .run(&["--output", "json", "inspect", &format!("{GUN}:v2")])
        .json();
    assert_eq!(one["targets"].as_array().unwrap().len(), 1);
    assert_eq!(one["targets"][0]["name"], "v2");
    let by_digest = ci
        .run(&[
            "--output",
            "json",
            "inspect",
            &format!("{GUN}@{}", digest(1)),
        ])
        .json();
    assert_eq!(by_digest["targets"].as_array().unwrap().len(), 1);
    assert_eq!(by_digest["targets"][0]["name"], "v1");
    ci.run(&["inspect", &format!("{GUN}:v9")])
        .fails(1, &["signs no target v9"]);

    // The text form: the delegation path and the signing key per tag, then the roles.
    let text = ci.run(&["inspect", GUN]).ok().to_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("v2 "))
        .unwrap_or_else(|| panic!("no v2 row:\n{text}"));
    assert!(
        line.contains("targets > targets/releases") && line.contains(&ci_key[..12]),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("targets/releases ") && l.contains("targets")),
        "{text}"
    );
}

#[test]
fn inspect_of_a_repository_without_trust_data_says_so() {
    let server = Server::start();
    let v = Vouch::new(&server);
    v.run(&["inspect", "registry.example.com/org/never"])
        .fails(1, &["has no trust data", "vouch init"]);
}
