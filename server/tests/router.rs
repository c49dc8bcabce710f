//! The router without a socket, on a clock the test controls: server-signed roles are
//! re-signed before they expire, and racing requests never produce two documents with one
//! version.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use vouch_server::Config;
use vouch_tuf::clock::TestClock;
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use vouch_tuf::json;
use vouch_tuf::metadata::{
    Key, MetaFile, Metadata, Root, Snapshot, TargetFile, Targets, TimestampRole,
};
use vouch_tuf::reference::Digest;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{TargetName, TopLevelRole};

const GUN: &str = "example.com/org/clock";
const T0: i64 = 1_900_000_000;

struct Harness {
    app: axum::Router,
    now: TestClock,
    token: String,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        Self::with_lifetimes(86_400, 7 * 86_400)
    }

    fn with_lifetimes(timestamp_seconds: i64, snapshot_seconds: i64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        config.lifetimes.timestamp_seconds = timestamp_seconds;
        config.lifetimes.snapshot_seconds = snapshot_seconds;
        let now = TestClock::new(Timestamp::from_unix(T0));
        let prepared = vouch_server::build_state(&config, Some(Arc::new(now.clone()))).unwrap();
        let token = std::fs::read_to_string(config.admin_token_path())
            .unwrap()
            .trim()
            .to_owned();
        Harness {
            app: vouch_server::app(prepared.state),
            now,
            token,
            _dir: dir,
        }
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, Vec<u8>) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, body)
    }

    async fn get(&self, file: &str) -> (StatusCode, Vec<u8>) {
        let req = Request::get(format!("/v2/{GUN}/_trust/tuf/{file}"))
            .header("authorization", format!("Bearer {}", self.token))
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    async fn key(&self, role: &str) -> Key {
        let (status, body) = self.get(&format!("{role}.key")).await;
        assert_eq!(status, StatusCode::OK);
        Key::from_value(json::parse(&body).unwrap()).unwrap()
    }

    async fn publish(&self, files: &[(&str, Vec<u8>)]) -> (StatusCode, Vec<u8>) {
        let boundary = "vouch-test-boundary";
        let mut body = Vec::new();
        for (role, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{role}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let req = Request::post(format!("/v2/{GUN}/_trust/tuf/"))
            .header("authorization", format!("Bearer {}", self.token))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }

    fn advance(&self, secs: i64) {
        self.now.advance(secs);
    }
}

async fn initialised() -> (Harness, Root) {
    initialised_with(Harness::new()).await
}

async fn initialised_with(h: Harness) -> (Harness, Root) {
    let root_key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let targets_key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let far = Timestamp::from_unix(T0 + 10 * 365 * 86_400);
    let mut root = Root::new(far);
    root.add_key(
        TopLevelRole::Root,
        Key::from_verifying_key(&root_key.verifying_key()),
    );
    root.add_key(
        TopLevelRole::Targets,
        Key::from_verifying_key(&targets_key.verifying_key()),
    );
    root.add_key(TopLevelRole::Timestamp, h.key("timestamp").await);
    root.add_key(TopLevelRole::Snapshot, h.key("snapshot").await);
    let mut t = Targets::new(far);
    t.add_target(
        TargetName::new("v1").unwrap(),
        TargetFile::image(&Digest::sha256_of(b"m"), 1, None),
    );
    let (status, body) = h
        .publish(&[
            (
                "root",
                Metadata::signed_by(root.clone(), &[&root_key])
                    .unwrap()
                    .to_bytes(),
            ),
            (
                "targets",
                Metadata::signed_by(t, &[&targets_key]).unwrap().to_bytes(),
            ),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    (h, root)
}

async fn timestamp(h: &Harness) -> Metadata<TimestampRole> {
    let (status, body) = h.get("timestamp.json").await;
    assert_eq!(status, StatusCode::OK);
    Metadata::from_bytes(&body).unwrap()
}

#[tokio::test]
async fn timestamp_is_resigned_when_half_its_life_is_gone() {
    let (h, root) = initialised().await;
    let t1 = timestamp(&h).await;
    assert_eq!(t1.version().get(), 1);
    assert_eq!(t1.expires().unix(), T0 + 86_400);

    // Less than half gone: served unchanged.
    h.advance(43_000);
    assert_eq!(timestamp(&h).await.version().get(), 1);

    // More than half gone: a new version, valid for a full day from now, signed by the server key.
    h.advance(300);
    let t2 = timestamp(&h).await;
    assert_eq!(t2.version().get(), 2);
    assert_eq!(t2.expires().unix(), T0 + 43_300 + 86_400);
    root.verify_role(TopLevelRole::Timestamp, &t2).unwrap();
    assert_eq!(t2.signed().snapshot, t1.signed().snapshot);
    // Fetching again does not re-sign again.
    assert_eq!(timestamp(&h).await.version().get(), 2);
}

#[tokio::test]
async fn server_snapshot_is_resigned_before_it_expires() {
    let (h, root) = initialised().await;
    // Four days later the 7-day snapshot has less than half its life left.
    h.advance(4 * 86_400);
    let ts = timestamp(&h).await;
    let (status, snap_bytes) = h.get("snapshot.json").await;
    assert_eq!(status, StatusCode::OK);
    let snap = Metadata::<Snapshot>::from_bytes(&snap_bytes).unwrap();
    assert_eq!(snap.version().get(), 2);
    assert_eq!(snap.expires().unix(), T0 + 4 * 86_400 + 7 * 86_400);
    root.verify_role(TopLevelRole::Snapshot, &snap).unwrap();
    assert_eq!(
        ts.signed().snapshot,
        MetaFile::for_bytes(snap.version(), &snap_bytes)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_refreshes_never_fork_a_version() {
    let (h, _root) = initialised().await;
    let h = Arc::new(h);
    for round in 1..=5 {
        h.advance(50_000);
        let tasks: Vec<_> = (0..24)
            .map(|_| {
                let h = h.clone();
                tokio::spawn(async move { h.get("timestamp.json").await })
            })
            .collect();
        let mut seen: std::collections::BTreeMap<u64, Vec<u8>> = Default::default();
        for t in tasks {
            let (status, body) = t.await.unwrap();
            assert_eq!(status, StatusCode::OK);
            let md = Metadata::<TimestampRole>::from_bytes(&body).unwrap();
            if let Some(prev) = seen.insert(md.version().get(), body.clone()) {
                assert_eq!(
                    prev,
                    body,
                    "round {round}: two different timestamps share version {}",
                    md.version()
                );
            }
        }
        // Every stored version is a single document, readable by version.
        let newest = *seen.keys().max().unwrap();
        assert_eq!(newest, round + 1, "exactly one re-sign per round");
        for (v, body) in &seen {
            assert_eq!(&h.get(&format!("{v}.timestamp.json")).await.1, body);
        }
    }
}

#[tokio::test]
async fn short_lived_snapshot_is_resigned_although_the_timestamp_is_fresh() {
    // A snapshot that lives much shorter than the timestamp naming it: the snapshot's own
    // half-life decides, not the timestamp's.
    let (h, root) = initialised_with(Harness::with_lifetimes(86_400, 60)).await;
    h.advance(31);
    let ts = timestamp(&h).await;
    assert_eq!(ts.version().get(), 2);
    let (_, snap_bytes) = h.get("snapshot.json").await;
    let snap = Metadata::<Snapshot>::from_bytes(&snap_bytes).unwrap();
    assert_eq!(snap.version().get(), 2);
    assert!(snap.expires().unix() > T0 + 31);
    root.verify_role(TopLevelRole::Snapshot, &snap).unwrap();
    assert_eq!(
        ts.signed().snapshot,
        MetaFile::for_bytes(snap.version(), &snap_bytes)
    );
    // Nothing is served expired at any later read either.
    let mut now = T0 + 31;
    for _ in 0..5 {
        h.advance(29);
        now += 29;
        let ts = timestamp(&h).await;
        assert!(ts.expires().unix() > now);
        let (_, b) = h.get("snapshot.json").await;
        assert!(
            Metadata::<Snapshot>::from_bytes(&b)
                .unwrap()
                .expires()
                .unix()
                > now
        );
    }
}
