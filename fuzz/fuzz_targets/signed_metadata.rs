//! libFuzzer target `signed_metadata`: [`vouch_tuf::fuzz::signed_metadata`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_tuf::fuzz::signed_metadata(data));
