//! `vouch-server`: the trust-metadata service.
//!
//! It stores role-based signed TUF metadata for each image repository (GUN), checks every
//! update before storing it, and signs the online roles (timestamp always, snapshot when the
//! repository's root assigns it to the server's key). Clients read metadata over a
//! Notary-compatible HTTP API.
//!
//! How the parts relate:
//! - [`routes`] parses request paths; [`http`] authorises ([`auth`]) and dispatches;
//! - [`service`] runs each operation as a blocking call: load state from the [`store`],
//!   check it with [`validate`] (pure, no IO), sign with [`keys`], store in one transaction;
//!   it fails with a [`service::ServiceError`], which knows nothing of HTTP;
//! - [`error`] is the one mapping from failures to HTTP responses;
//! - [`metrics`] counts requests, publishes, rejections, signatures and expiry for `/metrics`;
//!   [`jwt`] verifies registry-format bearer tokens for [`auth`];
//! - [`config`] and `run` assemble everything for the `vouch-server` binary, serving plain
//!   HTTP or TLS through [`vouch_serve`] (the accept loop, and certificates reloaded when
//!   their files change); [`backup`] copies the SQLite store while it is in use
//!   (`vouch-server backup`); [`migrate`] copies one store into another
//!   (`vouch-server migrate-store`).

pub mod auth;
pub mod backup;
pub mod config;
pub mod error;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod metrics;
pub mod migrate;
pub mod routes;
pub mod service;
pub mod store;
pub mod validate;

mod run;

pub use http::{app, AppState};
pub use run::{build_state, ensure_admin_token, serve, serve_with, Prepared, ServeOptions};
