//! Credentials in docker configuration documents (`~/.docker/config.json` and files of the
//! same shape): the `auths` entry for a registry, as `auth` (base64 of `user:password`) or
//! `username` and `password`.
//!
//! Sans-IO but for [`default_path`], which only reads the environment: the caller reads the
//! file (when a registry first asks) and passes its bytes to [`credentials_from_docker_config`].
//!
//! What it is not: a credential-helper client (`credsStore`, `credHelpers` are ignored), nor
//! a writer of the file. Errors name the entry, never its contents.

use std::path::PathBuf;

use base64ct::{Base64, Encoding};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::registry_auth::Credentials;

/// Where Docker Hub's `docker.io` serves the Distribution API.
pub(crate) const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Why a docker configuration document gave no usable credentials.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DockerConfigError {
    /// The document is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// An `auth` value that is not base64.
    #[error("auths.{registry}.auth is not base64")]
    NotBase64 {
        /// The registry whose entry it is.
        registry: String,
    },
    /// An `auth` value that does not decode to UTF-8.
    #[error("auths.{registry}.auth is not UTF-8")]
    NotUtf8 {
        /// The registry whose entry it is.
        registry: String,
    },
    /// An `auth` value that is not a user name, `:`, then the password.
    #[error("auths.{registry}.auth is not USER:PASSWORD")]
    NotUserPassword {
        /// The registry whose entry it is.
        registry: String,
    },
}

/// The registry a docker config `auths` key names: `https://host/v1/` → `host`.
pub(crate) fn config_key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// The names a registry's credentials may be stored under (Docker Hub has three).
pub(crate) fn registry_names(registry: &str) -> Vec<&str> {
    if registry == "docker.io" {
        vec!["docker.io", "index.docker.io", DOCKER_HUB_API]
    } else {
        vec![registry]
    }
}

/// Credentials for `registry` (`host[:port]` as in image names) in a docker config
/// document; `Ok(None)` when it has none.
///
/// ```
/// use vouch_verifier::registry::docker_config::credentials_from_docker_config;
/// let doc = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"YWxpY2U6cHc="}}}"#;
/// let c = credentials_from_docker_config(doc, "docker.io").unwrap().unwrap();
/// assert_eq!((c.username(), c.password()), ("alice", "pw"));
/// assert!(credentials_from_docker_config(doc, "ghcr.io").unwrap().is_none());
/// ```
pub fn credentials_from_docker_config(
    text: &[u8],
    registry: &str,
) -> Result<Option<Credentials>, DockerConfigError> {
    let doc: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| DockerConfigError::NotJson(e.to_string()))?;
    let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let names = registry_names(registry);
    let entry = auths
        .iter()
        .find(|(k, _)| names.contains(&config_key_host(k)))
        .map(|(_, v)| v);
    let Some(entry) = entry else {
        return Ok(None);
    };
    let named = || registry.to_owned();
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        if !auth.is_empty() {
            let raw = Zeroizing::new(
                Base64::decode_vec(auth.trim())
                    .map_err(|_| DockerConfigError::NotBase64 { registry: named() })?,
            );
            let text = std::str::from_utf8(&raw)
                .map_err(|_| DockerConfigError::NotUtf8 { registry: named() })?;
            let (user, pass) = text
                .split_once(':')
                .filter(|(user, _)| !user.is_empty())
                .ok_or_else(|| DockerConfigError::NotUserPassword { registry: named() })?;
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

/// The docker configuration file of this user: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`; `None` when neither variable is set.
pub fn default_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}
