//! The registry client's reads and writes ([`vouch_verifier::registry::Registries`])
//! against a small registry scripted by this test on a loopback port: what a trust mirror
//! does (push blobs and a manifest, read them back), and what it must refuse when the
//! registry lies or never stops sending.
//!
//! Repositories of the scripted registry, by their first path component:
//! - `open/…`: no authentication.
//! - `bearer/…`: a `Bearer` challenge; the token server grants `alice:pw` what she asks
//!   for, `bob:pw` pull only, nobody anything without credentials. Writes need a token
//!   with push.
//! - `basic/…`: a `Basic` challenge for `alice:pw`.
//! - `lying/…`: manifests with another `Docker-Content-Digest`, blobs with other bytes, a
//!   manifest push answered with another digest.
//! - `endless/…`: manifest and blob bodies that never end.
//! - `redirect/…`: `Basic` authentication, blob `GET`s redirected to `localhost` (another
//!   host than `127.0.0.1`), as registries redirect to storage.
//! - `stall/…`: no answer until a second request for the same repository arrives (then
//!   `404`), or for [`STALL`] (then `500`): a stalled registry, and a witness of requests
//!   in flight at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use vouch_tuf::reference::Digest;
use vouch_verifier::registry::{
    Access, Credentials, Login, Registries, RegistryError, RegistryOptions, RegistryRepo,
    ACCEPT_MANIFESTS,
};
use vouch_verifier::transport::{RegistryRepository, TransportError};
use zeroize::Zeroizing;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// One request the scripted registry saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    authorization: Option<String>,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    /// Blobs by (repository, digest).
    blobs: HashMap<(String, String), Vec<u8>>,
    /// Manifests by (repository, tag or digest): media type and bytes.
    manifests: HashMap<(String, String), (String, Vec<u8>)>,
    uploads: u64,
}

struct Request {
    seen: Seen,
    content_type: Option<String>,
    body: Vec<u8>,
}

struct Reply {
    status: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// No `Content-Length`; the body is sent for ever.
    endless: bool,
}

fn reply(status: &'static str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    Reply {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.to_vec(),
        endless: false,
    }
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        Base64::encode_string(format!("{user}:{pass}").as_bytes())
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
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

fn query_param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn not_found(code: &str) -> Reply {
    reply(
        "404 Not Found",
        &[],
        format!(r#"{{"errors":[{{"code":"{code}","message":"unknown"}}]}}"#).as_bytes(),
    )
}

/// The registry's answer to `req` (on `host`, `127.0.0.1:PORT`).
fn handle(host: &str, port: u16, state: &mut State, req: &Request) -> Reply {
    let seen = &req.seen;
    let auth = seen.authorization.as_deref();
    let path = seen.target.split('?').next().unwrap_or("").to_owned();
    if path == "/token" {
        let scope = query_param(&seen.target, "scope").unwrap_or_default();
        let wants_push = scope.ends_with(":pull,push") || scope.ends_with(":push,pull");
        let token = if auth == Some(&basic("alice", "pw")) {
            if wants_push {
                "T-push"
            } else {
                "T-pull"
            }
        } else if auth == Some(&basic("bob", "pw")) {
            "T-pull"
        } else {
            return reply(
                "401 Unauthorized",
                &[],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
            );
        };
        return reply(
            "200 OK",
            &[],
            format!(r#"{{"token":"{token}"}}"#).as_bytes(),
        );
    }
    if let Some(digest) = path.strip_prefix("/storage/") {
        return match state.blobs.iter().find(|((_, d), _)| d == digest) {
            Some((_, bytes)) => reply("200 OK", &[], &bytes.clone()),
            None => not_found("BLOB_UNKNOWN"),
        };
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return not_found("NAME_UNKNOWN");
    };
    let (repo, kind, arg) = if let Some((repo, arg)) = rest.split_once("/blobs/uploads/") {
        (repo.to_owned(), "uploads", arg.to_owned())
    } else if let Some((repo, arg)) = rest.split_once("/blobs/") {
        (repo.to_owned(), "blobs", arg.to_owned())
    } else if let Some((repo, arg)) = rest.split_once("/manifests/") {
        (repo.to_owned(), "manifests", arg.to_owned())
    } else {
        return not_found("NAME_UNKNOWN");
    };
    let mode = repo.split('/').next().unwrap_or("").to_owned();
    let write = matches!(seen.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE");

    // Authentication.
    match mode.as_str() {
        "bearer" => {
            let ok = match auth {
                Some("Bearer T-push") => true,
                Some("Bearer T-pull") => !write,
                _ => false,
            };
            if !ok {
                let actions = if write { "pull,push" } else { "pull" };
                let mut challenge = format!(
                    r#"Bearer realm="http://{host}/token",service="scripted",scope="repository:{repo}:{actions}""#
                );
                if auth.is_some() {
                    challenge.push_str(r#",error="insufficient_scope""#);
                }
                return reply(
                    "401 Unauthorized",
                    &[("WWW-Authenticate", &challenge)],
                    br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#,
                );
            }
        }
        "basic" | "redirect" if auth != Some(&basic("alice", "pw")) => {
            return reply(
                "401 Unauthorized",
                &[("WWW-Authenticate", r#"Basic realm="scripted""#)],
                b"",
            );
        }
        _ => {}
    }

    match (seen.method.as_str(), kind) {
        ("POST", "uploads") => {
            if let (Some(mount), Some(from)) = (
                query_param(&seen.target, "mount"),
                query_param(&seen.target, "from"),
            ) {
                if let Some(bytes) = state.blobs.get(&(from, mount.clone())).cloned() {
                    state.blobs.insert((repo.clone(), mount.clone()), bytes);
                    return reply("201 Created", &[("Docker-Content-Digest", &mount)], b"");
                }
            }
            state.uploads += 1;
            // A relative location with a query string of its own.
            let location = format!("/v2/{repo}/blobs/uploads/u{}?_state=s%2B1", state.uploads);
            reply("202 Accepted", &[("Location", &location)], b"")
        }
        ("PUT", "uploads") => {
            if query_param(&seen.target, "_state").as_deref() != Some("s+1") {
                return reply("400 Bad Request", &[], b"lost _state");
            }
            let Some(digest) = query_param(&seen.target, "digest") else {
                return reply("400 Bad Request", &[], b"no digest");
            };
            if Digest::sha256_of(&req.body).as_str() != digest {
                return reply(
                    "400 Bad Request",
                    &[],
                    br#"{"errors":[{"code":"DIGEST_INVALID","message":"digest mismatch"}]}"#,
                );
            }
            state
                .blobs
                .insert((repo.clone(), digest.clone()), req.body.clone());
            reply("201 Created", &[("Docker-Content-Digest", &digest)], b"")
        }
        ("DELETE", "uploads") => {
            if query_param(&seen.target, "_state").as_deref() != Some("s+1") {
                return reply("400 Bad Request", &[], b"lost _state");
            }
            reply("204 No Content", &[], b"")
        }
        ("HEAD" | "GET", "blobs") => {
            if mode == "endless" {
                return Reply {
                    endless: true,
                    ..reply("200 OK", &[], b"")
                };
            }
            let Some(bytes) = state.blobs.get(&(repo.clone(), arg.clone())).cloned() else {
                return not_found("BLOB_UNKNOWN");
            };
            if mode == "redirect" && seen.method == "GET" {
                let to = format!("http://localhost:{port}/storage/{arg}");
                return reply("307 Temporary Redirect", &[("Location", &to)], b"");
            }
            let bytes = if mode == "lying" {
                b"other bytes".to_vec()
            } else {
                bytes
            };
            reply("200 OK", &[("Docker-Content-Digest", &arg)], &bytes)
        }
        ("PUT", "manifests") => {
            let digest = Digest::sha256_of(&req.body).to_string();
            let media_type = req.content_type.clone().unwrap_or_default();
            for key in [arg.clone(), digest.clone()] {
                state
                    .manifests
                    .insert((repo.clone(), key), (media_type.clone(), req.body.clone()));
            }
            let answered = if mode == "lying" {
                Digest::sha256_of(b"another manifest").to_string()
            } else {
                digest
            };
            reply("201 Created", &[("Docker-Content-Digest", &answered)], b"")
        }
        ("HEAD" | "GET", "manifests") => {
            if mode == "endless" {
                return Reply {
                    endless: true,
                    ..reply("200 OK", &[("Content-Type", OCI_MANIFEST)], b"")
                };
            }
            let Some((media_type, bytes)) = state.manifests.get(&(repo.clone(), arg)).cloned()
            else {
                return not_found("MANIFEST_UNKNOWN");
            };
            let digest = if mode == "lying" {
                Digest::sha256_of(b"another manifest").to_string()
            } else {
                Digest::sha256_of(&bytes).to_string()
            };
            let bytes = if mode == "lying" && seen.target.contains("sha256:") {
                // Asked by digest: other bytes, with a header that matches them.
                let other = br#"{"schemaVersion":2}"#.to_vec();
                return reply(
                    "200 OK",
                    &[
                        ("Content-Type", &media_type),
                        ("Docker-Content-Digest", Digest::sha256_of(&other).as_str()),
                    ],
                    &other,
                );
            } else {
                bytes
            };
            reply(
                "200 OK",
                &[
                    ("Content-Type", &media_type),
                    ("Docker-Content-Digest", &digest),
                ],
                &bytes,
            )
        }
        _ => reply("405 Method Not Allowed", &[], b""),
    }
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let (mut authorization, mut content_type, mut length) = (None, None, 0usize);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let v = v.trim().to_owned();
            match k.to_ascii_lowercase().as_str() {
                "authorization" => authorization = Some(v),
                "content-type" => content_type = Some(v),
                "content-length" => length = v.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Request {
        seen: Seen {
            method,
            target,
            authorization,
        },
        content_type,
        body,
    })
}

/// How long a `stall/…` request waits for a second one before it is answered `500`.
const STALL: Duration = Duration::from_secs(8);

/// For a `stall/…` request: waits (without the state's lock) until another request for the
/// same repository was seen, then `404`; `500` when none came within [`STALL`].
fn stall(state: &Mutex<State>, target: &str) -> Option<Reply> {
    let repo = target
        .strip_prefix("/v2/stall/")?
        .split('/')
        .next()?
        .to_owned();
    let prefix = format!("/v2/stall/{repo}/");
    let start = Instant::now();
    while start.elapsed() < STALL {
        let seen = state.lock().unwrap().seen.clone();
        if seen
            .iter()
            .filter(|s| s.target.starts_with(&prefix))
            .count()
            >= 2
        {
            return Some(not_found("MANIFEST_UNKNOWN"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(reply("500 Internal Server Error", &[], b""))
}

fn serve(host: &str, port: u16, stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let req = read_request(&stream)?;
    state.lock().unwrap().seen.push(req.seen.clone());
    let r = match stall(state, &req.seen.target) {
        Some(r) => r,
        None => handle(host, port, &mut state.lock().unwrap(), &req),
    };
    let mut out = stream;
    write!(out, "HTTP/1.1 {}\r\nConnection: close\r\n", r.status)?;
    for (k, v) in &r.headers {
        write!(out, "{k}: {v}\r\n")?;
    }
    if !r.endless {
        write!(out, "Content-Length: {}\r\n", r.body.len())?;
    }
    write!(out, "\r\n")?;
    if req.seen.method == "HEAD" {
        return out.flush();
    }
    if r.endless {
        let chunk = vec![b'{'; 64 * 1024];
        while out.write_all(&chunk).is_ok() {}
        return Ok(());
    }
    out.write_all(&r.body)?;
    out.flush()
}

struct Scripted {
    /// `127.0.0.1:PORT`.
    host: String,
    state: Arc<Mutex<State>>,
}

impl Scripted {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let host = format!("127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State::default()));
        let (h, s) = (host.clone(), state.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (h, s) = (h.clone(), s.clone());
                std::thread::spawn(move || {
                    let _ = serve(&h, port, stream, &s);
                });
            }
        });
        Scripted { host, state }
    }

    /// The requests seen since the last call.
    fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut self.state.lock().unwrap().seen)
    }

    fn client(&self, login: Login) -> Registries {
        Registries::new(RegistryOptions::new(Vec::new(), login).unwrap()).unwrap()
    }

    /// Credentials for this registry only, as a service's configuration names them.
    fn login(&self, user: &str) -> Login {
        Login::PerRegistry(BTreeMap::from([(
            self.host.clone(),
            Credentials::new(user.into(), Zeroizing::new("pw".into())),
        )]))
    }
}

fn manifest_for(config: &Digest, config_len: usize, layer: &Digest, layer_len: usize) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_len}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{layer_len}}}]}}"#
    )
    .into_bytes()
}

/// Pushes a config, a layer and a manifest tagged `v1` to `repo`; the manifest's bytes.
fn push_artifact(r: &mut Registries, host: &str, repo: &str) -> (Vec<u8>, Digest) {
    let config = b"{}".to_vec();
    let layer = b"trust metadata".to_vec();
    let (cd, ld) = (Digest::sha256_of(&config), Digest::sha256_of(&layer));
    r.push_blob(host, repo, &cd, &config).unwrap();
    r.push_blob(host, repo, &ld, &layer).unwrap();
    let manifest = manifest_for(&cd, config.len(), &ld, layer.len());
    let digest = r
        .put_manifest(host, repo, "v1", OCI_MANIFEST, &manifest)
        .unwrap();
    assert_eq!(digest, Digest::sha256_of(&manifest));
    (manifest, digest)
}

#[test]
fn pushed_blobs_and_manifest_read_back() {
    let reg = Scripted::start();
    let host = reg.host.as_str();
    let mut r = reg.client(Login::Anonymous);
    let (manifest, digest) = push_artifact(&mut r, host, "open/app");
    let seen = reg.take_seen();
    let uploads: Vec<_> = seen
        .iter()
        .filter(|s| s.method == "PUT" && s.target.contains("/uploads/"))
        .collect();
    assert_eq!(uploads.len(), 2, "{seen:?}");
    // The location's own query is kept, the digest added.
    assert!(
        uploads[0].target.contains("_state=s%2B1&digest=sha256%3A"),
        "{uploads:?}"
    );

    for reference in ["v1", digest.as_str()] {
        let got = r
            .get_manifest(host, "open/app", reference, ACCEPT_MANIFESTS, 1 << 20)
            .unwrap();
        assert_eq!(got.bytes, manifest);
        assert_eq!(got.digest, digest);
        assert_eq!(got.media_type.as_deref(), Some(OCI_MANIFEST));
    }
    let layer = Digest::sha256_of(b"trust metadata");
    assert_eq!(
        r.get_blob(host, "open/app", &layer, 1 << 20).unwrap(),
        b"trust metadata"
    );
    assert!(r.blob_exists(host, "open/app", &layer).unwrap());
    let absent = Digest::sha256_of(b"absent");
    assert!(!r.blob_exists(host, "open/app", &absent).unwrap());
    let e = r.get_blob(host, "open/app", &absent, 1 << 20).unwrap_err();
    assert!(matches!(e, RegistryError::BlobUnknown { .. }), "{e}");
    let e = r
        .get_manifest(host, "open/app", "v2", ACCEPT_MANIFESTS, 1 << 20)
        .unwrap_err();
    assert!(matches!(e, RegistryError::ManifestUnknown { .. }), "{e}");

    // A blob already there is not uploaded again.
    reg.take_seen();
    r.push_blob(host, "open/app", &layer, b"trust metadata")
        .unwrap();
    let seen = reg.take_seen();
    assert!(seen.iter().all(|s| s.method == "HEAD"), "{seen:?}");

    // Mounted from another repository of the registry; an unknown blob is not, and the
    // upload the registry started is cancelled.
    assert!(r
        .mount_blob(host, "open/mirror", &layer, "open/app")
        .unwrap());
    assert!(r.blob_exists(host, "open/mirror", &layer).unwrap());
    assert!(!r
        .mount_blob(host, "open/mirror", &absent, "open/app")
        .unwrap());
    let seen = reg.take_seen();
    assert!(
        seen.iter().any(|s| s.method == "DELETE"
            && s.target.contains("/blobs/uploads/u")
            && s.target.contains("_state=s%2B1")),
        "{seen:?}"
    );

    // Bytes that are not the digest they are pushed as: nothing is sent.
    let e = r
        .push_blob(host, "open/app", &absent, b"other")
        .unwrap_err();
    assert!(matches!(e, RegistryError::NotTheDigest { .. }), "{e}");
    let e = r
        .put_manifest(host, "open/app", absent.as_str(), OCI_MANIFEST, &manifest)
        .unwrap_err();
    assert!(matches!(e, RegistryError::NotTheDigest { .. }), "{e}");
    assert!(reg.take_seen().is_empty());
}

/// A registry whose digests disagree with its bytes is refused, naming both digests.
#[test]
fn a_lying_registry_is_refused() {
    let reg = Scripted::start();
    let host = reg.host.as_str();
    let mut r = reg.client(Login::Anonymous);
    let config = b"{}".to_vec();
    let cd = Digest::sha256_of(&config);
    r.push_blob(host, "lying/app", &cd, &config).unwrap();

    // The blob comes back as other bytes.
    let e = r.get_blob(host, "lying/app", &cd, 1 << 20).unwrap_err();
    let other = Digest::sha256_of(b"other bytes");
    assert!(
        matches!(&e, RegistryError::BlobMismatch { digest, actual, .. } if *digest == cd && *actual == other),
        "{e}"
    );
    let text = e.to_string();
    assert!(
        text.contains(cd.as_str()) && text.contains(other.as_str()),
        "{text}"
    );

    // The manifest push is answered with another digest.
    let manifest = manifest_for(&cd, 2, &cd, 2);
    let e = r
        .put_manifest(host, "lying/app", "v1", OCI_MANIFEST, &manifest)
        .unwrap_err();
    assert!(
        matches!(e, RegistryError::StoredDigestMismatch { .. }),
        "{e}"
    );

    // Read by tag: the digest header is not the bytes'.
    let e = r
        .get_manifest(host, "lying/app", "v1", ACCEPT_MANIFESTS, 1 << 20)
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    // Read by digest: other bytes (with a header matching them) are not the digest asked.
    let asked = Digest::sha256_of(&manifest);
    let e = r
        .get_manifest(host, "lying/app", asked.as_str(), ACCEPT_MANIFESTS, 1 << 20)
        .unwrap_err();
    assert!(
        matches!(&e, RegistryError::DigestMismatch { claimed, .. } if *claimed == asked.to_string()),
        "{e}"
    );
}

/// A registry that never stops sending is cut off at the cap, not read to the end.
#[test]
fn endless_answers_are_cut_off_at_the_cap() {
    let reg = Scripted::start();
    let host = reg.host.as_str();
    let r = reg.client(Login::Anonymous);
    let e = r
        .get_manifest(host, "endless/app", "v1", ACCEPT_MANIFESTS, 64 * 1024)
        .unwrap_err();
    assert!(
        matches!(e, RegistryError::TooLarge { limit: 65536, .. }),
        "{e}"
    );
    let d = Digest::sha256_of(b"x");
    let e = r.get_blob(host, "endless/app", &d, 1 << 20).unwrap_err();
    assert!(
        matches!(e, RegistryError::TooLarge { limit: 1048576, .. }),
        "{e}"
    );
}

/// Reads get a pull token; the first write re-asks once, for `pull,push`, and its grant
/// serves later writes. The credentials go to the token server only.
#[test]
fn a_push_asks_for_a_pull_and_push_token() {
    let reg = Scripted::start();
    let host = reg.host.as_str();
    let mut seed = reg.client(reg.login("alice"));
    let (manifest, _) = push_artifact(&mut seed, host, "bearer/app");
    reg.take_seen();

    let mut r = reg.client(reg.login("alice"));
    let got = r
        .get_manifest(host, "bearer/app", "v1", ACCEPT_MANIFESTS, 1 << 20)
        .unwrap();
    assert_eq!(got.bytes, manifest);
    let blob = b"more metadata".to_vec();
    let d = Digest::sha256_of(&blob);
    r.push_blob(host, "bearer/app", &d, &blob).unwrap();
    r.put_manifest(host, "bearer/app", "v2", OCI_MANIFEST, &manifest)
        .unwrap();
    let seen = reg.take_seen();
    let scopes: Vec<String> = seen
        .iter()
        .filter(|s| s.target.starts_with("/token"))
        .map(|s| query_param(&s.target, "scope").unwrap())
        .collect();
    assert_eq!(
        scopes,
        [
            "repository:bearer/app:pull",
            "repository:bearer/app:pull,push"
        ],
        "{seen:?}"
    );
    let alice = basic("alice", "pw");
    for s in &seen {
        let to_token_server = s.target.starts_with("/token");
        assert_eq!(
            s.authorization.as_deref() == Some(alice.as_str()),
            to_token_server,
            "{s:?}"
        );
    }
    assert!(r.used_credentials(host, "bearer/app"));

    // Without credentials: refused, saying where to look.
    let anonymous = reg.client(Login::Anonymous);
    let e = anonymous
        .get_manifest(host, "bearer/app", "v1", ACCEPT_MANIFESTS, 1 << 20)
        .unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
}

/// A login granted pull only: its push is asked again once, then refused as a push.
#[test]
fn a_pull_only_grant_cannot_push() {
    let reg = Scripted::start();
    let host = reg.host.as_str();
    let mut r = reg.client(reg.login("bob"));
    let blob = b"layer".to_vec();
    let d = Digest::sha256_of(&blob);
    let e = r.push_blob(host, "bearer/app", &d, &blob).unwrap_err();
    assert!(
        matches!(
            &e,
            RegistryError::Unauthorized {
                access: Access::Push,
                ..
            }
        ),
        "{e}"
    );
    let text = e.to_string();
    assert!(text.contains("refused to push to bearer/app"), "{text}");
    assert!(
        text.contains(&format!("check the credentials configured for {host}")),
        "{text}"
    );
    assert!(!text.contains("pw") && !text.contains("T-pull"), "{text}");
    let seen = reg.take_seen();
    let posts = seen.iter().filter(|s| s.method == "POST").count();
    assert_eq!(posts, 2, "one retry with a new token: {seen:?}");
}

/// A `Basic` challenge: the credentials go to the registry, for reads and writes.
#[test]
fn basic_authentication_reads_and_writes() {
    let reg = Scripted::start();
    let host = reg.host.as_str();
    let mut r = reg.client(reg.login("alice"));
    let (manifest, digest) = push_artifact(&mut r, host, "basic/app");
    let got = r
        .get_manifest(
            host,
            "basic/app",
            digest.as_str(),
            ACCEPT_MANIFESTS,
            1 << 20,
        )
        .unwrap();
    assert_eq!(got.bytes, manifest);
    let seen = reg.take_seen();
    assert!(
        seen.iter().all(|s| !s.target.starts_with("/token")),
        "{seen:?}"
    );

    let wrong = reg.client(reg.login("mallory"));
    let e = wrong
        .get_manifest(host, "basic/app", "v1", ACCEPT_MANIFESTS, 1 << 20)
        .unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
}

/// Blob reads follow the registry's redirect to storage on another host, without the
/// registry's `Authorization`.
#[test]
fn blob_redirects_are_followed_without_the_credentials() {
    let reg = Scripted::start();
    let host = reg.host.as_str();
    let mut r = reg.client(reg.login("alice"));
    let blob = b"layer behind a redirect".to_vec();
    let d = Digest::sha256_of(&blob);
    r.push_blob(host, "redirect/app", &d, &blob).unwrap();
    reg.take_seen();
    assert_eq!(r.get_blob(host, "redirect/app", &d, 1 << 20).unwrap(), blob);
    let seen = reg.take_seen();
    let storage: Vec<_> = seen
        .iter()
        .filter(|s| s.target.starts_with("/storage/"))
        .collect();
    assert_eq!(storage.len(), 1, "{seen:?}");
    assert_eq!(storage[0].authorization, None);
}

#[test]
fn a_stalled_registry_is_given_up_at_the_callers_deadline() {
    let reg = Scripted::start();
    let shared = Arc::new(Mutex::new(reg.client(Login::Anonymous)));
    let repo = RegistryRepo::new(shared.clone(), &reg.host, "stall/alone");
    // The answer timeout is far longer than the second the caller allows: the deadline wins.
    let deadline = Some(Instant::now() + Duration::from_secs(1));
    let e = repo.manifest("v1", 1 << 20, deadline).unwrap_err();
    assert!(e.is_timed_out(), "{e}");
    let layer = Digest::sha256_of(b"trust metadata");
    let deadline = Some(Instant::now() + Duration::from_secs(1));
    let e = RegistryRepo::new(shared.clone(), &reg.host, "stall/blob")
        .blob(&layer, 1 << 20, deadline)
        .unwrap_err();
    assert!(matches!(e, TransportError::TimedOut { .. }), "{e}");
    // The client itself says so too.
    let deadline = Some(Instant::now() + Duration::from_secs(1));
    let e = shared
        .lock()
        .unwrap()
        .get_manifest_by(
            &reg.host,
            "stall/client",
            "v1",
            ACCEPT_MANIFESTS,
            1 << 20,
            deadline,
        )
        .unwrap_err();
    assert!(matches!(e, RegistryError::TimedOut { .. }), "{e}");
    // A deadline already past sends nothing.
    reg.take_seen();
    let e = repo
        .manifest("v1", 1 << 20, Some(Instant::now()))
        .unwrap_err();
    assert!(e.is_timed_out(), "{e}");
    assert!(reg.take_seen().is_empty());
}

#[test]
fn reads_through_one_shared_client_are_in_flight_at_once() {
    let reg = Scripted::start();
    let shared = Arc::new(Mutex::new(reg.client(Login::Anonymous)));
    // The registry answers neither request until it has seen both: read one after the
    // other, the first would wait out the stall and be answered 500.
    let reads: Vec<_> = ["v1", "v2"]
        .into_iter()
        .map(|tag| {
            let repo = RegistryRepo::new(shared.clone(), &reg.host, "stall/pair");
            std::thread::spawn(move || {
                repo.manifest(tag, 1 << 20, Some(Instant::now() + Duration::from_secs(30)))
            })
        })
        .collect();
    for read in reads {
        let e = read.join().unwrap().unwrap_err();
        assert!(matches!(e, TransportError::NotFound { .. }), "{e}");
    }
}
