//! Fuzzes the SIP message facade, stream framer and digest challenge parser: no input may
//! panic, and every accepted message must print to something that parses again.
#![no_main]

include!("../targets/sip_msg.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
