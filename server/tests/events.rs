//! The changefeed as Server-Sent Events, through a real server: events live and in order,
//! a resume by `Last-Event-ID` that gets exactly what was missed (also after the server was
//! killed and restarted), every refusal (no token, a token for another repository, the
//! global stream without a wildcard scope, a malformed id), the cap on open streams, and a
//! clean end with a notice when the server shuts down (streams are ended by it, not left to
//! the shutdown grace period).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{events_path, ClientRepo, EventStream as Stream, Server, WAIT};
use reqwest::StatusCode;
use vouch_tuf::api::event::{Event, EventKind, Frame, NoticeReason};

/// Publishes targets versions `from..=to` of `c`'s repository; the versions published.
fn publish_targets(s: &Server, c: &ClientRepo, from: u64, to: u64) {
    for v in from..=to {
        let tag = format!("v{v}");
        let r = s.publish(&c.gun, &[("targets", c.signed_targets(v, &[tag.as_str()]))]);
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
}

fn ids(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.id).collect()
}

fn assert_increasing(events: &[Event]) {
    assert!(
        events.windows(2).all(|w| w[0].id < w[1].id),
        "ids not increasing: {:?}",
        ids(events)
    );
}

const KEEP_ALIVE: (&str, &str) = ("VOUCH_EVENTS_KEEP_ALIVE_SECONDS", "1");

#[test]
fn events_arrive_live_and_a_resume_gets_exactly_what_was_missed_also_after_a_restart() {
    let mut s = Server::start_with(&[KEEP_ALIVE]);
    let gun = "example.com/org/app";
    let other = "example.com/org/other";
    let admin = s.admin_token.clone();
    let live = Stream::open(&s, &events_path(Some(gun)), Some(&admin), None).unwrap();
    let global = Stream::open(&s, &events_path(None), Some(&admin), None).unwrap();

    let c = ClientRepo::new(&s, gun);
    c.publish_initial(&s, &["v1"]);
    let first = live.events(1);
    assert_eq!(first[0].gun, gun);
    assert_eq!(first[0].kind, EventKind::Update);
    assert_eq!(first[0].version, 1);
    let roles: Vec<&str> = first[0].roles.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(roles, ["root", "snapshot", "targets", "timestamp"]);
    // The event names the timestamp the client would read.
    let ts = s.current(gun, "timestamp").unwrap();
    assert_eq!(
        first[0].sha256,
        vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, &ts))
    );

    // Another repository's changes reach the global stream only.
    let o = ClientRepo::new(&s, other);
    o.publish_initial(&s, &["v1"]);
    publish_targets(&s, &c, 2, 6);
    let got = live.events(5);
    assert_increasing(&got);
    assert!(got.iter().all(|e| e.gun == gun));
    assert_eq!(
        got.iter().map(|e| e.version).collect::<Vec<_>>(),
        [2, 3, 4, 5, 6]
    );
    let all = global.events(7);
    assert_increasing(&all);
    assert_eq!(all.iter().filter(|e| e.gun == other).count(), 1);
    live.quiet(Duration::from_millis(300));

    // Disconnect, 50 more, reconnect after the last id handled: exactly those 50.
    let last = got.last().unwrap().id;
    drop(live);
    publish_targets(&s, &c, 7, 56);
    let resumed = Stream::open(&s, &events_path(Some(gun)), Some(&admin), Some(last)).unwrap();
    let missed = resumed.events(50);
    assert_increasing(&missed);
    assert!(missed[0].id > last);
    assert_eq!(
        missed.iter().map(|e| e.version).collect::<Vec<_>>(),
        (7..=56).collect::<Vec<_>>()
    );
    resumed.quiet(Duration::from_millis(300));
    // Then live ones.
    publish_targets(&s, &c, 57, 57);
    let v57 = resumed.events(1).remove(0);
    assert_eq!(v57.version, 57);

    // `?after=0` replays the whole feed of the repository.
    let replay = Stream::open(
        &s,
        &format!("{}?after=0", events_path(Some(gun))),
        Some(&admin),
        None,
    )
    .unwrap();
    let everything = replay.events(57);
    assert_eq!(everything[0].id, first[0].id);
    assert_increasing(&everything);

    // Killed (no goodbye), then restarted on the same data: a resume gets the events
    // published before the kill that the consumer had not read, then live ones.
    let seen = v57.id;
    drop(resumed);
    publish_targets(&s, &c, 58, 60);
    s.kill();
    s.restart();
    let after_restart = Stream::open(
        &s,
        &events_path(Some(gun)),
        Some(&s.admin_token),
        Some(seen),
    )
    .unwrap();
    let got = after_restart.events(3);
    assert_eq!(
        got.iter().map(|e| e.version).collect::<Vec<_>>(),
        [58, 59, 60]
    );
    publish_targets(&s, &c, 61, 61);
    assert_eq!(after_restart.events(1)[0].version, 61);

    // A deletion is an event of its own kind.
    let r = s
        .client
        .delete(s.tuf_url(gun, ""))
        .bearer_auth(&s.admin_token)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let deletion = after_restart.events(1).remove(0);
    assert_eq!(deletion.kind, EventKind::Deletion);
    assert!(deletion.roles.is_empty());
}

const ALICE: &str = "alice-token-0123456789";

fn sha(token: &str) -> String {
    vouch_tuf::hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

#[test]
fn streams_are_refused_without_the_grant_and_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("vouch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[auth]\nanonymous_pull = false\n[events]\nmax_streams = 3\nmax_streams_per_client = 2\n\
             [[auth.tokens]]\nname = \"alice\"\nsha256 = \"{}\"\nscopes = [\"example.com/team/*:pull\"]\n",
            sha(ALICE)
        ),
    )
    .unwrap();
    let s = Server::start_full(&[KEEP_ALIVE], &["--config", cfg.to_str().unwrap()]);
    let mine = events_path(Some("example.com/team/app"));

    // No token; a token for other repositories; the global stream without a wildcard.
    let (status, _) = Stream::open(&s, &mine, None, None).err().unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = Stream::open(
        &s,
        &events_path(Some("example.com/elsewhere/app")),
        Some(ALICE),
        None,
    )
    .err()
    .unwrap();
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
        "{status}"
    );
    let (status, _) = Stream::open(&s, &events_path(None), Some(ALICE), None)
        .err()
        .unwrap();
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
        "{status}"
    );
    // A malformed resume point names itself.
    for bad in ["-1", "x", "1.0"] {
        let r = s
            .client
            .get(s.url(&mine))
            .bearer_auth(ALICE)
            .header("last-event-id", bad)
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.text().unwrap().contains("Last-Event-ID"));
    }

    // An id the server never gave is refused, not waited for silently.
    let r = s
        .client
        .get(s.url(&format!("{mine}?after=999999")))
        .bearer_auth(ALICE)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().unwrap().contains("after the newest event"));

    // One client may have two streams open, the server three; the next waits for one to
    // close.
    let a = Stream::open(&s, &mine, Some(ALICE), None).unwrap();
    let _a2 = Stream::open(&s, &mine, Some(ALICE), None).unwrap();
    let (status, body) = Stream::open(&s, &mine, Some(ALICE), None).err().unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("this client"), "{body}");
    let _b = Stream::open(&s, &mine, Some(&s.admin_token), None).unwrap();
    let (status, body) = Stream::open(&s, &mine, Some(&s.admin_token), None)
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("retry-after="), "{body}");
    drop(a);
    // The slot is given back once the server notices the client left (at its next
    // keep-alive, within a second here).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match Stream::open(&s, &mine, Some(ALICE), None) {
            Ok(_) => break,
            Err((StatusCode::SERVICE_UNAVAILABLE, _)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    // Each refusal is counted (the one above, and any while the slot was not yet back).
    let metrics = s.get_admin("/metrics").text();
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vouch_overload_rejections_total{reason=\"event_streams\"} "))
        .expect("no count of refused streams")
        .parse()
        .unwrap();
    assert!(refused >= 1);
    assert!(metrics
        .lines()
        .any(|l| l.starts_with("vouch_event_streams ")));
}

#[test]
fn a_shutdown_ends_streams_with_a_notice_and_does_not_wait_for_them() {
    let mut s = Server::start_with(&[KEEP_ALIVE]);
    let stream = Stream::open(&s, &events_path(None), Some(&s.admin_token.clone()), None).unwrap();
    assert!(s.terminate(), "the server did not exit cleanly");
    let mut notice = None;
    while let Some(f) = stream.next(Duration::from_secs(5)) {
        if let Frame::Reconnect(n) = f {
            notice = Some(n);
        }
    }
    assert_eq!(notice.unwrap().reason, NoticeReason::Shutdown);
}
