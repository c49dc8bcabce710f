//! Container image references, content digests and GUNs.
//!
//! Three value types, each built only through a constructor that checks its input:
//!
//! - [`Digest`]: a content address such as `sha256:<64 lowercase hex>`. It is what a
//!   target's `hashes.sha256` carries and what a pull by digest names.
//! - [`Gun`]: a Globally Unique Name, the name of one TUF repository. It is an image
//!   repository name, optionally led by the registry host (`registry.example.com:5000/org/app`),
//!   checked against the OCI distribution repository-name grammar and kept exactly as
//!   given: a `Gun` is never rewritten.
//! - [`ImageRef`]: what a user types (`nginx:1.25`, `localhost:5000/app@sha256:…`), split into
//!   registry, repository, tag and digest, and brought to its **canonical name**: every
//!   spelling a container runtime pulls from the same place yields one [`ImageRef::name`]
//!   and [`ImageRef::gun`] (see [Canonical names](#canonical-names)).
//!
//! The grammar, as this module applies it:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ registry "/" ] path
//! registry         := host [ ":" port ]
//! host             := label ( "." label )* | "[" IPv6 address "]"
//! label            := [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]
//! port             := a decimal number from 1 to 65535
//! path             := component ( "/" component )*
//! component        := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest           := "sha256:" 64 lowercase hex | "sha512:" 128 lowercase hex
//! ```
//!
//! A name's first component is read as a registry only when there is a `/` after it and it
//! contains `.` or `:`, is `localhost`, or has an upper-case letter (Docker's rule); otherwise
//! it is the first path component. A component read as a registry must then be a valid
//! `host[:port]`: `foo_bar.example/app` is rejected rather than read as a path. A name is at
//! most [`MAX_NAME_LEN`] bytes, registry included.
//!
//! # Canonical names
//!
//! Anything that decides by an image's name (an admission policy, a GUN) must see one name
//! for every spelling a runtime pulls from the same registry and repository; otherwise
//! `REGISTRY.EXAMPLE.COM/org/app` slips past a rule written for `registry.example.com/org/app`.
//! [`ImageRef::parse`] therefore canonicalises the registry with [`canonical_registry`]:
//!
//! - the host is lower-cased (host names are case-insensitive), an IPv6 address is written
//!   in its RFC 5952 form (`[0:0::1]` is `[::1]`), and a port loses its leading zeros;
//! - the default port `:443` (registries are spoken to over HTTPS) is dropped, except
//!   after a one-label host other than `localhost`: `foo:443/app` stays `foo:443/app`,
//!   because `foo/app` would read as the Docker Hub repository `foo/app`. A one-label host
//!   that only its capitals made a registry (`Foo/app`) is therefore `foo:443/app`;
//! - Docker Hub's aliases [`DOCKER_HUB_ALIASES`] (`index.docker.io`, `registry-1.docker.io`,
//!   `registry.hub.docker.com`) become [`DEFAULT_REGISTRY`] (`docker.io`);
//! - a name without a registry is on `docker.io`, and a one-component repository on
//!   `docker.io` is under `library/` ([`canonical_path`]).
//!
//! So `nginx`, `library/nginx`, `docker.io/nginx`, `Docker.IO:443/library/nginx` and
//! `registry-1.docker.io/library/nginx` are all `docker.io/library/nginx`, and
//! `Registry.Example.COM:443/org/app` is `registry.example.com/org/app`. Other ports are kept
//! (`host:5000` and `host:80` name other endpoints). Tags and digests are kept as written.
//! A [`Gun`] built with [`Gun::new`] is *not* canonicalised: it is a repository's name as its
//! owner chose it.
//!
//! This module does no IO: it never resolves a tag or contacts a registry.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use thiserror::Error;

/// The most bytes a repository name, and so a [`Gun`], may have, registry included.
pub const MAX_NAME_LEN: usize = 255;

/// The most characters a tag may have.
pub const MAX_TAG_LEN: usize = 128;

/// The most bytes a [`Digest`] may have (`sha512:` and 128 hex characters).
pub const MAX_DIGEST_LEN: usize = "sha512:".len() + 128;

/// The most bytes an image reference may have: a full name, a tag and a digest.
///
/// Longer input is rejected before it is parsed.
pub const MAX_REFERENCE_LEN: usize = MAX_NAME_LEN + 1 + MAX_TAG_LEN + 1 + MAX_DIGEST_LEN;

/// The registry a reference without one refers to.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// The older name of [`DEFAULT_REGISTRY`]; references naming it are normalised to
/// [`DEFAULT_REGISTRY`].
pub const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";

/// The other host names Docker Hub's registry answers under; [`canonical_registry`] makes
/// each (on the default port) [`DEFAULT_REGISTRY`].
pub const DOCKER_HUB_ALIASES: [&str; 3] = [
    LEGACY_DEFAULT_REGISTRY,
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// The port a registry is reached on when a reference names none (HTTPS); canonical names
/// leave it out where they can.
pub const DEFAULT_PORT: u16 = 443;

/// The namespace Docker Hub puts single-component repository names in (`nginx` is
/// `library/nginx`).
pub const OFFICIAL_NAMESPACE: &str = "library";

/// The tag a registry assumes when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// What kind of input an error is about; it names the input in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// A [`Gun`].
    Gun,
    /// An [`ImageRef`].
    ImageRef,
    /// A [`Digest`].
    Digest,
    /// A registry `host[:port]` on its own.
    Registry,
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputKind::Gun => "GUN",
            InputKind::ImageRef => "image reference",
            InputKind::Digest => "digest",
            InputKind::Registry => "registry",
        })
    }
}

/// Why a digest, GUN or image reference was rejected.
///
/// Every message names the offending input (inputs are length-checked first, so the
/// message stays short) and says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The input was the empty string.
    #[error("empty {kind}")]
    Empty {
        /// What was being parsed.
        kind: InputKind,
    },
    /// The input is longer than any valid value of its kind.
    #[error("{kind} is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// What was being parsed.
        kind: InputKind,
        /// The input's length in bytes.
        len: usize,
        /// The most bytes allowed.
        max: usize,
    },
    /// A digest that is not `<algorithm>:<hex>` with lowercase hex of the algorithm's length.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest {
        /// The digest as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A well-formed digest algorithm other than `sha256` and `sha512`.
    #[error("unsupported digest algorithm {0:?}: only sha256 and sha512 are supported")]
    UnsupportedDigestAlgorithm(String),
    /// A path component outside the repository-name grammar.
    #[error(
        "invalid {kind} {input:?}: path component {component:?} must match [a-z0-9]+ \
         separated by '.', '_', '__' or '-'"
    )]
    InvalidComponent {
        /// What was being parsed.
        kind: InputKind,
        /// The input as given.
        input: String,
        /// The offending component.
        component: String,
    },
    /// An empty path component: a leading, trailing or doubled `/`.
    #[error("invalid {kind} {input:?}: empty path component (a leading, trailing or doubled '/')")]
    EmptyComponent {
        /// What was being parsed.
        kind: InputKind,
        /// The input as given.
        input: String,
    },
    /// A path component with upper-case letters (which only a registry host may have).
    #[error(
        "invalid {kind} {input:?}: path component {component:?} has upper-case letters; \
         repository names must be lower case"
    )]
    UppercaseRepository {
        /// What was being parsed.
        kind: InputKind,
        /// The input as given.
        input: String,
        /// The offending component.
        component: String,
    },
    /// A first component that names a registry but is not a valid `host[:port]`.
    #[error("invalid {kind} {input:?}: registry {registry:?} {reason}")]
    InvalidHost {
        /// What was being parsed.
        kind: InputKind,
        /// The input as given.
        input: String,
        /// The registry component (`host[:port]`).
        registry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A tag outside `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error(
        "invalid image reference {input:?}: tag {tag:?} must be 1 to 128 characters from \
         [A-Za-z0-9_.-] and must not start with '.' or '-'"
    )]
    InvalidTag {
        /// The reference as given.
        input: String,
        /// The offending tag.
        tag: String,
    },
    /// A reference with a tag or digest but no repository name.
    #[error("invalid image reference {input:?}: no repository name")]
    MissingName {
        /// The reference as given.
        input: String,
    },
    /// A reference whose repository name is too long once Docker Hub's defaults are applied.
    #[error(
        "invalid image reference {input:?}: repository name {name:?} is {len} bytes long \
         once normalised; at most {max} are allowed"
    )]
    NameTooLong {
        /// The reference as given.
        input: String,
        /// The normalised name (`registry/repository`).
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The most bytes allowed.
        max: usize,
    },
    /// A reference that is exactly 64 lowercase hex characters: that is an image ID,
    /// and reading it as `docker.io/library/<hex>` would be a surprise.
    #[error(
        "ambiguous image reference {input:?}: 64 hex characters name an image ID, \
         not a repository"
    )]
    AmbiguousIdentifier {
        /// The reference as given.
        input: String,
    },
}

// ---------------------------------------------------------------------------------------
// Digests
// ---------------------------------------------------------------------------------------

/// A digest algorithm vouch accepts.
///
/// ```
/// use vouch_tuf::reference::DigestAlgorithm;
///
/// assert_eq!(DigestAlgorithm::Sha256.to_string(), "sha256");
/// assert_eq!(DigestAlgorithm::Sha512.hex_len(), 128);
/// assert_eq!("sha512".parse::<DigestAlgorithm>()?, DigestAlgorithm::Sha512);
/// # Ok::<(), vouch_tuf::reference::ReferenceError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    /// SHA-256, written `sha256`; 64 hex characters.
    Sha256,
    /// SHA-512, written `sha512`; 128 hex characters.
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm's name as written before the `:` of a digest.
    pub const fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    /// The number of hex characters in a digest of this algorithm.
    pub const fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha512 => 128,
        }
    }

    fn ring_algorithm(self) -> &'static ring::digest::Algorithm {
        match self {
            DigestAlgorithm::Sha256 => &ring::digest::SHA256,
            DigestAlgorithm::Sha512 => &ring::digest::SHA512,
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DigestAlgorithm {
    type Err = ReferenceError;

    /// Parses `sha256` or `sha512`; any other name is
    /// [`ReferenceError::UnsupportedDigestAlgorithm`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha256" => Ok(DigestAlgorithm::Sha256),
            "sha512" => Ok(DigestAlgorithm::Sha512),
            other => Err(ReferenceError::UnsupportedDigestAlgorithm(other.to_owned())),
        }
    }
}

/// A content address: `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`.
///
/// Upper-case hex is rejected (OCI requires lowercase), so two equal digests are always
/// the same string.
///
/// ```
/// use vouch_tuf::reference::{Digest, DigestAlgorithm};
///
/// let d = Digest::sha256_of(b"");
/// assert_eq!(d.algorithm(), DigestAlgorithm::Sha256);
/// assert_eq!(
///     d.as_str(),
///     "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// assert_eq!(Digest::parse(d.as_str())?, d);
/// assert!(d.matches(b""));
///
/// assert!(Digest::parse("sha256:E3B0C442").is_err());
/// assert!(Digest::parse("md5:d41d8cd98f00b204e9800998ecf8427e").is_err());
/// # Ok::<(), vouch_tuf::reference::ReferenceError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// The whole digest, `<algorithm>:<hex>`.
    text: String,
    algorithm: DigestAlgorithm,
}

impl Digest {
    /// Parses `<algorithm>:<hex>`.
    ///
    /// The algorithm must be `sha256` or `sha512` and the hex lowercase and of that
    /// algorithm's length.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty {
                kind: InputKind::Digest,
            });
        }
        if s.len() > MAX_DIGEST_LEN {
            return Err(ReferenceError::TooLong {
                kind: InputKind::Digest,
                len: s.len(),
                max: MAX_DIGEST_LEN,
            });
        }
        let Some((name, hex)) = s.split_once(':') else {
            return Err(ReferenceError::InvalidDigest {
                input: s.to_owned(),
                reason: "expected <algorithm>:<hex>, e.g. sha256:<64 hex characters>".to_owned(),
            });
        };
        let algorithm = match name.parse::<DigestAlgorithm>() {
            Ok(algorithm) => algorithm,
            Err(unsupported) if is_algorithm_name(name) => return Err(unsupported),
            Err(_) => {
                return Err(ReferenceError::InvalidDigest {
                    input: s.to_owned(),
                    reason: format!(
                        "algorithm {name:?} must be lowercase letters and digits, \
                         e.g. sha256"
                    ),
                })
            }
        };
        Digest::new(algorithm, hex)
    }

    /// Builds a digest from an algorithm and the hex of a hash.
    ///
    /// ```
    /// use vouch_tuf::reference::{Digest, DigestAlgorithm};
    ///
    /// let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    /// let d = Digest::new(DigestAlgorithm::Sha256, hex)?;
    /// assert_eq!(d.hex(), hex);
    /// assert!(Digest::new(DigestAlgorithm::Sha512, hex).is_err());
    /// # Ok::<(), vouch_tuf::reference::ReferenceError>(())
    /// ```
    pub fn new(algorithm: DigestAlgorithm, hex: &str) -> Result<Self, ReferenceError> {
        let text_len = algorithm.as_str().len() + 1 + hex.len();
        if text_len > MAX_DIGEST_LEN {
            return Err(ReferenceError::TooLong {
                kind: InputKind::Digest,
                len: text_len,
                max: MAX_DIGEST_LEN,
            });
        }
        let text = format!("{algorithm}:{hex}");
        let reason = if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            "the hash may contain only the characters 0-9 and a-f".to_owned()
        } else if hex.len() != algorithm.hex_len() {
            format!(
                "{algorithm} needs {} hex characters, found {}",
                algorithm.hex_len(),
                hex.len()
            )
        } else if crate::hex::is_lower_hex(hex, algorithm.hex_len()) {
            return Ok(Digest { text, algorithm });
        } else {
            "hex must be lower case".to_owned()
        };
        Err(ReferenceError::InvalidDigest {
            input: text,
            reason,
        })
    }

    /// The digest of `bytes` under `algorithm`.
    pub fn of(algorithm: DigestAlgorithm, bytes: &[u8]) -> Self {
        let hash = ring::digest::digest(algorithm.ring_algorithm(), bytes);
        Digest {
            text: format!("{algorithm}:{}", crate::hex::encode(hash.as_ref())),
            algorithm,
        }
    }

    /// The SHA-256 digest of `bytes`, the content address OCI registries use.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Digest::of(DigestAlgorithm::Sha256, bytes)
    }

    /// True when `bytes` hash to this digest under its algorithm.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        Digest::of(self.algorithm, bytes) == *self
    }

    /// The algorithm.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The lowercase hex of the hash, without the `<algorithm>:` prefix.
    pub fn hex(&self) -> &str {
        &self.text[self.algorithm.as_str().len() + 1..]
    }

    /// The whole digest, e.g. `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Digest {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// True for an OCI digest-algorithm identifier: `[a-z0-9]+([+._-][a-z0-9]+)*`.
fn is_algorithm_name(s: &str) -> bool {
    !s.is_empty()
        && s.split(['+', '.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

// ---------------------------------------------------------------------------------------
// GUNs
// ---------------------------------------------------------------------------------------

/// A Globally Unique Name: the name of one TUF repository.
///
/// It is an image repository name, optionally led by a registry `host[:port]`, e.g.
/// `registry.example.com:5000/org/app`, `docker.io/library/nginx` or `app`. It is checked
/// against the OCI distribution repository-name grammar (see the [module docs](self)) and is
/// at most [`MAX_NAME_LEN`] bytes long. A `Gun` is kept exactly as given; use
/// [`ImageRef::gun`] for the normalised name of an image.
///
/// ```
/// use vouch_tuf::reference::Gun;
///
/// let gun = Gun::new("registry.example.com:5000/org/app")?;
/// assert_eq!(gun.registry(), Some("registry.example.com:5000"));
/// assert_eq!(gun.repository(), "org/app");
///
/// let bare = Gun::new("org/app")?;
/// assert_eq!(bare.registry(), None);
///
/// assert!(Gun::new("../x").is_err());
/// assert!(Gun::new("org/App").is_err());
/// # Ok::<(), vouch_tuf::reference::ReferenceError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gun(String);

impl Gun {
    /// Checks `s` and makes it a GUN.
    pub fn new(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty {
                kind: InputKind::Gun,
            });
        }
        if s.len() > MAX_NAME_LEN {
            return Err(ReferenceError::TooLong {
                kind: InputKind::Gun,
                len: s.len(),
                max: MAX_NAME_LEN,
            });
        }
        check_name(InputKind::Gun, s, s)?;
        Ok(Gun(s.to_owned()))
    }

    /// The GUN as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The registry `host[:port]` the name starts with, if it has one.
    pub fn registry(&self) -> Option<&str> {
        split_registry(&self.0).map(|(registry, _)| registry)
    }

    /// The repository path, without the registry.
    pub fn repository(&self) -> &str {
        split_registry(&self.0).map_or(&self.0, |(_, path)| path)
    }

    /// The same repository under its canonical name (see
    /// [Canonical names](self#canonical-names)): what every spelling of an image in it
    /// resolves to, and so the name clients look its trust data up under. A GUN without a
    /// registry is kept as it is.
    ///
    /// ```
    /// use vouch_tuf::reference::Gun;
    ///
    /// let g = |s: &str| Gun::new(s).unwrap();
    /// assert_eq!(g("Registry.Example.com:443/org/app").canonical(), g("registry.example.com/org/app"));
    /// assert_eq!(g("index.docker.io/nginx").canonical(), g("docker.io/library/nginx"));
    /// assert_eq!(g("registry.example.com/org/app").canonical(), g("registry.example.com/org/app"));
    /// ```
    pub fn canonical(&self) -> Gun {
        let Some((registry, path)) = split_registry(&self.0) else {
            return self.clone();
        };
        let registry = canonicalise_registry(registry);
        let path = canonical_path(&registry, path);
        let name = format!("{registry}/{path}");
        if name == self.0 {
            return self.clone();
        }
        // Canonicalising can lengthen the name (`library/` before a one-component path on
        // Docker Hub, `:443` after a one-label host); should the result be over the length
        // limit, the name as given stands.
        Gun::new(&name).unwrap_or_else(|_| self.clone())
    }
}

impl FromStr for Gun {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Gun::new(s)
    }
}

impl fmt::Display for Gun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Gun {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// ---------------------------------------------------------------------------------------
// Image references
// ---------------------------------------------------------------------------------------

/// A parsed image reference, `[host[:port]/]path[:tag][@digest]`, brought to its canonical
/// name (see [Canonical names](self#canonical-names)).
///
/// A reference without a registry is on [`DEFAULT_REGISTRY`] (`docker.io`), the registry is
/// canonicalised by [`canonical_registry`] (lower-case host, no `:443`, Docker Hub's aliases
/// as `docker.io`), and a one-component repository on `docker.io` is put under `library/`:
///
/// | input | [`name`](ImageRef::name) |
/// |---|---|
/// | `nginx`, `library/nginx`, `index.docker.io/nginx` | `docker.io/library/nginx` |
/// | `org/app`, `registry-1.docker.io/org/app` | `docker.io/org/app` |
/// | `Registry.Example.com:443/org/app` | `registry.example.com/org/app` |
/// | `localhost:5000/app` | `localhost:5000/app` |
///
/// Two references name the same repository exactly when their names are equal, so
/// [`name`](ImageRef::name) is what policies match and what [`gun`](ImageRef::gun) is.
///
/// Parsing does **not** add an implicit `latest` tag: [`tag`](ImageRef::tag) is `None` when
/// the input has none, and [`Display`](fmt::Display) writes no tag then. Use
/// [`tag_or_latest`](ImageRef::tag_or_latest) for the tag a registry would assume.
///
/// ```
/// use vouch_tuf::reference::ImageRef;
///
/// let r = ImageRef::parse("nginx:1.25")?;
/// assert_eq!(r.registry(), "docker.io");
/// assert_eq!(r.repository(), "library/nginx");
/// assert_eq!(r.tag(), Some("1.25"));
/// assert_eq!(r.digest(), None);
/// assert_eq!(r.gun().as_str(), "docker.io/library/nginx");
/// assert_eq!(r.to_string(), "docker.io/library/nginx:1.25");
///
/// let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// let pinned = ImageRef::parse(&format!("localhost:5000/app@{d}"))?;
/// assert_eq!(pinned.registry(), "localhost:5000");
/// assert_eq!(pinned.tag(), None);
/// assert_eq!(pinned.tag_or_latest(), "latest");
/// assert_eq!(pinned.digest().map(|d| d.as_str()), Some(d));
/// # Ok::<(), vouch_tuf::reference::ReferenceError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// The normalised `registry/repository`; always has a registry.
    name: Gun,
    /// Length of the registry prefix of `name` (the `/` after it is at this index).
    registry_len: usize,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Parses an image reference and brings its name to the canonical form.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        const KIND: InputKind = InputKind::ImageRef;
        if s.is_empty() {
            return Err(ReferenceError::Empty { kind: KIND });
        }
        if s.len() > MAX_REFERENCE_LEN {
            return Err(ReferenceError::TooLong {
                kind: KIND,
                len: s.len(),
                max: MAX_REFERENCE_LEN,
            });
        }
        if crate::hex::is_lower_hex(s, 64) {
            return Err(ReferenceError::AmbiguousIdentifier {
                input: s.to_owned(),
            });
        }

        let (rest, digest) = match s.split_once('@') {
            Some((_, digest)) if digest.contains('@') => {
                return Err(ReferenceError::InvalidDigest {
                    input: digest.to_owned(),
                    reason: "a reference may carry only one digest".to_owned(),
                })
            }
            Some((rest, digest)) => (rest, Some(Digest::parse(digest)?)),
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; one before it belongs to a port.
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            if !is_tag(tag) {
                return Err(ReferenceError::InvalidTag {
                    input: s.to_owned(),
                    tag: tag.to_owned(),
                });
            }
        }
        if name.is_empty() {
            return Err(ReferenceError::MissingName {
                input: s.to_owned(),
            });
        }

        let (registry, path) = check_name(KIND, s, name)?;
        let registry = match registry {
            None => Cow::Borrowed(DEFAULT_REGISTRY),
            // Checked by `check_name`.
            Some(registry) => canonicalise_registry(registry),
        };
        // One allocation: `registry/[library/]path`.
        let official = is_official_shorthand(&registry, path);
        let mut full = String::with_capacity(
            registry.len()
                + 1
                + if official {
                    OFFICIAL_NAMESPACE.len() + 1
                } else {
                    0
                }
                + path.len(),
        );
        full.push_str(&registry);
        full.push('/');
        if official {
            full.push_str(OFFICIAL_NAMESPACE);
            full.push('/');
        }
        full.push_str(path);
        if full.len() > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong {
                input: s.to_owned(),
                len: full.len(),
                name: full,
                max: MAX_NAME_LEN,
            });
        }
        Ok(ImageRef {
            // Valid: every component was checked above, the registry is one that
            // `split_registry` recognises, and the length is within bounds.
            name: Gun(full),
            registry_len: registry.len(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The canonical registry `host[:port]`, e.g. `docker.io`.
    pub fn registry(&self) -> &str {
        &self.name.0[..self.registry_len]
    }

    /// The repository path within the registry, e.g. `library/nginx`.
    pub fn repository(&self) -> &str {
        &self.name.0[self.registry_len + 1..]
    }

    /// The tag, if the reference has one. No `latest` is assumed; see
    /// [`tag_or_latest`](ImageRef::tag_or_latest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The tag, or [`DEFAULT_TAG`] (`latest`) when the reference has none.
    ///
    /// Note that a reference with a digest and no tag names that digest, not `latest`.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_TAG)
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The GUN of the image's TUF repository: `registry/repository`.
    pub fn gun(&self) -> Gun {
        self.name.clone()
    }

    /// The same reference pinned to `digest`, keeping the tag (and replacing any digest).
    ///
    /// ```
    /// use vouch_tuf::reference::{Digest, ImageRef};
    ///
    /// let r = ImageRef::parse("example.com/app:v1")?;
    /// let pinned = r.with_digest(Digest::sha256_of(b"manifest"));
    /// assert_eq!(pinned.tag(), Some("v1"));
    /// assert!(pinned.to_string().starts_with("example.com/app:v1@sha256:"));
    /// # Ok::<(), vouch_tuf::reference::ReferenceError>(())
    /// ```
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The canonical name, `registry/repository`: the string of [`gun`](ImageRef::gun).
    pub fn name(&self) -> String {
        self.name.0.clone()
    }

    /// [`name`](ImageRef::name), borrowed.
    pub fn canonical_name(&self) -> &str {
        &self.name.0
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

impl fmt::Display for ImageRef {
    /// The full normalised form, `registry/repository[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name.as_str())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Canonical names
// ---------------------------------------------------------------------------------------

/// True when `first`, the first `/`-separated component of a name, names a registry rather
/// than a repository path component (Docker's rule): it contains `.` or `:`, is `localhost`,
/// or has upper-case letters.
///
/// ```
/// use vouch_tuf::reference::names_registry;
///
/// assert!(names_registry("registry.example.com"));
/// assert!(names_registry("localhost"));
/// assert!(names_registry("host:5000"));
/// assert!(names_registry("Foo"));
/// assert!(!names_registry("library"));
/// ```
pub fn names_registry(first: &str) -> bool {
    is_registry_like(first)
}

/// The canonical form of a registry `host[:port]` (see [Canonical names](self#canonical-names)):
/// lower-case host, RFC 5952 IPv6, no leading zeros in the port, no default port `:443`
/// (unless the host is one label other than `localhost`), and `docker.io` for Docker Hub's
/// aliases.
///
/// ```
/// use vouch_tuf::reference::canonical_registry;
///
/// assert_eq!(canonical_registry("Registry.Example.COM:443")?, "registry.example.com");
/// assert_eq!(canonical_registry("registry.example.com:5000")?, "registry.example.com:5000");
/// assert_eq!(canonical_registry("registry-1.docker.io")?, "docker.io");
/// assert_eq!(canonical_registry("[0:0::1]:0443")?, "[::1]");
/// assert_eq!(canonical_registry("Foo")?, "foo:443");
/// assert!(canonical_registry("under_score.example").is_err());
/// # Ok::<(), vouch_tuf::reference::ReferenceError>(())
/// ```
pub fn canonical_registry(registry: &str) -> Result<String, ReferenceError> {
    if registry.is_empty() {
        return Err(ReferenceError::Empty {
            kind: InputKind::Registry,
        });
    }
    if registry.len() > MAX_NAME_LEN {
        return Err(ReferenceError::TooLong {
            kind: InputKind::Registry,
            len: registry.len(),
            max: MAX_NAME_LEN,
        });
    }
    check_registry(registry).map_err(|reason| ReferenceError::InvalidHost {
        kind: InputKind::Registry,
        input: registry.to_owned(),
        registry: registry.to_owned(),
        reason,
    })?;
    Ok(canonicalise_registry(registry).into_owned())
}

/// The canonical repository path of `path` on canonical registry `registry`: a
/// one-component path on [`DEFAULT_REGISTRY`] is under [`OFFICIAL_NAMESPACE`]
/// (`nginx` is `library/nginx`); any other path is kept.
///
/// ```
/// use vouch_tuf::reference::canonical_path;
///
/// assert_eq!(canonical_path("docker.io", "nginx"), "library/nginx");
/// assert_eq!(canonical_path("docker.io", "org/app"), "org/app");
/// assert_eq!(canonical_path("example.com", "app"), "app");
/// ```
pub fn canonical_path<'a>(registry: &str, path: &'a str) -> Cow<'a, str> {
    if is_official_shorthand(registry, path) {
        Cow::Owned(format!("{OFFICIAL_NAMESPACE}/{path}"))
    } else {
        Cow::Borrowed(path)
    }
}

/// True when `path` on canonical `registry` is short for `library/<path>`.
fn is_official_shorthand(registry: &str, path: &str) -> bool {
    registry == DEFAULT_REGISTRY && !path.contains('/')
}

/// [`canonical_registry`] of a registry `check_registry` accepted. Borrows when the
/// registry is already canonical (the common case: no allocation).
fn canonicalise_registry(registry: &str) -> Cow<'_, str> {
    // The common case: a lower-case host name with a dot (or `localhost`), no port, not one
    // of Docker Hub's aliases.
    let plain = registry
        .bytes()
        .all(|b| !matches!(b, b'A'..=b'Z' | b':' | b'['));
    if plain
        && (registry.contains('.') || registry == "localhost")
        && !DOCKER_HUB_ALIASES.contains(&registry)
    {
        return Cow::Borrowed(registry);
    }
    let (host, port) = match registry.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((address, after)) => (HostForm::Ipv6(address), after.strip_prefix(':')),
            None => (HostForm::Name(registry), None),
        },
        None => match registry.split_once(':') {
            Some((host, port)) => (HostForm::Name(host), Some(port)),
            None => (HostForm::Name(registry), None),
        },
    };
    let port = port.and_then(|p| p.parse::<u16>().ok());
    let host: Cow<'_, str> = match host {
        HostForm::Name(name) if name.bytes().any(|b| b.is_ascii_uppercase()) => {
            Cow::Owned(name.to_ascii_lowercase())
        }
        HostForm::Name(name) => Cow::Borrowed(name),
        HostForm::Ipv6(address) => match address.parse::<Ipv6Addr>() {
            Ok(ip) => Cow::Owned(format!("[{}]", ipv6_text(ip))),
            Err(_) => Cow::Owned(format!("[{address}]")),
        },
    };
    // Without a port, a host must still read as a registry in front of a path.
    let needs_port = !is_registry_like(&host);
    let port = match port {
        Some(DEFAULT_PORT) | None if needs_port => Some(DEFAULT_PORT),
        Some(DEFAULT_PORT) | None => None,
        Some(other) => Some(other),
    };
    if port.is_none() && DOCKER_HUB_ALIASES.contains(&host.as_ref()) {
        return Cow::Borrowed(DEFAULT_REGISTRY);
    }
    let canonical = match port {
        None => host,
        Some(port) => Cow::Owned(format!("{host}:{port}")),
    };
    if canonical == registry {
        Cow::Borrowed(registry)
    } else {
        Cow::Owned(canonical.into_owned())
    }
}

/// A registry's host as written.
enum HostForm<'a> {
    /// A host name or IPv4 address.
    Name(&'a str),
    /// The address between `[` and `]`.
    Ipv6(&'a str),
}

/// An IPv6 address as RFC 5952 writes it: lower-case hex without leading zeros, the
/// longest run (the first of equal runs) of two or more zero groups as `::`, and never the
/// dotted IPv4 form (which the name grammar does not allow).
fn ipv6_text(ip: Ipv6Addr) -> String {
    let groups = ip.segments();
    let mut best = (0usize, 0usize); // (start, length)
    let mut i = 0;
    while i < groups.len() {
        if groups[i] == 0 {
            let start = i;
            while i < groups.len() && groups[i] == 0 {
                i += 1;
            }
            if i - start > best.1 {
                best = (start, i - start);
            }
        } else {
            i += 1;
        }
    }
    let hex = |gs: &[u16]| {
        gs.iter()
            .map(|g| format!("{g:x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    if best.1 < 2 {
        return hex(&groups);
    }
    format!(
        "{}::{}",
        hex(&groups[..best.0]),
        hex(&groups[best.0 + best.1..])
    )
}

// ---------------------------------------------------------------------------------------
// Grammar
// ---------------------------------------------------------------------------------------

/// Docker's rule: the first component names a registry when it contains `.` or `:`, is
/// `localhost`, or has upper-case letters. A component made only of dots (`.`, `..`) is
/// kept a path component: it is invalid either way, and the path-component error is the
/// one that explains it.
fn is_registry_like(first: &str) -> bool {
    first == "localhost"
        || first.contains(':')
        || first.bytes().any(|b| b.is_ascii_uppercase())
        || (first.contains('.') && first.bytes().any(|b| b != b'.'))
}

/// Splits `registry/path` when the first component names a registry.
fn split_registry(name: &str) -> Option<(&str, &str)> {
    name.split_once('/')
        .filter(|(first, _)| is_registry_like(first))
}

/// Checks a repository name; returns its registry (if any) and its path.
///
/// `input` is the whole text being parsed, for error messages.
fn check_name<'a>(
    kind: InputKind,
    input: &str,
    name: &'a str,
) -> Result<(Option<&'a str>, &'a str), ReferenceError> {
    let (registry, path) = match split_registry(name) {
        Some((registry, path)) => (Some(registry), path),
        None => (None, name),
    };
    if let Some(registry) = registry {
        check_registry(registry).map_err(|reason| ReferenceError::InvalidHost {
            kind,
            input: input.to_owned(),
            registry: registry.to_owned(),
            reason,
        })?;
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err(ReferenceError::EmptyComponent {
                kind,
                input: input.to_owned(),
            });
        }
        if !is_path_component(component) {
            let component = component.to_owned();
            let input = input.to_owned();
            return Err(if is_path_component(&component.to_ascii_lowercase()) {
                ReferenceError::UppercaseRepository {
                    kind,
                    input,
                    component,
                }
            } else {
                ReferenceError::InvalidComponent {
                    kind,
                    input,
                    component,
                }
            });
        }
    }
    Ok((registry, path))
}

/// The index just past a run of `[a-z0-9]` starting at `i`.
fn skip_alnum(c: &[u8], mut i: usize) -> usize {
    while i < c.len() && (c[i].is_ascii_lowercase() || c[i].is_ascii_digit()) {
        i += 1;
    }
    i
}

/// `[a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*`
fn is_path_component(component: &str) -> bool {
    let c = component.as_bytes();
    let mut i = skip_alnum(c, 0);
    if i == 0 {
        return false;
    }
    while i < c.len() {
        match c[i] {
            b'.' => i += 1,
            b'_' if c.get(i + 1) == Some(&b'_') => i += 2,
            b'_' => i += 1,
            b'-' => {
                while c.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        let end = skip_alnum(c, i);
        if end == i {
            return false;
        }
        i = end;
    }
    true
}

const HOST_REASON: &str = "must be a host name (labels of letters, digits and inner '-' \
                           separated by '.'), \"localhost\" or a bracketed IPv6 address, \
                           optionally followed by ':' and a port";
const PORT_REASON: &str = "has an invalid port: expected a decimal number from 1 to 65535";
const IPV6_REASON: &str = "has an invalid IPv6 address between '[' and ']'";

/// Checks `host[:port]`; on failure returns why.
fn check_registry(registry: &str) -> Result<(), &'static str> {
    let (host, port) = if let Some(bracketed) = registry.strip_prefix('[') {
        let Some((address, after)) = bracketed.split_once(']') else {
            return Err(IPV6_REASON);
        };
        let hex_and_colons =
            !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        if !hex_and_colons || address.parse::<Ipv6Addr>().is_err() {
            return Err(IPV6_REASON);
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err(HOST_REASON),
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        if !host.split('.').all(is_host_label) {
            return Err(HOST_REASON);
        }
    }
    if let Some(port) = port {
        let digits =
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || !matches!(port.parse::<u16>(), Ok(1..)) {
            return Err(PORT_REASON);
        }
    }
    Ok(())
}

/// `[A-Za-z0-9]` or `[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]`.
fn is_host_label(label: &str) -> bool {
    let b = label.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        }
        _ => false,
    }
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn is_tag(tag: &str) -> bool {
    let word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    let b = tag.as_bytes();
    match b.split_first() {
        Some((first, rest)) => {
            b.len() <= MAX_TAG_LEN
                && word(first)
                && rest.iter().all(|c| word(c) || *c == b'.' || *c == b'-')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const EMPTY_SHA512: &str = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";

    // --- digests ---

    #[test]
    fn digest_of_known_vectors() {
        assert_eq!(Digest::sha256_of(b"").as_str(), EMPTY_SHA256);
        assert_eq!(
            Digest::of(DigestAlgorithm::Sha512, b"").as_str(),
            EMPTY_SHA512
        );
        let d = Digest::sha256_of(b"abc");
        assert!(d.matches(b"abc"));
        assert!(!d.matches(b"abd"));
    }

    #[test]
    fn digest_parses_valid() {
        for (text, algorithm) in [
            (EMPTY_SHA256, DigestAlgorithm::Sha256),
            (EMPTY_SHA512, DigestAlgorithm::Sha512),
        ] {
            let d = Digest::parse(text).unwrap();
            assert_eq!(d.algorithm(), algorithm);
            assert_eq!(d.as_str(), text);
            assert_eq!(d.to_string(), text);
            assert_eq!(d.hex(), &text[7..]);
            assert_eq!(d.hex().len(), algorithm.hex_len());
            assert_eq!(Digest::new(algorithm, d.hex()).unwrap(), d);
            assert_eq!(text.parse::<Digest>().unwrap(), d);
        }
    }

    #[test]
    fn digest_rejects_invalid() {
        let hex64 = &EMPTY_SHA256[7..];
        let cases: Vec<(String, ReferenceError)> = vec![
            (
                String::new(),
                ReferenceError::Empty {
                    kind: InputKind::Digest,
                },
            ),
            (
                format!("sha256:{}", &hex64[..63]),
                ReferenceError::InvalidDigest {
                    input: format!("sha256:{}", &hex64[..63]),
                    reason: "sha256 needs 64 hex characters, found 63".into(),
                },
            ),
            (
                format!("sha512:{hex64}"),
                ReferenceError::InvalidDigest {
                    input: format!("sha512:{hex64}"),
                    reason: "sha512 needs 128 hex characters, found 64".into(),
                },
            ),
            (
                format!("sha256:{}", hex64.to_ascii_uppercase()),
                ReferenceError::InvalidDigest {
                    input: format!("sha256:{}", hex64.to_ascii_uppercase()),
                    reason: "hex must be lower case".into(),
                },
            ),
            (
                format!("sha256:{}g", &hex64[..63]),
                ReferenceError::InvalidDigest {
                    input: format!("sha256:{}g", &hex64[..63]),
                    reason: "the hash may contain only the characters 0-9 and a-f".into(),
                },
            ),
            (
                format!("sha384:{hex64}"),
                ReferenceError::UnsupportedDigestAlgorithm("sha384".into()),
            ),
            (
                "md5:d41d8cd98f00b204e9800998ecf8427e".into(),
                ReferenceError::UnsupportedDigestAlgorithm("md5".into()),
            ),
            (
                format!("sha256{hex64}"),
                ReferenceError::InvalidDigest {
                    input: format!("sha256{hex64}"),
                    reason: "expected <algorithm>:<hex>, e.g. sha256:<64 hex characters>".into(),
                },
            ),
            (
                format!("sha256:{hex64}{hex64}{hex64}"),
                ReferenceError::TooLong {
                    kind: InputKind::Digest,
                    len: 7 + 192,
                    max: MAX_DIGEST_LEN,
                },
            ),
            (
                format!("sha256:{hex64}0"),
                ReferenceError::InvalidDigest {
                    input: format!("sha256:{hex64}0"),
                    reason: "sha256 needs 64 hex characters, found 65".into(),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Digest::parse(&input), Err(want), "{input:?}");
        }
        for bad_algorithm in ["SHA256", "", "sha-", "sha 256"] {
            let input = format!("{bad_algorithm}:{hex64}");
            assert!(
                matches!(
                    Digest::parse(&input),
                    Err(ReferenceError::InvalidDigest { .. })
                ),
                "{input:?}"
            );
        }
    }

    #[test]
    fn digest_messages_name_the_input() {
        let err = Digest::parse("sha256:abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid digest \"sha256:abc\": sha256 needs 64 hex characters, found 3"
        );
        let err = Digest::parse("sha1:abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported digest algorithm \"sha1\": only sha256 and sha512 are supported"
        );
    }

    // --- GUNs ---

    #[test]
    fn gun_valid() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("app", None, "app"),
            ("org/app", None, "org/app"),
            (
                "docker.io/library/nginx",
                Some("docker.io"),
                "library/nginx",
            ),
            (
                "registry.example.com:5000/org/app",
                Some("registry.example.com:5000"),
                "org/app",
            ),
            ("localhost/app", Some("localhost"), "app"),
            ("localhost:5000/app", Some("localhost:5000"), "app"),
            ("[::1]:5000/app", Some("[::1]:5000"), "app"),
            ("[fe80::1]/a/b", Some("[fe80::1]"), "a/b"),
            ("127.0.0.1:5000/x", Some("127.0.0.1:5000"), "x"),
            (
                "Registry.Example.COM/app",
                Some("Registry.Example.COM"),
                "app",
            ),
            ("Org/app", Some("Org"), "app"),
            ("my-registry.io/a", Some("my-registry.io"), "a"),
            ("a__b", None, "a__b"),
            ("a_b/c.d/e-f/g---h", None, "a_b/c.d/e-f/g---h"),
            ("a.b", None, "a.b"),
            ("localhost", None, "localhost"),
            ("0/1/2", None, "0/1/2"),
        ];
        for &(input, registry, repository) in cases {
            let gun = Gun::new(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(gun.as_str(), input);
            assert_eq!(gun.to_string(), input);
            assert_eq!(gun.as_ref(), input);
            assert_eq!(gun.registry(), registry, "{input:?}");
            assert_eq!(gun.repository(), repository, "{input:?}");
            assert_eq!(input.parse::<Gun>().unwrap(), gun);
        }
    }

    #[test]
    fn gun_length_limit() {
        let at_max = format!("example.com/{}", "a".repeat(MAX_NAME_LEN - 12));
        assert_eq!(at_max.len(), 255);
        assert!(Gun::new(&at_max).is_ok());
        let over = format!("{at_max}b");
        assert_eq!(
            Gun::new(&over),
            Err(ReferenceError::TooLong {
                kind: InputKind::Gun,
                len: 256,
                max: 255
            })
        );
        assert!(Gun::new(&"a".repeat(255)).is_ok());
        assert!(Gun::new(&"a".repeat(256)).is_err());
    }

    /// What kind of rejection a case expects.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Bad {
        Empty,
        TooLong,
        Digest,
        Algorithm,
        Component,
        EmptyComponent,
        Uppercase,
        Host,
        Tag,
        MissingName,
        NameTooLong,
        Ambiguous,
    }

    fn classify(e: &ReferenceError) -> Bad {
        match e {
            ReferenceError::Empty { .. } => Bad::Empty,
            ReferenceError::TooLong { .. } => Bad::TooLong,
            ReferenceError::InvalidDigest { .. } => Bad::Digest,
            ReferenceError::UnsupportedDigestAlgorithm(_) => Bad::Algorithm,
            ReferenceError::InvalidComponent { .. } => Bad::Component,
            ReferenceError::EmptyComponent { .. } => Bad::EmptyComponent,
            ReferenceError::UppercaseRepository { .. } => Bad::Uppercase,
            ReferenceError::InvalidHost { .. } => Bad::Host,
            ReferenceError::InvalidTag { .. } => Bad::Tag,
            ReferenceError::MissingName { .. } => Bad::MissingName,
            ReferenceError::NameTooLong { .. } => Bad::NameTooLong,
            ReferenceError::AmbiguousIdentifier { .. } => Bad::Ambiguous,
        }
    }

    #[test]
    fn gun_invalid() {
        let cases: &[(&str, Bad)] = &[
            ("", Bad::Empty),
            ("../x", Bad::Component),
            ("a/../b", Bad::Component),
            (".", Bad::Component),
            ("a___b", Bad::Component),
            ("a_.b", Bad::Component),
            ("-a", Bad::Component),
            ("a-", Bad::Component),
            ("a b", Bad::Component),
            ("app:tag", Bad::Component),
            ("app@sha256", Bad::Component),
            ("a//b", Bad::EmptyComponent),
            ("a/", Bad::EmptyComponent),
            ("/a", Bad::EmptyComponent),
            ("registry.example.com/", Bad::EmptyComponent),
            ("org/App", Bad::Uppercase),
            ("App", Bad::Uppercase),
            ("example.com/Org/app", Bad::Uppercase),
            ("my_host.com/app", Bad::Host),
            ("-host.com/app", Bad::Host),
            ("host-.com/app", Bad::Host),
            ("a..b/app", Bad::Host),
            ("example.com./app", Bad::Host),
            ("host:/app", Bad::Host),
            ("host:99999/app", Bad::Host),
            ("host:0/app", Bad::Host),
            ("host:80a/app", Bad::Host),
            ("host:1:2/app", Bad::Host),
            ("[::1/app", Bad::Host),
            ("[::g]/app", Bad::Host),
            ("[]/app", Bad::Component),
            ("under_score.example.com/app", Bad::Host),
            ("[::1]x/app", Bad::Host),
            ("[fe80::1%eth0]/app", Bad::Host),
        ];
        for &(input, want) in cases {
            match Gun::new(input) {
                Ok(gun) => panic!("{input:?} accepted as {gun:?}"),
                Err(e) => assert_eq!(classify(&e), want, "{input:?}: {e}"),
            }
        }
    }

    #[test]
    fn gun_messages_name_the_input() {
        assert_eq!(
            Gun::new("../x").unwrap_err().to_string(),
            "invalid GUN \"../x\": path component \"..\" must match [a-z0-9]+ separated by \
             '.', '_', '__' or '-'"
        );
        assert_eq!(
            Gun::new("org/App").unwrap_err().to_string(),
            "invalid GUN \"org/App\": path component \"App\" has upper-case letters; \
             repository names must be lower case"
        );
        assert_eq!(
            Gun::new("a//b").unwrap_err().to_string(),
            "invalid GUN \"a//b\": empty path component (a leading, trailing or doubled '/')"
        );
        assert_eq!(
            Gun::new("host:99999/app").unwrap_err().to_string(),
            "invalid GUN \"host:99999/app\": registry \"host:99999\" has an invalid port: \
             expected a decimal number from 1 to 65535"
        );
        assert_eq!(Gun::new("").unwrap_err().to_string(), "empty GUN");
    }

    // --- image references ---

    /// (input, registry, repository, tag, digest)
    type Row<'a> = (String, &'a str, &'a str, Option<&'a str>, Option<&'a str>);

    #[test]
    fn image_ref_valid() {
        let d = EMPTY_SHA256;
        let sha512 = EMPTY_SHA512;
        let long_tag = "t".repeat(128);
        let cases: Vec<Row> = vec![
            ("nginx".into(), "docker.io", "library/nginx", None, None),
            (
                "nginx:1.25".into(),
                "docker.io",
                "library/nginx",
                Some("1.25"),
                None,
            ),
            ("org/app".into(), "docker.io", "org/app", None, None),
            (
                "docker.io/nginx".into(),
                "docker.io",
                "library/nginx",
                None,
                None,
            ),
            (
                "docker.io/library/nginx".into(),
                "docker.io",
                "library/nginx",
                None,
                None,
            ),
            (
                "index.docker.io/nginx".into(),
                "docker.io",
                "library/nginx",
                None,
                None,
            ),
            (
                "index.docker.io/org/app:v1".into(),
                "docker.io",
                "org/app",
                Some("v1"),
                None,
            ),
            (
                "registry.example.com:5000/org/app:v1.2.0".into(),
                "registry.example.com:5000",
                "org/app",
                Some("v1.2.0"),
                None,
            ),
            ("localhost/app".into(), "localhost", "app", None, None),
            (
                "localhost:5000/app:dev".into(),
                "localhost:5000",
                "app",
                Some("dev"),
                None,
            ),
            ("[::1]:5000/app".into(), "[::1]:5000", "app", None, None),
            ("[::1]/app:x".into(), "[::1]", "app", Some("x"), None),
            (
                "192.168.1.10:5000/team/app".into(),
                "192.168.1.10:5000",
                "team/app",
                None,
                None,
            ),
            (
                "Registry.Example.com/app".into(),
                "registry.example.com",
                "app",
                None,
                None,
            ),
            ("Foo/app".into(), "foo:443", "app", None, None),
            (
                format!("app@{d}"),
                "docker.io",
                "library/app",
                None,
                Some(d),
            ),
            (
                format!("nginx:1.25@{d}"),
                "docker.io",
                "library/nginx",
                Some("1.25"),
                Some(d),
            ),
            (
                format!("localhost:5000/app:v1@{d}"),
                "localhost:5000",
                "app",
                Some("v1"),
                Some(d),
            ),
            (
                format!("team/app@{sha512}"),
                "docker.io",
                "team/app",
                None,
                Some(sha512),
            ),
            ("a__b".into(), "docker.io", "library/a__b", None, None),
            ("a--b/c.d_e".into(), "docker.io", "a--b/c.d_e", None, None),
            (
                "localhost".into(),
                "docker.io",
                "library/localhost",
                None,
                None,
            ),
            // Without a '/', "localhost:5000" is the repository "localhost" tagged "5000".
            (
                "localhost:5000".into(),
                "docker.io",
                "library/localhost",
                Some("5000"),
                None,
            ),
            (
                "app:_x.Y-z".into(),
                "docker.io",
                "library/app",
                Some("_x.Y-z"),
                None,
            ),
            (
                format!("app:{long_tag}"),
                "docker.io",
                "library/app",
                Some(&long_tag),
                None,
            ),
        ];
        for (input, registry, repository, tag, digest) in cases {
            let r = ImageRef::parse(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(r.registry(), registry, "{input:?}");
            assert_eq!(r.repository(), repository, "{input:?}");
            assert_eq!(r.tag(), tag, "{input:?}");
            assert_eq!(r.digest().map(Digest::as_str), digest, "{input:?}");

            let name = format!("{registry}/{repository}");
            assert_eq!(r.name(), name);
            assert_eq!(r.gun(), Gun::new(&name).unwrap());
            assert_eq!(r.gun().registry(), Some(registry));
            assert_eq!(r.gun().repository(), repository);

            let mut display = name;
            if let Some(tag) = tag {
                display = format!("{display}:{tag}");
            }
            if let Some(digest) = digest {
                display = format!("{display}@{digest}");
            }
            assert_eq!(r.to_string(), display, "{input:?}");
            assert_eq!(input.parse::<ImageRef>().unwrap(), r);
            assert_eq!(ImageRef::parse(&display).unwrap(), r);
        }
    }

    #[test]
    fn image_ref_invalid() {
        let d = EMPTY_SHA256;
        let hex64 = &d[7..];
        let cases: Vec<(String, Bad)> = vec![
            (String::new(), Bad::Empty),
            ("../x".into(), Bad::Component),
            ("Nginx".into(), Bad::Uppercase),
            ("org/App:v1".into(), Bad::Uppercase),
            ("a___b".into(), Bad::Component),
            ("a//b".into(), Bad::EmptyComponent),
            ("a/".into(), Bad::EmptyComponent),
            ("/a".into(), Bad::EmptyComponent),
            ("example.com/".into(), Bad::EmptyComponent),
            ("nginx:".into(), Bad::Tag),
            ("nginx:-x".into(), Bad::Tag),
            ("nginx:.x".into(), Bad::Tag),
            ("nginx:a+b".into(), Bad::Tag),
            (format!("nginx:{}", "t".repeat(129)), Bad::Tag),
            (":tag".into(), Bad::MissingName),
            (format!("@{d}"), Bad::MissingName),
            ("nginx@sha256:abc".into(), Bad::Digest),
            (
                format!("nginx@sha256:{}", hex64.to_ascii_uppercase()),
                Bad::Digest,
            ),
            (format!("nginx@{d}@{d}"), Bad::Digest),
            (format!("nginx@md5:{}", &hex64[..32]), Bad::Algorithm),
            ("nginx@".into(), Bad::Empty),
            (format!("nginx@{d}:tag"), Bad::Digest),
            ("my_host.com/app".into(), Bad::Host),
            ("host:99999/app".into(), Bad::Host),
            ("host:/app".into(), Bad::Host),
            ("[::g]:5000/app".into(), Bad::Host),
            (hex64.into(), Bad::Ambiguous),
            ("x".repeat(MAX_REFERENCE_LEN + 1), Bad::TooLong),
            // Valid as written, too long once "docker.io/library/" is prepended.
            ("a".repeat(250), Bad::NameTooLong),
        ];
        for (input, want) in cases {
            match ImageRef::parse(&input) {
                Ok(r) => panic!("{input:?} accepted as {r}"),
                Err(e) => assert_eq!(classify(&e), want, "{input:?}: {e}"),
            }
        }
        // The same 250 bytes are a fine GUN: it is not normalised.
        assert!(Gun::new(&"a".repeat(250)).is_ok());
    }

    #[test]
    fn image_ref_messages_name_the_input() {
        assert_eq!(
            ImageRef::parse("nginx:-x").unwrap_err().to_string(),
            "invalid image reference \"nginx:-x\": tag \"-x\" must be 1 to 128 characters \
             from [A-Za-z0-9_.-] and must not start with '.' or '-'"
        );
        assert_eq!(
            ImageRef::parse("my_host.com/app").unwrap_err().to_string(),
            format!(
                "invalid image reference \"my_host.com/app\": registry \"my_host.com\" {HOST_REASON}"
            )
        );
    }

    /// Every spelling a container runtime pulls from the same registry and repository has
    /// one canonical name.
    #[test]
    fn spellings_of_one_repository_have_one_name() {
        let d = EMPTY_SHA256;
        let groups: [(&str, &[&str]); 6] = [
            (
                "registry.example.com/org/app",
                &[
                    "registry.example.com/org/app",
                    "REGISTRY.EXAMPLE.COM/org/app",
                    "Registry.Example.Com/org/app",
                    "registry.example.com:443/org/app",
                    "Registry.Example.Com:443/org/app",
                    "registry.example.com:00443/org/app",
                ],
            ),
            (
                "docker.io/library/nginx",
                &[
                    "nginx",
                    "library/nginx",
                    "docker.io/nginx",
                    "docker.io/library/nginx",
                    "DOCKER.IO/nginx",
                    "docker.io:443/library/nginx",
                    "index.docker.io/nginx",
                    "index.docker.io/library/nginx",
                    "Index.Docker.IO:443/nginx",
                    "registry-1.docker.io/nginx",
                    "registry-1.docker.io/library/nginx",
                    "registry-1.docker.io:443/library/nginx",
                    "registry.hub.docker.com/library/nginx",
                ],
            ),
            (
                "docker.io/org/app",
                &[
                    "org/app",
                    "docker.io/org/app",
                    "index.docker.io/org/app",
                    "registry-1.docker.io/org/app",
                    "Docker.io:443/org/app",
                ],
            ),
            (
                "localhost/app",
                &["localhost/app", "LOCALHOST/app", "localhost:443/app"],
            ),
            (
                "[::1]/app",
                &[
                    "[::1]/app",
                    "[::1]:443/app",
                    "[0:0:0:0:0:0:0:1]/app",
                    "[0000::0001]:443/app",
                ],
            ),
            (
                "foo:443/app",
                &["Foo/app", "FOO/app", "foo:443/app", "Foo:0443/app"],
            ),
        ];
        for (name, spellings) in groups {
            for spelling in spellings {
                for (suffix, tag, digest) in [
                    ("", None, None),
                    (":v1", Some("v1"), None),
                    (&*format!("@{d}"), None, Some(d)),
                    (&*format!(":v1@{d}"), Some("v1"), Some(d)),
                ] {
                    let input = format!("{spelling}{suffix}");
                    let r = ImageRef::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
                    assert_eq!(r.name(), name, "{input}");
                    assert_eq!(r.gun().as_str(), name, "{input}");
                    assert_eq!(r.tag(), tag, "{input}");
                    assert_eq!(r.digest().map(Digest::as_str), digest, "{input}");
                    assert_eq!(ImageRef::parse(&r.to_string()).unwrap(), r, "{input}");
                }
            }
        }
    }

    /// Spellings that reach another endpoint keep their own name.
    #[test]
    fn other_endpoints_keep_their_names() {
        for (input, name) in [
            (
                "registry.example.com:5000/org/app",
                "registry.example.com:5000/org/app",
            ),
            (
                "registry.example.com:80/org/app",
                "registry.example.com:80/org/app",
            ),
            ("docker.io:5000/nginx", "docker.io:5000/nginx"),
            ("index.docker.io:5000/nginx", "index.docker.io:5000/nginx"),
            ("foo/app", "docker.io/foo/app"),
            ("localhost:5000/app", "localhost:5000/app"),
            ("[::2]/app", "[::2]/app"),
            ("[2001:db8:0:0:1:0:0:1]/app", "[2001:db8::1:0:0:1]/app"),
            ("[2001:DB8::1]:8443/app", "[2001:db8::1]:8443/app"),
        ] {
            assert_eq!(ImageRef::parse(input).unwrap().name(), name, "{input}");
        }
    }

    #[test]
    fn canonical_registries() {
        for (input, want) in [
            ("registry.example.com", "registry.example.com"),
            ("REGISTRY.example.com:443", "registry.example.com"),
            ("registry.example.com:05000", "registry.example.com:5000"),
            ("index.docker.io", "docker.io"),
            ("registry-1.docker.io:443", "docker.io"),
            ("registry.hub.docker.com", "docker.io"),
            ("docker.io:443", "docker.io"),
            ("Foo", "foo:443"),
            ("foo:443", "foo:443"),
            ("localhost:443", "localhost"),
            ("[::ffff:7f00:1]", "[::ffff:7f00:1]"),
            ("[1:0:0:2:0:0:0:3]", "[1:0:0:2::3]"),
            ("[1:0:0:2:0:0:3:4]", "[1::2:0:0:3:4]"),
            ("[1:2:3:4:5:6:7:0]", "[1:2:3:4:5:6:7:0]"),
        ] {
            let got = canonical_registry(input).unwrap();
            assert_eq!(got, want, "{input}");
            assert_eq!(
                canonical_registry(&got).unwrap(),
                got,
                "{input}: idempotent"
            );
        }
        for bad in ["", "a_b.example", "host:0", "host:65536", "[::1", "a/b"] {
            assert!(canonical_registry(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            canonical_registry("a_b.example").unwrap_err().to_string(),
            format!("invalid registry \"a_b.example\": registry \"a_b.example\" {HOST_REASON}")
        );
    }

    #[test]
    fn tag_or_latest_and_with_digest() {
        let r = ImageRef::parse("nginx").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.tag_or_latest(), "latest");
        assert_eq!(r.to_string(), "docker.io/library/nginx");

        let tagged = ImageRef::parse("nginx:1.25").unwrap();
        assert_eq!(tagged.tag_or_latest(), "1.25");

        let digest = Digest::sha256_of(b"manifest");
        let pinned = tagged.with_digest(digest.clone());
        assert_eq!(pinned.tag(), Some("1.25"));
        assert_eq!(pinned.digest(), Some(&digest));
        assert_eq!(pinned.gun(), tagged.gun());
        assert_eq!(
            pinned.to_string(),
            format!("docker.io/library/nginx:1.25@{digest}")
        );

        let repinned = pinned.with_digest(Digest::sha256_of(b"other"));
        assert_eq!(repinned.digest(), Some(&Digest::sha256_of(b"other")));
        assert_eq!(repinned.tag(), Some("1.25"));
    }

    // --- properties ---

    fn registry_strategy() -> impl Strategy<Value = String> {
        let label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?";
        let host = prop_oneof![
            proptest::collection::vec(label, 2..4).prop_map(|labels| labels.join(".")),
            Just("localhost".to_owned()),
            Just("[::1]".to_owned()),
            Just("[2001:db8::42]".to_owned()),
            "[A-Z][a-zA-Z0-9]{0,5}",
        ];
        (host, proptest::option::of(1u16..)).prop_map(|(host, port)| match port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        })
    }

    fn path_strategy() -> impl Strategy<Value = String> {
        let component = "[a-z0-9]{1,4}((\\.|_|__|-{1,3})[a-z0-9]{1,4}){0,2}";
        proptest::collection::vec(component, 1..4).prop_map(|c| c.join("/"))
    }

    fn digest_strategy() -> impl Strategy<Value = Digest> {
        (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..16)).prop_map(|(long, bytes)| {
            let algorithm = if long {
                DigestAlgorithm::Sha512
            } else {
                DigestAlgorithm::Sha256
            };
            Digest::of(algorithm, &bytes)
        })
    }

    proptest! {
        #[test]
        fn generated_references_round_trip(
            registry in proptest::option::of(registry_strategy()),
            path in path_strategy(),
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            digest in proptest::option::of(digest_strategy()),
        ) {
            // Without a registry, a '.' in the first path component would make it read as
            // one; '_' is an equally valid separator there.
            let path = match (&registry, path.split_once('/')) {
                (None, Some((first, rest))) => format!("{}/{rest}", first.replace('.', "_")),
                _ => path,
            };
            let name = match &registry {
                Some(registry) => format!("{registry}/{path}"),
                None => path.clone(),
            };
            let gun = Gun::new(&name).unwrap();
            prop_assert_eq!(gun.as_str(), name.as_str());
            prop_assert_eq!(gun.registry(), registry.as_deref());
            prop_assert_eq!(gun.repository(), path.as_str());

            let mut text = name.clone();
            if let Some(tag) = &tag {
                text = format!("{text}:{tag}");
            }
            if let Some(digest) = &digest {
                text = format!("{text}@{digest}");
            }
            let parsed = ImageRef::parse(&text).unwrap();
            prop_assert_eq!(parsed.tag(), tag.as_deref());
            prop_assert_eq!(parsed.digest(), digest.as_ref());
            if let Some(registry) = registry.as_deref() {
                let canonical = canonical_registry(registry).unwrap();
                prop_assert_eq!(parsed.registry(), canonical.as_str());
                prop_assert_eq!(canonical_registry(&canonical).unwrap(), canonical.clone());
                if canonical != DEFAULT_REGISTRY {
                    prop_assert_eq!(parsed.repository(), path.as_str());
                }
                // Every spelling of the registry names the same image.
                let upper = text.replacen(registry, &registry.to_ascii_uppercase(), 1);
                prop_assert_eq!(ImageRef::parse(&upper).unwrap().name(), parsed.name());
            }
            let shown = parsed.to_string();
            let reparsed = ImageRef::parse(&shown).unwrap();
            prop_assert_eq!(&reparsed, &parsed);
            prop_assert_eq!(reparsed.to_string(), shown);
        }

        #[test]
        fn arbitrary_text_never_panics_and_round_trips(
            s in "[a-zA-Z0-9:/@._\\-\\[\\]]{0,40}",
        ) {
            if let Ok(r) = ImageRef::parse(&s) {
                let shown = r.to_string();
                prop_assert_eq!(ImageRef::parse(&shown).unwrap(), r.clone());
                prop_assert_eq!(Gun::new(&r.name()).unwrap(), r.gun());
            }
            if let Ok(g) = Gun::new(&s) {
                prop_assert_eq!(Gun::new(g.as_str()).unwrap(), g.clone());
                let rejoined = match g.registry() {
                    Some(registry) => format!("{registry}/{}", g.repository()),
                    None => g.repository().to_owned(),
                };
                prop_assert_eq!(rejoined.as_str(), s.as_str());
            }
            if let Ok(d) = Digest::parse(&s) {
                prop_assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
            }
        }

        #[test]
        fn digests_round_trip(d in digest_strategy()) {
            let shown = d.to_string();
            prop_assert_eq!(Digest::parse(&shown).unwrap(), d.clone());
            prop_assert_eq!(Digest::new(d.algorithm(), d.hex()).unwrap(), d);
        }
    }
}
