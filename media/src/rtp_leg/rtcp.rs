//! The RTP leg's RTCP (RFC 3550 section 6): the peer's reports and feedback in, our
//! SR/RR + SDES (+ PLI/FIR, BYE) out on a randomised interval, and the inactivity timer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{srtp_buffer_error, PendingFeedback, RtpLeg, RtpLegError, RtpLegEvent, RtpLegTransmit};
use crate::rtp::rtcp::{self, ReportBlock, RtcpCompound, RtcpPacket};
use crate::rtp::ReceptionStats;

impl RtpLeg {
    /// Handles one datagram from the RTCP socket (or muxed RTCP): notes the peer's SR for
    /// LSR/DLSR, its report on our stream, key frame requests and BYE.
    pub fn handle_rtcp(
        &mut self,
        now: Instant,
        from: SocketAddr,
        buf: &mut [u8],
    ) -> Result<(), RtpLegError> {
        let len = match self.srtp.as_mut() {
            Some(srtp) => match srtp.unprotect_rtcp(buf) {
                Ok(len) => len,
                Err(e) => return self.dropped(Err(e.into())),
            },
            None => buf.len(),
        };
        let plain = buf.get(..len).unwrap_or(&[]);
        // Validate the whole compound before acting on any of it.
        if let Some(Err(e)) = RtcpCompound::new(plain).find(Result::is_err) {
            return self.dropped(Err(e.into()));
        }
        if !self.accept_source(from, true) {
            return self.dropped(Ok(()));
        }
        self.note_activity(now);
        let now_middle = crate::rtp::ntp_middle_32(self.config.ntp_clock.ntp(now));
        for packet in RtcpCompound::new(plain).flatten() {
            match packet {
                RtcpPacket::SenderReport { ssrc, info, blocks } => {
                    if let Some(r) = self.reception.as_mut().filter(|r| r.ssrc() == ssrc) {
                        r.record_sender_report(now, info.ntp_timestamp);
                    }
                    self.note_report_blocks(blocks, now_middle);
                }
                RtcpPacket::ReceiverReport { blocks, .. } => {
                    self.note_report_blocks(blocks, now_middle)
                }
                RtcpPacket::Pli { .. }
                | RtcpPacket::Fir { .. }
                | RtcpPacket::Other {
                    packet_type: rtcp::PT_FIR_RFC2032,
                    ..
                } => self.push_event(RtpLegEvent::KeyframeRequested),
                RtcpPacket::Bye { .. } => self.push_event(RtpLegEvent::RemoteBye),
                _ => {}
            }
        }
        Ok(())
    }

    fn note_report_blocks(&mut self, blocks: rtcp::ReportBlocks<'_>, now_middle: u32) {
        for block in blocks.filter(|b| b.ssrc == self.config.local_ssrc) {
            self.stats.remote_fraction_lost = block.fraction_lost;
            self.stats.remote_jitter = block.jitter;
            if block.last_sr != 0 {
                // RFC 3550 section 6.4.1: RTT = A - LSR - DLSR, all in 1/65536 s.
                let rtt = now_middle
                    .wrapping_sub(block.last_sr)
                    .wrapping_sub(block.delay_since_last_sr);
                if rtt < 0x8000_0000 {
                    self.stats.round_trip =
                        Some(Duration::from_nanos((u64::from(rtt) * 1_000_000_000) >> 16));
                }
            }
        }
    }

    /// Asks the peer for a key frame (the browser sent PLI/FIR on the WebRTC leg). Sent with
    /// the next [`RtpLeg::poll_transmit`] as a compound RR + SDES + PLI, or FIR when `full`
    /// (RFC 5104 section 4.3.1 for peers that only honour FIR).
    pub fn request_keyframe(&mut self, full: bool) {
        self.pending_feedback = Some(if full {
            PendingFeedback::Fir
        } else {
            PendingFeedback::Pli
        });
    }

    /// The next instant [`RtpLeg::handle_timeout`] must be called: the next RTCP report or
    /// the inactivity deadline, whichever is first.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let inactivity =
            (!self.inactive_reported).then(|| self.last_activity + self.config.inactivity_timeout);
        Some(inactivity.map_or(self.next_report, |i| i.min(self.next_report)))
    }

    /// Call at (or after) [`RtpLeg::poll_timeout`]; spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_report {
            self.report_due = true;
            self.next_report = now + self.randomized_interval();
        }
        let idle = now.saturating_duration_since(self.last_activity);
        if !self.inactive_reported && idle >= self.config.inactivity_timeout {
            self.inactive_reported = true;
            self.push_event(RtpLegEvent::Inactive { idle });
        }
    }

    /// RFC 3550 section 6.3.5: spread reports over [0.5, 1.5] x the interval so that many
    /// legs started together do not report in lockstep. A xorshift seeded from the SSRC keeps
    /// it deterministic and clock-free.
    fn randomized_interval(&mut self) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        let factor_milli = 500 + u64::from(self.rng % 1001);
        Duration::from_nanos(
            (self.config.rtcp_interval.as_nanos() as u64).saturating_mul(factor_milli) / 1000,
        )
    }

    /// Writes the next datagram to send into `out`: a due RTCP report (SR when we sent RTP,
    /// otherwise RR; with a report block on the peer's stream and our CNAME) or a pending key
    /// frame request. Call until it returns `None` after every other call.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        out: &mut [u8],
    ) -> Result<Option<RtpLegTransmit>, RtpLegError> {
        if !self.report_due && self.pending_feedback.is_none() {
            return Ok(None);
        }
        let Some(destination) = self.rtcp_destination else {
            // Nowhere to send yet; a report is useless later, feedback too.
            self.report_due = false;
            self.pending_feedback = None;
            return Ok(None);
        };
        self.emit_rtcp(now, destination, out, false).map(Some)
    }

    /// Writes our compound RTCP (plus BYE when `bye`) into `out`, protects it when SDES-SRTP
    /// is on (RFC 3711 section 3.4), and addresses it.
    fn emit_rtcp(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        out: &mut [u8],
        bye: bool,
    ) -> Result<RtpLegTransmit, RtpLegError> {
        let mut len = self.write_compound(now, out)?;
        if bye {
            let rest = out.get_mut(len..).ok_or(RtpLegError::BufferTooSmall)?;
            len += rtcp::write_bye(rest, self.config.local_ssrc)?;
        }
        if let Some(srtp) = self.srtp.as_mut() {
            len = srtp
                .protect_rtcp_in_place(out, len)
                .map_err(srtp_buffer_error)?;
        }
        let source = if self.rtcp_muxed() {
            self.config.local_rtp
        } else {
            self.config.local_rtcp
        };
        Ok(RtpLegTransmit {
            source,
            destination,
            len,
        })
    }

    fn write_compound(&mut self, now: Instant, out: &mut [u8]) -> Result<usize, RtpLegError> {
        let ssrc = self.config.local_ssrc;
        let block: Option<ReportBlock> = self.reception.as_mut().map(|r| r.report_block(now));
        let blocks = block.as_slice();
        let sender = self.send_stats.is_sender(self.reports_sent_at[1]);
        self.reports_sent_at = [Some(now), self.reports_sent_at[0]];
        let mut len = if sender {
            let info = self.send_stats.sender_info(now, &self.config.ntp_clock);
            rtcp::write_sender_report(out, ssrc, &info, blocks)?
        } else {
            rtcp::write_receiver_report(out, ssrc, blocks)?
        };
        let cname = self.config.cname.as_bytes();
        let cname = cname.get(..cname.len().min(255)).unwrap_or(&[]);
        len += rtcp::write_sdes_cname(
            out.get_mut(len..).ok_or(RtpLegError::BufferTooSmall)?,
            ssrc,
            cname,
        )?;
        if let Some(feedback) = self.pending_feedback.take() {
            let media = self.reception.as_ref().map_or(0, ReceptionStats::ssrc);
            let rest = out.get_mut(len..).ok_or(RtpLegError::BufferTooSmall)?;
            len += match feedback {
                PendingFeedback::Pli => rtcp::write_pli(rest, ssrc, media)?,
                PendingFeedback::Fir => {
                    self.fir_seq = self.fir_seq.wrapping_add(1);
                    rtcp::write_fir(rest, ssrc, media, self.fir_seq)?
                }
            };
        }
        self.report_due = false;
        Ok(len)
    }

    /// Writes RR/SR + SDES + BYE (RFC 3550 section 6.6) to send when the call ends.
    pub fn write_bye(
        &mut self,
        now: Instant,
        out: &mut [u8],
    ) -> Result<Option<RtpLegTransmit>, RtpLegError> {
        let Some(destination) = self.rtcp_destination else {
            return Ok(None);
        };
        self.emit_rtcp(now, destination, out, true).map(Some)
    }
}
