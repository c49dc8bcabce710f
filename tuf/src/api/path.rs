//! The server's URL layout, both directions, without letting percent-decoding turn `%2F`
//! into a path separator.
//!
//! Everything between `/v2/` and `/_trust/` is the GUN; after `/_trust/tuf/` comes a file
//! name: `ROLE.json`, `VERSION.ROLE.json`, `ROLE.SHA256.json` or `ROLE.key`. The role part is
//! percent-decoded on its own, so `1.targets%2Freleases.json` names version 1 of the role
//! `targets/releases` (a literal `/` works too, as Notary clients send it).
//!
//! This is the one place that knows the URL layout. Reading: [`shape`] splits a path by its
//! shape alone (what the server's HTTP layer counts requests under), and [`parse`] builds on
//! it, checking the GUN and the file name. Writing: [`Route::path`] (and [`FileRef::file_name`]
//! for a file below a repository's base) gives the path a client requests; role names are
//! percent-encoded with [`percent_encode`], so a delegated role's `/` travels as `%2F`.

use crate::reference::Gun;

/// What a `/v2/…` path addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_trust/changefeed` (None) or `/v2/{gun}/_trust/changefeed`.
    Changefeed(Option<Gun>),
    /// `/v2/_trust/events` (None) or `/v2/{gun}/_trust/events`: the changefeed as a stream
    /// of Server-Sent Events (see [`crate::api::event`]).
    Events(Option<Gun>),
    /// `/v2/_trust/webhooks`: the webhook subscriptions and their delivery state (GET).
    Webhooks,
    /// `/v2/_trust/webhooks/key`: the public key webhook deliveries are signed with (GET).
    WebhookKey,
    /// `/v2/_trust/webhooks/{name}/resume`: deliver again to a subscription that gave up
    /// (POST).
    WebhookResume(String),
    /// `/v2/{gun}/_trust/tuf/`: publish (POST) or delete (DELETE).
    Repository(Gun),
    /// `/v2/{gun}/_trust/tuf/{file}`.
    File(Gun, FileRef),
    /// `/v2/{gun}/_trust/proposals`: list (GET) or create (POST) staged proposals.
    Proposals(Gun),
    /// `/v2/{gun}/_trust/proposals/{id}`: one proposal (GET), or withdraw it (DELETE).
    Proposal(Gun, u64),
    /// `/v2/{gun}/_trust/proposals/{id}/signatures`: add signatures to it (POST).
    ProposalSignatures(Gun, u64),
}

/// Which version of a role's metadata, or its online key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileRef {
    /// `ROLE.json`: the current version.
    Current(String),
    /// `VERSION.ROLE.json`.
    Version(String, u64),
    /// `ROLE.SHA256.json`.
    Checksum(String, String),
    /// `ROLE.key`: the server-held key of `timestamp` or `snapshot`.
    Key(String),
}

/// A path that does not address anything (404) or names an invalid GUN (400).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// Not a path of this API.
    NotFound,
    /// The GUN is malformed.
    InvalidGun(String),
    /// The file name is malformed.
    InvalidFile(String),
}

/// The prefix of every API path.
const API: &str = "/v2/";
/// What separates a GUN from the trust endpoints.
const TRUST: &str = "/_trust/";
/// The trust-data directory below [`TRUST`].
const TUF: &str = "tuf/";
/// The changefeed below [`TRUST`].
const CHANGEFEED: &str = "changefeed";
const EVENTS: &str = "events";
const WEBHOOKS: &str = "_trust/webhooks";
/// Staged proposals below [`TRUST`].
const PROPOSALS: &str = "proposals";
/// A proposal's signatures below its path.
const SIGNATURES: &str = "signatures";
/// The suffix of an online key's file name.
const KEY_SUFFIX: &str = ".key";
/// The suffix of a metadata file's name.
const JSON_SUFFIX: &str = ".json";

/// Percent-encodes every byte except ASCII letters, digits and `-._~` (what TUF clients do
/// to role and target names in file names, and what [`parse`] decodes).
///
/// ```
/// assert_eq!(vouch_tuf::api::path::percent_encode("targets/releases"), "targets%2Freleases");
/// ```
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Route {
    /// The path a client requests for this route (percent-encoded where needed); [`parse`]
    /// reads it back to this route.
    ///
    /// ```
    /// use vouch_tuf::api::{FileRef, Route};
    /// use vouch_tuf::reference::Gun;
    /// let gun = Gun::new("org/app").unwrap();
    /// assert_eq!(Route::Base.path(), "/v2/");
    /// assert_eq!(Route::Changefeed(None).path(), "/v2/_trust/changefeed");
    /// assert_eq!(Route::Repository(gun.clone()).path(), "/v2/org/app/_trust/tuf/");
    /// assert_eq!(
    ///     Route::File(gun, FileRef::Key("timestamp".into())).path(),
    ///     "/v2/org/app/_trust/tuf/timestamp.key"
    /// );
    /// ```
    pub fn path(&self) -> String {
        match self {
            Route::Base => API.to_owned(),
            Route::Changefeed(None) => format!("{API}_trust/{CHANGEFEED}"),
            Route::Changefeed(Some(gun)) => format!("{API}{gun}{TRUST}{CHANGEFEED}"),
            Route::Events(None) => format!("{API}_trust/{EVENTS}"),
            Route::Events(Some(gun)) => format!("{API}{gun}{TRUST}{EVENTS}"),
            Route::Webhooks => format!("{API}{WEBHOOKS}"),
            Route::WebhookKey => format!("{API}{WEBHOOKS}/key"),
            Route::WebhookResume(name) => format!("{API}{WEBHOOKS}/{name}/resume"),
            Route::Repository(gun) => repository_path(gun),
            Route::File(gun, file) => format!("{}{}", repository_path(gun), file.file_name()),
            Route::Proposals(gun) => format!("{API}{gun}{TRUST}{PROPOSALS}"),
            Route::Proposal(gun, id) => format!("{API}{gun}{TRUST}{PROPOSALS}/{id}"),
            Route::ProposalSignatures(gun, id) => {
                format!("{API}{gun}{TRUST}{PROPOSALS}/{id}/{SIGNATURES}")
            }
        }
    }

    /// [`Route::path`] on the server whose base URL is `server` (with or without a trailing
    /// `/`).
    ///
    /// ```
    /// use vouch_tuf::api::Route;
    /// assert_eq!(Route::Base.url("https://vouch.example/"), "https://vouch.example/v2/");
    /// ```
    pub fn url(&self, server: &str) -> String {
        format!("{}{}", server.trim_end_matches('/'), self.path())
    }
}

/// `/v2/{gun}/_trust/tuf/`: where the server serves `gun`'s metadata (every
/// [`FileRef::file_name`] is relative to it), and where a client publishes or deletes it.
pub fn repository_path(gun: &Gun) -> String {
    repository_path_unchecked(gun.as_str())
}

/// [`repository_path`] of a GUN given as text and not checked: for a client that must be
/// able to send what the server would refuse (a test of the server's checks). Everyone else
/// builds paths from a [`Gun`].
///
/// ```
/// use vouch_tuf::api::path::repository_path_unchecked;
/// assert_eq!(repository_path_unchecked("Org/App"), "/v2/Org/App/_trust/tuf/");
/// ```
pub fn repository_path_unchecked(gun: &str) -> String {
    format!("{API}{gun}{TRUST}{TUF}")
}

/// The URL of [`repository_path`] on the server whose base URL is `server` (with or without
/// a trailing `/`).
///
/// ```
/// use vouch_tuf::api::path::repository_url;
/// use vouch_tuf::reference::Gun;
/// assert_eq!(
///     repository_url("https://vouch.example/", &Gun::new("example.com/org/app").unwrap()),
///     "https://vouch.example/v2/example.com/org/app/_trust/tuf/"
/// );
/// ```
pub fn repository_url(server: &str, gun: &Gun) -> String {
    Route::Repository(gun.clone()).url(server)
}

impl FileRef {
    /// The file name below the repository's path: `ROLE.json`, `VERSION.ROLE.json`,
    /// `ROLE.SHA256.json` or `ROLE.key`, the role percent-encoded.
    ///
    /// ```
    /// use vouch_tuf::api::FileRef;
    /// assert_eq!(FileRef::Current("root".into()).file_name(), "root.json");
    /// assert_eq!(FileRef::Version("a/b".into(), 3).file_name(), "3.a%2Fb.json");
    /// ```
    pub fn file_name(&self) -> String {
        match self {
            FileRef::Current(role) => format!("{}{JSON_SUFFIX}", percent_encode(role)),
            FileRef::Version(role, v) => format!("{v}.{}{JSON_SUFFIX}", percent_encode(role)),
            FileRef::Checksum(role, hash) => {
                format!("{}.{hash}{JSON_SUFFIX}", percent_encode(role))
            }
            FileRef::Key(role) => format!("{}{KEY_SUFFIX}", percent_encode(role)),
        }
    }

    /// The file named `name` as [`FileRef::file_name`] writes it (percent-encoded, and only
    /// in that spelling: a name that decodes to a file but is not how vouch writes it is
    /// refused, so one file has one name).
    ///
    /// ```
    /// use vouch_tuf::api::FileRef;
    /// assert_eq!(FileRef::from_file_name("3.a%2Fb.json"), Ok(FileRef::Version("a/b".into(), 3)));
    /// assert!(FileRef::from_file_name("3.a/b.json").is_err());
    /// assert!(FileRef::from_file_name("../root.json").is_err());
    /// ```
    pub fn from_file_name(name: &str) -> Result<FileRef, RouteError> {
        let decoded = percent_decode(name)
            .ok_or_else(|| RouteError::InvalidFile(format!("{name:?}: bad percent-encoding")))?;
        let file = parse_file(&decoded)?;
        if file.file_name() != name {
            return Err(RouteError::InvalidFile(format!(
                "{name:?}: not written as vouch writes it ({})",
                file.file_name()
            )));
        }
        Ok(file)
    }

    /// The role this file belongs to.
    pub fn role(&self) -> &str {
        match self {
            FileRef::Current(r) | FileRef::Version(r, _) | FileRef::Checksum(r, _) => r,
            FileRef::Key(r) => r,
        }
    }
}

fn gun(raw: &str) -> Result<Gun, RouteError> {
    Gun::new(raw).map_err(|e| RouteError::InvalidGun(e.to_string()))
}

/// A `/v2/…` path split by its shape alone, before the GUN and the file name are checked
/// (what [`parse`] does first). Cheap: no allocation and no validation, so the HTTP layer
/// can tell which kind of route a request addresses (for its metrics) even when the names
/// in it are invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape<'p> {
    /// `/v2/`
    Base,
    /// `/v2/_trust/changefeed` (None) or `/v2/{gun}/_trust/changefeed`, the GUN unchecked.
    Changefeed(Option<&'p str>),
    /// `/v2/_trust/events` (None) or `/v2/{gun}/_trust/events`, the GUN unchecked.
    Events(Option<&'p str>),
    /// `/v2/_trust/webhooks[/{rest}]`, the rest unchecked.
    Webhooks(Option<&'p str>),
    /// `/v2/{gun}/_trust/tuf/`, the GUN unchecked.
    Repository(&'p str),
    /// `/v2/{gun}/_trust/tuf/{file}`, both unchecked and the file name still
    /// percent-encoded.
    File(&'p str, &'p str),
    /// `/v2/{gun}/_trust/proposals[/{rest}]`, the GUN and the rest (the id, perhaps followed
    /// by `/signatures`) unchecked.
    Proposals(&'p str, Option<&'p str>),
}

impl Shape<'_> {
    /// True for a file named `….key` (an online key, or an invalid key name).
    pub fn addresses_key(&self) -> bool {
        matches!(self, Shape::File(_, f) if f.ends_with(KEY_SUFFIX))
    }
}

/// Splits a raw request path by its shape (see [`Shape`]); only [`RouteError::NotFound`].
pub fn shape(path: &str) -> Result<Shape<'_>, RouteError> {
    let rest = path.strip_prefix(API).ok_or(RouteError::NotFound)?;
    if rest.is_empty() {
        return Ok(Shape::Base);
    }
    match rest.strip_prefix("_trust/") {
        Some(CHANGEFEED) => return Ok(Shape::Changefeed(None)),
        Some(EVENTS) => return Ok(Shape::Events(None)),
        _ => {}
    }
    if let Some(after) = rest.strip_prefix(WEBHOOKS) {
        if after.is_empty() {
            return Ok(Shape::Webhooks(None));
        }
        if let Some(sub) = after.strip_prefix('/') {
            return Ok(Shape::Webhooks(Some(sub)));
        }
    }
    let (g, after) = rest.split_once(TRUST).ok_or(RouteError::NotFound)?;
    if after == CHANGEFEED {
        return Ok(Shape::Changefeed(Some(g)));
    }
    if after == EVENTS {
        return Ok(Shape::Events(Some(g)));
    }
    if after == PROPOSALS {
        return Ok(Shape::Proposals(g, None));
    }
    if let Some(rest) = after
        .strip_prefix(PROPOSALS)
        .and_then(|r| r.strip_prefix('/'))
    {
        return Ok(Shape::Proposals(g, Some(rest)));
    }
    let file = after.strip_prefix(TUF).ok_or(RouteError::NotFound)?;
    if file.is_empty() {
        return Ok(Shape::Repository(g));
    }
    Ok(Shape::File(g, file))
}

/// Parses a raw (still percent-encoded) request path.
///
/// ```
/// use vouch_tuf::api::{parse, FileRef, Route};
/// let r = parse("/v2/example.com/org/app/_trust/tuf/2.targets%2Freleases.json").unwrap();
/// let Route::File(gun, FileRef::Version(role, 2)) = r else { panic!() };
/// assert_eq!(gun.as_str(), "example.com/org/app");
/// assert_eq!(role, "targets/releases");
/// ```
pub fn parse(path: &str) -> Result<Route, RouteError> {
    Ok(match shape(path)? {
        Shape::Base => Route::Base,
        Shape::Changefeed(None) => Route::Changefeed(None),
        Shape::Changefeed(Some(g)) => Route::Changefeed(Some(gun(g)?)),
        Shape::Events(None) => Route::Events(None),
        Shape::Events(Some(g)) => Route::Events(Some(gun(g)?)),
        Shape::Webhooks(None) => Route::Webhooks,
        Shape::Webhooks(Some("key")) => Route::WebhookKey,
        Shape::Webhooks(Some(rest)) => match rest.split_once('/') {
            Some((name, "resume")) if is_subscription_name(name) => {
                Route::WebhookResume(name.to_owned())
            }
            _ => return Err(RouteError::NotFound),
        },
        Shape::Repository(g) => Route::Repository(gun(g)?),
        Shape::File(g, file) => {
            let gun = gun(g)?;
            let file = percent_decode(file)
                .ok_or_else(|| RouteError::InvalidFile("bad percent-encoding".into()))?;
            Route::File(gun, parse_file(&file)?)
        }
        Shape::Proposals(g, None) => Route::Proposals(gun(g)?),
        Shape::Proposals(g, Some(rest)) => {
            let (id, signatures) = match rest.split_once('/') {
                Some((id, SIGNATURES)) => (id, true),
                Some(_) => return Err(RouteError::NotFound),
                None => (rest, false),
            };
            let id = parse_id(id).ok_or(RouteError::NotFound)?;
            let gun = gun(g)?;
            if signatures {
                Route::ProposalSignatures(gun, id)
            } else {
                Route::Proposal(gun, id)
            }
        }
    })
}

/// A webhook subscription's name: 1 to 64 letters, digits, `-`, `_` or `.` (what the
/// server's configuration accepts), so it needs no encoding in a path.
pub fn is_subscription_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A proposal number: decimal digits, no sign, no leading zero, within `i64` (what every
/// store can hold).
fn parse_id(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse::<u64>().ok().filter(|n| *n <= i64::MAX as u64)
}

fn parse_file(file: &str) -> Result<FileRef, RouteError> {
    let bad = |why: &str| RouteError::InvalidFile(format!("{file:?}: {why}"));
    if let Some(role) = file.strip_suffix(KEY_SUFFIX) {
        return match role {
            "timestamp" | "snapshot" => Ok(FileRef::Key(role.to_owned())),
            _ => Err(bad("only timestamp.key and snapshot.key exist")),
        };
    }
    let stem = file
        .strip_suffix(JSON_SUFFIX)
        .ok_or_else(|| bad("expected a .json or .key file"))?;
    if let Some((first, role)) = stem.split_once('.') {
        if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
            let v: u64 = first.parse().map_err(|_| bad("version out of range"))?;
            return Ok(FileRef::Version(
                check_role(role).ok_or_else(|| bad("invalid role name"))?,
                v,
            ));
        }
    }
    if let Some((role, last)) = stem.rsplit_once('.') {
        if crate::hex::is_lower_hex(last, 64) {
            return Ok(FileRef::Checksum(
                check_role(role).ok_or_else(|| bad("invalid role name"))?,
                last.to_owned(),
            ));
        }
    }
    Ok(FileRef::Current(
        check_role(stem).ok_or_else(|| bad("invalid role name"))?,
    ))
}

fn check_role(role: &str) -> Option<String> {
    crate::types::RoleName::new(role)
        .ok()
        .map(|r| r.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn g(s: &str) -> Gun {
        Gun::new(s).unwrap()
    }

    #[test]
    fn routes() {
        let h = "0".repeat(64);
        let checksum_path = format!("/v2/app/_trust/tuf/snapshot.{h}.json");
        let cases = vec![
            ("/v2/", Ok(Route::Base)),
            ("/v2/_trust/changefeed", Ok(Route::Changefeed(None))),
            ("/v2/_trust/events", Ok(Route::Events(None))),
            (
                "/v2/org/app/_trust/events",
                Ok(Route::Events(Some(g("org/app")))),
            ),
            ("/v2/_trust/events/", Err(RouteError::NotFound)),
            ("/v2/_trust/webhooks", Ok(Route::Webhooks)),
            ("/v2/_trust/webhooks/key", Ok(Route::WebhookKey)),
            (
                "/v2/_trust/webhooks/bot-1/resume",
                Ok(Route::WebhookResume("bot-1".into())),
            ),
            (
                "/v2/_trust/webhooks/bot%2F1/resume",
                Err(RouteError::NotFound),
            ),
            ("/v2/_trust/webhooks/../resume", Err(RouteError::NotFound)),
            ("/v2/_trust/webhooks/bot-1", Err(RouteError::NotFound)),
            (
                "/v2/org/app/_trust/changefeed",
                Ok(Route::Changefeed(Some(g("org/app")))),
            ),
            (
                "/v2/org/app/_trust/tuf/",
                Ok(Route::Repository(g("org/app"))),
            ),
            (
                "/v2/localhost:5000/app/_trust/tuf/root.json",
                Ok(Route::File(
                    g("localhost:5000/app"),
                    FileRef::Current("root".into()),
                )),
            ),
            (
                "/v2/app/_trust/tuf/3.root.json",
                Ok(Route::File(g("app"), FileRef::Version("root".into(), 3))),
            ),
            (
                "/v2/app/_trust/tuf/targets%2Freleases.json",
                Ok(Route::File(
                    g("app"),
                    FileRef::Current("targets/releases".into()),
                )),
            ),
            (
                "/v2/app/_trust/tuf/targets/releases.json",
                Ok(Route::File(
                    g("app"),
                    FileRef::Current("targets/releases".into()),
                )),
            ),
            (
                "/v2/app/_trust/tuf/1.targets%2Freleases.json",
                Ok(Route::File(
                    g("app"),
                    FileRef::Version("targets/releases".into(), 1),
                )),
            ),
            (
                checksum_path.as_str(),
                Ok(Route::File(
                    g("app"),
                    FileRef::Checksum("snapshot".into(), h.clone()),
                )),
            ),
            (
                "/v2/app/_trust/tuf/timestamp.key",
                Ok(Route::File(g("app"), FileRef::Key("timestamp".into()))),
            ),
            (
                "/v2/app/_trust/tuf/targets.key",
                Err(RouteError::InvalidFile(String::new())),
            ),
            (
                "/v2/app/_trust/tuf/root.txt",
                Err(RouteError::InvalidFile(String::new())),
            ),
            (
                "/v2/app/_trust/tuf/%zz.json",
                Err(RouteError::InvalidFile(String::new())),
            ),
            (
                "/v2/../x/_trust/tuf/root.json",
                Err(RouteError::InvalidGun(String::new())),
            ),
            (
                "/v2/Org/app/_trust/tuf/root.json",
                Ok(Route::File(g("Org/app"), FileRef::Current("root".into()))),
            ),
            (
                "/v2/org/App/_trust/tuf/root.json",
                Err(RouteError::InvalidGun(String::new())),
            ),
            (
                "/v2//_trust/tuf/",
                Err(RouteError::InvalidGun(String::new())),
            ),
            ("/v3/app/_trust/tuf/", Err(RouteError::NotFound)),
            ("/v2/app/tuf/", Err(RouteError::NotFound)),
            ("/v2/app/_trust/other/", Err(RouteError::NotFound)),
            (
                "/v2/org/app/_trust/proposals",
                Ok(Route::Proposals(g("org/app"))),
            ),
            (
                "/v2/app/_trust/proposals/7",
                Ok(Route::Proposal(g("app"), 7)),
            ),
            (
                "/v2/app/_trust/proposals/12/signatures",
                Ok(Route::ProposalSignatures(g("app"), 12)),
            ),
            ("/v2/app/_trust/proposals/", Err(RouteError::NotFound)),
            ("/v2/app/_trust/proposals/07", Err(RouteError::NotFound)),
            ("/v2/app/_trust/proposals/0", Err(RouteError::NotFound)),
            ("/v2/app/_trust/proposals/-1", Err(RouteError::NotFound)),
            (
                "/v2/app/_trust/proposals/9223372036854775808",
                Err(RouteError::NotFound),
            ),
            (
                "/v2/app/_trust/proposals/7/other",
                Err(RouteError::NotFound),
            ),
            (
                "/v2/app/_trust/proposals/7/signatures/x",
                Err(RouteError::NotFound),
            ),
            (
                "/v2/Org/App/_trust/proposals",
                Err(RouteError::InvalidGun(String::new())),
            ),
        ];
        for (path, want) in cases {
            let got = parse(path);
            match (&got, &want) {
                (Err(RouteError::InvalidFile(_)), Err(RouteError::InvalidFile(_)))
                | (Err(RouteError::InvalidGun(_)), Err(RouteError::InvalidGun(_))) => {}
                _ => assert_eq!(got, want, "{path}"),
            }
        }
        let long = format!("/v2/{}/_trust/tuf/", "a".repeat(256));
        assert!(matches!(parse(&long), Err(RouteError::InvalidGun(_))));
    }

    /// Every route a client builds parses back to itself, delegated roles (with `/`, and
    /// characters that need encoding) included, and its shape agrees.
    #[test]
    fn every_built_route_parses_back() {
        let h = "ab".repeat(32);
        let mut routes = vec![
            Route::Base,
            Route::Changefeed(None),
            Route::Events(None),
            Route::Webhooks,
            Route::WebhookKey,
            Route::WebhookResume("deploy-bot.v2_x".into()),
        ];
        for gun in ["app", "org/app", "registry.example.com:5000/org/team/app"] {
            routes.push(Route::Changefeed(Some(g(gun))));
            routes.push(Route::Events(Some(g(gun))));
            routes.push(Route::Repository(g(gun)));
            for role in [
                "root",
                "targets",
                "snapshot",
                "timestamp",
                "targets/releases",
                "targets/releases/qa",
                "releases",
                "team-a_b.c~d",
            ] {
                for file in [
                    FileRef::Current(role.into()),
                    FileRef::Version(role.into(), 1),
                    FileRef::Version(role.into(), u64::MAX),
                    FileRef::Checksum(role.into(), h.clone()),
                ] {
                    routes.push(Route::File(g(gun), file));
                }
            }
            for role in ["timestamp", "snapshot"] {
                routes.push(Route::File(g(gun), FileRef::Key(role.into())));
            }
            routes.push(Route::Proposals(g(gun)));
            for id in [1, 42, i64::MAX as u64] {
                routes.push(Route::Proposal(g(gun), id));
                routes.push(Route::ProposalSignatures(g(gun), id));
            }
        }
        for route in routes {
            let path = route.path();
            assert_eq!(parse(&path), Ok(route.clone()), "{path}");
            let shaped = shape(&path).unwrap();
            let same_kind = matches!(
                (&route, shaped),
                (Route::Base, Shape::Base)
                    | (Route::Changefeed(_), Shape::Changefeed(_))
                    | (Route::Events(_), Shape::Events(_))
                    | (Route::Webhooks, Shape::Webhooks(None))
                    | (
                        Route::WebhookKey | Route::WebhookResume(_),
                        Shape::Webhooks(Some(_))
                    )
                    | (Route::Repository(_), Shape::Repository(_))
                    | (Route::File(..), Shape::File(..))
                    | (Route::Proposals(_), Shape::Proposals(_, None))
                    | (
                        Route::Proposal(..) | Route::ProposalSignatures(..),
                        Shape::Proposals(_, Some(_))
                    )
            );
            assert!(same_kind, "{path}: {shaped:?}");
            assert_eq!(
                shaped.addresses_key(),
                matches!(route, Route::File(_, FileRef::Key(_)))
            );
        }
    }

    #[test]
    fn delegated_roles_travel_percent_encoded() {
        let file = FileRef::Version("targets/releases".into(), 2);
        assert_eq!(file.file_name(), "2.targets%2Freleases.json");
        assert_eq!(file.role(), "targets/releases");
        assert_eq!(
            Route::File(g("org/app"), file).url("http://127.0.0.1:4443/"),
            "http://127.0.0.1:4443/v2/org/app/_trust/tuf/2.targets%2Freleases.json"
        );
        assert_eq!(
            Route::Changefeed(Some(g("org/app"))).url("http://h"),
            "http://h/v2/org/app/_trust/changefeed"
        );
        assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(percent_decode("a%20b%2F%C3%A9").unwrap(), "a b/é");
    }
}
