//! libFuzzer target `proposal`: [`vouch_tuf::fuzz::proposal`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_tuf::fuzz::proposal(data));
