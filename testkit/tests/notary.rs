//! The notary harness end to end: a real notary-server and the real notary client create
//! collections (tags, a delegation, key rotations, a snapshot key held by the server), `notary
//! lookup` answers with what was signed, and the server serves notary's own dialect of TUF
//! over HTTPS. A change made in the server's database is what the server serves after a
//! restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::Value;
use vouch_testkit::notary::{
    hex_digest, notary_hash, DelegationKey, Listed, Lookup, NotaryClient, NotaryServer,
};

const GUN: &str = "example.com/org/app";

/// GETs `file` of `gun`, expecting 200 and JSON.
fn served(server: &NotaryServer, gun: &str, file: &str) -> Value {
    let (status, body) = server.get(gun, file);
    assert_eq!(
        status,
        200,
        "GET {file}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"))
}

fn targets_keyids(root: &Value) -> Value {
    root["signed"]["roles"]["targets"]["keyids"].clone()
}

fn key_files(trust: &Path) -> usize {
    std::fs::read_dir(trust.join("private"))
        .expect("private/")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "key"))
        })
        .count()
}

#[test]
fn a_collection_with_a_delegation_and_rotations_is_served_in_notary_dialect() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let server = NotaryServer::start(&tmp.path().join("server"));
    let client = NotaryClient::new(&server, tmp.path().join("trust"));
    let (a, b, c) = (hex_digest('a'), hex_digest('b'), hex_digest('c'));

    client.init(GUN);
    client.addhash(GUN, "v1", 1234, &a, None);
    client.addhash(GUN, "v2", 567, &b, None);
    client.publish(GUN);
    assert_eq!(
        client.lookup(GUN, "v1"),
        Lookup {
            tag: "v1".into(),
            digest: format!("sha256:{a}"),
            size: 1234
        }
    );
    assert_eq!(client.lookup(GUN, "v2").digest, format!("sha256:{b}"));

    // A delegation whose key the client imports, and a tag only that key signs.
    let releases = DelegationKey::create(tmp.path(), "releases");
    client.delegation_add(GUN, "targets/releases", &releases.cert);
    client.key_import(&releases.key, "targets/releases");
    client.publish(GUN);
    client.addhash(GUN, "v3", 89, &c, Some("targets/releases"));
    client.publish(GUN);
    assert_eq!(
        client.lookup(GUN, "v3"),
        Lookup {
            tag: "v3".into(),
            digest: format!("sha256:{c}"),
            size: 89
        }
    );
    let listed = client.list(GUN);
    assert!(
        listed.contains(&Listed {
            name: "v3".into(),
            sha256: c.clone(),
            size: 89,
            role: "targets/releases".into()
        }),
        "{listed:?}"
    );
    assert_eq!(listed.len(), 3, "{listed:?}");

    // A targets key rotation publishes a new root naming another targets key.
    let before = served(&server, GUN, "root.json");
    client.rotate_key(GUN, "targets");
    let after = served(&server, GUN, "root.json");
    assert_ne!(targets_keyids(&before), targets_keyids(&after));
    assert_eq!(
        after["signed"]["version"].as_u64(),
        before["signed"]["version"].as_u64().map(|v| v + 1)
    );
    assert_eq!(client.lookup(GUN, "v1").digest, format!("sha256:{a}"));
    // Root, the current targets key, snapshot, and the delegation key.
    assert_eq!(key_files(client.trust_dir()), 4);

    // Everything is served in notary's dialect: capitalised `_type`, base64 hashes,
    // signatures naming their `method`, no `spec_version`.
    let first = served(&server, GUN, "1.root.json");
    assert_eq!(first["signed"]["_type"], "Root");
    assert_eq!(first["signed"]["version"], 1);
    assert!(first["signed"].get("spec_version").is_none());
    assert_eq!(after["signed"]["_type"], "Root");
    let targets = served(&server, GUN, "targets.json");
    assert_eq!(targets["signed"]["_type"], "Targets");
    assert_eq!(
        targets["signed"]["targets"]["v1"]["hashes"]["sha256"],
        notary_hash(&a).as_str()
    );
    assert_eq!(targets["signed"]["targets"]["v1"]["length"], 1234);
    assert_eq!(
        targets["signed"]["delegations"]["roles"][0]["name"],
        "targets/releases"
    );
    assert_eq!(targets["signatures"][0]["method"], "ecdsa");
    let delegated = served(&server, GUN, "targets/releases.json");
    assert_eq!(delegated["signed"]["_type"], "Targets");
    assert_eq!(
        delegated["signed"]["targets"]["v3"]["hashes"]["sha256"],
        notary_hash(&c).as_str()
    );
    let snapshot = served(&server, GUN, "snapshot.json");
    assert_eq!(snapshot["signed"]["_type"], "Snapshot");
    assert!(snapshot["signed"]["meta"]["targets/releases"].is_object());
    let timestamp = served(&server, GUN, "timestamp.json");
    assert_eq!(timestamp["signed"]["_type"], "Timestamp");
    // The server's `local` signing service signs the timestamp with ed25519.
    assert_eq!(timestamp["signatures"][0]["method"], "eddsa");
}

#[test]
fn a_collection_can_hand_its_snapshot_key_to_the_server() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let server = NotaryServer::start(&tmp.path().join("server"));
    let client = NotaryClient::new(&server, tmp.path().join("trust"));
    let d = hex_digest('d');

    client.init_with_server_snapshot(GUN);
    client.addhash(GUN, "latest", 42, &d, None);
    client.publish(GUN);
    assert_eq!(client.lookup(GUN, "latest").digest, format!("sha256:{d}"));

    // The root names the server's snapshot key, and the client holds no snapshot key: root
    // and targets only.
    let root = served(&server, GUN, "root.json");
    let snapshot_keyids = &root["signed"]["roles"]["snapshot"]["keyids"];
    let (status, key) = server.get(GUN, "snapshot.key");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&key));
    assert_eq!(snapshot_keyids.as_array().map(Vec::len), Some(1));
    assert_eq!(key_files(client.trust_dir()), 2);
    let snapshot = served(&server, GUN, "snapshot.json");
    assert_eq!(snapshot["signatures"][0]["method"], "eddsa");
}

#[test]
fn a_digest_changed_in_the_database_is_served_after_a_restart_and_clients_refuse_it() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let mut server = NotaryServer::start(&tmp.path().join("server"));
    let client = NotaryClient::new(&server, tmp.path().join("trust"));
    let (e, f) = (hex_digest('e'), hex_digest('f'));

    client.init(GUN);
    client.addhash(GUN, "v1", 10, &e, None);
    client.publish(GUN);
    // Another user's client, which trusted the collection before the change.
    let other = NotaryClient::new(&server, tmp.path().join("other"));
    assert_eq!(other.lookup(GUN, "v1").digest, format!("sha256:{e}"));
    // A restart alone changes nothing a client sees.
    server.restart();
    assert_eq!(other.lookup(GUN, "v1").digest, format!("sha256:{e}"));
    let (old, new) = (notary_hash(&e), notary_hash(&f));
    let before = served(&server, GUN, "targets.json");
    assert_eq!(
        before["signed"]["targets"]["v1"]["hashes"]["sha256"],
        old.as_str()
    );

    let changed = server.psql(&format!(
        "WITH changed AS (UPDATE tuf_files SET data = convert_to(replace(convert_from(data, \
         'UTF8'), '{old}', '{new}'), 'UTF8') WHERE gun = '{GUN}' AND role = 'targets' \
         RETURNING id) SELECT count(*) FROM changed"
    ));
    assert_eq!(changed, "1", "rows changed");
    // The server serves what it has served (and cached) until it restarts.
    let cached = served(&server, GUN, "targets.json");
    assert_eq!(
        cached["signed"]["targets"]["v1"]["hashes"]["sha256"],
        old.as_str()
    );
    server.restart();
    let targets = served(&server, GUN, "targets.json");
    assert_eq!(
        targets["signed"]["targets"]["v1"]["hashes"]["sha256"],
        new.as_str()
    );

    // The client that trusted the collection keeps the targets it verified (the timestamp
    // and snapshot did not change, so it fetches nothing new); a client that never saw the
    // collection refuses the changed file.
    assert_eq!(other.lookup(GUN, "v1").digest, format!("sha256:{e}"));
    let fresh = NotaryClient::new(&server, tmp.path().join("fresh"));
    let out = fresh.try_run(&["lookup", GUN, "v1"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && !stdout.contains(&f),
        "notary accepted a changed digest:\n{stdout}\n{stderr}"
    );
    // notary prints its fatal errors on stdout.
    assert!(
        stdout.contains("checksum for targets did not match"),
        "{stdout}\n{stderr}"
    );
}
