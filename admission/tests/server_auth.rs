//! The webhook authenticating to a real vouch-server whose anonymous pulls are off: without
//! a token (none configured, or a token file that cannot be read) every image is denied as
//! "not authorised" (never "unreachable"); with a `token_file` it is admitted; when the token is rotated (the server accepts only the new
//! one) and the file rewritten, admissions go on without restarting the webhook; a refused
//! token is named as such.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{digest_of, fixture, patched, serve, Harness, Repo, Server, REG};
use reqwest::blocking::Client;
use serde_json::Value;
use vouch_admission::decide::Endpoint;
use vouch_tuf::reference::Digest;

/// A server configuration with anonymous pulls off and one static token per entry
/// (`name`, token), each allowed to pull `registry.example.com/org/*`.
fn server_config(tokens: &[(&str, &str)]) -> String {
    let mut c = "[auth]\nanonymous_pull = false\n".to_owned();
    for (name, token) in tokens {
        c.push_str(&format!(
            "\n[[auth.tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\nscopes = [\"{REG}/*:pull\"]\n",
            Digest::sha256_of(token.as_bytes()).hex()
        ));
    }
    c
}

/// The status the server answers a read of `app`'s timestamp with, sending `token`.
fn read_status(server: &Server, token: Option<&str>) -> u16 {
    let mut r = Client::new().get(format!(
        "{}/v2/{REG}/app/_trust/tuf/timestamp.json",
        server.base
    ));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap().status().as_u16()
}

fn post(client: &Client, url: &str, review: &Value) -> Value {
    let r = client.post(url).json(review).send().unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json::<Value>().unwrap()["response"].clone()
}

fn app_image(review: &Value, resp: &Value) -> String {
    patched(review, resp)
        .pointer("/spec/containers/0/image")
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// Writes `token` to `path` the way the kubelet updates a projected volume: a new file
/// renamed over the old one.
fn write_token(path: &Path, token: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, format!("{token}\n")).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn server_table(server: &Server, setting: &str) -> String {
    format!(
        "refresh_interval_secs = 2\n[[server]]\nurl = \"{}/\"\n{setting}\n",
        server.base
    )
}

#[test]
fn a_token_file_authenticates_the_webhook_through_a_token_rotation() {
    let (old, new) = ("webhook-token-2026-a", "webhook-token-2026-b");
    let mut server = Server::start_with_config(&server_config(&[("webhook", old)]));
    let mut repos: Vec<Repo> = ["app", "init", "sidecar"]
        .iter()
        .map(|n| Repo::init(&server, &format!("{REG}/{n}"), &[("v1", digest_of("v1"))]))
        .collect();
    // The server really refuses anonymous reads, and takes the token.
    assert_eq!(read_status(&server, None), 401);
    assert_eq!(read_status(&server, Some(old)), 200);
    let review = fixture("pod-create.json");

    // No token in the policy: denied as not authorised, saying how to configure one.
    let anonymous = Harness::new(&server.base, &repos, "");
    let resp = anonymous.send(&review, Endpoint::Mutate);
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = resp["status"]["message"].as_str().unwrap();
    assert!(
        m.contains("not authorised")
            && m.contains(&format!("the trust server {} needs a token", server.base))
            && m.contains("[[server]]")
            && m.contains("token_file"),
        "{m}"
    );
    assert!(!m.contains("unreachable"), "{m}");
    let metrics = anonymous.webhook.metrics().render();
    assert!(
        metrics.contains(
            "vouch_admission_decisions_total{result=\"denied\",reason=\"not_authorised\"} 1"
        ),
        "{metrics}"
    );
    assert!(!metrics.contains("reason=\"unreachable\""), "{metrics}");

    // A token file that is not there (yet): not authorised, saying why no token was sent.
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("token");
    let unreadable = Harness::new(
        &server.base,
        &repos,
        &server_table(
            &server,
            &format!("token_file = \"{}\"", token_file.display()),
        ),
    );
    let resp = unreadable.send(&review, Endpoint::Validate);
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = resp["status"]["message"].as_str().unwrap();
    assert!(
        m.contains("not authorised")
            && m.contains(&format!(
                "none was sent: token_file {} cannot be read: No such file",
                token_file.display()
            )),
        "{m}"
    );

    // A token file: admitted, and pinned.
    write_token(&token_file, old);
    let h = Harness::new(
        &server.base,
        &repos,
        &server_table(
            &server,
            &format!("token_file = \"{}\"", token_file.display()),
        ),
    );
    let s = serve(&h);
    let client = Client::new();
    let url = format!("{}/mutate", s.base);
    let resp = post(&client, &url, &review);
    assert_eq!(resp["allowed"], true, "{resp}");
    assert_eq!(
        app_image(&review, &resp),
        format!("{REG}/app:v1@{}", digest_of("v1"))
    );

    // The token is rotated: the server accepts only the new one …
    server.restart_with_config(&server_config(&[("webhook", new)]));
    assert_eq!(read_status(&server, Some(old)), 401);
    assert_eq!(read_status(&server, Some(new)), 200);
    // … the tag is signed again, so that only a refresh made with the new token can pin
    // the new digest (the last trusted state would keep pinning the old one) …
    let d2 = digest_of("v1 rebuilt");
    repos[0].sign(&server, &[("v1", d2.clone())]);
    // … and the token file is rewritten: the running webhook picks it up.
    write_token(&token_file, new);
    let want = format!("{REG}/app:v1@{d2}");
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = post(&client, &url, &review);
        assert_eq!(resp["allowed"], true, "{resp}");
        if app_image(&review, &resp) == want {
            break;
        }
        assert!(
            Instant::now() < until,
            "the new token was not used: still {}",
            app_image(&review, &resp)
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // The revoked token, written in a policy: refused, and named as refused.
    let revoked = Harness::new(
        &server.base,
        &repos,
        &server_table(&server, &format!("token = \"{old}\"")),
    );
    let resp = revoked.send(&review, Endpoint::Validate);
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = resp["status"]["message"].as_str().unwrap();
    assert!(
        m.contains("not authorised")
            && m.contains("refused the token from the token written in the policy")
            && m.contains("HTTP 401"),
        "{m}"
    );
    assert!(!m.contains(old), "the token is never shown: {m}");
}

#[test]
fn a_token_without_pull_access_to_the_repository_is_not_authorised() {
    // A static token scoped to other repositories: the server answers 403.
    let token = "webhook-other-team";
    let config = format!(
        "[auth]\nanonymous_pull = false\n\n[[auth.tokens]]\nname = \"other\"\nsha256 = \"{}\"\n\
         scopes = [\"registry.example.com/other/*:pull\"]\n",
        Digest::sha256_of(token.as_bytes()).hex()
    );
    let server = Server::start_with_config(&config);
    let repos = vec![Repo::init(
        &server,
        &format!("{REG}/app"),
        &[("v1", digest_of("v1"))],
    )];
    assert_eq!(read_status(&server, Some(token)), 403);
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("token");
    write_token(&token_file, token);
    let h = Harness::new(
        &server.base,
        &repos,
        &server_table(
            &server,
            &format!("token_file = \"{}\"", token_file.display()),
        ),
    );
    let resp = h.send(
        &common::pod_running(&format!("{REG}/app:v1")),
        Endpoint::Validate,
    );
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = resp["status"]["message"].as_str().unwrap();
    assert!(
        m.contains("not authorised")
            && m.contains(&format!(
                "refused the token from token_file {}",
                token_file.display()
            ))
            && m.contains("HTTP 403"),
        "{m}"
    );
    // The same 403 to an anonymous reader of a static file host would mean "no such
    // file"; with a token sent it is never taken for "no trust data".
    assert!(!m.contains("no trust data"), "{m}");
}
