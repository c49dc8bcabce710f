//! libFuzzer target `token_challenge`: [`vouch_verifier::fuzz::token_challenge`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_verifier::fuzz::token_challenge(data));
