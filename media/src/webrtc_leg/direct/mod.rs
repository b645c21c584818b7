//! The direct WebRTC engine: `rtc`'s sans-IO ICE agent (`rtc::ice`, RFC 8445) and DTLS
//! endpoint (`rtc::dtls`, RFC 6347) driven directly, with SRTP keyed from the DTLS exporter
//! (RFC 5764 sec. 4.2) and done in place by [`crate::srtp`].
//!
//! Why not `RTCPeerConnection`: its media path allocates several times per packet and costs
//! more than twice the SRTP work itself, and it keeps the SRTP keys to itself, so that path
//! cannot be bypassed. A bridge needs none of what sits there (transceivers, interceptors,
//! data channels, renegotiation): one BUNDLEd transport, one audio and one video stream, and
//! key frame requests. Here the per-packet path is: classify (RFC 7983), check the source
//! against ICE, SRTP in place, parse the header, hand the payload out; no heap allocation.
//!
//! RTCP toward the browser is our own (RFC 3550 sec. 6.4 SR/RR with SDES CNAME, every
//! `rtcp::RTCP_INTERVAL` on average); the browser's PLI/FIR come out as
//! [`WebrtcMedia::KeyframeRequest`] and its SRs feed our LSR/DLSR.

mod description;
mod dtls;
mod ice;
mod identity;
mod renegotiate;
mod rtcp;
mod srtp;

pub use ice::host_candidate;
pub use identity::DtlsIdentity;
pub use renegotiate::LegLine;
pub(crate) use renegotiate::OfferLine;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use engine::Rng;
use rtc::dtls::config::HandshakeConfig;
use rtc::dtls::endpoint::Endpoint;
use rtc::ice::agent::Agent;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportProtocol};

use self::description::{DtlsRole, LocalSource, LocalTransport, RemoteTransport};
use self::ice::{ICE_PWD_LEN, ICE_UFRAG_LEN};
use super::{
    CodecSpec, MediaKind, ReceivedRtp, WebrtcLegConfig, WebrtcLegEvent, WebrtcMedia,
    WebrtcTransportInfo,
};
use crate::bridge::MediaSocketKind;
use crate::error::WebrtcError;
use crate::rtp::{classify_datagram, DatagramKind};
use crate::rtp::{NtpClock, ReceptionStats, SendStats};
use crate::sdp::SessionDescription;
use crate::srtp::{SrtpProfile, SrtpSession};
use crate::transmit_queue::TransmitQueue;

/// Largest datagram handled; anything bigger cannot come from a 1500-byte MTU path.
const MAX_DATAGRAM: usize = 1600;
/// Outgoing datagrams waiting for the reactor (it drains after every input).
const OUT_QUEUE_SLOTS: usize = 8;
/// Control-plane events kept until polled.
const MAX_EVENTS: usize = 16;
/// Key frame requests kept until polled (one compound RTCP rarely carries more than two).
const MAX_KEYFRAME_REQUESTS: usize = 4;

/// Everything a failed handshake step can be reported as.
fn engine_err(op: &'static str) -> impl FnOnce(rtc::shared::error::Error) -> WebrtcError {
    move |source| WebrtcError::Engine { op, source }
}

/// One stream we send toward the browser.
#[derive(Debug)]
struct OutStream {
    ssrc: u32,
    stats: SendStats,
    clock_rate: u32,
}

/// One stream the browser sends.
#[derive(Debug)]
struct InStream {
    stats: Option<ReceptionStats>,
}

/// An RTP packet decrypted into `scratch`, waiting for `poll_media`.
#[derive(Debug, Clone, Copy)]
struct PendingRtp {
    header: ReceivedRtp,
    payload_start: usize,
}

/// The direct engine; see the module docs.
pub(crate) struct WebrtcLeg {
    identity: Arc<DtlsIdentity>,
    agent: Agent,
    /// The address written in our candidate; the agent knows the socket by it.
    candidate_addr: SocketAddr,
    local_ufrag: String,
    local_pwd: String,
    controlling: bool,
    /// We answer as an ICE-lite agent (RFC 8445 sec. 2.5).
    lite: bool,
    remote: Option<RemoteTransport>,
    /// DTLS client role: the handshake config, used once ICE connects.
    client_config: Option<Arc<HandshakeConfig>>,
    dtls: Option<Endpoint>,
    dtls_role: Option<DtlsRole>,
    /// DTLS runs over the ICE transport, not a 5-tuple (RFC 8445 sec. 12): one connection
    /// keyed by this fixed address whatever pair ICE selects.
    dtls_key: SocketAddr,
    srtp: Option<SrtpSession>,
    srtp_profile: Option<SrtpProfile>,
    /// Where media and DTLS go: the selected pair's remote candidate.
    peer: Option<SocketAddr>,
    /// Payload type -> stream kind, from the negotiated codecs (unique within a BUNDLE
    /// group, RFC 8843 sec. 9.1).
    pt_kind: [Option<MediaKind>; 128],
    clock_rates: [u32; 128],
    codecs: Vec<CodecSpec>,
    /// Offerer role: the kinds of our m-lines in order, and the codecs we offered.
    offered: Option<(Vec<MediaKind>, Vec<CodecSpec>)>,
    out_streams: [Option<OutStream>; 2],
    in_streams: [InStream; 2],
    /// The browser's SSRC per kind once seen, for PLI targets and report blocks.
    remote_ssrcs: [Option<u32>; 2],
    ntp: NtpClock,
    cname: String,
    rtcp_due: Option<Instant>,
    /// The leg's own random source (RTCP interval jitter); SSRCs and ICE credentials were
    /// drawn from it at construction.
    rng: Rng,
    scratch: Box<[u8]>,
    pending_rtp: Option<PendingRtp>,
    keyframe_requests: VecDeque<WebrtcMedia>,
    /// Datagrams for the reactor; pre-allocated, so sending allocates nothing.
    out: TransmitQueue,
    events: VecDeque<WebrtcLegEvent>,
    ice_connected: bool,
    ice_failed: bool,
    dtls_connected: bool,
    dtls_failed: bool,
    dtls_deadline: Option<Instant>,
    dtls_timeout: Duration,
    closed: bool,
    /// When the agent's `handle_timeout` last ran (see [`ICE_CONNECTED_TICK`]).
    last_agent_tick: Instant,
    /// `poll_timeout`'s last answer, `None` once control-plane input may have moved it.
    cached_deadline: Option<Option<Instant>>,
    /// The latest `now` seen, for `close()` (which takes none) to stamp its close_notify.
    last_now: Instant,
    /// Datagrams dropped: unknown source, SRTP failures, malformed packets.
    dropped: u64,
    /// `<sess-version>` of our last description (RFC 3264 section 8).
    sdp_version: u64,
    /// The m-lines of the session with the browser.
    lines: Vec<LegLine>,
    /// Our subsequent offer waiting for the browser's answer.
    pending_reoffer: Option<Vec<OfferLine>>,
}

impl WebrtcLeg {
    fn build(
        now: Instant,
        config: &WebrtcLegConfig,
        mut rng: Rng,
        ntp: NtpClock,
        codecs: &[CodecSpec],
        controlling: bool,
    ) -> Result<Self, WebrtcError> {
        let identity = config.identity.clone();
        // Letters and digits are `ice-char`s (RFC 8839 sec. 5.4).
        let local_ufrag = rng.token(ICE_UFRAG_LEN);
        let local_pwd = rng.token(ICE_PWD_LEN);
        let (agent, candidate_addr) = ice::new_agent(
            now,
            config,
            &identity,
            controlling,
            &local_ufrag,
            &local_pwd,
        )?;

        let mut out_streams: [Option<OutStream>; 2] = [None, None];
        for kind in MediaKind::ALL {
            if codecs
                .iter()
                .any(|c| c.kind == kind && !c.is_telephone_event())
            {
                // RFC 3550 sec. 8.1: SSRCs are random; 0 is avoided as some stacks treat it
                // as unset.
                let ssrc = rng.next_u32().max(1);
                out_streams[kind.index()] = Some(OutStream {
                    ssrc,
                    stats: SendStats::default(),
                    clock_rate: 0,
                });
            }
        }
        let mut leg = Self {
            identity,
            agent,
            candidate_addr,
            local_ufrag,
            local_pwd,
            controlling: controlling && !config.ice_lite,
            lite: config.ice_lite,
            remote: None,
            client_config: None,
            dtls: None,
            dtls_role: None,
            dtls_key: SocketAddr::from(([192, 0, 2, 1], 9)),
            srtp: None,
            srtp_profile: None,
            peer: None,
            pt_kind: [None; 128],
            clock_rates: [0; 128],
            codecs: Vec::new(),
            offered: None,
            out_streams,
            in_streams: [InStream { stats: None }, InStream { stats: None }],
            remote_ssrcs: [None, None],
            ntp,
            cname: description::STREAM_ID.to_owned(),
            rtcp_due: None,
            rng,
            scratch: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
            pending_rtp: None,
            keyframe_requests: VecDeque::with_capacity(MAX_KEYFRAME_REQUESTS),
            out: TransmitQueue::new(OUT_QUEUE_SLOTS),
            events: VecDeque::with_capacity(MAX_EVENTS),
            ice_connected: false,
            ice_failed: false,
            dtls_connected: false,
            dtls_failed: false,
            dtls_deadline: None,
            dtls_timeout: config.dtls_timeout,
            closed: false,
            last_now: now,
            last_agent_tick: now,
            cached_deadline: None,
            dropped: 0,
            sdp_version: 2,
            lines: Vec::new(),
            pending_reoffer: None,
        };
        leg.set_codecs(codecs);
        Ok(leg)
    }

    fn set_codecs(&mut self, codecs: &[CodecSpec]) {
        self.pt_kind = [None; 128];
        self.clock_rates = [0; 128];
        for c in codecs {
            let pt = usize::from(c.payload_type & 0x7f);
            self.pt_kind[pt] = Some(c.kind);
            self.clock_rates[pt] = c.clock_rate;
        }
        self.codecs = codecs.to_vec();
    }

    fn local_transport<'a>(
        &'a self,
        setup: &'static str,
        candidate: &'a str,
    ) -> LocalTransport<'a> {
        LocalTransport {
            ufrag: &self.local_ufrag,
            pwd: &self.local_pwd,
            fingerprint: &self.identity.fingerprint,
            setup,
            candidate,
            address: self.candidate_addr.ip(),
            port: self.candidate_addr.port(),
            ice_lite: self.lite,
            version: self.sdp_version,
        }
    }

    fn sources(&self) -> Vec<LocalSource<'_>> {
        MediaKind::ALL
            .into_iter()
            .filter_map(|kind| {
                self.out_streams[kind.index()]
                    .as_ref()
                    .map(|s| LocalSource {
                        kind,
                        ssrc: s.ssrc,
                        cname: &self.cname,
                    })
            })
            .collect()
    }

    fn candidate_line(&self) -> String {
        self.agent
            .get_local_candidates()
            .first()
            .map(|c| c.marshal())
            .unwrap_or_default()
    }

    fn session_id(&self) -> u64 {
        u64::from(
            self.out_streams
                .iter()
                .flatten()
                .map(|s| s.ssrc)
                .next()
                .unwrap_or(1),
        )
    }

    /// Answerer role (outgoing call: the browser offered). `codecs` are the ones the SIP side
    /// accepted, with the browser's payload types. Returns the leg and the complete answer.
    pub fn answer(
        now: Instant,
        config: &WebrtcLegConfig,
        rng: Rng,
        ntp: NtpClock,
        offer: &SessionDescription,
        codecs: &[CodecSpec],
    ) -> Result<(Self, SessionDescription), WebrtcError> {
        if codecs.is_empty() {
            return Err(WebrtcError::NoCommonCodec);
        }
        let accepted = description::accepted_offer_lines(offer, codecs);
        let remote = description::remote_transport(offer, &accepted)?;
        // The offerer controls unless it is lite (RFC 8445 sec. 6.1.1).
        let controlling = remote.ice_lite;
        let mut leg = Self::build(now, config, rng, ntp, codecs, controlling)?;
        let role = description::answerer_dtls_role(&remote.setup);
        let setup = match role {
            DtlsRole::Client => "active",
            DtlsRole::Server => "passive",
        };
        let candidate = leg.candidate_line();
        let sources = leg.sources();
        let answer = description::write_answer(
            offer,
            &accepted,
            codecs,
            &leg.local_transport(setup, &candidate),
            &sources,
            leg.session_id(),
        );
        drop(sources);
        leg.lines = Self::lines_of(offer, &accepted);
        leg.start(now, remote, role)?;
        Ok((leg, answer))
    }

    /// Offerer role (incoming SIP call: the gateway offers to the browser). Returns the leg
    /// and the complete offer (candidates and end-of-candidates included).
    pub fn offer(
        now: Instant,
        config: &WebrtcLegConfig,
        rng: Rng,
        ntp: NtpClock,
        codecs: &[CodecSpec],
    ) -> Result<(Self, SessionDescription), WebrtcError> {
        if codecs.is_empty() {
            return Err(WebrtcError::NoCommonCodec);
        }
        let mut leg = Self::build(now, config, rng, ntp, codecs, true)?;
        let candidate = leg.candidate_line();
        let sources = leg.sources();
        let (offer, kinds) = description::write_offer(
            codecs,
            &leg.local_transport("actpass", &candidate),
            &sources,
            leg.session_id(),
        );
        drop(sources);
        leg.lines = Self::lines_of(&offer, &(0..kinds.len()).collect::<Vec<_>>());
        leg.offered = Some((kinds, codecs.to_vec()));
        Ok((leg, offer))
    }

    /// Remote description known: start ICE and prepare DTLS in `role`.
    fn start(
        &mut self,
        now: Instant,
        remote: RemoteTransport,
        role: DtlsRole,
    ) -> Result<(), WebrtcError> {
        for c in &remote.candidates {
            if let Err(e) = self.add_candidate_line(c) {
                log::debug!("remote candidate {c:?} skipped: {e}");
            }
        }
        let config = self.handshake_config(&remote.fingerprint, role)?;
        let server_config = (role == DtlsRole::Server).then(|| config.clone());
        self.dtls = Some(Endpoint::new(
            self.candidate_addr,
            TransportProtocol::UDP,
            server_config,
        ));
        self.client_config = (role == DtlsRole::Client).then_some(config);
        self.dtls_role = Some(role);
        self.agent
            .start_connectivity_checks(
                now,
                self.controlling,
                remote.ufrag.clone(),
                remote.pwd.clone(),
            )
            .map_err(engine_err("start ICE"))?;
        self.remote = Some(remote);
        self.drain_ice(now);
        Ok(())
    }

    fn push_event(&mut self, event: WebrtcLegEvent) {
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(event);
        }
    }
}

/// The leg's interface to the bridge. Sans-IO: every input carries the caller's `now`,
/// nothing here touches a socket or reads the clock.
impl WebrtcLeg {
    /// Feed one datagram received on the leg's socket.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        _local: SocketAddr,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), WebrtcError> {
        if self.closed {
            return Ok(());
        }
        self.last_now = now;
        match classify_datagram(bytes) {
            DatagramKind::Stun => {
                self.cached_deadline = None;
                let result = self.agent.handle_read(TaggedBytesMut {
                    now,
                    transport: self.transport(from),
                    message: BytesMut::from(bytes),
                });
                self.drain_ice(now);
                result.map_err(engine_err("read STUN"))
            }
            DatagramKind::Dtls => {
                if !self.source_allowed(now, from) {
                    self.dropped += 1;
                    return Ok(());
                }
                self.cached_deadline = None;
                self.handle_dtls(now, from, bytes)
            }
            kind @ (DatagramKind::Rtp | DatagramKind::Rtcp) => {
                if !self.source_allowed(now, from) {
                    self.dropped += 1;
                    return Ok(());
                }
                self.handle_srtp(now, bytes, kind == DatagramKind::Rtcp)
            }
            _ => {
                self.dropped += 1;
                Ok(())
            }
        }
    }

    /// Advance timers; call when [`WebrtcLeg::poll_timeout`] is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), WebrtcError> {
        if self.closed {
            return Ok(());
        }
        self.last_now = now;
        self.cached_deadline = None;
        if self.dtls_deadline.is_some_and(|d| d <= now) {
            self.dtls_deadline = None;
            if !self.dtls_connected && !self.dtls_failed {
                self.dtls_failed = true;
                self.push_event(WebrtcLegEvent::DtlsFailed);
            }
        }
        if self.agent_deadline().is_some_and(|t| t <= now) {
            self.last_agent_tick = now;
            if let Err(e) = self.agent.handle_timeout(now) {
                log::debug!("ICE timeout: {e}");
            }
            self.drain_ice(now);
        }
        if let Some(endpoint) = self.dtls.as_mut() {
            if endpoint
                .poll_timeout(&self.dtls_key)
                .is_some_and(|t| t <= now)
            {
                if let Err(e) = endpoint.handle_timeout(self.dtls_key, now) {
                    log::debug!("DTLS timeout: {e}");
                }
                self.drain_dtls();
            }
        }
        if self.rtcp_due.is_some_and(|due| due <= now) {
            self.send_report(now);
            let next = self.next_rtcp_interval();
            self.rtcp_due = Some(now + next);
        }
        Ok(())
    }

    /// Next datagram to send: copied into `buf`, returns destination and length.
    pub fn poll_datagram(&mut self, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        self.out.pop_into(buf).map(|(_, _, to, len)| (to, len))
    }

    /// Next state change.
    pub fn poll_event(&mut self) -> Option<WebrtcLegEvent> {
        self.events.pop_front()
    }

    /// Earliest instant [`WebrtcLeg::handle_timeout`] must be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        // Media packets move no deadline, so the answer is cached until control-plane input
        // (STUN, DTLS, timers, candidates) may have changed one: the reactor asks after
        // every datagram, and the ICE agent and DTLS endpoint are not free to ask.
        if let Some(cached) = self.cached_deadline {
            return cached;
        }
        let dtls = self
            .dtls
            .as_ref()
            .and_then(|e| e.poll_timeout(&self.dtls_key));
        let next = [
            self.agent_deadline(),
            dtls,
            self.dtls_deadline,
            self.rtcp_due,
        ]
        .into_iter()
        .flatten()
        .min();
        self.cached_deadline = Some(next);
        next
    }

    /// Apply the browser's answer (offerer role only).
    pub fn apply_remote_answer(
        &mut self,
        now: Instant,
        answer: &SessionDescription,
    ) -> Result<(), WebrtcError> {
        if self.remote.is_some() {
            return Err(WebrtcError::WrongState(
                "remote description already applied",
            ));
        }
        let Some((kinds, offered)) = self.offered.clone() else {
            return Err(WebrtcError::WrongState("not the offerer"));
        };
        let accepted: Vec<usize> = answer
            .media
            .iter()
            .enumerate()
            .take(kinds.len())
            .filter(|(_, m)| !m.is_port_zero())
            .map(|(i, _)| i)
            .collect();
        let remote = description::remote_transport(answer, &accepted)?;
        let codecs = description::answered_codecs(answer, &kinds, &offered);
        if codecs.is_empty() {
            return Err(WebrtcError::NoCommonCodec);
        }
        self.last_now = now;
        self.cached_deadline = None;
        self.set_codecs(&codecs);
        for (i, line) in self.lines.iter_mut().enumerate() {
            line.active = accepted.contains(&i);
        }
        // A lite browser leaves control to us; a full one too, as answerer (RFC 8445 sec. 6.1.1).
        let role = description::offerer_dtls_role(&remote.setup);
        self.start(now, remote, role)
    }

    /// Our SSRC toward the browser for `kind`, if the leg sends that kind.
    pub fn local_ssrc(&self, kind: MediaKind) -> Option<u32> {
        self.out_streams[kind.index()].as_ref().map(|s| s.ssrc)
    }

    /// The codecs negotiated with the browser, with the browser-side payload types.
    pub fn negotiated_codecs(&self) -> Vec<CodecSpec> {
        self.codecs.clone()
    }

    /// DTLS/SRTP facts once connected.
    pub fn transport_info(&self) -> WebrtcTransportInfo {
        WebrtcTransportInfo {
            srtp_profile: self
                .srtp_profile
                .map(|p| p.name().to_owned())
                .unwrap_or_default(),
        }
    }

    /// Close the leg: queues DTLS close_notify (drain [`WebrtcLeg::poll_datagram`]
    /// afterwards) and reports [`WebrtcLegEvent::Closed`] once.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        if let Some(endpoint) = self.dtls.as_mut() {
            // close_notify (RFC 6347 sec. 4.1 via RFC 5246 sec. 7.2.1) so the browser stops
            // at once instead of waiting for consent to expire.
            let _ = endpoint.close(self.last_now);
        }
        self.drain_dtls();
        let _ = self.agent.close();
        self.closed = true;
        self.push_event(WebrtcLegEvent::Closed);
    }
}

/// Queue a copy of a datagram the ICE agent or the DTLS endpoint produced.
fn queue_copy(out: &mut TransmitQueue, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
    out.push_with(MediaSocketKind::Webrtc, |buf| {
        buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some((bytes.len(), from, to))
    });
}

impl std::fmt::Debug for WebrtcLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebrtcLeg")
            .field("candidate", &self.candidate_addr)
            .field("ice_connected", &self.ice_connected)
            .field("dtls_connected", &self.dtls_connected)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
