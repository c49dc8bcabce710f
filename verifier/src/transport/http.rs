//! HTTP(S) transport: reqwest's blocking client over rustls.
//!
//! Each fetch has a whole-request deadline (connect, headers and body): reqwest's client-wide
//! timeout of its blocking API only bounds each wait for the next bytes, so a server sending
//! one byte every few seconds would never trip it. [`HttpTransport::fetch_by`] gives every
//! request its remaining time as a total timeout, and checks the deadline again after each
//! read of the streamed body. [`fetch_capped`] is that fetch for other HTTP clients (the CLI
//! sends a token).
//!
//! A transport may send a bearer token with every request
//! ([`HttpTransport::with_bearer_token`]): a [`BearerToken`] is asked for it on each request,
//! so a token that is rotated on disk is picked up without building a new transport. A 401,
//! and a 403 to a request that carried a token, is [`TransportError::Unauthorized`], with
//! the [`AuthRefusal`] that [`vouch_tuf::api::auth`] reads from the status and challenge.
//!
//! The vouch server's own client, [`crate::server`], shares these HTTP clients and
//! [`fetch_capped`].

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::redirect::Policy;
use reqwest::StatusCode;

use vouch_tuf::api::AuthRefusal;

use super::{check_deadline, check_path, read_capped_by, Transport, TransportError};

/// Settings of an [`HttpTransport`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpOptions {
    /// Longest time to establish a connection.
    pub connect_timeout: Duration,
    /// Longest time for a whole request, body included (against slow-retrieval attacks: a
    /// server that trickles bytes cannot hold the client past this). A deadline given to
    /// [`Transport::fetch_by`] shortens it, never lengthens it.
    pub timeout: Duration,
    /// Whether a redirect may lead to another host (off by default).
    pub cross_host_redirects: CrossHostRedirects,
    /// Most redirects followed; 0 follows none (a redirect is then answered as its own
    /// status).
    pub max_redirects: usize,
    /// `User-Agent` sent.
    pub user_agent: String,
}

/// Whether redirects may leave the host the base URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrossHostRedirects {
    /// Only redirects to the same scheme, host and port are followed.
    Refuse,
    /// Redirects to any host are followed.
    Allow,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            cross_host_redirects: CrossHostRedirects::Refuse,
            max_redirects: 5,
            user_agent: concat!("vouch-verifier/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Supplies the bearer token an [`HttpTransport`] sends (`Authorization: Bearer …`).
///
/// Asked once per request, so an implementation that re-reads a rotated token is used as
/// is; it should be cheap (cache what it reads). `None` sends no `Authorization` header.
/// Implementations must not log the token, and their `Debug` should not show it.
pub trait BearerToken: Send + Sync + std::fmt::Debug {
    /// The token to send now, if any.
    fn bearer_token(&self) -> Option<String>;
}

/// Fetches files below a base URL, e.g. `https://vouch.example.com/v2/org/app/_trust/tuf/`.
#[derive(Clone, Debug)]
pub struct HttpTransport {
    base: String,
    client: Client,
    timeout: Duration,
    token: Option<std::sync::Arc<dyn BearerToken>>,
}

/// HTTP clients shared by every transport with the same options and scheme: building one
/// for HTTPS loads the platform's certificate store, which costs far more than a whole
/// metadata update.
static CLIENTS: OnceLock<Mutex<HashMap<(HttpOptions, Scheme), Client>>> = OnceLock::new();

/// `builder` with no trusted roots instead of the platform's certificate store, for a client
/// that only talks plain `http://` (it can then make no HTTPS request, a redirect to `https://`
/// included): loading the store costs more than a whole metadata update.
pub fn without_certificate_store(
    builder: reqwest::blocking::ClientBuilder,
) -> reqwest::blocking::ClientBuilder {
    builder.tls_certs_only(std::iter::empty::<reqwest::Certificate>())
}

/// The scheme of a transport's base URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Scheme {
    /// `https://`: TLS with the platform's certificate verifier.
    Https,
    /// `http://`: no certificate store is loaded, so a redirect to `https://` fails.
    Http,
}

fn client_for(options: &HttpOptions, scheme: Scheme) -> Result<Client, reqwest::Error> {
    let clients = CLIENTS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut clients = clients.lock().unwrap_or_else(|p| p.into_inner());
    let key = (options.clone(), scheme);
    if let Some(c) = clients.get(&key) {
        return Ok(c.clone());
    }
    // Another library may have installed a provider already; either way one is set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let max = options.max_redirects;
    let cross = options.cross_host_redirects;
    let policy = if max == 0 {
        Policy::none()
    } else {
        redirect_policy(max, cross)
    };
    let mut builder = Client::builder()
        .connect_timeout(options.connect_timeout)
        .timeout(options.timeout)
        .redirect(policy)
        .user_agent(options.user_agent.clone());
    if scheme == Scheme::Http {
        builder = without_certificate_store(builder);
    }
    let client = builder.build()?;
    clients.insert(key, client.clone());
    Ok(client)
}

/// The shared client (see [`client_for`]) for requests below `base_url`.
pub(crate) fn shared_client(
    base_url: &str,
    options: &HttpOptions,
) -> Result<Client, reqwest::Error> {
    client_for(options, Scheme::of(base_url))
}

impl Scheme {
    /// The scheme of `url`: [`Scheme::Http`] for `http://`, else [`Scheme::Https`].
    fn of(url: &str) -> Self {
        if url.starts_with("http://") {
            Scheme::Http
        } else {
            Scheme::Https
        }
    }
}

/// Follows at most `max` redirects, to another host only when `cross` allows it.
fn redirect_policy(max: usize, cross: CrossHostRedirects) -> Policy {
    Policy::custom(move |attempt| {
        if attempt.previous().len() > max {
            return attempt.error("too many redirects");
        }
        let Some(origin) = attempt.previous().first() else {
            return attempt.follow();
        };
        let url = attempt.url();
        let same = url.scheme() == origin.scheme()
            && url.host_str() == origin.host_str()
            && url.port_or_known_default() == origin.port_or_known_default();
        if !same && cross == CrossHostRedirects::Refuse {
            return attempt.error("redirect to another host refused");
        }
        attempt.follow()
    })
}

impl HttpTransport {
    /// A transport for files below `base_url` (a trailing `/` is added if missing).
    ///
    /// Uses the ring crypto provider for rustls (installed as the process default when none
    /// is) and the platform's certificate verifier. For an `http://` base URL no certificate
    /// store is loaded, so a redirect from it to `https://` fails. Transports with equal options share one
    /// HTTP client (its connection pool and TLS configuration) within the process.
    pub fn new(base_url: &str, options: &HttpOptions) -> Result<Self, TransportError> {
        let mut base = base_url.to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        reqwest::Url::parse(&base).map_err(|e| TransportError::Network {
            path: base.clone(),
            message: format!("invalid base URL: {e}"),
        })?;
        let client = shared_client(&base, options).map_err(|e| TransportError::Network {
            path: base.clone(),
            message: format!("cannot build HTTP client: {e}"),
        })?;
        Ok(HttpTransport {
            base,
            client,
            timeout: options.timeout,
            token: None,
        })
    }

    /// This transport, sending the token `token` gives with every request (see
    /// [`BearerToken`]). The token is not part of the shared HTTP client: transports with
    /// different tokens still share one connection pool.
    #[must_use]
    pub fn with_bearer_token(mut self, token: std::sync::Arc<dyn BearerToken>) -> Self {
        self.token = Some(token);
        self
    }

    /// The base URL, ending in `/`.
    pub fn base(&self) -> &str {
        &self.base
    }
}

pub(crate) fn network(path: &str, e: &reqwest::Error) -> TransportError {
    if e.is_timeout() {
        return TransportError::TimedOut {
            path: path.to_owned(),
        };
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    TransportError::Network {
        path: path.to_owned(),
        message,
    }
}

/// True when a body read failed because a timeout fired (reqwest reports its total timeout
/// as an error inside an [`std::io::Error`] of another kind).
pub(crate) fn timed_out(e: &std::io::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|s| s as _);
    while let Some(s) = source {
        if s.downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
        {
            return true;
        }
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// True when `url`'s host is `localhost` or a loopback address: the one place a secret
/// (a bearer token) may travel over plain `http://` without crossing a network.
///
/// ```
/// use vouch_verifier::transport::is_loopback_url;
/// assert!(is_loopback_url("http://127.0.0.1:4443"));
/// assert!(is_loopback_url("http://[::1]:4443/x"));
/// assert!(is_loopback_url("http://localhost"));
/// assert!(!is_loopback_url("http://vouch.example"));
/// assert!(!is_loopback_url("not a url"));
/// ```
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    match url.host_str() {
        Some(h) => {
            h.eq_ignore_ascii_case("localhost")
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

/// Sends `request` and, when it succeeds, reads its body: at most `max_len` bytes, all of it
/// by `deadline` (the request gets the time that remains as its total timeout, and the
/// deadline is checked after every read). 404 is [`TransportError::NotFound`]; `on_error`
/// turns any other status that is not a success into an error, given the response so that
/// it may read a bounded error body.
///
/// A `Content-Length` above `max_len` fails at once with [`TransportError::TooLarge`]; no
/// more than [`super::PREALLOCATE_MAX`] is reserved for any announced length.
pub fn fetch_capped(
    path: &str,
    request: RequestBuilder,
    max_len: u64,
    deadline: Instant,
    on_error: impl FnOnce(StatusCode, Response) -> TransportError,
) -> Result<Vec<u8>, TransportError> {
    check_deadline(path, deadline)?;
    let remaining = deadline.saturating_duration_since(Instant::now());
    let resp = request
        .timeout(remaining)
        .send()
        .map_err(|e| network(path, &e))?;
    let status = resp.status();
    if status == StatusCode::NOT_FOUND {
        return Err(TransportError::NotFound {
            path: path.to_owned(),
        });
    }
    if !status.is_success() {
        return Err(on_error(status, resp));
    }
    let announced = resp.content_length();
    if announced.is_some_and(|l| l > max_len) {
        return Err(TransportError::TooLarge {
            path: path.to_owned(),
            limit: max_len,
        });
    }
    match read_capped_by(path, resp, max_len, announced, Some(deadline)) {
        Err(TransportError::Io { source, .. }) if timed_out(&source) => {
            Err(TransportError::TimedOut {
                path: path.to_owned(),
            })
        }
        other => other,
    }
}

/// The error for a status that is neither a success nor 404. A 401 is
/// [`TransportError::Unauthorized`]; so is a 403 to a request that carried a token (the
/// token does not allow the read), while a 403 to an anonymous request is
/// [`TransportError::NotFound`], as static file hosts answer for files they do not have.
/// `challenge` is the `WWW-Authenticate` header; what the refusal means is
/// [`AuthRefusal::classify`]'s reading.
fn error_status(
    path: &str,
    status: StatusCode,
    challenge: Option<&str>,
    sent_token: bool,
) -> TransportError {
    if status == StatusCode::FORBIDDEN && !sent_token {
        return TransportError::NotFound {
            path: path.to_owned(),
        };
    }
    match AuthRefusal::classify(status.as_u16(), challenge, sent_token) {
        Some(refusal) => TransportError::Unauthorized {
            path: path.to_owned(),
            status: status.as_u16(),
            sent_token,
            refusal,
        },
        None => TransportError::Status {
            path: path.to_owned(),
            status: status.as_u16(),
        },
    }
}

/// `now + d`, or a day later when that overflows.
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}

impl Transport for HttpTransport {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        self.fetch_by(path, max_len, after(self.timeout))
    }

    fn fetch_by(
        &self,
        path: &str,
        max_len: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
        check_path(path)?;
        let deadline = deadline.min(after(self.timeout));
        let url = format!("{}{}", self.base, path);
        let mut request = self.client.get(&url);
        let token = self.token.as_ref().and_then(|t| t.bearer_token());
        let sent_token = token.is_some();
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        fetch_capped(path, request, max_len, deadline, |status, resp| {
            let challenge = resp
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok());
            error_status(path, status, challenge, sent_token)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn refusals_of_credentials_are_unauthorized_and_anonymous_403_is_not_found() {
        let e = |status: u16, sent: bool| {
            error_status("t.json", StatusCode::from_u16(status).unwrap(), None, sent)
        };
        assert!(matches!(
            e(401, false),
            TransportError::Unauthorized {
                status: 401,
                sent_token: false,
                ..
            }
        ));
        assert!(matches!(
            e(401, true),
            TransportError::Unauthorized {
                sent_token: true,
                ..
            }
        ));
        assert!(matches!(
            e(403, true),
            TransportError::Unauthorized {
                status: 403,
                refusal: AuthRefusal::LacksGrant,
                ..
            }
        ));
        assert!(matches!(
            e(401, false),
            TransportError::Unauthorized {
                refusal: AuthRefusal::NoToken,
                ..
            }
        ));
        assert!(matches!(
            e(401, true),
            TransportError::Unauthorized {
                refusal: AuthRefusal::TokenRefused,
                ..
            }
        ));
        let scope = r#"Bearer realm="a",error="insufficient_scope",scope="repository:x:pull""#;
        assert!(matches!(
            error_status("t.json", StatusCode::UNAUTHORIZED, Some(scope), true),
            TransportError::Unauthorized {
                refusal: AuthRefusal::LacksGrant,
                ..
            }
        ));
        assert!(e(403, false).is_not_found());
        assert!(matches!(
            e(500, true),
            TransportError::Status { status: 500, .. }
        ));
        assert_eq!(
            e(401, true).to_string(),
            "t.json: HTTP status 401 (the token sent was refused)"
        );
        assert_eq!(
            e(401, false).to_string(),
            "t.json: HTTP status 401 (no token was sent)"
        );
    }
}
