//! The mirror's decisions, without IO: which registries a configuration pushes to, which
//! repositories a batch of changefeed entries asks to mirror, under which file names a
//! repository's metadata goes into its trust artifact, which
//! registry failures hold up the whole registry and which only one repository, and the
//! set of repositories waiting to be retried ([`RetrySet`]). Whether to push over what the
//! trust tag holds is `vouch_tuf::oci::decide_push`'s, the one rule of every writer.
//!
//! What it is not: the pushing (`super::push`) or the following of the changefeed
//! (`super`). Everything here takes values and returns values, and is tested beside it.

use std::collections::BTreeMap;

use vouch_tuf::api::FileRef;
use vouch_tuf::reference::{canonical_registry, names_registry, ImageRef};
use vouch_verifier::registry::RegistryError;

use crate::auth::ScopeGlob;

/// A mirrored-repository pattern, checked: its glob and the registry it names.
#[derive(Debug)]
pub(crate) struct Pattern {
    pub(crate) glob: ScopeGlob,
    pub(crate) registry: String,
}

/// Checks one `mirror.repositories` pattern: a literal, canonical registry `host[:port]`,
/// then `/` and a repository glob.
///
/// The registry part may not be a wildcard: the mirror keeps one worker (and one cursor,
/// one set of credentials) per destination registry, so the registries must be known when
/// the server starts, and a pattern such as `*/app` would push trust to whatever registry
/// a publisher names. It must be canonical, since repositories are only ever written under
/// their canonical names: `Registry.Example.com/**` could never match.
pub(crate) fn pattern(p: &str) -> Result<Pattern, String> {
    let what = format!("mirror.repositories {p:?}");
    let (registry, rest) = p.split_once('/').ok_or_else(|| {
        format!("{what}: a pattern is a registry, '/', then repositories (registry.example.com/**)")
    })?;
    if registry.contains(['*', '?']) {
        return Err(format!(
            "{what}: the registry part must be written out (no '*' or '?'): the mirror pushes to the registries it is configured with, not to any a repository name chooses"
        ));
    }
    if rest.is_empty() || !names_registry(registry) {
        return Err(format!(
            "{what}: {registry:?} is not a registry host[:port], so no repository it matches has a registry to be mirrored into"
        ));
    }
    let canonical = canonical_registry(registry).map_err(|e| format!("{what}: {e}"))?;
    if canonical != registry {
        return Err(format!(
            "{what}: it cannot match: repositories are named with their registry as {canonical:?}"
        ));
    }
    Ok(Pattern {
        glob: ScopeGlob::new(p)?,
        registry: canonical,
    })
}

/// The registry a mirrored repository's trust goes to: the registry of the image name
/// `gun` is (canonical), and its repository path there.
pub(crate) fn destination(gun: &str) -> Option<(String, String)> {
    let image = ImageRef::parse(gun).ok()?;
    Some((image.registry().to_owned(), image.repository().to_owned()))
}

/// The repositories of `registry` to mirror after a batch of changefeed entries (their
/// GUNs, oldest first): each once, in the order of its last entry, so that a repository
/// changed a hundred times in the batch is pushed once, in its newest state.
pub(crate) fn collapse<'a>(
    guns: impl IntoIterator<Item = &'a str>,
    registry: &str,
    patterns: &[Pattern],
) -> Vec<String> {
    let mut last: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, g) in guns.into_iter().enumerate() {
        last.insert(g, i);
    }
    let mut picked: Vec<(usize, &str)> = last
        .into_iter()
        .filter(|(g, _)| mirrored_into(g, registry, patterns))
        .map(|(g, i)| (i, g))
        .collect();
    picked.sort_unstable();
    picked.into_iter().map(|(_, g)| g.to_owned()).collect()
}

/// True when `gun` is mirrored, into `registry`.
pub(crate) fn mirrored_into(gun: &str, registry: &str, patterns: &[Pattern]) -> bool {
    patterns
        .iter()
        .any(|p| p.registry == registry && p.glob.matches(gun))
        && destination(gun).is_some_and(|(r, _)| r == registry)
}

/// True when `gun` is mirrored at all.
pub(crate) fn mirrored(gun: &str, patterns: &[Pattern]) -> bool {
    destination(gun).is_some_and(|(registry, _)| mirrored_into(gun, &registry, patterns))
}

/// The name a TUF client asks for `version` of `role`, in a repository with (or without)
/// consistent snapshots: every root by version, the timestamp as `timestamp.json`, the
/// other roles by version only with consistent snapshots. The spelling is
/// [`FileRef::file_name`]'s.
pub(crate) fn file_name(role: &str, version: u64, consistent: bool) -> String {
    let by_version = match role {
        "root" => true,
        "timestamp" => false,
        _ => consistent,
    };
    if by_version {
        FileRef::Version(role.to_owned(), version).file_name()
    } else {
        FileRef::Current(role.to_owned()).file_name()
    }
}

/// Whom a failed registry operation (or store read) holds up.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Failure {
    /// The registry (or the store) is unavailable as a whole: unreachable, timed out, 5xx,
    /// 408, 429, an authentication scheme vouch cannot follow. The batch waits: the cursor
    /// stays and the worker backs off.
    #[error("{0}")]
    Registry(String),
    /// Something about this one repository: refused credentials or a token without its
    /// scope (401, 403), an unknown blob or manifest, a digest mismatch, a name or content
    /// the registry refuses, a push over its deadline. The repository waits in the retry
    /// set ([`RetrySet`]); the cursor moves on.
    #[error("{0}")]
    Repository(String),
    /// This process no longer holds the registry's lease: it writes nothing more.
    #[error("the mirror lease of the registry was lost")]
    LeaseLost,
}

/// Sorts a registry error into [`Failure`]s.
pub(crate) fn classify(e: &RegistryError) -> Failure {
    let text = e.to_string();
    let registry_wide = match e {
        RegistryError::Refused { status, .. } => {
            status.is_server_error() || matches!(status.as_u16(), 408 | 429)
        }
        RegistryError::Client(_)
        | RegistryError::Unreachable { .. }
        | RegistryError::Challenge { .. } => true,
        _ => false,
    };
    if registry_wide {
        Failure::Registry(text)
    } else {
        Failure::Repository(text)
    }
}

/// Most repositories one registry's retry set holds.
pub(crate) const MAX_RETRYING: usize = 10_000;

/// One repository waiting in a [`RetrySet`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Waiting<T> {
    /// Failed attempts in a row.
    attempts: u32,
    /// When it is tried again.
    due: T,
    /// Its place in the order of arrival (the oldest is dropped first).
    seq: u64,
}

/// The repositories of one registry whose last push failed for a reason of their own
/// ([`Failure::Repository`]), each retried when due, after an exponential backoff of its
/// own. A retry pushes the repository's *current* state, so nothing but the name is kept.
///
/// Bounded: past `cap` repositories the one waiting longest is dropped (and returned, for
/// the log); it is mirrored again at its next change or re-sign. Kept in memory only: a
/// restart or a lease moving to another replica loses it, and the refresher's next re-sign
/// of each repository is a change that mirrors it again. `T` is the clock's instant
/// (`std::time::Instant` in the worker), so that tests choose the time.
#[derive(Debug)]
pub(crate) struct RetrySet<T> {
    waiting: BTreeMap<String, Waiting<T>>,
    /// Arrival order: `seq` to repository.
    order: BTreeMap<u64, String>,
    next_seq: u64,
    cap: usize,
}

impl<T: Copy + Ord> RetrySet<T> {
    /// An empty set holding at most `cap` repositories.
    pub(crate) fn new(cap: usize) -> Self {
        RetrySet {
            waiting: BTreeMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            cap: cap.max(1),
        }
    }

    /// Records a failed attempt of `gun` at `now`: it is due again after `wait(attempts)`,
    /// `attempts` counting this one. Returns the repository dropped to stay within the cap,
    /// if any.
    pub(crate) fn failed(
        &mut self,
        gun: &str,
        now: T,
        wait: impl FnOnce(u32) -> T,
    ) -> (u32, Option<String>) {
        if let Some(w) = self.waiting.get_mut(gun) {
            w.attempts = w.attempts.saturating_add(1);
            w.due = wait(w.attempts).max(now);
            return (w.attempts, None);
        }
        let dropped = if self.waiting.len() >= self.cap {
            self.order.pop_first().map(|(_, oldest)| {
                self.waiting.remove(&oldest);
                oldest
            })
        } else {
            None
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, gun.to_owned());
        self.waiting.insert(
            gun.to_owned(),
            Waiting {
                attempts: 1,
                due: wait(1).max(now),
                seq,
            },
        );
        (1, dropped)
    }

    /// `gun` went through (pushed, unchanged, refused, older, absent): it no longer waits.
    pub(crate) fn done(&mut self, gun: &str) {
        if let Some(w) = self.waiting.remove(gun) {
            self.order.remove(&w.seq);
        }
    }

    /// At most `most` repositories due at `now`, those waiting longest first.
    pub(crate) fn due(&self, now: T, most: usize) -> Vec<String> {
        self.order
            .values()
            .filter(|g| self.waiting.get(*g).is_some_and(|w| w.due <= now))
            .take(most)
            .cloned()
            .collect()
    }

    /// When the next repository is due, if any waits.
    pub(crate) fn next_due(&self) -> Option<T> {
        self.waiting.values().map(|w| w.due).min()
    }

    /// How many repositories wait.
    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Forgets every repository (the lease moved: another replica mirrors now).
    pub(crate) fn clear(&mut self) {
        self.waiting.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(ps: &[&str]) -> Vec<Pattern> {
        ps.iter().map(|p| pattern(p).unwrap()).collect()
    }

    #[test]
    fn patterns_name_a_literal_canonical_registry() {
        let p = pattern("registry.example.com/**").unwrap();
        assert_eq!(p.registry, "registry.example.com");
        assert_eq!(
            pattern("127.0.0.1:5000/org/*").unwrap().registry,
            "127.0.0.1:5000"
        );
        for (bad, why) in [
            ("*/app", "must be written out"),
            ("reg?.example.com/app", "must be written out"),
            ("*", "a registry, '/'"),
            ("registry.example.com", "a registry, '/'"),
            ("org/app", "not a registry"),
            ("registry.example.com/", "not a registry"),
            ("Registry.Example.com/**", "cannot match"),
            ("registry.example.com:443/**", "cannot match"),
            ("index.docker.io/org/*", "cannot match"),
        ] {
            let e = pattern(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn a_batch_collapses_to_each_mirrored_repository_of_the_registry_once_newest_last() {
        let ps = patterns(&["a.example.com/team/*", "b.example.com/**"]);
        let batch = [
            "a.example.com/team/x",
            "b.example.com/y",
            "a.example.com/other/z",
            "a.example.com/team/w",
            "a.example.com/team/x",
            "c.example.com/team/x",
        ];
        assert_eq!(
            collapse(batch, "a.example.com", &ps),
            ["a.example.com/team/w", "a.example.com/team/x"]
        );
        assert_eq!(collapse(batch, "b.example.com", &ps), ["b.example.com/y"]);
        assert!(collapse(batch, "c.example.com", &ps).is_empty());
        assert!(mirrored("b.example.com/y", &ps));
        assert!(!mirrored("a.example.com/other/z", &ps));
    }

    #[test]
    fn file_names_are_the_ones_a_tuf_client_asks_for() {
        assert_eq!(file_name("root", 3, false), "3.root.json");
        assert_eq!(file_name("timestamp", 9, true), "timestamp.json");
        assert_eq!(file_name("snapshot", 4, true), "4.snapshot.json");
        assert_eq!(file_name("snapshot", 4, false), "snapshot.json");
        assert_eq!(file_name("targets", 2, true), "2.targets.json");
        assert_eq!(
            file_name("targets/releases", 2, true),
            "2.targets%2Freleases.json"
        );
        assert_eq!(
            file_name("targets/releases", 2, false),
            "targets%2Freleases.json"
        );
    }

    #[test]
    fn outages_hold_the_registry_and_a_repositorys_own_failures_only_it() {
        use reqwest::StatusCode;
        let refused = |status: StatusCode| RegistryError::Refused {
            registry: "r".into(),
            what: "w".into(),
            status,
            detail: String::new(),
        };
        for s in [
            StatusCode::BAD_GATEWAY,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::REQUEST_TIMEOUT,
        ] {
            assert!(matches!(classify(&refused(s)), Failure::Registry(_)), "{s}");
        }
        for s in [
            StatusCode::BAD_REQUEST,
            StatusCode::FORBIDDEN,
            StatusCode::PAYLOAD_TOO_LARGE,
        ] {
            assert!(
                matches!(classify(&refused(s)), Failure::Repository(_)),
                "{s}"
            );
        }
        let unreachable = RegistryError::Unreachable {
            registry: "r".into(),
            url: "u".into(),
            message: "m".into(),
            hint: "h".into(),
        };
        assert!(matches!(classify(&unreachable), Failure::Registry(_)));
        let name = RegistryError::InvalidName {
            what: "reference",
            name: "x".into(),
        };
        assert!(matches!(classify(&name), Failure::Repository(_)));
        let denied = RegistryError::Unauthorized {
            registry: "r".into(),
            repository: "org/app".into(),
            access: vouch_verifier::registry::Access::Push,
            detail: String::new(),
            hint: String::new(),
        };
        assert!(matches!(classify(&denied), Failure::Repository(_)));
        let token = RegistryError::Token {
            registry: "r".into(),
            realm: "https://auth.example.com/token".into(),
            detail: "no access to org/app".into(),
        };
        assert!(matches!(classify(&token), Failure::Repository(_)));
        let unknown = RegistryError::BlobUnknown {
            registry: "r".into(),
            repository: "org/app".into(),
            digest: vouch_tuf::reference::Digest::sha256_of(b"x"),
        };
        assert!(matches!(classify(&unknown), Failure::Repository(_)));
    }

    /// A retry set over a clock counting seconds, with a backoff doubling from 1.
    fn waits(now: u64) -> impl FnOnce(u32) -> u64 {
        move |attempts| now + (1 << attempts.min(10))
    }

    #[test]
    fn a_repository_waits_longer_after_each_failure_and_leaves_when_it_goes_through() {
        let mut set = RetrySet::new(10);
        assert_eq!(set.failed("r/a", 0, waits(0)), (1, None));
        assert_eq!(set.next_due(), Some(2));
        assert!(set.due(1, 10).is_empty());
        assert_eq!(set.due(2, 10), ["r/a"]);
        assert_eq!(set.failed("r/a", 2, waits(2)), (2, None));
        assert!(set.due(5, 10).is_empty());
        assert_eq!(set.due(6, 10), ["r/a"]);
        set.failed("r/b", 6, waits(6));
        assert_eq!(set.len(), 2);
        set.done("r/a");
        assert_eq!(set.len(), 1);
        assert_eq!(set.due(100, 10), ["r/b"]);
        set.done("r/b");
        assert_eq!(set.next_due(), None);
        set.failed("r/c", 0, waits(0));
        set.clear();
        assert_eq!(set.len(), 0);
        assert!(set.due(100, 10).is_empty());
    }

    #[test]
    fn past_its_cap_the_set_drops_the_repository_waiting_longest() {
        let mut set = RetrySet::new(2);
        set.failed("r/a", 0, waits(0));
        set.failed("r/b", 0, waits(0));
        // Failing again keeps its place: r/a still waits longest.
        assert_eq!(set.failed("r/a", 1, waits(1)), (2, None));
        assert_eq!(set.failed("r/c", 1, waits(1)), (1, Some("r/a".into())));
        assert_eq!(set.len(), 2);
        assert_eq!(set.due(100, 10), ["r/b", "r/c"]);
        assert_eq!(set.due(100, 1), ["r/b"]);
    }
}
