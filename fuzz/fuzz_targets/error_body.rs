//! libFuzzer target `error_body`: [`vouch_tuf::fuzz::error_body`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_tuf::fuzz::error_body(data));
