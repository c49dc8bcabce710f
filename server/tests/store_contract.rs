//! The `Store` contract suite: every test here runs on both backends, SQLite (a temporary
//! file) and PostgreSQL (a fresh database of the shared throwaway cluster), as
//! `sqlite::<name>` and `postgres::<name>`.
//!
//! Each test is a generic function over a [`Backend`], which names a place (a file, a
//! database) and opens store objects on it. Two store objects on one place stand in for two
//! server replicas, so the cross-replica guarantees of `server/src/store/mod.rs` (the
//! compare-and-swap on publish and on online keys, changefeed ids in visibility order) are
//! exercised between them. What is specific to one backend (SQLite's pragmas, file
//! permissions, reader pool) stays in that backend's unit tests; the one PostgreSQL-only
//! test here stops a dedicated cluster to check outages are `StoreError::Unavailable` and
//! that the same store object recovers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::postgres::PgCluster;
use tempfile::TempDir;
use vouch_server::store::{
    Change, ChangeCategory, Closing, Direction, NewFile, NewProposal, PgOptions, PostgresStore,
    ProposalState, Record, SqliteStore, Store, StoreError, StoredKey, StoredProposal,
    WebhookCursor,
};
use vouch_tuf::reference::Gun;
use vouch_tuf::time::Timestamp;

const NOW: Timestamp = Timestamp::from_unix(1_900_000_000);

/// One place that stores live in, and a way to open store objects on it.
trait Backend {
    /// The store type.
    type S: Store;
    /// A new, empty place.
    fn create() -> Self;
    /// A new store object on this place (a replica, or the same server after a restart).
    fn open(&self) -> Self::S;
    /// Runs `sql` on the place directly, as an operator (or a fault) would, bypassing the
    /// store. No store object need be closed: each statement is its own transaction.
    fn raw_sql(&self, sql: &str);
    /// Takes the place's schema back to `version` (1: before proposals; 2: before the
    /// changefeed's roles and webhook cursors), as a server of that release left it: the
    /// later steps' tables and columns are dropped, the data of the earlier ones stays. No
    /// store object may be open on it.
    fn downgrade_to_schema(&self, version: u32);
}

/// What undoes each schema step after the first, newest first: (step, SQL common to both
/// backends).
const UNDO_STEPS: &[(u32, &str)] = &[
    (
        3,
        "DROP TABLE webhook_cursors; ALTER TABLE changefeed DROP COLUMN roles;",
    ),
    (2, "DROP TABLE proposals;"),
];

/// The SQL that takes a database at the newest schema back to `version`, without setting
/// the recorded version.
fn undo_steps_to(version: u32) -> String {
    UNDO_STEPS
        .iter()
        .filter(|(step, _)| *step > version)
        .map(|(_, sql)| *sql)
        .collect()
}

/// A SQLite database file in a temporary directory.
struct Sqlite {
    dir: TempDir,
}

impl Backend for Sqlite {
    type S = SqliteStore;
    fn create() -> Self {
        Sqlite {
            dir: TempDir::new().expect("tempdir"),
        }
    }
    fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.dir.path().join("vouch.db")).expect("open sqlite store")
    }
    fn raw_sql(&self, sql: &str) {
        let conn = rusqlite::Connection::open(self.dir.path().join("vouch.db")).expect("open");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        conn.execute_batch(sql).expect("raw sql");
    }
    fn downgrade_to_schema(&self, version: u32) {
        self.raw_sql(&format!(
            "{} PRAGMA user_version = {version};",
            undo_steps_to(version)
        ));
    }
}

/// A fresh database on the shared PostgreSQL cluster.
struct Postgres {
    url: String,
}

impl Backend for Postgres {
    type S = PostgresStore;
    fn create() -> Self {
        Postgres {
            url: PgCluster::shared().fresh_database(),
        }
    }
    fn open(&self) -> PostgresStore {
        let options = PgOptions::from_url(&self.url).expect("postgres url");
        PostgresStore::open(options).expect("open postgres store")
    }
    fn raw_sql(&self, sql: &str) {
        let db = self.url.rsplit('/').next().expect("database name");
        PgCluster::shared().psql(db, sql);
    }
    fn downgrade_to_schema(&self, version: u32) {
        self.raw_sql(&format!(
            "{} UPDATE vouch_schema SET version = {version}",
            undo_steps_to(version)
        ));
    }
}

/// Instantiates each contract test once per backend.
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&<super::Sqlite as super::Backend>::create());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name(&<super::Postgres as super::Backend>::create());
                }
            )*
        }
    };
}

contract_tests!(
    publish_then_read_back_every_way,
    current_returns_the_newest_version_of_each_role,
    changefeed_entry_without_timestamp_file_has_no_version,
    lookup_by_checksum,
    conflicting_publish_writes_nothing,
    stale_expected_version_is_a_conflict_and_writes_nothing,
    version_beyond_range_is_refused_without_writing,
    racing_publishers_of_one_version_get_one_success,
    replicas_racing_on_each_version_build_a_chain_without_gaps,
    concurrent_increasing_publishes_lose_no_acknowledged_write,
    delete_removes_metadata_and_records_it,
    changefeed_pages_in_both_directions,
    changefeed_ids_become_visible_in_id_order,
    online_keys_oldest_first_and_added_only_after_the_newest,
    racing_first_key_requests_agree_on_one_key,
    replicas_racing_key_rotations_add_one_key_per_round,
    reseal_is_all_or_nothing,
    everything_survives_reopening,
    proposal_ids_increase_across_guns_and_stay_with_their_gun,
    proposals_list_newest_first_and_only_open_unexpired_ones_at_a_time,
    a_list_of_large_proposals_reads_only_their_summaries,
    amending_a_proposal_needs_its_current_revision,
    a_proposal_closes_once,
    publishing_a_proposal_is_atomic,
    delete_removes_the_repositorys_proposals,
    export_then_import_round_trips_proposals,
    racing_amendments_of_one_revision_get_one_success,
    a_database_at_the_first_schema_migrates_and_keeps_its_data,
    changes_record_the_roles_each_change_wrote,
    unreadable_roles_are_a_backend_error,
    a_database_at_the_second_schema_migrates_with_empty_roles,
    a_new_webhook_cursor_starts_at_start_under_its_first_claimer,
    a_live_lease_is_refused_to_another_owner_until_it_expires,
    a_save_after_a_takeover_writes_nothing,
    resuming_clears_a_dead_subscription,
    racing_webhook_claims_get_one_lease,
    webhook_cursors_outlive_repository_deletion,
    export_then_import_round_trips_roles_and_webhook_cursors,
);

fn gun(s: &str) -> Gun {
    Gun::new(s).expect("valid gun")
}

fn sha256_hex(bytes: &[u8]) -> String {
    vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

fn file(role: &str, version: u64) -> NewFile {
    NewFile {
        role: role.to_owned(),
        version,
        bytes: format!("{{\"signed\":{{\"_type\":\"{role}\",\"version\":{version}}}}}")
            .into_bytes(),
    }
}

fn key(keyid: &str, at: i64) -> StoredKey {
    StoredKey {
        keyid: keyid.to_owned(),
        public: format!("{{\"keytype\":\"ed25519\",\"keyval\":{{\"public\":\"{keyid}\"}}}}"),
        sealed_private: keyid.as_bytes().iter().rev().copied().collect(),
        created_at: Timestamp::from_unix(at),
    }
}

fn all_changes(store: &impl Store, gun: Option<&Gun>) -> Vec<Change> {
    store
        .changes(gun, None, Direction::Forward, usize::MAX)
        .expect("changes")
}

fn current_version(store: &impl Store, g: &Gun, role: &str) -> Option<u64> {
    store.get_current(g, role).expect("get").map(|f| f.version)
}

fn is_conflict_on(result: &Result<i64, StoreError>, on_role: &str, on_version: u64) -> bool {
    matches!(result, Err(StoreError::Conflict { role, version, .. })
        if role == on_role && *version == on_version)
}

fn publish_then_read_back_every_way(b: &impl Backend) {
    let store = b.open();
    let g = gun("registry.example/app");
    assert_eq!(store.current(&g).expect("current"), vec![]);
    assert_eq!(store.get_current(&g, "root").expect("get"), None);

    let first = [
        file("root", 1),
        file("targets", 1),
        file("snapshot", 1),
        file("timestamp", 1),
    ];
    let id1 = store.publish(&g, None, &first, NOW).expect("publish 1");
    let later = NOW.add_seconds(60);
    let second = [
        file("targets", 2),
        file("targets/releases", 1),
        file("snapshot", 2),
        file("timestamp", 2),
    ];
    let id2 = store
        .publish(&g, Some(1), &second, later)
        .expect("publish 2");
    assert!(id2 > id1);
    // Another GUN with newer versions of the same roles must not show through.
    let other = gun("registry.example/other");
    let id3 = store
        .publish(&other, None, &[file("root", 9), file("zzz", 1)], later)
        .expect("publish other");

    let current = store.current(&g).expect("current");
    let summary: Vec<(&str, u64, Timestamp)> = current
        .iter()
        .map(|f| (f.role.as_str(), f.version, f.created_at))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("root", 1, NOW),
            ("snapshot", 2, later),
            ("targets", 2, later),
            ("targets/releases", 1, later),
            ("timestamp", 2, later)
        ]
    );
    for f in &current {
        assert_eq!(f.bytes, file(&f.role, f.version).bytes);
        assert_eq!(f.sha256, sha256_hex(&f.bytes));
        assert_eq!(f.sha256.len(), 64);
        assert!(f
            .sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }

    let targets = store
        .get_current(&g, "targets")
        .expect("get")
        .expect("present");
    assert_eq!(
        (targets.version, targets.bytes),
        (2, file("targets", 2).bytes)
    );
    let old = store
        .get_version(&g, "targets", 1)
        .expect("get")
        .expect("kept");
    assert_eq!(
        (old.version, old.bytes, old.created_at),
        (1, file("targets", 1).bytes, NOW)
    );
    assert_eq!(store.get_version(&g, "targets", 3).expect("get"), None);
    assert_eq!(
        store.get_version(&g, "targets", u64::MAX).expect("get"),
        None
    );
    assert_eq!(store.get_current(&g, "missing").expect("get"), None);
    let other_summary: Vec<(String, u64)> = store
        .current(&other)
        .expect("current")
        .into_iter()
        .map(|f| (f.role, f.version))
        .collect();
    assert_eq!(
        other_summary,
        vec![("root".to_owned(), 9), ("zzz".to_owned(), 1)]
    );
    assert_eq!(
        store
            .current(&gun("registry.example/none"))
            .expect("current"),
        vec![]
    );

    let change = |id, g: &Gun, version, sha256: String, created_at, roles: &[(&str, u64)]| Change {
        id,
        gun: g.as_str().to_owned(),
        version,
        sha256,
        category: ChangeCategory::Update,
        created_at,
        roles: roles.iter().map(|(r, v)| ((*r).to_owned(), *v)).collect(),
    };
    assert_eq!(
        all_changes(&store, None),
        vec![
            change(
                id1,
                &g,
                1,
                sha256_hex(&file("timestamp", 1).bytes),
                NOW,
                &[
                    ("root", 1),
                    ("snapshot", 1),
                    ("targets", 1),
                    ("timestamp", 1)
                ]
            ),
            change(
                id2,
                &g,
                2,
                sha256_hex(&file("timestamp", 2).bytes),
                later,
                &[
                    ("snapshot", 2),
                    ("targets", 2),
                    ("targets/releases", 1),
                    ("timestamp", 2)
                ]
            ),
            change(
                id3,
                &other,
                0,
                String::new(),
                later,
                &[("root", 9), ("zzz", 1)]
            ),
        ]
    );
}

fn current_returns_the_newest_version_of_each_role(b: &impl Backend) {
    let store = b.open();
    // Neighbours that sort right around the GUN and its roles must not leak in.
    let g = gun("registry.example/app");
    let before = gun("registry.example/ap");
    let after = gun("registry.example/app2");
    // Role `i` gets a new version every `i + 1` rounds, so the newest versions differ per
    // role and the older ones outnumber the current ones.
    let roles = ["root", "snapshot", "targets", "targets/a", "targets/b"];
    const ROUNDS: u64 = 20;
    let mut newest: Vec<(String, u64)> = roles.iter().map(|r| ((*r).to_owned(), 0)).collect();
    for round in 1..=ROUNDS {
        let mut files = Vec::new();
        for (i, (role, version)) in newest.iter_mut().enumerate() {
            if round == 1 || round % (i as u64 + 1) == 0 {
                *version = round * 10 + i as u64;
                files.push(file(role, *version));
            }
        }
        files.push(file("timestamp", round));
        let expected = round.checked_sub(1).filter(|v| *v > 0);
        store.publish(&g, expected, &files, NOW).expect("publish");
    }
    let mut expected = newest;
    expected.push(("timestamp".to_owned(), ROUNDS));
    assert_eq!(expected[4], ("targets/b".to_owned(), 204), "the plan above");
    for neighbour in [&before, &after] {
        store
            .publish(
                neighbour,
                None,
                &[
                    file("root", 999),
                    file("targets/c", 999),
                    file("timestamp", 999),
                ],
                NOW,
            )
            .expect("publish neighbour");
    }

    let current: Vec<(String, u64)> = store
        .current(&g)
        .expect("current")
        .into_iter()
        .map(|f| (f.role, f.version))
        .collect();
    assert_eq!(current, expected);
    for (role, version) in &expected {
        assert_eq!(current_version(&store, &g, role), Some(*version), "{role}");
    }
    assert_eq!(
        store
            .current(&after)
            .expect("current")
            .iter()
            .map(|f| f.role.as_str())
            .collect::<Vec<_>>(),
        vec!["root", "targets/c", "timestamp"]
    );
}

fn changefeed_entry_without_timestamp_file_has_no_version(b: &impl Backend) {
    let store = b.open();
    let g = gun("registry.example/app");
    let id = store
        .publish(&g, None, &[file("root", 1)], NOW)
        .expect("publish");
    let feed = all_changes(&store, None);
    assert_eq!(feed.len(), 1);
    assert_eq!(
        (feed[0].id, feed[0].version, feed[0].sha256.as_str()),
        (id, 0, "")
    );
    // No timestamp was stored, so the repository still expects none.
    store
        .publish(&g, None, &[file("root", 2), file("timestamp", 1)], NOW)
        .expect("publish with no timestamp yet");
}

fn lookup_by_checksum(b: &impl Backend) {
    let store = b.open();
    let g = gun("registry.example/app");
    store
        .publish(&g, None, &[file("snapshot", 1)], NOW)
        .expect("publish 1");
    store
        .publish(&g, None, &[file("snapshot", 2)], NOW)
        .expect("publish 2");
    let v1 = sha256_hex(&file("snapshot", 1).bytes);

    let found = store
        .get_by_checksum(&g, "snapshot", &v1)
        .expect("get")
        .expect("found");
    assert_eq!((found.version, found.bytes), (1, file("snapshot", 1).bytes));
    let upper = store
        .get_by_checksum(&g, "snapshot", &v1.to_ascii_uppercase())
        .expect("get");
    assert_eq!(upper.map(|f| f.version), Some(1));
    // The checksum is scoped to its GUN and role.
    assert_eq!(
        store.get_by_checksum(&g, "timestamp", &v1).expect("get"),
        None
    );
    assert_eq!(
        store
            .get_by_checksum(&gun("registry.example/other"), "snapshot", &v1)
            .expect("get"),
        None
    );
    assert_eq!(
        store
            .get_by_checksum(&g, "snapshot", &"0".repeat(64))
            .expect("get"),
        None
    );
}

fn conflicting_publish_writes_nothing(b: &impl Backend) {
    let store = b.open();
    let g = gun("registry.example/app");
    store
        .publish(
            &g,
            None,
            &[file("root", 1), file("targets", 3), file("timestamp", 3)],
            NOW,
        )
        .expect("publish");
    let feed_before = all_changes(&store, None);

    // Same version of targets; the snapshot listed before it must not be kept either.
    let same = store.publish(
        &g,
        Some(3),
        &[
            file("snapshot", 1),
            file("targets", 3),
            file("timestamp", 4),
        ],
        NOW,
    );
    match same {
        Err(StoreError::Conflict {
            gun: cg,
            role,
            version,
        }) => assert_eq!(
            (cg.as_str(), role.as_str(), version),
            (g.as_str(), "targets", 3)
        ),
        other => panic!("expected conflict, got {other:?}"),
    }
    // Older version of the timestamp, after files that would have been fine.
    let older = store.publish(
        &g,
        Some(3),
        &[
            file("snapshot", 1),
            file("targets", 4),
            file("timestamp", 2),
        ],
        NOW,
    );
    assert!(is_conflict_on(&older, "timestamp", 2), "{older:?}");
    // The same role twice in one publish.
    let twice = store.publish(
        &g,
        Some(3),
        &[file("snapshot", 1), file("snapshot", 1)],
        NOW,
    );
    assert!(is_conflict_on(&twice, "snapshot", 1), "{twice:?}");

    assert_eq!(all_changes(&store, None), feed_before);
    assert_eq!(store.get_current(&g, "snapshot").expect("get"), None);
    assert_eq!(store.get_version(&g, "targets", 4).expect("get"), None);
    assert_eq!(current_version(&store, &g, "timestamp"), Some(3));
    let stored = store
        .get_current(&g, "targets")
        .expect("get")
        .expect("present");
    assert_eq!(stored.bytes, file("targets", 3).bytes);

    // The store is still writable after the rolled-back attempts.
    store
        .publish(
            &g,
            Some(3),
            &[
                file("snapshot", 1),
                file("targets", 4),
                file("timestamp", 4),
            ],
            NOW,
        )
        .expect("publish");
    assert_eq!(all_changes(&store, None).len(), 2);
}

fn stale_expected_version_is_a_conflict_and_writes_nothing(b: &impl Backend) {
    let store = b.open();
    let g = gun("registry.example/app");
    store
        .publish(&g, None, &[file("root", 1), file("timestamp", 1)], NOW)
        .expect("publish 1");
    store
        .publish(&g, Some(1), &[file("timestamp", 2)], NOW)
        .expect("publish 2");
    let feed_before = all_changes(&store, None);

    // Each attempt is otherwise valid (new versions of every role): only `expected` is wrong.
    let attempts = [
        (None, "no timestamp yet, but there is one"),
        (Some(1), "an older timestamp version"),
        (Some(3), "a newer timestamp version"),
    ];
    for (expected, why) in attempts {
        let result = store.publish(
            &g,
            expected,
            &[file("root", 2), file("snapshot", 1), file("timestamp", 3)],
            NOW,
        );
        assert!(
            matches!(&result, Err(StoreError::Conflict { role, .. }) if role == "timestamp"),
            "{why}: {result:?}"
        );
    }
    assert_eq!(
        all_changes(&store, None),
        feed_before,
        "no changefeed entry"
    );
    assert_eq!(current_version(&store, &g, "root"), Some(1));
    assert_eq!(store.get_current(&g, "snapshot").expect("get"), None);
    assert_eq!(store.get_version(&g, "timestamp", 3).expect("get"), None);
    assert_eq!(current_version(&store, &g, "timestamp"), Some(2));

    // The right one still works.
    store
        .publish(&g, Some(2), &[file("timestamp", 3)], NOW)
        .expect("publish 3");

    // After a deletion the repository has no timestamp again: only `None` fits.
    assert!(store.delete(&g, NOW).expect("delete"));
    let stale = store.publish(&g, Some(3), &[file("root", 1), file("timestamp", 1)], NOW);
    assert!(
        matches!(&stale, Err(StoreError::Conflict { role, .. }) if role == "timestamp"),
        "{stale:?}"
    );
    store
        .publish(&g, None, &[file("root", 1), file("timestamp", 1)], NOW)
        .expect("re-create");
    assert_eq!(current_version(&store, &g, "timestamp"), Some(1));
}

fn version_beyond_range_is_refused_without_writing(b: &impl Backend) {
    let store = b.open();
    let g = gun("registry.example/app");
    let huge = NewFile {
        role: "timestamp".to_owned(),
        version: u64::MAX,
        bytes: b"x".to_vec(),
    };
    let result = store.publish(&g, None, &[file("root", 1), huge], NOW);
    assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
    assert_eq!(store.current(&g).expect("current"), vec![]);
    assert_eq!(all_changes(&store, None), vec![]);
    // Nothing half-written blocks the repository either.
    store
        .publish(&g, None, &[file("root", 1), file("timestamp", 1)], NOW)
        .expect("publish");
}

fn racing_publishers_of_one_version_get_one_success(b: &impl Backend) {
    const THREADS: usize = 32;
    let store = Arc::new(b.open());
    let g = gun("registry.example/app");
    store
        .publish(&g, None, &[file("timestamp", 6)], NOW)
        .expect("publish 6");
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let (store, g, barrier) = (Arc::clone(&store), g.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                // Every thread's document differs, so a lost race must not overwrite.
                let mine = NewFile {
                    role: "timestamp".to_owned(),
                    version: 7,
                    bytes: format!("writer {i}").into_bytes(),
                };
                barrier.wait();
                (i, store.publish(&g, Some(6), &[mine], NOW))
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();

    let winners: Vec<usize> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let conflicts = results
        .iter()
        .filter(|(_, r)| is_conflict_on(r, "timestamp", 7))
        .count();
    assert_eq!(conflicts, THREADS - 1, "{results:?}");
    let stored = store
        .get_version(&g, "timestamp", 7)
        .expect("get")
        .expect("stored");
    assert_eq!(stored.bytes, format!("writer {}", winners[0]).into_bytes());
    assert_eq!(all_changes(&*store, None).len(), 2);
}

fn replicas_racing_on_each_version_build_a_chain_without_gaps(b: &impl Backend) {
    const THREADS_PER_REPLICA: usize = 4;
    const ROUNDS: u64 = 25;
    let replicas = [Arc::new(b.open()), Arc::new(b.open())];
    let g = gun("registry.example/app");
    let threads = 2 * THREADS_PER_REPLICA;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let store = Arc::clone(&replicas[i % 2]);
            let (g, barrier) = (g.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                let mut won = Vec::new();
                for round in 1..=ROUNDS {
                    // Everyone publishes `round` on top of `round - 1` at once.
                    barrier.wait();
                    let expected = round.checked_sub(1).filter(|v| *v > 0);
                    let mine = NewFile {
                        role: "timestamp".to_owned(),
                        version: round,
                        bytes: format!("round {round} writer {i}").into_bytes(),
                    };
                    match store.publish(&g, expected, &[mine], NOW) {
                        Ok(id) => won.push((round, id, i)),
                        Err(StoreError::Conflict { .. }) => {}
                        Err(err) => panic!("publish: {err}"),
                    }
                }
                won
            })
        })
        .collect();
    let mut wins: Vec<(u64, i64, usize)> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    wins.sort();
    let rounds: Vec<u64> = wins.iter().map(|(round, _, _)| *round).collect();
    assert_eq!(
        rounds,
        (1..=ROUNDS).collect::<Vec<_>>(),
        "one win per round"
    );

    for replica in &replicas {
        let feed = all_changes(&**replica, Some(&g));
        let chain: Vec<(i64, u64)> = feed.iter().map(|c| (c.id, c.version)).collect();
        let won: Vec<(i64, u64)> = wins.iter().map(|(r, id, _)| (*id, *r)).collect();
        assert_eq!(chain, won, "the changefeed is the chain of winners");
        for (round, _, writer) in &wins {
            let stored = replica
                .get_version(&g, "timestamp", *round)
                .expect("get")
                .expect("winner stored");
            assert_eq!(
                stored.bytes,
                format!("round {round} writer {writer}").into_bytes()
            );
        }
    }
}

fn concurrent_increasing_publishes_lose_no_acknowledged_write(b: &impl Backend) {
    const THREADS: usize = 16;
    const ACKS_PER_THREAD: usize = 10;
    let replicas = [Arc::new(b.open()), Arc::new(b.open())];
    let g = gun("registry.example/app");
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let store = Arc::clone(&replicas[i % 2]);
            let (g, barrier) = (g.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                let mut acked = Vec::new();
                while acked.len() < ACKS_PER_THREAD {
                    // Read, then write the next version, as a signer does; retry on 409.
                    let current = current_version(&*store, &g, "timestamp");
                    let next = current.map_or(1, |v| v + 1);
                    let bytes = format!("thread {i} version {next}").into_bytes();
                    let files = [NewFile {
                        role: "timestamp".to_owned(),
                        version: next,
                        bytes: bytes.clone(),
                    }];
                    match store.publish(&g, current, &files, NOW) {
                        Ok(id) => acked.push((id, next, bytes)),
                        Err(StoreError::Conflict { .. }) => {}
                        Err(err) => panic!("publish: {err}"),
                    }
                }
                acked
            })
        })
        .collect();
    let mut acked: Vec<(i64, u64, Vec<u8>)> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    acked.sort();
    let total = THREADS * ACKS_PER_THREAD;
    assert_eq!(acked.len(), total);

    // Acknowledged versions are exactly 1..=total, in changefeed order.
    let versions: Vec<u64> = acked.iter().map(|(_, v, _)| *v).collect();
    assert_eq!(versions, (1..=total as u64).collect::<Vec<_>>());
    let expected: Vec<(i64, u64, String, Option<Vec<u8>>)> = acked
        .iter()
        .map(|(id, v, bytes)| (*id, *v, sha256_hex(bytes), Some(bytes.clone())))
        .collect();
    // The changefeed of the GUN, each entry with the file stored under its version.
    let read = |store: &dyn Store| -> Vec<(i64, u64, String, Option<Vec<u8>>)> {
        store
            .changes(Some(&g), None, Direction::Forward, usize::MAX)
            .expect("changes")
            .into_iter()
            .map(|c| {
                let bytes = store
                    .get_version(&g, "timestamp", c.version)
                    .expect("get")
                    .map(|f| f.bytes);
                (c.id, c.version, c.sha256, bytes)
            })
            .collect()
    };
    assert_eq!(read(&*replicas[0]), expected);
    assert_eq!(read(&*replicas[1]), expected);
    // Close every store object and read it all again through a new one.
    drop(replicas);
    assert_eq!(read(&b.open()), expected);
}

fn delete_removes_metadata_and_records_it(b: &impl Backend) {
    let store = b.open();
    let (a, other) = (gun("registry.example/a"), gun("registry.example/b"));
    store
        .publish(&a, None, &[file("root", 1), file("timestamp", 1)], NOW)
        .expect("publish a");
    store
        .publish(&a, Some(1), &[file("timestamp", 2)], NOW)
        .expect("publish a");
    store
        .publish(&other, None, &[file("root", 1)], NOW)
        .expect("publish b");
    store
        .add_online_key(&a, "timestamp", &key("k1", 1), None)
        .expect("key");
    let ts1 = sha256_hex(&file("timestamp", 1).bytes);

    let later = NOW.add_seconds(5);
    assert!(store.delete(&a, later).expect("delete"));
    assert_eq!(store.current(&a).expect("current"), vec![]);
    assert_eq!(store.get_version(&a, "timestamp", 1).expect("get"), None);
    assert_eq!(
        store.get_by_checksum(&a, "timestamp", &ts1).expect("get"),
        None
    );
    assert_eq!(
        store.current(&other).expect("current").len(),
        1,
        "other GUNs untouched"
    );
    assert_eq!(
        store.online_keys(&a, "timestamp").expect("keys"),
        vec![key("k1", 1)],
        "keys stay"
    );

    let feed = all_changes(&store, None);
    assert_eq!(feed.len(), 4);
    let last = &feed[3];
    assert_eq!(
        (
            last.gun.as_str(),
            last.version,
            last.sha256.as_str(),
            last.category,
            last.created_at
        ),
        (a.as_str(), 0, "", ChangeCategory::Deletion, later)
    );

    assert!(!store.delete(&a, later).expect("delete again"));
    assert!(!store
        .delete(&gun("registry.example/never"), later)
        .expect("delete unknown"));
    assert_eq!(
        all_changes(&store, None).len(),
        4,
        "no entry when nothing was deleted"
    );

    // A deleted repository can start again from version 1.
    store
        .publish(&a, None, &[file("root", 1), file("timestamp", 1)], later)
        .expect("re-create");
    assert_eq!(current_version(&store, &a, "root"), Some(1));
    assert_eq!(current_version(&store, &a, "timestamp"), Some(1));
}

fn changefeed_pages_in_both_directions(b: &impl Backend) {
    let store = b.open();
    let (a, other) = (gun("registry.example/a"), gun("registry.example/b"));
    let mut ids_of: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
    let mut all_ids = Vec::new();
    for n in 0..25_u64 {
        let (which, g) = if n % 3 == 0 { (1, &other) } else { (0, &a) };
        let version = ids_of[which].len() as u64 + 1;
        let id = store
            .publish(
                g,
                version.checked_sub(1).filter(|v| *v > 0),
                &[file("timestamp", version)],
                NOW,
            )
            .expect("publish");
        ids_of[which].push(id);
        all_ids.push(id);
    }
    assert_eq!((ids_of[0].len(), ids_of[1].len()), (16, 9));

    let page_through = |filter: Option<&Gun>, direction: Direction| -> Vec<i64> {
        let mut seen = Vec::new();
        let mut cursor = None;
        // 25 entries take at most three pages and an empty one; a cursor that does not
        // advance must fail the test, not hang it.
        for _ in 0..5 {
            let page = store
                .changes(filter, cursor, direction, 10)
                .expect("changes");
            assert!(page.len() <= 10);
            if let Some(filter) = filter {
                assert!(page.iter().all(|c| c.gun == filter.as_str()));
            }
            let Some(last) = page.last() else {
                return seen;
            };
            cursor = Some(last.id);
            seen.extend(page.iter().map(|c| c.id));
        }
        panic!("paging {direction:?} did not end: {seen:?}")
    };
    let cases = [
        (None, &all_ids),
        (Some(&a), &ids_of[0]),
        (Some(&other), &ids_of[1]),
    ];
    for (filter, expected) in cases {
        let forward = page_through(filter, Direction::Forward);
        assert!(forward.windows(2).all(|w| w[0] < w[1]), "{forward:?}");
        assert_eq!(&forward, expected);
        let backward = page_through(filter, Direction::Backward);
        assert!(backward.windows(2).all(|w| w[0] > w[1]), "{backward:?}");
        assert_eq!(backward, expected.iter().rev().copied().collect::<Vec<_>>());
    }

    // Cursors in the middle, at the ends, and a zero limit.
    let ids = |changes: Vec<Change>| changes.iter().map(|c| c.id).collect::<Vec<_>>();
    let mid = all_ids[12];
    let after = store
        .changes(None, Some(mid), Direction::Forward, 3)
        .expect("changes");
    assert_eq!(ids(after), all_ids[13..16].to_vec());
    let before = store
        .changes(None, Some(mid), Direction::Backward, 3)
        .expect("changes");
    assert_eq!(ids(before), vec![all_ids[11], all_ids[10], all_ids[9]]);
    let newest = store
        .changes(None, None, Direction::Backward, 1)
        .expect("changes");
    assert_eq!(ids(newest), vec![all_ids[24]]);
    assert_eq!(
        store
            .changes(None, Some(all_ids[24]), Direction::Forward, 10)
            .expect("changes"),
        vec![]
    );
    assert_eq!(
        store
            .changes(None, Some(all_ids[0]), Direction::Backward, 10)
            .expect("changes"),
        vec![]
    );
    assert_eq!(
        store
            .changes(None, None, Direction::Forward, 0)
            .expect("changes"),
        vec![]
    );
}

fn changefeed_ids_become_visible_in_id_order(b: &impl Backend) {
    // Enough concurrent commits that ids taken from a plain sequence (allocated at insert,
    // visible at commit, in whichever order the commits land) would be seen out of order.
    const WRITERS: usize = 4;
    const PUBLISHES: u64 = 150;
    let replicas = [Arc::new(b.open()), Arc::new(b.open()), Arc::new(b.open())];
    let reader_store = Arc::clone(&replicas[2]);
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut seen: Vec<i64> = Vec::new();
            loop {
                // Read the flag first: a poll that starts after the writers finished must
                // see everything they committed.
                let finished = done.load(Ordering::SeqCst);
                let page = reader_store
                    .changes(None, seen.last().copied(), Direction::Forward, 100)
                    .expect("poll changes");
                let empty = page.is_empty();
                seen.extend(page.iter().map(|c| c.id));
                if finished && empty {
                    return seen;
                }
            }
        })
    };
    let barrier = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = Arc::clone(&replicas[w % 2]);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let g = gun(&format!("registry.example/writer-{w}"));
                barrier.wait();
                (1..=PUBLISHES)
                    .map(|v| {
                        let expected = v.checked_sub(1).filter(|v| *v > 0);
                        store
                            .publish(&g, expected, &[file("timestamp", v)], NOW)
                            .expect("publish")
                    })
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let acked: BTreeSet<i64> = writers
        .into_iter()
        .flat_map(|h| h.join().expect("writer"))
        .collect();
    done.store(true, Ordering::SeqCst);
    let seen = reader.join().expect("reader");

    assert_eq!(acked.len(), WRITERS * PUBLISHES as usize, "ids are unique");
    let out_of_order: Vec<&[i64]> = seen.windows(2).filter(|w| w[0] >= w[1]).collect();
    assert!(out_of_order.is_empty(), "not increasing: {out_of_order:?}");
    let seen: BTreeSet<i64> = seen.into_iter().collect();
    let skipped: Vec<&i64> = acked.difference(&seen).collect();
    assert!(
        skipped.is_empty(),
        "{} acknowledged ids never seen by a reader polling after the last id it saw: {skipped:?}",
        skipped.len()
    );
    assert_eq!(seen, acked, "the reader saw only what was published");
}

fn online_keys_oldest_first_and_added_only_after_the_newest(b: &impl Backend) {
    let store = b.open();
    let g = gun("registry.example/app");
    assert_eq!(store.online_keys(&g, "timestamp").expect("keys"), vec![]);

    // The same created_at for all: order must come from insertion, not the clock.
    let first = store
        .add_online_key(&g, "timestamp", &key("k1", 5), None)
        .expect("add");
    assert_eq!(first, key("k1", 5));
    let kept = store
        .add_online_key(&g, "timestamp", &key("k2", 5), None)
        .expect("add");
    assert_eq!(kept, key("k1", 5), "after=None keeps the existing key");
    let stale = store
        .add_online_key(&g, "timestamp", &key("k3", 5), Some("k0"))
        .expect("add");
    assert_eq!(
        stale,
        key("k1", 5),
        "a rotation after a key that is not the newest keeps it"
    );
    let rotated = store
        .add_online_key(&g, "timestamp", &key("k3", 5), Some("k1"))
        .expect("add");
    assert_eq!(rotated, key("k3", 5));
    let newest = store
        .add_online_key(&g, "timestamp", &key("k4", 5), None)
        .expect("add");
    assert_eq!(newest, key("k3", 5), "the newest existing key is returned");
    let stale_rotation = store
        .add_online_key(&g, "timestamp", &key("k4", 5), Some("k1"))
        .expect("add");
    assert_eq!(stale_rotation, key("k3", 5), "k1 is no longer the newest");

    assert_eq!(
        store.online_keys(&g, "timestamp").expect("keys"),
        vec![key("k1", 5), key("k3", 5)]
    );
    assert_eq!(store.online_keys(&g, "snapshot").expect("keys"), vec![]);
    assert_eq!(
        store
            .online_keys(&gun("registry.example/other"), "timestamp")
            .expect("keys"),
        vec![]
    );
    // A key id already stored for the role is refused, not added twice.
    assert!(matches!(
        store.add_online_key(&g, "timestamp", &key("k1", 6), Some("k3")),
        Err(StoreError::Backend(_))
    ));
    // Rotating a role that has no key is a caller's mistake, not a silent first key.
    assert!(matches!(
        store.add_online_key(&g, "snapshot", &key("s1", 6), Some("s0")),
        Err(StoreError::Backend(_))
    ));
    assert_eq!(
        store.online_keys(&g, "timestamp").expect("keys"),
        vec![key("k1", 5), key("k3", 5)]
    );
    assert_eq!(store.online_keys(&g, "snapshot").expect("keys"), vec![]);
}

fn racing_first_key_requests_agree_on_one_key(b: &impl Backend) {
    const THREADS: usize = 8;
    // Two store objects, as two replicas: the agreement must come from the database, not
    // from a lock inside one process.
    let replicas = [Arc::new(b.open()), Arc::new(b.open())];
    let g = gun("registry.example/app");
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let store = Arc::clone(&replicas[i % 2]);
            let (g, barrier) = (g.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                let mine = key(&format!("key-of-thread-{i}"), 1);
                barrier.wait();
                store
                    .add_online_key(&g, "snapshot", &mine, None)
                    .expect("add")
            })
        })
        .collect();
    let got: BTreeSet<String> = handles
        .into_iter()
        .map(|h| h.join().expect("thread").keyid)
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    for replica in &replicas {
        let stored = replica.online_keys(&g, "snapshot").expect("keys");
        assert_eq!(
            stored
                .iter()
                .map(|k| k.keyid.clone())
                .collect::<BTreeSet<_>>(),
            got
        );
    }
}

fn replicas_racing_key_rotations_add_one_key_per_round(b: &impl Backend) {
    const THREADS_PER_REPLICA: usize = 3;
    const ROUNDS: usize = 15;
    let replicas = [Arc::new(b.open()), Arc::new(b.open())];
    let g = gun("registry.example/app");
    let threads = 2 * THREADS_PER_REPLICA;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let store = Arc::clone(&replicas[i % 2]);
            let (g, barrier) = (g.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                let mut newest: Option<String> = None;
                let mut rounds = Vec::new();
                for round in 0..ROUNDS {
                    // All threads rotate after the same newest key at once.
                    barrier.wait();
                    let mine = key(&format!("round-{round}-thread-{i}"), 1);
                    let got = store
                        .add_online_key(&g, "timestamp", &mine, newest.as_deref())
                        .expect("add");
                    rounds.push((got.keyid == mine.keyid, got.keyid.clone()));
                    newest = Some(got.keyid);
                    // Wait until everyone has added (or lost) before the next round.
                    barrier.wait();
                }
                rounds
            })
        })
        .collect();
    let results: Vec<Vec<(bool, String)>> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let mut chain = Vec::new();
    for round in 0..ROUNDS {
        let winners = results.iter().filter(|r| r[round].0).count();
        assert_eq!(winners, 1, "round {round}: {results:?}");
        let agreed: BTreeSet<&str> = results.iter().map(|r| r[round].1.as_str()).collect();
        assert_eq!(agreed.len(), 1, "round {round}: all agree on the new key");
        chain.extend(agreed.into_iter().map(str::to_owned));
    }
    for replica in &replicas {
        let stored: Vec<String> = replica
            .online_keys(&g, "timestamp")
            .expect("keys")
            .into_iter()
            .map(|k| k.keyid)
            .collect();
        assert_eq!(stored, chain, "one key per round, in order");
    }

    // A stale `after` returns the current newest key and writes nothing.
    let newest = chain.last().expect("keys").clone();
    let returned = replicas[0]
        .add_online_key(&g, "timestamp", &key("late", 1), Some(&chain[0]))
        .expect("add");
    assert_eq!(returned.keyid, newest);
    assert_eq!(
        replicas[1]
            .online_keys(&g, "timestamp")
            .expect("keys")
            .len(),
        ROUNDS
    );
}

fn reseal_is_all_or_nothing(b: &impl Backend) {
    let store = b.open();
    let (a, other) = (gun("registry.example/a"), gun("registry.example/b"));
    let keys = [
        (&a, "timestamp", key("a-ts-1", 1)),
        (&a, "timestamp", key("a-ts-2", 2)),
        (&a, "snapshot", key("a-sn-1", 1)),
        (&other, "timestamp", key("b-ts-1", 1)),
    ];
    let mut newest: Vec<(&Gun, &str, &str)> = Vec::new();
    for (g, role, k) in &keys {
        let previous = newest
            .iter()
            .rev()
            .find(|(pg, pr, _)| pg == g && pr == role)
            .map(|(_, _, id)| *id);
        let added = store.add_online_key(g, role, k, previous).expect("add");
        assert_eq!(added.keyid, k.keyid);
        newest.push((g, role, &k.keyid));
    }
    let snapshot = |store: &dyn Store| -> Vec<Vec<StoredKey>> {
        [(&a, "timestamp"), (&a, "snapshot"), (&other, "timestamp")]
            .iter()
            .map(|(g, role)| store.online_keys(g, role).expect("keys"))
            .collect()
    };
    let before = snapshot(&store);

    // Fails on the third key, after two were already re-sealed in the transaction.
    let mut calls = 0;
    let failed = store.reseal_online_keys(&mut |_gun, _role, keyid, sealed| {
        calls += 1;
        if calls == 3 {
            Err(format!("cannot re-seal {keyid}"))
        } else {
            Ok([b"new:".as_slice(), sealed].concat())
        }
    });
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(calls, 3);
    assert_eq!(snapshot(&store), before, "no key changed");
    assert_eq!(
        snapshot(&b.open()),
        before,
        "not even seen from another store"
    );

    // Every key, retired ones and other repositories' too, is handed over exactly once.
    let mut handed = Vec::new();
    let count = store
        .reseal_online_keys(&mut |gun, role, keyid, sealed| {
            handed.push((gun.to_owned(), role.to_owned(), keyid.to_owned()));
            Ok([b"new:".as_slice(), sealed].concat())
        })
        .expect("reseal");
    assert_eq!(count, 4);
    handed.sort();
    let mut expected: Vec<(String, String, String)> = keys
        .iter()
        .map(|(g, role, k)| (g.as_str().to_owned(), (*role).to_owned(), k.keyid.clone()))
        .collect();
    expected.sort();
    assert_eq!(handed, expected);
    let resealed = snapshot(&b.open());
    for (old, new) in before.iter().flatten().zip(resealed.iter().flatten()) {
        assert_eq!(new.keyid, old.keyid);
        assert_eq!(new.public, old.public);
        assert_eq!(new.created_at, old.created_at);
        assert_eq!(
            new.sealed_private,
            [b"new:".as_slice(), &old.sealed_private].concat()
        );
    }
}

fn everything_survives_reopening(b: &impl Backend) {
    let g = gun("registry.example/app");
    let (id, stored_key) = {
        let store = b.open();
        let id = store
            .publish(&g, None, &[file("root", 1), file("timestamp", 1)], NOW)
            .expect("publish");
        let k = store
            .add_online_key(&g, "timestamp", &key("k1", 3), None)
            .expect("key");
        (id, k)
    };
    let store = b.open();
    assert_eq!(store.current(&g).expect("current").len(), 2);
    assert_eq!(
        store.get_current(&g, "root").expect("get").map(|f| f.bytes),
        Some(file("root", 1).bytes)
    );
    assert_eq!(
        all_changes(&store, None)
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        vec![id]
    );
    assert_eq!(
        store.online_keys(&g, "timestamp").expect("keys"),
        vec![stored_key]
    );
    // The compare-and-swap state survives too.
    let stale = store.publish(&g, None, &[file("timestamp", 2)], NOW);
    assert!(
        matches!(&stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    // Ids are never reused, even after the newest entry's GUN is deleted and reopened.
    assert!(store.delete(&g, NOW).expect("delete"));
    drop(store);
    let store = b.open();
    let next = store
        .publish(&g, None, &[file("root", 1)], NOW)
        .expect("publish");
    assert_eq!(next, id + 2);
    store.ping().expect("ping");
}

// ---------------------------------------------------------------------------------------
// Staged proposals.

/// A proposal of body `body` and summary `"<body> summary"`.
fn new_proposal(body: &str, expires_at: Timestamp) -> NewProposal {
    NewProposal {
        body: body.as_bytes().to_vec(),
        summary: format!("{body} summary").into_bytes(),
        proposed_by: "alice".to_owned(),
        expires_at,
    }
}

fn closing<'a>(
    id: i64,
    revision: u64,
    by: &'a str,
    body: &'a str,
    summary: &'a str,
) -> Closing<'a> {
    Closing {
        id,
        revision,
        by,
        body: body.as_bytes(),
        summary: summary.as_bytes(),
    }
}

fn stored_proposal(store: &impl Store, g: &Gun, id: i64) -> StoredProposal {
    store
        .proposal(g, id)
        .expect("read proposal")
        .expect("proposal stored")
}

fn ids(proposals: &[StoredProposal]) -> Vec<i64> {
    proposals.iter().map(|p| p.id).collect()
}

fn is_changed(result: &Result<impl std::fmt::Debug, StoreError>, on_id: i64) -> bool {
    matches!(result, Err(StoreError::ProposalChanged { id, .. }) if *id == on_id)
}

fn proposal_ids_increase_across_guns_and_stay_with_their_gun(b: &impl Backend) {
    let store = b.open();
    let (a, other) = (gun("registry.example/a"), gun("registry.example/b"));
    let later = NOW.add_seconds(3600);
    let first = store
        .create_proposal(&a, &new_proposal("a1", later), NOW)
        .expect("create a1");
    let theirs = store
        .create_proposal(&other, &new_proposal("b1", later), NOW)
        .expect("create b1");
    let second = store
        .create_proposal(&a, &new_proposal("a2", later), NOW.add_seconds(1))
        .expect("create a2");
    assert!(
        first < theirs && theirs < second,
        "{first} {theirs} {second}"
    );

    assert_eq!(
        stored_proposal(&store, &other, theirs),
        StoredProposal {
            id: theirs,
            gun: other.as_str().to_owned(),
            state: ProposalState::Open,
            revision: 0,
            body: b"b1".to_vec(),
            summary: b"b1 summary".to_vec(),
            proposed_by: "alice".to_owned(),
            created_at: NOW,
            expires_at: later,
            closed_at: None,
            closed_by: None,
        }
    );
    // Another GUN's id reads as no proposal, and cannot be amended, withdrawn or published
    // through this GUN.
    assert_eq!(store.proposal(&a, theirs).expect("read"), None);
    assert_eq!(store.proposal(&a, second + 1000).expect("read"), None);
    assert!(is_changed(
        &store.amend_proposal(&a, theirs, 0, b"mine now", b"mine now summary"),
        theirs
    ));
    assert!(is_changed(
        &store.close_proposal(&a, closing(theirs, 0, "mallory", "x", "x summary"), NOW),
        theirs
    ));
    let publish = store.publish_proposal(
        &a,
        None,
        &[file("root", 1), file("timestamp", 1)],
        closing(theirs, 0, "mallory", "x", "x summary"),
        NOW,
    );
    assert!(is_changed(&publish, theirs), "{publish:?}");
    assert_eq!(store.current(&a).expect("current"), vec![]);
    assert_eq!(all_changes(&store, None), vec![]);
    assert_eq!(stored_proposal(&store, &other, theirs).body, b"b1".to_vec());
    assert_eq!(
        stored_proposal(&store, &other, theirs).summary,
        b"b1 summary".to_vec()
    );
    assert_eq!(
        stored_proposal(&store, &other, theirs).state,
        ProposalState::Open
    );
    assert_eq!(
        ids(&store.proposals(&a, None, 10).expect("list")),
        vec![second, first]
    );
}

fn proposals_list_newest_first_and_only_open_unexpired_ones_at_a_time(b: &impl Backend) {
    let store = b.open();
    let (g, other) = (gun("registry.example/app"), gun("registry.example/other"));
    let create = |body: &str, ttl: i64| {
        store
            .create_proposal(&g, &new_proposal(body, NOW.add_seconds(ttl)), NOW)
            .expect("create")
    };
    let p1 = create("p1", 100);
    let p2 = create("p2", 10);
    store
        .create_proposal(&other, &new_proposal("o1", NOW.add_seconds(100)), NOW)
        .expect("create other");
    let p3 = create("p3", 100);
    let p4 = create("p4", 100);
    let p5 = create("p5", 100);
    store
        .close_proposal(
            &g,
            closing(p4, 0, "alice", "withdrawn", "withdrawn summary"),
            NOW,
        )
        .expect("withdraw p4");
    store
        .publish_proposal(
            &g,
            None,
            &[file("root", 1), file("timestamp", 1)],
            closing(p5, 0, "alice", "published", "published summary"),
            NOW,
        )
        .expect("publish p5");

    let list = |open_at: Option<Timestamp>, limit: usize| {
        ids(&store.proposals(&g, open_at, limit).expect("list"))
    };
    assert_eq!(list(None, 10), vec![p5, p4, p3, p2, p1]);
    assert_eq!(list(None, 2), vec![p5, p4]);
    assert_eq!(list(None, 0), Vec::<i64>::new());
    assert_eq!(list(None, usize::MAX), vec![p5, p4, p3, p2, p1]);
    // Open ones only: not the withdrawn or published, and not once expired (expiring at
    // the time given counts as expired).
    assert_eq!(list(Some(NOW), 10), vec![p3, p2, p1]);
    assert_eq!(list(Some(NOW.add_seconds(9)), 10), vec![p3, p2, p1]);
    assert_eq!(list(Some(NOW.add_seconds(10)), 10), vec![p3, p1]);
    assert_eq!(list(Some(NOW.add_seconds(10)), 1), vec![p3]);
    assert_eq!(list(Some(NOW.add_seconds(100)), 10), Vec::<i64>::new());
    assert_eq!(
        store
            .proposals(&gun("registry.example/none"), None, 10)
            .expect("list"),
        vec![]
    );
    // Every field reads back in the list as by id, but the body: a list reads the summary
    // and leaves the body empty, which the proposal by id holds.
    let listed = store.proposals(&g, None, 10).expect("list");
    for p in &listed {
        let one = stored_proposal(&store, &g, p.id);
        assert!(p.body.is_empty(), "{p:?}");
        assert!(!one.body.is_empty(), "{one:?}");
        assert_eq!(
            p,
            &StoredProposal {
                body: Vec::new(),
                ..one
            }
        );
    }
    let summaries: Vec<Vec<u8>> = listed.into_iter().map(|p| p.summary).collect();
    assert_eq!(
        summaries,
        [
            "published summary",
            "withdrawn summary",
            "p3 summary",
            "p2 summary",
            "p1 summary"
        ]
        .map(|s| s.as_bytes().to_vec())
    );
    let open = store.proposals(&g, Some(NOW), 10).expect("list open");
    assert!(open.iter().all(|p| p.body.is_empty()), "{open:?}");
    assert_eq!(open[0].summary, b"p3 summary".to_vec());
}

fn a_list_of_large_proposals_reads_only_their_summaries(b: &impl Backend) {
    let store = b.open();
    let g = gun("registry.example/app");
    let large = NewProposal {
        body: vec![b'x'; 4 << 20],
        summary: b"large".to_vec(),
        proposed_by: "alice".to_owned(),
        expires_at: NOW.add_seconds(60),
    };
    let ids: Vec<i64> = (0..3)
        .map(|_| store.create_proposal(&g, &large, NOW).expect("create"))
        .collect();
    for open_at in [None, Some(NOW)] {
        let listed = store.proposals(&g, open_at, 10).expect("list");
        assert_eq!(listed.len(), 3);
        for p in &listed {
            assert_eq!((p.body.len(), p.summary.as_slice()), (0, &b"large"[..]));
        }
    }
    let one = stored_proposal(&store, &g, ids[1]);
    assert_eq!(
        (one.body, one.summary),
        (large.body.clone(), large.summary.clone())
    );
}

fn amending_a_proposal_needs_its_current_revision(b: &impl Backend) {
    let store = b.open();
    let g = gun("registry.example/app");
    let id = store
        .create_proposal(&g, &new_proposal("v0", NOW.add_seconds(60)), NOW)
        .expect("create");
    store
        .amend_proposal(&g, id, 0, b"v1", b"v1 summary")
        .expect("amend 0");
    let amended = stored_proposal(&store, &g, id);
    assert_eq!((amended.revision, amended.body.as_slice()), (1, &b"v1"[..]));
    assert_eq!(amended.summary, b"v1 summary".to_vec());
    let listed = store.proposals(&g, None, 10).expect("list");
    assert_eq!(
        (listed[0].body.as_slice(), listed[0].summary.as_slice()),
        (&b""[..], &b"v1 summary"[..])
    );

    // A writer that read revision 0 lost: nothing changes.
    assert!(is_changed(
        &store.amend_proposal(&g, id, 0, b"stale", b"stale summary"),
        id
    ));
    assert!(is_changed(
        &store.amend_proposal(&g, id, 7, b"ahead", b"ahead summary"),
        id
    ));
    assert!(is_changed(
        &store.amend_proposal(&g, id, u64::MAX, b"out of range", b"out of range summary"),
        id
    ));
    assert_eq!(stored_proposal(&store, &g, id), amended);

    store
        .amend_proposal(&g, id, 1, b"v2", b"v2 summary")
        .expect("amend 1");
    let again = stored_proposal(&store, &g, id);
    assert_eq!((again.revision, again.body.as_slice()), (2, &b"v2"[..]));
    assert_eq!(again.summary, b"v2 summary".to_vec());
    assert_eq!(
        (again.state, again.created_at, again.closed_at),
        (ProposalState::Open, NOW, None)
    );
}

fn a_proposal_closes_once(b: &impl Backend) {
    let store = b.open();
    let g = gun("registry.example/app");
    let id = store
        .create_proposal(&g, &new_proposal("v0", NOW.add_seconds(60)), NOW)
        .expect("create");
    store
        .amend_proposal(&g, id, 0, b"v1", b"v1 summary")
        .expect("amend");
    // Closing needs the current revision too.
    assert!(is_changed(
        &store.close_proposal(&g, closing(id, 0, "bob", "stale", "stale summary"), NOW),
        id
    ));
    assert_eq!(stored_proposal(&store, &g, id).state, ProposalState::Open);

    let at = NOW.add_seconds(5);
    store
        .close_proposal(&g, closing(id, 1, "bob", "final", "final summary"), at)
        .expect("withdraw");
    let closed = stored_proposal(&store, &g, id);
    assert_eq!(closed.state, ProposalState::Withdrawn);
    assert_eq!(closed.revision, 1);
    assert_eq!(closed.body, b"final".to_vec());
    assert_eq!(closed.summary, b"final summary".to_vec());
    assert_eq!(
        store.proposals(&g, None, 10).expect("list")[0].summary,
        b"final summary".to_vec()
    );
    assert_eq!(closed.closed_at, Some(at));
    assert_eq!(closed.closed_by.as_deref(), Some("bob"));
    assert_eq!(closed.proposed_by, "alice");

    // Closed is final: no second close, no amendment, no publish.
    assert!(is_changed(
        &store.close_proposal(&g, closing(id, 1, "carol", "again", "again summary"), at),
        id
    ));
    assert!(is_changed(
        &store.amend_proposal(&g, id, 1, b"late", b"late summary"),
        id
    ));
    let publish = store.publish_proposal(
        &g,
        None,
        &[file("root", 1), file("timestamp", 1)],
        closing(id, 1, "carol", "late", "late summary"),
        at,
    );
    assert!(is_changed(&publish, id), "{publish:?}");
    assert_eq!(stored_proposal(&store, &g, id), closed);
    assert_eq!(store.current(&g).expect("current"), vec![]);
    assert_eq!(all_changes(&store, None), vec![]);
}

fn publishing_a_proposal_is_atomic(b: &impl Backend) {
    let store = b.open();
    let g = gun("registry.example/app");
    let first = store
        .publish(
            &g,
            None,
            &[file("root", 1), file("snapshot", 1), file("timestamp", 1)],
            NOW,
        )
        .expect("publish 1");
    let id = store
        .create_proposal(&g, &new_proposal("v0", NOW.add_seconds(600)), NOW)
        .expect("create");
    store
        .amend_proposal(&g, id, 0, b"v1", b"v1 summary")
        .expect("amend");
    let before = stored_proposal(&store, &g, id);
    let files = [file("root", 2), file("snapshot", 2), file("timestamp", 2)];
    let nothing_written = |store: &dyn Store| {
        assert_eq!(
            store
                .get_current(&g, "timestamp")
                .expect("get")
                .map(|f| f.version),
            Some(1)
        );
        assert_eq!(store.get_version(&g, "root", 2).expect("get"), None);
        assert_eq!(
            store
                .changes(None, None, Direction::Forward, usize::MAX)
                .expect("changes")
                .iter()
                .map(|c| c.id)
                .collect::<Vec<_>>(),
            vec![first]
        );
        assert_eq!(store.proposal(&g, id).expect("read"), Some(before.clone()));
    };

    // Another writer published first: a conflict, and the proposal stays open as it was.
    let stale = store.publish_proposal(
        &g,
        None,
        &files,
        closing(id, 1, "carol", "signed", "signed summary"),
        NOW,
    );
    assert!(is_conflict_on(&stale, "timestamp", 1), "{stale:?}");
    let stale = store.publish_proposal(
        &g,
        Some(0),
        &files,
        closing(id, 1, "carol", "signed", "signed summary"),
        NOW,
    );
    assert!(is_conflict_on(&stale, "timestamp", 1), "{stale:?}");
    nothing_written(&store);
    // A file that conflicts after the compare-and-swap passed rolls the proposal back too.
    let clash = store.publish_proposal(
        &g,
        Some(1),
        &[file("timestamp", 2), file("root", 1)],
        closing(id, 1, "carol", "signed", "signed summary"),
        NOW,
    );
    assert!(is_conflict_on(&clash, "root", 1), "{clash:?}");
    nothing_written(&store);
    // Another signer amended it since: nothing is published.
    let amended = store.publish_proposal(
        &g,
        Some(1),
        &files,
        closing(id, 0, "carol", "signed", "signed summary"),
        NOW,
    );
    assert!(is_changed(&amended, id), "{amended:?}");
    nothing_written(&store);

    let at = NOW.add_seconds(60);
    let change = store
        .publish_proposal(
            &g,
            Some(1),
            &files,
            closing(id, 1, "carol", "signed", "signed summary"),
            at,
        )
        .expect("publish the proposal");
    let changes = all_changes(&store, None);
    assert_eq!(
        changes.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![first, change]
    );
    assert_eq!(
        (changes[1].version, changes[1].sha256.as_str()),
        (2, sha256_hex(&files[2].bytes).as_str())
    );
    assert_eq!(
        store
            .get_version(&g, "root", 2)
            .expect("get")
            .map(|f| f.bytes),
        Some(files[0].bytes.clone())
    );
    let published = stored_proposal(&store, &g, id);
    assert_eq!(published.state, ProposalState::Published(change));
    assert_eq!(published.body, b"signed".to_vec());
    assert_eq!(published.summary, b"signed summary".to_vec());
    assert_eq!(
        store.proposals(&g, None, 10).expect("list")[0].summary,
        b"signed summary".to_vec()
    );
    assert_eq!(published.closed_by.as_deref(), Some("carol"));
    assert_eq!(published.closed_at, Some(at));
    assert_eq!(published.revision, 1);

    // Published once: a second publish of it writes nothing.
    let again = store.publish_proposal(
        &g,
        Some(2),
        &[file("timestamp", 3)],
        closing(id, 1, "carol", "again", "again summary"),
        at,
    );
    assert!(is_changed(&again, id), "{again:?}");
    assert_eq!(current_version(&store, &g, "timestamp"), Some(2));
    assert_eq!(all_changes(&store, None).len(), 2);
    // The plain publish still works after it, on the version the proposal wrote.
    store
        .publish(&g, Some(2), &[file("timestamp", 3)], at)
        .expect("publish 3");
}

fn delete_removes_the_repositorys_proposals(b: &impl Backend) {
    let store = b.open();
    let (g, other, bare) = (
        gun("registry.example/app"),
        gun("registry.example/other"),
        gun("registry.example/never-published"),
    );
    let later = NOW.add_seconds(600);
    store
        .publish(&g, None, &[file("root", 1), file("timestamp", 1)], NOW)
        .expect("publish");
    let open = store
        .create_proposal(&g, &new_proposal("open", later), NOW)
        .expect("create");
    let withdrawn = store
        .create_proposal(&g, &new_proposal("withdrawn", later), NOW)
        .expect("create");
    store
        .close_proposal(&g, closing(withdrawn, 0, "alice", "w", "w summary"), NOW)
        .expect("withdraw");
    let kept = store
        .create_proposal(&other, &new_proposal("kept", later), NOW)
        .expect("create other");
    let unpublished = store
        .create_proposal(&bare, &new_proposal("first root", later), NOW)
        .expect("create bare");

    assert!(store.delete(&g, NOW).expect("delete"));
    assert_eq!(store.proposals(&g, None, 10).expect("list"), vec![]);
    assert_eq!(store.proposal(&g, open).expect("read"), None);
    assert_eq!(store.proposal(&g, withdrawn).expect("read"), None);
    assert_eq!(stored_proposal(&store, &other, kept).body, b"kept".to_vec());

    // A repository with proposals but no metadata: nothing to delete, yet its proposals
    // go, and no deletion is recorded.
    let feed = all_changes(&store, None).len();
    assert!(!store.delete(&bare, NOW).expect("delete bare"));
    assert_eq!(store.proposal(&bare, unpublished).expect("read"), None);
    assert_eq!(all_changes(&store, None).len(), feed);

    // Ids are not reused after the newest proposal was deleted.
    let next = store
        .create_proposal(&g, &new_proposal("again", later), NOW)
        .expect("create again");
    assert!(next > unpublished, "{next} after {unpublished}");
}

fn export_then_import_round_trips_proposals<B: Backend>(b: &B) {
    let source = b.open();
    let g = gun("registry.example/app");
    let later = NOW.add_seconds(600);
    store_some_of_everything(&source, &g, later);
    let mut exported = Vec::new();
    source
        .export(&mut |record| {
            exported.push(record);
            Ok(())
        })
        .expect("export");
    // Proposals come last, in id order, after the online keys.
    let kinds: Vec<&str> = exported
        .iter()
        .map(|r| match r {
            Record::File { .. } => "file",
            Record::Change(_) => "change",
            Record::Key { .. } => "key",
            Record::Proposal(_) => "proposal",
            Record::WebhookCursor(_) => "webhook cursor",
        })
        .collect();
    let first_proposal = kinds
        .iter()
        .position(|k| *k == "proposal")
        .expect("proposals");
    assert!(
        kinds[first_proposal..].iter().all(|k| *k == "proposal"),
        "{kinds:?}"
    );
    assert_eq!(kinds[first_proposal - 1], "key", "{kinds:?}");
    let exported_ids: Vec<i64> = exported
        .iter()
        .filter_map(|r| match r {
            Record::Proposal(p) => Some(p.id),
            _ => None,
        })
        .collect();
    assert_eq!(exported_ids.len(), 4);
    // The export carries each proposal's body and summary, as written last.
    let contents: Vec<(&[u8], &[u8])> = exported
        .iter()
        .filter_map(|r| match r {
            Record::Proposal(p) => Some((p.body.as_slice(), p.summary.as_slice())),
            _ => None,
        })
        .collect();
    assert_eq!(
        contents,
        vec![
            (&b"amended twice"[..], &b"amended twice summary"[..]),
            (&b"w"[..], &b"w summary"[..]),
            (&b"p"[..], &b"p summary"[..]),
            (&b"other"[..], &b"other summary"[..]),
        ]
    );
    assert!(
        exported_ids.windows(2).all(|w| w[0] < w[1]),
        "{exported_ids:?}"
    );
    let max_id = *exported_ids.last().expect("ids");

    let place = B::create();
    let target = place.open();
    let n = target
        .import(&mut exported.clone().into_iter().map(Ok))
        .expect("import");
    assert_eq!(n, exported.len() as u64);
    let mut read_back = Vec::new();
    target
        .export(&mut |record| {
            read_back.push(record);
            Ok(())
        })
        .expect("export the copy");
    assert_eq!(read_back, exported);
    // Each proposal reads back from the copy with its body and summary.
    for record in &exported {
        if let Record::Proposal(p) = record {
            let copy = stored_proposal(&target, &gun(&p.gun), p.id);
            assert_eq!(&copy, p);
        }
    }
    assert_eq!(
        target.proposals(&g, None, 10).expect("list"),
        source.proposals(&g, None, 10).expect("list")
    );
    // New proposals continue after the largest id copied, also after a restart.
    drop(target);
    let target = place.open();
    let next = target
        .create_proposal(&g, &new_proposal("after the copy", later), NOW)
        .expect("create after import");
    assert!(next > max_id, "{next} after {max_id}");

    // A target holding only a proposal is not empty: nothing is written.
    let busy_place = B::create();
    let busy = busy_place.open();
    let own = busy
        .create_proposal(&g, &new_proposal("own", later), NOW)
        .expect("create");
    let refused = busy.import(&mut exported.clone().into_iter().map(Ok));
    assert!(
        matches!(&refused, Err(StoreError::Backend(m)) if m.contains("empty")),
        "{refused:?}"
    );
    assert_eq!(ids(&busy.proposals(&g, None, 10).expect("list")), vec![own]);
    assert_eq!(busy.current(&g).expect("current"), vec![]);
}

/// Files, changes, an online key and proposals of `g` in every state: open (amended),
/// withdrawn and published, plus one of another repository.
fn store_some_of_everything(store: &impl Store, g: &Gun, later: Timestamp) {
    store
        .publish(g, None, &[file("root", 1), file("timestamp", 1)], NOW)
        .expect("publish");
    store
        .add_online_key(g, "timestamp", &key("k1", 5), None)
        .expect("key");
    let open = store
        .create_proposal(g, &new_proposal("open", later), NOW)
        .expect("create");
    store
        .amend_proposal(g, open, 0, b"amended", b"amended summary")
        .expect("amend");
    store
        .amend_proposal(g, open, 1, b"amended twice", b"amended twice summary")
        .expect("amend");
    let withdrawn = store
        .create_proposal(g, &new_proposal("withdrawn", later), NOW.add_seconds(1))
        .expect("create");
    store
        .close_proposal(
            g,
            closing(withdrawn, 0, "bob", "w", "w summary"),
            NOW.add_seconds(2),
        )
        .expect("withdraw");
    let published = store
        .create_proposal(g, &new_proposal("published", later), NOW.add_seconds(3))
        .expect("create");
    store
        .publish_proposal(
            g,
            Some(1),
            &[file("timestamp", 2)],
            closing(published, 0, "carol", "p", "p summary"),
            NOW.add_seconds(4),
        )
        .expect("publish proposal");
    store
        .create_proposal(
            &gun("registry.example/other"),
            &new_proposal("other", later),
            NOW,
        )
        .expect("create other");
}

fn racing_amendments_of_one_revision_get_one_success(b: &impl Backend) {
    // Two store objects on one place stand in for two replicas.
    const THREADS: usize = 8;
    let stores = [Arc::new(b.open()), Arc::new(b.open())];
    let g = gun("registry.example/app");
    let id = stores[0]
        .create_proposal(&g, &new_proposal("v0", NOW.add_seconds(600)), NOW)
        .expect("create");
    for round in 0..3_u64 {
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (store, g, barrier) =
                    (Arc::clone(&stores[i % 2]), g.clone(), Arc::clone(&barrier));
                thread::spawn(move || {
                    let body = format!("round {round} writer {i}");
                    let summary = format!("{body} summary");
                    barrier.wait();
                    // In the last round half the writers withdraw instead: still one wins.
                    let result = if round == 2 && i % 4 == 3 {
                        store.close_proposal(&g, closing(id, round, "w", &body, &summary), NOW)
                    } else {
                        store.amend_proposal(&g, id, round, body.as_bytes(), summary.as_bytes())
                    };
                    (body, result)
                })
            })
            .collect();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        let winners: Vec<&String> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(body, _)| body)
            .collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        assert!(
            results.iter().all(|(_, r)| r.is_ok() || is_changed(r, id)),
            "{results:?}"
        );
        let stored = stored_proposal(&*stores[1], &g, id);
        assert_eq!(stored.body, winners[0].as_bytes());
        // The winner's body and summary, never one writer's body with another's summary.
        assert_eq!(
            stored.summary,
            format!("{} summary", winners[0]).into_bytes()
        );
        if stored.state == ProposalState::Withdrawn {
            assert_eq!(stored.revision, round);
            return;
        }
        assert_eq!(stored.revision, round + 1);
    }
}

fn a_database_at_the_first_schema_migrates_and_keeps_its_data<B: Backend>(b: &B) {
    let g = gun("registry.example/app");
    let id = {
        let store = b.open();
        let id = store
            .publish(&g, None, &[file("root", 1), file("timestamp", 1)], NOW)
            .expect("publish");
        store
            .add_online_key(&g, "timestamp", &key("k1", 3), None)
            .expect("key");
        id
    };
    // What a server of the release before proposals left behind.
    b.downgrade_to_schema(1);
    let store = b.open();
    assert_eq!(current_version(&store, &g, "root"), Some(1));
    assert_eq!(
        all_changes(&store, None)
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        vec![id]
    );
    assert_eq!(store.online_keys(&g, "timestamp").expect("keys").len(), 1);
    let proposal = store
        .create_proposal(&g, &new_proposal("first", NOW.add_seconds(60)), NOW)
        .expect("create after migrating");
    let change = store
        .publish_proposal(
            &g,
            Some(1),
            &[file("timestamp", 2)],
            closing(proposal, 0, "alice", "done", "done summary"),
            NOW,
        )
        .expect("publish proposal after migrating");
    assert_eq!(change, id + 1);
    // A second open finds the schema current and changes nothing.
    drop(store);
    let store = b.open();
    assert_eq!(
        stored_proposal(&store, &g, proposal).state,
        ProposalState::Published(change)
    );
}

/// What [`Change::roles`] holds.
type Roles = Vec<(String, u64)>;

/// `(role, version)` pairs as [`Change::roles`] holds them.
fn roles(pairs: &[(&str, u64)]) -> Roles {
    pairs.iter().map(|(r, v)| ((*r).to_owned(), *v)).collect()
}

fn changes_record_the_roles_each_change_wrote(b: &impl Backend) {
    let store = b.open();
    let g = gun("registry.example/app");
    // Role names with what a naive encoding would split on or choke on.
    let odd = r#"targets/team@x,y"q\"#;
    let first = [
        file("timestamp", 1),
        file(odd, 1),
        file("root", 1),
        file("targets", 1),
    ];
    let published = store.publish(&g, None, &first, NOW).expect("publish");
    let proposal = store
        .create_proposal(&g, &new_proposal("p", NOW.add_seconds(600)), NOW)
        .expect("create");
    let by_proposal = store
        .publish_proposal(
            &g,
            Some(1),
            &[
                file("targets", 2),
                file("timestamp", 2),
                file("snapshot", 1),
            ],
            closing(proposal, 0, "alice", "p", "p summary"),
            NOW.add_seconds(1),
        )
        .expect("publish proposal");
    assert!(store.delete(&g, NOW.add_seconds(2)).expect("delete"));

    let feed = all_changes(&store, None);
    let seen: Vec<(i64, ChangeCategory, Roles)> = feed
        .iter()
        .map(|c| (c.id, c.category, c.roles.clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                published,
                ChangeCategory::Update,
                roles(&[("root", 1), ("targets", 1), (odd, 1), ("timestamp", 1)])
            ),
            (
                by_proposal,
                ChangeCategory::Update,
                roles(&[("snapshot", 1), ("targets", 2), ("timestamp", 2)])
            ),
            (feed[2].id, ChangeCategory::Deletion, vec![]),
        ]
    );
    // Every way of reading the feed, by another replica too, carries the same roles.
    let replica = b.open();
    let mut backward = replica
        .changes(Some(&g), None, Direction::Backward, 10)
        .expect("changes");
    backward.reverse();
    assert_eq!(backward, feed);
    assert_eq!(
        replica
            .changes(None, Some(published), Direction::Forward, 1)
            .expect("changes"),
        vec![feed[1].clone()]
    );
}

fn unreadable_roles_are_a_backend_error(b: &impl Backend) {
    let store = b.open();
    let g = gun("registry.example/app");
    let id = store
        .publish(&g, None, &[file("root", 1)], NOW)
        .expect("publish");
    for damaged in [r#"[["root","#, r#"[["root",-1]]"#, r#"{"root":1}"#] {
        b.raw_sql(&format!(
            "UPDATE changefeed SET roles = '{damaged}' WHERE id = {id}"
        ));
        let read = store.changes(None, None, Direction::Forward, 10);
        assert!(
            matches!(&read, Err(StoreError::Backend(m)) if m.contains("roles")),
            "{damaged}: {read:?}"
        );
        let exported = store.export(&mut |_| Ok(()));
        assert!(
            matches!(&exported, Err(StoreError::Backend(_))),
            "{damaged}: {exported:?}"
        );
    }
    // The empty text and an empty list both read as no roles.
    for none in ["", "[]"] {
        b.raw_sql(&format!(
            "UPDATE changefeed SET roles = '{none}' WHERE id = {id}"
        ));
        assert_eq!(all_changes(&store, None)[0].roles, vec![], "{none:?}");
    }
}

fn a_database_at_the_second_schema_migrates_with_empty_roles<B: Backend>(b: &B) {
    let g = gun("registry.example/app");
    let (id, proposal) = {
        let store = b.open();
        let id = store
            .publish(&g, None, &[file("root", 1), file("timestamp", 1)], NOW)
            .expect("publish");
        let proposal = store
            .create_proposal(&g, &new_proposal("kept", NOW.add_seconds(600)), NOW)
            .expect("create");
        (id, proposal)
    };
    // What a server of the release before the changefeed's roles left behind.
    b.downgrade_to_schema(2);
    let store = b.open();
    let old = all_changes(&store, None);
    assert_eq!(
        old.iter()
            .map(|c| (c.id, c.version, c.roles.clone()))
            .collect::<Vec<_>>(),
        vec![(id, 1, vec![])],
        "an entry written before roles were recorded has none"
    );
    assert_eq!(
        stored_proposal(&store, &g, proposal).state,
        ProposalState::Open
    );
    assert_eq!(store.webhook_cursors().expect("cursors"), vec![]);
    // New entries record their roles, and webhook cursors are kept.
    let next = store
        .publish(&g, Some(1), &[file("timestamp", 2)], NOW)
        .expect("publish after migrating");
    assert!(store
        .claim_webhook("ci", "a", next, NOW, NOW.add_seconds(30))
        .expect("claim after migrating")
        .is_some());
    // A second open finds the schema current and changes nothing.
    drop(store);
    let store = b.open();
    let feed = all_changes(&store, None);
    assert_eq!(feed[0], old[0]);
    assert_eq!(feed[1].roles, roles(&[("timestamp", 2)]));
    assert_eq!(store.webhook_cursors().expect("cursors").len(), 1);
}

/// The state a new subscription `name` has under its first claimer `owner`.
fn fresh_cursor(name: &str, owner: &str, cursor: i64, until: Timestamp) -> WebhookCursor {
    WebhookCursor {
        name: name.to_owned(),
        cursor,
        attempts: 0,
        next_attempt_at: None,
        dead: false,
        last_error: None,
        last_delivered_at: None,
        lease_owner: Some(owner.to_owned()),
        lease_until: Some(until),
    }
}

fn claim(
    store: &impl Store,
    name: &str,
    owner: &str,
    start: i64,
    now: Timestamp,
    until: Timestamp,
) -> Option<WebhookCursor> {
    store
        .claim_webhook(name, owner, start, now, until)
        .expect("claim webhook")
}

fn a_new_webhook_cursor_starts_at_start_under_its_first_claimer(b: &impl Backend) {
    let store = b.open();
    assert_eq!(store.webhook_cursors().expect("cursors"), vec![]);
    let until = NOW.add_seconds(30);
    let first = fresh_cursor("ci", "replica-a", 41, until);
    assert_eq!(
        claim(&store, "ci", "replica-a", 41, NOW, until),
        Some(first.clone())
    );
    // The owner renews (a later `until`); `start` counts only when the row is created.
    let renewed = claim(
        &store,
        "ci",
        "replica-a",
        99,
        NOW.add_seconds(10),
        NOW.add_seconds(40),
    );
    assert_eq!(
        renewed,
        Some(WebhookCursor {
            lease_until: Some(NOW.add_seconds(40)),
            ..first.clone()
        })
    );
    // Saved progress is what the next claim returns.
    let progressed = WebhookCursor {
        cursor: 45,
        last_delivered_at: Some(NOW.add_seconds(11)),
        ..renewed.expect("renewed")
    };
    assert!(store.save_webhook("replica-a", &progressed).expect("save"));
    let again = claim(
        &store,
        "ci",
        "replica-a",
        0,
        NOW.add_seconds(12),
        NOW.add_seconds(50),
    );
    assert_eq!(
        again,
        Some(WebhookCursor {
            lease_until: Some(NOW.add_seconds(50)),
            ..progressed
        })
    );
    // Another subscription is its own row, from its own start.
    let audit = claim(&store, "audit", "replica-b", 7, NOW, until);
    assert_eq!(audit, Some(fresh_cursor("audit", "replica-b", 7, until)));
    // Every replica lists them all, by name.
    let listed = b.open().webhook_cursors().expect("cursors");
    assert_eq!(
        listed,
        vec![audit.expect("audit"), again.expect("ci")],
        "ordered by name"
    );
}

fn a_live_lease_is_refused_to_another_owner_until_it_expires(b: &impl Backend) {
    let (store, replica) = (b.open(), b.open());
    let until = NOW.add_seconds(30);
    let held = claim(&store, "ci", "a", 3, NOW, until).expect("first claim");
    assert_eq!(
        claim(&replica, "ci", "b", 0, NOW, NOW.add_seconds(60)),
        None
    );
    assert_eq!(
        claim(
            &replica,
            "ci",
            "b",
            0,
            NOW.add_seconds(29),
            NOW.add_seconds(60)
        ),
        None,
        "a second before the lease expires"
    );
    // The refused claims wrote nothing.
    assert_eq!(
        store.webhook_cursors().expect("cursors"),
        vec![held.clone()]
    );
    // From its expiry on, another owner takes it over, cursor and all.
    let taken = claim(&replica, "ci", "b", 0, until, until.add_seconds(30));
    assert_eq!(
        taken,
        Some(WebhookCursor {
            lease_owner: Some("b".to_owned()),
            lease_until: Some(until.add_seconds(30)),
            ..held
        })
    );
    // Now the first owner is refused while the new lease lives, and cannot renew its own.
    assert_eq!(
        claim(
            &store,
            "ci",
            "a",
            0,
            until.add_seconds(1),
            until.add_seconds(60)
        ),
        None
    );
    assert_eq!(
        store.webhook_cursors().expect("cursors"),
        vec![taken.expect("taken")]
    );
}

fn a_save_after_a_takeover_writes_nothing(b: &impl Backend) {
    let (store, replica) = (b.open(), b.open());
    let held = claim(&store, "ci", "a", 10, NOW, NOW.add_seconds(30)).expect("claim");
    // The lease expired unrenewed, but nobody took it over: the owner may still save.
    let delivered = WebhookCursor {
        cursor: 11,
        last_delivered_at: Some(NOW.add_seconds(40)),
        ..held
    };
    assert!(store.save_webhook("a", &delivered).expect("save"));
    let taken = claim(
        &replica,
        "ci",
        "b",
        0,
        NOW.add_seconds(40),
        NOW.add_seconds(70),
    )
    .expect("take over");
    assert_eq!(
        (taken.cursor, taken.last_delivered_at),
        (11, Some(NOW.add_seconds(40)))
    );
    // The first owner, unaware, saves progress and a failure: refused, nothing written.
    let stale = WebhookCursor {
        cursor: 12,
        attempts: 3,
        next_attempt_at: Some(NOW.add_seconds(100)),
        dead: true,
        last_error: Some("HTTP 500".to_owned()),
        last_delivered_at: Some(NOW.add_seconds(45)),
        ..delivered
    };
    assert!(!store.save_webhook("a", &stale).expect("save"));
    assert_eq!(
        replica.webhook_cursors().expect("cursors"),
        vec![taken.clone()]
    );
    // The new owner's saves go through, and never write the lease fields given.
    let next = WebhookCursor {
        cursor: 12,
        attempts: 1,
        next_attempt_at: Some(NOW.add_seconds(50)),
        last_error: Some("HTTP 503".to_owned()),
        lease_owner: Some("someone else".to_owned()),
        lease_until: Some(NOW),
        ..taken.clone()
    };
    assert!(replica.save_webhook("b", &next).expect("save"));
    assert_eq!(
        store.webhook_cursors().expect("cursors"),
        vec![WebhookCursor {
            lease_owner: taken.lease_owner.clone(),
            lease_until: taken.lease_until,
            ..next.clone()
        }]
    );
    // A subscription without a row is not saved (nor created).
    let missing = WebhookCursor {
        name: "missing".to_owned(),
        ..next
    };
    assert!(!replica.save_webhook("b", &missing).expect("save"));
    assert_eq!(store.webhook_cursors().expect("cursors").len(), 1);
}

fn resuming_clears_a_dead_subscription(b: &impl Backend) {
    let store = b.open();
    let held = claim(&store, "ci", "a", 3, NOW, NOW.add_seconds(30)).expect("claim");
    let dead = WebhookCursor {
        cursor: 5,
        attempts: 8,
        next_attempt_at: Some(NOW.add_seconds(3600)),
        dead: true,
        last_error: Some("connection refused".to_owned()),
        last_delivered_at: Some(NOW),
        ..held
    };
    assert!(store.save_webhook("a", &dead).expect("save"));
    assert_eq!(
        store.webhook_cursors().expect("cursors"),
        vec![dead.clone()]
    );
    // An operator on another replica resumes it: the cursor, last error and lease stay.
    assert!(b.open().resume_webhook("ci").expect("resume"));
    assert_eq!(
        store.webhook_cursors().expect("cursors"),
        vec![WebhookCursor {
            attempts: 0,
            next_attempt_at: None,
            dead: false,
            ..dead
        }]
    );
    assert!(!store.resume_webhook("missing").expect("resume"));
    assert_eq!(store.webhook_cursors().expect("cursors").len(), 1);
}

fn racing_webhook_claims_get_one_lease(b: &impl Backend) {
    // Two store objects on one place stand in for two replicas.
    const THREADS: usize = 4;
    let stores = [Arc::new(b.open()), Arc::new(b.open())];
    for round in 0..6 {
        let name = format!("hook-{round}");
        // Even rounds race to create the row; odd ones to take over an expired lease.
        if round % 2 == 1 {
            claim(&*stores[0], &name, "earlier", 0, NOW, NOW).expect("expired lease");
        }
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (store, name, barrier) = (
                    Arc::clone(&stores[i % 2]),
                    name.clone(),
                    Arc::clone(&barrier),
                );
                thread::spawn(move || {
                    let owner = format!("owner-{i}");
                    barrier.wait();
                    let got = store
                        .claim_webhook(&name, &owner, 0, NOW.add_seconds(1), NOW.add_seconds(60))
                        .expect("claim");
                    (owner, got)
                })
            })
            .collect();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        let winners: Vec<&String> = results
            .iter()
            .filter(|(_, got)| got.is_some())
            .map(|(owner, _)| owner)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let stored = stores[1]
            .webhook_cursors()
            .expect("cursors")
            .into_iter()
            .find(|c| c.name == name)
            .expect("row");
        assert_eq!(stored.lease_owner.as_ref(), Some(winners[0]));
        assert_eq!(stored.lease_until, Some(NOW.add_seconds(60)));
    }
}

fn webhook_cursors_outlive_repository_deletion(b: &impl Backend) {
    let store = b.open();
    let g = gun("registry.example/app");
    let id = store
        .publish(&g, None, &[file("root", 1), file("timestamp", 1)], NOW)
        .expect("publish");
    let held = claim(&store, "ci", "a", 0, NOW, NOW.add_seconds(30)).expect("claim");
    let delivered = WebhookCursor {
        cursor: id,
        last_delivered_at: Some(NOW),
        ..held
    };
    assert!(store.save_webhook("a", &delivered).expect("save"));
    assert!(store.delete(&g, NOW).expect("delete"));
    assert_eq!(store.webhook_cursors().expect("cursors"), vec![delivered]);
}

fn export_then_import_round_trips_roles_and_webhook_cursors<B: Backend>(b: &B) {
    let source = b.open();
    let g = gun("registry.example/app");
    store_some_of_everything(&source, &g, NOW.add_seconds(600));
    let gone = gun("registry.example/gone");
    source
        .publish(&gone, None, &[file("root", 1)], NOW)
        .expect("publish");
    assert!(source.delete(&gone, NOW).expect("delete"));
    let ci = claim(&source, "ci", "a", 0, NOW, NOW.add_seconds(30)).expect("claim");
    let ci = WebhookCursor {
        cursor: 2,
        attempts: 4,
        next_attempt_at: Some(NOW.add_seconds(90)),
        dead: true,
        last_error: Some("HTTP 502".to_owned()),
        last_delivered_at: Some(NOW.add_seconds(5)),
        ..ci
    };
    assert!(source.save_webhook("a", &ci).expect("save"));
    let audit = claim(&source, "audit", "b", 1, NOW, NOW.add_seconds(30)).expect("claim");
    let mut exported = Vec::new();
    source
        .export(&mut |record| {
            exported.push(record);
            Ok(())
        })
        .expect("export");
    // The cursors come last, by name; the changes carry their roles.
    let n = exported.len();
    assert_eq!(
        exported[n - 2..],
        [
            Record::WebhookCursor(audit.clone()),
            Record::WebhookCursor(ci.clone())
        ]
    );
    assert!(matches!(&exported[n - 3], Record::Proposal(_)));
    let change_roles: Vec<Roles> = exported
        .iter()
        .filter_map(|r| match r {
            Record::Change(c) => Some(c.roles.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        change_roles,
        vec![
            roles(&[("root", 1), ("timestamp", 1)]),
            roles(&[("timestamp", 2)]),
            roles(&[("root", 1)]),
            vec![]
        ]
    );

    let place = B::create();
    let target = place.open();
    let written = target
        .import(&mut exported.clone().into_iter().map(Ok))
        .expect("import");
    assert_eq!(written, n as u64);
    let mut read_back = Vec::new();
    target
        .export(&mut |record| {
            read_back.push(record);
            Ok(())
        })
        .expect("export the copy");
    assert_eq!(read_back, exported);
    assert_eq!(all_changes(&target, None), all_changes(&source, None));
    assert_eq!(
        target.webhook_cursors().expect("cursors"),
        vec![audit.clone(), ci]
    );
    // The copied lease still holds: another owner waits for it to expire.
    assert_eq!(
        claim(&target, "audit", "c", 0, NOW, NOW.add_seconds(60)),
        None
    );

    // Records without roles or cursors (what a store from before them holds) import, as
    // entries without roles.
    let older: Vec<Record> = exported
        .iter()
        .filter(|r| !matches!(r, Record::WebhookCursor(_)))
        .cloned()
        .map(|r| match r {
            Record::Change(c) => Record::Change(Change { roles: vec![], ..c }),
            other => other,
        })
        .collect();
    let place = B::create();
    let target = place.open();
    target
        .import(&mut older.into_iter().map(Ok))
        .expect("import older records");
    assert!(all_changes(&target, None)
        .iter()
        .all(|c| c.roles.is_empty()));
    assert_eq!(target.webhook_cursors().expect("cursors"), vec![]);

    // A target holding only a webhook cursor is not empty: nothing is written.
    let busy_place = B::create();
    let busy = busy_place.open();
    claim(&busy, "own", "a", 0, NOW, NOW).expect("claim");
    let refused = busy.import(&mut exported.clone().into_iter().map(Ok));
    assert!(
        matches!(&refused, Err(StoreError::Backend(m)) if m.contains("empty")),
        "{refused:?}"
    );
    assert_eq!(all_changes(&busy, None), vec![]);
    assert_eq!(busy.webhook_cursors().expect("cursors").len(), 1);
}

/// `migrate-store`'s copy carries proposals, the changefeed's roles and webhook cursors from
/// SQLite into PostgreSQL and back, and both read back to one digest that counts them.
#[test]
fn migrate_store_carries_proposals_between_backends() {
    let g = gun("registry.example/app");
    let sqlite = Sqlite::create();
    let source = sqlite.open();
    store_some_of_everything(&source, &g, NOW.add_seconds(600));
    let postgres = Postgres::create();
    let target = postgres.open();
    claim(&source, "ci", "a", 1, NOW, NOW.add_seconds(30)).expect("claim");
    let copied = vouch_server::migrate_store(&source, &target).expect("migrate to postgres");
    assert_eq!((copied.proposals, copied.webhook_cursors), (4, 1));
    assert_eq!(
        target.proposals(&g, None, 10).expect("list"),
        source.proposals(&g, None, 10).expect("list")
    );
    // The changefeed keeps each entry's roles, and the webhook cursor its state and lease.
    assert_eq!(all_changes(&target, None), all_changes(&source, None));
    assert!(all_changes(&target, None)
        .iter()
        .all(|c| !c.roles.is_empty()));
    assert_eq!(
        target.webhook_cursors().expect("cursors"),
        source.webhook_cursors().expect("cursors")
    );
    let back = Sqlite::create();
    let copied_back =
        vouch_server::migrate_store(&target, &back.open()).expect("migrate back to sqlite");
    assert_eq!(copied_back, copied);
}

/// A PostgreSQL outage is `Unavailable` (retry later), and the same store object works
/// again once the database is back, without being recreated.
#[test]
fn postgres_outage_is_unavailable_and_the_store_reconnects() {
    let cluster = PgCluster::start();
    let url = cluster.fresh_database();
    let options = PgOptions::from_url(&url).expect("url").with_limits(
        4,
        Duration::from_secs(2),
        Duration::from_secs(5),
        Duration::from_secs(2),
    );
    let store = PostgresStore::open(options).expect("open");
    let g = gun("registry.example/app");
    store
        .publish(&g, None, &[file("root", 1), file("timestamp", 1)], NOW)
        .expect("publish");
    store.ping().expect("ping");

    cluster.stop();
    // The first call finds its pooled connection closed; the next ones cannot connect.
    for attempt in 0..3 {
        let read = store.get_current(&g, "root");
        assert!(
            matches!(read, Err(StoreError::Unavailable(_))),
            "read {attempt}: {read:?}"
        );
    }
    let ping = store.ping();
    assert!(matches!(ping, Err(StoreError::Unavailable(_))), "{ping:?}");
    let write = store.publish(&g, Some(1), &[file("timestamp", 2)], NOW);
    assert!(
        matches!(write, Err(StoreError::Unavailable(_))),
        "{write:?}"
    );

    cluster.start_again();
    assert_eq!(current_version(&store, &g, "root"), Some(1));
    store.ping().expect("ping after restart");
    store
        .publish(&g, Some(1), &[file("timestamp", 2)], NOW)
        .expect("publish after restart");
    assert_eq!(current_version(&store, &g, "timestamp"), Some(2));
}
