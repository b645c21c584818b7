//! libFuzzer entry of the `pidf` target; its body is `fuzz/targets/pidf.rs`.
#![no_main]

include!("../targets/pidf.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
