//! `vouch-admission`: serves the admission webhook (see the crate documentation and
//! `docs/admission.md`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use vouch_admission::decide::Webhook;
use vouch_admission::http;
use vouch_admission::policy::Policy;
use vouch_admission::trust::TrustConfig;
use vouch_serve::tls::{server_config, ReloadingCert};
use vouch_verifier::clock::SystemClock;

/// Kubernetes admission webhook verifying container images against vouch trust data.
#[derive(Debug, Parser)]
#[command(name = "vouch-admission", version)]
struct Args {
    /// Policy file (TOML).
    #[arg(long, env = "VOUCH_ADMISSION_POLICY")]
    policy: PathBuf,
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

/// How often, at most, a TLS handshake checks the certificate and key files for changes.
const CERT_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Like vouch's other binaries, the webhook uses mimalloc: each decision parses and writes
/// JSON, and the system allocator's costs showed up in every profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::parse();
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

fn run(args: Args) -> anyhow::Result<()> {
    let policy = Policy::load(&args.policy)?;
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
