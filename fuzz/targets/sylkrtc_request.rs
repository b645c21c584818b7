// Any text a client sends through the sylkRTC decoder: it must never panic.
//
// The body of fuzz target `sylkrtc_request`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/sylkrtc_request.rs`) and the stable harness (`tests/fuzz_stable.rs`).

/// One input: must not panic.
pub fn run(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sylk_gateway::sylkrtc::decode(text);
    }
}
