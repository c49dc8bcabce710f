//! The vouch server's HTTP API, as the CLI words it: a thin layer over
//! [`vouch_verifier::server`], the one typed client of the server (paths, deadlines, size
//! caps, the error body and what a 401 or 403 means all live there and in
//! [`vouch_tuf::api`]). This module only turns its typed errors into advice.
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

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use reqwest::StatusCode;
use thiserror::Error;
use vouch_tuf::api::proposal::{Proposal, Signatures};
use vouch_tuf::api::AuthRefusal;
use vouch_tuf::metadata::Key;
use vouch_tuf::reference::Gun;
use vouch_tuf::types::{RoleName, TopLevelRole};
use vouch_verifier::server::{Refusal, Repository, ServerClient, ServerError, ServerOptions};
use vouch_verifier::transport::{BearerToken, Transport, TransportError};
use zeroize::Zeroizing;

use crate::context::Context;

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

/// The CLI's token (`VOUCH_TOKEN` or `--token-file`), sent with every request.
struct CliToken(Zeroizing<String>);

impl std::fmt::Debug for CliToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CliToken(<redacted>)")
    }
}

impl BearerToken for CliToken {
    fn bearer_token(&self) -> Option<String> {
        Some(self.0.as_str().to_owned())
    }
}

/// One repository on one server.
#[derive(Clone, Debug)]
pub struct Remote {
    repo: Repository,
}

/// What a 401 or 403 ([`AuthRefusal`]) to a request that needs `action` (`pull`, `push`
/// or `delete`) on `on` (a repository, or `every repository (a * scope)`) means, and what
/// to do.
fn auth_advice(refusal: AuthRefusal, status: u16, action: &str, on: &str) -> String {
    match refusal {
        AuthRefusal::LacksGrant => format!(
            "the token does not grant {action} on {on} (HTTP {status}): use a token whose scope \
             covers it (set VOUCH_TOKEN or --token-file)"
        ),
        AuthRefusal::TokenRefused => format!(
            "the server refused the token (HTTP {status}): it is unknown to the server, expired or \
             revoked; set VOUCH_TOKEN or --token-file to a current token with {action} on {on}"
        ),
        AuthRefusal::NoToken => format!(
            "the server asks for a token (HTTP {status}): set VOUCH_TOKEN or --token-file to a \
             token with {action} on {on}"
        ),
    }
}

/// What a refusal of a request that needs `action` on `on` says: the advice for a 401 or
/// 403 followed by what the server said, else the status and what the server said.
fn refusal_message(refusal: &Refusal, action: &str, on: &str) -> String {
    let said = refusal.server_said();
    match refusal.auth {
        Some(auth) => {
            let advice = auth_advice(auth, refusal.status, action, on);
            if said.is_empty() {
                advice
            } else {
                format!("{advice} (the server said: {said})")
            }
        }
        None => {
            let status = StatusCode::from_u16(refusal.status)
                .map_or_else(|_| refusal.status.to_string(), |s| s.to_string());
            if said.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {said}")
            }
        }
    }
}

/// What a fetch of `gun`'s trust data refused by the server with `status` (401 or 403,
/// [`TransportError::Unauthorized`]) means, and what to do.
pub fn transport_refusal(refusal: AuthRefusal, status: u16, gun: &Gun) -> String {
    auth_advice(refusal, status, "pull", gun.as_str())
}

/// The message for a server that did not answer within `waited`.
fn no_answer(server: &str, waited: Duration) -> String {
    format!(
        "no answer from {server} within {} s: is it overloaded or stuck? (set --timeout or \
         VOUCH_TIMEOUT to wait longer)",
        waited.as_secs()
    )
}

/// The message for a server that could not be reached.
fn unreachable(server: &str, message: &str) -> String {
    format!(
        "cannot reach the vouch server at {server} ({message}): is it running? (set --server or \
         VOUCH_SERVER)"
    )
}

/// The context's server as a client: `--timeout`, the CLI's user agent and its token.
pub fn server_client(ctx: &Context) -> anyhow::Result<ServerClient> {
    let options = ServerOptions {
        timeout: ctx.timeout,
        publish_factor: PUBLISH_FACTOR,
        user_agent: concat!("vouch/", env!("CARGO_PKG_VERSION")).to_owned(),
    };
    let mut client =
        ServerClient::new(&ctx.server, &options).context("cannot build the HTTP client")?;
    if let Some(t) = &ctx.token {
        client = client.with_bearer_token(Arc::new(CliToken(t.clone())));
    }
    Ok(client)
}

/// `e` from a request to `ctx`'s server that needs `action` on `on` (a repository, or
/// [`EVERY_REPOSITORY`]), worded with advice as for every other request.
pub fn word(e: ServerError, action: &str, on: &str) -> anyhow::Error {
    match e {
        ServerError::Unreachable { server, message } => anyhow!(unreachable(&server, &message)),
        ServerError::NoAnswer { server, waited } => anyhow!(no_answer(&server, waited)),
        ServerError::Refused { what, refusal } => anyhow!(
            "the server refused {what}: {}",
            refusal_message(&refusal, action, on)
        ),
        other => anyhow!(other),
    }
}

/// How advice names the grant on every repository that server-wide requests need.
pub const EVERY_REPOSITORY: &str = "every repository (a * scope)";

impl Remote {
    /// The repository `gun` on the context's server.
    pub fn new(ctx: &Context, gun: &Gun) -> anyhow::Result<Self> {
        Ok(Remote {
            repo: server_client(ctx)?.repository(gun),
        })
    }

    /// The server URL.
    pub fn server(&self) -> &str {
        self.repo.server().server()
    }

    fn gun(&self) -> &Gun {
        self.repo.gun()
    }

    /// `e` from a request that needs `action` on the repository, worded with advice.
    fn word(&self, e: ServerError, action: &str) -> anyhow::Error {
        match e {
            ServerError::Unreachable { server, message } => anyhow!(unreachable(&server, &message)),
            ServerError::NoAnswer { server, waited } => anyhow!(no_answer(&server, waited)),
            ServerError::Refused { what, refusal } => anyhow!(
                "the server refused {what} for {}: {}",
                self.gun(),
                refusal_message(&refusal, action, self.gun().as_str())
            ),
            other => anyhow!(other),
        }
    }

    /// The server-held online key of `role` (timestamp or snapshot), created by the server on
    /// first request.
    pub fn online_key(&self, role: TopLevelRole) -> anyhow::Result<Key> {
        self.repo.online_key(role).map_err(|e| self.word(e, "push"))
    }

    /// Asks the server to make a new online key for `role` (timestamp or snapshot); it keeps
    /// signing with the key the current root lists until a root listing the new one is
    /// published.
    pub fn rotate_online_key(&self, role: TopLevelRole) -> anyhow::Result<Key> {
        self.repo
            .rotate_online_key(role)
            .map_err(|e| self.word(e, "push"))
    }

    /// Deletes all trust data of the repository on the server (`DELETE …/_trust/tuf/`,
    /// which needs `delete`). `Ok(false)` when the server had none (404).
    pub fn delete_trust_data(&self) -> anyhow::Result<bool> {
        self.repo.delete().map_err(|e| self.word(e, "delete"))
    }

    /// Publishes one atomic update of `files` (role name, exact bytes).
    pub fn publish(&self, files: &[(RoleName, Vec<u8>)]) -> Result<(), PublishError> {
        self.repo.publish(files).map_err(|e| match e {
            ServerError::Conflict { gun } => PublishError::Conflict {
                gun: gun.to_string(),
            },
            e => PublishError::Other(self.word(e, "push")),
        })
    }

    /// Proposes one update of `files` (role name, exact bytes) whose signatures need not
    /// meet every threshold; a version the server already has a newer one of (409
    /// `VERSION_CONFLICT`) is [`PublishError::Conflict`], so that callers refresh and retry.
    pub fn propose(&self, files: &[(RoleName, Vec<u8>)]) -> Result<Proposal, PublishError> {
        self.repo.propose(files).map_err(|e| match e {
            ServerError::Conflict { gun } => PublishError::Conflict {
                gun: gun.to_string(),
            },
            e => PublishError::Other(self.word(e, "push")),
        })
    }

    /// The repository's open proposals (with `all`, the closed ones too).
    pub fn proposals(&self, all: bool) -> anyhow::Result<Vec<Proposal>> {
        self.repo.proposals(all).map_err(|e| self.word(e, "push"))
    }

    /// Proposal `id`, its metadata included.
    pub fn proposal(&self, id: u64) -> anyhow::Result<Proposal> {
        self.repo
            .proposal(id)
            .map_err(|e| self.word_proposal(e, id))
    }

    /// `e` from a request about proposal `id`: one the repository does not have is named.
    fn word_proposal(&self, e: ServerError, id: u64) -> anyhow::Error {
        match e {
            ServerError::NotFound { .. } => anyhow!(
                "{} has no proposal #{id} on {}: list them with `vouch proposals {} --all`",
                self.gun(),
                self.server(),
                self.gun()
            ),
            e => self.word(e, "push"),
        }
    }

    /// Adds `signatures` to proposal `id`.
    pub fn sign_proposal(&self, id: u64, signatures: &Signatures) -> anyhow::Result<Proposal> {
        self.repo
            .sign_proposal(id, signatures)
            .map_err(|e| match e {
                ServerError::Conflict { gun } => anyhow!(
                    "{gun} changed since proposal #{id} was made (409 Conflict): the signatures were not accepted; the proposal is out of date"
                ),
                e => self.word_proposal(e, id),
            })
    }

    /// Withdraws proposal `id`.
    pub fn withdraw_proposal(&self, id: u64) -> anyhow::Result<Proposal> {
        self.repo
            .withdraw_proposal(id)
            .map_err(|e| self.word_proposal(e, id))
    }

    /// [`Transport::fetch_by`], with the caller's deadline if it has one. A server that is
    /// not reached or does not answer within `--timeout` is a [`TransportError::Network`]
    /// error that says what to do: the server is unavailable (and `--source
    /// server,registry` reads the registry copy). A refusal is the server answering: a 401
    /// or 403 is [`TransportError::Unauthorized`] (worded by [`transport_refusal`]), another
    /// status [`TransportError::Status`] (a 5xx counts as unavailable, a 4xx does not), so
    /// an expired token is reported, never silently replaced by the registry copy.
    fn fetch_within(
        &self,
        path: &str,
        max_len: u64,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, TransportError> {
        let network = |message: String| TransportError::Network {
            path: path.to_owned(),
            message,
        };
        self.repo
            .fetch_file(path, max_len, deadline)
            .map_err(|e| match e {
                ServerError::Fetch(e) => e,
                ServerError::NotFound { .. } => TransportError::NotFound {
                    path: path.to_owned(),
                },
                ServerError::Unreachable { server, message } => {
                    network(unreachable(&server, &message))
                }
                ServerError::NoAnswer { server, waited } => network(no_answer(&server, waited)),
                ServerError::Refused { refusal, .. } => match refusal.auth {
                    Some(auth) => TransportError::Unauthorized {
                        path: path.to_owned(),
                        status: refusal.status,
                        sent_token: !matches!(auth, AuthRefusal::NoToken),
                        refusal: auth,
                    },
                    None => TransportError::Status {
                        path: path.to_owned(),
                        status: refusal.status,
                    },
                },
                other => network(other.to_string()),
            })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_is_wrong_with_the_token() {
        let gun = Gun::new("registry.example.com/org/app").unwrap();
        let refusal = |status: u16, auth: Option<AuthRefusal>| Refusal {
            status,
            auth,
            body: None,
            text: String::new(),
        };
        let m = refusal_message(
            &refusal(401, Some(AuthRefusal::TokenRefused)),
            "pull",
            gun.as_str(),
        );
        assert!(
            m.contains("refused the token (HTTP 401)")
                && m.contains("expired or revoked")
                && m.contains("VOUCH_TOKEN or --token-file"),
            "{m}"
        );
        let m = refusal_message(
            &refusal(401, Some(AuthRefusal::NoToken)),
            "push",
            gun.as_str(),
        );
        assert!(
            m.contains("asks for a token") && m.contains("push on registry.example.com/org/app"),
            "{m}"
        );
        let m = refusal_message(
            &refusal(403, Some(AuthRefusal::LacksGrant)),
            "push",
            gun.as_str(),
        );
        assert!(
            m.contains("does not grant push on registry.example.com/org/app (HTTP 403)"),
            "{m}"
        );
        let mut said = refusal(400, None);
        said.body = Some(vouch_tuf::api::ErrorBody::from(
            vouch_tuf::api::ApiError::new("METADATA_INVALID", "targets: too few signatures"),
        ));
        assert_eq!(
            refusal_message(&said, "push", gun.as_str()),
            "HTTP 400 Bad Request: METADATA_INVALID: targets: too few signatures"
        );
        assert_eq!(
            refusal_message(&refusal(502, None), "push", gun.as_str()),
            "HTTP 502 Bad Gateway"
        );
    }

    /// A remote for `server` whose requests have `timeout`.
    fn remote_at(server: &str, timeout: Duration) -> Remote {
        let options = ServerOptions {
            timeout,
            ..ServerOptions::default()
        };
        Remote {
            repo: ServerClient::new(server, &options)
                .unwrap()
                .repository(&Gun::new("registry.example.com/org/app").unwrap()),
        }
    }

    /// A server that accepts connections and never answers is reported as not answering
    /// within the request timeout, naming the server and `--timeout`.
    #[test]
    fn a_silent_server_is_reported_as_not_answering() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = format!("http://{}", listener.local_addr().unwrap());
        let remote = remote_at(&server, Duration::from_secs(1));
        let far = Instant::now() + Duration::from_secs(600);
        match remote.fetch_by("root.json", 1024, far) {
            Err(TransportError::Network { message, .. }) => assert!(
                message.contains(&format!("no answer from {server} within 1 s"))
                    && message.contains("--timeout"),
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

    /// A server that is not there is named, with `--server`.
    #[test]
    fn an_unreachable_server_names_the_flag() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let remote = remote_at(&server, Duration::from_secs(5));
        let e = remote.delete_trust_data().unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("cannot reach the vouch server at {server} ("))
                && e.ends_with("is it running? (set --server or VOUCH_SERVER)"),
            "{e}"
        );
        match remote.fetch("root.json", 10) {
            Err(TransportError::Network { message, .. }) => {
                assert!(
                    message.contains("cannot reach the vouch server"),
                    "{message}"
                )
            }
            other => panic!("expected unreachable, got {other:?}"),
        }
    }
}
