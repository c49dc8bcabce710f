//! End-to-end: `vouch watch` (the server's event streams: order, cursor files, `--after`,
//! `--exec`, refusals) and `vouch webhooks` (listing, key, resuming a dead subscription)
//! against a real `vouch-server`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Run, Server, Vouch};

const GUN: &str = "registry.example.com/org/app";

/// Waits for `child` (stdout and stderr piped) for at most a minute.
fn finish(mut child: Child) -> Run {
    let until = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "vouch watch did not finish: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `vouch ARGS…`, failing the test if it takes more than a minute.
fn run(v: &Vouch, args: &[&str]) -> Run {
    let child = v
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child)
}

/// The JSON lines `vouch watch --output json` printed.
fn events(r: &Run) -> Vec<serde_json::Value> {
    r.ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn ids(events: &[serde_json::Value]) -> Vec<u64> {
    events.iter().map(|e| e["id"].as_u64().unwrap()).collect()
}

/// The version of `role` an event wrote.
fn role_version(event: &serde_json::Value, role: &str) -> u64 {
    event["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == role)
        .unwrap_or_else(|| panic!("no {role} in {event}"))["version"]
        .as_u64()
        .unwrap()
}

fn token_sha256(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn watch_prints_publishes_in_order_and_resumes_from_its_cursor_file() {
    let server = Server::start();
    let v = Vouch::new(&server);
    let dir = tempfile::tempdir().unwrap();
    let cursor = dir.path().join("app.cursor");
    let cursor_arg = cursor.to_str().unwrap();
    v.run(&["init", GUN]).ok();

    // Started before two more publishes: the first from the feed, the others live.
    let watch = v
        .command(&[
            "--output",
            "json",
            "watch",
            GUN,
            "--after",
            "0",
            "--count",
            "3",
            "--cursor-file",
            cursor_arg,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    v.sign_digest(GUN, "v1", 1, None).ok();
    v.sign_digest(GUN, "v2", 2, None).ok();
    let first = events(&finish(watch));
    assert_eq!(first.len(), 3, "{first:?}");
    for e in &first {
        assert_eq!(e["kind"], "update", "{e}");
        assert_eq!(e["gun"], GUN, "{e}");
    }
    let first_ids = ids(&first);
    assert!(first_ids.windows(2).all(|w| w[0] < w[1]), "{first_ids:?}");
    let targets: Vec<u64> = first.iter().map(|e| role_version(e, "targets")).collect();
    assert_eq!(targets, [1, 2, 3]);
    let timestamps: Vec<u64> = first
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert!(timestamps.windows(2).all(|w| w[0] < w[1]), "{timestamps:?}");
    assert_eq!(
        std::fs::read_to_string(&cursor).unwrap().trim(),
        first_ids[2].to_string()
    );

    // Two publishes while nothing watches: the next run prints exactly those.
    v.sign_digest(GUN, "v3", 3, None).ok();
    v.sign_digest(GUN, "v4", 4, None).ok();
    let args = [
        "--output",
        "json",
        "watch",
        GUN,
        "--count",
        "2",
        "--cursor-file",
        cursor_arg,
    ];
    let second = events(&run(&v, &args));
    assert_eq!(second.len(), 2, "{second:?}");
    let targets: Vec<u64> = second.iter().map(|e| role_version(e, "targets")).collect();
    assert_eq!(targets, [4, 5]);
    assert!(ids(&second)[0] > first_ids[2]);
    assert_eq!(
        std::fs::read_to_string(&cursor).unwrap().trim(),
        ids(&second)[1].to_string()
    );

    // --after 0 replays from the beginning: the same events, the same bytes.
    let all = run(
        &v,
        &[
            "--output", "json", "watch", GUN, "--after", "0", "--count", "5",
        ],
    );
    let replayed = events(&all);
    assert_eq!(replayed, [first, second].concat());

    // The human line: time, kind, repository, version, roles, id.
    let text = run(&v, &["watch", GUN, "--after", "0", "--count", "1"]);
    let line = text.ok().trim().to_owned();
    let e = &replayed[0];
    assert!(
        line.starts_with(e["created_at"].as_str().unwrap())
            && line.contains(&format!("  update  {GUN}  v{}", e["version"]))
            && line.contains("targets=1")
            && line.ends_with(&format!("#{}", e["id"])),
        "{line}"
    );

    // A malformed cursor file is an error naming it.
    std::fs::write(&cursor, "seven\n").unwrap();
    run(&v, &args).fails(1, &[cursor_arg, "does not hold an event id"]);
}

#[test]
fn exec_gets_each_event_and_a_failure_keeps_the_cursor() {
    let server = Server::start();
    let v = Vouch::new(&server);
    let dir = tempfile::tempdir().unwrap();
    let cursor = dir.path().join("cursor");
    let log = dir.path().join("log");
    let cursor_arg = cursor.to_str().unwrap();
    // Event data reaches the command only through its input and environment.
    let exec = format!(
        "cat >> '{log}' && printf '%s|%s|%s|%s\\n' \"$VOUCH_EVENT_ID\" \"$VOUCH_EVENT_KIND\" \
         \"$VOUCH_EVENT_GUN\" \"$VOUCH_EVENT_VERSION\" >> '{log}'",
        log = log.display()
    );
    v.run(&["init", GUN]).ok();

    let printed = run(
        &v,
        &[
            "--output",
            "json",
            "watch",
            GUN,
            "--after",
            "0",
            "--count",
            "1",
            "--cursor-file",
            cursor_arg,
            "--exec",
            &exec,
        ],
    );
    let event = &events(&printed)[0];
    let id = event["id"].as_u64().unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = logged.lines().collect();
    assert_eq!(lines.len(), 2, "{logged}");
    assert_eq!(
        &serde_json::from_str::<serde_json::Value>(lines[0]).unwrap(),
        event
    );
    assert_eq!(
        lines[1],
        format!("{id}|update|{GUN}|{}", event["version"].as_u64().unwrap())
    );
    assert_eq!(
        std::fs::read_to_string(&cursor).unwrap().trim(),
        id.to_string()
    );

    // A failing command ends the watch before the cursor moves past its event.
    v.sign_digest(GUN, "v1", 1, None).ok();
    let failed = run(
        &v,
        &[
            "watch",
            GUN,
            "--cursor-file",
            cursor_arg,
            "--exec",
            "exit 3",
        ],
    );
    failed.fails(1, &["exit 3", "exited with status 3", "retried"]);
    assert_eq!(
        std::fs::read_to_string(&cursor).unwrap().trim(),
        id.to_string()
    );

    // The next run retries it.
    let retried = run(
        &v,
        &[
            "--output",
            "json",
            "watch",
            GUN,
            "--cursor-file",
            cursor_arg,
            "--count",
            "1",
            "--exec",
            &exec,
        ],
    );
    let event = &events(&retried)[0];
    assert_eq!(role_version(event, "targets"), 2);
    assert!(event["id"].as_u64().unwrap() > id);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged.lines().count(), 4, "{logged}");
    assert!(logged.ends_with(&format!("|update|{GUN}|{}\n", event["version"])));
    assert_eq!(
        std::fs::read_to_string(&cursor).unwrap().trim(),
        event["id"].to_string()
    );
}

#[test]
fn every_repository_needs_a_wildcard_scope() {
    let scoped = "a-token-for-one-organisation";
    let server = Server::start_with_config(&format!(
        "[[auth.tokens]]\nname = \"org\"\nsha256 = \"{}\"\nscopes = [\"registry.example.com/org/*:pull,push\"]\n",
        token_sha256(scoped)
    ));
    let admin = Vouch::new(&server);
    admin.run(&["init", GUN]).ok();
    let mut v = admin.elsewhere();
    v.token = Some(scoped.to_owned());

    run(&v, &["watch"]).fails(
        1,
        &[
            "the server refused the event stream of every repository",
            "does not grant pull on every repository (a * scope)",
            "HTTP 403",
        ],
    );
    run(&v, &["webhooks"]).fails(1, &["does not grant pull on every repository"]);
    // Its own repository's stream is allowed; the admin token sees every repository's.
    let own = run(
        &v,
        &[
            "--output", "json", "watch", GUN, "--after", "0", "--count", "1",
        ],
    );
    assert_eq!(events(&own)[0]["gun"], GUN);
    let all = run(
        &admin,
        &["--output", "json", "watch", "--after", "0", "--count", "1"],
    );
    assert_eq!(events(&all), events(&own));
    // No token at all.
    let mut anonymous = admin.elsewhere();
    anonymous.token = None;
    run(&anonymous, &["watch"]).fails(1, &["asks for a token", "HTTP 401"]);
}

/// Answers one webhook delivery with 204 and returns its head.
fn receive_one(listener: std::net::TcpListener) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        stream
            .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        head
    })
}

/// Polls `vouch webhooks list --output json` until subscription `bot` has `status`.
fn wait_for_status(v: &Vouch, status: &str) -> serde_json::Value {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let listing = v.run(&["--output", "json", "webhooks", "list"]).json();
        if listing["subscriptions"][0]["status"] == status {
            return listing;
        }
        assert!(Instant::now() < until, "never {status}: {listing}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn webhooks_list_key_and_resume() {
    // A receiver that is not there yet: the first delivery fails and, with one attempt
    // allowed, the subscription goes dead.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let server = Server::start_with_config(&format!(
        "[webhooks]\nallow_private_addresses = true\nallow_http = true\nmax_attempts = 1\n\
         [[webhooks.subscriptions]]\nname = \"bot\"\nurl = \"http://127.0.0.1:{port}/hook\"\n"
    ));
    let v = Vouch::new(&server);

    let key = v.run(&["webhooks", "key"]).ok().trim().to_owned();
    assert!(key.starts_with("whpk_"), "{key}");
    assert!(vouch_verifier::webhook::VerifyKey::parse(&key).is_ok());

    let listing = v.run(&["--output", "json", "webhooks"]).json();
    assert_eq!(listing["public_key"], key.as_str());
    assert_eq!(listing["subscriptions"][0]["name"], "bot");
    // Wait until the subscription has a stored cursor (it starts at the newest event).
    let until = Instant::now() + Duration::from_secs(60);
    while v.run(&["--output", "json", "webhooks"]).json()["subscriptions"][0]["status"] == "new" {
        assert!(Instant::now() < until, "the subscription never started");
        std::thread::sleep(Duration::from_millis(200));
    }

    v.run(&["init", GUN]).ok();
    let dead = wait_for_status(&v, "dead");
    let sub = &dead["subscriptions"][0];
    assert_eq!(sub["attempts"], 1, "{dead}");
    assert_eq!(sub["lag"], 1, "{dead}");
    assert!(
        sub["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{dead}"
    );
    let table = v.run(&["webhooks", "list"]).ok().to_owned();
    let row = table.lines().find(|l| l.starts_with("bot ")).unwrap();
    assert!(row.contains("  dead  "), "{table}");
    assert!(table.contains(&format!("public key: {key}")), "{table}");
    assert!(table.starts_with("NAME  "), "{table}");

    // Unknown subscriptions are named; resuming needs no more than the admin token.
    v.run(&["webhooks", "resume", "nobody"])
        .fails(1, &["no webhook subscription \"nobody\"", "404"]);

    // The receiver is up now; resuming delivers the event that failed.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let received = receive_one(listener);
    let out = v.run(&["webhooks", "resume", "bot"]);
    assert!(
        out.ok().contains("resumed webhook subscription bot"),
        "{out:?}"
    );
    let head = received.join().unwrap().to_ascii_lowercase();
    let cursor = sub["cursor"].as_i64().unwrap();
    assert!(
        head.starts_with("post /hook http/1.1")
            && head.contains(&format!("webhook-id: vouch-{}\r\n", cursor + 1)),
        "{head}"
    );
    let active = wait_for_status(&v, "active");
    let sub = &active["subscriptions"][0];
    assert_eq!(sub["lag"], 0, "{active}");
    assert_eq!(sub["cursor"], cursor + 1, "{active}");
    assert!(sub["last_delivered_at"].is_string(), "{active}");
}

#[test]
fn ctrl_c_ends_a_watch_cleanly() {
    let server = Server::start();
    let v = Vouch::new(&server);
    v.run(&["init", GUN]).ok();
    let mut child = v
        .command(&["watch", GUN, "--after", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it printed the first event it is connected, waiting on an idle stream.
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains(&format!("  update  {GUN}  ")), "{first}");
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let run = finish(child);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
