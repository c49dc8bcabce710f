//! One registry repository as a [`RegistryRepository`]: what the OCI transport reads trust
//! artifacts through.
//!
//! [`RegistryRepo`] names a repository (`REGISTRY/REPOSITORY`) and shares a [`Registries`]
//! client (its connections and the authorisations it was granted) with every other
//! repository read in the same process. Registry errors become transport errors: a missing
//! manifest or blob is [`TransportError::NotFound`], an answer over its cap
//! [`TransportError::TooLarge`], content that does not match its digest
//! [`TransportError::Invalid`], no answer by the deadline [`TransportError::TimedOut`], and
//! everything else [`TransportError::Network`] with the registry's own message (which says
//! what to do about credentials).
//!
//! The shared client's lock is held only to take a handle on it ([`Registries`] clones
//! share their connections and grants), never across a request: reads of many repositories
//! of one registry run concurrently, and each is bounded by the caller's deadline.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use vouch_tuf::oci::OCI_MANIFEST;
use vouch_tuf::reference::{Digest, ImageRef};

use super::{Registries, RegistryError};
use crate::transport::{RegistryRepository, TransportError};

/// A registry repository read through a shared [`Registries`] client.
#[derive(Clone)]
pub struct RegistryRepo {
    client: Arc<Mutex<Registries>>,
    registry: String,
    repository: String,
}

impl std::fmt::Debug for RegistryRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryRepo({}/{})", self.registry, self.repository)
    }
}

impl RegistryRepo {
    /// Repository `repository` of `registry` (`host[:port]` as in image names).
    pub fn new(client: Arc<Mutex<Registries>>, registry: &str, repository: &str) -> Self {
        RegistryRepo {
            client,
            registry: registry.to_owned(),
            repository: repository.to_owned(),
        }
    }

    /// The repository `image` is in (its registry and path, canonical).
    pub fn of_image(client: Arc<Mutex<Registries>>, image: &ImageRef) -> Self {
        Self::new(client, image.registry(), image.repository())
    }

    /// The registry, `host[:port]`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The shared client.
    pub fn client(&self) -> &Arc<Mutex<Registries>> {
        &self.client
    }

    /// Runs `f` on a handle of the shared client, taken under its lock and used after the
    /// lock is released.
    fn with_client<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Registries) -> Result<T, RegistryError>,
    ) -> Result<T, TransportError> {
        let client = self
            .client
            .lock()
            .map_err(|_| TransportError::Network {
                path: what.to_owned(),
                message: "the registry client failed earlier (poisoned)".to_owned(),
            })?
            .clone();
        f(&client).map_err(|e| transport_error(what, e))
    }
}

/// A registry error as the transport reports it.
fn transport_error(what: &str, e: RegistryError) -> TransportError {
    let path = what.to_owned();
    match e {
        RegistryError::ManifestUnknown { .. } | RegistryError::BlobUnknown { .. } => {
            TransportError::NotFound { path }
        }
        RegistryError::TooLarge { limit, .. } => TransportError::TooLarge { path, limit },
        RegistryError::TimedOut { .. } => TransportError::TimedOut { path },
        e @ (RegistryError::DigestMismatch { .. } | RegistryError::BlobMismatch { .. }) => {
            TransportError::Invalid {
                path,
                message: e.to_string(),
            }
        }
        e => TransportError::Network {
            path,
            message: e.to_string(),
        },
    }
}

impl RegistryRepository for RegistryRepo {
    fn location(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The manifest under `reference`, read whole by `deadline` (each answer also within the
    /// client's answer timeout); a deadline already past is not started.
    fn manifest(
        &self,
        reference: &str,
        max_len: u64,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, TransportError> {
        let what = format!("{}:{reference}", self.location());
        if let Some(d) = deadline {
            crate::transport::check_deadline(&what, d)?;
        }
        self.with_client(&what, |c| {
            c.get_manifest_by(
                &self.registry,
                &self.repository,
                reference,
                OCI_MANIFEST,
                max_len,
                deadline,
            )
        })
        .map(|m| m.bytes)
    }

    fn blob(
        &self,
        digest: &Digest,
        max_len: u64,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, TransportError> {
        let what = format!("{}@{digest}", self.location());
        if let Some(d) = deadline {
            crate::transport::check_deadline(&what, d)?;
        }
        self.with_client(&what, |c| {
            c.get_blob_by(&self.registry, &self.repository, digest, max_len, deadline)
        })
    }
}
