//! Video call (VP8) with virtual time: RTP flows both ways on the video stream, and key
//! frame requests are translated between the legs (RFC 4585 PLI, RFC 5104 FIR): a PLI from
//! the SIP peer reaches the browser as a PLI about the browser's video, and a PLI from the
//! browser reaches the SIP peer's RTCP port as PSFB FMT 1 about the SIP peer's SSRC.

mod bridge_sim;

use std::time::{Duration, Instant};

use bridge_sim::*;
use media::bridge::{Bridge, BridgeEvent};
use media::MediaKind;

const SIP_VIDEO_SSRC: u32 = 0x0000_5EE5;

fn sip_answer_with_video() -> String {
    "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
     m=audio 42000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n\
     m=video 42010 RTP/AVP 100\r\na=rtpmap:100 VP8/90000\r\na=rtcp-fb:100 nack pli\r\na=sendrecv\r\n"
        .to_owned()
}

fn video_sim() -> Sim {
    let start = Instant::now();
    let mut browser = BrowserPeer::new(start, 0x0B0B_0003);
    browser.add_video_track(0x0B0B_0004);
    let offer = browser.create_offer(start);
    let mut config = bridge_config(start, 33);
    config.sip_video_local = Some(addr(BRIDGE_SIP_VIDEO_RTP));
    let (mut bridge, sip_offer) =
        Bridge::new_answerer(start, config, &offer).expect("new_answerer");
    assert!(sip_offer.contains("m=video 41006 RTP/AVP"), "{sip_offer}");
    bridge
        .add_remote_candidate(&browser.candidate_line())
        .expect("trickle");
    let answer = bridge
        .apply_sip_answer(start, &sip_answer_with_video())
        .expect("apply_sip_answer");
    assert!(answer.contains("m=video"), "{answer}");
    assert!(answer.contains("VP8/90000"), "{answer}");
    browser.apply_answer(start, &answer);
    Sim {
        now: start,
        start,
        bridge,
        browser,
        sip: SipPeer::default(),
        net: Netem::new(33, 0, Duration::from_millis(10)),
        events: Vec::new(),
    }
}

fn pli(sender: u32, media: u32) -> Vec<u8> {
    let mut p = vec![0x81, 206, 0, 2];
    p.extend_from_slice(&sender.to_be_bytes());
    p.extend_from_slice(&media.to_be_bytes());
    p
}

#[test]
fn video_flows_and_keyframe_requests_cross_the_bridge() {
    let mut sim = video_sim();
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s.browser.connected
            && s.has_event(BridgeEvent::DtlsConnected)),
        "{:?}",
        sim.events
    );
    let bridge_video_ssrc = sim
        .bridge
        .sip_ssrc(MediaKind::Video)
        .expect("video stream on the SIP leg");
    for i in 0..30u32 {
        let now = sim.now;
        sim.browser
            .send_video(now, i as u16, i * 3000, &[0x10, i as u8, 0xAB, 0xCD]);
        let pkt = plain_rtp(
            100,
            500 + i as u16,
            i * 3000,
            SIP_VIDEO_SSRC,
            i % 10 == 9,
            &[0x90, i as u8, 1, 2, 3],
        );
        sim.net.send(
            now,
            addr(SIP_PEER_VIDEO_RTP),
            addr(BRIDGE_SIP_VIDEO_RTP),
            &pkt,
        );
        sim.advance(Duration::from_millis(33));
    }
    sim.advance(Duration::from_millis(200));
    // VP8 both ways, PT 96 (browser) <-> 100 (SIP), the bridge's SSRC toward SIP.
    assert!(
        sim.sip.video_rtp_in.len() >= 28,
        "{}",
        sim.sip.video_rtp_in.len()
    );
    assert!(sim
        .sip
        .video_rtp_in
        .iter()
        .all(|p| p.pt == 100 && p.ssrc == bridge_video_ssrc));
    let video_at_browser: Vec<_> = sim.browser.received.iter().filter(|p| p.pt == 96).collect();
    assert!(video_at_browser.len() >= 28, "{}", video_at_browser.len());
    assert!(video_at_browser.iter().all(|p| p.payload[0] == 0x90));

    // SIP peer -> PLI -> browser.
    let before = sim.browser.keyframe_requests;
    let now = sim.now;
    sim.net.send(
        now,
        addr(SIP_PEER_VIDEO_RTCP),
        addr(BRIDGE_SIP_VIDEO_RTCP),
        &pli(SIP_VIDEO_SSRC, bridge_video_ssrc),
    );
    sim.advance(Duration::from_millis(100));
    assert!(
        sim.browser.keyframe_requests > before,
        "the browser never saw the SIP peer's PLI"
    );

    // Browser -> PLI -> SIP peer (PSFB FMT 1 about the SIP peer's SSRC).
    let now = sim.now;
    assert!(
        sim.browser.send_pli(now),
        "browser has no receiver for the gateway's video"
    );
    sim.advance(Duration::from_millis(100));
    let relayed = sim.sip.video_rtcp_in.iter().any(|c| {
        let mut rest = c.as_slice();
        while rest.len() >= 12 {
            let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
            if rest[1] == 206 && rest[0] & 0x1F == 1 {
                return u32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]])
                    == SIP_VIDEO_SSRC;
            }
            rest = rest.get(len..).unwrap_or_default();
        }
        false
    });
    assert!(
        relayed,
        "no PLI about the SIP peer's video reached its RTCP port: {:?}",
        sim.sip.video_rtcp_in
    );
}
