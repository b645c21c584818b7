//! Media through the leg: SRTP in place both ways (RFC 3711), the browser's RTP parsed and
//! handed out, our RTP written and protected. No heap allocation per packet.

use std::time::Instant;

use super::super::{OutgoingRtp, ReceivedRtp, WebrtcMedia};
use super::{PendingRtp, WebrtcLeg};
use crate::bridge::MediaSocketKind;
use crate::error::WebrtcError;
use crate::rtp::{write_rtp_packet, ReceptionStats, RtpPacket};

impl WebrtcLeg {
    pub(super) fn handle_srtp(
        &mut self,
        now: Instant,
        bytes: &[u8],
        rtcp: bool,
    ) -> Result<(), WebrtcError> {
        let Some(srtp) = self.srtp.as_mut() else {
            self.dropped += 1;
            return Ok(());
        };
        let Some(buf) = self.scratch.get_mut(..bytes.len()) else {
            self.dropped += 1;
            return Err(WebrtcError::WrongState("datagram too large"));
        };
        buf.copy_from_slice(bytes);
        if rtcp {
            let len = match srtp.inbound.unprotect_rtcp(buf) {
                Ok(len) => len,
                Err(e) => {
                    self.dropped += 1;
                    return Err(WebrtcError::Srtp(e));
                }
            };
            self.handle_rtcp(now, len);
            return Ok(());
        }
        let len = match srtp.inbound.unprotect_rtp(buf) {
            Ok(len) => len,
            Err(e) => {
                self.dropped += 1;
                return Err(WebrtcError::Srtp(e));
            }
        };
        let Some(plain) = self.scratch.get(..len) else {
            self.dropped += 1;
            return Ok(());
        };
        let Ok(packet) = RtpPacket::parse(plain) else {
            self.dropped += 1;
            return Ok(());
        };
        let pt = packet.payload_type();
        let Some(kind) = self.pt_kind[usize::from(pt & 0x7f)] else {
            self.dropped += 1;
            return Ok(());
        };
        let header = ReceivedRtp {
            kind,
            marker: packet.marker(),
            payload_type: pt,
            sequence_number: packet.sequence_number(),
            timestamp: packet.timestamp(),
            ssrc: packet.ssrc(),
            payload_len: packet.payload().len(),
            arrival: now,
        };
        let payload_start = packet.payload_offset();
        let clock_rate = self.clock_rates[usize::from(pt & 0x7f)];
        let index = kind.index();
        self.remote_ssrcs[index] = Some(header.ssrc);
        let stream = &mut self.in_streams[index];
        match stream.stats.as_mut() {
            Some(stats) if stats.ssrc() == header.ssrc => {
                stats.record(
                    now,
                    header.sequence_number,
                    header.timestamp,
                    clock_rate,
                    header.payload_len,
                );
            }
            _ => {
                let mut stats = ReceptionStats::new(now, header.ssrc, header.sequence_number);
                stats.record(
                    now,
                    header.sequence_number,
                    header.timestamp,
                    clock_rate,
                    header.payload_len,
                );
                stream.stats = Some(stats);
            }
        }
        if self.pending_rtp.is_some() {
            // The caller did not drain the previous packet (see `poll_media`).
            self.dropped += 1;
        }
        self.pending_rtp = Some(PendingRtp {
            header,
            payload_start,
        });
        Ok(())
    }

    /// Next decrypted media input; an RTP payload is copied into `payload`. Drain it after
    /// every [`WebrtcLeg::handle_datagram`]: the leg holds only the packet that datagram
    /// carried.
    pub fn poll_media(&mut self, payload: &mut [u8]) -> Option<WebrtcMedia> {
        if let Some(p) = self.pending_rtp.take() {
            let src = self
                .scratch
                .get(p.payload_start..p.payload_start + p.header.payload_len)?;
            let dst = payload.get_mut(..src.len())?;
            dst.copy_from_slice(src);
            return Some(WebrtcMedia::Rtp(p.header));
        }
        self.keyframe_requests.pop_front()
    }

    /// Encrypt and queue one RTP packet toward the browser.
    pub fn send_rtp(
        &mut self,
        now: Instant,
        rtp: OutgoingRtp,
        payload: &[u8],
    ) -> Result<(), WebrtcError> {
        let index = rtp.kind.index();
        let clock_rate = self.clock_rates[usize::from(rtp.payload_type & 0x7f)];
        let (Some(srtp), Some(to), Some(stream)) = (
            self.srtp.as_mut(),
            self.peer,
            self.out_streams[index].as_mut(),
        ) else {
            return Err(WebrtcError::WrongState("DTLS not connected yet"));
        };
        let ssrc = stream.ssrc;
        let from = self.candidate_addr;
        let mut failed = None;
        let queued = self.out.push_with(MediaSocketKind::Webrtc, |buf| {
            let len = write_rtp_packet(
                buf,
                rtp.payload_type,
                rtp.marker,
                rtp.sequence_number,
                rtp.timestamp,
                ssrc,
                payload,
            )
            .ok()?;
            match srtp.outbound.protect_rtp(buf, len) {
                Ok(n) => Some((n, from, to)),
                Err(e) => {
                    failed = Some(e);
                    None
                }
            }
        });
        if let Some(e) = failed {
            return Err(WebrtcError::Srtp(e));
        }
        if !queued {
            return Err(WebrtcError::WrongState("packet does not fit"));
        }
        stream
            .stats
            .record(now, rtp.timestamp, clock_rate, payload.len());
        stream.clock_rate = clock_rate;
        Ok(())
    }
}
