//! TLS with rustls, from a certificate chain and private key in PEM files that are re-read
//! when they change, so rotating a certificate needs no restart.
//!
//! [`ReloadingCert`] is the server's certificate resolver: on a handshake, at most once per
//! check interval, it compares the files' modification times and sizes with those it loaded
//! and, when they differ, loads the new pair. A pair that does not load (half-written files,
//! a key that does not match the certificate) is logged and the previous pair stays in use,
//! so a botched rotation never takes the server down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate and key that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("TLS {what} {path}: {message}")]
pub struct TlsError {
    what: &'static str,
    path: PathBuf,
    message: String,
}

/// What identifies a version of the files: modification time and length of each.
type Stamp = [(Option<SystemTime>, u64); 2];

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| (m.modified().ok(), m.len()))
            .unwrap_or((None, 0))
    };
    [one(cert), one(key)]
}

/// Loads a certificate chain and its private key from PEM files.
pub fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let err = |what, path: &Path, message: String| TlsError {
        what,
        path: path.to_owned(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| err("certificate", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(err("certificate", cert, "no CERTIFICATE block".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| err("key", key, e.to_string()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&private)
        .map_err(|e| err("key", key, e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        err(
            "key",
            key,
            format!("does not match the certificate's public key ({e})"),
        )
    })?;
    Ok(certified)
}

/// A certificate resolver that re-reads its files when they change.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    interval: Duration,
    current: RwLock<Arc<CertifiedKey>>,
    checked: Mutex<(Instant, Stamp)>,
}

impl ReloadingCert {
    /// Loads the pair now (failing if it does not load), checking for changes at most once
    /// per `interval`.
    pub fn new(cert_file: &Path, key_file: &Path, interval: Duration) -> Result<Self, TlsError> {
        let s = stamp(cert_file, key_file);
        let ck = load(cert_file, key_file)?;
        Ok(ReloadingCert {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            interval,
            current: RwLock::new(Arc::new(ck)),
            checked: Mutex::new((Instant::now(), s)),
        })
    }

    /// Reloads when the interval has passed and the files changed. Returns whether a new pair
    /// was loaded.
    pub fn reload_if_changed(&self) -> bool {
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if checked.0.elapsed() < self.interval {
            return false;
        }
        checked.0 = Instant::now();
        let s = stamp(&self.cert_file, &self.key_file);
        if s == checked.1 {
            return false;
        }
        match load(&self.cert_file, &self.key_file) {
            Ok(ck) => {
                checked.1 = s;
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ck);
                tracing::info!(cert = %self.cert_file.display(), "reloaded TLS certificate");
                true
            }
            Err(e) => {
                // Not recorded as seen: retried at the next interval (the files may be
                // half-way through being replaced).
                tracing::warn!(error = %e, "TLS certificate changed but does not load; keeping the previous one");
                false
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.reload_if_changed();
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// A rustls server configuration (HTTP/1.1, TLS 1.2 and 1.3) over `resolver`.
pub fn server_config(resolver: Arc<ReloadingCert>) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn write_pair(dir: &Path, cert_key: &rcgen::KeyPair, file_key: &rcgen::KeyPair) {
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(cert_key).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), file_key.serialize_pem()).unwrap();
    }

    #[test]
    fn loads_reloads_and_refuses_mismatched_pairs() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let a = rcgen::KeyPair::generate().unwrap();
        let b = rcgen::KeyPair::generate().unwrap();

        write_pair(dir.path(), &a, &b);
        let e = ReloadingCert::new(&cert, &key, Duration::ZERO).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        std::fs::write(&cert, "").unwrap();
        assert!(ReloadingCert::new(&cert, &key, Duration::ZERO).is_err());

        write_pair(dir.path(), &a, &a);
        let r = ReloadingCert::new(&cert, &key, Duration::ZERO).unwrap();
        let first = r.current.read().unwrap().cert.clone();
        assert!(!r.reload_if_changed(), "unchanged files are not reloaded");

        // A mismatched replacement is refused; the loaded pair stays.
        write_pair(dir.path(), &b, &a);
        assert!(!r.reload_if_changed());
        assert_eq!(r.current.read().unwrap().cert, first);

        // A good replacement is taken.
        write_pair(dir.path(), &b, &b);
        assert!(r.reload_if_changed());
        assert_ne!(r.current.read().unwrap().cert, first);
    }
}
