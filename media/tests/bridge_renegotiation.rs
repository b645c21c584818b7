//! Renegotiation of running calls with virtual time: the browser (rtc) re-offers to add
//! video, to hold and to restart ICE; the SIP side re-offers with a new address and new
//! SDES keys, with added video, and refreshes; answers are made by the browser or by the
//! bridge alone; refusals leave the media as it was. Media is checked after every change.

mod bridge_sim;

use std::time::{Duration, Instant};

use bridge_sim::*;
use media::bridge::{Bridge, BridgeEvent, SipReoffer};
use media::error::BridgeError;
use media::rtp::srtp::SdesSrtp;
use media::sdp::CryptoAttribute;

const SIP_PCMU_TE: &[(u8, &str)] = &[(0, "PCMU/8000"), (101, "telephone-event/8000")];

fn established(seed: u64) -> Sim {
    let (mut sim, _, _) = answerer_sim(seed, 0, &sip_answer_sdp(SIP_PCMU_TE));
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s.browser.connected
            && s.has_event(BridgeEvent::DtlsConnected)),
        "not established"
    );
    sim
}

/// Sends `n` PCMU packets each way and returns how many arrived at the SIP peer and at the
/// browser (their payloads intact).
fn audio_round(sim: &mut Sim, n: u16, from_sip: &str) -> (usize, usize) {
    let pcmu = sim.browser.payload_type("audio/PCMU").expect("PCMU");
    let (sip_before, browser_before) = (sim.sip.rtp_in.len(), sim.browser.received.len());
    let base = sim.now;
    for i in 0..n {
        let t = base + Duration::from_millis(20 * u64::from(i));
        sim.advance_to(t);
        let seq = 5000u16.wrapping_add((sim.now - sim.start).as_millis() as u16 / 20);
        let ts = 160 * u32::from(seq);
        sim.browser
            .send_rtp(sim.now, pcmu, seq, ts, false, &[0x55; 160]);
        let p = plain_rtp(0, seq, ts, 0x5151_5151, false, &[0x66; 160]);
        sim.net
            .send(sim.now, addr(from_sip), addr(BRIDGE_SIP_RTP), &p);
    }
    sim.advance(Duration::from_millis(200));
    let to_sip = sim.sip.rtp_in[sip_before..]
        .iter()
        .filter(|p| p.payload == [0x55; 160])
        .count();
    let to_browser = sim.browser.received[browser_before..]
        .iter()
        .filter(|p| p.payload == [0x66; 160])
        .count();
    (to_sip, to_browser)
}

#[test]
fn browser_adds_video_then_sip_and_browser_exchange_it_and_audio_goes_on() {
    let mut sim = established(31);
    assert_eq!(audio_round(&mut sim, 20, SIP_PEER_RTP), (20, 20));
    let audio_ssrc = sim.sip.rtp_in.last().map(|p| p.ssrc).unwrap();
    sim.browser.add_video_track(0x0B0B_0F0F);
    let offer = sim.browser.create_offer(sim.now);
    assert!(offer.contains("m=video"), "{offer}");
    // The gateway binds a video pair for the call, then the bridge may offer video to SIP.
    sim.bridge.add_sip_video_socket(addr(BRIDGE_SIP_VIDEO_RTP));
    let sip_offer = sim
        .bridge
        .handle_webrtc_reoffer(sim.now, &offer)
        .expect("re-offer");
    let m: Vec<&str> = sip_offer.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(m.len(), 2, "{sip_offer}");
    assert!(
        m[0].starts_with("m=audio 41004 RTP/AVP"),
        "audio keeps its place: {sip_offer}"
    );
    assert!(m[1].starts_with("m=video 41006 RTP/AVP"), "{sip_offer}");
    assert!(sip_offer.contains("VP8/90000"), "{sip_offer}");
    assert!(sim.bridge.is_renegotiating());
    let answer = "v=0\r\no=peer 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 42000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n\
        m=video 42010 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=sendrecv\r\n";
    let browser_answer = sim
        .bridge
        .apply_sip_reanswer(sim.now, answer)
        .expect("re-answer");
    assert!(browser_answer.contains("m=video"), "{browser_answer}");
    assert!(
        browser_answer.contains("a=end-of-candidates"),
        "{browser_answer}"
    );
    sim.browser.apply_answer(sim.now, &browser_answer);
    assert!(!sim.bridge.is_renegotiating());
    // Audio goes on, with the same SSRC toward SIP (RFC 3264 section 8: the stream stays).
    assert_eq!(audio_round(&mut sim, 20, SIP_PEER_RTP), (20, 20));
    assert_eq!(sim.sip.rtp_in.last().map(|p| p.ssrc), Some(audio_ssrc));
    // Video both ways.
    for i in 0..10u16 {
        sim.browser
            .send_video(sim.now, 100 + i, 3000 * u32::from(i), &[0x11; 300]);
        let p = plain_rtp(
            96,
            200 + i,
            3000 * u32::from(i),
            0x7171_7171,
            true,
            &[0x22; 300],
        );
        sim.net.send(
            sim.now,
            addr(SIP_PEER_VIDEO_RTP),
            addr(BRIDGE_SIP_VIDEO_RTP),
            &p,
        );
        sim.advance(Duration::from_millis(33));
    }
    sim.advance(Duration::from_millis(200));
    assert!(
        sim.sip
            .video_rtp_in
            .iter()
            .filter(|p| p.payload == [0x11; 300])
            .count()
            >= 9,
        "browser video reached SIP: {}",
        sim.sip.video_rtp_in.len()
    );
    assert!(
        sim.browser
            .received
            .iter()
            .filter(|p| p.payload == [0x22; 300])
            .count()
            >= 9,
        "SIP video reached the browser"
    );

    // The browser removes video again: its line goes to port 0 on both sides.
    let stop = offer_without_video(&mut sim);
    let sip_offer = sim
        .bridge
        .handle_webrtc_reoffer(sim.now, &stop)
        .expect("re-offer without video");
    let m: Vec<&str> = sip_offer.lines().filter(|l| l.starts_with("m=")).collect();
    assert!(m[1].starts_with("m=video 0 "), "{sip_offer}");
    let answer = answer.replace("m=video 42010", "m=video 0");
    let browser_answer = sim
        .bridge
        .apply_sip_reanswer(sim.now, &answer)
        .expect("re-answer");
    assert!(browser_answer.contains("m=video 0 "), "{browser_answer}");
    assert_eq!(audio_round(&mut sim, 10, SIP_PEER_RTP), (10, 10));
}

/// The browser's current offer with its video line disabled (port 0), as a browser writes
/// it after stopping the transceiver.
fn offer_without_video(sim: &mut Sim) -> String {
    let offer = sim.browser.create_offer(sim.now);
    let mut out = String::new();
    let mut in_video = false;
    for line in offer.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with("m=") {
            in_video = line.starts_with("m=video");
            if in_video {
                let rest: Vec<&str> = line.splitn(3, ' ').collect();
                out.push_str(&format!("{} 0 {}\r\n", rest[0], rest[2]));
                continue;
            }
        }
        if in_video && line.starts_with("a=group") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

#[test]
fn browser_hold_is_relayed_and_sip_answer_direction_goes_back() {
    let mut sim = established(32);
    let offer = sim
        .browser
        .create_offer(sim.now)
        .replace("a=sendrecv", "a=sendonly");
    let sip_offer = sim
        .bridge
        .handle_webrtc_reoffer(sim.now, &offer)
        .expect("hold re-offer");
    assert!(sip_offer.contains("a=sendonly"), "{sip_offer}");
    let answer = sip_answer_sdp(SIP_PCMU_TE).replace("a=sendrecv", "a=recvonly");
    let browser_answer = sim
        .bridge
        .apply_sip_reanswer(sim.now, &answer)
        .expect("hold answer");
    assert!(browser_answer.contains("a=recvonly"), "{browser_answer}");
    // The browser still sends (the SIP peer receives), and nothing stops the bridge.
    let (to_sip, _) = audio_round(&mut sim, 10, SIP_PEER_RTP);
    assert_eq!(to_sip, 10);
}

#[test]
fn browser_ice_restart_gets_new_credentials_and_media_survives_without_a_new_dtls() {
    let mut sim = established(33);
    assert_eq!(audio_round(&mut sim, 10, SIP_PEER_RTP), (10, 10));
    let offer = sim
        .browser
        .pc
        .create_offer(Some(rtc::peer_connection::configuration::RTCOfferOptions {
            ice_restart: true,
        }))
        .expect("restart offer");
    sim.browser
        .pc
        .set_local_description(sim.now, offer.clone())
        .expect("local");
    let old_answer_ufrag = ufrag(&sim_last_answer(&mut sim));
    let sip_offer = sim
        .bridge
        .handle_webrtc_reoffer(sim.now, &offer.sdp)
        .expect("restart re-offer");
    assert!(sip_offer.contains("m=audio 41004"), "{sip_offer}");
    let browser_answer = sim
        .bridge
        .apply_sip_reanswer(sim.now, &sip_answer_sdp(SIP_PCMU_TE))
        .expect("answer");
    assert_ne!(
        ufrag(&browser_answer),
        old_answer_ufrag,
        "new ufrag of ours"
    );
    assert!(
        browser_answer.contains("a=setup:active"),
        "DTLS role kept: {browser_answer}"
    );
    sim.browser.apply_answer(sim.now, &browser_answer);
    let dtls_before = sim
        .events
        .iter()
        .filter(|(_, e)| *e == BridgeEvent::DtlsConnected)
        .count();
    sim.advance(Duration::from_secs(2));
    assert_eq!(audio_round(&mut sim, 20, SIP_PEER_RTP), (20, 20));
    let dtls_after = sim
        .events
        .iter()
        .filter(|(_, e)| *e == BridgeEvent::DtlsConnected)
        .count();
    assert_eq!(dtls_before, dtls_after, "the association rode on");
    assert!(!sim.has_event(BridgeEvent::IceFailed));
}

/// The ufrag of our answer the browser holds now.
fn sim_last_answer(sim: &mut Sim) -> String {
    sim.browser
        .pc
        .current_remote_description()
        .map(|d| d.sdp.clone())
        .unwrap_or_default()
}

fn ufrag(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .unwrap_or_default()
        .to_owned()
}

/// An incoming SDES call set up and established: the SIP peer offered `RTP/SAVP`.
fn sdes_offerer_sim(seed: u64) -> (Sim, CryptoAttribute, CryptoAttribute) {
    let start = Instant::now();
    let offer = savp_offer(42000, PEER_KEY_1, 1);
    let (mut bridge, webrtc_offer) =
        Bridge::new_offerer(start, bridge_config(start, seed), &offer).expect("offerer");
    let mut browser = BrowserPeer::new(start, 0x0B0B_0005);
    let answer = browser.answer_offer(start, &webrtc_offer);
    let sip_answer = bridge.apply_webrtc_answer(start, &answer).expect("answer");
    let ours = CryptoAttribute::parse(
        sip_answer
            .lines()
            .find_map(|l| l.strip_prefix("a=crypto:"))
            .unwrap(),
    )
    .unwrap();
    let mut sim = Sim {
        now: start,
        start,
        bridge,
        browser,
        sip: SipPeer::default(),
        net: Netem::new(seed, 0, Duration::from_millis(10)),
        events: Vec::new(),
    };
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s.browser.connected
            && s.has_event(BridgeEvent::DtlsConnected))
    );
    let peer =
        CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY_1}")).unwrap();
    (sim, peer, ours)
}

const PEER_KEY_1: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
const PEER_KEY_2: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk";

fn savp_offer(port: u16, key: &str, version: u32) -> String {
    format!(
        "v=0\r\no=phone 1 {version} IN IP4 127.0.0.1\r\ns=call\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\na=sendrecv\r\n"
    )
}

/// SRTP from the SIP peer at `from` under `peer` (its key) toward our `ours`; returns how
/// many of `n` packets reached the browser.
fn srtp_from_peer(
    sim: &mut Sim,
    peer: &CryptoAttribute,
    ours: &CryptoAttribute,
    from: &str,
    n: u16,
) -> usize {
    let mut ctx = SdesSrtp::new(peer, ours).unwrap();
    let before = sim.browser.received.len();
    // The peer's sequence goes on across its re-INVITEs.
    let first = 7000 + ((sim.now - sim.start).as_millis() / 20) as u16;
    for i in 0..n {
        let seq = first.wrapping_add(i);
        let p = plain_rtp(
            0,
            seq,
            160 * u32::from(seq),
            0x6161_6161,
            false,
            &[0x77; 160],
        );
        let mut out = [0u8; 512];
        let len = ctx.protect_rtp(&p, &mut out).unwrap();
        sim.net
            .send(sim.now, addr(from), addr(BRIDGE_SIP_RTP), &out[..len]);
        sim.advance(Duration::from_millis(20));
    }
    sim.advance(Duration::from_millis(200));
    sim.browser.received[before..]
        .iter()
        .filter(|p| p.payload == [0x77; 160])
        .count()
}

#[test]
fn sip_reoffer_with_a_new_address_and_new_keys_goes_to_the_browser_and_audio_keeps_flowing() {
    let (mut sim, peer_key, ours) = sdes_offerer_sim(34);
    assert_eq!(
        srtp_from_peer(&mut sim, &peer_key, &ours, SIP_PEER_RTP, 10),
        10
    );
    // The peer moves to another port and rekeys (RFC 4568 section 7.1.4).
    let reoffer = savp_offer(42020, PEER_KEY_2, 2);
    let browser_offer = match sim
        .bridge
        .handle_sip_reoffer(sim.now, &reoffer)
        .expect("reoffer")
    {
        SipReoffer::Browser(o) => o,
        other => panic!("the browser should be asked: {other:?}"),
    };
    assert!(
        browser_offer.contains("a=setup:passive"),
        "our role as it is (DTLS server of this call): {browser_offer}"
    );
    assert!(
        browser_offer.contains("a=end-of-candidates"),
        "{browser_offer}"
    );
    let browser_answer = sim.browser.answer_offer(sim.now, &browser_offer);
    let sip_answer = sim
        .bridge
        .apply_webrtc_reanswer(sim.now, &browser_answer)
        .expect("answer");
    assert!(
        sip_answer.contains("m=audio 41004 RTP/SAVP 0"),
        "{sip_answer}"
    );
    let ours2 = CryptoAttribute::parse(
        sip_answer
            .lines()
            .find_map(|l| l.strip_prefix("a=crypto:"))
            .unwrap(),
    )
    .unwrap();
    assert!(ours2.same_key(&ours), "our key stays (same suite)");
    let peer2 =
        CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY_2}")).unwrap();
    // The peer's new key from its new address is decrypted; the old key is not any more.
    assert_eq!(
        srtp_from_peer(&mut sim, &peer2, &ours2, "127.0.0.1:42020", 10),
        10
    );
    assert_eq!(
        srtp_from_peer(&mut sim, &peer_key, &ours2, "127.0.0.1:42020", 3),
        0
    );
}

#[test]
fn sip_reoffer_answered_locally_follows_hold_and_keys_without_the_browser() {
    let (mut sim, _peer_key, ours) = sdes_offerer_sim(35);
    let hold = savp_offer(42000, PEER_KEY_2, 2).replace("a=sendrecv", "a=sendonly");
    match sim
        .bridge
        .handle_sip_reoffer(sim.now, &hold)
        .expect("reoffer")
    {
        SipReoffer::Browser(_) => {}
        other => panic!("{other:?}"),
    }
    let sip_answer = sim
        .bridge
        .answer_sip_reoffer_locally(sim.now)
        .expect("local answer");
    assert!(sip_answer.contains("a=recvonly"), "{sip_answer}");
    let peer2 =
        CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY_2}")).unwrap();
    assert_eq!(
        srtp_from_peer(&mut sim, &peer2, &ours, SIP_PEER_RTP, 10),
        10
    );
    assert!(!sim.bridge.is_renegotiating());
}

#[test]
fn an_unchanged_reoffer_with_a_new_version_is_answered_at_once() {
    let (mut sim, _, _) = sdes_offerer_sim(36);
    match sim
        .bridge
        .handle_sip_reoffer(sim.now, &savp_offer(42000, PEER_KEY_1, 7))
        .expect("refresh")
    {
        SipReoffer::Unchanged(answer) => assert!(answer.contains("RTP/SAVP"), "{answer}"),
        other => panic!("{other:?}"),
    }
    assert!(!sim.bridge.is_renegotiating());
}

#[test]
fn sip_reoffer_adding_video_is_offered_to_the_browser_in_a_new_line() {
    let mut sim = established(37);
    sim.bridge.add_sip_video_socket(addr(BRIDGE_SIP_VIDEO_RTP));
    let reoffer = "v=0\r\no=peer 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 42000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n\
        m=video 42010 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=sendrecv\r\n";
    let browser_offer = match sim
        .bridge
        .handle_sip_reoffer(sim.now, reoffer)
        .expect("reoffer")
    {
        SipReoffer::Browser(o) => o,
        other => panic!("{other:?}"),
    };
    let m: Vec<&str> = browser_offer
        .lines()
        .filter(|l| l.starts_with("m="))
        .collect();
    assert_eq!(m.len(), 2, "{browser_offer}");
    assert!(m[1].starts_with("m=video 41002"), "{browser_offer}");
    let browser_answer = sim.browser.answer_offer(sim.now, &browser_offer);
    let sip_answer = sim
        .bridge
        .apply_webrtc_reanswer(sim.now, &browser_answer)
        .expect("answer");
    let m: Vec<&str> = sip_answer.lines().filter(|l| l.starts_with("m=")).collect();
    assert!(m[0].starts_with("m=audio 41004"), "{sip_answer}");
    assert!(m[1].starts_with("m=video 41006"), "{sip_answer}");
    // SIP video reaches the browser.
    for i in 0..10u16 {
        let p = plain_rtp(
            96,
            300 + i,
            3000 * u32::from(i),
            0x7272_7272,
            true,
            &[0x33; 200],
        );
        sim.net.send(
            sim.now,
            addr(SIP_PEER_VIDEO_RTP),
            addr(BRIDGE_SIP_VIDEO_RTP),
            &p,
        );
        sim.advance(Duration::from_millis(33));
    }
    sim.advance(Duration::from_millis(200));
    assert!(
        sim.browser
            .received
            .iter()
            .filter(|p| p.payload == [0x33; 200])
            .count()
            >= 9,
        "video from SIP reached the browser"
    );
    assert_eq!(audio_round(&mut sim, 10, SIP_PEER_RTP), (10, 10));
}

#[test]
fn a_refused_reoffer_leaves_the_media_as_it_was() {
    let mut sim = established(38);
    let offer = sim
        .browser
        .create_offer(sim.now)
        .replace("a=sendrecv", "a=inactive");
    sim.bridge
        .handle_webrtc_reoffer(sim.now, &offer)
        .expect("re-offer");
    // A second one while this is under way is refused.
    assert!(sim.bridge.handle_webrtc_reoffer(sim.now, &offer).is_err());
    sim.bridge.cancel_renegotiation();
    assert!(!sim.bridge.is_renegotiating());
    assert_eq!(audio_round(&mut sim, 10, SIP_PEER_RTP), (10, 10));
}

#[test]
fn rfc_4733_key_presses_from_sip_are_reported_once_and_forwarded() {
    let mut sim = established(39);
    let before = sim.browser.received.len();
    // Digit 5, 800 samples (100 ms at 8 kHz), the end packet sent three times.
    for (i, end) in [(0u16, false), (1, false), (2, true), (3, true), (4, true)] {
        let flags = if end { 0x80 } else { 0 };
        let duration: u16 = if end { 800 } else { 160 * (i + 1) };
        let mut payload = vec![5u8, flags];
        payload.extend_from_slice(&duration.to_be_bytes());
        let p = plain_rtp(101, 900 + i, 16000, 0x5151_5151, i == 0, &payload);
        sim.net
            .send(sim.now, addr(SIP_PEER_RTP), addr(BRIDGE_SIP_RTP), &p);
        sim.advance(Duration::from_millis(20));
    }
    sim.advance(Duration::from_millis(100));
    let dtmf: Vec<BridgeEvent> = sim
        .events
        .iter()
        .map(|(_, e)| *e)
        .filter(|e| matches!(e, BridgeEvent::Dtmf { .. }))
        .collect();
    assert_eq!(
        dtmf,
        [BridgeEvent::Dtmf {
            digit: '5',
            duration_ms: 100
        }]
    );
    let te = sim.browser.payload_type("audio/telephone-event").unwrap();
    assert!(
        sim.browser.received[before..]
            .iter()
            .filter(|p| p.pt == te)
            .count()
            >= 4,
        "the events themselves go through"
    );
}

/// One stream's numbering in a [`codec_round`]: first sequence number, first timestamp and
/// timestamp step per 20 ms packet.
#[derive(Clone, Copy)]
struct Numbering(u16, u32, u32);

/// Sends `n` packets (20 ms apart) of `browser_mime` from the browser and of SIP payload
/// type `sip_pt` from the SIP peer (SSRC 0x5151_5151), numbered as given; returns what
/// arrived at the SIP peer and at the browser.
fn codec_round(
    sim: &mut Sim,
    n: u16,
    (browser_mime, browser): (&str, Numbering),
    (sip_pt, sip): (u8, Numbering),
) -> (Vec<SeenRtp>, Vec<SeenRtp>) {
    let pt = sim
        .browser
        .payload_type(browser_mime)
        .expect("browser codec");
    let (sip_before, browser_before) = (sim.sip.rtp_in.len(), sim.browser.received.len());
    let base = sim.now;
    for i in 0..n {
        sim.advance_to(base + Duration::from_millis(20 * u64::from(i)));
        let (seq, ts) = (
            browser.0.wrapping_add(i),
            browser.1 + browser.2 * u32::from(i),
        );
        sim.browser
            .send_rtp(sim.now, pt, seq, ts, false, &[0x55; 160]);
        let (seq, ts) = (sip.0.wrapping_add(i), sip.1 + sip.2 * u32::from(i));
        let p = plain_rtp(sip_pt, seq, ts, 0x5151_5151, false, &[0x66; 160]);
        sim.net
            .send(sim.now, addr(SIP_PEER_RTP), addr(BRIDGE_SIP_RTP), &p);
    }
    sim.advance(Duration::from_millis(200));
    let to_sip = sim.sip.rtp_in[sip_before..]
        .iter()
        .filter(|p| p.payload == [0x55; 160])
        .cloned()
        .collect();
    let to_browser = sim.browser.received[browser_before..]
        .iter()
        .filter(|p| p.payload == [0x66; 160])
        .cloned()
        .collect();
    (to_sip, to_browser)
}

/// `after` continues `before` as one RTP stream: the same SSRC, the next sequence numbers,
/// timestamps that go on (by less than a second at `clock`) in steps of `step`.
fn continues(before: &[SeenRtp], after: &[SeenRtp], clock: u32, step: u32) {
    let (last, first) = (before.last().unwrap(), after.first().unwrap());
    assert_eq!(first.ssrc, last.ssrc, "one SSRC");
    for (i, p) in after.iter().enumerate() {
        assert_eq!(p.seq, last.seq.wrapping_add(1 + i as u16), "{after:?}");
        assert_eq!(p.ts.wrapping_sub(first.ts), step * i as u32, "{after:?}");
    }
    let gap = first.ts.wrapping_sub(last.ts);
    assert!(gap > 0 && gap < clock, "timestamps go on: +{gap}");
}

fn sip_audio_offer(version: u32, pts: &[(u8, &str)]) -> String {
    let mut s = format!(
        "v=0\r\no=peer 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 42000 RTP/AVP"
    );
    for (pt, _) in pts {
        s.push_str(&format!(" {pt}"));
    }
    s.push_str("\r\n");
    for (pt, map) in pts {
        s.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
    }
    s.push_str("a=sendrecv\r\n");
    s
}

/// A call running Opus (the SIP answer also accepted PCMU, so the browser knows both).
fn opus_call(seed: u64) -> Sim {
    let (mut sim, _, _) = answerer_sim(
        seed,
        0,
        &sip_answer_sdp(&[
            (111, "opus/48000/2"),
            (0, "PCMU/8000"),
            (101, "telephone-event/8000"),
        ]),
    );
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s.browser.connected
            && s.has_event(BridgeEvent::DtlsConnected))
    );
    sim
}

#[test]
fn sip_reoffer_with_only_another_codec_switches_both_legs_and_streams_go_on() {
    let mut sim = opus_call(40);
    let (opus_to_sip, opus_to_browser) = codec_round(
        &mut sim,
        10,
        ("audio/opus", Numbering(7000, 480_000, 960)),
        (111, Numbering(900, 90_000, 960)),
    );
    assert_eq!((opus_to_sip.len(), opus_to_browser.len()), (10, 10));
    assert!(opus_to_sip.iter().all(|p| p.pt == 111));
    // The SIP peer moves to PCMA (which the browser never offered) or PCMU.
    let reoffer = sip_audio_offer(
        2,
        &[
            (8, "PCMA/8000"),
            (0, "PCMU/8000"),
            (101, "telephone-event/8000"),
        ],
    );
    let offer = match sim
        .bridge
        .handle_sip_reoffer(sim.now, &reoffer)
        .expect("reoffer")
    {
        SipReoffer::Browser(o) => o,
        other => panic!("the browser should be asked: {other:?}"),
    };
    let m = offer.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert!(
        m.ends_with("SAVPF 0 126"),
        "only what both sides carry: {offer}"
    );
    let answer = sim.browser.answer_offer(sim.now, &offer);
    let sip_answer = sim
        .bridge
        .apply_webrtc_reanswer(sim.now, &answer)
        .expect("answer");
    assert!(
        sip_answer.contains("m=audio 41004 RTP/AVP 0 101"),
        "{sip_answer}"
    );
    // Both senders restart their timestamps for the new codec, the SIP peer its sequence
    // numbers too (same SSRC): each receiver still sees one continuous stream.
    let (pcmu_to_sip, pcmu_to_browser) = codec_round(
        &mut sim,
        10,
        ("audio/PCMU", Numbering(7010, 3, 160)),
        (0, Numbering(17, 5, 160)),
    );
    assert_eq!((pcmu_to_sip.len(), pcmu_to_browser.len()), (10, 10));
    assert!(pcmu_to_sip.iter().all(|p| p.pt == 0), "{pcmu_to_sip:?}");
    let pcmu = sim.browser.payload_type("audio/PCMU").unwrap();
    assert!(pcmu_to_browser.iter().all(|p| p.pt == pcmu));
    continues(&opus_to_sip, &pcmu_to_sip, 8000, 160);
    continues(&opus_to_browser, &pcmu_to_browser, 8000, 160);
}

#[test]
fn sip_reoffer_without_a_codec_both_sides_carry_is_refused_and_the_call_goes_on() {
    let mut sim = opus_call(41);
    // G.729 only: the bridge does not carry it (no transcoding).
    let reoffer = sip_audio_offer(2, &[(18, "G729/8000"), (101, "telephone-event/8000")]);
    assert!(sim.bridge.handle_sip_reoffer(sim.now, &reoffer).is_err());
    assert!(!sim.bridge.is_renegotiating());
    // PCMA: the gateway carries it, but this browser's offer did not list it: refused at
    // once, the browser is not asked.
    let reoffer = sip_audio_offer(3, &[(8, "PCMA/8000"), (101, "telephone-event/8000")]);
    assert!(matches!(
        sim.bridge.handle_sip_reoffer(sim.now, &reoffer),
        Err(BridgeError::NoCommonCodec)
    ));
    assert!(!sim.bridge.is_renegotiating());
    let (to_sip, to_browser) = codec_round(
        &mut sim,
        10,
        ("audio/opus", Numbering(7000, 480_000, 960)),
        (111, Numbering(900, 90_000, 960)),
    );
    assert_eq!((to_sip.len(), to_browser.len()), (10, 10));
}

#[test]
fn browser_reoffer_with_only_another_codec_switches_the_sip_leg() {
    let mut sim = opus_call(42);
    let (opus_to_sip, _) = codec_round(
        &mut sim,
        5,
        ("audio/opus", Numbering(7000, 480_000, 960)),
        (111, Numbering(900, 90_000, 960)),
    );
    // The browser now prefers PCMU alone (its codec preferences, then a new offer).
    let offer = only_codecs(&sim.browser.create_offer(sim.now), &["0", "126"]);
    let sip_offer = sim
        .bridge
        .handle_webrtc_reoffer(sim.now, &offer)
        .expect("re-offer");
    let m = sip_offer
        .lines()
        .find(|l| l.starts_with("m=audio"))
        .unwrap();
    assert!(
        m.ends_with("RTP/AVP 0 126") || m.ends_with("RTP/AVP 0 101"),
        "{sip_offer}"
    );
    assert!(!sip_offer.contains("opus"), "{sip_offer}");
    let te = sip_offer
        .lines()
        .find_map(|l| {
            l.strip_prefix("a=rtpmap:")
                .filter(|r| r.contains("telephone-event"))
        })
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .to_owned();
    let answer = sip_audio_offer(
        3,
        &[
            (0, "PCMU/8000"),
            (te.parse().unwrap(), "telephone-event/8000"),
        ],
    );
    let browser_answer = sim
        .bridge
        .apply_sip_reanswer(sim.now, &answer)
        .expect("SIP answer");
    sim.browser.apply_answer(sim.now, &browser_answer);
    let (pcmu_to_sip, pcmu_to_browser) = codec_round(
        &mut sim,
        10,
        ("audio/PCMU", Numbering(7005, 3, 160)),
        (0, Numbering(905, 5, 160)),
    );
    assert_eq!((pcmu_to_sip.len(), pcmu_to_browser.len()), (10, 10));
    assert!(pcmu_to_sip.iter().all(|p| p.pt == 0));
    continues(&opus_to_sip, &pcmu_to_sip, 8000, 160);
}

/// `sdp` with its audio line limited to payload types `keep` (a browser's codec
/// preferences).
fn only_codecs(sdp: &str, keep: &[&str]) -> String {
    let mut out = String::new();
    for line in sdp.split("\r\n").filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("m=audio ") {
            let mut parts: Vec<&str> = rest.split(' ').take(2).collect();
            parts.extend(keep);
            out.push_str(&format!("m=audio {}\r\n", parts.join(" ")));
            continue;
        }
        let pt = ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"]
            .iter()
            .find_map(|p| line.strip_prefix(p))
            .and_then(|r| r.split(' ').next());
        if pt.is_some_and(|pt| !keep.contains(&pt)) {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

#[test]
fn a_reoffer_that_keeps_the_codec_and_adds_or_reorders_others_keeps_the_call_going() {
    let mut sim = established(43);
    assert_eq!(audio_round(&mut sim, 10, SIP_PEER_RTP), (10, 10));
    // PCMA put first, PCMU kept: asked the browser (a changed offer), which keeps PCMU.
    let reordered = sip_audio_offer(
        2,
        &[
            (8, "PCMA/8000"),
            (0, "PCMU/8000"),
            (101, "telephone-event/8000"),
        ],
    );
    let offer = match sim
        .bridge
        .handle_sip_reoffer(sim.now, &reordered)
        .expect("reoffer")
    {
        SipReoffer::Browser(o) => o,
        other => panic!("{other:?}"),
    };
    let answer = sim.browser.answer_offer(sim.now, &offer);
    let sip_answer = sim
        .bridge
        .apply_webrtc_reanswer(sim.now, &answer)
        .expect("answer");
    assert!(sip_answer.contains("RTP/AVP 0 101"), "{sip_answer}");
    assert_eq!(audio_round(&mut sim, 10, SIP_PEER_RTP), (10, 10));
    // Opus added in front, answered without the browser (a sylkRTC-1 client): PCMU stays.
    let added = sip_audio_offer(
        3,
        &[
            (111, "opus/48000/2"),
            (0, "PCMU/8000"),
            (101, "telephone-event/8000"),
        ],
    );
    assert!(matches!(
        sim.bridge.handle_sip_reoffer(sim.now, &added),
        Ok(SipReoffer::Browser(_))
    ));
    let sip_answer = sim
        .bridge
        .answer_sip_reoffer_locally(sim.now)
        .expect("local answer");
    let m = sip_answer
        .lines()
        .find(|l| l.starts_with("m=audio"))
        .unwrap();
    assert!(m.ends_with("RTP/AVP 0 101"), "{sip_answer}");
    assert_eq!(audio_round(&mut sim, 10, SIP_PEER_RTP), (10, 10));
}
