//! Following the changefeed, in one place: [`follow`] reads the entries after the last one
//! it saw (when this process wrote one, at once; else every poll interval, for the writes
//! of other replicas sharing the store), drops what this process cached of the repositories
//! they changed, and keeps the newest ones in [`Hub`], the shared, bounded buffer the event
//! streams (`crate::http::events`) and webhook deliveries read from.
//!
//! Why nothing is skipped: changefeed ids become visible in id order (a guarantee of every
//! [`Store`]), so "every entry after the last id seen" is complete on every read. The hub
//! holds every entry with an id in `(floor, head]`; a reader positioned at or after `floor`
//! reads from it, one positioned before reads the store ([`Hub::read`] tells which), and the
//! two agree because the store already shows every entry up to `head`.
//!
//! What is bounded: the hub's buffer (`events.buffer_events` entries, the oldest dropped
//! first), the open streams (`events.max_streams`), and each stream's queue of frames
//! waiting to be written (`events.stream_queue`): a consumer that falls behind the buffer
//! while its queue is full is sent a `reconnect` notice and disconnected, and resumes from
//! its last event id, from the store.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Bytes;
use tokio::sync::{watch, Notify};
use vouch_tuf::api::event::{Event, EventKind};
use vouch_tuf::reference::Gun;

use crate::store::{Change, ChangeCategory, Direction, Store, StoreError};

/// Changefeed entries read per store query.
pub(crate) const PAGE: usize = 500;

/// The event a changefeed entry is, as the server sends it ([`Event::bounded`]: a change
/// writing more roles than an event lists lists none).
pub(crate) fn event_of(c: &Change) -> Event {
    Event {
        id: c.id.max(0) as u64,
        kind: match c.category {
            ChangeCategory::Update => EventKind::Update,
            ChangeCategory::Deletion => EventKind::Deletion,
        },
        gun: c.gun.clone(),
        version: c.version,
        sha256: c.sha256.clone(),
        roles: c.roles.clone(),
        created_at: c.created_at,
    }
    .bounded()
}

/// A buffered entry: its event, and the event's SSE frame, made once for every stream.
#[derive(Debug)]
pub(crate) struct Buffered {
    pub(crate) event: Event,
    pub(crate) frame: Bytes,
}

impl Buffered {
    pub(crate) fn of(c: &Change) -> Arc<Self> {
        let event = event_of(c);
        let frame = Bytes::from(event.sse_frame());
        Arc::new(Buffered { event, frame })
    }
}

/// The newest changefeed entries, and the signals of new ones and of shutdown.
pub(crate) struct Hub {
    ring: Mutex<Ring>,
    /// The newest id in the hub: changes whenever entries are added.
    head: watch::Sender<u64>,
    /// Poked after every write of this process, so [`follow`] reads it at once.
    wake: Arc<Notify>,
    /// Set when the server shuts down: streams end.
    closing: watch::Sender<bool>,
    /// Streams open now, and the most allowed.
    open: AtomicUsize,
    max_streams: usize,
    /// Streams open now per client (`token:NAME`, `jwt:SUBJECT`, `anonymous`), and the most
    /// one client may have: so that one credential, or anonymous readers together, cannot
    /// take every stream.
    per_client: Mutex<std::collections::HashMap<String, usize>>,
    max_per_client: usize,
    /// Frames one stream may have waiting to be written.
    pub(crate) stream_queue: usize,
    /// How often an idle stream gets a keep-alive comment.
    pub(crate) keep_alive: Duration,
}

/// Every entry with an id in `(floor, head]`, oldest first, at most `capacity`.
struct Ring {
    entries: VecDeque<Arc<Buffered>>,
    floor: u64,
    capacity: usize,
}

/// What [`Hub::read`] found after a position.
#[derive(Debug)]
pub(crate) enum Read {
    /// The entries after the position (of the GUN asked for, if one was), and the position
    /// after them: every entry up to it has been considered.
    Entries(Vec<Arc<Buffered>>, u64),
    /// The position is older than the buffer: read the store.
    Behind,
}

impl Hub {
    /// A hub holding up to `capacity` entries, starting after changefeed id `head`.
    pub(crate) fn new(
        head: u64,
        capacity: usize,
        (max_streams, max_per_client): (usize, usize),
        stream_queue: usize,
        keep_alive: Duration,
        wake: Arc<Notify>,
    ) -> Self {
        Hub {
            ring: Mutex::new(Ring {
                entries: VecDeque::new(),
                floor: head,
                capacity: capacity.max(1),
            }),
            head: watch::Sender::new(head),
            wake,
            closing: watch::Sender::new(false),
            open: AtomicUsize::new(0),
            max_streams,
            per_client: Mutex::default(),
            max_per_client,
            stream_queue: stream_queue.max(1),
            keep_alive,
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // The ring is a list and two numbers, updated in single steps: still consistent
        // after a panic elsewhere.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest id the hub has seen.
    pub(crate) fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// A receiver that changes whenever entries are added.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// A receiver that turns true when the server shuts down.
    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Ends every stream (the server is shutting down).
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Adds entries read from the store, in id order, after the head.
    pub(crate) fn extend(&self, changes: &[Change]) {
        let Some(last) = changes.last() else { return };
        {
            let mut ring = self.ring();
            for c in changes {
                ring.entries.push_back(Buffered::of(c));
            }
            while ring.entries.len() > ring.capacity {
                if let Some(old) = ring.entries.pop_front() {
                    ring.floor = old.event.id;
                }
            }
        }
        self.head.send_replace(last.id.max(0) as u64);
    }

    /// The entries after `after` (of `gun` only, when given), at most `max` of them.
    pub(crate) fn read(&self, after: u64, gun: Option<&str>, max: usize) -> Read {
        let ring = self.ring();
        if after < ring.floor {
            return Read::Behind;
        }
        let start = ring.entries.partition_point(|e| e.event.id <= after);
        let mut out = Vec::new();
        let mut pos = after;
        for e in ring.entries.range(start..) {
            if out.len() == max {
                break;
            }
            pos = e.event.id;
            if gun.is_none_or(|g| g == e.event.gun) {
                out.push(e.clone());
            }
        }
        if out.len() < max {
            // Everything buffered was considered.
            pos = pos.max(ring.entries.back().map_or(ring.floor, |e| e.event.id));
        }
        Read::Entries(out, pos)
    }

    /// The oldest position the buffer still answers from.
    #[cfg(test)]
    pub(crate) fn floor(&self) -> u64 {
        self.ring().floor
    }

    /// Takes one of the open-stream slots for `client`; why not, when all are taken or the
    /// client has its share.
    pub(crate) fn open_stream(self: &Arc<Self>, client: &str) -> Result<StreamSlot, Full> {
        let mut per = self.per_client.lock().unwrap_or_else(|e| e.into_inner());
        let mine = per.get(client).copied().unwrap_or(0);
        if mine >= self.max_per_client {
            return Err(Full::Client);
        }
        if self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_streams).then_some(n + 1)
            })
            .is_err()
        {
            return Err(Full::Server);
        }
        per.insert(client.to_owned(), mine + 1);
        Ok(StreamSlot {
            hub: self.clone(),
            client: client.to_owned(),
        })
    }

    /// Streams open now.
    #[cfg(test)]
    pub(crate) fn open_streams(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// Why a stream could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// Every stream of the server is taken (`events.max_streams`).
    Server,
    /// The client has its share (`events.max_streams_per_client`).
    Client,
}

/// One open stream's slot, given back when dropped.
pub(crate) struct StreamSlot {
    hub: Arc<Hub>,
    client: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.hub.open.fetch_sub(1, Ordering::AcqRel);
        let mut per = self
            .hub
            .per_client
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.client);
            }
        }
    }
}

/// Reads the store's changefeed after `after`, of `gun` or all, at most [`PAGE`] entries;
/// and the position after them: every entry up to it has been considered. `known` is an id
/// the store is known to show every entry up to (the hub's head when the read started).
pub(crate) fn read_store(
    store: &dyn Store,
    gun: Option<&Gun>,
    after: u64,
    known: u64,
) -> Result<(Vec<Change>, u64), StoreError> {
    let page = store.changes(gun, Some(after as i64), Direction::Forward, PAGE)?;
    let last = page.last().map_or(after, |c| c.id.max(0) as u64);
    // A short page read everything the store shows, which includes every entry up to
    // `known`.
    let pos = if page.len() < PAGE {
        last.max(known)
    } else {
        last
    };
    Ok((page, pos))
}

/// [`read_store`] on the blocking thread pool, the entries as buffered ones: what a reader
/// positioned before the hub's floor ([`Read::Behind`]) reads instead, with the hub's head
/// as what the store is known to show.
pub(crate) async fn read_store_behind(
    store: Arc<dyn Store>,
    hub: &Hub,
    gun: Option<Gun>,
    after: u64,
) -> Result<(Vec<Arc<Buffered>>, u64), StoreError> {
    let known = hub.head();
    tokio::task::spawn_blocking(move || {
        let (page, pos) = read_store(store.as_ref(), gun.as_ref(), after, known)?;
        Ok((page.iter().map(Buffered::of).collect(), pos))
    })
    .await
    .map_err(|e| StoreError::Backend(format!("changefeed read task failed: {e}")))?
}

/// The newest changefeed id in the store (0 when it is empty).
pub(crate) fn newest(store: &dyn Store) -> Result<u64, StoreError> {
    Ok(store
        .changes(None, None, Direction::Backward, 1)?
        .first()
        .map_or(0, |c| c.id.max(0) as u64))
}

/// Follows the changefeed into `hub` until aborted: reads it when `hub` is woken or every
/// `every`, and calls `changed` with each repository another process (or this one) changed.
/// A failed read is retried from the same id, so a database outage skips nothing.
pub(crate) async fn follow(
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    every: Duration,
    changed: impl Fn(&Gun) + Send + 'static,
) {
    let wake = hub.wake.clone();
    let mut failing = false;
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
        let after = hub.head();
        let s = store.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            let mut pos = after;
            loop {
                let (page, next) = read_store(s.as_ref(), None, pos, pos)?;
                let full = page.len() == PAGE;
                pos = next;
                all.extend(page);
                if !full || all.len() >= 10 * PAGE {
                    return Ok::<_, StoreError>(all);
                }
            }
        })
        .await;
        match read {
            Ok(Ok(changes)) => {
                if failing {
                    tracing::info!("following the changefeed again");
                    failing = false;
                }
                for c in &changes {
                    if let Ok(gun) = Gun::new(&c.gun) {
                        changed(&gun);
                    }
                }
                let more = changes.len() >= 10 * PAGE;
                hub.extend(&changes);
                if more {
                    wake.notify_one();
                }
            }
            Ok(Err(e)) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot read the changefeed: events wait, and cached metadata expires by its TTL, until it can");
                    failing = true;
                }
            }
            Err(e) => tracing::warn!(error = %e, "changefeed follower task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_tuf::time::Timestamp;

    fn change(id: i64, gun: &str) -> Change {
        Change {
            id,
            gun: gun.into(),
            version: id as u64,
            sha256: "00".repeat(32),
            category: ChangeCategory::Update,
            roles: vec![("timestamp".into(), id as u64)],
            created_at: Timestamp::from_unix(1_800_000_000),
        }
    }

    fn hub(head: u64, capacity: usize) -> Hub {
        Hub::new(
            head,
            capacity,
            (3, 2),
            4,
            Duration::from_secs(15),
            Arc::new(Notify::new()),
        )
    }

    fn ids(r: Read) -> (Vec<u64>, u64) {
        match r {
            Read::Entries(v, pos) => (v.iter().map(|e| e.event.id).collect(), pos),
            Read::Behind => panic!("behind"),
        }
    }

    #[test]
    fn reads_after_a_position_within_the_buffer_and_sends_older_ones_to_the_store() {
        let h = hub(10, 3);
        assert_eq!(ids(h.read(10, None, 10)), (vec![], 10));
        assert!(matches!(h.read(9, None, 10), Read::Behind));
        // Ids need not be consecutive (a rolled-back transaction leaves a gap).
        h.extend(&[change(11, "a"), change(13, "b"), change(14, "a")]);
        assert_eq!(h.head(), 14);
        assert_eq!(ids(h.read(10, None, 10)), (vec![11, 13, 14], 14));
        assert_eq!(ids(h.read(12, None, 10)), (vec![13, 14], 14));
        assert_eq!(ids(h.read(10, Some("a"), 10)), (vec![11, 14], 14));
        assert_eq!(ids(h.read(10, Some("b"), 10)), (vec![13], 14));
        assert_eq!(ids(h.read(10, Some("c"), 10)), (vec![], 14));
        // At most `max`, and the position stops at the last one considered.
        assert_eq!(ids(h.read(10, None, 2)), (vec![11, 13], 13));
        // The oldest fall out: the floor moves to the last one dropped.
        h.extend(&[change(20, "a")]);
        assert_eq!(h.floor(), 11);
        assert!(matches!(h.read(10, None, 10), Read::Behind));
        assert_eq!(ids(h.read(11, None, 10)), (vec![13, 14, 20], 20));
        assert_eq!(ids(h.read(20, None, 10)), (vec![], 20));
    }

    #[test]
    fn stream_slots_are_capped_per_server_and_per_client_and_given_back() {
        let h = Arc::new(hub(0, 3));
        let a = h.open_stream("token:a").unwrap();
        let _b = h.open_stream("token:a").unwrap();
        assert_eq!(h.open_stream("token:a").err(), Some(Full::Client));
        let _c = h.open_stream("anonymous").unwrap();
        assert_eq!(h.open_stream("token:b").err(), Some(Full::Server));
        drop(a);
        assert_eq!(h.open_streams(), 2);
        assert!(h.open_stream("token:a").is_ok());
    }

    #[test]
    fn an_entry_becomes_the_event_it_announces() {
        let mut c = change(7, "example.com/app");
        c.category = ChangeCategory::Deletion;
        let e = event_of(&c);
        assert_eq!(
            (e.id, e.kind, e.gun.as_str()),
            (7, EventKind::Deletion, "example.com/app")
        );
        assert_eq!(e.roles, vec![("timestamp".to_owned(), 7)]);
    }
}
