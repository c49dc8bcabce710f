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
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64ct::{Base64, Encoding};
use common::{Server, Vouch};
use vouch_testkit::notary::{NotaryClient, NotaryServer, TokenAuth, TokenIssuer, PASSPHRASES};

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

/// One token request the token service answered.
#[derive(Debug, Clone)]
struct Asked {
    scopes: Vec<String>,
    authorization: Option<String>,
}

/// The token service: a loopback HTTP server answering `GET /token?service=…&scope=…`.
struct TokenService {
    realm: String,
    asked: Arc<Mutex<Vec<Asked>>>,
}

impl TokenService {
    fn start(issuer: Arc<TokenIssuer>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (issuer, log) = (issuer.clone(), log.clone());
                std::thread::spawn(move || serve(conn, &issuer, &log));
            }
        });
        TokenService { realm, asked }
    }

    fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }
}

fn serve(mut conn: TcpStream, issuer: &TokenIssuer, log: &Mutex<Vec<Asked>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_owned());
            }
        }
    }
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    log.lock().unwrap().push(Asked {
        scopes: scopes.clone(),
        authorization: authorization.clone(),
    });
    let service_ok = params.iter().any(|(k, v)| k == "service" && v == SERVICE);
    let (status, body) = if !service_ok {
        (
            "400 Bad Request",
            r#"{"details":"unknown service"}"#.to_owned(),
        )
    } else {
        match authorization.as_deref() {
            Some(a) if a != basic("alice", "pw") => (
                "401 Unauthorized",
                r#"{"details":"incorrect username or password"}"#.to_owned(),
            ),
            given => {
                let alice = given.is_some();
                let mut access: Vec<(String, Vec<String>)> = Vec::new();
                for scope in &scopes {
                    let mut parts = scope.splitn(3, ':');
                    let (Some("repository"), Some(name), Some(actions)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        continue;
                    };
                    let granted: Vec<String> = actions
                        .split(',')
                        .filter(|a| alice || (*a == "pull" && name == PUBLIC))
                        .map(str::to_owned)
                        .collect();
                    if !granted.is_empty() {
                        access.push((name.to_owned(), granted));
                    }
                }
                let access: Vec<(&str, Vec<&str>)> = access
                    .iter()
                    .map(|(n, a)| (n.as_str(), a.iter().map(String::as_str).collect()))
                    .collect();
                let access: Vec<(&str, &[&str])> =
                    access.iter().map(|(n, a)| (*n, a.as_slice())).collect();
                let subject = if alice { "alice" } else { "" };
                let token = issuer.token(SERVICE, subject, &access);
                (
                    "200 OK",
                    format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":300}}"#),
                )
            }
        }
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Percent-decoding of a query component (`+` is a space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
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
        let tokens = TokenService::start(issuer.clone());
        let server = NotaryServer::start_with_token_auth(
            &tmp.path().join("notary-server"),
            &TokenAuth {
                realm: tokens.realm.clone(),
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
