//! Any text a client sends through the sylkRTC decoder: it must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sylk_gateway::sylkrtc::decode(text);
    }
});
