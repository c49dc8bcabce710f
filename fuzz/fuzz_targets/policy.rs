//! libFuzzer target `policy`: [`vouch_admission::fuzz::policy`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_admission::fuzz::policy(data));
