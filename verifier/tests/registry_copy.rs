//! [`Registries::copy_blob`] between two real `docker-registry` processes
//! (`vouch_testkit::registry`): a blob streamed from one registry (with basic authentication)
//! into another, not copied twice, a copy capped below the blob's size refused before
//! anything is sent, and a blob the source lacks named as such.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use vouch_testkit::registry::{Registry, RegistryAuth};
use vouch_tuf::reference::Digest;
use vouch_verifier::registry::{Credentials, Login, Registries, RegistryError, RegistryOptions};

#[test]
fn blobs_stream_from_one_registry_into_another() {
    let from = Registry::start_with(RegistryAuth::Basic {
        user: "alice".into(),
        password: "pw".into(),
    });
    let to = Registry::start();
    let login = Login::Given {
        registry: from.host().to_owned(),
        credentials: Credentials::new("alice".into(), "pw".to_owned().into()),
    };
    let mut r = Registries::new(RegistryOptions::new(Vec::new(), login).unwrap()).unwrap();
    // Larger than one read buffer, so the body really streams.
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = Digest::sha256_of(&bytes);
    let size = bytes.len() as u64;
    r.push_blob(from.host(), "team/app", &digest, &bytes)
        .unwrap();

    // A manifest announcing one byte less than the blob: the source's answer is over the
    // cap, and nothing reaches the destination.
    let short = r.copy_blob(
        from.host(),
        "team/app",
        &digest,
        size - 1,
        to.host(),
        "prod/app",
    );
    assert!(
        matches!(short, Err(RegistryError::TooLarge { limit, .. }) if limit == size - 1),
        "{short:?}"
    );
    assert!(!r.blob_exists(to.host(), "prod/app", &digest).unwrap());

    assert!(r
        .copy_blob(
            from.host(),
            "team/app",
            &digest,
            size,
            to.host(),
            "prod/app"
        )
        .unwrap());
    assert_eq!(
        r.get_blob(to.host(), "prod/app", &digest, size).unwrap(),
        bytes
    );
    // There already: nothing is read or sent again.
    assert!(!r
        .copy_blob(
            from.host(),
            "team/app",
            &digest,
            size,
            to.host(),
            "prod/app"
        )
        .unwrap());
    // A blob the source does not have.
    let missing = Digest::sha256_of(b"missing");
    let e = r
        .copy_blob(from.host(), "team/app", &missing, 7, to.host(), "prod/app")
        .unwrap_err();
    assert!(matches!(e, RegistryError::BlobUnknown { .. }), "{e}");
}
