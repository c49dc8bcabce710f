//! Every rejected publish answers with the right status and error code, names what was
//! wrong, and changes nothing: the repository's current files and the changefeed are the same
//! afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{gen, key_of, ClientRepo, Resp, Server};
use reqwest::StatusCode;
use vouch_tuf::metadata::{DelegatedRole, Delegations, MetaFile, Metadata, Snapshot};
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{RoleName, TopLevelRole, Version};

const GUN: &str = "registry.example.com/org/app";

/// Everything a client can observe of a repository.
fn observe(s: &Server, gun: &str) -> Vec<Option<Vec<u8>>> {
    let mut v: Vec<Option<Vec<u8>>> = [
        "root",
        "targets",
        "snapshot",
        "timestamp",
        "targets/releases",
    ]
    .iter()
    .map(|r| s.current(gun, r))
    .collect();
    let feed = s.get_admin(&format!("/v2/{gun}/_trust/changefeed?records=100"));
    v.push(Some(feed.body));
    v
}

fn assert_rejected(
    s: &Server,
    gun: &str,
    resp: Resp,
    status: StatusCode,
    code: &str,
    mentions: &str,
    before: &[Option<Vec<u8>>],
) {
    assert_eq!(resp.status, status, "{}", resp.text());
    assert_eq!(resp.error_code(), code, "{}", resp.text());
    let msg = resp.error_message();
    assert!(
        msg.contains(mentions),
        "message {msg:?} should mention {mentions:?}"
    );
    assert_eq!(
        observe(s, gun),
        before,
        "a rejected publish changed the repository"
    );
}

/// A server with an initialised repository (root v1, targets v1 with `v1`).
fn initialised() -> (Server, ClientRepo) {
    common::server_with_repo(GUN)
}

#[test]
fn malformed_uploads() {
    let (s, c) = initialised();
    let before = observe(&s, GUN);

    let r = s.publish(GUN, &[("targets", b"{not json".to_vec())]);
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "targets",
        &before,
    );

    // Root bytes uploaded as targets: wrong _type.
    let r = s.publish(GUN, &[("targets", c.signed_root(2))]);
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "_type",
        &before,
    );

    // Not multipart at all.
    let r = s.post_raw(GUN, "application/json", "{}");
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "MALFORMED_REQUEST",
        "multipart",
        &before,
    );

    // Multipart with a broken body.
    let r = s.post_raw(
        GUN,
        "multipart/form-data; boundary=XYZ",
        "--XYZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"targets\"\r\n\r\nabc",
    );
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "MALFORMED_REQUEST",
        "multipart",
        &before,
    );

    // The server writes the timestamp; an uploaded one is refused, not dropped.
    let r = s.publish(
        GUN,
        &[
            ("targets", c.signed_targets(2, &["v2"])),
            ("timestamp", b"{}".to_vec()),
        ],
    );
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "timestamp",
        &before,
    );
}

#[test]
fn signature_rejections() {
    let (s, c) = initialised();
    let before = observe(&s, GUN);

    // Signed by a key root does not know.
    let stranger = gen();
    let t = Metadata::signed_by(c.targets(2, &["v2"]), &[&stranger])
        .unwrap()
        .to_bytes();
    let r = s.publish(GUN, &[("targets", t)]);
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "0 valid signature",
        &before,
    );

    // Below threshold: root v2 demands two targets signatures, targets carries one.
    let second = gen();
    let mut root2 = c.root(2);
    root2.add_key(TopLevelRole::Targets, key_of(&second));
    root2.set_threshold(
        TopLevelRole::Targets,
        vouch_tuf::types::Threshold::new(2).unwrap(),
    );
    let root2 = Metadata::signed_by(root2, &[&c.root_key])
        .unwrap()
        .to_bytes();
    let t = c.signed_targets(2, &["v2"]);
    let r = s.publish(GUN, &[("root", root2.clone()), ("targets", t)]);
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "1 valid signature",
        &before,
    );

    // The same signature listed twice under one key id to reach that threshold.
    let md = Metadata::signed_by(c.targets(2, &["v2"]), &[&c.targets_key]).unwrap();
    let text = String::from_utf8(md.to_bytes()).unwrap();
    let start = text.find("{\"keyid\"").unwrap();
    let end = start + text[start..].find('}').unwrap() + 1;
    let sig = &text[start..end];
    let doubled = text.replacen(sig, &format!("{sig},{sig}"), 1);
    let r = s.publish(GUN, &[("root", root2), ("targets", doubled.into_bytes())]);
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "two signatures",
        &before,
    );

    // A root not signed by the previous root's keys.
    let other = gen();
    let mut hijack = c.root(2);
    hijack.remove_key(TopLevelRole::Root, &key_of(&c.root_key).key_id());
    hijack.add_key(TopLevelRole::Root, key_of(&other));
    let hijack = Metadata::signed_by(hijack, &[&other]).unwrap().to_bytes();
    let r = s.publish(GUN, &[("root", hijack)]);
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "previous root",
        &before,
    );
}

#[test]
fn version_rejections() {
    let (s, c) = initialised();
    let r = s.publish(GUN, &[("targets", c.signed_targets(2, &["v2"]))]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let before = observe(&s, GUN);

    // Replay of the stored version, and rollback to an older one.
    let r = s.publish(GUN, &[("targets", c.signed_targets(2, &["v2"]))]);
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::CONFLICT,
        "VERSION_CONFLICT",
        "not newer",
        &before,
    );
    let r = s.publish(GUN, &[("targets", c.signed_targets(1, &["evil"]))]);
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::CONFLICT,
        "VERSION_CONFLICT",
        "not newer",
        &before,
    );

    // Root version gap: 3 after 1.
    let r = s.publish(GUN, &[("root", c.signed_root(3))]);
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "exactly 2",
        &before,
    );

    // Expired metadata.
    let mut t = c.targets(3, &["v3"]);
    t.common.expires = Timestamp::parse("2001-01-01T00:00:00Z").unwrap();
    let t = Metadata::signed_by(t, &[&c.targets_key])
        .unwrap()
        .to_bytes();
    let r = s.publish(GUN, &[("targets", t)]);
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "expired",
        &before,
    );
    // Each refusal counted under its reason: the 409s and the root version gap as `version`,
    // the other 400 by its check.
    let m = metrics(&s);
    common::assert_metric(&m, "vouch_publish_rejections_total{reason=\"version\"} 3");
    common::assert_metric(&m, "vouch_publish_rejections_total{reason=\"expired\"} 1");
}

#[test]
fn client_snapshot_that_disagrees_is_rejected() {
    let s = Server::start();
    let gun = "example.com/client-snapshot";
    let c = ClientRepo::new(&s, gun);
    let snap_key = gen();
    let mut root = c.root(1);
    root.remove_key(TopLevelRole::Snapshot, &c.snapshot_key.key_id());
    root.add_key(TopLevelRole::Snapshot, key_of(&snap_key));
    let root = Metadata::signed_by(root, &[&c.root_key])
        .unwrap()
        .to_bytes();
    let t1 = c.signed_targets(1, &["v1"]);
    let snapshot = |entries: &[(u64, &[u8])], version: u64| {
        let mut sn = Snapshot::new(c.expires);
        sn.common.version = Version::new(version).unwrap();
        for (v, bytes) in entries {
            sn.meta.insert(
                "targets.json".into(),
                MetaFile::for_bytes(Version::new(*v).unwrap(), bytes),
            );
        }
        Metadata::signed_by(sn, &[&snap_key]).unwrap().to_bytes()
    };
    let r = s.publish(
        gun,
        &[
            ("root", root),
            ("targets", t1.clone()),
            ("snapshot", snapshot(&[(1, &t1)], 1)),
        ],
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let before = observe(&s, gun);

    let t2 = c.signed_targets(2, &["v1", "v2"]);
    // Snapshot still naming targets version 1.
    let r = s.publish(
        gun,
        &[
            ("targets", t2.clone()),
            ("snapshot", snapshot(&[(1, &t1)], 2)),
        ],
    );
    assert_rejected(
        &s,
        gun,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "targets.json version 1",
        &before,
    );
    // No snapshot at all: the server does not hold its key.
    let r = s.publish(gun, &[("targets", t2.clone())]);
    assert_rejected(
        &s,
        gun,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "snapshot",
        &before,
    );
    // Consistent: accepted, and served exactly as uploaded.
    let good = snapshot(&[(2, &t2)], 2);
    let r = s.publish(gun, &[("targets", t2), ("snapshot", good.clone())]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(s.current(gun, "snapshot").unwrap(), good);
}

#[test]
fn delegated_role_rejections() {
    let (s, c) = initialised();
    let ci = gen();
    let kci = key_of(&ci);
    let mut t = c.targets(2, &["v1"]);
    t.delegations = Some(Delegations {
        keys: [(kci.key_id(), kci.clone())].into_iter().collect(),
        roles: vec![DelegatedRole::with_paths(
            RoleName::new("targets/releases").unwrap(),
            vec![kci.key_id()],
            vec!["v*".into()],
        )],
        extra: Default::default(),
    });
    let t = Metadata::signed_by(t, &[&c.targets_key])
        .unwrap()
        .to_bytes();
    let r = s.publish(GUN, &[("targets", t)]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let before = observe(&s, GUN);

    let releases = |tags: &[&str], k: &vouch_tuf::crypto::PrivateKey| {
        Metadata::signed_by(c.targets(1, tags), &[k])
            .unwrap()
            .to_bytes()
    };
    let r = s.publish(
        GUN,
        &[("targets/releases", releases(&["v2"], &c.targets_key))],
    );
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "targets/releases",
        &before,
    );
    let r = s.publish(GUN, &[("targets/releases", releases(&["latest"], &ci))]);
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "outside the paths",
        &before,
    );

    let good = releases(&["v2"], &ci);
    let r = s.publish(GUN, &[("targets/releases", good.clone())]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Served under its percent-encoded name, by version too, exactly as uploaded.
    let got = s.get(&format!("/v2/{GUN}/_trust/tuf/1.targets%2Freleases.json"));
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, good);
    assert_eq!(
        s.get(&format!("/v2/{GUN}/_trust/tuf/targets%2Freleases.json"))
            .body,
        good
    );
}

/// A role signed by the uploader's own key that delegates to itself (or a pair delegating
/// to each other) is refused: only a push token, no repository key, is needed to try.
#[test]
fn self_delegated_roles_are_refused_and_nothing_is_stored() {
    let (s, c) = initialised();
    let before = observe(&s, GUN);
    let attacker = gen();
    let ka = key_of(&attacker);
    let delegating = |version: u64, to: &[&str]| {
        let mut t = c.targets(1, &["v1"]);
        t.common.version = Version::new(version).unwrap();
        t.delegations = Some(Delegations {
            keys: [(ka.key_id(), ka.clone())].into_iter().collect(),
            roles: to
                .iter()
                .map(|n| {
                    DelegatedRole::with_paths(
                        RoleName::new(*n).unwrap(),
                        vec![ka.key_id()],
                        vec!["*".into()],
                    )
                })
                .collect(),
            extra: Default::default(),
        });
        Metadata::signed_by(t, &[&attacker]).unwrap().to_bytes()
    };
    // Squatting `targets/releases` at the highest version, before its owner delegates it.
    let r = s.publish(
        GUN,
        &[(
            "targets/releases",
            delegating(i64::MAX as u64, &["targets/releases"]),
        )],
    );
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "not reachable from targets",
        &before,
    );
    let r = s.publish(
        GUN,
        &[("a", delegating(1, &["b"])), ("b", delegating(1, &["a"]))],
    );
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "not reachable from targets",
        &before,
    );
    assert!(s.current(GUN, "a").is_none() && s.current(GUN, "b").is_none());
}

/// A version no backend can store is a 400 naming it, not a 500 from the store.
#[test]
fn versions_beyond_the_storable_bound_are_400() {
    let (s, c) = initialised();
    let before = observe(&s, GUN);
    let r = s.publish(GUN, &[("targets", c.signed_targets(1 << 63, &["v2"]))]);
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "highest version stored",
        &before,
    );
}

/// Trust data is written only under a repository's canonical name: another spelling of the
/// same repository is refused (400 naming the canonical one) and nothing is created.
#[test]
fn writes_under_a_non_canonical_name_are_refused() {
    let s = common::Server::start();
    for (spelling, canonical) in [
        (
            "Registry.Example.com/org/app",
            "registry.example.com/org/app",
        ),
        (
            "registry.example.com:443/org/app",
            "registry.example.com/org/app",
        ),
        ("index.docker.io/library/nginx", "docker.io/library/nginx"),
        ("docker.io/nginx", "docker.io/library/nginx"),
    ] {
        let key = s.get_admin(&format!("/v2/{spelling}/_trust/tuf/timestamp.key"));
        assert_eq!(key.status, StatusCode::BAD_REQUEST, "{}", key.text());
        assert_eq!(key.error_code(), "NAME_INVALID");
        assert!(key.error_message().contains(canonical), "{}", key.text());
        let r = s.publish(spelling, &[("targets", b"{}".to_vec())]);
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        assert!(r.error_message().contains(canonical), "{}", r.text());
        assert!(s.current(spelling, "root").is_none());
    }
    // The canonical names themselves are fine.
    let c = ClientRepo::new(&s, "docker.io/library/nginx");
    c.publish_initial(&s, &["v1"]);
}

#[test]
fn oversized_body_is_413() {
    let s = Server::start_with(&[("VOUCH_MAX_BODY_BYTES", "65536")]);
    let c = ClientRepo::new(&s, GUN);
    c.publish_initial(&s, &["v1"]);
    let before = observe(&s, GUN);
    let r = s.publish(GUN, &[("targets", vec![b' '; 200_000])]);
    assert_rejected(
        &s,
        GUN,
        r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "SIZE_INVALID",
        "limit",
        &before,
    );
    let m = metrics(&s);
    common::assert_metric(&m, "vouch_publish_rejections_total{reason=\"size\"} 1");
}

/// The server's `/metrics` text.
fn metrics(s: &Server) -> String {
    s.get("/metrics").text()
}

#[test]
fn requests_stuck_in_storage_get_503_and_a_publish_keeps_its_slot() {
    let s = Server::start_with(&[
        ("VOUCH_REQUEST_TIMEOUT_SECONDS", "1"),
        ("VOUCH_MAX_PUBLISHES_PER_GUN", "1"),
    ]);
    let c = ClientRepo::new(&s, GUN);
    c.publish_initial(&s, &["v1"]);
    // Another process holds the database's write lock: the publish waits for it.
    let db = rusqlite::Connection::open(s.data_dir.join("vouch.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Any request: creating another repository's online key needs the lock too.
    let r = s.get_admin(&format!("/v2/{GUN}-other/_trust/tuf/timestamp.key"));
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.error_code(), "UNAVAILABLE");
    let started = std::time::Instant::now();
    let r = s.publish(GUN, &[("targets", c.signed_targets(2, &["v2"]))]);
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(r.headers.contains_key("retry-after"));
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    // The first publish still holds the repository's slot while it waits, so a second one
    // is turned away instead of piling up behind it.
    let r = s.publish(GUN, &[("targets", c.signed_targets(3, &["v3"]))]);
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    let m = metrics(&s);
    common::assert_metric(&m, "vouch_overload_rejections_total{reason=\"timeout\"} 2");
    common::assert_metric(
        &m,
        "vouch_overload_rejections_total{reason=\"publish_gun\"} 1",
    );
    // Once the lock is gone the first publish completes, as documented: a client that got
    // the 503 refreshes before it retries.
    db.execute_batch("ROLLBACK").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let targets = s.current(GUN, "targets").unwrap();
        let t = Metadata::<vouch_tuf::metadata::Targets>::from_bytes(&targets).unwrap();
        if t.version() == Version::new(2).unwrap() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the publish never landed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn invalid_guns() {
    let s = Server::start();
    // Sent raw: an HTTP client library would normalise the dots away before sending.
    assert_eq!(s.raw_get_status("/v2/../x/_trust/tuf/root.json"), 400);
    assert_eq!(s.raw_get_status("/v2/org/../x/_trust/tuf/root.json"), 400);
    let long = "a".repeat(256);
    for gun in ["Org/App", "org/App", "org//app", long.as_str()] {
        let r = s.publish(gun, &[("root", b"{}".to_vec())]);
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{gun}: {}", r.text());
        assert_eq!(r.error_code(), "NAME_INVALID", "{gun}");
        let r = s.get(&format!("/v2/{gun}/_trust/tuf/root.json"));
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{gun}");
    }
    // Empty GUN.
    let r = Resp::from(
        s.client
            .get(s.url("/v2//_trust/tuf/root.json"))
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // 255 bytes is fine (and simply has no data).
    let ok = "b".repeat(255);
    assert_eq!(
        s.get(&format!("/v2/{ok}/_trust/tuf/root.json")).status,
        StatusCode::NOT_FOUND
    );
}

/// Reads one response from `conn`; returns its head.
fn read_response(conn: &mut std::io::BufReader<std::net::TcpStream>) -> String {
    common::read_head(conn).expect("the connection closed before a whole response")
}

#[test]
fn a_refused_publish_leaves_the_connection_usable() {
    use std::io::Write;
    let s = Server::start();
    let addr = s.base.trim_start_matches("http://").to_owned();
    let stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut conn = std::io::BufReader::new(stream);
    // Refused before its body is read (a bad GUN; no token), the body still arriving: the
    // server reads and discards it, answers, and keeps the connection for the next request.
    for (path, status) in [
        ("/v2/Org/App/_trust/tuf/", "400"),
        (&*format!("/v2/{GUN}/_trust/tuf/"), "401"),
        ("/v2/org/app/_trust/tuf/root.json", "405"),
    ] {
        let body = vec![b'x'; 200_000];
        write!(
            conn.get_mut(),
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; \
             boundary=b\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        conn.get_mut().write_all(&body[..1000]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        conn.get_mut().write_all(&body[1000..]).unwrap();
        let head = read_response(&mut conn);
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{path}: {head}"
        );
    }
    write!(conn.get_mut(), "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let head = read_response(&mut conn);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[test]
fn auth_rejections() {
    let s = Server::start();
    let c = ClientRepo::new(&s, GUN);
    let before = observe(&s, GUN);
    // No token: 401 with a registry-style challenge naming the scope.
    let r = s.publish_with(GUN, &[("root", c.signed_root(1))], None);
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "UNAUTHORIZED");
    let challenge = r.headers["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(
        challenge,
        format!("Bearer realm=\"vouch\",service=\"vouch\",scope=\"repository:{GUN}:push\"")
    );
    // A wrong token: 401 too.
    let r = s.publish_with(GUN, &[("root", c.signed_root(1))], Some("not-a-token"));
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(observe(&s, GUN), before);
    // Creating an online key needs push even though pulls are anonymous.
    let r = s.get("/v2/example.com/fresh/_trust/tuf/timestamp.key");
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // ... but reading an existing one does not.
    let r = s.get(&format!("/v2/{GUN}/_trust/tuf/timestamp.key"));
    assert_eq!(r.status, StatusCode::OK);
    // Deleting needs a token.
    let r = Resp::from(s.client.delete(s.tuf_url(GUN, "")).send().unwrap());
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The global changefeed needs a token.
    assert_eq!(
        s.get("/v2/_trust/changefeed").status,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn token_scoped_to_another_gun_is_forbidden() {
    let token = "ci-token-for-other";
    let sha = vouch_tuf::hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ));
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("vouch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[auth.tokens]]\nname = \"ci\"\nsha256 = \"{sha}\"\nscopes = [\"example.com/other/*:pull,push\"]\n"
        ),
    )
    .unwrap();
    let s = Server::start_with_args(&["--config", cfg.to_str().unwrap()]);
    let c = ClientRepo::new(&s, GUN);
    let before = observe(&s, GUN);
    let r = s.publish_with(
        GUN,
        &[
            ("root", c.signed_root(1)),
            ("targets", c.signed_targets(1, &["v1"])),
        ],
        Some(token),
    );
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.error_code(), "DENIED");
    assert_eq!(observe(&s, GUN), before);
    // In scope: accepted.
    let other = "example.com/other/app";
    let c2 = ClientRepo::new(&s, other);
    let r = s.publish_with(
        other,
        &[
            ("root", c2.signed_root(1)),
            ("targets", c2.signed_targets(1, &["v1"])),
        ],
        Some(token),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}
