//! A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8) on a free
//! loopback port with filesystem storage in a temporary directory, and images pushed to it
//! with Debian's `skopeo` from OCI image layouts written here.
//!
//! [`Registry::start`] runs it without authentication; [`Registry::start_with`] with the
//! registry's `htpasswd` authentication ([`RegistryAuth::Basic`], a bcrypt file made with
//! `htpasswd -Bbn` from `apache2-utils`) or its `token` authentication
//! ([`RegistryAuth::Token`]): the registry then answers `401` with a `Bearer` challenge whose
//! realm is a [`TokenService`] run by the harness, which checks the login and signs tokens
//! with a [`TokenIssuer`] key whose certificate is the registry's `rootcertbundle`. Its
//! requests are recorded ([`Registry::token_requests`]), so that a test can assert the bearer
//! flow really ran; [`Registry::deny`] and [`Registry::allow`] refuse one repository to every
//! client for a while. [`Registry::stop`] and [`Registry::restart`] stage an outage on the same
//! port and storage; dropping a [`Registry`] kills the process.
//!
//! [`ImageLayout`] is an OCI image layout on disk holding one image (one random layer) or an
//! image index over several platforms; [`ImageLayout::push`] copies it into a registry with
//! `skopeo copy --all --preserve-digests`, so that the digest the registry serves is the
//! layout's. [`Registry::manifest_digest`] asks the registry, as any client would, which
//! digest a tag has.
//!
//! Non-goals: no TLS (skopeo and the clients under test are told the registry is plain
//! HTTP), no registry mocks, no image contents beyond what a digest needs to differ. Every
//! wait is bounded; a missing binary fails the test naming the Debian package to install
//! (`scripts/test` installs them).
//!
//! ```no_run
//! use vouch_testkit::registry::{ImageLayout, Registry, RegistryAuth};
//!
//! let registry = Registry::start_with(RegistryAuth::Basic {
//!     user: "alice".into(),
//!     password: "secret".into(),
//! });
//! let image = ImageLayout::multi_platform("app", &["linux/amd64", "linux/arm64"]);
//! let digest = image.push(&registry, "org/app:v1");
//! assert_eq!(registry.manifest_digest("org/app", "v1").as_deref(), Some(digest.as_str()));
//! assert_eq!(registry.get_anonymous("/v2/org/app/tags/list").status, 401);
//! ```

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use tempfile::TempDir;

use crate::notary::run_bounded;
use crate::token::{TokenAsked, TokenIssuer, TokenPolicy, TokenService};

pub use crate::token::Anonymous;

/// Debian's registry binary (package `docker-registry`).
pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";
/// The media type of an OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of an OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The `service` of a token registry: the challenge's, and the tokens' `aud`.
pub const TOKEN_SERVICE: &str = "vouch-test-registry";
/// The `iss` of a token registry's tokens.
pub const TOKEN_ISSUER: &str = "vouch-test-token-issuer";

/// Every manifest type the registry may serve, for `Accept`.
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";
/// How long the registry may take to answer after starting.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one skopeo or htpasswd run may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one HTTP request to the registry may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How many free ports to try when another process takes the chosen one first.
const START_ATTEMPTS: u32 = 5;

/// How the registry authenticates clients.
#[derive(Debug, Clone)]
pub enum RegistryAuth {
    /// No authentication: anyone may pull and push.
    None,
    /// The registry's `htpasswd` authentication with one login: without it every request is
    /// `401` with a `Basic` challenge.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// The registry's `token` authentication, with a token service run by the harness:
    /// `user` with `password` is granted `pull,push` on every repository, a request without
    /// credentials what `anonymous` says, a wrong login nothing (`401` from the service).
    Token {
        /// The user name.
        user: String,
        /// The password.
        password: String,
        /// What a client without credentials may do.
        anonymous: Anonymous,
    },
}

impl RegistryAuth {
    /// The login, when there is one.
    fn login(&self) -> Option<(&str, &str)> {
        match self {
            RegistryAuth::None => None,
            RegistryAuth::Basic { user, password } | RegistryAuth::Token { user, password, .. } => {
                Some((user, password))
            }
        }
    }
}

/// Which request a [`Registry::get`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// No credentials at all.
    Anonymous,
    /// The registry's login: basic credentials, or the bearer flow (a token from the realm
    /// the registry's challenge names, asked for with the login) on a token registry.
    WithLogin,
}

/// The status and headers of a response.
#[derive(Debug, Clone)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The headers, names as sent.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Panics naming `package` when `binary` (a path, or a name looked up on `PATH`) is missing;
/// returns its path.
fn require(binary: &str, package: &str) -> PathBuf {
    let found = if binary.contains('/') {
        Path::new(binary).is_file().then(|| PathBuf::from(binary))
    } else {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(binary))
                .find(|c| c.is_file())
        })
    };
    found.unwrap_or_else(|| {
        panic!(
            "{binary} is missing: these tests run a real OCI registry. Install Debian's \
             `{package}` package (`apt-get install {package}`), or run scripts/test, which \
             installs it."
        )
    })
}

/// A running `docker-registry`, killed when dropped.
pub struct Registry {
    child: Option<Child>,
    host: String,
    dir: TempDir,
    config: PathBuf,
    log: PathBuf,
    auth: RegistryAuth,
    tokens: Option<TokenService>,
}

impl Registry {
    /// A registry without authentication.
    pub fn start() -> Registry {
        Self::start_with(RegistryAuth::None)
    }

    /// A registry authenticating clients as `auth` says. Its files live in a temporary
    /// directory: `config.yml`, `storage/`, `registry.log`, and `htpasswd` or `token.pem`
    /// (the `rootcertbundle`). Returns once it answers `/v2/`.
    pub fn start_with(auth: RegistryAuth) -> Registry {
        let binary = require(REGISTRY_BINARY, "docker-registry");
        let dir = tempfile::tempdir().expect("a temporary directory for the registry");
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap_or_else(|e| panic!("{}: {e}", storage.display()));
        let (auth_config, tokens) = match &auth {
            RegistryAuth::None => (String::new(), None),
            RegistryAuth::Basic { user, password } => {
                let file = dir.path().join("htpasswd");
                write_htpasswd(&file, user, password);
                (
                    format!(
                        "auth:\n  htpasswd:\n    realm: vouch-test-registry\n    path: {}\n",
                        file.display()
                    ),
                    None,
                )
            }
            RegistryAuth::Token {
                user,
                password,
                anonymous,
            } => {
                let issuer = Arc::new(TokenIssuer::new(TOKEN_ISSUER));
                let bundle = dir.path().join("token.pem");
                issuer.write_bundle(&bundle);
                let tokens = TokenService::start_with(
                    issuer,
                    TokenPolicy {
                        service: TOKEN_SERVICE.to_owned(),
                        login: (user.clone(), password.clone()),
                        anonymous: anonymous.clone(),
                    },
                );
                (
                    format!(
                        "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    \
                         issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                        tokens.realm(),
                        bundle.display()
                    ),
                    Some(tokens),
                )
            }
        };
        let config = dir.path().join("config.yml");
        let log = dir.path().join("registry.log");
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let host = format!("127.0.0.1:{}", free_port());
            let text = format!(
                "version: 0.1\n\
                 log:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {host}\n{auth_config}",
                storage.display()
            );
            std::fs::write(&config, text).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
            let mut child = spawn(&binary, &config, &log);
            match wait_until_up(&mut child, &host, &log) {
                Ok(()) => {
                    return Registry {
                        child: Some(child),
                        host,
                        dir,
                        config,
                        log,
                        auth,
                        tokens,
                    }
                }
                Err(text) if text.contains("address already in use") => last_log = text,
                Err(text) => panic!("docker-registry did not start:\n{text}"),
            }
        }
        panic!("docker-registry found no free port:\n{last_log}");
    }

    /// `127.0.0.1:PORT`: the registry part of an image reference.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// How the registry authenticates clients.
    pub fn auth(&self) -> &RegistryAuth {
        &self.auth
    }

    /// The login `(user, password)`, when the registry has authentication.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.auth.login()
    }

    /// The token service's realm URL, on a token registry.
    pub fn token_realm(&self) -> Option<&str> {
        self.tokens.as_ref().map(TokenService::realm)
    }

    /// Every request the token service answered so far, oldest first (none without token
    /// authentication).
    pub fn token_requests(&self) -> Vec<TokenAsked> {
        self.tokens
            .as_ref()
            .map(TokenService::asked)
            .unwrap_or_default()
    }

    /// On a token registry, denies `repository` (its path, `org/app`) to everyone from now
    /// on, the known login included: its tokens leave it out, so the registry answers `401`.
    ///
    /// # Panics
    /// Without token authentication.
    pub fn deny(&self, repository: &str) {
        self.tokens
            .as_ref()
            .expect("deny needs a token registry (RegistryAuth::Token)")
            .deny(repository);
    }

    /// Undoes [`Registry::deny`].
    ///
    /// # Panics
    /// Without token authentication.
    pub fn allow(&self, repository: &str) {
        self.tokens
            .as_ref()
            .expect("allow needs a token registry (RegistryAuth::Token)")
            .allow(repository);
    }

    /// The registry's storage directory (`rootdirectory`).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Everything the registry logged so far (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the registry: connections to its port are refused until [`Registry::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the registry again (stopping it first if it runs) on the same port with the same
    /// storage and authentication; returns once it answers. What was pushed is still there.
    pub fn restart(&mut self) {
        self.stop();
        let binary = require(REGISTRY_BINARY, "docker-registry");
        let mut child = spawn(&binary, &self.config, &self.log);
        if let Err(text) = wait_until_up(&mut child, &self.host, &self.log) {
            panic!(
                "docker-registry did not start again on {}:\n{text}",
                self.host
            );
        }
        self.child = Some(child);
    }

    /// `GET path` (`/v2/…`) as `client`, asking for any manifest type; the response's status
    /// and headers.
    pub fn get(&self, path: &str, client: Client) -> Head {
        let first = self.request(path, None);
        if client == Client::Anonymous || first.status != 401 {
            return first;
        }
        let (user, password) = self
            .credentials()
            .unwrap_or_else(|| panic!("401 from a registry without a login: {first:?}"));
        let basic = format!(
            "Basic {}",
            Base64::encode_string(format!("{user}:{password}").as_bytes())
        );
        let challenge = first.header("www-authenticate").unwrap_or_default();
        let authorization = match challenge.strip_prefix("Bearer ") {
            Some(params) => format!("Bearer {}", fetch_token(params, &basic)),
            None => basic,
        };
        self.request(path, Some(&authorization))
    }

    /// [`Registry::get`] without credentials.
    pub fn get_anonymous(&self, path: &str) -> Head {
        self.get(path, Client::Anonymous)
    }

    /// The digest (`sha256:…`) the registry serves for `repo:tag` (its
    /// `Docker-Content-Digest`), asked with the registry's login when it has one; `None`
    /// when it has no such manifest (404). Panics on any other answer.
    pub fn manifest_digest(&self, repo: &str, tag: &str) -> Option<String> {
        let head = self.get(&format!("/v2/{repo}/manifests/{tag}"), Client::WithLogin);
        match head.status {
            200 => Some(
                head.header("docker-content-digest")
                    .unwrap_or_else(|| panic!("no Docker-Content-Digest: {head:?}"))
                    .to_owned(),
            ),
            404 => None,
            _ => panic!("GET manifest {repo}:{tag}: {head:?}\n{}", self.log()),
        }
    }

    /// One `GET` with `authorization` (or none).
    fn request(&self, path: &str, authorization: Option<&str>) -> Head {
        let mut headers = vec![("Accept", ACCEPT.to_owned())];
        if let Some(a) = authorization {
            headers.push(("Authorization", a.to_owned()));
        }
        let (head, _) = http_get(&self.host, path, &headers).unwrap_or_else(|| {
            panic!(
                "GET {path} from the registry on {}: no answer\n{}",
                self.host,
                self.log()
            )
        });
        head
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Asks the realm of a `Bearer` challenge (its parameters `params`) for a token with the
/// `Authorization` header `basic`; returns the token.
fn fetch_token(params: &str, basic: &str) -> String {
    let param = |name: &str| {
        params.split(',').find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            (k == name).then(|| v.trim_matches('"').to_owned())
        })
    };
    // The scope holds commas (`pull,push`): take everything between its quotes.
    let scope = params
        .split_once("scope=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(s, _)| s.to_owned());
    let realm = param("realm").unwrap_or_else(|| panic!("no realm in Bearer {params}"));
    let service = param("service").unwrap_or_default();
    let rest = realm
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("a realm on plain HTTP: {realm}"));
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut target = format!("/{path}?service={service}");
    if let Some(scope) = scope {
        target.push_str(&format!("&scope={}", scope.replace(' ', "%20")));
    }
    let (head, body) = http_get(host, &target, &[("Authorization", basic.to_owned())])
        .unwrap_or_else(|| panic!("GET {realm}: no answer"));
    assert_eq!(head.status, 200, "GET {realm}{target}: {head:?}");
    let json: serde_json::Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("token response from {realm}: {e}"));
    json["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token from {realm}: {json}"))
        .to_owned()
}

/// One HTTP/1.1 `GET` on `host` with `headers`: the response's head and body, or `None` when
/// the connection fails.
fn http_get(host: &str, target: &str, headers: &[(&str, String)]) -> Option<(Head, Vec<u8>)> {
    let mut conn = TcpStream::connect(host).ok()?;
    conn.set_read_timeout(Some(REQUEST_TIMEOUT)).ok()?;
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    conn.write_all(request.as_bytes()).ok()?;
    let (head, body) = crate::http::read_response(&mut BufReader::new(conn))?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some((Head { status, headers }, body))
}

/// Writes the bcrypt htpasswd `file` with one login (`htpasswd -Bbn`).
fn write_htpasswd(file: &Path, user: &str, password: &str) {
    let mut cmd = Command::new(require("htpasswd", "apache2-utils"));
    cmd.args(["-Bbn", user, password]);
    let out = run_bounded(cmd, None, COMMAND_TIMEOUT);
    assert!(
        out.status.success(),
        "htpasswd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(file, &out.stdout).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
}

/// `docker-registry serve CONFIG`, its output appended to `log`.
fn spawn(binary: &Path, config: &Path, log: &Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let err = out.try_clone().expect("the registry log");
    Command::new(binary)
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
}

/// Polls `/v2/` until the registry answers (200, or 401 with authentication). On failure
/// (the process exited, or [`START_TIMEOUT`] ran out, when the process is killed) returns
/// the registry's log.
fn wait_until_up(child: &mut Child, host: &str, log: &Path) -> Result<(), String> {
    let log_text = || std::fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for docker-registry") {
            return Err(format!("exited ({status}); log:\n{}", log_text()));
        }
        if let Some((head, _)) = http_get(host, "/v2/", &[]) {
            if head.status == 200 || head.status == 401 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "no answer from http://{host}/v2/ within {START_TIMEOUT:?}; log:\n{}",
                log_text()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a probe socket on 127.0.0.1")
        .port()
}

/// One platform's image in a multi-platform [`ImageLayout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformImage {
    /// `os/architecture` or `os/architecture/variant`, as given.
    pub platform: String,
    /// The image manifest's digest.
    pub digest: String,
    /// The image manifest's size in bytes.
    pub length: usize,
}

/// An OCI image layout in a temporary directory, its top manifest tagged `v1` in the
/// layout's `index.json`: one image (a config naming the label, one layer of random bytes,
/// so that every layout has its own digest), or an image index over one such image per
/// platform.
pub struct ImageLayout {
    dir: TempDir,
    digest: String,
    length: usize,
    media_type: &'static str,
    platforms: Vec<PlatformImage>,
}

impl ImageLayout {
    /// A layout holding one `linux/amd64` image whose config carries the label
    /// `test.image=<label>`.
    pub fn new(label: &str) -> ImageLayout {
        let dir = layout_dir();
        let image = write_image(dir.path(), label, "linux/amd64");
        write_layout_index(dir.path(), OCI_MANIFEST, &image.digest, image.length);
        ImageLayout {
            dir,
            digest: image.digest,
            length: image.length,
            media_type: OCI_MANIFEST,
            platforms: Vec::new(),
        }
    }

    /// A layout holding an OCI image index with one image per platform (`linux/amd64`,
    /// `linux/arm64/v8`), each like [`ImageLayout::new`]'s.
    pub fn multi_platform(label: &str, platforms: &[&str]) -> ImageLayout {
        assert!(!platforms.is_empty(), "an image index needs a platform");
        let dir = layout_dir();
        let images: Vec<PlatformImage> = platforms
            .iter()
            .map(|p| write_image(dir.path(), label, p))
            .collect();
        let manifests: Vec<serde_json::Value> = images
            .iter()
            .map(|i| {
                let mut platform = i.platform.split('/');
                let mut p = serde_json::json!({
                    "os": platform.next(),
                    "architecture": platform.next(),
                });
                if let Some(variant) = platform.next() {
                    p["variant"] = variant.into();
                }
                serde_json::json!({
                    "mediaType": OCI_MANIFEST,
                    "digest": i.digest,
                    "size": i.length,
                    "platform": p,
                })
            })
            .collect();
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        }))
        .expect("an image index");
        let (digest, length) = write_blob(dir.path(), &index);
        write_layout_index(dir.path(), OCI_INDEX, &digest, length);
        ImageLayout {
            dir,
            digest,
            length,
            media_type: OCI_INDEX,
            platforms: images,
        }
    }

    /// The digest of the top manifest (the image manifest, or the image index).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The size in bytes of the top manifest.
    pub fn length(&self) -> usize {
        self.length
    }

    /// The media type of the top manifest: [`OCI_MANIFEST`] or [`OCI_INDEX`].
    pub fn media_type(&self) -> &str {
        self.media_type
    }

    /// The images of a multi-platform layout, in the index's order (none for a single image).
    pub fn platforms(&self) -> &[PlatformImage] {
        &self.platforms
    }

    /// The layout's directory (`oci-layout`, `index.json`, `blobs/sha256/`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Pushes the layout to `registry` as `repo:tag` with `skopeo copy --all
    /// --preserve-digests` (with the registry's login when it has one); returns the digest
    /// the registry then serves for the tag, checked to be the layout's.
    pub fn push(&self, registry: &Registry, repo_tag: &str) -> String {
        let (repo, tag) = repo_tag
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("not REPO:TAG: {repo_tag}"));
        let skopeo = require("skopeo", "skopeo");
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap_or_else(|e| panic!("{}: {e}", home.display()));
        let digest_file = self.dir.path().join("pushed.digest");
        let mut cmd = Command::new(skopeo);
        // Away from the user's containers configuration and credentials.
        cmd.env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &home)
            .env("XDG_CONFIG_HOME", &home)
            .args([
                "--insecure-policy",
                "copy",
                "--quiet",
                "--all",
                "--preserve-digests",
            ])
            .arg("--digestfile")
            .arg(&digest_file)
            .arg("--dest-tls-verify=false");
        if let Some((user, password)) = registry.credentials() {
            cmd.arg("--dest-creds").arg(format!("{user}:{password}"));
        }
        cmd.arg(format!("oci:{}:v1", self.dir.path().display()))
            .arg(format!("docker://{}/{repo_tag}", registry.host()));
        let out = run_bounded(cmd, None, COMMAND_TIMEOUT);
        assert!(
            out.status.success(),
            "skopeo copy to {}/{repo_tag} failed: {}\nregistry log:\n{}",
            registry.host(),
            String::from_utf8_lossy(&out.stderr),
            registry.log()
        );
        let pushed = std::fs::read_to_string(&digest_file)
            .unwrap_or_else(|e| panic!("{}: {e}", digest_file.display()));
        assert_eq!(pushed.trim(), self.digest, "skopeo changed the manifest");
        let served = registry
            .manifest_digest(repo, tag)
            .unwrap_or_else(|| panic!("the registry has no {repo_tag} after the push"));
        assert_eq!(served, self.digest, "the registry serves another digest");
        served
    }
}

/// A temporary directory with an empty OCI image layout (`oci-layout`, `blobs/sha256/`).
fn layout_dir() -> TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory for an image layout");
    let blobs = dir.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap_or_else(|e| panic!("{}: {e}", blobs.display()));
    let marker = dir.path().join("oci-layout");
    std::fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
        .unwrap_or_else(|e| panic!("{}: {e}", marker.display()));
    dir
}

/// Writes `index.json` naming one manifest, tagged `v1`.
fn write_layout_index(root: &Path, media_type: &str, digest: &str, length: usize) {
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media_type,
            "digest": digest,
            "size": length,
            "annotations": {"org.opencontainers.image.ref.name": "v1"},
        }],
    }))
    .expect("index.json");
    let file = root.join("index.json");
    std::fs::write(&file, index).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
}

/// Writes one image for `platform` (`os/arch[/variant]`): a random layer, a config, a
/// manifest; returns the manifest's digest and size.
fn write_image(root: &Path, label: &str, platform: &str) -> PlatformImage {
    let mut parts = platform.split('/');
    let (Some(os), Some(arch)) = (parts.next(), parts.next()) else {
        panic!("not OS/ARCH: {platform}");
    };
    let mut random = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .expect("random bytes");
    let content = format!("{label} {platform} {}\n", hex(&random));
    let layer = tar_with_one_file("image.txt", content.as_bytes());
    let (layer_digest, layer_len) = write_blob(root, &layer);
    let mut config = serde_json::json!({
        "architecture": arch,
        "os": os,
        "config": {"Labels": {"test.image": label}},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    if let Some(variant) = parts.next() {
        config["variant"] = variant.into();
    }
    let config = serde_json::to_vec(&config).expect("an image config");
    let (config_digest, config_len) = write_blob(root, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_len,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_len,
        }],
    }))
    .expect("an image manifest");
    let (digest, length) = write_blob(root, &manifest);
    PlatformImage {
        platform: platform.to_owned(),
        digest,
        length,
    }
}

/// Writes `bytes` as a blob; returns its digest and size.
fn write_blob(root: &Path, bytes: &[u8]) -> (String, usize) {
    let hex = hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    let file = root.join("blobs/sha256").join(&hex);
    std::fs::write(&file, bytes).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    (format!("sha256:{hex}"), bytes.len())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A ustar archive holding one regular file `name` (mode 0644) with `content`.
fn tar_with_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let mut put = |at: usize, field: &[u8]| header[at..at + field.len()].copy_from_slice(field);
    put(0, name.as_bytes());
    put(100, b"0000644\0");
    put(108, b"0000000\0");
    put(116, b"0000000\0");
    put(124, format!("{:011o}\0", content.len()).as_bytes());
    put(136, b"00000000000\0");
    put(148, b"        ");
    put(156, b"0");
    put(257, b"ustar\0");
    put(263, b"00");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    // Two zero blocks end the archive.
    tar.resize(tar.len() + 1024, 0);
    tar
}

#[cfg(test)]
mod tests {
    use super::tar_with_one_file;

    #[test]
    fn tar_header_checksum_and_padding() {
        let tar = tar_with_one_file("a.txt", b"hello\n");
        assert_eq!(tar.len(), 512 + 512 + 1024);
        let mut header = tar[..512].to_vec();
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
        let written = std::str::from_utf8(&tar[148..154]).unwrap();
        assert_eq!(u32::from_str_radix(written, 8).unwrap(), sum);
        assert_eq!(&tar[512..518], b"hello\n");
    }
}
