//! A valid upgrade followed by arbitrary frame bytes, fed in arbitrary chunks, through the
//! whole WebSocket engine and gateway: nothing may panic.
#![no_main]

include!("../targets/ws_frames.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
