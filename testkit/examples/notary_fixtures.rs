//! Writes the notary fixtures (`verifier/tests/fixtures/notary/`): two collections created by
//! the real notary client against a real notary-server ([`vouch_testkit::notary`]), saved as
//! the server served them, with the client's trust directory and what `notary lookup` printed.
//!
//! Usage: `cargo run -p vouch-testkit --example notary_fixtures -- OUT_DIR` (the fixture
//! directory's `regenerate.sh` runs it). It replaces `served/`, `trust/`, `lookup.txt` and
//! `expires.txt` in `OUT_DIR` and leaves everything else there alone. Every run makes new
//! keys and new expiry dates; the README in `OUT_DIR` describes the collections.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use vouch_testkit::notary::{DelegationKey, NotaryClient, NotaryServer};

/// The collection with client-held keys, a delegation and rotations.
const APP: &str = "example.com/fixtures/app";
/// The collection whose snapshot key the server holds.
const ONLINE: &str = "example.com/fixtures/online-snapshot";
/// The delegated role.
const RELEASES: &str = "targets/releases";

/// `(gun, tag, size, sha256 hex, delegated role)`. The digests are the sha256 of
/// `fixture manifest <tag>`; the sizes are made up, and distinct.
const TAGS: [(&str, &str, u64, &str, Option<&str>); 4] = [
    (
        APP,
        "v1.0.0",
        1201,
        "d5bffe3352b054053a5487fa8086653ea18eb6dd79e42293390ca79e7f4dcc73",
        None,
    ),
    (
        APP,
        "v1.1.0",
        1302,
        "a002590ec381e23e16511cabd1d5c8f37d3948d469ea2afcc14b616b3deefd41",
        None,
    ),
    (
        APP,
        "v1.2.0",
        1403,
        "522f546797ab728a53c050b4f5fe14f9f507a3eda5cbd516bd379eeca6d92cdd",
        Some(RELEASES),
    ),
    (
        ONLINE,
        "latest",
        1504,
        "16306f85706def0b75bf7bfbddaa17376db9060a105a3cc40206d4efed62b50d",
        None,
    ),
];

fn main() {
    let out = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .expect("usage: notary_fixtures OUT_DIR"),
    );
    for generated in ["served", "trust"] {
        let dir = out.join(generated);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
    }

    let tmp = tempfile::tempdir().expect("temporary directory");
    let server = NotaryServer::start(&tmp.path().join("server"));
    let client = NotaryClient::new(&server, tmp.path().join("trust"));
    let add = |gun: &str, role: Option<&str>| {
        for (g, tag, size, hex, r) in TAGS {
            if g == gun && r == role {
                client.addhash(gun, tag, size, hex, role);
            }
        }
    };

    // APP: two tags signed by the targets key; a delegation to a key the client imports and
    // a tag only that key signs; then a targets key rotation and a root key rotation, each
    // publishing a new root (root versions 1 to 3).
    client.init(APP);
    add(APP, None);
    client.publish(APP);
    let releases = DelegationKey::create(tmp.path(), "releases");
    client.delegation_add(APP, RELEASES, &releases.cert);
    client.key_import(&releases.key, RELEASES);
    client.publish(APP);
    add(APP, Some(RELEASES));
    client.publish(APP);
    client.rotate_key(APP, "targets");
    client.rotate_key(APP, "root");

    // ONLINE: the snapshot key handed to the server right after the first publish (root
    // version 2), then one tag. The trust directory's root key is reused, as notary does.
    client.init_with_server_snapshot(ONLINE);
    add(ONLINE, None);
    client.publish(ONLINE);

    let mut lookups = String::new();
    for (gun, tag, size, hex, _) in TAGS {
        let found = client.lookup(gun, tag);
        assert_eq!(
            (found.digest.as_str(), found.size),
            (format!("sha256:{hex}").as_str(), size),
            "notary lookup {gun} {tag}"
        );
        writeln!(lookups, "{gun} {tag} {} {}", found.digest, found.size).expect("string");
    }
    std::fs::write(out.join("lookup.txt"), lookups).expect("write lookup.txt");

    let mut expires = String::new();
    for gun in [APP, ONLINE] {
        let dir = out.join("served").join(gun);
        let mut files: Vec<String> = Vec::new();
        for version in 1.. {
            let file = format!("{version}.root.json");
            if server.get(gun, &file).0 == 404 {
                break;
            }
            files.push(file);
        }
        files.extend(["targets.json", "snapshot.json", "timestamp.json"].map(String::from));
        if gun == APP {
            files.push(format!("{RELEASES}.json"));
        }
        for file in files {
            let (status, body) = server.get(gun, &file);
            assert_eq!(status, 200, "GET {gun} {file}");
            let path = dir.join(&file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("create served/");
            std::fs::write(&path, &body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let meta: Value = serde_json::from_slice(&body).expect("served JSON");
            let signed = &meta["signed"];
            writeln!(
                expires,
                "{gun} {file} version {} expires {}",
                signed["version"],
                signed["expires"].as_str().expect("expires")
            )
            .expect("string");
        }
    }
    std::fs::write(out.join("expires.txt"), expires).expect("write expires.txt");

    for part in ["tuf", "private"] {
        copy_tree(
            &client.trust_dir().join(part),
            &out.join("trust").join(part),
        );
    }
}

/// Copies the files under `from` to `to`, leaving out notary's (empty, once published)
/// `changelist` directories.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("directory entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().expect("file type").is_dir() {
            if entry.file_name() != "changelist" {
                copy_tree(&src, &dst);
            }
        } else {
            std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        }
    }
}
