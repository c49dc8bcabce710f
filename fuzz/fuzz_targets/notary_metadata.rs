//! libFuzzer target `notary_metadata`: [`vouch_tuf::fuzz::notary_metadata`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_tuf::fuzz::notary_metadata(data));
