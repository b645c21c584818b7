//! The plain RTP leg under virtual time: symmetric latching, inactivity, RTCP reports and
//! feedback, statistics, payload type maps, SDES-SRTP between two legs, and the port allocator.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use media::rtp::rtcp::{
    write_pli, write_receiver_report, write_sdes_cname, write_sender_report, ReportBlock,
    RtcpCompound, RtcpPacket, SenderInfo,
};
use media::rtp::srtp::SdesSrtp;
use media::rtp::{write_rtp_packet, NtpClock, PayloadTypeMap, RtpError};
use media::rtp_leg::{
    PortAllocator, PortPair, RtpLeg, RtpLegConfig, RtpLegError, RtpLegEvent, RtpRemote,
};
use media::sdp::{CryptoAttribute, CryptoSuite};

const LOCAL_SSRC: u32 = 0x1234_5678;
const PEER_SSRC: u32 = 0xfeed_f00d;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn config(t0: Instant) -> RtpLegConfig {
    RtpLegConfig::new(
        addr("198.51.100.5:40000"),
        LOCAL_SSRC,
        "gw@198.51.100.5",
        NtpClock::new(t0, Duration::from_secs(1_767_225_600)),
    )
}

fn sdp_remote() -> RtpRemote {
    RtpRemote {
        rtp: addr("192.0.2.10:4000"),
        rtcp: None,
        rtcp_mux: false,
        sending: true,
    }
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut buf = vec![0u8; 172];
    let len = write_rtp_packet(&mut buf, pt, false, seq, ts, ssrc, &[0xd5; 160]).expect("fits");
    buf.truncate(len);
    buf
}

fn leg(t0: Instant) -> RtpLeg {
    let mut leg = RtpLeg::new(t0, config(t0));
    leg.set_clock_rate(0, 8000);
    leg.set_remote(t0, sdp_remote());
    leg
}

fn events(leg: &mut RtpLeg) -> Vec<RtpLegEvent> {
    std::iter::from_fn(|| leg.poll_event()).collect()
}

#[test]
fn latches_to_the_first_source_and_ignores_others() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    let mut out = [0u8; 1500];
    // Before any packet, media goes where the SDP says.
    let tx = leg
        .send_rtp(t0, &rtp(0, 1, 0, 7), &mut out)
        .expect("ok")
        .expect("sent");
    assert_eq!(tx.destination, addr("192.0.2.10:4000"));
    assert_eq!(tx.source, addr("198.51.100.5:40000"));

    let nat = addr("203.0.113.9:31000");
    let mut p = rtp(0, 100, 0, PEER_SSRC);
    assert!(leg.handle_rtp(t0, nat, &mut p).expect("valid").is_some());
    assert_eq!(events(&mut leg), [RtpLegEvent::Latched { rtp: nat }]);
    assert!(leg.is_latched());
    let tx = leg
        .send_rtp(t0, &rtp(0, 2, 160, 7), &mut out)
        .expect("ok")
        .expect("sent");
    assert_eq!(tx.destination, nat);

    // Someone else who learned the port cannot inject media.
    let mut spoof = rtp(0, 101, 160, PEER_SSRC);
    assert!(leg
        .handle_rtp(t0, addr("203.0.113.66:31000"), &mut spoof)
        .expect("dropped quietly")
        .is_none());
    assert_eq!(leg.stats().packets_dropped, 1);
    assert_eq!(leg.stats().packets_received, 1);

    // RTCP goes to the latched address, port + 1 (RFC 3550 section 11).
    leg.handle_timeout(t0 + Duration::from_secs(3));
    let tx = leg
        .poll_transmit(t0 + Duration::from_secs(3), &mut out)
        .expect("ok")
        .expect("report due");
    assert_eq!(tx.destination, addr("203.0.113.9:31001"));
    assert_eq!(tx.source, addr("198.51.100.5:40001"));

    // RTCP from the peer's IP but another NAT port latches RTCP there; other IPs are ignored.
    let mut rr = [0u8; 8];
    write_receiver_report(&mut rr, PEER_SSRC, &[]).expect("rr");
    leg.handle_rtcp(t0, addr("203.0.113.66:31001"), &mut rr.clone())
        .expect("valid");
    leg.handle_rtcp(t0, addr("203.0.113.9:31777"), &mut rr.clone())
        .expect("valid");
    leg.handle_rtcp(t0, addr("203.0.113.9:31001"), &mut rr.clone())
        .expect("valid");
    assert_eq!(leg.stats().packets_dropped, 3);
    leg.handle_timeout(t0 + Duration::from_secs(10));
    let tx = leg
        .poll_transmit(t0 + Duration::from_secs(10), &mut out)
        .expect("ok")
        .expect("report due");
    assert_eq!(tx.destination, addr("203.0.113.9:31777"));

    // A new SDP (re-INVITE) starts latching over.
    leg.set_remote(
        t0,
        RtpRemote {
            rtp: addr("192.0.2.77:5000"),
            ..sdp_remote()
        },
    );
    assert_eq!(leg.rtp_destination(), Some(addr("192.0.2.77:5000")));
    let mut p = rtp(0, 102, 320, PEER_SSRC);
    assert!(leg
        .handle_rtp(t0, addr("203.0.113.66:31000"), &mut p)
        .expect("valid")
        .is_some());
    assert_eq!(leg.rtp_destination(), Some(addr("203.0.113.66:31000")));
}

#[test]
fn explicit_rtcp_port_survives_latching_from_the_sdp_address() {
    // The peer names its RTCP port (a=rtcp, RFC 3605), here the RTP port itself, and sends
    // RTP from exactly the SDP's address: latching must not replace that port with RTP + 1.
    let t0 = Instant::now();
    let mut leg = RtpLeg::new(t0, config(t0));
    leg.set_clock_rate(0, 8000);
    let sdp = RtpRemote {
        rtcp: Some(addr("192.0.2.10:4000")),
        ..sdp_remote()
    };
    leg.set_remote(t0, sdp);
    let mut p = rtp(0, 100, 0, PEER_SSRC);
    assert!(leg
        .handle_rtp(t0, addr("192.0.2.10:4000"), &mut p)
        .expect("valid")
        .is_some());
    assert!(leg.is_latched());
    let mut out = [0u8; 1500];
    leg.handle_timeout(t0 + Duration::from_secs(3));
    let tx = leg
        .poll_transmit(t0 + Duration::from_secs(3), &mut out)
        .expect("ok")
        .expect("report due");
    assert_eq!(tx.destination, addr("192.0.2.10:4000"));
    // From another address (a NAT) the SDP's port means nothing there: RTP + 1.
    leg.set_remote(t0, sdp);
    let mut p = rtp(0, 101, 160, PEER_SSRC);
    assert!(leg
        .handle_rtp(t0, addr("203.0.113.9:31000"), &mut p)
        .expect("valid")
        .is_some());
    leg.handle_timeout(t0 + Duration::from_secs(10));
    let tx = leg
        .poll_transmit(t0 + Duration::from_secs(10), &mut out)
        .expect("ok")
        .expect("report due");
    assert_eq!(tx.destination, addr("203.0.113.9:31001"));
}

#[test]
fn rfc2032_fir_from_the_peer_is_a_key_frame_request() {
    // libre/baresip sends this lone packet (RFC 2032 section 5.2.1, packet type 192, just its
    // SSRC) when the video m-line it got has no `a=rtcp-fb ... nack`, as ours never has.
    let t0 = Instant::now();
    let mut leg = leg(t0);
    let mut p = rtp(0, 100, 0, PEER_SSRC);
    leg.handle_rtp(t0, addr("192.0.2.10:4000"), &mut p)
        .expect("valid");
    events(&mut leg);
    let ssrc = PEER_SSRC.to_be_bytes();
    let mut fir = [0x80, 192, 0, 1, ssrc[0], ssrc[1], ssrc[2], ssrc[3]];
    leg.handle_rtcp(t0, addr("192.0.2.10:4001"), &mut fir)
        .expect("valid");
    assert_eq!(events(&mut leg), [RtpLegEvent::KeyframeRequested]);
    // Other packet types we do not know (here APP, 204) ask for nothing.
    let mut app = [
        0x80, 204, 0, 2, ssrc[0], ssrc[1], ssrc[2], ssrc[3], b't', b'e', b's', b't',
    ];
    leg.handle_rtcp(t0, addr("192.0.2.10:4001"), &mut app)
        .expect("valid");
    assert_eq!(events(&mut leg), []);
}

#[test]
fn latching_can_be_turned_off() {
    let t0 = Instant::now();
    let mut cfg = config(t0);
    cfg.symmetric_latching = false;
    let mut leg = RtpLeg::new(t0, cfg);
    leg.set_remote(t0, sdp_remote());
    let mut out = [0u8; 1500];
    for (i, from) in ["203.0.113.9:31000", "203.0.113.10:31000"]
        .into_iter()
        .enumerate()
    {
        let mut p = rtp(0, 100 + i as u16, 0, PEER_SSRC);
        assert!(leg
            .handle_rtp(t0, addr(from), &mut p)
            .expect("valid")
            .is_some());
    }
    assert!(events(&mut leg).is_empty());
    let tx = leg
        .send_rtp(t0, &rtp(0, 1, 0, 7), &mut out)
        .expect("ok")
        .expect("sent");
    assert_eq!(tx.destination, addr("192.0.2.10:4000"));
}

#[test]
fn inactivity_fires_once_after_the_timeout_and_resumes() {
    let t0 = Instant::now();
    let mut cfg = config(t0);
    cfg.inactivity_timeout = Duration::from_secs(60);
    cfg.rtcp_interval = Duration::from_secs(3600);
    let mut leg = RtpLeg::new(t0, cfg);
    leg.set_remote(t0, sdp_remote());
    let from = addr("192.0.2.10:4000");
    let mut p = rtp(0, 1, 0, PEER_SSRC);
    leg.handle_rtp(t0 + Duration::from_secs(10), from, &mut p)
        .expect("valid");
    events(&mut leg);
    assert_eq!(leg.poll_timeout(), Some(t0 + Duration::from_secs(70)));
    leg.handle_timeout(t0 + Duration::from_secs(69));
    assert!(events(&mut leg).is_empty(), "not idle long enough yet");
    leg.handle_timeout(t0 + Duration::from_secs(70));
    assert_eq!(
        events(&mut leg),
        [RtpLegEvent::Inactive {
            idle: Duration::from_secs(60)
        }]
    );
    leg.handle_timeout(t0 + Duration::from_secs(200));
    assert!(events(&mut leg).is_empty(), "reported once");
    let mut p = rtp(0, 2, 160, PEER_SSRC);
    leg.handle_rtp(t0 + Duration::from_secs(201), from, &mut p)
        .expect("valid");
    assert_eq!(events(&mut leg), [RtpLegEvent::ActivityResumed]);
}

#[test]
fn reports_are_rr_before_sending_and_sr_after_with_randomized_interval() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    let mut out = [0u8; 1500];
    let from = addr("192.0.2.10:4000");
    // Receive 10 packets at 20 ms with seq 5 missing.
    for seq in (1..=11u16).filter(|s| *s != 5) {
        let at = t0 + Duration::from_millis(20 * u64::from(seq));
        let mut p = rtp(0, seq, u32::from(seq) * 160, PEER_SSRC);
        leg.handle_rtp(at, from, &mut p).expect("valid");
    }
    // First report after half the interval (RFC 3550 section 6.2).
    assert_eq!(leg.poll_timeout(), Some(t0 + Duration::from_millis(2500)));
    let at = t0 + Duration::from_millis(2500);
    assert!(
        leg.poll_transmit(at, &mut out).expect("ok").is_none(),
        "nothing due before the timer"
    );
    leg.handle_timeout(at);
    let tx = leg.poll_transmit(at, &mut out).expect("ok").expect("due");
    let packets: Vec<_> = RtcpCompound::new(&out[..tx.len])
        .collect::<Result<_, _>>()
        .expect("valid");
    match &packets[0] {
        RtcpPacket::ReceiverReport { ssrc, blocks } => {
            assert_eq!(*ssrc, LOCAL_SSRC);
            let b: Vec<ReportBlock> = blocks.clone().collect();
            assert_eq!(b.len(), 1);
            assert_eq!(
                (b[0].ssrc, b[0].extended_highest_seq, b[0].cumulative_lost),
                (PEER_SSRC, 11, 1)
            );
            assert!(b[0].fraction_lost > 0);
        }
        other => panic!("expected RR, got {other:?}"),
    }
    assert!(matches!(
        packets[1],
        RtcpPacket::SourceDescription { count: 1, .. }
    ));
    assert!(
        leg.poll_transmit(at, &mut out).expect("ok").is_none(),
        "one report per interval"
    );
    let next = leg.poll_timeout().expect("timer");
    assert!(
        next >= at + Duration::from_millis(2500) && next <= at + Duration::from_millis(7500),
        "{:?}",
        next - at
    );

    // After sending media the report is an SR with our counts.
    for i in 0..3u16 {
        leg.send_rtp(next, &rtp(0, i, u32::from(i) * 160, 9), &mut out)
            .expect("ok");
    }
    leg.handle_timeout(next);
    let tx = leg.poll_transmit(next, &mut out).expect("ok").expect("due");
    match RtcpCompound::new(&out[..tx.len]).next() {
        Some(Ok(RtcpPacket::SenderReport { ssrc, info, .. })) => {
            assert_eq!(ssrc, LOCAL_SSRC);
            assert_eq!((info.packet_count, info.octet_count), (3, 480));
        }
        other => panic!("expected SR, got {other:?}"),
    }
    // Two more reports without sending: the first still counts us as a sender (we sent since
    // the report before the previous one), the second is an RR again (RFC 3550 section 6.4).
    let mut kinds = Vec::new();
    let mut at = next;
    for _ in 0..2 {
        at += Duration::from_secs(8);
        leg.handle_timeout(at);
        let tx = leg.poll_transmit(at, &mut out).expect("ok").expect("due");
        kinds.push(matches!(
            RtcpCompound::new(&out[..tx.len]).next(),
            Some(Ok(RtcpPacket::SenderReport { .. }))
        ));
    }
    assert_eq!(kinds, [true, false]);
    let stats = leg.stats();
    assert_eq!(
        (
            stats.packets_received,
            stats.packets_sent,
            stats.packets_lost
        ),
        (10, 3, 1)
    );
    assert_eq!(stats.bytes_received, 10 * 172);
}

#[test]
fn peer_reports_give_rtt_and_its_view_of_our_stream() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    let from = addr("192.0.2.10:4000");
    let rtcp_from = addr("192.0.2.10:4001");
    for seq in 1..=3u16 {
        let mut p = rtp(0, seq, u32::from(seq) * 160, PEER_SSRC);
        leg.handle_rtp(t0, from, &mut p).expect("valid");
    }
    assert_eq!(events(&mut leg), [RtpLegEvent::Latched { rtp: from }]);
    let mut out = [0u8; 1500];
    leg.send_rtp(t0, &rtp(0, 1, 0, 9), &mut out).expect("ok");
    leg.handle_timeout(t0 + Duration::from_millis(2500));
    leg.poll_transmit(t0 + Duration::from_millis(2500), &mut out)
        .expect("ok")
        .expect("sr");
    // The peer answers with its own SR whose report block names our last SR, 100 ms of
    // processing delay, received 150 ms after our SR left: RTT = 50 ms.
    let our_sr_ntp = match RtcpCompound::new(&out).next() {
        Some(Ok(RtcpPacket::SenderReport { info, .. })) => info.ntp_timestamp,
        other => panic!("expected SR, got {other:?}"),
    };
    let block = ReportBlock {
        ssrc: LOCAL_SSRC,
        fraction_lost: 12,
        jitter: 33,
        last_sr: (our_sr_ntp >> 16) as u32,
        delay_since_last_sr: 6553, // 0.1 s
        ..ReportBlock::default()
    };
    let mut buf = [0u8; 256];
    let peer_ntp = 0x0000_4444_0000_0000;
    let mut len = write_sender_report(
        &mut buf,
        PEER_SSRC,
        &SenderInfo {
            ntp_timestamp: peer_ntp,
            ..SenderInfo::default()
        },
        &[block],
    )
    .expect("sr");
    len += write_sdes_cname(&mut buf[len..], PEER_SSRC, b"peer").expect("sdes");
    len += write_pli(&mut buf[len..], PEER_SSRC, LOCAL_SSRC).expect("pli");
    leg.handle_rtcp(t0 + Duration::from_millis(2650), rtcp_from, &mut buf[..len])
        .expect("valid");
    let stats = leg.stats();
    assert_eq!((stats.remote_fraction_lost, stats.remote_jitter), (12, 33));
    let rtt = stats.round_trip.expect("rtt");
    assert!(
        rtt > Duration::from_millis(49) && rtt < Duration::from_millis(51),
        "{rtt:?}"
    );
    assert_eq!(events(&mut leg), [RtpLegEvent::KeyframeRequested]);

    // Our next report carries LSR/DLSR for the peer's SR.
    leg.handle_timeout(t0 + Duration::from_secs(10));
    let tx = leg
        .poll_transmit(t0 + Duration::from_secs(10), &mut out)
        .expect("ok")
        .expect("due");
    match RtcpCompound::new(&out[..tx.len]).next() {
        Some(Ok(RtcpPacket::SenderReport { mut blocks, .. })) => {
            let b = blocks.next().expect("block");
            assert_eq!(b.last_sr, 0x4444_0000);
            assert_eq!(
                b.delay_since_last_sr,
                ((10_000 - 2650) * 65536 / 1000) as u32
            );
        }
        other => panic!("expected SR, got {other:?}"),
    }
}

#[test]
fn keyframe_requests_go_out_immediately_with_the_peer_ssrc() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    let mut p = rtp(0, 1, 0, PEER_SSRC);
    leg.handle_rtp(t0, addr("192.0.2.10:4000"), &mut p)
        .expect("valid");
    let mut out = [0u8; 1500];
    for (full, expect_fir) in [(false, false), (true, true)] {
        leg.request_keyframe(full);
        let tx = leg
            .poll_transmit(t0, &mut out)
            .expect("ok")
            .expect("feedback");
        let packets: Vec<_> = RtcpCompound::new(&out[..tx.len])
            .collect::<Result<_, _>>()
            .expect("valid");
        match packets.last() {
            Some(RtcpPacket::Pli {
                sender_ssrc,
                media_ssrc,
            }) if !expect_fir => {
                assert_eq!((*sender_ssrc, *media_ssrc), (LOCAL_SSRC, PEER_SSRC));
            }
            Some(RtcpPacket::Fir { entries, .. }) if expect_fir => {
                assert_eq!(
                    RtcpPacket::fir_entries(entries).collect::<Vec<_>>(),
                    [(PEER_SSRC, 1)]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn muxed_rtcp_on_the_rtp_port_is_consumed() {
    let t0 = Instant::now();
    let mut leg = RtpLeg::new(t0, config(t0));
    leg.set_remote(
        t0,
        RtpRemote {
            rtcp_mux: true,
            ..sdp_remote()
        },
    );
    let mut buf = [0u8; 64];
    let len = write_receiver_report(&mut buf, PEER_SSRC, &[]).expect("rr");
    let from = addr("192.0.2.10:4000");
    assert!(leg
        .handle_rtp(t0, from, &mut buf[..len])
        .expect("valid")
        .is_none());
    let mut out = [0u8; 1500];
    leg.handle_timeout(t0 + Duration::from_secs(3));
    let tx = leg
        .poll_transmit(t0 + Duration::from_secs(3), &mut out)
        .expect("ok")
        .expect("due");
    assert_eq!(
        (tx.source, tx.destination),
        (addr("198.51.100.5:40000"), from),
        "muxed RTCP uses the RTP ports"
    );
    // Non-RTP traffic (a stray STUN binding request) is dropped.
    let mut stun = [0x00, 0x01, 0x00, 0x00];
    assert!(leg
        .handle_rtp(t0, from, &mut stun)
        .expect("dropped")
        .is_none());
    assert_eq!(leg.stats().packets_dropped, 1);
}

#[test]
fn payload_type_maps_and_continuity_apply_on_the_way_out() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    let mut send = PayloadTypeMap::empty();
    send.insert(111, 116); // browser opus 111 -> baresip opus 116
    send.insert(126, 101); // telephone-event
    leg.set_send_payload_map(send);
    let mut receive = PayloadTypeMap::empty();
    receive.insert(116, 111);
    leg.set_receive_payload_map(receive);
    leg.set_clock_rate(111, 48_000);
    let mut out = [0u8; 1500];
    let tx = leg
        .send_rtp(t0, &rtp(111, 500, 96_000, 0xb0b), &mut out)
        .expect("ok")
        .expect("sent");
    let p = media::rtp::RtpPacket::parse(&out[..tx.len]).expect("valid");
    assert_eq!(
        (
            p.payload_type(),
            p.ssrc(),
            p.sequence_number(),
            p.timestamp()
        ),
        (116, LOCAL_SSRC, 500, 96_000)
    );
    let tx = leg
        .send_rtp_parts(
            t0,
            126,
            true,
            501,
            96_960,
            0xb0b,
            &[1, 0x8a, 0, 160],
            &mut out,
        )
        .expect("ok")
        .expect("sent");
    let p = media::rtp::RtpPacket::parse(&out[..tx.len]).expect("valid");
    assert_eq!(
        (p.payload_type(), p.marker(), p.sequence_number()),
        (101, true, 501)
    );
    assert!(
        leg.send_rtp(t0, &rtp(0, 502, 0, 0xb0b), &mut out)
            .expect("ok")
            .is_none(),
        "PCMU not negotiated"
    );

    let mut p = rtp(116, 1, 0, PEER_SSRC);
    let got = leg
        .handle_rtp(t0, addr("192.0.2.10:4000"), &mut p)
        .expect("valid")
        .expect("forwarded");
    assert_eq!(got.payload_type(), 111);
    let mut p = rtp(8, 2, 0, PEER_SSRC);
    assert!(leg
        .handle_rtp(t0, addr("192.0.2.10:4000"), &mut p)
        .expect("valid")
        .is_none());

    // Held by the peer (it is sendonly): we stop sending RTP.
    leg.set_remote(
        t0,
        RtpRemote {
            sending: false,
            ..sdp_remote()
        },
    );
    assert!(leg
        .send_rtp(t0, &rtp(111, 503, 0, 0xb0b), &mut out)
        .expect("ok")
        .is_none());
}

#[test]
fn buffers_that_are_too_small_are_errors_not_panics() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    let mut tiny = [0u8; 20];
    assert_eq!(
        leg.send_rtp(t0, &rtp(0, 1, 0, 1), &mut tiny),
        Err(RtpLegError::BufferTooSmall)
    );
    leg.handle_timeout(t0 + Duration::from_secs(3));
    assert!(leg
        .poll_transmit(t0 + Duration::from_secs(3), &mut tiny)
        .is_err());
    let mut short = [0x80, 0, 0, 1, 0, 0];
    assert_eq!(
        leg.handle_rtp(t0, addr("192.0.2.10:4000"), &mut short)
            .err(),
        Some(RtpLegError::Packet(RtpError::TooShort))
    );
}

fn srtp_pair(suite: CryptoSuite) -> (SdesSrtp, SdesSrtp) {
    let len = suite.key_len() + suite.salt_len();
    let a_key: Vec<u8> = (0..len as u8).collect();
    let b_key: Vec<u8> = (0..len as u8)
        .map(|b| b.wrapping_mul(7).wrapping_add(3))
        .collect();
    let a = CryptoAttribute::new(1, suite, &a_key).expect("key");
    let b = CryptoAttribute::new(1, suite, &b_key).expect("key");
    (
        SdesSrtp::new(&a, &b).expect("a"),
        SdesSrtp::new(&b, &a).expect("b"),
    )
}

#[test]
fn sdes_srtp_between_two_legs() {
    for suite in [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
        CryptoSuite::AeadAes128Gcm,
    ] {
        let t0 = Instant::now();
        let (a_srtp, b_srtp) = srtp_pair(suite);
        let mut a = leg(t0);
        a.set_srtp(Some(a_srtp));
        let mut b = leg(t0);
        b.set_srtp(Some(b_srtp));
        let mut wire = [0u8; 1500];
        for seq in 0..5u16 {
            let plain = rtp(0, 1000 + seq, u32::from(seq) * 160, 0xabc);
            let tx = a
                .send_rtp(t0, &plain, &mut wire)
                .expect("ok")
                .expect("sent");
            assert!(tx.len > plain.len(), "{suite:?}: auth tag added");
            assert_ne!(
                &wire[12..plain.len()],
                &plain[12..],
                "{suite:?}: payload encrypted"
            );
            let got = b
                .handle_rtp(t0, addr("198.51.100.5:40000"), &mut wire[..tx.len])
                .expect("decrypts")
                .expect("rtp");
            assert_eq!(got.payload(), &plain[12..], "{suite:?}");
            assert_eq!(got.ssrc(), LOCAL_SSRC);
        }
        // A replayed or tampered packet fails authentication.
        let plain = rtp(0, 2000, 0, 0xabc);
        let tx = a
            .send_rtp(t0, &plain, &mut wire)
            .expect("ok")
            .expect("sent");
        wire[20] ^= 1;
        assert_eq!(
            b.handle_rtp(t0, addr("198.51.100.5:40000"), &mut wire[..tx.len])
                .err(),
            Some(RtpLegError::Packet(RtpError::SrtpUnprotect)),
            "{suite:?}"
        );
        // SRTCP: A's report reaches B (RFC 3711 section 3.4).
        a.handle_timeout(t0 + Duration::from_secs(3));
        let tx = a
            .poll_transmit(t0 + Duration::from_secs(3), &mut wire)
            .expect("ok")
            .expect("report");
        b.handle_rtcp(
            t0 + Duration::from_secs(3),
            addr("198.51.100.5:40001"),
            &mut wire[..tx.len],
        )
        .expect("srtcp decrypts");
    }
}

#[test]
fn malformed_extensions_from_the_webrtc_side_are_stripped_before_srtp() {
    // Found by tests/rtp_mutations.rs: a one-byte extension element claiming more bytes than
    // the extension holds made rtc::srtp's encrypt path slice past the packet and panic.
    let packet = [
        0xb2, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0xbe, 0xde, 0, 1, 0x10, 32,
        215, 0, 37, 138, 3, 32, 0, 0, 2,
    ];
    for suite in [CryptoSuite::AeadAes128Gcm, CryptoSuite::AesCm128HmacSha1_80] {
        let t0 = Instant::now();
        let (srtp, _) = srtp_pair(suite);
        let mut leg = leg(t0);
        leg.set_clock_rate(96, 48_000);
        leg.set_srtp(Some(srtp));
        let mut out = [0u8; 1500];
        let tx = leg
            .send_rtp(t0, &packet, &mut out)
            .expect("sent")
            .expect("transmit");
        // 12 fixed + 8 CSRC + 7 payload/padding bytes, the tag on top; no extension.
        assert_eq!(out[0] & 0x10, 0, "{suite:?}");
        assert!(tx.len >= 27, "{suite:?}");
    }
}

#[test]
fn negotiated_media_becomes_the_remote_and_maps() {
    use media::sdp::{Codec, MediaDirection, MediaType, NegotiatedMedia};
    let codec = |pt: u8, name: &str, rate: u32| Codec {
        payload_type: pt,
        name: name.into(),
        clock_rate: rate,
        channels: 1,
        fmtp: None,
    };
    let mut media = NegotiatedMedia {
        kind: MediaType::Audio,
        rejected: false,
        direction: MediaDirection::SendRecv,
        codecs: vec![codec(0, "PCMU", 8000), codec(101, "telephone-event", 8000)],
        telephone_event_pt: Some(101),
        remote_rtp: Some(addr("192.0.2.10:4000")),
        remote_rtcp: Some(addr("192.0.2.10:4001")),
        rtcp_mux: false,
        remote_crypto: None,
        local_crypto: None,
        ptime: Some(20),
    };
    let remote = RtpRemote::from_negotiated(&media).expect("active");
    assert_eq!(
        remote,
        RtpRemote {
            rtp: addr("192.0.2.10:4000"),
            rtcp: Some(addr("192.0.2.10:4001")),
            rtcp_mux: false,
            sending: true
        }
    );
    // The peer holds us (sendonly): we must not send, RTCP goes on.
    media.direction = MediaDirection::SendOnly;
    assert!(!RtpRemote::from_negotiated(&media).expect("active").sending);
    // RFC 2543-style hold with c=0.0.0.0: no sending, and the leg never targets 0.0.0.0.
    media.direction = MediaDirection::SendRecv;
    media.remote_rtp = Some(addr("0.0.0.0:4000"));
    media.remote_rtcp = Some(addr("0.0.0.0:4001"));
    let held = RtpRemote::from_negotiated(&media).expect("active");
    assert!(!held.sending);
    let t0 = Instant::now();
    let mut leg = RtpLeg::new(t0, config(t0));
    leg.set_remote(t0, held);
    assert_eq!(leg.rtp_destination(), None);
    leg.handle_timeout(t0 + Duration::from_secs(10));
    assert!(leg
        .poll_transmit(t0 + Duration::from_secs(10), &mut [0u8; 1500])
        .expect("ok")
        .is_none());
    media.rejected = true;
    assert_eq!(RtpRemote::from_negotiated(&media), None);

    // Browser payload types -> SIP payload types and back, by encoding.
    let browser = [
        codec(111, "opus", 48000),
        codec(0, "PCMU", 8000),
        codec(126, "telephone-event", 8000),
    ];
    let to_sip = PayloadTypeMap::from_codecs(&browser, &media.codecs);
    assert_eq!(
        (to_sip.map(0), to_sip.map(126), to_sip.map(111)),
        (Some(0), Some(101), None)
    );
    let to_browser = PayloadTypeMap::from_codecs(&media.codecs, &browser);
    assert_eq!(to_browser.map(101), Some(126));
}

#[test]
fn port_allocator_hands_out_even_odd_pairs_and_reuses_late() {
    let mut ports = PortAllocator::new(10_001, 10_008).expect("range");
    // 10001 is odd: the first pair starts at 10002; 10008 cannot start a pair (10009 > max).
    assert_eq!(ports.available(), 3);
    let pairs: Vec<PortPair> = std::iter::from_fn(|| ports.allocate()).collect();
    assert_eq!(
        pairs,
        [
            PortPair {
                rtp: 10_002,
                rtcp: 10_003
            },
            PortPair {
                rtp: 10_004,
                rtcp: 10_005
            },
            PortPair {
                rtp: 10_006,
                rtcp: 10_007
            }
        ]
    );
    assert_eq!(ports.allocate(), None, "exhausted");
    assert_eq!(ports.release(10_004), Ok(()));
    assert_eq!(
        ports.release(10_004),
        Err(RtpLegError::PortNotAllocated),
        "double release"
    );
    assert_eq!(
        ports.release(10_003),
        Err(RtpLegError::PortNotAllocated),
        "odd port"
    );
    assert_eq!(ports.release(9_000), Err(RtpLegError::PortNotAllocated));
    assert_eq!(ports.release(12_000), Err(RtpLegError::PortNotAllocated));
    ports.release(10_002).expect("allocated");
    // FIFO: the pair released first comes back first, the most recently released last.
    assert_eq!(ports.allocate().map(|p| p.rtp), Some(10_004));
    assert_eq!(ports.allocate().map(|p| p.rtp), Some(10_002));
    assert_eq!(
        PortAllocator::new(10_000, 10_000).err(),
        Some(RtpLegError::EmptyPortRange)
    );
    assert_eq!(
        PortAllocator::new(65_535, 65_535).err(),
        Some(RtpLegError::EmptyPortRange)
    );
    assert_eq!(
        PortAllocator::new(20_000, 10_000).err(),
        Some(RtpLegError::EmptyPortRange)
    );
    assert_eq!(
        PortAllocator::new(65_534, 65_535).map(|p| p.available()),
        Ok(1)
    );
}

#[test]
fn bye_closes_the_stream_with_a_compound_packet() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    let mut out = [0u8; 1500];
    let tx = leg
        .write_bye(t0, &mut out)
        .expect("ok")
        .expect("destination known");
    assert_eq!(tx.destination, addr("192.0.2.10:4001"));
    let packets: Vec<_> = RtcpCompound::new(&out[..tx.len])
        .collect::<Result<_, _>>()
        .expect("valid");
    assert!(matches!(
        packets[0],
        RtcpPacket::ReceiverReport {
            ssrc: LOCAL_SSRC,
            ..
        }
    ));
    assert!(matches!(packets[1], RtcpPacket::SourceDescription { .. }));
    match &packets[2] {
        RtcpPacket::Bye { count, body } => {
            assert_eq!(
                RtcpPacket::bye_ssrcs(*count, body).collect::<Vec<_>>(),
                [LOCAL_SSRC]
            );
        }
        other => panic!("expected BYE, got {other:?}"),
    }
    // The peer's BYE is surfaced as an event.
    let mut from_peer = [0u8; 64];
    let len = media::rtp::rtcp::write_bye(&mut from_peer, PEER_SSRC).expect("bye");
    leg.handle_rtcp(t0, addr("192.0.2.10:4001"), &mut from_peer[..len])
        .expect("valid");
    assert_eq!(events(&mut leg), [RtpLegEvent::RemoteBye]);
}

#[test]
fn telephone_events_are_forwarded_and_reported_once_per_digit() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    leg.set_telephone_event_payload_type(Some(101));
    let mut map = PayloadTypeMap::empty();
    map.insert(0, 0);
    map.insert(101, 126);
    leg.set_receive_payload_map(map);
    let from = addr("192.0.2.10:4000");
    // Digit 7: start, update, then the end packet three times (RFC 4733 section 2.5.1.4).
    let blocks: [(u8, u16); 5] = [
        (0x0a, 160),
        (0x0a, 320),
        (0x8a, 480),
        (0x8a, 480),
        (0x8a, 480),
    ];
    for (i, (flags, duration)) in blocks.into_iter().enumerate() {
        let mut buf = [0u8; 64];
        let d = duration.to_be_bytes();
        let len = write_rtp_packet(
            &mut buf,
            101,
            i == 0,
            10 + i as u16,
            8000,
            PEER_SSRC,
            &[7, flags, d[0], d[1]],
        )
        .expect("fits");
        let got = leg
            .handle_rtp(t0, from, &mut buf[..len])
            .expect("valid")
            .expect("forwarded");
        assert_eq!(
            got.payload_type(),
            126,
            "telephone-event PT mapped to the browser's"
        );
    }
    let reported: Vec<_> = events(&mut leg)
        .into_iter()
        .filter(|e| !matches!(e, RtpLegEvent::Latched { .. }))
        .collect();
    assert_eq!(
        reported,
        [RtpLegEvent::TelephoneEventEnded {
            event: 7,
            duration: 480
        }]
    );
}

#[test]
fn header_extensions_from_the_sip_peer_are_removed_before_forwarding() {
    let t0 = Instant::now();
    let mut leg = leg(t0);
    // X=1 with a one-word extension, then 3 payload bytes.
    let mut packet = [
        0x90, 0, 0, 1, 0, 0, 0, 2, 0xfe, 0xed, 0xf0, 0x0d, 0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0, 1,
        2, 3,
    ];
    let got = leg
        .handle_rtp(t0, addr("192.0.2.10:4000"), &mut packet)
        .expect("valid")
        .expect("forwarded");
    assert!(!got.extension());
    assert_eq!((got.len(), got.payload()), (15, &[1u8, 2, 3][..]));
    assert_eq!(
        leg.stats().bytes_received,
        23,
        "counted as received on the wire"
    );
    // A malformed extension (length beyond the packet) is an error, not a forwarded packet.
    let mut bad = [
        0x90, 0, 0, 2, 0, 0, 0, 2, 0xfe, 0xed, 0xf0, 0x0d, 0xbe, 0xde, 0, 9, 0x10, 0xaa, 0, 0,
    ];
    assert_eq!(
        leg.handle_rtp(t0, addr("192.0.2.10:4000"), &mut bad).err(),
        Some(RtpLegError::Packet(RtpError::TooShort))
    );
}
