//! How a [`Registries`](super::Registries) reaches registries: where credentials come from
//! ([`Login`]), which hosts are reached over plain HTTP, and the timeouts; checked once, when
//! [`RegistryOptions::new`] builds them.
//!
//! What it is not: the credential lookup itself (that is the client's, on first need, with
//! [`super::docker_config`] for docker configuration files), nor a reader of any
//! configuration format: a service or a command line turns its own settings into these.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::registry_auth::Credentials;

/// Default longest a connection to a registry may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default longest one answer may take, as a whole (headers, then body): a registry
/// trickling bytes is cut off here.
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Where credentials for registries come from.
#[derive(Debug, Clone)]
pub enum Login {
    /// Given on the command line (`--registry-username`, the password on stdin) for one
    /// registry: sent to that registry (and the token realm it names) only. Every other
    /// registry a run reaches gets the login of this user's docker config, or none, as with
    /// [`Login::DockerConfig`]`(None)`: a run that reads one registry and writes another
    /// never hands the password meant for one to the other.
    Given {
        /// The registry the credentials are for (`host[:port]` as in image names).
        registry: String,
        /// The credentials.
        credentials: Credentials,
    },
    /// `NOTARY_AUTH` (base64 of `user:password`), for a notary server.
    NotaryAuth(Credentials),
    /// The `auths` of a docker configuration file, read on first need: `None` is this
    /// user's (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; missing is no
    /// credentials), `Some(path)` a file a service names (missing is an error).
    DockerConfig(Option<PathBuf>),
    /// Credentials by registry (`host[:port]` as in image names), e.g. from a service's
    /// configuration file.
    PerRegistry(BTreeMap<String, Credentials>),
    /// No credentials: tokens are asked anonymously.
    Anonymous,
}

impl Login {
    /// True for the sources of the `vouch` command line, whose hints name its flags.
    pub(super) fn is_command_line(&self) -> bool {
        matches!(
            self,
            Login::Given { .. } | Login::NotaryAuth(_) | Login::DockerConfig(None)
        )
    }
}

/// Why [`RegistryOptions`] were refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OptionsError {
    /// An insecure registry that is not `HOST` or `HOST:PORT`.
    #[error("insecure registry {0:?}: expected HOST or HOST:PORT")]
    InsecureHost(String),
    /// A registry of [`Login::PerRegistry`] or [`Login::Given`] that is not `HOST` or
    /// `HOST:PORT`.
    #[error("credentials for {0:?}: expected a registry HOST or HOST:PORT")]
    CredentialsHost(String),
    /// A timeout of zero.
    #[error("the registry {0} timeout must be more than zero")]
    ZeroTimeout(&'static str),
}

/// How a [`Registries`](super::Registries) reaches registries: which hosts over plain HTTP, which credentials,
/// how long a connection and an answer may take. Built only through [`RegistryOptions::new`],
/// which checks the host names.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    pub(super) insecure: Vec<String>,
    pub(super) login: Login,
    pub(super) connect_timeout: Duration,
    pub(super) answer_timeout: Duration,
}

/// True for `host` or `host:port` as registries are named (no scheme, path, user or space).
fn is_host_port(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['/', '@', '?', '#'])
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl RegistryOptions {
    /// Options reaching `insecure` hosts (`HOST`, any port, or `HOST:PORT`) over plain HTTP,
    /// with credentials from `login`, and the default timeouts.
    ///
    /// ```
    /// use vouch_verifier::registry::{Login, RegistryOptions};
    /// let o = RegistryOptions::new(vec!["reg.internal:5000".into()], Login::Anonymous).unwrap();
    /// assert_eq!(o.insecure(), ["reg.internal:5000"]);
    /// assert!(RegistryOptions::new(vec!["http://reg".into()], Login::Anonymous).is_err());
    /// ```
    pub fn new(insecure: Vec<String>, login: Login) -> Result<Self, OptionsError> {
        if let Some(h) = insecure.iter().find(|h| !is_host_port(h)) {
            return Err(OptionsError::InsecureHost(h.clone()));
        }
        match &login {
            Login::PerRegistry(table) => {
                if let Some(h) = table.keys().find(|h| !is_host_port(h)) {
                    return Err(OptionsError::CredentialsHost(h.clone()));
                }
            }
            Login::Given { registry, .. } if !is_host_port(registry) => {
                return Err(OptionsError::CredentialsHost(registry.clone()));
            }
            _ => {}
        }
        Ok(RegistryOptions {
            insecure,
            login,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            answer_timeout: DEFAULT_ANSWER_TIMEOUT,
        })
    }

    /// These options with other timeouts: `connect` for a connection, `answer` for each
    /// whole answer (headers and body); neither may be zero.
    pub fn with_timeouts(
        mut self,
        connect: Duration,
        answer: Duration,
    ) -> Result<Self, OptionsError> {
        if connect.is_zero() {
            return Err(OptionsError::ZeroTimeout("connect"));
        }
        if answer.is_zero() {
            return Err(OptionsError::ZeroTimeout("answer"));
        }
        self.connect_timeout = connect;
        self.answer_timeout = answer;
        Ok(self)
    }

    /// The hosts reached over plain HTTP (besides loopback).
    pub fn insecure(&self) -> &[String] {
        &self.insecure
    }

    /// Where credentials come from.
    pub fn login(&self) -> &Login {
        &self.login
    }

    /// Longest a connection may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Longest one answer may take.
    pub fn answer_timeout(&self) -> Duration {
        self.answer_timeout
    }
}
