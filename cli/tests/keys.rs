//! End-to-end: keys and repositories people can manage. `key list` tells which repository
//! and role use each key (from the trusted metadata cached in the trust directory) and
//! whether it is current or retired; `key delete` asks first and keeps keys still in use;
//! `delete` removes a repository's trust data on the server and the cache here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{digest, Server, Vouch};

const GUN: &str = "registry.example.com/org/app";

/// The `key list --output json` entry of `keyid`.
fn listed(v: &Vouch, keyid: &str) -> serde_json::Value {
    let all = v.run(&["--output", "json", "key", "list"]).json();
    all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["keyid"] == keyid)
        .cloned()
        .unwrap_or_else(|| panic!("{keyid} is not listed: {all}"))
}

fn roles_used(entry: &serde_json::Value) -> Vec<(String, String)> {
    entry["uses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["gun"].as_str().unwrap().to_owned(),
                u["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn key_list_tells_which_repository_and_role_use_each_key() {
    let server = Server::start();
    let mut v = Vouch::new(&server);
    let init = v.run(&["--output", "json", "init", GUN]).json();
    let root_key = init["root_key"].as_str().unwrap().to_owned();
    let old_targets = init["targets_key"].as_str().unwrap().to_owned();

    let root = listed(&v, &root_key);
    assert_eq!(root["status"], "current");
    assert_eq!(root["repository"], GUN);
    assert_eq!(roles_used(&root), vec![(GUN.to_owned(), "root".to_owned())]);
    assert_eq!(listed(&v, &old_targets)["status"], "current");

    // A new key no repository uses yet.
    v.set("VOUCH_RELEASES_PASSPHRASE", "ci secret");
    let ci = v.generate_key("releases");
    let fresh = listed(&v, &ci);
    assert_eq!(fresh["status"], "unknown");
    assert_eq!(fresh["repository"], serde_json::Value::Null);
    assert!(roles_used(&fresh).is_empty());

    // Delegated to, it is current for the delegated role.
    v.run(&[
        "delegation",
        "add",
        GUN,
        "releases",
        "--key",
        &ci[..8],
        "--paths",
        "v*",
    ])
    .ok();
    v.run(&["list", GUN]).ok();
    assert_eq!(
        roles_used(&listed(&v, &ci)),
        vec![(GUN.to_owned(), "targets/releases".to_owned())]
    );

    // Rotated out, the targets key made by init is retired; its successor is current.
    let rotated = v
        .run(&["--output", "json", "rotate", GUN, "targets"])
        .json();
    let new_targets = rotated["keyid"].as_str().unwrap().to_owned();
    v.run(&["status", GUN]).ok();
    let old = listed(&v, &old_targets);
    assert_eq!(old["status"], "retired", "{old}");
    assert!(roles_used(&old).is_empty());
    assert_eq!(old["repository"], GUN);
    let new = listed(&v, &new_targets);
    assert_eq!(new["status"], "current");
    assert_eq!(
        new["repository"], GUN,
        "rotate records the repository: {new}"
    );
    assert_eq!(
        roles_used(&new),
        vec![(GUN.to_owned(), "targets".to_owned())]
    );

    // The table says the same.
    let table = v.run(&["key", "list"]).ok().to_owned();
    let header = table.lines().next().unwrap();
    for column in [
        "ROLE",
        "KEY ID",
        "ALGORITHM",
        "STATUS",
        "REPOSITORY",
        "FILE",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let line = |id: &str| {
        table
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} missing from\n{table}"))
            .to_owned()
    };
    assert!(line(&old_targets).contains("retired"), "{table}");
    assert!(
        line(&ci).contains("current") && line(&ci).contains(&format!("{GUN} (targets/releases)")),
        "{table}"
    );
}

#[test]
fn key_delete_asks_and_keeps_keys_in_use() {
    let server = Server::start();
    let v = Vouch::new(&server);
    let init = v.run(&["--output", "json", "init", GUN]).json();
    let old_targets = init["targets_key"].as_str().unwrap().to_owned();
    let new_targets = v
        .run(&["--output", "json", "rotate", GUN, "targets"])
        .json()["keyid"]
        .as_str()
        .unwrap()
        .to_owned();
    v.run(&["status", GUN]).ok();
    let file = |id: &str| v.trust_dir.join("private").join(format!("{id}.key"));

    // A current key is kept unless --force, even with --yes.
    v.run(&["key", "delete", &new_targets[..8], "--yes"]).fails(
        1,
        &[
            "is a current key of registry.example.com/org/app (targets)",
            "--force",
            "nothing was deleted",
        ],
    );
    assert!(file(&new_targets).exists());

    // Without a terminal, nothing is deleted without --yes.
    v.run(&["key", "delete", &old_targets[..8]])
        .fails(1, &["Nothing was done", "pass --yes"]);
    assert!(file(&old_targets).exists());

    // A retired key goes with --yes, and is no longer listed.
    let out = v
        .run(&["key", "delete", &old_targets[..8], "--yes"])
        .ok()
        .to_owned();
    assert!(
        out.contains(&format!("deleted the targets key {old_targets}")),
        "{out}"
    );
    assert!(!file(&old_targets).exists());
    assert!(!v.run(&["key", "list"]).ok().contains(&old_targets));

    // --force deletes a current key; signing then says the key is missing.
    v.run(&["key", "delete", &new_targets[..8], "--yes", "--force"])
        .ok();
    assert!(!file(&new_targets).exists());
    v.run(&[
        "sign",
        &format!("{GUN}:v1"),
        "--digest",
        &digest(1),
        "--length",
        "7",
    ])
    .fails(1, &["needs 1 of its keys"]);
}

#[test]
fn delete_removes_the_repository_on_the_server_and_the_cache_here() {
    let server = Server::start();
    let v = Vouch::new(&server);
    v.run(&["init", GUN]).ok();
    let sign = |tag: &str, n: u8| {
        v.run(&[
            "sign",
            &format!("{GUN}:{tag}"),
            "--digest",
            &digest(n),
            "--length",
            "7",
        ])
        .ok();
    };
    sign("v1", 1);
    let consumer = v.elsewhere();
    consumer
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .ok();

    // Without a terminal, --yes is needed; nothing changes without it.
    v.run(&["delete", GUN]).fails(1, &["pass --yes"]);
    consumer
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .ok();

    // A token without `delete` is told so.
    let mut reader = v.elsewhere();
    reader.trust_dir = v.trust_dir.clone();
    reader.token = None;
    reader.run(&["delete", GUN, "--yes"]).fails(
        1,
        &[
            "asks for a token (HTTP 401)",
            "delete on registry.example.com/org/app",
        ],
    );

    let j = v.run(&["--output", "json", "delete", GUN, "--yes"]).json();
    assert_eq!(j["deleted"], true);
    assert_eq!(j["cache_removed"], true);
    assert!(!v.cached_root(GUN).exists());

    // Nobody trusts its images any more, whether it had trusted the repository or not.
    for who in [&v, &consumer] {
        who.run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
            .fails(3, &["not trusted", "has no trust data"]);
    }

    // Created afresh, it works here again (no stale cached versions in the way).
    v.run(&["init", GUN]).ok();
    sign("v2", 2);
    v.run(&["verify", &format!("{GUN}:v2"), "--no-registry"])
        .ok();
    v.run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .fails(3, &["not trusted"]);

    // A repository the server never had: nothing to delete, not an error.
    let out = v
        .run(&["delete", "registry.example.com/org/never", "--yes"])
        .ok()
        .to_owned();
    assert!(out.contains("nothing to delete there"), "{out}");
}
