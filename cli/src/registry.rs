//! Asking an OCI registry which manifest a reference names, through the Distribution API.
//!
//! `vouch sign HOST/ORG/APP:TAG` signs what the registry serves for the tag, and `vouch verify`
//! checks that the registry still serves the signed digest. [`Registries::manifest`] answers
//! both: the manifest's digest, size and media type, from `HEAD /v2/<name>/manifests/<ref>`
//! (the `Docker-Content-Digest` and `Content-Length` headers), or, when the registry does not
//! answer a HEAD with both, from a `GET` of the manifest, whose digest is then the sha256 of
//! the bytes read (and must agree with the header when there is one).
//!
//! Authentication follows the registry's `401` challenge: `Bearer realm=…,service=…,scope=…`
//! fetches a token from the realm (anonymously, or with basic credentials when there are
//! some), `Basic` sends the credentials themselves. Credentials come from
//! `--registry-username` with `--registry-password-stdin`, else from the `auths` of
//! `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`), read only when a registry asks.
//!
//! Transport: registries on loopback addresses are reached over plain HTTP (as docker does),
//! hosts named with `--insecure-registry` too, every other registry over HTTPS. Credentials
//! are never sent to a token server over plain HTTP unless it is named with
//! `--insecure-registry`, or is on loopback and so is the server that named it (a server
//! elsewhere naming a loopback realm would hand them to whatever listens on that port).
//!
//! Notary servers (Docker Hub's and most hosted ones) answer with the same `401` challenge:
//! [`Registries::notary_token`] pings the server's `/v2/` as the notary client does and gets
//! a token with `repository:<gun>:pull` from the same flow, with credentials from
//! `NOTARY_AUTH` (base64 of `user:password`, what the notary client reads) or the docker
//! config's entry for the notary host, else for the images' registry when the notary server
//! is that registry's own (on its host, or `notary.<its host>`: never a notary server
//! elsewhere) ([`Registries::for_notary`]).
//!
//! The token flow itself (challenge parsing, the realm rules, the capped token fetch) is
//! [`vouch_verifier::registry_auth`]'s, shared with the admission webhook; this module
//! decides which credentials to offer and words the errors.
//!
//! What it is not: a registry client for pulling or pushing images. It reads manifests only,
//! and nothing it reads is trusted: the signature in the trust data is what makes a digest
//! trusted; the registry only says which digest a tag points to now.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use reqwest::blocking::{Client, Response};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use thiserror::Error;
use vouch_tuf::reference::{Digest, DigestAlgorithm, ImageRef};
use vouch_verifier::registry_auth::{
    self, chain, fetch_token, host_only, is_registrys_notary, parse_challenge, token_request,
    ChallengeError, Ping, TokenError,
};
pub use vouch_verifier::registry_auth::{is_loopback_host, Credentials};
use vouch_verifier::transport::{read_capped_by, TransportError};
use zeroize::Zeroizing;

/// The manifest media types asked for, most specific first: OCI index and manifest, Docker
/// schema 2 manifest list and manifest.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest read (the size registries commonly accept).
pub const MAX_MANIFEST: u64 = 4 * 1024 * 1024;
/// Longest the body of an error answer may take to arrive; past it the detail is left out.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where Docker Hub's `docker.io` serves the Distribution API.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Registry options of `vouch sign` and `vouch verify`.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct RegistryArgs {
    /// Reach this registry (HOST or HOST:PORT) over plain HTTP; registries on loopback
    /// addresses always are. Repeat for several.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// User name for the registry, with the password on stdin (--registry-password-stdin);
    /// else credentials come from ~/.docker/config.json.
    #[arg(long, value_name = "USER", requires = "registry_password_stdin")]
    pub registry_username: Option<String>,
    /// Read the registry password (or token) from stdin, for --registry-username.
    #[arg(long, requires = "registry_username")]
    pub registry_password_stdin: bool,
}

/// What a registry serves for a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The manifest's digest (sha256).
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub length: u64,
    /// The manifest's media type, when the registry or the manifest says it.
    pub media_type: Option<String>,
}

/// Why a registry could not say which manifest a reference names.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// No connection (or TLS failed).
    #[error("cannot reach the registry {registry} at {url} ({message}): check the image name; a registry served over plain HTTP must be on loopback or named with --insecure-registry")]
    Unreachable {
        /// `host[:port]` as in the image name.
        registry: String,
        /// The URL asked.
        url: String,
        /// The cause.
        message: String,
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
    /// Credentials were needed and missing or refused (401).
    #[error(
        "the registry {registry} refused to show {repository} (401 Unauthorized{detail}): {hint}"
    )]
    Unauthorized {
        /// `host[:port]`.
        registry: String,
        /// The repository path.
        repository: String,
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
        /// The request, e.g. `manifest v1 of org/app`.
        what: String,
        /// The status.
        status: StatusCode,
        /// The server's message, if any, led by `: `.
        detail: String,
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
    /// A digest the registry sent disagrees with the bytes (or with the digest asked for).
    #[error("the registry {registry} sent a manifest for {reference} whose sha256 is {actual}, not {claimed}: refusing it")]
    DigestMismatch {
        /// `host[:port]`.
        registry: String,
        /// Tag or digest asked for.
        reference: String,
        /// What the header (or the reference) claimed.
        claimed: String,
        /// The sha256 of the bytes.
        actual: String,
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
    /// A manifest (or another answer) over its size cap.
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

/// Where credentials came from, for hints.
#[derive(Debug, Clone)]
enum Login {
    /// `--registry-username` with the password from stdin, for every registry.
    Given(Credentials),
    /// `NOTARY_AUTH` (base64 of `user:password`), for a notary server.
    NotaryAuth(Credentials),
    /// The docker configuration file, read on first need.
    DockerConfig,
}

/// The registry key a docker config `auths` entry names: `https://host/v1/` → `host`.
fn config_key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// The names a registry's credentials may be stored under in docker's config.
fn config_names(registry: &str) -> Vec<&str> {
    if registry == "docker.io" {
        vec!["docker.io", "index.docker.io", DOCKER_HUB_API]
    } else {
        vec![registry]
    }
}

/// Credentials for `registry` in a docker config document (`auths.<host>.auth`, base64 of
/// `user:password`, or `username` and `password`); `Ok(None)` when it has none.
pub fn credentials_from_docker_config(
    text: &[u8],
    registry: &str,
) -> Result<Option<Credentials>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let names = config_names(registry);
    let entry = auths
        .iter()
        .find(|(k, _)| names.contains(&config_key_host(k)))
        .map(|(_, v)| v);
    let Some(entry) = entry else {
        return Ok(None);
    };
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        if !auth.is_empty() {
            let raw = Zeroizing::new(
                Base64::decode_vec(auth.trim())
                    .map_err(|_| format!("auths.{registry}.auth is not base64"))?,
            );
            let text = std::str::from_utf8(&raw)
                .map_err(|_| format!("auths.{registry}.auth is not UTF-8"))?;
            let (user, pass) = text
                .split_once(':')
                .ok_or_else(|| format!("auths.{registry}.auth is not USER:PASSWORD"))?;
            return Ok(Some(Credentials::new(
                user.to_owned(),
                Zeroizing::new(pass.to_owned()),
            )));
        }
    }
    let user = entry.get("username").and_then(|u| u.as_str());
    let pass = entry.get("password").and_then(|p| p.as_str());
    Ok(match (user, pass) {
        (Some(u), Some(p)) if !u.is_empty() => {
            Some(Credentials::new(u.to_owned(), Zeroizing::new(p.to_owned())))
        }
        _ => None,
    })
}

/// The docker configuration file: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// Longest a registry may take to send one answer's body, as a whole: a registry trickling
/// bytes (each read within the client's per-read timeout) is cut off here.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a connection to a registry may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn read_limited(
    registry: &str,
    what: &str,
    resp: Response,
    limit: u64,
    within: Duration,
) -> Result<Vec<u8>, RegistryError> {
    let announced = resp.content_length();
    read_body(
        registry,
        what,
        resp,
        announced,
        limit,
        Instant::now() + within,
    )
}

/// Reads an answer's body: at most `limit` bytes, all of it by `deadline`.
fn read_body(
    registry: &str,
    what: &str,
    body: impl Read,
    announced: Option<u64>,
    limit: u64,
    deadline: Instant,
) -> Result<Vec<u8>, RegistryError> {
    read_capped_by(what, body, limit, announced, Some(deadline)).map_err(|e| match e {
        TransportError::TooLarge { .. } => RegistryError::TooLarge {
            registry: registry.to_owned(),
            what: what.to_owned(),
            limit,
        },
        TransportError::TimedOut { .. } => RegistryError::Refused {
            registry: registry.to_owned(),
            what: what.to_owned(),
            status: StatusCode::OK,
            detail:
                ": the answer did not arrive within the time allowed (slow or stalled registry)"
                    .to_owned(),
        },
        e => RegistryError::Refused {
            registry: registry.to_owned(),
            what: what.to_owned(),
            status: StatusCode::OK,
            detail: format!(": reading the answer failed: {e}"),
        },
    })
}

/// The registry's error message (`{"errors":[{"code","message"}]}`), led by `: `, or "".
fn error_detail(resp: Response) -> String {
    registry_auth::error_detail(resp, Instant::now() + ERROR_BODY_TIMEOUT)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The media type of a `Content-Type` value, without parameters; `None` for generic types.
fn media_type_of(content_type: Option<&str>) -> Option<String> {
    let mt = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    match mt.as_str() {
        "" | "application/json" | "text/plain" | "application/octet-stream" => None,
        _ => Some(mt),
    }
}

fn is_schema1(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.distribution.manifest.v1")
}

/// A sha256 `Docker-Content-Digest`, when the header is there and is one.
fn sha256_header(headers: &HeaderMap) -> Option<Digest> {
    let d = Digest::parse(header_str(
        headers,
        header::HeaderName::from_static("docker-content-digest"),
    )?)
    .ok()?;
    (d.algorithm() == DigestAlgorithm::Sha256).then_some(d)
}

/// Talks to the registries one command needs, keeping the authorisation each repository
/// was granted.
pub struct Registries {
    client: Client,
    insecure: Vec<String>,
    login: Login,
    docker_config: Option<Option<(PathBuf, Vec<u8>)>>,
    /// `Authorization` values by (registry, repository).
    granted: HashMap<(String, String), Zeroizing<String>>,
    /// (registry, repository) pairs whose authorisation was obtained with credentials.
    with_credentials: std::collections::HashSet<(String, String)>,
    /// True when the servers asked are notary servers (for the hints).
    notary: bool,
    /// Where else the docker config may hold the credentials for a notary server: the
    /// registry of the collection's images, whose login `docker trust` sends to notary.
    fallback_registry: Option<String>,
    /// Longest one answer may take, as a whole (headers, then body).
    body_timeout: Duration,
    /// True when the notary server is reached over plain HTTP across a network: whoever
    /// is on that network can answer for it and name a token realm of theirs, so no
    /// credentials are sent (tokens are asked anonymously).
    notary_in_clear: bool,
}

impl std::fmt::Debug for Registries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registries")
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl Registries {
    /// Validates `args`; reads the password from stdin when `--registry-password-stdin`.
    pub fn new(args: &RegistryArgs) -> anyhow::Result<Self> {
        let login = match (&args.registry_username, args.registry_password_stdin) {
            (Some(user), true) => {
                // Room for any sensible password up front: no reallocation leaves copies behind.
                let mut pass = Zeroizing::new(String::with_capacity(4096));
                std::io::stdin()
                    .take(64 * 1024)
                    .read_to_string(&mut pass)
                    .map_err(|e| {
                        anyhow::anyhow!("cannot read the registry password from stdin: {e}")
                    })?;
                let trimmed = Zeroizing::new(pass.trim_end_matches(['\r', '\n']).to_owned());
                if trimmed.is_empty() {
                    anyhow::bail!("--registry-password-stdin: stdin is empty; pipe the password in, e.g. `echo \"$TOKEN\" | vouch … --registry-password-stdin`");
                }
                if user.is_empty() || user.contains(':') {
                    anyhow::bail!(
                        "--registry-username {user:?}: a user name is not empty and has no ':'"
                    );
                }
                Login::Given(Credentials::new(user.clone(), trimmed))
            }
            (None, false) => Login::DockerConfig,
            _ => anyhow::bail!("--registry-username and --registry-password-stdin go together"),
        };
        for h in &args.insecure_registry {
            if h.is_empty() || h.contains(['/', ' ']) {
                anyhow::bail!("--insecure-registry {h:?}: expected HOST or HOST:PORT");
            }
        }
        Self::with_login(args.insecure_registry.clone(), login)
    }

    /// For notary servers: credentials from `NOTARY_AUTH` (base64 of `user:password`, as the
    /// notary client reads it) when set, else the docker config's entry for the notary host.
    /// Each request (to the server, and to its token realm) is over within `timeout` (the
    /// `--timeout` its metadata is fetched with), a realm that never answers included.
    pub fn for_notary(timeout: Duration) -> anyhow::Result<Self> {
        let login = match std::env::var("NOTARY_AUTH") {
            Ok(v) if !v.trim().is_empty() => Login::NotaryAuth(notary_auth(v.trim())?),
            _ => Login::DockerConfig,
        };
        let mut r = Self::with_timeouts(Vec::new(), login, timeout.min(CONNECT_TIMEOUT), timeout)?;
        r.notary = true;
        Ok(r)
    }

    fn with_login(insecure: Vec<String>, login: Login) -> anyhow::Result<Self> {
        Self::with_timeouts(insecure, login, CONNECT_TIMEOUT, BODY_TIMEOUT)
    }

    fn with_timeouts(
        insecure: Vec<String>,
        login: Login,
        connect: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .connect_timeout(connect)
            .timeout(timeout)
            // Redirects to another host drop the Authorization header (reqwest does that).
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("vouch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        Ok(Registries {
            client,
            insecure,
            login,
            docker_config: None,
            granted: HashMap::new(),
            with_credentials: std::collections::HashSet::new(),
            notary: false,
            fallback_registry: None,
            body_timeout: timeout,
            notary_in_clear: false,
        })
    }

    /// True when `host_port` is reached over plain HTTP.
    fn plain_http(&self, host_port: &str) -> bool {
        is_loopback_host(host_port) || self.named_insecure(host_port)
    }

    /// True when `host_port` is named with `--insecure-registry`.
    fn named_insecure(&self, host_port: &str) -> bool {
        self.insecure
            .iter()
            .any(|h| h == host_port || (!h.contains(':') && h == host_only(host_port)))
    }

    /// The API base URL of `registry` (`host[:port]` as in image names).
    pub fn base_url(&self, registry: &str) -> String {
        let host = if registry == "docker.io" {
            DOCKER_HUB_API
        } else {
            registry
        };
        let scheme = if self.plain_http(registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}")
    }

    fn credentials(&mut self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        if self.notary_in_clear {
            return Ok(None);
        }
        match &self.login {
            Login::Given(c) | Login::NotaryAuth(c) => return Ok(Some(c.clone())),
            Login::DockerConfig => {}
        }
        if self.docker_config.is_none() {
            let loaded = match docker_config_path() {
                Some(path) => match std::fs::read(&path) {
                    Ok(bytes) => Some((path, bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => {
                        return Err(RegistryError::DockerConfig {
                            path,
                            reason: e.to_string(),
                        })
                    }
                },
                None => None,
            };
            self.docker_config = Some(loaded);
        }
        match &self.docker_config {
            Some(Some((path, bytes))) => {
                let from_config = |name: &str| {
                    credentials_from_docker_config(bytes, name).map_err(|reason| {
                        RegistryError::DockerConfig {
                            path: path.clone(),
                            reason,
                        }
                    })
                };
                match (from_config(registry)?, &self.fallback_registry) {
                    (Some(c), _) => Ok(Some(c)),
                    (None, Some(other)) if is_registrys_notary(registry, other) => {
                        from_config(other)
                    }
                    (None, _) => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }

    /// What to do when `registry` refused the credentials (or their absence).
    pub fn login_hint(&self, registry: &str, had_credentials: bool) -> String {
        match (&self.login, had_credentials) {
            (_, _) if self.notary_in_clear => format!(
                "{registry} is reached over plain HTTP, so no credentials are sent to it or its token server (anyone on the network could answer for it): use its https:// URL"
            ),
            (Login::Given(_), _) => {
                "check --registry-username and the password given on stdin".to_owned()
            }
            (Login::NotaryAuth(_), _) => format!(
                "the credentials in NOTARY_AUTH are refused for {registry}: check it (base64 of USER:PASSWORD)"
            ),
            (Login::DockerConfig, true) if self.notary => format!(
                "the credentials for {registry} in the docker config are refused: `docker login {registry}` again, or set NOTARY_AUTH (base64 of USER:PASSWORD)"
            ),
            (Login::DockerConfig, false) if self.notary => {
                let withheld = match &self.fallback_registry {
                    Some(images) if !is_registrys_notary(registry, images) => format!(
                        "; the docker config's login for {images} is sent only to a notary server on {images}'s own host"
                    ),
                    _ => String::new(),
                };
                format!(
                    "this needs credentials: set NOTARY_AUTH to the base64 of USER:PASSWORD (as for the notary client), or log in with `docker login {registry}` (vouch reads auths in ~/.docker/config.json, not credential helpers){withheld}"
                )
            }
            (Login::DockerConfig, true) => format!(
                "the credentials for {registry} in the docker config are refused: `docker login {registry}` again, or pass --registry-username and --registry-password-stdin"
            ),
            (Login::DockerConfig, false) => format!(
                "log in with `docker login {registry}` (vouch reads auths in ~/.docker/config.json, not credential helpers), or pass --registry-username and --registry-password-stdin"
            ),
        }
    }

    /// Answers a `401` challenge of `registry` for `repository`: the `Authorization` value
    /// to retry with. A Bearer token is asked for `scope` when given, else for the
    /// challenge's scope, else for `repository:<repository>:pull`.
    fn authorize(
        &mut self,
        registry: &str,
        repository: &str,
        challenge_header: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Zeroizing<String>, RegistryError> {
        let raw = challenge_header.unwrap_or("").to_owned();
        let challenge = |reason: &str| RegistryError::Challenge {
            registry: registry.to_owned(),
            challenge: raw.clone(),
            reason: reason.to_owned(),
        };
        let parsed =
            parse_challenge(&raw).ok_or_else(|| challenge("no usable WWW-Authenticate header"))?;
        let creds = self.credentials(registry)?;
        if creds.is_some() {
            self.with_credentials
                .insert((registry.to_owned(), repository.to_owned()));
        }
        match parsed.scheme.as_str() {
            "basic" => match creds {
                Some(c) => Ok(c.basic_header()),
                None => Err(RegistryError::Unauthorized {
                    registry: registry.to_owned(),
                    repository: repository.to_owned(),
                    detail: String::new(),
                    hint: self.login_hint(registry, false),
                }),
            },
            "bearer" => {
                let scope = scope
                    .map(str::to_owned)
                    .or_else(|| parsed.params.get("scope").cloned())
                    .unwrap_or_else(|| format!("repository:{repository}:pull"));
                // A plain-HTTP realm: a host named with --insecure-registry, or one on
                // loopback when the server asking is on loopback too (the rule is
                // `token_request`'s).
                let request = token_request(&parsed, registry, &scope, |realm_host| {
                    self.named_insecure(realm_host)
                })
                .map_err(|e| match e {
                    ChallengeError::RealmNotHttps => challenge(
                        "the token realm is not HTTPS (allow a plain-HTTP token server with --insecure-registry HOST)",
                    ),
                    e => challenge(&e.to_string()),
                })?;
                let deadline = Instant::now() + self.body_timeout;
                let token = fetch_token(&self.client, &request, creds.as_ref(), deadline)
                    .map_err(|e| self.token_refusal(registry, repository, creds.is_some(), e))?;
                Ok(Zeroizing::new(format!("Bearer {}", token.as_str())))
            }
            other => Err(challenge(&format!("unsupported scheme {other:?}"))),
        }
    }

    /// Words a token server's refusal, for `repository` of `registry`.
    fn token_refusal(
        &self,
        registry: &str,
        repository: &str,
        had_credentials: bool,
        e: TokenError,
    ) -> RegistryError {
        let token_error = |realm: String, detail: String| RegistryError::Token {
            registry: registry.to_owned(),
            realm,
            detail,
        };
        match e {
            TokenError::Refused { status, detail, .. } => RegistryError::Unauthorized {
                registry: registry.to_owned(),
                repository: repository.to_owned(),
                detail: format!(": the token server said {status}{detail}"),
                hint: self.login_hint(registry, had_credentials),
            },
            TokenError::TimedOut { realm } => token_error(
                realm,
                format!(
                    "no answer within {} s{}",
                    self.body_timeout.as_secs(),
                    if self.notary { " (--timeout)" } else { "" }
                ),
            ),
            TokenError::Unreachable { realm, message } => token_error(realm, message),
            TokenError::Failed {
                realm,
                status,
                detail,
            } => token_error(realm, format!("{status}{detail}")),
            TokenError::NoToken { realm, reason } => token_error(realm, reason.to_owned()),
            TokenError::TooLarge { limit, .. } => RegistryError::TooLarge {
                registry: registry.to_owned(),
                what: "a token".to_owned(),
                limit,
            },
            TokenError::Read { realm, message } => token_error(realm, message),
            TokenError::InvalidCredentials => RegistryError::InvalidCredentials {
                registry: registry.to_owned(),
            },
        }
    }

    /// Sends `method url` for `repository` of `registry`, answering one `401` challenge.
    fn send(
        &mut self,
        method: Method,
        registry: &str,
        repository: &str,
        url: &str,
    ) -> Result<Response, RegistryError> {
        let key = (registry.to_owned(), repository.to_owned());
        let mut auth = self.granted.get(&key).cloned();
        let mut answered = false;
        loop {
            let mut req = self
                .client
                .request(method.clone(), url)
                .header(header::ACCEPT, ACCEPT_MANIFESTS);
            if let Some(a) = &auth {
                req = req.header(header::AUTHORIZATION, sensitive(registry, a)?);
            }
            let resp = req.send().map_err(|e| RegistryError::Unreachable {
                registry: registry.to_owned(),
                url: url.to_owned(),
                message: chain(&e),
            })?;
            if resp.status() != StatusCode::UNAUTHORIZED || answered {
                return Ok(resp);
            }
            let challenge = header_str(resp.headers(), header::WWW_AUTHENTICATE).map(str::to_owned);
            let granted = self.authorize(registry, repository, challenge.as_deref(), None)?;
            self.granted.insert(key.clone(), granted.clone());
            auth = Some(granted);
            answered = true;
        }
    }

    fn refusal(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        resp: Response,
    ) -> RegistryError {
        let status = resp.status();
        match status {
            StatusCode::NOT_FOUND => RegistryError::ManifestUnknown {
                registry: registry.to_owned(),
                repository: repository.to_owned(),
                reference: reference.to_owned(),
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let had = self
                    .with_credentials
                    .contains(&(registry.to_owned(), repository.to_owned()));
                RegistryError::Unauthorized {
                    registry: registry.to_owned(),
                    repository: repository.to_owned(),
                    detail: if status == StatusCode::FORBIDDEN {
                        format!(": 403 Forbidden{}", error_detail(resp))
                    } else {
                        error_detail(resp)
                    },
                    hint: match &self.login {
                        Login::Given(_) | Login::NotaryAuth(_) => self.login_hint(registry, true),
                        Login::DockerConfig => self.login_hint(registry, had),
                    },
                }
            }
            _ => RegistryError::Refused {
                registry: registry.to_owned(),
                what: format!("manifest {reference} of {repository}"),
                status,
                detail: error_detail(resp),
            },
        }
    }

    /// What the registry of `image` serves for `reference` (a tag or a digest) of the
    /// image's repository: HEAD of the manifest, else GET.
    pub fn manifest(
        &mut self,
        image: &ImageRef,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        let registry = image.registry().to_owned();
        let repository = image.repository().to_owned();
        let url = format!(
            "{}/v2/{repository}/manifests/{reference}",
            self.base_url(&registry)
        );
        let asked = Digest::parse(reference).ok();
        let unsupported = |media_type: &str| RegistryError::UnsupportedManifest {
            registry: registry.clone(),
            repository: repository.clone(),
            reference: reference.to_owned(),
            media_type: media_type.to_owned(),
        };
        let mismatch = |claimed: &Digest, actual: &Digest| RegistryError::DigestMismatch {
            registry: registry.clone(),
            reference: reference.to_owned(),
            claimed: claimed.to_string(),
            actual: actual.to_string(),
        };

        let head = self.send(Method::HEAD, &registry, &repository, &url)?;
        match head.status() {
            s if s.is_success() => {
                let h = head.headers();
                let media_type = media_type_of(header_str(h, header::CONTENT_TYPE));
                if let Some(mt) = &media_type {
                    if is_schema1(mt) {
                        return Err(unsupported(mt));
                    }
                }
                let length = header_str(h, header::CONTENT_LENGTH).and_then(|l| l.parse().ok());
                if let (Some(digest), Some(length)) = (sha256_header(h), length) {
                    if let Some(a) = &asked {
                        if a.algorithm() == DigestAlgorithm::Sha256 && *a != digest {
                            return Err(mismatch(a, &digest));
                        }
                    }
                    if length <= MAX_MANIFEST {
                        return Ok(Manifest {
                            digest,
                            length,
                            media_type,
                        });
                    }
                }
            }
            StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(self.refusal(&registry, &repository, reference, head));
            }
            // 405 and other refusals of HEAD: ask with GET.
            _ => {}
        }

        let resp = self.send(Method::GET, &registry, &repository, &url)?;
        if !resp.status().is_success() {
            return Err(self.refusal(&registry, &repository, reference, resp));
        }
        let claimed = sha256_header(resp.headers());
        let content_type = media_type_of(header_str(resp.headers(), header::CONTENT_TYPE));
        let body = read_limited(
            &registry,
            &format!("manifest {reference} of {repository}"),
            resp,
            MAX_MANIFEST,
            self.body_timeout,
        )?;
        let digest = Digest::sha256_of(&body);
        for c in claimed.iter().chain(asked.iter()) {
            if !c.matches(&body) {
                return Err(mismatch(c, &digest));
            }
        }
        let media_type = content_type.or_else(|| {
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()?
                .get("mediaType")?
                .as_str()
                .map(str::to_owned)
        });
        if let Some(mt) = &media_type {
            if is_schema1(mt) {
                return Err(unsupported(mt));
            }
        }
        Ok(Manifest {
            digest,
            length: body.len() as u64,
            media_type,
        })
    }
}

impl Registries {
    /// The bearer token to read `gun` from the notary server at `server_url` (whose
    /// `host[:port]` is `host`), the way the notary client gets one: `GET /v2/`, and when
    /// that answers `401` with a `Bearer` challenge, a token for `repository:<gun>:pull`
    /// from its realm (with credentials when there are some: `NOTARY_AUTH`, else the docker
    /// config's entry for `host`, else its entry for `gun_registry`, the registry of the
    /// collection's images, as `docker trust` uses, when `host` is that registry's own notary
    /// server). `None` when the server asks for none.
    pub fn notary_token(
        &mut self,
        server_url: &str,
        host: &str,
        gun: &str,
        gun_registry: Option<&str>,
    ) -> Result<Option<Zeroizing<String>>, RegistryError> {
        self.fallback_registry = gun_registry.map(str::to_owned);
        self.note_notary_server(server_url);
        let url = format!("{}/v2/", server_url.trim_end_matches('/'));
        let deadline = Instant::now() + self.body_timeout;
        let challenge = match registry_auth::ping(&self.client, server_url, deadline) {
            Ok(Ping::Open) => return Ok(None),
            Ok(Ping::Challenged(c)) => Some(c),
            Err(e) => {
                return Err(RegistryError::Unreachable {
                    registry: host.to_owned(),
                    url,
                    message: chain(&e),
                })
            }
        };
        if challenge
            .as_deref()
            .and_then(parse_challenge)
            .is_some_and(|c| c.scheme != "bearer")
        {
            return Err(RegistryError::Challenge {
                registry: host.to_owned(),
                challenge: challenge.unwrap_or_default(),
                reason: "a notary server is read with a Bearer token (the registry token flow)"
                    .to_owned(),
            });
        }
        let scope = format!("repository:{gun}:pull");
        let granted = self.authorize(host, gun, challenge.as_deref(), Some(&scope))?;
        let token = granted.strip_prefix("Bearer ").unwrap_or(granted.as_str());
        Ok(Some(Zeroizing::new(token.to_owned())))
    }

    /// Notes how the notary server at `server_url` is reached: over plain HTTP to a host
    /// off loopback, no credentials are sent for it (see [`Registries::notary_in_clear`]).
    fn note_notary_server(&mut self, server_url: &str) {
        self.notary_in_clear = !registry_auth::credentials_may_go_to(server_url);
    }

    /// True when the authorisation for `repository` of `registry` was asked with credentials.
    pub fn used_credentials(&self, registry: &str, repository: &str) -> bool {
        self.with_credentials
            .contains(&(registry.to_owned(), repository.to_owned()))
    }
}

/// Credentials from `NOTARY_AUTH`: base64 of `user:password`.
fn notary_auth(value: &str) -> anyhow::Result<Credentials> {
    let raw = Zeroizing::new(Base64::decode_vec(value).map_err(|_| {
        anyhow::anyhow!("NOTARY_AUTH is not base64: set it to the base64 of USER:PASSWORD")
    })?);
    let text = std::str::from_utf8(&raw)
        .map_err(|_| anyhow::anyhow!("NOTARY_AUTH does not decode to UTF-8 text"))?;
    match text.split_once(':') {
        Some((user, pass)) if !user.is_empty() => Ok(Credentials::new(
            user.to_owned(),
            Zeroizing::new(pass.trim().to_owned()),
        )),
        _ => anyhow::bail!("NOTARY_AUTH does not decode to USER:PASSWORD (a user name, then ':')"),
    }
}

/// A header value marked sensitive (kept out of logs and debug output).
fn sensitive(registry: &str, value: &str) -> Result<HeaderValue, RegistryError> {
    registry_auth::sensitive(value).ok_or_else(|| RegistryError::InvalidCredentials {
        registry: registry.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn loopback_registries_use_plain_http() {
        let r = Registries::with_login(
            vec!["reg.internal:5000".into(), "lab".into()],
            Login::DockerConfig,
        )
        .unwrap();
        assert_eq!(r.base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(r.base_url("localhost:5000"), "http://localhost:5000");
        assert_eq!(r.base_url("[::1]:5000"), "http://[::1]:5000");
        assert_eq!(r.base_url("reg.internal:5000"), "http://reg.internal:5000");
        assert_eq!(r.base_url("reg.internal:5001"), "https://reg.internal:5001");
        assert_eq!(r.base_url("lab:8080"), "http://lab:8080");
        assert_eq!(
            r.base_url("registry.example.com"),
            "https://registry.example.com"
        );
        assert_eq!(r.base_url("docker.io"), "https://registry-1.docker.io");
        assert_eq!(
            r.base_url("127.0.0.1.example.com"),
            "https://127.0.0.1.example.com"
        );
    }

    #[test]
    fn notary_auth_is_base64_of_user_and_password() {
        let c = notary_auth(&Base64::encode_string(b"alice:pw:with:colons\n")).unwrap();
        assert_eq!(c.username(), "alice");
        assert_eq!(c.password(), "pw:with:colons");
        for bad in [
            "not base64!",
            &Base64::encode_string(b"no-colon"),
            &Base64::encode_string(b":pw"),
        ] {
            let e = notary_auth(bad).unwrap_err().to_string();
            assert!(e.contains("NOTARY_AUTH"), "{e}");
        }
    }

    #[test]
    fn a_registrys_login_goes_only_to_its_own_notary_server() {
        let auth = Base64::encode_string(b"alice:pw");
        let config = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"reg.example.com:5000":{{"auth":"{auth}"}}}}}}"#
        );
        let creds = |notary_host: &str, images: &str| {
            let mut r = Registries::for_notary(Duration::from_secs(5)).unwrap();
            r.login = Login::DockerConfig;
            r.docker_config = Some(Some((
                PathBuf::from("config.json"),
                config.clone().into_bytes(),
            )));
            r.fallback_registry = Some(images.to_owned());
            r.credentials(notary_host)
                .unwrap()
                .map(|c| c.username().to_owned())
        };
        let alice = Some("alice".to_owned());
        assert_eq!(creds("notary.docker.io", "docker.io"), alice);
        assert_eq!(creds("reg.example.com:5000", "reg.example.com:5000"), alice);
        assert_eq!(creds("reg.example.com:4443", "reg.example.com:5000"), alice);
        assert_eq!(
            creds("notary.reg.example.com", "reg.example.com:5000"),
            alice
        );
        for elsewhere in [
            "notary.example.net",
            "127.0.0.1:4443",
            "docker.io.example.net",
            "notary.docker.io.example.net",
            "evilreg.example.com:5000",
        ] {
            assert_eq!(creds(elsewhere, "docker.io"), None, "{elsewhere}");
            assert_eq!(
                creds(elsewhere, "reg.example.com:5000"),
                None,
                "{elsewhere}"
            );
        }
    }

    /// A registry or notary server on another machine names a plain-HTTP token realm on
    /// this machine's loopback: whatever listens on that port (any local user's process)
    /// would read the credentials in clear. Refused before connecting.
    #[test]
    fn a_remote_server_cannot_send_credentials_to_a_plain_http_loopback_realm() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let challenge = format!(r#"Bearer realm="{realm}",service="s""#);
        let creds = Credentials::new("alice".into(), Zeroizing::new("pw".into()));
        for (notary, login) in [
            (true, Login::NotaryAuth(creds.clone())),
            (false, Login::Given(creds.clone())),
        ] {
            let mut r = Registries::with_login(Vec::new(), login).unwrap();
            r.notary = notary;
            for remote in ["notary.example.com", "registry.example.com:5000"] {
                let e = r
                    .authorize(remote, "example.com/org/app", Some(&challenge), None)
                    .unwrap_err();
                assert!(
                    matches!(&e, RegistryError::Challenge { reason, .. } if reason.contains("not HTTPS")),
                    "{e}"
                );
            }
        }
        assert_eq!(
            listener.accept().unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock,
            "the realm was contacted"
        );
    }

    /// Over plain HTTP across a network, anyone on the path answers for the notary server
    /// and names a token realm of theirs: no credentials (NOTARY_AUTH or docker config) go.
    #[test]
    fn no_credentials_go_through_a_notary_server_reached_over_plain_http() {
        let creds = Credentials::new("alice".into(), Zeroizing::new("pw".into()));
        for (url, sent) in [
            ("http://notary.example.com", false),
            ("http://10.0.0.7:4443", false),
            ("https://notary.example.com", true),
            ("http://127.0.0.1:4443", true),
        ] {
            let mut r =
                Registries::with_login(Vec::new(), Login::NotaryAuth(creds.clone())).unwrap();
            r.notary = true;
            r.note_notary_server(url);
            let got = r.credentials("notary.example.com").unwrap();
            assert_eq!(got.is_some(), sent, "{url}");
            if !sent {
                assert!(r
                    .login_hint("notary.example.com", false)
                    .contains("https://"));
            }
        }
    }

    #[test]
    fn docker_config_auths() {
        let auth = Base64::encode_string(b"alice:s3cret:with:colons");
        let doc = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"reg.example.com:5000":{{"username":"bob","password":"pw"}}}},"credsStore":"desktop"}}"#
        );
        let c = credentials_from_docker_config(doc.as_bytes(), "docker.io")
            .unwrap()
            .unwrap();
        assert_eq!(c.username(), "alice");
        assert_eq!(c.password(), "s3cret:with:colons");
        let c = credentials_from_docker_config(doc.as_bytes(), "reg.example.com:5000")
            .unwrap()
            .unwrap();
        assert_eq!(c.username(), "bob");
        assert!(
            credentials_from_docker_config(doc.as_bytes(), "other.example.com")
                .unwrap()
                .is_none()
        );
        assert!(credentials_from_docker_config(b"{", "docker.io").is_err());
        assert!(credentials_from_docker_config(
            br#"{"auths":{"x.example":{"auth":"!!"}}}"#,
            "x.example"
        )
        .is_err());
        assert!(!format!("{c:?}").contains("pw"));
    }

    #[test]
    fn content_types_without_parameters() {
        assert_eq!(
            media_type_of(Some(
                "application/vnd.oci.image.manifest.v1+json; charset=utf-8"
            )),
            Some("application/vnd.oci.image.manifest.v1+json".to_owned())
        );
        assert_eq!(media_type_of(Some("application/json")), None);
        assert_eq!(media_type_of(None), None);
        assert!(is_schema1(
            "application/vnd.docker.distribution.manifest.v1+prettyjws"
        ));
    }

    /// A body that never ends, one byte a read.
    struct Trickle;

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            buf[0] = b'x';
            Ok(1)
        }
    }

    #[test]
    fn a_trickled_body_is_cut_off_at_its_deadline_and_a_long_one_at_its_limit() {
        // Within the size limit for ever: only the deadline ends it.
        let past = Instant::now();
        let e = read_body("r", "manifest v1", Trickle, None, u64::MAX, past).unwrap_err();
        assert!(e.to_string().contains("did not arrive within"), "{e}");
        let later = Instant::now() + Duration::from_secs(3600);
        let e = read_body("r", "manifest v1", Trickle, Some(10), 1000, later).unwrap_err();
        assert!(
            matches!(e, RegistryError::TooLarge { limit: 1000, .. }),
            "{e}"
        );
        let ok = read_body("r", "m", &b"{}"[..], Some(2), 1000, later).unwrap();
        assert_eq!(ok, b"{}");
    }
}
