//! libFuzzer target `bundle`: [`vouch_verifier::fuzz::bundle`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_verifier::fuzz::bundle(data));
