//! The client's pure rules, one home each: which repository names and references may go in
//! a request path, which token scope to ask for, where a monolithic upload is `PUT`.
//!
//! Sans-IO, with unit tests in `tests.rs`; what it is not: anything that sends a request.

use reqwest::Url;
use vouch_tuf::reference::Digest;

use super::{Access, RegistryError};
use crate::registry_auth;

/// The token scope to ask for `access` to `repository`, given the scope a challenge named:
/// the challenge's, unless `access` writes and the challenge's scope does not grant `push`
/// on `repository` (a registry names the scope of the request it refused; a `HEAD` before
/// a push is refused for `pull`), then `repository:<repository>:<actions>`.
pub(super) fn choose_scope(
    challenge_scope: Option<&str>,
    repository: &str,
    access: Access,
) -> String {
    let ours = format!("repository:{repository}:{}", access.actions());
    let Some(named) = challenge_scope.map(str::trim).filter(|s| !s.is_empty()) else {
        return ours;
    };
    let grants_push = || {
        named.split(' ').any(|one| {
            let Some((resource, actions)) = one.rsplit_once(':') else {
                return false;
            };
            resource.strip_prefix("repository:") == Some(repository)
                && actions.split(',').any(|a| a == "push" || a == "*")
        })
    };
    match access {
        Access::Pull => named.to_owned(),
        Access::Push if grants_push() => named.to_owned(),
        Access::Push => ours,
    }
}

/// The URL of an upload session: its `Location` (relative to `request`, the URL that
/// started it, or absolute; it may carry a query of its own, which is kept), refused when it
/// is not http(s) or carries credentials.
pub(super) fn session_url(request: &Url, location: &str) -> Result<Url, &'static str> {
    let url = request
        .join(location)
        .map_err(|_| "it is not a URL or a path")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("it is not an http(s) URL");
    }
    if registry_auth::url_carries_credentials(&url) {
        return Err("it carries credentials");
    }
    Ok(url)
}

/// The URL to `PUT` a monolithic upload to: the session's URL ([`session_url`]) with
/// `digest=<digest>` added to its query.
pub(super) fn upload_url(session: &Url, digest: &Digest) -> Url {
    let mut url = session.clone();
    url.query_pairs_mut().append_pair("digest", digest.as_str());
    url
}

/// True when `a` and `b` have the same scheme, host and port.
pub(super) fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// True for a repository name as the Distribution API allows it: lowercase path
/// components of letters, digits and separators, none empty, `.` or `..`.
pub(super) fn is_repository_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        })
}

/// True for a tag (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`) or a digest.
pub(super) fn is_reference(reference: &str) -> bool {
    let tag = reference.len() <= 128
        && reference
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    tag || Digest::parse(reference).is_ok()
}

pub(super) fn check_names(repository: &str, reference: Option<&str>) -> Result<(), RegistryError> {
    if !is_repository_name(repository) {
        return Err(RegistryError::InvalidName {
            what: "repository name",
            name: repository.to_owned(),
        });
    }
    match reference {
        Some(r) if !is_reference(r) => Err(RegistryError::InvalidName {
            what: "reference",
            name: r.to_owned(),
        }),
        _ => Ok(()),
    }
}
