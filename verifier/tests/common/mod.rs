//! Test repositories and transports shared by the unit tests, the integration tests, the
//! benchmark, and (by path) `vouch-tuf-client`'s tests in `tuf-client/tests/`.
//!
//! [`Repo`] builds a TUF repository with `vouch-tuf`: keys for every role, delegations, and
//! the files a server would serve (`N.root.json`, `timestamp.json`, `N.snapshot.json`,
//! `N.targets.json`, `N.<role>.json`). Tests change roles, re-publish, or tamper with the
//! served bytes to stage an attack.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
pub use vouch_tuf::metadata::Role as _;
use vouch_tuf::metadata::{
    DelegatedRole, Delegations, Key, MetaFile, Metadata, Root, Snapshot, TargetFile, Targets,
    TimestampRole,
};
use vouch_tuf::reference::Digest;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{RoleName, TargetName, Threshold, TopLevelRole};
use vouch_verifier::transport::{Transport, TransportError};

/// The time tests run at: 2030-01-01T00:00:00Z.
pub const NOW: Timestamp = Timestamp::from_unix(1_893_456_000);
/// One day.
pub const DAY: i64 = 86_400;

pub fn key() -> PrivateKey {
    PrivateKey::generate(Algorithm::Ed25519).unwrap()
}

pub fn pubkey(sk: &PrivateKey) -> Key {
    Key::from_verifying_key(&sk.verifying_key())
}

pub fn rn(s: &str) -> RoleName {
    RoleName::new(s).unwrap()
}

/// A delegated role and its signing keys.
pub struct DelegatedState {
    pub parent: String,
    pub role: Targets,
    pub keys: Vec<PrivateKey>,
}

/// A repository under construction; `files` is what its server serves.
pub struct Repo {
    pub root: Root,
    pub root_keys: Vec<PrivateKey>,
    /// Extra keys that sign the next published root (old root keys during a rotation).
    pub extra_root_signers: Vec<PrivateKey>,
    pub targets_keys: Vec<PrivateKey>,
    pub snapshot_keys: Vec<PrivateKey>,
    pub timestamp_keys: Vec<PrivateKey>,
    pub targets: Targets,
    pub delegated: BTreeMap<String, DelegatedState>,
    pub snapshot: Snapshot,
    pub timestamp: TimestampRole,
    /// Whether snapshot lists lengths and hashes of targets roles.
    pub snapshot_hashes: bool,
    pub files: BTreeMap<String, Vec<u8>>,
    /// Target file contents by name (served as `HASH.name`).
    pub target_files: BTreeMap<String, Vec<u8>>,
}

fn signers(keys: &[PrivateKey]) -> Vec<&dyn Signer> {
    keys.iter().map(|k| k as &dyn Signer).collect()
}

impl Repo {
    /// Version 1 of every role, one ed25519 key each, expiring in a year, published.
    pub fn new() -> Repo {
        let expires = NOW.add_seconds(365 * DAY);
        let (rk, tk, sk, tsk) = (key(), key(), key(), key());
        let mut root = Root::new(expires);
        root.add_key(TopLevelRole::Root, pubkey(&rk));
        root.add_key(TopLevelRole::Targets, pubkey(&tk));
        root.add_key(TopLevelRole::Snapshot, pubkey(&sk));
        root.add_key(TopLevelRole::Timestamp, pubkey(&tsk));
        let mut repo = Repo {
            root,
            root_keys: vec![rk],
            extra_root_signers: Vec::new(),
            targets_keys: vec![tk],
            snapshot_keys: vec![sk],
            timestamp_keys: vec![tsk],
            targets: Targets::new(expires),
            delegated: BTreeMap::new(),
            snapshot: Snapshot::new(expires),
            timestamp: TimestampRole::new(
                expires,
                MetaFile::version_only(vouch_tuf::types::Version::ONE),
            ),
            snapshot_hashes: false,
            files: BTreeMap::new(),
            target_files: BTreeMap::new(),
        };
        repo.publish_root_as_is();
        repo.publish_targets_as_is();
        repo.publish_snapshot_as_is();
        repo.publish_timestamp_as_is();
        repo
    }

    /// Replaces the key of `role` (timestamp, snapshot or targets) with a new one and
    /// publishes the root that lists it.
    pub fn rotate_key(&mut self, role: TopLevelRole) {
        let keys = match role {
            TopLevelRole::Timestamp => &mut self.timestamp_keys,
            TopLevelRole::Snapshot => &mut self.snapshot_keys,
            TopLevelRole::Targets => &mut self.targets_keys,
            TopLevelRole::Root => panic!("rotate root keys with extra_root_signers"),
        };
        let old = std::mem::replace(keys, vec![key()]);
        let new = pubkey(&keys[0]);
        for k in &old {
            self.root.remove_key(role, &pubkey(k).key_id());
        }
        self.root.add_key(role, new);
        self.publish_root();
    }

    pub fn root_bytes(&self, version: u64) -> Vec<u8> {
        self.files[&format!("{version}.root.json")].clone()
    }

    pub fn file(&self, name: &str) -> Vec<u8> {
        self.files
            .get(name)
            .unwrap_or_else(|| panic!("no file {name}"))
            .clone()
    }

    /// Adds an image target (a manifest of `content`) to role `role` ("targets" or delegated).
    pub fn add_image(&mut self, role: &str, tag: &str, content: &[u8]) -> Digest {
        let d = Digest::sha256_of(content);
        let t = TargetFile::image(
            &d,
            content.len() as u64,
            Some("application/vnd.oci.image.manifest.v1+json"),
        );
        self.role_mut(role)
            .add_target(TargetName::new(tag).unwrap(), t);
        self.target_files.insert(tag.to_owned(), content.to_vec());
        let served = match tag.rsplit_once('/') {
            Some((dir, base)) => format!("targets/{dir}/{}.{base}", d.hex()),
            None => format!("targets/{}.{tag}", d.hex()),
        };
        self.files.insert(served, content.to_vec());
        d
    }

    pub fn role_mut(&mut self, role: &str) -> &mut Targets {
        if role == "targets" {
            &mut self.targets
        } else {
            &mut self.delegated.get_mut(role).unwrap().role
        }
    }

    /// Delegates `name` from `parent` for `paths`, with a fresh key, threshold 1.
    pub fn delegate(&mut self, parent: &str, name: &str, paths: &[&str], terminating: bool) {
        let k = key();
        let pk = pubkey(&k);
        let id = pk.key_id();
        let mut dr = DelegatedRole::with_paths(
            rn(name),
            vec![id.clone()],
            paths.iter().map(|s| s.to_string()).collect(),
        );
        dr.terminating = terminating;
        let expires = NOW.add_seconds(365 * DAY);
        let p = self.role_mut(parent);
        let d = p.delegations.get_or_insert_with(Delegations::default);
        d.keys.insert(id, pk);
        d.roles.push(dr);
        self.delegated.insert(
            name.to_owned(),
            DelegatedState {
                parent: parent.to_owned(),
                role: Targets::new(expires),
                keys: vec![k],
            },
        );
    }

    /// Signs and serves the current root as `N.root.json`.
    pub fn publish_root_as_is(&mut self) -> Vec<u8> {
        let mut all = signers(&self.root_keys);
        all.extend(signers(&self.extra_root_signers));
        let md = Metadata::signed_by(self.root.clone(), &all).unwrap();
        let bytes = md.to_bytes();
        self.files.insert(
            format!("{}.root.json", self.root.common.version.get()),
            bytes.clone(),
        );
        bytes
    }

    /// Bumps root's version, signs with the current root keys plus `extra_root_signers`.
    pub fn publish_root(&mut self) -> Vec<u8> {
        self.root.bump_version();
        self.publish_root_as_is()
    }

    pub fn publish_targets_as_is(&mut self) -> Vec<u8> {
        let md = Metadata::signed_by(self.targets.clone(), &signers(&self.targets_keys)).unwrap();
        let bytes = md.to_bytes();
        self.files.insert(
            format!("{}.targets.json", self.targets.common.version.get()),
            bytes.clone(),
        );
        self.record_meta("targets", self.targets.common.version, &bytes);
        bytes
    }

    pub fn publish_delegated_as_is(&mut self, name: &str) -> Vec<u8> {
        let st = &self.delegated[name];
        let md = Metadata::signed_by(st.role.clone(), &signers(&st.keys)).unwrap();
        let bytes = md.to_bytes();
        let v = st.role.common.version;
        self.files.insert(
            format!("{}.{}.json", v.get(), rn(name).url_encoded()),
            bytes.clone(),
        );
        self.record_meta(name, v, &bytes);
        bytes
    }

    fn record_meta(&mut self, role: &str, version: vouch_tuf::types::Version, bytes: &[u8]) {
        let mf = if self.snapshot_hashes {
            MetaFile::for_bytes(version, bytes)
        } else {
            MetaFile::version_only(version)
        };
        self.snapshot.meta.insert(Snapshot::meta_name(role), mf);
    }

    pub fn publish_snapshot_as_is(&mut self) -> Vec<u8> {
        let md = Metadata::signed_by(self.snapshot.clone(), &signers(&self.snapshot_keys)).unwrap();
        let bytes = md.to_bytes();
        self.files.insert(
            format!("{}.snapshot.json", self.snapshot.common.version.get()),
            bytes.clone(),
        );
        self.timestamp.snapshot = MetaFile::for_bytes(self.snapshot.common.version, &bytes);
        bytes
    }

    pub fn publish_timestamp_as_is(&mut self) -> Vec<u8> {
        let md =
            Metadata::signed_by(self.timestamp.clone(), &signers(&self.timestamp_keys)).unwrap();
        let bytes = md.to_bytes();
        self.files
            .insert("timestamp.json".to_owned(), bytes.clone());
        bytes
    }

    pub fn publish_targets(&mut self) {
        self.targets.bump_version();
        self.publish_targets_as_is();
    }

    pub fn publish_delegated(&mut self, name: &str) {
        self.delegated.get_mut(name).unwrap().role.bump_version();
        self.publish_delegated_as_is(name);
    }

    pub fn publish_snapshot(&mut self) {
        self.snapshot.bump_version();
        self.publish_snapshot_as_is();
    }

    pub fn publish_timestamp(&mut self) {
        self.timestamp.bump_version();
        self.publish_timestamp_as_is();
    }

    /// New snapshot and timestamp versions (after targets roles changed).
    pub fn publish_snapshot_and_timestamp(&mut self) {
        self.publish_snapshot();
        self.publish_timestamp();
    }

    /// Publishes every delegated role at its current version (in parent-first order is not
    /// needed: snapshot lists them all).
    pub fn publish_all_delegated_as_is(&mut self) {
        let names: Vec<String> = self.delegated.keys().cloned().collect();
        for n in names {
            self.publish_delegated_as_is(&n);
        }
    }

    /// Writes the served files to a directory (targets under `targets/`).
    pub fn write_to(&self, dir: &std::path::Path) {
        for (name, bytes) in &self.files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
    }
}

/// Files served from memory, with a log of every path asked for.
#[derive(Clone, Default)]
pub struct MemoryTransport {
    pub files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl MemoryTransport {
    pub fn new(files: &BTreeMap<String, Vec<u8>>) -> Self {
        let t = MemoryTransport::default();
        t.set(files);
        t
    }

    pub fn set(&self, files: &BTreeMap<String, Vec<u8>>) {
        *self.files.lock().unwrap() = files.clone();
    }

    pub fn put(&self, name: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(name.to_owned(), bytes);
    }

    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl Transport for MemoryTransport {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        self.log.lock().unwrap().push(path.to_owned());
        let files = self.files.lock().unwrap();
        let b = files.get(path).ok_or_else(|| TransportError::NotFound {
            path: path.to_owned(),
        })?;
        if b.len() as u64 > max_len {
            return Err(TransportError::TooLarge {
                path: path.to_owned(),
                limit: max_len,
            });
        }
        Ok(b.clone())
    }
}

/// A loopback HTTP/1.1 server over a shared map of files (`GET /PATH`), logging each path.
/// A file named `ENDLESS` in the map makes every path under it stream bytes forever.
pub struct Server {
    pub url: String,
    pub files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(files: BTreeMap<String, Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let files = Arc::new(Mutex::new(files));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (f2, l2) = (files.clone(), log.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut stream) = conn else { continue };
                let _ = stream.set_nodelay(true);
                let (f3, l3) = (f2.clone(), l2.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line
                            .split_whitespace()
                            .nth(1)
                            .unwrap_or("/")
                            .trim_start_matches('/')
                            .to_owned();
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0
                                || h == "\r\n"
                                || h == "\n"
                            {
                                break;
                            }
                        }
                        l3.lock().unwrap().push(path.clone());
                        let body = f3.lock().unwrap().get(&path).cloned();
                        let endless = f3.lock().unwrap().contains_key("ENDLESS");
                        let ok = if endless {
                            let _ =
                                stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                            let chunk = vec![b' '; 64 * 1024];
                            for _ in 0..10_000 {
                                if stream.write_all(&chunk).is_err() {
                                    break;
                                }
                            }
                            false
                        } else if let Some(b) = body {
                            let mut resp =
                                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", b.len())
                                    .into_bytes();
                            resp.extend_from_slice(&b);
                            stream.write_all(&resp).is_ok()
                        } else {
                            stream
                                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                                .is_ok()
                        };
                        if !ok {
                            return;
                        }
                    }
                });
            }
        });
        Server { url, files, log }
    }

    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

pub fn threshold(n: u32) -> Threshold {
    Threshold::new(n).unwrap()
}
