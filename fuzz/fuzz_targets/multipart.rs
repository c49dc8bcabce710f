//! libFuzzer target `multipart`: [`vouch_server::fuzz::multipart`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_server::fuzz::multipart(data));
