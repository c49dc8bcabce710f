//! The persistent store of trusted metadata.
//!
//! A [`MetadataStore`] is one directory holding the last trusted metadata of one repository
//! under unversioned names (`root.json`, `timestamp.json`, `snapshot.json`, `targets.json`,
//! `<url-encoded role>.json`), each file holding exactly the bytes the repository served.
//! The next update starts from them, so rollback and freeze attacks are caught across runs.
//!
//! Writes are atomic: the bytes go to a temporary file in the same directory (named
//! `.NAME.tmp.PID`, never ending in `.json`), and the file is renamed over the old one. With
//! [`Durability::Sync`] (the default) the file is flushed to disk before the rename and the
//! directory after it, so a power loss cannot undo an accepted version either (an update
//! that persists several files flushes each file, and the directory once at its end: see
//! [`MetadataStore::store_leaving_dir`]). A crash or a
//! failed update leaves either the old or the new file, never a torn one, and the previously
//! trusted state usable.
//!
//! [`MetadataStore::for_gun`] places one store per repository (GUN) below a base cache
//! directory, whatever server, mirror or bundle the metadata comes from: trust in a
//! repository is one thing, checked the same way against every source.
//! [`MetadataStore::for_repository`] places one per (server URL, GUN), for callers whose
//! trust is configured per server. Beside the metadata, a store may record where its trust
//! started ([`PinRecord`]: the first root pinned and how it was chosen), in files whose
//! names (`pin.root`, `pin.source`) no role's file can have.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;
use vouch_tuf::types::RoleName;

/// A cache read or write failed.
#[derive(Debug, Error)]
#[error("trusted metadata cache {path}: {source}")]
pub struct CacheError {
    /// The file or directory.
    pub path: PathBuf,
    /// The IO error.
    pub source: std::io::Error,
}

/// Percent-encodes every byte except ASCII letters, digits and `-._~` (what TUF clients do
/// to role and target names in file names): the encoding of the server's paths,
/// [`vouch_tuf::api::path::percent_encode`], used for the cache's file names too.
///
/// ```
/// assert_eq!(vouch_verifier::cache::percent_encode("targets/releases"), "targets%2Freleases");
/// ```
pub use vouch_tuf::api::path::percent_encode;

/// Where a repository's trust started: the root pinned first, and how it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinRecord {
    /// The root metadata file pinned (the start of the chain of trust).
    pub root: Vec<u8>,
    /// How it was chosen: `vouch init`, a root file given, a pin file's rule, trust on
    /// first use from a server or bundle, and when.
    pub source: String,
}

const PIN_ROOT: &str = "pin.root";
const PIN_SOURCE: &str = "pin.source";

/// How hard a store works to keep what it wrote across a power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Flush each file and its directory to disk (fsync) before a write returns.
    #[default]
    Sync,
    /// Atomic rename only, no fsync (what python-tuf does): for caches that do not outlive
    /// the machine anyway, such as a CI job's or a short-lived container's.
    NoSync,
}

/// Trusted metadata of one repository in one directory.
#[derive(Clone, Debug)]
pub struct MetadataStore {
    dir: PathBuf,
    durability: Durability,
}

fn err(path: &Path, source: std::io::Error) -> CacheError {
    CacheError {
        path: path.to_owned(),
        source,
    }
}

impl MetadataStore {
    /// A store in `dir`, created if missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, CacheError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| err(&dir, e))?;
        Ok(MetadataStore {
            dir,
            durability: Durability::Sync,
        })
    }

    /// Sets how writes are made durable.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The store for repository `gun` on `server_url` below `base`:
    /// `base/<encoded server URL>/<encoded GUN>/`.
    pub fn for_repository(
        base: impl AsRef<Path>,
        server_url: &str,
        gun: &str,
    ) -> Result<Self, CacheError> {
        let server = server_url.trim_end_matches('/');
        Self::open(
            base.as_ref()
                .join(percent_encode(server))
                .join(percent_encode(gun)),
        )
    }

    /// The store for repository `gun` below `base`, whatever its source:
    /// `base/<encoded GUN>/`.
    pub fn for_gun(base: impl AsRef<Path>, gun: &str) -> Result<Self, CacheError> {
        Self::open(base.as_ref().join(percent_encode(gun)))
    }

    /// The directory `for_gun` would open, without creating it.
    pub fn dir_for_gun(base: impl AsRef<Path>, gun: &str) -> PathBuf {
        base.as_ref().join(percent_encode(gun))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a role's file: `<url-encoded role>.json`.
    pub fn path_of(&self, role: &RoleName) -> PathBuf {
        self.dir.join(format!("{}.json", role.url_encoded()))
    }

    /// The stored bytes of `role`, if any; files larger than `max_len` are treated as absent
    /// (they cannot be trusted metadata this client wrote).
    pub fn load(&self, role: &RoleName, max_len: u64) -> Result<Option<Vec<u8>>, CacheError> {
        let path = self.path_of(role);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(&path, e)),
        };
        let announced = file.metadata().ok().map(|m| m.len());
        match crate::transport::read_capped_sized("", file, max_len, announced) {
            Ok(b) => Ok(Some(b)),
            Err(crate::transport::TransportError::TooLarge { .. }) => Ok(None),
            Err(crate::transport::TransportError::Io { source, .. }) => Err(err(&path, source)),
            Err(other) => Err(err(&path, std::io::Error::other(other.to_string()))),
        }
    }

    /// Stores `bytes` as the trusted file of `role`, atomically.
    pub fn store(&self, role: &RoleName, bytes: &[u8]) -> Result<(), CacheError> {
        self.store_leaving_dir(role, bytes)?;
        self.sync_dir();
        Ok(())
    }

    /// [`store`](Self::store) without flushing the directory: for a sequence of writes that
    /// must all be durable once it ends, followed by one [`sync_dir`](Self::sync_dir) rather
    /// than one directory flush per file. Each file's bytes are still flushed before it is
    /// renamed into place, so a crash leaves every file either old or new, never torn.
    pub fn store_leaving_dir(&self, role: &RoleName, bytes: &[u8]) -> Result<(), CacheError> {
        self.write_atomic(&format!("{}.json", role.url_encoded()), bytes)
    }

    /// Writes `bytes` to file `name` of the directory through a temporary file and a
    /// rename (each file flushed first under [`Durability::Sync`]).
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), CacheError> {
        let path = self.dir.join(name);
        let stem = name.strip_suffix(".json").unwrap_or(name);
        let tmp = self.dir.join(format!(".{stem}.tmp.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(bytes)?;
            if self.durability == Durability::Sync {
                f.sync_all()?;
            }
            drop(f);
            fs::rename(&tmp, &path)?;
            Ok(())
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            err(&path, e)
        })
    }

    /// Under [`Durability::Sync`], flushes the directory so that the renames done so far
    /// survive a power loss (best effort: not every platform can sync a directory).
    pub fn sync_dir(&self) {
        if self.durability == Durability::Sync {
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
        }
    }

    /// True when the store directory `dir` holds trusted state: a trusted root or the
    /// record of a pin (read without creating or opening anything).
    pub fn holds_trust(dir: &Path) -> bool {
        dir.join("root.json").exists() || dir.join(PIN_ROOT).exists()
    }

    /// Where this repository's trust started, if recorded.
    pub fn pin(&self) -> Result<Option<PinRecord>, CacheError> {
        let read = |name: &str, cap: u64| -> Result<Option<Vec<u8>>, CacheError> {
            let path = self.dir.join(name);
            match File::open(&path) {
                Ok(f) => {
                    let announced = f.metadata().ok().map(|m| m.len());
                    match crate::transport::read_capped_sized("", f, cap, announced) {
                        Ok(b) => Ok(Some(b)),
                        Err(e) => Err(err(&path, std::io::Error::other(e.to_string()))),
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(err(&path, e)),
            }
        };
        let Some(root) = read(PIN_ROOT, crate::Limits::DEFAULT.root_max_bytes)? else {
            return Ok(None);
        };
        let source = read(PIN_SOURCE, 64 * 1024)?.unwrap_or_default();
        Ok(Some(PinRecord {
            root,
            source: String::from_utf8_lossy(&source).trim().to_owned(),
        }))
    }

    /// Records `root` as the root this repository's trust started from, chosen as
    /// `source` says (one line, for people).
    pub fn record_pin(&self, root: &[u8], source: &str) -> Result<(), CacheError> {
        self.write_atomic(PIN_ROOT, root)?;
        self.write_atomic(PIN_SOURCE, source.as_bytes())?;
        self.sync_dir();
        Ok(())
    }

    /// Removes the store's directory and everything in it: the trusted metadata and the
    /// record of its pin.
    pub fn remove_all(self) -> Result<(), CacheError> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err(&self.dir, e)),
        }
    }

    /// Removes the file of `role` (a no-op when absent).
    pub fn remove(&self, role: &RoleName) -> Result<(), CacheError> {
        let path = self.path_of(role);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err(&path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rn(s: &str) -> RoleName {
        RoleName::new(s).unwrap()
    }

    #[test]
    fn store_load_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(s.load(&rn("root"), 100).unwrap(), None);
        s.store(&rn("root"), b"one").unwrap();
        s.store(&rn("root"), b"two").unwrap();
        assert_eq!(s.load(&rn("root"), 100).unwrap().unwrap(), b"two");
        assert_eq!(s.load(&rn("root"), 2).unwrap(), None);
        s.store(&rn("targets/releases"), b"x").unwrap();
        assert!(dir.path().join("targets%2Freleases.json").exists());
        s.remove(&rn("root")).unwrap();
        s.remove(&rn("root")).unwrap();
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["targets%2Freleases.json".to_owned()]);
    }

    #[test]
    fn pins_are_recorded_beside_the_metadata_and_removed_with_it() {
        let base = tempfile::tempdir().unwrap();
        let s = MetadataStore::for_gun(base.path(), "example.com/org/app").unwrap();
        assert!(s.dir().ends_with("example.com%2Forg%2Fapp"));
        assert_eq!(s.pin().unwrap(), None);
        s.store(&rn("root"), b"r1").unwrap();
        s.record_pin(b"r1", "vouch init").unwrap();
        // A role named like the pin files still has its own file.
        s.store(&rn("pin"), b"role").unwrap();
        let pin = s.pin().unwrap().unwrap();
        assert_eq!(
            (pin.root.as_slice(), pin.source.as_str()),
            (&b"r1"[..], "vouch init")
        );
        assert_eq!(s.load(&rn("pin"), 100).unwrap().unwrap(), b"role");
        let dir = s.dir().to_owned();
        s.remove_all().unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn one_directory_per_server_and_gun() {
        let dir = tempfile::tempdir().unwrap();
        let a =
            MetadataStore::for_repository(dir.path(), "https://v.example/", "example.com/org/app")
                .unwrap();
        let b =
            MetadataStore::for_repository(dir.path(), "https://w.example", "example.com/org/app")
                .unwrap();
        assert_ne!(a.dir(), b.dir());
        assert!(a
            .dir()
            .ends_with("https%3A%2F%2Fv.example/example.com%2Forg%2Fapp"));
    }
}
