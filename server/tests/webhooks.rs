//! Signed webhook deliveries through a real `vouch-server` process and a real receiver (an
//! HTTP/1.1 server on a loopback port that answers as each test scripts it): every event of
//! the followed repositories accepted exactly once and in order, through refused
//! connections, error answers, stalls past the timeout, a server killed mid-delivery and a
//! subscription that gave up and was resumed; every delivery's `v1a` (ed25519) and `v1`
//! (HMAC-SHA256) signatures checked here, apart from the server's code, and shown to cover
//! the id, the timestamp and the body; destinations the rules refuse, at startup and (a name
//! resolving to loopback) at delivery time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use common::{ClientRepo, Server};
use reqwest::StatusCode;
use vouch_tuf::api::event::decode_webhook_payload;
use vouch_tuf::crypto::{Signer, VerifyingKey};

/// How long any awaited outcome may take before the test fails.
const WAIT: Duration = Duration::from_secs(40);
/// Longer than the servers' `timeout_seconds` (1).
const STALL: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------
// The receiver.

/// What the receiver answers one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// This status at once.
    Status(u16),
    /// Nothing for [`STALL`] (past the server's timeout), then 200 to no one.
    Stall,
}

/// One POST the receiver read.
#[derive(Clone, Debug)]
struct Delivery {
    /// Header names in lower case.
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    answer: Answer,
}

impl Delivery {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn id(&self) -> &str {
        self.header("webhook-id")
    }

    fn accepted(&self) -> bool {
        matches!(self.answer, Answer::Status(s) if (200..300).contains(&s))
    }

    /// The changefeed id of the delivered event.
    fn event_id(&self) -> u64 {
        decode_webhook_payload(&self.body).unwrap().id
    }
}

#[derive(Default)]
struct Shared {
    deliveries: Mutex<Vec<Delivery>>,
    /// Answers for the next deliveries, in order; then `default`.
    script: Mutex<VecDeque<Answer>>,
    default: Mutex<Option<Answer>>,
    /// Every connection accepted, HTTP or not.
    connections: AtomicUsize,
    /// Whether connections stay open for further requests (else each is closed after its
    /// answer).
    keep_alive: AtomicBool,
}

/// A receiver at a fixed loopback port; it can be stopped (the port then refuses
/// connections) and started again on the same port.
struct Receiver {
    port: u16,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// A receiver on a fresh port, answering `default` unless scripted otherwise.
    fn start(default: Answer) -> Self {
        let shared = Arc::new(Shared::default());
        *shared.default.lock().unwrap() = Some(default);
        let mut r = Receiver {
            port: 0,
            shared,
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        r.listen();
        r
    }

    /// A receiver for `port`, not listening yet (connections are refused until
    /// [`Receiver::listen`]).
    fn at(port: u16, default: Answer) -> Self {
        let shared = Arc::new(Shared::default());
        *shared.default.lock().unwrap() = Some(default);
        Receiver {
            port,
            shared,
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Listens on the port (a fresh one when it is 0).
    fn listen(&mut self) {
        assert!(self.thread.is_none(), "already listening");
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        self.port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        self.stop = Arc::new(AtomicBool::new(false));
        let (shared, stop) = (self.shared.clone(), self.stop.clone());
        self.thread = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        shared.connections.fetch_add(1, Ordering::SeqCst);
                        let shared = shared.clone();
                        std::thread::spawn(move || serve(conn, &shared));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }));
    }

    /// Stops listening: the port refuses connections until [`Receiver::listen`].
    fn close(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    fn script(&self, answers: &[Answer]) {
        self.shared.script.lock().unwrap().extend(answers);
    }

    /// Keeps connections open after an answer, as most HTTP servers do.
    fn keep_alive(self) -> Self {
        self.shared.keep_alive.store(true, Ordering::Release);
        self
    }

    fn set_default(&self, a: Answer) {
        *self.shared.default.lock().unwrap() = Some(a);
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().unwrap().clone()
    }

    /// The changefeed ids of the accepted deliveries, in the order they were accepted.
    fn accepted(&self) -> Vec<u64> {
        self.deliveries()
            .iter()
            .filter(|d| d.accepted())
            .map(Delivery::event_id)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.close();
    }
}

/// Reads requests from `conn`, records them, and answers each as scripted; one request per
/// connection unless the receiver keeps connections alive.
fn serve(conn: TcpStream, shared: &Shared) {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let Some((headers, body)) = read_request(&mut reader) else {
            return;
        };
        let answer = {
            let next = shared.script.lock().unwrap().pop_front();
            next.or(*shared.default.lock().unwrap()).unwrap()
        };
        shared.deliveries.lock().unwrap().push(Delivery {
            headers,
            body,
            answer,
        });
        let (status, keep) = match answer {
            Answer::Status(s) => (s, shared.keep_alive.load(Ordering::Acquire)),
            Answer::Stall => {
                std::thread::sleep(STALL);
                (200, false)
            }
        };
        let conn = reader.get_mut();
        let written = if keep {
            // A short answer the server reads away (none after 204, which has no body).
            let body = if status == 204 { "" } else { "ok" };
            write!(
                conn,
                "HTTP/1.1 {status} Scripted\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        } else {
            write!(
                conn,
                "HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
        };
        if written.and_then(|()| conn.flush()).is_err() || !keep {
            return;
        }
    }
}

/// One POST's headers (names in lower case) and body; `None` when the connection ends
/// first.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(BTreeMap<String, String>, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 || !line.starts_with("POST ") {
        return None;
    }
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers
        .get("content-length")
        .expect("a delivery without content-length")
        .parse()
        .unwrap();
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((headers, body))
}

// ---------------------------------------------------------------------------------------
// Verification, written from the Standard Webhooks specification rather than the server's
// code: the signed content is `ID.TIMESTAMP.BODY`.

struct Verifier {
    key: VerifyingKey,
    raw_key: Vec<u8>,
    secret: Option<Vec<u8>>,
}

impl Verifier {
    /// The server's public key from `GET /v2/_trust/webhooks/key`, and `secret` if the
    /// subscription has one.
    fn of(s: &Server, secret: Option<&[u8]>) -> Self {
        let r = s.get("/v2/_trust/webhooks/key");
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let text = r.text();
        let b64 = text.trim().strip_prefix("whpk_").expect("whpk_ prefix");
        let raw_key = Base64::decode_vec(b64).unwrap();
        assert_eq!(raw_key.len(), 32);
        Verifier {
            key: VerifyingKey::from_ed25519_bytes(&raw_key).unwrap(),
            raw_key,
            secret: secret.map(<[u8]>::to_vec),
        }
    }

    /// The signatures of the `webhook-signature` header by scheme.
    fn signatures(header: &str) -> Vec<(String, Vec<u8>)> {
        header
            .split(' ')
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (scheme, sig) = e.split_once(',').unwrap();
                (scheme.to_owned(), Base64::decode_vec(sig).unwrap())
            })
            .collect()
    }

    fn content(id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
        let mut c = format!("{id}.{timestamp}.").into_bytes();
        c.extend_from_slice(body);
        c
    }

    /// Whether the `v1a` signature verifies over `id`, `timestamp` and `body`.
    fn ed25519_ok(&self, sigs: &[(String, Vec<u8>)], id: &str, ts: &str, body: &[u8]) -> bool {
        let content = Self::content(id, ts, body);
        let v1a: Vec<_> = sigs.iter().filter(|(s, _)| s == "v1a").collect();
        assert_eq!(v1a.len(), 1, "one v1a signature");
        self.key.verify(&content, &v1a[0].1).is_ok()
    }

    /// Whether the `v1` HMAC verifies over `id`, `timestamp` and `body`.
    fn hmac_ok(&self, sigs: &[(String, Vec<u8>)], id: &str, ts: &str, body: &[u8]) -> bool {
        let secret = self.secret.as_ref().expect("a secret");
        let content = Self::content(id, ts, body);
        let v1: Vec<_> = sigs.iter().filter(|(s, _)| s == "v1").collect();
        assert_eq!(v1.len(), 1, "one v1 signature");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        ring::hmac::verify(&key, &content, &v1[0].1).is_ok()
    }

    /// Checks everything a receiver checks of `d`, panicking with what failed.
    fn check(&self, d: &Delivery) {
        let (id, ts) = (d.id(), d.header("webhook-timestamp"));
        let sigs = Self::signatures(d.header("webhook-signature"));
        assert!(self.ed25519_ok(&sigs, id, ts, &d.body), "v1a fails: {d:?}");
        match &self.secret {
            Some(_) => assert!(self.hmac_ok(&sigs, id, ts, &d.body), "v1 fails: {d:?}"),
            None => assert!(sigs.iter().all(|(s, _)| s != "v1"), "a v1 without a secret"),
        }
        let ts: i64 = ts.parse().expect("an integer timestamp");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((ts - now).abs() < 600, "timestamp {ts} far from now {now}");
        let event = decode_webhook_payload(&d.body).expect("a Standard Webhooks payload");
        assert_eq!(id, format!("vouch-{}", event.id));
        assert_eq!(d.header("content-type"), "application/json");
    }
}

/// Checks every delivery the receiver got: signatures, ids; retries of one id carry the
/// same body; ids never go backwards (in order, a later event only after the earlier one
/// was accepted).
fn check_all(v: &Verifier, deliveries: &[Delivery]) {
    let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut last = 0;
    for d in deliveries {
        v.check(d);
        let body = bodies.entry(d.id().to_owned()).or_insert(d.body.clone());
        assert_eq!(*body, d.body, "a retry of {} with another body", d.id());
        let id = d.event_id();
        assert!(id >= last, "event {id} delivered after {last}");
        last = id;
    }
    // A delivery moves on to another event only once the one before was accepted.
    for pair in deliveries.windows(2) {
        if pair[0].event_id() != pair[1].event_id() {
            assert!(
                pair[0].accepted(),
                "event {} delivered before {} was accepted",
                pair[1].event_id(),
                pair[0].event_id()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Servers.

const ORG: &str = "example.com/org/app";
const OTHER: &str = "example.com/other/app";

/// A subscription for a config file.
struct Sub<'a> {
    name: &'a str,
    url: String,
    guns: &'a [&'a str],
    secret_file: Option<&'a Path>,
}

fn sub_toml(s: &Sub<'_>) -> String {
    let guns: Vec<String> = s.guns.iter().map(|g| format!("{g:?}")).collect();
    let mut t = format!(
        "[[webhooks.subscriptions]]\nname = {:?}\nurl = {:?}\nguns = [{}]\n",
        s.name,
        s.url,
        guns.join(", ")
    );
    if let Some(f) = s.secret_file {
        t.push_str(&format!("secret_file = {:?}\n", f.to_str().unwrap()));
    }
    t
}

/// The `[webhooks]` settings of these tests: loopback and http allowed, a 1 s timeout,
/// short leases and backoffs; then `extra` settings.
fn webhooks_toml(extra: &str) -> String {
    format!(
        "[webhooks]\nallow_private_addresses = true\nallow_http = true\ntimeout_seconds = 1\n\
         lease_seconds = 3\nbackoff_initial_ms = 100\nbackoff_max_seconds = 1\n{extra}"
    )
}

/// Writes `text` as a config file in `dir`.
fn write_config(dir: &Path, text: &str) -> PathBuf {
    let cfg = dir.join("vouch.toml");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn start(cfg: &Path) -> Server {
    Server::start_with_args(&["--config", cfg.to_str().unwrap()])
}

/// A `whsec_` secret written to `dir/name`; its raw bytes.
fn secret(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let raw: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, format!("whsec_{}\n", Base64::encode_string(&raw))).unwrap();
    // Secrets others could read are refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    (path, raw)
}

/// Publishes targets versions `from..=to` of `c`'s repository.
fn publish(s: &Server, c: &ClientRepo, from: u64, to: u64) {
    for v in from..=to {
        let tag = format!("v{v}");
        let r = s.publish(&c.gun, &[("targets", c.signed_targets(v, &[tag.as_str()]))]);
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
}

/// The changefeed ids of the entries of repositories matching `follows`, oldest first.
fn changefeed_ids(s: &Server, follows: impl Fn(&str) -> bool) -> Vec<u64> {
    let r = s.get_admin("/v2/_trust/changefeed?change_id=0&records=1000");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let mut ids: Vec<u64> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| follows(c["GUN"].as_str().unwrap()))
        .map(|c| c["ID"].as_str().unwrap().parse().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

/// Subscription `name` in `GET /v2/_trust/webhooks`.
fn listed(s: &Server, name: &str) -> serde_json::Value {
    let r = s.get_admin("/v2/_trust/webhooks");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {v}"))
        .clone()
}

/// Waits until the server's `/metrics` has `line` (the receiver records a delivery before
/// the server reads its answer and counts it).
fn wait_metric(s: &Server, line: &str) {
    wait_for(line, || {
        let text = s.get_admin("/metrics").text();
        if text.lines().any(|l| l == line) {
            Ok(())
        } else {
            Err(text)
        }
    });
}

/// Polls `f` until it gives a value, failing after [`WAIT`] with `what` and the last state.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        match f() {
            Ok(t) => return t,
            Err(last) if Instant::now() > deadline => {
                panic!("timed out waiting for {what}: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Waits until the receiver accepted exactly `want` (more is a failure at once).
fn wait_accepted(r: &Receiver, want: &[u64]) {
    wait_for("every event accepted", || {
        let got = r.accepted();
        assert!(
            want.starts_with(&got),
            "accepted {got:?}, expected a prefix of {want:?}"
        );
        if got == want {
            Ok(())
        } else {
            Err(format!("accepted {got:?} of {want:?}"))
        }
    });
}

fn post(s: &Server, path: &str, token: Option<&str>) -> StatusCode {
    let mut req = s.client.post(s.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().unwrap().status()
}

// ---------------------------------------------------------------------------------------
// Tests.

#[test]
fn every_followed_event_is_delivered_once_in_order_and_signed() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Answer::Status(204)).keep_alive();
    let (secret_file, raw) = secret(tmp.path(), "org.secret");
    let cfg = write_config(
        tmp.path(),
        &(webhooks_toml("")
            + &sub_toml(&Sub {
                name: "org",
                url: receiver.url(),
                guns: &["example.com/org/*"],
                secret_file: Some(&secret_file),
            })),
    );
    let s = start(&cfg);
    let verifier = Verifier::of(&s, Some(&raw));
    let (org, other) = (ClientRepo::new(&s, ORG), ClientRepo::new(&s, OTHER));
    org.publish_initial(&s, &["v1"]);
    other.publish_initial(&s, &["v1"]);
    for v in 2..=10 {
        publish(&s, &org, v, v);
        publish(&s, &other, v, v);
    }

    let want = changefeed_ids(&s, |g| g.starts_with("example.com/org/"));
    assert_eq!(want.len(), 10, "{want:?}");
    wait_accepted(&receiver, &want);
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), want.len(), "only accepted deliveries");
    check_all(&verifier, &deliveries);
    for d in &deliveries {
        assert_eq!(decode_webhook_payload(&d.body).unwrap().gun, ORG);
    }
    // Nothing of the other repository comes later either.
    publish(&s, &org, 11, 11);
    let want = changefeed_ids(&s, |g| g.starts_with("example.com/org/"));
    wait_accepted(&receiver, &want);
    assert!(receiver
        .deliveries()
        .iter()
        .all(|d| { decode_webhook_payload(&d.body).unwrap().gun == ORG }));
    // The cursor is saved once the server has read the last answer.
    let last = *want.last().unwrap() as i64;
    wait_for("the cursor at the last event", || {
        let l = listed(&s, "org");
        if l["status"] == "active" && l["cursor"] == last {
            Ok(())
        } else {
            Err(l.to_string())
        }
    });
}

#[test]
fn failures_are_retried_until_every_event_is_accepted_once_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    // A port nothing listens on yet: connections are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut receiver = Receiver::at(port, Answer::Status(200));
    let cfg = write_config(
        tmp.path(),
        &(webhooks_toml("max_attempts = 100\n")
            + &sub_toml(&Sub {
                name: "flaky",
                url: receiver.url(),
                guns: &["*"],
                secret_file: None,
            })),
    );
    let s = start(&cfg);
    let verifier = Verifier::of(&s, None);
    let c = ClientRepo::new(&s, ORG);
    c.publish_initial(&s, &["v1"]);
    publish(&s, &c, 2, 4);

    wait_for("a refused connection", || {
        let l = listed(&s, "flaky");
        let e = l["last_error"].as_str().unwrap_or_default();
        if e.contains("connect") && l["status"] == "retrying" {
            Ok(())
        } else {
            Err(l.to_string())
        }
    });
    assert_eq!(receiver.shared.connections.load(Ordering::SeqCst), 0);
    let s500 = Answer::Status(500);
    receiver.script(&[s500, s500, s500, Answer::Stall, Answer::Stall]);
    receiver.listen();
    let want = changefeed_ids(&s, |_| true);
    wait_accepted(&receiver, &want);

    // The receiver goes away, changes go on, the receiver comes back on its port.
    receiver.close();
    publish(&s, &c, 5, 8);
    wait_for("a refused connection after the receiver went away", || {
        let l = listed(&s, "flaky");
        let e = l["last_error"].as_str().unwrap_or_default();
        if e.contains("connect") && l["attempts"].as_u64() > Some(0) {
            Ok(())
        } else {
            Err(l.to_string())
        }
    });
    receiver.listen();
    let want = changefeed_ids(&s, |_| true);
    wait_accepted(&receiver, &want);

    let deliveries = receiver.deliveries();
    check_all(&verifier, &deliveries);
    let answers: Vec<Answer> = deliveries.iter().map(|d| d.answer).collect();
    assert_eq!(
        answers[..5],
        [s500, s500, s500, Answer::Stall, Answer::Stall]
    );
    // The five failures were of the first event, tried again with the same id and body.
    assert!(deliveries[..6].iter().all(|d| d.id() == deliveries[0].id()));
    let metrics = s.get_admin("/metrics").text();
    let failed: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "vouch_webhook_deliveries_total{subscription=\"flaky\",outcome=\"failed\"} ",
            )
        })
        .unwrap_or_else(|| panic!("no failed count in {metrics}"))
        .parse()
        .unwrap();
    assert!(failed >= 7, "{failed} failures counted");
    wait_metric(
        &s,
        &format!(
            "vouch_webhook_deliveries_total{{subscription=\"flaky\",outcome=\"delivered\"}} {}",
            want.len()
        ),
    );
}

#[test]
fn the_signatures_cover_the_id_the_timestamp_and_the_body() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Answer::Status(200)).keep_alive();
    let (secret_file, raw) = secret(tmp.path(), "s");
    let cfg = write_config(
        tmp.path(),
        &(webhooks_toml("")
            + &sub_toml(&Sub {
                name: "all",
                url: receiver.url(),
                guns: &["*"],
                secret_file: Some(&secret_file),
            })),
    );
    let s = start(&cfg);
    let verifier = Verifier::of(&s, Some(&raw));
    ClientRepo::new(&s, ORG).publish_initial(&s, &["v1"]);
    let want = changefeed_ids(&s, |_| true);
    wait_accepted(&receiver, &want);
    let d = &receiver.deliveries()[0];
    verifier.check(d);

    let (id, ts) = (d.id().to_owned(), d.header("webhook-timestamp").to_owned());
    let sigs = Verifier::signatures(d.header("webhook-signature"));
    assert!(verifier.ed25519_ok(&sigs, &id, &ts, &d.body));
    assert!(verifier.hmac_ok(&sigs, &id, &ts, &d.body));
    let mut flipped = d.body.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    let later = (ts.parse::<i64>().unwrap() + 1).to_string();
    let other_id = format!("vouch-{}", d.event_id() + 1);
    for (what, id, ts, body) in [
        ("a flipped body byte", &id, &ts, &flipped),
        ("another id", &other_id, &ts, &d.body),
        ("another timestamp", &id, &later, &d.body),
    ] {
        assert!(
            !verifier.ed25519_ok(&sigs, id, ts, body),
            "v1a survives {what}"
        );
        assert!(!verifier.hmac_ok(&sigs, id, ts, body), "v1 survives {what}");
    }
    // A signature by another key or with another secret fails too.
    let other_key = common::gen().verifying_key();
    let stranger = Verifier {
        raw_key: other_key.material().to_vec(),
        key: other_key,
        secret: Some(vec![9u8; 32]),
    };
    assert_ne!(stranger.raw_key, verifier.raw_key);
    assert!(!stranger.ed25519_ok(&sigs, &id, &ts, &d.body));
    assert!(!stranger.hmac_ok(&sigs, &id, &ts, &d.body));

    // The Python verification docs/events.md shows agrees, on the same delivery.
    let public_key = s.get("/v2/_trust/webhooks/key").text().trim().to_owned();
    let request = serde_json::json!({
        "docs": concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.md"),
        "headers": d.headers,
        "body": Base64::encode_string(&d.body),
        "tampered": Base64::encode_string(&flipped),
        "public_key": public_key,
        "secret": std::fs::read_to_string(&secret_file).unwrap().trim(),
    });
    let mut child = std::process::Command::new(common::python())
        .arg(common::python_script("docs_webhook_verify.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the documented Python verification failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        d.event_id().to_string()
    );
}

#[test]
fn a_server_killed_mid_delivery_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Answer::Status(200));
    let cfg = write_config(
        tmp.path(),
        &(webhooks_toml("")
            + &sub_toml(&Sub {
                name: "survivor",
                url: receiver.url(),
                guns: &["*"],
                secret_file: None,
            })),
    );
    let mut s = start(&cfg);
    let verifier = Verifier::of(&s, None);
    let c = ClientRepo::new(&s, ORG);
    c.publish_initial(&s, &["v1"]);
    publish(&s, &c, 2, 3);
    let first = changefeed_ids(&s, |_| true);
    wait_accepted(&receiver, &first);

    // The next delivery stalls; the server dies while it waits.
    receiver.script(&[Answer::Stall]);
    publish(&s, &c, 4, 6);
    wait_for("the stalled delivery", || {
        if receiver
            .deliveries()
            .iter()
            .any(|d| d.answer == Answer::Stall)
        {
            Ok(())
        } else {
            Err(format!("{} deliveries", receiver.deliveries().len()))
        }
    });
    s.kill();
    let before_restart = receiver.deliveries().len();
    s.restart();
    assert_eq!(
        Verifier::of(&s, None).raw_key,
        verifier.raw_key,
        "the signing key changed on restart"
    );
    publish(&s, &c, 7, 8);
    let want = changefeed_ids(&s, |_| true);
    wait_accepted(&receiver, &want);
    let deliveries = receiver.deliveries();
    check_all(&verifier, &deliveries);
    let stalled = deliveries
        .iter()
        .find(|d| d.answer == Answer::Stall)
        .unwrap();
    assert!(
        deliveries
            .iter()
            .any(|d| d.accepted() && d.id() == stalled.id()),
        "the event in flight was never accepted"
    );
    // What was accepted after the kill, the new process delivered.
    let after: usize = deliveries[before_restart..]
        .iter()
        .filter(|d| d.accepted())
        .count();
    assert!(after > 0);
    wait_metric(
        &s,
        &format!(
            "vouch_webhook_deliveries_total{{subscription=\"survivor\",outcome=\"delivered\"}} {after}"
        ),
    );
}

#[test]
fn a_dead_subscription_waits_for_resume_then_delivers_the_rest_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Answer::Status(500));
    let cfg = write_config(
        tmp.path(),
        &(webhooks_toml("max_attempts = 3\n")
            + &sub_toml(&Sub {
                name: "fragile",
                url: receiver.url(),
                guns: &["*"],
                secret_file: None,
            })),
    );
    let s = start(&cfg);
    let verifier = Verifier::of(&s, None);
    let c = ClientRepo::new(&s, ORG);
    c.publish_initial(&s, &["v1"]);

    let dead = wait_for("the subscription to give up", || {
        let l = listed(&s, "fragile");
        if l["status"] == "dead" {
            Ok(l)
        } else {
            Err(l.to_string())
        }
    });
    let error = dead["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("500"), "{dead}");
    assert_eq!(dead["attempts"], 3, "{dead}");
    assert_eq!(receiver.deliveries().len(), 3);
    common::assert_metric(
        &s.get_admin("/metrics").text(),
        "vouch_webhook_dead{subscription=\"fragile\"} 1",
    );

    // Dead: changes go on, nothing is attempted (the delivery loop looks again every
    // lease/3 = 1 s and the longest backoff is 1 s, so 3 s would show a retry).
    publish(&s, &c, 2, 3);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.deliveries().len(), 3, "attempts while dead");
    assert_eq!(listed(&s, "fragile")["status"], "dead");

    // Refusals of resume.
    assert_eq!(
        post(&s, "/v2/_trust/webhooks/fragile/resume", None),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(
            &s,
            "/v2/_trust/webhooks/nobody/resume",
            Some(&s.admin_token)
        ),
        StatusCode::NOT_FOUND
    );
    assert_eq!(listed(&s, "fragile")["status"], "dead");

    receiver.set_default(Answer::Status(200));
    assert_eq!(
        post(
            &s,
            "/v2/_trust/webhooks/fragile/resume",
            Some(&s.admin_token)
        ),
        StatusCode::OK
    );
    let want = changefeed_ids(&s, |_| true);
    assert_eq!(want.len(), 3);
    wait_accepted(&receiver, &want);
    let deliveries = receiver.deliveries();
    check_all(&verifier, &deliveries);
    // The failed event is the first one delivered after the resume.
    assert_eq!(deliveries[3].event_id(), want[0]);
    let last = *want.last().unwrap() as i64;
    wait_for("the cursor at the last event", || {
        let l = listed(&s, "fragile");
        if l["status"] == "active" && l["cursor"] == last && l["last_error"].is_null() {
            Ok(())
        } else {
            Err(l.to_string())
        }
    });
}

/// Starts `vouch-server` with `config`: its exit code (None if it still ran after `wait`)
/// and stderr.
fn refused(dir: &Path, i: usize, config: &str, wait: Duration) -> (Option<i32>, String) {
    let cfg = dir.join(format!("config-{i}.toml"));
    std::fs::write(&cfg, config).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vouch-server"))
        .arg("--config")
        .arg(&cfg)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join(format!("data-{i}")))
        .env_remove("VOUCH_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + wait;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, err)
}

#[test]
fn destinations_the_rules_refuse_stop_the_server_at_startup() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (good_secret, _) = secret(dir, "good.secret");
    let private = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    };
    let short = private(
        "short.secret",
        format!("whsec_{}", Base64::encode_string(&[1u8; 16])),
    );
    let plain = private("plain.secret", Base64::encode_string(&[1u8; 32]));
    // A good secret others may read.
    let open = dir.join("open.secret");
    std::fs::copy(&good_secret, &open).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let one = |name: &str, url: &str, secret: Option<&Path>| {
        sub_toml(&Sub {
            name,
            url: url.to_owned(),
            guns: &["*"],
            secret_file: secret,
        })
    };
    let cases: Vec<(String, &str)> = vec![
        (
            "[webhooks]\nallowed_urls = [\"https://hooks.example.com/vouch\"]\n".to_owned()
                + &one("a", "https://hooks.example.com/vouch-evil", None),
            "outside webhooks.allowed_urls",
        ),
        (
            "[webhooks]\nallow_http = true\n".to_owned()
                + &one("a", "http://127.0.0.1:9/hook", None),
            "allow_private_addresses",
        ),
        (
            "[webhooks]\n".to_owned() + &one("a", "https://[::1]:9/hook", None),
            "allow_private_addresses",
        ),
        (
            "[webhooks]\n".to_owned() + &one("a", "http://hooks.example.com/", None),
            "allow_http",
        ),
        (
            "[webhooks]\n".to_owned() + &one("a", "https://user:hunter2@hooks.example.com/", None),
            "credentials",
        ),
        (
            "[webhooks]\n".to_owned()
                + &one("twin", "https://hooks.example.com/a", Some(&good_secret))
                + &one("twin", "https://hooks.example.com/b", None),
            "used twice",
        ),
        (
            "[webhooks]\n".to_owned() + &one("a", "https://hooks.example.com/", Some(&short)),
            "at least 24",
        ),
        (
            "[webhooks]\n".to_owned() + &one("a", "https://hooks.example.com/", Some(&plain)),
            "whsec_",
        ),
        (
            "[webhooks]\n".to_owned() + &one("a", "https://hooks.example.com/", Some(&open)),
            "chmod 600",
        ),
    ];
    for (i, (config, named)) in cases.iter().enumerate() {
        let (code, stderr) = refused(dir, i, config, WAIT);
        assert_eq!(code, Some(2), "{config}: {stderr}");
        assert!(stderr.contains(named), "{config}: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "a password in the error: {stderr}"
        );
    }
    // The same settings with a good subscription start.
    let good =
        "[webhooks]\n".to_owned() + &one("a", "https://hooks.example.com/", Some(&good_secret));
    let (code, stderr) = refused(dir, cases.len(), &good, Duration::from_secs(3));
    assert_eq!(code, None, "a good subscription refused: {stderr}");
}

#[test]
fn a_name_resolving_to_loopback_is_refused_at_delivery_time() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Answer::Status(200));
    let cfg = write_config(
        tmp.path(),
        &format!(
            "[webhooks]\ntimeout_seconds = 1\nlease_seconds = 3\nbackoff_initial_ms = 100\n\
             backoff_max_seconds = 1\n{}",
            sub_toml(&Sub {
                name: "sneaky",
                url: format!("https://localhost:{}/hook", receiver.port),
                guns: &["*"],
                secret_file: None,
            })
        ),
    );
    let s = start(&cfg);
    ClientRepo::new(&s, ORG).publish_initial(&s, &["v1"]);
    let l = wait_for("a refused delivery", || {
        let l = listed(&s, "sneaky");
        if l["attempts"].as_u64() >= Some(2) {
            Ok(l)
        } else {
            Err(l.to_string())
        }
    });
    let error = l["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("allow_private_addresses") && error.contains("localhost"),
        "{l}"
    );
    assert_eq!(
        receiver.shared.connections.load(Ordering::SeqCst),
        0,
        "the receiver was reached"
    );
    assert!(receiver.deliveries().is_empty());
}

/// Two replicas on one PostgreSQL database, one subscription: each event is accepted once,
/// in order, whichever replica the change went through and whichever holds the delivery
/// lease; every delivery verifies with the one shared key; when a replica is killed, the
/// other takes over the lease and delivers the rest.
#[test]
fn replicas_on_postgresql_deliver_each_event_once_and_take_over_from_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let db = common::postgres::PgCluster::shared().fresh_database();
    // The key every replica signs with: made once, given to both (a replica never makes it).
    let key_file = tmp.path().join("webhook-signing.pem");
    let key =
        vouch_tuf::crypto::PrivateKey::generate(vouch_tuf::crypto::Algorithm::Ed25519).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let body = Base64::encode_string(&der);
    std::fs::write(
        &key_file,
        format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let receiver = Receiver::start(Answer::Status(200)).keep_alive();
    let cfg = write_config(
        tmp.path(),
        &(webhooks_toml(&format!(
            "signing_key_file = {:?}\n",
            key_file.to_str().unwrap()
        )) + &sub_toml(&Sub {
            name: "shared",
            url: receiver.url(),
            guns: &["*"],
            secret_file: None,
        })),
    );
    let kek = tmp.path().join("kek");
    let env = [
        ("VOUCH_DATABASE_URL", db.as_str()),
        ("VOUCH_KEK_FILE", kek.to_str().unwrap()),
        ("VOUCH_LOG", "warn"),
    ];
    let args = ["--config", cfg.to_str().unwrap()];
    let mut a = Server::start_full(&env, &args);
    let b = Server::start_full(&env, &args);
    let verifier = Verifier::of(&a, None);
    assert_eq!(
        Verifier::of(&b, None).raw_key,
        verifier.raw_key,
        "the replicas publish different keys"
    );
    assert_eq!(verifier.raw_key, key.verifying_key().material());

    let c = ClientRepo::new(&a, ORG);
    c.publish_initial(&a, &["v1"]);
    for v in 2..=9 {
        let through = if v % 2 == 0 { &a } else { &b };
        publish(through, &c, v, v);
    }
    let want = changefeed_ids(&b, |_| true);
    assert_eq!(want.len(), 9);
    wait_accepted(&receiver, &want);
    check_all(&verifier, &receiver.deliveries());

    // One replica dies (whichever held the lease) once the last delivery's cursor is saved
    // (a kill between a delivery and its save is a repeat with the same id: see
    // `a_server_killed_mid_delivery_loses_nothing`): the other delivers the rest, each once,
    // when the lease runs out.
    let last = *want.last().unwrap();
    wait_for("the cursor saved", || {
        let cursor = listed(&b, "shared")["cursor"].as_u64();
        if cursor == Some(last) {
            Ok(())
        } else {
            Err(format!("cursor {cursor:?}"))
        }
    });
    a.kill();
    publish(&b, &c, 10, 12);
    let want = changefeed_ids(&b, |_| true);
    wait_accepted(&receiver, &want);
    check_all(&verifier, &receiver.deliveries());
}
