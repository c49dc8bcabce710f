//! Cold update and warm lookup speed of `vouch-verifier`, side by side with python-tuf's
//! `Updater` on the same repository served by the same loopback HTTP server.
//!
//! The repository: consistent snapshots, ed25519 keys, top-level targets with 1,000 image
//! targets. A *cold update* is what a fresh client does: pin root v1, fetch `2.root.json`
//! (absent), `timestamp.json`, the snapshot and targets, verify and persist them, then look
//! up one tag. *Warm lookups* are repeated tag lookups on an updated client.
//!
//! Run: `cargo bench -p vouch-verifier --bench update` (python-tuf is measured when
//! `VOUCH_TEST_PYTHON` names a Python with `tuf` installed, or `target/venv/bin/python`
//! exists; see `bench/verifier/python_tuf_bench.py`). Set `VOUCH_BENCH_COLD` and
//! `VOUCH_BENCH_LOOKUPS` to change the iteration counts.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

/// The allocator vouch's binaries (`vouch`, `vouch-tuf-client`, `vouch-admission`) use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use common::*;
use vouch_verifier::cache::{Durability, MetadataStore};
use vouch_verifier::clock::TestClock;
use vouch_verifier::transport::{HttpOptions, HttpTransport};
use vouch_verifier::Updater;

const TARGETS: usize = 1000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("VOUCH_TEST_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
        .join("target/venv/bin/python");
    venv.exists().then_some(venv)
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let cold_iters = env_usize("VOUCH_BENCH_COLD", if quick { 2 } else { 200 });
    let lookups = env_usize("VOUCH_BENCH_LOOKUPS", if quick { 1000 } else { 2_000_000 });

    let mut repo = Repo::new();
    // Expiry far ahead so that the real clock python-tuf uses accepts it too.
    let far = vouch_tuf::time::Timestamp::parse("2099-01-01T00:00:00Z").unwrap();
    repo.root.common.expires = far;
    repo.publish_root_as_is();
    for i in 0..TARGETS {
        repo.add_image(
            "targets",
            &format!("tag-{i:04}"),
            format!("manifest {i}").as_bytes(),
        );
    }
    repo.targets.common.expires = far;
    repo.snapshot.common.expires = far;
    repo.timestamp.common.expires = far;
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let lookup_tag = "tag-0500";
    let server = Server::start(repo.files.clone());
    let work = tempfile::tempdir().unwrap();
    let root_path = work.path().join("root.json");
    std::fs::write(&root_path, repo.root_bytes(1)).unwrap();
    let clock = Arc::new(TestClock::new(NOW));

    // Cold updates, with each durability mode of the cache.
    let cold_run = |durability: Durability, label: &str| {
        let mut cold = Vec::with_capacity(cold_iters);
        for i in 0..cold_iters {
            let dir = work.path().join(format!("cold-{label}-{i}"));
            let started = Instant::now();
            let store = MetadataStore::open(&dir)
                .unwrap()
                .with_durability(durability);
            Updater::<HttpTransport>::pin_root(&store, &repo.root_bytes(1)).unwrap();
            let http = HttpTransport::new(&server.url, &HttpOptions::default()).unwrap();
            let mut up = Updater::new(store, http).with_clock(clock.clone());
            up.refresh().unwrap();
            let t = up.lookup(lookup_tag).unwrap().unwrap();
            cold.push(started.elapsed().as_secs_f64());
            assert_eq!(t.length, format!("manifest {}", 500).len() as u64);
        }
        cold.sort_by(f64::total_cmp);
        (
            cold[cold.len() / 2],
            cold.iter().sum::<f64>() / cold.len() as f64,
        )
    };
    // Build the process-wide HTTP client once: it loads the platform's certificate store,
    // which a long-running verifier does once (python-tuf's urllib3 loads nothing for plain
    // HTTP).
    HttpTransport::new(&server.url, &HttpOptions::default()).unwrap();
    let (median, mean) = cold_run(Durability::NoSync, "nosync");
    let (median_sync, mean_sync) = cold_run(Durability::Sync, "sync");

    // Warm lookups.
    let store = MetadataStore::open(work.path().join("warm")).unwrap();
    Updater::<HttpTransport>::pin_root(&store, &repo.root_bytes(1)).unwrap();
    let http = HttpTransport::new(&server.url, &HttpOptions::default()).unwrap();
    let mut up = Updater::new(store, http).with_clock(clock);
    up.refresh().unwrap();
    let tags: Vec<String> = (0..TARGETS).map(|i| format!("tag-{i:04}")).collect();
    let started = Instant::now();
    let mut found = 0usize;
    for i in 0..lookups {
        if up.lookup(&tags[i % TARGETS]).unwrap().is_some() {
            found += 1;
        }
    }
    let warm_secs = started.elapsed().as_secs_f64();
    assert_eq!(found, lookups);
    let per_sec = lookups as f64 / warm_secs;

    println!(
        "vouch-verifier: {TARGETS} targets, {cold_iters} cold updates, {lookups} warm lookups"
    );
    println!(
        "  cold update + lookup, cache without fsync (as python-tuf): median {:.3} ms, mean {:.3} ms",
        median * 1e3,
        mean * 1e3
    );
    println!(
        "  cold update + lookup, cache with fsync (the default): median {:.3} ms, mean {:.3} ms",
        median_sync * 1e3,
        mean_sync * 1e3
    );
    println!(
        "  warm lookups: {per_sec:.0}/s ({:.1} ns each)",
        warm_secs / lookups as f64 * 1e9
    );

    let Some(py) = python() else {
        println!("python-tuf: skipped (set VOUCH_TEST_PYTHON or run scripts/python-env)");
        return;
    };
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/verifier/python_tuf_bench.py");
    let py_cold = (cold_iters / 4).max(2);
    let py_lookups = (lookups / 50).max(1000);
    let out = Command::new(&py)
        .arg(&script)
        .arg("--url")
        .arg(&server.url)
        .arg("--root")
        .arg(&root_path)
        .arg("--target")
        .arg(lookup_tag)
        .arg("--cold")
        .arg(py_cold.to_string())
        .arg("--lookups")
        .arg(py_lookups.to_string())
        .output()
        .expect("cannot run python");
    assert!(
        out.status.success(),
        "python-tuf benchmark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let v = vouch_tuf::json::parse(text.trim().as_bytes()).expect("python output is JSON");
    let o = v.as_object().unwrap();
    let get = |k: &str| o[k].as_str().unwrap().parse::<f64>().unwrap();
    let (py_median, py_per_sec) = (get("cold_median_s"), get("lookups_per_s"));
    println!(
        "python-tuf {}: {py_cold} cold updates, {py_lookups} warm lookups",
        o["tuf_version"].as_str().unwrap()
    );
    println!("  cold update + lookup: median {:.3} ms", py_median * 1e3);
    println!("  warm lookups: {py_per_sec:.0}/s");
    println!(
        "ratio: cold update {:.1}x faster without fsync ({:.1}x with), warm lookups {:.1}x faster",
        py_median / median,
        py_median / median_sync,
        per_sec / py_per_sec
    );
}
