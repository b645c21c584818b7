// Fuzzes the pres-rules parser (RFC 5025 / common-policy RFC 4745): no input may panic; an accepted ruleset round-trips through its writer (the checks of
// `presence::exercise::pres_rules`, which the presence crate's mutation tests also run).
//
// The body of fuzz target `pres_rules`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/pres_rules.rs`) and the stable harness (`tests/fuzz_stable.rs`).

/// One input: must not panic.
pub fn run(data: &[u8]) {
    presence::exercise::pres_rules(data);
}
