//! libFuzzer entry of the `msrp_frame` target; its body is `fuzz/targets/msrp_frame.rs`.
#![no_main]

include!("../targets/msrp_frame.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
