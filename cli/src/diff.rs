//! What a proposed role version changes, for the person asked to sign it (`vouch approve`,
//! `vouch proposals show`): one line per change, against the trusted current version.
//!
//! Pure functions over the metadata of `vouch-tuf`; they neither fetch nor check anything
//! (the approval's checks are [`crate::approval`]'s). Two parts, both always complete, never
//! cut: a summary in the terms people think in ([`root`], [`targets`], [`snapshot`]: keys,
//! thresholds, targets and their digests, delegations), then [`fields`], every field of the
//! canonical `signed` that changes, path by path, from the very bytes that are signed — so
//! nothing signed can change unseen (unknown fields, `spec_version`, the order of
//! delegations, other hashes, custom data).

use std::collections::{BTreeMap, BTreeSet};

use vouch_tuf::metadata::{
    Common, DelegatedRole, Delegations, Key, PathScope, Root, Snapshot, Targets,
};
use vouch_tuf::types::{KeyId, TopLevelRole};

/// What changes in a root, from `old` (none: the repository's first root) to `new`.
pub fn root(old: Option<&Root>, new: &Root) -> Vec<String> {
    let mut out = Vec::new();
    let empty = Root::new(new.common.expires);
    let old_or_empty = old.unwrap_or(&empty);
    version_and_expiry(&mut out, old.map(|o| &o.common), &new.common);
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
    version_and_expiry(&mut out, old.map(|o| &o.common), &new.common);
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
    out.extend(added.into_iter().chain(removed).chain(changed));
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
    version_and_expiry(&mut out, old.map(|o| &o.common), &new.common);
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
    out.extend(lines);
    out
}

fn flag(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "true",
        Some(false) => "false",
        None => "unset",
    }
}

fn version_and_expiry(out: &mut Vec<String>, old: Option<&Common>, new: &Common) {
    let (nv, ne) = (new.version.get(), new.expires);
    match old {
        None => {
            out.push(format!("version {nv} (new)"));
            out.push(format!("expires {ne}"));
        }
        Some(o) => {
            out.push(format!("version {} -> {nv}", o.version.get()));
            if o.expires != ne {
                out.push(format!("expires {} -> {ne}", o.expires));
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

/// Every field of `signed` that changes from `old` (the current version's; `None`: a first
/// version, whose every field is listed) to `new`, one line per changed leaf:
/// `PATH: OLD -> NEW`, `PATH added: NEW`, `PATH removed (was OLD)`, values in canonical
/// JSON. Arrays are compared position by position, so a reordering shows. The first line
/// says which of the two it is. The values must be those whose canonical form is signed
/// (see `approval`, which checks it).
pub fn fields(old: Option<&vouch_tuf::json::Value>, new: &vouch_tuf::json::Value) -> Vec<String> {
    let mut out = Vec::new();
    match old {
        None => {
            out.push("every field (a first version: nothing to compare with):".to_owned());
            leaves(&mut out, "signed", new);
        }
        Some(old) => {
            out.push("field by field (exactly what is signed):".to_owned());
            compare(&mut out, "signed", old, new);
        }
    }
    out
}

fn show(v: &vouch_tuf::json::Value) -> String {
    String::from_utf8_lossy(&vouch_tuf::json::canonical(v)).into_owned()
}

/// `path.key`, or `path["key"]` for a key that is not a plain name.
fn member(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if plain {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", show(&vouch_tuf::json::Value::from(key)))
    }
}

fn leaves(out: &mut Vec<String>, path: &str, v: &vouch_tuf::json::Value) {
    use vouch_tuf::json::Value;
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, item) in m.iter() {
                leaves(out, &member(path, k), item);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, item) in a.iter().enumerate() {
                leaves(out, &format!("{path}[{i}]"), item);
            }
        }
        other => out.push(format!("  {path} = {}", show(other))),
    }
}

fn compare(
    out: &mut Vec<String>,
    path: &str,
    old: &vouch_tuf::json::Value,
    new: &vouch_tuf::json::Value,
) {
    use vouch_tuf::json::Value;
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, nv) in n.iter() {
                match o.get(k) {
                    Some(ov) => compare(out, &member(path, k), ov, nv),
                    None => out.push(format!("  {} added: {}", member(path, k), show(nv))),
                }
            }
            for (k, ov) in o.iter() {
                if !n.contains_key(k) {
                    out.push(format!("  {} removed (was {})", member(path, k), show(ov)));
                }
            }
        }
        (Value::Array(o), Value::Array(n)) => {
            for i in 0..o.len().max(n.len()) {
                let at = format!("{path}[{i}]");
                match (o.get(i), n.get(i)) {
                    (Some(ov), Some(nv)) => compare(out, &at, ov, nv),
                    (None, Some(nv)) => out.push(format!("  {at} added: {}", show(nv))),
                    (Some(ov), None) => out.push(format!("  {at} removed (was {})", show(ov))),
                    (None, None) => {}
                }
            }
        }
        _ => out.push(format!("  {path}: {} -> {}", show(old), show(new))),
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
    out.extend(lines);
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
    fn long_lists_are_shown_whole() {
        let old = Targets::new(at(5));
        let mut new = old.clone();
        for i in 0..1005 {
            new.add_target(
                TargetName::new(format!("t{i}")).unwrap(),
                TargetFile::image(&digest(1), 1, None),
            );
        }
        let lines = targets(Some(&old), &new);
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("target ")).count(),
            1005
        );
    }

    fn canonical<T: vouch_tuf::metadata::Role>(t: T) -> vouch_tuf::json::Value {
        t.to_value()
    }

    #[test]
    fn every_signed_field_that_changes_is_listed() {
        let mut old = Targets::new(at(5));
        old.add_target(
            TargetName::new("v1").unwrap(),
            TargetFile::image(&digest(1), 1, None),
        );
        let mut new = old.clone();
        // Custom data, another hash, and an unknown field: the summary says little of them.
        let t = new
            .targets
            .get_mut(&TargetName::new("v1").unwrap())
            .unwrap();
        t.hashes.insert("sha512".into(), "ab".repeat(64));
        new.extra
            .insert("x-note".into(), vouch_tuf::json::Value::from("\u{1b}[2K"));
        let lines = fields(Some(&canonical(old.clone())), &canonical(new.clone()));
        let text = lines.join("\n");
        assert!(text.starts_with("field by field"), "{text}");
        assert!(
            text.contains("signed.targets.v1.hashes.sha512 added: \"abab"),
            "{text}"
        );
        assert!(text.contains("signed.x-note added:"), "{text}");
        // Nothing else.
        assert_eq!(lines.len(), 3, "{text}");
        // The same bytes: nothing listed but the header.
        assert_eq!(
            fields(Some(&canonical(old.clone())), &canonical(old)).len(),
            1
        );
    }

    #[test]
    fn a_reordering_of_delegations_shows() {
        let mut old = Targets::new(at(5));
        let role = |name: &str| {
            DelegatedRole::with_paths(
                vouch_tuf::types::RoleName::new(name).unwrap(),
                Vec::new(),
                vec!["*".into()],
            )
        };
        old.delegations = Some(Delegations {
            keys: BTreeMap::new(),
            roles: vec![role("a"), role("b")],
            extra: Default::default(),
        });
        let mut new = old.clone();
        new.delegations.as_mut().unwrap().roles.reverse();
        let text = fields(Some(&canonical(old)), &canonical(new)).join("\n");
        assert!(
            text.contains("signed.delegations.roles[0].name: \"a\" -> \"b\""),
            "{text}"
        );
    }

    #[test]
    fn a_first_version_lists_every_field() {
        let t = Targets::new(at(5));
        let lines = fields(None, &canonical(t));
        assert!(lines[0].starts_with("every field"), "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("signed._type = \"targets\"")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("signed.spec_version = ")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("signed.expires = ")),
            "{lines:?}"
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
