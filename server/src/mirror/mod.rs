//! Mirroring: the server pushes each mirrored repository's trust data into the repository's
//! own registry, as the trust artifact of `vouch_tuf::oci` under the tag `_vouch.trust`,
//! so consumers verify with only the registry reachable (docs/registry-trust.md).
//!
//! - **Which**: `mirror.repositories` patterns (the webhooks' glob), each naming its
//!   registry literally ([`plan::pattern`]). A repository `registry.example.com/org/app`
//!   goes to `registry.example.com`, repository `org/app`.
//! - **When**: one worker per destination registry follows the changefeed from a cursor
//!   kept in the store with the webhooks' lease machinery (row `mirror:<host[:port]>` of
//!   the webhook cursors, a name no subscription can have), so exactly one replica pushes
//!   to a registry at a time and a restart resumes where it stopped. A registry new to the
//!   store starts at the beginning of the changefeed: turning mirroring on mirrors the
//!   repositories that already exist. Each batch of up to [`PAGE`] entries is collapsed to
//!   the mirrored repositories it touches ([`plan::collapse`]); each is pushed in its
//!   current state ([`push::mirror`]), then the cursor moves past the batch.
//! - **What is pushed**: `vouch_tuf::oci::decide_push` decides, the rule every writer of a
//!   trust tag follows. A tag holding something other than this repository's trust
//!   artifact is never overwritten (logged, counted `refused`); a tag holding a newer state
//!   of the repository (a higher timestamp version) is never rolled back (logged, counted
//!   `older`); either way the cursor moves on. Only the blobs the tag's artifact does not
//!   list yet are sent. No request of a push starts past half a lease, and the lease is
//!   renewed just before the manifest is put: a replica that lost it writes nothing.
//! - **Failures of the registry** (unreachable, a timeout, a 5xx, 408 or 429) keep the
//!   cursor and retry after an exponential backoff with jitter (the webhooks' `backoff`),
//!   forever: a mirror never gives up, and `vouch_mirror_lag` shows how far behind it is.
//! - **Failures of one repository** (credentials or a token refused for it, 401 or 403, an
//!   unknown blob or manifest, a digest mismatch, a name or content the registry refuses,
//!   a push past its deadline) do not hold up the others: the repository goes into the
//!   registry's retry set ([`plan::RetrySet`]) with a backoff of its own, the cursor moves
//!   on, and the repository is pushed in its current state when due. The set holds at most
//!   [`plan::MAX_RETRYING`] repositories (past it the one waiting longest is dropped, with a
//!   log line) and lives in memory: a restart or the lease moving to another replica loses
//!   it, and the refresher's next re-sign of each repository is a change that mirrors it
//!   again. `vouch_mirror_retrying` counts the repositories waiting; the log names each.
//!   Publishes never wait for a mirror.
//! - **Deletions** leave the registry copy alone: removing it could not be authenticated
//!   to consumers anyway (whoever can push to the registry can remove or replace the tag,
//!   so a missing artifact proves nothing), and a copy nobody re-signs expires with its
//!   timestamp, after which TUF clients refuse it.
//! - **Re-signing**: the server re-signs timestamps when they are read; mirrored
//!   repositories may never be read from the server, so [`refresh`] re-signs their online
//!   roles when due, every `mirror.refresh_interval_seconds`, and the new timestamp reaches
//!   the registry as any other change does.
//!
//! What it is not: a registry client (`vouch_verifier::registry` is), nor a judge of trust
//! data: it copies exactly what the server serves.

mod plan;
mod push;
mod refresh;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vouch_tuf::clock::Clock;
use vouch_tuf::reference::Gun;
use vouch_verifier::registry::{Credentials, Login, Registries, RegistryOptions};

use crate::config::{ConfigError, MirrorConfig};
use crate::events::{read_store_behind, Hub, Read, PAGE};
use crate::service::Service;
use crate::store::{Store, StoreError, WebhookCursor};
use crate::webhooks::{backoff, jitter, read_private_file, save_cursor};
use plan::{Failure, Pattern, RetrySet};
use push::Outcome;

/// The prefix of a mirror's row among the webhook cursors; `:` keeps it apart from every
/// subscription name.
const CURSOR_PREFIX: &str = "mirror:";

/// Largest password file read.
const MAX_PASSWORD_FILE: u64 = 4096;

/// Checks the `[mirror]` section: patterns that can match and name their registry,
/// settings in range, one credentials entry per registry, each for a mirrored registry,
/// with a private, readable password file.
pub(crate) fn check_config(c: &MirrorConfig) -> Result<(), ConfigError> {
    Settings::from_config(c).map(|_| ()).map_err(ConfigError)
}

/// The `[mirror]` section, checked.
struct Settings {
    patterns: Vec<Pattern>,
    /// Destination registries, each once.
    registries: Vec<String>,
    options: RegistryOptions,
    timing: Timing,
    refresh_interval: Duration,
}

#[derive(Clone, Copy)]
struct Timing {
    backoff_initial: Duration,
    backoff_max: Duration,
    lease: Duration,
}

impl Settings {
    fn from_config(c: &MirrorConfig) -> Result<Self, String> {
        for (name, v) in [
            ("refresh_interval_seconds", c.refresh_interval_seconds),
            ("timeout_seconds", c.timeout_seconds),
            ("backoff_initial_ms", c.backoff_initial_ms),
            ("backoff_max_seconds", c.backoff_max_seconds),
            ("lease_seconds", c.lease_seconds),
        ] {
            if v == 0 {
                return Err(format!("mirror.{name} must be positive"));
            }
        }
        if c.timeout_seconds >= c.lease_seconds {
            return Err("mirror.timeout_seconds must be shorter than mirror.lease_seconds (a registry request must end before the lease it runs under)".into());
        }
        let patterns = c
            .repositories
            .iter()
            .map(|p| plan::pattern(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut registries: Vec<String> = Vec::new();
        for p in &patterns {
            if !registries.contains(&p.registry) {
                registries.push(p.registry.clone());
            }
        }
        let mut credentials = BTreeMap::new();
        for r in &c.registry {
            let what = format!("mirror.registry {:?}", r.host);
            let host = vouch_tuf::reference::canonical_registry(&r.host)
                .map_err(|e| format!("{what}: {e}"))?;
            if host != r.host {
                return Err(format!("{what}: write the registry as {host:?}"));
            }
            if !registries.contains(&host) {
                return Err(format!(
                    "{what}: no mirror.repositories pattern names this registry"
                ));
            }
            if r.username.is_empty() {
                return Err(format!("{what}: username must not be empty"));
            }
            let password = read_private_file(&r.password_file, "password_file", MAX_PASSWORD_FILE)
                .map_err(|e| format!("{what}: {e}"))?;
            let password =
                zeroize::Zeroizing::new(password.trim_end_matches(['\r', '\n']).to_owned());
            if password.is_empty() {
                return Err(format!("{what}: password_file is empty"));
            }
            if credentials
                .insert(host, Credentials::new(r.username.clone(), password))
                .is_some()
            {
                return Err(format!("{what}: this registry is listed twice"));
            }
        }
        let timeout = Duration::from_secs(c.timeout_seconds);
        let options = RegistryOptions::new(
            c.insecure_registries.clone(),
            Login::PerRegistry(credentials),
        )
        .and_then(|o| o.with_timeouts(timeout.min(Duration::from_secs(10)), timeout))
        .map_err(|e| format!("mirror: {e}"))?;
        Ok(Settings {
            patterns,
            registries,
            options,
            timing: Timing {
                backoff_initial: Duration::from_millis(c.backoff_initial_ms),
                backoff_max: Duration::from_secs(c.backoff_max_seconds),
                lease: Duration::from_secs(c.lease_seconds),
            },
            refresh_interval: Duration::from_secs(c.refresh_interval_seconds),
        })
    }
}

/// What this process counts of one registry's mirroring.
#[derive(Default)]
struct Counts {
    pushed: AtomicU64,
    unchanged: AtomicU64,
    refused: AtomicU64,
    older: AtomicU64,
    failed: AtomicU64,
    /// Repositories in the retry set now.
    retrying: AtomicU64,
    /// The cursor as last read or saved (-1: not yet).
    cursor: AtomicI64,
    /// When a batch last went through whole (unix seconds; 0: not yet).
    last_success: AtomicI64,
    /// Whether this process holds the registry's lease.
    held: AtomicBool,
}

/// One destination registry: its client and its counts.
struct Destination {
    registry: String,
    /// Made on first use, on the blocking pool (the client is a blocking one).
    client: Arc<Mutex<ClientSlot>>,
    counts: Counts,
}

/// The blocking registry client, dropped on a thread of its own: dropping it inside the
/// async runtime would stop its inner runtime where blocking is not allowed.
#[derive(Default)]
struct ClientSlot(Option<Registries>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            let _ = std::thread::spawn(move || drop(c));
        }
    }
}

/// The mirror: its registries, and the settings it runs with.
pub(crate) struct Mirror {
    settings: Settings,
    destinations: Vec<Destination>,
    /// This process's name in the leases it takes.
    owner: String,
    clock: Arc<dyn Clock>,
}

impl Mirror {
    /// The mirror `c` configures (no destination when mirroring is off).
    pub(crate) fn new(c: &MirrorConfig, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        let settings = Settings::from_config(c).map_err(ConfigError)?;
        let destinations = settings
            .registries
            .iter()
            .map(|r| Destination {
                registry: r.clone(),
                client: Arc::default(),
                counts: Counts {
                    cursor: AtomicI64::new(-1),
                    ..Counts::default()
                },
            })
            .collect();
        let mut id = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id)
            .map_err(|_| ConfigError("no randomness for the mirror lease owner".into()))?;
        Ok(Mirror {
            settings,
            destinations,
            owner: format!("{}-{}", std::process::id(), vouch_tuf::hex::encode(id)),
            clock,
        })
    }

    /// Whether any repository is mirrored.
    pub(crate) fn enabled(&self) -> bool {
        !self.destinations.is_empty()
    }

    /// Starts one worker per destination registry and the refresher; they run until
    /// aborted. Nothing when mirroring is off.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        service: Arc<Service>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        if !self.enabled() {
            return Vec::new();
        }
        // Another part of the process may have installed a provider already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut tasks: Vec<_> = (0..self.destinations.len())
            .map(|i| {
                let (m, store, hub) = (self.clone(), store.clone(), hub.clone());
                tokio::spawn(async move { m.run(i, store, hub).await })
            })
            .collect();
        let (m, every) = (self.clone(), self.settings.refresh_interval);
        tasks.push(tokio::spawn(async move {
            refresh::run(
                store,
                hub,
                service,
                move |gun: &str| plan::mirrored(gun, &m.settings.patterns),
                every,
            )
            .await
        }));
        tasks
    }

    /// Gives up the leases this process holds (at a clean shutdown), so another replica
    /// (or this server started again) mirrors at once.
    pub(crate) async fn release(&self, store: &Arc<dyn Store>) {
        for d in &self.destinations {
            if !d.counts.held.load(Ordering::Relaxed) {
                continue;
            }
            let (store, name, owner) =
                (store.clone(), cursor_name(&d.registry), self.owner.clone());
            let now = self.clock.now();
            if let Err(e) = blocking(move || store.claim_webhook(&name, &owner, 0, now, now)).await
            {
                tracing::warn!(registry = %d.registry, error = %e, "mirror: cannot give up the lease; it runs out by itself");
            }
        }
    }

    /// Registry `i`'s loop.
    async fn run(self: Arc<Self>, i: usize, store: Arc<dyn Store>, hub: Arc<Hub>) {
        let d = &self.destinations[i];
        let timing = self.settings.timing;
        let idle = timing.lease / 3;
        let mut heads = hub.subscribe();
        let mut failing_store = false;
        let mut retry = RetrySet::new(plan::MAX_RETRYING);
        loop {
            heads.borrow_and_update();
            let state = match self.claim(&store, d).await {
                Ok(Some(state)) => {
                    failing_store = false;
                    state
                }
                Ok(None) => {
                    self.forget(d, &mut retry);
                    tokio::time::sleep(idle).await;
                    continue;
                }
                Err(e) => {
                    if !failing_store {
                        tracing::warn!(registry = %d.registry, error = %e, "mirror: cannot read its state; retrying");
                        failing_store = true;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let claimed_at = Instant::now();
            let now = self.clock.now();
            if let Some(at) = state.next_attempt_at.filter(|at| *at > now) {
                let wait = Duration::from_secs((at.unix() - now.unix()) as u64);
                tokio::time::sleep(wait.min(idle)).await;
                continue;
            }
            // Repositories whose own push failed are retried when due, in their current state;
            // then the changefeed goes on, so retries never starve it.
            let due = retry.due(Instant::now(), PAGE);
            if !due.is_empty() {
                match self
                    .mirror_batch(&store, d, &due, claimed_at, &mut retry)
                    .await
                {
                    Batch::Done => {}
                    Batch::LeaseLost => {
                        self.forget(d, &mut retry);
                        continue;
                    }
                    Batch::Failed(why) => {
                        self.back_off(&store, d, state, why).await;
                        continue;
                    }
                }
            }
            let after = state.cursor.max(0) as u64;
            let read = match hub.read(after, None, PAGE) {
                Read::Entries(entries, pos) => Ok((entries, pos)),
                Read::Behind => read_store_behind(store.clone(), &hub, None, after).await,
            };
            let (entries, pos) = match read {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(registry = %d.registry, error = %e, "mirror: cannot read the changefeed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let guns = plan::collapse(
                entries.iter().map(|e| e.event.gun.as_str()),
                &d.registry,
                &self.settings.patterns,
            );
            if guns.is_empty() {
                if pos > after {
                    self.save(&store, d, self.succeeded(state, pos)).await;
                } else {
                    let wait = retry
                        .next_due()
                        .map_or(idle, |at| at.saturating_duration_since(Instant::now()))
                        .min(idle);
                    tokio::select! {
                        _ = heads.changed() => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                continue;
            }
            match self
                .mirror_batch(&store, d, &guns, claimed_at, &mut retry)
                .await
            {
                Batch::Done => {
                    self.save(&store, d, self.succeeded(state, pos)).await;
                }
                Batch::LeaseLost => self.forget(d, &mut retry),
                Batch::Failed(why) => self.back_off(&store, d, state, why).await,
            }
        }
    }

    /// The registry as a whole failed: the cursor stays, and the worker waits an
    /// exponential backoff with jitter before trying again.
    async fn back_off(
        &self,
        store: &Arc<dyn Store>,
        d: &Destination,
        state: WebhookCursor,
        why: String,
    ) {
        let timing = self.settings.timing;
        let attempts = state.attempts.saturating_add(1);
        let wait = backoff(
            attempts,
            timing.backoff_initial,
            timing.backoff_max,
            jitter(),
        );
        tracing::warn!(registry = %d.registry, attempts, error = %why, retry_in_ms = wait.as_millis() as u64, "mirror: the registry failed; retrying");
        let saved = WebhookCursor {
            attempts,
            next_attempt_at: Some(self.clock.now().add_seconds(wait.as_secs() as i64)),
            last_error: Some(why),
            ..state
        };
        let save = self.save(store, d, saved);
        let ((), ()) = tokio::join!(save, tokio::time::sleep(wait));
    }

    /// The lease is no longer this process's: the retry set goes with it (the replica that
    /// holds the lease now mirrors each repository again at its next change or re-sign).
    fn forget(&self, d: &Destination, retry: &mut RetrySet<Instant>) {
        if retry.len() > 0 {
            tracing::info!(registry = %d.registry, repositories = retry.len(), "mirror: lease lost; forgetting the repositories waiting to be retried");
            retry.clear();
        }
        d.counts.retrying.store(0, Ordering::Relaxed);
    }

    /// The state after a batch up to `pos` went through.
    fn succeeded(&self, state: WebhookCursor, pos: u64) -> WebhookCursor {
        WebhookCursor {
            cursor: pos as i64,
            attempts: 0,
            next_attempt_at: None,
            last_error: None,
            last_delivered_at: Some(self.clock.now()),
            ..state
        }
    }

    /// Mirrors each of `guns` (of `d`'s registry), renewing the lease as it goes; a
    /// repository whose own push fails goes into `retry`, one that goes through leaves it.
    async fn mirror_batch(
        &self,
        store: &Arc<dyn Store>,
        d: &Destination,
        guns: &[String],
        mut claimed_at: Instant,
        retry: &mut RetrySet<Instant>,
    ) -> Batch {
        let timing = self.settings.timing;
        for g in guns {
            // Each push runs under a lease with at least a whole request's time left.
            if claimed_at.elapsed() > self.settings.timing.lease / 3 {
                match self.claim(store, d).await {
                    Ok(Some(_)) => claimed_at = Instant::now(),
                    _ => return Batch::LeaseLost,
                }
            }
            let Ok(gun) = Gun::new(g) else { continue };
            let started = Instant::now();
            // No request starts past half a lease; the manifest goes under a lease renewed for it.
            let deadline = started + timing.lease / 2;
            let result = {
                let (store, gun) = (store.clone(), gun.clone());
                let slot = d.client.clone();
                let options = self.settings.options.clone();
                let (name, owner) = (cursor_name(&d.registry), self.owner.clone());
                let (clock, lease_secs) = (self.clock.clone(), timing.lease.as_secs() as i64);
                tokio::task::spawn_blocking(move || {
                    let lease = || {
                        let now = clock.now();
                        match store.claim_webhook(
                            &name,
                            &owner,
                            0,
                            now,
                            now.add_seconds(lease_secs),
                        ) {
                            Ok(Some(_)) => Ok(()),
                            Ok(None) => Err(Failure::LeaseLost),
                            Err(e) => {
                                Err(Failure::Registry(format!("renewing the mirror lease: {e}")))
                            }
                        }
                    };
                    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
                    let client = match &mut slot.0 {
                        Some(c) => c,
                        empty => empty.insert(Registries::new(options).map_err(|e| {
                            Failure::Registry(format!("building the registry client: {e}"))
                        })?),
                    };
                    push::mirror(store.as_ref(), client, &gun, deadline, &lease)
                })
                .await
                .unwrap_or_else(|e| Err(Failure::Registry(format!("mirror task failed: {e}"))))
            };
            let c = &d.counts;
            let ms = started.elapsed().as_millis() as u64;
            if result.is_ok() {
                retry.done(g);
            }
            match result {
                Ok(Outcome::Pushed { digest, previous }) => {
                    c.pushed.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%gun, registry = %d.registry, %digest, previous = previous.as_ref().map_or("", |p| p.as_str()), ms, "mirror: pushed");
                }
                Ok(Outcome::Unchanged(digest)) => {
                    c.unchanged.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%gun, registry = %d.registry, %digest, "mirror: unchanged");
                }
                Ok(Outcome::Refused(why)) => {
                    c.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%gun, registry = %d.registry, reason = %why, "mirror: not overwriting the trust tag; this repository is not mirrored until it holds nothing or its trust artifact");
                }
                Ok(Outcome::Older { current, new }) => {
                    c.older.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%gun, registry = %d.registry, held = current, server = new, "mirror: the trust tag holds a newer timestamp than this server's; not rolling it back");
                }
                Ok(Outcome::Absent) => {
                    tracing::debug!(%gun, registry = %d.registry, "mirror: no trust data (deleted); the registry copy is left to expire");
                }
                Err(Failure::Repository(why)) => {
                    c.failed.fetch_add(1, Ordering::Relaxed);
                    let now = Instant::now();
                    let (attempts, dropped) = retry.failed(g, now, |attempts| {
                        now + backoff(
                            attempts,
                            timing.backoff_initial,
                            timing.backoff_max,
                            jitter(),
                        )
                    });
                    tracing::warn!(%gun, registry = %d.registry, attempts, error = %why, "mirror: this repository's push failed; it waits in the retry set, and the registry's other repositories go on");
                    if let Some(dropped) = dropped {
                        tracing::warn!(gun = %dropped, registry = %d.registry, "mirror: the retry set is full; dropping the repository waiting longest (mirrored again at its next change or re-sign)");
                    }
                }
                Err(Failure::Registry(why)) => {
                    c.failed.fetch_add(1, Ordering::Relaxed);
                    return Batch::Failed(format!("{gun}: {why}"));
                }
                Err(Failure::LeaseLost) => return Batch::LeaseLost,
            }
            c.retrying.store(retry.len() as u64, Ordering::Relaxed);
        }
        Batch::Done
    }

    /// Takes or renews `d`'s lease; a registry new to the store starts at the beginning.
    async fn claim(
        &self,
        store: &Arc<dyn Store>,
        d: &Destination,
    ) -> Result<Option<WebhookCursor>, StoreError> {
        let (store, name, owner) = (store.clone(), cursor_name(&d.registry), self.owner.clone());
        let now = self.clock.now();
        let until = now.add_seconds(self.settings.timing.lease.as_secs() as i64);
        let claimed = blocking(move || store.claim_webhook(&name, &owner, 0, now, until)).await;
        match &claimed {
            Ok(Some(s)) => {
                d.counts.held.store(true, Ordering::Relaxed);
                d.counts.cursor.store(s.cursor, Ordering::Relaxed);
            }
            Ok(None) => d.counts.held.store(false, Ordering::Relaxed),
            Err(_) => {}
        }
        claimed
    }

    /// Saves `state` under this process's lease.
    async fn save(&self, store: &Arc<dyn Store>, d: &Destination, state: WebhookCursor) {
        d.counts.cursor.store(state.cursor, Ordering::Relaxed);
        if state.attempts == 0 {
            if let Some(t) = state.last_delivered_at {
                d.counts.last_success.store(t.unix(), Ordering::Relaxed);
            }
        }
        let lease = self.settings.timing.lease;
        save_cursor(store, &self.owner, &state, lease, "mirror", &d.registry).await;
    }

    /// The `/metrics` lines of the mirror, with `head` the newest changefeed id.
    pub(crate) fn render_metrics(&self, head: u64, out: &mut String) {
        use std::fmt::Write as _;
        if !self.enabled() {
            return;
        }
        let _ = writeln!(
            out,
            "# HELP vouch_mirror_pushes_total Repositories this process mirrored into a registry, by outcome: pushed (a new trust artifact), unchanged (the registry had it), refused (the trust tag holds something else: left alone), older (the trust tag holds a newer timestamp: not rolled back), failed (the registry or the repository's push failed: retried).\n\
             # TYPE vouch_mirror_pushes_total counter"
        );
        for d in &self.destinations {
            let c = &d.counts;
            for (result, n) in [
                ("pushed", &c.pushed),
                ("unchanged", &c.unchanged),
                ("refused", &c.refused),
                ("older", &c.older),
                ("failed", &c.failed),
            ] {
                let _ = writeln!(
                    out,
                    "vouch_mirror_pushes_total{{registry=\"{}\",result=\"{result}\"}} {}",
                    d.registry,
                    n.load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP vouch_mirror_lag Changefeed ids between the newest entry and a registry's mirror cursor, as last seen by this process.\n\
             # TYPE vouch_mirror_lag gauge\n\
             # HELP vouch_mirror_last_success_timestamp_seconds When this process last mirrored a batch of changes into a registry whole (0: not yet).\n\
             # TYPE vouch_mirror_last_success_timestamp_seconds gauge\n\
             # HELP vouch_mirror_retrying Repositories of a registry waiting to be retried after a failure of their own (the log names each).\n\
             # TYPE vouch_mirror_retrying gauge"
        );
        for d in &self.destinations {
            let cursor = d.counts.cursor.load(Ordering::Relaxed);
            if cursor >= 0 {
                let _ = writeln!(
                    out,
                    "vouch_mirror_lag{{registry=\"{}\"}} {}",
                    d.registry,
                    head.saturating_sub(cursor as u64)
                );
            }
            let _ = writeln!(
                out,
                "vouch_mirror_last_success_timestamp_seconds{{registry=\"{}\"}} {}",
                d.registry,
                d.counts.last_success.load(Ordering::Relaxed)
            );
            let _ = writeln!(
                out,
                "vouch_mirror_retrying{{registry=\"{}\"}} {}",
                d.registry,
                d.counts.retrying.load(Ordering::Relaxed)
            );
        }
    }
}

/// How a batch went.
enum Batch {
    /// Every repository was mirrored, refused, left alone or put in the retry set: the
    /// cursor moves on.
    Done,
    /// Another replica took the lease: it redoes the batch.
    LeaseLost,
    /// The registry as a whole failed: the cursor stays.
    Failed(String),
}

/// A mirror's row among the webhook cursors.
fn cursor_name(registry: &str) -> String {
    format!("{CURSOR_PREFIX}{registry}")
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("blocking task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mirrors_cursor_name_is_never_a_subscription_name() {
        let name = cursor_name("registry.example.com:5000");
        assert_eq!(name, "mirror:registry.example.com:5000");
        assert!(!vouch_tuf::api::path::is_subscription_name(&name));
        assert!(!vouch_tuf::api::path::is_subscription_name(&cursor_name(
            "r.example.com"
        )));
    }
}
