//! Resource-list NOTIFY bodies (RFC 4662 section 5): `multipart/related` (RFC 2387,
//! framing of RFC 2046 section 5.1) whose root part is an RLMI document
//! (`application/rlmi+xml`) naming each resource and its instances, each active instance
//! pointing (`cid`) at a part with its PIDF document.
//!
//! [`parse_list_notify`] gives one [`ResourceState`] per resource of the RLMI document.
//! A NOTIFY with `fullState="false"` carries only the resources that changed.

use std::fmt;

use crate::pidf::{PidfError, Presence, PIDF_CONTENT_TYPE};
use crate::xml::{self, Element, Limits, XmlError};

/// The RLMI namespace (RFC 4662 section 5.2).
pub const RLMI_NS: &str = "urn:ietf:params:xml:ns:rlmi";
/// The RLMI content type.
pub const RLMI_CONTENT_TYPE: &str = "application/rlmi+xml";
/// Largest multipart body accepted.
pub const MAX_MULTIPART_SIZE: usize = 1024 * 1024;
/// Most body parts.
pub const MAX_PARTS: usize = 1024;

const RLMI_LIMITS: Limits = Limits {
    max_size: 256 * 1024,
    max_depth: 16,
    max_elements: 8192,
};

/// Why a body is not a resource-list notification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RlmiError {
    /// Larger than [`MAX_MULTIPART_SIZE`].
    TooLarge,
    /// The Content-Type is not `multipart/related` with a boundary.
    NotMultipart,
    /// The multipart framing is broken (the text says how).
    Framing(&'static str),
    /// More than [`MAX_PARTS`] parts.
    TooManyParts,
    /// No `application/rlmi+xml` part.
    NoRlmi,
    /// The RLMI document does not parse.
    Xml(XmlError),
    /// The RLMI root is not `<list>` with `uri` and `version`.
    NotRlmi,
    /// A resource's PIDF part does not parse.
    Pidf(PidfError),
}

impl fmt::Display for RlmiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RlmiError::TooLarge => f.write_str("multipart body too large"),
            RlmiError::NotMultipart => f.write_str("not multipart/related with a boundary"),
            RlmiError::Framing(e) => write!(f, "malformed multipart body: {e}"),
            RlmiError::TooManyParts => f.write_str("too many body parts"),
            RlmiError::NoRlmi => f.write_str("no RLMI part"),
            RlmiError::Xml(e) => write!(f, "RLMI: {e}"),
            RlmiError::NotRlmi => f.write_str("not an RLMI list"),
            RlmiError::Pidf(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RlmiError {}

/// A resource instance's subscription state (RFC 4662 section 5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceState {
    /// Active: the part carries its state.
    Active,
    /// Waiting for authorisation.
    Pending,
    /// Over (with the reason given).
    Terminated(Option<String>),
    /// No instance listed.
    None,
}

/// One resource of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceState {
    /// The resource's URI.
    pub uri: String,
    /// Its `<name>`, if given.
    pub name: Option<String>,
    /// The first instance's state.
    pub state: InstanceState,
    /// Its presence, when an active instance has a PIDF part.
    pub presence: Option<Presence>,
}

/// One NOTIFY of a resource list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListNotification {
    /// The list's URI.
    pub uri: String,
    /// RLMI version (rises by one per NOTIFY).
    pub version: u32,
    /// Every resource is listed (`fullState="true"`), or only changes.
    pub full_state: bool,
    /// The resources.
    pub resources: Vec<ResourceState>,
}

/// One body part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// Its Content-ID without the angle brackets.
    pub content_id: Option<&'a str>,
    /// Its Content-Type.
    pub content_type: Option<&'a str>,
    /// Its body.
    pub body: &'a [u8],
}

/// The parameter `name` of a header value such as a Content-Type (`type/sub;a=1;b="x"`),
/// unquoted; `None` when absent.
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = value.split_once(';')?.1;
    while !rest.is_empty() {
        let (n, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (
                &q[..end],
                q[end + 1..].split_once(';').map_or("", |(_, r)| r),
            )
        } else {
            match after.split_once(';') {
                Some((v, r)) => (v.trim(), r),
                None => (after.trim(), ""),
            }
        };
        if n.trim().eq_ignore_ascii_case(name) {
            return Some(v);
        }
        rest = next;
    }
    None
}

/// The media type of a Content-Type value, lower-cased.
pub fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Splits a multipart body (RFC 2046 section 5.1.1) into its parts.
pub fn split_multipart<'a>(boundary: &str, body: &'a [u8]) -> Result<Vec<Part<'a>>, RlmiError> {
    if body.len() > MAX_MULTIPART_SIZE {
        return Err(RlmiError::TooLarge);
    }
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(RlmiError::NotMultipart);
    }
    let delimiter = format!("--{boundary}");
    let d = delimiter.as_bytes();
    // Delimiters start a line: at the very start, or after CRLF (bare LF tolerated).
    let mut starts = Vec::new();
    let mut i = 0;
    while let Some(at) = find(&body[i..], d) {
        let pos = i + at;
        if pos == 0 || body[pos - 1] == b'\n' {
            starts.push(pos);
            if starts.len() > MAX_PARTS + 1 {
                return Err(RlmiError::TooManyParts);
            }
        }
        i = pos + d.len();
    }
    if starts.is_empty() {
        return Err(RlmiError::Framing("no delimiter"));
    }
    let mut parts = Vec::new();
    let mut closed = false;
    for (n, &start) in starts.iter().enumerate() {
        let after = &body[start + d.len()..];
        if after.starts_with(b"--") {
            closed = true;
            break;
        }
        let Some(line_end) = find(after, b"\n") else {
            return Err(RlmiError::Framing("delimiter line not ended"));
        };
        let content_start = start + d.len() + line_end + 1;
        let Some(&next) = starts.get(n + 1) else {
            return Err(RlmiError::Framing("no closing delimiter"));
        };
        // The CRLF before the next delimiter belongs to it.
        let mut end = next;
        if end > 0 && body[end - 1] == b'\n' {
            end -= 1;
            if end > 0 && body[end - 1] == b'\r' {
                end -= 1;
            }
        }
        if end < content_start {
            return Err(RlmiError::Framing("part without headers"));
        }
        parts.push(part(&body[content_start..end])?);
    }
    if !closed {
        return Err(RlmiError::Framing("no closing delimiter"));
    }
    Ok(parts)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One part: headers up to the empty line, then the body.
fn part(bytes: &[u8]) -> Result<Part<'_>, RlmiError> {
    let (head, body) = if bytes.starts_with(b"\r\n") {
        (&b""[..], &bytes[2..])
    } else if bytes.starts_with(b"\n") {
        (&b""[..], &bytes[1..])
    } else if let Some(at) = find(bytes, b"\r\n\r\n") {
        (&bytes[..at], &bytes[at + 4..])
    } else if let Some(at) = find(bytes, b"\n\n") {
        (&bytes[..at], &bytes[at + 2..])
    } else {
        return Err(RlmiError::Framing("part headers not ended"));
    };
    let head =
        std::str::from_utf8(head).map_err(|_| RlmiError::Framing("part headers not UTF-8"))?;
    let mut p = Part {
        content_id: None,
        content_type: None,
        body,
    };
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            return Err(RlmiError::Framing("part header without colon"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-id" => {
                p.content_id = Some(value.trim_start_matches('<').trim_end_matches('>'));
            }
            "content-type" => p.content_type = Some(value),
            _ => {}
        }
    }
    Ok(p)
}

/// Parses a resource-list NOTIFY body given its Content-Type.
pub fn parse_list_notify(content_type: &str, body: &[u8]) -> Result<ListNotification, RlmiError> {
    if media_type(content_type) != "multipart/related" {
        return Err(RlmiError::NotMultipart);
    }
    let boundary = header_param(content_type, "boundary").ok_or(RlmiError::NotMultipart)?;
    let parts = split_multipart(boundary, body)?;
    let start = header_param(content_type, "start").map(|s| s.trim_matches(['<', '>']));
    let is_rlmi = |p: &&Part<'_>| {
        p.content_type
            .is_some_and(|t| media_type(t) == RLMI_CONTENT_TYPE)
    };
    // The root is the `start` part, else the first (RFC 2387 section 3.2).
    let root = match start {
        Some(s) => parts.iter().find(|p| p.content_id == Some(s)),
        None => parts.first(),
    }
    .filter(is_rlmi)
    .or_else(|| parts.iter().find(is_rlmi))
    .ok_or(RlmiError::NoRlmi)?;
    let list = xml::parse(root.body, RLMI_LIMITS).map_err(RlmiError::Xml)?;
    if !list.is(RLMI_NS, "list") {
        return Err(RlmiError::NotRlmi);
    }
    let uri = list.attr("uri").ok_or(RlmiError::NotRlmi)?.to_owned();
    let version = list
        .attr("version")
        .and_then(|v| v.trim().parse().ok())
        .ok_or(RlmiError::NotRlmi)?;
    let full_state = list
        .attr("fullState")
        .is_some_and(|v| v.trim() == "true" || v.trim() == "1");
    let mut resources = Vec::new();
    for r in list.children_named(RLMI_NS, "resource") {
        resources.push(resource(r, &parts)?);
    }
    Ok(ListNotification {
        uri,
        version,
        full_state,
        resources,
    })
}

fn resource(r: &Element, parts: &[Part<'_>]) -> Result<ResourceState, RlmiError> {
    let uri = r.attr("uri").ok_or(RlmiError::NotRlmi)?.to_owned();
    let name = r.child(RLMI_NS, "name").map(Element::text);
    let Some(instance) = r.child(RLMI_NS, "instance") else {
        return Ok(ResourceState {
            uri,
            name,
            state: InstanceState::None,
            presence: None,
        });
    };
    let state = match instance.attr("state").map(str::trim) {
        Some("active") => InstanceState::Active,
        Some("pending") => InstanceState::Pending,
        Some("terminated") => InstanceState::Terminated(instance.attr("reason").map(str::to_owned)),
        _ => return Err(RlmiError::NotRlmi),
    };
    let part = instance
        .attr("cid")
        .and_then(|cid| parts.iter().find(|p| p.content_id == Some(cid)));
    let presence = match part {
        Some(p)
            if p.content_type
                .is_some_and(|t| media_type(t) == PIDF_CONTENT_TYPE) =>
        {
            Some(Presence::parse(p.body).map_err(RlmiError::Pidf)?)
        }
        _ => None,
    };
    Ok(ResourceState {
        uri,
        name,
        state,
        presence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pidf::Basic;

    pub(crate) fn sample() -> (String, Vec<u8>) {
        let ct =
            "multipart/related;type=\"application/rlmi+xml\";start=\"<r1@x>\";boundary=\"b-1\""
                .to_owned();
        let body = "--b-1\r\n\
Content-Transfer-Encoding: binary\r\n\
Content-ID: <r1@x>\r\n\
Content-Type: application/rlmi+xml;charset=\"UTF-8\"\r\n\
\r\n\
<?xml version=\"1.0\"?><list xmlns=\"urn:ietf:params:xml:ns:rlmi\" uri=\"sip:a-buddies@x\" version=\"3\" fullState=\"true\">\
<resource uri=\"sip:bob@x\"><name>Bob</name><instance id=\"i1\" state=\"active\" cid=\"p1@x\"/></resource>\
<resource uri=\"sip:carol@x\"><instance id=\"i2\" state=\"pending\"/></resource>\
<resource uri=\"sip:dave@x\"/></list>\r\n\
--b-1\r\n\
Content-ID: <p1@x>\r\n\
Content-Type: application/pidf+xml\r\n\
\r\n\
<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:bob@x\"><tuple id=\"t\"><status><basic>open</basic></status></tuple></presence>\r\n\
--b-1--\r\n"
            .as_bytes()
            .to_vec();
        (ct, body)
    }

    #[test]
    fn resources_with_their_parts() {
        let (ct, body) = sample();
        let n = parse_list_notify(&ct, &body).unwrap();
        assert_eq!(
            (n.uri.as_str(), n.version, n.full_state),
            ("sip:a-buddies@x", 3, true)
        );
        assert_eq!(n.resources.len(), 3);
        assert_eq!(n.resources[0].name.as_deref(), Some("Bob"));
        assert_eq!(n.resources[0].state, InstanceState::Active);
        assert_eq!(n.resources[0].presence.as_ref().unwrap().basic, Basic::Open);
        assert_eq!(n.resources[1].state, InstanceState::Pending);
        assert_eq!(n.resources[2].state, InstanceState::None);
    }

    #[test]
    fn framing_errors() {
        let (ct, body) = sample();
        assert_eq!(
            parse_list_notify("application/pidf+xml", &body),
            Err(RlmiError::NotMultipart)
        );
        assert_eq!(
            parse_list_notify("multipart/related", &body),
            Err(RlmiError::NotMultipart)
        );
        let cut = &body[..body.len() - 9];
        assert!(matches!(
            parse_list_notify(&ct, cut),
            Err(RlmiError::Framing(_))
        ));
        assert!(matches!(
            parse_list_notify("multipart/related;boundary=zz", &body),
            Err(RlmiError::Framing(_))
        ));
        let no_rlmi = String::from_utf8(body.clone())
            .unwrap()
            .replace("application/rlmi+xml", "text/plain");
        assert_eq!(
            parse_list_notify(&ct, no_rlmi.as_bytes()),
            Err(RlmiError::NoRlmi)
        );
        assert_eq!(
            header_param("a/b; x=1; boundary=\"q;r\"", "boundary"),
            Some("q;r")
        );
        assert_eq!(
            header_param("a/b;boundary=plain", "BOUNDARY"),
            Some("plain")
        );
        assert_eq!(header_param("a/b", "boundary"), None);
    }
}
