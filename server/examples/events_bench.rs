//! Event-stream load generator: subscribers on `GET /v2/_trust/events` of a running
//! vouch-server while signed targets updates are published at a fixed rate. It checks that
//! every subscriber gets every changefeed entry of the run, in id order, each once, and
//! measures the time from each publish's `200` to each subscriber reading its event. Driven by
//! `bench/events/run.sh`, which starts the server; `bench/events/README.md` says how to read
//! the output.
//!
//! Two phases on the same server, one after the other, each publishing for `--seconds` at
//! `--rate`: first 1 subscriber, then `--subscribers` (the ratio of the two is the cost of the
//! fan-out). Publishes go round-robin to `--repos` repositories (one publisher task and
//! connection each, so a repository's versions never race), on a runtime of their own so that
//! their `200`s are timestamped as they arrive; subscribers run on `--client-threads` worker
//! threads and read raw HTTP/1.1 over TCP (de-chunking, then [`SseReader`]).
//!
//! ```sh
//! cargo run --release -p vouch-server --example events_bench -- \
//!     --url http://127.0.0.1:4443 --token-file vouch-data/admin.token --server-pid "$PID" \
//!     --subscribers 1000 --seconds 30 --rate 100
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use vouch_tuf::api::event::{Frame, SseReader};
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use vouch_tuf::json;
use vouch_tuf::metadata::{Key, Metadata, Root, TargetFile, Targets};
use vouch_tuf::reference::Digest;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{TargetName, TopLevelRole, Version};

#[derive(Parser)]
#[command(about = "Event-stream benchmark for vouch-server (see bench/events/README.md)")]
struct Args {
    /// The server, `http://HOST:PORT` (plain HTTP only).
    #[arg(long)]
    url: String,
    /// A file holding a token with a `*` scope and push (the data dir's `admin.token`).
    #[arg(long)]
    token_file: PathBuf,
    /// The server's process id: its CPU time and memory are read from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Subscribers of the second phase (the first has one).
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Seconds of publishing per phase.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Publishes per second.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Repositories published to, round-robin.
    #[arg(long, default_value_t = 10)]
    repos: usize,
    /// Worker threads of the subscribers' runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// The p99 publish-ack → event latency the run is held to, in ms (reported, not enforced).
    #[arg(long, default_value_t = 50.0)]
    target_p99_ms: f64,
}

/// Linux's USER_HZ: the unit of /proc CPU times.
const TICKS_PER_SECOND: f64 = 100.0;
/// Streams being opened at once.
const OPENING: usize = 64;
/// How long after the last publish the subscribers get to receive every event.
const DRAIN: Duration = Duration::from_secs(30);

fn main() {
    let args = Args::parse();
    let token: Arc<str> = std::fs::read_to_string(&args.token_file)
        .expect("read the token file")
        .trim()
        .into();
    let base = args.url.trim_end_matches('/').to_owned();
    let addr = base
        .strip_prefix("http://")
        .expect("--url is http://HOST:PORT")
        .to_owned();
    // reqwest's TLS stack needs a crypto provider chosen once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();

    // Publishing and bookkeeping: this thread. Subscribers: their own worker threads.
    let main_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sub_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
        .unwrap();
    let client = main_rt.block_on(async {
        reqwest::Client::builder()
            .pool_max_idle_per_host(args.repos + 4)
            .build()
            .unwrap()
    });
    let api = Api {
        client,
        base,
        token: token.clone(),
    };
    let mut repos = main_rt.block_on(setup(&api, args.repos));
    eprintln!("set up {} repositories", repos.len());

    let mut results = Vec::new();
    for subscribers in [1, args.subscribers] {
        let (r, back) = phase(&args, &api, &addr, &main_rt, &sub_rt, repos, subscribers);
        repos = back;
        results.push(r);
    }
    let metrics = main_rt.block_on(api.get("/metrics"));
    report(&args, &results, &metrics);
    if results.iter().any(|r| !r.problems.is_empty()) {
        std::process::exit(1);
    }
}

/// The server's HTTP API, as the publishers and the checks use it.
struct Api {
    client: reqwest::Client,
    base: String,
    token: Arc<str>,
}

impl Api {
    async fn get(&self, path: &str) -> String {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&*self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.text().await.unwrap()
    }

    /// Publishes `files`; the status and when the response's head arrived.
    async fn publish(&self, gun: &str, files: Vec<(&'static str, Vec<u8>)>) -> (u16, Instant) {
        let mut form = reqwest::multipart::Form::new();
        for (role, bytes) in files {
            form = form.part(
                "files",
                reqwest::multipart::Part::bytes(bytes).file_name(role),
            );
        }
        let r = self
            .client
            .post(format!("{}/v2/{gun}/_trust/tuf/", self.base))
            .bearer_auth(&*self.token)
            .multipart(form)
            .send()
            .await;
        let at = Instant::now();
        match r {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.bytes().await.unwrap_or_default();
                if status != 200 {
                    eprintln!(
                        "publish to {gun}: {status} {}",
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    );
                }
                (status, at)
            }
            Err(e) => {
                eprintln!("publish to {gun}: {e}");
                (0, at)
            }
        }
    }
}

/// One repository the benchmark publishes to: its targets key and stored targets version.
struct Repo {
    index: usize,
    gun: String,
    targets_key: PrivateKey,
    version: u64,
}

fn expires() -> Timestamp {
    Timestamp::parse("2099-01-01T00:00:00Z").unwrap()
}

/// Targets version `v` of `repo`: one tag, its digest changing with every version.
fn targets_file(repo: &Repo, v: u64) -> Vec<u8> {
    let mut t = Targets::new(expires());
    t.common.version = Version::new(v).unwrap();
    let digest = Digest::sha256_of(format!("{} {v}", repo.gun).as_bytes());
    t.add_target(
        TargetName::new("latest").unwrap(),
        TargetFile::image(&digest, 1000 + v, None),
    );
    Metadata::signed_by(t, &[&repo.targets_key as &dyn Signer])
        .unwrap()
        .to_bytes()
}

/// Creates the repositories: the server's online keys, root v1 and targets v1.
async fn setup(api: &Api, n: usize) -> Vec<Repo> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut repos = Vec::new();
    for index in 0..n {
        let gun = format!("bench.example/events-{stamp}/app-{index}");
        let online = |role: &'static str| {
            let path = format!("/v2/{gun}/_trust/tuf/{role}.key");
            async move { Key::from_value(json::parse(api.get(&path).await.as_bytes()).unwrap()) }
        };
        let root_key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let repo = Repo {
            index,
            gun: gun.clone(),
            targets_key: PrivateKey::generate(Algorithm::Ed25519).unwrap(),
            version: 1,
        };
        let mut root = Root::new(expires());
        root.add_key(
            TopLevelRole::Root,
            Key::from_verifying_key(&root_key.verifying_key()),
        );
        root.add_key(
            TopLevelRole::Targets,
            Key::from_verifying_key(&repo.targets_key.verifying_key()),
        );
        root.add_key(TopLevelRole::Snapshot, online("snapshot").await.unwrap());
        root.add_key(TopLevelRole::Timestamp, online("timestamp").await.unwrap());
        let root = Metadata::signed_by(root, &[&root_key as &dyn Signer])
            .unwrap()
            .to_bytes();
        let (status, _) = api
            .publish(
                &gun,
                vec![("root", root), ("targets", targets_file(&repo, 1))],
            )
            .await;
        assert_eq!(status, 200, "the first publish of {gun}");
        repos.push(repo);
    }
    repos
}

/// One publish of the run.
struct Publish {
    repo: usize,
    targets_version: u64,
    sent: Instant,
    acked: Instant,
    status: u16,
}

/// Publishes for `seconds` at `rate`, round-robin over `repos`, on a fixed schedule (a
/// publish that is late goes at once; nothing is skipped).
async fn publish_for(
    api: Arc<Api>,
    repos: Vec<Repo>,
    seconds: u64,
    rate: u32,
) -> (Vec<Publish>, Vec<Repo>) {
    let n = repos.len() as u64;
    let t0 = tokio::time::Instant::now() + Duration::from_millis(100);
    let total = seconds * u64::from(rate);
    let tasks: Vec<_> = repos
        .into_iter()
        .map(|mut repo| {
            let api = api.clone();
            tokio::spawn(async move {
                let mut done = Vec::new();
                let mut i = repo.index as u64;
                while i < total {
                    let at = t0 + Duration::from_secs_f64(i as f64 / f64::from(rate));
                    tokio::time::sleep_until(at).await;
                    let v = repo.version + 1;
                    let file = targets_file(&repo, v);
                    let sent = Instant::now();
                    let (status, acked) = api.publish(&repo.gun, vec![("targets", file)]).await;
                    if status == 200 {
                        repo.version = v;
                    }
                    done.push(Publish {
                        repo: repo.index,
                        targets_version: v,
                        sent,
                        acked,
                        status,
                    });
                    i += n;
                }
                (done, repo)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut repos = Vec::new();
    for t in tasks {
        let (done, repo) = t.await.unwrap();
        all.extend(done);
        repos.push(repo);
    }
    repos.sort_by_key(|r| r.index);
    all.sort_by_key(|p| p.sent);
    (all, repos)
}

/// What one subscriber read.
#[derive(Default)]
struct Subscription {
    /// The stream's start (its first message).
    start: Option<u64>,
    /// Every event's id and when it was read.
    events: Vec<(u64, Instant)>,
    /// For the first subscriber only: each event's id, GUN, targets and timestamp versions.
    detail: Vec<(u64, String, Option<u64>, u64)>,
    error: Option<String>,
}

/// What the subscribers share with the driver.
struct Shared {
    /// Streams that got their start.
    ready: AtomicUsize,
    /// Events each subscriber has read.
    counts: Vec<AtomicUsize>,
}

/// HTTP/1.1 chunked transfer coding, undone incrementally.
#[derive(Clone, Copy)]
enum Dechunk {
    /// Reading a chunk-size line (the size so far; whether an extension started).
    Size(u64, bool),
    /// In a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// The last chunk came.
    Done,
}

impl Dechunk {
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        while let Some(&b) = input.first() {
            *self = match *self {
                Dechunk::Size(n, ext) => {
                    input = &input[1..];
                    match b {
                        b'\n' if n == 0 => Dechunk::Done,
                        b'\n' => Dechunk::Data(n),
                        b'\r' => Dechunk::Size(n, ext),
                        b';' => Dechunk::Size(n, true),
                        _ if ext => Dechunk::Size(n, ext),
                        _ => {
                            let d = char::from(b)
                                .to_digit(16)
                                .ok_or_else(|| format!("bad chunk size byte {b:#x}"))?;
                            Dechunk::Size(n * 16 + u64::from(d), false)
                        }
                    }
                }
                Dechunk::Data(left) => {
                    let take = (left as usize).min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    match left - take as u64 {
                        0 => Dechunk::DataEnd,
                        l => Dechunk::Data(l),
                    }
                }
                Dechunk::DataEnd => {
                    input = &input[1..];
                    match b {
                        b'\n' => Dechunk::Size(0, false),
                        b'\r' => Dechunk::DataEnd,
                        _ => return Err("no CRLF after a chunk".into()),
                    }
                }
                Dechunk::Done => return Ok(()),
            };
        }
        Ok(())
    }
}

/// One subscriber: opens `GET /v2/_trust/events` and reads until `stop`.
async fn subscribe(
    addr: Arc<str>,
    token: Arc<str>,
    me: usize,
    shared: Arc<Shared>,
    opening: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    capacity: usize,
) -> Subscription {
    let mut out = Subscription {
        events: Vec::with_capacity(capacity),
        ..Subscription::default()
    };
    let permit = opening.acquire().await.unwrap();
    let mut conn = match TcpStream::connect(&*addr).await {
        Ok(c) => c,
        Err(e) => {
            out.error = Some(format!("connect: {e}"));
            return out;
        }
    };
    let _ = conn.set_nodelay(true);
    let request = format!(
        "GET /v2/_trust/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    if let Err(e) = conn.write_all(request.as_bytes()).await {
        out.error = Some(format!("send: {e}"));
        return out;
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut head = Vec::new();
    let body_start = loop {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => {
                out.error = Some("connection closed before the response head".into());
                return out;
            }
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > 64 * 1024 {
            out.error = Some("response head too long".into());
            return out;
        }
    };
    let text = String::from_utf8_lossy(&head[..body_start]).to_ascii_lowercase();
    if !text.starts_with("http/1.1 200") {
        let line = text.lines().next().unwrap_or("").to_owned();
        out.error = Some(format!("stream refused: {line}"));
        return out;
    }
    drop(permit);
    let mut chunked = text
        .contains("transfer-encoding: chunked")
        .then_some(Dechunk::Size(0, false));
    let mut reader = SseReader::default();
    // Every subscriber but the first reads only each message's id (and notices): the first
    // decodes and checks every event in full, and every stream carries the same bytes, so
    // the others need not spend the machine's CPU on JSON that the server is measured
    // against (`VOUCH_BENCH_FULL_DECODE=1` decodes on every subscriber).
    let mut light =
        (me != 0 && std::env::var_os("VOUCH_BENCH_FULL_DECODE").is_none()).then(IdScanner::default);
    let mut plain = Vec::new();
    let mut take = |bytes: &[u8], at: Instant, out: &mut Subscription| -> bool {
        match &mut chunked {
            Some(d) => {
                plain.clear();
                if let Err(e) = d.feed(bytes, &mut plain) {
                    out.error = Some(e);
                    return false;
                }
                if light.is_none() {
                    reader.push(&plain);
                }
            }
            None => {
                if light.is_none() {
                    reader.push(bytes);
                }
            }
        }
        if let Some(scan) = &mut light {
            let input: &[u8] = if chunked.is_some() { &plain } else { bytes };
            let mut stop_with = None;
            scan.feed(input, |m| match m {
                Scanned::Position(p) => {
                    out.start = Some(p);
                    shared.ready.fetch_add(1, Ordering::AcqRel);
                }
                Scanned::Event(id) => {
                    out.events.push((id, at));
                    shared.counts[me].fetch_add(1, Ordering::AcqRel);
                }
                Scanned::Notice => {
                    stop_with = Some("the server ended the stream".to_owned());
                }
            });
            if let Some(e) = stop_with.or_else(|| scan.error.take()) {
                out.error = Some(e);
                return false;
            }
            return true;
        }
        while let Some(frame) = reader.next_frame() {
            match frame {
                Ok(Frame::Position(p)) => {
                    out.start = Some(p);
                    shared.ready.fetch_add(1, Ordering::AcqRel);
                }
                Ok(Frame::Event(e)) => {
                    out.events.push((e.id, at));
                    shared.counts[me].fetch_add(1, Ordering::AcqRel);
                    if me == 0 {
                        let targets = e
                            .roles
                            .iter()
                            .find(|(r, _)| r == "targets")
                            .map(|(_, v)| *v);
                        out.detail.push((e.id, e.gun, targets, e.version));
                    }
                }
                Ok(Frame::Reconnect(n)) => {
                    out.error = Some(format!(
                        "the server ended the stream: {}",
                        n.reason.as_str()
                    ));
                    return false;
                }
                Ok(Frame::Other(_)) => {}
                Err(e) => {
                    out.error = Some(e.to_string());
                    return false;
                }
            }
        }
        true
    };
    if !take(&head[body_start..], Instant::now(), &mut out) {
        return out;
    }
    loop {
        tokio::select! {
            biased;
            r = conn.read(&mut buf) => {
                let at = Instant::now();
                match r {
                    Ok(0) => {
                        out.error = Some("the server closed the stream".into());
                        return out;
                    }
                    Ok(n) => {
                        if !take(&buf[..n], at, &mut out) {
                            return out;
                        }
                    }
                    Err(e) => {
                        out.error = Some(format!("read: {e}"));
                        return out;
                    }
                }
            }
            _ = stop.changed() => return out,
        }
    }
}

/// What [`IdScanner`] reads from one message.
enum Scanned {
    /// A bare `id:` (the stream's start).
    Position(u64),
    /// An event, by its `id:`.
    Event(u64),
    /// A `reconnect` notice.
    Notice,
}

/// The light reader of all subscribers but the first: LF-ended lines (what vouch-server
/// writes), each message's `id:` and `event:` only, a line at most 1 MiB.
#[derive(Default)]
struct IdScanner {
    line: Vec<u8>,
    id: Option<u64>,
    event: Option<Vec<u8>>,
    data: bool,
    error: Option<String>,
}

impl IdScanner {
    fn feed(&mut self, bytes: &[u8], mut emit: impl FnMut(Scanned)) {
        for &b in bytes {
            if b != b'\n' {
                if self.line.len() < 1 << 20 {
                    self.line.push(b);
                } else {
                    self.error = Some("a line longer than 1 MiB".into());
                }
                continue;
            }
            let line = std::mem::take(&mut self.line);
            if line.is_empty() {
                let (id, event, data) = (self.id.take(), self.event.take(), self.data);
                self.data = false;
                match (id, event.as_deref(), data) {
                    (_, Some(b"reconnect"), _) => emit(Scanned::Notice),
                    (Some(id), _, false) => emit(Scanned::Position(id)),
                    (Some(id), Some(b"update" | b"deletion"), true) => emit(Scanned::Event(id)),
                    (None, Some(b"update" | b"deletion"), true) => {
                        self.error = Some("an event without an id".into())
                    }
                    _ => {}
                }
            } else if let Some(v) = line.strip_prefix(b"id: ") {
                self.id = std::str::from_utf8(v).ok().and_then(|t| t.parse().ok());
            } else if let Some(v) = line.strip_prefix(b"event: ") {
                self.event = Some(v.to_vec());
            } else if line.starts_with(b"data:") {
                self.data = true;
            }
        }
    }
}

/// CPU seconds (user + system) of a process, from /proc.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / TICKS_PER_SECOND)
}

/// CPU seconds the whole machine has been busy (every core), from /proc/stat.
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or("");
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: f64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| ![3, 4].contains(i) && *i < 8)
        .map(|(_, x)| x)
        .sum();
    busy / TICKS_PER_SECOND
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn memory_kib(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The figures of one phase.
struct PhaseResult {
    subscribers: usize,
    sent: usize,
    acked: usize,
    publish_seconds: f64,
    entries: usize,
    expected: usize,
    received: usize,
    complete: usize,
    /// Publish-ack → event, every (subscriber, event), ms, sorted.
    ack_to_event: Vec<f64>,
    /// Publish sent → event, ms, sorted.
    send_to_event: Vec<f64>,
    /// Per publish, the slowest subscriber's ack → event, ms, sorted.
    slowest: Vec<f64>,
    /// Publish round trips, ms, sorted.
    publish_rtt: Vec<f64>,
    open_seconds: f64,
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
    other_cpu: Option<f64>,
    server_memory: Option<(u64, u64)>,
    load: String,
    problems: Vec<String>,
}

/// One phase: open `subscribers` streams, publish for the configured time, wait for every
/// event, check and measure.
fn phase(
    args: &Args,
    api: &Api,
    addr: &str,
    main_rt: &tokio::runtime::Runtime,
    sub_rt: &tokio::runtime::Runtime,
    repos: Vec<Repo>,
    subscribers: usize,
) -> (PhaseResult, Vec<Repo>) {
    let mut problems = Vec::new();
    let pid = args.server_pid.map(|p| p.to_string());
    let shared = Arc::new(Shared {
        ready: AtomicUsize::new(0),
        counts: (0..subscribers).map(|_| AtomicUsize::new(0)).collect(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let opening = Arc::new(Semaphore::new(OPENING));
    let (addr, token): (Arc<str>, _) = (addr.into(), api.token.clone());
    let capacity = (args.seconds * u64::from(args.rate)) as usize + 64;
    eprintln!("phase: {subscribers} subscriber(s): opening streams");
    let opened = Instant::now();
    let tasks: Vec<_> = (0..subscribers)
        .map(|me| {
            sub_rt.spawn(subscribe(
                addr.clone(),
                token.clone(),
                me,
                shared.clone(),
                opening.clone(),
                stop_rx.clone(),
                capacity,
            ))
        })
        .collect();
    while shared.ready.load(Ordering::Acquire) < subscribers
        && tasks.iter().all(|t| !t.is_finished())
        && opened.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let open_seconds = opened.elapsed().as_secs_f64();
    let ready = shared.ready.load(Ordering::Acquire);
    if ready < subscribers {
        problems.push(format!("only {ready} of {subscribers} streams started"));
    }
    eprintln!(
        "phase: {ready} stream(s) open in {open_seconds:.2} s; publishing {} s at {}/s",
        args.seconds, args.rate
    );

    let cpu0 = (
        pid.as_deref().and_then(cpu_seconds),
        cpu_seconds("self"),
        machine_busy_seconds(),
        Instant::now(),
    );
    let api_arc = Arc::new(Api {
        client: api.client.clone(),
        base: api.base.clone(),
        token: api.token.clone(),
    });
    let t_pub = Instant::now();
    let (publishes, repos) = main_rt.block_on(publish_for(api_arc, repos, args.seconds, args.rate));
    let publish_seconds = t_pub.elapsed().as_secs_f64();
    let acked = publishes.iter().filter(|p| p.status == 200).count();
    if acked < publishes.len() {
        problems.push(format!(
            "{} of {} publishes failed",
            publishes.len() - acked,
            publishes.len()
        ));
    }

    // Every acknowledged publish is one changefeed entry owed to every subscriber (checked
    // against the changefeed below): wait until each has that many, or the drain time ends.
    let waited = Instant::now();
    let expected_min = acked;
    loop {
        let counts: Vec<usize> = shared
            .counts
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .collect();
        let done = counts.iter().all(|&c| c >= expected_min)
            || tasks.iter().any(|t| t.is_finished()) && waited.elapsed() > Duration::from_secs(2);
        if done || waited.elapsed() > DRAIN {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Settle: anything beyond what was expected (a duplicate) arrives now, too.
    std::thread::sleep(Duration::from_millis(500));
    let cpu1 = (
        pid.as_deref().and_then(cpu_seconds),
        cpu_seconds("self"),
        machine_busy_seconds(),
        Instant::now(),
    );
    let server_memory = pid.as_deref().map(memory_kib);
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    stop_tx.send_replace(true);
    let subs: Vec<Subscription> = tasks
        .into_iter()
        .map(|t| sub_rt.block_on(t).unwrap())
        .collect();

    for (i, s) in subs.iter().enumerate() {
        if let Some(e) = &s.error {
            if problems.len() < 20 {
                problems.push(format!("subscriber {i}: {e}"));
            }
        }
    }
    let starts: Vec<Option<u64>> = subs.iter().map(|s| s.start).collect();
    let first_start = starts.first().copied().flatten();
    if let Some(s0) = first_start {
        let differ = starts.iter().filter(|s| **s != Some(s0)).count();
        if differ > 0 {
            problems.push(format!("{differ} streams started elsewhere than {s0}"));
        }
    }
    let entries = match first_start {
        Some(after) => main_rt.block_on(changefeed_after(api, after)),
        None => {
            problems.push("no stream start known".into());
            Vec::new()
        }
    };

    // Which publish each changefeed entry is, through the first subscriber's events.
    let by_publish: HashMap<(String, u64), usize> = publishes
        .iter()
        .enumerate()
        .filter(|(_, p)| p.status == 200)
        .map(|(i, p)| ((repos[p.repo].gun.clone(), p.targets_version), i))
        .collect();
    let detail: HashMap<u64, (&str, Option<u64>, u64)> = subs
        .first()
        .map(|s| {
            s.detail
                .iter()
                .map(|(id, g, t, v)| (*id, (g.as_str(), *t, *v)))
                .collect()
        })
        .unwrap_or_default();
    let mut of_id: HashMap<u64, usize> = HashMap::new();
    let mut unmatched = 0;
    for (id, gun, version) in &entries {
        match detail.get(id) {
            Some((g, Some(t), v)) if g == gun && v == version => {
                match by_publish.get(&(gun.clone(), *t)) {
                    Some(&p) => {
                        of_id.insert(*id, p);
                    }
                    None => unmatched += 1,
                }
            }
            _ => unmatched += 1,
        }
    }
    if unmatched > 0 {
        problems.push(format!(
            "{unmatched} changefeed entries match no acknowledged publish (or the first subscriber's event differs)"
        ));
    }
    if entries.len() != acked {
        problems.push(format!(
            "{} changefeed entries for {acked} acknowledged publishes",
            entries.len()
        ));
    }
    let want: Vec<u64> = entries.iter().map(|e| e.0).collect();
    let mut complete = 0;
    let mut received = 0;
    let mut wrong = 0;
    let mut ack_to_event = Vec::with_capacity(subscribers * want.len());
    let mut send_to_event = Vec::with_capacity(subscribers * want.len());
    let mut slowest = vec![f64::NEG_INFINITY; publishes.len()];
    let ms = |a: Instant, b: Instant| match a.checked_duration_since(b) {
        Some(d) => d.as_secs_f64() * 1e3,
        None => -(b.duration_since(a).as_secs_f64() * 1e3),
    };
    for s in &subs {
        received += s.events.len();
        let ids: Vec<u64> = s.events.iter().map(|e| e.0).collect();
        if ids == want {
            complete += 1;
        } else {
            wrong += 1;
        }
        for &(id, at) in &s.events {
            if let Some(&p) = of_id.get(&id) {
                let p_ = &publishes[p];
                let l = ms(at, p_.acked);
                ack_to_event.push(l);
                send_to_event.push(ms(at, p_.sent));
                slowest[p] = slowest[p].max(l);
            }
        }
    }
    if wrong > 0 {
        problems.push(format!(
            "{wrong} of {subscribers} subscribers did not get exactly the {} entries in order",
            want.len()
        ));
    }
    let mut slowest: Vec<f64> = slowest.into_iter().filter(|x| x.is_finite()).collect();
    let mut publish_rtt: Vec<f64> = publishes
        .iter()
        .filter(|p| p.status == 200)
        .map(|p| ms(p.acked, p.sent))
        .collect();
    for v in [
        &mut ack_to_event,
        &mut send_to_event,
        &mut slowest,
        &mut publish_rtt,
    ] {
        v.sort_by(f64::total_cmp);
    }
    let wall = cpu1.3.duration_since(cpu0.3).as_secs_f64();
    let share = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / wall * 100.0);
    let server_cpu = share(cpu0.0, cpu1.0);
    let client_cpu = share(cpu0.1, cpu1.1);
    let machine = (cpu1.2 - cpu0.2) / wall * 100.0;
    let other_cpu = client_cpu.map(|c| machine - server_cpu.unwrap_or(0.0) - c);
    eprintln!("phase: done, {} problem(s)", problems.len());
    (
        PhaseResult {
            subscribers,
            sent: publishes.len(),
            acked,
            publish_seconds,
            entries: want.len(),
            expected: subscribers * want.len(),
            received,
            complete,
            ack_to_event,
            send_to_event,
            slowest,
            publish_rtt,
            open_seconds,
            server_cpu,
            client_cpu,
            other_cpu,
            server_memory,
            load,
            problems,
        },
        repos,
    )
}

/// Every changefeed entry after `after`: (id, GUN, timestamp version).
async fn changefeed_after(api: &Api, after: u64) -> Vec<(u64, String, u64)> {
    let mut out = Vec::new();
    let mut pos = after;
    loop {
        let page = api
            .get(&format!(
                "/v2/_trust/changefeed?change_id={pos}&records=100"
            ))
            .await;
        let v: serde_json::Value = serde_json::from_str(&page).unwrap();
        let records = v["records"].as_array().cloned().unwrap_or_default();
        for r in &records {
            let id: u64 = r["ID"].as_str().unwrap().parse().unwrap();
            let gun = r["GUN"].as_str().unwrap().to_owned();
            let version = r["Version"].as_u64().unwrap();
            out.push((id, gun, version));
            pos = id;
        }
        if records.len() < 100 {
            return out;
        }
    }
}

fn report(args: &Args, results: &[PhaseResult], metrics: &str) {
    let f = |x: f64| format!("{x:.1}");
    let opt = |x: Option<f64>| x.map_or("—".to_owned(), |v| format!("{v:.0} %"));
    println!(
        "| subscribers | publishes acked/sent (per s) | events expected | events received | subscribers complete | ack→event p50 / p99 / max (ms) | slowest subscriber per publish p50 / p99 (ms) | sent→event p50 / p99 (ms) | publish p50 / p99 (ms) | streams opened in | server CPU | server RSS end (peak) | client CPU | other CPU | load avg |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for r in results {
        let (rss, hwm) = r.server_memory.unwrap_or((0, 0));
        println!(
            "| {} | {}/{} ({:.1}) | {} | {} | {}/{} | {} / {} / {} | {} / {} | {} / {} | {} / {} | {:.2} s | {} | {} MiB ({} MiB) | {} | {} | {} |",
            r.subscribers,
            r.acked,
            r.sent,
            r.acked as f64 / r.publish_seconds,
            r.expected,
            r.received,
            r.complete,
            r.subscribers,
            f(pct(&r.ack_to_event, 50.0)),
            f(pct(&r.ack_to_event, 99.0)),
            f(pct(&r.ack_to_event, 100.0)),
            f(pct(&r.slowest, 50.0)),
            f(pct(&r.slowest, 99.0)),
            f(pct(&r.send_to_event, 50.0)),
            f(pct(&r.send_to_event, 99.0)),
            f(pct(&r.publish_rtt, 50.0)),
            f(pct(&r.publish_rtt, 99.0)),
            r.open_seconds,
            opt(r.server_cpu),
            rss / 1024,
            hwm / 1024,
            opt(r.client_cpu),
            opt(r.other_cpu),
            r.load,
        );
    }
    println!();
    for r in results {
        let early = r.ack_to_event.iter().filter(|&&x| x < 0.0).count();
        println!(
            "{} subscriber(s): {} changefeed entries; {early} of {} deliveries ({:.1} %) arrived before their publish's 200 (negative latency); ack→event min {:.1} ms",
            r.subscribers,
            r.entries,
            r.ack_to_event.len(),
            100.0 * early as f64 / r.ack_to_event.len().max(1) as f64,
            pct(&r.ack_to_event, 0.0),
        );
    }
    if let [one, many] = results {
        // Ack → event is near zero with one subscriber (events often beat the 200), so its
        // p50 makes no ratio; sent → event is always positive.
        let ratio = |a: &[f64], b: &[f64], p: f64| pct(b, p) / pct(a, p);
        println!(
            "ratio {} subscribers / 1 subscriber, same run: ack→event p99 {:.1}×; sent→event p50 {:.1}×, p99 {:.1}×; server CPU {:.1}×",
            many.subscribers,
            ratio(&one.ack_to_event, &many.ack_to_event, 99.0),
            ratio(&one.send_to_event, &many.send_to_event, 50.0),
            ratio(&one.send_to_event, &many.send_to_event, 99.0),
            many.server_cpu.unwrap_or(f64::NAN) / one.server_cpu.unwrap_or(f64::NAN),
        );
        let p99 = pct(&many.ack_to_event, 99.0);
        let all = many.received == many.expected && many.complete == many.subscribers;
        println!(
            "target ({} subscribers, {}/s, every event to every subscriber, p99 ≤ {} ms): {} (every event: {}; p99 {:.1} ms)",
            args.subscribers,
            args.rate,
            args.target_p99_ms,
            if all && p99 <= args.target_p99_ms {
                "MET"
            } else {
                "MISSED"
            },
            if all { "yes" } else { "no" },
            p99
        );
    }
    for r in results {
        for p in &r.problems {
            println!("problem ({} subscribers): {p}", r.subscribers);
        }
    }
    let lines: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("vouch_event") || l.starts_with("vouch_overload_rejections_total")
        })
        .collect();
    eprintln!("server metrics at the end:\n{}", lines.join("\n"));
}
