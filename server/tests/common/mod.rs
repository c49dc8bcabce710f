//! A real `vouch-server` process for end-to-end tests (`vouch-testkit`'s): started on a free
//! loopback port with its own data directory, killed and restarted at will, and a small HTTP
//! client for it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod postgres;

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::StatusCode;
use vouch_testkit::server::{Launch, ServerProcess};
use vouch_tuf::api::event::{Event, Frame, SseReader};
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use vouch_tuf::json::{self, Value};
use vouch_tuf::metadata::{Key, Metadata, Root, TargetFile, Targets};
use vouch_tuf::reference::Digest;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{TargetName, TopLevelRole};

/// A running server.
pub struct Server {
    process: Option<ServerProcess>,
    pub base: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    extra_env: Vec<(String, String)>,
    extra_args: Vec<String>,
    pub admin_token: String,
    pub client: Client,
}

impl Server {
    /// Starts a server with a fresh data directory.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `VOUCH_*` environment variables.
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        Self::start_full(env, &[])
    }

    /// Starts a server with extra command-line arguments.
    pub fn start_with_args(args: &[&str]) -> Self {
        Self::start_full(&[], args)
    }

    /// Starts a server with extra `VOUCH_*` (or other) environment variables and
    /// command-line arguments.
    pub fn start_full(env: &[(&str, &str)], args: &[&str]) -> Self {
        // The HTTP client's TLS stack needs a crypto provider chosen once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut s = Server {
            process: None,
            base: String::new(),
            data_dir,
            _tmp: Some(tmp),
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            admin_token: String::new(),
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let process = Launch::new(&self.data_dir)
            .binary(env!("CARGO_BIN_EXE_vouch-server"))
            .args(&self.extra_args)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .start();
        self.base = process.base.clone();
        self.admin_token = process.admin_token.clone();
        self.process = Some(process);
    }

    /// SIGKILL: no graceful shutdown, no flushing.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// SIGTERM, then waits: returns whether the process exited successfully.
    pub fn terminate(&mut self) -> bool {
        self.process.take().expect("server not running").terminate()
    }

    /// Starts again on the same data directory (a new port).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn tuf_url(&self, gun: &str, file: &str) -> String {
        vouch_testkit::trust_api::tuf_url(&self.base, gun, file)
    }

    /// The status of a GET sent byte for byte as given (no client-side path normalisation,
    /// as a hostile client would send it).
    pub fn raw_get_status(&self, path: &str) -> u16 {
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://");
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        write!(
            conn,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        conn.read_to_string(&mut resp).unwrap();
        resp.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    /// GET without a token.
    pub fn get(&self, path: &str) -> Resp {
        Resp::from(self.client.get(self.url(path)).send().unwrap())
    }

    /// GET with the admin token.
    pub fn get_admin(&self, path: &str) -> Resp {
        Resp::from(
            self.client
                .get(self.url(path))
                .bearer_auth(&self.admin_token)
                .send()
                .unwrap(),
        )
    }

    /// The server's online key for `role` of `gun` (created with the admin token).
    pub fn online_key(&self, gun: &str, role: &str) -> Key {
        let r = self.get_admin(&format!("/v2/{gun}/_trust/tuf/{role}.key"));
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        Key::from_value(json::parse(&r.body).unwrap()).unwrap()
    }

    /// Publishes files (role, bytes) with the admin token.
    pub fn publish(&self, gun: &str, files: &[(&str, Vec<u8>)]) -> Resp {
        self.publish_with(gun, files, Some(&self.admin_token))
    }

    pub fn publish_with(&self, gun: &str, files: &[(&str, Vec<u8>)], token: Option<&str>) -> Resp {
        Resp::from(vouch_testkit::trust_api::publish(
            &self.client,
            &self.base,
            gun,
            files,
            token,
        ))
    }

    /// A POST of a raw body to the publish endpoint, with the admin token.
    pub fn post_raw(&self, gun: &str, content_type: &str, body: &'static str) -> Resp {
        Resp::from(
            self.client
                .post(self.tuf_url(gun, ""))
                .bearer_auth(&self.admin_token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .unwrap(),
        )
    }

    /// The current bytes of a role (None when 404).
    pub fn current(&self, gun: &str, role: &str) -> Option<Vec<u8>> {
        let r = self.get(&format!("/v2/{gun}/_trust/tuf/{role}.json"));
        (r.status == StatusCode::OK).then_some(r.body)
    }
}

/// Asserts that the `/metrics` text `text` has `line` (a series and its value) as a whole line.
pub fn assert_metric(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "no line {line:?} in the metrics:\n{text}"
    );
}

/// A response, read whole.
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl From<reqwest::blocking::Response> for Resp {
    fn from(r: reqwest::blocking::Response) -> Self {
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.bytes().unwrap().to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        json::parse(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The first error's code, from a registry-style error body.
    pub fn error_code(&self) -> String {
        let v = self.json();
        v.as_object().unwrap()["errors"].as_array().unwrap()[0]
            .as_object()
            .unwrap()["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn error_message(&self) -> String {
        let v = self.json();
        v.as_object().unwrap()["errors"].as_array().unwrap()[0]
            .as_object()
            .unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// A fresh server with `gun` initialised: root v1, and targets v1 signing `v1`.
pub fn server_with_repo(gun: &str) -> (Server, ClientRepo) {
    let s = Server::start();
    let c = ClientRepo::new(&s, gun);
    c.publish_initial(&s, &["v1"]);
    (s, c)
}

/// Keys a client holds for one repository, and builders of its metadata.
pub struct ClientRepo {
    pub gun: String,
    pub root_key: PrivateKey,
    pub targets_key: PrivateKey,
    pub timestamp_key: Key,
    pub snapshot_key: Key,
    pub expires: Timestamp,
}

pub fn gen() -> PrivateKey {
    PrivateKey::generate(Algorithm::Ed25519).unwrap()
}

pub fn key_of(sk: &PrivateKey) -> Key {
    Key::from_verifying_key(&sk.verifying_key())
}

impl ClientRepo {
    /// Fresh client keys, with the server's online keys for `gun`.
    pub fn new(server: &Server, gun: &str) -> Self {
        ClientRepo {
            gun: gun.to_owned(),
            root_key: gen(),
            targets_key: gen(),
            timestamp_key: server.online_key(gun, "timestamp"),
            snapshot_key: server.online_key(gun, "snapshot"),
            expires: Timestamp::parse("2099-01-01T00:00:00Z").unwrap(),
        }
    }

    pub fn root(&self, version: u64) -> Root {
        let mut r = Root::new(self.expires);
        r.common.version = vouch_tuf::types::Version::new(version).unwrap();
        r.add_key(TopLevelRole::Root, key_of(&self.root_key));
        r.add_key(TopLevelRole::Targets, key_of(&self.targets_key));
        r.add_key(TopLevelRole::Snapshot, self.snapshot_key.clone());
        r.add_key(TopLevelRole::Timestamp, self.timestamp_key.clone());
        r
    }

    /// Publishes root v1 and targets v1 signing `tags`, asserting the server accepts them.
    pub fn publish_initial(&self, server: &Server, tags: &[&str]) {
        let r = server.publish(
            &self.gun,
            &[
                ("root", self.signed_root(1)),
                ("targets", self.signed_targets(1, tags)),
            ],
        );
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }

    pub fn signed_root(&self, version: u64) -> Vec<u8> {
        Metadata::signed_by(self.root(version), &[&self.root_key])
            .unwrap()
            .to_bytes()
    }

    pub fn targets(&self, version: u64, tags: &[&str]) -> Targets {
        let mut t = Targets::new(self.expires);
        t.common.version = vouch_tuf::types::Version::new(version).unwrap();
        for tag in tags {
            t.add_target(TargetName::new(*tag).unwrap(), image_target(tag));
        }
        t
    }

    pub fn signed_targets(&self, version: u64, tags: &[&str]) -> Vec<u8> {
        Metadata::signed_by(self.targets(version, tags), &[&self.targets_key])
            .unwrap()
            .to_bytes()
    }
}

/// The target vouch would sign for a tag in these tests: a digest derived from the tag.
pub fn image_target(tag: &str) -> TargetFile {
    TargetFile::image(
        &digest_of(tag),
        1000 + tag.len() as u64,
        Some("application/vnd.oci.image.manifest.v1+json"),
    )
}

pub fn digest_of(tag: &str) -> Digest {
    Digest::sha256_of(format!("manifest of {tag}").as_bytes())
}

/// Runs `cmd`; panics with its stdout and stderr unless it exits 0, and returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The python with python-tuf (from ./scripts/test, or target/venv).
pub fn python() -> PathBuf {
    vouch_testkit::python::python()
}

pub fn python_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// Reads one HTTP/1.1 response with a `content-length` body from `conn`; returns its head
/// (status line and headers), or `None` when the connection closed (or its read timeout ran
/// out) first.
pub fn read_head(conn: &mut BufReader<std::net::TcpStream>) -> Option<String> {
    vouch_testkit::http::read_response(conn).map(|(head, _)| head)
}

/// How long a test waits for an event.
pub const WAIT: Duration = Duration::from_secs(20);

/// One open event stream (`GET …/_trust/events`), read by a thread of its own into a channel.
pub struct EventStream {
    frames: mpsc::Receiver<Result<Frame, String>>,
    /// Set when dropped: the reading thread then closes the connection at its next read
    /// (keep-alives come every second in these tests).
    closed: Arc<AtomicBool>,
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
    }
}

impl EventStream {
    /// Opens `path` with `token` and, if given, `Last-Event-ID`; the status and body of a
    /// refusal.
    pub fn open(
        s: &Server,
        path: &str,
        token: Option<&str>,
        last: Option<u64>,
    ) -> Result<Self, (StatusCode, String)> {
        let client = reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .unwrap();
        let mut req = client.get(s.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(id) = last {
            req = req.header("last-event-id", id.to_string());
        }
        let mut resp = req.send().unwrap();
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| format!(" retry-after={}", v.to_str().unwrap()))
                .unwrap_or_default();
            return Err((status, format!("{}{retry}", resp.text().unwrap())));
        }
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let (tx, rx) = mpsc::channel();
        let closed = Arc::new(AtomicBool::new(false));
        let gone = closed.clone();
        std::thread::spawn(move || {
            let mut reader = SseReader::default();
            let mut buf = [0u8; 8192];
            loop {
                let n = match resp.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if gone.load(Ordering::Acquire) {
                    return;
                }
                reader.push(&buf[..n]);
                while let Some(frame) = reader.next_frame() {
                    if tx.send(frame.map_err(|e| e.to_string())).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(EventStream { frames: rx, closed })
    }

    /// The next frame, or `None` when none comes within `wait` (or the stream ended).
    pub fn next(&self, wait: Duration) -> Option<Frame> {
        self.frames.recv_timeout(wait).ok().map(|f| f.unwrap())
    }

    /// The next `n` events (frames of other kinds are skipped).
    pub fn events(&self, n: usize) -> Vec<Event> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.next(WAIT) {
                Some(Frame::Event(e)) => out.push(e),
                Some(_) => {}
                None => panic!("only {} of {n} events arrived: {out:?}", out.len()),
            }
        }
        out
    }

    /// Asserts that no event arrives within `wait`.
    pub fn quiet(&self, wait: Duration) {
        let deadline = std::time::Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.next(left) {
                Some(Frame::Event(e)) => panic!("unexpected event {e:?}"),
                Some(_) => {}
                None => return,
            }
        }
    }
}

/// The path of the event stream of `gun`, or of every repository.
pub fn events_path(gun: Option<&str>) -> String {
    match gun {
        Some(g) => format!("/v2/{g}/_trust/events"),
        None => "/v2/_trust/events".to_owned(),
    }
}
