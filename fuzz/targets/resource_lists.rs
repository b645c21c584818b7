// Fuzzes the resource-lists parser (RFC 4826): no input may panic; an accepted document round-trips through its writer (the checks of
// `presence::exercise::resource_lists`, which the presence crate's mutation tests also run).
//
// The body of fuzz target `resource_lists`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/resource_lists.rs`) and the stable harness (`tests/fuzz_stable.rs`).

/// One input: must not panic.
pub fn run(data: &[u8]) {
    presence::exercise::resource_lists(data);
}
