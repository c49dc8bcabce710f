//! libFuzzer target `private_key`: [`vouch_tuf::fuzz::private_key`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_tuf::fuzz::private_key(data));
