// Fuzzes the RLMI multipart NOTIFY body parser (RFC 4662): no input may panic (the checks of
// `presence::exercise::rlmi`, which the presence crate's mutation tests also run).
//
// The body of fuzz target `rlmi`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/rlmi.rs`) and the stable harness (`tests/fuzz_stable.rs`).

/// One input: must not panic.
pub fn run(data: &[u8]) {
    presence::exercise::rlmi(data);
}
