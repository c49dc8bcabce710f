//! Several `vouch-server` replicas on one real PostgreSQL: concurrent publishers spread over
//! the replicas, python-tuf reading from random replicas, racing re-signs, a replica killed
//! mid-publish, PostgreSQL restarted under load, and `migrate-store` from SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::postgres::PgCluster;
use common::{ClientRepo, Server};
use reqwest::StatusCode;
use serde_json::Value;

/// Replicas sharing one database and one key-encryption key.
struct Replicas {
    servers: Vec<Server>,
    env: Vec<(String, String)>,
    _kek_dir: tempfile::TempDir,
}

impl Replicas {
    /// `n` replicas on `database_url`, with extra environment for each.
    fn start(n: usize, database_url: &str, extra: &[(&str, &str)]) -> Self {
        let kek_dir = tempfile::tempdir().unwrap();
        let kek = kek_dir.path().join("kek");
        let mut env = vec![
            ("VOUCH_DATABASE_URL".to_owned(), database_url.to_owned()),
            ("VOUCH_KEK_FILE".to_owned(), kek.display().to_string()),
            ("VOUCH_LOG".to_owned(), "warn".to_owned()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut r = Replicas {
            servers: Vec::new(),
            env,
            _kek_dir: kek_dir,
        };
        for _ in 0..n {
            r.add();
        }
        r
    }

    fn add(&mut self) {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.servers.push(Server::start_with(&env));
    }
}

/// The `signed.version` of a metadata file.
fn version_of(bytes: &[u8]) -> u64 {
    let v: Value = serde_json::from_slice(bytes).unwrap();
    v["signed"]["version"].as_u64().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Runs python-tuf's client (tests/python/client.py) once against `base`, keeping its
/// trusted state in `dir`; returns what it printed (an error is a failure).
fn python_refresh(base: &str, trusted_root: &Path, dir: &Path, names: &[&str]) -> Value {
    let mut args: Vec<OsString> = vec![
        base.into(),
        trusted_root.as_os_str().to_owned(),
        dir.as_os_str().to_owned(),
    ];
    args.extend(names.iter().map(OsString::from));
    let out = Command::new(common::python())
        .arg(common::python_script("client.py"))
        .args(&args)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python-tuf refused what {base} served (a fork or a rollback): {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// Publishes targets `version` signing `tag` through `server`: Ok(true) when accepted,
/// Ok(false) when another publisher took the version first (409), Err(status) for a 503.
fn try_publish(server: &Server, repo: &ClientRepo, version: u64, tag: &str) -> Result<bool, u16> {
    let r = server.publish(
        &repo.gun,
        &[("targets", repo.signed_targets(version, &[tag]))],
    );
    match r.status {
        StatusCode::OK => Ok(true),
        StatusCode::CONFLICT => Ok(false),
        StatusCode::SERVICE_UNAVAILABLE => {
            assert!(
                r.headers.contains_key("retry-after"),
                "503 without Retry-After"
            );
            Err(503)
        }
        s => panic!("publish to {}: {s} {}", server.base, r.text()),
    }
}

/// The current targets version as `server` reads it.
fn current_targets_version(server: &Server, gun: &str) -> u64 {
    version_of(&server.current(gun, "targets").unwrap())
}

#[test]
fn replicas_agree_under_concurrent_publishers_and_python_tuf_sees_one_history() {
    const PUBLISHERS: usize = 32;
    const ROUNDS: usize = 3;
    const GUNS: usize = 4;
    let db = PgCluster::shared().fresh_database();
    let replicas = Replicas::start(3, &db, &[]);
    let servers = &replicas.servers;

    // Each repository is initialised through a different replica; its online keys, made by
    // that replica, are what every replica signs with.
    let repos: Vec<ClientRepo> = (0..GUNS)
        .map(|g| {
            let s = &servers[g % servers.len()];
            let repo = ClientRepo::new(s, &format!("registry.example/replicas/app{g}"));
            repo.publish_initial(s, &["v1"]);
            repo
        })
        .collect();
    for repo in &repos {
        for s in servers {
            assert_eq!(
                s.online_key(&repo.gun, "timestamp"),
                repo.timestamp_key,
                "every replica offers the same online key"
            );
        }
    }
    let trusted: Vec<(tempfile::TempDir, PathBuf)> = repos
        .iter()
        .map(|repo| {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root.json");
            std::fs::write(&root, servers[0].current(&repo.gun, "root").unwrap()).unwrap();
            (dir, root)
        })
        .collect();

    // 32 publishers, round-robin over the replicas, each publishing ROUNDS new targets
    // versions of one repository (8 publishers a repository): read the current version,
    // publish the next; a 409 means another publisher took it, so read again.
    let accepted: Mutex<BTreeMap<(usize, u64), String>> = Mutex::default();
    std::thread::scope(|scope| {
        for p in 0..PUBLISHERS {
            let (server, g) = (&servers[p % servers.len()], p % GUNS);
            let (repo, accepted) = (&repos[g], &accepted);
            scope.spawn(move || {
                let mut done = 0;
                let mut attempts = 0;
                while done < ROUNDS {
                    attempts += 1;
                    assert!(attempts < 2000, "publisher {p} made no progress");
                    let next = current_targets_version(server, &repo.gun) + 1;
                    let tag = format!("p{p}-r{done}");
                    match try_publish(server, repo, next, &tag) {
                        Ok(true) => {
                            let old = accepted.lock().unwrap().insert((g, next), tag);
                            assert!(
                                old.is_none(),
                                "{} targets v{next} acknowledged twice",
                                repo.gun
                            );
                            done += 1;
                        }
                        Ok(false) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            });
        }
    });

    let accepted = accepted.into_inner().unwrap();
    assert_eq!(accepted.len(), PUBLISHERS * ROUNDS);
    for (g, repo) in repos.iter().enumerate() {
        let versions: Vec<u64> = accepted.keys().filter(|k| k.0 == g).map(|k| k.1).collect();
        let want: Vec<u64> = (2..2 + (PUBLISHERS / GUNS * ROUNDS) as u64).collect();
        assert_eq!(
            versions, want,
            "{}: each version exactly once, no gap",
            repo.gun
        );
        // Every replica serves the same bytes for every version of targets and timestamp.
        let newest_ts = version_of(&servers[0].current(&repo.gun, "timestamp").unwrap());
        for v in 1..=newest_ts {
            let path = format!("/v2/{}/_trust/tuf/{v}.timestamp.json", repo.gun);
            let bodies: BTreeSet<Vec<u8>> = servers.iter().map(|s| s.get(&path).body).collect();
            assert_eq!(
                bodies.len(),
                1,
                "{} timestamp v{v} differs between replicas",
                repo.gun
            );
        }
        for (&(_, v), tag) in accepted.range((g, 0)..(g + 1, 0)) {
            let path = format!("/v2/{}/_trust/tuf/{v}.targets.json", repo.gun);
            for s in servers {
                let r = s.get(&path);
                assert_eq!(r.status, StatusCode::OK);
                assert!(r.text().contains(tag.as_str()), "{path} on {}", s.base);
            }
        }
    }

    // python-tuf, keeping its trusted state, refreshes against random replicas: it must
    // never be shown a rollback or a fork, and ends on the newest targets.
    let mut pick = 7_usize;
    for round in 0..6 {
        for (g, repo) in repos.iter().enumerate() {
            pick = pick.wrapping_mul(1_103_515_245).wrapping_add(12_345) % 65_536;
            let s = &servers[pick % servers.len()];
            let (dir, root) = &trusted[g];
            let newest = accepted.range((g, 0)..(g + 1, 0)).next_back().unwrap();
            let got = python_refresh(&s.tuf_url(&repo.gun, ""), root, dir.path(), &[newest.1]);
            assert!(
                got.get(newest.1.as_str()).is_some_and(|v| !v.is_null()),
                "round {round}: {} on {} does not resolve {}: {got:?}",
                repo.gun,
                s.base,
                newest.1
            );
        }
    }
}

#[test]
fn racing_re_signs_on_all_replicas_make_one_timestamp_per_version() {
    // Time runs ten times faster in the replicas, so the 60-second timestamps come due for
    // re-signing every 3 real seconds; reads hammer all replicas across several re-sign
    // points.
    let preload = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("libfaketime is missing: install Debian's faketime (scripts/test does)");
    let db = PgCluster::shared().fresh_database();
    let replicas = Replicas::start(
        3,
        &db,
        &[
            ("LD_PRELOAD", preload),
            ("FAKETIME", "+0 x10"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            ("FAKETIME_NO_CACHE", "1"),
            ("VOUCH_TIMESTAMP_LIFETIME_SECONDS", "60"),
        ],
    );
    let servers = &replicas.servers;
    let repo = ClientRepo::new(&servers[0], "registry.example/replicas/resign");
    repo.publish_initial(&servers[0], &["v1"]);
    let first = version_of(&servers[0].current(&repo.gun, "timestamp").unwrap());

    let seen: Mutex<BTreeMap<u64, BTreeSet<String>>> = Mutex::default();
    let stop = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for t in 0..6 {
            let (s, seen, stop, reads) = (&servers[t % servers.len()], &seen, &stop, &reads);
            let gun = repo.gun.as_str();
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = s.get(&format!("/v2/{gun}/_trust/tuf/timestamp.json"));
                    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
                    let v = version_of(&r.body);
                    seen.lock()
                        .unwrap()
                        .entry(v)
                        .or_default()
                        .insert(sha256_hex(&r.body));
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(Duration::from_secs(12));
        stop.store(true, Ordering::Relaxed);
    });

    let seen = seen.into_inner().unwrap();
    let newest = *seen.keys().next_back().unwrap();
    assert!(
        newest >= first + 3,
        "expected several re-signs in 120 faked seconds, saw versions {first}..={newest} in {} reads",
        reads.load(Ordering::Relaxed)
    );
    for (v, shas) in &seen {
        assert_eq!(
            shas.len(),
            1,
            "timestamp v{v} was served with {} different contents",
            shas.len()
        );
    }
    // And the stored chain has each version once, as every replica serves it.
    for v in first..=newest {
        let path = format!("/v2/{}/_trust/tuf/{v}.timestamp.json", repo.gun);
        let bodies: BTreeSet<Vec<u8>> = servers.iter().map(|s| s.get(&path).body).collect();
        assert_eq!(bodies.len(), 1, "timestamp v{v} differs between replicas");
    }
}

#[test]
fn a_replica_killed_mid_publish_loses_nothing_it_acknowledged() {
    let db = PgCluster::shared().fresh_database();
    let mut replicas = Replicas::start(3, &db, &[]);
    let repo = ClientRepo::new(&replicas.servers[0], "registry.example/replicas/killed");
    repo.publish_initial(&replicas.servers[0], &["v1"]);

    // Publishers on replica 0 only, with its token; it is SIGKILLed while they run.
    let stop = AtomicBool::new(false);
    let acked: Mutex<Vec<(u64, String)>> = Mutex::default();
    let token = replicas.servers[0].admin_token.clone();
    let victim_base = replicas.servers[0].base.clone();
    std::thread::scope(|scope| {
        for p in 0..4 {
            let (stop, acked, repo, token) = (&stop, &acked, &repo, token.as_str());
            let base = victim_base.clone();
            scope.spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let Ok(r) = client
                        .get(format!("{base}/v2/{}/_trust/tuf/targets.json", repo.gun))
                        .send()
                    else {
                        return; // the replica is gone
                    };
                    let Ok(bytes) = r.bytes() else { return };
                    let next = version_of(&bytes) + 1;
                    let tag = format!("k{p}-{n}");
                    let form = reqwest::blocking::multipart::Form::new().part(
                        "files",
                        reqwest::blocking::multipart::Part::bytes(
                            repo.signed_targets(next, &[&tag]),
                        )
                        .file_name("targets"),
                    );
                    let sent = client
                        .post(format!("{base}/v2/{}/_trust/tuf/", repo.gun))
                        .bearer_auth(token)
                        .multipart(form)
                        .send();
                    match sent {
                        Ok(r) if r.status() == StatusCode::OK => {
                            acked.lock().unwrap().push((next, tag));
                        }
                        Ok(_) => {}
                        Err(_) => return, // killed mid-request: not acknowledged
                    }
                }
            });
        }
        // Let some publishes through, then SIGKILL the replica under them.
        let start = Instant::now();
        while acked.lock().unwrap().len() < 10 && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(10));
        }
        replicas.servers[0].kill();
        stop.store(true, Ordering::Relaxed);
    });

    let acked = acked.into_inner().unwrap();
    assert!(
        acked.len() >= 10,
        "only {} publishes were acknowledged",
        acked.len()
    );
    // Every acknowledged publish is readable, with its content, from the other replicas.
    for s in &replicas.servers[1..] {
        for (v, tag) in &acked {
            let r = s.get(&format!("/v2/{}/_trust/tuf/{v}.targets.json", repo.gun));
            assert_eq!(r.status, StatusCode::OK, "acknowledged targets v{v} lost");
            assert!(
                r.text().contains(tag.as_str()),
                "targets v{v} is not what was acknowledged"
            );
        }
    }
    // And a replica started again on the same database carries on.
    replicas.add();
    let s = replicas.servers.last().unwrap();
    let next = current_targets_version(s, &repo.gun) + 1;
    assert_eq!(try_publish(s, &repo, next, "after-kill"), Ok(true));
}

#[test]
fn replicas_ride_out_a_postgresql_restart_with_503s_and_lose_nothing() {
    let cluster = PgCluster::start();
    let db = cluster.fresh_database();
    let replicas = Replicas::start(2, &db, &[("VOUCH_READ_CACHE_BYTES", "0")]);
    let servers = &replicas.servers;
    let repo = ClientRepo::new(&servers[0], "registry.example/replicas/restart");
    repo.publish_initial(&servers[0], &["v1"]);

    let load = Load::default();
    load.through(servers, 4, &repo, || {
        cluster.stop();
        std::thread::sleep(Duration::from_secs(2));
        cluster.start_again();
    });
    let statuses = load.check(servers, &repo);
    assert!(
        statuses.get(&503).is_some_and(|n| *n > 0),
        "no request met the outage: {statuses:?}"
    );
    for s in servers {
        assert_eq!(s.get("/readyz").status, StatusCode::OK);
    }
}

#[test]
fn readiness_follows_the_database() {
    let cluster = PgCluster::start();
    let db = cluster.fresh_database();
    let replicas = Replicas::start(1, &db, &[]);
    let s = &replicas.servers[0];
    assert_eq!(s.get("/readyz").status, StatusCode::OK);
    cluster.stop();
    let r = s.get("/readyz");
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    cluster.start_again();
    let start = Instant::now();
    while s.get("/readyz").status != StatusCode::OK {
        assert!(start.elapsed() < Duration::from_secs(20), "still not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn migrate_store_carries_every_version_changefeed_entry_and_key_into_postgresql() {
    // A populated SQLite deployment: two repositories, several versions, a rotation.
    let mut old = Server::start();
    let repos: Vec<ClientRepo> = ["registry.example/migrate/a", "registry.example/migrate/b"]
        .iter()
        .map(|gun| {
            let repo = ClientRepo::new(&old, gun);
            repo.publish_initial(&old, &["v1"]);
            for v in 2..=4 {
                let r = old.publish(gun, &[("targets", repo.signed_targets(v, &["v1", "v2"]))]);
                assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            }
            repo
        })
        .collect();
    let rotated = old
        .client
        .post(old.url(&format!("/v2/{}/_trust/tuf/snapshot.key", repos[0].gun)))
        .bearer_auth(&old.admin_token)
        .send()
        .unwrap();
    assert_eq!(rotated.status(), StatusCode::OK);
    let feed_before = old.get_admin("/v2/_trust/changefeed?records=100").body;
    let mut files_before = Vec::new();
    for repo in &repos {
        for role in ["root", "targets", "snapshot", "timestamp"] {
            let newest = version_of(&old.current(&repo.gun, role).unwrap());
            for v in 1..=newest {
                let path = format!("/v2/{}/_trust/tuf/{v}.{role}.json", repo.gun);
                files_before.push((path.clone(), old.get(&path).body));
            }
        }
    }
    let trusted = tempfile::tempdir().unwrap();
    let root_file = trusted.path().join("root.json");
    std::fs::write(&root_file, old.current(&repos[0].gun, "root").unwrap()).unwrap();
    let py_dir = tempfile::tempdir().unwrap();
    let before = python_refresh(
        &old.tuf_url(&repos[0].gun, ""),
        &root_file,
        py_dir.path(),
        &["v2"],
    );
    assert!(old.terminate(), "the SQLite server stops cleanly");

    let db = PgCluster::shared().fresh_database();
    let sqlite = format!("sqlite:{}", old.data_dir.join("vouch.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-server"))
        .args(["migrate-store", "--from", &sqlite, "--to", &db])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verified"), "{stdout}");
    assert!(
        !stdout.contains(PgCluster::shared().superuser_password()),
        "password shown: {stdout}"
    );
    // A second run refuses to copy into a database that holds data, and changes nothing.
    let again = Command::new(env!("CARGO_BIN_EXE_vouch-server"))
        .args(["migrate-store", "--from", &sqlite, "--to", &db])
        .output()
        .unwrap();
    let refused = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "{refused}");
    assert!(refused.contains("empty"), "{refused}");

    // The server on PostgreSQL, with the old data directory's key-encryption key.
    let kek = old.data_dir.join("kek").display().to_string();
    let new = Server::start_with(&[
        ("VOUCH_DATABASE_URL", db.as_str()),
        ("VOUCH_KEK_FILE", kek.as_str()),
    ]);
    for (path, bytes) in &files_before {
        assert_eq!(&new.get(path).body, bytes, "{path} changed in the move");
    }
    assert_eq!(
        new.get_admin("/v2/_trust/changefeed?records=100").body,
        feed_before,
        "the changefeed moved with its ids"
    );
    // python-tuf carries on from its trusted state, reading the same bytes.
    let after = python_refresh(
        &new.tuf_url(&repos[0].gun, ""),
        &root_file,
        py_dir.path(),
        &["v2"],
    );
    assert_eq!(before, after);
    // The online keys moved: the server signs new versions with them, and the pending
    // rotation is still pending.
    let next = current_targets_version(&new, &repos[1].gun) + 1;
    assert_eq!(try_publish(&new, &repos[1], next, "after-move"), Ok(true));
    assert_eq!(
        new.online_key(&repos[1].gun, "timestamp"),
        repos[1].timestamp_key
    );
    drop(old);
}

#[test]
fn pg_dump_and_pg_restore_bring_back_a_working_server() {
    let cluster = PgCluster::shared();
    let db = cluster.fresh_database();
    let mut replicas = Replicas::start(1, &db, &[]);
    let s = &replicas.servers[0];
    let repo = ClientRepo::new(s, "registry.example/replicas/dumped");
    repo.publish_initial(s, &["v1"]);
    assert_eq!(try_publish(s, &repo, 2, "v2"), Ok(true));
    let mut files = Vec::new();
    for role in ["root", "targets", "snapshot", "timestamp"] {
        let path = format!("/v2/{}/_trust/tuf/{role}.json", repo.gun);
        files.push((path.clone(), s.get(&path).body));
    }
    let feed = s.get_admin("/v2/_trust/changefeed?records=100").body;

    let dump = tempfile::tempdir().unwrap();
    let file = dump.path().join("vouch.dump");
    let ok = Command::new(cluster.bin("pg_dump"))
        .args(["-Fc", "-d", &db, "-f"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(ok.success(), "pg_dump");
    let restored = cluster.fresh_database();
    let ok = Command::new(cluster.bin("pg_restore"))
        .args(["--no-owner", "-d", &restored])
        .arg(&file)
        .status()
        .unwrap();
    assert!(ok.success(), "pg_restore");

    // A replica on the restored database, with the same key-encryption key.
    replicas.env[0].1 = restored;
    replicas.servers[0].kill();
    replicas.add();
    let s = replicas.servers.last().unwrap();
    for (path, bytes) in &files {
        assert_eq!(&s.get(path).body, bytes, "{path} after restore");
    }
    assert_eq!(s.get_admin("/v2/_trust/changefeed?records=100").body, feed);
    assert_eq!(
        try_publish(s, &repo, 3, "v3"),
        Ok(true),
        "signs with the restored keys"
    );
}

/// A PgBouncer in transaction mode in front of `cluster`, with fewer server connections than
/// the replicas have clients, so their transactions share server connections.
struct Bouncer {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Bouncer {
    fn start(cluster: &PgCluster) -> Self {
        let bin = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("pgbouncer is missing: install Debian's pgbouncer (scripts/test does)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(
            dir.path().join("userlist.txt"),
            format!("\"postgres\" \"{}\"\n", cluster.superuser_password()),
        )
        .unwrap();
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port={}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {port}\nunix_socket_dir =\nauth_type = scram-sha-256\n\
                 auth_file = {}\npool_mode = transaction\ndefault_pool_size = 2\n\
                 max_client_conn = 200\nlogfile = {}\n",
                cluster.port(),
                dir.path().join("userlist.txt").display(),
                dir.path().join("pgbouncer.log").display(),
            ),
        )
        .unwrap();
        // PgBouncer refuses to run as root.
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        if root {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
        }
        let mut cmd = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", bin]);
            c
        } else {
            Command::new(bin)
        };
        let child = cmd.arg("-q").arg(&ini).spawn().unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "pgbouncer did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Bouncer {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

#[test]
fn replicas_work_through_pgbouncer_in_transaction_mode() {
    let cluster = PgCluster::shared();
    let direct = cluster.fresh_database();
    let bouncer = Bouncer::start(cluster);
    let db_name = direct.rsplit('/').next().unwrap();
    let url = format!(
        "postgres://postgres:{}@127.0.0.1:{}/{db_name}?sslmode=disable",
        cluster.superuser_password(),
        bouncer.port
    );
    let replicas = Replicas::start(2, &url, &[]);
    let servers = &replicas.servers;
    let repos: Vec<ClientRepo> = (0..4)
        .map(|g| {
            let s = &servers[g % 2];
            let repo = ClientRepo::new(s, &format!("registry.example/bouncer/app{g}"));
            repo.publish_initial(s, &["v1"]);
            repo
        })
        .collect();
    // Eight publishers over two replicas and two server connections.
    std::thread::scope(|scope| {
        for p in 0..8 {
            let (s, repo) = (&servers[p % 2], &repos[p % 4]);
            scope.spawn(move || {
                let mut done = 0;
                let mut attempts = 0;
                while done < 5 {
                    attempts += 1;
                    assert!(attempts < 1000, "publisher {p} made no progress");
                    let next = current_targets_version(s, &repo.gun) + 1;
                    if try_publish(s, repo, next, &format!("b{p}-{done}")) == Ok(true) {
                        done += 1;
                    }
                }
            });
        }
    });
    for repo in &repos {
        for s in servers {
            assert_eq!(current_targets_version(s, &repo.gun), 11, "{}", repo.gun);
            let r = s.get_admin(&format!("/v2/{}/_trust/changefeed?records=100", repo.gun));
            assert_eq!(r.status, StatusCode::OK);
        }
    }
}

/// Runs `vouch-server` on `url` until it prints its address or exits; returns the exit
/// status (None when it started) and what it printed on stderr.
fn start_outcome(url: &str) -> (Option<i32>, String) {
    start_outcome_with(url, &[])
}

/// [`start_outcome`] with extra command-line arguments.
fn start_outcome_with(url: &str, args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouch-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            url,
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return (status.code(), err);
        }
        if start.elapsed() > Duration::from_secs(5) {
            child.kill().unwrap();
            child.wait().unwrap();
            return (None, String::new());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tls_to_postgresql_is_verified_as_sslmode_asks() {
    let (ca, cert, key) = common::postgres::test_ca_and_server_cert();
    let cluster = PgCluster::start_with_tls(&cert, &key);
    let db = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let (other_ca, _, _) = common::postgres::test_ca_and_server_cert();
    let other_ca_file = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca_file, &other_ca).unwrap();
    let with = |query: &str| format!("{}?{query}", db.replace("127.0.0.1", "localhost"));

    // verify-full against the right CA: a working server.
    let url = with(&format!(
        "sslmode=verify-full&sslrootcert={}",
        ca_file.display()
    ));
    let replicas = Replicas::start(1, &url, &[]);
    let s = &replicas.servers[0];
    let repo = ClientRepo::new(s, "registry.example/tls/app");
    repo.publish_initial(s, &["v1"]);
    assert_eq!(try_publish(s, &repo, 2, "v2"), Ok(true));
    assert_eq!(s.get("/readyz").status, StatusCode::OK);

    // require: encrypted, certificate unchecked.
    let kek = replicas.env[1].1.as_str();
    let (code, err) = start_outcome_with(&with("sslmode=require"), &["--kek-file", kek]);
    assert_eq!(code, None, "{err}");
    // The server refuses plain connections (pg_hba has only hostssl): a refusal that a retry
    // will not change, named with the password hidden.
    let (code, err) = start_outcome(&with("sslmode=disable"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no pg_hba.conf entry") || err.contains("28000"),
        "{err}"
    );
    assert!(!err.contains(cluster.superuser_password()), "{err}");
    // verify-full with another CA: the handshake fails, nothing is sent.
    let (code, err) = start_outcome(&with(&format!(
        "sslmode=verify-full&sslrootcert={}",
        other_ca_file.display()
    )));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // verify-full without a CA file is a configuration error.
    let (code, err) = start_outcome(&with("sslmode=verify-full"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("sslrootcert"), "{err}");
    assert!(!err.contains(cluster.superuser_password()), "{err}");
}

#[test]
fn a_server_with_another_key_encryption_key_refuses_to_start() {
    let db = PgCluster::shared().fresh_database();
    let replicas = Replicas::start(1, &db, &[]);
    let s = &replicas.servers[0];
    let repo = ClientRepo::new(s, "registry.example/replicas/kek");
    repo.publish_initial(s, &["v1"]);

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kek");
    let (code, err) = start_outcome_with(&db, &["--kek-file", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("missing, but the store already holds online keys"),
        "{err}"
    );
    assert!(
        !missing.exists(),
        "no KEK was made up for a store that has keys"
    );

    let other = dir.path().join("other-kek");
    std::fs::write(&other, format!("{}\n", "ab".repeat(32))).unwrap();
    let (code, err) = start_outcome_with(&db, &["--kek-file", other.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("does not open the store's online keys"),
        "{err}"
    );

    // The right one starts.
    let (code, err) = start_outcome_with(&db, &["--kek-file", &replicas.env[1].1]);
    assert_eq!(code, None, "{err}");
}

#[test]
fn a_role_without_create_runs_a_migrated_schema() {
    let cluster = PgCluster::shared();
    let db = cluster.fresh_database();
    let name = db.rsplit('/').next().unwrap().to_owned();
    // The first start, as the owner, creates the tables.
    let (code, err) = start_outcome(&db);
    assert_eq!(code, None, "{err}");
    cluster.psql(
        &name,
        "CREATE ROLE vouch_rw LOGIN PASSWORD 'rw-secret';
         REVOKE CREATE ON SCHEMA public FROM PUBLIC;
         GRANT USAGE ON SCHEMA public TO vouch_rw;
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO vouch_rw;
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO vouch_rw;",
    );
    let url = format!(
        "postgres://vouch_rw:rw-secret@127.0.0.1:{}/{name}?sslmode=disable",
        cluster.port()
    );
    let replicas = Replicas::start(1, &url, &[]);
    let s = &replicas.servers[0];
    let repo = ClientRepo::new(s, "registry.example/replicas/least-privilege");
    repo.publish_initial(s, &["v1"]);
    assert_eq!(try_publish(s, &repo, 2, "v2"), Ok(true));
    // The role really cannot create tables.
    let out = cluster
        .psql_command(&name)
        .env("PGUSER", "vouch_rw")
        .env("PGPASSWORD", "rw-secret")
        .args(["-c", "CREATE TABLE nope (x int)"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "vouch_rw could create a table");
}

#[test]
fn rotate_kek_works_on_postgresql_and_backup_points_at_pg_dump() {
    let db = PgCluster::shared().fresh_database();
    let mut replicas = Replicas::start(1, &db, &[]);
    let repo = ClientRepo::new(&replicas.servers[0], "registry.example/replicas/rotate-kek");
    repo.publish_initial(&replicas.servers[0], &["v1"]);
    assert!(replicas.servers[0].terminate(), "SIGTERM exits 0");

    let kek = replicas.env[1].1.clone();
    let before = std::fs::read(&kek).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-server"))
        .args(["rotate-kek", "--database-url", &db, "--kek-file", &kek])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        std::fs::read(&kek).unwrap(),
        before,
        "a new KEK was written"
    );

    // A server on the new KEK signs with the re-sealed keys; `backup` points at pg_dump.
    replicas.add();
    let s = replicas.servers.last().unwrap();
    assert_eq!(try_publish(s, &repo, 2, "v2"), Ok(true));
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-server"))
        .args([
            "backup",
            "--to",
            "/nonexistent/copy.db",
            "--database-url",
            &db,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
}

#[test]
fn sigterm_on_a_postgresql_server_shuts_down_without_a_panic() {
    // The HTTP client's TLS stack needs a crypto provider chosen once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = PgCluster::shared().fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouch-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db,
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let base = first.split("http://").nth(1).unwrap().trim().to_owned();
    // Use the pool (and let the changefeed follower run) before stopping.
    for _ in 0..3 {
        let r = reqwest::blocking::get(format!("http://{base}/readyz")).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        std::thread::sleep(Duration::from_millis(300));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn replicas_follow_a_failover_to_a_promoted_standby_and_lose_nothing() {
    let primary = PgCluster::start();
    let db = primary.fresh_database();
    let name = db.rsplit('/').next().unwrap().to_owned();
    let standby = PgCluster::standby_of(&primary);
    // Synchronous replication: a commit returns once the standby has it.
    primary.psql(
        "postgres",
        "ALTER SYSTEM SET synchronous_standby_names = '*'",
    );
    primary.psql("postgres", "SELECT pg_reload_conf()");
    let synchronous = "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'";
    let start = Instant::now();
    while primary.psql("postgres", synchronous) != "1" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the standby never became synchronous"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Both hosts in the URL; new connections skip the one that does not take writes.
    let url = format!(
        "postgres://postgres:{}@127.0.0.1:{},127.0.0.1:{}/{name}?sslmode=disable&target_session_attrs=read-write",
        primary.superuser_password(),
        primary.port(),
        standby.port()
    );
    let replicas = Replicas::start(2, &url, &[("VOUCH_READ_CACHE_BYTES", "0")]);
    let servers = &replicas.servers;
    let repo = ClientRepo::new(&servers[0], "registry.example/replicas/failover");
    repo.publish_initial(&servers[0], &["v1"]);

    let load = Load::default();
    // The primary dies; the standby is promoted and takes the writes.
    load.through(servers, 2, &repo, || {
        primary.crash();
        std::thread::sleep(Duration::from_millis(500));
        standby.promote();
    });
    load.check(servers, &repo);
}

/// Publishers reading the current targets and publishing the next through a server while the
/// database behind it fails: what was acknowledged, and every status seen.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    acked: Mutex<Vec<(u64, String)>>,
    statuses: Mutex<BTreeMap<u16, u64>>,
}

impl Load {
    /// Runs `publishers` publishers spread over `servers`; once 10 publishes are
    /// acknowledged, runs `fault`, then waits until the replicas, recovering on their own,
    /// acknowledge 10 more, and stops the publishers.
    fn through(
        &self,
        servers: &[Server],
        publishers: usize,
        repo: &ClientRepo,
        fault: impl FnOnce(),
    ) {
        std::thread::scope(|scope| {
            for p in 0..publishers {
                let s = &servers[p % servers.len()];
                scope.spawn(move || self.run(s, repo, &format!("p{p}")));
            }
            self.wait_for(10);
            fault();
            self.wait_for(self.acknowledged() + 10);
            self.stop.store(true, Ordering::Relaxed);
        });
    }

    /// Publishes through `s` until stopped; only 200, 409 and 503 with `Retry-After` are
    /// allowed.
    fn run(&self, s: &Server, repo: &ClientRepo, name: &str) {
        let count = |status: StatusCode| {
            *self
                .statuses
                .lock()
                .unwrap()
                .entry(status.as_u16())
                .or_default() += 1;
        };
        let mut n = 0;
        while !self.stop.load(Ordering::Relaxed) {
            n += 1;
            let r = s.get(&format!("/v2/{}/_trust/tuf/targets.json", repo.gun));
            count(r.status);
            if r.status == StatusCode::SERVICE_UNAVAILABLE {
                assert!(
                    r.headers.contains_key("retry-after"),
                    "503 without Retry-After"
                );
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            assert_eq!(
                r.status,
                StatusCode::OK,
                "read during the outage: {}",
                r.text()
            );
            let next = version_of(&r.body) + 1;
            let tag = format!("{name}-{n}");
            let pr = s.publish(
                &repo.gun,
                &[("targets", repo.signed_targets(next, &[&tag]))],
            );
            count(pr.status);
            match pr.status {
                StatusCode::OK => self.acked.lock().unwrap().push((next, tag)),
                StatusCode::CONFLICT => {}
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(
                        pr.headers.contains_key("retry-after"),
                        "503 without Retry-After"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => panic!("publish during the outage: {other} {}", pr.text()),
            }
        }
    }

    fn acknowledged(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `n` publishes were acknowledged.
    fn wait_for(&self, n: usize) {
        let start = Instant::now();
        while self.acknowledged() < n {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "publishes stalled"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts no 500 was seen and every acknowledged publish is readable, with its
    /// content, from every server; returns the statuses seen.
    fn check(self, servers: &[Server], repo: &ClientRepo) -> BTreeMap<u16, u64> {
        let statuses = self.statuses.into_inner().unwrap();
        assert!(
            !statuses.contains_key(&500),
            "500s during the outage: {statuses:?}"
        );
        for (v, tag) in self.acked.into_inner().unwrap() {
            for s in servers {
                let r = s.get(&format!("/v2/{}/_trust/tuf/{v}.targets.json", repo.gun));
                assert_eq!(r.status, StatusCode::OK, "acknowledged targets v{v} lost");
                assert!(
                    r.text().contains(tag.as_str()),
                    "targets v{v} is not what was acknowledged"
                );
            }
        }
        statuses
    }
}

/// The ids of every changefeed entry of `gun`, oldest first, as `server` lists them.
fn changefeed_ids(server: &Server, gun: &str) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut after = 0u64;
    loop {
        let r = server.get_admin(&format!(
            "/v2/{gun}/_trust/changefeed?change_id={after}&records=100"
        ));
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let page = body["records"].as_array().unwrap().clone();
        for rec in &page {
            after = rec["ID"].as_str().unwrap().parse().unwrap();
            ids.push(after);
        }
        if page.len() < 100 {
            return ids;
        }
    }
}

/// Event streams over replicas: concurrent publishers on two replicas, a stream on each
/// replica gets exactly the repository's changefeed, in id order (nothing skipped by an id
/// that became visible late); a consumer that leaves one replica resumes on the other from
/// its last id with exactly what it missed, then live events written through either.
#[test]
fn event_streams_over_replicas_miss_nothing_and_resume_on_another_replica() {
    let db = PgCluster::shared().fresh_database();
    let replicas = Replicas::start(2, &db, &[("VOUCH_EVENTS_KEEP_ALIVE_SECONDS", "1")]);
    let (a, b) = (&replicas.servers[0], &replicas.servers[1]);
    let gun = "registry.example/replicas/events";
    let path = common::events_path(Some(gun));
    let on_a = common::EventStream::open(a, &path, Some(&a.admin_token), None).unwrap();
    let on_b = common::EventStream::open(b, &path, Some(&b.admin_token), None).unwrap();
    let repo = ClientRepo::new(a, gun);
    repo.publish_initial(a, &["v1"]);

    // Four publishers, two per replica, racing for versions.
    let published = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for p in 0..4 {
            let (server, repo, published) = (&replicas.servers[p % 2], &repo, &published);
            scope.spawn(move || {
                for n in 0..15 {
                    let next = current_targets_version(server, gun) + 1;
                    if try_publish(server, repo, next, &format!("p{p}-{n}")) == Ok(true) {
                        published.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let feed = changefeed_ids(a, gun);
    assert_eq!(feed.len() as u64, 1 + published.load(Ordering::Relaxed));
    for stream in [&on_a, &on_b] {
        let got: Vec<u64> = stream.events(feed.len()).iter().map(|e| e.id).collect();
        assert_eq!(got, feed, "a stream differs from the changefeed");
        stream.quiet(Duration::from_millis(500));
    }

    // Leave replica B after its events, write more through A, resume on A.
    let last = *feed.last().unwrap();
    drop(on_b);
    let mut version = current_targets_version(a, gun);
    for _ in 0..20 {
        version += 1;
        assert_eq!(try_publish(a, &repo, version, "more"), Ok(true));
    }
    let resumed = common::EventStream::open(a, &path, Some(&a.admin_token), Some(last)).unwrap();
    let missed = resumed.events(20);
    assert_eq!(
        missed.iter().map(|e| e.id).collect::<Vec<_>>(),
        changefeed_ids(a, gun)[feed.len()..].to_vec()
    );
    // Live ones written through B reach the stream on A.
    version += 1;
    assert_eq!(try_publish(b, &repo, version, "live"), Ok(true));
    let live = resumed.events(1).remove(0);
    assert!(live.id > missed.last().unwrap().id);
    assert!(live.roles.contains(&("targets".to_owned(), version)));
}
