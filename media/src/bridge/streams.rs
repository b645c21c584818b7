//! The per-kind streams of both legs and their installation once the SDP is agreed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::codecs::{has_media_codec, media_pair, payload_maps, primary_clock};
use super::Bridge;
use crate::rtp::srtp::SdesSrtp;
use crate::rtp::{ReceptionStats, SsrcRewriter};
use crate::rtp_leg::{RtpLeg, RtpLegConfig, RtpRemote};
use crate::sdp::{CryptoAttribute, MediaDirection, NegotiatedMedia};
use crate::webrtc_leg::{CodecSpec, ReceivedRtp};
use crate::MediaKind;

/// One SIP-side stream: the RTP leg plus what the bridge needs beside it.
#[derive(Debug)]
pub(super) struct SipStream {
    pub(super) leg: RtpLeg,
    pub(super) local_rtp: SocketAddr,
    pub(super) local_rtcp: SocketAddr,
    pub(super) ssrc: u32,
    /// The SDES keys in force (ours, the peer's), to tell a re-key from an unchanged key.
    pub(super) keys: Option<(CryptoAttribute, CryptoAttribute)>,
    /// The peer's telephone-event payload type and its clock rate (RFC 4733), to report its
    /// key presses.
    pub(super) telephone_event: Option<(u8, u32)>,
    /// The SIP side's first real codec, to tell a codec change from a refresh.
    pub(super) codec: Option<CodecSpec>,
}

impl SipStream {
    /// Payload-type maps, clock rates and the telephone-event type for `pairs` (this kind's
    /// (browser, SIP) codecs).
    pub(super) fn set_codecs(&mut self, pairs: &[(CodecSpec, CodecSpec)], te_pt: Option<u8>) {
        for (_, sip) in pairs {
            self.leg.set_clock_rate(sip.payload_type, sip.clock_rate);
        }
        let (to_sip, to_webrtc) = payload_maps(pairs);
        self.leg.set_send_payload_map(to_sip);
        self.leg.set_receive_payload_map(to_webrtc);
        let te_pt = te_pt.filter(|pt| pairs.iter().any(|(_, s)| s.payload_type == *pt));
        self.telephone_event = te_pt.map(|pt| {
            let clock = pairs
                .iter()
                .find(|(_, s)| s.payload_type == pt)
                .map_or(8000, |(_, s)| s.clock_rate);
            (pt, clock)
        });
        self.leg.set_telephone_event_payload_type(te_pt);
        // `pairs` are this stream's kind only.
        let codec = pairs
            .iter()
            .find(|(w, _)| !w.is_telephone_event())
            .map(|(_, s)| s.clone());
        if let (Some(old), Some(new)) = (&self.codec, &codec) {
            if !old.same_codec(new) {
                // RFC 3264 section 8.3.2: the stream goes on in the new format.
                self.leg.rebase_continuity();
            }
        }
        if codec.is_some() {
            self.codec = codec;
        }
    }
}

/// One WebRTC-side stream.
#[derive(Debug)]
pub(super) struct WebrtcStream {
    /// SIP -> WebRTC continuity (the engine stamps its own SSRC on top).
    pub(super) out: SsrcRewriter,
    /// The browser's direction lets it receive this kind (RFC 3264 section 5.1: nothing is
    /// sent toward a `sendonly` or `inactive` side, e.g. a browser that put the call on hold).
    pub(super) sending: bool,
    /// Keeps wild sequence jumps of the SIP source away from the browser's SRTP.
    pub(super) guard: SequenceGuard,
    pub(super) clock_rate: u32,
    /// RFC 3550 A.1/A.3/A.8 of the browser's current source (rtc keeps its own, but reading
    /// them means building a stats report, which allocates).
    pub(super) recv: Option<ReceptionStats>,
    /// Loss of the browser's earlier sources, so a new SSRC does not reset the total.
    pub(super) lost_earlier: i64,
    pub(super) packets_received: u64,
    pub(super) bytes_received: u64,
    pub(super) packets_sent: u64,
    pub(super) bytes_sent: u64,
    /// The browser side's first real codec, to tell a codec change from a refresh.
    pub(super) codec: Option<CodecSpec>,
}

/// RFC 3550 A.1: a jump beyond this is a restart or garbage, not loss.
pub(super) const MAX_DROPOUT: u16 = 3000;

/// RFC 3550 A.1: this far behind is a late packet, not a jump.
pub(super) const MAX_MISORDER: u16 = 100;

/// Sequence sanity for the SIP source before it reaches the browser. A stray packet whose
/// sequence number jumps far (a spoofed or corrupted datagram) would make the browser's SRTP
/// receiver guess the wrong rollover counter (RFC 3711 sec. 3.3.1) and reject everything
/// after it; so a big jump is accepted only when the next packet confirms it (RFC 3550 A.1
/// probation), and then counts as a new source, so the output continues at +1.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct SequenceGuard {
    pub(super) ssrc: Option<u32>,
    pub(super) last_seq: u16,
    pub(super) pending_jump: Option<u16>,
    pub(super) restarts: u32,
}

impl SequenceGuard {
    /// The source identity to rewrite with (SSRC mixed with the restart count), or `None`
    /// to drop the packet.
    pub(super) fn admit(&mut self, ssrc: u32, seq: u16) -> Option<u32> {
        if self.ssrc != Some(ssrc) {
            *self = Self {
                ssrc: Some(ssrc),
                last_seq: seq,
                pending_jump: None,
                restarts: self.restarts,
            };
            return Some(self.source(ssrc));
        }
        let delta = seq.wrapping_sub(self.last_seq);
        if delta < MAX_DROPOUT {
            if delta != 0 {
                self.last_seq = seq;
            }
            self.pending_jump = None;
        } else if delta < u16::MAX - MAX_MISORDER {
            if self.pending_jump != Some(seq.wrapping_sub(1)) {
                self.pending_jump = Some(seq);
                return None;
            }
            self.restarts = self.restarts.wrapping_add(1);
            self.last_seq = seq;
            self.pending_jump = None;
        }
        Some(self.source(ssrc))
    }

    pub(super) fn source(&self, ssrc: u32) -> u32 {
        ssrc ^ self.restarts.wrapping_mul(0x9E37_79B9)
    }
}

impl WebrtcStream {
    /// The codecs of this kind after an offer/answer: on a codec change the SIP source may
    /// restart its numbers, so its sequence check starts over and the output goes on from
    /// where it was ([`SsrcRewriter::rebase`], RFC 3264 section 8.3.2).
    pub(super) fn set_codecs(&mut self, pairs: &[(CodecSpec, CodecSpec)], kind: MediaKind) {
        self.clock_rate = primary_clock(pairs, kind);
        let codec = media_pair(pairs, kind).map(|(w, _)| w.clone());
        if let (Some(old), Some(new)) = (&self.codec, &codec) {
            if !old.same_codec(new) {
                self.out.rebase();
                self.guard = SequenceGuard {
                    restarts: self.guard.restarts,
                    ..SequenceGuard::default()
                };
            }
        }
        if codec.is_some() {
            self.codec = codec;
        }
    }

    pub(super) fn on_packet(&mut self, rtp: &ReceivedRtp) {
        self.packets_received += 1;
        self.bytes_received += rtp.payload_len as u64;
        let recv = match self.recv.as_mut() {
            Some(r) if r.ssrc() == rtp.ssrc => r,
            _ => {
                if let Some(old) = &self.recv {
                    self.lost_earlier += old.cumulative_lost();
                }
                self.recv.insert(ReceptionStats::new(
                    rtp.arrival,
                    rtp.ssrc,
                    rtp.sequence_number,
                ))
            }
        };
        recv.record(
            rtp.arrival,
            rtp.sequence_number,
            rtp.timestamp,
            self.clock_rate,
            rtp.payload_len,
        );
    }

    pub(super) fn lost(&self) -> i64 {
        self.lost_earlier
            + self
                .recv
                .as_ref()
                .map_or(0, ReceptionStats::cumulative_lost)
    }

    pub(super) fn jitter(&self) -> Duration {
        let units = self.recv.as_ref().map_or(0, ReceptionStats::jitter);
        Duration::from_micros(u64::from(units) * 1_000_000 / u64::from(self.clock_rate.max(1)))
    }
}

/// Whether the peer's direction lets us send to it (RFC 3264 sec. 5.1).
pub(super) fn peer_receives(direction: MediaDirection) -> bool {
    matches!(
        direction,
        MediaDirection::SendRecv | MediaDirection::RecvOnly
    )
}

impl Bridge {
    /// The RTP leg of one agreed SIP m-line, with its payload-type maps and, for an
    /// `RTP/SAVP` line, its SDES-SRTP context ([`sdes_context`]).
    pub(super) fn install_sip_stream(
        &mut self,
        now: Instant,
        kind: MediaKind,
        n: &NegotiatedMedia,
        pairs: &[(CodecSpec, CodecSpec)],
        srtp: Option<SdesSrtp>,
        keys: Option<(CryptoAttribute, CryptoAttribute)>,
    ) {
        let Some(remote_rtp) = n.remote_rtp else {
            return;
        };
        let rtcp_mux = n.rtcp_mux;
        let Some(local_rtp) = self.sip_local(kind) else {
            return;
        };
        let ssrc = self.rng.next_u32().max(1);
        let mut config = RtpLegConfig::new(local_rtp, ssrc, &self.config.cname, self.clock);
        config.symmetric_latching = self.config.latch_sip_source;
        config.inactivity_timeout = self.config.inactivity_timeout;
        config.rtcp_interval = self.config.rtcp_interval;
        let local_rtcp = if rtcp_mux {
            local_rtp
        } else {
            config.local_rtcp
        };
        let mut leg = RtpLeg::new(now, config);
        leg.set_srtp(srtp);
        leg.set_remote(
            now,
            RtpRemote {
                rtp: remote_rtp,
                rtcp: n.remote_rtcp,
                rtcp_mux,
                sending: peer_receives(n.direction),
            },
        );
        let kind_pairs: Vec<(CodecSpec, CodecSpec)> = pairs
            .iter()
            .filter(|(w, _)| w.kind == kind)
            .cloned()
            .collect();
        let mut stream = SipStream {
            leg,
            local_rtp,
            local_rtcp,
            ssrc,
            keys,
            telephone_event: None,
            codec: None,
        };
        stream.set_codecs(&kind_pairs, n.telephone_event_pt);
        self.fwd.sip[kind.index()] = Some(stream);
    }

    pub(super) fn install_webrtc_streams(
        &mut self,
        pairs: &[(CodecSpec, CodecSpec)],
        ssrc_of: impl Fn(MediaKind) -> Option<u32>,
    ) {
        for kind in MediaKind::ALL {
            if !has_media_codec(pairs, kind) {
                continue;
            }
            let clock_rate = primary_clock(pairs, kind);
            self.fwd.webrtc_streams[kind.index()] = Some(WebrtcStream {
                out: SsrcRewriter::new(ssrc_of(kind).unwrap_or(0)),
                sending: true,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_guard_drops_strays_and_accepts_confirmed_restarts() {
        let mut g = SequenceGuard::default();
        let first = g.admit(7, 100).unwrap();
        assert_eq!(g.admit(7, 101), Some(first));
        assert_eq!(g.admit(7, 40_000), None, "a lone jump is dropped");
        assert_eq!(g.admit(7, 102), Some(first), "and the stream goes on");
        assert_eq!(g.admit(7, 60), Some(first), "late packets pass");
        assert_eq!(g.admit(7, 9_000), None);
        let restarted = g.admit(7, 9_001).unwrap();
        assert_ne!(restarted, first, "a confirmed restart is a new source");
        assert_eq!(g.admit(7, 9_002), Some(restarted));
        let other = g.admit(8, 5).unwrap();
        assert_ne!(other, restarted);
    }
}
