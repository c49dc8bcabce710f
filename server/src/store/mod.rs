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
//!   [`Store::publish`] and the proposal's closing in one transaction;
//! - each changefeed entry records the (role, version) of every file its change stored
//!   ([`Change::roles`]), written in the same transaction as the files;
//! - a webhook subscription's delivery cursor ([`WebhookCursor`]) is advanced only by the
//!   process holding its delivery lease: taking the lease ([`Store::claim_webhook`]) and
//!   saving the cursor under it ([`Store::save_webhook`]) are each a compare-and-swap across
//!   hosts, so of several replicas one delivers at a time, and one whose lease was taken
//!   over writes nothing more. Cursors outlive the repositories whose changes they passed.
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
    /// When.
    pub created_at: Timestamp,
    /// The (role, version) of every file the change stored, sorted by role name: what a
    /// subscriber needs to tell which roles moved. Empty for a deletion, and for entries
    /// written before the store recorded it (schema step 3).
    pub roles: Vec<(String, u64)>,
}

/// The (role, version) of each of `files`, sorted by role name (then version): what
/// [`Change::roles`] records for a publish.
pub(crate) fn roles_of(files: &[NewFile]) -> Vec<(String, u64)> {
    let mut roles: Vec<(String, u64)> = files.iter().map(|f| (f.role.clone(), f.version)).collect();
    roles.sort();
    roles
}

/// How every backend stores [`Change::roles`] in the changefeed's `roles` column: a JSON
/// array of `[role, version]` pairs (`[["root",2],["targets",5]]`), unambiguous whatever a
/// role name contains; no roles is the empty text, which is also what entries written
/// before the column existed hold.
pub(crate) fn encode_roles(roles: &[(String, u64)]) -> String {
    if roles.is_empty() {
        return String::new();
    }
    // A list of strings and integers always serialises.
    serde_json::to_string(roles).unwrap_or_default()
}

/// Reads what [`encode_roles`] wrote (the empty text, or `[]`, is no roles); a value it
/// cannot have written (a corrupted row) is a [`StoreError::Backend`] naming `backend` and
/// the entry `id`.
pub(crate) fn decode_roles(
    backend: &str,
    id: i64,
    text: &str,
) -> Result<Vec<(String, u64)>, StoreError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(text).map_err(|e| {
        StoreError::Backend(format!(
            "{backend} read changefeed: entry {id} has unreadable roles {text:?}: {e}"
        ))
    })
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

/// The delivery state of one webhook subscription (by its configured name), shared by every
/// replica through the store. Its row is created by the first [`Store::claim_webhook`] and
/// changed only by [`Store::save_webhook`] under the lease, [`Store::claim_webhook`] and
/// [`Store::resume_webhook`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookCursor {
    /// The subscription's configured name.
    pub name: String,
    /// The id of the last changefeed entry delivered (or skipped as not matching);
    /// delivery continues after it.
    pub cursor: i64,
    /// Failed attempts at delivering the entry after `cursor` (0 after a success).
    pub attempts: u32,
    /// Not before this time is the next attempt made (`None`: now).
    pub next_attempt_at: Option<Timestamp>,
    /// Gave up after too many attempts: nothing is delivered until it is resumed
    /// ([`Store::resume_webhook`]).
    pub dead: bool,
    /// The last failure, for operators (short text, no secrets).
    pub last_error: Option<String>,
    /// When an entry was last delivered.
    pub last_delivered_at: Option<Timestamp>,
    /// The process holding the delivery lease (`None`: none, as in an imported record
    /// that carried none).
    pub lease_owner: Option<String>,
    /// Until when `lease_owner` holds the lease.
    pub lease_until: Option<Timestamp>,
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

    /// Takes (or renews) the delivery lease of webhook subscription `name` for `owner`
    /// until `until`, creating the subscription's row with `cursor = start` (no attempts,
    /// not dead) when it has none. Returns the state, which `owner` now holds the lease
    /// of; `None`, writing nothing, when another owner holds a lease not yet expired at
    /// `now` (a lease is expired at `lease_until` and after).
    ///
    /// A compare-and-swap in one statement: of any number of processes on any number of
    /// hosts claiming at once, at most one gets a lease that is live, and an owner renewing
    /// its own lease always succeeds (however long ago it expired, unless another owner
    /// took it over meanwhile). `start` matters only when the row is created.
    fn claim_webhook(
        &self,
        name: &str,
        owner: &str,
        start: i64,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<WebhookCursor>, StoreError>;

    /// Writes `state`'s `cursor`, `attempts`, `next_attempt_at`, `dead`, `last_error` and
    /// `last_delivered_at` for subscription `state.name`, only when `owner` still holds its
    /// lease (its `lease_owner` is `owner`, whatever `lease_until` is: renewing is
    /// [`Store::claim_webhook`]'s job). Returns false, writing nothing, when it does not:
    /// the lease was taken over (or the row does not exist), and the caller stops
    /// delivering. `state`'s lease fields are not written.
    ///
    /// A compare-and-swap in one statement, across hosts. It writes the caller's whole
    /// state: a [`Store::resume_webhook`] between the caller's last claim and this save is
    /// overwritten (the operator finds the subscription still dead and resumes it again),
    /// so a deliverer claims, re-reading the state, before each attempt.
    fn save_webhook(&self, owner: &str, state: &WebhookCursor) -> Result<bool, StoreError>;

    /// Every webhook subscription's state, ordered by name.
    fn webhook_cursors(&self) -> Result<Vec<WebhookCursor>, StoreError>;

    /// Clears `dead`, `attempts` and `next_attempt_at` of subscription `name` (an operator
    /// resuming a dead subscription; its cursor, last error and lease stay); false when
    /// there is no such row. One statement.
    fn resume_webhook(&self, name: &str) -> Result<bool, StoreError>;

    /// Calls `visit` with every record of the store, in one read transaction (a consistent
    /// snapshot): all files ordered by (GUN, role, version), then the changefeed in id
    /// order, then the online keys ordered by (GUN, role) and the order they were added,
    /// then the proposals in id order, then the webhook cursors by name.
    /// Stops at the first error `visit` returns. (`vouch-server migrate-store` copies a
    /// store with it.)
    fn export(&self, visit: &mut Visit<'_>) -> Result<(), StoreError>;

    /// Writes every record `records` yields, exactly (versions, checksums, times,
    /// changefeed and proposal ids kept, later ids continuing after them; webhook cursors
    /// with their leases), in one transaction, into a store that holds nothing yet: when
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
    /// One webhook subscription's delivery state.
    WebhookCursor(WebhookCursor),
}

/// Lowercase hex SHA-256 of `bytes`: the checksum every backend stores beside a file.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// What [`Store::reseal_online_keys`] calls for each key: `(gun, role, keyid, sealed)` to the
/// new sealed bytes, or why the key cannot be re-sealed.
pub type Reseal<'a> = dyn FnMut(&str, &str, &str, &[u8]) -> Result<Vec<u8>, String> + 'a;

#[cfg(test)]
mod tests {
    //! The changefeed's roles encoding, shared by both backends; what they store with it is
    //! tested on both by `server/tests/store_contract.rs`.

    use super::*;

    #[test]
    fn roles_round_trip_whatever_their_names_contain() {
        let roles = vec![
            ("root".to_owned(), 2),
            ("targets".to_owned(), 5),
            (r#"targets/a@b,c"d\e],["x",1"#.to_owned(), u64::MAX),
        ];
        let text = encode_roles(&roles);
        assert_eq!(decode_roles("test", 1, &text).expect("decode"), roles);
        assert_eq!(
            encode_roles(&roles[..2]),
            r#"[["root",2],["targets",5]]"#,
            "the documented form"
        );
    }

    #[test]
    fn no_roles_is_the_empty_text_the_column_defaults_to() {
        assert_eq!(encode_roles(&[]), "");
        for none in ["", "[]"] {
            assert_eq!(decode_roles("test", 1, none).expect("decode"), vec![]);
        }
    }

    #[test]
    fn damaged_roles_are_a_backend_error_naming_the_entry() {
        for damaged in [r#"[["root","#, r#"[["root",-1]]"#, "null", r#"[["root"]]"#] {
            let err = decode_roles("test", 42, damaged).expect_err(damaged);
            assert!(
                matches!(&err, StoreError::Backend(m) if m.contains("entry 42")),
                "{err}"
            );
        }
    }

    #[test]
    fn roles_of_sorts_by_role_name() {
        let file = |role: &str, version| NewFile {
            role: role.to_owned(),
            version,
            bytes: Vec::new(),
        };
        assert_eq!(
            roles_of(&[file("timestamp", 3), file("targets/x", 1), file("root", 2)]),
            vec![
                ("root".to_owned(), 2),
                ("targets/x".to_owned(), 1),
                ("timestamp".to_owned(), 3)
            ]
        );
    }
}
