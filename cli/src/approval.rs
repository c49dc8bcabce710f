//! The checks an approver's client makes before it signs a staged proposal, and which of
//! the approver's keys may sign each proposed role (`vouch approve`, `vouch proposals
//! show`).
//!
//! An approver never signs something it has not shown and checked. Against a
//! [`Baseline`] (the trusted current metadata: verified through the updater, or for an
//! offline approval the exported copy, checked against this trust directory's cache when it
//! has one) [`check`] parses each proposed role as its type, checks it is the repository
//! asked for, that the version is the next one (root: exactly current + 1; other roles:
//! newer) and that the proposal was made against the trusted current version, and words
//! the [`diff`] to show. [`wanted_keys`] then says which keys may sign each
//! role (the authorities the server counts) and have not yet; for a delegated role only its
//! delegating parent ([`delegator`]) decides, never the proposed role itself.
//!
//! Pure: no network, no key store, no terminal. The command modules
//! ([`crate::cmd::approve`]) do the fetching, asking and signing.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context as _};
use vouch_tuf::api::proposal::{Proposal, ProposedRole};
use vouch_tuf::json::Value;
use vouch_tuf::metadata::{DelegatedRole, Key, Metadata, Root, Snapshot, Targets};
use vouch_tuf::reference::Gun;
use vouch_tuf::types::{KeyId, RoleName, TopLevelRole};

use crate::diff;

/// The trusted current metadata a proposal is checked against.
#[derive(Debug, Default, Clone)]
pub struct Baseline {
    /// The current root (`None` only offline, with no trusted copy and no root in the file).
    pub root: Option<Metadata<Root>>,
    /// The current top-level targets and the delegated roles known, by role name.
    pub targets: BTreeMap<String, Metadata<Targets>>,
    /// The current snapshot, when known.
    pub snapshot: Option<Metadata<Snapshot>>,
}

impl Baseline {
    /// The current version of `role`, when known.
    pub fn version_of(&self, role: &str) -> Option<u64> {
        match role {
            "root" => self.root.as_ref().map(|m| m.version().get()),
            "snapshot" => self.snapshot.as_ref().map(|m| m.version().get()),
            r => self.targets.get(r).map(|m| m.version().get()),
        }
    }

    /// The current envelope of `role` as a JSON value, when known.
    pub fn envelope(&self, role: &str) -> Option<Value> {
        match role {
            "root" => self.root.as_ref().map(Metadata::to_value),
            "snapshot" => self.snapshot.as_ref().map(Metadata::to_value),
            r => self.targets.get(r).map(Metadata::to_value),
        }
    }

    /// The canonical `signed` bytes of `role`'s current version, when known.
    pub fn canonical(&self, role: &str) -> Option<&[u8]> {
        match role {
            "root" => self.root.as_ref().map(Metadata::canonical_signed),
            "snapshot" => self.snapshot.as_ref().map(Metadata::canonical_signed),
            r => self.targets.get(r).map(Metadata::canonical_signed),
        }
    }
}

/// A proposed role's metadata, parsed as its type.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// A new root.
    Root(Metadata<Root>),
    /// Top-level targets or a delegated role.
    Targets(Metadata<Targets>),
    /// A client-held snapshot.
    Snapshot(Metadata<Snapshot>),
}

impl Parsed {
    /// Parses the envelope `v` of role `role` as that role's type.
    pub fn parse(role: &str, v: &Value) -> anyhow::Result<Self> {
        let what = || format!("the proposed {role} is not valid {role} metadata");
        Ok(match role {
            "root" => Parsed::Root(Metadata::from_value(role, v.clone()).with_context(what)?),
            "snapshot" => {
                Parsed::Snapshot(Metadata::from_value(role, v.clone()).with_context(what)?)
            }
            "timestamp" => bail!(
                "the proposal changes timestamp, which the server signs itself: refusing to sign it"
            ),
            _ => Parsed::Targets(Metadata::from_value(role, v.clone()).with_context(what)?),
        })
    }

    /// The version it proposes.
    pub fn version(&self) -> u64 {
        match self {
            Parsed::Root(m) => m.version().get(),
            Parsed::Targets(m) => m.version().get(),
            Parsed::Snapshot(m) => m.version().get(),
        }
    }

    /// The canonical bytes of `signed`: what a signature covers.
    pub fn canonical(&self) -> &[u8] {
        match self {
            Parsed::Root(m) => m.canonical_signed(),
            Parsed::Targets(m) => m.canonical_signed(),
            Parsed::Snapshot(m) => m.canonical_signed(),
        }
    }

    /// The key ids that already signed it.
    pub fn signed_by(&self) -> Vec<KeyId> {
        let sigs = match self {
            Parsed::Root(m) => m.signatures(),
            Parsed::Targets(m) => m.signatures(),
            Parsed::Snapshot(m) => m.signatures(),
        };
        sigs.iter().map(|s| s.keyid.clone()).collect()
    }
}

/// One proposed role, checked.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The role name.
    pub role: String,
    /// Its proposed metadata.
    pub parsed: Parsed,
    /// The trusted current version it replaces (`None`: a new role).
    pub current: Option<u64>,
    /// What changes, one line each.
    pub diff: Vec<String>,
}

/// The proposed envelope of `r`, which a document fetched by id always carries.
fn metadata_of(r: &ProposedRole) -> anyhow::Result<&Value> {
    r.metadata.as_ref().ok_or_else(|| {
        anyhow!(
            "the proposal carries no metadata for {}: fetch it by id (`vouch proposals show`)",
            r.role
        )
    })
}

/// Parses every role of `proposal` as its type and words what each changes against `base`,
/// without judging whether it may be signed (for `vouch proposals show`); [`check`] judges.
pub fn describe(proposal: &Proposal, base: &Baseline) -> anyhow::Result<Vec<Checked>> {
    let mut out = Vec::with_capacity(proposal.roles.len());
    for r in &proposal.roles {
        let parsed = Parsed::parse(&r.role, metadata_of(r)?)?;
        out.push(Checked {
            diff: diff_of(&r.role, &parsed, base)?,
            role: r.role.clone(),
            current: base.version_of(&r.role),
            parsed,
        });
    }
    Ok(out)
}

/// The summary of what `parsed` changes, then every field that changes ([`diff::fields`]),
/// over the values whose canonical form is exactly the bytes signed: a role whose typed
/// form would not write back to those bytes is refused, never shown approximately.
fn diff_of(role: &str, parsed: &Parsed, base: &Baseline) -> anyhow::Result<Vec<String>> {
    let (mut lines, old, new) = match parsed {
        Parsed::Root(m) => (
            diff::root(base.root.as_ref().map(Metadata::signed), m.signed()),
            base.root
                .as_ref()
                .map(|o| signed_value(role, o))
                .transpose()?,
            signed_value(role, m)?,
        ),
        Parsed::Targets(m) => (
            diff::targets(base.targets.get(role).map(Metadata::signed), m.signed()),
            base.targets
                .get(role)
                .map(|o| signed_value(role, o))
                .transpose()?,
            signed_value(role, m)?,
        ),
        Parsed::Snapshot(m) => (
            diff::snapshot(base.snapshot.as_ref().map(Metadata::signed), m.signed()),
            base.snapshot
                .as_ref()
                .map(|o| signed_value(role, o))
                .transpose()?,
            signed_value(role, m)?,
        ),
    };
    lines.extend(diff::fields(old.as_ref(), &new));
    Ok(lines)
}

/// The `signed` value of `m`, checked to be exactly what its signatures cover.
fn signed_value<T: vouch_tuf::metadata::Role>(
    role: &str,
    m: &Metadata<T>,
) -> anyhow::Result<vouch_tuf::json::Value> {
    let v = m
        .to_value()
        .as_object()
        .and_then(|o| o.get("signed"))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("{role}: no signed part"))?;
    if vouch_tuf::json::canonical(&v) != m.canonical_signed() {
        anyhow::bail!(
            "{role}: its signed content cannot be shown exactly as it is signed, so it is not signed here"
        );
    }
    Ok(v)
}

/// Checks every role of `proposal` against `base` for the repository `gun`, and words what
/// each changes. Fails, naming the role, when the proposal is for another repository, a
/// role does not parse as its type, its version is not the next one, or it was made against
/// a version other than the trusted current one.
pub fn check(proposal: &Proposal, gun: &Gun, base: &Baseline) -> anyhow::Result<Vec<Checked>> {
    if proposal.gun != gun.as_str() {
        bail!(
            "proposal #{} is for {}, not {gun}: refusing to sign it",
            proposal.id,
            proposal.gun
        );
    }
    if proposal.roles.is_empty() {
        bail!("proposal #{} changes no role: nothing to sign", proposal.id);
    }
    let mut out = Vec::with_capacity(proposal.roles.len());
    for r in &proposal.roles {
        if out.iter().any(|c: &Checked| c.role == r.role) {
            bail!(
                "proposal #{} lists {} twice: refusing to sign it",
                proposal.id,
                r.role
            );
        }
        RoleName::new(r.role.clone()).map_err(|e| {
            anyhow!(
                "proposal #{} names an invalid role {:?} ({e}): refusing to sign it",
                proposal.id,
                r.role
            )
        })?;
        let parsed = Parsed::parse(&r.role, metadata_of(r)?)?;
        if parsed.version() != r.version {
            bail!(
                "proposal #{} says {} version {}, and its metadata is version {}: refusing to sign it",
                proposal.id,
                r.role,
                r.version,
                parsed.version()
            );
        }
        let current = base.version_of(&r.role);
        let id = proposal.id;
        let role = &r.role;
        match (&parsed, current) {
            // The first root of a new repository: there is nothing to compare it with.
            (Parsed::Root(_), None) if parsed.version() == 1 => {}
            (Parsed::Root(_), None) => bail!(
                "no trusted root of {gun} to check proposal #{id} against: open the repository once (`vouch status {gun}`) and try again"
            ),
            (Parsed::Root(_), Some(c)) if parsed.version() != c + 1 => bail!(
                "proposal #{id} proposes root version {}, and the trusted root is version {c}: a new root must be version {}; \
                 either this trust directory's view or the proposal is out of date (`vouch status {gun}` refreshes it; \
                 an outdated proposal must be withdrawn and proposed again)",
                parsed.version(),
                c + 1
            ),
            (_, Some(c)) if parsed.version() <= c => bail!(
                "proposal #{id} proposes {role} version {}, which is not newer than the trusted version {c}: \
                 either this trust directory's view or the proposal is out of date; nothing was signed",
                parsed.version()
            ),
            _ => {}
        }
        if r.base_version != current {
            let said = |v: Option<u64>| {
                v.map_or("none (a new role)".to_owned(), |v| format!("version {v}"))
            };
            bail!(
                "proposal #{id} was made against {role} {}, and the trusted current {role} is {}: \
                 either this trust directory's view or the proposal is out of date (someone published \
                 {role} since); nothing was signed: withdraw it (`vouch withdraw {gun} {id}`) and propose again",
                said(r.base_version),
                said(current)
            );
        }
        if let Parsed::Root(m) = &parsed {
            if let Some(g) = m.signed().gun() {
                if g != gun.as_str() {
                    bail!("the proposed root of proposal #{id} names the repository {g}, not {gun}: refusing to sign it");
                }
            }
        }
        let diff = diff_of(role, &parsed, base)?;
        out.push(Checked {
            role: r.role.clone(),
            parsed,
            current,
            diff,
        });
    }
    for c in &out {
        if let (None, Parsed::Targets(m)) = (TopLevelRole::from_name(&c.role), &c.parsed) {
            check_delegated(&c.role, m.signed(), &out, base)?;
        }
    }
    Ok(out)
}

/// Keys one authority lets sign a role: its key objects and the ids it assigns.
pub type Authority = (BTreeMap<KeyId, Key>, Vec<KeyId>);

/// The delegation that decides who may sign a delegated role: the delegating role, the
/// delegation in it, and the keys of its `delegations`.
#[derive(Debug, Clone)]
pub struct Delegator {
    /// The delegating role (`targets` or a delegated role).
    pub parent: String,
    /// Its delegation of the role: keys, threshold, paths or hash prefixes.
    pub delegation: DelegatedRole,
    /// The keys its `delegations` lists.
    pub keys: BTreeMap<KeyId, Key>,
}

fn delegation_in(parent: &str, t: &Targets, role: &str) -> Option<Delegator> {
    let d = t.delegations.as_ref()?;
    Some(Delegator {
        parent: parent.to_owned(),
        delegation: d.role(role)?.clone(),
        keys: d.keys.clone(),
    })
}

/// The proposed targets metadata of `role`, when the proposal changes it.
fn proposed_targets<'c>(checked: &'c [Checked], role: &str) -> Option<&'c Targets> {
    checked.iter().find_map(|c| match &c.parsed {
        Parsed::Targets(m) if c.role == role => Some(m.signed()),
        _ => None,
    })
}

/// Who decides which keys may sign the delegated role `role`: only its delegating parent.
/// When the trusted metadata delegates `role`, that parent (its proposed new version when
/// the proposal changes the parent too); otherwise a proposed version of `targets` or of a
/// trusted delegated role that delegates it, never `role` itself or another role new in
/// the proposal. `None` when nothing known delegates it; an error when more than one
/// role does, or when the proposed parent drops the delegation.
pub fn delegator(
    role: &str,
    checked: &[Checked],
    base: &Baseline,
) -> anyhow::Result<Option<Delegator>> {
    let trusted: Vec<(&String, &Metadata<Targets>)> = base
        .targets
        .iter()
        .filter(|(name, m)| {
            name.as_str() != role
                && m.signed()
                    .delegations
                    .as_ref()
                    .is_some_and(|d| d.role(role).is_some())
        })
        .collect();
    match trusted.as_slice() {
        [] => {}
        [(parent, m)] => {
            let parent = parent.as_str();
            return match proposed_targets(checked, parent) {
                Some(t) => delegation_in(parent, t, role).map(Some).ok_or_else(|| {
                    anyhow!(
                        "the proposal changes {role} and a {parent} that no longer delegates it: refusing to sign it"
                    )
                }),
                None => Ok(delegation_in(parent, m.signed(), role)),
            };
        }
        many => bail!(
            "{role} is delegated by more than one trusted role ({}): which keys may sign it is ambiguous; refusing to sign it",
            many.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
    let mut found: Vec<Delegator> = checked
        .iter()
        .filter(|c| c.role != role && (c.role == "targets" || base.targets.contains_key(&c.role)))
        .filter_map(|c| match &c.parsed {
            Parsed::Targets(m) => delegation_in(&c.role, m.signed(), role),
            _ => None,
        })
        .collect();
    if found.len() > 1 {
        bail!(
            "{role} is delegated by more than one proposed role ({}): which keys may sign it is ambiguous; refusing to sign it",
            found.iter().map(|d| d.parent.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(found.pop())
}

/// The roots whose top-level keys count: the trusted one and the proposed one.
fn roots<'a>(checked: &'a [Checked], base: &'a Baseline) -> Vec<&'a Root> {
    let proposed = checked.iter().find_map(|c| match &c.parsed {
        Parsed::Root(m) => Some(m.signed()),
        _ => None,
    });
    base.root
        .as_ref()
        .map(Metadata::signed)
        .into_iter()
        .chain(proposed)
        .collect()
}

/// The top-level role the trusted or proposed root assigns `id` to, if any.
fn top_level_use(id: &KeyId, checked: &[Checked], base: &Baseline) -> Option<TopLevelRole> {
    roots(checked, base).into_iter().find_map(|root| {
        TopLevelRole::ALL
            .into_iter()
            .find(|top| root.role_keys(*top).keyids.contains(id))
    })
}

/// Checks the proposed delegated role `role` against its [`delegator`]: one is known, the
/// keys it delegates to are no top-level role's (a signature by one would verify as that
/// role, since targets metadata does not name its role; hashed bins of `targets` are
/// signed with the targets keys by design), and every target lies within the paths or
/// hash prefixes delegated.
fn check_delegated(
    role: &str,
    t: &Targets,
    checked: &[Checked],
    base: &Baseline,
) -> anyhow::Result<()> {
    let Some(d) = delegator(role, checked, base)? else {
        bail!(
            "no metadata trusted here delegates {role}, so which keys may sign it is unknown: refusing to sign it; \
             approve it online (`vouch approve GUN ID`) or with a trust directory that holds the repository"
        );
    };
    let bin_of_targets = d.parent == "targets" && crate::repo::is_bin(&d.delegation);
    if !bin_of_targets {
        for id in &d.delegation.keyids {
            if let Some(top) = top_level_use(id, checked, base) {
                bail!(
                    "{} delegates {role} to key {id}, which the root assigns to {top}: a signature by it on {role} \
                     would also verify as {top} metadata; refusing to sign it (delegate {role} to keys of its own)",
                    d.parent
                );
            }
        }
    }
    for name in t.targets.keys() {
        if !d.delegation.is_delegated_path(name.as_str()) {
            bail!(
                "the proposed {role} lists {name}, which is outside the targets {} delegates to it ({}): refusing to sign it",
                d.parent,
                crate::repo::describe_scope(&d.delegation)
            );
        }
    }
    Ok(())
}

/// Who may sign `role`: for root, the trusted current root's and the proposed root's root
/// keys; for targets (and snapshot), the proposed root's keys if root is proposed, else the
/// trusted root's; for a delegated role, the keys its [`delegator`] delegates it to. Empty
/// when no authority is known (or it is ambiguous, which [`check`] refuses).
pub fn authorities(role: &str, checked: &[Checked], base: &Baseline) -> Vec<Authority> {
    let proposed_root = checked.iter().find_map(|c| match &c.parsed {
        Parsed::Root(m) => Some(m.signed()),
        _ => None,
    });
    let trusted_root = base.root.as_ref().map(Metadata::signed);
    let of_root = |root: &Root, top: TopLevelRole| -> Authority {
        (root.keys.clone(), root.role_keys(top).keyids.clone())
    };
    if let Some(top) = TopLevelRole::from_name(role) {
        return match top {
            TopLevelRole::Root => trusted_root
                .into_iter()
                .chain(proposed_root)
                .map(|r| of_root(r, top))
                .collect(),
            _ => proposed_root
                .or(trusted_root)
                .map(|r| vec![of_root(r, top)])
                .unwrap_or_default(),
        };
    }
    delegator(role, checked, base)
        .ok()
        .flatten()
        .map(|d| (d.keys, d.delegation.keyids))
        .into_iter()
        .collect()
}

/// The key ids that may sign `c` (see [`authorities`]) and have not signed it yet, in the
/// order the authorities list them.
pub fn wanted_keys(c: &Checked, checked: &[Checked], base: &Baseline) -> Vec<KeyId> {
    let signed = c.parsed.signed_by();
    let mut out: Vec<KeyId> = Vec::new();
    for (keys, ids) in authorities(&c.role, checked, base) {
        for id in ids {
            if !signed.contains(&id) && !out.contains(&id) && keys.contains_key(&id) {
                out.push(id);
            }
        }
    }
    out
}

/// What the trusted metadata uses key `id` for, for the review: `your key for root`,
/// `your key for targets/prod`; or that it uses it for nothing yet.
pub fn key_use(id: &KeyId, base: &Baseline) -> String {
    let mut uses: Vec<String> = Vec::new();
    if let Some(root) = &base.root {
        for top in TopLevelRole::ALL {
            if root.signed().role_keys(top).keyids.contains(id) {
                uses.push(top.as_str().to_owned());
            }
        }
    }
    for m in base.targets.values() {
        for dr in m.signed().delegations.iter().flat_map(|d| d.roles.iter()) {
            let name = dr.name.as_str().to_owned();
            if dr.keyids.contains(id) && !uses.contains(&name) {
                uses.push(name);
            }
        }
    }
    if uses.is_empty() {
        "a key the trusted metadata does not use yet".to_owned()
    } else {
        format!("your key for {}", uses.join(", "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vouch_tuf::api::proposal::{ProposalStatus, Quorum};
    use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
    use vouch_tuf::metadata::{Delegations, Role};
    use vouch_tuf::time::Timestamp;
    use vouch_tuf::types::Threshold;

    struct World {
        gun: Gun,
        keys: Vec<PrivateKey>,
        base: Baseline,
    }

    fn public(k: &PrivateKey) -> Key {
        Key::from_verifying_key(&k.verifying_key())
    }

    /// A repository with root keys 0, 1, 2 (threshold 2), targets key 3, delegating
    /// `targets/prod` to keys 4 and 5.
    fn world() -> World {
        let keys: Vec<PrivateKey> = (0..6)
            .map(|_| PrivateKey::generate(Algorithm::Ed25519).unwrap())
            .collect();
        let mut root = Root::new(Timestamp::from_unix(2_000_000_000));
        for k in &keys[..3] {
            root.add_key(TopLevelRole::Root, public(k));
        }
        root.set_threshold(TopLevelRole::Root, Threshold::new(2).unwrap());
        root.add_key(TopLevelRole::Targets, public(&keys[3]));
        root.bump_version();
        root.bump_version();
        let mut targets = Targets::new(Timestamp::from_unix(2_000_000_000));
        let mut d = Delegations::default();
        let mut ids = Vec::new();
        for k in &keys[4..6] {
            d.keys.insert(public(k).key_id(), public(k));
            ids.push(public(k).key_id());
        }
        let mut dr = DelegatedRole::with_paths(
            RoleName::new("targets/prod".to_owned()).unwrap(),
            ids,
            vec!["*".into()],
        );
        dr.threshold = Threshold::new(2).unwrap();
        d.roles.push(dr);
        targets.delegations = Some(d);
        for _ in 0..4 {
            targets.bump_version();
        }
        let mut base = Baseline {
            root: Some(Metadata::new(root)),
            ..Baseline::default()
        };
        base.targets
            .insert("targets".into(), Metadata::new(targets));
        World {
            gun: Gun::new("example.com/org/app").unwrap(),
            keys,
            base,
        }
    }

    fn proposal(gun: &str, roles: Vec<ProposedRole>) -> Proposal {
        Proposal {
            id: 7,
            gun: gun.into(),
            status: ProposalStatus::Pending,
            reason: None,
            proposed_by: "token:alice".into(),
            created_at: Timestamp::from_unix(1_700_000_000),
            expires_at: Timestamp::from_unix(1_700_604_800),
            closed_at: None,
            closed_by: None,
            change_id: None,
            roles,
            approvals: Vec::new(),
        }
    }

    fn proposed<T: Role>(role: &str, md: &Metadata<T>, base_version: Option<u64>) -> ProposedRole {
        ProposedRole {
            role: role.into(),
            version: md.version().get(),
            base_version,
            metadata: Some(md.to_value()),
            current: None,
            quorum: vec![Quorum {
                by: "x".into(),
                threshold: 2,
                keyids: Vec::new(),
                signed: Vec::new(),
            }],
        }
    }

    fn next_root(w: &World, by: usize) -> Metadata<Root> {
        let mut root = w.base.root.as_ref().unwrap().signed().clone();
        root.bump_version();
        let mut md = Metadata::new(root);
        md.sign(&w.keys[by]).unwrap();
        md
    }

    #[test]
    fn the_next_root_passes_and_every_root_key_not_yet_signed_is_wanted() {
        let w = world();
        let md = next_root(&w, 0);
        let p = proposal(w.gun.as_str(), vec![proposed("root", &md, Some(3))]);
        let checked = check(&p, &w.gun, &w.base).unwrap();
        assert_eq!(checked[0].current, Some(3));
        assert_eq!(
            checked[0].diff,
            [
                "version 3 -> 4",
                "field by field (exactly what is signed):",
                "  signed.version: 3 -> 4"
            ]
        );
        let mut wanted: Vec<KeyId> = wanted_keys(&checked[0], &checked, &w.base)
            .into_iter()
            .collect();
        wanted.sort();
        let mut want = vec![public(&w.keys[1]).key_id(), public(&w.keys[2]).key_id()];
        want.sort();
        assert_eq!(wanted, want);
        assert!(!wanted.contains(&public(&w.keys[0]).key_id()));
    }

    #[test]
    fn another_repository_is_refused() {
        let w = world();
        let md = next_root(&w, 0);
        let p = proposal(
            "example.com/org/other",
            vec![proposed("root", &md, Some(3))],
        );
        let e = check(&p, &w.gun, &w.base).unwrap_err().to_string();
        assert!(
            e.contains("is for example.com/org/other, not example.com/org/app"),
            "{e}"
        );
    }

    #[test]
    fn a_root_that_skips_or_repeats_a_version_is_refused() {
        let w = world();
        let mut md = next_root(&w, 0).into_signed();
        md.bump_version();
        let md = Metadata::new(md);
        let p = proposal(w.gun.as_str(), vec![proposed("root", &md, Some(3))]);
        let e = check(&p, &w.gun, &w.base).unwrap_err().to_string();
        assert!(e.contains("a new root must be version 4"), "{e}");
        let same = w.base.root.clone().unwrap();
        let p = proposal(w.gun.as_str(), vec![proposed("root", &same, Some(3))]);
        assert!(check(&p, &w.gun, &w.base).is_err());
    }

    #[test]
    fn a_proposal_made_against_another_version_is_out_of_date() {
        let w = world();
        let mut t = w.base.targets["targets"].signed().clone();
        t.bump_version();
        t.bump_version();
        let md = Metadata::new(t);
        // Made against version 4, while this trust directory trusts version 5.
        let p = proposal(w.gun.as_str(), vec![proposed("targets", &md, Some(4))]);
        let e = check(&p, &w.gun, &w.base).unwrap_err().to_string();
        assert!(e.contains("made against targets version 4"), "{e}");
        assert!(e.contains("out of date"), "{e}");
        let old = w.base.targets["targets"].clone();
        let p = proposal(w.gun.as_str(), vec![proposed("targets", &old, Some(5))]);
        let e = check(&p, &w.gun, &w.base).unwrap_err().to_string();
        assert!(e.contains("not newer than the trusted version 5"), "{e}");
    }

    #[test]
    fn metadata_of_another_type_or_version_is_refused() {
        let w = world();
        let root = next_root(&w, 0);
        let mut pr = proposed("targets", &root, Some(5));
        let e = check(&proposal(w.gun.as_str(), vec![pr.clone()]), &w.gun, &w.base).unwrap_err();
        assert!(
            format!("{e:#}").contains("not valid targets metadata"),
            "{e:#}"
        );
        pr.role = "root".into();
        pr.version = 9;
        pr.base_version = Some(3);
        let e = check(&proposal(w.gun.as_str(), vec![pr]), &w.gun, &w.base)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("says root version 9, and its metadata is version 4"),
            "{e}"
        );
    }

    #[test]
    fn a_delegated_role_is_signed_by_its_delegation_keys() {
        let w = world();
        let mut prod = Targets::new(Timestamp::from_unix(2_000_000_000));
        prod.common.version = vouch_tuf::types::Version::new(1).unwrap();
        let mut md = Metadata::new(prod);
        md.sign(&w.keys[4]).unwrap();
        let p = proposal(w.gun.as_str(), vec![proposed("targets/prod", &md, None)]);
        let checked = check(&p, &w.gun, &w.base).unwrap();
        assert!(checked[0].diff.contains(&"version 1 (new)".to_owned()));
        let wanted: Vec<KeyId> = wanted_keys(&checked[0], &checked, &w.base)
            .into_iter()
            .collect();
        assert_eq!(wanted, vec![public(&w.keys[5]).key_id()]);

        // The same role proposed with a delegating targets that moves it to a new key.
        let other = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let mut t = w.base.targets["targets"].signed().clone();
        t.bump_version();
        let d = t.delegations.as_mut().unwrap();
        d.keys.insert(public(&other).key_id(), public(&other));
        d.roles[0].keyids = vec![public(&other).key_id()];
        let tmd = Metadata::new(t);
        let p = proposal(
            w.gun.as_str(),
            vec![
                proposed("targets", &tmd, Some(5)),
                proposed("targets/prod", &md, None),
            ],
        );
        let checked = check(&p, &w.gun, &w.base).unwrap();
        let wanted: Vec<KeyId> = wanted_keys(&checked[1], &checked, &w.base)
            .into_iter()
            .collect();
        assert_eq!(wanted, vec![public(&other).key_id()]);
    }

    #[test]
    fn targets_keys_come_from_the_proposed_root_when_root_is_proposed() {
        let w = world();
        let mut root = w.base.root.as_ref().unwrap().signed().clone();
        root.bump_version();
        let old = public(&w.keys[3]).key_id();
        root.remove_key(TopLevelRole::Targets, &old);
        root.add_key(TopLevelRole::Targets, public(&w.keys[5]));
        let rmd = Metadata::new(root);
        let mut t = w.base.targets["targets"].signed().clone();
        t.bump_version();
        let tmd = Metadata::new(t);
        let p = proposal(
            w.gun.as_str(),
            vec![
                proposed("root", &rmd, Some(3)),
                proposed("targets", &tmd, Some(5)),
            ],
        );
        let checked = check(&p, &w.gun, &w.base).unwrap();
        let wanted: Vec<KeyId> = wanted_keys(&checked[1], &checked, &w.base)
            .into_iter()
            .collect();
        assert_eq!(wanted, vec![public(&w.keys[5]).key_id()]);
        assert!(checked[0]
            .diff
            .contains(&format!("targets: key {old} removed")));
    }

    /// Version 1 of a delegated role, listing `targets`, signed by nobody.
    fn new_role(targets: &[&str]) -> Targets {
        let mut t = Targets::new(Timestamp::from_unix(2_000_000_000));
        for name in targets {
            t.add_target(
                vouch_tuf::types::TargetName::new(*name).unwrap(),
                vouch_tuf::metadata::TargetFile::image(
                    &vouch_tuf::reference::Digest::sha256_of(name.as_bytes()),
                    2,
                    None,
                ),
            );
        }
        t
    }

    fn delegating(t: &mut Targets, role: &str, key: &PrivateKey, dr: Option<DelegatedRole>) {
        let d = t.delegations.get_or_insert_with(Delegations::default);
        d.keys.insert(public(key).key_id(), public(key));
        d.roles.push(dr.unwrap_or_else(|| {
            DelegatedRole::with_paths(
                RoleName::new(role.to_owned()).unwrap(),
                vec![public(key).key_id()],
                vec!["*".into()],
            )
        }));
    }

    #[test]
    fn a_new_role_cannot_name_its_own_signers() {
        let w = world();
        let targets_key = &w.keys[3];
        // targets/evil is delegated by nothing trusted; it "delegates" itself to the
        // holder's top-level targets key, whose signature would be a valid targets.json.
        let mut evil = new_role(&[]);
        delegating(&mut evil, "targets/evil", targets_key, None);
        let md = Metadata::new(evil);
        let p = proposal(w.gun.as_str(), vec![proposed("targets/evil", &md, None)]);
        let e = check(&p, &w.gun, &w.base).unwrap_err().to_string();
        assert!(
            e.contains("no metadata trusted here delegates targets/evil"),
            "{e}"
        );
        assert!(e.contains("approve it online"), "{e}");
        let checked = describe(&p, &w.base).unwrap();
        assert!(wanted_keys(&checked[0], &checked, &w.base).is_empty());

        // Nor can a sibling new in the same proposal delegate it.
        let mut sibling = new_role(&[]);
        let other = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        delegating(&mut sibling, "targets/evil", &other, None);
        let p = proposal(
            w.gun.as_str(),
            vec![
                proposed("targets/sibling", &Metadata::new(sibling), None),
                proposed("targets/evil", &md, None),
            ],
        );
        let e = check(&p, &w.gun, &w.base).unwrap_err().to_string();
        assert!(e.contains("no metadata trusted here delegates"), "{e}");
    }

    #[test]
    fn a_trusted_delegation_is_not_overridden_by_the_role_itself() {
        let w = world();
        // targets/prod (delegated to keys 4 and 5) proposes delegations naming itself with
        // the targets key.
        let mut prod = new_role(&["v1"]);
        delegating(&mut prod, "targets/prod", &w.keys[3], None);
        let md = Metadata::new(prod);
        let p = proposal(w.gun.as_str(), vec![proposed("targets/prod", &md, None)]);
        let checked = check(&p, &w.gun, &w.base).unwrap();
        let mut wanted = wanted_keys(&checked[0], &checked, &w.base);
        wanted.sort();
        let mut want = vec![public(&w.keys[4]).key_id(), public(&w.keys[5]).key_id()];
        want.sort();
        assert_eq!(wanted, want);
    }

    #[test]
    fn a_delegation_to_a_top_level_key_is_refused() {
        let w = world();
        let mut t = w.base.targets["targets"].signed().clone();
        t.bump_version();
        let d = t.delegations.as_mut().unwrap();
        d.keys
            .insert(public(&w.keys[3]).key_id(), public(&w.keys[3]));
        d.roles[0].keyids = vec![public(&w.keys[3]).key_id()];
        let p = proposal(
            w.gun.as_str(),
            vec![
                proposed("targets", &Metadata::new(t), Some(5)),
                proposed("targets/prod", &Metadata::new(new_role(&["v1"])), None),
            ],
        );
        let e = check(&p, &w.gun, &w.base).unwrap_err().to_string();
        assert!(e.contains("which the root assigns to targets"), "{e}");
    }

    #[test]
    fn a_hashed_bin_of_targets_is_signed_with_the_targets_keys() {
        let mut w = world();
        let mut t = w.base.targets["targets"].signed().clone();
        let prefixes: Vec<String> = (0..16).map(|i| format!("{i:x}")).collect();
        let bin = DelegatedRole {
            scope: vouch_tuf::metadata::PathScope::HashPrefixes(prefixes),
            ..DelegatedRole::with_paths(
                RoleName::new("bins-0".to_owned()).unwrap(),
                vec![public(&w.keys[3]).key_id()],
                Vec::new(),
            )
        };
        delegating(&mut t, "bins-0", &w.keys[3], Some(bin));
        w.base.targets.insert("targets".into(), Metadata::new(t));
        let p = proposal(
            w.gun.as_str(),
            vec![proposed("bins-0", &Metadata::new(new_role(&["v1"])), None)],
        );
        let checked = check(&p, &w.gun, &w.base).unwrap();
        assert_eq!(
            wanted_keys(&checked[0], &checked, &w.base),
            vec![public(&w.keys[3]).key_id()]
        );
    }

    #[test]
    fn targets_outside_the_delegated_paths_are_refused() {
        let w = world();
        let mut t = w.base.targets["targets"].signed().clone();
        t.bump_version();
        t.delegations.as_mut().unwrap().roles[0].scope =
            vouch_tuf::metadata::PathScope::Paths(vec!["release-*".into()]);
        let p = proposal(
            w.gun.as_str(),
            vec![
                proposed("targets", &Metadata::new(t), Some(5)),
                proposed("targets/prod", &Metadata::new(new_role(&["v1"])), None),
            ],
        );
        let e = check(&p, &w.gun, &w.base).unwrap_err().to_string();
        assert!(
            e.contains("lists v1, which is outside the targets targets delegates"),
            "{e}"
        );
        assert!(e.contains("paths release-*"), "{e}");
    }

    #[test]
    fn two_trusted_parents_make_the_signers_ambiguous() {
        let mut w = world();
        let mut other = new_role(&[]);
        let k = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        delegating(&mut other, "targets/prod", &k, None);
        w.base
            .targets
            .insert("targets/other".into(), Metadata::new(other));
        let p = proposal(
            w.gun.as_str(),
            vec![proposed(
                "targets/prod",
                &Metadata::new(new_role(&["v1"])),
                None,
            )],
        );
        let e = check(&p, &w.gun, &w.base).unwrap_err().to_string();
        assert!(e.contains("delegated by more than one trusted role"), "{e}");
    }

    #[test]
    fn each_key_is_labelled_with_what_the_trusted_metadata_uses_it_for() {
        let w = world();
        assert_eq!(
            key_use(&public(&w.keys[4]).key_id(), &w.base),
            "your key for targets/prod"
        );
        assert_eq!(
            key_use(&public(&w.keys[3]).key_id(), &w.base),
            "your key for targets"
        );
        let k = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        assert_eq!(
            key_use(&public(&k).key_id(), &w.base),
            "a key the trusted metadata does not use yet"
        );
    }
}
