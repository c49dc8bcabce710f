//! The response budget: bytes of responses made for one request alone that may wait to be
//! written, over the whole process.
//!
//! A response whose body was made for that request alone — a file read from the store rather
//! than the cache, `/metrics` — may outlive its handler (and its in-flight slot) by as long as
//! the client takes to read it. Such bodies take their size from one budget of the process
//! ([`ResponseBudget`], `capacity.max_pending_response_bytes`) before they are sent and give
//! it back when they are dropped (written, or the connection closed); one that does not fit
//! gets 503 with `Retry-After` ([`OverBudget`]). Cached reads share the cache's buffer and
//! take nothing.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::response::Response;
use hyper::body::{Frame, SizeHint};

use super::middleware::overloaded;
use super::AppState;
use crate::metrics::Metrics;

/// The bytes of responses made for one request alone (not shared with the read cache) that
/// may wait to be written at once, over the whole process.
///
/// A response takes its body's length (at most the whole budget, so that a file larger than
/// the budget is still served when nothing else waits) before it is sent, as a [`Pending`]
/// that its body ([`OwnBody`]) holds until it is dropped: once hyper has taken the last
/// piece, or when the connection closes (the write deadline included). When the budget
/// cannot cover a response now, the request gets 503. Lock-free: one compare-and-swap to take,
/// one add to give back.
pub(super) struct ResponseBudget {
    /// Bytes not taken.
    pub(super) available: AtomicUsize,
    /// The whole budget.
    total: usize,
    metrics: Arc<Metrics>,
}

impl ResponseBudget {
    pub(super) fn new(total: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(ResponseBudget {
            available: AtomicUsize::new(total),
            total,
            metrics,
        })
    }

    /// Takes `len` bytes (at most the whole budget), or `None` when that many are not free.
    pub(super) fn take(self: &Arc<Self>, len: usize) -> Option<Pending> {
        let bytes = len.min(self.total);
        let mut free = self.available.load(Ordering::Acquire);
        loop {
            let left = free.checked_sub(bytes)?;
            match self.available.compare_exchange_weak(
                free,
                left,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => free = now,
            }
        }
        self.metrics.response_bytes_taken(bytes);
        Some(Pending {
            budget: self.clone(),
            bytes,
        })
    }
}

/// Bytes taken from a [`ResponseBudget`], given back when dropped.
pub(super) struct Pending {
    budget: Arc<ResponseBudget>,
    bytes: usize,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.budget
            .available
            .fetch_add(self.bytes, Ordering::AcqRel);
        self.budget.metrics.response_bytes_returned(self.bytes);
    }
}

/// Most bytes of an [`OwnBody`] handed to hyper at once.
const OWN_BODY_PIECE: usize = 16 * 1024;

/// A response body made for one request alone, holding its share of the [`ResponseBudget`]
/// for as long as it holds the bytes.
///
/// It hands hyper copies of at most [`OWN_BODY_PIECE`] bytes, never slices of its buffer:
/// hyper buffers at most a small window of a response ahead of the socket and drops the body
/// after taking its last piece, so the buffer, and its share of the budget, live exactly as
/// long as the body (a slice would keep the whole buffer alive in hyper's queue after the
/// share was given back).
struct OwnBody {
    rest: Bytes,
    _pending: Pending,
}

impl hyper::body::Body for OwnBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.rest.len().min(OWN_BODY_PIECE);
        let piece = Bytes::copy_from_slice(&self.rest[..n]);
        self.rest = self.rest.slice(n..);
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// The response budget could not cover a response now (counted and logged when made).
pub(super) struct OverBudget {
    retry_after: u64,
}

impl OverBudget {
    /// The 503 with `Retry-After` to answer instead.
    pub(super) fn response(self) -> Response {
        overloaded(self.retry_after, "the server is over capacity: retry later")
    }
}

impl AppState {
    /// `bytes` as a response body that holds its share of the response budget until it is
    /// dropped, or [`OverBudget`] when the budget cannot cover it now.
    pub(super) fn own_body(&self, bytes: Bytes) -> Result<Body, OverBudget> {
        match self.capacity.responses.take(bytes.len()) {
            Some(pending) => Ok(Body::new(OwnBody {
                rest: bytes,
                _pending: pending,
            })),
            None => {
                self.metrics.overloaded("response_bytes");
                tracing::warn!(
                    bytes = bytes.len(),
                    "over capacity: too many response bytes waiting to be written"
                );
                Err(OverBudget {
                    retry_after: self.capacity.retry_after,
                })
            }
        }
    }
}
