//! `vouch-server`: run the trust-metadata service.
//!
//! With no arguments it listens on 127.0.0.1:4443 and keeps everything under `./vouch-data/`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use vouch_server::config::Config;

/// The vouch trust-metadata server.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address to listen on [default: 127.0.0.1:4443].
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Directory for the database, keys and admin token [default: ./vouch-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file (see docs/server.md); VOUCH_* variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn load_config(args: &Args) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.apply_env(std::env::vars())?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    Ok(config)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

async fn run(config: Config) -> anyhow::Result<()> {
    let prepared = vouch_server::build_state(&config, None)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "listening on a non-loopback address without TLS: put a TLS terminator in front");
    }
    println!("vouch-server listening on http://{addr}");
    println!("  data directory: {}", config.data_dir.display());
    if let Some(t) = &prepared.admin_token_file {
        println!(
            "  admin token:    {} (use as: Authorization: Bearer $(cat {}))",
            t.display(),
            t.display()
        );
    }
    vouch_server::serve(listener, prepared.state, shutdown_signal()).await
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vouch-server: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vouch-server: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vouch-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
