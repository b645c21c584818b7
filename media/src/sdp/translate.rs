//! Offer/answer translation between the WebRTC leg and the SIP leg (RFC 3264).
//!
//! The gateway is a transparent back-to-back user agent for media: it keeps the m-line order
//! and count of the offer it relays (so RFC 3264 section 6 index matching holds on both sides),
//! forwards payloads untouched, and relays directions unchanged (a browser that puts the call
//! on hold with `sendonly` makes the SIP offer `sendonly`). Only when the gateway itself
//! answers does it mirror a direction ([`MediaDirection::answer_to`]).

use std::net::{IpAddr, SocketAddr};

use super::crypto::CryptoAttribute;
use super::model::{Attribute, Codec, Connection, MediaDirection, MediaType, Origin};
use super::SdpError;
use super::{MediaSection, SessionDescription};

/// The `s=` we write: RFC 8866 section 5.3 wants a non-empty name; this one identifies us.
const SESSION_NAME: &str = "sylk-gateway";

/// Our `o=` line state for one call leg: same session id for the whole dialog, version
/// incremented for every new description we send (RFC 3264 section 8).
#[derive(Debug, Clone)]
pub struct LocalOrigin {
    /// `<username>` in `o=`.
    pub username: String,
    /// `<sess-id>`, chosen once per session (RFC 8866 recommends an NTP-format timestamp or
    /// random value; the caller decides so this code stays deterministic).
    pub session_id: u64,
    next_version: u64,
}

impl LocalOrigin {
    /// Origin state whose first description carries `initial_version`.
    pub fn new(session_id: u64, initial_version: u64) -> Self {
        Self {
            username: "-".to_owned(),
            session_id,
            next_version: initial_version,
        }
    }

    /// The `o=` line for the next description we send; each call increments the version, so
    /// re-offers and answers to re-offers are recognised as changed.
    pub fn next_origin(&mut self, address: IpAddr) -> Origin {
        let origin = Origin {
            username: self.username.clone(),
            session_id: self.session_id,
            session_version: self.next_version,
            address: address.to_string(),
        };
        self.next_version = self.next_version.wrapping_add(1);
        origin
    }
}

/// What the RTP leg has for one m-line on the SIP side.
#[derive(Debug, Clone, Default)]
pub struct SipLocalMediaLine {
    /// Our RTP port for this m-line; RTCP is on `rtp_port + 1` unless muxed (RFC 3550
    /// section 11). Ignored for m-lines that end up rejected.
    pub rtp_port: u16,
    /// SDES keys we offer (or may answer with), one per suite. Non-empty means the SIP offer
    /// uses `RTP/SAVP` with these `a=crypto` lines (RFC 4568); empty means plain `RTP/AVP`.
    /// When answering, the key whose suite matches the peer's chosen crypto is used, with the
    /// peer's tag.
    pub cryptos: Vec<CryptoAttribute>,
}

/// The SIP-side local media description the translation functions write.
#[derive(Debug, Clone)]
pub struct SipLocalMedia {
    /// Address we advertise in `c=` and `o=` (the `--media-address` for NAT).
    pub address: IpAddr,
    /// Whether to offer RTP/RTCP multiplexing on one port (RFC 5761). Many SIP peers do not
    /// support it, so offering is a choice of configuration. When the SIP peer offers it, the
    /// answer always accepts: the RTP leg demultiplexes either way (RFC 5761 section 4), and
    /// the [`NegotiatedMedia`] built from that offer then matches what was answered.
    pub rtcp_mux: bool,
    /// One entry per m-line of the description being translated, in order.
    pub lines: Vec<SipLocalMediaLine>,
    /// Codecs the bridge may forward (no transcoding, so both legs must agree on one of
    /// these). [`SipLocalMedia::default_codecs`] gives Opus, G.711, G.722, VP8, H.264,
    /// telephone-event and CN.
    pub codecs: Vec<Codec>,
}

impl SipLocalMedia {
    /// The codecs the bridge forwards untouched by default (issue 4, item 3), with the
    /// payload types browsers commonly use; payload numbers do not matter for matching.
    pub fn default_codecs() -> Vec<Codec> {
        let c = |pt: u8, name: &str, clock_rate: u32, channels: u8, fmtp: Option<&str>| Codec {
            payload_type: pt,
            name: name.to_owned(),
            clock_rate,
            channels,
            fmtp: fmtp.map(str::to_owned),
        };
        vec![
            c(111, "opus", 48000, 2, None),
            c(9, "G722", 8000, 1, None),
            c(0, "PCMU", 8000, 1, None),
            c(8, "PCMA", 8000, 1, None),
            c(13, "CN", 8000, 1, None),
            c(126, "telephone-event", 8000, 1, None),
            c(110, "telephone-event", 48000, 1, None),
            c(96, "VP8", 90000, 1, None),
            c(102, "H264", 90000, 1, Some("packetization-mode=1")),
            c(127, "H264", 90000, 1, Some("packetization-mode=0")),
        ]
    }
}

/// What one m-line of a SIP description means for the bridge and the WebRTC leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// Media type of the m-line.
    pub kind: MediaType,
    /// The m-line is not used: port 0, not audio/video RTP, no codec in common, or SRTP
    /// without a usable key. The WebRTC leg should not offer it (or should reject it).
    pub rejected: bool,
    /// The direction as the SIP peer wrote it; the gateway relays it unchanged.
    pub direction: MediaDirection,
    /// Codecs in the peer's preference order, with the payload types the peer wrote (the
    /// numbers it expects to receive, RFC 3264 section 5.1). Includes telephone-event and CN.
    pub codecs: Vec<Codec>,
    /// Payload type of `telephone-event` (RFC 4733) at the clock rate of the first codec, or
    /// the first telephone-event when none matches.
    pub telephone_event_pt: Option<u8>,
    /// Where the peer wants RTP.
    pub remote_rtp: Option<SocketAddr>,
    /// Where the peer wants RTCP: `a=rtcp` (RFC 3605), else RTP port + 1; `None` when muxed.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTP and RTCP share one port (RFC 5761).
    pub rtcp_mux: bool,
    /// The peer's SDES key: what it encrypts with, so what we decrypt with.
    pub remote_crypto: Option<CryptoAttribute>,
    /// Our SDES key for the same tag and suite, when known (after an answer to our offer).
    pub local_crypto: Option<CryptoAttribute>,
    /// `a=ptime` in milliseconds.
    pub ptime: Option<u32>,
}

/// [`NegotiatedMedia`] for every m-line, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedSession {
    /// One entry per m-line of the SIP description.
    pub media: Vec<NegotiatedMedia>,
}

impl NegotiatedSession {
    /// Whether at least one m-line carries media.
    pub fn has_active_media(&self) -> bool {
        self.media.iter().any(|m| !m.rejected)
    }
}

/// Codecs of `offered` that match one of `supported` (same encoding, see
/// [`Codec::same_encoding`]), in the offerer's order and with the offerer's payload types and
/// fmtp. Telephone-event and CN are kept when supported, but do not count: if no real codec
/// matches, the result is [`SdpError::NoCommonCodec`] (the gateway answers 488).
pub fn intersect_codecs(
    offered: &[Codec],
    supported: &[Codec],
    media_index: usize,
) -> Result<Vec<Codec>, SdpError> {
    let common: Vec<Codec> = offered
        .iter()
        .filter(|o| !o.is_repair() && supported.iter().any(|s| s.same_encoding(o)))
        .cloned()
        .collect();
    if common.iter().all(Codec::is_auxiliary) {
        return Err(SdpError::NoCommonCodec { media_index });
    }
    Ok(common)
}

/// WebRTC offer (from the browser) -> SIP offer (to the SIP peer).
///
/// Per m-line: ICE, DTLS, BUNDLE, mid, ssrc, extmap, rtcp-fb, msid, rid and simulcast lines
/// are dropped (they have no meaning on a plain RTP leg); `UDP/TLS/RTP/SAVPF` becomes `RTP/AVP`
/// or `RTP/SAVP` with `a=crypto` when `local.lines[i].cryptos` is non-empty; the port comes
/// from the RTP leg; codecs keep their order but repair formats (rtx, red, ulpfec, flexfec) and
/// codecs the bridge cannot forward are removed; telephone-event is kept; the direction is
/// written explicitly; `a=rtcp-mux` is offered only when `local.rtcp_mux`, else `a=rtcp` names
/// port + 1. Inactive m-lines and m-lines we cannot bridge (data channels) stay in place with
/// port 0, so the SIP answer's m-lines line up with the browser's.
pub fn webrtc_offer_to_sip_offer(
    webrtc: &SessionDescription,
    local: &SipLocalMedia,
    origin: &mut LocalOrigin,
) -> Result<SessionDescription, SdpError> {
    let mut media = Vec::with_capacity(webrtc.media.len());
    let mut any_active = false;
    for (i, m) in webrtc.media.iter().enumerate() {
        let bridgeable = m.kind.is_rtp_media() && m.is_rtp() && m.is_active();
        let codecs = if bridgeable {
            intersect_codecs(&m.codecs(), &local.codecs, i).ok()
        } else {
            None
        };
        let Some(codecs) = codecs else {
            // A rejected line keeps the offer's profile, so an RTP/SAVP offer is all SAVP.
            let secure = local.lines.get(i).is_some_and(|l| !l.cryptos.is_empty());
            media.push(rejected_section(m, sip_protocol(m, secure)));
            continue;
        };
        let line = local
            .lines
            .get(i)
            .ok_or(SdpError::LocalMediaMissing { media_index: i })?;
        let secure = !line.cryptos.is_empty();
        let mut out = MediaSection::new(
            m.kind.clone(),
            line.rtp_port,
            &sip_protocol(m, secure),
            codecs.iter().map(|c| c.payload_type.to_string()).collect(),
        );
        // Bandwidth limits (b=AS, b=TIAS) and packet times still mean the same to a SIP peer.
        out.bandwidths = m.bandwidths.clone();
        write_codec_attributes(&mut out, &codecs);
        for name in ["ptime", "maxptime"] {
            if let Some(value) = m.attribute(name) {
                out.attributes.push(Attribute::new(name, value));
            }
        }
        write_rtcp_attributes(&mut out, local.rtcp_mux, line.rtp_port);
        for crypto in &line.cryptos {
            out.attributes
                .push(Attribute::new("crypto", crypto.to_value()));
        }
        out.attributes
            .push(Attribute::flag(webrtc.media_direction(i).as_str()));
        media.push(out);
        any_active = true;
    }
    if !any_active {
        let media_index = webrtc
            .media
            .iter()
            .position(MediaSection::is_active)
            .unwrap_or(0);
        return Err(SdpError::NoCommonCodec { media_index });
    }
    Ok(sip_session(local.address, origin, media))
}

/// SIP offer -> what the WebRTC leg must offer to the browser.
///
/// Each m-line is checked against `supported` ([`intersect_codecs`]); m-lines with no common
/// codec, port 0, non-RTP transports, DTLS-SRTP or `RTP/SAVP` without a usable `a=crypto` are
/// marked `rejected` (the gateway answers them with port 0). If nothing is left the result is
/// [`SdpError::NoCommonCodec`], which the gateway turns into 488.
pub fn sip_offer_to_negotiated(
    offer: &SessionDescription,
    supported: &[Codec],
) -> Result<NegotiatedSession, SdpError> {
    let mut media = Vec::with_capacity(offer.media.len());
    let mut first_error = None;
    for (i, m) in offer.media.iter().enumerate() {
        let mut n = describe_sip_media(offer, i);
        if !n.rejected {
            match intersect_codecs(&n.codecs, supported, i) {
                Ok(common) => {
                    n.telephone_event_pt = telephone_event_pt(&common);
                    n.codecs = common;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                    n.rejected = true;
                }
            }
        }
        if !n.rejected && m.is_sdes_srtp() {
            n.remote_crypto = m.cryptos().into_iter().next();
            if n.remote_crypto.is_none() {
                first_error.get_or_insert(SdpError::NoUsableCrypto { media_index: i });
                n.rejected = true;
            }
        }
        if !n.rejected && n.remote_rtp.is_none() {
            return Err(SdpError::MissingConnection { media_index: i });
        }
        media.push(n);
    }
    let session = NegotiatedSession { media };
    if session.has_active_media() {
        Ok(session)
    } else {
        Err(first_error.unwrap_or(SdpError::NoCommonCodec { media_index: 0 }))
    }
}

/// SIP answer to our SIP offer -> what the WebRTC leg must answer to the browser.
///
/// Checks RFC 3264 section 6 structure (same m-line count and media types), that every
/// active m-line kept at least one real codec from our offer (else
/// [`SdpError::NoCommonCodec`]), that it kept the offered profile (an `RTP/SAVP` offer
/// answered with `RTP/AVP` is [`SdpError::SrtpRefused`], the reverse
/// [`SdpError::UnexpectedSrtp`]) and, for `RTP/SAVP`, that the answer's `a=crypto` matches a
/// tag and suite we offered (else [`SdpError::NoUsableCrypto`]). Both SDES keys are returned:
/// [`NegotiatedMedia::local_crypto`] is our offered key for the tag the peer picked (what we
/// encrypt with), [`NegotiatedMedia::remote_crypto`] the peer's (what we decrypt with).
pub fn sip_answer_to_negotiated(
    our_offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<NegotiatedSession, SdpError> {
    if answer.media.is_empty() || answer.media.len() > our_offer.media.len() {
        return Err(SdpError::MediaCountMismatch {
            offered: our_offer.media.len(),
            answered: answer.media.len(),
        });
    }
    let mut media = Vec::with_capacity(our_offer.media.len());
    for (i, (offered, answered)) in our_offer.media.iter().zip(&answer.media).enumerate() {
        if offered.kind != answered.kind {
            return Err(SdpError::MediaTypeMismatch { media_index: i });
        }
        let mut n = describe_sip_media(answer, i);
        if offered.port == 0 {
            n.rejected = true;
        }
        if n.rejected {
            media.push(n);
            continue;
        }
        // The answer may only use codecs we offered (RFC 3264 section 6.1).
        n.codecs = intersect_codecs(&n.codecs, &offered.codecs(), i)?;
        n.telephone_event_pt = telephone_event_pt(&n.codecs);
        n.rtcp_mux = n.rtcp_mux && offered.has_attribute("rtcp-mux");
        if !n.rtcp_mux && n.remote_rtcp.is_none() {
            // The answer claimed rtcp-mux we never offered: RTCP goes to port + 1 (RFC 3550).
            n.remote_rtcp = n
                .remote_rtp
                .map(|a| SocketAddr::new(a.ip(), a.port().saturating_add(1)));
        }
        // The answer keeps the offer's transport (RFC 3264 section 6.1): an RTP/SAVP offer
        // answered with plain RTP/AVP (or the other way round) would leave one side sending
        // SRTP the other cannot read, or plaintext where the peer insisted on SRTP.
        match (offered.is_sdes_srtp(), answered.is_sdes_srtp()) {
            (true, false) => return Err(SdpError::SrtpRefused { media_index: i }),
            (false, true) => return Err(SdpError::UnexpectedSrtp { media_index: i }),
            _ => {}
        }
        if offered.is_sdes_srtp() {
            // RFC 4568 section 7.1.2: the answer carries one crypto line, with the tag of the
            // offered line it accepts and the same suite; our key is that offered line's.
            let remote = answered.cryptos().into_iter().next();
            let local = remote.as_ref().and_then(|r| {
                offered
                    .cryptos()
                    .into_iter()
                    .find(|l| l.tag == r.tag && l.suite == r.suite)
            });
            if local.is_none() {
                return Err(SdpError::NoUsableCrypto { media_index: i });
            }
            n.remote_crypto = remote;
            n.local_crypto = local;
        }
        if n.remote_rtp.is_none() {
            return Err(SdpError::MissingConnection { media_index: i });
        }
        media.push(n);
    }
    // Some SIP peers (SIPp's canned scenarios, older PBXs) answer with fewer m= lines than
    // offered, against RFC 3264 section 6. Read the missing trailing ones as rejected (port
    // 0) instead of failing the whole call.
    for i in answer.media.len()..our_offer.media.len() {
        let mut n = describe_sip_media(our_offer, i);
        n.rejected = true;
        media.push(n);
    }
    Ok(NegotiatedSession { media })
}

/// WebRTC answer (from the browser, to the gateway's offer built from `sip_offer`) -> SIP
/// answer to `sip_offer`.
///
/// The SIP answer has exactly the SIP offer's m-lines (RFC 3264 section 6). Each m-line the
/// bridge accepted (see [`sip_offer_to_negotiated`]) is paired with the next WebRTC answer
/// m-line of the same media type, so the WebRTC leg may leave rejected m-lines out of its
/// offer or keep them. Codecs are the browser's choice, written with the SIP offer's payload
/// type numbers; the direction is the browser's, limited by what the SIP offer allows
/// ([`MediaDirection::answer_to`]); rtcp-mux is accepted whenever offered;
/// for `RTP/SAVP` the local key with the peer's suite is sent under the peer's tag.
pub fn webrtc_answer_to_sip_answer(
    webrtc_answer: &SessionDescription,
    sip_offer: &SessionDescription,
    local: &SipLocalMedia,
    origin: &mut LocalOrigin,
) -> Result<SessionDescription, SdpError> {
    let negotiated = sip_offer_to_negotiated(sip_offer, &local.codecs)?;
    let mut browser_lines = webrtc_answer.media.iter().enumerate();
    let mut media = Vec::with_capacity(sip_offer.media.len());
    for (i, (offered, n)) in sip_offer.media.iter().zip(&negotiated.media).enumerate() {
        let browser = if n.rejected {
            None
        } else {
            browser_lines.by_ref().find(|(_, w)| w.kind == offered.kind)
        };
        let Some((w_index, w)) = browser.filter(|(_, w)| w.is_active()) else {
            media.push(rejected_section(offered, offered.protocol.clone()));
            continue;
        };
        // The browser's codecs, renumbered to the SIP offer's payload types.
        let codecs: Vec<Codec> = w
            .codecs()
            .into_iter()
            .filter_map(|bc| {
                let sc = n.codecs.iter().find(|sc| sc.same_encoding(&bc))?;
                Some(Codec {
                    payload_type: sc.payload_type,
                    ..bc
                })
            })
            .collect();
        if codecs.iter().all(Codec::is_auxiliary) {
            return Err(SdpError::NoCommonCodec { media_index: i });
        }
        let line = local
            .lines
            .get(i)
            .ok_or(SdpError::LocalMediaMissing { media_index: i })?;
        let mut out = MediaSection::new(
            offered.kind.clone(),
            line.rtp_port,
            &offered.protocol,
            codecs.iter().map(|c| c.payload_type.to_string()).collect(),
        );
        out.bandwidths = w.bandwidths.clone();
        write_codec_attributes(&mut out, &codecs);
        if let Some(ptime) = n.ptime {
            out.attributes
                .push(Attribute::new("ptime", ptime.to_string()));
        }
        write_rtcp_attributes(&mut out, n.rtcp_mux, line.rtp_port);
        if let Some(remote) = &n.remote_crypto {
            let mine = line
                .cryptos
                .iter()
                .find(|c| c.suite == remote.suite)
                .ok_or(SdpError::NoUsableCrypto { media_index: i })?;
            let mut answer_key = mine.clone();
            answer_key.tag = remote.tag;
            out.attributes
                .push(Attribute::new("crypto", answer_key.to_value()));
        }
        let direction = n
            .direction
            .answer_to(webrtc_answer.media_direction(w_index));
        out.attributes.push(Attribute::flag(direction.as_str()));
        media.push(out);
    }
    Ok(sip_session(local.address, origin, media))
}

/// What was really agreed after the gateway answered a SIP offer: [`sip_offer_to_negotiated`]
/// narrowed by `our_answer` (what [`webrtc_answer_to_sip_answer`] produced). m-lines the
/// answer rejected are rejected, codecs are those the answer kept (with the payload types
/// the answer wrote, which are the offer's), rtcp-mux only if both sides have it, and for SDES
/// the peer's key is the offered crypto whose tag the answer picked, our key the answer's.
pub fn sip_offer_answered(
    sip_offer: &SessionDescription,
    our_answer: &SessionDescription,
) -> Result<NegotiatedSession, SdpError> {
    if sip_offer.media.len() != our_answer.media.len() {
        return Err(SdpError::MediaCountMismatch {
            offered: sip_offer.media.len(),
            answered: our_answer.media.len(),
        });
    }
    let mut media = Vec::with_capacity(sip_offer.media.len());
    for (i, (offered, answered)) in sip_offer.media.iter().zip(&our_answer.media).enumerate() {
        let mut n = describe_sip_media(sip_offer, i);
        if offered.kind != answered.kind {
            return Err(SdpError::MediaTypeMismatch { media_index: i });
        }
        n.rejected |= !answered.is_active();
        if !n.rejected {
            let answered_codecs = answered.codecs();
            n.codecs = answered_codecs
                .iter()
                .filter_map(|a| {
                    n.codecs
                        .iter()
                        .find(|o| o.payload_type == a.payload_type && o.same_encoding(a))
                })
                .cloned()
                .collect();
            if n.codecs.iter().all(Codec::is_auxiliary) {
                return Err(SdpError::NoCommonCodec { media_index: i });
            }
            n.telephone_event_pt = telephone_event_pt(&n.codecs);
            n.rtcp_mux = n.rtcp_mux && answered.has_attribute("rtcp-mux");
            if !n.rtcp_mux && n.remote_rtcp.is_none() {
                n.remote_rtcp = n
                    .remote_rtp
                    .map(|a| SocketAddr::new(a.ip(), a.port().saturating_add(1)));
            }
            if offered.is_sdes_srtp() {
                n.local_crypto = answered.cryptos().into_iter().next();
                n.remote_crypto = n.local_crypto.as_ref().and_then(|l| {
                    offered
                        .cryptos()
                        .into_iter()
                        .find(|r| r.tag == l.tag && r.suite == l.suite)
                });
                if n.remote_crypto.is_none() {
                    return Err(SdpError::NoUsableCrypto { media_index: i });
                }
            }
            if n.remote_rtp.is_none() {
                return Err(SdpError::MissingConnection { media_index: i });
            }
        }
        media.push(n);
    }
    Ok(NegotiatedSession { media })
}

/// Touches up an SDP produced by the WebRTC stack before it goes to sylkrtc.js: every active
/// m-line gets an explicit direction attribute (sylkrtc.js reads it instead of assuming the
/// RFC 3264 default; `directions[i]` overrides when given, otherwise the effective direction
/// is made explicit) and `a=end-of-candidates` (RFC 8840 section 8.2), since the gateway
/// gathers all its candidates up front and does not trickle.
pub fn finalize_browser_sdp(sdp: &mut SessionDescription, directions: &[MediaDirection]) {
    for i in 0..sdp.media.len() {
        let direction = directions
            .get(i)
            .copied()
            .unwrap_or_else(|| sdp.media_direction(i));
        let Some(m) = sdp.media.get_mut(i) else {
            continue;
        };
        if !m.is_active() {
            continue;
        }
        m.set_direction(direction);
        if !m.has_attribute("end-of-candidates") {
            m.attributes.push(Attribute::flag("end-of-candidates"));
        }
    }
}

fn sip_session(
    address: IpAddr,
    origin: &mut LocalOrigin,
    media: Vec<MediaSection>,
) -> SessionDescription {
    SessionDescription {
        origin: origin.next_origin(address),
        session_name: SESSION_NAME.to_owned(),
        connection: Some(Connection::from_ip(address)),
        bandwidths: Vec::new(),
        timing: "0 0".to_owned(),
        attributes: Vec::new(),
        media,
    }
}

/// The SIP-side transport for an m-line: RTP profiles become plain AVP (or SAVP with SDES);
/// anything else (SCTP data channels) keeps its protocol, and only appears rejected.
fn sip_protocol(m: &MediaSection, secure: bool) -> String {
    if !m.is_rtp() {
        m.protocol.clone()
    } else if secure {
        "RTP/SAVP".to_owned()
    } else {
        "RTP/AVP".to_owned()
    }
}

/// A rejected m-line (RFC 3264 section 6: port 0, same media type, at least one format).
fn rejected_section(m: &MediaSection, protocol: String) -> MediaSection {
    let mut formats: Vec<String> = if m.is_rtp() {
        m.codecs()
            .into_iter()
            .filter(|c| !c.is_repair())
            .map(|c| c.payload_type.to_string())
            .collect()
    } else {
        m.formats.clone()
    };
    if formats.is_empty() {
        formats = m.formats.iter().take(1).cloned().collect();
    }
    MediaSection::new(m.kind.clone(), 0, &protocol, formats)
}

fn write_codec_attributes(out: &mut MediaSection, codecs: &[Codec]) {
    for c in codecs {
        c.push_format_attributes(&mut out.attributes);
    }
}

/// `a=rtcp-mux` (RFC 5761 section 5.1.1) or `a=rtcp:<port+1>` (RFC 3605): the explicit RTCP
/// port helps peers behind NAT-aware proxies that rewrite only what they see.
fn write_rtcp_attributes(out: &mut MediaSection, mux: bool, rtp_port: u16) {
    if mux {
        out.attributes.push(Attribute::flag("rtcp-mux"));
    } else {
        out.attributes.push(Attribute::new(
            "rtcp",
            rtp_port.saturating_add(1).to_string(),
        ));
    }
}

fn telephone_event_pt(codecs: &[Codec]) -> Option<u8> {
    let primary_rate = codecs
        .iter()
        .find(|c| !c.is_auxiliary())
        .map(|c| c.clock_rate);
    let events = || codecs.iter().filter(|c| c.is_telephone_event());
    events()
        .find(|c| Some(c.clock_rate) == primary_rate)
        .or_else(|| events().next())
        .map(|c| c.payload_type)
}

/// The transport facts of SIP m-line `i`, before any codec negotiation.
fn describe_sip_media(sdp: &SessionDescription, i: usize) -> NegotiatedMedia {
    let Some(m) = sdp.media.get(i) else {
        return NegotiatedMedia {
            kind: MediaType::Other(String::new()),
            rejected: true,
            direction: MediaDirection::Inactive,
            codecs: Vec::new(),
            telephone_event_pt: None,
            remote_rtp: None,
            remote_rtcp: None,
            rtcp_mux: false,
            remote_crypto: None,
            local_crypto: None,
            ptime: None,
        };
    };
    let protocol = m.protocol.to_ascii_uppercase();
    // DTLS-SRTP SIP peers ("UDP/TLS/RTP/SAVP") would need a DTLS stack on the SIP leg.
    let supported_transport = matches!(
        protocol.as_str(),
        "RTP/AVP" | "RTP/AVPF" | "RTP/SAVP" | "RTP/SAVPF"
    );
    let ip = sdp.media_connection(i).and_then(Connection::ip);
    let rtcp_mux = m.has_attribute("rtcp-mux");
    let remote_rtp = ip.map(|ip| SocketAddr::new(ip, m.port));
    let remote_rtcp = if rtcp_mux {
        None
    } else {
        match (m.rtcp(), ip) {
            (Some(r), Some(ip)) => Some(SocketAddr::new(r.address.unwrap_or(ip), r.port)),
            (None, Some(ip)) => Some(SocketAddr::new(ip, m.port.saturating_add(1))),
            (_, None) => None,
        }
    };
    let codecs = m.codecs();
    NegotiatedMedia {
        kind: m.kind.clone(),
        rejected: m.port == 0 || !m.kind.is_rtp_media() || !supported_transport,
        direction: sdp.media_direction(i),
        telephone_event_pt: telephone_event_pt(&codecs),
        codecs,
        remote_rtp,
        remote_rtcp,
        rtcp_mux,
        remote_crypto: None,
        local_crypto: None,
        ptime: m.ptime(),
    }
}
