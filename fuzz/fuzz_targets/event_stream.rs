//! libFuzzer target `event_stream`: [`vouch_tuf::fuzz::event_stream`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_tuf::fuzz::event_stream(data));
