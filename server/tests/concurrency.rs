//! Concurrent publishers never fork a version, and acknowledged publishes survive a crash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Barrier};

use common::{ClientRepo, Server};
use reqwest::StatusCode;
use vouch_server::store::SqliteStore;
use vouch_tuf::metadata::{MetaFile, Metadata, Root, Snapshot, Targets, TimestampRole};
use vouch_tuf::types::TopLevelRole;

/// Checks the served chain end to end: root verifies itself; timestamp, snapshot and targets
/// verify under it; timestamp pins the served snapshot's bytes, snapshot the served targets'.
fn verify_chain(s: &Server, gun: &str) -> Metadata<Targets> {
    let root_b = s.current(gun, "root").unwrap();
    let root = Metadata::<Root>::from_bytes(&root_b).unwrap();
    let r = root.signed();
    r.verify_role(TopLevelRole::Root, &root).unwrap();
    let ts_b = s.current(gun, "timestamp").unwrap();
    let ts = Metadata::<TimestampRole>::from_bytes(&ts_b).unwrap();
    r.verify_role(TopLevelRole::Timestamp, &ts).unwrap();
    let snap_b = s.current(gun, "snapshot").unwrap();
    let snap = Metadata::<Snapshot>::from_bytes(&snap_b).unwrap();
    r.verify_role(TopLevelRole::Snapshot, &snap).unwrap();
    assert_eq!(
        ts.signed().snapshot,
        MetaFile::for_bytes(snap.version(), &snap_b)
    );
    let t_b = s.current(gun, "targets").unwrap();
    let t = Metadata::<Targets>::from_bytes(&t_b).unwrap();
    r.verify_role(TopLevelRole::Targets, &t).unwrap();
    assert_eq!(
        snap.signed().meta["targets.json"],
        MetaFile::for_bytes(t.version(), &t_b)
    );
    t
}

#[test]
fn concurrent_publishers_get_one_success_per_version() {
    let s = Arc::new(Server::start());
    let gun = "example.com/org/contended";
    let c = Arc::new(ClientRepo::new(&s, gun));
    c.publish_initial(&s, &["base"]);

    const PUBLISHERS: usize = 32;
    for version in 2..=4u64 {
        let barrier = Arc::new(Barrier::new(PUBLISHERS));
        let handles: Vec<_> = (0..PUBLISHERS)
            .map(|i| {
                let (s, c, barrier) = (s.clone(), c.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let tag = format!("v{version}-writer{i}");
                    let bytes = c.signed_targets(version, &[tag.as_str()]);
                    barrier.wait();
                    let r = s.publish(gun, &[("targets", bytes.clone())]);
                    (r.status, bytes, r.text())
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter(|r| r.0 == StatusCode::OK).collect();
        assert_eq!(
            winners.len(),
            1,
            "version {version}: {:?}",
            results.iter().map(|r| r.0).collect::<Vec<_>>()
        );
        for (status, _, text) in &results {
            assert!(
                *status == StatusCode::OK || *status == StatusCode::CONFLICT,
                "{status}: {text}"
            );
        }
        // The stored targets is the winner's document, and the chain verifies.
        let t = verify_chain(&s, gun);
        assert_eq!(t.version().get(), version);
        assert_eq!(s.current(gun, "targets").unwrap(), winners[0].1);
    }
}

#[test]
fn acknowledged_publishes_survive_sigkill() {
    let mut s = Server::start();
    let gun = "example.com/org/durable";
    let c = ClientRepo::new(&s, gun);
    c.publish_initial(&s, &["v1"]);
    let mut acknowledged = vec![c.signed_targets(1, &["v1"])];
    for v in 2..=25u64 {
        let tags: Vec<String> = (1..=v).map(|i| format!("v{i}")).collect();
        let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        let bytes = c.signed_targets(v, &tag_refs);
        let r = s.publish(gun, &[("targets", bytes.clone())]);
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        acknowledged.push(bytes);
    }
    let ts_before = s.current(gun, "timestamp").unwrap();
    s.kill();

    // The database is intact after the kill.
    {
        let store = SqliteStore::open(&s.data_dir.join("vouch.db")).unwrap();
        store.integrity_check().unwrap();
    }

    s.restart();
    for (i, bytes) in acknowledged.iter().enumerate() {
        let got = s.get(&format!("/v2/{gun}/_trust/tuf/{}.targets.json", i + 1));
        assert_eq!(got.status, StatusCode::OK, "targets version {}", i + 1);
        assert_eq!(&got.body, bytes, "targets version {}", i + 1);
    }
    assert_eq!(s.current(gun, "timestamp").unwrap(), ts_before);
    let t = verify_chain(&s, gun);
    assert_eq!(t.version().get(), 25);
    // And the restarted server keeps accepting publishes with the same online keys.
    let r = s.publish(gun, &[("targets", c.signed_targets(26, &["v26"]))]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    verify_chain(&s, gun);
}
