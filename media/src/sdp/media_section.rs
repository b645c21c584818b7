//! One media section (`m=` line and what follows it, RFC 8866 section 5.14) and what the
//! gateway reads from its attributes.

use super::model::{
    Attribute, Codec, Connection, ExtMap, MediaDirection, MediaType, RtcpAttribute,
};
use crate::sdp::CryptoAttribute;

/// One media section: its `m=` line and what follows up to the next `m=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// Media type.
    pub kind: MediaType,
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
    pub fn new(kind: MediaType, port: u16, protocol: &str, formats: Vec<String>) -> Self {
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
    pub fn direction_attribute(&self) -> Option<MediaDirection> {
        self.attributes.iter().rev().find_map(|a| {
            a.value
                .is_none()
                .then(|| MediaDirection::from_attribute(&a.name))
                .flatten()
        })
    }

    /// Replaces any direction attribute with `direction`, keeping its position when present.
    pub fn set_direction(&mut self, direction: MediaDirection) {
        let mut placed = false;
        self.attributes.retain_mut(|a| {
            if a.value.is_none() && MediaDirection::from_attribute(&a.name).is_some() {
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
                    Some((id, dir)) => (id, Some(MediaDirection::from_attribute(dir)?)),
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
