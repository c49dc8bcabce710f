//! The webhook's on-disk cache of trusted metadata: what is left in `--cache-dir` after
//! reviews naming repositories the trust server has no trust data for, after trusted
//! repositories are dropped from memory, and after a cached root is damaged on disk.
//!
//! A real `vouch-server` holds the trust data; the tests count the repository directories
//! the webhook leaves on disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{pod_running, signed_server, Harness, REG};
use vouch_admission::decide::Endpoint;

/// The directories below `dir` that hold files: one per repository (and pinned root) with
/// trust data cached.
fn repository_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut holds_files = false;
    for entry in entries {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(repository_dirs(&entry.path()));
        } else {
            holds_files = true;
        }
    }
    if holds_files {
        out.push(dir.to_owned());
    }
    out
}

/// A policy rule verifying `{REG}/many*` against `server`, trusting `root` (a root of the
/// first repository's keys that names no repository, so that it may be pinned for others;
/// the server has no trust data for any `many…` repository), and one verifying `{REG}/init`
/// with that root too (so its trust data, signed by other keys, is rejected).
fn wildcard_rule(server: &str, root: &[u8], dir: &Path) -> String {
    let file = dir.join("many.root.json");
    std::fs::write(&file, root).unwrap();
    let mut rules = String::new();
    for pattern in ["many*", "init"] {
        rules.push_str(&format!(
            "[[rule]]\npattern = \"{REG}/{pattern}\"\naction = \"verify\"\n\
             server = \"{server}\"\nroot_file = \"{}\"\n\n",
            file.display()
        ));
    }
    rules
}

/// Images of repositories the trust server has never heard of are denied (no trust data),
/// as are those whose trust data fails verification, and they leave nothing in the cache
/// directory, however many there are and whether or not
/// they are still in memory; the one repository that verified keeps its directory, also
/// once it has been dropped from memory (its trusted state is what rollback protection
/// starts from).
#[test]
fn unknown_repositories_leave_no_cache_directories() {
    let (server, repos) = signed_server();
    let rules_dir = tempfile::tempdir().unwrap();
    let rule = wildcard_rule(
        &server.base,
        &repos[0].root_bytes_naming(None),
        rules_dir.path(),
    );
    let h = Harness::new(&server.base, &repos[..1], &rule);
    let cache = h.dir.path().join("cache");

    let app = format!("{REG}/app:v1");
    let resp = h.send(&pod_running(&app), Endpoint::Validate);
    assert_eq!(resp["allowed"], true, "{resp}");
    assert_eq!(repository_dirs(&cache).len(), 1);

    for i in 0..60 {
        let resp = h.send(
            &pod_running(&format!("{REG}/many{i}:v1")),
            Endpoint::Validate,
        );
        assert_eq!(resp["allowed"], false, "{resp}");
        let m = resp["status"]["message"].as_str().unwrap();
        assert!(m.contains("no trust data"), "{m}");
    }
    // Trust data that fails verification (signed by keys the pinned root does not name).
    let resp = h.send(&pod_running(&format!("{REG}/init:v1")), Endpoint::Validate);
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = resp["status"]["message"].as_str().unwrap();
    assert!(m.contains("trust metadata rejected"), "{m}");
    // 62 repositories were set up, 61 of them refused: only the trusted one is on disk.
    let dirs = repository_dirs(&cache);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(dirs[0].join("timestamp.json").exists(), "{dirs:?}");
}

/// With fewer repositories allowed in memory than were asked about, the trusted repository
/// is dropped from memory but its trusted state stays on disk, and its next review starts
/// from it; the refused ones leave nothing.
#[test]
fn a_trusted_repository_dropped_from_memory_keeps_its_cache_directory() {
    let (server, repos) = signed_server();
    let rules_dir = tempfile::tempdir().unwrap();
    let rule = wildcard_rule(
        &server.base,
        &repos[0].root_bytes_naming(None),
        rules_dir.path(),
    );
    let h = Harness::with_config(&server.base, &repos[..1], &rule, |c| {
        c.max_repositories = 4;
    });
    let cache = h.dir.path().join("cache");

    let app = format!("{REG}/app:v1");
    assert_eq!(
        h.send(&pod_running(&app), Endpoint::Validate)["allowed"],
        true
    );
    for i in 0..20 {
        let resp = h.send(
            &pod_running(&format!("{REG}/many{i}:v1")),
            Endpoint::Validate,
        );
        assert_eq!(resp["allowed"], false, "{resp}");
    }
    assert!(h.webhook.trust().len() <= 4);
    let metrics = h.webhook.metrics().render();
    let pruned: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vouch_admission_repositories_pruned_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(pruned >= 17, "{metrics}");
    let dirs = repository_dirs(&cache);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(dirs[0].join("timestamp.json").exists(), "{dirs:?}");

    // Dropped from memory, refreshed again from its directory — even with its cached root
    // damaged on disk: trust restarts from the root the policy admitted (recorded beside
    // it), and the cached root is written back whole.
    let root_file = dirs[0].join("root.json");
    let good = std::fs::read(&root_file).unwrap();
    assert!(dirs[0].join("pin.root").exists(), "{dirs:?}");
    std::fs::write(&root_file, &good[..good.len() / 2]).unwrap();
    let resp = h.send(&pod_running(&app), Endpoint::Validate);
    assert_eq!(resp["allowed"], true, "{resp}");
    assert_eq!(repository_dirs(&cache).len(), 1);
    assert_eq!(std::fs::read(&root_file).unwrap(), good);

    // Dropped from memory again, with the cached root and the record of the pin both
    // damaged: the policy still holds the pin, so trust is established again from it (as
    // with the directory removed) rather than denied until someone clears the cache.
    let pin_file = dirs[0].join("pin.root");
    let pin = std::fs::read(&pin_file).unwrap();
    std::fs::write(&root_file, b"{\"signed\": {}}").unwrap();
    let mut flipped = pin.clone();
    for b in &mut flipped[40..48] {
        *b ^= 0x5a;
    }
    std::fs::write(&pin_file, &flipped).unwrap();
    for i in 20..40 {
        let resp = h.send(
            &pod_running(&format!("{REG}/many{i}:v1")),
            Endpoint::Validate,
        );
        assert_eq!(resp["allowed"], false, "{resp}");
    }
    let resp = h.send(&pod_running(&app), Endpoint::Validate);
    assert_eq!(resp["allowed"], true, "{resp}");
    assert_eq!(std::fs::read(&pin_file).unwrap(), pin);
    assert_eq!(std::fs::read(&root_file).unwrap(), good);
}
