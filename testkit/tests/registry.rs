//! The registry harness against the real `docker-registry` and `skopeo`: what each
//! authentication mode refuses and lets through, the bearer flow through the harness's token
//! service, a restart keeping what was pushed, and a multi-platform push serving an index.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use vouch_testkit::registry::{
    Anonymous, Client, ImageLayout, Registry, RegistryAuth, OCI_INDEX, OCI_MANIFEST,
};

fn basic() -> RegistryAuth {
    RegistryAuth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    }
}

fn token(anonymous: Anonymous) -> RegistryAuth {
    RegistryAuth::Token {
        user: "alice".into(),
        password: "s3cret".into(),
        anonymous,
    }
}

#[test]
fn anonymous_registry_serves_what_was_pushed() {
    let registry = Registry::start();
    assert!(registry.host().starts_with("127.0.0.1:"));
    let image = ImageLayout::new("plain");
    assert_eq!(image.media_type(), OCI_MANIFEST);
    let digest = image.push(&registry, "org/app:v1");
    assert_eq!(digest, image.digest());
    let head = registry.get_anonymous("/v2/org/app/manifests/v1");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Docker-Content-Digest"), Some(digest.as_str()));
    assert_eq!(registry.manifest_digest("org/app", "v2"), None);
    // Two layouts with one label still differ: the layer is random.
    assert_ne!(ImageLayout::new("plain").digest(), image.digest());
}

#[test]
fn basic_auth_refuses_anonymous_pull_and_accepts_the_login() {
    let registry = Registry::start_with(basic());
    let image = ImageLayout::new("basic");
    let digest = image.push(&registry, "app:v1");

    let path = "/v2/app/manifests/v1";
    let anonymous = registry.get(path, Client::Anonymous);
    assert_eq!(anonymous.status, 401);
    let challenge = anonymous.header("WWW-Authenticate").unwrap();
    assert!(challenge.starts_with("Basic "), "{challenge}");

    let with_login = registry.get(path, Client::WithLogin);
    assert_eq!(with_login.status, 200);
    assert_eq!(
        with_login.header("Docker-Content-Digest"),
        Some(digest.as_str())
    );
    assert!(registry.token_requests().is_empty());
}

#[test]
fn token_auth_runs_the_bearer_flow() {
    let registry = Registry::start_with(token(Anonymous::Nothing));
    let realm = registry.token_realm().unwrap().to_owned();

    // Without a token: 401 and a Bearer challenge naming the harness's token service.
    let path = "/v2/app/manifests/v1";
    let anonymous = registry.get_anonymous(path);
    assert_eq!(anonymous.status, 401);
    let challenge = anonymous.header("WWW-Authenticate").unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(&format!("realm=\"{realm}\"")),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"repository:app:pull\""),
        "{challenge}"
    );
    assert!(registry.token_requests().is_empty());

    // skopeo pushes through the bearer flow with the login.
    let image = ImageLayout::new("token");
    let digest = image.push(&registry, "app:v1");
    let asked = registry.token_requests();
    assert!(
        asked
            .iter()
            .any(|a| a.sent_credentials()
                && a.scopes.iter().any(|s| s == "repository:app:pull,push")),
        "{asked:?}"
    );

    // The harness's own client goes through the flow too: one more token request.
    let before = registry.token_requests().len();
    assert_eq!(registry.manifest_digest("app", "v1"), Some(digest));
    assert_eq!(registry.token_requests().len(), before + 1);

    // A token asked for without credentials grants nothing here: the registry refuses it.
    let anonymous_token = anonymous_bearer(&registry, &realm, "repository:app:pull");
    assert_eq!(anonymous_token, 401);
    let last = registry.token_requests().pop().unwrap();
    assert!(!last.sent_credentials());
    assert_eq!(last.scopes, ["repository:app:pull"]);
}

#[test]
fn token_auth_with_anonymous_pull() {
    let registry = Registry::start_with(token(Anonymous::PullAll));
    let realm = registry.token_realm().unwrap().to_owned();
    let image = ImageLayout::new("public");
    image.push(&registry, "app:v1");
    assert_eq!(
        anonymous_bearer(&registry, &realm, "repository:app:pull"),
        200
    );
    let last = registry.token_requests().pop().unwrap();
    assert!(!last.sent_credentials());
}

/// `GET /v2/app/manifests/v1` with a token the realm gave for `scope` without credentials;
/// the registry's status.
fn anonymous_bearer(registry: &Registry, realm: &str, scope: &str) -> u16 {
    use std::io::{BufReader, Write};
    let rest = realm.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let target = format!(
        "/{path}?service={}&scope={scope}",
        vouch_testkit::registry::TOKEN_SERVICE
    );
    let get = |host: &str, target: &str, auth: Option<&str>| {
        let mut conn = std::net::TcpStream::connect(host).unwrap();
        let mut req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        if let Some(a) = auth {
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        req.push_str(&format!("Accept: {OCI_MANIFEST}\r\n\r\n"));
        conn.write_all(req.as_bytes()).unwrap();
        vouch_testkit::http::read_response(&mut BufReader::new(conn)).unwrap()
    };
    let (head, body) = get(host, &target, None);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let token = json["token"].as_str().unwrap();
    let (head, _) = get(
        registry.host(),
        "/v2/app/manifests/v1",
        Some(&format!("Bearer {token}")),
    );
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn restart_keeps_pushed_images() {
    let mut registry = Registry::start_with(basic());
    let host = registry.host().to_owned();
    let digest = ImageLayout::new("kept").push(&registry, "app:v1");
    registry.stop();
    assert!(
        std::net::TcpStream::connect(&host).is_err(),
        "still listening"
    );
    registry.restart();
    assert_eq!(registry.host(), host);
    assert_eq!(registry.manifest_digest("app", "v1"), Some(digest));
}

#[test]
fn multi_platform_push_serves_an_index() {
    let registry = Registry::start();
    let image = ImageLayout::multi_platform("multi", &["linux/amd64", "linux/arm64/v8"]);
    assert_eq!(image.media_type(), OCI_INDEX);
    assert_eq!(image.platforms().len(), 2);
    let digest = image.push(&registry, "app:v1");
    assert_eq!(digest, image.digest());
    let head = registry.get_anonymous("/v2/app/manifests/v1");
    assert_eq!(head.header("Content-Type"), Some(OCI_INDEX));
    // Each platform's manifest was pushed too, by digest.
    for p in image.platforms() {
        assert_ne!(p.digest, digest);
        assert_eq!(
            registry.manifest_digest("app", &p.digest),
            Some(p.digest.clone()),
            "{}",
            p.platform
        );
    }
}
