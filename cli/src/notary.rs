//! What `vouch import notary` and `vouch verify --notary` share about Notary v1 servers and
//! the notary client's trust directory, so that both start from the same trust and keep one
//! rollback state per repository.
//!
//! - [`trust_dir`]: the notary client's trust directory (`--notary-trust-dir`, else
//!   `~/.docker/trust`).
//! - [`starting_state`]: where trust in a collection starts — the state kept by an earlier
//!   run of either command (`notary-state.json` in the repository's vouch trust directory),
//!   else `--notary-root FILE`, else the root the notary client trusts
//!   (`tuf/<gun>/metadata/root.json` in its trust directory); [`save_state`] keeps the new
//!   state after a collection verified, so a notary server that rolls back (or freezes) is
//!   caught on the next run of either command.
//! - [`server_transport`]: an HTTP transport to a notary server's `/v2/<gun>/_trust/tuf/`,
//!   with the bearer token the registry token flow grants
//!   ([`Registries::notary_token`](vouch_verifier::registry::Registries::notary_token)), and
//!   [`NotaryServer::fetch_hint`] says what to do when a fetch through it was refused for
//!   want of credentials.
//!
//! What it is not: the checks. Verifying the dialect is `vouch_verifier::notary`'s.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use vouch_tuf::reference::Gun;
use vouch_verifier::notary::{client_metadata_dir, client_trusted_root, NotaryState};
use vouch_verifier::transport::{
    repository_url, BearerToken, HttpOptions, HttpTransport, TransportError,
};
use vouch_verifier::Limits;
use zeroize::Zeroizing;

use crate::context::Context;
use crate::registry::RegistryError;
use crate::trust;

/// The file, in a repository's trust directory, that keeps the notary state between runs.
pub const STATE_FILE: &str = "notary-state.json";

/// The notary client's trust directory: `given`, else `~/.docker/trust`.
pub fn trust_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d.to_owned());
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow!("HOME is not set: pass --notary-trust-dir"))?;
    Ok(Path::new(&home).join(".docker").join("trust"))
}

/// Where the notary state of `gun` is kept.
pub fn state_file(ctx: &Context, gun: &Gun) -> PathBuf {
    trust::dir(ctx, gun).join(STATE_FILE)
}

/// Where trust in the notary collection `gun` starts: the state kept by an earlier run,
/// else `notary_root`, else the root the notary client with trust directory `trust_dir`
/// trusts. No root at all is an error saying where one comes from.
pub fn starting_state(
    ctx: &Context,
    gun: &Gun,
    notary_root: Option<&Path>,
    trust_dir: &Path,
) -> anyhow::Result<NotaryState> {
    let kept = state_file(ctx, gun);
    match std::fs::read(&kept) {
        Ok(bytes) => {
            let state = NotaryState::from_json(&bytes)
                .with_context(|| format!("{} is damaged", kept.display()))?;
            if state.gun() != gun.as_str() {
                bail!(
                    "{} is the notary state of {}, not {gun}",
                    kept.display(),
                    state.gun()
                );
            }
            if let Some(file) = notary_root {
                crate::output::warn(&format!(
                    "{gun}: trust starts from the notary state an earlier run kept ({}), not \
                     from --notary-root {} (remove that file to start again from a root)",
                    kept.display(),
                    file.display()
                ));
            }
            return Ok(state);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", kept.display())),
    }
    if let Some(file) = notary_root {
        let bytes = read_capped(file, Limits::DEFAULT.root_max_bytes)
            .context("cannot use --notary-root")?;
        return Ok(NotaryState::from_trusted_root(gun.as_str(), bytes));
    }
    client_trusted_root(trust_dir, gun, Limits::DEFAULT).map_err(|e| {
        anyhow!(
            "no trusted notary root for {gun} ({e}): the notary client keeps it in {}; \
             pull an image of it once with DOCKER_CONTENT_TRUST=1 (or run `notary list {gun}`), \
             or pass --notary-root FILE",
            client_metadata_dir(trust_dir, gun)
                .join("root.json")
                .display()
        )
    })
}

/// Keeps `state` as where trust in `gun`'s notary collection starts next time.
pub fn save_state(ctx: &Context, gun: &Gun, state: &NotaryState) -> anyhow::Result<()> {
    let dir = trust::dir(ctx, gun);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let kept = dir.join(STATE_FILE);
    // Written aside (a name of this process's own, so two runs at once do not write into one
    // file) and renamed: a run cut short leaves the previous state, never half of one.
    let tmp = dir.join(format!(".{STATE_FILE}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, state.to_json())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &kept).with_context(|| format!("cannot write {}", kept.display()))
}

/// The contents of `file`, refused when larger than `cap` bytes.
pub fn read_capped(file: &Path, cap: u64) -> anyhow::Result<Vec<u8>> {
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if meta.len() > cap {
        bail!("{} is larger than {cap} bytes", file.display());
    }
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

/// A token granted by a notary server's token service, sent on every metadata request.
struct GrantedToken(Zeroizing<String>);

impl std::fmt::Debug for GrantedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrantedToken(<redacted>)")
    }
}

impl BearerToken for GrantedToken {
    fn bearer_token(&self) -> Option<String> {
        Some(self.0.as_str().to_owned())
    }
}

/// A notary server for one collection: the transport to its metadata, and how it was
/// authorised (for the hints of [`NotaryServer::fetch_hint`]).
pub struct NotaryServer {
    /// The transport to `/v2/<gun>/_trust/tuf/`.
    pub transport: HttpTransport,
    /// The server's URL, without a trailing `/`.
    pub url: String,
    /// `host[:port]` of the server.
    host: String,
    /// What to do when it refuses this client.
    login_hint: String,
}

/// An HTTP transport to the notary server `server` (its TLS certificate checked against the
/// system's roots, or `SSL_CERT_FILE`) for `gun`, with a bearer token when the server asks
/// for one: anonymous, or with the credentials of `NOTARY_AUTH` or the docker config.
pub fn server_transport(ctx: &Context, server: &str, gun: &Gun) -> anyhow::Result<NotaryServer> {
    let url = server.trim_end_matches('/').to_owned();
    let parsed = reqwest::Url::parse(&url)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
        .ok_or_else(|| {
            anyhow!("notary server {server:?} is not a URL: expected https://HOST[:PORT]")
        })?;
    // Not repeated: every message naming the server would print the password.
    if vouch_verifier::registry_auth::url_carries_credentials(&parsed) {
        bail!(
            "the notary server URL carries credentials (USER:PASSWORD@): give the URL without \
             them, and the credentials in NOTARY_AUTH (base64 of USER:PASSWORD)"
        );
    }
    if !vouch_verifier::registry_auth::credentials_may_go_to(&url) {
        crate::output::warn(&format!(
            "the notary server {url} is reached over plain HTTP: no credentials are sent to it \
             (anyone on the network could answer for it and name a token server of theirs); \
             use https://"
        ));
    }
    let host = vouch_verifier::registry_auth::host_port(&parsed).unwrap_or_default();
    let options = HttpOptions {
        connect_timeout: ctx.timeout,
        timeout: ctx.timeout,
        ..HttpOptions::default()
    };
    let http = HttpTransport::new(&repository_url(&url, gun), &options)
        .with_context(|| format!("cannot reach the notary server at {url}"))?;
    let mut registries = crate::registry::for_notary(ctx.timeout)?;
    let token = registries
        .notary_token(&url, &host, gun.as_str(), gun.registry())
        .map_err(|e| token_error(&url, gun, e))?;
    let login_hint = registries.login_hint(&host, registries.used_credentials(&host, gun.as_str()));
    let transport = match token {
        Some(t) => http.with_bearer_token(Arc::new(GrantedToken(t))),
        None => http,
    };
    Ok(NotaryServer {
        transport,
        url,
        host,
        login_hint,
    })
}

/// Words a failure to get a token from the notary server `url` for `gun`.
fn token_error(url: &str, gun: &Gun, e: RegistryError) -> anyhow::Error {
    match e {
        RegistryError::Unauthorized { detail, hint, .. } => {
            anyhow!("the notary server {url} refused access to {gun} (401 Unauthorized{detail}): {hint}")
        }
        RegistryError::Unreachable { message, .. } => {
            anyhow!("cannot reach the notary server at {url} ({message})")
        }
        RegistryError::Token { realm, detail, .. } => anyhow!(
            "the token server {realm} of the notary server {url} gave no token for {gun} ({detail})"
        ),
        RegistryError::Challenge {
            challenge, reason, ..
        } => anyhow!(
            "the notary server {url} asks for authentication vouch cannot provide ({challenge:?}): {reason}"
        ),
        other => anyhow!(other).context(format!("authenticating to the notary server {url}")),
    }
}

impl NotaryServer {
    /// What to add to a message about `e`, a failed fetch from this server: what to do when
    /// it refused this client's (lack of) credentials.
    pub fn fetch_hint(&self, e: &TransportError) -> String {
        if e.is_unauthorized() {
            format!(
                " (the notary server {} refused access: {})",
                self.host, self.login_hint
            )
        } else {
            String::new()
        }
    }
}
