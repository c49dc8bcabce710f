//! End-to-end harness: a real `vouch-server` process on a free loopback port with its own
//! data directory, and the real `vouch` binary run against it with a trust directory of its
//! own.
//!
//! The server process is `vouch-testkit`'s; the server binary is the one cargo built beside
//! `vouch` (`cargo test --workspace` builds it; with `-p vouch-cli` alone, run
//! `cargo build -p vouch-server` first).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use vouch_testkit::server::{Launch, ServerProcess};

/// A digest for tests, distinct per `n`.
pub fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// A running server with a fresh data directory of its own.
pub struct Server {
    process: ServerProcess,
    pub base: String,
    pub data_dir: PathBuf,
    pub admin_token: String,
    _tmp: tempfile::TempDir,
}

impl Server {
    /// Starts a server with a fresh data directory.
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// Starts a server with a fresh data directory and extra environment (e.g. TLS files).
    pub fn start_with_env(env: &[(&str, &Path)]) -> Self {
        Self::spawn(env, None, None)
    }

    /// Starts a server that logs every request it serves (method and path) to `log`.
    pub fn start_logging_requests(log: &Path) -> Self {
        Self::spawn(&[], Some(log), None)
    }

    /// Starts a server with a fresh data directory and this TOML configuration file.
    pub fn start_with_config(toml: &str) -> Self {
        Self::spawn(&[], None, Some(toml))
    }

    fn spawn(env: &[(&str, &Path)], log: Option<&Path>, config: Option<&str>) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut launch = Launch::new(&data_dir).envs(env.iter().copied());
        if let Some(toml) = config {
            let file = tmp.path().join("vouch-server.toml");
            std::fs::write(&file, toml).unwrap();
            launch = launch.config(file);
        }
        if let Some(path) = log {
            launch = launch
                .env("VOUCH_LOG", "warn,vouch_server=debug")
                .env("NO_COLOR", "1")
                .stderr(std::fs::File::create(path).unwrap());
        }
        let process = launch.start();
        Server {
            base: process.base.clone(),
            admin_token: process.admin_token.clone(),
            process,
            data_dir,
            _tmp: tmp,
        }
    }

    /// SIGKILL and wait.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// What one `vouch` run did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "vouch failed: {self:#?}");
        &self.stdout
    }

    /// Asserts exit status `code` with exactly one line on stderr, `vouch: …`, containing
    /// every one of `needles`; returns that line.
    pub fn fails(&self, code: i32, needles: &[&str]) -> &str {
        assert_eq!(self.code, code, "unexpected exit status: {self:#?}");
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.starts_with("vouch: warning:"))
            .collect();
        assert_eq!(lines.len(), 1, "expected one error line: {self:#?}");
        let line = lines[0];
        assert!(line.starts_with("vouch: "), "{line}");
        for n in needles {
            assert!(line.contains(n), "{line:?} lacks {n:?}");
        }
        line
    }

    /// Stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// The `vouch` binary with a trust directory, pointed at a server.
pub struct Vouch {
    pub server: String,
    pub token: Option<String>,
    pub trust_dir: PathBuf,
    pub env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl Vouch {
    /// A fresh trust directory using `server` with its admin token and test passphrases.
    pub fn new(server: &Server) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        Vouch {
            server: server.base.clone(),
            token: Some(server.admin_token.clone()),
            trust_dir: tmp.path().join("trust"),
            env: vec![
                ("VOUCH_KDF".into(), "fast-insecure-for-tests".into()),
                ("VOUCH_ROOT_PASSPHRASE".into(), "root secret".into()),
                ("VOUCH_TARGETS_PASSPHRASE".into(), "targets secret".into()),
                ("VOUCH_SNAPSHOT_PASSPHRASE".into(), "snapshot secret".into()),
            ],
            _tmp: Some(tmp),
        }
    }

    /// The same settings, another trust directory (another machine).
    pub fn elsewhere(&self) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        Vouch {
            server: self.server.clone(),
            token: self.token.clone(),
            trust_dir: tmp.path().join("trust"),
            env: self.env.clone(),
            _tmp: Some(tmp),
        }
    }

    /// Sets (or with an empty value, removes) an environment variable.
    pub fn set(&mut self, k: &str, v: &str) {
        self.env.retain(|(key, _)| key != k);
        if !v.is_empty() {
            self.env.push((k.into(), v.into()));
        }
    }

    /// The command, not yet run: a clean environment, no terminal.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.trust_dir.parent().unwrap())
            .env("VOUCH_SERVER", &self.server)
            .env("VOUCH_TRUST_DIR", &self.trust_dir)
            .stdin(Stdio::null())
            .args(args);
        if let Some(t) = &self.token {
            cmd.env("VOUCH_TOKEN", t);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// The private key `keyid` of this trust directory, decrypted with `passphrase` (for
    /// tests that sign by hand what the CLI would refuse to).
    pub fn private_key(&self, keyid: &str, passphrase: &[u8]) -> vouch_tuf::crypto::PrivateKey {
        let file = self.trust_dir.join("private").join(format!("{keyid}.key"));
        let text = std::fs::read_to_string(&file).unwrap();
        let pem = &text[text.find("-----BEGIN ENCRYPTED PRIVATE KEY-----").unwrap()..];
        vouch_tuf::crypto::PrivateKey::from_encrypted_pem(pem, passphrase).unwrap()
    }

    /// Where this trust directory caches the trusted root of `gun` (one directory per
    /// repository, percent-encoded, as `vouch-verifier`'s metadata store lays them out).
    pub fn cached_root(&self, gun: &str) -> PathBuf {
        let enc = |s: &str| {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        };
        self.trust_dir.join("tuf").join(enc(gun)).join("root.json")
    }

    /// `vouch sign GUN:TAG --digest` [`digest`]`(n) --length 7`, into `role` when given.
    pub fn sign_digest(&self, gun: &str, tag: &str, n: u8, role: Option<&str>) -> Run {
        let image = format!("{gun}:{tag}");
        let d = digest(n);
        let mut args = vec!["sign", &image, "--digest", &d, "--length", "7"];
        if let Some(r) = role {
            args.extend(["--role", r]);
        }
        self.run(&args)
    }

    /// Generates a key for `role` in this trust directory and returns its id.
    pub fn generate_key(&self, role: &str) -> String {
        self.run(&["--output", "json", "key", "generate", "--role", role])
            .json()["keyid"]
            .as_str()
            .unwrap_or_else(|| panic!("key generate --role {role} printed no keyid"))
            .to_owned()
    }

    /// Runs `vouch ARGS…`.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().unwrap())
    }

    /// Runs `vouch ARGS…` with `env` added (values may be empty, unlike [`Vouch::set`]).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        Run::from(cmd.output().unwrap())
    }
}

/// Publishes, with the admin token and no CLI checks, the server's current `role` of `gun`
/// with `tag` added (pointing at `digest`), one version up, signed by `key` alone — what a
/// client holding a retired or misplaced key could try. Returns the server's status and body.
pub fn publish_forged(
    server: &Server,
    gun: &str,
    role: &str,
    tag: &str,
    digest: &str,
    key: &vouch_tuf::crypto::PrivateKey,
) -> (u16, String) {
    use vouch_tuf::crypto::Signer;
    use vouch_tuf::metadata::{Metadata, Role, TargetFile};
    let mut forged = current_targets(server, gun, role);
    forged.add_target(
        vouch_tuf::types::TargetName::new(tag.to_owned()).unwrap(),
        TargetFile::image(
            &vouch_tuf::reference::Digest::parse(digest).unwrap(),
            3,
            None,
        ),
    );
    forged.bump_version();
    let signed = Metadata::signed_by(forged, &[key as &dyn Signer])
        .unwrap()
        .to_bytes();
    publish_files(server, gun, &[(role, signed)])
}

/// The server's current `role` (targets or a delegated role) of `gun`, read with the admin
/// token.
pub fn current_targets(server: &Server, gun: &str, role: &str) -> vouch_tuf::metadata::Targets {
    use vouch_tuf::metadata::{Metadata, Targets};
    let current = vouch_testkit::trust_api::fetch(
        &reqwest::blocking::Client::new(),
        &server.base,
        gun,
        &format!("{role}.json"),
        Some(&server.admin_token),
    )
    .bytes()
    .unwrap();
    Metadata::<Targets>::from_bytes_as(role, &current)
        .unwrap()
        .signed()
        .clone()
}

/// Publishes `files` (role name, bytes) to `gun` in one update with the admin token, as a
/// client without the CLI's checks would. Returns the server's status and body.
pub fn publish_files(server: &Server, gun: &str, files: &[(&str, Vec<u8>)]) -> (u16, String) {
    let client = reqwest::blocking::Client::new();
    let resp = vouch_testkit::trust_api::publish(
        &client,
        &server.base,
        gun,
        files,
        Some(&server.admin_token),
    );
    let status = resp.status().as_u16();
    (status, resp.text().unwrap_or_default())
}
