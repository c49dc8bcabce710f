//! The mirror's decisions, without IO: which registries a configuration pushes to, which
//! repositories a batch of changefeed entries asks to mirror, under which file names a
//! repository's metadata goes into its trust artifact, what to do with what the registry
//! holds under the trust tag, and which registry failures are worth retrying.
//!
//! What it is not: the pushing (`super::push`) or the following of the changefeed
//! (`super`). Everything here takes values and returns values, and is tested beside it.

use std::collections::BTreeMap;

use vouch_tuf::api::FileRef;
use vouch_tuf::oci::TrustManifest;
use vouch_tuf::reference::{canonical_registry, names_registry, Digest, Gun, ImageRef};
use vouch_verifier::registry::RegistryError;

use crate::auth::ScopeGlob;

/// A mirrored-repository pattern, checked: its glob and the registry it names.
#[derive(Debug)]
pub(crate) struct Pattern {
    pub(crate) glob: ScopeGlob,
    pub(crate) registry: String,
}

/// Checks one `mirror.repositories` pattern: a literal, canonical registry `host[:port]`,
/// then `/` and a repository glob.
///
/// The registry part may not be a wildcard: the mirror keeps one worker (and one cursor,
/// one set of credentials) per destination registry, so the registries must be known when
/// the server starts, and a pattern such as `*/app` would push trust to whatever registry
/// a publisher names. It must be canonical, since repositories are only ever written under
/// their canonical names: `Registry.Example.com/**` could never match.
pub(crate) fn pattern(p: &str) -> Result<Pattern, String> {
    let what = format!("mirror.repositories {p:?}");
    let (registry, rest) = p.split_once('/').ok_or_else(|| {
        format!("{what}: a pattern is a registry, '/', then repositories (registry.example.com/**)")
    })?;
    if registry.contains(['*', '?']) {
        return Err(format!(
            "{what}: the registry part must be written out (no '*' or '?'): the mirror pushes to the registries it is configured with, not to any a repository name chooses"
        ));
    }
    if rest.is_empty() || !names_registry(registry) {
        return Err(format!(
            "{what}: {registry:?} is not a registry host[:port], so no repository it matches has a registry to be mirrored into"
        ));
    }
    let canonical = canonical_registry(registry).map_err(|e| format!("{what}: {e}"))?;
    if canonical != registry {
        return Err(format!(
            "{what}: it cannot match: repositories are named with their registry as {canonical:?}"
        ));
    }
    Ok(Pattern {
        glob: ScopeGlob::new(p)?,
        registry: canonical,
    })
}

/// The registry a mirrored repository's trust goes to: the registry of the image name
/// `gun` is (canonical), and its repository path there.
pub(crate) fn destination(gun: &str) -> Option<(String, String)> {
    let image = ImageRef::parse(gun).ok()?;
    Some((image.registry().to_owned(), image.repository().to_owned()))
}

/// The repositories of `registry` to mirror after a batch of changefeed entries (their
/// GUNs, oldest first): each once, in the order of its last entry, so that a repository
/// changed a hundred times in the batch is pushed once, in its newest state.
pub(crate) fn collapse<'a>(
    guns: impl IntoIterator<Item = &'a str>,
    registry: &str,
    patterns: &[Pattern],
) -> Vec<String> {
    let mut last: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, g) in guns.into_iter().enumerate() {
        last.insert(g, i);
    }
    let mut picked: Vec<(usize, &str)> = last
        .into_iter()
        .filter(|(g, _)| mirrored_into(g, registry, patterns))
        .map(|(g, i)| (i, g))
        .collect();
    picked.sort_unstable();
    picked.into_iter().map(|(_, g)| g.to_owned()).collect()
}

/// True when `gun` is mirrored, into `registry`.
pub(crate) fn mirrored_into(gun: &str, registry: &str, patterns: &[Pattern]) -> bool {
    patterns
        .iter()
        .any(|p| p.registry == registry && p.glob.matches(gun))
        && destination(gun).is_some_and(|(r, _)| r == registry)
}

/// True when `gun` is mirrored at all.
pub(crate) fn mirrored(gun: &str, patterns: &[Pattern]) -> bool {
    destination(gun).is_some_and(|(registry, _)| mirrored_into(gun, &registry, patterns))
}

/// The name a TUF client asks for `version` of `role`, in a repository with (or without)
/// consistent snapshots: every root by version, the timestamp as `timestamp.json`, the
/// other roles by version only with consistent snapshots. The spelling is
/// [`FileRef::file_name`]'s.
pub(crate) fn file_name(role: &str, version: u64, consistent: bool) -> String {
    let by_version = match role {
        "root" => true,
        "timestamp" => false,
        _ => consistent,
    };
    if by_version {
        FileRef::Version(role.to_owned(), version).file_name()
    } else {
        FileRef::Current(role.to_owned()).file_name()
    }
}

/// The layer digests of `files`, as [`TrustManifest::same_files`] compares them.
pub(crate) fn digests(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Digest> {
    files
        .iter()
        .map(|(n, b)| (n.clone(), Digest::sha256_of(b)))
        .collect()
}

/// What to do with the trust tag of a repository.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Push the new artifact, chaining to `previous` (the artifact it replaces).
    Push {
        /// The digest of the vouch trust artifact under the tag now, if any.
        previous: Option<Digest>,
    },
    /// The tag already holds these files (the digest of what it holds).
    Unchanged(Digest),
    /// The tag holds something this mirror must not replace; why.
    Refuse(String),
}

/// Decides from what the trust tag of `gun` holds now (`None`: nothing; else the manifest's
/// bytes and digest) and the files the repository has (`files`, name to digest).
///
/// Only a vouch trust artifact of this very repository is ever replaced: anything else
/// under the tag (an image pushed there by mistake, an artifact that says it is another
/// repository's, such as the trust a promoted image was copied with) is left alone.
pub(crate) fn decide(
    gun: &Gun,
    current: Option<(&[u8], &Digest)>,
    files: &BTreeMap<String, Digest>,
) -> Decision {
    let Some((bytes, digest)) = current else {
        return Decision::Push { previous: None };
    };
    let manifest = match TrustManifest::parse(bytes) {
        Ok(m) => m,
        Err(e) => {
            return Decision::Refuse(format!(
                "the tag holds {digest}, which is not a vouch trust artifact ({e})"
            ))
        }
    };
    match manifest.gun() {
        Some(g) if g == gun.as_str() => {}
        Some(other) => {
            return Decision::Refuse(format!(
                "the tag holds {digest}, the trust artifact of another repository ({other})"
            ))
        }
        None => {
            return Decision::Refuse(format!(
                "the tag holds {digest}, a trust artifact that names no repository"
            ))
        }
    }
    if manifest.same_files(files) {
        Decision::Unchanged(digest.clone())
    } else {
        Decision::Push {
            previous: Some(digest.clone()),
        }
    }
}

/// Whether a failed registry operation is retried (the cursor waits) or the repository is
/// passed over (the cursor moves on).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Failure {
    /// Unreachable, timed out, 5xx, 408, 429, refused credentials, a misbehaving token
    /// server or a registry answering with other content than pushed: may pass; retried.
    #[error("{0}")]
    Transient(String),
    /// The registry refuses this content or name for good (another 4xx, a name it cannot
    /// take): retrying would fail again.
    #[error("{0}")]
    Permanent(String),
}

/// Sorts a registry error into [`Failure`]s.
pub(crate) fn classify(e: &RegistryError) -> Failure {
    let text = e.to_string();
    let transient = match e {
        RegistryError::Refused { status, .. } => {
            status.is_server_error() || matches!(status.as_u16(), 408 | 429)
        }
        RegistryError::Client(_)
        | RegistryError::Unreachable { .. }
        | RegistryError::Unauthorized { .. }
        | RegistryError::Challenge { .. }
        | RegistryError::Token { .. }
        | RegistryError::DigestMismatch { .. }
        | RegistryError::BlobMismatch { .. }
        | RegistryError::StoredDigestMismatch { .. }
        | RegistryError::BlobUnknown { .. }
        | RegistryError::ManifestUnknown { .. } => true,
        _ => false,
    };
    if transient {
        Failure::Transient(text)
    } else {
        Failure::Permanent(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_tuf::oci::build_trust_artifact;

    fn patterns(ps: &[&str]) -> Vec<Pattern> {
        ps.iter().map(|p| pattern(p).unwrap()).collect()
    }

    #[test]
    fn patterns_name_a_literal_canonical_registry() {
        let p = pattern("registry.example.com/**").unwrap();
        assert_eq!(p.registry, "registry.example.com");
        assert_eq!(
            pattern("127.0.0.1:5000/org/*").unwrap().registry,
            "127.0.0.1:5000"
        );
        for (bad, why) in [
            ("*/app", "must be written out"),
            ("reg?.example.com/app", "must be written out"),
            ("*", "a registry, '/'"),
            ("registry.example.com", "a registry, '/'"),
            ("org/app", "not a registry"),
            ("registry.example.com/", "not a registry"),
            ("Registry.Example.com/**", "cannot match"),
            ("registry.example.com:443/**", "cannot match"),
            ("index.docker.io/org/*", "cannot match"),
        ] {
            let e = pattern(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn a_batch_collapses_to_each_mirrored_repository_of_the_registry_once_newest_last() {
        let ps = patterns(&["a.example.com/team/*", "b.example.com/**"]);
        let batch = [
            "a.example.com/team/x",
            "b.example.com/y",
            "a.example.com/other/z",
            "a.example.com/team/w",
            "a.example.com/team/x",
            "c.example.com/team/x",
        ];
        assert_eq!(
            collapse(batch, "a.example.com", &ps),
            ["a.example.com/team/w", "a.example.com/team/x"]
        );
        assert_eq!(collapse(batch, "b.example.com", &ps), ["b.example.com/y"]);
        assert!(collapse(batch, "c.example.com", &ps).is_empty());
        assert!(mirrored("b.example.com/y", &ps));
        assert!(!mirrored("a.example.com/other/z", &ps));
    }

    #[test]
    fn file_names_are_the_ones_a_tuf_client_asks_for() {
        assert_eq!(file_name("root", 3, false), "3.root.json");
        assert_eq!(file_name("timestamp", 9, true), "timestamp.json");
        assert_eq!(file_name("snapshot", 4, true), "4.snapshot.json");
        assert_eq!(file_name("snapshot", 4, false), "snapshot.json");
        assert_eq!(file_name("targets", 2, true), "2.targets.json");
        assert_eq!(
            file_name("targets/releases", 2, true),
            "2.targets%2Freleases.json"
        );
        assert_eq!(
            file_name("targets/releases", 2, false),
            "targets%2Freleases.json"
        );
    }

    fn files(ts: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut f = BTreeMap::new();
        f.insert("1.root.json".to_owned(), b"{\"root\":1}".to_vec());
        f.insert("timestamp.json".to_owned(), ts.to_vec());
        f
    }

    #[test]
    fn only_this_repositorys_own_artifact_is_replaced_and_an_unchanged_one_is_kept() {
        let gun = Gun::new("registry.example.com/org/app").unwrap();
        let old = files(b"ts1");
        let new = files(b"ts2");
        assert_eq!(
            decide(&gun, None, &digests(&new)),
            Decision::Push { previous: None }
        );
        let a = build_trust_artifact(&gun, &old, None).unwrap();
        assert_eq!(
            decide(&gun, Some((&a.manifest, &a.digest)), &digests(&old)),
            Decision::Unchanged(a.digest.clone())
        );
        assert_eq!(
            decide(&gun, Some((&a.manifest, &a.digest)), &digests(&new)),
            Decision::Push {
                previous: Some(a.digest.clone())
            }
        );
        let image = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;
        let d = Digest::sha256_of(image);
        assert!(matches!(
            decide(&gun, Some((image, &d)), &digests(&new)),
            Decision::Refuse(why) if why.contains("not a vouch trust artifact")
        ));
        let other = Gun::new("build.example.com/team/app").unwrap();
        let theirs = build_trust_artifact(&other, &old, None).unwrap();
        assert!(matches!(
            decide(&gun, Some((&theirs.manifest, &theirs.digest)), &digests(&old)),
            Decision::Refuse(why) if why.contains("build.example.com/team/app")
        ));
    }

    #[test]
    fn outages_are_retried_and_refusals_of_content_are_not() {
        use reqwest::StatusCode;
        let refused = |status: StatusCode| RegistryError::Refused {
            registry: "r".into(),
            what: "w".into(),
            status,
            detail: String::new(),
        };
        for s in [
            StatusCode::BAD_GATEWAY,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::REQUEST_TIMEOUT,
        ] {
            assert!(
                matches!(classify(&refused(s)), Failure::Transient(_)),
                "{s}"
            );
        }
        for s in [StatusCode::BAD_REQUEST, StatusCode::PAYLOAD_TOO_LARGE] {
            assert!(
                matches!(classify(&refused(s)), Failure::Permanent(_)),
                "{s}"
            );
        }
        let unreachable = RegistryError::Unreachable {
            registry: "r".into(),
            url: "u".into(),
            message: "m".into(),
            hint: "h".into(),
        };
        assert!(matches!(classify(&unreachable), Failure::Transient(_)));
        let name = RegistryError::InvalidName {
            what: "reference",
            name: "x".into(),
        };
        assert!(matches!(classify(&name), Failure::Permanent(_)));
    }
}
