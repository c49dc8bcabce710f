//! Cold verification of one tag of a 1,000-tag repository: from vouch-server, and from the
//! repository's trust artifact in an OCI registry, in the same run.
//!
//! A release `vouch-server` and Debian's `docker-registry` on loopback. One repository with
//! `VOUCH_BENCH_TAGS` tags (default 1,000) in its targets is published to the server; its
//! files are then pushed to the registry as the trust artifact (`vouch_tuf::oci`). Each
//! round verifies one tag both ways, in alternating order, each from nothing: a new cache
//! directory with the repository's root pinned, a new HTTP client (so connection set-up is
//! counted on both sides), then a refresh and a lookup checked against the signed digest.
//! `VOUCH_BENCH_ROUNDS` rounds (default 100) after 5 warm-up rounds; prints p50, p90 and max
//! of each path and the ratio of the medians, and (`manifest`) the registry path's one
//! request alone: the trust artifact's manifest read and parsed.
//!
//! Run: `cargo build --release -p vouch-server && cargo bench -p vouch-verifier --bench registry_cold_verify`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vouch_testkit::registry::Registry;
use vouch_testkit::server::Launch;
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use vouch_tuf::metadata::{Key, Metadata, Root, TargetFile, Targets};
use vouch_tuf::oci::{build_trust_artifact, TrustManifest, OCI_MANIFEST, TRUST_TAG};
use vouch_tuf::reference::{Digest, Gun};
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{RoleName, TargetName, TopLevelRole, Version};
use vouch_verifier::cache::MetadataStore;
use vouch_verifier::registry::{Login, Registries, RegistryOptions, RegistryRepo};
use vouch_verifier::server::{ServerClient, ServerOptions};
use vouch_verifier::transport::{
    repository_url, HttpOptions, HttpTransport, OciTransport, Transport,
};
use vouch_verifier::Updater;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug)]
struct Token(String);

impl vouch_verifier::transport::BearerToken for Token {
    fn bearer_token(&self) -> Option<String> {
        Some(self.0.clone())
    }
}

fn key_of(sk: &PrivateKey) -> Key {
    Key::from_verifying_key(&sk.verifying_key())
}

fn digest_of_tag(i: usize) -> Digest {
    Digest::sha256_of(format!("image {i}").as_bytes())
}

/// Verifies `tag` from nothing through `transport`: a new cache with `root` pinned, a
/// refresh, a lookup.
fn cold_verify<T: Transport>(gun: &Gun, root: &[u8], transport: T, tag: &str, want: &Digest) {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::for_gun(dir.path(), gun.as_str()).unwrap();
    Updater::<T>::pin_root(&store, root).unwrap();
    let mut updater = Updater::new(store, transport).with_gun(gun.clone());
    updater.refresh().unwrap();
    let found = updater.lookup(tag).unwrap().expect("the tag is signed");
    assert_eq!(&found.digest, want);
}

fn summary(name: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    println!(
        "{name:>9}: p50 {}  p90 {}  max {}  ({} rounds)",
        ms(at(0.5)),
        ms(at(0.9)),
        ms(*times.last().unwrap()),
        times.len()
    );
    at(0.5)
}

fn main() {
    let tags = env("VOUCH_BENCH_TAGS", 1000);
    let rounds = env("VOUCH_BENCH_ROUNDS", 100);

    let registry = Registry::start();
    let data = tempfile::tempdir().unwrap();
    let server = Launch::new(data.path()).start();
    let gun = Gun::new(&format!("{}/bench/app", registry.host())).unwrap();

    // Publish root v1 and targets with every tag.
    let admin = ServerClient::new(&server.base, &ServerOptions::default())
        .unwrap()
        .with_bearer_token(Arc::new(Token(server.admin_token.clone())));
    let repo = admin.repository(&gun);
    let root_key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let targets_key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let expires = Timestamp::parse("2099-01-01T00:00:00Z").unwrap();
    let mut root = Root::new(expires);
    root.add_key(TopLevelRole::Root, key_of(&root_key));
    root.add_key(TopLevelRole::Targets, key_of(&targets_key));
    root.add_key(
        TopLevelRole::Snapshot,
        repo.online_key(TopLevelRole::Snapshot).unwrap(),
    );
    root.add_key(
        TopLevelRole::Timestamp,
        repo.online_key(TopLevelRole::Timestamp).unwrap(),
    );
    let root = Metadata::signed_by(root, &[&root_key as &dyn Signer])
        .unwrap()
        .to_bytes();
    let mut targets = Targets::new(expires);
    targets.common.version = Version::new(1).unwrap();
    for i in 0..tags {
        targets.add_target(
            TargetName::new(format!("v{i}")).unwrap(),
            TargetFile::image(&digest_of_tag(i), 1000 + i as u64, None),
        );
    }
    let targets = Metadata::signed_by(targets, &[&targets_key as &dyn Signer])
        .unwrap()
        .to_bytes();
    repo.publish(&[
        (RoleName::new("root").unwrap(), root.clone()),
        (RoleName::new("targets").unwrap(), targets.clone()),
    ])
    .unwrap();

    // The repository's files, as the server serves them, into the registry.
    let http = || {
        HttpTransport::new(&repository_url(&server.base, &gun), &HttpOptions::default()).unwrap()
    };
    let cap = 64 * 1024 * 1024;
    let timestamp = http().fetch("timestamp.json", cap).unwrap();
    let ts = Metadata::<vouch_tuf::metadata::TimestampRole>::from_bytes(&timestamp).unwrap();
    let snapshot_name = format!("{}.snapshot.json", ts.signed().snapshot.version.get());
    let snapshot = http().fetch(&snapshot_name, cap).unwrap();
    let mut files = BTreeMap::new();
    files.insert("1.root.json".to_owned(), root.clone());
    files.insert("timestamp.json".to_owned(), timestamp);
    files.insert(snapshot_name, snapshot);
    files.insert("1.targets.json".to_owned(), targets.clone());
    let artifact = build_trust_artifact(&gun, &files, None).unwrap();
    let options = RegistryOptions::new(Vec::new(), Login::Anonymous).unwrap();
    let mut client = Registries::new(options.clone()).unwrap();
    let (host, path) = (registry.host().to_owned(), "bench/app".to_owned());
    for b in &artifact.blobs {
        client.push_blob(&host, &path, &b.digest, b.bytes).unwrap();
    }
    client
        .put_manifest(&host, &path, TRUST_TAG, OCI_MANIFEST, &artifact.manifest)
        .unwrap();
    println!(
        "repository: {tags} tags, targets {} bytes; trust artifact {} files",
        targets.len(),
        files.len()
    );

    let from_server = |tag: &str, want: &Digest| cold_verify(&gun, &root, http(), tag, want);
    let from_registry = |tag: &str, want: &Digest| {
        let client = Arc::new(Mutex::new(Registries::new(options.clone()).unwrap()));
        let transport =
            OciTransport::new(RegistryRepo::new(client, &host, &path)).expecting(gun.clone());
        cold_verify(&gun, &root, transport, tag, want)
    };

    // Where the registry path's time goes: the manifest read alone (one request), and the
    // parse of what it read.
    let manifest_read = |_: &str, _: &Digest| {
        let client = Arc::new(Mutex::new(Registries::new(options.clone()).unwrap()));
        let repo = RegistryRepo::new(client, &host, &path);
        let bytes = vouch_verifier::transport::RegistryRepository::manifest(
            &repo,
            TRUST_TAG,
            vouch_tuf::oci::MAX_MANIFEST_BYTES,
            None,
        )
        .unwrap();
        TrustManifest::parse(&bytes).unwrap();
    };
    let (mut manifest_times, mut server_times, mut registry_times) =
        (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds + 5 {
        let i = (round * 7919) % tags;
        let (tag, want) = (format!("v{i}"), digest_of_tag(i));
        let timed = |f: &dyn Fn(&str, &Digest)| {
            let t = Instant::now();
            f(&tag, &want);
            t.elapsed()
        };
        let (s, r) = if round % 2 == 0 {
            let s = timed(&from_server);
            (s, timed(&from_registry))
        } else {
            let r = timed(&from_registry);
            (timed(&from_server), r)
        };
        let m = timed(&manifest_read);
        if round >= 5 {
            server_times.push(s);
            registry_times.push(r);
            manifest_times.push(m);
        }
    }
    let s = summary("server", server_times);
    let r = summary("registry", registry_times);
    summary("manifest", manifest_times);
    println!(
        "registry / server (p50): {:.2}",
        r.as_secs_f64() / s.as_secs_f64()
    );
}
