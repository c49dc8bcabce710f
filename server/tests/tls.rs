//! HTTPS through a real server: a test CA made here, a certificate rotated on disk and picked
//! up without a restart, python-tuf updating over HTTPS, the slow-client and TLS-handshake
//! limits, back-pressure (503 with `Retry-After`), the warning about plain HTTP beyond
//! loopback and JSON logs — each through a real `vouch-server` process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{gen, ClientRepo};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use vouch_testkit::server::{Launch, ServerProcess};
use vouch_testkit::tls::Ca;
use vouch_tuf::json;
use vouch_tuf::metadata::Key;
use vouch_tuf::time::Timestamp;

const GUN: &str = "localhost:5000/org/app";

/// A vouch-server process serving HTTPS (or HTTP when no TLS is configured).
struct Proc {
    process: ServerProcess,
    addr: String,
    admin_token: String,
    _dir: tempfile::TempDir,
}

impl Proc {
    fn start(config: &str, dir: tempfile::TempDir) -> Self {
        Self::start_with(config, dir, &[("VOUCH_LOG", "warn")], Stdio::inherit())
    }

    fn start_with(
        config: &str,
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> Self {
        let cfg = dir.path().join("vouch.toml");
        std::fs::write(&cfg, config).unwrap();
        let process = Launch::new(dir.path().join("data"))
            .binary(env!("CARGO_BIN_EXE_vouch-server"))
            .config(cfg)
            .envs(env.iter().copied())
            .stderr(stderr)
            .start();
        Proc {
            addr: process.addr().to_owned(),
            admin_token: process.admin_token.clone(),
            process,
            _dir: dir,
        }
    }

    fn port(&self) -> u16 {
        self.process.port()
    }
}

fn tls_config(dir: &Path, extra: &str) -> String {
    format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nreload_seconds = 1\n{extra}",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    )
}

fn online_key(client: &Client, base: &str, token: &str, role: &str) -> Key {
    let r = vouch_testkit::trust_api::fetch(client, base, GUN, &format!("{role}.key"), Some(token));
    assert_eq!(r.status(), StatusCode::OK);
    Key::from_value(json::parse(&r.bytes().unwrap()).unwrap()).unwrap()
}

#[test]
fn https_with_certificate_rotation_and_python_tuf() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("vouch test CA one");
    ca.issue(dir.path());
    let config = tls_config(dir.path(), "");
    let certs: PathBuf = dir.path().to_owned();
    let p = Proc::start(&config, dir);
    let base = format!("https://localhost:{}", p.port());
    let client = ca.client();
    assert_eq!(
        client.get(format!("{base}/v2/")).send().unwrap().status(),
        StatusCode::OK
    );
    // Plain HTTP to the TLS port gets nowhere.
    assert!(Client::new()
        .get(format!("http://127.0.0.1:{}/v2/", p.port()))
        .send()
        .is_err());

    // Publish over HTTPS.
    let c = ClientRepo {
        gun: GUN.to_owned(),
        root_key: gen(),
        targets_key: gen(),
        timestamp_key: online_key(&client, &base, &p.admin_token, "timestamp"),
        snapshot_key: online_key(&client, &base, &p.admin_token, "snapshot"),
        expires: Timestamp::parse("2099-01-01T00:00:00Z").unwrap(),
    };
    let root = c.signed_root(1);
    let r = vouch_testkit::trust_api::publish(
        &client,
        &base,
        GUN,
        &[
            ("root", root.clone()),
            ("targets", c.signed_targets(1, &["v1"])),
        ],
        Some(&p.admin_token),
    );
    assert_eq!(r.status(), StatusCode::OK);

    // python-tuf updates over HTTPS, trusting only the test CA.
    let work = tempfile::tempdir().unwrap();
    let ca_file = work.path().join("ca.pem");
    ca.write_cert(&ca_file);
    let root_file = work.path().join("root.json");
    std::fs::write(&root_file, &root).unwrap();
    let stdout = common::run_ok(
        Command::new(common::python())
            .arg(common::python_script("client.py"))
            .arg(format!("{base}/v2/{GUN}/_trust/tuf/"))
            .arg(&root_file)
            .arg(work.path().join("metadata"))
            .arg("v1")
            .env("SSL_CERT_FILE", &ca_file),
    );
    let v = json::parse(stdout.trim().as_bytes()).unwrap();
    let v1 = v.as_object().unwrap()["v1"].as_object().unwrap();
    assert_eq!(
        v1["sha256"].as_str().unwrap(),
        common::digest_of("v1").hex()
    );

    // Rotate to a certificate from another CA: picked up without a restart.
    std::thread::sleep(Duration::from_millis(1100));
    let ca2 = Ca::new("vouch test CA two");
    ca2.issue(&certs);
    let client2 = ca2.client();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // A fresh client each time: no reused connection from before the rotation.
        let ok = ca2.client().get(format!("{base}/v2/")).send().is_ok();
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "new certificate never served");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        client2.get(format!("{base}/v2/")).send().unwrap().status(),
        StatusCode::OK
    );
    assert!(ca.client().get(format!("{base}/v2/")).send().is_err());

    // A broken replacement is refused and the current certificate stays.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(certs.join("cert.pem"), "not a certificate").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    for _ in 0..2 {
        assert_eq!(
            ca2.client()
                .get(format!("{base}/v2/"))
                .send()
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
}

#[test]
fn slow_clients_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::start(
        // The body's own limit is longer than the request timeout, which starts only once
        // the body is in: the slow body gets 408, not 503.
        "[timeouts]\nheader_read_seconds = 1\nbody_read_seconds = 2\nrequest_seconds = 1\n",
        dir,
    );

    // Headers never finished: the connection is closed.
    let mut conn = std::net::TcpStream::connect(&p.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n").unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = conn.read_to_end(&mut buf);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "slow headers held the connection"
    );

    // A publish body that never arrives: 408.
    let mut conn = std::net::TcpStream::connect(&p.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "POST /v2/{GUN}/_trust/tuf/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000\r\n\r\n--b\r\n",
        p.admin_token
    )
    .unwrap();
    let mut resp = String::new();
    let _ = conn.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");

    // /metrics counted it, and the request itself.
    let m = reqwest::blocking::get(format!("http://{}/metrics", p.addr))
        .unwrap()
        .text()
        .unwrap();
    common::assert_metric(
        &m,
        "vouch_overload_rejections_total{reason=\"body_timeout\"} 1",
    );
    common::assert_metric(
        &m,
        "vouch_http_requests_total{route=\"publish\",method=\"POST\",status=\"408\"} 1",
    );
}

#[test]
fn json_logs_carry_request_ids() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut p = Proc::start_with(
        "",
        dir,
        &[("VOUCH_LOG", "info"), ("VOUCH_LOG_FORMAT", "json")],
        Stdio::from(file),
    );
    let r = Client::new()
        .delete(format!("http://{}/v2/{GUN}/_trust/tuf/", p.addr))
        .header("x-request-id", "deploy-7")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["x-request-id"], "deploy-7");
    p.process.kill();
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("deploy-7"))
        .unwrap_or_else(|| panic!("no log line with the request id in:\n{text}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["span"]["id"], "deploy-7", "{line}");
    assert_eq!(v["span"]["method"], "DELETE", "{line}");
    assert_eq!(v["status"], 401, "{line}");
}

/// Starts a publish whose body never finishes: it holds a request slot and a publish slot of
/// its GUN until the body timeout.
fn stalled_publish(p: &Proc, gun: &str) -> std::net::TcpStream {
    let mut conn = std::net::TcpStream::connect(&p.addr).unwrap();
    write!(
        conn,
        "POST /v2/{gun}/_trust/tuf/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000\r\n\r\n--b\r\n",
        p.admin_token
    )
    .unwrap();
    // Let the server take its slots.
    std::thread::sleep(Duration::from_millis(300));
    conn
}

fn empty_publish(p: &Proc, gun: &str) -> reqwest::blocking::Response {
    Client::new()
        .post(format!("http://{}/v2/{gun}/_trust/tuf/", p.addr))
        .bearer_auth(&p.admin_token)
        .header("content-type", "multipart/form-data; boundary=b")
        .body("--b--\r\n")
        .send()
        .unwrap()
}

/// A server with the `[capacity]` settings `capacity`, and a publish to `example.com/app`
/// stalled on it, holding its slots (for up to 5 s).
fn held_by_a_stalled_publish(capacity: &str) -> (Proc, std::net::TcpStream) {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::start(
        &format!("[timeouts]\nbody_read_seconds = 5\n[capacity]\n{capacity}"),
        dir,
    );
    let held = stalled_publish(&p, "example.com/app");
    (p, held)
}

#[test]
fn over_capacity_answers_503_with_retry_after() {
    // Publishes: one at a time per repository, no waiting.
    let (p, held) = held_by_a_stalled_publish(
        "max_publishes_per_gun = 1\npublish_wait_ms = 0\nretry_after_seconds = 3\n",
    );
    let r = empty_publish(&p, "example.com/app");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "3");
    // Another repository is not held up (the empty update reaches validation: 400).
    assert_eq!(
        empty_publish(&p, "example.com/other").status(),
        StatusCode::BAD_REQUEST
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        empty_publish(&p, "example.com/app").status(),
        StatusCode::BAD_REQUEST
    );

    // Requests in flight: one, held by a stalled publish.
    let (p, held) = held_by_a_stalled_publish("max_in_flight = 1\n");
    let r = reqwest::blocking::get(format!("http://{}/v2/", p.addr)).unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        reqwest::blocking::get(format!("http://{}/v2/", p.addr))
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[test]
fn stalled_tls_handshakes_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("vouch test CA");
    ca.issue(dir.path());
    let config = tls_config(dir.path(), "[timeouts]\ntls_handshake_seconds = 1\n");
    let p = Proc::start(&config, dir);
    let base = format!("https://localhost:{}", p.port());

    // A client that connects and never sends its ClientHello.
    let mut silent = std::net::TcpStream::connect(&p.addr).unwrap();
    let opened = Instant::now();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    // Meanwhile, a client that does the handshake is served.
    assert_eq!(
        ca.client()
            .get(format!("{base}/v2/"))
            .send()
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let mut buf = [0u8; 64];
    let outcome = silent.read(&mut buf);
    let waited = opened.elapsed();
    match outcome {
        Ok(0) => {}
        Ok(n) => panic!("the server sent {n} bytes to a client that sent nothing"),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            panic!("a silent client was still connected after {waited:?}")
        }
        // A reset is a disconnection too.
        Err(_) => {}
    }
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "disconnected after {waited:?}, not after the 1 s handshake timeout"
    );

    // The server goes on serving.
    assert_eq!(
        ca.client()
            .get(format!("{base}/v2/"))
            .send()
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// The warning `vouch-server` logs when it serves plain HTTP beyond loopback.
const PLAIN_HTTP_WARNING: &str = "listening on a non-loopback address without TLS: \
                                  configure [tls] or put a TLS terminator in front";

/// Starts `vouch-server --listen <listen>` with `config` at the default log format and the
/// `warn` level, checks that it answers `GET /v2/` (through `get`, given the port), stops it,
/// and returns the address line it printed and everything it logged.
fn start_and_collect_log(
    listen: &str,
    config: &str,
    get: impl FnOnce(u16) -> StatusCode,
) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vouch.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouch-server"))
        .args(["--listen", listen, "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("VOUCH_LOG", "warn")
        .env_remove("VOUCH_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep stdout open until the server is stopped, so that its next lines can be written.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let port = first.rsplit(':').next().unwrap().trim().parse().unwrap();
    let status = get(port);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, StatusCode::OK, "{first}");
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    (first.trim().to_owned(), log)
}

#[test]
fn plain_http_beyond_loopback_is_warned_about() {
    let plain_get = |port: u16| {
        reqwest::blocking::get(format!("http://127.0.0.1:{port}/v2/"))
            .unwrap()
            .status()
    };

    // All interfaces, plain HTTP: one warning line, at WARN, naming the address.
    let (first, log) = start_and_collect_log("0.0.0.0:0", "", plain_get);
    let addr = first
        .strip_prefix("vouch-server listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"));
    assert!(addr.starts_with("0.0.0.0:"), "{first}");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(PLAIN_HTTP_WARNING))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("WARN") && warnings[0].contains(addr),
        "{}",
        warnings[0]
    );

    // Loopback, plain HTTP: no warning.
    let (first, log) = start_and_collect_log("127.0.0.1:0", "", plain_get);
    assert!(first.contains("http://127.0.0.1:"), "{first}");
    assert!(!log.contains("non-loopback"), "{log}");

    // All interfaces with TLS: no warning.
    let certs = tempfile::tempdir().unwrap();
    let ca = Ca::new("vouch test CA");
    ca.issue(certs.path());
    let (first, log) = start_and_collect_log("0.0.0.0:0", &tls_config(certs.path(), ""), |port| {
        ca.client()
            .get(format!("https://localhost:{port}/v2/"))
            .send()
            .unwrap()
            .status()
    });
    assert!(first.contains("https://0.0.0.0:"), "{first}");
    assert!(!log.contains("non-loopback"), "{log}");
}

fn metrics(p: &Proc) -> String {
    reqwest::blocking::get(format!("http://{}/metrics", p.addr))
        .unwrap()
        .text()
        .unwrap()
}

#[test]
fn overall_publish_cap_answers_503_across_repositories() {
    // One publish at a time over all repositories, no waiting; the per-repository cap
    // (default 2) does not come into it.
    let (p, held) = held_by_a_stalled_publish(
        "max_publishes = 1\npublish_wait_ms = 0\nretry_after_seconds = 4\n",
    );
    let r = empty_publish(&p, "example.com/other");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "4");
    let body: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{body}");
    assert_eq!(
        body["errors"][0]["message"], "too many publishes at once: retry later",
        "{body}"
    );
    // Reads are not publishes: still served.
    assert_eq!(
        reqwest::blocking::get(format!("http://{}/v2/", p.addr))
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let m = metrics(&p);
    common::assert_metric(&m, "vouch_overload_rejections_total{reason=\"publish\"} 1");
    assert!(!m.contains("reason=\"publish_gun\""), "{m}");
    common::assert_metric(
        &m,
        "vouch_http_requests_total{route=\"publish\",method=\"POST\",status=\"503\"} 1",
    );

    // Once the held publish ends, the other repository's publish gets through to validation
    // (the empty update: 400), and nothing more was refused for capacity.
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        empty_publish(&p, "example.com/other").status(),
        StatusCode::BAD_REQUEST
    );
    let m = metrics(&p);
    common::assert_metric(&m, "vouch_overload_rejections_total{reason=\"publish\"} 1");
}
