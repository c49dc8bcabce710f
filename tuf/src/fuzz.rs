//! Fuzzing entry points: one function per parser of this crate, each taking arbitrary bytes.
//!
//! Every function here must return normally for every input: a panic is a bug, either in
//! the parser or in the property the function checks. The bodies are called from two
//! places: the cargo-fuzz targets in the repository's `fuzz/` project (long campaigns with
//! libFuzzer, outside the workspace and outside CI), and this crate's `fuzz_corpus` test,
//! which replays every checked-in seed and every crash input kept under
//! `fuzz/corpus/<target>/` in seconds.
//!
//! Where a property is cheap it is asserted, not only the absence of panics:
//! - [`canonical_json`]: canonicalising is idempotent, canonical bytes (and [`json::to_json`]
//!   bytes) parse back to the same value, and the canonical-member span agrees with the
//!   canonical form;
//! - [`metadata`]: a document that parses re-serialises ([`Metadata::to_bytes`]) to bytes that
//!   parse to the same canonical `signed` part, re-serialising again changes nothing, and a
//!   root's check of its own signatures gives the same answer before and after;
//! - [`reference`], [`pattern`], [`api_path`], [`error_body`], [`proposal`]: what parses
//!   prints or encodes to a form that parses back to the same value.
//!
//! The two key-file readers derive a key from a passphrase before they can say anything about
//! the rest of the file, at a cost the file chooses (up to 10,000,000 PBKDF2 iterations or
//! 1 GiB of scrypt memory). Their targets read the file's key-derivation parameters first,
//! with the same `pkcs8` types the readers use, and skip inputs that ask for more than
//! [`FUZZ_MAX_PBKDF2_ITERATIONS`] or [`FUZZ_MAX_SCRYPT_WORK`]: the fuzzer then spends its time
//! on the parsing, not on hashing. The refusal of costs above the readers' own limits is
//! covered by their unit tests.
//!
//! Not part of the API: hidden from the documentation, and free to change.

use crate::api::{self, ErrorBody};
use crate::crypto::{NotaryKeyFile, PrivateKey};
use crate::json::{self, JsonError, Value};
use crate::metadata::{Metadata, Role, Root, Snapshot, Targets, TimestampRole};
use crate::notary;
use crate::pattern::NamePattern;
use crate::reference::{Digest, Gun, ImageRef};
use crate::types::TopLevelRole;

/// A fuzz target: its name (that of its `fuzz/fuzz_targets/<name>.rs` file and of its
/// `fuzz/corpus/<name>/` directory) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// The fuzz targets of this crate.
pub const TARGETS: &[Target] = &[
    ("canonical_json", canonical_json),
    ("metadata", metadata),
    ("notary_metadata", notary_metadata),
    ("reference", reference),
    ("pattern", pattern),
    ("api_path", api_path),
    ("error_body", error_body),
    ("proposal", proposal),
    ("private_key", private_key),
    ("notary_key", notary_key),
];

/// Canonical JSON: [`json::parse`], [`json::canonical`], [`json::to_json`] and
/// [`json::parse_with_canonical_member`].
pub fn canonical_json(data: &[u8]) {
    let Ok(v) = json::parse(data) else {
        // The span-reporting parser must refuse exactly what the plain one refuses.
        assert!(json::parse_with_canonical_member(data, "signed").is_err());
        return;
    };
    let canonical = json::canonical(&v);
    // A raw control character inside a string is canonical (securesystemslib writes it so)
    // but not valid JSON; everything else must read back.
    if !canonical.iter().any(|&b| b < 0x20) {
        match json::parse(&canonical) {
            Ok(again) => {
                assert!(again == v, "canonical bytes parse to another value");
                assert_eq!(
                    json::canonical(&again),
                    canonical,
                    "canonical is not idempotent"
                );
            }
            // The compact form packs more values into fewer bytes than the input did; the
            // density bound may refuse it (documented at `json::max_values`).
            Err(JsonError::TooDense { .. }) => {}
            Err(e) => panic!("canonical bytes do not parse: {e}"),
        }
    }
    let compact = json::to_json(&v);
    match json::parse(&compact) {
        Ok(again) => assert!(again == v, "to_json bytes parse to another value"),
        Err(JsonError::TooDense { .. }) => {}
        Err(e) => panic!("to_json bytes do not parse: {e}"),
    }
    let (same, span) = match json::parse_with_canonical_member(data, "signed") {
        Ok(r) => r,
        Err(e) => panic!("parse accepted what parse_with_canonical_member refused: {e}"),
    };
    assert!(same == v, "the two parsers disagree on the value");
    if let Some(range) = span {
        let member = v
            .as_object()
            .and_then(|m| m.get("signed"))
            .map(json::canonical);
        assert_eq!(
            data.get(range).map(<[u8]>::to_vec),
            member,
            "the canonical span is not the canonical form of `signed`"
        );
    }
}

/// TUF metadata envelopes of every role ([`Metadata::from_bytes`]): the role is the one the
/// document's `signed._type` names, or each role in turn when it names none.
pub fn metadata(data: &[u8]) {
    let kind = json::parse(data).ok().and_then(|v| {
        v.as_object()
            .and_then(|m| m.get("signed"))
            .and_then(Value::as_object)
            .and_then(|m| m.get("_type"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    match kind.as_deref() {
        Some("root") => {
            if let Some((md, again)) = metadata_round_trip::<Root>(data) {
                // Root signs itself: the signature check (with the keys the document lists,
                // PEM keys parsed) gives the same answer after re-serialisation.
                let verified = md.signed().verify_role(TopLevelRole::Root, &md);
                let reverified = again.signed().verify_role(TopLevelRole::Root, &again);
                assert_eq!(
                    verified.is_ok(),
                    reverified.is_ok(),
                    "root verifies differently after re-serialisation"
                );
            }
        }
        Some("targets") => {
            metadata_round_trip::<Targets>(data);
        }
        Some("snapshot") => {
            metadata_round_trip::<Snapshot>(data);
        }
        Some("timestamp") => {
            metadata_round_trip::<TimestampRole>(data);
        }
        _ => {
            metadata_round_trip::<Root>(data);
            metadata_round_trip::<Targets>(data);
            metadata_round_trip::<Snapshot>(data);
            metadata_round_trip::<TimestampRole>(data);
        }
    }
}

/// Parses `data` as a `T`; when it parses, checks the round trip and returns the document
/// and its re-parsed re-serialisation.
fn metadata_round_trip<T: Role>(data: &[u8]) -> Option<(Metadata<T>, Metadata<T>)> {
    let md = Metadata::<T>::from_bytes(data).ok()?;
    let bytes = md.to_bytes();
    let again = match Metadata::<T>::from_bytes(&bytes) {
        Ok(again) => again,
        Err(e) => panic!("re-serialised {} does not parse: {e}", T::TYPE),
    };
    assert_eq!(
        again.canonical_signed(),
        md.canonical_signed(),
        "re-serialised {} has another canonical signed part",
        T::TYPE
    );
    assert_eq!(again.signatures().len(), md.signatures().len());
    assert_eq!(again.to_bytes(), bytes, "re-serialising is not stable");
    Some((md, again))
}

/// The Notary v1 dialect: [`notary::Signed::parse`] and every role's `from_signed`.
pub fn notary_metadata(data: &[u8]) {
    let Ok(signed) = notary::Signed::parse("fuzz", data) else {
        return;
    };
    // The bytes Notary's signatures cover are the canonical form of `signed`.
    assert_eq!(
        json::canonical(&Value::Object(signed.signed.clone())),
        signed.signed_bytes
    );
    let _ = notary::Root::from_signed(&signed.signed);
    let _ = notary::Targets::from_signed(&signed.signed, "targets");
    let _ = notary::Targets::from_signed(&signed.signed, "targets/releases");
    let _ = notary::Snapshot::from_signed(&signed.signed);
    let _ = notary::Timestamp::from_signed(&signed.signed);
}

/// Image references, digests and GUNs ([`ImageRef::parse`], [`Digest::parse`], [`Gun::new`]):
/// the printed form of what parses parses back to the same value.
pub fn reference(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = ImageRef::parse(s) {
        let printed = r.to_string();
        match ImageRef::parse(&printed) {
            Ok(again) => assert_eq!(again, r, "{printed:?} reads back differently"),
            Err(e) => panic!("the printed reference {printed:?} does not parse: {e}"),
        }
        let gun = r.gun();
        assert_eq!(Gun::new(gun.as_str()).ok().as_ref(), Some(&gun));
    }
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(Digest::parse(d.as_str()).ok().as_ref(), Some(&d));
    }
    if let Ok(g) = Gun::new(s) {
        assert_eq!(Gun::new(g.as_str()).ok().as_ref(), Some(&g));
        let canonical = g.canonical();
        match Gun::new(canonical.as_str()) {
            Ok(again) => assert_eq!(again.canonical(), canonical, "canonical is not idempotent"),
            Err(e) => panic!("the canonical GUN {canonical} does not parse: {e}"),
        }
    }
}

/// Glob patterns ([`NamePattern::parse`] and [`NamePattern::matches`]): the input is a
/// pattern, then optionally a newline and a name to match. The canonical form of a pattern
/// is a fixed point, and a pattern without wildcards matches exactly itself.
pub fn pattern(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (pat, name) = s.split_once('\n').unwrap_or((s, ""));
    let Ok(p) = NamePattern::parse(pat) else {
        return;
    };
    match NamePattern::parse(p.as_str()) {
        Ok(again) => assert_eq!(again, p, "the canonical pattern is not a fixed point"),
        Err(e) => panic!("the canonical pattern {p} does not parse: {e}"),
    }
    let literal = !p.as_str().contains(['*', '?']);
    if literal {
        assert!(p.matches(p.as_str()), "{p} does not match itself");
        assert_eq!(p.matches(name), name == p.as_str());
    } else {
        let _ = p.matches(name);
    }
    if let Ok(r) = ImageRef::parse(name) {
        let _ = p.matches(r.canonical_name());
    }
}

/// The server's URL layout ([`api::parse`], [`api::shape`]): a route that parses gives a
/// path ([`api::Route::path`]) that parses back to the same route.
pub fn api_path(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let shaped = api::shape(path);
    let Ok(route) = api::parse(path) else {
        return;
    };
    assert!(shaped.is_ok(), "parse accepted a path shape refused");
    let written = route.path();
    match api::parse(&written) {
        Ok(again) => assert_eq!(
            again, route,
            "{path:?} -> {written:?} reads back differently"
        ),
        Err(e) => panic!("{path:?} -> {written:?} does not parse back: {e:?}"),
    }
}

/// The server's error body ([`ErrorBody::decode`]): what decodes encodes to a body that
/// decodes to the same errors.
pub fn error_body(data: &[u8]) {
    let Ok(body) = ErrorBody::decode(data) else {
        return;
    };
    let _ = body.first().map(|e| e.summary());
    let encoded = body.encode();
    match ErrorBody::decode(&encoded) {
        Ok(again) => assert_eq!(again, body, "the encoded error body reads back differently"),
        Err(e) => panic!("the encoded error body does not decode: {e}"),
    }
}

/// Staged proposals as they travel ([`api::proposal`]): a proposal document, a list of them,
/// and a signature submission. What decodes encodes to bytes that decode to the same value.
pub fn proposal(data: &[u8]) {
    use api::proposal::{decode_list, encode_list, Proposal, Signatures};
    if let Ok(p) = Proposal::decode(data) {
        let _ = p.missing();
        let again = Proposal::decode(&p.encode());
        assert_eq!(
            again.as_ref().ok(),
            Some(&p),
            "a proposal reads back differently"
        );
    }
    if let Ok(list) = decode_list(data) {
        let again = decode_list(&encode_list(&list));
        assert_eq!(
            again.as_ref().ok(),
            Some(&list),
            "a list reads back differently"
        );
    }
    if let Ok(s) = Signatures::decode(data) {
        let again = Signatures::decode(&s.encode());
        assert_eq!(
            again.as_ref().ok(),
            Some(&s),
            "a submission reads back differently"
        );
    }
}

/// Most PBKDF2 iterations a key-file input may ask for before [`private_key`] and
/// [`notary_key`] skip it (python `cryptography` and Notary write 2,048).
pub const FUZZ_MAX_PBKDF2_ITERATIONS: u32 = 2048;

/// Most scrypt work (`N * r * p`) a key-file input may ask for before [`private_key`] skips
/// it.
pub const FUZZ_MAX_SCRYPT_WORK: u64 = 1 << 14;

/// The passphrase [`private_key`] tries: the one the seed key files (written by python
/// `cryptography`, `tuf/src/crypto/testdata/generate.py`) are encrypted with.
const PRIVATE_KEY_PASSPHRASE: &[u8] = b"vouch-test-passphrase";

/// The passphrase [`notary_key`] tries: the one the seed Notary key file is encrypted with.
const NOTARY_KEY_PASSPHRASE: &[u8] = b"rootpass";

/// Whether the DER `EncryptedPrivateKeyInfo` asks for a key derivation cheap enough to fuzz
/// (anything that does not parse this far is refused by the readers before they derive).
fn cheap_kdf(der: &[u8]) -> bool {
    use pkcs8::pkcs5::{pbes2, EncryptionScheme};
    let Ok(info) = pkcs8::EncryptedPrivateKeyInfo::try_from(der) else {
        return true;
    };
    let EncryptionScheme::Pbes2(params) = &info.encryption_algorithm else {
        return true;
    };
    match &params.kdf {
        pbes2::Kdf::Pbkdf2(p) => p.iteration_count <= FUZZ_MAX_PBKDF2_ITERATIONS,
        pbes2::Kdf::Scrypt(p) => p
            .cost_parameter
            .checked_mul(u64::from(p.block_size))
            .and_then(|w| w.checked_mul(u64::from(p.parallelization)))
            .is_some_and(|w| w <= FUZZ_MAX_SCRYPT_WORK),
        _ => true,
    }
}

/// Encrypted PKCS#8 private keys ([`PrivateKey::from_encrypted_pem`]), with a fixed
/// passphrase; inputs with costly key derivation are skipped (see the module documentation).
pub fn private_key(data: &[u8]) {
    let Ok(pem) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((_, document)) = pkcs8::der::Document::from_pem(pem.trim()) {
        if !cheap_kdf(document.as_bytes()) {
            return;
        }
    }
    if let Ok(key) = PrivateKey::from_encrypted_pem(pem, PRIVATE_KEY_PASSPHRASE) {
        use crate::crypto::Signer;
        // A key that reads signs, and its signature verifies under its public key.
        let message = b"vouch fuzz";
        let signature = match key.sign(message) {
            Ok(s) => s,
            Err(e) => panic!("a key that was read cannot sign: {e}"),
        };
        assert!(
            key.verifying_key().verify(message, &signature).is_ok(),
            "a key's signature does not verify under its own public key"
        );
    }
}

/// Notary key files ([`NotaryKeyFile::from_pem`]), with a fixed passphrase; inputs with
/// costly key derivation are skipped (see the module documentation). The PEM body is found
/// as the reader finds it: the lines after the `BEGIN` line and its headers, up to `END`.
pub fn notary_key(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(der) = notary_pem_body(text) {
        if !cheap_kdf(&der) {
            return;
        }
    }
    let _ = NotaryKeyFile::from_pem(text, NOTARY_KEY_PASSPHRASE);
}

/// The base64-decoded body of a Notary key file, as `NotaryKeyFile::from_pem` reads it.
fn notary_pem_body(text: &str) -> Option<Vec<u8>> {
    use base64ct::{Base64, Encoding};
    let mut lines = text.trim().lines().map(|l| l.trim_end_matches('\r'));
    let label = lines
        .next()?
        .strip_prefix("-----BEGIN ")?
        .strip_suffix("-----")?;
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut in_body = false;
    for line in lines {
        if line == end {
            break;
        }
        if !in_body {
            if line.is_empty() {
                in_body = true;
                continue;
            }
            if line.contains(':') {
                continue;
            }
            in_body = true;
        }
        body.push_str(line.trim());
    }
    Base64::decode_vec(&body).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The metadata target reaches a successful signature check: the python-tuf root seed
    /// verifies under its own keys.
    #[test]
    fn root_seed_verifies_itself() {
        let bytes = include_bytes!("../tests/data/python-tuf/repo/root.json");
        let md = Metadata::<Root>::from_bytes(bytes).unwrap();
        md.signed().verify_role(TopLevelRole::Root, &md).unwrap();
        metadata(bytes);
    }

    /// The key-file targets reach the decryption: their seeds are cheap enough not to be
    /// skipped, and decrypt with the targets' passphrases.
    #[test]
    fn key_file_seeds_are_fuzzed_through_to_the_key() {
        for pem in [
            include_str!("crypto/testdata/py_ed25519.enc.pem"),
            include_str!("crypto/testdata/py_ecdsa_p256.enc.pem"),
        ] {
            let (_, doc) = pkcs8::der::Document::from_pem(pem.trim()).unwrap();
            assert!(cheap_kdf(doc.as_bytes()));
            PrivateKey::from_encrypted_pem(pem, PRIVATE_KEY_PASSPHRASE).unwrap();
        }
        let notary = include_str!("crypto/testdata/notary_root.key");
        assert!(cheap_kdf(&notary_pem_body(notary).unwrap()));
        NotaryKeyFile::from_pem(notary, NOTARY_KEY_PASSPHRASE).unwrap();
    }
}
