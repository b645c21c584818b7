// Arbitrary bytes through the SDP parser and every translation direction.
// Run: `cd fuzz && cargo +nightly fuzz run sdp_translate`
//
// The body of fuzz target `sdp_translate`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/sdp_translate.rs`) and the stable harness (`tests/fuzz_stable.rs`).

use std::net::{IpAddr, Ipv4Addr};

use media::sdp::{
    finalize_browser_sdp, sip_answer_to_negotiated, sip_offer_answered, sip_offer_to_negotiated,
    webrtc_answer_to_sip_answer, webrtc_offer_to_sip_offer, LocalOrigin, SessionDescription,
    SipLocalMedia, SipLocalMediaLine,
};

/// One input: must not panic.
pub fn run(data: &[u8]) {
    let Ok(sdp) = SessionDescription::parse(data) else {
        return;
    };
    let local = SipLocalMedia {
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        rtcp_mux: data.len() % 2 == 0,
        lines: (0..sdp.media.len())
            .map(|i| SipLocalMediaLine {
                rtp_port: 40_000 + 2 * i as u16,
                cryptos: Vec::new(),
            })
            .collect(),
        codecs: SipLocalMedia::default_codecs(),
    };
    let mut origin = LocalOrigin::new(1, 1);
    if let Ok(offer) = webrtc_offer_to_sip_offer(&sdp, &local, &mut origin) {
        let text = offer.to_sdp_string();
        let reparsed =
            SessionDescription::parse(text.as_bytes()).expect("our own SIP offer parses");
        assert_eq!(reparsed, offer, "serializer and parser agree");
        let _ = sip_answer_to_negotiated(&offer, &sdp);
    }
    let _ = sip_offer_to_negotiated(&sdp, &local.codecs);
    let _ = sip_answer_to_negotiated(&sdp, &sdp);
    if let Ok(answer) = webrtc_answer_to_sip_answer(&sdp, &sdp, &local, &mut origin) {
        let _ = sip_offer_answered(&sdp, &answer);
    }
    let mut browser = sdp.clone();
    finalize_browser_sdp(&mut browser, &[]);
    let _ = SessionDescription::parse(browser.to_sdp_string().as_bytes());
}
