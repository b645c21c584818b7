//! Arbitrary datagrams through demux, the RTP/RTCP views and the RTP leg.
//! Run: `cd fuzz && cargo +nightly fuzz run rtp_demux`
#![no_main]

include!("../targets/rtp_demux.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
