//! What a fetch may cost: time and memory, against a real HTTP server that misbehaves.
//!
//! The server here is a small loopback HTTP/1.1 listener serving a repository's files, which
//! can drip a file (a few bytes per tick: slow retrieval) or answer a file with an endless
//! body (endless data), and counts what it did: requests, bytes written, and whether the
//! client closed a connection before the whole body went out. The tests assert what a user
//! of the verifier sees (the error kind, the trusted cache) and those counts, never how long
//! something took.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use vouch_tuf::types::TopLevelRole;
use vouch_verifier::cache::MetadataStore;
use vouch_verifier::clock::TestClock;
use vouch_verifier::transport::{HttpOptions, HttpTransport, TransportError};
use vouch_verifier::{Error, Limits, UpdateError, Updater};

/// How the server answers one path.
#[derive(Clone, Copy)]
enum Serve {
    /// `chunk` bytes of the file every `every`.
    Drip { chunk: usize, every: Duration },
    /// `Content-Length: announced` (or none), then up to 64 MiB of spaces, fast.
    Endless { announced: Option<u64> },
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<String>>,
    /// Body bytes written, over every response.
    body_bytes: AtomicU64,
    /// A write failed because the client had closed the connection before the body ended.
    closed_by_client: AtomicBool,
}

struct BadServer {
    url: String,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
}

impl Drop for BadServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl BadServer {
    fn start(files: BTreeMap<String, Vec<u8>>, special: BTreeMap<String, Serve>) -> BadServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let seen = Arc::new(Seen::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(stream) = conn else { continue };
                let (files, special, seen, stop) =
                    (files.clone(), special.clone(), seen2.clone(), stop2.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_nodelay(true);
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut stream = stream;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                    }
                    let path = line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("/")
                        .trim_start_matches('/')
                        .to_owned();
                    seen.requests.lock().unwrap().push(path.clone());
                    let body = files.get(&path);
                    let body_out = |stream: &mut std::net::TcpStream, bytes: &[u8]| {
                        if stream.write_all(bytes).is_err() {
                            seen.closed_by_client.store(true, Ordering::SeqCst);
                            return false;
                        }
                        seen.body_bytes
                            .fetch_add(bytes.len() as u64, Ordering::SeqCst);
                        true
                    };
                    match (special.get(&path), body) {
                        (Some(Serve::Drip { chunk, every }), Some(b)) => {
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                b.len()
                            );
                            let _ = stream.write_all(head.as_bytes());
                            for piece in b.chunks(*chunk) {
                                if stop.load(Ordering::SeqCst) || !body_out(&mut stream, piece) {
                                    return;
                                }
                                std::thread::sleep(*every);
                            }
                        }
                        (Some(Serve::Endless { announced }), _) => {
                            let head = match announced {
                                Some(n) => format!(
                                    "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
                                ),
                                None => "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_owned(),
                            };
                            let _ = stream.write_all(head.as_bytes());
                            let chunk = vec![b' '; 64 * 1024];
                            for _ in 0..1024 {
                                if stop.load(Ordering::SeqCst) || !body_out(&mut stream, &chunk) {
                                    return;
                                }
                            }
                        }
                        (_, Some(b)) => {
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                b.len()
                            );
                            let _ = stream.write_all(head.as_bytes());
                            body_out(&mut stream, b);
                        }
                        (_, None) => {
                            let _ = stream.write_all(
                                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            );
                        }
                    }
                });
            }
        });
        BadServer { url, seen, stop }
    }

    fn requests(&self) -> Vec<String> {
        self.seen.requests.lock().unwrap().clone()
    }

    /// Waits (boundedly) until the server noticed the client had gone; true if it did.
    fn saw_close(&self) -> bool {
        for _ in 0..100 {
            if self.seen.closed_by_client.load(Ordering::SeqCst) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

struct Client {
    updater: Updater<HttpTransport>,
    store: MetadataStore,
    _dir: tempfile::TempDir,
}

fn client(repo: &Repo, url: &str, options: &HttpOptions, limits: Limits) -> Client {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    Updater::<HttpTransport>::pin_root(&store, &repo.root_bytes(1)).unwrap();
    let http = HttpTransport::new(url, options).unwrap();
    let updater = Updater::new(MetadataStore::open(dir.path()).unwrap(), http)
        .with_clock(Arc::new(TestClock::new(NOW)))
        .with_limits(limits);
    Client {
        updater,
        store,
        _dir: dir,
    }
}

fn options(timeout: Duration) -> HttpOptions {
    HttpOptions {
        timeout,
        connect_timeout: Duration::from_secs(5),
        ..HttpOptions::default()
    }
}

/// Slow retrieval, one file: the timestamp trickled 4 bytes at a time stays within every
/// per-read wait, but the whole request has a deadline. The update fails as timed out, the
/// client hangs up before the body ends, and nothing of it is trusted.
#[test]
fn a_trickled_file_is_cut_off_at_the_fetch_deadline() {
    let repo = Repo::new();
    let ts = repo.file("timestamp.json");
    let server = BadServer::start(
        repo.files.clone(),
        [(
            "timestamp.json".to_owned(),
            Serve::Drip {
                chunk: 4,
                every: Duration::from_millis(100),
            },
        )]
        .into_iter()
        .collect(),
    );
    let mut c = client(
        &repo,
        &server.url,
        &options(Duration::from_secs(1)),
        Limits::DEFAULT,
    );
    match c.updater.refresh() {
        Err(Error::Transport(TransportError::TimedOut { path })) => {
            assert_eq!(path, "timestamp.json")
        }
        other => panic!("expected the timestamp fetch to time out, got {other:?}"),
    }
    assert!(server.saw_close(), "the client never hung up");
    assert!(
        server.seen.body_bytes.load(Ordering::SeqCst) < ts.len() as u64,
        "the whole trickled timestamp was read"
    );
    let ts_role = TopLevelRole::Timestamp.name();
    assert_eq!(c.store.load(&ts_role, 1 << 20).unwrap(), None);
    assert!(c.updater.trusted().is_none());
}

/// Slow retrieval, many files: each root version arrives well within the per-fetch timeout,
/// but the update as a whole has a budget; past it no further fetch is started.
#[test]
fn an_update_stops_fetching_at_its_total_budget() {
    let mut repo = Repo::new();
    for _ in 0..10 {
        repo.publish_root();
    }
    let drip = |name: &str| {
        let len = repo.file(name).len();
        (
            name.to_owned(),
            Serve::Drip {
                chunk: len / 4 + 1,
                every: Duration::from_millis(100),
            },
        )
    };
    let special = (2..=11).map(|v| drip(&format!("{v}.root.json"))).collect();
    let server = BadServer::start(repo.files.clone(), special);
    let limits = Limits {
        max_update_duration: Duration::from_millis(1500),
        ..Limits::DEFAULT
    };
    let mut c = client(
        &repo,
        &server.url,
        &options(Duration::from_secs(30)),
        limits,
    );
    match c.updater.refresh() {
        Err(Error::Transport(TransportError::TimedOut { path })) => {
            assert!(path.ends_with(".root.json"), "{path}")
        }
        other => panic!("expected the update to run out of time, got {other:?}"),
    }
    let roots = server
        .requests()
        .iter()
        .filter(|p| p.ends_with(".root.json"))
        .count();
    assert!(roots < 10, "all {roots} root versions were fetched");
    assert!(!server.requests().contains(&"timestamp.json".to_owned()));
}

/// A caller's deadline (an admission decision's): once it has passed, the updater starts
/// no fetch at all.
#[test]
fn no_fetch_starts_after_the_callers_deadline() {
    let repo = Repo::new();
    let server = BadServer::start(repo.files.clone(), BTreeMap::new());
    let mut c = client(
        &repo,
        &server.url,
        &options(Duration::from_secs(30)),
        Limits::DEFAULT,
    );
    c.updater.set_deadline(Some(Instant::now()));
    let err = c.updater.refresh().unwrap_err();
    assert!(
        matches!(err, Error::Transport(TransportError::TimedOut { .. })),
        "{err:?}"
    );
    assert_eq!(server.requests(), Vec::<String>::new());
    // Without it, the same updater updates normally.
    c.updater.set_deadline(None);
    c.updater.refresh().unwrap();
    assert!(!server.requests().is_empty());
}

/// A timestamp naming snapshot with a length of 10^12 (anyone with the online timestamp key
/// can sign that): the snapshot is read up to its cap and no further, whatever the signed
/// length says and whatever length the response announces.
fn huge_snapshot(announced: Option<u64>) {
    let mut repo = Repo::new();
    let huge = 1_000_000_000_000u64;
    repo.timestamp.snapshot.length = Some(huge);
    repo.publish_timestamp();
    let server = BadServer::start(
        repo.files.clone(),
        [("1.snapshot.json".to_owned(), Serve::Endless { announced })]
            .into_iter()
            .collect(),
    );
    let mut c = client(
        &repo,
        &server.url,
        &options(Duration::from_secs(30)),
        Limits::DEFAULT,
    );
    match c.updater.refresh() {
        Err(Error::Update(UpdateError::TooLarge { role, limit })) => {
            assert_eq!(role, "snapshot");
            assert_eq!(limit, Limits::DEFAULT.snapshot_max_bytes);
        }
        other => panic!("expected the snapshot to be refused as too large, got {other:?}"),
    }
    // What went out before the client hung up: at most the cap plus what loopback socket
    // buffers hold (a few MiB), far below the 64 MiB the server would send.
    let sent = server.seen.body_bytes.load(Ordering::SeqCst);
    assert!(
        sent <= Limits::DEFAULT.snapshot_max_bytes + 16 * 1024 * 1024,
        "{sent} bytes of snapshot sent"
    );
    assert!(c.updater.trusted().is_none());
    let sn_role = TopLevelRole::Snapshot.name();
    assert_eq!(c.store.load(&sn_role, 1 << 30).unwrap(), None);
}

#[test]
fn a_signed_huge_snapshot_length_is_capped_while_streaming() {
    huge_snapshot(None);
}

#[test]
fn a_signed_huge_snapshot_length_with_a_matching_content_length_is_refused() {
    huge_snapshot(Some(1_000_000_000_000));
}
