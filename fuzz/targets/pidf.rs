// Fuzzes the PIDF parser (RFC 3863, RPID RFC 4480): no input may panic; what it accepts survives being written and read again (the checks of
// `presence::exercise::pidf`, which the presence crate's mutation tests also run).
//
// The body of fuzz target `pidf`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/pidf.rs`) and the stable harness (`tests/fuzz_stable.rs`).

/// One input: must not panic.
pub fn run(data: &[u8]) {
    presence::exercise::pidf(data);
}
