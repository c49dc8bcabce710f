//! Which role path vouched for a target, and requirements on it: the holder of
//! `targets/dev` delegates to a role it *names* `targets/releases` and signs with it. The
//! answer names the whole path (`targets → targets/dev → targets/releases`), and the
//! requirement `targets/releases` (`targets → targets/releases`) is not met by it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use vouch_verifier::cache::MetadataStore;
use vouch_verifier::clock::TestClock;
use vouch_verifier::{DelegationPath, Updater};

/// `targets` → `targets/dev` (`*`) → `targets/releases` (`*`, the dev holder's key):
/// signs `v2`; `targets` → `targets/real` (`v*`) → `targets/real/prod` (`v3`) signs `v3`.
fn repo() -> (
    Repo,
    vouch_tuf::reference::Digest,
    vouch_tuf::reference::Digest,
) {
    let mut repo = Repo::new();
    repo.add_image("targets", "v1", b"v1");
    repo.delegate("targets", "targets/real", &["v3*"], false);
    repo.delegate("targets/real", "targets/real/prod", &["v3*"], false);
    let v3 = repo.add_image("targets/real/prod", "v3", b"v3");
    repo.delegate("targets", "targets/dev", &["*"], false);
    repo.delegate("targets/dev", "targets/releases", &["*"], false);
    let v2 = repo.add_image("targets/releases", "v2", b"v2");
    repo.add_image("targets/releases", v2.as_str(), b"v2");
    repo.publish_all_delegated_as_is();
    repo.publish_targets();
    repo.publish_snapshot_and_timestamp();
    (repo, v2, v3)
}

fn names(path: &[vouch_tuf::types::RoleName]) -> Vec<&str> {
    path.iter().map(|r| r.as_str()).collect()
}

#[test]
fn the_answer_is_the_delegation_path_and_requirements_compare_it_by_position() {
    let (repo, v2, v3) = repo();
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    Updater::<MemoryTransport>::pin_root(&store, &repo.root_bytes(1)).unwrap();
    let mut up = Updater::new(store, MemoryTransport::new(&repo.files))
        .with_clock(Arc::new(TestClock::new(NOW)));
    up.refresh().unwrap();

    let releases = DelegationPath::parse("targets/releases").unwrap();
    let prod = DelegationPath::parse("targets/real/prod").unwrap();

    let t = up.lookup("v2").unwrap().unwrap();
    assert_eq!(
        names(&t.role_path),
        ["targets", "targets/dev", "targets/releases"]
    );
    assert!(!releases.vouches_for(&t.role_path));

    let t = up.lookup("v3").unwrap().unwrap();
    assert_eq!(
        names(&t.role_path),
        ["targets", "targets/real", "targets/real/prod"]
    );
    assert!(prod.vouches_for(&t.role_path));
    assert!(DelegationPath::parse("targets/real")
        .unwrap()
        .vouches_for(&t.role_path));

    // By digest: every path that vouches for it, typed.
    let paths = up.digest_role_paths(&v2).unwrap();
    let shown: Vec<Vec<&str>> = paths.iter().map(|p| names(p)).collect();
    assert_eq!(shown, [["targets", "targets/dev", "targets/releases"]]);
    assert!(!paths.iter().any(|p| releases.vouches_for(p)));
    let paths = up.digest_role_paths(&v3).unwrap();
    assert!(paths.iter().any(|p| prod.vouches_for(p)));
    assert!(up.is_trusted(&v3).unwrap());
    let unsigned = vouch_tuf::reference::Digest::sha256_of(b"unsigned");
    assert!(up.digest_role_paths(&unsigned).unwrap().is_empty());
    assert!(!up.is_trusted(&unsigned).unwrap());
}
