//! `vouch-serve`: how vouch's HTTP services take connections, shared by `vouch-server` and
//! `vouch-admission`.
//!
//! What it is: the part of serving below the application: the accept loop ([`serve`]) that gives
//! every connection its own task and speaks HTTP/1.1 with keep-alive, optionally over TLS, closes
//! connections accepted past a cap on open ones ([`Limits`], [`serve_with_limits`]), cuts off
//! clients that are slow to send a request head or to finish a handshake, answers `431` to a
//! request head longer than [`MAX_HEAD_BYTES`], closes connections whose client stops taking the
//! response ([`Limits::write_timeout`]), and on shutdown stops accepting and lets requests in
//! flight finish within a grace period; [`discard`], which reads away a request body the
//! application answered without reading, in the background and within a byte and a time budget, so
//! that the answer is not held up and the connection stays usable; and the TLS certificate
//! ([`tls::ReloadingCert`]) read from PEM files and re-read when they change, so rotating a
//! certificate needs no restart. What it is not: a router, a middleware stack or a configuration
//! loader. The application hands [`serve`] a hyper service (one clone per connection) and chooses
//! the limits in [`Options`] and [`Limits`]; routes, request time limits, body limits and metrics
//! stay in the application.
//!
//! How the parts relate: [`tls::load`] reads and checks a certificate and key;
//! [`tls::ReloadingCert`] keeps the pair in use and swaps in a new one when the files change
//! (a pair that does not load is logged and the previous one kept); [`tls::server_config`]
//! makes the rustls configuration that [`Options::tls`] takes.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use http_body_util::Full;
//! use hyper::body::{Bytes, Incoming};
//! use hyper::{Request, Response};
//! use vouch_serve::tls::{server_config, ReloadingCert};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cert = ReloadingCert::new(
//!     "cert.pem".as_ref(),
//!     "key.pem".as_ref(),
//!     Duration::from_secs(30),
//! )?;
//! let options = vouch_serve::Options {
//!     tls: Some(Arc::new(server_config(Arc::new(cert))?)),
//!     header_read_timeout: Duration::from_secs(10),
//!     tls_handshake_timeout: Duration::from_secs(10),
//!     shutdown_grace: Duration::from_secs(30),
//! };
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
//! });
//! let shutdown = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! vouch_serve::serve(listener, service, options, shutdown).await;
//! # Ok(()) }
//! ```

mod conn;
pub mod tls;

pub use conn::{
    discard, serve, serve_with_limits, Limits, Options, DISCARD_BYTES, MAX_CONNECTIONS,
    MAX_HEAD_BYTES, WRITE_TIMEOUT,
};
