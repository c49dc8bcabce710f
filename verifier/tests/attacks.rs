//! One adversarial test per attack the TUF specification lists (1.0.34, section 1.5.2),
//! each staged against repositories built here and checked through the [`Updater`], the
//! way deploy tooling uses the verifier. Each test asserts the typed error *and* what a user
//! sees: no attacker digest is ever returned, and the trusted cache is not poisoned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use vouch_tuf::metadata::{MetaFile, Metadata, Targets};
use vouch_tuf::reference::ImageRef;
use vouch_tuf::types::{TopLevelRole, Version};
use vouch_verifier::cache::MetadataStore;
use vouch_verifier::clock::TestClock;
use vouch_verifier::transport::{HttpOptions, HttpTransport, Transport, TransportError};
use vouch_verifier::{Error, Limits, UpdateError, Updater};

struct Client {
    updater: Updater<MemoryTransport>,
    transport: MemoryTransport,
    clock: TestClock,
    _dir: tempfile::TempDir,
}

fn client(repo: &Repo) -> Client {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    Updater::<MemoryTransport>::pin_root(&store, &repo.root_bytes(1)).unwrap();
    let transport = MemoryTransport::new(&repo.files);
    let clock = TestClock::new(NOW);
    let updater = Updater::new(store, transport.clone()).with_clock(Arc::new(clock.clone()));
    Client {
        updater,
        transport,
        clock,
        _dir: dir,
    }
}

fn update_err(r: Result<(), Error>) -> UpdateError {
    match r {
        Err(Error::Update(e)) => e,
        other => panic!("expected a verification error, got {other:?}"),
    }
}

fn cached(c: &Client, role: &str) -> Option<Vec<u8>> {
    c.updater.store().load(&rn(role), u64::MAX).unwrap()
}

fn signed_targets(t: &Targets, keys: &[&vouch_tuf::crypto::PrivateKey]) -> Vec<u8> {
    let signers: Vec<&dyn vouch_tuf::crypto::Signer> = keys
        .iter()
        .map(|k| *k as &dyn vouch_tuf::crypto::Signer)
        .collect();
    Metadata::signed_by(t.clone(), &signers).unwrap().to_bytes()
}

/// Arbitrary installation: an attacker without the targets key serves targets metadata of
/// its own. It is refused, the tag keeps resolving to the signed digest, and the cache keeps
/// the real targets.
#[test]
fn arbitrary_installation() {
    let mut repo = Repo::new();
    let good = repo.add_image("targets", "v1", b"good manifest");
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let mut c = client(&repo);
    c.updater.refresh().unwrap();
    assert_eq!(c.updater.lookup("v1").unwrap().unwrap().digest, good);

    // The attacker's targets v3, named by a snapshot it cannot sign either: first it tries
    // serving only its own targets under the name the real snapshot gives.
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let mut evil = repo.targets.clone();
    let evil_digest = vouch_tuf::reference::Digest::sha256_of(b"evil manifest");
    evil.add_target(
        vouch_tuf::types::TargetName::new("v1").unwrap(),
        vouch_tuf::metadata::TargetFile::image(&evil_digest, 13, None),
    );
    c.transport.set(&repo.files);
    c.transport
        .put("3.targets.json", signed_targets(&evil, &[&key()]));
    let err = update_err(c.updater.refresh());
    assert!(
        matches!(err, UpdateError::ThresholdNotMet { ref role, valid: 0, needed: 1 } if role == "targets"),
        "{err:?}"
    );
    assert!(matches!(c.updater.lookup("v1"), Err(Error::NotRefreshed)));
    assert_eq!(cached(&c, "targets").unwrap(), repo.file("2.targets.json"));

    // Forging the whole chain fails at the first role it cannot sign: timestamp.
    let mut forged = Repo::new();
    forged.root = repo.root.clone();
    forged.timestamp.common.version = Version::new(9).unwrap();
    c.transport
        .put("timestamp.json", forged.publish_timestamp_as_is());
    let err = update_err(c.updater.refresh());
    assert!(matches!(err, UpdateError::ThresholdNotMet { ref role, .. } if role == "timestamp"));

    // The repository's real state still verifies afterwards.
    c.transport.set(&repo.files);
    c.updater.refresh().unwrap();
    assert_eq!(c.updater.lookup("v1").unwrap().unwrap().digest, good);
    assert!(!c.updater.is_trusted(&evil_digest).unwrap());
}

/// Endless data: oversized or never-ending responses are cut at the role's cap (root and
/// timestamp fixed, snapshot and targets by their trusted length) before parsing.
#[test]
fn endless_data() {
    let repo = Repo::new();
    let mut c = client(&repo);
    let big = vec![b' '; 10 * 1024 * 1024];

    c.transport.put("timestamp.json", big.clone());
    let err = update_err(c.updater.refresh());
    assert_eq!(
        err,
        UpdateError::TooLarge {
            role: "timestamp".into(),
            limit: Limits::DEFAULT.timestamp_max_bytes
        }
    );

    c.transport.set(&repo.files);
    c.transport.put("2.root.json", big.clone());
    let err = update_err(c.updater.refresh());
    assert_eq!(
        err,
        UpdateError::TooLarge {
            role: "root".into(),
            limit: Limits::DEFAULT.root_max_bytes
        }
    );

    // Snapshot: timestamp gives its length; one byte more is refused.
    c.transport.set(&repo.files);
    let mut longer = repo.file("1.snapshot.json");
    let len = longer.len() as u64;
    longer.push(b' ');
    c.transport.put("1.snapshot.json", longer);
    let err = update_err(c.updater.refresh());
    assert_eq!(
        err,
        UpdateError::TooLarge {
            role: "snapshot".into(),
            limit: len
        }
    );

    // Over HTTP, an endless body stops at the cap.
    let server = Server::start([("ENDLESS".to_owned(), Vec::new())].into_iter().collect());
    let http = HttpTransport::new(&server.url, &HttpOptions::default()).unwrap();
    let started = Instant::now();
    match http.fetch("timestamp.json", 16 * 1024) {
        Err(TransportError::TooLarge { limit, .. }) => assert_eq!(limit, 16 * 1024),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Extraneous dependencies: a delegated role may only sign names within its paths. Its
/// entry for a name outside them is never returned; a digest only it carries is not trusted.
#[test]
fn extraneous_dependencies() {
    let mut repo = Repo::new();
    let good = repo.add_image("targets", "latest", b"real latest");
    repo.delegate("targets", "releases", &["v*"], false);
    let rel = repo.add_image("releases", "v2.0", b"release");
    let evil = repo.add_image("releases", "latest", b"evil latest");
    let evil_only = repo.add_image("releases", "debug", b"evil debug");
    repo.publish_all_delegated_as_is();
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let mut c = client(&repo);
    c.updater.refresh().unwrap();

    let latest = c.updater.lookup("latest").unwrap().unwrap();
    assert_eq!(latest.digest, good);
    assert_eq!(latest.role_path, vec![rn("targets")]);
    assert!(c.updater.lookup("debug").unwrap().is_none());
    let v2 = c.updater.lookup("v2.0").unwrap().unwrap();
    assert_eq!(
        (v2.digest, v2.role_path),
        (rel, vec![rn("targets"), rn("releases")])
    );
    assert!(!c.updater.is_trusted(&evil).unwrap());
    assert!(!c.updater.is_trusted(&evil_only).unwrap());
    // What deploy tooling and the webhook ask: the image by digest alone.
    for d in [&evil, &evil_only] {
        refused_by_digest(&mut c.updater, d);
    }
}

const APP: &str = "example.com/org/app";

/// `app@digest` is vouched for by none of the ways a question by digest can be asked.
fn refused_by_digest(u: &mut Updater<MemoryTransport>, d: &vouch_tuf::reference::Digest) {
    let image = ImageRef::parse(&format!("{APP}@{d}")).unwrap();
    assert!(!u.is_trusted(d).unwrap(), "{d}");
    assert!(u.digest_role_paths(d).unwrap().is_empty(), "{d}");
    assert!(
        matches!(u.vouch(&image), Err(Error::UntrustedDigest { .. })),
        "{d}"
    );
    assert!(
        matches!(
            u.vouch_requiring(&image, &[]),
            Err(Error::UntrustedDigest { .. })
        ),
        "{d}"
    );
}

/// Extraneous dependencies asked by digest: a digest only a role the delegation search
/// never consults for that name lists is not vouched for — a role behind a terminating
/// delegation, a role listing a name outside its paths, a role listing a name an earlier
/// role already signs with another digest.
#[test]
fn a_digest_listed_only_where_the_search_never_looks_is_refused() {
    let mut repo = Repo::new();
    repo.delegate("targets", "first", &["v*"], true);
    repo.delegate("targets", "second", &["v*"], false);
    repo.delegate("targets", "tools", &["tool-*"], false);
    repo.delegate("targets", "late", &["*"], false);
    let v1 = repo.add_image("first", "v1", b"first v1");
    // Behind the terminating `first`: the search for v2 stops there.
    let shadowed = repo.add_image("second", "v2", b"second v2");
    // Outside `tools`' paths.
    let outside = repo.add_image("tools", "latest", b"tools latest");
    // `stable` is signed by targets; `late` lists it too, with another digest.
    let stable = repo.add_image("targets", "stable", b"good stable");
    let late = repo.add_image("late", "stable", b"evil stable");
    repo.publish_all_delegated_as_is();
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let mut c = client(&repo);
    c.updater.refresh().unwrap();

    for d in [&shadowed, &outside, &late] {
        refused_by_digest(&mut c.updater, d);
    }
    // What the search does reach is vouched for, through the path it reaches it by.
    for (d, path) in [
        (&v1, vec![rn("targets"), rn("first")]),
        (&stable, vec![rn("targets")]),
    ] {
        let image = ImageRef::parse(&format!("{APP}@{d}")).unwrap();
        let v = c.updater.vouch(&image).unwrap();
        assert_eq!(v.paths(), std::slice::from_ref(&path));
        let v = c.updater.vouch_requiring(&image, &[]).unwrap();
        assert_eq!(v.role_path(), path.as_slice());
    }
}

/// A digest listed under more names than a question examines: a question that finds its
/// answer early is answered; one that would have to look further fails closed, however
/// many names the signer listed.
#[test]
fn a_digest_listed_under_countless_names_costs_a_bounded_search() {
    use vouch_verifier::updater::MAX_NAMES_PER_DIGEST;
    let mut repo = Repo::new();
    let mut digest = None;
    for i in 0..=MAX_NAMES_PER_DIGEST {
        digest = Some(repo.add_image("targets", &format!("t{i:05}"), b"the same image"));
    }
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let digest = digest.unwrap();
    let mut c = client(&repo);
    c.updater.refresh().unwrap();
    let image = ImageRef::parse(&format!("{APP}@{digest}")).unwrap();
    // Answered by the first name.
    assert!(c.updater.is_trusted(&digest).unwrap());
    assert_eq!(
        c.updater.vouch_requiring(&image, &[]).unwrap().role_path(),
        [rn("targets")]
    );
    // Every path, or a requirement no path meets: more names than a question examines.
    let releases = vouch_verifier::DelegationPath::parse("targets/releases").unwrap();
    for result in [
        c.updater.vouch(&image).map(|_| ()),
        c.updater.vouch_requiring(&image, &[releases]).map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(Error::TooManyNames { limit, .. }) if limit == MAX_NAMES_PER_DIGEST),
            "{result:?}"
        );
    }
}

/// Fast-forward: a compromised timestamp key pushes the version far ahead. Until the keys
/// rotate, the genuine lower versions are refused as rollbacks; after root rotates the
/// timestamp key, the client discards the fast-forwarded timestamp and recovers.
#[test]
fn fast_forward() {
    let mut repo = Repo::new();
    let mut c = client(&repo);
    c.updater.refresh().unwrap();

    // The attacker, holding the timestamp key, serves version 1000.
    let genuine_v1 = repo.file("timestamp.json");
    repo.timestamp.common.version = Version::new(1000).unwrap();
    c.transport
        .put("timestamp.json", repo.publish_timestamp_as_is());
    c.updater.refresh().unwrap();
    assert_eq!(
        c.updater
            .trusted()
            .unwrap()
            .timestamp()
            .unwrap()
            .version()
            .get(),
        1000
    );

    // The genuine repository's timestamp v2 now looks like a rollback.
    repo.timestamp.common.version = Version::new(2).unwrap();
    c.transport
        .put("timestamp.json", repo.publish_timestamp_as_is());
    let err = update_err(c.updater.refresh());
    assert_eq!(
        err,
        UpdateError::RollbackAttempt {
            role: "timestamp".into(),
            trusted: 1000,
            got: 2
        }
    );
    drop(genuine_v1);

    // Recovery: root v2 replaces the timestamp key; timestamp restarts low.
    repo.rotate_key(TopLevelRole::Timestamp);
    repo.publish_timestamp_as_is();
    c.transport.set(&repo.files);
    c.updater.refresh().unwrap();
    let trusted = c.updater.trusted().unwrap();
    assert_eq!(trusted.root().version().get(), 2);
    assert_eq!(trusted.timestamp().unwrap().version().get(), 2);
    assert_eq!(
        cached(&c, "timestamp").unwrap(),
        repo.file("timestamp.json")
    );
}

/// Indefinite freeze: replaying validly signed but expired metadata is refused, whichever
/// role expired, and time is the clock's at the start of the update.
#[test]
fn indefinite_freeze() {
    let mut repo = Repo::new();
    repo.timestamp.set_expires(NOW.add_seconds(DAY));
    repo.publish_timestamp();
    let mut c = client(&repo);
    c.updater.refresh().unwrap();

    // Two days later the mirror still serves the same timestamp.
    c.clock.advance(2 * DAY);
    let err = update_err(c.updater.refresh());
    assert!(
        matches!(err, UpdateError::Expired { ref role, .. } if role == "timestamp"),
        "{err:?}"
    );
    assert!(matches!(c.updater.lookup("v1"), Err(Error::NotRefreshed)));

    // A fresh timestamp over an expired snapshot.
    repo.snapshot.set_expires(NOW.add_seconds(DAY));
    repo.timestamp.set_expires(NOW.add_seconds(30 * DAY));
    repo.publish_snapshot_and_timestamp();
    c.transport.set(&repo.files);
    let err = update_err(c.updater.refresh());
    assert!(
        matches!(err, UpdateError::Expired { ref role, .. } if role == "snapshot"),
        "{err:?}"
    );

    // Expired targets.
    repo.snapshot.set_expires(NOW.add_seconds(30 * DAY));
    repo.targets.set_expires(NOW.add_seconds(DAY));
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    c.transport.set(&repo.files);
    let err = update_err(c.updater.refresh());
    assert!(
        matches!(err, UpdateError::Expired { ref role, .. } if role == "targets"),
        "{err:?}"
    );

    // An expired root (after the walk) stops the update before timestamp.
    c.clock.advance(400 * DAY);
    let err = update_err(c.updater.refresh());
    assert!(
        matches!(err, UpdateError::Expired { ref role, .. } if role == "root"),
        "{err:?}"
    );
}

/// Mix-and-match: serving an older targets file (or snapshot) under the name of the current
/// one is caught by the version and hashes the trusted snapshot (or timestamp) gives.
#[test]
fn mix_and_match() {
    let mut repo = Repo::new();
    let old = repo.add_image("targets", "v1", b"old");
    repo.publish_targets(); // 2
    let new = repo.add_image("targets", "v1", b"new");
    repo.publish_targets(); // 3
    repo.publish_snapshot_and_timestamp();
    assert_ne!(old, new);
    let mut c = client(&repo);
    c.transport
        .put("3.targets.json", repo.file("2.targets.json"));
    let err = update_err(c.updater.refresh());
    assert_eq!(
        err,
        UpdateError::VersionMismatch {
            role: "targets".into(),
            expected: 3,
            got: 2
        }
    );

    // With hashes in snapshot, the bytes themselves are pinned.
    repo.snapshot_hashes = true;
    repo.publish_targets_as_is();
    repo.publish_snapshot_and_timestamp();
    c.transport.set(&repo.files);
    c.transport
        .put("3.targets.json", repo.file("2.targets.json"));
    let err = update_err(c.updater.refresh());
    assert!(
        matches!(err, UpdateError::LengthOrHashMismatch { ref role, .. } if role == "targets"),
        "{err:?}"
    );

    // An older snapshot under the current snapshot's name: timestamp pins its hash.
    let mut c = client(&repo);
    c.transport
        .put("3.snapshot.json", repo.file("2.snapshot.json"));
    let err = update_err(c.updater.refresh());
    assert!(
        matches!(err, UpdateError::LengthOrHashMismatch { ref role, .. } if role == "snapshot"),
        "{err:?}"
    );

    c.transport.set(&repo.files);
    c.updater.refresh().unwrap();
    assert_eq!(c.updater.lookup("v1").unwrap().unwrap().digest, new);
}

/// Rollback: once newer metadata was trusted, older versions are refused, also by a new
/// process reading the persistent cache.
#[test]
fn rollback() {
    let mut repo = Repo::new();
    let v1_files = repo.files.clone();
    repo.add_image("targets", "v1", b"patched");
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let mut c = client(&repo);
    c.updater.refresh().unwrap();

    c.transport.set(&v1_files);
    let err = update_err(c.updater.refresh());
    assert_eq!(
        err,
        UpdateError::RollbackAttempt {
            role: "timestamp".into(),
            trusted: 2,
            got: 1
        }
    );

    // A new updater on the same cache (a later run) refuses it too.
    let store = c.updater.store().clone();
    let mut later =
        Updater::new(store, MemoryTransport::new(&v1_files)).with_clock(Arc::new(c.clock.clone()));
    assert!(matches!(
        later.refresh(),
        Err(Error::Update(UpdateError::RollbackAttempt {
            trusted: 2,
            got: 1,
            ..
        }))
    ));

    // A compromised snapshot key cannot roll targets back either.
    repo.snapshot
        .meta
        .insert("targets.json".into(), MetaFile::version_only(Version::ONE));
    repo.publish_snapshot_and_timestamp();
    c.transport.set(&repo.files);
    let err = update_err(c.updater.refresh());
    assert_eq!(
        err,
        UpdateError::RollbackAttempt {
            role: "targets".into(),
            trusted: 2,
            got: 1
        }
    );
}

/// Key compromise below threshold: with targets (and root) at threshold 2, one stolen key
/// plus any number of other signatures is not enough.
#[test]
fn key_compromise_below_threshold() {
    let mut repo = Repo::new();
    let second = key();
    repo.root.add_key(TopLevelRole::Targets, pubkey(&second));
    repo.root.set_threshold(TopLevelRole::Targets, threshold(2));
    let second_root = key();
    repo.root.add_key(TopLevelRole::Root, pubkey(&second_root));
    repo.root.set_threshold(TopLevelRole::Root, threshold(2));
    repo.extra_root_signers = vec![second_root];
    repo.targets_keys.push(second);
    repo.publish_root();
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let mut c = client(&repo);
    c.updater.refresh().unwrap();

    // Signed by one of the two targets keys and by an unlisted key.
    repo.targets.bump_version();
    let forged = signed_targets(&repo.targets, &[&repo.targets_keys[0], &key()]);
    repo.publish_targets_as_is();
    repo.publish_snapshot_and_timestamp();
    c.transport.set(&repo.files);
    c.transport.put("3.targets.json", forged);
    let err = update_err(c.updater.refresh());
    assert_eq!(
        err,
        UpdateError::ThresholdNotMet {
            role: "targets".into(),
            valid: 1,
            needed: 2
        }
    );

    // A root rotation signed by one of the two root keys.
    repo.extra_root_signers.clear();
    repo.publish_root();
    c.transport.set(&repo.files);
    let err = update_err(c.updater.refresh());
    assert!(
        matches!(err, UpdateError::ThresholdNotMet { ref role, valid: 1, needed: 2 } if role == "root"),
        "{err:?}"
    );
}

/// Wrong software installation: a target whose bytes differ from what targets metadata
/// says is refused; tags resolve only to the digest the owning role signed.
#[test]
fn wrong_software() {
    let mut repo = Repo::new();
    let d = repo.add_image("targets", "v1", b"the real manifest");
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let mut c = client(&repo);
    c.updater.refresh().unwrap();
    let found = c.updater.target("v1").unwrap().unwrap();

    let path = format!("targets/{}.v1", d.hex());
    let targets = MemoryTransport::new(&repo.files);
    let strip = |t: &MemoryTransport| {
        let files = t.files.lock().unwrap().clone();
        t.set(
            &files
                .into_iter()
                .filter_map(|(k, v)| k.strip_prefix("targets/").map(|k| (k.to_owned(), v)))
                .collect(),
        );
    };
    strip(&targets);
    assert_eq!(
        c.updater
            .download_target("v1", &found.target, &targets)
            .unwrap(),
        b"the real manifest"
    );
    targets.put(
        path.trim_start_matches("targets/"),
        b"the evil manifest".to_vec(),
    );
    match c.updater.download_target("v1", &found.target, &targets) {
        Err(Error::Update(UpdateError::LengthOrHashMismatch { role, .. })) => {
            assert_eq!(role, "v1")
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    targets.put(
        path.trim_start_matches("targets/"),
        b"the real manifest, and more".to_vec(),
    );
    assert!(matches!(
        c.updater.download_target("v1", &found.target, &targets),
        Err(Error::Update(UpdateError::TooLarge { .. }))
    ));

    let image = vouch_tuf::reference::ImageRef::parse("registry.example.com/org/app:v1").unwrap();
    let pinned = c.updater.resolve(&image).unwrap();
    assert_eq!(
        pinned.to_string(),
        format!("registry.example.com/org/app@{d}")
    );
    let other = vouch_tuf::reference::Digest::sha256_of(b"other");
    let wrong = image.with_digest(other);
    assert!(matches!(
        c.updater.resolve(&wrong),
        Err(Error::UntrustedDigest { .. })
    ));
}

/// Path traversal through a target's hash: with consistent snapshots a target is fetched
/// as `HASH.NAME`, so a signer (or a compromised delegated key) listing a target whose
/// "hash" is `../../x` would steer the fetch outside the targets directory. The hash is
/// refused as malformed before any path is built from it: nothing is fetched.
#[test]
fn target_hash_cannot_become_a_path() {
    let mut repo = Repo::new();
    let mut evil = vouch_tuf::metadata::TargetFile::image(
        &vouch_tuf::reference::Digest::sha256_of(b"manifest"),
        8,
        None,
    );
    evil.hashes.insert("sha256".into(), "../../x".into());
    repo.role_mut("targets").add_target(
        vouch_tuf::types::TargetName::new("v1").unwrap(),
        evil.clone(),
    );
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let mut c = client(&repo);
    c.updater.refresh().unwrap();
    let found = c.updater.target("v1").unwrap().unwrap();
    assert_eq!(found.target.hashes["sha256"], "../../x");

    // Whatever the transport would serve there, it is never asked.
    let targets = MemoryTransport::default();
    targets.put("../../x.v1", b"manifest".to_vec());
    targets.put("x.v1", b"manifest".to_vec());
    match c.updater.download_target("v1", &found.target, &targets) {
        Err(Error::Update(UpdateError::LengthOrHashMismatch { role, mismatch })) => {
            assert_eq!(role, "v1");
            assert_eq!(
                mismatch.to_string(),
                "sha256 hash \"../../x\" is not 64 lowercase hex characters"
            );
        }
        other => panic!("expected a malformed hash, got {other:?}"),
    }
    assert_eq!(
        targets.take_log(),
        Vec::<String>::new(),
        "nothing is fetched"
    );
    assert!(matches!(
        vouch_verifier::updater::target_path("v1", &found.target, true),
        Err(UpdateError::LengthOrHashMismatch { .. })
    ));
    // The same for a name with a directory, and for another algorithm's hash.
    let mut other = evil;
    other.hashes.clear();
    other.hashes.insert("sha512".into(), "../".repeat(40));
    assert!(vouch_verifier::updater::target_path("dir/v1", &other, true).is_err());
    assert!(vouch_verifier::updater::target_path("dir/v1", &other, false).is_err());

    // A well-formed hash still names the consistent-snapshot path.
    let d = vouch_tuf::reference::Digest::sha256_of(b"manifest");
    let good = vouch_tuf::metadata::TargetFile::image(&d, 8, None);
    assert_eq!(
        vouch_verifier::updater::target_path("dir/v1", &good, true).unwrap(),
        format!("dir/{}.v1", d.hex())
    );
}

/// Slow retrieval: a server that accepts the request and then stalls cannot hold the client
/// past the transport's timeout.
#[test]
fn slow_retrieval() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { continue };
            use std::io::{Read, Write};
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{");
            held.push(s); // never finishes the body
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let options = HttpOptions {
        timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(1),
        ..HttpOptions::default()
    };
    let http = HttpTransport::new(&url, &options).unwrap();
    let started = Instant::now();
    let err = http.fetch("timestamp.json", 16 * 1024).unwrap_err();
    assert!(matches!(err, TransportError::TimedOut { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Malicious mirrors preventing updates: a failed update leaves the previously trusted
/// metadata in the cache, and retrying against a good mirror succeeds.
#[test]
fn malicious_mirror_failed_update_is_retryable() {
    let mut repo = Repo::new();
    let mut c = client(&repo);
    c.updater.refresh().unwrap();
    let before: Vec<_> = ["root", "timestamp", "snapshot", "targets"]
        .iter()
        .map(|r| cached(&c, r))
        .collect();
    let d = repo.add_image("targets", "v9", b"nine");
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let mut broken = repo.files.clone();
    broken.insert("2.snapshot.json".into(), b"{not json".to_vec());
    c.transport.set(&broken);
    assert!(c.updater.refresh().is_err());
    // Timestamp v2 passed every check and may be kept; snapshot and targets are untouched.
    assert_eq!(cached(&c, "snapshot"), before[2]);
    assert_eq!(cached(&c, "targets"), before[3]);
    assert_eq!(cached(&c, "root"), before[0]);
    c.transport.set(&repo.files);
    c.updater.refresh().unwrap();
    assert_eq!(c.updater.lookup("v9").unwrap().unwrap().digest, d);
}

/// Key ids are taken as root lists them: a key listed under an id that is not its hash
/// still verifies, and an alias of one key under two ids still counts once.
#[test]
fn threshold_counts_distinct_keys_across_aliases() {
    let mut repo = Repo::new();
    let k = &repo.targets_keys[0];
    let alias = vouch_tuf::types::KeyId::new("a".repeat(64)).unwrap();
    repo.root.keys.insert(alias.clone(), pubkey(k));
    repo.root
        .roles
        .get_mut(&TopLevelRole::Targets)
        .unwrap()
        .keyids
        .push(alias.clone());
    repo.root.set_threshold(TopLevelRole::Targets, threshold(2));
    repo.publish_root();
    repo.targets.bump_version();
    let mut md = Metadata::signed_by(
        repo.targets.clone(),
        &[&repo.targets_keys[0] as &dyn vouch_tuf::crypto::Signer],
    )
    .unwrap();
    md.sign_as(&repo.targets_keys[0], alias).unwrap();
    let bytes = md.to_bytes();
    repo.publish_targets_as_is();
    repo.publish_snapshot_and_timestamp();
    let mut c = client(&repo);
    c.transport.put("2.targets.json", bytes);
    let err = update_err(c.updater.refresh());
    assert_eq!(
        err,
        UpdateError::ThresholdNotMet {
            role: "targets".into(),
            valid: 1,
            needed: 2
        }
    );
}

/// Fast-forward of snapshot: a compromised snapshot key (with the timestamp key) pushes the
/// snapshot version far ahead; rotating the snapshot key in root lets the client drop the
/// cached timestamp and snapshot and follow the restarted versions.
#[test]
fn fast_forward_snapshot() {
    let mut repo = Repo::new();
    let mut c = client(&repo);
    c.updater.refresh().unwrap();

    repo.snapshot.common.version = Version::new(1000).unwrap();
    repo.publish_snapshot_as_is();
    repo.publish_timestamp();
    c.transport.set(&repo.files);
    c.updater.refresh().unwrap();
    assert_eq!(
        c.updater
            .trusted()
            .unwrap()
            .snapshot()
            .unwrap()
            .version()
            .get(),
        1000
    );

    // The genuine snapshot v2 is refused while the keys are unchanged.
    repo.snapshot.common.version = Version::new(2).unwrap();
    repo.publish_snapshot_as_is();
    repo.publish_timestamp();
    c.transport.set(&repo.files);
    let err = update_err(c.updater.refresh());
    assert_eq!(
        err,
        UpdateError::RollbackAttempt {
            role: "snapshot".into(),
            trusted: 1000,
            got: 2
        }
    );

    let new_key = key();
    let old_id = pubkey(&repo.snapshot_keys[0]).key_id();
    repo.root.remove_key(TopLevelRole::Snapshot, &old_id);
    repo.root.add_key(TopLevelRole::Snapshot, pubkey(&new_key));
    repo.snapshot_keys = vec![new_key];
    repo.publish_root();
    repo.publish_snapshot_as_is();
    repo.publish_timestamp();
    c.transport.set(&repo.files);
    c.updater.refresh().unwrap();
    assert_eq!(
        c.updater
            .trusted()
            .unwrap()
            .snapshot()
            .unwrap()
            .version()
            .get(),
        2
    );
}
