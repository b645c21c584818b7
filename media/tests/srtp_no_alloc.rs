//! Zero heap allocations per packet in `media::srtp`, counted by a global allocator wrapper:
//! every profile, protect and unprotect, RTP and RTCP, including rejected packets (bad tag,
//! replay), after a warm-up; and the SIP leg with SDES-SRTP end to end.

use std::time::{Duration, Instant};

use media::rtp::srtp::SdesSrtp;
use media::rtp::{write_rtp_packet, NtpClock, PayloadTypeMap};
use media::rtp_leg::{RtpLeg, RtpLegConfig, RtpRemote};
use media::sdp::{CryptoAttribute, CryptoSuite};
use media::srtp::{SrtpContext, SrtpError, SrtpProfile};

mod counting_alloc;
use counting_alloc::*;

const PAYLOAD: [u8; 200] = [0x5a; 200];

/// Writes an RTP packet with two CSRCs and a one-word header extension into `buf`.
fn write_rtp(buf: &mut [u8], seq: u16, ssrc: u32) -> usize {
    let header = [
        0x92, 111, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0xbe, 0xde, 0, 1, 0x10,
        0x7f, 0, 0,
    ];
    buf[..header.len()].copy_from_slice(&header);
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[header.len()..header.len() + PAYLOAD.len()].copy_from_slice(&PAYLOAD);
    header.len() + PAYLOAD.len()
}

/// Writes an RTCP receiver report with one block into `buf`.
fn write_rtcp(buf: &mut [u8], ssrc: u32, n: u32) -> usize {
    let packet = [
        0x81, 201, 0, 7, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0,
        0, 0, 0, 0, 0, 0, 0,
    ];
    buf[..packet.len()].copy_from_slice(&packet);
    buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
    buf[16..20].copy_from_slice(&n.to_be_bytes());
    packet.len()
}

#[test]
fn srtp_contexts_allocate_nothing_per_packet() {
    for profile in SrtpProfile::ALL {
        let key: Vec<u8> = (0..profile.master_key_len() as u8).collect();
        let salt: Vec<u8> = (0..profile.master_salt_len() as u8).map(|b| !b).collect();
        let mut tx = SrtpContext::new(profile, &key, &salt).expect("keys");
        let mut rx = SrtpContext::new(profile, &key, &salt).expect("keys");
        let mut buf = [0u8; 1500];
        let mut copy = [0u8; 1500];
        let mut step = |i: u32| {
            for ssrc in [0xa1, 0xb2] {
                // RTP: a forged packet, the genuine one, then its replay.
                let len = write_rtp(&mut buf, i as u16, ssrc);
                let len = tx.protect_rtp(&mut buf, len).expect("protect");
                copy[..len].copy_from_slice(&buf[..len]);
                copy[len - 1] ^= 1;
                assert_eq!(
                    rx.unprotect_rtp(&mut copy[..len]),
                    Err(SrtpError::AuthFailed)
                );
                copy[..len].copy_from_slice(&buf[..len]);
                let plain = rx.unprotect_rtp(&mut buf[..len]).expect("unprotect");
                assert_eq!(plain, len - profile.rtp_overhead());
                assert_eq!(rx.unprotect_rtp(&mut copy[..len]), Err(SrtpError::Replayed));
            }
            if i % 8 == 0 {
                let len = write_rtcp(&mut buf, 0xa1, i);
                let len = tx.protect_rtcp(&mut buf, len).expect("protect");
                copy[..len].copy_from_slice(&buf[..len]);
                copy[10] ^= 1;
                assert_eq!(
                    rx.unprotect_rtcp(&mut copy[..len]),
                    Err(SrtpError::AuthFailed)
                );
                copy[..len].copy_from_slice(&buf[..len]);
                let plain = rx.unprotect_rtcp(&mut buf[..len]).expect("unprotect");
                assert_eq!(plain, len - profile.rtcp_overhead());
                assert_eq!(
                    rx.unprotect_rtcp(&mut copy[..len]),
                    Err(SrtpError::Replayed)
                );
            }
        };
        // Sequence numbers from 65 000: the counted part crosses the wrap (ROC 0 -> 1).
        for i in 65_000..65_100 {
            step(i);
        }
        let before = allocations();
        for i in 65_100..67_100 {
            step(i);
        }
        let after = allocations();
        assert_eq!(
            after - before,
            0,
            "{profile:?}: heap allocations per packet"
        );
    }
    // The counter itself works: one boxed value is one allocation.
    let before = allocations();
    let boxed = std::hint::black_box(Box::new(before));
    assert!(allocations() > before, "allocator is counting ({boxed})");
}

fn sdes_leg(t0: Instant, srtp: SdesSrtp) -> RtpLeg {
    let ntp = NtpClock::new(t0, Duration::from_secs(1_767_225_600));
    let mut leg = RtpLeg::new(
        t0,
        RtpLegConfig::new(
            "198.51.100.5:40000".parse().expect("addr"),
            0x1234,
            "gw",
            ntp,
        ),
    );
    leg.set_remote(
        t0,
        RtpRemote {
            rtp: "192.0.2.10:4000".parse().expect("addr"),
            rtcp: None,
            rtcp_mux: false,
            sending: true,
        },
    );
    let mut map = PayloadTypeMap::empty();
    map.insert(111, 96);
    map.insert(96, 111);
    leg.set_send_payload_map(map.clone());
    leg.set_receive_payload_map(map);
    leg.set_clock_rate(96, 48_000);
    leg.set_clock_rate(111, 48_000);
    leg.set_srtp(Some(srtp));
    leg
}

#[test]
fn sip_leg_with_sdes_srtp_allocates_nothing_per_packet() {
    for suite in [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
        CryptoSuite::AeadAes128Gcm,
        CryptoSuite::AeadAes256Gcm,
    ] {
        let len = suite.key_len() + suite.salt_len();
        let ours = CryptoAttribute::new(1, suite, &(0..len as u8).collect::<Vec<_>>()).unwrap();
        let theirs =
            CryptoAttribute::new(1, suite, &(0..len as u8).map(|b| !b).collect::<Vec<_>>())
                .unwrap();
        let t0 = Instant::now();
        let mut leg = sdes_leg(t0, SdesSrtp::new(&ours, &theirs).expect("srtp"));
        let mut peer = SdesSrtp::new(&theirs, &ours).expect("srtp");
        let from = "192.0.2.10:4000".parse().expect("addr");
        let mut inbound = [0u8; 1500];
        let mut from_webrtc = [0u8; 1500];
        let mut out = [0u8; 1500];
        let payload = [0x55u8; 160];
        let mut step = |i: u32, now: Instant| {
            let seq = i as u16;
            let len = write_rtp_packet(&mut inbound, 96, false, seq, i * 960, 0xfeed, &payload)
                .expect("fits");
            let len = peer
                .protect_rtp_in_place(&mut inbound, len)
                .expect("peer protects");
            let got = leg
                .handle_rtp(now, from, &mut inbound[..len])
                .expect("valid")
                .expect("forwarded");
            assert_eq!(got.payload(), &payload[..]);
            let len = write_rtp_packet(&mut from_webrtc, 111, false, seq, i * 960, 0xb0b, &payload)
                .expect("fits");
            let tx = leg
                .send_rtp(now, &from_webrtc[..len], &mut out)
                .expect("ok")
                .expect("sent");
            let plain = peer
                .unprotect_rtp(&mut out[..tx.len])
                .expect("peer decrypts");
            assert_eq!(&out[plain - payload.len()..plain], &payload[..]);
            if leg.poll_timeout().is_some_and(|t| t <= now) {
                leg.handle_timeout(now);
            }
            while let Some(tx) = leg.poll_transmit(now, &mut out).expect("ok") {
                peer.unprotect_rtcp(&mut out[..tx.len])
                    .expect("peer decrypts SRTCP");
            }
            while leg.poll_event().is_some() {}
        };
        // Warm-up: latching, the first report, statistics; then 2 000 packets each way (40 s
        // of 20 ms audio, ~8 SRTCP reports) across the peer's sequence number wrap.
        let at = |i: u32| t0 + Duration::from_millis(20 * u64::from(i - 64_000));
        for i in 64_000..64_500 {
            step(i, at(i));
        }
        let before = allocations();
        for i in 64_500..66_500 {
            step(i, at(i));
        }
        assert_eq!(
            allocations() - before,
            0,
            "{suite:?}: heap allocations on the SDES-SRTP leg"
        );
        assert_eq!(leg.stats().packets_received, 2_500);
    }
}
