//! The Notary client workflow against collections built and signed here as Notary writes
//! them, served from memory under the file names notary-server and the notary client's cache
//! use. Each attack has a test showing it is stopped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use base64ct::{Base64, Encoding};
use rcgen::{CertificateParams, DnType, KeyPair, PublicKeyData, PKCS_ECDSA_P256_SHA256};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use vouch_tuf::json::{canonical, parse};
use vouch_tuf::notary::{key_id, NotaryError};
use vouch_tuf::time::Timestamp as Instant;

use super::*;
use crate::limits::Limits;
use crate::transport::{Transport, TransportError};

const GUN: &str = "example.com/org/app";
const FUTURE: &str = "2036-11-27T01:58:39.730960174Z";
const PAST: &str = "2020-01-01T00:00:00Z";

fn now() -> Instant {
    Instant::parse("2027-01-01T00:00:00Z").unwrap()
}

/// An ECDSA P-256 key: a plain `ecdsa` key, or an `ecdsa-x509` certificate for a GUN.
struct Key {
    keytype: &'static str,
    public_b64: String,
    pair: EcdsaKeyPair,
}

impl Key {
    fn plain() -> Self {
        let kp = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        Self::from(
            &kp,
            "ecdsa",
            Base64::encode_string(&kp.subject_public_key_info()),
        )
    }

    fn cert(cn: &str, not_after_year: i32) -> Self {
        let kp = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(not_after_year, 1, 1);
        let cert = params.self_signed(&kp).unwrap();
        Self::from(
            &kp,
            "ecdsa-x509",
            Base64::encode_string(cert.pem().as_bytes()),
        )
    }

    fn from(kp: &KeyPair, keytype: &'static str, public_b64: String) -> Self {
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &kp.serialize_der(),
            &SystemRandom::new(),
        )
        .unwrap();
        Self {
            keytype,
            public_b64,
            pair,
        }
    }

    fn id(&self) -> String {
        key_id(self.keytype, &self.public_b64)
    }

    fn json(&self) -> String {
        format!(
            r#"{{"keytype":"{}","keyval":{{"private":null,"public":"{}"}}}}"#,
            self.keytype, self.public_b64
        )
    }
}

fn sign(signed: &str, keys: &[&Key]) -> Vec<u8> {
    let msg = canonical(&parse(signed.as_bytes()).unwrap());
    let sigs: Vec<String> = keys
        .iter()
        .map(|k| {
            let sig = k.pair.sign(&SystemRandom::new(), &msg).unwrap();
            format!(
                r#"{{"keyid":"{}","method":"ecdsa","sig":"{}"}}"#,
                k.id(),
                Base64::encode_string(sig.as_ref())
            )
        })
        .collect();
    format!(r#"{{"signed":{signed},"signatures":[{}]}}"#, sigs.join(",")).into_bytes()
}

fn b64_sha256(bytes: &[u8]) -> String {
    Base64::encode_string(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn hex_sha256(bytes: &[u8]) -> String {
    vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn meta(bytes: &[u8]) -> String {
    format!(
        r#"{{"hashes":{{"sha256":"{}"}},"length":{}}}"#,
        b64_sha256(bytes),
        bytes.len()
    )
}

fn targets_json(entries: &BTreeMap<String, (String, u64)>) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|(name, (digest_hex, len))| {
            let raw = vouch_tuf::hex::decode(digest_hex).unwrap();
            format!(
                r#""{name}":{{"hashes":{{"sha256":"{}"}},"length":{len}}}"#,
                Base64::encode_string(&raw)
            )
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

fn digest(n: u8) -> String {
    vouch_tuf::hex::encode([n; 32])
}

/// A Notary collection as notary-server would serve it.
struct Collection {
    root_keys: Vec<Key>,
    targets_key: Key,
    snapshot_key: Key,
    timestamp_key: Key,
    release_key: Key,
    root_versions: Vec<Vec<u8>>,
    targets: BTreeMap<String, (String, u64)>,
    releases: BTreeMap<String, (String, u64)>,
    release_paths: Vec<String>,
    versions: HashMap<&'static str, u64>,
    expires: HashMap<&'static str, &'static str>,
    /// What the last publish wrote, by role.
    docs: BTreeMap<String, Vec<u8>>,
}

impl Collection {
    fn new() -> Self {
        let mut c = Self {
            root_keys: vec![Key::cert(GUN, 2036)],
            targets_key: Key::plain(),
            snapshot_key: Key::plain(),
            timestamp_key: Key::plain(),
            release_key: Key::cert("targets/releases", 2036),
            root_versions: Vec::new(),
            targets: BTreeMap::from([("v1".to_owned(), (digest(1), 100))]),
            releases: BTreeMap::from([
                ("v2".to_owned(), (digest(2), 200)),
                ("v1".to_owned(), (digest(9), 900)),
            ]),
            release_paths: vec![String::new()],
            versions: HashMap::new(),
            expires: HashMap::new(),
            docs: BTreeMap::new(),
        };
        let root = c.root_doc(1, &[0]);
        c.root_versions.push(root);
        c.publish();
        c
    }

    fn expiry(&self, role: &'static str) -> &'static str {
        self.expires.get(role).copied().unwrap_or(FUTURE)
    }

    fn bump(&mut self, role: &'static str) -> u64 {
        let v = self.versions.entry(role).or_insert(0);
        *v += 1;
        *v
    }

    /// Root version `version` listing the current root key, signed by the keys at `signers`.
    fn root_doc(&self, version: u64, signers: &[usize]) -> Vec<u8> {
        let root = self.root_keys.last().unwrap();
        let keys = [
            root,
            &self.targets_key,
            &self.snapshot_key,
            &self.timestamp_key,
        ];
        let key_entries: Vec<String> = keys
            .iter()
            .map(|k| format!(r#""{}":{}"#, k.id(), k.json()))
            .collect();
        let role = |k: &Key| format!(r#"{{"keyids":["{}"],"threshold":1}}"#, k.id());
        let signed = format!(
            r#"{{"_type":"Root","consistent_snapshot":false,"expires":"{}","keys":{{{}}},"roles":{{"root":{},"snapshot":{},"targets":{},"timestamp":{}}},"version":{version}}}"#,
            self.expiry("root"),
            key_entries.join(","),
            role(root),
            role(&self.snapshot_key),
            role(&self.targets_key),
            role(&self.timestamp_key),
        );
        let signers: Vec<&Key> = signers.iter().map(|i| &self.root_keys[*i]).collect();
        sign(&signed, &signers)
    }

    /// Rotates the root key: a new root version signed by the old and the new key.
    fn rotate_root(&mut self) {
        self.root_keys.push(Key::cert(GUN, 2036));
        let n = self.root_keys.len();
        let version = self.root_versions.len() as u64 + 1;
        let root = self.root_doc(version, &[n - 2, n - 1]);
        self.root_versions.push(root);
        self.publish();
    }

    fn publish(&mut self) {
        let releases = {
            let v = self.bump("targets/releases");
            sign(
                &format!(
                    r#"{{"_type":"Targets","delegations":{{"keys":{{}},"roles":[]}},"expires":"{}","targets":{},"version":{v}}}"#,
                    self.expiry("targets/releases"),
                    targets_json(&self.releases)
                ),
                &[&self.release_key],
            )
        };
        let paths: Vec<String> = self
            .release_paths
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect();
        let targets = {
            let v = self.bump("targets");
            sign(
                &format!(
                    r#"{{"_type":"Targets","delegations":{{"keys":{{"{rid}":{rk}}},"roles":[{{"keyids":["{rid}"],"name":"targets/releases","paths":[{paths}],"threshold":1}}]}},"expires":"{exp}","targets":{t},"version":{v}}}"#,
                    rid = self.release_key.id(),
                    rk = self.release_key.json(),
                    paths = paths.join(","),
                    exp = self.expiry("targets"),
                    t = targets_json(&self.targets)
                ),
                &[&self.targets_key],
            )
        };
        let root = self.root_versions.last().unwrap().clone();
        let snapshot = {
            let v = self.bump("snapshot");
            sign(
                &format!(
                    r#"{{"_type":"Snapshot","expires":"{}","meta":{{"root":{},"targets":{},"targets/releases":{}}},"version":{v}}}"#,
                    self.expiry("snapshot"),
                    meta(&root),
                    meta(&targets),
                    meta(&releases)
                ),
                &[&self.snapshot_key],
            )
        };
        let timestamp = {
            let v = self.bump("timestamp");
            sign(
                &format!(
                    r#"{{"_type":"Timestamp","expires":"{}","meta":{{"snapshot":{}}},"version":{v}}}"#,
                    self.expiry("timestamp"),
                    meta(&snapshot)
                ),
                &[&self.timestamp_key],
            )
        };
        self.docs = BTreeMap::from([
            ("root".to_owned(), root),
            ("targets".to_owned(), targets),
            ("targets/releases".to_owned(), releases),
            ("snapshot".to_owned(), snapshot),
            ("timestamp".to_owned(), timestamp),
        ]);
    }

    /// Re-signs the timestamp over the current snapshot bytes (as a server holding the
    /// timestamp key does), keeping everything else.
    fn resign_timestamp(&mut self) {
        let v = self.bump("timestamp");
        let ts = sign(
            &format!(
                r#"{{"_type":"Timestamp","expires":"{}","meta":{{"snapshot":{}}},"version":{v}}}"#,
                self.expiry("timestamp"),
                meta(&self.docs["snapshot"])
            ),
            &[&self.timestamp_key],
        );
        self.docs.insert("timestamp".to_owned(), ts);
    }

    /// The files a notary server serves for the current state.
    fn server(&self) -> Memory {
        let mut files = HashMap::new();
        for (i, r) in self.root_versions.iter().enumerate() {
            files.insert(format!("{}.root.json", i + 1), r.clone());
        }
        for (role, bytes) in &self.docs {
            files.insert(format!("{role}.json"), bytes.clone());
            if role != "timestamp" {
                files.insert(format!("{role}.{}.json", hex_sha256(bytes)), bytes.clone());
            }
        }
        Memory::new(files)
    }

    /// The notary client's cache directory for the current state.
    fn cache(&self) -> Memory {
        Memory::new(
            self.docs
                .iter()
                .map(|(role, b)| (format!("{role}.json"), b.clone()))
                .collect(),
        )
    }

    fn trusted(&self) -> NotaryState {
        NotaryState::from_trusted_root(GUN, self.root_versions[0].clone())
    }
}

/// Files in memory; records what was asked for.
struct Memory {
    files: HashMap<String, Vec<u8>>,
    asked: Mutex<Vec<String>>,
}

impl Memory {
    fn new(files: HashMap<String, Vec<u8>>) -> Self {
        Self {
            files,
            asked: Mutex::new(Vec::new()),
        }
    }

    fn with(mut self, path: &str, bytes: Vec<u8>) -> Self {
        self.files.insert(path.to_owned(), bytes);
        self
    }
}

impl Transport for Memory {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        self.asked.lock().unwrap().push(path.to_owned());
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

fn run(
    t: &Memory,
    layout: Layout,
    state: &NotaryState,
    expired: ExpiredMetadata,
) -> Result<NotaryCollection, NotaryVerifyError> {
    fetch_collection(t, layout, state, now(), expired, Limits::DEFAULT)
}

fn verify(c: &Collection) -> Result<NotaryCollection, NotaryVerifyError> {
    run(
        &c.server(),
        Layout::Server,
        &c.trusted(),
        ExpiredMetadata::Refuse,
    )
}

#[test]
fn a_collection_verifies_and_resolves_tags_as_notary_does() {
    let c = Collection::new();
    let server = c.server();
    let got = run(
        &server,
        Layout::Server,
        &c.trusted(),
        ExpiredMetadata::Refuse,
    )
    .unwrap();
    assert_eq!(got.root_version, 1);
    assert_eq!(got.roles.len(), 2);
    assert_eq!(got.roles[0].name, "targets");
    assert_eq!(got.roles[1].name, "targets/releases");
    // `targets` comes first: its v1 wins over the delegation's.
    let v1 = got.lookup("v1").unwrap();
    assert_eq!(
        (v1.sha256.as_deref(), v1.length, v1.role.as_str()),
        (Some(&*digest(1)), 100, "targets")
    );
    let v2 = got.lookup("v2").unwrap();
    assert_eq!(
        (v2.sha256.as_deref(), v2.role.as_str()),
        (Some(&*digest(2)), "targets/releases")
    );
    assert_eq!(
        got.role("targets/releases").unwrap().targets["v1"]
            .sha256
            .as_deref(),
        Some(&*digest(9))
    );
    assert!(got.skipped.is_empty() && got.expired.is_empty());
    // The files were asked for by the names notary-server routes.
    let asked = server.asked.lock().unwrap().clone();
    assert_eq!(asked[0], "root.json");
    assert_eq!(asked[1], "timestamp.json");
    assert_eq!(
        asked[2],
        format!("snapshot.{}.json", hex_sha256(&c.docs["snapshot"]))
    );
    assert_eq!(
        asked[3],
        format!("targets.{}.json", hex_sha256(&c.docs["targets"]))
    );
    assert_eq!(
        asked[4],
        format!(
            "targets/releases.{}.json",
            hex_sha256(&c.docs["targets/releases"])
        )
    );
}

#[test]
fn the_client_cache_layout_verifies_without_checksummed_names() {
    let c = Collection::new();
    let got = run(
        &c.cache(),
        Layout::ClientCache,
        &c.trusted(),
        ExpiredMetadata::Refuse,
    )
    .unwrap();
    assert_eq!(got.lookup("v2").unwrap().role, "targets/releases");
}

#[test]
fn root_rotations_are_walked_and_each_is_cross_signed() {
    let mut c = Collection::new();
    c.rotate_root();
    c.rotate_root();
    let got = verify(&c).unwrap();
    assert_eq!(got.root_version, 3);
    assert_eq!(got.state.root(), c.root_versions[2].as_slice());
}

#[test]
fn a_root_not_signed_by_the_previous_root_keys_is_refused() {
    let mut c = Collection::new();
    c.root_keys.push(Key::cert(GUN, 2036));
    // Version 2 signed only by the new key.
    let root = c.root_doc(2, &[1]);
    c.root_versions.push(root);
    c.publish();
    let err = verify(&c).unwrap_err();
    assert!(
        matches!(err, NotaryVerifyError::RootRotation { version: 2, .. }),
        "{err}"
    );
}

#[test]
fn a_root_not_signed_by_its_own_keys_is_refused() {
    let mut c = Collection::new();
    c.root_keys.push(Key::cert(GUN, 2036));
    // Version 2 lists the new key but is signed only by the old one.
    let root = c.root_doc(2, &[0]);
    c.root_versions.push(root);
    c.publish();
    let err = verify(&c).unwrap_err();
    assert!(err.to_string().contains("threshold"), "{err}");
}

#[test]
fn a_root_that_does_not_chain_to_the_pinned_root_is_refused() {
    let c = Collection::new();
    let other = Collection::new();
    // The server hands out another collection's root (version 1): not the pinned one.
    let err = run(
        &other.server(),
        Layout::Server,
        &c.trusted(),
        ExpiredMetadata::Refuse,
    )
    .unwrap_err();
    assert!(
        matches!(err, NotaryVerifyError::RootDiffers { version: 1 }),
        "{err}"
    );
    // And as a version 2 it is not signed by the pinned root's keys.
    let mut other = Collection::new();
    other.rotate_root();
    let err = run(
        &other.server(),
        Layout::Server,
        &c.trusted(),
        ExpiredMetadata::Refuse,
    )
    .unwrap_err();
    assert!(
        matches!(err, NotaryVerifyError::RootRotation { .. }),
        "{err}"
    );
}

#[test]
fn root_certificates_must_name_the_gun() {
    let mut c = Collection::new();
    c.root_keys = vec![Key::cert("example.com/org/other", 2036)];
    c.root_versions = vec![c.root_doc(1, &[0])];
    c.publish();
    let err = verify(&c).unwrap_err();
    assert!(err.to_string().contains("common name"), "{err}");
}

#[test]
fn an_expired_root_certificate_is_refused_or_reported() {
    let mut c = Collection::new();
    c.root_keys = vec![Key::cert(GUN, 2026)];
    c.root_versions = vec![c.root_doc(1, &[0])];
    c.publish();
    let err = verify(&c).unwrap_err();
    assert!(err.to_string().contains("valid from"), "{err}");
    let got = run(
        &c.server(),
        Layout::Server,
        &c.trusted(),
        ExpiredMetadata::AllowAndReport,
    )
    .unwrap();
    assert!(
        got.expired[0].role.starts_with("root certificate "),
        "{:?}",
        got.expired
    );
}

#[test]
fn a_tampered_targets_file_fails_the_snapshot_hash() {
    let c = Collection::new();
    let tampered = String::from_utf8(c.docs["targets"].clone())
        .unwrap()
        .replace(r#""length":100"#, r#""length":101"#)
        .into_bytes();
    let name = format!("targets.{}.json", hex_sha256(&c.docs["targets"]));
    let server = c.server().with(&name, tampered);
    let err = run(
        &server,
        Layout::Server,
        &c.trusted(),
        ExpiredMetadata::Refuse,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            NotaryVerifyError::Document(
                NotaryError::HashMismatch { .. } | NotaryError::LengthMismatch { .. }
            )
        ),
        "{err}"
    );
}

#[test]
fn a_tampered_digest_resigned_only_by_the_server_keys_is_refused() {
    // The server holds the snapshot and timestamp keys (as notary-server can): it changes a
    // digest, writes a matching snapshot and timestamp, but cannot sign targets.
    let mut c = Collection::new();
    let forged = String::from_utf8(c.docs["targets"].clone())
        .unwrap()
        .replace(
            &Base64::encode_string(&[1u8; 32]),
            &Base64::encode_string(&[7u8; 32]),
        )
        .into_bytes();
    c.docs.insert("targets".to_owned(), forged);
    let root = c.root_versions[0].clone();
    let v = c.bump("snapshot");
    let snapshot = sign(
        &format!(
            r#"{{"_type":"Snapshot","expires":"{FUTURE}","meta":{{"root":{},"targets":{},"targets/releases":{}}},"version":{v}}}"#,
            meta(&root),
            meta(&c.docs["targets"]),
            meta(&c.docs["targets/releases"])
        ),
        &[&c.snapshot_key],
    );
    c.docs.insert("snapshot".to_owned(), snapshot);
    c.resign_timestamp();
    let err = verify(&c).unwrap_err();
    assert!(
        err.to_string().contains("targets: 0 valid signature"),
        "{err}"
    );
}

#[test]
fn a_snapshot_whose_hash_is_not_the_timestamps_is_refused() {
    let c = Collection::new();
    let name = format!("snapshot.{}.json", hex_sha256(&c.docs["snapshot"]));
    let mut other = Collection::new();
    other.snapshot_key = Key::plain();
    other.publish();
    let server = c.server().with(&name, other.docs["snapshot"].clone());
    let err = run(
        &server,
        Layout::Server,
        &c.trusted(),
        ExpiredMetadata::Refuse,
    )
    .unwrap_err();
    assert!(err.to_string().contains("snapshot"), "{err}");
}

#[test]
fn rollback_of_timestamp_and_snapshot_is_caught_across_runs() {
    let mut c = Collection::new();
    let old = c.server();
    c.publish();
    c.publish();
    let state = verify(&c).unwrap().state;
    assert_eq!(state.timestamp_version(), 3);
    // The state survives being written and read back.
    let state = NotaryState::from_json(&state.to_json()).unwrap();
    let err = run(&old, Layout::Server, &state, ExpiredMetadata::Refuse).unwrap_err();
    assert!(
        matches!(err, NotaryVerifyError::Rollback { ref role, trusted: 3, found: 1 } if role == "timestamp"),
        "{err}"
    );
    // A fresh timestamp over an older snapshot: the snapshot's rollback is caught.
    let mut stale = c;
    stale.versions.insert("snapshot", 0);
    stale.versions.insert("timestamp", 10);
    stale.publish();
    let err = run(
        &stale.server(),
        Layout::Server,
        &state,
        ExpiredMetadata::Refuse,
    )
    .unwrap_err();
    assert!(
        matches!(err, NotaryVerifyError::Rollback { ref role, found: 1, .. } if role == "snapshot"),
        "{err}"
    );
}

#[test]
fn rollback_of_targets_is_caught_across_runs() {
    let mut c = Collection::new();
    c.publish();
    let state = verify(&c).unwrap().state;
    assert_eq!(state.targets_version("targets"), Some(2));
    c.versions.insert("targets", 0);
    c.versions.insert("snapshot", 5);
    c.versions.insert("timestamp", 5);
    c.publish();
    let err = run(&c.server(), Layout::Server, &state, ExpiredMetadata::Refuse).unwrap_err();
    assert!(
        matches!(err, NotaryVerifyError::Rollback { ref role, .. } if role == "targets"),
        "{err}"
    );
}

#[test]
fn a_server_root_older_than_the_trusted_one_is_refused() {
    let mut c = Collection::new();
    let old = c.server();
    c.rotate_root();
    let state = verify(&c).unwrap().state;
    let err = run(&old, Layout::Server, &state, ExpiredMetadata::Refuse).unwrap_err();
    assert!(
        matches!(
            err,
            NotaryVerifyError::RootRollback {
                trusted: 2,
                found: 1
            }
        ),
        "{err}"
    );
}

#[test]
fn expired_roles_are_refused_or_allowed_and_reported() {
    for role in ["timestamp", "snapshot", "targets", "root"] {
        let mut c = Collection::new();
        c.expires.insert(role, PAST);
        if role == "root" {
            c.root_versions = vec![c.root_doc(1, &[0])];
        }
        c.publish();
        let err = verify(&c).unwrap_err();
        assert!(
            matches!(err, NotaryVerifyError::Expired { role: ref r, .. } if r == role),
            "{role}: {err}"
        );
        let got = run(
            &c.server(),
            Layout::Server,
            &c.trusted(),
            ExpiredMetadata::AllowAndReport,
        )
        .unwrap();
        assert_eq!(got.expired.len(), 1, "{role}");
        assert_eq!(got.expired[0].role, role);
        assert_eq!(got.expired[0].expires, PAST);
        assert!(got.lookup("v2").is_some());
    }
}

#[test]
fn an_expired_delegation_is_skipped_as_the_notary_client_skips_it() {
    let mut c = Collection::new();
    c.expires.insert("targets/releases", PAST);
    c.publish();
    let got = verify(&c).unwrap();
    assert!(got.lookup("v2").is_none());
    assert_eq!(got.skipped[0].name, "targets/releases");
    assert!(got.skipped[0].reason.contains("expired"));
    let got = run(
        &c.server(),
        Layout::Server,
        &c.trusted(),
        ExpiredMetadata::AllowAndReport,
    )
    .unwrap();
    assert_eq!(got.lookup("v2").unwrap().role, "targets/releases");
    assert_eq!(got.expired[0].role, "targets/releases");
}

#[test]
fn a_delegation_signed_by_the_wrong_key_is_skipped() {
    // Build a collection whose targets names one key and whose delegation is signed by another.
    let mut c = Collection::new();
    let impostor = Key::cert("targets/releases", 2036);
    let releases = sign(
        &format!(
            r#"{{"_type":"Targets","delegations":{{"keys":{{}},"roles":[]}},"expires":"{FUTURE}","targets":{},"version":5}}"#,
            targets_json(&BTreeMap::from([("v2".to_owned(), (digest(6), 6))]))
        ),
        &[&impostor],
    );
    c.docs.insert("targets/releases".to_owned(), releases);
    let v = c.bump("snapshot");
    let snapshot = sign(
        &format!(
            r#"{{"_type":"Snapshot","expires":"{FUTURE}","meta":{{"root":{},"targets":{},"targets/releases":{}}},"version":{v}}}"#,
            meta(&c.root_versions[0]),
            meta(&c.docs["targets"]),
            meta(&c.docs["targets/releases"])
        ),
        &[&c.snapshot_key],
    );
    c.docs.insert("snapshot".to_owned(), snapshot);
    c.resign_timestamp();
    let got = verify(&c).unwrap();
    assert!(
        got.lookup("v2").is_none(),
        "a tag re-pointed without the delegation's key"
    );
    assert!(
        got.skipped[0].reason.contains("threshold"),
        "{:?}",
        got.skipped
    );
}

#[test]
fn targets_outside_a_delegations_paths_are_not_trusted() {
    let mut c = Collection::new();
    c.release_paths = vec!["v1".to_owned()];
    c.publish();
    let got = verify(&c).unwrap();
    let releases = got.role("targets/releases").unwrap();
    assert_eq!(releases.paths, vec!["v1".to_owned()]);
    assert!(releases.targets.contains_key("v1"));
    assert_eq!(releases.outside_paths, vec!["v2".to_owned()]);
    assert!(got.lookup("v2").is_none());
}

#[test]
fn a_top_level_role_signed_by_the_wrong_key_fails() {
    let mut c = Collection::new();
    c.timestamp_key = Key::plain();
    c.publish(); // root still lists the old timestamp key
    let mut fresh = Collection::new();
    std::mem::swap(&mut fresh.timestamp_key, &mut c.timestamp_key);
    fresh.resign_timestamp();
    let err = verify(&fresh).unwrap_err();
    assert!(
        err.to_string().contains("timestamp: 0 valid signature"),
        "{err}"
    );
}

#[test]
fn oversized_files_are_not_read() {
    let c = Collection::new();
    let limits = Limits {
        timestamp_max_bytes: 100,
        ..Limits::DEFAULT
    };
    let err = fetch_collection(
        &c.server(),
        Layout::Server,
        &c.trusted(),
        now(),
        ExpiredMetadata::Refuse,
        limits,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            NotaryVerifyError::Transport {
                source: TransportError::TooLarge { .. },
                ..
            }
        ),
        "{err}"
    );
}

/// A server that takes `delay` to answer each request, and honours the deadline it is given
/// as a network transport does (a request in progress at the deadline is cut off).
struct Slow {
    inner: Memory,
    delay: std::time::Duration,
}

impl Transport for Slow {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        std::thread::sleep(self.delay);
        self.inner.fetch(path, max_len)
    }

    fn fetch_by(
        &self,
        path: &str,
        max_len: u64,
        deadline: std::time::Instant,
    ) -> Result<Vec<u8>, TransportError> {
        let now = std::time::Instant::now();
        if now + self.delay > deadline {
            std::thread::sleep(deadline.saturating_duration_since(now));
            return Err(TransportError::TimedOut {
                path: path.to_owned(),
            });
        }
        self.fetch(path, max_len)
    }
}

#[test]
fn a_slow_server_cannot_hold_an_update_past_its_duration() {
    // Each answer comes just within any per-request timeout, but a whole update (root,
    // root versions, timestamp, snapshot, every targets role) may take at most
    // `max_update_duration` in all.
    let c = Collection::new();
    let slow = Slow {
        inner: c.server(),
        delay: std::time::Duration::from_millis(150),
    };
    let limits = Limits {
        max_update_duration: std::time::Duration::from_millis(400),
        ..Limits::DEFAULT
    };
    let err = fetch_collection(
        &slow,
        Layout::Server,
        &c.trusted(),
        now(),
        ExpiredMetadata::Refuse,
        limits,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            NotaryVerifyError::Transport {
                source: TransportError::TimedOut { .. },
                ..
            }
        ),
        "{err}"
    );
    // With time enough, the same server's collection verifies.
    let limits = Limits {
        max_update_duration: std::time::Duration::from_secs(60),
        ..Limits::DEFAULT
    };
    fetch_collection(
        &slow,
        Layout::Server,
        &c.trusted(),
        now(),
        ExpiredMetadata::Refuse,
        limits,
    )
    .unwrap();
}

#[test]
fn the_verifier_refuses_calls_out_of_order() {
    let c = Collection::new();
    let fresh = || {
        NotaryVerifier::new(
            &c.trusted(),
            now(),
            ExpiredMetadata::Refuse,
            Limits::DEFAULT,
        )
        .unwrap()
    };
    assert!(fresh().update_snapshot(&c.docs["snapshot"]).is_err());
    assert!(fresh()
        .update_targets("targets", &c.docs["targets"])
        .is_err());
    assert!(matches!(
        fresh().finish(),
        Err(NotaryVerifyError::OutOfOrder { .. })
    ));
    let after_timestamp = || {
        let mut v = fresh();
        v.update_timestamp(&c.docs["timestamp"]).unwrap();
        v
    };
    assert!(after_timestamp().update_root(&c.root_versions[0]).is_err());
    assert!(after_timestamp()
        .update_timestamp(&c.docs["timestamp"])
        .is_err());
    let after_snapshot = || {
        let mut v = after_timestamp();
        v.update_snapshot(&c.docs["snapshot"]).unwrap();
        v
    };
    // Offering the delegation before targets is refused.
    assert!(after_snapshot()
        .update_targets("targets/releases", &c.docs["targets/releases"])
        .is_err());
    // Finishing before every role asked for was offered is refused.
    assert!(after_snapshot().finish().is_err());
    let mut v = after_snapshot();
    assert_eq!(v.next_targets().unwrap().role, "targets");
    v.update_targets("targets", &c.docs["targets"]).unwrap();
    assert_eq!(v.next_targets().unwrap().role, "targets/releases");
    v.update_targets("targets/releases", &c.docs["targets/releases"])
        .unwrap();
    assert_eq!(v.next_targets(), None);
    assert_eq!(v.finish().unwrap().roles.len(), 2);
}

#[test]
fn too_many_root_versions_are_refused() {
    let mut c = Collection::new();
    for _ in 0..3 {
        c.rotate_root();
    }
    let limits = Limits {
        max_root_rotations: 2,
        ..Limits::DEFAULT
    };
    let err = fetch_collection(
        &c.server(),
        Layout::Server,
        &c.trusted(),
        now(),
        ExpiredMetadata::Refuse,
        limits,
    )
    .unwrap_err();
    assert!(
        matches!(err, NotaryVerifyError::TooManyRootVersions { max: 2 }),
        "{err}"
    );
}

#[test]
fn a_bad_state_document_is_refused() {
    assert!(NotaryState::from_json(b"{}").is_err());
    assert!(NotaryState::from_json(b"not json").is_err());
}

#[test]
fn the_trusted_root_served_in_other_bytes_is_adopted_when_its_content_is_the_same() {
    let mut c = Collection::new();
    let trusted = c.trusted();
    let respaced = String::from_utf8(c.root_versions[0].clone())
        .unwrap()
        .replacen("{", "{ ", 1)
        .into_bytes();
    c.root_versions[0] = respaced.clone();
    c.publish();
    let got = run(
        &c.server(),
        Layout::Server,
        &trusted,
        ExpiredMetadata::Refuse,
    )
    .unwrap();
    // The state keeps the bytes the snapshot lists.
    assert_eq!(got.state.root(), respaced.as_slice());
    // Without the same signed content it is refused.
    let mut other = Collection::new();
    other.root_keys = c.root_keys.drain(..).collect();
    other.root_versions = vec![other.root_doc(1, &[0])];
    other.publish();
    let err = run(
        &other.server(),
        Layout::Server,
        &trusted,
        ExpiredMetadata::Refuse,
    )
    .unwrap_err();
    assert!(
        matches!(err, NotaryVerifyError::RootDiffers { version: 1 }),
        "{err}"
    );
}

#[test]
fn a_snapshot_listing_another_root_is_refused() {
    let mut c = Collection::new();
    let trusted = c.trusted();
    // The server hands out the trusted root, but its snapshot lists a different root file.
    c.root_versions[0] = String::from_utf8(c.root_versions[0].clone())
        .unwrap()
        .replacen("{", "{ ", 1)
        .into_bytes();
    c.publish();
    let server = c.server().with("root.json", trusted.root().to_vec());
    let err = run(&server, Layout::Server, &trusted, ExpiredMetadata::Refuse).unwrap_err();
    assert!(
        matches!(err, NotaryVerifyError::SnapshotRoot { .. }),
        "{err}"
    );
}

/// Re-signs snapshot over every role document in `c.docs` and the timestamp over it.
fn reissue_snapshot(c: &mut Collection) {
    let entries: Vec<String> = c
        .docs
        .iter()
        .filter(|(role, _)| *role != "snapshot" && *role != "timestamp")
        .map(|(role, bytes)| format!(r#""{role}":{}"#, meta(bytes)))
        .collect();
    let v = c.bump("snapshot");
    let snapshot = sign(
        &format!(
            r#"{{"_type":"Snapshot","expires":"{FUTURE}","meta":{{{}}},"version":{v}}}"#,
            entries.join(",")
        ),
        &[&c.snapshot_key],
    );
    c.docs.insert("snapshot".to_owned(), snapshot);
    c.resign_timestamp();
}

/// A targets document for `role` listing `targets`, delegating to `child` (if any) with
/// `paths`, signed by `signer`.
fn delegating(
    targets: &BTreeMap<String, (String, u64)>,
    child: Option<(&str, &Key, &[&str])>,
    signer: &Key,
) -> Vec<u8> {
    let delegations = match child {
        Some((name, key, paths)) => {
            let paths: Vec<String> = paths.iter().map(|p| format!("\"{p}\"")).collect();
            format!(
                r#"{{"keys":{{"{id}":{k}}},"roles":[{{"keyids":["{id}"],"name":"{name}","paths":[{}],"threshold":1}}]}}"#,
                paths.join(","),
                id = key.id(),
                k = key.json()
            )
        }
        None => r#"{"keys":{},"roles":[]}"#.to_owned(),
    };
    sign(
        &format!(
            r#"{{"_type":"Targets","delegations":{delegations},"expires":"{FUTURE}","targets":{},"version":1}}"#,
            targets_json(targets)
        ),
        &[signer],
    )
}

#[test]
fn nested_delegations_are_restricted_to_their_parents_paths() {
    let mut c = Collection::new();
    c.release_paths = vec!["v".to_owned()];
    c.publish();
    let qa = Key::cert("targets/releases/qa", 2036);
    let releases = delegating(
        &BTreeMap::from([("v2".to_owned(), (digest(2), 200))]),
        Some(("targets/releases/qa", &qa, &["v3", "x"])),
        &c.release_key,
    );
    let qa_doc = delegating(
        &BTreeMap::from([
            ("v3".to_owned(), (digest(3), 300)),
            ("x1".to_owned(), (digest(4), 400)),
            ("v2".to_owned(), (digest(5), 500)),
        ]),
        None,
        &qa,
    );
    c.docs.insert("targets/releases".to_owned(), releases);
    c.docs.insert("targets/releases/qa".to_owned(), qa_doc);
    reissue_snapshot(&mut c);
    let got = verify(&c).unwrap();
    let names: Vec<&str> = got.roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["targets", "targets/releases", "targets/releases/qa"]
    );
    let qa_role = got.role("targets/releases/qa").unwrap();
    // "x" is not under releases' "v": only "v3" remains.
    assert_eq!(qa_role.paths, vec!["v3".to_owned()]);
    assert_eq!(
        qa_role.outside_paths,
        vec!["v2".to_owned(), "x1".to_owned()]
    );
    assert_eq!(got.lookup("v3").unwrap().role, "targets/releases/qa");
    // Pre-order: releases' v2 wins over qa's (which is outside qa's paths anyway).
    assert_eq!(
        got.lookup("v2").unwrap().sha256.as_deref(),
        Some(&*digest(2))
    );
    assert!(got.lookup("x1").is_none());
}

#[test]
fn delegation_depth_is_bounded() {
    let mut c = Collection::new();
    c.publish();
    // targets/releases/d1/d2/…/d16 (depth 17 at the bottom).
    let keys: Vec<Key> = (0..=MAX_DELEGATION_DEPTH).map(|_| Key::plain()).collect();
    let mut name = "targets/releases".to_owned();
    let mut names = vec![name.clone()];
    for i in 1..=MAX_DELEGATION_DEPTH {
        name = format!("{name}/d{i}");
        names.push(name.clone());
    }
    for (i, role) in names.iter().enumerate() {
        let signer = if i == 0 { &c.release_key } else { &keys[i - 1] };
        let child = names.get(i + 1).map(|n| (n.as_str(), &keys[i], &[""][..]));
        let doc = delegating(&BTreeMap::new(), child, signer);
        c.docs.insert(role.clone(), doc);
    }
    reissue_snapshot(&mut c);
    let got = verify(&c).unwrap();
    assert_eq!(got.roles.len(), MAX_DELEGATION_DEPTH + 1);
    assert_eq!(got.skipped.len(), 1, "{:?}", got.skipped);
    assert_eq!(got.skipped[0].name, *names.last().unwrap());
    assert!(got.skipped[0].reason.contains("deeper than"));
}

#[test]
fn a_snapshot_without_a_delegated_role_skips_it() {
    let mut c = Collection::new();
    c.docs.remove("targets/releases");
    reissue_snapshot(&mut c);
    let got = verify(&c).unwrap();
    assert_eq!(got.skipped[0].name, "targets/releases");
    assert!(got.skipped[0].reason.contains("does not list"));
    assert!(got.lookup("v2").is_none());
}

#[test]
fn every_one_byte_change_to_the_timestamp_is_refused() {
    let c = Collection::new();
    let ts = c.docs["timestamp"].clone();
    for at in 0..ts.len() {
        let mut changed = ts.clone();
        changed[at] = if changed[at] == b'x' { b'y' } else { b'x' };
        let mut v = NotaryVerifier::new(
            &c.trusted(),
            now(),
            ExpiredMetadata::Refuse,
            Limits::DEFAULT,
        )
        .unwrap();
        assert!(
            v.update_timestamp(&changed).is_err(),
            "byte {at} changed to {:?} was accepted",
            changed[at] as char
        );
    }
}

#[test]
fn a_failed_call_ends_the_update() {
    let c = Collection::new();
    let mut v = NotaryVerifier::new(
        &c.trusted(),
        now(),
        ExpiredMetadata::Refuse,
        Limits::DEFAULT,
    )
    .unwrap();
    assert!(v.update_timestamp(b"not json").is_err());
    // The right timestamp no longer helps.
    assert!(v.update_timestamp(&c.docs["timestamp"]).is_err());
    assert!(v.next_targets().is_none());
    assert!(v.finish().is_err());
}

#[test]
fn corrupted_server_files_never_panic() {
    // Hostile bytes in any file a server serves (a few bytes changed, or cut short) end in an
    // error or a verified collection, never a panic. A fixed xorshift sequence keeps it
    // reproducible.
    let c = Collection::new();
    let base = c.server();
    let mut names: Vec<String> = base.files.keys().cloned().collect();
    names.sort();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as usize
    };
    for _ in 0..400 {
        let mut files = base.files.clone();
        let name = &names[next(names.len())];
        let bytes = files.get_mut(name).unwrap();
        for _ in 0..=next(3) {
            let at = next(bytes.len());
            bytes[at] = next(256) as u8;
        }
        if next(5) == 0 {
            let len = next(bytes.len());
            bytes.truncate(len);
        }
        let _ = run(
            &Memory::new(files),
            Layout::Server,
            &c.trusted(),
            ExpiredMetadata::AllowAndReport,
        );
    }
}
