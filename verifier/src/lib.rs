//! `vouch-verifier`: the TUF 1.0 client workflow, for deciding which image digest may be
//! pulled.
//!
//! What it is: a complete implementation of the TUF specification's detailed client
//! workflow (1.0.34, section 5), so that a malicious or broken server, mirror or network
//! cannot make a client accept metadata or targets the specification says to reject.
//! What it is not: a signer or a repository editor (that is the CLI and the server), nor
//! image pull or push tooling: it answers *which* digest to pull, and its small registry
//! client ([`registry`]) moves only trust artifacts and resolves tags; pulling images stays
//! the caller's job. Nor is it a command line: the `vouch` command and the tuf-conformance
//! client `vouch-tuf-client` are crates of their own built on this one.
//!
//! How the parts relate:
//! - [`TrustedSet`] (in [`trusted`]) is the sans-IO core: it holds trusted metadata and
//!   accepts fetched bytes role by role, applying every check, with one reference time per
//!   update; it enforces expiry unless built for editing ([`Expiry`]). [`search`] walks
//!   the delegation tree over it, asking for the roles it needs.
//! - [`transport`] fetches bytes with a size cap: HTTP(S), a directory, an offline bundle.
//! - [`server`] is the typed client of the vouch server's HTTP API (metadata reads as a
//!   transport, online keys, delete, publish), built on [`vouch_tuf::api`]; its
//!   [`server::events`] reads the server's trust-change events as Server-Sent Events and
//!   follows them across reconnections ([`server::Follower`]).
//! - [`webhook`] checks a webhook delivery of those events (Standard Webhooks headers,
//!   HMAC or ed25519 signature, timestamp tolerance) for Rust receivers.
//! - [`cache`] persists trusted metadata per repository, atomically.
//! - [`pins`] says which first root a client may trust for a repository: a pinned root
//!   file, a threshold of pinned root keys (for every repository of an organisation), or
//!   trust on first use; [`Updater::establish`] starts a repository's trust from one.
//! - [`Updater`] drives the workflow with IO and answers [`Updater::lookup`],
//!   [`Updater::is_trusted`], [`Updater::resolve`] and [`Updater::vouch`] (which role
//!   paths vouched for an image, checked against required ones with [`Vouched`]).
//! - [`clock`] gives the reference time; tests set it.
//! - [`registry`] is a small OCI Distribution API client: which manifest a tag names, and
//!   manifests and blobs read and written whole, each read capped and checked against its
//!   digest (for trust data kept in registries); credentials come from a
//!   [`registry::Login`]. The `vouch` command resolves tags with it.
//! - [`registry_auth`] is the registry token flow (a `401` challenge, then a token from its
//!   realm) that Notary servers and registries use, with the rules on which credentials may
//!   go where; the `vouch` command and the admission webhook both use it.
//! - [`notary`] verifies Notary v1 collections the way the notary client does, against a
//!   root the user already trusts, for migrating off Notary (kept apart from the TUF 1.0
//!   workflow).
//!
//! ```no_run
//! use vouch_verifier::cache::MetadataStore;
//! use vouch_verifier::transport::{HttpOptions, HttpTransport};
//! use vouch_verifier::Updater;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MetadataStore::for_repository("/var/cache/vouch", "https://vouch.example", "example.com/org/app")?;
//! Updater::<HttpTransport>::pin_root(&store, &std::fs::read("root.json")?)?;
//! let http = HttpTransport::new("https://vouch.example/v2/example.com/org/app/_trust/tuf/", &HttpOptions::default())?;
//! let mut updater = Updater::new(store, http);
//! updater.refresh()?;
//! if let Some(t) = updater.lookup("v1.2.0")? {
//!     println!("v1.2.0 is {} (signed by {:?})", t.digest, t.role_path);
//! }
//! # Ok(()) }
//! ```

pub mod cache;
pub mod clock;
pub mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod limits;
pub mod notary;
pub mod pins;
pub mod registry;
pub mod registry_auth;
pub mod search;
pub mod server;
pub mod transport;
pub mod trusted;
pub mod updater;
pub mod webhook;

pub use error::{Mismatch, UpdateError};
pub use limits::Limits;
pub use search::{DelegationPath, DelegationPathError};
pub use trusted::{Expiry, Origin, TimestampUpdate, TrustedSet};
pub use updater::{Error, ImageTarget, Unmet, Updater, Vouched};

#[cfg(test)]
extern crate self as vouch_verifier;

#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod test_repo;
