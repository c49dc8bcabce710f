//! Load: 64 concurrent clients send AdmissionReviews for pods with 3 containers while one
//! repository's tag is re-signed to alternating digests. Every response must be a correct
//! decision: the signed images admitted and pinned to a digest that was signed for the tag
//! within the refresh interval around the request, the unsigned image always denied, no
//! transport or HTTP error.
//!
//! Runs 3 seconds by default; `VOUCH_ADMISSION_LOAD_SECS=20` for the full run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{digest_of, fixture, patched, serve, set_image, signed_server, Harness, REG};
use reqwest::blocking::Client;
use serde_json::Value;
use vouch_tuf::reference::Digest;

const CLIENTS: usize = 64;
const REFRESH: Duration = Duration::from_secs(1);

/// (before publish, after publish, digest now signed for app:v1)
type History = Vec<(Instant, Instant, Digest)>;

/// Digests acceptable for a request that ran from `start` to `end`: those signed at some
/// moment in [start - refresh interval - slack, end].
fn acceptable(history: &History, start: Instant, end: Instant) -> Vec<Digest> {
    // The answer may come from a refresh that finished up to one interval before the
    // request started, and fetched its data while it ran (slack for a slow refresh).
    let from = start - REFRESH - Duration::from_millis(1000);
    history
        .iter()
        .enumerate()
        .filter(|(i, (before, _, _))| {
            *before <= end
                && history
                    .get(i + 1)
                    .is_none_or(|(_, after, _)| *after >= from)
        })
        .map(|(_, (_, _, d))| d.clone())
        .collect()
}

#[test]
fn concurrent_clients_get_correct_decisions_while_trust_data_changes() {
    let secs: u64 = std::env::var("VOUCH_ADMISSION_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let (server, mut repos) = signed_server();
    let h = Harness::new(&server.base, &repos, "refresh_interval_secs = 1");
    let served = serve(&h);
    let url = Arc::new(format!("{}/mutate", served.base));
    let t0 = Instant::now();
    let history: Arc<Mutex<History>> = Arc::new(Mutex::new(vec![(t0, t0, digest_of("v1"))]));
    let stop = Arc::new(AtomicBool::new(false));
    let good = fixture("pod-create.json");
    let mut bad = good.clone();
    set_image(
        &mut bad,
        "/spec/containers/0/image",
        &format!("{REG}/app:v9"),
    );
    let (good, bad) = (Arc::new(good), Arc::new(bad));
    let (allowed, denied) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (url, history, stop) = (url.clone(), history.clone(), stop.clone());
            let (good, bad) = (good.clone(), bad.clone());
            let (allowed, denied) = (allowed.clone(), denied.clone());
            std::thread::spawn(move || {
                let client = Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let unsigned = (n as u64 + i).is_multiple_of(4);
                    let review: &Value = if unsigned { &bad } else { &good };
                    let start = Instant::now();
                    let r = client.post(url.as_str()).json(review).send().unwrap();
                    assert!(r.status().is_success(), "{}", r.status());
                    let resp = r.json::<Value>().unwrap()["response"].clone();
                    let end = Instant::now();
                    assert_eq!(resp["uid"], review["request"]["uid"]);
                    if unsigned {
                        assert_eq!(resp["allowed"], false, "{resp}");
                        assert!(resp["status"]["message"]
                            .as_str()
                            .unwrap()
                            .contains("tag v9 is not signed"));
                        denied.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    assert_eq!(resp["allowed"], true, "{resp}");
                    let obj = patched(review, &resp);
                    let image = obj.pointer("/spec/containers/0/image").unwrap();
                    let pinned = image.as_str().unwrap().rsplit('@').next().unwrap();
                    let ok = acceptable(&history.lock().unwrap(), start, end);
                    assert!(
                        ok.iter().any(|d| d.as_str() == pinned),
                        "pinned {pinned}, acceptable {ok:?}"
                    );
                    assert_eq!(
                        obj.pointer("/spec/initContainers/0/image").unwrap(),
                        &Value::String(format!("{REG}/init:v1@{}", digest_of("v1")))
                    );
                    allowed.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // Re-sign app:v1 to a new digest every 300 ms.
    let mut n = 0;
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(300));
        n += 1;
        let d = digest_of(&format!("v1 build {n}"));
        let before = Instant::now();
        repos[0].sign(&server, &[("v1", d.clone())]);
        history.lock().unwrap().push((before, Instant::now(), d));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let (a, d) = (
        allowed.load(Ordering::Relaxed),
        denied.load(Ordering::Relaxed),
    );
    eprintln!("{a} allowed, {d} denied in {secs} s with {CLIENTS} clients, {n} re-signings");
    assert!(a > 0 && d > 0);

    // Once the changes stop, the next refresh pins the last digest signed.
    std::thread::sleep(REFRESH + Duration::from_millis(100));
    let resp = h.send(&good, vouch_admission::decide::Endpoint::Mutate);
    let last = history.lock().unwrap().last().unwrap().2.clone();
    assert_eq!(
        patched(&good, &resp)
            .pointer("/spec/containers/0/image")
            .unwrap(),
        &Value::String(format!("{REG}/app:v1@{last}"))
    );
}
