//! Which repositories use this trust directory's keys: the roles that the trusted metadata
//! cached under `TRUST_DIR/tuf/` assigns each key id to, for `key list` and `key delete`.
//!
//! The cache holds, per repository, the last metadata the verifier accepted (each file was
//! checked when it was stored); this module only reads key ids out of it — root's
//! assignments of the top-level roles, and the delegations in `targets` and in delegated
//! roles — and trusts it for nothing else. It needs no server and no passphrase. What the
//! cache does not hold (a repository this trust directory never fetched, earlier versions
//! of root) it cannot tell.
//!
//! A key is [`Status::Current`] when some cached repository lists it; [`Status::Retired`]
//! when its file records the repository it was made for (`vouch init` writes that) and that
//! repository's cached metadata no longer lists it (it was rotated out); otherwise
//! [`Status::Unknown`].

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use vouch_tuf::metadata::{Metadata, Root, Targets};
use vouch_tuf::types::{KeyId, TopLevelRole};

use crate::keystore::Entry;

/// Largest cached file read (the verifier's own cap for targets metadata is lower).
const MAX_FILE: u64 = 16 * 1024 * 1024;
/// How deep below the cache directory repositories are looked for (one directory per GUN;
/// caches of earlier versions kept one per server, then GUN, until they are moved).
const MAX_DEPTH: usize = 3;

/// One role a cached repository assigns a key to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Use {
    /// The repository (GUN).
    pub gun: String,
    /// The role (`root`, `targets`, `snapshot`, `timestamp`, or a delegated role).
    pub role: String,
}

/// Whether a key is in use, as far as the cache tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Listed by the cached metadata of some repository.
    Current,
    /// Made for a repository whose cached metadata no longer lists it.
    Retired,
    /// Neither: a new or imported key, one of a repository not fetched here, or one whose
    /// repository's trust data was deleted.
    Unknown,
}

impl Status {
    /// `current`, `retired` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Current => "current",
            Status::Retired => "retired",
            Status::Unknown => "unknown",
        }
    }
}

/// The key uses found in one cache directory, and which repositories it holds.
#[derive(Debug, Default)]
pub struct Uses {
    by_key: BTreeMap<KeyId, Vec<Use>>,
    repositories: Vec<String>,
}

impl Uses {
    /// Reads every repository cached below `cache_dir` (none when it does not exist).
    /// A cached file that cannot be parsed is skipped: this is for display, and the
    /// verifier judges the cache when the repository is next used.
    pub fn read(cache_dir: &Path) -> Self {
        let mut out = Uses::default();
        let mut dirs = vec![(cache_dir.to_path_buf(), 0usize)];
        while let Some((dir, depth)) = dirs.pop() {
            let Ok(rd) = fs::read_dir(&dir) else {
                continue;
            };
            for ent in rd.flatten() {
                let path = ent.path();
                if !ent.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                if path.join("root.json").is_file() {
                    out.add_repository(&path);
                } else if depth + 1 < MAX_DEPTH {
                    dirs.push((path, depth + 1));
                }
            }
        }
        for uses in out.by_key.values_mut() {
            uses.sort();
            uses.dedup();
        }
        out.repositories.sort();
        out.repositories.dedup();
        out
    }

    /// The roles cached repositories assign `keyid` to.
    pub fn of(&self, keyid: &KeyId) -> &[Use] {
        self.by_key
            .get(keyid)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The status of a stored key.
    pub fn status(&self, entry: &Entry) -> Status {
        if !self.of(&entry.keyid).is_empty() {
            Status::Current
        } else if entry
            .repository
            .as_ref()
            .is_some_and(|r| self.repositories.contains(r))
        {
            Status::Retired
        } else {
            Status::Unknown
        }
    }

    fn add_repository(&mut self, dir: &Path) {
        let name = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(percent_decode);
        let Some(gun) = name(dir) else {
            return;
        };
        self.repositories.push(gun.clone());
        let mut add = |keyid: &KeyId, role: &str| {
            self.by_key.entry(keyid.clone()).or_default().push(Use {
                gun: gun.clone(),
                role: role.to_owned(),
            });
        };
        if let Some(root) =
            read(&dir.join("root.json")).and_then(|b| Metadata::<Root>::from_bytes(&b).ok())
        {
            for role in [
                TopLevelRole::Root,
                TopLevelRole::Targets,
                TopLevelRole::Snapshot,
                TopLevelRole::Timestamp,
            ] {
                for id in &root.signed().role_keys(role).keyids {
                    add(id, role.as_str());
                }
            }
        }
        for (role, file) in targets_files(dir) {
            let Some(md) =
                read(&file).and_then(|b| Metadata::<Targets>::from_bytes_as(&role, &b).ok())
            else {
                continue;
            };
            if let Some(d) = &md.signed().delegations {
                for r in &d.roles {
                    for id in &r.keyids {
                        add(id, r.name.as_str());
                    }
                }
            }
        }
    }
}

/// `targets.json` and the delegated roles' files of a cached repository, with their role
/// names.
fn targets_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|ent| {
            let file = ent.file_name();
            let stem = file.to_str()?.strip_suffix(".json")?;
            let role = percent_decode(stem);
            let top = TopLevelRole::from_name(&role);
            matches!(top, None | Some(TopLevelRole::Targets)).then(|| (role, ent.path()))
        })
        .collect()
}

/// The bytes of `path`, when it is a file of at most [`MAX_FILE`] bytes.
fn read(path: &Path) -> Option<Vec<u8>> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return None;
    }
    fs::read(path).ok()
}

/// Undoes the percent-encoding of cache directory and file names (`%2F` is `/`); a `%` not
/// followed by two hex digits is kept as it is.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                let v = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_verifier::cache::percent_encode;

    #[test]
    fn cache_names_decode_to_what_was_encoded() {
        for s in [
            "http://127.0.0.1:4443",
            "registry.example.com:5000/org/app",
            "targets/releases",
            "bins-3",
        ] {
            assert_eq!(percent_decode(&percent_encode(s)), s);
        }
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn an_empty_or_missing_cache_lists_no_uses() {
        let uses = Uses::read(Path::new("/nonexistent/vouch/cache"));
        assert!(uses.by_key.is_empty() && uses.repositories.is_empty());
    }
}
