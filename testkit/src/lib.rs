//! Test support shared by vouch's integration tests, so that each test crate's
//! `tests/common` holds only what is its own.
//!
//! This crate is for tests only: it is a `[dev-dependencies]` entry of the crates whose tests
//! use it and never a dependency of a library or binary. It panics instead of returning
//! errors, since a harness that cannot start is a failed test.
//!
//! - [`server`] starts a real `vouch-server` process on a free loopback port with its own data
//!   directory, and reads the URL it serves and its admin token.
//! - [`tls`] is a test certificate authority issuing server certificates for loopback.
//! - [`python`] finds the Python interpreter that has python-tuf installed.
//! - [`http`] reads HTTP/1.1 responses off a raw connection, for tests that speak the
//!   protocol byte for byte.
//! - [`postgres`] runs throwaway real PostgreSQL clusters (Debian's `postgresql`).
//! - [`notary`] runs real Notary v1 (Debian's `notary`): a `notary-server` process storing
//!   into one of those clusters, and the `notary` client for a trust directory.
//! - [`registry`] runs a real OCI registry (Debian's `docker-registry`) without
//!   authentication, with basic or with token authentication, and pushes OCI image layouts
//!   (one image, or an index over several platforms) to it with `skopeo`.
//! - [`token`] is the registry token flow both need for `auth: token`: a JWT issuer whose
//!   certificate the server trusts, and a token service granting what a policy allows.
//! - [`trust_api`] speaks to a server's trust-data endpoints as a client without the CLI's
//!   checks would: uploads metadata files as one multipart update, fetches a file back.
//! - [`fuzz`] replays the checked-in fuzz corpora (`fuzz/corpus/<target>/`) through the
//!   fuzz bodies the libraries expose, so every seed and past crash input is a test.
//!
//! Non-goals: no mocks (every helper drives the real binary or the real protocol), no
//! repository or metadata builders (each test crate's fixtures describe the attacks it
//! stages), and no assertions about behaviour (those belong to the tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod fuzz;
pub mod http;
pub mod notary;
pub mod postgres;
pub mod python;
pub mod registry;
pub mod server;
pub mod tls;
pub mod token;
pub mod trust_api;
