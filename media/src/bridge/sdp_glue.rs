//! The little SDP the bridge itself needs: which codecs the browser offered, where the SIP
//! peer wants media (c=, m=, a=rtcp, RFC 4566/8866, RFC 3605) and a plain RTP/AVP SDP for
//! the SIP side (RFC 3264 offer/answer rules: the answer keeps the offer's m-line order and
//! rejects unused lines with port 0, sec. 6).
//!
//! Parsing uses `rtc::sdp` (the same parser the WebRTC engine uses on the browser's SDP).

use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use rtc::sdp::description::media::MediaDescription;
use rtc::sdp::description::session::SessionDescription;

use crate::error::BridgeError;
use crate::webrtc_leg::{CodecSpec, MediaKind, SUPPORTED_CODECS};

/// One m-line of the SIP side's SDP, as the bridge sees it.
#[derive(Debug, Clone)]
pub(crate) struct SipMediaLine {
    /// `audio`, `video`, `application`...
    pub(crate) media: String,
    pub(crate) proto: String,
    pub(crate) formats: Vec<String>,
    /// `Some` for an audio/video RTP line we can use.
    pub(crate) kind: Option<MediaKind>,
    pub(crate) rtp: Option<SocketAddr>,
    pub(crate) rtcp: Option<SocketAddr>,
    pub(crate) rtcp_mux: bool,
    /// Codecs we support, in the peer's order, with the peer's PTs.
    pub(crate) codecs: Vec<CodecSpec>,
}

fn parse(sdp: &str) -> Result<SessionDescription, String> {
    SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes())).map_err(|e| e.to_string())
}

fn kind_of(media: &str) -> Option<MediaKind> {
    match media {
        "audio" => Some(MediaKind::Audio),
        "video" => Some(MediaKind::Video),
        _ => None,
    }
}

/// RFC 3551 sec. 6 static payload types we can bridge (G.722's RTP clock is 8000 by
/// historical error, sec. 4.5.2).
fn static_codec(pt: u8) -> Option<(&'static str, u32)> {
    match pt {
        0 => Some(("PCMU", 8000)),
        8 => Some(("PCMA", 8000)),
        9 => Some(("G722", 8000)),
        _ => None,
    }
}

fn attribute_values<'a>(
    md: &'a MediaDescription,
    key: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    md.attributes
        .iter()
        .filter(move |a| a.key == key)
        .filter_map(|a| a.value.as_deref())
}

/// Codecs of one m-line that the bridge supports and `allowed` permits.
fn media_codecs(md: &MediaDescription, kind: MediaKind, allowed: &[String]) -> Vec<CodecSpec> {
    let mut out = Vec::new();
    for format in &md.media_name.formats {
        let Ok(pt) = format.parse::<u8>() else {
            continue;
        };
        if pt > 127 {
            continue;
        }
        let rtpmap = attribute_values(md, "rtpmap").find_map(|v| {
            let (p, rest) = v.split_once(' ')?;
            (p.trim().parse::<u8>().ok()? == pt).then_some(rest.trim())
        });
        let (name, clock_rate, channels) = match rtpmap {
            Some(map) => {
                let mut parts = map.split('/');
                let name = parts.next().unwrap_or_default().to_owned();
                let Some(Ok(clock)) = parts.next().map(str::parse::<u32>) else {
                    continue;
                };
                let channels = parts.next().and_then(|c| c.parse::<u16>().ok());
                (name, clock, channels)
            }
            None => match static_codec(pt) {
                Some((name, clock)) => (name.to_owned(), clock, None),
                None => continue,
            },
        };
        let supported = SUPPORTED_CODECS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&name))
            && allowed.iter().any(|s| s.eq_ignore_ascii_case(&name));
        if !supported {
            continue;
        }
        let fmtp = attribute_values(md, "fmtp")
            .find_map(|v| {
                let (p, rest) = v.split_once(' ')?;
                (p.trim().parse::<u8>().ok()? == pt).then(|| rest.trim().to_owned())
            })
            .unwrap_or_default();
        let channels = match kind {
            MediaKind::Video => 0,
            MediaKind::Audio => channels.unwrap_or(1),
        };
        out.push(CodecSpec {
            kind,
            name,
            clock_rate,
            channels,
            fmtp,
            payload_type: pt,
        });
    }
    out
}

/// Codecs of the browser's first audio and first video m-line, restricted to `allowed`.
pub(crate) fn webrtc_offer_codecs(
    sdp: &str,
    allowed: &[String],
) -> Result<Vec<CodecSpec>, BridgeError> {
    let desc =
        parse(sdp).map_err(|e| BridgeError::Webrtc(crate::error::WebrtcError::InvalidSdp(e)))?;
    let mut out = Vec::new();
    for kind in [MediaKind::Audio, MediaKind::Video] {
        let line = desc.media_descriptions.iter().find(|md| {
            kind_of(&md.media_name.media) == Some(kind) && md.media_name.port.value != 0
        });
        if let Some(md) = line {
            out.extend(media_codecs(md, kind, allowed));
        }
    }
    Ok(out)
}

fn connection_ip(
    conn: Option<&rtc::sdp::description::common::ConnectionInformation>,
) -> Option<IpAddr> {
    conn?
        .address
        .as_ref()?
        .address
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// Every m-line of a SIP SDP, with addresses for the usable audio/video ones.
pub(crate) fn parse_sip(sdp: &str, allowed: &[String]) -> Result<Vec<SipMediaLine>, BridgeError> {
    let desc = parse(sdp).map_err(BridgeError::InvalidSipSdp)?;
    let session_ip = connection_ip(desc.connection_information.as_ref());
    let mut lines = Vec::new();
    for md in &desc.media_descriptions {
        let media = md.media_name.media.clone();
        let proto = md.media_name.protos.join("/");
        let port = u16::try_from(md.media_name.port.value).unwrap_or(0);
        let ip = connection_ip(md.connection_information.as_ref()).or(session_ip);
        let kind = kind_of(&media).filter(|_| port != 0 && proto.starts_with("RTP/AVP"));
        let rtcp_mux = md.attributes.iter().any(|a| a.key == "rtcp-mux");
        let (rtp, rtcp, codecs) = match (kind, ip) {
            (Some(k), Some(ip)) => {
                let rtp = SocketAddr::new(ip, port);
                // RFC 3605 a=rtcp:port [IN IP4 addr]; else the next port (RFC 3550 sec. 11).
                let rtcp = attribute_values(md, "rtcp")
                    .next()
                    .and_then(|v| {
                        let mut parts = v.split_whitespace();
                        let p: u16 = parts.next()?.parse().ok()?;
                        let addr = parts.nth(2).and_then(|a| a.parse().ok()).unwrap_or(ip);
                        Some(SocketAddr::new(addr, p))
                    })
                    .unwrap_or_else(|| {
                        if rtcp_mux {
                            rtp
                        } else {
                            SocketAddr::new(ip, port.wrapping_add(1))
                        }
                    });
                (Some(rtp), Some(rtcp), media_codecs(md, k, allowed))
            }
            (Some(_), None) => {
                return Err(BridgeError::InvalidSipSdp(format!(
                    "no connection address for m={media}"
                )));
            }
            _ => (None, None, Vec::new()),
        };
        lines.push(SipMediaLine {
            media,
            proto,
            formats: md.media_name.formats.clone(),
            kind,
            rtp,
            rtcp,
            rtcp_mux,
            codecs,
        });
    }
    Ok(lines)
}

/// One m-line to write into a SIP SDP.
pub(crate) enum SipLineOut<'a> {
    /// A stream we run: local port, codecs with SIP-side PTs, whether to write a=rtcp-mux.
    Active {
        kind: MediaKind,
        port: u16,
        rtcp_port: u16,
        codecs: &'a [CodecSpec],
        rtcp_mux: bool,
    },
    /// A rejected offer line (RFC 3264 sec. 6: port 0, same media and formats).
    Rejected {
        media: &'a str,
        proto: &'a str,
        formats: &'a [String],
    },
}

/// Write a plain RTP/AVP SDP for the SIP peer.
pub(crate) fn write_sip(
    session_id: u64,
    version: u64,
    ip: IpAddr,
    lines: &[SipLineOut<'_>],
) -> String {
    use std::fmt::Write;
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(512);
    let _ = write!(
        s,
        "v=0\r\no=sylk-gateway {session_id} {version} IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n"
    );
    for line in lines {
        match line {
            SipLineOut::Active {
                kind,
                port,
                rtcp_port,
                codecs,
                rtcp_mux,
            } => {
                let media = match kind {
                    MediaKind::Audio => "audio",
                    MediaKind::Video => "video",
                };
                let _ = write!(s, "m={media} {port} RTP/AVP");
                for c in codecs.iter() {
                    let _ = write!(s, " {}", c.payload_type);
                }
                s.push_str("\r\n");
                for c in codecs.iter() {
                    let _ = write!(s, "a=rtpmap:{} {}/{}", c.payload_type, c.name, c.clock_rate);
                    if c.kind == MediaKind::Audio && c.channels > 1 {
                        let _ = write!(s, "/{}", c.channels);
                    }
                    s.push_str("\r\n");
                    if !c.fmtp.is_empty() {
                        let _ = write!(s, "a=fmtp:{} {}\r\n", c.payload_type, c.fmtp);
                    }
                }
                if *kind == MediaKind::Video {
                    for c in codecs.iter().filter(|c| !c.is_telephone_event()) {
                        let _ = write!(
                            s,
                            "a=rtcp-fb:{} ccm fir\r\na=rtcp-fb:{} nack pli\r\n",
                            c.payload_type, c.payload_type
                        );
                    }
                }
                if *rtcp_mux {
                    s.push_str("a=rtcp-mux\r\n");
                } else {
                    let _ = write!(s, "a=rtcp:{rtcp_port}\r\n");
                }
                s.push_str("a=sendrecv\r\n");
            }
            SipLineOut::Rejected {
                media,
                proto,
                formats,
            } => {
                let fmts = if formats.is_empty() {
                    "0".to_owned()
                } else {
                    formats.join(" ")
                };
                let _ = write!(s, "m={media} 0 {proto} {fmts}\r\n");
            }
        }
    }
    s
}
