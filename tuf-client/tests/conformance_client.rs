//! The `vouch-tuf-client` binary against a repository served over loopback HTTP: the
//! tuf-conformance client protocol (commands, exit codes, files left behind) and the order
//! in which it requests files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The test repositories and loopback server shared with vouch-verifier's tests.
#[path = "../../verifier/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn client() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vouch-tuf-client"))
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn code(cmd: &mut Command) -> i32 {
    let out = cmd.output().unwrap();
    out.status.code().unwrap_or(-1)
}

struct Setup {
    server: Server,
    meta: tempfile::TempDir,
    targets: tempfile::TempDir,
}

fn setup(repo: &Repo) -> Setup {
    let s = Setup {
        server: Server::start(repo.files.clone()),
        meta: tempfile::tempdir().unwrap(),
        targets: tempfile::tempdir().unwrap(),
    };
    let root = s.meta.path().join("pinned-root");
    std::fs::write(&root, repo.root_bytes(1)).unwrap();
    let mut init = client();
    init.arg("--metadata-dir")
        .arg(s.meta.path())
        .arg("init")
        .arg(&root);
    assert_eq!(code(&mut init), 0);
    std::fs::remove_file(&root).unwrap();
    assert_eq!(
        std::fs::read(s.meta.path().join("root.json")).unwrap(),
        repo.root_bytes(1)
    );
    s
}

fn refresh(s: &Setup) -> Command {
    let mut c = client();
    c.arg("--metadata-url")
        .arg(&s.server.url)
        .arg("--metadata-dir")
        .arg(s.meta.path())
        .arg("refresh");
    c
}

fn download(s: &Setup, names: &[&str]) -> Command {
    let mut c = client();
    c.arg("--metadata-url")
        .arg(&s.server.url)
        .arg("--metadata-dir")
        .arg(s.meta.path());
    for n in names {
        c.arg("--target-name").arg(n);
    }
    c.arg("--target-dir")
        .arg(s.targets.path())
        .arg("--target-base-url")
        .arg(format!("{}targets/", s.server.url))
        .arg("download");
    c
}

#[test]
fn refresh_requests_files_in_workflow_order() {
    let mut repo = Repo::new();
    repo.publish_root(); // 2
    repo.publish_targets(); // 2
    repo.publish_snapshot_and_timestamp(); // 2
    let s = setup(&repo);
    assert_eq!(code(&mut refresh(&s)), 0);
    assert_eq!(
        s.server.take_log(),
        [
            "2.root.json",
            "3.root.json",
            "timestamp.json",
            "2.snapshot.json",
            "2.targets.json"
        ]
    );
    assert_eq!(
        listing(s.meta.path()),
        [
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ]
    );
    assert_eq!(
        std::fs::read(s.meta.path().join("timestamp.json")).unwrap(),
        repo.file("timestamp.json")
    );
    // Nothing new: the cached snapshot and targets are kept.
    assert_eq!(code(&mut refresh(&s)), 0);
    assert_eq!(s.server.take_log(), ["3.root.json", "timestamp.json"]);
}

#[test]
fn download_verifies_stores_and_skips_present_targets() {
    let mut repo = Repo::new();
    let d = repo.add_image("targets", "app/v1", b"manifest one");
    repo.add_image("targets", "v2", b"manifest two");
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let s = setup(&repo);
    assert_eq!(code(&mut download(&s, &["app/v1", "v2"])), 0);
    let log = s.server.take_log();
    assert_eq!(
        &log[..4],
        [
            "2.root.json",
            "timestamp.json",
            "2.snapshot.json",
            "2.targets.json"
        ]
    );
    assert_eq!(log[4], format!("targets/app/{}.v1", d.hex()));
    assert_eq!(log.len(), 6);
    assert_eq!(listing(s.targets.path()), ["app%2Fv1", "v2"]);
    assert_eq!(
        std::fs::read(s.targets.path().join("app%2Fv1")).unwrap(),
        b"manifest one"
    );

    // Present with matching hashes: not fetched again.
    assert_eq!(code(&mut download(&s, &["app/v1"])), 0);
    assert_eq!(s.server.take_log(), ["2.root.json", "timestamp.json"]);
}

#[test]
fn failures_exit_with_one_and_leave_no_temporary_files() {
    let mut repo = Repo::new();
    let d = repo.add_image("targets", "v1", b"manifest");
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    let s = setup(&repo);
    // A tampered target.
    s.server
        .files
        .lock()
        .unwrap()
        .insert(format!("targets/{}.v1", d.hex()), b"tampered".to_vec());
    assert_eq!(code(&mut download(&s, &["v1"])), 1);
    assert!(listing(s.targets.path()).is_empty());
    // A missing target.
    assert_eq!(code(&mut download(&s, &["nope"])), 1);
    // Tampered metadata.
    s.server
        .files
        .lock()
        .unwrap()
        .insert("timestamp.json".into(), b"{}".to_vec());
    let before = std::fs::read(s.meta.path().join("timestamp.json")).unwrap();
    assert_eq!(code(&mut refresh(&s)), 1);
    assert_eq!(
        std::fs::read(s.meta.path().join("timestamp.json")).unwrap(),
        before
    );
    assert_eq!(
        listing(s.meta.path()),
        [
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ]
    );
    // Usage errors are failures too, never exit status 2.
    assert_eq!(code(client().arg("--metadata-dir").arg(s.meta.path())), 1);
    assert_eq!(
        code(
            client()
                .arg("refresh")
                .arg("--metadata-dir")
                .arg(s.meta.path())
        ),
        1
    );
    assert_eq!(
        code(
            client()
                .arg("--metadata-dir")
                .arg(s.meta.path())
                .arg("refresh")
        ),
        1
    );
    assert_eq!(code(client().arg("--bogus")), 1);
}

#[test]
fn an_invalid_initial_root_fails_refresh_before_any_request() {
    let repo = Repo::new();
    let s = setup(&repo);
    // init does no checks; refresh must refuse the root without asking the server anything.
    let root = s.meta.path().join("bad-root");
    let mut bad = repo.root_bytes(1);
    let text = String::from_utf8(bad.clone()).unwrap();
    bad = text
        .replacen("\"version\":1", "\"version\":2", 1)
        .into_bytes();
    std::fs::write(&root, &bad).unwrap();
    let mut init = client();
    init.arg("--metadata-dir")
        .arg(s.meta.path())
        .arg("init")
        .arg(&root);
    assert_eq!(code(&mut init), 0);
    std::fs::remove_file(&root).unwrap();
    assert_eq!(code(&mut refresh(&s)), 1);
    assert!(s.server.take_log().is_empty());
}
