//! The WebRTC leg: ICE (RFC 8445), DTLS-SRTP (RFC 5763/5764) and SRTP (RFC 3711) toward the
//! browser.
//!
//! The crate-internal `WebrtcLeg` runs it for the bridge on webrtc-rs `rtc` 0.21.1 (pinned):
//! `rtc`'s sans-IO ICE agent and DTLS endpoint driven directly, SRTP keyed from the DTLS
//! exporter and done in place by [`crate::srtp`], our own SDP and RTCP. No heap allocation
//! per packet. Its parts: `direct/ice.rs`, `direct/dtls.rs`, `direct/srtp.rs` (media),
//! `direct/rtcp.rs`, `direct/description.rs` (SDP), `direct/identity.rs`.
//!
//! `rtc`'s whole `RTCPeerConnection` ran this leg too until issue 10 retired it: it cost
//! 17,097 instructions per forwarded packet against 4,499 here (call_load under callgrind)
//! and allocated several times per packet.

mod direct;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sdp::Codec;
use crate::MediaKind;

pub use direct::{host_candidate, DtlsIdentity, LegLine};
pub(crate) use direct::{OfferLine, WebrtcLeg};

/// One codec as negotiated on one leg: the same codec may carry different payload types on
/// the WebRTC and the SIP leg, which is why the bridge remaps PTs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecSpec {
    /// Audio or video.
    pub kind: MediaKind,
    /// The encoding name as written in `a=rtpmap` (`opus`, `PCMU`, `telephone-event`, `VP8`...).
    pub name: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels (0 for video; `opus` is always 2 in SDP, RFC 7587 sec. 7).
    pub channels: u16,
    /// The `a=fmtp` parameters, empty if none.
    pub fmtp: String,
    /// The payload type on the leg this spec describes.
    pub payload_type: u8,
}

impl CodecSpec {
    /// The WebRTC leg's description of an SDP codec of `kind` (video has no channels).
    pub fn from_sdp(kind: MediaKind, c: &Codec) -> Self {
        Self {
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

    /// The SDP codec this describes (for writing its `a=rtpmap`/`a=fmtp` lines).
    pub fn to_sdp(&self) -> Codec {
        Codec {
            payload_type: self.payload_type,
            name: self.name.clone(),
            clock_rate: self.clock_rate,
            channels: u8::try_from(self.channels).unwrap_or(u8::MAX),
            fmtp: (!self.fmtp.is_empty()).then(|| self.fmtp.clone()),
        }
    }

    /// True when `self` and `other` are the same codec (name, clock rate, channels and, for
    /// H.264, packetization mode), which is what RFC 3264 sec. 6.1 requires for a PT mapping;
    /// other fmtp parameters are not compared because SIP peers often omit what browsers write.
    pub fn same_codec(&self, other: &CodecSpec) -> bool {
        self.kind == other.kind
            && self.name.eq_ignore_ascii_case(&other.name)
            && self.clock_rate == other.clock_rate
            && normalized_channels(self) == normalized_channels(other)
            // RFC 6184 sec. 8.2.2: H.264 packetization modes are different formats.
            && (!self.name.eq_ignore_ascii_case("H264")
                || self.fmtp_param("packetization-mode").unwrap_or("0")
                    == other.fmtp_param("packetization-mode").unwrap_or("0"))
    }

    /// One `key=value` parameter of the fmtp line.
    pub fn fmtp_param(&self, key: &str) -> Option<&str> {
        self.fmtp.split(';').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            k.trim().eq_ignore_ascii_case(key).then_some(v.trim())
        })
    }

    /// True for RFC 4733 telephone-event.
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }
}

fn normalized_channels(c: &CodecSpec) -> u16 {
    match (c.kind, c.channels) {
        (MediaKind::Audio, 0) => 1,
        (MediaKind::Video, _) => 0,
        (_, n) => n,
    }
}

/// The codecs this gateway can bridge without transcoding.
pub const SUPPORTED_CODECS: &[&str] = &[
    "opus",
    "G722",
    "PCMU",
    "PCMA",
    "telephone-event",
    "VP8",
    "H264",
];

/// Where and how the WebRTC leg is reachable.
#[derive(Debug, Clone)]
pub struct WebrtcLegConfig {
    /// The bound address of the UDP socket the reactor opened for this leg.
    pub local_addr: SocketAddr,
    /// The address written into the host candidate instead of `local_addr`'s IP when the
    /// gateway sits behind a 1:1 NAT or binds a wildcard address.
    pub advertised_ip: Option<IpAddr>,
    /// Answer as an ICE-lite agent (RFC 8445 sec. 2.5): only for a gateway on a public IP.
    pub ice_lite: bool,
    /// How long DTLS may take once ICE has connected before the leg reports
    /// [`WebrtcLegEvent::DtlsFailed`] (RFC 6347 sec. 4.2.4.1 retransmits from 1 s up, so a
    /// few retries fit; `rtc` itself never reports a failed handshake).
    pub dtls_timeout: Duration,
    /// The certificate DTLS presents, made once by the application and shared by every call.
    pub identity: Arc<DtlsIdentity>,
}

/// State changes of the WebRTC leg, each reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebrtcLegEvent {
    /// ICE found a working candidate pair (RFC 8445 sec. 8).
    IceConnected,
    /// ICE gave up: no pair works or consent expired (RFC 7675).
    IceFailed,
    /// The DTLS handshake finished and SRTP keys are installed (RFC 5764 sec. 4.2).
    DtlsConnected,
    /// DTLS failed after ICE had connected.
    DtlsFailed,
    /// The peer connection is closed.
    Closed,
}

/// Header fields of an RTP packet the WebRTC leg decrypted; the payload went into the
/// caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedRtp {
    /// Which stream it belongs to.
    pub kind: MediaKind,
    /// RTP marker bit.
    pub marker: bool,
    /// Payload type as the browser sent it.
    pub payload_type: u8,
    /// Sequence number as the browser sent it.
    pub sequence_number: u16,
    /// RTP timestamp as the browser sent it.
    pub timestamp: u32,
    /// The browser's SSRC.
    pub ssrc: u32,
    /// Bytes of payload written into the caller's buffer.
    pub payload_len: usize,
    /// When the datagram carrying it arrived.
    pub arrival: Instant,
}

/// Media-plane input surfaced by the WebRTC leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebrtcMedia {
    /// A decrypted RTP packet.
    Rtp(ReceivedRtp),
    /// The browser asked for a key frame: PLI (RFC 4585 sec. 6.3.1) or FIR (RFC 5104 sec. 4.3.1).
    KeyframeRequest {
        /// The stream it is about (always video in practice).
        kind: MediaKind,
        /// True for FIR, false for PLI.
        full_intra: bool,
    },
}

/// An RTP packet the bridge wants sent to the browser; the engine stamps its own SSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingRtp {
    /// Which stream.
    pub kind: MediaKind,
    /// RTP marker bit.
    pub marker: bool,
    /// Payload type as negotiated on the WebRTC leg.
    pub payload_type: u8,
    /// Sequence number (already made continuous by the bridge).
    pub sequence_number: u16,
    /// RTP timestamp (already made continuous by the bridge).
    pub timestamp: u32,
}

/// Per-leg DTLS/SRTP facts for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebrtcTransportInfo {
    /// The SRTP protection profile DTLS negotiated, e.g. `SRTP_AEAD_AES_128_GCM`.
    pub srtp_profile: String,
}
