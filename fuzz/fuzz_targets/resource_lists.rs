//! libFuzzer entry of the `resource_lists` target; its body is `fuzz/targets/resource_lists.rs`.
#![no_main]

include!("../targets/resource_lists.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
