//! Staged proposals through a real listening server: a root needing 2 of 3 keys held by
//! three people is rotated (with the targets key) through a proposal that one signature does
//! not publish and the second does, exactly as a publish would; a delegated role with
//! threshold 2 likewise; every refusal (a forged signature, a key the role does not list, a
//! key signing twice, a stale or withdrawn or expired proposal, a version not newer, a token
//! scoped to another repository, the cap on open proposals) changes nothing; and the audit
//! trail names the credential behind every signature.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{gen, key_of, ClientRepo, Resp, Server};
use reqwest::StatusCode;
use vouch_tuf::api::proposal::{Proposal, ProposalStatus, Signatures};
use vouch_tuf::crypto::{PrivateKey, Signer};
use vouch_tuf::json::{self, Map};
use vouch_tuf::metadata::{DelegatedRole, Delegations, Metadata, Root, Signature, Targets};
use vouch_tuf::types::{KeyId, RoleName, Threshold, TopLevelRole, Version};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Static tokens: two people who may push to `example.com/*`, one scoped elsewhere.
const ALICE: &str = "alice-token";
const BOB: &str = "bob-token";
const ELSEWHERE: &str = "elsewhere-token";

fn sha(token: &str) -> String {
    vouch_tuf::hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

/// A server with the three tokens, at most `max_open` open proposals per repository, and
/// `env` on top.
fn server(max_open: usize, env: &[(&str, &str)], tmp: &Path) -> Server {
    let cfg = tmp.join("vouch.toml");
    let mut text = format!("[proposals]\nmax_open = {max_open}\n");
    for (name, token, scope) in [
        ("alice", ALICE, "example.com/*:pull,push"),
        ("bob", BOB, "example.com/*:pull,push"),
        ("elsewhere", ELSEWHERE, "other.example.com/*:pull,push"),
    ] {
        text.push_str(&format!(
            "[[auth.tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\nscopes = [\"{scope}\"]\n",
            sha(token)
        ));
    }
    std::fs::write(&cfg, text).unwrap();
    Server::start_full(env, &["--config", cfg.to_str().unwrap()])
}

/// One repository whose root needs 2 of the 3 people's root keys.
struct Repo {
    client: ClientRepo,
    people: [PrivateKey; 3],
}

impl Repo {
    /// Publishes root v1 (signed by people 0 and 1) and targets v1 signing `v1`.
    fn init(s: &Server, gun: &str) -> Self {
        let client = ClientRepo::new(s, gun);
        let people = [gen(), gen(), gen()];
        let repo = Repo { client, people };
        let root = repo.sign_root(repo.root(1), &[0, 1]);
        let r = s.publish(
            gun,
            &[
                ("root", root),
                ("targets", repo.client.signed_targets(1, &["v1"])),
            ],
        );
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        repo
    }

    fn root(&self, version: u64) -> Root {
        let mut root = self.client.root(version);
        root.remove_key(TopLevelRole::Root, &key_of(&self.client.root_key).key_id());
        for p in &self.people {
            root.add_key(TopLevelRole::Root, key_of(p));
        }
        root.set_threshold(TopLevelRole::Root, Threshold::new(2).unwrap());
        root
    }

    fn sign_root(&self, root: Root, people: &[usize]) -> Vec<u8> {
        let signers: Vec<&dyn Signer> = people
            .iter()
            .map(|i| &self.people[*i] as &dyn Signer)
            .collect();
        Metadata::signed_by(root, &signers).unwrap().to_bytes()
    }
}

fn post_proposal(s: &Server, gun: &str, files: &[(&str, Vec<u8>)], token: Option<&str>) -> Resp {
    let mut req = s
        .client
        .post(s.url(&format!("/v2/{gun}/_trust/proposals")))
        .multipart(vouch_testkit::trust_api::form(files));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    Resp::from(req.send().unwrap())
}

fn request(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> Resp {
    let mut req = s.client.request(method, s.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    Resp::from(req.send().unwrap())
}

fn doc(r: &Resp, want: StatusCode) -> Proposal {
    assert_eq!(r.status, want, "{}", r.text());
    Proposal::decode(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn get_doc(s: &Server, gun: &str, id: u64) -> Proposal {
    let r = request(
        s,
        reqwest::Method::GET,
        &format!("/v2/{gun}/_trust/proposals/{id}"),
        Some(ALICE),
        None,
    );
    doc(&r, StatusCode::OK)
}

/// `sk`'s signature over the canonical `signed` of `role` in proposal `p`, claimed as `keyid`.
fn signature_as(p: &Proposal, role: &str, sk: &PrivateKey, keyid: KeyId) -> Signature {
    let md = p.role(role).unwrap().metadata.clone().unwrap();
    let canonical = match role {
        "root" => Metadata::<Root>::from_value(role, md)
            .unwrap()
            .canonical_signed()
            .to_vec(),
        _ => Metadata::<Targets>::from_value(role, md)
            .unwrap()
            .canonical_signed()
            .to_vec(),
    };
    Signature {
        keyid,
        sig: vouch_tuf::hex::encode(sk.sign(&canonical).unwrap()),
        extra: Map::new(),
    }
}

fn signature(p: &Proposal, role: &str, sk: &PrivateKey) -> Signature {
    signature_as(p, role, sk, key_of(sk).key_id())
}

fn submission(role: &str, sigs: Vec<Signature>) -> Vec<u8> {
    let mut s = Signatures::default();
    s.roles.insert(role.to_owned(), sigs);
    s.encode()
}

fn sign(s: &Server, gun: &str, id: u64, body: Vec<u8>, token: &str) -> Resp {
    request(
        s,
        reqwest::Method::POST,
        &format!("/v2/{gun}/_trust/proposals/{id}/signatures"),
        Some(token),
        Some(body),
    )
}

/// What a TUF client can see of `gun`: the current root, targets and timestamp.
fn served(s: &Server, gun: &str) -> Vec<Option<Vec<u8>>> {
    ["root", "targets", "timestamp"]
        .iter()
        .map(|r| s.current(gun, r))
        .collect()
}

fn version_of(bytes: &[u8]) -> u64 {
    let v = json::parse(bytes).unwrap();
    v.as_object().unwrap()["signed"].as_object().unwrap()["version"]
        .as_u64()
        .unwrap()
}

/// Root v2 rotating the targets key, signed by person 0, and targets v2 by the new key.
fn rotation(repo: &Repo) -> (Vec<(&'static str, Vec<u8>)>, PrivateKey) {
    let new_targets = gen();
    let mut root = repo.root(2);
    root.remove_key(
        TopLevelRole::Targets,
        &key_of(&repo.client.targets_key).key_id(),
    );
    root.add_key(TopLevelRole::Targets, key_of(&new_targets));
    let root = repo.sign_root(root, &[0]);
    let targets = Metadata::signed_by(repo.client.targets(2, &["v1", "v2"]), &[&new_targets])
        .unwrap()
        .to_bytes();
    (vec![("root", root), ("targets", targets)], new_targets)
}

#[test]
fn a_two_of_three_root_rotation_publishes_on_the_second_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let s = server(4, &[], tmp.path());
    let gun = "example.com/org/rotate";
    let repo = Repo::init(&s, gun);
    let before = served(&s, gun);
    let (files, _) = rotation(&repo);

    // Alice proposes: pending, both root thresholds at 1 of 2, nothing served changes.
    let p = doc(
        &post_proposal(&s, gun, &files, Some(ALICE)),
        StatusCode::CREATED,
    );
    assert_eq!(p.status, ProposalStatus::Pending);
    assert_eq!(p.gun, gun);
    assert_eq!(p.proposed_by, "token:alice");
    let root = p.role("root").unwrap();
    assert_eq!((root.version, root.base_version), (2, Some(1)));
    let by: Vec<&str> = root.quorum.iter().map(|q| q.by.as_str()).collect();
    assert_eq!(by, ["root version 1", "root version 2"]);
    assert!(root
        .quorum
        .iter()
        .all(|q| q.signed.len() == 1 && q.missing() == 1));
    assert!(p.role("targets").unwrap().is_complete());
    assert_eq!(p.missing(), 2);
    assert_eq!(served(&s, gun), before);
    assert_eq!(
        s.get(&format!("/v2/{gun}/_trust/tuf/2.root.json")).status,
        StatusCode::NOT_FOUND
    );

    // Listed without metadata; fetched with it.
    let r = request(
        &s,
        reqwest::Method::GET,
        &format!("/v2/{gun}/_trust/proposals"),
        Some(BOB),
        None,
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let list = vouch_tuf::api::proposal::decode_list(&r.body).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, p.id);
    assert!(list[0].roles.iter().all(|r| r.metadata.is_none()));
    let full = get_doc(&s, gun, p.id);
    assert!(full.role("root").unwrap().metadata.is_some());

    // Bob adds his root signature: both thresholds met, published in the same request.
    let body = submission("root", vec![signature(&full, "root", &repo.people[2])]);
    let published = doc(&sign(&s, gun, p.id, body, BOB), StatusCode::OK);
    assert_eq!(published.status, ProposalStatus::Published);
    assert_eq!(published.closed_by.as_deref(), Some("token:bob"));
    let change = published.change_id.unwrap();
    let who: Vec<(&str, &str)> = published
        .approvals
        .iter()
        .map(|a| (a.role.as_str(), a.by.as_str()))
        .collect();
    assert_eq!(
        who,
        [
            ("root", "token:alice"),
            ("targets", "token:alice"),
            ("root", "token:bob")
        ]
    );

    // Served exactly like a publish: root v2 with both signatures, targets v2, a new
    // timestamp, and the changefeed entry the proposal names.
    let now = served(&s, gun);
    let root_v2 = now[0].clone().unwrap();
    assert_eq!(version_of(&root_v2), 2);
    let md = Metadata::<Root>::from_bytes(&root_v2).unwrap();
    assert_eq!(md.signatures().len(), 2);
    assert_eq!(version_of(now[1].as_ref().unwrap()), 2);
    assert!(version_of(now[2].as_ref().unwrap()) > version_of(before[2].as_ref().unwrap()));
    let feed = s
        .get_admin(&format!(
            "/v2/{gun}/_trust/changefeed?change_id=0&records=-1"
        ))
        .json();
    let last = &feed.as_object().unwrap()["records"].as_array().unwrap()[0];
    assert_eq!(
        last.as_object().unwrap()["ID"].as_str().unwrap(),
        change.to_string()
    );

    // Kept as the audit trail; closed to further signatures.
    let again = get_doc(&s, gun, p.id);
    assert_eq!(again.status, ProposalStatus::Published);
    let body = submission("root", vec![signature(&full, "root", &repo.people[1])]);
    let r = sign(&s, gun, p.id, body, ALICE);
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.error_code(), "PROPOSAL_CLOSED");
    assert!(
        r.error_message().contains("published"),
        "{}",
        r.error_message()
    );
    let open = request(
        &s,
        reqwest::Method::GET,
        &format!("/v2/{gun}/_trust/proposals"),
        Some(BOB),
        None,
    );
    assert!(vouch_tuf::api::proposal::decode_list(&open.body)
        .unwrap()
        .is_empty());
    let all = request(
        &s,
        reqwest::Method::GET,
        &format!("/v2/{gun}/_trust/proposals?all=true"),
        Some(BOB),
        None,
    );
    assert_eq!(
        vouch_tuf::api::proposal::decode_list(&all.body)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn refusals_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let s = server(2, &[], tmp.path());
    let gun = "example.com/org/refusals";
    let repo = Repo::init(&s, gun);
    let (files, _) = rotation(&repo);
    let p = doc(
        &post_proposal(&s, gun, &files, Some(ALICE)),
        StatusCode::CREATED,
    );
    let full = get_doc(&s, gun, p.id);
    let before = (served(&s, gun), get_doc(&s, gun, p.id));
    let unchanged = |what: &str| {
        assert_eq!(
            (served(&s, gun), get_doc(&s, gun, p.id)),
            before,
            "{what} changed something"
        );
    };
    let refused = |r: Resp, status: StatusCode, code: &str, needle: &str, what: &str| {
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert_eq!(r.error_code(), code, "{what}");
        assert!(
            r.error_message().contains(needle),
            "{what}: {}",
            r.error_message()
        );
        unchanged(what);
    };

    // A forged signature: person 2's key id, signed by someone else.
    let forged = signature_as(&full, "root", &gen(), key_of(&repo.people[2]).key_id());
    refused(
        sign(&s, gun, p.id, submission("root", vec![forged]), BOB),
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "does not verify",
        "a forged signature",
    );
    // A key root does not list for root.
    let foreign = signature(&full, "root", &repo.client.targets_key);
    refused(
        sign(&s, gun, p.id, submission("root", vec![foreign]), BOB),
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "not a key of root",
        "a foreign key",
    );
    // A good signature beside a forged one: neither is kept.
    let good = signature(&full, "root", &repo.people[1]);
    let forged = signature_as(&full, "root", &gen(), key_of(&repo.people[2]).key_id());
    refused(
        sign(
            &s,
            gun,
            p.id,
            submission("root", vec![good.clone(), forged]),
            BOB,
        ),
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "does not verify",
        "a good and a forged signature",
    );
    // The proposer's key again: thresholds count distinct keys.
    let twice = signature(&full, "root", &repo.people[0]);
    let r = sign(&s, gun, p.id, submission("root", vec![twice]), BOB);
    refused(
        r,
        StatusCode::BAD_REQUEST,
        "METADATA_INVALID",
        "already signed",
        "the same key twice",
    );
    // A role the proposal does not change; a body of another shape.
    refused(
        sign(
            &s,
            gun,
            p.id,
            submission("snapshot", vec![good.clone()]),
            BOB,
        ),
        StatusCode::BAD_REQUEST,
        "MALFORMED_REQUEST",
        "does not change snapshot",
        "another role",
    );
    let r = request(
        &s,
        reqwest::Method::POST,
        &format!("/v2/{gun}/_trust/proposals/{}/signatures", p.id),
        Some(BOB),
        Some(b"{\"root\":[]}".to_vec()),
    );
    refused(
        r,
        StatusCode::BAD_REQUEST,
        "MALFORMED_REQUEST",
        "signatures",
        "a malformed body",
    );
    // A token scoped to another repository, and no token: for every route.
    for (token, status) in [
        (Some(ELSEWHERE), StatusCode::FORBIDDEN),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let paths = [
            (reqwest::Method::GET, format!("/v2/{gun}/_trust/proposals")),
            (
                reqwest::Method::GET,
                format!("/v2/{gun}/_trust/proposals/{}", p.id),
            ),
            (
                reqwest::Method::DELETE,
                format!("/v2/{gun}/_trust/proposals/{}", p.id),
            ),
        ];
        for (method, path) in paths {
            let r = request(&s, method.clone(), &path, token, None);
            assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        }
        let body = submission("root", vec![good.clone()]);
        let r = match token {
            Some(t) => sign(&s, gun, p.id, body, t),
            None => request(
                &s,
                reqwest::Method::POST,
                &format!("/v2/{gun}/_trust/proposals/{}/signatures", p.id),
                None,
                Some(body),
            ),
        };
        assert_eq!(r.status, status, "{}", r.text());
        assert_eq!(post_proposal(&s, gun, &files, token).status, status);
        unchanged("a token scoped elsewhere");
    }
    // An id this repository does not have.
    let other = "example.com/org/other";
    Repo::init(&s, other);
    let r = request(
        &s,
        reqwest::Method::GET,
        &format!("/v2/{other}/_trust/proposals/{}", p.id),
        Some(ALICE),
        None,
    );
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = sign(
        &s,
        other,
        p.id,
        submission("root", vec![good.clone()]),
        ALICE,
    );
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    unchanged("another repository's id");

    // A version not newer than the stored one.
    let old = repo.sign_root(repo.root(1), &[0]);
    let r = post_proposal(&s, gun, &[("root", old)], Some(ALICE));
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.error_code(), "VERSION_CONFLICT");
    // No signature at all.
    let bare = Metadata::new(repo.root(2)).to_bytes();
    let r = post_proposal(&s, gun, &[("root", bare)], Some(ALICE));
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.error_message().contains("at least one valid signature"));

    // The cap on open proposals (2 here): one more fits, the next is refused.
    let second = doc(
        &post_proposal(&s, gun, &rotation(&repo).0, Some(BOB)),
        StatusCode::CREATED,
    );
    let r = post_proposal(&s, gun, &rotation(&repo).0, Some(BOB));
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.error_code(), "PROPOSAL_LIMIT");
    // Withdrawn: closed to signatures, and withdrawing frees a place.
    let w = doc(
        &request(
            &s,
            reqwest::Method::DELETE,
            &format!("/v2/{gun}/_trust/proposals/{}", second.id),
            Some(BOB),
            None,
        ),
        StatusCode::OK,
    );
    assert_eq!(w.status, ProposalStatus::Withdrawn);
    assert_eq!(w.closed_by.as_deref(), Some("token:bob"));
    let body = submission(
        "root",
        vec![signature(
            &get_doc(&s, gun, second.id),
            "root",
            &repo.people[1],
        )],
    );
    let r = sign(&s, gun, second.id, body, ALICE);
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(
        r.error_message().contains("withdrawn by token:bob"),
        "{}",
        r.error_message()
    );
    let r = request(
        &s,
        reqwest::Method::DELETE,
        &format!("/v2/{gun}/_trust/proposals/{}", second.id),
        Some(BOB),
        None,
    );
    assert_eq!(r.error_code(), "PROPOSAL_CLOSED");
    doc(
        &post_proposal(&s, gun, &rotation(&repo).0, Some(BOB)),
        StatusCode::CREATED,
    );

    // Stale: someone publishes root v2 directly; the proposal made against v1 is refused
    // with the reason, and reads as stale.
    let direct = repo.sign_root(repo.root(2), &[1, 2]);
    let r = s.publish(gun, &[("root", direct)]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let served_now = served(&s, gun);
    let r = sign(&s, gun, p.id, submission("root", vec![good]), BOB);
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.error_code(), "PROPOSAL_CLOSED");
    assert!(
        r.error_message().contains("root is now at version 2"),
        "{}",
        r.error_message()
    );
    let stale = get_doc(&s, gun, p.id);
    assert_eq!(stale.status, ProposalStatus::Stale);
    assert_eq!(stale.approvals, before.1.approvals);
    assert_eq!(served(&s, gun), served_now);
}

#[test]
fn a_delegated_role_waits_for_its_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let s = server(4, &[], tmp.path());
    let gun = "example.com/org/prod";
    let repo = Repo::init(&s, gun);
    let holders = [gen(), gen(), gen()];
    let mut t = repo.client.targets(2, &["v1"]);
    let keys = holders
        .iter()
        .map(|k| (key_of(k).key_id(), key_of(k)))
        .collect();
    let mut prod = DelegatedRole::with_paths(
        RoleName::new("targets/prod").unwrap(),
        holders.iter().map(|k| key_of(k).key_id()).collect(),
        vec!["*".into()],
    );
    prod.threshold = Threshold::new(2).unwrap();
    t.delegations = Some(Delegations {
        keys,
        roles: vec![prod],
        extra: Default::default(),
    });
    let t = Metadata::signed_by(t, &[&repo.client.targets_key])
        .unwrap()
        .to_bytes();
    assert_eq!(s.publish(gun, &[("targets", t)]).status, StatusCode::OK);

    let mut release = repo.client.targets(1, &["v2"]);
    release.common.version = Version::ONE;
    let one = Metadata::signed_by(release, &[&holders[0]])
        .unwrap()
        .to_bytes();
    // Not publishable as it stands...
    let r = s.publish(gun, &[("targets/prod", one.clone())]);
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    // ...but a proposal, which TUF clients do not see.
    let p = doc(
        &post_proposal(&s, gun, &[("targets/prod", one)], Some(ALICE)),
        StatusCode::CREATED,
    );
    let q = &p.role("targets/prod").unwrap().quorum;
    assert_eq!(
        (q[0].by.as_str(), q[0].threshold, q[0].signed.len()),
        ("targets version 2", 2, 1)
    );
    assert_eq!(s.current(gun, "targets/prod"), None);
    let full = get_doc(&s, gun, p.id);
    let body = submission(
        "targets/prod",
        vec![signature(&full, "targets/prod", &holders[2])],
    );
    let done = doc(&sign(&s, gun, p.id, body, BOB), StatusCode::OK);
    assert_eq!(done.status, ProposalStatus::Published);
    let prod = s
        .current(gun, "targets/prod")
        .expect("targets/prod is served");
    assert_eq!(
        Metadata::<Targets>::from_bytes(&prod)
            .unwrap()
            .signatures()
            .len(),
        2
    );
    // The server's snapshot lists it.
    let snap = s.current(gun, "snapshot").unwrap();
    assert!(String::from_utf8_lossy(&snap).contains("targets/prod.json"));
}

#[test]
fn proposals_expire() {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: install Debian's faketime (scripts/test does)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let clock = tmp.path().join("faketime");
    std::fs::write(&clock, "+0d\n").unwrap();
    let clock_str = clock.to_str().unwrap().to_owned();
    let s = server(
        1,
        &[
            ("LD_PRELOAD", LIBFAKETIME),
            ("FAKETIME_TIMESTAMP_FILE", &clock_str),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            ("VOUCH_PROPOSALS_LIFETIME_SECONDS", "86400"),
        ],
        tmp.path(),
    );
    let gun = "example.com/org/expiry";
    let repo = Repo::init(&s, gun);
    let p = doc(
        &post_proposal(&s, gun, &rotation(&repo).0, Some(ALICE)),
        StatusCode::CREATED,
    );
    assert_eq!(p.expires_at.unix() - p.created_at.unix(), 86_400);
    let full = get_doc(&s, gun, p.id);

    std::fs::write(&clock, "+2d\n").unwrap();
    let expired = get_doc(&s, gun, p.id);
    assert_eq!(expired.status, ProposalStatus::Expired);
    let body = submission("root", vec![signature(&full, "root", &repo.people[1])]);
    let r = sign(&s, gun, p.id, body, BOB);
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(
        r.error_message().contains("expired"),
        "{}",
        r.error_message()
    );
    assert_eq!(s.current(gun, "root").map(|b| version_of(&b)), Some(1));
    // Listed until withdrawn, and no longer counted against the cap (1 here).
    let r = request(
        &s,
        reqwest::Method::GET,
        &format!("/v2/{gun}/_trust/proposals"),
        Some(BOB),
        None,
    );
    assert_eq!(
        vouch_tuf::api::proposal::decode_list(&r.body).unwrap()[0].status,
        ProposalStatus::Expired
    );
    doc(
        &post_proposal(&s, gun, &rotation(&repo).0, Some(BOB)),
        StatusCode::CREATED,
    );
    let w = request(
        &s,
        reqwest::Method::DELETE,
        &format!("/v2/{gun}/_trust/proposals/{}", p.id),
        Some(BOB),
        None,
    );
    assert_eq!(doc(&w, StatusCode::OK).status, ProposalStatus::Withdrawn);
}
