//! Delegation search: which targets role is trusted to say what a target name is.
//!
//! A [`TargetSearch`] walks the delegation tree as the specification's workflow gives it
//! (5.6.7): pre-order, depth first, children in the order their parent lists them, visiting
//! each role at most once, following only delegations whose `paths` or
//! `path_hash_prefixes` cover the target name, and abandoning every other branch when it
//! reaches a matching *terminating* delegation. At most [`Limits::max_delegations`]
//! roles are visited.
//!
//! The search is sans-IO and lazy: when it reaches a role the [`TrustedSet`] has not loaded
//! yet, [`TargetSearch::step`] returns [`SearchStep::Load`]; the caller fetches that role,
//! hands it to [`TrustedSet::update_delegated`] and steps again. Only roles on the search
//! path are ever fetched.
//!
//! A search answers with the *role path* that vouched for a target: the chain of role names
//! from `targets` down to the role that lists it ([`Found::role_path`]). A
//! [`DelegationPath`] is a requirement on such a path ("found through the delegation
//! `targets` → `targets/releases`"), compared by position, never by a role's name alone: a
//! role's name is chosen by whoever delegates to it, so the holder of `targets/dev` can name
//! a role `targets/releases` below `targets/dev`, and that role is not the one `targets`
//! delegated `targets/releases` to.
//!
//! [`Limits::max_delegations`]: crate::Limits::max_delegations

use std::collections::HashSet;
use std::fmt;

use thiserror::Error;
use vouch_tuf::metadata::TargetFile;
use vouch_tuf::types::{RoleName, TopLevelRole};

use crate::error::UpdateError;
use crate::trusted::TrustedSet;

/// A target found by a search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The target as the role that owns its name lists it.
    pub target: TargetFile,
    /// The delegation path from `targets` to the role that signed the target.
    pub role_path: Vec<RoleName>,
}

/// Why a [`DelegationPath`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DelegationPathError {
    /// No delegated role was named.
    #[error("empty delegation path: name at least one role delegated by targets")]
    Empty,
    /// Only `targets` was named: it is on every role path, so the requirement would
    /// require nothing.
    #[error(
        "delegation path {0:?} names only the top-level targets role, which vouches for \
         every target; name a role delegated by targets, e.g. targets/releases"
    )]
    OnlyTargets(String),
    /// A top-level role other than a leading `targets`: those never delegate or are
    /// delegated to.
    #[error("delegation path {path}: {role:?} is a top-level role, not a delegated one")]
    TopLevel {
        /// The path as given.
        path: String,
        /// The offending role.
        role: String,
    },
    /// A role that is not a valid role name (empty, too long, control characters), or a
    /// hierarchical name with an empty segment (`targets//a`, `targets/a/`).
    #[error("delegation path {path}: invalid role name {role:?}")]
    InvalidRole {
        /// The path as given.
        path: String,
        /// The offending role.
        role: String,
    },
    /// A role named twice: a search visits each role once, so no role path repeats one.
    #[error("delegation path {path}: {role:?} appears twice")]
    Repeated {
        /// The path as given.
        path: String,
        /// The repeated role.
        role: String,
    },
}

/// A chain of delegations starting at the top-level `targets` role, e.g.
/// `targets → targets/releases → targets/releases/prod`: a requirement on the role path
/// that vouched for a target.
///
/// [`vouches_for`](DelegationPath::vouches_for) holds when the role path *starts with* this
/// chain: the target was found by following exactly these delegations from `targets` (and
/// possibly further ones below the last). Roles are compared by position in the chain,
/// never by name alone, so a role *named* `targets/releases` that `targets/dev` delegates to
/// does not satisfy `targets → targets/releases`.
///
/// Built from a role name with [`parse`](DelegationPath::parse), which reads Notary's
/// hierarchical names (`targets/releases/prod` is the chain of its prefixes), or from
/// explicit role names with [`new`](DelegationPath::new).
///
/// ```
/// use vouch_tuf::types::RoleName;
/// use vouch_verifier::search::DelegationPath;
///
/// let rn = |s: &str| RoleName::new(s).unwrap();
/// let releases = DelegationPath::parse("targets/releases")?;
/// assert_eq!(releases.to_string(), "targets -> targets/releases");
///
/// // Signed by targets/releases, or by a role it delegates to: vouched for.
/// assert!(releases.vouches_for(&[rn("targets"), rn("targets/releases")]));
/// assert!(releases.vouches_for(&[rn("targets"), rn("targets/releases"), rn("targets/releases/prod")]));
/// // A role named targets/releases that targets/dev delegates to: not vouched for.
/// assert!(!releases.vouches_for(&[rn("targets"), rn("targets/dev"), rn("targets/releases")]));
/// assert!(!releases.vouches_for(&[rn("targets")]));
///
/// let prod = DelegationPath::parse("targets/releases/prod")?;
/// assert_eq!(prod.to_string(), "targets -> targets/releases -> targets/releases/prod");
/// let plain = DelegationPath::new([rn("releases"), rn("prod")])?;
/// assert_eq!(plain.to_string(), "targets -> releases -> prod");
/// # Ok::<(), vouch_verifier::search::DelegationPathError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DelegationPath {
    /// `targets`, then at least one delegated role.
    roles: Vec<RoleName>,
}

impl DelegationPath {
    /// The chain `targets → roles[0] → roles[1] → …`. A leading `targets` in `roles` is
    /// allowed (and the same as leaving it out); every other role must be a delegated role,
    /// named once.
    pub fn new(roles: impl IntoIterator<Item = RoleName>) -> Result<Self, DelegationPathError> {
        let targets = TopLevelRole::Targets.name();
        let mut chain = vec![targets.clone()];
        let mut given = roles.into_iter().peekable();
        if given.peek() == Some(&targets) {
            given.next();
        }
        chain.extend(given);
        let text = || {
            chain
                .iter()
                .map(RoleName::as_str)
                .collect::<Vec<_>>()
                .join(" -> ")
        };
        if chain.len() < 2 {
            return Err(DelegationPathError::Empty);
        }
        for (i, role) in chain.iter().enumerate().skip(1) {
            if role.top_level().is_some() {
                return Err(DelegationPathError::TopLevel {
                    path: text(),
                    role: role.to_string(),
                });
            }
            if chain[..i].contains(role) {
                return Err(DelegationPathError::Repeated {
                    path: text(),
                    role: role.to_string(),
                });
            }
        }
        Ok(DelegationPath { roles: chain })
    }

    /// Reads a role name as the chain of delegations that leads to it.
    ///
    /// A Notary-style hierarchical name `targets/a/b` is the chain of its prefixes,
    /// `targets → targets/a → targets/a/b` (each delegated by the one before). Any other name
    /// `r` is one delegation, `targets → r`. `targets` alone, other top-level roles and
    /// hierarchical names with an empty segment are refused.
    pub fn parse(name: &str) -> Result<Self, DelegationPathError> {
        let targets = TopLevelRole::Targets.as_str();
        if name == targets {
            return Err(DelegationPathError::OnlyTargets(name.to_owned()));
        }
        let invalid = || DelegationPathError::InvalidRole {
            path: name.to_owned(),
            role: name.to_owned(),
        };
        let Some(below) = name
            .strip_prefix(targets)
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            let role = RoleName::new(name).map_err(|_| invalid())?;
            return DelegationPath::new([role]);
        };
        if below.split('/').any(str::is_empty) {
            return Err(invalid());
        }
        let mut roles = Vec::new();
        let mut end = targets.len();
        for segment in below.split('/') {
            end += 1 + segment.len();
            roles.push(RoleName::new(&name[..end]).map_err(|_| invalid())?);
        }
        DelegationPath::new(roles)
    }

    /// The chain, `targets` first.
    pub fn roles(&self) -> &[RoleName] {
        &self.roles
    }

    /// True when `role_path` (a [`Found::role_path`]: `targets` down to the role that lists
    /// the target) starts with this chain.
    pub fn vouches_for<R: AsRef<str>>(&self, role_path: &[R]) -> bool {
        role_path.len() >= self.roles.len()
            && self
                .roles
                .iter()
                .zip(role_path)
                .all(|(want, got)| want.as_str() == got.as_ref())
    }

    /// True when every role path this one vouches for, `other` vouches for too (`other` is a
    /// prefix of this chain).
    pub fn implies(&self, other: &DelegationPath) -> bool {
        other.vouches_for(&self.roles)
    }
}

impl fmt::Display for DelegationPath {
    /// The chain, joined by ` -> `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, role) in self.roles.iter().enumerate() {
            if i > 0 {
                f.write_str(" -> ")?;
            }
            f.write_str(role.as_str())?;
        }
        Ok(())
    }
}

/// What a search needs or found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchStep {
    /// The target, signed by the last role of the path.
    Found(Found),
    /// No role that may sign the name lists it.
    NotFound,
    /// Load delegated role `role`, delegated to by `parent`, then step again.
    Load {
        /// The role to fetch.
        role: RoleName,
        /// The trusted role that delegates to it.
        parent: RoleName,
    },
}

/// An ongoing search for one target name.
///
/// ```
/// # fn demo(set: &vouch_verifier::TrustedSet) -> Result<(), vouch_verifier::UpdateError> {
/// use vouch_verifier::search::{SearchStep, TargetSearch};
/// let mut search = TargetSearch::new("v1.0.0");
/// loop {
///     match search.step(set)? {
///         SearchStep::Found(found) => { println!("{:?}", found.role_path); break }
///         SearchStep::NotFound => break,
///         SearchStep::Load { role, parent } => { /* fetch `role`, set.update_delegated(..) */ }
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct TargetSearch {
    target: String,
    stack: Vec<Vec<RoleName>>,
    visited: HashSet<RoleName>,
}

impl TargetSearch {
    /// Starts a search for `target` at the top-level targets role.
    pub fn new(target: &str) -> Self {
        TargetSearch {
            target: target.to_owned(),
            stack: vec![vec![TopLevelRole::Targets.name()]],
            visited: HashSet::new(),
        }
    }

    /// The target name searched for.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Advances the search as far as trusted metadata allows.
    ///
    /// Fails with [`UpdateError::OutOfOrder`] when top-level targets is not trusted, and with
    /// [`UpdateError::DelegationLimit`] when more roles would be visited than allowed.
    pub fn step(&mut self, set: &TrustedSet) -> Result<SearchStep, UpdateError> {
        let max = set.limits().max_delegations;
        loop {
            let Some(path) = self.stack.last() else {
                return Ok(SearchStep::NotFound);
            };
            let Some(role) = path.last() else {
                self.stack.pop();
                continue;
            };
            if self.visited.contains(role) {
                self.stack.pop();
                continue;
            }
            let Some(md) = set.targets_role(role.as_str()) else {
                if role.top_level().is_some() {
                    return Err(UpdateError::OutOfOrder {
                        role: role.to_string(),
                        needs: "snapshot".to_owned(),
                    });
                }
                let parent = path
                    .get(path.len().saturating_sub(2))
                    .cloned()
                    .unwrap_or_else(|| role.clone());
                return Ok(SearchStep::Load {
                    role: role.clone(),
                    parent,
                });
            };
            if path.len() >= 2 {
                // A role already loaded through another delegating role must be signed by
                // the keys this parent delegates to it as well.
                set.verify_delegation(role, &path[path.len() - 2])?;
            }
            if self.visited.len() >= max as usize {
                return Err(UpdateError::DelegationLimit { limit: max });
            }
            let Some(path) = self.stack.pop() else {
                continue;
            };
            let role = path[path.len() - 1].clone();
            self.visited.insert(role);
            let signed = md.signed();
            if let Some(target) = signed.targets.get(self.target.as_str()) {
                return Ok(SearchStep::Found(Found {
                    target: target.clone(),
                    role_path: path,
                }));
            }
            if let Some(delegations) = &signed.delegations {
                let mut children = Vec::new();
                for child in &delegations.roles {
                    if !child.is_delegated_path(&self.target) {
                        continue;
                    }
                    let mut child_path = path.clone();
                    child_path.push(child.name.clone());
                    children.push(child_path);
                    if child.terminating {
                        self.stack.clear();
                        break;
                    }
                }
                self.stack.extend(children.into_iter().rev());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_repo::*;
    use crate::{Limits, Origin};
    use vouch_tuf::types::TopLevelRole;

    fn loaded(repo: &Repo, limits: Limits) -> TrustedSet {
        let mut s = TrustedSet::new(&repo.root_bytes(1), NOW, limits).unwrap();
        s.update_timestamp(&repo.file("timestamp.json"), Origin::Remote)
            .unwrap();
        let req = s.snapshot_request().unwrap();
        s.update_snapshot(&repo.file(&req.file_name), Origin::Remote)
            .unwrap();
        let req = s.targets_request(&TopLevelRole::Targets.name()).unwrap();
        s.update_targets(&repo.file(&req.file_name)).unwrap();
        s
    }

    /// Runs a search to the end, loading roles from the repo; returns the outcome and the
    /// roles loaded, in order.
    fn run(
        repo: &Repo,
        set: &mut TrustedSet,
        target: &str,
    ) -> (Result<SearchStep, UpdateError>, Vec<String>) {
        let mut search = TargetSearch::new(target);
        let mut loads = Vec::new();
        loop {
            match search.step(set) {
                Ok(SearchStep::Load { role, parent }) => {
                    loads.push(role.to_string());
                    let req = set.targets_request(&role).unwrap();
                    set.update_delegated(&role, &parent, &repo.file(&req.file_name))
                        .unwrap();
                }
                other => return (other, loads),
            }
        }
    }

    fn found_path(step: &Result<SearchStep, UpdateError>) -> Vec<String> {
        match step {
            Ok(SearchStep::Found(f)) => f.role_path.iter().map(|r| r.to_string()).collect(),
            other => panic!("expected Found, got {other:?}"),
        }
    }

    /// targets -> a (paths a*, b*) -> a1 (a1*)
    ///         -> b (paths *)      -> b1 (*)
    fn tree(terminating_a: bool) -> Repo {
        let mut repo = Repo::new();
        repo.add_image("targets", "top", b"top");
        repo.delegate("targets", "a", &["a*", "b*"], terminating_a);
        repo.delegate("targets", "b", &["*"], false);
        repo.delegate("a", "a1", &["a1*"], false);
        repo.delegate("b", "b1", &["*"], false);
        repo.add_image("a1", "a1-x", b"from a1");
        repo.add_image("b", "a1-x", b"from b");
        repo.add_image("b1", "b-only", b"from b1");
        repo.add_image("b", "bz", b"from b");
        repo.publish_all_delegated_as_is();
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        repo
    }

    #[test]
    fn top_level_targets_need_no_loading() {
        let repo = tree(false);
        let mut s = loaded(&repo, Limits::DEFAULT);
        let (step, loads) = run(&repo, &mut s, "top");
        assert_eq!(found_path(&step), vec!["targets"]);
        assert!(loads.is_empty());
    }

    #[test]
    fn pre_order_in_listed_order_and_lazy() {
        let repo = tree(false);
        let mut s = loaded(&repo, Limits::DEFAULT);
        // a (matches a*) is listed before b; a1 under a comes before b.
        let (step, loads) = run(&repo, &mut s, "a1-x");
        assert_eq!(found_path(&step), vec!["targets", "a", "a1"]);
        assert_eq!(loads, vec!["a", "a1"]);
        // b-only: a does not cover it (no b-only in a's paths? "b*" matches): a visited, then b, b1.
        let (step, loads) = run(&repo, &mut s, "b-only");
        assert_eq!(found_path(&step), vec!["targets", "b", "b1"]);
        assert_eq!(loads, vec!["b", "b1"]);
    }

    #[test]
    fn terminating_delegation_stops_the_search() {
        let repo = tree(true);
        let mut s = loaded(&repo, Limits::DEFAULT);
        // "bz" is matched by a (b*), which is terminating and does not list it: b is never
        // consulted although it lists bz.
        let (step, loads) = run(&repo, &mut s, "bz");
        assert_eq!(step, Ok(SearchStep::NotFound));
        assert_eq!(loads, vec!["a"]);
        // Without terminating, b answers.
        let repo = tree(false);
        let mut s = loaded(&repo, Limits::DEFAULT);
        let (step, _) = run(&repo, &mut s, "bz");
        assert_eq!(found_path(&step), vec!["targets", "b"]);
    }

    #[test]
    fn roles_only_answer_for_their_paths() {
        let mut repo = Repo::new();
        repo.delegate("targets", "releases", &["v*"], false);
        repo.add_image("releases", "latest", b"evil");
        repo.publish_all_delegated_as_is();
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        let mut s = loaded(&repo, Limits::DEFAULT);
        let (step, loads) = run(&repo, &mut s, "latest");
        assert_eq!(step, Ok(SearchStep::NotFound));
        assert!(loads.is_empty());
    }

    #[test]
    fn hash_prefix_delegations() {
        let mut repo = Repo::new();
        // sha256("v1") starts with 3bfc…
        repo.delegate("targets", "bin-3", &[], false);
        repo.targets.delegations.as_mut().unwrap().roles[0].scope =
            vouch_tuf::metadata::PathScope::HashPrefixes(vec!["3b".into()]);
        repo.add_image("bin-3", "v1", b"v1");
        repo.add_image("bin-3", "v2", b"v2");
        repo.publish_all_delegated_as_is();
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        let mut s = loaded(&repo, Limits::DEFAULT);
        let (step, _) = run(&repo, &mut s, "v1");
        assert_eq!(found_path(&step), vec!["targets", "bin-3"]);
        // sha256("v2") does not start with 3b.
        let (step, _) = run(&repo, &mut s, "v2");
        assert_eq!(step, Ok(SearchStep::NotFound));
    }

    #[test]
    fn cycles_visit_each_role_once() {
        let mut repo = Repo::new();
        repo.delegate("targets", "a", &["*"], false);
        repo.delegate("a", "b", &["*"], false);
        // b delegates back to a, with a's key.
        let a_key = pubkey(&repo.delegated["a"].keys[0]);
        let mut back = vouch_tuf::metadata::DelegatedRole::with_paths(
            rn("a"),
            vec![a_key.key_id()],
            vec!["*".into()],
        );
        back.terminating = false;
        let d = repo
            .delegated
            .get_mut("b")
            .unwrap()
            .role
            .delegations
            .get_or_insert_with(Default::default);
        d.keys.insert(a_key.key_id(), a_key);
        d.roles.push(back);
        repo.publish_all_delegated_as_is();
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        let mut s = loaded(&repo, Limits::DEFAULT);
        let (step, loads) = run(&repo, &mut s, "nothing");
        assert_eq!(step, Ok(SearchStep::NotFound));
        assert_eq!(loads, vec!["a", "b"]);
    }

    #[test]
    fn visits_are_capped() {
        let mut repo = Repo::new();
        let mut parent = "targets".to_owned();
        for i in 0..5 {
            let name = format!("r{i}");
            repo.delegate(&parent, &name, &["*"], false);
            parent = name;
        }
        repo.publish_all_delegated_as_is();
        repo.publish_targets();
        repo.publish_snapshot_and_timestamp();
        let limits = Limits {
            max_delegations: 3,
            ..Limits::DEFAULT
        };
        let mut s = loaded(&repo, limits);
        let (step, loads) = run(&repo, &mut s, "x");
        assert_eq!(step, Err(UpdateError::DelegationLimit { limit: 3 }));
        assert_eq!(loads, vec!["r0", "r1", "r2"]);
        let mut s = loaded(&repo, Limits::DEFAULT);
        assert_eq!(run(&repo, &mut s, "x").0, Ok(SearchStep::NotFound));
    }

    #[test]
    fn delegation_paths_compare_positions_not_names() {
        let path = |names: &[&str]| names.iter().map(|n| rn(n)).collect::<Vec<_>>();
        let releases = DelegationPath::parse("targets/releases").unwrap();
        assert_eq!(releases.roles(), path(&["targets", "targets/releases"]));
        assert!(releases.vouches_for(&path(&["targets", "targets/releases"])));
        assert!(releases.vouches_for(&path(&["targets", "targets/releases", "x"])));
        assert!(!releases.vouches_for(&path(&["targets", "targets/dev", "targets/releases"])));
        assert!(!releases.vouches_for(&path(&["targets"])));
        assert!(!releases.vouches_for(&path(&["targets/releases"])));
        assert!(!releases.vouches_for::<RoleName>(&[]));

        let prod = DelegationPath::parse("targets/releases/prod").unwrap();
        assert_eq!(
            prod.roles(),
            path(&["targets", "targets/releases", "targets/releases/prod"])
        );
        assert!(prod.vouches_for(&path(&[
            "targets",
            "targets/releases",
            "targets/releases/prod"
        ])));
        // The same role name, delegated straight from targets: another chain.
        assert!(!prod.vouches_for(&path(&["targets", "targets/releases/prod"])));
        assert!(!prod.vouches_for(&path(&["targets", "targets/releases"])));
        assert!(prod.implies(&releases) && !releases.implies(&prod));

        let plain = DelegationPath::parse("releases").unwrap();
        assert_eq!(plain.roles(), path(&["targets", "releases"]));
        let odd = DelegationPath::parse("releases/prod").unwrap();
        assert_eq!(odd.roles(), path(&["targets", "releases/prod"]));
        assert_eq!(
            DelegationPath::new(path(&["targets", "a", "b"])).unwrap(),
            DelegationPath::new(path(&["a", "b"])).unwrap()
        );
        // Strings compare as names too.
        assert!(releases.vouches_for(&["targets", "targets/releases"]));

        for bad in [
            "",
            "targets",
            "targets/",
            "targets//a",
            "targets/a/",
            "root",
            "a\nb",
        ] {
            assert!(DelegationPath::parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            DelegationPath::parse("targets"),
            Err(DelegationPathError::OnlyTargets(_))
        ));
        assert!(matches!(
            DelegationPath::new(path(&["a", "snapshot"])),
            Err(DelegationPathError::TopLevel { .. })
        ));
        assert!(matches!(
            DelegationPath::new(path(&["a", "b", "a"])),
            Err(DelegationPathError::Repeated { .. })
        ));
        assert_eq!(
            DelegationPath::new(Vec::new()),
            Err(DelegationPathError::Empty)
        );
    }

    #[test]
    fn needs_targets_first() {
        let repo = Repo::new();
        let s = TrustedSet::new(&repo.root_bytes(1), NOW, Limits::DEFAULT).unwrap();
        assert!(matches!(
            TargetSearch::new("x").step(&s),
            Err(UpdateError::OutOfOrder { .. })
        ));
    }
}
