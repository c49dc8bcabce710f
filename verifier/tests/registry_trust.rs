//! A repository's trust read from a real OCI registry (Debian's `docker-registry`), through
//! [`OciTransport`] over the registry client, and the attacks a registry can stage: the trust
//! tag moved back to an older artifact, a layer swapped for another repository's file, an
//! expired copy, a huge layer. Each is refused by the same checks as from a server, and the
//! trusted cache is left as it was.
//!
//! Repositories are built in memory (`common::Repo`), their files pushed as trust artifacts
//! (`vouch_tuf::oci`) with the registry client, as a mirror would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::*;
use vouch_testkit::registry::Registry;
use vouch_tuf::oci::{build_trust_artifact, TrustManifest, OCI_MANIFEST, TRUST_TAG};
use vouch_tuf::reference::{Digest, Gun};
use vouch_verifier::cache::MetadataStore;
use vouch_verifier::clock::TestClock;
use vouch_verifier::registry::{Login, Registries, RegistryOptions, RegistryRepo};
use vouch_verifier::transport::{OciTransport, TransportError};
use vouch_verifier::{Error, UpdateError, Updater};

const PATH: &str = "org/app";

fn client() -> Arc<Mutex<Registries>> {
    let options = RegistryOptions::new(Vec::new(), Login::Anonymous).unwrap();
    Arc::new(Mutex::new(Registries::new(options).unwrap()))
}

/// Pushes `files` as the trust artifact of `gun` under the trust tag; its digest.
fn push(registry: &Registry, gun: &Gun, files: &BTreeMap<String, Vec<u8>>) -> Digest {
    let c = client();
    let mut c = c.lock().unwrap();
    // The metadata files (the repository also serves target files, under `targets/`).
    let files: BTreeMap<String, Vec<u8>> = files
        .iter()
        .filter(|(n, _)| !n.contains('/'))
        .map(|(n, b)| (n.clone(), b.clone()))
        .collect();
    let a = build_trust_artifact(gun, &files, None).unwrap();
    for b in &a.blobs {
        c.push_blob(registry.host(), PATH, &b.digest, b.bytes)
            .unwrap();
    }
    c.put_manifest(registry.host(), PATH, TRUST_TAG, OCI_MANIFEST, &a.manifest)
        .unwrap()
}

/// Points the trust tag at the manifest `digest` already in the registry.
fn retag(registry: &Registry, digest: &Digest) {
    let c = client();
    let mut c = c.lock().unwrap();
    let m = c
        .get_manifest(
            registry.host(),
            PATH,
            digest.as_str(),
            OCI_MANIFEST,
            1 << 22,
        )
        .unwrap();
    c.put_manifest(registry.host(), PATH, TRUST_TAG, OCI_MANIFEST, &m.bytes)
        .unwrap();
}

/// A verifier of `gun` reading `registry`, its cache in `cache` (kept across "runs"),
/// starting from `root`, at `clock`.
fn updater(
    registry: &Registry,
    gun: &Gun,
    cache: &std::path::Path,
    root: &[u8],
    clock: &TestClock,
) -> Updater<OciTransport<RegistryRepo>> {
    let store = MetadataStore::for_gun(cache, gun.as_str()).unwrap();
    if store.load(&rn("root"), u64::MAX).unwrap().is_none() {
        Updater::<OciTransport<RegistryRepo>>::pin_root(&store, root).unwrap();
    }
    let transport = OciTransport::new(RegistryRepo::new(client(), registry.host(), PATH))
        .expecting(gun.clone());
    Updater::new(store, transport)
        .with_gun(gun.clone())
        .with_clock(Arc::new(clock.clone()))
}

fn gun_of(registry: &Registry) -> Gun {
    Gun::new(&format!("{}/{PATH}", registry.host())).unwrap()
}

fn update_err(r: Result<(), Error>) -> UpdateError {
    match r {
        Err(Error::Update(e)) => e,
        other => panic!("expected a verification error, got {other:?}"),
    }
}

#[test]
fn a_signed_image_verifies_from_the_registry_alone() {
    let registry = Registry::start();
    let gun = gun_of(&registry);
    let mut repo = Repo::new();
    let digest = repo.add_image("targets", "v1", b"image one");
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    push(&registry, &gun, &repo.files);
    let cache = tempfile::tempdir().unwrap();
    let clock = TestClock::new(NOW);
    let mut u = updater(&registry, &gun, cache.path(), &repo.root_bytes(1), &clock);
    u.refresh().unwrap();
    assert_eq!(u.lookup("v1").unwrap().unwrap().digest, digest);
    assert!(u.lookup("v2").unwrap().is_none());
}

#[test]
fn the_trust_tag_moved_back_is_refused_across_runs() {
    let registry = Registry::start();
    let gun = gun_of(&registry);
    let mut repo = Repo::new();
    repo.add_image("targets", "v1", b"one");
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let old = push(&registry, &gun, &repo.files);
    repo.add_image("targets", "v2", b"two");
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    push(&registry, &gun, &repo.files);

    let cache = tempfile::tempdir().unwrap();
    let clock = TestClock::new(NOW);
    let root = repo.root_bytes(1);
    updater(&registry, &gun, cache.path(), &root, &clock)
        .refresh()
        .unwrap();
    let trusted_ts = MetadataStore::for_gun(cache.path(), gun.as_str())
        .unwrap()
        .load(&rn("timestamp"), u64::MAX)
        .unwrap();

    // The older artifact is still in the registry by digest; the tag goes back to it.
    retag(&registry, &old);
    // A new run: a new verifier, the same cache.
    let mut again = updater(&registry, &gun, cache.path(), &root, &clock);
    let e = update_err(again.refresh());
    assert!(
        matches!(e, UpdateError::RollbackAttempt { .. }),
        "expected a rollback refusal, got {e:?}"
    );
    assert!(again.lookup("v2").is_err() || again.trusted().is_none());
    // The cache still holds the newer timestamp.
    let cached = MetadataStore::for_gun(cache.path(), gun.as_str())
        .unwrap()
        .load(&rn("timestamp"), u64::MAX)
        .unwrap();
    assert_eq!(cached, trusted_ts);
}

#[test]
fn a_layer_swapped_for_another_repositorys_file_is_refused() {
    let registry = Registry::start();
    let gun = gun_of(&registry);
    let mut repo = Repo::new();
    repo.add_image("targets", "v1", b"ours");
    repo.snapshot_hashes = true;
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let mut other = Repo::new();
    let theirs = other.add_image("targets", "v1", b"theirs");
    other.publish_targets();
    other.publish_snapshot_and_timestamp();

    // Our artifact, with the other repository's targets file under our targets' name.
    let mut files = repo.files.clone();
    let name = format!("{}.targets.json", repo.targets.common.version.get());
    files.insert(name.clone(), other.file(&name));
    push(&registry, &gun, &files);

    let cache = tempfile::tempdir().unwrap();
    let clock = TestClock::new(NOW);
    let mut u = updater(&registry, &gun, cache.path(), &repo.root_bytes(1), &clock);
    let e = update_err(u.refresh());
    assert!(
        matches!(e, UpdateError::LengthOrHashMismatch { .. }),
        "expected the snapshot's hash to refuse it, got {e:?}"
    );
    assert!(
        !matches!(u.lookup("v1"), Ok(Some(t)) if t.digest == theirs),
        "the other repository's image was returned"
    );
}

#[test]
fn an_expired_registry_copy_is_refused() {
    let registry = Registry::start();
    let gun = gun_of(&registry);
    let repo = Repo::new();
    push(&registry, &gun, &repo.files);
    let cache = tempfile::tempdir().unwrap();
    // A year and a day later: every role of the copy has expired.
    let clock = TestClock::new(NOW.add_seconds(366 * DAY));
    let mut u = updater(&registry, &gun, cache.path(), &repo.root_bytes(1), &clock);
    let e = update_err(u.refresh());
    assert!(matches!(e, UpdateError::Expired { .. }), "{e:?}");
}

#[test]
fn a_huge_layer_is_not_read() {
    let registry = Registry::start();
    let gun = gun_of(&registry);
    let repo = Repo::new();
    // A timestamp of 20 MiB: far over the verifier's cap for a timestamp.
    let mut files = repo.files.clone();
    files.insert("timestamp.json".into(), vec![b' '; 20 << 20]);
    push(&registry, &gun, &files);
    let cache = tempfile::tempdir().unwrap();
    let clock = TestClock::new(NOW);
    let mut u = updater(&registry, &gun, cache.path(), &repo.root_bytes(1), &clock);
    match u.refresh() {
        Err(Error::Update(UpdateError::TooLarge { role, .. })) => assert_eq!(role, "timestamp"),
        Err(Error::Transport(TransportError::TooLarge { .. })) => {}
        other => panic!("expected a size refusal, got {other:?}"),
    }
}

#[test]
fn an_image_under_the_trust_tag_is_not_read_as_trust_and_older_states_stay_reachable() {
    let registry = Registry::start();
    let gun = gun_of(&registry);
    let repo = Repo::new();
    let first = push(&registry, &gun, &repo.files);
    // The chain of artifacts: a second state names the first as its previous.
    let c = client();
    let mut c = c.lock().unwrap();
    let mut files: BTreeMap<String, Vec<u8>> = repo
        .files
        .iter()
        .filter(|(n, _)| !n.contains('/'))
        .map(|(n, b)| (n.clone(), b.clone()))
        .collect();
    files.insert("2.targets.json".into(), b"next".to_vec());
    let second = build_trust_artifact(&gun, &files, Some(&first)).unwrap();
    for b in &second.blobs {
        c.push_blob(registry.host(), PATH, &b.digest, b.bytes)
            .unwrap();
    }
    c.put_manifest(
        registry.host(),
        PATH,
        TRUST_TAG,
        OCI_MANIFEST,
        &second.manifest,
    )
    .unwrap();
    let tagged = c
        .get_manifest(registry.host(), PATH, TRUST_TAG, OCI_MANIFEST, 1 << 22)
        .unwrap();
    let previous = TrustManifest::parse(&tagged.bytes)
        .unwrap()
        .previous()
        .cloned();
    assert_eq!(previous.as_ref(), Some(&first));
    let older = c
        .get_manifest(registry.host(), PATH, first.as_str(), OCI_MANIFEST, 1 << 22)
        .unwrap();
    assert!(TrustManifest::parse(&older.bytes)
        .unwrap()
        .file("2.targets.json")
        .is_none());

    // An image pushed under the tag: refused before anything is read from it.
    let image = vouch_testkit::registry::ImageLayout::new("not-trust");
    image.push(&registry, &format!("{PATH}:{TRUST_TAG}"));
    drop(c);
    let cache = tempfile::tempdir().unwrap();
    let clock = TestClock::new(NOW);
    let mut u = updater(&registry, &gun, cache.path(), &repo.root_bytes(1), &clock);
    let e = u.refresh().unwrap_err().to_string();
    assert!(e.contains("not a vouch trust artifact"), "{e}");
}
