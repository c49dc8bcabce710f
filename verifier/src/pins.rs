//! Trust anchors: which first root a client may trust for a repository.
//!
//! TUF anchors all trust in one root metadata file the client already has: every later
//! root is checked against the one before. Where that first root comes from is the client's
//! choice, stated here as an [`Anchor`]:
//! - [`Anchor::Root`]: exactly this root file (handed out of band by the repository owner);
//! - [`Anchor::Keys`]: any repository whose first root names it (the signed field
//!   `x-vouch-gun`, which `vouch init` writes) and is signed by a threshold of these root
//!   keys. An organisation that signs every repository's first root with its own root keys
//!   (`vouch init --root-key`) pins those keys once for all its repositories; each
//!   repository still has its own root and its own rotations, and one repository's root
//!   cannot stand in for another's;
//! - [`Anchor::FirstUse`]: whatever first root the repository serves the first time (trust
//!   on first use), chosen explicitly.
//!
//! A [`TrustPins`] file maps GUN patterns ([`NamePattern`]: `*` within a path component,
//! `**` across) to anchors; the most specific matching pattern decides:
//!
//! ```toml
//! [[pin]]
//! gun = "registry.example.com/org/**"
//! root_keys = ["org-root-1.pub.json", "org-root-2.pub.json", "org-root-3.pub.json"]
//! threshold = 2
//!
//! [[pin]]
//! gun = "registry.example.com/org/legacy-app"
//! root_file = "legacy-app.root.json"
//!
//! [[pin]]
//! gun = "registry.example.com/sandbox/**"
//! trust_on_first_use = true
//! ```
//!
//! An image promoted or copied to another repository keeps the trust of the repository it
//! was signed in: a `trust_from` rule maps the repositories it covers to that one, whose
//! own pin then decides (a promoted copy verifies at its new name with no re-signing, and
//! the source's root, keys and rollback state apply unchanged):
//!
//! ```toml
//! [[pin]]
//! gun = "prod.example.com/app"
//! trust_from = "build.example.com/team/app"
//!
//! [[pin]]
//! gun = "prod.example.com/apps/**"          # prod.example.com/apps/X/Y …
//! trust_from = "build.example.com/team/**"  # … is trusted as build.example.com/team/X/Y
//! ```
//!
//! A mapping is followed once: a source that is itself mapped is refused
//! ([`TrustPins::trust_source`]).
//!
//! Key files hold one TUF public-key object (`vouch key export KEYID --public`); relative
//! paths are read from the pin file's directory. Everything here is sans-IO except reading
//! the pin file and the files it names ([`TrustPins::load`]); fetching the first root is
//! [`Updater::establish`](crate::Updater::establish)'s job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;
use vouch_tuf::json::{self, Value};
use vouch_tuf::metadata::{verify_threshold, Key, Metadata, Root};
use vouch_tuf::pattern::{NamePattern, PatternError};
use vouch_tuf::reference::{Digest, Gun};
use vouch_tuf::types::{KeyId, Threshold, TopLevelRole};

use crate::limits::Limits;

/// Largest key file read (a TUF key object is a few hundred bytes; an RSA key a few KiB).
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;
/// Largest pin file read.
pub const MAX_PIN_FILE_BYTES: u64 = 1024 * 1024;

/// Why a pin file could not be loaded, or a root is not one an anchor admits.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PinError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A file is larger than anything it could legitimately hold.
    #[error("{path} is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap.
        limit: u64,
    },
    /// The pin file is not valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// The pin file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// One `[[pin]]` entry is wrong.
    #[error("{path}: pin {index} ({gun}): {message}")]
    Entry {
        /// The pin file.
        path: PathBuf,
        /// 1-based position of the entry.
        index: usize,
        /// Its `gun` as written.
        gun: String,
        /// What is wrong.
        message: String,
    },
    /// A root file that is not root metadata signed by a threshold of its own root keys.
    #[error("not a usable root: {0}")]
    NotARoot(String),
    /// The root is not the pinned root file.
    #[error("the root offered (version {version}, sha256 {offered}) is not the pinned root (sha256 {pinned})")]
    OtherRoot {
        /// Version of the root offered.
        version: u64,
        /// SHA-256 of the root offered.
        offered: String,
        /// SHA-256 of the pinned root.
        pinned: String,
    },
    /// The root names another repository than the one it is offered for.
    #[error("the root offered is the root of {named}, not of {gun}")]
    OtherRepository {
        /// The repository the root names.
        named: String,
        /// The repository it was offered for.
        gun: String,
    },
    /// Pinned keys vouch only for roots that name their repository.
    #[error(
        "the root offered for {gun} does not name its repository (signed field x-vouch-gun), so \
         pinned keys cannot tell it from another repository's root: repositories created by \
         `vouch init` name theirs; pin this one by its root file instead"
    )]
    NoRepositoryName {
        /// The repository it was offered for.
        gun: String,
    },
    /// Pinned keys vouch for a repository's first root only.
    #[error("the root offered is version {version}; pinned keys vouch for a repository's first root (version 1)")]
    NotFirstRoot {
        /// Its version.
        version: u64,
    },
    /// A `trust_from` mapping leads to a repository that is mapped again.
    #[error("{gun} is mapped to {mapped_to} ({origin}), which is mapped again ({again}): a mapping names the repository the images were signed in")]
    MappedTwice {
        /// The repository asked about.
        gun: String,
        /// Where its mapping leads.
        mapped_to: String,
        /// The mapping rule.
        origin: String,
        /// The rule mapping `source` again.
        again: String,
    },
    /// A `trust_from` mapping gives no valid repository name for this repository.
    #[error("{origin} maps {gun} to {mapped_to}, which is not a repository name")]
    BadMapping {
        /// The repository asked about.
        gun: String,
        /// What the mapping gives.
        mapped_to: String,
        /// The mapping rule.
        origin: String,
    },
    /// The root is not signed by enough of the pinned keys.
    #[error(
        "the root offered (version {version}, sha256 {offered}) is signed by {valid} of the \
         pinned root keys, {needed} required"
    )]
    NotSignedByPinnedKeys {
        /// Version of the root offered.
        version: u64,
        /// SHA-256 of the root offered.
        offered: String,
        /// Pinned keys with a valid signature.
        valid: usize,
        /// The pinned threshold.
        needed: u32,
    },
}

/// A root metadata file pinned as the start of a repository's chain of trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedRoot {
    bytes: Vec<u8>,
    sha256: String,
    version: u64,
}

impl PinnedRoot {
    /// Checks that `bytes` is root metadata signed by a threshold of its own root keys
    /// (expiry is not checked: a client starts from an old root and walks forward).
    /// Trailing whitespace (a newline an editor or a shell added) is dropped, so that the
    /// pinned bytes are the ones the repository serves.
    pub fn new(mut bytes: Vec<u8>) -> Result<Self, PinError> {
        while bytes.last().is_some_and(u8::is_ascii_whitespace) {
            bytes.pop();
        }
        let md = self_signed_root(&bytes)?;
        Ok(PinnedRoot {
            sha256: Digest::sha256_of(&bytes).hex().to_owned(),
            version: md.version().get(),
            bytes,
        })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Lowercase hex SHA-256 of the file.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The root's version.
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// Parses `bytes` as root metadata signed by a threshold of its own root keys.
fn self_signed_root(bytes: &[u8]) -> Result<Metadata<Root>, PinError> {
    if bytes.len() as u64 > Limits::DEFAULT.root_max_bytes {
        return Err(PinError::NotARoot(format!(
            "larger than {} bytes",
            Limits::DEFAULT.root_max_bytes
        )));
    }
    let md = Metadata::<Root>::from_bytes(bytes).map_err(|e| PinError::NotARoot(e.to_string()))?;
    md.signed()
        .verify_role(TopLevelRole::Root, &md)
        .map_err(|e| PinError::NotARoot(e.to_string()))?;
    Ok(md)
}

/// Where a client's trust in a repository starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// Exactly this root file.
    Root(PinnedRoot),
    /// Any root signed by `threshold` of `keys` (distinct keys, at least `threshold`).
    Keys {
        /// The pinned root keys, by the id vouch gives them.
        keys: BTreeMap<KeyId, Key>,
        /// How many of them must sign.
        threshold: Threshold,
    },
    /// The root the repository serves the first time it is asked.
    FirstUse,
}

/// The file a client fetches to start from an [`Anchor`], when it has no root yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstRoot {
    /// Nothing to fetch: the anchor is the root.
    Given,
    /// `1.root.json`: the repository's first root (signed by the pinned keys, or trusted on
    /// first use); the client walks the signed root chain from it to the current root.
    VersionOne,
}

impl Anchor {
    /// An anchor of `threshold` of `keys`; refused when two keys are the same key or the
    /// threshold exceeds the number of keys.
    pub fn keys(keys: Vec<Key>, threshold: Threshold) -> Result<Self, String> {
        let mut by_id = BTreeMap::new();
        let mut material = std::collections::HashSet::new();
        for key in keys {
            let vk = key.verifying_key().map_err(|e| {
                format!(
                    "key {} ({}): {e}",
                    short(key.key_id().as_str()),
                    key.keytype
                )
            })?;
            if !material.insert((vk.algorithm(), vk.material().to_vec())) {
                return Err(format!(
                    "key {} is listed twice",
                    short(key.key_id().as_str())
                ));
            }
            by_id.insert(key.key_id(), key);
        }
        if by_id.is_empty() {
            return Err("no root keys".to_owned());
        }
        if threshold.get() as usize > by_id.len() {
            return Err(format!(
                "threshold {} is more than the {} key(s) listed",
                threshold.get(),
                by_id.len()
            ));
        }
        Ok(Anchor::Keys {
            keys: by_id,
            threshold,
        })
    }

    /// What a client without a root fetches to start from this anchor.
    pub fn first_root(&self) -> FirstRoot {
        match self {
            Anchor::Root(_) => FirstRoot::Given,
            Anchor::Keys { .. } | Anchor::FirstUse => FirstRoot::VersionOne,
        }
    }

    /// Checks that `root` (root metadata bytes) may start the chain of trust of repository
    /// `gun` under this anchor: it is root metadata signed by a threshold of its own root
    /// keys; it names no other repository ([`Root::GUN_FIELD`]); and it is the pinned root
    /// file, or (for pinned keys) version 1 of a root that names `gun`, signed by the pinned
    /// threshold of the pinned keys. Naming the repository is what stops one repository's
    /// root, signed by the organisation's keys like every other, from being served as
    /// another's.
    pub fn admits(&self, root: &[u8], gun: &Gun) -> Result<(), PinError> {
        let md = self_signed_root(root)?;
        let offered = || Digest::sha256_of(root).hex().to_owned();
        let version = md.version().get();
        let wanted = gun.canonical();
        match md.signed().gun() {
            Some(named) if named != wanted.as_str() => {
                return Err(PinError::OtherRepository {
                    named: named.to_owned(),
                    gun: wanted.to_string(),
                })
            }
            None if matches!(self, Anchor::Keys { .. }) => {
                return Err(PinError::NoRepositoryName {
                    gun: wanted.to_string(),
                })
            }
            _ => {}
        }
        match self {
            Anchor::Root(pinned) if pinned.bytes == root => Ok(()),
            Anchor::Root(pinned) => Err(PinError::OtherRoot {
                version,
                offered: offered(),
                pinned: pinned.sha256.clone(),
            }),
            Anchor::Keys { .. } if version != 1 => Err(PinError::NotFirstRoot { version }),
            Anchor::Keys { keys, threshold } => {
                let ids: Vec<KeyId> = keys.keys().cloned().collect();
                verify_threshold(
                    "root",
                    md.canonical_signed(),
                    md.signatures(),
                    keys,
                    &ids,
                    *threshold,
                )
                .map(|_| ())
                .map_err(|e| {
                    let valid = match e {
                        vouch_tuf::metadata::SignatureError::ThresholdNotMet { valid, .. } => valid,
                        _ => 0,
                    };
                    PinError::NotSignedByPinnedKeys {
                        version,
                        offered: offered(),
                        valid,
                        needed: threshold.get(),
                    }
                })
            }
            Anchor::FirstUse => Ok(()),
        }
    }

    /// A one-line description: `root version 1 (sha256 3f2a…)`, `2 of root keys 3f2a…,
    /// 9bc0…`, `trust on first use`.
    pub fn describe(&self) -> String {
        match self {
            Anchor::Root(r) => format!("root version {} (sha256 {})", r.version, r.sha256),
            Anchor::Keys { keys, threshold } => format!(
                "{} of root keys {}",
                threshold.get(),
                keys.keys()
                    .map(|k| short(k.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Anchor::FirstUse => "trust on first use".to_owned(),
        }
    }

    /// A short stable id of the anchor (16 hex digits): of the root file's bytes, or of
    /// the keys and threshold; `first-use` for trust on first use. Separates state kept
    /// under different anchors.
    pub fn id(&self) -> String {
        match self {
            Anchor::Root(r) => r.sha256[..16].to_owned(),
            Anchor::Keys { keys, threshold } => {
                let mut text = format!("{}", threshold.get());
                for id in keys.keys() {
                    text.push(' ');
                    text.push_str(id.as_str());
                }
                Digest::sha256_of(text.as_bytes()).hex()[..16].to_owned()
            }
            Anchor::FirstUse => "first-use".to_owned(),
        }
    }
}

fn short(id: &str) -> String {
    id.get(..12).unwrap_or(id).to_owned()
}

/// One `[[pin]]` of a pin file.
#[derive(Clone, Debug)]
pub struct PinRule {
    /// The repositories it covers.
    pub pattern: NamePattern,
    /// Where their trust starts.
    pub anchor: Anchor,
    /// Where the rule was written, for messages: `FILE, pin N (PATTERN)`.
    pub origin: String,
}

/// One `[[pin]]` with `trust_from`: the repositories it covers are trusted as another.
#[derive(Clone, Debug)]
pub struct MapRule {
    /// The repositories it covers.
    pub pattern: NamePattern,
    /// The repository (or, after a pattern ending in `/**`, the prefix ending in `/**`)
    /// whose trust they have, canonical.
    pub source: String,
    /// Where the rule was written, for messages: `FILE, pin N (PATTERN)`.
    pub origin: String,
}

impl MapRule {
    /// The repository `gun` (canonical, matched by [`MapRule::pattern`]) is trusted as.
    fn source_of(&self, gun: &str) -> Option<String> {
        match (
            self.pattern.as_str().strip_suffix("/**"),
            self.source.strip_suffix("/**"),
        ) {
            (Some(prefix), Some(source_prefix)) => {
                let rest = gun.strip_prefix(prefix)?.strip_prefix('/')?;
                Some(format!("{source_prefix}/{rest}"))
            }
            _ => Some(self.source.clone()),
        }
    }
}

/// Where a repository's trust comes from when a `trust_from` rule maps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// The repository whose trust it has.
    pub source: Gun,
    /// The rule, for messages: `FILE, pin N (PATTERN)`.
    pub origin: String,
}

/// A loaded pin file: GUN patterns mapped to anchors, or to other repositories.
#[derive(Clone, Debug, Default)]
pub struct TrustPins {
    rules: Vec<PinRule>,
    maps: Vec<MapRule>,
    files: Vec<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    pin: Vec<RawPin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPin {
    gun: String,
    root_file: Option<PathBuf>,
    root_keys: Option<Vec<PathBuf>>,
    threshold: Option<u32>,
    #[serde(default)]
    trust_on_first_use: bool,
    trust_from: Option<String>,
}

fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, PinError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|source| PinError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| PinError::Read {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(PinError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

/// The canonical source of a `trust_from` rule for `pattern`: a repository name when the
/// pattern is one, or a prefix ending in `/**` when the pattern is a prefix ending in `/**`
/// (the part matched by `**` is carried over).
fn map_source(pattern: &NamePattern, source: &str) -> Result<String, String> {
    let wild = |s: &str| s.contains(['*', '?']);
    match (
        pattern.as_str().strip_suffix("/**"),
        source.strip_suffix("/**"),
    ) {
        (Some(prefix), Some(source_prefix)) if !wild(prefix) && !wild(source_prefix) => {
            let gun = Gun::new(source_prefix)
                .map_err(|e| format!("trust_from: {source_prefix}: {e}"))?;
            Ok(format!("{}/**", gun.canonical()))
        }
        (None, None) if !wild(pattern.as_str()) && !wild(source) => {
            let gun = Gun::new(source).map_err(|e| format!("trust_from: {source}: {e}"))?;
            Ok(gun.canonical().to_string())
        }
        _ => Err(format!(
            "trust_from {source:?}: map one repository to one repository, or a prefix ending in /** to a prefix ending in /** (no other wildcards)"
        )),
    }
}

/// Reads a root metadata file to pin (at most [`Limits::root_max_bytes`] of it).
pub fn read_root_file(path: &Path) -> Result<PinnedRoot, PinError> {
    let bytes = read_capped(path, Limits::DEFAULT.root_max_bytes)?;
    PinnedRoot::new(bytes).map_err(|e| match e {
        PinError::NotARoot(why) => PinError::NotARoot(format!("{}: {why}", path.display())),
        other => other,
    })
}

/// Reads a file holding one TUF public-key object.
pub fn read_key_file(path: &Path) -> Result<Key, String> {
    let bytes = read_capped(path, MAX_KEY_FILE_BYTES).map_err(|e| e.to_string())?;
    let value: Value = json::parse(&bytes)
        .map_err(|e| format!("{}: not a JSON key object: {e}", path.display()))?;
    Key::from_value(value).map_err(|e| format!("{}: not a TUF key object: {e}", path.display()))
}

impl TrustPins {
    /// Reads the pin file at `path` and every file it names (relative to its directory).
    pub fn load(path: &Path) -> Result<Self, PinError> {
        let bytes = read_capped(path, MAX_PIN_FILE_BYTES)?;
        let text = String::from_utf8(bytes).map_err(|_| PinError::Parse {
            path: path.to_owned(),
            message: "not UTF-8 text".to_owned(),
        })?;
        Self::parse(&text, path)
    }

    /// Parses pin-file text; files it names are read relative to `path`'s directory, and
    /// messages name `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, PinError> {
        let base = path.parent().unwrap_or(Path::new("."));
        let raw: RawFile = toml::from_str(text).map_err(|e| PinError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let mut rules: Vec<PinRule> = Vec::with_capacity(raw.pin.len());
        let mut maps: Vec<MapRule> = Vec::new();
        let mut files = vec![path.to_owned()];
        for (i, p) in raw.pin.into_iter().enumerate() {
            let fail = |message: String| PinError::Entry {
                path: path.to_owned(),
                index: i + 1,
                gun: p.gun.clone(),
                message,
            };
            let pattern =
                NamePattern::parse(&p.gun).map_err(|e: PatternError| fail(format!("gun: {e}")))?;
            let earlier = rules
                .iter()
                .filter(|r| r.pattern == pattern)
                .map(|r| &r.origin)
                .chain(
                    maps.iter()
                        .filter(|m| m.pattern == pattern)
                        .map(|m| &m.origin),
                )
                .next();
            if let Some(earlier) = earlier {
                return Err(fail(format!("{pattern} is pinned twice (also {earlier})")));
            }
            if let Some(source) = &p.trust_from {
                if p.root_file.is_some() || p.root_keys.is_some() || p.trust_on_first_use {
                    return Err(fail(
                        "`trust_from` stands alone: the source repository's own pin anchors its trust"
                            .to_owned(),
                    ));
                }
                let source = map_source(&pattern, source).map_err(fail)?;
                maps.push(MapRule {
                    origin: format!("{}, pin {} ({pattern})", path.display(), i + 1),
                    pattern,
                    source,
                });
                continue;
            }
            if p.threshold.is_some() && p.root_keys.is_none() {
                return Err(fail("`threshold` goes with `root_keys`".to_owned()));
            }
            let anchor = match (&p.root_file, &p.root_keys, p.trust_on_first_use) {
                (Some(file), None, false) => {
                    let file = base.join(file);
                    files.push(file.clone());
                    Anchor::Root(read_root_file(&file).map_err(|e| fail(e.to_string()))?)
                }
                (None, Some(key_files), false) => {
                    files.extend(key_files.iter().map(|f| base.join(f)));
                    let keys = key_files
                        .iter()
                        .map(|f| read_key_file(&base.join(f)))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(fail)?;
                    let threshold = Threshold::new(p.threshold.unwrap_or(1))
                        .map_err(|_| fail("threshold must be at least 1".to_owned()))?;
                    Anchor::keys(keys, threshold).map_err(fail)?
                }
                (None, None, true) => Anchor::FirstUse,
                _ => return Err(fail(
                    "give exactly one of `root_file`, `root_keys` and `trust_on_first_use = true`"
                        .to_owned(),
                )),
            };
            rules.push(PinRule {
                origin: format!("{}, pin {} ({pattern})", path.display(), i + 1),
                pattern,
                anchor,
            });
        }
        Ok(TrustPins { rules, maps, files })
    }

    /// The files it was read from: the pin file, then every root and key file it names.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[PinRule] {
        &self.rules
    }

    /// The `trust_from` rules, in file order.
    pub fn mappings(&self) -> &[MapRule] {
        &self.maps
    }

    /// The repository whose trust `gun` has, when the most specific rule matching it is a
    /// `trust_from` mapping (`None`: its own). A mapping that leads to a repository mapped
    /// again is refused: [`PinError::MappedTwice`].
    pub fn trust_source(&self, gun: &Gun) -> Result<Option<Mapped>, PinError> {
        let Some(map) = self.mapping_for(gun) else {
            return Ok(None);
        };
        let name = gun.canonical();
        let mapped = map.source_of(name.as_str()).unwrap_or_default();
        // Canonical, as every repository's trust is kept: `docker.io/nginx` from a prefix
        // mapping is `docker.io/library/nginx`, one cache and one pin whatever the spelling.
        let source =
            Gun::new(&mapped)
                .map(|g| g.canonical())
                .map_err(|_| PinError::BadMapping {
                    gun: name.to_string(),
                    mapped_to: mapped.clone(),
                    origin: map.origin.clone(),
                })?;
        if let Some(again) = self.mapping_for(&source) {
            return Err(PinError::MappedTwice {
                gun: name.to_string(),
                mapped_to: source.to_string(),
                origin: map.origin.clone(),
                again: again.origin.clone(),
            });
        }
        Ok(Some(Mapped {
            source,
            origin: map.origin.clone(),
        }))
    }

    /// The mapping for `gun`, when a mapping is the most specific rule matching it.
    fn mapping_for(&self, gun: &Gun) -> Option<&MapRule> {
        let name = gun.canonical();
        let map = self
            .maps
            .iter()
            .filter(|m| m.pattern.matches(name.as_str()))
            .fold(None::<&MapRule>, |best, m| match best {
                Some(b) if b.pattern.specificity() >= m.pattern.specificity() => Some(b),
                _ => Some(m),
            })?;
        match self.for_gun_anchor(gun) {
            Some(rule) if rule.pattern.specificity() > map.pattern.specificity() => None,
            _ => Some(map),
        }
    }

    /// The rule for `gun`: the most specific pattern matching its canonical name (ties: the one
    /// written first; no two rules have the same pattern), or `None`. Mappings are not
    /// consulted: ask [`TrustPins::trust_source`] first, and this for the repository it
    /// names.
    pub fn for_gun(&self, gun: &Gun) -> Option<&PinRule> {
        self.for_gun_anchor(gun)
    }

    fn for_gun_anchor(&self, gun: &Gun) -> Option<&PinRule> {
        let name = gun.canonical();
        let mut best: Option<&PinRule> = None;
        for rule in self
            .rules
            .iter()
            .filter(|r| r.pattern.matches(name.as_str()))
        {
            if best.is_none_or(|b| rule.pattern.specificity() > b.pattern.specificity()) {
                best = Some(rule);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests;
