//! Packet-level RTP and RTCP: zero-copy views, in-place rewrites, demultiplexing, RTCP report
//! generation, RFC 4733 events and SDES-keyed SRTP for the SIP leg.
//!
//! Nothing here allocates per packet (SDES-SRTP included: [`srtp`] works in place on
//! [`crate::srtp`]), and nothing panics on malformed input: every view validates lengths
//! once when it is built.

mod continuity;
mod dtmf;
mod header;
pub mod rtcp;
pub mod srtp;
mod stats;

pub use continuity::{PayloadTypeMap, SsrcRewriter};
pub use dtmf::TelephoneEvent;
pub use header::{remove_header_extension, write_rtp_packet, RtpPacket, RTP_FIXED_HEADER_LEN};
pub use stats::{ntp_middle_32, NtpClock, ReceptionStats, SendStats};

/// Errors of the packet layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtpError {
    /// Shorter than its headers or declared lengths.
    TooShort,
    /// The version field is not 2 (RFC 3550 section 5.1).
    BadVersion,
    /// The padding count is 0 or larger than the payload (RFC 3550 section 5.1).
    BadPadding,
    /// The caller's output buffer cannot hold the packet.
    BufferTooSmall,
    /// More than 31 report blocks for one SR/RR.
    TooManyReportBlocks,
    /// The SRTP key is not valid for its suite, or the crypto provider lacks the suite.
    SrtpKey,
    /// SRTP/SRTCP authentication or replay check failed (RFC 3711 section 3.3).
    SrtpUnprotect,
    /// SRTP/SRTCP protection failed (e.g. RFC 3711 section 9.2 key exhaustion).
    SrtpProtect,
}

impl std::fmt::Display for RtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TooShort => "packet too short",
            Self::BadVersion => "not RTP version 2",
            Self::BadPadding => "bad padding",
            Self::BufferTooSmall => "output buffer too small",
            Self::TooManyReportBlocks => "too many report blocks",
            Self::SrtpKey => "unusable SRTP key",
            Self::SrtpUnprotect => "SRTP authentication failed",
            Self::SrtpProtect => "SRTP protection failed",
        })
    }
}

impl std::error::Error for RtpError {}

/// What a datagram on a media port is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramKind {
    /// STUN (first byte 0..=3, RFC 7983 section 7).
    Stun,
    /// ZRTP (16..=19).
    Zrtp,
    /// DTLS (20..=63).
    Dtls,
    /// TURN channel data (64..=79).
    TurnChannel,
    /// RTP (128..=191, second byte not an RTCP packet type).
    Rtp,
    /// RTCP (128..=191 with packet type 192..=223, RFC 5761 section 4).
    Rtcp,
    /// Anything else: drop.
    Unknown,
}

/// Classifies a datagram by the first-byte ranges of RFC 7983 section 7 and, for RTP/RTCP
/// on a muxed port, by the second byte (RFC 5761 section 4: RTCP packet types 192..=223
/// fall on RTP payload types 64..=95, which RTP must not use when muxing).
pub fn classify_datagram(datagram: &[u8]) -> DatagramKind {
    match datagram {
        [0..=3, ..] => DatagramKind::Stun,
        [16..=19, ..] => DatagramKind::Zrtp,
        [20..=63, ..] => DatagramKind::Dtls,
        [64..=79, ..] => DatagramKind::TurnChannel,
        [128..=191, 192..=223, ..] => DatagramKind::Rtcp,
        [128..=191, _, ..] => DatagramKind::Rtp,
        _ => DatagramKind::Unknown,
    }
}
