//! Mirroring through a real `vouch-server` process into a real registry (Debian's
//! `docker-registry`, from `vouch_testkit::registry`), with basic and with token
//! authentication: the trust artifact appears under `_vouch.trust` after every publish and
//! every re-sign, a TUF client reads it back with the server stopped, an unchanged state is
//! not pushed again, the `previous` annotation chains the artifacts, a registry outage
//! delays mirroring without delaying publishes, a repository the registry refuses waits
//! alone while the registry's other repositories are mirrored, an image under the trust tag
//! is never overwritten, and a newer state under the trust tag is never rolled back.
//!
//! Everything read back from the registry here goes through `vouch_verifier`'s registry
//! client and `OciTransport` + `Updater`, as a consumer reads it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{digest_of, ClientRepo, Server};
use reqwest::StatusCode;
use vouch_testkit::registry::{Anonymous, ImageLayout, Registry, RegistryAuth};
use vouch_tuf::oci::{
    build_trust_artifact, TrustManifest, ACCEPT_MANIFESTS, MAX_MANIFEST_BYTES, OCI_MANIFEST,
    TRUST_TAG,
};
use vouch_tuf::reference::{Digest, Gun};
use vouch_verifier::cache::MetadataStore;
use vouch_verifier::registry::{Credentials, Login, Registries, RegistryOptions, RegistryRepo};
use vouch_verifier::transport::OciTransport;
use vouch_verifier::Updater;

/// How long any awaited outcome may take before the test fails.
const WAIT: Duration = Duration::from_secs(90);

const USER: &str = "vouch-mirror";
const PASSWORD: &str = "mirror-secret";

fn basic() -> RegistryAuth {
    RegistryAuth::Basic {
        user: USER.into(),
        password: PASSWORD.into(),
    }
}

/// The `[mirror]` section for `registry` (short backoffs and leases), then `extra`.
fn mirror_toml(registry: &Registry, dir: &Path, extra: &str) -> String {
    let mut t = format!(
        "[mirror]\nrepositories = [\"{host}/**\"]\nrefresh_interval_seconds = 1\n\
         timeout_seconds = 2\nlease_seconds = 3\nbackoff_initial_ms = 100\nbackoff_max_seconds = 1\n{extra}",
        host = registry.host()
    );
    if let Some((user, password)) = registry.credentials() {
        let file = dir.join("registry-password");
        std::fs::write(&file, format!("{password}\n")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        t.push_str(&format!(
            "[[mirror.registry]]\nhost = {:?}\nusername = {user:?}\npassword_file = {:?}\n",
            registry.host(),
            file.to_str().unwrap()
        ));
    }
    t
}

/// A server mirroring everything of `registry`, with `env` set.
fn mirroring_server(registry: &Registry, dir: &Path, env: &[(&str, &str)]) -> (Server, PathBuf) {
    let cfg = dir.join("vouch.toml");
    std::fs::write(&cfg, mirror_toml(registry, dir, "")).unwrap();
    let server = Server::start_full(env, &["--config", cfg.to_str().unwrap()]);
    (server, cfg)
}

/// A consumer's client of `registry`, with its login.
fn client(registry: &Registry) -> Arc<Mutex<Registries>> {
    let login = match registry.credentials() {
        Some((u, p)) => {
            let mut m = BTreeMap::new();
            m.insert(
                registry.host().to_owned(),
                Credentials::new(u.to_owned(), p.to_owned().into()),
            );
            Login::PerRegistry(m)
        }
        None => Login::Anonymous,
    };
    Arc::new(Mutex::new(
        Registries::new(RegistryOptions::new(Vec::new(), login).unwrap()).unwrap(),
    ))
}

/// The repository path of `gun` on its registry.
fn repository(gun: &str) -> &str {
    gun.split_once('/').unwrap().1
}

/// What `registry` holds under the trust tag of `gun`: digest and manifest.
///
/// `docker-registry`'s filesystem storage answers `500` to a read that meets a manifest
/// being written (the tag moved, the revision not yet readable): such an answer is asked
/// again, for up to two seconds, before it fails the test.
fn artifact(registry: &Registry, gun: &str) -> Option<(Digest, TrustManifest)> {
    use vouch_verifier::registry::RegistryError;
    let c = client(registry);
    let c = c.lock().unwrap();
    let mut tries = 0;
    loop {
        match c.trust_tag(registry.host(), repository(gun)) {
            Ok(m) => return m.map(|m| (m.digest, TrustManifest::parse(&m.bytes).unwrap())),
            Err(RegistryError::Refused { status, .. })
                if status.is_server_error() && tries < 10 =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("reading the trust tag of {gun}: {e}"),
        }
    }
}

/// The bytes of file `name` of the artifact `m` of `gun`.
fn file(registry: &Registry, gun: &str, m: &TrustManifest, name: &str) -> Vec<u8> {
    let f = m
        .file(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", m.files().keys()));
    client(registry)
        .lock()
        .unwrap()
        .get_blob(registry.host(), repository(gun), &f.digest, f.size)
        .unwrap()
}

/// The `signed.version` of metadata bytes.
fn version(bytes: &[u8]) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    v["signed"]["version"].as_u64().unwrap()
}

/// The version of `timestamp.json` in the registry's copy of `gun` (0 when none).
fn mirrored_timestamp(registry: &Registry, gun: &str) -> u64 {
    artifact(registry, gun).map_or(0, |(_, m)| {
        version(&file(registry, gun, &m, "timestamp.json"))
    })
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A metric's value (0 when absent).
fn metric(server: &Server, series: &str) -> u64 {
    let text = server.get_admin("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map_or(0, |v| v.trim().parse().unwrap())
}

fn pushes(server: &Server, registry: &Registry, result: &str) -> u64 {
    metric(
        server,
        &format!(
            "vouch_mirror_pushes_total{{registry=\"{}\",result=\"{result}\"}}",
            registry.host()
        ),
    )
}

/// What a consumer pinned to `root` reads from `registry` for `gun`'s `tag`: refreshed
/// through the trust artifact alone.
fn lookup_from_registry(registry: &Registry, gun: &str, root: &[u8], tag: &str) -> Digest {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    Updater::<OciTransport<RegistryRepo>>::pin_root(&store, root).unwrap();
    let repo = RegistryRepo::new(client(registry), registry.host(), repository(gun));
    let transport = OciTransport::new(repo).expecting(Gun::new(gun).unwrap());
    let mut updater = Updater::new(store, transport);
    updater.refresh().unwrap();
    updater.lookup(tag).unwrap().unwrap().digest
}

/// Publishes targets `version` signing `tags`, asserting the server accepts it.
fn publish_targets(server: &Server, c: &ClientRepo, version: u64, tags: &[&str]) {
    let r = server.publish(&c.gun, &[("targets", c.signed_targets(version, tags))]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[test]
fn every_publish_reaches_a_basic_auth_registry_and_is_read_there_without_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start_with(basic());
    let (mut server, _) = mirroring_server(&registry, dir.path(), &[]);
    let gun = format!("{}/org/app", registry.host());
    let c = ClientRepo::new(&server, &gun);
    c.publish_initial(&server, &["v1"]);

    // The first state arrives, and is what the server serves.
    let ts = server.current(&gun, "timestamp").unwrap();
    wait_until("the first artifact", || {
        mirrored_timestamp(&registry, &gun) == version(&ts)
    });
    let (first, m) = artifact(&registry, &gun).unwrap();
    assert_eq!(m.gun(), Some(gun.as_str()));
    assert_eq!(m.previous(), None);
    assert_eq!(file(&registry, &gun, &m, "timestamp.json"), ts);
    assert!(m.file("1.root.json").is_some(), "{:?}", m.files().keys());
    assert_eq!(
        lookup_from_registry(&registry, &gun, &c.signed_root(1), "v1"),
        digest_of("v1")
    );

    // The next publish replaces it, chaining to the first, which stays readable by digest.
    publish_targets(&server, &c, 2, &["v1", "v2"]);
    let ts = server.current(&gun, "timestamp").unwrap();
    wait_until("the second artifact", || {
        mirrored_timestamp(&registry, &gun) == version(&ts)
    });
    let (second, m) = artifact(&registry, &gun).unwrap();
    assert_ne!(second, first);
    assert_eq!(m.previous(), Some(&first));
    let old = client(&registry)
        .lock()
        .unwrap()
        .get_manifest(
            registry.host(),
            repository(&gun),
            first.as_str(),
            ACCEPT_MANIFESTS,
            MAX_MANIFEST_BYTES,
        )
        .unwrap();
    assert_eq!(old.digest, first);
    assert_eq!(
        lookup_from_registry(&registry, &gun, &c.signed_root(1), "v2"),
        digest_of("v2")
    );
    assert!(pushes(&server, &registry, "pushed") >= 2);
    assert_eq!(pushes(&server, &registry, "refused"), 0);

    // The mirror's cursor is lost (an older database restored): the state it finds in the
    // registry is the one it has, and nothing is pushed again.
    assert!(server.terminate());
    let db = rusqlite::Connection::open(server.data_dir.join("vouch.db")).unwrap();
    let reset = db
        .execute(
            "UPDATE webhook_cursors SET cursor = 0 WHERE name = ?1",
            [format!("mirror:{}", registry.host())],
        )
        .unwrap();
    assert_eq!(
        reset, 1,
        "the mirror keeps its cursor among the webhook cursors"
    );
    drop(db);
    server.restart();
    wait_until("the changefeed mirrored again", || {
        pushes(&server, &registry, "unchanged") >= 1
    });
    assert_eq!(pushes(&server, &registry, "pushed"), 0);
    assert_eq!(artifact(&registry, &gun).unwrap().0, second);
    // The webhook listing shows webhooks only.
    let listing: serde_json::Value =
        serde_json::from_str(&server.get_admin("/v2/_trust/webhooks").text()).unwrap();
    assert_eq!(
        listing["subscriptions"].as_array().unwrap().len(),
        0,
        "{listing}"
    );

    // With the server gone, consumers still verify from the registry.
    server.kill();
    assert_eq!(
        lookup_from_registry(&registry, &gun, &c.signed_root(1), "v2"),
        digest_of("v2")
    );
}

#[test]
fn a_token_auth_registry_gets_the_trust_through_the_bearer_flow() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start_with(RegistryAuth::Token {
        user: USER.into(),
        password: PASSWORD.into(),
        anonymous: Anonymous::Nothing,
    });
    let (mut server, _) = mirroring_server(&registry, dir.path(), &[]);
    let gun = format!("{}/team/app", registry.host());
    let c = ClientRepo::new(&server, &gun);
    c.publish_initial(&server, &["v1"]);
    let ts = server.current(&gun, "timestamp").unwrap();
    wait_until("the artifact", || {
        mirrored_timestamp(&registry, &gun) == version(&ts)
    });
    let asked = registry.token_requests();
    // `pull,push` or `push,pull`: the client asks its own scope, or the one the registry's
    // challenge named when that grants the push, whichever request met the challenge first.
    let pull_and_push = |scope: &str| {
        scope.rsplit_once(':').is_some_and(|(resource, actions)| {
            let mut actions: Vec<&str> = actions.split(',').collect();
            actions.sort_unstable();
            resource == "repository:team/app" && actions == ["pull", "push"]
        })
    };
    assert!(
        asked
            .iter()
            .any(|t| t.sent_credentials() && t.scopes.iter().any(|s| pull_and_push(s))),
        "no push token was asked: {asked:?}"
    );
    server.kill();
    assert_eq!(
        lookup_from_registry(&registry, &gun, &c.signed_root(1), "v1"),
        digest_of("v1")
    );
}

fn retrying(server: &Server, registry: &Registry) -> u64 {
    metric(
        server,
        &format!("vouch_mirror_retrying{{registry=\"{}\"}}", registry.host()),
    )
}

#[test]
fn a_repository_the_registry_refuses_waits_alone_and_is_mirrored_once_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start_with(RegistryAuth::Token {
        user: USER.into(),
        password: PASSWORD.into(),
        anonymous: Anonymous::Nothing,
    });
    // The registry's policy refuses the mirror's account one repository.
    registry.deny("org/refused");
    let (server, _) = mirroring_server(&registry, dir.path(), &[]);
    let refused = format!("{}/org/refused", registry.host());
    let fine = format!("{}/org/fine", registry.host());
    let a = ClientRepo::new(&server, &refused);
    a.publish_initial(&server, &["v1"]);
    wait_until("the refused repository waiting to be retried", || {
        retrying(&server, &registry) == 1
    });

    // A repository changed after it is mirrored all the same.
    let b = ClientRepo::new(&server, &fine);
    b.publish_initial(&server, &["v1"]);
    let ts = server.current(&fine, "timestamp").unwrap();
    wait_until("the other repository mirrored", || {
        mirrored_timestamp(&registry, &fine) == version(&ts)
    });
    let failed = pushes(&server, &registry, "failed");
    wait_until("the refused repository retried", || {
        pushes(&server, &registry, "failed") > failed
    });
    assert_eq!(retrying(&server, &registry), 1);

    // Allowed again, it is mirrored by a retry, with no change of its own.
    registry.allow("org/refused");
    let ts = server.current(&refused, "timestamp").unwrap();
    wait_until("the refused repository mirrored", || {
        mirrored_timestamp(&registry, &refused) == version(&ts)
    });
    wait_until("the retry set empty", || retrying(&server, &registry) == 0);
    assert_eq!(
        lookup_from_registry(&registry, &refused, &a.signed_root(1), "v1"),
        digest_of("v1")
    );
}

#[test]
fn a_newer_state_under_the_trust_tag_is_never_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start_with(basic());
    let (server, _) = mirroring_server(&registry, dir.path(), &[]);
    let gun = format!("{}/org/app", registry.host());
    let c = ClientRepo::new(&server, &gun);
    c.publish_initial(&server, &["v1"]);
    let ts = server.current(&gun, "timestamp").unwrap();
    wait_until("the first artifact", || {
        mirrored_timestamp(&registry, &gun) == version(&ts)
    });

    // Another writer puts a newer state of the same history under the tag: the same files
    // but a timestamp of version 1000.
    let (first, m) = artifact(&registry, &gun).unwrap();
    let mut files: BTreeMap<String, Vec<u8>> = m
        .files()
        .keys()
        .map(|name| (name.clone(), file(&registry, &gun, &m, name)))
        .collect();
    let mut newer_ts: serde_json::Value = serde_json::from_slice(&files["timestamp.json"]).unwrap();
    newer_ts["signed"]["version"] = 1000.into();
    files.insert(
        "timestamp.json".into(),
        serde_json::to_vec(&newer_ts).unwrap(),
    );
    let newer = build_trust_artifact(&Gun::new(&gun).unwrap(), &files, Some(&first)).unwrap();
    {
        let c = client(&registry);
        let mut c = c.lock().unwrap();
        for b in &newer.blobs {
            c.push_blob(registry.host(), repository(&gun), &b.digest, b.bytes)
                .unwrap();
        }
        c.put_manifest(
            registry.host(),
            repository(&gun),
            TRUST_TAG,
            OCI_MANIFEST,
            &newer.manifest,
        )
        .unwrap();
    }

    // The server's next state is older than the tag's: it is not pushed.
    publish_targets(&server, &c, 2, &["v1", "v2"]);
    wait_until("the older state counted", || {
        pushes(&server, &registry, "older") >= 1
    });
    assert_eq!(artifact(&registry, &gun).unwrap().0, newer.digest);
    assert_eq!(mirrored_timestamp(&registry, &gun), 1000);

    // The cursor moved on: the registry's other repositories are still mirrored.
    let other = format!("{}/org/other", registry.host());
    let o = ClientRepo::new(&server, &other);
    o.publish_initial(&server, &["v1"]);
    let ts = server.current(&other, "timestamp").unwrap();
    wait_until("the other repository mirrored", || {
        mirrored_timestamp(&registry, &other) == version(&ts)
    });
    assert_eq!(artifact(&registry, &gun).unwrap().0, newer.digest);
    assert_eq!(pushes(&server, &registry, "refused"), 0);
    assert_eq!(retrying(&server, &registry), 0);
}

#[test]
fn a_registry_outage_delays_the_mirror_not_the_publish() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::start_with(basic());
    let (server, _) = mirroring_server(&registry, dir.path(), &[]);
    let gun = format!("{}/org/app", registry.host());
    let c = ClientRepo::new(&server, &gun);
    c.publish_initial(&server, &["v1"]);
    let ts = server.current(&gun, "timestamp").unwrap();
    wait_until("the first artifact", || {
        mirrored_timestamp(&registry, &gun) == version(&ts)
    });

    registry.stop();
    publish_targets(&server, &c, 2, &["v1", "v2"]);
    publish_targets(&server, &c, 3, &["v1", "v2", "v3"]);
    wait_until("a failed attempt", || {
        pushes(&server, &registry, "failed") >= 1
    });
    registry.restart();

    let ts = server.current(&gun, "timestamp").unwrap();
    wait_until("the mirror to catch up", || {
        mirrored_timestamp(&registry, &gun) == version(&ts)
    });
    assert_eq!(
        lookup_from_registry(&registry, &gun, &c.signed_root(1), "v3"),
        digest_of("v3")
    );
    wait_until("no lag", || {
        metric(
            &server,
            &format!("vouch_mirror_lag{{registry=\"{}\"}}", registry.host()),
        ) == 0
    });
}

#[test]
fn an_image_under_the_trust_tag_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start_with(basic());
    let taken = format!("{}/org/taken", registry.host());
    let fine = format!("{}/org/fine", registry.host());
    let image = ImageLayout::new("not-trust").push(&registry, &format!("org/taken:{TRUST_TAG}"));

    let (server, _) = mirroring_server(&registry, dir.path(), &[]);
    let a = ClientRepo::new(&server, &taken);
    a.publish_initial(&server, &["v1"]);
    let b = ClientRepo::new(&server, &fine);
    b.publish_initial(&server, &["v1"]);

    let ts = server.current(&fine, "timestamp").unwrap();
    wait_until("the other repository mirrored", || {
        mirrored_timestamp(&registry, &fine) == version(&ts)
    });
    wait_until("the refusal counted", || {
        pushes(&server, &registry, "refused") >= 1
    });
    assert_eq!(
        registry.manifest_digest("org/taken", TRUST_TAG).as_deref(),
        Some(image.as_str())
    );
    // The next change of the refused repository is refused again; the cursor moved on.
    publish_targets(&server, &a, 2, &["v1", "v2"]);
    wait_until("the second refusal", || {
        pushes(&server, &registry, "refused") >= 2
    });
    assert_eq!(
        registry.manifest_digest("org/taken", TRUST_TAG).as_deref(),
        Some(image.as_str())
    );
}

#[test]
fn the_registry_copy_is_re_signed_when_nobody_reads_from_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start_with(basic());
    // The shortest timestamp lifetime: re-signed once half of it (30 s) has passed.
    let (server, _) = mirroring_server(
        &registry,
        dir.path(),
        &[("VOUCH_TIMESTAMP_LIFETIME_SECONDS", "60")],
    );
    let gun = format!("{}/org/app", registry.host());
    let c = ClientRepo::new(&server, &gun);
    c.publish_initial(&server, &["v1"]);
    // Only the registry is read from now on.
    wait_until("the first artifact", || {
        mirrored_timestamp(&registry, &gun) >= 1
    });
    let first = mirrored_timestamp(&registry, &gun);
    wait_until("a re-signed timestamp in the registry", || {
        mirrored_timestamp(&registry, &gun) > first
    });
    assert_eq!(
        lookup_from_registry(&registry, &gun, &c.signed_root(1), "v1"),
        digest_of("v1")
    );
}

/// Two replicas on one PostgreSQL database mirroring into one registry: every change,
/// through either replica, reaches the registry, pushed by the one replica holding the
/// registry's lease; when it dies, the other takes over.
#[test]
fn replicas_on_postgresql_mirror_through_one_writer_and_take_over() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::postgres::PgCluster::shared().fresh_database();
    let registry = Registry::start();
    let cfg = dir.path().join("vouch.toml");
    std::fs::write(&cfg, mirror_toml(&registry, dir.path(), "")).unwrap();
    let kek = dir.path().join("kek");
    let env = [
        ("VOUCH_DATABASE_URL", db.as_str()),
        ("VOUCH_KEK_FILE", kek.to_str().unwrap()),
        ("VOUCH_LOG", "warn"),
    ];
    let args = ["--config", cfg.to_str().unwrap()];
    let mut a = Server::start_full(&env, &args);
    let mut b = Server::start_full(&env, &args);
    let gun = format!("{}/org/app", registry.host());
    let c = ClientRepo::new(&a, &gun);
    c.publish_initial(&a, &["v1"]);
    let ts = a.current(&gun, "timestamp").unwrap();
    wait_until("the first state mirrored", || {
        mirrored_timestamp(&registry, &gun) == version(&ts)
    });
    let mut tags = vec!["v1".to_owned()];
    for v in 2..=6 {
        tags.push(format!("v{v}"));
        let through = if v % 2 == 0 { &a } else { &b };
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        publish_targets(through, &c, v, &tags);
        let ts = through.current(&gun, "timestamp").unwrap();
        wait_until("the change mirrored", || {
            mirrored_timestamp(&registry, &gun) == version(&ts)
        });
    }
    let (pa, pb) = (
        pushes(&a, &registry, "pushed"),
        pushes(&b, &registry, "pushed"),
    );
    assert!(
        (pa == 0) != (pb == 0),
        "one replica pushes: {pa} and {pb} pushes"
    );
    assert!(pa + pb >= 6, "{pa} + {pb} pushes");

    // The writer dies; the other replica takes the lease over and mirrors what follows.
    let (writer, other) = if pa > 0 {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    writer.kill();
    tags.push("v7".into());
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    publish_targets(other, &c, 7, &tags);
    let ts = other.current(&gun, "timestamp").unwrap();
    wait_until("the survivor to mirror", || {
        mirrored_timestamp(&registry, &gun) == version(&ts)
    });
    assert!(pushes(other, &registry, "pushed") >= 1);
    assert_eq!(
        lookup_from_registry(&registry, &gun, &c.signed_root(1), "v7"),
        digest_of("v7")
    );
}
