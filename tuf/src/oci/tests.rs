//! Tests of the trust artifact layout and of manifest references.

#![allow(clippy::unwrap_used)]

use super::*;

fn gun() -> Gun {
    Gun::new("registry.example.com/org/app").unwrap()
}

fn files() -> BTreeMap<String, Vec<u8>> {
    let mut f = BTreeMap::new();
    for (name, body) in [
        ("10.root.json", "root 10"),
        ("2.root.json", "root 2"),
        ("1.root.json", "root 1"),
        ("timestamp.json", "ts"),
        ("7.snapshot.json", "sn"),
        ("12.targets.json", "tg"),
        ("3.targets%2Freleases.json", "rel"),
    ] {
        f.insert(name.to_owned(), body.as_bytes().to_vec());
    }
    f
}

fn names_in_layer_order(manifest: &[u8]) -> Vec<String> {
    let v = json::parse(manifest).unwrap();
    v.as_object()
        .unwrap()
        .get("layers")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l.as_object()
                .unwrap()
                .get("annotations")
                .unwrap()
                .as_object()
                .unwrap()[FILENAME_ANNOTATION]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn an_artifact_reads_back_with_every_file_and_its_digest() {
    let f = files();
    let a = build_trust_artifact(&gun(), &f, None).unwrap();
    let m = TrustManifest::parse(&a.manifest).unwrap();
    assert_eq!(m.files().len(), f.len());
    for (name, bytes) in &f {
        let file = m.file(name).unwrap();
        assert_eq!(file.digest, Digest::sha256_of(bytes), "{name}");
        assert_eq!(file.size, bytes.len() as u64);
    }
    assert_eq!(m.gun(), Some("registry.example.com/org/app"));
    assert_eq!(m.previous(), None);
    assert_eq!(a.digest, Digest::sha256_of(&a.manifest));
    // The config blob, then one blob per file, each hashing to its digest.
    assert_eq!(a.blobs.len(), f.len() + 1);
    assert_eq!(a.blobs[0].bytes, EMPTY_JSON);
    for b in &a.blobs {
        assert!(b.digest.matches(b.bytes));
    }
    assert!(m.same_files(&a.files));
}

#[test]
fn layers_are_ordered_roots_by_version_then_top_level_roles_then_delegations() {
    let f = files();
    let a = build_trust_artifact(&gun(), &f, None).unwrap();
    assert_eq!(
        names_in_layer_order(&a.manifest),
        [
            "1.root.json",
            "2.root.json",
            "10.root.json",
            "timestamp.json",
            "7.snapshot.json",
            "12.targets.json",
            "3.targets%2Freleases.json"
        ]
    );
}

#[test]
fn the_same_files_give_the_same_manifest() {
    let f = files();
    let a = build_trust_artifact(&gun(), &f, None).unwrap();
    let b = build_trust_artifact(&gun(), &f, None).unwrap();
    assert_eq!(a.manifest, b.manifest);
    let prev = Digest::sha256_of(b"older");
    let c = build_trust_artifact(&gun(), &f, Some(&prev)).unwrap();
    assert_ne!(c.digest, a.digest);
    assert_eq!(
        TrustManifest::parse(&c.manifest).unwrap().previous(),
        Some(&prev)
    );
}

#[test]
fn same_files_notices_any_change() {
    let f = files();
    let a = build_trust_artifact(&gun(), &f, None).unwrap();
    let m = TrustManifest::parse(&a.manifest).unwrap();
    let mut changed = a.files.clone();
    changed.insert("timestamp.json".into(), Digest::sha256_of(b"ts 2"));
    assert!(!m.same_files(&changed));
    let mut fewer = a.files.clone();
    fewer.remove("3.targets%2Freleases.json");
    assert!(!m.same_files(&fewer));
    let mut more = a.files.clone();
    more.insert("11.root.json".into(), Digest::sha256_of(b"r"));
    assert!(!m.same_files(&more));
}

#[test]
fn files_that_are_not_metadata_cannot_go_in() {
    for bad in [
        "../root.json",
        "a/b.json",
        "timestamp.key",
        "root",
        "3.targets/releases.json",
        "3.targets%2freleases.json",
        "",
    ] {
        let mut f = files();
        f.insert(bad.to_owned(), b"x".to_vec());
        let e = build_trust_artifact(&gun(), &f, None).unwrap_err();
        assert!(
            matches!(e, OciError::File { ref name, .. } if name == bad),
            "{bad}: {e}"
        );
    }
    let e = build_trust_artifact(&gun(), &BTreeMap::new(), None).unwrap_err();
    assert!(matches!(e, OciError::File { .. }));
}

/// The artifact's manifest as JSON, changed by `edit`, written back.
fn edited(edit: impl FnOnce(&mut Map)) -> Vec<u8> {
    let f = files();
    let a = build_trust_artifact(&gun(), &f, None).unwrap();
    let mut v = json::parse(&a.manifest).unwrap();
    if let Value::Object(m) = &mut v {
        edit(m);
    }
    json::to_json(&v)
}

fn first_layer(m: &mut Map) -> &mut Map {
    match m.get_mut("layers") {
        Some(Value::Array(ls)) => match &mut ls[0] {
            Value::Object(l) => l,
            _ => unreachable!(),
        },
        _ => unreachable!(),
    }
}

#[test]
fn an_image_under_the_tag_is_not_trust() {
    let image = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:4413
    "#;
    assert!(matches!(
        TrustManifest::parse(image),
        Err(OciError::Malformed(_))
    ));
    let no_type = edited(|m| {
        m.remove("artifactType");
    });
    assert!(matches!(
        TrustManifest::parse(&no_type),
        Err(OciError::NotTrust(_))
    ));
    let other_type = edited(|m| {
        m.insert(
            "artifactType".into(),
            Value::from("application/vnd.cncf.notary.signature"),
        );
    });
    assert!(matches!(
        TrustManifest::parse(&other_type),
        Err(OciError::NotTrust(_))
    ));
    let index = edited(|m| {
        m.insert("mediaType".into(), Value::from(OCI_INDEX));
    });
    assert!(matches!(
        TrustManifest::parse(&index),
        Err(OciError::NotTrust(_))
    ));
}

/// A change to a manifest.
type Edit = Box<dyn FnOnce(&mut Map)>;

#[test]
fn layers_are_checked_one_by_one() {
    let cases: Vec<(&str, Edit)> = vec![
        (
            "media type",
            Box::new(|m: &mut Map| {
                first_layer(m).insert(
                    "mediaType".into(),
                    Value::from("application/vnd.oci.image.layer.v1.tar+gzip"),
                );
            }),
        ),
        (
            "sha256",
            Box::new(|m: &mut Map| {
                first_layer(m).insert(
                    "digest".into(),
                    Value::from(format!("sha512:{}", "a".repeat(128))),
                );
            }),
        ),
        (
            "announces",
            Box::new(|m: &mut Map| {
                first_layer(m).insert("size".into(), Value::from(MAX_FILE_BYTES + 1));
            }),
        ),
        (
            "annotation",
            Box::new(|m: &mut Map| {
                first_layer(m).remove("annotations");
            }),
        ),
        (
            "file name",
            Box::new(|m: &mut Map| {
                let mut a = Map::new();
                a.insert(FILENAME_ANNOTATION.into(), Value::from("../../etc/passwd"));
                first_layer(m).insert("annotations".into(), Value::from(a));
            }),
        ),
        (
            "twice",
            Box::new(|m: &mut Map| {
                let mut a = Map::new();
                a.insert(FILENAME_ANNOTATION.into(), Value::from("2.root.json"));
                first_layer(m).insert("annotations".into(), Value::from(a));
            }),
        ),
        (
            "no size",
            Box::new(|m: &mut Map| {
                first_layer(m).remove("size");
            }),
        ),
    ];
    for (what, edit) in cases {
        let bytes = edited(edit);
        match TrustManifest::parse(&bytes) {
            Err(OciError::Layer { index, message }) if index <= 1 => {
                assert!(message.contains(what), "{what}: {message}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn bounds_are_enforced_before_anything_is_believed() {
    let huge = vec![b' '; MAX_MANIFEST_BYTES as usize + 1];
    assert!(matches!(
        TrustManifest::parse(&huge),
        Err(OciError::TooMany {
            what: "manifest bytes",
            ..
        })
    ));
    let many = edited(|m| {
        let layer = first_layer(m).clone();
        m.insert(
            "layers".into(),
            Value::from(vec![Value::from(layer); MAX_TRUST_FILES + 1]),
        );
    });
    assert!(matches!(
        TrustManifest::parse(&many),
        Err(OciError::TooMany { what: "layers", .. })
    ));
    let bad_prev = edited(|m| {
        let mut a = Map::new();
        a.insert(PREVIOUS_ANNOTATION.into(), Value::from("sha256:nothex"));
        m.insert("annotations".into(), Value::from(a));
    });
    assert!(matches!(
        TrustManifest::parse(&bad_prev),
        Err(OciError::Malformed(_))
    ));
}

const CONFIG: &str = r#"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":10}"#;
const LAYER: &str = r#"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":20}"#;

#[test]
fn an_image_lists_config_then_layers() {
    let doc = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{CONFIG},"layers":[{LAYER}]}}"#
    );
    let r = References::parse(doc.as_bytes(), None).unwrap();
    assert_eq!(r.kind, ManifestKind::Image);
    assert_eq!(r.blobs.len(), 2);
    assert_eq!(r.blobs[0].size, 10);
    assert_eq!(r.blobs[1].size, 20);
    assert!(!r.blobs[1].external);
    // Without mediaType in the document, the type served decides; else the shape does.
    let bare = format!(r#"{{"schemaVersion":2,"config":{CONFIG},"layers":[{LAYER}]}}"#);
    let r = References::parse(bare.as_bytes(), None).unwrap();
    assert_eq!(r.media_type, OCI_MANIFEST);
}

#[test]
fn an_index_lists_its_manifests() {
    let m = r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":400,"platform":{"os":"linux","architecture":"arm64"}}"#;
    let doc = format!(r#"{{"schemaVersion":2,"manifests":[{m},{m}]}}"#);
    let r = References::parse(doc.as_bytes(), Some(OCI_INDEX)).unwrap();
    assert_eq!(r.kind, ManifestKind::Index);
    assert_eq!(r.manifests.len(), 2);
    let list =
        format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[{m}]}}"#);
    assert_eq!(
        References::parse(list.as_bytes(), None).unwrap().kind,
        ManifestKind::Index
    );
}

#[test]
fn foreign_layers_are_marked_and_bad_manifests_refused() {
    let foreign = r#"{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":20,"urls":["https://example.com/l"]}"#;
    let doc = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{CONFIG},"layers":[{foreign}]}}"#
    );
    assert!(References::parse(doc.as_bytes(), None).unwrap().blobs[1].external);
    for bad in [
        r#"{"schemaVersion":1,"name":"x"}"#.to_owned(),
        format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#),
        format!(r#"{{"schemaVersion":2,"mediaType":"text/plain","config":{CONFIG}}}"#),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{CONFIG},"layers":[{{"digest":"sha256:x","size":1,"mediaType":"a"}}]}}"#
        ),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{CONFIG},"layers":[{LAYER}],"layers":[]}}"#
        ),
    ] {
        assert!(References::parse(bad.as_bytes(), None).is_err(), "{bad}");
    }
    let many = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{CONFIG},"layers":[{}]}}"#,
        vec![LAYER; MAX_REFERENCES + 1].join(",")
    );
    assert!(matches!(
        References::parse(many.as_bytes(), None),
        Err(OciError::TooMany { what: "layers", .. })
    ));
}

#[test]
fn small_files_are_embedded_within_the_budget_and_checked() {
    let mut f = BTreeMap::new();
    f.insert("1.root.json".to_owned(), b"root".to_vec());
    f.insert("timestamp.json".to_owned(), b"ts".to_vec());
    f.insert(
        "2.snapshot.json".to_owned(),
        vec![b's'; MAX_EMBEDDED_FILE + 1],
    );
    f.insert("3.targets.json".to_owned(), vec![b't'; MAX_EMBEDDED_FILE]);
    let a = build_trust_artifact(&gun(), &f, None).unwrap();
    let m = TrustManifest::parse(&a.manifest).unwrap();
    assert_eq!(
        m.file("1.root.json").unwrap().data.as_deref(),
        Some(&b"root"[..])
    );
    assert_eq!(
        m.file("timestamp.json").unwrap().data.as_deref(),
        Some(&b"ts"[..])
    );
    assert_eq!(m.file("2.snapshot.json").unwrap().data, None);
    assert_eq!(
        m.file("3.targets.json")
            .unwrap()
            .data
            .as_ref()
            .map(Vec::len),
        Some(MAX_EMBEDDED_FILE)
    );
    // The total is bounded: of one file more than the budget holds, all but one fit.
    let mut many = BTreeMap::new();
    for v in 1..=MAX_EMBEDDED_TOTAL / MAX_EMBEDDED_FILE + 1 {
        many.insert(format!("{v}.root.json"), vec![b'r'; MAX_EMBEDDED_FILE]);
    }
    let a = build_trust_artifact(&gun(), &many, None).unwrap();
    let m = TrustManifest::parse(&a.manifest).unwrap();
    let embedded = m.files().values().filter(|f| f.data.is_some()).count();
    assert_eq!(embedded, MAX_EMBEDDED_TOTAL / MAX_EMBEDDED_FILE);
    assert!(a.manifest.len() as u64 <= MAX_MANIFEST_BYTES);
}

#[test]
fn embedded_data_must_be_the_blob() {
    for (what, data) in [
        ("other bytes", Value::from(Base64::encode_string(b"root 2"))),
        ("not base64", Value::from("!!!")),
        ("not a string", Value::from(7u64)),
    ] {
        let bytes = edited(|m| {
            first_layer(m).insert("data".into(), data);
        });
        match TrustManifest::parse(&bytes) {
            Err(OciError::Layer { index: 0, .. }) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
}

fn signed_version(version: u64) -> Vec<u8> {
    format!(r#"{{"signatures":[],"signed":{{"_type":"timestamp","version":{version}}}}}"#)
        .into_bytes()
}

/// An artifact of `gun` whose first root is `root` and timestamp version `ts`.
fn state(root: &[u8], ts: u64, extra: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut f = BTreeMap::new();
    f.insert("1.root.json".to_owned(), root.to_vec());
    f.insert("timestamp.json".to_owned(), signed_version(ts));
    f.insert("3.targets.json".to_owned(), extra.to_vec());
    f
}

#[test]
fn writers_push_replace_skip_or_refuse_by_one_rule() {
    let g = gun();
    let v5 = state(b"root", 5, b"t5");
    let v6 = state(b"root", 6, b"t6");
    let a5 = build_trust_artifact(&g, &v5, None).unwrap();
    let a6 = build_trust_artifact(&g, &v6, None).unwrap();
    // Nothing there: push.
    assert_eq!(
        decide_push(&g, None, &a5),
        PushDecision::Push { previous: None }
    );
    // The older state there: replace it, chaining to it.
    assert_eq!(
        decide_push(&g, Some((&a5.manifest, &a5.digest)), &a6),
        PushDecision::Push {
            previous: Some(a5.digest.clone())
        }
    );
    // The same files: unchanged.
    assert_eq!(
        decide_push(&g, Some((&a6.manifest, &a6.digest)), &a6),
        PushDecision::Unchanged(a6.digest.clone())
    );
    // A newer state of the same history there: a slow writer does not roll it back.
    assert_eq!(
        decide_push(&g, Some((&a6.manifest, &a6.digest)), &a5),
        PushDecision::Older { current: 6, new: 5 }
    );
    // A repository created again (another first root) starts over: it replaces the copy.
    let again = state(b"another root", 1, b"t1");
    let a1 = build_trust_artifact(&g, &again, None).unwrap();
    assert_eq!(
        decide_push(&g, Some((&a6.manifest, &a6.digest)), &a1),
        PushDecision::Push {
            previous: Some(a6.digest.clone())
        }
    );
    // Another repository's artifact, or an image: left alone.
    let other = Gun::new("registry.example.com/org/other").unwrap();
    let theirs = build_trust_artifact(&other, &v6, None).unwrap();
    assert!(matches!(
        decide_push(&g, Some((&theirs.manifest, &theirs.digest)), &a6),
        PushDecision::Refuse(why) if why.contains("another repository (registry.example.com/org/other)")
    ));
    let image = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":2},"layers":[]}"#;
    let d = Digest::sha256_of(image);
    assert!(matches!(
        decide_push(&g, Some((image, &d)), &a6),
        PushDecision::Refuse(why) if why.contains("not a vouch trust artifact")
    ));
}

#[test]
fn a_push_over_a_held_artifact_sends_only_the_blobs_it_does_not_list() {
    let g = gun();
    let new = state(b"root", 2, b"t2");
    let fresh = build_trust_artifact(&g, &new, None).unwrap();
    assert_eq!(fresh.blobs_over(None).len(), fresh.blobs.len());
    let old = state(b"root", 1, b"t1");
    let held = build_trust_artifact(&g, &old, None).unwrap();
    let held = TrustManifest::parse(&held.manifest).unwrap();
    let sent: Vec<&Digest> = fresh
        .blobs_over(Some(&held))
        .iter()
        .map(|b| &b.digest)
        .collect();
    // The root and the empty config are held already; the new timestamp and targets are not.
    let mut want = vec![
        Digest::sha256_of(&signed_version(2)),
        Digest::sha256_of(b"t2"),
    ];
    want.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut sent: Vec<Digest> = sent.into_iter().cloned().collect();
    sent.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(sent, want);
}
