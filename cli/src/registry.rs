//! The command line's side of the registry client: the registry options of `vouch sign` and
//! `vouch verify` (`--insecure-registry`, `--registry-username` with the password on stdin,
//! for the one registry `--registry-host` names or the command implies) and `NOTARY_AUTH`
//! for notary servers, turned into [`vouch_verifier::registry`]'s [`RegistryOptions`].
//!
//! Which registry the command line's credentials are for is decided once per run by
//! [`crate::context::Context`] (`--registry-host`, else the registry the command writes to,
//! else the one registry it reaches); sending them only there is the verifier's
//! [`Login::Given`].
//!
//! The client itself (manifests and blobs, the `401` challenge and token flow, credentials
//! from `~/.docker/config.json`, plain HTTP for loopback and insecure hosts, the errors and
//! their hints) is the verifier library's [`vouch_verifier::registry`], shared with other
//! readers and writers of registries. What this module is not: a second copy of any of it.

use std::io::Read;
use std::time::Duration;

use base64ct::{Base64, Encoding};
pub use vouch_verifier::registry::{Credentials, Login, Registries, RegistryError};
use vouch_verifier::registry::{
    OptionsError, RegistryOptions, DEFAULT_ANSWER_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
};
use zeroize::Zeroizing;

/// Registry options of every command that reads or writes registries (`sign`, `verify`,
/// `mirror`, `promote`, and any read of trust with `--source registry`).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct RegistryArgs {
    /// Reach this registry (HOST or HOST:PORT) over plain HTTP; registries on loopback
    /// addresses always are. Repeat for several.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", global = true)]
    pub insecure_registry: Vec<String>,
    /// User name for one registry (--registry-host, else the registry the command writes to,
    /// or the image's), with the password on stdin (--registry-password-stdin); every other
    /// registry gets the login in ~/.docker/config.json.
    #[arg(
        long,
        value_name = "USER",
        requires = "registry_password_stdin",
        global = true
    )]
    pub registry_username: Option<String>,
    /// Read the registry password (or token) from stdin, for --registry-username.
    #[arg(long, requires = "registry_username", global = true)]
    pub registry_password_stdin: bool,
    /// The registry (HOST or HOST:PORT) --registry-username and the password are for; by
    /// default the registry the command writes to (promote: DST's; mirror: the
    /// destination), or the one registry it reaches. Needed when it reaches several.
    #[arg(
        long,
        value_name = "HOST[:PORT]",
        requires = "registry_username",
        global = true
    )]
    pub registry_host: Option<String>,
}

impl RegistryArgs {
    /// True when credentials are given on the command line.
    pub fn gives_credentials(&self) -> bool {
        self.registry_username.is_some()
    }
}

/// Words a refusal of the options in the command line's terms.
fn options_error(e: OptionsError) -> anyhow::Error {
    match e {
        OptionsError::InsecureHost(h) => {
            anyhow::anyhow!("--insecure-registry {h:?}: expected HOST or HOST:PORT")
        }
        OptionsError::CredentialsHost(h) => {
            anyhow::anyhow!("--registry-host {h:?}: expected HOST or HOST:PORT")
        }
        e => anyhow::anyhow!(e),
    }
}

/// The registry client of a run: validates `args`; reads the password from stdin when
/// `--registry-password-stdin`, for `for_registry` (`--registry-host`, else what the command
/// implies) only.
pub fn open(args: &RegistryArgs, for_registry: &str) -> anyhow::Result<Registries> {
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
            Login::Given {
                registry: for_registry.to_owned(),
                credentials: Credentials::new(user.clone(), trimmed),
            }
        }
        (None, false) => Login::DockerConfig(None),
        _ => anyhow::bail!("--registry-username and --registry-password-stdin go together"),
    };
    let options =
        RegistryOptions::new(args.insecure_registry.clone(), login).map_err(options_error)?;
    Ok(Registries::new(options)?)
}

/// For notary servers: credentials from `NOTARY_AUTH` (base64 of `user:password`, as the
/// notary client reads it) when set, else the docker config's entry for the notary host.
/// Each request (to the server, and to its token realm) is over within `timeout` (the
/// `--timeout` its metadata is fetched with), a realm that never answers included.
pub fn for_notary(timeout: Duration) -> anyhow::Result<Registries> {
    let login = match std::env::var("NOTARY_AUTH") {
        Ok(v) if !v.trim().is_empty() => Login::NotaryAuth(notary_auth(v.trim())?),
        _ => Login::DockerConfig(None),
    };
    let timeout = if timeout.is_zero() {
        DEFAULT_ANSWER_TIMEOUT
    } else {
        timeout
    };
    let options = RegistryOptions::new(Vec::new(), login)
        .and_then(|o| o.with_timeouts(timeout.min(DEFAULT_CONNECT_TIMEOUT), timeout))
        .map_err(options_error)?;
    Ok(Registries::for_notary(options)?)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
    fn insecure_registries_are_named_by_host() {
        let args = RegistryArgs {
            insecure_registry: vec!["http://reg:5000".into()],
            ..RegistryArgs::default()
        };
        let e = open(&args, "reg").unwrap_err().to_string();
        assert!(e.starts_with("--insecure-registry"), "{e}");
        let args = RegistryArgs {
            insecure_registry: vec!["reg.internal:5000".into()],
            ..RegistryArgs::default()
        };
        assert_eq!(
            open(&args, "reg").unwrap().base_url("reg.internal:5000"),
            "http://reg.internal:5000"
        );
    }
}
