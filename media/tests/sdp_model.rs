//! The SDP model's typed accessors on real browser SDPs: BUNDLE, ICE, DTLS, ssrc, extmap,
//! msid, rtcp-fb, and attribute fallbacks from media to session level.

use media::sdp::{ExtMap, Fingerprint, MediaDirection, MediaType, SessionDescription};

fn fixture(name: &str) -> SessionDescription {
    let path = format!("{}/tests/fixtures/sdp/{name}", env!("CARGO_MANIFEST_DIR"));
    SessionDescription::parse(&std::fs::read(&path).expect("fixture")).expect("parses")
}

#[test]
fn chrome_offer_accessors() {
    let sdp = fixture("chrome_offer.sdp");
    assert_eq!(sdp.origin.session_id, 4_611_731_400_430_051_336);
    assert_eq!(sdp.bundle_group(), ["0", "1"]);
    assert_eq!(sdp.media.len(), 2);
    let audio = &sdp.media[0];
    assert_eq!(
        (audio.kind.clone(), audio.port, audio.protocol.as_str()),
        (MediaType::Audio, 9, "UDP/TLS/RTP/SAVPF")
    );
    assert_eq!(audio.mid(), Some("0"));
    assert_eq!(
        sdp.ice_credentials(0),
        Some(("EsAw", "P2uYro0UCOQ4zxjKXaWCBui1"))
    );
    assert_eq!(
        sdp.fingerprint(0),
        Some(Fingerprint {
            hash_function: "sha-256",
            value: "D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F"
        })
    );
    assert_eq!(audio.setup(), Some("actpass"));
    assert_eq!(audio.candidates().count(), 2);
    assert!(audio
        .candidates()
        .next()
        .is_some_and(|c| c.ends_with("typ host generation 0 network-id 1")));
    assert!(!audio.has_end_of_candidates());
    assert!(audio.has_attribute("rtcp-mux"));
    assert_eq!(audio.rtcp().map(|r| r.port), Some(9));
    assert_eq!(audio.ssrcs(), [3_735_928_559]);
    assert_eq!(
        audio.msid(),
        Some((
            "7d4a9c1e-6f0b-4a8e-9b1f-3c2d5e6f7a8b",
            Some("1f2e3d4c-5b6a-4789-8a9b-0c1d2e3f4a5b")
        ))
    );
    assert_eq!(
        audio.extmaps()[0],
        ExtMap {
            id: 1,
            direction: None,
            uri: "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
        }
    );
    assert_eq!(
        audio.rtcp_feedback(111).collect::<Vec<_>>(),
        ["transport-cc"]
    );
    assert_eq!(sdp.media_direction(0), MediaDirection::SendRecv);
    let opus = audio.codec(111).expect("opus");
    assert_eq!(
        (opus.name.as_str(), opus.clock_rate, opus.channels),
        ("opus", 48000, 2)
    );
    assert_eq!(opus.fmtp_param("useinbandfec"), Some("1"));

    let video = &sdp.media[1];
    assert_eq!(
        video.ssrc_groups(),
        [("FID", vec![2_882_400_001, 2_882_400_002])]
    );
    assert_eq!(video.ssrcs(), [2_882_400_001, 2_882_400_002]);
    assert_eq!(
        video.rtcp_feedback(96).collect::<Vec<_>>(),
        ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"]
    );
    let rtx = video.codec(97).expect("rtx");
    assert!(rtx.is_repair());
    assert_eq!(rtx.fmtp_param("apt"), Some("96"));
    assert_eq!(video.codecs().len(), 15);
}

#[test]
fn firefox_session_level_fingerprint_and_extmap_direction() {
    let sdp = fixture("firefox_offer.sdp");
    // Firefox puts the fingerprint at session level; it applies to every m-line.
    assert_eq!(sdp.fingerprint(1).map(|f| f.hash_function), Some("sha-256"));
    assert_eq!(
        sdp.ice_credentials(1),
        Some(("4f3c2a1b", "b1b9ad22bd4b2a0b1f6a3c3f4d5e6f70"))
    );
    let audio = &sdp.media[0];
    assert_eq!(
        audio.extmaps()[1],
        ExtMap {
            id: 2,
            direction: Some(MediaDirection::RecvOnly),
            uri: "urn:ietf:params:rtp-hdrext:csrc-audio-level"
        }
    );
    // rtpmap with explicit channel count "/1".
    assert_eq!(audio.codec(9).map(|c| c.channels), Some(1));
    assert_eq!(audio.codec(101).map(|c| c.is_telephone_event()), Some(true));
}

#[test]
fn static_payload_types_without_rtpmap_use_rfc3551() {
    let sdp = SessionDescription::parse(
        b"v=0\no=- 1 1 IN IP4 192.0.2.1\ns=\nc=IN IP4 192.0.2.1\nm=audio 5000 RTP/AVP 0 8 9 18 96\n",
    )
    .expect("bare LF, empty s=, no t= are tolerated");
    let names: Vec<(u8, String, u32)> = sdp.media[0]
        .codecs()
        .into_iter()
        .map(|c| (c.payload_type, c.name, c.clock_rate))
        .collect();
    // G.722 is 8000 on the wire clock (RFC 3551 section 4.5.2); 96 has no rtpmap and is skipped.
    assert_eq!(
        names,
        [
            (0, "PCMU".into(), 8000),
            (8, "PCMA".into(), 8000),
            (9, "G722".into(), 8000),
            (18, "G729".into(), 8000)
        ]
    );
    assert_eq!(sdp.session_name, "-");
    assert_eq!(sdp.timing, "0 0");
    assert!(sdp.bundle_group().is_empty());
    assert_eq!(sdp.ice_credentials(0), None);
}
