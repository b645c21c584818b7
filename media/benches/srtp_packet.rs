//! Per-packet cost of SRTP in ns/packet, per profile: `media::srtp` in place (protect,
//! unprotect) next to `rtc::srtp::context::Context` (which returns a new buffer per packet)
//! in the same run, on RTP packets with a 12-byte header and a 200-byte payload.
//!
//! Run: `cargo bench -p media --bench srtp_packet`. Each figure is the best of several runs
//! of distinct packets (replay protection forbids re-feeding one datagram); unprotect runs
//! over a set of packets small enough to stay in cache, like a datagram just received.

use std::hint::black_box;
use std::time::Instant;

use rtc::srtp::context::Context;
use rtc::srtp::option::srtp_replay_protection;
use rtc::srtp::protection_profile::ProtectionProfile;

use media::srtp::{SrtpContext, SrtpProfile};

const PAYLOAD_LEN: usize = 200;
const HEADER_LEN: usize = 12;

fn rtc_profile(profile: SrtpProfile) -> ProtectionProfile {
    match profile {
        SrtpProfile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpProfile::Aes128CmHmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
    }
}

fn key_salt(profile: SrtpProfile) -> (Vec<u8>, Vec<u8>) {
    (
        (0..profile.master_key_len() as u8).collect(),
        (0..profile.master_salt_len() as u8)
            .map(|b| b ^ 0xa5)
            .collect(),
    )
}

fn ours(profile: SrtpProfile) -> SrtpContext {
    let (key, salt) = key_salt(profile);
    SrtpContext::new(profile, &key, &salt).expect("keys")
}

fn theirs(profile: SrtpProfile, inbound: bool) -> Context {
    let (key, salt) = key_salt(profile);
    let provider = rtc::crypto::default_provider().expect("provider");
    let replay = inbound.then(|| srtp_replay_protection(1024));
    Context::new(
        &key,
        &salt,
        rtc_profile(profile),
        replay,
        None,
        provider.crypto(),
    )
    .expect("rtc context")
}

/// A plain RTP packet (payload type 111, SSRC 0x5eed) with room for any tag behind it.
fn plain_packet(seq: u16) -> [u8; 256] {
    let mut p = [0x55u8; 256];
    p[..HEADER_LEN].copy_from_slice(&[0x80, 111, 0, 0, 0, 0, 0, 0, 0, 0, 0x5e, 0xed]);
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p
}

/// `count` protected packets back to back, each `stride` bytes.
fn protected_packets(profile: SrtpProfile, count: u32) -> (Vec<u8>, usize) {
    let stride = HEADER_LEN + PAYLOAD_LEN + profile.rtp_overhead();
    let mut tx = ours(profile);
    let mut all = Vec::with_capacity(stride * count as usize);
    for i in 0..count {
        let mut p = plain_packet(i as u16);
        let n = tx
            .protect_rtp(&mut p, HEADER_LEN + PAYLOAD_LEN)
            .expect("protect");
        all.extend_from_slice(&p[..n]);
    }
    (all, stride)
}

fn ns_per(start: Instant, count: u32) -> f64 {
    start.elapsed().as_nanos() as f64 / f64::from(count)
}

fn ours_protect(profile: SrtpProfile, count: u32) -> f64 {
    let mut tx = ours(profile);
    let mut buf = plain_packet(0);
    let start = Instant::now();
    for i in 0..count {
        // In place: only the sequence number changes; the payload bytes are whatever the
        // last round left, which costs the same to encrypt.
        buf[2..4].copy_from_slice(&(i as u16).to_be_bytes());
        black_box(tx.protect_rtp(black_box(&mut buf), HEADER_LEN + PAYLOAD_LEN)).expect("ok");
    }
    ns_per(start, count)
}

fn rtc_protect(profile: SrtpProfile, count: u32) -> f64 {
    let mut tx = theirs(profile, false);
    let mut buf = plain_packet(0);
    let start = Instant::now();
    for i in 0..count {
        buf[2..4].copy_from_slice(&(i as u16).to_be_bytes());
        let out = tx
            .encrypt_rtp(black_box(&buf[..HEADER_LEN + PAYLOAD_LEN]))
            .expect("ok");
        black_box(out);
    }
    ns_per(start, count)
}

fn ours_unprotect(profile: SrtpProfile, count: u32) -> f64 {
    let (mut packets, stride) = protected_packets(profile, count);
    let mut rx = ours(profile);
    let start = Instant::now();
    for p in packets.chunks_exact_mut(stride) {
        black_box(rx.unprotect_rtp(black_box(p))).expect("ok");
    }
    ns_per(start, count)
}

fn rtc_unprotect(profile: SrtpProfile, count: u32) -> f64 {
    let (packets, stride) = protected_packets(profile, count);
    let mut rx = theirs(profile, true);
    let start = Instant::now();
    for p in packets.chunks_exact(stride) {
        black_box(rx.decrypt_rtp(black_box(p)).expect("ok"));
    }
    ns_per(start, count)
}

fn best(rounds: u32, count: u32, profile: SrtpProfile, f: fn(SrtpProfile, u32) -> f64) -> f64 {
    (0..rounds)
        .map(|_| f(profile, count))
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    // `cargo bench` passes --bench; anything else (`cargo test --benches`, clippy's build) is
    // a quick smoke run in a debug build whose figures mean nothing.
    let timing = std::env::args().any(|a| a == "--bench");
    let (rounds, count) = if timing { (25, 8_192) } else { (1, 500) };
    println!("SRTP, {PAYLOAD_LEN} B payload, ns/packet, best of {rounds} runs of {count} packets");
    println!(
        "{:<28} {:>9} {:>9} {:>10} {:>10} {:>7} {:>7}",
        "profile", "protect", "unprot", "rtc prot", "rtc unpr", "x prot", "x unpr"
    );
    for profile in SrtpProfile::ALL {
        let protect = best(rounds, count, profile, ours_protect);
        let unprotect = best(rounds, count, profile, ours_unprotect);
        let rtc_p = best(rounds, count, profile, rtc_protect);
        let rtc_u = best(rounds, count, profile, rtc_unprotect);
        println!(
            "{:<28} {protect:>9.1} {unprotect:>9.1} {rtc_p:>10.1} {rtc_u:>10.1} {:>7.2} {:>7.2}",
            profile.name(),
            rtc_p / protect,
            rtc_u / unprotect,
        );
    }
}
