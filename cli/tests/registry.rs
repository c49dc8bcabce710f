//! End-to-end with a real OCI registry: Debian's `docker-registry` on a loopback port and
//! images pushed to it with Debian's `skopeo` from OCI image layouts this test writes. `vouch
//! sign HOST/APP:TAG` signs what the registry serves; `vouch verify` checks the registry still
//! serves the signed digest, and says so when the tag was pushed again; several images are
//! signed with one publish per repository, with a progress line on a terminal.
//!
//! Needs `/usr/bin/docker-registry` and `skopeo` (`scripts/test` installs both); without them
//! the tests fail, saying what to install.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, Vouch};

const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn require(path: &str) -> PathBuf {
    let found = if path.contains('/') {
        Path::new(path).is_file().then(|| PathBuf::from(path))
    } else {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(path))
                .find(|c| c.is_file())
        })
    };
    found.unwrap_or_else(|| {
        panic!(
            "{path} is missing: these tests need Debian's docker-registry and skopeo \
             (`sudo apt-get install -y docker-registry skopeo`; scripts/test installs them)"
        )
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `docker-registry` process with filesystem storage in a temporary directory.
struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`
    host: String,
    _tmp: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status code of `GET path` on `host`, if it answers.
fn http_status(host: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

impl Registry {
    fn start() -> Self {
        let binary = require(REGISTRY_BINARY);
        let tmp = tempfile::tempdir().unwrap();
        let storage = tmp.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let host = format!("127.0.0.1:{}", free_port());
        let config = tmp.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: warn\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {host}\n",
                storage.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(tmp.path().join("registry.log")).unwrap();
        let mut child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if http_status(&host, "/v2/") == Some(200) {
                break;
            }
            let log =
                || std::fs::read_to_string(tmp.path().join("registry.log")).unwrap_or_default();
            if let Some(status) = child.try_wait().unwrap() {
                panic!("docker-registry exited ({status}):\n{}", log());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("docker-registry did not answer on {host}:\n{}", log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            host,
            _tmp: tmp,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OCI image layout with one image (a config blob naming `label`, one empty-tar layer),
/// tagged `v1` in its index.
struct Layout {
    dir: tempfile::TempDir,
    /// The manifest's digest.
    digest: String,
    /// The manifest's size.
    length: usize,
}

fn write_blob(dir: &Path, bytes: &[u8]) -> (String, usize) {
    let hex = sha256_hex(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    (format!("sha256:{hex}"), bytes.len())
}

impl Layout {
    fn new(label: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        // Two zero blocks: an empty tar archive.
        let layer = vec![0u8; 1024];
        let (layer_digest, layer_len) = write_blob(root, &layer);
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"test.image": label}},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }))
        .unwrap();
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
        .unwrap();
        let (digest, length) = write_blob(root, &manifest);
        std::fs::write(
            root.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": length,
                "annotations": {"org.opencontainers.image.ref.name": "v1"},
            }],
        }))
        .unwrap();
        std::fs::write(root.join("index.json"), index).unwrap();
        Layout {
            dir,
            digest,
            length,
        }
    }

    /// Pushes the image to `registry/repo:tag` with skopeo; returns the digest skopeo wrote.
    fn push(&self, registry: &Registry, repo_tag: &str) -> String {
        let skopeo = require("skopeo");
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let digest_file = self.dir.path().join("pushed.digest");
        let out = Command::new(skopeo)
            .env("HOME", &home)
            .args(["--insecure-policy", "copy", "--quiet", "--preserve-digests"])
            .arg("--digestfile")
            .arg(&digest_file)
            .arg("--dest-tls-verify=false")
            .arg(format!("oci:{}:v1", self.dir.path().display()))
            .arg(format!("docker://{}/{repo_tag}", registry.host))
            .stdin(Stdio::null())
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pushed = std::fs::read_to_string(&digest_file).unwrap();
        assert_eq!(pushed.trim(), self.digest, "skopeo changed the manifest");
        pushed.trim().to_owned()
    }
}

fn targets_version(v: &Vouch, gun: &str) -> u64 {
    let status = v.run(&["--output", "json", "status", gun]).json();
    let roles = status["roles"].as_array().unwrap();
    let t = roles.iter().find(|r| r["role"] == "targets").unwrap();
    t["version"].as_u64().unwrap()
}

#[test]
fn sign_and_verify_against_a_real_registry() {
    let registry = Registry::start();
    let server = Server::start();
    let v = Vouch::new(&server);
    let gun = format!("{}/app", registry.host);
    let image = format!("{gun}:v1");

    let first = Layout::new("first");
    let pushed = first.push(&registry, "app:v1");

    v.run(&["init", &gun]).ok();
    let signed = v.run(&["--output", "json", "sign", &image]).json();
    assert_eq!(signed["digest"], pushed);
    assert_eq!(signed["length"], first.length);
    assert_eq!(signed["media_type"], OCI_MANIFEST);
    assert_eq!(signed["target"], "v1");
    let lookup = v.run(&["--output", "json", "lookup", &image]).json();
    assert_eq!(lookup["digest"], pushed);
    assert_eq!(lookup["custom"]["mediaType"], OCI_MANIFEST);

    // verify asks the registry and prints the pushed digest.
    let out = v.run(&["verify", &image]);
    assert_eq!(out.ok().trim(), format!("{gun}@{pushed}"));
    let j = v.run(&["--output", "json", "verify", &image]).json();
    assert_eq!(j["trusted"], true);
    assert_eq!(j["registry_digest"], pushed);
    // A bare digest the registry serves, signed without --length: the registry gives it.
    v.run(&["verify", &format!("{gun}@{pushed}")]).ok();

    // The tag is pushed again with another image: the registry's digest is not the signed one.
    let second = Layout::new("second");
    let repushed = second.push(&registry, "app:v1");
    assert_ne!(repushed, pushed);
    let refused = v.run(&["verify", &image]);
    let line = refused.fails(
        3,
        &[
            "not trusted",
            "the registry's digest",
            "is not the signed one",
        ],
    );
    assert!(line.contains(&repushed) && line.contains(&pushed), "{line}");
    let j = v.run(&["--output", "json", "verify", &image]);
    assert_eq!(j.code, 3);
    assert_eq!(j.json()["trusted"], false);
    // The trust data alone still says what was signed.
    let out = v.run(&["verify", &image, "--no-registry"]);
    assert_eq!(out.ok().trim(), format!("{gun}@{pushed}"));

    // A tag the registry does not have: refused, nothing published.
    let before = targets_version(&v, &gun);
    v.run(&["sign", &format!("{gun}:v9")])
        .fails(1, &["cannot resolve", "has no manifest v9 of app (404)"]);
    assert_eq!(targets_version(&v, &gun), before);

    // Signing the new image, and a bare digest by its registry size.
    v.run(&["sign", &image]).ok();
    assert_eq!(
        v.run(&["verify", &image]).ok().trim(),
        format!("{gun}@{repushed}")
    );
    let bare = v
        .run(&["--output", "json", "sign", &format!("{gun}@{pushed}")])
        .json();
    assert_eq!(bare["target"], pushed);
    assert_eq!(bare["length"], first.length);
}

#[test]
fn several_images_one_publish_per_repository() {
    let registry = Registry::start();
    let server = Server::start();
    let v = Vouch::new(&server);
    let app = format!("{}/app", registry.host);
    let tools = format!("{}/org/tools", registry.host);

    let a = Layout::new("a");
    let b = Layout::new("b");
    let da = a.push(&registry, "app:v1");
    a.push(&registry, "app:v1.0");
    let db = b.push(&registry, "org/tools:v3");

    v.run(&["init", &app]).ok();
    v.run(&["init", &tools]).ok();
    let app_before = targets_version(&v, &app);
    let tools_before = targets_version(&v, &tools);

    // One missing image: nothing at all is signed.
    v.run(&["sign", &format!("{app}:v1"), &format!("{tools}:missing")])
        .fails(1, &["missing"]);
    assert_eq!(targets_version(&v, &app), app_before);

    let images = [
        format!("{app}:v1"),
        format!("{app}:v1.0"),
        format!("{tools}:v3"),
    ];
    let mut args = vec!["--output", "json", "sign"];
    args.extend(images.iter().map(String::as_str));
    let out = v.run(&args);
    assert!(
        !out.stderr.contains('\r'),
        "no progress line without a terminal: {out:?}"
    );
    let signed = out.json();
    let signed = signed["signed"].as_array().unwrap();
    assert_eq!(signed.len(), 3);
    assert_eq!(signed[0]["digest"], da);
    assert_eq!(signed[1]["digest"], da);
    assert_eq!(signed[2]["digest"], db);
    // One publish per repository: both tags of app went up in one targets version.
    assert_eq!(signed[0]["version"], app_before + 1);
    assert_eq!(signed[1]["version"], app_before + 1);
    assert_eq!(signed[2]["version"], tools_before + 1);
    assert_eq!(targets_version(&v, &app), app_before + 1);
    for image in &images {
        v.run(&["verify", image]).ok();
    }

    // On a terminal, a progress line is drawn on stderr (and cleared) while resolving.
    let c = v.command(&["sign", &images[0], &images[2]]);
    let mut shell = String::new();
    for (k, val) in c.get_envs() {
        if let Some(val) = val {
            shell.push_str(&format!(
                "{}='{}' ",
                k.to_string_lossy(),
                val.to_string_lossy().replace('\'', r"'\''")
            ));
        }
    }
    shell.push_str(&format!("'{}'", c.get_program().to_string_lossy()));
    for a in c.get_args() {
        shell.push_str(&format!(" '{}'", a.to_string_lossy()));
    }
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &format!("env -i {shell}"), "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("run script(1) for a terminal");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("] 1/2 resolving"), "{screen:?}");
    assert!(screen.contains("\r\x1b[2K"), "{screen:?}");
    assert!(
        screen.contains(&format!("signed {app}:v1 ->")),
        "{screen:?}"
    );
}
