//! Unit tests of [`super`]: registry-format bearer tokens, their signatures and claims.

#![allow(clippy::unwrap_used)]

use super::testing::{claims, TestSigner};
use super::*;
use base64ct::Encoding;
use serde_json::json;

const NOW: i64 = 1_800_000_000;

fn policy(signers: &[&TestSigner]) -> TokenPolicy {
    TokenPolicy {
        issuer: "https://auth.example.com".into(),
        audience: "vouch.example.com".into(),
        leeway_seconds: 30,
        keys: signers
            .iter()
            .map(|s| TokenKey::from_pem(&s.public_pem(), None).unwrap())
            .collect(),
    }
}

fn access() -> serde_json::Value {
    json!([{"type": "repository", "name": "example.com/org/app", "actions": ["pull", "push"]}])
}

#[test]
fn every_algorithm_verifies() {
    for s in [
        TestSigner::es256(),
        TestSigner::ed25519(),
        TestSigner::rs256(),
    ] {
        let p = policy(&[&s]);
        let c = verify(&s.mint(&claims(NOW, access())), &p, NOW).unwrap();
        assert_eq!(c.subject, "ci-bot");
        assert_eq!(c.access[0].name, "example.com/org/app");
        assert_eq!(c.access[0].actions, vec!["pull", "push"]);
    }
}

#[test]
fn several_keys_for_rollover() {
    let old = TestSigner::es256();
    let new = TestSigner::ed25519();
    let other = TestSigner::es256();
    let p = policy(&[&old, &new]);
    assert!(verify(&old.mint(&claims(NOW, access())), &p, NOW).is_ok());
    assert!(verify(&new.mint(&claims(NOW, access())), &p, NOW).is_ok());
    assert_eq!(
        verify(&other.mint(&claims(NOW, access())), &p, NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn refusals() {
    let s = TestSigner::es256();
    let p = policy(&[&s]);
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims(NOW, access());
        f(&mut c);
        s.mint(&c)
    };
    assert_eq!(
        verify(&with(&|c| c["exp"] = json!(NOW - 31)), &p, NOW),
        Err(TokenError::Expired)
    );
    // Within the leeway is still fine.
    assert!(verify(&with(&|c| c["exp"] = json!(NOW - 29)), &p, NOW).is_ok());
    assert_eq!(
        verify(
            &with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            &p,
            NOW
        ),
        Err(TokenError::Expired)
    );
    assert_eq!(
        verify(&with(&|c| c["nbf"] = json!(NOW + 31)), &p, NOW),
        Err(TokenError::NotYetValid)
    );
    assert!(verify(&with(&|c| c["nbf"] = json!(NOW + 29)), &p, NOW).is_ok());
    assert_eq!(
        verify(
            &with(&|c| c["aud"] = json!("registry.example.com")),
            &p,
            NOW
        ),
        Err(TokenError::WrongAudience)
    );
    assert!(verify(
        &with(&|c| c["aud"] = json!(["registry.example.com", "vouch.example.com"])),
        &p,
        NOW
    )
    .is_ok());
    assert_eq!(
        verify(
            &with(&|c| c["iss"] = json!("https://evil.example.com")),
            &p,
            NOW
        ),
        Err(TokenError::WrongIssuer)
    );
}

#[test]
fn bad_signatures_and_algorithms() {
    let s = TestSigner::es256();
    let p = policy(&[&s]);
    let good = s.mint(&claims(NOW, access()));

    // Claims changed after signing.
    let (h, rest) = good.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let mut forged = claims(NOW, access());
    forged["access"][0]["name"] = json!("example.com/org/other");
    let forged_p = base64ct::Base64UrlUnpadded::encode_string(forged.to_string().as_bytes());
    assert_eq!(
        verify(&format!("{h}.{forged_p}.{sig}"), &p, NOW),
        Err(TokenError::BadSignature)
    );

    // alg none, with or without a signature.
    let none = s.mint_with_alg("none", &claims(NOW, access()));
    assert_eq!(verify(&none, &p, NOW), Err(TokenError::AlgNone));
    let unsigned = format!("{}.", none.rsplit_once('.').unwrap().0);
    assert_eq!(verify(&unsigned, &p, NOW), Err(TokenError::AlgNone));

    // An algorithm that is not accepted, or one for which no key is configured
    // (an RS256 token must not be checked against an EC key, nor HS256 with a public key).
    assert!(matches!(
        verify(&s.mint_with_alg("HS256", &claims(NOW, access())), &p, NOW),
        Err(TokenError::UnsupportedAlg(_))
    ));
    let rs = TestSigner::rs256();
    assert!(matches!(
        verify(&rs.mint(&claims(NOW, access())), &p, NOW),
        Err(TokenError::UnsupportedAlg(_))
    ));

    for junk in [
        "",
        "a.b",
        "a.b.c.d",
        "!!.!!.!!",
        &"a".repeat(MAX_TOKEN_BYTES + 1),
    ] {
        assert!(
            matches!(verify(junk, &p, NOW), Err(TokenError::Malformed(_))),
            "{junk:.20}"
        );
    }
}

#[test]
fn key_parsing() {
    assert!(TokenKey::from_pem("not pem", None).is_err());
    let rsa_private = include_str!("../../tests/data/jwt/rsa-test-only.pem");
    assert!(TokenKey::from_pem(rsa_private, None).is_err());
    let k = TokenKey::from_pem(&TestSigner::rs256().public_pem(), Some("k1".into())).unwrap();
    assert_eq!(k.alg, Alg::Rs256);
    assert_eq!(k.kid.as_deref(), Some("k1"));
    assert!(looks_like_jwt("a.b.c"));
    assert!(!looks_like_jwt("vouch_0123"));
}
