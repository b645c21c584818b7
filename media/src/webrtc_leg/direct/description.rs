//! SDP for the direct engine: what it needs from the browser's description (ICE credentials,
//! DTLS fingerprint and role, candidates, the accepted m-lines) and the description it
//! writes itself (JSEP, RFC 8829, as a browser would: BUNDLE, rtcp-mux, one transport).
//!
//! Only the transport-level facts are handled here; which codecs the call uses was decided
//! by the bridge before the engine is built, so an answer carries exactly those.

use std::net::IpAddr;

use super::super::{CodecSpec, MediaKind};
use crate::error::WebrtcError;
use crate::sdp::{Attribute, Connection, MediaDirection, MediaSection, Origin, SessionDescription};

/// The stream ids written into `a=msid` (RFC 8830) and used as track ids.
pub(crate) const STREAM_ID: &str = "sylk-gateway";
pub(crate) const PROFILE: &str = "UDP/TLS/RTP/SAVPF";

/// DTLS role this side takes (RFC 5763 sec. 5, RFC 8842 sec. 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DtlsRole {
    /// We send the ClientHello (`a=setup:active`).
    Client,
    /// We wait for it (`a=setup:passive`).
    Server,
}

/// What the engine takes from the browser's SDP.
#[derive(Debug, Clone)]
pub(crate) struct RemoteTransport {
    pub(crate) ufrag: String,
    pub(crate) pwd: String,
    /// `sha-256` fingerprint value (upper- or lower-case hex with colons).
    pub(crate) fingerprint: String,
    /// The browser's `a=setup` value.
    pub(crate) setup: String,
    /// Candidate lines (after `candidate:`), deduplicated, from every accepted m-line.
    pub(crate) candidates: Vec<String>,
    /// Whether the browser is an ICE-lite agent (RFC 8839 sec. 5.3).
    pub(crate) ice_lite: bool,
}

/// Our side of the transport, written into every accepted m-line.
#[derive(Debug, Clone)]
pub(crate) struct LocalTransport<'a> {
    pub(crate) ufrag: &'a str,
    pub(crate) pwd: &'a str,
    pub(crate) fingerprint: &'a str,
    pub(crate) setup: &'static str,
    /// The host candidate's `candidate:` value.
    pub(crate) candidate: &'a str,
    pub(crate) address: IpAddr,
    pub(crate) port: u16,
    pub(crate) ice_lite: bool,
    /// `<sess-version>` of the description (RFC 3264 section 8: up by one for each new one).
    pub(crate) version: u64,
}

/// One stream we send: its SSRC and RTCP CNAME (RFC 3550 sec. 6.5.1).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalSource<'a> {
    pub(crate) kind: MediaKind,
    pub(crate) ssrc: u32,
    pub(crate) cname: &'a str,
}

fn invalid(why: &str) -> WebrtcError {
    WebrtcError::InvalidSdp(rtc::shared::error::Error::Other(why.to_owned()))
}

/// The transport facts of the m-lines `accepted` (indices into `remote.media`).
pub(crate) fn remote_transport(
    remote: &SessionDescription,
    accepted: &[usize],
) -> Result<RemoteTransport, WebrtcError> {
    let first = *accepted.first().ok_or(WebrtcError::NoCommonCodec)?;
    let (ufrag, pwd) = remote
        .ice_credentials(first)
        .ok_or_else(|| invalid("no ICE credentials (RFC 8839 sec. 5.4)"))?;
    let fingerprint = remote
        .fingerprint(first)
        .ok_or_else(|| invalid("no DTLS fingerprint (RFC 8122 sec. 5)"))?;
    if !fingerprint.hash_function.eq_ignore_ascii_case("sha-256") {
        return Err(invalid("only sha-256 fingerprints are supported"));
    }
    let setup = remote
        .media
        .get(first)
        .and_then(MediaSection::setup)
        .or_else(|| remote.attribute("setup"))
        .unwrap_or("actpass");
    let mut candidates: Vec<String> = Vec::new();
    for m in accepted.iter().filter_map(|&i| remote.media.get(i)) {
        for c in m.candidates() {
            if candidates.len() < MAX_REMOTE_CANDIDATES && !candidates.iter().any(|k| k == c) {
                candidates.push(c.to_owned());
            }
        }
    }
    Ok(RemoteTransport {
        ufrag: ufrag.to_owned(),
        pwd: pwd.to_owned(),
        fingerprint: fingerprint.value.to_owned(),
        setup: setup.to_ascii_lowercase(),
        candidates,
        ice_lite: remote.attribute("ice-lite").is_some(),
    })
}

/// Bound on candidates taken from one description; browsers send a handful.
pub(crate) const MAX_REMOTE_CANDIDATES: usize = 32;

/// Which of the offer's m-lines we accept: the first audio and the first video m-line that
/// have a codec in `codecs` and belong to the BUNDLE group (or, without one, the first
/// m-line only: a single transport is all the engine runs).
pub(crate) fn accepted_offer_lines(offer: &SessionDescription, codecs: &[CodecSpec]) -> Vec<usize> {
    let bundle = offer.bundle_group();
    let mut taken: Vec<(MediaKind, usize)> = Vec::new();
    for (i, m) in offer.media.iter().enumerate() {
        let Some(kind) = MediaKind::from_sdp(&m.kind) else {
            continue;
        };
        if m.is_port_zero() || taken.iter().any(|(k, _)| *k == kind) {
            continue;
        }
        let in_bundle = m.mid().is_some_and(|mid| bundle.contains(&mid));
        if !taken.is_empty() && !in_bundle {
            continue;
        }
        if !codecs
            .iter()
            .any(|c| c.kind == kind && !c.is_telephone_event())
        {
            continue;
        }
        taken.push((kind, i));
        if bundle.is_empty() {
            break;
        }
    }
    taken.into_iter().map(|(_, i)| i).collect()
}

/// The DTLS role for the answerer given the offer's `a=setup` (RFC 5763 sec. 5: the answerer
/// SHOULD be active when the offer says actpass).
pub(crate) fn answerer_dtls_role(offer_setup: &str) -> DtlsRole {
    if offer_setup == "active" {
        DtlsRole::Server
    } else {
        DtlsRole::Client
    }
}

/// The DTLS role for the offerer (we wrote actpass) given the answer's `a=setup`.
pub(crate) fn offerer_dtls_role(answer_setup: &str) -> DtlsRole {
    if answer_setup == "passive" {
        DtlsRole::Client
    } else {
        DtlsRole::Server
    }
}

fn origin(session_id: u64, version: u64, address: IpAddr) -> Origin {
    Origin {
        username: "-".to_owned(),
        session_id,
        session_version: version,
        address: address.to_string(),
    }
}

fn session(
    session_id: u64,
    local: &LocalTransport<'_>,
    bundle: &[String],
    media: Vec<MediaSection>,
) -> SessionDescription {
    let mut attributes = Vec::new();
    if !bundle.is_empty() {
        attributes.push(Attribute::new(
            "group",
            format!("BUNDLE {}", bundle.join(" ")),
        ));
    }
    if local.ice_lite {
        attributes.push(Attribute::flag("ice-lite"));
    }
    attributes.push(Attribute::new("msid-semantic", format!("WMS {STREAM_ID}")));
    SessionDescription {
        origin: origin(session_id, local.version, local.address),
        session_name: "-".to_owned(),
        connection: None,
        bandwidths: Vec::new(),
        timing: "0 0".to_owned(),
        attributes,
        media,
    }
}

/// One accepted m-line: transport, codecs, our source, our candidate.
fn active_section(
    kind: MediaKind,
    mid: Option<&str>,
    codecs: &[&CodecSpec],
    feedback_offered: &dyn Fn(u8, &str) -> bool,
    local: &LocalTransport<'_>,
    source: Option<LocalSource<'_>>,
) -> MediaSection {
    let formats = codecs.iter().map(|c| c.payload_type.to_string()).collect();
    let mut m = MediaSection::new(kind.to_sdp(), local.port, PROFILE, formats);
    m.connection = Some(Connection::from_ip(local.address));
    let a = &mut m.attributes;
    if let Some(mid) = mid {
        a.push(Attribute::new("mid", mid));
    }
    a.push(Attribute::new("ice-ufrag", local.ufrag));
    a.push(Attribute::new("ice-pwd", local.pwd));
    a.push(Attribute::new(
        "fingerprint",
        format!("sha-256 {}", local.fingerprint),
    ));
    a.push(Attribute::new("setup", local.setup));
    a.push(Attribute::flag("sendrecv"));
    a.push(Attribute::flag("rtcp-mux"));
    for c in codecs {
        c.to_sdp().push_format_attributes(a);
        // Key frame requests are all the bridge relays (RFC 4585 sec. 6.3.1 PLI, RFC 5104
        // sec. 4.3.1 FIR); NACK/TWCC/REMB would promise retransmissions and estimates the
        // bridge does not make.
        if kind == MediaKind::Video {
            for fb in ["nack pli", "ccm fir"] {
                if feedback_offered(c.payload_type, fb) {
                    a.push(Attribute::new(
                        "rtcp-fb",
                        format!("{} {fb}", c.payload_type),
                    ));
                }
            }
        }
    }
    if let Some(source) = source {
        let track = track_id(kind);
        a.push(Attribute::new("msid", format!("{STREAM_ID} {track}")));
        a.push(Attribute::new(
            "ssrc",
            format!("{} cname:{}", source.ssrc, source.cname),
        ));
        a.push(Attribute::new(
            "ssrc",
            format!("{} msid:{STREAM_ID} {track}", source.ssrc),
        ));
    }
    a.push(Attribute::new("candidate", local.candidate));
    a.push(Attribute::flag("end-of-candidates"));
    m
}

/// The track id of our stream of `kind`.
pub(crate) fn track_id(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "sylk-audio",
        MediaKind::Video => "sylk-video",
    }
}

/// Our answer to `offer`: the `accepted` m-lines carry `codecs` of their kind (the browser's
/// payload types), every other m-line is rejected with port 0 and keeps its mid
/// (RFC 8843 sec. 7.3.3 keeps rejected m-lines out of the BUNDLE group).
pub(crate) fn write_answer(
    offer: &SessionDescription,
    accepted: &[usize],
    codecs: &[CodecSpec],
    local: &LocalTransport<'_>,
    sources: &[LocalSource<'_>],
    session_id: u64,
) -> SessionDescription {
    let mut media = Vec::with_capacity(offer.media.len());
    let mut bundle = Vec::new();
    for (i, offered) in offer.media.iter().enumerate() {
        let kind = MediaKind::from_sdp(&offered.kind);
        match kind.filter(|_| accepted.contains(&i)) {
            Some(kind) => {
                let kind_codecs: Vec<&CodecSpec> =
                    codecs.iter().filter(|c| c.kind == kind).collect();
                let offered_fb = |pt: u8, fb: &str| offered.rtcp_feedback(pt).any(|f| f == fb);
                let source = sources.iter().find(|s| s.kind == kind).copied();
                if let Some(mid) = offered.mid() {
                    bundle.push(mid.to_owned());
                }
                media.push(active_section(
                    kind,
                    offered.mid(),
                    &kind_codecs,
                    &offered_fb,
                    local,
                    source,
                ));
            }
            None => media.push(rejected_section(offered)),
        }
    }
    session(session_id, local, &bundle, media)
}

fn rejected_section(offered: &MediaSection) -> MediaSection {
    let mut m = MediaSection::new(
        offered.kind.clone(),
        0,
        &offered.protocol,
        offered.formats.clone(),
    );
    if let Some(mid) = offered.mid() {
        m.attributes.push(Attribute::new("mid", mid));
    }
    m
}

/// Our offer: one m-line per kind that has a media codec in `codecs`, mids `0`, `1`,
/// `a=setup:actpass` (RFC 5763 sec. 5). Returns the description and the kinds in m-line
/// order.
pub(crate) fn write_offer(
    codecs: &[CodecSpec],
    local: &LocalTransport<'_>,
    sources: &[LocalSource<'_>],
    session_id: u64,
) -> (SessionDescription, Vec<MediaKind>) {
    let mut media = Vec::new();
    let mut kinds = Vec::new();
    let mut bundle = Vec::new();
    for kind in [MediaKind::Audio, MediaKind::Video] {
        let kind_codecs: Vec<&CodecSpec> = codecs.iter().filter(|c| c.kind == kind).collect();
        if !kind_codecs.iter().any(|c| !c.is_telephone_event()) {
            continue;
        }
        let mid = kinds.len().to_string();
        let source = sources.iter().find(|s| s.kind == kind).copied();
        let offer_all = |_: u8, _: &str| true;
        media.push(active_section(
            kind,
            Some(&mid),
            &kind_codecs,
            &offer_all,
            local,
            source,
        ));
        bundle.push(mid);
        kinds.push(kind);
    }
    (session(session_id, local, &bundle, media), kinds)
}

/// One m-line of a subsequent offer of ours: the kind, the mid the browser knows it by,
/// the codecs (empty: rejected with port 0, RFC 3264 section 8.2) and the direction.
#[derive(Debug, Clone)]
pub(crate) struct OfferLine {
    /// Audio or video; `None` for a line the leg never carries (kept rejected).
    pub(crate) kind: Option<MediaKind>,
    /// The `m=` media type and protocol as the session has them (for rejected lines).
    pub(crate) media_type: crate::sdp::MediaType,
    pub(crate) protocol: String,
    pub(crate) mid: String,
    pub(crate) codecs: Vec<CodecSpec>,
    pub(crate) direction: MediaDirection,
}

/// A subsequent offer (RFC 8829 section 5.2.2): the m-lines in `lines`' order with the mids
/// the session has, rejected ones with port 0, our transport unchanged.
pub(crate) fn write_reoffer(
    lines: &[OfferLine],
    local: &LocalTransport<'_>,
    sources: &[LocalSource<'_>],
    session_id: u64,
) -> SessionDescription {
    let mut media = Vec::with_capacity(lines.len());
    let mut bundle = Vec::new();
    for line in lines {
        let Some(kind) = line
            .kind
            .filter(|_| !line.codecs.iter().all(CodecSpec::is_telephone_event))
        else {
            let formats = line
                .codecs
                .first()
                .map_or_else(|| "0".to_owned(), |c| c.payload_type.to_string());
            let mut m =
                MediaSection::new(line.media_type.clone(), 0, &line.protocol, vec![formats]);
            m.attributes.push(Attribute::new("mid", line.mid.as_str()));
            media.push(m);
            continue;
        };
        let codecs: Vec<&CodecSpec> = line.codecs.iter().collect();
        let source = sources.iter().find(|s| s.kind == kind).copied();
        let offer_all = |_: u8, _: &str| true;
        let mut m = active_section(kind, Some(&line.mid), &codecs, &offer_all, local, source);
        m.set_direction(line.direction);
        bundle.push(line.mid.clone());
        media.push(m);
    }
    session(session_id, local, &bundle, media)
}

/// The codecs the browser's answer accepted, with their payload types, for the m-lines of
/// our offer (`kinds` in order). A rejected m-line contributes nothing.
pub(crate) fn answered_codecs(
    answer: &SessionDescription,
    kinds: &[MediaKind],
    offered: &[CodecSpec],
) -> Vec<CodecSpec> {
    let mut out = Vec::new();
    for (m, kind) in answer.media.iter().zip(kinds) {
        if m.is_port_zero() {
            continue;
        }
        for c in m.codecs() {
            let Some(ours) = offered
                .iter()
                .find(|o| o.kind == *kind && o.payload_type == c.payload_type)
            else {
                continue;
            };
            if ours.name.eq_ignore_ascii_case(&c.name) && ours.clock_rate == c.clock_rate {
                out.push(ours.clone());
            }
        }
    }
    out
}
