//! DNS response parsing and the resolver's datagram path on arbitrary bytes: nothing a server
//! sends may panic. Run with `cargo +nightly fuzz run dns_message` from the repository root.
#![no_main]

include!("../targets/dns_message.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
