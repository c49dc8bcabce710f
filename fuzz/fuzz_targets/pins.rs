//! libFuzzer target `pins`: [`vouch_verifier::fuzz::pins`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_verifier::fuzz::pins(data));
