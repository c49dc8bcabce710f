//! End-to-end: the root holder delegates `releases` (paths `v*`) to a CI key; CI signs with
//! only its key; tags outside the delegated paths are refused without leaving anything
//! behind; the CI key is rotated and the old key can no longer sign (metadata it signs is
//! refused by the server, and clients keep the new key's answer); the whole delegation is
//! removed and clients that saw it keep verifying the rest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{digest, Server, Vouch};

const GUN: &str = "registry.example.com/org/app";

#[test]
fn delegate_to_ci_sign_refuse_rotate() {
    let server = Server::start();
    let owner = Vouch::new(&server);
    owner.run(&["init", GUN]).ok();

    // CI makes its key on its own machine and hands over only the public half.
    let (ci, old) = delegate_to_new_holder(
        &owner,
        "releases",
        "ci secret",
        &["--algorithm", "ecdsa-p256"],
        "v*",
    );
    let list = owner
        .run(&["--output", "json", "delegation", "list", GUN])
        .json();
    assert_eq!(list["delegations"][0]["role"], "targets/releases");
    assert_eq!(list["delegations"][0]["paths"], serde_json::json!(["v*"]));
    assert_eq!(list["delegations"][0]["keyids"], serde_json::json!([old]));

    // CI signs v2 with only its key.
    let d2 = digest(2);
    let signed = ci
        .run(&[
            "--output",
            "json",
            "sign",
            &format!("{GUN}:v2"),
            "--digest",
            &d2,
            "--length",
            "3",
            "--role",
            "releases",
        ])
        .json();
    assert_eq!(signed["role"], "targets/releases");
    assert_eq!(signed["version"], 1);
    let v = owner
        .run(&[
            "--output",
            "json",
            "verify",
            &format!("{GUN}:v2"),
            "--no-registry",
        ])
        .json();
    assert_eq!(v["pinned"], format!("{GUN}@{d2}"));
    assert_eq!(
        v["role_path"],
        serde_json::json!(["targets", "targets/releases"])
    );
    // The digest alone names the role path that vouched for it, as the tag does.
    let v = owner
        .run(&[
            "--output",
            "json",
            "verify",
            &format!("{GUN}@{d2}"),
            "--no-registry",
        ])
        .json();
    assert_eq!(v["pinned"], format!("{GUN}@{d2}"));
    assert_eq!(
        v["role_path"],
        serde_json::json!(["targets", "targets/releases"])
    );
    assert_eq!(
        v["role_paths"],
        serde_json::json!([["targets", "targets/releases"]])
    );
    owner
        .run(&[
            "verify",
            &format!("{GUN}:v2"),
            "--no-registry",
            "--require-role",
            "releases",
        ])
        .ok();
    let status = owner.run(&["--output", "json", "status", GUN]).json();
    let releases = &status["roles"][4];
    assert_eq!(releases["role"], "targets/releases");
    assert_eq!(releases["version"], 1);
    assert_eq!(releases["keyids"], serde_json::json!([old]));
    assert_eq!(
        releases["local_keys"], 0,
        "the owner does not hold the CI key"
    );
    let listed = owner.run(&["--output", "json", "list", GUN]).json();
    assert_eq!(listed["targets"][0]["name"], "v2");
    assert_eq!(listed["targets"][0]["role"], "targets/releases");

    owner
        .run(&[
            "sign",
            &format!("{GUN}:v9"),
            "--digest",
            &d2,
            "--length",
            "3",
        ])
        .ok();
    owner
        .run(&[
            "verify",
            &format!("{GUN}:v9"),
            "--no-registry",
            "--require-role",
            "releases",
        ])
        .fails(
            3,
            &["signed through targets, not through the delegation path targets -> targets/releases"],
        );
    // Now two targets carry d2, signed through two paths: the digest names both, in the
    // order the roles are reached.
    let v = owner
        .run(&[
            "--output",
            "json",
            "verify",
            &format!("{GUN}@{d2}"),
            "--no-registry",
        ])
        .json();
    assert_eq!(v["role_path"], serde_json::json!(["targets"]));
    assert_eq!(
        v["role_paths"],
        serde_json::json!([["targets"], ["targets", "targets/releases"]])
    );

    // Outside the delegated paths: refused, and the next valid sign just works.
    ci.run(&[
        "sign",
        &format!("{GUN}:latest"),
        "--digest",
        &d2,
        "--length",
        "3",
        "--role",
        "releases",
    ])
    .fails(
        1,
        &[
            "latest is outside the targets delegated to targets/releases",
            "v*",
        ],
    );
    // The CI key cannot sign targets itself.
    ci.run(&[
        "sign",
        &format!("{GUN}:latest"),
        "--digest",
        &d2,
        "--length",
        "3",
    ])
    .fails(1, &["holds no targets key", "sign with --role releases"]);
    let d3 = digest(3);
    let next = ci
        .run(&[
            "--output",
            "json",
            "sign",
            &format!("{GUN}:v3"),
            "--digest",
            &d3,
            "--length",
            "3",
            "--role",
            "releases",
        ])
        .json();
    assert_eq!(next["version"], 2);

    // Rotate the CI key: the owner adds the new key; the new key's holder re-signs the
    // role (content carried over, verified); then the owner removes the old key.
    let ci2 = ci.elsewhere();
    let new = ci2.generate_key("releases");
    let new_pub = owner.trust_dir.parent().unwrap().join("ci-new.pub.json");
    std::fs::write(&new_pub, ci2.run(&["key", "export", &new, "--public"]).ok()).unwrap();
    owner
        .run(&[
            "delegation",
            "add",
            GUN,
            "releases",
            "--key",
            new_pub.to_str().unwrap(),
        ])
        .ok();
    // Removing the old key first is refused by the server: the role would stop verifying.
    owner
        .run(&["delegation", "remove", GUN, "releases", "--key", &old[..12]])
        .fails(1, &["signed only by keys being removed", "vouch renew"]);
    let renewed = ci2
        .run(&["--output", "json", "renew", GUN, "--role", "releases"])
        .json();
    assert_eq!(renewed["renewed"][0]["role"], "targets/releases");
    assert_eq!(renewed["renewed"][0]["version"], 3);
    owner
        .run(&["delegation", "remove", GUN, "releases", "--key", &old[..12]])
        .ok();
    let list = owner
        .run(&["--output", "json", "delegation", "list", GUN])
        .json();
    assert_eq!(list["delegations"][0]["keyids"], serde_json::json!([new]));

    // The old key can no longer sign; what the role lists still verifies, now under the new
    // key; the new key signs more.
    ci.run(&[
        "sign",
        &format!("{GUN}:v4"),
        "--digest",
        &d3,
        "--length",
        "3",
        "--role",
        "releases",
    ])
    .fails(1, &["signing targets/releases needs 1 of its keys"]);
    let out = owner.run(&["verify", &format!("{GUN}:v2"), "--no-registry"]);
    assert_eq!(out.ok().trim(), format!("{GUN}@{d2}"));
    // The old key's holder goes around the CLI: releases metadata pointing v2 elsewhere,
    // signed by the old key, published straight to the server with a push token. It is
    // refused, and every client keeps getting the digest the new key signed.
    let (status, body) = publish_signed_by_old_key(&server, &ci, &old, &digest(66));
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains(r#""check":"signature","role":"targets/releases""#),
        "{body}"
    );
    for client in [&owner, &ci, &ci2] {
        let out = client.run(&["verify", &format!("{GUN}:v2"), "--no-registry"]);
        assert_eq!(out.ok().trim(), format!("{GUN}@{d2}"));
    }
    ci2.run(&[
        "sign",
        &format!("{GUN}:v4"),
        "--digest",
        &d3,
        "--length",
        "3",
        "--role",
        "releases",
    ])
    .ok();
    let out = owner.run(&["verify", &format!("{GUN}:v4"), "--no-registry"]);
    assert_eq!(out.ok().trim(), format!("{GUN}@{d3}"));

    // Removing the whole delegation: what the role signed stops verifying, everything else
    // still verifies, for every client that saw the role (the snapshot keeps listing it).
    let removed = owner
        .run(&["--output", "json", "delegation", "remove", GUN, "releases"])
        .json();
    assert_eq!(removed["role"], "targets/releases");
    for client in [&owner, &ci2] {
        client
            .run(&["verify", &format!("{GUN}:v4"), "--no-registry"])
            .fails(3, &["not trusted", "v4"]);
        let out = client.run(&["verify", &format!("{GUN}:v9"), "--no-registry"]);
        assert_eq!(out.ok().trim(), format!("{GUN}@{d2}"));
    }
    let list = owner
        .run(&["--output", "json", "delegation", "list", GUN])
        .json();
    assert_eq!(list["delegations"], serde_json::json!([]));
    let listed = owner.run(&["--output", "json", "list", GUN]).json();
    let names: Vec<&str> = listed["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["v9"]);
    owner.run(&["status", GUN]).ok();
    // The new key can no longer sign through the role.
    ci2.run(&[
        "sign",
        &format!("{GUN}:v5"),
        "--digest",
        &d3,
        "--length",
        "3",
        "--role",
        "releases",
    ])
    .fails(1, &["does not delegate targets/releases"]);
    // The old name cannot come back with other keys (its last metadata is still listed);
    // another name can.
    owner
        .run(&[
            "delegation",
            "add",
            GUN,
            "releases",
            "--key",
            new_pub.to_str().unwrap(),
            "--paths",
            "v*",
        ])
        .fails(1, &["delegate under another name"]);
    owner
        .run(&[
            "delegation",
            "add",
            GUN,
            "ci",
            "--key",
            new_pub.to_str().unwrap(),
            "--paths",
            "v*",
        ])
        .ok();
    ci2.run(&[
        "sign",
        &format!("{GUN}:v5"),
        "--digest",
        &d3,
        "--length",
        "3",
        "--role",
        "ci",
    ])
    .ok();
    let out = owner.run(&["verify", &format!("{GUN}:v5"), "--no-registry"]);
    assert_eq!(out.ok().trim(), format!("{GUN}@{d3}"));
}

/// Signs the server's current `targets/releases` with `v2` pointing at `evil`, one version
/// up, with the (removed) key `keyid` of `holder`'s trust directory, and publishes it with
/// the admin token, as a client with the old key but no CLI checks would. Returns the
/// server's status and body.
fn publish_signed_by_old_key(
    server: &Server,
    holder: &Vouch,
    keyid: &str,
    evil: &str,
) -> (u16, String) {
    let key = holder.private_key(keyid, b"ci secret");
    common::publish_forged(server, GUN, "targets/releases", "v2", evil, &key)
}

/// The holder of `targets/dev` names a role of its own `targets/releases` and signs a tag
/// with it: `--require-role releases` must not accept that, since `targets` did not delegate
/// it. The requirement names the delegation path from `targets`, not a role name.
#[test]
fn require_role_names_the_delegation_path_not_a_role_name() {
    use vouch_tuf::crypto::Signer;
    use vouch_tuf::metadata::{
        DelegatedRole, Delegations, Key, Metadata, Role, TargetFile, Targets,
    };
    use vouch_tuf::types::{RoleName, TargetName};

    let server = Server::start();
    let owner = Vouch::new(&server);
    owner.run(&["init", GUN]).ok();
    let (dev, keyid) = delegate_to_new_holder(&owner, "dev", "dev secret", &[], "*");
    let d1 = digest(1);
    dev.run(&[
        "sign",
        &format!("{GUN}:v1"),
        "--digest",
        &d1,
        "--length",
        "3",
        "--role",
        "dev",
    ])
    .ok();

    // By hand, with only the dev key: targets/dev delegates to a role it names
    // targets/releases, which signs v2.
    let key = dev.private_key(&keyid, b"dev secret");
    let mut dev_role = common::current_targets(&server, GUN, "targets/dev");
    let k = Key::from_verifying_key(&key.verifying_key());
    dev_role.delegations = Some(Delegations {
        keys: [(k.key_id(), k.clone())].into_iter().collect(),
        roles: vec![DelegatedRole::with_paths(
            RoleName::new("targets/releases").unwrap(),
            vec![k.key_id()],
            vec!["*".into()],
        )],
        extra: Default::default(),
    });
    dev_role.bump_version();
    let mut fake = Targets::new(dev_role.common.expires);
    let d2 = digest(2);
    fake.add_target(
        TargetName::new("v2").unwrap(),
        TargetFile::image(&vouch_tuf::reference::Digest::parse(&d2).unwrap(), 3, None),
    );
    let sign = |t: Targets| {
        Metadata::signed_by(t, &[&key as &dyn Signer])
            .unwrap()
            .to_bytes()
    };
    let (status, body) = common::publish_files(
        &server,
        GUN,
        &[
            ("targets/dev", sign(dev_role)),
            ("targets/releases", sign(fake)),
        ],
    );
    assert_eq!(status, 200, "{body}");

    // Trusted as such (dev may delegate), with the path it came through …
    let v = owner
        .run(&[
            "--output",
            "json",
            "verify",
            &format!("{GUN}:v2"),
            "--no-registry",
        ])
        .json();
    assert_eq!(
        v["role_path"],
        serde_json::json!(["targets", "targets/dev", "targets/releases"])
    );
    // … but not as a release.
    owner
        .run(&[
            "verify",
            &format!("{GUN}:v2"),
            "--no-registry",
            "--require-role",
            "releases",
        ])
        .fails(
            3,
            &["not through the delegation path targets -> targets/releases"],
        );
    owner
        .run(&[
            "verify",
            &format!("{GUN}:v1"),
            "--no-registry",
            "--require-role",
            "dev",
        ])
        .ok();
    owner
        .run(&[
            "verify",
            &format!("{GUN}:v2"),
            "--no-registry",
            "--require-role",
            "dev",
        ])
        .ok();
}

/// A key holder on another machine makes a key for `role` (passphrase `passphrase`, extra
/// `key generate` arguments `generate`) and hands over the public half; the owner delegates
/// `role` to it for `paths`. Returns the holder and the key id.
fn delegate_to_new_holder(
    owner: &Vouch,
    role: &str,
    passphrase: &str,
    generate: &[&str],
    paths: &str,
) -> (Vouch, String) {
    let mut holder = owner.elsewhere();
    holder.set("VOUCH_TARGETS_PASSPHRASE", "");
    holder.set("VOUCH_ROOT_PASSPHRASE", "");
    holder.set(
        &format!("VOUCH_{}_PASSPHRASE", role.to_ascii_uppercase()),
        passphrase,
    );
    let mut args = vec!["--output", "json", "key", "generate", "--role", role];
    args.extend_from_slice(generate);
    let keyid = holder.run(&args).json()["keyid"]
        .as_str()
        .unwrap()
        .to_owned();
    let public = holder.run(&["key", "export", &keyid, "--public"]);
    let pub_file = owner
        .trust_dir
        .parent()
        .unwrap()
        .join(format!("{role}-{keyid}.pub.json"));
    std::fs::write(&pub_file, public.ok()).unwrap();
    owner
        .run(&[
            "delegation",
            "add",
            GUN,
            role,
            "--key",
            pub_file.to_str().unwrap(),
            "--paths",
            paths,
        ])
        .ok();
    (holder, keyid)
}
