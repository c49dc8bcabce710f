//! End to end: the webhook served on loopback in front of a real vouch-server, through
//! re-signing, a server outage and expiry; single-flight refreshes; the deadline; and the
//! `vouch-admission` binary over HTTPS with a certificate rotated on disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{digest_of, fixture, patched, serve, set_image, signed_server, Harness, REG};
use reqwest::blocking::Client;
use serde_json::Value;
use vouch_testkit::tls::Ca;

/// Past the refresh interval (3 s) of the tests that also check what happens within it;
/// long enough that a slow machine does not leave the interval early.
const INTERVAL: Duration = Duration::from_millis(3100);

fn post(client: &Client, url: &str, review: &Value) -> Value {
    let r = client.post(url).json(review).send().unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let v: Value = r.json().unwrap();
    v["response"].clone()
}

fn app_image(resp: &Value, review: &Value) -> String {
    patched(review, resp)
        .pointer("/spec/containers/0/image")
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn resign_outage_and_expiry_through_a_real_server() {
    let (mut server, mut repos) = signed_server();
    let h = Harness::new(&server.base, &repos, "refresh_interval_secs = 3");
    let s = serve(&h);
    let client = Client::new();
    let url = format!("{}/mutate", s.base);
    let review = fixture("pod-create.json");
    let (d1, d2) = (digest_of("v1"), digest_of("v1 rebuilt"));

    // Signed: admitted and pinned.
    let resp = post(&client, &url, &review);
    assert_eq!(resp["allowed"], true, "{resp}");
    assert_eq!(app_image(&resp, &review), format!("{REG}/app:v1@{d1}"));

    // The tag is signed again for another digest: within the refresh interval the warm
    // state still answers; after it, admission pins the new digest.
    repos[0].sign(&server, &[("v1", d2.clone())]);
    let resp = post(&client, &url, &review);
    assert_eq!(app_image(&resp, &review), format!("{REG}/app:v1@{d1}"));
    std::thread::sleep(INTERVAL);
    let resp = post(&client, &url, &review);
    assert_eq!(resp["allowed"], true, "{resp}");
    assert_eq!(app_image(&resp, &review), format!("{REG}/app:v1@{d2}"));
    // … and the old digest under that tag is now refused.
    let mut stale = review.clone();
    set_image(
        &mut stale,
        "/spec/containers/0/image",
        &format!("{REG}/app:v1@{d1}"),
    );
    let resp = post(&client, &url, &stale);
    assert_eq!(resp["allowed"], false);
    assert!(resp["status"]["message"]
        .as_str()
        .unwrap()
        .contains("is not the signed digest"));

    // Root and targets keys are rotated (root v2 cross-signed): the webhook walks to the
    // new root from the one pinned and still admits what the new key signs.
    let d3 = digest_of("v1 after rotation");
    repos[0].rotate_keys(&server, &[("v1", d3.clone())]);
    std::thread::sleep(INTERVAL);
    let resp = post(&client, &url, &review);
    assert_eq!(resp["allowed"], true, "{resp}");
    assert_eq!(app_image(&resp, &review), format!("{REG}/app:v1@{d3}"));
    let d2 = d3;

    // The trust server goes away: the last trusted metadata keeps admitting while it is
    // unexpired, refreshes being retried and failing meanwhile.
    server.kill();
    std::thread::sleep(INTERVAL);
    h.clock.advance(12 * 3600);
    let resp = post(&client, &url, &review);
    assert_eq!(resp["allowed"], true, "{resp}");
    assert_eq!(app_image(&resp, &review), format!("{REG}/app:v1@{d2}"));
    let metrics = client
        .get(format!("{}/metrics", s.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        !metrics.contains("vouch_admission_refreshes_total{result=\"failed\"} 0"),
        "{metrics}"
    );

    // Once the cached timestamp has expired, the same request is denied.
    h.clock.advance(13 * 3600);
    std::thread::sleep(INTERVAL);
    let resp = post(&client, &url, &review);
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = resp["status"]["message"].as_str().unwrap();
    assert!(m.contains("expired") && m.contains("unreachable"), "{m}");
}

#[test]
fn an_unreachable_server_is_a_denial_for_at_most_one_refresh_interval() {
    let (mut server, repos) = signed_server();
    server.kill();
    let h = Harness::new(&server.base, &repos, "refresh_interval_secs = 3");
    let review = fixture("cronjob-create.json");
    let send = || h.send(&review, vouch_admission::decide::Endpoint::Mutate);
    let resp = send();
    assert_eq!(resp["allowed"], false);
    assert!(
        resp["status"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{resp}"
    );
    server.restart();
    // Within the interval the failure is remembered (no fetch storm against a down server) …
    assert_eq!(send()["allowed"], false);
    // … and after it the next request tries again and is admitted.
    std::thread::sleep(INTERVAL);
    let resp = send();
    assert_eq!(resp["allowed"], true, "{resp}");
    assert_eq!(
        patched(&review, &resp)
            .pointer("/spec/jobTemplate/spec/template/spec/containers/0/image")
            .unwrap(),
        &Value::String(format!("{REG}/app:v1@{}", digest_of("v1")))
    );
}

#[test]
fn concurrent_cold_requests_share_one_refresh_per_repository() {
    let (server, repos) = signed_server();
    let h = Harness::new(&server.base, &repos, "");
    let s = serve(&h);
    let url = Arc::new(format!("{}/mutate", s.base));
    let review = Arc::new(fixture("pod-create.json"));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (url, review) = (url.clone(), review.clone());
            std::thread::spawn(move || post(&Client::new(), &url, &review))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap()["allowed"], true);
    }
    let metrics = h.webhook.metrics().render();
    // Three repositories in the pod (app, init, sidecar): one refresh each.
    assert!(
        metrics.contains("vouch_admission_refreshes_total{result=\"ok\"} 3\n"),
        "{metrics}"
    );
    assert!(metrics.contains("reason=\"verified\"} 16\n"), "{metrics}");
}

#[test]
fn a_trust_server_that_hangs_fails_closed_within_the_deadline() {
    // Accepts connections and never answers.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = hole.local_addr().unwrap();
    let _keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in hole.incoming().take(8) {
            held.push(c);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let (_server, repos) = signed_server();
    let h = Harness::new(&format!("http://{addr}"), &repos, "deadline_ms = 400");
    let review = fixture("job-create.json");
    let started = Instant::now();
    let resp = h.send(&review, vouch_admission::decide::Endpoint::Mutate);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(resp["allowed"], false);
    assert!(
        resp["status"]["message"]
            .as_str()
            .unwrap()
            .contains("deadline"),
        "{resp}"
    );
}

#[test]
fn the_binary_serves_https_health_metrics_and_reloads_its_certificate() {
    let (server, repos) = signed_server();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        common::policy_text(&server.base, &repos, "mode = \"enforce\"", dir.path()),
    )
    .unwrap();
    let first = Ca::new("first CA");
    first.issue(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouch-admission"))
        .arg("--policy")
        .arg(&policy)
        .args(["--listen", "127.0.0.1:0", "--log-format", "text"])
        .arg("--tls-cert")
        .arg(dir.path().join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.path().join("key.pem"))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .env("VOUCH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    let base = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{line}");

    let client = first.client();
    let get = |c: &Client, path: &str| c.get(format!("{base}{path}")).send();
    assert_eq!(get(&client, "/healthz").unwrap().status(), 200);
    assert_eq!(get(&client, "/readyz").unwrap().status(), 200);
    let review = fixture("deployment-create.json");
    let r: Value = client
        .post(format!("{base}/mutate"))
        .json(&review)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(r["response"]["allowed"], true, "{r}");
    assert_eq!(r["response"]["uid"], review["request"]["uid"]);
    let bad = client
        .post(format!("{base}/validate"))
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    let metrics = get(&client, "/metrics").unwrap().text().unwrap();
    assert!(
        metrics
            .contains("vouch_admission_decisions_total{result=\"allowed\",reason=\"verified\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vouch_admission_decision_seconds_count 1"),
        "{metrics}"
    );

    // A new certificate from another CA is picked up without a restart.
    let second = Ca::new("second CA");
    std::thread::sleep(Duration::from_millis(1100));
    second.issue(dir.path());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if get(&second.client(), "/healthz").is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not loaded"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(get(&first.client(), "/healthz").is_err());
    let _ = child.kill();
    let _ = child.wait();
    drop(server);
}

fn mirror(server: &common::Server, gun: &str, root: &[u8], dir: &Path) {
    common::mirror_as(server, gun, gun, root, dir);
}

#[test]
fn metadata_that_fails_verification_withdraws_trust_until_a_good_refresh() {
    let (server, repos) = signed_server();
    let mirror_dir = tempfile::tempdir().unwrap();
    for r in &repos {
        mirror(&server, &r.gun, &r.root_bytes(), mirror_dir.path());
    }
    let source = format!("file://{}", mirror_dir.path().display());
    let h = Harness::new(&source, &repos, "refresh_interval_secs = 1");
    let review = fixture("replicaset-create.json");
    let send = || h.send(&review, vouch_admission::decide::Endpoint::Mutate);
    let resp = send();
    assert_eq!(resp["allowed"], true, "{resp}");

    // The mirror now serves a timestamp whose signature does not verify.
    let ts = mirror_dir.path().join(format!("{REG}/app/timestamp.json"));
    let good = std::fs::read(&ts).unwrap();
    let text = String::from_utf8(good.clone()).unwrap();
    let sig_at = text.find("\"sig\":\"").unwrap() + 7;
    let mut bad = good.clone();
    bad[sig_at] = if bad[sig_at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&ts, &bad).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let resp = send();
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = resp["status"]["message"].as_str().unwrap();
    assert!(
        m.contains(&format!("{REG}/app:v1")) && m.contains("trust metadata rejected"),
        "{m}"
    );
    // The other repositories are unaffected.
    assert!(!m.contains("init:v1"), "{m}");
    let metrics = h.webhook.metrics().render();
    assert!(
        metrics.contains("result=\"denied\",reason=\"metadata_rejected\""),
        "{metrics}"
    );

    // Good metadata again: trusted again at the next refresh.
    std::fs::write(&ts, &good).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(send()["allowed"], true);
}
