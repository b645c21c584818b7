//! Packet forwarding: datagrams in from both legs, decrypted media across, what each leg
//! must send into the transmit ring. Nothing here allocates per packet
//! (`tests/bridge_zero_alloc.rs`).

use std::net::SocketAddr;
use std::time::Instant;

use super::streams::{SipStream, WebrtcStream};
use super::timers::InactivityWatch;
use super::{push_bounded, Bridge, BridgeEvent, MediaLeg, MediaSocketKind, Negotiation};
use crate::error::BridgeError;
use crate::rtp::{PayloadTypeMap, RtpPacket};
use crate::rtp_leg::RtpLegEvent;
use crate::transmit_queue::TransmitQueue;
use crate::webrtc_leg::{OutgoingRtp, ReceivedRtp, WebrtcLegEvent, WebrtcMedia};
use crate::MediaKind;

/// Datagrams the bridge may hold for the SIP leg before dropping the oldest. One input
/// yields at most a packet plus an RTCP compound and the reactor drains after every input,
/// so 8 is ample; 8 x 1600 B keeps the ring at 12.5 KiB of the 64 KiB per-call budget
/// (performance.md P6).
const TRANSMIT_QUEUE_SLOTS: usize = 8;

/// The per-packet state of a call, indexed by [`MediaKind::index`]: both legs' streams, the
/// browser -> SIP payload-type map, the ring the SIP side's datagrams wait in, the browser's
/// inactivity watch and the drop counter.
#[derive(Debug)]
pub(super) struct Forwarding {
    pub(super) sip: [Option<SipStream>; 2],
    pub(super) webrtc_streams: [Option<WebrtcStream>; 2],
    /// Browser PT -> SIP PT, for the WebRTC leg's payload types the bridge accepts.
    pub(super) to_sip: PayloadTypeMap,
    pub(super) transmit: TransmitQueue,
    pub(super) webrtc_watch: InactivityWatch,
    pub(super) dropped: u64,
}

impl Bridge {
    /// A datagram arrived on the WebRTC leg's socket (`local` = that socket's address).
    /// Errors are per datagram (garbage, stale DTLS); the call goes on.
    pub fn handle_webrtc_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), BridgeError> {
        if matches!(self.negotiation, Negotiation::Closed) {
            return Ok(());
        }
        let Some(engine) = self.webrtc.as_mut() else {
            return Ok(());
        };
        let result = engine.handle_datagram(now, local, from, bytes);
        self.drain_webrtc(now);
        Ok(result?)
    }

    /// Pull decrypted media and state changes out of the WebRTC leg and forward them.
    pub(super) fn drain_webrtc(&mut self, now: Instant) {
        let Some(engine) = self.webrtc.as_mut() else {
            return;
        };
        while let Some(event) = engine.poll_event() {
            let mapped = match event {
                WebrtcLegEvent::IceConnected => BridgeEvent::IceConnected,
                WebrtcLegEvent::IceFailed => BridgeEvent::IceFailed,
                WebrtcLegEvent::DtlsConnected => {
                    // Media may start now: the WebRTC inactivity watch runs from here (the
                    // SIP leg's runs from the SIP answer, inside the RTP leg).
                    self.fwd.webrtc_watch.armed_at = Some(now);
                    BridgeEvent::DtlsConnected
                }
                WebrtcLegEvent::DtlsFailed => BridgeEvent::DtlsFailed,
                WebrtcLegEvent::Closed => {
                    if self.closed_reported {
                        continue;
                    }
                    self.closed_reported = true;
                    BridgeEvent::Closed
                }
            };
            push_bounded(&mut self.events, mapped);
        }
        while let Some(media) = engine.poll_media(&mut self.payload_buf) {
            match media {
                WebrtcMedia::Rtp(rtp) => {
                    let payload = self.payload_buf.get(..rtp.payload_len).unwrap_or_default();
                    self.fwd.forward_to_sip(rtp, payload);
                }
                WebrtcMedia::KeyframeRequest { kind, full_intra } => {
                    // RFC 5104 sec. 3.5.1: a key frame request goes to the media source; on
                    // the SIP leg as PLI (or FIR) from our SSRC about the peer's.
                    if let Some(stream) = self.fwd.sip[kind.index()].as_mut() {
                        stream.leg.request_keyframe(full_intra);
                    }
                }
            }
        }
        self.drain_sip_legs(now);
    }

    /// Move the RTP legs' RTCP and events into the bridge's queues.
    pub(super) fn drain_sip_legs(&mut self, now: Instant) {
        for index in 0..self.fwd.sip.len() {
            let Some(stream) = self.fwd.sip[index].as_mut() else {
                continue;
            };
            loop {
                let leg = &mut stream.leg;
                let mut written = None;
                self.fwd.transmit.push_with(MediaSocketKind::Rtcp, |buf| {
                    let t = leg.poll_transmit(now, buf).ok().flatten()?;
                    written = Some(());
                    Some((t.len, t.source, t.destination))
                });
                if written.is_none() {
                    break;
                }
            }
            while let Some(event) = stream.leg.poll_event() {
                match event {
                    RtpLegEvent::Inactive { .. } => push_bounded(
                        &mut self.events,
                        BridgeEvent::RtpInactive { leg: MediaLeg::Sip },
                    ),
                    RtpLegEvent::TelephoneEventEnded { event, duration } => {
                        let digit = crate::rtp::TelephoneEvent {
                            event,
                            end: true,
                            volume: 0,
                            duration,
                        }
                        .digit();
                        let clock = stream.telephone_event.map_or(8000, |(_, c)| c.max(1));
                        if let Some(digit) = digit {
                            push_bounded(
                                &mut self.events,
                                BridgeEvent::Dtmf {
                                    digit,
                                    duration_ms: u32::from(duration) * 1000 / clock,
                                },
                            );
                        }
                    }
                    RtpLegEvent::KeyframeRequested if index == MediaKind::Video.index() => {
                        if let Some(engine) = self.webrtc.as_mut() {
                            if let Err(e) = engine.request_keyframe(now, MediaKind::Video) {
                                log::debug!("PLI toward the browser failed: {e}");
                            }
                        }
                    }
                    other => log::debug!("SIP leg: {other:?}"),
                }
            }
        }
    }

    /// A datagram arrived on a SIP-side RTP socket (`local` = that socket's address). With
    /// rtcp-mux, RTCP arriving here is recognised (RFC 5761 sec. 4). The buffer is mutable
    /// because the RTP leg maps the payload type (and removes SDES-SRTP) in place.
    /// Malformed packets, unknown payload types and packets from a foreign source are
    /// dropped and counted in [`BridgeStats::dropped`](super::BridgeStats::dropped); the
    /// error says why, the call goes on.
    pub fn handle_rtp_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        bytes: &mut [u8],
    ) -> Result<(), BridgeError> {
        if matches!(self.negotiation, Negotiation::Closed) {
            return Ok(());
        }
        let Some(index) = self.fwd.sip_index_by_rtp(local) else {
            self.fwd.dropped += 1;
            return Ok(());
        };
        let ingress = self.fwd.sip_ingress(now, index, from, bytes);
        let result = match ingress {
            Ok(Some((rtp, range))) => {
                let payload = bytes.get(range).unwrap_or_default();
                match (
                    self.webrtc.as_mut(),
                    self.fwd.webrtc_streams[index].as_mut(),
                ) {
                    (Some(engine), Some(wstream)) => match engine.send_rtp(now, rtp, payload) {
                        Ok(()) => {
                            wstream.packets_sent += 1;
                            wstream.bytes_sent += payload.len() as u64;
                        }
                        Err(e) => {
                            // Before DTLS is up rtc refuses to send; not the call's fault.
                            self.fwd.dropped += 1;
                            log::trace!("RTP toward the browser dropped: {e}");
                        }
                    },
                    _ => self.fwd.dropped += 1,
                }
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        self.drain_sip_legs(now);
        result
    }

    /// Measurement hook, not for the reactor: run the SIP -> browser steps the bridge owns
    /// (everything in [`Bridge::handle_rtp_datagram`] before the WebRTC engine encrypts) on
    /// one datagram. The allocation test and the benchmark use it to hold the bridge's own
    /// code to zero allocations separately from the engine's.
    #[doc(hidden)]
    pub fn probe_sip_ingress(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        bytes: &mut [u8],
    ) -> Option<(OutgoingRtp, std::ops::Range<usize>)> {
        let index = self.fwd.sip_index_by_rtp(local)?;
        self.fwd.sip_ingress(now, index, from, bytes).ok().flatten()
    }

    /// Measurement hook, not for the reactor: forward one RTP packet as if the WebRTC leg had
    /// just decrypted it (the browser -> SIP steps the bridge owns); the result waits in
    /// [`Bridge::poll_output`].
    #[doc(hidden)]
    pub fn probe_forward_to_sip(&mut self, rtp: ReceivedRtp, payload: &[u8]) {
        self.fwd.forward_to_sip(rtp, payload);
    }

    /// A datagram arrived on a SIP-side RTCP socket (`local` = that socket's address).
    pub fn handle_rtcp_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        bytes: &mut [u8],
    ) -> Result<(), BridgeError> {
        if matches!(self.negotiation, Negotiation::Closed) {
            return Ok(());
        }
        let Some(index) = self
            .fwd
            .sip
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.local_rtcp == local))
        else {
            self.fwd.dropped += 1;
            return Ok(());
        };
        let result = match self.fwd.sip[index].as_mut() {
            Some(stream) => stream
                .leg
                .handle_rtcp(now, from, bytes)
                .map_err(BridgeError::SipPacket),
            None => Ok(()),
        };
        self.drain_sip_legs(now);
        result
    }
}

impl Forwarding {
    pub(super) fn new() -> Self {
        Self {
            sip: [None, None],
            webrtc_streams: [None, None],
            to_sip: PayloadTypeMap::empty(),
            transmit: TransmitQueue::new(TRANSMIT_QUEUE_SLOTS),
            webrtc_watch: InactivityWatch::default(),
            dropped: 0,
        }
    }

    /// The SIP stream whose RTP socket is `local`.
    pub(super) fn sip_index_by_rtp(&self, local: SocketAddr) -> Option<usize> {
        self.sip
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.local_rtp == local))
    }

    /// SIP -> browser, the bridge's own part: the RTP leg validates, accounts, latches and
    /// maps the PT in place; the bridge makes seq/timestamp continuous toward the browser.
    /// Returns what the WebRTC leg must send and where the payload lies. Allocation-free.
    #[allow(clippy::type_complexity)]
    pub(super) fn sip_ingress(
        &mut self,
        now: Instant,
        index: usize,
        from: SocketAddr,
        bytes: &mut [u8],
    ) -> Result<Option<(OutgoingRtp, std::ops::Range<usize>)>, BridgeError> {
        let kind = if index == 0 {
            MediaKind::Audio
        } else {
            MediaKind::Video
        };
        let (Some(stream), Some(wstream)) = (
            self.sip[index].as_mut(),
            self.webrtc_streams[index].as_mut(),
        ) else {
            self.dropped += 1;
            return Ok(None);
        };
        let packet = match stream.leg.handle_rtp(now, from, bytes) {
            Ok(Some(packet)) => packet,
            Ok(None) => return Ok(None),
            Err(e) => return Err(BridgeError::SipPacket(e)),
        };
        let mut packet: RtpPacket<&mut [u8]> = packet;
        if !wstream.sending {
            // The browser does not receive this kind now (its hold): accounted, not sent.
            self.dropped += 1;
            return Ok(None);
        }
        let Some(source) = wstream.guard.admit(packet.ssrc(), packet.sequence_number()) else {
            self.dropped += 1;
            return Ok(None);
        };
        // The rewriter re-bases on a new input SSRC; a confirmed sequence restart counts as
        // one. The SSRC written here is replaced by the WebRTC leg's own anyway.
        packet.set_ssrc(source);
        wstream.out.rewrite(now, wstream.clock_rate, &mut packet);
        let out = OutgoingRtp {
            kind,
            marker: packet.marker(),
            payload_type: packet.payload_type(),
            sequence_number: packet.sequence_number(),
            timestamp: packet.timestamp(),
        };
        let start = packet.payload_offset();
        let range = start..start + packet.payload().len();
        Ok(Some((out, range)))
    }

    /// Browser -> SIP: account the packet, then the RTP leg maps the PT, rewrites
    /// SSRC/seq/timestamp and writes a plain RTP packet straight into a pre-allocated transmit
    /// slot. Allocation-free (the counting-allocator test holds this to zero).
    pub(super) fn forward_to_sip(&mut self, rtp: ReceivedRtp, payload: &[u8]) {
        let index = rtp.kind.index();
        if let Some(w) = self.webrtc_streams[index].as_mut() {
            w.on_packet(&rtp);
        }
        self.webrtc_watch.on_packet(rtp.arrival);
        let (Some(_), Some(stream)) = (self.to_sip.map(rtp.payload_type), self.sip[index].as_mut())
        else {
            self.dropped += 1;
            return;
        };
        let leg = &mut stream.leg;
        let pushed = self.transmit.push_with(MediaSocketKind::Rtp, |buf| {
            let t = leg
                .send_rtp_parts(
                    rtp.arrival,
                    rtp.payload_type,
                    rtp.marker,
                    rtp.sequence_number,
                    rtp.timestamp,
                    rtp.ssrc,
                    payload,
                    buf,
                )
                .ok()
                .flatten()?;
            Some((t.len, t.source, t.destination))
        });
        if !pushed {
            self.dropped += 1;
        }
    }
}
