//! Repositories written by python-tuf, the reference implementation: the checked-in fixture
//! of `vouch-tuf` (tuf/tests/data/python-tuf) and a repository generated at test time by
//! `tests/python/make_repo.py` (root rotation to ECDSA + RSA-PSS keys, hashes everywhere, a
//! delegated role whose name needs URL-encoding).
//!
//! The generated repository needs a Python with `tuf` installed: `VOUCH_TEST_PYTHON`
//! (which `scripts/test` sets) or `target/venv/bin/python` (made by `scripts/python-env`).
//! Without one the test fails with a message saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use vouch_testkit::python::python;
use vouch_tuf::json::Value;
use vouch_tuf::time::Timestamp;
use vouch_verifier::cache::MetadataStore;
use vouch_verifier::clock::TestClock;
use vouch_verifier::transport::{DirectoryTransport, Transport, TransportError};
use vouch_verifier::Updater;

/// Logs fetched paths, to check what the client asked for.
struct Logged<T>(T, std::sync::Mutex<Vec<String>>);

impl<T: Transport> Transport for Logged<T> {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        self.1.lock().unwrap().push(path.to_owned());
        self.0.fetch(path, max_len)
    }
}

fn read_json(p: &Path) -> Value {
    vouch_tuf::json::parse(&std::fs::read(p).unwrap()).unwrap()
}

fn updater(
    repo_dir: &Path,
    cache: &Path,
    now: Timestamp,
) -> Updater<Arc<Logged<DirectoryTransport>>> {
    let store = MetadataStore::open(cache).unwrap();
    Updater::<DirectoryTransport>::pin_root(
        &store,
        &std::fs::read(repo_dir.join("1.root.json")).unwrap(),
    )
    .unwrap();
    let t = Arc::new(Logged(
        DirectoryTransport::new(repo_dir),
        Default::default(),
    ));
    Updater::new(store, t).with_clock(Arc::new(TestClock::new(now)))
}

#[test]
fn checked_in_python_tuf_repository() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tuf/tests/data/python-tuf");
    let expected = read_json(&data.join("expected.json"));
    let cache = tempfile::tempdir().unwrap();
    let mut up = updater(&data.join("repo"), cache.path(), NOW);
    up.refresh().unwrap();
    let targets = expected.as_object().unwrap()["targets"]
        .as_object()
        .unwrap();
    assert!(!targets.is_empty());
    for (name, want) in targets {
        let want = want.as_object().unwrap();
        let got = up
            .lookup(name)
            .unwrap()
            .unwrap_or_else(|| panic!("{name} not found"));
        assert_eq!(got.digest.hex(), want["sha256"].as_str().unwrap(), "{name}");
        assert_eq!(got.length, want["length"].as_u64().unwrap(), "{name}");
        assert_eq!(
            got.role_path.last().unwrap().as_str(),
            want["role"].as_str().unwrap(),
            "{name}"
        );
        assert!(up.is_trusted(&got.digest).unwrap());
    }
    for missing in ["v9.9.9", "nightly-19700101"] {
        assert!(up.lookup(missing).unwrap().is_none(), "{missing}");
    }
    // After 2099 the repository is expired.
    let cache = tempfile::tempdir().unwrap();
    let mut late = updater(
        &data.join("repo"),
        cache.path(),
        Timestamp::parse("2099-01-01T00:00:00Z").unwrap(),
    );
    assert!(late.refresh().is_err());
}

#[test]
fn repository_generated_by_python_tuf() {
    let out = tempfile::tempdir().unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/make_repo.py");
    let status = std::process::Command::new(python())
        .arg(&script)
        .arg(out.path())
        .status()
        .expect("cannot run the python-tuf repository writer");
    assert!(status.success(), "tests/python/make_repo.py failed");
    let expected = read_json(&out.path().join("expected.json"));
    let expected = expected.as_object().unwrap();

    let cache = tempfile::tempdir().unwrap();
    let mut up = updater(&out.path().join("repo"), cache.path(), NOW);
    up.refresh().unwrap();
    let set = up.trusted().unwrap();
    assert_eq!(
        set.root().version().get(),
        expected["root_version"].as_u64().unwrap()
    );
    for (name, want) in expected["targets"].as_object().unwrap() {
        let want = want.as_object().unwrap();
        let got = up
            .lookup(name)
            .unwrap()
            .unwrap_or_else(|| panic!("{name} not found"));
        assert_eq!(got.digest.hex(), want["sha256"].as_str().unwrap(), "{name}");
        assert_eq!(got.length, want["length"].as_u64().unwrap(), "{name}");
        let path: Vec<&str> = want["role_path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let got_path: Vec<&str> = got.role_path.iter().map(|r| r.as_str()).collect();
        assert_eq!(got_path, path, "{name}");
    }
    for missing in expected["missing"].as_array().unwrap() {
        let m = missing.as_str().unwrap();
        assert!(up.lookup(m).unwrap().is_none(), "{m}");
    }
    assert!(cache.path().join("team%2Fapp.json").exists());
}
