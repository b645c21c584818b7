//! Per-packet cost of the SIP-side media path, in ns/packet (issue 4, item 6):
//! receive on one RTP leg (optionally SRTP unprotect), payload type map, SSRC/seq/ts
//! rewrite, send on another leg (optionally SRTP protect). No syscalls.
//!
//! Run: `cargo bench -p media --bench rtp_rewrite`

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use media::rtp::srtp::SdesSrtp;
use media::rtp::{write_rtp_packet, NtpClock, PayloadTypeMap};
use media::rtp_leg::{RtpLeg, RtpLegConfig, RtpRemote};
use media::sdp::{CryptoAttribute, CryptoSuite};

const PAYLOAD_LEN: usize = 160;

fn leg(t0: Instant, local: &str, peer: SocketAddr, ssrc: u32) -> RtpLeg {
    let ntp = NtpClock::new(t0, Duration::from_secs(1_767_225_600));
    let mut leg = RtpLeg::new(
        t0,
        RtpLegConfig::new(local.parse().expect("addr"), ssrc, "bench", ntp),
    );
    leg.set_remote(
        t0,
        RtpRemote {
            rtp: peer,
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
    leg
}

fn keys(suite: CryptoSuite, seed: u8) -> CryptoAttribute {
    let key: Vec<u8> = (0..(suite.key_len() + suite.salt_len()) as u8)
        .map(|b| b.wrapping_mul(seed))
        .collect();
    CryptoAttribute::new(1, suite, &key).expect("key")
}

/// Runs `packets` packets through receive leg -> send leg and returns ns/packet.
fn run(suite: Option<CryptoSuite>, packets: u32) -> f64 {
    let t0 = Instant::now();
    let peer: SocketAddr = "192.0.2.10:4000".parse().expect("addr");
    let gateway: SocketAddr = "198.51.100.5:40000".parse().expect("addr");
    // The SIP peer's packets, prepared (and encrypted) before timing starts.
    let mut peer_leg = leg(t0, "192.0.2.10:4000", gateway, 0xfeed);
    let mut rx = leg(t0, "198.51.100.5:40000", peer, 0x1111);
    let mut tx = leg(
        t0,
        "198.51.100.5:40002",
        "192.0.2.20:4000".parse().expect("addr"),
        0x2222,
    );
    if let Some(suite) = suite {
        let (p, g, o) = (keys(suite, 3), keys(suite, 5), keys(suite, 7));
        peer_leg.set_srtp(Some(SdesSrtp::new(&p, &g).expect("srtp")));
        rx.set_srtp(Some(SdesSrtp::new(&g, &p).expect("srtp")));
        tx.set_srtp(Some(SdesSrtp::new(&g, &o).expect("srtp")));
    }
    let payload = [0x55u8; PAYLOAD_LEN];
    let mut plain = [0u8; 1500];
    let mut wire = Vec::with_capacity(packets as usize);
    for i in 0..packets {
        let len = write_rtp_packet(&mut plain, 111, false, i as u16, i * 960, 0xabc, &payload)
            .expect("fits");
        let mut out = [0u8; 1500];
        let t = peer_leg
            .send_rtp(t0, &plain[..len], &mut out)
            .expect("ok")
            .expect("sent");
        wire.push(out[..t.len].to_vec());
    }
    let mut out = [0u8; 1500];
    let start = Instant::now();
    for (i, packet) in wire.iter_mut().enumerate() {
        let now = t0 + Duration::from_millis(20 * i as u64);
        let Some(received) = rx.handle_rtp(now, peer, packet).expect("valid") else {
            continue;
        };
        let len = received.len();
        let bytes = received.into_inner();
        let sent = tx.send_rtp(now, &bytes[..len], &mut out).expect("ok");
        black_box(sent);
    }
    let elapsed = start.elapsed();
    assert_eq!(rx.stats().packets_received, u64::from(packets));
    elapsed.as_nanos() as f64 / f64::from(packets)
}

fn main() {
    // `cargo bench` passes --bench; anything else (`cargo test --benches`, clippy's build) is
    // a quick smoke run in a debug build whose figures mean nothing.
    let timing = std::env::args().any(|a| a == "--bench");
    let (rounds, packets) = if timing { (5, 200_000) } else { (1, 2_000) };
    for (name, suite) in [
        ("plain RTP in -> rewrite -> RTP out", None),
        (
            "SRTP AEAD_AES_128_GCM unprotect -> rewrite -> protect",
            Some(CryptoSuite::AeadAes128Gcm),
        ),
        (
            "SRTP AES_CM_128_HMAC_SHA1_80 unprotect -> rewrite -> protect",
            Some(CryptoSuite::AesCm128HmacSha1_80),
        ),
    ] {
        let mut best = f64::MAX;
        for _ in 0..rounds {
            best = best.min(run(suite, packets));
        }
        println!("{name:<62} {best:>8.1} ns/packet (best of {rounds}, {packets} packets, {PAYLOAD_LEN} B payload)");
    }
}
