//! What both legs agreed on last, which every later offer/answer starts from: our and the
//! peer's SIP descriptions (RFC 3264 section 8: a new offer keeps the m-lines of the last
//! one), the browser's, and the codec pairs in force; and how the media of one kind is put
//! in place after an offer/answer, keeping what did not change (our SSRCs, sequence
//! continuity, the SRTP contexts of unchanged keys, the latched peer address).

use std::time::Instant;

use super::codecs::{has_media_codec, media_pair, payload_maps, primary_clock};
use super::sdes::sdes_context;
use super::streams::{SequenceGuard, WebrtcStream};
use super::Bridge;
use crate::error::BridgeError;
use crate::rtp::SsrcRewriter;
use crate::rtp_leg::RtpRemote;
use crate::sdp::{MediaDirection, NegotiatedMedia, NegotiatedSession, SessionDescription};
use crate::webrtc_leg::CodecSpec;
use crate::MediaKind;

/// The last agreement of both legs.
#[derive(Debug, Clone)]
pub(super) struct Agreed {
    /// Our last SIP description (offer or answer).
    pub(super) sip_local: SessionDescription,
    /// A digest of the peer's last SIP description without its `o=` line, to recognise an
    /// offer that changes nothing (the description itself is not kept: P6).
    pub(super) sip_remote: u64,
    /// The directions of the browser's last description per kind (what it wants for its
    /// audio and video, seen from the browser); the description itself is not kept (P6).
    pub(super) browser_directions: [MediaDirection; 2],
    /// (browser codec, SIP codec) pairs in force, every kind.
    pub(super) pairs: Vec<(CodecSpec, CodecSpec)>,
}

/// The first usable line of `kind` in a negotiation.
pub(super) fn line_of(negotiated: &NegotiatedSession, kind: MediaKind) -> Option<&NegotiatedMedia> {
    negotiated
        .media
        .iter()
        .find(|n| !n.rejected && MediaKind::from_sdp(&n.kind) == Some(kind))
}

/// The direction of each kind in a browser's description, seen from the browser.
pub(super) fn directions_of(sdp: &SessionDescription) -> [MediaDirection; 2] {
    MediaKind::ALL.map(|kind| {
        sdp.media
            .iter()
            .position(|m| m.is_active() && MediaKind::from_sdp(&m.kind) == Some(kind))
            .map_or(MediaDirection::SendRecv, |i| sdp.media_direction(i))
    })
}

/// A digest of what a description says about the media, whatever its `o=` line (RFC 3264
/// section 8: a re-offer that changes nothing may still carry a new version).
pub(super) fn media_digest(sdp: &SessionDescription) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut text = sdp.clone();
    text.origin.session_version = 0;
    text.origin.session_id = 0;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.to_sdp_string().hash(&mut h);
    h.finish()
}

impl Bridge {
    /// Records an agreement reached by any flow.
    pub(super) fn record_agreed(
        &mut self,
        sip_local: SessionDescription,
        sip_remote: SessionDescription,
        browser_directions: [MediaDirection; 2],
        pairs: &[(CodecSpec, CodecSpec)],
    ) {
        self.agreed = Some(Box::new(Agreed {
            sip_local,
            sip_remote: media_digest(&sip_remote),
            browser_directions,
            pairs: pairs.to_vec(),
        }));
    }

    /// Puts the media of every kind in place after an offer/answer: `negotiated` is the SIP
    /// side's result, `pairs` the codecs both sides now use. A kind without a usable line or
    /// a media codec is taken down on both legs; nothing is installed when no kind is left
    /// ([`BridgeError::NoCommonCodec`], the media stays as it was).
    pub(super) fn apply_agreement(
        &mut self,
        now: Instant,
        negotiated: &NegotiatedSession,
        pairs: &[(CodecSpec, CodecSpec)],
        browser_directions: [MediaDirection; 2],
    ) -> Result<(), BridgeError> {
        let usable: Vec<MediaKind> = MediaKind::ALL
            .into_iter()
            .filter(|&k| line_of(negotiated, k).is_some() && has_media_codec(pairs, k))
            .collect();
        if usable.is_empty() {
            return Err(BridgeError::NoCommonCodec);
        }
        // Check every SRTP context before changing anything.
        let mut contexts = Vec::with_capacity(usable.len());
        for &kind in &usable {
            let line = line_of(negotiated, kind).ok_or(BridgeError::NoCommonCodec)?;
            contexts.push((kind, line, sdes_context(line)?));
        }
        for kind in MediaKind::ALL {
            if !usable.contains(&kind) {
                self.fwd.sip[kind.index()] = None;
                self.fwd.webrtc_streams[kind.index()] = None;
            }
        }
        for (kind, line, srtp) in contexts {
            let kind_pairs: Vec<(CodecSpec, CodecSpec)> = pairs
                .iter()
                .filter(|(w, _)| w.kind == kind)
                .cloned()
                .collect();
            self.update_sip_stream(now, kind, line, &kind_pairs, srtp);
            self.update_webrtc_stream(kind, &kind_pairs, browser_directions[kind.index()]);
        }
        self.fwd.to_sip = payload_maps(pairs).0;
        Ok(())
    }

    /// The SIP stream of `kind` after an offer/answer: installed when new; otherwise kept
    /// (its SSRC and sequence go on), pointed at a new address only when the peer's
    /// changed (which restarts latching), re-keyed only when a key changed.
    fn update_sip_stream(
        &mut self,
        now: Instant,
        kind: MediaKind,
        line: &NegotiatedMedia,
        pairs: &[(CodecSpec, CodecSpec)],
        srtp: Option<crate::rtp::srtp::SdesSrtp>,
    ) {
        let keys = line.local_crypto.clone().zip(line.remote_crypto.clone());
        let Some(stream) = self.fwd.sip[kind.index()].as_mut() else {
            self.install_sip_stream(now, kind, line, pairs, srtp, keys);
            return;
        };
        if let Some(remote) = RtpRemote::from_negotiated(line) {
            let moved = stream.leg.remote().is_none_or(|r| {
                r.rtp != remote.rtp || r.rtcp != remote.rtcp || r.rtcp_mux != remote.rtcp_mux
            });
            if moved {
                stream.leg.set_remote(now, remote);
            } else if stream
                .leg
                .remote()
                .is_some_and(|r| r.sending != remote.sending)
            {
                // A direction change only (hold, unhold): latching stays as it is.
                stream.leg.set_sending(remote.sending);
            }
        }
        let same_keys = match (&stream.keys, &keys) {
            (Some((l1, r1)), Some((l2, r2))) => l1.same_key(l2) && r1.same_key(r2),
            (None, None) => true,
            _ => false,
        };
        if !same_keys {
            // RFC 4568 section 7.1.4: a new key is a new SRTP context.
            stream.leg.set_srtp(srtp);
            stream.keys = keys;
        }
        stream.set_codecs(pairs, line.telephone_event_pt);
    }

    /// The browser-side stream of `kind`: kept when it exists (the continuity toward the
    /// browser goes on), created for a new kind.
    fn update_webrtc_stream(
        &mut self,
        kind: MediaKind,
        pairs: &[(CodecSpec, CodecSpec)],
        browser: MediaDirection,
    ) {
        let clock_rate = primary_clock(pairs, kind);
        let sending = matches!(browser, MediaDirection::SendRecv | MediaDirection::RecvOnly);
        if let Some(w) = self.fwd.webrtc_streams[kind.index()].as_mut() {
            w.set_codecs(pairs, kind);
            w.sending = sending;
            return;
        }
        let ssrc = self
            .webrtc
            .as_ref()
            .and_then(|e| e.local_ssrc(kind))
            .unwrap_or(0);
        self.fwd.webrtc_streams[kind.index()] = Some(WebrtcStream {
            out: SsrcRewriter::new(ssrc),
            sending,
            guard: SequenceGuard::default(),
            clock_rate,
            recv: None,
            lost_earlier: 0,
            packets_received: 0,
            bytes_received: 0,
            packets_sent: 0,
            bytes_sent: 0,
            codec: media_pair(pairs, kind).map(|(w, _)| w.clone()),
        });
    }

    /// The direction the browser last gave for `kind`, seen from the browser (sendrecv
    /// when it gave none or the kind is not in its description).
    pub(super) fn browser_direction(&self, kind: MediaKind) -> MediaDirection {
        self.agreed.as_ref().map_or(MediaDirection::SendRecv, |a| {
            a.browser_directions[kind.index()]
        })
    }
}
