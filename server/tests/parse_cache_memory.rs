//! The parse cache's bound holds in heap bytes, not only in stored bytes: a counting
//! allocator measures what parsed files really hold against the estimate the cache charges
//! ([`MEMORY_PER_STORED_BYTE`] per stored byte), for the shape that costs most per byte (a
//! targets file of many short tags).
//!
//! One test, so that nothing else allocates on another thread while it counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;

use cap::Cap;
use vouch_server::internal::{ParseCache, RepoState, PARSE_CACHE_MEMORY};
use vouch_server::store::StoredFile;
use vouch_tuf::crypto::{Algorithm, PrivateKey};
use vouch_tuf::metadata::{Metadata, TargetFile, Targets};
use vouch_tuf::reference::Digest;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::TargetName;

#[global_allocator]
static HEAP: Cap<System> = Cap::new(System, usize::MAX);

/// A signed targets file with `n` tags, each a short name with an image target.
fn many_tags(n: usize, sk: &PrivateKey) -> Vec<u8> {
    let mut t = Targets::new(Timestamp::parse("2099-01-01T00:00:00Z").unwrap());
    for i in 0..n {
        let tag = format!("t{i}");
        t.add_target(
            TargetName::new(tag.clone()).unwrap(),
            TargetFile::image(&Digest::sha256_of(tag.as_bytes()), 1000, None),
        );
    }
    Metadata::signed_by(t, &[sk]).unwrap().to_bytes()
}

fn stored(role: &str, bytes: Vec<u8>) -> StoredFile {
    StoredFile {
        role: role.into(),
        version: 1,
        sha256: String::new(),
        bytes,
        created_at: Timestamp::from_unix(0),
    }
}

#[test]
fn the_parse_cache_charges_at_least_the_heap_its_parses_hold() {
    let sk = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let cache = ParseCache::default();
    for (i, n) in [1, 100, 20_000].into_iter().enumerate() {
        let bytes = many_tags(n, &sk);
        let gun = format!("example.com/repo{i}");
        // What the heap holds after the parse, minus what it held with the bytes alone:
        // the stored bytes move into the parse, so they are counted on both sides.
        let before = HEAP.allocated();
        let charged_before = cache.memory();
        let state =
            RepoState::from_files_cached(&gun, vec![stored("targets", bytes)], &cache).unwrap();
        drop(state);
        let held = HEAP.allocated().saturating_sub(before);
        let charged = cache.memory() - charged_before;
        assert!(charged > 0, "{n} tags: nothing charged");
        assert!(
            held <= charged,
            "{n} tags: the parse holds {held} heap bytes, the cache charges only {charged}"
        );
    }
    // Unknown fields as dense as the JSON parser allows, kept as parsed values, the costliest
    // shape per byte: numbers (padded with whitespace to the allowed density) and one-letter
    // strings.
    let n = 50_000;
    let plain = String::from_utf8(many_tags(1, &sk)).unwrap();
    for (i, items) in [("0,", "0"), (r#""a","#, r#""a""#)].into_iter().enumerate() {
        let (each, last) = items;
        let mut dense = plain.replacen(
            r#""signed":{"#,
            &format!(r#""signed":{{"x":[{}{last}],"#, each.repeat(n - 1)),
            1,
        );
        let needed = (n + 64) * vouch_tuf::json::BYTES_PER_VALUE;
        dense.push_str(&" ".repeat(needed.saturating_sub(dense.len())));
        let before = HEAP.allocated();
        let charged_before = cache.memory();
        let state = RepoState::from_files_cached(
            &format!("example.com/dense{i}"),
            vec![stored("targets", dense.into_bytes())],
            &cache,
        )
        .unwrap();
        drop(state);
        let held = HEAP.allocated().saturating_sub(before);
        let charged = cache.memory() - charged_before;
        assert!(
            held <= charged,
            "dense unknown field {i}: the parse holds {held} heap bytes, the cache charges only {charged}"
        );
    }

    // Nothing past the bound is kept.
    assert!(cache.memory() <= PARSE_CACHE_MEMORY);

    // One repository too large for the bound: parsed for its publish, not kept.
    let cache = ParseCache::default();
    // About 16 MB stored: charged far above the bound, so parsed but not kept.
    let bytes = many_tags(200_000, &sk);
    assert!(bytes.len() * vouch_server::internal::MEMORY_PER_STORED_BYTE > PARSE_CACHE_MEMORY);
    let before = HEAP.allocated();
    let state =
        RepoState::from_files_cached("example.com/big", vec![stored("targets", bytes)], &cache)
            .unwrap();
    drop(state);
    assert_eq!(cache.memory(), 0);
    // Everything the parse made was freed with the state (the stored bytes included).
    assert!(
        HEAP.allocated() <= before,
        "{} > {before}",
        HEAP.allocated()
    );
}
