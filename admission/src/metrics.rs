//! Prometheus metrics of the webhook: decisions by result and reason, decision latency,
//! cache hits and refreshes, policy reloads, when the trusted root and targets metadata of
//! each repository in memory expire, and the trust-change event streams followed
//! ([`crate::events`]), written in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counters and the latency histogram.
#[derive(Debug, Default)]
pub struct Metrics {
    decisions: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    cache_hits: AtomicU64,
    refreshes_ok: AtomicU64,
    refreshes_failed: AtomicU64,
    repositories: AtomicU64,
    pruned: AtomicU64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    notary_rollbacks: AtomicU64,
    trust_fallbacks: AtomicU64,
    /// Expiry (Unix seconds) of the trusted root and targets of each repository in memory,
    /// by (GUN, role): at most two entries per repository, removed when it is dropped.
    expiries: Mutex<BTreeMap<(String, &'static str), i64>>,
    /// Per followed trust server (from the policy, so bounded): whether its event stream is
    /// open, and how many events it delivered.
    streams: Mutex<BTreeMap<String, StreamStats>>,
    event_refreshes: AtomicU64,
}

/// One followed server's event stream.
#[derive(Debug, Default, Clone, Copy)]
struct StreamStats {
    up: bool,
    events: u64,
}

impl Metrics {
    /// Counts one decision (`result`: allowed, denied, warned; `reason`: why).
    pub fn decision(&self, result: &'static str, reason: &'static str, took: Duration) {
        *self
            .decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((result, reason))
            .or_default() += 1;
        let secs = took.as_secs_f64();
        for (b, le) in self.buckets.iter().zip(BUCKETS) {
            if secs <= le {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Counts an answer from warm state.
    pub fn cache_hit(&self) {
        self.cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refresh.
    pub fn refresh(&self, ok: bool) {
        let c = if ok {
            &self.refreshes_ok
        } else {
            &self.refreshes_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a Notary server caught rolling back (a refresh refused as
    /// [`crate::trust::TrustError::NotaryRollback`]).
    pub fn notary_rollback(&self) {
        self.notary_rollbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a repository whose refreshes started reading the registry copy of its trust
    /// because its trust server became unreachable (`source = "server-then-registry"`).
    pub fn trust_fallback(&self) {
        self.trust_fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an attempt to load the policy again (`ok`: the new policy is in force).
    pub fn policy_reload(&self, ok: bool) {
        let c = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets how many repositories are in memory.
    pub fn repositories(&self, n: usize) {
        self.repositories
            .store(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Counts repositories dropped for being idle.
    pub fn pruned(&self, n: usize) {
        self.pruned
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Records when the trusted `role` (root or targets) of `gun` expires (Unix seconds).
    pub fn expiry(&self, gun: &str, role: &'static str, unix: i64) {
        self.expiries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((gun.to_owned(), role), unix);
    }

    /// Forgets the expiries of `gun` (its repository was dropped from memory).
    pub fn forget_expiries(&self, gun: &str) {
        self.expiries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(g, _), _| g != gun);
    }

    /// Sets whether the event stream of `server` is open (`server` is followed from now
    /// on, if it was not).
    pub fn event_stream_up(&self, server: &str, up: bool) {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(server.to_owned())
            .or_default()
            .up = up;
    }

    /// Counts an event received from `server`'s stream.
    pub fn event(&self, server: &str) {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(server.to_owned())
            .or_default()
            .events += 1;
    }

    /// Forgets `server`'s stream (the policy no longer names it).
    pub fn forget_stream(&self, server: &str) {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(server);
    }

    /// Counts a refresh started by an event.
    pub fn event_refresh(&self) {
        self.event_refreshes.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP vouch_admission_decisions_total Admission decisions by result and reason.\n",
        );
        out.push_str("# TYPE vouch_admission_decisions_total counter\n");
        for ((result, reason), n) in self
            .decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "vouch_admission_decisions_total{{result=\"{result}\",reason=\"{reason}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP vouch_admission_decision_seconds Time to decide one AdmissionReview.\n",
        );
        out.push_str("# TYPE vouch_admission_decision_seconds histogram\n");
        for (b, le) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "vouch_admission_decision_seconds_bucket{{le=\"{le}\"}} {}",
                b.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "vouch_admission_decision_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "vouch_admission_decision_seconds_sum {}",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "vouch_admission_decision_seconds_count {count}");
        single(
            &mut out,
            "vouch_admission_cache_hits_total",
            "counter",
            "Answers served from warm trust state.",
            self.cache_hits.load(Ordering::Relaxed),
        );
        out.push_str("# HELP vouch_admission_refreshes_total Trust refreshes (TUF, or Notary for notary rules) by result.\n");
        out.push_str("# TYPE vouch_admission_refreshes_total counter\n");
        let _ = writeln!(
            out,
            "vouch_admission_refreshes_total{{result=\"ok\"}} {}",
            self.refreshes_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "vouch_admission_refreshes_total{{result=\"failed\"}} {}",
            self.refreshes_failed.load(Ordering::Relaxed)
        );
        single(
            &mut out,
            "vouch_admission_repositories",
            "gauge",
            "Repositories whose trust state is in memory.",
            self.repositories.load(Ordering::Relaxed),
        );
        single(
            &mut out,
            "vouch_admission_repositories_pruned_total",
            "counter",
            "Repositories dropped from memory for being idle.",
            self.pruned.load(Ordering::Relaxed),
        );
        single(
            &mut out,
            "vouch_admission_notary_rollbacks_total",
            "counter",
            "Refreshes refused because a Notary server served older metadata than already trusted.",
            self.notary_rollbacks.load(Ordering::Relaxed),
        );
        single(
            &mut out,
            "vouch_admission_trust_fallbacks_total",
            "counter",
            "Times a repository's refreshes fell back to the registry copy of its trust because its trust server was unreachable.",
            self.trust_fallbacks.load(Ordering::Relaxed),
        );
        out.push_str(
            "# HELP vouch_admission_policy_reloads_total Attempts to load the changed policy again, by result.\n",
        );
        out.push_str("# TYPE vouch_admission_policy_reloads_total counter\n");
        for (result, c) in [("ok", &self.reloads_ok), ("failed", &self.reloads_failed)] {
            let _ = writeln!(
                out,
                "vouch_admission_policy_reloads_total{{result=\"{result}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP vouch_admission_metadata_expiry_timestamp_seconds When the trusted root and targets metadata of each repository in memory expire (their key holders renew them).\n",
        );
        out.push_str("# TYPE vouch_admission_metadata_expiry_timestamp_seconds gauge\n");
        for ((gun, role), at) in self
            .expiries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            // GUNs hold only [a-z0-9._:/-]: nothing to escape in a label value.
            let _ = writeln!(
                out,
                "vouch_admission_metadata_expiry_timestamp_seconds{{gun=\"{gun}\",role=\"{role}\"}} {at}"
            );
        }
        let streams = self
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        out.push_str("# HELP vouch_admission_event_stream_up Whether the trust-change event stream of each followed trust server is open (1) or not (0).\n");
        out.push_str("# TYPE vouch_admission_event_stream_up gauge\n");
        for (server, s) in &streams {
            let _ = writeln!(
                out,
                "vouch_admission_event_stream_up{{server=\"{}\"}} {}",
                label(server),
                u8::from(s.up)
            );
        }
        out.push_str("# HELP vouch_admission_events_total Trust-change events received from each followed trust server.\n");
        out.push_str("# TYPE vouch_admission_events_total counter\n");
        for (server, s) in &streams {
            let _ = writeln!(
                out,
                "vouch_admission_events_total{{server=\"{}\"}} {}",
                label(server),
                s.events
            );
        }
        single(
            &mut out,
            "vouch_admission_event_refreshes_total",
            "counter",
            "Refreshes started by trust-change events.",
            self.event_refreshes.load(Ordering::Relaxed),
        );
        out
    }
}

/// `value` escaped for a label value (`\\`, `\"`, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Appends a metric with one unlabelled sample, with its HELP and TYPE lines.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}
