//! A repository's trust read from an OCI registry: the trust artifact kept beside its
//! images (`vouch_tuf::oci`, docs/registry-trust.md).
//!
//! [`OciTransport`] serves the file names a TUF client asks for (`N.root.json`,
//! `timestamp.json`, …) from the layers of the artifact under [`TRUST_TAG`] in one
//! registry repository. It reads the artifact's manifest (at most [`MAX_MANIFEST_BYTES`]),
//! then each file as a blob by the digest the manifest lists, never more than the caller's
//! cap for that role nor more than the manifest announces, and checks the bytes against
//! the digest. A file the manifest embeds (`data`, checked when the manifest was read) costs
//! no request. A manifest read less than [`MANIFEST_REUSE`] ago is reused, so one refresh
//! reads it once and the next refresh sees a moved tag.
//!
//! The registry is an untrusted mirror: nothing here decides whether metadata is good.
//! A tag moved back to an older artifact, a layer swapped for another repository's file, an
//! expired copy — all reach the [`Updater`](crate::Updater) as bytes and are refused there
//! exactly as if a vouch server had served them (rollback against the cache, signatures,
//! hashes and versions from snapshot and timestamp, expiry). What this transport refuses
//! itself is only what is not a trust artifact of the expected shape, content that does not
//! match its digest, and (when told which repository it reads for,
//! [`OciTransport::expecting`]) an artifact that says it is another repository's: that is
//! no protection (the annotation is unsigned), but it turns a confusing signature failure
//! into a message that says what happened.
//!
//! How the registry is reached (HTTP, authentication, redirects to storage) is the
//! [`RegistryRepository`] implementation's: [`crate::registry`] provides one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vouch_tuf::oci::{TrustManifest, MAX_MANIFEST_BYTES, TRUST_TAG};
use vouch_tuf::reference::{Digest, Gun};

use super::{Transport, TransportError};

/// How long a manifest read is reused before the tag is read again.
pub const MANIFEST_REUSE: Duration = Duration::from_secs(1);

/// One repository of a registry, read-only: what [`OciTransport`] needs.
pub trait RegistryRepository: Send + Sync {
    /// `REGISTRY/REPOSITORY`, for messages.
    fn location(&self) -> String;

    /// The manifest under `reference`, at most `max_len` bytes, over by `deadline`;
    /// [`TransportError::NotFound`] when the registry has none.
    fn manifest(
        &self,
        reference: &str,
        max_len: u64,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, TransportError>;

    /// The blob `digest`, at most `max_len` bytes, over by `deadline`.
    fn blob(
        &self,
        digest: &Digest,
        max_len: u64,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, TransportError>;
}

impl<R: RegistryRepository + ?Sized> RegistryRepository for Arc<R> {
    fn location(&self) -> String {
        (**self).location()
    }
    fn manifest(
        &self,
        reference: &str,
        max_len: u64,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, TransportError> {
        (**self).manifest(reference, max_len, deadline)
    }
    fn blob(
        &self,
        digest: &Digest,
        max_len: u64,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, TransportError> {
        (**self).blob(digest, max_len, deadline)
    }
}

/// Serves a repository's metadata files from its trust artifact in a registry.
pub struct OciTransport<R> {
    repo: R,
    expected: Option<Gun>,
    read: Mutex<Option<(Instant, Arc<TrustManifest>)>>,
}

impl<R> std::fmt::Debug for OciTransport<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciTransport")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl<R: RegistryRepository> OciTransport<R> {
    /// Reads the trust artifact of `repo`.
    pub fn new(repo: R) -> Self {
        OciTransport {
            repo,
            expected: None,
            read: Mutex::new(None),
        }
    }

    /// Refuses an artifact that names a repository other than `gun` (see the module
    /// documentation: a clearer message, not a protection).
    pub fn expecting(mut self, gun: Gun) -> Self {
        self.expected = Some(gun);
        self
    }

    /// The registry repository read.
    pub fn repository(&self) -> &R {
        &self.repo
    }

    /// The artifact's manifest: the one read less than [`MANIFEST_REUSE`] ago, else read
    /// again.
    pub fn manifest(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Arc<TrustManifest>, TransportError> {
        if let Ok(read) = self.read.lock() {
            if let Some((at, m)) = read.as_ref() {
                if at.elapsed() < MANIFEST_REUSE {
                    return Ok(m.clone());
                }
            }
        }
        let location = format!("{}:{TRUST_TAG}", self.repo.location());
        let bytes = match self.repo.manifest(TRUST_TAG, MAX_MANIFEST_BYTES, deadline) {
            Err(TransportError::NotFound { .. }) => {
                return Err(TransportError::NotFound {
                    path: format!("{location} (no vouch trust in this registry repository)"),
                })
            }
            other => other?,
        };
        let manifest = TrustManifest::parse(&bytes).map_err(|e| TransportError::Invalid {
            path: location.clone(),
            message: e.to_string(),
        })?;
        if let (Some(want), Some(named)) = (&self.expected, manifest.gun()) {
            if named != want.as_str() {
                return Err(TransportError::Invalid {
                    path: location,
                    message: format!(
                        "this is the trust of {named}, not of {want}: an image promoted or copied from {named} is verified with a trust pin that maps its repository to {named} (trust_from)"
                    ),
                });
            }
        }
        let manifest = Arc::new(manifest);
        if let Ok(mut read) = self.read.lock() {
            *read = Some((Instant::now(), manifest.clone()));
        }
        Ok(manifest)
    }

    fn fetch_within(
        &self,
        path: &str,
        max_len: u64,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, TransportError> {
        if let Some(d) = deadline {
            super::check_deadline(path, d)?;
        }
        let manifest = self.manifest(deadline)?;
        let file = manifest
            .file(path)
            .ok_or_else(|| TransportError::NotFound {
                path: path.to_owned(),
            })?;
        if file.size > max_len {
            return Err(TransportError::TooLarge {
                path: path.to_owned(),
                limit: max_len,
            });
        }
        // Embedded in the manifest, and checked against the digest when it was read.
        if let Some(data) = &file.data {
            return Ok(data.clone());
        }
        let bytes = self
            .repo
            .blob(&file.digest, file.size, deadline)
            .map_err(|e| match e {
                // The blob is larger than the manifest says: the cap was its announced size.
                TransportError::TooLarge { .. } => TransportError::Invalid {
                    path: path.to_owned(),
                    message: format!(
                        "the registry sent more than the {} bytes the trust artifact lists",
                        file.size
                    ),
                },
                TransportError::NotFound { .. } => TransportError::Invalid {
                    path: path.to_owned(),
                    message: format!(
                        "the trust artifact lists blob {}, which the registry does not have",
                        file.digest
                    ),
                },
                e => e,
            })?;
        if bytes.len() as u64 != file.size || !file.digest.matches(&bytes) {
            return Err(TransportError::Invalid {
                path: path.to_owned(),
                message: format!(
                    "the registry sent {} bytes that are not blob {} ({} bytes)",
                    bytes.len(),
                    file.digest,
                    file.size
                ),
            });
        }
        Ok(bytes)
    }
}

impl<R: RegistryRepository> Transport for OciTransport<R> {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        self.fetch_within(path, max_len, None)
    }

    fn fetch_by(
        &self,
        path: &str,
        max_len: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
        self.fetch_within(path, max_len, Some(deadline))
    }
}

#[cfg(test)]
mod tests;
