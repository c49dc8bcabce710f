//! Real Notary v1: a `notary-server` process and the `notary` client, from Debian's `notary`
//! package (0.7), for the tests of reading notary's metadata and importing notary collections.
//!
//! [`NotaryServer`] runs `/usr/bin/notary-server` on a free loopback port over TLS (a
//! certificate from a fresh [`Ca`]), storing its metadata in a PostgreSQL database of its own
//! on the shared test cluster ([`PgCluster::shared`]), so that a test can change a stored file
//! behind the server's back ([`NotaryServer::psql`]; the server caches what it has served, so
//! a change shows after [`NotaryServer::restart`]). Its timestamp keys (and snapshot keys,
//! for collections that hand theirs to the server) are held by the server's `local` signing
//! service: ed25519 keys in the server's memory, no `notary-signer`.
//!
//! Why PostgreSQL and not a SQLite file: Debian's `notary-server` is built without a SQLite
//! driver (`sql: unknown driver "sqlite3"`), and its `memory` store cannot be altered from
//! outside. The server does not create its tables; [`NotaryServer::start`] creates them
//! ([`SCHEMA`]) before starting it.
//!
//! [`NotaryClient`] is the `notary` command for one trust directory, pointed at a server,
//! with every passphrase given through the environment variables notary reads
//! ([`PASSPHRASES`]) and no terminal: a command that would prompt fails instead of waiting.
//! Each helper panics with the command's output when it fails; [`NotaryClient::try_run`]
//! returns the output of a command a test expects to fail.
//!
//! [`NotaryServer::start_with_token_auth`] runs the server with notary's token
//! authentication (the registry token flow Docker Hub's notary uses): it then answers every
//! request without a valid token with a `401` and a `Bearer` challenge naming a realm, and
//! accepts JWTs signed by a [`TokenIssuer`]'s key, whose certificate is its
//! `rootcertbundle`. The token service at the realm is a [`TokenService`] (both from
//! [`crate::token`], shared with the registry harness);
//! [`NotaryClient::with_auth`] gives the notary client credentials for it (`NOTARY_AUTH`).
//!
//! Both kill what they started when dropped, and every wait is bounded. When the binaries are
//! missing, the first use panics naming the package to install (`scripts/test` installs it).
//!
//! ```no_run
//! use vouch_testkit::notary::{NotaryClient, NotaryServer};
//!
//! let tmp = tempfile::tempdir().unwrap();
//! let mut server = NotaryServer::start(&tmp.path().join("server"));
//! let client = NotaryClient::new(&server, tmp.path().join("trust"));
//! let gun = "example.com/org/app";
//! client.init(gun);
//! client.addhash(gun, "v1", 1234, &"ab".repeat(32), None);
//! client.publish(gun);
//! assert_eq!(client.lookup(gun, "v1").size, 1234);
//! // What any client reads: notary's dialect, straight from the server.
//! let (status, _root) = server.get(gun, "root.json");
//! assert_eq!(status, 200);
//! // Behind the server's back: the stored targets file, as the next GET serves it.
//! server.psql(&format!(
//!     "UPDATE tuf_files SET data = convert_to('{{}}', 'UTF8') \
//!      WHERE gun = '{gun}' AND role = 'targets'"
//! ));
//! ```
//!
//! `verifier/tests/fixtures/notary/` holds collections made with this module, and the
//! `notary_fixtures` example (run by that directory's `regenerate.sh`) that makes them again.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, DnType, KeyPair};
use reqwest::blocking::Client;

use crate::postgres::PgCluster;
use crate::tls::Ca;
pub use crate::token::{TokenAsked, TokenIssuer, TokenService};

/// The Debian package that provides the binaries below.
const PACKAGE: &str = "notary";
/// Debian's notary-server.
pub const SERVER_BINARY: &str = "/usr/bin/notary-server";
/// Debian's notary client.
pub const CLIENT_BINARY: &str = "/usr/bin/notary";

/// How long the server may take to answer its health check after starting.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one client command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How many free ports to try when another process takes the chosen one first.
const START_ATTEMPTS: u32 = 5;

/// The tables notary-server's SQL store reads and writes (its `tuf_files` and `changefeed`
/// models), which the server expects to exist. `tuf_files.data` is each stored metadata file
/// byte for byte and `sha256` its hex checksum; the server serves `data` as it is.
pub const SCHEMA: &str = "\
CREATE TABLE tuf_files (
    id serial PRIMARY KEY,
    created_at timestamp, updated_at timestamp, deleted_at timestamp,
    gun varchar(255) NOT NULL,
    role varchar(255) NOT NULL,
    version integer NOT NULL,
    sha256 char(64),
    data bytea NOT NULL,
    UNIQUE (gun, role, version)
);
CREATE INDEX tuf_files_by_sha256 ON tuf_files (sha256);
CREATE TABLE changefeed (
    id serial PRIMARY KEY,
    created_at timestamp DEFAULT CURRENT_TIMESTAMP,
    gun varchar(255) NOT NULL,
    version integer NOT NULL,
    sha256 char(64),
    category varchar(20) NOT NULL DEFAULT 'update'
);
CREATE INDEX changefeed_by_gun ON changefeed (gun);
";

/// The passphrases the client's keys are encrypted with: `(environment variable, value)`
/// for the root key, the targets keys, the snapshot keys and delegation keys. Known test
/// values, written into the fixtures' README.
pub const PASSPHRASES: [(&str, &str); 4] = [
    ("NOTARY_ROOT_PASSPHRASE", "vouch-test-root"),
    ("NOTARY_TARGETS_PASSPHRASE", "vouch-test-targets"),
    ("NOTARY_SNAPSHOT_PASSPHRASE", "vouch-test-snapshot"),
    ("NOTARY_DELEGATION_PASSPHRASE", "vouch-test-delegation"),
];

/// Panics naming the package when `binary` is not installed.
fn require(binary: &str) {
    assert!(
        Path::new(binary).is_file(),
        "{binary} is missing: these tests run real Notary v1. Install Debian's `{PACKAGE}` \
         package (`apt-get install {PACKAGE}`), or run scripts/test, which installs it."
    );
}

/// A running notary-server, killed when dropped.
pub struct NotaryServer {
    child: Option<Child>,
    url: String,
    ca: Ca,
    ca_cert: PathBuf,
    config: PathBuf,
    log: PathBuf,
    db_url: String,
    db_name: String,
}

impl NotaryServer {
    /// Starts notary-server with its files in `dir` (created when missing): `ca.pem` (the CA
    /// a client trusts), `cert.pem` and `key.pem` (the server's), `server.json` (its
    /// configuration) and `notary-server.log` (its log). Its database is a fresh one on the
    /// shared test PostgreSQL cluster. Returns once the server answers its health check.
    pub fn start(dir: &Path) -> NotaryServer {
        Self::start_with(dir, None)
    }

    /// [`NotaryServer::start`], with notary's token authentication configured as `auth`
    /// says: every metadata request then needs a token from `auth.realm`.
    pub fn start_with_token_auth(dir: &Path, auth: &TokenAuth) -> NotaryServer {
        Self::start_with(dir, Some(auth))
    }

    fn start_with(dir: &Path, auth: Option<&TokenAuth>) -> NotaryServer {
        require(SERVER_BINARY);
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let ca = Ca::new("vouch notary test CA");
        let ca_cert = dir.join("ca.pem");
        ca.write_cert(&ca_cert);
        ca.issue(dir);

        let cluster = PgCluster::shared();
        let db_url = cluster.fresh_database();
        let db_name = db_url
            .rsplit('/')
            .next()
            .expect("a database URL ends in its name")
            .to_owned();
        cluster.psql(&db_name, SCHEMA);

        let log = dir.join("notary-server.log");
        let client = ca
            .client_builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("HTTP client");
        let config = dir.join("server.json");
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let url = format!("https://127.0.0.1:{port}");
            write_server_config(&config, dir, port, &db_url, auth);
            let mut child = spawn_server(&config, &log);
            match wait_until_healthy(&mut child, &client, &url, &log) {
                Ok(()) => {
                    return NotaryServer {
                        child: Some(child),
                        url,
                        ca,
                        ca_cert,
                        config,
                        log,
                        db_url,
                        db_name,
                    }
                }
                Err(text) if text.contains("address already in use") => last_log = text,
                Err(text) => panic!("notary-server did not start:\n{text}"),
            }
        }
        panic!("notary-server found no free port:\n{last_log}");
    }

    /// The server's URL, `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The CA certificate (PEM file) that issued the server's certificate.
    pub fn ca_cert(&self) -> &Path {
        &self.ca_cert
    }

    /// An HTTP client trusting the server's CA alone.
    pub fn client(&self) -> Client {
        self.ca.client()
    }

    /// The URL of `file` (`root.json`, `2.root.json`, `targets/releases.json`,
    /// `timestamp.key`) of `gun`.
    pub fn tuf_url(&self, gun: &str, file: &str) -> String {
        crate::trust_api::tuf_url(&self.url, gun, file)
    }

    /// Gets `file` of `gun` as any client would: the status and the body, whatever the status.
    pub fn get(&self, gun: &str, file: &str) -> (u16, Vec<u8>) {
        let url = self.tuf_url(gun, file);
        let resp = self
            .client()
            .get(&url)
            .send()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status().as_u16();
        let body = resp.bytes().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        (status, body.to_vec())
    }

    /// The server's database: `postgres://…/<name>` (without notary's `?sslmode=disable`).
    pub fn db_url(&self) -> &str {
        &self.db_url
    }

    /// Runs `sql` on the server's database (see [`SCHEMA`] for its tables) and returns psql's
    /// unaligned, tuples-only output. The server serves a changed row only when it has not
    /// cached that file yet: see [`NotaryServer::restart`].
    pub fn psql(&self, sql: &str) -> String {
        PgCluster::shared().psql(&self.db_name, sql)
    }

    /// Replaces the hash `from_hex` with `to_hex` (both sha256 in hex) in every stored
    /// version of `gun`'s `role` metadata — what someone with the database but without the
    /// role's key can do after signing — and restarts the server so that it serves the change
    /// (see [`NotaryServer::restart`]). Panics when no stored version held `from_hex`.
    pub fn tamper_hash(&mut self, gun: &str, role: &str, from_hex: &str, to_hex: &str) {
        let (from, to) = (notary_hash(from_hex), notary_hash(to_hex));
        let changed = self.psql(&format!(
            "WITH changed AS (UPDATE tuf_files SET data = convert_to(replace(convert_from(data, \
             'UTF8'), '{from}', '{to}'), 'UTF8') WHERE gun = '{gun}' AND role = '{role}' \
             AND convert_from(data, 'UTF8') LIKE '%{from}%' RETURNING id) \
             SELECT count(*) FROM changed"
        ));
        assert_ne!(
            changed.trim(),
            "0",
            "no stored {role} metadata of {gun} holds the hash {from_hex}"
        );
        self.restart();
    }

    /// Kills the server and starts it again on the same port with the same database,
    /// returning once it answers. This empties notary-server's memory, which matters twice:
    ///
    /// - It caches metadata by checksum (notary 0.7's `TUFMetaStorage`): once it has served a
    ///   root, targets, delegated or snapshot file as current (`<role>.json`) or by checksum,
    ///   a change made to its row with [`NotaryServer::psql`] is not served that way until a
    ///   restart. Timestamps and versioned GETs (`N.<role>.json`) read the database every
    ///   time.
    /// - Its `local` signing service keeps its keys in memory: after a restart the server no
    ///   longer holds the timestamp keys (nor server-held snapshot keys) of the collections
    ///   made before. What is stored is still served, but a publish to such a collection
    ///   fails (`no timestamp keys exist on the server`), and nothing renews its timestamp.
    ///   Restart only to read.
    pub fn restart(&mut self) {
        self.kill();
        let client = self
            .ca
            .client_builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("HTTP client");
        let mut child = spawn_server(&self.config, &self.log);
        if let Err(text) = wait_until_healthy(&mut child, &client, &self.url, &self.log) {
            panic!("notary-server did not start again on {}:\n{text}", self.url);
        }
        self.child = Some(child);
    }

    /// Everything the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL and wait. Nothing when already stopped.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NotaryServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts notary-server with `config`, appending its log to `log`.
fn spawn_server(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    Command::new(SERVER_BINARY)
        .arg("-config")
        .arg(config)
        .args(["-logf", "logfmt"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {SERVER_BINARY}: {e}"))
}

/// Polls `URL/_notary_server/health` until it answers 200. On failure (the process exited,
/// or [`START_TIMEOUT`] ran out, when the process is killed) returns the server's log.
fn wait_until_healthy(
    child: &mut Child,
    client: &Client,
    url: &str,
    log: &Path,
) -> Result<(), String> {
    let health = format!("{url}/_notary_server/health");
    let log_text = || std::fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for notary-server") {
            return Err(format!("exited ({status}); log:\n{}", log_text()));
        }
        if let Ok(resp) = client.get(&health).send() {
            if resp.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "no healthy answer from {health} within {START_TIMEOUT:?}; log:\n{}",
                log_text()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// notary-server's `auth` section for token authentication (see its `server-config.md`).
#[derive(Debug, Clone)]
pub struct TokenAuth {
    /// The token service's URL, named in the `WWW-Authenticate` challenge.
    pub realm: String,
    /// The service name: the challenge's `service`, and the `aud` a token must carry.
    pub service: String,
    /// The `iss` a token must carry.
    pub issuer: String,
    /// The PEM certificates whose keys may sign tokens (with `x5c` chaining to them).
    pub rootcertbundle: PathBuf,
}

/// notary-server's configuration: TLS with `dir`'s `cert.pem`/`key.pem`, the `local` signing
/// service, the PostgreSQL store at `db_url` without TLS to the database, and token
/// authentication when `auth` is given.
fn write_server_config(file: &Path, dir: &Path, port: u16, db_url: &str, auth: Option<&TokenAuth>) {
    let auth = match auth {
        Some(a) => format!(
            r#"
  "auth": {{
    "type": "token",
    "options": {{ "realm": {realm:?}, "service": {service:?}, "issuer": {issuer:?}, "rootcertbundle": {bundle:?} }}
  }},"#,
            realm = a.realm,
            service = a.service,
            issuer = a.issuer,
            bundle = a.rootcertbundle.display().to_string(),
        ),
        None => String::new(),
    };
    let config = format!(
        r#"{{
  "server": {{
    "http_addr": "127.0.0.1:{port}",
    "tls_cert_file": {cert:?},
    "tls_key_file": {key:?}
  }},
  "trust_service": {{ "type": "local" }},
  "storage": {{ "backend": "postgres", "db_url": "{db_url}?sslmode=disable" }},{auth}
  "logging": {{ "level": "info" }}
}}
"#,
        cert = dir.join("cert.pem").display().to_string(),
        key = dir.join("key.pem").display().to_string(),
    );
    std::fs::write(file, config).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a probe socket on 127.0.0.1")
        .port()
}

/// What `notary lookup` printed for a tag: `TAG sha256:HEX SIZE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The tag.
    pub tag: String,
    /// The digest as printed, `sha256:<hex>`.
    pub digest: String,
    /// The size in bytes.
    pub size: u64,
}

/// One row of `notary list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The target's name (the tag).
    pub name: String,
    /// The sha256 as printed: hex, without an algorithm prefix.
    pub sha256: String,
    /// The size in bytes.
    pub size: u64,
    /// The role that signed it: `targets`, `targets/releases`.
    pub role: String,
}

/// The `notary` client for one trust directory, talking to one server.
pub struct NotaryClient {
    trust_dir: PathBuf,
    server: String,
    ca_cert: PathBuf,
    env: Vec<(String, String)>,
}

impl NotaryClient {
    /// A client keeping its keys and metadata in `trust_dir` (created by notary when
    /// missing), talking to `server`.
    pub fn new(server: &NotaryServer, trust_dir: impl Into<PathBuf>) -> Self {
        require(CLIENT_BINARY);
        NotaryClient {
            trust_dir: trust_dir.into(),
            server: server.url().to_owned(),
            ca_cert: server.ca_cert().to_owned(),
            env: Vec::new(),
        }
    }

    /// This client, logging in to the server's token service as `user` with `password`
    /// (`NOTARY_AUTH`, as the notary client reads it).
    pub fn with_auth(mut self, user: &str, password: &str) -> Self {
        use base64ct::{Base64, Encoding};
        let auth = Base64::encode_string(format!("{user}:{password}").as_bytes());
        self.env.retain(|(k, _)| k != "NOTARY_AUTH");
        self.env.push(("NOTARY_AUTH".to_owned(), auth));
        self
    }

    /// The trust directory: `tuf/<gun>/metadata/*.json`, `private/<key id>.key`.
    pub fn trust_dir(&self) -> &Path {
        &self.trust_dir
    }

    /// `notary -d TRUSTDIR -s URL --tlscacert CA ARGS…` with the passphrases in its
    /// environment, `stdin` on its standard input (none: no input at all), bounded by
    /// `COMMAND_TIMEOUT`; returns its output whatever its exit status.
    pub fn try_run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(CLIENT_BINARY);
        cmd.arg("-d")
            .arg(&self.trust_dir)
            .arg("-s")
            .arg(&self.server)
            .arg("--tlscacert")
            .arg(&self.ca_cert)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            // notary looks for ~/.notary/config.json; keep it away from the user's.
            .env("HOME", &self.trust_dir)
            .envs(PASSPHRASES)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        run_bounded(cmd, stdin, COMMAND_TIMEOUT)
    }

    /// Runs `notary ARGS…` (see [`NotaryClient::try_run`]); returns its stdout, panicking
    /// with its output when it fails.
    pub fn run(&self, args: &[&str]) -> String {
        self.run_with_stdin(args, None)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.try_run(args, stdin);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "notary {} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// `notary init GUN`: a new collection with a fresh root key (or the one already in the
    /// trust directory), targets and snapshot keys held by the client, staged; publish it.
    pub fn init(&self, gun: &str) {
        self.run(&["init", gun]);
    }

    /// [`NotaryClient::init`] and publish, then hand the snapshot key to the server
    /// (`key rotate GUN snapshot -r`, which publishes a new root).
    pub fn init_with_server_snapshot(&self, gun: &str) {
        self.run(&["init", "-p", gun]);
        self.rotate_key_server_managed(gun, "snapshot");
    }

    /// `notary addhash GUN TAG SIZE --sha256 HEX`, into `role` (`targets/releases`) when
    /// given, else the targets role; staged until [`NotaryClient::publish`].
    pub fn addhash(&self, gun: &str, tag: &str, size: u64, sha256_hex: &str, role: Option<&str>) {
        let size = size.to_string();
        let mut args = vec!["addhash", gun, tag, &size, "--sha256", sha256_hex];
        if let Some(role) = role {
            args.extend(["-r", role]);
        }
        self.run(&args);
    }

    /// `notary publish GUN`: pushes the staged changes.
    pub fn publish(&self, gun: &str) {
        self.run(&["publish", gun]);
    }

    /// `notary delegation add GUN ROLE CERT --all-paths`: delegates every path to the key in
    /// the x509 certificate `cert` (see [`DelegationKey`]); staged.
    pub fn delegation_add(&self, gun: &str, role: &str, cert: &Path) {
        let cert = cert.to_str().expect("a UTF-8 certificate path");
        self.run(&["delegation", "add", gun, role, cert, "--all-paths"]);
    }

    /// `notary key import KEY -r ROLE`: the client encrypts the (unencrypted PEM) private key
    /// with the delegation passphrase and keeps it in `private/`.
    pub fn key_import(&self, key: &Path, role: &str) {
        let key = key.to_str().expect("a UTF-8 key path");
        self.run(&["key", "import", key, "-r", role]);
    }

    /// `notary key rotate GUN ROLE`: a new client-held key for `root`, `targets` or
    /// `snapshot`, published at once (with a new root). Answers `yes` to the question a root
    /// rotation asks.
    pub fn rotate_key(&self, gun: &str, role: &str) {
        self.run_with_stdin(&["key", "rotate", gun, role], Some("yes\n"));
    }

    /// `notary key rotate GUN ROLE -r`: a new key held by the server (`snapshot` or
    /// `timestamp`), published at once.
    pub fn rotate_key_server_managed(&self, gun: &str, role: &str) {
        self.run(&["key", "rotate", gun, role, "-r"]);
    }

    /// `notary lookup GUN TAG`, parsed.
    pub fn lookup(&self, gun: &str, tag: &str) -> Lookup {
        let out = self.run(&["lookup", gun, tag]);
        parse_lookup(&out).unwrap_or_else(|| panic!("unexpected `notary lookup` output: {out}"))
    }

    /// `notary list GUN`, parsed (its header lines skipped).
    pub fn list(&self, gun: &str) -> Vec<Listed> {
        let out = self.run(&["list", gun]);
        parse_list(&out).unwrap_or_else(|| panic!("unexpected `notary list` output: {out}"))
    }
}

/// `TAG sha256:HEX SIZE` (the last non-empty line).
fn parse_lookup(out: &str) -> Option<Lookup> {
    let line = out.lines().rev().find(|l| !l.trim().is_empty())?;
    let mut fields = line.split_whitespace();
    let lookup = Lookup {
        tag: fields.next()?.to_owned(),
        digest: fields.next()?.to_owned(),
        size: fields.next()?.parse().ok()?,
    };
    (fields.next().is_none() && lookup.digest.starts_with("sha256:")).then_some(lookup)
}

/// `NAME DIGEST SIZE ROLE` rows after the `NAME …` and `----` header lines.
fn parse_list(out: &str) -> Option<Vec<Listed>> {
    let mut rows = Vec::new();
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [] | ["NAME", ..] => {}
            [first, ..] if first.starts_with("--") => {}
            [name, sha256, size, role] => rows.push(Listed {
                name: (*name).to_owned(),
                sha256: (*sha256).to_owned(),
                size: size.parse().ok()?,
                role: (*role).to_owned(),
            }),
            _ => return None,
        }
    }
    Some(rows)
}

/// A delegation signer: an ECDSA P-256 key and a self-signed x509 certificate for it (the
/// form `notary delegation add` takes), valid from 2025 to 2036.
pub struct DelegationKey {
    /// The certificate file (PEM).
    pub cert: PathBuf,
    /// The private key file (unencrypted PKCS#8 PEM), for `notary key import`.
    pub key: PathBuf,
}

impl DelegationKey {
    /// Writes `<name>.crt` and `<name>.key` into `dir`, the certificate's common name `name`.
    pub fn create(dir: &Path, name: &str) -> DelegationKey {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("cert parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2036, 1, 1);
        let key = KeyPair::generate().expect("delegation key");
        let cert = params.self_signed(&key).expect("delegation certificate");
        let paths = DelegationKey {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&paths.cert, cert.pem())
            .unwrap_or_else(|e| panic!("{}: {e}", paths.cert.display()));
        std::fs::write(&paths.key, key.serialize_pem())
            .unwrap_or_else(|e| panic!("{}: {e}", paths.key.display()));
        paths
    }
}

/// Runs `cmd` with `stdin` (or none), collecting its output; kills it and panics when it
/// takes longer than `timeout`.
pub(crate) fn run_bounded(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        // A command that exits without reading is not an error here.
        let _ = pipe.write_all(input.as_bytes());
    }
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = reader(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = reader(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for notary") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {timeout:?}; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout.join().unwrap_or_default()),
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// `c` 64 times: a made-up sha256 digest in hex that shows which tag it belongs to.
pub fn hex_digest(c: char) -> String {
    c.to_string().repeat(64)
}

/// A sha256 given in hex, as notary writes hashes: standard base64, padded, of its bytes.
pub fn notary_hash(hex: &str) -> String {
    use base64ct::{Base64, Encoding};
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex digits"))
        .collect();
    Base64::encode_string(&bytes)
}

#[cfg(test)]
mod tests {
    use super::{parse_list, parse_lookup, Listed, Lookup};

    #[test]
    fn lookup_output_is_parsed() {
        let hex = "ab".repeat(32);
        assert_eq!(
            parse_lookup(&format!("v1 sha256:{hex} 1234\n")),
            Some(Lookup {
                tag: "v1".into(),
                digest: format!("sha256:{hex}"),
                size: 1234
            })
        );
        assert_eq!(parse_lookup("v1 md5:00 1\n"), None);
        assert_eq!(parse_lookup(""), None);
    }

    #[test]
    fn list_output_is_parsed() {
        let out = "NAME    DIGEST    SIZE (BYTES)    ROLE\n\
                   ----    ------    ------------    ----\n\
                   v1      aa        1234            targets\n\
                   v2      bb        99              targets/releases\n\n";
        assert_eq!(
            parse_list(out),
            Some(vec![
                Listed {
                    name: "v1".into(),
                    sha256: "aa".into(),
                    size: 1234,
                    role: "targets".into()
                },
                Listed {
                    name: "v2".into(),
                    sha256: "bb".into(),
                    size: 99,
                    role: "targets/releases".into()
                },
            ])
        );
        assert_eq!(parse_list("v1 aa x targets\n"), None);
    }
}
