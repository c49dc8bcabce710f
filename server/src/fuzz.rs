//! Fuzzing entry points for the parsers of this crate that read bytes off the network or
//! from the operator: the publish request's multipart body, registry-format bearer tokens
//! (JWTs), the changefeed's query string, an event stream's start (`Last-Event-ID` and
//! `?after=`), and the configuration (TOML and `VOUCH_*` variables); and the two readers of
//! what the store holds, which a damaged or tampered database feeds: a proposal's stored body
//! and a repository's stored files.
//!
//! Each function takes arbitrary bytes and must return normally for every input. They are
//! run by the cargo-fuzz targets of the repository's `fuzz/` project (long campaigns, outside
//! CI) and by this crate's `fuzz_corpus` test over the checked-in `fuzz/corpus/<target>/`.
//! Not part of the API: hidden from the documentation, and free to change.

use std::cell::RefCell;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;

use crate::config::Config;
use crate::http::changefeed::{self, Page};
use crate::http::publish::{read_uploads, UploadError};
use crate::jwt::{self, TokenError, TokenKey, TokenPolicy};

/// The fuzz targets of this crate, by name (as in [`vouch_tuf::fuzz::TARGETS`]).
pub const TARGETS: &[vouch_tuf::fuzz::Target] = &[
    ("multipart", multipart),
    ("jwt", jwt),
    ("server_config", server_config),
    ("changefeed_query", changefeed_query),
    ("events_start", events_start),
    ("proposal_body", proposal_body),
    ("repo_state", repo_state),
];

thread_local! {
    /// One single-threaded runtime per thread: the body is all in memory, so reading it
    /// never waits, but the multipart reader is async.
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

/// The publish body reader (`read_uploads`, axum's multipart parser under it). The input's
/// first line is the request's `Content-Type` value (so the boundary parameter is fuzzed
/// too), the rest is the body. What is read back is never more than was sent.
pub fn multipart(data: &[u8]) {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"multipart/form-data; boundary=X"[..], data),
    };
    let Ok(request) = Request::builder()
        .method("POST")
        .uri("/v2/example.com/app/_trust/tuf/")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_vec()))
    else {
        return;
    };
    let result = RUNTIME.with(|cell| {
        let mut cell = cell.borrow_mut();
        let runtime = cell.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap_or_else(|e| panic!("a current-thread runtime: {e}"))
        });
        runtime.block_on(read_uploads(request))
    });
    match result {
        Ok(uploads) => {
            let read: usize = uploads.iter().map(|u| u.bytes.len() + u.role.len()).sum();
            assert!(read <= body.len(), "read more bytes than the body holds");
            assert!(uploads.iter().all(|u| !u.role.is_empty()));
        }
        Err(UploadError::Malformed(_) | UploadError::TooLarge) => {}
    }
}

/// The server's configuration: the input's leading lines of the form `VOUCH_…=VALUE` are
/// environment variables, the rest is the TOML file. The TOML is read as
/// [`Config::from_file`] reads it, then [`Config::check`], then [`Config::apply_env`] with
/// the variables, and what a valid configuration derives (the store it names, its files,
/// the metrics access). Nothing named in the configuration is read or opened: the JWT keys'
/// files and the store are left alone. Properties: applying no variables changes nothing and
/// is exactly [`Config::check`]; a configuration that passes `apply_env` passes `check`.
pub fn server_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut vars = Vec::new();
    let mut rest = text;
    while let Some((line, tail)) = rest.split_once('\n') {
        let Some((key, value)) = line.split_once('=') else {
            break;
        };
        if !key.starts_with("VOUCH_") {
            break;
        }
        vars.push((key.to_owned(), value.to_owned()));
        rest = tail;
    }
    let Ok(config) = toml::from_str::<Config>(rest) else {
        return;
    };
    let checked = config.check();
    let mut unchanged = config.clone();
    let applied = unchanged.apply_env(Vec::new());
    assert!(
        unchanged == config,
        "applying no variables changed the configuration"
    );
    assert_eq!(
        applied.is_ok(),
        checked.is_ok(),
        "applying no variables is not the same as checking"
    );
    let mut with_env = config;
    if with_env.apply_env(vars).is_err() {
        return;
    }
    if let Err(e) = with_env.check() {
        panic!("apply_env accepted a configuration that check refuses: {e}");
    }
    if let Err(e) = with_env.backend() {
        panic!("check accepted a store URL that backend refuses: {e}");
    }
    let _ = (with_env.kek_path(), with_env.admin_token_hash_path());
    let _ = with_env.metrics.effective(&with_env.auth);
}

/// The changefeed's query string (`changefeed::parse_query`, as the handler reads it): the
/// input is what follows `?`. Property: a page that parses, written back as
/// `change_id=…&records=…`, parses to the same page; `records` is never 0.
pub fn changefeed_query(data: &[u8]) {
    let mut uri = b"/v2/_trust/changefeed?".to_vec();
    uri.extend_from_slice(data);
    let Ok(uri) = axum::http::Uri::try_from(uri) else {
        return;
    };
    let Ok(page) = changefeed::parse_query(&uri) else {
        return;
    };
    assert_ne!(page.records, 0, "a page of 0 records was accepted");
    let again = format!(
        "/v2/_trust/changefeed?change_id={}&records={}",
        page.change_id, page.records
    );
    let again = match axum::http::Uri::try_from(again) {
        Ok(u) => u,
        Err(e) => panic!("a written page query is not a URI: {e}"),
    };
    match changefeed::parse_query(&again) {
        Ok(p) => assert_eq!(p, page, "the written page query reads back differently"),
        Err(e) => panic!("the written page query does not parse: {e:?}"),
    }
    let default = Page {
        change_id: 0,
        records: 100,
    };
    if data.is_empty() {
        assert_eq!(page, default, "an empty query is not the default page");
    }
}

/// Where an event stream starts (`http::events::start`): the input's first line is the
/// `Last-Event-ID` header (none when empty), the rest the query string. Property: a start
/// that parses is a changefeed id (at most `i64::MAX`), and written back as `after=ID` it
/// parses to the same start.
pub fn events_start(data: &[u8]) {
    let (header, query) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let mut headers = axum::http::HeaderMap::new();
    if !header.is_empty() {
        let Ok(v) = axum::http::HeaderValue::from_bytes(header) else {
            return;
        };
        headers.insert("last-event-id", v);
    }
    let mut uri = b"/v2/_trust/events?".to_vec();
    uri.extend_from_slice(query);
    let Ok(uri) = axum::http::Uri::try_from(uri) else {
        return;
    };
    let Ok(Some(after)) = crate::http::events::start(&headers, &uri) else {
        return;
    };
    assert!(after <= i64::MAX as u64, "a start past every changefeed id");
    let again = match axum::http::Uri::try_from(format!("/v2/_trust/events?after={after}")) {
        Ok(u) => u,
        Err(e) => panic!("a written start is not a URI: {e}"),
    };
    match crate::http::events::start(&axum::http::HeaderMap::new(), &again) {
        Ok(Some(a)) => assert_eq!(a, after, "a written start reads back differently"),
        other => panic!("a written start does not parse: {other:?}"),
    }
}

/// A proposal's stored body and summary (`proposal::Body::decode`, `decode_summary`), as a
/// damaged or tampered database hands them back. Property: a body that decodes encodes to
/// one that decodes to the same body, and its summary decodes as a summary.
pub fn proposal_body(data: &[u8]) {
    use crate::proposal::Body;
    if let Ok(body) = Body::decode(data) {
        match Body::decode(&body.encode()) {
            Ok(again) => assert_eq!(again, body, "a stored body reads back differently"),
            Err(e) => panic!("an encoded body does not decode: {e:?}"),
        }
        if let Err(e) = Body::decode_summary(&body.encode_summary()) {
            panic!("an encoded summary does not decode: {e:?}");
        }
    }
    let _ = Body::decode_summary(data);
}

/// A repository's stored files (`RepoState::from_files`), as a damaged or tampered database
/// hands them back: the input split at NUL bytes into the current `root`, `targets`,
/// `snapshot` and `timestamp` files (and delegated roles after them). It must refuse, never
/// panic; a state it builds reads the same from the same files again.
pub fn repo_state(data: &[u8]) {
    use crate::store::StoredFile;
    use crate::validate::RepoState;
    let roles = ["root", "targets", "snapshot", "timestamp"];
    let files: Vec<StoredFile> = data
        .split(|&b| b == 0)
        .take(16)
        .enumerate()
        .map(|(i, bytes)| StoredFile {
            role: roles
                .get(i)
                .map_or_else(|| format!("targets/d{i}"), |r| (*r).to_owned()),
            version: 1,
            sha256: vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes)),
            bytes: bytes.to_vec(),
            created_at: vouch_tuf::time::Timestamp::from_unix(1_800_000_000),
        })
        .collect();
    let first = RepoState::from_files(files.clone()).is_ok();
    assert_eq!(
        RepoState::from_files(files).is_ok(),
        first,
        "the same stored files read differently"
    );
}

/// The seed of the one Ed25519 key the [`jwt()`] target's policy trusts.
const JWT_KEY_SEED: [u8; 32] = [7; 32];
/// The `iss` and `aud` the [`jwt()`] target's policy requires.
const JWT_ISSUER: &str = "auth.example.com";
const JWT_AUDIENCE: &str = "vouch.example.com";
/// The time the [`jwt()`] target verifies at.
const JWT_NOW: i64 = 1_700_000_000;

/// Registry-format bearer tokens (`jwt::verify`), two ways per input:
/// - the input as the token text, as a client sends it (mostly refused before the claims);
/// - the input as `HEADER\nCLAIMS` JSON that this function encodes and signs with the
///   policy's own key, so that what follows the signature check (claims, issuer, audience,
///   expiry, `access`) is reached too; such a token is never refused for its signature.
pub fn jwt(data: &[u8]) {
    let (policy, pair) = jwt_policy();
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = jwt::looks_like_jwt(token);
        let _ = jwt::verify(token, &policy, JWT_NOW);
    }
    let token = signed_token(&pair, data);
    let result = jwt::verify(&token, &policy, JWT_NOW);
    assert!(
        !matches!(result, Err(TokenError::BadSignature)),
        "a token signed with the policy's key was refused for its signature"
    );
}

/// The policy the [`jwt()`] target verifies against, and the key pair it trusts.
fn jwt_policy() -> (TokenPolicy, ring::signature::Ed25519KeyPair) {
    let Ok(pair) = ring::signature::Ed25519KeyPair::from_seed_unchecked(&JWT_KEY_SEED) else {
        panic!("a fixed Ed25519 seed is a key");
    };
    // SubjectPublicKeyInfo of an Ed25519 key: the fixed DER prefix, then the 32 key bytes.
    let mut spki = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    spki.extend_from_slice(ring::signature::KeyPair::public_key(&pair).as_ref());
    let key = match TokenKey::from_spki_der(&spki, Some("fuzz".to_owned())) {
        Ok(k) => k,
        Err(e) => panic!("the fuzz key's SPKI: {e}"),
    };
    let policy = TokenPolicy {
        issuer: JWT_ISSUER.to_owned(),
        audience: JWT_AUDIENCE.to_owned(),
        leeway_seconds: 60,
        keys: vec![key],
    };
    (policy, pair)
}

/// `HEADER\nCLAIMS` (or only `CLAIMS`, under an `EdDSA` header) as a token signed by `pair`.
fn signed_token(pair: &ring::signature::Ed25519KeyPair, data: &[u8]) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let (header, claims) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"{\"alg\":\"EdDSA\"}"[..], data),
    };
    let signing_input = format!(
        "{}.{}",
        Base64UrlUnpadded::encode_string(header),
        Base64UrlUnpadded::encode_string(claims)
    );
    let signature = pair.sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        Base64UrlUnpadded::encode_string(signature.as_ref())
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The structure-aware half of the `jwt` target does reach the claims: a well-formed
    /// seed is accepted with its grants, and one with a past `exp` is refused as expired.
    #[test]
    fn signed_seeds_reach_the_claims() {
        let (policy, pair) = jwt_policy();
        let seed = br#"{"alg":"EdDSA","kid":"fuzz"}
{"iss":"auth.example.com","aud":"vouch.example.com","exp":1700000600,"access":[{"type":"repository","name":"example.com/app","actions":["push"]}]}"#;
        let claims = jwt::verify(&signed_token(&pair, seed), &policy, JWT_NOW).unwrap();
        assert_eq!(claims.access[0].name, "example.com/app");
        let expired = br#"{"iss":"auth.example.com","aud":"vouch.example.com","exp":1}"#;
        assert_eq!(
            jwt::verify(&signed_token(&pair, expired), &policy, JWT_NOW),
            Err(TokenError::Expired)
        );
    }

    /// The changefeed query reader: defaults, both parameters, and the refusals.
    #[test]
    fn changefeed_queries() {
        let parse = |q: &str| {
            let uri = axum::http::Uri::try_from(format!("/v2/_trust/changefeed{q}")).unwrap();
            changefeed::parse_query(&uri).ok()
        };
        let page = |change_id, records| Some(Page { change_id, records });
        assert_eq!(parse(""), page(0, 100));
        assert_eq!(parse("?change_id=&records=-5"), page(0, -5));
        assert_eq!(parse("?change_id=42&records=7"), page(42, 7));
        assert_eq!(parse("?records=0"), None);
        assert_eq!(parse("?change_id=x"), None);
        assert_eq!(parse("?records=1.5"), None);
        changefeed_query(b"change_id=42&records=7");
    }

    /// The config target reads leading `VOUCH_*` lines as variables and the rest as TOML.
    #[test]
    fn config_variables_then_toml() {
        server_config(b"VOUCH_MAX_BODY_BYTES=10\nlog = \"debug\"\n[limits]\n");
        server_config(b"VOUCH_MAX_BODY_BYTES=0\n");
        server_config(b"[storage]\nurl = \"postgres://u:p@db:5432/vouch\"\n");
    }

    /// The multipart target reads a body as the publish handler does.
    #[test]
    fn multipart_reads_a_notary_style_body() {
        let body = b"multipart/form-data; boundary=B\n--B\r\nContent-Disposition: form-data; name=\"files\"; filename=\"root\"\r\n\r\n{}\r\n--B--\r\n";
        let (content_type, rest) = body.split_at(body.iter().position(|&b| b == b'\n').unwrap());
        let request = Request::builder()
            .method("POST")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(rest[1..].to_vec()))
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let uploads = runtime.block_on(read_uploads(request)).unwrap();
        assert_eq!(uploads.len(), 1);
        assert_eq!(uploads[0].role, "root");
        assert_eq!(uploads[0].bytes, b"{}");
        multipart(body);
    }
}
