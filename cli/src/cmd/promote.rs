//! `vouch promote SRC_IMAGE DST_IMAGE`: copy a trusted image to another repository (or
//! registry) together with its trust, so that it verifies at its new name without being
//! signed again.
//!
//! 1. SRC is verified exactly as `vouch verify SRC` verifies it ([`super::verify::trusted`]):
//!    an image that is not trusted is never copied.
//! 2. The signed manifest is copied by digest, with every platform: an index's child
//!    manifests (pushed by digest), each manifest's config and layers (mounted from SRC's
//!    repository on the same registry, else streamed from SRC's registry into DST's, at most
//!    their announced size, the destination checking the digest), then the top manifest under DST's tag,
//!    byte-identical (so DST serves the same digest that was signed). Foreign layers stay
//!    where their URLs say.
//! 3. The verified trust of SRC's repository is pushed to DST's repository, as `vouch
//!    mirror` pushes it ([`super::mirror::push_trust`]).
//! 4. Unless the pin file already maps DST's repository to SRC's, the `[[pin]]` with
//!    `trust_from` a consumer needs is printed: trust is per repository, and a copy only
//!    keeps its trust for consumers who say whose trust it has.
//!
//! DST's tag must be SRC's (a signed target is a tag name; under another name the copy
//! would be signed for nothing); DST may leave the tag out.
//!
//! What it is not: a general image copier (no format conversion, no nested indexes, no
//! resumable uploads).

use anyhow::{anyhow, bail, Context as _};
use serde_json::json;
use vouch_tuf::oci::{ManifestKind, References, ACCEPT_MANIFESTS, MAX_MANIFEST_BYTES};
use vouch_tuf::reference::{Digest, Gun};
use vouch_verifier::registry::Registries;

use super::mirror::Replace;
use crate::context::Context;
use crate::failure::Failure;
use crate::output::{self, Format};
use crate::repo::Repo;
use crate::source::Location;

/// `vouch promote`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The trusted image to copy: HOST/ORG/APP:TAG.
    pub src: String,
    /// Where to copy it: HOST/ORG/APP (or HOST/ORG/APP:TAG with SRC's tag).
    pub dst: String,
    /// Replace another repository's trust artifact in DST's repository (never an image).
    #[arg(long)]
    pub replace: bool,
}

/// What was copied.
#[derive(Debug, Default)]
struct Copied {
    /// Manifests pushed (children, then the top one).
    manifests: usize,
    /// Blobs mounted from the source repository.
    mounted: usize,
    /// Blobs read and pushed.
    pushed: usize,
    /// Blobs the destination had already.
    present: usize,
}

/// Runs `vouch promote`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let src = super::parse_image(&args.src)?;
    let Some(tag) = src.tag().map(str::to_owned) else {
        bail!(
            "{}: promote takes a tag (HOST/ORG/APP:TAG): trust is kept per tag name",
            args.src
        );
    };
    let dst = super::parse_image(&args.dst)?;
    if dst.digest().is_some() {
        bail!(
            "{}: the destination is a repository (and tag), not a digest",
            args.dst
        );
    }
    if let Some(other) = dst.tag() {
        if other != tag {
            bail!(
                "{}: the destination tag {other} is not the source tag {tag}: the trust copied with the image signs the tag name {tag}, so under {other} the copy would be signed for nothing; promote to {}:{tag} (or leave the tag out)",
                args.dst,
                dst.name()
            );
        }
    }
    if dst.gun() == src.gun() {
        bail!("{} and {} are the same repository", args.src, args.dst);
    }
    // The command line's credentials are for DST's registry (unless --registry-host names
    // another): SRC's registry never sees them.
    ctx.writes_to(dst.registry())?;
    let pinned = match super::verify::trusted(ctx, &args.src)? {
        Ok(pinned) => pinned,
        Err(reason) => {
            return Err(Failure::NotTrusted(format!(
                "{} is not trusted, so it was not promoted: {reason}",
                args.src
            ))
            .into())
        }
    };
    let digest = pinned
        .digest()
        .cloned()
        .ok_or_else(|| anyhow!("{pinned} has no digest"))?;
    let from = Location::of_image(&src);
    let to = Location::of_image(&dst);
    let copied = {
        let client = ctx.registries_for(&to.registry)?;
        let mut registries = client
            .lock()
            .map_err(|_| anyhow!("the registry client failed earlier"))?;
        copy_image(&mut registries, &from, &to, &digest, &tag)
            .with_context(|| format!("cannot copy {src} to {to}:{tag}"))?
    };
    let repo = Repo::open(ctx, &src.gun())?;
    let trust = super::mirror::push_trust(ctx, &repo, &to, Replace::from_flag(args.replace))?;
    let pin = pin_needed(ctx, &dst.gun(), repo.gun())?;
    let promoted = format!("{to}:{tag}@{digest}");
    match ctx.output {
        Format::Json => output::json(&json!({
            "source": pinned.to_string(),
            "destination": promoted,
            "digest": digest.as_str(),
            "manifests": copied.manifests,
            "blobs": {
                "mounted": copied.mounted,
                "pushed": copied.pushed,
                "present": copied.present,
            },
            "trust": trust.to_json(),
            "trust_from": repo.gun().as_str(),
            "pin": pin,
        })),
        Format::Text => {
            let mut out = format!(
                "promoted {pinned} to {promoted} (manifests: {}; blobs: {} mounted, {} pushed, {} present)\ntrust of {}: {}",
                copied.manifests,
                copied.mounted,
                copied.pushed,
                copied.present,
                repo.gun(),
                trust.to_text()
            );
            if let Some(pin) = &pin {
                out.push_str(&format!(
                    "\nconsumers verify {to} with this pin (add it to their --trust-pins file):\n{pin}"
                ));
            }
            output::text(out.trim_end())
        }
    }
}

/// The `[[pin]]` consumers need to verify `dst` (a promoted copy) with the trust of
/// `source`, unless the pin file already maps it there.
fn pin_needed(ctx: &Context, dst: &Gun, source: &Gun) -> anyhow::Result<Option<String>> {
    if let Some(pins) = crate::trust::load_pins(ctx)? {
        if let Ok(Some(m)) = pins.trust_source(dst) {
            if m.source == *source {
                return Ok(None);
            }
        }
    }
    Ok(Some(pin_text(dst, source)))
}

/// The `[[pin]]` mapping `dst` to `source`, in the pin file's format.
fn pin_text(dst: &Gun, source: &Gun) -> String {
    format!("[[pin]]\ngun = \"{dst}\"\ntrust_from = \"{source}\"\n")
}

/// Copies the manifest `digest` of `from` (an image or an index, with every child) to
/// `to`, the top manifest under `tag`.
fn copy_image(
    registries: &mut Registries,
    from: &Location,
    to: &Location,
    digest: &Digest,
    tag: &str,
) -> anyhow::Result<Copied> {
    let mut copied = Copied::default();
    let top = registries.get_manifest(
        &from.registry,
        &from.repository,
        digest.as_str(),
        ACCEPT_MANIFESTS,
        MAX_MANIFEST_BYTES,
    )?;
    let refs = References::parse(&top.bytes, top.media_type.as_deref())
        .with_context(|| format!("manifest {digest} of {from}"))?;
    match refs.kind {
        ManifestKind::Image => copy_blobs(registries, from, to, &refs, &mut copied)?,
        ManifestKind::Index => {
            for child in &refs.manifests {
                let m = registries.get_manifest(
                    &from.registry,
                    &from.repository,
                    child.digest.as_str(),
                    ACCEPT_MANIFESTS,
                    child.size.min(MAX_MANIFEST_BYTES),
                )?;
                let child_refs = References::parse(&m.bytes, Some(&child.media_type))
                    .with_context(|| format!("manifest {} of {from}", child.digest))?;
                if child_refs.kind == ManifestKind::Index {
                    bail!(
                        "{} of {from} is an index inside an index, which promote does not copy",
                        child.digest
                    );
                }
                copy_blobs(registries, from, to, &child_refs, &mut copied)?;
                registries.put_manifest(
                    &to.registry,
                    &to.repository,
                    child.digest.as_str(),
                    &child_refs.media_type,
                    &m.bytes,
                )?;
                copied.manifests += 1;
            }
        }
    }
    let stored = registries.put_manifest(
        &to.registry,
        &to.repository,
        tag,
        &refs.media_type,
        &top.bytes,
    )?;
    copied.manifests += 1;
    if stored != *digest {
        bail!("{to}:{tag} was stored as {stored}, not as the signed {digest}");
    }
    Ok(copied)
}

/// Copies the config and layers `refs` lists from `from` to `to`: mounted on the same
/// registry, else streamed from one to the other (at most the size the manifest gives, the
/// destination checking the digest).
fn copy_blobs(
    registries: &mut Registries,
    from: &Location,
    to: &Location,
    refs: &References,
    copied: &mut Copied,
) -> anyhow::Result<()> {
    for blob in refs.blobs.iter().filter(|b| !b.external) {
        if from.registry == to.registry
            && registries.mount_blob(
                &to.registry,
                &to.repository,
                &blob.digest,
                &from.repository,
            )?
        {
            copied.mounted += 1;
            continue;
        }
        let pushed = registries.copy_blob(
            &from.registry,
            &from.repository,
            &blob.digest,
            blob.size,
            &to.registry,
            &to.repository,
        )?;
        if !pushed {
            copied.present += 1;
            continue;
        }
        copied.pushed += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_printed_pin_maps_the_copy_to_the_source() {
        let dst = Gun::new("prod.example.com/app").unwrap();
        let src = Gun::new("build.example.com/team/app").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pins.toml");
        std::fs::write(&f, pin_text(&dst, &src)).unwrap();
        let pins = vouch_verifier::pins::TrustPins::load(&f).unwrap();
        assert_eq!(pins.trust_source(&dst).unwrap().unwrap().source, src);
        assert_eq!(pins.trust_source(&src).unwrap(), None);
    }
}
