//! `vouch status GUN`: versions, keys and expiry dates of each role, with warnings for
//! anything that expires within 30 days or has expired.
//!
//! The repository is loaded as its owner sees it ([`EditingRepo::open_for_editing`]): expired
//! roles are shown (`EXPIRED 3 days ago`) rather than refused, so that the owner can tell what to
//! renew. Days are rounded to the nearest day (a timestamp re-signed for one day shows `1`).
//!
//! Hashed bins (`vouch init --hashed-bins`) are summarised in one row, `bins-*`: how many
//! there are, the range of their versions, the earliest expiry among them, and their keys.

use serde_json::json;
use vouch_tuf::metadata::Root;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::TopLevelRole;

use crate::context::Context;
use crate::keystore::Keystore;
use crate::output::{self, Format};
use crate::repo::{self, EditingRepo};

/// Roles expiring within this many days are flagged.
pub const WARN_DAYS: i64 = 30;

/// `vouch status`
///
/// Example: vouch status registry.example.com/org/app
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image repository.
    pub gun: String,
}

struct Row {
    role: String,
    version: u64,
    expires: Timestamp,
    keyids: Vec<String>,
    threshold: Option<u32>,
    local: usize,
    /// For the row summarising hashed bins: how many, and their lowest version (`version`
    /// is the highest, `expires` the earliest).
    bins: Option<(usize, u64)>,
}

impl Row {
    /// The role as the table and warnings name it.
    fn label(&self) -> String {
        match self.bins {
            Some((n, _)) => format!("{} ({n} roles)", self.role),
            None => self.role.clone(),
        }
    }

    /// The version, or for hashed bins the range of versions.
    fn version_text(&self) -> String {
        match self.bins {
            Some((_, min)) if min != self.version => format!("{min}-{}", self.version),
            _ => self.version.to_string(),
        }
    }

    /// Folds the row of one more hashed bin into this summary row.
    fn add_bin(&mut self, other: Row) {
        if let Some((n, min)) = &mut self.bins {
            *n += 1;
            *min = (*min).min(other.version);
        }
        self.version = self.version.max(other.version);
        if other.expires < self.expires {
            self.expires = other.expires;
        }
        for k in other.keyids {
            if !self.keyids.contains(&k) {
                self.keyids.push(k);
            }
        }
        self.local = self.local.max(other.local);
    }
}

/// Days from `now` until `t`, rounded to the nearest day (negative once past).
fn days_until(t: Timestamp, now: Timestamp) -> i64 {
    (t.unix() - now.unix() + 43_200).div_euclid(86_400)
}

/// `expires in 3 days`, `expires in less than a day`, `expired 2 days ago`.
fn expiry_text(t: Timestamp, now: Timestamp) -> String {
    if t <= now {
        return repo::expired_ago(t, now);
    }
    match days_until(t, now) {
        d if d < 1 => "expires in less than a day".to_owned(),
        1 => "expires in 1 day".to_owned(),
        d => format!("expires in {d} days"),
    }
}

/// The DAYS cell: the days left, or `EXPIRED 3 days ago`.
fn days_cell(t: Timestamp, now: Timestamp) -> String {
    if t <= now {
        repo::expired_ago(t, now).replacen("expired", "EXPIRED", 1)
    } else {
        days_until(t, now).to_string()
    }
}

/// A warning for each role signed on this side that expires within [`WARN_DAYS`] days or
/// has expired. The timestamp and a server-held snapshot are short-lived by design: the
/// server re-signs them, so they are only mentioned once expired.
fn warnings(rows: &[Row], now: Timestamp, gun: &str) -> Vec<String> {
    let mut out = Vec::new();
    for row in rows {
        let days = days_until(row.expires, now);
        let expired = row.expires <= now;
        let server_signed = row.role == "timestamp" || (row.role == "snapshot" && row.local == 0);
        if server_signed && expired {
            out.push(format!(
                "{} {} ({}): the server re-signs it when it is read; if it stays expired, check the server's clock",
                row.label(),
                expiry_text(row.expires, now),
                row.expires
            ));
        } else if (days < WARN_DAYS || expired) && !server_signed {
            out.push(format!(
                "{} {} ({}): run `vouch renew {gun}`",
                row.label(),
                expiry_text(row.expires, now),
                row.expires
            ));
        }
    }
    out
}

/// Runs `vouch status`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let gun = super::parse_gun(&args.gun)?;
    let repo = EditingRepo::open_for_editing(ctx, &gun)?;
    let set = &repo.with_delegations()?;
    let keystore = Keystore::new(&ctx.trust_dir);
    let root: &Root = set.root().signed();
    let mut rows = Vec::new();
    let top = |role: TopLevelRole, version: u64, expires: Timestamp| -> anyhow::Result<Row> {
        let rk = root.role_keys(role);
        let mut local = 0;
        for id in &rk.keyids {
            if keystore.get(id)?.is_some() {
                local += 1;
            }
        }
        Ok(Row {
            role: role.to_string(),
            version,
            expires,
            keyids: rk.keyids.iter().map(ToString::to_string).collect(),
            threshold: Some(rk.threshold.get()),
            local,
            bins: None,
        })
    };
    let r = set.root();
    rows.push(top(
        TopLevelRole::Root,
        r.version().get(),
        r.signed().common.expires,
    )?);
    if let Some(t) = set.targets() {
        rows.push(top(
            TopLevelRole::Targets,
            t.version().get(),
            t.signed().common.expires,
        )?);
    }
    if let Some(s) = set.snapshot() {
        rows.push(top(
            TopLevelRole::Snapshot,
            s.version().get(),
            s.signed().common.expires,
        )?);
    }
    if let Some(t) = set.timestamp() {
        rows.push(top(
            TopLevelRole::Timestamp,
            t.version().get(),
            t.signed().common.expires,
        )?);
    }
    let bin_names: std::collections::BTreeSet<&str> = repo::bins(set)
        .into_iter()
        .map(|r| r.name.as_str())
        .collect();
    let mut bins: Option<Row> = None;
    for (name, _, md) in set.delegated_roles() {
        let dr = repo::delegation_of(set, name);
        let mut local = 0;
        for id in dr.iter().flat_map(|d| d.keyids.iter()) {
            if keystore.get(id)?.is_some() {
                local += 1;
            }
        }
        let row = Row {
            role: name.to_string(),
            version: md.version().get(),
            expires: md.signed().common.expires,
            keyids: dr
                .iter()
                .flat_map(|d| d.keyids.iter().map(ToString::to_string))
                .collect(),
            threshold: dr.as_ref().map(|d| d.threshold.get()),
            local,
            bins: None,
        };
        if !bin_names.contains(name.as_str()) {
            rows.push(row);
            continue;
        }
        match &mut bins {
            Some(summary) => summary.add_bin(row),
            None => {
                bins = Some(Row {
                    role: format!("{}*", repo::BIN_PREFIX),
                    bins: Some((1, row.version)),
                    ..row
                })
            }
        }
    }
    rows.extend(bins);
    let now = repo::now();
    let days_left = |t: Timestamp| days_until(t, now);
    let warnings = warnings(&rows, now, gun.as_str());
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "server": ctx.server,
            "roles": rows.iter().map(|r| {
                let mut v = json!({
                    "role": r.role,
                    "version": r.version,
                    "expires": r.expires.to_string(),
                    "days_left": days_left(r.expires),
                    "expired": r.expires <= now,
                    "keyids": r.keyids,
                    "threshold": r.threshold,
                    "local_keys": r.local,
                });
                if let (Some((count, min)), Some(obj)) = (r.bins, v.as_object_mut()) {
                    obj.insert("roles".into(), json!(count));
                    obj.insert("min_version".into(), json!(min));
                }
                v
            }).collect::<Vec<_>>(),
            "warnings": warnings,
        })),
        Format::Text => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let keys = if r.keyids.is_empty() {
                        "-".to_owned()
                    } else {
                        r.keyids
                            .iter()
                            .map(|k| k[..12.min(k.len())].to_owned())
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    vec![
                        r.label(),
                        r.version_text(),
                        r.expires.to_string(),
                        days_cell(r.expires, now),
                        r.threshold.map_or("-".to_owned(), |t| t.to_string()),
                        keys,
                        r.local.to_string(),
                    ]
                })
                .collect();
            let mut out = format!("{gun} on {}\n", ctx.server);
            out.push_str(&output::table(
                &[
                    "ROLE",
                    "VERSION",
                    "EXPIRES",
                    "DAYS",
                    "THRESHOLD",
                    "KEYS",
                    "LOCAL",
                ],
                &table,
            ));
            for w in &warnings {
                out.push_str(&format!("warning: {w}\n"));
            }
            output::text(&out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(role: &str, days: i64, local: usize) -> Row {
        Row {
            role: role.to_owned(),
            version: 1,
            expires: Timestamp::from_unix(1_000_000 + days * 86_400 + 60),
            keyids: Vec::new(),
            threshold: Some(1),
            local,
            bins: None,
        }
    }

    #[test]
    fn warns_for_roles_signed_here_that_expire_within_30_days() {
        let now = Timestamp::from_unix(1_000_000);
        let rows = [
            row("root", 3650, 1),
            row("targets", 29, 1),
            row("targets/releases", -2, 0),
            row("snapshot", 3, 0),
            row("timestamp", 0, 0),
        ];
        let w = warnings(&rows, now, "example.com/org/app");
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("targets expires in 29 days"), "{w:?}");
        assert!(
            w[1].starts_with("targets/releases expired 2 days ago"),
            "{w:?}"
        );
        assert!(w[1].contains("vouch renew example.com/org/app"));
        // A client-held snapshot is this side's to renew.
        assert_eq!(warnings(&[row("snapshot", 3, 1)], now, "g").len(), 1);
        // Server-signed roles are mentioned once expired.
        let w = warnings(&[row("timestamp", -3, 0)], now, "g");
        assert!(w[0].starts_with("timestamp expired 3 days ago"), "{w:?}");
    }

    #[test]
    fn days_are_rounded_to_the_nearest_day() {
        let now = Timestamp::from_unix(1_000_000);
        let at = |secs: i64| Timestamp::from_unix(1_000_000 + secs);
        // A timestamp re-signed for a day, read a few seconds later.
        assert_eq!(days_until(at(86_400 - 5), now), 1);
        assert_eq!(days_cell(at(86_400 - 5), now), "1");
        assert_eq!(expiry_text(at(86_400 - 5), now), "expires in 1 day");
        assert_eq!(days_until(at(7 * 86_400 - 60), now), 7);
        assert_eq!(expiry_text(at(3_600), now), "expires in less than a day");
        assert_eq!(days_cell(at(-3 * 86_400 + 60), now), "EXPIRED 3 days ago");
        assert_eq!(days_cell(at(-86_400), now), "EXPIRED 1 day ago");
        assert_eq!(days_cell(at(0), now), "EXPIRED less than a day ago");
        assert_eq!(days_until(at(-3 * 86_400), now), -3);
    }
}
