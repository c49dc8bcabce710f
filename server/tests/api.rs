//! The HTTP API through a real listening server: the embedded default's files, reads by
//! version and checksum, cache headers, online keys, delete, and the changefeed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ClientRepo, Resp, Server};
use reqwest::StatusCode;
use vouch_tuf::json::Value;
use vouch_tuf::metadata::{Key, Metadata, Root, TimestampRole};
use vouch_tuf::types::TopLevelRole;

const GUN: &str = "localhost:5000/org/app";

fn published() -> (Server, ClientRepo) {
    common::server_with_repo(GUN)
}

#[test]
fn embedded_default_files_are_private() {
    let s = Server::start();
    for f in ["vouch.db", "kek", "admin.token", "admin.token.sha256"] {
        let p = s.data_dir.join(f);
        assert!(p.exists(), "{f} missing");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f} has mode {mode:o}");
        }
    }
    assert!(s.admin_token.starts_with("vouch_") && s.admin_token.len() > 40);
    // The token file holds the token; the server keeps only its hash.
    let hash = std::fs::read_to_string(s.data_dir.join("admin.token.sha256")).unwrap();
    assert!(!hash.contains(&s.admin_token));
    assert_eq!(s.get("/v2/").status, StatusCode::OK);
    assert_eq!(s.get("/healthz").status, StatusCode::OK);
    assert_eq!(s.get("/readyz").status, StatusCode::OK);
}

#[test]
fn reads_by_name_version_and_checksum() {
    let (s, c) = published();
    let r = s.publish(GUN, &[("targets", c.signed_targets(2, &["v1", "v2"]))]);
    assert_eq!(r.status, StatusCode::OK);

    let current = s.get(&format!("/v2/{GUN}/_trust/tuf/targets.json"));
    assert_eq!(current.status, StatusCode::OK);
    assert_eq!(current.body, c.signed_targets(2, &["v1", "v2"]));
    assert_eq!(current.headers["content-type"], "application/json");
    assert_eq!(
        current.headers["cache-control"],
        "public, max-age=30, must-revalidate"
    );

    let v1 = s.get(&format!("/v2/{GUN}/_trust/tuf/1.targets.json"));
    assert_eq!(v1.body, c.signed_targets(1, &["v1"]));
    assert_eq!(
        v1.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );

    let sha = vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, &v1.body));
    let by_sum = s.get(&format!("/v2/{GUN}/_trust/tuf/targets.{sha}.json"));
    assert_eq!(by_sum.status, StatusCode::OK);
    assert_eq!(by_sum.body, v1.body);
    assert_eq!(by_sum.headers["etag"], format!("\"{sha}\"").as_str());

    let ts = s.get(&format!("/v2/{GUN}/_trust/tuf/timestamp.json"));
    assert_eq!(ts.headers["cache-control"], "no-cache");
    // Conditional GET.
    let etag = ts.headers["etag"].clone();
    let again = Resp::from(
        s.client
            .get(s.tuf_url(GUN, "timestamp.json"))
            .header("if-none-match", etag)
            .send()
            .unwrap(),
    );
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);

    // Roots stay retrievable by version forever.
    let root1 = s.get(&format!("/v2/{GUN}/_trust/tuf/1.root.json"));
    assert_eq!(root1.body, c.signed_root(1));

    // Missing things are 404 in the error shape; wrong methods 405.
    let missing = s.get(&format!("/v2/{GUN}/_trust/tuf/9.targets.json"));
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "METADATA_NOT_FOUND");
    assert_eq!(
        s.get("/v2/example.com/none/_trust/tuf/root.json").status,
        StatusCode::NOT_FOUND
    );
    let put = Resp::from(s.client.put(s.tuf_url(GUN, "root.json")).send().unwrap());
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(s.get("/nowhere").status, StatusCode::NOT_FOUND);
}

#[test]
fn online_key_rotation() {
    let (s, c) = published();
    let old = s.online_key(GUN, "timestamp");
    assert_eq!(old, c.timestamp_key);
    // Reading does not create or change anything.
    assert_eq!(s.online_key(GUN, "timestamp"), old);

    let rotated = Resp::from(
        s.client
            .post(s.tuf_url(GUN, "timestamp.key"))
            .bearer_auth(&s.admin_token)
            .send()
            .unwrap(),
    );
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text());
    let new = Key::from_value(rotated.json()).unwrap();
    assert_ne!(new, old);
    assert_eq!(s.online_key(GUN, "timestamp"), new);
    // Rotating again before a root lists the new key answers the same pending key: a push
    // token cannot pile up keys that every publish would read.
    for _ in 0..3 {
        let again = Resp::from(
            s.client
                .post(s.tuf_url(GUN, "timestamp.key"))
                .bearer_auth(&s.admin_token)
                .send()
                .unwrap(),
        );
        assert_eq!(again.status, StatusCode::OK, "{}", again.text());
        assert_eq!(Key::from_value(again.json()).unwrap(), new);
    }
    // Until a root lists the new key, timestamps are still signed by the old one.
    let r = s.publish(GUN, &[("targets", c.signed_targets(2, &["v2"]))]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let root1 = Metadata::<Root>::from_bytes(&s.current(GUN, "root").unwrap()).unwrap();
    let ts = Metadata::<TimestampRole>::from_bytes(&s.current(GUN, "timestamp").unwrap()).unwrap();
    root1
        .signed()
        .verify_role(TopLevelRole::Timestamp, &ts)
        .unwrap();

    // Root v2 lists the new key: the server signs with it from then on.
    let mut root2 = c.root(2);
    root2.remove_key(TopLevelRole::Timestamp, &old.key_id());
    root2.add_key(TopLevelRole::Timestamp, new.clone());
    let root2_md = Metadata::signed_by(root2, &[&c.root_key]).unwrap();
    let r = s.publish(GUN, &[("root", root2_md.to_bytes())]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let ts = Metadata::<TimestampRole>::from_bytes(&s.current(GUN, "timestamp").unwrap()).unwrap();
    root2_md
        .signed()
        .verify_role(TopLevelRole::Timestamp, &ts)
        .unwrap();
    assert!(root1
        .signed()
        .verify_role(TopLevelRole::Timestamp, &ts)
        .is_err());
}

fn feed(s: &Server, path: &str) -> Vec<(i64, String, String)> {
    let r = s.get_admin(path);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    let m = v.as_object().unwrap();
    let records = m["records"].as_array().unwrap();
    assert_eq!(m["count"].as_u64().unwrap() as usize, records.len());
    records
        .iter()
        .map(|rec| {
            let o = rec.as_object().unwrap();
            let s = |k: &str| o[k].as_str().unwrap().to_owned();
            (s("ID").parse().unwrap(), s("GUN"), s("Category"))
        })
        .collect()
}

#[test]
fn changefeed_pages_both_ways_and_records_deletion() {
    let (s, c) = published();
    let other = "example.com/other";
    let c2 = ClientRepo::new(&s, other);
    let r = s.publish(
        other,
        &[
            ("root", c2.signed_root(1)),
            ("targets", c2.signed_targets(1, &["x"])),
        ],
    );
    assert_eq!(r.status, StatusCode::OK);
    for v in 2..=6u64 {
        assert_eq!(
            s.publish(GUN, &[("targets", c.signed_targets(v, &["v1"]))])
                .status,
            StatusCode::OK
        );
    }
    // Delete `other`: its data is gone, the feed says so.
    let del = Resp::from(
        s.client
            .delete(s.tuf_url(other, ""))
            .bearer_auth(&s.admin_token)
            .send()
            .unwrap(),
    );
    assert_eq!(del.status, StatusCode::OK, "{}", del.text());
    assert_eq!(
        s.get(&format!("/v2/{other}/_trust/tuf/root.json")).status,
        StatusCode::NOT_FOUND
    );
    let again = Resp::from(
        s.client
            .delete(s.tuf_url(other, ""))
            .bearer_auth(&s.admin_token)
            .send()
            .unwrap(),
    );
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    let all = feed(&s, "/v2/_trust/changefeed?change_id=0&records=100");
    assert_eq!(all.len(), 8);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(all.last().unwrap().1, other);
    assert_eq!(all.last().unwrap().2, "deletion");

    // Forward pages of 3 from the start cover everything once.
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        let page = feed(
            &s,
            &format!("/v2/_trust/changefeed?change_id={cursor}&records=3"),
        );
        if page.is_empty() {
            break;
        }
        cursor = page.last().unwrap().0;
        seen.extend(page);
        assert!(seen.len() <= all.len());
    }
    assert_eq!(seen, all);
    // Backward from the newest.
    let back = feed(&s, "/v2/_trust/changefeed?records=-3");
    let newest: Vec<_> = all.iter().rev().take(3).cloned().collect();
    assert_eq!(back, newest);
    let back2 = feed(
        &s,
        &format!("/v2/_trust/changefeed?change_id={}&records=-3", back[2].0),
    );
    let next: Vec<_> = all.iter().rev().skip(3).take(3).cloned().collect();
    assert_eq!(back2, next);
    // One GUN's feed.
    let mine = feed(&s, &format!("/v2/{GUN}/_trust/changefeed?records=100"));
    assert_eq!(mine.len(), 6);
    assert!(mine.iter().all(|r| r.1 == GUN && r.2 == "update"));
    // Bad parameters.
    assert_eq!(
        s.get_admin("/v2/_trust/changefeed?change_id=abc").status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.get_admin("/v2/_trust/changefeed?records=0").status,
        StatusCode::BAD_REQUEST
    );
}

#[test]
fn health_endpoints_answer_json() {
    let s = Server::start();
    let h = s.get("/healthz");
    assert_eq!(h.json().as_object().unwrap()["status"], Value::from("ok"));
    let r = s.get("/readyz");
    assert_eq!(
        r.json().as_object().unwrap()["status"],
        Value::from("ready")
    );

    // The database file moved away under the running server (a lost volume, a mistaken
    // cleanup): still alive, no longer ready, until it is back.
    let db = s.data_dir.join("vouch.db");
    let aside = s.data_dir.join("vouch.db.aside");
    std::fs::rename(&db, &aside).unwrap();
    let r = s.get("/readyz");
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.error_code(), "UNAVAILABLE");
    assert_eq!(s.get("/healthz").status, StatusCode::OK);
    // A different file in its place is not the database the server has open.
    std::fs::copy(&aside, &db).unwrap();
    assert_eq!(s.get("/readyz").status, StatusCode::SERVICE_UNAVAILABLE);
    std::fs::remove_file(&db).unwrap();
    std::fs::rename(&aside, &db).unwrap();
    assert_eq!(s.get("/readyz").status, StatusCode::OK);
}

#[test]
fn settings_that_cannot_work_exit_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let cases = [
        ("[timeouts]\nrequest_seconds = 0\n", "request_seconds"),
        ("log = \"info,vouch_server=loudly\"\n", "log"),
        (
            &*format!(
                "[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
                missing.join("cert.pem"),
                missing.join("key.pem")
            ),
            "cert.pem",
        ),
        (
            &*format!(
                "[auth.jwt]\nissuer = \"auth\"\n[[auth.jwt.keys]]\nfile = {:?}\n",
                missing.join("auth.pub.pem")
            ),
            "auth.pub.pem",
        ),
        ("[auth]\nrealm = 7\n", "realm"),
    ];
    for (i, (toml, named)) in cases.into_iter().enumerate() {
        let config = dir.path().join(format!("config-{i}.toml"));
        std::fs::write(&config, toml).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vouch-server"))
            .arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join(format!("data-{i}")))
            .env_remove("VOUCH_LOG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{toml}: {stderr}");
        assert!(stderr.contains(named), "{toml}: {stderr}");
    }
}

#[test]
fn sigterm_shuts_down_cleanly_and_keeps_data() {
    let (mut s, c) = published();
    assert!(
        s.terminate(),
        "vouch-server did not exit successfully on SIGTERM"
    );
    s.restart();
    assert_eq!(
        s.current(GUN, "targets").unwrap(),
        c.signed_targets(1, &["v1"])
    );
}
