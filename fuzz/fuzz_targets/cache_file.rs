//! libFuzzer target `cache_file`: [`vouch_verifier::fuzz::cache_file`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_verifier::fuzz::cache_file(data));
