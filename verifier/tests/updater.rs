//! The [`Updater`] end to end: request order, lazy delegation loading, persistence across
//! runs, answers, and each transport.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use vouch_tuf::reference::{Digest, Gun, ImageRef};
use vouch_verifier::cache::MetadataStore;
use vouch_verifier::clock::TestClock;
use vouch_verifier::transport::{
    Bundle, BundleTransport, DirectoryTransport, HttpOptions, HttpTransport, Transport,
};
use vouch_verifier::{Error, Expiry, UpdateError, Updater};

fn updater<T: Transport>(dir: &std::path::Path, repo: &Repo, t: T) -> Updater<T> {
    let store = MetadataStore::open(dir).unwrap();
    Updater::<T>::pin_root(&store, &repo.root_bytes(1)).unwrap();
    Updater::new(store, t).with_clock(Arc::new(TestClock::new(NOW)))
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn repo_with_delegation() -> (Repo, Digest, Digest) {
    let mut repo = Repo::new();
    let latest = repo.add_image("targets", "latest", b"latest manifest");
    repo.delegate("targets", "releases", &["v*"], true);
    let v1 = repo.add_image("releases", "v1.0", b"v1 manifest");
    repo.publish_all_delegated_as_is();
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    (repo, latest, v1)
}

#[test]
fn requests_follow_the_workflow_order_and_load_delegations_lazily() {
    let (repo, latest, v1) = repo_with_delegation();
    let dir = tempfile::tempdir().unwrap();
    let t = MemoryTransport::new(&repo.files);
    let mut up = updater(dir.path(), &repo, t.clone());
    up.refresh().unwrap();
    assert_eq!(
        t.take_log(),
        [
            "2.root.json",
            "timestamp.json",
            "2.snapshot.json",
            "2.targets.json"
        ]
    );

    let l = up.lookup("latest").unwrap().unwrap();
    assert_eq!((l.digest, l.length), (latest, 15));
    assert_eq!(
        l.custom.unwrap().as_object().unwrap()["mediaType"].as_str(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert!(
        t.take_log().is_empty(),
        "a top-level tag needs no delegated role"
    );

    let r = up.lookup("v1.0").unwrap().unwrap();
    assert_eq!(r.digest, v1);
    assert_eq!(r.role_path, vec![rn("targets"), rn("releases")]);
    assert_eq!(t.take_log(), ["1.releases.json"]);
    up.lookup("v1.0").unwrap();
    assert!(
        t.take_log().is_empty(),
        "a loaded role is not fetched again"
    );
    assert!(up.lookup("v9").unwrap().is_none());

    // Nothing changed: only the root probe and timestamp are fetched.
    up.refresh().unwrap();
    assert_eq!(t.take_log(), ["2.root.json", "timestamp.json"]);
    assert_eq!(
        listing(dir.path()),
        [
            "releases.json",
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ]
    );
}

#[test]
fn trusted_state_persists_across_runs() {
    let (repo, _, v1) = repo_with_delegation();
    let dir = tempfile::tempdir().unwrap();
    let t = MemoryTransport::new(&repo.files);
    updater(dir.path(), &repo, t.clone()).refresh().unwrap();
    t.take_log();
    let store = MetadataStore::open(dir.path()).unwrap();
    let mut later = Updater::new(store, t.clone()).with_clock(Arc::new(TestClock::new(NOW)));
    later.refresh().unwrap();
    assert_eq!(later.lookup("v1.0").unwrap().unwrap().digest, v1);
    assert_eq!(
        t.take_log(),
        ["2.root.json", "timestamp.json", "1.releases.json"]
    );
    // The cached root is the one trusted, not the pinned one: a new root is walked to.
    assert_eq!(
        std::fs::read(dir.path().join("root.json")).unwrap(),
        repo.root_bytes(1)
    );
}

#[test]
fn root_walk_persists_every_root() {
    let mut repo = Repo::new();
    repo.publish_root();
    repo.publish_root();
    let dir = tempfile::tempdir().unwrap();
    let t = MemoryTransport::new(&repo.files);
    let mut up = updater(dir.path(), &repo, t.clone());
    up.refresh().unwrap();
    assert_eq!(
        t.take_log(),
        [
            "2.root.json",
            "3.root.json",
            "4.root.json",
            "timestamp.json",
            "1.snapshot.json",
            "1.targets.json"
        ]
    );
    assert_eq!(
        std::fs::read(dir.path().join("root.json")).unwrap(),
        repo.root_bytes(3)
    );
}

#[test]
fn answers_is_trusted_and_resolve() {
    let (repo, latest, v1) = repo_with_delegation();
    let dir = tempfile::tempdir().unwrap();
    let gun = Gun::new("registry.example.com/org/app").unwrap();
    let mut up = updater(dir.path(), &repo, MemoryTransport::new(&repo.files)).with_gun(gun);
    assert!(matches!(up.lookup("latest"), Err(Error::NotRefreshed)));
    up.refresh().unwrap();
    assert!(up.is_trusted(&latest).unwrap());
    assert!(up.is_trusted(&v1).unwrap());
    assert!(!up.is_trusted(&Digest::sha256_of(b"nope")).unwrap());

    let pinned = up
        .resolve(&ImageRef::parse("registry.example.com/org/app:v1.0").unwrap())
        .unwrap();
    assert_eq!(
        pinned.to_string(),
        format!("registry.example.com/org/app@{v1}")
    );
    let implicit = up
        .resolve(&ImageRef::parse("registry.example.com/org/app").unwrap())
        .unwrap();
    assert_eq!(implicit.digest(), Some(&latest));
    let by_digest = ImageRef::parse(&format!("registry.example.com/org/app@{v1}")).unwrap();
    assert_eq!(up.resolve(&by_digest).unwrap(), by_digest);
    assert!(matches!(
        up.resolve(&ImageRef::parse("registry.example.com/org/app:v2").unwrap()),
        Err(Error::UnknownTag { .. })
    ));
    assert!(matches!(
        up.resolve(&ImageRef::parse("registry.example.com/other/app:v1.0").unwrap()),
        Err(Error::WrongRepository { .. })
    ));
}

#[test]
fn digest_named_targets_are_trusted() {
    let mut repo = Repo::new();
    let d = Digest::sha256_of(b"untagged");
    repo.add_image("targets", d.as_str(), b"untagged");
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let dir = tempfile::tempdir().unwrap();
    let mut up = updater(dir.path(), &repo, MemoryTransport::new(&repo.files));
    up.refresh().unwrap();
    assert!(up.is_trusted(&d).unwrap());
}

#[test]
fn directory_transport() {
    let (repo, _, v1) = repo_with_delegation();
    let served = tempfile::tempdir().unwrap();
    repo.write_to(served.path());
    let dir = tempfile::tempdir().unwrap();
    let mut up = updater(dir.path(), &repo, DirectoryTransport::new(served.path()));
    up.refresh().unwrap();
    assert_eq!(up.lookup("v1.0").unwrap().unwrap().digest, v1);
}

#[test]
fn offline_bundle_transport() {
    let (repo, _, v1) = repo_with_delegation();
    let bundle = Bundle {
        gun: Some("registry.example.com/org/app".into()),
        files: repo
            .files
            .iter()
            .filter(|(k, _)| !k.starts_with("targets/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let bytes = bundle.to_bytes();
    let dir = tempfile::tempdir().unwrap();
    let mut up = updater(
        dir.path(),
        &repo,
        BundleTransport::from_bytes(&bytes).unwrap(),
    );
    up.refresh().unwrap();
    assert_eq!(up.lookup("v1.0").unwrap().unwrap().digest, v1);
}

#[test]
fn http_transport_over_loopback() {
    let (repo, _, v1) = repo_with_delegation();
    let server = Server::start(repo.files.clone());
    let dir = tempfile::tempdir().unwrap();
    let http = HttpTransport::new(&server.url, &HttpOptions::default()).unwrap();
    let mut up = updater(dir.path(), &repo, http);
    up.refresh().unwrap();
    assert_eq!(up.lookup("v1.0").unwrap().unwrap().digest, v1);
    assert_eq!(
        server.take_log(),
        [
            "2.root.json",
            "timestamp.json",
            "2.snapshot.json",
            "2.targets.json",
            "1.releases.json"
        ]
    );
}

#[test]
fn plain_file_names_without_consistent_snapshots() {
    let mut repo = Repo::new();
    repo.root.consistent_snapshot = Some(false);
    repo.publish_root();
    let mut files = repo.files.clone();
    files.insert("snapshot.json".into(), repo.file("1.snapshot.json"));
    files.insert("targets.json".into(), repo.file("1.targets.json"));
    let dir = tempfile::tempdir().unwrap();
    let t = MemoryTransport::new(&files);
    let mut up = updater(dir.path(), &repo, t.clone());
    up.refresh().unwrap();
    assert_eq!(
        t.take_log(),
        [
            "2.root.json",
            "3.root.json",
            "timestamp.json",
            "snapshot.json",
            "targets.json"
        ]
    );
}

/// Answers every request with a redirect to `location(path)`, or serves `body` on `/ok`.
fn redirecting_server(location: impl Fn(&str) -> String + Send + 'static) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let resp = if path == "/ok" {
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_owned()
            } else {
                format!(
                    "HTTP/1.1 302 Found\r\nLocation: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    location(&path)
                )
            };
            let _ = s.write_all(resp.as_bytes());
        }
    });
    url
}

#[test]
fn http_redirects_stay_on_the_same_host() {
    let same = redirecting_server(|_| "/ok".to_owned());
    let http = HttpTransport::new(&same, &HttpOptions::default()).unwrap();
    assert_eq!(http.fetch("timestamp.json", 10).unwrap(), b"ok");

    let other = redirecting_server(|_| "http://127.0.0.2:9/ok".to_owned());
    let http = HttpTransport::new(&other, &HttpOptions::default()).unwrap();
    match http.fetch("timestamp.json", 10) {
        Err(vouch_verifier::transport::TransportError::Network { message, .. }) => {
            assert!(message.contains("another host"), "{message}")
        }
        r => panic!("expected the redirect to be refused, got {r:?}"),
    }
}

#[test]
fn a_refresh_for_editing_accepts_expired_metadata_and_a_later_refresh_still_refuses_it() {
    let (repo, _, v1) = repo_with_delegation();
    let dir = tempfile::tempdir().unwrap();
    let t = MemoryTransport::new(&repo.files);
    let clock = Arc::new(TestClock::new(NOW));
    let store = MetadataStore::open(dir.path()).unwrap();
    Updater::<MemoryTransport>::pin_root(&store, &repo.root_bytes(1)).unwrap();
    let mut up = Updater::new(store, t.clone()).with_clock(clock.clone());
    up.refresh().unwrap();
    assert_eq!(up.lookup("v1.0").unwrap().unwrap().digest, v1);

    // Everything the repository signed expired a year after NOW.
    clock.advance(400 * DAY);
    assert!(matches!(
        up.refresh(),
        Err(Error::Update(UpdateError::Expired { ref role, .. })) if role == "root"
    ));
    let set = up.refresh_for_editing().unwrap();
    assert_eq!(set.expiry(), Expiry::IgnoreForEditing);
    let expired: Vec<String> = set.expired().iter().map(|(r, _)| r.to_string()).collect();
    assert_eq!(expired, ["root", "timestamp", "snapshot", "targets"]);
    // The relaxed set is not where answers come from.
    assert!(matches!(up.lookup("v1.0"), Err(Error::NotRefreshed)));
    assert!(up.trusted().is_none());
    // What it accepted was persisted; a verifying refresh from that cache still refuses it.
    assert!(dir.path().join("targets.json").exists());
    assert!(matches!(
        up.refresh(),
        Err(Error::Update(UpdateError::Expired { ref role, .. })) if role == "root"
    ));
    let store = MetadataStore::open(dir.path()).unwrap();
    let mut later = Updater::new(store, t.clone()).with_clock(clock.clone());
    assert!(matches!(
        later.refresh(),
        Err(Error::Update(UpdateError::Expired { .. }))
    ));
    // Back at a time when it was current, the same cache verifies again.
    clock.set(NOW);
    later.refresh().unwrap();
    assert_eq!(later.lookup("v1.0").unwrap().unwrap().digest, v1);
}

#[test]
fn a_verifying_refresh_refuses_an_expired_targets_role_cached_by_a_relaxed_one() {
    // Root lives longer than targets here, so only the cached targets is expired.
    let mut repo = Repo::new();
    repo.root.set_expires(NOW.add_seconds(3650 * DAY));
    repo.publish_root();
    repo.targets.set_expires(NOW.add_seconds(10 * DAY));
    repo.publish_targets();
    repo.timestamp.set_expires(NOW.add_seconds(3650 * DAY));
    repo.snapshot.set_expires(NOW.add_seconds(3650 * DAY));
    repo.publish_snapshot_and_timestamp();
    let dir = tempfile::tempdir().unwrap();
    let t = MemoryTransport::new(&repo.files);
    let clock = Arc::new(TestClock::new(NOW.add_seconds(20 * DAY)));
    let store = MetadataStore::open(dir.path()).unwrap();
    Updater::<MemoryTransport>::pin_root(&store, &repo.root_bytes(1)).unwrap();
    let mut up = Updater::new(store, t.clone()).with_clock(clock.clone());
    let set = up.refresh_for_editing().unwrap();
    let expired: Vec<String> = set.expired().iter().map(|(r, _)| r.to_string()).collect();
    assert_eq!(expired, ["targets"]);
    assert_eq!(
        std::fs::read(dir.path().join("targets.json")).unwrap(),
        repo.file("2.targets.json")
    );
    t.take_log();
    assert!(matches!(
        up.refresh(),
        Err(Error::Update(UpdateError::Expired { ref role, .. })) if role == "targets"
    ));
    // The cached copy was refused and the one on the server fetched and refused too.
    assert_eq!(
        t.take_log(),
        ["3.root.json", "timestamp.json", "2.targets.json"]
    );
}
