//! libFuzzer target `admission_review`: [`vouch_admission::fuzz::admission_review`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_admission::fuzz::admission_review(data));
