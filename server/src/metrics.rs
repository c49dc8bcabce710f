//! Prometheus metrics, kept in memory and written in the text exposition format on
//! `GET /metrics`.
//!
//! What is counted: requests by route class, method and status, their latency (one histogram per
//! route class), publishes, publish rejections by reason (the `detail.check` of the 400, or
//! `version` for a 409, `size` for a 413), signatures the server made, requests refused because the
//! server was over capacity or too slow (and connections closed past the connection cap), and — for
//! each GUN and role — when the metadata last served or published expires. The expiry gauge is
//! written as seconds left at scrape time, so an alert fires on metadata about to expire whether or
//! not anyone reads it; the bytes the read cache holds; and the bytes of responses made for one
//! request that wait to be written.
//!
//! [`Metrics`] is updated by the HTTP layer ([`crate::http`]) and, through
//! [`crate::service::Observer`], by the service when it stores what it signed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::store::NewFile;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Most (GUN, role) expiry series kept, so a flood of repositories cannot grow memory without
/// bound; beyond it new pairs are not tracked (counted in `vouch_expiry_series_dropped_total`).
const MAX_EXPIRY_SERIES: usize = 50_000;
/// Most bytes the expiry series may hold (names, hashes and an estimate of the map's
/// bookkeeping): delegated role names have no length limit of their own, so the count alone
/// would not bound memory. Past it new pairs are dropped as past the count.
const MAX_EXPIRY_BYTES: usize = 16 << 20;
/// What a series costs beyond its names and hash (an estimate on the high side).
const EXPIRY_OVERHEAD: usize = 128;

/// What keeping the expiry series of `role` of `gun` costs, in bytes.
fn expiry_cost(gun: &str, role: &str, sha256: &str) -> usize {
    gun.len() + role.len() + sha256.len() + EXPIRY_OVERHEAD
}

/// The route classes requests are counted by.
pub const ROUTE_CLASSES: [&str; 12] = [
    "metadata",
    "publish",
    "key",
    "delete",
    "changefeed",
    "events",
    "webhooks",
    "proposals",
    "base",
    "health",
    "metrics",
    "other",
];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, seconds: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

#[derive(Clone, Debug)]
struct Expiry {
    sha256: String,
    expires: i64,
}

/// All metrics of one server.
pub struct Metrics {
    requests: Mutex<HashMap<(&'static str, &'static str, u16), u64>>,
    latency: Vec<Histogram>,
    publishes: AtomicU64,
    rejections: Mutex<HashMap<String, u64>>,
    signatures: AtomicU64,
    overload: Mutex<HashMap<&'static str, u64>>,
    expiry: Mutex<ExpirySeries>,
    expiry_dropped: AtomicU64,
    read_cache_bytes: AtomicU64,
    pending_response_bytes: AtomicU64,
    event_streams_open: AtomicU64,
    events_sent: AtomicU64,
    event_streams_ended: Mutex<HashMap<&'static str, u64>>,
}

/// The expiry series and the bytes they hold.
#[derive(Default)]
struct ExpirySeries {
    series: HashMap<(String, String), Expiry>,
    bytes: usize,
}

impl ExpirySeries {
    /// Whether a new series costing `cost` bytes still fits under both bounds.
    fn fits(&self, cost: usize) -> bool {
        self.series.len() < MAX_EXPIRY_SERIES && self.bytes + cost <= MAX_EXPIRY_BYTES
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Mutex::default(),
            latency: ROUTE_CLASSES.iter().map(|_| Histogram::default()).collect(),
            publishes: AtomicU64::new(0),
            rejections: Mutex::default(),
            signatures: AtomicU64::new(0),
            overload: Mutex::default(),
            expiry: Mutex::default(),
            expiry_dropped: AtomicU64::new(0),
            read_cache_bytes: AtomicU64::new(0),
            pending_response_bytes: AtomicU64::new(0),
            event_streams_open: AtomicU64::new(0),
            events_sent: AtomicU64::new(0),
            event_streams_ended: Mutex::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a metrics lock leaves counts that are still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Escapes a label value for the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `expires` of a TUF metadata document, as unix seconds.
fn expires_of(bytes: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Signed {
        expires: String,
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        signed: Signed,
    }
    let e: Envelope = serde_json::from_slice(bytes).ok()?;
    vouch_tuf::time::Timestamp::parse(&e.signed.expires)
        .ok()
        .map(|t| t.unix())
}

impl Metrics {
    /// Counts one finished request.
    pub fn request(&self, class: &'static str, method: &'static str, status: u16, seconds: f64) {
        *lock(&self.requests)
            .entry((class, method, status))
            .or_insert(0) += 1;
        if let Some(i) = ROUTE_CLASSES.iter().position(|c| *c == class) {
            self.latency[i].observe(seconds);
        }
    }

    /// Counts one successful publish.
    pub fn published(&self) {
        self.publishes.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one rejected publish, by reason.
    pub fn rejected(&self, reason: &str) {
        *lock(&self.rejections).entry(reason.to_owned()).or_insert(0) += 1;
    }

    /// Counts signatures the server made.
    pub fn signed(&self, count: u64) {
        self.signatures.fetch_add(count, Ordering::Relaxed);
    }

    /// Counts one request refused for capacity (`in_flight`, `publish`, `publish_gun`,
    /// `response_bytes`) or time (`timeout`, `body_timeout`), or one connection closed past
    /// the connection cap (`connections`).
    pub fn overloaded(&self, reason: &'static str) {
        *lock(&self.overload).entry(reason).or_insert(0) += 1;
    }

    /// Counts an event stream opened.
    pub fn event_stream_opened(&self) {
        self.event_streams_open.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an event stream closed.
    pub fn event_stream_closed(&self) {
        self.event_streams_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts an event stream the server ended with a notice (`lagged`, `shutdown`).
    pub fn event_stream_ended(&self, reason: &'static str) {
        *lock(&self.event_streams_ended).entry(reason).or_insert(0) += 1;
    }

    /// Counts one event written to a stream.
    pub fn event_sent(&self) {
        self.events_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the bytes the read cache holds.
    pub fn read_cache_bytes(&self, bytes: usize) {
        self.read_cache_bytes.store(bytes as u64, Ordering::Relaxed);
    }

    /// Counts `bytes` more of responses waiting to be written (taken from the budget).
    pub fn response_bytes_taken(&self, bytes: usize) {
        self.pending_response_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts `bytes` of responses written or dropped (given back to the budget).
    pub fn response_bytes_returned(&self, bytes: usize) {
        self.pending_response_bytes
            .fetch_sub(bytes as u64, Ordering::Relaxed);
    }

    /// Records the expiry of a metadata file of `gun` that was served or stored. Cheap when
    /// the same file was seen before (compared by SHA-256; the document is parsed only when
    /// it changed), and when a new series would not fit (dropped before any parse, so reads
    /// of files that cannot be tracked cost no parsing).
    pub fn saw(&self, gun: &str, role: &str, sha256: &str, bytes: &[u8]) {
        let key = (gun.to_owned(), role.to_owned());
        let cost = expiry_cost(gun, role, sha256);
        {
            let m = lock(&self.expiry);
            match m.series.get(&key) {
                Some(e) if e.sha256 == sha256 => return,
                Some(_) => {}
                None if !m.fits(cost) => {
                    self.expiry_dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                None => {}
            }
        }
        let Some(expires) = expires_of(bytes) else {
            return;
        };
        let mut m = lock(&self.expiry);
        let old = m
            .series
            .get(&key)
            .map(|e| expiry_cost(gun, role, &e.sha256));
        // Checked again: the table may have filled while the file was parsed.
        if old.is_none() && !m.fits(cost) {
            self.expiry_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        m.bytes = m.bytes - old.unwrap_or(0) + cost;
        m.series.insert(
            key,
            Expiry {
                sha256: sha256.to_owned(),
                expires,
            },
        );
    }

    /// Records newly stored files (their SHA-256 computed here).
    pub fn stored_files(&self, gun: &str, files: &[NewFile]) {
        for f in files {
            let sha = vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, &f.bytes));
            self.saw(gun, &f.role, &sha, &f.bytes);
        }
    }

    /// Forgets the expiry series of a deleted repository.
    pub fn forget(&self, gun: &str) {
        let mut m = lock(&self.expiry);
        let mut freed = 0;
        m.series.retain(|(g, role), e| {
            let keep = g != gun;
            if !keep {
                freed += expiry_cost(g, role, &e.sha256);
            }
            keep
        });
        m.bytes -= freed;
    }

    /// The text exposition at unix time `now`.
    pub fn render(&self, now: i64) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP vouch_http_requests_total HTTP requests by route class, method and status.\n\
             # TYPE vouch_http_requests_total counter"
        );
        let mut reqs: Vec<_> = lock(&self.requests).iter().map(|(k, v)| (*k, *v)).collect();
        reqs.sort();
        for ((class, method, status), n) in reqs {
            let _ = writeln!(
                out,
                "vouch_http_requests_total{{route=\"{class}\",method=\"{}\",status=\"{status}\"}} {n}",
                label(method)
            );
        }
        let _ = writeln!(
            out,
            "# HELP vouch_http_request_duration_seconds Time to answer a request, by route class.\n\
             # TYPE vouch_http_request_duration_seconds histogram"
        );
        for (class, h) in ROUTE_CLASSES.iter().zip(&self.latency) {
            let count = h.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            for (b, n) in BUCKETS.iter().zip(&h.buckets) {
                let _ = writeln!(
                    out,
                    "vouch_http_request_duration_seconds_bucket{{route=\"{class}\",le=\"{b}\"}} {}",
                    n.load(Ordering::Relaxed)
                );
            }
            let _ = writeln!(
                out,
                "vouch_http_request_duration_seconds_bucket{{route=\"{class}\",le=\"+Inf\"}} {count}\n\
                 vouch_http_request_duration_seconds_sum{{route=\"{class}\"}} {}\n\
                 vouch_http_request_duration_seconds_count{{route=\"{class}\"}} {count}",
                h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "# HELP vouch_publishes_total Publishes stored.\n\
             # TYPE vouch_publishes_total counter\n\
             vouch_publishes_total {}",
            self.publishes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP vouch_publish_rejections_total Publishes refused, by the check that failed.\n\
             # TYPE vouch_publish_rejections_total counter"
        );
        let mut rej: Vec<_> = lock(&self.rejections)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        rej.sort();
        for (reason, n) in rej {
            let _ = writeln!(
                out,
                "vouch_publish_rejections_total{{reason=\"{}\"}} {n}",
                label(&reason)
            );
        }
        let _ = writeln!(
            out,
            "# HELP vouch_signatures_total Signatures made by the server's online keys.\n\
             # TYPE vouch_signatures_total counter\n\
             vouch_signatures_total {}",
            self.signatures.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP vouch_overload_rejections_total Requests answered 503 or 408 for capacity or time, and connections closed past the connection cap.\n\
             # TYPE vouch_overload_rejections_total counter"
        );
        let mut ov: Vec<_> = lock(&self.overload).iter().map(|(k, v)| (*k, *v)).collect();
        ov.sort();
        for (reason, n) in ov {
            let _ = writeln!(
                out,
                "vouch_overload_rejections_total{{reason=\"{reason}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP vouch_metadata_expiry_seconds Seconds until the metadata last served or stored for a GUN and role expires (negative: expired).\n\
             # TYPE vouch_metadata_expiry_seconds gauge"
        );
        let mut exp: Vec<_> = lock(&self.expiry)
            .series
            .iter()
            .map(|(k, v)| (k.clone(), v.expires))
            .collect();
        exp.sort();
        for ((gun, role), expires) in exp {
            let _ = writeln!(
                out,
                "vouch_metadata_expiry_seconds{{gun=\"{}\",role=\"{}\"}} {}",
                label(&gun),
                label(&role),
                expires - now
            );
        }
        let _ = writeln!(
            out,
            "# HELP vouch_expiry_series_dropped_total Expiry series not kept because the series or byte cap was reached.\n\
             # TYPE vouch_expiry_series_dropped_total counter\n\
             vouch_expiry_series_dropped_total {}",
            self.expiry_dropped.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP vouch_read_cache_bytes Bytes held by the cache of current metadata (files, their names and bookkeeping).\n\
             # TYPE vouch_read_cache_bytes gauge\n\
             vouch_read_cache_bytes {}",
            self.read_cache_bytes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP vouch_pending_response_bytes Bytes of responses made for one request (files not served from the read cache, /metrics) waiting to be written.\n\
             # TYPE vouch_pending_response_bytes gauge\n\
             vouch_pending_response_bytes {}",
            self.pending_response_bytes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP vouch_event_streams Event streams (Server-Sent Events) open now.\n\
             # TYPE vouch_event_streams gauge\n\
             vouch_event_streams {}\n\
             # HELP vouch_events_sent_total Events written to event streams.\n\
             # TYPE vouch_events_sent_total counter\n\
             vouch_events_sent_total {}\n\
             # HELP vouch_event_streams_ended_total Event streams the server ended with a reconnect notice, by reason (lagged, shutdown).\n\
             # TYPE vouch_event_streams_ended_total counter",
            self.event_streams_open.load(Ordering::Relaxed),
            self.events_sent.load(Ordering::Relaxed)
        );
        let mut ended: Vec<_> = lock(&self.event_streams_ended)
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        ended.sort();
        for (reason, n) in ended {
            let _ = writeln!(
                out,
                "vouch_event_streams_ended_total{{reason=\"{reason}\"}} {n}"
            );
        }
        out
    }
}

impl crate::service::Observer for Metrics {
    fn stored(&self, gun: &vouch_tuf::reference::Gun, files: &[NewFile], server_signed: u64) {
        self.signed(server_signed);
        self.stored_files(gun.as_str(), files);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn exposition() {
        let m = Metrics::default();
        m.request("metadata", "GET", 200, 0.002);
        m.request("metadata", "GET", 200, 0.2);
        m.request("publish", "POST", 400, 0.01);
        m.published();
        m.rejected("signature");
        m.signed(2);
        m.overloaded("publish");
        let doc = br#"{"signatures":[],"signed":{"_type":"timestamp","expires":"2030-01-01T00:00:00Z","version":1}}"#;
        m.saw("example.com/\"app\"", "timestamp", "aa", doc);
        let now = 1_893_456_000 - 100; // 100 s before 2030-01-01
        let text = m.render(now);
        for want in [
            "vouch_http_requests_total{route=\"metadata\",method=\"GET\",status=\"200\"} 2",
            "vouch_http_request_duration_seconds_bucket{route=\"metadata\",le=\"0.0025\"} 1",
            "vouch_http_request_duration_seconds_bucket{route=\"metadata\",le=\"0.25\"} 2",
            "vouch_http_request_duration_seconds_count{route=\"publish\"} 1",
            "vouch_publishes_total 1",
            "vouch_publish_rejections_total{reason=\"signature\"} 1",
            "vouch_signatures_total 2",
            "vouch_overload_rejections_total{reason=\"publish\"} 1",
            "vouch_metadata_expiry_seconds{gun=\"example.com/\\\"app\\\"\",role=\"timestamp\"} 100",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        // The same file again is not parsed again; a changed one replaces it.
        m.saw("example.com/\"app\"", "timestamp", "aa", b"not json");
        assert!(m.render(now).contains("role=\"timestamp\"} 100"));
        m.forget("example.com/\"app\"");
        assert!(!m.render(now).contains("role=\"timestamp\""));
    }

    #[test]
    fn expiry_series_are_bounded_in_bytes_not_only_in_count() {
        let m = Metrics::default();
        let doc = br#"{"signatures":[],"signed":{"_type":"targets","expires":"2030-01-01T00:00:00Z","version":1}}"#;
        // Delegated roles with 100 kB names: far fewer than the series cap fit.
        let long = "r".repeat(100_000);
        for i in 0..300 {
            m.saw("example.com/app", &format!("{long}{i}"), "aa", doc);
        }
        let kept = lock(&m.expiry).series.len();
        assert!(kept > 100 && kept < 200, "{kept}");
        assert!(lock(&m.expiry).bytes <= MAX_EXPIRY_BYTES);
        assert_eq!(m.expiry_dropped.load(Ordering::Relaxed), 300 - kept as u64);
        // A series already kept is still updated, and forgetting gives the bytes back.
        m.saw("example.com/app", &format!("{long}0"), "bb", doc);
        assert_eq!(lock(&m.expiry).series.len(), kept);
        m.forget("example.com/app");
        assert_eq!(lock(&m.expiry).bytes, 0);
        m.saw("example.com/app", "targets", "aa", doc);
        assert!(m.render(0).contains("role=\"targets\""));
    }

    /// While the table is full, a file for a new series is dropped before it is parsed: even
    /// bytes that are not JSON are counted as dropped, not parsed and ignored.
    #[test]
    fn new_series_that_do_not_fit_are_dropped_before_parsing() {
        let m = Metrics::default();
        let doc = br#"{"signatures":[],"signed":{"_type":"targets","expires":"2030-01-01T00:00:00Z","version":1}}"#;
        let long = "r".repeat(100_000);
        let mut i = 0;
        while m.expiry_dropped.load(Ordering::Relaxed) == 0 {
            m.saw("example.com/app", &format!("{long}{i}"), "aa", doc);
            i += 1;
        }
        m.saw(
            "example.com/app",
            &format!("{long}x"),
            "cc",
            b"not json at all",
        );
        assert_eq!(m.expiry_dropped.load(Ordering::Relaxed), 2);
    }
}
