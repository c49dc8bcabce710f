//! Unit tests of [`super`]: sealing, the key-encryption key and its rotation, online key rotation,
//! and the creation limit.

use super::*;

#[test]
fn seal_binds_to_context() {
    let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
    let sealed = kek.seal("a", b"secret").unwrap();
    assert_eq!(kek.open("a", &sealed).unwrap().as_slice(), b"secret");
    assert!(kek.open("b", &sealed).is_none());
    let other = Kek::from_bytes(&[8u8; 32]).unwrap();
    assert!(other.open("a", &sealed).is_none());
    let mut tampered = sealed.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(kek.open("a", &tampered).is_none());
    assert!(kek.open("a", &sealed[..5]).is_none());
}

/// A store with timestamp and snapshot keys for two repositories (one timestamp key
/// rotated, so a retired key is there too), sealed under the KEK file in `dir`.
fn store_with_keys(dir: &Path) -> (Arc<dyn Store>, Vec<(Gun, &'static str)>) {
    let store: Arc<dyn Store> = Arc::new(crate::store::SqliteStore::open(&dir.join("db")).unwrap());
    let keys = OnlineKeys::new(
        store.clone(),
        Kek::load_or_create(&dir.join("kek")).unwrap(),
    );
    let now = Timestamp::from_unix(1_700_000_000);
    let mut roles = Vec::new();
    for gun in ["example.com/a", "example.com/b"] {
        let gun = Gun::new(gun).unwrap();
        for role in ["timestamp", "snapshot"] {
            keys.current(&gun, role, true, now).unwrap();
            roles.push((gun.clone(), role));
        }
    }
    // As if a root listed the first key, so the rotation makes a second one.
    let first = keys
        .current(&roles[0].0, "timestamp", false, now)
        .unwrap()
        .unwrap();
    let named = [KeyId::new(first.keyid).unwrap()];
    keys.rotate(&roles[0].0, "timestamp", &named, now).unwrap();
    (store, roles)
}

/// How many of the stored keys `kek` opens, of how many.
fn opened(store: &dyn Store, roles: &[(Gun, &str)], kek: &Kek) -> (usize, usize) {
    let (mut ok, mut all) = (0, 0);
    for (gun, role) in roles {
        for k in store.online_keys(gun, role).unwrap() {
            all += 1;
            ok += usize::from(
                kek.open(&aad(gun, role, &k.keyid), &k.sealed_private)
                    .is_some(),
            );
        }
    }
    (ok, all)
}

#[test]
fn rotating_the_kek_reseals_every_key_and_replaces_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, roles) = store_with_keys(dir.path());
    let kek_path = dir.path().join("kek");
    let old = Kek::load_or_create(&kek_path).unwrap();
    assert_eq!(opened(store.as_ref(), &roles, &old), (5, 5));

    let r = rotate_kek(store.as_ref(), &kek_path).unwrap();
    assert_eq!(
        r,
        KekRotation {
            resealed: 5,
            resumed: false
        }
    );
    assert!(!pending_kek_path(&kek_path).exists());
    let new = Kek::load_or_create(&kek_path).unwrap();
    assert_eq!(opened(store.as_ref(), &roles, &new), (5, 5));
    assert_eq!(opened(store.as_ref(), &roles, &old), (0, 5));
    // The server signs with the same keys as before.
    let keys = OnlineKeys::new(store.clone(), new);
    keys.signers(&roles[0].0, &Wanted::All).unwrap();
}

#[test]
fn an_interrupted_rotation_is_finished_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let (store, roles) = store_with_keys(dir.path());
    let kek_path = dir.path().join("kek");
    let old = Kek::load_or_create(&kek_path).unwrap();
    // Interrupted after the database was re-sealed, before the file was renamed.
    let pending = Kek::load_or_create(&pending_kek_path(&kek_path)).unwrap();
    store
        .reseal_online_keys(&mut |gun, role, keyid, sealed| {
            let aad = aad_of(gun, role, keyid);
            let plain = old.open(&aad, sealed).unwrap();
            Ok(pending.seal(&aad, &plain).unwrap())
        })
        .unwrap();
    let r = rotate_kek(store.as_ref(), &kek_path).unwrap();
    assert_eq!(
        r,
        KekRotation {
            resealed: 5,
            resumed: true
        }
    );
    let now_kek = Kek::load_or_create(&kek_path).unwrap();
    assert_eq!(opened(store.as_ref(), &roles, &now_kek), (5, 5));
    assert_eq!(opened(store.as_ref(), &roles, &pending), (5, 5));
}

#[test]
fn a_key_that_opens_under_neither_kek_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, roles) = store_with_keys(dir.path());
    let kek_path = dir.path().join("kek");
    let old = Kek::load_or_create(&kek_path).unwrap();
    // One more key, sealed under some other KEK.
    let stranger = Kek::from_bytes(&[9u8; 32]).unwrap();
    let gun = Gun::new("example.com/c").unwrap();
    let sealed = stranger.seal(&aad(&gun, "timestamp", "k"), b"x").unwrap();
    let key = StoredKey {
        keyid: "k".into(),
        public: "{}".into(),
        sealed_private: sealed,
        created_at: Timestamp::from_unix(1),
    };
    store.add_online_key(&gun, "timestamp", &key, None).unwrap();

    let err = rotate_kek(store.as_ref(), &kek_path).unwrap_err();
    assert!(
        err.to_string().contains("timestamp key k of example.com/c"),
        "{err}"
    );
    // Every key still opens under the KEK in the file.
    assert_eq!(opened(store.as_ref(), &roles, &old), (5, 5));
    // Without a KEK file there is nothing to rotate.
    let missing = dir.path().join("none");
    assert!(matches!(
        rotate_kek(store.as_ref(), &missing),
        Err(KeyError::Kek { .. })
    ));
}

#[test]
fn kek_file_is_created_private_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek");
    let a = Kek::load_or_create(&path).unwrap();
    let sealed = a.seal("x", b"k").unwrap();
    let b = Kek::load_or_create(&path).unwrap();
    assert_eq!(b.open("x", &sealed).unwrap().as_slice(), b"k");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    std::fs::write(&path, "not hex").unwrap();
    assert!(matches!(
        Kek::load_or_create(&path),
        Err(KeyError::Kek { .. })
    ));
    assert!(!format!("{a:?}").contains('7'));
}

#[test]
fn rotation_waits_for_a_root_and_only_named_keys_are_unsealed() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(crate::store::SqliteStore::open(&dir.path().join("db")).unwrap());
    let kek = || Kek::from_bytes(&[7; 32]).unwrap();
    let keys = OnlineKeys::new(store.clone(), kek());
    let gun = Gun::new("example.com/app").unwrap();
    let now = Timestamp::from_unix(0);
    let id = |k: &StoredKey| KeyId::new(k.keyid.clone()).unwrap();
    let first = keys.current(&gun, "timestamp", true, now).unwrap().unwrap();
    // No root lists the first key: rotating answers it again, however often.
    for _ in 0..5 {
        let r = keys.rotate(&gun, "timestamp", &[], now).unwrap();
        assert!(matches!(r, Rotation::Pending(ref k) if k.keyid == first.keyid));
    }
    // Each time a root adopts the newest key, one more can be made.
    let mut named = vec![id(&first)];
    for _ in 0..10 {
        let k = keys.rotate(&gun, "timestamp", &named, now).unwrap();
        let Rotation::New(k) = k else {
            panic!("expected a new key")
        };
        named = vec![id(&k)];
        assert!(matches!(
            keys.rotate(&gun, "timestamp", &[], now).unwrap(),
            Rotation::Pending(_)
        ));
    }
    assert_eq!(store.online_keys(&gun, "timestamp").unwrap().len(), 11);
    // A fresh process signing for a root that names one old key unseals that key and
    // the newest, not the nine retired ones.
    let fresh = OnlineKeys::new(store.clone(), kek());
    let all = store.online_keys(&gun, "timestamp").unwrap();
    let named = [id(&all[3])];
    let held = fresh.signers(&gun, &Wanted::Named(&named)).unwrap();
    let ids: Vec<&str> = held.timestamp.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(ids, [all[3].keyid.as_str(), all[10].keyid.as_str()]);
    assert_eq!(fresh.cached(), 2);
}

#[test]
fn first_keys_are_limited_per_minute_and_existing_ones_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(crate::store::SqliteStore::open(&dir.path().join("db")).unwrap());
    let keys =
        OnlineKeys::new(store.clone(), Kek::from_bytes(&[7; 32]).unwrap()).with_creation_limit(3);
    let now = Timestamp::from_unix(0);
    let gun = |i: usize| Gun::new(&format!("example.com/app{i}")).unwrap();
    for i in 0..3 {
        keys.current(&gun(i), "timestamp", true, now).unwrap();
    }
    let refused = keys.current(&gun(3), "timestamp", true, now).unwrap_err();
    assert!(
        matches!(refused, KeyError::CreationLimit { per_minute: 3 }),
        "{refused}"
    );
    // Rotating a repository that has no key yet makes a first key: limited the same way.
    let rotated = keys.rotate(&gun(4), "timestamp", &[], now).unwrap_err();
    assert!(
        matches!(rotated, KeyError::CreationLimit { .. }),
        "{rotated}"
    );
    assert!(store.online_keys(&gun(4), "timestamp").unwrap().is_empty());
    // Nothing was written for the refused repository; existing keys are still served.
    assert!(store.online_keys(&gun(3), "timestamp").unwrap().is_empty());
    assert!(keys
        .current(&gun(0), "timestamp", true, now)
        .unwrap()
        .is_some());
}
