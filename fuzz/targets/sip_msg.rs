// Fuzzes the SIP message facade, stream framer and digest challenge parser: no input may
// panic, and every accepted message must print to something that parses again.
//
// The body of fuzz target `sip_msg`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/sip_msg.rs`) and the stable harness (`tests/fuzz_stable.rs`).

/// One input: must not panic.
pub fn run(data: &[u8]) {
    sip::exercise::exercise_parsers(data);
}
