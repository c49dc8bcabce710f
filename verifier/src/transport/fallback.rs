//! One source of metadata, and another while the first cannot be reached.
//!
//! [`FallbackTransport`] asks its primary (a vouch server) first. When the primary is
//! unavailable — no connection, a timeout, a 5xx answer — it asks the secondary (the
//! registry copy) instead, and keeps asking the secondary for [`RETRY_PRIMARY`] before
//! trying the primary again. Every other answer of the primary stands: a 404 (no newer
//! root), a refusal of credentials, a file too large. Falling back on those would hide a
//! misconfiguration, or let whoever makes the primary answer badly choose the source.
//!
//! Choosing the source is no security decision: whichever serves a file, the
//! [`Updater`](crate::Updater) checks it against the same trusted state (one cache per
//! repository, keyed by its name and never by the source), so files from both sources in
//! one refresh are checked exactly as files from one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Transport, TransportError};

/// How long the secondary is used, once the primary was unavailable, before the primary
/// is tried again.
pub const RETRY_PRIMARY: Duration = Duration::from_secs(30);

/// The primary, else the secondary while the primary is unavailable.
#[derive(Debug)]
pub struct FallbackTransport<P, S> {
    primary: P,
    secondary: S,
    /// Since when the primary has been skipped, and the last error it gave.
    down: Mutex<Option<(Instant, String)>>,
}

/// Whether an error of the primary means it is unavailable (rather than answering).
fn unavailable(e: &TransportError) -> bool {
    match e {
        TransportError::Network { .. } | TransportError::TimedOut { .. } => true,
        TransportError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

impl<P: Transport, S: Transport> FallbackTransport<P, S> {
    /// `primary`, falling back to `secondary`.
    pub fn new(primary: P, secondary: S) -> Self {
        FallbackTransport {
            primary,
            secondary,
            down: Mutex::new(None),
        }
    }

    /// The primary.
    pub fn primary(&self) -> &P {
        &self.primary
    }

    /// The secondary.
    pub fn secondary(&self) -> &S {
        &self.secondary
    }

    /// Why the primary is being skipped, when it is: the error that made it so.
    pub fn falling_back(&self) -> Option<String> {
        let down = self.down.lock().ok()?;
        match down.as_ref() {
            Some((since, why)) if since.elapsed() < RETRY_PRIMARY => Some(why.clone()),
            _ => None,
        }
    }

    fn fetch_with(
        &self,
        path: &str,
        fetch: impl Fn(&dyn Transport) -> Result<Vec<u8>, TransportError>,
    ) -> Result<Vec<u8>, TransportError> {
        if self.falling_back().is_some() {
            return fetch(&self.secondary);
        }
        match fetch(&self.primary) {
            Err(e) if unavailable(&e) => {
                let why = e.to_string();
                if let Ok(mut down) = self.down.lock() {
                    *down = Some((Instant::now(), why));
                }
                // The secondary's answer stands as it is (a 404 for `N+1.root.json` is how
                // a client learns there is no newer root); only both being unavailable is
                // reported as both.
                fetch(&self.secondary).map_err(|second| {
                    if unavailable(&second) {
                        TransportError::Network {
                            path: path.to_owned(),
                            message: format!("{e}; and from the fallback: {second}"),
                        }
                    } else {
                        second
                    }
                })
            }
            other => {
                if other.is_ok() {
                    if let Ok(mut down) = self.down.lock() {
                        *down = None;
                    }
                }
                other
            }
        }
    }
}

impl<P: Transport, S: Transport> Transport for FallbackTransport<P, S> {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        self.fetch_with(path, |t| t.fetch(path, max_len))
    }

    fn fetch_by(
        &self,
        path: &str,
        max_len: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
        self.fetch_with(path, |t| t.fetch_by(path, max_len, deadline))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Answers every fetch with `answer`, counting them.
    struct Fixed {
        answer: fn(&str) -> Result<Vec<u8>, TransportError>,
        asked: AtomicUsize,
    }

    impl Fixed {
        fn new(answer: fn(&str) -> Result<Vec<u8>, TransportError>) -> Self {
            Fixed {
                answer,
                asked: AtomicUsize::new(0),
            }
        }
        fn asked(&self) -> usize {
            self.asked.load(Ordering::SeqCst)
        }
    }

    impl Transport for Fixed {
        fn fetch(&self, path: &str, _: u64) -> Result<Vec<u8>, TransportError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            (self.answer)(path)
        }
    }

    fn ok(_: &str) -> Result<Vec<u8>, TransportError> {
        Ok(b"secondary".to_vec())
    }
    fn down(path: &str) -> Result<Vec<u8>, TransportError> {
        Err(TransportError::Network {
            path: path.into(),
            message: "connection refused".into(),
        })
    }

    #[test]
    fn an_unreachable_primary_is_skipped_for_a_while() {
        let t = FallbackTransport::new(Fixed::new(down), Fixed::new(ok));
        assert_eq!(t.fetch("timestamp.json", 10).unwrap(), b"secondary");
        assert!(t.falling_back().unwrap().contains("connection refused"));
        assert_eq!(t.fetch("2.snapshot.json", 10).unwrap(), b"secondary");
        // The primary was asked once: the second fetch went straight to the secondary.
        assert_eq!(t.primary().asked(), 1);
        assert_eq!(t.secondary().asked(), 2);
    }

    #[test]
    fn answers_of_the_primary_stand() {
        fn not_found(path: &str) -> Result<Vec<u8>, TransportError> {
            Err(TransportError::NotFound { path: path.into() })
        }
        fn refused(path: &str) -> Result<Vec<u8>, TransportError> {
            Err(TransportError::Status {
                path: path.into(),
                status: 403,
            })
        }
        fn failing(path: &str) -> Result<Vec<u8>, TransportError> {
            Err(TransportError::Status {
                path: path.into(),
                status: 503,
            })
        }
        for answer in [not_found, refused] {
            let t = FallbackTransport::new(Fixed::new(answer), Fixed::new(ok));
            assert!(t.fetch("2.root.json", 10).is_err());
            assert_eq!(t.secondary().asked(), 0);
            assert!(t.falling_back().is_none());
        }
        let t = FallbackTransport::new(Fixed::new(failing), Fixed::new(ok));
        assert_eq!(t.fetch("timestamp.json", 10).unwrap(), b"secondary");
    }

    #[test]
    fn the_secondarys_not_found_stays_not_found() {
        fn not_found(path: &str) -> Result<Vec<u8>, TransportError> {
            Err(TransportError::NotFound { path: path.into() })
        }
        let t = FallbackTransport::new(Fixed::new(down), Fixed::new(not_found));
        // The first fetch, which finds the primary down, and the later ones alike.
        assert!(t.fetch("2.root.json", 10).unwrap_err().is_not_found());
        assert!(t.fetch("3.root.json", 10).unwrap_err().is_not_found());
    }

    #[test]
    fn both_failing_says_both() {
        let t = FallbackTransport::new(Fixed::new(down), Fixed::new(down));
        let e = t.fetch("timestamp.json", 10).unwrap_err().to_string();
        assert!(e.contains("and from the fallback"), "{e}");
    }
}
