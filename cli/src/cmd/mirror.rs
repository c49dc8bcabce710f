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
//! by digest. Whether to push is [`vouch_tuf::oci::decide_push`]'s, the one rule of every
//! writer of a trust tag: an unchanged state is not pushed again; a newer state of the same
//! history already there is left alone and reported ("the registry holds a newer state"),
//! so a stale read never rolls the copy back; an image, or anything but a vouch trust
//! artifact, is never overwritten; another repository's trust artifact is replaced only
//! with `--replace`. Otherwise the command stops and says what is there.
//!
//! [`push_trust`] is also what `vouch promote` pushes to the promoted image's repository.
//!
//! What it is not: a check of the copy. Nothing a registry serves is trusted for being
//! there; readers verify the copy exactly as they verify the server.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context as _};
use serde_json::json;
use vouch_tuf::oci::{build_trust_artifact, decide_push, PushDecision, TrustManifest};
use vouch_tuf::oci::{OCI_MANIFEST, TRUST_TAG};
use vouch_tuf::reference::Digest;

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
    /// Replace another repository's trust artifact at the destination (never an image).
    #[arg(long)]
    pub replace: bool,
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
    /// False when the destination already held exactly these files, or a newer state.
    pub pushed: bool,
    /// When the destination holds a newer state of the same history: the timestamp
    /// versions (held, read here); nothing was pushed.
    pub older: Option<(u64, u64)>,
}

impl Pushed {
    /// As JSON output shows it.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "destination": format!("{}:{TRUST_TAG}", self.destination),
            "digest": self.digest.as_str(),
            "files": self.files,
            "pushed": self.pushed,
            "unchanged": !self.pushed && self.older.is_none(),
            "newer_held": self.older.map(|(held, read)| json!({
                "timestamp_held": held,
                "timestamp_read": read,
            })),
        })
    }

    /// As text output says it.
    pub fn to_text(&self) -> String {
        if let Some((held, read)) = self.older {
            return format!(
                "{}:{TRUST_TAG}@{}: the registry holds a newer state (timestamp {held} > {read}): nothing pushed",
                self.destination, self.digest
            );
        }
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
    // The command line's credentials are for the destination (unless --registry-host names
    // another), whichever registry the trust is read from.
    ctx.writes_to(&to.registry)?;
    let repo = Repo::open(ctx, &gun)?;
    let pushed = push_trust(ctx, &repo, &to, Replace::from_flag(args.replace))?;
    match ctx.output {
        Format::Json => output::json(&pushed.to_json()),
        Format::Text => output::text(&pushed.to_text()),
    }
}

/// Whether a push may replace another repository's trust artifact (`--replace`); an image,
/// or anything else that is not a trust artifact, is never replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Only this repository's own artifact is replaced.
    OwnOnly,
    /// Another repository's trust artifact (or one naming none) is replaced too.
    OtherRepositories,
}

impl Replace {
    /// From the `--replace` flag.
    pub fn from_flag(replace: bool) -> Self {
        if replace {
            Replace::OtherRepositories
        } else {
            Replace::OwnOnly
        }
    }
}

/// Pushes the verified trust of `repo` to `to` under the trust tag, as
/// [`vouch_tuf::oci::decide_push`] decides (the one rule of every writer of a trust tag):
/// nothing when `to` holds exactly these files, nothing when it holds a newer state of the
/// same history (reported in [`Pushed::older`]), never over an image, and over another
/// repository's artifact only with [`Replace::OtherRepositories`].
pub fn push_trust(
    ctx: &Context,
    repo: &Repo,
    to: &Location,
    replace: Replace,
) -> anyhow::Result<Pushed> {
    let files: BTreeMap<String, Vec<u8>> = repo.bundle()?.files;
    let client = ctx.registries_for(&to.registry)?;
    let mut registries = client
        .lock()
        .map_err(|_| anyhow!("the registry client failed earlier"))?;
    let (registry, repository) = (to.registry.as_str(), to.repository.as_str());
    let tagged = format!("{to}:{TRUST_TAG}");
    let current = registries
        .trust_tag(registry, repository)
        .with_context(|| format!("cannot read {tagged}"))?;
    let build = |previous: Option<&Digest>| {
        build_trust_artifact(repo.gun(), &files, previous)
            .with_context(|| format!("cannot build the trust artifact of {}", repo.gun()))
    };
    let artifact = build(current.as_ref().map(|m| &m.digest))?;
    let names: Vec<String> = artifact.files.keys().cloned().collect();
    let unpushed = |digest: Digest, older: Option<(u64, u64)>| Pushed {
        destination: to.clone(),
        digest,
        files: names.clone(),
        pushed: false,
        older,
    };
    let decision = decide_push(
        repo.gun(),
        current.as_ref().map(|m| (m.bytes.as_slice(), &m.digest)),
        &artifact,
    );
    match decision {
        PushDecision::Push { .. } => {}
        PushDecision::Unchanged(digest) => return Ok(unpushed(digest, None)),
        PushDecision::Older { current: held, new } => {
            let digest = current
                .map(|m| m.digest)
                .ok_or_else(|| anyhow!("{tagged}: no current artifact"))?;
            return Ok(unpushed(digest, Some((held, new))));
        }
        PushDecision::Refuse(why) => {
            let is_artifact = current
                .as_ref()
                .is_some_and(|m| TrustManifest::parse(&m.bytes).is_ok());
            if !(is_artifact && replace == Replace::OtherRepositories) {
                let advice = if is_artifact {
                    "pass --replace to replace it with the trust of this repository, or push elsewhere with --to"
                } else {
                    "remove that tag, or push elsewhere with --to"
                };
                bail!("{tagged}: {why}: refusing to replace it; {advice}");
            }
        }
    }
    // Pushed over a trust artifact, or over nothing (decide_push refuses the rest), so what
    // the tag holds parses when it is there.
    let held = current
        .as_ref()
        .and_then(|m| TrustManifest::parse(&m.bytes).ok());
    for blob in artifact.blobs_over(held.as_ref()) {
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
        older: None,
    })
}
