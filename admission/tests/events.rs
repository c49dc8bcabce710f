//! The webhook following a real vouch-server's trust-change events: with an hour-long
//! refresh interval, a tag unsigned on the server is denied within seconds (only the event
//! can have caused the refresh), also after the server restarted while the webhook ran
//! (the stream resumes); a token without a wildcard scope is refused the stream, logged
//! once with the scope it needs, and the webhook goes on answering from interval refreshes;
//! a policy reload stops and starts followers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{digest_of, pod_running, policy_text, Repo, Server, WebhookProcess, REG};
use vouch_tuf::reference::Digest;

/// A server configuration (anonymous pulls on, as by default) with one token `token`
/// holding `scope`.
fn server_config(token: &str, scope: &str) -> String {
    format!(
        "[[auth.tokens]]\nname = \"admission\"\nsha256 = \"{}\"\nscopes = [\"{scope}\"]\n",
        Digest::sha256_of(token.as_bytes()).hex()
    )
}

/// A policy for `repos` on `server` with `refresh_interval_secs` and the token in a file.
fn write_policy(dir: &Path, server: &Server, repos: &[Repo], interval: u64, token: &str) {
    let token_file = dir.join("token");
    std::fs::write(&token_file, token).unwrap();
    let mut text = policy_text(
        &server.base,
        repos,
        &format!("refresh_interval_secs = {interval}"),
        dir,
    );
    text.push_str(&format!(
        "[[server]]\nurl = \"{}\"\ntoken_file = \"{}\"\n",
        server.base,
        token_file.display()
    ));
    std::fs::write(dir.join("policy.toml"), text).unwrap();
}

/// Reviews `image` until `allowed` is the answer, for at most 30 s.
fn until_answer(webhook: &WebhookProcess, image: &str, allowed: bool) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = webhook.review(&pod_running(image));
        if resp["allowed"] == allowed {
            return;
        }
        assert!(
            Instant::now() < until,
            "{image} never became allowed={allowed}: {resp}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn allowed(webhook: &WebhookProcess, image: &str) -> bool {
    webhook.review(&pod_running(image))["allowed"] == true
}

const TOKEN: &str = "admission-token-0123456789abcdef";

/// A server granting the webhook's token `scope`, a repository `{REG}/app` signing `v1`,
/// and a webhook started with `args` whose policy refreshes every `interval` seconds.
struct Setup {
    server: Server,
    repo: Repo,
    gun: String,
    dir: tempfile::TempDir,
    webhook: WebhookProcess,
}

fn setup(scope: &str, interval: u64, args: &[&str]) -> Setup {
    let server = Server::start_with_config(&server_config(TOKEN, scope));
    let gun = format!("{REG}/app");
    let repo = Repo::init(&server, &gun, &[("v1", digest_of("v1"))]);
    let dir = tempfile::tempdir().unwrap();
    write_policy(
        dir.path(),
        &server,
        std::slice::from_ref(&repo),
        interval,
        TOKEN,
    );
    let webhook = WebhookProcess::start(
        &dir.path().join("policy.toml"),
        &dir.path().join("cache"),
        args,
    );
    Setup {
        server,
        repo,
        gun,
        dir,
        webhook,
    }
}

#[test]
fn an_unsigned_tag_is_denied_long_before_the_refresh_interval() {
    let Setup {
        mut server,
        mut repo,
        gun,
        dir: _dir,
        webhook,
    } = setup("*:pull", 3600, &[]);
    let up = format!(
        "vouch_admission_event_stream_up{{server=\"{}\"}} 1",
        server.base
    );
    webhook.wait_for_metric(&up);
    let image = format!("{gun}:v1");
    assert!(allowed(&webhook, &image));
    // Warm: answered from the remembered verdict.
    assert!(allowed(&webhook, &image));

    // Unsign v1 (keep v2): the interval is an hour, so only the event can deny it now.
    repo.sign(&server, &[("v2", digest_of("v2"))]);
    until_answer(&webhook, &image, false);
    assert!(allowed(&webhook, &format!("{gun}:v2")));
    let metrics = webhook.get("/metrics").1;
    assert!(
        metrics.contains(&format!(
            "vouch_admission_events_total{{server=\"{}\"}}",
            server.base
        )),
        "{metrics}"
    );
    assert!(
        !metrics.contains("vouch_admission_event_refreshes_total 0"),
        "{metrics}"
    );

    // Sign v1 again, then restart the server while the webhook runs: the stream goes
    // down, comes back, and an unsign after the restart is still seen.
    repo.sign(&server, &[("v1", digest_of("v1")), ("v2", digest_of("v2"))]);
    until_answer(&webhook, &image, true);
    server.restart();
    repo.sign(&server, &[("v2", digest_of("v2"))]);
    until_answer(&webhook, &image, false);
    webhook.wait_for_metric(&up);
}

#[test]
fn events_published_while_the_stream_is_down_still_invalidate() {
    let Setup {
        mut server,
        mut repo,
        gun,
        dir: _dir,
        webhook,
    } = setup("*:pull", 3600, &[]);
    let up = format!(
        "vouch_admission_event_stream_up{{server=\"{}\"}} 1",
        server.base
    );
    webhook.wait_for_metric(&up);
    let image = format!("{gun}:v1");
    assert!(allowed(&webhook, &image));
    // Restart the server and unsign at once: the follower may still be reconnecting
    // when the change is published; it resumes after its last id and sees it.
    server.restart();
    repo.sign(&server, &[("v2", digest_of("v2"))]);
    until_answer(&webhook, &image, false);
}

#[test]
fn a_token_without_a_wildcard_scope_is_refused_the_stream_and_intervals_go_on() {
    let Setup {
        mut server,
        mut repo,
        gun,
        dir: _dir,
        webhook,
    } = setup(&format!("{REG}/*:pull"), 1, &[]);
    let image = format!("{gun}:v1");
    assert!(allowed(&webhook, &image));
    // Refused: logged once, saying which scope is needed.
    let until = Instant::now() + Duration::from_secs(30);
    while webhook.log_lines("refused its event stream").is_empty() {
        assert!(Instant::now() < until, "the refusal was never logged");
        std::thread::sleep(Duration::from_millis(100));
    }
    let logged = webhook.log_lines("refused its event stream");
    assert!(logged[0].contains("*:pull"), "{logged:?}");
    webhook.wait_for_metric(&format!(
        "vouch_admission_event_stream_up{{server=\"{}\"}} 0",
        server.base
    ));
    // Interval refreshes still see an unsign.
    repo.sign(&server, &[("v2", digest_of("v2"))]);
    until_answer(&webhook, &image, false);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(webhook.log_lines("refused its event stream").len(), 1);
    server.kill();
}

#[test]
fn a_policy_reload_stops_and_starts_following() {
    let Setup {
        server,
        mut repo,
        gun,
        dir,
        webhook,
    } = setup("*:pull", 3600, &["--policy-check-secs", "0"]);
    let policy = dir.path().join("policy.toml");
    let sample = format!(
        "vouch_admission_event_stream_up{{server=\"{}\"}}",
        server.base
    );
    webhook.wait_for_metric(&format!("{sample} 1"));
    let image = format!("{gun}:v1");
    assert!(allowed(&webhook, &image));

    // Turned off: the server is no longer followed (its samples go), and an unsign is not
    // seen before the hour-long interval.
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(&policy, format!("follow_events = false\n{text}")).unwrap();
    webhook.hangup();
    let until = Instant::now() + Duration::from_secs(30);
    while webhook.get("/metrics").1.contains(&sample) {
        assert!(Instant::now() < until, "still following after the reload");
        std::thread::sleep(Duration::from_millis(100));
    }
    repo.sign(&server, &[("v2", digest_of("v2"))]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        allowed(&webhook, &image),
        "denied without an event or a refresh"
    );

    // Back on: followed again from the newest event; the next publish makes the webhook
    // refresh, and v1 (unsigned while nobody followed) is denied.
    std::fs::write(&policy, text).unwrap();
    webhook.hangup();
    webhook.wait_for_metric(&format!("{sample} 1"));
    assert!(allowed(&webhook, &image));
    repo.sign(&server, &[("v2", digest_of("v2")), ("v3", digest_of("v3"))]);
    until_answer(&webhook, &image, false);
    assert!(allowed(&webhook, &format!("{gun}:v3")));
}
