//! End-to-end: `sign` and `verify` warn on stderr about roles they touch that expire soon,
//! naming who must act: the key holder (`vouch renew GUN --role ROLE`) for roles signed by
//! keys, the server operator for the roles the server signs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{digest, publish_files, Server, Vouch};
use vouch_tuf::crypto::Signer;
use vouch_tuf::metadata::{Metadata, Role};

const GUN: &str = "registry.example.com/org/app";

fn sign_args(tag: &str, n: u8) -> Vec<String> {
    vec![
        "sign".into(),
        format!("{GUN}:{tag}"),
        "--digest".into(),
        digest(n),
        "--length".into(),
        "7".into(),
    ]
}

fn run(v: &Vouch, args: &[String]) -> common::Run {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    v.run(&a)
}

/// The warning lines of a run's stderr.
fn warnings(r: &common::Run) -> Vec<&str> {
    r.stderr
        .lines()
        .filter(|l| l.starts_with("vouch: warning:"))
        .collect()
}

#[test]
fn sign_and_verify_warn_about_a_targets_role_that_expires_soon() {
    let server = Server::start();
    let owner = Vouch::new(&server);
    let init = owner.run(&["--output", "json", "init", GUN]).json();
    let targets_key = init["targets_key"].as_str().unwrap().to_owned();
    run(&owner, &sign_args("v1", 1)).ok();

    // A CI signer for targets/releases.
    let mut ci = owner.elsewhere();
    ci.set("VOUCH_RELEASES_PASSPHRASE", "ci secret");
    let ci_key = ci.generate_key("releases");
    let public = ci.trust_dir.parent().unwrap().join("ci.pub.json");
    std::fs::write(
        &public,
        ci.run(&["key", "export", &ci_key[..8], "--public"]).ok(),
    )
    .unwrap();
    owner
        .run(&[
            "delegation",
            "add",
            GUN,
            "releases",
            "--key",
            public.to_str().unwrap(),
            "--paths",
            "v*",
        ])
        .ok();

    // Nothing expires soon: no warnings.
    let r = owner.run(&["verify", &format!("{GUN}:v1"), "--no-registry"]);
    r.ok();
    assert!(warnings(&r).is_empty(), "{r:#?}");

    // targets, re-signed by its key holder to expire in ten and a half days.
    let mut targets = common::current_targets(&server, GUN, "targets");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    targets.set_expires(vouch_tuf::time::Timestamp::from_unix(
        now + 10 * 86_400 + 43_200,
    ));
    targets.bump_version();
    let key = owner.private_key(&targets_key, b"targets secret");
    let bytes = Metadata::signed_by(targets, &[&key as &dyn Signer])
        .unwrap()
        .to_bytes();
    let (status, body) = publish_files(&server, GUN, &[("targets", bytes)]);
    assert_eq!(status, 200, "{body}");

    let advice = format!("`vouch renew {GUN} --role targets`");
    let expiring = format!("targets of {GUN} expires in 10 days");
    // verify names the role, when, and the command its key holder runs.
    let r = owner.run(&["verify", &format!("{GUN}:v1"), "--no-registry"]);
    r.ok();
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{r:#?}");
    assert!(w[0].contains(&expiring) && w[0].contains(&advice), "{r:#?}");

    // A delegated signer's sign goes through targets, which it does not renew: warned.
    let mut with_role = sign_args("v2", 2);
    with_role.extend(["--role".to_owned(), "releases".to_owned()]);
    let r = run(&ci, &with_role);
    r.ok();
    let w = warnings(&r);
    assert!(
        w.iter()
            .any(|l| l.contains(&expiring) && l.contains(&advice)),
        "{r:#?}"
    );

    // Signing into targets renews it: no warning, then or after.
    let r = run(&owner, &sign_args("v3", 3));
    r.ok();
    assert!(warnings(&r).is_empty(), "{r:#?}");
    let r = ci.run(&["verify", &format!("{GUN}:v2"), "--no-registry"]);
    r.ok();
    assert!(warnings(&r).is_empty(), "{r:#?}");
}

#[test]
fn verify_warns_the_server_operator_about_a_timestamp_about_to_run_out() {
    // The server signs timestamps that live 30 minutes: always within the hour.
    let server = Server::start_with_env(&[("VOUCH_TIMESTAMP_LIFETIME_SECONDS", Path::new("1800"))]);
    let owner = Vouch::new(&server);
    owner.run(&["init", GUN]).ok();
    run(&owner, &sign_args("v1", 1)).ok();
    let r = owner.run(&["verify", &format!("{GUN}:v1"), "--no-registry"]);
    r.ok();
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{r:#?}");
    assert!(
        w[0].contains(&format!("timestamp of {GUN} expires in"))
            && w[0].contains("minutes")
            && w[0].contains("online timestamp key")
            && w[0].contains("tell the server operator"),
        "{r:#?}"
    );
}
