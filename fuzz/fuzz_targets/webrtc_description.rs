//! Arbitrary browser SDP and trickled candidates through the WebRTC engine, in both roles:
//! as the offer the bridge answers (WebrtcLeg::answer) and as the answer to the offer
//! the bridge made (apply_remote_answer). Errors are fine; panics are not.
//! Run: `cd fuzz && cargo +nightly fuzz run webrtc_description`
#![no_main]

include!("../targets/webrtc_description.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
