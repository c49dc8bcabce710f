//! Where the read-only commands (`verify`, `lookup`, `list`, `inspect`, `export`, `mirror`,
//! `promote`) read a repository's trust from: the vouch server, the registry copy kept
//! beside the images (`vouch_tuf::oci`, written by `vouch mirror` and `vouch promote`), or
//! the server with the registry copy while the server cannot be reached.
//!
//! [`TrustTransport`] is that choice as one [`Transport`], so the repository opened over it
//! ([`crate::repo::Repo`]) is the same type whichever source answers. The choice is no
//! security decision: every source is checked by the verifier against the same pin and the
//! same per-repository cache (so a rollback is caught whichever source served the newer
//! state), and a registry copy is an untrusted mirror exactly as the server is.
//!
//! Which repository is asked where ([`Reading`]): a `trust_from` pin maps an image's
//! repository (a promoted copy) to the repository its trust is (the source GUN): the TUF
//! repository opened, pinned and cached is the source GUN, while the registry copy is read
//! from the image's own registry repository (where `vouch promote` put it), or from the
//! location `--server oci://REGISTRY/REPO` names.
//!
//! What it is not: a transport. Reading a trust artifact is
//! [`vouch_verifier::transport::OciTransport`]'s, falling back is
//! [`vouch_verifier::transport::FallbackTransport`]'s; this module only picks and names.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::bail;
use vouch_tuf::oci::TRUST_TAG;
use vouch_tuf::reference::{Gun, ImageRef};
use vouch_verifier::registry::{Registries, RegistryRepo};
use vouch_verifier::transport::{FallbackTransport, OciTransport, Transport, TransportError};

use crate::context::Context;
use crate::remote::Remote;

/// Where `--source` (`VOUCH_SOURCE`) says trust is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceKind {
    /// The vouch server (`--server`).
    #[default]
    Server,
    /// The registry copy beside the images.
    Registry,
    /// The server, else the registry copy while the server is unreachable.
    ServerThenRegistry,
}

impl SourceKind {
    /// Parses `server`, `registry` or `server,registry`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "server" => Ok(SourceKind::Server),
            "registry" => Ok(SourceKind::Registry),
            "server,registry" => Ok(SourceKind::ServerThenRegistry),
            other => Err(format!(
                "{other:?}: expected server, registry or server,registry"
            )),
        }
    }
}

/// A registry repository: `REGISTRY/REPOSITORY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The registry, `host[:port]`.
    pub registry: String,
    /// The repository path in it.
    pub repository: String,
}

impl Location {
    /// Parses `REGISTRY/REPO` (no tag, no digest); `what` names the argument in errors.
    pub fn parse(s: &str, what: &str) -> anyhow::Result<Self> {
        let r = ImageRef::parse(s).map_err(|e| {
            anyhow::anyhow!("{what} {s:?} is not a registry repository (REGISTRY/REPO): {e}")
        })?;
        if r.tag().is_some() || r.digest().is_some() {
            bail!("{what} {s:?} names an image: give the repository only (REGISTRY/REPO)");
        }
        Ok(Location::of_image(&r))
    }

    /// The repository `image` is in.
    pub fn of_image(image: &ImageRef) -> Self {
        Location {
            registry: image.registry().to_owned(),
            repository: image.repository().to_owned(),
        }
    }

    /// The registry repository named like `gun` (where its own images, and its trust
    /// artifact, are).
    pub fn of_gun(gun: &Gun) -> anyhow::Result<Self> {
        Location::parse(gun.as_str(), "repository")
    }

    /// This repository read through `client`.
    pub fn repo(&self, client: Arc<Mutex<Registries>>) -> RegistryRepo {
        RegistryRepo::new(client, &self.registry, &self.repository)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

/// What one read asks where: the TUF repository verified, and where its registry copy is.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The repository whose trust is verified (the image's own, or the one a `trust_from`
    /// pin maps it to): its pin, cache and signed `x-vouch-gun` apply.
    pub gun: Gun,
    /// Where the registry copy is read from.
    pub copy: Location,
}

impl Reading {
    /// What reading `image_gun` (a repository images are named in) means under this
    /// context's pins and `--server`.
    pub fn of(ctx: &Context, image_gun: &Gun) -> anyhow::Result<Self> {
        let mapped = match crate::trust::load_pins(ctx)? {
            Some(pins) => pins.trust_source(image_gun)?,
            None => None,
        };
        let copy = match &ctx.oci_location {
            Some(at) => at.clone(),
            None => Location::of_gun(image_gun)?,
        };
        Ok(Reading {
            gun: mapped
                .as_ref()
                .map_or_else(|| image_gun.clone(), |m| m.source.clone()),
            copy,
        })
    }
}

/// A repository's trust read from its registry copy.
pub type RegistryCopy = OciTransport<RegistryRepo>;

/// The source trust is read from, as one transport.
pub enum TrustTransport {
    /// The vouch server.
    Server(Remote),
    /// The registry copy.
    Registry(RegistryCopy),
    /// The server, else the registry copy while the server is unreachable.
    Fallback(FallbackTransport<Remote, RegistryCopy>),
}

impl fmt::Debug for TrustTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl TrustTransport {
    /// The transport `ctx` asks for to read `reading` (the server for anything but
    /// `--source registry` and `--server oci://…`).
    pub fn open(ctx: &Context, reading: &Reading) -> anyhow::Result<Self> {
        let copy = || -> anyhow::Result<RegistryCopy> {
            Ok(OciTransport::new(
                reading
                    .copy
                    .repo(ctx.registries_for(&reading.copy.registry)?),
            )
            .expecting(reading.gun.clone()))
        };
        Ok(match ctx.source {
            SourceKind::Server => TrustTransport::Server(Remote::new(ctx, &reading.gun)?),
            SourceKind::Registry => TrustTransport::Registry(copy()?),
            SourceKind::ServerThenRegistry => TrustTransport::Fallback(FallbackTransport::new(
                Remote::new(ctx, &reading.gun)?,
                copy()?,
            )),
        })
    }

    /// The source, for messages and the trust pin record.
    pub fn describe(&self) -> String {
        match self {
            TrustTransport::Server(r) => r.server().to_owned(),
            TrustTransport::Registry(c) => registry_copy(c),
            TrustTransport::Fallback(f) => format!(
                "{}, else {}",
                f.primary().server(),
                registry_copy(f.secondary())
            ),
        }
    }

    /// When the server was unreachable and the registry copy answered instead: a sentence
    /// saying so.
    pub fn fell_back(&self) -> Option<String> {
        let TrustTransport::Fallback(f) = self else {
            return None;
        };
        let why = f.falling_back()?;
        Some(format!(
            "the vouch server {} is unreachable ({why}): trust data read from {}",
            f.primary().server(),
            registry_copy(f.secondary())
        ))
    }
}

/// How a registry copy is named in messages.
fn registry_copy(c: &RegistryCopy) -> String {
    use vouch_verifier::transport::RegistryRepository;
    format!(
        "the registry copy {}:{TRUST_TAG}",
        c.repository().location()
    )
}

impl Transport for TrustTransport {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        match self {
            TrustTransport::Server(t) => t.fetch(path, max_len),
            TrustTransport::Registry(t) => t.fetch(path, max_len),
            TrustTransport::Fallback(t) => t.fetch(path, max_len),
        }
    }

    fn fetch_by(
        &self,
        path: &str,
        max_len: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
        match self {
            TrustTransport::Server(t) => t.fetch_by(path, max_len, deadline),
            TrustTransport::Registry(t) => t.fetch_by(path, max_len, deadline),
            TrustTransport::Fallback(t) => t.fetch_by(path, max_len, deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sources_are_named_as_the_flag_takes_them() {
        assert_eq!(SourceKind::parse("server").unwrap(), SourceKind::Server);
        assert_eq!(SourceKind::parse("registry").unwrap(), SourceKind::Registry);
        assert_eq!(
            SourceKind::parse("server,registry").unwrap(),
            SourceKind::ServerThenRegistry
        );
        assert!(SourceKind::parse("registry,server").is_err());
    }

    #[test]
    fn locations_are_repositories_not_images() {
        let l = Location::parse("127.0.0.1:5000/team/app", "--to").unwrap();
        assert_eq!(l.registry, "127.0.0.1:5000");
        assert_eq!(l.repository, "team/app");
        assert_eq!(l.to_string(), "127.0.0.1:5000/team/app");
        let e = Location::parse("127.0.0.1:5000/app:v1", "--to").unwrap_err();
        assert!(e.to_string().contains("names an image"), "{e}");
    }
}
