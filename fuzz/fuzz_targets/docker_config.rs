//! libFuzzer target `docker_config`: [`vouch_verifier::fuzz::docker_config`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_verifier::fuzz::docker_config(data));
