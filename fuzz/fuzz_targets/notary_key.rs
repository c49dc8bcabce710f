//! libFuzzer target `notary_key`: [`vouch_tuf::fuzz::notary_key`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_tuf::fuzz::notary_key(data));
