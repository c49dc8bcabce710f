//! libFuzzer target `oci_manifest`: [`vouch_tuf::fuzz::oci_manifest`] (its documentation says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_tuf::fuzz::oci_manifest(data));
