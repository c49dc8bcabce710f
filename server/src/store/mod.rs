//! Storage of TUF metadata, the changefeed and online keys.
//!
//! [`Store`] is synchronous and blocking: the HTTP layer calls it through
//! `tokio::task::spawn_blocking`, never on an async executor thread. Two implementations:
//! [`SqliteStore`] (the embedded default) and [`PostgresStore`] (for several replicas
//! behind a load balancer, opened with [`PgOptions`]); both give the guarantees documented
//! on each method, and `server/tests/store_contract.rs` runs the same suite on both.
//!
//! What the store guarantees:
//! - every version of every role is kept, exactly as received, and can be read back by
//!   version and by the SHA-256 of its bytes;
//! - [`Store::publish`] is atomic: all files and the changefeed record, or nothing;
//! - a (GUN, role, version) is written at most once, so two different documents never share a
//!   version: a concurrent writer that lost gets [`StoreError::Conflict`];
//! - publishing is a compare-and-swap on the repository's current timestamp version, and
//!   adding an online key one on the role's newest key: both hold across processes and hosts
//!   sharing one database, so two replicas can never fork a repository's history or its
//!   keys;
//! - changefeed ids increase in the order the entries become visible: a reader that saw
//!   entry N will never later see a new entry below N, so polling "after the last id seen"
//!   never skips one;
//! - a staged proposal is amended, withdrawn or published only at the revision the writer
//!   read (a compare-and-swap, across hosts too): of two writers that read one revision,
//!   one wins and the other gets [`StoreError::ProposalChanged`]. Publishing one is
//!   [`Store::publish`] and the proposal's closing in one transaction.
//!
//! The store knows nothing of TUF rules; the server's validation decides what may be written.

mod postgres;
mod sqlite;

pub(crate) use postgres::redact;
pub use postgres::{is_postgres_url, PgOptions, PostgresStore, TlsMode};
pub use sqlite::SqliteStore;

use thiserror::Error;
use vouch_tuf::reference::Gun;
use vouch_tuf::time::Timestamp;

/// The highest version of a role any backend stores: versions are signed 64-bit integers in
/// every database. Validation refuses a higher one before anything is written.
pub(crate) const MAX_VERSION: u64 = i64::MAX as u64;

/// One stored version of one role's metadata file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    /// Role name (`root`, `targets`, `snapshot`, `timestamp`, or a delegated role).
    pub role: String,
    /// The version in the file's `signed.version`.
    pub version: u64,
    /// Lowercase hex SHA-256 of `bytes`.
    pub sha256: String,
    /// The file exactly as received (or as the server signed it).
    pub bytes: Vec<u8>,
    /// When it was stored.
    pub created_at: Timestamp,
}

/// A file to store: role, version and bytes (the store computes the SHA-256).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFile {
    /// Role name.
    pub role: String,
    /// Version in the file.
    pub version: u64,
    /// The bytes to store.
    pub bytes: Vec<u8>,
}

/// One entry of the changefeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Position in the feed: increasing, never reused.
    pub id: i64,
    /// The repository that changed.
    pub gun: String,
    /// Timestamp version written by the change (0 for a deletion).
    pub version: u64,
    /// SHA-256 of that timestamp file (empty for a deletion).
    pub sha256: String,
    /// What happened.
    pub category: ChangeCategory,
    /// The (role, version) of every file the change stored, sorted by role name; empty
    /// for a deletion and for entries written before schema step 3.
    pub roles: Vec<(String, u64)>,
    /// When.
    pub created_at: Timestamp,
}

/// What a changefeed entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeCategory {
    /// New metadata was published (or the server re-signed an online role).
    Update,
    /// The repository's trust data was deleted.
    Deletion,
}

impl ChangeCategory {
    /// `update` or `deletion`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeCategory::Update => "update",
            ChangeCategory::Deletion => "deletion",
        }
    }
}

/// Which way to read the changefeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Entries with id greater than the cursor, oldest first.
    Forward,
    /// Entries with id less than the cursor (or the newest, when the cursor is `None`),
    /// newest first.
    Backward,
}

/// An online private key, encrypted under the server's key-encryption key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id of the public key (SHA-256 of its canonical TUF key object).
    pub keyid: String,
    /// The TUF public-key object as JSON (`{"keytype","scheme","keyval":{"public"}}`).
    pub public: String,
    /// The sealed private key (nonce and AEAD ciphertext of its PKCS#8 form).
    pub sealed_private: Vec<u8>,
    /// When it was created; the newest key of a role is the one offered to clients.
    pub created_at: Timestamp,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("keyid", &self.keyid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A staged proposal as stored: what the service keeps in `body` (the proposed files, their
/// base versions and the approvals so far) is opaque to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredProposal {
    /// Its number: increasing, never reused, unique across repositories.
    pub id: i64,
    /// The repository.
    pub gun: String,
    /// Open, published or withdrawn.
    pub state: ProposalState,
    /// Bumped by every amendment, so two writers that read the same revision cannot both
    /// write (see [`Store::amend_proposal`]).
    pub revision: u64,
    /// What the service stored: the whole proposal (empty when read by
    /// [`Store::proposals`], which leaves the bodies out).
    pub body: Vec<u8>,
    /// What the service stored to list the proposal by: small, whatever the size of `body`.
    pub summary: Vec<u8>,
    /// Who proposed it.
    pub proposed_by: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops being open, unless published or withdrawn first.
    pub expires_at: Timestamp,
    /// When it was published or withdrawn.
    pub closed_at: Option<Timestamp>,
    /// Who published or withdrew it.
    pub closed_by: Option<String>,
}

/// Where a stored proposal stands. (Whether an open one has expired, or gone stale, is the
/// service's reading of it, not stored.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposalState {
    /// Open for signatures.
    Open,
    /// Published, by the changefeed entry with this id.
    Published(i64),
    /// Withdrawn.
    Withdrawn,
}

impl ProposalState {
    /// How every backend stores it: the `state` column (`open`, `published`, `withdrawn`)
    /// and the `change_id` column.
    pub fn columns(self) -> (&'static str, Option<i64>) {
        match self {
            ProposalState::Open => ("open", None),
            ProposalState::Published(change) => ("published", Some(change)),
            ProposalState::Withdrawn => ("withdrawn", None),
        }
    }

    /// The state stored as `state` and `change_id` ([`ProposalState::columns`]); `None` for
    /// a pair no backend writes (a corrupted row).
    pub fn from_columns(state: &str, change_id: Option<i64>) -> Option<Self> {
        match (state, change_id) {
            ("open", _) => Some(ProposalState::Open),
            ("published", Some(change)) => Some(ProposalState::Published(change)),
            ("withdrawn", _) => Some(ProposalState::Withdrawn),
            _ => None,
        }
    }
}

/// A proposal to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProposal {
    /// What the service keeps.
    pub body: Vec<u8>,
    /// What the service lists it by.
    pub summary: Vec<u8>,
    /// Who proposes it.
    pub proposed_by: String,
    /// When it stops being open.
    pub expires_at: Timestamp,
}

/// How a proposal is closed by [`Store::close_proposal`] or [`Store::publish_proposal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closing<'a> {
    /// The proposal.
    pub id: i64,
    /// The revision the closer read: closing fails when another writer amended it since.
    pub revision: u64,
    /// Who closes it.
    pub by: &'a str,
    /// The body to keep (the final signatures and approvals, for the audit trail).
    pub body: &'a [u8],
    /// The summary to keep with it.
    pub summary: &'a [u8],
}

/// A storage failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Some (GUN, role, version) in the write already exists: another writer was first.
    #[error("{gun}: {role} version {version} already exists")]
    Conflict {
        /// The repository.
        gun: String,
        /// The role.
        role: String,
        /// The version that was taken.
        version: u64,
    },
    /// The proposal is no longer open, or was amended since the revision given: another
    /// writer was first. Nothing was written.
    #[error("{gun}: proposal {id} changed or is no longer open")]
    ProposalChanged {
        /// The repository.
        gun: String,
        /// The proposal.
        id: i64,
    },
    /// The database cannot be reached now (connection refused or lost, no pooled
    /// connection free in time, a statement timeout): worth retrying later. Never shown to
    /// clients, who get 503 with `Retry-After`.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The backend failed (IO, corruption, a refused statement). Never shown to clients.
    #[error("storage backend: {0}")]
    Backend(String),
}

/// Storage of metadata, changefeed and online keys. See the module documentation for the
/// guarantees every implementation gives.
pub trait Store: Send + Sync + 'static {
    /// The newest version of each role of `gun` (empty when the GUN has no trust data).
    fn current(&self, gun: &Gun) -> Result<Vec<StoredFile>, StoreError>;

    /// The newest version of one role.
    fn get_current(&self, gun: &Gun, role: &str) -> Result<Option<StoredFile>, StoreError>;

    /// A given version of a role.
    fn get_version(
        &self,
        gun: &Gun,
        role: &str,
        version: u64,
    ) -> Result<Option<StoredFile>, StoreError>;

    /// The version of a role whose bytes have this SHA-256 (lowercase hex).
    fn get_by_checksum(
        &self,
        gun: &Gun,
        role: &str,
        sha256: &str,
    ) -> Result<Option<StoredFile>, StoreError>;

    /// Stores `files` and one changefeed entry in one transaction, if the repository's
    /// current timestamp version is still `expected` (`None`: the repository has no
    /// timestamp yet).
    ///
    /// This is a compare-and-swap on the repository, not a check-then-insert: it holds for
    /// any number of writers on any number of hosts. Fails with [`StoreError::Conflict`],
    /// writing nothing, when the current timestamp version is not `expected` (another writer
    /// was first), when any (gun, role, version) already exists, or when a role already has
    /// a version newer than the one given. The changefeed entry records the `timestamp` file
    /// among `files` (version and SHA-256).
    fn publish(
        &self,
        gun: &Gun,
        expected: Option<u64>,
        files: &[NewFile],
        now: Timestamp,
    ) -> Result<i64, StoreError>;

    /// Deletes all metadata of `gun` and its proposals (its online keys stay, so a re-created
    /// repository can list the same server keys) and records a deletion in the changefeed.
    /// Returns false when there was no metadata to delete.
    fn delete(&self, gun: &Gun, now: Timestamp) -> Result<bool, StoreError>;

    /// Up to `limit` changefeed entries (of one GUN, or all) from `cursor` in `direction`.
    fn changes(
        &self,
        gun: Option<&Gun>,
        cursor: Option<i64>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError>;

    /// Stores a new open proposal for `gun` and returns its id (greater than every id
    /// before it).
    fn create_proposal(
        &self,
        gun: &Gun,
        proposal: &NewProposal,
        now: Timestamp,
    ) -> Result<i64, StoreError>;

    /// Up to `limit` proposals of `gun`, newest first, without their bodies (`body` is
    /// empty; `summary` is read): when `open_at` is given, only the open ones that have not
    /// expired at that time, else all of them.
    fn proposals(
        &self,
        gun: &Gun,
        open_at: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<StoredProposal>, StoreError>;

    /// Proposal `id` of `gun`, body and summary (`None` when there is none, or it belongs
    /// to another GUN).
    fn proposal(&self, gun: &Gun, id: i64) -> Result<Option<StoredProposal>, StoreError>;

    /// Replaces the body and summary of open proposal `id` if its revision is still
    /// `revision`, and bumps the revision. Otherwise (another writer amended or closed it
    /// first) nothing is written: [`StoreError::ProposalChanged`].
    fn amend_proposal(
        &self,
        gun: &Gun,
        id: i64,
        revision: u64,
        body: &[u8],
        summary: &[u8],
    ) -> Result<(), StoreError>;

    /// Marks open proposal `closing.id` withdrawn (keeping `closing.body` and
    /// `closing.summary`), if its revision
    /// is still `closing.revision`; else [`StoreError::ProposalChanged`], nothing written.
    fn close_proposal(
        &self,
        gun: &Gun,
        closing: Closing<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// [`Store::publish`] of `files`, and in the same transaction marks open proposal
    /// `closing.id` published by the changefeed entry it writes (keeping `closing.body` and
    /// `closing.summary`):
    /// both or neither. Fails, writing nothing, as `publish` does, or with
    /// [`StoreError::ProposalChanged`] when the proposal's revision is no longer
    /// `closing.revision` or it is no longer open.
    fn publish_proposal(
        &self,
        gun: &Gun,
        expected: Option<u64>,
        files: &[NewFile],
        closing: Closing<'_>,
        now: Timestamp,
    ) -> Result<i64, StoreError>;

    /// All online keys of (gun, role), oldest first.
    fn online_keys(&self, gun: &Gun, role: &str) -> Result<Vec<StoredKey>, StoreError>;

    /// Adds `key` as the newest online key of (gun, role) if the role's newest key is still
    /// the one with key id `after` (`None`: the role has no key yet), and returns it.
    /// Otherwise nothing is written and the current newest key is returned, so concurrent
    /// creations and rotations, on any number of hosts, agree on one key: a caller won when
    /// the returned key id is its own.
    fn add_online_key(
        &self,
        gun: &Gun,
        role: &str,
        key: &StoredKey,
        after: Option<&str>,
    ) -> Result<StoredKey, StoreError>;

    /// Replaces the sealed private part of every online key (current and retired, of every
    /// repository) with what `reseal(gun, role, keyid, sealed)` returns, in one transaction:
    /// when `reseal` fails for any key, nothing is changed. Returns how many keys there were.
    fn reseal_online_keys(&self, reseal: &mut Reseal<'_>) -> Result<usize, StoreError>;

    /// The oldest online key of any repository, with its GUN and role (`None` when there is
    /// no online key): what a server checks its key-encryption key against at start.
    fn sample_online_key(&self) -> Result<Option<(String, String, StoredKey)>, StoreError>;

    /// Checks the storage is reachable (for readiness probes).
    fn ping(&self) -> Result<(), StoreError>;

    /// Calls `visit` with every record of the store, in one read transaction (a consistent
    /// snapshot): all files ordered by (GUN, role, version), then the changefeed in id
    /// order, then the online keys ordered by (GUN, role) and the order they were added,
    /// then the proposals in id order.
    /// Stops at the first error `visit` returns. (`vouch-server migrate-store` copies a
    /// store with it.)
    fn export(&self, visit: &mut Visit<'_>) -> Result<(), StoreError>;

    /// Writes every record `records` yields, exactly (versions, checksums, times,
    /// changefeed and proposal ids kept; later ids continue after them), in one transaction, into a store that holds nothing yet: when
    /// the store is not empty, or `records` yields an error, or any record fails, nothing
    /// is written.
    fn import(
        &self,
        records: &mut dyn Iterator<Item = Result<Record, StoreError>>,
    ) -> Result<u64, StoreError>;
}

/// What [`Store::export`] calls for each record.
pub type Visit<'a> = dyn FnMut(Record) -> Result<(), StoreError> + 'a;

/// One record of a store's whole content (see [`Store::export`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// One stored version of one role.
    File {
        /// The repository.
        gun: String,
        /// The file.
        file: StoredFile,
    },
    /// One changefeed entry.
    Change(Change),
    /// One online key.
    Key {
        /// The repository.
        gun: String,
        /// The role.
        role: String,
        /// The key.
        key: StoredKey,
    },
    /// One proposal.
    Proposal(StoredProposal),
}

/// Lowercase hex SHA-256 of `bytes`: the checksum every backend stores beside a file.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// What [`Store::reseal_online_keys`] calls for each key: `(gun, role, keyid, sealed)` to the
/// new sealed bytes, or why the key cannot be re-sealed.
pub type Reseal<'a> = dyn FnMut(&str, &str, &str, &[u8]) -> Result<Vec<u8>, String> + 'a;
