//! INVITE without SDP (late offer, RFC 3261 sec. 13.2.1): the gateway offers to SIP in the
//! 200 OK, takes the SIP answer from the ACK, offers to the browser and applies its answer.
//! Virtual time, in-memory link: media and DTMF flow both ways afterwards.

mod bridge_sim;

use std::time::{Duration, Instant};

use bridge_sim::*;
use media::bridge::{Bridge, BridgeEvent};
use media::error::BridgeError;
use media::MediaKind;

#[test]
fn late_offer_call_sets_up_both_legs_and_carries_media() {
    let start = Instant::now();
    let (mut bridge, sip_offer) =
        Bridge::new_late_offer(start, bridge_config(start, 51)).expect("new_late_offer");
    let m: Vec<&str> = sip_offer.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(m.len(), 1, "audio only without a video socket: {sip_offer}");
    assert!(m[0].starts_with("m=audio 41004 RTP/AVP "), "{sip_offer}");
    for codec in [
        "opus/48000/2",
        "PCMU/8000",
        "PCMA/8000",
        "G722/8000",
        "telephone-event/8000",
    ] {
        assert!(sip_offer.contains(codec), "{codec} missing: {sip_offer}");
    }
    // Out of order: the browser side is not there yet.
    assert!(matches!(
        bridge.apply_late_webrtc_answer(start, "v=0\r\n"),
        Err(BridgeError::WrongState(_))
    ));
    // A wrong call leaves the negotiation where it was.
    // The SIP peer (ACK) picks PCMU and telephone-event, numbering the latter 101.
    let sip_answer = sip_answer_sdp(&[(0, "PCMU/8000"), (101, "telephone-event/8000")]);
    let webrtc_offer = bridge
        .apply_late_sip_answer(start, &sip_answer)
        .expect("apply_late_sip_answer");
    assert!(
        webrtc_offer.contains("a=end-of-candidates"),
        "{webrtc_offer}"
    );
    assert!(webrtc_offer.contains("a=sendrecv"), "{webrtc_offer}");
    assert!(
        webrtc_offer.contains("PCMU/8000") && !webrtc_offer.contains("opus"),
        "{webrtc_offer}"
    );
    let mut browser = BrowserPeer::new(start, 0x0B0B_0005);
    let answer = browser.answer_offer(start, &webrtc_offer);
    bridge
        .apply_late_webrtc_answer(start, &answer)
        .expect("apply_late_webrtc_answer");

    let mut sim = Sim {
        now: start,
        start,
        bridge,
        browser,
        sip: SipPeer::default(),
        net: Netem::new(51, 0, Duration::from_millis(10)),
        events: Vec::new(),
    };
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s.browser.connected
            && s.has_event(BridgeEvent::DtlsConnected)),
        "{:?}",
        sim.events
    );
    let te = sim
        .browser
        .payload_type("audio/telephone-event")
        .expect("te negotiated");
    for i in 0..50u32 {
        let now = sim.now;
        sim.browser
            .send_rtp(now, 0, i as u16, i * 160, false, &[i as u8; 160]);
        let pkt = plain_rtp(
            0,
            900 + i as u16,
            i * 160,
            4242,
            false,
            &[0x80 | i as u8; 160],
        );
        sim.net
            .send(now, addr(SIP_PEER_RTP), addr(BRIDGE_SIP_RTP), &pkt);
        sim.advance(Duration::from_millis(20));
    }
    let now = sim.now;
    sim.browser
        .send_rtp(now, te, 50, 50 * 160, true, &[9, 10, 0, 160]);
    sim.advance(Duration::from_millis(200));
    assert_eq!(sim.sip.rtp_in.iter().filter(|p| p.pt == 0).count(), 50);
    assert!(
        sim.sip
            .rtp_in
            .iter()
            .any(|p| p.pt == 101 && p.payload == [9, 10, 0, 160]),
        "DTMF not mapped to 101"
    );
    assert!(sim
        .sip
        .rtp_in
        .iter()
        .all(|p| Some(p.ssrc) == sim.bridge.sip_ssrc(MediaKind::Audio)));
    assert_eq!(
        sim.browser.received.iter().filter(|p| p.pt == 0).count(),
        50
    );
}
