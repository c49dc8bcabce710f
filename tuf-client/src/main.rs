//! `vouch-tuf-client`: a TUF client speaking the tuf-conformance client-under-test protocol.
//!
//! What it is: a thin command line over `vouch-verifier`, so that the tuf-conformance suite can
//! drive vouch's TUF client workflow the way it drives other clients:
//!
//! ```text
//! vouch-tuf-client --metadata-dir DIR init ROOTFILE
//! vouch-tuf-client --metadata-url URL --metadata-dir DIR refresh
//! vouch-tuf-client --metadata-url URL --metadata-dir DIR --target-name P [--target-name P2 …] \
//!     --target-dir TDIR --target-base-url TURL download
//! ```
//!
//! Options come before the subcommand. The exit status is 0 on success and 1 on any
//! failure (including usage errors). Trusted metadata lives in DIR under unversioned names;
//! downloaded targets are stored in TDIR under their percent-encoded names.
//!
//! What it is not: a user-facing client or a place for TUF rules. Every check (the root
//! chain, thresholds, expiry, rollback, lengths and hashes) is `vouch-verifier`'s; this binary
//! only maps the protocol's arguments onto an [`Updater`] and writes what it hands back. Looking
//! up and verifying images is the `vouch` command's job (`vouch verify`), and it has no
//! configuration, trust pins or output formats of its own.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use vouch_tuf::types::TopLevelRole;
use vouch_verifier::cache::{percent_encode, MetadataStore};
use vouch_verifier::transport::{HttpOptions, HttpTransport};
use vouch_verifier::updater::check_target;
use vouch_verifier::Updater;

#[derive(Parser, Debug)]
#[command(
    name = "vouch-tuf-client",
    version,
    about = "TUF client for conformance testing"
)]
struct Cli {
    /// Base URL of the repository's metadata.
    #[arg(long)]
    metadata_url: Option<String>,
    /// Directory holding the trusted metadata.
    #[arg(long)]
    metadata_dir: PathBuf,
    /// A target to download (repeatable, downloaded in order).
    #[arg(long = "target-name")]
    target_names: Vec<String>,
    /// Directory to store downloaded targets in.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Base URL of the repository's targets.
    #[arg(long)]
    target_base_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Trust ROOTFILE as the initial root (no network).
    Init {
        /// Root metadata file to trust.
        root: PathBuf,
    },
    /// Update top-level metadata.
    Refresh,
    /// Update metadata, then download and verify each target.
    Download,
}

fn updater(cli: &Cli) -> Result<Updater<HttpTransport>> {
    let url = cli
        .metadata_url
        .as_deref()
        .ok_or_else(|| anyhow!("--metadata-url is required"))?;
    let store = MetadataStore::open(&cli.metadata_dir)?;
    let http = HttpTransport::new(url, &HttpOptions::default())?;
    Ok(Updater::new(store, http))
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", dir.join(name).display()))
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Init { root } => {
            let bytes =
                fs::read(root).with_context(|| format!("cannot read {}", root.display()))?;
            // The protocol expects no checks here: the first refresh verifies the root.
            let store = MetadataStore::open(&cli.metadata_dir)?;
            store.store(&TopLevelRole::Root.name(), &bytes)?;
        }
        Command::Refresh => updater(cli)?.refresh()?,
        Command::Download => {
            let tdir = cli
                .target_dir
                .as_deref()
                .ok_or_else(|| anyhow!("--target-dir is required"))?;
            let base = cli
                .target_base_url
                .as_deref()
                .ok_or_else(|| anyhow!("--target-base-url is required"))?;
            if cli.target_names.is_empty() {
                bail!("--target-name is required");
            }
            let mut up = updater(cli)?;
            up.refresh()?;
            let targets = HttpTransport::new(base, &HttpOptions::default())?;
            fs::create_dir_all(tdir)?;
            for name in &cli.target_names {
                let found = up
                    .target(name)?
                    .ok_or_else(|| anyhow!("target {name} not found"))?;
                let file = percent_encode(name);
                if let Ok(existing) = fs::read(tdir.join(&file)) {
                    if check_target(name, &found.target, &existing).is_ok() {
                        continue;
                    }
                }
                let bytes = up.download_target(name, &found.target, &targets)?;
                write_atomically(tdir, &file, &bytes)?;
            }
        }
    }
    Ok(())
}

/// vouch's binaries use mimalloc: parsing and checking metadata makes many small
/// allocations, and the system allocator's costs (and returning large buffers to the
/// kernel after every document) were a third of a cold TUF update.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match std::panic::catch_unwind(|| run(&cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("vouch-tuf-client: {e:#}");
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(1),
    }
}
