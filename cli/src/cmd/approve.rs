//! `vouch approve`: adds this trust directory's signatures to a staged proposal, after
//! showing what it changes and asking.
//!
//! Online (`vouch approve GUN ID`): the repository is opened the verified way (the
//! updater's trusted current metadata), the proposal is fetched, checked against it
//! ([`crate::approval::check`]: the repository asked for, each role parsed as its type, the
//! next version, made against the trusted current version), its changes are shown, and on
//! confirmation every key held here that may sign a proposed role and has not yet signs the
//! canonical `signed` bytes; the signatures go to the server, which publishes the update
//! once every threshold is met.
//!
//! Offline (`vouch approve --file FILE -o OUT`): no network at all. The file is a proposal
//! `vouch proposals export` wrote, with the current metadata the exporter verified; when
//! this trust directory holds trusted metadata of the repository, the file's current
//! versions must be exactly those, otherwise the file's current metadata must verify against
//! itself and the diff is plainly said to be against the exported copy. The signatures are added to the file's metadata and written to OUT, for
//! `vouch proposals import`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use serde_json::json;
use vouch_tuf::api::proposal::{Proposal, ProposalStatus, Signatures};
use vouch_tuf::json::{Map, Value};
use vouch_tuf::metadata::{Metadata, Signature};
use vouch_tuf::reference::Gun;
use vouch_tuf::types::{KeyId, RoleName, TopLevelRole};
use vouch_verifier::cache::MetadataStore;
use vouch_verifier::Limits;

use super::proposals;
use crate::approval::{self, Baseline, Checked, Parsed};
use crate::confirm::confirm;
use crate::context::Context;
use crate::keystore::Keystore;
use crate::output::{self, Format};
use crate::remote::Remote;
use crate::repo::{EditingRepo, Signers, Submit};
use crate::trust;
use vouch_verifier::transport::Transport as _;

/// `vouch approve`
///
/// Examples:
///   vouch approve registry.example.com/org/app 7
///   vouch approve --file p7.json -o p7.signed.json
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image repository.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub gun: Option<String>,
    /// The proposal's id.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub id: Option<u64>,
    /// Approve an exported proposal (`vouch proposals export`) with no network.
    #[arg(long, value_name = "FILE", requires = "out")]
    pub file: Option<PathBuf>,
    /// Where to write the signed proposal (with --file).
    #[arg(short, long, value_name = "FILE", requires = "file")]
    pub out: Option<PathBuf>,
    /// Sign without asking (after the changes are shown).
    #[arg(long)]
    pub yes: bool,
    /// Trust the root the server serves now, when this trust directory has never trusted
    /// the repository and neither --trust-root nor a pin file covers it.
    #[arg(long, conflicts_with = "file")]
    pub first_use: bool,
}

/// Runs `vouch approve`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    match (&args.file, &args.out, &args.gun, args.id) {
        (Some(file), Some(out), _, _) => offline(ctx, file, out, args.yes),
        (None, _, Some(gun), Some(id)) => {
            online(ctx, &super::parse_gun(gun)?, id, args.yes, args.first_use)
        }
        _ => bail!("name the proposal: vouch approve GUN ID, or vouch approve --file FILE -o OUT"),
    }
}

/// A checked proposal, what it was checked against, and how.
struct Review<'a> {
    proposal: &'a Proposal,
    checked: &'a [Checked],
    base: &'a Baseline,
    /// Said before the question (offline: what the diff is against).
    note: Option<&'a str>,
}

/// Refuses a document that is not the proposal `id` asked for.
fn refuse_other_id(id: u64, p: &Proposal) -> anyhow::Result<()> {
    if p.id != id {
        bail!(
            "the server answered with proposal #{}, not #{id}: refusing to sign it, nothing was signed",
            p.id
        );
    }
    Ok(())
}

/// Refuses a proposal that can no longer be signed.
fn refuse_closed(gun: &str, p: &Proposal) -> anyhow::Result<()> {
    if let Some(why) = super::proposals::not_pending(gun, p) {
        bail!("{why}: it can no longer be signed, nothing was signed");
    }
    Ok(())
}

/// `gun` opened the verified way (its trusted current metadata), or `None` for a repository
/// that has no trust data anywhere yet (its first root is a proposal); and its server.
pub fn open_or_new(ctx: &Context, gun: &Gun) -> anyhow::Result<(Option<EditingRepo>, Remote)> {
    match EditingRepo::open_for_editing(ctx, gun) {
        Ok(r) => {
            let remote = r.remote().clone();
            Ok((Some(r), remote))
        }
        Err(e) => {
            let remote = Remote::new(ctx, gun)?;
            if !is_new_repository(ctx, gun, &remote)? {
                return Err(e);
            }
            Ok((None, remote))
        }
    }
}

/// The baseline of `p` in `repo` (an empty one for a new repository), and what to say
/// about it.
pub fn baseline_or_new(
    repo: Option<&EditingRepo>,
    gun: &Gun,
    p: &Proposal,
) -> anyhow::Result<(Baseline, Option<String>)> {
    Ok(match repo {
        Some(r) => (proposals::baseline_of(r, p)?, None),
        None => (
            Baseline::default(),
            Some(format!(
                "{gun} has no trust data yet: this is its first root, so there is nothing to compare with; check that every key listed is one you expect"
            )),
        ),
    })
}

fn online(ctx: &Context, gun: &Gun, id: u64, yes: bool, first_use: bool) -> anyhow::Result<()> {
    if !first_use
        && trust::existing_pin(ctx, gun)?.is_none()
        && trust::requested(ctx, gun)?.is_none()
        && !is_new_repository(ctx, gun, &Remote::new(ctx, gun)?)?
    {
        bail!(
            "this trust directory has never trusted {gun}: approving now would trust whatever root the server serves; \
             nothing was signed. Pin it (--trust-root FILE, --trust-pins FILE, `vouch trust pin {gun} ROOT_FILE`) \
             or, having compared its root with the repository owner's, pass --first-use"
        );
    }
    let (mut repo, remote) = open_or_new(ctx, gun)?;
    let p = remote.proposal(id)?;
    refuse_other_id(id, &p)?;
    refuse_closed(gun.as_str(), &p)?;
    let (base, note) = baseline_or_new(repo.as_ref(), gun, &p)?;
    let checked = approval::check(&p, gun, &base)?;
    check_first_root(ctx, gun, &checked)?;
    let sigs = review_and_sign(
        ctx,
        gun,
        &Review {
            proposal: &p,
            checked: &checked,
            base: &base,
            note: note.as_deref(),
        },
        yes,
    )?;
    let after = remote.sign_proposal(id, &sigs)?;
    if let Some(repo) = repo
        .as_mut()
        .filter(|_| after.status == ProposalStatus::Published)
    {
        // Published: the new metadata is the server's current, verified like any other.
        repo.refresh()
            .context("the proposal was published, and the repository does not verify")?;
    }
    proposals::report(ctx, gun, &after, "approved")
}

/// Checks a proposed first root (a root with no trusted current one: a new repository)
/// against the anchor `--trust-root` or the pin file asks for `gun`, if any.
fn check_first_root(ctx: &Context, gun: &Gun, checked: &[Checked]) -> anyhow::Result<()> {
    for c in checked {
        if let (Parsed::Root(m), None) = (&c.parsed, c.current) {
            trust::check_proposed_first_root(ctx, gun, m)?;
        }
    }
    Ok(())
}

/// True when neither this trust directory nor the server has trust data of `gun`.
fn is_new_repository(ctx: &Context, gun: &Gun, remote: &Remote) -> anyhow::Result<bool> {
    if trust::existing_pin(ctx, gun)?.is_some() {
        return Ok(false);
    }
    let cap = Limits::DEFAULT.root_max_bytes;
    Ok(matches!(
        remote.fetch("root.json", cap),
        Err(vouch_verifier::transport::TransportError::NotFound { .. })
    ))
}

/// Shows what `checked` changes, asks, and signs each role with every key held here that
/// may sign it and has not. `note` is said before the question (offline: what the diff is
/// against).
fn review_and_sign(
    ctx: &Context,
    gun: &Gun,
    r: &Review<'_>,
    yes: bool,
) -> anyhow::Result<Signatures> {
    let Review {
        proposal: p,
        checked,
        base,
        note,
    } = *r;
    let keystore = Keystore::new(&ctx.trust_dir);
    let mut plan: Vec<(&Checked, Vec<KeyId>)> = Vec::new();
    let mut wanted_all: Vec<String> = Vec::new();
    let mut already: Vec<String> = Vec::new();
    for c in checked {
        let wanted = approval::wanted_keys(c, checked, base);
        let mut mine = Vec::new();
        for id in &wanted {
            if keystore
                .get(id)?
                .is_some_and(|e| crate::repo::entry_is_for(&e, gun.as_str()))
            {
                mine.push(id.clone());
            }
        }
        for id in c.parsed.signed_by() {
            if keystore.get(&id)?.is_some() {
                already.push(format!("{} by {id}", c.role));
            }
        }
        wanted_all.push(format!(
            "{}: {}",
            c.role,
            if wanted.is_empty() {
                "no key left to sign".to_owned()
            } else {
                proposals::ids_text(&wanted)
            }
        ));
        if !mine.is_empty() {
            plan.push((c, mine));
        }
    }
    if plan.is_empty() {
        let signed = if already.is_empty() {
            String::new()
        } else {
            format!(
                "; the keys held here already signed it ({})",
                already.join(", ")
            )
        };
        bail!(
            "{} holds no key that may still sign proposal #{} of {gun} (wanted: {}){signed}: nothing was signed; the approval must come from another key holder",
            keystore.dir().display(),
            p.id,
            wanted_all.join("; ")
        );
    }

    let mut review = String::new();
    if checked
        .iter()
        .any(|c| matches!(c.parsed, Parsed::Root(_)) && c.current.is_none())
    {
        review.push_str(&format!(
            "FIRST root of {gun}: nothing to compare with — check every key\n"
        ));
    }
    review.push_str(&format!(
        "proposal #{} for {gun}, proposed by {} on {} (expires {}):\n",
        p.id, p.proposed_by, p.created_at, p.expires_at
    ));
    review.push_str(&proposals::changes_text(checked));
    if let Some(n) = note {
        review.push_str(&format!("note: {n}\n"));
    }
    for line in version_warnings(checked) {
        review.push_str(&format!("warning: {line}\n"));
    }
    for (c, ids) in &plan {
        for id in ids {
            review.push_str(&format!(
                "signing {} with {id} ({})\n",
                c.role,
                approval::key_use(id, base)
            ));
        }
    }
    // Who proposed it, notes and labels come from the server or the file.
    let review = output::terminal_safe(&review);
    use std::io::IsTerminal as _;
    let asks = !yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if ctx.output == Format::Text && !asks {
        output::text(&review)?;
    } else {
        // About to ask (the question is on stderr, so the review is too, where `> file`
        // cannot hide it), or stdout carries one JSON document.
        crate::progress::clear_line();
        eprint!("{review}");
    }
    confirm(&format!("Sign proposal #{} of {gun} as shown?", p.id), yes)?;

    let mut signers = Signers::new(Submit::Propose);
    let mut out = Signatures::default();
    for (c, ids) in &plan {
        let held = signers.held(&keystore, gun.as_str(), &c.role, ids)?;
        let mut sigs = Vec::with_capacity(held.len());
        for (id, signer) in held {
            let sig = signer
                .sign(c.parsed.canonical())
                .with_context(|| format!("cannot sign {} with {id}", c.role))?;
            sigs.push(Signature {
                keyid: id,
                sig: vouch_tuf::hex::encode(sig),
                extra: Map::new(),
            });
        }
        out.roles.insert(c.role.clone(), sigs);
    }
    Ok(out)
}

/// A warning for each non-root role whose proposed version is not the trusted one + 1.
fn version_warnings(checked: &[Checked]) -> Vec<String> {
    checked
        .iter()
        .filter(|c| c.role != "root")
        .filter_map(|c| {
            let v = c.current?;
            let new = c.parsed.version();
            (new != v.saturating_add(1)).then(|| {
                format!(
                    "the proposed {} is version {new}, not {} (the trusted version is {v}): versions are skipped",
                    c.role,
                    v.saturating_add(1)
                )
            })
        })
        .collect()
}

fn offline(ctx: &Context, file: &Path, out: &Path, yes: bool) -> anyhow::Result<()> {
    let mut p = proposals::read_proposal(file)?;
    let gun = Gun::new(&p.gun).map_err(|e| {
        anyhow!(
            "{} names an invalid repository {:?}: {e}",
            file.display(),
            p.gun
        )
    })?;
    refuse_closed(gun.as_str(), &p)?;
    let (base, note) = offline_baseline(ctx, &gun, &p, file)?;
    let checked = approval::check(&p, &gun, &base)?;
    check_first_root(ctx, &gun, &checked)?;
    let sigs = review_and_sign(
        ctx,
        &gun,
        &Review {
            proposal: &p,
            checked: &checked,
            base: &base,
            note: note.as_deref(),
        },
        yes,
    )?;
    let mut added = 0usize;
    for r in &mut p.roles {
        let Some(new) = sigs.roles.get(&r.role) else {
            continue;
        };
        let Some(Value::Object(env)) = r.metadata.as_mut() else {
            bail!("{} carries no metadata for {}", file.display(), r.role);
        };
        let Some(Value::Array(list)) = env.get_mut("signatures") else {
            bail!(
                "the proposed {} in {} has no signatures list",
                r.role,
                file.display()
            );
        };
        for s in new {
            let mut o = Map::new();
            o.insert("keyid".into(), Value::from(s.keyid.as_str()));
            o.insert("sig".into(), Value::from(s.sig.as_str()));
            list.push(Value::Object(o));
            added += 1;
        }
    }
    proposals::write_file(out, &p.encode())?;
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "id": p.id,
            "file": out.display().to_string(),
            "signatures": added,
            "roles": sigs.roles.keys().collect::<Vec<_>>(),
        })),
        Format::Text => output::text(&format!(
            "signed proposal #{} of {gun} ({added} signature{}): wrote {}; on a machine with network, run `vouch proposals import {gun} {}`",
            p.id,
            if added == 1 { "" } else { "s" },
            out.display(),
            out.display()
        )),
    }
}

/// The baseline an offline approval checks against, and what to say about it: this trust
/// directory's trusted metadata of `gun` when it has any (the file's current versions must
/// be exactly those), else the exported copy in the file (said plainly).
fn offline_baseline(
    ctx: &Context,
    gun: &Gun,
    p: &Proposal,
    file: &Path,
) -> anyhow::Result<(Baseline, Option<String>)> {
    let from_file = file_baseline(p)?;
    let cached = match trust::existing_pin(ctx, gun)? {
        Some(_) => Some(cache_baseline(&trust::store(ctx, gun)?, p)?)
            .filter(|b: &Baseline| b.root.is_some()),
        None => None,
    };
    let Some(mut trusted) = cached else {
        consistent(&from_file, gun, file)?;
        return Ok((
            from_file,
            Some(format!(
                "this trust directory holds no trusted metadata of {gun}: the changes are shown against the copy exported in {}, not against metadata verified here",
                file.display()
            )),
        ));
    };
    let mut unverified = Vec::new();
    for r in &p.roles {
        let mine = trusted.canonical(&r.role).map(<[u8]>::to_vec);
        let theirs = match &r.current {
            Some(v) => Some(Parsed::parse(&r.role, v)?),
            None => None,
        };
        match (mine, theirs) {
            (Some(m), Some(t)) if m == t.canonical() => {}
            (Some(_), _) => bail!(
                "the current {} in {} (version {}) is not the {} this trust directory trusts (version {}): the export or this trust directory is out of date; nothing was signed",
                r.role,
                file.display(),
                r.base_version.map_or("none".to_owned(), |v| v.to_string()),
                r.role,
                trusted.version_of(&r.role).map_or("none".to_owned(), |v| v.to_string())
            ),
            (None, Some(t)) => {
                // A delegated role this trust directory never loaded: the exported copy, once
                // it verifies under the trusted role that delegates it.
                if let Parsed::Targets(m) = t {
                    verify_under_trusted(&trusted, &r.role, &m, gun, file)?;
                    trusted.targets.insert(r.role.clone(), m);
                    unverified.push(r.role.clone());
                }
            }
            (None, None) => {}
        }
    }
    let note = (!unverified.is_empty()).then(|| {
        format!(
            "{} shown against the copy exported in {} (this trust directory has not verified {})",
            unverified.join(", "),
            file.display(),
            if unverified.len() == 1 { "it" } else { "them" }
        )
    });
    Ok((trusted, note))
}

/// Checks that the `current` metadata of a file is consistent with itself, for an approver
/// with no trusted metadata to check it against: the current root is signed by a threshold
/// of its own root keys, targets and snapshot by a threshold of that root's keys for them,
/// and each delegated role by a threshold of the keys its current delegating role in the
/// file delegates it to.
fn consistent(base: &Baseline, gun: &Gun, file: &Path) -> anyhow::Result<()> {
    let unverifiable = |role: &str, by: &str| {
        anyhow!(
            "the current {role} in {} cannot be checked: the file holds no current {by} to verify it with, and this trust directory \
             holds no trusted metadata of {gun}; nothing was signed: approve online (`vouch approve {gun} ID`) or with a trust \
             directory that holds the repository",
            file.display()
        )
    };
    let bad = |role: &str, e: &dyn std::fmt::Display| {
        anyhow!(
            "the current {role} in {} is not signed by the keys that may sign it ({e}): the file was altered or is not from the \
             repository's server; nothing was signed",
            file.display()
        )
    };
    if let Some(root) = &base.root {
        root.signed()
            .verify_role(TopLevelRole::Root, root)
            .map_err(|e| bad("root", &e))?;
    }
    if let Some(s) = &base.snapshot {
        let root = base
            .root
            .as_ref()
            .ok_or_else(|| unverifiable("snapshot", "root"))?;
        root.signed()
            .verify_role(TopLevelRole::Snapshot, s)
            .map_err(|e| bad("snapshot", &e))?;
    }
    for (role, m) in &base.targets {
        if role == "targets" {
            let root = base
                .root
                .as_ref()
                .ok_or_else(|| unverifiable(role, "root"))?;
            root.signed()
                .verify_role(TopLevelRole::Targets, m)
                .map_err(|e| bad(role, &e))?;
            continue;
        }
        let parents: Vec<_> = base
            .targets
            .iter()
            .filter(|(name, _)| *name != role)
            .filter_map(|(_, p)| {
                let d = p.signed().delegations.as_ref()?;
                Some((d, d.role(role)?))
            })
            .collect();
        let [(d, dr)] = parents.as_slice() else {
            return Err(unverifiable(role, "role that delegates it (exactly one)"));
        };
        d.verify_delegated(dr, m).map_err(|e| bad(role, &e))?;
    }
    Ok(())
}

/// Checks the exported current `m` of the delegated role `role` against `trusted`: exactly
/// one trusted role delegates it, and a threshold of the keys it delegates `role` to signed
/// it.
fn verify_under_trusted(
    trusted: &Baseline,
    role: &str,
    m: &Metadata<vouch_tuf::metadata::Targets>,
    gun: &Gun,
    file: &Path,
) -> anyhow::Result<()> {
    let parents: Vec<_> = trusted
        .targets
        .iter()
        .filter(|(name, _)| name.as_str() != role)
        .filter_map(|(_, p)| {
            let d = p.signed().delegations.as_ref()?;
            Some((d, d.role(role)?))
        })
        .collect();
    let [(d, dr)] = parents.as_slice() else {
        bail!(
            "the current {role} in {} cannot be checked: this trust directory holds no trusted role that delegates it \
             (or more than one); nothing was signed: refresh it online (`vouch status {gun}`) or approve online",
            file.display()
        );
    };
    d.verify_delegated(dr, m).map_err(|e| {
        anyhow!(
            "the current {role} in {} is not signed by the keys this trust directory's metadata delegates it to ({e}): \
             the file was altered or is not from the repository's server; nothing was signed",
            file.display()
        )
    })?;
    Ok(())
}

/// The baseline made of the `current` envelopes in the file.
fn file_baseline(p: &Proposal) -> anyhow::Result<Baseline> {
    let mut base = Baseline::default();
    for r in &p.roles {
        let Some(v) = &r.current else { continue };
        match Parsed::parse(&r.role, v)? {
            Parsed::Root(m) => base.root = Some(m),
            Parsed::Snapshot(m) => base.snapshot = Some(m),
            Parsed::Targets(m) => {
                base.targets.insert(r.role.clone(), m);
            }
        }
    }
    Ok(base)
}

/// The baseline made of this trust directory's trusted metadata: root, targets, snapshot and
/// the delegated roles `p` changes, when cached.
fn cache_baseline(store: &MetadataStore, p: &Proposal) -> anyhow::Result<Baseline> {
    let limits = Limits::DEFAULT;
    let load = |role: &RoleName, max: u64| -> anyhow::Result<Option<Vec<u8>>> {
        store.load(role, max).with_context(|| {
            format!(
                "cannot read the trusted {role} of {}",
                store.dir().display()
            )
        })
    };
    let mut base = Baseline::default();
    if let Some(b) = load(&TopLevelRole::Root.name(), limits.root_max_bytes)? {
        base.root = Some(Metadata::from_bytes(&b).context("the trusted root in the cache")?);
    }
    if let Some(b) = load(&TopLevelRole::Snapshot.name(), limits.snapshot_max_bytes)? {
        base.snapshot =
            Some(Metadata::from_bytes(&b).context("the trusted snapshot in the cache")?);
    }
    let mut names = vec![TopLevelRole::Targets.name()];
    for r in &p.roles {
        if TopLevelRole::from_name(&r.role).is_none() {
            if let Ok(n) = RoleName::new(r.role.clone()) {
                names.push(n);
            }
        }
    }
    for name in names {
        if let Some(b) = load(&name, limits.targets_max_bytes)? {
            let md = Metadata::from_bytes_as(name.as_str(), &b)
                .with_context(|| format!("the trusted {name} in the cache"))?;
            base.targets.insert(name.as_str().to_owned(), md);
        }
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
    use vouch_tuf::metadata::{DelegatedRole, Delegations, Key, Role, Root, Targets};
    use vouch_tuf::time::Timestamp;

    fn public(k: &PrivateKey) -> Key {
        Key::from_verifying_key(&k.verifying_key())
    }

    fn later() -> Timestamp {
        Timestamp::from_unix(2_000_000_000)
    }

    /// A file baseline: root (key 0), targets (key 1) delegating `targets/prod` to key 2;
    /// each signed by its key.
    fn file_base(keys: &[PrivateKey]) -> Baseline {
        let mut root = Root::new(later());
        root.add_key(TopLevelRole::Root, public(&keys[0]));
        root.add_key(TopLevelRole::Targets, public(&keys[1]));
        let mut root = Metadata::new(root);
        root.sign(&keys[0]).unwrap();
        let mut t = Targets::new(later());
        let mut d = Delegations::default();
        d.keys.insert(public(&keys[2]).key_id(), public(&keys[2]));
        d.roles.push(DelegatedRole::with_paths(
            RoleName::new("targets/prod".to_owned()).unwrap(),
            vec![public(&keys[2]).key_id()],
            vec!["*".into()],
        ));
        t.delegations = Some(d);
        let mut t = Metadata::new(t);
        t.sign(&keys[1]).unwrap();
        let mut prod = Metadata::new(Targets::new(later()));
        prod.sign(&keys[2]).unwrap();
        let mut base = Baseline {
            root: Some(root),
            ..Baseline::default()
        };
        base.targets.insert("targets".into(), t);
        base.targets.insert("targets/prod".into(), prod);
        base
    }

    fn keys() -> Vec<PrivateKey> {
        (0..4)
            .map(|_| PrivateKey::generate(Algorithm::Ed25519).unwrap())
            .collect()
    }

    #[test]
    fn a_file_consistent_with_itself_passes() {
        let keys = keys();
        let gun = Gun::new("example.com/org/app").unwrap();
        consistent(&file_base(&keys), &gun, Path::new("p.json")).unwrap();
    }

    #[test]
    fn a_file_whose_current_metadata_is_not_signed_by_its_authority_is_refused() {
        let keys = keys();
        let gun = Gun::new("example.com/org/app").unwrap();
        let file = Path::new("p.json");
        // A current root not signed by its own root key.
        let mut base = file_base(&keys);
        let mut root = Metadata::new(base.root.as_ref().unwrap().signed().clone());
        root.sign(&keys[3]).unwrap();
        base.root = Some(root);
        let e = consistent(&base, &gun, file).unwrap_err().to_string();
        assert!(
            e.contains("the current root in p.json is not signed"),
            "{e}"
        );
        // A delegated role signed by a key its delegating role does not delegate it to.
        let mut base = file_base(&keys);
        let mut prod = Metadata::new(Targets::new(later()));
        prod.sign(&keys[3]).unwrap();
        base.targets.insert("targets/prod".into(), prod);
        let e = consistent(&base, &gun, file).unwrap_err().to_string();
        assert!(
            e.contains("the current targets/prod in p.json is not signed"),
            "{e}"
        );
        // Targets with no root in the file to check it with.
        let mut base = file_base(&keys);
        base.root = None;
        let e = consistent(&base, &gun, file).unwrap_err().to_string();
        assert!(e.contains("cannot be checked"), "{e}");
        assert!(e.contains("approve online"), "{e}");
        // A delegated role with no delegating role in the file.
        let mut base = file_base(&keys);
        base.root = None;
        base.targets.remove("targets");
        let e = consistent(&base, &gun, file).unwrap_err().to_string();
        assert!(
            e.contains("the current targets/prod in p.json cannot be checked"),
            "{e}"
        );
    }

    #[test]
    fn an_exported_delegated_role_must_verify_under_the_trusted_delegation() {
        let keys = keys();
        let gun = Gun::new("example.com/org/app").unwrap();
        let file = Path::new("p.json");
        let mut trusted = file_base(&keys);
        let prod = trusted.targets.remove("targets/prod").unwrap();
        verify_under_trusted(&trusted, "targets/prod", &prod, &gun, file).unwrap();
        let mut forged = Metadata::new(Targets::new(later()));
        forged.sign(&keys[3]).unwrap();
        let e = verify_under_trusted(&trusted, "targets/prod", &forged, &gun, file)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not signed by the keys"), "{e}");
        trusted.targets.remove("targets");
        let e = verify_under_trusted(&trusted, "targets/prod", &prod, &gun, file)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be checked"), "{e}");
    }

    #[test]
    fn a_document_with_another_id_is_refused() {
        let p = Proposal {
            id: 8,
            gun: "example.com/org/app".into(),
            status: ProposalStatus::Pending,
            reason: None,
            proposed_by: "token:alice".into(),
            created_at: Timestamp::from_unix(1_700_000_000),
            expires_at: Timestamp::from_unix(1_700_604_800),
            closed_at: None,
            closed_by: None,
            change_id: None,
            roles: Vec::new(),
            approvals: Vec::new(),
        };
        refuse_other_id(8, &p).unwrap();
        let e = refuse_other_id(7, &p).unwrap_err().to_string();
        assert!(e.contains("proposal #8, not #7"), "{e}");
    }

    #[test]
    fn a_version_that_skips_ahead_is_warned_about() {
        let keys = keys();
        let base = file_base(&keys);
        let mut t = base.targets["targets"].signed().clone();
        for _ in 0..3 {
            t.bump_version();
        }
        let checked = vec![Checked {
            role: "targets".into(),
            parsed: Parsed::Targets(Metadata::new(t.clone())),
            current: Some(1),
            diff: Vec::new(),
        }];
        let w = version_warnings(&checked);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("version 4, not 2"), "{w:?}");
        let mut next = base.targets["targets"].signed().clone();
        next.bump_version();
        let checked = vec![Checked {
            role: "targets".into(),
            parsed: Parsed::Targets(Metadata::new(next)),
            current: Some(1),
            diff: Vec::new(),
        }];
        assert!(version_warnings(&checked).is_empty());
    }
}
