//! The SDP data model, its bounded parser and its serializer (RFC 8866).

use std::fmt::Write as _;
use std::net::IpAddr;

use super::crypto::CryptoAttribute;
use super::SdpError;

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
}

/// The media type of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaKind {
    /// `audio`
    Audio,
    /// `video`
    Video,
    /// `application` (WebRTC data channels, BFCP, ...)
    Application,
    /// Anything else (`image` for T.38, `text`, `message`), kept as written.
    Other(String),
}

impl MediaKind {
    fn parse(s: &str) -> Self {
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
pub enum Direction {
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

impl Direction {
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
    fn static_payload(pt: u8) -> Option<(&'static str, u32, u8)> {
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

/// One media section: its `m=` line and what follows up to the next `m=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// Media type.
    pub kind: MediaKind,
    /// Transport port; 0 rejects or disables the stream (RFC 3264 section 5.1/6).
    pub port: u16,
    /// `<number of ports>` after a `/`, rarely used.
    pub port_count: Option<u16>,
    /// Transport protocol (`RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, ...).
    pub protocol: String,
    /// Format list: payload type numbers for RTP, other tokens otherwise.
    pub formats: Vec<String>,
    /// Media-level `c=` line.
    pub connection: Option<Connection>,
    /// Media-level `b=` lines, as written after `b=`.
    pub bandwidths: Vec<String>,
    /// `a=` lines in order.
    pub attributes: Vec<Attribute>,
}

impl MediaSection {
    /// A media section with no attributes.
    pub fn new(kind: MediaKind, port: u16, protocol: &str, formats: Vec<String>) -> Self {
        Self {
            kind,
            port,
            port_count: None,
            protocol: protocol.to_owned(),
            formats,
            connection: None,
            bandwidths: Vec::new(),
            attributes: Vec::new(),
        }
    }

    /// The value of the first attribute called `name` (`Some("")` for a property attribute).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.as_deref().unwrap_or(""))
    }

    /// Values of every attribute called `name`.
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes
            .iter()
            .filter(move |a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.as_deref().unwrap_or(""))
    }

    /// Whether a property attribute such as `rtcp-mux` is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }

    /// The media-level direction attribute, if any.
    pub fn direction_attribute(&self) -> Option<Direction> {
        self.attributes.iter().rev().find_map(|a| {
            a.value
                .is_none()
                .then(|| Direction::from_attribute(&a.name))
                .flatten()
        })
    }

    /// Replaces any direction attribute with `direction`, keeping its position when present.
    pub fn set_direction(&mut self, direction: Direction) {
        let mut placed = false;
        self.attributes.retain_mut(|a| {
            if a.value.is_none() && Direction::from_attribute(&a.name).is_some() {
                if placed {
                    return false;
                }
                *a = Attribute::flag(direction.as_str());
                placed = true;
            }
            true
        });
        if !placed {
            self.attributes.push(Attribute::flag(direction.as_str()));
        }
    }

    /// Whether the port is 0. A `bundle-only` section with port 0 is still active
    /// (RFC 8843 section 6), so see [`MediaSection::is_active`] for the real question.
    pub fn is_port_zero(&self) -> bool {
        self.port == 0
    }

    /// Whether the stream is in use: a non-zero port, or port 0 with `a=bundle-only`.
    pub fn is_active(&self) -> bool {
        self.port != 0 || self.has_attribute("bundle-only")
    }

    /// `a=mid` (RFC 5888).
    pub fn mid(&self) -> Option<&str> {
        self.attribute("mid")
    }

    /// Whether the transport protocol is RTP of any profile.
    pub fn is_rtp(&self) -> bool {
        self.protocol.to_ascii_uppercase().contains("RTP/")
    }

    /// Whether the profile is secure RTP with keys from SDP (`RTP/SAVP` or `RTP/SAVPF`, not DTLS).
    pub fn is_sdes_srtp(&self) -> bool {
        let p = self.protocol.to_ascii_uppercase();
        (p == "RTP/SAVP" || p == "RTP/SAVPF") && !p.contains("TLS")
    }

    /// The codecs of this section in `m=` line order. Formats that are not numbers, are out of
    /// range, or are dynamic without an rtpmap are skipped.
    pub fn codecs(&self) -> Vec<Codec> {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter_map(|pt| self.codec(pt))
            .collect()
    }

    /// The codec for one payload type.
    pub fn codec(&self, pt: u8) -> Option<Codec> {
        if pt > 127 {
            return None;
        }
        let rtpmap = self.attributes_named("rtpmap").find_map(|v| {
            let (num, rest) = v.split_once(' ')?;
            (num.trim().parse::<u8>().ok()? == pt).then_some(rest.trim())
        });
        let (name, clock_rate, channels) = match rtpmap {
            Some(map) => {
                let mut parts = map.split('/');
                let name = parts.next()?.to_owned();
                let clock_rate = parts.next()?.trim().parse().ok()?;
                let channels = match parts.next() {
                    Some(c) => c.trim().parse().ok()?,
                    None => 1,
                };
                (name, clock_rate, channels)
            }
            None => {
                let (n, r, c) = Codec::static_payload(pt)?;
                (n.to_owned(), r, c)
            }
        };
        let fmtp = self.attributes_named("fmtp").find_map(|v| {
            let (num, rest) = v.split_once(' ')?;
            (num.trim().parse::<u8>().ok()? == pt).then(|| rest.trim().to_owned())
        });
        Some(Codec {
            payload_type: pt,
            name,
            clock_rate,
            channels,
            fmtp,
        })
    }

    /// `a=rtcp` (RFC 3605).
    pub fn rtcp(&self) -> Option<RtcpAttribute> {
        let v = self.attribute("rtcp")?;
        let mut parts = v.split_ascii_whitespace();
        let port = parts.next()?.parse().ok()?;
        let address = match (parts.next(), parts.next(), parts.next()) {
            (Some("IN"), Some(_), Some(addr)) => addr.parse().ok(),
            _ => None,
        };
        Some(RtcpAttribute { port, address })
    }

    /// Every well-formed `a=crypto` (RFC 4568); malformed or unsupported ones are skipped,
    /// since an offer may list suites we do not know next to ones we do.
    pub fn cryptos(&self) -> Vec<CryptoAttribute> {
        self.attributes_named("crypto")
            .filter_map(|v| CryptoAttribute::parse(v).ok())
            .collect()
    }

    /// `a=ptime` in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.attribute("ptime")?.trim().parse().ok()
    }

    /// `a=rtcp-fb` values that apply to `pt` (RFC 4585 section 4.2), including `*` ones,
    /// without the payload type: `nack`, `nack pli`, `ccm fir`, `transport-cc`...
    pub fn rtcp_feedback(&self, pt: u8) -> impl Iterator<Item = &str> + '_ {
        self.attributes_named("rtcp-fb").filter_map(move |v| {
            let (target, fb) = v.split_once(' ')?;
            (target == "*" || target.parse::<u8>().ok() == Some(pt)).then_some(fb.trim())
        })
    }

    /// `a=candidate` values (RFC 8839 section 5.1), as written after the colon.
    pub fn candidates(&self) -> impl Iterator<Item = &str> + '_ {
        self.attributes_named("candidate")
    }

    /// Whether `a=end-of-candidates` is present (RFC 8840 section 8.2).
    pub fn has_end_of_candidates(&self) -> bool {
        self.has_attribute("end-of-candidates")
    }

    /// `a=setup` (RFC 4145 section 4): `actpass`, `active`, `passive` or `holdconn`.
    pub fn setup(&self) -> Option<&str> {
        self.attribute("setup")
    }

    /// The distinct SSRCs named by `a=ssrc` lines (RFC 5576 section 4.1), in order.
    pub fn ssrcs(&self) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for v in self.attributes_named("ssrc") {
            let id = v
                .split_ascii_whitespace()
                .next()
                .and_then(|id| id.parse().ok());
            if let Some(id) = id.filter(|id| !out.contains(id)) {
                out.push(id);
            }
        }
        out
    }

    /// `a=ssrc-group` lines (RFC 5576 section 4.2) as (semantics, SSRCs), e.g. `FID` pairs
    /// a media SSRC with its RTX SSRC.
    pub fn ssrc_groups(&self) -> Vec<(&str, Vec<u32>)> {
        self.attributes_named("ssrc-group")
            .filter_map(|v| {
                let mut parts = v.split_ascii_whitespace();
                let semantics = parts.next()?;
                Some((semantics, parts.filter_map(|s| s.parse().ok()).collect()))
            })
            .collect()
    }

    /// `a=extmap` lines (RFC 8285 section 8).
    pub fn extmaps(&self) -> Vec<ExtMap<'_>> {
        self.attributes_named("extmap")
            .filter_map(|v| {
                let mut parts = v.split_ascii_whitespace();
                let token = parts.next()?;
                let (id, direction) = match token.split_once('/') {
                    Some((id, dir)) => (id, Some(Direction::from_attribute(dir)?)),
                    None => (token, None),
                };
                Some(ExtMap {
                    id: id.parse().ok()?,
                    direction,
                    uri: parts.next()?,
                })
            })
            .collect()
    }

    /// `a=msid:<stream id> [<track id>]` (RFC 8830 section 2).
    pub fn msid(&self) -> Option<(&str, Option<&str>)> {
        let v = self.attribute("msid")?;
        let mut parts = v.split_ascii_whitespace();
        Some((parts.next()?, parts.next()))
    }
}

/// One `a=extmap` line: a header extension and its local identifier (RFC 8285 section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtMap<'a> {
    /// Local identifier (1-14 for one-byte headers, up to 255 for two-byte).
    pub id: u16,
    /// Direction restriction, if any.
    pub direction: Option<Direction>,
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

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`
    pub origin: Origin,
    /// `s=`; `-` when empty (RFC 8866 section 5.3 requires a non-empty value).
    pub session_name: String,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines as written after `b=`.
    pub bandwidths: Vec<String>,
    /// The first `t=` line; `0 0` when missing (some SIP stacks omit it).
    pub timing: String,
    /// Session-level `a=` lines.
    pub attributes: Vec<Attribute>,
    /// Media sections in order.
    pub media: Vec<MediaSection>,
}

impl SessionDescription {
    /// Parses an SDP body. Accepts CRLF or bare LF line ends, skips blank lines and ignores
    /// line types we do not model (`i=`, `u=`, `e=`, `p=`, `r=`, `z=`, `k=`, unknown letters),
    /// as RFC 8866 section 5 asks of parsers. Every size is bounded.
    pub fn parse(input: &[u8]) -> Result<Self, SdpError> {
        if input.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge { len: input.len() });
        }
        let text = std::str::from_utf8(input).map_err(|_| SdpError::NotUtf8)?;
        let mut lines = text
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
            .filter(|(_, l)| !l.trim().is_empty());

        match lines.next() {
            Some((_, l)) if l.trim_end() == "v=0" => {}
            _ => return Err(SdpError::BadVersion),
        }
        let mut session = SessionDescription {
            origin: Origin {
                username: String::new(),
                session_id: 0,
                session_version: 0,
                address: String::new(),
            },
            session_name: "-".to_owned(),
            connection: None,
            bandwidths: Vec::new(),
            timing: String::new(),
            attributes: Vec::new(),
            media: Vec::new(),
        };
        let mut have_origin = false;
        for (n, line) in lines {
            if line.len() > MAX_LINE_LEN {
                return Err(SdpError::LineTooLong { line: n });
            }
            let bytes = line.as_bytes();
            if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_alphabetic() {
                return Err(SdpError::MalformedLine { line: n });
            }
            let value = line[2..].trim();
            let in_media = !session.media.is_empty();
            match bytes[0] {
                b'o' if !in_media => {
                    session.origin = parse_origin(value).ok_or(SdpError::BadOrigin { line: n })?;
                    have_origin = true;
                }
                b's' if !in_media && !value.is_empty() => session.session_name = value.to_owned(),
                b't' if !in_media && session.timing.is_empty() => session.timing = value.to_owned(),
                b'c' => {
                    let c = parse_connection(value).ok_or(SdpError::BadConnection { line: n })?;
                    match session.media.last_mut() {
                        Some(m) => m.connection = Some(c),
                        None => session.connection = Some(c),
                    }
                }
                b'b' => {
                    let list = match session.media.last_mut() {
                        Some(m) => &mut m.bandwidths,
                        None => &mut session.bandwidths,
                    };
                    if list.len() < 8 {
                        list.push(value.to_owned());
                    }
                }
                b'm' => {
                    if session.media.len() >= MAX_MEDIA_SECTIONS {
                        return Err(SdpError::TooManyMediaSections);
                    }
                    session.media.push(parse_media(value, n)?);
                }
                b'a' => {
                    let list = match session.media.last_mut() {
                        Some(m) => &mut m.attributes,
                        None => &mut session.attributes,
                    };
                    if list.len() >= MAX_ATTRIBUTES_PER_LEVEL {
                        return Err(SdpError::TooManyAttributes { line: n });
                    }
                    list.push(match value.split_once(':') {
                        Some((name, v)) => Attribute::new(name.trim(), v.trim()),
                        None => Attribute::flag(value),
                    });
                }
                _ => {}
            }
        }
        if !have_origin {
            return Err(SdpError::MissingOrigin);
        }
        if session.timing.is_empty() {
            session.timing = "0 0".to_owned();
        }
        Ok(session)
    }

    /// Serializes with CRLF line ends in the RFC 8866 section 5 order.
    pub fn to_sdp_string(&self) -> String {
        let mut out = String::with_capacity(512 + 256 * self.media.len());
        let o = &self.origin;
        let ip_kind = |addr: &str| if addr.contains(':') { "IP6" } else { "IP4" };
        // Writing into a String cannot fail; the results are ignored for that reason.
        let _ = write!(
            out,
            "v=0\r\no={} {} {} IN {} {}\r\ns={}\r\n",
            o.username,
            o.session_id,
            o.session_version,
            ip_kind(&o.address),
            o.address,
            self.session_name
        );
        if let Some(c) = &self.connection {
            let _ = write!(out, "c=IN {} {}\r\n", ip_kind(&c.address), c.address);
        }
        for b in &self.bandwidths {
            let _ = write!(out, "b={b}\r\n");
        }
        let _ = write!(out, "t={}\r\n", self.timing);
        write_attributes(&mut out, &self.attributes);
        for m in &self.media {
            let _ = write!(out, "m={} {}", m.kind.as_str(), m.port);
            if let Some(count) = m.port_count {
                let _ = write!(out, "/{count}");
            }
            let _ = write!(out, " {}", m.protocol);
            for f in &m.formats {
                let _ = write!(out, " {f}");
            }
            out.push_str("\r\n");
            if let Some(c) = &m.connection {
                let _ = write!(out, "c=IN {} {}\r\n", ip_kind(&c.address), c.address);
            }
            for b in &m.bandwidths {
                let _ = write!(out, "b={b}\r\n");
            }
            write_attributes(&mut out, &m.attributes);
        }
        out
    }

    /// The session-level attribute `name`, if present.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.as_deref().unwrap_or(""))
    }

    /// The direction that applies to media section `index`: its own attribute, else the
    /// session-level one, else sendrecv (RFC 3264 section 5.1).
    pub fn media_direction(&self, index: usize) -> Direction {
        self.media
            .get(index)
            .and_then(MediaSection::direction_attribute)
            .or_else(|| {
                self.attributes.iter().rev().find_map(|a| {
                    a.value
                        .is_none()
                        .then(|| Direction::from_attribute(&a.name))
                        .flatten()
                })
            })
            .unwrap_or_default()
    }

    /// The media section's attribute `name`, else the session-level one (ICE credentials and
    /// fingerprints may appear at either level, RFC 8839 section 5.4, RFC 8122 section 5).
    fn media_or_session_attribute(&self, index: usize, name: &str) -> Option<&str> {
        self.media
            .get(index)
            .and_then(|m| m.attribute(name))
            .or_else(|| self.attribute(name))
    }

    /// `a=ice-ufrag` and `a=ice-pwd` that apply to media section `index` (RFC 8839 section 5.4).
    pub fn ice_credentials(&self, index: usize) -> Option<(&str, &str)> {
        Some((
            self.media_or_session_attribute(index, "ice-ufrag")?,
            self.media_or_session_attribute(index, "ice-pwd")?,
        ))
    }

    /// Checks that every active audio or video section of a browser's description has ICE
    /// credentials and a DTLS fingerprint (at media or session level, or on another section
    /// of its BUNDLE group, whose transport it shares, RFC 8843 section 7.1.3): without them
    /// the call can never connect, so it is refused before anything is dialled. Other kinds
    /// (data channels) are rejected by the answer anyway.
    pub fn check_webrtc_transport(&self) -> Result<(), SdpError> {
        let bundle = self.bundle_group();
        let in_bundle = |i: usize| {
            self.media
                .get(i)
                .and_then(|m| m.mid())
                .is_some_and(|mid| bundle.contains(&mid))
        };
        let bundled = |i: usize, has: &dyn Fn(usize) -> bool| {
            in_bundle(i) && (0..self.media.len()).any(|j| in_bundle(j) && has(j))
        };
        let has_ice = |i: usize| self.ice_credentials(i).is_some();
        let has_fingerprint = |i: usize| self.fingerprint(i).is_some();
        for (media_index, m) in self.media.iter().enumerate() {
            if !m.is_active() || !matches!(m.kind, MediaKind::Audio | MediaKind::Video) {
                continue;
            }
            if !has_ice(media_index) && !bundled(media_index, &has_ice) {
                return Err(SdpError::MissingIceCredentials { media_index });
            }
            if !has_fingerprint(media_index) && !bundled(media_index, &has_fingerprint) {
                return Err(SdpError::MissingFingerprint { media_index });
            }
        }
        Ok(())
    }

    /// `a=fingerprint` that applies to media section `index`.
    pub fn fingerprint(&self, index: usize) -> Option<Fingerprint<'_>> {
        let (hash_function, value) = self
            .media_or_session_attribute(index, "fingerprint")?
            .split_once(' ')?;
        Some(Fingerprint {
            hash_function,
            value: value.trim(),
        })
    }

    /// The mids of the `a=group:BUNDLE` line (RFC 8843 section 7.1), empty without one.
    pub fn bundle_group(&self) -> Vec<&str> {
        self.attributes
            .iter()
            .filter(|a| a.name.eq_ignore_ascii_case("group"))
            .filter_map(|a| a.value.as_deref())
            .find_map(|v| {
                let mut parts = v.split_ascii_whitespace();
                (parts.next() == Some("BUNDLE")).then(|| parts.collect())
            })
            .unwrap_or_default()
    }

    /// The connection address that applies to media section `index` (media-level `c=` wins).
    pub fn media_connection(&self, index: usize) -> Option<&Connection> {
        self.media
            .get(index)
            .and_then(|m| m.connection.as_ref())
            .or(self.connection.as_ref())
    }
}

fn write_attributes(out: &mut String, attributes: &[Attribute]) {
    for a in attributes {
        let _ = match &a.value {
            Some(v) => write!(out, "a={}:{}\r\n", a.name, v),
            None => write!(out, "a={}\r\n", a.name),
        };
    }
}

fn parse_origin(value: &str) -> Option<Origin> {
    let mut f = value.split_ascii_whitespace();
    let username = f.next()?.to_owned();
    // Session ids are "numeric strings" (RFC 8866 section 5.2); browsers use 64-bit values and
    // a few SIP stacks exceed u64, so an overlong id is folded rather than rejected.
    let session_id = parse_numeric_string(f.next()?)?;
    let session_version = parse_numeric_string(f.next()?)?;
    let (net, _addr_type, address) = (f.next()?, f.next()?, f.next()?);
    if net != "IN" || f.next().is_some() {
        return None;
    }
    Some(Origin {
        username,
        session_id,
        session_version,
        address: address.to_owned(),
    })
}

fn parse_numeric_string(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |acc, b| {
        acc.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
    }))
}

fn parse_connection(value: &str) -> Option<Connection> {
    let mut f = value.split_ascii_whitespace();
    let (net, addr_type, address) = (f.next()?, f.next()?, f.next()?);
    if net != "IN" || !(addr_type == "IP4" || addr_type == "IP6") || f.next().is_some() {
        return None;
    }
    // Multicast addresses carry /ttl[/count]; the address itself is what we keep.
    let address = address.split('/').next()?;
    if address.is_empty() {
        return None;
    }
    Some(Connection {
        address: address.to_owned(),
    })
}

fn parse_media(value: &str, line: usize) -> Result<MediaSection, SdpError> {
    let bad = SdpError::BadMedia { line };
    let mut f = value.split_ascii_whitespace();
    let kind = MediaKind::parse(f.next().ok_or(bad.clone())?);
    let port_field = f.next().ok_or(bad.clone())?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, c)) => (p, Some(c.parse::<u16>().map_err(|_| bad.clone())?)),
        None => (port_field, None),
    };
    let port = port.parse::<u16>().map_err(|_| bad.clone())?;
    let protocol = f.next().ok_or(bad.clone())?;
    let mut formats = Vec::new();
    for fmt in f {
        if formats.len() >= MAX_FORMATS_PER_MEDIA {
            return Err(SdpError::TooManyFormats { line });
        }
        formats.push(fmt.to_owned());
    }
    // RFC 8866 section 5.14 requires at least one format; without one there is nothing to
    // negotiate, so the section is unusable.
    if formats.is_empty() {
        return Err(bad);
    }
    let mut m = MediaSection::new(kind, port, protocol, formats);
    m.port_count = port_count;
    Ok(m)
}
