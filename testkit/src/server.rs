//! A real `vouch-server` process: started on a free loopback port (or a given address) with a
//! data directory the test owns, its URL read from the first line it prints and its admin
//! token from `admin.token` in the data directory; killed (SIGKILL) or terminated (SIGTERM)
//! at will, and killed when dropped.
//!
//! [`Launch`] says how to start the process; [`ServerProcess`] is the running process. The
//! binary is the `vouch-server` cargo built in the test binary's target directory
//! ([`server_binary`]); `cargo test --workspace` builds it, and with `-p` of another crate
//! alone run `cargo build -p vouch-server` first. The data directory, and any configuration
//! file, belong to the caller, so a restart can reuse them.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The `vouch-server` binary cargo built beside the running test binary: a test runs as
/// `target/<profile>/deps/<test>-<hash>`, the binaries are in `target/<profile>/`.
///
/// Panics, saying how to build it, when it is not there.
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the running test binary");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps");
    let p = dir.join(format!("vouch-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p vouch-server` (cargo test --workspace builds it)",
        p.display()
    );
    p
}

/// How to start a `vouch-server` process: `--listen 127.0.0.1:0 --data-dir DIR`, logging
/// warnings to the test's stderr, unless told otherwise.
pub struct Launch {
    binary: Option<PathBuf>,
    data_dir: PathBuf,
    listen: String,
    config: Option<PathBuf>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stderr: Option<Stdio>,
}

impl Launch {
    /// A server keeping its data in `data_dir` (created by the server when missing).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Launch {
            binary: None,
            data_dir: data_dir.into(),
            listen: "127.0.0.1:0".to_owned(),
            config: None,
            args: Vec::new(),
            env: vec![("VOUCH_LOG".into(), "warn".into())],
            stderr: None,
        }
    }

    /// Runs this binary instead of [`server_binary`].
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Listens on `addr` (`host:port`) instead of a free loopback port.
    pub fn listen(mut self, addr: &str) -> Self {
        addr.clone_into(&mut self.listen);
        self
    }

    /// Reads this configuration file (`--config`).
    pub fn config(mut self, file: impl Into<PathBuf>) -> Self {
        self.config = Some(file.into());
        self
    }

    /// Adds command-line arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable (after the default `VOUCH_LOG=warn`, so it may replace it).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets environment variables, as [`Launch::env`] does each.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Sends the server's stderr (its log) here instead of the test's stderr.
    pub fn stderr(mut self, stderr: impl Into<Stdio>) -> Self {
        self.stderr = Some(stderr.into());
        self
    }

    /// Starts the process and waits until it listens: its first line names its URL.
    pub fn start(self) -> ServerProcess {
        // The tests' HTTP clients need a crypto provider chosen once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let binary = self.binary.unwrap_or_else(server_binary);
        let mut cmd = Command::new(&binary);
        cmd.arg("--listen")
            .arg(&self.listen)
            .arg("--data-dir")
            .arg(&self.data_dir);
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.args(&self.args)
            .envs(self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(self.stderr.unwrap_or_else(Stdio::inherit));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = lines
            .next()
            .expect("vouch-server printed nothing")
            .expect("vouch-server's stdout");
        let base = base_url(&first).unwrap_or_else(|| panic!("unexpected first line: {first}"));
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let token_file = self.data_dir.join("admin.token");
        let admin_token = std::fs::read_to_string(&token_file)
            .unwrap_or_else(|e| panic!("{}: {e}", token_file.display()))
            .trim()
            .to_owned();
        ServerProcess {
            child: Some(child),
            base,
            admin_token,
        }
    }
}

/// The URL in the server's first line, `vouch-server listening on http://127.0.0.1:PORT`.
fn base_url(line: &str) -> Option<String> {
    let at = line.find("http://").or_else(|| line.find("https://"))?;
    Some(line[at..].trim().to_owned())
}

/// A running `vouch-server` process, killed when dropped.
pub struct ServerProcess {
    child: Option<Child>,
    /// The URL it serves: `http://127.0.0.1:PORT` (or `https://` with TLS configured).
    pub base: String,
    /// The admin token it wrote to its data directory.
    pub admin_token: String,
}

impl ServerProcess {
    /// The address it listens on, `host:port` (the base URL without its scheme).
    pub fn addr(&self) -> &str {
        self.base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, addr)| addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        let port = self.addr().rsplit(':').next().unwrap_or_default();
        port.parse()
            .unwrap_or_else(|e| panic!("port of {}: {e}", self.base))
    }

    /// SIGKILL and wait: no graceful shutdown, no flushing. Nothing when already stopped.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits: returns whether the process exited successfully.
    pub fn terminate(&mut self) -> bool {
        let mut c = self.child.take().expect("server not running");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {}: {status}", c.id());
        c.wait().expect("wait for vouch-server").success()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::base_url;

    #[test]
    fn the_base_url_is_read_from_the_first_line() {
        assert_eq!(
            base_url("vouch-server listening on http://127.0.0.1:4321\n").as_deref(),
            Some("http://127.0.0.1:4321")
        );
        assert_eq!(
            base_url("vouch-server listening on https://127.0.0.1:9").as_deref(),
            Some("https://127.0.0.1:9")
        );
        assert_eq!(base_url("something else"), None);
    }
}
