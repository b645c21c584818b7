//! Incoming call (SIP offers, the bridge offers to the browser, the browser answers) with
//! virtual time over a seeded lossy link: the WebRTC offer is complete (sendrecv, candidate,
//! end-of-candidates), the SIP answer keeps the offer's m-lines, media flows both ways with
//! PT mapping, and a candidate before the browser's answer is a typed error.

mod bridge_sim;

use std::time::{Duration, Instant};

use bridge_sim::*;
use media::bridge::{Bridge, BridgeEvent};
use media::error::{BridgeError, WebrtcError};
use media::MediaKind;

/// A SIP offer as a typical phone writes it: PCMU, PCMA, G.729 (unsupported), DTMF on 101,
/// plus a video line we do not take (no video socket configured).
fn sip_offer() -> String {
    "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=call\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
     m=audio 42000 RTP/AVP 0 8 18 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
     a=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n\
     m=video 42010 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
        .to_owned()
}

fn offerer_sim(seed: u64, loss: u64) -> (Sim, String, String, String) {
    let start = Instant::now();
    let (mut bridge, webrtc_offer) =
        Bridge::new_offerer(start, bridge_config(start, seed), &sip_offer()).expect("new_offerer");
    let mut browser = BrowserPeer::new(start, 0x0B0B_0002);
    let answer = browser.answer_offer(start, &webrtc_offer);
    let sip_answer = bridge
        .apply_webrtc_answer(start, &answer)
        .expect("apply_webrtc_answer");
    let sim = Sim {
        now: start,
        start,
        bridge,
        browser,
        sip: SipPeer::default(),
        net: Netem::new(seed, loss, Duration::from_millis(15)),
        events: Vec::new(),
    };
    (sim, webrtc_offer, answer, sip_answer)
}

#[test]
fn webrtc_offer_and_sip_answer_follow_offer_answer_rules() {
    let (_sim, offer, _answer, sip_answer) = offerer_sim(11, 0);
    assert!(offer.contains("a=sendrecv"), "{offer}");
    assert!(offer.contains("a=candidate:"), "{offer}");
    assert!(offer.contains("a=end-of-candidates"), "{offer}");
    assert!(offer.contains("UDP/TLS/RTP/SAVPF"), "{offer}");
    assert!(offer.contains("a=rtcp-mux"), "{offer}");
    assert!(offer.contains("a=group:BUNDLE"), "{offer}");
    assert!(
        offer.contains("PCMU/8000") && offer.contains("PCMA/8000"),
        "{offer}"
    );
    assert!(offer.contains("telephone-event/8000"), "{offer}");
    assert!(
        !offer.contains("G729"),
        "unsupported codecs are not offered: {offer}"
    );
    assert!(!offer.contains("VP8"), "no video socket, no video: {offer}");
    assert!(!offer.contains(".local"), "mDNS is off: {offer}");
    // SIP answer: same two m-lines in order, audio with what the browser took, video rejected.
    let m: Vec<&str> = sip_answer.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(m.len(), 2, "{sip_answer}");
    assert!(m[0].starts_with("m=audio 41004 RTP/AVP 0"), "{sip_answer}");
    assert!(m[0].ends_with(" 101"), "{sip_answer}");
    assert!(m[1].starts_with("m=video 0 "), "{sip_answer}");
    assert!(sip_answer.contains("c=IN IP4 127.0.0.1"));
}

#[test]
fn media_flows_both_ways_after_the_browser_answers() {
    let (mut sim, _, _, _) = offerer_sim(5, 10);
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s.browser.connected
            && s.has_event(BridgeEvent::DtlsConnected)),
        "{:?}",
        sim.events
    );
    let pcmu = sim.browser.payload_type("audio/PCMU").expect("PCMU");
    let te = sim
        .browser
        .payload_type("audio/telephone-event")
        .expect("te");
    assert_eq!(te, 101, "the browser answers with the offerer's PT");
    let mut from_browser = Vec::new();
    let mut from_sip = Vec::new();
    for i in 0..100u32 {
        let now = sim.now;
        let a = vec![i as u8; 160];
        sim.browser
            .send_rtp(now, pcmu, i as u16, i * 160, false, &a);
        from_browser.push(a);
        let b = vec![0x55 ^ i as u8; 160];
        sim.net.send(
            now,
            addr(SIP_PEER_RTP),
            addr(BRIDGE_SIP_RTP),
            &plain_rtp(0, 7000 + i as u16, i * 160, 99, false, &b),
        );
        from_sip.push(b);
        sim.advance(Duration::from_millis(20));
    }
    let now = sim.now;
    sim.net.send(
        now,
        addr(SIP_PEER_RTP),
        addr(BRIDGE_SIP_RTP),
        &plain_rtp(101, 7100, 16000, 99, true, &[1, 10, 0, 160]),
    );
    sim.advance(Duration::from_millis(300));
    let at_sip: Vec<_> = sim.sip.rtp_in.iter().filter(|p| p.pt == 0).collect();
    let at_browser: Vec<_> = sim
        .browser
        .received
        .iter()
        .filter(|p| p.pt == pcmu)
        .collect();
    assert!(at_sip.len() >= 90, "{}", at_sip.len());
    assert!(at_browser.len() >= 90, "{}", at_browser.len());
    assert!(at_sip.iter().all(|p| from_browser.contains(&p.payload)));
    assert!(at_browser.iter().all(|p| from_sip.contains(&p.payload)));
    assert!(at_sip
        .iter()
        .all(|p| Some(p.ssrc) == sim.bridge.sip_ssrc(MediaKind::Audio)));
    assert!(sim
        .browser
        .received
        .iter()
        .any(|p| p.pt == 101 && p.payload == [1, 10, 0, 160]));
}

#[test]
fn candidate_before_the_browser_answer_is_a_typed_error() {
    let start = Instant::now();
    let (mut bridge, _) =
        Bridge::new_offerer(start, bridge_config(start, 2), &sip_offer()).unwrap();
    let err = bridge
        .add_remote_candidate("candidate:1 1 udp 2130706431 127.0.0.1 41000 typ host")
        .unwrap_err();
    assert!(
        matches!(err, BridgeError::Webrtc(WebrtcError::NoRemoteDescription)),
        "{err}"
    );
}

#[test]
fn sip_offer_without_a_usable_codec_is_refused() {
    let start = Instant::now();
    let sdp = "v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 42000 RTP/AVP 18 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    let err = Bridge::new_offerer(start, bridge_config(start, 2), sdp).unwrap_err();
    assert!(matches!(err, BridgeError::NoCommonCodec), "{err}");
    let err = Bridge::new_offerer(start, bridge_config(start, 2), "garbage").unwrap_err();
    assert!(matches!(err, BridgeError::Sdp { .. }), "{err}");
}

#[test]
fn advertised_addresses_go_into_both_sdps() {
    // The reactor bound wildcard sockets; the SDPs must name the advertised address instead.
    let start = Instant::now();
    let mut config = bridge_config_at(
        "0.0.0.0:41002".parse().unwrap(),
        "0.0.0.0:41004".parse().unwrap(),
        3,
    );
    config.webrtc.advertised_ip = Some("127.0.0.1".parse().unwrap());
    config.sip_advertised_ip = Some("127.0.0.1".parse().unwrap());
    let (mut bridge, offer) = Bridge::new_offerer(start, config, &sip_offer()).unwrap();
    assert!(offer.contains("127.0.0.1 41002 typ host"), "{offer}");
    assert!(!offer.contains("0.0.0.0 41002"), "{offer}");
    let mut browser = BrowserPeer::new(start, 5);
    let answer = browser.answer_offer(start, &offer);
    let sip_answer = bridge.apply_webrtc_answer(start, &answer).unwrap();
    assert!(sip_answer.contains("c=IN IP4 127.0.0.1"), "{sip_answer}");
    assert!(sip_answer.contains("m=audio 41004 "), "{sip_answer}");
}
