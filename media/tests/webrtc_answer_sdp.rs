//! The answer the WebRTC leg writes to real browser offers (Chrome, Firefox, Safari, aiortc
//! fixtures), checked line by line against JSEP (RFC 8829 sec. 5.3) and the rules the
//! browsers enforce: same m-lines in the same order with their mids, the accepted ones in
//! one BUNDLE group (RFC 8843), ICE credentials (RFC 8839 sec. 5.4), a sha-256 fingerprint
//! (RFC 8122), `a=setup:active` to an actpass offer (RFC 5763 sec. 5), rtcp-mux, our host
//! candidate and end-of-candidates, and nothing the bridge cannot honour (no extmap, no
//! transport-cc, no RTX).

mod bridge_sim;

use std::time::Instant;

use bridge_sim::*;
use media::bridge::Bridge;
use media::sdp::SessionDescription;

const SIP_AUDIO_VIDEO: &str = "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 42000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\nm=video 42002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 nack pli\r\n";

fn fixture_text(fixture: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/sdp/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).expect("fixture")
}

fn answer_to(fixture: &str) -> (SessionDescription, SessionDescription) {
    answer_to_text(fixture, &fixture_text(fixture))
}

fn answer_to_text(fixture: &str, offer_text: &str) -> (SessionDescription, SessionDescription) {
    let _ = fixture;
    let now = Instant::now();
    let mut config = bridge_config(now, 3);
    config.sip_video_local = Some(addr("127.0.0.1:41006"));
    let (mut bridge, _sip_offer) =
        Bridge::new_answerer(now, config, offer_text).expect("new_answerer");
    let answer = bridge
        .apply_sip_answer(now, SIP_AUDIO_VIDEO)
        .expect("apply_sip_answer");
    let offer = SessionDescription::parse(offer_text.as_bytes()).expect("offer parses");
    let answer = SessionDescription::parse(answer.as_bytes()).expect("answer parses");
    (offer, answer)
}

fn check_answer(fixture: &str, expect_video: bool) {
    let (offer, answer) = answer_to(fixture);
    check(fixture, &offer, &answer, expect_video);
}

fn check(
    fixture: &str,
    offer: &SessionDescription,
    answer: &SessionDescription,
    expect_video: bool,
) {
    assert_eq!(
        answer.media.len(),
        offer.media.len(),
        "{fixture}: m-line count"
    );
    let mut accepted = Vec::new();
    for (i, (o, a)) in offer.media.iter().zip(&answer.media).enumerate() {
        assert_eq!(o.kind, a.kind, "{fixture}: m-line {i} kind");
        assert_eq!(o.mid(), a.mid(), "{fixture}: m-line {i} mid");
        if a.port == 0 {
            continue;
        }
        accepted.push(a.mid().unwrap_or_default().to_owned());
        assert_eq!(a.protocol, "UDP/TLS/RTP/SAVPF", "{fixture}");
        let (ufrag, pwd) = answer.ice_credentials(i).expect("ICE credentials");
        assert!(
            ufrag.len() >= 4 && pwd.len() >= 22,
            "{fixture}: RFC 8839 lengths"
        );
        let fp = answer.fingerprint(i).expect("fingerprint");
        assert_eq!(fp.hash_function, "sha-256");
        assert_eq!(fp.value.split(':').count(), 32, "{fixture}: {}", fp.value);
        assert_eq!(a.setup(), Some("active"), "{fixture}");
        assert!(a.has_attribute("rtcp-mux"), "{fixture}");
        assert!(
            a.candidates().any(|c| c.contains(" 41002 typ host")),
            "{fixture}"
        );
        assert!(a.has_end_of_candidates(), "{fixture}");
        assert!(a.has_attribute("sendrecv"), "{fixture}");
        assert!(
            !a.has_attribute("extmap"),
            "{fixture}: no header extensions"
        );
        assert!(a.rtcp_feedback(0).all(|f| f != "transport-cc"), "{fixture}");
        assert!(
            !a.codecs().iter().any(|c| c.is_repair()),
            "{fixture}: no RTX/FEC"
        );
        // Every answered payload type was offered with the same codec (RFC 3264 sec. 6.1).
        for c in a.codecs() {
            let offered = o.codec(c.payload_type).expect("answered PT was offered");
            assert!(
                offered.same_encoding(&c),
                "{fixture}: PT {}",
                c.payload_type
            );
        }
        assert_eq!(a.ssrcs().len(), 1, "{fixture}: one SSRC per stream we send");
    }
    assert_eq!(answer.bundle_group(), accepted, "{fixture}: BUNDLE");
    let video = answer
        .media
        .iter()
        .any(|m| m.kind == media::sdp::MediaType::Video && m.port != 0);
    assert_eq!(video, expect_video, "{fixture}: video accepted");
}

#[test]
fn chrome_offer_is_answered_with_audio_and_video() {
    check_answer("chrome_offer.sdp", true);
}

#[test]
fn a_data_channel_is_rejected_and_left_out_of_the_bundle() {
    let text = fixture_text("chrome_offer.sdp")
        .replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2")
        .trim_end()
        .to_owned()
        + "\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
           a=mid:2\r\na=sctp-port:5000\r\n";
    let (offer, answer) = answer_to_text("chrome + data channel", &text);
    check("chrome + data channel", &offer, &answer, true);
    let data = answer.media.get(2).expect("third m-line kept");
    assert_eq!(data.port, 0);
    assert_eq!(data.mid(), Some("2"));
}

#[test]
fn firefox_offer_is_answered_with_audio_and_video() {
    check_answer("firefox_offer.sdp", true);
}

#[test]
fn safari_offer_is_answered_with_audio_and_video() {
    check_answer("safari_offer.sdp", true);
}

#[test]
fn aiortc_offer_is_answered_with_audio_and_video() {
    check_answer("aiortc_offer.sdp", true);
}
