//! [`WebrtcEngine`] implemented on webrtc-rs `rtc` 0.21.1 (`RTCPeerConnection`, sans-IO).
//!
//! Driving rules from shared/design/media-rtc.md, both applied here so the reactor cannot get
//! them wrong:
//! 1. Draining `poll_event()` can queue work (the DTLS ClientHello after ICE picks a pair) that
//!    only `handle_timeout` flushes, while `poll_timeout()` does not report it as due. So after
//!    every input the leg drains events into its own queue and, when any came out, calls
//!    `handle_timeout(now)` again ([`RtcWebrtcLeg::pump`]).
//! 2. An expired deadline that does not advance after `handle_timeout` (webrtc-rs/rtc#158,
//!    #160) would spin the reactor; [`RtcWebrtcLeg::poll_timeout`] backs off instead.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::{RTCIceConnectionState, RTCPeerConnectionState};
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::statistics::StatsSelector;

use super::keyframe_forwarder::{KeyframeRequestForwarder, KEYFRAME_FORWARDER_SLOT};
use super::{
    CodecSpec, MediaKind, OutgoingRtp, ReceivedRtp, WebrtcEngine, WebrtcLegConfig, WebrtcLegEvent,
    WebrtcMedia, WebrtcTransportInfo,
};
use crate::error::WebrtcError;

/// Bound on events kept for the bridge; the leg emits at most a handful per call, so hitting
/// it means nobody drains, and dropping is better than growing.
const MAX_QUEUED_EVENTS: usize = 32;
/// How many event-drain + `handle_timeout` rounds one pump may take (rule 1 above); `rtc`
/// settles in one or two, the cap only guards against a feedback loop.
const MAX_PUMP_ROUNDS: usize = 8;
/// Track ids of our outgoing streams; RTCP feedback about them comes back tagged with these.
const AUDIO_TRACK_ID: &str = "sylk-audio";
const VIDEO_TRACK_ID: &str = "sylk-video";
/// First back-off for a non-advancing expired deadline (rule 2), doubled up to the cap.
const STUCK_DEADLINE_BACKOFF: Duration = Duration::from_millis(10);
const STUCK_DEADLINE_BACKOFF_CAP: Duration = Duration::from_millis(640);

fn engine_err(op: &'static str) -> impl FnOnce(rtc::shared::error::Error) -> WebrtcError {
    move |source| WebrtcError::Engine { op, source }
}

fn rtc_kind(kind: MediaKind) -> RtpCodecKind {
    match kind {
        MediaKind::Audio => RtpCodecKind::Audio,
        MediaKind::Video => RtpCodecKind::Video,
    }
}

fn media_kind(kind: RtpCodecKind) -> Option<MediaKind> {
    match kind {
        RtpCodecKind::Audio => Some(MediaKind::Audio),
        RtpCodecKind::Video => Some(MediaKind::Video),
        _ => None,
    }
}

/// `a=rtpmap` name -> the MIME type `rtc`'s media engine matches on.
fn mime_type(spec: &CodecSpec) -> String {
    let top = match spec.kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    };
    format!("{top}/{}", spec.name)
}

/// RTCP feedback a video codec advertises so the browser answers PLI/FIR (RFC 4585 sec. 4.2,
/// RFC 5104 sec. 7.1) and NACK; audio gets none (Opus relies on in-band FEC).
fn video_feedback() -> Vec<RTCPFeedback> {
    [("nack", ""), ("nack", "pli"), ("ccm", "fir")]
        .iter()
        .map(|(typ, parameter)| RTCPFeedback {
            typ: (*typ).to_owned(),
            parameter: (*parameter).to_owned(),
        })
        .collect()
}

fn codec_parameters(spec: &CodecSpec) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime_type(spec),
            clock_rate: spec.clock_rate,
            channels: spec.channels,
            sdp_fmtp_line: spec.fmtp.clone(),
            rtcp_feedback: if spec.kind == MediaKind::Video && !spec.is_telephone_event() {
                video_feedback()
            } else {
                Vec::new()
            },
        },
        payload_type: spec.payload_type,
    }
}

/// SplitMix64: a tiny, seedable generator for SSRCs (RFC 3550 sec. 8.1 wants them random;
/// tests want them reproducible). Not for keys: DTLS and ICE credentials come from `rtc`.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What the leg knows about one of its outgoing streams.
#[derive(Debug, Clone, Copy)]
struct LocalStream {
    sender: RTCRtpSenderId,
    ssrc: u32,
}

/// What the leg knows about one incoming stream (from `OnTrack`).
#[derive(Debug, Clone, Copy)]
struct RemoteStream {
    kind: MediaKind,
    receiver: RTCRtpReceiverId,
    ssrc: u32,
}

/// The WebRTC leg on `rtc` 0.21.1.
pub struct RtcWebrtcLeg {
    pc: RTCPeerConnection,
    local_addr: SocketAddr,
    audio_out: Option<LocalStream>,
    video_out: Option<LocalStream>,
    /// `rtc` track id -> incoming stream; looked up with `&str`, so no allocation per packet.
    remote_tracks: HashMap<String, RemoteStream>,
    events: VecDeque<WebrtcLegEvent>,
    ice_connected: bool,
    ice_failed: bool,
    dtls_connected: bool,
    dtls_failed: bool,
    /// ICE connected but DTLS not yet: give up at this instant. rtc 0.21.1 never moves its
    /// DTLS transport to `Failed` (a handshake error, e.g. a certificate that does not match
    /// the SDP fingerprint, RFC 8122 sec. 5, is only logged), so the leg times it out itself.
    dtls_deadline: Option<Instant>,
    dtls_timeout: Duration,
    closed: bool,
    remote_description_set: bool,
    /// Rule 2: the expired deadline seen before and after the last `handle_timeout`.
    stuck_deadline: Option<Instant>,
    stuck_rounds: u32,
    backoff_until: Option<Instant>,
}

impl RtcWebrtcLeg {
    fn build(
        now: Instant,
        config: &WebrtcLegConfig,
        codecs: &[CodecSpec],
    ) -> Result<Self, WebrtcError> {
        let mut media_engine = MediaEngine::default();
        for spec in codecs {
            media_engine
                .register_codec(codec_parameters(spec), rtc_kind(spec.kind))
                .map_err(engine_err("register a codec"))?;
        }
        // SR/RR toward the browser, NACK, TWCC: the browser expects them (its stats and
        // bandwidth estimation), and rtc consumes the browser's reports (media-rtc.md pitfall 3).
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)
            .map_err(engine_err("register interceptors"))?
            // Last in the chain: lets the browser's PLI/FIR reach the bridge.
            .with(
                Slot::from(KEYFRAME_FORWARDER_SLOT),
                KeyframeRequestForwarder::default(),
            );
        let setting_engine = SettingEngineBuilder::new()
            .with_lite(config.ice_lite)
            // A server has no business sending multicast DNS; browsers with media permission
            // expose real addresses and peer-reflexive discovery covers the rest.
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            // AEAD first: about half the CPU of AES-CM + HMAC-SHA1 (performance.md).
            .with_srtp_protection_profiles(vec![
                rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
                rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            ])
            .build();
        // No ICE servers: host candidates only (the reactor owns the sockets).
        let configuration = RTCConfigurationBuilder::new().build();
        let pc = RTCPeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_setting_engine(setting_engine)
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(engine_err("build the peer connection"))?;
        let mut leg = Self {
            pc,
            local_addr: config.local_addr,
            audio_out: None,
            video_out: None,
            remote_tracks: HashMap::new(),
            events: VecDeque::new(),
            ice_connected: false,
            ice_failed: false,
            dtls_connected: false,
            closed: false,
            remote_description_set: false,
            stuck_deadline: None,
            stuck_rounds: 0,
            backoff_until: None,
            dtls_failed: false,
            dtls_deadline: None,
            dtls_timeout: config.dtls_timeout,
        };
        let mut seed = config.seed;
        for kind in [MediaKind::Audio, MediaKind::Video] {
            // A stream exists for a kind with at least one real (non telephone-event) codec.
            if !codecs
                .iter()
                .any(|c| c.kind == kind && !c.is_telephone_event())
            {
                continue;
            }
            let ssrc = (splitmix64(&mut seed) as u32).max(1);
            let track_id = match kind {
                MediaKind::Audio => AUDIO_TRACK_ID,
                MediaKind::Video => VIDEO_TRACK_ID,
            };
            let track = MediaStreamTrack::new(
                "sylk-gateway".to_owned(),
                track_id.to_owned(),
                track_id.to_owned(),
                rtc_kind(kind),
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    // No codec here on purpose: rtc turns an encoding's codec into the
                    // transceiver's codec preferences, which would drop every other codec
                    // (telephone-event included) from the offer/answer. write_rtp accepts
                    // any negotiated PT.
                    ..Default::default()
                }],
            );
            let sender = leg.pc.add_track(track).map_err(engine_err("add a track"))?;
            let stream = Some(LocalStream { sender, ssrc });
            match kind {
                MediaKind::Audio => leg.audio_out = stream,
                MediaKind::Video => leg.video_out = stream,
            }
        }
        Ok(leg)
    }

    /// Host candidate on the advertised (or bound) address, then end-of-candidates: sylkRTC
    /// has no server-to-client trickle, so the local SDP must be complete (RFC 8838 sec. 8.2
    /// `a=end-of-candidates`).
    fn gather(&mut self, config: &WebrtcLegConfig) -> Result<(), WebrtcError> {
        let ip = config.advertised_ip.unwrap_or(config.local_addr.ip());
        let candidate = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: ip.to_string(),
                port: config.local_addr.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .map_err(engine_err("create the host candidate"))?;
        let init = RTCIceCandidate::from(&candidate)
            .to_json()
            .map_err(engine_err("encode the host candidate"))?;
        self.pc
            .add_local_candidate(init)
            .map_err(engine_err("add the host candidate"))?;
        self.pc
            .add_local_candidate(RTCIceCandidateInit::default())
            .map_err(engine_err("end local gathering"))
    }

    fn local_sdp(&self) -> Result<String, WebrtcError> {
        self.pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or(WebrtcError::WrongState("no local description"))
    }

    /// Answerer role (outgoing call: the browser offered). `codecs` are the ones the SIP side
    /// accepted, with the browser's payload types, so the answer contains nothing the bridge
    /// could not forward. Returns the leg and the complete answer SDP.
    pub fn answer(
        now: Instant,
        config: &WebrtcLegConfig,
        offer_sdp: &str,
        codecs: &[CodecSpec],
    ) -> Result<(Self, String), WebrtcError> {
        if codecs.is_empty() {
            return Err(WebrtcError::NoCommonCodec);
        }
        let mut leg = Self::build(now, config, codecs)?;
        let offer =
            RTCSessionDescription::offer(offer_sdp.to_owned()).map_err(WebrtcError::InvalidSdp)?;
        leg.pc
            .set_remote_description(now, offer)
            .map_err(WebrtcError::InvalidSdp)?;
        leg.remote_description_set = true;
        leg.gather(config)?;
        let answer = leg
            .pc
            .create_answer(None)
            .map_err(engine_err("create the answer"))?;
        leg.pc
            .set_local_description(now, answer)
            .map_err(engine_err("set the local answer"))?;
        leg.pump(now);
        let sdp = leg.local_sdp()?;
        Ok((leg, sdp))
    }

    /// Offerer role (incoming SIP call: the gateway offers to the browser). Returns the leg
    /// and the complete offer SDP (explicit `a=sendrecv`, candidates, end-of-candidates).
    pub fn offer(
        now: Instant,
        config: &WebrtcLegConfig,
        codecs: &[CodecSpec],
    ) -> Result<(Self, String), WebrtcError> {
        if codecs.is_empty() {
            return Err(WebrtcError::NoCommonCodec);
        }
        let mut leg = Self::build(now, config, codecs)?;
        let offer = leg
            .pc
            .create_offer(None)
            .map_err(engine_err("create the offer"))?;
        leg.pc
            .set_local_description(now, offer)
            .map_err(engine_err("set the local offer"))?;
        leg.gather(config)?;
        leg.pump(now);
        let sdp = leg.local_sdp()?;
        Ok((leg, sdp))
    }

    /// Drain `rtc`'s events into our queue and, while any came out, run `handle_timeout(now)`
    /// again so the work they queued is flushed now instead of on the next ICE tick (rule 1).
    fn pump(&mut self, now: Instant) {
        for _ in 0..MAX_PUMP_ROUNDS {
            let mut drained = 0usize;
            while let Some(event) = self.pc.poll_event() {
                drained += 1;
                self.on_rtc_event(now, event);
            }
            if drained == 0 {
                return;
            }
            if let Err(e) = self.pc.handle_timeout(now) {
                log::debug!("rtc handle_timeout after events: {e}");
            }
        }
    }

    fn push_event(&mut self, event: WebrtcLegEvent) {
        if self.events.len() < MAX_QUEUED_EVENTS {
            self.events.push_back(event);
        }
    }

    fn on_rtc_event(&mut self, now: Instant, event: RTCPeerConnectionEvent) {
        match event {
            RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(state) => match state {
                RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
                    if !self.ice_connected =>
                {
                    self.ice_connected = true;
                    if !self.dtls_connected {
                        self.dtls_deadline = Some(now + self.dtls_timeout);
                    }
                    self.push_event(WebrtcLegEvent::IceConnected);
                }
                RTCIceConnectionState::Failed if !self.ice_failed => {
                    self.ice_failed = true;
                    self.push_event(WebrtcLegEvent::IceFailed);
                }
                _ => {}
            },
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => match state {
                RTCPeerConnectionState::Connected if !self.dtls_connected && !self.dtls_failed => {
                    self.dtls_connected = true;
                    self.dtls_deadline = None;
                    self.push_event(WebrtcLegEvent::DtlsConnected);
                }
                RTCPeerConnectionState::Failed => {
                    // The pc fails for ICE and DTLS alike; which one it was follows from whether
                    // ICE had connected.
                    if !self.ice_connected && !self.ice_failed {
                        self.ice_failed = true;
                        self.push_event(WebrtcLegEvent::IceFailed);
                    } else if self.ice_connected && !self.dtls_connected && !self.dtls_failed {
                        self.dtls_failed = true;
                        self.dtls_deadline = None;
                        self.push_event(WebrtcLegEvent::DtlsFailed);
                    }
                }
                RTCPeerConnectionState::Closed if !self.closed => {
                    self.closed = true;
                    self.push_event(WebrtcLegEvent::Closed);
                }
                _ => {}
            },
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                let kind = self
                    .pc
                    .rtp_receiver(init.receiver_id)
                    .and_then(|r| media_kind(r.track().kind()));
                if let Some(kind) = kind {
                    self.remote_tracks.insert(
                        init.track_id,
                        RemoteStream {
                            kind,
                            receiver: init.receiver_id,
                            ssrc: init.ssrc,
                        },
                    );
                }
            }
            _ => {}
        }
    }

    fn local_stream(&self, kind: MediaKind) -> Option<LocalStream> {
        match kind {
            MediaKind::Audio => self.audio_out,
            MediaKind::Video => self.video_out,
        }
    }

    fn keyframe_request_in(
        &self,
        track_id: &str,
        packets: &[Box<dyn rtc::rtcp::packet::Packet>],
    ) -> Option<WebrtcMedia> {
        // RTCP about one of our senders carries that sender's track id (ours, so exact).
        let kind = self
            .remote_tracks
            .get(track_id)
            .map(|s| s.kind)
            .or(match track_id {
                AUDIO_TRACK_ID => Some(MediaKind::Audio),
                VIDEO_TRACK_ID => Some(MediaKind::Video),
                _ => None,
            })?;
        for p in packets {
            let any = p.as_any();
            if any.is::<PictureLossIndication>() {
                return Some(WebrtcMedia::KeyframeRequest {
                    kind,
                    full_intra: false,
                });
            }
            if any.is::<FullIntraRequest>() {
                return Some(WebrtcMedia::KeyframeRequest {
                    kind,
                    full_intra: true,
                });
            }
        }
        None
    }
}

impl WebrtcEngine for RtcWebrtcLeg {
    fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), WebrtcError> {
        let result = self.pc.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: local,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(bytes),
        });
        self.pump(now);
        // A datagram rtc cannot use (garbage, a stray STUN) is the peer's problem, not a
        // reason to tear the call down: report it and carry on.
        result.map_err(engine_err("read a datagram"))
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), WebrtcError> {
        if self.dtls_deadline.is_some_and(|d| d <= now) {
            self.dtls_deadline = None;
            if !self.dtls_connected && !self.dtls_failed {
                self.dtls_failed = true;
                self.push_event(WebrtcLegEvent::DtlsFailed);
            }
        }
        let before = self.pc.poll_timeout();
        let result = self.pc.handle_timeout(now);
        self.pump(now);
        let after = self.pc.poll_timeout();
        match (before, after) {
            (Some(b), Some(a)) if a == b && a <= now => {
                self.stuck_rounds = self.stuck_rounds.saturating_add(1);
                let backoff = STUCK_DEADLINE_BACKOFF
                    .saturating_mul(1u32 << self.stuck_rounds.min(6))
                    .min(STUCK_DEADLINE_BACKOFF_CAP);
                self.stuck_deadline = Some(a);
                self.backoff_until = Some(now + backoff);
            }
            _ => {
                self.stuck_rounds = 0;
                self.stuck_deadline = None;
                self.backoff_until = None;
            }
        }
        result.map_err(engine_err("handle a timeout"))
    }

    fn poll_datagram(&mut self, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        loop {
            let out = self.pc.poll_write()?;
            let len = out.message.len();
            // Only UDP on the leg's own socket; anything bigger than the caller's buffer
            // (never for a 1500-byte MTU) is dropped rather than truncated.
            if let Some(dst) = buf.get_mut(..len) {
                dst.copy_from_slice(&out.message);
                return Some((out.transport.peer_addr, len));
            }
            log::warn!("dropping {len}-byte WebRTC datagram: transmit buffer too small");
        }
    }

    fn poll_event(&mut self) -> Option<WebrtcLegEvent> {
        self.events.pop_front()
    }

    fn poll_media(&mut self, payload: &mut [u8]) -> Option<WebrtcMedia> {
        loop {
            let TaggedRTCMessage { now, message } = self.pc.poll_read()?;
            match message {
                RTCMessage::RtpPacket(track_id, packet) => {
                    let Some(stream) = self.remote_tracks.get(track_id.as_str()) else {
                        continue;
                    };
                    let len = packet.payload.len();
                    let Some(dst) = payload.get_mut(..len) else {
                        continue;
                    };
                    dst.copy_from_slice(&packet.payload);
                    return Some(WebrtcMedia::Rtp(ReceivedRtp {
                        kind: stream.kind,
                        marker: packet.header.marker,
                        payload_type: packet.header.payload_type,
                        sequence_number: packet.header.sequence_number,
                        timestamp: packet.header.timestamp,
                        ssrc: packet.header.ssrc,
                        payload_len: len,
                        arrival: now,
                    }));
                }
                RTCMessage::RtcpPacket(track_id, packets) => {
                    if let Some(m) = self.keyframe_request_in(&track_id, &packets) {
                        return Some(m);
                    }
                }
                _ => {}
            }
        }
    }

    fn send_rtp(
        &mut self,
        now: Instant,
        rtp: OutgoingRtp,
        payload: &[u8],
    ) -> Result<(), WebrtcError> {
        let stream = self
            .local_stream(rtp.kind)
            .ok_or(WebrtcError::WrongState("no outgoing stream of that kind"))?;
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: rtp.marker,
                payload_type: rtp.payload_type,
                sequence_number: rtp.sequence_number,
                timestamp: rtp.timestamp,
                ssrc: stream.ssrc,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        };
        let mut sender = self
            .pc
            .rtp_sender(stream.sender)
            .ok_or(WebrtcError::WrongState("sender vanished"))?;
        let result = sender
            .write_rtp(now, packet)
            .map_err(engine_err("write RTP"));
        self.pump(now);
        result
    }

    fn request_keyframe(&mut self, now: Instant, kind: MediaKind) -> Result<(), WebrtcError> {
        let Some(stream) = self
            .remote_tracks
            .values()
            .find(|s| s.kind == kind)
            .copied()
        else {
            return Ok(());
        };
        let sender_ssrc = self.local_ssrc(kind).unwrap_or(0);
        let mut receiver = self
            .pc
            .rtp_receiver(stream.receiver)
            .ok_or(WebrtcError::WrongState("receiver vanished"))?;
        let result = receiver
            .write_rtcp(
                now,
                vec![Box::new(PictureLossIndication {
                    sender_ssrc,
                    media_ssrc: stream.ssrc,
                })],
            )
            .map_err(engine_err("write a PLI"));
        self.pump(now);
        result
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let engine =
            self.pc
                .poll_timeout()
                .map(|next| match (self.stuck_deadline, self.backoff_until) {
                    (Some(stuck), Some(until)) if next == stuck => until,
                    _ => next,
                });
        match (engine, self.dtls_deadline) {
            (Some(e), Some(d)) => Some(e.min(d)),
            (e, d) => e.or(d),
        }
    }

    fn add_remote_candidate(&mut self, candidate: &str) -> Result<(), WebrtcError> {
        if !self.remote_description_set {
            return Err(WebrtcError::NoRemoteDescription);
        }
        // Empty = end-of-candidates (RFC 8838 sec. 4.3); rtc ignores it, and so do we.
        let trimmed = candidate.trim().trim_start_matches("a=");
        if trimmed.is_empty() || trimmed == "end-of-candidates" {
            return Ok(());
        }
        self.pc
            .add_remote_candidate(RTCIceCandidateInit {
                candidate: trimmed.to_owned(),
                ..Default::default()
            })
            .map_err(WebrtcError::InvalidCandidate)
    }

    fn apply_remote_answer(&mut self, now: Instant, sdp: &str) -> Result<(), WebrtcError> {
        if self.remote_description_set {
            return Err(WebrtcError::WrongState(
                "remote description already applied",
            ));
        }
        let answer =
            RTCSessionDescription::answer(sdp.to_owned()).map_err(WebrtcError::InvalidSdp)?;
        self.pc
            .set_remote_description(now, answer)
            .map_err(WebrtcError::InvalidSdp)?;
        self.remote_description_set = true;
        self.pump(now);
        Ok(())
    }

    fn local_ssrc(&self, kind: MediaKind) -> Option<u32> {
        self.local_stream(kind).map(|s| s.ssrc)
    }

    fn negotiated_codecs(&mut self) -> Vec<CodecSpec> {
        let mut out = Vec::new();
        for stream in [self.audio_out, self.video_out].into_iter().flatten() {
            let Some(mut sender) = self.pc.rtp_sender(stream.sender) else {
                continue;
            };
            for c in &sender.get_parameters().rtp_parameters.codecs {
                let Some((top, name)) = c.rtp_codec.mime_type.split_once('/') else {
                    continue;
                };
                let kind = if top.eq_ignore_ascii_case("video") {
                    MediaKind::Video
                } else {
                    MediaKind::Audio
                };
                out.push(CodecSpec {
                    kind,
                    name: name.to_owned(),
                    clock_rate: c.rtp_codec.clock_rate,
                    channels: c.rtp_codec.channels,
                    fmtp: c.rtp_codec.sdp_fmtp_line.clone(),
                    payload_type: c.payload_type,
                });
            }
        }
        out
    }

    fn transport_info(&mut self, now: Instant) -> WebrtcTransportInfo {
        let report = self.pc.get_stats(now, StatsSelector::None);
        WebrtcTransportInfo {
            srtp_profile: report
                .transport()
                .map(|t| t.srtp_cipher.clone())
                .unwrap_or_default(),
        }
    }

    fn close(&mut self) {
        if let Err(e) = self.pc.close() {
            log::debug!("rtc close: {e}");
        }
    }
}

impl std::fmt::Debug for RtcWebrtcLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcWebrtcLeg")
            .field("local_addr", &self.local_addr)
            .field("ice_connected", &self.ice_connected)
            .field("dtls_connected", &self.dtls_connected)
            .finish_non_exhaustive()
    }
}
