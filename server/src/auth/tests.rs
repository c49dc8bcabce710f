//! Unit tests of [`super`]: token globs, authorisation decisions and registry-format tokens.

use super::*;
use crate::config::TokenConfig;

fn sha(t: &str) -> String {
    vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, t.as_bytes()))
}

fn authorizer(anonymous_pull: bool) -> Authorizer {
    let cfg = AuthConfig {
        anonymous_pull,
        realm: "https://auth.example.com/token".into(),
        service: "vouch.example.com".into(),
        tokens: vec![TokenConfig {
            name: "ci".into(),
            sha256: sha("ci-token"),
            scopes: vec![
                "example.com/org/*:pull,push".into(),
                "example.com/other:pull".into(),
            ],
        }],
        jwt: None,
    };
    Authorizer::new(&cfg, Some(sha("admin-token"))).unwrap()
}

#[test]
fn globs() {
    assert!(glob(b"*", b"a/b/c"));
    assert!(glob(b"example.com/org/*", b"example.com/org/team/app"));
    assert!(!glob(b"example.com/org/*", b"example.com/orgx/app"));
    assert!(glob(b"a?c", b"abc"));
    assert!(!glob(b"abc", b"abcd"));
}

/// The last `:` ends the pattern, so a registry port stays in it; unknown actions are refused.
#[test]
fn scope_parse_keeps_a_registry_port_and_refuses_unknown_actions() {
    let scope = Scope::parse("registry.example.com:5000/org/*:pull,push").unwrap();
    let gun = Gun::new("registry.example.com:5000/org/app").unwrap();
    assert!(scope.allows(Target::Gun(&gun), Action::Push));
    assert!(Scope::parse("org/app:fly").is_err());
    assert!(Scope::parse(":pull").is_err());
}

/// The scope dialect differs from admission and pin patterns on purpose: `*` crosses `/`.
#[test]
fn scope_globs_cross_path_components_unlike_name_patterns() {
    let scope = Scope::parse("example.com/org/*:pull").unwrap();
    let deep = Gun::new("example.com/org/team/app").unwrap();
    assert!(scope.allows(Target::Gun(&deep), Action::Pull));
    assert!(!scope.allows(Target::Gun(&deep), Action::Push));
    assert!(!scope.allows(Target::All, Action::Pull));
    assert!(Scope::parse("*:pull")
        .unwrap()
        .allows(Target::All, Action::Pull));
    let name = vouch_tuf::pattern::NamePattern::parse("example.com/org/*").unwrap();
    assert!(!name.matches(deep.as_str()));
    // Linear: many stars against a long name that almost matches.
    let many = "*a".repeat(50) + "b";
    assert!(!glob(many.as_bytes(), "a".repeat(5000).as_bytes()));
}

#[test]
fn decisions() {
    let a = authorizer(true);
    let app = Gun::new("example.com/org/app").unwrap();
    let other = Gun::new("example.com/other").unwrap();
    let t = |s: &str| format!("Bearer {s}");
    assert_eq!(
        a.authorize(None, Target::Gun(&app), Action::Pull),
        Ok(Principal::Anonymous)
    );
    assert!(matches!(
        a.authorize(None, Target::Gun(&app), Action::Push),
        Err(Denied::Unauthenticated { scope, .. }) if scope == "repository:example.com/org/app:push"
    ));
    assert_eq!(
        a.authorize(Some(&t("ci-token")), Target::Gun(&app), Action::Push),
        Ok(Principal::Token("ci".into()))
    );
    assert!(matches!(
        a.authorize(Some(&t("ci-token")), Target::Gun(&other), Action::Push),
        Err(Denied::Forbidden { .. })
    ));
    assert!(matches!(
        a.authorize(Some(&t("ci-token")), Target::Gun(&app), Action::Delete),
        Err(Denied::Forbidden { .. })
    ));
    assert!(matches!(
        a.authorize(Some(&t("wrong")), Target::Gun(&app), Action::Pull),
        Err(Denied::Unauthenticated { .. })
    ));
    assert!(matches!(
        a.authorize(Some("Basic abc"), Target::Gun(&app), Action::Pull),
        Err(Denied::Unauthenticated { .. })
    ));
    assert!(matches!(
        a.authorize(Some(&t("ci-token")), Target::All, Action::Pull),
        Err(Denied::Forbidden { .. })
    ));
    assert!(a
        .authorize(Some(&t("admin-token")), Target::All, Action::Pull)
        .is_ok());
    assert!(a
        .authorize(Some(&t("admin-token")), Target::Gun(&other), Action::Delete)
        .is_ok());
    assert!(matches!(
        a.authorize(None, Target::All, Action::Pull),
        Err(Denied::Unauthenticated { .. })
    ));

    let closed = authorizer(false);
    assert!(matches!(
        closed.authorize(None, Target::Gun(&app), Action::Pull),
        Err(Denied::Unauthenticated { .. })
    ));
    assert_eq!(
            closed.challenge("repository:x:pull", None),
            "Bearer realm=\"https://auth.example.com/token\",service=\"vouch.example.com\",scope=\"repository:x:pull\""
        );
}

#[test]
fn registry_tokens() {
    use crate::config::{JwtConfig, JwtKeyConfig};
    use crate::jwt::testing::{claims, TestSigner};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;
    let es = TestSigner::es256();
    let ed = TestSigner::ed25519();
    let cfg = AuthConfig {
        anonymous_pull: false,
        realm: "https://auth.example.com/token".into(),
        service: "vouch.example.com".into(),
        tokens: vec![],
        jwt: Some(JwtConfig {
            issuer: "https://auth.example.com".into(),
            leeway_seconds: 30,
            keys: [&es, &ed]
                .iter()
                .map(|s| JwtKeyConfig {
                    kid: None,
                    file: None,
                    pem: Some(s.public_pem()),
                })
                .collect(),
        }),
    };
    let a = Authorizer::new(&cfg, Some(sha("admin-token"))).unwrap();
    let app = Gun::new("example.com/org/app").unwrap();
    let other = Gun::new("example.com/org/other").unwrap();
    let grant =
        json!([{"type": "repository", "name": "example.com/org/app", "actions": ["pull", "push"]}]);
    let bearer = |t: String| format!("Bearer {t}");
    let check =
        |token: String, target, action| a.authorize_at(Some(&bearer(token)), target, action, NOW);
    let invalid = |r: Result<Principal, Denied>| {
        matches!(
            r,
            Err(Denied::Unauthenticated {
                error: Some("invalid_token"),
                ..
            })
        )
    };

    assert_eq!(
        check(
            es.mint(&claims(NOW, grant.clone())),
            Target::Gun(&app),
            Action::Push
        ),
        Ok(Principal::Jwt {
            subject: "ci-bot".into(),
            valid_until: NOW + 300 + 30
        })
    );
    assert!(check(
        ed.mint(&claims(NOW, grant.clone())),
        Target::Gun(&app),
        Action::Pull
    )
    .is_ok());
    // The static admin token still works beside JWTs.
    assert!(a
        .authorize_at(
            Some("Bearer admin-token"),
            Target::Gun(&app),
            Action::Delete,
            NOW
        )
        .is_ok());

    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims(NOW, grant.clone());
        f(&mut c);
        es.mint(&c)
    };
    for (why, token) in [
        ("expired", with(&|c| c["exp"] = json!(NOW - 120))),
        ("not yet valid", with(&|c| c["nbf"] = json!(NOW + 120))),
        (
            "wrong audience",
            with(&|c| c["aud"] = json!("registry.example.com")),
        ),
        (
            "wrong issuer",
            with(&|c| c["iss"] = json!("https://other.example.com")),
        ),
        (
            "alg none",
            es.mint_with_alg("none", &claims(NOW, grant.clone())),
        ),
        (
            "bad signature",
            TestSigner::es256().mint(&claims(NOW, grant.clone())),
        ),
    ] {
        assert!(
            invalid(check(token, Target::Gun(&app), Action::Pull)),
            "{why}"
        );
    }

    // Valid token, wrong scope: 401 insufficient_scope naming the needed scope.
    assert_eq!(
        check(
            es.mint(&claims(NOW, grant.clone())),
            Target::Gun(&app),
            Action::Delete
        ),
        Err(Denied::InsufficientScope {
            scope: "repository:example.com/org/app:delete".into()
        })
    );
    assert!(matches!(
        check(
            es.mint(&claims(NOW, grant.clone())),
            Target::Gun(&other),
            Action::Pull
        ),
        Err(Denied::InsufficientScope { .. })
    ));
    // Repository names in tokens are exact, not globs.
    let glob_grant = json!([{"type": "repository", "name": "example.com/org/*", "actions": ["*"]}]);
    assert!(matches!(
        check(
            es.mint(&claims(NOW, glob_grant)),
            Target::Gun(&app),
            Action::Pull
        ),
        Err(Denied::InsufficientScope { .. })
    ));
    assert!(matches!(
        check(
            es.mint(&claims(NOW, grant.clone())),
            Target::All,
            Action::Pull
        ),
        Err(Denied::InsufficientScope { .. })
    ));
    let catalog = json!([{"type": "registry", "name": "catalog", "actions": ["*"]}]);
    assert!(check(es.mint(&claims(NOW, catalog)), Target::All, Action::Pull).is_ok());
    assert_eq!(
        a.challenge(
            "repository:example.com/org/app:delete",
            Some("insufficient_scope")
        ),
        "Bearer realm=\"https://auth.example.com/token\",service=\"vouch.example.com\",\
             scope=\"repository:example.com/org/app:delete\",error=\"insufficient_scope\""
    );
}
