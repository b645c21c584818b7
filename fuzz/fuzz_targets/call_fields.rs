//! Fuzzes what a call's SIP peer sends that the calls feature parses itself: INFO key
//! presses, `Refer-To`, NOTIFY sipfrag, `RAck`, `Session-Expires` and `Replaces`.
#![no_main]

include!("../targets/call_fields.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
