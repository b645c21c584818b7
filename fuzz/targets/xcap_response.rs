// Fuzzes the XCAP client's HTTP/1.1 response reader: no input may panic, buffers stay within
// the limits, and reading in pieces gives what reading at once gives (the checks of
// `xcap::exercise::response`, which the xcap crate's mutation tests also run).
//
// The body of fuzz target `xcap_response`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/xcap_response.rs`) and the stable harness (`tests/fuzz_stable.rs`).

/// One input: must not panic.
pub fn run(data: &[u8]) {
    xcap::exercise::response(data);
}
