//! Loading the policy again when it changes, keeping the policy in force when the new one
//! is invalid.
//!
//! A [`PolicyWatch`] remembers a fingerprint (modification time, size, inode and device) of
//! the policy file, of every `root_file` it names, and of its `trust_pins` file with every
//! root and key file that names. [`PolicyWatch::check`] compares it
//! with the files now: unchanged, it does nothing (a few `stat` calls, so the binary can
//! poll every few seconds); changed — or when asked to load anyway ([`Trigger::Signal`],
//! SIGHUP) — it reads the policy again and:
//!
//! - puts the new policy in force ([`Webhook::set_policy`]) when it is valid;
//! - keeps the policy in force when the new one is invalid (bad TOML, an inconsistent rule),
//!   logging the error once for that change and counting it in
//!   `vouch_admission_policy_reloads_total{result="failed"}`;
//! - keeps the policy in force, too, when it is complete and the new one names a root file
//!   that cannot be read; while the policy in force is itself missing a root file (the
//!   webhook is not ready), a new policy is taken even if it misses one too.
//!
//! Kubernetes mounts a ConfigMap as symbolic links to a directory it swaps atomically:
//! `stat` follows the links, so the swap changes the fingerprint (a new inode).
//!
//! What it is not: a file-system event watcher; polling a handful of files costs
//! nothing and works on every volume type.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::decide::Webhook;
use crate::policy::{Policy, PolicyError, RootFiles};

/// What made [`PolicyWatch::check`] run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A periodic look: the policy is read again only when its files changed.
    Poll,
    /// An explicit request (SIGHUP): the policy is read again whatever the files say.
    Signal,
}

/// What [`PolicyWatch::check`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing changed; nothing was read.
    Unchanged,
    /// The new policy is in force.
    Reloaded,
    /// The new policy was refused, for this reason; the one in force stays.
    Kept(String),
}

/// One file's identity and state, or `None` when it cannot be looked at.
type Stamp = Option<(i64, i64, u64, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.mtime(), m.mtime_nsec(), m.len(), m.ino(), m.dev()))
}

#[derive(Debug)]
struct Seen {
    /// The root files the policy text last read names.
    root_files: Vec<PathBuf>,
    /// The policy file's stamp, then each root file's, when last read.
    stamps: Vec<Stamp>,
}

/// Watches a policy file and the root files it names (see the module documentation).
#[derive(Debug)]
pub struct PolicyWatch {
    path: PathBuf,
    seen: Mutex<Seen>,
}

impl PolicyWatch {
    /// Loads the policy at `path` for the webhook to start with (a root file that cannot be
    /// read leaves its rule denying until it can: see [`RootFiles::MayBeMissing`]), and a
    /// watch on its files.
    pub fn load(path: &Path) -> Result<(Self, Policy), PolicyError> {
        let policy_stamp = stamp(path);
        let policy = Policy::load_with(path, RootFiles::MayBeMissing)?;
        let mut stamps = vec![policy_stamp];
        stamps.extend(policy.root_files.iter().map(|p| stamp(p)));
        let watch = PolicyWatch {
            path: path.to_owned(),
            seen: Mutex::new(Seen {
                root_files: policy.root_files.clone(),
                stamps,
            }),
        };
        Ok((watch, policy))
    }

    /// The policy file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the policy again if its files changed (or, for [`Trigger::Signal`], in any
    /// case), and puts it in force in `webhook` when it is valid. Logs and counts what it
    /// did. Checks run one at a time. Blocking (file reads).
    pub fn check(&self, webhook: &Webhook, trigger: Trigger) -> Outcome {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let policy_stamp = stamp(&self.path);
        let mut now = vec![policy_stamp];
        now.extend(seen.root_files.iter().map(|p| stamp(p)));
        if trigger == Trigger::Poll && now == seen.stamps {
            return Outcome::Unchanged;
        }
        // Stamps are taken before the files are read: a change after that is seen by the
        // next check.
        let file = self.path.display().to_string();
        let refused = |why: String| {
            webhook.metrics().policy_reload(false);
            let why = one_line(&why);
            tracing::error!(file, error = %why, "policy not reloaded; the policy in force is kept");
            Outcome::Kept(why)
        };
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) => {
                // Remembered as seen, so that the error is reported once per change.
                seen.stamps = now;
                let e = PolicyError::Read {
                    path: self.path.clone(),
                    error,
                };
                return refused(e.to_string());
            }
        };
        let base = Policy::base_of(&self.path);
        let named = Policy::named_root_files(&text, base);
        let mut stamps = vec![policy_stamp];
        stamps.extend(named.iter().map(|p| stamp(p)));
        seen.root_files = named;
        seen.stamps = stamps;
        let policy = match Policy::parse_with(&text, base, RootFiles::MayBeMissing) {
            Ok(p) => p,
            Err(e) => return refused(format!("{file}: {e}")),
        };
        // A loaded policy knows every file it read: the ones its text names (stamped above,
        // before reading) and then those its trust pins name (stamped now).
        if let Some(more) = policy.root_files.get(seen.root_files.len()..) {
            if policy.root_files.starts_with(&seen.root_files) {
                seen.stamps.extend(more.iter().map(|p| stamp(p)));
                seen.root_files = policy.root_files.clone();
            }
        }
        let missing: Vec<String> = policy
            .unavailable_roots()
            .map(|(_, why)| why.to_owned())
            .collect();
        let current = webhook.policy();
        if !missing.is_empty() && current.unavailable_roots().next().is_none() {
            return refused(missing.join("; "));
        }
        if policy.refresh_interval != webhook.trust().config().refresh_interval {
            tracing::warn!(
                file,
                "refresh_interval_secs changed: it takes effect when the webhook restarts"
            );
        }
        let rules = policy.rules.len();
        for w in policy.warnings() {
            tracing::warn!(file, warning = %w, "policy");
        }
        webhook.set_policy(policy);
        webhook.metrics().policy_reload(true);
        if missing.is_empty() {
            tracing::info!(file, rules, ?trigger, "policy reloaded");
        } else {
            tracing::warn!(file, rules, missing = %missing.join("; "), "policy reloaded; not ready until its root files can be read");
        }
        Outcome::Reloaded
    }
}

/// `message` on one line, for a log: a TOML error's source excerpt (the lines of the form
/// `  |`, `3 | text`, `  |   ^^^`) left out, the other lines joined with `: `.
///
/// ```
/// use vouch_admission::reload::one_line;
/// let e = "invalid policy: TOML parse error at line 1, column 8\n  |\n1 | mode = 1\n  |        ^\nexpected a string\n";
/// assert_eq!(one_line(e), "invalid policy: TOML parse error at line 1, column 8: expected a string");
/// ```
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| {
            let excerpt = l.starts_with('|')
                || l.split_once(" |")
                    .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            !l.is_empty() && !excerpt
        })
        .collect::<Vec<_>>()
        .join(": ")
}
