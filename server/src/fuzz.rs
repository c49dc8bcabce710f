//! Fuzzing entry points for the parsers of this crate that read bytes off the network: the
//! publish request's multipart body and registry-format bearer tokens (JWTs).
//!
//! Each function takes arbitrary bytes and must return normally for every input. They are
//! run by the cargo-fuzz targets of the repository's `fuzz/` project (long campaigns, outside
//! CI) and by this crate's `fuzz_corpus` test over the checked-in `fuzz/corpus/<target>/`.
//! Not part of the API: hidden from the documentation, and free to change.

use std::cell::RefCell;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;

use crate::http::publish::{read_uploads, UploadError};
use crate::jwt::{self, TokenError, TokenKey, TokenPolicy};

/// The fuzz targets of this crate, by name (as in [`vouch_tuf::fuzz::TARGETS`]).
pub const TARGETS: &[vouch_tuf::fuzz::Target] = &[("multipart", multipart), ("jwt", jwt)];

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
