// Fuzzes the IMDN parser (RFC 5438): no input may panic, and an accepted document
// round-trips through `to_xml`.
//
// The body of fuzz target `imdn`, shared by the libFuzzer binary (`fuzz/fuzz_targets/imdn.rs`)
// and the stable harness (`tests/fuzz_stable.rs`).

/// One input: must not panic.
pub fn run(data: &[u8]) {
    if let Ok(d) = im::Imdn::parse(data) {
        assert_eq!(im::Imdn::parse(d.to_xml().as_bytes()).as_ref(), Ok(&d));
    }
}
