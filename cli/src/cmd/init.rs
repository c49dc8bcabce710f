//! `vouch init GUN`: creates a repository's trust data on the server.
//!
//! Makes the keys that are missing (root, targets, and snapshot with `--client-snapshot`;
//! as many root and targets keys as their thresholds need, all signing the first version),
//! asks the server for its online timestamp key (and snapshot key, by default), signs root
//! version 1 and an empty targets version 1 (and snapshot version 1 when the client holds
//! the snapshot key), publishes them as one update and pins the new root in the trust
//! directory. When the server refuses, keys made by this run are deleted again.

use anyhow::{bail, Context as _};
use serde_json::json;
use vouch_tuf::crypto::Signer;
use vouch_tuf::crypto::{Algorithm, PrivateKey};
use vouch_tuf::metadata::{Key, MetaFile, Metadata, Root, Snapshot, Targets};
use vouch_tuf::types::{KeyId, Threshold, TopLevelRole};
use vouch_verifier::Updater;

use crate::context::Context;
use crate::keystore::{self, Keystore, NewKeys};
use crate::output::{self, Format};
use crate::passphrase;
use crate::remote::{PublishError, Remote};
use crate::repo::{self, Repo};

/// `vouch init`
///
/// Example: vouch init registry.example.com/org/app
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image repository, e.g. registry.example.com/org/app.
    pub gun: String,
    /// Use this stored root key (id or unique prefix) instead of generating one.
    /// Repeatable.
    #[arg(long, value_name = "KEYID")]
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
    while keys.len() < threshold as usize {
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

/// Runs `vouch init`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let gun = super::parse_gun(&args.gun)?;
    let remote = Remote::new(ctx, &gun)?;
    let keystore = Keystore::new(&ctx.trust_dir);

    // Ask the server first: no keys are made for a server that is down or refuses us.
    let timestamp_key = remote.online_key(TopLevelRole::Timestamp)?;
    let server_snapshot_key = if args.client_snapshot {
        None
    } else {
        Some(remote.online_key(TopLevelRole::Snapshot)?)
    };

    let mut made = NewKeys::new(&keystore);
    let (root_keys, root_threshold) = keys_for(
        &keystore,
        &mut made,
        TopLevelRole::Root,
        &args.root_key,
        args.root_threshold,
    )?;
    let (targets_keys, targets_threshold) = keys_for(
        &keystore,
        &mut made,
        TopLevelRole::Targets,
        &args.targets_key,
        args.targets_threshold,
    )?;
    let client_snapshot = match server_snapshot_key {
        Some(_) => None,
        None => Some(key_for(&keystore, &mut made, TopLevelRole::Snapshot, None)?),
    };

    let now = repo::now();
    let mut root = Root::new(now.add_seconds(repo::ROOT_LIFETIME_SECS));
    for (k, _) in &root_keys {
        root.add_key(TopLevelRole::Root, keystore::public_key(k));
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

    let targets = Targets::new(now.add_seconds(repo::TARGETS_LIFETIME_SECS));
    let targets_md =
        Metadata::signed_by(targets, &signers(&targets_keys)).context("cannot sign targets")?;
    let targets_bytes = targets_md.to_bytes();

    let mut files = vec![
        (TopLevelRole::Root.name(), root_bytes.clone()),
        (TopLevelRole::Targets.name(), targets_bytes.clone()),
    ];
    if let Some((snap_key, _)) = &client_snapshot {
        let mut snapshot = Snapshot::new(now.add_seconds(repo::SNAPSHOT_LIFETIME_SECS));
        snapshot.meta.insert(
            Snapshot::meta_name("targets"),
            MetaFile::for_bytes(targets_md.version(), &targets_bytes),
        );
        let smd = Metadata::signed_by(snapshot, &[snap_key]).context("cannot sign snapshot")?;
        files.push((TopLevelRole::Snapshot.name(), smd.to_bytes()));
    }

    match remote.publish(&files) {
        Ok(()) => {}
        Err(PublishError::Conflict { gun }) => bail!(
            "{gun} already has trust data on {}: nothing changed (use `vouch status {gun}` to see it)",
            ctx.server
        ),
        Err(PublishError::Other(e)) => return Err(e),
    }
    made.keep();

    // Pin the root this run signed, then check the round trip through the verifier.
    let store = Repo::store(ctx, &gun)?;
    for role in [
        TopLevelRole::Timestamp,
        TopLevelRole::Snapshot,
        TopLevelRole::Targets,
    ] {
        store.remove(&role.name())?;
    }
    Updater::<Remote>::pin_root(&store, &root_bytes).context("cannot pin the new root")?;
    Repo::open(ctx, &gun).context("the new repository does not verify")?;

    let snapshot_holder = if client_snapshot.is_some() {
        "client"
    } else {
        "server"
    };
    let ids = |keys: &[(PrivateKey, KeyId)]| -> Vec<String> {
        keys.iter().map(|(_, id)| id.to_string()).collect()
    };
    let (root_ids, targets_ids) = (ids(&root_keys), ids(&targets_keys));
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
            "root_sha256": repo::sha256_hex(&root_bytes),
        })),
        Format::Text => {
            let mut out = format!("initialised {gun}\n");
            for (label, ids, th) in [
                ("root key", &root_ids, root_threshold),
                ("targets key", &targets_ids, targets_threshold),
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
                repo::sha256_hex(&root_bytes)
            ));
            output::text(&out)
        }
    }
}
