//! The Notary verifier over real collections made by Debian's notary 0.7 client and server
//! (`tests/fixtures/notary/`, see its README): every tag resolves to what `notary lookup`
//! printed, from a notary server's routes and from the client's cache, pinned to a root the
//! client trusted; the notary key files decrypt to the keys the metadata names; tampering,
//! rollback and expiry are refused.
//!
//! The server-signed timestamps expire two weeks after the fixtures were made, so every test
//! runs at a fixed time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use vouch_tuf::crypto::{CryptoError, NotaryKeyFile, Signer};
use vouch_tuf::notary::{Root, Signed};
use vouch_tuf::time::Timestamp;
use vouch_verifier::notary::{
    client_trusted_root, fetch_collection, ExpiredMetadata, Layout, NotaryCollection, NotaryState,
    NotaryVerifyError,
};
use vouch_verifier::transport::{DirectoryTransport, Transport, TransportError};
use vouch_verifier::Limits;

const APP: &str = "example.com/fixtures/app";
const ONLINE: &str = "example.com/fixtures/online-snapshot";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notary")
}

/// Between the fixtures' signing (2026-12-02) and their timestamps' expiry (2026-12-16).
fn now() -> Timestamp {
    Timestamp::parse("2026-12-05T00:00:00Z").unwrap()
}

/// notary-server's routes over the saved files: `root.json` (the latest root),
/// `N.root.json`, `timestamp.json`, and the others by role name or by checksum.
struct NotaryServerRoutes {
    files: HashMap<String, Vec<u8>>,
}

impl NotaryServerRoutes {
    fn new(gun: &str) -> Self {
        let dir = fixtures().join("served").join(gun);
        let mut files = HashMap::new();
        let mut latest = 0;
        for name in ["timestamp", "snapshot", "targets", "targets/releases"] {
            let Ok(bytes) = std::fs::read(dir.join(format!("{name}.json"))) else {
                continue;
            };
            if name != "timestamp" {
                files.insert(format!("{name}.{}.json", sha256_hex(&bytes)), bytes.clone());
            }
            files.insert(format!("{name}.json"), bytes);
        }
        for n in 1.. {
            let Ok(bytes) = std::fs::read(dir.join(format!("{n}.root.json"))) else {
                break;
            };
            files.insert(format!("root.{}.json", sha256_hex(&bytes)), bytes.clone());
            files.insert(format!("{n}.root.json"), bytes);
            latest = n;
        }
        let root = files[&format!("{latest}.root.json")].clone();
        files.insert("root.json".to_owned(), root);
        Self { files }
    }

    /// Changes the content of a file under every name it is served by (as a change in the
    /// server's database would), keeping the names.
    fn replace(&mut self, name: &str, bytes: Vec<u8>) {
        let original = self.files_original(name);
        for v in self.files.values_mut() {
            if *v == original {
                *v = bytes.clone();
            }
        }
    }

    fn files_original(&self, name: &str) -> Vec<u8> {
        self.files[name].clone()
    }
}

impl Transport for NotaryServerRoutes {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        let bytes = self.files.get(path).ok_or(TransportError::NotFound {
            path: path.to_owned(),
        })?;
        if bytes.len() as u64 > max_len {
            return Err(TransportError::TooLarge {
                path: path.to_owned(),
                limit: max_len,
            });
        }
        Ok(bytes.clone())
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn cache_dir(gun: &str) -> PathBuf {
    fixtures().join("trust/tuf").join(gun).join("metadata")
}

/// The root the notary client trusted (its cached `root.json`).
fn client_root(gun: &str) -> NotaryState {
    let gun = vouch_tuf::reference::Gun::new(gun).unwrap();
    client_trusted_root(&fixtures().join("trust"), &gun, Limits::DEFAULT).unwrap()
}

/// The collection's first root, as a user who pinned it at `init` would hold it.
fn first_root(gun: &str) -> NotaryState {
    let path = fixtures().join("served").join(gun).join("1.root.json");
    NotaryState::from_trusted_root(gun, std::fs::read(path).unwrap())
}

/// `notary lookup`'s answers for `gun`: tag → (digest hex, size).
fn lookups(gun: &str) -> Vec<(String, String, u64)> {
    std::fs::read_to_string(fixtures().join("lookup.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0] == gun).then(|| {
                (
                    f[1].to_owned(),
                    f[2].strip_prefix("sha256:").unwrap().to_owned(),
                    f[3].parse().unwrap(),
                )
            })
        })
        .collect()
}

fn assert_matches_notary_lookup(gun: &str, got: &NotaryCollection) {
    let expected = lookups(gun);
    assert!(!expected.is_empty());
    for (tag, digest, size) in expected {
        let t = got
            .lookup(&tag)
            .unwrap_or_else(|| panic!("{gun} {tag} missing"));
        assert_eq!(t.sha256.as_deref(), Some(digest.as_str()), "{gun} {tag}");
        assert_eq!(t.length, size, "{gun} {tag}");
    }
}

fn from_server(
    gun: &str,
    state: &NotaryState,
    at: Timestamp,
    expired: ExpiredMetadata,
) -> Result<NotaryCollection, NotaryVerifyError> {
    fetch_collection(
        &NotaryServerRoutes::new(gun),
        Layout::Server,
        state,
        at,
        expired,
        Limits::DEFAULT,
    )
}

#[test]
fn every_tag_resolves_as_notary_lookup_printed_from_the_server() {
    for gun in [APP, ONLINE] {
        let got = from_server(gun, &client_root(gun), now(), ExpiredMetadata::Refuse).unwrap();
        assert_matches_notary_lookup(gun, &got);
        assert!(
            got.expired.is_empty() && got.skipped.is_empty(),
            "{gun}: {got:?}"
        );
    }
}

#[test]
fn the_root_chain_is_walked_from_the_first_root() {
    let got = from_server(APP, &first_root(APP), now(), ExpiredMetadata::Refuse).unwrap();
    assert_eq!(got.root_version, 3);
    assert_matches_notary_lookup(APP, &got);
    assert_eq!(got.state.root(), client_root(APP).root());
    let got = from_server(ONLINE, &first_root(ONLINE), now(), ExpiredMetadata::Refuse).unwrap();
    assert_eq!(got.root_version, 2);
}

#[test]
fn the_delegated_tag_is_signed_by_targets_releases() {
    let got = from_server(APP, &client_root(APP), now(), ExpiredMetadata::Refuse).unwrap();
    assert_eq!(got.lookup("v1.2.0").unwrap().role, "targets/releases");
    assert_eq!(got.lookup("v1.0.0").unwrap().role, "targets");
    let releases = got.role("targets/releases").unwrap();
    assert_eq!(releases.paths, vec![String::new()]);
    assert_eq!(releases.signed_by.len(), 1);
}

#[test]
fn docker_trusts_order_prefers_the_releases_role() {
    let got = from_server(APP, &client_root(APP), now(), ExpiredMetadata::Refuse).unwrap();
    let order = ["targets/releases", "targets"];
    assert_eq!(
        got.lookup_preferring("v1.2.0", &order).unwrap().role,
        "targets/releases"
    );
    assert_eq!(
        got.lookup_preferring("v1.0.0", &order).unwrap().role,
        "targets"
    );
    assert!(got
        .lookup_preferring("v1.0.0", &["targets/releases"])
        .is_none());
}

#[test]
fn every_tag_resolves_from_the_client_cache_without_network() {
    for gun in [APP, ONLINE] {
        let got = fetch_collection(
            &DirectoryTransport::new(cache_dir(gun)),
            Layout::ClientCache,
            &client_root(gun),
            now(),
            ExpiredMetadata::Refuse,
            Limits::DEFAULT,
        )
        .unwrap();
        assert_matches_notary_lookup(gun, &got);
    }
}

#[test]
fn after_the_timestamp_expires_it_is_refused_or_reported() {
    let later = Timestamp::parse("2027-01-01T00:00:00Z").unwrap();
    let err = from_server(APP, &client_root(APP), later, ExpiredMetadata::Refuse).unwrap_err();
    assert!(
        matches!(err, NotaryVerifyError::Expired { ref role, .. } if role == "timestamp"),
        "{err}"
    );
    let got = from_server(
        APP,
        &client_root(APP),
        later,
        ExpiredMetadata::AllowAndReport,
    )
    .unwrap();
    assert_eq!(got.expired.len(), 1);
    assert_eq!(got.expired[0].role, "timestamp");
    assert!(got.expired[0].expires.starts_with("2026-12-16T01:55:59"));
    assert_matches_notary_lookup(APP, &got);
}

#[test]
fn a_digest_changed_on_the_server_is_refused() {
    let mut server = NotaryServerRoutes::new(APP);
    let original = server.files_original("targets.json");
    let text = String::from_utf8(original).unwrap();
    // Re-point v1.0.0 at v1.1.0's digest (both base64 in the file).
    let v100 = base64_of_hex("d5bffe3352b054053a5487fa8086653ea18eb6dd79e42293390ca79e7f4dcc73");
    let v110 = base64_of_hex("a002590ec381e23e16511cabd1d5c8f37d3948d469ea2afcc14b616b3deefd41");
    assert!(text.contains(&v100));
    server.replace("targets.json", text.replace(&v100, &v110).into_bytes());
    let err = fetch_collection(
        &server,
        Layout::Server,
        &client_root(APP),
        now(),
        ExpiredMetadata::Refuse,
        Limits::DEFAULT,
    )
    .unwrap_err();
    assert!(err.to_string().contains("targets"), "{err}");
}

fn base64_of_hex(hex: &str) -> String {
    use base64ct::{Base64, Encoding};
    Base64::encode_string(&vouch_tuf::hex::decode(hex).unwrap())
}

#[test]
fn another_collections_root_does_not_chain_to_the_pinned_root() {
    // The online-snapshot collection served where app's root is pinned.
    let pinned = NotaryState::from_trusted_root(ONLINE, client_root(APP).root().to_vec());
    let err = from_server(ONLINE, &pinned, now(), ExpiredMetadata::Refuse).unwrap_err();
    assert!(
        matches!(
            err,
            NotaryVerifyError::RootVersion { .. }
                | NotaryVerifyError::RootRotation { .. }
                | NotaryVerifyError::RootKeys { .. }
                | NotaryVerifyError::RootRollback { .. }
        ),
        "{err}"
    );
    // app's root pinned for the wrong GUN: its certificate names another GUN.
    let err = NotaryState::from_trusted_root("example.com/other", client_root(APP).root().to_vec());
    let err = from_server(APP, &err, now(), ExpiredMetadata::Refuse).unwrap_err();
    assert!(err.to_string().contains("common name"), "{err}");
}

#[test]
fn a_timestamp_rollback_is_caught_across_runs() {
    let got = from_server(APP, &client_root(APP), now(), ExpiredMetadata::Refuse).unwrap();
    let kept = NotaryState::from_json(&got.state.to_json()).unwrap();
    assert_eq!(kept.timestamp_version(), 5);
    // A later run that trusted timestamp version 6 is shown version 5 again.
    let mut json = String::from_utf8(kept.to_json()).unwrap();
    json = json.replace("\"timestamp_version\":5", "\"timestamp_version\":6");
    let ahead = NotaryState::from_json(json.as_bytes()).unwrap();
    let err = from_server(APP, &ahead, now(), ExpiredMetadata::Refuse).unwrap_err();
    assert!(
        matches!(err, NotaryVerifyError::Rollback { ref role, trusted: 6, found: 5 } if role == "timestamp"),
        "{err}"
    );
}

/// (file, role header, gun header, passphrase) from the fixtures' README.
const KEYS: [(&str, &str, Option<&str>, &str); 6] = [
    (
        "81164425ed8cbd683e35ea8e055047808280e3300f49557a29905a83f49cbe7c",
        "root",
        None,
        "vouch-test-root",
    ),
    (
        "1bc58902d6187bd481baa30e4a14854fb3e4718abf1366618a2c7ceb6c71e7c2",
        "root",
        None,
        "vouch-test-root",
    ),
    (
        "e2bbea536f2adec6114e0dbe12147081499c88b661e10714717c6d92780890d7",
        "targets",
        Some(APP),
        "vouch-test-targets",
    ),
    (
        "3b7d4517ca5cf4b19b899aadf8ae3ba7ef660e416825b94b8dd5641b82cb4531",
        "snapshot",
        Some(APP),
        "vouch-test-snapshot",
    ),
    (
        "0a7b757b2e6fc2127ff6d53cceb4ed6fcbb5777561b39252ce2dc1b6d1ea0b29",
        "targets",
        Some(ONLINE),
        "vouch-test-targets",
    ),
    (
        "0ae0f294b820f4d6a5a347eb6c459944a229eecb6a9deb676b2249e319a28ac7",
        "targets/releases",
        None,
        "vouch-test-delegation",
    ),
];

fn key_file(id: &str) -> String {
    std::fs::read_to_string(fixtures().join("trust/private").join(format!("{id}.key"))).unwrap()
}

#[test]
fn notary_key_files_decrypt_to_the_keys_they_are_named_after() {
    use base64ct::{Base64, Encoding};
    for (id, role, gun, passphrase) in KEYS {
        let file = NotaryKeyFile::from_pem(&key_file(id), passphrase.as_bytes())
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(file.role.as_deref(), Some(role), "{id}");
        if let Some(gun) = gun {
            assert_eq!(file.gun.as_deref(), Some(gun), "{id}");
        }
        let spki = Base64::encode_string(file.key.verifying_key().material());
        assert_eq!(vouch_tuf::notary::key_id("ecdsa", &spki), id);
        assert_eq!(
            vouch_tuf::notary::bare_key_id(&file.key.verifying_key()),
            id
        );
    }
}

#[test]
fn the_imported_root_key_is_the_one_app_root_3_names() {
    let file = NotaryKeyFile::from_pem(&key_file(KEYS[1].0), b"vouch-test-root").unwrap();
    let bytes = std::fs::read(cache_dir(APP).join("root.json")).unwrap();
    let doc = Signed::parse("root", &bytes).unwrap();
    let root = Root::from_signed(&doc.signed).unwrap();
    let ids = &root.role("root").unwrap().keyids;
    let names: Vec<_> = ids
        .iter()
        .filter(|id| root.keys[*id].verifying_key() == &file.key.verifying_key())
        .collect();
    assert_eq!(names.len(), 1, "{ids:?}");
    assert!(names[0].starts_with("1cd978e8"));
    // The root lists it as a certificate; its file is named by the bare key's id.
    assert_eq!(
        vouch_tuf::notary::bare_key_id(root.keys[names[0]].verifying_key()),
        KEYS[1].0
    );
    // The key signs what the root's certificate key verifies (as a TUF 1.0 ECDSA key).
    let sig = file.key.sign(b"carried over").unwrap();
    root.keys[names[0]]
        .verifying_key()
        .verify(b"carried over", &sig)
        .unwrap();
}

#[test]
fn a_wrong_passphrase_is_reported_clearly() {
    let err = NotaryKeyFile::from_pem(&key_file(KEYS[0].0), b"vouch-test-targets").unwrap_err();
    assert_eq!(err, CryptoError::WrongPassphrase);
    assert_eq!(
        err.to_string(),
        "wrong passphrase for the encrypted private key"
    );
}
