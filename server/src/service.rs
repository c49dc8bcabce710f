//! The repository operations behind the HTTP API, as blocking calls (the HTTP layer runs them
//! on the blocking thread pool): load state, validate, store.

use std::sync::Arc;

use serde_json::json;
use vouch_tuf::reference::Gun;
use vouch_tuf::time::Timestamp;

use crate::config::Limits;
use crate::error::AppError;
use crate::keys::OnlineKeys;
use crate::routes::FileRef;
use crate::store::{Change, Direction, Store, StoreError, StoredFile};
use crate::validate::{refresh_online, validate_update, Lifetimes, Rejection, RepoState, Upload};

/// How many times a publish is re-validated when a concurrent write (such as the server
/// re-signing the timestamp) changed the state between reading and writing.
const PUBLISH_ATTEMPTS: usize = 4;

/// A source of the current time (settable in tests).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Timestamp::from_unix(secs)
    })
}

/// Repository operations.
pub struct Service {
    store: Arc<dyn Store>,
    keys: OnlineKeys,
    lifetimes: Lifetimes,
    limits: Limits,
    clock: Clock,
}

impl Service {
    /// A service over `store`, signing with `keys`.
    pub fn new(
        store: Arc<dyn Store>,
        keys: OnlineKeys,
        lifetimes: Lifetimes,
        limits: Limits,
        clock: Clock,
    ) -> Self {
        Service {
            store,
            keys,
            lifetimes,
            limits,
            clock,
        }
    }

    /// The store (for readiness checks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn now(&self) -> Timestamp {
        (self.clock)()
    }

    fn state(&self, gun: &Gun) -> Result<RepoState, AppError> {
        RepoState::from_files(self.store.current(gun)?).map_err(AppError::internal)
    }

    fn check_sizes(&self, uploads: &[Upload]) -> Result<(), AppError> {
        for u in uploads {
            let limit = match u.role.as_str() {
                "root" => self.limits.max_root_bytes,
                "snapshot" => self.limits.max_snapshot_bytes,
                _ => self.limits.max_targets_bytes,
            };
            if u.bytes.len() > limit {
                return Err(AppError::TooLarge {
                    message: format!(
                        "{} metadata is {} bytes, the limit is {limit}",
                        u.role,
                        u.bytes.len()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Validates and stores one update.
    pub fn publish(&self, gun: &Gun, uploads: Vec<Upload>) -> Result<(), AppError> {
        self.check_sizes(&uploads)?;
        for _ in 0..PUBLISH_ATTEMPTS {
            let now = self.now();
            let state = self.state(gun)?;
            let held = self.keys.signers(gun)?;
            let update = validate_update(&state, &uploads, &held.as_online(), self.lifetimes, now)
                .map_err(rejection_to_error)?;
            match self.store.publish(gun, &update.files, now) {
                Ok(change) => {
                    let roles: Vec<String> = update
                        .files
                        .iter()
                        .map(|f| format!("{}@{}", f.role, f.version))
                        .collect();
                    tracing::info!(%gun, change, roles = %roles.join(","), "published");
                    return Ok(());
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Conflict {
            message:
                "the repository kept changing while this update was being stored: refresh and retry"
                    .into(),
            detail: json!({}),
        })
    }

    /// Re-signs the timestamp (and a server-held snapshot) when less than half their lifetime
    /// remains. A concurrent re-sign that wins is as good as our own.
    fn refresh(&self, gun: &Gun) -> Result<(), AppError> {
        let now = self.now();
        let Some(ts) = self.store.get_current(gun, "timestamp")? else {
            return Ok(());
        };
        let ts_md =
            vouch_tuf::metadata::Metadata::<vouch_tuf::metadata::TimestampRole>::from_bytes(
                &ts.bytes,
            )
            .map_err(AppError::internal)?;
        // Cheap test first: a fresh timestamp means the snapshot was checked when it was signed.
        if ts_md.expires().unix() - now.unix() >= self.lifetimes.timestamp / 2 {
            return Ok(());
        }
        let state = self.state(gun)?;
        let held = self.keys.signers(gun)?;
        let update = match refresh_online(&state, &held.as_online(), self.lifetimes, now) {
            Ok(Some(u)) => u,
            Ok(None) => return Ok(()),
            Err(e) => return Err(AppError::internal(e)),
        };
        match self.store.publish(gun, &update.files, now) {
            Ok(_) => {
                tracing::info!(%gun, "re-signed online roles");
                Ok(())
            }
            Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// One metadata file.
    pub fn file(&self, gun: &Gun, file: &FileRef) -> Result<StoredFile, AppError> {
        let found = match file {
            FileRef::Current(role) => {
                if role == "timestamp" || role == "snapshot" {
                    self.refresh(gun)?;
                }
                self.store.get_current(gun, role)?
            }
            FileRef::Version(role, v) => self.store.get_version(gun, role, *v)?,
            FileRef::Checksum(role, sha) => self.store.get_by_checksum(gun, role, sha)?,
            FileRef::Key(_) => None,
        };
        found.ok_or_else(|| {
            AppError::not_found(format!("{gun} has no such metadata: {}", describe(file)))
        })
    }

    /// The newest online key of (gun, role), created when `create` and absent.
    pub fn key(&self, gun: &Gun, role: &str, create: bool) -> Result<Option<String>, AppError> {
        Ok(self
            .keys
            .current(gun, role, create, self.now())?
            .map(|k| k.public))
    }

    /// A new online key for (gun, role).
    pub fn rotate_key(&self, gun: &Gun, role: &str) -> Result<String, AppError> {
        let k = self.keys.rotate(gun, role, self.now())?;
        tracing::info!(%gun, role, keyid = %k.keyid, "rotated online key");
        Ok(k.public)
    }

    /// Deletes a repository's trust data.
    pub fn delete(&self, gun: &Gun) -> Result<bool, AppError> {
        let deleted = self.store.delete(gun, self.now())?;
        tracing::info!(%gun, deleted, "delete");
        Ok(deleted)
    }

    /// A page of the changefeed.
    pub fn changes(
        &self,
        gun: Option<&Gun>,
        change_id: i64,
        records: i64,
    ) -> Result<Vec<Change>, AppError> {
        let limit = records.unsigned_abs().clamp(1, 100) as usize;
        let (cursor, direction) = if records < 0 {
            (
                if change_id <= 0 {
                    None
                } else {
                    Some(change_id)
                },
                Direction::Backward,
            )
        } else {
            (
                if change_id <= 0 {
                    None
                } else {
                    Some(change_id)
                },
                Direction::Forward,
            )
        };
        Ok(self.store.changes(gun, cursor, direction, limit)?)
    }
}

fn describe(file: &FileRef) -> String {
    match file {
        FileRef::Current(r) => format!("{r}.json"),
        FileRef::Version(r, v) => format!("{v}.{r}.json"),
        FileRef::Checksum(r, h) => format!("{r}.{h}.json"),
        FileRef::Key(r) => format!("{r}.key"),
    }
}

fn rejection_to_error(r: Rejection) -> AppError {
    match r {
        Rejection::Invalid {
            role,
            check,
            message,
        } => AppError::BadRequest {
            code: "METADATA_INVALID",
            message: format!("{role}: {message}"),
            detail: json!({"role": role, "check": check}),
        },
        Rejection::Conflict { role, message } => AppError::Conflict {
            message: format!("{role}: {message}"),
            detail: json!({"role": role, "check": "version"}),
        },
    }
}
