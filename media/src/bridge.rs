//! The bridge: one per call, joining the WebRTC leg (browser) and the plain RTP leg (SIP).
//!
//! Sans-IO (shared/design/architecture.md, "The run loop"): the reactor owns the sockets and
//! the clock. After every `handle_*` call it must drain [`Bridge::poll_transmit`] and
//! [`Bridge::poll_event`], then re-arm its timer from [`Bridge::poll_timeout`].
//!
//! # Sockets the reactor binds per call
//! - one UDP socket for the WebRTC leg ([`BridgeConfig::webrtc`]`.local_addr`): ICE, DTLS,
//!   SRTP and SRTCP all share it (BUNDLE + rtcp-mux, RFC 8843 / RFC 5761);
//! - per SIP stream an RTP socket ([`BridgeConfig::sip_audio_local`],
//!   [`BridgeConfig::sip_video_local`]) and an RTCP socket on the next port (RFC 3550
//!   sec. 11), unless the SIP peer agreed to rtcp-mux.
//!
//! Each [`Transmit`] says which leg and which local address to send from.
//!
//! # Call flows
//! - Outgoing call (browser offers): [`Bridge::new_answerer`] -> SIP offer for the INVITE;
//!   the 200 OK's SDP goes to [`Bridge::apply_sip_answer`] -> WebRTC answer for sylkRTC
//!   `accepted`.
//! - Incoming call (SIP offers): [`Bridge::new_offerer`] -> WebRTC offer for the browser;
//!   its answer goes to [`Bridge::apply_webrtc_answer`] -> SIP answer for the 200 OK.
//!
//! No common codec in either flow is [`BridgeError::NoCommonCodec`] (SIP 488): the bridge
//! never transcodes.

mod rewrite;
mod rtcp;
mod sdp_glue;
mod stats;
mod transmit;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use crate::error::BridgeError;
use crate::webrtc_leg::rtc_engine_support::splitmix64;
use crate::webrtc_leg::{
    CodecSpec, MediaKind, OutgoingRtp, ReceivedRtp, RtcWebrtcLeg, WebrtcEngine, WebrtcLegConfig,
    WebrtcLegEvent, WebrtcMedia, SUPPORTED_CODECS,
};
use rewrite::StreamRewriter;
use rtcp::{NtpClock, SenderCounters};
use sdp_glue::{SipLineOut, SipMediaLine};
use stats::ReceiveStats;
use transmit::{TransmitQueue, SLOT_SIZE};

/// Default RTP inactivity timeout (issue 4: configurable, default 60 s).
pub const DEFAULT_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default RTCP report interval on the SIP leg (RFC 3550 sec. 6.2: 5 s minimum).
pub const DEFAULT_RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// Datagrams the bridge may hold for the SIP leg before dropping the oldest.
const TRANSMIT_QUEUE_SLOTS: usize = 64;
/// Events held for the gateway; a call produces a handful.
const MAX_QUEUED_EVENTS: usize = 32;
/// Remote candidates buffered while the answerer waits for the SIP answer.
const MAX_PENDING_CANDIDATES: usize = 64;
/// RTP fixed header (RFC 3550 sec. 5.1).
const RTP_HEADER_LEN: usize = 12;

/// Per-call configuration.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// The WebRTC leg's socket and ICE options.
    pub webrtc: WebrtcLegConfig,
    /// Bound address of the SIP-side audio RTP socket; RTCP uses the next port.
    pub sip_audio_local: SocketAddr,
    /// Bound address of the SIP-side video RTP socket, if video is allowed.
    pub sip_video_local: Option<SocketAddr>,
    /// Address written into the SIP SDP instead of the bound IP (NAT, wildcard bind).
    pub sip_advertised_ip: Option<IpAddr>,
    /// Codec names allowed on this call (subset of [`SUPPORTED_CODECS`]), e.g. what the SIP
    /// trunk can do.
    pub codecs: Vec<String>,
    /// Report [`BridgeEvent::RtpInactive`] after this long without RTP on a leg.
    pub inactivity_timeout: Duration,
    /// RTCP report interval on the SIP leg (randomised by 0.5..1.5, RFC 3550 sec. 6.2).
    pub rtcp_interval: Duration,
    /// Wall-clock time at the `now` passed to the constructor, for RTCP SR NTP timestamps.
    pub wallclock: SystemTime,
    /// RTCP CNAME on the SIP leg (RFC 3550 sec. 6.5.1).
    pub cname: String,
    /// Accept SIP RTP from any source and send back there (symmetric RTP, RFC 4961), for SIP
    /// peers behind NAT. Off by default: it lets anyone who guesses the port take the stream.
    pub latch_sip_source: bool,
    /// Seed for SSRCs, initial sequence/timestamp offsets and RTCP jitter.
    pub seed: u64,
}

impl BridgeConfig {
    /// Defaults for everything except the sockets and the wall clock.
    pub fn new(
        webrtc_local: SocketAddr,
        sip_audio_local: SocketAddr,
        wallclock: SystemTime,
        seed: u64,
    ) -> Self {
        Self {
            webrtc: WebrtcLegConfig {
                local_addr: webrtc_local,
                advertised_ip: None,
                ice_lite: false,
                seed,
            },
            sip_audio_local,
            sip_video_local: None,
            sip_advertised_ip: None,
            codecs: SUPPORTED_CODECS.iter().map(|s| (*s).to_owned()).collect(),
            inactivity_timeout: DEFAULT_INACTIVITY_TIMEOUT,
            rtcp_interval: DEFAULT_RTCP_INTERVAL,
            wallclock,
            cname: "sylk-gateway".to_owned(),
            latch_sip_source: false,
            seed,
        }
    }
}

/// Which side of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaLeg {
    /// Toward the browser.
    Webrtc,
    /// Toward the SIP peer.
    Sip,
}

/// Which socket a [`Transmit`] goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransmitLeg {
    /// The WebRTC leg's socket (ICE/DTLS/SRTP).
    Webrtc,
    /// A SIP-side RTP socket.
    Rtp,
    /// A SIP-side RTCP socket (or the RTP socket with rtcp-mux; `from` says which).
    Rtcp,
}

/// A datagram to send, borrowed from the bridge until the next call on it.
#[derive(Debug, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Which kind of socket.
    pub leg: TransmitLeg,
    /// The local address (socket) to send from.
    pub from: SocketAddr,
    /// Destination.
    pub to: SocketAddr,
    /// The datagram.
    pub bytes: &'a [u8],
}

/// What the gateway needs to know about the call's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BridgeEvent {
    /// ICE connected with the browser.
    IceConnected,
    /// ICE failed: terminate the call (sylkRTC `terminated`, reason "ICE failure").
    IceFailed,
    /// DTLS done, SRTP keyed: the call is established (sylkRTC `established`).
    DtlsConnected,
    /// DTLS failed: terminate the call.
    DtlsFailed,
    /// No RTP on `leg` for the inactivity timeout; reported once until RTP resumes.
    RtpInactive {
        /// The silent leg.
        leg: MediaLeg,
    },
    /// The bridge is closed.
    Closed,
}

/// Counters of one leg, audio and video together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    /// RTP packets received on the leg.
    pub packets_received: u64,
    /// RTP payload bytes received.
    pub bytes_received: u64,
    /// RTP packets sent on the leg.
    pub packets_sent: u64,
    /// RTP payload bytes sent.
    pub bytes_sent: u64,
    /// Packets lost on the way in (RFC 3550 A.3, cumulative).
    pub packets_lost: i64,
    /// Interarrival jitter of the audio stream (RFC 3550 A.8).
    pub jitter: Duration,
}

/// Statistics of the call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Toward the browser.
    pub webrtc: LegStats,
    /// Toward SIP.
    pub sip: LegStats,
    /// Packets dropped by the bridge (unmapped PT, queue overflow, no destination yet).
    pub dropped: u64,
}

/// One SIP-side stream (audio or video).
#[derive(Debug)]
struct SipStream {
    local_rtp: SocketAddr,
    local_rtcp: SocketAddr,
    remote_rtp: SocketAddr,
    remote_rtcp: SocketAddr,
    rtcp_mux: bool,
    /// WebRTC -> SIP rewriting (our SSRC on the SIP leg).
    out: StreamRewriter,
    sent: SenderCounters,
    sent_since_report: bool,
    packets_sent: u64,
    bytes_sent: u64,
    recv: ReceiveStats,
    next_report: Instant,
}

/// One WebRTC-side stream.
#[derive(Debug)]
struct WebrtcStream {
    /// SIP -> WebRTC rewriting (the engine stamps its own SSRC).
    out: StreamRewriter,
    recv: ReceiveStats,
    packets_sent: u64,
    bytes_sent: u64,
}

/// PT maps between the legs; 0xFF = not mapped. Arrays, so lookups never allocate.
#[derive(Debug, Clone)]
struct PayloadTypeMap {
    to_sip: [u8; 128],
    to_webrtc: [u8; 128],
}

const UNMAPPED: u8 = 0xFF;

impl PayloadTypeMap {
    fn new(pairs: &[(CodecSpec, CodecSpec)]) -> Self {
        let mut map = Self {
            to_sip: [UNMAPPED; 128],
            to_webrtc: [UNMAPPED; 128],
        };
        for (webrtc, sip) in pairs {
            if let Some(slot) = map.to_sip.get_mut(usize::from(webrtc.payload_type)) {
                *slot = sip.payload_type;
            }
            if let Some(slot) = map.to_webrtc.get_mut(usize::from(sip.payload_type)) {
                *slot = webrtc.payload_type;
            }
        }
        map
    }

    fn lookup(table: &[u8; 128], pt: u8) -> Option<u8> {
        table
            .get(usize::from(pt))
            .copied()
            .filter(|p| *p != UNMAPPED)
    }
}

/// Where the negotiation stands.
#[derive(Debug)]
enum Negotiation {
    /// Answerer: the browser offered, the SIP answer is awaited.
    AwaitingSipAnswer {
        webrtc_offer: String,
        offered: Vec<CodecSpec>,
        pending_candidates: Vec<String>,
        sip_offer_lines: Vec<(MediaKind, Vec<CodecSpec>)>,
    },
    /// Offerer: our WebRTC offer is out, the browser's answer is awaited.
    AwaitingWebrtcAnswer { sip_lines: Vec<SipMediaLine> },
    /// Both sides agreed; media flows.
    Active,
    /// Closed.
    Closed,
}

/// Inactivity watch of one leg.
#[derive(Debug, Clone, Copy, Default)]
struct InactivityWatch {
    armed_at: Option<Instant>,
    last_rx: Option<Instant>,
    reported: bool,
}

impl InactivityWatch {
    fn deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.reported {
            return None;
        }
        let since = match (self.armed_at, self.last_rx) {
            (Some(a), Some(r)) => a.max(r),
            (Some(a), None) => a,
            _ => return None,
        };
        Some(since + timeout)
    }

    fn on_packet(&mut self, now: Instant) {
        self.last_rx = Some(now);
        self.reported = false;
    }
}

fn kind_index(kind: MediaKind) -> usize {
    match kind {
        MediaKind::Audio => 0,
        MediaKind::Video => 1,
    }
}

/// One call's media: WebRTC leg + SIP RTP leg + forwarding between them.
pub struct Bridge {
    config: BridgeConfig,
    negotiation: Negotiation,
    webrtc: Option<Box<dyn WebrtcEngine>>,
    sip: [Option<SipStream>; 2],
    webrtc_streams: [Option<WebrtcStream>; 2],
    pt_map: PayloadTypeMap,
    transmit: TransmitQueue,
    /// Scratch for the datagram handed out by `poll_transmit`.
    transmit_buf: Box<[u8]>,
    /// Scratch for a decrypted payload on its way to SIP.
    payload_buf: Box<[u8]>,
    events: VecDeque<BridgeEvent>,
    closed_reported: bool,
    clock: NtpClock,
    rng: u64,
    webrtc_watch: InactivityWatch,
    sip_watch: InactivityWatch,
    dropped: u64,
    session_id: u64,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("negotiation", &self.negotiation)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// Pair each SIP codec with the same codec on the WebRTC side (RFC 3264 sec. 6.1: same
/// encoding name, clock rate, channels), preferring an identical PT, then identical fmtp.
fn pair_codecs(webrtc: &[CodecSpec], sip: &[CodecSpec]) -> Vec<(CodecSpec, CodecSpec)> {
    let mut pairs: Vec<(CodecSpec, CodecSpec)> = Vec::new();
    for s in sip {
        let candidates = || webrtc.iter().filter(|w| w.same_codec(s));
        let pick = candidates()
            .find(|w| w.payload_type == s.payload_type)
            .or_else(|| candidates().find(|w| w.fmtp == s.fmtp))
            .or_else(|| candidates().next());
        if let Some(w) = pick {
            if pairs.iter().any(|(pw, ps)| {
                pw.payload_type == w.payload_type || ps.payload_type == s.payload_type
            }) {
                continue;
            }
            pairs.push((w.clone(), s.clone()));
        }
    }
    pairs
}

/// A kind is usable only with at least one real codec (telephone-event alone is not media).
fn has_media_codec(pairs: &[(CodecSpec, CodecSpec)], kind: MediaKind) -> bool {
    pairs
        .iter()
        .any(|(w, _)| w.kind == kind && !w.is_telephone_event())
}

fn primary_clock(pairs: &[(CodecSpec, CodecSpec)], kind: MediaKind) -> u32 {
    pairs
        .iter()
        .find(|(w, _)| w.kind == kind && !w.is_telephone_event())
        .map_or(8000, |(w, _)| w.clock_rate)
}

fn rtcp_port_of(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip(), addr.port().wrapping_add(1))
}

impl Bridge {
    fn empty(now: Instant, config: BridgeConfig, negotiation: Negotiation) -> Self {
        let mut rng = config.seed ^ 0x5EED_0FB4_1D6E;
        let session_id = splitmix64(&mut rng) >> 2;
        Self {
            clock: NtpClock::new(now, config.wallclock),
            config,
            negotiation,
            webrtc: None,
            sip: [None, None],
            webrtc_streams: [None, None],
            pt_map: PayloadTypeMap::new(&[]),
            transmit: TransmitQueue::new(TRANSMIT_QUEUE_SLOTS),
            transmit_buf: vec![0u8; SLOT_SIZE].into_boxed_slice(),
            payload_buf: vec![0u8; SLOT_SIZE].into_boxed_slice(),
            events: VecDeque::with_capacity(MAX_QUEUED_EVENTS),
            closed_reported: false,
            rng,
            webrtc_watch: InactivityWatch::default(),
            sip_watch: InactivityWatch::default(),
            dropped: 0,
            session_id,
        }
    }

    fn sip_local(&self, kind: MediaKind) -> Option<SocketAddr> {
        match kind {
            MediaKind::Audio => Some(self.config.sip_audio_local),
            MediaKind::Video => self.config.sip_video_local,
        }
    }

    fn sip_ip(&self) -> IpAddr {
        self.config
            .sip_advertised_ip
            .unwrap_or(self.config.sip_audio_local.ip())
    }

    /// Outgoing call, step 1: the browser's offer in, the SIP offer (for the INVITE) out.
    ///
    /// The WebRTC leg itself is built in [`Bridge::apply_sip_answer`], once the SIP side has
    /// said which codecs it takes: `rtc` answers with the codecs registered in its media
    /// engine, and the browser must not be offered anything SIP cannot receive.
    /// Remote candidates may be added in between; they are kept until then.
    pub fn new_answerer(
        now: Instant,
        config: BridgeConfig,
        webrtc_offer_sdp: &str,
    ) -> Result<(Self, String), BridgeError> {
        let offered = sdp_glue::webrtc_offer_codecs(webrtc_offer_sdp, &config.codecs)?;
        let mut lines = Vec::new();
        for kind in [MediaKind::Audio, MediaKind::Video] {
            let codecs: Vec<CodecSpec> =
                offered.iter().filter(|c| c.kind == kind).cloned().collect();
            let usable = codecs.iter().any(|c| !c.is_telephone_event());
            let local = match kind {
                MediaKind::Audio => Some(config.sip_audio_local),
                MediaKind::Video => config.sip_video_local,
            };
            if usable && local.is_some() {
                lines.push((kind, codecs));
            }
        }
        if lines.is_empty() {
            return Err(BridgeError::NoCommonCodec);
        }
        let bridge = Self::empty(
            now,
            config,
            Negotiation::AwaitingSipAnswer {
                webrtc_offer: webrtc_offer_sdp.to_owned(),
                offered,
                pending_candidates: Vec::new(),
                sip_offer_lines: Vec::new(),
            },
        );
        let out: Vec<SipLineOut<'_>> = lines
            .iter()
            .filter_map(|(kind, codecs)| {
                let local = bridge.sip_local(*kind)?;
                Some(SipLineOut::Active {
                    kind: *kind,
                    port: local.port(),
                    rtcp_port: local.port().wrapping_add(1),
                    codecs,
                    rtcp_mux: false,
                })
            })
            .collect();
        let sdp = sdp_glue::write_sip(bridge.session_id, 1, bridge.sip_ip(), &out);
        let mut bridge = bridge;
        if let Negotiation::AwaitingSipAnswer {
            sip_offer_lines, ..
        } = &mut bridge.negotiation
        {
            *sip_offer_lines = lines;
        }
        Ok((bridge, sdp))
    }

    /// Outgoing call, step 2: the SIP answer (200 OK) in, the WebRTC answer (sylkRTC
    /// `accepted`) out. The WebRTC answer carries the host candidate and
    /// `a=end-of-candidates`.
    pub fn apply_sip_answer(
        &mut self,
        now: Instant,
        sip_answer_sdp: &str,
    ) -> Result<String, BridgeError> {
        let Negotiation::AwaitingSipAnswer {
            webrtc_offer,
            offered,
            pending_candidates,
            sip_offer_lines,
        } = &mut self.negotiation
        else {
            return Err(BridgeError::WrongState(
                "apply_sip_answer needs an answerer awaiting the SIP answer",
            ));
        };
        let webrtc_offer = std::mem::take(webrtc_offer);
        let offered = std::mem::take(offered);
        let candidates = std::mem::take(pending_candidates);
        let offer_lines = std::mem::take(sip_offer_lines);
        let answer_lines = sdp_glue::parse_sip(sip_answer_sdp, &self.config.codecs)?;
        let mut pairs = Vec::new();
        // RFC 3264 sec. 6: the answer's m-lines match the offer's by position.
        for (index, (kind, _)) in offer_lines.iter().enumerate() {
            let Some(line) = answer_lines.get(index) else {
                continue;
            };
            if line.kind != Some(*kind) {
                continue;
            }
            let kind_pairs = pair_codecs(&offered, &line.codecs);
            if !has_media_codec(&kind_pairs, *kind) {
                continue;
            }
            let (Some(rtp), Some(rtcp)) = (line.rtp, line.rtcp) else {
                continue;
            };
            self.install_sip_stream(now, *kind, rtp, rtcp, line.rtcp_mux, &kind_pairs);
            pairs.extend(kind_pairs);
        }
        if pairs.is_empty() {
            self.negotiation = Negotiation::Closed;
            return Err(BridgeError::NoCommonCodec);
        }
        let webrtc_codecs: Vec<CodecSpec> = pairs.iter().map(|(w, _)| w.clone()).collect();
        let (mut leg, answer) =
            RtcWebrtcLeg::answer(now, &self.config.webrtc, &webrtc_offer, &webrtc_codecs)?;
        self.install_webrtc_streams(&pairs, |kind| WebrtcEngine::local_ssrc(&leg, kind));
        for candidate in candidates {
            if let Err(e) = leg.add_remote_candidate(&candidate) {
                log::debug!("buffered remote candidate refused: {e}");
            }
        }
        self.pt_map = PayloadTypeMap::new(&pairs);
        self.webrtc = Some(Box::new(leg));
        self.negotiation = Negotiation::Active;
        self.drain_webrtc(now);
        Ok(answer)
    }

    /// Incoming call, step 1: the SIP offer (INVITE) in, the WebRTC offer for the browser out
    /// (explicit `a=sendrecv`, host candidate, `a=end-of-candidates`). The browser is offered
    /// the SIP side's codecs with the SIP payload types, so PTs usually match 1:1.
    pub fn new_offerer(
        now: Instant,
        config: BridgeConfig,
        sip_offer_sdp: &str,
    ) -> Result<(Self, String), BridgeError> {
        let sip_lines = sdp_glue::parse_sip(sip_offer_sdp, &config.codecs)?;
        let mut codecs = Vec::new();
        let mut seen = [false; 2];
        for line in &sip_lines {
            let Some(kind) = line.kind else { continue };
            let local = match kind {
                MediaKind::Audio => Some(config.sip_audio_local),
                MediaKind::Video => config.sip_video_local,
            };
            if seen[kind_index(kind)]
                || local.is_none()
                || !line.codecs.iter().any(|c| !c.is_telephone_event())
            {
                continue;
            }
            seen[kind_index(kind)] = true;
            codecs.extend(line.codecs.iter().cloned());
        }
        if codecs.is_empty() {
            return Err(BridgeError::NoCommonCodec);
        }
        let (leg, offer) = RtcWebrtcLeg::offer(now, &config.webrtc, &codecs)?;
        let mut bridge = Self::empty(now, config, Negotiation::AwaitingWebrtcAnswer { sip_lines });
        bridge.webrtc = Some(Box::new(leg));
        bridge.drain_webrtc(now);
        Ok((bridge, offer))
    }

    /// Incoming call, step 2: the browser's answer in, the SIP answer (200 OK) out.
    pub fn apply_webrtc_answer(
        &mut self,
        now: Instant,
        webrtc_answer_sdp: &str,
    ) -> Result<String, BridgeError> {
        let Negotiation::AwaitingWebrtcAnswer { sip_lines } = &mut self.negotiation else {
            return Err(BridgeError::WrongState(
                "apply_webrtc_answer needs an offerer awaiting the answer",
            ));
        };
        let sip_lines = std::mem::take(sip_lines);
        let Some(engine) = self.webrtc.as_mut() else {
            return Err(BridgeError::WrongState("offerer without WebRTC leg"));
        };
        engine.apply_remote_answer(now, webrtc_answer_sdp)?;
        let negotiated = engine.negotiated_codecs();
        let mut pairs = Vec::new();
        let mut used = [false; 2];
        let mut active_lines = Vec::new();
        for (index, line) in sip_lines.iter().enumerate() {
            let Some(kind) = line.kind else { continue };
            if used[kind_index(kind)] {
                continue;
            }
            let kind_pairs = pair_codecs(&negotiated, &line.codecs);
            if !has_media_codec(&kind_pairs, kind) {
                continue;
            }
            let (Some(rtp), Some(rtcp)) = (line.rtp, line.rtcp) else {
                continue;
            };
            used[kind_index(kind)] = true;
            self.install_sip_stream(now, kind, rtp, rtcp, line.rtcp_mux, &kind_pairs);
            active_lines.push((
                index,
                kind,
                kind_pairs
                    .iter()
                    .map(|(_, s)| s.clone())
                    .collect::<Vec<_>>(),
            ));
            pairs.extend(kind_pairs);
        }
        if pairs.is_empty() {
            self.negotiation = Negotiation::Closed;
            return Err(BridgeError::NoCommonCodec);
        }
        let ssrcs = [MediaKind::Audio, MediaKind::Video]
            .map(|k| self.webrtc.as_ref().and_then(|e| e.local_ssrc(k)));
        self.install_webrtc_streams(&pairs, |kind| ssrcs[kind_index(kind)]);
        self.pt_map = PayloadTypeMap::new(&pairs);
        let mut out = Vec::with_capacity(sip_lines.len());
        for (index, line) in sip_lines.iter().enumerate() {
            match active_lines.iter().find(|(i, _, _)| *i == index) {
                Some((_, kind, codecs)) => {
                    let local = self.sip_local(*kind).unwrap_or(self.config.sip_audio_local);
                    out.push(SipLineOut::Active {
                        kind: *kind,
                        port: local.port(),
                        rtcp_port: local.port().wrapping_add(1),
                        codecs,
                        rtcp_mux: line.rtcp_mux,
                    });
                }
                None => out.push(SipLineOut::Rejected {
                    media: &line.media,
                    proto: &line.proto,
                    formats: &line.formats,
                }),
            }
        }
        let sdp = sdp_glue::write_sip(self.session_id, 1, self.sip_ip(), &out);
        self.negotiation = Negotiation::Active;
        self.drain_webrtc(now);
        Ok(sdp)
    }

    fn install_sip_stream(
        &mut self,
        now: Instant,
        kind: MediaKind,
        remote_rtp: SocketAddr,
        remote_rtcp: SocketAddr,
        rtcp_mux: bool,
        pairs: &[(CodecSpec, CodecSpec)],
    ) {
        let Some(local_rtp) = self.sip_local(kind) else {
            return;
        };
        let clock = primary_clock(pairs, kind);
        let ssrc = (splitmix64(&mut self.rng) as u32).max(1);
        let offsets = splitmix64(&mut self.rng);
        let first_report = now + self.report_interval();
        self.sip[kind_index(kind)] = Some(SipStream {
            local_rtp,
            local_rtcp: if rtcp_mux {
                local_rtp
            } else {
                rtcp_port_of(local_rtp)
            },
            remote_rtp,
            remote_rtcp,
            rtcp_mux,
            out: StreamRewriter::new(ssrc, clock, offsets),
            sent: SenderCounters::default(),
            sent_since_report: false,
            packets_sent: 0,
            bytes_sent: 0,
            recv: ReceiveStats::new(clock),
            next_report: first_report,
        });
    }

    fn install_webrtc_streams(
        &mut self,
        pairs: &[(CodecSpec, CodecSpec)],
        ssrc_of: impl Fn(MediaKind) -> Option<u32>,
    ) {
        for kind in [MediaKind::Audio, MediaKind::Video] {
            if !has_media_codec(pairs, kind) {
                continue;
            }
            let clock = primary_clock(pairs, kind);
            let offsets = splitmix64(&mut self.rng);
            self.webrtc_streams[kind_index(kind)] = Some(WebrtcStream {
                out: StreamRewriter::new(ssrc_of(kind).unwrap_or(0), clock, offsets),
                recv: ReceiveStats::new(clock),
                packets_sent: 0,
                bytes_sent: 0,
            });
        }
    }

    /// RFC 3550 sec. 6.2: randomise the interval by a factor in [0.5, 1.5] so reports of many
    /// calls do not synchronise.
    fn report_interval(&mut self) -> Duration {
        let factor_milli = 500 + splitmix64(&mut self.rng) % 1001;
        self.config
            .rtcp_interval
            .mul_f64(factor_milli as f64 / 1000.0)
    }

    /// A remote ICE candidate trickled by the browser (sylkRTC `trickle`, RFC 8838); an empty
    /// string is end-of-candidates. Before the browser's SDP is known (offerer awaiting the
    /// answer) this is [`crate::error::WebrtcError::NoRemoteDescription`].
    pub fn add_remote_candidate(&mut self, candidate: &str) -> Result<(), BridgeError> {
        match &mut self.negotiation {
            Negotiation::AwaitingSipAnswer {
                pending_candidates, ..
            } => {
                if !candidate.trim().is_empty() && pending_candidates.len() < MAX_PENDING_CANDIDATES
                {
                    pending_candidates.push(candidate.to_owned());
                }
                Ok(())
            }
            Negotiation::Closed => Err(BridgeError::Closed),
            _ => match self.webrtc.as_mut() {
                Some(engine) => Ok(engine.add_remote_candidate(candidate)?),
                None => Err(BridgeError::WrongState("no WebRTC leg")),
            },
        }
    }

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
    fn drain_webrtc(&mut self, now: Instant) {
        let Some(engine) = self.webrtc.as_mut() else {
            return;
        };
        while let Some(event) = engine.poll_event() {
            let mapped = match event {
                WebrtcLegEvent::IceConnected => BridgeEvent::IceConnected,
                WebrtcLegEvent::IceFailed => BridgeEvent::IceFailed,
                WebrtcLegEvent::DtlsConnected => {
                    // Media may start now: both inactivity watches run from here.
                    self.webrtc_watch.armed_at = Some(now);
                    self.sip_watch.armed_at = Some(now);
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
            if self.events.len() < MAX_QUEUED_EVENTS {
                self.events.push_back(mapped);
            }
        }
        while let Some(media) = engine.poll_media(&mut self.payload_buf) {
            match media {
                WebrtcMedia::Rtp(rtp) => {
                    forward_to_sip(
                        rtp,
                        &self.payload_buf,
                        &self.pt_map,
                        &mut self.sip,
                        &mut self.webrtc_streams,
                        &mut self.transmit,
                        &mut self.webrtc_watch,
                        &mut self.dropped,
                    );
                }
                WebrtcMedia::KeyframeRequest { kind, .. } => {
                    // RFC 5104 sec. 3.5.1: a keyframe request is relayed to the media source;
                    // on the SIP leg as a PLI from our SSRC about the peer's SSRC.
                    if let Some(stream) = self.sip[kind_index(kind)].as_ref() {
                        if let Some(media_ssrc) = stream.recv.ssrc() {
                            let sender = stream.out.out_ssrc();
                            let (from, to) = (stream.local_rtcp, stream.remote_rtcp);
                            self.transmit.push_with(TransmitLeg::Rtcp, from, to, |buf| {
                                rtcp::write_pli(buf, sender, media_ssrc)
                            });
                        }
                    }
                }
            }
        }
    }

    /// A datagram arrived on a SIP-side RTP socket (`local` = that socket's address). With
    /// rtcp-mux, RTCP arriving here is recognised (RFC 5761 sec. 4). Malformed packets,
    /// unknown payload types and (without latching) packets from an unexpected source are
    /// dropped and counted in [`BridgeStats::dropped`].
    pub fn handle_rtp_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), BridgeError> {
        if matches!(self.negotiation, Negotiation::Closed) {
            return Ok(());
        }
        let Some(index) = self.sip_index_by_rtp(local) else {
            self.dropped += 1;
            return Ok(());
        };
        if self.sip[index].as_ref().is_some_and(|s| s.rtcp_mux) && rtcp::looks_like_rtcp(bytes) {
            self.on_sip_rtcp(now, index, from, bytes);
            return Ok(());
        }
        let Some((rtp, range)) = self.sip_ingress(now, index, from, bytes) else {
            return Ok(());
        };
        let payload = bytes.get(range).unwrap_or_default();
        let (Some(engine), Some(wstream)) =
            (self.webrtc.as_mut(), self.webrtc_streams[index].as_mut())
        else {
            self.dropped += 1;
            return Ok(());
        };
        match engine.send_rtp(now, rtp, payload) {
            Ok(()) => {
                wstream.packets_sent += 1;
                wstream.bytes_sent += payload.len() as u64;
            }
            Err(e) => {
                // Before DTLS is up rtc refuses to send; that is not the call's fault.
                self.dropped += 1;
                log::trace!("RTP toward the browser dropped: {e}");
            }
        }
        Ok(())
    }

    fn sip_index_by_rtp(&self, local: SocketAddr) -> Option<usize> {
        self.sip
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.local_rtp == local))
    }

    /// SIP -> browser, the bridge's own part: validate, account, latch, map the PT and make
    /// seq/timestamp continuous. Returns what the WebRTC leg must send and where the payload
    /// lies in `bytes`. Allocation-free.
    fn sip_ingress(
        &mut self,
        now: Instant,
        index: usize,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Option<(OutgoingRtp, std::ops::Range<usize>)> {
        let kind = if index == 0 {
            MediaKind::Audio
        } else {
            MediaKind::Video
        };
        let Some(header) = parse_rtp_header(bytes) else {
            self.dropped += 1;
            return None;
        };
        let latch = self.config.latch_sip_source;
        let stream = self.sip[index].as_mut()?;
        if from != stream.remote_rtp {
            if !latch {
                self.dropped += 1;
                return None;
            }
            // Symmetric RTP (RFC 4961): send where the peer sends from.
            stream.remote_rtp = from;
            if stream.rtcp_mux {
                stream.remote_rtcp = from;
            }
        }
        let range = header.payload_start..header.payload_end;
        stream.recv.on_packet(
            header.ssrc,
            header.sequence_number,
            header.timestamp,
            range.len(),
            now,
        );
        self.sip_watch.on_packet(now);
        let (Some(pt), Some(wstream)) = (
            PayloadTypeMap::lookup(&self.pt_map.to_webrtc, header.payload_type),
            self.webrtc_streams[index].as_mut(),
        ) else {
            self.dropped += 1;
            return None;
        };
        let (seq, ts) =
            wstream
                .out
                .rewrite(header.ssrc, header.sequence_number, header.timestamp, now);
        Some((
            OutgoingRtp {
                kind,
                marker: header.marker,
                payload_type: pt,
                sequence_number: seq,
                timestamp: ts,
            },
            range,
        ))
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
        bytes: &[u8],
    ) -> Option<(OutgoingRtp, std::ops::Range<usize>)> {
        let index = self.sip_index_by_rtp(local)?;
        self.sip_ingress(now, index, from, bytes)
    }

    /// Measurement hook, not for the reactor: forward one RTP packet as if the WebRTC leg had
    /// just decrypted it (the browser -> SIP steps the bridge owns); the result waits in
    /// [`Bridge::poll_transmit`].
    #[doc(hidden)]
    pub fn probe_forward_to_sip(&mut self, rtp: ReceivedRtp, payload: &[u8]) {
        forward_to_sip(
            rtp,
            payload,
            &self.pt_map,
            &mut self.sip,
            &mut self.webrtc_streams,
            &mut self.transmit,
            &mut self.webrtc_watch,
            &mut self.dropped,
        );
    }

    /// A datagram arrived on a SIP-side RTCP socket (`local` = that socket's address).
    pub fn handle_rtcp_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), BridgeError> {
        let Some(index) = self
            .sip
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.local_rtcp == local))
        else {
            self.dropped += 1;
            return Ok(());
        };
        self.on_sip_rtcp(now, index, from, bytes);
        Ok(())
    }

    fn on_sip_rtcp(&mut self, now: Instant, index: usize, from: SocketAddr, bytes: &[u8]) {
        let summary = rtcp::parse_compound(bytes);
        let latch = self.config.latch_sip_source;
        if let Some(stream) = self.sip[index].as_mut() {
            if latch && from != stream.remote_rtcp {
                stream.remote_rtcp = from;
            }
            if let Some((ssrc, middle)) = summary.sender_report {
                if stream.recv.ssrc() == Some(ssrc) {
                    stream.recv.on_sender_report(middle, now);
                }
            }
        }
        if summary.keyframe_request && index == kind_index(MediaKind::Video) {
            if let Some(engine) = self.webrtc.as_mut() {
                if let Err(e) = engine.request_keyframe(now, MediaKind::Video) {
                    log::debug!("PLI toward the browser failed: {e}");
                }
            }
        }
    }

    /// Advance timers: the WebRTC leg's, RTCP reports on the SIP leg, inactivity.
    /// Call when [`Bridge::poll_timeout`] is due; calling early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), BridgeError> {
        if matches!(self.negotiation, Negotiation::Closed) {
            return Ok(());
        }
        if let Some(engine) = self.webrtc.as_mut() {
            if engine.poll_timeout().is_some_and(|t| t <= now) {
                if let Err(e) = engine.handle_timeout(now) {
                    log::debug!("WebRTC leg timeout: {e}");
                }
            }
        }
        self.drain_webrtc(now);
        for index in 0..self.sip.len() {
            let due = self.sip[index]
                .as_ref()
                .is_some_and(|s| s.next_report <= now);
            if due {
                let interval = self.report_interval();
                let cname = &self.config.cname;
                let clock = &self.clock;
                if let Some(stream) = self.sip[index].as_mut() {
                    stream.next_report = now + interval;
                    let sent = if stream.sent_since_report {
                        stream.out.timestamp_at(now).map(|ts| (stream.sent, ts))
                    } else {
                        None
                    };
                    stream.sent_since_report = false;
                    let own = stream.out.out_ssrc();
                    let (from, to) = (stream.local_rtcp, stream.remote_rtcp);
                    let recv = &mut stream.recv;
                    self.transmit.push_with(TransmitLeg::Rtcp, from, to, |buf| {
                        rtcp::write_report(buf, now, clock, own, sent, recv, cname)
                    });
                }
            }
        }
        let timeout = self.config.inactivity_timeout;
        for (leg, watch) in [
            (MediaLeg::Webrtc, &mut self.webrtc_watch),
            (MediaLeg::Sip, &mut self.sip_watch),
        ] {
            if watch.deadline(timeout).is_some_and(|d| d <= now) {
                watch.reported = true;
                if self.events.len() < MAX_QUEUED_EVENTS {
                    self.events.push_back(BridgeEvent::RtpInactive { leg });
                }
            }
        }
        Ok(())
    }

    /// The next datagram to send, borrowed until the next call on the bridge. Drain until
    /// `None` after every `handle_*` call. SIP-leg datagrams come first (they were produced
    /// by inputs already handled), then the WebRTC leg's.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        if let Some((leg, from, to, len)) = self.transmit.pop_into(&mut self.transmit_buf) {
            return Some(Transmit {
                leg,
                from,
                to,
                bytes: self.transmit_buf.get(..len)?,
            });
        }
        let engine = self.webrtc.as_mut()?;
        let (to, len) = engine.poll_datagram(&mut self.transmit_buf)?;
        Some(Transmit {
            leg: TransmitLeg::Webrtc,
            from: self.config.webrtc.local_addr,
            to,
            bytes: self.transmit_buf.get(..len)?,
        })
    }

    /// The next state change for the gateway.
    pub fn poll_event(&mut self) -> Option<BridgeEvent> {
        self.events.pop_front()
    }

    /// When [`Bridge::handle_timeout`] must be called next; `None` = no timer.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if matches!(self.negotiation, Negotiation::Closed) {
            return None;
        }
        let timeout = self.config.inactivity_timeout;
        let engine = self.webrtc.as_mut().and_then(|e| e.poll_timeout());
        let reports = self.sip.iter().flatten().map(|s| s.next_report);
        let watches = [
            self.webrtc_watch.deadline(timeout),
            self.sip_watch.deadline(timeout),
        ];
        engine
            .into_iter()
            .chain(reports)
            .chain(watches.into_iter().flatten())
            .min()
    }

    /// Per-leg statistics.
    pub fn stats(&self) -> BridgeStats {
        let mut out = BridgeStats {
            dropped: self.dropped + self.transmit.dropped(),
            ..BridgeStats::default()
        };
        for (i, s) in self.sip.iter().enumerate() {
            let Some(s) = s else { continue };
            out.sip.packets_received += s.recv.packets();
            out.sip.bytes_received += s.recv.bytes();
            out.sip.packets_sent += s.packets_sent;
            out.sip.bytes_sent += s.bytes_sent;
            out.sip.packets_lost += s.recv.lost();
            if i == 0 {
                out.sip.jitter = s.recv.jitter();
            }
        }
        for (i, s) in self.webrtc_streams.iter().enumerate() {
            let Some(s) = s else { continue };
            out.webrtc.packets_received += s.recv.packets();
            out.webrtc.bytes_received += s.recv.bytes();
            out.webrtc.packets_sent += s.packets_sent;
            out.webrtc.bytes_sent += s.bytes_sent;
            out.webrtc.packets_lost += s.recv.lost();
            if i == 0 {
                out.webrtc.jitter = s.recv.jitter();
            }
        }
        out
    }

    /// The SRTP protection profile DTLS negotiated with the browser (empty before DTLS).
    pub fn srtp_profile(&mut self, now: Instant) -> String {
        self.webrtc
            .as_mut()
            .map(|e| e.transport_info(now).srtp_profile)
            .unwrap_or_default()
    }

    /// Our SSRC on the SIP leg for `kind` (what the SIP peer sees).
    pub fn sip_ssrc(&self, kind: MediaKind) -> Option<u32> {
        self.sip[kind_index(kind)]
            .as_ref()
            .map(|s| s.out.out_ssrc())
    }

    /// Close the call: DTLS close_notify toward the browser (drain `poll_transmit`), then one
    /// [`BridgeEvent::Closed`].
    pub fn close(&mut self) {
        if let Some(engine) = self.webrtc.as_mut() {
            engine.close();
        }
        self.negotiation = Negotiation::Closed;
        if !self.closed_reported {
            self.closed_reported = true;
            self.events.push_back(BridgeEvent::Closed);
        }
    }
}

/// Browser -> SIP: map the PT, make SSRC/seq/timestamp continuous, write a plain RTP packet
/// into a pre-allocated transmit slot. Allocation-free (the counting-allocator test holds
/// this to zero).
#[allow(clippy::too_many_arguments)]
fn forward_to_sip(
    rtp: ReceivedRtp,
    payload_buf: &[u8],
    pt_map: &PayloadTypeMap,
    sip: &mut [Option<SipStream>; 2],
    webrtc_streams: &mut [Option<WebrtcStream>; 2],
    transmit: &mut TransmitQueue,
    watch: &mut InactivityWatch,
    dropped: &mut u64,
) {
    let index = kind_index(rtp.kind);
    let payload = payload_buf.get(..rtp.payload_len).unwrap_or_default();
    if let Some(w) = webrtc_streams[index].as_mut() {
        w.recv.on_packet(
            rtp.ssrc,
            rtp.sequence_number,
            rtp.timestamp,
            payload.len(),
            rtp.arrival,
        );
    }
    watch.on_packet(rtp.arrival);
    let (Some(pt), Some(stream)) = (
        PayloadTypeMap::lookup(&pt_map.to_sip, rtp.payload_type),
        sip[index].as_mut(),
    ) else {
        *dropped += 1;
        return;
    };
    let (seq, ts) = stream
        .out
        .rewrite(rtp.ssrc, rtp.sequence_number, rtp.timestamp, rtp.arrival);
    let ssrc = stream.out.out_ssrc();
    let pushed = transmit.push_with(
        TransmitLeg::Rtp,
        stream.local_rtp,
        stream.remote_rtp,
        |buf| {
            let total = RTP_HEADER_LEN + payload.len();
            let out = buf.get_mut(..total)?;
            out[0] = 0x80;
            out[1] = (u8::from(rtp.marker) << 7) | (pt & 0x7F);
            out[2..4].copy_from_slice(&seq.to_be_bytes());
            out[4..8].copy_from_slice(&ts.to_be_bytes());
            out[8..12].copy_from_slice(&ssrc.to_be_bytes());
            out[RTP_HEADER_LEN..].copy_from_slice(payload);
            Some(total)
        },
    );
    if pushed {
        stream.packets_sent += 1;
        stream.bytes_sent += payload.len() as u64;
        stream.sent.packets = stream.sent.packets.wrapping_add(1);
        stream.sent.octets = stream.sent.octets.wrapping_add(payload.len() as u32);
        stream.sent_since_report = true;
    } else {
        *dropped += 1;
    }
}

/// The fields the bridge reads from a plain RTP packet.
#[derive(Debug, Clone, Copy)]
struct RtpHeaderView {
    marker: bool,
    payload_type: u8,
    sequence_number: u16,
    timestamp: u32,
    ssrc: u32,
    payload_start: usize,
    payload_end: usize,
}

/// Validate and read an RTP header (RFC 3550 sec. 5.1, 5.3.1): version 2, CSRCs, extension
/// and padding inside the datagram. `None` for anything malformed; never panics.
fn parse_rtp_header(bytes: &[u8]) -> Option<RtpHeaderView> {
    let fixed = bytes.get(..RTP_HEADER_LEN)?;
    if fixed[0] >> 6 != 2 {
        return None;
    }
    let padding = fixed[0] & 0x20 != 0;
    let extension = fixed[0] & 0x10 != 0;
    let csrc_count = usize::from(fixed[0] & 0x0F);
    let mut start = RTP_HEADER_LEN + 4 * csrc_count;
    if extension {
        let ext = bytes.get(start..start + 4)?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        start += 4 + 4 * words;
    }
    let mut end = bytes.len();
    if padding {
        let pad = usize::from(*bytes.last()?);
        if pad == 0 {
            return None;
        }
        end = end.checked_sub(pad)?;
    }
    if start > end {
        return None;
    }
    Some(RtpHeaderView {
        marker: fixed[1] & 0x80 != 0,
        payload_type: fixed[1] & 0x7F,
        sequence_number: u16::from_be_bytes([fixed[2], fixed[3]]),
        timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
        payload_start: start,
        payload_end: end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_header_parser_rejects_garbage_and_reads_valid_packets() {
        assert!(parse_rtp_header(&[]).is_none());
        assert!(parse_rtp_header(&[0x40; 12]).is_none(), "version 1");
        // Padding longer than the packet.
        let mut p = [0u8; 13];
        p[0] = 0xA0;
        p[12] = 200;
        assert!(parse_rtp_header(&p).is_none());
        // CSRC count beyond the datagram.
        assert!(parse_rtp_header(&[0x8F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_none());
        let mut ok = vec![
            0x90,
            0x80 | 111,
            0,
            7,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            9,
            0xBE,
            0xDE,
            0,
            1,
            1,
            2,
            3,
            4,
        ];
        ok.extend_from_slice(b"payload");
        let h = parse_rtp_header(&ok).unwrap();
        assert!(h.marker);
        assert_eq!(h.payload_type, 111);
        assert_eq!(h.sequence_number, 7);
        assert_eq!(h.timestamp, 256);
        assert_eq!(h.ssrc, 9);
        assert_eq!(&ok[h.payload_start..h.payload_end], b"payload");
        for len in 0..ok.len() {
            let _ = parse_rtp_header(&ok[..len]);
        }
    }

    #[test]
    fn codec_pairing_prefers_same_payload_type_and_maps_telephone_event() {
        let c = |name: &str, clock, pt| CodecSpec {
            kind: MediaKind::Audio,
            name: name.into(),
            clock_rate: clock,
            channels: if name == "opus" { 2 } else { 1 },
            fmtp: String::new(),
            payload_type: pt,
        };
        let webrtc = vec![
            c("opus", 48000, 111),
            c("PCMU", 8000, 0),
            c("telephone-event", 8000, 126),
            c("telephone-event", 48000, 110),
        ];
        let sip = vec![c("PCMU", 8000, 0), c("telephone-event", 8000, 101)];
        let pairs = pair_codecs(&webrtc, &sip);
        assert_eq!(pairs.len(), 2);
        let map = PayloadTypeMap::new(&pairs);
        assert_eq!(PayloadTypeMap::lookup(&map.to_sip, 126), Some(101));
        assert_eq!(PayloadTypeMap::lookup(&map.to_webrtc, 101), Some(126));
        assert_eq!(
            PayloadTypeMap::lookup(&map.to_sip, 111),
            None,
            "opus was not accepted by SIP"
        );
        assert_eq!(PayloadTypeMap::lookup(&map.to_sip, 200), None);
    }
}
