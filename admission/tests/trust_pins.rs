//! One policy rule and one pin file for every repository of an organisation: the webhook
//! admits any repository whose first root the organisation's keys signed (rotations
//! included), and denies, naming the pin, a repository under the same pattern with another
//! root or a repository no pin covers. Against a real vouch-server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{digest_of, message, pod_running, Harness, Repo, Server, REG};
use serde_json::Value;
use vouch_admission::decide::Endpoint;
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use vouch_tuf::metadata::Key;

/// A copy of `key` (the same secret).
fn same(key: &PrivateKey) -> PrivateKey {
    PrivateKey::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap()
}

fn decide(h: &Harness, image: &str) -> Value {
    h.send(&pod_running(image), Endpoint::Validate)
}

#[test]
fn an_organisation_key_pin_admits_its_repositories_and_only_those() {
    let server = Server::start();
    let org = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let tags = [("v1", digest_of("v1"))];
    let mut app = Repo::init_with_root_key(&server, &format!("{REG}/app"), &tags, same(&org));
    let _api = Repo::init_with_root_key(&server, &format!("{REG}/team/api"), &tags, same(&org));
    let _rogue = Repo::init(&server, &format!("{REG}/rogue"), &tags);

    let pins_dir = tempfile::tempdir().unwrap();
    let key_file = pins_dir.path().join("org-root.pub.json");
    std::fs::write(
        &key_file,
        vouch_tuf::json::canonical(&Key::from_verifying_key(&org.verifying_key()).to_value()),
    )
    .unwrap();
    let pins = pins_dir.path().join("pins.toml");
    std::fs::write(
        &pins,
        "[[pin]]\ngun = \"registry.example.com/org/**\"\nroot_keys = [\"org-root.pub.json\"]\n",
    )
    .unwrap();
    let extra = format!(
        "trust_pins = \"{}\"\n\n[[rule]]\npattern = \"registry.example.com/**\"\naction = \"verify\"\nserver = \"{}\"\n",
        pins.display(),
        server.base
    );
    let h = Harness::new(&server.base, &[], &extra);

    for image in [format!("{REG}/app:v1"), format!("{REG}/team/api:v1")] {
        let resp = decide(&h, &image);
        assert_eq!(resp["allowed"], true, "{image}: {resp}");
    }
    // Operators see when each repository's root and targets expire (2099-01-01 here).
    let metrics = h.webhook.metrics().render();
    for line in [
        "vouch_admission_metadata_expiry_timestamp_seconds{gun=\"registry.example.com/org/app\",role=\"root\"} 4070908800",
        "vouch_admission_metadata_expiry_timestamp_seconds{gun=\"registry.example.com/org/team/api\",role=\"targets\"} 4070908800",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    // Same pattern, a root the organisation did not sign.
    let resp = decide(&h, &format!("{REG}/rogue:v1"));
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = message(&resp);
    assert!(
        m.contains("first root is not trusted")
            && m.contains("signed by 0 of the pinned root keys"),
        "{m}"
    );
    // A repository the rule covers but no pin does.
    let resp = decide(&h, "registry.example.com/elsewhere/tool:v1");
    assert_eq!(resp["allowed"], false, "{resp}");
    assert!(message(&resp).contains("no trust pin covers registry.example.com/elsewhere/tool"));

    // The repository rotates its root away from the organisation's key: a webhook that
    // starts afresh walks the chain from the organisation-signed first root.
    app.rotate_keys(&server, &[("v2", digest_of("v2"))]);
    let fresh = Harness::new(&server.base, &[], &extra);
    let resp = decide(&fresh, &format!("{REG}/app:v2"));
    assert_eq!(resp["allowed"], true, "{resp}");
}

/// A source serving one organisation repository's trust data as another's: the first root
/// carries the organisation's signatures, but names the other repository, so it is refused
/// (before, any root the organisation signed would have anchored any repository).
#[test]
fn one_repositorys_trust_data_cannot_stand_in_for_anothers() {
    let server = Server::start();
    let org = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let app = Repo::init_with_root_key(
        &server,
        &format!("{REG}/app"),
        &[("v1", digest_of("app"))],
        same(&org),
    );
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror");
    common::mirror_as(&server, &app.gun, &app.gun, &app.root_bytes(), &mirror);
    common::mirror_as(
        &server,
        &app.gun,
        &format!("{REG}/api"),
        &app.root_bytes(),
        &mirror,
    );
    std::fs::write(
        dir.path().join("org-root.pub.json"),
        vouch_tuf::json::canonical(&Key::from_verifying_key(&org.verifying_key()).to_value()),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pins.toml"),
        "[[pin]]\ngun = \"registry.example.com/org/**\"\nroot_keys = [\"org-root.pub.json\"]\n",
    )
    .unwrap();
    let text = format!(
        "trust_pins = \"pins.toml\"\n[[rule]]\npattern = \"registry.example.com/org/**\"\naction = \"verify\"\nserver = \"file://{}\"\n",
        mirror.display()
    );
    let policy = vouch_admission::policy::Policy::parse(&text, dir.path()).unwrap();
    let h = Harness::for_policy(policy, dir, |_| {});
    assert_eq!(decide(&h, &format!("{REG}/app:v1"))["allowed"], true);
    let resp = decide(&h, &format!("{REG}/api:v1"));
    assert_eq!(resp["allowed"], false, "{resp}");
    assert!(
        message(&resp).contains(
            "is the root of registry.example.com/org/app, not of registry.example.com/org/api"
        ),
        "{resp}"
    );
}

/// A changed key file of the pin file is a changed policy: the watch reloads it, and an
/// invalid pin file keeps the policy in force.
#[test]
fn the_pin_file_and_its_keys_are_watched_with_the_policy() {
    use vouch_admission::reload::{Outcome, PolicyWatch, Trigger};

    let server = Server::start();
    let org = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let tags = [("v1", digest_of("v1"))];
    let _app = Repo::init_with_root_key(&server, &format!("{REG}/app"), &tags, same(&org));
    let dir = tempfile::tempdir().unwrap();
    let write_key = |key: &PrivateKey| {
        std::fs::write(
            dir.path().join("org-root.pub.json"),
            vouch_tuf::json::canonical(&Key::from_verifying_key(&key.verifying_key()).to_value()),
        )
        .unwrap();
    };
    write_key(&org);
    let pins =
        "[[pin]]\ngun = \"registry.example.com/org/**\"\nroot_keys = [\"org-root.pub.json\"]\n";
    std::fs::write(dir.path().join("pins.toml"), pins).unwrap();
    let policy_file = dir.path().join("policy.toml");
    std::fs::write(
        &policy_file,
        format!(
            "trust_pins = \"pins.toml\"\n[[rule]]\npattern = \"registry.example.com/**\"\naction = \"verify\"\nserver = \"{}\"\n",
            server.base
        ),
    )
    .unwrap();
    let (watch, policy) = PolicyWatch::load(&policy_file).unwrap();
    let h = Harness::for_policy(policy, tempfile::tempdir().unwrap(), |_| {});
    let image = format!("{REG}/app:v1");
    assert_eq!(decide(&h, &image)["allowed"], true);
    assert_eq!(watch.check(&h.webhook, Trigger::Poll), Outcome::Unchanged);

    // The organisation's key file now holds another key: the repository is no longer one
    // the pin admits.
    write_key(&PrivateKey::generate(Algorithm::Ed25519).unwrap());
    assert_eq!(watch.check(&h.webhook, Trigger::Poll), Outcome::Reloaded);
    let resp = decide(&h, &image);
    assert_eq!(resp["allowed"], false, "{resp}");
    assert!(message(&resp).contains("signed by 0 of the pinned root keys"));

    // A broken pin file is refused and the policy in force kept.
    std::fs::write(dir.path().join("pins.toml"), "[[pin]]\ngun = 3\n").unwrap();
    let Outcome::Kept(why) = watch.check(&h.webhook, Trigger::Poll) else {
        panic!("a broken pin file was taken")
    };
    assert!(
        why.contains("trust_pins") && why.contains("pins.toml"),
        "{why}"
    );
    // Back to the organisation's key: admitted again.
    write_key(&org);
    std::fs::write(dir.path().join("pins.toml"), pins).unwrap();
    assert_eq!(watch.check(&h.webhook, Trigger::Poll), Outcome::Reloaded);
    assert_eq!(decide(&h, &image)["allowed"], true);
}

#[test]
fn a_verify_rule_needs_a_root_or_trust_pins() {
    let dir = tempfile::tempdir().unwrap();
    let rule = "[[rule]]\npattern = \"**\"\naction = \"verify\"\nserver = \"http://127.0.0.1:1\"\n";
    let e = vouch_admission::policy::Policy::parse(rule, dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("or neither with the policy's `trust_pins`"),
        "{e}"
    );
    let e = vouch_admission::policy::Policy::parse(
        &format!("trust_pins = \"missing.toml\"\n{rule}"),
        dir.path(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("trust_pins") && e.contains("missing.toml"),
        "{e}"
    );
}
