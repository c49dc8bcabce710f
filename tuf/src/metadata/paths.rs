//! Which target names a delegation covers: path patterns and path hash prefixes.
//!
//! A pattern and a target name are split at `/` and must have the same number of parts;
//! each part is matched shell-style (`*` any run of characters, `?` one character,
//! `[abc]`, `[a-z]`, `[!abc]` one character from or not from a set). So `*` never matches
//! across a `/`: `v*` covers `v1.2` but not `v1/extra`.
//!
//! [`path_pattern_matches`] and [`path_hash_prefix_matches`] answer for one target, as a
//! client searching the delegation tree asks. A server checking that *every* target of an
//! uploaded role lies inside its delegation asks for many targets at once, against patterns
//! and prefixes the uploader chose: [`ScopeMatcher`] answers that at a cost linear in the
//! number of targets (one SHA-256 per target, set look-ups for prefixes and literal paths),
//! and charges the shell-style matching it still has to do to a [`MatchBudget`], so that no
//! choice of N targets and M patterns costs N×M unbounded work.

use std::collections::{HashMap, HashSet};

use thiserror::Error;

use super::PathScope;

/// True when `target` matches the delegation path `pattern`.
///
/// ```
/// use vouch_tuf::metadata::path_pattern_matches;
/// assert!(path_pattern_matches("v*", "v1.0"));
/// assert!(path_pattern_matches("releases/*.tgz", "releases/a.tgz"));
/// assert!(!path_pattern_matches("releases/*", "releases/a/b"));
/// assert!(!path_pattern_matches("*", "a/b"));
/// ```
pub fn path_pattern_matches(pattern: &str, target: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let tgt: Vec<&str> = target.split('/').collect();
    let mut unbounded = u64::MAX;
    pat.len() == tgt.len()
        && pat.iter().zip(&tgt).all(|(p, t)| {
            let p: Vec<char> = p.chars().collect();
            let t: Vec<char> = t.chars().collect();
            segment_matches(&p, &t, &mut unbounded) == Some(true)
        })
}

/// True when the lowercase hex SHA-256 of `target` starts with `prefix`.
///
/// ```
/// use vouch_tuf::metadata::path_hash_prefix_matches;
/// // sha256("v1") = "3bfc2695...".
/// assert!(path_hash_prefix_matches("3bf", "v1"));
/// assert!(!path_hash_prefix_matches("00", "v1"));
/// ```
pub fn path_hash_prefix_matches(prefix: &str, target: &str) -> bool {
    target_hash_hex(target).starts_with(prefix)
}

fn target_hash_hex(target: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, target.as_bytes());
    crate::hex::encode(digest.as_ref())
}

/// Checking target names against delegated paths took more work than the budget allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("checking target names against the delegated path patterns needs more than {limit} matching steps")]
pub struct OverBudget {
    /// The budget that was used up.
    pub limit: u64,
}

/// The work [`ScopeMatcher`]s may do, shared by every check of one update, and a count of
/// what they did.
///
/// A step is one character comparison of shell-style matching, or one set look-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchBudget {
    limit: u64,
    steps: u64,
    sha256: u64,
}

impl MatchBudget {
    /// The default budget for one update: 2^26 steps, far above what real delegations need
    /// (a look-up per target for literal paths and hash prefixes; a few comparisons per
    /// pattern for the usual `v1.*`-style globs) and about a second of work at most.
    pub const DEFAULT_STEPS: u64 = 1 << 26;

    /// A budget of `limit` steps.
    pub fn new(limit: u64) -> Self {
        MatchBudget {
            limit,
            steps: 0,
            sha256: 0,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// SHA-256 computations of target names so far.
    pub fn sha256_computed(&self) -> u64 {
        self.sha256
    }

    fn charge(&mut self, steps: u64) -> Result<(), OverBudget> {
        self.steps = self.steps.saturating_add(steps);
        if self.steps > self.limit {
            Err(OverBudget { limit: self.limit })
        } else {
            Ok(())
        }
    }

    fn left(&self) -> u64 {
        self.limit.saturating_sub(self.steps)
    }
}

impl Default for MatchBudget {
    fn default() -> Self {
        MatchBudget::new(MatchBudget::DEFAULT_STEPS)
    }
}

/// One delegation's scope, prepared to check many target names.
///
/// Hash prefixes go into a set keyed by prefix, with the distinct prefix lengths beside it
/// (at most 65), so a target costs one SHA-256 and at most 65 look-ups whatever the number
/// of prefixes. Path patterns without `*`, `?` or `[` go into a set of exact names; the
/// others are grouped by their number of `/`-separated parts and matched one by one,
/// charging each comparison to the budget.
///
/// ```
/// use vouch_tuf::metadata::{MatchBudget, PathScope, ScopeMatcher};
/// let scope = PathScope::Paths(vec!["latest".into(), "v1.*".into()]);
/// let m = ScopeMatcher::new(&scope);
/// let mut budget = MatchBudget::default();
/// assert_eq!(m.covers("v1.2", &mut budget), Ok(true));
/// assert_eq!(m.covers("latest", &mut budget), Ok(true));
/// assert_eq!(m.covers("v2.0", &mut budget), Ok(false));
/// ```
#[derive(Debug)]
pub struct ScopeMatcher<'s> {
    kind: MatcherKind<'s>,
}

#[derive(Debug)]
enum MatcherKind<'s> {
    Paths {
        exact: HashSet<&'s str>,
        /// Glob patterns by number of `/`-separated parts: each part as characters.
        globs: HashMap<usize, Vec<Vec<Vec<char>>>>,
    },
    Prefixes {
        set: HashSet<&'s str>,
        /// The distinct lengths of the prefixes in `set`, shortest first.
        lengths: Vec<usize>,
    },
    Nothing,
}

/// Length of a hex SHA-256: no longer prefix can match.
const HASH_HEX_LEN: usize = 64;

impl<'s> ScopeMatcher<'s> {
    /// Prepares `scope`: linear in its size.
    pub fn new(scope: &'s PathScope) -> Self {
        let kind = match scope {
            PathScope::Paths(patterns) => {
                let mut exact = HashSet::new();
                let mut globs: HashMap<usize, Vec<Vec<Vec<char>>>> = HashMap::new();
                for p in patterns {
                    if p.contains(['*', '?', '[']) {
                        let parts: Vec<Vec<char>> =
                            p.split('/').map(|s| s.chars().collect()).collect();
                        globs.entry(parts.len()).or_default().push(parts);
                    } else {
                        exact.insert(p.as_str());
                    }
                }
                MatcherKind::Paths { exact, globs }
            }
            PathScope::HashPrefixes(prefixes) => {
                // A prefix that is not lowercase hex, or longer than a hash, matches nothing.
                let set: HashSet<&str> = prefixes
                    .iter()
                    .map(String::as_str)
                    .filter(|p| {
                        p.len() <= HASH_HEX_LEN
                            && p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                    })
                    .collect();
                let mut lengths: Vec<usize> = set.iter().map(|p| p.len()).collect();
                lengths.sort_unstable();
                lengths.dedup();
                MatcherKind::Prefixes { set, lengths }
            }
            PathScope::Nothing => MatcherKind::Nothing,
        };
        ScopeMatcher { kind }
    }

    /// True when the scope covers `target`; the same answer as
    /// [`DelegatedRole::is_delegated_path`](super::DelegatedRole::is_delegated_path), or
    /// [`OverBudget`] when the budget runs out first.
    pub fn covers(&self, target: &str, budget: &mut MatchBudget) -> Result<bool, OverBudget> {
        match &self.kind {
            MatcherKind::Nothing => Ok(false),
            MatcherKind::Prefixes { set, lengths } => {
                budget.sha256 += 1;
                let hex = target_hash_hex(target);
                for &len in lengths {
                    budget.charge(1)?;
                    if set.contains(&hex[..len]) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            MatcherKind::Paths { exact, globs } => {
                budget.charge(1)?;
                if exact.contains(target) {
                    return Ok(true);
                }
                let parts: Vec<&str> = target.split('/').collect();
                let Some(candidates) = globs.get(&parts.len()) else {
                    return Ok(false);
                };
                let parts: Vec<Vec<char>> = parts.iter().map(|s| s.chars().collect()).collect();
                for pattern in candidates {
                    let mut all = true;
                    for (p, t) in pattern.iter().zip(&parts) {
                        let mut left = budget.left();
                        let matched = segment_matches(p, t, &mut left);
                        budget.charge(budget.left() - left)?;
                        match matched {
                            Some(true) => {}
                            Some(false) => {
                                all = false;
                                break;
                            }
                            None => {
                                return Err(OverBudget {
                                    limit: budget.limit,
                                })
                            }
                        }
                    }
                    if all {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }
}

/// One `[...]` set starting at `p[0] == '['`: whether `c` is in it, and the set's length.
/// `None` when the bracket is not closed (it is then an ordinary character).
fn match_set(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!'));
    if negate {
        i += 1;
    }
    let mut first = true;
    let mut found = false;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            return Some((found != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
            let hi = p[i + 2];
            if ch <= c && c <= hi {
                found = true;
            }
            i += 3;
        } else {
            if ch == c {
                found = true;
            }
            i += 1;
        }
    }
}

/// Matches one `/`-free part. Each comparison takes one of `steps`; `None` when they run
/// out before an answer.
fn segment_matches(p: &[char], t: &[char], steps: &mut u64) -> Option<bool> {
    // Iterative matching with one backtrack point for the last `*`: at most |p|·|t|
    // comparisons, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        *steps = steps.checked_sub(1)?;
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => {
                // A set costs a step per character of it.
                let set = match_set(&p[pi..], t[ti]);
                let scanned = set.map_or(p.len() - pi, |(_, len)| len) as u64;
                *steps = steps.checked_sub(scanned)?;
                match set {
                    Some((true, len)) => Some(len),
                    Some((false, _)) => None,
                    None => (t[ti] == '[').then_some(1),
                }
            }
            Some(c) => (*c == t[ti]).then_some(1),
            None => None,
        };
        match step {
            Some(len) => {
                pi += len;
                ti += 1;
            }
            None => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return Some(false),
            },
        }
    }
    // The rest of the pattern is scanned too: charged like every other comparison.
    *steps = steps.checked_sub((p.len() - pi) as u64)?;
    Some(p[pi..].iter().all(|c| *c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let cases = [
            ("*", "anything", true),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("v*", "v", true),
            ("v*", "xv1", false),
            ("*.tgz", "a.tgz", true),
            ("*.tgz", "a.tgz.sig", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[abc]x", "bx", true),
            ("[!abc]x", "bx", false),
            ("[!abc]x", "dx", true),
            ("[a-c]", "b", true),
            ("[a-c]", "d", false),
            ("[]]", "]", true),
            ("[a-]", "-", true),
            ("[", "[", true),
            ("[ab", "[ab", true),
            ("*a*b*c", "xxaxxbxxc", true),
            ("*a*b*c", "xxaxxbxx", false),
            ("dir/*/file", "dir/x/file", true),
            ("dir/*/file", "dir/x/y/file", false),
            ("*", "a/b", false),
            ("*/*", "a/b", true),
            ("V*", "v1", false),
            ("é*", "été", true),
            ("sha256:*", "sha256:abcd", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(
                path_pattern_matches(p, t),
                want,
                "pattern {p:?} target {t:?}"
            );
        }
    }

    #[test]
    fn many_stars_stay_fast() {
        let p = "*a".repeat(50);
        let t = "a".repeat(5000) + "b";
        assert!(!path_pattern_matches(&p, &t));
    }

    fn covers(scope: &PathScope, target: &str) -> bool {
        ScopeMatcher::new(scope)
            .covers(target, &mut MatchBudget::default())
            .unwrap()
    }

    #[test]
    fn the_matcher_answers_as_the_single_pattern_functions() {
        let patterns = [
            "*",
            "",
            "v*",
            "*.tgz",
            "a?c",
            "[abc]x",
            "[!abc]x",
            "[a-c]",
            "[]]",
            "[a-]",
            "[",
            "[ab",
            "*a*b*c",
            "dir/*/file",
            "*/*",
            "V*",
            "é*",
            "sha256:*",
            "latest",
            "a/b",
        ];
        let targets = [
            "anything",
            "",
            "a",
            "v",
            "xv1",
            "a.tgz",
            "a.tgz.sig",
            "abc",
            "ac",
            "bx",
            "dx",
            "b",
            "d",
            "]",
            "-",
            "[",
            "[ab",
            "xxaxxbxxc",
            "dir/x/file",
            "dir/x/y/file",
            "a/b",
            "v1",
            "été",
            "sha256:abcd",
            "latest",
        ];
        for t in targets {
            for p in patterns {
                let one = PathScope::Paths(vec![p.to_owned()]);
                assert_eq!(covers(&one, t), path_pattern_matches(p, t), "{p:?} {t:?}");
            }
            let all = PathScope::Paths(patterns.iter().map(|p| p.to_string()).collect());
            let any = patterns.iter().any(|p| path_pattern_matches(p, t));
            assert_eq!(covers(&all, t), any, "all patterns, {t:?}");
            for prefix in ["", "e3b0", "3bf", "00", "E3", "zz", &"0".repeat(65)] {
                let scope = PathScope::HashPrefixes(vec![prefix.to_owned()]);
                assert_eq!(
                    covers(&scope, t),
                    path_hash_prefix_matches(prefix, t),
                    "{prefix:?} {t:?}"
                );
            }
        }
        assert!(!covers(&PathScope::Nothing, "v1"));
    }

    /// 4,000 targets against 4,000 hash prefixes: one SHA-256 per target and a bounded
    /// number of look-ups, not 16 million hash computations.
    #[test]
    fn many_targets_and_hash_prefixes_cost_one_hash_per_target() {
        let targets: Vec<String> = (0..4000).map(|i| format!("tag-{i}")).collect();
        // Every 4-digit prefix but those of the targets, plus one prefix of each length.
        let mut prefixes: Vec<String> = (0..4000).map(|i| format!("{i:04x}")).collect();
        prefixes.extend((1..=64).map(|n| "f".repeat(n)));
        let scope = PathScope::HashPrefixes(prefixes);
        let m = ScopeMatcher::new(&scope);
        let mut budget = MatchBudget::default();
        let mut covered = 0;
        for t in &targets {
            if m.covers(t, &mut budget).unwrap() {
                covered += 1;
            }
        }
        let expected = targets
            .iter()
            .filter(|t| scope_any_prefix(&scope, t))
            .count();
        assert_eq!(covered, expected);
        assert_eq!(budget.sha256_computed(), 4000);
        assert!(budget.steps() <= 4000 * 65, "{} steps", budget.steps());
    }

    fn scope_any_prefix(scope: &PathScope, t: &str) -> bool {
        let PathScope::HashPrefixes(ps) = scope else {
            return false;
        };
        let hex = target_hash_hex(t);
        ps.iter().any(|p| hex.starts_with(p.as_str()))
    }

    #[test]
    fn literal_paths_cost_one_look_up_per_target() {
        let patterns: Vec<String> = (0..4000).map(|i| format!("v{i}")).collect();
        let scope = PathScope::Paths(patterns);
        let m = ScopeMatcher::new(&scope);
        let mut budget = MatchBudget::default();
        for i in 0..4000 {
            assert!(m.covers(&format!("v{i}"), &mut budget).unwrap());
        }
        assert!(!m.covers("w1", &mut budget).unwrap());
        assert_eq!(budget.steps(), 4001);
    }

    /// Globs an uploader chose to be expensive stop at the budget, whatever their number.
    #[test]
    fn adversarial_globs_stop_at_the_budget() {
        let patterns: Vec<String> = (0..4000).map(|i| format!("*a*a*a*{i}b")).collect();
        let scope = PathScope::Paths(patterns);
        let m = ScopeMatcher::new(&scope);
        let limit = 1_000_000;
        let mut budget = MatchBudget::new(limit);
        let target = "a".repeat(200);
        let mut result = Ok(false);
        for _ in 0..4000 {
            result = m.covers(&target, &mut budget);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(OverBudget { limit }));
        assert!(budget.steps() <= limit + 4096, "{} steps", budget.steps());
        // A set is charged by its length too.
        let sets = PathScope::Paths(vec![format!("[{}]", "x".repeat(10_000))]);
        let mut small = MatchBudget::new(100);
        assert!(ScopeMatcher::new(&sets).covers("a", &mut small).is_err());
    }

    /// What is left of a pattern once the target part is used up is scanned, and charged:
    /// `?` then thousands of stars costs its length, not one step.
    #[test]
    fn the_end_of_a_pattern_is_charged_too() {
        let long = format!("?{}x/*", "*".repeat(5000));
        let scope = PathScope::Paths(vec![long, "?/*".into()]);
        let m = ScopeMatcher::new(&scope);
        let mut budget = MatchBudget::default();
        assert_eq!(m.covers("a/1", &mut budget), Ok(true));
        assert!(budget.steps() > 5000, "{} steps", budget.steps());
        let mut small = MatchBudget::new(1000);
        assert!(m.covers("a/1", &mut small).is_err());
    }

    #[test]
    fn hash_prefixes() {
        // sha256("") = e3b0c442...
        assert!(path_hash_prefix_matches("e3b0", ""));
        assert!(path_hash_prefix_matches("", "x"));
        assert!(!path_hash_prefix_matches("E3", ""));
    }
}
