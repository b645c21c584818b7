//! libFuzzer entry of the `xcap_response` target; its body is `fuzz/targets/xcap_response.rs`.
#![no_main]

include!("../targets/xcap_response.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
