//! Any text a client sends through the sylkRTC decoder: it must never panic.
#![no_main]

include!("../targets/sylkrtc_request.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
