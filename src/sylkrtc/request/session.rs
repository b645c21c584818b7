//! `session-*` requests (SIP calls).

use serde_json::Value;

use super::{Fields, RequestError};
use crate::sylkrtc::aor::Aor;
use crate::sylkrtc::fields::invalid;

/// An ICE candidate trickled by the client (a serialised `RTCIceCandidate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCandidate {
    /// The `candidate:` attribute value; may be empty for end-of-candidates.
    pub candidate: String,
    /// The media stream id it belongs to.
    pub sdp_mid: Option<String>,
    /// The m-line index it belongs to.
    pub sdp_mline_index: Option<u16>,
}

/// A SIP header the client wants added (`headers: [{name, value}]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// `session-create`: an outgoing call.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionCreate {
    /// The calling account.
    pub account: Aor,
    /// Client-chosen session id.
    pub session: String,
    /// The callee.
    pub uri: Aor,
    /// The browser's SDP offer.
    pub sdp: String,
    /// Extra SIP headers for the INVITE.
    pub headers: Vec<ExtraHeader>,
    /// `media` lists `chat` beside audio/video: the INVITE also offers an MSRP chat
    /// (`m=message`, our extension; README "Chat sessions").
    pub chat: bool,
    /// Our extension: the session whose `transfer-request` this call carries out (the
    /// INVITE gets the REFER's Referred-By, and its outcome goes back in NOTIFYs).
    pub refer: Option<String>,
}

/// `session-create` with `media: ["chat"]` and no `sdp`: a chat-only session over MSRP (our
/// extension).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatSessionCreate {
    /// The calling account.
    pub account: Aor,
    /// Client-chosen session id.
    pub session: String,
    /// The callee.
    pub uri: Aor,
    /// Extra SIP headers for the INVITE.
    pub headers: Vec<ExtraHeader>,
    /// The session whose `transfer-request` this chat carries out (as
    /// [`SessionCreate::refer`]).
    pub refer: Option<String>,
}

/// The `media` list of `session-create` (our extension): which streams the session has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionMedia {
    /// `audio`.
    pub audio: bool,
    /// `video`.
    pub video: bool,
    /// `chat` (MSRP).
    pub chat: bool,
}

/// The optional `media: ["audio"|"video"|"chat", ...]`; `None` when absent.
pub(super) fn media(f: &Fields<'_>) -> Result<Option<SessionMedia>, RequestError> {
    let Some(list) = f.opt_list("media", |v| match v.as_str() {
        Some(m @ ("audio" | "video" | "chat")) => Ok(m),
        _ => Err(invalid(
            "media",
            v,
            "a list of \"audio\", \"video\", \"chat\"",
        )),
    })?
    else {
        return Ok(None);
    };
    if list.is_empty() {
        return Err(invalid(
            "media",
            &Value::Array(Vec::new()),
            "a non-empty list of \"audio\", \"video\", \"chat\"",
        ));
    }
    Ok(Some(SessionMedia {
        audio: list.contains(&"audio"),
        video: list.contains(&"video"),
        chat: list.contains(&"chat"),
    }))
}

/// `session-update`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionUpdate {
    /// The session id.
    pub session: String,
    /// The browser's offer (or its answer to our `update` `received`).
    pub sdp: String,
    /// Extra SIP headers for the re-INVITE (or its 200).
    pub headers: Vec<ExtraHeader>,
}

/// `session-dtmf-info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtmfInfo {
    /// The session id.
    pub session: String,
    /// One or more of `0-9 * # A-D` (sylkrtc.js 1.8 sends the application's whole string).
    pub digits: Vec<char>,
    /// Tone length in milliseconds, when given.
    pub duration: Option<u32>,
}

/// The longest digit string one `session-dtmf-info` may carry (each is one INFO).
pub const MAX_DTMF_DIGITS: usize = 64;

/// `session-dtmf-info`: `digit` is one or more DTMF keys (RFC 4733 section 3.2's 16), case
/// folded; `duration` 1-10000 ms.
pub(super) fn dtmf_info(f: &Fields<'_>) -> Result<DtmfInfo, RequestError> {
    let session = f.str("session")?.to_owned();
    let raw = f.str("digit")?;
    let digits: Vec<char> = raw.chars().map(|c| c.to_ascii_uppercase()).collect();
    let valid = |c: &char| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D');
    if digits.is_empty() || digits.len() > MAX_DTMF_DIGITS || !digits.iter().all(valid) {
        return Err(invalid(
            "digit",
            &Value::from(raw),
            "DTMF digits: 0-9, *, #, A-D (at most 64)",
        ));
    }
    let duration = match f.opt_u64("duration")? {
        None => None,
        Some(d @ 1..=10_000) => Some(d as u32),
        Some(d) => {
            return Err(invalid(
                "duration",
                &Value::from(d),
                "a tone length of 1-10000 ms",
            ))
        }
    };
    Ok(DtmfInfo {
        session,
        digits,
        duration,
    })
}

/// The optional `headers: [{name, value}]` of a request.
pub(super) fn headers(f: &Fields<'_>) -> Result<Vec<ExtraHeader>, RequestError> {
    Ok(f.opt_list("headers", |v| {
        let Value::Object(map) = v else {
            return Err(invalid("headers", v, "a list of {name, value} objects"));
        };
        let h = Fields {
            request: f.request,
            map,
        };
        Ok(ExtraHeader {
            name: h.non_empty_str("name")?.to_owned(),
            value: h.str("value")?.to_owned(),
        })
    })?
    .unwrap_or_default())
}

/// One trickled candidate.
pub(super) fn candidate(v: &Value) -> Result<IceCandidate, RequestError> {
    let Value::Object(map) = v else {
        return Err(invalid(
            "candidates",
            v,
            "a list of RTCIceCandidate objects",
        ));
    };
    let c = Fields {
        request: "session-trickle",
        map,
    };
    let sdp_mid = c.opt_str("sdpMid")?.map(str::to_owned);
    let sdp_mline_index = match c.opt_u64("sdpMLineIndex")? {
        Some(i) => Some(
            u16::try_from(i)
                .map_err(|_| invalid("sdpMLineIndex", &Value::from(i), "an m-line index"))?,
        ),
        None => None,
    };
    // WebRTC requires one of the two to place the candidate (RFC 8839 section 5.1 /
    // RTCIceCandidateInit); SylkServer demands both, browsers always send both.
    if sdp_mid.is_none() && sdp_mline_index.is_none() {
        return Err(RequestError::MissingField {
            request: "session-trickle",
            field: "sdpMid",
        });
    }
    Ok(IceCandidate {
        candidate: c.str("candidate")?.to_owned(),
        sdp_mid,
        sdp_mline_index,
    })
}
