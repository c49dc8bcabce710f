//! Trust that travels with the image, end to end: a real vouch-server, real `docker-registry`
//! processes (`vouch_testkit::registry`), images pushed with skopeo, and the `vouch` binary.
//!
//! - `vouch mirror` pushes a repository's verified trust beside its images; with the server
//!   stopped, `vouch verify --source registry` answers from the registry alone, refuses a
//!   re-tagged image, and `--source server,registry` falls back and says so. `--to` and
//!   `--server oci://` put and read the copy elsewhere; a tag holding an image is never
//!   overwritten.
//! - `vouch promote` copies a multi-platform image to another registry and repository (same
//!   digests) with its trust; with a `trust_from` pin it verifies there with no server,
//!   without one it is refused with a message naming the source and `trust_from`. An image
//!   copied with `skopeo copy --all`, its trust tag copied with skopeo too, verifies the same.
//! - Attacks through the registry: the trust tag moved back to an older artifact (rollback,
//!   caught across runs by the per-repository cache), a layer swapped for another
//!   repository's file, an expired copy (the CLI run under `faketime`).
//! - Writers follow `decide_push`: another repository's artifact replaced only with `--replace`,
//!   an image never, a newer copy never rolled back by a mirror reading a stale one; older root
//!   versions substituted in a copy are refused before anything is copied from it.
//! - A registry with basic authentication: credentials from `--registry-username` and stdin;
//!   with two registries, the command-line login goes to the one written to only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Run, Server, Vouch};
use vouch_testkit::registry::{ImageLayout, Registry, RegistryAuth};
use vouch_tuf::oci::{TrustManifest, OCI_MANIFEST, TRUST_TAG};
use vouch_tuf::reference::Digest;
use vouch_verifier::registry::{Login, Registries, RegistryOptions};

/// A registry client of the test's own (anonymous; loopback registries are plain HTTP).
fn client() -> Registries {
    Registries::new(RegistryOptions::new(Vec::new(), Login::Anonymous).unwrap()).unwrap()
}

/// The trust artifact's manifest bytes under `reference` of `repo` on `registry`.
fn artifact(registry: &Registry, repo: &str, reference: &str) -> Vec<u8> {
    client()
        .get_manifest(registry.host(), repo, reference, OCI_MANIFEST, 4 << 20)
        .unwrap()
        .bytes
}

/// Points the trust tag of `repo` at the manifest `bytes`.
fn retag_trust(registry: &Registry, repo: &str, bytes: &[u8]) {
    client()
        .put_manifest(registry.host(), repo, TRUST_TAG, OCI_MANIFEST, bytes)
        .unwrap();
}

/// `vouch ARGS…` with `stdin` piped in.
fn run_with_stdin(v: &Vouch, args: &[&str], stdin: &str) -> Run {
    let mut child = v
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `vouch ARGS…` with the clock moved by `offset` (libfaketime, e.g. `+400d`).
fn run_at(v: &Vouch, offset: &str, args: &[&str]) -> Run {
    let c = v.command(args);
    let mut f = Command::new("faketime");
    f.env_clear()
        .args(["-f", offset])
        .arg(c.get_program())
        .args(c.get_args());
    for (k, val) in c.get_envs() {
        if let Some(val) = val {
            f.env(k, val);
        }
    }
    let o = f.stdin(Stdio::null()).output().expect("run faketime");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `skopeo copy` between plain-HTTP registries, its extra `flags` first.
fn skopeo_copy(flags: &[&str], from: &str, to: &str) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    Command::new("skopeo")
        .env("HOME", tmp.path())
        .arg("copy")
        .args(flags)
        .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("docker://{from}"))
        .arg(format!("docker://{to}"))
        .output()
        .expect("run skopeo")
}

#[test]
fn mirrored_trust_verifies_from_the_registry_alone() {
    let registry = Registry::start();
    let mut server = Server::start();
    let v = Vouch::new(&server);
    let gun = format!("{}/app", registry.host());
    let image = format!("{gun}:v1");
    let pushed = ImageLayout::new("first").push(&registry, "app:v1");
    v.run(&["init", &gun]).ok();
    v.run(&["sign", &image]).ok();

    // Nothing mirrored yet: the registry copy does not exist, and the message says so.
    let consumer = v.elsewhere();
    consumer
        .run(&["--source", "registry", "verify", &image])
        .fails(
            1,
            &["has no trust data on the registry copy", "vouch mirror"],
        );

    let m = v.run(&["--output", "json", "mirror", &gun]).json();
    assert_eq!(m["pushed"], true);
    assert_eq!(m["destination"], format!("{gun}:{TRUST_TAG}"));
    let digest = m["digest"].as_str().unwrap().to_owned();
    assert_eq!(
        registry.manifest_digest("app", TRUST_TAG).as_deref(),
        Some(digest.as_str())
    );
    let files: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    // Exactly what `vouch export` bundles: every root, timestamp, snapshot, targets.
    assert_eq!(
        files,
        [
            "1.root.json",
            "2.snapshot.json",
            "2.targets.json",
            "root.json",
            "timestamp.json"
        ]
    );
    // The same state again is not pushed again.
    let again = v.run(&["--output", "json", "mirror", &gun]).json();
    assert_eq!(again["pushed"], false);
    assert_eq!(again["digest"], digest.as_str());
    assert_eq!(
        v.run(&["mirror", &gun]).ok().trim(),
        format!("unchanged {gun}:{TRUST_TAG}@{digest} (5 files)")
    );

    // --to another repository, read back with --server oci://.
    let elsewhere = format!("{}/mirrors/app", registry.host());
    let to = v
        .run(&["--output", "json", "mirror", &gun, "--to", &elsewhere])
        .json();
    assert_eq!(to["destination"], format!("{elsewhere}:{TRUST_TAG}"));
    // A tag holding an image is never replaced.
    ImageLayout::new("squatter").push(&registry, &format!("taken:{TRUST_TAG}"));
    let taken = format!("{}/taken", registry.host());
    v.run(&["mirror", &gun, "--to", &taken])
        .fails(1, &["not a vouch trust artifact", "refusing to replace it"]);
    // Not with --replace either: that is for another repository's trust artifact only.
    v.run(&["mirror", &gun, "--to", &taken, "--replace"])
        .fails(1, &["not a vouch trust artifact", "refusing to replace it"]);
    assert_ne!(
        registry.manifest_digest("taken", TRUST_TAG).as_deref(),
        Some(digest.as_str())
    );
    // Another repository's trust artifact is replaced only when asked to.
    let other = format!("{}/other", registry.host());
    v.run(&["init", &other]).ok();
    let shared = format!("{}/shared", registry.host());
    let theirs = v
        .run(&["--output", "json", "mirror", &other, "--to", &shared])
        .json();
    v.run(&["mirror", &gun, "--to", &shared]).fails(
        1,
        &[
            &format!("the trust artifact of another repository ({other})"),
            "--replace",
        ],
    );
    assert_eq!(
        registry.manifest_digest("shared", TRUST_TAG).as_deref(),
        theirs["digest"].as_str()
    );
    let replaced = v
        .run(&[
            "--output",
            "json",
            "mirror",
            &gun,
            "--to",
            &shared,
            "--replace",
        ])
        .json();
    assert_eq!(replaced["pushed"], true);
    assert_eq!(
        registry.manifest_digest("shared", TRUST_TAG).as_deref(),
        replaced["digest"].as_str()
    );

    // A token the server refuses is reported, not papered over with the registry copy.
    let mut expired = v.elsewhere();
    expired.token = Some("expired-or-revoked".into());
    let refused = expired.run(&["--source", "server,registry", "verify", &image]);
    refused.fails(
        1,
        &[
            "the server refused the token (HTTP 401)",
            "expired or revoked",
        ],
    );
    assert!(!refused.stderr.contains("unreachable"), "{refused:?}");

    // The server goes away: the registry alone answers.
    server.kill();
    let out = consumer.run(&["--source", "registry", "verify", &image]);
    assert_eq!(out.ok().trim(), format!("{gun}@{pushed}"));
    let lookup = consumer
        .run(&["--source", "registry", "--output", "json", "lookup", &image])
        .json();
    assert_eq!(lookup["digest"], pushed);
    // A bundle written from the registry copy verifies offline on a third machine.
    let bundle = consumer.trust_dir.with_file_name("app.bundle.json");
    consumer
        .run(&[
            "--source",
            "registry",
            "export",
            &gun,
            "-o",
            bundle.to_str().unwrap(),
        ])
        .ok();
    let offline = v.elsewhere();
    let out = offline.run(&[
        "verify",
        &image,
        "--no-registry",
        "--bundle",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(out.ok().trim(), format!("{gun}@{pushed}"));
    let oci = v.elsewhere();
    let out = oci.run(&["--server", &format!("oci://{elsewhere}"), "verify", &image]);
    assert_eq!(out.ok().trim(), format!("{gun}@{pushed}"));
    // The server alone cannot answer; server,registry falls back and says so.
    consumer
        .run(&["verify", &image])
        .fails(1, &["cannot reach the vouch server"]);
    let fell = consumer.run(&["--source", "server,registry", "verify", &image]);
    assert_eq!(fell.ok().trim(), format!("{gun}@{pushed}"));
    assert!(
        fell.stderr.contains("is unreachable")
            && fell
                .stderr
                .contains(&format!("the registry copy {gun}:{TRUST_TAG}")),
        "{fell:?}"
    );

    // Another image pushed under the signed tag: refused from the registry alone too.
    let repushed = ImageLayout::new("second").push(&registry, "app:v1");
    let line = consumer
        .run(&["--source", "registry", "verify", &image])
        .fails(3, &["is not the signed one"])
        .to_owned();
    assert!(line.contains(&repushed) && line.contains(&pushed), "{line}");
}

#[test]
fn promoted_images_keep_their_trust() {
    let a = Registry::start();
    let b = Registry::start();
    let mut server = Server::start();
    let v = Vouch::new(&server);
    let gun = format!("{}/team/app", a.host());
    let image = format!("{gun}:v1");
    let layout = ImageLayout::multi_platform("app", &["linux/amd64", "linux/arm64"]);
    let signed = layout.push(&a, "team/app:v1");
    v.run(&["init", &gun]).ok();
    v.run(&["sign", &image]).ok();
    // An unsigned tag is never promoted.
    layout.push(&a, "team/app:v2");
    let prod = format!("{}/prod/app", b.host());
    v.run(&["promote", &format!("{gun}:v2"), &prod])
        .fails(3, &["is not trusted, so it was not promoted"]);
    assert_eq!(b.manifest_digest("prod/app", "v2"), None);
    // Trust is per tag name: another tag is refused, with the reason.
    v.run(&["promote", &image, &format!("{prod}:latest")])
        .fails(1, &["is not the source tag v1", "signed for nothing"]);

    let out = v
        .run(&["--output", "json", "promote", &image, &prod])
        .json();
    assert_eq!(out["digest"], signed);
    assert_eq!(out["destination"], format!("{prod}:v1@{signed}"));
    assert_eq!(out["trust"]["pushed"], true);
    assert_eq!(out["trust_from"], gun);
    // Another registry: every config and layer streamed across; the index and two images.
    assert!(out["blobs"]["pushed"].as_u64().unwrap() >= 2, "{out}");
    assert_eq!(out["blobs"]["mounted"], 0);
    assert_eq!(out["manifests"], 3);
    // The index and every platform's manifest, byte-identical at B.
    assert_eq!(
        b.manifest_digest("prod/app", "v1").as_deref(),
        Some(signed.as_str())
    );
    for p in layout.platforms() {
        assert_eq!(
            b.manifest_digest("prod/app", &p.digest).as_deref(),
            Some(p.digest.as_str()),
            "{}",
            p.platform
        );
    }
    let pin = out["pin"].as_str().unwrap();
    assert!(
        pin.contains(&format!("gun = \"{prod}\""))
            && pin.contains(&format!("trust_from = \"{gun}\"")),
        "{pin}"
    );
    let dir = tempfile::tempdir().unwrap();
    let pins = dir.path().join("pins.toml");
    std::fs::write(&pins, pin).unwrap();
    let pins = pins.to_str().unwrap();
    // With the pin mapped, promote no longer prints it.
    let again = v
        .run(&[
            "--trust-pins",
            pins,
            "--output",
            "json",
            "promote",
            &image,
            &prod,
        ])
        .json();
    assert!(again["pin"].is_null(), "{again}");
    assert_eq!(again["trust"]["pushed"], false);
    assert_eq!(again["blobs"]["pushed"], 0);
    assert_eq!(again["blobs"]["present"], out["blobs"]["pushed"]);
    // Within one registry the blobs are mounted, not copied.
    let stage = format!("{}/stage/app", a.host());
    let staged = v
        .run(&["--output", "json", "promote", &image, &stage])
        .json();
    assert_eq!(staged["blobs"]["pushed"], 0);
    assert_eq!(staged["blobs"]["mounted"], out["blobs"]["pushed"]);
    assert_eq!(
        a.manifest_digest("stage/app", "v1").as_deref(),
        Some(signed.as_str())
    );

    // skopeo copies the image and its trust tag the same way (from A, mirrored there).
    v.run(&["mirror", &gun]).ok();
    let copy = format!("{}/copy/app", b.host());
    let o = skopeo_copy(
        &["--all", "--preserve-digests"],
        &image,
        &format!("{copy}:v1"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = skopeo_copy(
        &["--preserve-digests"],
        &format!("{gun}:{TRUST_TAG}"),
        &format!("{copy}:{TRUST_TAG}"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        b.manifest_digest("copy/app", TRUST_TAG),
        a.manifest_digest("team/app", TRUST_TAG)
    );
    let copy_pins = dir.path().join("copy.toml");
    std::fs::write(
        &copy_pins,
        format!("[[pin]]\ngun = \"{copy}\"\ntrust_from = \"{gun}\"\n"),
    )
    .unwrap();

    server.kill();
    // No server: verified at B with the pin, from B alone.
    let consumer = v.elsewhere();
    let promoted = format!("{prod}:v1");
    let out = consumer.run(&[
        "--trust-pins",
        pins,
        "--source",
        "registry",
        "verify",
        &promoted,
    ]);
    assert_eq!(out.ok().trim(), format!("{prod}@{signed}"));
    let out = consumer.run(&[
        "--trust-pins",
        copy_pins.to_str().unwrap(),
        "--source",
        "registry",
        "verify",
        &format!("{copy}:v1"),
    ]);
    assert_eq!(out.ok().trim(), format!("{copy}@{signed}"));
    // Without the mapping: refused, saying whose trust it is and what to do.
    let fresh = v.elsewhere();
    fresh
        .run(&["--source", "registry", "verify", &promoted])
        .fails(1, &[&format!("this is the trust of {gun}"), "trust_from"]);
}

#[test]
fn attacks_through_the_registry_are_refused() {
    let registry = Registry::start();
    let server = Server::start();
    let v = Vouch::new(&server);
    let gun = format!("{}/app", registry.host());
    let other = format!("{}/other", registry.host());
    ImageLayout::new("one").push(&registry, "app:v1");
    ImageLayout::new("two").push(&registry, "app:v2");
    ImageLayout::new("three").push(&registry, "other:v1");
    v.run(&["init", &gun]).ok();
    v.run(&["init", &other]).ok();
    v.run(&["sign", &format!("{gun}:v1")]).ok();
    v.run(&["sign", &format!("{other}:v1")]).ok();
    v.run(&["mirror", &other]).ok();
    let old = v.run(&["--output", "json", "mirror", &gun]).json();
    let old_bytes = artifact(&registry, "app", old["digest"].as_str().unwrap());
    v.run(&["sign", &format!("{gun}:v2")]).ok();
    let new = v.run(&["--output", "json", "mirror", &gun]).json();
    let new_digest = new["digest"].as_str().unwrap().to_owned();
    let mirrors = format!("{}/mirrors/app", registry.host());
    let newest = v
        .run(&["--output", "json", "mirror", &gun, "--to", &mirrors])
        .json();
    let new_bytes = artifact(&registry, "app", &new_digest);
    // The newer artifact names the one it replaced.
    let parsed = TrustManifest::parse(&new_bytes).unwrap();
    assert_eq!(
        parsed.previous().map(Digest::as_str),
        old["digest"].as_str()
    );

    let consumer = v.elsewhere();
    let v2 = format!("{gun}:v2");
    consumer.run(&["--source", "registry", "verify", &v2]).ok();

    // Rollback: the tag moved back to the older artifact. This consumer's cache (per
    // repository, kept across runs) holds the newer state: refused.
    retag_trust(&registry, "app", &old_bytes);
    let line = consumer
        .run(&["--source", "registry", "verify", &format!("{gun}:v1")])
        .fails(
            3,
            &[
                "rollback attempt: timestamp version",
                "older than the trusted version",
            ],
        )
        .to_owned();
    assert!(line.contains(&gun), "{line}");
    // A mirror reading that older copy (a machine with no cache yet) does not roll the
    // newer copy elsewhere back: nothing pushed, and it says why.
    let stale = v.elsewhere();
    let older = stale
        .run(&[
            "--source", "registry", "--output", "json", "mirror", &gun, "--to", &mirrors,
        ])
        .json();
    assert_eq!(older["pushed"], false, "{older}");
    let held = older["newer_held"]["timestamp_held"].as_u64().unwrap();
    let read = older["newer_held"]["timestamp_read"].as_u64().unwrap();
    assert!(held > read, "{older}");
    assert_eq!(
        registry
            .manifest_digest("mirrors/app", TRUST_TAG)
            .as_deref(),
        newest["digest"].as_str()
    );
    let said = stale.run(&["--source", "registry", "mirror", &gun, "--to", &mirrors]);
    assert!(
        said.ok().contains(&format!(
            "the registry holds a newer state (timestamp {held} > {read}): nothing pushed"
        )),
        "{said:?}"
    );

    // A layer swapped for another repository's targets file.
    let mut m: serde_json::Value = serde_json::from_slice(&new_bytes).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_slice(&artifact(&registry, "other", TRUST_TAG)).unwrap();
    let targets_of = |m: &serde_json::Value| {
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .position(|l| {
                l["annotations"]["tuf.io/filename"]
                    .as_str()
                    .unwrap()
                    .ends_with(".targets.json")
            })
            .unwrap()
    };
    let (mine, their) = (targets_of(&m), targets_of(&theirs));
    let swapped = theirs["layers"][their].clone();
    let name = m["layers"][mine]["annotations"].clone();
    m["layers"][mine] = swapped;
    m["layers"][mine]["annotations"] = name;
    let d = Digest::parse(m["layers"][mine]["digest"].as_str().unwrap()).unwrap();
    assert!(client()
        .mount_blob(registry.host(), "app", &d, "other")
        .unwrap());
    retag_trust(&registry, "app", &serde_json::to_vec(&m).unwrap());
    let fresh = v.elsewhere();
    fresh
        .run(&["--source", "registry", "verify", &v2])
        .fails(3, &["failed verification"]);
    // A consumer that already trusts this targets version never reads the swapped file:
    // its answer is still the signed one.
    let signed_v2 = registry.manifest_digest("app", "v2").unwrap();
    assert_eq!(
        consumer
            .run(&["--source", "registry", "verify", &v2])
            .ok()
            .trim(),
        format!("{gun}@{signed_v2}")
    );

    // Back to the current artifact: verified; years later the copy has expired.
    retag_trust(&registry, "app", &new_bytes);
    consumer.run(&["--source", "registry", "verify", &v2]).ok();
    run_at(&consumer, "+400d", &["--source", "registry", "verify", &v2])
        .fails(3, &["timestamp metadata expired at"]);
}

#[test]
fn credentials_for_a_registry_with_basic_authentication() {
    let registry = Registry::start_with(RegistryAuth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    let server = Server::start();
    let v = Vouch::new(&server);
    let gun = format!("{}/app", registry.host());
    let image = format!("{gun}:v1");
    let pushed = ImageLayout::new("auth").push(&registry, "app:v1");
    v.run(&["init", &gun]).ok();
    let login = ["--registry-username", "alice", "--registry-password-stdin"];
    let mut args = vec!["sign", &image];
    args.extend(login);
    run_with_stdin(&v, &args, "s3cret\n").ok();
    // Without credentials the registry refuses the push.
    let refused = v.run(&["mirror", &gun]);
    assert_eq!(refused.code, 1, "{refused:?}");
    let mut args = vec!["--output", "json", "mirror", &gun];
    args.extend(login);
    let m = run_with_stdin(&v, &args, "s3cret\n").json();
    assert_eq!(m["pushed"], true);
    let consumer = v.elsewhere();
    let mut args = vec!["--source", "registry", "verify", &image];
    args.extend(login);
    let out = run_with_stdin(&consumer, &args, "s3cret\n");
    assert_eq!(out.ok().trim(), format!("{gun}@{pushed}"));
}

/// The docker config at `dir` with `user:password` for `registry`.
fn docker_config(dir: &std::path::Path, registry: &str, user: &str, password: &str) {
    use base64ct::Encoding as _;
    let auth = base64ct::Base64::encode_string(format!("{user}:{password}").as_bytes());
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
}

/// `promote` from A to B, each with its own login: A's in the docker config, B's on the
/// command line. The password on stdin is for the registry written to (B) and never reaches
/// A or A's token service; a command reaching two registries with neither written to is
/// told to say which registry the password is for.
#[test]
fn command_line_credentials_go_to_one_registry() {
    let a = Registry::start_with(RegistryAuth::Token {
        user: "carol".into(),
        password: "a-pass".into(),
        anonymous: vouch_testkit::registry::Anonymous::Nothing,
    });
    let b = Registry::start_with(RegistryAuth::Basic {
        user: "bob".into(),
        password: "b-pass".into(),
    });
    let server = Server::start();
    let mut v = Vouch::new(&server);
    let config = tempfile::tempdir().unwrap();
    docker_config(config.path(), a.host(), "carol", "a-pass");
    v.set("DOCKER_CONFIG", config.path().to_str().unwrap());
    let gun = format!("{}/team/app", a.host());
    let image = format!("{gun}:v1");
    let signed = ImageLayout::new("promoted").push(&a, "team/app:v1");
    v.run(&["init", &gun]).ok();
    v.run(&["sign", &image]).ok();
    let prod = format!("{}/prod/app", b.host());
    let login = ["--registry-username", "bob", "--registry-password-stdin"];
    let mut args = vec!["--output", "json", "promote", &image, &prod];
    args.extend(login);
    let out = run_with_stdin(&v, &args, "b-pass\n").json();
    assert_eq!(out["trust"]["pushed"], true, "{out}");
    assert_eq!(
        b.manifest_digest("prod/app", "v1").as_deref(),
        Some(signed.as_str())
    );
    // A's token service saw A's login only (from the docker config), never B's password.
    let asked = a.token_requests();
    assert!(asked.iter().any(|t| t.sent_credentials()), "{asked:?}");
    for t in &asked {
        use base64ct::Encoding as _;
        let Some(auth) = &t.authorization else {
            continue;
        };
        let basic = auth.strip_prefix("Basic ").unwrap();
        let sent = base64ct::Base64::decode_vec(basic).unwrap();
        assert_eq!(String::from_utf8(sent).unwrap(), "carol:a-pass");
    }

    // Reading trust at B and the image at A, with no registry written to: which one the
    // password is for must be said.
    let consumer = v.elsewhere();
    let oci = format!("oci://{prod}");
    let mut args = vec!["--server", &oci, "verify", &image];
    args.extend(login);
    run_with_stdin(&consumer, &args, "b-pass\n")
        .fails(1, &["reaches two registries", "--registry-host"]);
    let host = b.host().to_owned();
    args.extend(["--registry-host", &host]);
    let out = run_with_stdin(&consumer, &args, "b-pass\n");
    assert_eq!(out.ok().trim(), format!("{gun}@{signed}"));
}

/// The older root versions in a copy are served, not held by the reader: a copy whose
/// `1.root.json` was substituted (another key's root, as whoever can push to the registry
/// could) is refused before anything is mirrored or exported from it.
#[test]
fn a_substituted_older_root_is_not_copied() {
    use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer as _};
    use vouch_tuf::metadata::{Key, Metadata, Root};
    use vouch_tuf::time::Timestamp;
    use vouch_tuf::types::TopLevelRole;

    let registry = Registry::start();
    let server = Server::start();
    let v = Vouch::new(&server);
    let gun = format!("{}/app", registry.host());
    ImageLayout::new("roots").push(&registry, "app:v1");
    v.run(&["init", &gun]).ok();
    v.run(&["sign", &format!("{gun}:v1")]).ok();
    v.run(&["rotate", &gun, "targets"]).ok();
    let mirrored = v.run(&["--output", "json", "mirror", &gun]).json();
    assert!(
        mirrored["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "2.root.json"),
        "{mirrored}"
    );

    let evil = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let mut root = Root::new(Timestamp::from_unix(4_000_000_000));
    for role in TopLevelRole::ALL {
        root.add_key(role, Key::from_verifying_key(&evil.verifying_key()));
    }
    root.set_gun(&gun);
    let forged = Metadata::signed_by(root, &[&evil]).unwrap().to_bytes();
    let d = Digest::sha256_of(&forged);
    client()
        .push_blob(registry.host(), "app", &d, &forged)
        .unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&artifact(&registry, "app", TRUST_TAG)).unwrap();
    let layer = m["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| l["annotations"]["tuf.io/filename"] == "1.root.json")
        .unwrap();
    use base64ct::Encoding as _;
    layer["digest"] = d.as_str().into();
    layer["size"] = forged.len().into();
    layer["data"] = base64ct::Base64::encode_string(&forged).into();
    retag_trust(&registry, "app", &serde_json::to_vec(&m).unwrap());

    // This machine trusts root version 2 already (its refresh never reads 1.root.json), and
    // pinned the real first root: the substitute is refused, and nothing is pushed.
    let mirrors = format!("{}/mirrors/app", registry.host());
    v.run(&["--source", "registry", "mirror", &gun, "--to", &mirrors])
        .fails(
            1,
            &[&format!(
                "1.root.json of {gun} is not the root pinned for it"
            )],
        );
    assert_eq!(registry.manifest_digest("mirrors/app", TRUST_TAG), None);
    let bundle = v.trust_dir.with_file_name("app.bundle.json");
    v.run(&[
        "--source",
        "registry",
        "export",
        &gun,
        "-o",
        bundle.to_str().unwrap(),
    ])
    .fails(1, &["is not the root pinned for it"]);
    assert!(!bundle.exists());
    // The server's own files still chain: mirrored from there, the copy is repaired.
    let repaired = v
        .run(&["--output", "json", "mirror", &gun, "--to", &mirrors])
        .json();
    assert_eq!(repaired["pushed"], true);
}
