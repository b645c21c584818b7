// Arbitrary datagrams through demux, the RTP/RTCP views and the RTP leg.
// Run: `cd fuzz && cargo +nightly fuzz run rtp_demux`
//
// The body of fuzz target `rtp_demux`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/rtp_demux.rs`) and the stable harness (`tests/fuzz_stable.rs`).

use std::time::{Duration, Instant};

use media::rtp::rtcp::{rewrite_feedback_ssrcs, RtcpCompound, RtcpPacket};
use media::rtp::srtp::SdesSrtp;
use media::rtp::{classify_datagram, NtpClock, RtpPacket, TelephoneEvent};
use media::rtp_leg::{RtpLeg, RtpLegConfig, RtpRemote};
use media::sdp::{CryptoAttribute, CryptoSuite};

/// One input: must not panic.
pub fn run(data: &[u8]) {
    let _ = classify_datagram(data);
    if let Ok(p) = RtpPacket::parse(data) {
        assert!(p.payload_offset() + p.payload().len() <= data.len());
        let _ = TelephoneEvent::parse(p.payload());
    }
    for packet in RtcpCompound::new(data).flatten() {
        if let RtcpPacket::SenderReport { blocks, .. } | RtcpPacket::ReceiverReport { blocks, .. } =
            packet
        {
            blocks.for_each(drop);
        }
    }
    let mut copy = data.to_vec();
    let _ = rewrite_feedback_ssrcs(&mut copy, 1, 2);

    let t0 = Instant::now();
    let peer = "192.0.2.10:4000".parse().expect("addr");
    let mux = data.first().is_some_and(|b| b & 1 == 1);
    // A plain leg and SDES legs with both rtc::srtp cipher families.
    let gcm = CryptoAttribute::new(1, CryptoSuite::AeadAes128Gcm, &[4; 28]).expect("key");
    let cm = CryptoAttribute::new(1, CryptoSuite::AesCm128HmacSha1_80, &[5; 30]).expect("key");
    for key in [None, Some(gcm), Some(cm)] {
        let ntp = NtpClock::new(t0, Duration::from_secs(1));
        let config = RtpLegConfig::new("127.0.0.1:40000".parse().expect("addr"), 7, "fuzz", ntp);
        let mut leg = RtpLeg::new(t0, config);
        leg.set_remote(
            t0,
            RtpRemote {
                rtp: peer,
                rtcp: None,
                rtcp_mux: mux,
                sending: true,
            },
        );
        if let Some(key) = key {
            leg.set_srtp(Some(SdesSrtp::new(&key, &key).expect("srtp")));
        }
        let mut buf = data.to_vec();
        let _ = leg.handle_rtp(t0, peer, &mut buf);
        let mut buf = data.to_vec();
        let _ = leg.handle_rtcp(t0, peer, &mut buf);
        let mut out = [0u8; 2048];
        let _ = leg.send_rtp(t0, data, &mut out);
        leg.handle_timeout(t0 + Duration::from_secs(10));
        while let Ok(Some(_)) = leg.poll_transmit(t0 + Duration::from_secs(10), &mut out) {}
    }
}
