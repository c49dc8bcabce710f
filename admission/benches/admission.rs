//! AdmissionReview decisions per second and latency of `vouch-admission`, against a real
//! `vouch-server` on loopback.
//!
//! - **Warm**: the webhook's router served over plain HTTP/1.1 keep-alive on loopback (in
//!   this process, 2 runtime workers); `VOUCH_BENCH_CLIENTS` client threads (default 8)
//!   each send the same pod review in a loop for `VOUCH_BENCH_SECS` seconds (default 10),
//!   after one warm-up request. Pods with 1 and with 10 containers (10 distinct signed
//!   repositories). Decisions/s, p50 and p99 of the round trip as the client sees it.
//! - **In-process warm**: `Webhook::review` called in a loop on one thread (no HTTP), the
//!   webhook's own cost per decision.
//! - **Cold**: a fresh webhook (empty cache) per run deciding a 1-container pod: the first
//!   request for a GUN, so a full TUF refresh (root probe, timestamp, snapshot, targets)
//!   over loopback HTTP plus persisting it. Median and p99 of `VOUCH_BENCH_COLD` runs
//!   (default 200).
//!
//! Run: `cargo build --release -p vouch-server && cargo bench -p vouch-admission --bench admission`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

/// The allocator the `vouch-admission` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{digest_of, fixture, serve, Harness, Repo, Server, REG};
use serde_json::Value;
use vouch_admission::decide::Endpoint;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A pod review with `n` containers, image i from repository `org/bench{i}`.
fn pod(n: usize) -> Value {
    let mut review = fixture("pod-create.json");
    let spec = review.pointer_mut("/request/object/spec").unwrap();
    spec.as_object_mut().unwrap().remove("initContainers");
    let template = spec["containers"][0].clone();
    let containers: Vec<Value> = (0..n)
        .map(|i| {
            let mut c = template.clone();
            c["name"] = Value::from(format!("c{i}"));
            c["image"] = Value::from(format!("{REG}/bench{i}:v1"));
            c
        })
        .collect();
    spec["containers"] = Value::Array(containers);
    review
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

/// A keep-alive HTTP/1.1 POST of `body` to `/mutate`, head and body in one buffer (sent in
/// one write, as an API server's client does).
fn request(host: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /mutate HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// Sends one request made by [`request`]; returns the response body.
fn post(conn: &mut BufReader<TcpStream>, req: &[u8]) -> Vec<u8> {
    conn.get_mut().write_all(req).unwrap();
    let mut len = 0usize;
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    loop {
        line.clear();
        conn.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((name, v)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap();
            }
        }
    }
    let mut out = vec![0; len];
    conn.read_exact(&mut out).unwrap();
    out
}

fn warm_http(h: &Harness, review: &Value, clients: usize, secs: u64) -> (f64, Duration, Duration) {
    let served = serve(h);
    let host = served.base.trim_start_matches("http://").to_owned();
    let req = request(&host, &serde_json::to_vec(review).unwrap());
    let deadline = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (host, req) = (host.clone(), req.clone());
            std::thread::spawn(move || {
                let stream = TcpStream::connect(&host).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut conn = BufReader::new(stream);
                let first = post(&mut conn, &req);
                let v: Value = serde_json::from_slice(&first).unwrap();
                assert_eq!(v["response"]["allowed"], true, "{v}");
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    post(&mut conn, &req);
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let start = Instant::now();
    let mut all: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let took = start.elapsed().as_secs_f64();
    all.sort();
    (
        all.len() as f64 / took,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let clients = env("VOUCH_BENCH_CLIENTS", 8) as usize;
    let secs = env("VOUCH_BENCH_SECS", 10);
    let cold_runs = env("VOUCH_BENCH_COLD", 200);

    let server = Server::start();
    let repos: Vec<Repo> = (0..10)
        .map(|i| {
            Repo::init(
                &server,
                &format!("{REG}/bench{i}"),
                &[("v1", digest_of("v1"))],
            )
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    println!("| pod | clients | decisions/s | p50 ms | p99 ms |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for n in [1, 10] {
        let h = Harness::new(&server.base, &repos, "");
        let review = pod(n);
        let (rate, p50, p99) = warm_http(&h, &review, clients, secs);
        println!(
            "| {n} container{} | {clients} | {rate:.0} | {} | {} |",
            if n == 1 { "" } else { "s" },
            ms(p50),
            ms(p99)
        );
    }

    println!();
    println!("| pod | in-process decisions/s (1 thread) |");
    println!("| --- | ---: |");
    for n in [1, 10] {
        let h = Harness::new(&server.base, &repos, "");
        let review = pod(n);
        let typed = || serde_json::from_value(review.clone()).unwrap();
        let first = rt.block_on(h.webhook.review(typed(), Endpoint::Mutate));
        assert_eq!(first["response"]["allowed"], true);
        let body = serde_json::to_vec(&review).unwrap();
        let start = Instant::now();
        let mut count = 0u64;
        while start.elapsed() < Duration::from_secs(secs.min(5)) {
            // From bytes to bytes, as the HTTP layer does.
            let r = vouch_admission::review::parse_review(&body).unwrap();
            let out = rt.block_on(h.webhook.review_bytes(r, Endpoint::Mutate));
            std::hint::black_box(out);
            count += 1;
        }
        println!(
            "| {n} container{} | {:.0} |",
            if n == 1 { "" } else { "s" },
            count as f64 / start.elapsed().as_secs_f64()
        );
    }

    let mut cold = Vec::new();
    let review = pod(1);
    for _ in 0..cold_runs {
        let h = Harness::new(&server.base, &repos[..1], "");
        let r = serde_json::from_value(review.clone()).unwrap();
        let t = Instant::now();
        let out = rt.block_on(h.webhook.review(r, Endpoint::Mutate));
        cold.push(t.elapsed());
        assert_eq!(out["response"]["allowed"], true);
    }
    cold.sort();
    println!();
    println!(
        "cold decision (fresh cache, first request for the GUN), {cold_runs} runs: median {} ms, p99 {} ms",
        ms(percentile(&cold, 0.5)),
        ms(percentile(&cold, 0.99))
    );
}
