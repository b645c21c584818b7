//! The bounded SDP parser and the serializer (RFC 8866 section 5): forgiving about what
//! peers really send, bounded in every dimension.

use std::fmt::Write as _;

use super::media_section::MediaSection;
use super::model::{
    Attribute, Connection, MediaType, Origin, MAX_ATTRIBUTES_PER_LEVEL, MAX_FORMATS_PER_MEDIA,
    MAX_LINE_LEN, MAX_MEDIA_SECTIONS, MAX_SDP_LEN,
};
use super::session::SessionDescription;
use super::SdpError;

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
    let kind = MediaType::parse(f.next().ok_or(bad.clone())?);
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
