//! The CLI against a vouch-server serving HTTPS with a certificate from a private CA: trusted
//! through `SSL_CERT_FILE` (as the platform verifier reads it), refused without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{digest, Server, Vouch};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

const GUN: &str = "example.com/org/app";

/// A CA and a server certificate for 127.0.0.1 it issued, written to `dir`.
fn private_ca(dir: &std::path::Path) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "vouch test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

#[test]
fn init_sign_and_verify_over_https_with_a_private_ca() {
    let pki = tempfile::tempdir().unwrap();
    private_ca(pki.path());
    let server = Server::start_with_env(&[
        ("VOUCH_TLS_CERT_FILE", &pki.path().join("cert.pem")),
        ("VOUCH_TLS_KEY_FILE", &pki.path().join("key.pem")),
    ]);
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );

    // Without the CA the server's certificate is not trusted, and nothing is accepted.
    let stranger = Vouch::new(&server);
    let out = stranger.run(&["init", GUN]);
    assert_ne!(out.code, 0, "init without the CA succeeded: {out:#?}");
    let err = out.stderr.to_lowercase();
    assert!(err.contains("certificate"), "{err}");

    let mut v = Vouch::new(&server);
    v.set("SSL_CERT_FILE", pki.path().join("ca.pem").to_str().unwrap());
    v.run(&["init", GUN]).ok();
    let d = digest(7);
    v.run(&[
        "sign",
        &format!("{GUN}:v1"),
        "--digest",
        &d,
        "--length",
        "42",
    ])
    .ok();
    let out = v.run(&["verify", &format!("{GUN}:v1"), "--no-registry"]);
    assert!(out.ok().contains(&format!("{GUN}@{d}")), "{out:#?}");
}
