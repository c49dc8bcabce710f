//! python-tuf, the reference TUF implementation, against a real listening `vouch-server`:
//! - its `ngclient.Updater` (`tests/python/client.py`), trusting only a GUN's first root,
//!   follows publishes, a root and targets-key rotation, a delegation to `targets/releases`,
//!   timestamp- and snapshot-key rotations, nested and hash-prefix delegations, and resolves
//!   exactly the signed digests (and nothing for unsigned names), both from an empty metadata
//!   directory and updating a persistent one;
//! - root and targets written by its Metadata API (`tests/python/write_repo.py`), in its
//!   indented non-canonical formatting, with ed25519, ECDSA and RSA keys and escaped
//!   strings, are accepted, stored byte for byte and read back;
//! - without consistent snapshots it reads the unversioned names; every hash the server
//!   writes names the bytes the by-version and by-checksum URLs serve;
//! - it accepts the timestamp and snapshot the server re-signs, and never gets an expired
//!   server-signed snapshot;
//! - a root (2 of 3 keys) rotated through a staged proposal stays invisible to it until the
//!   second signature, then it follows the new root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{digest_of, gen, image_target, key_of, ClientRepo, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};
use vouch_tuf::crypto::PrivateKey;
use vouch_tuf::json::{self as tuf_json, Map};
use vouch_tuf::metadata::{
    DelegatedRole, Delegations, Key, Metadata, PathScope, Root, Snapshot, TargetFile, Targets,
    TimestampRole,
};
use vouch_tuf::reference::Digest;
use vouch_tuf::types::{RoleName, TargetName, Threshold, TopLevelRole, Version};

// ---------------------------------------------------------------------------------------
// Running the Python scripts
// ---------------------------------------------------------------------------------------

/// Runs `tests/python/<script>` with `args`; panics with its output unless it exits 0, and
/// returns the JSON of its last stdout line.
fn run_python(script: &str, args: &[OsString]) -> Value {
    let stdout = common::run_ok(
        Command::new(common::python())
            .arg(common::python_script(script))
            .args(args)
            // The server is on loopback: never route the client through a proxy.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost"),
    );
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("{script} printed nothing"));
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{script} printed non-JSON ({e}): {stdout}"))
}

/// The metadata base URL python-tuf is given for `gun`.
fn base_url(server: &Server, gun: &str) -> String {
    server.tuf_url(gun, "")
}

/// A python-tuf client of one GUN on one server, trusting the GUN's first root.
struct PyClient<'s> {
    server: &'s Server,
    gun: String,
    trusted_root: PathBuf,
    tmp: tempfile::TempDir,
    runs: usize,
}

/// What one client run found: target name to `{"length","sha256"}` or null, and the URLs it
/// fetched, in order.
struct Resolved {
    targets: Value,
    fetched: Vec<String>,
}

impl<'s> PyClient<'s> {
    /// Fetches `1.root.json` of `gun` (which must equal `first_root`) as the trust anchor.
    fn new(server: &'s Server, gun: &str, first_root: &[u8]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let r = server.get(&format!("/v2/{gun}/_trust/tuf/1.root.json"));
        assert_eq!(r.status, StatusCode::OK, "1.root.json: {}", r.text());
        assert_eq!(
            r.body, first_root,
            "1.root.json is not the first root as published"
        );
        let trusted_root = tmp.path().join("trusted-1.root.json");
        std::fs::write(&trusted_root, &r.body).unwrap();
        PyClient {
            server,
            gun: gun.to_owned(),
            trusted_root,
            tmp,
            runs: 0,
        }
    }

    /// Refreshes with an empty metadata directory (trusting only the first root).
    fn fresh(&mut self, names: &[&str]) -> Resolved {
        let dir = self.tmp.path().join(format!("fresh-{}", self.runs + 1));
        self.run(&dir, names)
    }

    /// Refreshes with the same metadata directory every time: an incremental update from
    /// whatever the previous call trusted.
    fn persistent(&mut self, names: &[&str]) -> Resolved {
        let dir = self.tmp.path().join("persistent");
        self.run(&dir, names)
    }

    fn run(&mut self, dir: &Path, names: &[&str]) -> Resolved {
        self.runs += 1;
        let log = self.tmp.path().join(format!("urls-{}.txt", self.runs));
        let mut args: Vec<OsString> = vec!["--log-urls".into(), log.clone().into()];
        args.push(base_url(self.server, &self.gun).into());
        args.push(self.trusted_root.clone().into());
        args.push(dir.into());
        args.extend(names.iter().map(OsString::from));
        let targets = run_python("client.py", &args);
        let fetched = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        Resolved { targets, fetched }
    }
}

/// What python-tuf must report for a tag these tests signed.
fn expected_info(tag: &str) -> Value {
    json!({"length": image_target(tag).length, "sha256": digest_of(tag).hex()})
}

/// Every `signed` tag resolves to exactly its digest and length; every `unsigned` one to null.
fn assert_resolves(what: &str, got: &Resolved, signed: &[&str], unsigned: &[&str]) {
    let obj = got
        .targets
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {}", got.targets));
    for tag in signed {
        assert_eq!(
            obj.get(*tag),
            Some(&expected_info(tag)),
            "{what}: python-tuf resolved {tag} wrongly; output {}; fetched {:?}",
            got.targets,
            got.fetched
        );
    }
    for tag in unsigned {
        assert_eq!(
            obj.get(*tag),
            Some(&Value::Null),
            "{what}: {tag} was never signed but python-tuf resolved it: {}",
            got.targets
        );
    }
}

/// `names` for a client call: the signed tags followed by the unsigned ones.
fn names<'a>(signed: &[&'a str], unsigned: &[&'a str]) -> Vec<&'a str> {
    signed.iter().chain(unsigned).copied().collect()
}

/// Runs a fresh client and the persistent one, and checks both.
fn check_both(
    client: &mut PyClient<'_>,
    step: &str,
    signed: &[&str],
    unsigned: &[&str],
) -> (Resolved, Resolved) {
    let n = names(signed, unsigned);
    let fresh = client.fresh(&n);
    assert_resolves(&format!("{step} (fresh client)"), &fresh, signed, unsigned);
    let persistent = client.persistent(&n);
    assert_resolves(
        &format!("{step} (persistent client)"),
        &persistent,
        signed,
        unsigned,
    );
    (fresh, persistent)
}

// ---------------------------------------------------------------------------------------
// Metadata builders not in common
// ---------------------------------------------------------------------------------------

const RELEASES: &str = "targets/releases";

fn targets_with(expires_from: &ClientRepo, version: u64, tags: &[&str]) -> Targets {
    let mut t = Targets::new(expires_from.expires);
    t.common.version = Version::new(version).unwrap();
    for tag in tags {
        t.add_target(TargetName::new(*tag).unwrap(), image_target(tag));
    }
    t
}

/// Top-level targets `version` listing `tags` and delegating `v*` to `targets/releases`.
fn delegating_targets(
    repo: &ClientRepo,
    version: u64,
    tags: &[&str],
    releases_key: &PrivateKey,
) -> Vec<u8> {
    let mut t = repo.targets(version, tags);
    let key = key_of(releases_key);
    let id = key.key_id();
    let mut keys = BTreeMap::new();
    keys.insert(id.clone(), key);
    t.delegations = Some(Delegations {
        keys,
        roles: vec![DelegatedRole::with_paths(
            RoleName::new(RELEASES).unwrap(),
            vec![id],
            vec!["v*".into()],
        )],
        extra: Map::new(),
    });
    Metadata::signed_by(t, &[&repo.targets_key])
        .unwrap()
        .to_bytes()
}

fn releases(repo: &ClientRepo, version: u64, tags: &[&str], key: &PrivateKey) -> Vec<u8> {
    Metadata::signed_by(targets_with(repo, version, tags), &[key])
        .unwrap()
        .to_bytes()
}

fn publish_ok(server: &Server, gun: &str, files: &[(&str, Vec<u8>)]) {
    let r = server.publish(gun, files);
    let roles: Vec<&str> = files.iter().map(|f| f.0).collect();
    assert_eq!(
        r.status,
        StatusCode::OK,
        "publishing {roles:?}: {}",
        r.text()
    );
}

fn get_ok(server: &Server, gun: &str, file: &str) -> Vec<u8> {
    let r = server.get(&format!("/v2/{gun}/_trust/tuf/{file}"));
    assert_eq!(r.status, StatusCode::OK, "GET {file}: {}", r.text());
    let ct = r
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    assert_eq!(ct, Some("application/json"), "GET {file}: content type");
    r.body
}

fn sha256_hex(bytes: &[u8]) -> String {
    Digest::sha256_of(bytes).hex().to_owned()
}

fn url_of(server: &Server, gun: &str, file: &str) -> String {
    format!("{}{file}", base_url(server, gun))
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn python_tuf_client_follows_publishes_rotations_and_delegations() {
    let server = Server::start();
    let gun = "localhost:5000/org/app";
    let mut repo = ClientRepo::new(&server, gun);

    // 1. First publish: root v1 and targets v1 with v1.
    let root1 = repo.signed_root(1);
    publish_ok(
        &server,
        gun,
        &[
            ("root", root1.clone()),
            ("targets", repo.signed_targets(1, &["v1"])),
        ],
    );
    let mut client = PyClient::new(&server, gun, &root1);
    check_both(
        &mut client,
        "after the first publish",
        &["v1"],
        &["v2", "v3", "v4", "latest"],
    );

    // 2, 3. More targets versions.
    publish_ok(
        &server,
        gun,
        &[("targets", repo.signed_targets(2, &["v1", "v2"]))],
    );
    check_both(
        &mut client,
        "after targets v2",
        &["v1", "v2"],
        &["v3", "latest"],
    );
    publish_ok(
        &server,
        gun,
        &[("targets", repo.signed_targets(3, &["v1", "v2", "v3"]))],
    );
    check_both(
        &mut client,
        "after targets v3",
        &["v1", "v2", "v3"],
        &["v4", "latest"],
    );

    // 4. Root rotation: root v2 with a new root key (cross-signed by the old and the new
    //    one) and a new targets key, published with targets v4 signed by the new key.
    let old_root_key = std::mem::replace(&mut repo.root_key, gen());
    repo.targets_key = gen();
    let root2 = Metadata::signed_by(repo.root(2), &[&old_root_key, &repo.root_key])
        .unwrap()
        .to_bytes();
    publish_ok(
        &server,
        gun,
        &[
            ("root", root2.clone()),
            ("targets", repo.signed_targets(4, &["v1", "v2", "v3"])),
        ],
    );
    assert_eq!(get_ok(&server, gun, "2.root.json"), root2);
    let (fresh, _) = check_both(
        &mut client,
        "after the root rotation",
        &["v1", "v2", "v3"],
        &["v4", "latest"],
    );
    assert!(
        fresh.fetched.contains(&url_of(&server, gun, "2.root.json")),
        "a client trusting root v1 must walk to 2.root.json: {:?}",
        fresh.fetched
    );

    // 5. Delegation of v* to targets/releases, which signs v4.
    let releases_key = gen();
    publish_ok(
        &server,
        gun,
        &[
            (
                "targets",
                delegating_targets(&repo, 5, &["v1", "v2", "v3"], &releases_key),
            ),
            (RELEASES, releases(&repo, 1, &["v4"], &releases_key)),
        ],
    );
    let (fresh, persistent) = check_both(
        &mut client,
        "after delegating to targets/releases",
        &["v1", "v2", "v3", "v4"],
        &["v5", "latest"],
    );
    for got in [&fresh, &persistent] {
        assert!(
            got.fetched
                .contains(&url_of(&server, gun, "1.targets%2Freleases.json")),
            "python-tuf fetches the delegated role by version, percent-encoded: {:?}",
            got.fetched
        );
    }

    // 5b. A publish of the delegated role alone: the server's snapshot follows it.
    publish_ok(
        &server,
        gun,
        &[(RELEASES, releases(&repo, 2, &["v4", "v5"], &releases_key))],
    );
    let (_, persistent) = check_both(
        &mut client,
        "after targets/releases v2",
        &["v1", "v2", "v3", "v4", "v5"],
        &["v6", "latest"],
    );
    assert!(
        persistent
            .fetched
            .contains(&url_of(&server, gun, "2.targets%2Freleases.json")),
        "{:?}",
        persistent.fetched
    );

    // 6. Online-key rotation: a new timestamp key, then root v3 listing it instead of the
    //    old one.
    let old_ts = repo.timestamp_key.clone();
    let new_ts = rotate_online_key(&server, gun, "timestamp");
    assert_ne!(
        new_ts.key_id(),
        old_ts.key_id(),
        "rotation must return a new key"
    );
    // Until a root lists the new key, the old one keeps signing and clients keep working.
    let all = ["v1", "v2", "v3", "v4", "v5"];
    let r = client.fresh(&names(&all, &["latest"]));
    assert_resolves(
        "after the key rotation, before root v3",
        &r,
        &all,
        &["latest"],
    );

    repo.timestamp_key = new_ts.clone();
    let root3 = repo.signed_root(3);
    let root3_md = Metadata::<Root>::from_bytes(&root3).unwrap();
    assert_eq!(
        root3_md.signed().role_keys(TopLevelRole::Timestamp).keyids,
        vec![new_ts.key_id()]
    );
    publish_ok(&server, gun, &[("root", root3)]);
    let ts_bytes = get_ok(&server, gun, "timestamp.json");
    let ts = Metadata::<TimestampRole>::from_bytes(&ts_bytes).unwrap();
    let signers: Vec<_> = ts.signatures().iter().map(|s| s.keyid.clone()).collect();
    assert_eq!(
        signers,
        vec![new_ts.key_id()],
        "the timestamp after root v3 must be signed by the new key only"
    );
    root3_md
        .signed()
        .verify_role(TopLevelRole::Timestamp, &ts)
        .unwrap();
    let (fresh, _) = check_both(
        &mut client,
        "after the timestamp-key rotation",
        &all,
        &["v6", "latest"],
    );
    assert!(
        fresh.fetched.contains(&url_of(&server, gun, "3.root.json")),
        "{:?}",
        fresh.fetched
    );

    // 7. The same for the snapshot key: root v4 lists the new one, and the server writes a
    //    snapshot signed by it (the timestamp names it).
    let old_sn = repo.snapshot_key.clone();
    let new_sn = rotate_online_key(&server, gun, "snapshot");
    assert_ne!(
        new_sn.key_id(),
        old_sn.key_id(),
        "rotation must return a new key"
    );
    repo.snapshot_key = new_sn.clone();
    let root4 = repo.signed_root(4);
    let root4_md = Metadata::<Root>::from_bytes(&root4).unwrap();
    publish_ok(&server, gun, &[("root", root4)]);
    let ts =
        Metadata::<TimestampRole>::from_bytes(&get_ok(&server, gun, "timestamp.json")).unwrap();
    let snap_v = ts.signed().snapshot.version.get();
    let snap =
        Metadata::<Snapshot>::from_bytes(&get_ok(&server, gun, &format!("{snap_v}.snapshot.json")))
            .unwrap();
    let signers: Vec<_> = snap.signatures().iter().map(|s| s.keyid.clone()).collect();
    assert_eq!(
        signers,
        vec![new_sn.key_id()],
        "the snapshot after root v4 must be signed by the new key only"
    );
    root4_md
        .signed()
        .verify_role(TopLevelRole::Snapshot, &snap)
        .unwrap();
    root4_md
        .signed()
        .verify_role(TopLevelRole::Timestamp, &ts)
        .unwrap();
    let (fresh, _) = check_both(
        &mut client,
        "after the snapshot-key rotation",
        &all,
        &["v6", "latest"],
    );
    assert!(
        fresh
            .fetched
            .contains(&url_of(&server, gun, &format!("{snap_v}.snapshot.json"))),
        "{:?}",
        fresh.fetched
    );

    // 8. And publishing goes on under the rotated keys.
    publish_ok(
        &server,
        gun,
        &[(
            RELEASES,
            releases(&repo, 3, &["v4", "v5", "v6"], &releases_key),
        )],
    );
    let all = ["v1", "v2", "v3", "v4", "v5", "v6"];
    check_both(
        &mut client,
        "after targets/releases v3",
        &all,
        &["v7", "latest"],
    );
}

/// POSTs `role`.key with the admin token: the server's new online key for `role`.
fn rotate_online_key(server: &Server, gun: &str, role: &str) -> Key {
    let r = server
        .client
        .post(server.tuf_url(gun, &format!("{role}.key")))
        .bearer_auth(&server.admin_token)
        .send()
        .unwrap();
    let status = r.status();
    let body = r.bytes().unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "rotating the {role} key: {}",
        String::from_utf8_lossy(&body)
    );
    Key::from_value(tuf_json::parse(&body).unwrap()).unwrap()
}

/// Writes the online key `role` of `gun` (exactly as served) to `dir/<role>.key.json`.
fn save_online_key(server: &Server, gun: &str, role: &str, dir: &Path) -> PathBuf {
    let r = server.get_admin(&format!("/v2/{gun}/_trust/tuf/{role}.key"));
    assert_eq!(r.status, StatusCode::OK, "{role}.key: {}", r.text());
    let path = dir.join(format!("{role}.key.json"));
    std::fs::write(&path, &r.body).unwrap();
    path
}

fn target_arg(tag: &str) -> OsString {
    format!(
        "{tag}={}:{}",
        image_target(tag).length,
        digest_of(tag).hex()
    )
    .into()
}

/// Checks that the server serves `bytes` as the current `role`, as `version.role`, and under
/// their checksum, and that the current snapshot names exactly those bytes.
fn assert_stored_verbatim(server: &Server, gun: &str, role: &str, version: u64, bytes: &[u8]) {
    assert_eq!(
        get_ok(server, gun, &format!("{role}.json")),
        bytes,
        "{role}.json"
    );
    assert_eq!(
        get_ok(server, gun, &format!("{version}.{role}.json")),
        bytes,
        "{version}.{role}.json"
    );
    assert_eq!(
        get_ok(server, gun, &format!("{role}.{}.json", sha256_hex(bytes))),
        bytes,
        "{role} by checksum"
    );
    if role != "root" {
        let snap = Metadata::<Snapshot>::from_bytes(&get_ok(server, gun, "snapshot.json")).unwrap();
        let meta = &snap.signed().meta[&format!("{role}.json")];
        assert_eq!(meta.version.get(), version);
        if let Some(len) = meta.length {
            assert_eq!(len, bytes.len() as u64, "snapshot's length of {role}");
        }
        if let Some(h) = &meta.hashes {
            assert_eq!(
                h.get("sha256"),
                Some(&sha256_hex(bytes)),
                "snapshot's hash of {role}"
            );
        }
    }
}

/// Writes root and targets v1 (listing v1) with python-tuf's Metadata API, publishes them,
/// checks they are stored byte for byte and resolved by python-tuf; then the same for
/// targets v2 (listing v1 and v2). `extra` goes to `write_repo.py` in both modes. Returns
/// the targets v1 bytes as python wrote them.
fn python_written_repository(gun: &str, init_extra: &[&str], extra: &[&str]) -> Vec<u8> {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let ts_key = save_online_key(&server, gun, "timestamp", tmp.path());
    let sn_key = save_online_key(&server, gun, "snapshot", tmp.path());
    let out = tmp.path().join("repo");

    let mut args: Vec<OsString> = vec!["init".into(), out.clone().into()];
    args.extend([
        "--timestamp-key".into(),
        ts_key.into(),
        "--snapshot-key".into(),
        sn_key.into(),
    ]);
    args.extend(init_extra.iter().chain(extra).map(OsString::from));
    args.extend(["--target".into(), target_arg("v1")]);
    let written = run_python("write_repo.py", &args);
    assert_eq!(
        written["keyids"]["timestamp"].as_str(),
        Some(server.online_key(gun, "timestamp").key_id().as_str()),
        "python and vouch compute the same key id for the server's timestamp key"
    );
    assert_eq!(
        written["keyids"]["snapshot"].as_str(),
        Some(server.online_key(gun, "snapshot").key_id().as_str())
    );

    let root = std::fs::read(out.join("1.root.json")).unwrap();
    let targets1 = std::fs::read(out.join("1.targets.json")).unwrap();
    // python-tuf's JSONSerializer indents: these bytes are not canonical JSON, so any
    // re-serialization by the server would change their hashes.
    for (name, bytes) in [("root", &root), ("targets", &targets1)] {
        let canonical = tuf_json::canonical(&tuf_json::parse(bytes).unwrap());
        assert_ne!(
            &canonical, bytes,
            "{name} as written by python-tuf should not be canonical"
        );
    }

    publish_ok(
        &server,
        gun,
        &[("root", root.clone()), ("targets", targets1.clone())],
    );
    assert_stored_verbatim(&server, gun, "root", 1, &root);
    assert_stored_verbatim(&server, gun, "targets", 1, &targets1);

    let mut client = PyClient::new(&server, gun, &root);
    check_both(&mut client, "python-written v1", &["v1"], &["v2", "latest"]);

    // A second targets version, re-signed by python with the same targets key.
    let mut args: Vec<OsString> = vec![
        "targets".into(),
        out.clone().into(),
        "--version".into(),
        "2".into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    args.extend([
        "--target".into(),
        target_arg("v1"),
        "--target".into(),
        target_arg("v2"),
    ]);
    run_python("write_repo.py", &args);
    let targets2 = std::fs::read(out.join("2.targets.json")).unwrap();
    publish_ok(&server, gun, &[("targets", targets2.clone())]);
    assert_stored_verbatim(&server, gun, "targets", 2, &targets2);
    assert_eq!(
        get_ok(&server, gun, "1.targets.json"),
        targets1,
        "version 1 stays retrievable"
    );
    check_both(&mut client, "python-written v2", &["v1", "v2"], &["latest"]);
    targets1
}

#[test]
fn python_tuf_written_repository_is_accepted() {
    python_written_repository("example.com/py/written", &[], &[]);
}

/// The same with the other key types python-tuf users have (an ECDSA P-256 root key, an
/// RSA-PSS targets key) and a `custom` annotation that python's JSON writer escapes
/// (`\u00e9`, a surrogate pair, `\t`, `\"`, `\\`): the server must verify the signatures
/// over the canonical form securesystemslib computed.
#[test]
fn python_tuf_written_repository_with_ecdsa_rsa_and_escapes_is_accepted() {
    let targets = python_written_repository(
        "example.com/py/escapes",
        &["--root-key-type", "ecdsa", "--targets-key-type", "rsa"],
        &[
            "--annotation",
            "caf\u{e9} \u{1f433} tab\there \"quoted\" back\\slash \u{7f}",
        ],
    );
    let text = String::from_utf8(targets).unwrap();
    for escape in ["\\u00e9", "\\ud83d\\udc33", "\\t", "\\\"", "\\\\"] {
        assert!(
            text.contains(escape),
            "python should have written {escape}: {text}"
        );
    }
}

#[test]
fn python_tuf_reads_unversioned_names_without_consistent_snapshots() {
    let server = Server::start();
    let gun = "example.com/org/plain";
    let repo = ClientRepo::new(&server, gun);
    let mut root = repo.root(1);
    root.consistent_snapshot = Some(false);
    let root1 = Metadata::signed_by(root, &[&repo.root_key])
        .unwrap()
        .to_bytes();
    let releases_key = gen();
    publish_ok(
        &server,
        gun,
        &[
            ("root", root1.clone()),
            (
                "targets",
                delegating_targets(&repo, 1, &["v1"], &releases_key),
            ),
            (RELEASES, releases(&repo, 1, &["v2"], &releases_key)),
        ],
    );
    let mut client = PyClient::new(&server, gun, &root1);
    let (fresh, _) = check_both(
        &mut client,
        "without consistent snapshots",
        &["v1", "v2"],
        &["v3", "latest"],
    );
    for file in [
        "timestamp.json",
        "snapshot.json",
        "targets.json",
        "targets%2Freleases.json",
    ] {
        assert!(
            fresh.fetched.contains(&url_of(&server, gun, file)),
            "{file} not fetched: {:?}",
            fresh.fetched
        );
    }
    assert!(
        !fresh
            .fetched
            .iter()
            .any(|u| u.ends_with(".snapshot.json") || u.ends_with(".targets.json")),
        "no versioned names without consistent snapshots: {:?}",
        fresh.fetched
    );

    publish_ok(
        &server,
        gun,
        &[(RELEASES, releases(&repo, 2, &["v2", "v3"], &releases_key))],
    );
    check_both(
        &mut client,
        "without consistent snapshots, releases v2",
        &["v1", "v2", "v3"],
        &["latest"],
    );
}

/// What python-tuf fetches after reading timestamp and snapshot — `N.snapshot.json`,
/// `N.targets.json`, `N.targets%2Freleases.json` — and the by-checksum names are the very
/// bytes the server-written hashes cover, for every version.
#[test]
fn python_tuf_urls_serve_the_bytes_the_server_hashed() {
    let server = Server::start();
    let gun = "example.com/org/hashes";
    let repo = ClientRepo::new(&server, gun);
    let releases_key = gen();
    let root1 = repo.signed_root(1);
    publish_ok(
        &server,
        gun,
        &[
            ("root", root1.clone()),
            (
                "targets",
                delegating_targets(&repo, 1, &["v1"], &releases_key),
            ),
            (RELEASES, releases(&repo, 1, &["v2"], &releases_key)),
        ],
    );
    publish_ok(
        &server,
        gun,
        &[(RELEASES, releases(&repo, 2, &["v2", "v3"], &releases_key))],
    );
    publish_ok(
        &server,
        gun,
        &[(
            "targets",
            delegating_targets(&repo, 2, &["v1", "latest"], &releases_key),
        )],
    );

    let ts =
        Metadata::<TimestampRole>::from_bytes(&get_ok(&server, gun, "timestamp.json")).unwrap();
    let snap_meta = &ts.signed().snapshot;
    let v = snap_meta.version.get();
    let snap_bytes = get_ok(&server, gun, &format!("{v}.snapshot.json"));
    assert_eq!(get_ok(&server, gun, "snapshot.json"), snap_bytes);
    assert_eq!(snap_meta.length, Some(snap_bytes.len() as u64));
    let snap_sha = snap_meta.hashes.as_ref().unwrap()["sha256"].clone();
    assert_eq!(snap_sha, sha256_hex(&snap_bytes));
    assert_eq!(
        get_ok(&server, gun, &format!("snapshot.{snap_sha}.json")),
        snap_bytes
    );

    let snap = Metadata::<Snapshot>::from_bytes(&snap_bytes).unwrap();
    let listed: Vec<&str> = snap.signed().meta.keys().map(String::as_str).collect();
    assert_eq!(listed, ["targets.json", "targets/releases.json"]);
    for (file, meta) in &snap.signed().meta {
        let role = file.strip_suffix(".json").unwrap();
        let encoded = role.replace('/', "%2F");
        let version = meta.version.get();
        let bytes = get_ok(&server, gun, &format!("{version}.{encoded}.json"));
        assert_eq!(
            get_ok(&server, gun, &format!("{encoded}.json")),
            bytes,
            "{role}: current"
        );
        assert_eq!(
            get_ok(&server, gun, &format!("{version}.{role}.json")),
            bytes,
            "{role}: literal slash"
        );
        if let Some(len) = meta.length {
            assert_eq!(len, bytes.len() as u64, "{role}: length");
        }
        let sha = sha256_hex(&bytes);
        if let Some(h) = &meta.hashes {
            assert_eq!(h["sha256"], sha, "{role}: hash");
        }
        assert_eq!(
            get_ok(&server, gun, &format!("{encoded}.{sha}.json")),
            bytes,
            "{role}: by checksum"
        );
        // Older versions stay served, by version and by checksum.
        for old in 1..version {
            let old_bytes = get_ok(&server, gun, &format!("{old}.{encoded}.json"));
            let md = Metadata::<Targets>::from_bytes_as(role, &old_bytes).unwrap();
            assert_eq!(md.version().get(), old);
            let old_sha = sha256_hex(&old_bytes);
            assert_eq!(
                get_ok(&server, gun, &format!("{encoded}.{old_sha}.json")),
                old_bytes
            );
        }
    }

    // And python-tuf, which checks all those hashes, agrees.
    let mut client = PyClient::new(&server, gun, &root1);
    check_both(
        &mut client,
        "hashes",
        &["v1", "v2", "v3", "latest"],
        &["v4"],
    );
}

/// The server re-signs the timestamp and its snapshot when less than half their lifetime is
/// left; python-tuf, updating from what it trusted before, accepts the re-signed versions.
#[test]
fn python_tuf_accepts_re_signed_online_roles() {
    // 60 seconds is the shortest lifetime the server accepts; re-signing starts after 30.
    let server = Server::start_with(&[
        ("VOUCH_TIMESTAMP_LIFETIME_SECONDS", "60"),
        ("VOUCH_SNAPSHOT_LIFETIME_SECONDS", "60"),
    ]);
    let gun = "example.com/org/resign";
    let repo = ClientRepo::new(&server, gun);
    let root1 = repo.signed_root(1);
    publish_ok(
        &server,
        gun,
        &[
            ("root", root1.clone()),
            ("targets", repo.signed_targets(1, &["v1"])),
        ],
    );
    let ts_before =
        Metadata::<TimestampRole>::from_bytes(&get_ok(&server, gun, "timestamp.json")).unwrap();
    let mut client = PyClient::new(&server, gun, &root1);
    check_both(&mut client, "before re-signing", &["v1"], &["latest"]);

    std::thread::sleep(std::time::Duration::from_secs(32));
    let ts_after =
        Metadata::<TimestampRole>::from_bytes(&get_ok(&server, gun, "timestamp.json")).unwrap();
    assert!(
        ts_after.version() > ts_before.version(),
        "the timestamp was not re-signed: version {} expires {}",
        ts_after.version().get(),
        ts_after.expires()
    );
    assert!(ts_after.expires() > ts_before.expires());
    let snap_v = ts_after.signed().snapshot.version.get();
    assert!(
        snap_v > 1,
        "the server-held snapshot was not re-signed (version {snap_v})"
    );
    // Nothing else changed: the re-signed snapshot names the same targets version.
    let snap =
        Metadata::<Snapshot>::from_bytes(&get_ok(&server, gun, &format!("{snap_v}.snapshot.json")))
            .unwrap();
    assert_eq!(snap.signed().meta["targets.json"].version.get(), 1);

    let (_, persistent) = check_both(&mut client, "after re-signing", &["v1"], &["latest"]);
    assert!(
        persistent
            .fetched
            .contains(&url_of(&server, gun, &format!("{snap_v}.snapshot.json"))),
        "{:?}",
        persistent.fetched
    );
    // Publishing after a re-sign continues both version sequences.
    publish_ok(
        &server,
        gun,
        &[("targets", repo.signed_targets(2, &["v1", "v2"]))],
    );
    check_both(
        &mut client,
        "publish after re-signing",
        &["v1", "v2"],
        &["latest"],
    );
}

/// A delegation of `scope` to `name`, signed by `key`, threshold 1, not terminating.
fn delegation(name: &str, key: &PrivateKey, scope: PathScope) -> (DelegatedRole, Key) {
    let k = key_of(key);
    let role = DelegatedRole {
        name: RoleName::new(name).unwrap(),
        keyids: vec![k.key_id()],
        threshold: Threshold::ONE,
        terminating: false,
        scope,
        extra: Map::new(),
    };
    (role, k)
}

fn with_delegations(mut t: Targets, entries: Vec<(DelegatedRole, Key)>) -> Targets {
    let mut d = Delegations::default();
    for (role, key) in entries {
        d.keys.insert(key.key_id(), key);
        d.roles.push(role);
    }
    t.delegations = Some(d);
    t
}

/// Nested delegations (`targets/releases/hotfix`, two levels of `%2F`), a delegation by
/// `path_hash_prefixes` (where vouch's publish check and python-tuf's search must agree on the
/// hash), and a target named by its digest.
#[test]
fn python_tuf_follows_nested_and_hash_prefix_delegations() {
    const HOTFIX: &str = "targets/releases/hotfix";
    const BINS: &str = "targets/bins";
    let server = Server::start();
    let gun = "example.com/org/nested";
    let repo = ClientRepo::new(&server, gun);
    let (releases_key, hotfix_key, bins_key) = (gen(), gen(), gen());

    // rc1 is delegated to targets/bins by the first two hex digits of sha256("rc1").
    let prefix = sha256_hex(b"rc1")[..2].to_owned();
    assert!(
        !sha256_hex(b"rc2").starts_with(&prefix),
        "rc2 must fall outside the prefix"
    );

    // A target named by a digest, as vouch signs an untagged digest.
    let by_digest = digest_of("untagged");
    let digest_name = format!("sha256:{}", by_digest.hex());
    let digest_target = TargetFile::image(&by_digest, 4242, None);

    let mut top = repo.targets(1, &["v1"]);
    top.add_target(
        TargetName::new(digest_name.clone()).unwrap(),
        digest_target.clone(),
    );
    let top = with_delegations(
        top,
        vec![
            delegation(RELEASES, &releases_key, PathScope::Paths(vec!["v*".into()])),
            delegation(BINS, &bins_key, PathScope::HashPrefixes(vec![prefix])),
        ],
    );
    let rel = with_delegations(
        targets_with(&repo, 1, &["v2"]),
        vec![delegation(
            HOTFIX,
            &hotfix_key,
            PathScope::Paths(vec!["v2.*".into()]),
        )],
    );
    let sign = |t: Targets, k: &PrivateKey| Metadata::signed_by(t, &[k]).unwrap().to_bytes();
    let root1 = repo.signed_root(1);
    publish_ok(
        &server,
        gun,
        &[
            ("root", root1.clone()),
            ("targets", sign(top, &repo.targets_key)),
            (RELEASES, sign(rel, &releases_key)),
            (HOTFIX, sign(targets_with(&repo, 1, &["v2.1"]), &hotfix_key)),
            (BINS, sign(targets_with(&repo, 1, &["rc1"]), &bins_key)),
        ],
    );

    let mut client = PyClient::new(&server, gun, &root1);
    let signed = ["v1", "v2", "v2.1", "rc1"];
    let unsigned = ["v3", "v2.2", "rc2", "latest"];
    let mut n = names(&signed, &unsigned);
    n.push(&digest_name);
    let fresh = client.fresh(&n);
    assert_resolves("nested delegations", &fresh, &signed, &unsigned);
    assert_eq!(
        fresh.targets[&digest_name],
        json!({"length": 4242, "sha256": by_digest.hex()}),
        "target named by digest"
    );
    for file in [
        "1.targets%2Freleases%2Fhotfix.json",
        "1.targets%2Fbins.json",
    ] {
        assert!(
            fresh.fetched.contains(&url_of(&server, gun, file)),
            "{file} not fetched: {:?}",
            fresh.fetched
        );
    }

    // A new version of the innermost role alone.
    publish_ok(
        &server,
        gun,
        &[(
            HOTFIX,
            sign(targets_with(&repo, 2, &["v2.1", "v2.2"]), &hotfix_key),
        )],
    );
    let signed = ["v1", "v2", "v2.1", "v2.2", "rc1"];
    let unsigned = ["v3", "rc2"];
    check_both(&mut client, "hotfix v2", &signed, &unsigned);
}

/// A server-held snapshot is re-signed before it expires even when its lifetime is shorter
/// than half the timestamp's: python-tuf rejects an expired snapshot however fresh the
/// timestamp naming it is.
#[test]
fn python_tuf_never_sees_an_expired_server_snapshot() {
    let server = Server::start_with(&[
        ("VOUCH_TIMESTAMP_LIFETIME_SECONDS", "86400"),
        ("VOUCH_SNAPSHOT_LIFETIME_SECONDS", "60"),
    ]);
    let gun = "example.com/org/short-snapshot";
    let repo = ClientRepo::new(&server, gun);
    let root1 = repo.signed_root(1);
    publish_ok(
        &server,
        gun,
        &[
            ("root", root1.clone()),
            ("targets", repo.signed_targets(1, &["v1"])),
        ],
    );
    let mut client = PyClient::new(&server, gun, &root1);
    check_both(
        &mut client,
        "before the snapshot's lifetime ends",
        &["v1"],
        &["latest"],
    );

    std::thread::sleep(std::time::Duration::from_secs(62));
    let ts =
        Metadata::<TimestampRole>::from_bytes(&get_ok(&server, gun, "timestamp.json")).unwrap();
    let snap_v = ts.signed().snapshot.version.get();
    let snap =
        Metadata::<Snapshot>::from_bytes(&get_ok(&server, gun, &format!("{snap_v}.snapshot.json")))
            .unwrap();
    let now = vouch_tuf::time::Timestamp::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    assert!(
        snap.expires() > now,
        "timestamp.json (version {}, expires {}) names snapshot version {snap_v}, which expired at {} (now {now})",
        ts.version().get(),
        ts.expires(),
        snap.expires()
    );
    check_both(
        &mut client,
        "after the first snapshot's lifetime",
        &["v1"],
        &["latest"],
    );
}

/// A root needing 2 of 3 keys held by three people, rotated with the targets key through a
/// staged proposal: while one signature is in, python-tuf sees nothing new (fresh or
/// persistent); once the second is added it follows the new root and the new targets key.
#[test]
fn python_tuf_follows_a_root_published_through_a_proposal() {
    use vouch_tuf::api::proposal::{Proposal, ProposalStatus, Signatures};

    let server = Server::start();
    let gun = "localhost:5000/org/proposed";
    let repo = ClientRepo::new(&server, gun);
    let people = [gen(), gen(), gen()];
    let two_of_three = |version: u64, targets_key: &PrivateKey| {
        let mut root = repo.root(version);
        root.remove_key(TopLevelRole::Root, &key_of(&repo.root_key).key_id());
        root.remove_key(TopLevelRole::Targets, &key_of(&repo.targets_key).key_id());
        root.add_key(TopLevelRole::Targets, key_of(targets_key));
        for p in &people {
            root.add_key(TopLevelRole::Root, key_of(p));
        }
        root.set_threshold(TopLevelRole::Root, Threshold::new(2).unwrap());
        root
    };
    let root1 = Metadata::signed_by(
        two_of_three(1, &repo.targets_key),
        &[&people[0], &people[1]],
    )
    .unwrap()
    .to_bytes();
    publish_ok(
        &server,
        gun,
        &[
            ("root", root1.clone()),
            ("targets", repo.signed_targets(1, &["v1"])),
        ],
    );
    let mut client = PyClient::new(&server, gun, &root1);
    check_both(&mut client, "before the proposal", &["v1"], &["v2"]);

    // Person 0 proposes root v2 (a new targets key) with targets v2 signed by that key.
    let new_targets = gen();
    let root2 = Metadata::signed_by(two_of_three(2, &new_targets), &[&people[0]]).unwrap();
    let targets2 = Metadata::signed_by(targets_with(&repo, 2, &["v1", "v2"]), &[&new_targets])
        .unwrap()
        .to_bytes();
    let r = server
        .client
        .post(server.url(&format!("/v2/{gun}/_trust/proposals")))
        .bearer_auth(&server.admin_token)
        .multipart(vouch_testkit::trust_api::form(&[
            ("root", root2.to_bytes()),
            ("targets", targets2),
        ]))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let proposal = Proposal::decode(&r.bytes().unwrap()).unwrap();
    assert_eq!(proposal.status, ProposalStatus::Pending);
    check_both(&mut client, "with one of two signatures", &["v1"], &["v2"]);

    // Person 2 signs on another machine: their signature over the proposed root alone.
    let mut add = Signatures::default();
    let mut theirs = Metadata::new(root2.signed().clone());
    theirs.sign(&people[2]).unwrap();
    add.roles
        .insert("root".into(), theirs.signatures().to_vec());
    let r = server
        .client
        .post(server.url(&format!(
            "/v2/{gun}/_trust/proposals/{}/signatures",
            proposal.id
        )))
        .bearer_auth(&server.admin_token)
        .body(add.encode())
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let done = Proposal::decode(&r.bytes().unwrap()).unwrap();
    assert_eq!(done.status, ProposalStatus::Published);
    let (fresh, persistent) = check_both(
        &mut client,
        "after the second signature",
        &["v1", "v2"],
        &[],
    );
    for run in [&fresh, &persistent] {
        assert!(
            run.fetched.iter().any(|u| u.ends_with("/2.root.json")),
            "python-tuf did not follow root v2: {:?}",
            run.fetched
        );
    }
}
