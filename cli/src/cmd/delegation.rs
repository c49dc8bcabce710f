//! `vouch delegation`: delegate signing of some tags to another key (a CI key), change or
//! remove the delegation, list delegations.
//!
//! Delegations are changed in the top-level targets role, so `add` and `remove` need the
//! targets key; the delegated role's own metadata is written by its key holder on their
//! first `vouch sign --role NAME`.
//!
//! Like every command that writes a repository, these load it with expiry not enforced
//! ([`EditingRepo::open_for_editing`]) and warn about expired roles: the owner can still
//! change (and so renew) an expired targets role. `list` shows the owner's view the same way.

use std::path::Path;

use anyhow::{anyhow, bail, Context as _};
use clap::Subcommand;
use serde_json::json;
use vouch_tuf::json;
use vouch_tuf::metadata::{verify_threshold, DelegatedRole, Delegations, Key, PathScope};
use vouch_tuf::reference::Gun;
use vouch_tuf::types::{KeyId, RoleName, Threshold, TopLevelRole};

use crate::context::Context;
use crate::keystore::Keystore;
use crate::output::{self, Format};
use crate::repo::{self, EditingRepo, Published};

/// `vouch delegation …`
#[derive(Subcommand, Debug)]
pub enum DelegationCommand {
    /// Delegate tags matching --paths to --key (or add keys and paths to a delegation).
    ///
    /// Example: vouch delegation add registry.example.com/org/app releases --key ci.pub.json --paths 'v*'
    Add(AddArgs),
    /// Remove keys (--key) from a delegation, or without --key the whole delegation.
    ///
    /// Example: vouch delegation remove registry.example.com/org/app releases --key 599f06a7
    Remove(RemoveArgs),
    /// List the delegations of targets.
    ///
    /// Example: vouch delegation list registry.example.com/org/app
    List(ListArgs),
}

/// `vouch delegation add`
#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// The image repository.
    pub gun: String,
    /// The delegated role (`releases` means `targets/releases`).
    pub role: String,
    /// A public key: a file holding a TUF key object (`vouch key export KEYID --public`), or
    /// the id (or unique prefix) of a key in this trust directory. Repeatable.
    #[arg(long = "key", value_name = "FILE|KEYID")]
    pub keys: Vec<String>,
    /// Target-name patterns the role may sign (`v*`, `release-*`). Repeatable.
    #[arg(long = "paths", value_name = "PATTERN")]
    pub paths: Vec<String>,
    /// How many of the role's keys must sign [default: 1, or unchanged].
    #[arg(long)]
    pub threshold: Option<u32>,
    /// Stop the search for a tag at this role when its paths match.
    #[arg(long)]
    pub terminating: bool,
    /// Propose the change for threshold signing by several people instead of publishing it:
    /// it is signed with the keys of each role held here (up to the threshold) and kept
    /// pending on the server until the other key holders run `vouch approve`.
    #[arg(long)]
    pub propose: bool,
}

/// `vouch delegation remove`
#[derive(clap::Args, Debug)]
pub struct RemoveArgs {
    /// The image repository.
    pub gun: String,
    /// The delegated role.
    pub role: String,
    /// Remove these keys (ids or unique prefixes) from the role. Repeatable; without
    /// --key the whole delegation is removed (the tags it signed stop verifying).
    #[arg(long = "key", value_name = "KEYID")]
    pub keys: Vec<String>,
    /// Propose the change for threshold signing by several people instead of publishing it:
    /// it is signed with the keys of each role held here (up to the threshold) and kept
    /// pending on the server until the other key holders run `vouch approve`.
    #[arg(long)]
    pub propose: bool,
}

/// `vouch delegation list`
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// The image repository.
    pub gun: String,
}

fn delegated_name(role: &str) -> anyhow::Result<RoleName> {
    let name = super::parse_role(Some(role))?;
    if name.top_level().is_some() {
        bail!("{role} is the top-level targets role: name a delegated role, e.g. releases");
    }
    Ok(name)
}

fn resolve_key(keystore: &Keystore, given: &str) -> anyhow::Result<Key> {
    let path = Path::new(given);
    if path.is_file() {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let v = json::parse(&bytes)
            .map_err(|e| anyhow!("{} is not a TUF key object: {e}", path.display()))?;
        return Key::from_value(v)
            .with_context(|| format!("{} is not a TUF key object", path.display()));
    }
    let e = keystore
        .find(given)
        .with_context(|| format!("--key {given}: neither a public-key file nor a stored key"))?;
    e.public.ok_or_else(|| {
        anyhow!(
            "{} does not record its public key: export it with `vouch key export --public` from a key file that does",
            e.path.display()
        )
    })
}

/// Runs `vouch delegation …`.
pub fn run(ctx: &Context, cmd: DelegationCommand) -> anyhow::Result<()> {
    let keystore = Keystore::new(&ctx.trust_dir);
    let targets = TopLevelRole::Targets.name();
    match cmd {
        DelegationCommand::Add(a) => {
            let gun = super::parse_gun(&a.gun)?;
            let name = delegated_name(&a.role)?;
            let keys = a
                .keys
                .iter()
                .map(|k| resolve_key(&keystore, k))
                .collect::<anyhow::Result<Vec<Key>>>()?;
            let threshold = a
                .threshold
                .map(|t| Threshold::new(t).map_err(|e| anyhow!("--threshold {t}: {e}")))
                .transpose()?;
            let change = Delegate {
                name: name.clone(),
                keys,
                paths: a.paths,
                threshold,
                terminating: a.terminating,
            };
            let published = add_as(ctx, &gun, &change, super::submit(a.propose))?;
            report(ctx, "delegated", &gun, &name, &published)
        }
        DelegationCommand::Remove(a) => {
            let gun = super::parse_gun(&a.gun)?;
            let name = delegated_name(&a.role)?;
            let mut repo = EditingRepo::open_to_submit(ctx, &gun, super::submit(a.propose))?;
            repo.warn_expired(repo.trusted()?);
            if !a.keys.is_empty() {
                check_still_signed(&repo, &name, &a.keys)?;
            }
            let published = repo.publish_change(ctx, &targets, &|t| {
                let Some(d) = t.delegations.as_mut() else {
                    bail!("{gun} has no delegation {name}");
                };
                let Some(i) = d.roles.iter().position(|r| r.name == name) else {
                    bail!("{gun} has no delegation {name} (see `vouch delegation list {gun}`)");
                };
                if a.keys.is_empty() {
                    // The whole delegation. The snapshot keeps listing the role's last
                    // metadata (the server keeps it, and a client-held snapshot is built on
                    // the previous one), so clients that saw the role accept the next
                    // snapshot; no role delegates to it, so nothing it signed is trusted.
                    d.roles.remove(i);
                } else {
                    let role = &mut d.roles[i];
                    for prefix in &a.keys {
                        let before = role.keyids.len();
                        role.keyids.retain(|k| !k.as_str().starts_with(prefix.as_str()));
                        if role.keyids.len() == before {
                            bail!("{name} has no key {prefix}");
                        }
                    }
                    if role.keyids.is_empty() {
                        bail!("that would leave {name} without keys: add the new key first, or remove the whole delegation");
                    }
                    if role.threshold.get() as usize > role.keyids.len() {
                        bail!("that would leave {name} with fewer keys than its threshold {}", role.threshold.get());
                    }
                }
                d.retain_used_keys();
                if d.roles.is_empty() {
                    t.delegations = None;
                }
                Ok(())
            })?;
            let what = if a.keys.is_empty() {
                "removed"
            } else {
                "changed"
            };
            report(ctx, what, &gun, &name, &published)
        }
        DelegationCommand::List(a) => {
            let gun = super::parse_gun(&a.gun)?;
            let repo = EditingRepo::open_for_editing(ctx, &gun)?;
            let set = repo.with_delegations()?;
            repo.warn_expired(&set);
            let mut rows = Vec::new();
            let parents = set
                .targets()
                .map(|t| (targets.clone(), t))
                .into_iter()
                .chain(set.delegated_roles().map(|(n, _, t)| (n.clone(), t)));
            for (parent, md) in parents {
                if let Some(d) = &md.signed().delegations {
                    for r in &d.roles {
                        rows.push((parent.clone(), r.clone()));
                    }
                }
            }
            match ctx.output {
                Format::Json => output::json(&json!({
                    "gun": gun.as_str(),
                    "delegations": rows.iter().map(|(parent, r)| {
                        let (paths, prefixes) = match &r.scope {
                            PathScope::Paths(p) => (Some(p.clone()), None),
                            PathScope::HashPrefixes(p) => (None, Some(p.clone())),
                            PathScope::Nothing => (None, None),
                        };
                        json!({
                            "role": r.name.as_str(),
                            "delegated_by": parent.as_str(),
                            "keyids": r.keyids.iter().map(KeyId::as_str).collect::<Vec<_>>(),
                            "threshold": r.threshold.get(),
                            "paths": paths,
                            "path_hash_prefixes": prefixes,
                            "terminating": r.terminating,
                        })
                    }).collect::<Vec<_>>(),
                })),
                Format::Text => {
                    let table: Vec<Vec<String>> = rows
                        .iter()
                        .map(|(parent, r)| {
                            vec![
                                r.name.to_string(),
                                repo::describe_scope(r),
                                r.threshold.get().to_string(),
                                r.keyids
                                    .iter()
                                    .map(|k| k.as_str()[..12].to_owned())
                                    .collect::<Vec<_>>()
                                    .join(","),
                                parent.to_string(),
                            ]
                        })
                        .collect();
                    output::text(&output::table(
                        &["ROLE", "SCOPE", "THRESHOLD", "KEYS", "DELEGATED BY"],
                        &table,
                    ))
                }
            }
        }
    }
}

/// Refuses to remove `removed` keys from `role` when its current metadata would then lack
/// a threshold of signatures: its holders must re-sign first (the server would refuse too).
fn check_still_signed(
    repo: &EditingRepo,
    role: &RoleName,
    removed: &[String],
) -> anyhow::Result<()> {
    let set = repo.with_delegations()?;
    let (Some(dr), Some(current)) = (
        repo::delegation_of(&set, role),
        set.targets_role(role.as_str()),
    ) else {
        return Ok(());
    };
    let keys = repo::delegation_keys(&set, role);
    let remaining: Vec<KeyId> = dr
        .keyids
        .iter()
        .filter(|k| !removed.iter().any(|p| k.as_str().starts_with(p.as_str())))
        .cloned()
        .collect();
    let md = current.metadata();
    if remaining.is_empty()
        || verify_threshold(
            role.as_str(),
            md.canonical_signed(),
            md.signatures(),
            &keys,
            &remaining,
            dr.threshold,
        )
        .is_ok()
    {
        return Ok(());
    }
    bail!(
        "{role} (version {}) is signed only by keys being removed: have the holder of a remaining key run `vouch renew {} --role {role}` first, then remove the old key",
        current.version(),
        repo.gun()
    )
}

fn report(
    ctx: &Context,
    what: &str,
    gun: &vouch_tuf::reference::Gun,
    role: &RoleName,
    published: &Published,
) -> anyhow::Result<()> {
    if let Some(p) = &published.proposal {
        return super::proposals::proposed(ctx, gun, p);
    }
    let version = published.version.get();
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "role": role.as_str(),
            "targets_version": version,
        })),
        Format::Text => output::text(&format!(
            "{what} {role} of {gun} (targets version {version})"
        )),
    }
}

/// A delegation to add, or keys and paths to add to one (`vouch delegation add`).
#[derive(Debug)]
pub struct Delegate {
    /// The delegated role.
    pub name: RoleName,
    /// Keys to list for it.
    pub keys: Vec<Key>,
    /// Target-name patterns to add.
    pub paths: Vec<String>,
    /// A new threshold, if any.
    pub threshold: Option<Threshold>,
    /// Whether to make it terminating.
    pub terminating: bool,
}

/// Adds `change` to the delegations of `gun`'s targets and publishes it.
pub fn add(ctx: &Context, gun: &Gun, change: &Delegate) -> anyhow::Result<Published> {
    add_as(ctx, gun, change, crate::repo::Submit::Publish)
}

/// Adds `change` to the delegations of `gun`'s targets and publishes or proposes it, as
/// `submit` says.
pub fn add_as(
    ctx: &Context,
    gun: &Gun,
    change: &Delegate,
    submit: crate::repo::Submit,
) -> anyhow::Result<Published> {
    let targets = TopLevelRole::Targets.name();
    let name = &change.name;
    let mut repo = EditingRepo::open_to_submit(ctx, gun, submit)?;
    repo.warn_expired(repo.trusted()?);
    let was_listed = repo::listed(repo.trusted()?, name);
    let published = repo.publish_change(ctx, &targets, &|t| {
        let d = t.delegations.get_or_insert_with(Delegations::default);
        let existing = d.roles.iter().position(|r| r.name == *name);
        if existing.is_none() && was_listed {
            // The snapshot keeps listing a removed role's last metadata (clients
            // refuse a snapshot that drops a role), and that metadata is signed by
            // the old keys: under a new delegation of the same name it would not
            // verify, and nobody could sign the role again.
            bail!(
                "{name} was delegated before and its old metadata is still published: \
                 delegate under another name"
            );
        }
        if existing.is_none() && d.roles.iter().any(repo::is_bin) {
            // Every name hashes to exactly one bin, and bins are terminating: a
            // search never gets past them to a delegation listed after them.
            bail!(
                "{gun} delegates every tag to hashed bins (terminating): a search would never reach {name}, so it is not added"
            );
        }
        if existing.is_none() && change.keys.is_empty() {
            bail!("a new delegation needs at least one --key");
        }
        if existing.is_none() && change.paths.is_empty() {
            bail!("a new delegation needs at least one --paths pattern");
        }
        let ids: Vec<KeyId> = change
        .keys
            .iter()
            .map(|k| {
                let id = k.key_id();
                d.keys.insert(id.clone(), k.clone());
                id
            })
            .collect();
        let role = match existing {
            Some(i) => &mut d.roles[i],
            None => {
                d.roles.push(DelegatedRole::with_paths(
                    name.clone(),
                    Vec::new(),
                    Vec::new(),
                ));
                let last = d.roles.len() - 1;
                &mut d.roles[last]
            }
        };
        for id in ids {
            if !role.keyids.contains(&id) {
                role.keyids.push(id);
            }
        }
        if !change.paths.is_empty() {
            match &mut role.scope {
                PathScope::Paths(p) => {
                    for path in &change.paths {
                        if !p.contains(path) {
                            p.push(path.clone());
                        }
                    }
                }
                _ => role.scope = PathScope::Paths(change.paths.clone()),
            }
        }
        if let Some(th) = change.threshold {
            role.threshold = th;
        }
        if change.terminating {
            role.terminating = true;
        }
        if role.threshold.get() as usize > role.keyids.len() {
            bail!(
                "threshold {} is more than the {} key(s) of {name}",
                role.threshold.get(),
                role.keyids.len()
            );
        }
        Ok(())
    })?;
    Ok(published)
}
