//! Interop with python-tuf, the reference implementation, in both directions:
//! - metadata python-tuf wrote (`tests/data/python-tuf/`, with its generator) parses and
//!   verifies here, and the negative variants of it are rejected with typed errors;
//! - metadata vouch writes is accepted by python-tuf (`tests/python/verify_vouch.py`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use vouch_testkit::python::python;
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use vouch_tuf::json::{self, JsonError, Value};
use vouch_tuf::metadata::{
    DelegatedRole, Delegations, Key, MetaFile, Metadata, MetadataError, PathScope, Role, Root,
    SignatureError, Snapshot, TargetFile, Targets, TimestampRole,
};
use vouch_tuf::reference::Digest;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{KeyId, RoleName, TargetName, Threshold, TopLevelRole};

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(data(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn expected() -> Value {
    json::parse(&read("python-tuf/expected.json")).unwrap()
}

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| {
        v.as_object()
            .and_then(|m| m.get(k))
            .unwrap_or_else(|| panic!("expected.json lacks {path:?}"))
    })
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn ids(v: &[KeyId]) -> Vec<String> {
    let mut out: Vec<String> = v.iter().map(|k| k.as_str().to_owned()).collect();
    out.sort();
    out
}

struct PyRepo {
    root: Metadata<Root>,
    targets: Metadata<Targets>,
    snapshot: Metadata<Snapshot>,
    timestamp: Metadata<TimestampRole>,
    delegated: BTreeMap<String, Metadata<Targets>>,
}

fn python_repo() -> PyRepo {
    PyRepo {
        root: Metadata::from_bytes(&read("python-tuf/repo/1.root.json")).unwrap(),
        targets: Metadata::from_bytes(&read("python-tuf/repo/1.targets.json")).unwrap(),
        snapshot: Metadata::from_bytes(&read("python-tuf/repo/1.snapshot.json")).unwrap(),
        timestamp: Metadata::from_bytes(&read("python-tuf/repo/timestamp.json")).unwrap(),
        delegated: ["releases", "nightly"]
            .into_iter()
            .map(|n| {
                let md = Metadata::from_bytes_as(n, &read(&format!("python-tuf/repo/1.{n}.json")))
                    .unwrap();
                (n.to_owned(), md)
            })
            .collect(),
    }
}

#[test]
fn python_tuf_repository_verifies() {
    let exp = expected();
    let repo = python_repo();
    let root = repo.root.signed();

    // Every role verifies against its delegator, with exactly the signers python-tuf used.
    let checks = [
        ("root", root.verify_role(TopLevelRole::Root, &repo.root)),
        (
            "targets",
            root.verify_role(TopLevelRole::Targets, &repo.targets),
        ),
        (
            "snapshot",
            root.verify_role(TopLevelRole::Snapshot, &repo.snapshot),
        ),
        (
            "timestamp",
            root.verify_role(TopLevelRole::Timestamp, &repo.timestamp),
        ),
        (
            "releases",
            repo.targets
                .signed()
                .verify_delegate("releases", &repo.delegated["releases"]),
        ),
        (
            "nightly",
            repo.targets
                .signed()
                .verify_delegate("nightly", &repo.delegated["nightly"]),
        ),
    ];
    for (name, result) in checks {
        let verified = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            ids(&verified.keyids),
            {
                let mut v = str_list(get(&exp, &["roles", name, "signed_by"]));
                v.sort();
                v
            },
            "{name}: signers"
        );
    }

    // Versions, thresholds and key assignments.
    for role in TopLevelRole::ALL {
        let name = role.as_str();
        let rk = root.role_keys(role);
        assert_eq!(
            u64::from(rk.threshold.get()),
            get(&exp, &["roles", name, "threshold"]).as_u64().unwrap()
        );
        assert_eq!(ids(&rk.keyids), {
            let mut v = str_list(get(&exp, &["roles", name, "keyids"]));
            v.sort();
            v
        });
    }
    assert_eq!(
        repo.root.version().get(),
        get(&exp, &["roles", "root", "version"]).as_u64().unwrap()
    );
    assert_eq!(
        repo.root.expires().to_string(),
        get(&exp, &["expires"]).as_str().unwrap()
    );
    assert_eq!(root.consistent_snapshot, Some(true));
    assert_eq!(
        root.common.spec_version.as_str(),
        get(&exp, &["spec_version"]).as_str().unwrap()
    );

    // Keys: material as python-tuf wrote it, and the ids it computed are the ids vouch computes.
    let exp_keys = get(&exp, &["keys"]).as_object().unwrap();
    let mut all_keys = root.keys.clone();
    all_keys.extend(
        repo.targets
            .signed()
            .delegations
            .as_ref()
            .unwrap()
            .keys
            .clone(),
    );
    assert_eq!(all_keys.len(), exp_keys.len());
    for (id, key) in &all_keys {
        let e = &exp_keys[id.as_str()];
        assert_eq!(key.keytype, get(e, &["keytype"]).as_str().unwrap());
        assert_eq!(key.scheme, get(e, &["scheme"]).as_str().unwrap());
        assert_eq!(key.public, get(e, &["public"]).as_str().unwrap());
        assert_eq!(&key.key_id(), id, "key id of {}", key.keytype);
        key.verifying_key().unwrap();
    }

    // Delegations in order, with their scopes.
    let d = repo.targets.signed().delegations.as_ref().unwrap();
    let order: Vec<&str> = d.roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(order, str_list(get(&exp, &["delegation_order"])));
    let releases = d.role("releases").unwrap();
    assert!(releases.terminating);
    assert_eq!(
        releases.scope,
        PathScope::Paths(str_list(get(&exp, &["delegations", "releases", "paths"])))
    );
    let nightly = d.role("nightly").unwrap();
    assert!(!nightly.terminating);
    assert_eq!(
        nightly.scope,
        PathScope::HashPrefixes(str_list(get(
            &exp,
            &["delegations", "nightly", "path_hash_prefixes"]
        )))
    );

    // Targets: each where python-tuf put it, with its length, hash and custom data.
    for (name, e) in get(&exp, &["targets"]).as_object().unwrap() {
        let role = get(e, &["role"]).as_str().unwrap();
        let holder = if role == "targets" {
            &repo.targets
        } else {
            &repo.delegated[role]
        };
        let t = &holder.signed().targets[name.as_str()];
        assert_eq!(t.length, get(e, &["length"]).as_u64().unwrap(), "{name}");
        assert_eq!(
            t.hashes["sha256"],
            get(e, &["sha256"]).as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            t.media_type(),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
        if role != "targets" {
            assert!(
                d.role(role).unwrap().is_delegated_path(name),
                "{name} within {role}'s paths"
            );
        }
    }

    // Snapshot and timestamp describe the files python-tuf wrote.
    for (file, e) in get(&exp, &["snapshot_meta"]).as_object().unwrap() {
        let m = &repo.snapshot.signed().meta[file.as_str()];
        assert_eq!(m.version.get(), get(e, &["version"]).as_u64().unwrap());
    }
    let ts = &repo.timestamp.signed().snapshot;
    let snap_bytes = read("python-tuf/repo/1.snapshot.json");
    assert_eq!(ts.version, repo.snapshot.version());
    if let Some(len) = ts.length {
        assert_eq!(len, snap_bytes.len() as u64);
    }
    if let Some(h) = &ts.hashes {
        assert_eq!(
            h,
            MetaFile::for_bytes(ts.version, &snap_bytes)
                .hashes
                .as_ref()
                .unwrap()
        );
    }
}

#[test]
fn python_tuf_metadata_round_trips_unchanged() {
    // Re-serialising what python-tuf wrote keeps every field, so signatures still verify.
    for file in [
        "1.root.json",
        "1.targets.json",
        "1.snapshot.json",
        "timestamp.json",
        "1.releases.json",
        "1.nightly.json",
    ] {
        let bytes = read(&format!("python-tuf/repo/{file}"));
        let original = json::parse(&bytes).unwrap();
        // python-tuf writes with whitespace; vouch writes compact JSON whose `signed` is
        // canonical, which takes the other parse path. Both must give the same role back.
        let compact = json::to_json(&original);
        for input in [&bytes, &compact] {
            let (rewritten, written) = match file {
                "1.root.json" => value_and_bytes(Metadata::<Root>::from_bytes(input).unwrap()),
                "1.snapshot.json" => {
                    value_and_bytes(Metadata::<Snapshot>::from_bytes(input).unwrap())
                }
                "timestamp.json" => {
                    value_and_bytes(Metadata::<TimestampRole>::from_bytes(input).unwrap())
                }
                _ => value_and_bytes(Metadata::<Targets>::from_bytes(input).unwrap()),
            };
            assert_eq!(
                json::canonical(&rewritten),
                json::canonical(&original),
                "{file}"
            );
            assert_eq!(written, compact, "{file}");
        }
    }
}

fn value_and_bytes<T: vouch_tuf::metadata::Role>(md: Metadata<T>) -> (Value, Vec<u8>) {
    (md.to_value(), md.to_bytes())
}

#[test]
fn unknown_fields_are_kept() {
    let bytes = read("python-tuf/repo/1.targets.json");
    let mut v = json::parse(&bytes).unwrap();
    let Value::Object(env) = &mut v else { panic!() };
    let Some(Value::Object(signed)) = env.get_mut("signed") else {
        panic!()
    };
    signed.insert("x-vendor".into(), Value::from("kept"));
    let Some(Value::Object(targets)) = signed.get_mut("targets") else {
        panic!()
    };
    let Some(Value::Object(latest)) = targets.get_mut("latest") else {
        panic!()
    };
    latest.insert("x-note".into(), Value::from(7u64));
    let md = Metadata::<Targets>::from_value("targets", v.clone()).unwrap();
    assert_eq!(
        md.signed().extra.get("x-vendor"),
        Some(&Value::from("kept"))
    );
    assert_eq!(json::canonical(&md.to_value()), json::canonical(&v));
}

// ---- Negative vectors: each rejected with a typed error naming the role and the reason. ----

fn replace_once(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = String::from_utf8(bytes.to_vec()).unwrap();
    assert_eq!(s.matches(from).count(), 1, "{from:?} must occur once");
    s.replacen(from, to, 1).into_bytes()
}

#[test]
fn flipped_byte_in_signed_breaks_the_signature() {
    let repo = python_repo();
    let bytes = read("python-tuf/repo/1.targets.json");
    let hash = get(&expected(), &["targets", "latest", "sha256"])
        .as_str()
        .unwrap()
        .to_owned();
    let mut flipped = hash.clone();
    flipped.replace_range(0..1, if &hash[0..1] == "0" { "1" } else { "0" });
    let md = Metadata::<Targets>::from_bytes(&replace_once(&bytes, &hash, &flipped)).unwrap();
    let err = repo
        .root
        .signed()
        .verify_role(TopLevelRole::Targets, &md)
        .unwrap_err();
    assert_eq!(
        err,
        SignatureError::ThresholdNotMet {
            role: "targets".into(),
            valid: 0,
            needed: 1
        }
    );
    assert!(err.to_string().contains("targets"));
}

#[test]
fn signature_moved_to_another_keyid_does_not_count() {
    let repo = python_repo();
    let root = repo.root.signed();
    let mut v = repo.root.to_value();
    // Swap the key ids of the first two root signatures: each signature now claims a key
    // that did not make it.
    let Value::Object(env) = &mut v else { panic!() };
    let Some(Value::Array(sigs)) = env.get_mut("signatures") else {
        panic!()
    };
    let k0 = sigs[0].as_object().unwrap()["keyid"].clone();
    let k1 = sigs[1].as_object().unwrap()["keyid"].clone();
    let Value::Object(s0) = &mut sigs[0] else {
        panic!()
    };
    s0.insert("keyid".into(), k1);
    let Value::Object(s1) = &mut sigs[1] else {
        panic!()
    };
    s1.insert("keyid".into(), k0);
    let md = Metadata::<Root>::from_value("root", v).unwrap();
    // Three root signatures, two moved: one valid signature left, threshold 2.
    let err = root.verify_role(TopLevelRole::Root, &md).unwrap_err();
    assert_eq!(
        err,
        SignatureError::ThresholdNotMet {
            role: "root".into(),
            valid: 1,
            needed: 2
        }
    );
}

#[test]
fn duplicated_signature_keyid_is_rejected() {
    let repo = python_repo();
    let mut v = repo.targets.to_value();
    let Value::Object(env) = &mut v else { panic!() };
    let Some(Value::Array(sigs)) = env.get_mut("signatures") else {
        panic!()
    };
    sigs.push(sigs[0].clone());
    let err = Metadata::<Targets>::from_bytes(&json::to_json(&v)).unwrap_err();
    assert!(
        matches!(&err, MetadataError::DuplicateSignature { role, .. } if role == "targets"),
        "{err:?}"
    );
    assert!(err.to_string().contains("two signatures by key"));
}

#[test]
fn threshold_not_met_is_rejected() {
    let repo = python_repo();
    let mut v = repo.root.to_value();
    let Value::Object(env) = &mut v else { panic!() };
    let Some(Value::Array(sigs)) = env.get_mut("signatures") else {
        panic!()
    };
    sigs.truncate(1);
    let md = Metadata::<Root>::from_value("root", v).unwrap();
    let err = repo
        .root
        .signed()
        .verify_role(TopLevelRole::Root, &md)
        .unwrap_err();
    assert_eq!(
        err,
        SignatureError::ThresholdNotMet {
            role: "root".into(),
            valid: 1,
            needed: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "root metadata has 1 valid signature(s) from distinct authorized keys, 2 required"
    );
}

#[test]
fn wrong_type_is_rejected() {
    let err = Metadata::<Root>::from_bytes(&read("python-tuf/repo/1.targets.json")).unwrap_err();
    assert_eq!(
        err,
        MetadataError::WrongType {
            role: "root".into(),
            expected: "root",
            found: "targets".into()
        }
    );
}

#[test]
fn float_in_metadata_is_rejected() {
    let bytes = read("python-tuf/repo/1.targets.json");
    let len = get(&expected(), &["targets", "latest", "length"])
        .as_u64()
        .unwrap();
    let s = String::from_utf8(bytes).unwrap();
    let needle = format!("\"length\": {len}");
    assert!(s.contains(&needle), "fixture layout changed");
    let bad = s.replacen(&needle, &format!("\"length\": {len}.0"), 1);
    let err = Metadata::<Targets>::from_bytes(bad.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, MetadataError::Json { role, source: JsonError::Float { .. } } if role == "targets"),
        "{err:?}"
    );
}

#[test]
fn trailing_data_is_rejected() {
    let mut bytes = read("python-tuf/repo/timestamp.json");
    bytes.extend_from_slice(b"{}");
    let err = Metadata::<TimestampRole>::from_bytes(&bytes).unwrap_err();
    assert!(
        matches!(&err, MetadataError::Json { role, source: JsonError::TrailingData { .. } } if role == "timestamp"),
        "{err:?}"
    );
}

#[test]
fn duplicate_json_key_is_rejected() {
    // A second "version" after the signed one: whichever copy a parser keeps, vouch refuses both.
    let bytes = read("python-tuf/repo/timestamp.json");
    let s = String::from_utf8(bytes).unwrap();
    let bad = s.replacen(
        "\"_type\": \"timestamp\"",
        "\"_type\": \"timestamp\", \"version\": 99",
        1,
    );
    assert_ne!(s, bad);
    let err = Metadata::<TimestampRole>::from_bytes(bad.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, MetadataError::Json { source: JsonError::DuplicateKey { key, .. }, .. } if key == "version"),
        "{err:?}"
    );
}

#[test]
fn malformed_fields_are_named() {
    let bytes = read("python-tuf/repo/1.root.json");
    let s = String::from_utf8(bytes).unwrap();
    let cases = [
        (
            "\"threshold\": 2",
            "\"threshold\": 0",
            "signed.roles.root.threshold",
        ),
        (
            "\"threshold\": 2",
            "\"threshold\": \"2\"",
            "signed.roles.root.threshold",
        ),
        (
            "\"expires\": \"2099-01-01T00:00:00Z\"",
            "\"expires\": \"2099-01-01\"",
            "signed.expires",
        ),
        (
            "\"spec_version\": \"1.0.31\"",
            "\"spec_version\": \"2.0.0\"",
            "spec_version",
        ),
    ];
    for (from, to, field) in cases {
        let bad = s.replacen(from, to, 1);
        assert_ne!(bad, s, "{from}");
        let err = Metadata::<Root>::from_bytes(bad.as_bytes()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("root metadata"), "{msg}");
        assert!(msg.contains(field), "{msg} should name {field}");
    }
}

// ---- vouch-written metadata read by python-tuf. ----

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vouch-tuf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn key_of(sk: &PrivateKey) -> Key {
    Key::from_verifying_key(&sk.verifying_key())
}

#[test]
fn vouch_metadata_is_accepted_by_python_tuf() {
    let expires = Timestamp::parse("2099-06-01T00:00:00Z").unwrap();
    let gen = |alg| PrivateKey::generate(alg).unwrap();
    let (root_a, root_b) = (gen(Algorithm::Ed25519), gen(Algorithm::EcdsaP256Sha256));
    let targets_key = gen(Algorithm::EcdsaP256Sha256);
    let snapshot_key = gen(Algorithm::Ed25519);
    let timestamp_key = gen(Algorithm::Ed25519);
    let ci_key = gen(Algorithm::Ed25519);
    let nightly_key = gen(Algorithm::EcdsaP256Sha256);

    let mut root = Root::new(expires);
    root.add_key(TopLevelRole::Root, key_of(&root_a));
    root.add_key(TopLevelRole::Root, key_of(&root_b));
    root.set_threshold(TopLevelRole::Root, Threshold::new(2).unwrap());
    root.add_key(TopLevelRole::Targets, key_of(&targets_key));
    root.add_key(TopLevelRole::Snapshot, key_of(&snapshot_key));
    root.add_key(TopLevelRole::Timestamp, key_of(&timestamp_key));
    let root_md = Metadata::signed_by(root, &[&root_a, &root_b]).unwrap();

    let v1 = Digest::sha256_of(b"manifest v1");
    let latest = Digest::sha256_of(b"manifest latest");
    let bare = Digest::sha256_of(b"manifest bare");
    let mut targets = Targets::new(expires);
    targets.add_target(
        TargetName::new("latest").unwrap(),
        TargetFile::image(
            &latest,
            527,
            Some("application/vnd.oci.image.manifest.v1+json"),
        ),
    );
    targets.add_target(
        TargetName::new(bare.as_str()).unwrap(),
        TargetFile::image(&bare, 99, None),
    );
    let releases_name = RoleName::new("targets/releases").unwrap();
    let mut releases_role = DelegatedRole::with_paths(
        releases_name.clone(),
        vec![key_of(&ci_key).key_id()],
        vec!["v*".into()],
    );
    releases_role.terminating = true;
    let nightly_role = DelegatedRole {
        name: RoleName::new("nightly").unwrap(),
        keyids: vec![key_of(&nightly_key).key_id()],
        threshold: Threshold::ONE,
        terminating: false,
        // Two hex digits cover every name whose SHA-256 starts with them; list all 256 so the
        // nightly target is always covered.
        scope: PathScope::HashPrefixes((0..=255u8).map(|b| format!("{b:02x}")).collect()),
        extra: Default::default(),
    };
    targets.delegations = Some(Delegations {
        keys: [key_of(&ci_key), key_of(&nightly_key)]
            .into_iter()
            .map(|k| (k.key_id(), k))
            .collect(),
        roles: vec![releases_role, nightly_role],
        extra: Default::default(),
    });
    let targets_md = Metadata::signed_by(targets, &[&targets_key]).unwrap();

    let mut releases = Targets::new(expires);
    releases.add_target(
        TargetName::new("v1.0.0").unwrap(),
        TargetFile::image(
            &v1,
            1234,
            Some("application/vnd.oci.image.manifest.v1+json"),
        ),
    );
    releases.bump_version();
    let releases_md = Metadata::signed_by(releases, &[&ci_key]).unwrap();
    let mut nightly = Targets::new(expires);
    nightly.add_target(
        TargetName::new("nightly-1").unwrap(),
        TargetFile::image(&Digest::sha256_of(b"n"), 5, None),
    );
    let nightly_md = Metadata::signed_by(nightly, &[&nightly_key]).unwrap();

    let (targets_bytes, releases_bytes, nightly_bytes) = (
        targets_md.to_bytes(),
        releases_md.to_bytes(),
        nightly_md.to_bytes(),
    );
    let mut snapshot = Snapshot::new(expires);
    snapshot.meta.insert(
        "targets.json".into(),
        MetaFile::for_bytes(targets_md.version(), &targets_bytes),
    );
    snapshot.meta.insert(
        Snapshot::meta_name("targets/releases"),
        MetaFile::version_only(releases_md.version()),
    );
    snapshot.meta.insert(
        Snapshot::meta_name("nightly"),
        MetaFile::for_bytes(nightly_md.version(), &nightly_bytes),
    );
    let snapshot_md = Metadata::signed_by(snapshot, &[&snapshot_key]).unwrap();
    let snapshot_bytes = snapshot_md.to_bytes();
    let timestamp = TimestampRole::new(
        expires,
        MetaFile::for_bytes(snapshot_md.version(), &snapshot_bytes),
    );
    let timestamp_md = Metadata::signed_by(timestamp, &[&timestamp_key]).unwrap();

    let dir = scratch_dir("to-python");
    let files: [(&str, Vec<u8>); 6] = [
        ("root.json", root_md.to_bytes()),
        ("targets.json", targets_bytes),
        ("snapshot.json", snapshot_bytes),
        ("timestamp.json", timestamp_md.to_bytes()),
        ("targets%2Freleases.json", releases_bytes),
        ("nightly.json", nightly_bytes),
    ];
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    assert_eq!(
        format!("{}.json", releases_name.url_encoded()),
        "targets%2Freleases.json"
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/verify_vouch.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(&dir)
        .arg("--check-expiry")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python-tuf rejected vouch metadata: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json::parse(stdout.trim().as_bytes()).unwrap();
    assert_eq!(get(&report, &["ok"]), &Value::Bool(true));
    assert_eq!(
        get(&report, &["roles", "targets/releases"]).as_u64(),
        Some(2)
    );
    assert_eq!(get(&report, &["roles", "root"]).as_u64(), Some(1));
    assert_eq!(
        get(&report, &["targets", "v1.0.0", "sha256"]).as_str(),
        Some(v1.hex())
    );
    assert_eq!(
        get(&report, &["targets", "v1.0.0", "length"]).as_u64(),
        Some(1234)
    );
    assert_eq!(
        get(&report, &["target_roles", "v1.0.0"]).as_str(),
        Some("targets/releases")
    );
    assert_eq!(
        get(&report, &["target_roles", "nightly-1"]).as_str(),
        Some("nightly")
    );
    assert_eq!(
        get(&report, &["targets", bare.as_str(), "sha256"]).as_str(),
        Some(bare.hex())
    );

    // And the same check fails when vouch's output is tampered with after signing, so a
    // passing run above means python-tuf really checked the signatures.
    let tampered = String::from_utf8(files[1].1.clone())
        .unwrap()
        .replace(latest.hex(), v1.hex());
    std::fs::write(dir.join("targets.json"), tampered).unwrap();
    let out = Command::new(python())
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "tampered targets accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
