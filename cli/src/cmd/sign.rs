//! `vouch sign`: adds tags (or bare digests) to repositories' targets and publishes them.
//!
//! What is signed comes from the command line (`--digest` and `--length`) or from the image's
//! registry ([`crate::registry`]: the manifest digest, size and media type the registry
//! serves for the tag now). Several images may be given: all are resolved first (so a
//! missing image changes nothing), then each repository (GUN) gets one publish carrying all
//! of its images, with a progress line on a terminal.
//!
//! Each change is applied to freshly verified metadata, signed with the targets (or
//! delegated role's) key and published in one update; when someone else publishes first
//! (409), it is re-applied to the newer metadata and retried. Nothing is staged locally, so a
//! refused sign leaves nothing behind.
//!
//! Without `--role`, a trust directory that holds no key of the role a tag goes to but holds
//! keys of roles the repository delegates is told which, and to pass `--role` (a delegated
//! signer who forgot it), before any passphrase is asked.
//!
//! In a repository whose targets delegates to hashed bins (`vouch init --hashed-bins`), a
//! sign without `--role` puts each tag in the bin its name hashes to, and fetches and
//! re-signs only those bins (one publish for all of them).
//!
//! Expired metadata: the repository is loaded with expiry not enforced
//! ([`EditingRepo::open_for_editing`]), and expired roles draw a warning. Signing re-signs the
//! roles it writes (with a new expiry) and the server re-signs timestamp and a server-held
//! snapshot, so an expired targets role is renewed by signing into it. A sign that would leave an
//! expired role above the signed ones (root; targets, for tags signed into a delegated role; a
//! delegating role) is refused, naming the role and `vouch renew`: clients would still refuse the
//! repository, and root is renewed by the holder of the root key, not in passing by a signer.

use anyhow::{anyhow, bail, Context as _};
use serde_json::json;
use vouch_tuf::json::{self, Value};
use vouch_tuf::metadata::{TargetFile, Targets};
use vouch_tuf::reference::{Digest, Gun, ImageRef};
use vouch_tuf::types::{RoleName, TargetName, TopLevelRole};

use crate::context::Context;
use crate::keystore::Keystore;
use crate::output::{self, Format};
use crate::progress::Progress;
use crate::repo::{self, EditingRepo, Published, RoleChange};

/// `vouch sign`
///
/// Examples:
///   vouch sign registry.example.com/org/app:v1
///   vouch sign registry.example.com/org/app:v1 registry.example.com/org/app:v1.0 other.example/x:v3
///   vouch sign registry.example.com/org/app:v1 --digest sha256:… --length 1234
///   vouch sign registry.example.com/org/app@sha256:… --length 1234
#[derive(clap::Args, Debug)]
pub struct Args {
    /// IMAGE as HOST/ORG/APP:TAG (resolved from the registry, or given with --digest and
    /// --length), or HOST/ORG/APP@sha256:HEX to sign a bare digest. Several may be given.
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
    /// The manifest digest the tag points to (one IMAGE only; skips the registry).
    #[arg(long, value_name = "sha256:HEX")]
    pub digest: Option<String>,
    /// The manifest's size in bytes (one IMAGE only).
    #[arg(long, value_name = "BYTES")]
    pub length: Option<u64>,
    /// The manifest's media type, kept in the target's custom data (one IMAGE only; by
    /// default the registry's).
    #[arg(long, value_name = "TYPE")]
    pub media_type: Option<String>,
    /// A JSON object of annotations kept in the custom data of every target signed.
    #[arg(long, value_name = "JSON")]
    pub custom: Option<String>,
    /// Sign through this delegated role (`releases` means `targets/releases`; a hashed bin
    /// by its name, `bins-3`) with its key, instead of targets (or, in a repository with
    /// hashed bins, the bin each tag hashes to).
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// Propose the change for threshold signing by several people instead of publishing it:
    /// it is signed with the keys of each role held here (up to the threshold) and kept
    /// pending on the server until the other key holders run `vouch approve`.
    #[arg(long)]
    pub propose: bool,
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

/// How the digest and size of one image are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Given on the command line.
    Given {
        /// The digest.
        digest: Digest,
        /// The size.
        length: u64,
    },
    /// Asked of the registry, for this reference (a tag, or a digest to learn its size).
    Registry {
        /// Tag or digest.
        reference: String,
    },
}

/// One image to sign, before its digest is known.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The image as given.
    pub given: String,
    /// The parsed image.
    pub image: ImageRef,
    /// Where its digest comes from.
    pub source: Source,
}

/// Validates the arguments into one [`Plan`] per image, without any network access.
pub fn plans(args: &Args) -> anyhow::Result<Vec<Plan>> {
    if args.images.len() > 1 {
        for (set, flag) in [
            (args.digest.is_some(), "--digest"),
            (args.length.is_some(), "--length"),
            (args.media_type.is_some(), "--media-type"),
        ] {
            if set {
                bail!("{flag} applies to one image, and {} were given: sign them one by one, or let vouch ask the registry", args.images.len());
            }
        }
    }
    let given_digest = args
        .digest
        .as_deref()
        .map(|d| Digest::parse(d).with_context(|| format!("invalid --digest {d:?}")))
        .transpose()?;
    let mut out = Vec::with_capacity(args.images.len());
    for given in &args.images {
        let image = super::parse_image(given)?;
        let digest = match (image.digest(), &given_digest) {
            (Some(a), Some(b)) if a != b => bail!("{given} and --digest {b} disagree"),
            (Some(a), _) => Some(a.clone()),
            (None, b) => b.clone(),
        };
        if image.tag().is_none() && digest.is_none() {
            bail!("{given} names no tag: sign HOST/ORG/APP:TAG, or HOST/ORG/APP@sha256:HEX for a bare digest");
        }
        let source = match (digest, args.length) {
            (Some(digest), Some(length)) => Source::Given { digest, length },
            (None, Some(_)) => bail!("--length needs --digest (or drop both to ask the registry)"),
            // `--digest` without `--length` on a tag: the size must come with it.
            (Some(_), None) if args.digest.is_some() => {
                bail!("--digest needs --length (or drop both to ask the registry)")
            }
            // A pinned reference: the registry tells the size of that very digest.
            (Some(digest), None) => Source::Registry {
                reference: digest.to_string(),
            },
            (None, None) => Source::Registry {
                reference: image.tag_or_latest().to_owned(),
            },
        };
        out.push(Plan {
            given: given.clone(),
            image,
            source,
        });
    }
    Ok(out)
}

/// Turns a plan into a change, given the digest, size and media type found for it.
pub fn change(
    args: &Args,
    plan: &Plan,
    digest: Digest,
    length: u64,
    media_type: Option<&str>,
) -> anyhow::Result<Change> {
    let name = match plan.image.tag() {
        Some(tag) => tag.to_owned(),
        None => digest.to_string(),
    };
    let name =
        TargetName::new(name.clone()).map_err(|e| anyhow!("invalid target name {name:?}: {e}"))?;
    let mut target = TargetFile::image(&digest, length, None);
    let media_type = args.media_type.as_deref().or(media_type);
    target.custom = custom_value(media_type, args.custom.as_deref())?;
    Ok(Change {
        image: plan.image.clone(),
        name,
        digest,
        target,
    })
}

/// Resolves every plan (asking registries as needed) into changes, grouped by GUN in the
/// order the GUNs first appear.
fn resolve(ctx: &Context, args: &Args, plans: &[Plan]) -> anyhow::Result<Vec<(Gun, Vec<Change>)>> {
    // Validate --custom before any network access.
    custom_value(None, args.custom.as_deref())?;
    let mut progress = Progress::new("resolving", plans.len());
    let mut groups: Vec<(Gun, Vec<Change>)> = Vec::new();
    for plan in plans {
        progress.working_on(&plan.given);
        let c = match &plan.source {
            Source::Given { digest, length } => change(args, plan, digest.clone(), *length, None)?,
            Source::Registry { reference } => {
                let client = ctx.registries_for(plan.image.registry())?;
                let mut regs = client
                    .lock()
                    .map_err(|_| anyhow!("the registry client failed earlier"))?;
                let m = regs.manifest(&plan.image, reference).map_err(|e| {
                    anyhow!(e).context(format!(
                        "cannot resolve {} from its registry (or pass --digest and --length)",
                        plan.given
                    ))
                })?;
                change(args, plan, m.digest, m.length, m.media_type.as_deref())?
            }
        };
        progress.finished_one();
        let gun = c.image.gun();
        let i = match groups.iter().position(|(g, _)| *g == gun) {
            Some(i) => i,
            None => {
                groups.push((gun, Vec::new()));
                groups.len() - 1
            }
        };
        let group = &mut groups[i].1;
        match group.iter().find(|o| o.name == c.name) {
            Some(o) if o.digest != c.digest => bail!(
                "{}:{} is given twice, for {} and {}: nothing was signed",
                c.image.gun(),
                c.name,
                o.digest,
                c.digest
            ),
            Some(_) => {}
            None => group.push(c),
        }
    }
    Ok(groups)
}

fn signed_json(
    gun: &Gun,
    c: &Change,
    role: &str,
    version: u64,
    attempts: u32,
) -> serde_json::Value {
    json!({
        "gun": gun.as_str(),
        "target": c.name.as_str(),
        "digest": c.digest.as_str(),
        "length": c.target.length,
        "media_type": c.target.media_type(),
        "role": role,
        "version": version,
        "attempts": attempts,
    })
}

/// The role each change goes to: `given` (`--role`, as this repository names it), else the
/// hashed bin its name hashes to, else top-level targets.
pub fn route(
    repo: &EditingRepo,
    given: Option<&RoleName>,
    names: &[&str],
) -> anyhow::Result<Vec<RoleName>> {
    let given = given.map(|r| repo.resolve_role(r)).transpose()?;
    names
        .iter()
        .map(|name| match &given {
            Some(r) => Ok(r.clone()),
            None => Ok(repo
                .bin_for(name)?
                .unwrap_or_else(|| TopLevelRole::Targets.name())),
        })
        .collect()
}

/// Warns about expired roles, and refuses when one that clients need to reach the tags signed
/// into `roles` has expired and is not among them (root, targets, the delegating roles
/// above them): publishing would not renew it, so the signature would not verify.
///
/// Roles that targets delegates to directly need only the top-level metadata checked (nothing
/// is fetched); nested roles load the delegation tree, as their publish does.
fn refuse_if_still_expired(repo: &EditingRepo, roles: &[RoleName]) -> anyhow::Result<()> {
    let top = repo.trusted()?;
    let direct = crate::repo::delegated_directly(top, roles);
    let all_top_level = roles.iter().all(|r| r.top_level().is_some());
    let loaded;
    let set = if all_top_level || direct {
        top
    } else {
        loaded = repo.with_roles(roles)?;
        &loaded
    };
    let expired = set.expired();
    if expired.is_empty() {
        return Ok(());
    }
    repo.warn_expired(set);
    let mut needed = vec![TopLevelRole::Root.name()];
    for role in roles {
        if role.top_level().is_none() {
            needed.push(TopLevelRole::Targets.name());
        }
        let mut current = role.clone();
        while let Some(parent) = set.delegating_role(current.as_str()) {
            needed.push(parent.clone());
            current = parent.clone();
        }
    }
    let now = crate::repo::now();
    let blocking: Vec<String> = expired
        .iter()
        .filter(|(role, _)| needed.contains(role) && !roles.contains(role))
        .map(|(role, at)| format!("{role} {} ({at})", crate::repo::expired_ago(*at, now)))
        .collect();
    if blocking.is_empty() {
        return Ok(());
    }
    let gun = repo.gun();
    let renew: Vec<String> = expired
        .iter()
        .filter(|(role, _)| needed.contains(role) && !roles.contains(role))
        .map(|(role, _)| format!("--role {role}"))
        .collect();
    let (it, its) = if blocking.len() == 1 {
        ("it", "its key")
    } else {
        ("them", "their keys")
    };
    bail!(
        "not signing into {gun}: {} and signing does not renew {it}, so clients would still refuse the signature: renew {it} first with `vouch renew {gun} {}` (in the trust directory holding {its}); nothing was published",
        blocking.join(", "),
        renew.join(" ")
    )
}

/// Fails, naming the delegated roles whose keys this trust directory holds, when it holds no
/// key of one of `roles` (where tags go without `--role`) but holds keys of delegated roles
/// of the repository: the signer most likely forgot `--role`. Otherwise does nothing (and a
/// missing key is reported when signing, as always).
fn suggest_role(ctx: &Context, repo: &EditingRepo, roles: &[RoleName]) -> anyhow::Result<()> {
    let held: Vec<vouch_tuf::types::KeyId> = Keystore::new(&ctx.trust_dir)
        .list()?
        .into_iter()
        .map(|e| e.keyid)
        .collect();
    let set = repo.trusted()?;
    let delegations = set.targets().and_then(|t| t.signed().delegations.as_ref());
    for role in roles {
        let keyids = match role.top_level() {
            Some(top) => set.root().signed().role_keys(top).keyids.clone(),
            None => delegations
                .and_then(|d| d.role(role.as_str()))
                .map(|r| r.keyids.clone())
                .unwrap_or_default(),
        };
        if keyids.iter().any(|id| held.contains(id)) {
            continue;
        }
        let mine: Vec<&str> = delegations
            .map(|d| {
                d.roles
                    .iter()
                    .filter(|r| !repo::is_bin(r) && r.keyids.iter().any(|id| held.contains(id)))
                    .map(|r| r.name.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let Some(first) = mine.first() else {
            continue;
        };
        let short = first.strip_prefix("targets/").unwrap_or(first);
        bail!(
            "{} holds no {role} key of {}, but holds keys for its delegated role{} {}: sign with --role {short}",
            Keystore::new(&ctx.trust_dir).dir().display(),
            repo.gun(),
            if mine.len() > 1 { "s" } else { "" },
            mine.join(", ")
        );
    }
    Ok(())
}

/// After a publish into `signed`: warns on stderr about root, and targets unless it was
/// just re-signed, when they expire soon ([`crate::expiry`]). The roles just signed were
/// renewed by the publish, and the server re-signed timestamp and snapshot.
fn warn_expiring(repo: &EditingRepo, signed: &[RoleName]) -> anyhow::Result<()> {
    let set = repo.trusted()?;
    let roles: Vec<&str> = ["root", "targets"]
        .into_iter()
        .filter(|r| !signed.iter().any(|s| s.as_str() == *r))
        .collect();
    let touched = crate::expiry::touched(set, &roles, false, false);
    for w in crate::expiry::warnings(repo.gun().as_str(), &touched, repo::now()) {
        output::warn(&w);
    }
    Ok(())
}

/// Signs `changes` into `repo` in one publish, each in the role [`route`] gives it; returns
/// the role and publish of each change, in order.
pub fn sign_group(
    ctx: &Context,
    repo: &mut EditingRepo,
    given: Option<&RoleName>,
    changes: &[Change],
) -> anyhow::Result<Vec<(RoleName, Published)>> {
    let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
    let routed = route(repo, given, &names)?;
    let mut roles: Vec<RoleName> = Vec::new();
    for r in &routed {
        if !roles.contains(r) {
            roles.push(r.clone());
        }
    }
    if given.is_none() {
        suggest_role(ctx, repo, &roles)?;
    }
    refuse_if_still_expired(repo, &roles)?;
    type Apply<'c> = Box<dyn Fn(&mut Targets) -> anyhow::Result<()> + 'c>;
    let appliers: Vec<Apply<'_>> = roles
        .iter()
        .map(|role| {
            let mine: Vec<&Change> = changes
                .iter()
                .zip(&routed)
                .filter(|(_, r)| *r == role)
                .map(|(c, _)| c)
                .collect();
            Box::new(move |targets: &mut Targets| {
                for c in &mine {
                    targets.add_target(c.name.clone(), c.target.clone());
                }
                Ok(())
            }) as Apply<'_>
        })
        .collect();
    let list: Vec<RoleChange<'_>> = roles
        .iter()
        .zip(&appliers)
        .map(|(r, f)| {
            (
                r.clone(),
                f.as_ref() as &dyn Fn(&mut Targets) -> anyhow::Result<()>,
            )
        })
        .collect();
    let published = repo.publish_changes(ctx, &list)?;
    warn_expiring(repo, &roles)?;
    routed
        .into_iter()
        .map(|r| {
            let p = roles
                .iter()
                .position(|x| *x == r)
                .and_then(|i| published.get(i))
                .cloned()
                .ok_or_else(|| anyhow!("no publish recorded for {r}"))?;
            Ok((r, p))
        })
        .collect()
}

/// Runs `vouch sign`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let plans = plans(&args)?;
    let given = match args.role.as_deref() {
        Some(r) => Some(super::parse_role(Some(r))?),
        None => None,
    };
    let groups = resolve(ctx, &args, &plans)?;
    let single = plans.len() == 1;
    let mut signed: Vec<serde_json::Value> = Vec::new();
    let mut done: Vec<String> = Vec::new();
    let mut progress = Progress::new("signing", groups.len());
    for (gun, changes) in &groups {
        progress.working_on(gun.as_str());
        let published = EditingRepo::open_to_submit(ctx, gun, super::submit(args.propose))
            .and_then(|mut repo| sign_group(ctx, &mut repo, given.as_ref(), changes))
            .map_err(|e| {
                if done.is_empty() {
                    e
                } else {
                    e.context(format!(
                        "signed {} before this failure; not signed: {gun} and the repositories after it",
                        done.join(", ")
                    ))
                }
            })?;
        progress.finished_one();
        done.push(gun.to_string());
        if let Some(p) = published.first().and_then(|(_, p)| p.proposal.as_ref()) {
            match ctx.output {
                Format::Json => signed.push(super::proposals::to_json(gun, p)),
                Format::Text => output::text(&super::proposals::proposed_text(gun, p))?,
            }
            continue;
        }
        for (c, (role, published)) in changes.iter().zip(&published) {
            match ctx.output {
                Format::Json => signed.push(signed_json(
                    gun,
                    c,
                    role.as_str(),
                    published.version.get(),
                    published.attempts,
                )),
                Format::Text => output::text(&format!(
                    "signed {gun}:{} -> {gun}@{} ({role} version {})",
                    c.name,
                    c.digest,
                    published.version.get()
                ))?,
            }
        }
    }
    drop(progress);
    match ctx.output {
        Format::Json if single => output::json(signed.first().unwrap_or(&serde_json::Value::Null)),
        Format::Json => output::json(&json!({ "signed": signed })),
        Format::Text => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(images: &[&str], digest: Option<&str>, length: Option<u64>) -> Args {
        Args {
            images: images.iter().map(|s| s.to_string()).collect(),
            digest: digest.map(Into::into),
            length,
            media_type: None,
            custom: Some(r#"{"sbom":"sha256:00"}"#.into()),
            role: None,
            propose: false,
        }
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn given(p: &Plan) -> (Digest, u64) {
        match &p.source {
            Source::Given { digest, length } => (digest.clone(), *length),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tag_and_bare_digest_changes() {
        let mut a = args(&["example.com/org/app:v1"], Some(D), Some(7));
        a.media_type = Some("application/vnd.oci.image.manifest.v1+json".into());
        let p = plans(&a).unwrap().remove(0);
        let (d, l) = given(&p);
        let c = change(&a, &p, d, l, Some("ignored/because-given")).unwrap();
        assert_eq!(c.name.as_str(), "v1");
        assert_eq!(c.target.length, 7);
        assert_eq!(
            c.target.media_type(),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
        let a = args(&[&format!("example.com/org/app@{D}")], None, Some(7));
        let p = plans(&a).unwrap().remove(0);
        let (d, l) = given(&p);
        let c = change(&a, &p, d, l, None).unwrap();
        assert_eq!(c.name.as_str(), D);
    }

    #[test]
    fn tags_without_a_digest_go_to_the_registry() {
        let a = args(
            &["127.0.0.1:5000/app:v1", "example.com/org/app@"],
            None,
            None,
        );
        assert!(
            plans(&a).is_err(),
            "a malformed image fails before any network access"
        );
        let a = args(
            &["127.0.0.1:5000/app:v1", &format!("example.com/org/app@{D}")],
            None,
            None,
        );
        let p = plans(&a).unwrap();
        assert_eq!(
            p[0].source,
            Source::Registry {
                reference: "v1".into()
            }
        );
        assert_eq!(p[0].image.registry(), "127.0.0.1:5000");
        assert_eq!(p[0].image.repository(), "app");
        // A pinned digest without --length: the registry gives that digest's size.
        assert_eq!(
            p[1].source,
            Source::Registry {
                reference: D.into()
            }
        );
        let c = change(
            &a,
            &p[0],
            Digest::parse(D).unwrap(),
            9,
            Some("application/x"),
        )
        .unwrap();
        assert_eq!(c.target.media_type(), Some("application/x"));
    }

    #[test]
    fn inconsistent_flags_are_refused_plainly() {
        for (a, needle) in [
            (
                args(&["example.com/org/app:v1"], Some(D), None),
                "--digest needs --length",
            ),
            (
                args(&["example.com/org/app:v1"], None, Some(1)),
                "--length needs --digest",
            ),
            (args(&["example.com/org/app"], None, None), "names no tag"),
            (
                args(
                    &["example.com/org/app:v1", "example.com/org/app:v2"],
                    Some(D),
                    Some(1),
                ),
                "applies to one image",
            ),
        ] {
            let e = plans(&a).unwrap_err().to_string();
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
        let mut a = args(&["example.com/org/app:v1"], Some(D), Some(1));
        a.custom = Some("[1]".into());
        let p = plans(&a).unwrap().remove(0);
        assert!(change(&a, &p, Digest::parse(D).unwrap(), 1, None).is_err());
    }
}
