//! Global options, parsed by clap and validated into a [`Context`] every command reads.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use vouch_verifier::transport::is_loopback_url;
use zeroize::Zeroizing;

use crate::output::Format;
use crate::registry::{Registries, RegistryArgs};
use crate::source::{Location, SourceKind};

/// Options every command accepts.
#[derive(clap::Args, Debug)]
pub struct GlobalArgs {
    /// URL of the vouch server; or oci://REGISTRY/REPO to read a repository's trust from
    /// the registry copy at that location (`vouch mirror --to`).
    #[arg(
        long,
        env = "VOUCH_SERVER",
        global = true,
        default_value = "http://127.0.0.1:4443"
    )]
    pub server: String,
    /// File holding the API token or JWT sent as `Authorization: Bearer` (else $VOUCH_TOKEN,
    /// the token itself; else no token).
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Directory for private keys and trusted metadata [default: ~/.vouch].
    #[arg(long, env = "VOUCH_TRUST_DIR", global = true, value_name = "DIR")]
    pub trust_dir: Option<PathBuf>,
    /// Root metadata file to pin for the repository instead of trusting the server's root
    /// on first use.
    #[arg(long, global = true, value_name = "FILE")]
    pub trust_root: Option<PathBuf>,
    /// Pin file mapping repository patterns to trusted roots or root keys
    /// (trust-roots/README.md), used when a repository is first seen and checked after.
    #[arg(long, env = "VOUCH_TRUST_PINS", global = true, value_name = "FILE")]
    pub trust_pins: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: Format,
    /// Seconds to wait for the server: to connect, and for each exchange with it to finish
    /// (a publish gets ten times as long).
    #[arg(
        long,
        env = "VOUCH_TIMEOUT",
        global = true,
        value_name = "SECONDS",
        default_value_t = DEFAULT_TIMEOUT_SECS,
        value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS)
    )]
    pub timeout: u64,
    /// Where read-only commands read trust from: server, registry (the copy kept beside
    /// the images, `vouch mirror`), or server,registry (the registry copy while the server
    /// is unreachable).
    #[arg(
        long,
        env = "VOUCH_SOURCE",
        global = true,
        value_name = "SOURCE",
        default_value = "server",
        value_parser = SourceKind::parse
    )]
    pub source: SourceKind,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// The default of `--timeout`, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// The largest `--timeout` accepted (a day), in seconds.
pub const MAX_TIMEOUT_SECS: u64 = 86_400;

/// Validated global settings.
pub struct Context {
    /// Server URL without a trailing slash.
    pub server: String,
    /// Bearer token, if any.
    pub token: Option<Zeroizing<String>>,
    /// The trust directory.
    pub trust_dir: PathBuf,
    /// A root to pin on first use, if given.
    pub trust_root: Option<PathBuf>,
    /// The pin file, if given.
    pub trust_pins: Option<PathBuf>,
    /// Output format.
    pub output: Format,
    /// How long to wait for the server (`--timeout`).
    pub timeout: Duration,
    /// Where read-only commands read trust from.
    pub source: SourceKind,
    /// The registry copy `--server oci://REGISTRY/REPO` names, if it does.
    pub oci_location: Option<Location>,
    /// The registry options.
    pub registry: RegistryArgs,
    /// The one registry client of this run, made when first needed, and which registry the
    /// command line's credentials were bound to.
    registries: Mutex<Option<(Arc<Mutex<Registries>>, Bound)>>,
}

/// Which registry the command line's credentials (`--registry-username`) are for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bound {
    /// The one `--registry-host` names.
    Named(String),
    /// The one the command writes to (`promote`'s DST, `mirror`'s destination).
    Written(String),
    /// The first the command reached, for a command that writes to none: a second registry
    /// is refused.
    Reached(String),
}

impl Bound {
    fn registry(&self) -> &str {
        match self {
            Bound::Named(r) | Bound::Written(r) | Bound::Reached(r) => r,
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("trust_dir", &self.trust_dir)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Validates `args`.
    pub fn from_args(args: GlobalArgs) -> anyhow::Result<Self> {
        let server = args.server.trim_end_matches('/').to_owned();
        let (source, oci_location) = match server.strip_prefix("oci://") {
            Some(at) => (
                SourceKind::Registry,
                Some(Location::parse(at, "--server oci://")?),
            ),
            None => (args.source, None),
        };
        if oci_location.is_some() {
            // A registry copy: no vouch server is asked.
        } else if !server.contains("://") {
            bail!(
                "invalid --server URL {server:?}: it has no scheme; add https:// (--server https://{server})"
            );
        }
        let url = reqwest::Url::parse(&server)
            .with_context(|| format!("invalid --server URL {server:?}"))?;
        if oci_location.is_none()
            && (!matches!(url.scheme(), "http" | "https") || url.host_str().is_none())
        {
            bail!("invalid --server URL {server:?}: expected http://HOST[:PORT], https://HOST[:PORT] or oci://REGISTRY/REPO");
        }
        let token = match &args.token_file {
            Some(path) => {
                let t = Zeroizing::new(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read token file {}", path.display()))?,
                );
                let t = Zeroizing::new(t.trim().to_owned());
                if t.is_empty() {
                    bail!("token file {} is empty", path.display());
                }
                Some(t)
            }
            None => std::env::var("VOUCH_TOKEN")
                .ok()
                .map(|t| Zeroizing::new(t.trim().to_owned()))
                .filter(|t| !t.is_empty()),
        };
        if token.is_some() && url.scheme() == "http" && !is_loopback_url(url.as_str()) {
            crate::output::warn(&format!(
                "sending the token to {server} over plain HTTP: anyone on the network can read it; use https://"
            ));
        }
        let trust_dir = match args.trust_dir {
            Some(d) => d,
            None => match std::env::var_os("HOME") {
                Some(home) if !home.is_empty() => PathBuf::from(home).join(".vouch"),
                _ => bail!("HOME is not set: pass --trust-dir or set VOUCH_TRUST_DIR"),
            },
        };
        Ok(Context {
            server,
            token,
            trust_dir,
            trust_root: args.trust_root,
            trust_pins: args.trust_pins.filter(|p| !p.as_os_str().is_empty()),
            output: args.output,
            timeout: Duration::from_secs(args.timeout),
            source,
            oci_location,
            registry: args.registry,
            registries: Mutex::new(None),
        })
    }

    /// The registry client of this run, to reach `registry` (`--insecure-registry`,
    /// `--registry-username` with the password read from stdin once, else the docker
    /// config), shared by everything that reads or writes registries.
    ///
    /// The command line's credentials are for one registry ([`Bound`]): `--registry-host`,
    /// else the one [`Context::writes_to`] declared, else the first registry reached. A
    /// command reaching a second registry with neither is refused rather than guessing:
    /// the password meant for one registry is never offered to another.
    pub fn registries_for(&self, registry: &str) -> anyhow::Result<Arc<Mutex<Registries>>> {
        self.client(registry, false)
    }

    /// As [`Context::registries_for`], for a command that writes to `registry`: unless
    /// `--registry-host` says otherwise, the command line's credentials are for it, and
    /// every other registry the command reads gets the docker config's login. Called before
    /// the command reaches any registry.
    pub fn writes_to(&self, registry: &str) -> anyhow::Result<Arc<Mutex<Registries>>> {
        self.client(registry, true)
    }

    fn client(&self, registry: &str, writes: bool) -> anyhow::Result<Arc<Mutex<Registries>>> {
        let mut made = self
            .registries
            .lock()
            .map_err(|_| anyhow::anyhow!("the registry client failed earlier"))?;
        if let Some((client, bound)) = made.as_ref() {
            if let Bound::Reached(first) = bound {
                if first != registry && self.registry.gives_credentials() {
                    bail!(
                        "--registry-username: this command reaches two registries, {first} and {registry}: name the one the credentials are for with --registry-host (the other gets the login in ~/.docker/config.json)"
                    );
                }
            }
            return Ok(client.clone());
        }
        let bound = match (&self.registry.registry_host, writes) {
            (Some(named), _) => Bound::Named(named.clone()),
            (None, true) => Bound::Written(registry.to_owned()),
            (None, false) => Bound::Reached(registry.to_owned()),
        };
        let client = Arc::new(Mutex::new(crate::registry::open(
            &self.registry,
            bound.registry(),
        )?));
        *made = Some((client.clone(), bound));
        Ok(client)
    }

    /// Where trusted metadata of each repository is cached.
    pub fn cache_dir(&self) -> PathBuf {
        self.trust_dir.join("tuf")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(server: &str) -> GlobalArgs {
        GlobalArgs {
            server: server.to_owned(),
            token_file: None,
            trust_dir: Some(PathBuf::from("/nonexistent/trust")),
            trust_root: None,
            trust_pins: None,
            output: Format::Text,
            timeout: 7,
            source: SourceKind::Server,
            registry: RegistryArgs::default(),
        }
    }

    #[test]
    fn a_server_without_a_scheme_is_told_to_add_one() {
        let e = Context::from_args(args("vouch.example:4443")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid --server URL \"vouch.example:4443\": it has no scheme; add https:// (--server https://vouch.example:4443)"
        );
        let ctx = Context::from_args(args("https://vouch.example:4443/")).unwrap();
        assert_eq!(ctx.server, "https://vouch.example:4443");
        assert_eq!(ctx.timeout, Duration::from_secs(7));
        assert!(Context::from_args(args("ftp://vouch.example")).is_err());
    }

    #[test]
    fn loopback_hosts() {
        for (u, want) in [
            ("http://127.0.0.1:4443", true),
            ("http://[::1]:4443", true),
            ("http://localhost", true),
            ("http://vouch.example", false),
            ("http://10.0.0.1", false),
        ] {
            assert_eq!(is_loopback_url(u), want, "{u}");
        }
    }
}
