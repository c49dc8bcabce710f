//! `vouch lookup GUN:TAG`: the digest a tag is signed for, found through the delegation tree.
//!
//! Trust data that fails a check of the TUF workflow (expired, badly signed, rolled back) is
//! [`Failure::NotTrusted`] (exit status 3), as for `vouch verify`.

use anyhow::bail;
use serde_json::json;

use crate::context::Context;
use crate::failure::Failure;
use crate::output::{self, Format};
use crate::repo::{self, Repo};

/// `vouch lookup`
///
/// Example: vouch lookup registry.example.com/org/app:v1
#[derive(clap::Args, Debug)]
pub struct Args {
    /// HOST/ORG/APP:TAG (`latest` when no tag is given).
    pub image: String,
}

/// Runs `vouch lookup`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let image = super::parse_image(&args.image)?;
    if image.digest().is_some() {
        bail!(
            "{}: lookup takes a tag; use `vouch verify` for a digest",
            args.image
        );
    }
    let gun = image.gun();
    let tag = image.tag_or_latest().to_owned();
    let not_trusted = |e: anyhow::Error| match repo::not_trusted_reason(&gun, &e) {
        Some(reason) => Failure::NotTrusted(reason).into(),
        None => e,
    };
    let mut repo = Repo::open(ctx, &gun).map_err(not_trusted)?;
    let found = repo
        .updater()
        .lookup(&tag)
        .map_err(|e| not_trusted(repo.verify_error(e)))?;
    let Some(t) = found else {
        bail!("{gun} has no signed tag {tag} (see `vouch list {gun}`)");
    };
    let roles: Vec<&str> = t.role_path.iter().map(|r| r.as_str()).collect();
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "tag": t.tag,
            "digest": t.digest.as_str(),
            "length": t.length,
            "custom": t.custom.as_ref().map(super::to_serde),
            "role_path": roles,
        })),
        Format::Text => output::text(&format!(
            "{gun}:{}  {}  {} bytes  signed by {}",
            t.tag,
            t.digest,
            t.length,
            roles.join(" > ")
        )),
    }
}
