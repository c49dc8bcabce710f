//! `vouch rotate GUN ROLE…`: replaces the keys of top-level roles; several roles named go
//! into one new root (and one update).
//!
//! - `root`: new root keys (as many as the role's threshold); the new root is signed by a
//!   threshold of the old root keys and by the new keys (cross-signed), so clients that trust
//!   the old root walk to it.
//! - `targets`: new targets keys (as many as the threshold); the new root and targets
//!   re-signed with the new keys go up in one update. Hashed bins signed by the targets keys
//!   (`vouch init --hashed-bins`) move to the new keys too: targets delegates them to the
//!   new keys, and every bin, re-signed with them, goes up in the same update.
//! - `snapshot`, `timestamp`: when the server holds the key, it makes a new one (its `.key`
//!   endpoint) and the new root lists it; a client-held snapshot key is replaced by a new
//!   local key and the snapshot is re-signed in the same update.
//!
//! The repository is loaded with expiry not enforced ([`EditingRepo::open_for_editing`]), so keys
//! can be rotated in a repository whose metadata expired (the roles re-signed get a new expiry;
//! `vouch renew` renews the others).
//!
//! Delegated roles change keys with `vouch delegation add` / `remove`. New local keys are
//! deleted again if the server refuses the update; old key files are kept (remove them with
//! care once no metadata needs them).
//!
//! With `--propose` the update is proposed for the other key holders to approve (`vouch
//! approve`) rather than published: root is signed by the root keys held here (however few),
//! and rotating root replaces only the root keys held here, one new key for each, so that
//! every other key holder keeps their key and can approve. The new keys are kept: they sign
//! once the proposal is published.

use anyhow::{anyhow, bail, Context as _};
use serde_json::json;
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use vouch_tuf::metadata::{Key, Metadata, Role, Snapshot};
use vouch_tuf::types::{KeyId, TopLevelRole};

use crate::context::Context;
use crate::keystore::{self, Keystore, NewKeys};
use crate::output::{self, Format};
use crate::remote::PublishError;
use crate::repo::{self, EditingRepo, Submit};
use vouch_tuf::api::proposal::ProposalStatus;

/// `vouch rotate`
///
/// Example: vouch rotate registry.example.com/org/app targets
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image repository.
    pub gun: String,
    /// root, targets, snapshot or timestamp; several go into one new root (e.g. `root
    /// targets`).
    #[arg(value_name = "ROLE", required = true)]
    pub roles: Vec<String>,
    /// Propose the rotation for threshold signing by several people instead of publishing
    /// it: root is signed with the root keys held here, and the other key holders run
    /// `vouch approve`. Rotating root then replaces only the root keys held here.
    #[arg(long)]
    pub propose: bool,
}

/// One role's keys being replaced.
struct Rotation {
    role: TopLevelRole,
    /// The key ids taken out of the role.
    old_ids: Vec<KeyId>,
    /// New private keys made here (none for a server-held key).
    new_private: Vec<PrivateKey>,
    /// The new public keys the new root lists for the role.
    new_public: Vec<Key>,
}

impl Rotation {
    fn new_ids(&self) -> Vec<KeyId> {
        self.new_public.iter().map(Key::key_id).collect()
    }
}

/// The roles named, in order, each once.
fn parse_roles(given: &[String]) -> anyhow::Result<Vec<TopLevelRole>> {
    let mut roles = Vec::with_capacity(given.len());
    for r in given {
        let role = TopLevelRole::from_name(r).ok_or_else(|| {
            anyhow!(
                "{r} is not a top-level role: rotate a delegated role's key with `vouch delegation add --key NEW` and then `vouch delegation remove --key OLD`"
            )
        })?;
        if roles.contains(&role) {
            bail!("{role} is named twice");
        }
        roles.push(role);
    }
    Ok(roles)
}

/// Runs `vouch rotate`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let gun = super::parse_gun(&args.gun)?;
    let roles = parse_roles(&args.roles)?;
    let rotates = |r: TopLevelRole| roles.contains(&r);
    let submit = super::submit(args.propose);
    let mut repo = EditingRepo::open_to_submit(ctx, &gun, submit)?;
    let binned = !repo::bins(repo.trusted()?).is_empty();
    let set = if rotates(TopLevelRole::Targets) && binned {
        repo.with_delegations()?
    } else {
        repo.trusted()?.clone()
    };
    repo.warn_expired(&set);
    let keystore = Keystore::new(&ctx.trust_dir);
    let mut new_keys = NewKeys::new(&keystore);
    let old_root = set.root().signed().clone();
    let client_snapshot = repo::holds_any(&keystore, &old_root, TopLevelRole::Snapshot)?;

    let mut rotations: Vec<Rotation> = Vec::with_capacity(roles.len());
    for &role in &roles {
        // As many new keys as the role's threshold, so that the threshold stays reachable;
        // when proposing a root rotation, one for each root key held here (the others stay).
        let mut old_ids = old_root.role_keys(role).keyids.clone();
        if submit == Submit::Propose && role == TopLevelRole::Root {
            let mut held = Vec::new();
            for id in &old_ids {
                if keystore.get(id)?.is_some() {
                    held.push(id.clone());
                }
            }
            if held.is_empty() {
                bail!(
                    "cannot propose a rotation of root: {} holds none of its keys ({}); nothing was proposed",
                    keystore.dir().display(),
                    super::proposals::ids_text(&old_ids)
                );
            }
            old_ids = held;
        }
        let how_many = if submit == Submit::Propose && role == TopLevelRole::Root {
            old_ids.len()
        } else {
            old_root.role_keys(role).threshold.get() as usize
        };
        let local = matches!(role, TopLevelRole::Root | TopLevelRole::Targets)
            || (role == TopLevelRole::Snapshot && client_snapshot);
        let (new_private, new_public): (Vec<PrivateKey>, Vec<Key>) = if local {
            let mut made = Vec::new();
            for _ in 0..how_many {
                made.push(new_keys.generate(role.as_str(), Algorithm::Ed25519)?.0);
            }
            let public = made.iter().map(keystore::public_key).collect();
            (made, public)
        } else {
            if how_many > 1 {
                bail!("the server holds one {role} key, and root asks for {how_many}: rotate root to a threshold of 1 first");
            }
            (Vec::new(), vec![repo.remote().rotate_online_key(role)?])
        };
        if new_public.is_empty() {
            bail!("no new {role} key");
        }
        rotations.push(Rotation {
            role,
            old_ids,
            new_private,
            new_public,
        });
    }
    let rotation_of = |role: TopLevelRole| rotations.iter().find(|r| r.role == role);

    let mut root = old_root.clone();
    for r in &rotations {
        for id in &r.old_ids {
            root.remove_key(r.role, id);
        }
        for k in &r.new_public {
            root.add_key(r.role, k.clone());
        }
    }
    root.bump_version();
    root.set_expires(repo::now().add_seconds(repo::ROOT_LIFETIME_SECS));
    let root_version = root.common.version;

    let mut signers = repo.signers();
    let mut root_md = Metadata::new(root);
    let old_rk = old_root.role_keys(TopLevelRole::Root);
    for s in signers.for_keys(
        &keystore,
        "root",
        &old_root.keys,
        &old_rk.keyids,
        old_rk.threshold,
    )? {
        root_md.sign(s).context("cannot sign root")?;
    }
    if let Some(r) = rotation_of(TopLevelRole::Root) {
        for k in &r.new_private {
            root_md.sign(k).context("cannot sign root")?;
        }
    }
    let mut files = vec![(TopLevelRole::Root.name(), root_md.to_bytes())];

    let mut targets_update = None;
    let mut bin_updates = Vec::new();
    if let Some(rot) = rotation_of(TopLevelRole::Targets) {
        let old_ids = &rot.old_ids;
        let new_ids = rot.new_ids();
        let mut targets = set
            .targets()
            .ok_or_else(|| anyhow!("no trusted targets for {gun}"))?
            .signed()
            .clone();
        let new_signers: Vec<&dyn Signer> =
            rot.new_private.iter().map(|k| k as &dyn Signer).collect();
        // Hashed bins signed by the old targets keys follow them to the new keys.
        if let Some(d) = targets.delegations.as_mut() {
            let mut moved = Vec::new();
            for r in d.roles.iter_mut() {
                if repo::is_bin(r) && r.keyids.iter().all(|k| old_ids.contains(k)) {
                    r.keyids = new_ids.clone();
                    moved.push(r.name.clone());
                }
            }
            if !moved.is_empty() {
                for k in &rot.new_public {
                    d.keys.insert(k.key_id(), k.clone());
                }
                d.retain_used_keys();
            }
            for name in moved {
                let Some(current) = set.targets_role(name.as_str()) else {
                    // Not published yet: nothing signed by the old keys to replace.
                    continue;
                };
                let mut bin = current.signed().clone();
                bin.bump_version();
                bin.set_expires(repo::now().add_seconds(repo::TARGETS_LIFETIME_SECS));
                let md = Metadata::signed_by(bin, &new_signers)
                    .with_context(|| format!("cannot sign {name}"))?;
                bin_updates.push((name, md.version(), md.to_bytes()));
            }
        }
        targets.bump_version();
        targets.set_expires(repo::now().add_seconds(repo::TARGETS_LIFETIME_SECS));
        let md = Metadata::signed_by(targets, &new_signers).context("cannot sign targets")?;
        let bytes = md.to_bytes();
        targets_update = Some((md.version(), bytes.clone()));
        files.push((TopLevelRole::Targets.name(), bytes));
        for (name, _, bytes) in &bin_updates {
            files.push((name.clone(), bytes.clone()));
        }
    }
    let snapshot_keys: Option<Vec<&dyn Signer>> = rotation_of(TopLevelRole::Snapshot)
        .filter(|r| !r.new_private.is_empty())
        .map(|r| r.new_private.iter().map(|k| k as &dyn Signer).collect());
    if client_snapshot && (targets_update.is_some() || snapshot_keys.is_some()) {
        let mut snapshot = set
            .snapshot()
            .map(|s| s.signed().clone())
            .ok_or_else(|| anyhow!("no trusted snapshot for {gun}"))?;
        if let Some((v, bytes)) = &targets_update {
            snapshot
                .meta
                .insert(Snapshot::meta_name("targets"), submit.meta_file(*v, bytes));
        }
        for (name, v, bytes) in &bin_updates {
            snapshot.meta.insert(
                Snapshot::meta_name(name.as_str()),
                submit.meta_file(*v, bytes),
            );
        }
        snapshot.bump_version();
        snapshot.set_expires(repo::now().add_seconds(repo::SNAPSHOT_LIFETIME_SECS));
        let signer: Vec<&dyn Signer> = match snapshot_keys {
            Some(k) => k,
            None => {
                let rk = old_root.role_keys(TopLevelRole::Snapshot);
                signers.for_keys(
                    &keystore,
                    "snapshot",
                    &old_root.keys,
                    &rk.keyids,
                    rk.threshold,
                )?
            }
        };
        let md = Metadata::signed_by(snapshot, &signer).context("cannot sign snapshot")?;
        files.push((TopLevelRole::Snapshot.name(), md.to_bytes()));
    }

    let proposal = match repo.send(&files) {
        Ok(p) => p,
        Err(PublishError::Conflict { gun }) => {
            bail!("someone published to {gun} first: nothing changed, run the rotation again")
        }
        Err(PublishError::Other(e)) => return Err(e),
    };
    new_keys.keep_for(gun.as_str());
    if let Some(p) = proposal.filter(|p| p.status != ProposalStatus::Published) {
        // Pending: nothing was published, so nothing new is trusted (or cached) here.
        return super::proposals::proposed(ctx, &gun, &p);
    }
    repo.refresh()
        .context("the rotated repository does not verify")?;

    let first = &rotations[0];
    let ids = |v: &[KeyId]| {
        v.iter()
            .map(KeyId::as_str)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "role": first.role.as_str(),
            "keyid": first.new_ids()[0].as_str(),
            "keyids": ids(&first.new_ids()),
            "old_keyids": ids(&first.old_ids),
            "rotated": rotations.iter().map(|r| json!({
                "role": r.role.as_str(),
                "keyids": ids(&r.new_ids()),
                "old_keyids": ids(&r.old_ids),
            })).collect::<Vec<_>>(),
            "root_version": root_version.get(),
            "bins_resigned": bin_updates.len(),
        })),
        Format::Text => {
            let mut out = String::new();
            for r in &rotations {
                out.push_str(&format!(
                    "rotated the {} key of {gun}: now {} (root version {})\n",
                    r.role,
                    ids(&r.new_ids()).join(", "),
                    root_version.get()
                ));
            }
            if !bin_updates.is_empty() {
                out.push_str(&format!(
                    "re-signed {} hashed bins with the new targets keys\n",
                    bin_updates.len()
                ));
            }
            output::text(&out)
        }
    }
}
