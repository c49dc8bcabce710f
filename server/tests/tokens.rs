//! Registry-format bearer JWTs through a real server configured with an auth server's public
//! keys: publish and read with tokens minted here (ES256, RS256 and EdDSA, keys picked by
//! `kid`, an old key rolled out of the configuration), and every refusal with the status and
//! challenge a registry client acts on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use base64ct::Encoding;
use common::{ClientRepo, Server};
use reqwest::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::json;

const GUN: &str = "registry.example.com/org/app";
/// The `kid` of the single key `start` configures.
const KID: &str = "auth-2026";
const P256_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
const ED25519_SPKI_PREFIX: &str = "302a300506032b6570032100";

/// A token-signing key of the auth server, of one of the three accepted algorithms.
enum AuthKey {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

impl AuthKey {
    fn es256() -> Self {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        AuthKey::Es256(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap())
    }

    fn ed25519() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        AuthKey::EdDsa(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
    }

    /// The checked-in, test-only RSA-2048 key (ring cannot generate RSA keys).
    fn rs256() -> Self {
        let (label, der) = spki::der::pem::decode_vec(RSA_PRIVATE_PEM.as_bytes()).unwrap();
        assert_eq!(label, "PRIVATE KEY");
        AuthKey::Rs256(RsaKeyPair::from_pkcs8(&der).unwrap())
    }

    fn alg(&self) -> &'static str {
        match self {
            AuthKey::Es256(_) => "ES256",
            AuthKey::EdDsa(_) => "EdDSA",
            AuthKey::Rs256(_) => "RS256",
        }
    }

    /// The SubjectPublicKeyInfo `PUBLIC KEY` PEM the server is configured with.
    fn public_pem(&self) -> String {
        let spki = |prefix: &str, point: &[u8]| {
            let mut der = vouch_tuf::hex::decode(prefix).unwrap();
            der.extend_from_slice(point);
            spki::der::pem::encode_string("PUBLIC KEY", spki::der::pem::LineEnding::LF, &der)
                .unwrap()
        };
        match self {
            AuthKey::Es256(k) => spki(P256_SPKI_PREFIX, k.public_key().as_ref()),
            AuthKey::EdDsa(k) => spki(ED25519_SPKI_PREFIX, k.public_key().as_ref()),
            AuthKey::Rs256(_) => RSA_PUBLIC_PEM.to_owned(),
        }
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            AuthKey::Es256(k) => k.sign(&rng, msg).unwrap().as_ref().to_vec(),
            AuthKey::EdDsa(k) => k.sign(msg).as_ref().to_vec(),
            AuthKey::Rs256(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .unwrap();
                sig
            }
        }
    }

    /// A token with this JOSE header, signed with this key.
    fn mint_with_header(&self, header: serde_json::Value, claims: serde_json::Value) -> String {
        let enc = |v: &serde_json::Value| {
            base64ct::Base64UrlUnpadded::encode_string(v.to_string().as_bytes())
        };
        let input = format!("{}.{}", enc(&header), enc(&claims));
        let sig = self.sign(input.as_bytes());
        format!(
            "{input}.{}",
            base64ct::Base64UrlUnpadded::encode_string(&sig)
        )
    }

    /// A token of this key's algorithm, with `kid` in its header when given.
    fn mint(&self, kid: Option<&str>, claims: serde_json::Value) -> String {
        let mut header = json!({"alg": self.alg(), "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        self.mint_with_header(header, claims)
    }
}

const RSA_PRIVATE_PEM: &str = include_str!("data/jwt/rsa-test-only.pem");
const RSA_PUBLIC_PEM: &str = include_str!("data/jwt/rsa-test-only.pub.pem");

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

/// One `[[auth.jwt.keys]]` entry whose PEM is in `file`.
fn key_file_entry(kid: &str, file: &Path) -> String {
    format!(
        "[[auth.jwt.keys]]\nkid = \"{kid}\"\nfile = \"{}\"\n",
        file.display()
    )
}

/// One `[[auth.jwt.keys]]` entry with the PEM inline.
fn key_inline_entry(kid: &str, pem: &str) -> String {
    format!("[[auth.jwt.keys]]\nkid = \"{kid}\"\npem = '''\n{pem}'''\n")
}

/// Writes a configuration with no anonymous reads and tokens from `auth.example.com`
/// signed by any of `keys` (entries made by `key_file_entry` or `key_inline_entry`).
fn write_config(path: &Path, keys: &[String]) {
    std::fs::write(
        path,
        format!(
            r#"
[auth]
anonymous_pull = false
realm = "https://auth.example.com/token"
service = "vouch.example.com"
[auth.jwt]
issuer = "auth.example.com"
leeway_seconds = 30
{}"#,
            keys.concat()
        ),
    )
    .unwrap();
}

fn start(auth: &AuthKey) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("auth.pem");
    std::fs::write(&key, auth.public_pem()).unwrap();
    let config = dir.path().join("vouch.toml");
    write_config(&config, &[key_file_entry(KID, &key)]);
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
    let auth = AuthKey::es256();
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
    let pull = auth.mint(Some(KID), claims(&["pull"]));
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
    let push = auth.mint(Some(KID), claims(&["pull", "push"]));
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
        let t = auth.mint_with_header(
            json!({"alg": "none", "typ": "JWT", "kid": KID}),
            claims(&["pull"]),
        );
        format!("{}.", t.rsplit_once('.').unwrap().0)
    };
    let other_key = AuthKey::es256().mint(Some(KID), claims(&["pull"]));
    for (why, token) in [
        ("expired", auth.mint(Some(KID), expired)),
        ("not yet valid", auth.mint(Some(KID), early)),
        ("wrong audience", auth.mint(Some(KID), wrong_aud)),
        ("wrong issuer", auth.mint(Some(KID), wrong_iss)),
        ("alg none", unsigned),
        ("bad signature", other_key),
    ] {
        let r = get_with(&token);
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{why}");
        assert!(challenge(&r).contains("error=\"invalid_token\""), "{why}");
        assert_eq!(r.error_code(), "UNAUTHORIZED", "{why}");
    }
}

/// Several auth-server keys at once (two ES256 keys, the RS256 and an EdDSA key, each with its
/// `kid`), then a rollover that drops the old ES256 key from the configuration.
///
/// How the server picks keys (`server/src/jwt.rs`): only keys of the header's `alg` are
/// candidates; when the header's `kid` names one of those, only that key is tried, otherwise
/// (no `kid`, or a `kid` no key *of that algorithm* has) every candidate is tried. So a `kid`
/// pins the key among keys of one algorithm, and is only a hint beyond that.
#[test]
fn keys_of_every_algorithm_selected_by_kid_and_rolled_over() {
    let es_old = AuthKey::es256();
    let es_new = AuthKey::es256();
    let rs = AuthKey::rs256();
    let ed = AuthKey::ed25519();
    let dir = tempfile::tempdir().unwrap();
    let pem_file = |name: &str, k: &AuthKey| {
        let path = dir.path().join(name);
        std::fs::write(&path, k.public_pem()).unwrap();
        path
    };
    let es_old_file = pem_file("es-2025.pem", &es_old);
    let es_new_file = pem_file("es-2026.pem", &es_new);
    let rs_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jwt/rsa-test-only.pub.pem");
    let config = dir.path().join("vouch.toml");
    let current_keys = [
        key_file_entry("es-2026", &es_new_file),
        key_file_entry("rs-2026", &rs_file),
        key_inline_entry("ed-2026", &ed.public_pem()),
    ];
    let mut all_keys = vec![key_file_entry("es-2025", &es_old_file)];
    all_keys.extend(current_keys.iter().cloned());
    write_config(&config, &all_keys);
    let mut s = Server::start_with_args(&["--config", config.to_str().unwrap()]);
    let c = ClientRepo::new(&s, GUN);

    let pull = |s: &Server, token: &str| {
        common::Resp::from(
            s.client
                .get(s.tuf_url(GUN, "targets.json"))
                .bearer_auth(token)
                .send()
                .unwrap(),
        )
    };
    let assert_refused = |r: &common::Resp, why: &str| {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{why}: {}", r.text());
        assert!(challenge(r).contains("error=\"invalid_token\""), "{why}");
    };

    // Each key, with its kid, publishes a targets version and reads the latest back.
    let signers = [
        ("es-2025", &es_old),
        ("es-2026", &es_new),
        ("rs-2026", &rs),
        ("ed-2026", &ed),
    ];
    let mut latest = Vec::new();
    for (i, (kid, key)) in signers.iter().enumerate() {
        let version = i as u64 + 1;
        let tag = format!("v{version}");
        latest = c.signed_targets(version, &[tag.as_str()]);
        let mut files = vec![("targets", latest.clone())];
        if version == 1 {
            files.insert(0, ("root", c.signed_root(1)));
        }
        let push = key.mint(Some(kid), claims(&["pull", "push"]));
        let r = s.publish_with(GUN, &files, Some(&push));
        assert_eq!(r.status, StatusCode::OK, "push with {kid}: {}", r.text());
        let r = pull(&s, &key.mint(Some(kid), claims(&["pull"])));
        assert_eq!(r.status, StatusCode::OK, "pull with {kid}: {}", r.text());
        assert_eq!(r.body, latest, "pull with {kid}");
    }

    // A kid naming the other key of the same algorithm pins that key: refused.
    assert_refused(
        &pull(&s, &es_old.mint(Some("es-2026"), claims(&["pull"]))),
        "kid es-2026, signed by es-2025",
    );
    assert_refused(
        &pull(&s, &es_new.mint(Some("es-2025"), claims(&["pull"]))),
        "kid es-2025, signed by es-2026",
    );
    // The RSA key's kid and alg on an ES256 signature: refused.
    assert_refused(
        &pull(
            &s,
            &es_new.mint_with_header(
                json!({"alg": "RS256", "typ": "JWT", "kid": "rs-2026"}),
                claims(&["pull"]),
            ),
        ),
        "kid and alg of rs-2026, signed by es-2026",
    );

    // Without a kid, every key of the token's algorithm is tried: each configured key is
    // accepted, a key that is not configured is not.
    for (kid, key) in signers {
        let r = pull(&s, &key.mint(None, claims(&["pull"])));
        assert_eq!(r.status, StatusCode::OK, "no kid, signed by {kid}");
    }
    assert_refused(
        &pull(&s, &AuthKey::es256().mint(None, claims(&["pull"]))),
        "no kid, unconfigured key",
    );
    // A kid that no key of the token's algorithm has is ignored, as if absent: an unknown
    // kid, and even the kid of a key of another algorithm, let any configured key verify.
    for (kid, key) in [
        ("retired-2024", &es_new),
        ("es-2026", &ed),
        ("ed-2026", &rs),
    ] {
        let r = pull(&s, &key.mint(Some(kid), claims(&["pull"])));
        assert_eq!(
            r.status,
            StatusCode::OK,
            "kid {kid} on a {} token: {}",
            key.alg(),
            r.text()
        );
    }

    // Rollover: es-2025 leaves the configuration; the server restarts on the same data.
    let old_with_kid = es_old.mint(Some("es-2025"), claims(&["pull"]));
    let old_without_kid = es_old.mint(None, claims(&["pull"]));
    assert_eq!(pull(&s, &old_with_kid).status, StatusCode::OK);
    write_config(&config, &current_keys);
    s.restart();
    assert_refused(&pull(&s, &old_with_kid), "retired key, with its kid");
    assert_refused(&pull(&s, &old_without_kid), "retired key, without a kid");
    assert_refused(
        &s.publish_with(
            GUN,
            &[("targets", c.signed_targets(9, &["v9"]))],
            Some(&es_old.mint(Some("es-2025"), claims(&["pull", "push"]))),
        ),
        "retired key pushing",
    );
    for (kid, key) in &signers[1..] {
        let r = pull(&s, &key.mint(Some(kid), claims(&["pull"])));
        assert_eq!(r.status, StatusCode::OK, "{kid} after the rollover");
        assert_eq!(r.body, latest, "{kid} after the rollover");
    }
}

/// An event stream opened with a registry JWT ends when the token does (its `exp` plus the
/// leeway), with a notice saying so; a stream is no way to keep reading past a token's life.
#[test]
fn an_event_stream_ends_when_its_token_expires() {
    let auth = AuthKey::es256();
    let (s, _dir) = start(&auth);
    let mut c = claims(&["pull"]);
    // Accepted for about two more seconds: the configured leeway is 30 s.
    c["exp"] = json!(now() - 28);
    let token = auth.mint(Some(KID), c);
    let path = common::events_path(Some(GUN));
    let stream = common::EventStream::open(&s, &path, Some(&token), None).unwrap();
    let mut notice = None;
    while let Some(frame) = stream.next(common::WAIT) {
        if let vouch_tuf::api::event::Frame::Reconnect(n) = frame {
            notice = Some(n);
            break;
        }
    }
    assert_eq!(
        notice.expect("the stream did not end").reason,
        vouch_tuf::api::event::NoticeReason::CredentialExpired
    );
    // The same token is refused now.
    let (status, _) = common::EventStream::open(&s, &path, Some(&token), None)
        .err()
        .expect("an expired token opened a stream");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
