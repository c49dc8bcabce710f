//! Registry-format bearer JWTs through a real server configured with an auth server's public
//! keys: publish and read with tokens minted here, and every refusal with the status and
//! challenge a registry client acts on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64ct::Encoding;
use common::{ClientRepo, Server};
use reqwest::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use serde_json::json;

const GUN: &str = "registry.example.com/org/app";
const P256_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";

struct AuthServer {
    key: EcdsaKeyPair,
}

impl AuthServer {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        AuthServer {
            key: EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap(),
        }
    }

    fn public_pem(&self) -> String {
        let mut der = vouch_tuf::hex::decode(P256_SPKI_PREFIX).unwrap();
        der.extend_from_slice(self.key.public_key().as_ref());
        let b64 = base64ct::Base64::encode_string(&der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    fn mint(&self, alg: &str, claims: serde_json::Value) -> String {
        let enc = |v: &serde_json::Value| {
            base64ct::Base64UrlUnpadded::encode_string(v.to_string().as_bytes())
        };
        let input = format!(
            "{}.{}",
            enc(&json!({"alg": alg, "typ": "JWT", "kid": "auth-2026"})),
            enc(&claims)
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!(
            "{input}.{}",
            base64ct::Base64UrlUnpadded::encode_string(sig.as_ref())
        )
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(actions: &[&str]) -> serde_json::Value {
    let n = now();
    json!({
        "iss": "auth.example.com",
        "sub": "release-ci",
        "aud": "vouch.example.com",
        "iat": n, "nbf": n - 5, "exp": n + 300,
        "access": [{"type": "repository", "name": GUN, "actions": actions}],
    })
}

fn start(auth: &AuthServer) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("auth.pem");
    std::fs::write(&key, auth.public_pem()).unwrap();
    let config = dir.path().join("vouch.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[auth]
anonymous_pull = false
realm = "https://auth.example.com/token"
service = "vouch.example.com"
[auth.jwt]
issuer = "auth.example.com"
leeway_seconds = 30
[[auth.jwt.keys]]
kid = "auth-2026"
file = "{}"
"#,
            key.display()
        ),
    )
    .unwrap();
    (
        Server::start_with_args(&["--config", config.to_str().unwrap()]),
        dir,
    )
}

fn challenge(r: &common::Resp) -> String {
    r.headers
        .get("www-authenticate")
        .expect("a 401 carries a challenge")
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn registry_tokens_end_to_end() {
    let auth = AuthServer::new();
    let (s, _dir) = start(&auth);
    let c = ClientRepo::new(&s, GUN);
    let files = [
        ("root", c.signed_root(1)),
        ("targets", c.signed_targets(1, &["v1"])),
    ];
    let path = format!("/v2/{GUN}/_trust/tuf/targets.json");
    let get_with = |token: &str| {
        common::Resp::from(
            s.client
                .get(s.url(&path))
                .bearer_auth(token)
                .send()
                .unwrap(),
        )
    };

    // No token: 401 with the configured realm and service and the scope needed.
    let r = s.publish_with(GUN, &files, None);
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&r),
        format!(
            "Bearer realm=\"https://auth.example.com/token\",service=\"vouch.example.com\",\
             scope=\"repository:{GUN}:push\""
        )
    );

    // A pull-only token cannot publish: 401 insufficient_scope asking for push.
    let pull = auth.mint("ES256", claims(&["pull"]));
    let r = s.publish_with(GUN, &files, Some(&pull));
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let ch = challenge(&r);
    assert!(
        ch.contains(&format!("scope=\"repository:{GUN}:push\""))
            && ch.contains("error=\"insufficient_scope\""),
        "{ch}"
    );
    assert!(s.current(GUN, "targets").is_none());

    // A push token publishes; a pull token reads what was published.
    let push = auth.mint("ES256", claims(&["pull", "push"]));
    let r = s.publish_with(GUN, &files, Some(&push));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = get_with(&pull);
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, c.signed_targets(1, &["v1"]));

    // Refused tokens: each 401 invalid_token on a read that a good token may do.
    let n = now();
    let mut expired = claims(&["pull"]);
    expired["exp"] = json!(n - 120);
    let mut early = claims(&["pull"]);
    early["nbf"] = json!(n + 120);
    let mut wrong_aud = claims(&["pull"]);
    wrong_aud["aud"] = json!("registry.example.com");
    let mut wrong_iss = claims(&["pull"]);
    wrong_iss["iss"] = json!("evil.example.com");
    let unsigned = {
        let t = auth.mint("none", claims(&["pull"]));
        format!("{}.", t.rsplit_once('.').unwrap().0)
    };
    let other_key = AuthServer::new().mint("ES256", claims(&["pull"]));
    for (why, token) in [
        ("expired", auth.mint("ES256", expired)),
        ("not yet valid", auth.mint("ES256", early)),
        ("wrong audience", auth.mint("ES256", wrong_aud)),
        ("wrong issuer", auth.mint("ES256", wrong_iss)),
        ("alg none", unsigned),
        ("bad signature", other_key),
    ] {
        let r = get_with(&token);
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{why}");
        assert!(challenge(&r).contains("error=\"invalid_token\""), "{why}");
        assert_eq!(r.error_code(), "UNAUTHORIZED", "{why}");
    }
}
