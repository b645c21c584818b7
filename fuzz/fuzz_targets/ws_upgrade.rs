//! Arbitrary bytes as an HTTP upgrade request: answered or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let origins = ["https://app.example".to_owned()];
    let _ = sylk_gateway::ws::http::handle_upgrade_request(data, &origins);
    let _ = sylk_gateway::ws::http::handle_upgrade_request(data, &["*".to_owned()]);
});
