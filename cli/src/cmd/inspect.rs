//! `vouch inspect IMAGE|GUN`: who signed what. For each signed tag (or bare digest) its
//! digest and size, the role that signs it with the delegation path to it from `targets`,
//! and the keys whose signatures on that role's metadata verify; then every role's keys,
//! threshold, version and expiry (what `docker trust inspect` showed for Notary).
//!
//! Everything comes from metadata the verifier checked ([`Repo::with_delegations`], as
//! `list` reads it), and which role signs a target, and through which delegations, is the
//! verifier's own answer ([`vouch_verifier::Updater::lookup`]): the delegation search with
//! its path patterns, hash prefixes, terminating roles and order, as `verify` sees it. The keys that signed a role are found by checking each authorized
//! key's signature again with `vouch-tuf`'s one threshold function, so a signature that
//! does not verify is never shown as one.
//!
//! In text, hashed bins are summarised in one row of the roles table (`bins-* (N roles)`);
//! JSON lists every role.

use std::collections::BTreeMap;

use serde_json::json;
use vouch_tuf::metadata::{verify_threshold, Key, Metadata, Role, TargetFile};
use vouch_tuf::reference::ImageRef;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{KeyId, RoleName, Threshold, TopLevelRole};
use vouch_verifier::{Error as VerifyError, ImageTarget, TrustedSet};

use crate::context::Context;
use crate::output::{self, Format};
use crate::repo::{self, Repo};

/// `vouch inspect`
///
/// Examples:
///   vouch inspect registry.example.com/org/app
///   vouch inspect registry.example.com/org/app:v1 --output json
#[derive(clap::Args, Debug)]
pub struct Args {
    /// HOST/ORG/APP (every signed target), HOST/ORG/APP:TAG (that tag) or
    /// HOST/ORG/APP@sha256:HEX (the targets carrying that digest).
    pub image: String,
}

/// One role of the repository, as shown.
#[derive(Debug, Clone)]
pub struct RoleInfo {
    /// The role.
    pub role: String,
    /// The role that delegates to it (`None` for top-level roles).
    pub delegated_by: Option<String>,
    /// The keys allowed to sign it.
    pub keyids: Vec<KeyId>,
    /// How many of them must sign.
    pub threshold: u32,
    /// Its current version and expiry, when it has metadata (a delegated role nobody has
    /// signed yet has none).
    pub version: Option<u64>,
    /// See `version`.
    pub expires: Option<Timestamp>,
    /// The keys whose signatures on its current metadata verify.
    pub signed_by: Vec<KeyId>,
    /// True for a hashed bin.
    pub bin: bool,
}

/// The keys of `authorized` whose signatures on `md` verify (empty when fewer than
/// `threshold` do, which the verifier would not have accepted).
fn signers<T: Role>(
    md: &Metadata<T>,
    keys: &BTreeMap<KeyId, Key>,
    authorized: &[KeyId],
    threshold: Threshold,
) -> Vec<KeyId> {
    verify_threshold(
        T::TYPE,
        md.canonical_signed(),
        md.signatures(),
        keys,
        authorized,
        threshold,
    )
    .map(|v| v.keyids)
    .unwrap_or_default()
}

/// Every role of `set`: the four top-level roles, then the delegated roles loaded, in the
/// order the delegations list them (parents before children).
pub fn roles(set: &TrustedSet) -> Vec<RoleInfo> {
    let root = set.root().signed();
    let mut out = Vec::new();
    for top in [
        TopLevelRole::Root,
        TopLevelRole::Targets,
        TopLevelRole::Snapshot,
        TopLevelRole::Timestamp,
    ] {
        let rk = root.role_keys(top);
        let (version, expires, signed_by) = match top {
            TopLevelRole::Root => {
                let md = set.root().metadata();
                (
                    Some(md.version().get()),
                    Some(md.expires()),
                    signers(md, &root.keys, &rk.keyids, rk.threshold),
                )
            }
            TopLevelRole::Targets => match set.targets() {
                Some(t) => (
                    Some(t.version().get()),
                    Some(t.metadata().expires()),
                    signers(t.metadata(), &root.keys, &rk.keyids, rk.threshold),
                ),
                None => (None, None, Vec::new()),
            },
            TopLevelRole::Snapshot => match set.snapshot() {
                Some(s) => (
                    Some(s.version().get()),
                    Some(s.metadata().expires()),
                    signers(s.metadata(), &root.keys, &rk.keyids, rk.threshold),
                ),
                None => (None, None, Vec::new()),
            },
            TopLevelRole::Timestamp => match set.timestamp() {
                Some(t) => (
                    Some(t.version().get()),
                    Some(t.metadata().expires()),
                    signers(t.metadata(), &root.keys, &rk.keyids, rk.threshold),
                ),
                None => (None, None, Vec::new()),
            },
        };
        out.push(RoleInfo {
            role: top.as_str().to_owned(),
            delegated_by: None,
            keyids: rk.keyids.clone(),
            threshold: rk.threshold.get(),
            version,
            expires,
            signed_by,
            bin: false,
        });
    }
    // Walk the delegations from targets, parents first.
    let mut stack = vec![TopLevelRole::Targets.name()];
    let mut seen: Vec<RoleName> = Vec::new();
    while let Some(parent) = stack.pop() {
        let Some(d) = set
            .targets_role(parent.as_str())
            .and_then(|p| p.signed().delegations.as_ref())
        else {
            continue;
        };
        let mut children = Vec::new();
        for dr in &d.roles {
            if seen.contains(&dr.name) {
                continue;
            }
            seen.push(dr.name.clone());
            let md = set.targets_role(dr.name.as_str());
            out.push(RoleInfo {
                role: dr.name.to_string(),
                delegated_by: Some(parent.to_string()),
                keyids: dr.keyids.clone(),
                threshold: dr.threshold.get(),
                version: md.map(|m| m.version().get()),
                expires: md.map(|m| m.metadata().expires()),
                signed_by: md
                    .map(|m| signers(m.metadata(), &d.keys, &dr.keyids, dr.threshold))
                    .unwrap_or_default(),
                bin: repo::is_bin(dr),
            });
            children.push(dr.name.clone());
        }
        stack.extend(children.into_iter().rev());
    }
    out
}

/// One signed target, as shown: the verifier's answer for its name.
struct Row {
    name: String,
    target: ImageTarget,
}

impl Row {
    /// The role that signs it (the last of its role path).
    fn role(&self) -> String {
        self.target
            .role_path
            .last()
            .map_or_else(|| "targets".to_owned(), ToString::to_string)
    }

    fn role_path(&self) -> Vec<String> {
        self.target
            .role_path
            .iter()
            .map(ToString::to_string)
            .collect()
    }
}

/// The target file the role answering for `target` lists (for its other hashes).
fn signed_file<'s>(set: &'s TrustedSet, target: &ImageTarget) -> Option<&'s TargetFile> {
    let role = target.role_path.last()?;
    let name = vouch_tuf::types::TargetName::new(target.tag.clone()).ok()?;
    set.targets_role(role.as_str())?.signed().targets.get(&name)
}

/// The first 12 hex digits of each key id, comma-separated (`-` for none).
fn short_ids(ids: &[KeyId]) -> String {
    if ids.is_empty() {
        return "-".to_owned();
    }
    ids.iter()
        .map(|k| k.as_str().get(..12).unwrap_or(k.as_str()).to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs `vouch inspect`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let image = ImageRef::parse(&args.image).map_err(|e| {
        anyhow::anyhow!(
            "{:?} is not an image or repository name (expected HOST/ORG/APP, HOST/ORG/APP:TAG or HOST/ORG/APP@sha256:HEX): {e}",
            args.image
        )
    })?;
    let gun = image.gun();
    let mut repo = Repo::open(ctx, &gun)?;
    let set = repo.with_delegations()?;
    let roles = roles(&set);

    // The names to show: every target name some role lists (the tag asked for, or those
    // carrying the digest asked for); what each means is the verifier's answer for it
    // (the role that wins the delegation search, its path from targets), never a role's
    // listing on its own.
    let holders = set
        .targets()
        .into_iter()
        .chain(set.delegated_roles().map(|(_, _, t)| t));
    let mut names: Vec<String> = Vec::new();
    for md in holders {
        for (name, file) in &md.signed().targets {
            let wanted = match (image.tag(), image.digest()) {
                (Some(tag), _) => name.as_str() == tag,
                (None, Some(d)) => file.digests().contains(d),
                (None, None) => true,
            };
            if wanted && !names.iter().any(|n| n == name.as_str()) {
                names.push(name.to_string());
            }
        }
    }
    let mut rows: Vec<Row> = Vec::new();
    for name in names {
        let answer = match repo.updater().lookup(&name) {
            Ok(a) => a,
            // A target that is no image (no sha256 or sha512 hash): nothing to show.
            Err(VerifyError::NotAnImage(_)) => None,
            Err(e) => return Err(repo.verify_error(e)),
        };
        let Some(target) = answer else { continue };
        if image.digest().is_some_and(|d| {
            d != &target.digest && !signed_file(&set, &target).is_some_and(|f| f.has_digest(d))
        }) {
            // Another role lists the digest under this name; the search answers otherwise.
            continue;
        }
        rows.push(Row { name, target });
    }
    if rows.is_empty() && (image.tag().is_some() || image.digest().is_some()) {
        anyhow::bail!(
            "{gun} signs no target {}: see `vouch inspect {gun}`",
            image.tag().map_or_else(
                || image.digest().map(ToString::to_string).unwrap_or_default(),
                str::to_owned
            )
        );
    }
    let signed_by = |role: &str| -> Vec<KeyId> {
        roles
            .iter()
            .find(|r| r.role == role)
            .map(|r| r.signed_by.clone())
            .unwrap_or_default()
    };

    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "server": ctx.server,
            "targets": rows.iter().map(|r| json!({
                "name": r.name,
                "digest": r.target.digest.to_string(),
                "length": r.target.length,
                "role": r.role(),
                "role_path": r.role_path(),
                "signed_by": signed_by(&r.role()).iter().map(KeyId::as_str).collect::<Vec<_>>(),
                "custom": r.target.custom.as_ref().map(super::to_serde),
            })).collect::<Vec<_>>(),
            "roles": roles.iter().map(|r| json!({
                "role": r.role,
                "delegated_by": r.delegated_by,
                "keyids": r.keyids.iter().map(KeyId::as_str).collect::<Vec<_>>(),
                "threshold": r.threshold,
                "version": r.version,
                "expires": r.expires.map(|t| t.to_string()),
                "signed_by": r.signed_by.iter().map(KeyId::as_str).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })),
        Format::Text => {
            let targets: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.target.digest.to_string(),
                        r.target.length.to_string(),
                        r.role_path().join(" > "),
                        short_ids(&signed_by(&r.role())),
                    ]
                })
                .collect();
            let mut text = format!("Signed targets of {gun}\n");
            text.push_str(&output::table(
                &["TARGET", "DIGEST", "SIZE", "SIGNED THROUGH", "SIGNED BY"],
                &targets,
            ));
            text.push_str(&format!("\nRoles of {gun}\n"));
            text.push_str(&output::table(
                &[
                    "ROLE",
                    "DELEGATED BY",
                    "VERSION",
                    "EXPIRES",
                    "THRESHOLD",
                    "KEYS",
                    "SIGNED BY",
                ],
                &role_rows(&roles),
            ));
            output::text(&text)
        }
    }
}

/// The rows of the roles table, hashed bins folded into one.
fn role_rows(roles: &[RoleInfo]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bins: Vec<&RoleInfo> = roles.iter().filter(|r| r.bin).collect();
    for r in roles.iter().filter(|r| !r.bin) {
        out.push(vec![
            r.role.clone(),
            r.delegated_by.clone().unwrap_or_else(|| "-".to_owned()),
            r.version.map_or_else(|| "-".to_owned(), |v| v.to_string()),
            r.expires.map_or_else(|| "-".to_owned(), |t| t.to_string()),
            r.threshold.to_string(),
            short_ids(&r.keyids),
            short_ids(&r.signed_by),
        ]);
    }
    if let Some(first) = bins.first() {
        let mut keys: Vec<KeyId> = Vec::new();
        let mut signed: Vec<KeyId> = Vec::new();
        for b in &bins {
            for k in &b.keyids {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
            for k in &b.signed_by {
                if !signed.contains(k) {
                    signed.push(k.clone());
                }
            }
        }
        let versions: Vec<u64> = bins.iter().filter_map(|b| b.version).collect();
        let version = match (versions.iter().min(), versions.iter().max()) {
            (Some(lo), Some(hi)) if lo != hi => format!("{lo}-{hi}"),
            (Some(v), _) => v.to_string(),
            _ => "-".to_owned(),
        };
        let earliest = bins.iter().filter_map(|b| b.expires).min();
        out.push(vec![
            format!("bins-* ({} roles)", bins.len()),
            first.delegated_by.clone().unwrap_or_else(|| "-".to_owned()),
            version,
            earliest.map_or_else(|| "-".to_owned(), |t| t.to_string()),
            first.threshold.to_string(),
            short_ids(&keys),
            short_ids(&signed),
        ]);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn role(name: &str, parent: Option<&str>) -> RoleInfo {
        RoleInfo {
            role: name.to_owned(),
            delegated_by: parent.map(str::to_owned),
            keyids: Vec::new(),
            threshold: 1,
            version: None,
            expires: None,
            signed_by: Vec::new(),
            bin: false,
        }
    }

    #[test]
    fn hashed_bins_fold_into_one_row_of_the_roles_table() {
        let mut roles = vec![role("targets", None)];
        for (name, version) in [("bins-0", 2), ("bins-1", 3)] {
            let mut b = role(name, Some("targets"));
            b.bin = true;
            b.version = Some(version);
            roles.push(b);
        }
        let rows = role_rows(&roles);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][0], "targets");
        assert_eq!(rows[1][0], "bins-* (2 roles)");
        assert_eq!(rows[1][1], "targets");
        assert_eq!(rows[1][2], "2-3");
    }

    #[test]
    fn key_ids_are_shortened_for_tables() {
        let id =
            KeyId::new("2e8c64ee636b0123456789abcdef0123456789abcdef0123456789abcdef0123").unwrap();
        assert_eq!(short_ids(&[id.clone(), id]), "2e8c64ee636b,2e8c64ee636b");
        assert_eq!(short_ids(&[]), "-");
    }
}
