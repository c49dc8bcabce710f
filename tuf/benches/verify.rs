//! Cost of checking a targets role: parse + canonicalise + threshold-verify, beside the raw
//! ed25519 signature check of the same canonical bytes.
//!
//! Run: `cargo bench -p vouch-tuf --bench verify`. Figures go in `bench/RESULTS.md`.

#![allow(clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use vouch_tuf::json;
use vouch_tuf::metadata::{verify_threshold, Key, Metadata, TargetFile, Targets};
use vouch_tuf::reference::Digest;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{TargetName, Threshold};

/// A signed targets role with `n` image targets, as bytes, plus the key that signed it.
fn signed_targets(n: usize) -> (Vec<u8>, Key) {
    let sk = PrivateKey::generate(Algorithm::Ed25519).expect("keygen");
    let key = Key::from_verifying_key(&sk.verifying_key());
    let mut t = Targets::new(Timestamp::parse("2099-01-01T00:00:00Z").expect("time"));
    for i in 0..n {
        let digest = Digest::sha256_of(format!("manifest {i}").as_bytes());
        t.targets.insert(
            TargetName::new(format!("v1.{i}.0")).expect("name"),
            TargetFile::image(
                &digest,
                1000 + i as u64,
                Some("application/vnd.oci.image.manifest.v1+json"),
            ),
        );
    }
    let md = Metadata::signed_by(t, &[&sk]).expect("sign");
    (md.to_bytes(), key)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("targets");
    for n in [1usize, 1_000, 100_000] {
        let (bytes, key) = signed_targets(n);
        let id = key.key_id();
        let keys = [(id.clone(), key.clone())].into_iter().collect();
        let ids = [id];
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        if n >= 100_000 {
            group.sample_size(10);
        }
        group.bench_with_input(
            BenchmarkId::new("parse_canonicalize_verify", n),
            &bytes,
            |b, bytes| {
                b.iter(|| {
                    let md = Metadata::<Targets>::from_bytes(bytes).expect("parse");
                    verify_threshold(
                        "targets",
                        md.canonical_signed(),
                        md.signatures(),
                        &keys,
                        &ids,
                        Threshold::ONE,
                    )
                    .expect("verify");
                    md
                })
            },
        );
        // The floor: the signature check alone over the same canonical bytes.
        let md = Metadata::<Targets>::from_bytes(&bytes).expect("parse");
        let canonical = md.canonical_signed().to_vec();
        let sig = vouch_tuf::hex::decode(&md.signatures()[0].sig).expect("hex");
        let vk = key.verifying_key().expect("key");
        group.bench_with_input(
            BenchmarkId::new("raw_ed25519_verify", n),
            &canonical,
            |b, msg| b.iter(|| vk.verify(msg, &sig).expect("verify")),
        );
        group.bench_with_input(
            BenchmarkId::new("canonicalize_only", n),
            &bytes,
            |b, bytes| {
                let v = json::parse(bytes).expect("parse");
                b.iter(|| json::canonical(&v))
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
