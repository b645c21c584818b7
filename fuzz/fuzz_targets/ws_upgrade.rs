//! Arbitrary bytes as an HTTP upgrade request: answered or refused, never a panic.
#![no_main]

include!("../targets/ws_upgrade.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
