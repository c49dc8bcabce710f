//! Tests of anchors and pin files: which first roots each anchor admits, and every way a
//! pin file can be wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use vouch_tuf::metadata::Role as _;
use vouch_tuf::time::Timestamp;

fn key() -> PrivateKey {
    PrivateKey::generate(Algorithm::Ed25519).unwrap()
}

fn public(sk: &PrivateKey) -> Key {
    Key::from_verifying_key(&sk.verifying_key())
}

/// The repository the roots of these tests are for.
const APP: &str = "r.io/org/app";

/// Root metadata of [`APP`] listing `root_keys` with `threshold` for root (and one key for
/// every other role), version `version`, signed by `signers`.
fn root(
    root_keys: &[&PrivateKey],
    threshold: u32,
    version: u64,
    signers: &[&PrivateKey],
) -> Vec<u8> {
    root_named(Some(APP), root_keys, threshold, version, signers)
}

/// As [`root`], naming repository `name` (or none).
fn root_named(
    name: Option<&str>,
    root_keys: &[&PrivateKey],
    threshold: u32,
    version: u64,
    signers: &[&PrivateKey],
) -> Vec<u8> {
    let mut r = Root::new(Timestamp::from_unix(4_000_000_000));
    if let Some(name) = name {
        r.set_gun(name);
    }
    for k in root_keys {
        r.add_key(TopLevelRole::Root, public(k));
    }
    r.set_threshold(TopLevelRole::Root, Threshold::new(threshold).unwrap());
    let other = key();
    for role in [
        TopLevelRole::Targets,
        TopLevelRole::Snapshot,
        TopLevelRole::Timestamp,
    ] {
        r.add_key(role, public(&other));
    }
    for _ in 1..version {
        r.bump_version();
    }
    let signers: Vec<&dyn Signer> = signers.iter().map(|k| *k as &dyn Signer).collect();
    Metadata::signed_by(r, &signers).unwrap().to_bytes()
}

fn keys_anchor(keys: &[&PrivateKey], threshold: u32) -> Anchor {
    Anchor::keys(
        keys.iter().map(|k| public(k)).collect(),
        Threshold::new(threshold).unwrap(),
    )
    .unwrap()
}

#[test]
fn a_root_signed_by_the_pinned_threshold_of_keys_is_admitted() {
    let (a, b, c) = (key(), key(), key());
    let anchor = keys_anchor(&[&a, &b, &c], 2);
    // The organisation's keys are the repository's root keys; two of them signed.
    anchor
        .admits(&root(&[&a, &b, &c], 2, 1, &[&a, &c]), &gun(APP))
        .unwrap();
    // A repository whose own root has other keys too, signed by two pinned keys.
    let own = key();
    anchor
        .admits(&root(&[&own, &a, &b], 1, 1, &[&own, &a, &b]), &gun(APP))
        .unwrap();
    assert_eq!(anchor.first_root(), FirstRoot::VersionOne);
}

#[test]
fn a_root_signed_by_fewer_pinned_keys_than_the_threshold_is_refused() {
    let (a, b) = (key(), key());
    let anchor = keys_anchor(&[&a, &b], 2);
    let err = anchor
        .admits(&root(&[&a], 1, 1, &[&a]), &gun(APP))
        .unwrap_err();
    assert!(
        matches!(
            err,
            PinError::NotSignedByPinnedKeys {
                valid: 1,
                needed: 2,
                version: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_root_of_other_keys_is_refused() {
    let (a, mallory) = (key(), key());
    let anchor = keys_anchor(&[&a], 1);
    let err = anchor
        .admits(&root(&[&mallory], 1, 1, &[&mallory]), &gun(APP))
        .unwrap_err();
    assert!(
        matches!(
            err,
            PinError::NotSignedByPinnedKeys {
                valid: 0,
                needed: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err
        .to_string()
        .contains("signed by 0 of the pinned root keys, 1 required"));
}

#[test]
fn a_root_its_own_keys_did_not_sign_is_refused_even_when_pinned_keys_signed_it() {
    // The root names mallory's key as its only root key but carries only the pinned key's
    // signature: it is not a root any client could walk from.
    let (a, mallory) = (key(), key());
    let anchor = keys_anchor(&[&a], 1);
    let err = anchor
        .admits(&root(&[&mallory], 1, 1, &[&a]), &gun(APP))
        .unwrap_err();
    assert!(matches!(err, PinError::NotARoot(_)), "{err}");
}

#[test]
fn a_pinned_key_may_be_listed_once_and_the_threshold_reached() {
    let a = key();
    let err = Anchor::keys(vec![public(&a), public(&a)], Threshold::new(2).unwrap()).unwrap_err();
    assert!(err.contains("listed twice"), "{err}");
    let err = Anchor::keys(vec![public(&a)], Threshold::new(2).unwrap()).unwrap_err();
    assert!(
        err.contains("threshold 2 is more than the 1 key(s)"),
        "{err}"
    );
    assert!(Anchor::keys(Vec::new(), Threshold::ONE).is_err());
}

/// The organisation's keys sign every repository's first root, so the signatures cannot
/// tell repositories apart: the root's signed name does, and a root of one repository is
/// refused for another under every kind of anchor.
#[test]
fn one_repositorys_root_is_never_admitted_as_anothers() {
    let org = key();
    let app_root = root(&[&org], 1, 1, &[&org]);
    let api = gun("r.io/org/api");
    let anchors = [
        keys_anchor(&[&org], 1),
        Anchor::Root(PinnedRoot::new(app_root.clone()).unwrap()),
        Anchor::FirstUse,
    ];
    for anchor in &anchors {
        anchor.admits(&app_root, &gun(APP)).unwrap();
        let err = anchor.admits(&app_root, &api).unwrap_err();
        assert!(
            matches!(err, PinError::OtherRepository { ref named, ref gun } if named == APP && gun == api.as_str()),
            "{}: {err}",
            anchor.describe()
        );
    }
    // The name is compared in canonical form.
    keys_anchor(&[&org], 1)
        .admits(
            &root_named(Some("docker.io/library/nginx"), &[&org], 1, 1, &[&org]),
            &gun("docker.io/library/nginx"),
        )
        .unwrap();
}

#[test]
fn pinned_keys_vouch_only_for_a_first_root_that_names_its_repository() {
    let org = key();
    let anchor = keys_anchor(&[&org], 1);
    let unnamed = root_named(None, &[&org], 1, 1, &[&org]);
    assert!(matches!(
        anchor.admits(&unnamed, &gun(APP)),
        Err(PinError::NoRepositoryName { .. })
    ));
    // A root file or trust on first use may still start from an unnamed root.
    Anchor::FirstUse.admits(&unnamed, &gun(APP)).unwrap();
    Anchor::Root(PinnedRoot::new(unnamed.clone()).unwrap())
        .admits(&unnamed, &gun(APP))
        .unwrap();
    // A later root, even signed by the organisation, is not a first root.
    assert!(matches!(
        anchor.admits(&root(&[&org], 1, 2, &[&org]), &gun(APP)),
        Err(PinError::NotFirstRoot { version: 2 })
    ));
}

#[test]
fn a_pinned_root_file_admits_exactly_itself() {
    let a = key();
    let v1 = root(&[&a], 1, 1, &[&a]);
    let anchor = Anchor::Root(PinnedRoot::new(v1.clone()).unwrap());
    anchor.admits(&v1, &gun(APP)).unwrap();
    assert_eq!(anchor.first_root(), FirstRoot::Given);
    // The same keys, another version or another signing: not the pinned file.
    let err = anchor
        .admits(&root(&[&a], 1, 2, &[&a]), &gun(APP))
        .unwrap_err();
    assert!(
        matches!(err, PinError::OtherRoot { version: 2, .. }),
        "{err}"
    );
    // A root file that is no root, or not signed by its own keys, cannot be pinned.
    assert!(PinnedRoot::new(b"{}".to_vec()).is_err());
    let b = key();
    assert!(matches!(
        PinnedRoot::new(root(&[&a], 1, 1, &[&b])),
        Err(PinError::NotARoot(_))
    ));
}

#[test]
fn trust_on_first_use_admits_any_root_that_signs_itself() {
    let a = key();
    Anchor::FirstUse
        .admits(&root(&[&a], 1, 3, &[&a]), &gun(APP))
        .unwrap();
    assert!(Anchor::FirstUse.admits(b"not json", &gun(APP)).is_err());
    assert_eq!(Anchor::FirstUse.first_root(), FirstRoot::VersionOne);
}

#[test]
fn anchors_have_distinct_stable_ids_and_readable_descriptions() {
    let (a, b) = (key(), key());
    let one = keys_anchor(&[&a, &b], 1);
    let two = keys_anchor(&[&a, &b], 2);
    assert_ne!(one.id(), two.id());
    assert_eq!(
        one.id(),
        keys_anchor(&[&b, &a], 1).id(),
        "key order does not matter"
    );
    assert_eq!(one.id().len(), 16);
    assert!(
        two.describe().starts_with("2 of root keys "),
        "{}",
        two.describe()
    );
    let v1 = root(&[&a], 1, 1, &[&a]);
    let pinned = Anchor::Root(PinnedRoot::new(v1.clone()).unwrap());
    assert_eq!(pinned.id(), Digest::sha256_of(&v1).hex()[..16]);
    assert!(pinned.describe().starts_with("root version 1 (sha256 "));
    assert_eq!(Anchor::FirstUse.describe(), "trust on first use");
}

/// A directory with a pin file `pins.toml` holding `text`, key files `a.pub.json`,
/// `b.pub.json`, `c.pub.json` and a root file `app.root.json` signed by a.
struct PinDir {
    dir: tempfile::TempDir,
    keys: Vec<PrivateKey>,
}

impl PinDir {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = vec![key(), key(), key()];
        for (name, k) in ["a", "b", "c"].iter().zip(&keys) {
            std::fs::write(
                dir.path().join(format!("{name}.pub.json")),
                json::canonical(&public(k).to_value()),
            )
            .unwrap();
        }
        std::fs::write(
            dir.path().join("app.root.json"),
            root(&[&keys[0]], 1, 1, &[&keys[0]]),
        )
        .unwrap();
        PinDir { dir, keys }
    }

    fn load(&self, text: &str) -> Result<TrustPins, PinError> {
        let path = self.dir.path().join("pins.toml");
        std::fs::write(&path, text).unwrap();
        TrustPins::load(&path)
    }
}

fn gun(s: &str) -> Gun {
    Gun::new(s).unwrap()
}

#[test]
fn the_most_specific_pin_decides_then_the_first_written() {
    let d = PinDir::new();
    let pins = d
        .load(
            r#"
            [[pin]]
            gun = "registry.example.com/**"
            trust_on_first_use = true

            [[pin]]
            gun = "REGISTRY.example.com:443/org/**"
            root_keys = ["a.pub.json", "b.pub.json", "c.pub.json"]
            threshold = 2

            [[pin]]
            gun = "registry.example.com/org/app"
            root_file = "app.root.json"

            [[pin]]
            gun = "registry.example.com/*/tools"
            trust_on_first_use = true

            [[pin]]
            gun = "registry.example.com/org/*"
            root_keys = ["a.pub.json"]
            "#,
        )
        .unwrap();
    assert_eq!(pins.rules().len(), 5);
    assert_eq!(
        pins.rules()[1].pattern.as_str(),
        "registry.example.com/org/**"
    );
    let anchor = |g: &str| pins.for_gun(&gun(g)).map(|r| &r.anchor);
    assert!(matches!(
        anchor("registry.example.com/org/app"),
        Some(Anchor::Root(_))
    ));
    assert!(matches!(
        anchor("registry.example.com/org/team/app"),
        Some(Anchor::Keys { threshold, .. }) if threshold.get() == 2
    ));
    assert!(matches!(
        anchor("registry.example.com/sandbox/x"),
        Some(Anchor::FirstUse)
    ));
    // Both `*/tools` and `org/*` match org/tools with equal specificity: the first written.
    assert!(matches!(
        anchor("registry.example.com/org/tools"),
        Some(Anchor::FirstUse)
    ));
    assert!(anchor("other.example.com/org/app").is_none());
    assert!(pins.rules()[2]
        .origin
        .contains("pins.toml, pin 3 (registry.example.com/org/app)"));
    // The pinned keys are the files' keys.
    let Some(Anchor::Keys { keys, .. }) = anchor("registry.example.com/org/team/app") else {
        unreachable!()
    };
    assert!(keys.contains_key(&public(&d.keys[1]).key_id()));
}

#[test]
fn every_mistake_in_a_pin_file_is_named() {
    let d = PinDir::new();
    for (text, expected) in [
        ("[[pin]]\ngun = \"r.io/org/**\"\n", "exactly one of"),
        (
            "[[pin]]\ngun = \"r.io/org/**\"\nroot_file = \"app.root.json\"\ntrust_on_first_use = true\n",
            "exactly one of",
        ),
        (
            "[[pin]]\ngun = \"r.io/org/**\"\nroot_file = \"app.root.json\"\nthreshold = 1\n",
            "`threshold` goes with `root_keys`",
        ),
        (
            "[[pin]]\ngun = \"r.io/org/**\"\nroot_keys = [\"a.pub.json\"]\nthreshold = 2\n",
            "threshold 2 is more than the 1 key(s)",
        ),
        (
            "[[pin]]\ngun = \"r.io/org/**\"\nroot_keys = [\"a.pub.json\"]\nthreshold = 0\n",
            "threshold must be at least 1",
        ),
        (
            "[[pin]]\ngun = \"r.io/org/**\"\nroot_keys = [\"a.pub.json\", \"a.pub.json\"]\n",
            "listed twice",
        ),
        (
            "[[pin]]\ngun = \"r.io/org/**\"\nroot_keys = [\"missing.pub.json\"]\n",
            "missing.pub.json",
        ),
        (
            "[[pin]]\ngun = \"r.io/org/**\"\nroot_keys = [\"app.root.json\"]\n",
            "not a TUF key object",
        ),
        (
            "[[pin]]\ngun = \"r.io/org/**\"\nroot_file = \"a.pub.json\"\n",
            "not a usable root",
        ),
        ("[[pin]]\ngun = \"r.io/Org/app\"\ntrust_on_first_use = true\n", "lower case"),
        ("[[pin]]\ngun = \"r.io/app:v1\"\ntrust_on_first_use = true\n", "tag"),
        (
            "[[pin]]\ngun = \"r.io/app\"\ntrust_on_first_use = true\n[[pin]]\ngun = \"R.IO/app\"\ntrust_on_first_use = true\n",
            "pinned twice",
        ),
        ("[[pin]]\ngun = \"r.io/app\"\nroot = \"x\"\n", "unknown field"),
        ("[[pins]]\ngun = \"r.io/app\"\n", "unknown field"),
    ] {
        let err = d.load(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{text:?}: {err}");
        assert!(err.contains("pins.toml"), "{text:?}: names the file: {err}");
    }
    let err = TrustPins::load(&d.dir.path().join("none.toml")).unwrap_err();
    assert!(matches!(err, PinError::Read { .. }), "{err}");
}

#[test]
fn an_oversized_key_file_is_not_read_whole() {
    let d = PinDir::new();
    let big = d.dir.path().join("big.pub.json");
    std::fs::write(&big, vec![b' '; (MAX_KEY_FILE_BYTES + 1) as usize]).unwrap();
    let err = d
        .load("[[pin]]\ngun = \"r.io/org/**\"\nroot_keys = [\"big.pub.json\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("larger than"), "{err}");
}

/// The examples checked in under `trust-roots/` load, and the example repository root
/// there is admitted by the organisation's keys pinned for it.
#[test]
fn the_checked_in_examples_load_and_agree() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../trust-roots");
    let pins = TrustPins::load(&dir.join("pins.toml")).unwrap();
    let rule = pins
        .for_gun(&gun("registry.example.com/org/team/app"))
        .expect("a pin for the example repository");
    let example = std::fs::read(dir.join("examples/org-app.root.json")).unwrap();
    let org_app = gun("registry.example.com/org/app");
    rule.anchor.admits(&example, &org_app).unwrap();
    // It is the root of org/app: not of another repository under the same pattern.
    assert!(matches!(
        rule.anchor
            .admits(&example, &gun("registry.example.com/org/team/app")),
        Err(PinError::OtherRepository { .. })
    ));
    let Anchor::Keys { threshold, keys } = &rule.anchor else {
        panic!("the organisation pin is a key pin: {:?}", rule.anchor)
    };
    assert_eq!((threshold.get(), keys.len()), (2, 3));
    // A root signed by one organisation key only is not enough.
    let stranger = key();
    assert!(rule
        .anchor
        .admits(
            &root_named(Some(org_app.as_str()), &[&stranger], 1, 1, &[&stranger]),
            &org_app
        )
        .is_err());
    // The repository pinned by its root file: exactly that root, which is also one the
    // organisation's keys accept.
    let exact = pins.for_gun(&gun("registry.example.com/org/app")).unwrap();
    assert!(matches!(exact.anchor, Anchor::Root(_)));
    exact.anchor.admits(&example, &org_app).unwrap();
    assert!(matches!(
        pins.for_gun(&gun("registry.example.com/sandbox/tool"))
            .unwrap()
            .anchor,
        Anchor::FirstUse
    ));
    assert!(pins
        .for_gun(&gun("registry.example.com/other/app"))
        .is_none());
}

#[test]
fn trust_from_maps_a_repository_or_a_prefix_to_its_source() {
    let d = PinDir::new();
    let pins = d
        .load(
            r#"
            [[pin]]
            gun = "build.example.com/team/**"
            root_keys = ["a.pub.json", "b.pub.json"]
            threshold = 2

            [[pin]]
            gun = "prod.example.com/**"
            trust_on_first_use = true

            [[pin]]
            gun = "PROD.example.com:443/app"
            trust_from = "build.example.com/team/app"

            [[pin]]
            gun = "prod.example.com/apps/**"
            trust_from = "Build.Example.COM/team/**"

            [[pin]]
            gun = "prod.example.com/apps/pinned"
            root_file = "app.root.json"
            "#,
        )
        .unwrap();
    assert_eq!(pins.rules().len(), 3);
    assert_eq!(pins.mappings().len(), 2);
    let source = |g: &str| {
        pins.trust_source(&gun(g))
            .unwrap()
            .map(|m| m.source.to_string())
    };
    // Spelled any way a runtime pulls it, the repository maps to its source.
    assert_eq!(
        source("prod.example.com/app").as_deref(),
        Some("build.example.com/team/app")
    );
    assert_eq!(
        source("prod.example.com:443/app").as_deref(),
        Some("build.example.com/team/app")
    );
    // A prefix carries the rest of the name over.
    assert_eq!(
        source("prod.example.com/apps/web/api").as_deref(),
        Some("build.example.com/team/web/api")
    );
    // The source is canonical, however the prefix mapping spells it.
    let hub = d
        .load(
            r#"
            [[pin]]
            gun = "prod.example.com/hub/**"
            trust_from = "docker.io/**"
            "#,
        )
        .unwrap();
    assert_eq!(
        hub.trust_source(&gun("prod.example.com/hub/nginx"))
            .unwrap()
            .unwrap()
            .source
            .as_str(),
        "docker.io/library/nginx"
    );
    // A more specific anchor wins over a mapping; a less specific one does not.
    assert_eq!(source("prod.example.com/apps/pinned"), None);
    assert_eq!(source("prod.example.com/other"), None);
    assert_eq!(source("build.example.com/team/app"), None);
    let m = pins
        .trust_source(&gun("prod.example.com/app"))
        .unwrap()
        .unwrap();
    assert!(
        m.origin.contains("pin 3 (prod.example.com/app)"),
        "{}",
        m.origin
    );
    // The source's own pin anchors it.
    assert!(matches!(
        pins.for_gun(&m.source).map(|r| &r.anchor),
        Some(Anchor::Keys { threshold, .. }) if threshold.get() == 2
    ));
}

#[test]
fn a_mapping_is_followed_once_and_written_one_way() {
    let d = PinDir::new();
    let pins = d
        .load(
            r#"
            [[pin]]
            gun = "a.example.com/app"
            trust_from = "b.example.com/app"

            [[pin]]
            gun = "b.example.com/app"
            trust_from = "c.example.com/app"
            "#,
        )
        .unwrap();
    let e = pins.trust_source(&gun("a.example.com/app")).unwrap_err();
    assert!(matches!(e, PinError::MappedTwice { .. }), "{e}");
    assert!(e.to_string().contains("mapped again"), "{e}");
    assert_eq!(
        pins.trust_source(&gun("b.example.com/app"))
            .unwrap()
            .unwrap()
            .source
            .as_str(),
        "c.example.com/app"
    );

    for (text, says) in [
        (
            r#"[[pin]]
            gun = "a.example.com/app"
            trust_from = "b.example.com/app"
            trust_on_first_use = true"#,
            "stands alone",
        ),
        (
            r#"[[pin]]
            gun = "a.example.com/*"
            trust_from = "b.example.com/app""#,
            "one repository to one repository",
        ),
        (
            r#"[[pin]]
            gun = "a.example.com/**"
            trust_from = "b.example.com/app""#,
            "prefix ending in /**",
        ),
        (
            r#"[[pin]]
            gun = "a.example.com/app"
            trust_from = "not a name""#,
            "trust_from",
        ),
        (
            r#"[[pin]]
            gun = "a.example.com/app"
            trust_on_first_use = true
            [[pin]]
            gun = "a.example.com/app"
            trust_from = "b.example.com/app""#,
            "pinned twice",
        ),
    ] {
        let e = d.load(text).unwrap_err().to_string();
        assert!(e.contains(says), "{says}: {e}");
    }
}
