//! `vouch sign`: adds a tag (or a bare digest) to a repository's targets and publishes it.
//!
//! The change is applied to freshly verified metadata, signed with the targets key and
//! published in one update; when someone else publishes first (409), it is re-applied to the
//! newer metadata and retried. Nothing is staged locally, so a refused sign leaves nothing
//! behind.

use anyhow::{anyhow, bail, Context as _};
use serde_json::json;
use vouch_tuf::json::{self, Value};
use vouch_tuf::metadata::TargetFile;
use vouch_tuf::reference::{Digest, ImageRef};
use vouch_tuf::types::TargetName;

use crate::context::Context;
use crate::output::{self, Format};
use crate::repo::Repo;

/// `vouch sign`
///
/// Examples:
///   vouch sign registry.example.com/org/app:v1 --digest sha256:… --length 1234
///   vouch sign registry.example.com/org/app@sha256:… --length 1234
#[derive(clap::Args, Debug)]
pub struct Args {
    /// IMAGE as HOST/ORG/APP:TAG (with --digest and --length), or HOST/ORG/APP@sha256:HEX
    /// to sign a bare digest.
    pub image: String,
    /// The manifest digest the tag points to.
    #[arg(long, value_name = "sha256:HEX")]
    pub digest: Option<String>,
    /// The manifest's size in bytes.
    #[arg(long, value_name = "BYTES")]
    pub length: Option<u64>,
    /// The manifest's media type, kept in the target's custom data.
    #[arg(long, value_name = "TYPE")]
    pub media_type: Option<String>,
    /// A JSON object of annotations kept in the target's custom data.
    #[arg(long, value_name = "JSON")]
    pub custom: Option<String>,
    /// Sign through this delegated role (`releases` means `targets/releases`) with its key,
    /// instead of targets.
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
}

/// What is signed: a target name and its file entry.
#[derive(Debug, Clone)]
pub struct Change {
    /// The image.
    pub image: ImageRef,
    /// The target name (tag, or the digest itself).
    pub name: TargetName,
    /// The digest.
    pub digest: Digest,
    /// The target entry.
    pub target: TargetFile,
}

fn custom_value(media_type: Option<&str>, custom: Option<&str>) -> anyhow::Result<Option<Value>> {
    let mut map = match custom {
        None => vouch_tuf::json::Map::new(),
        Some(text) => {
            let v = json::parse(text.as_bytes())
                .map_err(|e| anyhow!("--custom is not valid JSON: {e}"))?;
            match v {
                Value::Object(m) => m,
                _ => bail!("--custom must be a JSON object, e.g. '{{\"sbom\":\"sha256:…\"}}'"),
            }
        }
    };
    if let Some(mt) = media_type {
        map.insert("mediaType".into(), Value::from(mt));
    }
    Ok((!map.is_empty()).then_some(Value::Object(map)))
}

/// Validates the arguments into a [`Change`].
pub fn change(args: &Args) -> anyhow::Result<Change> {
    let image = super::parse_image(&args.image)?;
    let given = args
        .digest
        .as_deref()
        .map(|d| Digest::parse(d).with_context(|| format!("invalid --digest {d:?}")))
        .transpose()?;
    let digest = match (image.digest(), given) {
        (Some(a), Some(b)) if *a != b => bail!("{} and --digest {b} disagree", args.image),
        (Some(a), _) => a.clone(),
        (None, Some(b)) => b,
        (None, None) => bail!(
            "resolving digests from a registry is not supported yet: pass --digest and --length"
        ),
    };
    let Some(length) = args.length else {
        bail!("resolving digests from a registry is not supported yet: pass --digest and --length");
    };
    let name = match image.tag() {
        Some(tag) => tag.to_owned(),
        None => digest.to_string(),
    };
    let name =
        TargetName::new(name.clone()).map_err(|e| anyhow!("invalid target name {name:?}: {e}"))?;
    let mut target = TargetFile::image(&digest, length, None);
    target.custom = custom_value(args.media_type.as_deref(), args.custom.as_deref())?;
    Ok(Change {
        image,
        name,
        digest,
        target,
    })
}

/// Runs `vouch sign`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let c = change(&args)?;
    let role = super::parse_role(args.role.as_deref())?;
    let gun = c.image.gun();
    let mut repo = Repo::open(ctx, &gun)?;
    let published = repo.publish_change(ctx, &role, &|targets| {
        targets.add_target(c.name.clone(), c.target.clone());
        Ok(())
    })?;
    let pinned = format!("{gun}@{}", c.digest);
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "target": c.name.as_str(),
            "digest": c.digest.as_str(),
            "length": c.target.length,
            "role": role.as_str(),
            "version": published.version.get(),
            "attempts": published.attempts,
        })),
        Format::Text => output::text(&format!(
            "signed {gun}:{} -> {pinned} ({role} version {})",
            c.name,
            published.version.get()
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(image: &str, digest: Option<&str>, length: Option<u64>) -> Args {
        Args {
            image: image.into(),
            digest: digest.map(Into::into),
            length,
            media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
            custom: Some(r#"{"sbom":"sha256:00"}"#.into()),
            role: None,
        }
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn tag_and_bare_digest_changes() {
        let c = change(&args("example.com/org/app:v1", Some(D), Some(7))).unwrap();
        assert_eq!(c.name.as_str(), "v1");
        assert_eq!(c.target.length, 7);
        assert_eq!(
            c.target.media_type(),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
        let c = change(&args(&format!("example.com/org/app@{D}"), None, Some(7))).unwrap();
        assert_eq!(c.name.as_str(), D);
    }

    #[test]
    fn registry_resolution_is_refused_plainly() {
        let e = change(&args("example.com/org/app:v1", None, None)).unwrap_err();
        assert!(e.to_string().contains("not supported yet"), "{e}");
        let mut a = args("example.com/org/app:v1", Some(D), Some(1));
        a.custom = Some("[1]".into());
        assert!(change(&a).is_err());
    }
}
