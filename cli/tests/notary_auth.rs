//! End-to-end: `vouch import notary` and `vouch verify --notary` against a real notary-server
//! with token authentication, the registry token flow Docker Hub's notary uses. The token
//! service is this test's, on a loopback port; it issues JWTs the notary server checks
//! against its `rootcertbundle`, granting, like Docker Hub:
//! - to anyone, `pull` on the public collection `example.com/public/app`;
//! - to `alice:pw`, whatever is asked (the notary client publishes with those credentials);
//! - to anyone else, a token with no access at all (the notary server then refuses it).
//!
//! Checked: the public collection is read anonymously through the token flow; the private
//! one with the credentials of `NOTARY_AUTH` or of the docker config (its entry for the
//! notary host), and without them is refused with a message naming `NOTARY_AUTH` and
//! `docker login`; the docker config's entry for the images' registry is not sent to a
//! notary server on another host.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;

use base64ct::{Base64, Encoding};
use common::{Server, Vouch};
use vouch_testkit::notary::{
    NotaryClient, NotaryServer, TokenAuth, TokenIssuer, TokenService, PASSPHRASES,
};

const PUBLIC: &str = "example.com/public/app";
const PRIVATE: &str = "example.com/private/app";
const SERVICE: &str = "notary-test";

fn hex_of(c: char) -> String {
    c.to_string().repeat(64)
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        Base64::encode_string(format!("{user}:{pass}").as_bytes())
    )
}

/// A notary server with token auth, its token service, and alice's notary client, which
/// made both collections (`v1` in each).
struct Notary {
    _tmp: tempfile::TempDir,
    server: NotaryServer,
    tokens: TokenService,
    client: NotaryClient,
}

impl Notary {
    fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let issuer = Arc::new(TokenIssuer::new("vouch-test-token-issuer"));
        let bundle = tmp.path().join("token-signer.pem");
        issuer.write_bundle(&bundle);
        let tokens = TokenService::start(issuer.clone(), SERVICE, &[PUBLIC], ("alice", "pw"));
        let server = NotaryServer::start_with_token_auth(
            &tmp.path().join("notary-server"),
            &TokenAuth {
                realm: tokens.realm().to_owned(),
                service: SERVICE.to_owned(),
                issuer: issuer.issuer().to_owned(),
                rootcertbundle: bundle,
            },
        );
        // Without a token, the server refuses even to read.
        let (status, _) = server.get(PUBLIC, "root.json");
        assert_eq!(status, 401);
        let client =
            NotaryClient::new(&server, tmp.path().join("notary-trust")).with_auth("alice", "pw");
        for (gun, c) in [(PUBLIC, '1'), (PRIVATE, '2')] {
            client.init(gun);
            client.addhash(gun, "v1", 101, &hex_of(c), None);
            client.publish(gun);
        }
        Notary {
            _tmp: tmp,
            server,
            tokens,
            client,
        }
    }

    fn host(&self) -> &str {
        self.server.url().trim_start_matches("https://")
    }
}

fn vouch(server: &Server, notary: &Notary) -> Vouch {
    let mut v = Vouch::new(server);
    v.set("SSL_CERT_FILE", notary.server.ca_cert().to_str().unwrap());
    for (k, val) in PASSPHRASES {
        v.set(k, val);
    }
    v
}

fn import(v: &Vouch, notary: &Notary, gun: &str) -> common::Run {
    v.run(&[
        "--output",
        "json",
        "import",
        "notary",
        gun,
        "--notary-server",
        notary.server.url(),
        "--notary-trust-dir",
        notary.client.trust_dir().to_str().unwrap(),
    ])
}

fn verify(v: &Vouch, notary: &Notary, image: &str) -> common::Run {
    v.run(&[
        "verify",
        image,
        "--notary",
        notary.server.url(),
        "--notary-trust-dir",
        notary.client.trust_dir().to_str().unwrap(),
        "--no-registry",
    ])
}

#[test]
fn a_public_collection_is_read_anonymously_through_the_token_flow() {
    let notary = Notary::start();
    let server = Server::start();
    let v = vouch(&server, &notary);
    let before = notary.tokens.asked().len();

    let report = import(&v, &notary, PUBLIC).json();
    assert_eq!(report["imported"][0]["tags"][0]["tag"], "v1", "{report:#}");
    assert_eq!(
        report["imported"][0]["tags"][0]["digest"],
        format!("sha256:{}", hex_of('1')).as_str()
    );
    let out = verify(&v, &notary, &format!("{PUBLIC}:v1"));
    assert_eq!(out.ok().trim(), format!("{PUBLIC}@sha256:{}", hex_of('1')));

    // Both asked the token service anonymously, for pull on the collection alone.
    let asked = notary.tokens.asked();
    let ours = &asked[before..];
    assert_eq!(ours.len(), 2, "{ours:#?}");
    for a in ours {
        assert_eq!(a.authorization, None, "{a:?}");
        assert_eq!(a.scopes, vec![format!("repository:{PUBLIC}:pull")], "{a:?}");
    }
}

#[test]
fn a_private_collection_needs_credentials() {
    let notary = Notary::start();
    let server = Server::start();
    let mut v = vouch(&server, &notary);

    // Anonymous: the token grants nothing, and the notary server refuses it.
    let line = import(&v, &notary, PRIVATE)
        .fails(1, &["401", "NOTARY_AUTH", "docker login"])
        .to_owned();
    eprintln!("refused: {line}");
    let line = verify(&v, &notary, &format!("{PRIVATE}:v1"))
        .fails(1, &["401", "NOTARY_AUTH", "docker login"])
        .to_owned();
    eprintln!("refused: {line}");

    // Wrong credentials: the token service refuses them.
    v.set("NOTARY_AUTH", &Base64::encode_string(b"alice:wrong"));
    let line = verify(&v, &notary, &format!("{PRIVATE}:v1"))
        .fails(1, &["refused", "NOTARY_AUTH"])
        .to_owned();
    eprintln!("refused: {line}");
    v.set("NOTARY_AUTH", "not base64!");
    verify(&v, &notary, &format!("{PRIVATE}:v1")).fails(1, &["NOTARY_AUTH is not base64"]);

    // NOTARY_AUTH, as the notary client reads it.
    v.set("NOTARY_AUTH", &Base64::encode_string(b"alice:pw"));
    let report = import(&v, &notary, PRIVATE).json();
    assert_eq!(
        report["imported"][0]["tags"][0]["digest"],
        format!("sha256:{}", hex_of('2')).as_str(),
        "{report:#}"
    );
    let out = verify(&v, &notary, &format!("{PRIVATE}:v1"));
    assert_eq!(out.ok().trim(), format!("{PRIVATE}@sha256:{}", hex_of('2')));
    let last = notary.tokens.asked().pop().unwrap();
    assert_eq!(last.authorization, Some(basic("alice", "pw")));
    assert_eq!(last.scopes, vec![format!("repository:{PRIVATE}:pull")]);

    // Or the docker config's entry for the notary host (`docker login HOST`).
    v.set("NOTARY_AUTH", "");
    let home = v.trust_dir.parent().unwrap().join(".docker");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            notary.host(),
            Base64::encode_string(b"alice:pw")
        ),
    )
    .unwrap();
    let out = verify(&v, &notary, &format!("{PRIVATE}:v1"));
    assert_eq!(out.ok().trim(), format!("{PRIVATE}@sha256:{}", hex_of('2')));
    let last = notary.tokens.asked().pop().unwrap();
    assert_eq!(last.authorization, Some(basic("alice", "pw")));
}

/// The docker config's login for the images' registry is what `docker trust` sends to that
/// registry's notary server. A notary server on another host (here a loopback one, for
/// `example.com/…` images) named with `--notary` — by a typo, a script, or whoever wrote
/// the command — must not receive it: the token is asked anonymously, and the refusal says
/// how to log in to that notary server.
#[test]
fn registry_credentials_are_not_sent_to_a_notary_server_on_another_host() {
    let notary = Notary::start();
    let server = Server::start();
    let v = vouch(&server, &notary);
    let home = v.trust_dir.parent().unwrap().join(".docker");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("config.json"),
        format!(
            r#"{{"auths":{{"https://example.com/v1/":{{"auth":"{}"}}}}}}"#,
            Base64::encode_string(b"alice:pw")
        ),
    )
    .unwrap();
    let before = notary.tokens.asked().len();
    let line = verify(&v, &notary, &format!("{PRIVATE}:v1"))
        .fails(1, &["401", "NOTARY_AUTH", "docker login", "example.com"])
        .to_owned();
    eprintln!("refused: {line}");
    let asked = notary.tokens.asked();
    assert!(asked.len() > before, "no token was asked: {asked:#?}");
    for a in &asked[before..] {
        assert_eq!(a.authorization, None, "{a:?}");
    }
}

/// A notary server whose token realm accepts connections and never answers holds the run
/// only as long as `--timeout`, like every other fetch from it, and the error says so.
#[test]
fn a_stalled_token_realm_fails_within_the_timeout() {
    // The realm: connections queue up and are never answered.
    let realm = TcpListener::bind("127.0.0.1:0").unwrap();
    let realm_url = format!("http://{}/token", realm.local_addr().unwrap());
    // The notary server: every request is answered with a Bearer challenge naming it.
    let notary = TcpListener::bind("127.0.0.1:0").unwrap();
    let notary_url = format!("http://{}", notary.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in notary.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let challenge = format!(r#"Bearer realm="{realm_url}",service="{SERVICE}""#);
            let _ = write!(
                conn,
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    let server = Server::start();
    let v = Vouch::new(&server);
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../verifier/tests/fixtures/notary/trust/tuf/example.com/fixtures/app/metadata/root.json",
    );
    let run = v.run(&[
        "--timeout",
        "1",
        "verify",
        "example.com/fixtures/app:v1",
        "--notary",
        &notary_url,
        "--notary-root",
        root.to_str().unwrap(),
        "--no-registry",
    ]);
    let line = run.fails(1, &["token server", "within 1 s", "--timeout"]);
    eprintln!("failed: {line}");
    drop(realm);
}
