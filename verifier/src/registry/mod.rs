//! A client of the OCI Distribution API for manifests and blobs: reading them bounded and
//! content-checked, and writing them, for trust artifacts kept in registries and for
//! resolving which digest a tag names.
//!
//! What it is:
//! - Reads. [`Registries::manifest`] says which manifest a reference names (digest, size,
//!   media type) from `HEAD /v2/<name>/manifests/<ref>`, else from a `GET`;
//!   [`Registries::get_manifest`] and [`Registries::get_blob`] fetch the bytes
//!   ([`Registries::get_manifest_by`] and [`Registries::get_blob_by`] by the caller's
//!   deadline too: the request, a token fetch and the body all over by the sooner of it and
//!   the answer timeout). Every answer is read with a size cap enforced as the bytes stream
//!   in and by a deadline ([`read_capped_by`]), and checked against its content address: a manifest asked by
//!   digest must hash to it, a `Docker-Content-Digest` header must agree with the bytes, a
//!   blob must hash to its digest. Blob `GET`s follow redirects to storage; the
//!   `Authorization` header is not sent to another host (reqwest drops it on a redirect
//!   that changes host).
//! - Writes, for mirrors of trust data: [`Registries::blob_exists`],
//!   [`Registries::push_blob`] (a monolithic upload, `POST` then `PUT <Location>?digest=`),
//!   [`Registries::mount_blob`] (cross-repository mount), [`Registries::copy_blob`] (from
//!   one registry to another, streamed), [`Registries::put_manifest`]. The
//!   registry's answer is checked too: a manifest stored under another digest is refused.
//! - Authentication follows the registry's `401` challenge with the token flow of
//!   [`crate::registry_auth`]: `Bearer realm=…,service=…,scope=…` fetches a token (for
//!   writes with `repository:<name>:pull,push`), `Basic` sends the credentials. Grants are
//!   kept per registry, repository and [`Access`], so a pull-only grant does not stop a
//!   later push from asking again; a request answered `401` is re-authorised once. The
//!   grants sit behind their own lock, held only to look one up or keep one (never across a
//!   request), and at most [`MAX_GRANTS`] are kept: reads take `&self`, so one client (or
//!   its clones, which share the grants) serves concurrent requests.
//! - [`RegistryRepo`] is one repository as a [`crate::transport::RegistryRepository`], what
//!   [`crate::transport::OciTransport`] reads a trust artifact through.
//! - Where credentials come from is a [`Login`]: given on a command line (for one registry,
//!   [`Login::Given`]; every other registry gets the docker config's login), `NOTARY_AUTH`, a
//!   docker configuration file ([`docker_config`]), a service's per-registry table, or
//!   none. Error hints fit the source: command-line flags are named only for the command
//!   line's sources.
//! - Transport: registries on loopback addresses are reached over plain HTTP (as docker
//!   does), hosts named insecure in [`RegistryOptions`] too, every other registry over
//!   HTTPS. Credentials are never sent to a token server over plain HTTP unless it is named
//!   insecure, or is on loopback and so is the server that named it.
//! - [`Registries::notary_token`]: the token a Notary v1 server asks for, from the same
//!   flow.
//!
//! What it is not: image pull or push tooling. It moves manifests and blobs whole, each
//! under a cap the caller gives (only [`Registries::copy_blob`] streams, from one registry
//! into another); it does not resume uploads or walk image indexes. Nothing it reads is trusted for being read: the signatures in the trust data
//! are what make a digest trusted, the registry only stores bytes and says which digest a
//! tag points to now.
//!
//! How the parts relate: [`RegistryOptions`] and [`Login`] (`options.rs`) say how to reach
//! registries and are checked once; [`Registries`] (here) sends the requests and keeps the
//! grants; the pure rules it applies (repository names and references allowed in a path,
//! the token scope to ask, upload URLs) are in `rules.rs`, credential lookup in docker
//! configuration documents in [`docker_config`], and [`RegistryError`] in `error.rs`. The
//! pure parts have unit tests in `tests.rs`; the network operations are exercised against a
//! scripted registry in `verifier/tests/registry_client.rs`.

pub mod docker_config;
mod error;
mod options;
mod repository;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use vouch_tuf::reference::{Digest, DigestAlgorithm, ImageRef};
use zeroize::Zeroizing;

pub use self::docker_config::{credentials_from_docker_config, DockerConfigError};
use self::docker_config::{registry_names, DOCKER_HUB_API};
use crate::registry_auth::{
    self, chain, fetch_token, host_only, host_port, is_registrys_notary, parse_challenge,
    token_request, ChallengeError, Ping, TokenError,
};
pub use crate::registry_auth::{is_loopback_host, Credentials};
use crate::transport::{read_capped_by, TransportError};

pub use self::error::RegistryError;
pub use self::options::{
    Login, OptionsError, RegistryOptions, DEFAULT_ANSWER_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
};
pub use self::repository::RegistryRepo;
use self::rules::{check_names, choose_scope, same_origin, session_url, upload_url};

/// The manifest media types asked for, most specific first: OCI index and manifest, Docker
/// schema 2 manifest list and manifest.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest [`Registries::manifest`] reads (the size registries commonly accept).
pub const MAX_MANIFEST: u64 = 4 * 1024 * 1024;
/// Longest the body of an error answer may take to arrive; past it the detail is left out.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many seconds a [`Registries::copy_blob`] request may take per MiB copied, on top of
/// the answer timeout (a floor of 1 MiB/s).
pub const COPY_SECONDS_PER_MIB: u64 = 1;
/// The media type of an uploaded blob.
const OCTET_STREAM: &str = "application/octet-stream";

/// What an authorisation was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// Reading (`pull`).
    Pull,
    /// Writing (`pull,push`).
    Push,
}

impl Access {
    /// The actions of a token scope.
    fn actions(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        }
    }

    /// The verb of an error message.
    fn verb(self) -> &'static str {
        match self {
            Access::Pull => "show",
            Access::Push => "push to",
        }
    }
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

/// A manifest read whole by [`Registries::get_manifest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// The bytes, as served.
    pub bytes: Vec<u8>,
    /// The sha256 of the bytes.
    pub digest: Digest,
    /// The media type, from `Content-Type` or the manifest's `mediaType`.
    pub media_type: Option<String>,
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
        TransportError::TimedOut { .. } => RegistryError::TimedOut {
            registry: registry.to_owned(),
            what: what.to_owned(),
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

/// The `Docker-Content-Digest` header, when there is one that parses.
fn content_digest_header(headers: &HeaderMap) -> Option<Digest> {
    Digest::parse(header_str(
        headers,
        header::HeaderName::from_static("docker-content-digest"),
    )?)
    .ok()
}

/// A sha256 `Docker-Content-Digest`, when the header is there and is one.
fn sha256_header(headers: &HeaderMap) -> Option<Digest> {
    content_digest_header(headers).filter(|d| d.algorithm() == DigestAlgorithm::Sha256)
}

/// Credentials for `registry` in a per-registry table (Docker Hub under any of its names).
fn credentials_in<'a>(
    table: &'a BTreeMap<String, Credentials>,
    registry: &str,
) -> Option<&'a Credentials> {
    registry_names(registry)
        .into_iter()
        .find_map(|name| table.get(name))
}

/// True when `bound` (the registry credentials were given for) and `registry` (one asked)
/// are the same registry: the same `host[:port]`, Docker Hub under any of its names.
fn same_registry(bound: &str, registry: &str) -> bool {
    let asked = registry_names(registry);
    registry_names(bound).iter().any(|n| asked.contains(n))
}

/// One request and how to authorise it.
struct Call<'a> {
    method: Method,
    url: &'a str,
    registry: &'a str,
    repository: &'a str,
    access: Access,
    accept: Option<&'a str>,
    /// Content type and body.
    body: Option<(&'a str, &'a [u8])>,
    /// False for a request to another origin (an upload location elsewhere): no
    /// `Authorization` goes with it.
    authorize: bool,
    /// The caller's deadline for the whole exchange (token fetch included), if any; each
    /// answer is also bounded by the answer timeout.
    deadline: Option<Instant>,
}

/// The HTTP clients of every [`Registries`] in this process, by (connect, answer) timeout:
/// one connection pool per process, and the platform's certificate store (which costs more
/// than reading a whole trust artifact) loaded once, not per client. What a [`Registries`]
/// holds of its own (authorisations granted, credentials) is shared only with its clones.
static CLIENTS: std::sync::OnceLock<std::sync::Mutex<HashMap<(Duration, Duration), Client>>> =
    std::sync::OnceLock::new();

fn shared_client(connect: Duration, answer: Duration) -> Result<Client, RegistryError> {
    let clients = CLIENTS.get_or_init(|| std::sync::Mutex::new(HashMap::new()));
    let mut clients = clients.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = clients.get(&(connect, answer)) {
        return Ok(c.clone());
    }
    // Another library may have installed a provider already; either way one is set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::builder()
        .connect_timeout(connect)
        .timeout(answer)
        // Redirects to another host drop the Authorization header (reqwest does that).
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("vouch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| RegistryError::Client(e.to_string()))?;
    clients.insert((connect, answer), client.clone());
    Ok(client)
}

/// Most (registry, repository, access) grants, and most (registry, repository) pairs noted
/// as asked with credentials, a [`Registries`] keeps: repository names come from whoever
/// names an image, and a long-lived client (the admission webhook keeps one per registry)
/// must not grow with every name asked. Past it the table is emptied; a repository asked
/// again is authorised again.
pub const MAX_GRANTS: usize = 4096;

/// The authorisations a [`Registries`] was granted, shared by its clones and locked only to
/// look one up or note one (never across a request).
#[derive(Default)]
struct Grants {
    /// `Authorization` values by (registry, repository, access).
    granted: HashMap<(String, String, Access), Zeroizing<String>>,
    /// (registry, repository) pairs whose authorisation was obtained with credentials.
    with_credentials: HashSet<(String, String)>,
}

impl Grants {
    /// The grant for `access` to `repository` of `registry`, else the one for the other
    /// access (see [`Registries::granted_for`]).
    fn get(&self, registry: &str, repository: &str, access: Access) -> Option<Zeroizing<String>> {
        let key = |a| (registry.to_owned(), repository.to_owned(), a);
        let other = match access {
            Access::Pull => Access::Push,
            Access::Push => Access::Pull,
        };
        self.granted
            .get(&key(access))
            .or_else(|| self.granted.get(&key(other)))
            .cloned()
    }

    /// Keeps `value` as the grant for `access` to `repository` of `registry`; the table is
    /// emptied first when it holds [`MAX_GRANTS`] others.
    fn insert(
        &mut self,
        registry: &str,
        repository: &str,
        access: Access,
        value: Zeroizing<String>,
    ) {
        let key = (registry.to_owned(), repository.to_owned(), access);
        if self.granted.len() >= MAX_GRANTS && !self.granted.contains_key(&key) {
            self.granted.clear();
        }
        self.granted.insert(key, value);
    }

    /// Notes that the authorisation for `repository` of `registry` was asked with
    /// credentials; the set is emptied first when it holds [`MAX_GRANTS`] others.
    fn note_credentials(&mut self, registry: &str, repository: &str) {
        let key = (registry.to_owned(), repository.to_owned());
        if self.with_credentials.len() >= MAX_GRANTS && !self.with_credentials.contains(&key) {
            self.with_credentials.clear();
        }
        self.with_credentials.insert(key);
    }

    fn used_credentials(&self, registry: &str, repository: &str) -> bool {
        self.with_credentials
            .contains(&(registry.to_owned(), repository.to_owned()))
    }
}

/// The docker configuration file read (its path and bytes), `None` when there is none.
type DockerConfigFile = Option<(PathBuf, Vec<u8>)>;

/// Talks to the registries one caller needs, keeping the authorisation each repository
/// was granted.
///
/// Reads, and every request underneath, take `&self`: the grants sit behind their own
/// small lock, taken to look a grant up and again to keep a new one, never while a request
/// is in flight, so requests to one registry run concurrently. A clone is a cheap handle
/// sharing the connections, the grants and the docker configuration read.
#[derive(Clone)]
pub struct Registries {
    client: Client,
    insecure: Vec<String>,
    login: Login,
    /// The docker configuration file, read on first need.
    docker_config: Arc<OnceLock<DockerConfigFile>>,
    grants: Arc<Mutex<Grants>>,
    /// True when the servers asked are notary servers (for the hints).
    notary: bool,
    /// Where else the docker config may hold the credentials for a notary server: the
    /// registry of the collection's images, whose login `docker trust` sends to notary.
    fallback_registry: Option<String>,
    /// Longest one answer may take, as a whole (headers, then body).
    answer_timeout: Duration,
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
    /// A client with `options`.
    ///
    /// ```
    /// use vouch_verifier::registry::{Login, Registries, RegistryOptions};
    /// let options = RegistryOptions::new(Vec::new(), Login::Anonymous).unwrap();
    /// let r = Registries::new(options).unwrap();
    /// assert_eq!(r.base_url("docker.io"), "https://registry-1.docker.io");
    /// assert_eq!(r.base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
    /// ```
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        let client = shared_client(options.connect_timeout, options.answer_timeout)?;
        Ok(Registries {
            client,
            insecure: options.insecure,
            login: options.login,
            docker_config: Arc::new(OnceLock::new()),
            grants: Arc::new(Mutex::new(Grants::default())),
            notary: false,
            fallback_registry: None,
            answer_timeout: options.answer_timeout,
            notary_in_clear: false,
        })
    }

    /// A client for notary servers ([`Registries::notary_token`]): its hints speak of
    /// `NOTARY_AUTH` and `docker login`.
    pub fn for_notary(options: RegistryOptions) -> Result<Self, RegistryError> {
        let mut r = Self::new(options)?;
        r.notary = true;
        Ok(r)
    }

    /// True when `host_port` is reached over plain HTTP.
    fn plain_http(&self, host_port: &str) -> bool {
        is_loopback_host(host_port) || self.named_insecure(host_port)
    }

    /// True when `host_port` is named insecure.
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

    /// The grants, locked (a panic elsewhere while holding the lock leaves them usable: each
    /// change is one insert).
    fn grants(&self) -> MutexGuard<'_, Grants> {
        self.grants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The docker configuration file, read on first need: `None` when there is none.
    fn docker_config(&self) -> Result<Option<&(PathBuf, Vec<u8>)>, RegistryError> {
        if self.docker_config.get().is_none() {
            let (path, explicit) = match &self.login {
                Login::DockerConfig(Some(p)) => (Some(p.clone()), true),
                _ => (docker_config::default_path(), false),
            };
            let loaded = match path {
                Some(path) => match std::fs::read(&path) {
                    Ok(bytes) => Some((path, bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => None,
                    Err(e) => {
                        return Err(RegistryError::DockerConfig {
                            path,
                            reason: e.to_string(),
                        })
                    }
                },
                None => None,
            };
            // Another thread may have read it first; the same file either way.
            let _ = self.docker_config.set(loaded);
        }
        Ok(self.docker_config.get().and_then(Option::as_ref))
    }

    /// The credentials to offer `registry`, if any.
    fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        if self.notary_in_clear {
            return Ok(None);
        }
        let fallback = self
            .fallback_registry
            .clone()
            .filter(|other| is_registrys_notary(registry, other));
        match &self.login {
            Login::Given {
                registry: bound,
                credentials,
            } if same_registry(bound, registry) => return Ok(Some(credentials.clone())),
            // Another registry than the one they are for: the docker config's login.
            Login::Given { .. } => {}
            Login::NotaryAuth(c) => return Ok(Some(c.clone())),
            Login::Anonymous => return Ok(None),
            Login::PerRegistry(table) => {
                let found = credentials_in(table, registry)
                    .or_else(|| fallback.as_deref().and_then(|o| credentials_in(table, o)));
                return Ok(found.cloned());
            }
            Login::DockerConfig(_) => {}
        }
        let Some((path, bytes)) = self.docker_config()? else {
            return Ok(None);
        };
        let from_config = |name: &str| {
            credentials_from_docker_config(bytes, name).map_err(|reason| {
                RegistryError::DockerConfig {
                    path: path.clone(),
                    reason: reason.to_string(),
                }
            })
        };
        match (from_config(registry)?, fallback) {
            (Some(c), _) => Ok(Some(c)),
            (None, Some(other)) => from_config(&other),
            (None, None) => Ok(None),
        }
    }

    /// What to do when `registry` refused the credentials (or their absence).
    pub fn login_hint(&self, registry: &str, had_credentials: bool) -> String {
        if self.notary_in_clear {
            return format!(
                "{registry} is reached over plain HTTP, so no credentials are sent to it or its token server (anyone on the network could answer for it): use its https:// URL"
            );
        }
        match (&self.login, had_credentials) {
            (Login::Given { registry: bound, .. }, _) if same_registry(bound, registry) => {
                format!("check --registry-username and the password given on stdin (for {bound})")
            }
            (Login::Given { registry: bound, .. }, had) => {
                let config = if had {
                    format!("the credentials for {registry} in the docker config are refused: `docker login {registry}` again")
                } else {
                    format!("log in with `docker login {registry}` (vouch reads auths in ~/.docker/config.json, not credential helpers)")
                };
                format!(
                    "{config}; --registry-username is for {bound} only (name another registry with --registry-host)"
                )
            }
            (Login::NotaryAuth(_), _) => format!(
                "the credentials in NOTARY_AUTH are refused for {registry}: check it (base64 of USER:PASSWORD)"
            ),
            (Login::DockerConfig(None), true) if self.notary => format!(
                "the credentials for {registry} in the docker config are refused: `docker login {registry}` again, or set NOTARY_AUTH (base64 of USER:PASSWORD)"
            ),
            (Login::DockerConfig(None), false) if self.notary => {
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
            (Login::DockerConfig(None), true) => format!(
                "the credentials for {registry} in the docker config are refused: `docker login {registry}` again, or pass --registry-username and --registry-password-stdin"
            ),
            (Login::DockerConfig(None), false) => format!(
                "log in with `docker login {registry}` (vouch reads auths in ~/.docker/config.json, not credential helpers), or pass --registry-username and --registry-password-stdin"
            ),
            (Login::DockerConfig(Some(path)), true) => format!(
                "check the credentials configured for {registry} (in {})",
                path.display()
            ),
            (Login::DockerConfig(Some(path)), false) => format!(
                "this needs credentials: check the credentials configured for {registry} ({} has none for it)",
                path.display()
            ),
            (Login::PerRegistry(_), true) => {
                format!("check the credentials configured for {registry}")
            }
            (Login::PerRegistry(_), false) => format!(
                "this needs credentials: check the credentials configured for {registry} (none are configured for it)"
            ),
            (Login::Anonymous, _) => format!(
                "this needs credentials, and none are configured for {registry}"
            ),
        }
    }

    /// What to check when `registry` cannot be reached.
    fn unreachable_hint(&self) -> String {
        if self.login.is_command_line() {
            "check the image name; a registry served over plain HTTP must be on loopback or named with --insecure-registry".to_owned()
        } else {
            "check the registry's name; a registry served over plain HTTP must be on loopback or configured as insecure".to_owned()
        }
    }

    /// Answers a `401` challenge of `registry` for `access` to `repository`: the
    /// `Authorization` value to retry with. A Bearer token is asked for `scope` when given,
    /// else for the scope [`choose_scope`] picks.
    fn authorize(
        &self,
        registry: &str,
        repository: &str,
        access: Access,
        challenge_header: Option<&str>,
        scope: Option<&str>,
        deadline: Option<Instant>,
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
            self.grants().note_credentials(registry, repository);
        }
        match parsed.scheme.as_str() {
            "basic" => match creds {
                Some(c) => Ok(c.basic_header()),
                None => Err(RegistryError::Unauthorized {
                    registry: registry.to_owned(),
                    repository: repository.to_owned(),
                    access,
                    detail: String::new(),
                    hint: self.login_hint(registry, false),
                }),
            },
            "bearer" => {
                let scope = scope.map(str::to_owned).unwrap_or_else(|| {
                    choose_scope(
                        parsed.params.get("scope").map(String::as_str),
                        repository,
                        access,
                    )
                });
                // A plain-HTTP realm: a host named insecure, or one on loopback when the
                // server asking is on loopback too (the rule is `token_request`'s).
                let request = token_request(&parsed, registry, &scope, |realm_host| {
                    self.named_insecure(realm_host)
                })
                .map_err(|e| match e {
                    ChallengeError::RealmNotHttps if self.login.is_command_line() => challenge(
                        "the token realm is not HTTPS (allow a plain-HTTP token server with --insecure-registry HOST)",
                    ),
                    ChallengeError::RealmNotHttps => challenge(
                        "the token realm is not HTTPS (a plain-HTTP token server must be configured as insecure)",
                    ),
                    e => challenge(&e.to_string()),
                })?;
                let deadline = self.answer_by(deadline);
                let token =
                    fetch_token(&self.client, &request, creds.as_ref(), deadline).map_err(|e| {
                        self.token_refusal(registry, repository, access, creds.is_some(), e)
                    })?;
                Ok(Zeroizing::new(format!("Bearer {}", token.as_str())))
            }
            other => Err(challenge(&format!("unsupported scheme {other:?}"))),
        }
    }

    /// Words a token server's refusal, for `access` to `repository` of `registry`.
    fn token_refusal(
        &self,
        registry: &str,
        repository: &str,
        access: Access,
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
                access,
                detail: format!(": the token server said {status}{detail}"),
                hint: self.login_hint(registry, had_credentials),
            },
            TokenError::TimedOut { realm } => token_error(
                realm,
                format!(
                    "no answer within {} s{}",
                    self.answer_timeout.as_secs(),
                    if self.notary && self.login.is_command_line() {
                        " (--timeout)"
                    } else {
                        ""
                    }
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

    /// The authorisation granted for `access` to `repository` of `registry`, if any. A push
    /// grant serves reads; a pull grant is tried for a write (a `Basic` one serves it, a
    /// pull-only token is answered `401` and asked again for `pull,push`).
    fn granted_for(
        &self,
        registry: &str,
        repository: &str,
        access: Access,
    ) -> Option<Zeroizing<String>> {
        self.grants().get(registry, repository, access)
    }

    /// When an answer must have arrived: the answer timeout from now, or the caller's
    /// `deadline` when that is sooner.
    fn answer_by(&self, deadline: Option<Instant>) -> Instant {
        let own = Instant::now() + self.answer_timeout;
        deadline.map_or(own, |d| d.min(own))
    }

    /// Sends `call`, answering one `401` challenge; each request (and a token fetch) must be
    /// answered by [`Registries::answer_by`] the call's deadline, and past that deadline
    /// nothing more is sent ([`RegistryError::TimedOut`]). No lock is held while waiting.
    fn send(&self, call: &Call<'_>) -> Result<Response, RegistryError> {
        let deadline = call.deadline;
        let mut auth = if call.authorize {
            self.granted_for(call.registry, call.repository, call.access)
        } else {
            None
        };
        let mut answered = false;
        loop {
            let left = self
                .answer_by(deadline)
                .saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RegistryError::TimedOut {
                    registry: call.registry.to_owned(),
                    what: call.url.to_owned(),
                });
            }
            let mut req = self
                .client
                .request(call.method.clone(), call.url)
                .timeout(left);
            if let Some(accept) = call.accept {
                req = req.header(header::ACCEPT, accept);
            }
            if let Some((content_type, body)) = call.body {
                req = req
                    .header(header::CONTENT_TYPE, content_type)
                    .body(body.to_vec());
            } else if call.method == Method::POST || call.method == Method::PUT {
                req = req.header(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            }
            if let Some(a) = &auth {
                req = req.header(header::AUTHORIZATION, sensitive(call.registry, a)?);
            }
            let resp = req.send().map_err(|e| {
                if e.is_timeout() {
                    RegistryError::TimedOut {
                        registry: call.registry.to_owned(),
                        what: call.url.to_owned(),
                    }
                } else {
                    RegistryError::Unreachable {
                        registry: call.registry.to_owned(),
                        url: call.url.to_owned(),
                        message: chain(&e),
                        hint: self.unreachable_hint(),
                    }
                }
            })?;
            if resp.status() != StatusCode::UNAUTHORIZED || answered || !call.authorize {
                return Ok(resp);
            }
            let challenge = header_str(resp.headers(), header::WWW_AUTHENTICATE).map(str::to_owned);
            let granted = self.authorize(
                call.registry,
                call.repository,
                call.access,
                challenge.as_deref(),
                None,
                deadline,
            )?;
            self.grants()
                .insert(call.registry, call.repository, call.access, granted.clone());
            auth = Some(granted);
            answered = true;
        }
    }

    /// The error for a refusal `resp` of `what` (401 and 403 say what to do about access).
    fn refusal(
        &self,
        registry: &str,
        repository: &str,
        access: Access,
        what: &str,
        resp: Response,
    ) -> RegistryError {
        let status = resp.status();
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let had = self.grants().used_credentials(registry, repository);
                RegistryError::Unauthorized {
                    registry: registry.to_owned(),
                    repository: repository.to_owned(),
                    access,
                    detail: if status == StatusCode::FORBIDDEN {
                        format!(": 403 Forbidden{}", error_detail(resp))
                    } else {
                        error_detail(resp)
                    },
                    hint: match &self.login {
                        Login::Given {
                            registry: bound, ..
                        } if same_registry(bound, registry) => self.login_hint(registry, true),
                        Login::NotaryAuth(_) => self.login_hint(registry, true),
                        _ => self.login_hint(registry, had),
                    },
                }
            }
            _ => RegistryError::Refused {
                registry: registry.to_owned(),
                what: what.to_owned(),
                status,
                detail: error_detail(resp),
            },
        }
    }

    fn manifest_unknown(registry: &str, repository: &str, reference: &str) -> RegistryError {
        RegistryError::ManifestUnknown {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            reference: reference.to_owned(),
        }
    }

    /// What the registry of `image` serves for `reference` (a tag or a digest) of the
    /// image's repository: HEAD of the manifest, else GET. Schema 1 manifests are refused.
    pub fn manifest(
        &mut self,
        image: &ImageRef,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        let registry = image.registry().to_owned();
        let repository = image.repository().to_owned();
        check_names(&repository, Some(reference))?;
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
        let what = format!("manifest {reference} of {repository}");

        let head = self.send(&Call {
            method: Method::HEAD,
            url: &url,
            registry: &registry,
            repository: &repository,
            access: Access::Pull,
            accept: Some(ACCEPT_MANIFESTS),
            body: None,
            authorize: true,
            deadline: None,
        })?;
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
                            return Err(RegistryError::DigestMismatch {
                                registry: registry.clone(),
                                reference: reference.to_owned(),
                                claimed: a.to_string(),
                                actual: digest.to_string(),
                            });
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
            StatusCode::NOT_FOUND => {
                return Err(Self::manifest_unknown(&registry, &repository, reference))
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(self.refusal(&registry, &repository, Access::Pull, &what, head));
            }
            // 405 and other refusals of HEAD: ask with GET.
            _ => {}
        }

        let fetched = self.get_manifest(
            &registry,
            &repository,
            reference,
            ACCEPT_MANIFESTS,
            MAX_MANIFEST,
        )?;
        if let Some(mt) = &fetched.media_type {
            if is_schema1(mt) {
                return Err(unsupported(mt));
            }
        }
        Ok(Manifest {
            length: fetched.bytes.len() as u64,
            digest: fetched.digest,
            media_type: fetched.media_type,
        })
    }

    /// What the trust tag ([`vouch_tuf::oci::TRUST_TAG`]) of `repository` on `registry`
    /// holds, whatever it is (a writer decides with [`vouch_tuf::oci::decide_push`]), read up
    /// to [`vouch_tuf::oci::MAX_MANIFEST_BYTES`]; `None` when the tag is absent.
    pub fn trust_tag(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        match self.get_manifest(
            registry,
            repository,
            vouch_tuf::oci::TRUST_TAG,
            vouch_tuf::oci::ACCEPT_MANIFESTS,
            vouch_tuf::oci::MAX_MANIFEST_BYTES,
        ) {
            Ok(m) => Ok(Some(m)),
            Err(RegistryError::ManifestUnknown { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The manifest `reference` (a tag or a digest) of `repository` on `registry`, asked
    /// with `accept` (e.g. [`ACCEPT_MANIFESTS`]), at most `max_bytes` of it read. Refused
    /// when the bytes do not hash to the digest asked for, or disagree with the registry's
    /// `Docker-Content-Digest`. Each answer may take the answer timeout;
    /// [`Registries::get_manifest_by`] bounds the whole read by a deadline too.
    pub fn get_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        accept: &str,
        max_bytes: u64,
    ) -> Result<FetchedManifest, RegistryError> {
        self.get_manifest_by(registry, repository, reference, accept, max_bytes, None)
    }

    /// [`Registries::get_manifest`], all of it (the request, a token fetch, the body) done
    /// by `deadline` when one is given (each answer still within the answer timeout), else
    /// [`RegistryError::TimedOut`].
    pub fn get_manifest_by(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        accept: &str,
        max_bytes: u64,
        deadline: Option<Instant>,
    ) -> Result<FetchedManifest, RegistryError> {
        check_names(repository, Some(reference))?;
        let url = format!(
            "{}/v2/{repository}/manifests/{reference}",
            self.base_url(registry)
        );
        let what = format!("manifest {reference} of {repository}");
        let resp = self.send(&Call {
            method: Method::GET,
            url: &url,
            registry,
            repository,
            access: Access::Pull,
            accept: Some(accept),
            body: None,
            authorize: true,
            deadline,
        })?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(Self::manifest_unknown(registry, repository, reference));
        }
        if !resp.status().is_success() {
            return Err(self.refusal(registry, repository, Access::Pull, &what, resp));
        }
        let claimed = content_digest_header(resp.headers());
        let content_type = media_type_of(header_str(resp.headers(), header::CONTENT_TYPE));
        let announced = resp.content_length();
        let bytes = read_body(
            registry,
            &what,
            resp,
            announced,
            max_bytes,
            self.answer_by(deadline),
        )?;
        let digest = Digest::sha256_of(&bytes);
        let asked = Digest::parse(reference).ok();
        for c in claimed.iter().chain(asked.iter()) {
            if !c.matches(&bytes) {
                return Err(RegistryError::DigestMismatch {
                    registry: registry.to_owned(),
                    reference: reference.to_owned(),
                    claimed: c.to_string(),
                    actual: Digest::of(c.algorithm(), &bytes).to_string(),
                });
            }
        }
        let media_type = content_type.or_else(|| {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()?
                .get("mediaType")?
                .as_str()
                .map(str::to_owned)
        });
        Ok(FetchedManifest {
            bytes,
            digest,
            media_type,
        })
    }

    /// The blob `digest` of `repository` on `registry`, at most `max_bytes` of it read,
    /// following redirects to storage. Refused unless the bytes hash to `digest`. Each
    /// answer may take the answer timeout; [`Registries::get_blob_by`] bounds the whole read
    /// by a deadline too.
    pub fn get_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        self.get_blob_by(registry, repository, digest, max_bytes, None)
    }

    /// [`Registries::get_blob`], all of it done by `deadline` when one is given, else
    /// [`RegistryError::TimedOut`].
    pub fn get_blob_by(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        max_bytes: u64,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, RegistryError> {
        check_names(repository, None)?;
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base_url(registry));
        let what = format!("blob {digest} of {repository}");
        let resp = self.send(&Call {
            method: Method::GET,
            url: &url,
            registry,
            repository,
            access: Access::Pull,
            accept: None,
            body: None,
            authorize: true,
            deadline,
        })?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::BlobUnknown {
                registry: registry.to_owned(),
                repository: repository.to_owned(),
                digest: digest.clone(),
            });
        }
        if !resp.status().is_success() {
            return Err(self.refusal(registry, repository, Access::Pull, &what, resp));
        }
        let announced = resp.content_length();
        let bytes = read_body(
            registry,
            &what,
            resp,
            announced,
            max_bytes,
            self.answer_by(deadline),
        )?;
        if !digest.matches(&bytes) {
            return Err(RegistryError::BlobMismatch {
                registry: registry.to_owned(),
                repository: repository.to_owned(),
                digest: digest.clone(),
                actual: Digest::of(digest.algorithm(), &bytes),
            });
        }
        Ok(bytes)
    }

    /// True when `repository` on `registry` has the blob `digest` (`HEAD`).
    pub fn blob_exists(
        &mut self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        self.blob_exists_for(registry, repository, digest, Access::Pull)
    }

    fn blob_exists_for(
        &mut self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        access: Access,
    ) -> Result<bool, RegistryError> {
        check_names(repository, None)?;
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base_url(registry));
        let resp = self.send(&Call {
            method: Method::HEAD,
            url: &url,
            registry,
            repository,
            access,
            accept: None,
            body: None,
            authorize: true,
            deadline: None,
        })?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.refusal(
                registry,
                repository,
                access,
                &format!("blob {digest} of {repository}"),
                resp,
            )),
        }
    }

    /// Pushes `bytes` as the blob `digest` of `repository` on `registry`, unless it is
    /// there already: a monolithic upload (`POST /v2/<name>/blobs/uploads/`, then `PUT` of
    /// the bytes to its `Location` with `digest=`). Refused before anything is sent when
    /// the bytes do not hash to `digest`.
    pub fn push_blob(
        &mut self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<(), RegistryError> {
        check_names(repository, None)?;
        if !digest.matches(bytes) {
            return Err(RegistryError::NotTheDigest {
                repository: repository.to_owned(),
                digest: digest.clone(),
                actual: Digest::of(digest.algorithm(), bytes),
            });
        }
        if self.blob_exists_for(registry, repository, digest, Access::Push)? {
            return Ok(());
        }
        let what = format!("push of blob {digest} to {repository}");
        let (session, same) = self.start_upload(registry, repository, &what)?;
        let url = upload_url(&session, digest);
        let resp = self.send(&Call {
            method: Method::PUT,
            url: url.as_str(),
            registry,
            repository,
            access: Access::Push,
            accept: None,
            body: Some((OCTET_STREAM, bytes)),
            authorize: same,
            deadline: None,
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.refusal(registry, repository, Access::Push, &what, resp));
        }
        Ok(())
    }

    /// Starts an upload to `repository` on `registry` (`POST /v2/<name>/blobs/uploads/`,
    /// answered `202`): its session URL, and whether that URL is on the registry's own origin
    /// (only then is the authorisation sent to it). `what` names the operation in errors.
    fn start_upload(
        &self,
        registry: &str,
        repository: &str,
        what: &str,
    ) -> Result<(Url, bool), RegistryError> {
        let start = format!("{}/v2/{repository}/blobs/uploads/", self.base_url(registry));
        let resp = self.send(&Call {
            method: Method::POST,
            url: &start,
            registry,
            repository,
            access: Access::Push,
            accept: None,
            body: None,
            authorize: true,
            deadline: None,
        })?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.refusal(registry, repository, Access::Push, what, resp));
        }
        self.upload_location(registry, &start, &resp, what)
    }

    /// Copies the blob `digest` of `from_repository` on `from_registry` into `repository`
    /// on `registry`, unless it is there already (then `Ok(false)`), streaming it: the
    /// source's answer is the body of the upload's `PUT ?digest=`, never held whole. At most
    /// `size` bytes (the size the manifest gives) are read and announced, and the
    /// destination checks the digest before it stores anything, so a source sending other
    /// bytes, more or fewer, makes the copy fail. Each of the two requests may take
    /// [`RegistryOptions`]' answer timeout plus [`COPY_SECONDS_PER_MIB`] a MiB.
    ///
    /// Mounting (same registry) is [`Registries::mount_blob`]; this is for the other case.
    pub fn copy_blob(
        &mut self,
        from_registry: &str,
        from_repository: &str,
        digest: &Digest,
        size: u64,
        registry: &str,
        repository: &str,
    ) -> Result<bool, RegistryError> {
        check_names(from_repository, None)?;
        check_names(repository, None)?;
        if self.blob_exists_for(registry, repository, digest, Access::Push)? {
            return Ok(false);
        }
        // Asking whether the source has it obtains the grant to read it.
        if !self.blob_exists_for(from_registry, from_repository, digest, Access::Pull)? {
            return Err(RegistryError::BlobUnknown {
                registry: from_registry.to_owned(),
                repository: from_repository.to_owned(),
                digest: digest.clone(),
            });
        }
        let what = format!("copy of blob {digest} from {from_repository} to {repository}");
        let mibs = u32::try_from(size.div_ceil(1 << 20)).unwrap_or(u32::MAX);
        let timeout = self
            .answer_timeout
            .saturating_add(Duration::from_secs(COPY_SECONDS_PER_MIB).saturating_mul(mibs));
        let (session, same) = self.start_upload(registry, repository, &what)?;
        let source_url = format!(
            "{}/v2/{from_repository}/blobs/{digest}",
            self.base_url(from_registry)
        );
        let unreachable = |registry: &str, url: &str, e: reqwest::Error, hint: String| {
            RegistryError::Unreachable {
                registry: registry.to_owned(),
                url: url.to_owned(),
                message: chain(&e),
                hint,
            }
        };
        let mut get = self.client.get(&source_url).timeout(timeout);
        if let Some(a) = self.granted_for(from_registry, from_repository, Access::Pull) {
            get = get.header(header::AUTHORIZATION, sensitive(from_registry, &a)?);
        }
        let source = get
            .send()
            .map_err(|e| unreachable(from_registry, &source_url, e, self.unreachable_hint()))?;
        if !source.status().is_success() {
            return Err(self.refusal(
                from_registry,
                from_repository,
                Access::Pull,
                &format!("blob {digest} of {from_repository}"),
                source,
            ));
        }
        if source.content_length().is_some_and(|n| n > size) {
            return Err(RegistryError::TooLarge {
                registry: from_registry.to_owned(),
                what: format!("blob {digest} of {from_repository}"),
                limit: size,
            });
        }
        let url = upload_url(&session, digest);
        let body = reqwest::blocking::Body::sized(source.take(size), size);
        let mut put = self
            .client
            .put(url.as_str())
            .timeout(timeout)
            .header(header::CONTENT_TYPE, OCTET_STREAM)
            .body(body);
        if same {
            if let Some(a) = self.granted_for(registry, repository, Access::Push) {
                put = put.header(header::AUTHORIZATION, sensitive(registry, &a)?);
            }
        }
        let resp = put
            .send()
            .map_err(|e| unreachable(registry, url.as_str(), e, self.unreachable_hint()))?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.refusal(registry, repository, Access::Push, &what, resp));
        }
        Ok(true)
    }

    /// The URL of the upload session `resp` started (at `start`), and whether it is on the
    /// registry's own origin (else no `Authorization` goes with it, and it must be HTTPS
    /// unless its host may be reached over plain HTTP).
    fn upload_location(
        &self,
        registry: &str,
        start: &str,
        resp: &Response,
        what: &str,
    ) -> Result<(Url, bool), RegistryError> {
        let location = header_str(resp.headers(), header::LOCATION).unwrap_or("");
        let refuse = |reason| RegistryError::UploadLocation {
            registry: registry.to_owned(),
            what: what.to_owned(),
            location: location.to_owned(),
            reason,
        };
        if location.is_empty() {
            return Err(refuse("there is none"));
        }
        let start = Url::parse(start).map_err(|_| refuse("the registry's URL does not parse"))?;
        let url = session_url(&start, location).map_err(refuse)?;
        let same = same_origin(&start, &url);
        if !same && url.scheme() != "https" {
            let host = host_port(&url).unwrap_or_default();
            if !self.plain_http(&host) {
                return Err(refuse("it is plain HTTP on another host"));
            }
        }
        Ok((url, same))
    }

    /// Mounts the blob `digest` of `from_repository` into `repository` on `registry`
    /// (`POST …/blobs/uploads/?mount=…&from=…`): true when mounted (`201`), false when the
    /// registry started an upload instead (`202`; the upload is cancelled and the caller
    /// pushes the blob).
    pub fn mount_blob(
        &mut self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        from_repository: &str,
    ) -> Result<bool, RegistryError> {
        check_names(repository, None)?;
        check_names(from_repository, None)?;
        let what = format!("mount of blob {digest} from {from_repository} into {repository}");
        let start = format!("{}/v2/{repository}/blobs/uploads/", self.base_url(registry));
        let mut url = Url::parse(&start).map_err(|_| RegistryError::InvalidName {
            what: "repository name",
            name: repository.to_owned(),
        })?;
        url.query_pairs_mut()
            .append_pair("mount", digest.as_str())
            .append_pair("from", from_repository);
        let resp = self.send(&Call {
            method: Method::POST,
            url: url.as_str(),
            registry,
            repository,
            access: Access::Push,
            accept: None,
            body: None,
            authorize: true,
            deadline: None,
        })?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // Not mounted: cancel the upload the registry started (best effort; an
                // abandoned upload is only garbage for the registry to collect).
                if let Ok((cancel, same)) = self.upload_location(registry, &start, &resp, &what) {
                    let _ = self.send(&Call {
                        method: Method::DELETE,
                        url: cancel.as_str(),
                        registry,
                        repository,
                        access: Access::Push,
                        accept: None,
                        body: None,
                        authorize: same,
                        deadline: None,
                    });
                }
                Ok(false)
            }
            _ => Err(self.refusal(registry, repository, Access::Push, &what, resp)),
        }
    }

    /// Pushes `bytes` as the manifest `reference` (a tag, or its digest) of `repository` on
    /// `registry`, with `media_type` as its `Content-Type`; the sha256 of the bytes. Refused
    /// when a digest reference is not the bytes' (nothing is sent), or when the registry
    /// answers with another `Docker-Content-Digest`.
    pub fn put_manifest(
        &mut self,
        registry: &str,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        check_names(repository, Some(reference))?;
        let digest = Digest::sha256_of(bytes);
        if let Ok(asked) = Digest::parse(reference) {
            if !asked.matches(bytes) {
                return Err(RegistryError::NotTheDigest {
                    repository: repository.to_owned(),
                    actual: Digest::of(asked.algorithm(), bytes),
                    digest: asked,
                });
            }
        }
        let url = format!(
            "{}/v2/{repository}/manifests/{reference}",
            self.base_url(registry)
        );
        let what = format!("push of manifest {reference} to {repository}");
        let resp = self.send(&Call {
            method: Method::PUT,
            url: &url,
            registry,
            repository,
            access: Access::Push,
            accept: None,
            body: Some((media_type, bytes)),
            authorize: true,
            deadline: None,
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.refusal(registry, repository, Access::Push, &what, resp));
        }
        let answered = header_str(
            resp.headers(),
            header::HeaderName::from_static("docker-content-digest"),
        );
        if let Some(answered) = answered {
            let agrees = Digest::parse(answered).is_ok_and(|d| d.matches(bytes));
            if !agrees {
                return Err(RegistryError::StoredDigestMismatch {
                    registry: registry.to_owned(),
                    what: format!("manifest {reference} of {repository}"),
                    pushed: digest,
                    answered: answered.chars().take(200).collect(),
                });
            }
        }
        Ok(digest)
    }
}

impl Registries {
    /// The bearer token to read `gun` from the notary server at `server_url` (whose
    /// `host[:port]` is `host`), the way the notary client gets one: `GET /v2/`, and when
    /// that answers `401` with a `Bearer` challenge, a token for `repository:<gun>:pull`
    /// from its realm (with credentials when there are some: from the [`Login`]; for a
    /// docker config or a per-registry table, the entry for `host`, else the one for
    /// `gun_registry`, the registry of the collection's images, as `docker trust` uses,
    /// when `host` is that registry's own notary server). `None` when the server asks for
    /// none.
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
        let deadline = Instant::now() + self.answer_timeout;
        let challenge = match registry_auth::ping(&self.client, server_url, deadline) {
            Ok(Ping::Open) => return Ok(None),
            Ok(Ping::Challenged(c)) => Some(c),
            Err(e) => {
                return Err(RegistryError::Unreachable {
                    registry: host.to_owned(),
                    url,
                    message: chain(&e),
                    hint: self.unreachable_hint(),
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
        let granted = self.authorize(
            host,
            gun,
            Access::Pull,
            challenge.as_deref(),
            Some(&scope),
            None,
        )?;
        let token = granted.strip_prefix("Bearer ").unwrap_or(granted.as_str());
        Ok(Some(Zeroizing::new(token.to_owned())))
    }

    /// Notes how the notary server at `server_url` is reached: over plain HTTP to a host
    /// off loopback, no credentials are sent for it.
    fn note_notary_server(&mut self, server_url: &str) {
        self.notary_in_clear = !registry_auth::credentials_may_go_to(server_url);
    }

    /// True when the authorisation for `repository` of `registry` was asked with credentials.
    pub fn used_credentials(&self, registry: &str, repository: &str) -> bool {
        self.grants().used_credentials(registry, repository)
    }
}

/// A header value marked sensitive (kept out of logs and debug output).
fn sensitive(registry: &str, value: &str) -> Result<HeaderValue, RegistryError> {
    registry_auth::sensitive(value).ok_or_else(|| RegistryError::InvalidCredentials {
        registry: registry.to_owned(),
    })
}
