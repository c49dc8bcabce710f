//! `vouch-tuf`: the pure core of vouch.
//!
//! TUF 1.0 metadata (root, targets with delegations, snapshot, timestamp), the canonical
//! JSON form that every TUF implementation signs, keys and signatures, thresholds, and
//! container-image references and digests.
//!
//! This crate does no IO: no network, no filesystem, and no clock in any decision. Callers
//! hand it bytes and a reference time and get values or typed errors back; the one piece
//! that reads the wall clock, [`clock::SystemClock`], is what binaries pass in as "now". The server, the verifier and the CLI
//! are thin layers around it.
//!
//! How the parts relate:
//! - [`json`] parses bytes into a [`json::Value`] (strict: no floats, no duplicate keys) and
//!   writes the canonical form.
//! - [`metadata`] builds typed roles from a `Value`, keeping unknown fields, and checks
//!   signatures over the canonical form of that same value.
//! - [`crypto`] verifies and makes signatures (ed25519, ECDSA P-256, RSA-PSS verify only)
//!   and reads and writes encrypted private-key files.
//! - [`notary`] reads the Notary v1 dialect (its envelopes, roles, keys and key ids) for
//!   verifying and importing Notary collections, apart from the TUF 1.0 model.
//! - [`reference`](mod@reference) parses image references, digests and GUNs; [`pattern`] matches globs over
//!   their canonical names.
//! - [`oci`] lays a repository's metadata out as an OCI artifact for registries to carry,
//!   and reads image manifests for copying.
//! - [`api`] is the vouch server's HTTP API as data: its paths both ways, its error body
//!   and what a 401 or 403 means, shared by the server and its clients.

pub mod api;
pub mod clock;
pub mod crypto;
#[doc(hidden)]
pub mod fuzz;
pub mod hex;
pub mod json;
pub mod metadata;
pub mod notary;
pub mod oci;
pub mod pattern;
pub mod reference;
pub mod time;
pub mod types;
