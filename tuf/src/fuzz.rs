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
//!   prints or encodes to a form that parses back to the same value;
//! - [`event_stream`]: the SSE reader, fed the input in chunks the input chooses, reads the
//!   same frames whatever the chunking, holds no more than its bound, and every event it
//!   reads frames and reads back to itself; [`webhook_message`]: a delivery body and a
//!   signature header, read back from what they encode to;
//! - [`oci_manifest`]: what reads as a trust artifact's manifest lists at most its bound of
//!   files, each named as vouch names files and announcing at most its bound; what reads as
//!   an image manifest or index lists at most its bound; and a trust artifact built from
//!   files the input chooses reads back with exactly those files;
//! - [`signed_metadata`] (structure-aware): a root validly signed by two fixed keys is mutated
//!   as the input directs (values replaced, members added or removed, signatures moved, keys
//!   re-cased, the text re-escaped, re-indented and re-ordered); whatever still verifies —
//!   against the original root's keys or its own — has exactly the original signed content,
//!   and verifies the same after re-serialisation.
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
    ("event_stream", event_stream),
    ("webhook_message", webhook_message),
    ("oci_manifest", oci_manifest),
    ("signed_metadata", signed_metadata),
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

/// The SSE reader ([`api::event::SseReader`]): the first byte chooses a chunk size, the rest
/// is the stream. The frames (or the first error) are the same fed whole and fed in chunks;
/// the reader never holds much more than [`api::event::MAX_MESSAGE_BYTES`] plus a chunk; every
/// event read frames ([`api::event::Event::sse_frame`]) to bytes that read back to it.
pub fn event_stream(data: &[u8]) {
    use api::event::{Frame, SseReader, MAX_MESSAGE_BYTES};
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let read = |chunk: usize| {
        let mut r = SseReader::default();
        let mut out = Vec::new();
        for c in stream.chunks(chunk.max(1)) {
            r.push(c);
            assert!(
                r.buffered() <= 2 * MAX_MESSAGE_BYTES + c.len(),
                "the reader holds more than its bound"
            );
            while let Some(f) = r.next_frame() {
                let failed = f.is_err();
                out.push(f.map_err(|e| e.to_string()));
                if failed {
                    return out;
                }
            }
        }
        out
    };
    let whole = read(stream.len());
    let chunked = read(usize::from(chunk % 16) + 1);
    // A line cut by a chunk boundary after a CR is the one thing chunking may not change;
    // an error ends a stream, and the frames before it must agree.
    let ok = |v: &[Result<Frame, String>]| {
        v.iter()
            .take_while(|f| f.is_ok())
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(ok(&whole), ok(&chunked), "chunking changed the frames");
    for f in whole.into_iter().flatten() {
        if let Frame::Event(e) = f {
            let mut r = SseReader::default();
            r.push(&e.sse_frame());
            match r.next_frame() {
                Some(Ok(Frame::Event(again))) => {
                    assert_eq!(again, e, "an event reads back differently")
                }
                other => panic!("a framed event does not read back: {other:?}"),
            }
        }
    }
}

/// A webhook delivery as a receiver reads it: the input split at its first newline into a
/// `webhook-signature` header and a body. A body that decodes encodes
/// ([`api::event::webhook_payload`]) to one that decodes to the same event; a header that
/// parses lists at most [`api::event::MAX_SIGNATURES`] signatures.
pub fn webhook_message(data: &[u8]) {
    use api::event::{
        decode_webhook_payload, parse_signature_header, webhook_payload, MAX_SIGNATURES,
    };
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[..0]),
    };
    if let Ok(h) = std::str::from_utf8(header) {
        if let Ok(sigs) = parse_signature_header(h) {
            assert!(sigs.len() <= MAX_SIGNATURES);
        }
    }
    if let Ok(e) = decode_webhook_payload(body) {
        let again = decode_webhook_payload(&webhook_payload(&e));
        assert_eq!(
            again.as_ref().ok(),
            Some(&e),
            "a delivery reads back differently"
        );
    }
}

/// OCI manifests ([`crate::oci`]): the input read as a trust artifact's manifest and as an
/// image manifest or index; then, split at `\0` into up to 64 file contents, built into a
/// trust artifact and read back.
pub fn oci_manifest(data: &[u8]) {
    use crate::api::FileRef;
    use crate::oci::{self, References, TrustManifest};
    if let Ok(m) = TrustManifest::parse(data) {
        assert!(m.files().len() <= oci::MAX_TRUST_FILES);
        for (name, f) in m.files() {
            assert!(f.size <= oci::MAX_FILE_BYTES);
            assert!(matches!(
                FileRef::from_file_name(name),
                Ok(FileRef::Current(_) | FileRef::Version(..) | FileRef::Checksum(..))
            ));
        }
    }
    if let Ok(r) = References::parse(data, None) {
        assert!(r.manifests.len() <= oci::MAX_REFERENCES);
        assert!(r.blobs.len() <= oci::MAX_REFERENCES + 1);
    }
    let Ok(gun) = Gun::new("registry.example.com/org/app") else {
        return;
    };
    let files: std::collections::BTreeMap<String, Vec<u8>> = data
        .split(|&b| b == 0)
        .take(64)
        .enumerate()
        .map(|(i, bytes)| (format!("{}.root.json", i + 1), bytes.to_vec()))
        .collect();
    if let Ok(a) = oci::build_trust_artifact(&gun, &files, None) {
        let back = match TrustManifest::parse(&a.manifest) {
            Ok(m) => m,
            Err(e) => panic!("a built trust artifact does not read back: {e}"),
        };
        assert!(back.same_files(&a.files));
        assert_eq!(back.gun(), Some(gun.as_str()));
        for b in &a.blobs {
            assert!(b.digest.matches(b.bytes));
        }
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

/// The fixed, validly signed document [`signed_metadata`] mutates: a root whose root role
/// needs 2 of 3 keys, signed by two of them, and the canonical bytes of its `signed`.
struct SignedSeed {
    root: Metadata<Root>,
    envelope: Value,
}

/// [`SignedSeed`], made once: Ed25519 keys from fixed seeds (PKCS#8 v1 DER).
fn signed_seed() -> &'static SignedSeed {
    static SEED: std::sync::OnceLock<SignedSeed> = std::sync::OnceLock::new();
    SEED.get_or_init(|| {
        let key = |n: u8| {
            let mut der =
                crate::hex::decode("302e020100300506032b657004220420").unwrap_or_default();
            der.extend_from_slice(&[n; 32]);
            PrivateKey::from_pkcs8_der(&der).unwrap_or_else(|e| panic!("fixed key {n}: {e}"))
        };
        let keys = [key(1), key(2), key(3)];
        let mut root = Root::new(crate::time::Timestamp::from_unix(4_102_444_800));
        for k in &keys {
            root.add_key(
                TopLevelRole::Root,
                crate::metadata::Key::from_verifying_key(&crate::crypto::Signer::verifying_key(k)),
            );
        }
        root.add_key(
            TopLevelRole::Targets,
            crate::metadata::Key::from_verifying_key(&crate::crypto::Signer::verifying_key(
                &keys[2],
            )),
        );
        root.set_threshold(
            TopLevelRole::Root,
            crate::types::Threshold::new(2).unwrap_or(crate::types::Threshold::ONE),
        );
        let md = Metadata::signed_by(root, &[&keys[0], &keys[1]])
            .unwrap_or_else(|e| panic!("signing the seed root: {e}"));
        let envelope = md.to_value();
        SignedSeed { root: md, envelope }
    })
}

/// How [`signed_metadata`] writes the mutated document out.
#[derive(Default)]
struct Style {
    /// Every string character as `\uXXXX`.
    escape_all: bool,
    /// Whitespace around every token.
    spaced: bool,
    /// Object members in reverse order.
    reversed: bool,
}

fn write_styled(v: &Value, style: &Style, out: &mut Vec<u8>) {
    let ws = |out: &mut Vec<u8>| {
        if style.spaced {
            out.extend_from_slice(b" \n\t");
        }
    };
    match v {
        Value::String(s) if style.escape_all => {
            out.push(b'"');
            for unit in s.encode_utf16() {
                out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
            }
            out.push(b'"');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                ws(out);
                write_styled(item, style, out);
                ws(out);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            out.push(b'{');
            let members: Vec<(&String, &Value)> = if style.reversed {
                m.iter().rev().collect()
            } else {
                m.iter().collect()
            };
            for (i, (k, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                ws(out);
                write_styled(&Value::String(k.clone()), style, out);
                out.push(b':');
                ws(out);
                write_styled(item, style, out);
            }
            out.push(b'}');
        }
        other => out.extend_from_slice(&json::to_json(other)),
    }
}

/// The node `path` (indices into members or items, each taken modulo the count) leads to,
/// from `v`; stops early at a leaf.
fn node_at<'v>(v: &'v mut Value, path: &[u8]) -> &'v mut Value {
    let Some((first, rest)) = path.split_first() else {
        return v;
    };
    let descend = match v {
        Value::Object(m) if !m.is_empty() => true,
        Value::Array(a) if !a.is_empty() => true,
        _ => false,
    };
    if !descend {
        return v;
    }
    match v {
        Value::Object(m) => {
            let i = usize::from(*first) % m.len();
            match m.values_mut().nth(i) {
                Some(child) => node_at(child, rest),
                None => unreachable_leaf(),
            }
        }
        Value::Array(a) => {
            let i = usize::from(*first) % a.len();
            node_at(&mut a[i], rest)
        }
        _ => unreachable_leaf(),
    }
}

fn unreachable_leaf() -> ! {
    panic!("node_at descended into a leaf")
}

/// A value from a small palette, chosen by `b` (and `text` for strings).
fn palette(b: u8, text: &[u8]) -> Value {
    match b % 12 {
        0 => Value::Null,
        1 => Value::Bool(true),
        2 => Value::from(0_u64),
        3 => Value::from(1_u64),
        4 => Value::from(2_u64),
        5 => Value::Int(json::Int::from(-1_i64)),
        6 => Value::from(u64::MAX),
        7 => Value::from(""),
        8 => Value::from(String::from_utf8_lossy(text).into_owned()),
        9 => Value::Array(Vec::new()),
        10 => Value::Object(json::Map::new()),
        _ => Value::from("root"),
    }
}

/// Structure-aware: a validly signed root (two of three fixed keys, threshold 2) mutated as `data` directs.
/// Whatever verifies afterwards — against the original root's keys, or the document's own —
/// carries exactly the original canonical `signed` bytes, and the answer is the same after
/// re-serialisation.
pub fn signed_metadata(data: &[u8]) {
    let seed = signed_seed();
    let mut v = seed.envelope.clone();
    let mut style = Style::default();
    let mut ops = data.chunks(4).take(16);
    for op in ops.by_ref() {
        let (&code, rest) = match op.split_first() {
            Some(x) => x,
            None => break,
        };
        let path = rest.get(..rest.len().saturating_sub(1)).unwrap_or_default();
        let arg = rest.last().copied().unwrap_or(0);
        match code % 10 {
            0 => *node_at(&mut v, path) = palette(arg, rest),
            1 => {
                if let Value::Object(m) = node_at(&mut v, path) {
                    let n = m.len().max(1);
                    let key = m.keys().nth(usize::from(arg) % n).cloned();
                    if let Some(k) = key {
                        m.remove(&k);
                    }
                }
            }
            2 => {
                if let Value::Object(m) = node_at(&mut v, path) {
                    let name = format!("x{arg}");
                    m.insert(name, palette(arg, rest));
                }
            }
            3 => {
                if let Value::Array(a) = node_at(&mut v, path) {
                    if let Some(first) = a.first().cloned() {
                        a.push(first);
                    }
                }
            }
            4 | 5 => {
                // Move or swap signatures between entries.
                let sigs = v
                    .as_object()
                    .and_then(|m| m.get("signatures"))
                    .and_then(Value::as_array)
                    .map(<[Value]>::to_vec)
                    .unwrap_or_default();
                if sigs.len() >= 2 {
                    let mut sigs = sigs;
                    let get = |s: &Value, k: &str| s.as_object().and_then(|m| m.get(k)).cloned();
                    let (a, b) = (
                        usize::from(arg) % sigs.len(),
                        usize::from(arg / 7) % sigs.len(),
                    );
                    let field = if code % 10 == 4 { "sig" } else { "keyid" };
                    if let (Some(fa), Some(fb)) = (get(&sigs[a], field), get(&sigs[b], field)) {
                        if let Value::Object(m) = &mut sigs[a] {
                            m.insert(field.into(), fb);
                        }
                        if let Value::Object(m) = &mut sigs[b] {
                            m.insert(field.into(), fa);
                        }
                    }
                    if let Value::Object(m) = &mut v {
                        m.insert("signatures".into(), Value::Array(sigs));
                    }
                }
            }
            6 => {
                if let Value::String(s) = node_at(&mut v, path) {
                    *s = s.to_uppercase();
                }
            }
            7 => style.escape_all = true,
            8 => style.spaced = true,
            _ => style.reversed = true,
        }
    }
    let mut text = Vec::new();
    write_styled(&v, &style, &mut text);
    let Ok(md) = Metadata::<Root>::from_bytes(&text) else {
        return;
    };
    let original = seed.root.canonical_signed();
    let by_original = seed
        .root
        .signed()
        .verify_role(TopLevelRole::Root, &md)
        .is_ok();
    let by_itself = md.signed().verify_role(TopLevelRole::Root, &md).is_ok();
    if by_original || by_itself {
        assert_eq!(
            md.canonical_signed(),
            original,
            "a root whose signed content changed still verifies (original keys: {by_original}, its own: {by_itself})"
        );
    }
    let again = Metadata::<Root>::from_bytes(&md.to_bytes())
        .unwrap_or_else(|e| panic!("the re-serialised root does not parse: {e}"));
    assert_eq!(
        seed.root
            .signed()
            .verify_role(TopLevelRole::Root, &again)
            .is_ok(),
        by_original,
        "the root verifies differently after re-serialisation"
    );
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

    /// The structure-aware target reaches both sides of its property: re-styled text of the
    /// seed root still verifies, and a changed `signed` does not.
    #[test]
    fn signed_metadata_reaches_verified_and_refused_documents() {
        let seed = signed_seed();
        let style = Style {
            escape_all: true,
            spaced: true,
            reversed: true,
        };
        let mut text = Vec::new();
        write_styled(&seed.envelope, &style, &mut text);
        assert_ne!(text, seed.root.to_bytes());
        let md = Metadata::<Root>::from_bytes(&text).unwrap();
        assert!(seed
            .root
            .signed()
            .verify_role(TopLevelRole::Root, &md)
            .is_ok());
        let mut changed = seed.envelope.clone();
        *node_at(&mut changed, &[1, 2]) = Value::from("changed");
        let md = Metadata::<Root>::from_bytes(&json::to_json(&changed));
        if let Ok(md) = md {
            assert_ne!(md.canonical_signed(), seed.root.canonical_signed());
            assert!(seed
                .root
                .signed()
                .verify_role(TopLevelRole::Root, &md)
                .is_err());
        }
        signed_metadata(&[7, 0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0]);
        signed_metadata(&[0, 1, 2, 7, 4, 0, 0, 1]);
    }
}
