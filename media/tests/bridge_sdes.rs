//! SDES-SRTP toward SIP (RFC 4568): a SIP peer that offers `RTP/SAVP` with an `a=crypto` key
//! gets an `RTP/SAVP` answer with a fresh key of ours for the same tag and suite, and the
//! SIP leg then decrypts the peer's SRTP with its key (and refuses packets under another).

mod bridge_sim;

use std::time::Instant;

use bridge_sim::*;
use media::bridge::Bridge;
use media::rtp::srtp::SdesSrtp;
use media::sdp::CryptoAttribute;

/// The peer's key: AES_CM_128_HMAC_SHA1_80, 30 bytes of key||salt, base64.
const PEER_CRYPTO: &str =
    "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

fn savp_offer() -> String {
    format!(
        "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=call\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 42000 RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=crypto:{PEER_CRYPTO}\r\na=sendrecv\r\n"
    )
}

#[test]
fn savp_offer_is_answered_with_our_own_key_and_srtp_is_decrypted() {
    let now = Instant::now();
    let (mut bridge, webrtc_offer) =
        Bridge::new_offerer(now, bridge_config(now, 21), &savp_offer()).expect("new_offerer");
    let mut browser = BrowserPeer::new(now, 0x0B0B_0003);
    let answer = browser.answer_offer(now, &webrtc_offer);
    let sip_answer = bridge.apply_webrtc_answer(now, &answer).expect("answer");
    assert!(
        sip_answer.contains("m=audio 41004 RTP/SAVP 0"),
        "{sip_answer}"
    );
    let ours = sip_answer
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:"))
        .expect("our a=crypto in the answer");
    assert!(
        ours.starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{ours}"
    );
    assert_ne!(ours, PEER_CRYPTO, "we must not echo the peer's key");

    let peer_key = CryptoAttribute::parse(PEER_CRYPTO).unwrap();
    let our_key = CryptoAttribute::parse(ours).unwrap();
    // The peer encrypts with its key; the bridge decrypts with it (and would encrypt toward
    // the peer with ours).
    let mut peer = SdesSrtp::new(&peer_key, &our_key).unwrap();
    let local = addr("127.0.0.1:41004");
    let from = addr("127.0.0.1:42000");
    for seq in 0..20u16 {
        let plain = plain_rtp(
            0,
            1000 + seq,
            160 * u32::from(seq),
            0x5151_5151,
            false,
            &[0x7f; 160],
        );
        let mut out = [0u8; 512];
        let n = peer.protect_rtp(&plain, &mut out).unwrap();
        bridge
            .handle_rtp_datagram(now, local, from, &mut out[..n])
            .expect("SRTP from the peer is accepted");
    }
    assert_eq!(bridge.stats().sip.packets_received, 20);
    // A packet under a key nobody agreed on is refused and not counted.
    let stranger = CryptoAttribute::parse(
        "1 AES_CM_128_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk",
    )
    .unwrap();
    let mut forger = SdesSrtp::new(&stranger, &our_key).unwrap();
    let plain = plain_rtp(0, 1020, 3200, 0x5151_5151, false, &[0x7f; 160]);
    let mut out = [0u8; 512];
    let n = forger.protect_rtp(&plain, &mut out).unwrap();
    assert!(bridge
        .handle_rtp_datagram(now, local, from, &mut out[..n])
        .is_err());
    assert_eq!(bridge.stats().sip.packets_received, 20);
}

#[test]
fn plain_offers_stay_plain() {
    let now = Instant::now();
    let offer = savp_offer()
        .replace("RTP/SAVP", "RTP/AVP")
        .replace(&format!("a=crypto:{PEER_CRYPTO}\r\n"), "");
    let (mut bridge, webrtc_offer) =
        Bridge::new_offerer(now, bridge_config(now, 22), &offer).expect("new_offerer");
    let mut browser = BrowserPeer::new(now, 0x0B0B_0004);
    let answer = browser.answer_offer(now, &webrtc_offer);
    let sip_answer = bridge.apply_webrtc_answer(now, &answer).expect("answer");
    assert!(
        sip_answer.contains("RTP/AVP 0") && !sip_answer.contains("a=crypto"),
        "{sip_answer}"
    );
}
