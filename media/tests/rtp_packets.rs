//! RTP/RTCP packet layer: header view and rewrite, payload type map, SSRC continuity,
//! RFC 4733 events, RFC 7983/5761 demux, RTCP views and writers, reception statistics.

use std::time::{Duration, Instant};

use media::rtp::rtcp::{
    rewrite_feedback_ssrcs, write_bye, write_fir, write_pli, write_receiver_report,
    write_sdes_cname, write_sender_report, ReportBlock, RtcpCompound, RtcpPacket, SenderInfo,
};
use media::rtp::{
    classify_datagram, ntp_middle_32, remove_header_extension, write_rtp_packet, DatagramKind,
    NtpClock, PayloadTypeMap, ReceptionStats, RtpError, RtpPacket, SendStats, SsrcRewriter,
    TelephoneEvent,
};

fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 12 + payload.len()];
    let len = write_rtp_packet(&mut buf, pt, false, seq, ts, ssrc, payload).expect("fits");
    buf.truncate(len);
    buf
}

#[test]
fn header_fields_are_read_from_the_wire_layout() {
    // V=2 P=0 X=1 CC=1, M=1 PT=111, seq 0x1234, ts 0xdeadbeef, ssrc 0x01020304, one CSRC,
    // a one-word extension (RFC 3550 5.3.1), then 3 payload bytes.
    let bytes = [
        0x91, 0xef, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, // fixed
        0xaa, 0xbb, 0xcc, 0xdd, // CSRC
        0xbe, 0xde, 0x00, 0x01, 0x10, 0xff, 0x00, 0x00, // extension, 1 word
        7, 8, 9,
    ];
    let p = RtpPacket::parse(&bytes[..]).expect("valid");
    assert!(p.marker() && p.extension() && !p.padding());
    assert_eq!(p.csrc_count(), 1);
    assert_eq!(p.payload_type(), 111);
    assert_eq!(p.sequence_number(), 0x1234);
    assert_eq!(p.timestamp(), 0xdead_beef);
    assert_eq!(p.ssrc(), 0x0102_0304);
    assert_eq!(p.payload_offset(), 24);
    assert_eq!(p.payload(), &[7, 8, 9]);
}

#[test]
fn padding_is_excluded_from_the_payload_and_checked() {
    let mut bytes = packet(0, 1, 2, 3, &[1, 2, 3, 0, 0, 3]);
    bytes[0] |= 0x20;
    assert_eq!(
        RtpPacket::parse(&bytes[..]).expect("valid").payload(),
        &[1, 2, 3]
    );
    *bytes.last_mut().expect("non-empty") = 0;
    assert_eq!(
        RtpPacket::parse(&bytes[..]).err(),
        Some(RtpError::BadPadding)
    );
    *bytes.last_mut().expect("non-empty") = 7;
    assert_eq!(
        RtpPacket::parse(&bytes[..]).err(),
        Some(RtpError::BadPadding)
    );
}

#[test]
fn malformed_headers_are_rejected() {
    assert_eq!(RtpPacket::parse(&[][..]).err(), Some(RtpError::TooShort));
    assert_eq!(
        RtpPacket::parse(&[0x80; 11][..]).err(),
        Some(RtpError::TooShort)
    );
    let mut v1 = packet(0, 1, 2, 3, &[]);
    v1[0] = 0x40;
    assert_eq!(RtpPacket::parse(&v1[..]).err(), Some(RtpError::BadVersion));
    let mut csrc = packet(0, 1, 2, 3, &[0; 8]);
    csrc[0] |= 0x0f; // 15 CSRCs need 60 bytes
    assert_eq!(RtpPacket::parse(&csrc[..]).err(), Some(RtpError::TooShort));
    let mut ext = packet(0, 1, 2, 3, &[0xbe, 0xde, 0xff, 0xff]);
    ext[0] |= 0x10;
    assert_eq!(RtpPacket::parse(&ext[..]).err(), Some(RtpError::TooShort));
}

#[test]
fn rewrites_touch_only_their_field() {
    let original = packet(111, 100, 48_000, 0xaaaa_aaaa, b"opus");
    let mut bytes = original.clone();
    bytes[1] |= 0x80; // marker
    let mut p = RtpPacket::parse(&mut bytes[..]).expect("valid");
    p.set_payload_type(96);
    assert!(p.marker(), "marker survives a PT rewrite");
    p.set_sequence_number(65535);
    p.set_timestamp(7);
    p.set_ssrc(0x1234_5678);
    p.set_marker(false);
    assert_eq!(
        (
            p.payload_type(),
            p.sequence_number(),
            p.timestamp(),
            p.ssrc(),
            p.marker()
        ),
        (96, 65535, 7, 0x1234_5678, false)
    );
    assert_eq!(p.payload(), b"opus");
    assert_eq!(&bytes[12..], &original[12..]);
}

#[test]
fn payload_type_map_is_a_table_with_holes() {
    let mut map = PayloadTypeMap::empty();
    map.insert(111, 96);
    map.insert(126, 101);
    map.insert(200, 1); // not a payload type: ignored
    map.insert(5, 200); // not a payload type: ignored
    assert_eq!(map.map(111), Some(96));
    assert_eq!(map.map(126), Some(101));
    assert_eq!(map.map(0), None);
    assert_eq!(map.map(5), None);
    assert_eq!(map.map(200), None);
    let mut bytes = packet(126, 1, 2, 3, &[]);
    let mut p = RtpPacket::parse(&mut bytes[..]).expect("valid");
    assert!(map.apply(&mut p));
    assert_eq!(p.payload_type(), 101);
    let mut other = packet(9, 1, 2, 3, &[]);
    let mut p = RtpPacket::parse(&mut other[..]).expect("valid");
    assert!(!map.apply(&mut p));
    assert_eq!(p.payload_type(), 9, "unmapped packets are left untouched");
}

#[test]
fn ssrc_rewriter_keeps_sequence_and_timestamp_continuous_across_sources() {
    let t0 = Instant::now();
    let mut rewriter = SsrcRewriter::new(0x5555_5555);
    let mut out = Vec::new();
    // Source A: seq 1000.., ts step 160 (20 ms at 8 kHz).
    for i in 0..3u16 {
        let mut b = packet(0, 1000 + i, 8000 + 160 * u32::from(i), 0xa, &[]);
        let mut p = RtpPacket::parse(&mut b[..]).expect("valid");
        rewriter.rewrite(t0 + Duration::from_millis(20 * u64::from(i)), 8000, &mut p);
        out.push((p.ssrc(), p.sequence_number(), p.timestamp()));
    }
    // Source B starts 100 ms after A's last packet with unrelated numbers, then a late
    // reordered packet of B arrives.
    for (at_ms, seq, ts) in [
        (140u64, 50_000u16, 900_000u32),
        (160, 50_001, 900_160),
        (170, 49_999, 899_840),
    ] {
        let mut b = packet(0, seq, ts, 0xb, &[]);
        let mut p = RtpPacket::parse(&mut b[..]).expect("valid");
        rewriter.rewrite(t0 + Duration::from_millis(at_ms), 8000, &mut p);
        out.push((p.ssrc(), p.sequence_number(), p.timestamp()));
    }
    assert_eq!(
        out,
        [
            (0x5555_5555, 1000, 8000),
            (0x5555_5555, 1001, 8160),
            (0x5555_5555, 1002, 8320),
            // Next sequence number; timestamp advanced by the 100 ms gap at 8 kHz = 800.
            (0x5555_5555, 1003, 9120),
            (0x5555_5555, 1004, 9280),
            // Reordered packet of the same source keeps its relative position.
            (0x5555_5555, 1002, 8960),
        ]
    );
}

#[test]
fn a_codec_change_rebases_the_same_source_at_the_new_clock_rate() {
    let t0 = Instant::now();
    let mut rewriter = SsrcRewriter::new(7);
    let mut out = Vec::new();
    // Opus (48 kHz) from SSRC 0xa, 20 ms frames.
    for i in 0..2u16 {
        let mut b = packet(111, 100 + i, 48_000 * 3 + 960 * u32::from(i), 0xa, &[]);
        let mut p = RtpPacket::parse(&mut b[..]).expect("valid");
        rewriter.rewrite(
            t0 + Duration::from_millis(20 * u64::from(i)),
            48_000,
            &mut p,
        );
        out.push((p.sequence_number(), p.timestamp()));
    }
    // The offer/answer moved the stream to PCMU (8 kHz); the same source restarts its
    // numbers 40 ms after its last Opus frame.
    rewriter.rebase();
    for (i, at_ms) in [(0u16, 60u64), (1, 80)] {
        let mut b = packet(0, 5 + i, 160 * u32::from(i), 0xa, &[]);
        let mut p = RtpPacket::parse(&mut b[..]).expect("valid");
        rewriter.rewrite(t0 + Duration::from_millis(at_ms), 8_000, &mut p);
        out.push((p.sequence_number(), p.timestamp()));
    }
    assert_eq!(
        out,
        [
            (100, 144_000),
            (101, 144_960),
            // Next sequence number; 40 ms at 8 kHz (320) after the last timestamp.
            (102, 145_280),
            (103, 145_440),
        ]
    );
    // A rebase before any packet changes nothing: the first source passes through.
    let mut fresh = SsrcRewriter::new(7);
    fresh.rebase();
    let mut b = packet(0, 9, 99, 0xa, &[]);
    let mut p = RtpPacket::parse(&mut b[..]).expect("valid");
    fresh.rewrite(t0, 8_000, &mut p);
    assert_eq!((p.sequence_number(), p.timestamp()), (9, 99));
}

#[test]
fn ssrc_rewriter_wraps_sequence_numbers() {
    let t0 = Instant::now();
    let mut rewriter = SsrcRewriter::new(1);
    let mut b = packet(0, 65535, 0, 0xa, &[]);
    rewriter.rewrite(t0, 8000, &mut RtpPacket::parse(&mut b[..]).expect("valid"));
    let mut b = packet(0, 3, 0, 0xb, &[]);
    let mut p = RtpPacket::parse(&mut b[..]).expect("valid");
    assert_eq!(rewriter.rewrite(t0, 8000, &mut p), 0);
    assert_eq!(
        p.timestamp(),
        1,
        "at least one tick forward even with no time elapsed"
    );
}

#[test]
fn telephone_events_parse_per_rfc4733() {
    // Digit 5, end bit, volume 10, duration 800.
    let e = TelephoneEvent::parse(&[5, 0x8a, 0x03, 0x20]).expect("4 bytes");
    assert_eq!(
        e,
        TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: 800
        }
    );
    assert_eq!(e.digit(), Some('5'));
    assert_eq!(
        TelephoneEvent::parse(&[11, 0, 0, 0]).expect("ok").digit(),
        Some('#')
    );
    assert_eq!(
        TelephoneEvent::parse(&[16, 0, 0, 0]).expect("ok").digit(),
        None
    );
    assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), Err(RtpError::TooShort));
}

#[test]
fn datagrams_are_demultiplexed_by_first_bytes() {
    let cases: &[(&[u8], DatagramKind)] = &[
        (&[0x00, 0x01], DatagramKind::Stun),
        (&[0x01, 0x01], DatagramKind::Stun),
        (&[17, 0], DatagramKind::Zrtp),
        (&[22, 0xfe, 0xfd], DatagramKind::Dtls),
        (&[64, 0], DatagramKind::TurnChannel),
        (&[0x80, 0x00], DatagramKind::Rtp),
        (&[0x80, 0x80 | 111], DatagramKind::Rtp),
        (&[0x80, 200], DatagramKind::Rtcp),
        (&[0x81, 201], DatagramKind::Rtcp),
        (&[0x80, 223], DatagramKind::Rtcp),
        (&[0x80, 224], DatagramKind::Rtp),
        (&[0x80, 191], DatagramKind::Rtp),
        (&[0xc0, 0], DatagramKind::Unknown),
        (&[0x80], DatagramKind::Unknown),
        (&[], DatagramKind::Unknown),
    ];
    for (bytes, kind) in cases {
        assert_eq!(classify_datagram(bytes), *kind, "{bytes:?}");
    }
}

fn sample_block(ssrc: u32) -> ReportBlock {
    ReportBlock {
        ssrc,
        fraction_lost: 64,
        cumulative_lost: -3,
        extended_highest_seq: 0x0001_0005,
        jitter: 77,
        last_sr: 0x1234_5678,
        delay_since_last_sr: 65536,
    }
}

#[test]
fn sender_report_round_trips_with_rfc3550_layout() {
    let info = SenderInfo {
        ntp_timestamp: 0x8000_0001_4000_0000,
        rtp_timestamp: 1234,
        packet_count: 10,
        octet_count: 1600,
    };
    let mut buf = [0u8; 256];
    let len = write_sender_report(&mut buf, 0xcafe, &info, &[sample_block(0xbeef)]).expect("fits");
    assert_eq!(len, 52);
    // V=2, RC=1, PT=200, length = 52/4 - 1 = 12 words.
    assert_eq!(&buf[..4], &[0x81, 200, 0, 12]);
    // Cumulative lost -3 is 24-bit two's complement after the fraction (RFC 3550 6.4.1).
    assert_eq!(&buf[32..36], &[64, 0xff, 0xff, 0xfd]);
    let mut packets = RtcpCompound::new(&buf[..len]);
    match packets.next() {
        Some(Ok(RtcpPacket::SenderReport {
            ssrc,
            info: got,
            blocks,
        })) => {
            assert_eq!(ssrc, 0xcafe);
            assert_eq!(got, info);
            assert_eq!(blocks.collect::<Vec<_>>(), [sample_block(0xbeef)]);
        }
        other => panic!("expected SR, got {other:?}"),
    }
    assert!(packets.next().is_none());
}

#[test]
fn compound_with_rr_sdes_pli_fir_nack_bye_parses() {
    let mut buf = [0u8; 512];
    let mut len = write_receiver_report(&mut buf, 1, &[sample_block(2)]).expect("rr");
    len += write_sdes_cname(&mut buf[len..], 1, b"gw@example").expect("sdes");
    len += write_pli(&mut buf[len..], 1, 2).expect("pli");
    len += write_fir(&mut buf[len..], 1, 2, 9).expect("fir");
    // A generic NACK (RTPFB FMT=1) for PID 100 and the two packets after it.
    let nack = [0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 100, 0, 3];
    buf[len..len + nack.len()].copy_from_slice(&nack);
    len += nack.len();
    len += write_bye(&mut buf[len..], 1).expect("bye");
    let packets: Vec<RtcpPacket<'_>> = RtcpCompound::new(&buf[..len])
        .collect::<Result<_, _>>()
        .expect("valid");
    assert_eq!(packets.len(), 6);
    assert!(matches!(
        &packets[0],
        RtcpPacket::ReceiverReport { ssrc: 1, .. }
    ));
    match &packets[1] {
        RtcpPacket::SourceDescription { count: 1, body } => {
            assert_eq!(&body[..4], &[0, 0, 0, 1]);
            assert_eq!(body[4], 1, "CNAME item");
            assert_eq!(&body[6..6 + usize::from(body[5])], b"gw@example");
            assert_eq!(body.len() % 4, 0, "chunk padded to 32 bits");
        }
        other => panic!("expected SDES, got {other:?}"),
    }
    assert!(matches!(
        packets[2],
        RtcpPacket::Pli {
            sender_ssrc: 1,
            media_ssrc: 2
        }
    ));
    match &packets[3] {
        RtcpPacket::Fir {
            sender_ssrc: 1,
            entries,
        } => {
            assert_eq!(
                RtcpPacket::fir_entries(entries).collect::<Vec<_>>(),
                [(2, 9)]
            );
        }
        other => panic!("expected FIR, got {other:?}"),
    }
    assert!(
        matches!(packets[4], RtcpPacket::Nack { sender_ssrc: 1, media_ssrc: 2, entries } if entries == [0, 100, 0, 3])
    );
    match &packets[5] {
        RtcpPacket::Bye { count, body } => {
            assert_eq!(RtcpPacket::bye_ssrcs(*count, body).collect::<Vec<_>>(), [1])
        }
        other => panic!("expected BYE, got {other:?}"),
    }
}

#[test]
fn feedback_is_translated_between_legs_in_place() {
    let mut buf = [0u8; 128];
    let mut len = write_receiver_report(&mut buf, 1, &[]).expect("rr");
    len += write_pli(&mut buf[len..], 0x1111, 0x2222).expect("pli");
    len += write_fir(&mut buf[len..], 0x1111, 0x2222, 4).expect("fir");
    assert_eq!(
        rewrite_feedback_ssrcs(&mut buf[..len], 0xaaaa, 0xbbbb),
        Ok(2)
    );
    let packets: Vec<_> = RtcpCompound::new(&buf[..len])
        .collect::<Result<_, _>>()
        .expect("valid");
    assert!(
        matches!(packets[0], RtcpPacket::ReceiverReport { ssrc: 1, .. }),
        "reports untouched"
    );
    assert!(matches!(
        packets[1],
        RtcpPacket::Pli {
            sender_ssrc: 0xaaaa,
            media_ssrc: 0xbbbb
        }
    ));
    match &packets[2] {
        RtcpPacket::Fir {
            sender_ssrc: 0xaaaa,
            entries,
        } => {
            assert_eq!(
                RtcpPacket::fir_entries(entries).collect::<Vec<_>>(),
                [(0xbbbb, 4)]
            );
        }
        other => panic!("expected FIR, got {other:?}"),
    }
}

#[test]
fn rtcp_lengths_are_bounds_checked() {
    let mut buf = [0u8; 64];
    let len = write_receiver_report(&mut buf, 1, &[sample_block(2)]).expect("rr");
    // Claim two report blocks with room for one.
    buf[0] = 0x82;
    assert_eq!(
        RtcpCompound::new(&buf[..len]).next().map(|r| r.err()),
        Some(Some(RtpError::TooShort))
    );
    // Length field beyond the datagram.
    assert!(RtcpCompound::new(&[0x80, 201, 0, 9, 0, 0, 0, 1])
        .next()
        .is_some_and(|r| r.is_err()));
    assert!(RtcpCompound::new(&[0x40, 201, 0, 1, 0, 0, 0, 1])
        .next()
        .is_some_and(|r| r.is_err()));
    assert_eq!(
        write_pli(&mut [0u8; 11], 1, 2),
        Err(RtpError::BufferTooSmall)
    );
    assert_eq!(
        write_receiver_report(&mut buf, 1, &[sample_block(2); 32]),
        Err(RtpError::TooManyReportBlocks)
    );
}

#[test]
fn ntp_clock_maps_instants_to_ntp_time() {
    let t0 = Instant::now();
    // 2026-01-01T00:00:00Z = 1767225600 Unix seconds.
    let clock = NtpClock::new(t0, Duration::from_secs(1_767_225_600));
    let ntp = clock.ntp(t0 + Duration::from_millis(1500));
    assert_eq!(ntp >> 32, 1_767_225_600 + 2_208_988_800 + 1);
    assert_eq!(
        ntp & 0xffff_ffff,
        0x8000_0000,
        "half a second is 2^31 fractional units"
    );
    assert_eq!(ntp_middle_32(0x1122_3344_5566_7788), 0x3344_5566);
}

/// Feeds `(seq, arrival ms, rtp ts)` at 8 kHz into fresh stats.
fn scripted(t0: Instant, script: &[(u16, u64, u32)]) -> ReceptionStats {
    let mut stats = ReceptionStats::new(t0, 0x42, script[0].0);
    for &(seq, at_ms, ts) in script {
        stats.record(t0 + Duration::from_millis(at_ms), seq, ts, 8000, 160);
    }
    stats
}

#[test]
fn loss_and_fraction_follow_rfc3550_appendix_a3() {
    let t0 = Instant::now();
    // 10 packets expected (seq 10..=19), 3 and 7 missing.
    let script: Vec<(u16, u64, u32)> = (10..20u16)
        .filter(|s| *s != 13 && *s != 17)
        .map(|s| (s, u64::from(s) * 20, u32::from(s) * 160))
        .collect();
    let mut stats = scripted(t0, &script);
    assert_eq!(stats.extended_highest_seq(), 19);
    // The first packet is probation (A.1: MIN_SEQUENTIAL = 2), so counting starts at 11.
    assert_eq!(stats.packets(), 7);
    assert_eq!(stats.cumulative_lost(), 2);
    let block = stats.report_block(t0 + Duration::from_secs(1));
    assert_eq!(block.cumulative_lost, 2);
    assert_eq!(block.fraction_lost, (2 * 256 / 9) as u8);
    assert_eq!(block.jitter, 0, "perfectly paced packets have no jitter");
    // A second report in the same interval with nothing new reports no fresh loss.
    assert_eq!(
        stats
            .report_block(t0 + Duration::from_secs(2))
            .fraction_lost,
        0
    );
}

#[test]
fn jitter_follows_rfc3550_appendix_a8() {
    let t0 = Instant::now();
    // Packets every 20 ms of media time, arrivals alternating 10 ms late: |D| = 80 units
    // (10 ms at 8 kHz) on every packet after the first.
    let script: Vec<(u16, u64, u32)> = (0..200u16)
        .map(|i| {
            (
                i,
                u64::from(i) * 20 + if i % 2 == 1 { 10 } else { 0 },
                u32::from(i) * 160,
            )
        })
        .collect();
    let stats = scripted(t0, &script);
    // J converges towards |D| = 80 (J += (|D| - J) / 16).
    assert!(
        (75..=80).contains(&stats.jitter()),
        "jitter {}",
        stats.jitter()
    );
    // The exact value after three samples: 5 -> 9.6875 -> 14.08 (in 1/16 units: 80, 155, 225).
    // Five packets give three: the first is A.1 probation and the second sets the first transit.
    let short = scripted(t0, &script[..5]);
    assert_eq!(short.jitter(), 225 >> 4);
}

#[test]
fn sequence_wrap_and_restart_are_tracked() {
    let t0 = Instant::now();
    let script: Vec<(u16, u64, u32)> = (0..10u32)
        .map(|i| ((65530 + i) as u16, u64::from(i) * 20, i * 160))
        .collect();
    let stats = scripted(t0, &script);
    assert_eq!(stats.extended_highest_seq(), (1 << 16) + 3);
    assert_eq!(stats.cumulative_lost(), 0);
    // A jump of 10 000 is a restart only when the next packet confirms it (A.1 bad_seq).
    let mut stats = scripted(t0, &[(100, 0, 0), (101, 20, 160), (102, 40, 320)]);
    assert!(!stats.record(t0, 10_102, 0, 8000, 160));
    assert!(stats.record(t0, 10_103, 160, 8000, 160));
    assert_eq!(stats.extended_highest_seq(), 10_103);
}

#[test]
fn lsr_and_dlsr_come_from_the_last_sender_report() {
    let t0 = Instant::now();
    let mut stats = scripted(t0, &[(1, 0, 0), (2, 20, 160)]);
    stats.record_sender_report(t0, 0x0000_1234_5678_0000);
    let block = stats.report_block(t0 + Duration::from_millis(500));
    assert_eq!(block.last_sr, 0x1234_5678);
    assert_eq!(block.delay_since_last_sr, 32768, "0.5 s in 1/65536 s");
}

#[test]
fn sender_info_extrapolates_the_rtp_timestamp_to_the_report_instant() {
    let t0 = Instant::now();
    let clock = NtpClock::new(t0, Duration::from_secs(1_000_000));
    let mut send = SendStats::default();
    send.record(t0, 16_000, 8000, 160);
    send.record(t0 + Duration::from_millis(20), 16_160, 8000, 160);
    let info = send.sender_info(t0 + Duration::from_millis(120), &clock);
    assert_eq!(info.rtp_timestamp, 16_160 + 800);
    assert_eq!((info.packet_count, info.octet_count), (2, 320));
    assert_eq!(
        info.ntp_timestamp,
        clock.ntp(t0 + Duration::from_millis(120))
    );
}

#[test]
fn header_extensions_are_removed_in_place() {
    // CC=1, X=1 with a 2-word extension, 3-byte payload, then 2 bytes of padding (P=1).
    let mut bytes = vec![
        0xb1, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, // fixed, P X CC=1
        0, 0, 0, 4, // CSRC
        0xbe, 0xde, 0, 2, 0x10, 0xaa, 0, 0, 0x22, 1, 2, 3, // extension
        7, 8, 9, 0, 2, // payload + padding
    ];
    let len = remove_header_extension(&mut bytes).expect("valid");
    assert_eq!(len, 16 + 5);
    let p = RtpPacket::parse(&bytes[..len]).expect("still valid");
    assert!(!p.extension() && p.padding());
    assert_eq!(p.csrc_count(), 1);
    assert_eq!(p.payload(), &[7, 8, 9]);
    // Without an extension nothing moves.
    let mut plain = packet(0, 1, 2, 3, &[4, 5]);
    assert_eq!(remove_header_extension(&mut plain), Ok(14));
    assert_eq!(
        remove_header_extension(&mut [0x90, 0, 0, 0]),
        Err(RtpError::TooShort)
    );
}

#[test]
fn jitter_is_computed_modulo_2_32() {
    let t0 = Instant::now();
    // Transit (arrival - timestamp) sits just below 2^31 and every other packet arrives 1 ms
    // (8 units) late, pushing it just above: as signed 32-bit values the two are 2^32 apart,
    // but D is only 8 units (RFC 3550 A.8 computes in modular arithmetic).
    let script: Vec<(u16, u64, u32)> = (0..50u16)
        .map(|i| {
            (
                i,
                u64::from(i) * 20 + u64::from(i % 2),
                0x8000_0004u32.wrapping_add(u32::from(i) * 160),
            )
        })
        .collect();
    let jitter = scripted(t0, &script).jitter();
    assert!((1..=8).contains(&jitter), "jitter {jitter}");
}
