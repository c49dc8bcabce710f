//! libFuzzer target `registry_response`: [`vouch_verifier::fuzz::registry_response`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_verifier::fuzz::registry_response(data));
