//! Expiry warnings where people look: `sign` and `verify` warn on stderr when a role they
//! touch expires soon, naming who must act before every client refuses the repository.
//!
//! Two kinds of role, two windows:
//! - roles signed by key holders (root, targets, delegated roles and hashed bins, a snapshot
//!   whose key this trust directory holds) live for years and are renewed by hand: warned
//!   about within [`WARN_DAYS`] days, naming `vouch renew GUN --role ROLE` for the holder of
//!   the role's key;
//! - roles the server signs with its online keys (timestamp, a server-held snapshot) live
//!   for days and are re-signed by the server when half their lifetime is left (a day and a
//!   week by default): one that expires within [`ONLINE_WARN_SECS`] seconds means the
//!   server's online signing is failing (or its lifetimes are set that short), so the
//!   warning is for the server operator — or, for `verify --bundle`, says to export a
//!   fresh bundle.
//!
//! Pure: [`touched`] reads the roles out of a verified trusted set and [`warnings`] turns
//! them and the time into messages.

use vouch_tuf::time::Timestamp;
use vouch_tuf::types::TopLevelRole;
use vouch_verifier::TrustedSet;

/// Roles signed by key holders are warned about this many days before they expire (as
/// `vouch status` and `vouch renew` count).
pub const WARN_DAYS: i64 = 30;
/// Roles the server signs are warned about this many seconds before they expire.
pub const ONLINE_WARN_SECS: i64 = 3600;

/// Who signs a role, for the warning's advice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signer {
    /// A key holder renews it with `vouch renew`.
    KeyHolder,
    /// The snapshot key is held in a trust directory: it is re-signed with every change.
    ClientSnapshot,
    /// The server re-signs it with its online key.
    Server,
    /// The server signed it, and it came from an offline bundle: a fresher bundle is needed.
    Bundle,
}

/// One role a command touched, and its expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Touched {
    /// The role (`root`, `targets`, `targets/releases`, `bins-3`, …).
    pub role: String,
    /// When its trusted metadata expires.
    pub expires: Timestamp,
    /// Who signs it.
    pub signer: Signer,
}

/// The roles named in `roles` (`root`, `timestamp`, `snapshot`, `targets`, delegated roles)
/// with their expiry in `set`; a role with no metadata in `set` is left out. The snapshot is
/// the server's unless `holds_snapshot_key` (this trust directory holds a snapshot key).
/// With `from_bundle`, what the server signs came from an offline bundle.
pub fn touched(
    set: &TrustedSet,
    roles: &[&str],
    holds_snapshot_key: bool,
    from_bundle: bool,
) -> Vec<Touched> {
    let online = if from_bundle {
        Signer::Bundle
    } else {
        Signer::Server
    };
    let mut out = Vec::new();
    for &role in roles {
        let (expires, signer) = match TopLevelRole::from_name(role) {
            Some(TopLevelRole::Root) => (Some(set.root().metadata().expires()), Signer::KeyHolder),
            Some(TopLevelRole::Timestamp) => {
                (set.timestamp().map(|t| t.metadata().expires()), online)
            }
            Some(TopLevelRole::Snapshot) => (
                set.snapshot().map(|t| t.metadata().expires()),
                if holds_snapshot_key {
                    Signer::ClientSnapshot
                } else {
                    online
                },
            ),
            Some(TopLevelRole::Targets) | None => (
                set.targets_role(role).map(|t| t.metadata().expires()),
                Signer::KeyHolder,
            ),
        };
        if let Some(expires) = expires {
            out.push(Touched {
                role: role.to_owned(),
                expires,
                signer,
            });
        }
    }
    out
}

/// "in 3 days", "in 40 minutes", "3 days ago".
fn when(expires: Timestamp, now: Timestamp) -> String {
    let secs = expires.unix() - now.unix();
    let (n, unit) = if secs.abs() >= 86_400 {
        (secs.abs() / 86_400, "day")
    } else if secs.abs() >= 3600 {
        (secs.abs() / 3600, "hour")
    } else {
        ((secs.abs() / 60).max(1), "minute")
    };
    let plural = if n == 1 { "" } else { "s" };
    if secs < 0 {
        format!("expired {n} {unit}{plural} ago")
    } else {
        format!("expires in {n} {unit}{plural}")
    }
}

/// The `--role` value `vouch renew` takes for `role`.
fn renew_role(role: &str) -> &str {
    role.strip_prefix("targets/").unwrap_or(role)
}

/// A warning for each role of `touched` (of repository `gun`) that expires within its
/// window at `now`, in the order given.
pub fn warnings(gun: &str, touched: &[Touched], now: Timestamp) -> Vec<String> {
    let mut out = Vec::new();
    for t in touched {
        let left = t.expires.unix() - now.unix();
        let window = match t.signer {
            Signer::Server | Signer::Bundle => ONLINE_WARN_SECS,
            Signer::KeyHolder | Signer::ClientSnapshot => WARN_DAYS * 86_400,
        };
        if left >= window {
            continue;
        }
        let head = format!(
            "{} of {gun} {} ({})",
            t.role,
            when(t.expires, now),
            t.expires
        );
        let advice = match t.signer {
            Signer::KeyHolder => format!(
                "the holder of its key must run `vouch renew {gun} --role {}` before then, or every client will refuse {gun}",
                renew_role(&t.role)
            ),
            Signer::ClientSnapshot => format!(
                "the holder of the snapshot key re-signs it with any change, e.g. `vouch renew {gun} --role targets`"
            ),
            Signer::Server => format!(
                "the server signs it with its online {} key and should have re-signed it long before: tell the server operator",
                t.role
            ),
            Signer::Bundle => format!(
                "it came from an offline bundle: export a fresh one (`vouch export {gun}`) where the server is reachable"
            ),
        };
        out.push(format!("{head}: {advice}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn touched(role: &str, in_secs: i64, signer: Signer) -> Touched {
        Touched {
            role: role.to_owned(),
            expires: Timestamp::from_unix(NOW + in_secs),
            signer,
        }
    }

    #[test]
    fn each_kind_of_role_has_its_window_and_its_advice() {
        let now = Timestamp::from_unix(NOW);
        let day = 86_400;
        let w = warnings(
            "example.com/org/app",
            &[
                touched("root", 3650 * day, Signer::KeyHolder),
                touched("targets", 10 * day, Signer::KeyHolder),
                touched("targets/releases", 29 * day + 3600, Signer::KeyHolder),
                touched("bins-3", -2 * day, Signer::KeyHolder),
                touched("timestamp", 12 * 3600, Signer::Server),
                touched("timestamp", 40 * 60, Signer::Server),
                touched("snapshot", 5 * day, Signer::ClientSnapshot),
                touched("timestamp", 50 * 60, Signer::Bundle),
            ],
            now,
        );
        assert_eq!(w.len(), 6, "{w:#?}");
        assert!(
            w[5].contains("`vouch export example.com/org/app`"),
            "{}",
            w[5]
        );
        assert!(
            w[0].starts_with("targets of example.com/org/app expires in 10 days (")
                && w[0].contains("`vouch renew example.com/org/app --role targets`"),
            "{}",
            w[0]
        );
        assert!(w[1].contains("expires in 29 days") && w[1].contains("--role releases`"));
        assert!(w[2].contains("expired 2 days ago") && w[2].contains("--role bins-3`"));
        assert!(
            w[3].starts_with("timestamp of example.com/org/app expires in 40 minutes")
                && w[3].contains("online timestamp key")
                && w[3].contains("server operator"),
            "{}",
            w[3]
        );
        assert!(w[4].contains("holder of the snapshot key"), "{}", w[4]);
    }

    #[test]
    fn a_role_just_inside_the_window_is_warned_about_and_one_outside_is_not() {
        let now = Timestamp::from_unix(NOW);
        let at = |secs, signer| warnings("g", &[touched("r", secs, signer)], now).len();
        assert_eq!(at(WARN_DAYS * 86_400, Signer::KeyHolder), 0);
        assert_eq!(at(WARN_DAYS * 86_400 - 1, Signer::KeyHolder), 1);
        assert_eq!(at(ONLINE_WARN_SECS, Signer::Server), 0);
        assert_eq!(at(ONLINE_WARN_SECS - 1, Signer::Server), 1);
    }
}
