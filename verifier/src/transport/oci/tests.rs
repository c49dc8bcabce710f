//! The OCI transport against an in-memory registry repository that can lie.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use vouch_tuf::oci::{build_trust_artifact, MAX_EMBEDDED_FILE};

use super::*;

/// A registry repository in memory: tags to manifests, digests to blobs, both editable.
#[derive(Default)]
struct Memory {
    tags: Mutex<HashMap<String, Vec<u8>>>,
    blobs: Mutex<HashMap<String, Vec<u8>>>,
    manifest_reads: AtomicUsize,
}

impl Memory {
    fn holding(gun: &str, files: &[(&str, &[u8])]) -> Self {
        let m = Memory::default();
        m.put(gun, files);
        m
    }

    fn put(&self, gun: &str, files: &[(&str, &[u8])]) {
        let files: BTreeMap<String, Vec<u8>> = files
            .iter()
            .map(|(n, b)| ((*n).to_owned(), b.to_vec()))
            .collect();
        let a = build_trust_artifact(&Gun::new(gun).unwrap(), &files, None).unwrap();
        let mut blobs = self.blobs.lock().unwrap();
        for b in &a.blobs {
            blobs.insert(b.digest.to_string(), b.bytes.to_vec());
        }
        self.tags
            .lock()
            .unwrap()
            .insert(TRUST_TAG.to_owned(), a.manifest.clone());
    }
}

impl RegistryRepository for Memory {
    fn location(&self) -> String {
        "registry.example.com/org/app".into()
    }
    fn manifest(
        &self,
        reference: &str,
        max_len: u64,
        _: Option<Instant>,
    ) -> Result<Vec<u8>, TransportError> {
        self.manifest_reads.fetch_add(1, Ordering::SeqCst);
        let b = self
            .tags
            .lock()
            .unwrap()
            .get(reference)
            .cloned()
            .ok_or_else(|| TransportError::NotFound {
                path: reference.into(),
            })?;
        if b.len() as u64 > max_len {
            return Err(TransportError::TooLarge {
                path: reference.into(),
                limit: max_len,
            });
        }
        Ok(b)
    }
    fn blob(
        &self,
        digest: &Digest,
        max_len: u64,
        _: Option<Instant>,
    ) -> Result<Vec<u8>, TransportError> {
        let b = self
            .blobs
            .lock()
            .unwrap()
            .get(digest.as_str())
            .cloned()
            .ok_or_else(|| TransportError::NotFound {
                path: digest.to_string(),
            })?;
        if b.len() as u64 > max_len {
            return Err(TransportError::TooLarge {
                path: digest.to_string(),
                limit: max_len,
            });
        }
        Ok(b)
    }
}

const GUN: &str = "registry.example.com/org/app";

#[test]
fn files_are_served_by_their_names() {
    let t = OciTransport::new(Memory::holding(
        GUN,
        &[("1.root.json", b"root one"), ("timestamp.json", b"ts")],
    ))
    .expecting(Gun::new(GUN).unwrap());
    assert_eq!(t.fetch("1.root.json", 100).unwrap(), b"root one");
    assert_eq!(t.fetch("timestamp.json", 100).unwrap(), b"ts");
    assert!(t.fetch("2.root.json", 100).unwrap_err().is_not_found());
    // One manifest read served all three.
    assert_eq!(t.repository().manifest_reads.load(Ordering::SeqCst), 1);
}

#[test]
fn a_file_over_the_callers_cap_is_not_fetched() {
    let t = OciTransport::new(Memory::holding(GUN, &[("timestamp.json", &[b'x'; 500])]));
    assert!(matches!(
        t.fetch("timestamp.json", 499),
        Err(TransportError::TooLarge { limit: 499, .. })
    ));
}

#[test]
fn a_registry_serving_other_bytes_is_refused() {
    // Too large to be embedded in the manifest: read as a blob.
    let big = vec![b't'; MAX_EMBEDDED_FILE + 1];
    let m = Memory::holding(GUN, &[("timestamp.json", &big)]);
    // Under the digest of the file, other bytes of the same length, then longer ones.
    let digest = Digest::sha256_of(&big).to_string();
    let mut other = big.clone();
    other[0] = b'T';
    m.blobs.lock().unwrap().insert(digest.clone(), other);
    let t = OciTransport::new(m);
    let cap = 1 << 20;
    let e = t.fetch("timestamp.json", cap).unwrap_err();
    assert!(matches!(e, TransportError::Invalid { .. }), "{e}");
    let blobs = &t.repository().blobs;
    blobs
        .lock()
        .unwrap()
        .insert(digest.clone(), vec![b'x'; 10_000_000]);
    let e = t.fetch("timestamp.json", cap).unwrap_err();
    let says = format!("more than the {} bytes", big.len());
    assert!(e.to_string().contains(&says), "{e}");
    // The blob itself reads.
    blobs.lock().unwrap().insert(digest, big.clone());
    assert_eq!(t.fetch("timestamp.json", cap).unwrap(), big);
}

#[test]
fn small_files_come_with_the_manifest() {
    let m = Memory::holding(GUN, &[("1.root.json", b"root"), ("timestamp.json", b"ts")]);
    // Not one blob in the registry: the manifest embeds both files.
    m.blobs.lock().unwrap().clear();
    let t = OciTransport::new(m);
    assert_eq!(t.fetch("1.root.json", 100).unwrap(), b"root");
    assert_eq!(t.fetch("timestamp.json", 100).unwrap(), b"ts");
    // The caller's cap still applies to embedded files.
    assert!(matches!(
        t.fetch("1.root.json", 3),
        Err(TransportError::TooLarge { limit: 3, .. })
    ));
}

#[test]
fn no_trust_tag_says_so() {
    let t = OciTransport::new(Memory::default());
    let e = t.fetch("1.root.json", 100).unwrap_err();
    assert!(e.is_not_found());
    assert!(e.to_string().contains("no vouch trust"), "{e}");
}

#[test]
fn an_image_under_the_trust_tag_is_not_read_as_trust() {
    let m = Memory::default();
    m.tags.lock().unwrap().insert(
        TRUST_TAG.into(),
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":2},"layers":[]}"#.to_vec(),
    );
    let e = OciTransport::new(m).fetch("1.root.json", 100).unwrap_err();
    assert!(matches!(e, TransportError::Invalid { .. }));
    assert!(e.to_string().contains("not a vouch trust artifact"), "{e}");
}

#[test]
fn another_repositorys_trust_is_named() {
    let t = OciTransport::new(Memory::holding(
        "build.example.com/team/app",
        &[("1.root.json", b"r")],
    ))
    .expecting(Gun::new(GUN).unwrap());
    let e = t.fetch("1.root.json", 100).unwrap_err().to_string();
    assert!(
        e.contains("trust of build.example.com/team/app, not of registry.example.com/org/app"),
        "{e}"
    );
    assert!(e.contains("trust_from"), "{e}");
}

#[test]
fn a_moved_tag_is_seen_once_the_manifest_is_old() {
    let t = OciTransport::new(Memory::holding(GUN, &[("timestamp.json", b"ts 1")]));
    assert_eq!(t.fetch("timestamp.json", 100).unwrap(), b"ts 1");
    t.repository().put(GUN, &[("timestamp.json", b"ts 2")]);
    // Within MANIFEST_REUSE the manifest read stands (one refresh, one state)...
    assert_eq!(t.fetch("timestamp.json", 100).unwrap(), b"ts 1");
    // ...and after it the tag is read again.
    if let Ok(mut read) = t.read.lock() {
        if let Some((at, _)) = read.as_mut() {
            *at -= MANIFEST_REUSE;
        }
    }
    assert_eq!(t.fetch("timestamp.json", 100).unwrap(), b"ts 2");
}
