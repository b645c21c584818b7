//! Nothing reachable from network bytes panics: seeded random and mutated datagrams are fed
//! into every input of a connected bridge (WebRTC socket, SIP RTP and RTCP sockets), garbage
//! SDP and candidates into the negotiation entry points, and media still flows afterwards.

mod bridge_sim;

use std::time::{Duration, Instant};

use bridge_sim::*;
use media::bridge::{Bridge, BridgeEvent};

fn random_bytes(rng: &mut u64, max_len: usize) -> Vec<u8> {
    let len = (next_random(rng) % max_len as u64) as usize;
    (0..len).map(|_| next_random(rng) as u8).collect()
}

/// A valid-looking datagram with a few bytes flipped: reaches deeper than pure noise.
fn mutate(rng: &mut u64, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + next_random(rng) % 4 {
        if v.is_empty() {
            break;
        }
        let i = (next_random(rng) % v.len() as u64) as usize;
        v[i] ^= 1 << (next_random(rng) % 8);
    }
    if next_random(rng) % 4 == 0 {
        v.truncate((next_random(rng) % (v.len() as u64 + 1)) as usize);
    }
    v
}

#[test]
fn garbage_on_every_socket_neither_panics_nor_breaks_the_call() {
    let (mut sim, _, _) = answerer_sim(
        77,
        0,
        &sip_answer_sdp(&[(0, "PCMU/8000"), (101, "telephone-event/8000")]),
    );
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.browser.connected
            && s.has_event(BridgeEvent::DtlsConnected))
    );
    let mut rng = 0xBAD_5EED_u64;
    let valid_rtp = plain_rtp(0, 1, 160, 9, false, &[1u8; 160]);
    let valid_rtcp = {
        let mut p = vec![0x81, 201, 0, 7];
        p.extend_from_slice(&9u32.to_be_bytes());
        p.extend_from_slice(&[0u8; 24]);
        p
    };
    let webrtc_seeds: Vec<Vec<u8>> = {
        // Real SRTP/STUN datagrams from the browser, to mutate.
        let now = sim.now;
        sim.browser.send_rtp(now, 0, 7, 7 * 160, false, &[3u8; 160]);
        let mut v = Vec::new();
        while let Some(w) = rtc::sansio::Protocol::poll_write(&mut sim.browser.pc) {
            v.push(w.message.to_vec());
        }
        v
    };
    let (webrtc_local, sip_rtp, sip_rtcp) = (
        addr(BRIDGE_WEBRTC),
        addr(BRIDGE_SIP_RTP),
        addr(BRIDGE_SIP_RTCP),
    );
    let (browser, sip_peer, sip_peer_rtcp) =
        (addr(BROWSER), addr(SIP_PEER_RTP), addr(SIP_PEER_RTCP));
    for round in 0..3000u32 {
        let now = sim.now + Duration::from_micros(u64::from(round));
        let noise = random_bytes(&mut rng, 1500);
        let _ = sim
            .bridge
            .handle_webrtc_datagram(now, webrtc_local, browser, &noise);
        if let Some(seed) = webrtc_seeds.get(round as usize % webrtc_seeds.len().max(1)) {
            let m = mutate(&mut rng, seed);
            let _ = sim
                .bridge
                .handle_webrtc_datagram(now, webrtc_local, browser, &m);
        }
        let mut m = mutate(&mut rng, &valid_rtp);
        let _ = sim
            .bridge
            .handle_rtp_datagram(now, sip_rtp, sip_peer, &mut m);
        let mut n = random_bytes(&mut rng, 300);
        let _ = sim
            .bridge
            .handle_rtp_datagram(now, sip_rtp, sip_peer, &mut n);
        let mut r = mutate(&mut rng, &valid_rtcp);
        let _ = sim
            .bridge
            .handle_rtcp_datagram(now, sip_rtcp, sip_peer_rtcp, &mut r);
        let mut q = random_bytes(&mut rng, 300);
        let _ = sim
            .bridge
            .handle_rtcp_datagram(now, sip_rtcp, sip_peer_rtcp, &mut q);
        drain(&mut sim.bridge);
    }
    // Garbage candidates are typed errors, not panics.
    for c in [
        "",
        "candidate:",
        "candidate:1 1 udp x 127.0.0.1 1 typ host",
        "a=candidate:\u{0}\u{ff}",
        "candidate:1 1 udp 1 999.1.1.1 70000 typ host",
    ] {
        let _ = sim.bridge.add_remote_candidate(c);
    }
    // The call survives: audio still flows both ways.
    let before_sip = sim.sip.rtp_in.len();
    let before_browser = sim.browser.received.len();
    for i in 0..20u32 {
        let now = sim.now;
        sim.browser.send_rtp(
            now,
            0,
            100 + i as u16,
            (100 + i) * 160,
            false,
            &[i as u8; 160],
        );
        let pkt = plain_rtp(
            0,
            300 + i as u16,
            (300 + i) * 160,
            9,
            false,
            &[i as u8; 160],
        );
        sim.net.send(now, sip_peer, sip_rtp, &pkt);
        sim.advance(Duration::from_millis(20));
    }
    sim.advance(Duration::from_millis(200));
    assert!(
        sim.sip.rtp_in.len() >= before_sip + 18,
        "browser -> SIP broke"
    );
    assert!(
        sim.browser.received.len() >= before_browser + 18,
        "SIP -> browser broke"
    );
}

#[test]
fn garbage_sdp_is_an_error_not_a_panic() {
    let start = Instant::now();
    let mut rng = 0x5D9_u64;
    let mut browser = BrowserPeer::new(start, 1);
    let offer = browser.create_offer(start);
    for i in 0..300 {
        let noise = String::from_utf8_lossy(&random_bytes(&mut rng, 400)).into_owned();
        let mutated = String::from_utf8_lossy(&mutate(&mut rng, offer.as_bytes())).into_owned();
        let cfg = || bridge_config(start, i);
        let _ = Bridge::new_answerer(start, cfg(), &noise);
        let _ = Bridge::new_offerer(start, cfg(), &noise);
        if let Ok((mut b, _)) = Bridge::new_answerer(start, cfg(), &mutated) {
            let _ = b.apply_sip_answer(start, &noise);
        }
        if let Ok((mut b, _)) = Bridge::new_answerer(start, cfg(), &offer) {
            let answer = mutate(&mut rng, sip_answer_sdp(&[(0, "PCMU/8000")]).as_bytes());
            let _ = b.apply_sip_answer(start, &String::from_utf8_lossy(&answer));
        }
    }
    assert!(Bridge::new_answerer(start, bridge_config(start, 1), "v=0\r\n").is_err());
}
