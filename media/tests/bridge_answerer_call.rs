//! Outgoing call (browser offers, bridge answers) over a seeded lossy in-memory link with
//! virtual time: ICE + DTLS complete, audio flows both ways intact with PT/SSRC remapping,
//! DTMF passes with PT mapping, RTCP reports reach the SIP peer, inactivity fires.

mod bridge_sim;

use std::time::Duration;

use bridge_sim::*;
use engine::Output;
use media::bridge::{BridgeEvent, MediaLeg};
use media::MediaKind;

const SIP_PCMU_TE: &[(u8, &str)] = &[(0, "PCMU/8000"), (101, "telephone-event/8000")];

fn pcmu_payload(i: u32) -> Vec<u8> {
    (0..160)
        .map(|j| (i as u8).wrapping_mul(7).wrapping_add(j as u8))
        .collect()
}

#[test]
fn sip_offer_and_webrtc_answer_are_complete() {
    let (_sim, sip_offer, answer) = answerer_sim(1, 0, &sip_answer_sdp(SIP_PCMU_TE));
    assert!(sip_offer.contains("m=audio 41004 RTP/AVP"), "{sip_offer}");
    assert!(
        sip_offer.contains("a=rtpmap:111 opus/48000/2"),
        "{sip_offer}"
    );
    assert!(sip_offer.contains("a=rtpmap:0 PCMU/8000"), "{sip_offer}");
    assert!(
        sip_offer.contains("a=rtpmap:126 telephone-event/8000"),
        "{sip_offer}"
    );
    assert!(
        !sip_offer.contains("SAVPF"),
        "SIP side is plain RTP: {sip_offer}"
    );
    assert!(answer.contains("a=candidate:"), "{answer}");
    assert!(answer.contains("a=end-of-candidates"), "{answer}");
    assert!(
        answer.contains("41002"),
        "host candidate on the leg's port: {answer}"
    );
    // Only what SIP accepted is offered back to the browser.
    assert!(!answer.contains("opus"), "{answer}");
    assert!(answer.contains("PCMU"), "{answer}");
}

#[test]
fn audio_and_dtmf_flow_both_ways_with_remapping_over_a_lossy_link() {
    let (mut sim, _, _) = answerer_sim(7, 20, &sip_answer_sdp(SIP_PCMU_TE));
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s
            .has_event(BridgeEvent::DtlsConnected)
            && s.browser.connected),
        "DTLS never connected: {:?}",
        sim.events
    );
    assert!(sim.has_event(BridgeEvent::IceConnected));
    let t_dtls = sim
        .events
        .iter()
        .find(|(_, e)| *e == BridgeEvent::DtlsConnected)
        .map(|(t, _)| *t);
    eprintln!(
        "ICE+DTLS connected after {t_dtls:?} virtual; netem lost {}",
        sim.net.lost
    );
    // The browser (rtc) offers every profile; the bridge prefers AEAD GCM (performance.md).
    assert_eq!(sim.bridge.srtp_profile(), "SRTP_AEAD_AES_128_GCM");
    let browser_pcmu = sim
        .browser
        .payload_type("audio/PCMU")
        .expect("PCMU negotiated");
    let browser_te = sim
        .browser
        .payload_type("audio/telephone-event")
        .expect("te negotiated");
    assert_eq!((browser_pcmu, browser_te), (0, 126));

    let sip_ssrc = 0x5151_0001u32;
    let mut sent_from_browser = Vec::new();
    let mut sent_from_sip = Vec::new();
    for i in 0..200u32 {
        let now = sim.now;
        let p = pcmu_payload(i);
        sim.browser
            .send_rtp(now, browser_pcmu, 1000 + i as u16, i * 160, i == 0, &p);
        sent_from_browser.push(p);
        let q = pcmu_payload(i + 1000);
        let pkt = plain_rtp(
            0,
            50000u16.wrapping_add(i as u16),
            90_000 + i * 160,
            sip_ssrc,
            false,
            &q,
        );
        sim.net
            .send(now, addr(SIP_PEER_RTP), addr(BRIDGE_SIP_RTP), &pkt);
        sent_from_sip.push(q);
        sim.advance(Duration::from_millis(20));
    }
    // RFC 4733 event from each side: "5", 3 packets (start, continuation, end).
    for k in 0..3u32 {
        let now = sim.now;
        let end = if k == 2 { 0x80 } else { 0 };
        let ev = [5u8, end | 10, 0, (160 * (k + 1)) as u8];
        sim.browser
            .send_rtp(now, browser_te, 1200 + k as u16, 200 * 160, k == 0, &ev);
        let pkt = plain_rtp(
            101,
            50200 + k as u16,
            90_000 + 200 * 160,
            sip_ssrc,
            k == 0,
            &ev,
        );
        sim.net
            .send(now, addr(SIP_PEER_RTP), addr(BRIDGE_SIP_RTP), &pkt);
        sim.advance(Duration::from_millis(20));
    }
    sim.advance(Duration::from_secs(6));

    // Browser -> SIP: intact payloads, SIP PT, the bridge's SSRC (not the browser's).
    let audio_at_sip: Vec<_> = sim.sip.rtp_in.iter().filter(|p| p.pt == 0).collect();
    assert!(
        audio_at_sip.len() >= 180,
        "only {} of 200 reached SIP",
        audio_at_sip.len()
    );
    for p in &audio_at_sip {
        assert!(
            sent_from_browser.contains(&p.payload),
            "corrupted payload at SIP"
        );
        assert_eq!(Some(p.ssrc), sim.bridge.sip_ssrc(MediaKind::Audio));
        assert_ne!(p.ssrc, sim.browser.ssrc);
    }
    let dtmf_at_sip: Vec<_> = sim.sip.rtp_in.iter().filter(|p| p.pt == 101).collect();
    assert!(
        !dtmf_at_sip.is_empty(),
        "telephone-event 126 was not mapped to 101"
    );
    assert!(dtmf_at_sip.iter().all(|p| p.payload[0] == 5));
    assert!(
        sim.sip.rtp_in.iter().all(|p| p.pt == 0 || p.pt == 101),
        "unmapped PT leaked to SIP"
    );
    // Sequence numbers toward SIP are continuous across audio and DTMF (one stream).
    let mut seqs: Vec<u16> = sim.sip.rtp_in.iter().map(|p| p.seq).collect();
    seqs.dedup();
    assert!(
        seqs.windows(2).all(|w| w[1].wrapping_sub(w[0]) < 10),
        "seq jumps: {seqs:?}"
    );

    // SIP -> browser.
    let audio_at_browser: Vec<_> = sim
        .browser
        .received
        .iter()
        .filter(|p| p.pt == browser_pcmu)
        .collect();
    assert!(
        audio_at_browser.len() >= 180,
        "only {} of 200 reached the browser",
        audio_at_browser.len()
    );
    for p in &audio_at_browser {
        assert!(
            sent_from_sip.contains(&p.payload),
            "corrupted payload at the browser"
        );
        assert_ne!(
            p.ssrc, sip_ssrc,
            "the SIP peer's SSRC leaked to the browser"
        );
    }
    let dtmf_at_browser: Vec<_> = sim
        .browser
        .received
        .iter()
        .filter(|p| p.pt == browser_te)
        .collect();
    assert!(
        !dtmf_at_browser.is_empty(),
        "telephone-event 101 was not mapped to 126"
    );

    // RTCP on the SIP leg: SR from the bridge's SSRC with a report block about the peer.
    let srs: Vec<_> = sim
        .sip
        .rtcp_in
        .iter()
        .filter(|b| b.len() >= 28 && b[1] == 200)
        .collect();
    assert!(
        !srs.is_empty(),
        "no SR on the SIP leg: {} RTCP packets",
        sim.sip.rtcp_in.len()
    );
    let sr = srs.last().unwrap();
    assert_eq!(
        u32::from_be_bytes([sr[4], sr[5], sr[6], sr[7]]),
        sim.bridge.sip_ssrc(MediaKind::Audio).unwrap()
    );
    assert_eq!(sr[0] & 0x1F, 1, "one report block");
    assert_eq!(
        u32::from_be_bytes([sr[28], sr[29], sr[30], sr[31]]),
        sip_ssrc
    );

    let stats = sim.bridge.stats();
    eprintln!("stats: {stats:?}");
    assert!(stats.sip.packets_received >= 180 && stats.webrtc.packets_received >= 180);
    assert!(stats.sip.packets_sent >= 180 && stats.webrtc.packets_sent >= 180);
    assert!(
        stats.sip.packets_lost > 0,
        "2 % loss must show on the SIP leg"
    );
    assert!(!sim.has_event(BridgeEvent::RtpInactive { leg: MediaLeg::Sip }));

    // Now both sides go quiet: after 60 s (default) each leg reports inactivity once.
    sim.advance(Duration::from_secs(61));
    assert!(
        sim.has_event(BridgeEvent::RtpInactive { leg: MediaLeg::Sip }),
        "{:?}",
        sim.events
    );
    assert!(
        sim.has_event(BridgeEvent::RtpInactive {
            leg: MediaLeg::Webrtc
        }),
        "{:?}",
        sim.events
    );
    let n = sim
        .events
        .iter()
        .filter(|(_, e)| matches!(e, BridgeEvent::RtpInactive { .. }))
        .count();
    assert_eq!(n, 2);

    let now = sim.now;
    sim.bridge.close(now);
    sim.flush();
    assert!(sim.has_event(BridgeEvent::Closed));
}

#[test]
fn opus_with_different_payload_types_is_remapped() {
    // The SIP side calls Opus 96 while the browser calls it 111.
    let (mut sim, _, answer) = answerer_sim(3, 0, &sip_answer_sdp(&[(96, "opus/48000/2")]));
    assert!(answer.contains("opus"), "{answer}");
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.browser.connected
            && s.has_event(BridgeEvent::DtlsConnected))
    );
    let pt = sim.browser.payload_type("audio/opus").unwrap();
    assert_eq!(pt, 111);
    for i in 0..20u32 {
        let now = sim.now;
        sim.browser
            .send_rtp(now, pt, i as u16, i * 960, false, &[i as u8; 80]);
        let pkt = plain_rtp(96, i as u16, i * 960, 77, false, &[0xA0 | i as u8; 60]);
        sim.net
            .send(now, addr(SIP_PEER_RTP), addr(BRIDGE_SIP_RTP), &pkt);
        sim.advance(Duration::from_millis(20));
    }
    sim.advance(Duration::from_millis(200));
    assert_eq!(sim.sip.rtp_in.len(), 20);
    assert!(sim.sip.rtp_in.iter().all(|p| p.pt == 96));
    let at_browser: Vec<_> = sim
        .browser
        .received
        .iter()
        .filter(|p| p.pt == 111)
        .collect();
    assert_eq!(at_browser.len(), 20);
    // Timestamps toward SIP advance like the browser's (960 per 20 ms packet).
    let ts: Vec<u32> = sim.sip.rtp_in.iter().map(|p| p.ts).collect();
    assert!(
        ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 960),
        "{ts:?}"
    );
}

#[test]
fn no_common_codec_is_an_error() {
    let start = std::time::Instant::now();
    let mut browser = BrowserPeer::new(start, 1);
    let offer = browser.create_offer(start);
    let (mut bridge, _) =
        media::bridge::Bridge::new_answerer(start, bridge_config(start, 1), &offer).unwrap();
    let err = bridge
        .apply_sip_answer(start, &sip_answer_sdp(&[(18, "G729/8000")]))
        .unwrap_err();
    assert!(
        matches!(err, media::error::BridgeError::NoCommonCodec),
        "{err}"
    );
}

#[test]
fn ice_lite_answerer_connects_and_says_so_in_its_sdp() {
    let (mut sim, _, answer) = answerer_sim_with(17, 0, &sip_answer_sdp(SIP_PCMU_TE), None, true);
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s.browser.connected
            && s.has_event(BridgeEvent::DtlsConnected)),
        "{:?}",
        sim.events
    );
    assert!(sim.has_event(BridgeEvent::IceConnected));
}

#[test]
fn closed_bridge_ignores_input_and_arms_no_timer() {
    let (mut sim, _, _) = answerer_sim(19, 0, &sip_answer_sdp(SIP_PCMU_TE));
    assert!(sim.run_until(Duration::from_secs(5), |s| s
        .has_event(BridgeEvent::DtlsConnected)));
    let now = sim.now;
    sim.bridge.close(now);
    let now = sim.now;
    sim.bridge.close(now);
    sim.flush();
    let closed = sim
        .events
        .iter()
        .filter(|(_, e)| *e == BridgeEvent::Closed)
        .count();
    assert_eq!(closed, 1, "Closed is reported once");
    assert_eq!(sim.bridge.poll_output(), Output::Timeout(None));
    let now = sim.now;
    let before = sim.bridge.stats();
    let mut pkt = plain_rtp(0, 1, 160, 5, false, &[0u8; 160]);
    sim.bridge
        .handle_rtp_datagram(now, addr(BRIDGE_SIP_RTP), addr(SIP_PEER_RTP), &mut pkt)
        .unwrap();
    assert_eq!(sim.bridge.stats(), before);
    assert_eq!(
        sim.bridge.poll_output(),
        Output::Timeout(None),
        "nothing to send"
    );
}
