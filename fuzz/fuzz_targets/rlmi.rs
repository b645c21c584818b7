//! libFuzzer entry of the `rlmi` target; its body is `fuzz/targets/rlmi.rs`.
#![no_main]

include!("../targets/rlmi.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
