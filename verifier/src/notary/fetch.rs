//! Fetching a Notary collection over a [`Transport`] and verifying it.
//!
//! [`fetch_collection`] drives a [`NotaryVerifier`] with the file names the notary client
//! uses, in its order:
//!
//! - [`Layout::Server`] (a notary server's `…/v2/<gun>/_trust/tuf/`, or a copy of one):
//!   `root.json` (the latest root), `N.root.json` for each version between the trusted one and
//!   the latest, `timestamp.json`, `snapshot.<sha256 hex>.json`, `targets.<sha256 hex>.json`
//!   and `targets/<name>.<sha256 hex>.json` (by the checksum trusted metadata gives, as
//!   notary-server's routes serve them).
//! - [`Layout::ClientCache`] (the notary client's `…/tuf/<gun>/metadata/`, no network):
//!   `root.json`, `timestamp.json`, `snapshot.json`, `targets.json`,
//!   `targets/<name>.json`, the files as the client cached them. A newer cached root than the
//!   trusted one needs its intermediate versions (`N.root.json`) beside it.
//!
//! Every fetch is capped: root and timestamp by their fixed caps, the others by the length
//! trusted metadata gives within their caps ([`Limits`]); and all the fetches of one update
//! share one deadline, [`Limits::max_update_duration`] from its start.

use std::path::{Path, PathBuf};

use crate::limits::Limits;
use crate::transport::{DirectoryTransport, Transport};
use vouch_tuf::reference::Gun;
use vouch_tuf::time::Timestamp as Instant;

use super::client::{ExpiredMetadata, NotaryCollection, NotaryState, NotaryVerifier};
use super::NotaryVerifyError;

/// Which file names to ask a transport for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A notary server's file names (snapshot and targets by checksum).
    Server,
    /// The notary client's cache directory (plain role names).
    ClientCache,
}

/// Fetches and verifies one collection (see the module documentation).
pub fn fetch_collection(
    transport: &dyn Transport,
    layout: Layout,
    state: &NotaryState,
    now: Instant,
    expired: ExpiredMetadata,
    limits: Limits,
) -> Result<NotaryCollection, NotaryVerifyError> {
    // One deadline for every fetch of the update, as the TUF updater has: a server answering
    // each request just within its timeout cannot stretch an update over hundreds of them.
    let started = std::time::Instant::now();
    let deadline = started
        .checked_add(limits.max_update_duration)
        .unwrap_or(started);
    let get = |path: &str, max: u64| {
        transport
            .fetch_by(path, max, deadline)
            .map_err(|source| NotaryVerifyError::Transport {
                what: path.to_owned(),
                source,
            })
    };
    let mut v = NotaryVerifier::new(state, now, expired, limits)?;

    let latest = get("root.json", limits.root_max_bytes)?;
    let latest_version = NotaryVerifier::claimed_root_version(&latest)?;
    let trusted = v.root_version();
    if latest_version < trusted {
        return Err(NotaryVerifyError::RootRollback {
            trusted,
            found: latest_version,
        });
    }
    if latest_version == trusted {
        v.update_root(&latest)?;
    } else {
        if latest_version - trusted > u64::from(limits.max_root_rotations) {
            return Err(NotaryVerifyError::TooManyRootVersions {
                max: limits.max_root_rotations,
            });
        }
        for version in trusted + 1..latest_version {
            let bytes = get(&format!("{version}.root.json"), limits.root_max_bytes)?;
            v.update_root(&bytes)?;
        }
        v.update_root(&latest)?;
    }

    v.update_timestamp(&get("timestamp.json", limits.timestamp_max_bytes)?)?;
    let (consistent, max) = v.snapshot_request()?;
    let snapshot_path = match layout {
        Layout::Server => consistent,
        Layout::ClientCache => "snapshot.json".to_owned(),
    };
    v.update_snapshot(&get(&snapshot_path, max)?)?;
    while let Some(req) = v.next_targets() {
        let path = match layout {
            Layout::Server => &req.consistent_name,
            Layout::ClientCache => &req.cached_name,
        };
        let bytes = get(path, req.max_len)?;
        v.update_targets(&req.role, &bytes)?;
    }
    v.finish()
}

/// Where the notary client caches the metadata of `gun` under its trust directory
/// (`~/.docker/trust` for Docker, `~/.notary` for the notary command): `TRUST_DIR/tuf/GUN/metadata/`.
/// The GUN is a checked [`Gun`], so it cannot lead out of the trust directory.
///
/// ```
/// use std::path::Path;
/// use vouch_tuf::reference::Gun;
/// use vouch_verifier::notary::client_metadata_dir;
/// let gun = Gun::new("docker.io/library/app").unwrap();
/// assert_eq!(
///     client_metadata_dir(Path::new("/home/me/.docker/trust"), &gun),
///     Path::new("/home/me/.docker/trust/tuf/docker.io/library/app/metadata")
/// );
/// ```
pub fn client_metadata_dir(trust_dir: &Path, gun: &Gun) -> PathBuf {
    trust_dir.join("tuf").join(gun.as_str()).join("metadata")
}

/// The root the notary client trusts for `gun` (its cached `root.json`, read with the root
/// size cap), as the starting state of a verification.
pub fn client_trusted_root(
    trust_dir: &Path,
    gun: &Gun,
    limits: Limits,
) -> Result<NotaryState, NotaryVerifyError> {
    let dir = DirectoryTransport::new(client_metadata_dir(trust_dir, gun));
    let root = dir
        .fetch("root.json", limits.root_max_bytes)
        .map_err(|source| NotaryVerifyError::Transport {
            what: format!("the notary client's trusted root for {gun}"),
            source,
        })?;
    Ok(NotaryState::from_trusted_root(gun.as_str(), root))
}
