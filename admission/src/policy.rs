//! The admission policy: which images are verified against which trust server, which are
//! allowed or denied outright, and which namespaces are exempt.
//!
//! The policy is a TOML file (TOML rather than YAML because the workspace already parses
//! TOML for the server's configuration, so it adds no dependency):
//!
//! ```toml
//! mode = "enforce"                 # or "warn": admit, but warn about each failure
//! exempt_namespaces = ["kube-system"]
//! refresh_interval_secs = 30       # a TUF refresh per repository at most this often
//! deadline_ms = 5000               # every decision finishes within this, failing closed
//!
//! [[rule]]
//! pattern = "registry.example.com/org/**"
//! action = "verify"
//! server = "https://vouch.example.com"
//! root_file = "/etc/vouch/roots/org.root.json"   # or root_inline = '''{"signatures":…}'''
//! gun = "{name}"                                   # the default: the normalised image name
//! required_roles = ["targets/releases"]            # optional
//!
//! [[rule]]
//! pattern = "registry.example.com/org/debug-*"
//! action = "deny"
//! ```
//!
//! Patterns are globs over the normalised image name (`registry/repository`, as
//! [`ImageRef::name`] writes it: `nginx` is `docker.io/library/nginx`): `*` matches within
//! one path component, `**` matches across components, `?` one character. When several
//! rules match, the most specific one wins: the one with the most literal characters, then
//! the one written first. An image that matches no rule is denied.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use vouch_tuf::reference::{Digest, Gun, ImageRef, ReferenceError};

/// Why a policy could not be loaded.
#[derive(Debug, Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown fields.
    #[error("invalid policy: {0}")]
    Parse(#[from] toml::de::Error),
    /// A rule is inconsistent.
    #[error("rule {index} ({pattern}): {message}")]
    Rule {
        /// 1-based position of the rule in the file.
        index: usize,
        /// Its pattern.
        pattern: String,
        /// What is wrong.
        message: String,
    },
}

/// Whether failures deny the request or only warn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny a request when any image fails.
    #[default]
    Enforce,
    /// Admit every request; report failures as warnings (for rollout).
    Warn,
}

/// What a rule does with the images it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Verify against the rule's trust server and pin tags to their signed digests.
    Verify,
    /// Admit without verification.
    Allow,
    /// Refuse.
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    exempt_namespaces: Vec<String>,
    refresh_interval_secs: Option<u64>,
    deadline_ms: Option<u64>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    pattern: String,
    action: Action,
    server: Option<String>,
    gun: Option<String>,
    root_file: Option<PathBuf>,
    root_inline: Option<String>,
    #[serde(default)]
    required_roles: Vec<String>,
}

/// Where a `verify` rule finds trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustSource {
    /// Base URL of the vouch server (no trailing `/`).
    pub server: String,
    /// GUN template: `{name}`, `{registry}` and `{repository}` are replaced by the image's.
    pub gun: String,
    /// The pinned root metadata (bytes of `root.json`).
    pub root: Vec<u8>,
    /// Delegated roles that must appear on the signing role path.
    pub required_roles: Vec<String>,
    /// Short hex id of the root (first 16 hex digits of its SHA-256): separates the state
    /// of rules pinning different roots for one repository.
    pub root_id: String,
}

impl TrustSource {
    /// The GUN of `image` under this source.
    pub fn gun_for(&self, image: &ImageRef) -> Result<Gun, ReferenceError> {
        let s = self
            .gun
            .replace("{name}", &image.name())
            .replace("{registry}", image.registry())
            .replace("{repository}", image.repository());
        Gun::new(&s)
    }
}

/// One rule of the policy.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The glob.
    pub pattern: String,
    /// What to do.
    pub action: Action,
    /// For `verify`: where trust comes from.
    pub trust: Option<TrustSource>,
    specificity: usize,
}

/// A loaded, checked policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Enforce or warn.
    pub mode: Mode,
    /// Namespaces whose requests are admitted untouched.
    pub exempt_namespaces: BTreeSet<String>,
    /// Minimum time between two TUF refreshes of one repository.
    pub refresh_interval: Duration,
    /// Longest time a decision may take; past it the request is denied.
    pub deadline: Duration,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

/// Default refresh interval.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);
/// Default decision deadline (below the API server's default webhook timeout of 10 s).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);

impl Policy {
    /// Reads a policy file; relative `root_file` paths are relative to its directory.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")))
    }

    /// Parses policy text; relative `root_file` paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, PolicyError> {
        let raw: RawPolicy = toml::from_str(text)?;
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.into_iter().enumerate() {
            let fail = |message: &str| PolicyError::Rule {
                index: i + 1,
                pattern: r.pattern.clone(),
                message: message.to_owned(),
            };
            if r.pattern.is_empty() {
                return Err(fail("empty pattern"));
            }
            let trust = match r.action {
                Action::Verify => {
                    let server = r
                        .server
                        .clone()
                        .ok_or_else(|| fail("a verify rule needs `server`"))?;
                    let root =
                        match (&r.root_file, &r.root_inline) {
                            (Some(p), None) => {
                                let p = base.join(p);
                                std::fs::read(&p).map_err(|e| {
                                    fail(&format!("cannot read root_file {}: {e}", p.display()))
                                })?
                            }
                            (None, Some(inline)) => inline.as_bytes().to_vec(),
                            _ => return Err(fail(
                                "a verify rule needs exactly one of `root_file` and `root_inline`",
                            )),
                        };
                    Some(TrustSource {
                        root_id: Digest::sha256_of(&root).hex()[..16].to_owned(),
                        server: server.trim_end_matches('/').to_owned(),
                        gun: r.gun.clone().unwrap_or_else(|| "{name}".to_owned()),
                        root,
                        required_roles: r.required_roles.clone(),
                    })
                }
                Action::Allow | Action::Deny => {
                    if r.server.is_some()
                        || r.root_file.is_some()
                        || r.root_inline.is_some()
                        || r.gun.is_some()
                        || !r.required_roles.is_empty()
                    {
                        return Err(fail("trust settings are only for `verify` rules"));
                    }
                    None
                }
            };
            rules.push(Rule {
                specificity: r
                    .pattern
                    .chars()
                    .filter(|c| !matches!(c, '*' | '?'))
                    .count(),
                pattern: r.pattern,
                action: r.action,
                trust,
            });
        }
        Ok(Policy {
            mode: raw.mode,
            exempt_namespaces: raw.exempt_namespaces.into_iter().collect(),
            refresh_interval: raw
                .refresh_interval_secs
                .map_or(DEFAULT_REFRESH, Duration::from_secs),
            deadline: raw
                .deadline_ms
                .map_or(DEFAULT_DEADLINE, Duration::from_millis),
            rules,
        })
    }

    /// The rule for `image`: the most specific matching one (ties: the first), or `None`.
    pub fn rule_for(&self, image: &ImageRef) -> Option<&Rule> {
        let name = image.name();
        let mut best: Option<&Rule> = None;
        for rule in &self.rules {
            if glob_match(rule.pattern.as_bytes(), name.as_bytes())
                && best.is_none_or(|b| rule.specificity > b.specificity)
            {
                best = Some(rule);
            }
        }
        best
    }

    /// True when requests in `namespace` are admitted untouched.
    pub fn is_exempt(&self, namespace: Option<&str>) -> bool {
        namespace.is_some_and(|ns| self.exempt_namespaces.contains(ns))
    }
}

/// Glob match: `**` any sequence, `*` any sequence without `/`, `?` one character other
/// than `/`; everything else literally.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') if pattern.get(1) == Some(&b'*') => {
            let rest = &pattern[2..];
            (0..=text.len()).any(|i| glob_match(rest, &text[i..]))
        }
        Some(b'*') => {
            let rest = &pattern[1..];
            let stop = text.iter().position(|&c| c == b'/').unwrap_or(text.len());
            (0..=stop).any(|i| glob_match(rest, &text[i..]))
        }
        Some(b'?') => {
            text.first().is_some_and(|&c| c != b'/') && glob_match(&pattern[1..], &text[1..])
        }
        Some(&p) => text.first() == Some(&p) && glob_match(&pattern[1..], &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ROOT: &str = "{}";

    fn policy(text: &str) -> Policy {
        Policy::parse(text, Path::new(".")).unwrap()
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"a.io/org/*", b"a.io/org/app"));
        assert!(!glob_match(b"a.io/org/*", b"a.io/org/team/app"));
        assert!(glob_match(b"a.io/org/**", b"a.io/org/team/app"));
        assert!(glob_match(b"a.io/**", b"a.io/x"));
        assert!(glob_match(b"a.io/ap?", b"a.io/app"));
        assert!(!glob_match(b"a.io/ap?", b"a.io/ap/"));
        assert!(!glob_match(b"a.io/org/*", b"b.io/org/app"));
    }

    #[test]
    fn most_specific_rule_wins_then_first() {
        let p = policy(&format!(
            r#"
            [[rule]]
            pattern = "**"
            action = "deny"
            [[rule]]
            pattern = "reg.io/org/**"
            action = "verify"
            server = "http://127.0.0.1:1/"
            root_inline = '{ROOT}'
            [[rule]]
            pattern = "reg.io/org/debug-*"
            action = "allow"
            [[rule]]
            pattern = "reg.io/org/debug-?"
            action = "deny"
            "#
        ));
        let rule = |s: &str| p.rule_for(&ImageRef::parse(s).unwrap()).unwrap().action;
        assert_eq!(rule("reg.io/org/app:v1"), Action::Verify);
        assert_eq!(rule("reg.io/org/debug-shell"), Action::Allow);
        // "debug-?" and "debug-*" have the same literal count: the first written wins.
        assert_eq!(rule("reg.io/org/debug-x"), Action::Allow);
        assert_eq!(rule("nginx"), Action::Deny);
        let v = p
            .rule_for(&ImageRef::parse("reg.io/org/app").unwrap())
            .unwrap();
        assert_eq!(v.trust.as_ref().unwrap().server, "http://127.0.0.1:1");
    }

    #[test]
    fn unmatched_images_have_no_rule() {
        let p = policy("[[rule]]\npattern = \"reg.io/*\"\naction = \"allow\"\n");
        assert!(p
            .rule_for(&ImageRef::parse("other.io/app").unwrap())
            .is_none());
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.refresh_interval, DEFAULT_REFRESH);
        assert_eq!(p.deadline, DEFAULT_DEADLINE);
    }

    #[test]
    fn gun_templates() {
        let p = policy(
            "[[rule]]\npattern = \"**\"\naction = \"verify\"\nserver = \"http://x\"\nroot_inline = \"{}\"\ngun = \"mirror.io/{repository}\"\n",
        );
        let img = ImageRef::parse("reg.io/org/app:v1").unwrap();
        let t = p.rule_for(&img).unwrap().trust.clone().unwrap();
        assert_eq!(t.gun_for(&img).unwrap().as_str(), "mirror.io/org/app");
    }

    #[test]
    fn root_files_are_read_relative_to_the_policy_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("roots")).unwrap();
        std::fs::write(dir.path().join("roots/app.json"), b"root bytes").unwrap();
        let policy = dir.path().join("policy.toml");
        std::fs::write(
            &policy,
            "mode = \"warn\"\nexempt_namespaces = [\"kube-system\"]\nrefresh_interval_secs = 7\n\
             deadline_ms = 1500\n[[rule]]\npattern = \"**\"\naction = \"verify\"\n\
             server = \"https://vouch.example\"\nroot_file = \"roots/app.json\"\n",
        )
        .unwrap();
        let p = Policy::load(&policy).unwrap();
        assert_eq!(p.mode, Mode::Warn);
        assert!(p.is_exempt(Some("kube-system")));
        assert!(!p.is_exempt(Some("default")) && !p.is_exempt(None));
        assert_eq!(p.refresh_interval, Duration::from_secs(7));
        assert_eq!(p.deadline, Duration::from_millis(1500));
        assert_eq!(p.rules[0].trust.as_ref().unwrap().root, b"root bytes");
        let missing = policy.with_file_name("missing.toml");
        assert!(matches!(
            Policy::load(&missing),
            Err(PolicyError::Read { .. })
        ));
    }

    #[test]
    fn inconsistent_rules_are_refused() {
        for text in [
            "[[rule]]\npattern = \"**\"\naction = \"verify\"\nroot_inline = \"{}\"\n",
            "[[rule]]\npattern = \"**\"\naction = \"verify\"\nserver = \"http://x\"\n",
            "[[rule]]\npattern = \"**\"\naction = \"allow\"\nserver = \"http://x\"\n",
            "[[rule]]\npattern = \"**\"\naction = \"maybe\"\n",
            "mode = \"audit\"\n",
            "colour = 1\n",
        ] {
            assert!(Policy::parse(text, Path::new(".")).is_err(), "{text}");
        }
    }
}
