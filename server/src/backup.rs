//! Online backup of the SQLite store: a consistent copy taken while the server runs.
//!
//! The copy is made with SQLite's `VACUUM INTO`, which reads one snapshot of the database in a
//! read transaction (writers carry on in WAL mode) and writes it, compacted, to a new file.
//! The copy is then opened and checked with `PRAGMA integrity_check`. The key-encryption key
//! is not in the database: back it up separately (see `docs/operations.md`).

use std::path::Path;

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
    let target = to
        .to_str()
        .context("the backup path must be valid UTF-8")?
        .to_owned();
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", db.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    // Create the file first so it never exists with a looser mode.
    crate::config::write_private_file(to, b"")
        .with_context(|| format!("creating {}", to.display()))?;
    let copied = conn.execute("VACUUM INTO ?1", [&target]);
    if let Err(e) = copied {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{NewFile, Store};
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
