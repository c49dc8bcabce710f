//! Metrics, request ids and the online backup through a real server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ClientRepo, Server};
use reqwest::StatusCode;

const GUN: &str = "localhost:5000/org/app";

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_what_happened() {
    let s = Server::start();
    let c = ClientRepo::new(&s, GUN);
    c.publish_initial(&s, &["v1"]);
    // A rejected publish: root bytes as targets.
    let r = s.publish(GUN, &[("targets", c.signed_root(2))]);
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let body = r.json();
    let check = body.as_object().unwrap()["errors"].as_array().unwrap()[0]
        .as_object()
        .unwrap()["detail"]
        .as_object()
        .unwrap()["check"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(s.current(GUN, "timestamp").is_some());

    let m = s.get("/metrics");
    assert_eq!(m.status, StatusCode::OK);
    assert!(m.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = m.text();
    assert_eq!(metric(&text, "vouch_publishes_total"), Some(1.0), "{text}");
    assert_eq!(
        metric(
            &text,
            &format!("vouch_publish_rejections_total{{reason=\"{check}\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    // Snapshot and timestamp, signed by the server.
    assert_eq!(metric(&text, "vouch_signatures_total"), Some(2.0), "{text}");
    assert_eq!(
        metric(
            &text,
            "vouch_http_requests_total{route=\"publish\",method=\"POST\",status=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "vouch_http_requests_total{route=\"metadata\",method=\"GET\",status=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(text
        .contains("vouch_http_request_duration_seconds_bucket{route=\"publish\",le=\"+Inf\"} 2"));
    // Seconds to expiry of what was published: the timestamp lives one day.
    let ts = metric(
        &text,
        &format!("vouch_metadata_expiry_seconds{{gun=\"{GUN}\",role=\"timestamp\"}}"),
    )
    .expect("timestamp expiry gauge");
    assert!((86_000.0..=86_400.0).contains(&ts), "{ts}");
    let targets = metric(
        &text,
        &format!("vouch_metadata_expiry_seconds{{gun=\"{GUN}\",role=\"targets\"}}"),
    )
    .expect("targets expiry gauge");
    assert!(targets > 1e9, "{targets}");

    // Deleting the repository drops its series.
    let r = s
        .client
        .delete(s.tuf_url(GUN, ""))
        .bearer_auth(&s.admin_token)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!s
        .get("/metrics")
        .text()
        .contains("vouch_metadata_expiry_seconds{"));
}

#[test]
fn request_ids_are_echoed() {
    let s = Server::start();
    let r = s
        .client
        .get(s.url("/v2/"))
        .header("x-request-id", "deploy-42")
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "deploy-42");
    let r = s.client.get(s.url("/v2/")).send().unwrap();
    assert!(!r.headers()["x-request-id"].is_empty());
}

#[test]
fn backup_of_a_running_server() {
    let s = Server::start();
    let c = ClientRepo::new(&s, GUN);
    c.publish_initial(&s, &["v1"]);
    let out_dir = tempfile::tempdir().unwrap();
    let to = out_dir.path().join("vouch-backup.db");
    common::run_ok(
        std::process::Command::new(env!("CARGO_BIN_EXE_vouch-server"))
            .arg("backup")
            .arg("--data-dir")
            .arg(&s.data_dir)
            .arg("--to")
            .arg(&to),
    );

    // Restore: a server on a data directory holding the copy (and the same key-encryption
    // key) serves the same metadata and can still sign.
    let mut s2 = Server::start();
    s2.kill();
    for f in ["vouch.db-wal", "vouch.db-shm"] {
        let _ = std::fs::remove_file(s2.data_dir.join(f));
    }
    std::fs::copy(&to, s2.data_dir.join("vouch.db")).unwrap();
    std::fs::copy(s.data_dir.join("kek"), s2.data_dir.join("kek")).unwrap();
    s2.restart();
    assert_eq!(s2.current(GUN, "targets"), s.current(GUN, "targets"));
    let r = s2.publish(GUN, &[("targets", c.signed_targets(2, &["v1", "v2"]))]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    s2.kill();
}

#[test]
fn rotating_the_key_encryption_key_keeps_the_server_signing_with_the_same_keys() {
    let mut s = Server::start();
    let c = ClientRepo::new(&s, GUN);
    c.publish_initial(&s, &["v1"]);
    let timestamp_key = s.online_key(GUN, "timestamp");
    let old_kek = std::fs::read(s.data_dir.join("kek")).unwrap();
    assert!(s.terminate());

    let stdout = common::run_ok(
        std::process::Command::new(env!("CARGO_BIN_EXE_vouch-server"))
            .arg("rotate-kek")
            .arg("--data-dir")
            .arg(&s.data_dir),
    );
    assert!(stdout.contains("re-sealed 2 online keys"), "{stdout}");
    assert_ne!(std::fs::read(s.data_dir.join("kek")).unwrap(), old_kek);
    assert!(!s.data_dir.join("kek.new").exists());

    // The restarted server opens its keys with the new KEK: a publish is re-signed by the
    // same timestamp key.
    s.restart();
    let r = s.publish(GUN, &[("targets", c.signed_targets(2, &["v1", "v2"]))]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(s.online_key(GUN, "timestamp"), timestamp_key);
    let ts = s.current(GUN, "timestamp").unwrap();
    let ts = vouch_tuf::metadata::Metadata::<vouch_tuf::metadata::TimestampRole>::from_bytes(&ts)
        .unwrap();
    assert_eq!(ts.version().get(), 2);
    let keys = [(timestamp_key.key_id(), timestamp_key.clone())]
        .into_iter()
        .collect();
    vouch_tuf::metadata::verify_threshold(
        "timestamp",
        ts.canonical_signed(),
        ts.signatures(),
        &keys,
        &[timestamp_key.key_id()],
        vouch_tuf::types::Threshold::ONE,
    )
    .unwrap();
    s.kill();

    // With the old KEK put back, the keys no longer open: the server refuses to start,
    // naming the KEK file, rather than failing every signature later.
    std::fs::write(s.data_dir.join("kek"), &old_kek).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vouch-server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&s.data_dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("does not open the store's online keys"),
        "{err}"
    );
}

#[test]
fn reads_right_after_a_write_see_it() {
    let s = Server::start();
    let c = ClientRepo::new(&s, GUN);
    c.publish_initial(&s, &["v1"]);
    for v in 2..6u64 {
        // Read (and so cache) the current targets, publish the next, read again at once.
        assert!(s.current(GUN, "targets").is_some());
        let tags: Vec<String> = (1..=v).map(|i| format!("v{i}")).collect();
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        let next = c.signed_targets(v, &tags);
        let r = s.publish(GUN, &[("targets", next.clone())]);
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(s.current(GUN, "targets"), Some(next));
    }
    let r = s
        .client
        .delete(s.tuf_url(GUN, ""))
        .bearer_auth(&s.admin_token)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(s.current(GUN, "targets"), None);
    assert_eq!(s.current(GUN, "root"), None);
}
