//! libFuzzer target `server_config`: [`vouch_server::fuzz::server_config`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_server::fuzz::server_config(data));
