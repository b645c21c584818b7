//! Arbitrary datagrams through media::srtp's unprotect_rtp/unprotect_rtcp for every profile
//! (nothing may panic), and the same bytes protected then unprotected (must round-trip).
//! Run: `cd fuzz && cargo +nightly fuzz run srtp_unprotect`
#![no_main]

include!("../targets/srtp_unprotect.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
