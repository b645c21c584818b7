// Fuzzes what a call's SIP peer sends that the calls feature parses itself: INFO key
// presses (`application/dtmf-relay`, `application/dtmf`), `Refer-To`, NOTIFY sipfrag
// status lines, and the stack's `RAck`, `Session-Expires` and `Replaces` values.
//
// The body of fuzz target `call_fields`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/call_fields.rs`) and the stable harness (`tests/fuzz_stable.rs`).

/// One input: must not panic.
pub fn run(data: &[u8]) {
    sylk_gateway::gateway::exercise_call_fields(data);
}
