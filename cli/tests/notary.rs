//! End-to-end migration off Notary v1: a real notary-server and the real notary client make
//! collections (tags, a `targets/releases` delegation signed by its own key); `vouch import
//! notary` verifies each against the root the notary client trusts and signs its tags into a
//! real vouch-server, with the notary keys or with new ones; `vouch verify` and python-tuf's
//! Updater then resolve every tag to the digest `notary lookup` printed. A second import
//! changes only what changed on the notary side. Refusals change nothing on the vouch server:
//! a wrong passphrase, a root that does not chain to the pinned one, data changed in notary's
//! database after signing, an expired collection without `--allow-expired`. And the notary
//! client cannot read vouch's TUF 1.0 metadata (what docs/api.md says).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, Vouch};
use serde_json::Value;
use vouch_testkit::notary::{hex_digest, DelegationKey, NotaryClient, NotaryServer, PASSPHRASES};

const APP: &str = "example.com/org/app";
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// A notary server, one client with a collection `APP` (v1, v2 in targets; v3 in
/// `targets/releases`, signed by a delegation key the client imported; then its targets key
/// and its root key rotated, so root version 3 is current).
struct Notary {
    _tmp: tempfile::TempDir,
    server: NotaryServer,
    client: NotaryClient,
    /// Root version 1 of `APP`, before its targets and root keys were rotated.
    first_root: PathBuf,
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
        client.publish(APP);
        // The root a long-standing consumer pinned, before the keys were rotated.
        let first_root = tmp.path().join("first-root.json");
        std::fs::copy(
            client
                .trust_dir()
                .join("tuf")
                .join(APP)
                .join("metadata")
                .join("root.json"),
            &first_root,
        )
        .unwrap();
        client.rotate_key(APP, "targets");
        client.rotate_key(APP, "root");
        Notary {
            _tmp: tmp,
            server,
            client,
            first_root,
        }
    }

    fn trust_dir(&self) -> PathBuf {
        self.client.trust_dir().to_owned()
    }
}

/// A vouch CLI set up to import from `notary`: its CA trusted, the notary passphrases set.
fn importer(server: &Server, notary: &Notary) -> Vouch {
    let mut v = Vouch::new(server);
    v.set("SSL_CERT_FILE", notary.server.ca_cert().to_str().unwrap());
    for (k, val) in PASSPHRASES {
        v.set(k, val);
    }
    v.set("VOUCH_RELEASES_PASSPHRASE", "releases secret");
    v
}

fn import(v: &Vouch, notary: &Notary, gun: &str, extra: &[&str]) -> common::Run {
    let trust = notary.trust_dir();
    let mut args = vec![
        "--output",
        "json",
        "import",
        "notary",
        gun,
        "--notary-server",
        notary.server.url(),
        "--notary-trust-dir",
        trust.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    v.run(&args)
}

/// `tag -> status` of one GUN's import report.
fn statuses(report: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = report["imported"][0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tag"].as_str().unwrap().to_owned(),
                t["role"].as_str().unwrap().to_owned(),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn row(tag: &str, role: &str, status: &str) -> (String, String, String) {
    (tag.into(), role.into(), status.into())
}

/// `vouch verify GUN:TAG --no-registry` in JSON.
fn verified(v: &Vouch, gun: &str, tag: &str) -> Value {
    v.run(&[
        "--output",
        "json",
        "verify",
        &format!("{gun}:{tag}"),
        "--no-registry",
    ])
    .json()
}

/// What python-tuf's Updater resolves `names` of `gun` on `server` to, trusting `root`.
fn python_tuf(server: &Server, gun: &str, root: &Path, dir: &Path, names: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/tests/python/client.py");
    let out = Command::new(vouch_testkit::python::python())
        .arg(script)
        .arg(format!("{}/v2/{gun}/_trust/tuf/", server.base))
        .arg(root)
        .arg(dir)
        .args(names)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python-tuf failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Whether the vouch server holds any trust data for `gun`.
fn on_vouch(server: &Server, gun: &str) -> bool {
    let client = reqwest::blocking::Client::new();
    let status = client
        .get(format!("{}/v2/{gun}/_trust/tuf/root.json", server.base))
        .send()
        .unwrap()
        .status();
    status.is_success()
}

#[test]
fn a_collection_moves_with_its_notary_keys_and_tags_resolve_as_notary_printed() {
    let notary = Notary::start();
    let server = Server::start();
    let v = importer(&server, &notary);

    // Trust starts from root version 1, as a consumer pinned it before the rotations: the
    // import walks the root chain to version 3 and signs with the current keys.
    let first_root = notary.first_root.to_str().unwrap().to_owned();
    let report = import(
        &v,
        &notary,
        APP,
        &["--keys", "notary", "--notary-root", &first_root],
    )
    .json();
    let r = &report["imported"][0];
    assert_eq!(r["notary_root_version"], 3, "{report:#}");
    assert_eq!(r["created"], true, "{report:#}");
    assert_eq!(
        statuses(&report),
        vec![
            row("v1", "targets", "added"),
            row("v2", "targets", "added"),
            row("v3", "targets/releases", "added"),
        ],
        "{report:#}"
    );
    assert_eq!(r["skipped"], serde_json::json!([]), "{report:#}");
    assert!(r["keys"]["targets/releases"][0].is_string(), "{report:#}");

    // Every tag verifies in vouch to what notary printed, in the same role.
    for tag in ["v1", "v2", "v3"] {
        let printed = notary.client.lookup(APP, tag);
        let got = verified(&v, APP, tag);
        assert_eq!(got["trusted"], true, "{got:#}");
        assert_eq!(got["digest"], printed.digest.as_str(), "{tag}: {got:#}");
    }
    let v3 = verified(&v, APP, "v3");
    assert_eq!(
        v3["role_path"],
        serde_json::json!(["targets", "targets/releases"])
    );

    // The reference TUF client agrees, trusting the vouch root this import created.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root.json");
    std::fs::write(&root, v.run(&["root", "export", APP]).ok()).unwrap();
    let found = python_tuf(
        &server,
        APP,
        &root,
        &tmp.path().join("py"),
        &["v1", "v2", "v3"],
    );
    for (tag, size, c) in [("v1", 101, '1'), ("v2", 102, '2'), ("v3", 103, '3')] {
        assert_eq!(found[tag]["sha256"], hex_digest(c).as_str(), "{found:#}");
        assert_eq!(found[tag]["length"], size, "{found:#}");
    }

    // Importing again changes nothing; trust now starts from the state the first run kept
    // (root version 3), which the command says when a root is given again.
    let run = import(
        &v,
        &notary,
        APP,
        &["--keys", "notary", "--notary-root", &first_root],
    );
    assert!(
        run.stderr
            .contains("trust starts from the notary state an earlier run kept"),
        "{run:#?}"
    );
    let again = run.json();
    assert_eq!(again["imported"][0]["created"], false);
    assert_eq!(
        statuses(&again),
        vec![
            row("v1", "targets", "unchanged"),
            row("v2", "targets", "unchanged"),
            row("v3", "targets/releases", "unchanged"),
        ]
    );

    // After a change on the notary side, only what changed is signed again.
    notary
        .client
        .addhash(APP, "v1", 111, &hex_digest('a'), None);
    notary
        .client
        .addhash(APP, "v4", 104, &hex_digest('4'), None);
    notary.client.publish(APP);
    let update = import(&v, &notary, APP, &["--keys", "notary"]).json();
    assert_eq!(
        statuses(&update),
        vec![
            row("v1", "targets", "changed"),
            row("v2", "targets", "unchanged"),
            row("v3", "targets/releases", "unchanged"),
            row("v4", "targets", "added"),
        ]
    );
    assert_eq!(
        verified(&v, APP, "v1")["digest"],
        format!("sha256:{}", hex_digest('a'))
    );
    assert_eq!(
        verified(&v, APP, "v4")["digest"],
        format!("sha256:{}", hex_digest('4'))
    );

    // A tag both roles sign, with different digests: docker trust resolves it from
    // targets/releases, and so must vouch after the move, so targets' entry stays behind.
    notary
        .client
        .addhash(APP, "v5", 150, &hex_digest('b'), None);
    notary
        .client
        .addhash(APP, "v5", 151, &hex_digest('c'), Some("targets/releases"));
    notary.client.publish(APP);
    let both = import(&v, &notary, APP, &["--keys", "notary"]).json();
    assert!(
        statuses(&both).contains(&row("v5", "targets/releases", "added")),
        "{both:#}"
    );
    let skipped = &both["imported"][0]["skipped"];
    assert_eq!(skipped[0]["tag"], "v5", "{both:#}");
    assert_eq!(skipped[0]["role"], "targets", "{both:#}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("docker trust resolves this tag from targets/releases"),
        "{both:#}"
    );
    assert_eq!(
        verified(&v, APP, "v5")["digest"],
        format!("sha256:{}", hex_digest('c'))
    );
}

#[test]
fn new_keys_import_the_targets_tags_and_report_the_delegated_ones() {
    let notary = Notary::start();
    // The vouch server's clock is a month ahead, as is the first importer's below.
    let server = Server::start_with_env(&[
        ("LD_PRELOAD", Path::new(LIBFAKETIME)),
        ("FAKETIME", Path::new("+31d")),
        ("FAKETIME_DONT_FAKE_MONOTONIC", Path::new("1")),
    ]);
    let v = importer(&server, &notary);

    // A month on, the notary timestamp has expired: imported only when allowed, and
    // reported.
    let mut late = importer(&server, &notary);
    late.set("LD_PRELOAD", LIBFAKETIME);
    late.set("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    late.set("FAKETIME", "+31d");
    late.trust_dir = v.trust_dir.clone();
    let report = import(&late, &notary, APP, &["--allow-expired"]).json();
    assert_eq!(
        statuses(&report),
        vec![row("v1", "targets", "added"), row("v2", "targets", "added")],
        "{report:#}"
    );
    assert_eq!(
        report["imported"][0]["expired"][0]["role"], "timestamp",
        "{report:#}"
    );
    let skipped = &report["imported"][0]["skipped"];
    assert_eq!(skipped[0]["tag"], "v3", "{report:#}");
    assert_eq!(skipped[0]["role"], "targets/releases");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("--keys notary"),
        "{report:#}"
    );
    assert_eq!(
        verified(&v, APP, "v2")["digest"],
        format!("sha256:{}", hex_digest('2'))
    );
    let v3 = v.run(&["verify", &format!("{APP}:v3"), "--no-registry"]);
    assert_eq!(v3.code, 3, "{v3:#?}");

    // The text report names every tag and the skipped one.
    let text = v.run(&[
        "import",
        "notary",
        APP,
        "--notary-server",
        notary.server.url(),
        "--notary-trust-dir",
        notary.trust_dir().to_str().unwrap(),
    ]);
    let out = text.ok();
    assert!(
        out.contains(&format!("updated {APP} from {}", notary.server.url())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "unchanged  {APP}:v1 -> sha256:{}",
            hex_digest('1')
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("skipped    {APP}:v3 (targets/releases)")),
        "{out}"
    );

    // From the notary client's cache alone (no notary server), into another vouch server.
    let second = Server::start();
    let offline = importer(&second, &notary);
    let report = offline
        .run(&[
            "--output",
            "json",
            "import",
            "notary",
            APP,
            "--notary-trust-dir",
            notary.trust_dir().to_str().unwrap(),
        ])
        .json();
    assert_eq!(
        statuses(&report),
        vec![row("v1", "targets", "added"), row("v2", "targets", "added")],
        "{report:#}"
    );
    assert!(
        report["imported"][0]["source"]
            .as_str()
            .unwrap()
            .starts_with("the notary cache"),
        "{report:#}"
    );
    assert_eq!(
        verified(&offline, APP, "v1")["digest"],
        format!("sha256:{}", hex_digest('1'))
    );

    // The notary 0.7 client cannot read vouch's TUF 1.0 metadata (docs/api.md says so).
    let reader = NotaryClient::new(&notary.server, notary.trust_dir().join("..").join("reader"));
    let out = Command::new("/usr/bin/notary")
        .args(["-d"])
        .arg(reader.trust_dir())
        .args(["-s", &server.base, "list", APP])
        .env_clear()
        .env("HOME", reader.trust_dir())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("root type metadata invalid: expected type Root, not root"),
        "{said}"
    );
}

#[test]
fn a_collection_whose_snapshot_key_the_notary_server_holds_moves_too() {
    const SERVER_SNAPSHOT: &str = "example.com/org/online-snapshot";
    let notary = Notary::start();
    notary.client.init_with_server_snapshot(SERVER_SNAPSHOT);
    notary
        .client
        .addhash(SERVER_SNAPSHOT, "latest", 105, &hex_digest('5'), None);
    notary.client.publish(SERVER_SNAPSHOT);
    let server = Server::start();
    let v = importer(&server, &notary);

    let report = import(&v, &notary, SERVER_SNAPSHOT, &["--keys", "notary"]).json();
    assert_eq!(
        statuses(&report),
        vec![row("latest", "targets", "added")],
        "{report:#}"
    );
    let printed = notary.client.lookup(SERVER_SNAPSHOT, "latest");
    assert_eq!(
        verified(&v, SERVER_SNAPSHOT, "latest")["digest"],
        printed.digest.as_str()
    );
}

#[test]
fn refused_imports_write_nothing_to_vouch() {
    let notary = Notary::start();
    let server = Server::start();
    let mut v = importer(&server, &notary);

    // A wrong passphrase for a notary key.
    v.set("NOTARY_ROOT_PASSPHRASE", "not the passphrase");
    let r = import(&v, &notary, APP, &["--keys", "notary"]);
    eprintln!(
        "refused: {}",
        r.fails(
            1,
            &[
                "cannot decrypt the notary root key",
                "NOTARY_ROOT_PASSPHRASE"
            ]
        )
    );
    assert!(!on_vouch(&server, APP));
    v.set("NOTARY_ROOT_PASSPHRASE", PASSPHRASES[0].1);

    // A root that does not chain to the one pinned: the same GUN's root on another notary
    // server, made by another client with other keys.
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = NotaryServer::start(&tmp.path().join("server"));
    let stranger = NotaryClient::new(&elsewhere, tmp.path().join("trust"));
    stranger.init(APP);
    stranger.publish(APP);
    let other_root = stranger
        .trust_dir()
        .join("tuf")
        .join(APP)
        .join("metadata")
        .join("root.json");
    let r = import(
        &v,
        &notary,
        APP,
        &["--notary-root", other_root.to_str().unwrap()],
    );
    eprintln!(
        "refused: {}",
        r.fails(
            1,
            &[
                "the notary collection example.com/org/app",
                "does not verify"
            ]
        )
    );
    assert!(!on_vouch(&server, APP));

    // Expired: the importer's clock a month ahead (notary-server signs timestamps for 14
    // days).
    let mut late = importer(&server, &notary);
    late.set("LD_PRELOAD", LIBFAKETIME);
    late.set("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    late.set("FAKETIME", "+31d");
    let r = import(&late, &notary, APP, &[]);
    eprintln!("refused: {}", r.fails(1, &["expired", "--allow-expired"]));
    assert!(!on_vouch(&server, APP));

    // Data changed in notary's database after signing: the digest of v1.
    let mut notary = notary;
    notary
        .server
        .tamper_hash(APP, "targets", &hex_digest('1'), &hex_digest('f'));
    let r = import(&v, &notary, APP, &[]);
    eprintln!("refused: {}", r.fails(1, &["does not verify"]));
    assert!(!on_vouch(&server, APP));
}
