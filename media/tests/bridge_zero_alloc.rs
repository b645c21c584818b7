//! Steady-state forwarding does not touch the heap (performance.md P3, issue 4): a counting
//! `#[global_allocator]` holds the bridge's own per-packet path (PT map, SSRC/seq/timestamp
//! rewrite, statistics, transmit ring) and the whole path through the default WebRTC engine
//! (ICE source check, SRTP/SRTCP in place, RTP parse, our RTCP) to zero allocations in both
//! directions, and bounds the heap an established call's bridge holds.
//! The counting allocator is `tests/counting_alloc`.

mod bridge_sim;

use std::hint::black_box;
use std::time::Duration;

use bridge_sim::*;
use engine::Output;
use media::bridge::BridgeEvent;
use media::webrtc_leg::ReceivedRtp;
use media::MediaKind;
use rtc::sansio::Protocol;

mod counting_alloc;
use counting_alloc::*;

const PACKETS: u32 = 2000;

#[test]
fn steady_state_forwarding_allocates_nothing_in_the_bridge() {
    let (mut sim, _, _) = answerer_sim(
        42,
        0,
        &sip_answer_sdp(&[(0, "PCMU/8000"), (101, "telephone-event/8000")]),
    );
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.browser.connected
            && s.has_event(BridgeEvent::DtlsConnected))
    );
    // Warm-up through the real path: streams started, ring and scratch buffers touched.
    for i in 0..50u32 {
        let now = sim.now;
        sim.browser
            .send_rtp(now, 0, i as u16, i * 160, false, &[1u8; 160]);
        sim.net.send(
            now,
            addr(SIP_PEER_RTP),
            addr(BRIDGE_SIP_RTP),
            &plain_rtp(0, i as u16, i * 160, 9, false, &[2u8; 160]),
        );
        sim.advance(Duration::from_millis(20));
    }
    assert!(sim.sip.rtp_in.len() >= 45 && sim.browser.received.len() >= 45);

    // Browser -> SIP, the bridge's part: forward decrypted packets and drain the transmits.
    let payload = [7u8; 160];
    let mut now = sim.now;
    let before = allocations();
    let mut forwarded = 0u32;
    for i in 0..PACKETS {
        now += Duration::from_millis(20);
        let rtp = ReceivedRtp {
            kind: MediaKind::Audio,
            marker: false,
            payload_type: 0,
            sequence_number: 100 + i as u16,
            timestamp: 16_000 + i * 160,
            ssrc: sim.browser.ssrc,
            payload_len: payload.len(),
            arrival: now,
        };
        sim.bridge.probe_forward_to_sip(rtp, &payload);
        while let Output::Transmit(t) = sim.bridge.poll_output() {
            black_box(t.bytes);
            forwarded += 1;
        }
    }
    let to_sip_allocations = allocations() - before;
    assert_eq!(forwarded, PACKETS, "every packet must come out toward SIP");
    assert_eq!(
        to_sip_allocations, 0,
        "browser -> SIP bridge path allocated"
    );

    // SIP -> browser, the bridge's part: parse, account, map, rewrite.
    let mut packets: Vec<Vec<u8>> = (0..PACKETS)
        .map(|i| plain_rtp(0, 500 + i as u16, 8000 + i * 160, 9, false, &[3u8; 160]))
        .collect();
    let (local, from) = (addr(BRIDGE_SIP_RTP), addr(SIP_PEER_RTP));
    let before = allocations();
    let mut mapped = 0u32;
    for p in &mut packets {
        now += Duration::from_millis(20);
        if let Some((out, range)) = sim.bridge.probe_sip_ingress(now, local, from, p) {
            black_box((out, range));
            mapped += 1;
        }
    }
    let from_sip_allocations = allocations() - before;
    assert_eq!(mapped, PACKETS);
    assert_eq!(
        from_sip_allocations, 0,
        "SIP -> browser bridge path allocated"
    );

    // The whole path through the (default) direct WebRTC engine: SRTP in place, no heap.
    sim.now = now;
    let mut srtp_from_browser = Vec::new();
    for i in 0..200u32 {
        sim.browser.send_rtp(
            now,
            0,
            3000 + i as u16,
            500_000 + i * 160,
            false,
            &[4u8; 160],
        );
        while let Some(w) = sim.browser.pc.poll_write() {
            srtp_from_browser.push(w.message.to_vec());
        }
    }
    let webrtc_local = addr(BRIDGE_WEBRTC);
    let browser = addr(BROWSER);
    let before = allocations();
    let mut to_sip = 0;
    for d in &srtp_from_browser {
        let _ = sim
            .bridge
            .handle_webrtc_datagram(now, webrtc_local, browser, d);
        while let Output::Transmit(t) = sim.bridge.poll_output() {
            to_sip += usize::from(t.to == addr(SIP_PEER_RTP));
            black_box(t.bytes);
        }
    }
    assert_eq!(to_sip, 200, "full path browser -> SIP");
    let full_in = (allocations() - before) as f64 / srtp_from_browser.len() as f64;
    let mut plain: Vec<Vec<u8>> = (0..200u32)
        .map(|i| {
            plain_rtp(
                0,
                (500 + PACKETS + i) as u16,
                900_000 + i * 160,
                9,
                false,
                &[5u8; 160],
            )
        })
        .collect();
    let before = allocations();
    let mut to_browser = 0;
    for p in &mut plain {
        let _ = sim.bridge.handle_rtp_datagram(now, local, from, p);
        while let Output::Transmit(t) = sim.bridge.poll_output() {
            to_browser += usize::from(t.to == browser);
            black_box(t.bytes);
        }
    }
    assert_eq!(to_browser, 200, "full path SIP -> browser");
    let full_out = (allocations() - before) as f64 / plain.len() as f64;
    eprintln!(
        "allocations per packet through the whole path: SRTP in -> RTP out {full_in:.2}, \
         RTP in -> SRTP out {full_out:.2}"
    );
    assert_eq!(full_in, 0.0, "browser -> SIP whole path allocated");
    assert_eq!(full_out, 0.0, "SIP -> browser whole path allocated");

    // Heap held by one established call's bridge (ICE agent, DTLS connection, SRTP state,
    // RTP leg, rings): what dropping it gives back (performance.md P6).
    let Sim { bridge, .. } = sim;
    let before = live_bytes();
    drop(bridge);
    let freed = before - live_bytes();
    eprintln!(
        "heap held by an established audio call's bridge: {} KiB",
        freed / 1024
    );
    // performance.md P6: <= 64 KiB per active call, of which the bridge is one part; it
    // held 62 KiB while every transmit ring slot was allocated up front, 43 KiB since.
    assert!(freed > 0 && freed < 48 * 1024, "bridge heap {freed} B");
}
