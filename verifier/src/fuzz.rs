//! Fuzzing entry points for what this crate reads from other parties: offline trust bundles
//! (handed over for air-gapped clusters) and trust-pin files.
//!
//! Each function takes arbitrary bytes and must return normally for every input. They are
//! run by the cargo-fuzz targets of the repository's `fuzz/` project (long campaigns, outside
//! CI) and by this crate's `fuzz_corpus` test over the checked-in `fuzz/corpus/<target>/`.
//! Not part of the API: hidden from the documentation, and free to change.

use std::path::Path;

use crate::pins::TrustPins;
use crate::transport::{Bundle, BundleTransport};

/// The fuzz targets of this crate, by name (as in [`vouch_tuf::fuzz::TARGETS`]).
pub const TARGETS: &[vouch_tuf::fuzz::Target] = &[("bundle", bundle), ("pins", pins)];

/// Offline bundles ([`Bundle::from_bytes`], [`BundleTransport::from_bytes`]): a bundle that
/// reads writes ([`Bundle::to_bytes`]) a document that reads back to the same bundle.
pub fn bundle(data: &[u8]) {
    let _ = BundleTransport::from_bytes(data);
    let Ok(b) = Bundle::from_bytes(data) else {
        return;
    };
    match Bundle::from_bytes(&b.to_bytes()) {
        Ok(again) => assert_eq!(again, b, "the written bundle reads back differently"),
        Err(e) => panic!("the written bundle does not read: {e}"),
    }
}

/// Trust-pin files ([`TrustPins::parse`], TOML). The file is placed in a directory that does
/// not exist, so the root and key files it names relative to itself are never found; the
/// parser's handling of a missing file is part of what is fuzzed.
pub fn pins(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = TrustPins::parse(text, Path::new("/nonexistent-vouch-fuzz/pins.toml"));
}
