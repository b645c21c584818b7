//! Fuzzes the SIP message facade, stream framer, digest challenge and credentials parsers
//! and the local registrar (every request as a REGISTER, open and with users): no input may
//! panic, and every accepted message must print to something that parses again.
#![no_main]

include!("../targets/sip_msg.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
