//! The loopback ceiling for the notary-server comparison: a bare hyper HTTP/1.1 server on the
//! same runtime and connection settings as vouch-server, answering every request with a fixed
//! body of the given size and the headers vouch sends for a metadata file. No routing, auth,
//! metrics, request ids or cache lookup: what remains is hyper and the kernel.
//!
//! `cargo run --release -p vouch-server --example loopback_ceiling -- 127.0.0.1:14470 471`,
//! then `wrk -t2 -c32 -d15s --latency http://127.0.0.1:14470/`.

#![allow(missing_docs, clippy::expect_used)]

use std::convert::Infallible;
use std::time::Duration;

use hyper::body::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, ETAG};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:14470".to_owned());
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(471);
    let body = Bytes::from(vec![b'x'; size]);
    let etag = HeaderValue::from_str(&format!("\"{}\"", "0".repeat(64))).expect("etag");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        println!("listening on http://{addr}, {size}-byte body");
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            // The head and read-buffer limits vouch-serve sets.
            .max_header_size(vouch_serve::MAX_HEAD_BYTES)
            .max_buf_size(64 * 1024)
            .keep_alive(true);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (http, body, etag) = (http.clone(), body.clone(), etag.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    let mut resp = hyper::Response::new(http_body_util::Full::new(body.clone()));
                    let h = resp.headers_mut();
                    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                    h.insert(ETAG, etag.clone());
                    async move { Ok::<_, Infallible>(resp) }
                });
                let _ = http.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
}
