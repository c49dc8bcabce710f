//! `vouch-server`: the trust-metadata service.
//!
//! It stores role-based signed TUF metadata for each image repository (GUN), checks every
//! update before storing it, and signs the online roles (timestamp always, snapshot when the
//! repository's root assigns it to the server's key). Clients read metadata over a
//! Notary-compatible HTTP API.
//!
//! # What the crate exports
//!
//! Most modules are private; what other crates (the `vouch-server` binary, the integration
//! tests, an embedding program) use is re-exported here by name, in four groups:
//! - **serving**: [`build_state`] opens the store and the online keys a [`Config`] names
//!   (making the admin token with [`ensure_admin_token`]) and returns a [`Prepared`]
//!   [`AppState`]; [`serve`] and [`serve_with`] (with [`ServeOptions`]) run it on a
//!   listener, [`app`] is its router for driving it without a socket; [`Clock`] is what
//!   tests pass to [`build_state`] to set the time;
//! - **configuration**: [`Config`] and the types of its sections, as the TOML file and the
//!   `VOUCH_*` variables spell them (docs/operations.md), [`Backend`] (the store a URL
//!   names) and [`ConfigError`];
//! - **storage**: the [`store`] module (see below);
//! - **maintenance**, the binary's subcommands: [`backup()`] copies the SQLite store while it
//!   is in use, [`rotate_kek`] re-seals the online keys under a new key-encryption key
//!   ([`KekRotation`], [`KeyError`]), [`migrate_store`] copies one store into another
//!   ([`Migrated`]).
//!
//! [`store`] stays a module rather than a list of names here: it is a surface of its own,
//! the [`store::Store`] trait with the records it reads and writes and its two backends,
//! used together (by the contract suite that runs on both backends, and by anything that
//! opens a store), and its item names (`Change`, `Direction`, `Record`) read right only
//! under it. The backends' internals (connection pool, TLS connector, schema) stay private.
//! [`routes`] is public too: the grammar of the URL paths the API serves.
//!
//! # How the parts relate
//!
//! - [`routes`] parses request paths; `http` authorises (`auth`) and dispatches;
//! - `service` runs each operation as a blocking call: load state from the [`store`],
//!   check it with `validate` (pure, no IO), sign with `keys`, store in one transaction;
//!   it fails with a `ServiceError`, which knows nothing of HTTP;
//! - `error` is the one mapping from failures to HTTP responses;
//! - `webhooks` delivers the changefeed to subscribers' URLs, signed (Standard Webhooks);
//! - `mirror` pushes mirrored repositories' trust into their registries as trust artifacts
//!   (following the changefeed with the webhooks' lease and cursor), and re-signs their
//!   online roles when due;
//! - `events` follows the changefeed (for this process's caches, and into the buffer the
//!   event streams read);
//! - `metrics` counts requests, publishes, rejections, signatures and expiry for `/metrics`;
//!   `jwt` verifies registry-format bearer tokens for `auth`;
//! - `config` and `run` assemble everything for the `vouch-server` binary, serving plain
//!   HTTP or TLS through [`vouch_serve`] (the accept loop, and certificates reloaded when
//!   their files change); `backup` copies the SQLite store while it is in use
//!   (`vouch-server backup`); `migrate` copies one store into another
//!   (`vouch-server migrate-store`).

// Every type an exported item's signature or public field reaches is exported too.
#![warn(unnameable_types)]

mod auth;
mod backup;
mod config;
mod error;
mod events;
#[doc(hidden)]
pub mod fuzz;
mod http;
mod jwt;
mod keys;
mod metrics;
mod migrate;
mod mirror;
mod proposal;
pub mod routes;
mod run;
mod service;
pub mod store;
mod validate;
mod webhooks;

// Serving.
pub use http::{app, AppState};
pub use run::{build_state, ensure_admin_token, serve, serve_with, Prepared, ServeOptions};
pub use service::Clock;

// Configuration.
pub use config::{
    AuthConfig, Backend, CacheConfig, Capacity, Config, ConfigError, EventsConfig, JwtConfig,
    JwtKeyConfig, KeysConfig, LifetimeConfig, Limits, LogFormat, MetricsAccess, MetricsConfig,
    MirrorConfig, MirrorRegistryConfig, ProposalsConfig, StorageConfig, SubscriptionConfig,
    Timeouts, TlsConfig, TokenConfig, WebhooksConfig,
};

// Maintenance.
pub use backup::backup;
pub use keys::{rotate_kek, KekRotation, KeyError};
pub use migrate::{migrate_store, Migrated};

/// What the crate's own integration tests measure from the inside: the parse cache and the
/// memory bound it keeps (`tests/parse_cache_memory.rs` counts heap bytes with its own
/// global allocator, so it cannot be a unit test). Not part of the API: hidden from the
/// documentation, and free to change.
#[doc(hidden)]
pub mod internal {
    pub use crate::validate::{
        Loaded, ParseCache, RepoState, MEMORY_PER_STORED_BYTE, PARSE_CACHE_MEMORY,
    };
}
