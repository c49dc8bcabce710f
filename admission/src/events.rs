//! Following the trust-change events of the vouch servers the policy names, so that a
//! revocation reaches admission decisions about a second after it is published rather
//! than after the refresh interval (see `docs/events.md`).
//!
//! What it is: one thread per followed server ([`crate::policy::Policy::followed_servers`]),
//! each running the verifier's [`Follower`] over the server's global stream
//! (`GET /v2/_trust/events`), with the bearer token the policy gives that server (the one
//! refreshes send, read again at every connection so a rotated token file is picked up).
//! A follower starts at the newest event; its reconnections resume after the last id, so
//! an event published while the stream was down still arrives once it is back.
//!
//! What it is not: a source of trust. An event only makes the webhook refresh: for an
//! event of GUN g from server s, every repository (s, g) in memory is marked superseded
//! ([`crate::trust::TrustCache::supersede`]: its remembered verdicts dropped, a refresh due at once,
//! requests waiting for the refresh rather than answering from the superseded state), and
//! one background refresh is started ([`crate::trust::TrustCache::refresh_superseded`]), which verifies
//! through TUF as always. A forged or replayed event can at most cause a refresh.
//! Repositories the webhook does not hold are not touched.
//!
//! How the parts relate: [`Followers`] is the set of running followers; [`Followers::sync`]
//! starts followers for servers a new policy names and stops (by their stop flags) those of
//! servers it no longer names. While a stream is down nothing changes from interval
//! refreshes. A server that refuses the stream (401/403: the token lacks a wildcard `*`
//! pull scope) is logged once, with the scope needed, and retried only every
//! [`REFUSED_RETRY`].

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use vouch_verifier::server::{
    Backoff, Connection, Disconnect, Follower, ServerClient, ServerError, ServerOptions,
};
use vouch_verifier::transport::BearerToken;

use crate::credentials::ServerToken;
use crate::decide::Webhook;

/// How long a follower whose server refused the stream (401/403) waits before trying
/// again.
pub const REFUSED_RETRY: Duration = Duration::from_secs(300);

/// How a follower waits between reconnections (other than after a refusal): from
/// 250 ms, doubling to 30 s.
const BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(250),
    max: Duration::from_secs(30),
};

/// How often a follower waiting [`REFUSED_RETRY`] looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(200);

/// The token a follower sends: the one the policy in force gives its server, replaced on
/// policy reload without restarting the follower.
#[derive(Debug, Default)]
struct FollowToken(RwLock<Option<Arc<ServerToken>>>);

impl FollowToken {
    fn set(&self, token: Option<Arc<ServerToken>>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = token;
    }
}

impl BearerToken for FollowToken {
    fn bearer_token(&self) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|t| t.bearer_token())
    }
}

/// One running follower.
struct Running {
    stop: Arc<AtomicBool>,
    token: Arc<FollowToken>,
}

/// The followers of every server the policy in force names (see the module
/// documentation).
pub struct Followers {
    webhook: Weak<Webhook>,
    runtime: tokio::runtime::Handle,
    running: BTreeMap<String, Running>,
}

impl std::fmt::Debug for Followers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Followers")
            .field("servers", &self.running.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Followers {
    /// No followers yet, for `webhook`, whose background refreshes run on `runtime`.
    /// Followers hold the webhook weakly: they end when it is dropped.
    pub fn new(webhook: &Arc<Webhook>, runtime: tokio::runtime::Handle) -> Self {
        Followers {
            webhook: Arc::downgrade(webhook),
            runtime,
            running: BTreeMap::new(),
        }
    }

    /// The servers followed now.
    pub fn servers(&self) -> BTreeSet<String> {
        self.running.keys().cloned().collect()
    }

    /// Follows exactly `servers` from now on: starts a follower thread for each one not
    /// followed yet, stops those of servers not in `servers`, and hands every follower the
    /// token `tokens` gives its server.
    pub fn sync(
        &mut self,
        servers: &BTreeSet<String>,
        tokens: &BTreeMap<String, Arc<ServerToken>>,
    ) {
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|s| !servers.contains(*s))
            .cloned()
            .collect();
        for server in gone {
            if let Some(r) = self.running.remove(&server) {
                r.stop.store(true, Ordering::SeqCst);
                tracing::info!(server, "no longer following the trust server's events");
            }
            if let Some(w) = self.webhook.upgrade() {
                w.metrics().forget_stream(&server);
            }
        }
        for server in servers {
            if let Some(r) = self.running.get(server) {
                r.token.set(tokens.get(server).cloned());
                continue;
            }
            let token = Arc::new(FollowToken::default());
            token.set(tokens.get(server).cloned());
            if let Some(w) = self.webhook.upgrade() {
                w.metrics().event_stream_up(server, false);
            }
            // The client is built on the follower's thread (a blocking HTTP client cannot be
            // built in async code), which hands back the follower's stop flag.
            let (tx, rx) = std::sync::mpsc::channel();
            let (webhook, runtime, name) =
                (self.webhook.clone(), self.runtime.clone(), server.clone());
            let bearer = token.clone();
            let spawned = std::thread::Builder::new()
                .name("vouch-events".to_owned())
                .spawn(move || {
                    let client = match ServerClient::new(&name, &ServerOptions::default()) {
                        Ok(c) => c.with_bearer_token(bearer),
                        Err(e) => {
                            tracing::error!(server = name, error = %e, "cannot follow the trust server's events");
                            return;
                        }
                    };
                    let follower = Follower::new(&client, None, None).with_backoff(BACKOFF);
                    let stop = follower.stop_flag();
                    if tx.send(stop.clone()).is_err() {
                        return;
                    }
                    FollowThread {
                        server: name,
                        stop,
                        webhook,
                        runtime,
                    }
                    .run(follower);
                });
            if let Err(e) = spawned {
                tracing::error!(server, error = %e, "cannot start the event follower");
                continue;
            }
            let Ok(stop) = rx.recv() else {
                continue;
            };
            tracing::info!(server, "following the trust server's events");
            self.running.insert(server.clone(), Running { stop, token });
        }
    }

    /// Stops every follower (by its stop flag; each thread ends after its next read).
    pub fn stop_all(&mut self) {
        self.sync(&BTreeSet::new(), &BTreeMap::new());
    }
}

impl Drop for Followers {
    fn drop(&mut self) {
        for r in self.running.values() {
            r.stop.store(true, Ordering::SeqCst);
        }
    }
}

/// What one follower thread needs.
struct FollowThread {
    server: String,
    stop: Arc<AtomicBool>,
    webhook: Weak<Webhook>,
    runtime: tokio::runtime::Handle,
}

impl FollowThread {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Runs `follower` until stopped or the webhook is gone; after a refusal, waits
    /// [`REFUSED_RETRY`] before following again, from where it was.
    fn run(self, mut follower: Follower) {
        let mut refusal_logged = false;
        while !self.stopped() {
            let refused = std::cell::Cell::new(false);
            follower.run(
                |event| {
                    if self.stopped() {
                        return ControlFlow::Break(());
                    }
                    let Some(webhook) = self.webhook.upgrade() else {
                        return ControlFlow::Break(());
                    };
                    webhook.metrics().event(&self.server);
                    self.handle(&webhook, &event.gun);
                    ControlFlow::Continue(())
                },
                |state| {
                    if self.stopped() {
                        return ControlFlow::Break(());
                    }
                    let Some(webhook) = self.webhook.upgrade() else {
                        return ControlFlow::Break(());
                    };
                    match state {
                        Connection::Connected { after } => {
                            webhook.metrics().event_stream_up(&self.server, true);
                            refusal_logged = false;
                            tracing::info!(server = %self.server, after = ?after, "event stream open");
                            ControlFlow::Continue(())
                        }
                        Connection::Disconnected { reason, retry_in } => {
                            webhook.metrics().event_stream_up(&self.server, false);
                            if let Disconnect::Error(ServerError::Refused { refusal, .. }) = reason
                            {
                                if matches!(refusal.status, 401 | 403) {
                                    if !refusal_logged {
                                        tracing::error!(
                                            server = %self.server,
                                            status = refusal.status,
                                            retry_in_secs = REFUSED_RETRY.as_secs(),
                                            "the trust server refused its event stream (GET /v2/_trust/events): the token the policy gives it needs a scope with the pattern `*` and `pull` (e.g. scopes = [\"*:pull\"]); revocations reach decisions only at the refresh interval meanwhile"
                                        );
                                        refusal_logged = true;
                                    }
                                    refused.set(true);
                                    return ControlFlow::Break(());
                                }
                            }
                            tracing::warn!(
                                server = %self.server,
                                reason = %reason,
                                retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
                                "event stream down; interval refreshes go on"
                            );
                            ControlFlow::Continue(())
                        }
                    }
                },
            );
            if self.webhook.strong_count() == 0 {
                return;
            }
            if refused.get() {
                let until = Instant::now() + REFUSED_RETRY;
                while !self.stopped() && Instant::now() < until {
                    std::thread::sleep(STOP_POLL);
                }
            }
        }
    }

    /// Acts on an event of `gun`: supersedes the repositories (this server, `gun`) in
    /// memory and refreshes each in the background.
    fn handle(&self, webhook: &Arc<Webhook>, gun: &str) {
        let marked = webhook.trust().supersede(&self.server, gun);
        if marked.is_empty() {
            return;
        }
        tracing::debug!(server = %self.server, gun, "trust changed: refreshing");
        for repo in marked {
            webhook.metrics().event_refresh();
            let webhook = webhook.clone();
            self.runtime.spawn(async move {
                webhook.trust().refresh_superseded(&repo).await;
            });
        }
    }
}
