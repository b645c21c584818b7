//! The SDP data model (RFC 8866): the description, its media sections and the values of
//! the lines the gateway reads. Parsing and writing are `parse.rs`'s; the offer/answer
//! questions (RFC 3264) `offer_answer.rs`'s.

use std::net::IpAddr;

/// Largest SDP we accept. Real offers with audio+video and many candidates stay under 12 KiB;
/// 64 KiB matches a full UDP datagram and bounds what one INVITE or WebSocket message can cost.
pub const MAX_SDP_LEN: usize = 64 * 1024;

/// Longest single line. Long `a=fingerprint`, `a=candidate` and `a=fmtp` lines are < 300 bytes.
pub const MAX_LINE_LEN: usize = 4096;

/// Most `m=` lines in one description (Chrome with a few transceivers uses 2-6).
pub const MAX_MEDIA_SECTIONS: usize = 32;

/// Most `a=` lines at session level or in one media section (Chrome video: ~60).
pub const MAX_ATTRIBUTES_PER_LEVEL: usize = 512;

/// Most payload formats on one `m=` line (the dynamic range alone has 32 numbers, RFC 3551).
pub const MAX_FORMATS_PER_MEDIA: usize = 128;

/// The `o=` line (RFC 8866 section 5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `<username>`, `-` when there is none.
    pub username: String,
    /// `<sess-id>`: stays the same for the life of the session.
    pub session_id: u64,
    /// `<sess-version>`: increases whenever the description changes (RFC 3264 section 8).
    pub session_version: u64,
    /// `<unicast-address>` as written (IP address or host name).
    pub address: String,
}

/// A `c=` line (RFC 8866 section 5.7); only the `IN` network type exists in practice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The address without any `/ttl` suffix, as written.
    pub address: String,
}

impl Connection {
    /// Connection data for one IP address.
    pub fn from_ip(ip: IpAddr) -> Self {
        Self {
            address: ip.to_string(),
        }
    }

    /// The address as an IP address, `None` when it is a host name.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }
}

/// One `a=` line: `a=<name>` or `a=<name>:<value>` (RFC 8866 section 5.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute name, as written.
    pub name: String,
    /// Everything after the first `:`, if there was one.
    pub value: Option<String>,
}

impl Attribute {
    /// A property attribute (`a=<name>`).
    pub fn flag(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: None,
        }
    }

    /// A value attribute (`a=<name>:<value>`).
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }

    /// `a=rtpmap:<pt> <encoding name>/<clock rate>[/<channels>]` (RFC 8866 section 6.6):
    /// the channel count only above 1, its default. The one place an rtpmap is written.
    pub fn rtpmap(payload_type: u8, name: &str, clock_rate: u32, channels: u8) -> Self {
        let value = if channels > 1 {
            format!("{payload_type} {name}/{clock_rate}/{channels}")
        } else {
            format!("{payload_type} {name}/{clock_rate}")
        };
        Self::new("rtpmap", value)
    }

    /// `a=fmtp:<pt> <format parameters>` (RFC 8866 section 6.15).
    pub fn fmtp(payload_type: u8, parameters: &str) -> Self {
        Self::new("fmtp", format!("{payload_type} {parameters}"))
    }
}

/// The media type of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaType {
    /// `audio`
    Audio,
    /// `video`
    Video,
    /// `application` (WebRTC data channels, BFCP, ...)
    Application,
    /// Anything else (`image` for T.38, `text`, `message`), kept as written.
    Other(String),
}

impl MediaType {
    pub(super) fn parse(s: &str) -> Self {
        match s {
            "audio" => Self::Audio,
            "video" => Self::Video,
            "application" => Self::Application,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The token as it appears on the `m=` line.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Application => "application",
            Self::Other(s) => s,
        }
    }

    /// Whether the bridge forwards this kind of media (audio and video RTP).
    pub fn is_rtp_media(&self) -> bool {
        matches!(self, Self::Audio | Self::Video)
    }
}

/// Media direction attribute (RFC 3264 section 5.1, RFC 8866 section 6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaDirection {
    /// `a=sendrecv`, the default when none is given.
    #[default]
    SendRecv,
    /// `a=sendonly`
    SendOnly,
    /// `a=recvonly`
    RecvOnly,
    /// `a=inactive`
    Inactive,
}

impl MediaDirection {
    /// Parses an attribute name into a direction.
    pub fn from_attribute(name: &str) -> Option<Self> {
        match name {
            "sendrecv" => Some(Self::SendRecv),
            "sendonly" => Some(Self::SendOnly),
            "recvonly" => Some(Self::RecvOnly),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }

    fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Self::SendRecv,
            (true, false) => Self::SendOnly,
            (false, true) => Self::RecvOnly,
            (false, false) => Self::Inactive,
        }
    }

    /// The same stream seen from the other end: sendonly <-> recvonly.
    pub fn reversed(self) -> Self {
        Self::from_flags(self.receives(), self.sends())
    }

    /// The direction an answerer puts in its answer to an offer with direction `self`, given
    /// what the answerer itself would like (`wanted`), per RFC 3264 section 6.1: an offered
    /// sendonly stream is answered recvonly (or inactive), recvonly with sendonly (or
    /// inactive), inactive with inactive, and sendrecv with whatever the answerer wants.
    pub fn answer_to(self, wanted: Self) -> Self {
        let allowed = self.reversed();
        Self::from_flags(
            allowed.sends() && wanted.sends(),
            allowed.receives() && wanted.receives(),
        )
    }
}

/// `a=rtcp:<port> [IN IP4 <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttribute {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address when it differs from the `c=` address.
    pub address: Option<IpAddr>,
}

/// One payload format of an `m=` line with its `a=rtpmap` and `a=fmtp` (RFC 8866 section 6.6
/// and 6.15); static payload types without an rtpmap get their RFC 3551 table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// RTP payload type (0..=127).
    pub payload_type: u8,
    /// Encoding name as written (`opus`, `PCMU`, `telephone-event`, ...).
    pub name: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels (1 when not given, RFC 8866 section 6.6).
    pub channels: u8,
    /// The `a=fmtp` parameters, if any.
    pub fmtp: Option<String>,
}

impl Codec {
    /// This format's `a=rtpmap` and, when it has parameters, `a=fmtp`, appended to `out`.
    pub fn push_format_attributes(&self, out: &mut Vec<Attribute>) {
        out.push(Attribute::rtpmap(
            self.payload_type,
            &self.name,
            self.clock_rate,
            self.channels,
        ));
        if let Some(fmtp) = &self.fmtp {
            out.push(Attribute::fmtp(self.payload_type, fmtp));
        }
    }

    /// Whether this is the RFC 4733 telephone-event format.
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }

    /// Whether this is a helper format that carries no media of its own: telephone-event,
    /// comfort noise (RFC 3389), and the WebRTC repair formats (rtx RFC 4588, red RFC 2198,
    /// ulpfec RFC 5109, flexfec RFC 8627).
    pub fn is_auxiliary(&self) -> bool {
        self.is_telephone_event() || self.is_cn() || self.is_repair()
    }

    /// Comfort noise (RFC 3389).
    pub fn is_cn(&self) -> bool {
        self.name.eq_ignore_ascii_case("CN")
    }

    /// A WebRTC loss-repair format that needs RTCP feedback or SSRC signalling the SIP leg does
    /// not have: rtx (RFC 4588), red (RFC 2198), ulpfec (RFC 5109), flexfec (RFC 8627).
    pub fn is_repair(&self) -> bool {
        ["rtx", "red", "ulpfec", "flexfec-03", "flexfec"]
            .iter()
            .any(|n| self.name.eq_ignore_ascii_case(n))
    }

    /// Whether two codec descriptions name the same encoding: name (case-insensitive), clock
    /// rate and channels, plus `packetization-mode` for H.264 (RFC 6184 section 8.2.2 makes
    /// different modes different formats).
    pub fn same_encoding(&self, other: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.clock_rate == other.clock_rate
            && self.channels == other.channels
            && (!self.name.eq_ignore_ascii_case("H264")
                || self.fmtp_param("packetization-mode").unwrap_or("0")
                    == other.fmtp_param("packetization-mode").unwrap_or("0"))
    }

    /// The value of one `key=value` parameter of the fmtp line.
    pub fn fmtp_param(&self, key: &str) -> Option<&str> {
        self.fmtp.as_deref()?.split(';').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            k.trim().eq_ignore_ascii_case(key).then_some(v.trim())
        })
    }

    /// RFC 3551 section 6 entries for static payload types seen without an `a=rtpmap`.
    pub(super) fn static_payload(pt: u8) -> Option<(&'static str, u32, u8)> {
        Some(match pt {
            0 => ("PCMU", 8000, 1),
            3 => ("GSM", 8000, 1),
            4 => ("G723", 8000, 1),
            8 => ("PCMA", 8000, 1),
            9 => ("G722", 8000, 1),
            13 => ("CN", 8000, 1),
            18 => ("G729", 8000, 1),
            26 => ("JPEG", 90000, 1),
            31 => ("H261", 90000, 1),
            34 => ("H263", 90000, 1),
            _ => return None,
        })
    }
}

/// One `a=extmap` line: a header extension and its local identifier (RFC 8285 section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtMap<'a> {
    /// Local identifier (1-14 for one-byte headers, up to 255 for two-byte).
    pub id: u16,
    /// MediaDirection restriction, if any.
    pub direction: Option<MediaDirection>,
    /// The extension URI.
    pub uri: &'a str,
}

/// `a=fingerprint` (RFC 8122 section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint<'a> {
    /// Hash function name, e.g. `sha-256`.
    pub hash_function: &'a str,
    /// Colon-separated upper-case hex bytes.
    pub value: &'a str,
}
