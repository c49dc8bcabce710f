//! Trust that travels with the image: a repository's TUF metadata as an OCI artifact, and
//! the parts of OCI manifests that copying an image needs.
//!
//! A registry keeps a repository's trust next to its images, in the same OCI repository,
//! as one OCI image manifest ([`TrustArtifact`]) under the reserved tag [`TRUST_TAG`]:
//!
//! ```text
//! {
//!   "schemaVersion": 2,
//!   "mediaType": "application/vnd.oci.image.manifest.v1+json",
//!   "artifactType": "application/vnd.vouch.trust.v1",
//!   "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:4413…", "size": 2 },
//!   "layers": [
//!     { "mediaType": "application/vnd.tuf.metadata+json", "digest": "sha256:…", "size": 1710,
//!       "annotations": { "tuf.io/filename": "1.root.json" } },
//!     …  every root version, then timestamp.json, the snapshot, targets, delegated roles
//!   ],
//!   "annotations": { "dev.vouch.trust.gun": "registry.example.com/org/app",
//!                    "dev.vouch.trust.previous": "sha256:…" }
//! }
//! ```
//!
//! - One layer per metadata file, its bytes exactly as the repository serves them, named by
//!   the `tuf.io/filename` annotation with the file name a TUF client asks for
//!   (`N.root.json`, `timestamp.json`, `N.snapshot.json`, `N.targets.json`,
//!   `N.<percent-encoded role>.json`; [`FileRef::from_file_name`] is the grammar). Every
//!   root version is there, so a client holding any older root walks the chain.
//! - A file of at most [`MAX_EMBEDDED_FILE`] bytes is also embedded in its descriptor
//!   (OCI 1.1's `data`, base64), while the artifact's embedded total stays within
//!   [`MAX_EMBEDDED_TOTAL`]: a reader then has the small files (timestamp, snapshot, roots,
//!   small targets files) with the manifest, and fetches only larger files as blobs. The
//!   blob is pushed all the same, for
//!   readers that ignore `data`; embedded bytes are checked against the descriptor's size
//!   and digest like a blob's.
//! - The empty config of OCI 1.1 and no `subject`: the artifact describes a repository, not
//!   one image, and registries without the referrers API (Distribution 2.8) store it as
//!   any other manifest.
//! - `dev.vouch.trust.previous` is the digest of the artifact it replaced, so every older
//!   state stays reachable by digest, newest to oldest.
//! - `dev.vouch.trust.gun` names the repository whose trust it is. It is not signed and
//!   decides nothing: the signed `x-vouch-gun` of the root and the TUF checks do. A reader
//!   uses it to say clearly that it was handed another repository's trust.
//!
//! The same file set always gives the same layers in the same order, so writing an
//! unchanged state again is recognised ([`TrustManifest::same_files`]) and skipped.
//!
//! Nothing read from a registry is trusted for having been read: [`TrustManifest::parse`]
//! checks shape and bounds only (at most [`MAX_TRUST_FILES`] files, each at most
//! [`MAX_FILE_BYTES`] announced, names in the file grammar, no name twice). What the files
//! say is the verifier's to check, exactly as if a vouch server had served them.
//!
//! [`References`] reads image manifests and indexes (OCI and Docker schema 2) for what a
//! copy must carry over: child manifests, config and layer blobs, bounded the same way.
//!
//! What this module is not: a registry client. It builds and reads documents; moving them
//! is `vouch_verifier::registry`'s job.

use std::collections::BTreeMap;

use base64ct::{Base64, Encoding};
use thiserror::Error;

use crate::api::{FileRef, RouteError};
use crate::json::{self, Map, Value};
use crate::reference::{Digest, DigestAlgorithm, Gun};

/// The tag a repository's trust artifact is pushed under.
///
/// It cannot stand for an image a user pushes: vouch refuses to sign a target of this
/// name (a target's name is a tag), so no trusted image is ever named by it, and a writer
/// never replaces what the tag holds unless that is a vouch trust artifact (an image pushed
/// under it by mistake is left alone, and the mirror reports it). The leading `_`, legal in
/// a tag but used by no release convention, keeps it apart from version tags, as `_trust`
/// keeps the server's API apart from repository names.
pub const TRUST_TAG: &str = "_vouch.trust";
/// The `artifactType` of a trust artifact.
pub const ARTIFACT_TYPE: &str = "application/vnd.vouch.trust.v1";
/// The media type of a layer holding one TUF metadata file.
pub const METADATA_MEDIA_TYPE: &str = "application/vnd.tuf.metadata+json";
/// The layer annotation naming its file.
pub const FILENAME_ANNOTATION: &str = "tuf.io/filename";
/// The manifest annotation naming the repository.
pub const GUN_ANNOTATION: &str = "dev.vouch.trust.gun";
/// The manifest annotation naming the artifact this one replaced.
pub const PREVIOUS_ANNOTATION: &str = "dev.vouch.trust.previous";

/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// A Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// A Docker schema 2 manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The media type of OCI 1.1's empty descriptor.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The bytes of OCI 1.1's empty descriptor.
pub const EMPTY_JSON: &[u8] = b"{}";

/// The manifest types a copy understands, for an `Accept` header, most specific first.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest read or written (what registries commonly accept).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Most files one trust artifact may hold (every root version and every delegated role
/// of a repository; a repository of 16,384 hashed bins would need more, and a 4 MiB
/// manifest holds about this many descriptors anyway).
pub const MAX_TRUST_FILES: usize = 16_384;
/// Largest size a trust artifact may announce for one file. The reader's own caps per
/// role (far smaller by default) decide what it reads; this bounds what is believed.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest file whose bytes a trust artifact also embeds in its layer's descriptor (the
/// OCI 1.1 `data` property), so a reader gets it with the manifest instead of one more
/// request: timestamps, snapshots, roots and small targets files. Larger files cost less
/// as blobs (raw bytes) than as base64 in a manifest every refresh reads again
/// (`bench/registry/`).
pub const MAX_EMBEDDED_FILE: usize = 16 * 1024;
/// Most bytes a trust artifact embeds in all (files are embedded in layer order while they
/// fit), which keeps the manifest a reader fetches on every refresh small.
pub const MAX_EMBEDDED_TOTAL: usize = 256 * 1024;
/// Most descriptors (child manifests, or config plus layers) one image manifest or index
/// may list.
pub const MAX_REFERENCES: usize = 4_096;

/// A document that is not what it must be.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OciError {
    /// Not JSON, or JSON of another shape.
    #[error("not an OCI manifest: {0}")]
    Malformed(String),
    /// A manifest, but not a vouch trust artifact (an image under the reserved tag, say).
    #[error("not a vouch trust artifact: {0}")]
    NotTrust(String),
    /// More than a bound allows.
    #[error("{what}: more than {limit}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The bound.
        limit: u64,
    },
    /// One layer is wrong.
    #[error("layer {index}: {message}")]
    Layer {
        /// Its position, from 0.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// A file that cannot go in an artifact.
    #[error("file {name:?}: {message}")]
    File {
        /// The file name.
        name: String,
        /// Why.
        message: String,
    },
}

/// One blob an artifact refers to, with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob<'a> {
    /// Its digest (sha256).
    pub digest: Digest,
    /// Its bytes.
    pub bytes: &'a [u8],
}

/// A trust artifact ready to push: push every blob, then the manifest (under
/// [`TRUST_TAG`], which makes it current; its digest is how it stays reachable).
#[derive(Debug, Clone)]
pub struct TrustArtifact<'a> {
    /// The manifest's bytes.
    pub manifest: Vec<u8>,
    /// The manifest's digest.
    pub digest: Digest,
    /// The config blob, then one blob per file, in layer order.
    pub blobs: Vec<Blob<'a>>,
    /// File name to layer digest, as [`TrustManifest::files`] will read it back.
    pub files: BTreeMap<String, Digest>,
}

/// The order files are listed in: root versions by version, then timestamp, snapshot,
/// targets, then delegated roles by name.
fn layer_order(name: &str, file: &FileRef) -> (u8, u64, String) {
    let rank = match file.role() {
        "root" => 0,
        "timestamp" => 1,
        "snapshot" => 2,
        "targets" => 3,
        _ => 4,
    };
    let version = match file {
        FileRef::Version(_, v) => *v,
        _ => 0,
    };
    (rank, version, name.to_owned())
}

fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Map {
    let mut d = Map::new();
    d.insert("mediaType".into(), Value::from(media_type));
    d.insert("digest".into(), Value::from(digest.as_str()));
    d.insert("size".into(), Value::from(size));
    d
}

/// Builds the trust artifact of `gun` holding `files` (file name to exact bytes), which
/// replaced the artifact `previous`, if any.
///
/// ```
/// use std::collections::BTreeMap;
/// use vouch_tuf::oci::{build_trust_artifact, TrustManifest};
/// use vouch_tuf::reference::Gun;
///
/// let gun = Gun::new("registry.example.com/org/app").unwrap();
/// let mut files = BTreeMap::new();
/// files.insert("1.root.json".to_owned(), b"{\"signed\":{}}".to_vec());
/// files.insert("timestamp.json".to_owned(), b"{}".to_vec());
/// let artifact = build_trust_artifact(&gun, &files, None).unwrap();
/// let read = TrustManifest::parse(&artifact.manifest).unwrap();
/// assert_eq!(read.gun(), Some(gun.as_str()));
/// assert!(read.same_files(&artifact.files));
/// ```
pub fn build_trust_artifact<'a>(
    gun: &Gun,
    files: &'a BTreeMap<String, Vec<u8>>,
    previous: Option<&Digest>,
) -> Result<TrustArtifact<'a>, OciError> {
    if files.is_empty() {
        return Err(OciError::File {
            name: String::new(),
            message: "a trust artifact holds at least one file".into(),
        });
    }
    if files.len() > MAX_TRUST_FILES {
        return Err(OciError::TooMany {
            what: "files",
            limit: MAX_TRUST_FILES as u64,
        });
    }
    let mut ordered = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let file = trust_file_ref(name).map_err(|message| OciError::File {
            name: name.clone(),
            message,
        })?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(OciError::File {
                name: name.clone(),
                message: format!("larger than {MAX_FILE_BYTES} bytes"),
            });
        }
        ordered.push((layer_order(name, &file), name, bytes));
    }
    ordered.sort_by(|a, b| a.0.cmp(&b.0));

    let config_digest = Digest::sha256_of(EMPTY_JSON);
    let mut blobs = vec![Blob {
        digest: config_digest.clone(),
        bytes: EMPTY_JSON,
    }];
    let mut layers = Vec::with_capacity(ordered.len());
    let mut listed = BTreeMap::new();
    let mut embedded = 0usize;
    for (_, name, bytes) in ordered {
        let digest = Digest::sha256_of(bytes);
        let mut layer = descriptor(METADATA_MEDIA_TYPE, &digest, bytes.len() as u64);
        if bytes.len() <= MAX_EMBEDDED_FILE && embedded + bytes.len() <= MAX_EMBEDDED_TOTAL {
            embedded += bytes.len();
            layer.insert("data".into(), Value::from(Base64::encode_string(bytes)));
        }
        let mut ann = Map::new();
        ann.insert(FILENAME_ANNOTATION.into(), Value::from(name.as_str()));
        layer.insert("annotations".into(), Value::from(ann));
        layers.push(Value::from(layer));
        listed.insert(name.clone(), digest.clone());
        blobs.push(Blob { digest, bytes });
    }

    let mut annotations = Map::new();
    annotations.insert(GUN_ANNOTATION.into(), Value::from(gun.as_str()));
    if let Some(p) = previous {
        annotations.insert(PREVIOUS_ANNOTATION.into(), Value::from(p.as_str()));
    }
    let mut m = Map::new();
    m.insert("schemaVersion".into(), Value::from(2u64));
    m.insert("mediaType".into(), Value::from(OCI_MANIFEST));
    m.insert("artifactType".into(), Value::from(ARTIFACT_TYPE));
    m.insert(
        "config".into(),
        Value::from(descriptor(
            EMPTY_MEDIA_TYPE,
            &config_digest,
            EMPTY_JSON.len() as u64,
        )),
    );
    m.insert("layers".into(), Value::from(layers));
    m.insert("annotations".into(), Value::from(annotations));
    let manifest = json::to_json(&Value::from(m));
    if manifest.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(OciError::TooMany {
            what: "manifest bytes",
            limit: MAX_MANIFEST_BYTES,
        });
    }
    Ok(TrustArtifact {
        digest: Digest::sha256_of(&manifest),
        manifest,
        blobs,
        files: listed,
    })
}

impl<'a> TrustArtifact<'a> {
    /// The bytes of file `name`, when the artifact holds it.
    pub fn file_bytes(&self, name: &str) -> Option<&[u8]> {
        let digest = self.files.get(name)?;
        self.blobs
            .iter()
            .find(|b| &b.digest == digest)
            .map(|b| b.bytes)
    }

    /// The blobs to push over `held`, the trust artifact the tag holds (pushed over, as
    /// [`decide_push`] allows): only those it does not already list. Its files and its
    /// config (the empty descriptor every trust artifact has) are in the registry's
    /// repository already (a registry stores a manifest only with every blob it names), so
    /// neither a `HEAD` nor an upload is spent on them. Every blob when the tag holds none.
    pub fn blobs_over(&self, held: Option<&TrustManifest>) -> Vec<&Blob<'a>> {
        let Some(held) = held else {
            return self.blobs.iter().collect();
        };
        let empty = Digest::sha256_of(EMPTY_JSON);
        let listed: std::collections::BTreeSet<&Digest> = held
            .files()
            .values()
            .map(|f| &f.digest)
            .chain([&empty])
            .collect();
        self.blobs
            .iter()
            .filter(|b| !listed.contains(&b.digest))
            .collect()
    }
}

/// What a writer does with the trust tag of a repository, given what it holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushDecision {
    /// Push the new artifact, naming `previous` (what the tag held) in it.
    Push {
        /// The artifact the new one replaces, if the tag held one.
        previous: Option<Digest>,
    },
    /// The tag already holds exactly these files (this digest): nothing to push.
    Unchanged(Digest),
    /// The tag holds a newer state of the same repository (its timestamp version is higher):
    /// pushing would roll the copy back, so nothing is pushed.
    Older {
        /// The timestamp version the tag holds.
        current: u64,
        /// The timestamp version that was to be pushed.
        new: u64,
    },
    /// The tag holds something that is not this repository's trust artifact: an image, the
    /// artifact of another repository, an artifact naming none. It is left alone.
    Refuse(String),
}

/// The version of the `timestamp.json` bytes `bytes` (its `signed.version`), read without
/// checking anything else: for a writer deciding not to go backwards, never for trust.
fn timestamp_version(bytes: &[u8]) -> Option<u64> {
    let v = json::parse(bytes).ok()?;
    v.as_object()?
        .get("signed")?
        .as_object()?
        .get("version")?
        .as_u64()
}

/// Whether a writer (the server's mirror, `vouch mirror`, `vouch promote`) pushes `new`,
/// the trust artifact of `gun`, over `current`, what the trust tag holds now (its manifest
/// bytes and digest; `None` when the tag is absent). The one rule for every writer:
///
/// - nothing, or this repository's artifact with other files: push, naming it `previous`;
/// - this repository's artifact with the same files: unchanged;
/// - this repository's artifact holding a *newer* state of the same history (the same first
///   root, and a higher timestamp version than `new`'s): older, nothing pushed — a slow
///   writer (a replica that lost its lease, a `vouch mirror` reading a stale copy) never
///   rolls the copy back. A repository created again (another first root) starts a new
///   history and replaces it;
/// - anything else (an image, another repository's artifact, one naming none): refused.
///
/// The versions are read from the files as they are, unsigned: this decides only what a
/// writer does; readers check everything.
pub fn decide_push(
    gun: &Gun,
    current: Option<(&[u8], &Digest)>,
    new: &TrustArtifact<'_>,
) -> PushDecision {
    let Some((bytes, digest)) = current else {
        return PushDecision::Push { previous: None };
    };
    let manifest = match TrustManifest::parse(bytes) {
        Ok(m) => m,
        Err(e) => {
            return PushDecision::Refuse(format!(
                "the tag holds {digest}, which is not a vouch trust artifact ({e})"
            ))
        }
    };
    match manifest.gun() {
        Some(g) if g == gun.as_str() => {}
        Some(other) => {
            return PushDecision::Refuse(format!(
                "the tag holds {digest}, the trust artifact of another repository ({other})"
            ))
        }
        None => {
            return PushDecision::Refuse(format!(
                "the tag holds {digest}, a trust artifact that names no repository"
            ))
        }
    }
    if manifest.same_files(&new.files) {
        return PushDecision::Unchanged(digest.clone());
    }
    const FIRST_ROOT: &str = "1.root.json";
    const TIMESTAMP: &str = "timestamp.json";
    let same_history = manifest.file(FIRST_ROOT).map(|f| &f.digest) == new.files.get(FIRST_ROOT);
    let held = manifest
        .file(TIMESTAMP)
        .and_then(|f| f.data.as_deref())
        .and_then(timestamp_version);
    let pushing = new.file_bytes(TIMESTAMP).and_then(timestamp_version);
    if let (true, Some(current), Some(new)) = (same_history, held, pushing) {
        if current > new {
            return PushDecision::Older { current, new };
        }
    }
    PushDecision::Push {
        previous: Some(digest.clone()),
    }
}

/// The file a trust artifact may hold under `name`: a metadata file in the spelling vouch
/// writes, not an online key.
fn trust_file_ref(name: &str) -> Result<FileRef, String> {
    match FileRef::from_file_name(name) {
        Ok(FileRef::Key(_)) => Err("keys are not trust metadata".into()),
        Ok(f) => Ok(f),
        Err(RouteError::InvalidFile(why) | RouteError::InvalidGun(why)) => Err(why),
        Err(RouteError::NotFound) => Err("not a metadata file name".into()),
    }
}

/// One file of a trust artifact, as its manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustFile {
    /// The layer's digest: where the bytes are, and what they must hash to.
    pub digest: Digest,
    /// The size the manifest announces (at most [`MAX_FILE_BYTES`]).
    pub size: u64,
    /// The bytes, when the descriptor embeds them (`data`): checked against `size` and
    /// `digest` when the manifest was read, so they are the blob's bytes.
    pub data: Option<Vec<u8>>,
}

/// A trust artifact's manifest as read from a registry: shape and bounds checked, contents
/// not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustManifest {
    gun: Option<String>,
    previous: Option<Digest>,
    files: BTreeMap<String, TrustFile>,
}

fn str_field<'v>(m: &'v Map, key: &str) -> Option<&'v str> {
    m.get(key).and_then(Value::as_str)
}

/// A descriptor's digest, size and media type.
fn read_descriptor(v: &Value) -> Result<Descriptor, String> {
    let d = v.as_object().ok_or("not an object")?;
    let media_type = str_field(d, "mediaType").ok_or("no mediaType")?.to_owned();
    let digest = Digest::parse(str_field(d, "digest").ok_or("no digest")?)
        .map_err(|e| format!("digest: {e}"))?;
    let size = d
        .get("size")
        .and_then(Value::as_u64)
        .ok_or("no size (a non-negative integer)")?;
    let external = d
        .get("urls")
        .and_then(Value::as_array)
        .is_some_and(|u| !u.is_empty());
    Ok(Descriptor {
        media_type,
        digest,
        size,
        external,
    })
}

impl TrustManifest {
    /// Reads a trust artifact's manifest, checking its shape and bounds.
    pub fn parse(bytes: &[u8]) -> Result<Self, OciError> {
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(OciError::TooMany {
                what: "manifest bytes",
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let v = json::parse(bytes).map_err(|e| OciError::Malformed(e.to_string()))?;
        let m = v
            .as_object()
            .ok_or_else(|| OciError::Malformed("not a JSON object".into()))?;
        if m.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
            return Err(OciError::Malformed("schemaVersion is not 2".into()));
        }
        let media_type = str_field(m, "mediaType");
        if media_type != Some(OCI_MANIFEST) {
            return Err(OciError::NotTrust(format!(
                "media type {}, not {OCI_MANIFEST}",
                media_type.unwrap_or("(none)")
            )));
        }
        let artifact_type = str_field(m, "artifactType");
        if artifact_type != Some(ARTIFACT_TYPE) {
            return Err(OciError::NotTrust(format!(
                "artifact type {}, not {ARTIFACT_TYPE}",
                artifact_type.unwrap_or("(none)")
            )));
        }
        let layers = m
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| OciError::Malformed("no layers array".into()))?;
        if layers.len() > MAX_TRUST_FILES {
            return Err(OciError::TooMany {
                what: "layers",
                limit: MAX_TRUST_FILES as u64,
            });
        }
        let mut files = BTreeMap::new();
        for (index, layer) in layers.iter().enumerate() {
            let bad = |message: String| OciError::Layer { index, message };
            let d = read_descriptor(layer).map_err(bad)?;
            if d.media_type != METADATA_MEDIA_TYPE {
                return Err(bad(format!(
                    "media type {}, not {METADATA_MEDIA_TYPE}",
                    d.media_type
                )));
            }
            if d.digest.algorithm() != DigestAlgorithm::Sha256 {
                return Err(bad("digest is not sha256".into()));
            }
            if d.size > MAX_FILE_BYTES {
                return Err(bad(format!(
                    "announces {} bytes, more than {MAX_FILE_BYTES}",
                    d.size
                )));
            }
            let name = layer
                .as_object()
                .and_then(|l| l.get("annotations"))
                .and_then(Value::as_object)
                .and_then(|a| str_field(a, FILENAME_ANNOTATION))
                .ok_or_else(|| bad(format!("no {FILENAME_ANNOTATION} annotation")))?;
            trust_file_ref(name).map_err(|e| bad(format!("file name {name:?}: {e}")))?;
            let data = match layer.as_object().and_then(|l| l.get("data")) {
                None => None,
                Some(v) => {
                    let text = v
                        .as_str()
                        .ok_or_else(|| bad("data is not a base64 string".into()))?;
                    let bytes = Base64::decode_vec(text)
                        .map_err(|_| bad("data is not valid base64".into()))?;
                    if bytes.len() as u64 != d.size || !d.digest.matches(&bytes) {
                        return Err(bad(format!(
                            "the embedded data of {name:?} is not blob {} ({} bytes)",
                            d.digest, d.size
                        )));
                    }
                    Some(bytes)
                }
            };
            let file = TrustFile {
                digest: d.digest,
                size: d.size,
                data,
            };
            if files.insert(name.to_owned(), file).is_some() {
                return Err(bad(format!("file {name:?} listed twice")));
            }
        }
        let annotations = m.get("annotations").and_then(Value::as_object);
        let gun = annotations
            .and_then(|a| str_field(a, GUN_ANNOTATION))
            .map(str::to_owned);
        let previous = match annotations.and_then(|a| str_field(a, PREVIOUS_ANNOTATION)) {
            None => None,
            Some(p) => Some(
                Digest::parse(p)
                    .map_err(|e| OciError::Malformed(format!("{PREVIOUS_ANNOTATION}: {e}")))?,
            ),
        };
        Ok(TrustManifest {
            gun,
            previous,
            files,
        })
    }

    /// The repository the artifact says it belongs to (unsigned: for messages only).
    pub fn gun(&self) -> Option<&str> {
        self.gun.as_deref()
    }

    /// The artifact this one replaced.
    pub fn previous(&self) -> Option<&Digest> {
        self.previous.as_ref()
    }

    /// The file listed under `name`.
    pub fn file(&self, name: &str) -> Option<&TrustFile> {
        self.files.get(name)
    }

    /// Every file, by name.
    pub fn files(&self) -> &BTreeMap<String, TrustFile> {
        &self.files
    }

    /// True when the artifact lists exactly these files with exactly these digests.
    pub fn same_files(&self, files: &BTreeMap<String, Digest>) -> bool {
        self.files.len() == files.len()
            && self
                .files
                .iter()
                .zip(files)
                .all(|((a, fa), (b, db))| a == b && fa.digest == *db)
    }
}

/// A descriptor in an image manifest or index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Its media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// True for a foreign (non-distributable) blob the registry does not hold: it has
    /// `urls` to fetch it from elsewhere, and a copy leaves it where it is.
    pub external: bool,
}

/// Whether a manifest is an index of others or one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An OCI image index or Docker manifest list: it lists manifests.
    Index,
    /// An image (or artifact) manifest: it lists a config and layers.
    Image,
}

/// What one manifest refers to, for a copy: the manifests of an index, or the config and
/// layers of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct References {
    /// Index or image.
    pub kind: ManifestKind,
    /// The manifest's media type (from the document, else the one the registry gave).
    pub media_type: String,
    /// An index's manifests.
    pub manifests: Vec<Descriptor>,
    /// An image's config then layers.
    pub blobs: Vec<Descriptor>,
}

impl References {
    /// Reads what the manifest `bytes` refers to; `served_as` is the media type the
    /// registry served it with, used when the document does not say (OCI allows that).
    pub fn parse(bytes: &[u8], served_as: Option<&str>) -> Result<Self, OciError> {
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(OciError::TooMany {
                what: "manifest bytes",
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let v = json::parse(bytes).map_err(|e| OciError::Malformed(e.to_string()))?;
        let m = v
            .as_object()
            .ok_or_else(|| OciError::Malformed("not a JSON object".into()))?;
        if m.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
            return Err(OciError::Malformed(
                "schemaVersion is not 2 (Docker schema 1 images cannot be copied)".into(),
            ));
        }
        let media_type = match (str_field(m, "mediaType"), served_as) {
            (Some(t), _) => t.to_owned(),
            (None, Some(t)) if t == OCI_MANIFEST || t == OCI_INDEX => t.to_owned(),
            (None, _) if m.contains_key("manifests") => OCI_INDEX.to_owned(),
            (None, _) => OCI_MANIFEST.to_owned(),
        };
        let list = |key: &'static str| -> Result<Vec<Descriptor>, OciError> {
            let items = match m.get(key) {
                None => return Ok(Vec::new()),
                Some(v) => v
                    .as_array()
                    .ok_or_else(|| OciError::Malformed(format!("{key} is not an array")))?,
            };
            if items.len() > MAX_REFERENCES {
                return Err(OciError::TooMany {
                    what: key,
                    limit: MAX_REFERENCES as u64,
                });
            }
            items
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    read_descriptor(d).map_err(|e| OciError::Malformed(format!("{key}[{i}]: {e}")))
                })
                .collect()
        };
        match media_type.as_str() {
            OCI_INDEX | DOCKER_MANIFEST_LIST => Ok(References {
                kind: ManifestKind::Index,
                media_type,
                manifests: list("manifests")?,
                blobs: Vec::new(),
            }),
            OCI_MANIFEST | DOCKER_MANIFEST => {
                let config = m
                    .get("config")
                    .ok_or_else(|| OciError::Malformed("no config".into()))
                    .and_then(|c| {
                        read_descriptor(c).map_err(|e| OciError::Malformed(format!("config: {e}")))
                    })?;
                let mut blobs = vec![config];
                blobs.extend(list("layers")?);
                Ok(References {
                    kind: ManifestKind::Image,
                    media_type,
                    manifests: Vec::new(),
                    blobs,
                })
            }
            other => Err(OciError::Malformed(format!(
                "media type {other} is not an OCI or Docker schema 2 manifest or index"
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
