//! Throwaway real PostgreSQL clusters for tests, each in a fresh temporary directory and
//! started with `pg_ctl` on a free loopback TCP port with password (SCRAM) authentication.
//!
//! This is not a mock and not a connection pool: tests get URLs and point the code under test
//! at them. [`PgCluster::shared`] is one cluster per test binary on which each test takes its
//! own database ([`PgCluster::fresh_database`]); [`PgCluster::start`] and
//! [`PgCluster::start_with_tls`] give a dedicated cluster that fault tests may stop, restart
//! or refuse plain TCP on.
//!
//! The binaries come from Debian's `postgresql` package (`/usr/lib/postgresql/<ver>/bin`, the
//! newest version present). When they are missing every user of this module panics naming the
//! package to install; no test skips silently. PostgreSQL refuses to run as root, so when the
//! test process is root (as in CI) `initdb` and `pg_ctl` run as the `postgres` user through
//! `runuser`, in a directory that user owns. A detached watchdog stops the cluster and removes
//! its directory once the test process is gone, even if it was killed.
//!
//! `initdb` runs once per test process (it costs about two seconds); each cluster starts as a
//! copy of that template, so the clusters of one process share the superuser password and
//! the system identifier. Settings live in `vouch.conf` in the data directory, included
//! from `postgresql.conf`.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use crate::tls::Ca;

/// The OS user that owns the cluster when the tests run as root.
const PG_USER: &str = "postgres";

/// Connections the server accepts: tests run several server replicas, each with a pool.
const MAX_CONNECTIONS: u32 = 200;

/// How many free ports to try when another process takes the chosen one first.
const START_ATTEMPTS: u32 = 5;

/// One running (or deliberately stopped) PostgreSQL cluster in a temporary directory.
pub struct PgCluster {
    /// The temporary directory: holds `data/` (the cluster) and `log` (the server log).
    root: PathBuf,
    data_dir: PathBuf,
    /// Whether dropping removes `root` (dedicated clusters). The shared cluster is a static,
    /// never dropped: its watchdog removes it after the test process exits.
    remove_on_drop: bool,
    port: u16,
    password: String,
    next_db: AtomicU32,
    watchdog: Option<Child>,
}

impl PgCluster {
    /// The cluster shared by all tests of this test binary, started on first use. Take a
    /// database of its own with [`PgCluster::fresh_database`]; never stop or restart it.
    pub fn shared() -> &'static PgCluster {
        static SHARED: OnceLock<PgCluster> = OnceLock::new();
        SHARED.get_or_init(|| {
            let mut cluster = Self::launch(None);
            cluster.remove_on_drop = false;
            cluster
        })
    }

    /// Starts a dedicated cluster, stopped and removed when dropped.
    pub fn start() -> PgCluster {
        Self::launch(None)
    }

    /// Starts a dedicated cluster that accepts TCP connections only over TLS (`hostssl`), with
    /// the given server certificate chain and key (PEM).
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> PgCluster {
        Self::launch(Some((cert_pem, key_pem)))
    }

    /// `postgres://postgres:<password>@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// The password of the `postgres` superuser.
    pub fn superuser_password(&self) -> &str {
        &self.password
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The path of a PostgreSQL program (`psql`, `pg_dump`, …) of the cluster's version.
    pub fn bin(&self, name: &str) -> PathBuf {
        bin_dir().join(name)
    }

    /// Creates a new, uniquely named, empty database and returns its URL.
    pub fn fresh_database(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let name = format!("vouch_t{n}");
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs `sql` in database `db` as the superuser and returns psql's unaligned, tuples-only
    /// output (`-At`) without the trailing newline. Panics with psql's stderr on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self
            .psql_command(db)
            .arg("-c")
            .arg(sql)
            .output()
            .expect("run psql");
        if !out.status.success() {
            panic!(
                "psql on database {db} failed ({}) for:\n{sql}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_owned()
    }

    /// A `psql` command connected to database `db` as the superuser over TCP (`-X -At`,
    /// `ON_ERROR_STOP`), for tests that need to set its environment (e.g. `PGSSLMODE`) or read
    /// its exit status themselves. Add `-c <sql>` or stdin.
    pub fn psql_command(&self, db: &str) -> Command {
        let mut cmd = Command::new(self.bin("psql"));
        cmd.args([
            "-X",
            "-w",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
        ])
        .arg("-p")
        .arg(self.port.to_string())
        .args(["-U", "postgres", "-d", db])
        .env("PGPASSWORD", &self.password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSSLMODE")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS")
        .stdin(Stdio::null());
        cmd
    }

    /// Stops the server (`-m fast`: clients are disconnected, data is kept).
    pub fn stop(&self) {
        self.pg_ctl_stop("fast");
    }

    /// Stops the server as a crash would (`-m immediate`: no shutdown checkpoint, so the next
    /// start runs crash recovery). Committed data survives.
    pub fn crash(&self) {
        self.pg_ctl_stop("immediate");
    }

    /// `pg_ctl stop -m MODE`, waiting up to a minute.
    fn pg_ctl_stop(&self, mode: &str) {
        let mut cmd = pg_command(&self.bin("pg_ctl"), &self.root);
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-m", mode, "-w", "-t", "60", "stop"]);
        run(cmd, &format!("pg_ctl stop -m {mode}"));
    }

    /// Starts a stopped server again on the same port with the same data.
    pub fn start_again(&self) {
        if let Err(why) = self.try_start() {
            panic!("{why}");
        }
    }

    /// Stops and starts the server: every connection is dropped, the data survives.
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    fn launch(tls: Option<(&str, &str)>) -> PgCluster {
        let template = template();
        let workdir = Workdir::create();
        let mut cluster = PgCluster {
            data_dir: workdir.path.join("data"),
            root: workdir.path,
            remove_on_drop: true,
            port: 0,
            password: template.password.clone(),
            next_db: AtomicU32::new(1),
            watchdog: Some(workdir.watchdog),
        };
        // As root, `cp -a` keeps the files owned by `postgres`.
        let mut copy = Command::new("cp");
        copy.arg("-a")
            .arg(&template.data_dir)
            .arg(&cluster.data_dir);
        run(copy, "copy the initdb template");
        if let Some((cert_pem, key_pem)) = tls {
            write_owned(
                &cluster.data_dir.join("server.crt"),
                cert_pem.as_bytes(),
                0o644,
            );
            write_owned(
                &cluster.data_dir.join("server.key"),
                key_pem.as_bytes(),
                0o600,
            );
            // TCP only over TLS: no plain `host` line, so a client without TLS is refused.
            let hba = "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n";
            write_owned(&cluster.data_dir.join("pg_hba.conf"), hba.as_bytes(), 0o600);
        }

        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            cluster.port = free_port();
            cluster.write_settings(tls.is_some());
            match cluster.try_start() {
                Ok(()) => return cluster,
                // Another process took the port between our probe and the server's bind.
                Err(why) if why.contains("Address already in use") => last_error = why,
                Err(why) => panic!("{why}"),
            }
        }
        panic!("{last_error}");
    }

    /// Starts a hot standby of `primary`: a `pg_basebackup` of it (with `-R`, so the copy
    /// streams from the primary), on a port of its own. Stopped and removed when dropped.
    pub fn standby_of(primary: &PgCluster) -> PgCluster {
        let workdir = Workdir::create();
        let mut cluster = PgCluster {
            data_dir: workdir.path.join("data"),
            root: workdir.path,
            remove_on_drop: true,
            port: 0,
            password: primary.password.clone(),
            next_db: AtomicU32::new(1),
            watchdog: Some(workdir.watchdog),
        };
        let mut backup = pg_command(&primary.bin("pg_basebackup"), &cluster.root);
        backup
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-X",
                "stream",
                "-R",
                "-w",
                // An immediate checkpoint, not one spread over minutes.
                "-c",
                "fast",
            ])
            .arg("-p")
            .arg(primary.port.to_string())
            .arg("-D")
            .arg(&cluster.data_dir)
            .env("PGPASSWORD", &primary.password);
        run(backup, "pg_basebackup of the primary");
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            cluster.port = free_port();
            cluster.write_settings(false);
            match cluster.try_start() {
                Ok(()) => return cluster,
                Err(why) if why.contains("Address already in use") => last_error = why,
                Err(why) => panic!("{why}"),
            }
        }
        panic!("{last_error}");
    }

    /// Promotes a standby to a primary (`pg_ctl promote`, waiting until it accepts writes).
    pub fn promote(&self) {
        let mut cmd = pg_command(&self.bin("pg_ctl"), &self.root);
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-w", "-t", "60", "promote"]);
        run(cmd, "pg_ctl promote");
    }

    /// Writes `vouch.conf`, included from `postgresql.conf`. Durability against a machine
    /// crash is not under test, so the server does not sync to disk (`fsync = off`); a server
    /// crash ([`PgCluster::crash`]) still loses nothing committed, because a commit has
    /// written its WAL to the kernel before it returns. (`synchronous_commit = off` would
    /// break that: the last commits vanish in an immediate stop.)
    fn write_settings(&self, tls: bool) {
        let mut settings = format!(
            "port = {}\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = ''\n\
             max_connections = {MAX_CONNECTIONS}\n\
             shared_buffers = 32MB\n\
             fsync = off\n\
             full_page_writes = off\n",
            self.port
        );
        if tls {
            settings.push_str(
                "ssl = on\n\
                 ssl_cert_file = 'server.crt'\n\
                 ssl_key_file = 'server.key'\n",
            );
        }
        write_owned(
            &self.data_dir.join("vouch.conf"),
            settings.as_bytes(),
            0o600,
        );
    }

    /// `pg_ctl start`, waiting until the server accepts connections. On failure, the error
    /// carries the server log.
    fn try_start(&self) -> Result<(), String> {
        let log = self.root.join("log");
        let mut cmd = pg_command(&self.bin("pg_ctl"), &self.root);
        cmd.arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"]);
        let out = cmd.output().expect("run pg_ctl start");
        if out.status.success() {
            return Ok(());
        }
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        Err(format!(
            "PostgreSQL did not start on 127.0.0.1:{} ({}):\n{}{}\nserver log {}:\n{log_text}",
            self.port,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            log.display()
        ))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let mut cmd = pg_command(&self.bin("pg_ctl"), &self.root);
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = cmd.status();
        if self.remove_on_drop {
            let _ = std::fs::remove_dir_all(&self.root);
        }
        // Only now: should this process die during the clean-up above, the watchdog finishes it.
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// An initdb'd data directory, made once per test process; clusters start as copies of it.
struct Template {
    data_dir: PathBuf,
    password: String,
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        // Never removed by us: the watchdog removes it after the test process exits.
        let root = Workdir::create().path;
        let data_dir = root.join("data");
        let password = random_hex(16);
        let pwfile = root.join("pwfile");
        write_owned(&pwfile, format!("{password}\n").as_bytes(), 0o600);
        let mut initdb = pg_command(&bin_dir().join("initdb"), &root);
        initdb
            .arg("-D")
            .arg(&data_dir)
            .args(["--username=postgres", "--auth-local=trust"])
            .args(["--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions"])
            .arg(format!("--pwfile={}", pwfile.display()));
        run(initdb, "initdb");
        std::fs::remove_file(&pwfile).expect("remove password file");
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data_dir.join("postgresql.conf"))
            .expect("open postgresql.conf");
        std::io::Write::write_all(&mut conf, b"\ninclude 'vouch.conf'\n")
            .expect("append to postgresql.conf");
        Template { data_dir, password }
    })
}

/// A private temporary directory for one data directory, owned by the user that runs
/// PostgreSQL, with a watchdog that cleans it up after the test process.
struct Workdir {
    path: PathBuf,
    watchdog: Child,
}

impl Workdir {
    fn create() -> Workdir {
        // `vouch-pg-` and alphanumerics: the watchdog's pattern relies on it.
        let path = base_dir().join(format!("vouch-pg-{}", random_hex(8)));
        // The watchdog comes first, so that no moment exists where this process could die
        // leaving a directory that nothing will remove.
        let watchdog = spawn_watchdog(&path);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        chown_to_postgres(&path);
        Workdir { path, watchdog }
    }
}

/// Where the clusters' directories go: `/dev/shm` when it is a roomy tmpfs (initdb and the
/// template copy are several times faster there than on a disk), else `/tmp` when root (it
/// must be traversable by `postgres`; TMPDIR might not be), else the temporary directory.
fn base_dir() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        // Docker gives containers a 64 MiB /dev/shm: too small for a few clusters.
        const ENOUGH_KIB: u64 = 2 * 1024 * 1024;
        let shm_kib = Command::new("df")
            .args(["-Pk", "/dev/shm"])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| {
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let available = text.lines().nth(1)?.split_whitespace().nth(3)?;
                available.parse::<u64>().ok()
            });
        if shm_kib.is_some_and(|kib| kib >= ENOUGH_KIB) {
            PathBuf::from("/dev/shm")
        } else if running_as_root() {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        }
    })
}

/// Spawns the detached shell that stops the cluster in `root/data` and removes `root` once
/// this process has exited.
///
/// An `initdb`, `cp` or `pg_ctl start` we had running survives our death and would recreate
/// the directory or start the server after a plain stop-and-remove, so the shell first waits
/// (stopping the server each second) until no process names the directory on its command
/// line. The directory travels in the environment, and the pattern brackets one character,
/// so that neither the shell nor `grep` matches itself. The shell stays root when we are
/// root: `kill -0` on a root process from another user fails with EPERM, which would look as
/// if the process had gone.
fn spawn_watchdog(root: &Path) -> Child {
    let runuser = if running_as_root() {
        format!("runuser -u {PG_USER} -- ")
    } else {
        String::new()
    };
    let stop = format!(
        "{runuser}\"$VOUCH_PG_CTL\" -D \"$VOUCH_PG_ROOT/data\" stop -m immediate \
         >/dev/null 2>&1"
    );
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         n=0; \
         while [ $n -lt 120 ] && grep -qs -e \"$VOUCH_PG_PATTERN\" /proc/[0-9]*/cmdline; do \
         {stop}; sleep 1; n=$((n + 1)); \
         done; \
         {stop}; rm -rf \"$VOUCH_PG_ROOT\"",
        pid = std::process::id(),
    );
    // `vouch-pg-<hex>` as `[v]ouch-pg-<hex>`.
    let name = root
        .file_name()
        .expect("temporary directory name")
        .to_string_lossy();
    let pattern = format!("[{}]{}", &name[..1], &name[1..]);
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .env("VOUCH_PG_CTL", bin_dir().join("pg_ctl"))
        .env("VOUCH_PG_ROOT", root)
        .env("VOUCH_PG_PATTERN", pattern)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the PostgreSQL watchdog (setsid sh)")
}

/// A command for a server program (`initdb`, `pg_ctl`), run as `postgres` when we are root,
/// in `cwd` (our own working directory may be unreadable for `postgres`).
fn pg_command(program: &Path, cwd: &Path) -> Command {
    let mut cmd = if running_as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", PG_USER, "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    };
    cmd.current_dir(cwd).stdin(Stdio::null());
    cmd
}

/// Writes a file for the server, owned by `postgres` when running as root.
fn write_owned(path: &Path, contents: &[u8], mode: u32) {
    let shown = path.display();
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {shown}: {e}"));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {shown}: {e}"));
    chown_to_postgres(path);
}

/// Gives `path` to the `postgres` user when we are root (PostgreSQL refuses to run as root).
fn chown_to_postgres(path: &Path) {
    if running_as_root() {
        let mut chown = Command::new("chown");
        chown.arg(format!("{PG_USER}:{PG_USER}")).arg(path);
        run(chown, "chown to postgres");
    }
}

/// A test CA and a server certificate it issued for `localhost` and `127.0.0.1`:
/// `(ca_pem, cert_pem, key_pem)`.
pub fn test_ca_and_server_cert() -> (String, String, String) {
    let ca = Ca::new("vouch test PostgreSQL CA");
    let issued = ca.server_cert();
    (ca.cert_pem().to_owned(), issued.cert_pem, issued.key_pem)
}

/// The newest `/usr/lib/postgresql/<ver>/bin` with an `initdb`, else `pg_config --bindir`.
/// Panics naming the package to install when neither is there.
fn bin_dir() -> &'static Path {
    static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();
    BIN_DIR.get_or_init(find_bin_dir)
}

fn find_bin_dir() -> PathBuf {
    let mut best: Option<(Vec<u64>, PathBuf)> = None;
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        for entry in entries.flatten() {
            let bin = entry.path().join("bin");
            if !bin.join("initdb").is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let version: Vec<u64> = name.split('.').map(|p| p.parse().unwrap_or(0)).collect();
            if best.as_ref().is_none_or(|(v, _)| version > *v) {
                best = Some((version, bin));
            }
        }
    }
    if let Some((_, bin)) = best {
        return bin;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && bin.join("initdb").is_file() && bin.join("pg_ctl").is_file() {
            return bin;
        }
    }
    panic!(
        "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb): these \
         tests need a real PostgreSQL. Install Debian's `postgresql` package \
         (`apt-get install postgresql`), or run scripts/test, which installs it."
    );
}

fn running_as_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        let out = Command::new("id").arg("-u").output().expect("run id -u");
        String::from_utf8_lossy(&out.stdout).trim() == "0"
    })
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a probe socket on 127.0.0.1")
        .port()
}

/// `bytes` random bytes from the kernel, hex-encoded.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `cmd`, panicking with its output when it fails.
fn run(mut cmd: Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}): {cmd:?}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}
