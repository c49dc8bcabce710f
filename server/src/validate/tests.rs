//! Unit tests of [`super`]: every publish rule, each with the check it names.

use super::*;
use vouch_tuf::crypto::{Algorithm, PrivateKey};
use vouch_tuf::metadata::{DelegatedRole, TargetFile};
use vouch_tuf::reference::Digest;
use vouch_tuf::types::{TargetName, Threshold};

const T0: i64 = 1_900_000_000;

fn now() -> Timestamp {
    Timestamp::from_unix(T0)
}

fn far() -> Timestamp {
    Timestamp::from_unix(T0 + 365 * 86_400)
}

fn gen() -> PrivateKey {
    PrivateKey::generate(Algorithm::Ed25519).unwrap()
}

fn key(sk: &PrivateKey) -> Key {
    Key::from_verifying_key(&sk.verifying_key())
}

/// A repository under test: its keys, and its stored files applied like a store would.
struct Repo {
    root_key: PrivateKey,
    targets_key: PrivateKey,
    ts_key: PrivateKey,
    snap_key: PrivateKey,
    files: BTreeMap<String, StoredFile>,
    /// Every state is read through one parse cache, as the service reads it.
    parsed: ParseCache,
}

impl Repo {
    fn new() -> Self {
        Repo {
            root_key: gen(),
            targets_key: gen(),
            ts_key: gen(),
            snap_key: gen(),
            files: BTreeMap::new(),
            parsed: ParseCache::default(),
        }
    }

    fn signers(&self) -> OnlineSigners<'_> {
        OnlineSigners {
            timestamp: vec![OnlineKey {
                keyid: key(&self.ts_key).key_id(),
                signer: &self.ts_key,
            }],
            snapshot: vec![OnlineKey {
                keyid: key(&self.snap_key).key_id(),
                signer: &self.snap_key,
            }],
        }
    }

    fn root(&self, version: u64) -> Root {
        let mut r = Root::new(far());
        r.common.version = Version::new(version).unwrap();
        r.add_key(TopLevelRole::Root, key(&self.root_key));
        r.add_key(TopLevelRole::Targets, key(&self.targets_key));
        r.add_key(TopLevelRole::Snapshot, key(&self.snap_key));
        r.add_key(TopLevelRole::Timestamp, key(&self.ts_key));
        r
    }

    fn targets(&self, version: u64, tags: &[&str]) -> Targets {
        let mut t = Targets::new(far());
        t.common.version = Version::new(version).unwrap();
        for tag in tags {
            t.add_target(
                TargetName::new(*tag).unwrap(),
                TargetFile::image(&Digest::sha256_of(tag.as_bytes()), 100, None),
            );
        }
        t
    }

    fn state(&self) -> RepoState {
        let files: Vec<StoredFile> = self.files.values().cloned().collect();
        let cached = RepoState::from_files_cached("gun", files.clone(), &self.parsed).unwrap();
        // The cache must never change what is read.
        let fresh = RepoState::from_files(files).unwrap();
        assert_eq!(format!("{cached:?}"), format!("{fresh:?}"));
        cached
    }

    fn validate(&self, uploads: &[Upload]) -> Result<Update, Rejection> {
        validate_update(
            &self.state(),
            uploads,
            &self.signers(),
            Lifetimes::default(),
            now(),
        )
    }

    fn apply(&mut self, update: &Update) {
        for f in &update.files {
            self.files.insert(
                f.role.clone(),
                StoredFile {
                    role: f.role.clone(),
                    version: f.version,
                    sha256: String::new(),
                    bytes: f.bytes.clone(),
                    created_at: now(),
                },
            );
        }
    }

    fn publish(&mut self, uploads: &[Upload]) -> Update {
        let u = self.validate(uploads).unwrap();
        self.apply(&u);
        u
    }

    /// Root v1 and targets v1 with one tag.
    fn initialised() -> Self {
        let mut r = Repo::new();
        let root = up(
            "root",
            &Metadata::signed_by(r.root(1), &[&r.root_key])
                .unwrap()
                .to_bytes(),
        );
        let targets = up("targets", &r.signed_targets(r.targets(1, &["v1"])));
        r.publish(&[root, targets]);
        r
    }

    fn signed_targets(&self, t: Targets) -> Vec<u8> {
        Metadata::signed_by(t, &[&self.targets_key])
            .unwrap()
            .to_bytes()
    }
}

fn up(role: &str, bytes: &[u8]) -> Upload {
    Upload {
        role: role.into(),
        bytes: bytes.to_vec(),
    }
}

fn check_of(r: Result<Update, Rejection>) -> (String, &'static str) {
    match r {
        Err(Rejection::Invalid { role, check, .. }) => (role, check.as_str()),
        other => panic!("expected an invalid-update rejection, got {other:?}"),
    }
}

fn assert_conflict(r: Result<Update, Rejection>, want_role: &str) {
    match r {
        Err(Rejection::Conflict { role, .. }) => assert_eq!(role, want_role),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn unchanged_stored_files_are_parsed_once_and_changed_ones_again() {
    let mut r = Repo::initialised();
    let before = r.state();
    let again = r.state();
    assert!(Arc::ptr_eq(
        before.targets.as_ref().unwrap(),
        again.targets.as_ref().unwrap()
    ));
    assert!(Arc::ptr_eq(
        before.root.as_ref().unwrap(),
        again.root.as_ref().unwrap()
    ));
    let t2 = up("targets", &r.signed_targets(r.targets(2, &["v1", "v2"])));
    r.publish(&[t2]);
    let after = r.state();
    assert!(Arc::ptr_eq(
        before.root.as_ref().unwrap(),
        after.root.as_ref().unwrap()
    ));
    assert!(!Arc::ptr_eq(
        before.targets.as_ref().unwrap(),
        after.targets.as_ref().unwrap()
    ));
    assert_eq!(after.targets.as_ref().unwrap().version(), 2);
    // Bytes changed underneath (another writer, or tampering) are parsed, not trusted
    // from the cache: corrupt bytes are an error.
    let mut files: Vec<StoredFile> = r.files.values().cloned().collect();
    for f in &mut files {
        if f.role == "targets" {
            f.bytes[0] = b'[';
        }
    }
    let err = RepoState::from_files_cached("gun", files, &r.parsed).unwrap_err();
    assert!(err.contains("stored targets version 2"), "{err}");
    r.parsed.forget("gun");
}

#[test]
fn first_publish_writes_snapshot_and_timestamp() {
    let r = Repo::initialised();
    let st = r.state();
    let root = st.root.as_ref().unwrap();
    let snap = st.snapshot.as_ref().unwrap();
    let ts = st.timestamp.as_ref().unwrap();
    root.md
        .signed()
        .verify_role(TopLevelRole::Snapshot, &snap.md)
        .unwrap();
    root.md
        .signed()
        .verify_role(TopLevelRole::Timestamp, &ts.md)
        .unwrap();
    let targets_bytes = &st.targets.as_ref().unwrap().bytes;
    assert_eq!(
        snap.md.signed().meta["targets.json"],
        MetaFile::for_bytes(Version::ONE, targets_bytes)
    );
    assert_eq!(
        ts.md.signed().snapshot,
        MetaFile::for_bytes(Version::ONE, &snap.bytes)
    );
    assert_eq!(ts.md.expires(), now().add_seconds(86_400));
    assert_eq!(snap.md.expires(), now().add_seconds(7 * 86_400));
}

#[test]
fn stores_exactly_the_bytes_received() {
    let mut r = Repo::initialised();
    // Signed correctly but pretty-printed: stored as is, and hashed as stored.
    let md = Metadata::signed_by(r.targets(2, &["v1", "v2"]), &[&r.targets_key]).unwrap();
    let pretty = String::from_utf8(md.to_bytes())
        .unwrap()
        .replace(",", ",\n  ");
    let u = r.publish(&[up("targets", pretty.as_bytes())]);
    assert_eq!(u.files[0].bytes, pretty.as_bytes());
    let st = r.state();
    let meta = &st.snapshot.as_ref().unwrap().md.signed().meta["targets.json"];
    assert_eq!(
        meta,
        &MetaFile::for_bytes(Version::new(2).unwrap(), pretty.as_bytes())
    );
}

#[test]
fn rejects_without_root_or_targets() {
    let r = Repo::new();
    let targets = up("targets", &r.signed_targets(r.targets(1, &[])));
    assert_eq!(
        check_of(r.validate(&[targets])),
        ("root".into(), "missing-role")
    );
    let root = up(
        "root",
        &Metadata::signed_by(r.root(1), &[&r.root_key])
            .unwrap()
            .to_bytes(),
    );
    assert_eq!(
        check_of(r.validate(&[root])),
        ("targets".into(), "missing-role")
    );
    assert_eq!(check_of(r.validate(&[])), ("update".into(), "empty"));
}

#[test]
fn rejects_uploaded_timestamp_and_duplicates() {
    let r = Repo::initialised();
    let t = up("timestamp", b"{}");
    assert_eq!(
        check_of(r.validate(&[t])),
        ("timestamp".into(), "server-signed")
    );
    let a = up("targets", &r.signed_targets(r.targets(2, &[])));
    assert_eq!(
        check_of(r.validate(&[a.clone(), a])),
        ("targets".into(), "duplicate")
    );
}

#[test]
fn first_root_must_list_server_timestamp_key() {
    let r = Repo::new();
    let mut root = r.root(1);
    let own_ts = gen();
    root.remove_key(TopLevelRole::Timestamp, &key(&r.ts_key).key_id());
    root.add_key(TopLevelRole::Timestamp, key(&own_ts));
    let root = up(
        "root",
        &Metadata::signed_by(root, &[&r.root_key])
            .unwrap()
            .to_bytes(),
    );
    let targets = up("targets", &r.signed_targets(r.targets(1, &[])));
    assert_eq!(
        check_of(r.validate(&[root, targets])),
        ("root".into(), "server-keys")
    );
}

#[test]
fn signatures_below_threshold_and_unknown_keys() {
    let r = Repo::initialised();
    // Targets signed by a key root does not list.
    let stranger = gen();
    let t = Metadata::signed_by(r.targets(2, &[]), &[&stranger])
        .unwrap()
        .to_bytes();
    assert_eq!(
        check_of(r.validate(&[up("targets", &t)])),
        ("targets".into(), "signature")
    );
    // Unsigned.
    let t = Metadata::new(r.targets(2, &[])).to_bytes();
    assert_eq!(
        check_of(r.validate(&[up("targets", &t)])),
        ("targets".into(), "signature")
    );
}

#[test]
fn duplicated_keyid_signature_is_malformed() {
    let r = Repo::initialised();
    let md = Metadata::signed_by(r.targets(2, &[]), &[&r.targets_key]).unwrap();
    let text = String::from_utf8(md.to_bytes()).unwrap();
    let sig_start = text.find("{\"keyid\"").unwrap();
    let sig_end = text[sig_start..].find('}').unwrap() + sig_start + 1;
    let sig = &text[sig_start..sig_end];
    let doubled = text.replacen(sig, &format!("{sig},{sig}"), 1);
    assert_eq!(
        check_of(r.validate(&[up("targets", doubled.as_bytes())])),
        ("targets".into(), "malformed")
    );
}

#[test]
fn version_rollback_and_replay_conflict() {
    let mut r = Repo::initialised();
    let v2 = up("targets", &r.signed_targets(r.targets(2, &["a"])));
    r.publish(std::slice::from_ref(&v2));
    assert_conflict(r.validate(&[v2]), "targets"); // replay
    let v1 = up("targets", &r.signed_targets(r.targets(1, &["b"])));
    assert_conflict(r.validate(&[v1]), "targets"); // rollback
}

#[test]
fn expired_uploads_are_rejected() {
    let r = Repo::initialised();
    let mut t = r.targets(2, &[]);
    t.set_expires(now());
    let t = up("targets", &r.signed_targets(t));
    assert_eq!(check_of(r.validate(&[t])), ("targets".into(), "expired"));
}

#[test]
fn root_rotation_rules() {
    let mut r = Repo::initialised();
    let new_root_key = gen();
    let mut v2 = r.root(2);
    v2.remove_key(TopLevelRole::Root, &key(&r.root_key).key_id());
    v2.add_key(TopLevelRole::Root, key(&new_root_key));

    // Signed only by the new key: the previous root's threshold is not met.
    let only_new = Metadata::signed_by(v2.clone(), &[&new_root_key])
        .unwrap()
        .to_bytes();
    let (role, check) = check_of(r.validate(&[up("root", &only_new)]));
    assert_eq!((role.as_str(), check), ("root", "signature"));
    // Signed only by the old key: its own threshold is not met.
    let only_old = Metadata::signed_by(v2.clone(), &[&r.root_key])
        .unwrap()
        .to_bytes();
    assert_eq!(
        check_of(r.validate(&[up("root", &only_old)])).1,
        "signature"
    );
    // A gap: version 3 after 1.
    let mut v3 = v2.clone();
    v3.common.version = Version::new(3).unwrap();
    let gap = Metadata::signed_by(v3, &[&r.root_key, &new_root_key])
        .unwrap()
        .to_bytes();
    assert_eq!(check_of(r.validate(&[up("root", &gap)])).1, "version");
    // Cross-signed: accepted, and the timestamp is re-signed.
    let good = Metadata::signed_by(v2, &[&r.root_key, &new_root_key])
        .unwrap()
        .to_bytes();
    let u = r.publish(&[up("root", &good)]);
    let roles: Vec<&str> = u.files.iter().map(|f| f.role.as_str()).collect();
    assert_eq!(roles, ["root", "snapshot", "timestamp"]);
    // Replaying root v2 now conflicts; the old root v1 too.
    assert_conflict(r.validate(&[up("root", &good)]), "root");
}

#[test]
fn root_changing_targets_keys_needs_new_targets() {
    let mut r = Repo::initialised();
    let new_targets_key = gen();
    let mut v2 = r.root(2);
    v2.remove_key(TopLevelRole::Targets, &key(&r.targets_key).key_id());
    v2.add_key(TopLevelRole::Targets, key(&new_targets_key));
    let root = up(
        "root",
        &Metadata::signed_by(v2, &[&r.root_key]).unwrap().to_bytes(),
    );
    assert_eq!(
        check_of(r.validate(std::slice::from_ref(&root))),
        ("targets".into(), "signature")
    );
    let t = Metadata::signed_by(r.targets(2, &["v1"]), &[&new_targets_key])
        .unwrap()
        .to_bytes();
    r.publish(&[root, up("targets", &t)]);
}

fn delegate(r: &mut Repo, ci: &PrivateKey, paths: &[&str]) {
    let mut t = r.targets(2, &["v1"]);
    let kci = key(ci);
    t.delegations = Some(Delegations {
        keys: [(kci.key_id(), kci.clone())].into_iter().collect(),
        roles: vec![DelegatedRole::with_paths(
            RoleName::new("targets/releases").unwrap(),
            vec![kci.key_id()],
            paths.iter().map(|p| p.to_string()).collect(),
        )],
        extra: Default::default(),
    });
    let t = up("targets", &r.signed_targets(t));
    r.publish(&[t]);
}

#[test]
fn delegated_roles() {
    let mut r = Repo::initialised();
    let ci = gen();
    delegate(&mut r, &ci, &["v*"]);
    let name = "targets/releases";
    let rel = |v: u64, tags: &[&str], k: &PrivateKey| {
        up(
            name,
            &Metadata::signed_by(r.targets(v, tags), &[k])
                .unwrap()
                .to_bytes(),
        )
    };
    // Outside its paths.
    assert_eq!(
        check_of(r.validate(&[rel(1, &["latest"], &ci)])),
        (name.into(), "paths")
    );
    // Signed by the wrong key.
    assert_eq!(
        check_of(r.validate(&[rel(1, &["v2"], &r.targets_key)])),
        (name.into(), "signature")
    );
    // Good: stored, and listed in the server's snapshot.
    let good = rel(1, &["v2"], &ci);
    r.publish(std::slice::from_ref(&good));
    let st = r.state();
    assert_eq!(
        st.snapshot.as_ref().unwrap().md.signed().meta["targets/releases.json"].version,
        Version::ONE
    );
    assert_conflict(r.validate(&[good]), name);
    // A role nobody delegates to.
    let orphan = up(
        "nightly",
        &Metadata::signed_by(r.targets(1, &["n"]), &[&ci])
            .unwrap()
            .to_bytes(),
    );
    assert_eq!(
        check_of(r.validate(&[orphan])),
        ("nightly".into(), "delegation")
    );
}

#[test]
fn removing_a_delegation_keeps_the_role_in_the_snapshot() {
    let mut r = Repo::initialised();
    let ci = gen();
    delegate(&mut r, &ci, &["v*"]);
    let rel = Metadata::signed_by(r.targets(1, &["v2"]), &[&ci])
        .unwrap()
        .to_bytes();
    r.publish(&[up("targets/releases", &rel)]);
    // Targets v3 no longer delegates to targets/releases.
    let t = up("targets", &r.signed_targets(r.targets(3, &["v1"])));
    r.publish(&[t]);
    let st = r.state();
    let meta = &st.snapshot.as_ref().unwrap().md.signed().meta;
    assert_eq!(meta["targets.json"].version.get(), 3);
    assert_eq!(
        meta["targets/releases.json"],
        MetaFile::for_bytes(Version::ONE, &rel)
    );
}

#[test]
fn malformed_delegations() {
    let r = Repo::initialised();
    let ci = gen();
    let mut t = r.targets(2, &[]);
    let kci = key(&ci);
    let mut role = DelegatedRole::with_paths(
        RoleName::new("releases").unwrap(),
        vec![kci.key_id()],
        vec!["v*".into()],
    );
    // Key id not among the delegation keys.
    t.delegations = Some(Delegations {
        keys: BTreeMap::new(),
        roles: vec![role.clone()],
        extra: Default::default(),
    });
    assert_eq!(
        check_of(r.validate(&[up("targets", &r.signed_targets(t.clone()))])).1,
        "keys"
    );
    // Threshold above the number of keys.
    role.threshold = Threshold::new(2).unwrap();
    t.delegations = Some(Delegations {
        keys: [(kci.key_id(), kci)].into_iter().collect(),
        roles: vec![role.clone()],
        extra: Default::default(),
    });
    assert_eq!(
        check_of(r.validate(&[up("targets", &r.signed_targets(t.clone()))])).1,
        "threshold"
    );
    // No paths at all.
    role.threshold = Threshold::ONE;
    role.scope = PathScope::Nothing;
    t.delegations.as_mut().unwrap().roles = vec![role];
    assert_eq!(
        check_of(r.validate(&[up("targets", &r.signed_targets(t))])).1,
        "delegation"
    );
}

/// A repository whose snapshot key is the client's.
fn client_snapshot_repo() -> (Repo, PrivateKey) {
    let mut r = Repo::new();
    let client_snap = gen();
    let mut root = r.root(1);
    root.remove_key(TopLevelRole::Snapshot, &key(&r.snap_key).key_id());
    root.add_key(TopLevelRole::Snapshot, key(&client_snap));
    let root = up(
        "root",
        &Metadata::signed_by(root, &[&r.root_key])
            .unwrap()
            .to_bytes(),
    );
    let tb = r.signed_targets(r.targets(1, &["v1"]));
    let snap = snapshot_for(&[("targets.json", 1, &tb)], 1, &client_snap);
    r.publish(&[root, up("targets", &tb), up("snapshot", &snap)]);
    (r, client_snap)
}

fn snapshot_for(entries: &[(&str, u64, &[u8])], version: u64, k: &PrivateKey) -> Vec<u8> {
    let mut s = Snapshot::new(far());
    s.common.version = Version::new(version).unwrap();
    for (name, v, bytes) in entries {
        s.meta.insert(
            (*name).into(),
            MetaFile::for_bytes(Version::new(*v).unwrap(), bytes),
        );
    }
    Metadata::signed_by(s, &[k]).unwrap().to_bytes()
}

#[test]
fn client_snapshot_must_match_the_new_state() {
    let (r, snap_key) = client_snapshot_repo();
    let tb = r.signed_targets(r.targets(2, &["v1", "v2"]));
    // Without a snapshot: the server cannot write one.
    assert_eq!(
        check_of(r.validate(&[up("targets", &tb)])),
        ("snapshot".into(), "missing-role")
    );
    // A snapshot naming the old targets version.
    let old_tb = &r.files["targets"].bytes;
    let stale = snapshot_for(&[("targets.json", 1, old_tb)], 2, &snap_key);
    assert_eq!(
        check_of(r.validate(&[up("targets", &tb), up("snapshot", &stale)])),
        ("snapshot".into(), "snapshot-meta")
    );
    // Right version, wrong hash.
    let wrong_hash = snapshot_for(&[("targets.json", 2, b"other bytes")], 2, &snap_key);
    assert_eq!(
        check_of(r.validate(&[up("targets", &tb), up("snapshot", &wrong_hash)])).1,
        "snapshot-meta"
    );
    // An entry the repository does not have.
    let extra = snapshot_for(
        &[("targets.json", 2, &tb), ("ghost.json", 1, b"x")],
        2,
        &snap_key,
    );
    assert_eq!(
        check_of(r.validate(&[up("targets", &tb), up("snapshot", &extra)])).1,
        "snapshot-meta"
    );
    // Correct.
    let good = snapshot_for(&[("targets.json", 2, &tb)], 2, &snap_key);
    let u = r
        .validate(&[up("targets", &tb), up("snapshot", &good)])
        .unwrap();
    let snap_file = u.files.iter().find(|f| f.role == "snapshot").unwrap();
    assert_eq!(snap_file.bytes, good);
}

/// The hashes a client-signed snapshot gives for targets pass the clients' own check
/// (`vouch_tuf::metadata::hashes`): the verifier's
/// `trusted::tests::snapshot_hashes_for_targets_follow_the_shared_rule` runs the same cases
/// and reaches the same verdicts. Before the check was shared, the server refused `sha384`
/// (which clients check) and compared hex without regard to case (which clients refuse).
#[test]
fn client_snapshot_hashes_follow_the_clients_rule() {
    use vouch_tuf::metadata::hashes::hex_digest;

    let (r, snap_key) = client_snapshot_repo();
    let tb = r.signed_targets(r.targets(2, &["v1", "v2"]));
    let outcome = |hashes: BTreeMap<String, String>| {
        let mut s = Snapshot::new(far());
        s.common.version = Version::new(2).unwrap();
        let mut m = MetaFile::for_bytes(Version::new(2).unwrap(), &tb);
        m.hashes = Some(hashes);
        s.meta.insert("targets.json".into(), m);
        let snap = Metadata::signed_by(s, &[&snap_key]).unwrap().to_bytes();
        match r.validate(&[up("targets", &tb), up("snapshot", &snap)]) {
            Ok(_) => Ok(()),
            Err(Rejection::Invalid {
                role,
                check: Check::SnapshotMeta,
                message,
            }) if role == "snapshot" => Err(message),
            Err(other) => panic!("unexpected {other:?}"),
        }
    };
    let of = |alg: &str, b: &[u8]| (alg.to_owned(), hex_digest(alg, b).unwrap());
    for alg in ["sha256", "sha384", "sha512"] {
        assert_eq!(outcome(BTreeMap::from([of(alg, &tb)])), Ok(()), "{alg}");
    }
    let refused = |hashes: BTreeMap<String, String>| outcome(hashes).unwrap_err();
    assert_eq!(
        refused(BTreeMap::from([("md5".to_owned(), "00".repeat(16))])),
        "meta gives targets.json hashes that clients refuse: hash algorithm \"md5\" is not \
         supported (supported: sha256, sha384, sha512)"
    );
    assert!(refused(BTreeMap::from([
        of("sha256", &tb),
        ("blake2b".into(), "00".repeat(64))
    ]))
    .contains("\"blake2b\" is not supported"));
    let (alg, hex) = of("sha256", &tb);
    assert!(refused(BTreeMap::from([(alg, hex.to_ascii_uppercase())]))
        .contains("is not 64 lowercase hex characters"));
    let other = hex_digest("sha512", b"other bytes").unwrap();
    assert_eq!(
        refused(BTreeMap::from([
            of("sha256", &tb),
            ("sha512".into(), other.clone())
        ])),
        format!(
            "meta gives targets.json sha512 {other}, the file's is {}",
            hex_digest("sha512", &tb).unwrap()
        )
    );
}

#[test]
fn next_refresh_due_is_when_refresh_starts_resigning() {
    let r = Repo::initialised();
    let st = r.state();
    let signers = r.signers();
    // A snapshot lifetime shorter than half the timestamp's: the snapshot is due first.
    let lt = Lifetimes {
        timestamp: 86_400,
        snapshot: 60,
    };
    // Published with the default lifetimes: the timestamp expires T0 + 1 day, the
    // snapshot T0 + 7 days.
    let due = next_refresh_due(&st, &signers, lt).unwrap();
    assert_eq!(due.unix(), (T0 + 86_400 - 43_200).min(T0 + 7 * 86_400 - 30));
    assert!(refresh_online(&st, &signers, lt, due.add_seconds(-1))
        .unwrap()
        .is_none());
    assert!(refresh_online(&st, &signers, lt, due.add_seconds(1))
        .unwrap()
        .is_some());
    assert!(next_refresh_due(&RepoState::default(), &signers, lt).is_none());
}

#[test]
fn refresh_resigns_before_expiry_and_only_then() {
    let r = Repo::initialised();
    let st = r.state();
    let signers = r.signers();
    let lt = Lifetimes::default();
    assert!(refresh_online(&st, &signers, lt, now()).unwrap().is_none());
    // Just under half the timestamp lifetime left: timestamp only.
    let later = now().add_seconds(43_201);
    let u = refresh_online(&st, &signers, lt, later).unwrap().unwrap();
    let roles: Vec<&str> = u.files.iter().map(|f| f.role.as_str()).collect();
    assert_eq!(roles, ["timestamp"]);
    assert_eq!(u.files[0].version, 2);
    // Past half the snapshot lifetime: snapshot and timestamp.
    let much_later = now().add_seconds(4 * 86_400);
    let u = refresh_online(&st, &signers, lt, much_later)
        .unwrap()
        .unwrap();
    let roles: Vec<&str> = u.files.iter().map(|f| f.role.as_str()).collect();
    assert_eq!(roles, ["snapshot", "timestamp"]);
    let ts = Metadata::<TimestampRole>::from_bytes(&u.files[1].bytes).unwrap();
    assert_eq!(
        ts.signed().snapshot,
        MetaFile::for_bytes(Version::new(2).unwrap(), &u.files[0].bytes)
    );
}

// ---- attacks by a client holding a push token (and maybe a delegated key) ----

/// A delegated role signed by `k` whose own delegations name `delegates` (with `k`).
fn role_delegating(
    r: &Repo,
    version: u64,
    tags: &[&str],
    k: &PrivateKey,
    delegates: &[&str],
) -> Vec<u8> {
    let mut t = r.targets(1, tags);
    t.common.version = Version::new(version).unwrap();
    let kk = key(k);
    t.delegations = Some(Delegations {
        keys: [(kk.key_id(), kk.clone())].into_iter().collect(),
        roles: delegates
            .iter()
            .map(|d| {
                DelegatedRole::with_paths(
                    RoleName::new(*d).unwrap(),
                    vec![kk.key_id()],
                    vec!["*".into()],
                )
            })
            .collect(),
        extra: Default::default(),
    });
    Metadata::signed_by(t, &[k]).unwrap().to_bytes()
}

#[test]
fn a_role_delegating_to_itself_is_refused() {
    let r = Repo::initialised();
    let attacker = gen();
    // Squatting a name at the highest storable version, "verified" by its own keys.
    let evil = role_delegating(&r, MAX_VERSION, &["v1"], &attacker, &["targets/evil"]);
    let (role, check) = check_of(r.validate(&[up("targets/evil", &evil)]));
    assert_eq!((role.as_str(), check), ("targets/evil", "delegation"));
    // Pre-claiming a child of a name nobody delegates to yet.
    let child = role_delegating(
        &r,
        1,
        &["v1"],
        &attacker,
        &["targets/releases/prod", "targets/releases/prod/x"],
    );
    assert_eq!(
        check_of(r.validate(&[up("targets/releases/prod", &child)])).1,
        "delegation"
    );
}

#[test]
fn roles_delegating_to_each_other_are_refused() {
    let r = Repo::initialised();
    let attacker = gen();
    let a = role_delegating(&r, 1, &["v1"], &attacker, &["b"]);
    let b = role_delegating(&r, 1, &["v1"], &attacker, &["a"]);
    let (_, check) = check_of(r.validate(&[up("a", &a), up("b", &b)]));
    assert_eq!(check, "delegation");
}

/// A role dropped from the delegations stays in the server's snapshot; a new version of
/// it that delegates to itself must not make the server sign a snapshot naming it.
#[test]
fn a_dropped_role_cannot_be_revived_by_delegating_to_itself() {
    let mut r = Repo::initialised();
    let ci = gen();
    delegate(&mut r, &ci, &["v*"]);
    let rel = Metadata::signed_by(r.targets(1, &["v2"]), &[&ci])
        .unwrap()
        .to_bytes();
    r.publish(&[up("targets/releases", &rel)]);
    let t = up("targets", &r.signed_targets(r.targets(3, &["v1"])));
    r.publish(&[t]);
    let attacker = gen();
    let revived = role_delegating(&r, 2, &["evil"], &attacker, &["targets/releases"]);
    assert_eq!(
        check_of(r.validate(&[up("targets/releases", &revived)])),
        ("targets/releases".into(), "delegation")
    );
}

#[test]
fn a_chain_uploaded_in_one_update_is_reachable() {
    let mut r = Repo::initialised();
    let ci = gen();
    delegate(&mut r, &ci, &["v*"]);
    let releases = role_delegating(&r, 1, &["v2"], &ci, &["targets/releases/prod"]);
    let prod = Metadata::signed_by(r.targets(1, &["v3"]), &[&ci])
        .unwrap()
        .to_bytes();
    let u = r.publish(&[
        up("targets/releases", &releases),
        up("targets/releases/prod", &prod),
    ]);
    let st = r.state();
    let meta = &st.snapshot.as_ref().unwrap().md.signed().meta;
    assert!(meta.contains_key("targets/releases/prod.json"), "{u:?}");
}

/// A delegation with `prefixes` to `targets/bins`, and that role listing `tags`.
fn bins_update(r: &mut Repo, ci: &PrivateKey, prefixes: Vec<String>, tags: &[String]) -> Upload {
    let mut t = r.targets(2, &["v1"]);
    let kci = key(ci);
    let mut role = DelegatedRole::with_paths(
        RoleName::new("targets/bins").unwrap(),
        vec![kci.key_id()],
        Vec::new(),
    );
    role.scope = PathScope::HashPrefixes(prefixes);
    t.delegations = Some(Delegations {
        keys: [(kci.key_id(), kci)].into_iter().collect(),
        roles: vec![role],
        extra: Default::default(),
    });
    let t = up("targets", &r.signed_targets(t));
    r.publish(&[t]);
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    up(
        "targets/bins",
        &Metadata::signed_by(r.targets(1, &tags), &[ci])
            .unwrap()
            .to_bytes(),
    )
}

/// 4,000 targets against 4,000 hash prefixes cost 4,000 SHA-256 computations, not 16
/// million, and the publish goes through.
#[test]
fn many_targets_under_many_hash_prefixes_cost_one_hash_each() {
    let mut r = Repo::initialised();
    let ci = gen();
    // 4,000 of the 4,096 three-digit prefixes, and 4,000 tags they cover.
    let prefixes: Vec<String> = (96..4096).map(|i| format!("{i:03x}")).collect();
    let tags: Vec<String> = (0..)
        .map(|i| format!("t{i}"))
        .filter(|t| {
            let h =
                vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, t.as_bytes()));
            u32::from_str_radix(&h[..3], 16).unwrap() >= 96
        })
        .take(4000)
        .collect();
    let upload = bins_update(&mut r, &ci, prefixes.clone(), &tags);
    r.validate(std::slice::from_ref(&upload)).unwrap();
    // The check itself, counted.
    let md = Metadata::<Targets>::from_bytes(&upload.bytes).unwrap();
    let mut delegation =
        DelegatedRole::with_paths(RoleName::new("targets/bins").unwrap(), vec![], vec![]);
    delegation.scope = PathScope::HashPrefixes(prefixes);
    let mut budget = MatchBudget::default();
    check_paths(
        "targets/bins",
        "targets",
        &delegation,
        md.signed(),
        &mut budget,
    )
    .unwrap();
    assert_eq!(budget.sha256_computed(), 4000);
    assert!(budget.steps() <= 4000 * 65, "{} steps", budget.steps());
}

/// Glob patterns chosen to be slow to match are refused once the update's matching
/// budget is spent, naming the check.
#[test]
fn costly_path_patterns_are_refused_at_the_budget() {
    let mut r = Repo::initialised();
    let ci = gen();
    let mut t = r.targets(2, &["v1"]);
    let kci = key(&ci);
    // Target i is covered by pattern i only, after failing against every earlier one.
    let patterns: Vec<String> = (0..4000).map(|i| format!("*a*a*a*-{i}b")).collect();
    t.delegations = Some(Delegations {
        keys: [(kci.key_id(), kci.clone())].into_iter().collect(),
        roles: vec![DelegatedRole::with_paths(
            RoleName::new("targets/globs").unwrap(),
            vec![kci.key_id()],
            patterns,
        )],
        extra: Default::default(),
    });
    let t = up("targets", &r.signed_targets(t));
    r.publish(&[t]);
    let tags: Vec<String> = (0..4000)
        .map(|i| format!("{}-{i}b", "a".repeat(1000)))
        .collect();
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    let role = Metadata::signed_by(r.targets(1, &tags), &[&ci])
        .unwrap()
        .to_bytes();
    match r.validate(&[up("targets/globs", &role)]) {
        Err(Rejection::Invalid {
            role,
            check,
            message,
        }) => {
            assert_eq!((role.as_str(), check.as_str()), ("targets/globs", "paths"));
            assert!(message.contains("matching steps"), "{message}");
        }
        other => panic!("expected a paths rejection, got {other:?}"),
    }
}

/// Versions above what the store holds are invalid (400), not a storage failure.
#[test]
fn versions_above_the_storable_bound_are_invalid() {
    let r = Repo::initialised();
    for v in [MAX_VERSION + 1, u64::MAX] {
        let t = up("targets", &r.signed_targets(r.targets(v, &["v1"])));
        assert_eq!(check_of(r.validate(&[t])), ("targets".into(), "version"));
    }
    let fresh = Repo::new();
    let root = up(
        "root",
        &Metadata::signed_by(fresh.root(MAX_VERSION + 1), &[&fresh.root_key])
            .unwrap()
            .to_bytes(),
    );
    let targets = up("targets", &fresh.signed_targets(fresh.targets(1, &["v1"])));
    assert_eq!(
        check_of(fresh.validate(&[root, targets])),
        ("root".into(), "version")
    );
    // The highest storable version itself is fine.
    let t = up(
        "targets",
        &r.signed_targets(r.targets(MAX_VERSION, &["v1"])),
    );
    r.validate(&[t]).unwrap();
}

// ---- staged proposals (validate_proposal) ----

/// A repository whose root needs 2 of 3 root keys, published with two of them.
fn two_of_three() -> (Repo, [PrivateKey; 3]) {
    let mut r = Repo::new();
    let people = [gen(), gen(), gen()];
    let mut root = r.root(1);
    root.remove_key(TopLevelRole::Root, &key(&r.root_key).key_id());
    for p in &people {
        root.add_key(TopLevelRole::Root, key(p));
    }
    root.set_threshold(TopLevelRole::Root, Threshold::new(2).unwrap());
    let root = Metadata::signed_by(root, &[&people[0], &people[1]])
        .unwrap()
        .to_bytes();
    let targets = r.signed_targets(r.targets(1, &["v1"]));
    r.publish(&[up("root", &root), up("targets", &targets)]);
    (r, people)
}

/// Root version 2 of a [`two_of_three`] repository, with `targets_key` for targets.
fn root_v2(r: &Repo, targets_key: &PrivateKey) -> Root {
    let mut root = r.state().root.as_ref().unwrap().md.signed().clone();
    root.common.version = Version::new(2).unwrap();
    root.remove_key(TopLevelRole::Targets, &key(&r.targets_key).key_id());
    root.add_key(TopLevelRole::Targets, key(targets_key));
    root
}

fn propose(r: &Repo, uploads: &[Upload]) -> Result<Staged, Rejection> {
    validate_proposal(
        &r.state(),
        uploads,
        &r.signers(),
        Lifetimes::default(),
        now(),
    )
}

fn proposal_check(r: Result<Staged, Rejection>) -> (String, &'static str, String) {
    match r {
        Err(Rejection::Invalid {
            role,
            check,
            message,
        }) => (role, check.as_str(), message),
        other => panic!("expected an invalid-proposal rejection, got {other:?}"),
    }
}

#[test]
fn a_root_signed_by_one_of_two_needed_is_a_proposal_not_a_publish() {
    let (r, people) = two_of_three();
    let new_targets = gen();
    let v2 = root_v2(&r, &new_targets);
    let one = Metadata::signed_by(v2.clone(), &[&people[0]])
        .unwrap()
        .to_bytes();
    let targets = Metadata::signed_by(r.targets(2, &["v1"]), &[&new_targets])
        .unwrap()
        .to_bytes();
    let uploads = [up("root", &one), up("targets", &targets)];
    // Not publishable...
    assert_eq!(check_of(r.validate(&uploads)), ("root".into(), "signature"));
    // ...but a valid proposal: two thresholds for root (the old root's and its own), one
    // for targets, in upload order.
    let staged = propose(&r, &uploads).unwrap();
    assert!(!staged.is_complete());
    let roles: Vec<&str> = staged.roles.iter().map(|q| q.role.as_str()).collect();
    assert_eq!(roles, ["root", "targets"]);
    let root_q = &staged.role("root").unwrap().quorum;
    assert_eq!(root_q.len(), 2);
    assert_eq!(root_q[0].by, "root version 1");
    assert_eq!(root_q[1].by, "root version 2");
    for q in root_q {
        assert_eq!((q.threshold, q.keyids.len()), (2, 3));
        assert_eq!(q.signed, [key(&people[0]).key_id().as_str().to_owned()]);
        assert_eq!(q.missing(), 1);
    }
    assert!(staged.role("targets").unwrap().is_met());

    // A second person's signature completes it, and it publishes exactly like a publish.
    let two = Metadata::signed_by(v2, &[&people[0], &people[2]])
        .unwrap()
        .to_bytes();
    let uploads = [up("root", &two), up("targets", &targets)];
    assert!(propose(&r, &uploads).unwrap().is_complete());
    r.validate(&uploads).unwrap();
}

#[test]
fn a_proposal_refuses_signatures_that_cannot_count() {
    let (r, people) = two_of_three();
    let v2 = root_v2(&r, &r.targets_key);
    // By a key root does not list for root (the targets key).
    let foreign = Metadata::signed_by(v2.clone(), &[&people[0], &r.targets_key])
        .unwrap()
        .to_bytes();
    let (role, check, message) = proposal_check(propose(&r, &[up("root", &foreign)]));
    assert_eq!((role.as_str(), check), ("root", "signature"));
    assert!(message.contains("not a key of root"), "{message}");
    // Forged: a listed key id, a signature that does not verify.
    let mut md = Metadata::signed_by(v2.clone(), &[&people[0]]).unwrap();
    let other = Metadata::signed_by(r.targets(9, &[]), &[&people[1]]).unwrap();
    md.add_signature(other.signatures()[0].clone()).unwrap();
    let (_, check, message) = proposal_check(propose(&r, &[up("root", &md.to_bytes())]));
    assert_eq!(check, "signature");
    assert!(message.contains("does not verify"), "{message}");
    // Not hex at all.
    let mut md = Metadata::signed_by(v2.clone(), &[&people[0]]).unwrap();
    md.add_signature(vouch_tuf::metadata::Signature {
        keyid: key(&people[2]).key_id(),
        sig: "zz".into(),
        extra: Default::default(),
    })
    .unwrap();
    assert_eq!(
        proposal_check(propose(&r, &[up("root", &md.to_bytes())])).1,
        "signature"
    );
    // No signature at all.
    let bare = Metadata::new(v2).to_bytes();
    let (_, check, message) = proposal_check(propose(&r, &[up("root", &bare)]));
    assert_eq!(check, "signature");
    assert!(
        message.contains("at least one valid signature"),
        "{message}"
    );
}

#[test]
fn a_proposal_passes_every_other_check_of_a_publish() {
    let (r, people) = two_of_three();
    // Not newer than the stored version: a conflict, as for a publish.
    let mut v1 = root_v2(&r, &r.targets_key);
    v1.common.version = Version::ONE;
    let stale = Metadata::signed_by(v1, &[&people[0]]).unwrap().to_bytes();
    assert!(matches!(
        propose(&r, &[up("root", &stale)]),
        Err(Rejection::Conflict { .. })
    ));
    // Expired.
    let mut old = root_v2(&r, &r.targets_key);
    old.common.expires = Timestamp::from_unix(T0 - 1);
    let expired = Metadata::signed_by(old, &[&people[0]]).unwrap().to_bytes();
    assert_eq!(
        proposal_check(propose(&r, &[up("root", &expired)])).1,
        "expired"
    );
    // A targets version skipping nothing but listing a role nobody delegates to.
    let orphan = Metadata::signed_by(r.targets(1, &["x"]), &[&r.targets_key])
        .unwrap()
        .to_bytes();
    assert_eq!(
        proposal_check(propose(&r, &[up("nightly", &orphan)])).1,
        "delegation"
    );
    // A threshold above the keys.
    let mut bad = root_v2(&r, &r.targets_key);
    bad.set_threshold(TopLevelRole::Root, Threshold::new(4).unwrap());
    let bad = Metadata::signed_by(bad, &[&people[0]]).unwrap().to_bytes();
    assert_eq!(
        proposal_check(propose(&r, &[up("root", &bad)])).1,
        "threshold"
    );
}

#[test]
fn a_delegated_role_is_tallied_against_its_delegation() {
    let mut r = Repo::initialised();
    let holders = [gen(), gen(), gen()];
    let mut t = r.targets(2, &["v1"]);
    let keys: BTreeMap<KeyId, Key> = holders.iter().map(|k| (key(k).key_id(), key(k))).collect();
    let mut prod = DelegatedRole::with_paths(
        RoleName::new("targets/prod").unwrap(),
        keys.keys().cloned().collect(),
        vec!["*".into()],
    );
    prod.threshold = Threshold::new(2).unwrap();
    t.delegations = Some(Delegations {
        keys,
        roles: vec![prod],
        extra: Default::default(),
    });
    let t = up("targets", &r.signed_targets(t));
    r.publish(&[t]);
    let signed = |ks: &[&PrivateKey]| {
        let signers: Vec<&dyn Signer> = ks.iter().map(|k| *k as &dyn Signer).collect();
        up(
            "targets/prod",
            &Metadata::signed_by(r.targets(1, &["v2"]), &signers)
                .unwrap()
                .to_bytes(),
        )
    };
    let one = signed(&[&holders[1]]);
    assert_eq!(
        check_of(r.validate(std::slice::from_ref(&one))).1,
        "signature"
    );
    let staged = propose(&r, &[one]).unwrap();
    let q = &staged.role("targets/prod").unwrap().quorum;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].by, "targets version 2");
    assert_eq!((q[0].threshold, q[0].signed.len()), (2, 1));
    // A key of another role (root's) cannot sign it.
    let foreign = signed(&[&holders[1], &r.root_key]);
    assert_eq!(proposal_check(propose(&r, &[foreign])).1, "signature");
    // Two holders: complete, and publishable.
    let two = signed(&[&holders[0], &holders[2]]);
    assert!(propose(&r, std::slice::from_ref(&two))
        .unwrap()
        .is_complete());
    r.publish(&[two]);
}

#[test]
fn a_proposal_with_a_client_snapshot_lists_its_roles_by_version_only() {
    let (mut r, snap_key) = client_snapshot_repo();
    // Targets now needs two keys.
    let second = gen();
    let mut root = r.root(2);
    root.remove_key(TopLevelRole::Snapshot, &key(&r.snap_key).key_id());
    root.add_key(TopLevelRole::Snapshot, key(&snap_key));
    root.add_key(TopLevelRole::Targets, key(&second));
    root.set_threshold(TopLevelRole::Targets, Threshold::new(2).unwrap());
    let root = Metadata::signed_by(root, &[&r.root_key])
        .unwrap()
        .to_bytes();
    let t2 = Metadata::signed_by(r.targets(2, &["v1"]), &[&r.targets_key, &second])
        .unwrap()
        .to_bytes();
    let snap = snapshot_for(&[("targets.json", 2, &t2)], 2, &snap_key);
    r.publish(&[up("root", &root), up("targets", &t2), up("snapshot", &snap)]);

    let one = Metadata::signed_by(r.targets(3, &["v1", "v2"]), &[&r.targets_key]).unwrap();
    let snapshot = |meta: MetaFile| {
        let mut s = Snapshot::new(far());
        s.common.version = Version::new(3).unwrap();
        s.meta.insert("targets.json".into(), meta);
        Metadata::signed_by(s, &[&snap_key]).unwrap().to_bytes()
    };
    // Hashes of the targets as proposed would never match the targets as published.
    let hashed = snapshot(MetaFile::for_bytes(
        Version::new(3).unwrap(),
        &one.to_bytes(),
    ));
    let (role, check, message) = proposal_check(propose(
        &r,
        &[up("targets", &one.to_bytes()), up("snapshot", &hashed)],
    ));
    assert_eq!((role.as_str(), check), ("snapshot", "snapshot-meta"));
    assert!(message.contains("version only"), "{message}");
    // By version only: a proposal, and once the second key signs, a valid publish.
    let bare = snapshot(MetaFile::version_only(Version::new(3).unwrap()));
    let staged = propose(&r, &[up("targets", &one.to_bytes()), up("snapshot", &bare)]).unwrap();
    assert!(!staged.role("targets").unwrap().is_met());
    assert!(staged.role("snapshot").unwrap().is_met());
    let mut both = one;
    let theirs = Metadata::signed_by(both.signed().clone(), &[&second]).unwrap();
    both.add_signature(theirs.signatures()[0].clone()).unwrap();
    let uploads = [up("targets", &both.to_bytes()), up("snapshot", &bare)];
    assert!(propose(&r, &uploads).unwrap().is_complete());
    r.publish(&uploads);
}

#[test]
fn a_target_named_like_the_registry_trust_tag_is_refused() {
    let mut r = Repo::initialised();
    let t2 = up(
        "targets",
        &r.signed_targets(r.targets(2, &["v1", vouch_tuf::oci::TRUST_TAG])),
    );
    assert_eq!(
        check_of(r.validate(&[t2])),
        ("targets".into(), "reserved-name")
    );
    // A name that only resembles it is an ordinary tag.
    let t2 = up(
        "targets",
        &r.signed_targets(r.targets(2, &["v1", "vouch.trust"])),
    );
    r.publish(&[t2]);
    assert_eq!(r.state().targets.as_ref().unwrap().version(), 2);
}
