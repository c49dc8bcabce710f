//! The changefeed as Server-Sent Events: `GET /v2/_trust/events` (every repository, which
//! needs a wildcard scope) and `GET /v2/{gun}/_trust/events` (`pull` on the GUN).
//!
//! A stream starts after the id in the `Last-Event-ID` header, else after `?after=ID`, else
//! after the newest entry (only new changes); `after=0` starts at the beginning. It sends
//! every entry after that point in id order, first from the store (when the point is older
//! than the server's buffer, see [`crate::events`]) and then live, each exactly once, with
//! keep-alive comments while idle. Frames are made by a task of the stream's own and wait
//! in a queue of `events.stream_queue`; a consumer that falls behind the buffer while its
//! queue is full gets a `reconnect` notice (reason `lagged`) and is disconnected, as are all
//! streams (reason `shutdown`) when the server stops. The wire format is
//! [`vouch_tuf::api::event`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hyper::body::{Bytes, Frame};
use tokio::sync::mpsc;
use vouch_tuf::api::event::{position_frame, Notice, NoticeReason, KEEP_ALIVE};
use vouch_tuf::reference::Gun;

use super::auth::authorize;
use super::middleware::overloaded;
use super::AppState;
use crate::auth::{Action, Target};
use crate::error::AppError;
use crate::events::{read_store_behind, Full, Hub, Read, StreamSlot};
use crate::metrics::Metrics;
use crate::store::Store;

/// Entries taken from the buffer per look.
const BATCH: usize = 256;

/// How long a stream's last notice may wait for room in its queue before the stream is
/// dropped without it.
const NOTICE_WAIT: Duration = Duration::from_secs(5);

/// The retry hint sent first: how long a browser-style client waits before reconnecting.
const RETRY: &[u8] = b"retry: 2000\n\n";

/// Opens a stream of the changefeed of `gun`, or of every repository.
pub(super) async fn get(
    st: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    gun: Option<Gun>,
) -> Result<Response, AppError> {
    let target = gun.as_ref().map_or(Target::All, Target::Gun);
    let who = authorize(st, headers, target, Action::Pull)?;
    // A stream authorised by an expiring credential (a JWT) ends when it expires.
    // It is accepted through the whole second `valid_until`: the stream ends when that
    // second does.
    let ends = who.valid_until().map(|until| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let end = Duration::from_secs(until.saturating_add(1).max(0) as u64);
        tokio::time::Instant::now() + end.saturating_sub(now)
    });
    let hub = st.events().clone();
    let after = start(headers, uri)?.unwrap_or_else(|| hub.head());
    if after > hub.head() {
        // Ahead of this process's buffer: a replica that has not read the newest entries
        // yet, or an id this server never gave (its store restored from an older backup):
        // the store tells which, and a consumer is never left waiting silently for ids
        // that were given out before.
        let store = st.store();
        let newest = super::blocking(move || crate::events::newest(store.as_ref())).await?;
        if after > newest {
            return Err(AppError::bad_request(
                vouch_tuf::api::code::INVALID_PARAMETER,
                format!(
                    "event id {after} is after the newest event, {newest}: this server's history does not reach it (was its store restored from an older backup?); start again from 0, or without an id for new events only"
                ),
            ));
        }
    }
    let slot = match hub.open_stream(&who.identity()) {
        Ok(slot) => slot,
        Err(Full::Server) => {
            st.metrics.overloaded("event_streams");
            tracing::warn!("over capacity: too many event streams open");
            return Ok(overloaded(
                st.capacity.retry_after,
                "too many event streams are open: retry later",
            ));
        }
        Err(Full::Client) => {
            st.metrics.overloaded("event_streams_client");
            tracing::warn!(client = %who.identity(), "too many event streams open for one client");
            return Ok(overloaded(
                st.capacity.retry_after,
                "this client has as many event streams open as it may: close one, or retry later",
            ));
        }
    };
    let (tx, rx) = mpsc::channel(hub.stream_queue);
    tokio::spawn(produce(st.clone(), gun, after, tx, slot, ends));
    let mut resp = (StatusCode::OK, axum::body::Body::new(EventBody(rx))).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies that buffer responses (nginx) would hold events back.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// Where the client asks to start: `Last-Event-ID`, else `?after=`; `None` for neither.
/// Pure: only the headers and the URI are read.
pub(crate) fn start(headers: &HeaderMap, uri: &Uri) -> Result<Option<u64>, AppError> {
    let bad = |what: &str, v: &str| {
        AppError::bad_request(
            vouch_tuf::api::code::INVALID_PARAMETER,
            format!("{what} {v:?} is not a changefeed id (a non-negative integer)"),
        )
    };
    let id = |what: &str, v: &str| -> Result<u64, AppError> {
        if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(what, v));
        }
        v.parse::<u64>()
            .ok()
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| bad(what, v))
    };
    if let Some(v) = headers.get("last-event-id") {
        let v = v.to_str().map_err(|_| bad("Last-Event-ID", "(not text)"))?;
        return id("Last-Event-ID", v.trim()).map(Some);
    }
    let mut after = None;
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("after", v)) if after.is_none() => after = Some(id("after", v)?),
            _ => {
                return Err(AppError::bad_request(
                    vouch_tuf::api::code::INVALID_PARAMETER,
                    format!("unknown or repeated query parameter {pair:?}: only after=ID"),
                ))
            }
        }
    }
    Ok(after)
}

/// A response body that is the frames a stream's task queues.
struct EventBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// The frames a stream's task sends, and whether it had to wait for room.
struct Sink {
    tx: mpsc::Sender<Bytes>,
    /// A send found the queue full since the stream last caught up.
    stalled: bool,
}

impl Sink {
    /// Queues a frame; `false` when the client has gone.
    async fn send(&mut self, frame: Bytes) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(frame)) => {
                self.stalled = true;
                self.tx.send(frame).await.is_ok()
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Ends the stream with a notice, if there is room for it soon.
    async fn end(self, reason: NoticeReason, message: &str) {
        let notice = Notice {
            reason,
            message: message.to_owned(),
        };
        let frame = Bytes::from(notice.sse_frame());
        let _ = tokio::time::timeout(NOTICE_WAIT, self.tx.send(frame)).await;
    }
}

/// The stream's task: every entry after `pos` (of `gun`, when given), then live ones, until
/// the client goes, falls behind, or the server shuts down.
async fn produce(
    st: AppState,
    gun: Option<Gun>,
    pos: u64,
    tx: mpsc::Sender<Bytes>,
    _slot: StreamSlot,
    ends: Option<tokio::time::Instant>,
) {
    let metrics = st.metrics.clone();
    metrics.event_stream_opened();
    let last = tx.clone();
    let stream = run(st.store(), &metrics, st.events().clone(), gun, pos, tx);
    let outcome = match ends {
        None => stream.await,
        Some(at) => match tokio::time::timeout_at(at, stream).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let sink = Sink {
                    tx: last,
                    stalled: false,
                };
                sink.end(
                    NoticeReason::CredentialExpired,
                    "the token this stream was opened with expired: reconnect with a fresh one and your last event id",
                )
                .await;
                Some(NoticeReason::CredentialExpired)
            }
        },
    };
    if let Some(reason) = outcome {
        metrics.event_stream_ended(reason.as_str());
    }
    metrics.event_stream_closed();
}

/// [`produce`]'s loop; the notice the stream ended with, if it ended with one.
async fn run(
    store: Arc<dyn Store>,
    metrics: &Metrics,
    hub: Arc<Hub>,
    gun: Option<Gun>,
    mut pos: u64,
    tx: mpsc::Sender<Bytes>,
) -> Option<NoticeReason> {
    let mut heads = hub.subscribe();
    let mut closing = hub.closing();
    let mut sink = Sink { tx, stalled: false };
    let name = gun.as_ref().map(|g| g.as_str().to_owned());
    let mut first = RETRY.to_vec();
    first.extend_from_slice(&position_frame(pos));
    if !sink.send(Bytes::from(first)).await {
        return None;
    }
    // Whether the stream has caught up with the buffer at least once.
    let mut live = false;
    loop {
        if *closing.borrow() {
            sink.end(
                NoticeReason::Shutdown,
                "the server is shutting down: reconnect with your last event id",
            )
            .await;
            return Some(NoticeReason::Shutdown);
        }
        // Marked seen before reading, so an entry added after the read wakes the wait.
        heads.borrow_and_update();
        let (events, next) = match hub.read(pos, name.as_deref(), BATCH) {
            Read::Entries(events, next) => (events, next),
            Read::Behind if live && sink.stalled => {
                sink.end(
                    NoticeReason::Lagged,
                    "the consumer fell too far behind: reconnect with your last event id",
                )
                .await;
                return Some(NoticeReason::Lagged);
            }
            // Older than the buffer: from the store (a page always moves the position: the
            // store shows every entry up to the hub's head, which is past the floor).
            Read::Behind => match read_store_behind(store.clone(), &hub, gun.clone(), pos).await {
                Ok(read) => read,
                Err(e) => {
                    tracing::warn!(error = %e, "an event stream cannot read the changefeed: ending it");
                    return None;
                }
            },
        };
        let idle = events.is_empty() && next == pos;
        for e in &events {
            if !sink.send(e.frame.clone()).await {
                return None;
            }
            metrics.event_sent();
        }
        pos = next;
        if !idle {
            continue;
        }
        live = true;
        sink.stalled = false;
        tokio::select! {
            _ = heads.changed() => {}
            _ = closing.changed() => {}
            _ = sink.tx.closed() => return None,
            _ = tokio::time::sleep(hub.keep_alive) => {
                if !sink.send(Bytes::from_static(KEEP_ALIVE)).await {
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(headers: &[(&str, &str)], uri: &str) -> Result<Option<u64>, AppError> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        start(&h, &uri.parse().unwrap())
    }

    #[test]
    fn the_start_is_the_last_event_id_else_after_else_none() {
        assert_eq!(at(&[], "/v2/_trust/events").unwrap(), None);
        assert_eq!(at(&[], "/v2/_trust/events?after=0").unwrap(), Some(0));
        assert_eq!(at(&[], "/v2/_trust/events?after=42").unwrap(), Some(42));
        assert_eq!(
            at(&[("last-event-id", "7")], "/v2/_trust/events?after=42").unwrap(),
            Some(7)
        );
        for bad in [
            "-1",
            "1.5",
            "x",
            "",
            "99999999999999999999",
            "9223372036854775808",
        ] {
            assert!(at(&[("last-event-id", bad)], "/").is_err(), "{bad}");
            assert!(at(&[], &format!("/?after={bad}")).is_err(), "{bad}");
        }
        assert!(at(&[], "/?after=1&after=2").is_err());
        assert!(at(&[], "/?since=1").is_err());
    }

    /// A consumer that stops reading while the buffer moves past it gets every event it
    /// was owed up to its queue, then a `lagged` notice, and its stream ends; one that
    /// keeps reading through the same burst gets everything, from the store.
    #[tokio::test]
    async fn a_stalled_consumer_behind_the_buffer_is_told_to_reconnect() {
        use crate::store::{Direction, NewFile, SqliteStore};
        use vouch_tuf::api::event::{Frame, SseReader};
        use vouch_tuf::time::Timestamp;

        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
        let gun = Gun::new("example.com/app").unwrap();
        let publish = |from: u64, to: u64| {
            for v in from..=to {
                let file = NewFile {
                    role: "timestamp".into(),
                    version: v,
                    bytes: format!("{{\"v\":{v}}}").into_bytes(),
                };
                let expected = (v > 1).then(|| v - 1);
                store
                    .publish(&gun, expected, &[file], Timestamp::from_unix(1_800_000_000))
                    .unwrap();
            }
            store
                .changes(None, Some(from as i64 - 1), Direction::Forward, 500)
                .unwrap()
        };
        let events = |frames: &[u8]| {
            let mut r = SseReader::default();
            r.push(frames);
            std::iter::from_fn(|| r.next_frame())
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        };
        let settle = || tokio::time::sleep(Duration::from_millis(100));

        for keeps_reading in [false, true] {
            let hub = Arc::new(Hub::new(
                crate::events::newest(store.as_ref()).unwrap(),
                4,
                (8, 8),
                1,
                Duration::from_secs(60),
                Arc::new(tokio::sync::Notify::new()),
            ));
            let start = hub.head();
            let (tx, mut rx) = mpsc::channel(1);
            let metrics = Arc::new(Metrics::default());
            let task = {
                let (store, metrics, hub) = (store.clone(), metrics.clone(), hub.clone());
                tokio::spawn(async move { run(store, &metrics, hub, None, start, tx).await })
            };
            let first = rx.recv().await.unwrap();
            assert!(first.starts_with(RETRY));
            assert_eq!(events(&first), [Frame::Position(start)]);
            settle().await;
            // A burst larger than the buffer: the stream catches up from the store.
            hub.extend(&publish(start + 1, start + 20));
            let mut got = Vec::new();
            if keeps_reading {
                for _ in 0..20 {
                    got.extend_from_slice(&rx.recv().await.unwrap());
                }
            }
            settle().await;
            // More than the buffer again while the consumer does not read.
            hub.extend(&publish(start + 21, start + 30));
            settle().await;
            while let Ok(Some(frame)) =
                tokio::time::timeout(Duration::from_millis(500), rx.recv()).await
            {
                got.extend_from_slice(&frame);
            }
            let frames = events(&got);
            let ids: Vec<u64> = frames
                .iter()
                .filter_map(|f| match f {
                    Frame::Event(e) => Some(e.id),
                    _ => None,
                })
                .collect();
            if keeps_reading {
                assert_eq!(ids, (start + 1..=start + 30).collect::<Vec<_>>());
                assert!(!task.is_finished(), "a consumer that kept up was dropped");
                task.abort();
            } else {
                assert_eq!(ids, (start + 1..=start + 20).collect::<Vec<_>>());
                let last = frames.last().unwrap();
                assert!(
                    matches!(last, Frame::Reconnect(n) if n.reason == NoticeReason::Lagged),
                    "{last:?}"
                );
                assert_eq!(task.await.unwrap(), Some(NoticeReason::Lagged));
            }
        }
    }
}
