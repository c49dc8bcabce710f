//! Operating the `vouch-admission` binary: the policy reloaded when it changes (an invalid
//! change keeps the policy in force and is reported once), on SIGHUP, `/readyz` while a
//! pinned root file is missing, `check-policy`, errors printed once, and warn-mode log lines
//! that carry the denial.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    digest_of, fixture, message, pod_running, policy_text, signed_server, Repo,
    WebhookProcess as Webhook, REG,
};

/// Replaces `path` with `text` the way a ConfigMap volume is updated: a new file renamed
/// over the old one.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The policy verifying `repos`, with `app` denied outright when `deny_app`.
fn policy(server: &str, repos: &[Repo], deny_app: bool, dir: &Path) -> String {
    let mut text = policy_text(server, repos, "", dir);
    if deny_app {
        text = text.replacen(
            "action = \"verify\"",
            "action = \"deny\"\n# no trust settings for deny rules",
            1,
        );
        // The first rule is app's: drop its trust settings.
        let start = text.find("# no trust settings").unwrap();
        let end = text[start..].find("\n\n").unwrap() + start;
        text.replace_range(start..end, "");
    }
    text
}

#[test]
fn the_policy_is_reloaded_when_it_changes_and_an_invalid_change_keeps_it() {
    let (server, repos) = signed_server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, policy(&server.base, &repos, false, dir.path())).unwrap();
    let w = Webhook::start(
        &path,
        &dir.path().join("cache"),
        &["--policy-check-secs", "1"],
    );
    let review = fixture("pod-create.json");
    assert_eq!(w.review(&review)["allowed"], true);

    // A valid change takes effect.
    replace(&path, &policy(&server.base, &repos, true, dir.path()));
    w.wait_for_metric("vouch_admission_policy_reloads_total{result=\"ok\"} 1\n");
    let resp = w.review(&review);
    assert_eq!(resp["allowed"], false, "{resp}");
    assert!(
        message(&resp).contains(&format!("denied by policy rule {REG}/app")),
        "{resp}"
    );

    // An invalid change: the policy in force stays, and the error is logged once, naming
    // the file and the problem.
    replace(&path, "mode = \"audit\"\n");
    w.wait_for_metric("vouch_admission_policy_reloads_total{result=\"failed\"} 1\n");
    let resp = w.review(&review);
    assert!(
        message(&resp).contains(&format!("denied by policy rule {REG}/app")),
        "{resp}"
    );
    // Several more looks at the unchanged (invalid) file …
    std::thread::sleep(Duration::from_millis(2500));
    let errors = w.log_lines("policy not reloaded");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(&path.display().to_string()) && errors[0].contains("unknown variant"),
        "{errors:?}"
    );
    assert!(w
        .get("/metrics")
        .1
        .contains("vouch_admission_policy_reloads_total{result=\"failed\"} 1\n"));
    assert_eq!(w.get("/readyz").0, 200);

    // Fixed again: taken.
    replace(&path, &policy(&server.base, &repos, false, dir.path()));
    w.wait_for_metric("vouch_admission_policy_reloads_total{result=\"ok\"} 2\n");
    assert_eq!(w.review(&review)["allowed"], true);
}

#[test]
fn sighup_reloads_the_policy() {
    let (server, repos) = signed_server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, policy(&server.base, &repos, false, dir.path())).unwrap();
    // No polling: only the signal loads the policy again.
    let w = Webhook::start(
        &path,
        &dir.path().join("cache"),
        &["--policy-check-secs", "0"],
    );
    let review = fixture("pod-create.json");
    replace(&path, &policy(&server.base, &repos, true, dir.path()));
    assert_eq!(w.review(&review)["allowed"], true);
    w.hangup();
    w.wait_for_metric("vouch_admission_policy_reloads_total{result=\"ok\"} 1\n");
    let resp = w.review(&review);
    assert_eq!(resp["allowed"], false, "{resp}");
    assert!(
        message(&resp).contains(&format!("denied by policy rule {REG}/app")),
        "{resp}"
    );
    assert_eq!(w.log_lines("SIGHUP").len(), 1);
}

#[test]
fn readyz_is_false_while_a_pinned_root_file_is_missing() {
    let (server, repos) = signed_server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, policy(&server.base, &repos, false, dir.path())).unwrap();
    // app's root file is not there yet.
    let root_file: PathBuf = dir
        .path()
        .join(format!("{}.root.json", repos[0].gun.replace('/', "_")));
    let root = std::fs::read(&root_file).unwrap();
    std::fs::remove_file(&root_file).unwrap();
    let w = Webhook::start(
        &path,
        &dir.path().join("cache"),
        &["--policy-check-secs", "1"],
    );
    let (status, body) = w.get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains(&root_file.display().to_string()) && body.contains("cannot read root_file"),
        "{body}"
    );
    // Meanwhile its images are denied, saying why; the others are verified.
    let resp = w.review(&pod_running(&format!("{REG}/app:v1")));
    assert_eq!(resp["allowed"], false, "{resp}");
    assert!(message(&resp).contains("cannot verify"), "{resp}");
    let resp = w.review(&pod_running(&format!("{REG}/init:v1")));
    assert_eq!(resp["allowed"], true, "{resp}");

    std::fs::write(&root_file, root).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while w.get("/readyz").0 != 200 {
        assert!(
            Instant::now() < until,
            "still not ready: {}",
            w.get("/readyz").1
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let resp = w.review(&pod_running(&format!("{REG}/app:v1")));
    assert_eq!(resp["allowed"], true, "{resp}");
    let d = digest_of("v1");
    assert!(
        common::pinned_image(&pod_running(&format!("{REG}/app:v1")), &resp)
            .is_some_and(|p| p == format!("{REG}/app:v1@{d}")),
        "{resp}"
    );

    // A complete policy in force is kept when a change would lose a root file.
    std::fs::remove_file(&root_file).unwrap();
    w.wait_for_metric("vouch_admission_policy_reloads_total{result=\"failed\"} 1\n");
    assert_eq!(w.get("/readyz").0, 200);
    assert_eq!(
        w.review(&pod_running(&format!("{REG}/app:v1")))["allowed"],
        true
    );
}

#[test]
fn warn_mode_log_lines_carry_the_denial() {
    let (server, repos) = signed_server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(
        &path,
        policy_text(&server.base, &repos, "mode = \"warn\"", dir.path()),
    )
    .unwrap();
    let w = Webhook::start(&path, &dir.path().join("cache"), &[]);
    let resp = w.review(&pod_running(&format!("{REG}/app:v9")));
    assert_eq!(resp["allowed"], true, "{resp}");
    let warning = resp["warnings"][0].as_str().unwrap().to_owned();
    assert!(warning.contains("tag v9 is not signed"), "{resp}");
    // The decision is logged once the response is written: wait for the line.
    let until = Instant::now() + Duration::from_secs(10);
    let line = loop {
        if let Some(l) = w.log_lines("admission decision").pop() {
            break l;
        }
        assert!(Instant::now() < until, "no decision logged");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        line.contains("warned") && line.contains("tag v9 is not signed"),
        "{line}"
    );
}

fn check_policy(file: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-admission"))
        .arg("check-policy")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn check_policy_validates_offline_and_errors_are_printed_once() {
    let (server, repos) = signed_server();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        policy_text(
            &server.base,
            &repos,
            &format!(
                "mode = \"warn\"\n[[server]]\nurl = \"{}\"\ntoken_file = \"/var/run/secrets/vouch/token\"",
                server.base
            ),
            dir.path(),
        ),
    )
    .unwrap();
    let (code, out, err) = check_policy(&good);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid") && out.contains("mode Warn"), "{out}");
    assert!(
        out.contains(&format!(
            "rule 1: {REG}/app -> Verify against {}",
            server.base
        )),
        "{out}"
    );
    assert!(
        out.contains("token from token_file /var/run/secrets/vouch/token"),
        "{out}"
    );

    // A root file that is missing, and one that is not a signed root.
    let text = std::fs::read_to_string(&good).unwrap();
    let missing = dir.path().join("missing.toml");
    std::fs::write(&missing, text.replace(".root.json", ".root.json.gone")).unwrap();
    let (code, _, err) = check_policy(&missing);
    assert_eq!(code, 2);
    assert!(
        err.contains("rule 1") && err.contains("cannot read root_file") && err.contains(".gone"),
        "{err}"
    );
    let root_file = dir
        .path()
        .join(format!("{}.root.json", repos[0].gun.replace('/', "_")));
    std::fs::write(&root_file, b"{\"signed\": 1}").unwrap();
    let (code, _, err) = check_policy(&good);
    assert_eq!(code, 2);
    assert!(
        err.contains("rule 1") && err.contains("not a usable root"),
        "{err}"
    );

    // Bad TOML: the error once, with the line, for check-policy and for serving.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "mode = \"audit\"\n").unwrap();
    let (code, _, err) = check_policy(&bad);
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml") && err.contains("line 1"), "{err}");
    assert_eq!(err.matches("unknown variant").count(), 1, "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-admission"))
        .arg("--policy")
        .arg(&bad)
        .args(["--insecure-http", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.matches("unknown variant").count(), 1, "{err}");
    assert!(err.contains("bad.toml"), "{err}");
}
