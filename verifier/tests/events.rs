//! The event stream client against a real `vouch-server` process: events arrive in order
//! with their repository and kind, a resume gets exactly what was missed, refusals are the
//! same typed errors as every other request's, and the follower carries on across a server
//! killed and restarted on the same data directory and port, delivering what was published
//! while it was away once and in order.
//!
//! Needs the `vouch-server` binary (`cargo build -p vouch-server`; `cargo test --workspace`
//! builds it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use vouch_testkit::server::{Launch, ServerProcess};
use vouch_tuf::api::event::{Event, EventKind};
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use vouch_tuf::metadata::{Key, Metadata, Root, Targets};
use vouch_tuf::reference::Gun;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{RoleName, TopLevelRole, Version};
use vouch_verifier::server::{
    Backoff, Connection, Disconnect, Follower, Repository, ServerClient, ServerError,
    ServerOptions, StreamItem,
};
use vouch_verifier::transport::BearerToken;

#[derive(Debug)]
struct Token(String);

impl BearerToken for Token {
    fn bearer_token(&self) -> Option<String> {
        Some(self.0.clone())
    }
}

/// Idle timeout of the tests' streams: three of the test servers' 1-second keep-alives.
const IDLE: Duration = Duration::from_secs(3);

fn launch(data_dir: &Path, listen: Option<&str>) -> ServerProcess {
    let mut l = Launch::new(data_dir).env("VOUCH_EVENTS_KEEP_ALIVE_SECONDS", "1");
    if let Some(addr) = listen {
        l = l.listen(addr);
    }
    l.start()
}

fn client(server: &ServerProcess, token: Option<&str>) -> ServerClient {
    let c = ServerClient::new(&server.base, &ServerOptions::default())
        .unwrap()
        .with_event_idle(IDLE);
    match token {
        Some(t) => c.with_bearer_token(Arc::new(Token(t.to_owned()))),
        None => c,
    }
}

/// One repository's client-held keys; publishes root v1 with targets v1, then targets
/// versions one after another.
struct Publisher {
    repo: Repository,
    targets_key: PrivateKey,
    targets_version: u64,
}

fn expires() -> Timestamp {
    Timestamp::parse("2099-01-01T00:00:00Z").unwrap()
}

fn key_of(sk: &PrivateKey) -> Key {
    Key::from_verifying_key(&sk.verifying_key())
}

impl Publisher {
    fn init(admin: &ServerClient, gun: &Gun) -> Self {
        let repo = admin.repository(gun);
        let root_key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let targets_key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let mut root = Root::new(expires());
        root.add_key(TopLevelRole::Root, key_of(&root_key));
        root.add_key(TopLevelRole::Targets, key_of(&targets_key));
        root.add_key(
            TopLevelRole::Snapshot,
            repo.online_key(TopLevelRole::Snapshot).unwrap(),
        );
        root.add_key(
            TopLevelRole::Timestamp,
            repo.online_key(TopLevelRole::Timestamp).unwrap(),
        );
        let root = Metadata::signed_by(root, &[&root_key as &dyn Signer])
            .unwrap()
            .to_bytes();
        let mut p = Publisher {
            repo,
            targets_key,
            targets_version: 0,
        };
        let targets = p.next_targets();
        p.repo
            .publish(&[
                (RoleName::new("root").unwrap(), root),
                (RoleName::new("targets").unwrap(), targets),
            ])
            .unwrap();
        p
    }

    fn next_targets(&mut self) -> Vec<u8> {
        self.targets_version += 1;
        let mut t = Targets::new(expires());
        t.common.version = Version::new(self.targets_version).unwrap();
        Metadata::signed_by(t, &[&self.targets_key as &dyn Signer])
            .unwrap()
            .to_bytes()
    }

    /// Publishes the next targets version; returns it.
    fn publish(&mut self) -> u64 {
        let targets = self.next_targets();
        self.repo
            .publish(&[(RoleName::new("targets").unwrap(), targets)])
            .unwrap();
        self.targets_version
    }
}

/// The timestamp version an event says was written: one per publish to a repository, so
/// the publish it reports (the server may not list the roles written; `roles` may be
/// empty).
fn targets_version(e: &Event) -> u64 {
    if let Some((_, v)) = e.roles.iter().find(|(role, _)| role == "targets") {
        assert_eq!(*v, e.version, "{e:?}");
    }
    e.version
}

fn next_event(stream: &mut vouch_verifier::server::EventStream) -> Event {
    match stream.next().unwrap() {
        StreamItem::Event(e) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[test]
fn events_arrive_in_order_and_a_resume_gets_exactly_the_missed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = launch(dir.path(), None);
    let admin = client(&server, Some(&server.admin_token));
    let gun = Gun::new("registry.example.com/org/app").unwrap();
    let other = Gun::new("registry.example.com/org/other").unwrap();
    let mut p = Publisher::init(&admin, &gun);
    let mut q = Publisher::init(&admin, &other);

    // Only new events: none of the initial publish.
    let mut stream = admin.events(Some(&gun), None).unwrap();
    let mut all = admin.events(None, None).unwrap();
    assert_eq!(stream.last_id(), None);
    let v2 = p.publish();
    let o2 = q.publish();
    let v3 = p.publish();
    let v4 = p.publish();
    let got: Vec<Event> = (0..3).map(|_| next_event(&mut stream)).collect();
    assert_eq!(
        got.iter().map(targets_version).collect::<Vec<_>>(),
        [v2, v3, v4]
    );
    for e in &got {
        assert_eq!((e.gun.as_str(), e.kind), (gun.as_str(), EventKind::Update));
        assert_eq!(e.sha256.len(), 64);
    }
    assert!(got.windows(2).all(|w| w[0].id < w[1].id), "{got:?}");
    assert_eq!(stream.last_id(), Some(got[2].id));

    // Every repository's stream (the admin token has a wildcard scope) has the other too.
    let everything: Vec<(String, u64)> = (0..4)
        .map(|_| {
            let e = next_event(&mut all);
            (e.gun.clone(), targets_version(&e))
        })
        .collect();
    assert_eq!(
        everything,
        [
            (gun.to_string(), v2),
            (other.to_string(), o2),
            (gun.to_string(), v3),
            (gun.to_string(), v4),
        ]
    );

    // Resuming after the first gets exactly the two after it, then what is new.
    let mut resumed = admin.events(Some(&gun), Some(got[0].id)).unwrap();
    assert_eq!(next_event(&mut resumed), got[1]);
    assert_eq!(next_event(&mut resumed), got[2]);
    let v5 = p.publish();
    let e5 = next_event(&mut resumed);
    assert_eq!(targets_version(&e5), v5);
    assert_eq!(next_event(&mut stream), e5);

    // From the beginning: the initial publish too, and nothing of the other repository.
    let mut from_start = admin.events(Some(&gun), Some(0)).unwrap();
    let versions: Vec<u64> = (0..5)
        .map(|_| targets_version(&next_event(&mut from_start)))
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    assert_eq!(from_start.last_id(), Some(e5.id));

    // Idle streams stay open on keep-alives past the idle timeout.
    std::thread::sleep(IDLE + Duration::from_secs(1));
    let v6 = p.publish();
    assert_eq!(targets_version(&next_event(&mut stream)), v6);
}

#[test]
fn a_token_without_access_gets_the_auth_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let server = launch(dir.path(), None);
    let gun = Gun::new("registry.example.com/org/app").unwrap();

    let bogus = client(&server, Some("not-a-token"));
    match bogus.events(Some(&gun), None).unwrap_err() {
        ServerError::Refused { refusal, .. } => {
            assert_eq!(refusal.status, 401, "{refusal}");
            assert!(refusal.auth.is_some(), "{refusal:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Anonymous pulls are on, but every repository's stream needs a wildcard scope.
    let anonymous = client(&server, None);
    match anonymous.events(None, None).unwrap_err() {
        ServerError::Refused { refusal, .. } => {
            assert!(
                matches!(refusal.status, 401 | 403),
                "{refusal} {:?}",
                refusal.auth
            );
            assert!(refusal.auth.is_some(), "{refusal:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // While one repository's stream is open to anyone who may pull it.
    anonymous.events(Some(&gun), None).unwrap();
}

#[test]
fn the_follower_delivers_across_a_server_restart_once_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = launch(&data, None);
    let addr = server.addr().to_owned();
    let admin = client(&server, Some(&server.admin_token));
    let gun = Gun::new("registry.example.com/org/app").unwrap();
    let mut p = Publisher::init(&admin, &gun);

    // Long enough that what is published right after the restart is published before the
    // follower is back.
    let mut follower = Follower::new(&admin, Some(&gun), Some(0)).with_backoff(Backoff {
        initial: Duration::from_secs(3),
        max: Duration::from_secs(3),
    });
    let stop = follower.stop_flag();
    let (events, got) = mpsc::channel();
    let (states, state) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        follower.run(
            |e| {
                events.send(e.clone()).unwrap();
                ControlFlow::Continue(())
            },
            |s| {
                let s = match s {
                    Connection::Connected { after } => format!("connected after {after:?}"),
                    Connection::Disconnected { reason, .. } => match reason {
                        Disconnect::Error(e) => format!("disconnected: {e}"),
                        other => format!("disconnected: {other}"),
                    },
                };
                states.send(s).unwrap();
                ControlFlow::Continue(())
            },
        );
        follower.last_id()
    });
    let wait = Duration::from_secs(20);
    let recv = || got.recv_timeout(wait).expect("an event");
    assert_eq!(state.recv_timeout(wait).unwrap(), "connected after Some(0)");
    let mut delivered = vec![recv()];
    p.publish();
    delivered.push(recv());

    server.kill();
    let s = state.recv_timeout(wait).unwrap();
    assert!(s.starts_with("disconnected"), "{s}");
    let server = launch(&data, Some(&addr));
    assert_eq!(server.addr(), addr);
    // Published while the follower waits to reconnect.
    p.publish();
    p.publish();
    // (Attempts while the server was still starting may fail first.)
    let s = std::iter::from_fn(|| state.recv_timeout(wait).ok())
        .find(|s| !s.starts_with("disconnected"))
        .expect("a reconnection");
    assert_eq!(s, format!("connected after Some({})", delivered[1].id));
    delivered.push(recv());
    delivered.push(recv());
    // And live again.
    p.publish();
    delivered.push(recv());

    stop.store(true, Ordering::SeqCst);
    let last = thread.join().unwrap();
    assert_eq!(
        delivered.iter().map(targets_version).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(
        delivered.windows(2).all(|w| w[0].id < w[1].id),
        "{delivered:?}"
    );
    assert_eq!(last, Some(delivered[4].id));
    assert!(
        got.try_recv().is_err(),
        "an event was delivered twice or unasked"
    );
    drop(server);
}
