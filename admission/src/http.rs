//! The HTTP(S) layer: routes, TLS with certificate reload, and the accept loop.
//!
//! | route | does |
//! |---|---|
//! | `POST /validate` | validating webhook: allow or deny |
//! | `POST /mutate` | mutating webhook: allow or deny, and pin tags to signed digests |
//! | `GET /healthz` | the process is serving |
//! | `GET /readyz` | the policy is loaded and (with TLS) a certificate is loaded |
//! | `GET /metrics` | Prometheus metrics |

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::decide::{Endpoint, Webhook};

/// Largest AdmissionReview accepted (the API server's own request limit is 3 MiB).
const MAX_BODY: usize = 4 << 20;

/// The router (no socket: tests drive it with `tower::ServiceExt::oneshot`).
pub fn app(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .route("/metrics", get(metrics))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(webhook)
}

async fn validate(State(w): State<Arc<Webhook>>, body: Bytes) -> Response {
    handle(w, body, Endpoint::Validate).await
}

async fn mutate(State(w): State<Arc<Webhook>>, body: Bytes) -> Response {
    handle(w, body, Endpoint::Mutate).await
}

async fn handle(w: Arc<Webhook>, body: Bytes, endpoint: Endpoint) -> Response {
    let review = match crate::review::parse_review(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not an admission.k8s.io/v1 AdmissionReview: {e}\n"),
            )
                .into_response()
        }
    };
    let bytes = w.review_bytes(review, endpoint).await;
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

async fn metrics(State(w): State<Arc<Webhook>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        w.metrics().render(),
    )
        .into_response()
}

/// A certificate resolver that reloads the PEM certificate chain and key when either
/// file changes (checked by [`ReloadingCert::watch`]); a broken new pair is logged and
/// the previous one kept.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<(Arc<CertifiedKey>, Option<SystemTime>, Option<SystemTime>)>,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn load_pair(cert: &Path, key: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{}: no certificate", cert.display());
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

impl ReloadingCert {
    /// Loads the pair once (failing if it is unusable).
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<Self>> {
        let pair = load_pair(cert, key)?;
        Ok(Arc::new(ReloadingCert {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new((pair, mtime(cert), mtime(key))),
        }))
    }

    /// Reloads the pair if either file changed since the last load; returns whether it did.
    pub fn reload_if_changed(&self) -> bool {
        let (c, k) = (mtime(&self.cert), mtime(&self.key));
        {
            let cur = self.current.read().unwrap_or_else(|p| p.into_inner());
            if cur.1 == c && cur.2 == k {
                return false;
            }
        }
        match load_pair(&self.cert, &self.key) {
            Ok(pair) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = (pair, c, k);
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate changed but cannot be loaded; keeping the previous one");
                false
            }
        }
    }

    /// Checks the files every `every` until the process ends.
    pub fn watch(self: Arc<Self>, every: Duration) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                self.reload_if_changed();
            }
        });
    }

    /// A rustls server configuration using this resolver.
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .clone(),
        )
    }
}

/// Serves `app` on `listener` (HTTPS when `tls` is given) until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt as _;

    let app = app.map_request(|req: axum::http::Request<hyper::body::Incoming>| {
        req.map(axum::body::Body::new)
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .keep_alive(true);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let http = http.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let result = match acceptor {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            watcher
                                .watch(http.serve_connection(TokioIo::new(tls), service))
                                .await
                        }
                        _ => {
                            tracing::debug!(%peer, "TLS handshake failed or timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write_pair(dir: &Path) -> Vec<u8> {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.join("key.pem"), c.signing_key.serialize_pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), c.cert.pem()).unwrap();
        c.cert.der().to_vec()
    }

    fn served_cert(r: &ReloadingCert) -> Vec<u8> {
        r.current.read().unwrap().0.cert[0].to_vec()
    }

    #[test]
    fn a_changed_pair_is_reloaded_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_pair(dir.path());
        let r =
            ReloadingCert::load(&dir.path().join("cert.pem"), &dir.path().join("key.pem")).unwrap();
        assert!(!r.reload_if_changed());
        assert_eq!(served_cert(&r), first);

        // mtime granularity: make sure the new files look changed.
        std::thread::sleep(Duration::from_millis(20));
        let second = write_pair(dir.path());
        let now = SystemTime::now() + Duration::from_secs(1);
        for f in ["cert.pem", "key.pem"] {
            std::fs::File::options()
                .write(true)
                .open(dir.path().join(f))
                .unwrap()
                .set_modified(now)
                .unwrap();
        }
        assert!(r.reload_if_changed());
        assert_eq!(served_cert(&r), second);

        std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("cert.pem"))
            .unwrap()
            .set_modified(now + Duration::from_secs(1))
            .unwrap();
        assert!(!r.reload_if_changed());
        assert_eq!(served_cert(&r), second);
    }

    #[test]
    fn an_unusable_pair_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), "").unwrap();
        std::fs::write(dir.path().join("key.pem"), "").unwrap();
        assert!(
            ReloadingCert::load(&dir.path().join("cert.pem"), &dir.path().join("key.pem")).is_err()
        );
    }
}
