//! libFuzzer target `webhook_message`: [`vouch_tuf::fuzz::webhook_message`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_tuf::fuzz::webhook_message(data));
