//! libFuzzer target `jwt`: [`vouch_server::fuzz::jwt`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_server::fuzz::jwt(data));
