//! Mirroring one repository, as a blocking call (run on the blocking pool): read its
//! current trust data from the store, read what its registry holds under the trust tag,
//! decide ([`vouch_tuf::oci::decide_push`], the rule every writer of a trust tag follows:
//! never over an image or another repository's artifact, never back to an older state),
//! push the blobs the tag does not list yet ([`vouch_tuf::oci::TrustArtifact::blobs_over`]), make sure the
//! lease is still held, then push the manifest. The whole push has a deadline, checked
//! before each request, so a slow registry cannot make it outlive the lease it runs under.
//!
//! What it is not: the choice of repositories or of when to retry (`super`), nor any
//! decision of its own: those are [`super::plan`]'s and `vouch_tuf::oci`'s.

use std::collections::BTreeMap;
use std::time::Instant;

use vouch_tuf::metadata::{Metadata, Root};
use vouch_tuf::oci::{
    build_trust_artifact, decide_push, PushDecision, TrustManifest, MAX_TRUST_FILES, OCI_MANIFEST,
    TRUST_TAG,
};
use vouch_tuf::reference::{Digest, Gun};
use vouch_verifier::registry::{Registries, RegistryError};

use super::plan::{self, Failure};
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
    /// The tag holds a newer state of this repository (a higher timestamp version): left
    /// alone rather than rolled back.
    Older {
        /// The timestamp version the tag holds.
        current: u64,
        /// The timestamp version the server has.
        new: u64,
    },
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
    let failed = |e: crate::store::StoreError| Failure::Registry(format!("reading {gun}: {e}"));
    let current = store.current(gun).map_err(failed)?;
    let Some(root) = current.iter().find(|f| f.role == "root") else {
        return Ok(None);
    };
    let parsed = Metadata::<Root>::from_bytes(&root.bytes).map_err(|e| {
        Failure::Repository(format!("the stored root of {gun} does not parse: {e}"))
    })?;
    let consistent = parsed.signed().consistent_snapshot.unwrap_or(false);
    if current.len() as u64 + root.version > MAX_TRUST_FILES as u64 {
        return Err(Failure::Repository(format!(
            "{gun} has more metadata files than a trust artifact holds ({MAX_TRUST_FILES})"
        )));
    }
    let mut files = BTreeMap::new();
    for v in 1..root.version {
        let older = store
            .get_version(gun, "root", v)
            .map_err(failed)?
            .ok_or_else(|| Failure::Repository(format!("{gun} has no root version {v}")))?;
        files.insert(plan::file_name("root", v, consistent), older.bytes);
    }
    for f in current {
        files.insert(plan::file_name(&f.role, f.version, consistent), f.bytes);
    }
    Ok(Some(files))
}

/// Mirrors `gun` into its registry with `client`, by `deadline` (checked before each
/// request; each request is bounded by the client's timeout). `lease` is asked just before
/// the manifest is put: it renews the registry's lease and says whether this process still
/// holds it; when it does not, nothing is written.
pub(crate) fn mirror(
    store: &dyn Store,
    client: &mut Registries,
    gun: &Gun,
    deadline: Instant,
    lease: &dyn Fn() -> Result<(), Failure>,
) -> Result<Outcome, Failure> {
    match trust_files(store, gun)? {
        Some(files) => push(client, gun, &files, deadline, lease),
        None => Ok(Outcome::Absent),
    }
}

/// Pushes `files`, the trust data of `gun`, as [`mirror`] does.
fn push(
    client: &mut Registries,
    gun: &Gun,
    files: &BTreeMap<String, Vec<u8>>,
    deadline: Instant,
    lease: &dyn Fn() -> Result<(), Failure>,
) -> Result<Outcome, Failure> {
    let in_time = |step: &str| {
        if Instant::now() >= deadline {
            Err(Failure::Repository(format!(
                "the push of {gun} ran past its deadline before {step}; it is retried"
            )))
        } else {
            Ok(())
        }
    };
    let (registry, repository) = plan::destination(gun.as_str())
        .ok_or_else(|| Failure::Repository(format!("{gun} names no registry")))?;
    in_time("reading the trust tag")?;
    let current = match client.trust_tag(&registry, &repository) {
        Ok(m) => m,
        Err(RegistryError::TooLarge { limit, .. }) => {
            return Ok(Outcome::Refused(format!(
                "the tag holds a manifest over {limit} bytes, not a vouch trust artifact"
            )))
        }
        Err(e) => return Err(plan::classify(&e)),
    };
    // The new artifact names what the tag holds as its previous one; when that is not
    // this repository's artifact, nothing is pushed anyway.
    let artifact = build_trust_artifact(gun, files, current.as_ref().map(|m| &m.digest))
        .map_err(|e| Failure::Repository(format!("building the trust artifact of {gun}: {e}")))?;
    let previous = match decide_push(
        gun,
        current.as_ref().map(|m| (m.bytes.as_slice(), &m.digest)),
        &artifact,
    ) {
        PushDecision::Unchanged(d) => return Ok(Outcome::Unchanged(d)),
        PushDecision::Refuse(why) => return Ok(Outcome::Refused(why)),
        PushDecision::Older { current, new } => return Ok(Outcome::Older { current, new }),
        PushDecision::Push { previous } => previous,
    };
    // decide_push pushes over a trust artifact only, so what the tag holds parses.
    let held = current
        .as_ref()
        .and_then(|m| TrustManifest::parse(&m.bytes).ok());
    for blob in artifact.blobs_over(held.as_ref()) {
        in_time("pushing a blob")?;
        client
            .push_blob(&registry, &repository, &blob.digest, blob.bytes)
            .map_err(|e| plan::classify(&e))?;
    }
    in_time("renewing the lease")?;
    lease()?;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vouch_testkit::registry::Registry;
    use vouch_verifier::registry::{Login, RegistryOptions};

    use super::*;

    fn files(ts: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut f = BTreeMap::new();
        f.insert("1.root.json".to_owned(), b"{\"root\":1}".to_vec());
        f.insert("timestamp.json".to_owned(), ts.to_vec());
        f
    }

    fn tag(client: &mut Registries, registry: &Registry) -> Option<Digest> {
        match client.trust_tag(registry.host(), "org/app") {
            Ok(m) => m.map(|m| m.digest),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_push_that_lost_its_lease_or_ran_past_its_deadline_writes_no_manifest() {
        let registry = Registry::start();
        let options =
            RegistryOptions::new(vec![registry.host().to_owned()], Login::Anonymous).unwrap();
        let mut client = Registries::new(options).unwrap();
        let gun = Gun::new(&format!("{}/org/app", registry.host())).unwrap();
        let later = || Instant::now() + Duration::from_secs(60);
        let held = || Ok(());
        let lost = || Err(Failure::LeaseLost);
        let ts1 = files(br#"{"signed":{"version":1}}"#);

        assert_eq!(
            push(&mut client, &gun, &ts1, later(), &lost),
            Err(Failure::LeaseLost)
        );
        assert_eq!(tag(&mut client, &registry), None);
        let late = push(&mut client, &gun, &ts1, Instant::now(), &held);
        assert!(
            matches!(&late, Err(Failure::Repository(why)) if why.contains("deadline")),
            "{late:?}"
        );
        assert_eq!(tag(&mut client, &registry), None);

        let Ok(Outcome::Pushed { digest, previous }) =
            push(&mut client, &gun, &ts1, later(), &held)
        else {
            panic!("not pushed")
        };
        assert_eq!(previous, None);
        assert_eq!(tag(&mut client, &registry), Some(digest.clone()));
        let ts2 = files(br#"{"signed":{"version":2}}"#);
        assert_eq!(
            push(&mut client, &gun, &ts2, later(), &lost),
            Err(Failure::LeaseLost)
        );
        assert_eq!(tag(&mut client, &registry), Some(digest.clone()));
        // An older state than the tag's is never pushed, lease or not.
        let Ok(Outcome::Pushed { digest: second, .. }) =
            push(&mut client, &gun, &ts2, later(), &held)
        else {
            panic!("not pushed")
        };
        assert_eq!(
            push(&mut client, &gun, &ts1, later(), &held),
            Ok(Outcome::Older { current: 2, new: 1 })
        );
        assert_eq!(tag(&mut client, &registry), Some(second));
    }
}
