//! The admission policy: which images are verified against which trust server, which are
//! allowed or denied outright, and which namespaces are exempt.
//!
//! The policy is a TOML file (TOML rather than YAML because the workspace already parses
//! TOML for the server's configuration, so it adds no dependency):
//!
//! ```toml
//! mode = "enforce"                 # or "warn": admit, but warn about each failure
//! exempt_namespaces = ["kube-system"]
//! refresh_interval_secs = 30       # a TUF refresh per repository at most this often
//! deadline_ms = 5000               # every decision finishes within this, failing closed
//! follow_events = true             # follow the servers' trust-change events (the default)
//!
//! [[rule]]
//! pattern = "registry.example.com/org/**"
//! action = "verify"
//! server = "https://vouch.example.com"
//! root_file = "/etc/vouch/roots/org.root.json"   # or root_inline = '''{"signatures":…}'''
//! gun = "{name}"                                   # the default: the canonical image name
//! required_roles = ["targets/releases"]            # optional: via targets -> targets/releases
//!
//! [[rule]]
//! pattern = "registry.example.com/org/debug-*"
//! action = "deny"
//!
//! [[server]]                       # how to authenticate to a trust server rules name
//! url = "https://vouch.example.com"
//! token_file = "/var/run/secrets/vouch/token"      # or token = "…" (discouraged)
//! ```
//!
//! A `[[server]]` table gives the bearer token sent to the trust server whose URL it names;
//! rules name a server by the same URL (`server = …`, compared without a trailing `/`), so
//! one table serves every rule that uses that server, and a server without a table is
//! asked without a token. The token is written in the policy (`token`) or read from a file
//! (`token_file`, relative to the policy's directory), which is read again when it changes
//! ([`crate::credentials`]). A Notary server with token authentication takes a login
//! instead, `username` and `password_file` (relative to the policy's directory), for the
//! registry token flow. A table no rule uses, two tables for one URL, a table with none or
//! more than one of `token`, `token_file` and the login, or a login for a vouch server are
//! refused.
//!
//! Patterns are globs over the image's **canonical name** (`registry/repository`, as
//! [`ImageRef::name`] writes it; see `vouch_tuf::reference`): every spelling a container
//! runtime pulls from the same place (`REGISTRY.EXAMPLE.COM/org/app`,
//! `registry.example.com:443/org/app`; `nginx`, `library/nginx`, `index.docker.io/nginx`,
//! `registry-1.docker.io/library/nginx`) has one name, so one rule decides it. `*` matches
//! within one path component, `**` matches across components, `?` one character. Patterns
//! are brought to the canonical form the same way when the policy is loaded
//! ([`canonical_pattern`]), and refused when they could never match a canonical name.
//! When several rules match, the most specific one wins: the one with the most literal
//! characters in its canonical pattern, then the one written first. An image that matches
//! no rule is denied.
//!
//! `required_roles` lists delegation paths ([`DelegationPath`]): each entry is a role name
//! read as the chain of delegations from `targets` that leads to it
//! (`"targets/releases/prod"` is `targets → targets/releases → targets/releases/prod`), or an
//! explicit chain of role names (`["releases", "prod"]` is `targets → releases → prod`). An
//! image passes when the role path that vouched for it starts with every listed chain.
//!
//! A `verify` rule may instead read a Notary v1 server, for repositories not yet moved to
//! vouch ([`NotarySource`], see [`crate::notary`]): `notary = "https://notary.example.com"`
//! with the Notary root pinned for its repository (`notary_root = "roots/app.json"`, or a
//! `[rule.notary_roots]` table of GUN = file; a rule with neither is refused), and
//! `required_roles` naming Notary delegations (`targets/releases`). It is an option of
//! `verify` rather than an action of its own because the action is the same (verify, pin
//! tags); only where trust comes from differs, and moving a repository to vouch changes just
//! those keys.
//!
//! Where a `verify` rule reads trust is its `source` ([`ReadFrom`]): `"server"` (the
//! default), `"registry"` (the trust artifact beside the image in its own registry
//! repository; `server` not needed) or `"server-then-registry"` (the server, the registry
//! copy while the server is unreachable). Registries are asked anonymously unless a
//! `[[registry]]` table gives a login for the host (`docker_config_file`, a mounted pull
//! secret, or `username` with `password_file`), over HTTPS unless on loopback or listed in
//! `insecure_registries` ([`RegistryAccess`]); tables are checked as `[[server]]` tables are.
//! A trust pin with `trust_from` maps an image's GUN to the repository whose trust it has
//! ([`Policy::trusted_as`]).
//!
//! `exempt_namespaces` are compared exactly with the request's namespace, so each must be a
//! valid namespace name (a DNS-1123 label).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
pub use vouch_tuf::pattern::{canonical_pattern, glob_match, NamePattern, PatternError};
use vouch_tuf::reference::{Gun, ImageRef, ReferenceError};
use vouch_tuf::types::RoleName;
use vouch_verifier::pins::{Anchor, PinError, PinnedRoot, TrustPins};
use vouch_verifier::search::DelegationPath;
use vouch_verifier::transport::is_loopback_url;

use crate::credentials::{check_token, ServerToken};

/// True for a key whose value may be a secret: `token`, and (though the policy has no such
/// key, someone may write one) a password or secret written inline; `…_file` keys name files.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "token"
        || (!key.ends_with("_file") && (key.contains("password") || key.contains("secret")))
}

/// A TOML error of the policy, quoting only the line at fault, and that with any `token`
/// (or password) value masked: a policy may hold a token (`[[server]] token = …`), which must not reach
/// logs or terminals through an error about a neighbouring line (the TOML parser's own
/// message quotes several lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlError {
    /// 1-based line of the error, when the parser says where.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// The line at fault (at most 120 characters), a `token` value masked.
    pub excerpt: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl TomlError {
    fn new(e: &toml::de::Error, text: &str) -> Self {
        let at = e.span().map(|span| {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            (line, column)
        });
        let excerpt = at
            .and_then(|(line, _)| text.lines().nth(line - 1))
            .map(|l| {
                let l = l.trim();
                let masked = match l.split_once('=') {
                    Some((key, _)) if is_secret_key(key.trim().trim_matches('"')) => {
                        format!("{} = ***", key.trim())
                    }
                    _ => l.to_owned(),
                };
                masked.chars().take(120).collect()
            });
        TomlError {
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            excerpt,
            message: e.message().trim().to_owned(),
        }
    }
}

impl std::fmt::Display for TomlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => {
                write!(f, "TOML error at line {l}, column {c}")?;
                if let Some(x) = &self.excerpt {
                    write!(f, " ({x})")?;
                }
                write!(f, ": {}", self.message)
            }
            _ => write!(f, "TOML error: {}", self.message),
        }
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, Error)]
pub enum PolicyError {
    /// The file could not be read. (The IO error is part of the message rather than a
    /// `source`, so that printing the error with its sources says it once.)
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        error: std::io::Error,
    },
    /// The TOML is malformed or has unknown fields.
    #[error("invalid policy: {0}")]
    Parse(TomlError),
    /// A `[[server]]` table is inconsistent.
    #[error("server {url}: {message}")]
    Server {
        /// The table's `url`.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// A `[[registry]]` table, or `insecure_registries`, is inconsistent.
    #[error("registry {host}: {message}")]
    Registry {
        /// The table's `host`.
        host: String,
        /// What is wrong.
        message: String,
    },
    /// The trust pins named by `trust_pins` could not be loaded.
    #[error("trust_pins: {0}")]
    Pins(PinError),
    /// An `exempt_namespaces` entry that is not a namespace name, so could never be equal
    /// to a request's namespace.
    #[error(
        "exempt_namespaces: {0:?} is not a namespace name (lower-case letters, digits and \
         inner '-', at most 63 characters); entries are compared exactly, without patterns"
    )]
    ExemptNamespace(String),
    /// A rule is inconsistent.
    #[error("rule {index} ({pattern}): {message}")]
    Rule {
        /// 1-based position of the rule in the file.
        index: usize,
        /// Its pattern.
        pattern: String,
        /// What is wrong.
        message: String,
    },
}

/// Whether failures deny the request or only warn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny a request when any image fails.
    #[default]
    Enforce,
    /// Admit every request; report failures as warnings (for rollout).
    Warn,
}

/// What a rule does with the images it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Verify against the rule's trust server and pin tags to their signed digests.
    Verify,
    /// Admit without verification.
    Allow,
    /// Refuse.
    Deny,
}

/// The policy file as written. Not `Debug`: a `[[server]]` table may hold a token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    exempt_namespaces: Vec<String>,
    refresh_interval_secs: Option<u64>,
    deadline_ms: Option<u64>,
    trust_pins: Option<PathBuf>,
    follow_events: Option<bool>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
    #[serde(default, rename = "server")]
    servers: Vec<RawServer>,
    #[serde(default)]
    insecure_registries: Vec<String>,
    #[serde(default, rename = "registry")]
    registries: Vec<RawRegistry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    host: String,
    docker_config_file: Option<PathBuf>,
    username: Option<String>,
    password_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    url: String,
    token: Option<String>,
    token_file: Option<PathBuf>,
    username: Option<String>,
    password_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    pattern: String,
    action: Action,
    server: Option<String>,
    gun: Option<String>,
    root_file: Option<PathBuf>,
    root_inline: Option<String>,
    #[serde(default)]
    required_roles: Vec<RawRequiredRole>,
    notary: Option<String>,
    notary_root: Option<PathBuf>,
    notary_roots: Option<BTreeMap<String, PathBuf>>,
    source: Option<ReadFrom>,
}

impl RawRule {
    /// The trust server the rule reads from: its vouch `server`, or its `notary` server.
    fn server_url(&self) -> Option<&str> {
        self.server.as_deref().or(self.notary.as_deref())
    }

    /// Every Notary root file the rule names.
    fn notary_root_files(&self) -> impl Iterator<Item = &PathBuf> {
        self.notary_root
            .iter()
            .chain(self.notary_roots.iter().flat_map(|m| m.values()))
    }
}

/// One `required_roles` entry: a role name (`"targets/releases"`), or an explicit chain of
/// role names below `targets` (`["releases", "prod"]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRequiredRole {
    Name(String),
    Chain(Vec<String>),
}

impl RawRequiredRole {
    fn path(&self) -> Result<DelegationPath, String> {
        let path = match self {
            RawRequiredRole::Name(name) => DelegationPath::parse(name),
            RawRequiredRole::Chain(names) => {
                let roles = names
                    .iter()
                    .map(|n| RoleName::new(n.as_str()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("required_roles: {e}"))?;
                DelegationPath::new(roles)
            }
        };
        path.map_err(|e| format!("required_roles: {e}"))
    }
}

/// Where a `verify` rule finds trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustSource {
    /// Base URL of the vouch server (no trailing `/`).
    pub server: String,
    /// GUN template: `{name}`, `{registry}` and `{repository}` are replaced by the image's.
    pub gun: String,
    /// The root the rule pins (`root_file` or `root_inline`), or `None` when each image's
    /// repository finds its anchor in the policy's trust pins ([`Policy::anchor_for`]).
    pub anchor: Option<Anchor>,
    /// Delegation paths the role path that vouched for an image must start with (all of
    /// them; the policy refuses lists that no single path can satisfy).
    pub required_roles: Vec<DelegationPath>,
    /// For a rule reading a Notary v1 server (`notary = …`, then [`TrustSource::server`] is
    /// that server, `anchor` is `None` and `required_roles` empty): its pinned Notary roots
    /// and required delegations.
    pub notary: Option<NotarySource>,
    /// Where the repository's metadata files are read from (`source = …`).
    pub read_from: ReadFrom,
}

/// Where a `verify` rule reads a repository's trust metadata (`source = …`). Whichever it is,
/// the same checks apply against the same trusted state: the choice is about availability,
/// not about what is trusted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadFrom {
    /// `"server"`: the vouch server of `server = …` (the default).
    #[default]
    Server,
    /// `"registry"`: the trust artifact beside the image, in the image's own registry
    /// repository (`vouch_tuf::oci`); no vouch server is asked.
    Registry,
    /// `"server-then-registry"`: the vouch server, and the registry copy while the server
    /// is unreachable (no connection, a timeout, a 5xx answer).
    ServerThenRegistry,
}

impl ReadFrom {
    /// True when the registry copy may be read.
    pub fn reads_registry(self) -> bool {
        !matches!(self, ReadFrom::Server)
    }

    /// The word the policy writes.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadFrom::Server => "server",
            ReadFrom::Registry => "registry",
            ReadFrom::ServerThenRegistry => "server-then-registry",
        }
    }
}

/// The key that stands for "no vouch server" in the in-memory entry of a `source =
/// "registry"` rule without `server` (its trusted state on disk is per anchor and GUN,
/// shared with every other rule anchoring that GUN alike: [`crate::trust`]).
pub const REGISTRY_ONLY: &str = "registry:";

/// How a registry is logged in to, from its `[[registry]]` table. Not `Debug`-printed with
/// secrets: it holds only file names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryLogin {
    /// `docker_config_file`: a docker configuration document (a Kubernetes
    /// `.dockerconfigjson` pull secret mounted as a file), whose `auths` entry for the
    /// registry is used.
    DockerConfig(PathBuf),
    /// `username` and `password_file`: basic credentials, the password read from the file.
    Password {
        /// The user name.
        username: String,
        /// The file holding the password.
        password_file: PathBuf,
    },
}

/// How the registries holding trust artifacts are reached: `insecure_registries` and the
/// `[[registry]]` tables. A registry without a table is asked anonymously.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryAccess {
    /// Registries (`HOST` or `HOST:PORT`) reached over plain HTTP besides loopback ones.
    pub insecure: Vec<String>,
    /// The login for each registry with a table, by `HOST[:PORT]` (lower case).
    pub logins: BTreeMap<String, RegistryLogin>,
}

/// A Notary root the policy pins for one repository (`notary_root`, or an entry of
/// `notary_roots`): the bytes of a root in Notary's dialect, as the notary client keeps it
/// (`…/tuf/<gun>/metadata/root.json`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotaryRoot {
    bytes: Arc<Vec<u8>>,
    id: String,
    origin: String,
}

impl NotaryRoot {
    /// A pinned root read from `origin` (a file name, for messages). Only its shape is
    /// checked here; its signatures are checked against the GUN it is used for
    /// ([`NotaryRoot::check_for`], and on every refresh).
    pub fn new(bytes: Vec<u8>, origin: String) -> Result<Self, String> {
        let signed = vouch_tuf::notary::Signed::parse("root", &bytes).map_err(|e| e.to_string())?;
        vouch_tuf::notary::Root::from_signed(&signed.signed).map_err(|e| e.to_string())?;
        let digest = vouch_tuf::reference::Digest::sha256_of(&bytes);
        Ok(NotaryRoot {
            id: format!("notary-{}", digest.hex().get(..16).unwrap_or_default()),
            bytes: Arc::new(bytes),
            origin,
        })
    }

    /// The root's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Names it in the trust cache: `notary-` and the first 16 hex digits of its SHA-256.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where it came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Checks that it is a root Notary would trust for `gun`: signed by a threshold of its
    /// own root keys, whose certificates name the GUN.
    pub fn check_for(&self, gun: &Gun) -> Result<(), String> {
        let state = vouch_verifier::notary::NotaryState::from_trusted_root(
            gun.as_str(),
            self.bytes.to_vec(),
        );
        vouch_verifier::notary::NotaryVerifier::new(
            &state,
            vouch_tuf::time::Timestamp::from_unix(0),
            vouch_verifier::notary::ExpiredMetadata::AllowAndReport,
            vouch_verifier::Limits::DEFAULT,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}

/// Where a Notary rule's repositories find their pinned root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotaryRoots {
    /// `notary_root`: one root, for a rule covering one repository.
    One(NotaryRoot),
    /// `notary_roots`: a root per GUN; an image whose GUN has none is denied.
    PerGun(BTreeMap<Gun, NotaryRoot>),
}

/// How a `verify` rule with `notary = …` verifies: against a Notary v1 server, in Notary's
/// dialect, from a pinned Notary root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotarySource {
    /// The pinned roots.
    pub roots: NotaryRoots,
    /// Delegated roles (`targets/releases`) of which one, or a role below it, must have
    /// signed the image; empty: any role, resolved as `docker trust` does.
    pub required_roles: Vec<String>,
}

impl NotarySource {
    /// The root pinned for `gun`, or why there is none.
    pub fn root_for(&self, gun: &Gun) -> Result<&NotaryRoot, String> {
        match &self.roots {
            NotaryRoots::One(r) => Ok(r),
            NotaryRoots::PerGun(m) => m.get(gun).ok_or_else(|| {
                format!("no Notary root is pinned for {gun}: add it to the rule's notary_roots")
            }),
        }
    }
}

impl TrustSource {
    /// The GUN of `image` under this source, from its canonical name.
    pub fn gun_for(&self, image: &ImageRef) -> Result<Gun, ReferenceError> {
        let s = self
            .gun
            .replace("{name}", &image.name())
            .replace("{registry}", image.registry())
            .replace("{repository}", image.repository());
        Gun::new(&s)
    }
}

/// One rule of the policy.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The glob, in canonical form ([`canonical_pattern`] of what the file says).
    pub pattern: NamePattern,
    /// What to do.
    pub action: Action,
    /// For `verify`: where trust comes from.
    pub trust: Option<TrustSource>,
    /// For `verify` rules loaded with [`RootFiles::MayBeMissing`] whose `root_file` could not
    /// be read: why (then `trust` is `None`, and the rule denies what it matches until the
    /// file can be read).
    pub root_unavailable: Option<String>,
}

/// Whether a `root_file` that cannot be read fails the whole policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootFiles {
    /// It does ([`Policy::load`], `check-policy`).
    Required,
    /// The policy loads, and the rule denies the images it matches until the file can be
    /// read ([`Rule::root_unavailable`], [`Policy::unavailable_roots`]): what the running
    /// webhook uses, reporting itself not ready meanwhile.
    MayBeMissing,
}

/// A loaded, checked policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Enforce or warn.
    pub mode: Mode,
    /// Namespaces whose requests are admitted untouched.
    pub exempt_namespaces: BTreeSet<String>,
    /// Minimum time between two TUF refreshes of one repository.
    pub refresh_interval: Duration,
    /// Longest time a decision may take; past it the request is denied.
    pub deadline: Duration,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
    /// The trust pins of `trust_pins`: where `verify` rules without a root of their own find
    /// each repository's anchor.
    pub trust_pins: Option<TrustPins>,
    /// The token sent to each trust server that has a `[[server]]` table, by URL (without a
    /// trailing `/`).
    pub servers: BTreeMap<String, Arc<ServerToken>>,
    /// Every `root_file` the policy names, then its `trust_pins` file and every root and key
    /// file that names (resolved against the policy's directory): the files to watch.
    pub root_files: Vec<PathBuf>,
    /// `follow_events` (default true): whether the webhook follows the trust-change events
    /// of the vouch servers its rules name ([`Policy::followed_servers`], [`crate::events`]).
    pub follow_events: bool,
    /// How registries holding trust artifacts are reached (`insecure_registries`,
    /// `[[registry]]`), for rules with a `source` that reads them.
    pub registries: RegistryAccess,
}

/// Default refresh interval.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);
/// Default decision deadline (below the API server's default webhook timeout of 10 s).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);

/// Where the files a policy names (`root_file`, `notary_root`, `notary_roots`, `trust_pins`)
/// are read from: [`Filesystem`] for every real policy; the separation lets a policy's text be
/// parsed without touching the filesystem (the fuzz target reads from nowhere).
pub(crate) trait PolicyFiles {
    /// The bytes of the root file at `path`.
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
    /// The trust pins of the pin file at `path` (and the files that names).
    fn trust_pins(&self, path: &Path) -> Result<TrustPins, PinError>;
}

/// The files a policy names, read from the filesystem.
pub(crate) struct Filesystem;

impl PolicyFiles for Filesystem {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn trust_pins(&self, path: &Path) -> Result<TrustPins, PinError> {
        TrustPins::load(path)
    }
}

impl Policy {
    /// Reads a policy file; relative `root_file` and `token_file` paths are relative to its
    /// directory. A `root_file` that cannot be read is an error.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        Self::load_with(path, RootFiles::Required)
    }

    /// [`Policy::load`], with `root_files` saying whether a `root_file` that cannot be read
    /// fails it.
    pub fn load_with(path: &Path, root_files: RootFiles) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|error| PolicyError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse_with(&text, Self::base_of(path), root_files)
    }

    /// The directory relative paths in the policy file `path` are read from.
    pub fn base_of(path: &Path) -> &Path {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// Every `root_file` that policy text names, and its `trust_pins` file, resolved against
    /// `base`, as far as the text can be read (nothing when it is not TOML): what to watch
    /// for changes even when the policy does not load.
    pub fn named_root_files(text: &str, base: &Path) -> Vec<PathBuf> {
        toml::from_str::<RawPolicy>(text)
            .map(|raw| {
                raw.rules
                    .iter()
                    .flat_map(|r| r.root_file.iter().chain(r.notary_root_files()))
                    .map(|p| base.join(p))
                    .chain(raw.trust_pins.as_ref().map(|p| base.join(p)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `verify` rules whose `root_file` could not be read (only with
    /// [`RootFiles::MayBeMissing`]): each rule's pattern and why.
    pub fn unavailable_roots(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rules
            .iter()
            .filter_map(|r| Some((r.pattern.as_str(), r.root_unavailable.as_deref()?)))
    }

    /// What is allowed but unwise in this policy, for people: a token sent over plain
    /// `http://` to a host other than loopback, where anyone on the network path can read it
    /// (a service mesh that encrypts pod traffic may make that acceptable, so it is a
    /// warning, not an error).
    pub fn warnings(&self) -> Vec<String> {
        self.servers
            .iter()
            .filter(|(url, _)| url.starts_with("http://") && !is_loopback_url(url))
            .map(|(url, t)| {
                if t.is_login() {
                    format!(
                        "server {url}: its username and password are not sent over http:// off loopback (anyone on the network could answer for it and name a token service of theirs), so tokens are asked anonymously; use https://"
                    )
                } else {
                    format!(
                        "server {url}: its token travels in clear over http://; use https:// unless the network path is encrypted"
                    )
                }
            })
            .collect()
    }

    /// The token sent to `server` (a base URL as rules write it), if a `[[server]]` table
    /// names it.
    pub fn token_for(&self, server: &str) -> Option<&Arc<ServerToken>> {
        self.servers.get(server.trim_end_matches('/'))
    }

    /// Parses policy text; relative `root_file` and `token_file` paths are resolved against
    /// `base`. A `root_file` that cannot be read is an error.
    pub fn parse(text: &str, base: &Path) -> Result<Self, PolicyError> {
        Self::parse_with(text, base, RootFiles::Required)
    }

    /// [`Policy::parse`], with `root_files` saying whether a `root_file` that cannot be read
    /// fails it.
    pub fn parse_with(text: &str, base: &Path, root_files: RootFiles) -> Result<Self, PolicyError> {
        Self::parse_from(text, base, root_files, &Filesystem)
    }

    /// [`Policy::parse_with`], reading the files the policy names from `files`.
    pub(crate) fn parse_from(
        text: &str,
        base: &Path,
        root_files: RootFiles,
        files: &dyn PolicyFiles,
    ) -> Result<Self, PolicyError> {
        let raw: RawPolicy =
            toml::from_str(text).map_err(|e| PolicyError::Parse(TomlError::new(&e, text)))?;
        let mut named_roots = Vec::new();
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.iter().enumerate() {
            let fail = |message: &str| PolicyError::Rule {
                index: i + 1,
                pattern: r.pattern.clone(),
                message: message.to_owned(),
            };
            let pattern = NamePattern::parse(&r.pattern).map_err(|e| fail(&e.to_string()))?;
            let mut unavailable = None;
            let trust = match r.action {
                Action::Verify if r.notary.is_some() => {
                    match notary_source(r, &pattern, base, root_files, files, &mut named_roots)
                        .map_err(|m| fail(&m))?
                    {
                        Ok(source) => Some(source),
                        Err(why) => {
                            unavailable = Some(why);
                            None
                        }
                    }
                }
                Action::Verify => {
                    if r.notary_root.is_some() || r.notary_roots.is_some() {
                        return Err(fail(
                            "`notary_root` and `notary_roots` pin Notary roots, for notary rules \
                             (`notary = …`); a vouch rule's root is its `root_file`, its \
                             `root_inline` or the policy's `trust_pins`",
                        ));
                    }
                    let read_from = r.source.unwrap_or_default();
                    let server =
                        match (&r.server, read_from) {
                            (Some(s), _) => s.clone(),
                            (None, ReadFrom::Registry) => REGISTRY_ONLY.to_owned(),
                            (None, ReadFrom::Server) => {
                                return Err(fail(
                                    "a verify rule needs `server`, or `source = \"registry\"`",
                                ))
                            }
                            (None, ReadFrom::ServerThenRegistry) => return Err(fail(
                                "`source = \"server-then-registry\"` needs the `server` to read \
                                 first",
                            )),
                        };
                    if read_from == ReadFrom::ServerThenRegistry
                        && !(server.starts_with("https://") || server.starts_with("http://"))
                    {
                        return Err(fail(
                            "`source = \"server-then-registry\"` falls back from an http:// or \
                             https:// server",
                        ));
                    }
                    let pinned = |bytes: Vec<u8>, what: &str| {
                        PinnedRoot::new(bytes)
                            .map(|r| Some(Anchor::Root(r)))
                            .map_err(|e| fail(&format!("{what}: {e}")))
                    };
                    // `None`: the root file cannot be read (the rule is unavailable until
                    // it can); `Some(None)`: the policy's trust pins anchor each repository.
                    let anchor = match (&r.root_file, &r.root_inline) {
                        (Some(p), None) => {
                            let p = base.join(p);
                            named_roots.push(p.clone());
                            match files.read(&p) {
                                Ok(bytes) => {
                                    Some(pinned(bytes, &format!("root_file {}", p.display()))?)
                                }
                                Err(e) => {
                                    let why = format!("cannot read root_file {}: {e}", p.display());
                                    if root_files == RootFiles::Required {
                                        return Err(fail(&why));
                                    }
                                    unavailable = Some(why);
                                    None
                                }
                            }
                        }
                        (None, Some(inline)) => {
                            Some(pinned(inline.as_bytes().to_vec(), "root_inline")?)
                        }
                        (None, None) if raw.trust_pins.is_some() => Some(None),
                        _ => return Err(fail(
                            "a verify rule needs exactly one of `root_file` and `root_inline`, \
                                 or neither with the policy's `trust_pins`",
                        )),
                    };
                    let required_roles = r
                        .required_roles
                        .iter()
                        .map(RawRequiredRole::path)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|m| fail(&m))?;
                    for (i, a) in required_roles.iter().enumerate() {
                        if let Some(b) = required_roles[..i]
                            .iter()
                            .find(|b| !a.implies(b) && !b.implies(a))
                        {
                            return Err(fail(&format!(
                                "required_roles: {b} and {a} can never both hold: an image is \
                                 vouched for through one delegation path"
                            )));
                        }
                    }
                    anchor.map(|anchor| TrustSource {
                        server: server.trim_end_matches('/').to_owned(),
                        gun: r.gun.clone().unwrap_or_else(|| "{name}".to_owned()),
                        anchor,
                        required_roles,
                        notary: None,
                        read_from,
                    })
                }
                Action::Allow | Action::Deny => {
                    if r.server.is_some()
                        || r.root_file.is_some()
                        || r.root_inline.is_some()
                        || r.gun.is_some()
                        || !r.required_roles.is_empty()
                        || r.notary.is_some()
                        || r.notary_root.is_some()
                        || r.notary_roots.is_some()
                        || r.source.is_some()
                    {
                        return Err(fail("trust settings are only for `verify` rules"));
                    }
                    None
                }
            };
            rules.push(Rule {
                pattern,
                action: r.action,
                trust,
                root_unavailable: unavailable,
            });
        }
        let servers = servers(raw.servers, &raw.rules, base)?;
        let registries = registries(raw.insecure_registries, raw.registries, &rules, base)?;
        if let Some(bad) = raw
            .exempt_namespaces
            .iter()
            .find(|ns| !is_namespace_name(ns))
        {
            return Err(PolicyError::ExemptNamespace(bad.clone()));
        }
        let trust_pins = match &raw.trust_pins {
            Some(p) => {
                // Watched for changes with the root files, even when it does not load.
                named_roots.push(base.join(p));
                let pins = files.trust_pins(&base.join(p)).map_err(PolicyError::Pins)?;
                named_roots.extend(pins.files().iter().skip(1).cloned());
                Some(pins)
            }
            None => None,
        };
        Ok(Policy {
            trust_pins,
            mode: raw.mode,
            exempt_namespaces: raw.exempt_namespaces.into_iter().collect(),
            refresh_interval: raw
                .refresh_interval_secs
                .map_or(DEFAULT_REFRESH, Duration::from_secs),
            deadline: raw
                .deadline_ms
                .map_or(DEFAULT_DEADLINE, Duration::from_millis),
            rules,
            servers,
            root_files: named_roots,
            follow_events: raw.follow_events.unwrap_or(true),
            registries,
        })
    }

    /// The trust servers whose event streams the webhook follows: with `follow_events` on,
    /// every distinct `http(s)://` vouch server a `verify` rule names (not Notary servers,
    /// which have no event stream, nor `file://` sources); with it off, none.
    pub fn followed_servers(&self) -> BTreeSet<String> {
        if !self.follow_events {
            return BTreeSet::new();
        }
        self.rules
            .iter()
            .filter(|r| r.action == Action::Verify)
            .filter_map(|r| r.trust.as_ref())
            .filter(|t| t.notary.is_none())
            .filter(|t| t.server.starts_with("https://") || t.server.starts_with("http://"))
            .map(|t| t.server.clone())
            .collect()
    }

    /// A summary of the policy for people: its settings, one line per rule and per
    /// server (never a token).
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "mode {:?}, refresh every {} s, deadline {} ms, {} rule(s), exempt namespaces: {}",
            self.mode,
            self.refresh_interval.as_secs(),
            self.deadline.as_millis(),
            self.rules.len(),
            if self.exempt_namespaces.is_empty() {
                "none".to_owned()
            } else {
                self.exempt_namespaces
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        for (i, r) in self.rules.iter().enumerate() {
            let _ = write!(out, "rule {}: {} -> {:?}", i + 1, r.pattern, r.action);
            if let Some(t) = r.trust.as_ref().filter(|t| t.notary.is_some()) {
                let _ = write!(
                    out,
                    " against the Notary server {} (GUN {}",
                    t.server, t.gun
                );
                if let Some(n) = &t.notary {
                    match &n.roots {
                        NotaryRoots::One(root) => {
                            let _ = write!(out, ", notary root {}", root.origin());
                        }
                        NotaryRoots::PerGun(m) => {
                            let each: Vec<String> = m
                                .iter()
                                .map(|(g, r)| format!("{g}: {}", r.origin()))
                                .collect();
                            let _ = write!(out, ", notary roots {}", each.join(", "));
                        }
                    }
                    if !n.required_roles.is_empty() {
                        let _ = write!(out, ", signed by {}", n.required_roles.join(" or "));
                    }
                }
                out.push(')');
                if self.token_for(&t.server).is_none() {
                    out.push_str(", without a token");
                }
            } else if let Some(t) = &r.trust {
                let anchor = match &t.anchor {
                    Some(a) => a.describe(),
                    None => "anchored by trust_pins".to_owned(),
                };
                match t.read_from {
                    ReadFrom::Server => {
                        let _ = write!(out, " against {} (GUN {}, {anchor})", t.server, t.gun);
                    }
                    ReadFrom::Registry => {
                        let _ = write!(
                            out,
                            " against the trust artifact in the image's registry repository (GUN {}, {anchor})",
                            t.gun
                        );
                    }
                    ReadFrom::ServerThenRegistry => {
                        let _ = write!(
                            out,
                            " against {}, else the trust artifact in the image's registry repository (GUN {}, {anchor})",
                            t.server, t.gun
                        );
                    }
                }
                if !t.required_roles.is_empty() {
                    let roles: Vec<String> =
                        t.required_roles.iter().map(ToString::to_string).collect();
                    let _ = write!(out, ", through {}", roles.join(" and "));
                }
                if t.server != REGISTRY_ONLY && self.token_for(&t.server).is_none() {
                    out.push_str(", without a token");
                }
            }
            if let Some(why) = &r.root_unavailable {
                let _ = write!(out, " (unavailable: {why})");
            }
            out.push('\n');
        }
        for (url, token) in &self.servers {
            if token.is_login() {
                let _ = writeln!(out, "server {url}: token flow with {}", token.describe());
            } else {
                let _ = writeln!(out, "server {url}: token from {}", token.describe());
            }
        }
        let followed = self.followed_servers();
        if !self.follow_events {
            out.push_str("events: not followed (follow_events = false)\n");
        } else if followed.is_empty() {
            out.push_str("events: no vouch server to follow\n");
        }
        for url in &followed {
            let _ = writeln!(
                out,
                "events: following {url} (GET /v2/_trust/events, needs a token with a `*` pull scope)"
            );
        }
        for host in &self.registries.insecure {
            let _ = writeln!(out, "registry {host}: plain HTTP (insecure_registries)");
        }
        for (host, login) in &self.registries.logins {
            let _ = match login {
                RegistryLogin::DockerConfig(f) => writeln!(
                    out,
                    "registry {host}: credentials from docker_config_file {}",
                    f.display()
                ),
                RegistryLogin::Password { password_file, .. } => writeln!(
                    out,
                    "registry {host}: the username and password_file {}",
                    password_file.display()
                ),
            };
        }
        if let Some(pins) = &self.trust_pins {
            for rule in pins.rules() {
                let _ = writeln!(out, "pin {}: {}", rule.origin, rule.anchor.describe());
            }
        }
        out
    }

    /// The rule for `image`: the most specific one matching its canonical name (ties: the
    /// first), or `None`.
    pub fn rule_for(&self, image: &ImageRef) -> Option<&Rule> {
        let name = image.canonical_name();
        let mut best: Option<&Rule> = None;
        for rule in &self.rules {
            if rule.pattern.matches(name)
                && best.is_none_or(|b| rule.pattern.specificity() > b.pattern.specificity())
            {
                best = Some(rule);
            }
        }
        best
    }

    /// The repository whose trust `gun` has: the source a `trust_from` pin maps it to, else
    /// `gun` itself. `Err` says why a mapping cannot be followed (it leads to a repository
    /// mapped again). A rule's own root (`root_file`, `root_inline`) anchors the rule's GUN
    /// as it is: mappings are the trust pins' and apply to the repositories they anchor.
    pub fn trusted_as(&self, source: &TrustSource, gun: Gun) -> Result<Gun, String> {
        if source.anchor.is_some() {
            return Ok(gun);
        }
        match self.trust_pins.as_ref().map(|p| p.trust_source(&gun)) {
            None | Some(Ok(None)) => Ok(gun),
            Some(Ok(Some(mapped))) => Ok(mapped.source),
            Some(Err(e)) => Err(format!("trust_from: {e}")),
        }
    }

    /// Where trust in `gun` starts under `source`: the rule's own root, else the anchor the
    /// policy's trust pins give the GUN; `Err` names what is missing.
    pub fn anchor_for(&self, source: &TrustSource, gun: &Gun) -> Result<Anchor, String> {
        if let Some(a) = &source.anchor {
            return Ok(a.clone());
        }
        match self.trust_pins.as_ref().and_then(|p| p.for_gun(gun)) {
            Some(rule) => Ok(rule.anchor.clone()),
            None => Err(format!(
                "no trust pin covers {gun}: add a [[pin]] for it to the policy's trust_pins (for \
                 an image promoted or copied from another repository, a [[pin]] with trust_from \
                 naming that repository)"
            )),
        }
    }

    /// True when requests in `namespace` are admitted untouched: `namespace` is exactly
    /// one of the exempt namespaces (no case folding, trimming or patterns).
    pub fn is_exempt(&self, namespace: Option<&str>) -> bool {
        namespace.is_some_and(|ns| self.exempt_namespaces.contains(ns))
    }
}

/// The trust source of a `verify` rule with `notary = …`: `Ok(Ok(source))`, or
/// `Ok(Err(why))` when a Notary root file cannot be read and `root_files` allows that (the
/// rule is then unavailable), or `Err(message)` for an inconsistent rule. Every root file
/// it names is added to `named_roots` (to watch).
fn notary_source(
    r: &RawRule,
    pattern: &NamePattern,
    base: &Path,
    root_files: RootFiles,
    files: &dyn PolicyFiles,
    named_roots: &mut Vec<PathBuf>,
) -> Result<Result<TrustSource, String>, String> {
    let notary = r
        .notary
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    if r.source.is_some() {
        return Err(
            "`source` chooses where a vouch rule reads trust; a notary rule reads its \
                    Notary server"
                .to_owned(),
        );
    }
    if r.server.is_some() {
        return Err(
            "a verify rule reads either a vouch `server` or a `notary` server, not both".to_owned(),
        );
    }
    if r.root_file.is_some() || r.root_inline.is_some() {
        return Err(
            "a notary rule pins Notary roots with `notary_root` or `notary_roots`, not \
                    `root_file` or `root_inline` (those are vouch roots)"
                .to_owned(),
        );
    }
    if !(notary.starts_with("https://") || notary.starts_with("http://")) {
        return Err(format!(
            "notary: {notary:?} is not an http:// or https:// URL"
        ));
    }
    // Deny messages and logs name the server: a password in it would reach whoever
    // creates pods. Not repeated here either.
    let authority = notary.split_once("://").map_or("", |(_, rest)| {
        rest.split(['/', '?', '#']).next().unwrap_or_default()
    });
    if authority.contains('@') {
        return Err(
            "notary: the URL carries credentials (USER:PASSWORD@): give the URL without them, \
             and a token for the server in a [[server]] table (token_file)"
                .to_owned(),
        );
    }
    let mut required_roles = Vec::new();
    for role in &r.required_roles {
        match role {
            RawRequiredRole::Name(name) if vouch_tuf::notary::is_delegation_name(name) => {
                required_roles.push(name.clone());
            }
            _ => {
                return Err(format!(
                    "required_roles: a notary rule names Notary delegations (`targets/releases`), \
                     not {role:?}"
                ))
            }
        }
    }
    // One read per file: its bytes, or why it cannot be read (fatal unless allowed).
    let mut unavailable = None;
    let mut read = |p: &PathBuf, gun: Option<&Gun>| -> Result<Option<NotaryRoot>, String> {
        let path = base.join(p);
        named_roots.push(path.clone());
        let what = format!("notary root {}", path.display());
        match files.read(&path) {
            Ok(bytes) => {
                let root = NotaryRoot::new(bytes, path.display().to_string())
                    .map_err(|e| format!("{what} is not a Notary root: {e}"))?;
                if let Some(gun) = gun {
                    root.check_for(gun)
                        .map_err(|e| format!("{what} is not a usable root for {gun}: {e}"))?;
                }
                Ok(Some(root))
            }
            Err(e) => {
                let why = format!("cannot read {what}: {e}");
                if root_files == RootFiles::Required {
                    return Err(why);
                }
                unavailable.get_or_insert(why);
                Ok(None)
            }
        }
    };
    let template = r.gun.as_deref().unwrap_or("{name}");
    // The one GUN a `notary_root` pins, when the rule says which: a literal `gun`, or a
    // literal pattern under the default `{name}`. Otherwise only the root's shape is checked
    // here, and its signatures on each refresh.
    let one_gun = if !template.contains('{') {
        Some(template.to_owned())
    } else if template == "{name}" && !pattern.as_str().contains(['*', '?']) {
        Some(pattern.as_str().to_owned())
    } else {
        None
    };
    let one_gun = one_gun
        .map(|g| Gun::new(&g).map_err(|e| format!("gun {g:?}: {e}")))
        .transpose()?;
    let roots = match (&r.notary_root, &r.notary_roots) {
        (Some(p), None) => read(p, one_gun.as_ref())?.map(NotaryRoots::One),
        (None, Some(table)) if !table.is_empty() => {
            let mut roots = BTreeMap::new();
            let mut complete = true;
            for (gun, p) in table {
                let gun = Gun::new(gun).map_err(|e| format!("notary_roots: {gun:?}: {e}"))?;
                match read(p, Some(&gun))? {
                    Some(root) => {
                        roots.insert(gun, root);
                    }
                    None => complete = false,
                }
            }
            complete.then_some(NotaryRoots::PerGun(roots))
        }
        _ => {
            return Err(
                "a notary rule needs its pinned Notary root: exactly one of \
                        `notary_root` (a file) and `notary_roots` (a table of GUN = file)"
                    .to_owned(),
            )
        }
    };
    let Some(roots) = roots else {
        return Ok(Err(unavailable.unwrap_or_default()));
    };
    Ok(Ok(TrustSource {
        server: notary.to_owned(),
        gun: r.gun.clone().unwrap_or_else(|| "{name}".to_owned()),
        anchor: None,
        required_roles: Vec::new(),
        read_from: ReadFrom::Server,
        notary: Some(NotarySource {
            roots,
            required_roles,
        }),
    }))
}

/// The `[[server]]` tables: each names a server some rule uses, once, with exactly one of
/// `token`, `token_file`, or (for a Notary server) `username` with `password_file`.
fn servers(
    raw: Vec<RawServer>,
    rules: &[RawRule],
    base: &Path,
) -> Result<BTreeMap<String, Arc<ServerToken>>, PolicyError> {
    let used: BTreeSet<&str> = rules
        .iter()
        .filter_map(|r| Some(r.server_url()?.trim_end_matches('/')))
        .collect();
    let notary: BTreeSet<&str> = rules
        .iter()
        .filter_map(|r| Some(r.notary.as_deref()?.trim_end_matches('/')))
        .collect();
    let mut out = BTreeMap::new();
    for s in raw {
        let url = s.url.trim_end_matches('/').to_owned();
        let fail = |message: &str| PolicyError::Server {
            url: s.url.clone(),
            message: message.to_owned(),
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(fail(
                "tokens are sent to http:// and https:// trust servers only",
            ));
        }
        if !used.contains(url.as_str()) {
            return Err(fail(
                "no rule uses this server (rules name it by the same URL in `server = …`)",
            ));
        }
        let token =
            match (s.token, s.token_file, s.username, s.password_file) {
                (Some(t), None, None, None) => {
                    if let Some(why) = check_token(&t) {
                        return Err(fail(&format!("token: {why}")));
                    }
                    ServerToken::inline(t)
                }
                (None, Some(p), None, None) => ServerToken::file(base.join(p)),
                (None, None, Some(user), Some(p)) => {
                    if !notary.contains(url.as_str()) {
                        return Err(fail(
                        "`username` and `password_file` are a login for a Notary server's token \
                         service (a rule's `notary = …`); a vouch server takes `token_file`",
                    ));
                    }
                    if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
                        return Err(fail(
                        "username: a user name is not empty and has no ':' or control characters",
                    ));
                    }
                    ServerToken::login(user, base.join(p))
                }
                (None, None, Some(_), None) | (None, None, None, Some(_)) => {
                    return Err(fail("`username` and `password_file` go together"))
                }
                _ => return Err(fail(
                    "give exactly one of `token`, `token_file`, or `username` with `password_file`",
                )),
            };
        if out.insert(url, Arc::new(token)).is_some() {
            return Err(fail("a second [[server]] table for this URL"));
        }
    }
    Ok(out)
}

/// The registry access of the policy: `insecure_registries` and the `[[registry]]` tables,
/// checked as `[[server]]` tables are: a table for a registry no registry-reading rule can
/// name, two tables for one registry, a table with neither or both of `docker_config_file`
/// and the login, are refused.
fn registries(
    insecure: Vec<String>,
    raw: Vec<RawRegistry>,
    rules: &[Rule],
    base: &Path,
) -> Result<RegistryAccess, PolicyError> {
    let reading: Vec<&NamePattern> = rules
        .iter()
        .filter(|r| {
            r.trust
                .as_ref()
                .is_some_and(|t| t.read_from.reads_registry())
        })
        .map(|r| &r.pattern)
        .collect();
    let host_ok = |h: &str| {
        !h.is_empty()
            && !h.contains(['/', '@', '?', '#'])
            && !h.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    if let Some(bad) = insecure.iter().find(|h| !host_ok(h)) {
        return Err(PolicyError::Registry {
            host: bad.clone(),
            message: "insecure_registries: expected HOST or HOST:PORT".to_owned(),
        });
    }
    let mut logins = BTreeMap::new();
    for r in raw {
        let host = r.host.to_ascii_lowercase();
        let fail = |message: &str| PolicyError::Registry {
            host: r.host.clone(),
            message: message.to_owned(),
        };
        if !host_ok(&host) {
            return Err(fail(
                "expected the registry as images name it, HOST or HOST:PORT",
            ));
        }
        // The registry is the first component of a canonical pattern.
        let named = reading.iter().any(|p| {
            let first = p.as_str().split('/').next().unwrap_or_default();
            glob_match(first.as_bytes(), host.as_bytes()) || first.starts_with("**")
        });
        if !named {
            return Err(fail(
                "no rule reads this registry (a verify rule with `source = \"registry\"` or \
                 \"server-then-registry\" whose pattern names it)",
            ));
        }
        let login = match (r.docker_config_file, r.username, r.password_file) {
            (Some(f), None, None) => RegistryLogin::DockerConfig(base.join(f)),
            (None, Some(user), Some(p)) => {
                if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
                    return Err(fail(
                        "username: a user name is not empty and has no ':' or control characters",
                    ));
                }
                RegistryLogin::Password {
                    username: user,
                    password_file: base.join(p),
                }
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(fail("`username` and `password_file` go together"))
            }
            _ => {
                return Err(fail(
                    "give exactly one of `docker_config_file`, or `username` with \
                     `password_file` (a registry without a table is asked anonymously)",
                ))
            }
        };
        if logins.insert(host, login).is_some() {
            return Err(fail("a second [[registry]] table for this registry"));
        }
    }
    Ok(RegistryAccess { insecure, logins })
}

/// A Kubernetes namespace name: a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most
/// 63 characters).
fn is_namespace_name(ns: &str) -> bool {
    let b = ns.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Root metadata signed by its own (fresh) root key, as a JSON string.
    fn root() -> &'static str {
        use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
        use vouch_tuf::metadata::{Key, Metadata, Root};
        use vouch_tuf::types::TopLevelRole;
        static ROOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        ROOT.get_or_init(|| {
            let sk = PrivateKey::generate(Algorithm::Ed25519).unwrap();
            let mut root = Root::new(vouch_tuf::time::Timestamp::from_unix(4_000_000_000));
            for role in TopLevelRole::ALL {
                root.add_key(role, Key::from_verifying_key(&sk.verifying_key()));
            }
            let md = Metadata::signed_by(root, &[&sk as &dyn Signer]).unwrap();
            String::from_utf8(md.to_bytes()).unwrap()
        })
    }

    /// Parses `text` with every `ROOT_JSON` replaced by a real root.
    fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse(&text.replace("ROOT_JSON", root()), Path::new("."))
    }

    fn policy(text: &str) -> Policy {
        parse(text).unwrap()
    }

    #[test]
    fn a_rule_reads_trust_from_the_server_the_registry_or_both() {
        let rule = |extra: &str| {
            format!(
                "[[rule]]\npattern = \"reg.example/team/**\"\naction = \"verify\"\n\
                 root_inline = 'ROOT_JSON'\n{extra}"
            )
        };
        let trust = |p: &Policy| p.rules[0].trust.clone().unwrap();
        let p = policy(&rule("server = \"https://v.example/\"\n"));
        assert_eq!(trust(&p).read_from, ReadFrom::Server);
        let p = policy(&rule("source = \"registry\"\n"));
        assert_eq!(trust(&p).read_from, ReadFrom::Registry);
        // No server: its state is kept under the fixed registry key, and no events followed.
        assert_eq!(trust(&p).server, REGISTRY_ONLY);
        assert!(p.followed_servers().is_empty());
        assert!(p
            .summary()
            .contains("trust artifact in the image's registry repository"));
        assert!(!p.summary().contains("without a token"), "{}", p.summary());
        let p = policy(&rule(
            "source = \"server-then-registry\"\nserver = \"https://v.example\"\n",
        ));
        assert_eq!(trust(&p).read_from, ReadFrom::ServerThenRegistry);
        assert_eq!(trust(&p).server, "https://v.example");
        assert_eq!(
            p.followed_servers().into_iter().collect::<Vec<_>>(),
            ["https://v.example"]
        );
        for (extra, problem) in [
            ("", "needs `server`, or `source = \"registry\"`"),
            ("source = \"server-then-registry\"\n", "needs the `server`"),
            (
                "source = \"server-then-registry\"\nserver = \"file:///m\"\n",
                "http:// or https://",
            ),
            ("source = \"mirror\"\n", "unknown variant `mirror`"),
        ] {
            let e = parse(&rule(extra)).unwrap_err().to_string();
            assert!(e.contains(problem), "{extra}: {e}");
        }
        let e = parse("[[rule]]\npattern = \"**\"\naction = \"allow\"\nsource = \"registry\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only for `verify` rules"), "{e}");
    }

    #[test]
    fn registry_tables_give_the_login_of_the_registries_rules_read() {
        let rule = "[[rule]]\npattern = \"reg.example:5000/team/**\"\naction = \"verify\"\n\
                    source = \"registry\"\nroot_inline = 'ROOT_JSON'\n";
        let dir = Path::new("/etc/vouch");
        let p = Policy::parse(
            &format!(
                "insecure_registries = [\"reg.example:5000\"]\n{rule}\
                 [[registry]]\nhost = \"REG.example:5000\"\ndocker_config_file = \"pull/.dockerconfigjson\"\n"
            )
            .replace("ROOT_JSON", root()),
            dir,
        )
        .unwrap();
        assert_eq!(p.registries.insecure, ["reg.example:5000"]);
        assert_eq!(
            p.registries.logins["reg.example:5000"],
            RegistryLogin::DockerConfig(dir.join("pull/.dockerconfigjson"))
        );
        assert!(p.summary().contains(
            "registry reg.example:5000: credentials from docker_config_file /etc/vouch/pull/.dockerconfigjson"
        ));
        let p = policy(&format!(
            "{rule}[[registry]]\nhost = \"reg.example:5000\"\nusername = \"robot\"\npassword_file = \"p\"\n"
        ));
        assert!(matches!(
            &p.registries.logins["reg.example:5000"],
            RegistryLogin::Password { username, .. } if username == "robot"
        ));
        for (tables, problem) in [
            (
                "[[registry]]\nhost = \"other.example\"\ndocker_config_file = \"d\"\n",
                "no rule reads this registry",
            ),
            ("[[registry]]\nhost = \"reg.example:5000\"\n", "exactly one of"),
            (
                "[[registry]]\nhost = \"reg.example:5000\"\ndocker_config_file = \"d\"\nusername = \"u\"\npassword_file = \"p\"\n",
                "exactly one of",
            ),
            (
                "[[registry]]\nhost = \"reg.example:5000\"\nusername = \"u\"\n",
                "go together",
            ),
            (
                "[[registry]]\nhost = \"reg.example:5000\"\nusername = \"a:b\"\npassword_file = \"p\"\n",
                "no ':'",
            ),
            (
                "[[registry]]\nhost = \"reg.example:5000\"\ndocker_config_file = \"d\"\n\
                 [[registry]]\nhost = \"reg.example:5000\"\ndocker_config_file = \"e\"\n",
                "a second [[registry]] table",
            ),
            (
                "[[registry]]\nhost = \"https://reg.example:5000\"\ndocker_config_file = \"d\"\n",
                "HOST or HOST:PORT",
            ),
            (
                "[[registry]]\nhost = \"reg.example:5000\"\nusername = \"u\"\npassword = \"s3cret\"\n",
                "unknown field `password`",
            ),
            ("insecure_registries = [\"http://reg\"]\n", "HOST or HOST:PORT"),
        ] {
            let text = match tables.strip_prefix("insecure_registries") {
                Some(_) => format!("{tables}{rule}"),
                None => format!("{rule}{tables}"),
            };
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(problem), "{tables}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        // A rule reading only the server uses no registry table.
        let e = parse(
            "[[rule]]\npattern = \"reg.example:5000/**\"\naction = \"verify\"\nserver = \"https://v\"\n\
             root_inline = 'ROOT_JSON'\n[[registry]]\nhost = \"reg.example:5000\"\ndocker_config_file = \"d\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no rule reads this registry"), "{e}");
    }

    #[test]
    fn most_specific_rule_wins_then_first() {
        let p = policy(
            r#"
            [[rule]]
            pattern = "**"
            action = "deny"
            [[rule]]
            pattern = "reg.io/org/**"
            action = "verify"
            server = "http://127.0.0.1:1/"
            root_inline = 'ROOT_JSON'
            [[rule]]
            pattern = "reg.io/org/debug-*"
            action = "allow"
            [[rule]]
            pattern = "reg.io/org/debug-?"
            action = "deny"
            "#,
        );
        let rule = |s: &str| p.rule_for(&ImageRef::parse(s).unwrap()).unwrap().action;
        assert_eq!(rule("reg.io/org/app:v1"), Action::Verify);
        assert_eq!(rule("reg.io/org/debug-shell"), Action::Allow);
        // "debug-?" and "debug-*" have the same literal count: the first written wins.
        assert_eq!(rule("reg.io/org/debug-x"), Action::Allow);
        assert_eq!(rule("nginx"), Action::Deny);
        let v = p
            .rule_for(&ImageRef::parse("reg.io/org/app").unwrap())
            .unwrap();
        assert_eq!(v.trust.as_ref().unwrap().server, "http://127.0.0.1:1");
    }

    #[test]
    fn the_vouch_servers_of_verify_rules_are_followed_unless_turned_off() {
        let rules = r#"
            [[rule]]
            pattern = "reg.io/org/**"
            action = "verify"
            server = "http://127.0.0.1:1/"
            root_inline = 'ROOT_JSON'
            [[rule]]
            pattern = "reg.io/team/**"
            action = "verify"
            server = "http://127.0.0.1:1"
            root_inline = 'ROOT_JSON'
            [[rule]]
            pattern = "reg.io/local/**"
            action = "verify"
            server = "file:///srv/trust"
            root_inline = 'ROOT_JSON'
            [[rule]]
            pattern = "reg.io/debug-*"
            action = "allow"
            "#;
        let p = policy(rules);
        assert!(p.follow_events);
        let followed: Vec<String> = p.followed_servers().into_iter().collect();
        assert_eq!(followed, ["http://127.0.0.1:1"]);
        assert!(
            p.summary()
                .contains("events: following http://127.0.0.1:1 "),
            "{}",
            p.summary()
        );
        let off = policy(&format!("follow_events = false\n{rules}"));
        assert!(!off.follow_events);
        assert!(off.followed_servers().is_empty());
        assert!(off
            .summary()
            .contains("events: not followed (follow_events = false)"));
        // Strict as ever: a misspelt key or a wrong type is refused.
        let e = parse(&format!("follow_event = false\n{rules}")).unwrap_err();
        assert!(
            e.to_string().contains("unknown field `follow_event`"),
            "{e}"
        );
        assert!(parse(&format!("follow_events = \"no\"\n{rules}")).is_err());
    }

    #[test]
    fn unmatched_images_have_no_rule() {
        let p = policy("[[rule]]\npattern = \"reg.io/*\"\naction = \"allow\"\n");
        assert!(p
            .rule_for(&ImageRef::parse("other.io/app").unwrap())
            .is_none());
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.refresh_interval, DEFAULT_REFRESH);
        assert_eq!(p.deadline, DEFAULT_DEADLINE);
    }

    #[test]
    fn gun_templates() {
        let p = policy(
            "[[rule]]\npattern = \"**\"\naction = \"verify\"\nserver = \"http://x\"\nroot_inline = 'ROOT_JSON'\ngun = \"mirror.io/{repository}\"\n",
        );
        let img = ImageRef::parse("reg.io/org/app:v1").unwrap();
        let t = p.rule_for(&img).unwrap().trust.clone().unwrap();
        assert_eq!(t.gun_for(&img).unwrap().as_str(), "mirror.io/org/app");
    }

    #[test]
    fn root_files_are_read_relative_to_the_policy_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("roots")).unwrap();
        std::fs::write(dir.path().join("roots/app.json"), root()).unwrap();
        let policy = dir.path().join("policy.toml");
        std::fs::write(
            &policy,
            "mode = \"warn\"\nexempt_namespaces = [\"kube-system\"]\nrefresh_interval_secs = 7\n\
             deadline_ms = 1500\n[[rule]]\npattern = \"**\"\naction = \"verify\"\n\
             server = \"https://vouch.example\"\nroot_file = \"roots/app.json\"\n",
        )
        .unwrap();
        let p = Policy::load(&policy).unwrap();
        assert_eq!(p.mode, Mode::Warn);
        assert!(p.is_exempt(Some("kube-system")));
        assert!(!p.is_exempt(Some("default")) && !p.is_exempt(None));
        assert_eq!(p.refresh_interval, Duration::from_secs(7));
        assert_eq!(p.deadline, Duration::from_millis(1500));
        let Some(Anchor::Root(pinned)) = &p.rules[0].trust.as_ref().unwrap().anchor else {
            panic!("a root anchor")
        };
        assert_eq!(pinned.bytes(), root().as_bytes());
        let missing = policy.with_file_name("missing.toml");
        assert!(matches!(
            Policy::load(&missing),
            Err(PolicyError::Read { .. })
        ));
    }

    #[test]
    fn rules_match_every_spelling_of_an_image() {
        let p = policy(
            "[[rule]]\npattern = \"**\"\naction = \"allow\"\n\
             [[rule]]\npattern = \"REGISTRY.example.com:443/org/debug-*\"\naction = \"deny\"\n\
             [[rule]]\npattern = \"nginx\"\naction = \"deny\"\n",
        );
        assert_eq!(
            p.rules[1].pattern.as_str(),
            "registry.example.com/org/debug-*"
        );
        let rule = |s: &str| p.rule_for(&ImageRef::parse(s).unwrap()).unwrap().action;
        for image in [
            "registry.example.com/org/debug-shell",
            "REGISTRY.EXAMPLE.COM/org/debug-shell:v1",
            "Registry.Example.Com:443/org/debug-shell",
            "nginx",
            "library/nginx:1.25",
            "docker.io/nginx",
            "index.docker.io/library/nginx",
            "registry-1.docker.io/library/nginx",
        ] {
            assert_eq!(rule(image), Action::Deny, "{image}");
        }
        assert_eq!(
            rule("registry.example.com:5000/org/debug-shell"),
            Action::Allow
        );
        assert_eq!(rule("docker.io/org/nginx"), Action::Allow);
    }

    #[test]
    fn exempt_namespaces_are_exact_namespace_names() {
        let p = policy("exempt_namespaces = [\"kube-system\", \"a\"]\n");
        assert!(p.is_exempt(Some("kube-system")) && p.is_exempt(Some("a")));
        for ns in [
            "Kube-System",
            "kube-system ",
            " kube-system",
            "kube-",
            "kube-*",
            "",
        ] {
            assert!(!p.is_exempt(Some(ns)), "{ns:?}");
        }
        for bad in [
            "Kube-System",
            " kube-system",
            "kube-*",
            "",
            "-a",
            &"a".repeat(64),
        ] {
            let text = format!("exempt_namespaces = [\"{bad}\"]\n");
            assert!(
                matches!(
                    Policy::parse(&text, Path::new(".")),
                    Err(PolicyError::ExemptNamespace(ns)) if ns == bad
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn required_roles_are_delegation_paths() {
        let rule = |roles: &str| {
            format!(
                "[[rule]]\npattern = \"**\"\naction = \"verify\"\nserver = \"http://x\"\n\
                 root_inline = 'ROOT_JSON'\nrequired_roles = {roles}\n"
            )
        };
        let paths = |roles: &str| -> Vec<String> {
            policy(&rule(roles)).rules[0]
                .trust
                .as_ref()
                .unwrap()
                .required_roles
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            paths("[\"targets/releases\"]"),
            ["targets -> targets/releases"]
        );
        assert_eq!(
            paths("[\"targets/releases/prod\", \"targets/releases\"]"),
            [
                "targets -> targets/releases -> targets/releases/prod",
                "targets -> targets/releases"
            ]
        );
        assert_eq!(paths("[\"releases\"]"), ["targets -> releases"]);
        assert_eq!(
            paths("[[\"releases\", \"prod\"], \"releases\"]"),
            ["targets -> releases -> prod", "targets -> releases"]
        );
        assert_eq!(
            paths("[[\"targets\", \"targets/releases\"]]"),
            ["targets -> targets/releases"]
        );
        for bad in [
            "[\"targets\"]",
            "[\"root\"]",
            "[\"targets//x\"]",
            "[[]]",
            "[[\"a\", \"a\"]]",
            "[\"targets/releases\", \"targets/dev\"]",
            "[1]",
        ] {
            let e = parse(&rule(bad)).unwrap_err().to_string();
            assert!(e.contains("required_roles"), "{bad}: {e}");
        }
        let e = parse(&rule("[\"targets/a\", \"targets/b\"]"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("can never both hold"), "{e}");
    }

    /// A Notary root on a vouch rule was once ignored: the rule loaded without it, and the
    /// file was not watched (though `named_root_files` listed it). It is refused.
    #[test]
    fn a_notary_root_on_a_vouch_rule_is_refused() {
        for pin in [
            r#"notary_root = "roots/app.json""#,
            r#"notary_roots = { "reg.io/org/app" = "roots/app.json" }"#,
        ] {
            let text = format!(
                "[[rule]]\npattern = \"reg.io/org/app\"\naction = \"verify\"\n\
                 server = \"https://vouch.example.com\"\nroot_inline = 'ROOT_JSON'\n{pin}\n"
            );
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains("for notary rules"), "{err}");
        }
    }

    #[test]
    fn inconsistent_rules_are_refused() {
        for text in [
            "[[rule]]\npattern = \"**\"\naction = \"verify\"\nroot_inline = 'ROOT_JSON'\n",
            "[[rule]]\npattern = \"**\"\naction = \"verify\"\nserver = \"http://x\"\n",
            "[[rule]]\npattern = \"**\"\naction = \"allow\"\nserver = \"http://x\"\n",
            "[[rule]]\npattern = \"**\"\naction = \"maybe\"\n",
            "mode = \"audit\"\n",
            "colour = 1\n",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn server_tables_give_the_token_of_the_server_rules_name() {
        let verify = |server: &str| {
            format!(
                "[[rule]]\npattern = \"**\"\naction = \"verify\"\nserver = \"{server}\"\n\
                 root_inline = 'ROOT_JSON'\n"
            )
        };
        let dir = Path::new("/etc/vouch");
        let p = Policy::parse(
            &format!(
                "{}[[server]]\nurl = \"https://v.example\"\ntoken_file = \"tokens/v\"\n",
                verify("https://v.example/")
            )
            .replace("ROOT_JSON", root()),
            dir,
        )
        .unwrap();
        let t = p.token_for("https://v.example/").unwrap();
        assert_eq!(t.path(), Some(Path::new("/etc/vouch/tokens/v")));
        assert!(p.token_for("https://other.example").is_none());
        assert!(p
            .summary()
            .contains("server https://v.example: token from token_file /etc/vouch/tokens/v"));
        let p = policy(&format!(
            "{}[[server]]\nurl = \"http://v\"\ntoken = \"s3cret\"\n",
            verify("http://v")
        ));
        assert_eq!(
            vouch_verifier::transport::BearerToken::bearer_token(
                &**p.token_for("http://v").unwrap()
            )
            .as_deref(),
            Some("s3cret")
        );
        assert!(!p.summary().contains("s3cret"), "{}", p.summary());
        assert!(!format!("{p:?}").contains("s3cret"));
        for (servers, problem) in [
            ("[[server]]\nurl = \"http://other\"\ntoken = \"t\"\n", "no rule uses this server"),
            ("[[server]]\nurl = \"http://v\"\n", "exactly one of `token`, `token_file`"),
            (
                "[[server]]\nurl = \"http://v\"\nusername = \"u\"\npassword_file = \"p\"\n",
                "a login for a Notary server",
            ),
            (
                "[[server]]\nurl = \"http://v\"\ntoken = \"t\"\ntoken_file = \"f\"\n",
                "exactly one of",
            ),
            (
                "[[server]]\nurl = \"http://v\"\ntoken = \"t\"\n[[server]]\nurl = \"http://v/\"\ntoken = \"u\"\n",
                "a second [[server]] table",
            ),
            ("[[server]]\nurl = \"http://v\"\ntoken = \"a b\"\n", "token: it holds spaces"),
            ("[[server]]\nurl = \"http://v\"\ntoken = \"\"\n", "token: it is empty"),
            ("[[server]]\nurl = \"http://v\"\ntoken_file = \"f\"\nkey = 1\n", "unknown field `key`"),
        ] {
            let e = parse(&format!("{}{servers}", verify("http://v")))
                .unwrap_err()
                .to_string();
            assert!(e.contains(problem), "{servers}: {e}");
        }
        let e = parse(
            "[[rule]]\npattern = \"**\"\naction = \"verify\"\nserver = \"file:///m\"\n\
             root_inline = 'ROOT_JSON'\n[[server]]\nurl = \"file:///m\"\ntoken = \"t\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("http:// and https://"), "{e}");
    }

    #[test]
    fn a_missing_root_file_fails_the_policy_or_leaves_its_rule_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[[rule]]\npattern = \"reg.io/**\"\naction = \"verify\"\nserver = \"http://v\"\n\
                    root_file = \"roots/app.json\"\n[[rule]]\npattern = \"**\"\naction = \"allow\"\n";
        let e = Policy::parse(text, dir.path()).unwrap_err().to_string();
        assert!(
            e.starts_with("rule 1 (reg.io/**): cannot read root_file ")
                && e.contains("roots/app.json"),
            "{e}"
        );
        let p = Policy::parse_with(text, dir.path(), RootFiles::MayBeMissing).unwrap();
        let missing: Vec<_> = p.unavailable_roots().collect();
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].0, "reg.io/**");
        assert!(missing[0].1.contains("roots/app.json"), "{missing:?}");
        assert!(p.rules[0].trust.is_none());
        assert_eq!(p.root_files, [dir.path().join("roots/app.json")]);
        assert_eq!(
            Policy::named_root_files(text, dir.path()),
            [dir.path().join("roots/app.json")]
        );
        std::fs::create_dir(dir.path().join("roots")).unwrap();
        std::fs::write(dir.path().join("roots/app.json"), root()).unwrap();
        let p = Policy::parse_with(text, dir.path(), RootFiles::MayBeMissing).unwrap();
        assert!(p.unavailable_roots().next().is_none());
        // Present but not a signed root: the policy does not load.
        std::fs::write(dir.path().join("roots/app.json"), b"{}").unwrap();
        let e = Policy::parse_with(text, dir.path(), RootFiles::MayBeMissing)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rule 1 (reg.io/**): root_file") && e.contains("not a usable root"),
            "{e}"
        );
    }

    #[test]
    fn a_notary_url_carrying_credentials_is_refused_without_repeating_them() {
        // Deny messages and logs name the server: a password in its URL would reach
        // whoever creates pods.
        let app = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../verifier/tests/fixtures/notary/trust/tuf/example.com/fixtures/app/metadata/root.json");
        for url in [
            "https://alice:s3cret@notary.example",
            "https://s3cret@notary.example",
        ] {
            let e = Policy::parse(
                &format!(
                    "[[rule]]\npattern = \"example.com/fixtures/app\"\naction = \"verify\"\n\
                     notary = \"{url}\"\nnotary_root = \"{}\"\n",
                    app.display()
                ),
                Path::new("."),
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("credentials") && e.contains("[[server]]"), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn a_notary_server_table_may_hold_a_login_for_its_token_service() {
        let app = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../verifier/tests/fixtures/notary/trust/tuf/example.com/fixtures/app/metadata/root.json");
        let policy = |url: &str, server: &str| {
            Policy::parse(
                &format!(
                    "[[rule]]\npattern = \"example.com/fixtures/app\"\naction = \"verify\"\n\
                     notary = \"{url}\"\nnotary_root = \"{}\"\n[[server]]\nurl = \"{url}\"\n{server}",
                    app.display()
                ),
                Path::new("/etc/vouch"),
            )
        };
        let p = policy(
            "https://notary.example",
            "username = \"robot$ci\"\npassword_file = \"secrets/notary\"\n",
        )
        .unwrap();
        let t = p.token_for("https://notary.example/").unwrap();
        assert!(t.is_login());
        assert_eq!(t.path(), Some(Path::new("/etc/vouch/secrets/notary")));
        assert!(
            p.summary().contains(
                "server https://notary.example: token flow with the username and password_file /etc/vouch/secrets/notary"
            ),
            "{}",
            p.summary()
        );
        assert!(p.warnings().is_empty());
        // Over plain HTTP off loopback the login is not sent, and the policy says so.
        let p = policy(
            "http://notary.example",
            "username = \"u\"\npassword_file = \"p\"\n",
        )
        .unwrap();
        assert!(
            p.warnings()[0].contains("not sent over http://"),
            "{:?}",
            p.warnings()
        );
        for (server, problem) in [
            ("username = \"u\"\n", "go together"),
            ("password_file = \"p\"\n", "go together"),
            ("username = \"a:b\"\npassword_file = \"p\"\n", "no ':'"),
            ("username = \"\"\npassword_file = \"p\"\n", "not empty"),
            (
                "username = \"u\"\npassword_file = \"p\"\ntoken_file = \"t\"\n",
                "exactly one of",
            ),
            (
                "username = \"u\"\npassword = \"s3cret\"\n",
                "unknown field `password`",
            ),
        ] {
            let e = policy("https://notary.example", server)
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains(problem), "{server}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn notary_rules_pin_a_notary_root_per_rule_or_per_gun() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../verifier/tests/fixtures/notary/trust/tuf/example.com/fixtures");
        let app = fixtures.join("app/metadata/root.json");
        let rule = |extra: &str| {
            format!(
                "[[rule]]\npattern = \"example.com/fixtures/**\"\naction = \"verify\"\n\
                 notary = \"https://notary.example/\"\n{extra}"
            )
        };
        let p = Policy::parse(
            &rule(&format!(
                "required_roles = [\"targets/releases\"]\n[rule.notary_roots]\n\
                 \"example.com/fixtures/app\" = \"{}\"\n",
                app.display()
            )),
            Path::new("."),
        )
        .unwrap();
        let t = p.rules[0].trust.as_ref().unwrap();
        assert_eq!(t.server, "https://notary.example");
        assert!(t.anchor.is_none() && t.required_roles.is_empty());
        let n = t.notary.as_ref().unwrap();
        assert_eq!(n.required_roles, ["targets/releases"]);
        let gun = |g: &str| Gun::new(g).unwrap();
        let root = n.root_for(&gun("example.com/fixtures/app")).unwrap();
        assert_eq!(root.bytes(), std::fs::read(&app).unwrap());
        assert!(root.id().starts_with("notary-"));
        let e = n.root_for(&gun("example.com/fixtures/other")).unwrap_err();
        assert!(e.contains("no Notary root is pinned"), "{e}");
        assert_eq!(p.root_files, std::slice::from_ref(&app));
        assert!(p
            .summary()
            .contains("against the Notary server https://notary.example"));
        // One root for a pattern: checked for shape only (the rule's GUNs are not known);
        // for one repository, also against its GUN.
        let one = |pattern: &str| {
            format!(
                "[[rule]]\npattern = \"{pattern}\"\naction = \"verify\"\n\
                 notary = \"https://n\"\nnotary_root = \"{}\"\n",
                app.display()
            )
        };
        assert!(Policy::parse(&one("example.com/fixtures/app"), Path::new(".")).is_ok());
        let e = Policy::parse(&one("example.com/fixtures/other"), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a usable root for example.com/fixtures/other"),
            "{e}"
        );
        let p = Policy::parse(
            &rule(&format!("notary_root = \"{}\"\n", app.display())),
            Path::new("."),
        )
        .unwrap();
        assert!(matches!(
            p.rules[0]
                .trust
                .as_ref()
                .unwrap()
                .notary
                .as_ref()
                .unwrap()
                .roots,
            NotaryRoots::One(_)
        ));
        for (extra, problem) in [
            ("", "needs its pinned Notary root"),
            ("[rule.notary_roots]\n", "needs its pinned Notary root"),
            (
                "notary_root = \"missing.json\"\n",
                "cannot read notary root",
            ),
            (
                "notary_root = \"x\"\nroot_inline = 'ROOT_JSON'\n",
                "not `root_file` or `root_inline`",
            ),
            ("notary_root = \"x\"\nserver = \"https://v\"\n", "not both"),
            (
                "notary_root = \"x\"\nrequired_roles = [[\"releases\"]]\n",
                "names Notary delegations",
            ),
        ] {
            let e = parse(&rule(extra)).unwrap_err().to_string();
            assert!(e.contains(problem), "{extra}: {e}");
        }
        let e = parse("[[rule]]\npattern = \"**\"\naction = \"allow\"\nnotary = \"https://n\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only for `verify` rules"), "{e}");
        // A missing root while serving: the rule is unavailable, and its file watched.
        let p = Policy::parse_with(
            &rule("notary_root = \"missing.json\"\n"),
            Path::new("/nowhere"),
            RootFiles::MayBeMissing,
        )
        .unwrap();
        assert!(p.rules[0].trust.is_none());
        assert!(p
            .unavailable_roots()
            .next()
            .unwrap()
            .1
            .contains("cannot read notary root"));
        assert_eq!(p.root_files, [Path::new("/nowhere/missing.json")]);
    }

    #[test]
    fn a_token_sent_in_clear_beyond_loopback_is_warned_about() {
        let rule = |server: &str| {
            format!(
                "[[rule]]\npattern = \"**\"\naction = \"verify\"\nserver = \"{server}\"\n\
                 root_inline = 'ROOT_JSON'\n[[server]]\nurl = \"{server}\"\ntoken = \"t\"\n"
            )
        };
        for (server, warned) in [
            ("http://vouch.vouch-system.svc", true),
            ("https://vouch.example", false),
            ("http://127.0.0.1:4443", false),
            ("http://localhost:4443", false),
        ] {
            let w = policy(&rule(server)).warnings();
            assert_eq!(!w.is_empty(), warned, "{server}: {w:?}");
            if warned {
                assert!(w[0].contains("travels in clear"), "{w:?}");
            }
        }
    }

    #[test]
    fn toml_errors_never_quote_the_policy() {
        let text = "[[server]]\nurl = \"https://v.example\"\ntoken = \"s3cret-token\"\nmode = \n";
        let e = Policy::parse(text, Path::new(".")).unwrap_err().to_string();
        assert!(!e.contains("s3cret"), "{e}");
        assert!(e.contains("line 4") && e.contains("(mode =)"), "{e}");
        // The line at fault holds the token itself: masked.
        let e = Policy::parse("[[server]]\ntoken = \"s3cret\" x\n", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            !e.contains("s3cret") && e.contains("line 2") && e.contains("token = ***"),
            "{e}"
        );
    }

    #[test]
    fn load_errors_carry_their_cause_once() {
        use std::error::Error as _;
        let dir = tempfile::tempdir().unwrap();
        let read = Policy::load(&dir.path().join("missing.toml")).unwrap_err();
        let parse = Policy::parse("mode = 1\n", Path::new(".")).unwrap_err();
        for e in [read, parse] {
            // The cause is in the message, and not repeated as a source.
            assert!(e.source().is_none(), "{e}");
        }
    }
}
