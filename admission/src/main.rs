//! `vouch-admission`: serves the admission webhook (see the crate documentation and
//! `docs/admission.md`), and checks policy files offline (`check-policy FILE`).
//!
//! Exit status: 0 on a clean shutdown or a valid policy; 1 when the webhook cannot start;
//! 2 for a policy `check-policy` refuses (and for command-line errors).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use vouch_admission::decide::Webhook;
use vouch_admission::http;
use vouch_admission::policy::Policy;
use vouch_admission::reload::{PolicyWatch, Trigger};
use vouch_admission::trust::TrustConfig;
use vouch_serve::tls::{server_config, ReloadingCert};
use vouch_verifier::clock::SystemClock;

/// Kubernetes admission webhook verifying container images against vouch trust data.
#[derive(Debug, Parser)]
#[command(
    name = "vouch-admission",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Policy file (TOML); loaded again when it or a root file it names changes, and on
    /// SIGHUP.
    #[arg(long, env = "VOUCH_ADMISSION_POLICY", required = true)]
    policy: Option<PathBuf>,
    /// How often to look for changes to the policy file and the root files it names, in
    /// seconds (0: only on SIGHUP).
    #[arg(long, default_value_t = 5, env = "VOUCH_ADMISSION_POLICY_CHECK_SECS")]
    policy_check_secs: u64,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8443", env = "VOUCH_ADMISSION_LISTEN")]
    listen: SocketAddr,
    /// TLS certificate chain (PEM); reloaded when the file changes.
    #[arg(long, env = "VOUCH_ADMISSION_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); reloaded when the file changes.
    #[arg(long, env = "VOUCH_ADMISSION_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP without TLS (the API server refuses this; for local testing only).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    insecure_http: bool,
    /// Directory for the trusted-metadata cache.
    #[arg(
        long,
        default_value = "vouch-admission-cache",
        env = "VOUCH_ADMISSION_CACHE_DIR"
    )]
    cache_dir: PathBuf,
    /// Drop a repository's trust state from memory when no request asked for it for this
    /// many seconds (default: max(10 × the policy's refresh interval, 600)).
    #[arg(long, env = "VOUCH_ADMISSION_REPOSITORY_IDLE_SECS")]
    repository_idle_secs: Option<u64>,
    /// Most repositories kept in memory; beyond it the least recently used are dropped.
    #[arg(
        long,
        default_value_t = vouch_admission::trust::DEFAULT_MAX_REPOSITORIES,
        env = "VOUCH_ADMISSION_MAX_REPOSITORIES"
    )]
    max_repositories: usize,
    /// Most distinct repositories one review may need verified; a pod naming more is
    /// denied before any trust data is fetched.
    #[arg(
        long,
        default_value_t = vouch_admission::trust::DEFAULT_MAX_REPOSITORIES_PER_REVIEW,
        env = "VOUCH_ADMISSION_MAX_REPOSITORIES_PER_REVIEW"
    )]
    max_repositories_per_review: usize,
    /// Most distinct images one review may name; a pod naming more is denied before any
    /// of them is looked at.
    #[arg(
        long,
        default_value_t = vouch_admission::trust::DEFAULT_MAX_IMAGES_PER_REVIEW,
        env = "VOUCH_ADMISSION_MAX_IMAGES_PER_REVIEW"
    )]
    max_images_per_review: usize,
    /// Most requests that wait for one repository's refresh when it has no usable trusted
    /// state yet; beyond it they are denied at once.
    #[arg(
        long,
        default_value_t = vouch_admission::trust::DEFAULT_MAX_WAITERS,
        env = "VOUCH_ADMISSION_MAX_WAITERS_PER_REPOSITORY"
    )]
    max_waiters_per_repository: usize,
    /// Log format.
    #[arg(long, default_value = "json", value_parser = ["json", "text"])]
    log_format: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a policy file offline: every setting, rule and `[[server]]` table, and that
    /// every root file can be read and holds a root signed by its own keys. Prints a
    /// summary and exits 0 when the policy is valid; prints the error and exits 2 when not.
    CheckPolicy {
        /// The policy file.
        file: PathBuf,
    },
}

/// How often, at most, a TLS handshake checks the certificate and key files for changes.
const CERT_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Like vouch's other binaries, the webhook uses mimalloc: each decision parses and writes
/// JSON, and the system allocator's costs showed up in every profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::parse();
    if let Some(Command::CheckPolicy { file }) = &args.command {
        std::process::exit(check_policy(file));
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("VOUCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    if let Err(e) = run(args) {
        eprintln!("vouch-admission: {e:#}");
        std::process::exit(1);
    }
}

/// `check-policy FILE`: the exit status.
fn check_policy(file: &std::path::Path) -> i32 {
    match Policy::load(file) {
        Ok(policy) => {
            println!("{}: valid", file.display());
            print!("{}", policy.summary());
            for w in policy.warnings() {
                eprintln!("vouch-admission: warning: {w}");
            }
            0
        }
        Err(e) => {
            eprintln!("vouch-admission: {}: {e}", file.display());
            2
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let path = args
        .policy
        .clone()
        .context("--policy is required to serve")?;
    let (watch, policy) =
        PolicyWatch::load(&path).with_context(|| format!("policy {}", path.display()))?;
    for (pattern, why) in policy.unavailable_roots() {
        tracing::warn!(
            rule = pattern,
            error = why,
            "not ready until the root file can be read"
        );
    }
    for w in policy.warnings() {
        tracing::warn!(warning = %w, "policy");
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(
            ReloadingCert::new(c, k, CERT_CHECK_INTERVAL).context("loading the TLS certificate")?,
        ),
        _ if args.insecure_http => None,
        _ => anyhow::bail!(
            "--tls-cert and --tls-key are required (or --insecure-http for local tests)"
        ),
    };
    let mut config = TrustConfig::new(
        args.cache_dir.clone(),
        policy.refresh_interval,
        policy.deadline,
        Arc::new(SystemClock),
    );
    if let Some(secs) = args.repository_idle_secs {
        config.idle_expiry = Duration::from_secs(secs);
    }
    config.max_repositories = args.max_repositories.max(1);
    config.max_repositories_per_review = args.max_repositories_per_review.max(1);
    config.max_images_per_review = args.max_images_per_review.max(1);
    config.max_waiters = args.max_waiters_per_repository;
    let webhook = Arc::new(Webhook::new(policy, config));
    let discarded = webhook.trust().discard_untrusted_dirs();
    if discarded > 0 {
        tracing::info!(
            discarded,
            "cache directories holding only a pinned root removed"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let server_config = match tls {
            Some(t) => Some(Arc::new(
                server_config(Arc::new(t)).context("TLS configuration")?,
            )),
            None => None,
        };
        let scheme = if server_config.is_some() { "https" } else { "http" };
        let followed = webhook.follow_events(tokio::runtime::Handle::current());
        if !followed.is_empty() {
            tracing::info!(servers = ?followed, "following trust-change events");
        }
        watch_policy(watch, webhook.clone(), args.policy_check_secs)?;
        println!("vouch-admission listening on {scheme}://{addr}");
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => None } } => {}
            }
            tracing::info!("shutting down");
        };
        http::serve(listener, http::app(webhook), server_config, shutdown).await;
        Ok(())
    })
}

/// Loads the policy again when its files change (looked at every `every_secs`, never when
/// 0) and on SIGHUP, one check at a time. The SIGHUP handler is installed before this
/// returns. Needs the runtime.
fn watch_policy(watch: PolicyWatch, webhook: Arc<Webhook>, every_secs: u64) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut tick = (every_secs > 0).then(|| {
        let mut t = tokio::time::interval(Duration::from_secs(every_secs));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let watch = Arc::new(watch);
    tokio::spawn(async move {
        loop {
            let trigger = tokio::select! {
                Some(()) = hup.recv() => Trigger::Signal,
                Some(_) = async {
                    match tick.as_mut() {
                        Some(t) => Some(t.tick().await),
                        None => std::future::pending().await,
                    }
                } => Trigger::Poll,
                else => break,
            };
            if trigger == Trigger::Signal {
                tracing::info!(file = %watch.path().display(), "SIGHUP: loading the policy again");
            }
            let (watch, webhook) = (watch.clone(), webhook.clone());
            let _ = tokio::task::spawn_blocking(move || watch.check(&webhook, trigger)).await;
        }
    });
    Ok(())
}
