//! The vouch server's HTTP API, as the CLI uses it: fetching metadata (as a `vouch-verifier`
//! [`Transport`], with the bearer token), reading online keys and publishing updates.
//!
//! Errors say which server was asked and what to do: an unreachable server names the URL
//! and `--server`, a server that does not answer within `--timeout` says so, a 401 says the
//! token is missing, expired or revoked and a 403 which grant it lacks (for the API calls
//! here and for metadata fetched through the [`Transport`] alike), and a 409 is returned as
//! [`PublishError::Conflict`] so that callers refresh and retry.
//!
//! Deadlines: `--timeout` (default 30 s) bounds connecting and each exchange other than a
//! publish, answer and body included (a server trickling bytes is cut off); a publish, which
//! uploads every changed role and has the server check and store them, gets
//! [`PUBLISH_FACTOR`] times as long.

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
/// How many times `--timeout` one publish may take, upload and answer included (up to
/// 16 MiB on a slow link).
pub const PUBLISH_FACTOR: u32 = 10;

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
    /// Deadline of one request other than a publish, body included (`--timeout`).
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

/// What a 401 or 403 from the server means for a request that needs `action` (`pull` or
/// `push`) on `gun`, and what to do; `None` for any other status. `challenge` is the
/// `WWW-Authenticate` header, `sent_token` whether the request carried a token.
fn auth_refusal(
    status: StatusCode,
    challenge: Option<&str>,
    sent_token: bool,
    action: &str,
    gun: &Gun,
) -> Option<String> {
    let code = status.as_u16();
    let lacks_grant = status == StatusCode::FORBIDDEN
        || challenge.is_some_and(|c| c.contains("insufficient_scope"));
    if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
        None
    } else if lacks_grant {
        Some(format!(
            "the token does not grant {action} on {gun} (HTTP {code}): use a token whose scope \
             covers it (set VOUCH_TOKEN or --token-file)"
        ))
    } else if sent_token {
        Some(format!(
            "the server refused the token (HTTP {code}): it is unknown to the server, expired or \
             revoked; set VOUCH_TOKEN or --token-file to a current token with {action} on {gun}"
        ))
    } else {
        Some(format!(
            "the server asks for a token (HTTP {code}): set VOUCH_TOKEN or --token-file to a \
             token with {action} on {gun}"
        ))
    }
}

/// The server's error message from a `{"errors":[{"code","message"}]}` body, or the body.
fn error_message(status: StatusCode, resp: Response) -> String {
    let detail = error_detail(resp);
    if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    }
}

/// [`auth_refusal`]'s message, followed by what the server said, if anything.
fn with_server_detail(message: String, resp: Response) -> String {
    let detail = error_detail(resp);
    if detail.is_empty() {
        message
    } else {
        format!("{message} (the server said: {detail})")
    }
}

/// `code: message` of the first error of a `{"errors":[{"code","message"}]}` body, else
/// the body itself (trimmed; empty when there is none).
fn error_detail(resp: Response) -> String {
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
    parsed.unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned())
}

impl Remote {
    /// The repository `gun` on the context's server.
    pub fn new(ctx: &Context, gun: &Gun) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = Client::builder()
            .connect_timeout(ctx.timeout)
            .timeout(ctx.timeout.saturating_mul(PUBLISH_FACTOR))
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
            request_timeout: ctx.timeout,
        })
    }

    /// The server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn tuf_url(&self, file: &str) -> String {
        format!(
            "{}{file}",
            vouch_verifier::transport::repository_url(&self.server, self.gun.as_str())
        )
    }

    /// `req` with the token, and a deadline for the whole exchange, body included
    /// (`--timeout`; a caller may set another after this).
    fn authed(&self, req: RequestBuilder) -> RequestBuilder {
        let req = req.timeout(self.request_timeout);
        match &self.token {
            Some(t) => req.bearer_auth(t.as_str()),
            None => req,
        }
    }

    /// The message for a server that did not answer within `waited`.
    fn no_answer(&self, waited: Duration) -> String {
        format!(
            "no answer from {} within {} s: is it overloaded or stuck? (set --timeout or \
             VOUCH_TIMEOUT to wait longer)",
            self.server,
            waited.as_secs()
        )
    }

    fn unreachable(&self, e: &reqwest::Error, waited: Duration) -> anyhow::Error {
        if e.is_timeout() {
            return anyhow!(self.no_answer(waited));
        }
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

    /// The server refused `what`, a request that needs `action` on the repository.
    fn refused(
        &self,
        what: &str,
        action: &str,
        status: StatusCode,
        resp: Response,
    ) -> anyhow::Error {
        let auth = auth_refusal(
            status,
            challenge(&resp).as_deref(),
            self.token.is_some(),
            action,
            &self.gun,
        );
        let msg = match auth {
            Some(a) => with_server_detail(a, resp),
            None => error_message(status, resp),
        };
        anyhow!("the server refused {what} for {}: {msg}", self.gun)
    }

    /// The server-held online key of `role` (timestamp or snapshot), created by the server on
    /// first request.
    pub fn online_key(&self, role: TopLevelRole) -> anyhow::Result<Key> {
        let what = format!("the {role} key");
        let resp = self
            .authed(self.client.get(self.tuf_url(&format!("{role}.key"))))
            .send()
            .map_err(|e| self.unreachable(&e, self.request_timeout))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.refused(&what, "push", status, resp));
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
            .map_err(|e| self.unreachable(&e, self.request_timeout))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.refused(&what, "push", status, resp));
        }
        let body = read_capped(&what, resp, MAX_KEY_BODY)?;
        let v = json::parse(&body).with_context(|| format!("{what}: the answer is not JSON"))?;
        Key::from_value(v).with_context(|| format!("{what}: the answer is not a TUF key object"))
    }

    /// Deletes all trust data of the repository on the server (`DELETE …/_trust/tuf/`,
    /// which needs `delete`). `Ok(false)` when the server had none (404).
    pub fn delete_trust_data(&self) -> anyhow::Result<bool> {
        let what = "deleting the trust data";
        let resp = self
            .authed(self.client.delete(self.tuf_url("")))
            .send()
            .map_err(|e| self.unreachable(&e, self.request_timeout))?;
        let status = resp.status();
        match status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.refused(what, "delete", status, resp)),
        }
    }

    /// Publishes one atomic update of `files` (role name, exact bytes).
    pub fn publish(&self, files: &[(RoleName, Vec<u8>)]) -> Result<(), PublishError> {
        // The body is built in memory (metadata is small) so that it has a length and a
        // server that answers before reading it (401, 413) is heard rather than cut off.
        let (content_type, body) = multipart_body(files);
        let waited = self.request_timeout.saturating_mul(PUBLISH_FACTOR);
        let resp = self
            .authed(self.client.post(self.tuf_url("")))
            .timeout(waited)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .map_err(|e| self.unreachable(&e, waited))?;
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
            "push",
            status,
            resp,
        )))
    }
}

/// The `WWW-Authenticate` header of `resp`, if any.
fn challenge(resp: &Response) -> Option<String> {
    resp.headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
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
        self.fetch_within(path, max_len, None)
    }

    /// The whole request, body included, is over by `deadline` (at most `--timeout` from
    /// now): a server trickling bytes is cut off. When `deadline` is the caller's, that is
    /// [`TransportError::TimedOut`]; when `--timeout` ran out first, a
    /// [`TransportError::Network`] error that says the server did not answer in time.
    /// A 401 or 403 says what is wrong with the token.
    fn fetch_by(
        &self,
        path: &str,
        max_len: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
        self.fetch_within(path, max_len, Some(deadline))
    }
}

impl Remote {
    /// [`Transport::fetch_by`], with the caller's deadline if it has one.
    fn fetch_within(
        &self,
        path: &str,
        max_len: u64,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, TransportError> {
        if bad_path(path) {
            return Err(TransportError::BadPath {
                path: path.to_owned(),
            });
        }
        let own = Instant::now() + self.request_timeout;
        let own_binds = deadline.is_none_or(|d| own <= d);
        let deadline = deadline.map_or(own, |d| d.min(own));
        let request = self.authed(self.client.get(self.tuf_url(path)));
        // A status error carries the server's message; any other network error says the
        // server could not be reached.
        let answered = std::cell::Cell::new(false);
        fetch_capped(path, request, max_len, deadline, |status, resp| {
            answered.set(true);
            let auth = auth_refusal(
                status,
                challenge(&resp).as_deref(),
                self.token.is_some(),
                "pull",
                &self.gun,
            );
            TransportError::Network {
                path: path.to_owned(),
                message: match auth {
                    Some(a) => with_server_detail(a, resp),
                    None => error_message(status, resp),
                },
            }
        })
        .map_err(|e| match e {
            TransportError::TimedOut { .. } if own_binds => TransportError::Network {
                path: path.to_owned(),
                message: self.no_answer(self.request_timeout),
            },
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

    #[test]
    fn refusals_say_what_is_wrong_with_the_token() {
        let gun = Gun::new("registry.example.com/org/app").unwrap();
        let bearer = Some(r#"Bearer realm="vouch",service="vouch",scope="repository:x:push""#);
        let m = auth_refusal(StatusCode::UNAUTHORIZED, bearer, true, "pull", &gun).unwrap();
        assert!(
            m.contains("refused the token (HTTP 401)")
                && m.contains("expired or revoked")
                && m.contains("VOUCH_TOKEN or --token-file"),
            "{m}"
        );
        let m = auth_refusal(StatusCode::UNAUTHORIZED, bearer, false, "push", &gun).unwrap();
        assert!(
            m.contains("asks for a token") && m.contains("push on registry.example.com/org/app"),
            "{m}"
        );
        let m = auth_refusal(StatusCode::FORBIDDEN, None, true, "push", &gun).unwrap();
        assert!(
            m.contains("does not grant push on registry.example.com/org/app (HTTP 403)"),
            "{m}"
        );
        // A registry-format JWT without the grant gets 401 with insufficient_scope.
        let scope =
            Some(r#"Bearer realm="a",error="insufficient_scope",scope="repository:x:pull""#);
        let m = auth_refusal(StatusCode::UNAUTHORIZED, scope, true, "pull", &gun).unwrap();
        assert!(m.contains("does not grant pull"), "{m}");
        assert_eq!(
            auth_refusal(StatusCode::BAD_REQUEST, None, true, "push", &gun),
            None
        );
    }

    /// A server that accepts connections and never answers is reported as not answering
    /// within the request timeout, naming the server.
    #[test]
    fn a_silent_server_is_reported_as_not_answering() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = format!("http://{}", listener.local_addr().unwrap());
        let remote = remote_at(server.clone(), Duration::from_secs(1));
        let far = Instant::now() + Duration::from_secs(600);
        match remote.fetch_by("root.json", 1024, far) {
            Err(TransportError::Network { message, .. }) => assert!(
                message.contains(&format!("no answer from {server} within 1 s")),
                "{message}"
            ),
            other => panic!("expected no answer, got {other:?}"),
        }
        let e = remote.online_key(TopLevelRole::Timestamp).unwrap_err();
        assert!(
            format!("{e:#}").contains(&format!("no answer from {server} within 1 s")),
            "{e:#}"
        );
        drop(listener);
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
        let remote = remote_at(server, Duration::from_secs(60));
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
