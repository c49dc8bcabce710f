//! End-to-end: every failure exits non-zero with one line that says what to do, and a
//! refused change leaves nothing behind. Also the key commands.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{digest, Server, Vouch};

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

#[test]
fn failures_say_what_to_do() {
    let mut server = Server::start();
    let mut v = Vouch::new(&server);
    v.run(&["init", GUN]).ok();

    // Wrong passphrase, then none at all (no terminal).
    v.set("VOUCH_TARGETS_PASSPHRASE", "wrong");
    run(&v, &sign_args("v1", 1)).fails(1, &["wrong passphrase", "VOUCH_TARGETS_PASSPHRASE"]);
    v.set("VOUCH_TARGETS_PASSPHRASE", "");
    run(&v, &sign_args("v1", 1)).fails(1, &["set VOUCH_TARGETS_PASSPHRASE"]);
    v.set("VOUCH_TARGETS_PASSPHRASE", "targets secret");

    // Missing key: another trust directory does not hold the targets key.
    let elsewhere = v.elsewhere();
    run(&elsewhere, &sign_args("v1", 1)).fails(1, &["needs 1 of its keys", "vouch key import"]);

    // Unknown GUN.
    v.run(&["lookup", "registry.example.com/org/nothing:v1"])
        .fails(1, &["no trust data", "vouch init"]);

    // Malformed image references.
    v.run(&["verify", "Registry.example.com/ORG/app:v1", "--no-registry"])
        .fails(1, &["is not an image reference"]);
    v.run(&["lookup", "registry.example.com/org/app:v1:v2"])
        .fails(1, &["is not an image reference"]);
    v.run(&["init", "registry.example.com/org/app:v1"])
        .fails(1, &["drop the :TAG"]);

    // Registry down (nothing listens on the port): signing by tag says which image could
    // not be resolved; verifying says how to skip the registry.
    let closed = "127.0.0.1:9/app";
    v.run(&["sign", &format!("{closed}:v1")]).fails(
        1,
        &[
            "cannot resolve 127.0.0.1:9/app:v1",
            "cannot reach the registry",
            "--digest and --length",
        ],
    );
    v.run(&["init", closed]).ok();
    v.run(&[
        "sign",
        &format!("{closed}:v1"),
        "--digest",
        &digest(1),
        "--length",
        "7",
    ])
    .ok();
    v.run(&["verify", &format!("{closed}:v1")]).fails(
        1,
        &[
            "cannot check which digest the registry serves",
            "--no-registry",
        ],
    );
    v.run(&["verify", &format!("{closed}:v1"), "--no-registry"])
        .ok();
    // Flags that need each other.
    v.run(&["sign", &format!("{GUN}:v1"), "--digest", &digest(1)])
        .fails(1, &["--digest needs --length"]);
    let r = v.run(&["sign", &format!("{GUN}:v1"), "--registry-username", "me"]);
    assert_eq!(
        r.code, 2,
        "a user name without --registry-password-stdin: {r:#?}"
    );

    // A usage error is status 2.
    assert_eq!(v.run(&["sign"]).code, 2);

    // Server down.
    server.kill();
    run(&v, &sign_args("v1", 1)).fails(1, &["cannot reach the vouch server", "--server"]);
    v.run(&["init", "registry.example.com/org/new"])
        .fails(1, &["cannot reach the vouch server"]);
}

#[test]
fn refused_changes_leave_nothing_behind() {
    let server = Server::start();
    let mut v = Vouch::new(&server);
    v.run(&["init", GUN]).ok();
    let keys_before = v.run(&["key", "list"]).ok().to_owned();

    // The server refuses a publish without a token; the next one with a token just works.
    let token = v.token.take();
    run(&v, &sign_args("v1", 1)).fails(1, &["401", "VOUCH_TOKEN"]);
    v.token = token;
    let j = {
        let mut a = vec!["--output".to_owned(), "json".to_owned()];
        a.extend(sign_args("v2", 2));
        run(&v, &a).json()
    };
    assert_eq!(j["version"], 2, "the refused change took no version");
    v.run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .fails(3, &["not trusted"]);
    v.run(&["verify", &format!("{GUN}:v2"), "--no-registry"])
        .ok();

    // Removing a tag that is not there changes nothing.
    v.run(&["unsign", &format!("{GUN}:v1")])
        .fails(1, &["no signed target v1"]);

    // A second init of the repository is refused and makes no keys.
    v.run(&["init", GUN]).fails(1, &["already has trust data"]);
    assert_eq!(v.run(&["key", "list"]).ok(), keys_before);
    let status = v.run(&["--output", "json", "status", GUN]).json();
    assert_eq!(status["roles"][0]["version"], 1);
}

#[test]
fn keys_generate_list_export_import_passwd() {
    let server = Server::start();
    let mut v = Vouch::new(&server);
    v.set("VOUCH_CI_PASSPHRASE", "ci secret");
    let g = v
        .run(&[
            "--output",
            "json",
            "key",
            "generate",
            "--role",
            "ci",
            "--algorithm",
            "ecdsa-p256",
        ])
        .json();
    let keyid = g["keyid"].as_str().unwrap().to_owned();
    assert_eq!(g["algorithm"], "ecdsa-p256");
    let path = std::path::PathBuf::from(g["path"].as_str().unwrap());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Export to stdout is the PEM alone; import into another trust directory gives the same id.
    let pem = v.run(&["key", "export", &keyid[..10]]);
    assert!(pem
        .ok()
        .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let file = v.trust_dir.parent().unwrap().join("exported.pem");
    std::fs::write(&file, &pem.stdout).unwrap();
    let mut other = v.elsewhere();
    other.set("VOUCH_RELEASES_PASSPHRASE", "ci secret");
    let imp = other
        .run(&[
            "--output",
            "json",
            "key",
            "import",
            file.to_str().unwrap(),
            "--role",
            "releases",
        ])
        .json();
    assert_eq!(imp["keyid"], keyid);
    other.set("VOUCH_RELEASES_PASSPHRASE", "nope");
    other
        .run(&[
            "key",
            "import",
            file.to_str().unwrap(),
            "--role",
            "releases",
        ])
        .fails(1, &["wrong passphrase"]);

    // passwd: the old passphrase stops working, the new one works.
    v.set("VOUCH_CI_NEW_PASSPHRASE", "new ci secret");
    v.run(&["key", "passwd", &keyid]).ok();
    v.set("VOUCH_CI_NEW_PASSPHRASE", "");
    v.run(&["key", "passwd", &keyid])
        .fails(1, &["wrong passphrase"]);
    v.set("VOUCH_CI_PASSPHRASE", "new ci secret");
    v.set("VOUCH_CI_NEW_PASSPHRASE", "third");
    v.run(&["key", "passwd", &keyid]).ok();

    // Looser permissions are refused, with the fix.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    v.run(&["key", "list"]).fails(1, &["mode 644", "chmod 600"]);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    v.run(&["key", "list"]).ok();

    // Unknown and ambiguous ids.
    v.run(&["key", "export", "ffffffff"])
        .fails(1, &["no private key"]);
    v.run(&["key", "export", "xyz"]).fails(1, &["not a key id"]);
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let server = Server::start();
    let v = Vouch::new(&server);
    v.run(&["init", GUN]).ok();
    // The reading end is closed before vouch starts, so its first write fails with EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = v
        .command(&["key", "list"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
}
