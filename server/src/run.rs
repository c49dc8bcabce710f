//! Assembling a server from its configuration, and serving until a shutdown signal.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ring::rand::{SecureRandom, SystemRandom};

use crate::auth::Authorizer;
use crate::config::{write_private_file, Config, ConfigError, Timeouts};
use crate::http::AppState;
use crate::keys::{KeyError, OnlineKeys};
use crate::service::{system_clock, Clock, Service};
use crate::store::StoreError;
use crate::validate::Lifetimes;

/// A state ready to serve, and what the operator should be told about it.
pub struct Prepared {
    /// The handlers' state.
    pub state: AppState,
    /// Where the admin token is, when one was generated or already exists.
    pub admin_token_file: Option<std::path::PathBuf>,
}

/// Makes sure an admin token exists under the data directory: the token itself in
/// `admin.token` (for the operator) and its SHA-256 in `admin.token.sha256` (what the server
/// checks), both mode 0600. Returns the hash.
pub fn ensure_admin_token(config: &Config) -> anyhow::Result<String> {
    let hash_path = config.admin_token_hash_path();
    if !hash_path.exists() {
        let mut raw = [0u8; 32];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| anyhow::anyhow!("no randomness for the admin token"))?;
        let token = format!("vouch_{}", vouch_tuf::hex::encode(raw));
        let hash = vouch_tuf::hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            token.as_bytes(),
        ));
        let token_path = config.admin_token_path();
        if token_path.exists() {
            std::fs::remove_file(&token_path)
                .with_context(|| format!("replacing {}", token_path.display()))?;
        }
        write_private_file(&token_path, format!("{token}\n").as_bytes())
            .with_context(|| format!("writing {}", token_path.display()))?;
        write_private_file(&hash_path, format!("{hash}\n").as_bytes())
            .with_context(|| format!("writing {}", hash_path.display()))?;
    }
    let hash = std::fs::read_to_string(&hash_path)
        .with_context(|| format!("reading {}", hash_path.display()))?;
    let hash = hash.trim().to_owned();
    anyhow::ensure!(
        vouch_tuf::hex::is_lower_hex(&hash, 64),
        "{} must hold a lowercase hex SHA-256",
        hash_path.display()
    );
    Ok(hash)
}

fn create_data_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
    }
    Ok(())
}

/// Opens storage and keys and builds the handlers' state from `config`.
pub fn build_state(config: &Config, clock: Option<Clock>) -> anyhow::Result<Prepared> {
    config.check()?;
    create_data_dir(&config.data_dir)?;
    let admin_hash = ensure_admin_token(config)?;
    let backend = config.backend()?;
    // A database that refuses us (bad credentials, a newer schema) will not change its mind
    // on a retry: a configuration error. An unreachable one may come up: a plain failure.
    let store = backend.open().map_err(|e| match e {
        StoreError::Unavailable(_) => {
            anyhow::anyhow!("opening the store {}: {e}", backend.describe())
        }
        e => ConfigError(format!("opening the store {}: {e}", backend.describe())).into(),
    })?;
    let kek =
        crate::keys::load_kek_for(store.as_ref(), &config.kek_path()).map_err(|e| match e {
            KeyError::Kek { .. } => anyhow::Error::from(ConfigError(e.to_string())),
            e => e.into(),
        })?;
    let keys = OnlineKeys::new(store.clone(), kek)
        .with_creation_limit(config.capacity.new_repositories_per_minute);
    let lifetimes = Lifetimes {
        timestamp: config.lifetimes.timestamp_seconds,
        snapshot: config.lifetimes.snapshot_seconds,
    };
    let clock = clock.unwrap_or_else(system_clock);
    let clock_for_webhooks = clock.clone();
    let mirror = crate::mirror::Mirror::new(&config.mirror, clock.clone())?;
    let service = Service::new(store, keys, lifetimes, config.limits.clone(), clock)
        .with_proposals(config.proposals);
    let auth = Authorizer::new(&config.auth, Some(admin_hash)).map_err(ConfigError)?;
    let webhooks = crate::webhooks::Webhooks::new(
        &config.webhooks,
        &config.data_dir.join(crate::webhooks::DEFAULT_KEY_FILE),
        matches!(backend, crate::config::Backend::Postgres(..)),
        clock_for_webhooks,
    )?;
    Ok(Prepared {
        state: AppState::new(service, auth, config, webhooks, mirror).map_err(|e| {
            anyhow::anyhow!("reading the changefeed of {}: {e}", backend.describe())
        })?,
        admin_token_file: Some(config.admin_token_path()),
    })
}

/// How connections are served: TLS or plain, and the connection-level time limits.
#[derive(Clone, Default)]
pub struct ServeOptions {
    /// Serve HTTPS with this configuration (plain HTTP when `None`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Header-read, TLS-handshake and response-write timeouts.
    pub timeouts: Timeouts,
    /// How often to read the changefeed for writes by other processes sharing the store
    /// (`storage.follow_interval_ms`), dropping what this process cached of the repositories
    /// they changed and passing their entries to the event streams; `None` when no other
    /// process writes to the store (the changefeed is then read after each write of this
    /// process, and once a second).
    pub follow_changes: Option<Duration>,
}

/// Serves `state` on `listener` over plain HTTP with default timeouts, until `shutdown`
/// completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with(listener, state, ServeOptions::default(), shutdown).await
}

/// How often the changefeed is read when no other process writes to the store (this
/// process's own writes wake the follower at once; this is a backstop).
const STANDALONE_POLL: Duration = Duration::from_secs(1);

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `state` on `listener` with `options` until `shutdown` completes, then lets
/// in-flight requests finish (for at most 30 seconds).
///
/// Each connection is HTTP/1.1 with keep-alive; a client that does not send a complete
/// request head within `timeouts.header_read_seconds` (or, with TLS, does not finish the
/// handshake within `timeouts.tls_handshake_seconds`) is disconnected, so slow clients cannot
/// hold connections open for free; a head over [`vouch_serve::MAX_HEAD_BYTES`] gets 431; a
/// client that stops taking a response has `timeouts.response_write_seconds` to take the
/// rest, else it is disconnected. At most `capacity.max_connections` of `state`'s
/// configuration are open at once: a connection accepted past that is closed at once and
/// counted in `vouch_overload_rejections_total{reason="connections"}`. The accept loop is
/// [`vouch_serve::serve_with_limits`]. Expired entries of the read cache are released once a
/// second while it serves.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use tower::ServiceExt as _;

    // Expired cache entries are released even when nothing is read any more.
    let sweeper = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(AppState::SWEEP_INTERVAL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                state.sweep_caches();
            }
        })
    };
    // One follower of the changefeed: it feeds the event streams, and drops what this
    // process cached of repositories that other processes changed.
    let follower = {
        let forget = options.follow_changes.is_some().then(|| state.clone());
        tokio::spawn(crate::events::follow(
            state.store(),
            state.events().clone(),
            options.follow_changes.unwrap_or(STANDALONE_POLL),
            move |gun| {
                if let Some(state) = &forget {
                    state.forget_repository(gun);
                }
            },
        ))
    };
    let deliveries = state
        .webhooks()
        .spawn(state.store(), state.events().clone());
    let mirroring = state
        .mirror()
        .spawn(state.store(), state.events().clone(), state.service());
    let (webhooks, mirror, store) = (
        state.webhooks().clone(),
        state.mirror().clone(),
        state.store(),
    );
    // Streams are endless responses: they end when the server stops accepting, so that
    // shutdown does not wait for them.
    let shutdown = {
        let hub = state.events().clone();
        async move {
            shutdown.await;
            hub.close();
        }
    };
    let refused = state.metrics().clone();
    let limits = vouch_serve::Limits {
        write_timeout: Duration::from_secs(options.timeouts.response_write_seconds),
        max_connections: state.max_connections(),
        on_refused: Some(Arc::new(move || refused.overloaded("connections"))),
    };
    let app = crate::http::app(state.clone());
    // Each request first tries the cached-read fast path (answered on the spot, no router),
    // then goes through the router and its middleware.
    let service =
        hyper::service::service_fn(move |req: axum::http::Request<hyper::body::Incoming>| {
            let outcome = match crate::http::serve_cached(&state, &req) {
                Some(resp) => Ok(resp),
                None => Err((app.clone(), req)),
            };
            async move {
                match outcome {
                    Ok(resp) => Ok(resp),
                    Err((app, req)) => app.oneshot(req.map(axum::body::Body::new)).await,
                }
            }
        });
    let options = vouch_serve::Options {
        tls: options.tls,
        header_read_timeout: Duration::from_secs(options.timeouts.header_read_seconds),
        tls_handshake_timeout: Duration::from_secs(options.timeouts.tls_handshake_seconds),
        shutdown_grace: SHUTDOWN_GRACE,
    };
    vouch_serve::serve_with_limits(listener, service, options, limits, shutdown).await;
    sweeper.abort();
    follower.abort();
    for d in deliveries.iter().chain(&mirroring) {
        d.abort();
    }
    for d in deliveries.into_iter().chain(mirroring) {
        let _ = d.await;
    }
    webhooks.release(&store).await;
    mirror.release(&store).await;
    Ok(())
}
