//! Attacks on the serving layer, through a real `vouch-server` and raw TCP sockets: request
//! bodies sent to handlers that never read them, request heads without end, reads that would
//! fill the read cache, large responses nobody reads, connections opened and held, and
//! `/metrics` listing repositories to anyone. Each test asserts what a user of the server
//! sees while the attack runs: an honest read still answered, a 431, a 401, a 503, a closed
//! connection, the bytes the cache holds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{ClientRepo, Server};
use reqwest::StatusCode;
use vouch_tuf::json::{Map, Value};
use vouch_tuf::metadata::Metadata;

const GUN: &str = "registry.example.com/org/app";

/// The value of the series `series` (name and labels) in the `/metrics` text `text`.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_owned()
}

/// A connection to `s` on which `bytes` were sent; reads give up after `guard`, so a test
/// whose server never answers fails instead of hanging.
fn send(s: &Server, bytes: &[u8], guard: Duration) -> BufReader<TcpStream> {
    let conn = TcpStream::connect(addr(s)).unwrap();
    conn.set_read_timeout(Some(guard)).unwrap();
    conn.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut conn = BufReader::new(conn);
    conn.get_mut().write_all(bytes).unwrap();
    conn
}

/// Reads one response; returns its status line, or `None` when the connection closed (or
/// the read guard ran out) first.
fn response(conn: &mut BufReader<TcpStream>) -> Option<String> {
    common::read_head(conn).and_then(|h| h.lines().next().map(str::to_owned))
}

/// Whether the server closed `conn` (it reads to the end before the read guard runs out).
fn closed(conn: &mut BufReader<TcpStream>) -> bool {
    let mut rest = Vec::new();
    match conn.read_to_end(&mut rest) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// A server (started from the TOML `config`) with `GUN` initialised; the config file's
/// directory lives as long as the server.
fn server_with_config(config: &str) -> (Server, ClientRepo, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vouch.toml");
    std::fs::write(&path, config).unwrap();
    let s = Server::start_with_args(&["--config", path.to_str().unwrap()]);
    let c = ClientRepo::new(&s, GUN);
    c.publish_initial(&s, &["v1"]);
    (s, c, dir)
}

#[test]
fn unread_bodies_hold_no_request_slot_and_do_not_delay_the_answer() {
    let (s, _c, _dir) = server_with_config("[capacity]\nmax_in_flight = 8\n");
    let targets = format!("/v2/{GUN}/_trust/tuf/targets.json");
    assert_eq!(s.get(&targets).status, StatusCode::OK);

    // Three times the in-flight cap of requests whose bodies no handler reads, each sending
    // a few bytes of a 100 kB body and then nothing: anonymous liveness checks and publishes
    // without a token.
    let guard = Duration::from_secs(5);
    let attackers: Vec<_> = (0..24)
        .map(|i| {
            let head = if i % 2 == 0 {
                "GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nxx".to_owned()
            } else {
                format!(
                    "POST /v2/{GUN}/_trust/tuf/ HTTP/1.1\r\nHost: x\r\nContent-Type: \
                     multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b"
                )
            };
            send(&s, head.as_bytes(), guard)
        })
        .collect();
    // Let the server take every one of them in.
    std::thread::sleep(Duration::from_millis(300));

    // Honest requests are served meanwhile: anonymous reads of current metadata (targets from
    // the read cache while it is fresh, root from the store) and the liveness check.
    for path in [
        targets.clone(),
        format!("/v2/{GUN}/_trust/tuf/root.json"),
        "/v2/".to_owned(),
    ] {
        assert_eq!(s.get(&path).status, StatusCode::OK, "{path}");
    }
    // And every attacker got its answer without sending its body.
    for (i, mut conn) in attackers.into_iter().enumerate() {
        let want = if i % 2 == 0 { "200" } else { "401" };
        let status = response(&mut conn).expect("no answer before the body");
        assert!(
            status.starts_with(&format!("HTTP/1.1 {want}")),
            "{i}: {status}"
        );
    }
    let m = s.get("/metrics").text();
    assert_eq!(
        metric(&m, "vouch_overload_rejections_total{reason=\"in_flight\"}"),
        None,
        "{m}"
    );
}

#[test]
fn an_unread_body_past_the_budget_closes_the_connection() {
    let s = Server::start();
    // A publish without a token declaring 1 MB, sent whole, and a request behind it: the
    // refusal is answered, and the server does not read a megabyte to keep the connection.
    let mut request = format!(
        "POST /v2/{GUN}/_trust/tuf/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; \
         boundary=b\r\nContent-Length: 1000000\r\n\r\n"
    )
    .into_bytes();
    request.extend(std::iter::repeat_n(b'x', 1_000_000));
    request.extend_from_slice(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
    let conn = TcpStream::connect(addr(&s)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = conn.try_clone().unwrap();
    // The server may close before it all went out: that is the point.
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&request);
    });
    let mut conn = BufReader::new(conn);
    let status = response(&mut conn).expect("the refusal is answered");
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    assert_eq!(response(&mut conn), None, "the request behind it was read");
    let _ = sender.join();

    // Within the budget, the connection is kept (a client that retries with a token reuses
    // it).
    let mut request = format!(
        "POST /v2/{GUN}/_trust/tuf/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; \
         boundary=b\r\nContent-Length: 100000\r\n\r\n"
    )
    .into_bytes();
    request.extend(std::iter::repeat_n(b'x', 100_000));
    request.extend_from_slice(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut conn = send(&s, &request, Duration::from_secs(10));
    assert!(response(&mut conn).unwrap().starts_with("HTTP/1.1 401"));
    assert!(response(&mut conn).unwrap().starts_with("HTTP/1.1 200"));
}

#[test]
fn a_refused_request_awaiting_100_continue_is_answered_and_closed() {
    let s = Server::start();
    // The client waits for `100 Continue` before it sends the body: the refusal is its
    // answer, and the connection is not kept waiting for a body that will not come (or
    // would be taken for the next request).
    let mut conn = send(
        &s,
        format!(
            "POST /v2/{GUN}/_trust/tuf/ HTTP/1.1\r\nHost: x\r\nContent-Type: \
             multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\
             Expect: 100-continue\r\n\r\n"
        )
        .as_bytes(),
        Duration::from_secs(5),
    );
    let status = response(&mut conn).expect("answered without the body");
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    assert!(closed(&mut conn), "kept waiting for the body");
}

#[test]
fn an_unread_body_trickled_in_is_cut_off_as_a_whole() {
    let (s, _c, _dir) = server_with_config("[timeouts]\nheader_read_seconds = 1\n");
    // A read declaring a body, then one byte every 100 ms: never idle for long, but the body
    // as a whole gets what a request head gets, one second. The answer does not wait for it.
    let mut conn = send(
        &s,
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
        Duration::from_secs(8),
    );
    let status = response(&mut conn).expect("answered before the body");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut writer = conn.get_ref().try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..200 {
            if writer.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert!(closed(&mut conn), "the trickled body kept its connection");
    drop(conn);
    trickle.join().unwrap();
}

#[test]
fn request_heads_past_32_kib_get_431() {
    let (s, _c, _dir) = server_with_config("");
    // Connections each holding an unfinished head of 40 KiB (a 390 KB head used to be read
    // and kept): each is refused with 431 as soon as its head passes the limit.
    let padding = "a".repeat(40 * 1024);
    let heads: Vec<_> = (0..50)
        .map(|_| {
            send(
                &s,
                format!("GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Padding: {padding}").as_bytes(),
                Duration::from_secs(5),
            )
        })
        .collect();
    for (i, mut conn) in heads.into_iter().enumerate() {
        let status = response(&mut conn).unwrap_or_default();
        assert!(status.starts_with("HTTP/1.1 431"), "{i}: {status:?}");
    }
    // A large head within the limit (a big registry token, say) is served.
    let padding = "a".repeat(16 * 1024);
    let mut conn = send(
        &s,
        format!("GET /v2/{GUN}/_trust/tuf/root.json HTTP/1.1\r\nHost: x\r\nX-Padding: {padding}\r\n\r\n")
            .as_bytes(),
        Duration::from_secs(5),
    );
    assert!(response(&mut conn).unwrap().starts_with("HTTP/1.1 200"));
}

#[test]
fn the_read_cache_holds_at_most_its_budget_and_lets_expired_files_go() {
    // 64 KiB: a file over 4 KiB (a sixteenth) is never cached.
    let (s, c, _dir) = server_with_config("[cache]\nread_bytes = 65536\n");
    let bytes = || metric(&s.get("/metrics").text(), "vouch_read_cache_bytes").unwrap();
    assert_eq!(bytes(), 0.0);

    // A targets role over the share: read, and read again, it is never held.
    let tags: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    let big = c.signed_targets(2, &tags);
    assert!(big.len() > 4096, "{}", big.len());
    let r = s.publish(GUN, &[("targets", big.clone())]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for _ in 0..2 {
        assert_eq!(s.current(GUN, "targets").unwrap(), big);
    }
    assert_eq!(bytes(), 0.0);

    // A small root is held, and counted (read again should a slow machine let the second
    // between the read and the scrape pass).
    let root = s.current(GUN, "root").unwrap();
    let held = (0..5)
        .map(|_| {
            s.current(GUN, "root");
            bytes()
        })
        .find(|b| *b > 0.0)
        .expect("the root was never cached");
    assert!(held >= root.len() as f64 && held <= 65536.0, "{held}");

    // Once nobody reads it, it is released within a few TTLs.
    let mut waited = 0;
    while bytes() > 0.0 {
        assert!(waited < 100, "still {} bytes held", bytes());
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
}

/// A server with anonymous pulls off, a static token scoped to one namespace, and `extra`
/// configuration; `GUN` initialised and read, so `/metrics` has a series naming it.
fn private_server(extra: &str) -> (Server, tempfile::TempDir) {
    let sha = vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, b"ci-token"));
    let (s, _c, dir) = server_with_config(&format!(
        "[auth]\nanonymous_pull = false\n[[auth.tokens]]\nname = \"ci\"\nsha256 = \"{sha}\"\n\
         scopes = [\"registry.example.com/org/*:pull,push\"]\n{extra}"
    ));
    assert_eq!(
        s.get_admin(&format!("/v2/{GUN}/_trust/tuf/targets.json"))
            .status,
        StatusCode::OK
    );
    (s, dir)
}

fn metrics_with(s: &Server, token: Option<&str>) -> common::Resp {
    let mut req = s.client.get(s.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    common::Resp::from(req.send().unwrap())
}

#[test]
fn metrics_name_repositories_only_to_a_token_that_may_read_them_all() {
    let (s, _dir) = private_server("");
    let series = format!("vouch_metadata_expiry_seconds{{gun=\"{GUN}\",role=\"targets\"}}");

    // No token: 401 with the challenge for the scope that opens it, and no repository named.
    let r = metrics_with(&s, None);
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!r.text().contains(GUN), "{}", r.text());
    let challenge = r.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("scope=\"registry:catalog:*\""),
        "{challenge}"
    );
    // A token for one namespace may not list every repository: 403.
    let r = metrics_with(&s, Some("ci-token"));
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.text().contains(GUN), "{}", r.text());
    // A token for every repository (the admin token has `*`) scrapes everything.
    let r = metrics_with(&s, Some(&s.admin_token));
    assert_eq!(r.status, StatusCode::OK);
    assert!(metric(&r.text(), &series).is_some(), "{}", r.text());

    // An operator may open it (a scrape path only the monitoring network reaches).
    let (s, _dir) = private_server("[metrics]\naccess = \"anonymous\"\n");
    let r = metrics_with(&s, None);
    assert_eq!(r.status, StatusCode::OK);
    assert!(metric(&r.text(), &series).is_some(), "{}", r.text());

    // Anonymous pulls on: open unless a token is asked for.
    let (s, _c, _dir) = server_with_config("[metrics]\naccess = \"token\"\n");
    assert_eq!(metrics_with(&s, None).status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        metrics_with(&s, Some(&s.admin_token)).status,
        StatusCode::OK
    );
    let (s, _c, _dir) = server_with_config("");
    assert_eq!(metrics_with(&s, None).status, StatusCode::OK);
}

/// Signed targets version 2 of `c` holding one tag whose custom data carries `padding` bytes
/// of filler: a large file with few JSON values.
fn padded_targets(c: &ClientRepo, padding: usize) -> Vec<u8> {
    let mut t = c.targets(2, &["v1"]);
    let f = t.targets.values_mut().next().unwrap();
    let mut custom = Map::new();
    custom.insert("padding".into(), Value::from("x".repeat(padding)));
    f.custom = Some(Value::Object(custom));
    Metadata::signed_by(t, &[&c.targets_key])
        .unwrap()
        .to_bytes()
}

/// A connection to `s` that sent `GET path` and read only the status line of the answer
/// (into a small buffer): the client that stops reading. Returns the status line too.
fn get_and_stop_reading(s: &Server, path: &str) -> (BufReader<TcpStream>, String) {
    use std::io::BufRead;
    let mut conn = send(
        s,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        Duration::from_secs(10),
    );
    let mut status = String::new();
    conn.read_line(&mut status).unwrap();
    (conn, status)
}

#[test]
fn large_responses_nobody_reads_are_bounded_by_the_response_budget() {
    // A 10 MB targets role: more than the kernel buffers of a connection take, never in the
    // read cache (over a sixteenth of it), so each read makes its own buffer. The budget
    // holds two of them and 1 MiB besides.
    const PADDING: usize = 10_000_000;
    let budget = 2 * PADDING + (1 << 20);
    let (s, c, _dir) = server_with_config(&format!(
        "[capacity]\nmax_pending_response_bytes = {budget}\n"
    ));
    let big = padded_targets(&c, PADDING);
    assert!(big.len() > PADDING && 2 * big.len() < budget - 64 * 1024);
    let r = s.publish(GUN, &[("targets", big.clone())]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let targets = format!("/v2/{GUN}/_trust/tuf/targets.json");

    // Two clients ask for it and stop reading: both answered, their responses waiting.
    let stalled: Vec<_> = (0..2)
        .map(|i| {
            let (conn, status) = get_and_stop_reading(&s, &targets);
            assert!(status.starts_with("HTTP/1.1 200"), "{i}: {status}");
            conn
        })
        .collect();
    // A third would pass the budget: 503 with Retry-After, at once.
    let mut third = send(
        &s,
        format!("GET {targets} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        Duration::from_secs(10),
    );
    let head = common::read_head(&mut third).expect("answered");
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("\r\nretry-after: 1\r\n"),
        "{head}"
    );

    // Small reads are still served: metadata and the scrape, which counts the refusal and
    // the bytes waiting.
    assert_eq!(
        s.get(&format!("/v2/{GUN}/_trust/tuf/root.json")).status,
        StatusCode::OK
    );
    let m = s.get("/metrics");
    assert_eq!(m.status, StatusCode::OK);
    let m = m.text();
    assert_eq!(
        metric(
            &m,
            "vouch_overload_rejections_total{reason=\"response_bytes\"}"
        ),
        Some(1.0),
        "{m}"
    );
    let waiting = metric(&m, "vouch_pending_response_bytes").unwrap();
    assert!(waiting >= 2.0 * big.len() as f64, "{waiting}");

    // Once those clients go away, their bytes are given back: the file is served whole
    // again (the server sees the closes a moment after the clients make them).
    drop(stalled);
    let served = (0..100).any(|_| {
        let r = s.get(&targets);
        if r.status == StatusCode::OK {
            assert_eq!(r.body, big);
            return true;
        }
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        std::thread::sleep(Duration::from_millis(100));
        false
    });
    assert!(served, "the budget was never given back");
}

#[test]
fn a_file_larger_than_the_response_budget_is_served_when_nothing_else_waits() {
    // Larger than the kernel buffers of a connection take, as above.
    const PADDING: usize = 10_000_000;
    let (s, c, _dir) = server_with_config("[capacity]\nmax_pending_response_bytes = 1048576\n");
    let big = padded_targets(&c, PADDING);
    let r = s.publish(GUN, &[("targets", big.clone())]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let targets = format!("/v2/{GUN}/_trust/tuf/targets.json");
    // Nothing waiting: served whole, more than the budget.
    let r = s.get(&targets);
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, big);
    // While a client holds it unread, it takes the whole budget: even a small uncached
    // read waits for it.
    let (stalled, status) = get_and_stop_reading(&s, &targets);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let r = s.get(&format!("/v2/{GUN}/_trust/tuf/1.root.json"));
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers.contains_key("retry-after"));
    drop(stalled);
    let served = (0..100).any(|_| {
        let ok = s.get(&format!("/v2/{GUN}/_trust/tuf/1.root.json")).status == StatusCode::OK;
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    });
    assert!(served, "the budget was never given back");
}

#[test]
fn connections_past_the_cap_are_closed_at_once_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vouch.toml");
    std::fs::write(&path, "[capacity]\nmax_connections = 3\n").unwrap();
    // No request before the test's own: every open connection is one of these.
    let s = Server::start_with_args(&["--config", path.to_str().unwrap()]);
    let get = |conn: &mut BufReader<TcpStream>| {
        // A connection the server closed at once may refuse the request: that is the point.
        let _ = conn
            .get_mut()
            .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
        response(conn)
    };
    let connect = || {
        let conn = TcpStream::connect(addr(&s)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        BufReader::new(conn)
    };

    // Three connections, kept open: served.
    let mut open: Vec<_> = (0..3)
        .map(|i| {
            let mut conn = connect();
            let status = get(&mut conn).unwrap_or_default();
            assert!(status.starts_with("HTTP/1.1 200"), "{i}: {status}");
            conn
        })
        .collect();
    // More: closed without an answer.
    for i in 0..2 {
        assert_eq!(get(&mut connect()), None, "{i}: served past the cap");
    }
    // The open ones keep working.
    for conn in &mut open {
        assert!(get(conn).unwrap().starts_with("HTTP/1.1 200"));
    }
    // One closes: a new connection is served again (once the server has seen the close),
    // and the scrape counts the two refused.
    drop(open.pop());
    let scrape = (0..100).find_map(|_| {
        let r = s.client.get(s.url("/metrics")).send().ok();
        if r.is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
        r.map(common::Resp::from)
    });
    let m = scrape
        .expect("no connection was served after one closed")
        .text();
    assert_eq!(
        metric(
            &m,
            "vouch_overload_rejections_total{reason=\"connections\"}"
        ),
        Some(2.0),
        "{m}"
    );
    for conn in &mut open {
        assert!(get(conn).unwrap().starts_with("HTTP/1.1 200"));
    }
}
