//! A test certificate authority: a self-signed CA certificate and the server certificates it
//! issues for `localhost` and `127.0.0.1`, with an HTTP client that trusts that CA alone.
//!
//! The keys are fresh on every [`Ca::new`] and never leave the test's temporary files. A CA
//! the client does not trust, or a certificate rotated on disk, is staged with a second
//! `Ca`.

use std::path::Path;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use reqwest::blocking::{Client, ClientBuilder};

/// A test CA that issues server certificates for loopback.
pub struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A server certificate and its private key, both PEM.
pub struct ServerCert {
    /// The certificate, issued by the [`Ca`].
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl Ca {
    /// A new CA whose certificate has `name` as its common name.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA's certificate (PEM): what a client trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A certificate for `localhost` and `127.0.0.1` (its common name `localhost`) and its
    /// fresh key.
    pub fn server_cert(&self) -> ServerCert {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server certificate parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes a [`Ca::server_cert`] to `dir` as `cert.pem` and `key.pem`, each written to a
    /// temporary name and renamed into place (key first), as a certificate manager does.
    pub fn issue(&self, dir: &Path) {
        let issued = self.server_cert();
        std::fs::write(dir.join("key.tmp"), issued.key_pem).expect("write key.tmp");
        std::fs::write(dir.join("cert.tmp"), issued.cert_pem).expect("write cert.tmp");
        std::fs::rename(dir.join("key.tmp"), dir.join("key.pem")).expect("rename key.pem");
        std::fs::rename(dir.join("cert.tmp"), dir.join("cert.pem")).expect("rename cert.pem");
    }

    /// Writes the CA's certificate to `file` (for `SSL_CERT_FILE` or a `ca_file` setting).
    pub fn write_cert(&self, file: &Path) {
        std::fs::write(file, &self.cert_pem).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }

    /// A client builder trusting this CA alone.
    pub fn client_builder(&self) -> ClientBuilder {
        // The client's TLS stack needs a crypto provider chosen once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).expect("CA PEM");
        Client::builder().tls_certs_only([cert])
    }

    /// A client trusting this CA alone, giving up on a request after 30 seconds.
    pub fn client(&self) -> Client {
        self.client_builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client")
    }
}
