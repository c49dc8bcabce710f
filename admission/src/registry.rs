//! The registry clients the webhook reads trust artifacts through (rules with `source =
//! "registry"` or `"server-then-registry"`), one per registry, logged in as the policy's
//! `[[registry]]` table for it says ([`crate::policy::RegistryAccess`]).
//!
//! A registry without a table is asked anonymously. A table's secret file
//! (`docker_config_file`, or `password_file`) is read again on every refresh that needs the
//! registry, so a rotated pull secret is used from the next refresh on; a client is built
//! again only when what the file holds changed (a client keeps the registry's grants, so
//! an unchanged login asks the registry's token service only when a grant runs out).
//! Nothing read from a secret file is logged or put in a message: errors name the file.
//! Refreshes of many repositories of one registry share its client without waiting for each
//! other: a read takes the client's lock only to take a handle on it (the grants are shared
//! and kept behind a lock of their own, at most [`vouch_verifier::registry::MAX_GRANTS`] of
//! them), and each read ends by its refresh's deadline.
//!
//! What it is not: the OCI Distribution client itself ([`vouch_verifier::registry`]), nor a
//! judge of what the registry serves — the TUF checks of [`crate::trust`] are.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vouch_tuf::reference::Digest;
use vouch_verifier::registry::{Login, Registries, RegistryOptions};
use vouch_verifier::registry_auth::Credentials;
use zeroize::Zeroizing;

use crate::policy::{RegistryAccess, RegistryLogin};

/// Largest secret file read (a pull secret naming a few registries is well under this).
const MAX_SECRET_FILE_BYTES: u64 = 1024 * 1024;

/// Most registries a client is kept for; beyond, the kept clients are dropped and built
/// again on need (image names, and so registries, are chosen by whoever creates pods).
const MAX_CLIENTS: usize = 256;

/// One registry's client, and the hash of the login it was built with.
struct Kept {
    login: Option<Digest>,
    client: Arc<Mutex<Registries>>,
}

/// The clients of the registries one policy names, built on first need.
pub struct RegistryClients {
    access: RegistryAccess,
    timeout: Duration,
    clients: Mutex<HashMap<String, Kept>>,
}

impl std::fmt::Debug for RegistryClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClients")
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

/// Reads a secret file, capped.
fn read_secret(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("cannot read {what} {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(&e))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(fail(&format!("larger than {MAX_SECRET_FILE_BYTES} bytes")));
    }
    Ok(bytes)
}

impl RegistryClients {
    /// Clients for `access`, each registry answer bounded by `timeout`.
    pub fn new(access: RegistryAccess, timeout: Duration) -> Self {
        RegistryClients {
            access,
            timeout,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The access these clients follow.
    pub fn access(&self) -> &RegistryAccess {
        &self.access
    }

    /// The client for `registry` (`host[:port]` as images name it), logged in as its
    /// table says; `Err` says which secret file could not be read, or why the client could
    /// not be built. Blocking (reads the secret file).
    pub fn client_for(&self, registry: &str) -> Result<Arc<Mutex<Registries>>, String> {
        let host = registry.to_ascii_lowercase();
        let (login, fingerprint) = match self.access.logins.get(&host) {
            None => (Login::Anonymous, None),
            Some(RegistryLogin::DockerConfig(path)) => {
                let bytes = read_secret(path, "docker_config_file")?;
                (
                    Login::DockerConfig(Some(path.clone())),
                    Some(Digest::sha256_of(&bytes)),
                )
            }
            Some(RegistryLogin::Password {
                username,
                password_file,
            }) => {
                let bytes = read_secret(password_file, "password_file")?;
                let password = std::str::from_utf8(&bytes)
                    .map_err(|_| format!("password_file {} is not UTF-8", password_file.display()))?
                    .trim();
                if password.is_empty() {
                    return Err(format!(
                        "password_file {} holds no password",
                        password_file.display()
                    ));
                }
                let mut seen = Zeroizing::new(username.as_bytes().to_vec());
                seen.push(0);
                seen.extend_from_slice(password.as_bytes());
                let creds = Credentials::new(username.clone(), Zeroizing::new(password.to_owned()));
                (
                    Login::PerRegistry([(host.clone(), creds)].into_iter().collect()),
                    Some(Digest::sha256_of(&seen)),
                )
            }
        };
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(kept) = clients.get(&host) {
            if kept.login == fingerprint {
                return Ok(kept.client.clone());
            }
        }
        let options = RegistryOptions::new(self.access.insecure.clone(), login)
            .and_then(|o| o.with_timeouts(self.timeout.min(Duration::from_secs(2)), self.timeout))
            .map_err(|e| e.to_string())?;
        let client = Arc::new(Mutex::new(
            Registries::new(options).map_err(|e| e.to_string())?,
        ));
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(
            host,
            Kept {
                login: fingerprint,
                client: client.clone(),
            },
        );
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_client_is_built_again_only_when_its_secret_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "one\n").unwrap();
        let mut access = RegistryAccess::default();
        access.logins.insert(
            "reg.example:5000".into(),
            RegistryLogin::Password {
                username: "ci".into(),
                password_file: file.clone(),
            },
        );
        let clients = RegistryClients::new(access, Duration::from_secs(5));
        let a = clients.client_for("REG.example:5000").unwrap();
        let b = clients.client_for("reg.example:5000").unwrap();
        assert!(Arc::ptr_eq(&a, &b), "an unchanged login keeps its client");
        std::fs::write(&file, "two\n").unwrap();
        let c = clients.client_for("reg.example:5000").unwrap();
        assert!(
            !Arc::ptr_eq(&a, &c),
            "a rotated password builds a new client"
        );
        // Anonymous registries get clients of their own.
        let d = clients.client_for("other.example").unwrap();
        assert!(!Arc::ptr_eq(&c, &d));
        // A missing or empty secret file is named, never quoted.
        std::fs::write(&file, "  \n").unwrap();
        let e = clients.client_for("reg.example:5000").unwrap_err();
        assert!(e.contains("holds no password"), "{e}");
        std::fs::remove_file(&file).unwrap();
        let e = clients.client_for("reg.example:5000").unwrap_err();
        assert!(
            e.contains("cannot read password_file") && e.contains("password"),
            "{e}"
        );
    }
}
