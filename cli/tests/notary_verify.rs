//! End-to-end `vouch verify --notary`: images checked against a real notary-server in the
//! notary dialect, from the root the real notary client trusts. A tag resolves to what
//! `notary lookup` printed (and, signed by both `targets` and `targets/releases`, to the
//! release as `docker trust` resolves it); a digest pin is checked against the signed digest;
//! a tag re-pointed in notary's database without the key is refused; a timestamp rolled back
//! on the server after a run is refused on the next, by `verify --notary` and by `import
//! notary` alike (they keep one state); a missing notary root is an error saying where one
//! comes from.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::{Server, Vouch};
use serde_json::Value;
use vouch_testkit::notary::{hex_digest, DelegationKey, NotaryClient, NotaryServer, PASSPHRASES};

const APP: &str = "example.com/org/app";

/// A notary server and a client with the collection `APP`: v1 and v2 in targets; v3, and
/// v1 again with another digest, in `targets/releases`.
struct Notary {
    tmp: tempfile::TempDir,
    server: NotaryServer,
    client: NotaryClient,
}

impl Notary {
    fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let server = NotaryServer::start(&tmp.path().join("notary-server"));
        let client = NotaryClient::new(&server, tmp.path().join("notary-trust"));
        client.init(APP);
        client.addhash(APP, "v1", 101, &hex_digest('1'), None);
        client.addhash(APP, "v2", 102, &hex_digest('2'), None);
        client.publish(APP);
        let delegation = DelegationKey::create(tmp.path(), "releases");
        client.delegation_add(APP, "targets/releases", &delegation.cert);
        client.key_import(&delegation.key, "targets/releases");
        client.publish(APP);
        client.addhash(APP, "v3", 103, &hex_digest('3'), Some("targets/releases"));
        client.addhash(APP, "v1", 111, &hex_digest('f'), Some("targets/releases"));
        client.publish(APP);
        Notary {
            tmp,
            server,
            client,
        }
    }

    fn trust_dir(&self) -> PathBuf {
        self.client.trust_dir().to_owned()
    }
}

/// A vouch CLI trusting the notary server's CA.
fn vouch(server: &Server, notary: &Notary) -> Vouch {
    let mut v = Vouch::new(server);
    v.set("SSL_CERT_FILE", notary.server.ca_cert().to_str().unwrap());
    for (k, val) in PASSPHRASES {
        v.set(k, val);
    }
    v
}

/// `vouch --output json verify IMAGE --notary URL --notary-trust-dir DIR --no-registry`.
fn verify(v: &Vouch, notary: &Notary, image: &str) -> common::Run {
    let trust = notary.trust_dir();
    v.run(&[
        "--output",
        "json",
        "verify",
        image,
        "--notary",
        notary.server.url(),
        "--notary-trust-dir",
        trust.to_str().unwrap(),
        "--no-registry",
    ])
}

fn trusted(v: &Vouch, notary: &Notary, image: &str) -> Value {
    let run = verify(v, notary, image);
    assert_eq!(run.code, 0, "{run:#?}");
    let out = run.json();
    assert_eq!(out["trusted"], true, "{out:#}");
    out
}

/// Asserts that `image` is not trusted (exit 3, JSON saying why) and returns the reason.
fn refused(v: &Vouch, notary: &Notary, image: &str) -> String {
    let run = verify(v, notary, image);
    assert_eq!(run.code, 3, "{run:#?}");
    let out = run.json();
    assert_eq!(out["trusted"], false, "{out:#}");
    out["reason"].as_str().unwrap().to_owned()
}

#[test]
fn tags_resolve_as_notary_prints_them_and_pins_are_checked() {
    let notary = Notary::start();
    let server = Server::start();
    let v = vouch(&server, &notary);

    for (tag, role_path) in [
        ("v2", vec!["targets"]),
        ("v3", vec!["targets", "targets/releases"]),
    ] {
        let printed = notary.client.lookup(APP, tag);
        let out = trusted(&v, &notary, &format!("{APP}:{tag}"));
        assert_eq!(out["digest"], printed.digest.as_str(), "{tag}: {out:#}");
        assert_eq!(
            out["pinned"],
            format!("{APP}@{}", printed.digest).as_str(),
            "{out:#}"
        );
        assert_eq!(out["role_path"], serde_json::json!(role_path), "{out:#}");
    }

    // Signed by both: the release, as `docker trust` resolves it.
    let v1 = trusted(&v, &notary, &format!("{APP}:v1"));
    assert_eq!(
        v1["digest"],
        format!("sha256:{}", hex_digest('f')).as_str(),
        "{v1:#}"
    );
    assert_eq!(
        v1["role_path"],
        serde_json::json!(["targets", "targets/releases"])
    );
    // Requiring the release role: a tag only targets signs is not trusted.
    let run = v.run(&[
        "verify",
        &format!("{APP}:v2"),
        "--notary",
        notary.server.url(),
        "--notary-trust-dir",
        notary.trust_dir().to_str().unwrap(),
        "--no-registry",
        "--require-role",
        "releases",
    ]);
    run.fails(3, &["tag v2", "not signed by targets/releases"]);

    // Text output: the image pinned to its digest.
    let text = v.run(&[
        "verify",
        &format!("{APP}:v2"),
        "--notary",
        notary.server.url(),
        "--notary-trust-dir",
        notary.trust_dir().to_str().unwrap(),
        "--no-registry",
    ]);
    assert_eq!(
        text.ok().trim(),
        format!("{APP}@sha256:{}", hex_digest('2'))
    );

    // Pinned by digest: checked against the signed one.
    let good = trusted(&v, &notary, &format!("{APP}:v2@sha256:{}", hex_digest('2')));
    assert_eq!(
        good["digest"],
        format!("sha256:{}", hex_digest('2')).as_str()
    );
    let reason = refused(&v, &notary, &format!("{APP}:v2@sha256:{}", hex_digest('9')));
    assert!(reason.contains("is signed for sha256:2222"), "{reason}");
    let bare = trusted(&v, &notary, &format!("{APP}@sha256:{}", hex_digest('3')));
    assert_eq!(
        bare["role_path"],
        serde_json::json!(["targets", "targets/releases"])
    );
    let reason = refused(&v, &notary, &format!("{APP}@sha256:{}", hex_digest('9')));
    assert!(
        reason.contains("is not signed in the notary collection"),
        "{reason}"
    );
    let reason = refused(&v, &notary, &format!("{APP}:v9"));
    assert!(reason.contains("tag v9"), "{reason}");
    // No tag: `latest`, as a pull would take, which nobody signed.
    let reason = refused(&v, &notary, APP);
    assert!(reason.contains("tag latest"), "{reason}");
}

#[test]
fn a_tag_re_pointed_in_notarys_database_is_refused() {
    let mut notary = Notary::start();
    let server = Server::start();
    let v = vouch(&server, &notary);
    trusted(&v, &notary, &format!("{APP}:v2"));

    // v2's digest changed in the stored targets file, by someone without the targets key.
    notary
        .server
        .tamper_hash(APP, "targets", &hex_digest('2'), &hex_digest('e'));
    let reason = refused(&v, &notary, &format!("{APP}:v2"));
    assert!(reason.contains("failed verification"), "{reason}");
    // Also with a trust directory that never saw the collection.
    let fresh = vouch(&server, &notary);
    let reason = refused(&fresh, &notary, &format!("{APP}:v2"));
    assert!(reason.contains("failed verification"), "{reason}");
}

#[test]
fn a_timestamp_rolled_back_after_a_run_is_refused_by_verify_and_import() {
    let mut notary = Notary::start();
    let server = Server::start();
    let v = vouch(&server, &notary);
    trusted(&v, &notary, &format!("{APP}:v2"));
    let version = |role: &str| -> u64 {
        notary
            .server
            .psql(&format!(
                "SELECT max(version) FROM tuf_files WHERE gun = '{APP}' AND role = '{role}'"
            ))
            .trim()
            .parse()
            .unwrap()
    };
    let (old_timestamp, old_snapshot) = (version("timestamp"), version("snapshot"));

    // A newer version, seen once.
    notary
        .client
        .addhash(APP, "v4", 104, &hex_digest('4'), None);
    notary.client.publish(APP);
    assert!(version("timestamp") > old_timestamp);
    trusted(&v, &notary, &format!("{APP}:v4"));

    // The server goes back to the older timestamp and snapshot (the newer rows gone).
    notary.server.psql(&format!(
        "DELETE FROM tuf_files WHERE gun = '{APP}' AND ((role = 'timestamp' AND version > {old_timestamp}) OR (role = 'snapshot' AND version > {old_snapshot}))"
    ));
    notary.server.restart();
    // What the server now serves is the old collection, signed as it was: a client without
    // the kept state accepts it (v4 is unknown there), so only the state catches the rollback.
    let fresh = vouch(&server, &notary);
    let reason = refused(&fresh, &notary, &format!("{APP}:v4"));
    assert!(reason.contains("tag v4"), "{reason}");
    let reason = refused(&v, &notary, &format!("{APP}:v2"));
    assert!(reason.contains("rollback attempt"), "{reason}");
    assert!(reason.contains("timestamp"), "{reason}");

    // `import notary` starts from the same state, and refuses too.
    let run = v.run(&[
        "import",
        "notary",
        APP,
        "--notary-server",
        notary.server.url(),
        "--notary-trust-dir",
        notary.trust_dir().to_str().unwrap(),
    ]);
    run.fails(1, &["does not verify", "rollback attempt"]);
}

#[test]
fn without_a_notary_root_to_start_from_verify_says_where_one_comes_from() {
    let notary = Notary::start();
    let server = Server::start();
    let v = vouch(&server, &notary);
    let empty = notary.tmp.path().join("empty-trust");
    std::fs::create_dir_all(&empty).unwrap();
    let image = format!("{APP}:v2");
    let base = [
        "verify",
        image.as_str(),
        "--notary",
        notary.server.url(),
        "--no-registry",
    ];

    let mut args = base.to_vec();
    args.extend(["--notary-trust-dir", empty.to_str().unwrap()]);
    v.run(&args).fails(
        1,
        &[
            "no trusted notary root for example.com/org/app",
            "--notary-root",
        ],
    );

    let missing = notary.tmp.path().join("missing-root.json");
    let mut args = base.to_vec();
    args.extend([
        "--notary-trust-dir",
        empty.to_str().unwrap(),
        "--notary-root",
        missing.to_str().unwrap(),
    ]);
    v.run(&args)
        .fails(1, &["--notary-root", "missing-root.json"]);

    // The notary client's root given as --notary-root works, with no trust directory.
    let root = notary
        .trust_dir()
        .join("tuf")
        .join(APP)
        .join("metadata")
        .join("root.json");
    let mut args = base.to_vec();
    args.extend([
        "--notary-trust-dir",
        empty.to_str().unwrap(),
        "--notary-root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(
        v.run(&args).ok().trim(),
        format!("{APP}@sha256:{}", hex_digest('2'))
    );
}

/// A password written into the notary URL (`https://USER:PASSWORD@HOST`) would be sent as
/// it stands and printed in every message naming the server: refused up front, without
/// repeating it, pointing at `NOTARY_AUTH`.
#[test]
fn a_notary_url_carrying_credentials_is_refused_without_repeating_them() {
    let server = Server::start();
    let v = Vouch::new(&server);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../verifier/tests/fixtures/notary/trust/tuf/example.com/fixtures/app/metadata/root.json",
    );
    for url in [
        "https://alice:s3cret@127.0.0.1:9",
        "https://s3cret@127.0.0.1:9",
    ] {
        let run = v.run(&[
            "verify",
            "example.com/fixtures/app:v1",
            "--notary",
            url,
            "--notary-root",
            root.to_str().unwrap(),
            "--no-registry",
        ]);
        let line = run.fails(1, &["credentials", "NOTARY_AUTH"]);
        assert!(!line.contains("s3cret"), "{line}");
        assert!(!run.stdout.contains("s3cret"), "{run:#?}");
    }
}
