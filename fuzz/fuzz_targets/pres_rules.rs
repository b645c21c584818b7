//! libFuzzer entry of the `pres_rules` target; its body is `fuzz/targets/pres_rules.rs`.
#![no_main]

include!("../targets/pres_rules.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
