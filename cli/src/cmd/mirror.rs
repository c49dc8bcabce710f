//! `vouch mirror GUN [--to REGISTRY/REPO]`: keep a copy of a repository's trust in the OCI
//! registry beside its images, so that consumers can verify with only the registry reachable
//! (`vouch verify --source registry`, the admission webhook).
//!
//! The repository is refreshed from `--source` (the server by default) exactly as `vouch
//! verify` refreshes it, and exactly the files that were verified ([`Repo::bundle`]) become
//! the trust artifact (`vouch_tuf::oci::build_trust_artifact`), pushed under the
//! `_vouch.trust` tag of the GUN's own registry repository, or of `--to`: the blobs first,
//! then the manifest, so the tag never names an artifact whose files are missing. The
//! artifact replaced is named in the new one (`previous`), so older states stay reachable
//! by digest. An unchanged state is not pushed again. A tag holding anything but a vouch
//! trust artifact is never overwritten: the command stops and says what is there.
//!
//! [`push_trust`] is also what `vouch promote` pushes to the promoted image's repository.
//!
//! What it is not: a check of the copy. Nothing a registry serves is trusted for being
//! there; readers verify the copy exactly as they verify the server.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context as _};
use serde_json::json;
use vouch_tuf::oci::{build_trust_artifact, TrustManifest, ACCEPT_MANIFESTS};
use vouch_tuf::oci::{MAX_MANIFEST_BYTES, OCI_MANIFEST, TRUST_TAG};
use vouch_tuf::reference::Digest;
use vouch_verifier::registry::RegistryError;

use crate::context::Context;
use crate::output::{self, Format};
use crate::repo::Repo;
use crate::source::Location;

/// `vouch mirror`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The repository whose trust is mirrored (HOST/ORG/APP).
    pub gun: String,
    /// Push to this registry repository (REGISTRY/REPO) instead of the GUN's own.
    #[arg(long, value_name = "REGISTRY/REPO")]
    pub to: Option<String>,
}

/// What a push of a repository's trust did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// Where it went.
    pub destination: Location,
    /// The artifact's digest (the one already there, when unchanged).
    pub digest: Digest,
    /// The file names it holds.
    pub files: Vec<String>,
    /// False when the destination already held exactly these files.
    pub pushed: bool,
}

impl Pushed {
    /// As JSON output shows it.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "destination": format!("{}:{TRUST_TAG}", self.destination),
            "digest": self.digest.as_str(),
            "files": self.files,
            "pushed": self.pushed,
            "unchanged": !self.pushed,
        })
    }

    /// As text output says it.
    pub fn to_text(&self) -> String {
        let what = if self.pushed { "pushed" } else { "unchanged" };
        format!(
            "{what} {}:{TRUST_TAG}@{} ({} files)",
            self.destination,
            self.digest,
            self.files.len()
        )
    }
}

/// Runs `vouch mirror`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let gun = super::parse_gun(&args.gun)?;
    let to = match &args.to {
        Some(to) => Location::parse(to, "--to")?,
        None => Location::of_gun(&gun)?,
    };
    let repo = Repo::open(ctx, &gun)?;
    let pushed = push_trust(ctx, &repo, &to)?;
    match ctx.output {
        Format::Json => output::json(&pushed.to_json()),
        Format::Text => output::text(&pushed.to_text()),
    }
}

/// Pushes the verified trust of `repo` to `to` under the trust tag, unless `to` holds
/// exactly these files already; refuses to replace anything but a vouch trust artifact.
pub fn push_trust(ctx: &Context, repo: &Repo, to: &Location) -> anyhow::Result<Pushed> {
    let files: BTreeMap<String, Vec<u8>> = repo.bundle()?.files;
    let client = ctx.registries()?;
    let mut registries = client
        .lock()
        .map_err(|_| anyhow!("the registry client failed earlier"))?;
    let (registry, repository) = (to.registry.as_str(), to.repository.as_str());
    let tagged = format!("{to}:{TRUST_TAG}");
    let previous = match registries.get_manifest(
        registry,
        repository,
        TRUST_TAG,
        ACCEPT_MANIFESTS,
        MAX_MANIFEST_BYTES,
    ) {
        Ok(m) => {
            let current = TrustManifest::parse(&m.bytes).map_err(|e| {
                anyhow!(
                    "{tagged} holds {} ({}), not a vouch trust artifact ({e}): refusing to replace it; remove that tag, or mirror elsewhere with --to",
                    m.digest,
                    m.media_type.as_deref().unwrap_or("no media type")
                )
            })?;
            Some((m.digest, current))
        }
        Err(RegistryError::ManifestUnknown { .. }) => None,
        Err(e) => return Err(anyhow!(e).context(format!("cannot read {tagged}"))),
    };
    let artifact = build_trust_artifact(
        repo.gun(),
        &files,
        previous.as_ref().map(|(digest, _)| digest),
    )
    .with_context(|| format!("cannot build the trust artifact of {}", repo.gun()))?;
    let names: Vec<String> = artifact.files.keys().cloned().collect();
    if let Some((digest, current)) = &previous {
        if current.same_files(&artifact.files) && current.gun() == Some(repo.gun().as_str()) {
            return Ok(Pushed {
                destination: to.clone(),
                digest: digest.clone(),
                files: names,
                pushed: false,
            });
        }
    }
    for blob in &artifact.blobs {
        registries
            .push_blob(registry, repository, &blob.digest, blob.bytes)
            .with_context(|| format!("cannot push the trust of {} to {to}", repo.gun()))?;
    }
    let digest = registries
        .put_manifest(
            registry,
            repository,
            TRUST_TAG,
            OCI_MANIFEST,
            &artifact.manifest,
        )
        .with_context(|| format!("cannot push {tagged}"))?;
    if digest != artifact.digest {
        bail!(
            "{tagged} was stored as {digest}, not as the artifact built ({})",
            artifact.digest
        );
    }
    Ok(Pushed {
        destination: to.clone(),
        digest,
        files: names,
        pushed: true,
    })
}
