//! Server configuration: defaults, a TOML file, `VOUCH_*` environment variables and command
//! line flags, in increasing order of precedence.
//!
//! `docs/operations.md` has the reference of every setting.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything the server can be configured with.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on (default `127.0.0.1:4443`).
    pub listen: SocketAddr,
    /// Directory for the SQLite database, the key-encryption key and the admin token
    /// (default `./vouch-data`).
    pub data_dir: PathBuf,
    /// Request and metadata size limits.
    pub limits: Limits,
    /// Lifetimes of server-signed metadata.
    pub lifetimes: LifetimeConfig,
    /// Authentication and authorisation.
    pub auth: AuthConfig,
    /// Log filter, in `tracing` env-filter syntax (default `info`).
    pub log: String,
    /// Log line format: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// Timeouts for requests and slow clients.
    pub timeouts: Timeouts,
    /// Concurrency caps beyond which requests get 503 with `Retry-After`.
    pub capacity: Capacity,
    /// TLS: serve HTTPS when a certificate and key are configured.
    pub tls: Option<TlsConfig>,
    /// The in-memory cache of current metadata.
    pub cache: CacheConfig,
    /// Who may read `/metrics`.
    pub metrics: MetricsConfig,
    /// Where metadata, the changefeed and online keys are stored.
    pub storage: StorageConfig,
    /// The key-encryption key of the online keys.
    pub keys: KeysConfig,
    /// Staged proposals (threshold signing by several people).
    pub proposals: ProposalsConfig,
    /// Trust-change events: the Server-Sent Events streams of the changefeed.
    pub events: EventsConfig,
    /// Signed webhooks: trust changes delivered to subscribers' URLs.
    pub webhooks: WebhooksConfig,
    /// Mirroring: repositories' trust pushed into their registries as trust artifacts.
    pub mirror: MirrorConfig,
}

/// Mirroring (`[mirror]`): each matching repository's trust data is pushed into its own
/// registry and repository as a trust artifact under the tag `_vouch.trust`, after every
/// change; online roles of mirrored repositories are re-signed when due even if nobody
/// reads them from the server. `crate::mirror` has the rules.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MirrorConfig {
    /// GUN patterns (the glob of webhook subscriptions: `*` crosses `/`) of the
    /// repositories mirrored; each names its registry literally
    /// (`registry.example.com/**`). Empty (the default): mirroring is off.
    pub repositories: Vec<String>,
    /// Registries (`HOST` or `HOST:PORT`) reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Seconds between checks of the mirrored repositories for online roles due for
    /// re-signing (default 60).
    pub refresh_interval_seconds: u64,
    /// Seconds one registry request may take, its answer included (default 20).
    pub timeout_seconds: u64,
    /// The first retry's delay in milliseconds after a registry failed; each later one
    /// doubles, with jitter (default 1000).
    pub backoff_initial_ms: u64,
    /// The longest delay between retries, in seconds (default 300).
    pub backoff_max_seconds: u64,
    /// How long a replica's claim to mirror into a registry lasts without renewal (default
    /// 30 s): another replica takes over that long after one dies.
    pub lease_seconds: u64,
    /// Credentials per registry (`[[mirror.registry]]`).
    pub registry: Vec<MirrorRegistryConfig>,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            repositories: Vec::new(),
            insecure_registries: Vec::new(),
            refresh_interval_seconds: 60,
            timeout_seconds: 20,
            backoff_initial_ms: 1000,
            backoff_max_seconds: 300,
            lease_seconds: 30,
            registry: Vec::new(),
        }
    }
}

/// Credentials for one registry the mirror pushes to: sent as basic authentication, or to
/// the registry's token server when it asks for bearer tokens.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MirrorRegistryConfig {
    /// The registry, `HOST` or `HOST:PORT` as in image names.
    pub host: String,
    /// The user name.
    pub username: String,
    /// A file holding the password (one line); readable by its owner only.
    pub password_file: PathBuf,
}

/// Signed webhooks (Standard Webhooks): where trust changes are delivered, how deliveries
/// are signed and retried, and which destinations are allowed.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// The server's ed25519 key signing every delivery (`v1a`), a PKCS#8 PEM file; made
    /// on first start when absent (default `webhook-signing.pem` in the data directory).
    /// Replicas must share one: deliveries from any of them verify with one public key.
    pub signing_key_file: Option<PathBuf>,
    /// URL prefixes a subscription's URL must start with (`https://hooks.example.com/`);
    /// empty: any URL (still subject to the address rules).
    pub allowed_urls: Vec<String>,
    /// Whether destinations may be (or resolve to) loopback, private, link-local or other
    /// non-public addresses (default false: refused, so a subscription cannot reach the
    /// server's own network).
    pub allow_private_addresses: bool,
    /// Whether `http://` destinations are allowed (default false: `https://` only).
    pub allow_http: bool,
    /// Attempts at one event before its subscription is marked dead (default 15).
    pub max_attempts: u32,
    /// Seconds one delivery may take, connection included (default 10).
    pub timeout_seconds: u64,
    /// The first retry's delay in milliseconds; each later one doubles, with jitter
    /// (default 1000).
    pub backoff_initial_ms: u64,
    /// The longest delay between retries, in seconds (default 600).
    pub backoff_max_seconds: u64,
    /// How long a replica's claim to deliver a subscription lasts without renewal (default
    /// 30 s): another replica takes over that long after one dies.
    pub lease_seconds: u64,
    /// The subscriptions.
    pub subscriptions: Vec<SubscriptionConfig>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            signing_key_file: None,
            allowed_urls: Vec::new(),
            allow_private_addresses: false,
            allow_http: false,
            max_attempts: 15,
            timeout_seconds: 10,
            backoff_initial_ms: 1000,
            backoff_max_seconds: 600,
            lease_seconds: 30,
            subscriptions: Vec::new(),
        }
    }
}

/// One webhook subscription.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// A name (letters, digits, `-`, `_`, `.`; at most 64): its delivery cursor is stored
    /// under it, so renaming a subscription starts it afresh.
    pub name: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Repositories whose changes are delivered, as token-scope globs (`*` crosses `/`);
    /// default every repository.
    #[serde(default = "every_repository")]
    pub guns: Vec<String>,
    /// A file holding a Standard Webhooks secret (`whsec_` and base64 of at least 24
    /// bytes): deliveries then also carry an HMAC-SHA256 (`v1`) signature.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

fn every_repository() -> Vec<String> {
    vec!["*".to_owned()]
}

impl std::fmt::Debug for SubscriptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionConfig")
            .field("name", &self.name)
            .field("url", &crate::webhooks::redact_url(&self.url))
            .field("guns", &self.guns)
            .finish_non_exhaustive()
    }
}

/// The event streams (`GET /v2/_trust/events`, `/v2/{gun}/_trust/events`): how many may be
/// open, what the server buffers for them, and how idle ones are kept open.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Most streams open at once (default 2048); one more gets 503 with `Retry-After`.
    pub max_streams: usize,
    /// Most streams one client may have open (default 64): one token, one JWT subject, or
    /// all anonymous readers together, so that no one client takes every stream.
    pub max_streams_per_client: usize,
    /// Newest changefeed entries kept in memory for the streams (default 4096): a stream
    /// resuming from an older id reads the store.
    pub buffer_events: usize,
    /// Events one stream may have waiting to be written (default 64): a consumer that falls
    /// behind the buffer while its queue is full is disconnected with a `reconnect` notice
    /// and resumes from its last event id.
    pub stream_queue: usize,
    /// Seconds between keep-alive comments on an idle stream (default 15, at most 30:
    /// clients take 45 silent seconds for a dead connection).
    pub keep_alive_seconds: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            max_streams: 2048,
            max_streams_per_client: 64,
            buffer_events: 4096,
            stream_queue: 64,
            keep_alive_seconds: 15,
        }
    }
}

/// Staged proposals: how long they stay open and how many a repository may have.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ProposalsConfig {
    /// Seconds a proposal stays open for signatures (default 604800, seven days).
    pub lifetime_seconds: i64,
    /// Most open (not yet expired) proposals one repository may have (default 16).
    pub max_open: usize,
}

impl Default for ProposalsConfig {
    fn default() -> Self {
        ProposalsConfig {
            lifetime_seconds: 7 * 86_400,
            max_open: 16,
        }
    }
}

/// Where metadata, the changefeed and online keys are stored.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `postgres://user:password@host:port/database?sslmode=...` for PostgreSQL, or
    /// `sqlite:PATH` for a SQLite file; unset, SQLite `vouch.db` in the data directory.
    pub url: Option<String>,
    /// PostgreSQL: most connections each server process opens (default 16).
    pub pool_size: usize,
    /// PostgreSQL: how long opening a connection may take (default 5 s).
    pub connect_timeout_seconds: u64,
    /// PostgreSQL: how long one statement may run before it is cancelled (default 10 s).
    pub statement_timeout_seconds: u64,
    /// PostgreSQL: how long a request waits for a free pooled connection (default 5 s).
    pub pool_wait_seconds: u64,
    /// How often each server process reads the changefeed for writes made by other
    /// processes, to drop what it cached of those repositories (default 250 ms).
    pub follow_interval_ms: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: None,
            pool_size: 16,
            connect_timeout_seconds: 5,
            statement_timeout_seconds: 10,
            pool_wait_seconds: 5,
            follow_interval_ms: 250,
        }
    }
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageConfig")
            .field("url", &self.url.as_deref().map(crate::store::redact))
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

/// Which store a configuration names.
#[derive(Debug)]
pub enum Backend {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(Box<crate::store::PgOptions>),
}

/// The key-encryption key of the online keys.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// The key-encryption key file (default `kek` in the data directory). Every replica of
    /// one database must use the same key.
    pub kek_file: Option<PathBuf>,
}

/// The in-memory cache current metadata is served from.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Most bytes of metadata the read cache holds (default 64 MiB; 0 turns it off). A file
    /// larger than a sixteenth of it is never cached.
    pub read_bytes: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            read_bytes: 64 << 20,
        }
    }
}

/// Who may read `/metrics`, whose series name every repository the server has served.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `anonymous` or `token`; when absent, `anonymous` if `auth.anonymous_pull` is on and
    /// `token` if it is off.
    pub access: Option<MetricsAccess>,
}

/// Whether `/metrics` needs a token.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    /// Anyone who can reach the server may scrape it.
    Anonymous,
    /// A bearer token that may read every repository (the grant the global changefeed needs:
    /// a static token with pattern `*` and `pull`, or a JWT granting `registry:catalog:*`).
    Token,
}

impl MetricsConfig {
    /// The access in force under `auth`: the configured one, else what anonymous pulls imply.
    pub fn effective(&self, auth: &AuthConfig) -> MetricsAccess {
        self.access.unwrap_or(if auth.anonymous_pull {
            MetricsAccess::Anonymous
        } else {
            MetricsAccess::Token
        })
    }
}

/// How log lines are written (to standard error).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Timeouts, in seconds.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Time to answer a request once it has arrived (default 30); past it the client gets
    /// 503 with `Retry-After`. For a publish it counts from when the body is in (the body has
    /// `body_read_seconds`). A publish already being stored may still complete: clients
    /// refresh before retrying.
    pub request_seconds: u64,
    /// Time a client has to send the request line and headers (default 10); past it the
    /// connection is closed.
    pub header_read_seconds: u64,
    /// Time a client has to send a publish body (default 60); past it 408.
    pub body_read_seconds: u64,
    /// Time a TLS handshake may take (default 10).
    pub tls_handshake_seconds: u64,
    /// Time a client has to take a response once its connection stops taking it (default
    /// 60): counted over the whole stall, not per write; past it the connection is closed.
    pub response_write_seconds: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            request_seconds: 30,
            header_read_seconds: 10,
            body_read_seconds: 60,
            tls_handshake_seconds: 10,
            response_write_seconds: 60,
        }
    }
}

/// Concurrency caps.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Capacity {
    /// Requests handled at once (default 1024); more get 503 at once.
    pub max_in_flight: usize,
    /// Publishes validated and stored at once, over all repositories (default 8).
    pub max_publishes: usize,
    /// Publishes to one repository at once (default 2): more would only conflict.
    pub max_publishes_per_gun: usize,
    /// How long a publish may wait for a free slot before it gets 503, in milliseconds
    /// (default 2000; 0 = never wait).
    pub publish_wait_ms: u64,
    /// The `Retry-After` value sent with a 503, in seconds (default 1).
    pub retry_after_seconds: u64,
    /// Repositories that may get their first online key a minute, per process (default 600);
    /// past it, key creation gets 503 until the minute is over.
    pub new_repositories_per_minute: u32,
    /// Connections open at once, per process (default 4096); a connection accepted past it is
    /// closed at once.
    pub max_connections: usize,
    /// Bytes of responses made for one request alone (a file not served from the read cache,
    /// `/metrics`) that may wait to be written at once, per process (default 256 MiB); a
    /// response that does not fit now gets 503. A file larger than the whole budget is served
    /// when nothing else is waiting.
    pub max_pending_response_bytes: usize,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            max_in_flight: 1024,
            max_publishes: 8,
            max_publishes_per_gun: 2,
            publish_wait_ms: 2000,
            retry_after_seconds: 1,
            new_repositories_per_minute: crate::keys::OnlineKeys::DEFAULT_CREATIONS_PER_MINUTE,
            max_connections: vouch_serve::MAX_CONNECTIONS,
            max_pending_response_bytes: 256 << 20,
        }
    }
}

/// TLS certificate and key, PEM files re-read when they change.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, leaf first (PEM).
    pub cert_file: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key_file: PathBuf,
    /// How often to check the files for changes, in seconds (default 30).
    #[serde(default = "default_reload")]
    pub reload_seconds: u64,
}

fn default_reload() -> u64 {
    30
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 4443)),
            data_dir: PathBuf::from("vouch-data"),
            limits: Limits::default(),
            lifetimes: LifetimeConfig::default(),
            auth: AuthConfig::default(),
            log: "info".into(),
            log_format: LogFormat::Text,
            timeouts: Timeouts::default(),
            capacity: Capacity::default(),
            tls: None,
            cache: CacheConfig::default(),
            metrics: MetricsConfig::default(),
            storage: StorageConfig::default(),
            keys: KeysConfig::default(),
            proposals: ProposalsConfig::default(),
            events: EventsConfig::default(),
            webhooks: WebhooksConfig::default(),
            mirror: MirrorConfig::default(),
        }
    }
}

/// Size limits.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted, in bytes (default 16 MiB); larger gets 413.
    pub max_body_bytes: usize,
    /// Largest root metadata file, in bytes (default 1 MiB).
    pub max_root_bytes: usize,
    /// Largest targets or delegated targets file, in bytes (default 16 MiB).
    pub max_targets_bytes: usize,
    /// Largest client-signed snapshot file, in bytes (default 4 MiB).
    pub max_snapshot_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_root_bytes: 1 << 20,
            max_targets_bytes: 16 << 20,
            max_snapshot_bytes: 4 << 20,
        }
    }
}

/// Lifetimes of server-signed roles, in seconds.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LifetimeConfig {
    /// Timestamp lifetime (default 86400, one day); re-signed when less than half remains.
    pub timestamp_seconds: i64,
    /// Server-held snapshot lifetime (default 604800, seven days); likewise.
    pub snapshot_seconds: i64,
}

impl Default for LifetimeConfig {
    fn default() -> Self {
        LifetimeConfig {
            timestamp_seconds: 86_400,
            snapshot_seconds: 7 * 86_400,
        }
    }
}

/// Authentication settings.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Whether reads need no token (default true). Creating keys, publishing, deleting and the
    /// global changefeed always need one.
    pub anonymous_pull: bool,
    /// `realm` of the `WWW-Authenticate` challenge (where clients get tokens).
    pub realm: String,
    /// `service` of the challenge.
    pub service: String,
    /// Static API tokens.
    pub tokens: Vec<TokenConfig>,
    /// Registry-format bearer JWTs from an auth server (off when absent).
    pub jwt: Option<JwtConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            anonymous_pull: true,
            realm: "vouch".into(),
            service: "vouch".into(),
            tokens: Vec::new(),
            jwt: None,
        }
    }
}

/// Registry-format bearer JWTs: who issues them and the keys they are signed with. Their
/// audience must be [`AuthConfig::service`].
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Required `iss` claim.
    pub issuer: String,
    /// Allowed clock skew for `exp` and `nbf`, in seconds (default 60).
    #[serde(default = "default_leeway")]
    pub leeway_seconds: i64,
    /// Public keys (several during a rollover); at least one.
    pub keys: Vec<JwtKeyConfig>,
}

fn default_leeway() -> i64 {
    60
}

/// One token-signing public key: a P-256, RSA or Ed25519 `PUBLIC KEY` PEM, inline or in a
/// file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JwtKeyConfig {
    /// The `kid` of tokens signed with it (optional: without it, every key of the token's
    /// algorithm is tried).
    #[serde(default)]
    pub kid: Option<String>,
    /// A PEM file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The PEM text itself.
    #[serde(default)]
    pub pem: Option<String>,
}

/// One static API token: only its SHA-256 is configured.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// A name for logs.
    pub name: String,
    /// Lowercase hex SHA-256 of the token.
    pub sha256: String,
    /// Scopes, each `GUN-GLOB:ACTION[,ACTION…]` with actions `pull`, `push`, `delete` or `*`,
    /// e.g. `registry.example.com/org/*:pull,push`.
    pub scopes: Vec<String>,
}

impl JwtConfig {
    /// Reads the configured keys and builds the policy tokens are checked against, with
    /// `service` as the required audience.
    pub(crate) fn policy(&self, service: &str) -> Result<crate::jwt::TokenPolicy, ConfigError> {
        let mut keys = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            let (pem, from) = match (&k.pem, &k.file) {
                (Some(p), _) => (p.clone(), format!("auth.jwt.keys[{i}]")),
                (None, Some(f)) => (
                    std::fs::read_to_string(f)
                        .map_err(|e| ConfigError(format!("{}: {e}", f.display())))?,
                    f.display().to_string(),
                ),
                (None, None) => {
                    return Err(ConfigError(format!(
                        "auth.jwt.keys[{i}]: give exactly one of file and pem"
                    )))
                }
            };
            keys.push(
                crate::jwt::TokenKey::from_pem(&pem, k.kid.clone())
                    .map_err(|e| ConfigError(format!("{from}: {e}")))?,
            );
        }
        Ok(crate::jwt::TokenPolicy {
            issuer: self.issuer.clone(),
            audience: service.to_owned(),
            leeway_seconds: self.leeway_seconds,
            keys,
        })
    }
}

/// Refuses the first of `values` (settings of `section`) below `min`, saying it must be
/// `needs`.
fn at_least(
    section: &str,
    values: &[(&str, i128)],
    min: i128,
    needs: &str,
) -> Result<(), ConfigError> {
    match values.iter().find(|(_, v)| *v < min) {
        Some((name, v)) => Err(ConfigError(format!(
            "{section}.{name} = {v}: must be {needs}"
        ))),
        None => Ok(()),
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    /// Applies `VOUCH_*` overrides from `vars` (the process environment in production).
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(k: &str, v: &str) -> Result<T, ConfigError> {
            v.parse()
                .map_err(|_| ConfigError(format!("{k}={v:?} is not a valid number")))
        }
        /// A comma-separated list; blanks dropped.
        fn list(v: &str) -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        }
        fn boolean(k: &str, v: &str) -> Result<bool, ConfigError> {
            match v {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError(format!("{k}={v:?} is not true or false"))),
            }
        }
        for (k, v) in vars {
            match k.as_str() {
                "VOUCH_LISTEN" => {
                    self.listen = v
                        .parse()
                        .map_err(|_| ConfigError(format!("VOUCH_LISTEN={v:?} is not an address")))?
                }
                "VOUCH_DATA_DIR" => self.data_dir = PathBuf::from(v),
                "VOUCH_DATABASE_URL" => self.storage.url = Some(v),
                "VOUCH_KEK_FILE" => self.keys.kek_file = Some(PathBuf::from(v)),
                "VOUCH_LOG" => self.log = v,
                "VOUCH_LOG_FORMAT" => {
                    self.log_format = match v.as_str() {
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        _ => {
                            return Err(ConfigError(format!(
                                "VOUCH_LOG_FORMAT={v:?} is not text or json"
                            )))
                        }
                    }
                }
                "VOUCH_TLS_CERT_FILE" | "VOUCH_TLS_KEY_FILE" => {
                    let tls = self.tls.get_or_insert_with(|| TlsConfig {
                        cert_file: PathBuf::new(),
                        key_file: PathBuf::new(),
                        reload_seconds: default_reload(),
                    });
                    if k == "VOUCH_TLS_CERT_FILE" {
                        tls.cert_file = PathBuf::from(v);
                    } else {
                        tls.key_file = PathBuf::from(v);
                    }
                }
                "VOUCH_REQUEST_TIMEOUT_SECONDS" => self.timeouts.request_seconds = num(&k, &v)?,
                "VOUCH_MAX_IN_FLIGHT" => self.capacity.max_in_flight = num(&k, &v)?,
                "VOUCH_MAX_PUBLISHES" => self.capacity.max_publishes = num(&k, &v)?,
                "VOUCH_MAX_PUBLISHES_PER_GUN" => self.capacity.max_publishes_per_gun = num(&k, &v)?,
                "VOUCH_NEW_REPOSITORIES_PER_MINUTE" => {
                    self.capacity.new_repositories_per_minute = num(&k, &v)?
                }
                "VOUCH_MAX_CONNECTIONS" => self.capacity.max_connections = num(&k, &v)?,
                "VOUCH_MAX_PENDING_RESPONSE_BYTES" => {
                    self.capacity.max_pending_response_bytes = num(&k, &v)?
                }
                "VOUCH_MAX_BODY_BYTES" => self.limits.max_body_bytes = num(&k, &v)?,
                "VOUCH_TIMESTAMP_LIFETIME_SECONDS" => {
                    self.lifetimes.timestamp_seconds = num(&k, &v)?
                }
                "VOUCH_SNAPSHOT_LIFETIME_SECONDS" => self.lifetimes.snapshot_seconds = num(&k, &v)?,
                "VOUCH_PROPOSALS_LIFETIME_SECONDS" => {
                    self.proposals.lifetime_seconds = num(&k, &v)?
                }
                "VOUCH_PROPOSALS_MAX_OPEN" => self.proposals.max_open = num(&k, &v)?,
                "VOUCH_EVENTS_MAX_STREAMS" => self.events.max_streams = num(&k, &v)?,
                "VOUCH_EVENTS_MAX_STREAMS_PER_CLIENT" => {
                    self.events.max_streams_per_client = num(&k, &v)?
                }
                "VOUCH_EVENTS_BUFFER_EVENTS" => self.events.buffer_events = num(&k, &v)?,
                "VOUCH_EVENTS_STREAM_QUEUE" => self.events.stream_queue = num(&k, &v)?,
                "VOUCH_EVENTS_KEEP_ALIVE_SECONDS" => self.events.keep_alive_seconds = num(&k, &v)?,
                "VOUCH_MIRROR_REPOSITORIES" => self.mirror.repositories = list(&v),
                "VOUCH_MIRROR_INSECURE_REGISTRIES" => self.mirror.insecure_registries = list(&v),
                "VOUCH_MIRROR_REFRESH_INTERVAL_SECONDS" => {
                    self.mirror.refresh_interval_seconds = num(&k, &v)?
                }
                "VOUCH_MIRROR_TIMEOUT_SECONDS" => self.mirror.timeout_seconds = num(&k, &v)?,
                "VOUCH_MIRROR_BACKOFF_INITIAL_MS" => self.mirror.backoff_initial_ms = num(&k, &v)?,
                "VOUCH_MIRROR_BACKOFF_MAX_SECONDS" => {
                    self.mirror.backoff_max_seconds = num(&k, &v)?
                }
                "VOUCH_MIRROR_LEASE_SECONDS" => self.mirror.lease_seconds = num(&k, &v)?,
                "VOUCH_ANONYMOUS_PULL" => self.auth.anonymous_pull = boolean(&k, &v)?,
                "VOUCH_AUTH_REALM" => self.auth.realm = v,
                "VOUCH_AUTH_SERVICE" => self.auth.service = v,
                "VOUCH_READ_CACHE_BYTES" => self.cache.read_bytes = num(&k, &v)?,
                "VOUCH_METRICS_ACCESS" => {
                    self.metrics.access = Some(match v.as_str() {
                        "anonymous" => MetricsAccess::Anonymous,
                        "token" => MetricsAccess::Token,
                        _ => {
                            return Err(ConfigError(format!(
                                "VOUCH_METRICS_ACCESS={v:?} is not anonymous or token"
                            )))
                        }
                    })
                }
                _ => {}
            }
        }
        self.check()
    }

    /// Rejects settings that cannot work.
    pub fn check(&self) -> Result<(), ConfigError> {
        let l = &self.lifetimes;
        at_least(
            "lifetimes",
            &[
                ("timestamp_seconds", l.timestamp_seconds.into()),
                ("snapshot_seconds", l.snapshot_seconds.into()),
            ],
            60,
            "at least 60 seconds",
        )?;
        let p = &self.proposals;
        at_least(
            "proposals",
            &[("lifetime_seconds", p.lifetime_seconds.into())],
            60,
            "at least 60 seconds",
        )?;
        if !(1..=vouch_tuf::api::proposal::MAX_LISTED).contains(&p.max_open) {
            return Err(ConfigError(format!(
                "proposals.max_open must be between 1 and {}",
                vouch_tuf::api::proposal::MAX_LISTED
            )));
        }
        if self.limits.max_body_bytes == 0 {
            return Err(ConfigError("limits.max_body_bytes must be positive".into()));
        }
        let t = &self.timeouts;
        at_least(
            "timeouts",
            &[
                ("request_seconds", t.request_seconds.into()),
                ("header_read_seconds", t.header_read_seconds.into()),
                ("body_read_seconds", t.body_read_seconds.into()),
                ("tls_handshake_seconds", t.tls_handshake_seconds.into()),
                ("response_write_seconds", t.response_write_seconds.into()),
            ],
            1,
            "at least 1 second",
        )?;
        let c = &self.capacity;
        at_least(
            "capacity",
            &[
                ("max_in_flight", c.max_in_flight as i128),
                ("max_publishes", c.max_publishes as i128),
                ("max_publishes_per_gun", c.max_publishes_per_gun as i128),
                (
                    "new_repositories_per_minute",
                    c.new_repositories_per_minute.into(),
                ),
                ("max_connections", c.max_connections as i128),
                (
                    "max_pending_response_bytes",
                    c.max_pending_response_bytes as i128,
                ),
            ],
            1,
            "positive",
        )?;
        let ev = &self.events;
        at_least(
            "events",
            &[
                ("max_streams", ev.max_streams as i128),
                ("max_streams_per_client", ev.max_streams_per_client as i128),
                ("buffer_events", ev.buffer_events as i128),
                ("stream_queue", ev.stream_queue as i128),
                ("keep_alive_seconds", ev.keep_alive_seconds.into()),
            ],
            1,
            "positive",
        )?;
        crate::webhooks::check_config(&self.webhooks)?;
        crate::mirror::check_config(&self.mirror)?;
        if ev.keep_alive_seconds > 30 {
            return Err(ConfigError(
                "events.keep_alive_seconds must be at most 30: clients take a stream silent for 45 seconds for a dead one".into(),
            ));
        }
        let st = &self.storage;
        at_least(
            "storage",
            &[
                ("pool_size", st.pool_size as i128),
                ("connect_timeout_seconds", st.connect_timeout_seconds.into()),
                (
                    "statement_timeout_seconds",
                    st.statement_timeout_seconds.into(),
                ),
                ("pool_wait_seconds", st.pool_wait_seconds.into()),
                ("follow_interval_ms", st.follow_interval_ms.into()),
            ],
            1,
            "positive",
        )?;
        let backend = self.backend()?;
        if matches!(backend, Backend::Postgres(..))
            && !self.webhooks.subscriptions.is_empty()
            && self.webhooks.signing_key_file.is_none()
        {
            return Err(ConfigError(
                "webhooks.signing_key_file must be set with PostgreSQL: every replica may deliver, so all must sign with one key (give them the same file, as with the key-encryption key)".into(),
            ));
        }
        if let Some(tls) = &self.tls {
            if tls.cert_file.as_os_str().is_empty() || tls.key_file.as_os_str().is_empty() {
                return Err(ConfigError(
                    "tls needs both cert_file and key_file (VOUCH_TLS_CERT_FILE, VOUCH_TLS_KEY_FILE)"
                        .into(),
                ));
            }
            if tls.reload_seconds == 0 {
                return Err(ConfigError("tls.reload_seconds must be positive".into()));
            }
        }
        if let Some(j) = &self.auth.jwt {
            if j.issuer.is_empty() {
                return Err(ConfigError("auth.jwt.issuer must not be empty".into()));
            }
            if j.keys.is_empty() {
                return Err(ConfigError(
                    "auth.jwt.keys must list at least one key".into(),
                ));
            }
            if !(0..=600).contains(&j.leeway_seconds) {
                return Err(ConfigError(
                    "auth.jwt.leeway_seconds must be between 0 and 600".into(),
                ));
            }
            for (i, k) in j.keys.iter().enumerate() {
                if k.file.is_some() == k.pem.is_some() {
                    return Err(ConfigError(format!(
                        "auth.jwt.keys[{i}]: give exactly one of file and pem"
                    )));
                }
            }
        }
        for t in &self.auth.tokens {
            if !vouch_tuf::hex::is_lower_hex(&t.sha256, 64) {
                return Err(ConfigError(format!(
                    "token {}: sha256 must be 64 lowercase hex characters",
                    t.name
                )));
            }
            for s in &t.scopes {
                crate::auth::Scope::parse(s)
                    .map_err(|e| ConfigError(format!("token {}: {e}", t.name)))?;
            }
        }
        Ok(())
    }

    /// The SQLite database file of the default store (`vouch.db` in the data directory).
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("vouch.db")
    }

    /// The store `storage.url` names (the SQLite file in the data directory when unset);
    /// the error names the URL, its password hidden.
    pub fn backend(&self) -> Result<Backend, ConfigError> {
        let st = &self.storage;
        match st.url.as_deref() {
            None => Ok(Backend::Sqlite(self.database_path())),
            Some(url) => Backend::parse(url).map(|b| match b {
                Backend::Postgres(o) => Backend::Postgres(Box::new(o.with_limits(
                    st.pool_size,
                    std::time::Duration::from_secs(st.connect_timeout_seconds),
                    std::time::Duration::from_secs(st.statement_timeout_seconds),
                    std::time::Duration::from_secs(st.pool_wait_seconds),
                ))),
                sqlite => sqlite,
            }),
        }
    }

    /// The key-encryption key file (`keys.kek_file`, else `kek` in the data directory).
    pub fn kek_path(&self) -> PathBuf {
        self.keys
            .kek_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("kek"))
    }

    /// The generated admin token (for the operator to read).
    pub fn admin_token_path(&self) -> PathBuf {
        self.data_dir.join("admin.token")
    }

    /// The SHA-256 of the generated admin token (what the server checks against).
    pub fn admin_token_hash_path(&self) -> PathBuf {
        self.data_dir.join("admin.token.sha256")
    }
}

impl Backend {
    /// A store URL: `postgres://...` / `postgresql://...`, or `sqlite:PATH` (also
    /// `sqlite://PATH`). The error names the URL with its password hidden.
    pub fn parse(url: &str) -> Result<Backend, ConfigError> {
        if crate::store::is_postgres_url(url) {
            return crate::store::PgOptions::from_url(url)
                .map(|o| Backend::Postgres(Box::new(o)))
                .map_err(ConfigError);
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .filter(|p| !p.is_empty());
        match path {
            Some(p) => Ok(Backend::Sqlite(PathBuf::from(p))),
            None => Err(ConfigError(format!(
                "storage url {}: not a store URL (postgres://user:password@host:port/database or sqlite:PATH)",
                crate::store::redact(url)
            ))),
        }
    }

    /// Opens the store (creating or migrating its schema).
    pub fn open(
        &self,
    ) -> Result<std::sync::Arc<dyn crate::store::Store>, crate::store::StoreError> {
        Ok(match self {
            Backend::Sqlite(path) => std::sync::Arc::new(crate::store::SqliteStore::open(path)?),
            Backend::Postgres(o) => {
                std::sync::Arc::new(crate::store::PostgresStore::open((**o).clone())?)
            }
        })
    }

    /// What to call it in messages: the file, or the URL with its password hidden.
    pub fn describe(&self) -> String {
        match self {
            Backend::Sqlite(path) => format!("sqlite:{}", path.display()),
            Backend::Postgres(o) => o.redacted.clone(),
        }
    }
}

/// Creates `path` with mode 0600 (on unix) and writes `contents`, failing if it exists.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(test)]
mod tests;
