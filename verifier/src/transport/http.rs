//! HTTP(S) transport: reqwest's blocking client over rustls.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::redirect::Policy;
use reqwest::StatusCode;

use super::{check_path, read_capped_sized, Transport, TransportError};

/// Settings of an [`HttpTransport`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpOptions {
    /// Longest time to establish a connection.
    pub connect_timeout: Duration,
    /// Longest time for a whole request, body included (against slow-retrieval attacks: a
    /// server that trickles bytes cannot hold the client past this).
    pub timeout: Duration,
    /// Whether a redirect may lead to another host (off by default).
    pub cross_host_redirects: CrossHostRedirects,
    /// Most redirects followed.
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

/// Fetches files below a base URL, e.g. `https://vouch.example.com/v2/org/app/_trust/tuf/`.
#[derive(Clone, Debug)]
pub struct HttpTransport {
    base: String,
    client: Client,
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
    let policy = Policy::custom(move |attempt| {
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
    });
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
        let scheme = if base.starts_with("http://") {
            Scheme::Http
        } else {
            Scheme::Https
        };
        let client = client_for(options, scheme).map_err(|e| TransportError::Network {
            path: base.clone(),
            message: format!("cannot build HTTP client: {e}"),
        })?;
        Ok(HttpTransport { base, client })
    }

    /// The base URL, ending in `/`.
    pub fn base(&self) -> &str {
        &self.base
    }
}

fn network(path: &str, e: &reqwest::Error) -> TransportError {
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

impl Transport for HttpTransport {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        check_path(path)?;
        let url = format!("{}{}", self.base, path);
        let resp = self
            .client
            .get(&url)
            .send()
            .map_err(|e| network(path, &e))?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN {
            return Err(TransportError::NotFound {
                path: path.to_owned(),
            });
        }
        if !status.is_success() {
            return Err(TransportError::Status {
                path: path.to_owned(),
                status: status.as_u16(),
            });
        }
        let announced = resp.content_length();
        if announced.is_some_and(|l| l > max_len) {
            return Err(TransportError::TooLarge {
                path: path.to_owned(),
                limit: max_len,
            });
        }
        read_capped_sized(path, resp, max_len, announced)
    }
}
