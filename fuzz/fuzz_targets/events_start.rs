//! libFuzzer target `events_start`: [`vouch_server::fuzz::events_start`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_server::fuzz::events_start(data));
