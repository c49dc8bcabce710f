//! Tests of the Notary dialect over documents built and signed here, the way Notary writes
//! them (certificate root keys, raw `r || s` ECDSA signatures, base64 everywhere).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use base64ct::{Base64, Encoding};
use rcgen::{CertificateParams, DnType, KeyPair, PublicKeyData, PKCS_ECDSA_P256_SHA256};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::*;
use crate::crypto::{Algorithm, PrivateKey, Signer};
use crate::json::{canonical, parse, Value};
use crate::time::Timestamp as Instant;

const GUN: &str = "example.com/app";

/// A test key: ECDSA P-256 (as a plain key or a certificate) or Ed25519.
struct Key {
    keytype: &'static str,
    public_b64: String,
    ecdsa: Option<EcdsaKeyPair>,
    ed25519: Option<PrivateKey>,
}

impl Key {
    fn ecdsa() -> Self {
        let kp = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        Self::from_rcgen(
            &kp,
            "ecdsa",
            Base64::encode_string(&kp.subject_public_key_info()),
        )
    }

    fn cert(cn: &str, not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Self {
        let kp = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let cert = params.self_signed(&kp).unwrap();
        Self::from_rcgen(
            &kp,
            "ecdsa-x509",
            Base64::encode_string(cert.pem().as_bytes()),
        )
    }

    fn from_rcgen(kp: &KeyPair, keytype: &'static str, public_b64: String) -> Self {
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &kp.serialize_der(),
            &SystemRandom::new(),
        )
        .unwrap();
        Self {
            keytype,
            public_b64,
            ecdsa: Some(pair),
            ed25519: None,
        }
    }

    fn ed25519() -> Self {
        let k = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let raw = crate::hex::decode(&k.verifying_key().to_tuf_public()).unwrap();
        Self {
            keytype: "ed25519",
            public_b64: Base64::encode_string(&raw),
            ecdsa: None,
            ed25519: Some(k),
        }
    }

    fn id(&self) -> String {
        key_id(self.keytype, &self.public_b64)
    }

    fn json(&self) -> String {
        format!(
            r#"{{"keytype":"{}","keyval":{{"private":null,"public":"{}"}}}}"#,
            self.keytype, self.public_b64
        )
    }

    fn sign(&self, msg: &[u8]) -> (String, Vec<u8>) {
        match (&self.ecdsa, &self.ed25519) {
            (Some(p), _) => (
                "ecdsa".into(),
                p.sign(&SystemRandom::new(), msg).unwrap().as_ref().to_vec(),
            ),
            (_, Some(k)) => ("eddsa".into(), k.sign(msg).unwrap()),
            _ => unreachable!(),
        }
    }
}

/// Wraps `signed` (JSON text) in an envelope signed by `keys`.
fn envelope(signed: &str, keys: &[&Key]) -> Vec<u8> {
    let value = parse(signed.as_bytes()).unwrap();
    let msg = canonical(&value);
    let sigs: Vec<String> = keys
        .iter()
        .map(|k| {
            let (method, sig) = k.sign(&msg);
            format!(
                r#"{{"keyid":"{}","method":"{method}","sig":"{}"}}"#,
                k.id(),
                Base64::encode_string(&sig)
            )
        })
        .collect();
    format!(r#"{{"signed":{signed},"signatures":[{}]}}"#, sigs.join(",")).into_bytes()
}

fn root_json(root: &Key, other: &Key, version: u64) -> String {
    format!(
        r#"{{"_type":"Root","consistent_snapshot":false,"expires":"2036-11-27T01:58:39.730960174Z",
        "keys":{{"{rid}":{rk},"{oid}":{ok}}},
        "roles":{{"root":{{"keyids":["{rid}"],"threshold":1}},"snapshot":{{"keyids":["{oid}"],"threshold":1}},
        "targets":{{"keyids":["{oid}"],"threshold":1}},"timestamp":{{"keyids":["{oid}"],"threshold":1}}}},
        "version":{version}}}"#,
        rid = root.id(),
        rk = root.json(),
        oid = other.id(),
        ok = other.json()
    )
}

fn keymap<'a>(
    keys: &'a BTreeMap<String, NotaryKey>,
    ids: &[String],
) -> BTreeMap<String, &'a NotaryKey> {
    ids.iter().map(|id| (id.clone(), &keys[id])).collect()
}

#[test]
fn a_root_with_a_certificate_key_parses_and_verifies() {
    let root_key = Key::cert(GUN, (2020, 1, 1), (2040, 1, 1));
    let other = Key::ecdsa();
    let bytes = envelope(&root_json(&root_key, &other, 1), &[&root_key]);
    let doc = Signed::parse("root", &bytes).unwrap();
    let root = Root::from_signed(&doc.signed).unwrap();
    assert_eq!(root.common.version, 1);
    assert_eq!(root.common.expires.nanos, 730_960_174);
    let rk = &root.keys[&root_key.id()];
    assert_eq!(rk.keytype(), KeyType::EcdsaX509);
    let cert = rk.certificate().unwrap();
    assert_eq!(cert.common_name.as_deref(), Some(GUN));
    assert_eq!(
        cert.problem(GUN, Instant::parse("2030-01-01T00:00:00Z").unwrap(), true),
        None
    );
    let spec = root.role("root").unwrap();
    let counted = verify_threshold(&doc, "root", &keymap(&root.keys, &spec.keyids), 1).unwrap();
    assert_eq!(counted, vec![root_key.id()]);
}

#[test]
fn a_signature_by_another_key_does_not_count() {
    let root_key = Key::cert(GUN, (2020, 1, 1), (2040, 1, 1));
    let other = Key::ecdsa();
    // Signed by the targets key only.
    let bytes = envelope(&root_json(&root_key, &other, 1), &[&other]);
    let doc = Signed::parse("root", &bytes).unwrap();
    let root = Root::from_signed(&doc.signed).unwrap();
    let ids = &root.role("root").unwrap().keyids;
    let err = verify_threshold(&doc, "root", &keymap(&root.keys, ids), 1).unwrap_err();
    assert!(
        matches!(
            err,
            NotaryError::Threshold {
                valid: 0,
                threshold: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_tampered_document_fails_its_signature() {
    let k = Key::ecdsa();
    let signed = r#"{"_type":"Targets","delegations":{"keys":{},"roles":[]},"expires":"2030-01-01T00:00:00Z","targets":{"v1":{"hashes":{"sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},"length":1}},"version":2}"#;
    let bytes = envelope(signed, &[&k]);
    let tampered = String::from_utf8(bytes)
        .unwrap()
        .replace(r#""length":1"#, r#""length":2"#);
    let doc = Signed::parse("targets", tampered.as_bytes()).unwrap();
    let parsed = parse(k.json().as_bytes()).unwrap();
    let key = NotaryKey::parse(&k.id(), &parsed).unwrap();
    let keys = BTreeMap::from([(k.id(), &key)]);
    let err = verify_threshold(&doc, "targets", &keys, 1).unwrap_err();
    let NotaryError::Threshold { problems, .. } = &err else {
        panic!("{err}")
    };
    assert!(problems[0].contains("does not verify"), "{err}");
    // The untampered document verifies, and a re-spaced copy of it too (the signature is
    // over the canonical form of `signed`, not over the document's bytes).
    let good = envelope(signed, &[&k]);
    let doc = Signed::parse("targets", &good).unwrap();
    verify_threshold(&doc, "targets", &keys, 1).unwrap();
    let spaced = String::from_utf8(good).unwrap().replace(",\"", ", \"");
    let respaced = Signed::parse("targets", spaced.as_bytes()).unwrap();
    verify_threshold(&respaced, "targets", &keys, 1).unwrap();
    let t = Targets::from_signed(&doc.signed, "targets").unwrap();
    assert_eq!(t.targets["v1"].length, 1);
}

#[test]
fn ed25519_signatures_use_the_eddsa_method() {
    let k = Key::ed25519();
    let signed = r#"{"_type":"Timestamp","expires":"2030-01-01T00:00:00Z","meta":{"snapshot":{"hashes":{"sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},"length":3}},"version":1}"#;
    let doc = Signed::parse("timestamp", &envelope(signed, &[&k])).unwrap();
    let key = NotaryKey::parse(&k.id(), &parse(k.json().as_bytes()).unwrap()).unwrap();
    let keys = BTreeMap::from([(k.id(), &key)]);
    verify_threshold(&doc, "timestamp", &keys, 1).unwrap();
    let ts = Timestamp::from_signed(&doc.signed).unwrap();
    assert_eq!(ts.snapshot.length, 3);
}

#[test]
fn a_method_that_does_not_fit_the_key_type_is_refused() {
    let k = Key::ed25519();
    let signed = r#"{"_type":"Timestamp","expires":"2030-01-01T00:00:00Z","meta":{"snapshot":{"hashes":{"sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},"length":3}},"version":1}"#;
    let bytes = String::from_utf8(envelope(signed, &[&k]))
        .unwrap()
        .replace(r#""method":"eddsa""#, r#""method":"ecdsa""#);
    let doc = Signed::parse("timestamp", bytes.as_bytes()).unwrap();
    let key = NotaryKey::parse(&k.id(), &parse(k.json().as_bytes()).unwrap()).unwrap();
    let keys = BTreeMap::from([(k.id(), &key)]);
    let err = verify_threshold(&doc, "timestamp", &keys, 1).unwrap_err();
    assert!(err.to_string().contains("uses method \"ecdsa\""), "{err}");
}

#[test]
fn a_der_ecdsa_signature_is_not_notarys_form() {
    let k = Key::ecdsa();
    let signed = r#"{"_type":"Timestamp","expires":"2030-01-01T00:00:00Z","meta":{"snapshot":{"hashes":{"sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},"length":3}},"version":1}"#;
    let key = NotaryKey::parse(&k.id(), &parse(k.json().as_bytes()).unwrap()).unwrap();
    let mut doc = Signed::parse("timestamp", &envelope(signed, &[&k])).unwrap();
    doc.signatures[0].sig.push(0);
    let keys = BTreeMap::from([(k.id(), &key)]);
    assert!(verify_threshold(&doc, "timestamp", &keys, 1).is_err());
}

#[test]
fn one_key_under_two_ids_counts_once() {
    // The same P-256 key as a plain key and inside a certificate: two ids, one key.
    let kp = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let plain = Key::from_rcgen(
        &kp,
        "ecdsa",
        Base64::encode_string(&kp.subject_public_key_info()),
    );
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, GUN);
    let cert = params.self_signed(&kp).unwrap();
    let as_cert = Key::from_rcgen(
        &kp,
        "ecdsa-x509",
        Base64::encode_string(cert.pem().as_bytes()),
    );
    assert_ne!(plain.id(), as_cert.id());
    let signed = r#"{"_type":"Targets","expires":"2030-01-01T00:00:00Z","targets":{},"version":1}"#;
    let doc = Signed::parse("targets", &envelope(signed, &[&plain, &as_cert])).unwrap();
    let a = NotaryKey::parse(&plain.id(), &parse(plain.json().as_bytes()).unwrap()).unwrap();
    let b = NotaryKey::parse(&as_cert.id(), &parse(as_cert.json().as_bytes()).unwrap()).unwrap();
    let keys = BTreeMap::from([(plain.id(), &a), (as_cert.id(), &b)]);
    let err = verify_threshold(&doc, "targets", &keys, 2).unwrap_err();
    assert!(
        matches!(err, NotaryError::Threshold { valid: 1, .. }),
        "{err}"
    );
}

#[test]
fn a_key_listed_under_another_id_is_refused() {
    let k = Key::ecdsa();
    let other = Key::ecdsa();
    let err = NotaryKey::parse(&other.id(), &parse(k.json().as_bytes()).unwrap()).unwrap_err();
    assert!(matches!(err, NotaryError::KeyIdMismatch { .. }), "{err}");
    // The same in a root: the whole document is refused.
    let root_key = Key::cert(GUN, (2020, 1, 1), (2040, 1, 1));
    let text = root_json(&root_key, &k, 1).replacen(
        &format!("\"{}\":{{", k.id()),
        &format!("\"{}\":{{", other.id()),
        1,
    );
    let text = text.replace(&k.id(), &other.id());
    let doc = Signed::parse("root", &envelope(&text, &[&root_key])).unwrap();
    assert!(matches!(
        Root::from_signed(&doc.signed),
        Err(NotaryError::KeyIdMismatch { .. })
    ));
}

#[test]
fn keys_that_do_not_parse_for_their_type_are_refused() {
    let ed = Key::ed25519();
    // An Ed25519 key labelled as ECDSA.
    let json = ed.json().replace("\"ed25519\"", "\"ecdsa\"");
    let id = key_id("ecdsa", &ed.public_b64);
    assert!(matches!(
        NotaryKey::parse(&id, &parse(json.as_bytes()).unwrap()),
        Err(NotaryError::BadKey { .. })
    ));
    // Unknown type, private part present, unknown field.
    for json in [
        r#"{"keytype":"dsa","keyval":{"private":null,"public":"QUJD"}}"#,
        r#"{"keytype":"ecdsa","keyval":{"private":"QUJD","public":"QUJD"}}"#,
        r#"{"keytype":"ecdsa","keyval":{"private":null,"public":"QUJD"},"scheme":"x"}"#,
    ] {
        let v = parse(json.as_bytes()).unwrap();
        assert!(
            NotaryKey::parse(&key_id("ecdsa", "QUJD"), &v).is_err(),
            "{json}"
        );
    }
}

#[test]
fn certificates_for_another_gun_or_out_of_validity_are_reported() {
    let k = Key::cert("example.com/other", (2020, 1, 1), (2040, 1, 1));
    let key = NotaryKey::parse(&k.id(), &parse(k.json().as_bytes()).unwrap()).unwrap();
    let now = Instant::parse("2030-01-01T00:00:00Z").unwrap();
    assert!(key
        .certificate()
        .unwrap()
        .problem(GUN, now, true)
        .unwrap()
        .contains("common name"));
    let k = Key::cert(GUN, (2020, 1, 1), (2021, 1, 1));
    let key = NotaryKey::parse(&k.id(), &parse(k.json().as_bytes()).unwrap()).unwrap();
    assert!(key
        .certificate()
        .unwrap()
        .problem(GUN, now, true)
        .unwrap()
        .contains("valid from"));
}

#[test]
fn type_version_and_roles_are_checked() {
    let root_key = Key::cert(GUN, (2020, 1, 1), (2040, 1, 1));
    let other = Key::ecdsa();
    let good = root_json(&root_key, &other, 1);
    let cases = [
        (good.replace("\"Root\"", "\"root\""), "expected type Root"),
        (
            good.replace("\"version\":1", "\"version\":0"),
            "version cannot be less than 1",
        ),
        (
            good.replace("\"timestamp\":{", "\"timestampx\":{"),
            "unknown role",
        ),
        (
            good.replace("\"threshold\":1}", "\"threshold\":0}"),
            "invalid threshold",
        ),
        (
            good.replace("\"version\":1", "\"version\":1,\"Version\":7"),
            "unknown field",
        ),
        (
            good.replace("\"version\":1", "\"version\":1,\"spec_version\":\"1.0\""),
            "unknown field",
        ),
    ];
    for (text, expected) in cases {
        let doc = Signed::parse("root", &envelope(&text, &[&root_key])).unwrap();
        let err = Root::from_signed(&doc.signed).unwrap_err();
        assert!(err.to_string().contains(expected), "{err} / {expected}");
    }
}

#[test]
fn numbers_go_cannot_carry_exactly_are_refused() {
    let k = Key::ecdsa();
    for n in [
        "9007199254740993",
        "-9007199254740993",
        "18446744073709551616",
    ] {
        let signed = format!(
            r#"{{"_type":"Targets","expires":"2030-01-01T00:00:00Z","targets":{{}},"version":{n}}}"#
        );
        let err = Signed::parse("targets", &envelope(&signed, &[&k])).unwrap_err();
        assert!(
            matches!(err, NotaryError::InexactNumber { .. }),
            "{n}: {err}"
        );
    }
    let signed = r#"{"_type":"Targets","expires":"2030-01-01T00:00:00Z","targets":{},"version":9007199254740992}"#;
    assert!(Signed::parse("targets", &envelope(signed, &[&k])).is_ok());
    // Floats, duplicate keys and lone surrogates are refused by the strict parser.
    for doc in [
        r#"{"signed":{"version":1.0},"signatures":[]}"#,
        r#"{"signed":{"version":1,"version":2},"signatures":[]}"#,
        r#"{"signed":{"a":"\ud800"},"signatures":[]}"#,
    ] {
        assert!(
            matches!(
                Signed::parse("targets", doc.as_bytes()),
                Err(NotaryError::Json { .. })
            ),
            "{doc}"
        );
    }
}

#[test]
fn html_and_control_characters_are_signed_raw_as_docker_go_writes_them() {
    // docker/go's canonical mode escapes only `\` and `"`: `<>&`, U+2028 and control
    // characters are written raw, exactly as json::canonical does, so a target name with
    // them verifies over the same bytes.
    let k = Key::ecdsa();
    let signed = "{\"_type\":\"Targets\",\"expires\":\"2030-01-01T00:00:00Z\",\"targets\":{\"a<b>&c\\u2028\\u0001\":{\"hashes\":{\"sha256\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"},\"length\":1}},\"version\":1}";
    let doc = Signed::parse("targets", &envelope(signed, &[&k])).unwrap();
    let text = "\"a<b>&c\u{2028}\u{1}\"";
    assert!(doc
        .signed_bytes
        .windows(text.len())
        .any(|w| w == text.as_bytes()));
    let key = NotaryKey::parse(&k.id(), &parse(k.json().as_bytes()).unwrap()).unwrap();
    verify_threshold(&doc, "targets", &BTreeMap::from([(k.id(), &key)]), 1).unwrap();
}

#[test]
fn delegations_must_be_valid_direct_children() {
    let k = Key::ecdsa();
    let mk = |name: &str| {
        format!(
            r#"{{"_type":"Targets","delegations":{{"keys":{{"{id}":{key}}},"roles":[{{"keyids":["{id}"],"name":"{name}","paths":[""],"threshold":1}}]}},"expires":"2030-01-01T00:00:00Z","targets":{{}},"version":1}}"#,
            id = k.id(),
            key = k.json()
        )
    };
    let ok = Signed::parse("targets", &envelope(&mk("targets/releases"), &[&k])).unwrap();
    let t = Targets::from_signed(&ok.signed, "targets").unwrap();
    assert_eq!(t.delegations[0].name, "targets/releases");
    assert_eq!(t.delegations[0].paths, vec![String::new()]);
    for bad in [
        "targets/a/b",
        "targets/Releases",
        "releases",
        "targets/../x",
        "targets/a/",
    ] {
        let doc = Signed::parse("targets", &envelope(&mk(bad), &[&k])).unwrap();
        assert!(
            Targets::from_signed(&doc.signed, "targets").is_err(),
            "{bad}"
        );
    }
    assert!(Targets::from_signed(&ok.signed, "releases").is_err());
}

#[test]
fn file_meta_checks_length_and_hashes() {
    let bytes = b"snapshot bytes";
    let sha = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut m = FileMeta {
        length: bytes.len() as u64,
        sha256: Some(sha.as_ref().try_into().unwrap()),
        sha512: None,
        custom: None,
    };
    m.check("snapshot", bytes).unwrap();
    assert!(matches!(
        m.check("snapshot", b"snapshot bytez"),
        Err(NotaryError::HashMismatch { .. })
    ));
    assert!(matches!(
        m.check("snapshot", b"short"),
        Err(NotaryError::LengthMismatch { .. })
    ));
    m.sha512 = Some(vec![0; 64]);
    assert!(matches!(
        m.check("snapshot", bytes),
        Err(NotaryError::HashMismatch {
            algorithm: "sha512",
            ..
        })
    ));
}

#[test]
fn counts_are_bounded() {
    let sigs: Vec<String> = (0..=MAX_SIGNATURES)
        .map(|i| format!(r#"{{"keyid":"{i}","method":"ecdsa","sig":"QUJD"}}"#))
        .collect();
    let doc = format!(r#"{{"signed":{{}},"signatures":[{}]}}"#, sigs.join(","));
    assert!(matches!(
        Signed::parse("root", doc.as_bytes()),
        Err(NotaryError::TooMany {
            what: "signatures",
            ..
        })
    ));
    let paths: Vec<String> = (0..=MAX_PATHS).map(|i| format!("\"p{i}\"")).collect();
    let k = Key::ecdsa();
    let signed = format!(
        r#"{{"_type":"Targets","delegations":{{"keys":{{"{id}":{key}}},"roles":[{{"keyids":["{id}"],"name":"targets/a","paths":[{p}],"threshold":1}}]}},"expires":"2030-01-01T00:00:00Z","targets":{{}},"version":1}}"#,
        id = k.id(),
        key = k.json(),
        p = paths.join(",")
    );
    let doc = Signed::parse("targets", &envelope(&signed, &[&k])).unwrap();
    assert!(matches!(
        Targets::from_signed(&doc.signed, "targets"),
        Err(NotaryError::TooMany { .. })
    ));
}

#[test]
fn parsing_arbitrary_bytes_never_panics() {
    use proptest::prelude::*;
    proptest!(|(bytes in proptest::collection::vec(any::<u8>(), 0..400))| {
        if let Ok(doc) = Signed::parse("root", &bytes) {
            let _ = Root::from_signed(&doc.signed);
            let _ = Targets::from_signed(&doc.signed, "targets");
            let _ = Snapshot::from_signed(&doc.signed);
            let _ = Timestamp::from_signed(&doc.signed);
        }
    });
    let _ = Value::Null;
}

#[test]
fn fields_go_would_match_case_insensitively_are_refused() {
    // Go fills `Signed` from the last key matching "signed" in any case (or by Unicode
    // folding: "ſigned"); vouch would read the exact one. Neither is guessed at.
    let k = Key::ecdsa();
    let signed = r#"{"_type":"Targets","expires":"2030-01-01T00:00:00Z","targets":{},"version":1}"#;
    let good = String::from_utf8(envelope(signed, &[&k])).unwrap();
    for extra in [
        r#""Signed":{}"#,
        "\"\u{17f}igned\":{}",
        r#""SIGNATURES":[]"#,
    ] {
        let doc = good.replacen('{', &format!("{{{extra},"), 1);
        let err = Signed::parse("targets", doc.as_bytes()).unwrap_err();
        assert!(
            matches!(err, NotaryError::UnknownField { .. }),
            "{extra}: {err}"
        );
    }
    let delegations = signed.replace(r#""targets":{}"#, r#""targets":{},"Delegations":{}"#);
    let doc = Signed::parse("targets", &envelope(&delegations, &[&k])).unwrap();
    assert!(matches!(
        Targets::from_signed(&doc.signed, "targets"),
        Err(NotaryError::UnknownField { .. })
    ));
}

#[test]
fn a_certificate_bundle_with_two_leaves_is_refused() {
    let a = Key::cert(GUN, (2020, 1, 1), (2040, 1, 1));
    let b = Key::cert(GUN, (2020, 1, 1), (2040, 1, 1));
    let pem = |k: &Key| String::from_utf8(Base64::decode_vec(&k.public_b64).unwrap()).unwrap();
    let bundle = Base64::encode_string(format!("{}{}", pem(&a), pem(&b)).as_bytes());
    let json =
        format!(r#"{{"keytype":"ecdsa-x509","keyval":{{"private":null,"public":"{bundle}"}}}}"#);
    let err = NotaryKey::parse(
        &key_id("ecdsa-x509", &bundle),
        &parse(json.as_bytes()).unwrap(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("more than one leaf"), "{err}");
}

#[test]
fn a_certificate_with_two_common_names_is_refused() {
    // Go keeps the last common name of a subject and Notary checks that one against the GUN;
    // a certificate naming this GUN first and another one last would be read differently.
    let kp = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, GUN);
    params
        .distinguished_name
        .push(DnType::CustomDnType(vec![2, 5, 4, 3]), "example.com/other");
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2040, 1, 1);
    let cert = params.self_signed(&kp).unwrap();
    let public_b64 = Base64::encode_string(cert.pem().as_bytes());
    let json = format!(
        r#"{{"keytype":"ecdsa-x509","keyval":{{"private":null,"public":"{public_b64}"}}}}"#
    );
    let err = NotaryKey::parse(
        &key_id("ecdsa-x509", &public_b64),
        &parse(json.as_bytes()).unwrap(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("more than one common name"),
        "{err}"
    );
}

#[test]
fn path_prefixes_match_as_notarys_prefix_rule_does() {
    use proptest::prelude::*;
    let naive = |paths: &[String], name: &str| paths.iter().any(|p| name.starts_with(p.as_str()));
    proptest!(|(
        paths in proptest::collection::vec("[ab/é]{0,4}", 0..8),
        names in proptest::collection::vec("[ab/é]{0,6}", 0..16),
    )| {
        let set = PathPrefixes::new(paths.iter().map(String::as_str));
        for name in &names {
            prop_assert_eq!(set.matches(name), naive(&paths, name), "{:?} {}", paths, name);
        }
    });
}

#[test]
fn path_prefixes_chosen_by_a_signer_to_be_costly_still_match_by_the_prefix_rule() {
    // A delegation signer chooses both counts: 1,024 paths of 4 KiB sharing all but their
    // last bytes, and 5,000 names sharing the same start and falling under none of them.
    // Checking every name against every path would compare some 20 GB of text; the set
    // answers each name with one binary search and one prefix comparison (its cost is
    // argued in `PathPrefixes`; tests here check answers, not time).
    let stem = "p".repeat(4_090);
    let paths: Vec<String> = (0..MAX_PATHS).map(|i| format!("{stem}{i:05}")).collect();
    let names: Vec<String> = (0..5_000).map(|i| format!("{stem}x{i:05}")).collect();
    let set = PathPrefixes::new(paths.iter().map(String::as_str));
    assert!(names.iter().all(|n| !set.matches(n)));
    assert!(set.matches(&format!("{stem}00017-tag")));
    // Covered prefixes are dropped: one short prefix covers every long one.
    let mut with_cover = paths.clone();
    with_cover.push(stem.clone());
    let covered = PathPrefixes::new(with_cover.iter().map(String::as_str));
    assert_eq!(covered, PathPrefixes::new([stem.as_str()]));
}

#[test]
fn text_outside_the_certificate_pem_blocks_is_refused() {
    // Go's PEM decoder only sees a BEGIN line at the start of a line: with text before it,
    // Notary would skip the block (and take a later one, if any, as the key), where a search
    // for the marker anywhere would take it.
    let a = Key::cert(GUN, (2020, 1, 1), (2040, 1, 1));
    let pem = String::from_utf8(Base64::decode_vec(&a.public_b64).unwrap()).unwrap();
    for text in [
        format!("x{pem}"),
        format!("junk\nmore{pem}"),
        format!("{pem}trailing"),
        format!("{}x\n{}", pem, pem),
    ] {
        let b64 = Base64::encode_string(text.as_bytes());
        let json =
            format!(r#"{{"keytype":"ecdsa-x509","keyval":{{"private":null,"public":"{b64}"}}}}"#);
        let got = NotaryKey::parse(
            &key_id("ecdsa-x509", &b64),
            &parse(json.as_bytes()).unwrap(),
        );
        assert!(got.is_err(), "{text:?}");
    }
    // Whitespace around the blocks is fine.
    let b64 = Base64::encode_string(format!("\n{pem}\n\n").as_bytes());
    let json =
        format!(r#"{{"keytype":"ecdsa-x509","keyval":{{"private":null,"public":"{b64}"}}}}"#);
    NotaryKey::parse(
        &key_id("ecdsa-x509", &b64),
        &parse(json.as_bytes()).unwrap(),
    )
    .unwrap();
}
