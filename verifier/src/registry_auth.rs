//! The registry token flow, as Notary v1 servers (Docker Hub's, Harbor's) and OCI
//! registries use it: a request answered `401` with `WWW-Authenticate: Bearer
//! realm=…,service=…,scope=…`, then a token for the scope from the realm, asked anonymously
//! or with basic credentials, then the request again with `Authorization: Bearer <token>`.
//!
//! One home for its users: the registry client [`crate::registry`] (used by `vouch
//! sign`/`vouch verify`, `vouch verify --notary` and `vouch import notary`) and the
//! admission webhook's Notary rule. Where credentials come from stays with each of them (a
//! [`crate::registry::Login`] for the client, the policy for the webhook); they pass
//! [`Credentials`] in.
//!
//! Sans-IO, with unit tests beside them:
//! - [`parse_challenge`]: the first challenge of a `WWW-Authenticate` value.
//! - [`token_request`]: the token URL a `Bearer` challenge leads to, refused when the realm
//!   could hand credentials to someone else: a realm that is not HTTPS, unless the caller
//!   allows that host in clear or it is on loopback **and so is the server that named it**
//!   (a server elsewhere naming this machine's loopback would hand the credentials to
//!   whatever listens on that port), or a realm URL carrying credentials of its own.
//! - [`credentials_may_go_to`]: no credentials through a server reached over plain HTTP
//!   off loopback (anyone on the path can answer for it and name a realm of theirs).
//! - [`url_carries_credentials`]: a server URL with `USER:PASSWORD@` is refused by both
//!   callers (every message naming the URL would print the password).
//! - [`is_registrys_notary`]: whether a registry's login may go to a notary server (only to
//!   one on the registry's own host, or `notary.` and its host).
//! - [`parse_token_answer`]: the token in a token server's JSON answer.
//! - [`describe_error_body`]: the message of a server's error body (Distribution API
//!   errors, or text), for error messages.
//!
//! The thin IO layer, over the verifier's HTTP clients: [`ping`] (`GET /v2/`, the
//! challenge if it answers `401`), [`fetch_token`] (one token request, its answer capped at
//! [`MAX_TOKEN_BODY`] and read by a deadline), and [`notary_token`], the whole flow for one
//! Notary collection, used by the webhook.
//!
//! What it is not: a credential store. Credentials are held zeroized, never logged, their
//! `Debug` redacted, and no error of this module carries them.

use std::collections::HashMap;
use std::io::Read as _;
use std::time::Instant;

use base64ct::{Base64, Encoding};
use reqwest::blocking::{Client, Response};
use reqwest::header::{self, HeaderValue};
use reqwest::{StatusCode, Url};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::transport::{is_loopback_url, read_capped_by, HttpOptions, TransportError};

/// Largest token-server answer read.
pub const MAX_TOKEN_BODY: u64 = 256 * 1024;
/// Largest error body read (for the server's message).
pub const MAX_ERROR_BODY: u64 = 16 * 1024;

/// A user name and password (or token) for a registry or a Notary server's token service.
/// Its `Debug` shows the user name only.
#[derive(Clone)]
pub struct Credentials {
    username: String,
    password: Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Credentials from their parts.
    ///
    /// ```
    /// use vouch_verifier::registry_auth::Credentials;
    /// let c = Credentials::new("alice".into(), "pw".to_owned().into());
    /// assert_eq!(c.username(), "alice");
    /// assert!(!format!("{c:?}").contains("pw"));
    /// ```
    pub fn new(username: String, password: Zeroizing<String>) -> Self {
        Credentials { username, password }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password (or token).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `Basic <base64 of user:password>`, the `Authorization` value they make.
    pub fn basic_header(&self) -> Zeroizing<String> {
        let raw = Zeroizing::new(format!("{}:{}", self.username, self.password.as_str()));
        Zeroizing::new(format!("Basic {}", Base64::encode_string(raw.as_bytes())))
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lower-cased (`bearer`, `basic`).
    pub scheme: String,
    /// The parameters, names lower-cased.
    pub params: HashMap<String, String>,
}

/// Parses the first challenge of a `WWW-Authenticate` value: `Scheme k=v, k="quoted, v"`.
///
/// ```
/// let c = vouch_verifier::registry_auth::parse_challenge(
///     r#"Bearer realm="https://auth.example.com/token",service="notary""#,
/// ).unwrap();
/// assert_eq!((c.scheme.as_str(), c.params["service"].as_str()), ("bearer", "notary"));
/// ```
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, mut rest) = match header.find(char::is_whitespace) {
        Some(i) => (&header[..i], header[i..].trim_start()),
        None => (header, ""),
    };
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return None;
    }
    let mut params = HashMap::new();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let name = rest[..eq].trim().to_ascii_lowercase();
        if name.is_empty() || name.contains([' ', ',', '"']) {
            return None;
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.push(chars.next()?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &quoted[end?..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        params.insert(name, value);
        rest = rest.trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => {}
            // A second challenge (`…, Basic realm=…` without a comma) or junk: stop here.
            None => break,
        }
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// True for `localhost` and loopback IP addresses, with or without a port.
pub fn is_loopback_host(host_port: &str) -> bool {
    is_loopback_url(&format!("http://{host_port}"))
}

/// `host` of `host[:port]` (brackets of an IPv6 literal removed).
pub fn host_only(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host_port.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_port,
    }
}

/// `host[:port]` of `url` (the port only when the URL names one).
pub fn host_port(url: &Url) -> Option<String> {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => Some(format!("{h}:{p}")),
        (Some(h), None) => Some(h.to_owned()),
        (None, _) => None,
    }
}

/// True when the notary server at `notary` (`host[:port]`) is the registry `registry`'s own
/// (its host, on any port, or `notary.` and its host, as `notary.docker.io` is Docker
/// Hub's), so that the registry's login may be sent to it, as `docker trust` does. The
/// login for a registry is never sent to a notary server on another host: that server's
/// token realm would receive it.
pub fn is_registrys_notary(notary: &str, registry: &str) -> bool {
    let notary = host_only(notary).to_ascii_lowercase();
    let registry = host_only(registry).to_ascii_lowercase();
    notary == registry || notary.strip_prefix("notary.") == Some(registry.as_str())
}

/// False for a server reached over plain HTTP off loopback: whoever is on that network can
/// answer for it and name a token realm of theirs, so no credentials go through it (tokens
/// are asked anonymously).
pub fn credentials_may_go_to(server_url: &str) -> bool {
    !server_url.starts_with("http://") || is_loopback_url(server_url)
}

/// True when `url` carries credentials (`USER:PASSWORD@` or `USER@`).
pub fn url_carries_credentials(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// Why a challenge cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChallengeError {
    /// No `WWW-Authenticate` header, or one that does not parse.
    #[error("no usable WWW-Authenticate header")]
    Unusable,
    /// A `Bearer` challenge without a realm.
    #[error("the Bearer challenge names no realm")]
    NoRealm,
    /// The realm is not a URL.
    #[error("the realm is not a URL")]
    RealmNotUrl,
    /// The realm names no host.
    #[error("the realm names no host")]
    RealmNoHost,
    /// The realm carries credentials of its own.
    #[error("the realm URL carries credentials")]
    RealmWithCredentials,
    /// The realm is plain HTTP (or another scheme) where that is not allowed.
    #[error("the token realm is not HTTPS")]
    RealmNotHttps,
}

/// Where to ask for a token: the realm with `service` and `scope` in its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The realm as the challenge named it (for messages).
    pub realm: String,
    /// The URL to `GET`.
    pub url: Url,
}

/// The token request a `Bearer` `challenge` from the server at `server` (`host[:port]`)
/// leads to, for `scope`. A plain-HTTP realm is followed only when `plain_http_allowed`
/// says so for its `host[:port]` (a host the user named as insecure), or when it is on
/// loopback and so is `server`.
pub fn token_request(
    challenge: &Challenge,
    server: &str,
    scope: &str,
    plain_http_allowed: impl Fn(&str) -> bool,
) -> Result<TokenRequest, ChallengeError> {
    let realm = challenge
        .params
        .get("realm")
        .ok_or(ChallengeError::NoRealm)?;
    let mut url = Url::parse(realm).map_err(|_| ChallengeError::RealmNotUrl)?;
    let realm_host = host_port(&url).ok_or(ChallengeError::RealmNoHost)?;
    if url_carries_credentials(&url) {
        return Err(ChallengeError::RealmWithCredentials);
    }
    let plain_ok = plain_http_allowed(&realm_host)
        || (is_loopback_host(&realm_host) && is_loopback_host(server));
    match url.scheme() {
        "https" => {}
        "http" if plain_ok => {}
        _ => return Err(ChallengeError::RealmNotHttps),
    }
    {
        let mut q = url.query_pairs_mut();
        if let Some(service) = challenge.params.get("service") {
            q.append_pair("service", service);
        }
        q.append_pair("scope", scope);
    }
    Ok(TokenRequest {
        realm: realm.clone(),
        url,
    })
}

/// Why no token came from a token server. No variant carries credentials.
#[derive(Debug, Error)]
pub enum TokenError {
    /// No connection, or the request failed.
    #[error("the token server {realm} cannot be reached ({message})")]
    Unreachable {
        /// The realm.
        realm: String,
        /// The cause.
        message: String,
    },
    /// No answer (or not all of it) by the deadline.
    #[error("the token server {realm} did not answer in time")]
    TimedOut {
        /// The realm.
        realm: String,
    },
    /// 401 or 403: the credentials (or their absence) were refused.
    #[error("the token server {realm} said {status}{detail}")]
    Refused {
        /// The realm.
        realm: String,
        /// The status.
        status: StatusCode,
        /// The server's message, if any, led by `: `.
        detail: String,
    },
    /// Another status that is not a success.
    #[error("the token server {realm} answered {status}{detail}")]
    Failed {
        /// The realm.
        realm: String,
        /// The status.
        status: StatusCode,
        /// The server's message, if any, led by `: `.
        detail: String,
    },
    /// An answer over [`MAX_TOKEN_BODY`].
    #[error("the token server {realm} sent more than {limit} bytes")]
    TooLarge {
        /// The realm.
        realm: String,
        /// The cap.
        limit: u64,
    },
    /// The answer could not be read.
    #[error("reading the answer of the token server {realm} failed: {message}")]
    Read {
        /// The realm.
        realm: String,
        /// The cause.
        message: String,
    },
    /// The answer is not JSON, or has no token.
    #[error("the token server {realm} gave no token ({reason})")]
    NoToken {
        /// The realm.
        realm: String,
        /// `the answer is not JSON` or `the answer has no token`.
        reason: &'static str,
    },
    /// The credentials (or the token) cannot travel in an HTTP header.
    #[error("the credentials or token contain characters an HTTP header cannot carry")]
    InvalidCredentials,
}

/// The token in a token server's answer (`token`, else `access_token`), or why there is
/// none (`the answer is not JSON`, `the answer has no token`).
pub fn parse_token_answer(body: &[u8]) -> Result<Zeroizing<String>, &'static str> {
    #[derive(serde::Deserialize)]
    struct Answer {
        token: Option<String>,
        access_token: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|_| "the answer is not JSON")?;
    let (token, access) = (
        Zeroizing::new(answer.token),
        Zeroizing::new(answer.access_token),
    );
    let found = [token.as_deref(), access.as_deref()]
        .into_iter()
        .flatten()
        .find(|t| !t.is_empty())
        .map(|t| Zeroizing::new(t.to_owned()));
    found.ok_or("the answer has no token")
}

/// A header value marked sensitive (kept out of logs and debug output).
pub fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// An error and its causes on one line.
pub fn chain(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !msg.contains(&s_text) {
            msg.push_str(": ");
            msg.push_str(&s_text);
        }
        source = s.source();
    }
    msg
}

/// The server's error message (`{"errors":[{"code","message"}]}`, or the text), led by
/// `: `, or "" (at most [`MAX_ERROR_BODY`] read, by `deadline`, 300 characters kept).
pub fn error_detail(resp: Response, deadline: Instant) -> String {
    let body = read_capped_by(
        "error",
        resp.take(MAX_ERROR_BODY),
        MAX_ERROR_BODY,
        None,
        Some(deadline),
    )
    .unwrap_or_default();
    describe_error_body(&body)
}

/// What [`error_detail`] makes of an error body a server sent: the first error's `code` and
/// `message` of a Distribution API error document (`{"errors":[{"code","message"}]}`), else
/// the text, its whitespace collapsed to single spaces and cut to 300 characters, led by
/// `: `; or "" when nothing is left.
///
/// ```
/// use vouch_verifier::registry_auth::describe_error_body;
/// let body = br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;
/// assert_eq!(describe_error_body(body), ": DENIED requested access to the resource is denied");
/// assert_eq!(describe_error_body(b"  \n"), "");
/// ```
pub fn describe_error_body(body: &[u8]) -> String {
    let parsed = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?;
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
            Some(format!("{code} {msg}").trim().to_owned())
        });
    let text = parsed.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text: String = text.chars().take(300).collect();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// Asks `request`'s realm for a token with `client`, sending `credentials` when given; the
/// whole exchange, body included, over by `deadline`.
pub fn fetch_token(
    client: &Client,
    request: &TokenRequest,
    credentials: Option<&Credentials>,
    deadline: Instant,
) -> Result<Zeroizing<String>, TokenError> {
    let realm = || request.realm.clone();
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(TokenError::TimedOut { realm: realm() });
    }
    let mut req = client.get(request.url.clone()).timeout(remaining);
    if let Some(c) = credentials {
        let value = sensitive(&c.basic_header()).ok_or(TokenError::InvalidCredentials)?;
        req = req.header(header::AUTHORIZATION, value);
    }
    let resp = req.send().map_err(|e| {
        if e.is_timeout() {
            TokenError::TimedOut { realm: realm() }
        } else {
            TokenError::Unreachable {
                realm: realm(),
                message: chain(&e),
            }
        }
    })?;
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(TokenError::Refused {
            realm: realm(),
            status,
            detail: error_detail(resp, deadline),
        });
    }
    if !status.is_success() {
        return Err(TokenError::Failed {
            realm: realm(),
            status,
            detail: error_detail(resp, deadline),
        });
    }
    let announced = resp.content_length();
    let body = Zeroizing::new(
        read_capped_by("a token", resp, MAX_TOKEN_BODY, announced, Some(deadline)).map_err(
            |e| match e {
                TransportError::TooLarge { .. } => TokenError::TooLarge {
                    realm: realm(),
                    limit: MAX_TOKEN_BODY,
                },
                TransportError::TimedOut { .. } => TokenError::TimedOut { realm: realm() },
                e => TokenError::Read {
                    realm: realm(),
                    message: e.to_string(),
                },
            },
        )?,
    );
    parse_token_answer(&body).map_err(|reason| TokenError::NoToken {
        realm: realm(),
        reason,
    })
}

/// What a server's `/v2/` answered: nothing to do, or a `401` with this challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ping {
    /// Not `401`: no token is needed (or the server does not use the token flow).
    Open,
    /// `401`, with its `WWW-Authenticate` value (empty when there was none).
    Challenged(String),
}

/// `GET <server_url>/v2/` with `client`, as the notary client does first, by `deadline`.
pub fn ping(client: &Client, server_url: &str, deadline: Instant) -> Result<Ping, reqwest::Error> {
    let url = format!("{}/v2/", server_url.trim_end_matches('/'));
    let remaining = deadline.saturating_duration_since(Instant::now());
    let resp = client.get(&url).timeout(remaining).send()?;
    if resp.status() != StatusCode::UNAUTHORIZED {
        return Ok(Ping::Open);
    }
    Ok(Ping::Challenged(
        resp.headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    ))
}

/// Why [`notary_token`] got no token.
#[derive(Debug, Error)]
pub enum NotaryAuthError {
    /// The server URL is not `http(s)://HOST[:PORT]`, or carries credentials.
    #[error("the notary server URL {0}")]
    BadUrl(&'static str),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// `/v2/` could not be asked.
    #[error("cannot reach the notary server ({0})")]
    Unreachable(String),
    /// The server asks for authentication the flow cannot give.
    #[error(
        "the notary server asks for authentication that cannot be given ({challenge:?}): {reason}"
    )]
    Challenge {
        /// The `WWW-Authenticate` value.
        challenge: String,
        /// Why.
        reason: String,
    },
    /// The token server gave none.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// What [`notary_token`] got.
#[derive(Debug)]
pub enum NotaryToken {
    /// The server asks for no token.
    NotNeeded,
    /// A token for `repository:<gun>:pull`; `with_credentials` says whether credentials
    /// were sent for it (false when none were given, or the server is reached over plain
    /// HTTP off loopback, see [`credentials_may_go_to`]).
    Granted {
        /// The token (`Debug` shows it as `Zeroizing(..)` of a string: do not log this).
        token: Zeroizing<String>,
        /// Whether credentials were sent for it.
        with_credentials: bool,
    },
}

/// The bearer token to read `gun` from the Notary server at `server_url`, the way the
/// notary client gets one: `GET /v2/`, and when that answers `401` with a `Bearer`
/// challenge, a token for `repository:<gun>:pull` from its realm, with `credentials` when
/// given and [`credentials_may_go_to`] the server. Every request uses `options` (timeouts,
/// no redirect to another host) and is over by `deadline`.
pub fn notary_token(
    server_url: &str,
    gun: &str,
    credentials: Option<&Credentials>,
    options: &HttpOptions,
    deadline: Instant,
) -> Result<NotaryToken, NotaryAuthError> {
    let server_url = server_url.trim_end_matches('/');
    let parsed = Url::parse(server_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http"))
        .ok_or(NotaryAuthError::BadUrl("is not http(s)://HOST[:PORT]"))?;
    if url_carries_credentials(&parsed) {
        return Err(NotaryAuthError::BadUrl(
            "carries credentials (USER:PASSWORD@)",
        ));
    }
    let host = host_port(&parsed).ok_or(NotaryAuthError::BadUrl("names no host"))?;
    let client = crate::transport::shared_client(server_url, options)
        .map_err(|e| NotaryAuthError::Client(e.to_string()))?;
    let challenge = match ping(&client, server_url, deadline) {
        Ok(Ping::Open) => return Ok(NotaryToken::NotNeeded),
        Ok(Ping::Challenged(c)) => c,
        Err(e) => return Err(NotaryAuthError::Unreachable(chain(&e))),
    };
    let refuse = |reason: String| NotaryAuthError::Challenge {
        challenge: challenge.clone(),
        reason,
    };
    let parsed_challenge =
        parse_challenge(&challenge).ok_or_else(|| refuse(ChallengeError::Unusable.to_string()))?;
    if parsed_challenge.scheme != "bearer" {
        return Err(refuse(
            "a notary server is read with a Bearer token (the registry token flow)".to_owned(),
        ));
    }
    let request = token_request(
        &parsed_challenge,
        &host,
        &format!("repository:{gun}:pull"),
        |_| false,
    )
    .map_err(|e| refuse(e.to_string()))?;
    let credentials = credentials.filter(|_| credentials_may_go_to(server_url));
    let token_client = crate::transport::shared_client(request.url.as_str(), options)
        .map_err(|e| NotaryAuthError::Client(e.to_string()))?;
    let token = fetch_token(&token_client, &request, credentials, deadline)?;
    Ok(NotaryToken::Granted {
        token,
        with_credentials: credentials.is_some(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    #[test]
    fn bearer_challenges_keep_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:org/app:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example.com/token");
        assert_eq!(c.params["service"], "registry.example.com");
        assert_eq!(c.params["scope"], "repository:org/app:pull,push");

        let c = parse_challenge(r#"Basic realm="Registry \"x\"", charset=UTF-8"#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], r#"Registry "x""#);
        assert_eq!(c.params["charset"], "UTF-8");

        assert!(parse_challenge("").is_none());
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
        assert_eq!(parse_challenge("Basic").unwrap().params.len(), 0);
    }

    fn bearer(realm: &str) -> Challenge {
        parse_challenge(&format!(r#"Bearer realm="{realm}",service="svc""#)).unwrap()
    }

    #[test]
    fn token_requests_carry_service_and_scope() {
        let r = token_request(
            &bearer("https://auth.example.com/token?x=1"),
            "notary.example.com",
            "repository:example.com/org/app:pull",
            |_| false,
        )
        .unwrap();
        assert_eq!(
            r.url.as_str(),
            "https://auth.example.com/token?x=1&service=svc&scope=repository%3Aexample.com%2Forg%2Fapp%3Apull"
        );
        assert_eq!(r.realm, "https://auth.example.com/token?x=1");
        let no_realm = parse_challenge(r#"Bearer service="svc""#).unwrap();
        assert_eq!(
            token_request(&no_realm, "n", "s", |_| false),
            Err(ChallengeError::NoRealm)
        );
        assert_eq!(
            token_request(&bearer("not a url"), "n", "s", |_| false),
            Err(ChallengeError::RealmNotUrl)
        );
    }

    /// A registry or notary server on another machine names a plain-HTTP token realm on
    /// this machine's loopback: whatever listens on that port (any local user's process)
    /// would read the credentials in clear. Refused; a loopback server may name one.
    #[test]
    fn a_remote_server_cannot_send_credentials_to_a_plain_http_loopback_realm() {
        for realm in ["http://127.0.0.1:5001/token", "http://localhost/token"] {
            for remote in [
                "notary.example.com",
                "registry.example.com:5000",
                "10.0.0.7",
            ] {
                assert_eq!(
                    token_request(&bearer(realm), remote, "s", |_| false),
                    Err(ChallengeError::RealmNotHttps),
                    "{remote} naming {realm}"
                );
            }
            assert!(token_request(&bearer(realm), "127.0.0.1:4443", "s", |_| false).is_ok());
            assert!(token_request(&bearer(realm), "[::1]:4443", "s", |_| false).is_ok());
        }
        // Plain HTTP elsewhere only when the caller allows that host.
        let realm = "http://auth.internal:8080/token";
        assert_eq!(
            token_request(&bearer(realm), "127.0.0.1:4443", "s", |_| false),
            Err(ChallengeError::RealmNotHttps)
        );
        assert!(token_request(&bearer(realm), "n", "s", |h| h == "auth.internal:8080").is_ok());
        assert_eq!(
            token_request(&bearer("ftp://auth.example.com/t"), "n", "s", |_| true),
            Err(ChallengeError::RealmNotHttps)
        );
    }

    /// A realm URL with `USER:PASSWORD@` would send credentials the server chose.
    #[test]
    fn a_realm_carrying_credentials_is_refused() {
        assert_eq!(
            token_request(
                &bearer("https://mallory:x@auth.example.com/token"),
                "n",
                "s",
                |_| false
            ),
            Err(ChallengeError::RealmWithCredentials)
        );
    }

    /// Over plain HTTP across a network, anyone on the path answers for the notary server
    /// and names a token realm of theirs: no credentials go through it.
    #[test]
    fn no_credentials_go_through_a_server_reached_over_plain_http() {
        for (url, sent) in [
            ("http://notary.example.com", false),
            ("http://10.0.0.7:4443", false),
            ("https://notary.example.com", true),
            ("http://127.0.0.1:4443", true),
            ("http://localhost:4443", true),
        ] {
            assert_eq!(credentials_may_go_to(url), sent, "{url}");
        }
    }

    #[test]
    fn urls_with_credentials_are_recognised() {
        for (url, carries) in [
            ("https://alice:pw@notary.example.com", true),
            ("https://alice@notary.example.com", true),
            ("https://notary.example.com", false),
        ] {
            assert_eq!(
                url_carries_credentials(&Url::parse(url).unwrap()),
                carries,
                "{url}"
            );
        }
    }

    #[test]
    fn a_registrys_login_goes_only_to_its_own_notary_server() {
        assert!(is_registrys_notary("notary.docker.io", "docker.io"));
        assert!(is_registrys_notary(
            "reg.example.com:4443",
            "reg.example.com:5000"
        ));
        assert!(is_registrys_notary(
            "NOTARY.reg.example.com",
            "reg.example.com:5000"
        ));
        for elsewhere in [
            "notary.example.net",
            "127.0.0.1:4443",
            "docker.io.example.net",
            "notary.docker.io.example.net",
            "evilreg.example.com:5000",
        ] {
            assert!(!is_registrys_notary(elsewhere, "docker.io"), "{elsewhere}");
            assert!(
                !is_registrys_notary(elsewhere, "reg.example.com:5000"),
                "{elsewhere}"
            );
        }
    }

    #[test]
    fn token_answers_name_the_token_or_say_why_not() {
        assert_eq!(
            parse_token_answer(br#"{"token":"t1","access_token":"t2"}"#)
                .unwrap()
                .as_str(),
            "t1"
        );
        assert_eq!(
            parse_token_answer(br#"{"token":"","access_token":"t2"}"#)
                .unwrap()
                .as_str(),
            "t2"
        );
        assert_eq!(
            parse_token_answer(br#"{"expires_in":3}"#).unwrap_err(),
            "the answer has no token"
        );
        assert_eq!(
            parse_token_answer(b"<html>").unwrap_err(),
            "the answer is not JSON"
        );
    }

    #[test]
    fn credentials_are_redacted() {
        let c = Credentials::new("alice".into(), Zeroizing::new("s3cret".into()));
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(c.basic_header().as_str(), "Basic YWxpY2U6czNjcmV0");
    }

    /// A token server that sends an endless answer is cut off at the cap; one that never
    /// answers, at the deadline (the deadline here has passed before the request).
    #[test]
    fn token_answers_are_capped_and_bounded_in_time() {
        use std::io::{BufRead as _, BufReader, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let _ =
                    conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"token\":\"");
                let chunk = vec![b'a'; 64 * 1024];
                while conn.write_all(&chunk).is_ok() {}
            }
        });
        let request = token_request(
            &bearer(&format!("http://{addr}/token")),
            "127.0.0.1",
            "s",
            |_| false,
        )
        .unwrap();
        let client =
            crate::transport::shared_client(request.url.as_str(), &HttpOptions::default()).unwrap();
        let later = Instant::now() + Duration::from_secs(3600);
        let e = fetch_token(&client, &request, None, later).unwrap_err();
        assert!(
            matches!(
                e,
                TokenError::TooLarge {
                    limit: MAX_TOKEN_BODY,
                    ..
                }
            ),
            "{e}"
        );
        let past = Instant::now();
        let e = fetch_token(&client, &request, None, past).unwrap_err();
        assert!(matches!(e, TokenError::TimedOut { .. }), "{e}");
    }
}
