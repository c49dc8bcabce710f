//! `vouch delete GUN`: deletes a repository's trust data on the server, and the metadata
//! this trust directory cached for it.
//!
//! Every client stops trusting the repository's images (a client that already trusts it
//! fails to update; `vouch verify` says not trusted), and `vouch init GUN` can start it
//! afresh. It asks first, unless `--yes`. The server keeps its online keys and records the
//! deletion in its changefeed; private keys in the trust directory are kept (delete them
//! with `vouch key delete`). A repository the server has no trust data for is not an error:
//! the local cache is removed all the same, so that a re-created repository is trusted anew.

use anyhow::Context as _;
use serde_json::json;

use crate::context::Context;
use crate::output::{self, Format};
use crate::remote::Remote;

/// `vouch delete`
///
/// Example: vouch delete registry.example.com/org/app --yes
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image repository.
    pub gun: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

/// Runs `vouch delete`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let gun = super::parse_gun(&args.gun)?;
    crate::confirm::confirm(
        &format!(
            "Delete all trust data of {gun} on {}? Every client will stop trusting its images.",
            ctx.server
        ),
        args.yes,
    )?;
    let deleted = Remote::new(ctx, &gun)?.delete_trust_data()?;
    // Only a deletion the server confirms forgets the repository here, pin included: a
    // server that had no such repository (a wrong --server, say) leaves this machine's
    // trust in it as it was (`vouch trust reset` forgets it on purpose).
    let dir = crate::trust::dir(ctx, &gun);
    let had_cache = dir.join("root.json").exists();
    let cache_removed = if !deleted {
        false
    } else {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => had_cache,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "the server's trust data of {gun} is deleted, but this machine's trust in it ({}) could not be removed: run `vouch trust reset {gun}`",
                        dir.display()
                    )
                })
            }
        }
    };
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "server": ctx.server,
            "deleted": deleted,
            "cache_removed": cache_removed,
        })),
        Format::Text => {
            let here = if cache_removed {
                "; removed its cached metadata here"
            } else {
                ""
            };
            if deleted {
                output::text(&format!(
                    "deleted the trust data of {gun} on {}{here}",
                    ctx.server
                ))
            } else {
                output::text(&format!(
                    "{gun} has no trust data on {}: nothing to delete there{here}",
                    ctx.server
                ))
            }
        }
    }
}
