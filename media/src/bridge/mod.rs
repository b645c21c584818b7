//! The bridge: one per call, joining the WebRTC leg (browser) and the plain RTP leg (SIP).
//!
//! Sans-IO (shared/design/architecture.md, "The run loop"): the reactor owns the sockets, the
//! clock and the random source. After every input it drains [`Bridge::poll_output`] until
//! [`Output::Timeout`] (the drain order is documented there) and re-arms its timer from it.
//!
//! # Sockets the reactor binds per call
//! - one UDP socket for the WebRTC leg ([`BridgeConfig::webrtc`]`.local_addr`): ICE, DTLS,
//!   SRTP and SRTCP all share it (BUNDLE + rtcp-mux, RFC 8843 / RFC 5761);
//! - per SIP stream an RTP socket ([`BridgeConfig::sip_audio_local`],
//!   [`BridgeConfig::sip_video_local`]) and an RTCP socket on the next port (RFC 3550
//!   sec. 11), unless the SIP peer agreed to rtcp-mux.
//!
//! Each [`BridgeTransmit`] says which socket and which local address to send from.
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
//! SDP translation is [`crate::sdp`]'s, the SIP side of the media is
//! [`RtpLeg`](crate::rtp_leg::RtpLeg)'s; the bridge adds the WebRTC leg, the payload type
//! maps, sequence/timestamp continuity toward the browser and the event/statistics view the
//! gateway needs. Its parts: `negotiate.rs` (SDP in four directions, SDES retry), `sdes.rs`,
//! `codecs.rs`, `streams.rs`, `forward.rs` (packets), `timers.rs`, `stats.rs`.
//!
//! # Driving it (what the reactor does per call)
//!
//! ```no_run
//! use std::net::UdpSocket;
//! use std::sync::Arc;
//! use std::time::{Instant, SystemTime};
//! use engine::{Output, Rng};
//! use media::bridge::{Bridge, BridgeConfig, BridgeEvent, MediaSocketKind};
//! use media::webrtc_leg::DtlsIdentity;
//!
//! # fn run(
//! #     browser_offer: &str,
//! #     sip_answer: &str,
//! #     wallclock: SystemTime,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! let webrtc = UdpSocket::bind("127.0.0.1:0")?; // one per call: ICE/DTLS/SRTP
//! let rtp = UdpSocket::bind("127.0.0.1:40000")?; // SIP audio RTP ...
//! let rtcp = UdpSocket::bind("127.0.0.1:40001")?; // ... and RTCP on the next port
//! // Once per process: the DTLS certificate and a generator seeded from the OS.
//! let identity = Arc::new(DtlsIdentity::generate()?);
//! let mut rng = Rng::from_seed([7; 32]); // production: 32 bytes from /dev/urandom
//! let config = BridgeConfig::new(
//!     webrtc.local_addr()?,
//!     rtp.local_addr()?,
//!     wallclock, // the reactor reads the clock (RTCP SR timestamps); the bridge never does
//!     rng.fork(),
//!     identity.clone(),
//! );
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
//! let _next_wakeup = loop {
//!     match bridge.poll_output() {
//!         Output::Transmit(t) => {
//!             let socket = match t.socket {
//!                 MediaSocketKind::Webrtc => &webrtc,
//!                 MediaSocketKind::Rtp => &rtp,
//!                 MediaSocketKind::Rtcp if t.from == rtcp.local_addr()? => &rtcp,
//!                 MediaSocketKind::Rtcp => &rtp, // rtcp-mux with the SIP peer
//!             };
//!             let _ = socket.send_to(t.bytes, t.to); // WouldBlock: drop (loss-tolerant)
//!         }
//!         Output::Event(BridgeEvent::DtlsConnected) => { /* sylkRTC `established` */ }
//!         Output::Event(BridgeEvent::IceFailed | BridgeEvent::DtlsFailed) => {
//!             /* `terminated`, BYE, then bridge.close() and drain again */
//!         }
//!         Output::Event(_) => {}
//!         Output::Timeout(at) => break at, // arm the reactor timer
//!     }
//! };
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

mod codecs;
mod forward;
mod negotiate;
mod renegotiate;
mod sdes;
mod session;
mod stats;
mod streams;
mod timers;

pub use renegotiate::SipReoffer;
pub use sdes::SDES_OFFER_SUITES;
pub use stats::{BridgeStats, LegStats};

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use engine::{Output, Rng};

use self::forward::Forwarding;
use crate::error::BridgeError;
use crate::rtp::NtpClock;
use crate::sdp::{LocalOrigin, NegotiatedSession, SessionDescription};
use crate::transmit_queue::SLOT_SIZE;
use crate::webrtc_leg::{DtlsIdentity, WebrtcLeg, WebrtcLegConfig, SUPPORTED_CODECS};
use crate::MediaKind;

/// Default RTP inactivity timeout (issue 4: configurable, default 60 s).
pub const DEFAULT_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(60);

/// Default limit for the DTLS handshake after ICE connected.
pub const DEFAULT_DTLS_TIMEOUT: Duration = Duration::from_secs(10);

/// Default RTCP report interval on the SIP leg (RFC 3550 sec. 6.2: 5 s minimum).
pub const DEFAULT_RTCP_INTERVAL: Duration = Duration::from_secs(5);

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
    /// RFC 4961), the usual NAT traversal for SIP phones. On by default, as in
    /// [`RtpLeg`](crate::rtp_leg::RtpLeg).
    pub latch_sip_source: bool,
    /// The bridge's random source: SSRCs, the SDP session id, ICE credentials and SDES
    /// master keys (RFC 4568 section 6.1) all come from it. Production forks one from a
    /// generator seeded by the OS; tests seed it. A clone repeats the same stream, so every
    /// bridge needs its own ([`Rng::fork`]).
    pub rng: Rng,
    /// Offer `RTP/SAVP` with SDES keys (RFC 4568) instead of plain `RTP/AVP` whenever the
    /// bridge writes the SIP offer ([`Bridge::new_answerer`], [`Bridge::new_late_offer`],
    /// [`Bridge::capabilities_offer`]): one `a=crypto` line per suite of
    /// [`SDES_OFFER_SUITES`], each with a fresh key. Off by default; a SIP peer's own
    /// `RTP/SAVP` offer is answered with SDES either way.
    pub sip_offer_sdes: bool,
}

impl BridgeConfig {
    /// Defaults for everything except the sockets, the wall clock, the random source and
    /// the DTLS identity, which are the application's.
    pub fn new(
        webrtc_local: SocketAddr,
        sip_audio_local: SocketAddr,
        wallclock: SystemTime,
        rng: Rng,
        identity: Arc<DtlsIdentity>,
    ) -> Self {
        Self {
            webrtc: WebrtcLegConfig {
                local_addr: webrtc_local,
                advertised_ip: None,
                ice_lite: false,
                dtls_timeout: DEFAULT_DTLS_TIMEOUT,
                identity,
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
            rng,
            sip_offer_sdes: false,
        }
    }
}

impl BridgeConfig {
    /// The bound SIP-side RTP address for `kind`, if the call has a socket for it.
    fn sip_local(&self, kind: MediaKind) -> Option<SocketAddr> {
        match kind {
            MediaKind::Audio => Some(self.sip_audio_local),
            MediaKind::Video => self.sip_video_local,
        }
    }

    /// The address written into our SIP SDP.
    fn sip_ip(&self) -> IpAddr {
        self.sip_advertised_ip.unwrap_or(self.sip_audio_local.ip())
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

/// What one of a call's sockets is for: where a datagram for the bridge came in, and which
/// socket a [`BridgeTransmit`] goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaSocketKind {
    /// The WebRTC leg's socket (ICE, DTLS, SRTP and SRTCP, all on one port).
    Webrtc,
    /// A SIP-side RTP socket.
    Rtp,
    /// A SIP-side RTCP socket (RTP port + 1; with rtcp-mux the RTP socket, `from` says
    /// which).
    Rtcp,
}

/// A datagram to send, borrowed from the bridge until the next call on it.
#[derive(Debug, PartialEq, Eq)]
pub struct BridgeTransmit<'a> {
    /// Which kind of socket.
    pub socket: MediaSocketKind,
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
    /// The SIP peer pressed a key: an RFC 4733 telephone event ended (its end packets are
    /// reported once; the packets themselves are forwarded to the browser as they are).
    Dtmf {
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digit: char,
        /// How long it lasted.
        duration_ms: u32,
    },
    /// The bridge is closed.
    Closed,
}

/// Where the negotiation stands.
#[derive(Debug)]
enum Negotiation {
    /// Answerer: the browser offered, the SIP answer is awaited.
    AwaitingSipAnswer {
        /// The browser's offer as it came (the WebRTC leg answers it).
        webrtc_offer: Box<SessionDescription>,
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
    AwaitingLateWebrtcAnswer {
        negotiated: NegotiatedSession,
        /// Our SIP offer and the peer's answer, recorded once the browser answers.
        sip: Box<(SessionDescription, SessionDescription)>,
    },
    /// Both sides agreed; media flows.
    Active,
    /// Closed.
    Closed,
}

/// One call's media: WebRTC leg + SIP RTP leg + forwarding between them.
pub struct Bridge {
    config: BridgeConfig,
    negotiation: Negotiation,
    webrtc: Option<Box<WebrtcLeg>>,
    /// Both legs' streams and the transmit ring: the per-packet state, apart from the
    /// WebRTC leg so packets can move while that leg is drained.
    fwd: Forwarding,
    /// Scratch for the datagram handed out by `poll_output`.
    transmit_buf: Box<[u8]>,
    /// Scratch for a decrypted payload on its way to SIP.
    payload_buf: Box<[u8]>,
    events: VecDeque<BridgeEvent>,
    closed_reported: bool,
    clock: NtpClock,
    rng: Rng,
    /// o= line state of our SIP SDP (RFC 3264 sec. 5: version bumps on every new SDP).
    origin: LocalOrigin,
    /// What both legs agreed on last (`session.rs`); `None` before the first agreement.
    agreed: Option<Box<session::Agreed>>,
    /// An offer/answer of a running call under way (`renegotiate.rs`).
    renegotiation: Option<renegotiate::Renegotiation>,
    /// Every codec the browser's last offer listed: what it can do, so a SIP re-offer is
    /// passed on with those codecs only. Empty until the browser offered (its answers list
    /// only what it picked from ours).
    browser_offered: Vec<crate::webrtc_leg::CodecSpec>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("negotiation", &self.negotiation)
            .field("dropped", &self.fwd.dropped)
            .finish_non_exhaustive()
    }
}

impl Bridge {
    fn empty(now: Instant, mut config: BridgeConfig, negotiation: Negotiation) -> Self {
        let mut rng = config.rng.fork();
        // RFC 8866 section 5.2 wants a numeric session id; 62 bits keep it within the
        // signed 64-bit integers some SIP stacks parse it into.
        let session_id = rng.next_u64() >> 2;
        let unix = config
            .wallclock
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self {
            clock: NtpClock::new(now, unix),
            config,
            negotiation,
            webrtc: None,
            fwd: Forwarding::new(),
            transmit_buf: vec![0u8; SLOT_SIZE].into_boxed_slice(),
            payload_buf: vec![0u8; SLOT_SIZE].into_boxed_slice(),
            events: VecDeque::with_capacity(MAX_QUEUED_EVENTS),
            closed_reported: false,
            rng,
            origin: LocalOrigin::new(session_id, 1),
            agreed: None,
            renegotiation: None,
            browser_offered: Vec::new(),
        }
    }

    fn sip_local(&self, kind: MediaKind) -> Option<SocketAddr> {
        self.config.sip_local(kind)
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

    /// What the bridge wants done next: the one output of the bridge (str0m's shape, see
    /// [`engine::Output`]). Call it after every input (`new_*`, `apply_*`, `handle_*`,
    /// [`Bridge::add_remote_candidate`], [`Bridge::close`]) until it yields
    /// [`Output::Timeout`].
    ///
    /// # Drain order
    /// 1. [`Output::Transmit`]: first the SIP legs' datagrams (RTP and RTCP toward SIP,
    ///    produced by the inputs already handled), then the WebRTC leg's (ICE, DTLS, SRTP).
    ///    Each is borrowed from the bridge until the next call on it: send it (or drop it:
    ///    media is loss-tolerant) before polling again. Nothing is allocated.
    /// 2. [`Output::Event`]: state changes for the gateway, in the order they happened.
    /// 3. [`Output::Timeout`]: the instant [`Bridge::handle_timeout`] is due (`None`: closed,
    ///    no timer). The bridge is quiet until then or until the next input; polling again
    ///    yields the same timeout.
    ///
    /// Acting on an event (closing the bridge on [`BridgeEvent::IceFailed`], say) is an
    /// input like any other: drain again afterwards.
    pub fn poll_output(&mut self) -> Output<BridgeTransmit<'_>, BridgeEvent> {
        if let Some((socket, from, to, len)) = self.fwd.transmit.pop_into(&mut self.transmit_buf) {
            return Output::Transmit(BridgeTransmit {
                socket,
                from,
                to,
                bytes: self.transmit_buf.get(..len).unwrap_or_default(),
            });
        }
        if let Some(engine) = self.webrtc.as_mut() {
            if let Some((to, len)) = engine.poll_datagram(&mut self.transmit_buf) {
                return Output::Transmit(BridgeTransmit {
                    socket: MediaSocketKind::Webrtc,
                    from: self.config.webrtc.local_addr,
                    to,
                    bytes: self.transmit_buf.get(..len).unwrap_or_default(),
                });
            }
        }
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        Output::Timeout(self.next_deadline())
    }

    /// The SRTP protection profile DTLS negotiated with the browser (empty before DTLS).
    pub fn srtp_profile(&self) -> String {
        self.webrtc
            .as_ref()
            .map(|e| e.transport_info().srtp_profile)
            .unwrap_or_default()
    }

    /// Our SSRC on the SIP leg for `kind` (what the SIP peer sees).
    pub fn sip_ssrc(&self, kind: MediaKind) -> Option<u32> {
        self.fwd.sip[kind.index()].as_ref().map(|s| s.ssrc)
    }

    /// Close the call: RTCP BYE on the SIP leg (RFC 3550 sec. 6.6), DTLS close_notify toward
    /// the browser; drain [`Bridge::poll_output`] once more: the last datagrams, then one
    /// [`BridgeEvent::Closed`]. Everything after is ignored.
    pub fn close(&mut self, now: Instant) {
        if !matches!(self.negotiation, Negotiation::Closed) {
            for stream in self.fwd.sip.iter_mut().flatten() {
                let leg = &mut stream.leg;
                self.fwd.transmit.push_with(MediaSocketKind::Rtcp, |buf| {
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

fn push_bounded(events: &mut VecDeque<BridgeEvent>, event: BridgeEvent) {
    if events.len() < MAX_QUEUED_EVENTS {
        events.push_back(event);
    }
}
