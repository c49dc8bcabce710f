//! The threshold rule, for top-level and delegated roles: distinct keys, and nothing that
//! fails to verify ever counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use vouch_tuf::crypto::{Algorithm, Kdf, PrivateKey, Signer};
use vouch_tuf::json::{self, Value};
use vouch_tuf::metadata::{
    DelegatedRole, Delegations, Key, Metadata, MetadataError, Root, SignatureError, Targets,
};
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{KeyId, RoleName, Threshold, TopLevelRole};

fn expires() -> Timestamp {
    Timestamp::parse("2099-01-01T00:00:00Z").unwrap()
}

fn keypair(alg: Algorithm) -> (PrivateKey, Key) {
    let sk = PrivateKey::generate(alg).unwrap();
    let key = Key::from_verifying_key(&sk.verifying_key());
    (sk, key)
}

fn threshold(n: u32) -> Threshold {
    Threshold::new(n).unwrap()
}

/// A root whose targets role lists `keys` with `t` as threshold.
fn root_with_targets_keys(keys: &[Key], t: u32) -> Root {
    let mut root = Root::new(expires());
    for k in keys {
        root.add_key(TopLevelRole::Targets, k.clone());
    }
    root.set_threshold(TopLevelRole::Targets, threshold(t));
    root
}

fn not_met(err: SignatureError) -> (usize, u32) {
    match err {
        SignatureError::ThresholdNotMet {
            role,
            valid,
            needed,
        } => {
            assert_eq!(role, "targets");
            (valid, needed)
        }
        other => panic!("expected ThresholdNotMet, got {other:?}"),
    }
}

#[test]
fn two_of_three_with_mixed_algorithms() {
    let (a, ka) = keypair(Algorithm::Ed25519);
    let (b, kb) = keypair(Algorithm::EcdsaP256Sha256);
    let (_c, kc) = keypair(Algorithm::Ed25519);
    let root = root_with_targets_keys(&[ka, kb, kc], 2);

    let md = Metadata::signed_by(Targets::new(expires()), &[&a, &b]).unwrap();
    let ok = root.verify_role(TopLevelRole::Targets, &md).unwrap();
    assert_eq!(ok.keyids.len(), 2);

    let md = Metadata::signed_by(Targets::new(expires()), &[&a]).unwrap();
    assert_eq!(
        not_met(root.verify_role(TopLevelRole::Targets, &md).unwrap_err()),
        (1, 2)
    );
}

#[test]
fn same_key_under_two_ids_counts_once() {
    let (a, ka) = keypair(Algorithm::Ed25519);
    // The same public key, listed again under a different id (an extra field changes the
    // computed id; and ids are whatever the delegator lists anyway).
    let alias_id = KeyId::new("alias-of-a").unwrap();
    let mut root = root_with_targets_keys(std::slice::from_ref(&ka), 2);
    root.keys.insert(alias_id.clone(), ka.clone());
    root.roles
        .get_mut(&TopLevelRole::Targets)
        .unwrap()
        .keyids
        .push(alias_id.clone());

    let mut md = Metadata::new(Targets::new(expires()));
    md.sign_as(&a, ka.key_id()).unwrap();
    md.sign_as(&a, alias_id).unwrap();
    assert_eq!(md.signatures().len(), 2);
    assert_eq!(
        not_met(root.verify_role(TopLevelRole::Targets, &md).unwrap_err()),
        (1, 2)
    );
}

#[test]
fn same_key_in_two_encodings_counts_once() {
    // ed25519 public keys written in upper- and lower-case hex are one key.
    let (a, ka) = keypair(Algorithm::Ed25519);
    let mut upper = ka.clone();
    upper.public = upper.public.to_uppercase();
    let upper_id = upper.key_id();
    assert_ne!(upper_id, ka.key_id());
    let root = root_with_targets_keys(&[ka.clone(), upper], 2);
    let mut md = Metadata::new(Targets::new(expires()));
    md.sign_as(&a, ka.key_id()).unwrap();
    md.sign_as(&a, upper_id).unwrap();
    assert_eq!(
        not_met(root.verify_role(TopLevelRole::Targets, &md).unwrap_err()),
        (1, 2)
    );
}

#[test]
fn unknown_unauthorized_and_bad_signatures_never_count_nor_spoil() {
    let (a, ka) = keypair(Algorithm::Ed25519);
    let (stranger, _) = keypair(Algorithm::Ed25519);
    let (unauthorized, ku) = keypair(Algorithm::Ed25519);
    let (b, kb) = keypair(Algorithm::Ed25519);
    let mut root = root_with_targets_keys(&[ka.clone(), kb.clone()], 1);
    // `ku` is a key root knows, but for another role.
    root.add_key(TopLevelRole::Snapshot, ku.clone());

    let mut md = Metadata::new(Targets::new(expires()));
    md.sign(&stranger).unwrap(); // not in root at all
    md.sign(&unauthorized).unwrap(); // in root, not for targets
    md.sign(&a).unwrap(); // valid
                          // b's signature replaced with garbage: not hex, and then a wrong signature.
    let mut v = md.to_value();
    push_signature(&mut v, kb.key_id().as_str(), "zz-not-hex");
    let md = Metadata::<Targets>::from_value("targets", v).unwrap();
    let ok = root.verify_role(TopLevelRole::Targets, &md).unwrap();
    assert_eq!(ok.keyids, vec![ka.key_id()]);

    // Without a's signature nothing counts.
    let mut md2 = Metadata::new(Targets::new(expires()));
    md2.sign(&stranger).unwrap();
    md2.sign(&unauthorized).unwrap();
    md2.sign_as(&stranger, kb.key_id()).unwrap(); // signed by the wrong key under b's id
    assert_eq!(
        not_met(root.verify_role(TopLevelRole::Targets, &md2).unwrap_err()),
        (0, 1)
    );
    let _ = b;
}

fn push_signature(envelope: &mut Value, keyid: &str, sig: &str) {
    let Value::Object(m) = envelope else { panic!() };
    let Some(Value::Array(sigs)) = m.get_mut("signatures") else {
        panic!()
    };
    let mut s = json::Map::new();
    s.insert("keyid".into(), keyid.into());
    s.insert("sig".into(), sig.into());
    sigs.push(Value::Object(s));
}

#[test]
fn duplicated_keyid_is_malformed() {
    let (a, ka) = keypair(Algorithm::Ed25519);
    let md = Metadata::signed_by(Targets::new(expires()), &[&a]).unwrap();
    let mut v = md.to_value();
    let sig = md.signatures()[0].sig.clone();
    push_signature(&mut v, ka.key_id().as_str(), &sig);
    let err = Metadata::<Targets>::from_bytes(&json::to_json(&v)).unwrap_err();
    assert_eq!(
        err,
        MetadataError::DuplicateSignature {
            role: "targets".into(),
            keyid: ka.key_id()
        }
    );
}

#[test]
fn unsupported_key_scheme_is_ignored_not_fatal() {
    let (a, ka) = keypair(Algorithm::Ed25519);
    let weird = Key {
        keytype: "sphincs".into(),
        scheme: "sphincs-shake-256f".into(),
        public: "00".into(),
        keyval_extra: Default::default(),
        extra: Default::default(),
    };
    let weird_id = weird.key_id();
    let root = root_with_targets_keys(&[ka.clone(), weird], 1);
    let mut md = Metadata::new(Targets::new(expires()));
    md.sign_as(&a, weird_id).unwrap();
    md.sign(&a).unwrap();
    let ok = root.verify_role(TopLevelRole::Targets, &md).unwrap();
    assert_eq!(ok.keyids, vec![ka.key_id()]);
}

#[test]
fn delegated_roles_use_the_same_rule() {
    let (a, ka) = keypair(Algorithm::Ed25519);
    let (b, kb) = keypair(Algorithm::EcdsaP256Sha256);
    let name = RoleName::new("releases").unwrap();
    let mut role = DelegatedRole::with_paths(
        name.clone(),
        vec![ka.key_id(), kb.key_id()],
        vec!["v*".into()],
    );
    role.threshold = threshold(2);
    let mut parent = Targets::new(expires());
    parent.delegations = Some(Delegations {
        keys: BTreeMap::from([(ka.key_id(), ka.clone()), (kb.key_id(), kb.clone())]),
        roles: vec![role],
        extra: Default::default(),
    });

    let both = Metadata::signed_by(Targets::new(expires()), &[&a, &b]).unwrap();
    assert!(parent.verify_delegate("releases", &both).is_ok());
    let one = Metadata::signed_by(Targets::new(expires()), &[&a]).unwrap();
    assert_eq!(
        parent.verify_delegate("releases", &one).unwrap_err(),
        SignatureError::ThresholdNotMet {
            role: "releases".into(),
            valid: 1,
            needed: 2
        }
    );
    // The same signature twice under an alias id does not reach a threshold of 2 either.
    let mut aliased = parent.clone();
    let d = aliased.delegations.as_mut().unwrap();
    let alias = KeyId::new("second-id-for-a").unwrap();
    d.keys.insert(alias.clone(), ka.clone());
    d.roles[0].keyids = vec![ka.key_id(), alias.clone()];
    let mut md = Metadata::new(Targets::new(expires()));
    md.sign(&a).unwrap();
    md.sign_as(&a, alias).unwrap();
    assert!(aliased.verify_delegate("releases", &md).is_err());
    assert_eq!(
        parent.verify_delegate("nightly", &both).unwrap_err(),
        SignatureError::NotDelegated {
            role: "nightly".into()
        }
    );
}

#[test]
fn signing_key_file_round_trip_signs_the_same() {
    let (a, ka) = keypair(Algorithm::EcdsaP256Sha256);
    let pem = a
        .to_encrypted_pem(b"correct horse", Kdf::fast_insecure_for_tests())
        .unwrap();
    let back = PrivateKey::from_encrypted_pem(&pem, b"correct horse").unwrap();
    let root = root_with_targets_keys(&[ka], 1);
    let md = Metadata::signed_by(Targets::new(expires()), &[&back]).unwrap();
    assert!(root.verify_role(TopLevelRole::Targets, &md).is_ok());
}

/// The number of signatures a file carries, and of key ids a role lists, multiplies the cost
/// of every verification (each signature is checked over the whole signed text): both are
/// capped before anything is verified.
#[test]
fn signature_and_key_id_counts_are_capped_before_verifying() {
    use vouch_tuf::metadata::{MAX_ROLE_KEYS, MAX_SIGNATURES};
    let targets = Metadata::new(Targets::new(expires())).to_bytes();
    let with_signatures = |n: usize| {
        let sigs: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"keyid":"{i:064x}","sig":"00"}}"#))
            .collect();
        let text = String::from_utf8(targets.clone()).unwrap();
        text.replacen(
            r#""signatures":[]"#,
            &format!(r#""signatures":[{}]"#, sigs.join(",")),
            1,
        )
    };
    assert!(Metadata::<Targets>::from_bytes(with_signatures(MAX_SIGNATURES).as_bytes()).is_ok());
    let e = Metadata::<Targets>::from_bytes(with_signatures(MAX_SIGNATURES + 1).as_bytes())
        .unwrap_err();
    assert!(e.to_string().contains("at most 64"), "{e}");

    let (_, key) = keypair(Algorithm::Ed25519);
    let listing = |n: usize| {
        let mut t = Targets::new(expires());
        t.delegations = Some(Delegations {
            keys: [(key.key_id(), key.clone())].into_iter().collect(),
            roles: vec![DelegatedRole::with_paths(
                RoleName::new("releases").unwrap(),
                (0..n)
                    .map(|i| KeyId::new(format!("{i:064x}")).unwrap())
                    .collect(),
                vec!["*".into()],
            )],
            extra: Default::default(),
        });
        Metadata::new(t).to_bytes()
    };
    assert!(Metadata::<Targets>::from_bytes(&listing(MAX_ROLE_KEYS)).is_ok());
    let e = Metadata::<Targets>::from_bytes(&listing(MAX_ROLE_KEYS + 1)).unwrap_err();
    assert!(e.to_string().contains("at most 64"), "{e}");
}
