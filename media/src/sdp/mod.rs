//! SDP model and translation between the WebRTC leg and the plain RTP (SIP) leg.
//!
//! SDP is parsed once into [`SessionDescription`] and asked questions through it: codecs,
//! transport attributes, and the offer/answer questions the gateway and the SIP layer need
//! (has video, is a hold, the offered direction, our answer to a re-offer with its direction
//! mirrored: [`SessionDescription::mirror_direction`]).
//!
//! The parser is our own: small, forgiving about what peers really send (missing `t=`,
//! blank lines, bare `\n`, unknown line types, unknown attributes), but bounded in every
//! dimension so hostile input cannot make it allocate without limit (RFC 8866 section 5
//! lets parsers ignore what they do not understand; sizes are our own choice).
//!
//! [`translate`] turns one side's description into the other side's:
//! WebRTC offer -> SIP offer, SIP answer/offer -> [`NegotiatedSession`] (what the WebRTC leg
//! must apply), WebRTC answer -> SIP answer, and the final touch-up of an `rtc`-produced SDP
//! before it goes to sylkrtc.js.

mod crypto;
mod media_section;
mod message;
mod model;
mod offer_answer;
mod parse;
mod session;
pub mod translate;

pub use crypto::{CryptoAttribute, CryptoSuite};
pub use media_section::MediaSection;
pub use message::{MsrpLine, Setup};
pub use model::{
    Attribute, Codec, Connection, ExtMap, Fingerprint, MediaDirection, MediaType, Origin,
    RtcpAttribute, MAX_ATTRIBUTES_PER_LEVEL, MAX_FORMATS_PER_MEDIA, MAX_LINE_LEN,
    MAX_MEDIA_SECTIONS, MAX_SDP_LEN,
};
pub use session::SessionDescription;
pub use translate::{
    finalize_browser_sdp, intersect_codecs, sip_answer_to_negotiated, sip_offer_answered,
    sip_offer_to_negotiated, webrtc_answer_to_sip_answer, webrtc_offer_to_sip_offer, LocalOrigin,
    NegotiatedMedia, NegotiatedSession, SipLocalMedia, SipLocalMediaLine,
};

/// Everything that can go wrong parsing, validating or translating SDP.
///
/// Line numbers are 1-based positions in the input. No variant carries peer bytes, so an
/// error can be logged without copying attacker-controlled text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdpError {
    /// The whole description is longer than [`MAX_SDP_LEN`].
    TooLarge {
        /// Length of the input in bytes.
        len: usize,
    },
    /// The input is not UTF-8 (RFC 8866 section 5 requires UTF-8 or a declared charset).
    NotUtf8,
    /// A line is longer than [`MAX_LINE_LEN`].
    LineTooLong {
        /// 1-based line number.
        line: usize,
    },
    /// More than [`MAX_MEDIA_SECTIONS`] `m=` lines.
    TooManyMediaSections,
    /// More than [`MAX_ATTRIBUTES_PER_LEVEL`] `a=` lines at session level or in one media section.
    TooManyAttributes {
        /// 1-based line number of the attribute that went over the limit.
        line: usize,
    },
    /// More than [`MAX_FORMATS_PER_MEDIA`] formats on one `m=` line.
    TooManyFormats {
        /// 1-based line number.
        line: usize,
    },
    /// A line that is not `<letter>=<value>`.
    MalformedLine {
        /// 1-based line number.
        line: usize,
    },
    /// The first line is not `v=0` (RFC 8866 section 5.1).
    BadVersion,
    /// The `o=` line is missing.
    MissingOrigin,
    /// The `o=` line does not have six fields or its numbers do not parse (RFC 8866 section 5.2).
    BadOrigin {
        /// 1-based line number.
        line: usize,
    },
    /// A `c=` line is not `IN IP4|IP6 <address>` (RFC 8866 section 5.7).
    BadConnection {
        /// 1-based line number.
        line: usize,
    },
    /// An `m=` line does not have `<media> <port> <proto> <fmt>...` (RFC 8866 section 5.14).
    BadMedia {
        /// 1-based line number.
        line: usize,
    },
    /// An `a=crypto` attribute that is not a valid RFC 4568 section 9.1 line, or names a suite
    /// or key length we do not support.
    BadCrypto,
    /// A description without a usable connection address for an active media section
    /// (neither at session nor at media level, RFC 8866 section 5.7).
    MissingConnection {
        /// 0-based index of the media section.
        media_index: usize,
    },
    /// An answer has a different number of `m=` lines than the offer (RFC 3264 section 6).
    MediaCountMismatch {
        /// `m=` lines in the offer.
        offered: usize,
        /// `m=` lines in the answer.
        answered: usize,
    },
    /// An answer changed the media type of an `m=` line (RFC 3264 section 6).
    MediaTypeMismatch {
        /// 0-based index of the media section.
        media_index: usize,
    },
    /// The local description given for translation does not cover every `m=` line.
    LocalMediaMissing {
        /// 0-based index of the media section without a local port.
        media_index: usize,
    },
    /// No codec in common on an active `m=` line: the gateway answers 488
    /// (RFC 3261 section 21.4.26) or rejects the offer. Telephone-event and comfort noise
    /// alone do not count as a codec.
    NoCommonCodec {
        /// 0-based index of the media section.
        media_index: usize,
    },
    /// The SIP peer asked for SRTP (`RTP/SAVP`) without any `a=crypto` we can use, or
    /// answered our `RTP/SAVP` offer with a crypto line whose tag and suite we did not offer
    /// (RFC 4568 section 7.1.2).
    NoUsableCrypto {
        /// 0-based index of the media section.
        media_index: usize,
    },
    /// We offered `RTP/SAVP` with SDES keys and the answer dropped to plain `RTP/AVP`
    /// (RFC 3264 section 6.1 keeps the offered transport; RFC 4568 section 7.1.2).
    SrtpRefused {
        /// 0-based index of the media section.
        media_index: usize,
    },
    /// We offered plain `RTP/AVP` and the answer switched to `RTP/SAVP`, whose keys we never
    /// offered (RFC 3264 section 6.1).
    UnexpectedSrtp {
        /// 0-based index of the media section.
        media_index: usize,
    },
    /// A browser's active `m=` line without `a=ice-ufrag` and `a=ice-pwd` at either level:
    /// ICE cannot run (RFC 8839 section 5.4), so the call could never connect.
    MissingIceCredentials {
        /// 0-based index of the media section.
        media_index: usize,
    },
    /// A browser's active `m=` line without `a=fingerprint`: DTLS-SRTP cannot authenticate
    /// the peer (RFC 8122 section 5, RFC 5763 section 5).
    MissingFingerprint {
        /// 0-based index of the media section.
        media_index: usize,
    },
}

impl std::fmt::Display for SdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge { len } => write!(f, "SDP of {len} bytes exceeds {MAX_SDP_LEN}"),
            Self::NotUtf8 => f.write_str("SDP is not UTF-8"),
            Self::LineTooLong { line } => write!(f, "SDP line {line} is too long"),
            Self::TooManyMediaSections => f.write_str("too many m= lines"),
            Self::TooManyAttributes { line } => write!(f, "too many a= lines at line {line}"),
            Self::TooManyFormats { line } => write!(f, "too many formats on line {line}"),
            Self::MalformedLine { line } => write!(f, "malformed SDP line {line}"),
            Self::BadVersion => f.write_str("SDP does not start with v=0"),
            Self::MissingOrigin => f.write_str("SDP has no o= line"),
            Self::BadOrigin { line } => write!(f, "bad o= line {line}"),
            Self::BadConnection { line } => write!(f, "bad c= line {line}"),
            Self::BadMedia { line } => write!(f, "bad m= line {line}"),
            Self::BadCrypto => f.write_str("bad or unsupported a=crypto"),
            Self::MissingConnection { media_index } => {
                write!(f, "no connection address for m= line {media_index}")
            }
            Self::MediaCountMismatch { offered, answered } => {
                write!(f, "answer has {answered} m= lines, offer had {offered}")
            }
            Self::MediaTypeMismatch { media_index } => {
                write!(f, "answer changed the media type of m= line {media_index}")
            }
            Self::LocalMediaMissing { media_index } => {
                write!(f, "no local port for m= line {media_index}")
            }
            Self::NoCommonCodec { media_index } => {
                write!(f, "no common codec on m= line {media_index}")
            }
            Self::NoUsableCrypto { media_index } => {
                write!(f, "no usable a=crypto on m= line {media_index}")
            }
            Self::SrtpRefused { media_index } => write!(
                f,
                "SRTP refused: RTP/SAVP offered, plain RTP/AVP answered on m= line {media_index}"
            ),
            Self::UnexpectedSrtp { media_index } => write!(
                f,
                "RTP/SAVP answered to a plain RTP/AVP offer on m= line {media_index}"
            ),
            Self::MissingIceCredentials { media_index } => write!(
                f,
                "no ICE credentials (a=ice-ufrag, a=ice-pwd) for m= line {media_index}"
            ),
            Self::MissingFingerprint { media_index } => {
                write!(
                    f,
                    "no DTLS fingerprint (a=fingerprint) for m= line {media_index}"
                )
            }
        }
    }
}

impl std::error::Error for SdpError {}
