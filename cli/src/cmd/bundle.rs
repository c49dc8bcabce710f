//! `vouch export` and `vouch import`: offline trust bundles for air-gapped machines.
//!
//! A bundle holds every current metadata file of one GUN, and every root version, in the
//! format `vouch-verifier` reads (`verifier/src/transport/bundle.rs`). It is not trusted
//! for being a bundle: the importing side checks it exactly as it checks the server, against
//! the root it already trusts (or `--trust-root`, or the bundle's root on first use with a
//! warning).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _};
use serde_json::json;
use vouch_verifier::transport::Bundle;

use crate::context::Context;
use crate::output::{self, Format};
use crate::repo::Repo;

/// `vouch export`
///
/// Example: vouch export registry.example.com/org/app -o app.bundle.json
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The image repository.
    pub gun: String,
    /// Write the bundle here (created with mode 0644) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `vouch import`
///
/// Example: vouch import app.bundle.json
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ImportArgs {
    /// Import from another system instead of a bundle.
    #[command(subcommand)]
    pub from: Option<ImportFrom>,
    /// A bundle written by `vouch export` (a file named `notary`: `./notary`).
    #[arg(required = true)]
    pub file: Option<PathBuf>,
    /// The repository, when the bundle does not name it.
    #[arg(long)]
    pub gun: Option<String>,
}

/// `vouch import notary …`
#[derive(clap::Subcommand, Debug)]
pub enum ImportFrom {
    /// Move Notary v1 (Docker Content Trust) collections to vouch: verify each against the
    /// root the notary client trusts, then sign its tags into a vouch repository.
    #[command(after_help = "Examples:\n  \
                      vouch import notary docker.io/org/app --notary-server https://notary.example.com\n  \
                      vouch import notary --gun-file guns.txt --keys notary")]
    Notary(super::notary::Args),
}

/// Runs `vouch export`.
pub fn export(ctx: &Context, args: ExportArgs) -> anyhow::Result<()> {
    let gun = super::parse_gun(&args.gun)?;
    let repo = Repo::open(ctx, &gun)?;
    let bundle = repo.bundle()?;
    let bytes = bundle.to_bytes();
    match &args.out {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            writeln!(out)?;
            Ok(())
        }
        Some(path) => {
            std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            match ctx.output {
                Format::Json => output::json(&json!({
                    "gun": gun.as_str(),
                    "path": path.display().to_string(),
                    "files": bundle.files.keys().collect::<Vec<_>>(),
                })),
                Format::Text => output::text(&format!(
                    "wrote {} files of {gun} to {}",
                    bundle.files.len(),
                    path.display()
                )),
            }
        }
    }
}

/// Runs `vouch import`.
pub fn import(ctx: &Context, args: ImportArgs) -> anyhow::Result<()> {
    let file = match (args.from, args.file) {
        (Some(ImportFrom::Notary(a)), _) => return super::notary::run(ctx, a),
        (None, Some(file)) => file,
        (None, None) => bail!("name the bundle to import (vouch import FILE)"),
    };
    let bytes =
        std::fs::read(&file).with_context(|| format!("cannot read bundle {}", file.display()))?;
    let bundle = Bundle::from_bytes(&bytes)
        .with_context(|| format!("{} is not a vouch trust bundle", file.display()))?;
    let named = args
        .gun
        .as_deref()
        .or(bundle.gun.as_deref())
        .ok_or_else(|| {
            anyhow!(
                "{} does not name its repository: pass --gun",
                file.display()
            )
        })?;
    let gun = super::parse_gun(named)?;
    let updater = Repo::open_offline(ctx, &gun, &file)?;
    let set = updater
        .trusted()
        .ok_or_else(|| anyhow!("trust data of {gun} not refreshed"))?;
    let targets_version = set.targets().map(|t| t.version().get());
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "root_version": set.root().version().get(),
            "targets_version": targets_version,
        })),
        Format::Text => output::text(&format!(
            "imported the trust data of {gun} (root version {}, targets version {})",
            set.root().version().get(),
            targets_version.map_or("-".to_owned(), |v| v.to_string())
        )),
    }
}
