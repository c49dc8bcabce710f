//! Unit tests of [`super`]: the stored body, adding signatures, staleness, the document.

use super::*;
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer as _};
use vouch_tuf::metadata::{Key, Signature};
use vouch_tuf::types::Version;

use crate::store::StoredFile;
use crate::validate::RoleQuorum;

const T0: i64 = 1_900_000_000;

fn gen() -> PrivateKey {
    PrivateKey::generate(Algorithm::Ed25519).unwrap()
}

fn targets(version: u64, signers: &[&PrivateKey]) -> Vec<u8> {
    let mut t = Targets::new(Timestamp::from_unix(T0 + 86_400));
    t.common.version = Version::new(version).unwrap();
    let signers: Vec<&dyn vouch_tuf::crypto::Signer> = signers
        .iter()
        .map(|k| *k as &dyn vouch_tuf::crypto::Signer)
        .collect();
    Metadata::signed_by(t, &signers).unwrap().to_bytes()
}

fn state_with_targets(version: u64) -> RepoState {
    RepoState::from_files(vec![StoredFile {
        role: "targets".into(),
        version,
        sha256: String::new(),
        bytes: targets(version, &[&gen()]),
        created_at: Timestamp::from_unix(T0),
    }])
    .unwrap()
}

fn staged(role: &str, signed: usize) -> Staged {
    Staged {
        roles: vec![RoleQuorum {
            role: role.into(),
            quorum: vec![Quorum {
                by: "root version 1".into(),
                threshold: 2,
                keyids: vec!["a".into(), "b".into(), "c".into()],
                signed: vec!["a".into(); signed],
            }],
            decided_by: Some("root".into()),
        }],
    }
}

fn signature(sk: &PrivateKey, bytes: &[u8]) -> Signature {
    let md = Metadata::<Targets>::from_bytes(bytes).unwrap();
    let mut again = Metadata::new(md.signed().clone());
    again.sign(sk).unwrap();
    again.signatures()[0].clone()
}

fn body(alice: &PrivateKey) -> Body {
    let uploads = [Upload {
        role: "targets".into(),
        bytes: targets(4, &[alice]),
    }];
    Body::new(
        &state_with_targets(3),
        &uploads,
        &staged("targets", 1),
        "token:alice",
        Timestamp::from_unix(T0),
    )
    .unwrap()
}

#[test]
fn a_new_body_records_base_versions_tallies_and_the_proposers_signatures() {
    let alice = gen();
    let b = body(&alice);
    assert_eq!(b.files.len(), 1);
    let f = &b.files[0];
    assert_eq!(
        (f.role.as_str(), f.version, f.base),
        ("targets", 4, Some(3))
    );
    assert_eq!(f.quorum[0].signed.len(), 1);
    assert_eq!(b.approvals.len(), 1);
    let keyid = Key::from_verifying_key(&alice.verifying_key()).key_id();
    assert_eq!(b.approvals[0].keyid, keyid.as_str());
    assert_eq!(b.approvals[0].by, "token:alice");
}

#[test]
fn the_stored_body_round_trips_byte_for_byte() {
    let b = body(&gen());
    let again = Body::decode(&b.encode()).unwrap();
    assert_eq!(again, b);
    assert_eq!(again.uploads()[0].bytes, b.files[0].bytes);
    assert!(Body::decode(b"{}").is_err());
    assert!(Body::decode(b"not json").is_err());
}

#[test]
fn signatures_are_added_once_per_key_and_only_to_proposed_roles() {
    let (alice, bob) = (gen(), gen());
    let mut b = body(&alice);
    let bytes = b.files[0].bytes.clone();
    let mut add = Signatures::default();
    add.roles
        .insert("targets".into(), vec![signature(&bob, &bytes)]);
    b.add_signatures(&add, "jwt:bob", Timestamp::from_unix(T0 + 5))
        .unwrap();
    let md = Metadata::<Targets>::from_bytes(&b.files[0].bytes).unwrap();
    assert_eq!(md.signatures().len(), 2);
    // What was signed did not change: only the signatures did.
    let before = Metadata::<Targets>::from_bytes(&bytes).unwrap();
    assert_eq!(md.canonical_signed(), before.canonical_signed());
    assert_eq!(b.approvals.len(), 2);
    assert_eq!(b.approvals[1].by, "jwt:bob");

    // Bob again: refused, and nothing changed.
    let kept = b.clone();
    let err = b
        .add_signatures(&add, "jwt:bob", Timestamp::from_unix(T0 + 6))
        .unwrap_err();
    match err {
        AddError::Rejected(Rejection::Invalid { check, message, .. }) => {
            assert_eq!(check, Check::Duplicate);
            assert!(message.contains("already signed"), "{message}");
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert_eq!(b, kept);
    // A role the proposal does not change, beside a good signature: nothing added.
    let carol = gen();
    let mut both = Signatures::default();
    both.roles
        .insert("targets".into(), vec![signature(&carol, &bytes)]);
    both.roles
        .insert("root".into(), vec![signature(&carol, &bytes)]);
    assert!(matches!(
        b.add_signatures(&both, "x", Timestamp::from_unix(T0)),
        Err(AddError::UnknownRole(r)) if r == "root"
    ));
    assert_eq!(b, kept);
    assert!(matches!(
        b.add_signatures(&Signatures::default(), "x", Timestamp::from_unix(T0)),
        Err(AddError::Empty)
    ));
}

#[test]
fn a_proposal_goes_stale_when_the_role_deciding_its_signers_moves() {
    let mut b = body(&gen());
    assert_eq!(b.context, [("root".to_owned(), None)]);
    assert_eq!(Body::decode(&b.encode()).unwrap(), b);
    b.context = vec![("targets".into(), Some(2))];
    let why = stale_reason(&b, &state_with_targets(3)).unwrap();
    assert!(why.contains("whose keys decide who may sign"), "{why}");
}

#[test]
fn a_proposal_goes_stale_when_its_role_moves() {
    let b = body(&gen());
    assert_eq!(stale_reason(&b, &state_with_targets(3)), None);
    let why = stale_reason(&b, &state_with_targets(4)).unwrap();
    assert!(why.contains("targets is now at version 4"), "{why}");
    assert!(why.contains("against version 3"), "{why}");
    let why = stale_reason(&b, &RepoState::default()).unwrap();
    assert!(why.contains("has no version"), "{why}");
}

#[test]
fn the_document_reads_the_stored_state_and_the_clock() {
    let b = body(&gen());
    let mut stored = StoredProposal {
        id: 7,
        gun: "example.com/app".into(),
        state: ProposalState::Open,
        revision: 1,
        body: b.encode(),
        summary: b.encode_summary(),
        proposed_by: "token:alice".into(),
        created_at: Timestamp::from_unix(T0),
        expires_at: Timestamp::from_unix(T0 + 100),
        closed_at: None,
        closed_by: None,
    };
    let view = |stored: &StoredProposal, stale: Option<String>, now: i64| {
        View {
            stored,
            body: &b,
            stale,
            with_metadata: true,
            now: Timestamp::from_unix(now),
        }
        .document()
    };
    let d = view(&stored, None, T0 + 1);
    assert_eq!((d.id, d.status), (7, ProposalStatus::Pending));
    assert!(d.roles[0].metadata.is_some());
    assert_eq!(d.roles[0].base_version, Some(3));
    assert_eq!(
        view(&stored, Some("moved".into()), T0 + 1).status,
        ProposalStatus::Stale
    );
    let expired = view(&stored, None, T0 + 100);
    assert_eq!(expired.status, ProposalStatus::Expired);
    assert!(expired.reason.unwrap().contains("expired"));
    stored.state = ProposalState::Published(42);
    let published = view(&stored, Some("ignored once closed".into()), T0 + 500);
    assert_eq!(
        (published.status, published.change_id),
        (ProposalStatus::Published, Some(42))
    );
    stored.state = ProposalState::Withdrawn;
    assert_eq!(view(&stored, None, T0).status, ProposalStatus::Withdrawn);
}

#[test]
fn the_summary_is_the_body_without_its_files() {
    let b = body(&gen());
    let summary = b.encode_summary();
    assert!(summary.len() < b.encode().len());
    assert!(!String::from_utf8_lossy(&summary).contains("\"bytes\""));
    let s = Body::decode_summary(&summary).unwrap();
    assert_eq!(
        (s.context.clone(), s.approvals.clone()),
        (b.context.clone(), b.approvals.clone())
    );
    assert_eq!(s.files[0].quorum, b.files[0].quorum);
    assert!(s.files[0].bytes.is_empty());
    // A summary is not a body: it cannot be published from.
    assert!(Body::decode(&summary).is_err());
}
