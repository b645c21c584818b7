//! SDES-SRTP in the SIP offers the bridge writes itself (RFC 4568): outgoing calls with
//! `sip_offer_sdes` (media.sip_srtp = "mandatory"), the RTP/SAVP retry offer after a 488
//! ("auto"), and the 200's offer to an INVITE without SDP. The offer lists one fresh key per
//! suite; the answer picks one by tag, and the SIP leg must then encrypt with our key of that
//! tag and decrypt with the peer's, checked here with an independent SRTP context playing
//! the SIP peer.

mod bridge_sim;

use std::time::{Duration, Instant};

use bridge_sim::*;
use media::bridge::{Bridge, BridgeEvent, MediaLeg, SDES_OFFER_SUITES};
use media::error::BridgeError;
use media::rtp::srtp::SdesSrtp;
use media::sdp::{CryptoAttribute, CryptoSuite, SdpError};

/// The SIP peer's own key for `suite`, under `tag` (its answer names our line by tag).
fn peer_key(tag: u32, suite: CryptoSuite) -> CryptoAttribute {
    let len = suite.key_len() + suite.salt_len();
    CryptoAttribute::new(tag, suite, &vec![0x42; len]).expect("peer key")
}

/// A SIP answer with PCMU + telephone-event on 127.0.0.1:42000 in `profile`, with `crypto`
/// lines (values after `a=crypto:`).
fn answer(profile: &str, cryptos: &[String]) -> String {
    let mut s = format!(
        "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 42000 {profile} 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n"
    );
    for c in cryptos {
        s.push_str(&format!("a=crypto:{c}\r\n"));
    }
    s.push_str("a=sendrecv\r\n");
    s
}

/// The `a=crypto` lines of an SDP, parsed, in order.
fn crypto_lines(sdp: &str) -> Vec<CryptoAttribute> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=crypto:"))
        .map(|v| CryptoAttribute::parse(v).expect("our own a=crypto parses"))
        .collect()
}

fn assert_offer_has_fresh_sdes_keys(offer: &str) -> Vec<CryptoAttribute> {
    assert!(offer.contains(" RTP/SAVP "), "{offer}");
    assert!(!offer.contains("RTP/AVP "), "{offer}");
    let keys = crypto_lines(offer);
    let shape: Vec<(u32, CryptoSuite)> = keys.iter().map(|k| (k.tag, k.suite)).collect();
    assert_eq!(
        shape,
        [
            (1, CryptoSuite::AesCm128HmacSha1_80),
            (2, CryptoSuite::AeadAes128Gcm),
            (3, CryptoSuite::AesCm128HmacSha1_32),
        ],
        "{offer}"
    );
    assert_eq!(shape.len(), SDES_OFFER_SUITES.len());
    // Fresh randomness: no two keys alike, none all-zero.
    for (i, a) in keys.iter().enumerate() {
        assert!(a.key_salt().iter().any(|&b| b != 0));
        for b in &keys[i + 1..] {
            assert_ne!(a.master_key(), b.master_key());
        }
    }
    // RFC 4568 section 9.1 puts a=crypto in the media section, before our direction.
    let crypto_at = offer.find("a=crypto:").unwrap();
    assert!(crypto_at > offer.find("m=audio").unwrap());
    assert!(crypto_at < offer.find("a=sendrecv").unwrap(), "{offer}");
    keys
}

/// An outgoing call whose bridge offers RTP/SAVP; returns it with the offer and the browser.
fn sdes_answerer(seed: u64) -> (Bridge, String, BrowserPeer, Instant) {
    let start = Instant::now();
    let mut browser = BrowserPeer::new(start, 0x0B0B_0010 + seed as u32);
    let offer = browser.create_offer(start);
    let mut config = bridge_config(start, seed);
    config.sip_offer_sdes = true;
    let (mut bridge, sip_offer) =
        Bridge::new_answerer(start, config, &offer).expect("new_answerer");
    bridge
        .add_remote_candidate(&browser.candidate_line())
        .expect("trickle");
    bridge.add_remote_candidate("").expect("end-of-candidates");
    (bridge, sip_offer, browser, start)
}

#[test]
fn savp_offer_answered_with_gcm_tag_keys_both_directions_end_to_end() {
    let (mut bridge, sip_offer, mut browser, start) = sdes_answerer(31);
    let ours = assert_offer_has_fresh_sdes_keys(&sip_offer);
    // The peer takes our second line (AEAD_AES_128_GCM, RFC 7714) and sends its own key.
    let theirs = peer_key(2, CryptoSuite::AeadAes128Gcm);
    let sip_answer = answer("RTP/SAVP", &[theirs.to_value()]);
    let webrtc_answer = bridge
        .apply_sip_answer(start, &sip_answer)
        .expect("apply_sip_answer");
    browser.apply_answer(start, &webrtc_answer);
    let mut sim = Sim {
        now: start,
        start,
        bridge,
        browser,
        sip: SipPeer::default(),
        net: Netem::new(31, 0, Duration::from_millis(10)),
        events: Vec::new(),
    };
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s
            .has_event(BridgeEvent::DtlsConnected)
            && s.browser.connected),
        "DTLS never connected: {:?}",
        sim.events
    );
    let pcmu = sim.browser.payload_type("audio/PCMU").expect("PCMU");
    // The SIP peer: encrypts with its key, decrypts with ours for tag 2 (RFC 4568 6.1).
    let mut peer = SdesSrtp::new(&theirs, &ours[1]).expect("peer context");
    let mut from_browser = Vec::new();
    let mut from_sip = Vec::new();
    for i in 0..50u32 {
        let now = sim.now;
        let p: Vec<u8> = (0..160).map(|j| (i as u8) ^ (j as u8)).collect();
        sim.browser
            .send_rtp(now, pcmu, 100 + i as u16, i * 160, i == 0, &p);
        from_browser.push(p);
        let q: Vec<u8> = (0..160).map(|j| (i as u8).wrapping_add(j as u8)).collect();
        let plain = plain_rtp(0, 7000 + i as u16, i * 160, 0x5151_7777, false, &q);
        let mut srtp = [0u8; 512];
        let n = peer.protect_rtp(&plain, &mut srtp).expect("protect");
        sim.net
            .send(now, addr(SIP_PEER_RTP), addr(BRIDGE_SIP_RTP), &srtp[..n]);
        from_sip.push(q);
        sim.advance(Duration::from_millis(20));
    }
    sim.advance(Duration::from_secs(1));
    // Browser -> SIP arrives as SRTP the peer opens with our tag-2 key.
    let mut opened = 0;
    for seen in sim.sip.rtp_in.iter().filter(|p| p.pt == 0) {
        assert!(
            !from_browser.contains(&seen.payload),
            "plaintext on an RTP/SAVP leg"
        );
        let mut wire = plain_rtp(
            seen.pt,
            seen.seq,
            seen.ts,
            seen.ssrc,
            seen.marker,
            &seen.payload,
        );
        let n = peer
            .unprotect_rtp(&mut wire)
            .expect("our SRTP opens with the agreed keys");
        assert!(
            from_browser.contains(&wire[12..n].to_vec()),
            "payload changed"
        );
        opened += 1;
    }
    assert!(opened >= 45, "only {opened} of 50 packets reached SIP");
    // SIP -> browser: the peer's SRTP was decrypted with its key and forwarded.
    let at_browser: Vec<_> = sim
        .browser
        .received
        .iter()
        .filter(|p| p.pt == pcmu)
        .collect();
    assert!(
        at_browser.len() >= 45,
        "only {} reached the browser",
        at_browser.len()
    );
    assert!(at_browser.iter().all(|p| from_sip.contains(&p.payload)));
    assert_eq!(sim.bridge.stats().sip.packets_received, 50);
}

#[test]
fn savp_answers_that_break_the_offer_fail_with_a_typed_error() {
    let aes80 = |tag| peer_key(tag, CryptoSuite::AesCm128HmacSha1_80).to_value();
    let cases: Vec<(&str, String, SdpError)> = vec![
        (
            "plain RTP/AVP answer",
            answer("RTP/AVP", &[]),
            SdpError::SrtpRefused { media_index: 0 },
        ),
        (
            "RTP/AVP with a key",
            answer("RTP/AVP", &[aes80(1)]),
            SdpError::SrtpRefused { media_index: 0 },
        ),
        (
            "RTP/SAVP without a key",
            answer("RTP/SAVP", &[]),
            SdpError::NoUsableCrypto { media_index: 0 },
        ),
        (
            "a tag we never offered",
            answer("RTP/SAVP", &[aes80(9)]),
            SdpError::NoUsableCrypto { media_index: 0 },
        ),
        (
            "our tag 1 with another suite",
            answer(
                "RTP/SAVP",
                &[peer_key(1, CryptoSuite::AesCm128HmacSha1_32).to_value()],
            ),
            SdpError::NoUsableCrypto { media_index: 0 },
        ),
        (
            "a suite we did not offer",
            answer(
                "RTP/SAVP",
                &[peer_key(1, CryptoSuite::AeadAes256Gcm).to_value()],
            ),
            SdpError::NoUsableCrypto { media_index: 0 },
        ),
        (
            "an MKI we cannot honour",
            answer("RTP/SAVP", &[format!("{}|2^31|1:4", aes80(1))]),
            SdpError::NoUsableCrypto { media_index: 0 },
        ),
        (
            "a key of the wrong length",
            answer(
                "RTP/SAVP",
                &["1 AES_CM_128_HMAC_SHA1_80 inline:QUJD".to_owned()],
            ),
            SdpError::NoUsableCrypto { media_index: 0 },
        ),
    ];
    for (i, (what, sip_answer, want)) in cases.into_iter().enumerate() {
        let (mut bridge, _, _, start) = sdes_answerer(40 + i as u64);
        match bridge.apply_sip_answer(start, &sip_answer) {
            Err(BridgeError::Sdp {
                leg: MediaLeg::Sip,
                error,
            }) => assert_eq!(error, want, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
        // The negotiation is over; nothing more is accepted, nothing panics.
        assert!(bridge.apply_sip_answer(start, &sip_answer).is_err());
    }
}

#[test]
fn plain_offer_then_sdes_retry_offer_after_488() {
    let start = Instant::now();
    let mut browser = BrowserPeer::new(start, 0x0B0B_0020);
    let offer = browser.create_offer(start);
    let (mut bridge, plain) =
        Bridge::new_answerer(start, bridge_config(start, 50), &offer).expect("new_answerer");
    assert!(
        plain.contains("RTP/AVP") && !plain.contains("a=crypto"),
        "{plain}"
    );
    // Switching before a retry offer exists is refused and changes nothing.
    assert!(matches!(
        bridge.use_sdes_retry(),
        Err(BridgeError::WrongState(_))
    ));
    let retry = bridge.prepare_sdes_retry().expect("retry offer");
    let ours = assert_offer_has_fresh_sdes_keys(&retry);
    // Same codecs and port as the plain offer; only the profile and keys differ.
    let m_plain = plain.lines().find(|l| l.starts_with("m=audio")).unwrap();
    let m_retry = retry.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert_eq!(m_plain.replace("RTP/AVP", "RTP/SAVP"), m_retry);
    // A second preparation makes new keys (a new offer never reuses keys, RFC 4568 5.1).
    let retry2 = bridge.prepare_sdes_retry().expect("retry offer");
    let ours2 = crypto_lines(&retry2);
    assert_ne!(ours[0].master_key(), ours2[0].master_key());
    bridge.use_sdes_retry().expect("switch");
    assert!(
        matches!(bridge.use_sdes_retry(), Err(BridgeError::WrongState(_))),
        "one retry only"
    );
    // The peer takes tag 1 of the offer that went out (the second preparation).
    let theirs = peer_key(1, CryptoSuite::AesCm128HmacSha1_80);
    bridge
        .apply_sip_answer(start, &answer("RTP/SAVP", &[theirs.to_value()]))
        .expect("answer to the retry offer");
    assert!(matches!(
        bridge.prepare_sdes_retry(),
        Err(BridgeError::WrongState(_))
    ));
    // The SIP leg decrypts what the peer encrypts with its key...
    let mut peer = SdesSrtp::new(&theirs, &ours2[0]).expect("peer context");
    let local = addr(BRIDGE_SIP_RTP);
    let from = addr(SIP_PEER_RTP);
    for seq in 0..10u16 {
        let plain = plain_rtp(
            0,
            seq,
            160 * u32::from(seq),
            0x5151_0042,
            false,
            &[0x55; 160],
        );
        let mut out = [0u8; 512];
        let n = peer.protect_rtp(&plain, &mut out).unwrap();
        bridge
            .handle_rtp_datagram(start, local, from, &mut out[..n])
            .expect("SRTP under the agreed keys");
    }
    assert_eq!(bridge.stats().sip.packets_received, 10);
    // ...and refuses plaintext.
    let mut clear = plain_rtp(0, 10, 1600, 0x5151_0042, false, &[0x55; 160]);
    assert!(bridge
        .handle_rtp_datagram(start, local, from, &mut clear)
        .is_err());
    assert_eq!(bridge.stats().sip.packets_received, 10);
    // What the SIP leg sends (its RTCP reports) is under the key of the offer that went
    // out, not the first preparation's.
    let mut stale = SdesSrtp::new(&theirs, &ours[0]).unwrap();
    let later = start + Duration::from_secs(10);
    bridge.handle_timeout(later).expect("timers");
    let mut reports = 0;
    while let engine::Output::Transmit(t) = bridge.poll_output() {
        if t.socket != media::bridge::MediaSocketKind::Rtcp {
            continue;
        }
        let mut wire = t.bytes.to_vec();
        assert!(
            stale.unprotect_rtcp(&mut wire.clone()).is_err(),
            "SRTCP opened with a key that was never sent"
        );
        peer.unprotect_rtcp(&mut wire)
            .expect("SRTCP under our key of the answered tag");
        reports += 1;
    }
    assert!(reports > 0, "no RTCP report toward SIP");
}

#[test]
fn plain_answer_to_the_plain_offer_ignores_the_prepared_retry() {
    let start = Instant::now();
    let mut browser = BrowserPeer::new(start, 0x0B0B_0021);
    let offer = browser.create_offer(start);
    let (mut bridge, _) =
        Bridge::new_answerer(start, bridge_config(start, 51), &offer).expect("new_answerer");
    bridge.prepare_sdes_retry().expect("retry offer");
    // No 488 came: the answer answers the plain offer, and SAVP in it is refused.
    let (mut no_488, _) =
        Bridge::new_answerer(start, bridge_config(start, 52), &offer).expect("new_answerer");
    no_488.prepare_sdes_retry().expect("retry offer");
    match no_488.apply_sip_answer(
        start,
        &answer(
            "RTP/SAVP",
            &[peer_key(1, CryptoSuite::AesCm128HmacSha1_80).to_value()],
        ),
    ) {
        Err(BridgeError::Sdp { error, .. }) => {
            assert_eq!(error, SdpError::UnexpectedSrtp { media_index: 0 })
        }
        other => panic!("{other:?}"),
    }
    bridge
        .apply_sip_answer(start, &answer("RTP/AVP", &[]))
        .expect("plain answer to the plain offer");
    let mut clear = plain_rtp(0, 1, 160, 0x5151_0043, false, &[0x55; 160]);
    bridge
        .handle_rtp_datagram(start, addr(BRIDGE_SIP_RTP), addr(SIP_PEER_RTP), &mut clear)
        .expect("plain RTP on a plain leg");
}

#[test]
fn late_offer_in_the_200_is_savp_with_every_key_and_the_ack_answer_keys_the_leg() {
    let start = Instant::now();
    let mut config = bridge_config(start, 60);
    config.sip_offer_sdes = true;
    let capabilities = Bridge::capabilities_offer(start, &mut config).expect("capabilities");
    let throwaway = assert_offer_has_fresh_sdes_keys(&capabilities);
    assert!(
        capabilities.contains("m=audio 9 RTP/SAVP"),
        "{capabilities}"
    );
    let (mut bridge, webrtc_offer) =
        Bridge::new_offerer(start, config, &capabilities).expect("new_offerer");
    let mut browser = BrowserPeer::new(start, 0x0B0B_0030);
    let webrtc_answer = browser.answer_offer(start, &webrtc_offer);
    let our_offer = bridge
        .apply_webrtc_answer_as_offer(start, &webrtc_answer)
        .expect("our offer for the 200");
    let ours = assert_offer_has_fresh_sdes_keys(&our_offer);
    for (a, b) in ours.iter().zip(&throwaway) {
        assert_ne!(a.master_key(), b.master_key(), "the 200 has its own keys");
    }
    // The ACK's answer picks tag 3 (AES_CM_128_HMAC_SHA1_32).
    let theirs = peer_key(3, CryptoSuite::AesCm128HmacSha1_32);
    bridge
        .apply_sip_answer_to_our_offer(start, &our_offer, &answer("RTP/SAVP", &[theirs.to_value()]))
        .expect("ACK answer");
    let mut peer = SdesSrtp::new(&theirs, &ours[2]).expect("peer context");
    let (local, from) = (addr(BRIDGE_SIP_RTP), addr(SIP_PEER_RTP));
    for seq in 0..5u16 {
        let plain = plain_rtp(
            0,
            seq,
            160 * u32::from(seq),
            0x5151_0050,
            false,
            &[0x11; 160],
        );
        let mut out = [0u8; 512];
        let n = peer.protect_rtp(&plain, &mut out).unwrap();
        bridge
            .handle_rtp_datagram(start, local, from, &mut out[..n])
            .expect("SRTP keyed from the ACK's answer");
    }
    assert_eq!(bridge.stats().sip.packets_received, 5);
    // An ACK that drops to plain RTP, or names a key we never sent, fails; the keys stay.
    for (bad, want) in [
        (
            answer("RTP/AVP", &[]),
            SdpError::SrtpRefused { media_index: 0 },
        ),
        (
            answer(
                "RTP/SAVP",
                &[peer_key(4, CryptoSuite::AesCm128HmacSha1_80).to_value()],
            ),
            SdpError::NoUsableCrypto { media_index: 0 },
        ),
    ] {
        match bridge.apply_sip_answer_to_our_offer(start, &our_offer, &bad) {
            Err(BridgeError::Sdp { error, .. }) => assert_eq!(error, want),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn plain_late_offer_stays_plain() {
    let start = Instant::now();
    let mut config = bridge_config(start, 61);
    let capabilities = Bridge::capabilities_offer(start, &mut config).expect("capabilities");
    assert!(capabilities.contains("m=audio 9 RTP/AVP") && !capabilities.contains("a=crypto"));
    let (mut bridge, webrtc_offer) =
        Bridge::new_offerer(start, config, &capabilities).expect("new_offerer");
    let mut browser = BrowserPeer::new(start, 0x0B0B_0031);
    let webrtc_answer = browser.answer_offer(start, &webrtc_offer);
    let our_offer = bridge
        .apply_webrtc_answer_as_offer(start, &webrtc_answer)
        .expect("our offer");
    assert!(
        our_offer.contains("RTP/AVP") && !our_offer.contains("a=crypto"),
        "{our_offer}"
    );
    match bridge.apply_sip_answer_to_our_offer(
        start,
        &our_offer,
        &answer(
            "RTP/SAVP",
            &[peer_key(1, CryptoSuite::AesCm128HmacSha1_80).to_value()],
        ),
    ) {
        Err(BridgeError::Sdp { error, .. }) => {
            assert_eq!(error, SdpError::UnexpectedSrtp { media_index: 0 })
        }
        other => panic!("{other:?}"),
    }
    bridge
        .apply_sip_answer_to_our_offer(start, &our_offer, &answer("RTP/AVP", &[]))
        .expect("plain ACK answer");
}
