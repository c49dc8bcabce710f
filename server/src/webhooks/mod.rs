//! Signed webhooks: every changefeed entry of the repositories a subscription follows is
//! POSTed to its URL as a Standard Webhooks message ([`vouch_tuf::api::event`]), signed
//! with the server's ed25519 key (`v1a`; the public half is served at
//! `GET /v2/_trust/webhooks/key`) and, when the subscription has a secret, with
//! HMAC-SHA256 (`v1`).
//!
//! Delivery is at least once and in changefeed order, from a cursor kept in the store
//! ([`crate::store::WebhookCursor`]): it survives restarts and is shared by replicas, of
//! which the one holding the subscription's lease delivers (a replica that dies is taken
//! over when its lease runs out). A subscription new to the store (or renamed) starts with
//! the changes published after the server that first delivers it started serving. An
//! event is delivered, then the cursor saved; a process killed between the two delivers
//! that event again on restart, with the same `webhook-id`, by which receivers drop
//! repeats. A failed attempt (no 2xx within
//! `webhooks.timeout_seconds`) is retried after an exponential backoff with jitter
//! ([`destination::backoff`]); after `webhooks.max_attempts` the subscription is marked dead
//! and delivers nothing until an operator resumes it (`POST
//! /v2/_trust/webhooks/{name}/resume`, `vouch webhooks resume`), from the event that failed.
//!
//! Where deliveries may go is [`destination`]'s to decide: an allow-list of URL prefixes,
//! https only, and no loopback, private or link-local addresses unless allowed, checked on
//! the configured URL and on every address its name resolves to at delivery time.

pub(crate) mod destination;
mod signing;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64ct::{Base64, Encoding};
use ring::rand::SecureRandom;
use vouch_tuf::api::event::{self, Event};
use vouch_tuf::clock::Clock;
use vouch_tuf::time::Timestamp;
use zeroize::Zeroizing;

use crate::auth::ScopeGlob;
use crate::config::{ConfigError, WebhooksConfig};
use crate::events::{read_store_behind, Hub, Read};
use crate::store::{Store, StoreError, WebhookCursor};
pub(crate) use destination::backoff;
pub(crate) use destination::redact_url;
use destination::{address_allowed, Destination, Rules};
pub(crate) use signing::{load_or_create_key, read_private_file};

/// The signing key's file in the data directory when `webhooks.signing_key_file` is unset.
pub(crate) const DEFAULT_KEY_FILE: &str = "webhook-signing.pem";

/// Entries looked at per step when looking for the next one a subscription follows; the
/// cursor is saved past the ones it does not after each step.
const SCAN: usize = 256;

/// Most bytes of a receiver's answer read (and thrown away).
const ANSWER_BYTES: usize = 4096;

/// Checks the `[webhooks]` section: settings in range, each subscription's name unique and
/// plain, its URL allowed, its patterns non-empty, its secret file readable.
pub(crate) fn check_config(c: &WebhooksConfig) -> Result<(), ConfigError> {
    let positive = [
        ("max_attempts", u64::from(c.max_attempts)),
        ("timeout_seconds", c.timeout_seconds),
        ("backoff_initial_ms", c.backoff_initial_ms),
        ("backoff_max_seconds", c.backoff_max_seconds),
        ("lease_seconds", c.lease_seconds),
    ];
    for (name, v) in positive {
        if v == 0 {
            return Err(ConfigError(format!("webhooks.{name} must be positive")));
        }
    }
    if c.timeout_seconds >= c.lease_seconds {
        return Err(ConfigError(
            "webhooks.timeout_seconds must be shorter than webhooks.lease_seconds (a delivery must end before the lease it runs under)".into(),
        ));
    }
    for a in &c.allowed_urls {
        reqwest::Url::parse(a)
            .map_err(|e| ConfigError(format!("webhooks.allowed_urls: {a:?} is not a URL: {e}")))?;
    }
    let mut names = std::collections::HashSet::new();
    for s in &c.subscriptions {
        Subscription::from_config(s, c).map_err(ConfigError)?;
        if !names.insert(s.name.as_str()) {
            return Err(ConfigError(format!(
                "webhooks.subscriptions: the name {:?} is used twice",
                s.name
            )));
        }
    }
    Ok(())
}

/// One configured subscription, checked.
pub(crate) struct Subscription {
    name: String,
    destination: Destination,
    guns: Vec<ScopeGlob>,
    secret: Option<Zeroizing<Vec<u8>>>,
}

impl Subscription {
    fn from_config(
        s: &crate::config::SubscriptionConfig,
        c: &WebhooksConfig,
    ) -> Result<Self, String> {
        let what = format!("webhooks.subscriptions {:?}", s.name);
        if !vouch_tuf::api::path::is_subscription_name(&s.name) {
            return Err(format!(
                "{what}: a name is 1 to 64 letters, digits, '-', '_' or '.'"
            ));
        }
        let rules = Rules {
            allow_http: c.allow_http,
            allow_private: c.allow_private_addresses,
        };
        let destination = Destination::check(&s.url, &c.allowed_urls, rules)
            .map_err(|e| format!("{what}: {e}"))?;
        if s.guns.is_empty() {
            return Err(format!("{what}: guns must list at least one pattern"));
        }
        let guns = s
            .guns
            .iter()
            .map(|g| ScopeGlob::new(g).map_err(|e| format!("{what}: {e}")))
            .collect::<Result<_, _>>()?;
        let secret = match &s.secret_file {
            None => None,
            Some(f) => Some(signing::read_secret(f).map_err(|e| format!("{what}: {e}"))?),
        };
        Ok(Subscription {
            name: s.name.clone(),
            destination,
            guns,
            secret,
        })
    }

    fn follows(&self, gun: &str) -> bool {
        self.guns.iter().any(|g| g.matches(gun))
    }
}

/// What this process counts of one subscription's deliveries.
#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    failed: AtomicU64,
}

/// The subscriptions, the key deliveries are signed with, and the client they are sent with.
pub(crate) struct Webhooks {
    subscriptions: Vec<(Arc<Subscription>, Counts)>,
    key: vouch_tuf::crypto::PrivateKey,
    public: String,
    /// `None` when no subscription is configured.
    client: Option<reqwest::Client>,
    timing: Timing,
    /// This process's name in the leases it takes.
    owner: String,
    clock: Arc<dyn Clock>,
    /// The last state read of each subscription (for `/metrics`).
    last_seen: Mutex<Vec<WebhookCursor>>,
    /// The subscriptions whose lease this process took (given up at shutdown).
    held: Mutex<std::collections::HashSet<String>>,
}

#[derive(Clone, Copy)]
struct Timing {
    max_attempts: u32,
    backoff_initial: Duration,
    backoff_max: Duration,
    lease: Duration,
}

impl Webhooks {
    /// The subscriptions of `c` and the signing key (read from, or made at,
    /// `c.signing_key_file`, else `default_key_file`).
    /// With `shared_store` (PostgreSQL: replicas), a configured key file that does not exist
    /// is refused rather than made.
    pub(crate) fn new(
        c: &WebhooksConfig,
        default_key_file: &std::path::Path,
        shared_store: bool,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let key_file = c.signing_key_file.as_deref().unwrap_or(default_key_file);
        let may_create = c.signing_key_file.is_none() || !shared_store;
        let key = load_or_create_key(key_file, may_create)?;
        let public = signing::public_text(&key);
        let subscriptions = c
            .subscriptions
            .iter()
            .map(|s| Subscription::from_config(s, c).map(|s| (Arc::new(s), Counts::default())))
            .collect::<Result<_, _>>()
            .map_err(ConfigError)?;
        let client = if c.subscriptions.is_empty() {
            // Nothing to deliver: no client (building one loads the platform's
            // certificate store, a cost every start would pay for nothing).
            None
        } else {
            Some(delivery_client(c)?)
        };
        let mut id = [0u8; 8];
        ring::rand::SystemRandom::new()
            .fill(&mut id)
            .map_err(|_| anyhow::anyhow!("no randomness for the webhook lease owner"))?;
        Ok(Webhooks {
            subscriptions,
            key,
            public,
            client,
            timing: Timing {
                max_attempts: c.max_attempts,
                backoff_initial: Duration::from_millis(c.backoff_initial_ms),
                backoff_max: Duration::from_secs(c.backoff_max_seconds),
                lease: Duration::from_secs(c.lease_seconds),
            },
            owner: format!("{}-{}", std::process::id(), vouch_tuf::hex::encode(id)),
            clock,
            last_seen: Mutex::default(),
            held: Mutex::default(),
        })
    }

    /// The public key receivers verify `v1a` signatures with: `whpk_` and the base64 of the
    /// raw ed25519 key.
    pub(crate) fn public_key(&self) -> &str {
        &self.public
    }

    /// The configured subscriptions' names, URLs (redacted) and patterns.
    pub(crate) fn configured(&self) -> impl Iterator<Item = (&str, String, Vec<String>)> {
        self.subscriptions.iter().map(|(s, _)| {
            (
                s.name.as_str(),
                destination::origin_of(&s.destination.url),
                s.guns.iter().map(|g| g.as_str().to_owned()).collect(),
            )
        })
    }

    /// Whether a subscription of this name is configured.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.subscriptions.iter().any(|(s, _)| s.name == name)
    }

    /// Starts one delivery task per subscription; they run until aborted. Call it before
    /// the server accepts requests: a subscription new to the store starts after the
    /// changefeed's head as it is now, so every change published once the server serves is
    /// delivered, however late a task makes its first claim.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let start = hub.head();
        (0..self.subscriptions.len())
            .map(|i| {
                let (w, store, hub) = (self.clone(), store.clone(), hub.clone());
                tokio::spawn(async move { w.deliver(i, store, hub, start).await })
            })
            .collect()
    }

    /// Gives up this process's delivery leases (at a clean shutdown), so that another
    /// replica — or this server started again — delivers at once rather than after the
    /// lease runs out. Each lease is renewed to end now: only a lease this process holds is
    /// touched. Failures are logged; the leases then run out by themselves.
    pub(crate) async fn release(&self, store: &Arc<dyn Store>) {
        for (sub, _) in &self.subscriptions {
            // Only a lease this process took: a claim creates the row of a subscription
            // that has none, which releasing must not do.
            if !self.held(&sub.name) {
                continue;
            }
            let (store, name, owner) = (store.clone(), sub.name.clone(), self.owner.clone());
            let now = self.now();
            if let Err(e) = blocking(move || store.claim_webhook(&name, &owner, 0, now, now)).await
            {
                tracing::warn!(subscription = %sub.name, error = %e, "webhook: cannot give up the delivery lease; it runs out by itself");
            }
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Subscription `i`'s delivery loop; `start` is where it begins if it is new.
    async fn deliver(self: Arc<Self>, i: usize, store: Arc<dyn Store>, hub: Arc<Hub>, start: u64) {
        let (sub, counts) = (&self.subscriptions[i].0, &self.subscriptions[i].1);
        let mut heads = hub.subscribe();
        let idle = self.timing.lease / 3;
        let mut failing_store = false;
        loop {
            heads.borrow_and_update();
            let claimed_at = std::time::Instant::now();
            let state = match self.claim(&store, sub, start).await {
                Ok(Some(state)) => {
                    failing_store = false;
                    self.holding(&sub.name, true);
                    state
                }
                // Another replica delivers: look again before its lease could run out.
                Ok(None) => {
                    self.holding(&sub.name, false);
                    tokio::time::sleep(idle).await;
                    continue;
                }
                Err(e) => {
                    if !failing_store {
                        tracing::warn!(subscription = %sub.name, error = %e, "webhook: cannot read its delivery state; retrying");
                        failing_store = true;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            self.remember(&state);
            if state.dead {
                tokio::time::sleep(idle).await;
                continue;
            }
            let now = self.now();
            if let Some(at) = state.next_attempt_at.filter(|at| *at > now) {
                let wait = Duration::from_secs((at.unix() - now.unix()) as u64);
                tokio::time::sleep(wait.min(idle)).await;
                continue;
            }
            let (next, pos) = match self.find_next(&store, &hub, sub, state.cursor).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(subscription = %sub.name, error = %e, "webhook: cannot read the changefeed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Some(event) = next else {
                if pos > state.cursor {
                    // Past entries it does not follow.
                    let moved = WebhookCursor {
                        cursor: pos,
                        ..state
                    };
                    let _ = self.save(&store, moved).await;
                    continue;
                }
                tokio::select! {
                    _ = heads.changed() => {}
                    _ = tokio::time::sleep(idle) => {}
                }
                continue;
            };
            // A delivery runs under a lease with at least a whole delivery's time left: after
            // a slow read, renew it first (and deliver nothing if it was taken over).
            if claimed_at.elapsed() > Duration::from_secs(1) {
                match self.claim(&store, sub, start).await {
                    Ok(Some(_)) => {}
                    _ => continue,
                }
            }
            let outcome = self.send(sub, &event).await;
            let now = self.now();
            let saved = match outcome {
                Ok(()) => {
                    counts.delivered.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(subscription = %sub.name, id = event.id, "webhook delivered");
                    WebhookCursor {
                        cursor: event.id as i64,
                        attempts: 0,
                        next_attempt_at: None,
                        last_error: None,
                        last_delivered_at: Some(now),
                        ..state
                    }
                }
                Err(why) => {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                    let attempts = state.attempts.saturating_add(1);
                    let dead = attempts >= self.timing.max_attempts;
                    let wait = backoff(
                        attempts,
                        self.timing.backoff_initial,
                        self.timing.backoff_max,
                        jitter(),
                    );
                    if dead {
                        tracing::error!(subscription = %sub.name, id = event.id, attempts, error = %why, "webhook: giving up; the subscription is dead until resumed");
                    } else {
                        tracing::warn!(subscription = %sub.name, id = event.id, attempts, error = %why, retry_in_ms = wait.as_millis() as u64, "webhook delivery failed");
                    }
                    let saved = WebhookCursor {
                        // Past the entries before it that it does not follow.
                        cursor: (event.id as i64 - 1).max(state.cursor),
                        attempts,
                        dead,
                        next_attempt_at: Some(now.add_seconds(wait.as_secs() as i64)),
                        last_error: Some(why),
                        ..state
                    };
                    if !dead {
                        let save = self.save(&store, saved.clone());
                        let (_, ()) = tokio::join!(save, tokio::time::sleep(wait));
                        continue;
                    }
                    saved
                }
            };
            let _ = self.save(&store, saved).await;
        }
    }

    /// Takes or renews `sub`'s lease; a subscription new to the store starts after `head`.
    async fn claim(
        &self,
        store: &Arc<dyn Store>,
        sub: &Subscription,
        head: u64,
    ) -> Result<Option<WebhookCursor>, StoreError> {
        let (store, name, owner) = (store.clone(), sub.name.clone(), self.owner.clone());
        let now = self.now();
        let until = now.add_seconds(self.timing.lease.as_secs() as i64);
        blocking(move || store.claim_webhook(&name, &owner, head as i64, now, until)).await
    }

    /// Saves `state` under this process's lease ([`save_cursor`]); false when the lease was
    /// taken over or the store kept failing for a lease.
    async fn save(&self, store: &Arc<dyn Store>, state: WebhookCursor) -> bool {
        self.remember(&state);
        let lease = self.timing.lease;
        save_cursor(store, &self.owner, &state, lease, "webhook", &state.name).await
    }

    /// Notes whether this process holds `name`'s lease (as of its last claim).
    fn holding(&self, name: &str, held: bool) {
        let mut h = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held {
            h.insert(name.to_owned());
        } else {
            h.remove(name);
        }
    }

    fn held(&self, name: &str) -> bool {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
    }

    fn remember(&self, state: &WebhookCursor) {
        let mut seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.iter_mut().find(|s| s.name == state.name) {
            Some(s) => *s = state.clone(),
            None => seen.push(state.clone()),
        }
    }

    /// The first entry after `cursor` that `sub` follows, looking at up to [`SCAN`] entries,
    /// and the position up to which entries were looked at.
    async fn find_next(
        &self,
        store: &Arc<dyn Store>,
        hub: &Hub,
        sub: &Subscription,
        cursor: i64,
    ) -> Result<(Option<Event>, i64), StoreError> {
        let after = cursor.max(0) as u64;
        let (entries, pos) = match hub.read(after, None, SCAN) {
            Read::Entries(entries, pos) => (entries, pos),
            Read::Behind => read_store_behind(store.clone(), hub, None, after).await?,
        };
        for e in &entries {
            if sub.follows(&e.event.gun) {
                return Ok((Some(e.event.clone()), e.event.id as i64));
            }
        }
        Ok((None, pos as i64))
    }

    /// One delivery attempt: `Ok` on a 2xx answer.
    async fn send(&self, sub: &Subscription, event: &Event) -> Result<(), String> {
        let body = event::webhook_payload(event);
        let id = event::webhook_id(event);
        let timestamp = self.now().unix();
        let signed = event::signed_content(&id, timestamp, &body);
        let mut signature = format!(
            "{},{}",
            event::SignatureScheme::Ed25519.as_str(),
            Base64::encode_string(&signing::sign(&self.key, &signed)?)
        );
        if let Some(secret) = &sub.secret {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
            let tag = ring::hmac::sign(&key, &signed);
            signature.push(' ');
            signature.push_str(event::SignatureScheme::HmacSha256.as_str());
            signature.push(',');
            signature.push_str(&Base64::encode_string(tag.as_ref()));
        }
        let client = self
            .client
            .as_ref()
            .ok_or("no delivery client: no subscription is configured")?;
        let resp = client
            .post(sub.destination.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = resp.status();
        // Read a little of the answer so the connection can be reused; never more.
        let mut resp = resp;
        let mut read = 0;
        while read < ANSWER_BYTES {
            match resp.chunk().await {
                Ok(Some(c)) => read += c.len(),
                _ => break,
            }
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    }

    /// Every subscription's stored state with its configuration, for the listing.
    pub(crate) fn listing(&self, stored: &[WebhookCursor], head: u64) -> serde_json::Value {
        let subs: Vec<_> = self
            .configured()
            .map(|(name, url, guns)| {
                let state = stored.iter().find(|s| s.name == name);
                serde_json::json!({
                    "name": name,
                    "url": url,
                    "guns": guns,
                    "status": match state {
                        None => "new",
                        Some(s) if s.dead => "dead",
                        Some(s) if s.attempts > 0 => "retrying",
                        Some(_) => "active",
                    },
                    "cursor": state.map(|s| s.cursor),
                    "lag": state.map(|s| head.saturating_sub(s.cursor.max(0) as u64)),
                    "attempts": state.map_or(0, |s| s.attempts),
                    "next_attempt_at": state.and_then(|s| s.next_attempt_at).map(|t| t.to_string()),
                    "last_error": state.and_then(|s| s.last_error.clone()),
                    "last_delivered_at": state.and_then(|s| s.last_delivered_at).map(|t| t.to_string()),
                })
            })
            .collect();
        serde_json::json!({"public_key": self.public, "subscriptions": subs})
    }

    /// The `/metrics` lines of the subscriptions, with `head` the newest changefeed id.
    pub(crate) fn render_metrics(&self, head: u64, out: &mut String) {
        use std::fmt::Write as _;
        let seen = self
            .last_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let _ = writeln!(
            out,
            "# HELP vouch_webhook_deliveries_total Webhook delivery attempts this process made, by subscription and outcome.\n\
             # TYPE vouch_webhook_deliveries_total counter"
        );
        for (s, c) in &self.subscriptions {
            for (outcome, n) in [("delivered", &c.delivered), ("failed", &c.failed)] {
                let _ = writeln!(
                    out,
                    "vouch_webhook_deliveries_total{{subscription=\"{}\",outcome=\"{outcome}\"}} {}",
                    s.name,
                    n.load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP vouch_webhook_lag Changefeed ids between the newest entry and a subscription's cursor, as last seen by this process.\n\
             # TYPE vouch_webhook_lag gauge\n\
             # HELP vouch_webhook_dead Whether a subscription gave up and waits to be resumed (1) or delivers (0), as last seen by this process.\n\
             # TYPE vouch_webhook_dead gauge"
        );
        for st in &seen {
            let _ = writeln!(
                out,
                "vouch_webhook_lag{{subscription=\"{}\"}} {}\nvouch_webhook_dead{{subscription=\"{}\"}} {}",
                st.name,
                head.saturating_sub(st.cursor.max(0) as u64),
                st.name,
                u8::from(st.dead)
            );
        }
    }
}

/// The client deliveries are sent with: no redirects, no proxy, the delivery timeout, and
/// names resolved by [`CheckedResolver`] to allowed addresses only.
fn delivery_client(c: &WebhooksConfig) -> anyhow::Result<reqwest::Client> {
    // Another part of the process may have installed a provider already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let timeout = Duration::from_secs(c.timeout_seconds);
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!(
            "vouch-server/",
            env!("CARGO_PKG_VERSION"),
            " (webhooks)"
        ))
        .dns_resolver(Arc::new(CheckedResolver {
            allow_private: c.allow_private_addresses,
        }))
        .build()
        .map_err(|e| anyhow::anyhow!("building the webhook client: {e}"))
}

/// What went wrong with a request, without the URL (which may carry a query).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_request() {
        "the request failed"
    } else {
        "failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

/// A number in `[0, 1)` from the system's random source (0.5 if it fails).
pub(crate) fn jitter() -> f64 {
    let mut b = [0u8; 4];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// How long a worker waits before asking a failing store again to save its cursor.
const SAVE_RETRY: Duration = Duration::from_secs(1);

/// Saves `state`, the cursor of a worker holding a lease as `owner` (a webhook
/// subscription, a registry's mirror; `worker` and `name` say which in the log), asking again a second
/// apart while the store fails, for at most `within` (a lease: past it the lease may have
/// lapsed, and whoever holds it next starts from the stored cursor). True when saved; false
/// when the lease was taken over or the store failed throughout.
///
/// A worker saves what it delivered before it looks for more: a cursor left behind makes its
/// next claim find the same entries and send them again, at once and for as long as the
/// store fails (a full disk sent one event 334 times in 0.7 s).
pub(crate) async fn save_cursor(
    store: &Arc<dyn Store>,
    owner: &str,
    state: &WebhookCursor,
    within: Duration,
    worker: &'static str,
    name: &str,
) -> bool {
    let give_up = std::time::Instant::now() + within;
    let mut warned = false;
    loop {
        let (s, o, st) = (store.clone(), owner.to_owned(), state.clone());
        match blocking(move || s.save_webhook(&o, &st)).await {
            Ok(saved) => {
                if warned {
                    tracing::info!(worker, name, "cursor saved again");
                }
                return saved;
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(worker, name, error = %e, "cannot save the cursor; asking again every second before sending anything more");
                    warned = true;
                }
                if std::time::Instant::now() + SAVE_RETRY >= give_up {
                    return false;
                }
                tokio::time::sleep(SAVE_RETRY).await;
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("blocking task failed: {e}")))?
}

/// Resolves names for deliveries, keeping only the addresses a delivery may connect to.
struct CheckedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| address_allowed(a.ip(), allow_private))
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{host} resolves to no address deliveries may go to: {} non-public refused unless webhooks.allow_private_addresses is set",
                    all.len()
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
