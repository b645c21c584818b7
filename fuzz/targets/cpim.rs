// Fuzzes the CPIM parser (RFC 3862): no input may panic; an accepted message keeps its
// bytes, its content is a suffix of them, and what the builder writes from it parses again.
//
// The body of fuzz target `cpim`, shared by the libFuzzer binary (`fuzz/fuzz_targets/cpim.rs`)
// and the stable harness (`tests/fuzz_stable.rs`).

/// One input: must not panic.
pub fn run(data: &[u8]) {
    if let Ok(c) = im::Cpim::parse(data.to_vec()) {
        assert_eq!(c.raw(), data);
        assert!(data.ends_with(c.content()));
        let _ = (
            c.imdn_message_id(),
            c.disposition_notification(),
            c.media_type(),
        );
        let Some(to) = c.to().first() else {
            return;
        };
        let rebuilt = im::CpimBuilder::new(
            c.from().clone(),
            to.clone(),
            "text/plain",
            c.content().to_vec(),
        )
        .build();
        assert!(im::Cpim::parse(rebuilt).is_ok());
    }
}
