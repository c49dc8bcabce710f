//! The accept loop: one task per connection, HTTP/1.1 with keep-alive, TLS when configured,
//! and a graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::HttpService;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};

/// Any error a service or a response body may return.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How [`serve`] serves connections.
#[derive(Clone, Debug)]
pub struct Options {
    /// Serve HTTPS with this configuration (plain HTTP when `None`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Time a client has to send a complete request head (request line and headers); past it
    /// the connection is closed. Default: 10 s.
    pub header_read_timeout: Duration,
    /// Time a client has to finish the TLS handshake; past it the connection is closed.
    /// Default: 10 s.
    pub tls_handshake_timeout: Duration,
    /// After the shutdown signal, how long requests in flight get to finish before [`serve`]
    /// returns anyway. Default: 30 s.
    pub shutdown_grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tls: None,
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Serves `service` on `listener` with `options` until `shutdown` completes, then stops
/// accepting and lets the requests in flight finish (for at most `options.shutdown_grace`).
///
/// Each accepted connection gets its own task and its own clone of `service`, with
/// `TCP_NODELAY` set. Connections are HTTP/1.1 with keep-alive; a client that does not send a
/// complete request head within `header_read_timeout` (or, with TLS, does not finish the
/// handshake within `tls_handshake_timeout`) is disconnected, so slow clients cannot hold
/// connections open for free. Failed handshakes and connection errors are logged at debug
/// level; a failed `accept` (typically: out of file descriptors) is logged as a warning and
/// retried after 50 ms.
///
/// ```no_run
/// use std::convert::Infallible;
///
/// use http_body_util::Full;
/// use hyper::body::{Bytes, Incoming};
/// use hyper::{Request, Response};
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
/// });
/// let shutdown = async {
///     let _ = tokio::signal::ctrl_c().await;
/// };
/// vouch_serve::serve(listener, service, vouch_serve::Options::default(), shutdown).await;
/// # Ok(()) }
/// ```
pub async fn serve<S>(
    listener: tokio::net::TcpListener,
    service: S,
    options: Options,
    shutdown: impl Future<Output = ()>,
) where
    S: HttpService<Incoming> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    S::ResBody: Send + 'static,
    <S::ResBody as Body>::Data: Send,
    <S::ResBody as Body>::Error: Into<BoxError>,
{
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true);
    let acceptor = options.tls.map(tokio_rustls::TlsAcceptor::from);
    let handshake_timeout = options.tls_handshake_timeout;
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let http = http.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => connection(&http, watcher, TokioIo::new(stream), service, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            connection(&http, watcher, TokioIo::new(tls), service, peer).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(options.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within the shutdown grace period");
    }
}

/// Serves one connection (plain or after its TLS handshake) until it closes.
async fn connection<I, S>(
    http: &http1::Builder,
    watcher: Watcher,
    io: I,
    service: S,
    peer: std::net::SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    S: HttpService<Incoming>,
    S::Error: Into<BoxError>,
    S::ResBody: 'static,
    <S::ResBody as Body>::Error: Into<BoxError>,
{
    if let Err(e) = watcher.watch(http.serve_connection(io, service)).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::convert::Infallible;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::path::Path;
    use std::time::Instant;

    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Request, Response};
    use tokio::sync::oneshot;

    use super::*;

    /// Answers `hello <path>`; `/stall` never answers.
    async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        if req.uri().path() == "/stall" {
            std::future::pending::<()>().await;
        }
        let body = format!("hello {}", req.uri().path());
        Ok(Response::new(Full::new(Bytes::from(body))))
    }

    /// [`serve`] on a loopback port, in its own runtime; the test talks to it with blocking
    /// sockets.
    struct Running {
        addr: std::net::SocketAddr,
        stop: oneshot::Sender<()>,
        done: tokio::task::JoinHandle<()>,
        rt: tokio::runtime::Runtime,
    }

    impl Running {
        fn start(options: Options) -> Self {
            let rt = tokio::runtime::Runtime::new().unwrap();
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, stopped) = oneshot::channel::<()>();
            let service = hyper::service::service_fn(hello);
            let done = rt.spawn(serve(listener, service, options, async {
                let _ = stopped.await;
            }));
            Running {
                addr,
                stop,
                done,
                rt,
            }
        }

        fn connect(&self) -> TcpStream {
            let conn = TcpStream::connect(self.addr).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            conn
        }

        /// A connection on which `bytes` were sent.
        fn send(&self, bytes: &[u8]) -> TcpStream {
            let mut conn = self.connect();
            conn.write_all(bytes).unwrap();
            conn
        }

        /// Sends the shutdown signal; returns how long [`serve`] took to return.
        fn shut_down(self) -> Duration {
            let start = Instant::now();
            self.stop.send(()).unwrap();
            let done = self.done;
            self.rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), done).await })
                .unwrap()
                .unwrap();
            start.elapsed()
        }
    }

    /// Sends `request` and reads until the server closes the connection.
    fn exchange(stream: &mut (impl Read + Write), request: &str) -> String {
        stream.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// How long the server takes to close a connection on which nothing more is sent.
    fn time_to_close(stream: &mut TcpStream) -> Duration {
        let start = Instant::now();
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).unwrap();
        start.elapsed()
    }

    const GET: &str = "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

    #[test]
    fn serves_http_until_shutdown() {
        let s = Running::start(Options::default());
        let resp = exchange(&mut s.connect(), GET);
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(resp.ends_with("hello /x"), "{resp}");

        let addr = s.addr;
        assert!(s.shut_down() < Duration::from_secs(5));
        assert!(TcpStream::connect(addr).is_err(), "still listening");
    }

    #[test]
    fn a_slow_request_head_is_cut_off() {
        let s = Running::start(Options {
            header_read_timeout: Duration::from_millis(200),
            ..Options::default()
        });
        let mut conn = s.send(b"GET /x HTTP/1.1\r\nHost: t\r\n");
        assert!(time_to_close(&mut conn) < Duration::from_secs(5));
    }

    #[test]
    fn shutdown_waits_for_requests_in_flight_only_for_the_grace_period() {
        let s = Running::start(Options {
            shutdown_grace: Duration::from_millis(300),
            ..Options::default()
        });
        let _conn = s.send(b"GET /stall HTTP/1.1\r\nHost: t\r\n\r\n");
        // Let the request reach the service.
        std::thread::sleep(Duration::from_millis(200));
        let took = s.shut_down();
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    /// Writes a self-signed certificate for localhost and its key to `dir`; returns the
    /// certificate, for the client to trust.
    fn tls_files(dir: &Path) -> rustls_pki_types::CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        cert.der().clone()
    }

    #[test]
    fn serves_https_and_cuts_off_a_stalled_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let ca = tls_files(dir.path());
        let resolver = crate::tls::ReloadingCert::new(
            &dir.path().join("cert.pem"),
            &dir.path().join("key.pem"),
            Duration::from_secs(30),
        )
        .unwrap();
        let config = crate::tls::server_config(Arc::new(resolver)).unwrap();
        let s = Running::start(Options {
            tls: Some(Arc::new(config)),
            tls_handshake_timeout: Duration::from_millis(200),
            ..Options::default()
        });

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let session = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
        let mut tls = rustls::StreamOwned::new(session, s.connect());
        let resp = exchange(&mut tls, GET);
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(resp.ends_with("hello /x"), "{resp}");
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));

        // Plain HTTP on the TLS port gets no HTTP answer.
        let resp = exchange(&mut s.connect(), GET);
        assert!(!resp.contains("hello"), "{resp}");

        // A client that never starts its handshake is disconnected.
        assert!(time_to_close(&mut s.connect()) < Duration::from_secs(5));
    }
}
