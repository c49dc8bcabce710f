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

/// The lowercase hex SHA-256 of `token`, as a server's `[[auth.tokens]]` names it.
fn token_sha256(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn token_and_server_url_problems_say_what_to_do() {
    let pull_only = "a-token-that-may-pull";
    let server = Server::start_with_config(&format!(
        "[[auth.tokens]]\nname = \"reader\"\nsha256 = \"{}\"\nscopes = [\"registry.example.com/org/*:pull\"]\n",
        token_sha256(pull_only)
    ));
    let v = Vouch::new(&server);
    v.run(&["init", GUN]).ok();
    run(&v, &sign_args("v1", 1)).ok();

    // A server given without a scheme.
    v.run(&["--server", "vouch.example:4443", "list", GUN])
        .fails(
            1,
            &[
                "no scheme",
                "add https://",
                "--server https://vouch.example:4443",
            ],
        );

    // A token the server does not know, on a machine that trusts the repository already (the
    // refresh) and on one that sees it for the first time (the root fetched on first use).
    let mut first_use = v.elsewhere();
    first_use.token = Some("expired-or-revoked".into());
    let r = first_use.run(&["list", GUN]);
    let line = r.fails(
        1,
        &[
            "the server refused the token (HTTP 401)",
            "expired or revoked",
            "set VOUCH_TOKEN or --token-file",
        ],
    );
    assert!(!line.contains("HTTP status 401"), "{line}");
    let mut stale = v.elsewhere();
    stale.trust_dir = v.trust_dir.clone();
    stale.token = Some("expired-or-revoked".into());
    stale.run(&["list", GUN]).fails(
        1,
        &[
            "cannot update the trust data",
            "the server refused the token (HTTP 401)",
            "expired or revoked",
        ],
    );

    // A token that may pull but not push: reading works, signing says what the token lacks.
    let mut reader = v.elsewhere();
    reader.trust_dir = v.trust_dir.clone();
    reader.token = Some(pull_only.into());
    reader.run(&["list", GUN]).ok();
    run(&reader, &sign_args("v2", 2)).fails(
        1,
        &[
            "the token does not grant push on registry.example.com/org/app",
            "HTTP 403",
        ],
    );
    // No token at all, where one is needed to push.
    let mut anonymous = reader.elsewhere();
    anonymous.trust_dir = v.trust_dir.clone();
    anonymous.token = None;
    run(&anonymous, &sign_args("v2", 2)).fails(
        1,
        &["asks for a token (HTTP 401)", "VOUCH_TOKEN or --token-file"],
    );
}

#[test]
fn a_silent_server_is_reported_after_the_timeout() {
    // Accepts connections (the kernel completes them) and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}", listener.local_addr().unwrap());
    let server = Server::start();
    let v = Vouch::new(&server);
    let no_answer = format!("no answer from {silent} within 1 s");
    v.run(&["--server", &silent, "--timeout", "1", "list", GUN])
        .fails(1, &[&no_answer, "--timeout or VOUCH_TIMEOUT"]);
    v.run_env(
        &["--server", &silent, "lookup", &format!("{GUN}:v1")],
        &[("VOUCH_TIMEOUT", "1")],
    )
    .fails(1, &[&no_answer]);
    let r = v.run(&["--timeout", "0", "list", GUN]);
    assert_eq!(r.code, 2, "--timeout 0 is a usage error: {r:#?}");
    assert!(r.stderr.contains("--timeout"), "{r:#?}");
    drop(listener);
}

#[test]
fn verifying_a_repository_that_was_never_initialised_is_not_trusted() {
    let server = Server::start();
    let v = Vouch::new(&server);
    let never = "registry.example.com/org/never:v1";
    v.run(&["verify", never, "--no-registry"]).fails(
        3,
        &[
            "not trusted",
            "registry.example.com/org/never has no trust data",
            "vouch init registry.example.com/org/never",
        ],
    );
    let r = v.run(&["--output", "json", "verify", never, "--no-registry"]);
    assert_eq!(r.code, 3, "{r:#?}");
    assert_eq!(r.json()["trusted"], false);
    // A server that cannot be reached is still an error (status 1), not a verdict.
    let mut down = v.elsewhere();
    down.server = "http://127.0.0.1:9".into();
    down.run(&["verify", never, "--no-registry"])
        .fails(1, &["cannot reach the vouch server"]);
}

#[test]
fn passphrase_and_key_problems_say_what_to_do() {
    let server = Server::start();
    let mut v = Vouch::new(&server);
    let init = v.run(&["--output", "json", "init", GUN]).json();
    let targets_key = init["targets_key"].as_str().unwrap().to_owned();

    // A variable set to nothing is reported as empty, not as unset.
    let line = v
        .run_env(
            &sign_args("v1", 1)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            &[("VOUCH_TARGETS_PASSPHRASE", "")],
        )
        .fails(1, &["VOUCH_TARGETS_PASSPHRASE is set but empty"])
        .to_owned();
    assert!(
        !line.contains("set VOUCH_TARGETS_PASSPHRASE or run"),
        "{line}"
    );

    // A per-key variable: used before the role's, and named when its passphrase is wrong.
    let per_key = format!("VOUCH_PASSPHRASE_{}", targets_key[..8].to_ascii_uppercase());
    v.set("VOUCH_TARGETS_PASSPHRASE", "");
    v.run_env(
        &sign_args("v1", 1)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[(per_key.as_str(), "targets secret")],
    )
    .ok();
    v.set("VOUCH_TARGETS_PASSPHRASE", "targets secret");
    v.run_env(
        &sign_args("v2", 2)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[(per_key.as_str(), "wrong")],
    )
    .fails(1, &["wrong passphrase", &per_key]);
    v.set("VOUCH_TARGETS_PASSPHRASE", "");
    run(&v, &sign_args("v2", 2)).fails(1, &[&per_key, "VOUCH_TARGETS_PASSPHRASE"]);
    v.set("VOUCH_TARGETS_PASSPHRASE", "targets secret");

    // A delegated signer who forgot --role is told which role its keys are for.
    let mut ci = v.elsewhere();
    ci.set("VOUCH_RELEASES_PASSPHRASE", "ci secret");
    let g = ci
        .run(&["--output", "json", "key", "generate", "--role", "releases"])
        .json();
    let ci_key = g["keyid"].as_str().unwrap().to_owned();
    let public = ci.trust_dir.parent().unwrap().join("ci.pub.json");
    let exported = ci
        .run(&[
            "key",
            "export",
            &ci_key[..8],
            "--public",
            "-o",
            public.to_str().unwrap(),
        ])
        .ok()
        .to_owned();
    // `key export -o FILE` names FILE.
    assert!(
        exported.contains(&format!("to {}", public.display())),
        "{exported}"
    );
    v.run(&[
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
    run(&ci, &sign_args("v3", 3)).fails(
        1,
        &[
            "holds no targets key of registry.example.com/org/app",
            "delegated role targets/releases",
            "sign with --role releases",
        ],
    );
    let mut with_role = sign_args("v3", 3);
    with_role.extend(["--role".to_owned(), "releases".to_owned()]);
    run(&ci, &with_role).ok();

    // A private-key directory others may read is refused, with the fix.
    let private = v.trust_dir.join("private");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o755)).unwrap();
    v.run(&["key", "list"]).fails(1, &["mode 755", "chmod 700"]);
    run(&v, &sign_args("v4", 4)).fails(1, &["mode 755", "chmod 700"]);
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    run(&v, &sign_args("v4", 4)).ok();

    // `key export -o FILE` in JSON names the file too.
    let backup = v.trust_dir.parent().unwrap().join("targets-backup.pem");
    let j = v
        .run(&[
            "--output",
            "json",
            "key",
            "export",
            &targets_key[..8],
            "-o",
            backup.to_str().unwrap(),
        ])
        .json();
    assert_eq!(j["file"], backup.display().to_string());
    assert!(std::fs::read_to_string(&backup)
        .unwrap()
        .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
}
