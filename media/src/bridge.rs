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
//! - Incoming INVITE without SDP (late offer): [`Bridge::new_late_offer`] -> SIP offer for
//!   the 200 OK; the ACK's SDP goes to [`Bridge::apply_late_sip_answer`] -> WebRTC offer;
//!   the browser's answer goes to [`Bridge::apply_late_webrtc_answer`].
//! - Trickled browser candidates go to [`Bridge::add_remote_candidate`] at any time after
//!   the bridge exists (the answerer keeps them until its WebRTC leg is built).
//! - SDES-SRTP toward SIP (RFC 4568): a SIP peer's `RTP/SAVP` offer is answered with our own
//!   key; our own SIP offers are `RTP/SAVP` with [`BridgeConfig::sip_offer_sdes`], and an
//!   outgoing call can keep an `RTP/SAVP` alternative of its plain offer for a new INVITE
//!   after 488 ([`Bridge::prepare_sdes_retry`], [`Bridge::use_sdes_retry`]). Whichever
//!   offer the answer answers, the SIP leg encrypts with our key of the tag the answer
//!   picked and decrypts with the peer's. For an INVITE without SDP the 200's offer comes
//!   from [`Bridge::apply_webrtc_answer_as_offer`].
//!
//! SDP translation is [`crate::sdp`]'s, the SIP side of the media is [`RtpLeg`]'s; the
//! bridge adds the WebRTC leg, the payload type maps, sequence/timestamp continuity toward
//! the browser and the event/statistics view the gateway needs.
//!
//! # Driving it (what the reactor does per call)
//!
//! ```no_run
//! use std::net::UdpSocket;
//! use std::time::{Instant, SystemTime};
//! use media::bridge::{Bridge, BridgeConfig, BridgeEvent, TransmitLeg};
//!
//! # fn run(browser_offer: &str, sip_answer: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let webrtc = UdpSocket::bind("127.0.0.1:0")?; // one per call: ICE/DTLS/SRTP
//! let rtp = UdpSocket::bind("127.0.0.1:40000")?; // SIP audio RTP ...
//! let rtcp = UdpSocket::bind("127.0.0.1:40001")?; // ... and RTCP on the next port
//! let config = BridgeConfig::new(webrtc.local_addr()?, rtp.local_addr()?, SystemTime::now(), 42);
//! let (mut bridge, sip_offer) = Bridge::new_answerer(Instant::now(), config, browser_offer)?;
//! // ... INVITE with sip_offer; later the 200 OK:
//! let webrtc_answer = bridge.apply_sip_answer(Instant::now(), sip_answer)?;
//! // ... sylkRTC `accepted` with webrtc_answer. Then, for every readable socket:
//! let mut buf = [0u8; 2048];
//! let (n, from) = webrtc.recv_from(&mut buf)?;
//! let local = webrtc.local_addr()?;
//! if let Err(e) = bridge.handle_webrtc_datagram(Instant::now(), local, from, &buf[..n]) {
//!     eprintln!("dropped one datagram: {e}"); // the call goes on
//! }
//! // (RTP socket: handle_rtp_datagram, RTCP socket: handle_rtcp_datagram,
//! //  timer due: handle_timeout.) After every input, drain:
//! while let Some(t) = bridge.poll_transmit() {
//!     let socket = match t.leg {
//!         TransmitLeg::Webrtc => &webrtc,
//!         TransmitLeg::Rtp => &rtp,
//!         TransmitLeg::Rtcp if t.from == rtcp.local_addr()? => &rtcp,
//!         TransmitLeg::Rtcp => &rtp, // rtcp-mux with the SIP peer
//!     };
//!     let _ = socket.send_to(t.bytes, t.to); // WouldBlock: drop (media is loss-tolerant)
//! }
//! while let Some(event) = bridge.poll_event() {
//!     match event {
//!         BridgeEvent::DtlsConnected => { /* sylkRTC `established` */ }
//!         BridgeEvent::IceFailed | BridgeEvent::DtlsFailed => { /* `terminated`, BYE */ }
//!         _ => {}
//!     }
//! }
//! let _next_wakeup = bridge.poll_timeout(); // arm the reactor timer
//! # Ok(())
//! # }
//! ```
//!
//! Errors from `handle_*` concern one datagram (it was dropped and counted); the call goes
//! on. Events end calls: [`BridgeEvent::IceFailed`], [`BridgeEvent::DtlsFailed`] and (by
//! gateway policy) [`BridgeEvent::RtpInactive`].
//!
//! No common codec in either flow is [`BridgeError::NoCommonCodec`] (SIP 488): the bridge
//! never transcodes.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use crate::error::BridgeError;
use crate::rtp::srtp::SdesSrtp;
use crate::rtp::{NtpClock, PayloadTypeMap, ReceptionStats, RtpPacket, SsrcRewriter};
use crate::rtp_leg::{RtpLeg, RtpLegConfig, RtpLegEvent, RtpRemote};
use crate::sdp::{
    finalize_browser_sdp, sip_answer_to_negotiated, sip_offer_answered, sip_offer_to_negotiated,
    webrtc_answer_to_sip_answer, webrtc_offer_to_sip_offer, Codec, CryptoAttribute, CryptoSuite,
    Direction, LocalOrigin, NegotiatedMedia, NegotiatedSession, SdpError, SessionDescription,
    SipLocalMedia, SipLocalMediaLine,
};
use crate::transmit_queue::{TransmitQueue, SLOT_SIZE};
use crate::webrtc_leg::rtc_engine_support::splitmix64;
use crate::webrtc_leg::{
    answer_leg, offer_leg, CodecSpec, MediaKind, OutgoingRtp, ReceivedRtp, WebrtcEngine,
    WebrtcEngineKind, WebrtcLegConfig, WebrtcLegEvent, WebrtcMedia, SUPPORTED_CODECS,
};

/// Default RTP inactivity timeout (issue 4: configurable, default 60 s).
pub const DEFAULT_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default limit for the DTLS handshake after ICE connected.
pub const DEFAULT_DTLS_TIMEOUT: Duration = Duration::from_secs(10);
/// Default RTCP report interval on the SIP leg (RFC 3550 sec. 6.2: 5 s minimum).
pub const DEFAULT_RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// Datagrams the bridge may hold for the SIP leg before dropping the oldest. One input
/// yields at most a packet plus an RTCP compound and the reactor drains after every input,
/// so 8 is ample; 8 x 1600 B keeps the ring at 12.5 KiB of the 64 KiB per-call budget
/// (performance.md P6).
const TRANSMIT_QUEUE_SLOTS: usize = 8;
/// Events held for the gateway; a call produces a handful.
const MAX_QUEUED_EVENTS: usize = 32;
/// Remote candidates buffered while the answerer waits for the SIP answer.
const MAX_PENDING_CANDIDATES: usize = 64;

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
    /// Report [`BridgeEvent::RtpInactive`] after this long without RTP on a leg (counted from
    /// DTLS connected on the WebRTC leg, from the SIP answer on the SIP leg, where RTCP also
    /// counts as life).
    pub inactivity_timeout: Duration,
    /// RTCP report interval on the SIP leg (randomised by 0.5..1.5, RFC 3550 sec. 6.2).
    pub rtcp_interval: Duration,
    /// Wall-clock time at the `now` passed to the constructor, for RTCP SR NTP timestamps.
    pub wallclock: SystemTime,
    /// RTCP CNAME on the SIP leg (RFC 3550 sec. 6.5.1).
    pub cname: String,
    /// Latch the SIP leg onto the source of the peer's first packet (symmetric RTP,
    /// RFC 4961), the usual NAT traversal for SIP phones. On by default, as in [`RtpLeg`].
    pub latch_sip_source: bool,
    /// Seed for our SSRCs and the SDP session id (deterministic tests fix it; production
    /// passes something random).
    pub seed: u64,
    /// Offer `RTP/SAVP` with SDES keys (RFC 4568) instead of plain `RTP/AVP` whenever the
    /// bridge writes the SIP offer ([`Bridge::new_answerer`], [`Bridge::new_late_offer`],
    /// [`Bridge::capabilities_offer`]): one `a=crypto` line per suite of
    /// [`SDES_OFFER_SUITES`], each with a fresh key. Off by default; a SIP peer's own
    /// `RTP/SAVP` offer is answered with SDES either way.
    pub sip_offer_sdes: bool,
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
                dtls_timeout: DEFAULT_DTLS_TIMEOUT,
                engine: WebrtcEngineKind::default(),
            },
            sip_audio_local,
            sip_video_local: None,
            sip_advertised_ip: None,
            codecs: SUPPORTED_CODECS.iter().map(|s| (*s).to_owned()).collect(),
            inactivity_timeout: DEFAULT_INACTIVITY_TIMEOUT,
            rtcp_interval: DEFAULT_RTCP_INTERVAL,
            wallclock,
            cname: "sylk-gateway".to_owned(),
            latch_sip_source: true,
            seed,
            sip_offer_sdes: false,
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
    /// Bytes received: whole RTP packets on the SIP leg (after SDES-SRTP removal), payload
    /// only on the WebRTC leg (`rtc` hands packets over parsed).
    pub bytes_received: u64,
    /// RTP packets sent on the leg.
    pub packets_sent: u64,
    /// Bytes sent, counted like `bytes_received`.
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

/// One SIP-side stream: the RTP leg plus what the bridge needs beside it.
#[derive(Debug)]
struct SipStream {
    leg: RtpLeg,
    local_rtp: SocketAddr,
    local_rtcp: SocketAddr,
    ssrc: u32,
}

/// One WebRTC-side stream.
#[derive(Debug)]
struct WebrtcStream {
    /// SIP -> WebRTC continuity (the engine stamps its own SSRC on top).
    out: SsrcRewriter,
    /// Keeps wild sequence jumps of the SIP source away from the browser's SRTP.
    guard: SequenceGuard,
    clock_rate: u32,
    /// RFC 3550 A.1/A.3/A.8 of the browser's current source (rtc keeps its own, but reading
    /// them means building a stats report, which allocates).
    recv: Option<ReceptionStats>,
    /// Loss of the browser's earlier sources, so a new SSRC does not reset the total.
    lost_earlier: i64,
    packets_received: u64,
    bytes_received: u64,
    packets_sent: u64,
    bytes_sent: u64,
}

/// The suites of our own `RTP/SAVP` offers, most preferred first; their `a=crypto` tags are
/// 1, 2, 3 in this order (RFC 4568 section 9.1: the offerer numbers its lines, the answerer
/// names the one it accepts by tag). AES_CM_128_HMAC_SHA1_80 first: every SDES peer has it
/// (RFC 4568 section 6.2.1), and answerers commonly take the first line they support.
pub const SDES_OFFER_SUITES: [CryptoSuite; 3] = [
    CryptoSuite::AesCm128HmacSha1_80,
    CryptoSuite::AeadAes128Gcm,
    CryptoSuite::AesCm128HmacSha1_32,
];

/// One fresh key per [`SDES_OFFER_SUITES`] entry, tags 1..=n, for an `RTP/SAVP` offer.
fn sdes_offer_cryptos() -> Result<Vec<CryptoAttribute>, BridgeError> {
    (1u32..)
        .zip(SDES_OFFER_SUITES)
        .map(|(tag, suite)| fresh_crypto(tag, suite).ok_or(BridgeError::KeyGeneration))
        .collect()
}

/// The SDES-SRTP context of one agreed SIP m-line (RFC 4568 section 6.1): our key protects
/// what we send, the peer's unprotects what it sends. `None` for plain RTP; a line with only
/// one of the two keys is refused rather than run half in the clear.
fn sdes_context(n: &NegotiatedMedia) -> Result<Option<SdesSrtp>, BridgeError> {
    let bad_crypto = || BridgeError::Sdp {
        leg: MediaLeg::Sip,
        error: SdpError::BadCrypto,
    };
    match (&n.local_crypto, &n.remote_crypto) {
        (Some(local), Some(remote)) => SdesSrtp::new(local, remote)
            .map(Some)
            .map_err(|_| bad_crypto()),
        (None, None) => Ok(None),
        _ => Err(bad_crypto()),
    }
}

/// A fresh SDES key for `suite` with `tag` (RFC 4568 section 6.1: master key and salt from
/// a cryptographic random source); `None` if the OS source fails.
fn fresh_crypto(tag: u32, suite: CryptoSuite) -> Option<CryptoAttribute> {
    use ring::rand::SecureRandom;
    let mut key_salt = [0u8; 64];
    let len = suite.key_len() + suite.salt_len();
    let buf = key_salt.get_mut(..len)?;
    ring::rand::SystemRandom::new().fill(buf).ok()?;
    CryptoAttribute::new(tag, suite, buf).ok()
}

/// RFC 3550 A.1: a jump beyond this is a restart or garbage, not loss.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: this far behind is a late packet, not a jump.
const MAX_MISORDER: u16 = 100;

/// Sequence sanity for the SIP source before it reaches the browser. A stray packet whose
/// sequence number jumps far (a spoofed or corrupted datagram) would make the browser's SRTP
/// receiver guess the wrong rollover counter (RFC 3711 sec. 3.3.1) and reject everything
/// after it; so a big jump is accepted only when the next packet confirms it (RFC 3550 A.1
/// probation), and then counts as a new source, so the output continues at +1.
#[derive(Debug, Clone, Copy, Default)]
struct SequenceGuard {
    ssrc: Option<u32>,
    last_seq: u16,
    pending_jump: Option<u16>,
    restarts: u32,
}

impl SequenceGuard {
    /// The source identity to rewrite with (SSRC mixed with the restart count), or `None`
    /// to drop the packet.
    fn admit(&mut self, ssrc: u32, seq: u16) -> Option<u32> {
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

    fn source(&self, ssrc: u32) -> u32 {
        ssrc ^ self.restarts.wrapping_mul(0x9E37_79B9)
    }
}

impl WebrtcStream {
    fn on_packet(&mut self, rtp: &ReceivedRtp) {
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

    fn lost(&self) -> i64 {
        self.lost_earlier
            + self
                .recv
                .as_ref()
                .map_or(0, ReceptionStats::cumulative_lost)
    }

    fn jitter(&self) -> Duration {
        let units = self.recv.as_ref().map_or(0, ReceptionStats::jitter);
        Duration::from_micros(u64::from(units) * 1_000_000 / u64::from(self.clock_rate.max(1)))
    }
}

/// Where the negotiation stands.
#[derive(Debug)]
enum Negotiation {
    /// Answerer: the browser offered, the SIP answer is awaited.
    AwaitingSipAnswer {
        webrtc_offer: String,
        /// The browser's offer as translated (unusable m-lines set to port 0).
        webrtc_model: Box<SessionDescription>,
        sip_offer: Box<SessionDescription>,
        pending_candidates: Vec<String>,
        /// The `RTP/SAVP` alternative of `sip_offer` prepared by
        /// [`Bridge::prepare_sdes_retry`], for a new INVITE after a 488.
        sdes_retry: Option<Box<SessionDescription>>,
    },
    /// Offerer: our WebRTC offer is out, the browser's answer is awaited.
    AwaitingWebrtcAnswer {
        /// The SIP offer as negotiated (unusable m-lines set to port 0).
        sip_offer: Box<SessionDescription>,
    },
    /// Late offer (INVITE without SDP): our SIP offer is out in the 200 OK, the SIP answer
    /// (in the ACK) is awaited.
    AwaitingLateSipAnswer { sip_offer: Box<SessionDescription> },
    /// Late offer: the SIP side agreed, our WebRTC offer is out, the browser's answer is
    /// awaited.
    AwaitingLateWebrtcAnswer { negotiated: NegotiatedSession },
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
    /// Browser PT -> SIP PT, for the WebRTC leg's payload types the bridge accepts.
    to_sip: PayloadTypeMap,
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
    dropped: u64,
    /// o= line state of our SIP SDP (RFC 3264 sec. 5: version bumps on every new SDP).
    origin: LocalOrigin,
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

/// (browser PT -> SIP PT, SIP PT -> browser PT) for codec pairs (RFC 3264 sec. 6.1: each
/// side receives with its own numbers).
fn payload_maps(pairs: &[(CodecSpec, CodecSpec)]) -> (PayloadTypeMap, PayloadTypeMap) {
    let (mut to_sip, mut to_webrtc) = (PayloadTypeMap::empty(), PayloadTypeMap::empty());
    for (webrtc, sip) in pairs {
        to_sip.insert(webrtc.payload_type, sip.payload_type);
        to_webrtc.insert(sip.payload_type, webrtc.payload_type);
    }
    (to_sip, to_webrtc)
}

/// `media::sdp` codec -> the WebRTC leg's codec description.
fn codec_spec(kind: MediaKind, c: &Codec) -> CodecSpec {
    CodecSpec {
        kind,
        name: c.name.clone(),
        clock_rate: c.clock_rate,
        channels: match kind {
            MediaKind::Audio => u16::from(c.channels),
            MediaKind::Video => 0,
        },
        fmtp: c.fmtp.clone().unwrap_or_default(),
        payload_type: c.payload_type,
    }
}

/// Audio or video for one of the codecs the bridge forwards (names of RFC 7741 VP8 and
/// RFC 6184 H.264; everything else the bridge supports is audio).
fn codec_kind(c: &Codec) -> MediaKind {
    if c.name.eq_ignore_ascii_case("VP8") || c.name.eq_ignore_ascii_case("H264") {
        MediaKind::Video
    } else {
        MediaKind::Audio
    }
}

/// Whether the peer's direction lets us send to it (RFC 3264 sec. 5.1).
fn peer_receives(direction: Direction) -> bool {
    matches!(direction, Direction::SendRecv | Direction::RecvOnly)
}

fn sdp_error(leg: MediaLeg) -> impl Fn(SdpError) -> BridgeError {
    move |e| match e {
        SdpError::NoCommonCodec { .. } => BridgeError::NoCommonCodec,
        other => BridgeError::Sdp { leg, error: other },
    }
}

impl Bridge {
    fn empty(now: Instant, config: BridgeConfig, negotiation: Negotiation) -> Self {
        let mut rng = config.seed ^ 0x5EED_0FB4_1D6E;
        let session_id = splitmix64(&mut rng) >> 2;
        let unix = config
            .wallclock
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self {
            clock: NtpClock::new(now, unix),
            config,
            negotiation,
            webrtc: None,
            sip: [None, None],
            webrtc_streams: [None, None],
            to_sip: PayloadTypeMap::empty(),
            transmit: TransmitQueue::new(TRANSMIT_QUEUE_SLOTS),
            transmit_buf: vec![0u8; SLOT_SIZE].into_boxed_slice(),
            payload_buf: vec![0u8; SLOT_SIZE].into_boxed_slice(),
            events: VecDeque::with_capacity(MAX_QUEUED_EVENTS),
            closed_reported: false,
            rng,
            webrtc_watch: InactivityWatch::default(),
            dropped: 0,
            origin: LocalOrigin::new(session_id, 1),
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

    /// The codecs this call may forward, in `media::sdp` form (its defaults, restricted to
    /// [`BridgeConfig::codecs`]).
    fn supported_codecs(config: &BridgeConfig) -> Vec<Codec> {
        SipLocalMedia::default_codecs()
            .into_iter()
            .filter(|c| {
                config
                    .codecs
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&c.name))
            })
            .collect()
    }

    /// Keep the first audio and the first video m-line the bridge has a socket for; set every
    /// other m-line's port to 0 so the translation rejects it (RFC 3264 sec. 6).
    fn restrict_media(config: &BridgeConfig, sdp: &mut SessionDescription) {
        let mut taken = [false; 2];
        for m in &mut sdp.media {
            let usable = match MediaKind::from_sdp(&m.kind) {
                Some(kind) => {
                    let has_socket = kind == MediaKind::Audio || config.sip_video_local.is_some();
                    let first = !taken[kind_index(kind)];
                    if has_socket && first && m.port != 0 {
                        taken[kind_index(kind)] = true;
                        true
                    } else {
                        false
                    }
                }
                None => false,
            };
            if !usable {
                m.port = 0;
            }
        }
    }

    fn sip_local_media(&self, sdp: &SessionDescription) -> SipLocalMedia {
        SipLocalMedia {
            address: self.sip_ip(),
            rtcp_mux: false,
            lines: sdp
                .media
                .iter()
                .map(|m| SipLocalMediaLine {
                    rtp_port: MediaKind::from_sdp(&m.kind)
                        .and_then(|k| self.sip_local(k))
                        .map_or(0, |a| a.port()),
                    // A SIP peer offering RTP/SAVP (RFC 4568 SDES) gets our own fresh key for
                    // each suite it offers; the answer writer picks the one matching its
                    // first usable crypto line.
                    cryptos: if m.is_sdes_srtp() {
                        m.cryptos()
                            .iter()
                            .filter_map(|offered| fresh_crypto(offered.tag, offered.suite))
                            .collect()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
            codecs: Self::supported_codecs(&self.config),
        }
    }

    /// What we put into a SIP offer we write ourselves: our ports and, with `sdes`, a fresh
    /// set of [`SDES_OFFER_SUITES`] keys per m-line, which makes the offer `RTP/SAVP`
    /// (RFC 4568 section 5.1: every key is new, never reused across offers or m-lines).
    fn sip_offer_local_media(
        &self,
        sdp: &SessionDescription,
        sdes: bool,
    ) -> Result<SipLocalMedia, BridgeError> {
        let mut local = self.sip_local_media(sdp);
        if sdes {
            for line in &mut local.lines {
                line.cryptos = sdes_offer_cryptos()?;
            }
        }
        Ok(local)
    }

    /// Outgoing call, step 1: the browser's offer in, the SIP offer (for the INVITE) out,
    /// translated by [`crate::sdp::webrtc_offer_to_sip_offer`]: plain `RTP/AVP`, or
    /// `RTP/SAVP` with SDES keys when [`BridgeConfig::sip_offer_sdes`] is set.
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
        let mut webrtc_model = SessionDescription::parse(webrtc_offer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Webrtc))?;
        webrtc_model
            .check_webrtc_transport()
            .map_err(sdp_error(MediaLeg::Webrtc))?;
        Self::restrict_media(&config, &mut webrtc_model);
        let mut bridge = Self::empty(now, config, Negotiation::Closed);
        let local = bridge.sip_offer_local_media(&webrtc_model, bridge.config.sip_offer_sdes)?;
        let sip_offer = webrtc_offer_to_sip_offer(&webrtc_model, &local, &mut bridge.origin)
            .map_err(sdp_error(MediaLeg::Webrtc))?;
        let sdp = sip_offer.to_sdp_string();
        bridge.negotiation = Negotiation::AwaitingSipAnswer {
            webrtc_offer: webrtc_offer_sdp.to_owned(),
            webrtc_model: Box::new(webrtc_model),
            sip_offer: Box::new(sip_offer),
            pending_candidates: Vec::new(),
            sdes_retry: None,
        };
        Ok((bridge, sdp))
    }

    /// Outgoing call, for a SIP peer that may insist on SRTP: the `RTP/SAVP` + SDES
    /// (RFC 4568) version of the plain offer [`Bridge::new_answerer`] returned, with fresh
    /// keys, for a new INVITE should the first be refused with 488 Not Acceptable Here
    /// (RFC 3261 section 21.4.26). The bridge keeps it aside and goes on expecting the answer
    /// to the first offer until [`Bridge::use_sdes_retry`].
    ///
    /// Only an answerer still awaiting the SIP answer can do this
    /// ([`BridgeError::WrongState`] otherwise, nothing changed).
    pub fn prepare_sdes_retry(&mut self) -> Result<String, BridgeError> {
        let Negotiation::AwaitingSipAnswer { webrtc_model, .. } = &self.negotiation else {
            return Err(BridgeError::WrongState(
                "prepare_sdes_retry needs an answerer awaiting the SIP answer",
            ));
        };
        let local = self.sip_offer_local_media(webrtc_model, true)?;
        let retry = webrtc_offer_to_sip_offer(webrtc_model, &local, &mut self.origin)
            .map_err(sdp_error(MediaLeg::Webrtc))?;
        let sdp = retry.to_sdp_string();
        if let Negotiation::AwaitingSipAnswer { sdes_retry, .. } = &mut self.negotiation {
            *sdes_retry = Some(Box::new(retry));
        }
        Ok(sdp)
    }

    /// The INVITE went out again with the offer of [`Bridge::prepare_sdes_retry`]: the SIP
    /// answer to come answers that offer, so its keys are the ones
    /// [`Bridge::apply_sip_answer`] must find. [`BridgeError::WrongState`] (nothing changed)
    /// without a prepared retry or once an answer was applied.
    pub fn use_sdes_retry(&mut self) -> Result<(), BridgeError> {
        let Negotiation::AwaitingSipAnswer {
            sip_offer,
            sdes_retry,
            ..
        } = &mut self.negotiation
        else {
            return Err(BridgeError::WrongState(
                "use_sdes_retry needs an answerer awaiting the SIP answer",
            ));
        };
        let retry = sdes_retry.take().ok_or(BridgeError::WrongState(
            "use_sdes_retry without prepare_sdes_retry",
        ))?;
        *sip_offer = retry;
        Ok(())
    }

    /// Outgoing call, step 2: the SIP answer (200 OK) in, the WebRTC answer (sylkRTC
    /// `accepted`) out. The WebRTC answer carries the host candidate, explicit directions and
    /// `a=end-of-candidates`.
    ///
    /// Calling it in the wrong state is [`BridgeError::WrongState`] and changes nothing; any
    /// other error ends the negotiation (the call cannot go on: tear it down).
    pub fn apply_sip_answer(
        &mut self,
        now: Instant,
        sip_answer_sdp: &str,
    ) -> Result<String, BridgeError> {
        if !matches!(self.negotiation, Negotiation::AwaitingSipAnswer { .. }) {
            return Err(BridgeError::WrongState(
                "apply_sip_answer needs an answerer awaiting the SIP answer",
            ));
        }
        let Negotiation::AwaitingSipAnswer {
            webrtc_offer,
            webrtc_model,
            sip_offer,
            pending_candidates,
            ..
        } = std::mem::replace(&mut self.negotiation, Negotiation::Closed)
        else {
            return Err(BridgeError::WrongState(
                "apply_sip_answer needs an answerer awaiting the SIP answer",
            ));
        };
        let answer = SessionDescription::parse(sip_answer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Sip))?;
        let negotiated =
            sip_answer_to_negotiated(&sip_offer, &answer).map_err(sdp_error(MediaLeg::Sip))?;
        let mut pairs = Vec::new();
        for (i, n) in negotiated.media.iter().enumerate() {
            let (Some(kind), Some(browser)) =
                (MediaKind::from_sdp(&n.kind), webrtc_model.media.get(i))
            else {
                continue;
            };
            if n.rejected {
                continue;
            }
            let offered: Vec<CodecSpec> = browser
                .codecs()
                .iter()
                .map(|c| codec_spec(kind, c))
                .collect();
            let kind_pairs = self.pair_with_sip(kind, &offered, n);
            if !has_media_codec(&kind_pairs, kind) {
                continue;
            }
            // With our RTP/SAVP offer, the answer named one of our crypto lines: we encrypt
            // with our key of that tag and suite, decrypt with the peer's (RFC 4568 6.1).
            let srtp = sdes_context(n)?;
            self.install_sip_stream(now, kind, n, &kind_pairs, srtp);
            pairs.extend(kind_pairs);
        }
        if pairs.is_empty() {
            return Err(BridgeError::NoCommonCodec);
        }
        let webrtc_codecs: Vec<CodecSpec> = pairs.iter().map(|(w, _)| w.clone()).collect();
        let (mut leg, answer) = answer_leg(
            now,
            &self.config.webrtc,
            self.clock,
            &webrtc_offer,
            &webrtc_codecs,
        )?;
        self.install_webrtc_streams(&pairs, |kind| leg.local_ssrc(kind));
        for candidate in pending_candidates {
            if let Err(e) = leg.add_remote_candidate(&candidate) {
                log::debug!("buffered remote candidate refused: {e}");
            }
        }
        self.to_sip = payload_maps(&pairs).0;
        self.webrtc = Some(leg);
        self.negotiation = Negotiation::Active;
        self.drain_webrtc(now);
        Ok(finalize_for_browser(&answer, &negotiated))
    }

    /// Pair the WebRTC side's codecs of one kind with the SIP side's.
    fn pair_with_sip(
        &self,
        kind: MediaKind,
        webrtc: &[CodecSpec],
        n: &NegotiatedMedia,
    ) -> Vec<(CodecSpec, CodecSpec)> {
        let sip: Vec<CodecSpec> = n.codecs.iter().map(|c| codec_spec(kind, c)).collect();
        pair_codecs(webrtc, &sip)
    }

    /// Incoming call without SDP in the INVITE (late offer, RFC 3261 sec. 13.2.1), step 1:
    /// the gateway offers first, in the 200 OK. Returns the SIP offer: every codec the call
    /// may forward, audio (and video with a video socket), plain RTP/AVP, or RTP/SAVP with
    /// SDES keys (RFC 4568) when [`BridgeConfig::sip_offer_sdes`] is set.
    pub fn new_late_offer(
        now: Instant,
        config: BridgeConfig,
    ) -> Result<(Self, String), BridgeError> {
        let mut bridge = Self::empty(now, config, Negotiation::Closed);
        // What we can do, written as a WebRTC-style template and translated like a browser's
        // offer, so the SIP offer comes out of the same writer as every other SIP SDP.
        let mut template =
            SessionDescription::parse(b"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n")
                .map_err(sdp_error(MediaLeg::Sip))?;
        let supported = Self::supported_codecs(&bridge.config);
        for kind in [MediaKind::Audio, MediaKind::Video] {
            if bridge.sip_local(kind).is_none() {
                continue;
            }
            let codecs: Vec<&Codec> = supported.iter().filter(|c| codec_kind(c) == kind).collect();
            if codecs.is_empty() {
                continue;
            }
            let mut m = crate::sdp::MediaSection::new(
                kind.to_sdp(),
                9,
                "UDP/TLS/RTP/SAVPF",
                codecs.iter().map(|c| c.payload_type.to_string()).collect(),
            );
            for c in &codecs {
                let map = if c.channels > 1 {
                    format!(
                        "{} {}/{}/{}",
                        c.payload_type, c.name, c.clock_rate, c.channels
                    )
                } else {
                    format!("{} {}/{}", c.payload_type, c.name, c.clock_rate)
                };
                m.attributes.push(crate::sdp::Attribute::new("rtpmap", map));
                if let Some(fmtp) = &c.fmtp {
                    m.attributes.push(crate::sdp::Attribute::new(
                        "fmtp",
                        format!("{} {fmtp}", c.payload_type),
                    ));
                }
            }
            m.attributes.push(crate::sdp::Attribute::flag("sendrecv"));
            template.media.push(m);
        }
        let local = bridge.sip_offer_local_media(&template, bridge.config.sip_offer_sdes)?;
        let sip_offer = webrtc_offer_to_sip_offer(&template, &local, &mut bridge.origin)
            .map_err(sdp_error(MediaLeg::Sip))?;
        let sdp = sip_offer.to_sdp_string();
        bridge.negotiation = Negotiation::AwaitingLateSipAnswer {
            sip_offer: Box::new(sip_offer),
        };
        Ok((bridge, sdp))
    }

    /// Late offer, step 2: the SIP answer (from the ACK) in, the WebRTC offer for the browser
    /// out, with the codecs the SIP side kept and its payload types.
    ///
    /// Calling it in the wrong state is [`BridgeError::WrongState`] and changes nothing; any
    /// other error ends the negotiation (the call cannot go on: tear it down).
    pub fn apply_late_sip_answer(
        &mut self,
        now: Instant,
        sip_answer_sdp: &str,
    ) -> Result<String, BridgeError> {
        if !matches!(self.negotiation, Negotiation::AwaitingLateSipAnswer { .. }) {
            return Err(BridgeError::WrongState(
                "apply_late_sip_answer needs a late-offer bridge awaiting the SIP answer",
            ));
        }
        let Negotiation::AwaitingLateSipAnswer { sip_offer } =
            std::mem::replace(&mut self.negotiation, Negotiation::Closed)
        else {
            return Err(BridgeError::WrongState(
                "apply_late_sip_answer needs a late-offer bridge awaiting the SIP answer",
            ));
        };
        let answer = SessionDescription::parse(sip_answer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Sip))?;
        let negotiated =
            sip_answer_to_negotiated(&sip_offer, &answer).map_err(sdp_error(MediaLeg::Sip))?;
        let mut codecs = Vec::new();
        for n in negotiated.media.iter().filter(|n| !n.rejected) {
            if let Some(kind) = MediaKind::from_sdp(&n.kind) {
                codecs.extend(n.codecs.iter().map(|c| codec_spec(kind, c)));
            }
        }
        if !codecs.iter().any(|c| !c.is_telephone_event()) {
            return Err(BridgeError::NoCommonCodec);
        }
        let (leg, offer) = offer_leg(now, &self.config.webrtc, self.clock, &codecs)?;
        self.webrtc = Some(leg);
        let offer = finalize_for_browser(&offer, &negotiated);
        self.negotiation = Negotiation::AwaitingLateWebrtcAnswer { negotiated };
        self.drain_webrtc(now);
        Ok(offer)
    }

    /// Incoming INVITE without SDP, as the gateway runs it: the browser must see an offer
    /// before the user answers, so the bridge offers the browser what it can do, the
    /// browser's answer becomes our offer in the 200 OK, and the SIP peer's answer arrives in
    /// the ACK. This step is the last one: `our_offer_sdp` is what went out in the 200 (the
    /// result of [`Bridge::apply_webrtc_answer_as_offer`]), `sip_answer_sdp` the ACK's body.
    /// It points the SIP legs at the addresses the answer names (RFC 3264 section 6) and,
    /// when our offer was `RTP/SAVP`, keys them with our key for the crypto tag the answer
    /// picked and the peer's key (RFC 4568 section 6.1). An answer that drops to `RTP/AVP`
    /// or names a tag or suite we did not offer is an error and changes nothing.
    ///
    /// Create the bridge for this flow with [`Bridge::new_offerer`] on the SDP that
    /// [`Bridge::capabilities_offer`] returns.
    pub fn apply_sip_answer_to_our_offer(
        &mut self,
        now: Instant,
        our_offer_sdp: &str,
        sip_answer_sdp: &str,
    ) -> Result<(), BridgeError> {
        let offer = SessionDescription::parse(our_offer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Sip))?;
        let answer = SessionDescription::parse(sip_answer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Sip))?;
        let negotiated =
            sip_answer_to_negotiated(&offer, &answer).map_err(sdp_error(MediaLeg::Sip))?;
        let mut updates = Vec::with_capacity(negotiated.media.len());
        for n in negotiated.media.iter().filter(|n| !n.rejected) {
            let Some(kind) = MediaKind::from_sdp(&n.kind) else {
                continue;
            };
            let Some(remote) = RtpRemote::from_negotiated(n) else {
                continue;
            };
            updates.push((kind, remote, sdes_context(n)?));
        }
        for (kind, remote, srtp) in updates {
            if let Some(stream) = self.sip[kind_index(kind)].as_mut() {
                stream.leg.set_srtp(srtp);
                stream.leg.set_remote(now, remote);
            }
        }
        Ok(())
    }

    /// What the gateway can do, as a SIP-style offer whose media address is the discard
    /// port (RFC 863) of `config`'s SIP address: fed to [`Bridge::new_offerer`] for an
    /// INVITE without SDP, it yields the browser's offer, while nothing real is sent toward
    /// SIP until [`Bridge::apply_sip_answer_to_our_offer`] names the peer's address.
    pub fn capabilities_offer(now: Instant, config: BridgeConfig) -> Result<String, BridgeError> {
        let (_, sdp) = Self::new_late_offer(now, config)?;
        let mut model =
            SessionDescription::parse(sdp.as_bytes()).map_err(sdp_error(MediaLeg::Sip))?;
        for m in &mut model.media {
            if m.port != 0 {
                m.port = 9;
            }
        }
        Ok(model.to_sdp_string())
    }

    /// Late offer, step 3: the browser's answer in; both legs are then set up (the SIP side
    /// already has its final SDP, so nothing goes back to SIP).
    ///
    /// Calling it in the wrong state is [`BridgeError::WrongState`] and changes nothing; any
    /// other error ends the negotiation (the call cannot go on: tear it down).
    pub fn apply_late_webrtc_answer(
        &mut self,
        now: Instant,
        webrtc_answer_sdp: &str,
    ) -> Result<(), BridgeError> {
        if !matches!(
            self.negotiation,
            Negotiation::AwaitingLateWebrtcAnswer { .. }
        ) {
            return Err(BridgeError::WrongState(
                "apply_late_webrtc_answer needs a late-offer bridge awaiting the browser",
            ));
        }
        let Negotiation::AwaitingLateWebrtcAnswer { negotiated } =
            std::mem::replace(&mut self.negotiation, Negotiation::Closed)
        else {
            return Err(BridgeError::WrongState(
                "apply_late_webrtc_answer needs a late-offer bridge awaiting the browser",
            ));
        };
        let Some(engine) = self.webrtc.as_mut() else {
            return Err(BridgeError::WrongState("late offer without WebRTC leg"));
        };
        engine.apply_remote_answer(now, webrtc_answer_sdp)?;
        let browser_codecs = engine.negotiated_codecs();
        let mut pairs = Vec::new();
        for n in negotiated.media.iter().filter(|n| !n.rejected) {
            let Some(kind) = MediaKind::from_sdp(&n.kind) else {
                continue;
            };
            if self.sip[kind_index(kind)].is_some() {
                continue;
            }
            let kind_pairs = self.pair_with_sip(kind, &browser_codecs, n);
            if !has_media_codec(&kind_pairs, kind) {
                continue;
            }
            // Our RTP/SAVP offer's key for the tag the answer picked, and the peer's.
            let srtp = sdes_context(n)?;
            self.install_sip_stream(now, kind, n, &kind_pairs, srtp);
            pairs.extend(kind_pairs);
        }
        if pairs.is_empty() {
            return Err(BridgeError::NoCommonCodec);
        }
        let ssrcs = [MediaKind::Audio, MediaKind::Video]
            .map(|k| self.webrtc.as_ref().and_then(|e| e.local_ssrc(k)));
        self.install_webrtc_streams(&pairs, |kind| ssrcs[kind_index(kind)]);
        self.to_sip = payload_maps(&pairs).0;
        self.negotiation = Negotiation::Active;
        self.drain_webrtc(now);
        Ok(())
    }

    /// Incoming call, step 1: the SIP offer (INVITE) in, the WebRTC offer for the browser out
    /// (explicit directions, host candidate, `a=end-of-candidates`). The browser is offered
    /// the SIP side's codecs with the SIP payload types, so PTs usually match 1:1.
    pub fn new_offerer(
        now: Instant,
        config: BridgeConfig,
        sip_offer_sdp: &str,
    ) -> Result<(Self, String), BridgeError> {
        let mut sip_offer = SessionDescription::parse(sip_offer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Sip))?;
        Self::restrict_media(&config, &mut sip_offer);
        let negotiated = sip_offer_to_negotiated(&sip_offer, &Self::supported_codecs(&config))
            .map_err(sdp_error(MediaLeg::Sip))?;
        let mut codecs = Vec::new();
        for n in negotiated.media.iter().filter(|n| !n.rejected) {
            if let Some(kind) = MediaKind::from_sdp(&n.kind) {
                codecs.extend(n.codecs.iter().map(|c| codec_spec(kind, c)));
            }
        }
        if !codecs.iter().any(|c| !c.is_telephone_event()) {
            return Err(BridgeError::NoCommonCodec);
        }
        let mut bridge = Self::empty(
            now,
            config,
            Negotiation::AwaitingWebrtcAnswer {
                sip_offer: Box::new(sip_offer),
            },
        );
        let (leg, offer) = offer_leg(now, &bridge.config.webrtc, bridge.clock, &codecs)?;
        bridge.webrtc = Some(leg);
        bridge.drain_webrtc(now);
        Ok((bridge, finalize_for_browser(&offer, &negotiated)))
    }

    /// Incoming call, step 2: the browser's answer in, the SIP answer (200 OK) out,
    /// translated by [`crate::sdp::webrtc_answer_to_sip_answer`].
    ///
    /// Calling it in the wrong state is [`BridgeError::WrongState`] and changes nothing; any
    /// other error ends the negotiation (the call cannot go on: tear it down).
    pub fn apply_webrtc_answer(
        &mut self,
        now: Instant,
        webrtc_answer_sdp: &str,
    ) -> Result<String, BridgeError> {
        self.webrtc_answer_to_sip(now, webrtc_answer_sdp, false)
    }

    /// [`Bridge::apply_webrtc_answer`] for an INVITE without SDP, where what it returns is
    /// not an answer but our offer in the 200 OK (created on [`Bridge::capabilities_offer`]):
    /// identical for plain RTP, and for `RTP/SAVP` it carries a fresh key for every suite of
    /// the capabilities offer instead of the single line an answer has (RFC 4568 section
    /// 5.1), so the peer may pick any. The SIP leg is re-keyed from the ACK's answer by
    /// [`Bridge::apply_sip_answer_to_our_offer`].
    pub fn apply_webrtc_answer_as_offer(
        &mut self,
        now: Instant,
        webrtc_answer_sdp: &str,
    ) -> Result<String, BridgeError> {
        self.webrtc_answer_to_sip(now, webrtc_answer_sdp, true)
    }

    fn webrtc_answer_to_sip(
        &mut self,
        now: Instant,
        webrtc_answer_sdp: &str,
        as_offer: bool,
    ) -> Result<String, BridgeError> {
        if !matches!(self.negotiation, Negotiation::AwaitingWebrtcAnswer { .. }) {
            return Err(BridgeError::WrongState(
                "apply_webrtc_answer needs an offerer awaiting the answer",
            ));
        }
        let Negotiation::AwaitingWebrtcAnswer { sip_offer } =
            std::mem::replace(&mut self.negotiation, Negotiation::Closed)
        else {
            return Err(BridgeError::WrongState(
                "apply_webrtc_answer needs an offerer awaiting the answer",
            ));
        };
        let webrtc_answer = SessionDescription::parse(webrtc_answer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Webrtc))?;
        let Some(engine) = self.webrtc.as_mut() else {
            return Err(BridgeError::WrongState("offerer without WebRTC leg"));
        };
        engine.apply_remote_answer(now, webrtc_answer_sdp)?;
        let browser_codecs = engine.negotiated_codecs();
        let local = self.sip_local_media(&sip_offer);
        let sip_answer =
            webrtc_answer_to_sip_answer(&webrtc_answer, &sip_offer, &local, &mut self.origin)
                .map_err(sdp_error(MediaLeg::Webrtc))?;
        // What the SIP side now has agreed to, seen from our side of the answer.
        let negotiated =
            sip_offer_to_negotiated(&sip_offer, &local.codecs).map_err(sdp_error(MediaLeg::Sip))?;
        // The SDES keys both sides settled on (ours from the answer, the peer's from its
        // offer), per m-line.
        let keys = sip_offer_answered(&sip_offer, &sip_answer).map_err(sdp_error(MediaLeg::Sip))?;
        let mut sip_answer = sip_answer;
        if as_offer {
            // An offer lists every key we hold (tags as in the capabilities offer); the one the
            // answer-writer chose stays first, so the keying above is unchanged until the ACK.
            for (m, line) in sip_answer.media.iter_mut().zip(&local.lines) {
                if !m.has_attribute("crypto") {
                    continue;
                }
                let chosen = m.cryptos().into_iter().next();
                m.attributes.retain(|a| a.name != "crypto");
                let mut ordered: Vec<&CryptoAttribute> = chosen.iter().collect();
                ordered.extend(line.cryptos.iter().filter(|c| {
                    chosen
                        .as_ref()
                        .is_none_or(|k| !(k.tag == c.tag && k.suite == c.suite))
                }));
                // Crypto lines go before the direction attribute, as the writer puts them.
                let at = m
                    .attributes
                    .iter()
                    .position(|a| {
                        matches!(
                            a.name.as_str(),
                            "sendrecv" | "sendonly" | "recvonly" | "inactive"
                        )
                    })
                    .unwrap_or(m.attributes.len());
                for (k, crypto) in ordered.into_iter().enumerate() {
                    m.attributes.insert(
                        at + k,
                        crate::sdp::Attribute::new("crypto", crypto.to_value()),
                    );
                }
            }
        }
        let mut pairs = Vec::new();
        for (i, n) in negotiated.media.iter().enumerate() {
            let Some(kind) = MediaKind::from_sdp(&n.kind) else {
                continue;
            };
            let answered = sip_answer.media.get(i);
            if n.rejected || answered.is_none_or(|m| m.port == 0) {
                continue;
            }
            // The codecs of our SIP answer (browser's choice, SIP numbers) drive the maps.
            let mut agreed = n.clone();
            if let Some(m) = answered {
                agreed.codecs = m.codecs();
            }
            let kind_pairs = self.pair_with_sip(kind, &browser_codecs, &agreed);
            if !has_media_codec(&kind_pairs, kind) {
                continue;
            }
            let srtp = match keys.media.get(i) {
                Some(k) => sdes_context(k)?,
                None => None,
            };
            self.install_sip_stream(now, kind, n, &kind_pairs, srtp);
            pairs.extend(kind_pairs);
        }
        if pairs.is_empty() {
            return Err(BridgeError::NoCommonCodec);
        }
        let ssrcs = [MediaKind::Audio, MediaKind::Video]
            .map(|k| self.webrtc.as_ref().and_then(|e| e.local_ssrc(k)));
        self.install_webrtc_streams(&pairs, |kind| ssrcs[kind_index(kind)]);
        self.to_sip = payload_maps(&pairs).0;
        self.negotiation = Negotiation::Active;
        self.drain_webrtc(now);
        Ok(sip_answer.to_sdp_string())
    }

    /// The RTP leg of one agreed SIP m-line, with its payload-type maps and, for an
    /// `RTP/SAVP` line, its SDES-SRTP context ([`sdes_context`]).
    fn install_sip_stream(
        &mut self,
        now: Instant,
        kind: MediaKind,
        n: &NegotiatedMedia,
        pairs: &[(CodecSpec, CodecSpec)],
        srtp: Option<SdesSrtp>,
    ) {
        let Some(remote_rtp) = n.remote_rtp else {
            return;
        };
        let rtcp_mux = n.rtcp_mux;
        let Some(local_rtp) = self.sip_local(kind) else {
            return;
        };
        let ssrc = (splitmix64(&mut self.rng) as u32).max(1);
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
        for (_, sip) in &kind_pairs {
            leg.set_clock_rate(sip.payload_type, sip.clock_rate);
        }
        let (to_sip, to_webrtc) = payload_maps(&kind_pairs);
        leg.set_send_payload_map(to_sip);
        leg.set_receive_payload_map(to_webrtc);
        self.sip[kind_index(kind)] = Some(SipStream {
            leg,
            local_rtp,
            local_rtcp,
            ssrc,
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
            let clock_rate = primary_clock(pairs, kind);
            self.webrtc_streams[kind_index(kind)] = Some(WebrtcStream {
                out: SsrcRewriter::new(ssrc_of(kind).unwrap_or(0)),
                guard: SequenceGuard::default(),
                clock_rate,
                recv: None,
                lost_earlier: 0,
                packets_received: 0,
                bytes_received: 0,
                packets_sent: 0,
                bytes_sent: 0,
            });
        }
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
                    // Media may start now: the WebRTC inactivity watch runs from here (the
                    // SIP leg's runs from the SIP answer, inside the RTP leg).
                    self.webrtc_watch.armed_at = Some(now);
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
                    forward_to_sip(
                        rtp,
                        payload,
                        &self.to_sip,
                        &mut self.sip,
                        &mut self.webrtc_streams,
                        &mut self.transmit,
                        &mut self.webrtc_watch,
                        &mut self.dropped,
                    );
                }
                WebrtcMedia::KeyframeRequest { kind, full_intra } => {
                    // RFC 5104 sec. 3.5.1: a key frame request goes to the media source; on
                    // the SIP leg as PLI (or FIR) from our SSRC about the peer's.
                    if let Some(stream) = self.sip[kind_index(kind)].as_mut() {
                        stream.leg.request_keyframe(full_intra);
                    }
                }
            }
        }
        self.drain_sip_legs(now);
    }

    /// Move the RTP legs' RTCP and events into the bridge's queues.
    fn drain_sip_legs(&mut self, now: Instant) {
        for index in 0..self.sip.len() {
            let Some(stream) = self.sip[index].as_mut() else {
                continue;
            };
            loop {
                let leg = &mut stream.leg;
                let mut written = None;
                self.transmit.push_with(TransmitLeg::Rtcp, |buf| {
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
                    RtpLegEvent::KeyframeRequested if index == kind_index(MediaKind::Video) => {
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
    /// dropped and counted in [`BridgeStats::dropped`]; the error says why, the call goes on.
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
        let Some(index) = self.sip_index_by_rtp(local) else {
            self.dropped += 1;
            return Ok(());
        };
        let ingress = self.sip_ingress(now, index, from, bytes);
        let result = match ingress {
            Ok(Some((rtp, range))) => {
                let payload = bytes.get(range).unwrap_or_default();
                match (self.webrtc.as_mut(), self.webrtc_streams[index].as_mut()) {
                    (Some(engine), Some(wstream)) => match engine.send_rtp(now, rtp, payload) {
                        Ok(()) => {
                            wstream.packets_sent += 1;
                            wstream.bytes_sent += payload.len() as u64;
                        }
                        Err(e) => {
                            // Before DTLS is up rtc refuses to send; not the call's fault.
                            self.dropped += 1;
                            log::trace!("RTP toward the browser dropped: {e}");
                        }
                    },
                    _ => self.dropped += 1,
                }
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        self.drain_sip_legs(now);
        result
    }

    fn sip_index_by_rtp(&self, local: SocketAddr) -> Option<usize> {
        self.sip
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.local_rtp == local))
    }

    /// SIP -> browser, the bridge's own part: the RTP leg validates, accounts, latches and
    /// maps the PT in place; the bridge makes seq/timestamp continuous toward the browser.
    /// Returns what the WebRTC leg must send and where the payload lies. Allocation-free.
    #[allow(clippy::type_complexity)]
    fn sip_ingress(
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
        let index = self.sip_index_by_rtp(local)?;
        self.sip_ingress(now, index, from, bytes).ok().flatten()
    }

    /// Measurement hook, not for the reactor: forward one RTP packet as if the WebRTC leg had
    /// just decrypted it (the browser -> SIP steps the bridge owns); the result waits in
    /// [`Bridge::poll_transmit`].
    #[doc(hidden)]
    pub fn probe_forward_to_sip(&mut self, rtp: ReceivedRtp, payload: &[u8]) {
        forward_to_sip(
            rtp,
            payload,
            &self.to_sip,
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
        bytes: &mut [u8],
    ) -> Result<(), BridgeError> {
        if matches!(self.negotiation, Negotiation::Closed) {
            return Ok(());
        }
        let Some(index) = self
            .sip
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.local_rtcp == local))
        else {
            self.dropped += 1;
            return Ok(());
        };
        let result = match self.sip[index].as_mut() {
            Some(stream) => stream
                .leg
                .handle_rtcp(now, from, bytes)
                .map_err(BridgeError::SipPacket),
            None => Ok(()),
        };
        self.drain_sip_legs(now);
        result
    }

    /// Advance timers: the WebRTC leg's, the RTP legs' (RTCP reports, inactivity), the WebRTC
    /// inactivity watch. Call when [`Bridge::poll_timeout`] is due; early calls are harmless.
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
        for stream in self.sip.iter_mut().flatten() {
            if stream.leg.poll_timeout().is_some_and(|t| t <= now) {
                stream.leg.handle_timeout(now);
            }
        }
        self.drain_webrtc(now);
        let timeout = self.config.inactivity_timeout;
        if self
            .webrtc_watch
            .deadline(timeout)
            .is_some_and(|d| d <= now)
        {
            self.webrtc_watch.reported = true;
            push_bounded(
                &mut self.events,
                BridgeEvent::RtpInactive {
                    leg: MediaLeg::Webrtc,
                },
            );
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

    /// When [`Bridge::handle_timeout`] must be called next; `None` = no timer (closed).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if matches!(self.negotiation, Negotiation::Closed) {
            return None;
        }
        let timeout = self.config.inactivity_timeout;
        let engine = self.webrtc.as_mut().and_then(|e| e.poll_timeout());
        let legs = self
            .sip
            .iter()
            .flatten()
            .filter_map(|s| s.leg.poll_timeout());
        engine
            .into_iter()
            .chain(legs)
            .chain(self.webrtc_watch.deadline(timeout))
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
            let leg = s.leg.stats();
            out.sip.packets_received += leg.packets_received;
            out.sip.bytes_received += leg.bytes_received;
            out.sip.packets_sent += leg.packets_sent;
            out.sip.bytes_sent += leg.bytes_sent;
            out.sip.packets_lost += leg.packets_lost;
            out.dropped += leg.packets_dropped;
            if i == 0 {
                out.sip.jitter = Duration::from_micros(leg.jitter_us);
            }
        }
        for (i, s) in self.webrtc_streams.iter().enumerate() {
            let Some(s) = s else { continue };
            out.webrtc.packets_received += s.packets_received;
            out.webrtc.bytes_received += s.bytes_received;
            out.webrtc.packets_sent += s.packets_sent;
            out.webrtc.bytes_sent += s.bytes_sent;
            out.webrtc.packets_lost += s.lost();
            if i == 0 {
                out.webrtc.jitter = s.jitter();
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
        self.sip[kind_index(kind)].as_ref().map(|s| s.ssrc)
    }

    /// Close the call: RTCP BYE on the SIP leg (RFC 3550 sec. 6.6), DTLS close_notify toward
    /// the browser; drain [`Bridge::poll_transmit`] once more, then one
    /// [`BridgeEvent::Closed`]. Everything after is ignored.
    pub fn close(&mut self, now: Instant) {
        if !matches!(self.negotiation, Negotiation::Closed) {
            for stream in self.sip.iter_mut().flatten() {
                let leg = &mut stream.leg;
                self.transmit.push_with(TransmitLeg::Rtcp, |buf| {
                    let t = leg.write_bye(now, buf).ok().flatten()?;
                    Some((t.len, t.source, t.destination))
                });
            }
        }
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

/// `rtc`'s SDP for the browser with explicit per-m-line directions taken from the SIP side
/// and `a=end-of-candidates` ([`crate::sdp::finalize_browser_sdp`]); sylkrtc.js relies on
/// both. Falls back to `rtc`'s text if our parser disagrees with it.
fn finalize_for_browser(sdp: &str, negotiated: &NegotiatedSession) -> String {
    match SessionDescription::parse(sdp.as_bytes()) {
        Ok(mut model) => {
            let directions: Vec<Direction> = negotiated.media.iter().map(|n| n.direction).collect();
            finalize_browser_sdp(&mut model, &directions);
            model.to_sdp_string()
        }
        Err(e) => {
            log::warn!("could not re-parse rtc's SDP ({e}); sending it unchanged");
            sdp.to_owned()
        }
    }
}

fn push_bounded(events: &mut VecDeque<BridgeEvent>, event: BridgeEvent) {
    if events.len() < MAX_QUEUED_EVENTS {
        events.push_back(event);
    }
}

/// Browser -> SIP: account the packet, then the RTP leg maps the PT, rewrites
/// SSRC/seq/timestamp and writes a plain RTP packet straight into a pre-allocated transmit
/// slot. Allocation-free (the counting-allocator test holds this to zero).
#[allow(clippy::too_many_arguments)]
fn forward_to_sip(
    rtp: ReceivedRtp,
    payload: &[u8],
    to_sip: &PayloadTypeMap,
    sip: &mut [Option<SipStream>; 2],
    webrtc_streams: &mut [Option<WebrtcStream>; 2],
    transmit: &mut TransmitQueue,
    watch: &mut InactivityWatch,
    dropped: &mut u64,
) {
    let index = kind_index(rtp.kind);
    if let Some(w) = webrtc_streams[index].as_mut() {
        w.on_packet(&rtp);
    }
    watch.on_packet(rtp.arrival);
    let (Some(_), Some(stream)) = (to_sip.map(rtp.payload_type), sip[index].as_mut()) else {
        *dropped += 1;
        return;
    };
    let leg = &mut stream.leg;
    let pushed = transmit.push_with(TransmitLeg::Rtp, |buf| {
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
        *dropped += 1;
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

    #[test]
    fn h264_pairs_only_with_the_same_packetization_mode() {
        let h264 = |pt, mode: &str| CodecSpec {
            kind: MediaKind::Video,
            name: "H264".into(),
            clock_rate: 90000,
            channels: 0,
            fmtp: format!("profile-level-id=42e01f;packetization-mode={mode}"),
            payload_type: pt,
        };
        let pairs = pair_codecs(&[h264(102, "1"), h264(127, "0")], &[h264(99, "0")]);
        assert_eq!(pairs.len(), 1);
        assert_eq!(
            (pairs[0].0.payload_type, pairs[0].1.payload_type),
            (127, 99)
        );
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
        let (to_sip, to_webrtc) = payload_maps(&pairs);
        assert_eq!(to_sip.map(126), Some(101));
        assert_eq!(to_webrtc.map(101), Some(126));
        assert_eq!(to_sip.map(111), None, "opus was not accepted by SIP");
        assert_eq!(to_sip.map(200), None);
    }
}
