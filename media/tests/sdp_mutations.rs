//! Many deterministic mutations of the real SDP fixtures through the parser and every
//! translation direction: nothing may panic, and what we serialize must parse back the same.

use std::net::{IpAddr, Ipv4Addr};

use media::sdp::{
    finalize_browser_sdp, sip_answer_to_negotiated, sip_offer_answered, sip_offer_to_negotiated,
    webrtc_answer_to_sip_answer, webrtc_offer_to_sip_offer, CryptoAttribute, CryptoSuite,
    LocalOrigin, SessionDescription, SipLocalMedia, SipLocalMediaLine,
};

/// xorshift64: deterministic, so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"=",
    b":",
    b" ",
    b"/",
    b"0",
    b"65535",
    b"99999999999999999999999",
    b"m=audio 0 RTP/AVP 0\r\n",
    b"a=rtpmap:",
    b"a=fmtp:",
    b"a=rtcp:",
    b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:",
    b"c=IN IP6 ::1\r\n",
    b"a=bundle-only\r\n",
    b"a=sendonly\r\n",
    b"a=rtcp-mux\r\n",
    b"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
    b"\xff\xfe",
    b"\0",
    b"a=rtpmap:96 opus/48000/2/9/9\r\n",
    b"a=rtpmap:300 PCMU/8000\r\n",
    b"t=",
    b"o=- 1 1 IN IP4 h\r\n",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 => {
                if let Some(b) = data.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => data.truncate(at),
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            3 => {
                let end = (at + rng.below(64)).min(data.len());
                data.drain(at..end);
            }
            4 => {
                // Duplicate a chunk (repeated lines, repeated m= sections).
                let end = (at + rng.below(200)).min(data.len());
                let chunk = data[at..end].to_vec();
                data.splice(at..at, chunk);
            }
            _ => {
                if let Some(b) = data.get_mut(at) {
                    *b = rng.next() as u8;
                }
            }
        }
    }
    data
}

fn exercise(data: &[u8]) {
    let Ok(sdp) = SessionDescription::parse(data) else {
        return;
    };
    let key = CryptoAttribute::new(1, CryptoSuite::AesCm128HmacSha1_80, &[1; 30]).expect("key");
    let local = SipLocalMedia {
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        rtcp_mux: data.len() % 2 == 0,
        lines: (0..sdp.media.len())
            .map(|i| SipLocalMediaLine {
                rtp_port: 40_000u16.wrapping_add(2 * i as u16),
                cryptos: if i % 2 == 0 {
                    vec![key.clone()]
                } else {
                    Vec::new()
                },
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
        SessionDescription::parse(answer.to_sdp_string().as_bytes())
            .expect("our own SIP answer parses");
        let _ = sip_offer_answered(&sdp, &answer);
    }
    let mut browser = sdp.clone();
    finalize_browser_sdp(&mut browser, &[]);
    let _ = SessionDescription::parse(browser.to_sdp_string().as_bytes());
}

#[test]
fn mutated_fixtures_never_panic_the_sdp_layer() {
    let dir = format!("{}/tests/fixtures/sdp", env!("CARGO_MANIFEST_DIR"));
    let mut fixtures: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| {
            let path = e.expect("entry").path();
            (
                path.display().to_string(),
                std::fs::read(&path).expect("readable"),
            )
        })
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 10, "fixtures present");
    let mut rng = Rng(0x5eed_0f5d_1234);
    let mut parsed = 0;
    for (name, bytes) in &fixtures {
        exercise(bytes);
        for i in 0..1500 {
            let input = mutate(&mut rng, bytes);
            let result = std::panic::catch_unwind(|| exercise(&input));
            assert!(
                result.is_ok(),
                "{name}, mutation {i}: {:?}",
                String::from_utf8_lossy(&input)
            );
            parsed += usize::from(SessionDescription::parse(&input).is_ok());
        }
    }
    // The mutations must mostly keep inputs parseable, or the translators are not reached.
    assert!(
        parsed > fixtures.len() * 1500 / 3,
        "only {parsed} mutated inputs parsed"
    );
}
