//! Fuzzing entry points for what this crate reads from other parties: offline trust bundles
//! (handed over for air-gapped clusters), trust-pin files, registries' and Notary servers'
//! token challenges and token answers, their error bodies, docker configuration files
//! (registry credentials: the user's, or a pull secret mounted for the admission webhook),
//! and the trusted-metadata cache's files read back from disk.
//!
//! Each function takes arbitrary bytes and must return normally for every input. They are
//! run by the cargo-fuzz targets of the repository's `fuzz/` project (long campaigns, outside
//! CI) and by this crate's `fuzz_corpus` test over the checked-in `fuzz/corpus/<target>/`.
//! Not part of the API: hidden from the documentation, and free to change.

use std::path::Path;

use vouch_tuf::time::Timestamp;

use crate::pins::TrustPins;
use crate::registry_auth::{
    describe_error_body, parse_challenge, parse_token_answer, token_request,
    url_carries_credentials, Challenge,
};
use crate::transport::{read_capped_sized, Bundle, BundleTransport, TransportError};
use crate::{Expiry, Limits, Origin, TrustedSet};

/// The fuzz targets of this crate, by name (as in [`vouch_tuf::fuzz::TARGETS`]).
pub const TARGETS: &[vouch_tuf::fuzz::Target] = &[
    ("bundle", bundle),
    ("pins", pins),
    ("token_challenge", token_challenge),
    ("registry_response", registry_response),
    ("cache_file", cache_file),
    ("docker_config", docker_config),
];

/// Offline bundles ([`Bundle::from_bytes`], [`BundleTransport::from_bytes`]): a bundle that
/// reads writes ([`Bundle::to_bytes`]) a document that reads back to the same bundle.
pub fn bundle(data: &[u8]) {
    let _ = BundleTransport::from_bytes(data);
    let Ok(b) = Bundle::from_bytes(data) else {
        return;
    };
    match Bundle::from_bytes(&b.to_bytes()) {
        Ok(again) => assert_eq!(again, b, "the written bundle reads back differently"),
        Err(e) => panic!("the written bundle does not read: {e}"),
    }
}

/// Trust-pin files ([`TrustPins::parse`], TOML). The file is placed in a directory that does
/// not exist, so the root and key files it names relative to itself are never found; the
/// parser's handling of a missing file is part of what is fuzzed.
pub fn pins(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = TrustPins::parse(text, Path::new("/nonexistent-vouch-fuzz/pins.toml"));
}

/// The scope the [`token_challenge()`] target asks a token for.
const FUZZ_SCOPE: &str = "repository:example.com/app:pull";

/// The registry token flow's parsers: the input's first line is a `WWW-Authenticate` value
/// ([`parse_challenge`], then [`token_request`] for the challenge, from a server off
/// loopback and from one on it), the rest (or all of it, without a line break) a token
/// server's answer ([`parse_token_answer`]). Properties: a parsed challenge written back
/// (scheme, then each parameter quoted and escaped) parses to the same challenge; a token
/// request from a server off loopback, with no host allowed in clear, is HTTPS, carries no
/// credentials and ends with the scope asked for; a token found is not empty.
pub fn token_challenge(data: &[u8]) {
    let (header, answer) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    if let Some(challenge) = std::str::from_utf8(header).ok().and_then(parse_challenge) {
        check_challenge(&challenge);
    }
    if let Ok(token) = parse_token_answer(answer) {
        assert!(!token.is_empty(), "an empty token was found");
    }
}

/// The properties of [`token_challenge()`] for one parsed challenge.
fn check_challenge(challenge: &Challenge) {
    assert!(
        !challenge.scheme.is_empty() && challenge.scheme == challenge.scheme.to_ascii_lowercase(),
        "the scheme {:?} is not lower-cased",
        challenge.scheme
    );
    let written = write_challenge(challenge);
    assert_eq!(
        parse_challenge(&written).as_ref(),
        Some(challenge),
        "the written challenge {written:?} reads back differently"
    );
    if let Ok(request) = token_request(challenge, "notary.example.com", FUZZ_SCOPE, |_| false) {
        assert_eq!(request.url.scheme(), "https", "a token realm in clear");
        assert!(
            !url_carries_credentials(&request.url),
            "a token realm with credentials"
        );
        let last = request.url.query_pairs().last();
        assert!(
            last.is_some_and(|(k, v)| k == "scope" && v == FUZZ_SCOPE),
            "the token request does not end with the scope: {}",
            request.url
        );
    }
    if let Ok(request) = token_request(challenge, "127.0.0.1:4443", FUZZ_SCOPE, |_| true) {
        assert!(matches!(request.url.scheme(), "https" | "http"));
    }
}

/// `challenge` as a `WWW-Authenticate` value: the scheme, then every parameter (by name)
/// as `name="value"` with `"` and `\\` escaped.
fn write_challenge(challenge: &Challenge) -> String {
    let mut names: Vec<&String> = challenge.params.keys().collect();
    names.sort();
    let mut out = challenge.scheme.clone();
    for (i, name) in names.into_iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        out.push_str(name);
        out.push_str("=\"");
        for c in challenge.params[name].chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out
}

/// What the verifier reads from a registry or Notary server beyond challenges and tokens: an
/// error body ([`describe_error_body`], Distribution API errors or text). Properties: the
/// description is empty or `: ` and at most 300 characters, on one line, without runs of
/// whitespace; a Distribution API error whose first `code` is one short word leads it.
pub fn registry_response(data: &[u8]) {
    let detail = describe_error_body(data);
    if detail.is_empty() {
        return;
    }
    let Some(text) = detail.strip_prefix(": ") else {
        panic!("the description {detail:?} is not led by \": \"");
    };
    assert!(text.chars().count() <= 300, "the description is too long");
    assert!(
        !text.contains("  ") && !text.chars().any(|c| c.is_whitespace() && c != ' '),
        "the description {text:?} is not one line of single spaces"
    );
    let code = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| Some(v.get("errors")?.get(0)?.get("code")?.as_str()?.to_owned()));
    if let Some(code) = code {
        if !code.is_empty() && code.len() <= 64 && !code.chars().any(char::is_whitespace) {
            assert!(
                text.starts_with(&code),
                "the description {text:?} does not start with the code {code:?}"
            );
        }
    }
}

/// The python-tuf repository the [`cache_file()`] target trusts: root, timestamp, snapshot.
const CACHE_ROOT: &[u8] = include_bytes!("../../tuf/tests/data/python-tuf/repo/root.json");
const CACHE_TIMESTAMP: &[u8] =
    include_bytes!("../../tuf/tests/data/python-tuf/repo/timestamp.json");
const CACHE_SNAPSHOT: &[u8] = include_bytes!("../../tuf/tests/data/python-tuf/repo/snapshot.json");

/// The trusted-metadata cache's files read back ([`crate::cache::MetadataStore`] holds each
/// role's file as bytes, read by [`read_capped_sized`] under the role's cap; what parses them
/// is the [`TrustedSet`] the updater builds from them). No file is written: the input's first
/// byte chooses the role (root, timestamp, snapshot, targets), the rest is the cached file,
/// read as the store reads it and then loaded as the updater loads a cached file of that
/// role ([`Origin::Cache`]): a root as the start of trust, the others over the python-tuf
/// repository's trusted root (and its timestamp and snapshot before a snapshot or targets),
/// with expiry ignored. Properties: the capped read gives back the file exactly when it is
/// within the cap and refuses it as too large otherwise; a root that loads is kept with its
/// exact bytes; a timestamp or snapshot that loads is then the trusted one.
pub fn cache_file(data: &[u8]) {
    let Some((&role, file)) = data.split_first() else {
        return;
    };
    let limits = Limits::DEFAULT;
    let cap = match role % 4 {
        0 => limits.root_max_bytes,
        1 => limits.timestamp_max_bytes,
        2 => limits.snapshot_max_bytes,
        _ => limits.targets_max_bytes,
    };
    for cap in [cap, file.len() as u64 / 2] {
        match read_capped_sized("", file, cap, Some(file.len() as u64)) {
            Ok(read) => {
                assert!(file.len() as u64 <= cap, "a file over the cap was read");
                assert_eq!(read, file, "the capped read changed the file");
            }
            Err(TransportError::TooLarge { .. }) => {
                assert!(file.len() as u64 > cap, "a file within the cap was refused");
            }
            Err(e) => panic!("reading a file from memory failed: {e}"),
        }
    }
    let now = Timestamp::from_unix(1_700_000_000);
    if role % 4 == 0 {
        if let Ok(set) = TrustedSet::with_expiry(file, now, limits, Expiry::IgnoreForEditing) {
            assert_eq!(set.root().bytes(), file, "a cached root is kept changed");
        }
        return;
    }
    let Ok(mut set) = TrustedSet::with_expiry(CACHE_ROOT, now, limits, Expiry::IgnoreForEditing)
    else {
        panic!("the python-tuf root does not load");
    };
    if role % 4 == 1 {
        if set.update_timestamp(file, Origin::Cache).is_ok() {
            assert!(
                set.timestamp().is_some(),
                "a cached timestamp loaded but is not trusted"
            );
        }
        return;
    }
    let _ = set.update_timestamp(CACHE_TIMESTAMP, Origin::Cache);
    if role % 4 == 2 {
        if set.update_snapshot(file, Origin::Cache).is_ok() {
            assert!(
                set.snapshot().is_some(),
                "a cached snapshot loaded but is not trusted"
            );
        }
        return;
    }
    let _ = set.update_snapshot(CACHE_SNAPSHOT, Origin::Cache);
    let _ = set.update_targets(file);
}

/// Docker configuration files ([`crate::registry::credentials_from_docker_config`]), asked
/// for the credentials of a few registries (Docker Hub under its aliases, a host with a port,
/// one named nowhere): what it finds has a user name that is not empty and holds no `:` (the
/// separator of the `auth` field), from a document that parses as JSON.
pub fn docker_config(data: &[u8]) {
    for registry in [
        "docker.io",
        "registry.example.com",
        "localhost:5000",
        "nowhere.invalid",
    ] {
        if let Ok(Some(c)) = crate::registry::credentials_from_docker_config(data, registry) {
            assert!(
                serde_json::from_slice::<serde_json::Value>(data).is_ok(),
                "credentials from a document that is not JSON"
            );
            assert!(
                !c.username().is_empty(),
                "an empty user name for {registry}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The cache target's trusted repository loads: the python-tuf root, timestamp and
    /// snapshot (and its targets), so that cached files of every role reach their checks.
    #[test]
    fn the_cache_targets_repository_loads() {
        let now = Timestamp::from_unix(1_700_000_000);
        let mut set =
            TrustedSet::with_expiry(CACHE_ROOT, now, Limits::DEFAULT, Expiry::IgnoreForEditing)
                .unwrap();
        set.update_timestamp(CACHE_TIMESTAMP, Origin::Cache)
            .unwrap();
        set.update_snapshot(CACHE_SNAPSHOT, Origin::Cache).unwrap();
        let targets = include_bytes!("../../tuf/tests/data/python-tuf/repo/targets.json");
        set.update_targets(targets).unwrap();
        for role in 0..4u8 {
            let mut input = vec![role];
            input.extend_from_slice(match role {
                0 => CACHE_ROOT,
                1 => CACHE_TIMESTAMP,
                2 => CACHE_SNAPSHOT,
                _ => targets,
            });
            cache_file(&input);
        }
    }

    /// Challenges written back read the same, escapes and all.
    #[test]
    fn challenges_are_written_back() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="a \"q\" \\ b",scope=x"#,
        )
        .unwrap();
        assert_eq!(parse_challenge(&write_challenge(&c)).unwrap(), c);
        token_challenge(b"Bearer realm=\"https://auth.example.com/token\"\n{\"token\":\"t\"}");
    }

    /// Error bodies: Distribution API errors and text.
    #[test]
    fn error_bodies_are_described() {
        registry_response(
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
        registry_response(b"plain\ttext\n\n  body");
        assert_eq!(
            describe_error_body(b"plain\ttext\n\n  body"),
            ": plain text body"
        );
    }
}
