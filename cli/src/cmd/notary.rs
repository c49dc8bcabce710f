//! `vouch import notary`: moves Notary v1 trust collections (Docker Content Trust) to vouch.
//!
//! For each GUN: the collection is read from a notary server (`--notary-server`) or from the
//! notary client's own cache (`--notary-trust-dir`, by default `~/.docker/trust`), and
//! verified the way the notary client verifies it ([`vouch_verifier::notary`]) against the
//! root that client already trusts (`tuf/<gun>/metadata/root.json` in its trust directory, or
//! `--notary-root`), so what is imported is what Notary's users trusted, not whatever a server
//! hands out. Then the vouch repository is created (or, on a later run, reused) and every
//! verified tag whose digest and size differ from what vouch holds is signed, in the same role
//! (`targets`, or a delegated role `targets/releases` whose signer's key is at hand), in one
//! publish per role. Nothing is written to vouch before the collection has verified and the
//! keys to sign with are unlocked.
//!
//! Keys: `--keys new` (the default) signs under new vouch keys; `--keys notary` decrypts the
//! notary private keys (`private/*.key`, passphrases from `NOTARY_<ROLE>_PASSPHRASE` as for
//! the notary client) and keeps them in vouch's trust directory, so the repository keeps its
//! root, targets and delegation keys (as TUF 1.0 `ecdsa-sha2-nistp256` keys). Delegated roles
//! are imported only with their signer's key; otherwise their tags are reported as skipped.
//!
//! The notary state (the latest root and role versions seen) is kept in the repository's
//! trust directory, shared with `vouch verify --notary` ([`crate::notary`]), so that a later
//! run of either refuses a notary server that rolled back. A notary server that asks for a
//! token (the registry token flow) gets one anonymously, or with the credentials of
//! `NOTARY_AUTH` or the docker config.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use serde_json::json;
use vouch_tuf::crypto::{NotaryKeyFile, PrivateKey, Signer as _, VerifyingKey};
use vouch_tuf::metadata::{Key, TargetFile};
use vouch_tuf::notary::{bare_key_id, NotaryKey, Root as NotaryRoot, Signed};
use vouch_tuf::reference::{Digest, Gun, ImageRef};
use vouch_tuf::types::{RoleName, TargetName, Threshold, TopLevelRole};
use vouch_verifier::notary::{
    client_metadata_dir, fetch_collection, ExpiredMetadata, Layout, NotaryCollection, NotaryState,
    NotaryVerifyError, VerifiedRole,
};
use vouch_verifier::transport::{DirectoryTransport, Transport};
use vouch_verifier::Limits;

use crate::context::Context;
use crate::keystore::{self, Keystore};
use crate::output::{self, Format};
use crate::passphrase;
use crate::remote::Remote;
use crate::repo::{self, EditingRepo};

use super::delegation::{self, Delegate};
use super::init;
use super::sign::{self, Change};

/// Most key files listed in a notary trust directory's `private/`.
const MAX_KEY_FILES: usize = 1024;
/// Largest notary key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;
/// Largest --gun-file read.
const MAX_GUN_FILE: u64 = 16 * 1024 * 1024;
/// Most GUNs one run imports.
const MAX_GUNS: usize = 10_000;

/// `vouch import notary`
///
/// Examples:
///   `vouch import notary docker.io/org/app --notary-server https://notary.example.com`
///   `vouch import notary --gun-file guns.txt --keys notary`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The repositories (GUNs) to import, e.g. docker.io/org/app.
    #[arg(value_name = "GUN")]
    pub guns: Vec<String>,
    /// A file with one GUN per line (blank lines and `#` comments ignored).
    #[arg(long, value_name = "FILE")]
    pub gun_file: Option<PathBuf>,
    /// Read the collections from this notary server (its TLS certificate is checked against
    /// the system's roots, or `SSL_CERT_FILE`); without it, from the notary client's cache in
    /// --notary-trust-dir.
    #[arg(long, value_name = "URL")]
    pub notary_server: Option<String>,
    /// The notary client's trust directory: its trusted roots, its metadata cache and (for
    /// --keys notary) its private keys [default: ~/.docker/trust].
    #[arg(long, value_name = "DIR")]
    pub notary_trust_dir: Option<PathBuf>,
    /// The notary root to trust for the (one) GUN, instead of the one in --notary-trust-dir.
    #[arg(long, value_name = "FILE")]
    pub notary_root: Option<PathBuf>,
    /// Which keys sign the vouch repository.
    #[arg(long, value_enum, default_value = "new")]
    pub keys: KeySource,
    /// Import a collection whose metadata has expired (each expired role is reported).
    #[arg(long)]
    pub allow_expired: bool,
}

/// Which keys sign an imported repository.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// New vouch keys (root and targets); delegated roles are not imported.
    New,
    /// The notary root, targets and delegation keys, from the notary trust directory.
    Notary,
}

/// What happened to one tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Added,
    Changed,
    Unchanged,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Added => "added",
            Status::Changed => "changed",
            Status::Unchanged => "unchanged",
        }
    }
}

/// One tag to import.
#[derive(Clone, Debug)]
struct Tag {
    role: RoleName,
    name: TargetName,
    digest: Digest,
    length: u64,
}

/// One tag (or role) not imported, and why.
#[derive(Clone, Debug)]
struct Skipped {
    role: String,
    tag: Option<String>,
    reason: String,
}

/// The outcome for one GUN.
#[derive(Debug)]
struct Report {
    gun: Gun,
    source: String,
    created: bool,
    root_version: u64,
    timestamp_version: u64,
    tags: Vec<(Tag, Status)>,
    skipped: Vec<Skipped>,
    expired: Vec<(String, String)>,
    keys: BTreeMap<String, Vec<String>>,
}

/// Runs `vouch import notary`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let guns = guns(&args)?;
    if args.notary_root.is_some() && guns.len() > 1 {
        bail!(
            "--notary-root is the root of one repository, and {} were given: import them one by one",
            guns.len()
        );
    }
    let trust_dir = crate::notary::trust_dir(args.notary_trust_dir.as_deref())?;
    let mut reports = Vec::new();
    let mut failed: Vec<(Gun, anyhow::Error)> = Vec::new();
    for gun in guns {
        match import_one(ctx, &args, &trust_dir, &gun) {
            Ok(r) => reports.push(r),
            Err(e) if reports.is_empty() && failed.is_empty() && args.guns.len() <= 1 => {
                return Err(e.context(format!("nothing was imported for {gun}")))
            }
            Err(e) => failed.push((gun, e)),
        }
    }
    print(ctx, &reports, &failed)?;
    match failed.len() {
        0 => Ok(()),
        n => bail!(
            "{n} of {} repositories were not imported (see above)",
            n + reports.len()
        ),
    }
}

/// The GUNs of the arguments and --gun-file, checked, each once, in order.
fn guns(args: &Args) -> anyhow::Result<Vec<Gun>> {
    let mut names: Vec<String> = args.guns.clone();
    if let Some(file) = &args.gun_file {
        let bytes = crate::notary::read_capped(file, MAX_GUN_FILE).context("--gun-file")?;
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow!("--gun-file {} is not UTF-8 text", file.display()))?;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if !line.is_empty() {
                names.push(line.to_owned());
            }
        }
    }
    if names.is_empty() {
        bail!("name the repositories to import (GUN arguments or --gun-file)");
    }
    if names.len() > MAX_GUNS {
        bail!(
            "{} repositories given: at most {MAX_GUNS} per run",
            names.len()
        );
    }
    let mut out: Vec<Gun> = Vec::new();
    for n in &names {
        let gun = super::parse_gun(n)?;
        if !out.contains(&gun) {
            out.push(gun);
        }
    }
    Ok(out)
}

/// Fetches and verifies the collection of `gun`; returns it and a description of the source.
fn verified_collection(
    ctx: &Context,
    args: &Args,
    trust_dir: &Path,
    gun: &Gun,
    state: &NotaryState,
) -> anyhow::Result<(NotaryCollection, String)> {
    let expired = if args.allow_expired {
        ExpiredMetadata::AllowAndReport
    } else {
        ExpiredMetadata::Refuse
    };
    let server = match &args.notary_server {
        Some(url) => Some(crate::notary::server_transport(ctx, url, gun)?),
        None => None,
    };
    let dir = client_metadata_dir(trust_dir, gun);
    let cache = DirectoryTransport::new(dir.clone());
    let (transport, layout, source): (&dyn Transport, Layout, String) = match &server {
        Some(s) => (&s.transport, Layout::Server, s.url.clone()),
        None => (
            &cache,
            Layout::ClientCache,
            format!("the notary cache {}", dir.display()),
        ),
    };
    let collection = fetch_collection(
        transport,
        layout,
        state,
        repo::now(),
        expired,
        Limits::DEFAULT,
    )
    .map_err(|e| {
        let hint = match (&e, &server) {
            (NotaryVerifyError::Expired { .. }, _) => {
                " (import it anyway with --allow-expired)".into()
            }
            (NotaryVerifyError::Transport { source, .. }, Some(s)) => s.fetch_hint(source),
            _ => String::new(),
        };
        anyhow!("the notary collection {gun} from {source} does not verify: {e}{hint}")
    })?;
    Ok((collection, source))
}

/// The tags to import, by vouch role, and what is skipped.
fn plan(gun: &Gun, collection: &NotaryCollection, keys: KeySource) -> (Vec<Tag>, Vec<Skipped>) {
    let mut tags = Vec::new();
    let mut skipped: Vec<Skipped> = collection
        .skipped
        .iter()
        .map(|s| Skipped {
            role: s.name.clone(),
            tag: None,
            reason: s.reason.clone(),
        })
        .collect();
    for role in &collection.roles {
        let why_not = role_not_imported(role, keys);
        for outside in &role.outside_paths {
            skipped.push(Skipped {
                role: role.name.clone(),
                tag: Some(outside.clone()),
                reason: "outside the paths its delegation allows (notary ignores it too)".into(),
            });
        }
        for target in role.targets.values() {
            let skip = |reason: String| Skipped {
                role: role.name.clone(),
                tag: Some(target.name.clone()),
                reason,
            };
            if let Some(reason) = &why_not {
                skipped.push(skip(reason.clone()));
                continue;
            }
            // `docker trust` resolves a tag from `targets/releases` first and vouch from
            // `targets` first: where the two would disagree, only the entry docker trust
            // resolved is carried over, so every imported tag still means what it meant.
            if let Some(docker) =
                collection.lookup_preferring(&target.name, &["targets/releases", "targets"])
            {
                if docker.role != role.name && docker.sha256 != target.sha256 {
                    skipped.push(skip(format!(
                        "docker trust resolves this tag from {} (to another digest)",
                        docker.role
                    )));
                    continue;
                }
            }
            match tag_of(gun, role, target) {
                Ok(t) => tags.push(t),
                Err(reason) => skipped.push(skip(reason)),
            }
        }
    }
    (tags, skipped)
}

/// Why a verified role's tags are not imported, if they are not.
fn role_not_imported(role: &VerifiedRole, keys: KeySource) -> Option<String> {
    if role.name == "targets" {
        return None;
    }
    if role.name.matches('/').count() > 1 {
        return Some("nested delegations are not imported".into());
    }
    if keys == KeySource::New {
        return Some(
            "delegated role: import with --keys notary and its signer's key in the notary \
             trust directory, or sign the tag again"
                .into(),
        );
    }
    None
}

fn tag_of(
    gun: &Gun,
    role: &VerifiedRole,
    target: &vouch_verifier::notary::NotaryTarget,
) -> Result<Tag, String> {
    let hex = target
        .sha256
        .as_deref()
        .ok_or_else(|| "no sha256 hash, so no image digest".to_owned())?;
    let digest =
        Digest::parse(&format!("sha256:{hex}")).map_err(|e| format!("not an image digest: {e}"))?;
    let image = ImageRef::parse(&format!("{gun}:{}", target.name))
        .map_err(|_| "not an image tag".to_owned())?;
    if image.tag() != Some(target.name.as_str()) {
        return Err("not an image tag".into());
    }
    let name = TargetName::new(target.name.clone()).map_err(|e| e.to_string())?;
    let role = RoleName::new(role.name.clone()).map_err(|e| e.to_string())?;
    Ok(Tag {
        role,
        name,
        digest,
        length: target.length,
    })
}

/// The public keys, as TUF 1.0 keys, that a notary root lists for `role`, and its threshold.
fn root_role_keys(root: &NotaryRoot, role: &str) -> anyhow::Result<(Vec<VerifyingKey>, u64)> {
    let r = root
        .role(role)
        .ok_or_else(|| anyhow!("the notary root lists no {role} role"))?;
    let keys = r
        .keyids
        .iter()
        .filter_map(|id| root.keys.get(id))
        .map(|k: &NotaryKey| k.verifying_key().clone())
        .collect();
    Ok((keys, r.threshold))
}

/// The key files of a notary trust directory's `private/` (at any depth up to 3, as notary
/// versions laid them out), by the id in their name (`<id>.key`).
fn key_files(trust_dir: &Path) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let private = trust_dir.join("private");
    let mut files = Vec::new();
    collect_key_files(&private, 0, &mut files)?;
    Ok(files
        .into_iter()
        .filter_map(|f| Some((f.file_stem()?.to_str()?.to_owned(), f)))
        .collect())
}

fn collect_key_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && depth == 0 => {
            bail!(
                "{} does not exist: --keys notary needs the notary client's private keys",
                dir.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() && depth < 3 {
            collect_key_files(&path, depth + 1, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "key") {
            if out.len() >= MAX_KEY_FILES {
                bail!(
                    "more than {MAX_KEY_FILES} key files under {}",
                    dir.display()
                );
            }
            out.push(path);
        }
    }
    Ok(())
}

/// The private key of `role` among `wanted` (the public keys the verified metadata lists for
/// it), decrypted from the file the notary client named after it; `None` when the trust
/// directory holds none of them. Only those files are read: the `role:` and `gun:` headers of
/// other files are not authenticated, so they decide nothing.
fn private_key_of(
    files: &BTreeMap<String, PathBuf>,
    role: &str,
    wanted: &[VerifyingKey],
) -> anyhow::Result<Option<PrivateKey>> {
    for public in wanted {
        let Some(file) = files.get(&bare_key_id(public)) else {
            continue;
        };
        let shown = file.display().to_string();
        let text = String::from_utf8(crate::notary::read_capped(file, MAX_KEY_FILE)?)
            .map_err(|_| anyhow!("{shown} is not a notary key file (not UTF-8)"))?;
        let (pass, source) = passphrase::notary(role, &shown)?;
        let k = NotaryKeyFile::from_pem(&text, pass.as_bytes()).with_context(|| {
            format!("cannot decrypt the notary {role} key {shown} (passphrase {source})")
        })?;
        if k.key.verifying_key() != *public {
            bail!("{shown} does not hold the key its name says (the notary {role} key)");
        }
        return Ok(Some(k.key));
    }
    Ok(None)
}

/// Stores `key` in vouch's trust directory under `role` (unless it is there already) and
/// returns its id.
fn keep(keystore: &Keystore, key: &PrivateKey, role: &str, gun: &Gun) -> anyhow::Result<String> {
    let public = keystore::public_key(key);
    let id = public.key_id();
    if keystore.get(&id)?.is_none() {
        let pass = passphrase::for_new_key(role)?;
        let kdf = passphrase::kdf()?;
        let entry = keystore.save(key, role, &pass, kdf)?;
        keystore.record_repository(&entry, gun.as_str())?;
    }
    Ok(id.to_string())
}

/// The keys the import signs with, decided before anything is written.
struct Signing {
    root: Vec<String>,
    targets: Vec<String>,
    /// Per delegated role: its public keys (TUF 1.0), its threshold, and the id of the key
    /// held for it, if any.
    delegations: BTreeMap<String, (Vec<Key>, u64, Option<String>)>,
}

fn notary_signing(
    ctx: &Context,
    trust_dir: &Path,
    gun: &Gun,
    collection: &NotaryCollection,
) -> anyhow::Result<Signing> {
    let root_bytes = collection.state.root();
    let root = Signed::parse("root", root_bytes)
        .and_then(|s| NotaryRoot::from_signed(&s.signed))
        .map_err(|e| anyhow!("the verified notary root of {gun} does not parse: {e}"))?;
    let files = key_files(trust_dir)?;
    // Every key is found and unlocked first; only then is any kept here.
    let mut top = Vec::new();
    for role in ["root", "targets"] {
        let (wanted, threshold) = root_role_keys(&root, role)?;
        if threshold > 1 {
            bail!(
                "the notary {role} role of {gun} needs {threshold} signatures, and --keys notary \
                 carries one key over: use --keys new, or raise the threshold in vouch afterwards"
            );
        }
        let key = private_key_of(&files, role, &wanted)?.ok_or_else(|| {
            anyhow!(
                "{} holds no private key of the {role} role of {gun}: --keys notary needs the \
                 notary {role} key (or use --keys new)",
                trust_dir.join("private").display()
            )
        })?;
        top.push((role, key));
    }
    let mut held = Vec::new();
    for role in collection.roles.iter().filter(|r| r.name != "targets") {
        let wanted: Vec<VerifyingKey> = role
            .keys
            .iter()
            .map(|k| k.verifying_key().clone())
            .collect();
        held.push((role, private_key_of(&files, &role.name, &wanted)?));
    }

    let keystore = Keystore::new(&ctx.trust_dir);
    let mut ids = Vec::new();
    for (role, key) in &top {
        ids.push(keep(&keystore, key, role, gun)?);
    }
    let mut delegations = BTreeMap::new();
    for (role, key) in held {
        let keys: Vec<Key> = role
            .keys
            .iter()
            .map(|k| Key::from_verifying_key(k.verifying_key()))
            .collect();
        let id = match key {
            Some(k) => Some(keep(&keystore, &k, &role.name, gun)?),
            None => None,
        };
        delegations.insert(role.name.clone(), (keys, role.threshold, id));
    }
    Ok(Signing {
        root: ids[..1].to_vec(),
        targets: ids[1..].to_vec(),
        delegations,
    })
}

/// Whether vouch-server already has trust data for `gun`.
fn exists_on_server(ctx: &Context, gun: &Gun) -> anyhow::Result<bool> {
    let remote = Remote::new(ctx, gun)?;
    match remote.fetch("root.json", Limits::DEFAULT.root_max_bytes) {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(repo::transport_error(&ctx.server, gun, e)),
    }
}

/// Notary's path prefixes as vouch delegation patterns: `""` is every tag (`*`), a prefix
/// `p` is `p*`. A prefix holding a pattern character cannot be said as a pattern.
fn patterns(prefixes: &[String]) -> Result<Vec<String>, String> {
    prefixes
        .iter()
        .map(|p| {
            if p.contains(['*', '?', '[', ']', '\\']) {
                Err(format!("its path prefix {p:?} holds a pattern character"))
            } else {
                Ok(format!("{p}*"))
            }
        })
        .collect()
}

fn import_one(ctx: &Context, args: &Args, trust_dir: &Path, gun: &Gun) -> anyhow::Result<Report> {
    let state = crate::notary::starting_state(ctx, gun, args.notary_root.as_deref(), trust_dir)?;
    let (collection, source) = verified_collection(ctx, args, trust_dir, gun, &state)?;
    let (mut tags, mut skipped) = plan(gun, &collection, args.keys);

    // Keys: unlocked (and, for --keys notary, stored here) before anything is published.
    let signing = match args.keys {
        KeySource::Notary => Some(notary_signing(ctx, trust_dir, gun, &collection)?),
        KeySource::New => None,
    };
    let mut delegations: Vec<(RoleName, Delegate)> = Vec::new();
    if let Some(s) = &signing {
        for (role, (keys, threshold, held)) in &s.delegations {
            let refuse = |reason: String, tags: &mut Vec<Tag>, skipped: &mut Vec<Skipped>| {
                tags.retain(|t| {
                    let keep = t.role.as_str() != role;
                    if !keep {
                        skipped.push(Skipped {
                            role: role.clone(),
                            tag: Some(t.name.to_string()),
                            reason: reason.clone(),
                        });
                    }
                    keep
                });
            };
            if role.matches('/').count() > 1 {
                continue;
            }
            if held.is_none() {
                refuse(
                    "delegated role without its signer's key in the notary trust directory".into(),
                    &mut tags,
                    &mut skipped,
                );
                continue;
            }
            if *threshold > 1 {
                refuse(
                    format!(
                        "its threshold is {threshold}, and one signer's key carries over: \
                         delegate it in vouch with its signers' keys and have them sign"
                    ),
                    &mut tags,
                    &mut skipped,
                );
                continue;
            }
            let paths = collection
                .role(role)
                .map(|r| patterns(&r.paths))
                .unwrap_or_else(|| Ok(vec!["*".into()]));
            let paths = match paths {
                Ok(p) => p,
                Err(reason) => {
                    refuse(reason, &mut tags, &mut skipped);
                    continue;
                }
            };
            let name = RoleName::new(role.clone()).map_err(|e| anyhow!("{role}: {e}"))?;
            let threshold = Threshold::new(u32::try_from(*threshold).unwrap_or(u32::MAX))
                .map_err(|e| anyhow!("{role}: threshold {threshold}: {e}"))?;
            delegations.push((
                name.clone(),
                Delegate {
                    name,
                    keys: keys.clone(),
                    paths,
                    threshold: Some(threshold),
                    terminating: false,
                },
            ));
        }
    }

    let created = if exists_on_server(ctx, gun)? {
        false
    } else {
        let (root_key, targets_key) = match &signing {
            Some(s) => (s.root.clone(), s.targets.clone()),
            None => (Vec::new(), Vec::new()),
        };
        init::create(
            ctx,
            &init::Args {
                gun: gun.to_string(),
                root_key,
                targets_key,
                root_threshold: 1,
                targets_threshold: 1,
                client_snapshot: false,
                hashed_bins: None,
                propose: false,
            },
        )?;
        true
    };

    // Delegations the repository does not have yet, as notary had them.
    let mut repo = EditingRepo::open_for_editing(ctx, gun)?;
    for (name, d) in &delegations {
        let current = repo::delegation_of(repo.trusted()?, name);
        let have: Vec<_> = current
            .as_ref()
            .map(|c| c.keyids.clone())
            .unwrap_or_default();
        if d.keys.iter().all(|k| have.contains(&k.key_id())) {
            continue;
        }
        delegation::add(ctx, gun, d)?;
        repo = EditingRepo::open_for_editing(ctx, gun)?;
    }

    // What vouch holds already, role by role.
    let roles: Vec<RoleName> = {
        let mut r: Vec<RoleName> = Vec::new();
        for t in &tags {
            if !r.contains(&t.role) {
                r.push(t.role.clone());
            }
        }
        r
    };
    let delegated: Vec<RoleName> = roles
        .iter()
        .filter(|r| r.top_level().is_none())
        .cloned()
        .collect();
    let set = repo.with_roles(&delegated)?;
    let mut statuses = Vec::new();
    for t in &tags {
        let held = set
            .targets_role(t.role.as_str())
            .and_then(|r| r.signed().targets.get(&t.name).cloned());
        let status = match held {
            None => Status::Added,
            Some(f)
                if f.length == t.length
                    && f.hashes.get("sha256").map(String::as_str) == Some(t.digest.hex()) =>
            {
                Status::Unchanged
            }
            Some(_) => Status::Changed,
        };
        statuses.push(status);
    }
    for role in &roles {
        let changes: Vec<Change> = tags
            .iter()
            .zip(&statuses)
            .filter(|(t, s)| t.role == *role && **s != Status::Unchanged)
            .map(|(t, _)| change(gun, t))
            .collect::<anyhow::Result<_>>()?;
        if changes.is_empty() {
            continue;
        }
        let given = (role.top_level() != Some(TopLevelRole::Targets)).then_some(role);
        sign::sign_group(ctx, &mut repo, given, &changes)
            .with_context(|| format!("cannot sign the tags of {role} into {gun}"))?;
    }

    // The state to start from next time: a notary server that rolls back is caught.
    crate::notary::save_state(ctx, gun, &collection.state)?;

    let mut keys = BTreeMap::new();
    if let Some(s) = &signing {
        keys.insert("root".to_owned(), s.root.clone());
        keys.insert("targets".to_owned(), s.targets.clone());
        for (role, (_, _, held)) in &s.delegations {
            if let Some(id) = held {
                keys.insert(role.clone(), vec![id.clone()]);
            }
        }
    }
    Ok(Report {
        gun: gun.clone(),
        source,
        created,
        root_version: collection.root_version,
        timestamp_version: collection.timestamp_version,
        tags: tags.into_iter().zip(statuses).collect(),
        skipped,
        expired: collection
            .expired
            .iter()
            .map(|e| (e.role.clone(), e.expires.clone()))
            .collect(),
        keys,
    })
}

fn change(gun: &Gun, t: &Tag) -> anyhow::Result<Change> {
    let image = super::parse_image(&format!("{gun}:{}", t.name))?;
    Ok(Change {
        image,
        name: t.name.clone(),
        digest: t.digest.clone(),
        target: TargetFile::image(&t.digest, t.length, None),
    })
}

fn print(ctx: &Context, reports: &[Report], failed: &[(Gun, anyhow::Error)]) -> anyhow::Result<()> {
    match ctx.output {
        Format::Json => output::json(&json!({
            "imported": reports.iter().map(report_json).collect::<Vec<_>>(),
            "failed": failed.iter().map(|(g, e)| json!({
                "gun": g.as_str(),
                "error": crate::failure::one_line(e),
            })).collect::<Vec<_>>(),
        })),
        Format::Text => {
            let mut out = String::new();
            for r in reports {
                out.push_str(&report_text(r));
            }
            for (g, e) in failed {
                out.push_str(&format!(
                    "not imported {g}: {}\n",
                    crate::failure::one_line(e)
                ));
            }
            output::text(out.trim_end())
        }
    }
}

fn report_json(r: &Report) -> serde_json::Value {
    json!({
        "gun": r.gun.as_str(),
        "source": r.source,
        "created": r.created,
        "notary_root_version": r.root_version,
        "notary_timestamp_version": r.timestamp_version,
        "tags": r.tags.iter().map(|(t, s)| json!({
            "tag": t.name.as_str(),
            "digest": t.digest.as_str(),
            "length": t.length,
            "role": t.role.as_str(),
            "status": s.as_str(),
        })).collect::<Vec<_>>(),
        "skipped": r.skipped.iter().map(|s| json!({
            "role": s.role,
            "tag": s.tag,
            "reason": s.reason,
        })).collect::<Vec<_>>(),
        "expired": r.expired.iter().map(|(role, at)| json!({"role": role, "expires": at}))
            .collect::<Vec<_>>(),
        "keys": r.keys,
    })
}

fn report_text(r: &Report) -> String {
    let mut out = format!(
        "{} {} from {} (notary root version {}, timestamp version {})\n",
        if r.created { "imported" } else { "updated" },
        r.gun,
        r.source,
        r.root_version,
        r.timestamp_version
    );
    for (t, s) in &r.tags {
        out.push_str(&format!(
            "  {:<9}  {}:{} -> {} ({})\n",
            s.as_str(),
            r.gun,
            t.name,
            t.digest,
            t.role
        ));
    }
    for s in &r.skipped {
        match &s.tag {
            Some(tag) => out.push_str(&format!(
                "  skipped    {}:{tag} ({}): {}\n",
                r.gun, s.role, s.reason
            )),
            None => out.push_str(&format!("  skipped    role {}: {}\n", s.role, s.reason)),
        }
    }
    for (role, at) in &r.expired {
        out.push_str(&format!(
            "  expired    {role} (expired {at}), imported with --allow-expired\n"
        ));
    }
    for (role, ids) in &r.keys {
        for id in ids {
            out.push_str(&format!("  key        {role} {id} (from notary)\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn notary_prefixes_become_patterns() {
        assert_eq!(patterns(&["".into()]).unwrap(), vec!["*"]);
        assert_eq!(
            patterns(&["v1".into(), "rel-".into()]).unwrap(),
            vec!["v1*", "rel-*"]
        );
        assert!(patterns(&["v*".into()])
            .unwrap_err()
            .contains("pattern character"));
    }
}
