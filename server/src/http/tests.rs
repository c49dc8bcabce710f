//! Unit tests of the HTTP layer through its router: capacity caps, request ids, the cached
//! fast path against the full path, the read cache and the response budget, route classes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::http::StatusCode;

use super::budget::ResponseBudget;
use super::cache::{CachedFile, ReadCache, READ_CACHE_TTL};
use super::middleware::{route_class, X_REQUEST_ID};
use super::publish::publish_slot;
use super::*;
use tower::ServiceExt;

fn state(dir: &std::path::Path, f: impl FnOnce(&mut Config)) -> (AppState, String) {
    let mut config = Config {
        data_dir: dir.join("data"),
        ..Config::default()
    };
    f(&mut config);
    let prepared = crate::run::build_state(&config, None).unwrap();
    let token = std::fs::read_to_string(config.admin_token_path()).unwrap();
    (prepared.state, token.trim().to_owned())
}

fn publish_request(gun: &str, token: &str) -> Request {
    Request::builder()
        .method(Method::POST)
        .uri(format!("/v2/{gun}/_trust/tuf/"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=b")
        .body(Body::from("--b--\r\n"))
        .unwrap()
}

#[tokio::test]
async fn publishes_over_capacity_get_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let (st, token) = state(dir.path(), |c| {
        c.capacity.max_publishes = 1;
        c.capacity.max_publishes_per_gun = 1;
        c.capacity.publish_wait_ms = 50;
        c.capacity.retry_after_seconds = 7;
    });
    let app = app(st.clone());
    let held = publish_slot(&st, &Gun::new("example.com/app").unwrap())
        .await
        .ok()
        .unwrap();

    // Same repository: its own cap is full.
    let r = app
        .clone()
        .oneshot(publish_request("example.com/app", &token))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    assert!(r.headers().contains_key("x-request-id"));
    // Another repository: the overall cap is full.
    let r = app
        .clone()
        .oneshot(publish_request("example.com/other", &token))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = st.metrics.render(0);
    assert!(text.contains("vouch_overload_rejections_total{reason=\"publish_gun\"} 1"));
    assert!(text.contains("vouch_overload_rejections_total{reason=\"publish\"} 1"));

    // Freed: the request gets through to validation (an empty update is a 400).
    drop(held);
    let r = app
        .clone()
        .oneshot(publish_request("example.com/app", &token))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(st.capacity.per_gun.lock().unwrap().is_empty());
    assert_eq!(st.capacity.publishes.available_permits(), 1);
}

#[tokio::test]
async fn requests_over_the_in_flight_cap_get_503() {
    let dir = tempfile::tempdir().unwrap();
    let (st, _) = state(dir.path(), |c| c.capacity.max_in_flight = 1);
    let app = app(st.clone());
    let get = |p: &str| Request::builder().uri(p).body(Body::empty()).unwrap();
    let held = st.capacity.in_flight.clone().try_acquire_owned().unwrap();
    let r = app.clone().oneshot(get("/healthz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    drop(held);
    let r = app.clone().oneshot(get("/healthz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let dir = tempfile::tempdir().unwrap();
    let (st, _) = state(dir.path(), |_| {});
    let app = app(st);
    let r = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/v2/")
                .header("x-request-id", "abc-123")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/v2/")
                .header("x-request-id", "bad id\twith junk")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap();
    assert!(id.len() > 12 && !id.contains(' '), "{id}");
}

/// Everything of a response but its request id and date: status, headers, body. Not
/// `content-length` either: the router sets it, hyper writes it from the body's exact size
/// on the wire for both paths.
async fn comparable(r: Response) -> (StatusCode, Vec<(String, String)>, Vec<u8>) {
    use http_body_util::BodyExt;
    let status = r.status();
    let mut headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(k, _)| *k != X_REQUEST_ID && *k != header::DATE && *k != header::CONTENT_LENGTH)
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn cached_reads_skip_the_router_with_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (st, token) = state(dir.path(), |_| {});
    let app = app(st.clone());
    let bytes = br#"{"signed":{"_type":"targets"}}"#.to_vec();
    let sha = vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
    let f = CachedFile::new("targets".into(), &sha, bytes.clone());
    let writes = st.service.write_generation();
    st.cache
        .insert(st.cache.generation(), writes, "example.com/app", f);
    let req = |method: Method, path: &str, h: &[(&str, &str)]| {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in h {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    };
    let targets = "/v2/example.com/app/_trust/tuf/targets.json";
    let etag = format!("\"{sha}\"");
    let bearer = format!("Bearer {token}");
    for (method, h) in [
        (Method::GET, vec![]),
        (Method::HEAD, vec![]),
        (Method::GET, vec![("if-none-match", etag.as_str())]),
        (Method::GET, vec![("authorization", bearer.as_str())]),
    ] {
        let fast = serve_cached(&st, &req(method.clone(), targets, &h)).expect("served");
        let full = app
            .clone()
            .oneshot(req(method.clone(), targets, &h))
            .await
            .unwrap();
        assert!(fast.headers().contains_key(X_REQUEST_ID));
        let (mut fast, mut full) = (comparable(fast).await, comparable(full).await);
        if method == Method::HEAD {
            // The router empties a HEAD response's body; hyper never sends one anyway.
            (fast.2, full.2) = (Vec::new(), Vec::new());
        }
        assert_eq!(fast, full, "{method} {h:?}");
    }
    let fast = serve_cached(&st, &req(Method::GET, targets, &[])).unwrap();
    assert_eq!(fast.status(), StatusCode::OK);
    let fast = serve_cached(&st, &req(Method::GET, targets, &[("x-request-id", "r-1")]));
    assert_eq!(fast.unwrap().headers()[X_REQUEST_ID], "r-1");
    // Counted like any other read: both paths above, and these two.
    let text = st.metrics.render(0);
    assert!(
        text.contains(
            "vouch_http_requests_total{route=\"metadata\",method=\"GET\",status=\"200\"} 6"
        ),
        "{text}"
    );
    assert!(text.contains("status=\"304\"} 2"), "{text}");

    // Everything else takes the full path.
    for r in [
        req(Method::POST, targets, &[]),
        req(Method::DELETE, targets, &[]),
        req(
            Method::GET,
            "/v2/example.com/app/_trust/tuf/1.targets.json",
            &[],
        ),
        req(
            Method::GET,
            &format!("/v2/example.com/app/_trust/tuf/targets.{sha}.json"),
            &[],
        ),
        req(Method::GET, "/v2/example.com/app/_trust/tuf/root.json", &[]),
        req(
            Method::GET,
            "/v2/example.com/other/_trust/tuf/targets.json",
            &[],
        ),
        req(
            Method::GET,
            "/v2/example.com/app/_trust/tuf/timestamp.key",
            &[],
        ),
        req(Method::GET, "/v2/Bad/_trust/tuf/targets.json", &[]),
        req(Method::GET, targets, &[("authorization", "Bearer wrong")]),
    ] {
        assert!(
            serve_cached(&st, &r).is_none(),
            "{} {}",
            r.method(),
            r.uri()
        );
    }
    // An online role is served from the cache only while nothing is due for re-signing,
    // which this service has not checked yet.
    let ts = CachedFile::new("timestamp".into(), &sha, bytes);
    st.cache
        .insert(st.cache.generation(), writes, "example.com/app", ts);
    let r = req(
        Method::GET,
        "/v2/example.com/app/_trust/tuf/timestamp.json",
        &[],
    );
    assert!(serve_cached(&st, &r).is_none());
    // A full in-flight cap: the full path answers 503.
    let held = st
        .capacity
        .in_flight
        .clone()
        .try_acquire_many_owned(st.capacity.in_flight.available_permits() as u32);
    assert!(serve_cached(&st, &req(Method::GET, targets, &[])).is_none());
    drop(held);
    assert!(serve_cached(&st, &req(Method::GET, targets, &[])).is_some());
    // A publish or delete drops the entry at once.
    st.cache.invalidate("example.com/app");
    assert!(serve_cached(&st, &req(Method::GET, targets, &[])).is_none());
}

#[tokio::test]
async fn cached_reads_need_a_token_without_anonymous_pull() {
    let dir = tempfile::tempdir().unwrap();
    let (st, token) = state(dir.path(), |c| c.auth.anonymous_pull = false);
    let bytes = b"{}".to_vec();
    let f = CachedFile::new("targets".into(), &"0".repeat(64), bytes);
    st.cache.insert(
        st.cache.generation(),
        st.service.write_generation(),
        "example.com/app",
        f,
    );
    let get = |auth: Option<&str>| {
        let mut b = Request::builder().uri("/v2/example.com/app/_trust/tuf/targets.json");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::empty()).unwrap()
    };
    assert!(serve_cached(&st, &get(None)).is_none());
    let r = app(st.clone()).oneshot(get(None)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let ok = serve_cached(&st, &get(Some(&format!("Bearer {token}"))));
    assert_eq!(ok.unwrap().status(), StatusCode::OK);
}

/// The `vouch_read_cache_bytes` gauge.
fn cache_bytes(m: &Metrics) -> usize {
    let text = m.render(0);
    text.lines()
        .find_map(|l| l.strip_prefix("vouch_read_cache_bytes "))
        .expect("no vouch_read_cache_bytes")
        .parse()
        .unwrap()
}

#[test]
fn the_read_cache_is_bounded_in_bytes_and_releases_expired_files() {
    let metrics = Arc::new(Metrics::default());
    let budget = 64 * 1024;
    let cache = ReadCache::new(budget, metrics.clone());
    let file = |n: usize| CachedFile::new("targets".into(), &"0".repeat(64), vec![b'x'; n]);
    let insert = |gun: &str, n: usize| cache.insert(cache.generation(), 0, gun, file(n));

    // Larger than its share of the budget (a sixteenth): served, never cached.
    insert("example.com/big", budget / 16);
    assert!(cache.get("example.com/big", "targets", 0).is_none());
    assert_eq!(cache_bytes(&metrics), 0);

    // Files that fit one by one never take more than the budget: once it is full, the
    // files already held stay and new ones are not cached.
    for i in 0..40 {
        insert(&format!("example.com/app{i}"), 3000);
    }
    let held = cache_bytes(&metrics);
    assert!(held <= budget && held > budget - 4000, "{held}");
    assert!(cache.get("example.com/app0", "targets", 0).is_some());
    assert!(cache.get("example.com/app39", "targets", 0).is_none());
    // A newer read of a cached role replaces it, not adds to it.
    insert("example.com/app0", 3000);
    assert_eq!(cache_bytes(&metrics), held);
    // A write drops the repository's files and their bytes.
    cache.invalidate("example.com/app0");
    assert!(cache.get("example.com/app0", "targets", 0).is_none());
    assert!(cache_bytes(&metrics) < held);

    // Once past the TTL, a sweep releases every file, and the gauge says so.
    for roles in cache.lock().entries.values_mut() {
        for (at, _, _) in roles.values_mut() {
            *at = at.checked_sub(READ_CACHE_TTL).unwrap();
        }
    }
    cache.sweep();
    assert_eq!(cache_bytes(&metrics), 0);
    assert!(cache.lock().entries.is_empty());

    // A cache of 0 bytes holds nothing.
    let off = ReadCache::new(0, metrics.clone());
    off.insert(off.generation(), 0, "example.com/app", file(10));
    assert!(off.get("example.com/app", "targets", 0).is_none());
}

#[test]
fn the_response_budget_is_shared_capped_and_given_back() {
    let metrics = Arc::new(Metrics::default());
    let budget = ResponseBudget::new(100, metrics.clone());
    let pending = |m: &Metrics| {
        m.render(0)
            .lines()
            .find_map(|l| l.strip_prefix("vouch_pending_response_bytes "))
            .map(str::to_owned)
    };
    // Two responses that fit, and a third that does not.
    let a = budget.take(60).expect("fits");
    let b = budget.take(40).expect("fits");
    assert!(budget.take(1).is_none());
    assert_eq!(pending(&metrics).as_deref(), Some("100"));
    // An empty body costs nothing.
    assert!(budget.take(0).is_some());
    drop(a);
    assert!(budget.take(61).is_none());
    let c = budget.take(60).expect("given back");
    drop((b, c));
    assert_eq!(pending(&metrics).as_deref(), Some("0"));
    // Larger than the whole budget: served when nothing else waits, taking all of it.
    let all = budget
        .take(1000)
        .expect("larger than the budget, nothing waiting");
    assert!(budget.take(1).is_none());
    drop(all);
    assert_eq!(budget.available.load(Ordering::Acquire), 100);
}

#[tokio::test]
async fn own_bodies_hold_their_bytes_until_dropped_and_503_past_the_budget() {
    use http_body_util::BodyExt;

    let dir = tempfile::tempdir().unwrap();
    let (st, _) = state(dir.path(), |c| {
        c.capacity.max_pending_response_bytes = 1 << 20;
        c.capacity.retry_after_seconds = 3;
    });
    let app = app(st.clone());
    let get = || {
        Request::builder()
            .uri("/metrics")
            .body(Body::empty())
            .unwrap()
    };
    let budget = &st.capacity.responses;

    // A scrape's text waits under the budget until its body is read to the end.
    let r = app.clone().oneshot(get()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(budget.available.load(Ordering::Acquire) < 1 << 20);
    let text = r.into_body().collect().await.unwrap().to_bytes();
    assert!(text.starts_with(b"# HELP"));
    assert_eq!(budget.available.load(Ordering::Acquire), 1 << 20);

    // With the budget taken, the next one gets 503 with Retry-After, counted.
    let held = budget.take(usize::MAX).unwrap();
    let r = app.clone().oneshot(get()).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()[header::RETRY_AFTER], "3");
    assert!(st
        .metrics
        .render(0)
        .contains("vouch_overload_rejections_total{reason=\"response_bytes\"} 1"));
    // A body dropped unread (a closed connection) gives its bytes back too.
    drop(held);
    let r = app.clone().oneshot(get()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    drop(r);
    assert_eq!(budget.available.load(Ordering::Acquire), 1 << 20);
}

#[test]
fn route_classes() {
    let c = |m: Method, p: &str| route_class(&m, p);
    assert_eq!(
        c(Method::GET, "/v2/a/b/_trust/tuf/targets.json"),
        "metadata"
    );
    assert_eq!(c(Method::GET, "/v2/a/_trust/tuf/timestamp.key"), "key");
    assert_eq!(c(Method::POST, "/v2/a/_trust/tuf/"), "publish");
    assert_eq!(c(Method::DELETE, "/v2/a/_trust/tuf/"), "delete");
    assert_eq!(c(Method::GET, "/v2/_trust/changefeed"), "changefeed");
    assert_eq!(c(Method::GET, "/metrics"), "metrics");
    assert_eq!(c(Method::GET, "/nope"), "other");
    assert_eq!(c(Method::GET, "/v2/"), "base");
    assert_eq!(c(Method::GET, "/readyz"), "health");
    assert_eq!(c(Method::GET, "/v2/a/_trust/changefeed"), "changefeed");
    assert_eq!(c(Method::GET, "/v2/a/_trust/tuf/"), "other");
    assert_eq!(c(Method::GET, "/v2/a/_trust/other"), "other");
    // Invalid names are counted under the route they tried, as the path's shape says.
    assert_eq!(
        c(Method::GET, "/v2/Bad/_trust/tuf/targets.json"),
        "metadata"
    );
    assert_eq!(c(Method::GET, "/v2/a/_trust/tuf/targets.key"), "key");
    assert_eq!(c(Method::POST, "/v2/Bad/_trust/tuf/"), "publish");
    assert_eq!(c(Method::GET, "/v2/a/_trust/tuf/root.txt"), "metadata");
}
