//! `vouch renew GUN`: re-signs roles before they expire (an expired root or targets role
//! makes every client refuse the repository).
//!
//! Without `--role`, renews each role this trust directory holds a key for (root, targets,
//! delegated roles, a client-held snapshot) that expires within
//! [`WARN_DAYS`](super::status::WARN_DAYS) days or has expired; with `--role`, renews the
//! roles named, whatever their expiry. A renewal bumps the version and sets a new expiry (root
//! 10 years, the others 3 years); the content is unchanged. Timestamp and a server-held
//! snapshot are re-signed by the server itself.
//!
//! The repository is loaded with expiry not enforced ([`EditingRepo::open_for_editing`]): this is
//! how an owner recovers a repository whose metadata expired. Root goes up on its own (so a later
//! step is checked against the renewed root); every other role renewed (targets, delegated roles,
//! hashed bins) goes up in one publish, with a client-held snapshot; a client-held snapshot renewed
//! alone goes up on its own.

use serde_json::json;
use vouch_tuf::types::{RoleName, TopLevelRole};

use crate::context::Context;
use crate::keystore::Keystore;
use crate::output::{self, Format};
use crate::repo::{self, EditingRepo, RoleChange};

/// `vouch renew`
///
/// Example: vouch renew registry.example.com/org/app --role targets
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image repository.
    pub gun: String,
    /// Renew this role (`root`, `targets`, `snapshot` when this trust directory holds its key,
    /// or a delegated role) now. Repeatable.
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// Propose the change for threshold signing by several people instead of publishing it:
    /// it is signed with the keys of each role held here (up to the threshold) and kept
    /// pending on the server until the other key holders run `vouch approve`.
    #[arg(long)]
    pub propose: bool,
}

/// Runs `vouch renew`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let gun = super::parse_gun(&args.gun)?;
    let mut repo = EditingRepo::open_to_submit(ctx, &gun, super::submit(args.propose))?;
    let keystore = Keystore::new(&ctx.trust_dir);
    let set = repo.with_delegations()?;
    repo.warn_expired(&set);
    let root_name = TopLevelRole::Root.name();
    let snapshot_name = TopLevelRole::Snapshot.name();
    let client_snapshot = repo::holds_any(&keystore, set.root().signed(), TopLevelRole::Snapshot)?;

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
        if let Some(s) = set.snapshot() {
            if client_snapshot && s.signed().common.expires < soon {
                out.push(snapshot_name.clone());
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
                } else if r == "snapshot" && client_snapshot {
                    Ok(snapshot_name.clone())
                } else if r == "snapshot" || r == "timestamp" {
                    anyhow::bail!(
                        "the server holds the {r} key of {gun} and re-signs {r} itself: nothing to renew here"
                    )
                } else {
                    repo.resolve_role(&super::parse_role(Some(r))?)
                }
            })
            .collect::<anyhow::Result<_>>()?
    };

    let mut renewed = Vec::new();
    let mut proposed = Vec::new();
    if chosen.contains(&root_name) {
        let published = repo.renew_root(ctx)?;
        renewed.push((root_name.clone(), published.version.get()));
        proposed.extend(published.proposal);
        repo.refresh()?;
    }
    let unchanged = |_: &mut vouch_tuf::metadata::Targets| Ok(());
    let mut others: Vec<RoleChange<'_>> = Vec::new();
    for role in &chosen {
        if *role != root_name && *role != snapshot_name && !others.iter().any(|(r, _)| r == role) {
            others.push((role.clone(), &unchanged));
        }
    }
    if !others.is_empty() {
        let published = repo.publish_changes(ctx, &others)?;
        proposed.extend(published.first().and_then(|p| p.proposal.clone()));
        for ((role, _), p) in others.iter().zip(published) {
            renewed.push((role.clone(), p.version.get()));
        }
        if chosen.contains(&snapshot_name) && proposed.is_empty() {
            // Re-signed with the roles above.
            repo.refresh()?;
            let version = repo.trusted()?.snapshot().map_or(0, |s| s.version().get());
            renewed.push((snapshot_name.clone(), version));
        }
    } else if chosen.contains(&snapshot_name) {
        let published = repo.renew_snapshot(ctx)?;
        renewed.push((snapshot_name.clone(), published.version.get()));
        proposed.extend(published.proposal);
    }
    if !proposed.is_empty() {
        return match ctx.output {
            Format::Json => output::json(&json!({
                "gun": gun.as_str(),
                "proposals": proposed.iter().map(|p| super::proposals::to_json(&gun, p)).collect::<Vec<_>>(),
            })),
            Format::Text => output::text(
                &proposed
                    .iter()
                    .map(|p| super::proposals::proposed_text(&gun, p))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        };
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
