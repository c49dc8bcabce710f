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
//! [`Limits::max_delegations`]: crate::Limits::max_delegations

use std::collections::HashSet;

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
    fn needs_targets_first() {
        let repo = Repo::new();
        let s = TrustedSet::new(&repo.root_bytes(1), NOW, Limits::DEFAULT).unwrap();
        assert!(matches!(
            TargetSearch::new("x").step(&s),
            Err(UpdateError::OutOfOrder { .. })
        ));
    }
}
