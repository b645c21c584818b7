//! Our RTCP toward the browser (RFC 3550 sec. 6.4 SR/RR with SDES CNAME) and the browser's:
//! its PLI/FIR become key frame requests, its SRs feed our LSR/DLSR.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::super::{MediaKind, WebrtcMedia};
use super::{WebrtcLeg, MAX_KEYFRAME_REQUESTS};
use crate::bridge::MediaSocketKind;
use crate::error::WebrtcError;
use crate::rtp::rtcp::{
    write_pli, write_receiver_report, write_sdes_cname, write_sender_report, RtcpCompound,
    RtcpPacket,
};
use crate::srtp::SrtpSession;
use crate::transmit_queue::TransmitQueue;

/// Mean interval of our RTCP reports toward the browser. RFC 3550 sec. 6.2's 5 s minimum
/// may be scaled down for high-bandwidth sessions, and browsers report about every second;
/// their statistics (`remote-inbound-rtp`, RTT) are only as fresh as our reports.
pub const RTCP_INTERVAL: Duration = Duration::from_secs(1);

impl WebrtcLeg {
    /// The browser's RTCP: key frame requests go to the bridge, SRs feed LSR/DLSR.
    pub(super) fn handle_rtcp(&mut self, now: Instant, len: usize) {
        let Self {
            scratch,
            in_streams,
            out_streams,
            keyframe_requests,
            dropped,
            ..
        } = self;
        let Some(plain) = scratch.get(..len) else {
            return;
        };
        let mut request = |media_ssrc: u32, full_intra: bool| {
            let kind = MediaKind::ALL.into_iter().find(|k| {
                out_streams[k.index()]
                    .as_ref()
                    .is_some_and(|s| s.ssrc == media_ssrc)
            });
            if let Some(kind) = kind {
                if keyframe_requests.len() < MAX_KEYFRAME_REQUESTS {
                    keyframe_requests.push_back(WebrtcMedia::KeyframeRequest { kind, full_intra });
                }
            }
        };
        for packet in RtcpCompound::new(plain) {
            let Ok(packet) = packet else {
                *dropped += 1;
                break;
            };
            match packet {
                RtcpPacket::SenderReport { ssrc, info, .. } => {
                    for stream in in_streams.iter_mut() {
                        if let Some(stats) = stream.stats.as_mut().filter(|s| s.ssrc() == ssrc) {
                            stats.record_sender_report(now, info.ntp_timestamp);
                        }
                    }
                }
                RtcpPacket::Pli { media_ssrc, .. } => request(media_ssrc, false),
                RtcpPacket::Fir { entries, .. } => {
                    for (ssrc, _) in RtcpPacket::fir_entries(entries).take(2) {
                        request(ssrc, true);
                    }
                }
                _ => {}
            }
        }
    }

    /// Ask the browser for a key frame on `kind` (PLI, RFC 4585 sec. 6.3.1).
    pub fn request_keyframe(&mut self, _now: Instant, kind: MediaKind) -> Result<(), WebrtcError> {
        let index = kind.index();
        let Some(media_ssrc) = self.remote_ssrcs[index] else {
            return Ok(());
        };
        let sender_ssrc = self.local_ssrc(kind).unwrap_or(0);
        if self.send_rtcp(|buf| write_pli(buf, sender_ssrc, media_ssrc).ok()) {
            Ok(())
        } else {
            Err(WebrtcError::WrongState("DTLS not connected yet"))
        }
    }

    /// Protect `len` bytes of plain RTCP written by `write` and queue them.
    pub(super) fn send_rtcp(&mut self, write: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
        let (Some(srtp), Some(to)) = (self.srtp.as_mut(), self.peer) else {
            return false;
        };
        queue_rtcp(&mut self.out, srtp, self.candidate_addr, to, write)
    }

    /// Our periodic report: an SR per stream we sent on (RFC 3550 sec. 6.4.1), else an RR
    /// (sec. 6.4.2), each with report blocks about the browser's streams, plus SDES CNAME.
    pub(super) fn send_report(&mut self, now: Instant) {
        let mut blocks = [crate::rtp::rtcp::ReportBlock::default(); 2];
        let mut count = 0;
        for stream in &mut self.in_streams {
            if let Some(stats) = stream.stats.as_mut() {
                blocks[count] = stats.report_block(now);
                count += 1;
            }
        }
        let blocks = &blocks[..count];
        let reporter = self.out_streams.iter().flatten().map(|s| s.ssrc).next();
        let Some(reporter) = reporter else {
            return;
        };
        let senders: [Option<(u32, crate::rtp::rtcp::SenderInfo)>; 2] = [0, 1].map(|i| {
            self.out_streams[i]
                .as_ref()
                .filter(|s| s.stats.packets() > 0)
                .map(|s| (s.ssrc, s.stats.sender_info(now, &self.ntp)))
        });
        let (Some(srtp), Some(to)) = (self.srtp.as_mut(), self.peer) else {
            return;
        };
        let cname = self.cname.as_bytes();
        queue_rtcp(&mut self.out, srtp, self.candidate_addr, to, |buf| {
            let mut len = 0;
            let mut reported = false;
            for (ssrc, info) in senders.iter().flatten() {
                let b = if reported { &[][..] } else { blocks };
                len += write_sender_report(buf.get_mut(len..)?, *ssrc, info, b).ok()?;
                reported = true;
            }
            if !reported {
                len += write_receiver_report(buf.get_mut(len..)?, reporter, blocks).ok()?;
            }
            len += write_sdes_cname(buf.get_mut(len..)?, reporter, cname).ok()?;
            Some(len)
        });
    }

    pub(super) fn next_rtcp_interval(&mut self) -> Duration {
        // RFC 3550 sec. 6.3.1: randomise to 0.5..1.5 of the interval against synchronisation.
        let r = self.rng.next_u32() % 1000;
        RTCP_INTERVAL / 2 + RTCP_INTERVAL * r / 1000
    }
}

/// Let `write` put a plain compound RTCP packet into the next slot, protect it (RFC 3711
/// sec. 3.4) and queue it; false when it did not fit or SRTCP refused it.
pub(super) fn queue_rtcp(
    out: &mut TransmitQueue,
    srtp: &mut SrtpSession,
    from: SocketAddr,
    to: SocketAddr,
    write: impl FnOnce(&mut [u8]) -> Option<usize>,
) -> bool {
    out.push_with(MediaSocketKind::Webrtc, |buf| {
        let len = write(buf)?;
        let len = srtp.outbound.protect_rtcp(buf, len).ok()?;
        Some((len, from, to))
    })
}
