//! `vouch init GUN`: creates a repository's trust data on the server.
//!
//! Makes the keys that are missing (root, targets, and snapshot with `--client-snapshot`;
//! as many root and targets keys as their thresholds need, all signing the first version),
//! asks the server for its online timestamp key (and snapshot key, by default), signs root
//! version 1 and an empty targets version 1 (and snapshot version 1 when the client holds
//! the snapshot key), publishes them as one update and pins the new root in the trust
//! directory. When the server refuses, keys made by this run are deleted again.
//!
//! Several people (threshold signing): `--root-key FILE` adds another person's root public
//! key (a TUF key object, `vouch key export KEYID --public`) to root without its private
//! key. When fewer root keys are held here than `--root-threshold`, `--propose` sends the new
//! repository as a staged proposal signed by the keys held here; the other root key holders
//! approve it (`vouch approve GUN ID`) and the server publishes it once the threshold is
//! met. Nothing is pinned here before it is published: the first command run after that
//! trusts the published root (with a warning showing its fingerprint), or the one given with
//! `--trust-root`.
//!
//! With `--hashed-bins N` (16, 256 or 4096) targets delegates every tag to one of N
//! hashed-bin roles `bins-PREFIX` by the hex SHA-256 of its name (`path_hash_prefixes`,
//! terminating), signed by the targets keys; the N empty bins (version 1) go up in the same
//! update, so that a later sign rewrites one small bin rather than all of targets.

use anyhow::{bail, Context as _};
use serde_json::json;
use vouch_tuf::crypto::Signer;
use vouch_tuf::crypto::{Algorithm, PrivateKey};
use vouch_tuf::metadata::{
    DelegatedRole, Delegations, Key, Metadata, PathScope, Root, Snapshot, Targets,
};
use vouch_tuf::types::{KeyId, RoleName, Threshold, TopLevelRole};

use vouch_verifier::transport::Transport as _;

use crate::context::Context;
use crate::keystore::{self, Keystore, NewKeys};
use crate::output::{self, Format};
use crate::passphrase;
use crate::remote::{PublishError, Remote};
use crate::repo::{self, Repo};
use crate::trust;
use vouch_tuf::api::proposal::ProposalStatus;

/// `vouch init`
///
/// Example: vouch init registry.example.com/org/app
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image repository, e.g. registry.example.com/org/app.
    pub gun: String,
    /// Use this stored root key (id or unique prefix) instead of generating one, or list
    /// another key holder's root public key (a file holding its TUF key object, from
    /// `vouch key export KEYID --public`). Repeatable.
    #[arg(long, value_name = "KEYID|FILE")]
    pub root_key: Vec<String>,
    /// Use this stored targets key instead of generating one. Repeatable.
    #[arg(long, value_name = "KEYID")]
    pub targets_key: Vec<String>,
    /// How many root keys must sign a root; keys are generated up to this number.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub root_threshold: u32,
    /// How many targets keys must sign targets; keys are generated up to this number.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub targets_threshold: u32,
    /// Hold the snapshot key here (signing snapshot on every change) instead of letting
    /// the server sign snapshots.
    #[arg(long)]
    pub client_snapshot: bool,
    /// Delegate the tags to N hashed-bin roles (16, 256 or 4096), signed with the targets
    /// keys, so that signing a tag rewrites one small bin: for repositories expected to hold
    /// thousands of tags.
    #[arg(long, value_name = "N")]
    pub hashed_bins: Option<usize>,
    /// Propose the new repository for threshold signing instead of publishing it, when
    /// fewer root keys than --root-threshold are held here: the other root key holders run
    /// `vouch approve`.
    #[arg(long)]
    pub propose: bool,
}

/// The delegations of `count` hashed bins `bins-PREFIX`, each for the target names whose
/// hex SHA-256 starts with its prefix, signed by `keys` (the targets keys) with `threshold`.
fn bin_delegations(
    count: usize,
    keys: &[Key],
    threshold: Threshold,
) -> anyhow::Result<Delegations> {
    let width = repo::bin_prefix_len(count);
    let keyids: Vec<KeyId> = keys.iter().map(Key::key_id).collect();
    let mut d = Delegations::default();
    for k in keys {
        d.keys.insert(k.key_id(), k.clone());
    }
    for i in 0..count {
        let name = repo::bin_name(i, count);
        let role = RoleName::new(name.clone()).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let mut dr = DelegatedRole::with_paths(role, keyids.clone(), Vec::new());
        dr.scope = PathScope::HashPrefixes(vec![format!("{i:0width$x}")]);
        dr.threshold = threshold;
        dr.terminating = true;
        d.roles.push(dr);
    }
    Ok(d)
}

/// Checks `--hashed-bins`.
fn check_bins(n: Option<usize>) -> anyhow::Result<()> {
    match n {
        Some(n) if !repo::BIN_COUNTS.contains(&n) => bail!(
            "--hashed-bins {n}: the number of bins must be 16, 256 or 4096 (one, two or three hex digits of the SHA-256 of a tag)"
        ),
        _ => Ok(()),
    }
}

fn signers(keys: &[(PrivateKey, KeyId)]) -> Vec<&dyn Signer> {
    keys.iter().map(|(k, _)| k as &dyn Signer).collect()
}

/// The keys of `role`: the stored keys `given`, then new ones up to `threshold`.
fn keys_for(
    keystore: &Keystore,
    made: &mut NewKeys<'_>,
    role: TopLevelRole,
    given: &[String],
    threshold: u32,
    others: usize,
) -> anyhow::Result<(Vec<(PrivateKey, KeyId)>, Threshold)> {
    let th = Threshold::new(threshold)
        .map_err(|e| anyhow::anyhow!("--{role}-threshold {threshold}: {e}"))?;
    let mut keys = Vec::new();
    for prefix in given {
        let (k, id) = key_for(keystore, made, role, Some(prefix))?;
        if keys.iter().any(|(_, other)| *other == id) {
            bail!("--{role}-key {prefix}: the key {id} is given twice");
        }
        keys.push((k, id));
    }
    while keys.is_empty() || keys.len() + others < threshold as usize {
        keys.push(key_for(keystore, made, role, None)?);
    }
    Ok((keys, th))
}

fn key_for(
    keystore: &Keystore,
    made: &mut NewKeys<'_>,
    role: TopLevelRole,
    given: Option<&str>,
) -> anyhow::Result<(PrivateKey, KeyId)> {
    if let Some(prefix) = given {
        let e = keystore.find(prefix)?;
        let (pass, source) = passphrase::unlock(&e.role, e.keyid.as_str())?;
        let key = keystore.unlock(&e, &pass).with_context(|| {
            format!(
                "cannot unlock the {role} key {} (passphrase {source})",
                e.keyid
            )
        })?;
        return Ok((key, e.keyid));
    }
    let (key, e) = made.generate(role.as_str(), Algorithm::Ed25519)?;
    Ok((key, e.keyid))
}

/// A repository `vouch init` created.
#[derive(Debug)]
pub struct Created {
    /// The repository.
    pub gun: vouch_tuf::reference::Gun,
    /// Ids of the root keys.
    pub root_ids: Vec<String>,
    /// Ids of the targets keys.
    pub targets_ids: Vec<String>,
    /// The root threshold.
    pub root_threshold: Threshold,
    /// The targets threshold.
    pub targets_threshold: Threshold,
    /// Who signs snapshot: `client` or `server`.
    pub snapshot_holder: &'static str,
    /// Root version 1, as published and pinned.
    pub root_bytes: Vec<u8>,
    /// How many hashed bins were made (0 without `--hashed-bins`).
    pub bin_count: usize,
    /// With `--propose`, while other root key holders must still approve: the proposal.
    pub proposal: Option<vouch_tuf::api::proposal::Proposal>,
}

/// Runs `vouch init`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let created = create(ctx, &args)?;
    if let Some(p) = &created.proposal {
        return super::proposals::proposed(ctx, &created.gun, p);
    }
    report(ctx, &created, args.hashed_bins)
}

/// Creates the repository `args` names, publishes it and pins its root here (everything
/// `vouch init` does but report).
pub fn create(ctx: &Context, args: &Args) -> anyhow::Result<Created> {
    let gun = super::parse_gun(&args.gun)?;
    check_bins(args.hashed_bins)?;
    let remote = Remote::new(ctx, &gun)?;
    let keystore = Keystore::new(&ctx.trust_dir);
    // A new repository is pinned here to the root this run signs: never silently in place
    // of a pin this machine already holds for the GUN (another server's, say).
    if let Some(pin) = trust::existing_pin(ctx, &gun)? {
        let cap = vouch_verifier::Limits::DEFAULT.root_max_bytes;
        if remote.fetch("root.json", cap).is_ok() {
            bail!(
                "{gun} already has trust data on {}: nothing changed (use `vouch status {gun}` to see it)",
                ctx.server
            );
        }
        bail!(
            "this machine already trusts {gun}, pinned to {} ({}): creating it on {} would replace that pin; if you mean to, run `vouch trust reset {gun}` first",
            trust::describe_root(&pin.root),
            pin.source,
            ctx.server
        );
    }

    // Ask the server first: no keys are made for a server that is down or refuses us.
    let timestamp_key = remote.online_key(TopLevelRole::Timestamp)?;
    let server_snapshot_key = if args.client_snapshot {
        None
    } else {
        Some(remote.online_key(TopLevelRole::Snapshot)?)
    };

    // Other people's root public keys (files), and the root keys held here (ids).
    let mut other_root_keys: Vec<Key> = Vec::new();
    let mut held_root_ids: Vec<String> = Vec::new();
    for given in &args.root_key {
        let path = std::path::Path::new(given);
        if path.is_file() {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read --root-key {}", path.display()))?;
            let v = vouch_tuf::json::parse(&bytes).map_err(|e| {
                anyhow::anyhow!("--root-key {}: not a TUF key object: {e}", path.display())
            })?;
            let k = Key::from_value(v)
                .with_context(|| format!("--root-key {}: not a TUF key object", path.display()))?;
            if other_root_keys.iter().any(|o| o.key_id() == k.key_id()) {
                bail!(
                    "--root-key {}: the key {} is given twice",
                    path.display(),
                    k.key_id()
                );
            }
            other_root_keys.push(k);
        } else {
            held_root_ids.push(given.clone());
        }
    }
    let mut made = NewKeys::new(&keystore);
    let (root_keys, root_threshold) = keys_for(
        &keystore,
        &mut made,
        TopLevelRole::Root,
        &held_root_ids,
        args.root_threshold,
        other_root_keys.len(),
    )?;
    if root_keys
        .iter()
        .any(|(_, id)| other_root_keys.iter().any(|k| k.key_id() == *id))
    {
        bail!("a --root-key file names a key this trust directory holds: give its id instead");
    }
    let all_root = root_keys.len() + other_root_keys.len();
    if (root_threshold.get() as usize) > all_root {
        bail!(
            "--root-threshold {} is more than the {all_root} root keys given: nothing was created",
            root_threshold.get()
        );
    }
    let short = root_keys.len() < root_threshold.get() as usize;
    if short && !args.propose {
        bail!(
            "root version 1 needs {} root signatures, and this trust directory holds {} of its keys: pass --propose so that the other root key holders approve it (`vouch approve`); nothing was created",
            root_threshold.get(),
            root_keys.len()
        );
    }
    let (targets_keys, targets_threshold) = keys_for(
        &keystore,
        &mut made,
        TopLevelRole::Targets,
        &args.targets_key,
        args.targets_threshold,
        0,
    )?;
    let client_snapshot = match server_snapshot_key {
        Some(_) => None,
        None => Some(key_for(&keystore, &mut made, TopLevelRole::Snapshot, None)?),
    };

    let now = repo::now();
    let mut root = Root::new(now.add_seconds(repo::ROOT_LIFETIME_SECS));
    // Named, so that no other repository's root (signed by the same organisation keys,
    // say) can stand in for this one.
    root.set_gun(gun.as_str());
    for (k, _) in &root_keys {
        root.add_key(TopLevelRole::Root, keystore::public_key(k));
    }
    for k in &other_root_keys {
        root.add_key(TopLevelRole::Root, k.clone());
    }
    root.set_threshold(TopLevelRole::Root, root_threshold);
    for (k, _) in &targets_keys {
        root.add_key(TopLevelRole::Targets, keystore::public_key(k));
    }
    root.set_threshold(TopLevelRole::Targets, targets_threshold);
    root.add_key(TopLevelRole::Timestamp, timestamp_key);
    let snapshot_key: Key = match (&server_snapshot_key, &client_snapshot) {
        (Some(k), _) => k.clone(),
        (None, Some((k, _))) => keystore::public_key(k),
        (None, None) => bail!("no snapshot key"),
    };
    root.add_key(TopLevelRole::Snapshot, snapshot_key);
    let root_md = Metadata::signed_by(root, &signers(&root_keys)).context("cannot sign root")?;
    let root_bytes = root_md.to_bytes();
    // A pin file that covers this repository must accept its first root, or no consumer
    // following that file could ever trust it: refuse before anything is published.
    if let Some((anchor, origin)) = trust::requested(ctx, &gun)?.filter(|_| !args.propose) {
        anchor.admits(&root_bytes, &gun).map_err(|e| {
            anyhow::anyhow!(
                "{origin} pins {gun} to {}, and the root this would create is not accepted: {e}; \
                 sign it with the pinned keys (--root-key KEYID, repeated as the threshold needs)",
                anchor.describe()
            )
        })?;
    }

    let mut targets = Targets::new(now.add_seconds(repo::TARGETS_LIFETIME_SECS));
    let mut bins = Vec::new();
    if let Some(count) = args.hashed_bins {
        let public: Vec<Key> = targets_keys
            .iter()
            .map(|(k, _)| keystore::public_key(k))
            .collect();
        let d = bin_delegations(count, &public, targets_threshold)?;
        for dr in &d.roles {
            let bin = Targets::new(now.add_seconds(repo::TARGETS_LIFETIME_SECS));
            let md = Metadata::signed_by(bin, &signers(&targets_keys))
                .with_context(|| format!("cannot sign {}", dr.name))?;
            bins.push((dr.name.clone(), md.to_bytes()));
        }
        targets.delegations = Some(d);
    }
    let targets_md =
        Metadata::signed_by(targets, &signers(&targets_keys)).context("cannot sign targets")?;
    let targets_bytes = targets_md.to_bytes();

    let submit = super::submit(args.propose);
    let mut files = vec![
        (TopLevelRole::Root.name(), root_bytes.clone()),
        (TopLevelRole::Targets.name(), targets_bytes.clone()),
    ];
    if let Some((snap_key, _)) = &client_snapshot {
        let mut snapshot = Snapshot::new(now.add_seconds(repo::SNAPSHOT_LIFETIME_SECS));
        snapshot.meta.insert(
            Snapshot::meta_name("targets"),
            submit.meta_file(targets_md.version(), &targets_bytes),
        );
        for (name, bytes) in &bins {
            snapshot.meta.insert(
                Snapshot::meta_name(name.as_str()),
                submit.meta_file(vouch_tuf::types::Version::ONE, bytes),
            );
        }
        let smd = Metadata::signed_by(snapshot, &[snap_key]).context("cannot sign snapshot")?;
        files.push((TopLevelRole::Snapshot.name(), smd.to_bytes()));
    }
    let bin_count = bins.len();
    files.extend(bins);

    let sent = if args.propose {
        remote.propose(&files).map(Some)
    } else {
        remote.publish(&files).map(|()| None)
    };
    let proposal = match sent {
        Ok(p) => p,
        Err(PublishError::Conflict { gun }) => bail!(
            "{gun} already has trust data on {}: nothing changed (use `vouch status {gun}` to see it)",
            ctx.server
        ),
        Err(PublishError::Other(e)) => return Err(e),
    };
    made.keep_for(gun.as_str());
    let ids = |keys: &[(PrivateKey, KeyId)]| -> Vec<String> {
        keys.iter().map(|(_, id)| id.to_string()).collect()
    };
    let mut root_ids = ids(&root_keys);
    root_ids.extend(other_root_keys.iter().map(|k| k.key_id().to_string()));
    let snapshot_holder = if client_snapshot.is_some() {
        "client"
    } else {
        "server"
    };
    if let Some(p) = proposal.filter(|p| p.status != ProposalStatus::Published) {
        // Pending: nothing is published, so nothing is pinned or cached here.
        return Ok(Created {
            gun,
            root_ids,
            targets_ids: ids(&targets_keys),
            root_threshold,
            targets_threshold,
            snapshot_holder,
            root_bytes,
            bin_count,
            proposal: Some(p),
        });
    }

    // Pin the root this run signed (replacing whatever this machine trusted for the GUN
    // before: the server just accepted a new repository), then check the round trip
    // through the verifier.
    trust::repin(
        ctx,
        &gun,
        &root_bytes,
        &format!(
            "created by `vouch init` on {} on {}",
            ctx.server,
            repo::now()
        ),
    )?;
    Repo::open(ctx, &gun).context("the new repository does not verify")?;

    Ok(Created {
        gun,
        root_ids,
        targets_ids: ids(&targets_keys),
        root_threshold,
        targets_threshold,
        snapshot_holder,
        root_bytes,
        bin_count,
        proposal: None,
    })
}

/// Prints what `vouch init` created.
fn report(ctx: &Context, created: &Created, hashed_bins: Option<usize>) -> anyhow::Result<()> {
    let Created {
        gun,
        root_ids,
        targets_ids,
        root_threshold,
        targets_threshold,
        snapshot_holder,
        root_bytes,
        bin_count,
        proposal: _,
    } = created;
    let (root_threshold, targets_threshold, bin_count) =
        (*root_threshold, *targets_threshold, *bin_count);
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "root_key": root_ids.first(),
            "targets_key": targets_ids.first(),
            "root_keys": root_ids,
            "targets_keys": targets_ids,
            "root_threshold": root_threshold.get(),
            "targets_threshold": targets_threshold.get(),
            "snapshot": snapshot_holder,
            "root_sha256": repo::sha256_hex(root_bytes),
            "hashed_bins": hashed_bins,
        })),
        Format::Text => {
            let mut out = format!("initialised {gun}\n");
            for (label, ids, th) in [
                ("root key", root_ids, root_threshold),
                ("targets key", targets_ids, targets_threshold),
            ] {
                for id in ids.iter() {
                    out.push_str(&format!("  {label:<11}  {id}\n"));
                }
                if th.get() > 1 {
                    out.push_str(&format!(
                        "  {:<11}  {} of {}\n",
                        "threshold",
                        th.get(),
                        ids.len()
                    ));
                }
            }
            out.push_str(&format!(
                "  snapshot     signed by the {snapshot_holder}\n  root sha256  {}\n",
                repo::sha256_hex(root_bytes)
            ));
            if bin_count > 0 {
                out.push_str(&format!(
                    "  hashed bins  {bin_count} ({} … {})\n",
                    repo::bin_name(0, bin_count),
                    repo::bin_name(bin_count - 1, bin_count)
                ));
            }
            output::text(&out)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hashed_bins_are_16_256_or_4096() {
        for n in [16, 256, 4096] {
            check_bins(Some(n)).unwrap();
        }
        check_bins(None).unwrap();
        for n in [0, 1, 10, 32, 65536] {
            let e = check_bins(Some(n)).unwrap_err().to_string();
            assert!(e.contains("16, 256 or 4096"), "{e}");
        }
    }

    #[test]
    fn bins_cover_every_prefix_once_with_the_targets_keys() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let public = keystore::public_key(&key);
        let th = Threshold::ONE;
        let d = bin_delegations(256, std::slice::from_ref(&public), th).unwrap();
        assert_eq!(d.roles.len(), 256);
        assert_eq!(d.keys.len(), 1);
        assert_eq!(d.roles[0].name.as_str(), "bins-00");
        assert_eq!(d.roles[255].name.as_str(), "bins-ff");
        for tag in ["v1", "latest", "release-2024.11"] {
            let covering: Vec<_> = d
                .roles
                .iter()
                .filter(|r| r.is_delegated_path(tag))
                .collect();
            assert_eq!(covering.len(), 1, "{tag}");
            assert!(covering[0].terminating);
            assert_eq!(covering[0].keyids, vec![public.key_id()]);
        }
    }
}
