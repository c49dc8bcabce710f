//! [`PostgresStore`]: the [`Store`] on one PostgreSQL database, shared by any number of
//! server replicas.
//!
//! Every operation is one transaction on a pooled connection ([`pool`]), opened with
//! `BEGIN` and a `SET LOCAL statement_timeout`, and its statements are sent unnamed
//! (`query_typed`): no session state outlives a transaction, so the server works through
//! PgBouncer in transaction mode.
//!
//! How the cross-replica guarantees of [`Store`] are kept:
//! - **publish is a compare-and-swap**: each repository has a row in `repositories` holding
//!   its current timestamp version. A publish locks that row (`INSERT ... ON CONFLICT DO
//!   UPDATE ... RETURNING`, which takes the row lock), compares the version with the one the
//!   publisher validated against, and updates it in the same transaction; a second writer
//!   waits for the lock, then sees the new version and gets [`StoreError::Conflict`];
//! - **online keys**: adding one takes the same row lock, then compares the role's newest
//!   key with the one the caller saw;
//! - **changefeed ids in visibility order**: ids come from one counter row
//!   (`changefeed_last`), incremented as the last statement before `COMMIT`. Its row lock is
//!   held until the transaction is visible, so the next id is taken only after the previous
//!   entry can be read: a reader that saw id N can never later see a new id below N, which
//!   a sequence alone would not give. The price is that publishes commit one at a time;
//!   the lock is held only for the last statement and the commit;
//! - **proposals**: amending or withdrawing one is a single `UPDATE ... WHERE state = 'open'
//!   AND revision = $n`; a concurrent writer of the same row waits for its lock, then
//!   re-reads the row and matches nothing. Publishing one takes the repository's row lock,
//!   then the proposal's (`FOR UPDATE`), and marks it published in the statement that appends
//!   the changefeed entry, which so stays the last;
//! - **webhook delivery leases**: claiming one is a single `INSERT ... ON CONFLICT DO UPDATE
//!   ... WHERE` the lease is free, expired or the claimer's own: a concurrent claim waits for
//!   the row lock, then re-checks the condition against the row the first one wrote, so at
//!   most one of them gets it. Saving a cursor is a single `UPDATE ... WHERE lease_owner =
//!   $n`, which so writes nothing once another owner took the lease over.
//!
//! The schema carries its version in `vouch_schema`; [`PostgresStore::open`] applies the
//! missing steps in one transaction under an advisory lock, so replicas starting at once
//! migrate once, and refuses a database written by a newer schema.

mod options;
mod pool;
mod tls;

pub use options::{is_postgres_url, redact, PgOptions, TlsMode};

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::Type;
use postgres::{Client, Row, Transaction};
use vouch_tuf::reference::Gun;
use vouch_tuf::time::Timestamp;

use self::pool::{Failure, Pool};
use super::{
    Change, ChangeCategory, Closing, Direction, NewFile, NewProposal, ProposalState, Record,
    Reseal, Store, StoreError, StoredFile, StoredKey, StoredProposal, Visit, WebhookCursor,
};

/// The advisory lock key that serialises schema migrations (any constant unlikely to be
/// used by another application on the same database: "vouch" in ASCII).
const MIGRATION_LOCK: i64 = 0x0076_6f75_6368;

/// Schema steps: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`. Append new
/// steps; never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the initial schema.
    "CREATE TABLE tuf_files (
         gun        TEXT   NOT NULL,
         role       TEXT   NOT NULL,
         version    BIGINT NOT NULL CHECK (version >= 0),
         sha256     TEXT   NOT NULL,
         data       BYTEA  NOT NULL,
         created_at BIGINT NOT NULL,
         PRIMARY KEY (gun, role, version)
     );
     CREATE INDEX tuf_files_by_checksum ON tuf_files (gun, role, sha256);

     CREATE TABLE repositories (
         gun               TEXT PRIMARY KEY,
         timestamp_version BIGINT
     );

     CREATE TABLE changefeed (
         id         BIGINT PRIMARY KEY,
         gun        TEXT   NOT NULL,
         version    BIGINT NOT NULL CHECK (version >= 0),
         sha256     TEXT   NOT NULL,
         category   TEXT   NOT NULL CHECK (category IN ('update', 'deletion')),
         created_at BIGINT NOT NULL
     );
     CREATE INDEX changefeed_by_gun ON changefeed (gun, id);

     CREATE TABLE changefeed_last (
         one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
         id  BIGINT NOT NULL
     );
     INSERT INTO changefeed_last (one, id) VALUES (TRUE, 0);

     CREATE TABLE online_keys (
         seq            BIGSERIAL PRIMARY KEY,
         gun            TEXT   NOT NULL,
         role           TEXT   NOT NULL,
         keyid          TEXT   NOT NULL,
         public         TEXT   NOT NULL,
         sealed_private BYTEA  NOT NULL,
         created_at     BIGINT NOT NULL,
         UNIQUE (gun, role, keyid)
     );
     CREATE INDEX online_keys_by_role ON online_keys (gun, role, seq);",
    // 1 -> 2: staged proposals.
    "CREATE TABLE proposals (
         id          BIGSERIAL PRIMARY KEY,
         gun         TEXT   NOT NULL,
         state       TEXT   NOT NULL CHECK (state IN ('open', 'published', 'withdrawn')),
         change_id   BIGINT,
         revision    BIGINT NOT NULL CHECK (revision >= 0),
         body        BYTEA  NOT NULL,
         summary     BYTEA  NOT NULL,
         proposed_by TEXT   NOT NULL,
         created_at  BIGINT NOT NULL,
         expires_at  BIGINT NOT NULL,
         closed_at   BIGINT,
         closed_by   TEXT,
         CHECK ((state = 'published') = (change_id IS NOT NULL)),
         CHECK ((state = 'open') = (closed_at IS NULL)),
         CHECK ((state = 'open') = (closed_by IS NULL))
     );
     CREATE INDEX proposals_by_gun ON proposals (gun, id);",
    // 2 -> 3: the roles each changefeed entry wrote (`Change::roles`, as JSON; older
    // entries keep the empty text: none recorded), and webhook delivery cursors, which are
    // kept by subscription name, not by repository, so deleting one leaves them.
    "ALTER TABLE changefeed ADD COLUMN roles TEXT NOT NULL DEFAULT '';

     CREATE TABLE webhook_cursors (
         name              TEXT    PRIMARY KEY,
         cursor            BIGINT  NOT NULL,
         attempts          BIGINT  NOT NULL CHECK (attempts BETWEEN 0 AND 4294967295),
         next_attempt_at   BIGINT,
         dead              BOOLEAN NOT NULL,
         last_error        TEXT,
         last_delivered_at BIGINT,
         lease_owner       TEXT,
         lease_until       BIGINT
     );",
];

/// The columns [`change`] reads, in its order (a macro, for `concat!`).
macro_rules! change_columns {
    () => {
        "id, gun, version, sha256, category, created_at, roles"
    };
}

/// The columns [`webhook_cursor`] reads, in its order (a macro, for `concat!`).
macro_rules! webhook_columns {
    () => {
        "name, cursor, attempts, next_attempt_at, dead, last_error, last_delivered_at, \
         lease_owner, lease_until"
    };
}

/// The columns [`stored_proposal`] reads, in its order (a macro, for `concat!`): with
/// `body` the whole row, with `no body` an empty value in the body's place, so a list does
/// not read the bodies.
macro_rules! proposal_columns {
    (body) => {
        "id, gun, state, change_id, revision, body, summary, proposed_by, created_at, \
         expires_at, closed_at, closed_by"
    };
    (no body) => {
        "id, gun, state, change_id, revision, ''::BYTEA, summary, proposed_by, created_at, \
         expires_at, closed_at, closed_by"
    };
}

/// The newest version of each role of GUN `$1`: a skip scan over the primary key, one index
/// descent per role, however many versions are kept.
const CURRENT_SQL: &str = "
    WITH RECURSIVE roles(role) AS (
        (SELECT role FROM tuf_files WHERE gun = $1 ORDER BY role LIMIT 1)
        UNION ALL
        SELECT (SELECT t.role FROM tuf_files t WHERE t.gun = $1 AND t.role > roles.role
                ORDER BY t.role LIMIT 1)
        FROM roles WHERE roles.role IS NOT NULL
    )
    SELECT f.role, f.version, f.sha256, f.data, f.created_at
    FROM roles CROSS JOIN LATERAL (
        SELECT role, version, sha256, data, created_at FROM tuf_files
        WHERE gun = $1 AND role = roles.role ORDER BY version DESC LIMIT 1
    ) f
    ORDER BY f.role";

/// The [`Store`] on PostgreSQL. See the module documentation.
pub struct PostgresStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.pool.options().redacted)
            .finish_non_exhaustive()
    }
}

/// What a transaction does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Reads (each statement sees what was committed when it started).
    Read,
    /// Reads with one snapshot for all its statements.
    Snapshot,
    /// Writes.
    Write,
}

impl PostgresStore {
    /// Connects with `options`, creating or migrating the schema. Fails when the database
    /// cannot be reached, refuses the credentials, or was written by a newer schema.
    pub fn open(options: PgOptions) -> Result<Self, StoreError> {
        let pool = Pool::new(options).map_err(StoreError::Backend)?;
        let store = PostgresStore { pool };
        store.migrate()?;
        Ok(store)
    }

    /// The URL this store connects to, its password hidden.
    pub fn redacted_url(&self) -> &str {
        &self.pool.options().redacted
    }

    /// Runs `f` in one transaction (`access` decides `READ ONLY`), committing when it
    /// returns `Ok`; anything else rolls back.
    fn transaction<T>(
        &self,
        op: &str,
        access: Access,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let timeout_ms = self.pool.options().statement_timeout.as_millis().max(1);
        self.pool.with(op, |client: &mut Client| {
            let mut builder = client
                .build_transaction()
                .read_only(access != Access::Write);
            if access == Access::Snapshot {
                builder = builder.isolation_level(postgres::IsolationLevel::RepeatableRead);
            }
            let mut tx = builder.start()?;
            tx.batch_execute(&format!("SET LOCAL statement_timeout = {timeout_ms}"))?;
            let value = f(&mut tx)?;
            tx.commit()?;
            Ok(value)
        })
    }

    fn migrate(&self) -> Result<(), StoreError> {
        const OP: &str = "migrate schema";
        let target = MIGRATIONS.len() as i32;
        self.transaction(OP, Access::Write, |tx| {
            tx.query_typed(
                "SELECT pg_advisory_xact_lock($1)",
                &[(&MIGRATION_LOCK, Type::INT8)],
            )?;
            // Looked up first, so that a role without CREATE can run a migrated schema.
            let exists: bool = tx
                .query_typed_one(
                    "SELECT to_regclass('vouch_schema') IS NOT NULL",
                    &[],
                )?
                .get(0);
            let found: i32 = if exists {
                tx.query_typed_opt("SELECT version FROM vouch_schema", &[])?
                    .map_or(0, |row| row.get(0))
            } else {
                0
            };
            if found == target {
                return Ok(());
            }
            if !exists {
                tx.batch_execute(
                    "CREATE TABLE vouch_schema (
                         one     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
                         version INTEGER NOT NULL
                     )",
                )?;
            }
            if found == target {
                return Ok(());
            }
            let start = usize::try_from(found)
                .ok()
                .filter(|&s| s < MIGRATIONS.len())
                .ok_or_else(|| {
                    StoreError::Backend(format!(
                        "postgres {OP}: database schema version {found} is not one this server knows (newest {target})"
                    ))
                })?;
            for step in &MIGRATIONS[start..] {
                tx.batch_execute(step)?;
            }
            tx.query_typed(
                "INSERT INTO vouch_schema (one, version) VALUES (TRUE, $1)
                 ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version",
                &[(&target, Type::INT4)],
            )?;
            Ok(())
        })
    }

    /// Takes the row lock of `gun`'s `repositories` row (creating the row), returning the
    /// current timestamp version it records.
    fn lock_repository(tx: &mut Transaction<'_>, gun: &Gun) -> Result<Option<i64>, Failure> {
        let row = tx.query_typed_one(
            "INSERT INTO repositories (gun) VALUES ($1)
             ON CONFLICT (gun) DO UPDATE SET gun = EXCLUDED.gun
             RETURNING timestamp_version",
            &[(&gun.as_str(), Type::TEXT)],
        )?;
        Ok(row.get(0))
    }

    /// Takes the row lock of proposal `closing.id` of `gun` and tells whether it is open at
    /// revision `closing.revision`.
    fn lock_proposal(
        tx: &mut Transaction<'_>,
        gun: &Gun,
        closing: &Closing<'_>,
    ) -> Result<bool, Failure> {
        let Ok(revision) = i64::try_from(closing.revision) else {
            return Ok(false); // never stored
        };
        let row = tx.query_typed_opt(
            "SELECT state = 'open' AND revision = $3 FROM proposals
             WHERE id = $1 AND gun = $2 FOR UPDATE",
            &[
                (&closing.id, Type::INT8),
                (&gun.as_str(), Type::TEXT),
                (&revision, Type::INT8),
            ],
        )?;
        Ok(row.is_some_and(|row| row.get(0)))
    }

    /// [`Store::publish`], and with `closing` [`Store::publish_proposal`], inside `tx`: the
    /// compare-and-swap, the files, the changefeed entry, and the proposal marked published
    /// by it. `op` names the operation in errors.
    fn publish_files(
        tx: &mut Transaction<'_>,
        op: &str,
        gun: &Gun,
        expected: Option<u64>,
        files: &[NewFile],
        closing: Option<&Closing<'_>>,
        now: Timestamp,
    ) -> Result<i64, Failure> {
        let current = Self::lock_repository(tx, gun)?;
        if current.map(|v| v as u64) != expected {
            return Err(StoreError::Conflict {
                gun: gun.as_str().to_owned(),
                role: "timestamp".into(),
                version: current.map_or(0, |v| v as u64),
            }
            .into());
        }
        // Locked after the repository, as everywhere, and checked before anything is
        // written; marked published with the changefeed entry.
        if let Some(closing) = closing {
            if !Self::lock_proposal(tx, gun, closing)? {
                return Err(StoreError::ProposalChanged {
                    gun: gun.as_str().to_owned(),
                    id: closing.id,
                }
                .into());
            }
        }
        let (mut ts_version, mut ts_sha256) = (None, String::new());
        for file in files {
            let version = i64::try_from(file.version).map_err(|_| {
                StoreError::Backend(format!(
                    "postgres {op}: {} version {} is out of range",
                    file.role, file.version
                ))
            })?;
            let sha256 = super::sha256_hex(&file.bytes);
            // Written only when no version of the role is this one or newer; the
            // repository's row lock keeps that true until commit.
            let written = tx.execute_typed(
                "INSERT INTO tuf_files (gun, role, version, sha256, data, created_at)
                 SELECT $1, $2, $3, $4, $5, $6
                 WHERE NOT EXISTS (SELECT 1 FROM tuf_files
                                   WHERE gun = $1 AND role = $2 AND version >= $3)",
                &[
                    (&gun.as_str(), Type::TEXT),
                    (&file.role.as_str(), Type::TEXT),
                    (&version, Type::INT8),
                    (&sha256.as_str(), Type::TEXT),
                    (&file.bytes.as_slice(), Type::BYTEA),
                    (&now.unix(), Type::INT8),
                ],
            )?;
            if written == 0 {
                return Err(StoreError::Conflict {
                    gun: gun.as_str().to_owned(),
                    role: file.role.clone(),
                    version: file.version,
                }
                .into());
            }
            if file.role == "timestamp" {
                (ts_version, ts_sha256) = (Some(version), sha256);
            }
        }
        if let Some(v) = ts_version {
            tx.query_typed(
                "UPDATE repositories SET timestamp_version = $2 WHERE gun = $1",
                &[(&gun.as_str(), Type::TEXT), (&v, Type::INT8)],
            )?;
        }
        Self::append_change_closing(
            tx,
            gun,
            (ts_version.unwrap_or(0), &ts_sha256),
            ChangeCategory::Update,
            &super::roles_of(files),
            closing,
            now,
        )
    }

    /// Appends a changefeed entry without roles (the last statement before commit: see the
    /// module documentation) and returns its id.
    fn append_change(
        tx: &mut Transaction<'_>,
        gun: &Gun,
        version: i64,
        sha256: &str,
        category: ChangeCategory,
        now: Timestamp,
    ) -> Result<i64, Failure> {
        Self::append_change_closing(tx, gun, (version, sha256), category, &[], None, now)
    }

    /// [`Self::append_change`] of the timestamp `(version, sha256)`, recording `roles`, and
    /// with `closing` marks that open proposal published by the entry in the same
    /// statement, so the changefeed counter stays the last one taken; fails with
    /// [`StoreError::ProposalChanged`] (the caller rolls back) unless the proposal is open
    /// at `closing.revision`.
    fn append_change_closing(
        tx: &mut Transaction<'_>,
        gun: &Gun,
        (version, sha256): (i64, &str),
        category: ChangeCategory,
        roles: &[(String, u64)],
        closing: Option<&Closing<'_>>,
        now: Timestamp,
    ) -> Result<i64, Failure> {
        let roles = super::encode_roles(roles);
        if let Some(closing) = closing {
            let changed = || StoreError::ProposalChanged {
                gun: gun.as_str().to_owned(),
                id: closing.id,
            };
            let revision = i64::try_from(closing.revision).map_err(|_| changed())?;
            let row = tx.query_typed_opt(
                "WITH next AS (UPDATE changefeed_last SET id = id + 1 RETURNING id),
                 entry AS (
                     INSERT INTO changefeed (id, gun, version, sha256, category, created_at,
                         roles)
                     SELECT next.id, $1, $2, $3, $4, $5, $11 FROM next
                     RETURNING id
                 )
                 UPDATE proposals
                 SET state = 'published', change_id = entry.id, body = $6, summary = $7,
                     closed_by = $8, closed_at = $5
                 FROM entry
                 WHERE proposals.id = $9 AND proposals.gun = $1
                     AND proposals.state = 'open' AND proposals.revision = $10
                 RETURNING entry.id",
                &[
                    (&gun.as_str(), Type::TEXT),
                    (&version, Type::INT8),
                    (&sha256, Type::TEXT),
                    (&category.as_str(), Type::TEXT),
                    (&now.unix(), Type::INT8),
                    (&closing.body, Type::BYTEA),
                    (&closing.summary, Type::BYTEA),
                    (&closing.by, Type::TEXT),
                    (&closing.id, Type::INT8),
                    (&revision, Type::INT8),
                    (&roles.as_str(), Type::TEXT),
                ],
            )?;
            return row.map(|row| row.get(0)).ok_or_else(|| changed().into());
        }
        let row = tx.query_typed_one(
            "WITH next AS (UPDATE changefeed_last SET id = id + 1 RETURNING id)
             INSERT INTO changefeed (id, gun, version, sha256, category, created_at, roles)
             SELECT next.id, $1, $2, $3, $4, $5, $6 FROM next
             RETURNING id",
            &[
                (&gun.as_str(), Type::TEXT),
                (&version, Type::INT8),
                (&sha256, Type::TEXT),
                (&category.as_str(), Type::TEXT),
                (&now.unix(), Type::INT8),
                (&roles.as_str(), Type::TEXT),
            ],
        )?;
        Ok(row.get(0))
    }
}

fn insert_key(
    tx: &mut Transaction<'_>,
    gun: &Gun,
    role: &str,
    key: &StoredKey,
) -> Result<(), Failure> {
    tx.query_typed(
        "INSERT INTO online_keys (gun, role, keyid, public, sealed_private, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            (&gun.as_str(), Type::TEXT),
            (&role, Type::TEXT),
            (&key.keyid.as_str(), Type::TEXT),
            (&key.public.as_str(), Type::TEXT),
            (&key.sealed_private.as_slice(), Type::BYTEA),
            (&key.created_at.unix(), Type::INT8),
        ],
    )?;
    Ok(())
}

impl Store for PostgresStore {
    fn create_proposal(
        &self,
        gun: &Gun,
        proposal: &NewProposal,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        self.transaction("create proposal", Access::Write, |tx| {
            let row = tx.query_typed_one(
                "INSERT INTO proposals
                     (gun, state, revision, body, summary, proposed_by, created_at, expires_at)
                 VALUES ($1, 'open', 0, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    (&gun.as_str(), Type::TEXT),
                    (&proposal.body.as_slice(), Type::BYTEA),
                    (&proposal.summary.as_slice(), Type::BYTEA),
                    (&proposal.proposed_by.as_str(), Type::TEXT),
                    (&now.unix(), Type::INT8),
                    (&proposal.expires_at.unix(), Type::INT8),
                ],
            )?;
            Ok(row.get(0))
        })
    }

    fn proposals(
        &self,
        gun: &Gun,
        open_at: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<StoredProposal>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let open_at = open_at.map(Timestamp::unix);
        self.transaction("read proposals", Access::Read, |tx| {
            let rows = tx.query_typed(
                concat!(
                    "SELECT ",
                    proposal_columns!(no body),
                    " FROM proposals
                     WHERE gun = $1
                         AND ($3::BIGINT IS NULL OR (state = 'open' AND expires_at > $3))
                     ORDER BY id DESC LIMIT $2"
                ),
                &[
                    (&gun.as_str(), Type::TEXT),
                    (&limit, Type::INT8),
                    (&open_at, Type::INT8),
                ],
            )?;
            rows.iter().map(stored_proposal).collect()
        })
    }

    fn proposal(&self, gun: &Gun, id: i64) -> Result<Option<StoredProposal>, StoreError> {
        self.transaction("read proposal", Access::Read, |tx| {
            tx.query_typed_opt(
                concat!(
                    "SELECT ",
                    proposal_columns!(body),
                    " FROM proposals WHERE gun = $1 AND id = $2"
                ),
                &[(&gun.as_str(), Type::TEXT), (&id, Type::INT8)],
            )?
            .as_ref()
            .map(stored_proposal)
            .transpose()
        })
    }

    fn amend_proposal(
        &self,
        gun: &Gun,
        id: i64,
        revision: u64,
        body: &[u8],
        summary: &[u8],
    ) -> Result<(), StoreError> {
        let changed = || StoreError::ProposalChanged {
            gun: gun.as_str().to_owned(),
            id,
        };
        // A revision beyond the column's range was never stored.
        let revision = i64::try_from(revision).map_err(|_| changed())?;
        self.transaction("amend proposal", Access::Write, |tx| {
            // A concurrent amendment holds the row until it commits; this one then re-reads
            // the row and finds the revision moved on.
            let amended = tx.execute_typed(
                "UPDATE proposals SET body = $1, summary = $2, revision = revision + 1
                 WHERE id = $3 AND gun = $4 AND state = 'open' AND revision = $5",
                &[
                    (&body, Type::BYTEA),
                    (&summary, Type::BYTEA),
                    (&id, Type::INT8),
                    (&gun.as_str(), Type::TEXT),
                    (&revision, Type::INT8),
                ],
            )?;
            if amended == 1 {
                Ok(())
            } else {
                Err(changed().into())
            }
        })
    }

    fn close_proposal(
        &self,
        gun: &Gun,
        closing: Closing<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let changed = || StoreError::ProposalChanged {
            gun: gun.as_str().to_owned(),
            id: closing.id,
        };
        let revision = i64::try_from(closing.revision).map_err(|_| changed())?;
        self.transaction("withdraw proposal", Access::Write, |tx| {
            let closed = tx.execute_typed(
                "UPDATE proposals
                 SET state = 'withdrawn', body = $1, summary = $2, closed_by = $3,
                     closed_at = $4
                 WHERE id = $5 AND gun = $6 AND state = 'open' AND revision = $7",
                &[
                    (&closing.body, Type::BYTEA),
                    (&closing.summary, Type::BYTEA),
                    (&closing.by, Type::TEXT),
                    (&now.unix(), Type::INT8),
                    (&closing.id, Type::INT8),
                    (&gun.as_str(), Type::TEXT),
                    (&revision, Type::INT8),
                ],
            )?;
            if closed == 1 {
                Ok(())
            } else {
                Err(changed().into())
            }
        })
    }

    fn publish_proposal(
        &self,
        gun: &Gun,
        expected: Option<u64>,
        files: &[NewFile],
        closing: Closing<'_>,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        const OP: &str = "publish proposal";
        self.transaction(OP, Access::Write, |tx| {
            Self::publish_files(tx, OP, gun, expected, files, Some(&closing), now)
        })
    }

    fn current(&self, gun: &Gun) -> Result<Vec<StoredFile>, StoreError> {
        self.transaction("read current metadata", Access::Read, |tx| {
            let rows = tx.query_typed(CURRENT_SQL, &[(&gun.as_str(), Type::TEXT)])?;
            rows.iter().map(stored_file).collect()
        })
    }

    fn get_current(&self, gun: &Gun, role: &str) -> Result<Option<StoredFile>, StoreError> {
        self.transaction("read current role", Access::Read, |tx| {
            tx.query_typed_opt(
                "SELECT role, version, sha256, data, created_at FROM tuf_files
                 WHERE gun = $1 AND role = $2 ORDER BY version DESC LIMIT 1",
                &[(&gun.as_str(), Type::TEXT), (&role, Type::TEXT)],
            )?
            .as_ref()
            .map(stored_file)
            .transpose()
        })
    }

    fn get_version(
        &self,
        gun: &Gun,
        role: &str,
        version: u64,
    ) -> Result<Option<StoredFile>, StoreError> {
        let Ok(version) = i64::try_from(version) else {
            return Ok(None); // never stored: publish refuses such versions
        };
        self.transaction("read role version", Access::Read, |tx| {
            tx.query_typed_opt(
                "SELECT role, version, sha256, data, created_at FROM tuf_files
                 WHERE gun = $1 AND role = $2 AND version = $3",
                &[
                    (&gun.as_str(), Type::TEXT),
                    (&role, Type::TEXT),
                    (&version, Type::INT8),
                ],
            )?
            .as_ref()
            .map(stored_file)
            .transpose()
        })
    }

    fn get_by_checksum(
        &self,
        gun: &Gun,
        role: &str,
        sha256: &str,
    ) -> Result<Option<StoredFile>, StoreError> {
        let sha256 = sha256.to_ascii_lowercase();
        self.transaction("read role by checksum", Access::Read, |tx| {
            tx.query_typed_opt(
                "SELECT role, version, sha256, data, created_at FROM tuf_files
                 WHERE gun = $1 AND role = $2 AND sha256 = $3
                 ORDER BY version DESC LIMIT 1",
                &[
                    (&gun.as_str(), Type::TEXT),
                    (&role, Type::TEXT),
                    (&sha256.as_str(), Type::TEXT),
                ],
            )?
            .as_ref()
            .map(stored_file)
            .transpose()
        })
    }

    fn publish(
        &self,
        gun: &Gun,
        expected: Option<u64>,
        files: &[NewFile],
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        const OP: &str = "publish";
        self.transaction(OP, Access::Write, |tx| {
            Self::publish_files(tx, OP, gun, expected, files, None, now)
        })
    }

    fn delete(&self, gun: &Gun, now: Timestamp) -> Result<bool, StoreError> {
        self.transaction("delete", Access::Write, |tx| {
            Self::lock_repository(tx, gun)?;
            let deleted = tx.execute_typed(
                "DELETE FROM tuf_files WHERE gun = $1",
                &[(&gun.as_str(), Type::TEXT)],
            )?;
            tx.query_typed(
                "UPDATE repositories SET timestamp_version = NULL WHERE gun = $1",
                &[(&gun.as_str(), Type::TEXT)],
            )?;
            tx.query_typed(
                "DELETE FROM proposals WHERE gun = $1",
                &[(&gun.as_str(), Type::TEXT)],
            )?;
            if deleted == 0 {
                return Ok(false);
            }
            Self::append_change(tx, gun, 0, "", ChangeCategory::Deletion, now)?;
            Ok(true)
        })
    }

    fn changes(
        &self,
        gun: Option<&Gun>,
        cursor: Option<i64>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Unnamed statements are planned with their parameters' values, so the NULL tests
        // fold away and each shape uses the index it needs.
        let sql = match direction {
            Direction::Forward => concat!(
                "SELECT ",
                change_columns!(),
                " FROM changefeed
                 WHERE ($2::BIGINT IS NULL OR id > $2) AND ($3::TEXT IS NULL OR gun = $3)
                 ORDER BY id ASC LIMIT $1"
            ),
            Direction::Backward => concat!(
                "SELECT ",
                change_columns!(),
                " FROM changefeed
                 WHERE ($2::BIGINT IS NULL OR id < $2) AND ($3::TEXT IS NULL OR gun = $3)
                 ORDER BY id DESC LIMIT $1"
            ),
        };
        let gun = gun.map(Gun::as_str);
        self.transaction("read changefeed", Access::Read, |tx| {
            let rows = tx.query_typed(
                sql,
                &[
                    (&limit, Type::INT8),
                    (&cursor, Type::INT8),
                    (&gun, Type::TEXT),
                ],
            )?;
            rows.iter().map(change).collect()
        })
    }

    fn online_keys(&self, gun: &Gun, role: &str) -> Result<Vec<StoredKey>, StoreError> {
        self.transaction("read online keys", Access::Read, |tx| {
            let rows = tx.query_typed(
                "SELECT keyid, public, sealed_private, created_at FROM online_keys
                 WHERE gun = $1 AND role = $2 ORDER BY seq ASC",
                &[(&gun.as_str(), Type::TEXT), (&role, Type::TEXT)],
            )?;
            Ok(rows.iter().map(stored_key).collect())
        })
    }

    fn add_online_key(
        &self,
        gun: &Gun,
        role: &str,
        key: &StoredKey,
        after: Option<&str>,
    ) -> Result<StoredKey, StoreError> {
        const OP: &str = "add online key";
        self.transaction(OP, Access::Write, |tx| {
            Self::lock_repository(tx, gun)?;
            let newest = tx
                .query_typed_opt(
                    "SELECT keyid, public, sealed_private, created_at FROM online_keys
                     WHERE gun = $1 AND role = $2 ORDER BY seq DESC LIMIT 1",
                    &[(&gun.as_str(), Type::TEXT), (&role, Type::TEXT)],
                )?
                .as_ref()
                .map(stored_key);
            match (newest, after) {
                (Some(newest), _) if after != Some(newest.keyid.as_str()) => return Ok(newest),
                (None, Some(_)) => {
                    return Err(StoreError::Backend(format!(
                        "postgres {OP}: {gun} {role} has no online key to rotate"
                    ))
                    .into())
                }
                _ => {}
            }
            insert_key(tx, gun, role, key).map_err(|f| match f {
                Failure::Database(e)
                    if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) =>
                {
                    StoreError::Backend(format!(
                        "postgres {OP}: key {} is already stored for {gun} {role}",
                        key.keyid
                    ))
                    .into()
                }
                other => other,
            })?;
            Ok(key.clone())
        })
    }

    fn reseal_online_keys(&self, reseal: &mut Reseal<'_>) -> Result<usize, StoreError> {
        self.transaction("re-seal online keys", Access::Write, |tx| {
            let rows = tx.query_typed(
                "SELECT seq, gun, role, keyid, sealed_private FROM online_keys
                 ORDER BY seq FOR UPDATE",
                &[],
            )?;
            for row in &rows {
                let seq: i64 = row.get(0);
                let (gun, role, keyid): (String, String, String) =
                    (row.get(1), row.get(2), row.get(3));
                let sealed: Vec<u8> = row.get(4);
                // An error returns early: the transaction rolls back and no key changes.
                let resealed = reseal(&gun, &role, &keyid, &sealed).map_err(StoreError::Backend)?;
                tx.query_typed(
                    "UPDATE online_keys SET sealed_private = $1 WHERE seq = $2",
                    &[(&resealed.as_slice(), Type::BYTEA), (&seq, Type::INT8)],
                )?;
            }
            Ok(rows.len())
        })
    }

    fn claim_webhook(
        &self,
        name: &str,
        owner: &str,
        start: i64,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<WebhookCursor>, StoreError> {
        self.transaction("claim webhook", Access::Write, |tx| {
            // A conflicting row is updated, and returned, only when the lease is free,
            // expired or already the owner's; a concurrent claim waits for the row lock and
            // re-checks this against the row the first one wrote.
            tx.query_typed_opt(
                concat!(
                    "INSERT INTO webhook_cursors AS w (name, cursor, attempts, dead,
                         lease_owner, lease_until)
                     VALUES ($1, $2, 0, FALSE, $3, $5)
                     ON CONFLICT (name) DO UPDATE
                         SET lease_owner = EXCLUDED.lease_owner,
                             lease_until = EXCLUDED.lease_until
                         WHERE w.lease_owner IS NULL OR w.lease_owner = EXCLUDED.lease_owner
                             OR w.lease_until IS NULL OR w.lease_until <= $4
                     RETURNING ",
                    webhook_columns!()
                ),
                &[
                    (&name, Type::TEXT),
                    (&start, Type::INT8),
                    (&owner, Type::TEXT),
                    (&now.unix(), Type::INT8),
                    (&until.unix(), Type::INT8),
                ],
            )?
            .as_ref()
            .map(webhook_cursor)
            .transpose()
        })
    }

    fn save_webhook(&self, owner: &str, state: &WebhookCursor) -> Result<bool, StoreError> {
        self.transaction("save webhook", Access::Write, |tx| {
            let saved = tx.execute_typed(
                "UPDATE webhook_cursors
                 SET cursor = $1, attempts = $2, next_attempt_at = $3, dead = $4,
                     last_error = $5, last_delivered_at = $6
                 WHERE name = $7 AND lease_owner = $8",
                &[
                    (&state.cursor, Type::INT8),
                    (&i64::from(state.attempts), Type::INT8),
                    (&state.next_attempt_at.map(Timestamp::unix), Type::INT8),
                    (&state.dead, Type::BOOL),
                    (&state.last_error.as_deref(), Type::TEXT),
                    (&state.last_delivered_at.map(Timestamp::unix), Type::INT8),
                    (&state.name.as_str(), Type::TEXT),
                    (&owner, Type::TEXT),
                ],
            )?;
            Ok(saved == 1)
        })
    }

    fn webhook_cursors(&self) -> Result<Vec<WebhookCursor>, StoreError> {
        self.transaction("read webhook cursors", Access::Read, |tx| {
            let rows = tx.query_typed(
                concat!(
                    "SELECT ",
                    webhook_columns!(),
                    " FROM webhook_cursors ORDER BY name COLLATE \"C\""
                ),
                &[],
            )?;
            rows.iter().map(webhook_cursor).collect()
        })
    }

    fn resume_webhook(&self, name: &str) -> Result<bool, StoreError> {
        self.transaction("resume webhook", Access::Write, |tx| {
            let resumed = tx.execute_typed(
                "UPDATE webhook_cursors SET dead = FALSE, attempts = 0, next_attempt_at = NULL
                 WHERE name = $1",
                &[(&name, Type::TEXT)],
            )?;
            Ok(resumed == 1)
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.transaction("ping", Access::Read, |tx| {
            tx.query_typed("SELECT id FROM changefeed_last", &[])?;
            Ok(())
        })
    }

    fn sample_online_key(&self) -> Result<Option<(String, String, StoredKey)>, StoreError> {
        self.transaction("read online keys", Access::Read, |tx| {
            Ok(tx
                .query_typed_opt(
                    "SELECT gun, role, keyid, public, sealed_private, created_at
                     FROM online_keys ORDER BY seq LIMIT 1",
                    &[],
                )?
                .map(|row| {
                    (
                        row.get(0),
                        row.get(1),
                        StoredKey {
                            keyid: row.get(2),
                            public: row.get(3),
                            sealed_private: row.get(4),
                            created_at: Timestamp::from_unix(row.get(5)),
                        },
                    )
                }))
        })
    }

    fn export(&self, visit: &mut Visit<'_>) -> Result<(), StoreError> {
        // One snapshot for every query, however long the copy takes.
        self.transaction("export", Access::Snapshot, |tx| {
            tx.batch_execute("SET LOCAL statement_timeout = 0")?;
            let mut files = tx.query_typed_raw(
                "SELECT gun, role, version, sha256, data, created_at FROM tuf_files
                 ORDER BY gun, role, version",
                Vec::<(&(dyn postgres::types::ToSql + Sync), Type)>::new(),
            )?;
            while let Some(row) = files.next()? {
                let gun: String = row.get(0);
                let version: i64 = row.get(2);
                visit(Record::File {
                    gun,
                    file: StoredFile {
                        role: row.get(1),
                        version: version as u64,
                        sha256: row.get(3),
                        bytes: row.get(4),
                        created_at: Timestamp::from_unix(row.get(5)),
                    },
                })?;
            }
            drop(files);
            let mut changes = tx.query_typed_raw(
                concat!("SELECT ", change_columns!(), " FROM changefeed ORDER BY id"),
                Vec::<(&(dyn postgres::types::ToSql + Sync), Type)>::new(),
            )?;
            while let Some(row) = changes.next()? {
                visit(Record::Change(change(&row)?))?;
            }
            drop(changes);
            let mut keys = tx.query_typed_raw(
                "SELECT gun, role, keyid, public, sealed_private, created_at FROM online_keys
                 ORDER BY gun, role, seq",
                Vec::<(&(dyn postgres::types::ToSql + Sync), Type)>::new(),
            )?;
            while let Some(row) = keys.next()? {
                visit(Record::Key {
                    gun: row.get(0),
                    role: row.get(1),
                    key: StoredKey {
                        keyid: row.get(2),
                        public: row.get(3),
                        sealed_private: row.get(4),
                        created_at: Timestamp::from_unix(row.get(5)),
                    },
                })?;
            }
            drop(keys);
            let mut proposals = tx.query_typed_raw(
                concat!(
                    "SELECT ",
                    proposal_columns!(body),
                    " FROM proposals ORDER BY id"
                ),
                Vec::<(&(dyn postgres::types::ToSql + Sync), Type)>::new(),
            )?;
            while let Some(row) = proposals.next()? {
                visit(Record::Proposal(stored_proposal(&row)?))?;
            }
            drop(proposals);
            let mut cursors = tx.query_typed_raw(
                concat!(
                    "SELECT ",
                    webhook_columns!(),
                    " FROM webhook_cursors ORDER BY name COLLATE \"C\""
                ),
                Vec::<(&(dyn postgres::types::ToSql + Sync), Type)>::new(),
            )?;
            while let Some(row) = cursors.next()? {
                visit(Record::WebhookCursor(webhook_cursor(&row)?))?;
            }
            Ok(())
        })
    }

    fn import(
        &self,
        records: &mut dyn Iterator<Item = Result<Record, StoreError>>,
    ) -> Result<u64, StoreError> {
        const OP: &str = "import";
        self.transaction(OP, Access::Write, |tx| {
            tx.batch_execute(
                "SET LOCAL statement_timeout = 0;
                 LOCK TABLE tuf_files, changefeed, online_keys, repositories, proposals,
                     webhook_cursors
                     IN EXCLUSIVE MODE",
            )?;
            let used: i64 = tx
                .query_typed_one(
                    "SELECT (SELECT COUNT(*) FROM tuf_files) + (SELECT COUNT(*) FROM changefeed)
                          + (SELECT COUNT(*) FROM online_keys) + (SELECT COUNT(*) FROM proposals)
                          + (SELECT COUNT(*) FROM webhook_cursors)",
                    &[],
                )?
                .get(0);
            if used != 0 {
                return Err(StoreError::Backend(format!(
                    "postgres {OP}: the target database already holds data: import needs an empty one"
                ))
                .into());
            }
            let mut n = 0_u64;
            for record in records {
                match record? {
                    Record::Proposal(p) => insert_proposal(tx, &p)?,
                    Record::File { gun, file } => {
                        tx.query_typed(
                            "INSERT INTO tuf_files (gun, role, version, sha256, data, created_at)
                             VALUES ($1, $2, $3, $4, $5, $6)",
                            &[
                                (&gun.as_str(), Type::TEXT),
                                (&file.role.as_str(), Type::TEXT),
                                (&(file.version as i64), Type::INT8),
                                (&file.sha256.as_str(), Type::TEXT),
                                (&file.bytes.as_slice(), Type::BYTEA),
                                (&file.created_at.unix(), Type::INT8),
                            ],
                        )?;
                    }
                    Record::Change(c) => {
                        tx.query_typed(
                            "INSERT INTO changefeed (id, gun, version, sha256, category, created_at,
                                 roles)
                             VALUES ($1, $2, $3, $4, $5, $6, $7)",
                            &[
                                (&c.id, Type::INT8),
                                (&c.gun.as_str(), Type::TEXT),
                                (&(c.version as i64), Type::INT8),
                                (&c.sha256.as_str(), Type::TEXT),
                                (&c.category.as_str(), Type::TEXT),
                                (&c.created_at.unix(), Type::INT8),
                                (&super::encode_roles(&c.roles).as_str(), Type::TEXT),
                            ],
                        )?;
                    }
                    Record::WebhookCursor(w) => insert_webhook_cursor(tx, &w)?,
                    Record::Key { gun, role, key } => {
                        let gun = Gun::new(&gun).map_err(|e| {
                            StoreError::Backend(format!("postgres {OP}: online key of {gun:?}: {e}"))
                        })?;
                        insert_key(tx, &gun, &role, &key)?;
                    }
                }
                n += 1;
            }
            // The compare-and-swap rows and the changefeed counter follow what was copied.
            tx.batch_execute(
                "INSERT INTO repositories (gun, timestamp_version)
                     SELECT gun, MAX(version) FROM tuf_files WHERE role = 'timestamp' GROUP BY gun
                 ON CONFLICT (gun) DO UPDATE SET timestamp_version = EXCLUDED.timestamp_version;
                 UPDATE changefeed_last SET id = (SELECT COALESCE(MAX(id), 0) FROM changefeed);
                 SELECT setval(pg_get_serial_sequence('proposals', 'id'),
                               (SELECT COALESCE(MAX(id), 0) + 1 FROM proposals), false);",
            )?;
            Ok(n)
        })
    }
}

/// Writes `w` exactly as given (lease included), for [`Store::import`].
fn insert_webhook_cursor(tx: &mut Transaction<'_>, w: &WebhookCursor) -> Result<(), Failure> {
    tx.query_typed(
        concat!(
            "INSERT INTO webhook_cursors (",
            webhook_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ),
        &[
            (&w.name.as_str(), Type::TEXT),
            (&w.cursor, Type::INT8),
            (&i64::from(w.attempts), Type::INT8),
            (&w.next_attempt_at.map(Timestamp::unix), Type::INT8),
            (&w.dead, Type::BOOL),
            (&w.last_error.as_deref(), Type::TEXT),
            (&w.last_delivered_at.map(Timestamp::unix), Type::INT8),
            (&w.lease_owner.as_deref(), Type::TEXT),
            (&w.lease_until.map(Timestamp::unix), Type::INT8),
        ],
    )?;
    Ok(())
}

/// Writes `p` exactly as given (id, revision, state and times), for [`Store::import`].
fn insert_proposal(tx: &mut Transaction<'_>, p: &StoredProposal) -> Result<(), Failure> {
    let (state, change_id) = p.state.columns();
    let revision = i64::try_from(p.revision).map_err(|_| {
        StoreError::Backend(format!(
            "postgres import: proposal {} has revision {} (out of range)",
            p.id, p.revision
        ))
    })?;
    tx.query_typed(
        "INSERT INTO proposals (id, gun, state, change_id, revision, body, summary,
             proposed_by, created_at, expires_at, closed_at, closed_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            (&p.id, Type::INT8),
            (&p.gun.as_str(), Type::TEXT),
            (&state, Type::TEXT),
            (&change_id, Type::INT8),
            (&revision, Type::INT8),
            (&p.body.as_slice(), Type::BYTEA),
            (&p.summary.as_slice(), Type::BYTEA),
            (&p.proposed_by.as_str(), Type::TEXT),
            (&p.created_at.unix(), Type::INT8),
            (&p.expires_at.unix(), Type::INT8),
            (&p.closed_at.map(Timestamp::unix), Type::INT8),
            (&p.closed_by.as_deref(), Type::TEXT),
        ],
    )?;
    Ok(())
}

/// Reads the columns of `proposal_columns!` (either form).
fn stored_proposal(row: &Row) -> Result<StoredProposal, Failure> {
    let id: i64 = row.get(0);
    let state: String = row.get(2);
    let change_id: Option<i64> = row.get(3);
    let state = ProposalState::from_columns(&state, change_id).ok_or_else(|| {
        StoreError::Backend(format!(
            "postgres read proposal: proposal {id} has state {state:?} (change {change_id:?})"
        ))
    })?;
    let revision: i64 = row.get(4);
    let closed_at: Option<i64> = row.get(10);
    Ok(StoredProposal {
        id,
        gun: row.get(1),
        state,
        revision: u64::try_from(revision).map_err(|_| {
            StoreError::Backend(format!(
                "postgres read proposal: proposal {id} has revision {revision}"
            ))
        })?,
        body: row.get(5),
        summary: row.get(6),
        proposed_by: row.get(7),
        created_at: Timestamp::from_unix(row.get(8)),
        expires_at: Timestamp::from_unix(row.get(9)),
        closed_at: closed_at.map(Timestamp::from_unix),
        closed_by: row.get(11),
    })
}

/// Reads `role, version, sha256, data, created_at`.
fn stored_file(row: &Row) -> Result<StoredFile, Failure> {
    let version: i64 = row.get(1);
    Ok(StoredFile {
        role: row.get(0),
        version: u64::try_from(version)
            .map_err(|_| StoreError::Backend(format!("postgres: stored version {version}")))?,
        sha256: row.get(2),
        bytes: row.get(3),
        created_at: Timestamp::from_unix(row.get(4)),
    })
}

/// Reads `keyid, public, sealed_private, created_at`.
fn stored_key(row: &Row) -> StoredKey {
    StoredKey {
        keyid: row.get(0),
        public: row.get(1),
        sealed_private: row.get(2),
        created_at: Timestamp::from_unix(row.get(3)),
    }
}

/// Reads the columns of `change_columns!`.
fn change(row: &Row) -> Result<Change, Failure> {
    let category: String = row.get(4);
    let category = match category.as_str() {
        "update" => ChangeCategory::Update,
        "deletion" => ChangeCategory::Deletion,
        other => {
            return Err(StoreError::Backend(format!(
                "postgres read changefeed: unknown category {other:?}"
            ))
            .into())
        }
    };
    let version: i64 = row.get(2);
    let id: i64 = row.get(0);
    let roles: &str = row.get(6);
    Ok(Change {
        id,
        gun: row.get(1),
        version: version as u64,
        sha256: row.get(3),
        category,
        created_at: Timestamp::from_unix(row.get(5)),
        roles: super::decode_roles("postgres", id, roles)?,
    })
}

/// Reads the columns of `webhook_columns!`.
fn webhook_cursor(row: &Row) -> Result<WebhookCursor, Failure> {
    let name: String = row.get(0);
    let attempts: i64 = row.get(2);
    let time = |i: usize| row.get::<_, Option<i64>>(i).map(Timestamp::from_unix);
    Ok(WebhookCursor {
        attempts: u32::try_from(attempts).map_err(|_| {
            StoreError::Backend(format!(
                "postgres read webhook cursor: {name} has {attempts} attempts"
            ))
        })?,
        name,
        cursor: row.get(1),
        next_attempt_at: time(3),
        dead: row.get(4),
        last_error: row.get(5),
        last_delivered_at: time(6),
        lease_owner: row.get(7),
        lease_until: time(8),
    })
}
