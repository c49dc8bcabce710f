//! Parses and verifies a large targets role repeatedly, for profiling:
//! `cargo run --release -p vouch-tuf --example profile_targets -- 100000 5`.

#![allow(clippy::expect_used, missing_docs)]

use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use vouch_tuf::metadata::{verify_threshold, Key, Metadata, TargetFile, Targets};
use vouch_tuf::reference::Digest;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{TargetName, Threshold};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let sk = PrivateKey::generate(Algorithm::Ed25519).expect("keygen");
    let key = Key::from_verifying_key(&sk.verifying_key());
    let mut t = Targets::new(Timestamp::parse("2099-01-01T00:00:00Z").expect("time"));
    for i in 0..n {
        let digest = Digest::sha256_of(format!("manifest {i}").as_bytes());
        t.add_target(
            TargetName::new(format!("v1.{i}.0")).expect("name"),
            TargetFile::image(
                &digest,
                1000 + i as u64,
                Some("application/vnd.oci.image.manifest.v1+json"),
            ),
        );
    }
    let bytes = Metadata::signed_by(t, &[&sk]).expect("sign").to_bytes();
    let id = key.key_id();
    let keys = [(id.clone(), key)].into_iter().collect();
    let ids = [id];
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let md = Metadata::<Targets>::from_bytes(&bytes).expect("parse");
        verify_threshold(
            "targets",
            md.canonical_signed(),
            md.signatures(),
            &keys,
            &ids,
            Threshold::ONE,
        )
        .expect("verify");
    }
    let per = start.elapsed().as_secs_f64() / rounds as f64;
    // Where the time goes, measured in this same run.
    let t = std::time::Instant::now();
    let v = vouch_tuf::json::parse(&bytes).expect("parse");
    let parse = t.elapsed();
    let t = std::time::Instant::now();
    let c = vouch_tuf::json::canonical_with_capacity(&v, bytes.len());
    let canon = t.elapsed();
    let t = std::time::Instant::now();
    let md = Metadata::<Targets>::from_value("targets", v).expect("typed");
    let typed = t.elapsed();
    let t = std::time::Instant::now();
    drop(md);
    let dropped = t.elapsed();
    let t = std::time::Instant::now();
    let vk = keys
        .values()
        .next()
        .expect("key")
        .verifying_key()
        .expect("vk");
    let _ = vk.verify(&c, &[0u8; 64]);
    let verify = t.elapsed();
    println!("parse {parse:?}, canonical {canon:?}, typed (incl. canonical) {typed:?}, drop {dropped:?}, verify {verify:?}");
    println!(
        "{n} targets, {} bytes: {:.1} ms per parse+canonicalize+verify, {:.1} MB/s",
        bytes.len(),
        per * 1e3,
        bytes.len() as f64 / per / 1e6
    );
}
