//! Test harness: a real `vouch-server` process on loopback, repositories signed with
//! vouch-tuf builders, the AdmissionReview fixtures, and a JSONPatch applier.
//!
//! The server process is `vouch-testkit`'s; the server binary is the one cargo built in the
//! same target directory (`cargo test --workspace` builds it; with `-p vouch-admission`
//! alone, run `cargo build -p vouch-server` first).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube_core::admission::AdmissionReview;
use kube_core::DynamicObject;
use reqwest::blocking::Client;
use serde_json::Value;
use vouch_admission::decide::{Endpoint, Webhook};
use vouch_admission::policy::Policy;
use vouch_admission::trust::TrustConfig;
use vouch_testkit::server::{Launch, ServerProcess};
use vouch_testkit::trust_api;
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use vouch_tuf::json;
use vouch_tuf::metadata::{DelegatedRole, Delegations, Key, Metadata, Root, TargetFile, Targets};
use vouch_tuf::reference::Digest;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{RoleName, TargetName, TopLevelRole, Version};
use vouch_verifier::clock::TestClock;

/// The registry of the fixtures' images.
pub const REG: &str = "registry.example.com/org";

/// The digest tests sign for `tag`.
pub fn digest_of(tag: &str) -> Digest {
    Digest::sha256_of(format!("manifest of {tag}").as_bytes())
}

/// Starts `vouch-server` on `listen` with its data in `dir/data` and, when there is one,
/// `dir/server.toml` as its configuration file.
fn launch(dir: &Path, listen: &str) -> ServerProcess {
    let config = dir.join("server.toml");
    let mut launch = Launch::new(dir.join("data")).listen(listen);
    if config.exists() {
        launch = launch.config(config);
    }
    launch.start()
}

/// A running vouch-server.
pub struct Server {
    process: ServerProcess,
    pub base: String,
    pub admin_token: String,
    client: Client,
    _tmp: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server started with `config` as its configuration file (TOML).
    pub fn start_with_config(config: &str) -> Self {
        Self::start_with(Some(config))
    }

    fn start_with(config: Option<&str>) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        if let Some(c) = config {
            std::fs::write(tmp.path().join("server.toml"), c).unwrap();
        }
        let process = launch(tmp.path(), "127.0.0.1:0");
        Server {
            base: process.base.clone(),
            admin_token: process.admin_token.clone(),
            process,
            client: Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            _tmp: tmp,
        }
    }

    /// Starts the killed server again, on the same address with the same data.
    pub fn restart(&mut self) {
        self.kill();
        let addr = self.process.addr().to_owned();
        self.process = launch(self._tmp.path(), &addr);
    }

    /// Restarts the server on the same address with the same data and `config` as its new
    /// configuration file.
    pub fn restart_with_config(&mut self, config: &str) {
        std::fs::write(self._tmp.path().join("server.toml"), config).unwrap();
        self.restart();
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }

    fn online_key(&self, gun: &str, role: &str) -> Key {
        let r = trust_api::fetch(
            &self.client,
            &self.base,
            gun,
            &format!("{role}.key"),
            Some(&self.admin_token),
        );
        assert!(r.status().is_success());
        Key::from_value(json::parse(&r.bytes().unwrap()).unwrap()).unwrap()
    }

    fn publish(&self, gun: &str, files: &[(&str, Vec<u8>)]) {
        let r = trust_api::publish(
            &self.client,
            &self.base,
            gun,
            files,
            Some(&self.admin_token),
        );
        let status = r.status();
        assert!(status.is_success(), "{status}: {}", r.text().unwrap());
    }
}

/// A signed repository on a server: its root and targets keys.
pub struct Repo {
    pub gun: String,
    root_key: PrivateKey,
    targets_key: PrivateKey,
    timestamp: Key,
    snapshot: Key,
    targets_version: u64,
    root_version: u64,
}

fn key_of(sk: &PrivateKey) -> Key {
    Key::from_verifying_key(&sk.verifying_key())
}

impl Repo {
    /// Initialises `gun` on `server` with `tags` signed (each as [`digest_of`]).
    pub fn init(server: &Server, gun: &str, tags: &[(&str, Digest)]) -> Self {
        Self::init_with_root_key(
            server,
            gun,
            tags,
            PrivateKey::generate(Algorithm::Ed25519).unwrap(),
        )
    }

    /// As [`Repo::init`], with `root_key` as the repository's root key (an organisation's
    /// key that signs the first root of each of its repositories).
    pub fn init_with_root_key(
        server: &Server,
        gun: &str,
        tags: &[(&str, Digest)],
        root_key: PrivateKey,
    ) -> Self {
        let mut repo = Repo {
            gun: gun.to_owned(),
            root_key,
            targets_key: PrivateKey::generate(Algorithm::Ed25519).unwrap(),
            timestamp: server.online_key(gun, "timestamp"),
            snapshot: server.online_key(gun, "snapshot"),
            targets_version: 0,
            root_version: 1,
        };
        let root = repo.root_bytes();
        let targets = repo.next_targets(tags);
        server.publish(gun, &[("root", root), ("targets", targets)]);
        repo
    }

    /// The current root (what the tests pin is version 1, written before any rotation).
    pub fn root_bytes(&self) -> Vec<u8> {
        self.root_bytes_naming(Some(&self.gun))
    }

    /// The current root as [`Repo::root_bytes`] signs it, naming repository `gun` (or none):
    /// a root of these keys that another repository, or any, could be pinned to.
    pub fn root_bytes_naming(&self, gun: Option<&str>) -> Vec<u8> {
        let mut r = Root::new(Timestamp::parse("2099-01-01T00:00:00Z").unwrap());
        if let Some(gun) = gun {
            r.set_gun(gun);
        }
        r.common.version = Version::new(self.root_version).unwrap();
        r.add_key(TopLevelRole::Root, key_of(&self.root_key));
        r.add_key(TopLevelRole::Targets, key_of(&self.targets_key));
        r.add_key(TopLevelRole::Snapshot, self.snapshot.clone());
        r.add_key(TopLevelRole::Timestamp, self.timestamp.clone());
        Metadata::signed_by(r, &[&self.root_key])
            .unwrap()
            .to_bytes()
    }

    fn next_targets(&mut self, tags: &[(&str, Digest)]) -> Vec<u8> {
        self.targets_version += 1;
        let t = targets_role(self.targets_version, tags);
        Metadata::signed_by(t, &[&self.targets_key])
            .unwrap()
            .to_bytes()
    }

    /// Publishes a new top-level targets signing `tags` and delegating the tag pattern
    /// `paths` to `role` (version 1, a fresh key), which signs `delegated_tags`.
    pub fn delegate(
        &mut self,
        server: &Server,
        tags: &[(&str, Digest)],
        role: &str,
        paths: &[&str],
        delegated_tags: &[(&str, Digest)],
    ) {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let k = key_of(&key);
        self.targets_version += 1;
        let mut t = targets_role(self.targets_version, tags);
        t.delegations = Some(Delegations {
            keys: [(k.key_id(), k.clone())].into_iter().collect(),
            roles: vec![DelegatedRole::with_paths(
                RoleName::new(role).unwrap(),
                vec![k.key_id()],
                paths.iter().map(|p| p.to_string()).collect(),
            )],
            extra: Default::default(),
        });
        let top = Metadata::signed_by(t, &[&self.targets_key])
            .unwrap()
            .to_bytes();
        let delegated = Metadata::signed_by(targets_role(1, delegated_tags), &[&key])
            .unwrap()
            .to_bytes();
        server.publish(&self.gun, &[("targets", top), (role, delegated)]);
    }

    /// Publishes a new top-level targets signing `tags` and the delegation tree `tree`:
    /// each entry is delegated by its `parent` (`targets` or an earlier entry's role), in
    /// the order given, with a fresh key, and signs its own `tags` (version 1).
    pub fn delegate_tree(
        &mut self,
        server: &Server,
        tags: &[(&str, Digest)],
        tree: &[Delegation<'_>],
    ) {
        self.targets_version += 1;
        let mut top = targets_role(self.targets_version, tags);
        let keys: Vec<PrivateKey> = tree
            .iter()
            .map(|_| PrivateKey::generate(Algorithm::Ed25519).unwrap())
            .collect();
        let mut roles: Vec<Targets> = tree.iter().map(|d| targets_role(1, d.tags)).collect();
        for (i, d) in tree.iter().enumerate() {
            let k = key_of(&keys[i]);
            let parent = if d.parent == "targets" {
                &mut top
            } else {
                let at = tree[..i]
                    .iter()
                    .position(|p| p.role == d.parent)
                    .unwrap_or_else(|| panic!("{} is delegated before {}", d.parent, d.role));
                &mut roles[at]
            };
            let delegations = parent.delegations.get_or_insert_with(|| Delegations {
                keys: Default::default(),
                roles: Vec::new(),
                extra: Default::default(),
            });
            delegations.keys.insert(k.key_id(), k.clone());
            delegations.roles.push(DelegatedRole::with_paths(
                RoleName::new(d.role).unwrap(),
                vec![k.key_id()],
                d.paths.iter().map(|p| p.to_string()).collect(),
            ));
        }
        let mut files = vec![(
            "targets",
            Metadata::signed_by(top, &[&self.targets_key])
                .unwrap()
                .to_bytes(),
        )];
        for ((d, role), key) in tree.iter().zip(roles).zip(&keys) {
            files.push((
                d.role,
                Metadata::signed_by(role, &[key]).unwrap().to_bytes(),
            ));
        }
        server.publish(&self.gun, &files);
    }

    /// Rotates the root and targets keys: publishes root v+1 (signed by the old and the new
    /// root key) listing the new keys, and targets signed by the new targets key.
    pub fn rotate_keys(&mut self, server: &Server, tags: &[(&str, Digest)]) {
        let old_root = std::mem::replace(
            &mut self.root_key,
            PrivateKey::generate(Algorithm::Ed25519).unwrap(),
        );
        self.targets_key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        self.root_version += 1;
        let mut r = Root::new(Timestamp::parse("2099-01-01T00:00:00Z").unwrap());
        r.set_gun(&self.gun);
        r.common.version = Version::new(self.root_version).unwrap();
        r.add_key(TopLevelRole::Root, key_of(&self.root_key));
        r.add_key(TopLevelRole::Targets, key_of(&self.targets_key));
        r.add_key(TopLevelRole::Snapshot, self.snapshot.clone());
        r.add_key(TopLevelRole::Timestamp, self.timestamp.clone());
        let root = Metadata::signed_by(r, &[&old_root, &self.root_key])
            .unwrap()
            .to_bytes();
        let targets = self.next_targets(tags);
        server.publish(&self.gun, &[("root", root), ("targets", targets)]);
    }

    /// Publishes a new targets version signing exactly `tags`.
    pub fn sign(&mut self, server: &Server, tags: &[(&str, Digest)]) {
        let t = self.next_targets(tags);
        server.publish(&self.gun, &[("targets", t)]);
    }
}

/// One delegation of [`Repo::delegate_tree`].
pub struct Delegation<'a> {
    /// The delegating role: `targets` or a role delegated earlier in the tree.
    pub parent: &'a str,
    /// The delegated role's name.
    pub role: &'a str,
    /// The target-name patterns delegated.
    pub paths: &'a [&'a str],
    /// What the role signs.
    pub tags: &'a [(&'a str, Digest)],
}

fn targets_role(version: u64, tags: &[(&str, Digest)]) -> Targets {
    let mut t = Targets::new(Timestamp::parse("2099-01-01T00:00:00Z").unwrap());
    t.common.version = Version::new(version).unwrap();
    for (tag, d) in tags {
        t.add_target(
            TargetName::new(*tag).unwrap(),
            TargetFile::image(d, 1234, Some("application/vnd.oci.image.manifest.v1+json")),
        );
    }
    t
}

/// A server with `org/app`, `org/init` and `org/sidecar` each signing `v1`.
pub fn signed_server() -> (Server, Vec<Repo>) {
    let s = Server::start();
    let repos = ["app", "init", "sidecar"]
        .iter()
        .map(|name| Repo::init(&s, &format!("{REG}/{name}"), &[("v1", digest_of("v1"))]))
        .collect();
    (s, repos)
}

/// A policy verifying `registry.example.com/org/**` against `server`, trusting each repo's
/// root (one rule per repository, since each has its own root), with `extra` TOML before
/// the rules.
pub fn policy_text(server: &str, repos: &[Repo], extra: &str, dir: &Path) -> String {
    let mut text = format!("{extra}\n");
    for r in repos {
        let file = dir.join(format!("{}.root.json", r.gun.replace('/', "_")));
        std::fs::write(&file, r.root_bytes()).unwrap();
        text.push_str(&format!(
            "[[rule]]\npattern = \"{}\"\naction = \"verify\"\nserver = \"{server}\"\nroot_file = \"{}\"\n\n",
            r.gun,
            file.display()
        ));
    }
    text
}

/// A webhook for `policy` with a test clock at the current time.
pub struct Harness {
    pub webhook: Arc<Webhook>,
    pub clock: TestClock,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub fn new(server: &str, repos: &[Repo], extra: &str) -> Self {
        Self::with_config(server, repos, extra, |_| {})
    }

    /// As [`Harness::new`], with `edit` rewriting the policy text before it is loaded.
    pub fn with_policy(
        server: &str,
        repos: &[Repo],
        extra: &str,
        edit: impl FnOnce(String) -> String,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let text = edit(policy_text(server, repos, extra, dir.path()));
        let policy = Policy::parse(&text, dir.path()).unwrap();
        Self::for_policy(policy, dir, |_| {})
    }

    /// As [`Harness::new`], with `tune` adjusting the trust settings.
    pub fn with_config(
        server: &str,
        repos: &[Repo],
        extra: &str,
        tune: impl FnOnce(&mut TrustConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let text = policy_text(server, repos, extra, dir.path());
        let policy = Policy::parse(&text, dir.path()).unwrap();
        Self::for_policy(policy, dir, tune)
    }

    /// A webhook for a loaded `policy`, caching trust below `dir`, with a test clock at the
    /// current time and `tune` adjusting the trust settings.
    pub fn for_policy(
        policy: Policy,
        dir: tempfile::TempDir,
        tune: impl FnOnce(&mut TrustConfig),
    ) -> Self {
        let clock = TestClock::new(vouch_verifier::clock::Clock::now(
            &vouch_verifier::clock::SystemClock,
        ));
        let mut config = TrustConfig::new(
            dir.path().join("cache"),
            policy.refresh_interval,
            policy.deadline,
            Arc::new(clock.clone()),
        );
        tune(&mut config);
        Harness {
            webhook: Arc::new(Webhook::new(policy, config)),
            clock,
            dir,
        }
    }

    /// Sends `review` to the endpoint and returns the response part as JSON.
    pub fn send(&self, review: &Value, endpoint: Endpoint) -> Value {
        let typed: AdmissionReview<DynamicObject> = serde_json::from_value(review.clone()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let v = rt.block_on(self.webhook.review(typed, endpoint));
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        v["response"].clone()
    }
}

/// Copies the current metadata of `gun` from `server` into `dir/{as_gun}/` (a `file://`
/// trust source), under both the plain and the versioned file names, with `root` as
/// `1.root.json`. With `as_gun` other than `gun`, a source serving one repository's trust
/// data as another's.
pub fn mirror_as(server: &Server, gun: &str, as_gun: &str, root: &[u8], dir: &Path) {
    let out = dir.join(as_gun);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("1.root.json"), root).unwrap();
    for role in ["timestamp", "snapshot", "targets"] {
        let bytes = trust_api::fetch(
            &server.client,
            &server.base,
            gun,
            &format!("{role}.json"),
            None,
        )
        .bytes()
        .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let version = v["signed"]["version"].as_u64().unwrap();
        std::fs::write(out.join(format!("{role}.json")), &bytes).unwrap();
        std::fs::write(out.join(format!("{version}.{role}.json")), &bytes).unwrap();
    }
}

/// The denial (or warning) message of an admission response.
pub fn message(resp: &Value) -> String {
    resp["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A fixture from `tests/data/`.
pub fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

/// A Pod review (CREATE in `default`) whose only container runs `image`.
pub fn pod_running(image: &str) -> Value {
    let mut review = fixture("pod-create.json");
    let spec = review.pointer_mut("/request/object/spec").unwrap();
    spec["containers"] = serde_json::json!([{"name": "app", "image": image}]);
    spec.as_object_mut().unwrap().remove("initContainers");
    review
}

/// The image a response's JSONPatch writes for the first container of [`pod_running`], or
/// `None` when the response carries no patch.
pub fn pinned_image(review: &Value, response: &Value) -> Option<String> {
    response.get("patch")?;
    let obj = patched(review, response);
    Some(
        obj.pointer("/spec/containers/0/image")
            .and_then(Value::as_str)
            .unwrap()
            .to_owned(),
    )
}

/// Sets the image at `pointer` (below the request's object).
pub fn set_image(review: &mut Value, pointer: &str, image: &str) {
    *review
        .pointer_mut(&format!("/request/object{pointer}"))
        .unwrap_or_else(|| panic!("no {pointer}")) = Value::String(image.to_owned());
}

/// The object with the response's JSONPatch applied (asserting it is a base64 JSONPatch).
pub fn patched(review: &Value, response: &Value) -> Value {
    let mut object = review["request"]["object"].clone();
    if response.get("patch").is_none() {
        return object;
    }
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes = base64_decode(
        response["patch"]
            .as_str()
            .expect("patch is a base64 string"),
    );
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    json_patch::patch(&mut object, &patch).unwrap();
    object
}

fn base64_decode(s: &str) -> Vec<u8> {
    <base64ct::Base64 as base64ct::Encoding>::decode_vec(s).expect("patch is base64")
}

/// The webhook's router on a loopback port, served by its own runtime (plain HTTP).
pub struct Served {
    pub base: String,
    _rt: tokio::runtime::Runtime,
}

pub fn serve(h: &Harness) -> Served {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = vouch_admission::http::app(h.webhook.clone());
    rt.spawn(vouch_admission::http::serve(
        listener,
        app,
        None,
        std::future::pending(),
    ));
    Served { base, _rt: rt }
}

/// A running `vouch-admission` (plain HTTP) and what it logged.
pub struct WebhookProcess {
    pub child: Child,
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
    client: Client,
}

impl WebhookProcess {
    pub fn start(policy: &Path, cache: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(policy, cache, extra, &[])
    }

    /// [`WebhookProcess::start`] with `env` added to its environment (`SSL_CERT_FILE`).
    pub fn start_with_env(
        policy: &Path,
        cache: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vouch-admission"))
            .arg("--policy")
            .arg(policy)
            .args(["--listen", "127.0.0.1:0", "--insecure-http"])
            .args(["--log-format", "text"])
            .arg("--cache-dir")
            .arg(cache)
            .args(extra)
            .env("VOUCH_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("no output; log: {:?}", log.lock().unwrap()))
            .unwrap();
        let base = line
            .split("listening on ")
            .nth(1)
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .trim()
            .to_owned();
        WebhookProcess {
            child,
            base,
            log,
            client: Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap(),
        }
    }

    pub fn review(&self, review: &Value) -> Value {
        let r: Value = self
            .client
            .post(format!("{}/mutate", self.base))
            .json(review)
            .send()
            .unwrap()
            .json()
            .unwrap();
        r["response"].clone()
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    /// Waits (at most 30 s) until `/metrics` shows `sample`.
    pub fn wait_for_metric(&self, sample: &str) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let metrics = self.get("/metrics").1;
            if metrics.contains(sample) {
                return;
            }
            assert!(Instant::now() < until, "never saw {sample}:\n{metrics}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for WebhookProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
