//! The CLI against a vouch-server serving HTTPS with a certificate from a private CA: trusted
//! through `SSL_CERT_FILE` (as the platform verifier reads it), refused without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{digest, Server, Vouch};
use vouch_testkit::tls::Ca;

const GUN: &str = "example.com/org/app";

/// A CA and a server certificate it issued, written to `dir` (`ca.pem`, `cert.pem`, `key.pem`).
fn private_ca(dir: &std::path::Path) {
    let ca = Ca::new("vouch test CA");
    ca.issue(dir);
    ca.write_cert(&dir.join("ca.pem"));
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
