//! libFuzzer target `canonical_json`: [`vouch_tuf::fuzz::canonical_json`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_tuf::fuzz::canonical_json(data));
