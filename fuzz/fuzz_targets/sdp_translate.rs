//! Arbitrary bytes through the SDP parser and every translation direction.
//! Run: `cd fuzz && cargo +nightly fuzz run sdp_translate`
#![no_main]

include!("../targets/sdp_translate.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
