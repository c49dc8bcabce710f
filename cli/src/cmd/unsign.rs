//! `vouch unsign`: removes a tag (or bare digest) from a repository's targets (or, in a
//! repository with hashed bins, from the bin its name hashes to).

use anyhow::bail;
use serde_json::json;

use crate::context::Context;
use crate::output::{self, Format};
use crate::repo::EditingRepo;

/// `vouch unsign`
///
/// Example: vouch unsign registry.example.com/org/app:v1
#[derive(clap::Args, Debug)]
pub struct Args {
    /// HOST/ORG/APP:TAG, or HOST/ORG/APP@sha256:HEX for a bare digest.
    pub image: String,
    /// Remove it from this delegated role (`releases` means `targets/releases`; a hashed
    /// bin by its name) instead of targets or its hashed bin.
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// Propose the change for threshold signing by several people instead of publishing it:
    /// it is signed with the keys of each role held here (up to the threshold) and kept
    /// pending on the server until the other key holders run `vouch approve`.
    #[arg(long)]
    pub propose: bool,
}

/// Runs `vouch unsign`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let image = super::parse_image(&args.image)?;
    let name = match (image.tag(), image.digest()) {
        (Some(tag), _) => tag.to_owned(),
        (None, Some(d)) => d.to_string(),
        (None, None) => bail!("{}: name the tag to remove (HOST/ORG/APP:TAG)", args.image),
    };
    let given = match args.role.as_deref() {
        Some(r) => Some(super::parse_role(Some(r))?),
        None => None,
    };
    let gun = image.gun();
    let mut repo = EditingRepo::open_to_submit(ctx, &gun, super::submit(args.propose))?;
    repo.warn_expired(repo.trusted()?);
    let role = super::sign::route(&repo, given.as_ref(), &[name.as_str()])?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no role for {name}"))?;
    let published = repo.publish_change(ctx, &role, &|targets| {
        if targets.remove_target(&name).is_none() {
            bail!("{role} of {gun} has no signed target {name}: nothing to remove");
        }
        Ok(())
    })?;
    if let Some(p) = &published.proposal {
        return super::proposals::proposed(ctx, &gun, p);
    }
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "target": name,
            "role": role.as_str(),
            "version": published.version.get(),
        })),
        Format::Text => output::text(&format!(
            "removed {gun}:{name} ({role} version {})",
            published.version.get()
        )),
    }
}
