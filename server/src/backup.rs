//! Online backup of the SQLite store: a consistent copy taken while the server runs.
//!
//! The copy is made with SQLite's online backup API in a single step: it copies every page of
//! one snapshot of the database inside a read transaction (writers carry on in WAL mode), so
//! a publish committing meanwhile is either wholly in the copy or not at all. The copy is then
//! opened and checked with `PRAGMA integrity_check`. The key-encryption key is not in the
//! database: back it up separately (see `docs/operations.md`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

/// Copies the database at `db` to the new file `to` (which must not exist), mode 0600.
pub fn backup(db: &Path, to: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(db.exists(), "no database at {}", db.display());
    anyhow::ensure!(
        !to.exists(),
        "{} already exists: give a new file name",
        to.display()
    );
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", db.display()))?;
    conn.busy_timeout(BUSY_WAIT)?;
    // Create the file first so it never exists with a looser mode.
    crate::config::write_private_file(to, b"")
        .with_context(|| format!("creating {}", to.display()))?;
    if let Err(e) = copy(&conn, to) {
        let _ = std::fs::remove_file(to);
        return Err(e).with_context(|| format!("copying {} to {}", db.display(), to.display()));
    }
    let check = Connection::open_with_flags(to, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let result: String = check.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    anyhow::ensure!(
        result == "ok",
        "the copy at {} fails its integrity check: {result}",
        to.display()
    );
    Ok(())
}

/// How long the copy waits for a lock it needs (the server's checkpoints are short).
const BUSY_WAIT: Duration = Duration::from_secs(30);

/// Copies all of `from` into the new, empty file `to` in one backup step.
fn copy(from: &Connection, to: &Path) -> rusqlite::Result<()> {
    use rusqlite::backup::{Backup, StepResult};
    let mut dest = Connection::open(to)?;
    let backup = Backup::new(from, &mut dest)?;
    let deadline = Instant::now() + BUSY_WAIT;
    loop {
        // All pages in one step: one read transaction, so one consistent snapshot (a
        // stepwise copy would restart whenever the server writes in between).
        match backup.step(-1)? {
            StepResult::Done => break,
            StepResult::Busy | StepResult::Locked if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some("the database stayed locked".into()),
                ))
            }
        }
    }
    drop(backup);
    // The pages came with the live database's WAL mode; a backup is one self-contained file
    // (the server switches a restored copy back to WAL when it opens it).
    dest.pragma_update(None, "journal_mode", "DELETE")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::{NewFile, SqliteStore, Store};
    use vouch_tuf::reference::Gun;
    use vouch_tuf::time::Timestamp;

    #[test]
    fn copy_of_a_live_store_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("vouch.db");
        let store = SqliteStore::open(&db).unwrap();
        let gun = Gun::new("example.com/app").unwrap();
        let file = |role: &str| NewFile {
            role: role.into(),
            version: 1,
            bytes: format!("{{\"{role}\":1}}").into_bytes(),
        };
        store
            .publish(
                &gun,
                None,
                &[file("root"), file("targets"), file("timestamp")],
                Timestamp::from_unix(1_800_000_000),
            )
            .unwrap();
        let to = dir.path().join("backup.db");
        backup(&db, &to).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&to).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // One self-contained file: no journal or WAL left beside it.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("backup"))
            .collect();
        names.sort();
        assert_eq!(names, ["backup.db"]);
        // The store is still usable while and after the copy is taken.
        assert_eq!(store.current(&gun).unwrap().len(), 3);
        let copy = SqliteStore::open(&to).unwrap();
        assert_eq!(copy.current(&gun).unwrap(), store.current(&gun).unwrap());
        assert!(
            backup(&db, &to).is_err(),
            "an existing file is not overwritten"
        );
    }
}
