//! Where metadata and targets come from.
//!
//! A [`Transport`] fetches one file by its path relative to a base (a URL, a directory, an
//! offline bundle), reading at most `max_len` bytes: the cap is enforced while the bytes
//! arrive, so an endless or oversized response never reaches memory in full. Transports know
//! nothing of TUF; the [`Updater`](crate::Updater) decides what to fetch and with which cap.
//!
//! - [`HttpTransport`]: HTTP(S) with rustls, timeouts, and no redirects to another host.
//! - [`DirectoryTransport`]: files in a local directory (a mirror, a test repository).
//! - [`BundleTransport`]: an offline bundle holding every current metadata file of a GUN.

mod bundle;
mod dir;
mod http;

use std::io::Read;

use thiserror::Error;

pub use bundle::{Bundle, BundleError, BundleTransport};
pub use dir::DirectoryTransport;
pub use http::{without_certificate_store, CrossHostRedirects, HttpOptions, HttpTransport};

/// A fetch that did not produce the file.
#[derive(Debug, Error)]
pub enum TransportError {
    /// The file does not exist (HTTP 404 or 403, no such file).
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
}

impl TransportError {
    /// True for [`TransportError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, TransportError::NotFound { .. })
    }
}

/// A source of files, addressed by paths relative to its base.
pub trait Transport: Send + Sync {
    /// Fetches `path`, reading at most `max_len` bytes; more is
    /// [`TransportError::TooLarge`].
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError>;
}

impl<T: Transport + ?Sized> Transport for &T {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        (**self).fetch(path, max_len)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        (**self).fetch(path, max_len)
    }
}

impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        (**self).fetch(path, max_len)
    }
}

/// Reads `reader` to the end, failing as soon as more than `max_len` bytes arrive.
pub fn read_capped(path: &str, reader: impl Read, max_len: u64) -> Result<Vec<u8>, TransportError> {
    read_capped_sized(path, reader, max_len, None)
}

/// [`read_capped`] for a body whose size is announced (a `Content-Length`, a file's length):
/// the buffer is allocated once at that size (never beyond `max_len`) instead of growing
/// step by step. The announcement is only a hint; the cap is enforced on what arrives.
pub fn read_capped_sized(
    path: &str,
    reader: impl Read,
    max_len: u64,
    announced: Option<u64>,
) -> Result<Vec<u8>, TransportError> {
    let capacity = announced.map_or(0, |n| n.min(max_len));
    let mut out = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    reader
        .take(max_len.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|source| TransportError::Io {
            path: path.to_owned(),
            source,
        })?;
    if out.len() as u64 > max_len {
        return Err(TransportError::TooLarge {
            path: path.to_owned(),
            limit: max_len,
        });
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
