//! A slow or overloaded trust server, and reviews that fan out: what the webhook decides and
//! how much work it does.
//!
//! A real `vouch-server` holds the trust data; in front of it runs a small proxy (a real
//! loopback HTTP/1.1 listener) that can trickle chosen files byte by byte or delay every
//! answer, and counts the requests it received and whether the webhook hung up on a
//! trickled body. The tests assert verdicts, messages and those counts, never durations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{fixture, signed_server, Repo, REG};
use kube_core::admission::AdmissionReview;
use kube_core::DynamicObject;
use serde_json::Value;
use vouch_admission::decide::{Endpoint, Webhook};
use vouch_admission::policy::Policy;
use vouch_admission::trust::TrustConfig;
use vouch_verifier::clock::SystemClock;

/// What the proxy does to the files it forwards.
#[derive(Default)]
struct Behaviour {
    /// Paths containing this are trickled, one byte per `drip_every`.
    drip: Option<String>,
    drip_every: Duration,
    /// Every answer waits this long first.
    delay: Duration,
}

/// What the proxy saw.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<String>>,
    /// The webhook closed a connection while a trickled body was still being sent.
    hung_up_on_drip: AtomicBool,
}

struct Proxy {
    base: String,
    behaviour: Arc<Mutex<Behaviour>>,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let behaviour = Arc::new(Mutex::new(Behaviour::default()));
        let seen = Arc::new(Seen::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (b2, s2, st2, up) = (
            behaviour.clone(),
            seen.clone(),
            stop.clone(),
            upstream.to_owned(),
        );
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            for conn in listener.incoming() {
                let Ok(stream) = conn else { continue };
                let (b, s, st, up, client) = (
                    b2.clone(),
                    s2.clone(),
                    st2.clone(),
                    up.clone(),
                    client.clone(),
                );
                std::thread::spawn(move || serve_one(stream, &b, &s, &st, &up, &client));
            }
        });
        Proxy {
            base,
            behaviour,
            seen,
            stop,
        }
    }

    fn drip(&self, path_part: &str, every: Duration) {
        let mut b = self.behaviour.lock().unwrap();
        b.drip = Some(path_part.to_owned());
        b.drip_every = every;
    }

    fn delay(&self, d: Duration) {
        self.behaviour.lock().unwrap().delay = d;
    }

    fn requests(&self) -> Vec<String> {
        self.seen.requests.lock().unwrap().clone()
    }

    /// Waits (boundedly) until `n` requests with a path containing `part` arrived.
    fn wait_for_requests(&self, part: &str, n: usize) {
        for _ in 0..200 {
            if self.requests().iter().filter(|p| p.contains(part)).count() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("no request for {part}: {:?}", self.requests());
    }

    /// Waits (boundedly) until the webhook has hung up on a trickled body; true if it did.
    fn saw_hang_up(&self) -> bool {
        for _ in 0..200 {
            if self.seen.hung_up_on_drip.load(Ordering::SeqCst) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }

    /// Waits until no request arrived for a second (at most 20 s), then counts them.
    fn settled_count(&self) -> usize {
        let mut last = usize::MAX;
        for _ in 0..20 {
            let n = self.requests().len();
            if n == last {
                return n;
            }
            last = n;
            std::thread::sleep(Duration::from_secs(1));
        }
        last
    }
}

fn serve_one(
    stream: TcpStream,
    behaviour: &Mutex<Behaviour>,
    seen: &Seen,
    stop: &AtomicBool,
    upstream: &str,
    client: &reqwest::blocking::Client,
) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    seen.requests.lock().unwrap().push(path.clone());
    let (drip, every, delay) = {
        let b = behaviour.lock().unwrap();
        (
            b.drip.as_ref().is_some_and(|d| path.contains(d.as_str())),
            b.drip_every,
            b.delay,
        )
    };
    std::thread::sleep(delay);
    let Ok(resp) = client.get(format!("{upstream}{path}")).send() else {
        return;
    };
    let status = resp.status();
    let body = resp.bytes().unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    if !drip || !status.is_success() {
        let _ = stream.write_all(&body);
        return;
    }
    for byte in body.iter() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if stream.write_all(&[*byte]).is_err() {
            seen.hung_up_on_drip.store(true, Ordering::SeqCst);
            return;
        }
        std::thread::sleep(every);
    }
}

/// A webhook whose policy verifies each of `repos` against `server` (one rule each, as
/// `common::policy_text` writes them), plus `rules` and `extra` settings.
fn webhook(
    server: &str,
    repos: &[Repo],
    extra: &str,
    rules: &str,
    dir: &Path,
    tune: impl FnOnce(&mut TrustConfig),
) -> Arc<Webhook> {
    let text = format!(
        "{}\n{rules}",
        common::policy_text(server, repos, extra, dir)
    );
    let policy = Policy::parse(&text, dir).unwrap();
    let mut config = TrustConfig::new(
        dir.join("cache"),
        policy.refresh_interval,
        policy.deadline,
        Arc::new(SystemClock),
    );
    tune(&mut config);
    Arc::new(Webhook::new(policy, config))
}

/// A pod review whose containers run `images`.
fn pod(images: &[String]) -> AdmissionReview<DynamicObject> {
    let mut review = fixture("pod-create.json");
    let spec = review.pointer_mut("/request/object/spec").unwrap();
    spec.as_object_mut().unwrap().remove("initContainers");
    let template = spec["containers"][0].clone();
    spec["containers"] = Value::Array(
        images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                let mut c = template.clone();
                c["name"] = Value::from(format!("c{i}"));
                c["image"] = Value::from(image.as_str());
                c
            })
            .collect(),
    );
    serde_json::from_value(review).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The response part of the review's answer.
fn decide(rt: &tokio::runtime::Runtime, w: &Arc<Webhook>, images: &[String]) -> Value {
    rt.block_on(w.review(pod(images), Endpoint::Validate))["response"].clone()
}

fn message(resp: &Value) -> String {
    resp["status"]["message"].as_str().unwrap_or("").to_owned()
}

fn app() -> String {
    format!("{REG}/app:v1")
}

fn init() -> String {
    format!("{REG}/init:v1")
}

/// A server trickling `timestamp.json` is treated like an unreachable one: the refresh is
/// abandoned before the decision deadline, and the image is admitted from the last trusted,
/// unexpired state.
#[test]
fn a_trickling_trust_server_is_treated_like_an_unreachable_one() {
    // First, so that it is dropped last (after the proxy stopped trickling): dropping a
    // runtime waits for its blocking tasks.
    let rt = runtime();
    let (server, repos) = signed_server();
    let proxy = Proxy::start(&server.base);
    let dir = tempfile::tempdir().unwrap();
    let w = webhook(
        &proxy.base,
        &repos[..1],
        "refresh_interval_secs = 1\ndeadline_ms = 2000",
        "",
        dir.path(),
        |_| {},
    );
    let resp = decide(&rt, &w, &[app()]);
    assert_eq!(resp["allowed"], true, "{resp}");

    proxy.drip("timestamp.json", Duration::from_millis(100));
    std::thread::sleep(Duration::from_millis(1100)); // past the refresh interval
    let resp = decide(&rt, &w, &[app()]);
    assert_eq!(resp["allowed"], true, "{resp}");
    assert!(proxy.saw_hang_up(), "the webhook never gave up the trickle");
    let metrics = w.metrics().render();
    assert!(
        metrics.contains("vouch_admission_refreshes_total{result=\"failed\"} 1\n"),
        "{metrics}"
    );
}

/// Hundreds of reviews for a repository whose server trickles bytes neither hold the
/// blocking threads nor deny an unrelated, healthy repository: the healthy one is admitted
/// while the slow one is being trickled, and the slow one's reviews are answered from its
/// last trusted state.
#[test]
fn a_slow_repository_does_not_starve_the_others() {
    // First, so that it is dropped last (after the proxy stopped trickling): dropping a
    // runtime waits for its blocking tasks.
    let rt = runtime();
    let (server, repos) = signed_server();
    let proxy = Proxy::start(&server.base);
    let dir = tempfile::tempdir().unwrap();
    let w = webhook(
        &proxy.base,
        &repos[..2],
        "refresh_interval_secs = 1\ndeadline_ms = 3000",
        "",
        dir.path(),
        |_| {},
    );
    assert_eq!(decide(&rt, &w, &[app()])["allowed"], true);

    proxy.drip(
        "/org/app/_trust/tuf/timestamp.json",
        Duration::from_millis(100),
    );
    std::thread::sleep(Duration::from_millis(1100)); // app is due for a refresh
    let started = Arc::new(AtomicUsize::new(0));
    let slow: Vec<_> = (0..600)
        .map(|_| {
            let (w, started) = (w.clone(), started.clone());
            rt.spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                w.review(pod(&[app()]), Endpoint::Validate).await
            })
        })
        .collect();
    // The warm-up fetched it once; the second request is the refresh being trickled.
    proxy.wait_for_requests("/org/app/_trust/tuf/timestamp.json", 2);
    // Every slow review has started (and so reached the blocking path, if it goes there).
    for _ in 0..200 {
        if started.load(Ordering::SeqCst) == 600 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    // init was never asked about: a cold refresh on the blocking path.
    let healthy = decide(&rt, &w, &[init()]);
    assert_eq!(healthy["allowed"], true, "{healthy}");
    assert!(
        !proxy.seen.hung_up_on_drip.load(Ordering::SeqCst),
        "the trickle was over before the healthy repository was decided"
    );

    let answers = rt.block_on(async {
        let mut out = Vec::new();
        for h in slow {
            out.push(h.await.unwrap());
        }
        out
    });
    let admitted = answers
        .iter()
        .filter(|a| a["response"]["allowed"] == true)
        .count();
    assert_eq!(admitted, 600, "{}", answers[0]);
    assert!(proxy.saw_hang_up(), "the webhook never gave up the trickle");
    drop(proxy);
}

/// A repository with no trusted state yet whose server trickles: the reviews that wait for
/// its refresh are bounded; the others are denied at once, saying so.
#[test]
fn waiters_for_a_repository_without_trusted_state_are_bounded() {
    // First, so that it is dropped last (after the proxy stopped trickling): dropping a
    // runtime waits for its blocking tasks.
    let rt = runtime();
    let (server, repos) = signed_server();
    let proxy = Proxy::start(&server.base);
    proxy.drip(
        "/org/app/_trust/tuf/timestamp.json",
        Duration::from_millis(100),
    );
    let dir = tempfile::tempdir().unwrap();
    let w = webhook(
        &proxy.base,
        &repos[..2],
        "deadline_ms = 3000",
        "",
        dir.path(),
        |c| c.max_waiters = 4,
    );
    let cold: Vec<_> = (0..40)
        .map(|_| {
            let w = w.clone();
            rt.spawn(async move { w.review(pod(&[app()]), Endpoint::Validate).await })
        })
        .collect();
    let healthy = decide(&rt, &w, &[init()]);
    assert_eq!(healthy["allowed"], true, "{healthy}");
    let answers = rt.block_on(async {
        let mut out = Vec::new();
        for h in cold {
            out.push(h.await.unwrap()["response"].clone());
        }
        out
    });
    assert!(answers.iter().all(|a| a["allowed"] == false));
    let busy = answers
        .iter()
        .filter(|a| message(a).contains("4 requests already wait for this repository's trust data"))
        .count();
    // One review refreshes, at most four wait with it; every other is turned away at once.
    assert!(busy >= 40 - 1 - 4, "{busy}: {answers:?}");
    drop(proxy);
}

/// A pod naming more repositories than a review may is denied, naming the cap, before any
/// trust data is fetched or any repository set up.
#[test]
fn a_review_naming_too_many_repositories_is_denied_before_any_fetch() {
    // First, so that it is dropped last (after the proxy stopped trickling): dropping a
    // runtime waits for its blocking tasks.
    let rt = runtime();
    let (server, repos) = signed_server();
    let proxy = Proxy::start(&server.base);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("many.root.json");
    // Naming no repository, so that it may be pinned for many.
    std::fs::write(&root, repos[0].root_bytes_naming(None)).unwrap();
    let rule = format!(
        "[[rule]]\npattern = \"{REG}/many*\"\naction = \"verify\"\nserver = \"{}\"\n\
         root_file = \"{}\"\n",
        proxy.base,
        root.display()
    );
    let w = webhook(&proxy.base, &[], "", &rule, dir.path(), |c| {
        c.max_repositories_per_review = 8
    });
    let images: Vec<String> = (0..40).map(|i| format!("{REG}/many{i}:v1")).collect();
    let resp = decide(&rt, &w, &images);
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = message(&resp);
    assert!(
        m.contains("more than 8 repositories") && m.contains("--max-repositories-per-review"),
        "{m}"
    );
    assert_eq!(proxy.requests(), Vec::<String>::new());
    assert_eq!(w.trust().len(), 0);

    // Eight repositories (the same image twice counts once) are within the cap.
    let mut eight: Vec<String> = images[..8].to_vec();
    eight.push(images[0].clone());
    let resp = decide(&rt, &w, &eight);
    assert!(
        !message(&resp).contains("max-repositories-per-review"),
        "{resp}"
    );
    assert!(!proxy.requests().is_empty());
}

/// A review whose repositories take longer than the deadline to refresh is denied at the
/// deadline, and the work stops with it: no fetch starts after it, so not every repository
/// is tried.
#[test]
fn work_for_a_review_stops_at_its_deadline() {
    // First, so that it is dropped last (after the proxy stopped trickling): dropping a
    // runtime waits for its blocking tasks.
    let rt = runtime();
    let (server, repos) = signed_server();
    let proxy = Proxy::start(&server.base);
    proxy.delay(Duration::from_millis(50));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("many.root.json");
    // Naming no repository, so that it may be pinned for many.
    std::fs::write(&root, repos[0].root_bytes_naming(None)).unwrap();
    let rule = format!(
        "[[rule]]\npattern = \"{REG}/many*\"\naction = \"verify\"\nserver = \"{}\"\n\
         root_file = \"{}\"\n",
        proxy.base,
        root.display()
    );
    let w = webhook(
        &proxy.base,
        &[],
        "deadline_ms = 1000",
        &rule,
        dir.path(),
        |c| c.max_repositories_per_review = 1000,
    );
    // 30 repositories the server has no trust data for: two answered requests each (the
    // next root, then timestamp), 100 ms a repository, 3 s in all.
    let images: Vec<String> = (0..30).map(|i| format!("{REG}/many{i}:v1")).collect();
    let resp = decide(&rt, &w, &images);
    assert_eq!(resp["allowed"], false, "{resp}");
    drop(rt);
    let fetched = proxy.settled_count();
    assert!(
        fetched < 2 * images.len(),
        "{fetched} requests: every repository was tried after the deadline"
    );
}

/// The refresh started before the blocking path is the one the request uses: with a refresh
/// interval of 0 (a refresh for every request) one review of a three-repository pod makes
/// three refreshes, not six.
#[test]
fn a_request_refreshes_each_repository_once() {
    let (server, repos) = signed_server();
    let h = common::Harness::new(&server.base, &repos, "refresh_interval_secs = 0");
    let resp = h.send(&fixture("pod-create.json"), Endpoint::Mutate);
    assert_eq!(resp["allowed"], true, "{resp}");
    let metrics = h.webhook.metrics().render();
    assert!(
        metrics.contains("vouch_admission_refreshes_total{result=\"ok\"} 3\n"),
        "{metrics}"
    );
}
