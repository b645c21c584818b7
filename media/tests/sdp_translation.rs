//! SDP translation table tests on real offers and answers: Chrome, Firefox, Safari and aiortc
//! on the WebRTC side; Asterisk, FreeSWITCH, baresip, Kamailio+rtpengine and SIPp on the SIP
//! side. Outputs are checked line by line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use media::sdp::{
    finalize_browser_sdp, intersect_codecs, sip_answer_to_negotiated, sip_offer_answered,
    sip_offer_to_negotiated, webrtc_answer_to_sip_answer, webrtc_offer_to_sip_offer,
    CryptoAttribute, CryptoSuite, LocalOrigin, MediaDirection, MediaType, SdpError,
    SessionDescription, SipLocalMedia, SipLocalMediaLine,
};

const MEDIA_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 5));

fn fixture(name: &str) -> SessionDescription {
    let path = format!("{}/tests/fixtures/sdp/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    SessionDescription::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn local_media(lines: usize, rtcp_mux: bool) -> SipLocalMedia {
    SipLocalMedia {
        address: MEDIA_IP,
        rtcp_mux,
        lines: (0..lines)
            .map(|i| SipLocalMediaLine {
                rtp_port: 40000 + 2 * i as u16,
                cryptos: Vec::new(),
            })
            .collect(),
        codecs: SipLocalMedia::default_codecs(),
    }
}

/// The text lines of media section `index` (its `m=` line first), from the serialized SDP.
fn section_lines(sdp: &str, index: usize) -> Vec<String> {
    let mut sections: Vec<Vec<String>> = vec![Vec::new()];
    for line in sdp.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with("m=") {
            sections.push(Vec::new());
        }
        if let Some(last) = sections.last_mut() {
            last.push(line.to_owned());
        }
    }
    sections.get(index + 1).cloned().unwrap_or_default()
}

fn session_lines(sdp: &str) -> Vec<String> {
    sdp.split("\r\n")
        .take_while(|l| !l.starts_with("m="))
        .map(str::to_owned)
        .collect()
}

/// Attribute names that mean nothing on a plain RTP leg and must never reach a SIP peer.
const WEBRTC_ONLY: &[&str] = &[
    "a=ice-",
    "a=candidate",
    "a=end-of-candidates",
    "a=fingerprint",
    "a=setup",
    "a=mid",
    "a=extmap",
    "a=rtcp-fb",
    "a=ssrc",
    "a=msid",
    "a=group",
    "a=rid",
    "a=simulcast",
    "a=rtcp-rsize",
    "a=bundle-only",
    "a=sctp",
];

fn assert_no_webrtc_lines(sdp: &str) {
    for line in sdp.split("\r\n") {
        for bad in WEBRTC_ONLY {
            assert!(
                !line.starts_with(bad),
                "WebRTC-only line leaked into SIP SDP: {line}"
            );
        }
    }
}

struct WebrtcOfferCase {
    fixture: &'static str,
    audio_formats: &'static str,
    video_formats: &'static str,
    opus_fmtp: Option<&'static str>,
}

const WEBRTC_OFFERS: &[WebrtcOfferCase] = &[
    WebrtcOfferCase {
        fixture: "chrome_offer.sdp",
        // red 63 dropped; telephone-event at both rates kept, in order.
        audio_formats: "111 9 0 8 13 110 126",
        // rtx, red, ulpfec, VP9 and AV1 dropped; H.264 both packetization modes kept.
        video_formats: "96 102 127",
        opus_fmtp: Some("a=fmtp:111 minptime=10;useinbandfec=1"),
    },
    WebrtcOfferCase {
        fixture: "firefox_offer.sdp",
        audio_formats: "109 9 0 8 101",
        video_formats: "120 126 97",
        opus_fmtp: Some("a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1"),
    },
    WebrtcOfferCase {
        fixture: "safari_offer.sdp",
        audio_formats: "111 9 0 8 13 110 126",
        // H.264 stays first: Safari's preference order is kept.
        video_formats: "96 98 100",
        opus_fmtp: Some("a=fmtp:111 minptime=10;useinbandfec=1"),
    },
    WebrtcOfferCase {
        fixture: "aiortc_offer.sdp",
        audio_formats: "96 0 8",
        video_formats: "97 99 101",
        opus_fmtp: None,
    },
];

#[test]
fn webrtc_offers_become_plain_rtp_sip_offers() {
    for case in WEBRTC_OFFERS {
        let offer = fixture(case.fixture);
        let mut origin = LocalOrigin::new(777, 1);
        let sip = webrtc_offer_to_sip_offer(&offer, &local_media(2, false), &mut origin)
            .unwrap_or_else(|e| panic!("{}: {e}", case.fixture));
        let text = sip.to_sdp_string();
        assert_no_webrtc_lines(&text);
        assert_eq!(
            session_lines(&text),
            [
                "v=0",
                "o=- 777 1 IN IP4 198.51.100.5",
                "s=sylk-gateway",
                "c=IN IP4 198.51.100.5",
                "t=0 0"
            ],
            "{}",
            case.fixture
        );
        let audio = section_lines(&text, 0);
        assert_eq!(
            audio[0],
            format!("m=audio 40000 RTP/AVP {}", case.audio_formats),
            "{}",
            case.fixture
        );
        let video = section_lines(&text, 1);
        assert_eq!(
            video[0],
            format!("m=video 40002 RTP/AVP {}", case.video_formats),
            "{}",
            case.fixture
        );
        for (lines, rtcp) in [(&audio, "a=rtcp:40001"), (&video, "a=rtcp:40003")] {
            assert!(
                lines.iter().any(|l| l == rtcp),
                "{}: {rtcp} missing in {lines:?}",
                case.fixture
            );
            assert!(!lines.iter().any(|l| l == "a=rtcp-mux"), "{}", case.fixture);
            assert_eq!(
                lines.iter().filter(|l| *l == "a=sendrecv").count(),
                1,
                "{}",
                case.fixture
            );
            // Every payload type on the m= line has its rtpmap, nothing else has one.
            let pts: Vec<&str> = lines[0].split(' ').skip(3).collect();
            let maps: Vec<&str> = lines
                .iter()
                .filter_map(|l| l.strip_prefix("a=rtpmap:"))
                .filter_map(|v| v.split(' ').next())
                .collect();
            assert_eq!(pts, maps, "{}", case.fixture);
        }
        if let Some(fmtp) = case.opus_fmtp {
            assert!(
                audio.iter().any(|l| l == fmtp),
                "{}: {fmtp} missing",
                case.fixture
            );
        }
        // What we write, we parse back to the same model.
        let reparsed = SessionDescription::parse(text.as_bytes()).expect("own output parses");
        assert_eq!(reparsed, sip, "{}", case.fixture);
    }
}

#[test]
fn chrome_offer_keeps_h264_modes_and_telephone_event_rates() {
    let sip = webrtc_offer_to_sip_offer(
        &fixture("chrome_offer.sdp"),
        &local_media(2, false),
        &mut LocalOrigin::new(1, 1),
    )
    .expect("translates");
    let text = sip.to_sdp_string();
    let audio = section_lines(&text, 0);
    for expected in [
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:110 telephone-event/48000",
        "a=rtpmap:126 telephone-event/8000",
    ] {
        assert!(
            audio.iter().any(|l| l == expected),
            "{expected} missing in {audio:?}"
        );
    }
    let video = section_lines(&text, 1);
    assert!(video.contains(
        &"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"
            .to_owned()
    ));
    assert!(video.contains(
        &"a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f"
            .to_owned()
    ));
    assert!(
        !video.iter().any(|l| l.contains("apt=")),
        "rtx fmtp leaked: {video:?}"
    );
}

#[test]
fn rtcp_mux_and_sdes_are_offered_only_when_configured() {
    let offer = fixture("chrome_offer.sdp");
    let key =
        CryptoAttribute::new(1, CryptoSuite::AesCm128HmacSha1_80, &[7u8; 30]).expect("30-byte key");
    let gcm = CryptoAttribute::new(2, CryptoSuite::AeadAes128Gcm, &[9u8; 28]).expect("28-byte key");
    let mut local = local_media(2, true);
    local.lines[0].cryptos = vec![gcm.clone(), key.clone()];
    let text = webrtc_offer_to_sip_offer(&offer, &local, &mut LocalOrigin::new(1, 1))
        .expect("translates")
        .to_sdp_string();
    let audio = section_lines(&text, 0);
    assert!(
        audio[0].starts_with("m=audio 40000 RTP/SAVP 111 "),
        "{}",
        audio[0]
    );
    assert!(audio.contains(&"a=rtcp-mux".to_owned()));
    assert!(!audio.iter().any(|l| l.starts_with("a=rtcp:")), "{audio:?}");
    assert!(audio.contains(&format!("a=crypto:{}", gcm.to_value())));
    assert!(audio.contains(&format!("a=crypto:{}", key.to_value())));
    assert!(audio.contains(
        &"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH"
            .to_owned()
    ));
    // Video had no keys configured: plain RTP/AVP.
    assert!(section_lines(&text, 1)[0].starts_with("m=video 40002 RTP/AVP "));
}

#[test]
fn hold_rejected_lines_and_data_channels_are_preserved_and_version_increments() {
    let mut offer = fixture("chrome_offer.sdp");
    offer.media[0].set_direction(MediaDirection::SendOnly);
    offer.media[1].port = 0;
    let mut dc = SessionDescription::parse(
        b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=sctp-port:5000\r\n",
    )
    .expect("parses");
    offer.media.push(dc.media.remove(0));
    let mut origin = LocalOrigin::new(42, 5);
    let first =
        webrtc_offer_to_sip_offer(&offer, &local_media(3, false), &mut origin).expect("translates");
    let text = first.to_sdp_string();
    assert!(section_lines(&text, 0).contains(&"a=sendonly".to_owned()));
    assert_eq!(
        section_lines(&text, 1),
        ["m=video 0 RTP/AVP 96 98 100 102 127 35"]
    );
    assert_eq!(
        section_lines(&text, 2),
        ["m=application 0 UDP/DTLS/SCTP webrtc-datachannel"]
    );
    assert_eq!(first.origin.session_version, 5);
    offer.media[0].set_direction(MediaDirection::Inactive);
    let second =
        webrtc_offer_to_sip_offer(&offer, &local_media(3, false), &mut origin).expect("translates");
    assert_eq!(
        (second.origin.session_id, second.origin.session_version),
        (42, 6)
    );
    assert!(section_lines(&second.to_sdp_string(), 0).contains(&"a=inactive".to_owned()));
}

struct SipAnswerCase {
    fixture: &'static str,
    audio: Option<(&'static str, u16, Option<SocketAddr>, MediaDirection)>,
    audio_codecs: &'static [&'static str],
    telephone_event: Option<u8>,
    video_rejected: bool,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

#[test]
fn sip_answers_to_a_chrome_offer_negotiate_what_the_webrtc_leg_applies() {
    let cases = [
        SipAnswerCase {
            fixture: "asterisk_answer.sdp",
            audio: Some((
                "192.0.2.20",
                18404,
                Some(addr("192.0.2.20:18405")),
                MediaDirection::SendRecv,
            )),
            audio_codecs: &["PCMU", "telephone-event"],
            telephone_event: Some(126),
            video_rejected: true,
        },
        SipAnswerCase {
            fixture: "freeswitch_answer.sdp",
            // a=rtcp with an explicit address (RFC 3605).
            audio: Some((
                "192.0.2.30",
                24578,
                Some(addr("192.0.2.31:24579")),
                MediaDirection::SendRecv,
            )),
            audio_codecs: &["opus", "telephone-event"],
            telephone_event: Some(126),
            video_rejected: false,
        },
        SipAnswerCase {
            fixture: "rtpengine_answer.sdp",
            audio: Some((
                "192.0.2.50",
                30110,
                Some(addr("192.0.2.50:30111")),
                MediaDirection::RecvOnly,
            )),
            audio_codecs: &["PCMA", "telephone-event"],
            telephone_event: Some(126),
            video_rejected: true,
        },
    ];
    let chrome = fixture("chrome_offer.sdp");
    let our_offer =
        webrtc_offer_to_sip_offer(&chrome, &local_media(2, false), &mut LocalOrigin::new(1, 1))
            .expect("offer");
    for case in cases {
        let answer = fixture(case.fixture);
        let n = sip_answer_to_negotiated(&our_offer, &answer)
            .unwrap_or_else(|e| panic!("{}: {e}", case.fixture));
        assert_eq!(n.media.len(), 2, "{}", case.fixture);
        let audio = &n.media[0];
        let (ip, port, rtcp, direction) = case.audio.expect("audio expected");
        assert!(!audio.rejected, "{}", case.fixture);
        assert_eq!(audio.kind, MediaType::Audio);
        assert_eq!(
            audio.remote_rtp,
            Some(SocketAddr::new(ip.parse().expect("ip"), port)),
            "{}",
            case.fixture
        );
        assert_eq!(audio.remote_rtcp, rtcp, "{}", case.fixture);
        assert_eq!(audio.direction, direction, "{}", case.fixture);
        assert!(!audio.rtcp_mux);
        let names: Vec<&str> = audio.codecs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, case.audio_codecs, "{}", case.fixture);
        assert_eq!(
            audio.telephone_event_pt, case.telephone_event,
            "{}",
            case.fixture
        );
        assert_eq!(n.media[1].rejected, case.video_rejected, "{}", case.fixture);
    }
}

#[test]
fn sipp_echo_answers_telephone_event_101_to_an_offer_of_126() {
    // SIPp's uas_echo.xml answers a fixed SDP; its telephone-event PT 101 was never offered.
    // The encoding matches, so the bridge must accept it and remap 101 <-> 126 on the wire.
    let our_offer = webrtc_offer_to_sip_offer(
        &fixture("aiortc_offer.sdp"),
        &local_media(2, false),
        &mut LocalOrigin::new(1, 1),
    )
    .expect("offer");
    let mut answer = fixture("sipp_uas_echo_answer.sdp");
    answer.media.push(media::sdp::MediaSection::new(
        MediaType::Video,
        0,
        "RTP/AVP",
        vec!["97".into()],
    ));
    // aiortc offered no telephone-event, so 101 is not common: only PCMU remains.
    let n = sip_answer_to_negotiated(&our_offer, &answer).expect("negotiates");
    let pts: Vec<u8> = n.media[0].codecs.iter().map(|c| c.payload_type).collect();
    assert_eq!(pts, [0]);
    assert_eq!(n.media[0].remote_rtp, Some(addr("127.0.0.1:6000")));

    let chrome_offer = webrtc_offer_to_sip_offer(
        &fixture("chrome_offer.sdp"),
        &local_media(2, false),
        &mut LocalOrigin::new(1, 1),
    )
    .expect("offer");
    let n = sip_answer_to_negotiated(&chrome_offer, &answer).expect("negotiates");
    assert_eq!(n.media[0].telephone_event_pt, Some(101));
}

#[test]
fn sip_offers_become_negotiated_media_for_the_browser_offer() {
    let n = sip_offer_to_negotiated(
        &fixture("freeswitch_offer_sdes.sdp"),
        &SipLocalMedia::default_codecs(),
    )
    .expect("negotiates");
    let audio = &n.media[0];
    let pts: Vec<u8> = audio.codecs.iter().map(|c| c.payload_type).collect();
    assert_eq!(pts, [9, 0, 8, 101, 13]);
    assert_eq!(audio.telephone_event_pt, Some(101));
    assert_eq!(audio.remote_rtp, Some(addr("192.0.2.30:21846")));
    assert_eq!(audio.remote_rtcp, Some(addr("192.0.2.30:21847")));
    assert_eq!(audio.ptime, Some(20));
    // The unsupported AEAD_AES_256_GCM_8 line is skipped; the first usable key is tag 2.
    let crypto = audio.remote_crypto.as_ref().expect("sdes key");
    assert_eq!(
        (crypto.tag, crypto.suite),
        (2, CryptoSuite::AesCm128HmacSha1_80)
    );
    assert_eq!(crypto.master_key().len(), 16);
    assert_eq!(crypto.master_salt().len(), 14);

    let n = sip_offer_to_negotiated(
        &fixture("baresip_offer.sdp"),
        &SipLocalMedia::default_codecs(),
    )
    .expect("negotiates");
    assert!(n.media[0].rtcp_mux);
    assert_eq!(n.media[0].remote_rtcp, None);
    assert_eq!(n.media[0].codecs[0].name, "opus");
    assert_eq!(n.media[0].codecs[0].payload_type, 116);
    assert_eq!(
        n.media[0].codecs[0].fmtp.as_deref(),
        Some("stereo=1;sprop-stereo=1")
    );
    let video: Vec<(u8, &str)> = n.media[1]
        .codecs
        .iter()
        .map(|c| (c.payload_type, c.name.as_str()))
        .collect();
    assert_eq!(video, [(100, "H264"), (97, "VP8")]);
    assert_eq!(n.media[1].remote_rtcp, Some(addr("192.0.2.40:10237")));

    let n = sip_offer_to_negotiated(
        &fixture("rtpengine_offer.sdp"),
        &SipLocalMedia::default_codecs(),
    )
    .expect("negotiates");
    assert_eq!(n.media[0].direction, MediaDirection::SendOnly);
    assert_eq!(n.media[1].kind, MediaType::Other("image".into()));
    assert!(n.media[1].rejected);
}

#[test]
fn webrtc_answer_becomes_sip_answer_with_sdes_and_offer_payload_types() {
    let sip_offer = fixture("freeswitch_offer_sdes.sdp");
    let browser_answer = fixture("chrome_answer_to_sdes_offer.sdp");
    let mut local = local_media(1, true);
    let ours = CryptoAttribute::new(9, CryptoSuite::AesCm128HmacSha1_80, &[3u8; 30]).expect("key");
    local.lines[0].cryptos = vec![ours.clone()];
    let answer = webrtc_answer_to_sip_answer(
        &browser_answer,
        &sip_offer,
        &local,
        &mut LocalOrigin::new(5, 1),
    )
    .expect("answers");
    let text = answer.to_sdp_string();
    assert_no_webrtc_lines(&text);
    let audio = section_lines(&text, 0);
    assert_eq!(audio[0], "m=audio 40000 RTP/SAVP 0 8 13 101");
    // The peer did not offer rtcp-mux, so it is not answered even though we allow it.
    assert!(audio.contains(&"a=rtcp:40001".to_owned()));
    assert!(!audio.contains(&"a=rtcp-mux".to_owned()));
    // Our key, under the tag of the crypto line we accepted (RFC 4568 section 7.1.2).
    let mut expected = ours;
    expected.tag = 2;
    assert!(
        audio.contains(&format!("a=crypto:{}", expected.to_value())),
        "{audio:?}"
    );
    assert_eq!(
        audio.iter().filter(|l| l.starts_with("a=crypto")).count(),
        1
    );
    assert!(audio.contains(&"a=ptime:20".to_owned()));
    assert!(audio.contains(&"a=sendrecv".to_owned()));

    // What the RTP leg is configured with: the peer's key for tag 2, our key, the answer's codecs.
    let n = sip_offer_answered(&sip_offer, &answer).expect("consistent");
    let audio = &n.media[0];
    let pts: Vec<u8> = audio.codecs.iter().map(|c| c.payload_type).collect();
    assert_eq!(pts, [0, 8, 13, 101]);
    assert_eq!(
        audio.remote_crypto.as_ref().map(|c| (c.tag, c.suite)),
        Some((2, CryptoSuite::AesCm128HmacSha1_80))
    );
    assert_eq!(
        audio.local_crypto.as_ref().map(|c| c.master_key()),
        Some(&[3u8; 16][..])
    );
    assert_eq!(
        audio.remote_rtcp,
        Some("192.0.2.30:21847".parse().expect("addr"))
    );

    // Without a key for the peer's suite the answer cannot be built.
    local.lines[0].cryptos =
        vec![CryptoAttribute::new(1, CryptoSuite::AeadAes128Gcm, &[1u8; 28]).expect("key")];
    assert_eq!(
        webrtc_answer_to_sip_answer(
            &browser_answer,
            &sip_offer,
            &local,
            &mut LocalOrigin::new(5, 1)
        ),
        Err(SdpError::NoUsableCrypto { media_index: 0 })
    );
}

#[test]
fn sendonly_sip_offer_is_answered_recvonly_and_t38_rejected() {
    let sip_offer = fixture("rtpengine_offer.sdp");
    let browser_answer = fixture("chrome_answer_to_sdes_offer.sdp");
    let answer = webrtc_answer_to_sip_answer(
        &browser_answer,
        &sip_offer,
        &local_media(2, false),
        &mut LocalOrigin::new(5, 1),
    )
    .expect("answers");
    let text = answer.to_sdp_string();
    let audio = section_lines(&text, 0);
    assert_eq!(audio[0], "m=audio 40000 RTP/AVP 0 8 101");
    assert!(audio.contains(&"a=recvonly".to_owned()), "{audio:?}");
    assert_eq!(section_lines(&text, 1), ["m=image 0 udptl t38"]);
}

#[test]
fn offered_rtcp_mux_is_accepted_even_when_we_would_not_offer_it() {
    let sip_offer = fixture("baresip_offer.sdp");
    let n =
        sip_offer_to_negotiated(&sip_offer, &SipLocalMedia::default_codecs()).expect("negotiates");
    let browser_answer = fixture("chrome_answer_to_sdes_offer.sdp");
    let answer = webrtc_answer_to_sip_answer(
        &browser_answer,
        &sip_offer,
        &local_media(2, false),
        &mut LocalOrigin::new(5, 1),
    )
    .expect("answers");
    let text = answer.to_sdp_string();
    let audio = section_lines(&text, 0);
    assert_eq!(audio[0], "m=audio 40000 RTP/AVP 0 8 101");
    assert!(audio.contains(&"a=rtcp-mux".to_owned()), "{audio:?}");
    assert!(!audio.iter().any(|l| l.starts_with("a=rtcp:")), "{audio:?}");
    assert!(
        n.media[0].rtcp_mux,
        "what the leg is configured with matches the answer"
    );
    // The browser answered audio only: baresip's video is rejected in the SIP answer.
    assert_eq!(section_lines(&text, 1), ["m=video 0 RTP/AVP 100 97"]);
}

#[test]
fn no_common_codec_is_a_typed_error() {
    let g729_only = SessionDescription::parse(
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 18 101\r\na=rtpmap:101 telephone-event/8000\r\n",
    )
    .expect("parses");
    assert_eq!(
        sip_offer_to_negotiated(&g729_only, &SipLocalMedia::default_codecs()),
        Err(SdpError::NoCommonCodec { media_index: 0 })
    );
    let offered = g729_only.media[0].codecs();
    assert_eq!(
        intersect_codecs(&offered, &SipLocalMedia::default_codecs(), 3),
        Err(SdpError::NoCommonCodec { media_index: 3 })
    );
    // An answer that picks a codec we never offered is refused as well.
    let our_offer = webrtc_offer_to_sip_offer(
        &fixture("aiortc_offer.sdp"),
        &local_media(2, false),
        &mut LocalOrigin::new(1, 1),
    )
    .expect("offer");
    let mut bad_answer = g729_only.clone();
    bad_answer.media.push(media::sdp::MediaSection::new(
        MediaType::Video,
        0,
        "RTP/AVP",
        vec!["97".into()],
    ));
    assert_eq!(
        sip_answer_to_negotiated(&our_offer, &bad_answer),
        Err(SdpError::NoCommonCodec { media_index: 0 })
    );
}

#[test]
fn answers_with_the_wrong_shape_are_refused() {
    let our_offer = webrtc_offer_to_sip_offer(
        &fixture("chrome_offer.sdp"),
        &local_media(2, false),
        &mut LocalOrigin::new(1, 1),
    )
    .expect("offer");
    // Fewer m= lines than offered (SIPp's canned answer): the missing video is rejected.
    let short = sip_answer_to_negotiated(&our_offer, &fixture("sipp_uas_echo_answer.sdp"))
        .expect("a short answer is read leniently");
    assert_eq!(short.media.len(), 2);
    assert!(!short.media[0].rejected);
    assert!(short.media[1].rejected);
    // More m= lines than offered cannot be matched up at all.
    let mut long = fixture("asterisk_answer.sdp");
    let extra = long.media[0].clone();
    long.media.push(extra);
    assert_eq!(
        sip_answer_to_negotiated(&our_offer, &long),
        Err(SdpError::MediaCountMismatch {
            offered: 2,
            answered: 3
        })
    );
    let mut swapped = fixture("asterisk_answer.sdp");
    swapped.media.swap(0, 1);
    assert_eq!(
        sip_answer_to_negotiated(&our_offer, &swapped),
        Err(SdpError::MediaTypeMismatch { media_index: 0 })
    );
}

#[test]
fn browser_sdp_gets_explicit_direction_and_end_of_candidates() {
    let mut sdp = fixture("rtc_answer_plain.sdp");
    finalize_browser_sdp(&mut sdp, &[]);
    let text = sdp.to_sdp_string();
    let audio = section_lines(&text, 0);
    assert_eq!(
        audio.iter().filter(|l| *l == "a=sendrecv").count(),
        1,
        "{audio:?}"
    );
    assert_eq!(
        audio.iter().filter(|l| *l == "a=end-of-candidates").count(),
        1
    );
    // The rejected video m-line is left alone.
    assert!(!section_lines(&text, 1)
        .iter()
        .any(|l| l == "a=sendrecv" || l == "a=end-of-candidates"));
    // Idempotent, and an explicit direction replaces the existing one in place.
    finalize_browser_sdp(&mut sdp, &[MediaDirection::RecvOnly]);
    let audio = section_lines(&sdp.to_sdp_string(), 0);
    assert!(audio.contains(&"a=recvonly".to_owned()));
    assert!(!audio.contains(&"a=sendrecv".to_owned()));
    assert_eq!(
        audio.iter().filter(|l| *l == "a=end-of-candidates").count(),
        1
    );
}

#[test]
fn hold_directions_are_mirrored_per_rfc3264_section_6_1() {
    use MediaDirection::*;
    let table = [
        (SendRecv, SendRecv, SendRecv),
        (SendRecv, RecvOnly, RecvOnly),
        (SendOnly, SendRecv, RecvOnly),
        (SendOnly, SendOnly, Inactive),
        (RecvOnly, SendRecv, SendOnly),
        (RecvOnly, RecvOnly, Inactive),
        (Inactive, SendRecv, Inactive),
    ];
    for (offered, wanted, answered) in table {
        assert_eq!(
            offered.answer_to(wanted),
            answered,
            "{offered:?} answered by one wanting {wanted:?}"
        );
    }
}

#[test]
fn parser_errors_are_typed() {
    let cases: &[(&[u8], SdpError)] = &[
        (b"", SdpError::BadVersion),
        (b"o=- 1 1 IN IP4 1.2.3.4\r\n", SdpError::BadVersion),
        (b"v=0\r\ns=-\r\n", SdpError::MissingOrigin),
        (
            b"v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n",
            SdpError::BadOrigin { line: 2 },
        ),
        (
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP9 x\r\n",
            SdpError::BadConnection { line: 3 },
        ),
        (
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 99999 RTP/AVP 0\r\n",
            SdpError::BadMedia { line: 3 },
        ),
        (
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 9 RTP/AVP\r\n",
            SdpError::BadMedia { line: 3 },
        ),
        (
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nthis is not sdp\r\n",
            SdpError::MalformedLine { line: 3 },
        ),
        (
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n\xff=1\r\n",
            SdpError::NotUtf8,
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            SessionDescription::parse(input).as_ref().err(),
            Some(expected),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let big = vec![b'a'; media::sdp::MAX_SDP_LEN + 1];
    assert_eq!(
        SessionDescription::parse(&big),
        Err(SdpError::TooLarge { len: big.len() })
    );
    let mut many = b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n".to_vec();
    for _ in 0..=media::sdp::MAX_MEDIA_SECTIONS {
        many.extend_from_slice(b"m=audio 0 RTP/AVP 0\r\n");
    }
    assert_eq!(
        SessionDescription::parse(&many),
        Err(SdpError::TooManyMediaSections)
    );
}

#[test]
fn crypto_attributes_round_trip_and_reject_bad_keys() {
    let line =
        "2 AES_CM_128_HMAC_SHA1_80 inline:JTA7RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllk|2^31 WSH=64";
    let c = CryptoAttribute::parse(line).expect("parses");
    assert_eq!(c.tag, 2);
    assert_eq!(
        c.to_value(),
        "2 AES_CM_128_HMAC_SHA1_80 inline:JTA7RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllk"
    );
    assert_eq!(CryptoAttribute::parse(&c.to_value()), Ok(c));
    for bad in [
        "x AES_CM_128_HMAC_SHA1_80 inline:JTA7RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllk",
        "1 F8_128_HMAC_SHA1_80 inline:JTA7RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllk",
        "1 AES_CM_128_HMAC_SHA1_80 inline:JTA7RlFcZ3J9",
        "1 AES_CM_128_HMAC_SHA1_80 JTA7RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllk",
        "1 AEAD_AES_128_GCM inline:JTA7RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllk",
        "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllk",
        // An MKI, which rtc::srtp cannot handle, and session parameters we cannot honour.
        "1 AES_CM_128_HMAC_SHA1_80 inline:JTA7RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllk|2^31|1:1",
        "1 AES_CM_128_HMAC_SHA1_80 inline:JTA7RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllk UNENCRYPTED_SRTP",
        "1 AES_CM_128_HMAC_SHA1_80 inline:JTA7RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllk KDR=1",
    ] {
        assert_eq!(
            CryptoAttribute::parse(bad),
            Err(SdpError::BadCrypto),
            "{bad}"
        );
    }
    let gcm = CryptoAttribute::parse(
        "1 AEAD_AES_128_GCM inline:b3qFkJumsbzH0t3o8/4JFB8qNUBLVmFsd4KNmA==",
    )
    .expect("gcm");
    assert_eq!((gcm.master_key().len(), gcm.master_salt().len()), (16, 12));
    assert!(
        format!("{gcm:?}").find("inline").is_none(),
        "keys must not appear in Debug output"
    );
}

#[test]
fn bandwidth_and_packet_time_limits_are_carried_to_the_sip_offer() {
    let mut offer = fixture("aiortc_offer.sdp");
    offer.media[1].bandwidths.push("TIAS:1500000".into());
    offer.media[0]
        .attributes
        .push(media::sdp::Attribute::new("ptime", "40"));
    offer.media[0]
        .attributes
        .push(media::sdp::Attribute::new("maxptime", "120"));
    let text =
        webrtc_offer_to_sip_offer(&offer, &local_media(2, false), &mut LocalOrigin::new(1, 1))
            .expect("translates")
            .to_sdp_string();
    let audio = section_lines(&text, 0);
    assert!(
        audio.contains(&"a=ptime:40".to_owned()) && audio.contains(&"a=maxptime:120".to_owned()),
        "{audio:?}"
    );
    // b= comes right after the m= line (RFC 8866 section 5 order).
    assert_eq!(section_lines(&text, 1)[1], "b=TIAS:1500000");
}

#[test]
fn ipv6_media_addresses_are_written_and_read() {
    let mut local = local_media(2, false);
    local.address = "2001:db8::5".parse().expect("v6");
    let offer = webrtc_offer_to_sip_offer(
        &fixture("chrome_offer.sdp"),
        &local,
        &mut LocalOrigin::new(3, 1),
    )
    .expect("translates");
    let text = offer.to_sdp_string();
    assert_eq!(session_lines(&text)[1], "o=- 3 1 IN IP6 2001:db8::5");
    assert_eq!(session_lines(&text)[3], "c=IN IP6 2001:db8::5");
    let answer = SessionDescription::parse(
        b"v=0\r\no=- 1 1 IN IP6 2001:db8::20\r\ns=-\r\nc=IN IP6 2001:db8::20\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=rtcp:7005 IN IP6 2001:db8::21\r\nm=video 0 RTP/AVP 96\r\n",
    )
    .expect("parses");
    let n = sip_answer_to_negotiated(&offer, &answer).expect("negotiates");
    assert_eq!(
        n.media[0].remote_rtp,
        Some("[2001:db8::20]:7000".parse().expect("addr"))
    );
    assert_eq!(
        n.media[0].remote_rtcp,
        Some("[2001:db8::21]:7005".parse().expect("addr"))
    );
}

/// Our RTP/SAVP offer (keys for tags 1..3, as the bridge writes it for media.sip_srtp) and
/// what each kind of answer to it negotiates: the answer names one of our lines by tag and
/// suite (RFC 4568 section 7.1.2) and keeps the profile (RFC 3264 section 6.1).
#[test]
fn answers_to_our_sdes_offer_pick_our_key_by_tag_or_fail_typed() {
    let ours = [
        CryptoAttribute::new(1, CryptoSuite::AesCm128HmacSha1_80, &[1u8; 30]).expect("key"),
        CryptoAttribute::new(2, CryptoSuite::AeadAes128Gcm, &[2u8; 28]).expect("key"),
        CryptoAttribute::new(3, CryptoSuite::AesCm128HmacSha1_32, &[3u8; 30]).expect("key"),
    ];
    let mut local = local_media(2, false);
    for line in &mut local.lines {
        line.cryptos = ours.to_vec();
    }
    let our_offer = webrtc_offer_to_sip_offer(
        &fixture("chrome_offer.sdp"),
        &local,
        &mut LocalOrigin::new(1, 1),
    )
    .expect("offer");
    let text = our_offer.to_sdp_string();
    let audio = section_lines(&text, 0);
    assert!(
        audio[0].starts_with("m=audio 40000 RTP/SAVP "),
        "{}",
        audio[0]
    );
    let cryptos: Vec<&String> = audio
        .iter()
        .filter(|l| l.starts_with("a=crypto:"))
        .collect();
    assert_eq!(cryptos.len(), 3, "{audio:?}");
    for (line, key) in cryptos.iter().zip(&ours) {
        assert_eq!(**line, format!("a=crypto:{}", key.to_value()));
    }
    assert!(section_lines(&text, 1)[0].starts_with("m=video 40002 RTP/SAVP "));

    // FreeSWITCH's SDES answer, with its crypto line and profile swapped per case.
    let base = std::fs::read_to_string(format!(
        "{}/tests/fixtures/sdp/freeswitch_answer_sdes.sdp",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    let peer = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:SlVga3aBjJeirbjDztnk7/oFEBsmMTxHUl1oc36J";
    assert!(base.contains(peer));
    let peer_gcm = CryptoAttribute::new(2, CryptoSuite::AeadAes128Gcm, &[8u8; 28]).expect("key");
    let peer_32 =
        CryptoAttribute::new(3, CryptoSuite::AesCm128HmacSha1_32, &[9u8; 30]).expect("key");
    let with = |crypto: &str| base.replace(peer, crypto);
    let plain = base
        .replace("RTP/SAVP", "RTP/AVP")
        .replace(&format!("{peer}\n"), "")
        .replace(&format!("{peer}\r\n"), "");
    type Want = Result<(u32, CryptoSuite, [u8; 1]), SdpError>;
    let cases: Vec<(&str, String, Want)> = vec![
        (
            "tag 1, AES_CM_80",
            base.clone(),
            Ok((1, CryptoSuite::AesCm128HmacSha1_80, [1])),
        ),
        (
            "tag 2, AEAD_AES_128_GCM",
            with(&format!("a=crypto:{}", peer_gcm.to_value())),
            Ok((2, CryptoSuite::AeadAes128Gcm, [2])),
        ),
        (
            "tag 3, AES_CM_32",
            with(&format!("a=crypto:{}", peer_32.to_value())),
            Ok((3, CryptoSuite::AesCm128HmacSha1_32, [3])),
        ),
        (
            "tag 2 with tag 1's suite",
            with(&peer.replace("crypto:1", "crypto:2")),
            Err(SdpError::NoUsableCrypto { media_index: 0 }),
        ),
        (
            "a tag we never offered",
            with(&peer.replace("crypto:1", "crypto:4")),
            Err(SdpError::NoUsableCrypto { media_index: 0 }),
        ),
        (
            "no crypto line",
            with("a=x-nothing"),
            Err(SdpError::NoUsableCrypto { media_index: 0 }),
        ),
        (
            "unparsable key",
            with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:!!!"),
            Err(SdpError::NoUsableCrypto { media_index: 0 }),
        ),
        (
            "plain RTP/AVP",
            plain,
            Err(SdpError::SrtpRefused { media_index: 0 }),
        ),
    ];
    for (what, answer_text, want) in cases {
        let answer = SessionDescription::parse(answer_text.as_bytes()).expect(what);
        let got = sip_answer_to_negotiated(&our_offer, &answer).map(|n| {
            let a = &n.media[0];
            assert!(!a.rejected, "{what}");
            assert!(n.media[1].rejected, "{what}: video port 0");
            let local = a.local_crypto.clone().expect("our key");
            let remote = a.remote_crypto.clone().expect("the peer's key");
            // Our key is ours, the peer's is what its answer carried under the same tag.
            assert_eq!(
                (remote.tag, remote.suite),
                (local.tag, local.suite),
                "{what}"
            );
            assert!(answer_text.contains(&remote.to_value()), "{what}");
            (local.tag, local.suite, [local.master_key()[0]])
        });
        assert_eq!(got, want, "{what}");
    }

    // The other way round: a plain offer answered with RTP/SAVP has keys we never offered.
    let plain_offer = webrtc_offer_to_sip_offer(
        &fixture("chrome_offer.sdp"),
        &local_media(2, false),
        &mut LocalOrigin::new(1, 1),
    )
    .expect("offer");
    assert_eq!(
        sip_answer_to_negotiated(
            &plain_offer,
            &SessionDescription::parse(base.as_bytes()).unwrap()
        ),
        Err(SdpError::UnexpectedSrtp { media_index: 0 })
    );
}
