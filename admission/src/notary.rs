//! Verifying images against a Notary v1 server, for clusters migrating off Notary
//! repository by repository.
//!
//! A `verify` rule with `notary = "https://notary.example.com"` reads the repository's
//! collection in Notary's dialect ([`vouch_verifier::notary`]) from a Notary root the policy
//! pins, instead of TUF 1.0 metadata from a vouch server. Everything else is the vouch
//! path's: the repository's warm state, single-flight refresh, refresh interval, deadline,
//! expiry and on-disk cache live in [`crate::trust`]; this module holds the two things that
//! differ:
//!
//! - `refresh` (IO): one update of the collection, starting from the [`NotaryState`] this
//!   webhook last trusted for the repository — in memory, else the `notary-state.json` it
//!   wrote in the repository's cache directory, else the pinned root — so that a server
//!   serving an older root, timestamp, snapshot or targets than one already seen is refused
//!   as [`TrustError::NotaryRollback`]. The state only moves forward: it is replaced (in
//!   memory, then on disk) after a verified update, never by a failed one.
//! - authentication (IO, before the update): a `[[server]]` token is sent as it is; else the
//!   registry token flow of [`vouch_verifier::registry_auth::notary_token`] (the one the
//!   `vouch` command uses) asks the server's `/v2/`, and when it answers with a `Bearer`
//!   challenge gets a token for `repository:<gun>:pull` from its realm — with the
//!   `username` and `password_file` of the server's `[[server]]` table when it has them,
//!   anonymously otherwise. The flow's rules hold here too: a realm that is not HTTPS is
//!   followed only when it and the server are both on loopback, no credentials go through a
//!   server reached over plain HTTP off loopback, and the whole exchange is within the
//!   fetch timeout and the review's deadline. A refused login denies (fail closed) with a
//!   message naming the password file, never the password.
//! - [`verdict`] (pure): what a verified collection says of one image, by the rule
//!   `docker trust` resolves tags with: the first role that signed the tag among
//!   `targets/releases` (and the roles below it), then `targets` (and every delegation). With
//!   `required_roles`, only the named delegations (and the roles below them) count.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use vouch_tuf::reference::{Gun, ImageRef};
use vouch_tuf::time::Timestamp;
use vouch_verifier::notary::{
    fetch_collection, ExpiredMetadata, Layout, NotaryCollection, NotaryState, NotaryVerifyError,
};
use vouch_verifier::registry_auth::{notary_token, NotaryAuthError, NotaryToken, TokenError};
use vouch_verifier::transport::{HttpOptions, Transport, TransportError};
use vouch_verifier::Limits;

use crate::credentials::ServerToken;
use crate::policy::NotaryRoot;
use crate::review::Verdict;
use crate::trust::{
    not_authorised, transport_for, Current, Repo, RoleExpiries, TrustConfig, TrustError,
};

/// The roles `docker trust` resolves a tag through, in order (each with the roles below it).
pub const DOCKER_TRUST_ROLES: [&str; 2] = ["targets/releases", "targets"];

/// The file in a Notary repository's cache directory that keeps its [`NotaryState`].
pub const STATE_FILE: &str = "notary-state.json";

/// The reason label of an image admitted through a Notary server.
pub const VERIFIED: &str = "notary_verified";

/// One update of the Notary repository `repo` from its last trusted state (see the module
/// documentation), its fetches over by `deadline`. Blocking.
pub(crate) fn refresh(
    config: &TrustConfig,
    repo: &Repo,
    root: &NotaryRoot,
    token: Option<Arc<ServerToken>>,
    deadline: Instant,
) -> Result<Current, TrustError> {
    let key = repo.key();
    let dir = repo.dir();
    let start = {
        let kept = repo.notary_state().clone();
        match kept {
            Some(state) => state,
            None => read_state(&dir, &key.gun).unwrap_or_else(|| {
                NotaryState::from_trusted_root(key.gun.as_str(), root.bytes().to_vec())
            }),
        }
    };
    let (sent, auth) = authenticate(config, repo, token.clone(), deadline)?;
    let transport = Recording {
        inner: transport_for(key, config.fetch_timeout, sent)?,
        deadline,
        kept: Mutex::new(Vec::new()),
    };
    let collection = fetch_collection(
        &transport,
        Layout::Server,
        &start,
        config.clock.now(),
        ExpiredMetadata::Refuse,
        Limits::DEFAULT,
    )
    .map_err(|e| classify(e, &key.server, token.as_deref(), auth))?;
    // Only forward: another refresh cannot run meanwhile (single flight), so this is the
    // state this update started from, or nothing.
    *repo.notary_state() = Some(collection.state.clone());
    if let Err(e) = write_state(&dir, &collection.state) {
        tracing::warn!(server = %key.server, gun = %key.gun, error = %e,
            "cannot keep the Notary state on disk; rollback is still caught while the webhook runs");
    }
    let kept = transport
        .kept
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    let (expires, expiring) = expiries(&collection, &kept)?;
    Ok(Current::notary(collection, expires, expiring))
}

/// The earliest expiry of what was verified (root, timestamp, snapshot, every targets role),
/// and when the root and targets expire (for metrics).
fn expiries(
    collection: &NotaryCollection,
    fetched: &[(String, Vec<u8>)],
) -> Result<(Timestamp, RoleExpiries), TrustError> {
    let bad = |e: &dyn std::fmt::Display| TrustError::Rejected(e.to_string());
    let at = |role: &str, text: &str| {
        vouch_tuf::notary::parse_expires(text)
            .map(|e| e.seconds)
            .map_err(|e| bad(&format!("{role}: {e}")))
    };
    let mut expires: Option<Timestamp> = None;
    let mut expiring = Vec::new();
    for (path, bytes) in fetched {
        let role = path.split('.').next().unwrap_or_default();
        let signed = vouch_tuf::notary::Signed::parse(role, bytes).map_err(|e| bad(&e))?;
        let text = signed
            .signed
            .get("expires")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad(&format!("{role} has no expiry")))?;
        let t = at(role, text)?;
        expires = Some(expires.map_or(t, |e| e.min(t)));
        if role == "root" {
            expiring.push(("root", t));
        }
    }
    for role in &collection.roles {
        let t = at(&role.name, &role.expires)?;
        expires = Some(expires.map_or(t, |e| e.min(t)));
        if role.name == "targets" {
            expiring.push(("targets", t));
        }
    }
    let expires = expires.ok_or_else(|| bad(&"nothing was verified"))?;
    Ok((expires, expiring))
}

/// How the token sent to a Notary server was obtained (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// The `[[server]]` table's token, or none (the server asked for none).
    AsConfigured,
    /// From the token flow, without credentials; `withheld` when the policy has a login
    /// that was not sent (the server is reached over plain HTTP off loopback).
    Anonymous { withheld: bool },
    /// From the token flow, with the policy's login.
    Login,
}

/// What to send the Notary server of `repo`: a `[[server]]` token as it is, else the token
/// its token service grants (see the module documentation). Blocking.
fn authenticate(
    config: &TrustConfig,
    repo: &Repo,
    token: Option<Arc<ServerToken>>,
    deadline: Instant,
) -> Result<(Option<Arc<ServerToken>>, Auth), TrustError> {
    let key = repo.key();
    let server = key.server.as_str();
    if !server.starts_with("https://") && !server.starts_with("http://") {
        return Ok((token, Auth::AsConfigured));
    }
    let credentials = match token.as_deref().map(|t| (t, t.credentials())) {
        Some((_, None)) => return Ok((token, Auth::AsConfigured)),
        Some((t, Some(Ok(c)))) => Some((t, c)),
        Some((_, Some(Err(why)))) => {
            return Err(TrustError::NotAuthorised(format!(
                "cannot log in to the token service of the Notary server {server}: {why}"
            )))
        }
        None => None,
    };
    let options = HttpOptions {
        connect_timeout: config.fetch_timeout.min(std::time::Duration::from_secs(2)),
        timeout: config.fetch_timeout,
        ..HttpOptions::default()
    };
    let granted = notary_token(
        server,
        key.gun.as_str(),
        credentials.as_ref().map(|(_, c)| c),
        &options,
        deadline,
    )
    .map_err(|e| token_refused(e, server, credentials.as_ref().map(|(t, _)| *t)))?;
    match granted {
        NotaryToken::NotNeeded => Ok((None, Auth::AsConfigured)),
        NotaryToken::Granted {
            token,
            with_credentials,
        } => {
            let auth = if with_credentials {
                Auth::Login
            } else {
                Auth::Anonymous {
                    withheld: credentials.is_some(),
                }
            };
            Ok((Some(Arc::new(ServerToken::inline((*token).clone()))), auth))
        }
    }
}

/// The [`TrustError`] for a token flow with the Notary server `server` that gave no token;
/// `login` is the policy's login, when one was sent. No message holds a credential.
fn token_refused(e: NotaryAuthError, server: &str, login: Option<&ServerToken>) -> TrustError {
    match e {
        NotaryAuthError::Token(TokenError::Refused { realm, status, .. }) => {
            TrustError::NotAuthorised(match login {
                Some(t) => format!(
                    "the token service {realm} of the Notary server {server} refused {} \
                     (HTTP {status}): check the user name and the password in that file",
                    t.describe()
                ),
                None => format!(
                    "the token service {realm} of the Notary server {server} grants no token \
                     without credentials (HTTP {status}): add a [[server]] table with url = \
                     \"{server}\", username = \"…\" and password_file = \"/path/to/password\""
                ),
            })
        }
        NotaryAuthError::Token(
            e @ (TokenError::TimedOut { .. }
            | TokenError::Unreachable { .. }
            | TokenError::Read { .. }),
        ) => TrustError::Unreachable(format!("the Notary server {server}: {e}")),
        NotaryAuthError::Unreachable(why) => {
            TrustError::Unreachable(format!("the Notary server {server}: {why}"))
        }
        e @ (NotaryAuthError::BadUrl(_) | NotaryAuthError::Client(_)) => {
            TrustError::Setup(format!("the Notary server {server}: {e}"))
        }
        e => TrustError::NotAuthorised(format!("the Notary server {server}: {e}")),
    }
}

/// The [`TrustError`] for a failed Notary update from `server`.
fn classify(
    e: NotaryVerifyError,
    server: &str,
    token: Option<&ServerToken>,
    auth: Auth,
) -> TrustError {
    match e {
        NotaryVerifyError::Transport { source, .. } if source.is_not_found() => {
            TrustError::NoTrustData(source.to_string())
        }
        NotaryVerifyError::Transport {
            source:
                TransportError::Unauthorized {
                    path,
                    status,
                    sent_token,
                    ..
                },
            ..
        } => TrustError::NotAuthorised(match auth {
            Auth::AsConfigured => not_authorised(server, &path, status, sent_token, token),
            Auth::Anonymous { withheld } => format!(
                "the Notary server {server} refused the anonymous token its token service \
                 granted ({path}: HTTP {status}): {}",
                if withheld {
                    "the username and password of its [[server]] table are not sent over \
                     http:// off loopback; use its https:// URL"
                } else {
                    "this repository needs a login: add a [[server]] table with url = \
                     \"SERVER\", username = \"…\" and password_file = \"/path/to/password\""
                }
                .replace("SERVER", server)
            ),
            Auth::Login => format!(
                "the Notary server {server} refused the token its token service granted for \
                 {} ({path}: HTTP {status}): that login may not pull this repository",
                token.map(ServerToken::describe).unwrap_or_default()
            ),
        }),
        NotaryVerifyError::Transport { what, source } => {
            TrustError::Unreachable(format!("{what}: {source}"))
        }
        rollback
        @ (NotaryVerifyError::Rollback { .. } | NotaryVerifyError::RootRollback { .. }) => {
            TrustError::NotaryRollback(rollback.to_string())
        }
        other => TrustError::Rejected(other.to_string()),
    }
}

/// The state this webhook last wrote for the repository in `dir`, when there is one for
/// `gun` that reads.
fn read_state(dir: &Path, gun: &Gun) -> Option<NotaryState> {
    let bytes = std::fs::read(dir.join(STATE_FILE)).ok()?;
    match NotaryState::from_json(&bytes) {
        Ok(state) if state.gun() == gun.as_str() => Some(state),
        Ok(state) => {
            tracing::warn!(
                dir = %dir.display(),
                kept = state.gun(),
                %gun,
                "ignoring a Notary state kept for another repository: trust restarts from the pinned root"
            );
            None
        }
        Err(e) => {
            tracing::warn!(
                dir = %dir.display(),
                error = %e,
                "ignoring an unreadable Notary state: trust restarts from the pinned root"
            );
            None
        }
    }
}

/// Writes `state` into `dir` (created when missing), replacing the previous one atomically.
fn write_state(dir: &Path, state: &NotaryState) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{STATE_FILE}.tmp.{}", std::process::id()));
    std::fs::write(&tmp, state.to_json())?;
    std::fs::rename(&tmp, dir.join(STATE_FILE))
}

/// A transport whose every fetch is over by `deadline`, keeping the root, timestamp and
/// snapshot it fetched (their expiry bounds how long the collection may answer).
struct Recording<T> {
    inner: T,
    deadline: Instant,
    kept: Mutex<Vec<(String, Vec<u8>)>>,
}

impl<T: Transport> Transport for Recording<T> {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        self.fetch_by(path, max_len, self.deadline)
    }

    fn fetch_by(
        &self,
        path: &str,
        max_len: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
        let bytes = self
            .inner
            .fetch_by(path, max_len, deadline.min(self.deadline))?;
        if path == "root.json" || path == "timestamp.json" || path.starts_with("snapshot.") {
            self.kept
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((path.to_owned(), bytes.clone()));
        }
        Ok(bytes)
    }
}

/// What the verified `collection` of `gun` says of `image` (`parsed`), when one of
/// `required` (Notary delegations; empty: any role) or a role below it must have signed it.
/// Pure.
///
/// - A tag (or none: `latest`) is resolved as `docker trust` does
///   ([`NotaryCollection::lookup_preferring`] with [`DOCKER_TRUST_ROLES`], or with
///   `required`); a tag with a digest must be signed for that digest; a tag alone is pinned
///   to the digest signed for it.
/// - A digest alone must be the SHA-256 some role in scope signed under any name.
pub fn verdict(
    collection: &NotaryCollection,
    image: &str,
    parsed: &ImageRef,
    gun: &Gun,
    required: &[String],
) -> Verdict {
    let denied = |message: String, reason| Verdict::Denied { message, reason };
    let in_scope = |role: &str| {
        required.is_empty()
            || required.iter().any(|r| {
                role == r
                    || role
                        .strip_prefix(r.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            })
    };
    let required_text = || required.join(" or ");
    let digest = parsed.digest();
    let wanted_hex = digest
        .filter(|d| d.algorithm().to_string() == "sha256")
        .map(|d| d.hex().to_owned());
    if parsed.tag().is_none() {
        if let Some(d) = digest {
            let signer = |scoped: bool| {
                collection.roles.iter().find(|r| {
                    in_scope(&r.name) == scoped
                        && r.targets.values().any(|t| {
                            wanted_hex.is_some() && t.sha256.as_deref() == wanted_hex.as_deref()
                        })
                })
            };
            return match (signer(true), signer(false)) {
                (Some(_), _) => Verdict::Allowed {
                    pinned: None,
                    reason: VERIFIED,
                },
                (None, Some(r)) => denied(
                    format!(
                        "{d} is signed in {gun} by {}, not by the required role {}",
                        r.name,
                        required_text()
                    ),
                    "required_role",
                ),
                (None, None) => denied(
                    format!("{d} is not signed in {gun} on its Notary server"),
                    "unsigned",
                ),
            };
        }
    }
    let tag = parsed.tag_or_latest();
    let roles: Vec<&str> = if required.is_empty() {
        DOCKER_TRUST_ROLES.to_vec()
    } else {
        required.iter().map(String::as_str).collect()
    };
    let Some(target) = collection.lookup_preferring(tag, &roles) else {
        return match collection.lookup_preferring(tag, &DOCKER_TRUST_ROLES) {
            Some(other) if !required.is_empty() => denied(
                format!(
                    "tag {tag} is signed in {gun} by {}, not by the required role {}",
                    other.role,
                    required_text()
                ),
                "required_role",
            ),
            _ => denied(
                format!("tag {tag} is not signed in {gun} on its Notary server"),
                "unsigned",
            ),
        };
    };
    let Some(signed) = target.sha256.as_deref() else {
        return denied(
            format!("tag {tag} is signed in {gun} without a SHA-256 digest"),
            "unsigned",
        );
    };
    match digest {
        Some(d) if wanted_hex.as_deref() != Some(signed) => denied(
            format!("{d} is not the signed digest sha256:{signed} of tag {tag}"),
            "digest_mismatch",
        ),
        Some(_) => Verdict::Allowed {
            pinned: None,
            reason: VERIFIED,
        },
        None => Verdict::Allowed {
            pinned: Some(format!("{}@sha256:{signed}", image.trim())),
            reason: VERIFIED,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use vouch_verifier::notary::{NotaryTarget, VerifiedRole};

    use super::*;

    fn hex(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn role(name: &str, tags: &[(&str, char)]) -> VerifiedRole {
        VerifiedRole {
            name: name.to_owned(),
            version: 1,
            expires: "2036-01-01T00:00:00Z".to_owned(),
            signed_by: Vec::new(),
            paths: vec![String::new()],
            targets: tags
                .iter()
                .map(|(tag, c)| {
                    let t = NotaryTarget {
                        name: (*tag).to_owned(),
                        sha256: Some(hex(*c)),
                        length: 1,
                        custom: None,
                        role: name.to_owned(),
                    };
                    ((*tag).to_owned(), t)
                })
                .collect::<BTreeMap<_, _>>(),
            outside_paths: Vec::new(),
            keys: Vec::new(),
            threshold: 1,
        }
    }

    /// `targets` signs v1 (1…) and v2 (2…); `targets/releases` signs v2 (b…) and v3 (3…);
    /// `targets/dev` signs v4 (4…).
    fn collection() -> NotaryCollection {
        NotaryCollection {
            gun: "reg.io/app".to_owned(),
            root_version: 1,
            timestamp_version: 1,
            snapshot_version: 1,
            roles: vec![
                role("targets", &[("v1", '1'), ("v2", '2')]),
                role("targets/dev", &[("v4", '4')]),
                role("targets/releases", &[("v2", 'b'), ("v3", '3')]),
            ],
            skipped: Vec::new(),
            expired: Vec::new(),
            state: NotaryState::from_trusted_root("reg.io/app", Vec::new()),
        }
    }

    fn decide(image: &str, required: &[&str]) -> Verdict {
        let gun = Gun::new("reg.io/app").unwrap();
        let required: Vec<String> = required.iter().map(|r| (*r).to_owned()).collect();
        verdict(
            &collection(),
            image,
            &ImageRef::parse(image.trim()).unwrap(),
            &gun,
            &required,
        )
    }

    fn pinned(v: Verdict) -> Option<String> {
        match v {
            Verdict::Allowed { pinned, reason } => {
                assert_eq!(reason, VERIFIED);
                pinned
            }
            Verdict::Denied { message, .. } => panic!("denied: {message}"),
        }
    }

    fn refused(v: Verdict) -> (&'static str, String) {
        match v {
            Verdict::Denied { message, reason } => (reason, message),
            Verdict::Allowed { .. } => panic!("admitted"),
        }
    }

    #[test]
    fn tags_resolve_as_docker_trust_does_and_are_pinned() {
        assert_eq!(
            pinned(decide("reg.io/app:v1", &[])),
            Some(format!("reg.io/app:v1@sha256:{}", hex('1')))
        );
        // targets/releases first: its v2, not the one targets signed.
        assert_eq!(
            pinned(decide(" reg.io/app:v2", &[])),
            Some(format!("reg.io/app:v2@sha256:{}", hex('b')))
        );
        assert_eq!(
            pinned(decide(&format!("reg.io/app:v3@sha256:{}", hex('3')), &[])),
            None
        );
        let (reason, m) = refused(decide(&format!("reg.io/app:v2@sha256:{}", hex('2')), &[]));
        assert_eq!(reason, "digest_mismatch");
        assert!(m.contains(&format!(
            "is not the signed digest sha256:{} of tag v2",
            hex('b')
        )));
        let (reason, m) = refused(decide("reg.io/app", &[]));
        assert_eq!(reason, "unsigned");
        assert!(m.contains("tag latest is not signed in reg.io/app"), "{m}");
    }

    #[test]
    fn digests_are_trusted_when_a_role_in_scope_signed_them() {
        assert_eq!(
            pinned(decide(&format!("reg.io/app@sha256:{}", hex('4')), &[])),
            None
        );
        let (reason, m) = refused(decide(&format!("reg.io/app@sha256:{}", hex('9')), &[]));
        assert_eq!(reason, "unsigned");
        assert!(m.contains("is not signed in reg.io/app"), "{m}");
        let (reason, m) = refused(decide(
            &format!("reg.io/app@sha256:{}", hex('4')),
            &["targets/releases"],
        ));
        assert_eq!(reason, "required_role");
        assert!(m.contains("by targets/dev, not by the required role targets/releases"));
    }

    #[test]
    fn required_roles_count_only_those_delegations_and_below() {
        assert_eq!(
            pinned(decide("reg.io/app:v3", &["targets/releases"])),
            Some(format!("reg.io/app:v3@sha256:{}", hex('3')))
        );
        let (reason, m) = refused(decide("reg.io/app:v1", &["targets/releases"]));
        assert_eq!(reason, "required_role");
        assert!(m.contains("tag v1 is signed in reg.io/app by targets, not by the required role targets/releases"), "{m}");
        // A role merely sharing a prefix of the name is not below it.
        let (reason, _) = refused(decide("reg.io/app:v4", &["targets/de"]));
        assert_eq!(reason, "required_role");
        assert!(pinned(decide(
            "reg.io/app:v4",
            &["targets/releases", "targets/dev"]
        ))
        .is_some());
    }
}
