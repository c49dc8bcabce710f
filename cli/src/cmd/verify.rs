//! `vouch verify IMAGE`: exit status 0 only when the image is trusted; prints it pinned to
//! its signed digest (`host/org/app@sha256:…`).
//!
//! A tag is trusted when the repository's verified metadata signs it; a digest when some
//! target visible through the delegation tree carries it; a tag with a digest when the tag is
//! signed for exactly that digest (the verifier's `Updater::vouch`, which the admission
//! webhook decides by too), whose answer also says through which role paths it vouched
//! (shown with `--output json`, for a tag and a bare digest alike). The metadata comes from
//! the server, or with `--bundle`
//! from an offline bundle. A repository the server has no trust data for signs nothing, so
//! its images are not trusted (exit 3) rather than an error.
//!
//! Then, unless `--no-registry`, the image's registry is asked ([`crate::registry`]) which
//! digest it serves for the tag now (or whether it serves the digest, for a bare digest):
//! a tag pushed again after it was signed points at a digest nobody signed, and a deploy
//! by tag would pull that. Such an image is not trusted (exit 3).
//!
//! Where vouch's trust data is read from is `--source` ([`crate::source`]): the server, the
//! registry copy beside the images, or the server with the registry copy while it is
//! unreachable. A `trust_from` pin makes a promoted copy's image answered by the repository
//! it was signed in ([`rebased`]), under the copy's own name; the registry check asks the
//! copy's registry.
//!
//! With `--notary URL` (the migration window off Notary v1) the trust data is the image's
//! Notary collection on that notary server instead, verified in the notary dialect
//! ([`vouch_verifier::notary`]) from the root the notary client trusts (or `--notary-root`),
//! and keeping the rollback state in the same place as `vouch import notary`
//! ([`crate::notary`]). A tag resolves as `docker trust` resolves it: `targets/releases`
//! (and the roles it delegates to) first, then `targets` and its delegations. The verdict,
//! the output and the registry check are those of vouch's own trust data.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use serde_json::json;
use vouch_tuf::reference::{Digest, DigestAlgorithm, ImageRef};
use vouch_tuf::types::RoleName;
use vouch_verifier::notary::{
    fetch_collection, ExpiredMetadata, Layout, NotaryTarget, NotaryVerifyError,
};
use vouch_verifier::transport::Transport;
use vouch_verifier::{DelegationPath, Error as VerifyError, Updater};

use crate::context::Context;
use crate::failure::Failure;
use crate::output::{self, Format};
use crate::registry::RegistryError;
use crate::repo::{self, Repo};
use crate::source::SourceKind;

/// `vouch verify`
///
/// Examples:
///   vouch verify registry.example.com/org/app:v1
///   vouch verify registry.example.com/org/app:v1 --no-registry --bundle app.bundle.json
#[derive(clap::Args, Debug)]
pub struct Args {
    /// HOST/ORG/APP:TAG, HOST/ORG/APP@sha256:HEX or HOST/ORG/APP:TAG@sha256:HEX.
    pub image: String,
    /// Do not ask the registry which digest it serves for the tag: verify against the
    /// trust data only.
    #[arg(long)]
    pub no_registry: bool,
    /// Verify offline against this bundle (`vouch export`) instead of the server.
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Trust the tag only when this delegated role (`releases` means `targets/releases`)
    /// signed it.
    #[arg(long, value_name = "ROLE")]
    pub require_role: Option<String>,
    /// Verify against this Notary v1 server (Docker Content Trust) instead of vouch: the
    /// image's notary collection, from the root the notary client trusts.
    #[arg(long, value_name = "URL", conflicts_with = "bundle")]
    pub notary: Option<String>,
    /// With --notary: the notary root to trust for the image's repository the first time,
    /// instead of the notary client's (later runs start from the state they kept).
    #[arg(long, value_name = "FILE", requires = "notary")]
    pub notary_root: Option<PathBuf>,
    /// With --notary: the notary client's trust directory, whose
    /// tuf/<gun>/metadata/root.json is the root to trust [default: ~/.docker/trust].
    #[arg(long, value_name = "DIR", requires = "notary")]
    pub notary_trust_dir: Option<PathBuf>,
}

/// The outcome of a verification.
enum Verdict {
    /// Trusted: the image pinned to its signed digest, every role path that vouched for it
    /// (for a tag the one it is signed through; for a bare digest one per target carrying
    /// it), the signed digest the registry's answer is compared with, and the digest the
    /// registry serves (when asked).
    Trusted {
        pinned: ImageRef,
        role_paths: Vec<Vec<String>>,
        registry_signed: Digest,
        registry_digest: Option<Digest>,
    },
    /// Not trusted, and why.
    NotTrusted(String),
}

/// Runs `vouch verify`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let verdict = decide(ctx, &args)?;
    report(ctx, &args, verdict)
}

/// What `vouch verify IMAGE` decides about `image` (against vouch's trust data, asking the
/// registry, as the context says): `Ok(pinned)` when trusted, `Err(reason)` when not.
/// Checks that cannot answer are the outer error.
pub fn trusted(ctx: &Context, image: &str) -> anyhow::Result<Result<ImageRef, String>> {
    let args = Args {
        image: image.to_owned(),
        no_registry: false,
        bundle: None,
        require_role: None,
        notary: None,
        notary_root: None,
        notary_trust_dir: None,
    };
    Ok(match decide(ctx, &args)? {
        Verdict::Trusted { pinned, .. } => Ok(pinned),
        Verdict::NotTrusted(reason) => Err(reason),
    })
}

/// The verdict on `args.image`.
fn decide(ctx: &Context, args: &Args) -> anyhow::Result<Verdict> {
    let image = super::parse_image(&args.image)?;
    if let Some(r) = &args.require_role {
        required_path(r)?;
        if image.tag().is_none() {
            bail!("--require-role needs a tag (HOST/ORG/APP:TAG), not a bare digest");
        }
    }
    let gun = image.gun();
    // Trust data that fails a check (expired, badly signed, rolled back) is a verdict: not
    // trusted. Only failing to get an answer (a fetch, a missing trust root) is an error.
    let refused = |e: anyhow::Error| match repo::not_trusted_reason(&gun, &e) {
        Some(reason) => Ok(Verdict::NotTrusted(reason)),
        None => Err(e),
    };
    let verdict = match (&args.notary, &args.bundle) {
        (Some(server), _) => notary_verdict(ctx, args, &image, server)?,
        (None, Some(path)) => match Repo::open_offline(ctx, &gun, path) {
            Ok(mut updater) => judge(ctx, args, &image, &mut updater, |e| {
                anyhow!(e).context(format!("trust data of {gun} in {}", path.display()))
            })?,
            Err(e) => refused(e)?,
        },
        (None, None) => match Repo::open(ctx, &gun) {
            Ok(mut repo) => {
                let source = repo.source_name().to_owned();
                let trust_gun = repo.gun().clone();
                let store = repo.updater().store().clone();
                // A promoted copy (a `trust_from` pin) is asked about under the name it was
                // signed with, and answered under its own.
                let asked = rebased(&image, &trust_gun)?;
                let verdict = judge(ctx, args, &asked, repo.updater(), |e| {
                    repo::verify_error(&source, &trust_gun, &store, e)
                })?;
                renamed(verdict, &image)?
            }
            // A check that failed (or a pin it disagrees with) says more than a missing
            // root.json, which a rolled-back or emptied server would also answer.
            Err(e)
                if ctx.source != SourceKind::Registry
                    && repo::not_trusted_reason(&gun, &e).is_none()
                    && has_no_trust_data(ctx, &gun) =>
            {
                let reason = format!(
                    "{gun} has no trust data on {}, so nothing in it is signed: create it with `vouch init {gun}` (or check the image name and --server)",
                    ctx.server
                );
                return Ok(Verdict::NotTrusted(reason));
            }
            Err(e) => refused(e)?,
        },
    };
    let verdict = match verdict {
        Verdict::Trusted {
            pinned,
            role_paths,
            registry_signed,
            ..
        } if !args.no_registry => check_registry(ctx, &image, pinned, role_paths, registry_signed)?,
        v => v,
    };
    Ok(verdict)
}

/// True when the server answers that `gun` has no root at all (404): the repository was
/// never initialised there, or was deleted. Asked only after opening the repository failed,
/// so that an unreachable server or refused token keeps its own error.
fn has_no_trust_data(ctx: &Context, gun: &vouch_tuf::reference::Gun) -> bool {
    let cap = vouch_verifier::Limits::DEFAULT.root_max_bytes;
    crate::remote::Remote::new(ctx, gun)
        .is_ok_and(|r| r.fetch("root.json", cap).is_err_and(|e| e.is_not_found()))
}

/// Asks the registry whether it serves the signed digest `signed` for the image's tag (or
/// serves the signed digest at all, for a bare digest).
fn check_registry(
    ctx: &Context,
    image: &ImageRef,
    pinned: ImageRef,
    role_paths: Vec<Vec<String>>,
    signed: Digest,
) -> anyhow::Result<Verdict> {
    let reference = match (image.tag(), image.digest()) {
        (Some(tag), _) => tag.to_owned(),
        (None, Some(d)) => d.to_string(),
        (None, None) => image.tag_or_latest().to_owned(),
    };
    let shown = format!("{}:{reference}", image.name());
    let client = ctx.registries_for(image.registry())?;
    let answer = client
        .lock()
        .map_err(|_| anyhow!("the registry client failed earlier"))?
        .manifest(image, &reference);
    match answer {
        Ok(m) if m.digest == signed => Ok(Verdict::Trusted {
            pinned,
            role_paths,
            registry_signed: signed,
            registry_digest: Some(m.digest),
        }),
        Ok(m) => Ok(Verdict::NotTrusted(format!(
            "the registry's digest for {shown} ({}) is not the signed one ({signed}): the tag was pushed again after signing; sign the new image with `vouch sign`, or deploy {pinned}",
            m.digest
        ))),
        Err(RegistryError::ManifestUnknown { .. }) => Ok(Verdict::NotTrusted(format!(
            "the registry {} does not serve {shown} (404), so the signed {signed} cannot be pulled by that name: push it again, or check the image name",
            image.registry()
        ))),
        Err(e) => Err(anyhow!(e).context(format!(
            "cannot check which digest the registry serves for {shown} (pass --no-registry to verify against the trust data only)"
        ))),
    }
}

/// `image` named in the repository `gun` (same tag and digest): how a promoted copy is
/// asked about in the repository whose trust it has.
pub fn rebased(image: &ImageRef, gun: &vouch_tuf::reference::Gun) -> anyhow::Result<ImageRef> {
    if image.gun() == *gun {
        return Ok(image.clone());
    }
    let mut name = gun.to_string();
    if let Some(tag) = image.tag() {
        name.push(':');
        name.push_str(tag);
    }
    if let Some(d) = image.digest() {
        name.push('@');
        name.push_str(d.as_str());
    }
    super::parse_image(&name)
}

/// A verdict about a rebased image ([`rebased`]) said of `image`: pinned in its own
/// repository.
fn renamed(verdict: Verdict, image: &ImageRef) -> anyhow::Result<Verdict> {
    Ok(match verdict {
        Verdict::Trusted {
            pinned,
            role_paths,
            registry_signed,
            registry_digest,
        } if pinned.gun() != image.gun() => {
            let digest = pinned.digest().unwrap_or(&registry_signed);
            Verdict::Trusted {
                pinned: super::parse_image(&format!("{}@{digest}", image.name()))?,
                role_paths,
                registry_signed,
                registry_digest,
            }
        }
        v => v,
    })
}

/// Prints the verdict; a verdict of not trusted is also an error with exit status 3.
fn report(ctx: &Context, args: &Args, verdict: Verdict) -> anyhow::Result<()> {
    match verdict {
        Verdict::Trusted {
            pinned,
            role_paths,
            registry_digest,
            ..
        } => match ctx.output {
            Format::Json => output::json(&json!({
                "image": args.image,
                "trusted": true,
                "pinned": pinned.to_string(),
                "digest": pinned.digest().map(|d| d.to_string()),
                "role_path": role_paths.first().cloned().unwrap_or_default(),
                "role_paths": role_paths,
                "registry_digest": registry_digest.map(|d| d.to_string()),
            })),
            Format::Text => output::text(&pinned.to_string()),
        },
        Verdict::NotTrusted(reason) => {
            if ctx.output == Format::Json {
                output::json(&json!({
                    "image": args.image,
                    "trusted": false,
                    "reason": reason,
                }))?;
            }
            Err(Failure::NotTrusted(reason).into())
        }
    }
}

/// Answers from the trust data alone.
fn judge<T: Transport>(
    ctx: &Context,
    args: &Args,
    image: &ImageRef,
    updater: &mut Updater<T>,
    other_error: impl Fn(VerifyError) -> anyhow::Error,
) -> anyhow::Result<Verdict> {
    let gun = image.gun();
    let required = match &args.require_role {
        Some(r) => vec![required_path(r)?],
        None => Vec::new(),
    };
    // With no requirement (always so for a bare digest), every path that vouched: a digest
    // signed under several names, by several roles, has several.
    let answer = if required.is_empty() {
        updater.vouch(image)
    } else {
        updater.vouch_requiring(image, &required)
    };
    match answer {
        Ok(vouched) => {
            let role_paths: Vec<Vec<String>> = vouched
                .paths()
                .iter()
                .map(|p| p.iter().map(RoleName::to_string).collect())
                .collect();
            let role_path = role_paths.first().cloned().unwrap_or_default();
            warn_expiring(ctx, args, updater, &gun, &role_path);
            // The registry answers with a sha256 digest: compare it with the tag's signed
            // sha256 also when the image pins the tag by another algorithm's digest.
            let registry_signed = match image.tag() {
                Some(tag) if vouched.digest().algorithm() != DigestAlgorithm::Sha256 => updater
                    .lookup(tag)
                    .map_err(&other_error)?
                    .map(|t| t.digest),
                _ => None,
            }
            .unwrap_or_else(|| vouched.digest().clone());
            // The chain of delegations from targets, not a role name found anywhere on the
            // path: a delegated key holder may name its own roles as it likes. The decision
            // is `satisfies`; `unmet` only words it.
            if !vouched.satisfies(&required) {
                let why = match vouched.unmet(&required) {
                    Some(unmet) => format!(
                        "{} is signed through {}, not through the delegation path {}",
                        args.image,
                        unmet.role_path_text(),
                        unmet.required
                    ),
                    None => format!(
                        "{} is signed through no path that meets the required delegation path",
                        args.image
                    ),
                };
                return Ok(Verdict::NotTrusted(why));
            }
            Ok(Verdict::Trusted {
                pinned: vouched.pinned().clone(),
                role_paths,
                registry_signed,
                registry_digest: None,
            })
        }
        Err(
            e @ (VerifyError::UnknownTag { .. }
            | VerifyError::UntrustedDigest { .. }
            | VerifyError::Update(_)),
        ) => Ok(Verdict::NotTrusted(match (&e, image.tag(), image.digest()) {
            (VerifyError::Update(u), _, _) => {
                format!("the trust data of {gun} failed verification: {u}")
            }
            // A pin by another algorithm than any hash the tag is signed with.
            (
                VerifyError::UntrustedDigest {
                    signed: Some(signed),
                    ..
                },
                Some(tag),
                Some(pin),
            ) if signed.algorithm() != pin.algorithm() => format!(
                "tag {tag} of {gun} is signed with no {} hash, so {pin} cannot be checked against it: pin it by its signed digest {signed}",
                pin.algorithm()
            ),
            _ => format!("{e}: sign it with `vouch sign`, or deploy a signed tag"),
        })),
        Err(e) => Err(other_error(e)),
    }
}

/// Warns on stderr about each role the verification went through (root, timestamp,
/// snapshot, targets and the delegated roles on `role_path`) that expires soon
/// ([`crate::expiry`]).
fn warn_expiring<T: Transport>(
    ctx: &Context,
    args: &Args,
    updater: &Updater<T>,
    gun: &vouch_tuf::reference::Gun,
    role_path: &[String],
) {
    let Some(set) = updater.trusted() else {
        return;
    };
    let holds_snapshot_key = repo::holds_any(
        &crate::keystore::Keystore::new(&ctx.trust_dir),
        set.root().signed(),
        vouch_tuf::types::TopLevelRole::Snapshot,
    )
    .unwrap_or(false);
    let mut roles = vec!["root", "timestamp", "snapshot", "targets"];
    roles.extend(
        role_path
            .iter()
            .map(String::as_str)
            .filter(|r| *r != "targets"),
    );
    let touched = crate::expiry::touched(set, &roles, holds_snapshot_key, args.bundle.is_some());
    for w in crate::expiry::warnings(gun.as_str(), &touched, repo::now()) {
        output::warn(&w);
    }
}

/// The verdict of the notary server `server` on `image` (`verify --notary`).
fn notary_verdict(
    ctx: &Context,
    args: &Args,
    image: &ImageRef,
    server: &str,
) -> anyhow::Result<Verdict> {
    let gun = image.gun();
    let trust_dir = crate::notary::trust_dir(args.notary_trust_dir.as_deref())?;
    let state = crate::notary::starting_state(ctx, &gun, args.notary_root.as_deref(), &trust_dir)?;
    let server = crate::notary::server_transport(ctx, server, &gun)?;
    let collection = match fetch_collection(
        &server.transport,
        Layout::Server,
        &state,
        repo::now(),
        ExpiredMetadata::Refuse,
        vouch_verifier::Limits::DEFAULT,
    ) {
        Ok(c) => c,
        Err(NotaryVerifyError::Transport { what, source })
            if source.is_not_found() && what == "root.json" =>
        {
            return Ok(Verdict::NotTrusted(format!(
                "{gun} has no notary collection on {}, so nothing in it is signed (check the image name and --notary)",
                server.url
            )));
        }
        Err(NotaryVerifyError::Transport { source, .. }) => {
            let hint = server.fetch_hint(&source);
            return Err(anyhow!(
                "cannot fetch the notary collection of {gun} from {}: {source}{hint}",
                server.url
            ));
        }
        // Checked and refused: expired, badly signed, rolled back. The kept state stays.
        Err(e) => {
            return Ok(Verdict::NotTrusted(format!(
                "the notary collection of {gun} on {} failed verification: {e}",
                server.url
            )))
        }
    };
    crate::notary::save_state(ctx, &gun, &collection.state)?;
    let required = match &args.require_role {
        Some(r) => Some(super::parse_role(Some(r))?),
        None => None,
    };
    // A name without a tag or digest is its `latest` tag, as for a pull.
    let tag = match (image.tag(), image.digest()) {
        (None, Some(_)) => None,
        (tag, _) => Some(tag.unwrap_or(image.tag_or_latest())),
    };
    let (signed, found): (Digest, Vec<&NotaryTarget>) = match (tag, image.digest()) {
        (Some(tag), pin) => {
            let target = match &required {
                Some(role) => collection.lookup_preferring(tag, &[role.as_str()]),
                None => collection.lookup_preferring(tag, DOCKER_TRUST_ROLES),
            };
            let Some(target) = target else {
                let by = required
                    .as_ref()
                    .map(|r| format!(" by {r} or the roles it delegates to"))
                    .unwrap_or_default();
                return Ok(Verdict::NotTrusted(format!(
                    "tag {tag} of {gun} is not signed{by} in its notary collection on {}: sign it with `docker trust sign`, or deploy a signed tag",
                    server.url
                )));
            };
            let Some(signed) = notary_digest(target) else {
                return Ok(Verdict::NotTrusted(format!(
                    "tag {tag} of {gun} is signed in its notary collection with no sha256 hash, so no image digest"
                )));
            };
            if let Some(pin) = pin {
                if *pin != signed {
                    return Ok(Verdict::NotTrusted(format!(
                        "tag {tag} of {gun} is signed for {signed} in its notary collection, not for {pin}"
                    )));
                }
            }
            (signed, vec![target])
        }
        (None, Some(pin)) => {
            let found: Vec<&NotaryTarget> = collection
                .roles
                .iter()
                .flat_map(|r| r.targets.values())
                .filter(|t| notary_digest(t).as_ref() == Some(pin))
                .collect();
            if found.is_empty() {
                return Ok(Verdict::NotTrusted(format!(
                    "{pin} is not signed in the notary collection of {gun} on {}: sign it with `docker trust sign`, or deploy a signed image",
                    server.url
                )));
            }
            (pin.clone(), found)
        }
        (None, None) => bail!("{} names neither a tag nor a digest", args.image),
    };
    let mut role_paths: Vec<Vec<String>> = Vec::new();
    for t in found {
        let path = notary_role_path(&t.role);
        if !role_paths.contains(&path) {
            role_paths.push(path);
        }
    }
    let pinned = super::parse_image(&format!("{}@{signed}", image.name()))?;
    Ok(Verdict::Trusted {
        pinned,
        role_paths,
        registry_signed: signed,
        registry_digest: None,
    })
}

/// The roles `docker trust` resolves a tag through, in order (each with the roles it
/// delegates to).
const DOCKER_TRUST_ROLES: &[&str] = &["targets/releases", "targets"];

/// The image digest a notary target gives (its sha256), if it gives one.
fn notary_digest(t: &NotaryTarget) -> Option<Digest> {
    Digest::parse(&format!("sha256:{}", t.sha256.as_deref()?)).ok()
}

/// A notary role as the chain of roles from `targets` to it (notary names each delegated
/// role below the role that delegates to it): `targets/releases` is
/// `["targets", "targets/releases"]`.
fn notary_role_path(role: &str) -> Vec<String> {
    let mut path = Vec::new();
    let mut end = 0;
    for (i, c) in role.char_indices() {
        if c == '/' {
            path.push(role[..i].to_owned());
        }
        end = i + c.len_utf8();
    }
    path.push(role[..end].to_owned());
    path
}

/// The delegation path `--require-role ROLE` names: `releases` is targets -> targets/releases,
/// `targets/releases/prod` the chain through each of its prefixes.
fn required_path(role: &str) -> anyhow::Result<DelegationPath> {
    let name = super::parse_role(Some(role))?;
    DelegationPath::parse(name.as_str()).map_err(|e| anyhow!("--require-role {role}: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn notary_roles_are_paths_from_targets() {
        assert_eq!(notary_role_path("targets"), vec!["targets"]);
        assert_eq!(
            notary_role_path("targets/releases/prod"),
            vec!["targets", "targets/releases", "targets/releases/prod"]
        );
    }
}
