//! libFuzzer target `metadata`: [`vouch_tuf::fuzz::metadata`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_tuf::fuzz::metadata(data));
