//! Deterministic simulation harness for the bridge tests: a virtual clock, an in-memory
//! seeded lossy link (delay + loss), a "browser" built from `rtc` itself, and a scripted SIP
//! RTP peer. No sockets, no sleeps: time only moves when the harness advances it.
#![allow(dead_code)]

mod keyframe_forwarder;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use engine::Output;
use keyframe_forwarder::{KeyframeRequestForwarder, KEYFRAME_FORWARDER_SLOT};
use media::bridge::{Bridge, BridgeConfig, BridgeEvent};
use media::webrtc_leg::host_candidate;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidate;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RTCPFeedback;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

pub const BROWSER: &str = "127.0.0.1:41000";
pub const BRIDGE_WEBRTC: &str = "127.0.0.1:41002";
pub const BRIDGE_SIP_RTP: &str = "127.0.0.1:41004";
pub const BRIDGE_SIP_RTCP: &str = "127.0.0.1:41005";
pub const SIP_PEER_RTP: &str = "127.0.0.1:42000";
pub const SIP_PEER_RTCP: &str = "127.0.0.1:42001";
pub const BRIDGE_SIP_VIDEO_RTP: &str = "127.0.0.1:41006";
pub const BRIDGE_SIP_VIDEO_RTCP: &str = "127.0.0.1:41007";
pub const SIP_PEER_VIDEO_RTP: &str = "127.0.0.1:42010";
pub const SIP_PEER_VIDEO_RTCP: &str = "127.0.0.1:42011";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// SplitMix64, seeded: loss decisions are reproducible.
pub fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A datagram in flight.
struct Flight {
    at: Instant,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// The tiny netem: fixed one-way delay and seeded random loss per datagram.
pub struct Netem {
    flights: Vec<Flight>,
    rng: u64,
    pub loss_per_mille: u64,
    pub delay: Duration,
    /// Datagrams toward this address vanish (a silent peer).
    pub blackhole: Option<SocketAddr>,
    pub lost: u64,
}

impl Netem {
    pub fn new(seed: u64, loss_per_mille: u64, delay: Duration) -> Self {
        Self {
            flights: Vec::new(),
            rng: seed,
            loss_per_mille,
            delay,
            blackhole: None,
            lost: 0,
        }
    }

    pub fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        if self.blackhole == Some(to) {
            return;
        }
        if next_random(&mut self.rng) % 1000 < self.loss_per_mille {
            self.lost += 1;
            return;
        }
        self.flights.push(Flight {
            at: now + self.delay,
            from,
            to,
            bytes: bytes.to_vec(),
        });
    }

    pub fn next_delivery(&self) -> Option<Instant> {
        self.flights.iter().map(|f| f.at).min()
    }

    fn take_due(&mut self, now: Instant) -> Vec<Flight> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flights)
            .into_iter()
            .partition(|f| f.at <= now);
        self.flights = later;
        due
    }
}

/// Codecs of the simulated browser: Opus 111, PCMU 0, telephone-event 126/8000.
pub fn browser_codecs() -> Vec<(RTCRtpCodecParameters, RtpCodecKind)> {
    let c = |mime: &str, clock, channels, fmtp: &str, pt| RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate: clock,
            channels,
            sdp_fmtp_line: fmtp.to_owned(),
            rtcp_feedback: if mime.starts_with("video") {
                vec![
                    RTCPFeedback {
                        typ: "nack".into(),
                        parameter: "pli".into(),
                    },
                    RTCPFeedback {
                        typ: "ccm".into(),
                        parameter: "fir".into(),
                    },
                ]
            } else {
                vec![]
            },
        },
        payload_type: pt,
    };
    vec![
        (
            c("audio/opus", 48000, 2, "minptime=10;useinbandfec=1", 111),
            RtpCodecKind::Audio,
        ),
        (c("audio/PCMU", 8000, 0, "", 0), RtpCodecKind::Audio),
        (
            c("audio/telephone-event", 8000, 0, "0-15", 126),
            RtpCodecKind::Audio,
        ),
        (c("video/VP8", 90000, 0, "", 96), RtpCodecKind::Video),
    ]
}

/// One RTP packet as a receiver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRtp {
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// The browser, played by `rtc` itself.
pub struct BrowserPeer {
    pub pc: RTCPeerConnection,
    pub addr: SocketAddr,
    pub sender: RTCRtpSenderId,
    pub ssrc: u32,
    pub connected: bool,
    pub failed: bool,
    pub received: Vec<SeenRtp>,
    tracks: HashMap<String, ()>,
    /// The browser's video sender (when it has one) and its SSRC.
    pub video: Option<(RTCRtpSenderId, u32)>,
    /// The receiver of the gateway's video and the gateway's video SSRC, once it arrived.
    pub video_receiver: Option<(RTCRtpReceiverId, u32)>,
    /// PLI/FIR the browser received about its own video.
    pub keyframe_requests: u32,
}

impl BrowserPeer {
    pub fn new(now: Instant, ssrc: u32) -> Self {
        Self::with_srtp_profiles(now, ssrc, None)
    }

    /// A browser that offers only `profiles` in its DTLS use_srtp extension (RFC 5764 sec. 4.1.1).
    pub fn with_srtp_profiles(
        now: Instant,
        ssrc: u32,
        profiles: Option<Vec<SrtpProtectionProfile>>,
    ) -> Self {
        let mut settings = SettingEngineBuilder::new();
        if let Some(p) = profiles {
            settings = settings.with_srtp_protection_profiles(p);
        }
        let mut media_engine = MediaEngine::default();
        for (codec, kind) in browser_codecs() {
            media_engine
                .register_codec(codec, kind)
                .expect("register codec");
        }
        // A real browser hands PLI/FIR to its encoder; rtc needs the forwarder for that.
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)
            .expect("interceptors")
            .with(
                Slot::from(KEYFRAME_FORWARDER_SLOT),
                KeyframeRequestForwarder::default(),
            );
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(settings.build())
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .build(now)
            .expect("browser pc");
        let track = MediaStreamTrack::new(
            "browser".to_owned(),
            "browser-audio".to_owned(),
            "browser-audio".to_owned(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                ..Default::default()
            }],
        );
        let sender = pc.add_track(track).expect("add track");
        Self {
            pc,
            addr: addr(BROWSER),
            sender,
            ssrc,
            connected: false,
            failed: false,
            received: Vec::new(),
            tracks: HashMap::new(),
            video: None,
            video_receiver: None,
            keyframe_requests: 0,
        }
    }

    /// Add a sendrecv VP8 track, as a browser with a camera does.
    pub fn add_video_track(&mut self, ssrc: u32) {
        let track = MediaStreamTrack::new(
            "browser".to_owned(),
            "browser-video".to_owned(),
            "browser-video".to_owned(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                ..Default::default()
            }],
        );
        let sender = self.pc.add_track(track).expect("add video track");
        self.video = Some((sender, ssrc));
    }

    pub fn send_video(&mut self, now: Instant, seq: u16, ts: u32, payload: &[u8]) {
        let Some((sender, ssrc)) = self.video else {
            return;
        };
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: 96,
                sequence_number: seq,
                timestamp: ts,
                ssrc,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        };
        if let Some(mut s) = self.pc.rtp_sender(sender) {
            s.write_rtp(now, packet).expect("browser video write_rtp");
        }
    }

    /// Ask the gateway for a key frame, as a browser's decoder does after loss.
    pub fn send_pli(&mut self, now: Instant) -> bool {
        let Some((receiver, media_ssrc)) = self.video_receiver else {
            return false;
        };
        let sender_ssrc = self.video.map_or(0, |(_, s)| s);
        let Some(mut r) = self.pc.rtp_receiver(receiver) else {
            return false;
        };
        r.write_rtcp(
            now,
            vec![Box::new(PictureLossIndication {
                sender_ssrc,
                media_ssrc,
            })],
        )
        .is_ok()
    }

    /// The browser's host candidate, as rtc's JSON form (what sylkRTC trickles).
    fn own_candidate(&self) -> rtc::peer_connection::transport::RTCIceCandidateInit {
        let c = host_candidate(self.addr).expect("candidate");
        RTCIceCandidate::from(&c).to_json().expect("json")
    }

    pub fn candidate_line(&self) -> String {
        self.own_candidate().candidate
    }

    fn add_own_candidate(&mut self) {
        let candidate = self.own_candidate();
        self.pc
            .add_local_candidate(candidate)
            .expect("local candidate");
    }

    /// Browser as offerer: returns the offer SDP (without candidates: they are trickled).
    pub fn create_offer(&mut self, now: Instant) -> String {
        let offer = self.pc.create_offer(None).expect("offer");
        self.pc
            .set_local_description(now, offer.clone())
            .expect("set local offer");
        self.add_own_candidate();
        offer.sdp
    }

    pub fn apply_answer(&mut self, now: Instant, sdp: &str) {
        let answer = RTCSessionDescription::answer(sdp.to_owned()).expect("answer parse");
        self.pc
            .set_remote_description(now, answer)
            .expect("set remote answer");
    }

    /// Browser as answerer: returns the answer SDP, with its candidate.
    pub fn answer_offer(&mut self, now: Instant, sdp: &str) -> String {
        let offer = RTCSessionDescription::offer(sdp.to_owned()).expect("offer parse");
        self.pc
            .set_remote_description(now, offer)
            .expect("set remote offer");
        self.add_own_candidate();
        let answer = self.pc.create_answer(None).expect("answer");
        self.pc
            .set_local_description(now, answer)
            .expect("set local answer");
        self.pc.local_description().expect("local description").sdp
    }

    pub fn payload_type(&mut self, mime: &str) -> Option<u8> {
        let mut sender = self.pc.rtp_sender(self.sender)?;
        sender
            .get_parameters()
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
            .map(|c| c.payload_type)
    }

    pub fn send_rtp(
        &mut self,
        now: Instant,
        pt: u8,
        seq: u16,
        ts: u32,
        marker: bool,
        payload: &[u8],
    ) {
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker,
                payload_type: pt,
                sequence_number: seq,
                timestamp: ts,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        };
        if let Some(mut sender) = self.pc.rtp_sender(self.sender) {
            sender.write_rtp(now, packet).expect("browser write_rtp");
        }
    }

    fn handle_read(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let _ = self.pc.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(bytes),
        });
    }

    /// Drain events and reads, applying media-rtc.md rule 1 (handle_timeout after events).
    fn pump(&mut self, now: Instant) {
        for _ in 0..8 {
            let mut n = 0;
            while let Some(event) = self.pc.poll_event() {
                n += 1;
                match event {
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                        RTCPeerConnectionState::Connected,
                    ) => self.connected = true,
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                        RTCPeerConnectionState::Failed,
                    ) => self.failed = true,
                    RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                        let is_video = self
                            .pc
                            .rtp_receiver(init.receiver_id)
                            .is_some_and(|r| r.track().kind() == RtpCodecKind::Video);
                        if is_video {
                            self.video_receiver = Some((init.receiver_id, init.ssrc));
                        }
                        self.tracks.insert(init.track_id, ());
                    }
                    _ => {}
                }
            }
            while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
                if let RTCMessage::RtcpPacket(_, packets) = &message {
                    self.keyframe_requests += packets
                        .iter()
                        .filter(|p| p.as_any().is::<PictureLossIndication>())
                        .count() as u32;
                }
                if let RTCMessage::RtpPacket(_, p) = message {
                    self.received.push(SeenRtp {
                        pt: p.header.payload_type,
                        seq: p.header.sequence_number,
                        ts: p.header.timestamp,
                        ssrc: p.header.ssrc,
                        marker: p.header.marker,
                        payload: p.payload.to_vec(),
                    });
                }
            }
            if n == 0 {
                break;
            }
            let _ = self.pc.handle_timeout(now);
        }
    }
}

/// The scripted SIP side: records what arrives at its RTP and RTCP ports.
#[derive(Default)]
pub struct SipPeer {
    pub rtp_in: Vec<SeenRtp>,
    pub rtcp_in: Vec<Vec<u8>>,
    pub video_rtp_in: Vec<SeenRtp>,
    pub video_rtcp_in: Vec<Vec<u8>>,
}

pub fn parse_plain_rtp(b: &[u8]) -> Option<SeenRtp> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let cc = usize::from(b[0] & 0x0F);
    Some(SeenRtp {
        pt: b[1] & 0x7F,
        marker: b[1] & 0x80 != 0,
        seq: u16::from_be_bytes([b[2], b[3]]),
        ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload: b.get(12 + 4 * cc..)?.to_vec(),
    })
}

pub fn plain_rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, (u8::from(marker) << 7) | pt];
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Everything wired together on one virtual clock.
pub struct Sim {
    pub now: Instant,
    pub start: Instant,
    pub bridge: Bridge,
    pub browser: BrowserPeer,
    pub sip: SipPeer,
    pub net: Netem,
    pub events: Vec<(Duration, BridgeEvent)>,
}

/// The DTLS identity of every bridge in this test binary: the application makes one at
/// start-up and shares it.
pub fn dtls_identity() -> std::sync::Arc<media::webrtc_leg::DtlsIdentity> {
    static IDENTITY: std::sync::OnceLock<std::sync::Arc<media::webrtc_leg::DtlsIdentity>> =
        std::sync::OnceLock::new();
    IDENTITY
        .get_or_init(|| {
            std::sync::Arc::new(media::webrtc_leg::DtlsIdentity::generate().expect("identity"))
        })
        .clone()
}

/// A bridge configuration on the sim's addresses with a random source seeded by `seed`.
pub fn bridge_config_at(webrtc: SocketAddr, sip_rtp: SocketAddr, seed: u64) -> BridgeConfig {
    BridgeConfig::new(
        webrtc,
        sip_rtp,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_942_400),
        engine::Rng::seed_from_u64(seed),
        dtls_identity(),
    )
}

pub fn bridge_config(start: Instant, seed: u64) -> BridgeConfig {
    let _ = start;
    bridge_config_at(addr(BRIDGE_WEBRTC), addr(BRIDGE_SIP_RTP), seed)
}

pub fn sip_answer_sdp(pts: &[(u8, &str)]) -> String {
    let mut s = String::from("v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 42000 RTP/AVP");
    for (pt, _) in pts {
        s.push_str(&format!(" {pt}"));
    }
    s.push_str("\r\n");
    for (pt, map) in pts {
        s.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
    }
    s.push_str("a=sendrecv\r\n");
    s
}

/// Drains `bridge` until it is quiet, dropping what it sends and its events; returns its
/// deadline.
pub fn drain(bridge: &mut Bridge) -> Option<Instant> {
    loop {
        if let Output::Timeout(at) = bridge.poll_output() {
            return at;
        }
    }
}

impl Sim {
    /// Drains the bridge (its output contract): datagrams into the network, events into
    /// `events`; returns the bridge's deadline.
    pub fn drain_bridge(&mut self) -> Option<Instant> {
        loop {
            match self.bridge.poll_output() {
                Output::Transmit(t) => self.net.send(self.now, t.from, t.to, t.bytes),
                Output::Event(e) => self.events.push((self.now - self.start, e)),
                Output::Timeout(at) => return at,
            }
        }
    }

    /// Move every pending output into the network.
    pub fn flush(&mut self) {
        self.drain_bridge();
        self.browser.pump(self.now);
        while let Some(w) = self.browser.pc.poll_write() {
            self.net.send(
                self.now,
                self.browser.addr,
                w.transport.peer_addr,
                &w.message,
            );
        }
        // Events may have queued writes on the bridge side too.
        self.drain_bridge();
    }

    fn deliver(&mut self) {
        for f in self.net.take_due(self.now) {
            if f.to == self.browser.addr {
                self.browser.handle_read(self.now, f.from, &f.bytes);
            } else if f.to == addr(BRIDGE_WEBRTC) {
                let _ = self
                    .bridge
                    .handle_webrtc_datagram(self.now, f.to, f.from, &f.bytes);
            } else if f.to == addr(BRIDGE_SIP_RTP) {
                let mut b = f.bytes;
                let _ = self
                    .bridge
                    .handle_rtp_datagram(self.now, f.to, f.from, &mut b);
            } else if f.to == addr(BRIDGE_SIP_RTCP) {
                let mut b = f.bytes;
                let _ = self
                    .bridge
                    .handle_rtcp_datagram(self.now, f.to, f.from, &mut b);
            } else if f.to == addr(SIP_PEER_RTP) {
                if let Some(p) = parse_plain_rtp(&f.bytes) {
                    self.sip.rtp_in.push(p);
                }
            } else if f.to == addr(SIP_PEER_RTCP) {
                self.sip.rtcp_in.push(f.bytes);
            } else if f.to == addr(BRIDGE_SIP_VIDEO_RTP) {
                let mut b = f.bytes;
                let _ = self
                    .bridge
                    .handle_rtp_datagram(self.now, f.to, f.from, &mut b);
            } else if f.to == addr(BRIDGE_SIP_VIDEO_RTCP) {
                let mut b = f.bytes;
                let _ = self
                    .bridge
                    .handle_rtcp_datagram(self.now, f.to, f.from, &mut b);
            } else if f.to == addr(SIP_PEER_VIDEO_RTP) {
                if let Some(p) = parse_plain_rtp(&f.bytes) {
                    self.sip.video_rtp_in.push(p);
                }
            } else if f.to == addr(SIP_PEER_VIDEO_RTCP) {
                self.sip.video_rtcp_in.push(f.bytes);
            }
            self.flush();
        }
    }

    /// Run the world until `until` (virtual), jumping from deadline to deadline.
    pub fn advance_to(&mut self, until: Instant) {
        let mut spins_at_same_now = 0u32;
        loop {
            self.flush();
            self.deliver();
            if self.drain_bridge().is_some_and(|t| t <= self.now) {
                let _ = self.bridge.handle_timeout(self.now);
            }
            if self
                .browser
                .pc
                .poll_timeout()
                .is_some_and(|t| t <= self.now)
            {
                let _ = self.browser.pc.handle_timeout(self.now);
            }
            self.flush();
            let next = [
                self.drain_bridge(),
                self.browser.pc.poll_timeout(),
                self.net.next_delivery(),
                Some(until),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(until);
            if next <= self.now {
                spins_at_same_now += 1;
                if self.now >= until
                    && self.net.next_delivery().is_none_or(|d| d > self.now)
                    && spins_at_same_now > 4
                {
                    break;
                }
                // Guard against an engine that keeps returning an expired deadline.
                if spins_at_same_now > 100 {
                    self.now += Duration::from_millis(1);
                    spins_at_same_now = 0;
                }
                continue;
            }
            if self.now >= until {
                break;
            }
            spins_at_same_now = 0;
            self.now = next.min(until);
        }
    }

    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        self.advance_to(until);
    }

    pub fn has_event(&self, e: BridgeEvent) -> bool {
        self.events.iter().any(|(_, x)| *x == e)
    }

    /// Run until `cond` holds or `limit` of virtual time passes; returns whether it held.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if cond(self) {
                return true;
            }
            self.advance(Duration::from_millis(5));
        }
        cond(self)
    }
}

/// Outgoing call set up to the point where media can flow: browser offers, bridge answers
/// after the SIP answer `sip_answer`. Returns the sim and the SIP offer the bridge wrote.
pub fn answerer_sim(seed: u64, loss_per_mille: u64, sip_answer: &str) -> (Sim, String, String) {
    answerer_sim_with(seed, loss_per_mille, sip_answer, None, false)
}

/// [`answerer_sim`] with a browser limited to some SRTP profiles.
pub fn answerer_sim_with(
    seed: u64,
    loss_per_mille: u64,
    sip_answer: &str,
    profiles: Option<Vec<SrtpProtectionProfile>>,
    ice_lite: bool,
) -> (Sim, String, String) {
    let start = Instant::now();
    let mut browser = BrowserPeer::with_srtp_profiles(start, 0x0B0B_0001, profiles);
    let offer = browser.create_offer(start);
    let mut config = bridge_config(start, seed);
    config.webrtc.ice_lite = ice_lite;
    let (mut bridge, sip_offer) =
        Bridge::new_answerer(start, config, &offer).expect("new_answerer");
    // The browser trickles its candidate while SIP is still ringing.
    bridge
        .add_remote_candidate(&browser.candidate_line())
        .expect("trickle");
    bridge.add_remote_candidate("").expect("end-of-candidates");
    let answer = bridge
        .apply_sip_answer(start, sip_answer)
        .expect("apply_sip_answer");
    browser.apply_answer(start, &answer);
    let sim = Sim {
        now: start,
        start,
        bridge,
        browser,
        sip: SipPeer::default(),
        net: Netem::new(seed, loss_per_mille, Duration::from_millis(10)),
        events: Vec::new(),
    };
    (sim, sip_offer, answer)
}
