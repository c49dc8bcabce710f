//! One typed client of the vouch server's HTTP API: metadata reads (as a [`Transport`]),
//! online keys, deleting, publishing and staged proposals (threshold signing by several
//! people: [`Repository::propose`], [`Repository::sign_proposal`] …), with the paths, error
//! body, proposal documents and reading of a 401 or 403 that [`vouch_tuf::api`] defines.
//!
//! A [`ServerClient`] is one server (its base URL, [`ServerOptions`] and an optional bearer
//! token); [`ServerClient::repository`] gives a [`Repository`], one GUN on it. Every
//! request has a deadline for the whole exchange, answer and body included (a server
//! trickling bytes is cut off), and reads at most a capped number of bytes; the HTTP client
//! and the deadline machinery are [`HttpTransport`](crate::transport::HttpTransport)'s. A
//! publish, which uploads every changed role and has the server check and store them, gets
//! [`ServerOptions::publish_factor`] times as long.
//!
//! Errors are typed ([`ServerError`]): the server could not be reached, did not answer in
//! time, refused the request (with the [`AuthRefusal`] of a 401 or 403 and the decoded
//! [`ErrorBody`]), had nothing there (404), or someone published first (409; for a proposal,
//! a 409 `VERSION_CONFLICT`: other 409s, `PROPOSAL_CLOSED` and `PROPOSAL_LIMIT`, are
//! refusals carrying the body). Callers word them; this module gives no advice about flags
//! or environment variables.
//!
//! The server's trust-change events are [`events`]: [`ServerClient::events`] opens one
//! stream ([`EventStream`]; an endless body, so bounded by an idle timeout instead of a
//! deadline) and [`Follower`] keeps one open across reconnections. The webhook
//! administration (subscriptions, the signing key, resuming) is [`webhooks`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::StatusCode;
use thiserror::Error;
use vouch_tuf::api::path::repository_url;
use vouch_tuf::api::proposal::{self, Proposal, Signatures};
use vouch_tuf::api::{code, AuthRefusal, ErrorBody, FileRef, Route};
use vouch_tuf::json;
use vouch_tuf::metadata::Key;
use vouch_tuf::reference::Gun;
use vouch_tuf::types::{RoleName, TopLevelRole};

pub mod events;
pub mod webhooks;

pub use events::{Backoff, Connection, Disconnect, EventStream, Follower, StreamItem};
pub use webhooks::{WebhookListing, WebhookStatus, WebhookSubscription};

use crate::transport::{
    check_path, fetch_capped, shared_client, BearerToken, CrossHostRedirects, HttpOptions,
    Transport, TransportError,
};

/// Largest error body read from the server.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// Largest online-key document read from the server.
const MAX_KEY_BODY: u64 = 16 * 1024;
/// Largest proposal document read from the server: a proposal carries the metadata of
/// every role it changes, so room for a root, a snapshot and four targets roles of the
/// largest sizes the verifier accepts, which is more than one publish uploads.
pub const MAX_PROPOSAL_BODY: u64 = crate::Limits::DEFAULT.root_max_bytes
    + crate::Limits::DEFAULT.snapshot_max_bytes
    + 4 * crate::Limits::DEFAULT.targets_max_bytes;
/// Largest list of proposals read from the server: at most
/// [`MAX_LISTED`](proposal::MAX_LISTED) documents without their metadata.
pub const MAX_PROPOSAL_LIST: u64 = 8 * 1024 * 1024;

/// Settings of a [`ServerClient`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Longest time to connect, and for each exchange other than a publish, answer and body
    /// included.
    pub timeout: Duration,
    /// How many times [`ServerOptions::timeout`] one publish may take, upload and answer
    /// included.
    pub publish_factor: u32,
    /// `User-Agent` sent.
    pub user_agent: String,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            timeout: Duration::from_secs(30),
            publish_factor: 10,
            user_agent: concat!("vouch-verifier/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// A request the server answered with an error status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// For a 401 or 403: what is wrong with the credentials.
    pub auth: Option<AuthRefusal>,
    /// The error body, when it is one of the server's.
    pub body: Option<ErrorBody>,
    /// The body as text (trimmed; empty when there was none), for a body that is not.
    pub text: String,
}

impl Refusal {
    /// What the server said: `code: message` of its first error, else the body's text
    /// (empty when there is none).
    pub fn server_said(&self) -> String {
        match self.body.as_ref().and_then(ErrorBody::first) {
            Some(e) => e.summary(),
            None => self.text.clone(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        match self.server_said() {
            s if s.is_empty() => Ok(()),
            s => write!(f, ": {s}"),
        }
    }
}

/// Why a request to the server failed.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The server could not be reached (no connection, TLS failure, a redirect).
    #[error("cannot reach the vouch server at {server} ({message})")]
    Unreachable {
        /// The server's base URL.
        server: String,
        /// What failed, with its causes.
        message: String,
    },
    /// The server did not answer, body included, within the request's own deadline.
    #[error("no answer from {server} within {} s", waited.as_secs())]
    NoAnswer {
        /// The server's base URL.
        server: String,
        /// How long the request was given.
        waited: Duration,
    },
    /// The server answered with an error status.
    #[error("the server refused {what}: {refusal}")]
    Refused {
        /// What was asked.
        what: String,
        /// The status, what it means for the credentials, and what the server said.
        refusal: Refusal,
    },
    /// Someone else published first (409): refresh, re-apply and retry.
    #[error("someone else published to {gun} first (409 Conflict)")]
    Conflict {
        /// The repository.
        gun: Gun,
    },
    /// Nothing there (404).
    #[error("{what} not found")]
    NotFound {
        /// What was asked.
        what: String,
    },
    /// The answer is not what the request asks for (e.g. not a key).
    #[error("{what}: {message}")]
    BadAnswer {
        /// What was asked.
        what: String,
        /// What is wrong with the answer.
        message: String,
    },
    /// The fetch failed otherwise: too large, a path that leaves the repository, a read
    /// error, or the caller's own deadline passed.
    #[error(transparent)]
    Fetch(TransportError),
    /// The client could not be built (an invalid server URL).
    #[error("cannot talk to the vouch server at {server}: {message}")]
    Setup {
        /// The server's base URL.
        server: String,
        /// What is wrong.
        message: String,
    },
}

/// One vouch server: its base URL, options and token.
#[derive(Clone)]
pub struct ServerClient {
    server: String,
    client: Client,
    token: Option<Arc<dyn BearerToken>>,
    timeout: Duration,
    publish_timeout: Duration,
    user_agent: String,
    event_idle: Duration,
}

impl std::fmt::Debug for ServerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerClient")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// One repository (GUN) on a server.
#[derive(Clone, Debug)]
pub struct Repository {
    server: ServerClient,
    gun: Gun,
}

impl ServerClient {
    /// A client of the server at `server` (its base URL, e.g. `https://vouch.example`).
    /// Redirects are not followed; for an `http://` URL no certificate store is loaded.
    /// Clients with equal options share one HTTP client within the process.
    pub fn new(server: &str, options: &ServerOptions) -> Result<Self, ServerError> {
        let setup = |message: String| ServerError::Setup {
            server: server.to_owned(),
            message,
        };
        let publish_timeout = options.timeout.saturating_mul(options.publish_factor);
        let http = HttpOptions {
            connect_timeout: options.timeout,
            timeout: publish_timeout,
            cross_host_redirects: CrossHostRedirects::Refuse,
            max_redirects: 0,
            user_agent: options.user_agent.clone(),
        };
        let client = shared_client(server, &http).map_err(|e| setup(e.to_string()))?;
        Ok(ServerClient {
            server: server.to_owned(),
            client,
            token: None,
            timeout: options.timeout,
            publish_timeout,
            user_agent: options.user_agent.clone(),
            event_idle: events::DEFAULT_IDLE,
        })
    }

    /// This client, giving up on an event stream ([`ServerClient::events`]) when nothing,
    /// not even a keep-alive, arrives for `idle` (by default [`events::DEFAULT_IDLE`]).
    #[must_use]
    pub fn with_event_idle(mut self, idle: Duration) -> Self {
        self.event_idle = idle;
        self
    }

    /// This client, sending the token `token` gives with every request.
    #[must_use]
    pub fn with_bearer_token(mut self, token: Arc<dyn BearerToken>) -> Self {
        self.token = Some(token);
        self
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The deadline of one request other than a publish.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The repository `gun` on this server.
    pub fn repository(&self, gun: &Gun) -> Repository {
        Repository {
            server: self.clone(),
            gun: gun.clone(),
        }
    }

    /// Sends `request` (with the token), reading at most `max_len` bytes of a successful
    /// answer, all by `waited` from now or by `deadline` if that is sooner. `what` names the
    /// request in errors.
    fn exchange(
        &self,
        what: &str,
        request: RequestBuilder,
        max_len: u64,
        waited: Duration,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, ServerError> {
        let own = Instant::now() + waited;
        let own_binds = deadline.is_none_or(|d| own <= d);
        let deadline = deadline.map_or(own, |d| d.min(own));
        let token = self.token.as_ref().and_then(|t| t.bearer_token());
        let sent_token = token.is_some();
        let request = match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        let mut refusal = None;
        let answered = std::cell::Cell::new(false);
        let result = fetch_capped(what, request, max_len, deadline, |status, resp| {
            answered.set(true);
            refusal = Some(refusal_of(status, resp, sent_token));
            TransportError::Status {
                path: what.to_owned(),
                status: status.as_u16(),
            }
        });
        if let Some(refusal) = refusal {
            return Err(ServerError::Refused {
                what: what.to_owned(),
                refusal,
            });
        }
        result.map_err(|e| match e {
            TransportError::TimedOut { .. } if own_binds => ServerError::NoAnswer {
                server: self.server.clone(),
                waited,
            },
            TransportError::NotFound { .. } => ServerError::NotFound {
                what: what.to_owned(),
            },
            TransportError::Network { message, .. } if !answered.get() => {
                ServerError::Unreachable {
                    server: self.server.clone(),
                    message,
                }
            }
            other => ServerError::Fetch(other),
        })
    }
}

/// The refusal an error answer means, its body read (bounded) and decoded.
fn refusal_of(status: StatusCode, resp: Response, sent_token: bool) -> Refusal {
    let challenge = resp
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let auth = AuthRefusal::classify(status.as_u16(), challenge.as_deref(), sent_token);
    let bytes = crate::transport::read_capped("", resp, MAX_ERROR_BODY).unwrap_or_default();
    Refusal {
        status: status.as_u16(),
        auth,
        body: ErrorBody::decode(&bytes).ok(),
        text: String::from_utf8_lossy(&bytes).trim().to_owned(),
    }
}

impl Repository {
    /// The server this repository is on.
    pub fn server(&self) -> &ServerClient {
        &self.server
    }

    /// The repository.
    pub fn gun(&self) -> &Gun {
        &self.gun
    }

    fn url(&self, route: &Route) -> String {
        route.url(&self.server.server)
    }

    /// Fetches `path` (below the repository's base, e.g. `root.json` or
    /// `2.targets%2Freleases.json`), at most `max_len` bytes, by the request's own deadline
    /// or `deadline` if sooner. When `deadline` binds, running out is
    /// [`ServerError::Fetch`] of [`TransportError::TimedOut`]; when the request's own
    /// deadline does, [`ServerError::NoAnswer`].
    pub fn fetch_file(
        &self,
        path: &str,
        max_len: u64,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, ServerError> {
        check_path(path).map_err(ServerError::Fetch)?;
        if path.contains('?') || path.contains('#') {
            return Err(ServerError::Fetch(TransportError::BadPath {
                path: path.to_owned(),
            }));
        }
        let url = format!("{}{path}", repository_url(&self.server.server, &self.gun));
        let request = self.server.client.get(url);
        self.server
            .exchange(path, request, max_len, self.server.timeout, deadline)
            .map_err(|e| match e {
                ServerError::NotFound { .. } => ServerError::Fetch(TransportError::NotFound {
                    path: path.to_owned(),
                }),
                other => other,
            })
    }

    fn key_route(&self, role: TopLevelRole) -> Route {
        Route::File(self.gun.clone(), FileRef::Key(role.to_string()))
    }

    /// The server-held online key of `role` (timestamp or snapshot), created by the server
    /// on first request.
    pub fn online_key(&self, role: TopLevelRole) -> Result<Key, ServerError> {
        let what = format!("the {role} key");
        let request = self.server.client.get(self.url(&self.key_route(role)));
        let body = self
            .server
            .exchange(&what, request, MAX_KEY_BODY, self.server.timeout, None)?;
        key_answer(what, &body)
    }

    /// Asks the server to make a new online key for `role` (timestamp or snapshot); it keeps
    /// signing with the key the current root lists until a root listing the new one is
    /// published.
    pub fn rotate_online_key(&self, role: TopLevelRole) -> Result<Key, ServerError> {
        let what = format!("rotating the {role} key");
        let request = self.server.client.post(self.url(&self.key_route(role)));
        let body = self
            .server
            .exchange(&what, request, MAX_KEY_BODY, self.server.timeout, None)?;
        key_answer(what, &body)
    }

    /// Deletes all trust data of the repository on the server (which needs `delete`).
    /// `Ok(false)` when the server had none (404).
    pub fn delete(&self) -> Result<bool, ServerError> {
        let request = self
            .server
            .client
            .delete(self.url(&Route::Repository(self.gun.clone())));
        match self.server.exchange(
            "deleting the trust data",
            request,
            MAX_ERROR_BODY,
            self.server.timeout,
            None,
        ) {
            Ok(_) => Ok(true),
            Err(ServerError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Publishes one atomic update of `files` (role name, exact bytes): a
    /// `multipart/form-data` body with one `files` part per role, its file name the role
    /// name. Someone publishing first is [`ServerError::Conflict`].
    pub fn publish(&self, files: &[(RoleName, Vec<u8>)]) -> Result<(), ServerError> {
        // The body is built in memory (metadata is small) so that it has a length and a
        // server that answers before reading it (401, 413) is heard rather than cut off.
        let (content_type, body) = multipart_body(files);
        let request = self
            .server
            .client
            .post(self.url(&Route::Repository(self.gun.clone())))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        match self.server.exchange(
            "the update",
            request,
            MAX_ERROR_BODY,
            self.server.publish_timeout,
            None,
        ) {
            Ok(_) => Ok(()),
            Err(ServerError::Refused { refusal, .. }) if refusal.status == 409 => {
                Err(ServerError::Conflict {
                    gun: self.gun.clone(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Proposes one update of `files` (role name, exact bytes) whose signatures need not
    /// meet every threshold yet: the same body as [`Repository::publish`], sent to the
    /// repository's proposals. The answer is the proposal, `pending`, or `published` when
    /// its signatures already met every threshold. A 409 `VERSION_CONFLICT` (a version not
    /// newer than the stored one) is [`ServerError::Conflict`]; `PROPOSAL_LIMIT` is a
    /// refusal.
    pub fn propose(&self, files: &[(RoleName, Vec<u8>)]) -> Result<Proposal, ServerError> {
        let (content_type, body) = multipart_body(files);
        let request = self
            .server
            .client
            .post(self.url(&Route::Proposals(self.gun.clone())))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        let what = "the proposal";
        let answer = self
            .server
            .exchange(
                what,
                request,
                MAX_PROPOSAL_BODY,
                self.server.publish_timeout,
                None,
            )
            .map_err(|e| self.conflict(e))?;
        proposal_answer(what, &answer)
    }

    /// The repository's open proposals (pending, stale, expired), newest first; with `all`,
    /// the published and withdrawn ones too. Documents in the list omit `metadata`.
    pub fn proposals(&self, all: bool) -> Result<Vec<Proposal>, ServerError> {
        let mut url = self.url(&Route::Proposals(self.gun.clone()));
        if all {
            url.push_str("?all=true");
        }
        let what = "the list of proposals";
        let request = self.server.client.get(url);
        let answer =
            self.server
                .exchange(what, request, MAX_PROPOSAL_LIST, self.server.timeout, None)?;
        proposal::decode_list(&answer).map_err(|e| ServerError::BadAnswer {
            what: what.to_owned(),
            message: e.to_string(),
        })
    }

    /// Proposal `id`, its metadata included; [`ServerError::NotFound`] when this repository
    /// has none of that id.
    pub fn proposal(&self, id: u64) -> Result<Proposal, ServerError> {
        let what = format!("proposal #{id}");
        let request = self
            .server
            .client
            .get(self.url(&Route::Proposal(self.gun.clone(), id)));
        let answer =
            self.server
                .exchange(&what, request, MAX_PROPOSAL_BODY, self.server.timeout, None)?;
        proposal_answer(&what, &answer)
    }

    /// Adds `signatures` to proposal `id`; the answer is the proposal, `pending`, or
    /// `published` when every threshold is now met. A closed proposal (`PROPOSAL_CLOSED`)
    /// and a refused signature are refusals carrying the server's body.
    pub fn sign_proposal(&self, id: u64, signatures: &Signatures) -> Result<Proposal, ServerError> {
        let what = format!("the signatures for proposal #{id}");
        let request = self
            .server
            .client
            .post(self.url(&Route::ProposalSignatures(self.gun.clone(), id)))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(signatures.encode());
        let answer = self
            .server
            .exchange(
                &what,
                request,
                MAX_PROPOSAL_BODY,
                self.server.publish_timeout,
                None,
            )
            .map_err(|e| self.conflict(e))?;
        proposal_answer(&what, &answer)
    }

    /// Withdraws proposal `id`; the answer is the proposal, now `withdrawn`. One already
    /// published or withdrawn is a refusal (`PROPOSAL_CLOSED`).
    pub fn withdraw_proposal(&self, id: u64) -> Result<Proposal, ServerError> {
        let what = format!("withdrawing proposal #{id}");
        let request = self
            .server
            .client
            .delete(self.url(&Route::Proposal(self.gun.clone(), id)));
        let answer =
            self.server
                .exchange(&what, request, MAX_PROPOSAL_BODY, self.server.timeout, None)?;
        proposal_answer(&what, &answer)
    }

    /// A 409 whose code is `VERSION_CONFLICT` as [`ServerError::Conflict`]; anything else
    /// unchanged.
    fn conflict(&self, e: ServerError) -> ServerError {
        match e {
            ServerError::Refused { refusal, .. }
                if refusal.status == 409
                    && refusal
                        .body
                        .as_ref()
                        .and_then(ErrorBody::first)
                        .is_some_and(|b| b.code == code::VERSION_CONFLICT) =>
            {
                ServerError::Conflict {
                    gun: self.gun.clone(),
                }
            }
            other => other,
        }
    }
}

/// The proposal document in an answer to `what`.
fn proposal_answer(what: &str, body: &[u8]) -> Result<Proposal, ServerError> {
    Proposal::decode(body).map_err(|e| ServerError::BadAnswer {
        what: what.to_owned(),
        message: e.to_string(),
    })
}

/// The key in an online-key answer.
fn key_answer(what: String, body: &[u8]) -> Result<Key, ServerError> {
    let bad = |message: String| ServerError::BadAnswer {
        what: what.clone(),
        message,
    };
    let v = json::parse(body).map_err(|e| bad(format!("the answer is not JSON: {e}")))?;
    Key::from_value(v).map_err(|e| bad(format!("the answer is not a TUF key object: {e}")))
}

/// A `multipart/form-data` body with one part named `files` per role, its file name the
/// role name, as the server (and the notary client before it) expects. The boundary is
/// derived from the content, so it cannot occur in it by chance.
fn multipart_body(files: &[(RoleName, Vec<u8>)]) -> (String, Vec<u8>) {
    let mut all = Vec::new();
    for (role, bytes) in files {
        all.extend_from_slice(role.as_str().as_bytes());
        all.push(0);
        all.extend_from_slice(bytes);
    }
    let digest = vouch_tuf::reference::Digest::sha256_of(&all);
    let hex = digest.to_string();
    let hex = hex.rsplit(':').next().unwrap_or_default();
    let boundary = format!("vouch-{}", &hex[..hex.len().min(32)]);
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

/// [`ServerError`] as a fetch error: not found, timed out, unauthorized (with the
/// [`AuthRefusal`]) or another status, as [`crate::transport::HttpTransport`] reports them.
fn transport_error(path: &str, e: ServerError, sent_token: bool) -> TransportError {
    let path = path.to_owned();
    match e {
        ServerError::Fetch(e) => e,
        ServerError::NotFound { .. } => TransportError::NotFound { path },
        ServerError::NoAnswer { .. } => TransportError::TimedOut { path },
        ServerError::Refused { refusal, .. } => match refusal.auth {
            Some(auth) => TransportError::Unauthorized {
                path,
                status: refusal.status,
                sent_token,
                refusal: auth,
            },
            None => TransportError::Status {
                path,
                status: refusal.status,
            },
        },
        other => TransportError::Network {
            path,
            message: other.to_string(),
        },
    }
}

impl Transport for Repository {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        let sent = self
            .server
            .token
            .as_ref()
            .is_some_and(|t| t.bearer_token().is_some());
        self.fetch_file(path, max_len, None)
            .map_err(|e| transport_error(path, e, sent))
    }

    fn fetch_by(
        &self,
        path: &str,
        max_len: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
        let sent = self
            .server
            .token
            .as_ref()
            .is_some_and(|t| t.bearer_token().is_some());
        self.fetch_file(path, max_len, Some(deadline))
            .map_err(|e| transport_error(path, e, sent))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    fn repository_at(server: &str, timeout: Duration) -> Repository {
        let options = ServerOptions {
            timeout,
            ..ServerOptions::default()
        };
        ServerClient::new(server, &options)
            .unwrap()
            .repository(&Gun::new("registry.example.com/org/app").unwrap())
    }

    /// A server that answers one request with `answer` (status line, headers and body),
    /// sent in pieces of `piece` bytes every `every`; and whether it saw the client hang up
    /// before the answer ended.
    fn one_answer(answer: Vec<u8>, piece: usize, every: Duration) -> (String, Arc<AtomicBool>) {
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
            for part in answer.chunks(piece) {
                if stream.write_all(part).is_err() {
                    seen.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(every);
            }
        });
        (server, hung_up)
    }

    /// A server that answers by trickling its answer (a 400-byte body), 4 bytes every 50 ms
    /// (each wait far below the client's per-read timeout).
    fn trickling_server() -> (String, Arc<AtomicBool>) {
        let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 400\r\n\r\n".to_vec();
        answer.extend_from_slice(&[b' '; 400]);
        one_answer(answer, 4, Duration::from_millis(50))
    }

    /// Waits (a bounded number of polls) for the server to see the hang-up.
    fn saw_hang_up(hung_up: &AtomicBool) -> bool {
        (0..100).any(|_| {
            let closed = hung_up.load(Ordering::SeqCst);
            if !closed {
                std::thread::sleep(Duration::from_millis(50));
            }
            closed
        })
    }

    /// A server that accepts connections and never answers is reported as not answering
    /// within the request's own timeout, naming the server; as a transport, timed out.
    #[test]
    fn a_silent_server_is_reported_as_not_answering() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = format!("http://{}", listener.local_addr().unwrap());
        let repo = repository_at(&server, Duration::from_secs(1));
        let far = Instant::now() + Duration::from_secs(600);
        match repo.fetch_file("root.json", 1024, Some(far)) {
            Err(ServerError::NoAnswer { server: s, waited }) => {
                assert_eq!((s.as_str(), waited.as_secs()), (server.as_str(), 1));
            }
            other => panic!("expected no answer, got {other:?}"),
        }
        let e = repo.online_key(TopLevelRole::Timestamp).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("no answer from {server} within 1 s"),
            "{e:?}"
        );
        assert!(repo
            .fetch_by("root.json", 1024, far)
            .unwrap_err()
            .is_timed_out());
        drop(listener);
    }

    /// A trickled file is cut off at the fetch's deadline: the fetch fails as timed out and
    /// the server sees the connection closed before its body ended.
    #[test]
    fn a_trickled_file_is_cut_off_at_the_deadline() {
        let (server, hung_up) = trickling_server();
        let repo = repository_at(&server, Duration::from_secs(60));
        let deadline = Instant::now() + Duration::from_secs(1);
        match repo.fetch_by("timestamp.json", 16 * 1024, deadline) {
            Err(TransportError::TimedOut { path }) => assert_eq!(path, "timestamp.json"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(saw_hang_up(&hung_up), "the client never hung up");
    }

    /// The online-key request has a deadline for the whole exchange too.
    #[test]
    fn a_trickled_key_answer_is_cut_off_at_the_request_deadline() {
        let (server, hung_up) = trickling_server();
        let repo = repository_at(&server, Duration::from_secs(1));
        let e = repo.online_key(TopLevelRole::Timestamp).unwrap_err();
        assert!(matches!(e, ServerError::NoAnswer { .. }), "{e:?}");
        assert!(saw_hang_up(&hung_up), "the client never hung up");
    }

    fn answer(status: &str, headers: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// A refusal carries the reading of the status and challenge, and the decoded body.
    #[test]
    fn refusals_are_typed() {
        let body =
            r#"{"errors":[{"code":"UNAUTHORIZED","detail":null,"message":"token required"}]}"#;
        let challenge = "WWW-Authenticate: Bearer realm=\"vouch\",scope=\"repository:x:push\"\r\n";
        let (server, _) = one_answer(
            answer("401 Unauthorized", challenge, body),
            1 << 20,
            Duration::ZERO,
        );
        let repo = repository_at(&server, Duration::from_secs(10));
        match repo.online_key(TopLevelRole::Snapshot).unwrap_err() {
            ServerError::Refused { what, refusal } => {
                assert_eq!(what, "the snapshot key");
                assert_eq!(refusal.status, 401);
                assert_eq!(refusal.auth, Some(AuthRefusal::NoToken));
                assert_eq!(refusal.server_said(), "UNAUTHORIZED: token required");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }

        let (server, _) = one_answer(
            answer("409 Conflict", "", r#"{"errors":[]}"#),
            1 << 20,
            Duration::ZERO,
        );
        let repo = repository_at(&server, Duration::from_secs(10));
        let files = [(RoleName::new("targets").unwrap(), b"{}".to_vec())];
        assert!(matches!(
            repo.publish(&files),
            Err(ServerError::Conflict { .. })
        ));

        let (server, _) = one_answer(answer("404 Not Found", "", ""), 1 << 20, Duration::ZERO);
        assert!(!repository_at(&server, Duration::from_secs(10))
            .delete()
            .unwrap());

        let (server, _) = one_answer(
            answer("500 Internal Server Error", "", "oops\n"),
            1 << 20,
            Duration::ZERO,
        );
        let repo = repository_at(&server, Duration::from_secs(10));
        match repo.fetch_file("root.json", 1024, None).unwrap_err() {
            ServerError::Refused { refusal, .. } => {
                assert_eq!((refusal.status, refusal.auth), (500, None));
                assert_eq!(refusal.to_string(), "HTTP 500: oops");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// A server that answers one request with `answer` and hands back the request it got
    /// (head and body as text).
    fn recording_server(answer: Vec<u8>) -> (String, std::sync::mpsc::Receiver<String>) {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            head.push_str("\r\n");
            head.push_str(&String::from_utf8_lossy(&body));
            let _ = tx.send(head);
            let _ = stream.write_all(&answer);
        });
        (server, rx)
    }

    const PROPOSAL: &str = r#"{"id":7,"gun":"registry.example.com/org/app","status":"pending","proposed_by":"token:alice","created_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-08T00:00:00Z","roles":[{"role":"root","version":4,"base_version":3,"quorum":[{"by":"root version 3","threshold":2,"keyids":["aa","bb"],"signed":["aa"]}]}],"approvals":[]}"#;

    /// Each proposal call goes to its route with its method and body, and reads the
    /// proposal document it is answered with.
    #[test]
    fn proposal_calls_use_their_routes_and_read_the_document() {
        let files = [(RoleName::new("root").unwrap(), b"{}".to_vec())];
        let (server, seen) = recording_server(answer("201 Created", "", PROPOSAL));
        let p = repository_at(&server, Duration::from_secs(10))
            .propose(&files)
            .unwrap();
        assert_eq!((p.id, p.missing()), (7, 1));
        let req = seen.recv().unwrap();
        assert!(
            req.starts_with("POST /v2/registry.example.com/org/app/_trust/proposals HTTP/1.1"),
            "{req}"
        );
        assert!(req.contains("filename=\"root\""), "{req}");

        let list = format!(r#"{{"proposals":[{PROPOSAL}]}}"#);
        let (server, seen) = recording_server(answer("200 OK", "", &list));
        let all = repository_at(&server, Duration::from_secs(10))
            .proposals(true)
            .unwrap();
        assert_eq!(all.len(), 1);
        let req = seen.recv().unwrap();
        assert!(
            req.starts_with("GET /v2/registry.example.com/org/app/_trust/proposals?all=true "),
            "{req}"
        );

        let (server, seen) = recording_server(answer("200 OK", "", PROPOSAL));
        repository_at(&server, Duration::from_secs(10))
            .proposal(7)
            .unwrap();
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("GET /v2/registry.example.com/org/app/_trust/proposals/7 "));

        let mut sigs = Signatures::default();
        sigs.roles.insert(
            "root".into(),
            vec![vouch_tuf::metadata::Signature {
                keyid: vouch_tuf::types::KeyId::new("ab".repeat(32)).unwrap(),
                sig: "00ff".into(),
                extra: json::Map::new(),
            }],
        );
        let (server, seen) = recording_server(answer("200 OK", "", PROPOSAL));
        repository_at(&server, Duration::from_secs(10))
            .sign_proposal(7, &sigs)
            .unwrap();
        let req = seen.recv().unwrap();
        assert!(
            req.starts_with("POST /v2/registry.example.com/org/app/_trust/proposals/7/signatures "),
            "{req}"
        );
        let body = req.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(Signatures::decode(body.as_bytes()).unwrap(), sigs);

        let (server, seen) = recording_server(answer("200 OK", "", PROPOSAL));
        repository_at(&server, Duration::from_secs(10))
            .withdraw_proposal(7)
            .unwrap();
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("DELETE /v2/registry.example.com/org/app/_trust/proposals/7 "));
    }

    /// A 409 `VERSION_CONFLICT` is a conflict (refresh and retry); `PROPOSAL_CLOSED` and
    /// `PROPOSAL_LIMIT` are refusals carrying the body; an answer that is not a proposal is
    /// a bad answer.
    #[test]
    fn proposal_refusals_are_typed() {
        let files = [(RoleName::new("targets").unwrap(), b"{}".to_vec())];
        let conflict = r#"{"errors":[{"code":"VERSION_CONFLICT","detail":null,"message":"targets version 3 is not newer"}]}"#;
        let (server, _) = recording_server(answer("409 Conflict", "", conflict));
        assert!(matches!(
            repository_at(&server, Duration::from_secs(10)).propose(&files),
            Err(ServerError::Conflict { .. })
        ));
        for code in ["PROPOSAL_LIMIT", "PROPOSAL_CLOSED"] {
            let body =
                format!(r#"{{"errors":[{{"code":"{code}","detail":null,"message":"no"}}]}}"#);
            let (server, _) = recording_server(answer("409 Conflict", "", &body));
            match repository_at(&server, Duration::from_secs(10))
                .sign_proposal(7, &Signatures::default())
                .unwrap_err()
            {
                ServerError::Refused { refusal, .. } => {
                    assert_eq!(refusal.status, 409);
                    assert_eq!(refusal.body.unwrap().first().unwrap().code, code);
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        let (server, _) = recording_server(answer("200 OK", "", r#"{"id":"x"}"#));
        assert!(matches!(
            repository_at(&server, Duration::from_secs(10)).proposal(7),
            Err(ServerError::BadAnswer { .. })
        ));
        let (server, _) = recording_server(answer("404 Not Found", "", ""));
        assert!(matches!(
            repository_at(&server, Duration::from_secs(10)).proposal(8),
            Err(ServerError::NotFound { .. })
        ));
    }

    #[test]
    fn paths_stay_below_the_repository() {
        let repo = repository_at("http://127.0.0.1:1", Duration::from_secs(1));
        for bad in ["", "/x", "../x", "a//b", "x?y", "x#y", "a\\b"] {
            assert!(
                matches!(
                    repo.fetch_file(bad, 10, None),
                    Err(ServerError::Fetch(TransportError::BadPath { .. }))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn nothing_there_is_unreachable() {
        // A port nothing listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let repo = repository_at(&server, Duration::from_secs(5));
        match repo.delete().unwrap_err() {
            ServerError::Unreachable { server: s, .. } => assert_eq!(s, server),
            other => panic!("expected unreachable, got {other:?}"),
        }
    }

    #[test]
    fn the_multipart_body_has_one_files_part_per_role() {
        let files = [
            (RoleName::new("targets").unwrap(), b"{\"a\":1}".to_vec()),
            (RoleName::new("targets/releases").unwrap(), b"{}".to_vec()),
        ];
        let (content_type, body) = multipart_body(&files);
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        let text = String::from_utf8(body).unwrap();
        assert_eq!(text.matches(&format!("--{boundary}\r\n")).count(), 2);
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        assert!(text.contains("name=\"files\"; filename=\"targets/releases\""));
    }
}
