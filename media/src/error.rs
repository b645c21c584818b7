//! Error types of the WebRTC leg and of the bridge: one `#[non_exhaustive]` enum per layer.
//!
//! Errors caused by peer input (bad SDP, bad candidates, no common codec) are reported here
//! so the gateway can answer with a protocol error (sylkRTC `error`, SIP 488) instead of
//! tearing the process down.

use std::fmt;

/// Errors of the WebRTC leg (the `rtc` peer connection wrapper).
#[derive(Debug)]
#[non_exhaustive]
pub enum WebrtcError {
    /// A remote ICE candidate arrived before any remote description was applied
    /// (RFC 8838 sec. 4.3: candidates belong to a known session).
    NoRemoteDescription,
    /// The WebRTC peer's SDP could not be parsed or was refused by the engine.
    InvalidSdp(rtc::shared::error::Error),
    /// A remote candidate line could not be parsed or used.
    InvalidCandidate(rtc::shared::error::Error),
    /// The offer and the configured codecs have nothing in common.
    NoCommonCodec,
    /// The call was made in a state where it makes no sense (e.g. an answer applied twice).
    WrongState(&'static str),
    /// The engine (`rtc`) refused an operation; `op` names what was being done.
    Engine {
        /// What the leg was doing when the engine failed.
        op: &'static str,
        /// The engine's own error.
        source: rtc::shared::error::Error,
    },
    /// SRTP refused a packet (authentication, replay, malformed header).
    Srtp(crate::srtp::SrtpError),
}

impl fmt::Display for WebrtcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRemoteDescription => f.write_str("remote candidate before remote description"),
            Self::InvalidSdp(why) => write!(f, "invalid WebRTC SDP: {why}"),
            Self::InvalidCandidate(why) => write!(f, "invalid remote ICE candidate: {why}"),
            Self::NoCommonCodec => f.write_str("no codec in common with the WebRTC peer"),
            Self::WrongState(why) => write!(f, "WebRTC leg in wrong state: {why}"),
            Self::Engine { op, source } => write!(f, "WebRTC engine failed to {op}: {source}"),
            Self::Srtp(why) => write!(f, "SRTP toward the browser: {why}"),
        }
    }
}

impl std::error::Error for WebrtcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Engine { source, .. }
            | Self::InvalidSdp(source)
            | Self::InvalidCandidate(source) => Some(source),
            _ => None,
        }
    }
}

/// Errors of the bridge (one call: WebRTC leg + RTP leg + forwarding).
#[derive(Debug)]
#[non_exhaustive]
pub enum BridgeError {
    /// The WebRTC leg failed.
    Webrtc(WebrtcError),
    /// One side's SDP could not be parsed or translated (see [`crate::sdp::SdpError`]).
    Sdp {
        /// Whose SDP it was.
        leg: crate::bridge::MediaLeg,
        /// What was wrong with it.
        error: crate::sdp::SdpError,
    },
    /// No codec both legs can do: the gateway answers SIP 488 / sylkRTC error
    /// (no transcoding, by design).
    NoCommonCodec,
    /// A datagram on the SIP leg was unusable (malformed RTP/RTCP, SRTP failure); it was
    /// dropped and counted, the call goes on.
    SipPacket(crate::rtp_leg::RtpLegError),
    /// The API was called out of order (e.g. `apply_sip_answer` on an offerer bridge).
    WrongState(&'static str),
    /// The bridge was closed.
    Closed,
    /// The OS random source failed, so no fresh SDES key (RFC 4568 section 6.1) could be made
    /// for an `RTP/SAVP` offer or answer.
    KeyGeneration,
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Webrtc(e) => write!(f, "WebRTC leg: {e}"),
            Self::Sdp { leg, error } => write!(f, "{leg:?} SDP: {error}"),
            Self::NoCommonCodec => f.write_str("no common codec between WebRTC and SIP"),
            Self::SipPacket(e) => write!(f, "SIP leg datagram dropped: {e}"),
            Self::WrongState(why) => write!(f, "bridge in wrong state: {why}"),
            Self::Closed => f.write_str("bridge closed"),
            Self::KeyGeneration => f.write_str("no random source for a fresh SDES key"),
        }
    }
}

impl std::error::Error for BridgeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Webrtc(e) => Some(e),
            Self::SipPacket(e) => Some(e),
            Self::Sdp { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<WebrtcError> for BridgeError {
    fn from(e: WebrtcError) -> Self {
        match e {
            WebrtcError::NoCommonCodec => Self::NoCommonCodec,
            other => Self::Webrtc(other),
        }
    }
}
