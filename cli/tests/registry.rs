//! End-to-end with a real OCI registry: Debian's `docker-registry` on a loopback port and
//! images pushed to it with Debian's `skopeo` from OCI image layouts this test writes. `vouch
//! sign HOST/APP:TAG` signs what the registry serves; `vouch verify` checks the registry still
//! serves the signed digest, and says so when the tag was pushed again; several images are
//! signed with one publish per repository, with a progress line on a terminal.
//!
//! The registry and the images come from `vouch_testkit::registry`. Needs
//! `/usr/bin/docker-registry` and `skopeo` (`scripts/test` installs both); without them the
//! tests fail, saying what to install.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use common::{Server, Vouch};
use vouch_testkit::registry::{ImageLayout, Registry, OCI_MANIFEST};

fn targets_version(v: &Vouch, gun: &str) -> u64 {
    let status = v.run(&["--output", "json", "status", gun]).json();
    let roles = status["roles"].as_array().unwrap();
    let t = roles.iter().find(|r| r["role"] == "targets").unwrap();
    t["version"].as_u64().unwrap()
}

#[test]
fn sign_and_verify_against_a_real_registry() {
    let registry = Registry::start();
    let server = Server::start();
    let v = Vouch::new(&server);
    let gun = format!("{}/app", registry.host());
    let image = format!("{gun}:v1");

    let first = ImageLayout::new("first");
    let pushed = first.push(&registry, "app:v1");

    v.run(&["init", &gun]).ok();
    let signed = v.run(&["--output", "json", "sign", &image]).json();
    assert_eq!(signed["digest"], pushed);
    assert_eq!(signed["length"], first.length());
    assert_eq!(signed["media_type"], OCI_MANIFEST);
    assert_eq!(signed["target"], "v1");
    let lookup = v.run(&["--output", "json", "lookup", &image]).json();
    assert_eq!(lookup["digest"], pushed);
    assert_eq!(lookup["custom"]["mediaType"], OCI_MANIFEST);

    // verify asks the registry and prints the pushed digest.
    let out = v.run(&["verify", &image]);
    assert_eq!(out.ok().trim(), format!("{gun}@{pushed}"));
    let j = v.run(&["--output", "json", "verify", &image]).json();
    assert_eq!(j["trusted"], true);
    assert_eq!(j["registry_digest"], pushed);
    // A bare digest the registry serves, signed without --length: the registry gives it.
    v.run(&["verify", &format!("{gun}@{pushed}")]).ok();

    // The tag is pushed again with another image: the registry's digest is not the signed one.
    let second = ImageLayout::new("second");
    let repushed = second.push(&registry, "app:v1");
    assert_ne!(repushed, pushed);
    let refused = v.run(&["verify", &image]);
    let line = refused.fails(
        3,
        &[
            "not trusted",
            "the registry's digest",
            "is not the signed one",
        ],
    );
    assert!(line.contains(&repushed) && line.contains(&pushed), "{line}");
    let j = v.run(&["--output", "json", "verify", &image]);
    assert_eq!(j.code, 3);
    assert_eq!(j.json()["trusted"], false);
    // The trust data alone still says what was signed.
    let out = v.run(&["verify", &image, "--no-registry"]);
    assert_eq!(out.ok().trim(), format!("{gun}@{pushed}"));

    // A tag the registry does not have: refused, nothing published.
    let before = targets_version(&v, &gun);
    v.run(&["sign", &format!("{gun}:v9")])
        .fails(1, &["cannot resolve", "has no manifest v9 of app (404)"]);
    assert_eq!(targets_version(&v, &gun), before);

    // Signing the new image, and a bare digest by its registry size.
    v.run(&["sign", &image]).ok();
    assert_eq!(
        v.run(&["verify", &image]).ok().trim(),
        format!("{gun}@{repushed}")
    );
    let bare = v
        .run(&["--output", "json", "sign", &format!("{gun}@{pushed}")])
        .json();
    assert_eq!(bare["target"], pushed);
    assert_eq!(bare["length"], first.length());
}

#[test]
fn several_images_one_publish_per_repository() {
    let registry = Registry::start();
    let server = Server::start();
    let v = Vouch::new(&server);
    let app = format!("{}/app", registry.host());
    let tools = format!("{}/org/tools", registry.host());

    let a = ImageLayout::new("a");
    let b = ImageLayout::new("b");
    let da = a.push(&registry, "app:v1");
    a.push(&registry, "app:v1.0");
    let db = b.push(&registry, "org/tools:v3");

    v.run(&["init", &app]).ok();
    v.run(&["init", &tools]).ok();
    let app_before = targets_version(&v, &app);
    let tools_before = targets_version(&v, &tools);

    // One missing image: nothing at all is signed.
    v.run(&["sign", &format!("{app}:v1"), &format!("{tools}:missing")])
        .fails(1, &["missing"]);
    assert_eq!(targets_version(&v, &app), app_before);

    let images = [
        format!("{app}:v1"),
        format!("{app}:v1.0"),
        format!("{tools}:v3"),
    ];
    let mut args = vec!["--output", "json", "sign"];
    args.extend(images.iter().map(String::as_str));
    let out = v.run(&args);
    assert!(
        !out.stderr.contains('\r'),
        "no progress line without a terminal: {out:?}"
    );
    let signed = out.json();
    let signed = signed["signed"].as_array().unwrap();
    assert_eq!(signed.len(), 3);
    assert_eq!(signed[0]["digest"], da);
    assert_eq!(signed[1]["digest"], da);
    assert_eq!(signed[2]["digest"], db);
    // One publish per repository: both tags of app went up in one targets version.
    assert_eq!(signed[0]["version"], app_before + 1);
    assert_eq!(signed[1]["version"], app_before + 1);
    assert_eq!(signed[2]["version"], tools_before + 1);
    assert_eq!(targets_version(&v, &app), app_before + 1);
    for image in &images {
        v.run(&["verify", image]).ok();
    }

    // On a terminal, a progress line is drawn on stderr (and cleared) while resolving.
    let c = v.command(&["sign", &images[0], &images[2]]);
    let mut shell = String::new();
    for (k, val) in c.get_envs() {
        if let Some(val) = val {
            shell.push_str(&format!(
                "{}='{}' ",
                k.to_string_lossy(),
                val.to_string_lossy().replace('\'', r"'\''")
            ));
        }
    }
    shell.push_str(&format!("'{}'", c.get_program().to_string_lossy()));
    for a in c.get_args() {
        shell.push_str(&format!(" '{}'", a.to_string_lossy()));
    }
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &format!("env -i {shell}"), "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("run script(1) for a terminal");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("] 1/2 resolving"), "{screen:?}");
    assert!(screen.contains("\r\x1b[2K"), "{screen:?}");
    assert!(
        screen.contains(&format!("signed {app}:v1 ->")),
        "{screen:?}"
    );
}
