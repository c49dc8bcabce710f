//! The client of the server's trust-change events (`GET /v2/_trust/events`,
//! `/v2/{gun}/_trust/events`): one stream ([`EventStream`], opened by
//! [`ServerClient::events`]) and a [`Follower`] that keeps one open across errors, server
//! restarts and the server's `reconnect` notices. Blocking, like the rest of the verifier's
//! IO; the wire format is [`vouch_tuf::api::event`].
//!
//! What it is not: a cache of trust data. An event says that a repository changed; a
//! consumer refreshes what it holds for that repository (e.g. with an
//! [`Updater`](crate::Updater)), which verifies the new metadata as always. Events carry
//! no signatures and are never trusted as metadata.
//!
//! How the parts relate:
//! - [`EventStream`] reads one response body into an [`SseReader`] (which bounds every line
//!   and message; the stream reads at most [`READ_CHUNK`] bytes at a time and holds nothing
//!   else), hands out [`StreamItem`]s, and refuses an event whose id does not follow the
//!   last one ([`is_next`]), so no id is ever delivered twice or out of order. The stream has
//!   no deadline for its whole body (it is endless) but an *idle* timeout: when nothing, not
//!   even a keep-alive comment, arrives for [`ServerClient::with_event_idle`] (by default
//!   [`DEFAULT_IDLE`], three of the server's default keep-alives), it fails with
//!   [`ServerError::NoAnswer`], so the caller reconnects instead of waiting on a dead
//!   connection.
//! - [`Follower`] reconnects after every error, end and notice, waiting as [`Backoff`] says
//!   (capped exponential, with jitter, reset after each successful connection), resuming
//!   after the last id it delivered; it reports connection changes ([`Connection`]) so a
//!   consumer can fall back to refreshing on an interval while disconnected.
//! - [`is_next`] and [`Backoff::delay`] are the two decisions, as pure functions.
//!
//! ```no_run
//! use std::ops::ControlFlow;
//! use vouch_verifier::server::{Connection, Follower, ServerClient, ServerOptions};
//! use vouch_tuf::reference::Gun;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ServerClient::new("https://vouch.example", &ServerOptions::default())?;
//! let gun = Gun::new("example.com/org/app")?;
//! let mut follower = Follower::new(&client, Some(&gun), Some(0));
//! follower.run(
//!     |event| {
//!         println!("{} changed (event {})", event.gun, event.id);
//!         ControlFlow::Continue(())
//!     },
//!     |state| {
//!         if let Connection::Disconnected { reason, retry_in } = state {
//!             eprintln!("events: {reason}; retrying in {retry_in:?}");
//!         }
//!         ControlFlow::Continue(())
//!     },
//! );
//! # Ok(()) }
//! ```

use std::io::Read;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::Response;
use reqwest::StatusCode;
use vouch_tuf::api::event::{Event, Frame, Notice, SseReader};
use vouch_tuf::api::Route;
use vouch_tuf::reference::Gun;

use super::{refusal_of, ServerClient, ServerError};
use crate::transport::{
    network, shared_client, timed_out, CrossHostRedirects, HttpOptions, TransportError,
};

/// How long an event stream waits for any bytes (an event or a keep-alive) before it fails:
/// 45 s, three of the server's default 15-second keep-alives.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(45);

/// Most bytes read from the connection at a time.
pub const READ_CHUNK: usize = 16 * 1024;

/// What an [`EventStream`] yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamItem {
    /// A trust change, its id greater than every id before it on this stream.
    Event(Event),
    /// The server ended the stream on purpose (the consumer lagged, or it is shutting
    /// down): reconnect after [`EventStream::last_id`]. The stream yields
    /// [`StreamItem::End`] after it.
    Notice(Notice),
    /// The server closed the stream without a notice (e.g. a proxy timed it out):
    /// reconnect after [`EventStream::last_id`]. Repeated on every later call.
    End,
}

/// Whether an event with id `id` may follow the last one delivered, `last` (`None` before
/// the first, when the stream started at the newest entry): ids strictly increase, so a
/// repeated or lower id is refused, never delivered twice.
///
/// ```
/// use vouch_verifier::server::events::is_next;
/// assert!(is_next(None, 1));
/// assert!(is_next(Some(0), 1));
/// assert!(is_next(Some(4), 9));
/// assert!(!is_next(Some(4), 4));
/// assert!(!is_next(Some(4), 3));
/// ```
pub fn is_next(last: Option<u64>, id: u64) -> bool {
    last.is_none_or(|last| id > last)
}

/// One open event stream: a response body read as Server-Sent Events.
pub struct EventStream {
    /// The server's base URL.
    server: String,
    /// What was asked, for errors.
    what: String,
    body: Response,
    reader: SseReader,
    /// The read buffer, [`READ_CHUNK`] bytes.
    chunk: Vec<u8>,
    last_id: Option<u64>,
    idle: Duration,
    /// The stream ended (a notice, the end of the body, or an error).
    done: bool,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("server", &self.server)
            .field("what", &self.what)
            .field("last_id", &self.last_id)
            .finish_non_exhaustive()
    }
}

impl ServerClient {
    /// Opens the stream of trust changes of `gun` (which needs `pull` on it), or of every
    /// repository (`None`, which needs a token with a wildcard scope), starting after event
    /// `after` (sent as `Last-Event-ID`; `Some(0)` is from the beginning of what the
    /// server keeps) or, with `None`, at the newest (only changes from now on).
    ///
    /// The request carries the client's token. A refusal (401, 403, 503 …) is
    /// [`ServerError::Refused`] and a 404 [`ServerError::NotFound`], as for every other
    /// request; a success that is not `text/event-stream` is [`ServerError::BadAnswer`].
    /// Connecting is bounded by the client's timeout; the answer and each later read by the
    /// idle timeout ([`ServerClient::with_event_idle`]); the body as a whole by nothing.
    pub fn events(
        &self,
        gun: Option<&Gun>,
        after: Option<u64>,
    ) -> Result<EventStream, ServerError> {
        let what = match gun {
            Some(g) => format!("the event stream of {g}"),
            None => "the event stream of every repository".to_owned(),
        };
        let http = HttpOptions {
            connect_timeout: self.timeout,
            // reqwest's blocking client applies its client-wide timeout to each wait (for
            // the answer, then for each read), never to the whole body: an idle timeout.
            timeout: self.event_idle,
            cross_host_redirects: CrossHostRedirects::Refuse,
            max_redirects: 0,
            user_agent: self.user_agent.clone(),
        };
        let client = shared_client(&self.server, &http).map_err(|e| ServerError::Setup {
            server: self.server.clone(),
            message: e.to_string(),
        })?;
        let mut request = client
            .get(Route::Events(gun.cloned()).url(&self.server))
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(after) = after {
            request = request.header("Last-Event-ID", after.to_string());
        }
        let token = self.token.as_ref().and_then(|t| t.bearer_token());
        let sent_token = token.is_some();
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let resp = request.send().map_err(|e| match network(&what, &e) {
            TransportError::TimedOut { .. } => ServerError::NoAnswer {
                server: self.server.clone(),
                waited: self.event_idle,
            },
            TransportError::Network { message, .. } => ServerError::Unreachable {
                server: self.server.clone(),
                message,
            },
            other => ServerError::Fetch(other),
        })?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Err(ServerError::NotFound { what });
        }
        if !status.is_success() {
            let refusal = refusal_of(status, resp, sent_token);
            return Err(ServerError::Refused { what, refusal });
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("text/event-stream") {
            return Err(ServerError::BadAnswer {
                message: format!("the answer is {content_type:?}, not text/event-stream"),
                what,
            });
        }
        Ok(EventStream {
            server: self.server.clone(),
            what,
            body: resp,
            reader: SseReader::default(),
            chunk: vec![0; READ_CHUNK],
            last_id: after,
            idle: self.event_idle,
            done: false,
        })
    }
}

impl EventStream {
    /// The id of the last event this stream delivered, else the `after` it was opened
    /// with: where to resume.
    pub fn last_id(&self) -> Option<u64> {
        self.last_id
    }

    /// The next event, notice or end, reading (and waiting) as needed. An error (nothing
    /// arrived for the idle timeout, the connection broke, a malformed frame, an id that
    /// does not increase) ends the stream: reconnect after [`EventStream::last_id`].
    /// Frames of kinds this client does not know, and keep-alives, are skipped.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<StreamItem, ServerError> {
        loop {
            if let Some(item) = self.poll()? {
                return Ok(item);
            }
        }
    }

    /// The next item if one is complete after at most one read, else `None` (bytes arrived,
    /// e.g. a keep-alive, but no item): lets a caller look at a stop flag between reads.
    fn poll(&mut self) -> Result<Option<StreamItem>, ServerError> {
        if self.done {
            return Ok(Some(StreamItem::End));
        }
        while let Some(frame) = self.reader.next_frame() {
            match frame {
                Ok(Frame::Event(e)) => {
                    if !is_next(self.last_id, e.id) {
                        self.done = true;
                        return Err(self.bad(format!(
                            "event {} arrived after event {}: ids must increase",
                            e.id,
                            self.last_id.unwrap_or_default()
                        )));
                    }
                    self.last_id = Some(e.id);
                    return Ok(Some(StreamItem::Event(e)));
                }
                Ok(Frame::Reconnect(n)) => {
                    self.done = true;
                    return Ok(Some(StreamItem::Notice(n)));
                }
                // Where the stream starts: a consumer that asked for new events only can
                // resume from here before any event came.
                Ok(Frame::Position(p)) => {
                    if self.last_id.is_none() {
                        self.last_id = Some(p);
                    }
                }
                Ok(Frame::Other(_)) => {}
                Err(e) => {
                    self.done = true;
                    return Err(self.bad(e.to_string()));
                }
            }
        }
        let n = loop {
            match self.body.read(&mut self.chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Err(
                        if e.kind() == std::io::ErrorKind::TimedOut || timed_out(&e) {
                            ServerError::NoAnswer {
                                server: self.server.clone(),
                                waited: self.idle,
                            }
                        } else {
                            ServerError::Fetch(TransportError::Io {
                                path: self.what.clone(),
                                source: e,
                            })
                        },
                    );
                }
            }
        };
        if n == 0 {
            self.done = true;
            return Ok(Some(StreamItem::End));
        }
        self.reader.push(&self.chunk[..n]);
        Ok(None)
    }

    fn bad(&self, message: String) -> ServerError {
        ServerError::BadAnswer {
            what: self.what.clone(),
            message,
        }
    }
}

/// How long a [`Follower`] waits before reconnecting: `initial`, doubling with each failed
/// attempt up to `max`, with jitter (each wait is between half and all of that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// 0.5 s doubling to 30 s.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (0 for the first since the last successful
    /// connection), given `jitter` in `[0, 1]`: `min(max, initial × 2^attempt)` scaled to
    /// between half of it (`jitter` 0) and all of it (`jitter` 1). Pure: the caller picks
    /// the jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vouch_verifier::server::Backoff;
    /// let b = Backoff::default();
    /// assert_eq!(b.delay(0, 1.0), Duration::from_millis(500));
    /// assert_eq!(b.delay(2, 1.0), Duration::from_secs(2));
    /// assert_eq!(b.delay(2, 0.0), Duration::from_secs(1));
    /// assert_eq!(b.delay(40, 1.0), Duration::from_secs(30));
    /// ```
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        let base = self.initial.saturating_mul(factor).min(self.max);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            1.0
        };
        base.mul_f64(0.5 + 0.5 * jitter)
    }
}

/// Why a [`Follower`]'s stream ended.
#[derive(Debug)]
pub enum Disconnect {
    /// The stream could not be opened, or failed (unreachable, refused, idle too long, a
    /// malformed frame, an id that did not increase …).
    Error(ServerError),
    /// The server ended it with a notice (the consumer lagged, or it is shutting down).
    Notice(Notice),
    /// The server closed it without a notice.
    Ended,
}

impl std::fmt::Display for Disconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disconnect::Error(e) => write!(f, "{e}"),
            Disconnect::Notice(n) => {
                write!(f, "the server ended the stream ({})", n.reason.as_str())?;
                if !n.message.is_empty() {
                    write!(f, ": {}", n.message)?;
                }
                Ok(())
            }
            Disconnect::Ended => write!(f, "the server closed the stream"),
        }
    }
}

/// How long a connection must stay up, delivering nothing, for the backoff to start again.
const HEALTHY: Duration = Duration::from_secs(30);

/// A change of a [`Follower`]'s connection, reported to its state hook.
#[derive(Debug)]
pub enum Connection<'a> {
    /// A stream is open, resuming after `after` (`None`: the first connection of a follower
    /// started at the newest entry; the server's first message says which id that was, and
    /// later connections resume from it, so nothing between two connections is missed).
    Connected {
        /// Where the stream resumed.
        after: Option<u64>,
    },
    /// The stream ended or could not be opened; the follower retries in `retry_in`.
    Disconnected {
        /// Why.
        reason: &'a Disconnect,
        /// How long the follower waits before reconnecting.
        retry_in: Duration,
    },
}

/// Follows a server's events across reconnections: every event after the starting point,
/// each exactly once and in id order, until told to stop.
#[derive(Debug)]
pub struct Follower {
    client: ServerClient,
    gun: Option<Gun>,
    last_id: Option<u64>,
    backoff: Backoff,
    stop: Arc<AtomicBool>,
}

/// How often a waiting follower looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

impl Follower {
    /// A follower of the events of `gun` (or of every repository) on `client`'s server,
    /// starting after `after` as [`ServerClient::events`] does.
    pub fn new(client: &ServerClient, gun: Option<&Gun>, after: Option<u64>) -> Self {
        Follower {
            client: client.clone(),
            gun: gun.cloned(),
            last_id: after,
            backoff: Backoff::default(),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// This follower, waiting between reconnections as `backoff` says.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// A flag that stops [`Follower::run`] when set (from any thread): at once while it
    /// waits to reconnect, else after the next frame or keep-alive, or at the idle timeout
    /// at the latest.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// The id of the last event delivered, else the starting point: where the next
    /// connection resumes.
    pub fn last_id(&self) -> Option<u64> {
        self.last_id
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Follows the events until `on_event` or `on_state` returns
    /// [`ControlFlow::Break`] or the stop flag is set. `on_event` gets every event once, in
    /// id order (an event counts as delivered once passed to it, even when it returns
    /// `Break`); `on_state` learns of each connection and disconnection, and may stop the
    /// follower by returning `Break` (e.g. on a refusal that retrying will not cure).
    pub fn run(
        &mut self,
        mut on_event: impl FnMut(&Event) -> ControlFlow<()>,
        mut on_state: impl FnMut(&Connection<'_>) -> ControlFlow<()>,
    ) {
        let mut attempt: u32 = 0;
        while !self.stopped() {
            let reason = match self.client.events(self.gun.as_ref(), self.last_id) {
                Err(e) => Disconnect::Error(e),
                Ok(mut stream) => {
                    let after = self.last_id;
                    if on_state(&Connection::Connected { after }).is_break() {
                        return;
                    }
                    let opened = Instant::now();
                    let outcome = self.drain(&mut stream, &mut on_event);
                    // The backoff starts again only after a connection that was worth
                    // something: one that delivered an event or stayed up a while. A
                    // stream that fails at once, again and again (an event this client
                    // cannot read, a server ending streams at once), backs off as far as
                    // one that cannot connect.
                    if self.last_id != after || opened.elapsed() >= HEALTHY {
                        attempt = 0;
                    }
                    match outcome {
                        ControlFlow::Break(()) => return,
                        ControlFlow::Continue(reason) => reason,
                    }
                }
            };
            if self.stopped() {
                return;
            }
            let retry_in = self.backoff.delay(attempt, jitter());
            attempt = attempt.saturating_add(1);
            let state = Connection::Disconnected {
                reason: &reason,
                retry_in,
            };
            if on_state(&state).is_break() {
                return;
            }
            let until = Instant::now() + retry_in;
            while !self.stopped() {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(STOP_POLL));
            }
        }
    }

    /// Delivers a stream's events until it ends (`Continue` with why) or the consumer
    /// stops (`Break`).
    fn drain(
        &mut self,
        stream: &mut EventStream,
        on_event: &mut impl FnMut(&Event) -> ControlFlow<()>,
    ) -> ControlFlow<(), Disconnect> {
        loop {
            if self.stopped() {
                return ControlFlow::Break(());
            }
            let polled = stream.poll();
            // A stream that started at "new events only" says where that was: resume
            // from there, so nothing between two connections is missed.
            if self.last_id.is_none() {
                self.last_id = stream.last_id();
            }
            match polled {
                Ok(None) => {}
                Ok(Some(StreamItem::Event(e))) => {
                    // The stream checks this against its own start; the follower checks it
                    // against what it delivered, whatever the stream.
                    if !is_next(self.last_id, e.id) {
                        return ControlFlow::Continue(Disconnect::Error(ServerError::BadAnswer {
                            what: "the event stream".to_owned(),
                            message: format!(
                                "event {} arrived after event {}: ids must increase",
                                e.id,
                                self.last_id.unwrap_or_default()
                            ),
                        }));
                    }
                    self.last_id = Some(e.id);
                    on_event(&e)?;
                }
                Ok(Some(StreamItem::Notice(n))) => {
                    return ControlFlow::Continue(Disconnect::Notice(n))
                }
                Ok(Some(StreamItem::End)) => return ControlFlow::Continue(Disconnect::Ended),
                Err(e) => return ControlFlow::Continue(Disconnect::Error(e)),
            }
        }
    }
}

/// A number in `[0, 1)` that differs between calls and processes (for spreading
/// reconnections, not for secrets): std's randomly keyed hasher over the time.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::{BufRead, BufReader, Write};

    use vouch_tuf::api::event::{EventKind, NoticeReason, KEEP_ALIVE};
    use vouch_tuf::time::Timestamp;

    use super::*;
    use crate::server::ServerOptions;

    #[test]
    fn ids_must_strictly_increase() {
        assert!(is_next(None, 1));
        assert!(is_next(None, 99));
        assert!(is_next(Some(0), 1));
        assert!(is_next(Some(5), 6));
        assert!(is_next(Some(5), 60));
        assert!(!is_next(Some(5), 5));
        assert!(!is_next(Some(5), 4));
        assert!(!is_next(Some(u64::MAX), u64::MAX));
    }

    #[test]
    fn the_backoff_doubles_to_its_cap_with_jitter_between_half_and_all() {
        let b = Backoff::default();
        let full: Vec<u64> = (0..9).map(|a| b.delay(a, 1.0).as_millis() as u64).collect();
        assert_eq!(
            full,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(250));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(3000));
        assert_eq!(b.delay(u32::MAX, 1.0), Duration::from_secs(30));
        assert_eq!(b.delay(u32::MAX, 0.0), Duration::from_secs(15));
        // Out-of-range jitter is clamped, never beyond the cap nor below half.
        assert_eq!(b.delay(1, 7.0), Duration::from_secs(1));
        assert_eq!(b.delay(1, -3.0), Duration::from_millis(500));
        assert_eq!(b.delay(1, f64::NAN), Duration::from_secs(1));
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    fn event(id: u64) -> Event {
        Event {
            id,
            kind: EventKind::Update,
            gun: "example.com/app".into(),
            version: id,
            sha256: "ab".repeat(32),
            roles: vec![("timestamp".into(), id)],
            created_at: Timestamp::from_unix(1_800_000_000),
        }
    }

    /// A server that answers each connection with the next of `answers` (head and body,
    /// then keeps the connection open for `hold`), and records each request's head.
    fn server(answers: Vec<(Vec<u8>, Duration)>) -> (String, std::sync::mpsc::Receiver<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for (answer, hold) in answers {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let _ = tx.send(head);
                let _ = stream.write_all(&answer);
                let _ = stream.flush();
                std::thread::sleep(hold);
            }
        });
        (base, rx)
    }

    /// A server that takes one connection, reads its request head, answers with an event
    /// stream's head, then leaves the stream to `write`; its base URL.
    fn streaming(write: impl FnOnce(&mut std::net::TcpStream) + Send + 'static) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            stream.write_all(&sse(b"")).unwrap();
            write(&mut stream);
        });
        base
    }

    fn sse(body: &[u8]) -> Vec<u8> {
        let mut a =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
                .to_vec();
        a.extend_from_slice(body);
        a
    }

    fn client(base: &str) -> ServerClient {
        ServerClient::new(base, &ServerOptions::default())
            .unwrap()
            .with_event_idle(Duration::from_millis(700))
    }

    #[test]
    fn a_stream_yields_events_then_its_notice_then_ends() {
        let mut body = b"retry: 2000\n\n".to_vec();
        body.extend_from_slice(KEEP_ALIVE);
        body.extend_from_slice(&event(3).sse_frame());
        body.extend_from_slice(b"event: future\ndata: {}\n\n");
        body.extend_from_slice(&event(5).sse_frame());
        let notice = Notice {
            reason: NoticeReason::Shutdown,
            message: "bye".into(),
        };
        body.extend_from_slice(&notice.sse_frame());
        let (base, heads) = server(vec![(sse(&body), Duration::ZERO)]);
        let gun = Gun::new("example.com/app").unwrap();
        let mut s = client(&base).events(Some(&gun), Some(2)).unwrap();
        let head = heads.recv().unwrap();
        assert!(
            head.starts_with("GET /v2/example.com/app/_trust/events HTTP/1.1"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase().contains("last-event-id: 2\r\n"),
            "{head}"
        );
        assert_eq!(s.next().unwrap(), StreamItem::Event(event(3)));
        assert_eq!(s.next().unwrap(), StreamItem::Event(event(5)));
        assert_eq!(s.last_id(), Some(5));
        assert_eq!(s.next().unwrap(), StreamItem::Notice(notice));
        assert_eq!(s.next().unwrap(), StreamItem::End);
        assert_eq!(s.last_id(), Some(5));
    }

    #[test]
    fn a_repeated_or_lower_id_is_an_error_never_a_second_delivery() {
        for (start, ids) in [(None, [4, 4]), (None, [4, 2]), (Some(4), [4, 5])] {
            let mut body = Vec::new();
            for id in ids {
                body.extend_from_slice(&event(id).sse_frame());
            }
            let (base, _) = server(vec![(sse(&body), Duration::ZERO)]);
            let mut s = client(&base).events(None, start).unwrap();
            let mut got = Vec::new();
            let err = loop {
                match s.next() {
                    Ok(StreamItem::Event(e)) => got.push(e.id),
                    Ok(other) => panic!("{start:?} {ids:?}: expected an error, got {other:?}"),
                    Err(e) => break e,
                }
            };
            assert!(matches!(err, ServerError::BadAnswer { .. }), "{err:?}");
            assert!(err.to_string().contains("ids must increase"), "{err}");
            let want: Vec<u64> = if start.is_some() { vec![] } else { vec![4] };
            assert_eq!(got, want, "{start:?} {ids:?}");
            assert_eq!(s.next().unwrap(), StreamItem::End);
        }
    }

    #[test]
    fn a_silent_stream_fails_at_the_idle_timeout() {
        let (base, _) = server(vec![(sse(b"retry: 2000\n\n"), Duration::from_secs(10))]);
        let mut s = client(&base).events(None, None).unwrap();
        let started = Instant::now();
        let e = s.next().unwrap_err();
        assert!(matches!(e, ServerError::NoAnswer { .. }), "{e:?}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(600) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    }

    #[test]
    fn keep_alives_hold_the_idle_timeout_off() {
        // Keep-alives every 300 ms for 1.5 s (the idle timeout is 700 ms), then an event.
        let base = streaming(|stream| {
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(300));
                stream.write_all(KEEP_ALIVE).unwrap();
            }
            stream.write_all(&event(1).sse_frame()).unwrap();
            std::thread::sleep(Duration::from_secs(5));
        });
        let mut s = client(&base).events(None, None).unwrap();
        assert_eq!(s.next().unwrap(), StreamItem::Event(event(1)));
    }

    #[test]
    fn other_answers_are_refusals_or_bad_answers() {
        let refusal = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"vouch\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec();
        let json = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_vec();
        let busy =
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec();
        let (base, _) = server(vec![
            (refusal, Duration::ZERO),
            (json, Duration::ZERO),
            (busy, Duration::ZERO),
        ]);
        let c = client(&base);
        match c.events(None, None).unwrap_err() {
            ServerError::Refused { refusal, .. } => {
                assert_eq!(refusal.status, 401);
                assert!(refusal.auth.is_some());
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(matches!(
            c.events(None, None).unwrap_err(),
            ServerError::BadAnswer { .. }
        ));
        match c.events(None, None).unwrap_err() {
            ServerError::Refused { refusal, .. } => assert_eq!(refusal.status, 503),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// The follower resumes after the last event it delivered on every reconnection, skips
    /// nothing, repeats nothing (a server that replays an old id is disconnected), and
    /// reports each connection change.
    #[test]
    fn the_follower_resumes_after_what_it_delivered() {
        let frames = |ids: &[u64]| {
            let mut b = Vec::new();
            for &id in ids {
                b.extend_from_slice(&event(id).sse_frame());
            }
            b
        };
        let mut replay = frames(&[2]);
        replay.extend_from_slice(&frames(&[4]));
        let mut lagged = frames(&[5]);
        lagged.extend_from_slice(
            &Notice {
                reason: NoticeReason::Lagged,
                message: String::new(),
            }
            .sse_frame(),
        );
        let (base, heads) = server(vec![
            (sse(&frames(&[1, 2])), Duration::ZERO),
            // Replays 2 (already delivered): refused, the follower reconnects after 2.
            (sse(&replay), Duration::ZERO),
            (sse(&frames(&[3, 4])), Duration::ZERO),
            (sse(&lagged), Duration::ZERO),
            (sse(&frames(&[6])), Duration::from_secs(5)),
        ]);
        let mut f = Follower::new(&client(&base), None, Some(0)).with_backoff(Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(20),
        });
        let mut got = Vec::new();
        let mut states = Vec::new();
        f.run(
            |e| {
                got.push(e.id);
                if e.id == 6 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
            |s| {
                states.push(match s {
                    Connection::Connected { after } => format!("connected after {after:?}"),
                    Connection::Disconnected { reason, .. } => match reason {
                        Disconnect::Error(_) => "error".to_owned(),
                        Disconnect::Notice(n) => n.reason.as_str().to_owned(),
                        Disconnect::Ended => "ended".to_owned(),
                    },
                });
                ControlFlow::Continue(())
            },
        );
        assert_eq!(got, [1, 2, 3, 4, 5, 6]);
        assert_eq!(f.last_id(), Some(6));
        let resumed: Vec<String> = (0..5)
            .map(|_| {
                let head = heads.recv().unwrap().to_ascii_lowercase();
                head.lines()
                    .find_map(|l| l.strip_prefix("last-event-id: ").map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(resumed, ["0", "2", "2", "4", "5"]);
        assert_eq!(
            states,
            [
                "connected after Some(0)",
                "ended",
                "connected after Some(2)",
                "error",
                "connected after Some(2)",
                "ended",
                "connected after Some(4)",
                "lagged",
                "connected after Some(5)",
            ]
        );
    }

    /// The stop flag ends a follower connected to a stream that sends only keep-alives
    /// (with a far longer idle timeout): it looks at the flag after each read.
    #[test]
    fn a_follower_on_an_idle_stream_stops_when_told() {
        let base = streaming(|stream| {
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(100));
                if stream.write_all(KEEP_ALIVE).is_err() {
                    return;
                }
            }
        });
        let c = client(&base).with_event_idle(Duration::from_secs(60));
        let mut f = Follower::new(&c, None, None);
        let stop = f.stop_flag();
        let started = Instant::now();
        f.run(
            |_| ControlFlow::Continue(()),
            |s| {
                assert!(matches!(s, Connection::Connected { after: None }), "{s:?}");
                let stop = stop.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    stop.store(true, Ordering::SeqCst);
                });
                ControlFlow::Continue(())
            },
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    /// The stop flag ends a follower that is waiting to reconnect, and the state hook can
    /// stop it too.
    #[test]
    fn a_follower_stops_when_told() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let mut f = Follower::new(&client(&base), None, None).with_backoff(Backoff {
            initial: Duration::from_secs(60),
            max: Duration::from_secs(60),
        });
        let stop = f.stop_flag();
        let started = Instant::now();
        let mut disconnects = 0;
        f.run(
            |_| ControlFlow::Continue(()),
            |s| {
                if let Connection::Disconnected { reason, .. } = s {
                    assert!(
                        matches!(reason, Disconnect::Error(ServerError::Unreachable { .. })),
                        "{reason:?}"
                    );
                    disconnects += 1;
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(200));
                        stop.store(true, Ordering::SeqCst);
                    });
                }
                ControlFlow::Continue(())
            },
        );
        assert_eq!(disconnects, 1);
        assert!(started.elapsed() < Duration::from_secs(10));

        let mut f = Follower::new(&client(&base), None, None);
        let mut calls = 0;
        f.run(
            |_| ControlFlow::Continue(()),
            |_| {
                calls += 1;
                ControlFlow::Break(())
            },
        );
        assert_eq!(calls, 1);
    }
}
