//! `vouch renew GUN`: re-signs roles before they expire (an expired root or targets role
//! makes every client refuse the repository).
//!
//! Without `--role`, renews each role this trust directory holds a key for (root, targets,
//! delegated roles) that expires within [`WARN_DAYS`](super::status::WARN_DAYS) days; with
//! `--role`, renews the roles named, whatever their expiry. A renewal bumps the version and
//! sets a new expiry (root 10 years, targets and delegated roles 3 years); the content is
//! unchanged. Timestamp and a server-held snapshot are re-signed by the server itself.
//!
//! Root goes up on its own; every other role renewed (targets, delegated roles, hashed
//! bins) goes up in one publish.

use serde_json::json;
use vouch_tuf::types::{RoleName, TopLevelRole};

use crate::context::Context;
use crate::keystore::Keystore;
use crate::output::{self, Format};
use crate::repo::{self, Repo, RoleChange};

/// `vouch renew`
///
/// Example: vouch renew registry.example.com/org/app --role targets
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image repository.
    pub gun: String,
    /// Renew this role (`root`, `targets`, or a delegated role) now. Repeatable.
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
}

/// Runs `vouch renew`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let gun = super::parse_gun(&args.gun)?;
    let mut repo = Repo::open(ctx, &gun)?;
    let keystore = Keystore::new(&ctx.trust_dir);
    let set = repo.with_delegations()?;
    let root_name = TopLevelRole::Root.name();

    let chosen: Vec<RoleName> = if args.roles.is_empty() {
        let soon = repo::now().add_seconds(super::status::WARN_DAYS * 86_400);
        let root = set.root().signed();
        let mut out = Vec::new();
        if root.common.expires < soon && repo::holds_any(&keystore, root, TopLevelRole::Root)? {
            out.push(root_name.clone());
        }
        if let Some(t) = set.targets() {
            if t.signed().common.expires < soon
                && repo::holds_any(&keystore, root, TopLevelRole::Targets)?
            {
                out.push(TopLevelRole::Targets.name());
            }
        }
        for (name, _, md) in set.delegated_roles() {
            let held = match repo::delegation_of(&set, name) {
                Some(dr) => {
                    let mut any = false;
                    for id in &dr.keyids {
                        any |= keystore.get(id)?.is_some();
                    }
                    any
                }
                None => false,
            };
            if md.signed().common.expires < soon && held {
                out.push(name.clone());
            }
        }
        out
    } else {
        args.roles
            .iter()
            .map(|r| {
                if r == "root" {
                    Ok(root_name.clone())
                } else {
                    repo.resolve_role(&super::parse_role(Some(r))?)
                }
            })
            .collect::<anyhow::Result<_>>()?
    };

    let mut renewed = Vec::new();
    if chosen.contains(&root_name) {
        let published = repo.renew_root(ctx)?;
        renewed.push((root_name.clone(), published.version.get()));
        repo.refresh()?;
    }
    let unchanged = |_: &mut vouch_tuf::metadata::Targets| Ok(());
    let mut others: Vec<RoleChange<'_>> = Vec::new();
    for role in &chosen {
        if *role != root_name && !others.iter().any(|(r, _)| r == role) {
            others.push((role.clone(), &unchanged));
        }
    }
    if !others.is_empty() {
        let published = repo.publish_changes(ctx, &others)?;
        for ((role, _), p) in others.iter().zip(published) {
            renewed.push((role.clone(), p.version.get()));
        }
    }
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "renewed": renewed.iter().map(|(r, v)| json!({"role": r.as_str(), "version": v})).collect::<Vec<_>>(),
        })),
        Format::Text if renewed.is_empty() => output::text(&format!(
            "nothing to renew in {gun}: no role held here expires within {} days (use --role to renew one anyway)",
            super::status::WARN_DAYS
        )),
        Format::Text => {
            let mut out = String::new();
            for (r, v) in &renewed {
                out.push_str(&format!("renewed {r} of {gun} (version {v})\n"));
            }
            output::text(&out)
        }
    }
}
