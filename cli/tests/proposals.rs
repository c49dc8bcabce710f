//! End-to-end: threshold signing by several people, each with a trust directory of their
//! own (their own machine, keys and passphrases), through the server's staged proposals.
//!
//! - three people create a repository whose root needs 2 of their 3 root keys, rotate a root
//!   key and the targets key (a new root and targets in one proposal), then a root key again
//!   with an offline approval: nothing is published before the second approval, and fresh
//!   clients verify afterwards;
//! - a delegated role whose threshold is 2 of 3 keys held by different people: a proposed
//!   tag is invisible to clients until a second key holder approves it;
//! - refusals that change nothing: approving twice with the same key, a stale proposal, a
//!   version that is not newer, a withdrawn proposal, a token scoped to another repository;
//! - an offline approval: export, `approve --file` with no server reachable, import.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::{digest, Server, Vouch};

const GUN: &str = "registry.example.com/org/app";

/// The server's current `file` of `gun` (`root.json`, `targets/prod.json`) as read by a
/// client with the admin token: its status and body.
fn server_file(server: &Server, file: &str) -> (u16, Vec<u8>) {
    let resp = vouch_testkit::trust_api::fetch(
        &reqwest::blocking::Client::new(),
        &server.base,
        GUN,
        file,
        Some(&server.admin_token),
    );
    let status = resp.status().as_u16();
    (status, resp.bytes().unwrap().to_vec())
}

/// The version of the server's current `file`, `None` when it has none.
fn server_version(server: &Server, file: &str) -> Option<u64> {
    let (status, body) = server_file(server, file);
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["signed"]["version"].as_u64()
}

/// The server's proposal `id` of [`GUN`] as a client with the admin token reads it.
fn server_proposal(server: &Server, id: u64) -> serde_json::Value {
    let url = format!(
        "{}/v2/{GUN}/_trust/proposals/{id}",
        server.base.trim_end_matches('/')
    );
    let resp = reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(&server.admin_token)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    serde_json::from_slice(&resp.bytes().unwrap()).unwrap()
}

/// The version of the metadata in the file `path` (a cached role).
fn cached_version(path: &std::path::Path) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["signed"]["version"].as_u64().unwrap()
}

/// A person: a trust directory of their own, with their own passphrases.
fn person(first: &Vouch, name: &str) -> Vouch {
    let mut v = first.elsewhere();
    for role in ["ROOT", "TARGETS", "SNAPSHOT", "PROD", "CI"] {
        v.set(
            &format!("VOUCH_{role}_PASSPHRASE"),
            &format!("{name}'s {role} passphrase"),
        );
    }
    v
}

/// Where test files are written.
fn scratch(v: &Vouch, name: &str) -> PathBuf {
    v.trust_dir.parent().unwrap().join(name)
}

/// `who` makes a key for `role` and hands over its public half as a file.
fn public_key_file(who: &Vouch, role: &str) -> (String, PathBuf) {
    let id = who.generate_key(role);
    let file = scratch(who, &format!("{role}-{id}.pub.json"));
    std::fs::write(&file, who.run(&["key", "export", &id, "--public"]).ok()).unwrap();
    (id, file)
}

fn id_of(v: &serde_json::Value) -> String {
    v["id"].as_u64().expect("a proposal id").to_string()
}

fn keyids_of(v: &Vouch, role: &str) -> Vec<String> {
    let status = v.run(&["--output", "json", "status", GUN]).json();
    let r = status["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == role)
        .unwrap()
        .clone();
    r["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn three_people_create_and_rotate_with_root_two_of_three() {
    let server = Server::start();
    let alice = person(&Vouch::new(&server), "alice");
    let bob = person(&alice, "bob");
    let carol = person(&alice, "carol");

    // Each makes a root key on their own machine; bob and carol hand over public halves.
    let a = alice.generate_key("root");
    let (b, b_file) = public_key_file(&bob, "root");
    let (c, c_file) = public_key_file(&carol, "root");

    // Alice creates the repository with the three root keys, 2 of 3: a proposal.
    let init = alice
        .run(&[
            "--output",
            "json",
            "init",
            GUN,
            "--root-key",
            &a,
            "--root-key",
            b_file.to_str().unwrap(),
            "--root-key",
            c_file.to_str().unwrap(),
            "--root-threshold",
            "2",
        ])
        .fails(1, &["needs 2 root signatures", "--propose"])
        .to_owned();
    assert!(init.contains("nothing was created"), "{init}");
    let proposed = alice
        .run(&[
            "--output",
            "json",
            "init",
            GUN,
            "--root-key",
            &a,
            "--root-key",
            b_file.to_str().unwrap(),
            "--root-key",
            c_file.to_str().unwrap(),
            "--root-threshold",
            "2",
            "--propose",
        ])
        .json();
    assert_eq!(proposed["status"], "pending", "{proposed}");
    assert_eq!(proposed["published"], false);
    let first = id_of(&proposed);
    assert_eq!(server_version(&server, "root.json"), None);

    // A pin file that covers the repository with other keys: the first root does not
    // satisfy it, and bob signs nothing.
    let stranger = person(&alice, "stranger");
    let (_, stranger_file) = public_key_file(&stranger, "root");
    let pins = scratch(&bob, "pins.toml");
    std::fs::write(
        &pins,
        format!(
            "[[pin]]\ngun = \"registry.example.com/org/**\"\nroot_keys = [{:?}]\nthreshold = 1\n",
            stranger_file.to_str().unwrap()
        ),
    )
    .unwrap();
    bob.run(&[
        "--trust-pins",
        pins.to_str().unwrap(),
        "approve",
        GUN,
        &first,
        "--yes",
    ])
    .fails(1, &["the proposed first root", "refusing to sign it"]);
    assert_eq!(server_version(&server, "root.json"), None);

    // Bob sees what he signs, then signs: published.
    let out = bob.run(&["approve", GUN, &first, "--yes"]);
    let text = out.ok();
    assert!(
        text.contains(&format!(
            "FIRST root of {GUN}: nothing to compare with — check every key"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("root: key {b} added")), "{text}");
    assert!(text.contains("root: threshold 2"), "{text}");
    assert!(
        text.contains(&format!(
            "approved #{first} for {GUN}: published (every threshold is met"
        )),
        "{text}"
    );
    assert_eq!(server_version(&server, "root.json"), Some(1));

    alice.sign_digest(GUN, "v1", 1, None).ok();
    let early = alice.elsewhere();
    early
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .ok();
    // A trust directory that keeps trusting root version 1 (it is not run again).
    let stale_view = alice.elsewhere();
    stale_view
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .ok();

    // Alice rotates her root key and the targets key: root version 2 and targets in one
    // proposal.
    let old_targets = keyids_of(&alice, "targets");
    let rotation = alice
        .run(&[
            "--output",
            "json",
            "rotate",
            GUN,
            "root",
            "targets",
            "--propose",
        ])
        .json();
    assert_eq!(rotation["status"], "pending", "{rotation}");
    let roles: Vec<&str> = rotation["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["root", "targets"]);
    assert_eq!(rotation["roles"][0]["missing"], 1, "{rotation}");
    let second = id_of(&rotation);
    let text = alice.run(&["proposals", GUN]).ok().to_owned();
    assert!(
        text.contains(&format!("#{second}")) && text.contains("root@2"),
        "{text}"
    );
    // After one approval (the proposer's own), nothing is published, and nothing unpublished
    // is trusted or cached in the proposer's trust directory.
    assert_eq!(server_version(&server, "root.json"), Some(1));
    assert_eq!(cached_version(&alice.cached_root(GUN)), 1);
    assert_eq!(keyids_of(&alice, "targets"), old_targets);
    alice
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .ok();

    // Carol approves: published.
    let done = carol
        .run(&[
            "--output",
            "json",
            "approve",
            "--first-use",
            GUN,
            &second,
            "--yes",
        ])
        .json();
    assert_eq!(done["status"], "published", "{done}");
    assert_eq!(server_version(&server, "root.json"), Some(2));
    assert_ne!(keyids_of(&alice, "targets"), old_targets);
    let root_keys = keyids_of(&alice, "root");
    assert_eq!(root_keys.len(), 3, "{root_keys:?}");
    assert!(root_keys.contains(&b) && root_keys.contains(&c) && !root_keys.contains(&a));
    let a2 = root_keys.into_iter().find(|k| *k != b && *k != c).unwrap();

    // Alice signs with the new targets key; a fourth, fresh trust directory verifies with
    // root version 2, and one that trusted root version 1 walks to it.
    alice.sign_digest(GUN, "v2", 2, None).ok();
    let fourth = person(&alice, "dave");
    let out = fourth.run(&["verify", &format!("{GUN}:v2"), "--no-registry"]);
    assert_eq!(out.ok().trim(), format!("{GUN}@{}", digest(2)));
    let out = fourth.run(&["lookup", &format!("{GUN}:v1")]);
    assert!(out.ok().contains(&digest(1)), "{out:?}");
    early
        .run(&["verify", &format!("{GUN}:v2"), "--no-registry"])
        .ok();

    // Alice replaces her root key again; carol approves on a machine with no network, checked
    // against the root her trust directory verified.
    let r = alice
        .run(&["--output", "json", "rotate", GUN, "root", "--propose"])
        .json();
    assert_eq!(r["status"], "pending", "{r}");
    assert_eq!(server_version(&server, "root.json"), Some(2));
    let exported = scratch(&alice, "root-rotation.json");
    alice
        .run(&[
            "proposals",
            "export",
            GUN,
            &id_of(&r),
            "-o",
            exported.to_str().unwrap(),
        ])
        .ok();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let signed = scratch(&carol, "root-rotation.signed.json");
    let file_args = [
        "approve",
        "--file",
        exported.to_str().unwrap(),
        "-o",
        signed.to_str().unwrap(),
        "--yes",
    ];
    // A trust directory whose trusted root is older than the export's is refused.
    let mut stale_offline = person(&alice, "stale");
    stale_offline.trust_dir = stale_view.trust_dir.clone();
    stale_offline.server = nowhere.clone();
    stale_offline.run(&file_args).fails(
        1,
        &[
            "is not the root this trust directory trusts",
            "nothing was signed",
        ],
    );
    assert!(!signed.exists());
    let mut carol_offline = person(&carol, "carol");
    carol_offline.trust_dir = carol.trust_dir.clone();
    carol_offline.server = nowhere;
    let text = carol_offline.run(&file_args).ok().to_owned();
    assert!(
        !text.contains("not against metadata verified here"),
        "{text}"
    );
    assert!(text.contains(&format!("root: key {a2} removed")), "{text}");
    assert_eq!(server_version(&server, "root.json"), Some(2));
    bob.run(&["proposals", "import", GUN, signed.to_str().unwrap()])
        .ok();
    assert_eq!(server_version(&server, "root.json"), Some(3));
    let root_keys = keyids_of(&fourth, "root");
    assert_eq!(root_keys.len(), 3, "{root_keys:?}");
    assert!(
        root_keys.contains(&b) && root_keys.contains(&c),
        "{root_keys:?}"
    );
    assert!(!root_keys.contains(&a2), "{root_keys:?}");
    early
        .run(&["verify", &format!("{GUN}:v2"), "--no-registry"])
        .ok();
}

/// A repository whose owner delegates `targets/prod` (every tag) to three people's keys,
/// threshold 2; returns the owner and the three.
fn prod_two_of_three(server: &Server) -> (Vouch, [Vouch; 3]) {
    let owner = person(&Vouch::new(server), "owner");
    owner.run(&["init", GUN]).ok();
    let holders = [
        person(&owner, "dave"),
        person(&owner, "erin"),
        person(&owner, "frank"),
    ];
    let mut args = vec![
        "delegation".to_owned(),
        "add".into(),
        GUN.into(),
        "prod".into(),
        "--paths".into(),
        "*".into(),
        "--threshold".into(),
        "2".into(),
    ];
    for h in &holders {
        let (_, file) = public_key_file(h, "prod");
        args.extend(["--key".into(), file.to_str().unwrap().to_owned()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    owner.run(&args).ok();
    (owner, holders)
}

fn propose_tag(who: &Vouch, tag: &str, n: u8) -> String {
    let image = format!("{GUN}:{tag}");
    let d = digest(n);
    let out = who
        .run(&[
            "--output",
            "json",
            "sign",
            &image,
            "--digest",
            &d,
            "--length",
            "7",
            "--role",
            "prod",
            "--propose",
        ])
        .json();
    assert_eq!(out["status"], "pending", "{out}");
    id_of(&out)
}

#[test]
fn a_delegated_role_two_of_three_is_pending_until_approved() {
    let server = Server::start();
    let (owner, [dave, erin, _frank]) = prod_two_of_three(&server);

    let image = format!("{GUN}:v1");
    let d = digest(1);
    // A trust directory holding no key of the role is refused before anything is signed.
    owner
        .run(&[
            "sign",
            &image,
            "--digest",
            &d,
            "--length",
            "7",
            "--role",
            "prod",
            "--propose",
        ])
        .fails(
            1,
            &[
                "cannot propose a change of targets/prod",
                "holds none of its keys",
            ],
        );
    // Where the keys held here meet the threshold, the proposal is published at once.
    let at_once = owner
        .run(&[
            "sign",
            &format!("{GUN}:base"),
            "--digest",
            &digest(9),
            "--length",
            "7",
            "--propose",
        ])
        .ok()
        .to_owned();
    assert!(at_once.contains("published it at once"), "{at_once}");
    owner
        .run(&["verify", &format!("{GUN}:base"), "--no-registry"])
        .ok();
    // Without --propose, one of two keys is refused and says how to propose.
    dave.run(&[
        "sign", &image, "--digest", &d, "--length", "7", "--role", "prod",
    ])
    .fails(1, &["needs 2 of its keys", "--propose"]);

    let text = dave
        .run(&[
            "sign",
            &image,
            "--digest",
            &d,
            "--length",
            "7",
            "--role",
            "prod",
            "--propose",
        ])
        .ok()
        .to_owned();
    assert!(
        text.starts_with("proposed #")
            && text.contains("targets/prod needs 1 more signature")
            && text.contains(&format!("vouch approve {GUN} ")),
        "{text}"
    );
    let id: String = text
        .trim_start_matches("proposed #")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();

    // Pending: clients do not see the tag.
    let client = owner.elsewhere();
    client
        .run(&["verify", &image, "--no-registry"])
        .fails(3, &[]);
    assert_eq!(server_version(&server, "targets/prod.json"), None);

    // Erin looks first (nothing signed), then approves.
    let shown = erin
        .run(&["--output", "json", "proposals", "show", GUN, &id])
        .json();
    assert_eq!(shown["approvable"], true, "{shown}");
    assert_eq!(shown["approvals"].as_array().unwrap().len(), 1);
    assert!(
        shown["changes"][0]["diff"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap() == format!("target v1 added: {d} (7 bytes)")),
        "{shown}"
    );
    let done = erin
        .run(&[
            "--output",
            "json",
            "approve",
            "--first-use",
            GUN,
            &id,
            "--yes",
        ])
        .json();
    assert_eq!(done["status"], "published", "{done}");
    let out = client.run(&["verify", &image, "--no-registry"]);
    assert_eq!(out.ok().trim(), format!("{GUN}@{d}"));
}

#[test]
fn refusals_change_nothing() {
    let other_token = "a-token-for-another-repository";
    let sha = ring::digest::digest(&ring::digest::SHA256, other_token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let server = Server::start_with_config(&format!(
        "[[auth.tokens]]\nname = \"other\"\nsha256 = \"{sha}\"\nscopes = [\"registry.example.com/org/other:pull,push\"]\n"
    ));
    let (owner, [dave, erin, frank]) = prod_two_of_three(&server);
    let unchanged = |id: &str, before: &serde_json::Value, files: &[(u16, Vec<u8>)]| {
        assert_eq!(&server_proposal(&server, id.parse().unwrap()), before);
        for (f, was) in ["root.json", "targets.json", "targets/prod.json"]
            .iter()
            .zip(files)
        {
            assert_eq!(&server_file(&server, f), was, "{f}");
        }
    };
    let files = || {
        ["root.json", "targets.json", "targets/prod.json"]
            .iter()
            .map(|f| server_file(&server, f))
            .collect::<Vec<_>>()
    };

    // Approving twice with the same key.
    let first = propose_tag(&dave, "v1", 1);
    let before = server_proposal(&server, first.parse().unwrap());
    let snapshot = files();
    // A trust directory that never trusted the repository does not start trusting it from
    // the server's word (trust on first use) unless told to.
    let fresh = person(&owner, "fresh");
    fresh.run(&["approve", GUN, &first, "--yes"]).fails(
        1,
        &["has never trusted", "--first-use", "nothing was signed"],
    );
    unchanged(&first, &before, &snapshot);
    dave.run(&["approve", "--first-use", GUN, &first, "--yes"])
        .fails(1, &["already signed", "nothing was signed"]);
    unchanged(&first, &before, &snapshot);

    // A token scoped to another repository may neither list nor approve.
    let mut outsider = erin.elsewhere();
    outsider.token = Some(other_token.to_owned());
    outsider
        .run(&["proposals", GUN])
        .fails(1, &["does not grant push on registry.example.com/org/app"]);
    let mut erin_other = person(&erin, "erin");
    erin_other.trust_dir = erin.trust_dir.clone();
    erin_other.token = Some(other_token.to_owned());
    erin_other
        .run(&["approve", "--first-use", GUN, &first, "--yes"])
        .fails(1, &[]);
    unchanged(&first, &before, &snapshot);

    // A stale proposal: another proposal of the same role is published first.
    let second = propose_tag(&erin, "v2", 2);
    frank
        .run(&["approve", "--first-use", GUN, &second, "--yes"])
        .ok();
    assert_eq!(server_version(&server, "targets/prod.json"), Some(1));
    let before = server_proposal(&server, first.parse().unwrap());
    let snapshot = files();
    let line = frank
        .run(&["approve", "--first-use", GUN, &first, "--yes"])
        .fails(1, &["nothing was signed"])
        .to_owned();
    assert!(
        line.contains("stale") || line.contains("out of date"),
        "{line}"
    );
    unchanged(&first, &before, &snapshot);
    let client = owner.elsewhere();
    client
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .fails(3, &["v1"]);

    // A version that is not newer than the current one: the server refuses to stage it.
    let (_, current) = server_file(&server, "targets/prod.json");
    let url = format!(
        "{}/v2/{GUN}/_trust/proposals",
        server.base.trim_end_matches('/')
    );
    let resp = reqwest::blocking::Client::new()
        .post(url)
        .bearer_auth(&server.admin_token)
        .multipart(vouch_testkit::trust_api::form(&[(
            "targets/prod",
            current.clone(),
        )]))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    assert!(resp.text().unwrap().contains("VERSION_CONFLICT"));
    assert_eq!(server_file(&server, "targets/prod.json"), (200, current));

    // Withdrawn, then approved.
    let third = propose_tag(&dave, "v3", 3);
    let w = dave
        .run(&["--output", "json", "withdraw", GUN, &third])
        .json();
    assert_eq!(w["status"], "withdrawn", "{w}");
    let before = server_proposal(&server, third.parse().unwrap());
    let snapshot = files();
    erin.run(&["approve", "--first-use", GUN, &third, "--yes"])
        .fails(1, &["withdrawn", "nothing was signed"]);
    unchanged(&third, &before, &snapshot);
    let listed = dave
        .run(&["--output", "json", "proposals", GUN, "--all"])
        .json();
    assert!(
        listed["proposals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"].as_u64() == third.parse().ok() && p["status"] == "withdrawn"),
        "{listed}"
    );

    // Without a terminal and without --yes nothing is signed.
    let fourth = propose_tag(&dave, "v4", 4);
    let before = server_proposal(&server, fourth.parse().unwrap());
    let snapshot = files();
    erin.run(&["approve", "--first-use", GUN, &fourth])
        .fails(1, &["--yes", "Nothing was done"]);
    unchanged(&fourth, &before, &snapshot);
}

#[test]
fn an_offline_approval_round_trip() {
    let server = Server::start();
    let (owner, [dave, erin, _frank]) = prod_two_of_three(&server);
    let id = propose_tag(&dave, "v1", 1);
    let exported = scratch(&dave, "p.json");
    dave.run(&[
        "proposals",
        "export",
        GUN,
        &id,
        "-o",
        exported.to_str().unwrap(),
    ])
    .ok();

    // Erin's machine has no network: the server URL points at a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut offline = person(&erin, "erin");
    offline.trust_dir = erin.trust_dir.clone();
    offline.server = nowhere;
    let signed = scratch(&erin, "p.signed.json");
    let file_args = [
        "approve",
        "--file",
        exported.to_str().unwrap(),
        "-o",
        signed.to_str().unwrap(),
        "--yes",
    ];
    // With no trusted metadata of the repository, nothing here says who may sign
    // targets/prod (the file's own quorum is not taken for it): refused.
    offline.run(&file_args).fails(
        1,
        &[
            "no metadata trusted here delegates targets/prod",
            "approve it online",
        ],
    );
    assert!(!signed.exists());
    // Once her trust directory holds the repository, the delegation is known.
    erin.run(&["status", GUN]).ok();
    let out = offline.run(&file_args);
    let text = out.ok();
    assert!(text.contains("target v1 added"), "{text}");
    assert!(text.contains("(your key for targets/prod)"), "{text}");
    assert!(
        text.contains(&format!("vouch proposals import {GUN}")),
        "{text}"
    );
    assert_eq!(server_version(&server, "targets/prod.json"), None);

    // A file whose proposed content was changed is refused before anything is sent.
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&signed).unwrap()).unwrap();
    doc["roles"][0]["metadata"]["signed"]["targets"]["v9"] =
        doc["roles"][0]["metadata"]["signed"]["targets"]["v1"].clone();
    let tampered = scratch(&erin, "p.tampered.json");
    std::fs::write(&tampered, serde_json::to_vec(&doc).unwrap()).unwrap();
    let before = server_proposal(&server, id.parse().unwrap());
    dave.run(&["proposals", "import", GUN, tampered.to_str().unwrap()])
        .fails(1, &["does not match", "nothing was sent"]);
    assert_eq!(server_proposal(&server, id.parse().unwrap()), before);

    // Back online, anyone with push imports the signatures: published.
    let done = dave
        .run(&[
            "--output",
            "json",
            "proposals",
            "import",
            GUN,
            signed.to_str().unwrap(),
        ])
        .json();
    assert_eq!(done["status"], "published", "{done}");
    let client = owner.elsewhere();
    let out = client.run(&["verify", &format!("{GUN}:v1"), "--no-registry"]);
    assert_eq!(out.ok().trim(), format!("{GUN}@{}", digest(1)));
}

#[test]
fn a_client_held_snapshot_goes_into_the_proposal() {
    let server = Server::start();
    let owner = person(&Vouch::new(&server), "owner");
    let init = owner
        .run(&[
            "--output",
            "json",
            "init",
            GUN,
            "--client-snapshot",
            "--targets-threshold",
            "2",
        ])
        .json();
    // The second targets key moves to bob's machine (a key ceremony), and leaves this one.
    let second = init["targets_keys"][1].as_str().unwrap().to_owned();
    let moved = scratch(&owner, "second-targets.pem");
    owner
        .run(&["key", "export", &second, "-o", moved.to_str().unwrap()])
        .ok();
    let mut bob = person(&owner, "bob");
    bob.set("VOUCH_TARGETS_PASSPHRASE", "owner's TARGETS passphrase");
    bob.run(&[
        "key",
        "import",
        moved.to_str().unwrap(),
        "--role",
        "targets",
    ])
    .ok();
    owner
        .run(&["key", "delete", &second, "--yes", "--force"])
        .ok();
    let before = server_version(&server, "snapshot.json").unwrap();

    // The owner proposes a tag: targets 1 of 2, and the snapshot the owner signs lists the
    // proposed targets by version only (its bytes change with every signature added).
    let out = owner
        .run(&[
            "--output",
            "json",
            "sign",
            &format!("{GUN}:v1"),
            "--digest",
            &digest(1),
            "--length",
            "7",
            "--propose",
        ])
        .json();
    assert_eq!(out["status"], "pending", "{out}");
    let roles: Vec<&str> = out["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["targets", "snapshot"]);
    assert_eq!(server_version(&server, "snapshot.json"), Some(before));

    // Bob's approval publishes targets and snapshot together.
    let done = bob
        .run(&[
            "--output",
            "json",
            "approve",
            "--first-use",
            GUN,
            &id_of(&out),
            "--yes",
        ])
        .json();
    assert_eq!(done["status"], "published", "{done}");
    assert_eq!(server_version(&server, "snapshot.json"), Some(before + 1));
    let client = owner.elsewhere();
    let pinned = client.run(&["verify", &format!("{GUN}:v1"), "--no-registry"]);
    assert_eq!(pinned.ok().trim(), format!("{GUN}@{}", digest(1)));
}

#[test]
fn unsign_renew_and_delegation_changes_can_be_proposed() {
    let server = Server::start();
    let (owner, [dave, erin, frank]) = prod_two_of_three(&server);
    let id = propose_tag(&dave, "v1", 1);
    erin.run(&["approve", "--first-use", GUN, &id, "--yes"])
        .ok();
    let client = owner.elsewhere();
    client
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .ok();

    // Renewing the delegated role: pending until a second holder approves.
    let renew = dave
        .run(&[
            "--output",
            "json",
            "renew",
            GUN,
            "--role",
            "prod",
            "--propose",
        ])
        .json();
    assert_eq!(renew["proposals"][0]["status"], "pending", "{renew}");
    assert_eq!(server_version(&server, "targets/prod.json"), Some(1));
    frank
        .run(&[
            "approve",
            "--first-use",
            GUN,
            &id_of(&renew["proposals"][0]),
            "--yes",
        ])
        .ok();
    assert_eq!(server_version(&server, "targets/prod.json"), Some(2));

    // Removing the tag: still verifies until approved.
    let unsign = dave
        .run(&[
            "--output",
            "json",
            "unsign",
            &format!("{GUN}:v1"),
            "--role",
            "prod",
            "--propose",
        ])
        .json();
    assert_eq!(unsign["status"], "pending", "{unsign}");
    client
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .ok();
    erin.run(&["approve", "--first-use", GUN, &id_of(&unsign), "--yes"])
        .ok();
    client
        .run(&["verify", &format!("{GUN}:v1"), "--no-registry"])
        .fails(3, &[]);

    // The owner holds the targets key (threshold 1): a delegation change goes up at once.
    let ci_holder = person(&owner, "ci");
    let (_, ci) = public_key_file(&ci_holder, "ci");
    let added = owner
        .run(&[
            "--output",
            "json",
            "delegation",
            "add",
            GUN,
            "ci",
            "--key",
            ci.to_str().unwrap(),
            "--paths",
            "ci-*",
            "--propose",
        ])
        .json();
    assert_eq!(added["status"], "published", "{added}");
    let removed = owner
        .run(&[
            "--output",
            "json",
            "delegation",
            "remove",
            GUN,
            "ci",
            "--propose",
        ])
        .json();
    assert_eq!(removed["status"], "published", "{removed}");
    // A holder of no targets key cannot propose a delegation change.
    dave.run(&[
        "delegation",
        "add",
        GUN,
        "other",
        "--key",
        ci.to_str().unwrap(),
        "--paths",
        "x-*",
        "--propose",
    ])
    .fails(
        1,
        &[
            "cannot propose a change of targets",
            "holds none of its keys",
        ],
    );
}

/// An export file (whoever carries it, or the server it came from) cannot choose who signs
/// a delegated role: a role the trusted metadata does not delegate, whose own metadata says
/// it is signed by the top-level targets key, is refused, and nothing is written.
#[test]
fn an_offline_file_cannot_choose_who_signs_a_delegated_role() {
    let server = Server::start();
    let (owner, [dave, _erin, _frank]) = prod_two_of_three(&server);
    let id = propose_tag(&dave, "v1", 1);
    let exported = scratch(&dave, "p.json");
    dave.run(&[
        "proposals",
        "export",
        GUN,
        &id,
        "-o",
        exported.to_str().unwrap(),
    ])
    .ok();
    let targets_key = keyids_of(&owner, "targets").remove(0);
    let (status, root) = server_file(&server, "root.json");
    assert_eq!(status, 200);
    let root: serde_json::Value = serde_json::from_slice(&root).unwrap();
    let key = root["signed"]["keys"][&targets_key].clone();
    assert!(key.is_object(), "{root}");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&exported).unwrap()).unwrap();
    doc["roles"][0]["role"] = "targets/evil".into();
    doc["roles"][0]["metadata"]["signed"]["delegations"] = serde_json::json!({
        "keys": { targets_key.clone(): key },
        "roles": [{
            "name": "targets/evil",
            "keyids": [targets_key],
            "threshold": 1,
            "paths": ["*"],
            "terminating": false,
        }],
    });
    let crafted = scratch(&owner, "crafted.json");
    std::fs::write(&crafted, serde_json::to_vec(&doc).unwrap()).unwrap();

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut offline = person(&owner, "owner");
    offline.trust_dir = owner.trust_dir.clone();
    offline.server = nowhere;
    let out = scratch(&owner, "crafted.signed.json");
    offline
        .run(&[
            "approve",
            "--file",
            crafted.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--yes",
        ])
        .fails(1, &["no metadata trusted here delegates targets/evil"]);
    assert!(!out.exists());
}
