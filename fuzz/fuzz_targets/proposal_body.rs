//! libFuzzer target `proposal_body`: [`vouch_server::fuzz::proposal_body`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_server::fuzz::proposal_body(data));
