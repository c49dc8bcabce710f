//! `vouch watch [GUN]`: prints the server's trust-change events as they arrive, the
//! repository's stream or, without a GUN, every repository's (which needs a token with a
//! `*` scope), and optionally runs a command per event.
//!
//! The stream is `vouch-verifier`'s [`Follower`]: it reconnects with backoff after a lost
//! connection, a server restart or a `reconnect` notice, and resumes after the last event
//! handled, so nothing is skipped or repeated while the process runs. Across runs,
//! `--cursor-file` keeps that id: it is written (aside, then renamed over the file) after
//! each event is handled, and read at start.
//!
//! Handling one event is, in order: print it (a line, or with `--output json` the event as
//! [`Event::encode`] writes it, one object per line), run `--exec` (which must exit 0), then
//! move the cursor. A failing `--exec` ends the watch with an error before the cursor moves,
//! so a supervisor that restarts `vouch watch` retries that event: delivery to the command is
//! at least once, in order.
//!
//! What it is not: trust. An event only says that a repository changed; what to trust is
//! still decided by `vouch verify` (or any TUF client), which checks the new metadata.
//!
//! Ctrl-C (or SIGTERM) ends the watch with status 0: at once, or after the event being
//! handled (its command included) is done. A second Ctrl-C ends it at once (status 130).

use std::cell::RefCell;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use vouch_tuf::api::event::{Event, EventKind};
use vouch_verifier::server::{Connection, Disconnect, Follower, ServerError};

use crate::context::Context;
use crate::output::{terminal_safe, Format};
use crate::remote::{self, EVERY_REPOSITORY};

/// `vouch watch`
///
/// Example: vouch watch registry.example.com/org/app --cursor-file app.cursor --exec ./deploy.sh
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image repository to watch; without one, every repository (which needs a token
    /// with a `*` scope).
    pub gun: Option<String>,
    /// Start after this event id (0: from the oldest event the server keeps); without it,
    /// only events from now on. A --cursor-file that exists takes precedence.
    #[arg(long, value_name = "ID")]
    pub after: Option<u64>,
    /// Resume after the id in this file if it exists, and write each handled event's id
    /// to it (atomically), so that a restarted watch continues exactly where this one
    /// stopped.
    #[arg(long, value_name = "FILE")]
    pub cursor_file: Option<PathBuf>,
    /// Run this command (with `sh -c`) for each event, the event's JSON on its standard
    /// input and VOUCH_EVENT_ID, VOUCH_EVENT_KIND, VOUCH_EVENT_GUN and VOUCH_EVENT_VERSION
    /// in its environment. The cursor moves only after it exits 0; if it fails, the watch
    /// ends with an error (status 1) and the event is retried by the next run.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// Exit after this many events.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

/// How long after Ctrl-C the watch waits for the follower to stop by itself before it
/// exits (the follower notices its stop flag only between reads).
const STOP_GRACE: Duration = Duration::from_millis(300);

/// Runs `vouch watch`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let gun = args.gun.as_deref().map(super::parse_gun).transpose()?;
    let start = match &args.cursor_file {
        Some(file) => read_cursor(file)?.or(args.after),
        None => args.after,
    };
    let client = remote::server_client(ctx)?;
    let on = gun
        .as_ref()
        .map_or_else(|| EVERY_REPOSITORY.to_owned(), |g| g.to_string());
    let mut follower = Follower::new(&client, gun.as_ref(), start);
    // Held while an event is handled: Ctrl-C does not cut a command or a cursor write.
    let handling = Arc::new(Mutex::new(()));
    let stop = follower.stop_flag();
    on_interrupt(&stop, &handling)?;

    let failure: RefCell<Option<anyhow::Error>> = RefCell::new(None);
    let fail = |e: anyhow::Error| {
        *failure.borrow_mut() = Some(e);
        ControlFlow::Break(())
    };
    let mut handled = 0u64;
    let mut disconnected = false;
    follower.run(
        |event| {
            let _guard = handling.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = print(ctx.output, event) {
                return fail(e);
            }
            if let Some(cmd) = &args.exec {
                match exec(cmd, event) {
                    Ok(()) => {}
                    // The command was interrupted with us: stop, the cursor unmoved.
                    Err(_) if stop.load(Ordering::SeqCst) => return ControlFlow::Break(()),
                    Err(e) => return fail(e),
                }
            }
            if let Some(file) = &args.cursor_file {
                if let Err(e) = write_cursor(file, event.id) {
                    return fail(e);
                }
            }
            handled += 1;
            if args.count.is_some_and(|n| handled >= n) {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        },
        |state| match state {
            Connection::Connected { after } => {
                if disconnected {
                    disconnected = false;
                    let after = after.map_or_else(|| "now".to_owned(), |a| format!("event {a}"));
                    eprintln!(
                        "vouch: reconnected to {}; resuming after {after}",
                        ctx.server
                    );
                }
                ControlFlow::Continue(())
            }
            Connection::Disconnected { reason, retry_in } => {
                if let Some(e) = fatal(reason, &on) {
                    return fail(e);
                }
                disconnected = true;
                crate::output::warn(&format!(
                    "lost the event stream ({}); reconnecting in {:.1} s",
                    terminal_safe(&reason.to_string()),
                    retry_in.as_secs_f64()
                ));
                ControlFlow::Continue(())
            }
        },
    );
    match failure.into_inner() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Sets `stop` on Ctrl-C and SIGTERM, and exits with status 0 soon after unless the
/// follower has stopped by then, never while an event is being handled (`handling`). A
/// second signal exits at once with 130.
fn on_interrupt(stop: &Arc<AtomicBool>, handling: &Arc<Mutex<()>>) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM] {
        // The first registration exits only once the flag is already set: a second signal.
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())
            .context("cannot handle Ctrl-C")?;
        signal_hook::flag::register(signal, stop.clone()).context("cannot handle Ctrl-C")?;
    }
    let (stop, handling) = (stop.clone(), handling.clone());
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // The follower may be blocked reading an idle stream; give it a moment, then go.
        std::thread::sleep(STOP_GRACE);
        let _guard = handling.lock().unwrap_or_else(|e| e.into_inner());
        let _ = std::io::stdout().flush();
        std::process::exit(0);
    });
    Ok(())
}

/// The error that ends the watch when the stream could not be opened for `reason`, or
/// `None` when reconnecting may cure it: a refused token or a missing grant (on `on`), a
/// server without event streams (404), and other client errors are final; an unreachable,
/// busy (503) or failing server, a lost connection and a server's notice are retried.
fn fatal(reason: &Disconnect, on: &str) -> Option<anyhow::Error> {
    let Disconnect::Error(e) = reason else {
        return None;
    };
    match e {
        ServerError::Refused { what, refusal }
            if refusal.auth.is_some()
                || ((400..500).contains(&refusal.status)
                    && !matches!(refusal.status, 408 | 429)) =>
        {
            Some(remote::word(
                ServerError::Refused {
                    what: what.clone(),
                    refusal: refusal.clone(),
                },
                "pull",
                on,
            ))
        }
        ServerError::NotFound { what } => Some(anyhow!(
            "the server has no {what} (404 Not Found): is it a vouch server with event streams?"
        )),
        ServerError::Setup { .. } => Some(anyhow!("{e}")),
        _ => None,
    }
}

/// Prints `event` as `format` says, flushed.
fn print(format: Format, event: &Event) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            out.write_all(&event.encode())?;
            out.write_all(b"\n")?;
        }
        Format::Text => writeln!(out, "{}", line(event))?,
    }
    out.flush()?;
    Ok(())
}

/// One event for people: time, kind, repository, timestamp version, roles with their
/// versions, id. Text from the server is escaped.
fn line(e: &Event) -> String {
    let gun = terminal_safe(&e.gun);
    match e.kind {
        EventKind::Deletion => format!("{}  deletion  {gun}  #{}", e.created_at, e.id),
        EventKind::Update => {
            let roles: Vec<String> = e
                .roles
                .iter()
                .map(|(role, v)| format!("{}={v}", terminal_safe(role)))
                .collect();
            let roles = if roles.is_empty() {
                String::new()
            } else {
                format!("  {}", roles.join(" "))
            };
            format!(
                "{}  update  {gun}  v{}{roles}  #{}",
                e.created_at, e.version, e.id
            )
        }
    }
}

/// Runs `cmd` with `sh -c` for `event`: its JSON on standard input, its fields in the
/// environment (never in the command line, so nothing in an event is parsed by the shell).
/// Its standard output and error are ours.
fn exec(cmd: &str, event: &Event) -> anyhow::Result<()> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("VOUCH_EVENT_ID", event.id.to_string())
        .env("VOUCH_EVENT_KIND", event.kind.as_str())
        .env("VOUCH_EVENT_GUN", &event.gun)
        .env("VOUCH_EVENT_VERSION", event.version.to_string())
        .stdin(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run --exec {cmd:?}"))?;
    let mut json = event.encode();
    json.push(b'\n');
    let stdin = child.stdin.take();
    // Written aside, so a command that does not read its input cannot block us.
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            // A command that exits without reading its input is not an error.
            let _ = stdin.write_all(&json);
        }
    });
    let status = child
        .wait()
        .with_context(|| format!("cannot run --exec {cmd:?}"))?;
    let _ = writer.join();
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_owned(),
        };
        bail!(
            "--exec {cmd:?} {how} for event {} ({}): stopping; the event is retried when vouch watch runs again",
            event.id,
            terminal_safe(&event.gun)
        );
    }
    Ok(())
}

/// The id in cursor file `file`, `None` when there is no such file.
fn read_cursor(file: &Path) -> anyhow::Result<Option<u64>> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read cursor file {}", file.display()))
        }
    };
    text.trim().parse::<u64>().map(Some).map_err(|_| {
        anyhow!(
            "cursor file {} does not hold an event id (a number): fix or delete it",
            file.display()
        )
    })
}

/// Writes `id` to cursor file `file`: to a file beside it first, then renamed over it, so
/// the cursor file always holds a whole id.
fn write_cursor(file: &Path, id: u64) -> anyhow::Result<()> {
    let name = file
        .file_name()
        .with_context(|| format!("--cursor-file {} is not a file name", file.display()))?;
    let mut aside_name = std::ffi::OsString::from(".");
    aside_name.push(name);
    aside_name.push(".tmp");
    let aside = file.with_file_name(aside_name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&aside)?;
        writeln!(f, "{id}")?;
        f.sync_all()?;
        std::fs::rename(&aside, file)
    };
    write().with_context(|| format!("cannot write cursor file {}", file.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vouch_tuf::time::Timestamp;

    #[test]
    fn lines_show_what_changed_escaped() {
        let mut e = Event {
            id: 9,
            kind: EventKind::Update,
            gun: "example.com/app\u{1b}[2J".into(),
            version: 4,
            sha256: "ab".repeat(32),
            roles: vec![("targets".into(), 3), ("timestamp".into(), 4)],
            created_at: Timestamp::from_unix(0),
        };
        assert_eq!(
            line(&e),
            "1970-01-01T00:00:00Z  update  example.com/app\\u{001b}[2J  v4  targets=3 timestamp=4  #9"
        );
        e.kind = EventKind::Deletion;
        e.gun = "example.com/app".into();
        assert_eq!(
            line(&e),
            "1970-01-01T00:00:00Z  deletion  example.com/app  #9"
        );
    }

    #[test]
    fn cursor_files_round_trip_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cursor");
        assert_eq!(read_cursor(&f).unwrap(), None);
        write_cursor(&f, 42).unwrap();
        assert_eq!(read_cursor(&f).unwrap(), Some(42));
        write_cursor(&f, 43).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "43\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&f, "forty\n").unwrap();
        let e = read_cursor(&f).unwrap_err().to_string();
        assert!(
            e.contains(&f.display().to_string()) && e.contains("event id"),
            "{e}"
        );
    }
}
