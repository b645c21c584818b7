//! libFuzzer entry of the `imdn` target; its body is `fuzz/targets/imdn.rs`.
#![no_main]

include!("../targets/imdn.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
