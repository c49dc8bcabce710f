//! libFuzzer target `api_path`: [`vouch_tuf::fuzz::api_path`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_tuf::fuzz::api_path(data));
