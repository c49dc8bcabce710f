//! libFuzzer target `repo_state`: [`vouch_server::fuzz::repo_state`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_server::fuzz::repo_state(data));
