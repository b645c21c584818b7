// Arbitrary browser SDP and trickled candidates through the WebRTC engine, in both roles:
// as the offer the bridge answers (DirectWebrtcLeg::answer) and as the answer to the offer
// the bridge made (apply_remote_answer). Errors are fine; panics are not.
// Run: `cd fuzz && cargo +nightly fuzz run webrtc_description`
//
// The body of fuzz target `webrtc_description`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/webrtc_description.rs`) and the stable harness (`tests/fuzz_stable.rs`).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use engine::Output;
use media::bridge::{Bridge, BridgeConfig};
use media::webrtc_leg::DtlsIdentity;

const SIP_ANSWER: &str = "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 42000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\nm=video 42002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
const SIP_OFFER: &str = "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 42000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n\
m=video 42002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";

fn config() -> BridgeConfig {
    // One certificate for the whole run, as the gateway makes one per process.
    static IDENTITY: OnceLock<Arc<DtlsIdentity>> = OnceLock::new();
    let identity = IDENTITY
        .get_or_init(|| Arc::new(DtlsIdentity::generate().expect("DTLS identity")))
        .clone();
    let mut c = BridgeConfig::new(
        "127.0.0.1:41000".parse().expect("addr"),
        "127.0.0.1:41002".parse().expect("addr"),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_942_400),
        engine::Rng::seed_from_u64(7),
        identity,
    );
    c.sip_video_local = Some("127.0.0.1:41004".parse().expect("addr"));
    c
}

/// One input: must not panic.
pub fn run(data: &[u8]) {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let (sdp, rest) = data.split_at(split);
    let Ok(sdp) = std::str::from_utf8(sdp) else {
        return;
    };
    let candidate = String::from_utf8_lossy(rest.get(1..).unwrap_or_default());
    let now = Instant::now();

    // The browser's offer, answered once SIP answered.
    if let Ok((mut bridge, _sip_offer)) = Bridge::new_answerer(now, config(), sdp) {
        let _ = bridge.add_remote_candidate(&candidate);
        if bridge.apply_sip_answer(now, SIP_ANSWER).is_ok() {
            let _ = bridge.add_remote_candidate(&candidate);
            let _ = bridge.handle_timeout(now + Duration::from_millis(100));
            while !matches!(bridge.poll_output(), Output::Timeout(_)) {}
        }
    }

    // The browser's answer to our offer.
    if let Ok((mut bridge, _offer)) = Bridge::new_offerer(now, config(), SIP_OFFER) {
        if bridge.apply_webrtc_answer(now, sdp).is_ok() {
            let _ = bridge.add_remote_candidate(&candidate);
            let _ = bridge.handle_timeout(now + Duration::from_millis(100));
            while !matches!(bridge.poll_output(), Output::Timeout(_)) {}
        }
    }
}
