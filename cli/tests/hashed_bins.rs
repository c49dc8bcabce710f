//! End-to-end: a repository made with `vouch init --hashed-bins 16`. Tags go to the bin
//! their name hashes to; a sign fetches and re-signs only that bin; list, verify, status,
//! unsign and renew work across the bins; a tag signed into the wrong bin is refused; and
//! rotating the targets key moves every bin to the new key, after which metadata the old
//! key signs is no longer accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{digest, Server, Vouch};
use vouch_tuf::metadata::{path_hash_prefix_matches, Metadata, Targets};

const GUN: &str = "registry.example.com/org/many";

/// The bin of 16 that `tag` belongs in.
fn bin_of(tag: &str) -> String {
    let p = (0..16)
        .map(|i| format!("{i:x}"))
        .find(|p| path_hash_prefix_matches(p, tag))
        .unwrap();
    format!("bins-{p}")
}

/// The current metadata of `role` as the server serves it.
fn fetch(server: &Server, role: &str) -> Vec<u8> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/v2/{GUN}/_trust/tuf/{role}.json", server.base))
        .bearer_auth(&server.admin_token)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{role}");
    resp.bytes().unwrap().to_vec()
}

fn version_of(server: &Server, role: &str) -> u64 {
    Metadata::<Targets>::from_bytes_as(role, &fetch(server, role))
        .unwrap()
        .version()
        .get()
}

/// GET requests for hashed-bin files in the server's request log.
fn bin_fetches(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("GET") && l.contains("bins-"))
        .count()
}

fn sign(v: &Vouch, tag: &str, n: u8, role: Option<&str>) -> common::Run {
    let image = format!("{GUN}:{tag}");
    let d = digest(n);
    let mut args = vec![
        "--output", "json", "sign", &image, "--digest", &d, "--length", "7",
    ];
    if let Some(r) = role {
        args.extend(["--role", r]);
    }
    v.run(&args)
}

#[test]
fn hashed_bins_route_sign_list_rotate() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("server.log");
    let server = Server::start_logging_requests(&log);
    let owner = Vouch::new(&server);

    owner
        .run(&["init", GUN, "--hashed-bins", "10"])
        .fails(1, &["--hashed-bins 10", "16, 256 or 4096"]);
    let init = owner
        .run(&["--output", "json", "init", GUN, "--hashed-bins", "16"])
        .json();
    assert_eq!(init["hashed_bins"], 16);
    let old_key = init["targets_key"].as_str().unwrap().to_owned();

    let list = owner
        .run(&["--output", "json", "delegation", "list", GUN])
        .json();
    let delegations = list["delegations"].as_array().unwrap();
    assert_eq!(delegations.len(), 16);
    for (i, d) in delegations.iter().enumerate() {
        assert_eq!(d["role"], format!("bins-{i:x}"));
        assert_eq!(
            d["path_hash_prefixes"],
            serde_json::json!([format!("{i:x}")])
        );
        assert_eq!(d["terminating"], true);
        assert_eq!(d["keyids"], serde_json::json!([old_key]));
        assert_eq!(d["delegated_by"], "targets");
    }
    for i in 0..16 {
        assert_eq!(version_of(&server, &format!("bins-{i:x}")), 1);
    }

    // Each sign goes to the tag's bin and fetches that bin only.
    let tags = ["v1", "v2", "v3", "latest", "release-2024"];
    let mut bumped = std::collections::BTreeMap::new();
    for (n, tag) in tags.iter().enumerate() {
        let before = bin_fetches(&log);
        let signed = sign(&owner, tag, n as u8 + 1, None).json();
        assert_eq!(bin_fetches(&log) - before, 1, "signing {tag}");
        assert_eq!(signed["role"], bin_of(tag), "{signed}");
        *bumped.entry(bin_of(tag)).or_insert(1u64) += 1;
        assert_eq!(signed["version"], bumped[&bin_of(tag)]);
    }
    // Only the bins signed into changed; the top-level targets did not.
    assert_eq!(version_of(&server, "targets"), 1);
    for i in 0..16 {
        let bin = format!("bins-{i:x}");
        let want = bumped.get(&bin).copied().unwrap_or(1);
        assert_eq!(version_of(&server, &bin), want, "{bin}");
    }

    // Another machine, trusting on first use, verifies every tag through its bin.
    let other = owner.elsewhere();
    for (n, tag) in tags.iter().enumerate() {
        for client in [&owner, &other] {
            let v = client
                .run(&[
                    "--output",
                    "json",
                    "verify",
                    &format!("{GUN}:{tag}"),
                    "--no-registry",
                ])
                .json();
            assert_eq!(v["pinned"], format!("{GUN}@{}", digest(n as u8 + 1)));
            assert_eq!(v["role_path"], serde_json::json!(["targets", bin_of(tag)]));
        }
    }
    let before = bin_fetches(&log);
    let listed = owner.run(&["--output", "json", "list", GUN]).json();
    assert_eq!(bin_fetches(&log) - before, 16, "list fetches every bin");
    let mut rows: Vec<(String, String)> = listed["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rows.sort();
    let mut want: Vec<(String, String)> = tags.iter().map(|t| (t.to_string(), bin_of(t))).collect();
    want.sort();
    assert_eq!(rows, want);

    // Status summarises the bins in one row.
    let status = owner.run(&["--output", "json", "status", GUN]).json();
    let roles = status["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 5, "{status}");
    let bins = &roles[4];
    assert_eq!(bins["role"], "bins-*");
    assert_eq!(bins["roles"], 16);
    assert_eq!(bins["min_version"], 1);
    assert_eq!(bins["version"], *bumped.values().max().unwrap());
    assert_eq!(bins["keyids"], serde_json::json!([old_key]));
    assert_eq!(bins["local_keys"], 1);
    let text = owner.run(&["status", GUN]);
    assert!(text.ok().contains("bins-* (16 roles)"), "{}", text.stdout);
    assert_eq!(text.stdout.matches("bins-").count(), 1, "{}", text.stdout);

    // A tag signed into a bin its name does not hash to is refused, and names its bin.
    let wrong = (0..16)
        .map(|i| format!("bins-{i:x}"))
        .find(|b| *b != bin_of("v9"))
        .unwrap();
    sign(&owner, "v9", 9, Some(&wrong)).fails(
        1,
        &[
            &format!("v9 is outside the targets delegated to {wrong}"),
            &format!("it belongs in {}", bin_of("v9")),
        ],
    );
    // Naming the right bin works (and `--role targets` still means targets).
    let signed = sign(&owner, "v9", 9, Some(&bin_of("v9"))).json();
    assert_eq!(signed["role"], bin_of("v9"));
    let signed = sign(&owner, "top", 10, Some("targets")).json();
    assert_eq!(signed["role"], "targets");

    // Unsign removes the tag from its bin.
    let removed = owner
        .run(&["--output", "json", "unsign", &format!("{GUN}:v2")])
        .json();
    assert_eq!(removed["role"], bin_of("v2"));
    owner
        .run(&["verify", &format!("{GUN}:v2"), "--no-registry"])
        .fails(3, &["not trusted", "v2"]);
    owner
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .ok();

    // Renewing a bin by name.
    let bin = bin_of("v1");
    let before = version_of(&server, &bin);
    let renewed = owner
        .run(&["--output", "json", "renew", GUN, "--role", &bin])
        .json();
    assert_eq!(renewed["renewed"][0]["role"], bin);
    assert_eq!(renewed["renewed"][0]["version"], before + 1);

    // Several bins renewed at once go up in one publish.
    let (a, b) = ("bins-0", "bins-1");
    let (va, vb) = (version_of(&server, a), version_of(&server, b));
    let renewed = owner
        .run(&["--output", "json", "renew", GUN, "--role", a, "--role", b])
        .json();
    assert_eq!(
        renewed["renewed"],
        serde_json::json!([{"role": a, "version": va + 1}, {"role": b, "version": vb + 1}])
    );

    // A delegation after the bins would never be reached: refused.
    owner
        .run(&[
            "delegation",
            "add",
            GUN,
            "releases",
            "--key",
            &old_key,
            "--paths",
            "v*",
        ])
        .fails(1, &["hashed bins", "never reach targets/releases"]);

    // Rotating the targets key moves every bin to the new key in one update.
    let old_bin = fetch(&server, &bin);
    let rotated = owner
        .run(&["--output", "json", "rotate", GUN, "targets"])
        .json();
    assert_eq!(rotated["bins_resigned"], 16);
    let new_key = rotated["keyid"].as_str().unwrap().to_owned();
    let list = owner
        .run(&["--output", "json", "delegation", "list", GUN])
        .json();
    for d in list["delegations"].as_array().unwrap() {
        assert_eq!(d["keyids"], serde_json::json!([new_key]));
    }
    for (n, tag) in tags.iter().enumerate() {
        if *tag == "v2" {
            continue;
        }
        for client in [&owner, &other] {
            let out = client.run(&["verify", &format!("{GUN}:{tag}"), "--no-registry"]);
            assert_eq!(out.ok().trim(), format!("{GUN}@{}", digest(n as u8 + 1)));
        }
    }
    // The bin as the old key signed it no longer verifies under the new targets.
    let targets =
        Metadata::<Targets>::from_bytes_as("targets", &fetch(&server, "targets")).unwrap();
    let old_md = Metadata::<Targets>::from_bytes_as(&bin, &old_bin).unwrap();
    assert!(targets.signed().verify_delegate(&bin, &old_md).is_err());
    // The old key's holder goes around the CLI: the bin, pointing v1 elsewhere, signed by
    // the old key, published straight to the server. Refused; clients keep the real digest.
    let (status, body) = publish_bin_signed_by(&server, &owner, &old_key, &bin, "v1");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("signature"), "{body}");
    for client in [&owner, &other] {
        let out = client.run(&["verify", &format!("{GUN}:v1"), "--no-registry"]);
        assert_eq!(out.ok().trim(), format!("{GUN}@{}", digest(1)));
    }
    // The new key signs on.
    let signed = sign(&owner, "v10", 11, None).json();
    assert_eq!(signed["role"], bin_of("v10"));
    other
        .run(&["verify", &format!("{GUN}:v10"), "--no-registry"])
        .ok();
}

/// Signs the server's current `bin` with `tag` pointing elsewhere, one version up, with
/// the targets key `keyid` of `holder`'s trust directory, and publishes it with the admin
/// token. Returns the server's status and body.
fn publish_bin_signed_by(
    server: &Server,
    holder: &Vouch,
    keyid: &str,
    bin: &str,
    tag: &str,
) -> (u16, String) {
    let key = holder.private_key(keyid, b"targets secret");
    common::publish_forged(server, GUN, bin, tag, &digest(66), &key)
}

#[test]
fn hashed_bins_with_a_client_held_snapshot() {
    let server = Server::start();
    let owner = Vouch::new(&server);
    owner
        .run(&["init", GUN, "--hashed-bins", "256", "--client-snapshot"])
        .ok();
    for (n, tag) in ["v1", "v2"].iter().enumerate() {
        let signed = sign(&owner, tag, n as u8 + 1, None).json();
        let p = (0..256)
            .map(|i| format!("{i:02x}"))
            .find(|p| path_hash_prefix_matches(p, tag))
            .unwrap();
        assert_eq!(signed["role"], format!("bins-{p}"));
        assert_eq!(signed["version"], 2);
    }
    let other = owner.elsewhere();
    let v = other
        .run(&[
            "--output",
            "json",
            "verify",
            &format!("{GUN}:v2"),
            "--no-registry",
        ])
        .json();
    assert_eq!(v["pinned"], format!("{GUN}@{}", digest(2)));
    let status = owner.run(&["--output", "json", "status", GUN]).json();
    assert_eq!(status["roles"][4]["roles"], 256);
    assert_eq!(status["roles"][4]["version"], 2);
    owner.run(&["unsign", &format!("{GUN}:v1")]).ok();
    other
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .fails(3, &["not trusted"]);
    let rotated = owner
        .run(&["--output", "json", "rotate", GUN, "targets"])
        .json();
    assert_eq!(rotated["bins_resigned"], 256);
    other
        .run(&["verify", &format!("{GUN}:v2"), "--no-registry"])
        .ok();
}
