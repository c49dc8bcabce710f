//! One module per subcommand: each has an `Args` (or subcommand enum) and a `run`.

pub mod approve;
pub mod bundle;
pub mod delegation;
pub mod delete;
pub mod init;
pub mod inspect;
pub mod key;
pub mod list;
pub mod lookup;
pub mod mirror;
pub mod notary;
pub mod promote;
pub mod proposals;
pub mod renew;
pub mod root;
pub mod rotate;
pub mod sign;
pub mod status;
pub mod trust;
pub mod unsign;
pub mod verify;
pub mod watch;
pub mod webhooks;

use anyhow::{bail, Context as _};
use vouch_tuf::reference::{Gun, ImageRef};
use vouch_tuf::types::{RoleName, TopLevelRole};

/// Parses an image reference, naming the argument in the error.
pub fn parse_image(s: &str) -> anyhow::Result<ImageRef> {
    ImageRef::parse(s).with_context(|| {
        format!("{s:?} is not an image reference (expected HOST/ORG/APP:TAG or HOST/ORG/APP@sha256:HEX)")
    })
}

/// Parses a GUN the way image references name it (`app` is `docker.io/library/app`), so that
/// `vouch init GUN` and `vouch sign GUN:TAG` agree on the repository.
pub fn parse_gun(s: &str) -> anyhow::Result<Gun> {
    let r = ImageRef::parse(s)
        .with_context(|| format!("{s:?} is not a repository name (expected HOST/ORG/APP)"))?;
    if r.tag().is_some() || r.digest().is_some() {
        bail!("{s:?} names an image, not a repository: drop the :TAG or @DIGEST");
    }
    Ok(r.gun())
}

/// The role a change goes to: `targets` (the default), or a delegated role named `NAME` or
/// `targets/NAME` (delegated roles are named below `targets/`, as Notary names them).
pub fn parse_role(s: Option<&str>) -> anyhow::Result<RoleName> {
    let full = match s {
        None | Some("targets") => return Ok(TopLevelRole::Targets.name()),
        Some(r) if r.starts_with("targets/") => r.to_owned(),
        Some(r) if TopLevelRole::from_name(r).is_some() => {
            bail!("--role {r}: only targets and delegated roles sign images")
        }
        Some(r) => format!("targets/{r}"),
    };
    RoleName::new(full.clone()).map_err(|e| anyhow::anyhow!("invalid role {full:?}: {e}"))
}

/// How `--propose` says an update is sent.
pub fn submit(propose: bool) -> crate::repo::Submit {
    if propose {
        crate::repo::Submit::Propose
    } else {
        crate::repo::Submit::Publish
    }
}

/// A tuf `Value` as a serde_json value (for JSON output).
pub fn to_serde(v: &vouch_tuf::json::Value) -> serde_json::Value {
    serde_json::from_slice(&vouch_tuf::json::to_json(v)).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn guns_are_image_names_without_tag_or_digest() {
        assert_eq!(
            parse_gun("example.com/org/app").unwrap().as_str(),
            "example.com/org/app"
        );
        assert_eq!(parse_gun("app").unwrap().as_str(), "docker.io/library/app");
        assert!(parse_gun("example.com/org/app:v1").is_err());
        assert!(parse_gun("Example.com/ORG/app").is_err());
    }

    #[test]
    fn delegated_roles_live_below_targets() {
        assert_eq!(parse_role(None).unwrap().as_str(), "targets");
        assert_eq!(parse_role(Some("targets")).unwrap().as_str(), "targets");
        assert_eq!(
            parse_role(Some("releases")).unwrap().as_str(),
            "targets/releases"
        );
        assert_eq!(
            parse_role(Some("targets/releases")).unwrap().as_str(),
            "targets/releases"
        );
        assert!(parse_role(Some("root")).is_err());
        assert!(parse_role(Some("snapshot")).is_err());
    }
}
