//! `vouch-server`: run the trust-metadata service.
//!
//! With no arguments it listens on 127.0.0.1:4443 and keeps everything under `./vouch-data/`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use vouch_server::store::is_postgres_url;
use vouch_server::{Config, ConfigError, LogFormat};

/// The vouch trust-metadata server.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address to listen on [default: 127.0.0.1:4443].
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Directory for the database, keys and admin token [default: ./vouch-data].
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Store: postgres://user:password@host:port/database?sslmode=verify-full&sslrootcert=FILE
    /// or sqlite:PATH [default: SQLite in the data directory; env: VOUCH_DATABASE_URL].
    #[arg(long, value_name = "URL", global = true)]
    database_url: Option<String>,
    /// The key-encryption key file; every replica of one database needs the same one
    /// [default: DATA_DIR/kek; env: VOUCH_KEK_FILE].
    #[arg(long, value_name = "FILE", global = true)]
    kek_file: Option<PathBuf>,
    /// TOML configuration file (see docs/operations.md); VOUCH_* variables override it.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Copy the database to a new file while the server may be running (consistent snapshot,
    /// integrity-checked). Back up the key-encryption key file separately.
    Backup {
        /// The file to write (must not exist).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Replace the key-encryption key: re-seal every online key under a new random KEK and
    /// write it to the KEK file. Stop the server first; back up the new KEK afterwards. An
    /// interrupted run is finished by running it again.
    RotateKek,
    /// Copy everything one store holds (every version, the changefeed, the online keys) into
    /// an empty one, then read both back and compare. Stop the servers writing to the source
    /// first. The key-encryption key is not in either store: keep using the same one.
    MigrateStore {
        /// The store to copy: sqlite:PATH or postgres://...
        #[arg(long, value_name = "URL")]
        from: String,
        /// The empty store to copy into: postgres://... or sqlite:PATH
        #[arg(long, value_name = "URL")]
        to: String,
    },
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
    if let Some(u) = &args.database_url {
        config.storage.url = Some(u.clone());
    }
    if let Some(k) = &args.kek_file {
        config.keys.kek_file = Some(k.clone());
    }
    config.check()?;
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
    // Opening the store may block (connecting to PostgreSQL, migrating its schema).
    let prepared = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || vouch_server::build_state(&config, None))
            .await
            .context("opening the store")??
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let tls = match &config.tls {
        Some(t) => {
            let resolver = vouch_serve::tls::ReloadingCert::new(
                &t.cert_file,
                &t.key_file,
                std::time::Duration::from_secs(t.reload_seconds),
            )
            .map_err(|e| ConfigError(format!("tls: {e}")))?;
            Some(std::sync::Arc::new(
                vouch_serve::tls::server_config(std::sync::Arc::new(resolver))
                    .context("TLS configuration")?,
            ))
        }
        None => None,
    };
    if tls.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "listening on a non-loopback address without TLS: configure [tls] or put a TLS terminator in front");
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("vouch-server listening on {scheme}://{addr}");
    println!("  data directory: {}", config.data_dir.display());
    if let Some(t) = &prepared.admin_token_file {
        println!(
            "  admin token:    {} (use as: Authorization: Bearer $(cat {}))",
            t.display(),
            t.display()
        );
    }
    let options = vouch_server::ServeOptions {
        tls,
        timeouts: config.timeouts,
        follow_changes: Some(std::time::Duration::from_millis(
            config.storage.follow_interval_ms,
        )),
    };
    vouch_server::serve_with(listener, prepared.state, options, shutdown_signal()).await
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
    if let Some(Command::Backup { to }) = &args.command {
        if config.storage.url.as_deref().is_some_and(is_postgres_url) {
            eprintln!("vouch-server backup: copies the SQLite store; back up a PostgreSQL store with pg_dump (docs/operations.md, \"PostgreSQL and several replicas\")");
            return std::process::ExitCode::from(2);
        }
        return match vouch_server::backup(&config.database_path(), to) {
            Ok(()) => {
                println!(
                    "backed up {} to {}",
                    config.database_path().display(),
                    to.display()
                );
                println!(
                    "  the key-encryption key ({}) is not in the copy: keep a copy of it apart",
                    config.kek_path().display()
                );
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vouch-server backup: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::RotateKek) = &args.command {
        return rotate_kek(&config);
    }
    if let Some(Command::MigrateStore { from, to }) = &args.command {
        return migrate_store(from, to);
    }
    let filter = match tracing_subscriber::EnvFilter::try_new(&config.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("vouch-server: configuration: log = {:?}: {e}", config.log);
            return std::process::ExitCode::from(2);
        }
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
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
            // A setting that names a file that cannot be used is a configuration error too.
            if e.downcast_ref::<ConfigError>().is_some() {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

fn rotate_kek(config: &Config) -> std::process::ExitCode {
    let kek = config.kek_path();
    let run = || -> anyhow::Result<vouch_server::KekRotation> {
        let backend = config.backend()?;
        if let vouch_server::Backend::Sqlite(db) = &backend {
            anyhow::ensure!(db.exists(), "no database at {}", db.display());
        }
        let store = backend
            .open()
            .with_context(|| format!("opening {}", backend.describe()))?;
        Ok(vouch_server::rotate_kek(store.as_ref(), &kek)?)
    };
    match run() {
        Ok(r) => {
            if r.resumed {
                println!("finished the interrupted key-encryption key rotation");
            }
            println!(
                "re-sealed {} online keys under a new key-encryption key in {}",
                r.resealed,
                kek.display()
            );
            println!(
                "  back up the new key-encryption key now; the old one opens nothing any more"
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vouch-server rotate-kek: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn migrate_store(from: &str, to: &str) -> std::process::ExitCode {
    use vouch_server::Backend;
    let parse = |url: &str| Backend::parse(url);
    let (source, target) = match (parse(from), parse(to)) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("vouch-server migrate-store: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Backend::Sqlite(path) = &source {
        if !path.exists() {
            eprintln!(
                "vouch-server migrate-store: no SQLite database at {}",
                path.display()
            );
            return std::process::ExitCode::from(2);
        }
    }
    let open = |b: &Backend| {
        b.open().map_err(|e| match e {
            // Refused credentials, a newer schema: not worth a retry.
            vouch_server::store::StoreError::Backend(_) => {
                anyhow::Error::from(ConfigError(format!("opening {}: {e}", b.describe())))
            }
            e => anyhow::anyhow!("opening {}: {e}", b.describe()),
        })
    };
    let run = || -> anyhow::Result<vouch_server::Migrated> {
        let (from, to) = (open(&source)?, open(&target)?);
        Ok(vouch_server::migrate_store(from.as_ref(), to.as_ref())?)
    };
    match run() {
        Ok(m) => {
            println!(
                "copied {} file versions, {} changefeed entries, {} online keys, {} proposals and {} webhook cursors from {} to {}",
                m.files,
                m.changes,
                m.keys,
                m.proposals,
                m.webhook_cursors,
                source.describe(),
                target.describe()
            );
            println!("  verified: both read back to sha256:{}", m.digest);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vouch-server migrate-store: {e:#}");
            if e.downcast_ref::<ConfigError>().is_some() {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}
