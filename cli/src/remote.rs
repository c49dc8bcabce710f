//! The vouch server's HTTP API, as the CLI uses it: fetching metadata (as a `vouch-verifier`
//! [`Transport`], with the bearer token), reading online keys and publishing updates.
//!
//! Errors say which server was asked and what to do: an unreachable server names the URL
//! and `--server`, a 401 asks for a token, a 409 is returned as [`PublishError::Conflict`]
//! so that callers refresh and retry.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::StatusCode;
use thiserror::Error;
use vouch_tuf::json;
use vouch_tuf::metadata::Key;
use vouch_tuf::reference::Gun;
use vouch_tuf::types::{RoleName, TopLevelRole};
use vouch_verifier::transport::{fetch_capped, read_capped, Transport, TransportError};
use zeroize::Zeroizing;

use crate::context::Context;

/// Largest error body read from the server.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// Largest online-key document read from the server.
const MAX_KEY_BODY: u64 = 16 * 1024;
/// Longest one metadata fetch (or online-key request) may take, body included (a server
/// trickling bytes is cut off).
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest one publish may take, upload and answer included (up to 16 MiB on a slow link).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a publish failed.
#[derive(Debug, Error)]
pub enum PublishError {
    /// Someone else published first: refresh, re-apply and retry.
    #[error("someone else published to {gun} first (409 Conflict)")]
    Conflict {
        /// The repository.
        gun: String,
    },
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// One repository on one server.
#[derive(Clone)]
pub struct Remote {
    server: String,
    gun: Gun,
    client: Client,
    token: Option<Zeroizing<String>>,
    /// Deadline of one request other than a publish, body included ([`FETCH_TIMEOUT`]).
    request_timeout: Duration,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("server", &self.server)
            .field("gun", &self.gun)
            .finish_non_exhaustive()
    }
}

/// The server's error message from a `{"errors":[{"code","message"}]}` body, or the body.
fn error_message(status: StatusCode, resp: Response) -> String {
    let body = read_capped("", resp, MAX_ERROR_BODY).unwrap_or_default();
    let parsed = json::parse(&body).ok().and_then(|v| {
        let first = v.as_object()?.get("errors")?;
        let vouch_tuf::json::Value::Array(items) = first else {
            return None;
        };
        let e = items.first()?.as_object()?;
        let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
        let msg = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
        Some(format!("{code}: {msg}"))
    });
    let detail = parsed.unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
    if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    }
}

impl Remote {
    /// The repository `gun` on the context's server.
    pub fn new(ctx: &Context, gun: &Gun) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vouch/", env!("CARGO_PKG_VERSION")));
        if ctx.server.starts_with("http://") {
            // Plain HTTP, and redirects are not followed.
            builder = vouch_verifier::transport::without_certificate_store(builder);
        }
        let client = builder.build().context("cannot build the HTTP client")?;
        Ok(Remote {
            server: ctx.server.clone(),
            gun: gun.clone(),
            client,
            token: ctx.token.clone(),
            request_timeout: FETCH_TIMEOUT,
        })
    }

    /// The server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn tuf_url(&self, file: &str) -> String {
        format!("{}/v2/{}/_trust/tuf/{file}", self.server, self.gun)
    }

    /// `req` with the token, and a deadline for the whole exchange, body included
    /// ([`FETCH_TIMEOUT`]; a caller may set another after this).
    fn authed(&self, req: RequestBuilder) -> RequestBuilder {
        let req = req.timeout(self.request_timeout);
        match &self.token {
            Some(t) => req.bearer_auth(t.as_str()),
            None => req,
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> anyhow::Error {
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        anyhow!(
            "cannot reach the vouch server at {} ({msg}): is it running? (set --server or VOUCH_SERVER)",
            self.server
        )
    }

    fn refused(&self, what: &str, status: StatusCode, resp: Response) -> anyhow::Error {
        let msg = error_message(status, resp);
        let hint = match status {
            StatusCode::UNAUTHORIZED => {
                " (pass --token-file FILE or set VOUCH_TOKEN to a token with push access)"
            }
            StatusCode::FORBIDDEN => " (the token does not grant this on the repository)",
            _ => "",
        };
        anyhow!("the server refused {what} for {}: {msg}{hint}", self.gun)
    }

    /// The server-held online key of `role` (timestamp or snapshot), created by the server on
    /// first request.
    pub fn online_key(&self, role: TopLevelRole) -> anyhow::Result<Key> {
        let what = format!("the {role} key");
        let resp = self
            .authed(self.client.get(self.tuf_url(&format!("{role}.key"))))
            .send()
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.refused(&what, status, resp));
        }
        let body = read_capped(&what, resp, MAX_KEY_BODY)?;
        let v = json::parse(&body).with_context(|| format!("{what} is not JSON"))?;
        Key::from_value(v).with_context(|| format!("{what} is not a TUF key object"))
    }

    /// Asks the server to make a new online key for `role` (timestamp or snapshot); it keeps
    /// signing with the key the current root lists until a root listing the new one is
    /// published.
    pub fn rotate_online_key(&self, role: TopLevelRole) -> anyhow::Result<Key> {
        let what = format!("rotating the {role} key");
        let resp = self
            .authed(self.client.post(self.tuf_url(&format!("{role}.key"))))
            .send()
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.refused(&what, status, resp));
        }
        let body = read_capped(&what, resp, MAX_KEY_BODY)?;
        let v = json::parse(&body).with_context(|| format!("{what}: the answer is not JSON"))?;
        Key::from_value(v).with_context(|| format!("{what}: the answer is not a TUF key object"))
    }

    /// Publishes one atomic update of `files` (role name, exact bytes).
    pub fn publish(&self, files: &[(RoleName, Vec<u8>)]) -> Result<(), PublishError> {
        // The body is built in memory (metadata is small) so that it has a length and a
        // server that answers before reading it (401, 413) is heard rather than cut off.
        let (content_type, body) = multipart_body(files);
        let resp = self
            .authed(self.client.post(self.tuf_url("")))
            .timeout(PUBLISH_TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::CONFLICT {
            return Err(PublishError::Conflict {
                gun: self.gun.to_string(),
            });
        }
        Err(PublishError::Other(self.refused(
            "the update",
            status,
            resp,
        )))
    }
}

/// A `multipart/form-data` body with one part named `files` per role, its file name the
/// role name, as the server (and the notary client before it) expects.
fn multipart_body(files: &[(RoleName, Vec<u8>)]) -> (String, Vec<u8>) {
    let mut random = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
    let boundary = format!("vouch-{}", vouch_tuf::hex::encode(random));
    let mut body = Vec::new();
    for (role, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{}\"\r\nContent-Type: application/json\r\n\r\n",
                role.as_str()
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn bad_path(path: &str) -> bool {
    path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path.contains('?')
        || path.contains('#')
        || path
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
}

impl Transport for Remote {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        self.fetch_by(path, max_len, Instant::now() + FETCH_TIMEOUT)
    }

    /// The whole request, body included, is over by `deadline` (at most [`FETCH_TIMEOUT`]
    /// from now): a server trickling bytes is cut off ([`TransportError::TimedOut`]).
    fn fetch_by(
        &self,
        path: &str,
        max_len: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
        if bad_path(path) {
            return Err(TransportError::BadPath {
                path: path.to_owned(),
            });
        }
        let deadline = deadline.min(Instant::now() + FETCH_TIMEOUT);
        let request = self.authed(self.client.get(self.tuf_url(path)));
        // A status error carries the server's message; any other network error says the
        // server could not be reached.
        let answered = std::cell::Cell::new(false);
        fetch_capped(path, request, max_len, deadline, |status, resp| {
            answered.set(true);
            TransportError::Network {
                path: path.to_owned(),
                message: error_message(status, resp),
            }
        })
        .map_err(|e| match e {
            TransportError::Network { message, .. } if !answered.get() => TransportError::Network {
                path: path.to_owned(),
                message: format!(
                    "cannot reach the vouch server at {} ({message}): is it running? \
                         (set --server or VOUCH_SERVER)",
                    self.server
                ),
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_below_the_repository() {
        for bad in ["", "/x", "../x", "a//b", "x?y", "a\\b"] {
            assert!(bad_path(bad), "{bad}");
        }
        for good in ["root.json", "3.targets.json", "targets%2Freleases.json"] {
            assert!(!bad_path(good), "{good}");
        }
    }

    /// A server that answers every request by trickling a 400-byte body, 4 bytes every
    /// 50 ms (each wait far below the client's per-read timeout); and whether it saw the
    /// client hang up before the body ended.
    fn trickling_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = format!("http://{}", listener.local_addr().unwrap());
        let hung_up = Arc::new(AtomicBool::new(false));
        let seen = hung_up.clone();
        std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let body = vec![b' '; 400];
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 400\r\n\r\n");
            for piece in body.chunks(4) {
                if stream.write_all(piece).is_err() {
                    seen.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        (server, hung_up)
    }

    /// A remote for `server` whose requests have `request_timeout`.
    fn remote_at(server: String, request_timeout: Duration) -> Remote {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Remote {
            server,
            gun: Gun::new("registry.example.com/org/app").unwrap(),
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            token: None,
            request_timeout,
        }
    }

    /// Waits (a bounded number of polls) for the trickling server to see the hang-up.
    fn saw_hang_up(hung_up: &std::sync::atomic::AtomicBool) -> bool {
        (0..100).any(|_| {
            let closed = hung_up.load(std::sync::atomic::Ordering::SeqCst);
            if !closed {
                std::thread::sleep(Duration::from_millis(50));
            }
            closed
        })
    }

    /// A trickled file is cut off at the fetch's deadline: the fetch fails as timed out and
    /// the server sees the connection closed before its body ended.
    #[test]
    fn a_trickled_file_is_cut_off_at_the_deadline() {
        let (server, hung_up) = trickling_server();
        let remote = remote_at(server, FETCH_TIMEOUT);
        let deadline = Instant::now() + Duration::from_secs(1);
        match remote.fetch_by("timestamp.json", 16 * 1024, deadline) {
            Err(TransportError::TimedOut { path }) => assert_eq!(path, "timestamp.json"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(saw_hang_up(&hung_up), "the client never hung up");
    }

    /// The online-key request has a deadline for the whole exchange too.
    #[test]
    fn a_trickled_key_answer_is_cut_off_at_the_request_deadline() {
        let (server, hung_up) = trickling_server();
        let remote = remote_at(server, Duration::from_secs(1));
        let e = remote.online_key(TopLevelRole::Timestamp).unwrap_err();
        assert!(format!("{e:#}").contains("timestamp key"), "{e:#}");
        assert!(saw_hang_up(&hung_up), "the client never hung up");
    }
}
