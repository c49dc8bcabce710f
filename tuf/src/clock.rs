//! Where "now" comes from: the one clock abstraction of vouch.
//!
//! Every decision in vouch that depends on the time takes a reference time ([`Timestamp`]);
//! whoever needs "now" asks a [`Clock`] once and passes the answer on (the verifier once per
//! update, the server once per operation). Binaries hand out [`SystemClock`], the wall
//! clock, and the only code in this crate that reads one; tests hand out [`TestClock`], set
//! and moved at will. The server, the verifier, the CLI and the webhook all use this trait.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::time::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let secs = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        };
        Timestamp::from_unix(secs)
    }
}

/// A clock that shows whatever time it was last set to; clones share the time.
///
/// ```
/// use vouch_tuf::time::Timestamp;
/// use vouch_tuf::clock::{Clock, TestClock};
/// let clock = TestClock::new(Timestamp::from_unix(100));
/// let view = clock.clone();
/// clock.advance(50);
/// assert_eq!(view.now(), Timestamp::from_unix(150));
/// ```
#[derive(Clone, Debug)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    /// A clock set to `now`.
    pub fn new(now: Timestamp) -> Self {
        TestClock(Arc::new(AtomicI64::new(now.unix())))
    }

    /// Sets the time.
    pub fn set(&self, now: Timestamp) {
        self.0.store(now.unix(), Ordering::SeqCst);
    }

    /// Moves the time by `secs` (negative goes back).
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > Timestamp::from_unix(1_577_836_800));
    }

    #[test]
    fn test_clock_moves_both_ways() {
        let c = TestClock::new(Timestamp::from_unix(10));
        c.advance(-5);
        assert_eq!(c.now(), Timestamp::from_unix(5));
        c.set(Timestamp::from_unix(42));
        assert_eq!(c.now(), Timestamp::from_unix(42));
    }
}
