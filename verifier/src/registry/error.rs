//! Why a registry operation failed: one error type for the client's reads, writes and
//! authentication, each variant naming the registry and what was attempted.
//!
//! What it is not: a carrier of secrets. No variant holds credentials or tokens; a digest a
//! registry sent in a header is cut to 200 characters before it is kept.

use std::path::PathBuf;

use reqwest::StatusCode;
use thiserror::Error;
use vouch_tuf::reference::Digest;

use super::Access;

/// Why a registry operation failed. No variant carries credentials or tokens.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client for registries: {0}")]
    Client(String),
    /// No connection (or TLS failed).
    #[error("cannot reach the registry {registry} at {url} ({message}): {hint}")]
    Unreachable {
        /// `host[:port]` as in the image name.
        registry: String,
        /// The URL asked.
        url: String,
        /// The cause.
        message: String,
        /// What to check.
        hint: String,
    },
    /// A repository name, tag or digest that cannot be put in a request path.
    #[error("{name:?} is not a valid {what}")]
    InvalidName {
        /// `repository name` or `reference`.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// The registry has no such manifest (404).
    #[error("the registry {registry} has no manifest {reference} of {repository} (404)")]
    ManifestUnknown {
        /// `host[:port]`.
        registry: String,
        /// The repository path.
        repository: String,
        /// Tag or digest.
        reference: String,
    },
    /// The registry has no such blob (404).
    #[error("the registry {registry} has no blob {digest} in {repository} (404)")]
    BlobUnknown {
        /// `host[:port]`.
        registry: String,
        /// The repository path.
        repository: String,
        /// The digest asked for.
        digest: Digest,
    },
    /// Credentials were needed and missing or refused (401, 403).
    #[error(
        "the registry {registry} refused to {} {repository} (401 Unauthorized{detail}): {hint}",
        .access.verb()
    )]
    Unauthorized {
        /// `host[:port]`.
        registry: String,
        /// The repository path.
        repository: String,
        /// What was asked.
        access: Access,
        /// The server's message, if any, led by `: `.
        detail: String,
        /// What to do.
        hint: String,
    },
    /// Any other refusal.
    #[error("the registry {registry} answered {status} for {what}{detail}")]
    Refused {
        /// `host[:port]`.
        registry: String,
        /// What was attempted, e.g. `manifest v1 of org/app`, `push of blob sha256:… to
        /// org/app`.
        what: String,
        /// The status.
        status: StatusCode,
        /// The server's message, if any, led by `: `.
        detail: String,
    },
    /// No (whole) answer within the time allowed: the answer timeout, or the caller's
    /// deadline when that came first (a slow or stalled registry).
    #[error("the registry {registry} did not answer {what} within the time allowed (slow or stalled registry)")]
    TimedOut {
        /// `host[:port]`.
        registry: String,
        /// What was asked: a URL, or e.g. `manifest v1 of org/app`.
        what: String,
    },
    /// The `WWW-Authenticate` challenge could not be followed.
    #[error("the registry {registry} asks for authentication vouch cannot provide ({challenge:?}): {reason}")]
    Challenge {
        /// `host[:port]`.
        registry: String,
        /// The header.
        challenge: String,
        /// Why.
        reason: String,
    },
    /// The token server failed.
    #[error("the token server {realm} of {registry} refused a token ({detail})")]
    Token {
        /// `host[:port]` of the registry.
        registry: String,
        /// The realm URL.
        realm: String,
        /// What went wrong.
        detail: String,
    },
    /// A manifest's digest header disagrees with the bytes (or the bytes with the digest
    /// asked for).
    #[error("the registry {registry} sent a manifest for {reference} whose sha256 is {actual}, not {claimed}: refusing it")]
    DigestMismatch {
        /// `host[:port]`.
        registry: String,
        /// Tag or digest asked for.
        reference: String,
        /// What the header (or the reference) claimed.
        claimed: String,
        /// The digest of the bytes (sha256, or the claimed digest's algorithm).
        actual: String,
    },
    /// A blob whose bytes do not hash to the digest asked for.
    #[error("the registry {registry} sent bytes for blob {digest} of {repository} whose digest is {actual}: refusing them")]
    BlobMismatch {
        /// `host[:port]`.
        registry: String,
        /// The repository path.
        repository: String,
        /// The digest asked for.
        digest: Digest,
        /// The digest of the bytes sent.
        actual: Digest,
    },
    /// After a manifest push, the registry named a digest that is not the bytes'.
    #[error("the registry {registry} stored {what} as {answered}, but the bytes pushed are {pushed}: refusing to rely on it")]
    StoredDigestMismatch {
        /// `host[:port]`.
        registry: String,
        /// What was pushed, e.g. `manifest v1 of org/app`.
        what: String,
        /// The digest of the bytes pushed.
        pushed: Digest,
        /// The registry's `Docker-Content-Digest`.
        answered: String,
    },
    /// Bytes to push that do not hash to the digest they are pushed as (nothing was sent).
    #[error("the bytes to push as {digest} to {repository} hash to {actual}: nothing was pushed")]
    NotTheDigest {
        /// The repository path.
        repository: String,
        /// The digest given.
        digest: Digest,
        /// The digest of the bytes.
        actual: Digest,
    },
    /// An upload `Location` that cannot be used.
    #[error("the registry {registry} gave an upload location that cannot be used for {what} ({location:?}): {reason}")]
    UploadLocation {
        /// `host[:port]`.
        registry: String,
        /// What was being pushed.
        what: String,
        /// The `Location` header.
        location: String,
        /// Why.
        reason: &'static str,
    },
    /// The manifest is not one vouch signs.
    #[error("{registry}/{repository}:{reference} is a {media_type} manifest, which vouch does not sign: push it as an OCI or Docker schema 2 image")]
    UnsupportedManifest {
        /// `host[:port]`.
        registry: String,
        /// The repository path.
        repository: String,
        /// Tag or digest.
        reference: String,
        /// Its media type.
        media_type: String,
    },
    /// A manifest, blob (or another answer) over its size cap.
    #[error("the registry {registry} sent more than {limit} bytes for {what}")]
    TooLarge {
        /// `host[:port]`.
        registry: String,
        /// What was read.
        what: String,
        /// The cap.
        limit: u64,
    },
    /// Credentials (or a token) that cannot travel in an HTTP header.
    #[error(
        "the credentials or token for {registry} contain characters an HTTP header cannot carry"
    )]
    InvalidCredentials {
        /// `host[:port]`.
        registry: String,
    },
    /// The docker configuration file is unreadable.
    #[error("cannot use registry credentials from {}: {reason}", path.display())]
    DockerConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}
