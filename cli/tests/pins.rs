//! End-to-end: where trust in a repository starts, and that nothing can start it over.
//!
//! - An organisation pins its root keys once (a pin file with a threshold of keys) and
//!   every repository whose first root those keys signed verifies, rotations included;
//!   a repository under the same pattern with another root is refused, naming the pin.
//! - A pin belongs to the repository, not the server: another server URL or a bundle with
//!   another root is refused against the same pin (exit 3 for `verify`), never trusted on
//!   first use with a warning.
//! - A wrong pin is visible (`vouch trust show`), a disagreeing `--trust-root` is an error
//!   naming the pin, and `vouch trust pin` / `vouch trust reset` change it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{digest, Server, Vouch};

const APP: &str = "registry.example.com/org/app";
const API: &str = "registry.example.com/org/api";
const ROGUE: &str = "registry.example.com/org/rogue";

fn verify(v: &Vouch, image: &str) -> common::Run {
    v.run(&["verify", image, "--no-registry"])
}

/// A root key generated in `v`'s trust directory, and its public half written to
/// `dir/NAME.pub.json`.
fn org_key(v: &Vouch, dir: &Path, name: &str) -> (String, PathBuf) {
    let id = v.generate_key("root");
    let path = dir.join(format!("{name}.pub.json"));
    v.run(&[
        "key",
        "export",
        &id,
        "--public",
        "-o",
        path.to_str().unwrap(),
    ])
    .ok();
    (id, path)
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_owned()
}

#[test]
fn an_organisation_pins_its_root_keys_once_for_every_repository() {
    let server = Server::start();
    let officer = Vouch::new(&server);
    let dir = officer.trust_dir.parent().unwrap().to_owned();
    let (a, a_pub) = org_key(&officer, &dir, "org-root-1");
    let (b, b_pub) = org_key(&officer, &dir, "org-root-2");
    let (_c, c_pub) = org_key(&officer, &dir, "org-root-3");
    let pins = write(
        &dir.join("pins.toml"),
        &format!(
            "[[pin]]\ngun = \"registry.example.com/org/**\"\nroot_keys = [{:?}, {:?}, {:?}]\nthreshold = 2\n\n\
             [[pin]]\ngun = \"registry.example.com/sandbox/**\"\ntrust_on_first_use = true\n",
            a_pub.file_name().unwrap(),
            b_pub.file_name().unwrap(),
            c_pub.file_name().unwrap()
        ),
    );
    // Two repositories, each with its own root, both first signed by two organisation keys.
    for (gun, n) in [(APP, 1), (API, 2)] {
        officer
            .run(&["init", gun, "--root-key", &a, "--root-key", &b])
            .ok();
        officer.sign_digest(gun, "v1", n, None).ok();
    }

    // A consumer with only the pin file verifies both, with no warning.
    let mut consumer = officer.elsewhere();
    consumer.token = None;
    consumer.set("VOUCH_TRUST_PINS", pins.to_str().unwrap());
    for (gun, n) in [(APP, 1), (API, 2)] {
        let out = verify(&consumer, &format!("{gun}:v1"));
        assert_eq!(out.ok().trim(), format!("{gun}@{}", digest(n)));
        assert!(out.stderr.is_empty(), "{out:?}");
    }
    let shown = consumer
        .run(&["--output", "json", "trust", "show", APP])
        .json();
    assert!(
        shown["pinned"]["source"]
            .as_str()
            .unwrap()
            .contains("signed by 2 of root keys"),
        "{shown}"
    );
    assert_eq!(shown["pinned"]["version"], 1);

    // The repository rotates its root key away from the organisation's: it keeps its own
    // chain, and consumers old and new walk it from the first root.
    officer.run(&["rotate", APP, "root"]).ok();
    officer.sign_digest(APP, "v2", 3, None).ok();
    verify(&consumer, &format!("{APP}:v2")).ok();
    let mut newcomer = officer.elsewhere();
    newcomer.token = None;
    newcomer.set("VOUCH_TRUST_PINS", pins.to_str().unwrap());
    let out = verify(&newcomer, &format!("{APP}:v2"));
    assert_eq!(out.ok().trim(), format!("{APP}@{}", digest(3)));
    assert!(out.stderr.is_empty(), "{out:?}");

    // A repository under the organisation's pattern whose root the organisation did not
    // sign: refused, naming the pin, not trusted on first use.
    let outsider = officer.elsewhere();
    outsider.run(&["init", ROGUE]).ok();
    outsider.sign_digest(ROGUE, "v1", 4, None).ok();
    let line = verify(&consumer, &format!("{ROGUE}:v1"))
        .fails(
            3,
            &[
                "not trusted",
                "pins.toml, pin 1 (registry.example.com/org/**)",
                "signed by 0 of the pinned root keys, 2 required",
                "vouch trust pin",
            ],
        )
        .to_owned();
    assert!(!line.contains("on first use"), "{line}");
    // Nothing was pinned for it.
    let shown = consumer
        .run(&["--output", "json", "trust", "show", ROGUE])
        .json();
    assert!(shown["pinned"].is_null(), "{shown}");

    // One organisation key is not the threshold: init under the pin file refuses before
    // publishing anything.
    let mut half = officer.elsewhere();
    half.set("VOUCH_TRUST_PINS", pins.to_str().unwrap());
    let other = "registry.example.com/org/half";
    half.run(&["init", other]).fails(
        1,
        &[
            "pins registry.example.com/org/half",
            "is not accepted",
            "--root-key",
        ],
    );
    verify(&consumer, &format!("{other}:v1")).fails(3, &["not trusted", "has no trust data"]);

    // An explicit trust-on-first-use rule: trusted, without the implicit warning.
    let sandbox = "registry.example.com/sandbox/tool";
    outsider.run(&["init", sandbox]).ok();
    outsider.sign_digest(sandbox, "v1", 5, None).ok();
    let out = verify(&consumer, &format!("{sandbox}:v1"));
    out.ok();
    assert!(out.stderr.is_empty(), "{out:?}");
    let shown = consumer
        .run(&["--output", "json", "trust", "show", sandbox])
        .json();
    assert!(
        shown["pinned"]["source"]
            .as_str()
            .unwrap()
            .contains("trusted on first use from"),
        "{shown}"
    );
}

#[test]
fn a_pin_holds_for_every_server_and_bundle() {
    let mut genuine = Server::start();
    let impostor = Server::start();
    let owner = Vouch::new(&genuine);
    owner.run(&["init", APP]).ok();
    owner.sign_digest(APP, "v1", 1, None).ok();
    let dir = owner.trust_dir.parent().unwrap().to_owned();
    let root = dir.join("app.root.json");
    owner
        .run(&["root", "export", APP, "-o", root.to_str().unwrap()])
        .ok();
    let bundle = dir.join("app.bundle.json");
    owner
        .run(&["export", APP, "-o", bundle.to_str().unwrap()])
        .ok();

    // The same repository name on another server, with another owner's root.
    let mut other_owner = Vouch::new(&impostor);
    other_owner.server = impostor.base.clone();
    other_owner.run(&["init", APP]).ok();
    other_owner.sign_digest(APP, "v1", 2, None).ok();
    let other_bundle = dir.join("other.bundle.json");
    other_owner
        .run(&["export", APP, "-o", other_bundle.to_str().unwrap()])
        .ok();

    // The case: a bundle imported with a pinned root, then verification through
    // another server URL. The pin holds: refused, exit 3, naming the pin.
    let mut consumer = owner.elsewhere();
    consumer.token = None;
    consumer
        .run(&[
            "--trust-root",
            root.to_str().unwrap(),
            "import",
            bundle.to_str().unwrap(),
        ])
        .ok();
    consumer.server = impostor.base.clone();
    let out = verify(&consumer, &format!("{APP}:v1"));
    out.fails(
        3,
        &[
            "not trusted",
            "failed verification",
            "is pinned to root version 1",
            "--trust-root",
        ],
    );
    assert!(!out.stderr.contains("on first use"), "{out:?}");
    // The other server's bundle is refused the same way, by import and by verify.
    consumer
        .run(&["import", other_bundle.to_str().unwrap()])
        .fails(1, &["failed verification", "is pinned to root version 1"]);
    verify_bundle(&consumer, &other_bundle).fails(3, &["not trusted", "is pinned"]);
    // The genuine bundle verifies against the same pin whatever VOUCH_SERVER says, with
    // the genuine server gone.
    genuine.kill();
    let out = verify_bundle(&consumer, &bundle);
    assert_eq!(out.ok().trim(), format!("{APP}@{}", digest(1)));

    // Without any explicit pin, the first source's root is trusted on first use and then
    // holds: a second source with another root is refused.
    let mut tofu = owner.elsewhere();
    tofu.token = None;
    tofu.run(&["import", bundle.to_str().unwrap()]).ok();
    tofu.server = impostor.base.clone();
    verify(&tofu, &format!("{APP}:v1")).fails(
        3,
        &[
            "is pinned to root version 1",
            "trusted on first use from bundle",
        ],
    );
}

fn verify_bundle(v: &Vouch, bundle: &Path) -> common::Run {
    v.run(&[
        "verify",
        &format!("{APP}:v1"),
        "--no-registry",
        "--bundle",
        bundle.to_str().unwrap(),
    ])
}

#[test]
fn a_wrong_pin_is_shown_reported_and_changed() {
    let server = Server::start();
    let owner = Vouch::new(&server);
    let root_key = owner.run(&["--output", "json", "init", APP]).json()["root_key"]
        .as_str()
        .unwrap()
        .to_owned();
    owner.run(&["init", API]).ok();
    owner.sign_digest(APP, "v1", 1, None).ok();
    let dir = owner.trust_dir.parent().unwrap().to_owned();
    let right = dir.join("app.root.json");
    let wrong = dir.join("other-app.root.json");
    let api_root = dir.join("api.root.json");
    owner
        .run(&["root", "export", APP, "-o", right.to_str().unwrap()])
        .ok();
    std::fs::write(&api_root, owner.run(&["root", "export", API]).ok()).unwrap();
    // The wrong root: the same repository name, created by someone else on another server.
    let elsewhere = Server::start();
    let mut stranger = Vouch::new(&elsewhere);
    stranger.server = elsewhere.base.clone();
    stranger.run(&["init", APP]).ok();
    std::fs::write(&wrong, stranger.run(&["root", "export", APP]).ok()).unwrap();
    // `root export` prints exactly the bytes the server serves.
    let served = reqwest_get(&format!("{}/v2/{APP}/_trust/tuf/root.json", server.base));
    assert_eq!(std::fs::read(&right).unwrap(), served);

    // Another repository's root is refused outright: it names its repository.
    let mut consumer = owner.elsewhere();
    consumer.token = None;
    consumer
        .run(&[
            "--trust-root",
            api_root.to_str().unwrap(),
            "verify",
            &format!("{APP}:v1"),
            "--no-registry",
        ])
        .fails(
            3,
            &[
                "not trusted",
                "is the root of registry.example.com/org/api, not of registry.example.com/org/app",
            ],
        );
    consumer.run(&["trust", "reset", APP]).ok();

    // A consumer handed the wrong root: refused, and the message says where it is pinned.
    let wrong_arg = wrong.to_str().unwrap();
    consumer
        .run(&[
            "--trust-root",
            wrong_arg,
            "verify",
            &format!("{APP}:v1"),
            "--no-registry",
        ])
        .fails(
            3,
            &[
                "failed verification",
                "is pinned to",
                wrong_arg,
                "vouch trust pin",
            ],
        );
    // The right root given later is not silently ignored: an error naming both.
    let right_arg = right.to_str().unwrap();
    consumer
        .run(&[
            "--trust-root",
            right_arg,
            "verify",
            &format!("{APP}:v1"),
            "--no-registry",
        ])
        .fails(
            3,
            &[
                "is pinned to root version 1",
                wrong_arg,
                &format!("--trust-root {right_arg} asks for root version 1"),
                "vouch trust pin registry.example.com/org/app ROOT_FILE",
            ],
        );
    // `trust show` says what is pinned and where it came from.
    let api_sha = sha256_hex(&std::fs::read(&wrong).unwrap());
    let shown = consumer.run(&["trust", "show", APP]).ok().to_owned();
    assert!(
        shown.contains(&api_sha) && shown.contains(wrong_arg),
        "{shown}"
    );
    let shown = consumer
        .run(&["--output", "json", "trust", "show", APP])
        .json();
    assert_eq!(shown["pinned"]["sha256"], api_sha.as_str());

    // A key pin the repository's first root does not satisfy changes nothing.
    let (_, stranger) = org_key(&owner, &dir, "stranger");
    consumer
        .run(&["trust", "pin", APP, "--keys", stranger.to_str().unwrap()])
        .fails(
            1,
            &["cannot be pinned", "signed by 0 of the pinned root keys"],
        );
    let again = consumer
        .run(&["--output", "json", "trust", "show", APP])
        .json();
    assert_eq!(again["pinned"]["sha256"], api_sha.as_str());

    // `trust pin` with the right root fixes it.
    consumer.run(&["trust", "pin", APP, right_arg]).ok();
    let out = verify(&consumer, &format!("{APP}:v1"));
    assert_eq!(out.ok().trim(), format!("{APP}@{}", digest(1)));
    assert!(out.stderr.is_empty(), "{out:?}");
    // And `--trust-root` of the pinned root agrees.
    consumer
        .run(&[
            "--trust-root",
            right_arg,
            "verify",
            &format!("{APP}:v1"),
            "--no-registry",
        ])
        .ok();

    // A key pin over the owner's root key (the repository's first root is signed by it).
    let owner_pub = dir.join("owner-root.pub.json");
    owner
        .run(&[
            "key",
            "export",
            &root_key,
            "--public",
            "-o",
            owner_pub.to_str().unwrap(),
        ])
        .ok();
    let by_keys = owner.elsewhere();
    by_keys
        .run(&["trust", "pin", APP, "--keys", owner_pub.to_str().unwrap()])
        .ok();
    verify(&by_keys, &format!("{APP}:v1")).ok();

    // `trust reset` forgets: the next use trusts on first use again, with the warning.
    consumer.run(&["trust", "reset", APP]).ok();
    let none = consumer
        .run(&["--output", "json", "trust", "show", APP])
        .json();
    assert!(none["pinned"].is_null(), "{none}");
    let out = verify(&consumer, &format!("{APP}:v1"));
    out.ok();
    assert!(out.stderr.contains("trusting the root of"), "{out:?}");
}

#[test]
fn a_trust_directory_of_the_earlier_layout_keeps_its_pin() {
    let server = Server::start();
    let owner = Vouch::new(&server);
    owner.run(&["init", APP]).ok();
    owner.sign_digest(APP, "v1", 1, None).ok();
    let consumer = owner.elsewhere();
    verify(&consumer, &format!("{APP}:v1")).ok();
    // Move the repository's directory to where earlier versions kept it: below the server.
    let tuf = consumer.trust_dir.join("tuf");
    let enc = |s: &str| vouch_verifier::cache::percent_encode(s);
    let new = tuf.join(enc(APP));
    let old = tuf.join(enc(&server.base)).join(enc(APP));
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::rename(&new, &old).unwrap();
    for f in ["pin.root", "pin.source"] {
        std::fs::remove_file(old.join(f)).unwrap();
    }
    let out = verify(&consumer, &format!("{APP}:v1"));
    out.ok();
    assert!(
        out.stderr.is_empty(),
        "no trust on first use again: {out:?}"
    );
    assert!(new.join("root.json").exists() && !old.exists());
    let shown = consumer
        .run(&["--output", "json", "trust", "show", APP])
        .json();
    assert!(
        shown["pinned"]["source"]
            .as_str()
            .unwrap()
            .contains("earlier version's cache"),
        "{shown}"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    vouch_tuf::reference::Digest::sha256_of(bytes)
        .hex()
        .to_owned()
}

fn reqwest_get(url: &str) -> Vec<u8> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::get(url)
        .unwrap()
        .bytes()
        .unwrap()
        .to_vec()
}
