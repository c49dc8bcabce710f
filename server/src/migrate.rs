//! `vouch-server migrate-store`: copies everything one store holds into an empty one (SQLite
//! into PostgreSQL, or back), then reads both back and compares them.
//!
//! The copy is [`Store::export`] on the source streamed into [`Store::import`] on the
//! target: one read snapshot on one side, one transaction on the other, so an interrupted
//! or failed copy leaves the target empty. Every version of every file, every changefeed
//! entry (ids kept, so clients following the feed continue where they were) and every
//! online key (still sealed under the same key-encryption key) is carried over. Stop the
//! servers writing to the source first: what they write after the snapshot is not copied.

use std::sync::mpsc;

use ring::digest::{Context, SHA256};

use crate::store::{Record, Store, StoreError};

/// What a migration copied, and the digest both stores read back to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migrated {
    /// File versions copied.
    pub files: u64,
    /// Changefeed entries copied.
    pub changes: u64,
    /// Online keys copied.
    pub keys: u64,
    /// SHA-256 over every record, identical when read back from both stores.
    pub digest: String,
}

/// Records in flight between the reading and the writing side.
const IN_FLIGHT: usize = 256;

/// Copies `from` into `to` (which must be empty) and verifies the copy by reading both back.
pub fn migrate_store(from: &dyn Store, to: &dyn Store) -> Result<Migrated, StoreError> {
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Result<Record, StoreError>>(IN_FLIGHT);
        let reader = scope.spawn(move || {
            let result = from.export(&mut |record| {
                tx.send(Ok(record))
                    .map_err(|_| StoreError::Backend("the target stopped reading".into()))
            });
            if let Err(e) = &result {
                // The writing side must see the failure, or it would commit a partial copy.
                let _ = tx.send(Err(StoreError::Backend(format!("reading the source: {e}"))));
            }
            result
        });
        let written = to.import(&mut rx.into_iter());
        let read = reader
            .join()
            .map_err(|_| StoreError::Backend("the source reader panicked".into()))?;
        read?;
        written
    })?;
    let source = summary(from)?;
    let target = summary(to)?;
    if source != target {
        return Err(StoreError::Backend(format!(
            "the copy does not read back as the source: source {source:?}, target {target:?}"
        )));
    }
    Ok(source)
}

/// Counts and a digest of everything `store` holds, in export order.
pub fn summary(store: &dyn Store) -> Result<Migrated, StoreError> {
    let mut ctx = Context::new(&SHA256);
    let (mut files, mut changes, mut keys) = (0, 0, 0);
    let field = |ctx: &mut Context, bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    store.export(&mut |record| {
        match &record {
            Record::Proposal(_) => {}
            Record::File { gun, file } => {
                files += 1;
                field(&mut ctx, b"file");
                field(&mut ctx, gun.as_bytes());
                field(&mut ctx, file.role.as_bytes());
                field(&mut ctx, &file.version.to_be_bytes());
                field(&mut ctx, file.sha256.as_bytes());
                field(&mut ctx, &file.bytes);
                field(&mut ctx, &file.created_at.unix().to_be_bytes());
            }
            Record::Change(c) => {
                changes += 1;
                field(&mut ctx, b"change");
                field(&mut ctx, &c.id.to_be_bytes());
                field(&mut ctx, c.gun.as_bytes());
                field(&mut ctx, &c.version.to_be_bytes());
                field(&mut ctx, c.sha256.as_bytes());
                field(&mut ctx, c.category.as_str().as_bytes());
                field(&mut ctx, &c.created_at.unix().to_be_bytes());
            }
            Record::Key { gun, role, key } => {
                keys += 1;
                field(&mut ctx, b"key");
                field(&mut ctx, gun.as_bytes());
                field(&mut ctx, role.as_bytes());
                field(&mut ctx, key.keyid.as_bytes());
                field(&mut ctx, key.public.as_bytes());
                field(&mut ctx, &key.sealed_private);
                field(&mut ctx, &key.created_at.unix().to_be_bytes());
            }
        }
        Ok(())
    })?;
    Ok(Migrated {
        files,
        changes,
        keys,
        digest: vouch_tuf::hex::encode(ctx.finish()),
    })
}
