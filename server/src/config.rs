//! Server configuration: defaults, a TOML file, `VOUCH_*` environment variables and command
//! line flags, in increasing order of precedence.
//!
//! See `docs/server.md` for every setting.

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
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            anonymous_pull: true,
            realm: "vouch".into(),
            service: "vouch".into(),
            tokens: Vec::new(),
        }
    }
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
                "VOUCH_LOG" => self.log = v,
                "VOUCH_MAX_BODY_BYTES" => self.limits.max_body_bytes = num(&k, &v)?,
                "VOUCH_TIMESTAMP_LIFETIME_SECONDS" => {
                    self.lifetimes.timestamp_seconds = num(&k, &v)?
                }
                "VOUCH_SNAPSHOT_LIFETIME_SECONDS" => self.lifetimes.snapshot_seconds = num(&k, &v)?,
                "VOUCH_ANONYMOUS_PULL" => self.auth.anonymous_pull = boolean(&k, &v)?,
                "VOUCH_AUTH_REALM" => self.auth.realm = v,
                "VOUCH_AUTH_SERVICE" => self.auth.service = v,
                _ => {}
            }
        }
        self.check()
    }

    /// Rejects settings that cannot work.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.lifetimes.timestamp_seconds < 60 || self.lifetimes.snapshot_seconds < 60 {
            return Err(ConfigError("lifetimes must be at least 60 seconds".into()));
        }
        if self.limits.max_body_bytes == 0 {
            return Err(ConfigError("limits.max_body_bytes must be positive".into()));
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

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("vouch.db")
    }

    /// The key-encryption key file.
    pub fn kek_path(&self) -> PathBuf {
        self.data_dir.join("kek")
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
mod tests {
    use super::*;

    #[test]
    fn file_then_env_override() {
        let mut c: Config = toml::from_str(
            r#"
            listen = "0.0.0.0:9000"
            [auth]
            anonymous_pull = false
            [[auth.tokens]]
            name = "ci"
            sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
            scopes = ["example.com/org/*:pull,push"]
            "#,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert!(!c.auth.anonymous_pull);
        c.apply_env([
            ("VOUCH_LISTEN".to_string(), "127.0.0.1:1".to_string()),
            ("VOUCH_ANONYMOUS_PULL".to_string(), "true".to_string()),
            ("UNRELATED".to_string(), "x".to_string()),
        ])
        .unwrap();
        assert_eq!(c.listen.port(), 1);
        assert!(c.auth.anonymous_pull);
    }

    #[test]
    fn rejects_bad_settings() {
        assert!(toml::from_str::<Config>("nonsense = 1").is_err());
        let mut c = Config::default();
        assert!(c
            .apply_env([("VOUCH_MAX_BODY_BYTES".into(), "lots".into())])
            .is_err());
        let mut c = Config::default();
        c.auth.tokens.push(TokenConfig {
            name: "t".into(),
            sha256: "abc".into(),
            scopes: vec![],
        });
        assert!(c.check().is_err());
    }
}
