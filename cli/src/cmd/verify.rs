//! `vouch verify IMAGE`: exit status 0 only when the image is trusted; prints it pinned to
//! its signed digest (`host/org/app@sha256:…`).
//!
//! A tag is trusted when the repository's verified metadata signs it; a digest when some
//! target visible through the delegation tree carries it; a tag with a digest when the tag is
//! signed for exactly that digest. The metadata comes from the server, or with `--bundle`
//! from an offline bundle. Checking that the registry serves that digest is not implemented
//! yet, so `--no-registry` is required.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use serde_json::json;
use vouch_tuf::reference::ImageRef;
use vouch_verifier::transport::Transport;
use vouch_verifier::{Error as VerifyError, Updater};

use crate::context::Context;
use crate::failure::Failure;
use crate::output::{self, Format};
use crate::repo::{self, Repo};

/// `vouch verify`
///
/// Examples:
///   vouch verify registry.example.com/org/app:v1 --no-registry
///   vouch verify registry.example.com/org/app:v1 --no-registry --bundle app.bundle.json
#[derive(clap::Args, Debug)]
pub struct Args {
    /// HOST/ORG/APP:TAG, HOST/ORG/APP@sha256:HEX or HOST/ORG/APP:TAG@sha256:HEX.
    pub image: String,
    /// Do not ask the registry which digest it serves for the tag (required for now).
    #[arg(long)]
    pub no_registry: bool,
    /// Verify offline against this bundle (`vouch export`) instead of the server.
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Trust the tag only when this delegated role (`releases` means `targets/releases`)
    /// signed it.
    #[arg(long, value_name = "ROLE")]
    pub require_role: Option<String>,
}

/// Runs `vouch verify`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let image = super::parse_image(&args.image)?;
    if !args.no_registry {
        bail!("checking the digest the registry serves is not supported yet: pass --no-registry to verify against the trust data only");
    }
    if let Some(r) = &args.require_role {
        super::parse_role(Some(r))?;
        if image.tag().is_none() {
            bail!("--require-role needs a tag (HOST/ORG/APP:TAG), not a bare digest");
        }
    }
    let gun = image.gun();
    match &args.bundle {
        Some(path) => {
            let mut updater = Repo::open_offline(ctx, &gun, path)?;
            answer(ctx, &args, &image, &mut updater, |e| {
                anyhow!(e).context(format!("trust data of {gun} in {}", path.display()))
            })
        }
        None => {
            let mut repo = Repo::open(ctx, &gun)?;
            let server = ctx.server.clone();
            answer(ctx, &args, &image, repo.updater(), |e| {
                repo::verify_error(&server, &gun, e)
            })
        }
    }
}

fn answer<T: Transport>(
    ctx: &Context,
    args: &Args,
    image: &ImageRef,
    updater: &mut Updater<T>,
    other_error: impl Fn(VerifyError) -> anyhow::Error,
) -> anyhow::Result<()> {
    let gun = image.gun();
    match updater.resolve(image) {
        Ok(pinned) => {
            let role_path: Vec<String> = match image.tag() {
                Some(tag) => updater
                    .lookup(tag)
                    .ok()
                    .flatten()
                    .map(|t| t.role_path.iter().map(|r| r.to_string()).collect())
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            if let Some(r) = &args.require_role {
                let required = super::parse_role(Some(r))?;
                if !role_path.iter().any(|p| p == required.as_str()) {
                    let reason = format!(
                        "{} is signed by {}, not by {required}",
                        args.image,
                        role_path.join(" > ")
                    );
                    if ctx.output == Format::Json {
                        output::json(&json!({
                            "image": args.image,
                            "trusted": false,
                            "reason": reason,
                        }))?;
                    }
                    return Err(Failure::NotTrusted(reason).into());
                }
            }
            match ctx.output {
                Format::Json => output::json(&json!({
                    "image": args.image,
                    "trusted": true,
                    "pinned": pinned.to_string(),
                    "digest": pinned.digest().map(|d| d.to_string()),
                    "role_path": role_path,
                })),
                Format::Text => output::text(&pinned.to_string()),
            }
        }
        Err(
            e @ (VerifyError::UnknownTag { .. }
            | VerifyError::UntrustedDigest { .. }
            | VerifyError::Update(_)),
        ) => {
            let reason = match &e {
                VerifyError::Update(u) => {
                    format!("the trust data of {gun} failed verification: {u}")
                }
                _ => format!("{e}: sign it with `vouch sign`, or deploy a signed tag"),
            };
            if ctx.output == Format::Json {
                output::json(&json!({
                    "image": args.image,
                    "trusted": false,
                    "reason": reason,
                }))?;
            }
            Err(Failure::NotTrusted(reason).into())
        }
        Err(e) => Err(other_error(e)),
    }
}
