//! End-to-end: a repository whose metadata expired is recovered by its owner, and refused by
//! every client until it is.
//!
//! Time moves with libfaketime: the server reads its clock offset from a file (so the test
//! moves it without a restart) and each `vouch` run gets the same offset, so both sides agree
//! on "now", years after the repository was signed. Each test has its own server, because
//! each moves its server's clock. Roles expire in turn: targets (and a sign or a rotation into
//! an expired targets), a delegated role, a client-held snapshot, and root together with
//! everything else after ten years, renewed by the holder of the keys a root rotation made.
//! After each recovery a client pinned to root version 1 verifies again. A server-held
//! snapshot and the timestamp expire at every clock jump too; the server re-signs them on the
//! next read, which every verification after a jump relies on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{digest, Server, Vouch};

const GUN: &str = "registry.example.com/org/app";
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// A server whose clock the test sets, and the offset to give every `vouch` run.
struct Clocked {
    server: Server,
    clock: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Clocked {
    fn start() -> Self {
        assert!(
            Path::new(LIBFAKETIME).exists(),
            "{LIBFAKETIME} is missing: install Debian's faketime (scripts/test does)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let clock = tmp.path().join("faketime");
        std::fs::write(&clock, "+0d\n").unwrap();
        let server = Server::start_with_env(&[
            ("LD_PRELOAD", Path::new(LIBFAKETIME)),
            ("FAKETIME_TIMESTAMP_FILE", &clock),
            ("FAKETIME_NO_CACHE", Path::new("1")),
            ("FAKETIME_DONT_FAKE_MONOTONIC", Path::new("1")),
        ]);
        Clocked {
            server,
            clock,
            _tmp: tmp,
        }
    }

    /// A trust directory of its own, its clock where the server's is.
    fn vouch(&self) -> Vouch {
        let mut v = Vouch::new(&self.server);
        v.set("LD_PRELOAD", LIBFAKETIME);
        v.set("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        v.set(
            "FAKETIME",
            std::fs::read_to_string(&self.clock).unwrap().trim(),
        );
        v
    }

    /// Moves the server's clock and the clocks of `vouches` to `days` after the real time.
    fn set_days(&self, days: u32, vouches: &mut [&mut Vouch]) {
        let offset = format!("+{days}d");
        std::fs::write(&self.clock, format!("{offset}\n")).unwrap();
        for v in vouches {
            v.set("FAKETIME", &offset);
        }
    }
}

/// A client on another machine that pins `root` (root version 1) for `GUN`: verifies `tag`
/// (expected to be signed for `digest`).
fn pinned_client_verifies(owner: &Vouch, root: &Path, gun: &str, tag: &str, digest: &str) {
    let client = owner.elsewhere();
    let out = client.run(&[
        "--trust-root",
        root.to_str().unwrap(),
        "verify",
        &format!("{gun}:{tag}"),
        "--no-registry",
    ]);
    assert_eq!(out.ok().trim(), format!("{gun}@{digest}"));
}

/// Root version 1 of `gun` as `owner` pinned it at `init`, saved to a file.
fn save_root_v1(owner: &Vouch, gun: &str) -> PathBuf {
    let bytes = std::fs::read(owner.cached_root(gun)).unwrap();
    let path = owner
        .trust_dir
        .parent()
        .unwrap()
        .join(format!("root-v1-{}.json", gun.replace('/', "_")));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The row of `role` in `vouch status --output json`.
fn status_row(v: &Vouch, gun: &str, role: &str) -> serde_json::Value {
    let status = v.run(&["--output", "json", "status", gun]).json();
    status["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == role)
        .unwrap_or_else(|| panic!("no {role} in {status}"))
        .clone()
}

/// The roles `vouch status` shows as expired.
fn expired_roles(v: &Vouch, gun: &str) -> Vec<String> {
    let status = v.run(&["--output", "json", "status", gun]).json();
    status["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["expired"] == true)
        .map(|r| r["role"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn expired_targets_are_refused_by_clients_and_renewed_by_the_owner() {
    let clocked = Clocked::start();
    let mut owner = clocked.vouch();
    owner.run(&["init", GUN]).ok();
    owner.sign_digest(GUN, "v1", 1, None).ok();
    let root_v1 = save_root_v1(&owner, GUN);
    // Three more repositories, recovered by signing into and by rotating their targets, and
    // by changing the delegations of targets.
    let signed_gun = "registry.example.com/org/signed";
    let rotated_gun = "registry.example.com/org/rotated";
    let delegating_gun = "registry.example.com/org/delegating";
    for gun in [signed_gun, rotated_gun, delegating_gun] {
        owner.run(&["init", gun]).ok();
        owner.sign_digest(gun, "v1", 1, None).ok();
    }
    owner.set("VOUCH_RELEASES_PASSPHRASE", "releases secret");
    let releases_key = owner.generate_key("releases");
    let delegate = |owner: &Vouch, role: &str, paths: &str| {
        owner.run(&[
            "delegation",
            "add",
            delegating_gun,
            role,
            "--key",
            &releases_key,
            "--paths",
            paths,
        ])
    };
    delegate(&owner, "releases", "v*").ok();
    let mut client = owner.elsewhere();
    client
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .ok();

    // Three years and a few days later targets (signed for three years) has expired; root
    // (ten years) has not.
    clocked.set_days(1100, &mut [&mut owner, &mut client]);
    for v in [&client, &owner] {
        v.run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
            .fails(3, &["not trusted", "targets metadata expired"]);
        v.run(&["lookup", &format!("{GUN}:v1")])
            .fails(3, &["not trusted", "targets metadata expired"]);
    }
    // `list` answers which targets are trusted: it refuses too.
    owner
        .run(&["list", GUN])
        .fails(1, &["targets metadata expired"]);
    let json = client
        .run(&[
            "--output",
            "json",
            "verify",
            &format!("{GUN}:v1"),
            "--no-registry",
        ])
        .json();
    assert_eq!(json["trusted"], false);
    assert!(
        json["reason"].as_str().unwrap().contains("targets"),
        "{json}"
    );

    // The owner sees what expired.
    assert_eq!(expired_roles(&owner, GUN), ["targets"]);
    let text = owner.run(&["status", GUN]);
    let out = text.ok();
    let row = out.lines().find(|l| l.starts_with("targets")).unwrap();
    assert!(row.contains("EXPIRED 5 days ago"), "{out}");
    assert!(
        out.contains("warning: targets expired 5 days ago") && out.contains("vouch renew"),
        "{out}"
    );
    assert_eq!(status_row(&owner, GUN, "targets")["days_left"], -5);
    // A fresh timestamp (the server re-signed it for a day) has one day left, not zero.
    assert_eq!(status_row(&owner, GUN, "timestamp")["days_left"], 1);
    // What `status` loaded went into the owner's cache; verifying from it still refuses.
    owner
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .fails(3, &["not trusted", "targets metadata expired"]);

    // `vouch renew` renews what expired, and warns that it had.
    let renewed = owner.run(&["renew", GUN]);
    assert_eq!(
        renewed.ok().trim(),
        format!("renewed targets of {GUN} (version 3)")
    );
    assert!(
        renewed.stderr.contains("warning: expired metadata in")
            && renewed.stderr.contains("targets (expired 5 days ago"),
        "{renewed:?}"
    );
    assert!(expired_roles(&owner, GUN).is_empty());
    client
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .ok();
    owner.run(&["lookup", &format!("{GUN}:v1")]).ok();
    pinned_client_verifies(&owner, &root_v1, GUN, "v1", &digest(1));

    // Signing into an expired targets re-signs it: the repository verifies again.
    let signed = owner.sign_digest(signed_gun, "v2", 2, None);
    signed.ok();
    assert!(
        signed.stderr.contains("expired metadata in") && signed.stderr.contains("targets"),
        "{signed:?}"
    );
    client
        .run(&["verify", &format!("{signed_gun}:v1"), "--no-registry"])
        .ok();
    client
        .run(&["verify", &format!("{signed_gun}:v2"), "--no-registry"])
        .ok();

    // Rotating the targets key of an expired repository re-signs targets with the new key.
    client
        .run(&["verify", &format!("{rotated_gun}:v1"), "--no-registry"])
        .fails(3, &["targets metadata expired"]);
    owner.run(&["rotate", rotated_gun, "targets"]).ok();
    client
        .run(&["verify", &format!("{rotated_gun}:v1"), "--no-registry"])
        .ok();

    // Signing into a delegated role while targets has expired would leave targets expired:
    // refused, naming what to renew.
    owner
        .sign_digest(delegating_gun, "v2", 2, Some("releases"))
        .fails(
            1,
            &[
                "targets expired 5 days ago",
                &format!("vouch renew {delegating_gun} --role targets"),
                "nothing was published",
            ],
        );
    // A new delegation re-signs targets, with a warning; then the delegated role signs.
    let added = delegate(&owner, "nightly", "n*");
    added.ok();
    assert!(added.stderr.contains("expired metadata in"), "{added:?}");
    owner
        .sign_digest(delegating_gun, "v2", 2, Some("releases"))
        .ok();
    for tag in ["v1", "v2"] {
        client
            .run(&[
                "verify",
                &format!("{delegating_gun}:{tag}"),
                "--no-registry",
            ])
            .ok();
    }
}

#[test]
fn an_expired_delegated_role_is_renewed_by_its_key_holder() {
    let clocked = Clocked::start();
    let mut owner = clocked.vouch();
    owner.set("VOUCH_RELEASES_PASSPHRASE", "releases secret");
    owner.run(&["init", GUN]).ok();
    let root_v1 = save_root_v1(&owner, GUN);
    let keyid = owner.generate_key("releases");
    owner
        .run(&[
            "delegation",
            "add",
            GUN,
            "releases",
            "--key",
            &keyid,
            "--paths",
            "v*",
        ])
        .ok();
    owner.sign_digest(GUN, "v1", 1, Some("releases")).ok();

    // Targets is renewed halfway through; the delegated role is not.
    clocked.set_days(500, &mut [&mut owner]);
    owner.run(&["renew", GUN, "--role", "targets"]).ok();
    clocked.set_days(1100, &mut [&mut owner]);

    let mut client = owner.elsewhere();
    client.set("VOUCH_RELEASES_PASSPHRASE", "");
    let verify = |v: &Vouch| {
        v.run(&[
            "--trust-root",
            root_v1.to_str().unwrap(),
            "verify",
            &format!("{GUN}:v1"),
            "--no-registry",
        ])
    };
    verify(&client).fails(3, &["not trusted", "targets/releases metadata expired"]);
    assert_eq!(expired_roles(&owner, GUN), ["targets/releases"]);

    // Signing into targets proceeds: the expired role is not on its way.
    owner.sign_digest(GUN, "latest", 2, None).ok();
    client
        .run(&["verify", &format!("{GUN}:latest"), "--no-registry"])
        .ok();
    client
        .run(&["lookup", &format!("{GUN}:v1")])
        .fails(3, &["not trusted", "targets/releases metadata expired"]);

    // Without --role, renew picks the expired role whose key is held here.
    let renewed = owner.run(&["--output", "json", "renew", GUN]).json();
    assert_eq!(
        renewed["renewed"],
        serde_json::json!([{"role": "targets/releases", "version": 2}])
    );
    verify(&client).ok();
    pinned_client_verifies(&owner, &root_v1, GUN, "v1", &digest(1));
    assert!(expired_roles(&owner, GUN).is_empty());
}

#[test]
fn an_expired_client_held_snapshot_is_renewed_on_its_own() {
    use vouch_tuf::crypto::Signer;
    use vouch_tuf::metadata::{Metadata, Role, Snapshot};

    let clocked = Clocked::start();
    let mut owner = clocked.vouch();
    owner.run(&["init", GUN, "--client-snapshot"]).ok();
    owner.sign_digest(GUN, "v1", 1, None).ok();
    let root_v1 = save_root_v1(&owner, GUN);

    // A snapshot re-signed with a lifetime of one day, as another tool might.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let current = reqwest::blocking::Client::new()
        .get(format!(
            "{}/v2/{GUN}/_trust/tuf/snapshot.json",
            clocked.server.base
        ))
        .bearer_auth(&clocked.server.admin_token)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let mut snapshot = Metadata::<Snapshot>::from_bytes(&current)
        .unwrap()
        .signed()
        .clone();
    snapshot.bump_version();
    snapshot.set_expires(vouch_tuf::time::Timestamp::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 86_400,
    ));
    let snapshot_key = status_row(&owner, GUN, "snapshot")["keyids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let key = owner.private_key(&snapshot_key, b"snapshot secret");
    let bytes = Metadata::signed_by(snapshot, &[&key as &dyn Signer])
        .unwrap()
        .to_bytes();
    let (status, body) = common::publish_files(&clocked.server, GUN, &[("snapshot", bytes)]);
    assert_eq!(status, 200, "{body}");

    clocked.set_days(3, &mut [&mut owner]);
    let client = owner.elsewhere();
    client
        .run(&[
            "--trust-root",
            root_v1.to_str().unwrap(),
            "verify",
            &format!("{GUN}:v1"),
            "--no-registry",
        ])
        .fails(3, &["not trusted", "snapshot metadata expired"]);
    assert_eq!(expired_roles(&owner, GUN), ["snapshot"]);
    let status = owner.run(&["--output", "json", "status", GUN]).json();
    let warnings = status["warnings"].to_string();
    assert!(
        warnings.contains("snapshot expired 2 days ago") && warnings.contains("vouch renew"),
        "{warnings}"
    );

    let renewed = owner.run(&["renew", GUN]);
    assert_eq!(
        renewed.ok().trim(),
        format!("renewed snapshot of {GUN} (version 4)")
    );
    pinned_client_verifies(&owner, &root_v1, GUN, "v1", &digest(1));
}

#[test]
fn an_expired_rotated_root_is_renewed_by_the_holder_of_the_new_keys() {
    let clocked = Clocked::start();
    let mut owner = clocked.vouch();
    owner.run(&["init", GUN]).ok();
    owner.sign_digest(GUN, "v1", 1, None).ok();
    let root_v1 = save_root_v1(&owner, GUN);
    // Every root key replaced: root version 2 is signed by the old and the new key.
    let rotated = owner
        .run(&["--output", "json", "rotate", GUN, "root"])
        .json();
    let new_root_key = rotated["keyid"].as_str().unwrap().to_owned();
    let targets_key = status_row(&owner, GUN, "targets")["keyids"][0]
        .as_str()
        .unwrap()
        .to_owned();

    // Another trust directory holds only the new root key and the targets key.
    let mut keeper = owner.elsewhere();
    let keys_dir = owner.trust_dir.parent().unwrap();
    for (id, role) in [(&new_root_key, "root"), (&targets_key, "targets")] {
        let file = keys_dir.join(format!("{id}.pem"));
        owner
            .run(&["key", "export", id, "--out", file.to_str().unwrap()])
            .ok();
        keeper
            .run(&["key", "import", file.to_str().unwrap(), "--role", role])
            .ok();
    }
    let old_root_key = rotated["old_keyids"][0].as_str().unwrap();
    assert!(!keeper
        .trust_dir
        .join("private")
        .join(format!("{old_root_key}.key"))
        .exists());

    // Ten years later everything this side signed has expired, root version 2 included.
    clocked.set_days(3700, &mut [&mut owner, &mut keeper]);
    let client = owner.elsewhere();
    client
        .run(&[
            "--trust-root",
            root_v1.to_str().unwrap(),
            "verify",
            &format!("{GUN}:v1"),
            "--no-registry",
        ])
        .fails(3, &["not trusted", "root metadata expired"]);
    assert_eq!(expired_roles(&keeper, GUN), ["root", "targets"]);
    // A sign would leave root expired: refused, naming what to renew.
    keeper.sign_digest(GUN, "v2", 2, None).fails(
        1,
        &[
            "root expired",
            &format!("vouch renew {GUN} --role root"),
            "nothing was published",
        ],
    );

    let renewed = keeper.run(&["--output", "json", "renew", GUN]).json();
    assert_eq!(
        renewed["renewed"],
        serde_json::json!([
            {"role": "root", "version": 3},
            {"role": "targets", "version": 3},
        ])
    );
    // A client pinned to root version 1 walks to version 3 through the expired version 2.
    pinned_client_verifies(&owner, &root_v1, GUN, "v1", &digest(1));
    keeper.sign_digest(GUN, "v2", 2, None).ok();
    pinned_client_verifies(&owner, &root_v1, GUN, "v2", &digest(2));
    assert_eq!(status_row(&owner, GUN, "root")["version"], 3);
}
