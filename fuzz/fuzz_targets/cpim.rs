//! libFuzzer entry of the `cpim` target; its body is `fuzz/targets/cpim.rs`.
#![no_main]

include!("../targets/cpim.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
