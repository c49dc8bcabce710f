//! [`SqliteStore`]: the embedded [`Store`], one SQLite database file.
//!
//! The database runs in WAL mode with `synchronous=FULL`, so a publish that returned `Ok`
//! has reached the disk and survives a process kill or a power loss. Writes go through one
//! writer connection behind a mutex and run as `BEGIN IMMEDIATE` transactions; reads use a
//! small pool of read-only connections, which WAL lets proceed while a write is under way
//! (each read sees the last committed state).
//!
//! This module is not a cross-host store: several server processes may share one file on
//! one host (SQLite locks it), but replicas behind a load balancer need the PostgreSQL store.
//!
//! The schema carries its version in `PRAGMA user_version`; [`SqliteStore::open`] applies
//! the missing migration steps in one transaction and refuses a database written by a
//! newer schema.
//!
//! ```no_run
//! use vouch_server::store::{NewFile, SqliteStore, Store};
//! use vouch_tuf::reference::Gun;
//! use vouch_tuf::time::Timestamp;
//!
//! let store = SqliteStore::open(std::path::Path::new("vouch-data/vouch.db"))?;
//! let gun = Gun::new("registry.example/app")?;
//! let root = NewFile { role: "root".into(), version: 1, bytes: b"{...}".to_vec() };
//! store.publish(&gun, None, &[root], Timestamp::from_unix(1_900_000_000))?;
//! assert_eq!(store.get_current(&gun, "root")?.map(|f| f.version), Some(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{ffi, params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use vouch_tuf::reference::Gun;
use vouch_tuf::time::Timestamp;

use super::{
    Change, ChangeCategory, Closing, Direction, NewFile, NewProposal, ProposalState, Record,
    Reseal, Store, StoreError, StoredFile, StoredKey, StoredProposal, Visit, WebhookCursor,
};

/// How long a connection waits for a lock held by another connection (another process on
/// the same file, or a checkpoint) before giving up with a backend error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Most read-only connections open at once; further readers wait for one to be returned.
const MAX_READERS: usize = 8;

/// Schema steps: `MIGRATIONS[i]` takes a database from `user_version` `i` to `i + 1`.
/// Append new steps; never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the initial schema.
    "CREATE TABLE tuf_files (
         gun        TEXT    NOT NULL,
         role       TEXT    NOT NULL,
         version    INTEGER NOT NULL CHECK (version >= 0),
         sha256     TEXT    NOT NULL,
         data       BLOB    NOT NULL,
         created_at INTEGER NOT NULL,
         PRIMARY KEY (gun, role, version)
     ) STRICT;
     CREATE INDEX tuf_files_by_checksum ON tuf_files (gun, role, sha256);

     CREATE TABLE changefeed (
         id         INTEGER PRIMARY KEY AUTOINCREMENT,
         gun        TEXT    NOT NULL,
         version    INTEGER NOT NULL CHECK (version >= 0),
         sha256     TEXT    NOT NULL,
         category   TEXT    NOT NULL CHECK (category IN ('update', 'deletion')),
         created_at INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX changefeed_by_gun ON changefeed (gun);

     CREATE TABLE online_keys (
         gun            TEXT    NOT NULL,
         role           TEXT    NOT NULL,
         keyid          TEXT    NOT NULL,
         public         TEXT    NOT NULL,
         sealed_private BLOB    NOT NULL,
         created_at     INTEGER NOT NULL,
         seq            INTEGER PRIMARY KEY AUTOINCREMENT,
         UNIQUE (gun, role, keyid)
     ) STRICT;",
    // 1 -> 2: staged proposals. AUTOINCREMENT: an id is never reused, also after the
    // newest proposal's repository was deleted. `body` is the last column: a large one
    // spills into overflow pages, which reading the columns before it (a list) skips.
    "CREATE TABLE proposals (
         id          INTEGER PRIMARY KEY AUTOINCREMENT,
         gun         TEXT    NOT NULL,
         state       TEXT    NOT NULL CHECK (state IN ('open', 'published', 'withdrawn')),
         change_id   INTEGER,
         revision    INTEGER NOT NULL CHECK (revision >= 0),
         summary     BLOB    NOT NULL,
         proposed_by TEXT    NOT NULL,
         created_at  INTEGER NOT NULL,
         expires_at  INTEGER NOT NULL,
         closed_at   INTEGER,
         closed_by   TEXT,
         body        BLOB    NOT NULL,
         CHECK ((state = 'published') = (change_id IS NOT NULL)),
         CHECK ((state = 'open') = (closed_at IS NULL)),
         CHECK ((state = 'open') = (closed_by IS NULL))
     ) STRICT;
     CREATE INDEX proposals_by_gun ON proposals (gun, id);",
    // 2 -> 3: the roles each changefeed entry wrote (`Change::roles`, as JSON; older
    // entries keep the empty text: none recorded), and webhook delivery cursors, which are
    // kept by subscription name, not by repository, so deleting one leaves them.
    "ALTER TABLE changefeed ADD COLUMN roles TEXT NOT NULL DEFAULT '';

     CREATE TABLE webhook_cursors (
         name              TEXT    PRIMARY KEY,
         cursor            INTEGER NOT NULL,
         attempts          INTEGER NOT NULL CHECK (attempts BETWEEN 0 AND 4294967295),
         next_attempt_at   INTEGER,
         dead              INTEGER NOT NULL CHECK (dead IN (0, 1)),
         last_error        TEXT,
         last_delivered_at INTEGER,
         lease_owner       TEXT,
         lease_until       INTEGER
     ) STRICT;",
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
/// `body` the whole row, with `no body` an empty blob in the body's place, so a list does
/// not read the bodies.
macro_rules! proposal_columns {
    (body) => {
        "id, gun, state, change_id, revision, body, summary, proposed_by, created_at, \
         expires_at, closed_at, closed_by"
    };
    (no body) => {
        "id, gun, state, change_id, revision, X'', summary, proposed_by, created_at, \
         expires_at, closed_at, closed_by"
    };
}

/// Proposal `?2` of GUN `?1`.
const PROPOSAL_BY_ID_SQL: &str = concat!(
    "SELECT ",
    proposal_columns!(body),
    " FROM proposals WHERE gun = ?1 AND id = ?2"
);

/// Up to `?2` proposals of GUN `?1`, newest first, without their bodies.
const PROPOSALS_ALL_SQL: &str = concat!(
    "SELECT ",
    proposal_columns!(no body),
    " FROM proposals WHERE gun = ?1 ORDER BY id DESC LIMIT ?2"
);

/// Up to `?2` proposals of GUN `?1` still open at time `?3`, newest first, without their
/// bodies.
const PROPOSALS_OPEN_SQL: &str = concat!(
    "SELECT ",
    proposal_columns!(no body),
    " FROM proposals WHERE gun = ?1 AND state = 'open' AND expires_at > ?3
     ORDER BY id DESC LIMIT ?2"
);

/// The newest version of each role of GUN `?1`.
///
/// Every version is kept, so a GUN may have thousands of rows: this walks its distinct roles
/// by index seeks (one per role) instead of scanning them. CROSS JOIN pins the join order:
/// SQLite would otherwise scan the GUN's rows in the outer loop, which is what this query
/// exists to avoid.
const CURRENT_SQL: &str = "
    WITH RECURSIVE roles(role) AS (
        SELECT MIN(role) FROM tuf_files WHERE gun = ?1
        UNION ALL
        SELECT (SELECT MIN(role) FROM tuf_files WHERE gun = ?1 AND role > roles.role)
        FROM roles WHERE roles.role IS NOT NULL
    )
    SELECT f.role, f.version, f.sha256, f.data, f.created_at
    FROM roles CROSS JOIN tuf_files AS f
        ON f.gun = ?1 AND f.role = roles.role
        AND f.version = (SELECT MAX(version) FROM tuf_files WHERE gun = ?1 AND role = roles.role)
    ORDER BY f.role";

/// The [`Store`] on one SQLite database file. See the module documentation.
pub struct SqliteStore {
    // Field order matters: the readers close first, so the writer, closing last, can
    // checkpoint the WAL into the database file and remove it.
    readers: ReaderPool,
    writer: Mutex<Connection>,
    /// Device and inode of the database file as opened, so readiness notices the file being
    /// removed or replaced under the running server.
    identity: Option<(u64, u64)>,
}

/// Device and inode of the file at `path` (`None` where the platform has neither).
fn file_identity(path: &Path) -> std::io::Result<Option<(u64, u64)>> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(Some((meta.dev(), meta.ino())))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(None)
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.readers.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating it (mode 0600 on unix) and its schema when
    /// missing, and migrating an older schema. The parent directory must exist.
    ///
    /// Fails when the file cannot be created or opened, is not a SQLite database, cannot
    /// use WAL mode, or was written by a newer schema than this server knows.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        create_private_file(path)?;

        let mut writer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(backend("open database"))?;
        writer
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(backend("set busy timeout"))?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(backend("enable WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "sqlite enable WAL: journal mode is {mode:?} for {}",
                path.display()
            )));
        }
        writer
            .pragma_update(None, "synchronous", "FULL")
            .map_err(backend("set synchronous"))?;
        writer
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(backend("enable foreign keys"))?;
        migrate(&mut writer)?;

        let readers = ReaderPool::new(path.to_path_buf());
        // Open one reader now, so that a database readers cannot open fails here, not on
        // the first request.
        readers.with(|_| Ok(()))?;
        let identity = file_identity(path)
            .map_err(|e| StoreError::Backend(format!("sqlite stat {}: {e}", path.display())))?;
        Ok(SqliteStore {
            readers,
            writer: Mutex::new(writer),
            identity,
        })
    }

    /// Runs `PRAGMA integrity_check`; fails with [`StoreError::Backend`] carrying SQLite's
    /// findings unless the answer is `ok`.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let findings = self.readers.with(|conn| {
            let mut stmt = conn
                .prepare("PRAGMA integrity_check")
                .map_err(backend("integrity check"))?;
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(backend("integrity check"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(backend("integrity check"))
        })?;
        if findings.as_slice() == ["ok"] {
            Ok(())
        } else {
            Err(StoreError::Backend(format!(
                "sqlite integrity check: {}",
                findings.join("; ")
            )))
        }
    }

    /// The writer connection, with no transaction left open.
    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held unwound through a `Transaction`, whose drop rolled
        // it back; the connection itself is intact.
        let conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if !conn.is_autocommit() {
            // Defensive: never let a half-done transaction leak into the next write. If the
            // rollback fails, the next BEGIN reports it.
            let _ = conn.execute_batch("ROLLBACK");
        }
        conn
    }
}

impl Store for SqliteStore {
    fn create_proposal(
        &self,
        gun: &Gun,
        proposal: &NewProposal,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        const OP: &str = "create proposal";
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(OP))?;
        let id: i64 = tx
            .prepare_cached(
                "INSERT INTO proposals
                     (gun, state, revision, body, summary, proposed_by, created_at, expires_at)
                 VALUES (?1, 'open', 0, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            )
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![
                        gun.as_str(),
                        proposal.body,
                        proposal.summary,
                        proposal.proposed_by,
                        now.unix(),
                        proposal.expires_at.unix()
                    ],
                    |row| row.get(0),
                )
            })
            .map_err(backend(OP))?;
        tx.commit().map_err(backend(OP))?;
        Ok(id)
    }

    fn proposals(
        &self,
        gun: &Gun,
        open_at: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<StoredProposal>, StoreError> {
        const OP: &str = "read proposals";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Parameters: ?1 gun, ?2 limit, ?3 the time (when given).
        let sql = if open_at.is_some() {
            PROPOSALS_OPEN_SQL
        } else {
            PROPOSALS_ALL_SQL
        };
        self.readers.with(|conn| {
            let mut stmt = conn.prepare_cached(sql).map_err(backend(OP))?;
            stmt.raw_bind_parameter(1, gun.as_str())
                .map_err(backend(OP))?;
            stmt.raw_bind_parameter(2, limit).map_err(backend(OP))?;
            if let Some(at) = open_at {
                stmt.raw_bind_parameter(3, at.unix()).map_err(backend(OP))?;
            }
            let mut rows = stmt.raw_query();
            let mut proposals = Vec::new();
            while let Some(row) = rows.next().map_err(backend(OP))? {
                proposals.push(stored_proposal(row)?);
            }
            Ok(proposals)
        })
    }

    fn proposal(&self, gun: &Gun, id: i64) -> Result<Option<StoredProposal>, StoreError> {
        const OP: &str = "read proposal";
        self.readers.with(|conn| {
            let mut stmt = conn
                .prepare_cached(PROPOSAL_BY_ID_SQL)
                .map_err(backend(OP))?;
            let mut rows = stmt.query(params![gun.as_str(), id]).map_err(backend(OP))?;
            match rows.next().map_err(backend(OP))? {
                Some(row) => stored_proposal(row).map(Some),
                None => Ok(None),
            }
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
        const OP: &str = "amend proposal";
        let changed = || StoreError::ProposalChanged {
            gun: gun.as_str().to_owned(),
            id,
        };
        // A revision beyond the column's range was never stored.
        let revision = i64::try_from(revision).map_err(|_| changed())?;
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(OP))?;
        let amended = tx
            .execute(
                "UPDATE proposals SET body = ?1, summary = ?2, revision = revision + 1
                 WHERE id = ?3 AND gun = ?4 AND state = 'open' AND revision = ?5",
                params![body, summary, id, gun.as_str(), revision],
            )
            .map_err(backend(OP))?;
        if amended != 1 {
            return Err(changed()); // `tx` rolls back
        }
        tx.commit().map_err(backend(OP))
    }

    fn close_proposal(
        &self,
        gun: &Gun,
        closing: Closing<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        const OP: &str = "withdraw proposal";
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(OP))?;
        close_open_proposal(&tx, OP, gun, &closing, None, now)?;
        tx.commit().map_err(backend(OP))
    }

    fn publish_proposal(
        &self,
        gun: &Gun,
        expected: Option<u64>,
        files: &[NewFile],
        closing: Closing<'_>,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        self.publish_files(
            "publish proposal",
            gun,
            expected,
            files,
            Some(&closing),
            now,
        )
    }

    fn current(&self, gun: &Gun) -> Result<Vec<StoredFile>, StoreError> {
        self.readers.with(|conn| {
            let mut stmt = conn
                .prepare_cached(CURRENT_SQL)
                .map_err(backend("read current metadata"))?;
            let rows = stmt
                .query_map([gun.as_str()], stored_file)
                .map_err(backend("read current metadata"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(backend("read current metadata"))
        })
    }

    fn get_current(&self, gun: &Gun, role: &str) -> Result<Option<StoredFile>, StoreError> {
        self.readers.with(|conn| {
            conn.prepare_cached(
                "SELECT role, version, sha256, data, created_at FROM tuf_files
                 WHERE gun = ?1 AND role = ?2 ORDER BY version DESC LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![gun.as_str(), role], stored_file)
                    .optional()
            })
            .map_err(backend("read current role"))
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
        self.readers.with(|conn| {
            conn.prepare_cached(
                "SELECT role, version, sha256, data, created_at FROM tuf_files
                 WHERE gun = ?1 AND role = ?2 AND version = ?3",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![gun.as_str(), role, version], stored_file)
                    .optional()
            })
            .map_err(backend("read role version"))
        })
    }

    fn get_by_checksum(
        &self,
        gun: &Gun,
        role: &str,
        sha256: &str,
    ) -> Result<Option<StoredFile>, StoreError> {
        let sha256 = sha256.to_ascii_lowercase();
        self.readers.with(|conn| {
            conn.prepare_cached(
                "SELECT role, version, sha256, data, created_at FROM tuf_files
                 WHERE gun = ?1 AND role = ?2 AND sha256 = ?3
                 ORDER BY version DESC LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![gun.as_str(), role, sha256], stored_file)
                    .optional()
            })
            .map_err(backend("read role by checksum"))
        })
    }

    fn publish(
        &self,
        gun: &Gun,
        expected: Option<u64>,
        files: &[NewFile],
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        self.publish_files("publish", gun, expected, files, None, now)
    }

    fn delete(&self, gun: &Gun, now: Timestamp) -> Result<bool, StoreError> {
        const OP: &str = "delete";
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(OP))?;
        let deleted = tx
            .execute("DELETE FROM tuf_files WHERE gun = ?1", [gun.as_str()])
            .map_err(backend(OP))?;
        tx.execute("DELETE FROM proposals WHERE gun = ?1", [gun.as_str()])
            .map_err(backend(OP))?;
        if deleted == 0 {
            // No metadata, so no deletion to record; proposals (of a repository never
            // published) are gone all the same.
            tx.commit().map_err(backend("delete commit"))?;
            return Ok(false);
        }
        insert_change(&tx, gun, 0, "", ChangeCategory::Deletion, &[], now)?;
        tx.commit().map_err(backend("delete commit"))?;
        Ok(true)
    }

    fn changes(
        &self,
        gun: Option<&Gun>,
        cursor: Option<i64>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        const OP: &str = "read changefeed";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Parameters: ?1 limit, ?2 cursor (when given), ?3 gun (when given). Each shape is a
        // fixed text, so the statement cache serves it.
        let sql = match (direction, cursor.is_some(), gun.is_some()) {
            (Direction::Forward, false, false) => {
                concat!(
                    "SELECT ",
                    change_columns!(),
                    " FROM changefeed
                 ORDER BY id ASC LIMIT ?1"
                )
            }
            (Direction::Forward, true, false) => {
                concat!(
                    "SELECT ",
                    change_columns!(),
                    " FROM changefeed
                 WHERE id > ?2 ORDER BY id ASC LIMIT ?1"
                )
            }
            (Direction::Forward, false, true) => {
                concat!(
                    "SELECT ",
                    change_columns!(),
                    " FROM changefeed
                 WHERE gun = ?3 ORDER BY id ASC LIMIT ?1"
                )
            }
            (Direction::Forward, true, true) => {
                concat!(
                    "SELECT ",
                    change_columns!(),
                    " FROM changefeed
                 WHERE id > ?2 AND gun = ?3 ORDER BY id ASC LIMIT ?1"
                )
            }
            (Direction::Backward, false, false) => {
                concat!(
                    "SELECT ",
                    change_columns!(),
                    " FROM changefeed
                 ORDER BY id DESC LIMIT ?1"
                )
            }
            (Direction::Backward, true, false) => {
                concat!(
                    "SELECT ",
                    change_columns!(),
                    " FROM changefeed
                 WHERE id < ?2 ORDER BY id DESC LIMIT ?1"
                )
            }
            (Direction::Backward, false, true) => {
                concat!(
                    "SELECT ",
                    change_columns!(),
                    " FROM changefeed
                 WHERE gun = ?3 ORDER BY id DESC LIMIT ?1"
                )
            }
            (Direction::Backward, true, true) => {
                concat!(
                    "SELECT ",
                    change_columns!(),
                    " FROM changefeed
                 WHERE id < ?2 AND gun = ?3 ORDER BY id DESC LIMIT ?1"
                )
            }
        };
        self.readers.with(|conn| {
            let mut stmt = conn.prepare_cached(sql).map_err(backend(OP))?;
            stmt.raw_bind_parameter(1, limit).map_err(backend(OP))?;
            if let Some(cursor) = cursor {
                stmt.raw_bind_parameter(2, cursor).map_err(backend(OP))?;
            }
            if let Some(gun) = gun {
                stmt.raw_bind_parameter(3, gun.as_str())
                    .map_err(backend(OP))?;
            }
            let mut rows = stmt.raw_query();
            let mut changes = Vec::new();
            while let Some(row) = rows.next().map_err(backend(OP))? {
                changes.push(change(row)?);
            }
            Ok(changes)
        })
    }

    fn online_keys(&self, gun: &Gun, role: &str) -> Result<Vec<StoredKey>, StoreError> {
        self.readers.with(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT keyid, public, sealed_private, created_at FROM online_keys
                     WHERE gun = ?1 AND role = ?2 ORDER BY seq ASC",
                )
                .map_err(backend("read online keys"))?;
            let rows = stmt
                .query_map(params![gun.as_str(), role], stored_key)
                .map_err(backend("read online keys"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(backend("read online keys"))
        })
    }

    fn reseal_online_keys(&self, reseal: &mut Reseal<'_>) -> Result<usize, StoreError> {
        const OP: &str = "re-seal online keys";
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(OP))?;
        let keys: Vec<(i64, String, String, String, Vec<u8>)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT seq, gun, role, keyid, sealed_private FROM online_keys ORDER BY seq",
                )
                .map_err(backend(OP))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(backend(OP))?;
            rows.collect::<Result<_, _>>().map_err(backend(OP))?
        };
        for (seq, gun, role, keyid, sealed) in &keys {
            // An error returns early: `tx` rolls back and no key changes.
            let resealed = reseal(gun, role, keyid, sealed).map_err(StoreError::Backend)?;
            tx.execute(
                "UPDATE online_keys SET sealed_private = ?1 WHERE seq = ?2",
                params![resealed, seq],
            )
            .map_err(backend(OP))?;
        }
        tx.commit().map_err(backend(OP))?;
        Ok(keys.len())
    }

    fn add_online_key(
        &self,
        gun: &Gun,
        role: &str,
        key: &StoredKey,
        after: Option<&str>,
    ) -> Result<StoredKey, StoreError> {
        const OP: &str = "add online key";
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(OP))?;
        let newest = tx
            .prepare_cached(
                "SELECT keyid, public, sealed_private, created_at FROM online_keys
                 WHERE gun = ?1 AND role = ?2 ORDER BY seq DESC LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![gun.as_str(), role], stored_key)
                    .optional()
            })
            .map_err(backend(OP))?;
        if let Some(newest) = newest {
            if after != Some(newest.keyid.as_str()) {
                return Ok(newest); // `tx` rolls back: nothing was written
            }
        } else if after.is_some() {
            return Err(StoreError::Backend(format!(
                "sqlite {OP}: {gun} {role} has no online key to rotate"
            )));
        }
        tx.execute(
            "INSERT INTO online_keys (gun, role, keyid, public, sealed_private, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                gun.as_str(),
                role,
                key.keyid,
                key.public,
                key.sealed_private,
                key.created_at.unix()
            ],
        )
        .map_err(|err| {
            if is_uniqueness_violation(&err) {
                StoreError::Backend(format!(
                    "sqlite {OP}: key {} is already stored for {gun} {role}",
                    key.keyid
                ))
            } else {
                backend(OP)(err)
            }
        })?;
        tx.commit().map_err(backend("add online key commit"))?;
        Ok(key.clone())
    }

    fn export(&self, visit: &mut Visit<'_>) -> Result<(), StoreError> {
        self.export_records(visit)
    }

    fn sample_online_key(&self) -> Result<Option<(String, String, StoredKey)>, StoreError> {
        self.readers.with(|conn| {
            conn.query_row(
                "SELECT gun, role, keyid, public, sealed_private, created_at FROM online_keys
                 ORDER BY seq LIMIT 1",
                [],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        StoredKey {
                            keyid: row.get(2)?,
                            public: row.get(3)?,
                            sealed_private: row.get(4)?,
                            created_at: Timestamp::from_unix(row.get(5)?),
                        },
                    ))
                },
            )
            .optional()
            .map_err(backend("read online keys"))
        })
    }

    fn import(
        &self,
        records: &mut dyn Iterator<Item = Result<Record, StoreError>>,
    ) -> Result<u64, StoreError> {
        self.import_records(records)
    }

    fn claim_webhook(
        &self,
        name: &str,
        owner: &str,
        start: i64,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<WebhookCursor>, StoreError> {
        const OP: &str = "claim webhook";
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(OP))?;
        // A conflicting row is updated, and returned, only when the lease is free, expired
        // or already the owner's; otherwise nothing is written and no row comes back.
        let claimed = tx
            .prepare_cached(concat!(
                "INSERT INTO webhook_cursors (name, cursor, attempts, dead, lease_owner,
                     lease_until)
                 VALUES (?1, ?2, 0, 0, ?3, ?5)
                 ON CONFLICT (name) DO UPDATE
                     SET lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
                     WHERE lease_owner IS NULL OR lease_owner = excluded.lease_owner
                         OR lease_until IS NULL OR lease_until <= ?4
                 RETURNING ",
                webhook_columns!()
            ))
            .map_err(backend(OP))?
            .query(params![name, start, owner, now.unix(), until.unix()])
            .map_err(backend(OP))?
            .next()
            .map_err(backend(OP))?
            .map(webhook_cursor)
            .transpose()?;
        tx.commit().map_err(backend(OP))?;
        Ok(claimed)
    }

    fn save_webhook(&self, owner: &str, state: &WebhookCursor) -> Result<bool, StoreError> {
        const OP: &str = "save webhook";
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(OP))?;
        let saved = tx
            .prepare_cached(
                "UPDATE webhook_cursors
                 SET cursor = ?1, attempts = ?2, next_attempt_at = ?3, dead = ?4,
                     last_error = ?5, last_delivered_at = ?6
                 WHERE name = ?7 AND lease_owner = ?8",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    state.cursor,
                    state.attempts,
                    state.next_attempt_at.map(Timestamp::unix),
                    state.dead,
                    state.last_error,
                    state.last_delivered_at.map(Timestamp::unix),
                    state.name,
                    owner
                ])
            })
            .map_err(backend(OP))?;
        tx.commit().map_err(backend(OP))?;
        Ok(saved == 1)
    }

    fn webhook_cursors(&self) -> Result<Vec<WebhookCursor>, StoreError> {
        const OP: &str = "read webhook cursors";
        self.readers.with(|conn| {
            let mut stmt = conn
                .prepare_cached(concat!(
                    "SELECT ",
                    webhook_columns!(),
                    " FROM webhook_cursors ORDER BY name"
                ))
                .map_err(backend(OP))?;
            let mut rows = stmt.query([]).map_err(backend(OP))?;
            let mut cursors = Vec::new();
            while let Some(row) = rows.next().map_err(backend(OP))? {
                cursors.push(webhook_cursor(row)?);
            }
            Ok(cursors)
        })
    }

    fn resume_webhook(&self, name: &str) -> Result<bool, StoreError> {
        const OP: &str = "resume webhook";
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(OP))?;
        let resumed = tx
            .execute(
                "UPDATE webhook_cursors SET dead = 0, attempts = 0, next_attempt_at = NULL
                 WHERE name = ?1",
                [name],
            )
            .map_err(backend(OP))?;
        tx.commit().map_err(backend(OP))?;
        Ok(resumed == 1)
    }

    fn ping(&self) -> Result<(), StoreError> {
        let path = &self.readers.path;
        // A database file deleted or replaced under the server would still answer queries
        // (from the open, now unlinked file) and lose every write at the next start.
        match file_identity(path) {
            Err(e) => {
                return Err(StoreError::Backend(format!(
                    "sqlite database file {}: {e}",
                    path.display()
                )))
            }
            Ok(id) if id != self.identity => {
                return Err(StoreError::Backend(format!(
                    "sqlite database file {} was replaced since the server opened it",
                    path.display()
                )))
            }
            Ok(_) => {}
        }
        self.readers.with(|conn| {
            conn.query_row("SELECT count(*) FROM changefeed WHERE 0", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(drop)
            .map_err(backend("ping"))
        })
    }
}

impl SqliteStore {
    /// [`Store::publish`], and with `closing` [`Store::publish_proposal`]: the
    /// compare-and-swap, the files and the changefeed entry, and the proposal marked
    /// published by that entry, in one transaction. `op` names the operation in errors.
    fn publish_files(
        &self,
        op: &'static str,
        gun: &Gun,
        expected: Option<u64>,
        files: &[NewFile],
        closing: Option<&Closing<'_>>,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let mut conn = self.writer();
        // Dropping `tx` without commit (any early return below) rolls everything back.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(op))?;
        let (mut ts_version, mut ts_sha256) = (0_i64, String::new());
        {
            let mut newest = tx
                .prepare_cached("SELECT MAX(version) FROM tuf_files WHERE gun = ?1 AND role = ?2")
                .map_err(backend(op))?;
            // The compare-and-swap: `BEGIN IMMEDIATE` holds the database's write lock, so
            // the timestamp version read here is still current at commit.
            let current: Option<i64> = newest
                .query_row(params![gun.as_str(), "timestamp"], |row| row.get(0))
                .map_err(backend(op))?;
            if current.map(|v| v as u64) != expected {
                return Err(StoreError::Conflict {
                    gun: gun.as_str().to_owned(),
                    role: "timestamp".into(),
                    version: current.map_or(0, |v| v as u64),
                });
            }
            if let Some(closing) = closing {
                // Checked before anything is written; closed below, after the changefeed
                // entry it records exists. The write lock keeps it open meanwhile.
                if !proposal_is_at(&tx, op, gun, closing)? {
                    return Err(StoreError::ProposalChanged {
                        gun: gun.as_str().to_owned(),
                        id: closing.id,
                    });
                }
            }
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO tuf_files (gun, role, version, sha256, data, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(backend(op))?;
            for file in files {
                let conflict = || StoreError::Conflict {
                    gun: gun.as_str().to_owned(),
                    role: file.role.clone(),
                    version: file.version,
                };
                let version = i64::try_from(file.version).map_err(|_| {
                    StoreError::Backend(format!(
                        "sqlite {op}: {} version {} is out of range",
                        file.role, file.version
                    ))
                })?;
                let max: Option<i64> = newest
                    .query_row(params![gun.as_str(), file.role], |row| row.get(0))
                    .map_err(backend(op))?;
                if max.is_some_and(|max| max >= version) {
                    return Err(conflict());
                }
                let sha256 = super::sha256_hex(&file.bytes);
                match insert.execute(params![
                    gun.as_str(),
                    file.role,
                    version,
                    sha256,
                    file.bytes,
                    now.unix()
                ]) {
                    Ok(_) => {}
                    Err(err) if is_uniqueness_violation(&err) => return Err(conflict()),
                    Err(err) => return Err(backend(op)(err)),
                }
                if file.role == "timestamp" {
                    (ts_version, ts_sha256) = (version, sha256);
                }
            }
        }
        let id = insert_change(
            &tx,
            gun,
            ts_version,
            &ts_sha256,
            ChangeCategory::Update,
            &super::roles_of(files),
            now,
        )?;
        if let Some(closing) = closing {
            close_open_proposal(&tx, op, gun, closing, Some(id), now)?;
        }
        tx.commit().map_err(backend(op))?;
        Ok(id)
    }

    /// [`Store::export`] on one reader connection, in one read transaction.
    fn export_records(&self, visit: &mut Visit<'_>) -> Result<(), StoreError> {
        const OP: &str = "export";
        self.readers.with(|conn| {
            // A read transaction: one WAL snapshot for every query below.
            let tx = conn.unchecked_transaction().map_err(backend(OP))?;
            {
                let mut files = tx
                    .prepare(
                        "SELECT gun, role, version, sha256, data, created_at FROM tuf_files
                         ORDER BY gun, role, version",
                    )
                    .map_err(backend(OP))?;
                let mut rows = files.query([]).map_err(backend(OP))?;
                while let Some(row) = rows.next().map_err(backend(OP))? {
                    let gun: String = row.get(0).map_err(backend(OP))?;
                    let file = StoredFile {
                        role: row.get(1).map_err(backend(OP))?,
                        version: row.get(2).map_err(backend(OP))?,
                        sha256: row.get(3).map_err(backend(OP))?,
                        bytes: row.get(4).map_err(backend(OP))?,
                        created_at: Timestamp::from_unix(row.get(5).map_err(backend(OP))?),
                    };
                    visit(Record::File { gun, file })?;
                }
                let mut changes = tx
                    .prepare(concat!(
                        "SELECT ",
                        change_columns!(),
                        " FROM changefeed ORDER BY id"
                    ))
                    .map_err(backend(OP))?;
                let mut rows = changes.query([]).map_err(backend(OP))?;
                while let Some(row) = rows.next().map_err(backend(OP))? {
                    visit(Record::Change(change(row)?))?;
                }
                let mut keys = tx
                    .prepare(
                        "SELECT gun, role, keyid, public, sealed_private, created_at
                         FROM online_keys ORDER BY gun, role, seq",
                    )
                    .map_err(backend(OP))?;
                let mut rows = keys.query([]).map_err(backend(OP))?;
                while let Some(row) = rows.next().map_err(backend(OP))? {
                    let gun: String = row.get(0).map_err(backend(OP))?;
                    let role: String = row.get(1).map_err(backend(OP))?;
                    let key = StoredKey {
                        keyid: row.get(2).map_err(backend(OP))?,
                        public: row.get(3).map_err(backend(OP))?,
                        sealed_private: row.get(4).map_err(backend(OP))?,
                        created_at: Timestamp::from_unix(row.get(5).map_err(backend(OP))?),
                    };
                    visit(Record::Key { gun, role, key })?;
                }
                let mut proposals = tx
                    .prepare(concat!(
                        "SELECT ",
                        proposal_columns!(body),
                        " FROM proposals ORDER BY id"
                    ))
                    .map_err(backend(OP))?;
                let mut rows = proposals.query([]).map_err(backend(OP))?;
                while let Some(row) = rows.next().map_err(backend(OP))? {
                    visit(Record::Proposal(stored_proposal(row)?))?;
                }
                let mut cursors = tx
                    .prepare(concat!(
                        "SELECT ",
                        webhook_columns!(),
                        " FROM webhook_cursors ORDER BY name"
                    ))
                    .map_err(backend(OP))?;
                let mut rows = cursors.query([]).map_err(backend(OP))?;
                while let Some(row) = rows.next().map_err(backend(OP))? {
                    visit(Record::WebhookCursor(webhook_cursor(row)?))?;
                }
            }
            tx.finish().map_err(backend(OP))
        })
    }

    /// [`Store::import`] in one write transaction.
    fn import_records(
        &self,
        records: &mut dyn Iterator<Item = Result<Record, StoreError>>,
    ) -> Result<u64, StoreError> {
        const OP: &str = "import";
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(OP))?;
        let used: i64 = tx
            .query_row(
                "SELECT (SELECT COUNT(*) FROM tuf_files) + (SELECT COUNT(*) FROM changefeed)
                      + (SELECT COUNT(*) FROM online_keys) + (SELECT COUNT(*) FROM proposals)
                      + (SELECT COUNT(*) FROM webhook_cursors)",
                [],
                |row| row.get(0),
            )
            .map_err(backend(OP))?;
        if used != 0 {
            return Err(StoreError::Backend(format!(
                "sqlite {OP}: the target database already holds data: import needs an empty one"
            )));
        }
        let mut n = 0_u64;
        for record in records {
            match record? {
                // An explicit id above every one before raises the table's `sqlite_sequence`
                // entry (AUTOINCREMENT), so later proposals continue after it.
                Record::Proposal(p) => {
                    let (state, change_id) = p.state.columns();
                    let revision = i64::try_from(p.revision).map_err(|_| {
                        StoreError::Backend(format!(
                            "sqlite {OP}: proposal {} has revision {} (out of range)",
                            p.id, p.revision
                        ))
                    })?;
                    tx.execute(
                        "INSERT INTO proposals (id, gun, state, change_id, revision, body,
                             summary, proposed_by, created_at, expires_at, closed_at,
                             closed_by)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                        params![
                            p.id,
                            p.gun,
                            state,
                            change_id,
                            revision,
                            p.body,
                            p.summary,
                            p.proposed_by,
                            p.created_at.unix(),
                            p.expires_at.unix(),
                            p.closed_at.map(Timestamp::unix),
                            p.closed_by
                        ],
                    )
                }
                Record::File { gun, file } => tx.execute(
                    "INSERT INTO tuf_files (gun, role, version, sha256, data, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        gun,
                        file.role,
                        i64::try_from(file.version).unwrap_or(i64::MAX),
                        file.sha256,
                        file.bytes,
                        file.created_at.unix()
                    ],
                ),
                Record::Change(c) => tx.execute(
                    "INSERT INTO changefeed (id, gun, version, sha256, category, created_at,
                         roles)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        c.id,
                        c.gun,
                        i64::try_from(c.version).unwrap_or(i64::MAX),
                        c.sha256,
                        c.category.as_str(),
                        c.created_at.unix(),
                        super::encode_roles(&c.roles)
                    ],
                ),
                Record::WebhookCursor(w) => tx.execute(
                    concat!(
                        "INSERT INTO webhook_cursors (",
                        webhook_columns!(),
                        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                    ),
                    params![
                        w.name,
                        w.cursor,
                        w.attempts,
                        w.next_attempt_at.map(Timestamp::unix),
                        w.dead,
                        w.last_error,
                        w.last_delivered_at.map(Timestamp::unix),
                        w.lease_owner,
                        w.lease_until.map(Timestamp::unix)
                    ],
                ),
                Record::Key { gun, role, key } => tx.execute(
                    "INSERT INTO online_keys (gun, role, keyid, public, sealed_private, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        gun,
                        role,
                        key.keyid,
                        key.public,
                        key.sealed_private,
                        key.created_at.unix()
                    ],
                ),
            }
            .map_err(backend(OP))?;
            n += 1;
        }
        tx.commit().map_err(backend(OP))?;
        Ok(n)
    }
}

/// Creates `path` as an empty file readable and writable only by its owner, unless it
/// exists. SQLite gives its `-wal` and `-shm` files the same permissions as the database.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(file) => {
            drop(file);
            // The mode above is filtered through the umask, which can only remove bits; set
            // it exactly anyway so the result does not depend on the environment.
            #[cfg(unix)]
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .map_err(|err| {
                    StoreError::Backend(format!(
                        "sqlite set permissions of {}: {err}",
                        path.display()
                    ))
                })?;
            Ok(())
        }
        Err(err) if err.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(StoreError::Backend(format!(
            "sqlite create {}: {err}",
            path.display()
        ))),
    }
}

/// Brings the schema to the newest version in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    const OP: &str = "migrate schema";
    let target = i64::try_from(MIGRATIONS.len())
        .map_err(|_| StoreError::Backend(format!("sqlite {OP}: too many steps")))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend(OP))?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(backend(OP))?;
    if found == target {
        return Ok(());
    }
    let start = usize::try_from(found)
        .ok()
        .filter(|&start| start < MIGRATIONS.len())
        .ok_or_else(|| StoreError::Backend(format!("sqlite {OP}: database schema version {found} is not one this server knows (newest {target})")))?;
    for step in &MIGRATIONS[start..] {
        tx.execute_batch(step).map_err(backend(OP))?;
    }
    tx.pragma_update(None, "user_version", target)
        .map_err(backend(OP))?;
    tx.commit().map_err(backend(OP))
}

/// Whether proposal `closing.id` of `gun` is open at revision `closing.revision`, read
/// inside `tx`.
fn proposal_is_at(
    tx: &rusqlite::Transaction<'_>,
    op: &'static str,
    gun: &Gun,
    closing: &Closing<'_>,
) -> Result<bool, StoreError> {
    let Ok(revision) = i64::try_from(closing.revision) else {
        return Ok(false); // never stored
    };
    tx.prepare_cached(
        "SELECT 1 FROM proposals
         WHERE id = ?1 AND gun = ?2 AND state = 'open' AND revision = ?3",
    )
    .and_then(|mut stmt| stmt.exists(params![closing.id, gun.as_str(), revision]))
    .map_err(backend(op))
}

/// Closes open proposal `closing.id` of `gun` inside `tx`, keeping `closing.body` and
/// `closing.summary`:
/// published by changefeed entry `published` when given, else withdrawn. Fails with
/// [`StoreError::ProposalChanged`], writing nothing, unless it is open at revision
/// `closing.revision`.
fn close_open_proposal(
    tx: &rusqlite::Transaction<'_>,
    op: &'static str,
    gun: &Gun,
    closing: &Closing<'_>,
    published: Option<i64>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let changed = || StoreError::ProposalChanged {
        gun: gun.as_str().to_owned(),
        id: closing.id,
    };
    let revision = i64::try_from(closing.revision).map_err(|_| changed())?;
    let (state, _) = published
        .map_or(ProposalState::Withdrawn, ProposalState::Published)
        .columns();
    let closed = tx
        .prepare_cached(
            "UPDATE proposals
             SET state = ?1, change_id = ?2, body = ?3, summary = ?4, closed_by = ?5,
                 closed_at = ?6
             WHERE id = ?7 AND gun = ?8 AND state = 'open' AND revision = ?9",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                state,
                published,
                closing.body,
                closing.summary,
                closing.by,
                now.unix(),
                closing.id,
                gun.as_str(),
                revision
            ])
        })
        .map_err(backend(op))?;
    if closed == 1 {
        Ok(())
    } else {
        Err(changed())
    }
}

/// Appends one changefeed entry, recording `roles`, inside `tx` and returns its id.
fn insert_change(
    tx: &rusqlite::Transaction<'_>,
    gun: &Gun,
    version: i64,
    sha256: &str,
    category: ChangeCategory,
    roles: &[(String, u64)],
    now: Timestamp,
) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO changefeed (gun, version, sha256, category, created_at, roles)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            params![
                gun.as_str(),
                version,
                sha256,
                category.as_str(),
                now.unix(),
                super::encode_roles(roles)
            ],
            |row| row.get(0),
        )
    })
    .map_err(backend("append changefeed"))
}

/// Whether `err` is a PRIMARY KEY or UNIQUE constraint failure.
fn is_uniqueness_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || e.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// Wraps a SQLite error as a backend error naming the operation; a full disk is
/// [`StoreError::Unavailable`] instead (503 with `Retry-After`: nothing was written, and the
/// same request succeeds once space is freed).
fn backend(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |err| match &err {
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::DiskFull => {
            StoreError::Unavailable(format!("sqlite {op}: the disk is full: {err}"))
        }
        _ => StoreError::Backend(format!("sqlite {op}: {err}")),
    }
}

/// Reads `role, version, sha256, data, created_at`.
fn stored_file(row: &Row<'_>) -> rusqlite::Result<StoredFile> {
    Ok(StoredFile {
        role: row.get(0)?,
        version: row.get(1)?,
        sha256: row.get(2)?,
        bytes: row.get(3)?,
        created_at: Timestamp::from_unix(row.get(4)?),
    })
}

/// Reads `keyid, public, sealed_private, created_at`.
fn stored_key(row: &Row<'_>) -> rusqlite::Result<StoredKey> {
    Ok(StoredKey {
        keyid: row.get(0)?,
        public: row.get(1)?,
        sealed_private: row.get(2)?,
        created_at: Timestamp::from_unix(row.get(3)?),
    })
}

/// Reads the columns of `change_columns!`.
fn change(row: &Row<'_>) -> Result<Change, StoreError> {
    const OP: &str = "read changefeed";
    let category: String = row.get(4).map_err(backend(OP))?;
    let category = match category.as_str() {
        "update" => ChangeCategory::Update,
        "deletion" => ChangeCategory::Deletion,
        other => {
            return Err(StoreError::Backend(format!(
                "sqlite {OP}: unknown category {other:?}"
            )))
        }
    };
    let id: i64 = row.get(0).map_err(backend(OP))?;
    let roles: String = row.get(6).map_err(backend(OP))?;
    Ok(Change {
        id,
        gun: row.get(1).map_err(backend(OP))?,
        version: row.get(2).map_err(backend(OP))?,
        sha256: row.get(3).map_err(backend(OP))?,
        category,
        created_at: Timestamp::from_unix(row.get(5).map_err(backend(OP))?),
        roles: super::decode_roles("sqlite", id, &roles)?,
    })
}

/// Reads the columns of `webhook_columns!`.
fn webhook_cursor(row: &Row<'_>) -> Result<WebhookCursor, StoreError> {
    const OP: &str = "read webhook cursor";
    let time = |i: usize| -> Result<Option<Timestamp>, StoreError> {
        Ok(row
            .get::<_, Option<i64>>(i)
            .map_err(backend(OP))?
            .map(Timestamp::from_unix))
    };
    Ok(WebhookCursor {
        name: row.get(0).map_err(backend(OP))?,
        cursor: row.get(1).map_err(backend(OP))?,
        attempts: row.get(2).map_err(backend(OP))?,
        next_attempt_at: time(3)?,
        dead: row.get(4).map_err(backend(OP))?,
        last_error: row.get(5).map_err(backend(OP))?,
        last_delivered_at: time(6)?,
        lease_owner: row.get(7).map_err(backend(OP))?,
        lease_until: time(8)?,
    })
}

/// Reads the columns of `proposal_columns!` (either form).
fn stored_proposal(row: &Row<'_>) -> Result<StoredProposal, StoreError> {
    const OP: &str = "read proposal";
    let id: i64 = row.get(0).map_err(backend(OP))?;
    let state: String = row.get(2).map_err(backend(OP))?;
    let change_id: Option<i64> = row.get(3).map_err(backend(OP))?;
    let state = ProposalState::from_columns(&state, change_id).ok_or_else(|| {
        StoreError::Backend(format!(
            "sqlite {OP}: proposal {id} has state {state:?} (change {change_id:?})"
        ))
    })?;
    let revision: i64 = row.get(4).map_err(backend(OP))?;
    Ok(StoredProposal {
        id,
        gun: row.get(1).map_err(backend(OP))?,
        state,
        revision: u64::try_from(revision).map_err(|_| {
            StoreError::Backend(format!(
                "sqlite {OP}: proposal {id} has revision {revision}"
            ))
        })?,
        body: row.get(5).map_err(backend(OP))?,
        summary: row.get(6).map_err(backend(OP))?,
        proposed_by: row.get(7).map_err(backend(OP))?,
        created_at: Timestamp::from_unix(row.get(8).map_err(backend(OP))?),
        expires_at: Timestamp::from_unix(row.get(9).map_err(backend(OP))?),
        closed_at: row
            .get::<_, Option<i64>>(10)
            .map_err(backend(OP))?
            .map(Timestamp::from_unix),
        closed_by: row.get(11).map_err(backend(OP))?,
    })
}

/// Read-only connections, opened on demand up to [`MAX_READERS`] and kept for reuse.
struct ReaderPool {
    path: PathBuf,
    state: Mutex<PoolState>,
    /// Signalled when a connection is returned or an open slot is freed.
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Connection>,
    /// Connections open, idle or checked out (or being opened).
    open: usize,
}

/// A checked-out reader; returns it to the pool when dropped (also on unwind).
struct Lease<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut state = self.pool.lock();
        match self.conn.take() {
            Some(conn) => state.idle.push(conn),
            None => state.open = state.open.saturating_sub(1),
        }
        drop(state);
        self.pool.freed.notify_one();
    }
}

impl ReaderPool {
    fn new(path: PathBuf) -> Self {
        ReaderPool {
            path,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // The state is a list and a counter, updated in single steps: still consistent
        // after a panic elsewhere.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on a reader connection, waiting for one when all are busy.
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let lease = self.checkout()?;
        match &lease.conn {
            Some(conn) => f(conn),
            None => Err(StoreError::Backend(
                "sqlite reader pool: empty lease".to_owned(),
            )),
        }
    }

    fn checkout(&self) -> Result<Lease<'_>, StoreError> {
        let mut state = self.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Lease {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < MAX_READERS {
                state.open += 1;
                drop(state);
                // From here on the slot is ours: a lease with no connection gives it back.
                let mut lease = Lease {
                    pool: self,
                    conn: None,
                };
                lease.conn = Some(self.connect()?);
                return Ok(lease);
            }
            state = self
                .freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(backend("open reader"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(backend("set busy timeout"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(backend("enable foreign keys"))?;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    //! What only SQLite has: its settings, files, reader pool and locking. The behaviour every
    //! store promises is tested on both backends by `server/tests/store_contract.rs`.

    use std::sync::{Arc, Barrier};
    use std::thread;

    use tempfile::TempDir;

    use super::*;

    const NOW: Timestamp = Timestamp::from_unix(1_900_000_000);

    fn gun(s: &str) -> Gun {
        Gun::new(s).expect("valid gun")
    }

    fn file(role: &str, version: u64) -> NewFile {
        NewFile {
            role: role.to_owned(),
            version,
            bytes: format!("{{\"signed\":{{\"_type\":\"{role}\",\"version\":{version}}}}}")
                .into_bytes(),
        }
    }

    fn open(dir: &TempDir) -> SqliteStore {
        SqliteStore::open(&dir.path().join("vouch.db")).expect("open store")
    }

    fn all_changes(store: &SqliteStore, gun: Option<&Gun>) -> Vec<Change> {
        store
            .changes(gun, None, Direction::Forward, usize::MAX)
            .expect("changes")
    }

    #[test]
    fn current_seeks_by_role_instead_of_scanning_versions() {
        let dir = TempDir::new().expect("tempdir");
        let store = open(&dir);
        let plan = store
            .readers
            .with(|conn| {
                let mut stmt = conn
                    .prepare(&format!("EXPLAIN QUERY PLAN {CURRENT_SQL}"))
                    .map_err(backend("plan"))?;
                let rows = stmt
                    .query_map(["registry.example/app"], |row| row.get::<_, String>(3))
                    .map_err(backend("plan"))?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend("plan"))
            })
            .expect("plan");
        // The outer loop is the (few) roles; each file is one primary-key lookup.
        let outer_roles = plan.iter().position(|step| step == "SCAN roles");
        let lookup = plan
            .iter()
            .position(|step| step.starts_with("SEARCH f ") && step.contains("version=?"));
        assert!(
            matches!((outer_roles, lookup), (Some(r), Some(l)) if r < l),
            "{plan:#?}"
        );
        assert!(
            !plan
                .iter()
                .any(|step| step.starts_with("SEARCH f ") && !step.contains("version=?")),
            "{plan:#?}"
        );
    }

    #[test]
    fn two_stores_on_one_file_still_write_each_version_once() {
        // Two `SqliteStore`s stand in for two server processes sharing the file: only
        // SQLite's own locking separates them.
        const THREADS: usize = 16;
        let dir = TempDir::new().expect("tempdir");
        let stores = [Arc::new(open(&dir)), Arc::new(open(&dir))];
        let g = gun("registry.example/app");
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (store, g, barrier) =
                    (Arc::clone(&stores[i % 2]), g.clone(), Arc::clone(&barrier));
                thread::spawn(move || {
                    let mine = NewFile {
                        role: "root".to_owned(),
                        version: 1,
                        bytes: format!("writer {i}").into_bytes(),
                    };
                    barrier.wait();
                    store.publish(&g, None, &[mine], NOW)
                })
            })
            .collect();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(
            results
                .iter()
                .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict { .. }))),
            "{results:?}"
        );
        assert_eq!(all_changes(&stores[1], None).len(), 1);
    }

    #[test]
    fn database_settings() {
        let dir = TempDir::new().expect("tempdir");
        let store = open(&dir);
        store.ping().expect("ping");
        store.integrity_check().expect("integrity");
        {
            let writer = store.writer();
            let pragma = |name: &str| -> String {
                writer
                    .query_row(&format!("PRAGMA {name}"), [], |row| {
                        row.get::<_, rusqlite::types::Value>(0)
                    })
                    .map(|v| format!("{v:?}"))
                    .expect("pragma")
            };
            assert_eq!(pragma("journal_mode"), r#"Text("wal")"#);
            assert_eq!(pragma("synchronous"), "Integer(2)", "FULL");
            assert_eq!(pragma("foreign_keys"), "Integer(1)");
            assert_eq!(
                pragma("user_version"),
                format!("Integer({})", MIGRATIONS.len())
            );
            assert_eq!(pragma("busy_timeout"), "Integer(5000)");
        }
        let err = store.readers.with(|conn| {
            conn.execute("DELETE FROM tuf_files", [])
                .map_err(backend("write through reader"))
        });
        assert!(
            matches!(err, Err(StoreError::Backend(_))),
            "readers are read-only: {err:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn database_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new().expect("tempdir");
        let store = open(&dir);
        store
            .publish(&gun("registry.example/app"), None, &[file("root", 1)], NOW)
            .expect("publish");
        for name in ["vouch.db", "vouch.db-wal", "vouch.db-shm"] {
            let meta = std::fs::metadata(dir.path().join(name)).expect(name);
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn a_full_disk_is_unavailable_not_a_fault() {
        let full = rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_FULL), None);
        assert!(
            matches!(backend("publish")(full), StoreError::Unavailable(m) if m.contains("disk is full"))
        );
        let other = rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_CORRUPT), None);
        assert!(matches!(backend("publish")(other), StoreError::Backend(_)));
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = TempDir::new().expect("tempdir");
        let path = dir.path().join("vouch.db");
        drop(SqliteStore::open(&path).expect("open"));
        let conn = Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", 99).expect("bump");
        drop(conn);
        let err = SqliteStore::open(&path).expect_err("newer schema");
        assert!(err.to_string().contains("99"), "{err}");
    }

    #[test]
    fn a_database_built_by_the_first_two_steps_migrates_with_empty_roles() {
        let dir = TempDir::new().expect("tempdir");
        let path = dir.path().join("vouch.db");
        {
            // What a server of schema 2 wrote: its steps only, and one changefeed entry.
            let conn = Connection::open(&path).expect("raw open");
            for step in &MIGRATIONS[..2] {
                conn.execute_batch(step).expect("step");
            }
            conn.execute_batch(
                "PRAGMA user_version = 2;
                 INSERT INTO changefeed (gun, version, sha256, category, created_at)
                 VALUES ('registry.example/app', 1, 'abc', 'update', 1900000000);",
            )
            .expect("schema 2 data");
        }
        let store = SqliteStore::open(&path).expect("open migrates");
        let old = all_changes(&store, None);
        assert_eq!(
            old.iter()
                .map(|c| (c.id, c.version, c.roles.clone()))
                .collect::<Vec<_>>(),
            vec![(1, 1, vec![])]
        );
        assert_eq!(store.webhook_cursors().expect("cursors"), vec![]);
        let g = gun("registry.example/app");
        store
            .publish(&g, None, &[file("timestamp", 2)], NOW)
            .expect("publish");
        assert_eq!(
            all_changes(&store, None)[1].roles,
            vec![("timestamp".to_owned(), 2)]
        );
    }

    #[test]
    fn not_a_database_is_a_backend_error() {
        let dir = TempDir::new().expect("tempdir");
        let path = dir.path().join("vouch.db");
        std::fs::write(&path, vec![0x5a_u8; 8192]).expect("write junk");
        assert!(matches!(
            SqliteStore::open(&path),
            Err(StoreError::Backend(_))
        ));
        let missing_dir = dir.path().join("no/such/dir/vouch.db");
        assert!(matches!(
            SqliteStore::open(&missing_dir),
            Err(StoreError::Backend(_))
        ));
    }

    #[test]
    fn reads_do_not_wait_for_an_open_write() {
        let dir = TempDir::new().expect("tempdir");
        let store = open(&dir);
        let g = gun("registry.example/app");
        store
            .publish(&g, None, &[file("root", 1)], NOW)
            .expect("publish");

        let mut writer = store.writer();
        let tx = writer
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        tx.execute("DELETE FROM tuf_files", [])
            .expect("uncommitted delete");
        // The writer is locked and mid-transaction; readers see the last commit.
        assert_eq!(
            store
                .get_current(&g, "root")
                .expect("read")
                .map(|f| f.version),
            Some(1)
        );
        assert_eq!(store.current(&g).expect("read").len(), 1);
        drop(tx); // rolls back
        drop(writer);
        assert_eq!(store.current(&g).expect("read").len(), 1);
    }

    #[test]
    fn reader_pool_is_capped_and_reused() {
        const THREADS: usize = 3 * MAX_READERS;
        let dir = TempDir::new().expect("tempdir");
        let store = Arc::new(open(&dir));
        let g = gun("registry.example/app");
        store
            .publish(&g, None, &[file("root", 1)], NOW)
            .expect("publish");
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (store, g, barrier) = (Arc::clone(&store), g.clone(), Arc::clone(&barrier));
                thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..50 {
                        assert_eq!(store.current(&g).expect("read").len(), 1);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        let state = store.readers.lock();
        assert!(
            state.open <= MAX_READERS && state.open >= 1,
            "{}",
            state.open
        );
        assert_eq!(state.idle.len(), state.open, "every lease returned");
    }

    #[test]
    fn store_is_send_and_sync() {
        fn assert_store<T: Store>() {}
        assert_store::<SqliteStore>();
    }
}
