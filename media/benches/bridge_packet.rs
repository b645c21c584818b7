//! Per-packet cost of the bridge (issue 4, performance.md P3/P8), in ns/packet, for
//! AEAD_AES_128_GCM and AES_CM_128_HMAC_SHA1_80:
//! - full path, browser -> SIP: SRTP datagram in (RFC 7983 demux, ICE source check, SRTP
//!   unprotect) + PT/SSRC/seq/ts rewrite + plain RTP out;
//! - full path, SIP -> browser: plain RTP in + rewrite + SRTP protect + datagram out;
//! - the bridge's own part of each direction (what the bridge code adds over the engine);
//!
//! The SRTP floor alone is `cargo bench -p media --bench srtp_packet`.
//!
//! Run: `cargo bench -p media --bench bridge_packet`. Wall-clock per loop, best of RUNS;
//! the machine is shared, so compare figures of one run with each other.

#[path = "../tests/bridge_sim/mod.rs"]
mod bridge_sim;

use std::hint::black_box;
use std::time::{Duration, Instant};

use bridge_sim::*;
use engine::Output;
use media::bridge::BridgeEvent;
use media::webrtc_leg::ReceivedRtp;
use media::MediaKind;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::sansio::Protocol;

const PACKETS: u32 = 10_000;
const RUNS: u32 = 5;
const PAYLOAD: usize = 160;

fn best<F: FnMut(u32) -> Duration>(mut run: F) -> f64 {
    (0..RUNS)
        .map(|r| run(r).as_nanos() as f64 / f64::from(PACKETS))
        .fold(f64::INFINITY, f64::min)
}

fn bench_profile(name: &str, profile: SrtpProtectionProfile) {
    let (mut sim, _, _) = answerer_sim_with(
        9,
        0,
        &sip_answer_sdp(&[(0, "PCMU/8000")]),
        Some(vec![profile]),
        false,
    );
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.browser.connected
            && s.has_event(BridgeEvent::DtlsConnected))
    );
    let negotiated = sim.bridge.srtp_profile();
    let payload = [0x55u8; PAYLOAD];
    let (webrtc_local, browser) = (addr(BRIDGE_WEBRTC), addr(BROWSER));
    let (sip_local, sip_peer) = (addr(BRIDGE_SIP_RTP), addr(SIP_PEER_RTP));
    let mut now = sim.now;
    let mut seq = 0u16;
    let mut ts = 0u32;

    // Browser -> SIP, full path: pre-encrypt distinct packets, then time the bridge alone.
    let srtp_in = best(|_| {
        let mut datagrams = Vec::with_capacity(PACKETS as usize);
        while datagrams.len() < PACKETS as usize {
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(160);
            sim.browser.send_rtp(now, 0, seq, ts, false, &payload);
            while let Some(w) = sim.browser.pc.poll_write() {
                datagrams.push(w.message.to_vec());
            }
        }
        let start = Instant::now();
        for d in &datagrams {
            now += Duration::from_micros(20);
            let _ = sim
                .bridge
                .handle_webrtc_datagram(now, webrtc_local, browser, d);
            while let Output::Transmit(t) = sim.bridge.poll_output() {
                black_box(t.bytes);
            }
        }
        start.elapsed()
    });

    // SIP -> browser, full path.
    let srtp_out = best(|run| {
        let mut packets: Vec<Vec<u8>> = (0..PACKETS)
            .map(|i| {
                plain_rtp(
                    0,
                    (run * PACKETS + i) as u16,
                    (run * PACKETS + i) * 160,
                    77,
                    false,
                    &payload,
                )
            })
            .collect();
        let start = Instant::now();
        for p in &mut packets {
            now += Duration::from_micros(20);
            let _ = sim.bridge.handle_rtp_datagram(now, sip_local, sip_peer, p);
            while let Output::Transmit(t) = sim.bridge.poll_output() {
                black_box(t.bytes);
            }
        }
        start.elapsed()
    });

    // The bridge's own part of each direction.
    let own_to_sip = best(|run| {
        let start = Instant::now();
        for i in 0..PACKETS {
            now += Duration::from_micros(20);
            let rtp = ReceivedRtp {
                kind: MediaKind::Audio,
                marker: false,
                payload_type: 0,
                sequence_number: (run * PACKETS + i) as u16,
                timestamp: i * 160,
                ssrc: 1,
                payload_len: PAYLOAD,
                arrival: now,
            };
            sim.bridge.probe_forward_to_sip(rtp, &payload);
            while let Output::Transmit(t) = sim.bridge.poll_output() {
                black_box(t.bytes);
            }
        }
        start.elapsed()
    });
    let mut packets: Vec<Vec<u8>> = (0..PACKETS)
        .map(|i| plain_rtp(0, i as u16, i * 160, 77, false, &payload))
        .collect();
    let own_from_sip = best(|_| {
        let start = Instant::now();
        for p in &mut packets {
            now += Duration::from_micros(20);
            black_box(sim.bridge.probe_sip_ingress(now, sip_local, sip_peer, p));
        }
        start.elapsed()
    });
    println!(
        "{name:<24} (negotiated {negotiated}): full SRTP in->RTP out {srtp_in:>7.0} ns/pkt | full RTP in->SRTP out {srtp_out:>7.0} ns/pkt | bridge-only to SIP {own_to_sip:>5.0} ns/pkt, from SIP {own_from_sip:>5.0} ns/pkt"
    );
}

fn main() {
    bench_profile(
        "AEAD_AES_128_GCM",
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
    );
    bench_profile(
        "AES_CM_128_HMAC_SHA1_80",
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
    );
}
