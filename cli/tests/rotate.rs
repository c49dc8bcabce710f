//! End-to-end: rotating the root (cross-signed), targets, and the server-held snapshot and
//! timestamp keys; clients that trusted the old root walk the chain; old keys stop signing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{digest, Server, Vouch};

const GUN: &str = "registry.example.com/org/app";

fn keyid_of(v: &Vouch, role: &str) -> Vec<String> {
    let status = v.run(&["--output", "json", "status", GUN]).json();
    let r = status["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == role)
        .unwrap()
        .clone();
    r["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn rotate_every_top_level_role() {
    let server = Server::start();
    let owner = Vouch::new(&server);
    owner.run(&["init", GUN]).ok();
    owner
        .run(&[
            "sign",
            &format!("{GUN}:v1"),
            "--digest",
            &digest(1),
            "--length",
            "1",
        ])
        .ok();
    // A client that trusts root version 1.
    let client = owner.elsewhere();
    client
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .ok();
    // A signer holding only the old targets key.
    let old_targets = keyid_of(&owner, "targets");

    let mut root_version = 1;
    for role in ["targets", "root", "timestamp", "snapshot"] {
        let before = keyid_of(&owner, role);
        let r = owner.run(&["--output", "json", "rotate", GUN, role]).json();
        root_version += 1;
        assert_eq!(r["root_version"], root_version, "{role}");
        assert_eq!(r["old_keyids"], serde_json::json!(before), "{role}");
        let after = keyid_of(&owner, role);
        assert_eq!(after, [r["keyid"].as_str().unwrap()], "{role}");
        assert_ne!(after, before, "{role}");
        // The client pinned to an older root still verifies, walking the chain.
        let out = client.run(&["verify", &format!("{GUN}:v1"), "--no-registry"]);
        assert_eq!(out.ok().trim(), format!("{GUN}@{}", digest(1)), "{role}");
        // Signing still works with the current keys.
        owner
            .run(&[
                "sign",
                &format!("{GUN}:{role}"),
                "--digest",
                &digest(2),
                "--length",
                "1",
            ])
            .ok();
    }
    let status = owner.run(&["--output", "json", "status", GUN]).json();
    assert_eq!(status["roles"][0]["version"], 5);

    // The old targets key is no longer assigned: a trust directory holding only it cannot sign.
    let keys = owner.run(&["--output", "json", "key", "list"]).json();
    assert!(keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["keyid"] == old_targets[0].as_str()));
    let fresh = owner.elsewhere();
    fresh
        .run(&[
            "sign",
            &format!("{GUN}:x"),
            "--digest",
            &digest(3),
            "--length",
            "1",
        ])
        .fails(1, &["signing targets needs 1 of its keys"]);

    // Delegated roles are rotated through delegations.
    owner
        .run(&["rotate", GUN, "releases"])
        .fails(1, &["vouch delegation add"]);
}

#[test]
fn rotate_a_client_held_snapshot_key() {
    let server = Server::start();
    let owner = Vouch::new(&server);
    owner.run(&["init", GUN, "--client-snapshot"]).ok();
    owner
        .run(&[
            "sign",
            &format!("{GUN}:v1"),
            "--digest",
            &digest(1),
            "--length",
            "1",
        ])
        .ok();
    let before = keyid_of(&owner, "snapshot");
    owner.run(&["rotate", GUN, "snapshot"]).ok();
    owner.run(&["rotate", GUN, "targets"]).ok();
    assert_ne!(keyid_of(&owner, "snapshot"), before);
    owner
        .run(&[
            "sign",
            &format!("{GUN}:v2"),
            "--digest",
            &digest(2),
            "--length",
            "1",
        ])
        .ok();
    let out = owner
        .elsewhere()
        .run(&["verify", &format!("{GUN}:v2"), "--no-registry"]);
    assert_eq!(out.ok().trim(), format!("{GUN}@{}", digest(2)));
}

fn threshold_of(v: &Vouch, role: &str) -> u64 {
    let status = v.run(&["--output", "json", "status", GUN]).json();
    status["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == role)
        .unwrap()["threshold"]
        .as_u64()
        .unwrap()
}

#[test]
fn thresholds_above_one() {
    let server = Server::start();
    let owner = Vouch::new(&server);
    let init = owner
        .run(&[
            "--output",
            "json",
            "init",
            GUN,
            "--root-threshold",
            "2",
            "--targets-threshold",
            "2",
        ])
        .json();
    assert_eq!(init["root_keys"].as_array().unwrap().len(), 2);
    assert_eq!(init["targets_keys"].as_array().unwrap().len(), 2);
    assert_eq!(init["root_threshold"], 2);
    assert_eq!(keyid_of(&owner, "targets").len(), 2);
    assert_eq!(threshold_of(&owner, "root"), 2);
    assert_eq!(threshold_of(&owner, "targets"), 2);

    // Signing takes both targets keys; every client checks the threshold.
    owner
        .run(&[
            "sign",
            &format!("{GUN}:v1"),
            "--digest",
            &digest(1),
            "--length",
            "1",
        ])
        .ok();
    let client = owner.elsewhere();
    client
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .ok();

    // A trust directory holding one of the two targets keys cannot sign.
    let one = owner.elsewhere();
    let first = &keyid_of(&owner, "targets")[0];
    let file = owner.trust_dir.parent().unwrap().join("one-targets.pem");
    owner
        .run(&["key", "export", first, "-o", file.to_str().unwrap()])
        .ok();
    one.run(&["key", "import", file.to_str().unwrap(), "--role", "targets"])
        .ok();
    one.run(&[
        "sign",
        &format!("{GUN}:v2"),
        "--digest",
        &digest(2),
        "--length",
        "1",
    ])
    .fails(1, &["signing targets needs 2 of its keys", "holds 1"]);

    // Rotation keeps the threshold reachable: as many new keys as the threshold.
    for role in ["targets", "root"] {
        let before = keyid_of(&owner, role);
        let r = owner.run(&["--output", "json", "rotate", GUN, role]).json();
        assert_eq!(r["keyids"].as_array().unwrap().len(), 2, "{role}");
        let after = keyid_of(&owner, role);
        assert_eq!(after.len(), 2, "{role}");
        assert!(after.iter().all(|k| !before.contains(k)), "{role}");
        assert_eq!(threshold_of(&owner, role), 2, "{role}");
    }
    owner
        .run(&[
            "sign",
            &format!("{GUN}:v2"),
            "--digest",
            &digest(2),
            "--length",
            "1",
        ])
        .ok();
    // The client that trusted root version 1 walks to the new root.
    let out = client.run(&["verify", &format!("{GUN}:v2"), "--no-registry"]);
    assert_eq!(out.ok().trim(), format!("{GUN}@{}", digest(2)));
    // The old single targets key signs nothing any more.
    one.run(&[
        "sign",
        &format!("{GUN}:v3"),
        "--digest",
        &digest(3),
        "--length",
        "1",
    ])
    .fails(1, &["signing targets needs 2 of its keys", "holds 0"]);
}

#[test]
fn rotate_root_and_targets_in_one_update() {
    let server = Server::start();
    let owner = Vouch::new(&server);
    owner.run(&["init", GUN]).ok();
    owner.sign_digest(GUN, "v1", 1, None).ok();
    let client = owner.elsewhere();
    client
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .ok();
    let (root_before, targets_before) = (keyid_of(&owner, "root"), keyid_of(&owner, "targets"));
    let r = owner
        .run(&["--output", "json", "rotate", GUN, "root", "targets"])
        .json();
    assert_eq!(r["root_version"], 2);
    assert_eq!(r["rotated"].as_array().unwrap().len(), 2);
    assert_eq!(r["rotated"][1]["role"], "targets");
    assert_eq!(
        r["rotated"][1]["old_keyids"],
        serde_json::json!(targets_before)
    );
    for (role, before) in [("root", root_before), ("targets", targets_before)] {
        let after = keyid_of(&owner, role);
        assert_eq!(after.len(), 1, "{role}");
        assert!(!before.contains(&after[0]), "{role}");
    }
    owner.sign_digest(GUN, "v2", 2, None).ok();
    let out = client.run(&["verify", &format!("{GUN}:v2"), "--no-registry"]);
    assert_eq!(out.ok().trim(), format!("{GUN}@{}", digest(2)));
    owner
        .run(&["rotate", GUN, "targets", "targets"])
        .fails(1, &["targets is named twice"]);
}
