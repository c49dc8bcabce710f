//! Re-signing the online roles of mirrored repositories when due, whether or not anyone
//! reads them from the server: the server re-signs a timestamp when it is read, and a
//! repository consumers read only from its registry would otherwise let its registry copy
//! expire.
//!
//! Every `mirror.refresh_interval_seconds` the refresher brings its set of mirrored
//! repositories up to date from the changefeed (at start, from its beginning; deleted
//! repositories leave the set), then asks the service to re-sign each one that is due
//! ([`Service::refresh`], cheap when nothing is: a time kept in memory is compared). A
//! re-sign is a changefeed entry, which the registry's mirror worker pushes.
//!
//! Every replica runs it: concurrent re-signs are safe (one wins, the others conflict and
//! take the winner's), so no lease is needed.
//!
//! What it is not: a pusher. It only re-signs; the push is the worker's (`super`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use vouch_tuf::api::event::EventKind;
use vouch_tuf::reference::Gun;

use crate::events::{read_store_behind, Hub, Read, PAGE};
use crate::service::Service;
use crate::store::Store;

/// Most pages of the changefeed read per round: a long changefeed is caught up over several
/// rounds rather than in one long read.
const PAGES_PER_ROUND: usize = 200;

/// The refresher's loop: runs until aborted. `mirrored` says which repositories are.
pub(super) async fn run(
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    service: Arc<Service>,
    mirrored: impl Fn(&str) -> bool + Send + Sync + 'static,
    every: Duration,
) {
    let mut known = BTreeSet::new();
    let mut pos = 0u64;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        pos = catch_up(&store, &hub, &mirrored, &mut known, pos).await;
        let guns: Vec<Gun> = known.iter().filter_map(|g| Gun::new(g).ok()).collect();
        let service = service.clone();
        let done = tokio::task::spawn_blocking(move || {
            for gun in guns {
                if let Err(e) = service.refresh(&gun) {
                    tracing::warn!(%gun, error = %e, "mirror: cannot re-sign the online roles of a mirrored repository");
                }
            }
        })
        .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "mirror: the re-signing task failed");
        }
    }
}

/// Reads the changefeed after `pos` (at most [`PAGES_PER_ROUND`] pages) into `known`:
/// mirrored repositories that were updated join it, deleted ones leave it. Returns the
/// position reached.
async fn catch_up(
    store: &Arc<dyn Store>,
    hub: &Hub,
    mirrored: &impl Fn(&str) -> bool,
    known: &mut BTreeSet<String>,
    mut pos: u64,
) -> u64 {
    for _ in 0..PAGES_PER_ROUND {
        let read = match hub.read(pos, None, PAGE) {
            Read::Entries(entries, p) => Ok((entries, p)),
            Read::Behind => read_store_behind(store.clone(), hub, None, pos).await,
        };
        let (entries, next) = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "mirror: cannot read the changefeed for re-signing; retrying next round");
                break;
            }
        };
        for e in &entries {
            if !mirrored(&e.event.gun) {
                continue;
            }
            match e.event.kind {
                EventKind::Update => {
                    known.insert(e.event.gun.clone());
                }
                EventKind::Deletion => {
                    known.remove(&e.event.gun);
                }
            }
        }
        let done = entries.len() < PAGE || next <= pos;
        pos = next.max(pos);
        if done {
            break;
        }
    }
    pos
}
