//! Mirroring one repository, as a blocking call (run on the blocking pool): read its
//! current trust data from the store, read what its registry holds under the trust tag,
//! decide ([`super::plan::decide`]), and push the blobs, then the manifest.
//!
//! What it is not: the choice of repositories or of when to retry (`super`), nor any
//! decision of its own: those are [`super::plan`]'s.

use std::collections::BTreeMap;

use vouch_tuf::metadata::{Metadata, Root};
use vouch_tuf::oci::{
    build_trust_artifact, ACCEPT_MANIFESTS, MAX_MANIFEST_BYTES, MAX_TRUST_FILES, OCI_MANIFEST,
    TRUST_TAG,
};
use vouch_tuf::reference::{Digest, Gun};
use vouch_verifier::registry::{Registries, RegistryError};

use super::plan::{self, Decision, Failure};
use crate::store::Store;

/// What mirroring one repository did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A new artifact is under the tag.
    Pushed {
        /// Its digest.
        digest: Digest,
        /// The artifact it replaced.
        previous: Option<Digest>,
    },
    /// The tag already held this state.
    Unchanged(Digest),
    /// The tag holds something that is not this repository's trust artifact: left alone.
    Refused(String),
    /// The repository has no trust data (deleted): the registry copy is left alone.
    Absent,
}

/// Reads the trust data of `gun` from `store`, under the names a TUF client asks for
/// (every root version, the current timestamp, snapshot, targets and delegated roles);
/// `None` when the repository has none.
pub(crate) fn trust_files(
    store: &dyn Store,
    gun: &Gun,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, Failure> {
    let failed = |e: crate::store::StoreError| Failure::Transient(format!("reading {gun}: {e}"));
    let current = store.current(gun).map_err(failed)?;
    let Some(root) = current.iter().find(|f| f.role == "root") else {
        return Ok(None);
    };
    let parsed = Metadata::<Root>::from_bytes(&root.bytes)
        .map_err(|e| Failure::Permanent(format!("the stored root of {gun} does not parse: {e}")))?;
    let consistent = parsed.signed().consistent_snapshot.unwrap_or(false);
    if current.len() as u64 + root.version > MAX_TRUST_FILES as u64 {
        return Err(Failure::Permanent(format!(
            "{gun} has more metadata files than a trust artifact holds ({MAX_TRUST_FILES})"
        )));
    }
    let mut files = BTreeMap::new();
    for v in 1..root.version {
        let older = store
            .get_version(gun, "root", v)
            .map_err(failed)?
            .ok_or_else(|| Failure::Permanent(format!("{gun} has no root version {v}")))?;
        files.insert(plan::file_name("root", v, consistent), older.bytes);
    }
    for f in current {
        files.insert(plan::file_name(&f.role, f.version, consistent), f.bytes);
    }
    Ok(Some(files))
}

/// Mirrors `gun` into its registry with `client`.
pub(crate) fn mirror(
    store: &dyn Store,
    client: &mut Registries,
    gun: &Gun,
) -> Result<Outcome, Failure> {
    let Some(files) = trust_files(store, gun)? else {
        return Ok(Outcome::Absent);
    };
    let (registry, repository) = plan::destination(gun.as_str())
        .ok_or_else(|| Failure::Permanent(format!("{gun} names no registry")))?;
    let current = match client.get_manifest(
        &registry,
        &repository,
        TRUST_TAG,
        ACCEPT_MANIFESTS,
        MAX_MANIFEST_BYTES,
    ) {
        Ok(m) => Some(m),
        Err(RegistryError::ManifestUnknown { .. }) => None,
        Err(RegistryError::TooLarge { limit, .. }) => {
            return Ok(Outcome::Refused(format!(
                "the tag holds a manifest over {limit} bytes, not a vouch trust artifact"
            )))
        }
        Err(e) => return Err(plan::classify(&e)),
    };
    let decision = plan::decide(
        gun,
        current.as_ref().map(|m| (m.bytes.as_slice(), &m.digest)),
        &plan::digests(&files),
    );
    let previous = match decision {
        Decision::Unchanged(d) => return Ok(Outcome::Unchanged(d)),
        Decision::Refuse(why) => return Ok(Outcome::Refused(why)),
        Decision::Push { previous } => previous,
    };
    let artifact = build_trust_artifact(gun, &files, previous.as_ref())
        .map_err(|e| Failure::Permanent(format!("building the trust artifact of {gun}: {e}")))?;
    for blob in &artifact.blobs {
        client
            .push_blob(&registry, &repository, &blob.digest, blob.bytes)
            .map_err(|e| plan::classify(&e))?;
    }
    let digest = client
        .put_manifest(
            &registry,
            &repository,
            TRUST_TAG,
            OCI_MANIFEST,
            &artifact.manifest,
        )
        .map_err(|e| plan::classify(&e))?;
    Ok(Outcome::Pushed { digest, previous })
}
