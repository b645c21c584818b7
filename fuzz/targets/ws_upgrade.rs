// Arbitrary bytes as an HTTP upgrade request: answered or refused, never a panic.
//
// The body of fuzz target `ws_upgrade`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/ws_upgrade.rs`) and the stable harness (`tests/fuzz_stable.rs`).

/// One input: must not panic.
pub fn run(data: &[u8]) {
    let origins = ["https://app.example".to_owned()];
    for allow_missing in [true, false] {
        let _ = sylk_gateway::ws::http::handle_upgrade_request(data, &origins, allow_missing);
    }
    let _ = sylk_gateway::ws::http::handle_upgrade_request(data, &["*".to_owned()], true);
}
