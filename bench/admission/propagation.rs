//! Publish → decision propagation of `vouch-admission` following a real `vouch-server`'s
//! trust-change events: how long after a publish is acknowledged the first AdmissionReview
//! reflects it.
//!
//! One repository on a release `vouch-server` (a token with `*:pull` for the event stream),
//! a release `vouch-admission` process with `refresh_interval_secs = 3600` (so only events
//! can make it refresh), then `VOUCH_BENCH_ROUNDS` rounds (default 50), each: sign a new
//! tag `tN` (publish targets with `base` and `tN`) and review `repo:tN` every
//! `VOUCH_BENCH_POLL_MS` (default 10) until it is allowed; then unsign it (publish targets
//! with `base` only) and review until it is denied. Each time is from the publish's
//! acknowledgement to the first review reflecting it; prints p50, p99 and max of each.
//!
//! Run: `cargo build --release -p vouch-server && cargo bench -p vouch-admission --bench propagation`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../admission/tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{digest_of, pod_running, policy_text, Repo, Server, WebhookProcess, REG};
use vouch_tuf::reference::Digest;

const TOKEN: &str = "propagation-bench-token-0123456789";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Reviews `image` every `poll` until the answer is `allowed`; the time from `since`.
fn until(
    webhook: &WebhookProcess,
    image: &str,
    allowed: bool,
    since: Instant,
    poll: Duration,
) -> Duration {
    let review = pod_running(image);
    loop {
        if webhook.review(&review)["allowed"] == allowed {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "{image} not allowed={allowed} after 60 s"
        );
        std::thread::sleep(poll);
    }
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{what:<8} n={:<3} p50 {:>9}  p99 {:>9}  max {:>9}",
        times.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap())
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds = env("VOUCH_BENCH_ROUNDS", 50) as usize;
    let poll = Duration::from_millis(env("VOUCH_BENCH_POLL_MS", 10));
    let config = format!(
        "[[auth.tokens]]\nname = \"admission\"\nsha256 = \"{}\"\nscopes = [\"*:pull\"]\n",
        Digest::sha256_of(TOKEN.as_bytes()).hex()
    );
    let server = Server::start_with_config(&config);
    let gun = format!("{REG}/app");
    let base = [("base", digest_of("base"))];
    let mut repo = Repo::init(&server, &gun, &base);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let mut text = policy_text(
        &server.base,
        std::slice::from_ref(&repo),
        "refresh_interval_secs = 3600",
        dir.path(),
    );
    text.push_str(&format!(
        "[[server]]\nurl = \"{}\"\ntoken_file = \"{}\"\n",
        server.base,
        dir.path().join("token").display()
    ));
    std::fs::write(dir.path().join("policy.toml"), text).unwrap();
    let webhook = WebhookProcess::start(
        &dir.path().join("policy.toml"),
        &dir.path().join("cache"),
        &[],
    );
    webhook.wait_for_metric(&format!(
        "vouch_admission_event_stream_up{{server=\"{}\"}} 1",
        server.base
    ));
    // Warm: the repository in memory, the base tag admitted.
    assert_eq!(
        webhook.review(&pod_running(&format!("{gun}:base")))["allowed"],
        true
    );

    let (mut signed, mut unsigned) = (Vec::new(), Vec::new());
    for n in 0..rounds {
        let tag = format!("t{n}");
        let image = format!("{gun}:{tag}");
        let with = [base[0].clone(), (tag.as_str(), digest_of(&tag))];
        repo.sign(&server, &with);
        signed.push(until(&webhook, &image, true, Instant::now(), poll));
        repo.sign(&server, &base);
        unsigned.push(until(&webhook, &image, false, Instant::now(), poll));
    }
    println!("publish -> first review reflecting it ({rounds} rounds, polling every {poll:?}, refresh interval 3600 s)");
    report("sign", signed.clone());
    report("unsign", unsigned.clone());
    signed.extend(unsigned);
    report("all", signed);
}
