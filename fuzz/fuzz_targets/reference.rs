//! libFuzzer target `reference`: [`vouch_tuf::fuzz::reference`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_tuf::fuzz::reference(data));
