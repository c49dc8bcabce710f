//! What a proposed role version changes, for the person asked to sign it (`vouch approve`,
//! `vouch proposals show`): one line per change, against the trusted current version.
//!
//! Pure functions over the typed metadata of `vouch-tuf`; they neither fetch nor check
//! anything (the approval's checks are [`crate::approval`]'s). Every change is listed:
//! long lists of targets are cut after [`MAX_LINES`] lines of one kind, saying how many more
//! there are, never silently.

use std::collections::{BTreeMap, BTreeSet};

use vouch_tuf::metadata::{DelegatedRole, Delegations, Key, PathScope, Root, Snapshot, Targets};
use vouch_tuf::types::{KeyId, TopLevelRole};

/// Most lines shown for one kind of change (targets added, removed or changed) before the
/// rest is summarised by its count.
pub const MAX_LINES: usize = 200;

/// What changes in a root, from `old` (none: the repository's first root) to `new`.
pub fn root(old: Option<&Root>, new: &Root) -> Vec<String> {
    let mut out = Vec::new();
    let empty = Root::new(new.common.expires);
    let old_or_empty = old.unwrap_or(&empty);
    version_and_expiry(
        &mut out,
        old.map(|o| (o.common.version.get(), o.common.expires.to_string())),
        (new.common.version.get(), new.common.expires.to_string()),
    );
    if old_or_empty.consistent_snapshot != new.consistent_snapshot {
        out.push(format!(
            "consistent_snapshot: {} -> {}",
            flag(old_or_empty.consistent_snapshot),
            flag(new.consistent_snapshot)
        ));
    }
    keys(&mut out, "", &old_or_empty.keys, &new.keys);
    if old.and_then(Root::gun) != new.gun() {
        match new.gun() {
            Some(g) => out.push(format!("names the repository {g}")),
            None => out.push("names no repository".to_owned()),
        }
    }
    for role in TopLevelRole::ALL {
        let before = old.and_then(|o| o.roles.get(&role));
        let after = new.roles.get(&role);
        let ids = |r: Option<&vouch_tuf::metadata::RoleKeys>| -> BTreeSet<KeyId> {
            r.map(|r| r.keyids.iter().cloned().collect())
                .unwrap_or_default()
        };
        let (b, a) = (ids(before), ids(after));
        for id in a.difference(&b) {
            out.push(format!("{role}: key {id} added"));
        }
        for id in b.difference(&a) {
            out.push(format!("{role}: key {id} removed"));
        }
        let th = |r: Option<&vouch_tuf::metadata::RoleKeys>| r.map(|r| r.threshold.get());
        match (th(before), th(after)) {
            (Some(x), Some(y)) if x != y => out.push(format!("{role}: threshold {x} -> {y}")),
            (None, Some(y)) => out.push(format!("{role}: threshold {y}")),
            _ => {}
        }
        if let (Some(b), Some(a)) = (before, after) {
            if b.extra != a.extra {
                out.push(format!("{role}: other fields changed"));
            }
        }
    }
    let without_gun = |r: &Root| {
        let mut m = r.extra.clone();
        m.remove(Root::GUN_FIELD);
        m
    };
    if old.is_some_and(|o| without_gun(o) != without_gun(new)) {
        out.push("other fields of root changed".to_owned());
    }
    out
}

/// What changes in a targets role (top-level or delegated), from `old` (none: the role's
/// first version) to `new`.
pub fn targets(old: Option<&Targets>, new: &Targets) -> Vec<String> {
    let mut out = Vec::new();
    version_and_expiry(
        &mut out,
        old.map(|o| (o.common.version.get(), o.common.expires.to_string())),
        (new.common.version.get(), new.common.expires.to_string()),
    );
    let empty = BTreeMap::new();
    let before = old.map_or(&empty, |o| &o.targets);
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    for (name, t) in &new.targets {
        match before.get(name) {
            None => added.push(format!(
                "target {name} added: {} ({} bytes)",
                digest_of(t),
                t.length
            )),
            Some(o) if o != t => {
                let (od, nd) = (digest_of(o), digest_of(t));
                let mut line = format!("target {name} changed: {od} -> {nd}");
                if o.length != t.length {
                    line.push_str(&format!(" ({} -> {} bytes)", o.length, t.length));
                }
                if od == nd && o.length == t.length {
                    line = format!("target {name} changed: {od}, custom data or hashes changed");
                }
                changed.push(line);
            }
            Some(_) => {}
        }
    }
    for (name, t) in before {
        if !new.targets.contains_key(name) {
            removed.push(format!("target {name} removed (was {})", digest_of(t)));
        }
    }
    for lines in [added, removed, changed] {
        bounded(&mut out, lines);
    }
    let no_delegations = Delegations::default();
    delegations(
        &mut out,
        old.and_then(|o| o.delegations.as_ref())
            .unwrap_or(&no_delegations),
        new.delegations.as_ref().unwrap_or(&no_delegations),
    );
    if old.is_some_and(|o| o.extra != new.extra) {
        out.push("other fields changed".to_owned());
    }
    out
}

/// What changes in a snapshot, from `old` to `new`: the versions of the roles it lists.
pub fn snapshot(old: Option<&Snapshot>, new: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    version_and_expiry(
        &mut out,
        old.map(|o| (o.common.version.get(), o.common.expires.to_string())),
        (new.common.version.get(), new.common.expires.to_string()),
    );
    let empty = BTreeMap::new();
    let before = old.map_or(&empty, |o| &o.meta);
    let mut lines = Vec::new();
    for (name, m) in &new.meta {
        match before.get(name) {
            None => lines.push(format!("{name}: version {} listed", m.version.get())),
            Some(o) if o.version != m.version => lines.push(format!(
                "{name}: version {} -> {}",
                o.version.get(),
                m.version.get()
            )),
            Some(o) if o != m => lines.push(format!("{name}: length or hashes changed")),
            Some(_) => {}
        }
    }
    for name in before.keys() {
        if !new.meta.contains_key(name) {
            lines.push(format!("{name}: no longer listed"));
        }
    }
    bounded(&mut out, lines);
    out
}

fn flag(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "true",
        Some(false) => "false",
        None => "unset",
    }
}

fn version_and_expiry(out: &mut Vec<String>, old: Option<(u64, String)>, new: (u64, String)) {
    match old {
        None => {
            out.push(format!("version {} (new)", new.0));
            out.push(format!("expires {}", new.1));
        }
        Some((ov, oe)) => {
            out.push(format!("version {ov} -> {}", new.0));
            if oe != new.1 {
                out.push(format!("expires {oe} -> {}", new.1));
            }
        }
    }
}

/// `sha256:HEX`, or the hashes listed when there is no sha256.
fn digest_of(t: &vouch_tuf::metadata::TargetFile) -> String {
    match t.hashes.get("sha256") {
        Some(h) => format!("sha256:{h}"),
        None => t
            .hashes
            .iter()
            .map(|(alg, h)| format!("{alg}:{h}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn bounded(out: &mut Vec<String>, lines: Vec<String>) {
    let total = lines.len();
    out.extend(lines.into_iter().take(MAX_LINES));
    if total > MAX_LINES {
        out.push(format!("… and {} more like these", total - MAX_LINES));
    }
}

fn key_type(k: &Key) -> String {
    format!("{}/{}", k.keytype, k.scheme)
}

fn keys(
    out: &mut Vec<String>,
    prefix: &str,
    old: &BTreeMap<KeyId, Key>,
    new: &BTreeMap<KeyId, Key>,
) {
    for (id, k) in new {
        match old.get(id) {
            None => out.push(format!("{prefix}key {id} ({}) added", key_type(k))),
            Some(o) if o != k => out.push(format!("{prefix}key {id} changed ({})", key_type(k))),
            Some(_) => {}
        }
    }
    for (id, k) in old {
        if !new.contains_key(id) {
            out.push(format!("{prefix}key {id} ({}) removed", key_type(k)));
        }
    }
}

fn scope(s: &PathScope) -> String {
    match s {
        PathScope::Paths(p) => format!("paths [{}]", p.join(", ")),
        PathScope::HashPrefixes(p) => format!("hash prefixes [{}]", p.join(", ")),
        PathScope::Nothing => "no paths".to_owned(),
    }
}

fn describe(r: &DelegatedRole) -> String {
    format!(
        "keys [{}], threshold {}, {}{}",
        r.keyids
            .iter()
            .map(KeyId::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        r.threshold.get(),
        scope(&r.scope),
        if r.terminating { ", terminating" } else { "" }
    )
}

fn delegations(out: &mut Vec<String>, old: &Delegations, new: &Delegations) {
    keys(out, "delegation ", &old.keys, &new.keys);
    if old.extra != new.extra {
        out.push("delegations: other fields changed".to_owned());
    }
    let mut lines = Vec::new();
    for r in &new.roles {
        match old.role(r.name.as_str()) {
            None => lines.push(format!("delegation {} added: {}", r.name, describe(r))),
            Some(o) if o != r => {
                let mut what = Vec::new();
                let (ob, nb): (BTreeSet<&KeyId>, BTreeSet<&KeyId>) =
                    (o.keyids.iter().collect(), r.keyids.iter().collect());
                for id in nb.difference(&ob) {
                    what.push(format!("key {id} added"));
                }
                for id in ob.difference(&nb) {
                    what.push(format!("key {id} removed"));
                }
                if o.threshold != r.threshold {
                    what.push(format!(
                        "threshold {} -> {}",
                        o.threshold.get(),
                        r.threshold.get()
                    ));
                }
                if o.scope != r.scope {
                    what.push(format!("{} -> {}", scope(&o.scope), scope(&r.scope)));
                }
                if o.terminating != r.terminating {
                    what.push(format!(
                        "terminating {} -> {}",
                        o.terminating, r.terminating
                    ));
                }
                if what.is_empty() {
                    what.push("other fields changed".to_owned());
                }
                lines.push(format!(
                    "delegation {} changed: {}",
                    r.name,
                    what.join("; ")
                ));
            }
            Some(_) => {}
        }
    }
    for r in &old.roles {
        if new.role(r.name.as_str()).is_none() {
            lines.push(format!(
                "delegation {} removed (was {})",
                r.name,
                describe(r)
            ));
        }
    }
    bounded(out, lines);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vouch_tuf::metadata::{MetaFile, Role, RoleKeys, TargetFile};
    use vouch_tuf::reference::Digest;
    use vouch_tuf::time::Timestamp;
    use vouch_tuf::types::{RoleName, TargetName, Threshold, Version};

    fn key(_n: u8) -> Key {
        use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
        let k = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        Key::from_verifying_key(&k.verifying_key())
    }

    fn digest(n: u8) -> Digest {
        Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap()
    }

    fn at(days: i64) -> Timestamp {
        Timestamp::from_unix(1_800_000_000 + days * 86_400)
    }

    #[test]
    fn a_root_rotation_names_every_key_and_threshold_change() {
        let mut old = Root::new(at(10));
        old.consistent_snapshot = None;
        let (a, b, c) = (key(1), key(2), key(3));
        for k in [&a, &b] {
            old.add_key(TopLevelRole::Root, k.clone());
        }
        old.set_threshold(TopLevelRole::Root, Threshold::new(2).unwrap());
        old.add_key(TopLevelRole::Targets, a.clone());
        let mut new = old.clone();
        new.bump_version();
        new.set_expires(at(20));
        new.remove_key(TopLevelRole::Root, &a.key_id());
        new.add_key(TopLevelRole::Root, c.clone());
        new.roles.insert(
            TopLevelRole::Snapshot,
            RoleKeys::new(vec![b.key_id()], Threshold::ONE),
        );
        new.consistent_snapshot = Some(true);
        let lines = root(Some(&old), &new);
        let text = lines.join("\n");
        assert!(text.contains("version 1 -> 2"), "{text}");
        assert!(
            text.contains(&format!("expires {} -> {}", at(10), at(20))),
            "{text}"
        );
        assert!(
            text.contains("consistent_snapshot: unset -> true"),
            "{text}"
        );
        assert!(
            text.contains(&format!("key {} (ed25519/ed25519) added", c.key_id())),
            "{text}"
        );
        assert!(
            text.contains(&format!("root: key {} added", c.key_id())),
            "{text}"
        );
        assert!(
            text.contains(&format!("root: key {} removed", a.key_id())),
            "{text}"
        );
        assert!(
            text.contains(&format!("snapshot: key {} added", b.key_id())),
            "{text}"
        );
        // a still signs targets, so it stays among the keys.
        assert!(!text.contains(&format!("key {} (ed25519/ed25519) removed", a.key_id())));
        new.set_threshold(TopLevelRole::Root, Threshold::ONE);
        let text = root(Some(&old), &new).join("\n");
        assert!(text.contains("root: threshold 2 -> 1"), "{text}");
        // Nothing changed: only the version line would say so, and it does not.
        assert_eq!(root(Some(&old), &old), vec!["version 1 -> 1".to_owned()]);
    }

    #[test]
    fn targets_added_removed_and_changed_are_listed() {
        let mut old = Targets::new(at(5));
        let name = |s: &str| TargetName::new(s.to_owned()).unwrap();
        old.add_target(name("v1"), TargetFile::image(&digest(1), 10, None));
        old.add_target(name("v2"), TargetFile::image(&digest(2), 20, None));
        let mut new = old.clone();
        new.bump_version();
        new.remove_target("v1");
        new.add_target(name("v2"), TargetFile::image(&digest(3), 30, None));
        new.add_target(name("v3"), TargetFile::image(&digest(4), 40, None));
        let text = targets(Some(&old), &new).join("\n");
        assert!(
            text.contains(&format!("target v3 added: {} (40 bytes)", digest(4))),
            "{text}"
        );
        assert!(
            text.contains(&format!("target v1 removed (was {})", digest(1))),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "target v2 changed: {} -> {} (20 -> 30 bytes)",
                digest(2),
                digest(3)
            )),
            "{text}"
        );
        let first = targets(None, &new).join("\n");
        assert!(first.contains("version 2 (new)"), "{first}");
    }

    #[test]
    fn delegation_changes_are_spelled_out() {
        let mut old = Targets::new(at(5));
        let (a, b) = (key(1), key(2));
        let role = RoleName::new("targets/prod".to_owned()).unwrap();
        let mut d = Delegations::default();
        d.keys.insert(a.key_id(), a.clone());
        d.roles.push(DelegatedRole::with_paths(
            role.clone(),
            vec![a.key_id()],
            vec!["v*".into()],
        ));
        old.delegations = Some(d.clone());
        let mut new = old.clone();
        let nd = new.delegations.as_mut().unwrap();
        nd.keys.insert(b.key_id(), b.clone());
        nd.roles[0].keyids.push(b.key_id());
        nd.roles[0].threshold = Threshold::new(2).unwrap();
        nd.roles[0].terminating = true;
        nd.roles[0].scope = PathScope::Paths(vec!["v*".into(), "rc*".into()]);
        nd.roles.push(DelegatedRole::with_paths(
            RoleName::new("targets/ci".to_owned()).unwrap(),
            vec![b.key_id()],
            vec!["ci-*".into()],
        ));
        let text = targets(Some(&old), &new).join("\n");
        assert!(
            text.contains(&format!(
                "delegation key {} (ed25519/ed25519) added",
                b.key_id()
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "delegation targets/prod changed: key {} added; threshold 1 -> 2; paths [v*] -> paths [v*, rc*]; terminating false -> true",
            b.key_id()
        )), "{text}");
        assert!(
            text.contains("delegation targets/ci added: keys ["),
            "{text}"
        );
        let text = targets(Some(&new), &old).join("\n");
        assert!(
            text.contains("delegation targets/ci removed (was keys ["),
            "{text}"
        );
    }

    #[test]
    fn long_lists_say_how_many_more() {
        let old = Targets::new(at(5));
        let mut new = old.clone();
        for i in 0..(MAX_LINES + 5) {
            new.add_target(
                TargetName::new(format!("t{i}")).unwrap(),
                TargetFile::image(&digest(1), 1, None),
            );
        }
        let lines = targets(Some(&old), &new);
        assert_eq!(lines.last().unwrap(), "… and 5 more like these");
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("target ")).count(),
            MAX_LINES
        );
    }

    #[test]
    fn snapshot_meta_changes_are_listed() {
        let mut old = Snapshot::new(at(5));
        old.meta.insert(
            "targets.json".into(),
            MetaFile::version_only(Version::new(3).unwrap()),
        );
        let mut new = old.clone();
        new.bump_version();
        new.meta.insert(
            "targets.json".into(),
            MetaFile::version_only(Version::new(4).unwrap()),
        );
        new.meta.insert(
            "targets/prod.json".into(),
            MetaFile::version_only(Version::new(1).unwrap()),
        );
        let text = snapshot(Some(&old), &new).join("\n");
        assert!(text.contains("targets.json: version 3 -> 4"), "{text}");
        assert!(
            text.contains("targets/prod.json: version 1 listed"),
            "{text}"
        );
    }
}
