//! `vouch-server migrate-store`: copies everything one store holds into an empty one (SQLite
//! into PostgreSQL, or back), then reads both back and compares them.
//!
//! The copy is [`Store::export`] on the source streamed into [`Store::import`] on the
//! target: one read snapshot on one side, one transaction on the other, so an interrupted
//! or failed copy leaves the target empty. Every version of every file, every changefeed
//! entry (ids and recorded roles kept, so clients following the feed continue where they
//! were), every online key (still sealed under the same key-encryption key), every proposal,
//! open or closed (ids, revisions and states kept), and every webhook subscription's delivery
//! cursor (so no subscriber is sent an entry twice or misses one), is carried over. Stop the servers writing to the source
//! first: what they write after the snapshot is not copied.

use std::sync::mpsc;

use ring::digest::{Context, SHA256};

use vouch_tuf::time::Timestamp;

use crate::store::{ProposalState, Record, Store, StoreError};

/// What a migration copied, and the digest both stores read back to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migrated {
    /// File versions copied.
    pub files: u64,
    /// Changefeed entries copied.
    pub changes: u64,
    /// Online keys copied.
    pub keys: u64,
    /// Proposals copied (open and closed).
    pub proposals: u64,
    /// Webhook delivery cursors copied.
    pub webhook_cursors: u64,
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
    let (mut files, mut changes, mut keys, mut proposals, mut webhook_cursors) = (0, 0, 0, 0, 0);
    let field = |ctx: &mut Context, bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    // Absent and present are told apart by the length prefix (0 against 8).
    let time = |ctx: &mut Context, t: Option<Timestamp>| {
        let t = t.map(|t| t.unix().to_be_bytes());
        field(ctx, t.as_ref().map_or(&[][..], |b| &b[..]));
    };
    // Absent text is told apart from empty text by the flag before it.
    let text = |ctx: &mut Context, t: Option<&str>| {
        field(ctx, &[u8::from(t.is_some())]);
        field(ctx, t.unwrap_or("").as_bytes());
    };
    store.export(&mut |record| {
        match &record {
            Record::Proposal(p) => {
                proposals += 1;
                let (state, change) = match p.state {
                    ProposalState::Open => ("open", 0),
                    ProposalState::Published(change) => ("published", change),
                    ProposalState::Withdrawn => ("withdrawn", 0),
                };
                field(&mut ctx, b"proposal");
                field(&mut ctx, &p.id.to_be_bytes());
                field(&mut ctx, p.gun.as_bytes());
                field(&mut ctx, state.as_bytes());
                field(&mut ctx, &change.to_be_bytes());
                field(&mut ctx, &p.revision.to_be_bytes());
                field(&mut ctx, &p.body);
                field(&mut ctx, &p.summary);
                field(&mut ctx, p.proposed_by.as_bytes());
                field(&mut ctx, &p.created_at.unix().to_be_bytes());
                field(&mut ctx, &p.expires_at.unix().to_be_bytes());
                time(&mut ctx, p.closed_at);
                text(&mut ctx, p.closed_by.as_deref());
            }
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
                field(&mut ctx, &(c.roles.len() as u64).to_be_bytes());
                for (role, version) in &c.roles {
                    field(&mut ctx, role.as_bytes());
                    field(&mut ctx, &version.to_be_bytes());
                }
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
            Record::WebhookCursor(w) => {
                webhook_cursors += 1;
                field(&mut ctx, b"webhook cursor");
                field(&mut ctx, w.name.as_bytes());
                field(&mut ctx, &w.cursor.to_be_bytes());
                field(&mut ctx, &w.attempts.to_be_bytes());
                time(&mut ctx, w.next_attempt_at);
                field(&mut ctx, &[u8::from(w.dead)]);
                text(&mut ctx, w.last_error.as_deref());
                time(&mut ctx, w.last_delivered_at);
                text(&mut ctx, w.lease_owner.as_deref());
                time(&mut ctx, w.lease_until);
            }
        }
        Ok(())
    })?;
    Ok(Migrated {
        files,
        changes,
        keys,
        proposals,
        webhook_cursors,
        digest: vouch_tuf::hex::encode(ctx.finish()),
    })
}
