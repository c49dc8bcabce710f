//! TLS with rustls, from a certificate chain and private key in PEM files that are re-read
//! when they change, so rotating a certificate needs no restart.
//!
//! [`load`] reads a pair and checks that the key belongs to the certificate.
//! [`ReloadingCert`] is a rustls certificate resolver over such a pair: on a handshake, at
//! most once per check interval, it compares the files' modification times and sizes with
//! those it loaded and, when they differ, loads the new pair. A pair that does not load
//! (half-written files, a key that does not match the certificate) is logged and the previous
//! pair stays in use, so a botched rotation never takes a server down. [`server_config`] wraps
//! the resolver in a rustls configuration for HTTP/1.1.
//!
//! The check runs on the handshake that finds the interval passed, so new connections see a
//! rotated certificate as soon as one is made after the interval; connections already open
//! keep the certificate they were made with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate or key file that could not be loaded: which one, its path, and why.
///
/// Displays as `TLS certificate /etc/vouch/cert.pem: no CERTIFICATE block` or
/// `TLS key /etc/vouch/key.pem: does not match the certificate's public key (…)`.
#[derive(Debug, thiserror::Error)]
#[error("TLS {what} {path}: {message}")]
pub struct TlsError {
    what: &'static str,
    path: PathBuf,
    message: String,
}

impl TlsError {
    fn new(what: &'static str, path: &Path, message: String) -> Self {
        TlsError {
            what,
            path: path.to_owned(),
            message,
        }
    }

    /// The file that did not load.
    pub fn path(&self) -> &Path {
        &self.path
    }
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

/// Loads a certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 RSA or SEC1 EC)
/// from PEM files, and checks that the key matches the leaf certificate.
///
/// ```no_run
/// let pair = vouch_serve::tls::load("cert.pem".as_ref(), "key.pem".as_ref())?;
/// assert!(!pair.cert.is_empty());
/// # Ok::<(), vouch_serve::tls::TlsError>(())
/// ```
pub fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::new("certificate", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::new(
            "certificate",
            cert,
            "no CERTIFICATE block".into(),
        ));
    }
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::new("key", key, e.to_string()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&private)
        .map_err(|e| TlsError::new("key", key, e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        TlsError::new(
            "key",
            key,
            format!("does not match the certificate's public key ({e})"),
        )
    })?;
    Ok(certified)
}

/// A certificate resolver that re-reads its files when they change (see the
/// [module documentation](self)).
#[derive(Debug)]
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    interval: Duration,
    current: RwLock<Arc<CertifiedKey>>,
    /// When the files were last compared, and the stamp of the pair in use.
    checked: Mutex<(Instant, Stamp)>,
}

impl ReloadingCert {
    /// Loads the pair now (failing if it does not load), checking for changes at most once
    /// per `interval`.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use vouch_serve::tls::{server_config, ReloadingCert};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cert = ReloadingCert::new(
    ///     "cert.pem".as_ref(),
    ///     "key.pem".as_ref(),
    ///     Duration::from_secs(30),
    /// )?;
    /// let config = Arc::new(server_config(Arc::new(cert))?);
    /// # let _ = config; Ok(()) }
    /// ```
    pub fn new(cert_file: &Path, key_file: &Path, interval: Duration) -> Result<Self, TlsError> {
        // Stamped before reading, so a change made during the load is noticed later.
        let s = stamp(cert_file, key_file);
        let pair = load(cert_file, key_file)?;
        Ok(ReloadingCert {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            interval,
            current: RwLock::new(Arc::new(pair)),
            checked: Mutex::new((Instant::now(), s)),
        })
    }

    /// Reloads when the interval has passed since the last check and the files changed.
    /// Returns whether a new pair was loaded.
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
            Ok(pair) => {
                checked.1 = s;
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
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

    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.reload_if_changed();
        Some(self.current())
    }
}

/// A rustls server configuration over `resolver`: the ring provider, TLS 1.2 and 1.3 (rustls's
/// safe defaults), no client authentication, and HTTP/1.1 as the only ALPN protocol.
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

    struct Files {
        dir: tempfile::TempDir,
        /// Pushed forward at every write, so each write looks changed whatever the
        /// file system's timestamp granularity.
        mtime: SystemTime,
    }

    impl Files {
        fn new() -> Self {
            Files {
                dir: tempfile::tempdir().unwrap(),
                mtime: SystemTime::now(),
            }
        }

        fn cert(&self) -> PathBuf {
            self.dir.path().join("cert.pem")
        }

        fn key(&self) -> PathBuf {
            self.dir.path().join("key.pem")
        }

        fn write(&mut self, path: &Path, contents: &str) {
            std::fs::write(path, contents).unwrap();
            self.mtime += Duration::from_secs(1);
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(self.mtime)
                .unwrap();
        }

        /// Writes a certificate for `cert_key` and, as the key file, `file_key`; returns the
        /// certificate.
        fn write_pair(
            &mut self,
            cert_key: &rcgen::KeyPair,
            file_key: &rcgen::KeyPair,
        ) -> CertificateDer<'static> {
            let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
            let cert = params.self_signed(cert_key).unwrap();
            self.write(&self.key(), &file_key.serialize_pem());
            self.write(&self.cert(), &cert.pem());
            cert.der().clone()
        }

        fn reloading(&self, interval: Duration) -> Result<ReloadingCert, TlsError> {
            ReloadingCert::new(&self.cert(), &self.key(), interval)
        }
    }

    fn two_keys() -> [rcgen::KeyPair; 2] {
        [(); 2].map(|()| rcgen::KeyPair::generate().unwrap())
    }

    fn served(r: &ReloadingCert) -> CertificateDer<'static> {
        r.current().cert[0].clone()
    }

    #[test]
    fn a_pair_that_does_not_load_is_refused_at_start_naming_the_file() {
        let mut f = Files::new();
        let [a, b] = two_keys();

        f.write_pair(&a, &b);
        let e = f.reloading(Duration::ZERO).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("TLS key {}: does not match", f.key().display())),
            "{msg}"
        );
        assert_eq!(e.path(), f.key());

        f.write(&f.cert(), "");
        let e = f.reloading(Duration::ZERO).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "TLS certificate {}: no CERTIFICATE block",
                f.cert().display()
            )
        );

        f.write_pair(&a, &a);
        f.write(&f.key(), "not a key");
        let e = f.reloading(Duration::ZERO).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("TLS key {}: ", f.key().display())),
            "{e}"
        );

        std::fs::remove_file(f.cert()).unwrap();
        let e = f.reloading(Duration::ZERO).unwrap_err();
        assert_eq!(e.path(), f.cert());
    }

    #[test]
    fn a_changed_pair_is_reloaded_and_a_broken_or_mismatched_one_is_not() {
        let mut f = Files::new();
        let [a, b] = two_keys();
        let first = f.write_pair(&a, &a);
        let r = f.reloading(Duration::ZERO).unwrap();
        assert_eq!(served(&r), first);
        assert!(!r.reload_if_changed(), "unchanged files are not reloaded");

        // A replacement whose key does not match is refused; the loaded pair stays.
        f.write_pair(&b, &a);
        assert!(!r.reload_if_changed());
        assert_eq!(served(&r), first);

        // A good replacement is taken.
        let second = f.write_pair(&b, &b);
        assert!(r.reload_if_changed());
        assert_eq!(served(&r), second);

        // A certificate file that is not PEM is refused, and retried at every check.
        f.write(&f.cert(), "not a certificate");
        assert!(!r.reload_if_changed());
        assert!(!r.reload_if_changed());
        assert_eq!(served(&r), second);

        // Once the pair is whole again, it is taken.
        let third = f.write_pair(&a, &a);
        assert!(r.reload_if_changed());
        assert_eq!(served(&r), third);
    }

    #[test]
    fn files_are_checked_at_most_once_per_interval() {
        let mut f = Files::new();
        let [a, b] = two_keys();
        let first = f.write_pair(&a, &a);
        let r = f.reloading(Duration::from_secs(3600)).unwrap();
        f.write_pair(&b, &b);
        assert!(!r.reload_if_changed());
        assert_eq!(served(&r), first);
    }
}
