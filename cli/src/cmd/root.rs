//! `vouch root export GUN`: the repository's current root, verified, to hand to consumers
//! (`vouch --trust-root FILE`, `vouch trust pin GUN FILE`, a pin file's `root_file`, an
//! admission policy's `root_file`).

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::json;

use crate::context::Context;
use crate::output::{self, Format};
use crate::repo::Repo;

/// `vouch root`
#[derive(clap::Subcommand, Debug)]
pub enum RootCommand {
    /// Print the repository's current root metadata (verified) for consumers to pin.
    ///
    /// Example: vouch root export registry.example.com/org/app -o app.root.json
    Export(ExportArgs),
}

/// `vouch root export`
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The image repository.
    pub gun: String,
    /// Write the root here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Runs `vouch root`.
pub fn run(ctx: &Context, cmd: RootCommand) -> anyhow::Result<()> {
    let RootCommand::Export(args) = cmd;
    let gun = super::parse_gun(&args.gun)?;
    let repo = Repo::open(ctx, &gun)?;
    let root = repo.trusted()?.root();
    let bytes = root.bytes();
    match &args.out {
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // Exactly the bytes the repository serves (no newline added), so the file's
            // SHA-256 is the root's.
            out.write_all(bytes)?;
            out.flush()?;
            Ok(())
        }
        Some(path) => {
            std::fs::write(path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let sha = vouch_tuf::reference::Digest::sha256_of(bytes);
            match ctx.output {
                Format::Json => output::json(&json!({
                    "gun": gun.as_str(),
                    "path": path.display().to_string(),
                    "version": root.version().get(),
                    "sha256": sha.hex(),
                })),
                Format::Text => output::text(&format!(
                    "wrote root version {} of {gun} (sha256 {}) to {}",
                    root.version().get(),
                    sha.hex(),
                    path.display()
                )),
            }
        }
    }
}
