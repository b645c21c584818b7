//! Many deterministic mutations of valid RTP, RTCP, STUN-like and SRTP datagrams through the
//! demux, the packet views, the feedback rewriter and a live RTP leg: nothing may panic.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use media::rtp::rtcp::{
    rewrite_feedback_ssrcs, write_fir, write_pli, write_receiver_report, write_sdes_cname,
    write_sender_report, ReportBlock, RtcpCompound, RtcpPacket, SenderInfo,
};
use media::rtp::srtp::SdesSrtp;
use media::rtp::{classify_datagram, write_rtp_packet, NtpClock, RtpPacket, TelephoneEvent};
use media::rtp_leg::{RtpLeg, RtpLegConfig, RtpRemote};
use media::sdp::{CryptoAttribute, CryptoSuite};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let mut buf = [0u8; 512];
    let len = write_rtp_packet(&mut buf, 111, true, 7, 9, 11, &[1; 40]).expect("rtp");
    seeds.push(buf[..len].to_vec());
    // RTP with CSRCs, extension and padding.
    let mut ext = vec![
        0xb2, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0xbe, 0xde, 0, 1, 0x10,
        1, 0, 0,
    ];
    ext.extend_from_slice(&[5, 0x8a, 0x03, 0x20, 0, 0, 2]);
    seeds.push(ext);
    let block = ReportBlock {
        ssrc: 2,
        fraction_lost: 1,
        cumulative_lost: 5,
        ..ReportBlock::default()
    };
    let mut len =
        write_sender_report(&mut buf, 1, &SenderInfo::default(), &[block, block]).expect("sr");
    len += write_sdes_cname(&mut buf[len..], 1, b"cname").expect("sdes");
    len += write_pli(&mut buf[len..], 1, 2).expect("pli");
    len += write_fir(&mut buf[len..], 1, 2, 3).expect("fir");
    seeds.push(buf[..len].to_vec());
    let len = write_receiver_report(&mut buf, 1, &[block]).expect("rr");
    seeds.push(buf[..len].to_vec());
    seeds.push(vec![0x81, 203, 0, 1, 0, 0, 0, 1]);
    seeds.push(vec![0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42]);
    seeds.push(vec![22, 0xfe, 0xfd, 0, 0]);
    seeds
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(data.len() + 1);
        match rng.below(5) {
            0 => {
                if let Some(b) = data.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => data.truncate(at),
            2 => {
                let extra: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, extra);
            }
            3 => {
                // Length and count fields live in the first four bytes of every header.
                let i = rng.below(4.min(data.len()));
                if let Some(b) = data.get_mut(i) {
                    *b = rng.next() as u8;
                }
            }
            _ => {
                if let Some(b) = data.get_mut(at) {
                    *b = rng.next() as u8;
                }
            }
        }
    }
    data
}

fn exercise(legs: &mut [RtpLeg], now: Instant, from: SocketAddr, data: &[u8]) {
    let _ = classify_datagram(data);
    if let Ok(p) = RtpPacket::parse(data) {
        assert!(p.payload_offset() + p.payload().len() <= data.len());
        let _ = TelephoneEvent::parse(p.payload());
    }
    for packet in RtcpCompound::new(data).flatten() {
        match packet {
            RtcpPacket::SenderReport { blocks, .. } | RtcpPacket::ReceiverReport { blocks, .. } => {
                blocks.for_each(drop)
            }
            RtcpPacket::Fir { entries, .. } => RtcpPacket::fir_entries(entries).for_each(drop),
            RtcpPacket::Bye { count, body } => RtcpPacket::bye_ssrcs(count, body).for_each(drop),
            _ => {}
        }
    }
    let mut copy = data.to_vec();
    let _ = rewrite_feedback_ssrcs(&mut copy, 1, 2);
    let mut out = [0u8; 2048];
    for leg in legs.iter_mut() {
        let mut buf = data.to_vec();
        let _ = leg.handle_rtp(now, from, &mut buf);
        let mut buf = data.to_vec();
        let _ = leg.handle_rtcp(now, from, &mut buf);
        let _ = leg.send_rtp(now, data, &mut out);
        leg.handle_timeout(now);
        while let Ok(Some(_)) = leg.poll_transmit(now, &mut out) {}
        while leg.poll_event().is_some() {}
    }
}

#[test]
fn mutated_datagrams_never_panic_the_rtp_layer() {
    let t0 = Instant::now();
    let peer: SocketAddr = "192.0.2.10:4000".parse().expect("addr");
    let make_leg = || {
        let ntp = NtpClock::new(t0, Duration::from_secs(1));
        let mut leg = RtpLeg::new(
            t0,
            RtpLegConfig::new("127.0.0.1:40000".parse().expect("addr"), 7, "m", ntp),
        );
        leg.set_remote(
            t0,
            RtpRemote {
                rtp: peer,
                rtcp: None,
                rtcp_mux: true,
                sending: true,
            },
        );
        leg.set_clock_rate(111, 48_000);
        leg
    };
    // Plain, SDES AEAD-GCM and SDES AES-CM legs: both rtc::srtp ciphers see the inputs.
    let mut legs = [make_leg(), make_leg(), make_leg()];
    let gcm = CryptoAttribute::new(1, CryptoSuite::AeadAes128Gcm, &[4; 28]).expect("key");
    legs[1].set_srtp(Some(SdesSrtp::new(&gcm, &gcm).expect("srtp")));
    let cm = CryptoAttribute::new(1, CryptoSuite::AesCm128HmacSha1_80, &[5; 30]).expect("key");
    legs[2].set_srtp(Some(SdesSrtp::new(&cm, &cm).expect("srtp")));
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let mut cases = 0u32;
    for seed in seeds() {
        for i in 0..4000u32 {
            let input = mutate(&mut rng, &seed);
            let now = t0 + Duration::from_millis(u64::from(cases) * 7);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                exercise(&mut legs, now, peer, &input);
            }));
            assert!(result.is_ok(), "seed {seed:?}, mutation {i}: {input:?}");
            cases += 1;
        }
    }
    // The leg saw real traffic, not only rejects.
    assert!(
        legs[0].stats().packets_received > 1000,
        "{:?}",
        legs[0].stats()
    );
    assert!(legs[1].stats().packets_sent > 1000, "{:?}", legs[1].stats());
}
