//! The plain RTP leg toward SIP: sans-IO state for one media stream (one m-line).
//!
//! The reactor owns the sockets. It passes every datagram from the leg's RTP socket to
//! [`RtpLeg::handle_rtp`] and from its RTCP socket (port + 1) to [`RtpLeg::handle_rtcp`],
//! hands packets from the other leg to [`RtpLeg::send_rtp`], arms a timer from
//! [`RtpLeg::poll_timeout`], calls [`RtpLeg::handle_timeout`] when it fires, and after every
//! call drains [`RtpLeg::poll_transmit`] and [`RtpLeg::poll_event`]. `now` is always passed in.
//!
//! Steady-state packet handling allocates nothing, for plain RTP (proved by
//! `tests/rtp_no_alloc.rs`) and for SDES-SRTP, which protects and unprotects in place
//! (`tests/srtp_no_alloc.rs`).

mod ports;
mod rtcp;

pub use ports::{PortAllocator, PortPair};

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::rtp::srtp::SdesSrtp;
use crate::rtp::{
    classify_datagram, remove_header_extension, write_rtp_packet, DatagramKind, NtpClock,
    PayloadTypeMap, ReceptionStats, RtpError, RtpPacket, SendStats, SsrcRewriter, TelephoneEvent,
};
use crate::sdp::{Codec, MediaDirection, NegotiatedMedia};

/// Largest RTP/RTCP datagram the leg is meant to build; larger than any unfragmented UDP
/// payload on a 1500-byte MTU.
pub const MAX_DATAGRAM_LEN: usize = 2048;
/// Events kept until polled; older ones are dropped when the reactor does not drain.
const MAX_QUEUED_EVENTS: usize = 16;
/// Default symmetric-RTP inactivity timeout (issue 4: 60 s).
pub const DEFAULT_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default RTCP report interval (RFC 3550 section 6.2 recommends a 5 s minimum).
pub const DEFAULT_RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// Errors of the RTP leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtpLegError {
    /// A malformed RTP/RTCP packet, or an SRTP failure.
    Packet(RtpError),
    /// The output buffer is too small for the packet (or its SRTP tag).
    BufferTooSmall,
    /// `--rtp-ports` gave no even/odd pair.
    EmptyPortRange,
    /// A port was released that the allocator had not handed out.
    PortNotAllocated,
}

impl From<RtpError> for RtpLegError {
    fn from(e: RtpError) -> Self {
        Self::Packet(e)
    }
}

/// SRTP's "no room for the tag" is the leg's own buffer error; other failures stay packet
/// errors.
fn srtp_buffer_error(e: RtpError) -> RtpLegError {
    match e {
        RtpError::BufferTooSmall => RtpLegError::BufferTooSmall,
        e => RtpLegError::Packet(e),
    }
}

impl std::fmt::Display for RtpLegError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Packet(e) => write!(f, "RTP leg packet error: {e}"),
            Self::BufferTooSmall => f.write_str("buffer too small"),
            Self::EmptyPortRange => f.write_str("RTP port range holds no even/odd pair"),
            Self::PortNotAllocated => f.write_str("port was not allocated"),
        }
    }
}

impl std::error::Error for RtpLegError {}

/// Settings of one RTP leg.
#[derive(Debug, Clone)]
pub struct RtpLegConfig {
    /// Our RTP socket address (what the reactor bound).
    pub local_rtp: SocketAddr,
    /// Our RTCP socket address, normally RTP port + 1 (RFC 3550 section 11).
    pub local_rtcp: SocketAddr,
    /// Latch to the source address of the first valid packet from the peer instead of
    /// trusting the SDP address (symmetric RTP, RFC 4961; the usual NAT traversal for SIP).
    pub symmetric_latching: bool,
    /// How long without RTP or RTCP from the peer before [`RtpLegEvent::Inactive`].
    pub inactivity_timeout: Duration,
    /// Mean interval between our RTCP reports (RFC 3550 section 6.2).
    pub rtcp_interval: Duration,
    /// SSRC we send with.
    pub local_ssrc: u32,
    /// Our RTCP CNAME (RFC 3550 section 6.5.1); at most 255 bytes are used.
    pub cname: String,
    /// Wall clock for SR NTP timestamps.
    pub ntp_clock: NtpClock,
}

impl RtpLegConfig {
    /// Defaults: RTCP on RTP port + 1, latching on, 60 s inactivity timeout, 5 s RTCP.
    pub fn new(local_rtp: SocketAddr, local_ssrc: u32, cname: &str, ntp_clock: NtpClock) -> Self {
        let mut local_rtcp = local_rtp;
        local_rtcp.set_port(local_rtp.port().wrapping_add(1));
        Self {
            local_rtp,
            local_rtcp,
            symmetric_latching: true,
            inactivity_timeout: DEFAULT_INACTIVITY_TIMEOUT,
            rtcp_interval: DEFAULT_RTCP_INTERVAL,
            local_ssrc,
            cname: cname.to_owned(),
            ntp_clock,
        }
    }
}

/// Where the SIP peer said it wants media (from its SDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpRemote {
    /// RTP address from `c=` and `m=`.
    pub rtp: SocketAddr,
    /// RTCP address (`a=rtcp` or RTP port + 1); ignored when muxed.
    pub rtcp: Option<SocketAddr>,
    /// RTP and RTCP share the RTP port (RFC 5761).
    pub rtcp_mux: bool,
    /// Whether the negotiated direction lets us send RTP (the peer's SDP is sendrecv or
    /// recvonly). When false, [`RtpLeg::send_rtp`] drops packets but RTCP continues
    /// (RFC 3264 section 5.1: RTCP is still sent on held streams).
    pub sending: bool,
}

impl RtpRemote {
    /// The remote side of one negotiated SIP m-line; `None` when the m-line is rejected or has
    /// no address. `sending` follows the peer's direction (it must want to receive), and an
    /// unspecified address (`c=IN IP4 0.0.0.0`, the RFC 2543 hold that RFC 3264 section 8.4
    /// still lets peers send) also stops sending, since packets to 0.0.0.0 would go to this
    /// host.
    pub fn from_negotiated(media: &NegotiatedMedia) -> Option<Self> {
        if media.rejected {
            return None;
        }
        let rtp = media.remote_rtp?;
        Some(Self {
            rtp,
            rtcp: media.remote_rtcp,
            rtcp_mux: media.rtcp_mux,
            sending: matches!(
                media.direction,
                MediaDirection::SendRecv | MediaDirection::RecvOnly
            ) && !rtp.ip().is_unspecified(),
        })
    }
}

/// A datagram the leg wrote into the caller's buffer, for the caller to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpLegTransmit {
    /// Local socket to send from (the RTP or the RTCP socket).
    pub source: SocketAddr,
    /// Peer address.
    pub destination: SocketAddr,
    /// Length of the datagram at the start of the caller's buffer.
    pub len: usize,
}

/// Something the gateway should know about the leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtpLegEvent {
    /// Symmetric RTP latched onto the peer's real address.
    Latched {
        /// Where RTP now goes.
        rtp: SocketAddr,
    },
    /// Nothing came from the peer for the inactivity timeout.
    Inactive {
        /// Time since the last packet.
        idle: Duration,
    },
    /// Packets flow again after [`RtpLegEvent::Inactive`].
    ActivityResumed,
    /// The peer's RTP source changed (new SSRC).
    RemoteSsrcChanged {
        /// The new SSRC.
        ssrc: u32,
    },
    /// The peer asked for a key frame with PLI (RFC 4585 section 6.3.1), FIR (RFC 5104
    /// section 4.3.1) or the older FIR of RFC 2032 (packet type 192): the bridge should ask
    /// the WebRTC sender for one.
    KeyframeRequested,
    /// The peer sent RTCP BYE (RFC 3550 section 6.6).
    RemoteBye,
    /// A telephone event (DTMF digit) from the peer ended (RFC 4733 section 2.5.1.4: the E bit;
    /// its three retransmissions are reported once). The packets themselves are forwarded.
    TelephoneEventEnded {
        /// Event code (0-9, 10 `*`, 11 `#`, 12-15 A-D).
        event: u8,
        /// Duration in timestamp units.
        duration: u16,
    },
}

/// Counters of one leg; `lost` and `jitter` follow RFC 3550 appendix A.3 and A.8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtpLegStats {
    /// RTP packets accepted from the peer.
    pub packets_received: u64,
    /// Bytes of those packets (whole datagrams after SRTP removal).
    pub bytes_received: u64,
    /// RTP packets sent to the peer.
    pub packets_sent: u64,
    /// Bytes of those packets before SRTP.
    pub bytes_sent: u64,
    /// Packets lost, from sequence gaps, summed over the peer's sources.
    pub packets_lost: i64,
    /// Interarrival jitter of the current source in timestamp units.
    pub jitter: u32,
    /// The current source's jitter in microseconds (0 when its clock rate is unknown).
    pub jitter_us: u64,
    /// Datagrams dropped: malformed, from a foreign address after latching, SRTP failures,
    /// unmapped payload types, non-RTP traffic.
    pub packets_dropped: u64,
    /// The peer's last report about our stream: fraction lost in 1/256.
    pub remote_fraction_lost: u8,
    /// The peer's last reported jitter of our stream, in timestamp units.
    pub remote_jitter: u32,
    /// Round-trip time from the peer's last LSR/DLSR (RFC 3550 section 6.4.1).
    pub round_trip: Option<Duration>,
}

#[derive(Debug, Clone, Copy)]
enum PendingFeedback {
    Pli,
    Fir,
}

/// The SIP-side media state for one stream. See the module docs for the call pattern.
#[derive(Debug)]
pub struct RtpLeg {
    config: RtpLegConfig,
    remote: Option<RtpRemote>,
    rtp_destination: Option<SocketAddr>,
    rtcp_destination: Option<SocketAddr>,
    latched: bool,
    rtcp_latched: bool,
    srtp: Option<SdesSrtp>,
    send_map: Option<PayloadTypeMap>,
    receive_map: Option<PayloadTypeMap>,
    clock_rates: [u32; 128],
    rewriter: SsrcRewriter,
    send_stats: SendStats,
    reception: Option<ReceptionStats>,
    lost_from_earlier_sources: i64,
    stats: RtpLegStats,
    last_activity: Instant,
    inactive_reported: bool,
    next_report: Instant,
    report_due: bool,
    pending_feedback: Option<PendingFeedback>,
    fir_seq: u8,
    telephone_event_pt: Option<u8>,
    /// RTP timestamp of the last ended event, to report its retransmitted end packets once.
    last_event_end: Option<u32>,
    /// When our last two reports went out (newest first), for the SR/RR choice.
    reports_sent_at: [Option<Instant>; 2],
    rng: u32,
    events: VecDeque<RtpLegEvent>,
}

impl RtpLeg {
    /// A leg with no remote yet. The first RTCP report is due after half an interval
    /// (RFC 3550 section 6.2's reduced initial delay).
    pub fn new(now: Instant, config: RtpLegConfig) -> Self {
        let rng = config.local_ssrc | 1;
        let next_report = now + config.rtcp_interval / 2;
        Self {
            rewriter: SsrcRewriter::new(config.local_ssrc),
            config,
            remote: None,
            rtp_destination: None,
            rtcp_destination: None,
            latched: false,
            rtcp_latched: false,
            srtp: None,
            send_map: None,
            receive_map: None,
            clock_rates: [0; 128],
            send_stats: SendStats::default(),
            reception: None,
            lost_from_earlier_sources: 0,
            stats: RtpLegStats::default(),
            last_activity: now,
            inactive_reported: false,
            next_report,
            report_due: false,
            pending_feedback: None,
            fir_seq: 0,
            telephone_event_pt: None,
            last_event_end: None,
            reports_sent_at: [None, None],
            rng,
            events: VecDeque::with_capacity(MAX_QUEUED_EVENTS),
        }
    }

    /// Sets (or, after a re-INVITE, replaces) where the peer wants media. Latching starts
    /// over, since the peer may really have moved; `now` restarts the inactivity clock.
    /// Nothing is sent to an unspecified address (0.0.0.0 or ::) until latching finds the
    /// peer.
    pub fn set_remote(&mut self, now: Instant, remote: RtpRemote) {
        self.remote = Some(remote);
        let usable = |a: SocketAddr| (!a.ip().is_unspecified() && a.port() != 0).then_some(a);
        self.rtp_destination = usable(remote.rtp);
        self.rtcp_destination = if remote.rtcp_mux {
            usable(remote.rtp)
        } else {
            usable(remote.rtcp.unwrap_or_else(|| port_plus_one(remote.rtp)))
        };
        self.latched = false;
        self.rtcp_latched = false;
        self.last_activity = now;
        self.inactive_reported = false;
    }

    /// Whether the negotiated direction lets us send (a hold or unhold that keeps the peer's
    /// address): latching and the inactivity clock are left as they are.
    pub fn set_sending(&mut self, sending: bool) {
        if let Some(r) = self.remote.as_mut() {
            r.sending = sending;
        }
    }

    /// The RTP clock rate of a payload type, for jitter and timestamp continuity.
    pub fn set_clock_rate(&mut self, payload_type: u8, clock_rate: u32) {
        if let Some(slot) = self.clock_rates.get_mut(usize::from(payload_type)) {
            *slot = clock_rate;
        }
    }

    /// Clock rates of every negotiated codec (see [`RtpLeg::set_clock_rate`]).
    pub fn set_clock_rates(&mut self, codecs: &[Codec]) {
        for codec in codecs {
            self.set_clock_rate(codec.payload_type, codec.clock_rate);
        }
    }

    /// The payload type the peer uses for RFC 4733 telephone-event, for
    /// [`RtpLegEvent::TelephoneEventEnded`].
    pub fn set_telephone_event_payload_type(&mut self, payload_type: Option<u8>) {
        self.telephone_event_pt = payload_type;
    }

    /// Payload type numbers for packets we send: other leg's number -> this leg's number.
    /// Packets with unmapped types are dropped. Without a map, types pass unchanged.
    pub fn set_send_payload_map(&mut self, map: PayloadTypeMap) {
        self.send_map = Some(map);
    }

    /// Payload type numbers for packets we receive: this leg's -> the other leg's.
    pub fn set_receive_payload_map(&mut self, map: PayloadTypeMap) {
        self.receive_map = Some(map);
    }

    /// Turns on SDES-SRTP (RFC 4568) for an `RTP/SAVP` peer, or off with `None`.
    pub fn set_srtp(&mut self, srtp: Option<SdesSrtp>) {
        self.srtp = srtp;
    }

    /// Where the peer said it wants media (its last SDP), if known.
    pub fn remote(&self) -> Option<RtpRemote> {
        self.remote
    }

    /// Where RTP goes now (the latched address once latched).
    pub fn rtp_destination(&self) -> Option<SocketAddr> {
        self.rtp_destination
    }

    /// Whether symmetric RTP has latched.
    pub fn is_latched(&self) -> bool {
        self.latched
    }

    /// Current statistics.
    pub fn stats(&self) -> RtpLegStats {
        let mut s = self.stats;
        if let Some(r) = &self.reception {
            s.packets_lost = self.lost_from_earlier_sources + r.cumulative_lost();
            s.jitter = r.jitter();
            if r.clock_rate() > 0 {
                s.jitter_us = u64::from(r.jitter()) * 1_000_000 / u64::from(r.clock_rate());
            }
        }
        s
    }

    fn rtcp_muxed(&self) -> bool {
        self.remote.is_some_and(|r| r.rtcp_mux)
    }

    fn clock_rate(&self, payload_type: u8) -> u32 {
        self.clock_rates
            .get(usize::from(payload_type))
            .copied()
            .unwrap_or(0)
    }

    fn push_event(&mut self, event: RtpLegEvent) {
        if self.events.len() == MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn note_activity(&mut self, now: Instant) {
        self.last_activity = now;
        if self.inactive_reported {
            self.inactive_reported = false;
            self.push_event(RtpLegEvent::ActivityResumed);
        }
    }

    /// Counts a dropped datagram and passes `result` through.
    fn dropped<T>(&mut self, result: Result<T, RtpLegError>) -> Result<T, RtpLegError> {
        self.stats.packets_dropped += 1;
        result
    }

    /// Whether a packet from `from` is acceptable, latching if this is the first one.
    ///
    /// RTP and (unmuxed) RTCP latch separately: behind a NAT the two flows get unrelated
    /// external ports, so RTP port + 1 is only a guess until RTCP itself arrives. RTCP latches
    /// only from the IP that RTP latched to, so a stranger cannot divert our reports first.
    fn accept_source(&mut self, from: SocketAddr, rtcp: bool) -> bool {
        if !self.config.symmetric_latching {
            return true;
        }
        if rtcp && !self.rtcp_muxed() {
            let Some(rtp) = self.rtp_destination.filter(|_| self.latched) else {
                // Before RTP has shown who the peer is, RTCP is read but teaches us nothing.
                return true;
            };
            if !self.rtcp_latched && from.ip() == rtp.ip() {
                self.rtcp_latched = true;
                self.rtcp_destination = Some(from);
            }
            return Some(from) == self.rtcp_destination;
        }
        if !self.latched {
            if rtcp {
                // Muxed RTCP before any RTP: accepted, but only RTP decides the latch.
                return true;
            }
            self.latched = true;
            self.rtp_destination = Some(from);
            if self.rtcp_muxed() {
                self.rtcp_destination = Some(from);
            } else if !self.rtcp_latched && self.remote.is_none_or(|r| r.rtp != from) {
                // RTP from elsewhere than the SDP said (a NAT): RTP port + 1 is the best
                // guess. From exactly the SDP's address, the SDP's RTCP address stands
                // (`a=rtcp`, RFC 3605, may name any port).
                self.rtcp_destination = Some(port_plus_one(from));
            }
            self.push_event(RtpLegEvent::Latched { rtp: from });
            return true;
        }
        // After latching only the latched source is accepted: anyone else who learns the port
        // could otherwise inject media or hijack the stream. A peer that really moved sends a
        // new SDP, and set_remote() starts latching over.
        Some(from) == self.rtp_destination
    }

    /// Handles one datagram from the RTP socket. Returns the RTP packet to forward to the
    /// other leg (SRTP and header extensions removed, payload type mapped), viewed in place in
    /// `buf`, or `None` when
    /// the datagram was consumed (muxed RTCP) or dropped (foreign source, unmapped payload
    /// type, STUN/DTLS). Malformed packets and SRTP failures are errors, also counted as drops.
    pub fn handle_rtp<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        buf: &'a mut [u8],
    ) -> Result<Option<RtpPacket<&'a mut [u8]>>, RtpLegError> {
        match classify_datagram(buf) {
            DatagramKind::Rtp => {}
            DatagramKind::Rtcp => {
                self.handle_rtcp(now, from, buf)?;
                return Ok(None);
            }
            _ => return self.dropped(Ok(None)),
        }
        let len = match self.srtp.as_mut() {
            Some(srtp) => match srtp.unprotect_rtp(buf) {
                Ok(len) => len,
                Err(e) => return self.dropped(Err(e.into())),
            },
            None => buf.len(),
        };
        let Some(plain) = buf.get_mut(..len) else {
            return self.dropped(Err(RtpLegError::BufferTooSmall));
        };
        // We never offer a=extmap on the SIP leg, so header extensions from the peer carry
        // nothing the WebRTC leg negotiated (RFC 8285 section 4.1.1); removing them here also
        // keeps malformed ones away from the WebRTC leg's SRTP (see remove_header_extension).
        let received_len = len;
        let len = match remove_header_extension(plain) {
            Ok(len) => len,
            Err(e) => return self.dropped(Err(e.into())),
        };
        let mut packet = match RtpPacket::parse(&mut plain[..len]) {
            Ok(p) => p,
            Err(e) => return self.dropped(Err(e.into())),
        };
        if !self.accept_source(from, false) {
            return self.dropped(Ok(None));
        }
        self.note_activity(now);
        let (ssrc, seq, ts, pt) = (
            packet.ssrc(),
            packet.sequence_number(),
            packet.timestamp(),
            packet.payload_type(),
        );
        let clock_rate = self.clock_rate(pt);
        let payload_len = packet.payload().len();
        let reception = match self.reception.as_mut() {
            Some(r) if r.ssrc() == ssrc => r,
            _ => {
                if let Some(old) = &self.reception {
                    self.lost_from_earlier_sources += old.cumulative_lost();
                    self.push_event(RtpLegEvent::RemoteSsrcChanged { ssrc });
                }
                self.reception.insert(ReceptionStats::new(now, ssrc, seq))
            }
        };
        reception.record(now, seq, ts, clock_rate, payload_len);
        self.stats.packets_received += 1;
        self.stats.bytes_received += received_len as u64;
        if Some(pt) == self.telephone_event_pt {
            if let Ok(event) = TelephoneEvent::parse(packet.payload()) {
                if event.end && self.last_event_end != Some(ts) {
                    self.last_event_end = Some(ts);
                    self.push_event(RtpLegEvent::TelephoneEventEnded {
                        event: event.event,
                        duration: event.duration,
                    });
                }
            }
        }
        if let Some(map) = &self.receive_map {
            if !map.apply(&mut packet) {
                return self.dropped(Ok(None));
            }
        }
        Ok(Some(packet))
    }

    /// Sends an RTP packet from the other leg: copies it into `out`, removes any header
    /// extension (never negotiated on the SIP leg), maps the payload type, rewrites
    /// SSRC/sequence/timestamp for continuity, applies SRTP, and returns where to send
    /// it. `None` when there is no destination yet, sending is not allowed by the negotiated
    /// direction, or the payload type is not negotiated on this leg.
    pub fn send_rtp(
        &mut self,
        now: Instant,
        packet: &[u8],
        out: &mut [u8],
    ) -> Result<Option<RtpLegTransmit>, RtpLegError> {
        let dst = out
            .get_mut(..packet.len())
            .ok_or(RtpLegError::BufferTooSmall)?;
        dst.copy_from_slice(packet);
        self.send_in_place(now, out, packet.len())
    }

    /// Like [`RtpLeg::send_rtp`] for a packet given as header fields and payload (what the
    /// WebRTC stack hands over already parsed). The SSRC is replaced anyway.
    #[allow(clippy::too_many_arguments)]
    pub fn send_rtp_parts(
        &mut self,
        now: Instant,
        payload_type: u8,
        marker: bool,
        sequence_number: u16,
        timestamp: u32,
        source_ssrc: u32,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<Option<RtpLegTransmit>, RtpLegError> {
        let len = write_rtp_packet(
            out,
            payload_type,
            marker,
            sequence_number,
            timestamp,
            source_ssrc,
            payload,
        )?;
        self.send_in_place(now, out, len)
    }

    /// The outbound path on a plain packet at the start of `out`.
    fn send_in_place(
        &mut self,
        now: Instant,
        out: &mut [u8],
        len: usize,
    ) -> Result<Option<RtpLegTransmit>, RtpLegError> {
        let Some(destination) = self.rtp_destination else {
            return Ok(None);
        };
        if !self.remote.is_none_or(|r| r.sending) {
            return Ok(None);
        }
        let plain = out.get_mut(..len).ok_or(RtpLegError::BufferTooSmall)?;
        let len = remove_header_extension(plain)?;
        let plain = &mut plain[..len];
        if !self.rewrite_outbound(now, plain)? {
            return Ok(None);
        }
        let len = match self.srtp.as_mut() {
            Some(srtp) => srtp
                .protect_rtp_in_place(out, len)
                .map_err(srtp_buffer_error)?,
            None => len,
        };
        Ok(Some(RtpLegTransmit {
            source: self.config.local_rtp,
            destination,
            len,
        }))
    }

    /// The stream we send changes codec: the next packet continues our sequence and
    /// timestamps whatever the source's own numbers ([`SsrcRewriter::rebase`]).
    pub fn rebase_continuity(&mut self) {
        self.rewriter.rebase();
    }

    /// PT map, continuity rewrite and send accounting on a plain packet in place; `false`
    /// when the payload type is not negotiated here.
    fn rewrite_outbound(&mut self, now: Instant, work: &mut [u8]) -> Result<bool, RtpLegError> {
        let mut packet = RtpPacket::parse(work)?;
        if let Some(map) = &self.send_map {
            if !map.apply(&mut packet) {
                self.stats.packets_dropped += 1;
                return Ok(false);
            }
        }
        let clock_rate = self.clock_rate(packet.payload_type());
        self.rewriter.rewrite(now, clock_rate.max(1), &mut packet);
        self.send_stats
            .record(now, packet.timestamp(), clock_rate, packet.payload().len());
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += packet.len() as u64;
        Ok(true)
    }

    /// The next event, if any. Drain after every call into the leg.
    pub fn poll_event(&mut self) -> Option<RtpLegEvent> {
        self.events.pop_front()
    }
}

fn port_plus_one(mut addr: SocketAddr) -> SocketAddr {
    addr.set_port(addr.port().wrapping_add(1));
    addr
}
