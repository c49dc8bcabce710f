//! libFuzzer target `changefeed_query`: [`vouch_server::fuzz::changefeed_query`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_server::fuzz::changefeed_query(data));
