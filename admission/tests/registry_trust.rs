//! The webhook verifying from the trust that travels with the image: a real vouch-server
//! signs, the repository's metadata files (the set `vouch export` bundles: every root
//! version, the timestamp, the snapshot and targets files a TUF client asks for) are pushed
//! as the trust artifact (`vouch_tuf::oci`) beside the images in a real `docker-registry`,
//! and the server is stopped. Then:
//! - `source = "registry"` admits the signed image, pins its tag to the signed digest, and
//!   denies the image pushed again under the same tag;
//! - `source = "server-then-registry"` admits from the server, and from the registry copy
//!   once the server is down, logging and counting that fallback once;
//! - a promoted copy in a second registry is admitted with a `trust_from` pin mapping it to
//!   the repository it was signed in, and denied without it (saying `trust_from`), as is a
//!   chain of mappings;
//! - a registry with basic authentication is read with the login of a pull secret
//!   (`docker_config_file`), and denied without it;
//! - a registry copy older than what the server already served is refused as a rollback
//!   once the server is down (trust state is per repository, whichever source served it);
//!   so is one read by another rule (`source = "registry"`, through `trust_from`) after a
//!   `source = "server"` rule verified the newer state (trust state is per anchor and GUN,
//!   whichever rule or source).
//!
//! - end to end with the server's own mirror: a server mirroring into the registry signs,
//!   is killed, and the webhook and `vouch verify --source registry` both admit the signed
//!   image from the registry alone, and both refuse it once its tag is pushed again.
//!
//! Needs `/usr/bin/docker-registry` and `skopeo` (`vouch_testkit::registry`), and the `vouch`
//! binary (`cargo test --workspace` builds it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{message, pinned_image, pod_running, Repo, Server, WebhookProcess};
use vouch_testkit::registry::{ImageLayout, Registry, RegistryAuth};
use vouch_tuf::oci::{build_trust_artifact, OCI_MANIFEST, TRUST_TAG};
use vouch_tuf::reference::{Digest, Gun};
use vouch_verifier::cache::MetadataStore;
use vouch_verifier::registry::{Login, Registries, RegistryOptions};
use vouch_verifier::registry_auth::Credentials;
use vouch_verifier::transport::{HttpOptions, HttpTransport, Transport, TransportError};
use vouch_verifier::Updater;

/// Keeps every file a TUF client fetched successfully, by the name it asked for.
struct Recording {
    inner: HttpTransport,
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl Recording {
    fn keep(
        &self,
        path: &str,
        r: Result<Vec<u8>, TransportError>,
    ) -> Result<Vec<u8>, TransportError> {
        if let Ok(bytes) = &r {
            self.files
                .lock()
                .unwrap()
                .insert(path.to_owned(), bytes.clone());
        }
        r
    }
}

impl Transport for Recording {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        self.keep(path, self.inner.fetch(path, max_len))
    }

    fn fetch_by(
        &self,
        path: &str,
        max_len: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
        self.keep(path, self.inner.fetch_by(path, max_len, deadline))
    }
}

/// The metadata files of `repo` on `server` under the names a TUF client asks for: its
/// first root, and everything a client starting from it fetches to look up `tag`.
fn trust_files(server: &Server, repo: &Repo, tag: &str) -> BTreeMap<String, Vec<u8>> {
    let gun = Gun::new(&repo.gun).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::for_repository(dir.path(), &server.base, gun.as_str()).unwrap();
    let root = repo.root_bytes();
    Updater::<Recording>::pin_root(&store, &root).unwrap();
    let url = vouch_verifier::transport::repository_url(&server.base, &gun);
    let files = Arc::new(Mutex::new(BTreeMap::new()));
    let transport = Recording {
        inner: HttpTransport::new(&url, &HttpOptions::default()).unwrap(),
        files: files.clone(),
    };
    let mut updater = Updater::new(store, transport);
    updater.refresh().unwrap();
    updater.lookup(tag).unwrap().expect("the tag is signed");
    let mut files = std::mem::take(&mut *files.lock().unwrap());
    files.insert("1.root.json".to_owned(), root);
    files
}

/// Pushes `files`, the trust of `gun`, as the trust artifact of `repository` in `registry`
/// (under the trust tag), logged in as `login`.
fn push_trust(
    registry: &Registry,
    repository: &str,
    gun: &str,
    files: &BTreeMap<String, Vec<u8>>,
    login: Login,
) {
    let artifact = build_trust_artifact(&Gun::new(gun).unwrap(), files, None).unwrap();
    let mut client = Registries::new(RegistryOptions::new(Vec::new(), login).unwrap()).unwrap();
    let host = registry.host();
    for blob in &artifact.blobs {
        client
            .push_blob(host, repository, &blob.digest, blob.bytes)
            .unwrap();
    }
    let pushed = client
        .put_manifest(
            host,
            repository,
            TRUST_TAG,
            OCI_MANIFEST,
            &artifact.manifest,
        )
        .unwrap();
    assert_eq!(pushed, artifact.digest);
}

/// A repository `gun` on `server` signing `v1` as `digest`.
fn signed(server: &Server, gun: &str, digest: &str) -> Repo {
    Repo::init(server, gun, &[("v1", Digest::parse(digest).unwrap())])
}

fn start_webhook(dir: &Path, policy: &str) -> WebhookProcess {
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    WebhookProcess::start(&dir.join("policy.toml"), &dir.join("cache"), &[])
}

/// A verify rule for `pattern` with `source`, pinned to `repo`'s root (written in `dir`).
fn rule(dir: &Path, pattern: &str, source: &str, server: Option<&str>, repo: &Repo) -> String {
    let root = dir.join(format!("{}.root.json", repo.gun.replace(['/', ':'], "_")));
    std::fs::write(&root, repo.root_bytes()).unwrap();
    let server = server.map_or(String::new(), |s| format!("server = \"{s}\"\n"));
    format!(
        "[[rule]]\npattern = \"{pattern}\"\naction = \"verify\"\nsource = \"{source}\"\n{server}\
         root_file = \"{}\"\n",
        root.display()
    )
}

fn metric(webhook: &WebhookProcess, name: &str) -> u64 {
    let metrics = webhook.get("/metrics").1;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_registry_copy_admits_the_signed_image_and_denies_one_pushed_again_under_its_tag() {
    let registry = Registry::start();
    let mut server = Server::start();
    let gun = format!("{}/team/app", registry.host());
    let pushed = ImageLayout::new("first").push(&registry, "team/app:v1");
    let repo = signed(&server, &gun, &pushed);
    push_trust(
        &registry,
        "team/app",
        &gun,
        &trust_files(&server, &repo, "v1"),
        Login::Anonymous,
    );
    let other_gun = format!("{}/team/other", registry.host());
    let other = ImageLayout::new("other").push(&registry, "team/other:v1");
    let other_repo = signed(&server, &other_gun, &other);
    server.kill();

    let dir = tempfile::tempdir().unwrap();
    let webhook = start_webhook(dir.path(), &rule(dir.path(), &gun, "registry", None, &repo));
    let resp = webhook.review(&pod_running(&format!("{gun}:v1")));
    assert_eq!(resp["allowed"], true, "{resp}");
    let review = pod_running(&format!("{gun}:v1"));
    assert_eq!(
        pinned_image(&review, &resp).as_deref(),
        Some(format!("{gun}:v1@{pushed}").as_str())
    );

    // The tag is pushed again with another image: what the registry now serves under it
    // is not what was signed.
    let again = ImageLayout::new("second").push(&registry, "team/app:v1");
    assert_ne!(again, pushed);
    let resp = webhook.review(&pod_running(&format!("{gun}:v1@{again}")));
    assert_eq!(resp["allowed"], false, "{resp}");
    assert!(
        message(&resp).contains(&format!(
            "{again} is not the signed digest {pushed} of tag v1"
        )),
        "{resp}"
    );
    // A tag alone is still pinned to the signed digest, never to the one pushed again.
    let resp = webhook.review(&pod_running(&format!("{gun}:v1")));
    assert_eq!(
        pinned_image(&pod_running(&format!("{gun}:v1")), &resp).as_deref(),
        Some(format!("{gun}:v1@{pushed}").as_str())
    );
    // A repository signed on the server whose trust was never put in the registry.
    let policy = format!(
        "{}{}",
        rule(dir.path(), &gun, "registry", None, &repo),
        rule(dir.path(), &other_gun, "registry", None, &other_repo)
    );
    drop(webhook);
    let webhook = start_webhook(dir.path(), &policy);
    let resp = webhook.review(&pod_running(&format!("{other_gun}:v1@{other}")));
    assert_eq!(resp["allowed"], false, "{resp}");
    assert!(
        message(&resp).contains("no vouch trust in this registry repository"),
        "{resp}"
    );
}

#[test]
fn server_then_registry_reads_the_registry_copy_while_the_server_is_down() {
    let registry = Registry::start();
    let mut server = Server::start();
    let gun = format!("{}/team/app", registry.host());
    let pushed = ImageLayout::new("first").push(&registry, "team/app:v1");
    let repo = signed(&server, &gun, &pushed);
    push_trust(
        &registry,
        "team/app",
        &gun,
        &trust_files(&server, &repo, "v1"),
        Login::Anonymous,
    );

    let dir = tempfile::tempdir().unwrap();
    let policy = format!(
        "refresh_interval_secs = 1\nfollow_events = false\n{}",
        rule(
            dir.path(),
            &gun,
            "server-then-registry",
            Some(&server.base),
            &repo
        )
    );
    let webhook = start_webhook(dir.path(), &policy);
    let image = format!("{gun}:v1");
    let resp = webhook.review(&pod_running(&image));
    assert_eq!(resp["allowed"], true, "{resp}");
    assert_eq!(metric(&webhook, "vouch_admission_trust_fallbacks_total"), 0);

    server.kill();
    // Each refresh after the interval finds the server down and reads the registry copy.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1100));
        let resp = webhook.review(&pod_running(&image));
        assert_eq!(resp["allowed"], true, "{resp}");
        assert_eq!(
            pinned_image(&pod_running(&image), &resp).as_deref(),
            Some(format!("{image}@{pushed}").as_str())
        );
    }
    // Logged and counted once, not once per refresh.
    assert_eq!(metric(&webhook, "vouch_admission_trust_fallbacks_total"), 1);
    let logged = webhook.log_lines("reading the registry copy");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains(&gun), "{logged:?}");
    assert_eq!(
        metric(
            &webhook,
            "vouch_admission_refreshes_total{result=\"failed\"}"
        ),
        0,
        "{:?}",
        webhook.log_lines("refresh failed")
    );

    // Started cold with the server down: the registry copy is all there is.
    drop(webhook);
    let cold = tempfile::tempdir().unwrap();
    let webhook = start_webhook(cold.path(), &policy);
    let resp = webhook.review(&pod_running(&image));
    assert_eq!(resp["allowed"], true, "{resp}");
    assert_eq!(metric(&webhook, "vouch_admission_trust_fallbacks_total"), 1);
}

/// A pin file in `dir` with `pins`, and a policy reading every image's trust from its
/// registry with those pins.
fn pinned_policy(dir: &Path, pins: &str) -> String {
    std::fs::write(dir.join("pins.toml"), pins).unwrap();
    format!(
        "trust_pins = \"{}\"\n[[rule]]\npattern = \"**\"\naction = \"verify\"\nsource = \"registry\"\n",
        dir.join("pins.toml").display()
    )
}

#[test]
fn a_promoted_copy_has_its_source_trust_with_a_trust_from_pin_and_none_without() {
    let build = Registry::start();
    let prod = Registry::start();
    let mut server = Server::start();
    let gun = format!("{}/team/app", build.host());
    let image = ImageLayout::new("first");
    let pushed = image.push(&build, "team/app:v1");
    let repo = signed(&server, &gun, &pushed);
    let files = trust_files(&server, &repo, "v1");
    // Promoted: the same image and the same trust artifact (naming the build repository)
    // copied to the production registry under another name.
    assert_eq!(image.push(&prod, "app:v1"), pushed);
    push_trust(&prod, "app", &gun, &files, Login::Anonymous);
    server.kill();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("build.root.json"), repo.root_bytes()).unwrap();
    let promoted = format!("{}/app:v1", prod.host());
    let source_pin = format!("[[pin]]\ngun = \"{gun}\"\nroot_file = \"build.root.json\"\n");

    // Mapped to the repository it was signed in: admitted, pinned to the signed digest.
    let webhook = start_webhook(
        dir.path(),
        &pinned_policy(
            dir.path(),
            &format!(
                "{source_pin}[[pin]]\ngun = \"{}/app\"\ntrust_from = \"{gun}\"\n",
                prod.host()
            ),
        ),
    );
    let resp = webhook.review(&pod_running(&promoted));
    assert_eq!(resp["allowed"], true, "{resp}");
    assert_eq!(
        pinned_image(&pod_running(&promoted), &resp).as_deref(),
        Some(format!("{promoted}@{pushed}").as_str())
    );
    drop(webhook);

    // No mapping, the production repository trusted on first use: the artifact says whose
    // trust it is, and the denial names the mapping that is missing.
    let webhook = start_webhook(
        dir.path(),
        &pinned_policy(
            dir.path(),
            &format!(
                "{source_pin}[[pin]]\ngun = \"{}/**\"\ntrust_on_first_use = true\n",
                prod.host()
            ),
        ),
    );
    let resp = webhook.review(&pod_running(&promoted));
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = message(&resp);
    assert!(
        m.contains(&format!("this is the trust of {gun}")) && m.contains("trust_from"),
        "{m}"
    );
    drop(webhook);

    // No pin at all for the production repository: the denial says how to add one.
    let webhook = start_webhook(dir.path(), &pinned_policy(dir.path(), &source_pin));
    let resp = webhook.review(&pod_running(&promoted));
    assert_eq!(resp["allowed"], false, "{resp}");
    assert!(message(&resp).contains("trust_from"), "{resp}");
    drop(webhook);

    // A chain of mappings is refused, naming both.
    let webhook = start_webhook(
        dir.path(),
        &pinned_policy(
            dir.path(),
            &format!(
                "[[pin]]\ngun = \"{gun}\"\ntrust_from = \"{}/elsewhere\"\n[[pin]]\ngun = \"{}/app\"\ntrust_from = \"{gun}\"\n",
                build.host(),
                prod.host()
            ),
        ),
    );
    let resp = webhook.review(&pod_running(&promoted));
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = message(&resp);
    assert!(
        m.contains("trust_from") && m.contains("mapped again"),
        "{m}"
    );
}

#[test]
fn a_registry_with_basic_auth_is_read_with_a_pull_secret() {
    let (user, password) = ("puller", "s3cret-pull");
    let registry = Registry::start_with(RegistryAuth::Basic {
        user: user.to_owned(),
        password: password.to_owned(),
    });
    let mut server = Server::start();
    let gun = format!("{}/team/app", registry.host());
    let pushed = ImageLayout::new("first").push(&registry, "team/app:v1");
    let repo = signed(&server, &gun, &pushed);
    push_trust(
        &registry,
        "team/app",
        &gun,
        &trust_files(&server, &repo, "v1"),
        Login::Given {
            registry: registry.host().to_owned(),
            credentials: Credentials::new(user.to_owned(), password.to_owned().into()),
        },
    );
    server.kill();

    let dir = tempfile::tempdir().unwrap();
    // A Kubernetes `.dockerconfigjson` pull secret, mounted as a file.
    use base64ct::Encoding as _;
    let auth = base64ct::Base64::encode_string(format!("{user}:{password}").as_bytes());
    std::fs::write(
        dir.path().join("pull-secret.json"),
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}",
            registry.host()
        ),
    )
    .unwrap();
    let base = rule(dir.path(), &gun, "registry", None, &repo);
    let image = format!("{gun}:v1");

    // Without credentials the registry refuses, and so does the webhook.
    let webhook = start_webhook(dir.path(), &base);
    let resp = webhook.review(&pod_running(&image));
    assert_eq!(resp["allowed"], false, "{resp}");
    assert!(
        message(&resp).contains(&format!("none are configured for {}", registry.host())),
        "{resp}"
    );
    drop(webhook);

    let webhook = start_webhook(
        dir.path(),
        &format!(
            "{base}[[registry]]\nhost = \"{}\"\ndocker_config_file = \"pull-secret.json\"\n",
            registry.host()
        ),
    );
    let resp = webhook.review(&pod_running(&image));
    assert_eq!(resp["allowed"], true, "{resp}");
    assert_eq!(
        pinned_image(&pod_running(&image), &resp).as_deref(),
        Some(format!("{image}@{pushed}").as_str())
    );
    // The password is in no log line.
    assert!(webhook.log_lines(password).is_empty());
}

#[test]
fn a_registry_copy_older_than_what_the_server_served_is_refused_as_a_rollback() {
    let registry = Registry::start();
    let mut server = Server::start();
    let gun = format!("{}/team/app", registry.host());
    let first = ImageLayout::new("first").push(&registry, "team/app:v1");
    let mut repo = signed(&server, &gun, &first);
    // The registry copy is pushed, then the tag is signed again on the server only.
    push_trust(
        &registry,
        "team/app",
        &gun,
        &trust_files(&server, &repo, "v1"),
        Login::Anonymous,
    );
    let second = ImageLayout::new("second").push(&registry, "team/app:v1");
    repo.sign(&server, &[("v1", Digest::parse(&second).unwrap())]);

    let dir = tempfile::tempdir().unwrap();
    let policy = format!(
        "refresh_interval_secs = 1\nfollow_events = false\n{}",
        rule(
            dir.path(),
            &gun,
            "server-then-registry",
            Some(&server.base),
            &repo
        )
    );
    let webhook = start_webhook(dir.path(), &policy);
    let image = format!("{gun}:v1");
    let resp = webhook.review(&pod_running(&image));
    assert_eq!(
        pinned_image(&pod_running(&image), &resp).as_deref(),
        Some(format!("{image}@{second}").as_str())
    );

    // The server goes down: the registry copy's older state does not take the repository
    // back to the first image; the webhook fails closed.
    server.kill();
    std::thread::sleep(Duration::from_millis(1100));
    let resp = webhook.review(&pod_running(&format!("{image}@{first}")));
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = message(&resp);
    assert!(
        m.contains("rollback attempt: timestamp version 1 is older than the trusted version 2"),
        "{m}"
    );
    drop(webhook);

    // The same copy read with no trusted state yet admits the first image: what refused it
    // above is the state the server's answers left, kept per repository across sources.
    let fresh = tempfile::tempdir().unwrap();
    let webhook = start_webhook(fresh.path(), &policy);
    let resp = webhook.review(&pod_running(&format!("{image}@{first}")));
    assert_eq!(resp["allowed"], true, "{resp}");
}

#[test]
fn a_registry_rule_refuses_a_copy_older_than_what_a_server_rule_verified() {
    let build = Registry::start();
    let prod = Registry::start();
    let server = Server::start();
    let gun = format!("{}/team/app", build.host());
    let first = ImageLayout::new("first");
    let pushed = first.push(&build, "team/app:v1");
    let mut repo = signed(&server, &gun, &pushed);
    // Promoted with the trust of the time: the first image, and an artifact of the build
    // repository's state then.
    assert_eq!(first.push(&prod, "app:v1"), pushed);
    push_trust(
        &prod,
        "app",
        &gun,
        &trust_files(&server, &repo, "v1"),
        Login::Anonymous,
    );
    // Then the build repository's tag is signed again, on the server only.
    let second = ImageLayout::new("second").push(&build, "team/app:v1");
    repo.sign(&server, &[("v1", Digest::parse(&second).unwrap())]);

    // The build repository is verified from the server; the production one from the copy
    // in its registry, as the build repository's trust (`trust_from`). Both rules anchor the
    // GUN with the same pin.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("build.root.json"), repo.root_bytes()).unwrap();
    std::fs::write(
        dir.path().join("pins.toml"),
        format!(
            "[[pin]]\ngun = \"{gun}\"\nroot_file = \"build.root.json\"\n\
             [[pin]]\ngun = \"{}/app\"\ntrust_from = \"{gun}\"\n",
            prod.host()
        ),
    )
    .unwrap();
    let policy = format!(
        "follow_events = false\ntrust_pins = \"{}\"\n\
         [[rule]]\npattern = \"{gun}\"\naction = \"verify\"\nsource = \"server\"\nserver = \"{}\"\n\
         [[rule]]\npattern = \"{}/**\"\naction = \"verify\"\nsource = \"registry\"\n",
        dir.path().join("pins.toml").display(),
        server.base,
        prod.host()
    );
    let promoted = format!("{}/app:v1", prod.host());
    let built = format!("{gun}:v1");

    // Alone, the registry copy is what it is: its (older) state admits the first image.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::write(fresh.path().join("build.root.json"), repo.root_bytes()).unwrap();
    std::fs::copy(dir.path().join("pins.toml"), fresh.path().join("pins.toml")).unwrap();
    let alone = start_webhook(
        fresh.path(),
        &policy.replace(
            &dir.path().join("pins.toml").display().to_string(),
            &fresh.path().join("pins.toml").display().to_string(),
        ),
    );
    let resp = alone.review(&pod_running(&promoted));
    assert_eq!(resp["allowed"], true, "{resp}");
    drop(alone);

    // Once the server rule has verified the newer state, the registry rule for the same GUN
    // starts from it: the copy is refused as a rollback.
    let webhook = start_webhook(dir.path(), &policy);
    let resp = webhook.review(&pod_running(&built));
    assert_eq!(
        pinned_image(&pod_running(&built), &resp).as_deref(),
        Some(format!("{built}@{second}").as_str())
    );
    let resp = webhook.review(&pod_running(&promoted));
    assert_eq!(resp["allowed"], false, "{resp}");
    let m = message(&resp);
    assert!(
        m.contains("rollback attempt: timestamp version 1 is older than the trusted version 2"),
        "{m}"
    );
}

/// The `vouch` command cargo built beside this test binary (`cargo test --workspace` builds
/// it; with `-p vouch-admission` alone, run `cargo build -p vouch-cli` first).
fn vouch_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let p = dir.join("vouch");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p vouch-cli` (cargo test --workspace builds it)",
        p.display()
    );
    p
}

/// `vouch verify IMAGE` reading trust from the registry copy only, in `trust_dir`, pinned to
/// `root`: its exit code and output.
fn cli_verify(trust_dir: &Path, root: &Path, image: &str) -> (i32, String) {
    let out = std::process::Command::new(vouch_binary())
        .args(["--source", "registry", "--trust-dir"])
        .arg(trust_dir)
        .arg("--trust-root")
        .arg(root)
        // No server anywhere: a request to it would fail the run.
        .args(["--server", "http://127.0.0.1:9", "verify", image])
        .env_remove("VOUCH_SERVER")
        .env("HOME", trust_dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_servers_mirror_alone_serves_the_webhook_and_the_cli() {
    let registry = Registry::start();
    let config = format!(
        "[mirror]\nrepositories = [\"{}/**\"]\nrefresh_interval_seconds = 3600\n",
        registry.host()
    );
    let mut server = Server::start_with_config(&config);
    let gun = format!("{}/team/app", registry.host());
    let pushed = ImageLayout::new("mirrored").push(&registry, "team/app:v1");
    let repo = signed(&server, &gun, &pushed);
    // The server's mirror pushes the trust after the publish, on its own.
    let deadline = Instant::now() + Duration::from_secs(60);
    while registry.manifest_digest("team/app", TRUST_TAG).is_none() {
        assert!(
            Instant::now() < deadline,
            "the mirror pushed nothing in 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.kill();

    // Only the registry is reachable now.
    let dir = tempfile::tempdir().unwrap();
    let webhook = start_webhook(dir.path(), &rule(dir.path(), &gun, "registry", None, &repo));
    let resp = webhook.review(&pod_running(&format!("{gun}:v1")));
    assert_eq!(resp["allowed"], true, "{resp}");
    let root = dir.path().join("app.root.json");
    std::fs::write(&root, repo.root_bytes()).unwrap();
    let cli = tempfile::tempdir().unwrap();
    let (code, out) = cli_verify(cli.path(), &root, &format!("{gun}:v1"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&pushed), "{out}");

    // The tag pushed again with another image: refused by both.
    let again = ImageLayout::new("re-tagged").push(&registry, "team/app:v1");
    let resp = webhook.review(&pod_running(&format!("{gun}:v1@{again}")));
    assert_eq!(resp["allowed"], false, "{resp}");
    let (code, out) = cli_verify(cli.path(), &root, &format!("{gun}:v1"));
    assert_eq!(code, 3, "{out}");
}
