//! The accept loop: one task per connection, HTTP/1.1 with keep-alive, TLS when configured,
//! a cap on open connections, a bound on request heads, a deadline on responses the client
//! does not take, and a graceful shutdown; and [`discard`], which throws away a
//! request body the application answered without reading, within a byte and a time budget.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::HttpService;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};

/// Any error a service or a response body may return.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest request head (request line and headers) accepted, in bytes; a larger one is
/// answered `431 Request Header Fields Too Large` and the connection closed. 32 KiB holds any
/// real client's head (a registry bearer token is a few KiB), and keeps what a connection
/// that never finishes its head can make the server hold small.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// Most a connection buffers of what the client sent and the server has not yet used, in
/// bytes (hyper's read buffer; hyper's own default is about 400 KiB). Bodies stream through
/// it in pieces of at most this size.
const MAX_READ_BUFFER: usize = 64 * 1024;

/// Most bytes [`discard`] reads of a body nobody wanted before it gives up and lets the
/// connection close (the budget Go's `net/http` server uses for the same purpose).
pub const DISCARD_BYTES: u64 = 256 * 1024;

/// Time [`serve`] gives a client to take what the server sends it once the connection stops
/// taking it (see [`Limits::write_timeout`]): 60 s, enough for the largest metadata file over
/// a slow link.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections [`serve`] keeps open at once (see [`Limits::max_connections`]): far more than
/// the clients of one replica need, few enough that what each open connection may hold
/// (its buffers, at most a request head and a response in writing) stays bounded.
pub const MAX_CONNECTIONS: usize = 4096;

/// Limits on connections beyond [`Options`], for [`serve_with_limits`]; the defaults are
/// what [`serve`] uses.
#[derive(Clone)]
pub struct Limits {
    /// Time a client has to take what the server sends it once its connection stops taking
    /// it. It counts from the first write the connection did not take until everything the
    /// server wrote has gone out — the whole stall, however the client paces its reads, not
    /// each write — so a client that stops reading cannot hold a connection, and the
    /// response buffered for it, for longer; past it the connection is closed. Default:
    /// [`WRITE_TIMEOUT`].
    pub write_timeout: Duration,
    /// Connections open at once, TLS handshakes included. A connection accepted while this
    /// many are open is closed at once, without a byte read or written, and logged at debug
    /// level; [`Limits::on_refused`] is called for it. Default: [`MAX_CONNECTIONS`]; 0
    /// refuses every connection.
    pub max_connections: usize,
    /// Called once for each connection closed because [`Limits::max_connections`] were open
    /// (to count it); it runs in the accept loop, so it must be quick.
    pub on_refused: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            write_timeout: WRITE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            on_refused: None,
        }
    }
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("write_timeout", &self.write_timeout)
            .field("max_connections", &self.max_connections)
            .field("on_refused", &self.on_refused.as_ref().map(|_| "Fn"))
            .finish()
    }
}

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
/// `TCP_NODELAY` set; at most [`MAX_CONNECTIONS`] are open at once, and one accepted past that
/// is closed at once (see [`serve_with_limits`]). Connections are HTTP/1.1 with keep-alive; a
/// client that does not send a complete request head within `header_read_timeout` (or, with
/// TLS, does not finish the handshake within `tls_handshake_timeout`) is disconnected, so slow
/// clients cannot hold connections open for free. A request head longer than [`MAX_HEAD_BYTES`]
/// gets `431` and the connection is closed. Failed handshakes and connection errors are logged
/// at debug level; a failed `accept` (typically: out of file descriptors) is logged as a
/// warning and retried after 50 ms.
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
    serve_with_limits(listener, service, options, Limits::default(), shutdown).await;
}

/// [`serve`], with the write timeout and the cap on open connections of `limits`.
///
/// Connections are counted from when they are accepted until they close (a TLS handshake
/// included). While `limits.max_connections` are open, a newly accepted connection is closed
/// at once — the client sees its connection reset or closed before any answer — and
/// `limits.on_refused` is called; the connections already open are served as before. So
/// clients that open connections and hold them (each may hold a response the client does
/// not take, for up to the write timeout) cannot make the server keep more than the cap.
pub async fn serve_with_limits<S>(
    listener: tokio::net::TcpListener,
    service: S,
    options: Options,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) where
    S: HttpService<Incoming> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    S::ResBody: Send + 'static,
    <S::ResBody as Body>::Data: Send,
    <S::ResBody as Body>::Error: Into<BoxError>,
{
    let write_timeout = limits.write_timeout;
    let open = Arc::new(AtomicUsize::new(0));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_READ_BUFFER)
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
        let Some(slot) = ConnectionSlot::take(&open, limits.max_connections) else {
            let max = limits.max_connections;
            tracing::debug!(%peer, max, "too many open connections: closed at once");
            if let Some(refused) = &limits.on_refused {
                refused();
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let stream = WriteDeadline::new(stream, write_timeout);
        let service = service.clone();
        let http = http.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _slot = slot;
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

/// One open connection, counted in the accept loop's count until it is dropped.
struct ConnectionSlot(Arc<AtomicUsize>);

impl ConnectionSlot {
    /// A slot of `open`, unless `max` are taken.
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        // Only the accept loop adds, so the count cannot pass `max` between the two steps.
        if open.fetch_add(1, Ordering::AcqRel) >= max {
            open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ConnectionSlot(open.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection whose writes may not stay stalled for longer than a time limit: from the
/// first write (or flush) the connection does not take until a flush completes, at most
/// `limit` may pass, else writes fail with [`std::io::ErrorKind::TimedOut`] and hyper closes
/// the connection.
struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// The deadline of the stall under way; the timer is kept for the next stall.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether a stall is under way.
    stalled: bool,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, limit: Duration) -> Self {
        WriteDeadline {
            inner,
            limit,
            timer: None,
            stalled: false,
        }
    }

    /// The connection did not take a write: starts the stall's clock if it is not running,
    /// and fails once it has run out.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let deadline = tokio::time::Instant::now() + self.limit;
        let timer = match &mut self.timer {
            Some(t) if self.stalled => t,
            Some(t) => {
                t.as_mut().reset(deadline);
                t
            }
            None => self
                .timer
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        self.stalled = true;
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client did not take the response in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.stalled(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.stalled(cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.stalled(cx),
            Poll::Ready(r) => {
                self.stalled = false;
                Poll::Ready(r)
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Pending => self.stalled(cx),
            ready => ready,
        }
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

/// Reads and throws away, in a task of its own, the body of a request the application
/// answered without reading it, so that the connection can carry the client's next request
/// and a client still sending the body gets to read the answer rather than a reset.
///
/// The application returns its answer at once and holds nothing while this runs (call it
/// where the body would otherwise be dropped). The body gets [`DISCARD_BYTES`] and `within`
/// (the header-read timeout is the natural choice: it is what a client gets to send a whole
/// request head) as a whole, not per read: past either, or when the body declares more than
/// the byte budget up front, it is dropped, and hyper closes the connection after the answer
/// instead of reading more. Do not give it the body of a request that expects
/// `100 Continue`: such a client waits for a go-ahead that will not come, so drop that body
/// (hyper then closes the connection, which is the right answer to it).
///
/// Needs a Tokio runtime.
pub fn discard<B>(body: B, within: Duration)
where
    B: Body + Send + 'static,
    B::Data: Send,
{
    if body.is_end_stream() || body.size_hint().lower() > DISCARD_BYTES {
        return;
    }
    tokio::spawn(async move {
        let mut body = std::pin::pin!(body);
        let mut seen = 0u64;
        let deadline = tokio::time::Instant::now() + within;
        while seen <= DISCARD_BYTES {
            let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx));
            match tokio::time::timeout_at(deadline, frame).await {
                Ok(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        seen += hyper::body::Buf::remaining(data) as u64;
                    }
                }
                // The end, an error, or out of time.
                _ => break,
            }
        }
    });
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

    /// Size of the answer to `/big`: more than the kernel buffers of a loopback connection.
    const BIG: usize = 32 << 20;

    /// Answers `hello <path>`; `/stall` never answers; `/discard` hands its unread body to
    /// [`discard`] with one second to arrive; `/big` answers [`BIG`] bytes.
    async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        if req.uri().path() == "/stall" {
            std::future::pending::<()>().await;
        }
        if req.uri().path() == "/big" {
            return Ok(Response::new(Full::new(Bytes::from(vec![b'x'; BIG]))));
        }
        let body = format!("hello {}", req.uri().path());
        if req.uri().path() == "/discard" {
            discard(req.into_body(), Duration::from_secs(1));
        }
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
            Self::start_with_write_timeout(options, WRITE_TIMEOUT)
        }

        fn start_with_write_timeout(options: Options, write_timeout: Duration) -> Self {
            let limits = Limits {
                write_timeout,
                ..Limits::default()
            };
            Self::start_with_limits(options, limits)
        }

        fn start_with_limits(options: Options, limits: Limits) -> Self {
            let rt = tokio::runtime::Runtime::new().unwrap();
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, stopped) = oneshot::channel::<()>();
            let service = hyper::service::service_fn(hello);
            let done = rt.spawn(serve_with_limits(
                listener,
                service,
                options,
                limits,
                async {
                    let _ = stopped.await;
                },
            ));
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

    /// Reads one response with a `content-length` body; returns its head and body, or `None`
    /// when the connection closed first.
    fn response(conn: &mut std::io::BufReader<TcpStream>) -> Option<(String, String)> {
        vouch_testkit::http::read_response(conn)
            .map(|(head, body)| (head, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Whether the server closed `conn` (rather than leaving it open for `guard`).
    fn closed(conn: &mut std::io::BufReader<TcpStream>, guard: Duration) -> bool {
        conn.get_ref().set_read_timeout(Some(guard)).unwrap();
        let mut rest = Vec::new();
        match conn.read_to_end(&mut rest) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }

    #[test]
    fn an_oversized_request_head_gets_431() {
        let s = Running::start(Options::default());
        // A head just under the limit (a large bearer token, say) is served.
        let big = "a".repeat(MAX_HEAD_BYTES - 1024);
        let resp = exchange(
            &mut s.connect(),
            &format!("GET /x HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"),
        );
        assert!(
            resp.starts_with("HTTP/1.1 200 OK\r\n"),
            "{}",
            &resp[..40.min(resp.len())]
        );
        // One past it, finished or not, gets 431 and the connection is closed.
        for end in ["\r\n\r\n", ""] {
            let big = "a".repeat(MAX_HEAD_BYTES + 1024);
            let resp = exchange(
                &mut s.connect(),
                &format!("GET /x HTTP/1.1\r\nHost: t\r\nX-Big: {big}{end}"),
            );
            assert!(
                resp.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
                "{:?}",
                &resp[..40.min(resp.len())]
            );
        }
        // As do many headers that add up to more.
        let many: String = (0..100)
            .map(|i| format!("X-H{i}: {}\r\n", "b".repeat(400)))
            .collect();
        let resp = exchange(
            &mut s.connect(),
            &format!("GET /x HTTP/1.1\r\nHost: t\r\n{many}\r\n"),
        );
        assert!(
            resp.starts_with("HTTP/1.1 431"),
            "{:?}",
            &resp[..40.min(resp.len())]
        );
    }

    #[test]
    fn a_discarded_body_keeps_the_connection_only_within_its_budget() {
        let s = Running::start(Options::default());
        let mut conn = std::io::BufReader::new(s.connect());
        // Within the budget: answered, read away, and the connection serves the next request.
        let body = vec![b'x'; 100_000];
        write!(
            conn.get_mut(),
            "POST /discard HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        let (head, text) = response(&mut conn).expect("answered before its body was sent");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(text, "hello /discard");
        conn.get_mut().write_all(&body).unwrap();
        conn.get_mut()
            .write_all(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let (_, text) = response(&mut conn).expect("the connection was kept");
        assert_eq!(text, "hello /next");

        // Past the budget, declared or sent: answered, then the connection is closed and a
        // request sent after the body is never read.
        for chunked in [false, true] {
            let mut conn = std::io::BufReader::new(s.connect());
            let framing = if chunked {
                "Transfer-Encoding: chunked".to_owned()
            } else {
                format!("Content-Length: {}", DISCARD_BYTES + 1)
            };
            write!(
                conn.get_mut(),
                "POST /discard HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n"
            )
            .unwrap();
            let (head, _) = response(&mut conn).expect("answered");
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            let chunk = vec![b'x'; 4096];
            for _ in 0..(DISCARD_BYTES as usize / chunk.len() + 2) {
                let sent = if chunked {
                    write!(conn.get_mut(), "{:x}\r\n", chunk.len())
                        .and_then(|()| conn.get_mut().write_all(&chunk))
                        .and_then(|()| conn.get_mut().write_all(b"\r\n"))
                } else {
                    conn.get_mut()
                        .write_all(&chunk[..chunk.len().min(1)])
                        .and_then(|()| conn.get_mut().write_all(&chunk[1..]))
                };
                if sent.is_err() {
                    break;
                }
            }
            let _ = conn
                .get_mut()
                .write_all(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
            assert!(response(&mut conn).is_none(), "chunked: {chunked}");
        }
    }

    #[test]
    fn a_trickled_body_is_cut_off_as_a_whole_not_per_read() {
        let s = Running::start(Options::default());
        let mut conn = std::io::BufReader::new(s.connect());
        write!(
            conn.get_mut(),
            "POST /discard HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n"
        )
        .unwrap();
        let (head, _) = response(&mut conn).expect("answered before its body was sent");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        // One byte every 100 ms: never idle for long, but the body as a whole has one second.
        let mut writer = conn.get_ref().try_clone().unwrap();
        let trickle = std::thread::spawn(move || {
            for _ in 0..100 {
                if writer.write_all(b"x").is_err() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            false
        });
        assert!(closed(&mut conn, Duration::from_secs(8)), "still open");
        drop(conn);
        let _ = trickle.join();
    }

    #[test]
    fn a_client_that_does_not_take_its_response_is_cut_off() {
        let s = Running::start_with_write_timeout(Options::default(), Duration::from_secs(1));
        // A client that asks for a large answer and reads nothing for a while: the server
        // gives up on it, so only what the kernel buffers took ever arrives.
        let mut conn = s.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
        std::thread::sleep(Duration::from_secs(3));
        let mut got = Vec::new();
        let _ = conn.read_to_end(&mut got);
        assert!(got.len() < BIG, "the whole answer waited for the client");
        // A client that reads gets all of it.
        let resp = exchange(
            &mut s.connect(),
            "GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(resp.len() > BIG, "{}", resp.len());
    }

    #[test]
    fn connections_past_the_cap_are_closed_at_once() {
        use std::sync::atomic::AtomicU64;

        let refused = Arc::new(AtomicU64::new(0));
        let counter = refused.clone();
        let s = Running::start_with_limits(
            Options::default(),
            Limits {
                max_connections: 2,
                on_refused: Some(Arc::new(move || {
                    counter.fetch_add(1, Ordering::Relaxed);
                })),
                ..Limits::default()
            },
        );
        let get = |conn: &mut std::io::BufReader<TcpStream>, path: &str| {
            // The server may have closed the connection before the request went out.
            let _ = write!(conn.get_mut(), "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
            response(conn).map(|(head, body)| (head.lines().next().unwrap().to_owned(), body))
        };
        // Two connections, kept open: both served.
        let mut open: Vec<_> = (0..2)
            .map(|i| {
                let mut conn = std::io::BufReader::new(s.connect());
                let (status, body) = get(&mut conn, &format!("/{i}")).expect("served");
                assert_eq!(status, "HTTP/1.1 200 OK");
                assert_eq!(body, format!("hello /{i}"));
                conn
            })
            .collect();
        // A third, and a fourth: closed without an answer, and counted.
        for _ in 0..2 {
            let mut conn = std::io::BufReader::new(s.connect());
            assert_eq!(get(&mut conn, "/over"), None, "served past the cap");
        }
        assert_eq!(refused.load(Ordering::Relaxed), 2);
        // The connections already open keep working.
        for conn in &mut open {
            let (status, _) = get(conn, "/again").expect("an open connection was dropped");
            assert_eq!(status, "HTTP/1.1 200 OK");
        }
        // Once one closes, a new connection is served (the server notices the close soon
        // after the client makes it).
        drop(open.pop());
        let served = (0..100).any(|_| {
            let mut conn = std::io::BufReader::new(s.connect());
            let ok = get(&mut conn, "/new").is_some();
            if !ok {
                std::thread::sleep(Duration::from_millis(50));
            }
            ok
        });
        assert!(served, "the freed slot was never given back");
        let (status, _) = get(&mut open[0], "/still").expect("the open connection was dropped");
        assert_eq!(status, "HTTP/1.1 200 OK");
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
