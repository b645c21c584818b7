//! Codec pairing between the legs (RFC 3264 sec. 6.1) and the payload-type maps it yields.

use crate::error::BridgeError;
use crate::rtp::PayloadTypeMap;
use crate::sdp::{Codec, NegotiatedSession};
use crate::webrtc_leg::CodecSpec;
use crate::MediaKind;

/// Pair each SIP codec with the same codec on the WebRTC side (RFC 3264 sec. 6.1: same
/// encoding name, clock rate, channels), preferring an identical PT, then identical fmtp.
pub(super) fn pair_codecs(webrtc: &[CodecSpec], sip: &[CodecSpec]) -> Vec<(CodecSpec, CodecSpec)> {
    let mut pairs: Vec<(CodecSpec, CodecSpec)> = Vec::new();
    for s in sip {
        let candidates = || webrtc.iter().filter(|w| w.same_codec(s));
        let pick = candidates()
            .find(|w| w.payload_type == s.payload_type)
            .or_else(|| candidates().find(|w| w.fmtp == s.fmtp))
            .or_else(|| candidates().next());
        if let Some(w) = pick {
            if pairs.iter().any(|(pw, ps)| {
                pw.payload_type == w.payload_type || ps.payload_type == s.payload_type
            }) {
                continue;
            }
            pairs.push((w.clone(), s.clone()));
        }
    }
    pairs
}

/// A kind is usable only with at least one real codec (telephone-event alone is not media).
pub(super) fn has_media_codec(pairs: &[(CodecSpec, CodecSpec)], kind: MediaKind) -> bool {
    pairs
        .iter()
        .any(|(w, _)| w.kind == kind && !w.is_telephone_event())
}

/// The first pair of `kind` with a real codec: what a sender of that kind uses first
/// (RFC 3264 section 6.1, the answerer's preference order).
pub(super) fn media_pair(
    pairs: &[(CodecSpec, CodecSpec)],
    kind: MediaKind,
) -> Option<&(CodecSpec, CodecSpec)> {
    pairs
        .iter()
        .find(|(w, _)| w.kind == kind && !w.is_telephone_event())
}

pub(super) fn primary_clock(pairs: &[(CodecSpec, CodecSpec)], kind: MediaKind) -> u32 {
    pairs
        .iter()
        .find(|(w, _)| w.kind == kind && !w.is_telephone_event())
        .map_or(8000, |(w, _)| w.clock_rate)
}

/// (browser PT -> SIP PT, SIP PT -> browser PT) for codec pairs (RFC 3264 sec. 6.1: each
/// side receives with its own numbers).
pub(super) fn payload_maps(pairs: &[(CodecSpec, CodecSpec)]) -> (PayloadTypeMap, PayloadTypeMap) {
    let (mut to_sip, mut to_webrtc) = (PayloadTypeMap::empty(), PayloadTypeMap::empty());
    for (webrtc, sip) in pairs {
        to_sip.insert(webrtc.payload_type, sip.payload_type);
        to_webrtc.insert(sip.payload_type, webrtc.payload_type);
    }
    (to_sip, to_webrtc)
}

/// The codecs the SIP side agreed to on its usable m-lines, for the WebRTC leg's offer to the
/// browser (with the SIP payload types); [`BridgeError::NoCommonCodec`] when only
/// telephone-event is left, which is not media.
pub(super) fn agreed_codecs(negotiated: &NegotiatedSession) -> Result<Vec<CodecSpec>, BridgeError> {
    let mut codecs = Vec::new();
    for n in negotiated.media.iter().filter(|n| !n.rejected) {
        if let Some(kind) = MediaKind::from_sdp(&n.kind) {
            codecs.extend(n.codecs.iter().map(|c| CodecSpec::from_sdp(kind, c)));
        }
    }
    if !codecs.iter().any(|c| !c.is_telephone_event()) {
        return Err(BridgeError::NoCommonCodec);
    }
    Ok(codecs)
}

/// Audio or video for one of the codecs the bridge forwards (names of RFC 7741 VP8 and
/// RFC 6184 H.264; everything else the bridge supports is audio).
pub(super) fn codec_kind(c: &Codec) -> MediaKind {
    if c.name.eq_ignore_ascii_case("VP8") || c.name.eq_ignore_ascii_case("H264") {
        MediaKind::Video
    } else {
        MediaKind::Audio
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_pairs_only_with_the_same_packetization_mode() {
        let h264 = |pt, mode: &str| CodecSpec {
            kind: MediaKind::Video,
            name: "H264".into(),
            clock_rate: 90000,
            channels: 0,
            fmtp: format!("profile-level-id=42e01f;packetization-mode={mode}"),
            payload_type: pt,
        };
        let pairs = pair_codecs(&[h264(102, "1"), h264(127, "0")], &[h264(99, "0")]);
        assert_eq!(pairs.len(), 1);
        assert_eq!(
            (pairs[0].0.payload_type, pairs[0].1.payload_type),
            (127, 99)
        );
    }

    #[test]
    fn codec_pairing_prefers_same_payload_type_and_maps_telephone_event() {
        let c = |name: &str, clock, pt| CodecSpec {
            kind: MediaKind::Audio,
            name: name.into(),
            clock_rate: clock,
            channels: if name == "opus" { 2 } else { 1 },
            fmtp: String::new(),
            payload_type: pt,
        };
        let webrtc = vec![
            c("opus", 48000, 111),
            c("PCMU", 8000, 0),
            c("telephone-event", 8000, 126),
            c("telephone-event", 48000, 110),
        ];
        let sip = vec![c("PCMU", 8000, 0), c("telephone-event", 8000, 101)];
        let pairs = pair_codecs(&webrtc, &sip);
        assert_eq!(pairs.len(), 2);
        let (to_sip, to_webrtc) = payload_maps(&pairs);
        assert_eq!(to_sip.map(126), Some(101));
        assert_eq!(to_webrtc.map(101), Some(126));
        assert_eq!(to_sip.map(111), None, "opus was not accepted by SIP");
        assert_eq!(to_sip.map(200), None);
    }
}
