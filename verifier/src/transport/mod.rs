//! Where metadata and targets come from.
//!
//! A [`Transport`] fetches one file by its path relative to a base (a URL, a directory, an
//! offline bundle), reading at most `max_len` bytes: the cap is enforced while the bytes
//! arrive, so an endless or oversized response never reaches memory in full. A fetch also
//! has a deadline ([`Transport::fetch_by`]), checked before it starts and while the bytes
//! stream in, so a server that trickles bytes cannot hold the client past it. Memory follows
//! the bytes that actually arrive: an announced size (`Content-Length`) never reserves more
//! than [`PREALLOCATE_MAX`]. Transports know nothing of TUF; the [`Updater`](crate::Updater)
//! decides what to fetch, with which cap and by when.
//!
//! - [`HttpTransport`]: HTTP(S) with rustls, a whole-request timeout, and no redirects to
//!   another host.
//! - [`DirectoryTransport`]: files in a local directory (a mirror, a test repository).
//! - [`BundleTransport`]: an offline bundle holding every current metadata file of a GUN.
//! - [`OciTransport`]: the trust artifact an OCI registry keeps beside a repository's
//!   images (docs/registry-trust.md).
//! - [`FallbackTransport`]: one source, and another while the first is unreachable (a
//!   vouch server, falling back to the registry copy).

mod bundle;
mod dir;
mod fallback;
mod http;
mod oci;

use std::io::Read;
use std::time::Instant;

use thiserror::Error;

pub use bundle::{Bundle, BundleError, BundleTransport};
pub use dir::DirectoryTransport;
pub use fallback::FallbackTransport;
pub use http::{
    fetch_capped, is_loopback_url, without_certificate_store, BearerToken, CrossHostRedirects,
    HttpOptions, HttpTransport,
};
pub(crate) use http::{network, shared_client, timed_out};
pub use oci::{OciTransport, RegistryRepository, MANIFEST_REUSE};
/// Where a vouch server serves a repository's metadata, `SERVER/v2/GUN/_trust/tuf/` (the base
/// an [`HttpTransport`] fetches `root.json`, … below); defined with the rest of the server's
/// URL layout in [`vouch_tuf::api::path`].
pub use vouch_tuf::api::path::repository_url;

/// A fetch that did not produce the file.
#[derive(Debug, Error)]
pub enum TransportError {
    /// The file does not exist (HTTP 404, 403 to a request without a token, no such file).
    #[error("{path} not found")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// The file is longer than the most the caller would read.
    #[error("{path} is larger than {limit} bytes")]
    TooLarge {
        /// The path asked for.
        path: String,
        /// The cap.
        limit: u64,
    },
    /// The server answered with another error status.
    #[error("{path}: HTTP status {status}")]
    Status {
        /// The path asked for.
        path: String,
        /// The status code.
        status: u16,
    },
    /// The server refused the request for want of credentials or for the credentials sent
    /// (HTTP 401; or 403 to a request that carried a token); `refusal` says which.
    #[error("{path}: HTTP status {status} ({})", if *.sent_token { "the token sent was refused" } else { "no token was sent" })]
    Unauthorized {
        /// The path asked for.
        path: String,
        /// The status code (401 or 403).
        status: u16,
        /// Whether the request carried a token.
        sent_token: bool,
        /// What the refusal means: no token, the token refused, or the token lacking the
        /// grant ([`vouch_tuf::api::AuthRefusal::classify`]).
        refusal: vouch_tuf::api::AuthRefusal,
    },
    /// The network failed, timed out, or redirected somewhere it may not.
    #[error("{path}: {message}")]
    Network {
        /// The path asked for.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The path asked for.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The path is not one a transport will fetch (absolute, `..`, empty segment).
    #[error("{path}: not a valid relative path")]
    BadPath {
        /// The path asked for.
        path: String,
    },
    /// The source sent something other than what was asked for: bytes that do not match
    /// the digest they were asked by, or (from a registry) a manifest that is not a trust
    /// artifact, or another repository's.
    #[error("{path}: {message}")]
    Invalid {
        /// The path (or registry location) asked for.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// The fetch's deadline passed before the whole file arrived (a server too slow, or
    /// trickling bytes), or before the fetch could start.
    #[error("{path}: not received before the fetch deadline (slow or stalled server)")]
    TimedOut {
        /// The path asked for.
        path: String,
    },
}

impl TransportError {
    /// True for [`TransportError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, TransportError::NotFound { .. })
    }

    /// True for [`TransportError::Unauthorized`].
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, TransportError::Unauthorized { .. })
    }

    /// True for [`TransportError::TimedOut`].
    pub fn is_timed_out(&self) -> bool {
        matches!(self, TransportError::TimedOut { .. })
    }
}

/// A source of files, addressed by paths relative to its base.
pub trait Transport: Send + Sync {
    /// Fetches `path`, reading at most `max_len` bytes; more is
    /// [`TransportError::TooLarge`]. Bounded in time by the transport's own per-fetch
    /// timeout, if it has one.
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError>;

    /// [`Transport::fetch`], over by `deadline`: a fetch is not started once the deadline has
    /// passed, and one still receiving at the deadline fails with
    /// [`TransportError::TimedOut`] (so does one that exceeds the transport's own per-fetch
    /// timeout, whichever comes first).
    ///
    /// The default checks the deadline, then calls [`Transport::fetch`]: right for transports
    /// whose reads do not wait on a peer (a directory, a bundle in memory). Transports that
    /// wait on the network override it.
    fn fetch_by(
        &self,
        path: &str,
        max_len: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
        check_deadline(path, deadline)?;
        self.fetch(path, max_len)
    }
}

/// A reference, box or shared pointer to a transport is that transport: both methods are
/// forwarded (a wrapper that forwarded only `fetch` would lose the inner transport's own
/// `fetch_by`).
macro_rules! forward_transport {
    ($($ptr:ty),*) => {$(
        impl<T: Transport + ?Sized> Transport for $ptr {
            fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
                (**self).fetch(path, max_len)
            }
            fn fetch_by(
                &self,
                path: &str,
                max_len: u64,
                deadline: Instant,
            ) -> Result<Vec<u8>, TransportError> {
                (**self).fetch_by(path, max_len, deadline)
            }
        }
    )*};
}

forward_transport!(&T, Box<T>, std::sync::Arc<T>);

/// [`TransportError::TimedOut`] once `deadline` has passed.
pub fn check_deadline(path: &str, deadline: Instant) -> Result<(), TransportError> {
    if Instant::now() >= deadline {
        return Err(TransportError::TimedOut {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// The most an announced size (a `Content-Length`, a file's length) makes a read reserve up
/// front, 64 KiB: beyond it the buffer grows only as bytes actually arrive, so a response
/// that announces a large body and sends little costs little.
pub const PREALLOCATE_MAX: u64 = 64 * 1024;

/// Bytes read per step while streaming a body.
const READ_CHUNK: usize = 16 * 1024;

/// Reads `reader` to the end, failing as soon as more than `max_len` bytes arrive.
pub fn read_capped(path: &str, reader: impl Read, max_len: u64) -> Result<Vec<u8>, TransportError> {
    read_capped_sized(path, reader, max_len, None)
}

/// [`read_capped`] for a body whose size is announced (a `Content-Length`, a file's length):
/// the buffer is reserved once at that size (never beyond `max_len` nor
/// [`PREALLOCATE_MAX`]) instead of growing step by step. The announcement is only a hint;
/// the cap is enforced on what arrives.
pub fn read_capped_sized(
    path: &str,
    reader: impl Read,
    max_len: u64,
    announced: Option<u64>,
) -> Result<Vec<u8>, TransportError> {
    read_capped_by(path, reader, max_len, announced, None)
}

/// [`read_capped_sized`] that also fails with [`TransportError::TimedOut`] when `deadline`
/// passes before the end of the body: the deadline is checked after every read, so a body
/// trickled byte by byte is cut off at the deadline (plus at most one read, which the caller
/// bounds, e.g. with a socket timeout). A read failing with
/// [`std::io::ErrorKind::TimedOut`] is also [`TransportError::TimedOut`].
pub fn read_capped_by(
    path: &str,
    mut reader: impl Read,
    max_len: u64,
    announced: Option<u64>,
    deadline: Option<Instant>,
) -> Result<Vec<u8>, TransportError> {
    let capacity = announced.map_or(0, |n| n.min(max_len).min(PREALLOCATE_MAX));
    let mut out = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(TransportError::TimedOut {
                    path: path.to_owned(),
                })
            }
            Err(source) => {
                return Err(TransportError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        if (out.len() as u64).saturating_add(n as u64) > max_len {
            return Err(TransportError::TooLarge {
                path: path.to_owned(),
                limit: max_len,
            });
        }
        out.extend_from_slice(&chunk[..n]);
        if let Some(d) = deadline {
            check_deadline(path, d)?;
        }
    }
    Ok(out)
}

/// Checks that `path` is relative and stays below its base.
pub(crate) fn check_path(path: &str) -> Result<(), TransportError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        return Err(TransportError::BadPath {
            path: path.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_capped_stops_at_the_cap() {
        let endless = std::io::repeat(b'x');
        match read_capped("x", endless, 1024) {
            Err(TransportError::TooLarge { limit: 1024, .. }) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert_eq!(read_capped("x", &b"abc"[..], 3).unwrap(), b"abc");
        // An announced size is only a hint: neither a short nor a lying announcement
        // changes what is read or lets more than the cap through.
        assert_eq!(
            read_capped_sized("x", &b"abc"[..], 3, Some(1)).unwrap(),
            b"abc"
        );
        assert_eq!(
            read_capped_sized("x", &b"abc"[..], 3, Some(u64::MAX)).unwrap(),
            b"abc"
        );
        assert!(matches!(
            read_capped_sized("x", std::io::repeat(b'x'), 16, Some(4)),
            Err(TransportError::TooLarge { limit: 16, .. })
        ));
    }

    #[test]
    fn an_announced_size_reserves_at_most_the_preallocation_cap() {
        // A body announcing the cap (or far more) but sending 3 bytes: the buffer holds what
        // arrived, not what was announced.
        for announced in [PREALLOCATE_MAX * 100, u64::MAX] {
            let got = read_capped_sized("x", &b"abc"[..], 1 << 30, Some(announced)).unwrap();
            assert_eq!(got, b"abc");
            assert!(
                got.capacity() as u64 <= PREALLOCATE_MAX,
                "{}",
                got.capacity()
            );
        }
        // A small announcement is still honoured exactly.
        let got = read_capped_sized("x", &b"abc"[..], 1 << 30, Some(3)).unwrap();
        assert_eq!(got.capacity(), 3);
    }

    #[test]
    fn a_passed_deadline_stops_a_read_and_a_fetch() {
        let past = Instant::now();
        assert!(matches!(
            read_capped_by("x", std::io::repeat(b'x'), u64::MAX, None, Some(past)),
            Err(TransportError::TimedOut { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), b"{}").unwrap();
        let t = DirectoryTransport::new(dir.path());
        assert!(t.fetch_by("a.json", 10, past).unwrap_err().is_timed_out());
        let later = Instant::now() + std::time::Duration::from_secs(3600);
        assert_eq!(t.fetch_by("a.json", 10, later).unwrap(), b"{}");
    }

    #[test]
    fn paths_must_stay_below_the_base() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a\\b",
            "./a",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        for good in [
            "root.json",
            "1.root.json",
            "a/b.c",
            "targets%2Freleases.json",
        ] {
            assert!(check_path(good).is_ok(), "{good}");
        }
    }
}
