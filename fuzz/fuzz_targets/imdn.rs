//! Fuzzes the IMDN parser (RFC 5438): no input may panic, and an accepted document
//! round-trips through `to_xml`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = im::Imdn::parse(data) {
        assert_eq!(im::Imdn::parse(d.to_xml().as_bytes()).as_ref(), Ok(&d));
    }
});
