//! End-to-end: how `vouch sign` and `vouch verify` authenticate to registries, against a
//! small registry and token server served by this test on a loopback port (the Debian
//! registry in `tests/registry.rs` runs without authentication).
//!
//! Repositories of the test registry:
//! - `public/app`: Bearer challenge; the token server grants a token to anyone (Docker
//!   Hub's anonymous pull flow).
//! - `private/app`: Bearer challenge; a token only with basic credentials `alice:pw`. Its
//!   manifest endpoint refuses HEAD (405) and sends no `Docker-Content-Digest`, so the digest
//!   is the sha256 of the body vouch reads.
//! - `basic/app`: a `Basic` challenge, credentials sent to the registry itself.
//! - `lying/app`: no auth; a `Docker-Content-Digest` that is not the body's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use base64ct::{Base64, Encoding};
use common::{Server, Vouch};

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
const DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

fn sha256(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        Base64::encode_string(format!("{user}:{pass}").as_bytes())
    )
}

/// One request the test registry saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    authorization: Option<String>,
}

struct FakeRegistry {
    host: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

struct Reply {
    status: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn reply(status: &'static str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    Reply {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.to_vec(),
    }
}

fn handle(host: &str, req: &Seen) -> Reply {
    let auth = req.authorization.as_deref();
    let bearer = |repo: &str| {
        format!(
            r#"Bearer realm="http://{host}/token",service="test-registry",scope="repository:{repo}:pull""#
        )
    };
    let path = req.target.split('?').next().unwrap_or("");
    let query = req.target.split_once('?').map_or("", |(_, q)| q);
    match path {
        "/token" => {
            if !query.contains("service=test-registry") {
                return reply("400 Bad Request", &[], b"{}");
            }
            if query.contains("public%2Fapp") {
                reply("200 OK", &[], br#"{"access_token":"anonymous-token"}"#)
            } else if query.contains("private%2Fapp") && auth == Some(&basic("alice", "pw")) {
                reply(
                    "200 OK",
                    &[],
                    br#"{"token":"private-token","expires_in":300}"#,
                )
            } else {
                reply(
                    "401 Unauthorized",
                    &[],
                    br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
                )
            }
        }
        "/v2/public/app/manifests/v1" => {
            if auth != Some("Bearer anonymous-token") {
                return reply(
                    "401 Unauthorized",
                    &[("WWW-Authenticate", &bearer("public/app"))],
                    b"",
                );
            }
            reply(
                "200 OK",
                &[
                    ("Content-Type", DOCKER_V2),
                    ("Docker-Content-Digest", &sha256(MANIFEST)),
                ],
                MANIFEST,
            )
        }
        "/v2/private/app/manifests/v1" => {
            if auth != Some("Bearer private-token") {
                return reply(
                    "401 Unauthorized",
                    &[("WWW-Authenticate", &bearer("private/app"))],
                    b"",
                );
            }
            if req.method == "HEAD" {
                return reply("405 Method Not Allowed", &[], b"");
            }
            reply("200 OK", &[("Content-Type", OCI)], MANIFEST)
        }
        "/v2/basic/app/manifests/v1" => {
            if auth != Some(&basic("alice", "pw")) {
                return reply(
                    "401 Unauthorized",
                    &[("WWW-Authenticate", r#"Basic realm="test""#)],
                    b"",
                );
            }
            reply(
                "200 OK",
                &[("Docker-Content-Digest", &sha256(MANIFEST))],
                MANIFEST,
            )
        }
        "/v2/lying/app/manifests/v1" => {
            let other = sha256(b"something else");
            if req.method == "HEAD" {
                // No length: vouch has to GET.
                return reply("200 OK", &[("Content-Type", OCI)], b"");
            }
            reply(
                "200 OK",
                &[("Content-Type", OCI), ("Docker-Content-Digest", &other)],
                MANIFEST,
            )
        }
        _ => reply(
            "404 Not Found",
            &[],
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        ),
    }
}

fn serve(host: String, stream: TcpStream, seen: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_owned());
            }
        }
    }
    let req = Seen {
        method,
        target,
        authorization,
    };
    seen.lock().unwrap().push(req.clone());
    let r = handle(&host, &req);
    let mut out = stream;
    let lying_head = req.method == "HEAD" && req.target.starts_with("/v2/lying/");
    write!(out, "HTTP/1.1 {}\r\nConnection: close\r\n", r.status)?;
    for (k, v) in &r.headers {
        write!(out, "{k}: {v}\r\n")?;
    }
    if !lying_head {
        write!(out, "Content-Length: {}\r\n", r.body.len())?;
    }
    write!(out, "\r\n")?;
    if req.method != "HEAD" {
        out.write_all(&r.body)?;
    }
    out.flush()
}

impl FakeRegistry {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (h, s) = (host.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(h.clone(), stream, &s);
            }
        });
        FakeRegistry { host, seen }
    }

    fn token_requests(&self) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap().clone();
        self.seen.lock().unwrap().clear();
        seen.into_iter()
            .filter(|r| r.target.starts_with("/token"))
            .collect()
    }
}

fn with_stdin(v: &Vouch, args: &[&str], input: &str) -> common::Run {
    let mut child = v
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn anonymous_bearer_token_and_credentials() {
    let registry = FakeRegistry::start();
    let server = Server::start();
    let v = Vouch::new(&server);
    let r = &registry.host;
    let want = sha256(MANIFEST);
    for repo in ["public/app", "private/app", "basic/app", "lying/app"] {
        v.run(&["init", &format!("{r}/{repo}")]).ok();
    }
    registry.token_requests();

    // Anonymous bearer flow: a token fetched without credentials.
    let signed = v
        .run(&["--output", "json", "sign", &format!("{r}/public/app:v1")])
        .json();
    assert_eq!(signed["digest"], want);
    assert_eq!(signed["length"], MANIFEST.len());
    assert_eq!(signed["media_type"], DOCKER_V2);
    let tokens = registry.token_requests();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert!(
        tokens[0]
            .target
            .contains("scope=repository%3Apublic%2Fapp%3Apull"),
        "{tokens:?}"
    );
    assert_eq!(tokens[0].authorization, None);

    // A private repository without credentials: refused, with what to do.
    let private = format!("{r}/private/app:v1");
    v.run(&["sign", &private])
        .fails(1, &["401", "docker login", "--registry-password-stdin"]);

    // Credentials from ~/.docker/config.json, sent to the token server only; the digest is
    // the sha256 of the manifest read with GET (HEAD is refused, no digest header).
    let docker_dir = v.trust_dir.parent().unwrap().join(".docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    let config = docker_dir.join("config.json");
    let auth = Base64::encode_string(b"alice:pw");
    std::fs::write(
        &config,
        format!(r#"{{"auths":{{"http://{r}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let signed = v.run(&["--output", "json", "sign", &private]).json();
    assert_eq!(signed["digest"], want);
    assert_eq!(signed["media_type"], OCI);
    let tokens = registry.token_requests();
    assert_eq!(
        tokens.last().unwrap().authorization.as_deref(),
        Some(basic("alice", "pw").as_str())
    );
    v.run(&["verify", &private]).ok();
    // Basic challenge: the credentials go to the registry itself.
    v.run(&["sign", &format!("{r}/basic/app:v1")]).ok();

    // Wrong credentials in the docker config: said so.
    let wrong = Base64::encode_string(b"alice:nope");
    std::fs::write(
        &config,
        format!(r#"{{"auths":{{"{r}":{{"auth":"{wrong}"}}}}}}"#),
    )
    .unwrap();
    v.run(&["sign", &private])
        .fails(1, &["401", "in the docker config are refused"]);

    // Credentials given on the command line, password on stdin.
    std::fs::remove_file(&config).unwrap();
    let login = ["--registry-username", "alice", "--registry-password-stdin"];
    let mut args = vec!["verify", private.as_str()];
    args.extend(login);
    let out = with_stdin(&v, &args, "pw\n");
    assert_eq!(out.ok().trim(), format!("{r}/private/app@{want}"));
    with_stdin(&v, &args, "wrong\n").fails(1, &["401", "check --registry-username"]);
    with_stdin(&v, &args, "").fails(1, &["stdin is empty"]);

    // A registry whose digest header disagrees with the manifest it sent: refused.
    v.run(&["sign", &format!("{r}/lying/app:v1")])
        .fails(1, &["refusing it", &want]);
}
