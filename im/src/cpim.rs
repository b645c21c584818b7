//! CPIM messages (RFC 3862, `message/cpim`): parsed once from bytes, asked questions after.
//!
//! A CPIM message is three parts: the message headers (`From`, `To`, `DateTime`, `NS`,
//! `Subject`, extension headers with a namespace prefix such as `imdn.Message-ID`), a blank
//! line, the encapsulated MIME headers (`Content-Type`, ...), a blank line, and the content.
//! [`Cpim::parse`] keeps the bytes it was given ([`Cpim::raw`]) and the content as a range of
//! them ([`Cpim::content`]), so the content is byte-exact whatever it is (UTF-8 text, HTML,
//! a PGP block) and MSRP can relay the message unchanged. Prefixed headers are resolved
//! through the `NS` headers (RFC 3862 section 5.1): `imdn.Message-ID` means the header
//! `Message-ID` of namespace `urn:ietf:params:imdn` whatever the prefix is called.
//!
//! [`CpimBuilder`] writes one. Lines end with CRLF; LF alone is accepted on input.

use std::fmt;

/// The IMDN namespace (RFC 5438 section 7.1.1).
pub const IMDN_NS: &str = "urn:ietf:params:imdn";

/// Largest CPIM message accepted (the SIP limit is 64 KiB; MSRP may carry more).
pub const MAX_CPIM_SIZE: usize = 1024 * 1024;
/// Most header lines in the two header blocks together.
pub const MAX_HEADERS: usize = 64;
/// Longest header line.
pub const MAX_HEADER_LINE: usize = 4096;

/// Why bytes are not a CPIM message. `Display` says what is wrong, for a SIP 400 reason
/// phrase or a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CpimError {
    /// More than [`MAX_CPIM_SIZE`] bytes.
    TooLarge,
    /// The message headers or the MIME headers do not end with a blank line.
    Truncated,
    /// A header block is not UTF-8.
    NotUtf8,
    /// More than [`MAX_HEADERS`] header lines.
    TooManyHeaders,
    /// A header line longer than [`MAX_HEADER_LINE`].
    LineTooLong,
    /// A header line without `Name: value`.
    BadHeaderLine,
    /// A header name that is not a token (or `prefix.token`).
    BadHeaderName,
    /// A header uses a namespace prefix no `NS` header declared (RFC 3862 section 5.1).
    UnknownPrefix(String),
    /// An `NS` header that is not `[prefix] <uri>`.
    BadNamespace,
    /// `From` or `To` is not `["Name"] <uri>`.
    BadAddress(&'static str),
    /// `From` is missing (mandatory, RFC 3862 section 3.2).
    MissingFrom,
    /// `To` is missing (mandatory, RFC 3862 section 3.2).
    MissingTo,
    /// A second `From` or `DateTime`.
    Duplicate(&'static str),
    /// `DateTime` is not an RFC 3339 date-time.
    BadDateTime,
    /// The encapsulated MIME headers have no `Content-Type`.
    MissingContentType,
}

impl fmt::Display for CpimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpimError::TooLarge => f.write_str("CPIM message too large"),
            CpimError::Truncated => f.write_str("CPIM headers not terminated by an empty line"),
            CpimError::NotUtf8 => f.write_str("CPIM headers are not UTF-8"),
            CpimError::TooManyHeaders => f.write_str("too many CPIM headers"),
            CpimError::LineTooLong => f.write_str("CPIM header line too long"),
            CpimError::BadHeaderLine => f.write_str("malformed CPIM header line"),
            CpimError::BadHeaderName => f.write_str("malformed CPIM header name"),
            CpimError::UnknownPrefix(p) => write!(f, "undeclared CPIM namespace prefix {p}"),
            CpimError::BadNamespace => f.write_str("malformed CPIM NS header"),
            CpimError::BadAddress(h) => write!(f, "malformed CPIM {h} header"),
            CpimError::MissingFrom => f.write_str("CPIM From header missing"),
            CpimError::MissingTo => f.write_str("CPIM To header missing"),
            CpimError::Duplicate(h) => write!(f, "duplicate CPIM {h} header"),
            CpimError::BadDateTime => f.write_str("malformed CPIM DateTime"),
            CpimError::MissingContentType => f.write_str("CPIM content without Content-Type"),
        }
    }
}

impl std::error::Error for CpimError {}

/// A CPIM `From`/`To` value: optional formal name and a URI (RFC 3862 section 3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpimAddress {
    /// The formal (display) name, unquoted.
    pub display_name: Option<String>,
    /// The URI between `<` and `>`, e.g. `sip:alice@example.com` or `im:alice@example.com`.
    pub uri: String,
}

impl CpimAddress {
    /// Parses `["Name"|Name words] <uri>`.
    pub fn parse(value: &str, header: &'static str) -> Result<CpimAddress, CpimError> {
        let bad = || CpimError::BadAddress(header);
        let value = value.trim();
        let open = value.rfind('<').ok_or_else(bad)?;
        let uri = value[open + 1..].strip_suffix('>').ok_or_else(bad)?.trim();
        // RFC 3862 section 3.3: a URI is RFC 3986 text, so no controls (a bare CR in it
        // would end the header line when the address is written again).
        if uri.is_empty()
            || uri.contains(['<', '>', ' ', '"'])
            || uri.chars().any(char::is_control)
            || !uri.contains(':')
        {
            return Err(bad());
        }
        let name = value[..open].trim();
        let display_name = if name.is_empty() {
            None
        } else if let Some(inner) = name.strip_prefix('"') {
            let inner = inner.strip_suffix('"').ok_or_else(bad)?;
            Some(unescape_quoted(inner).ok_or_else(bad)?)
        } else {
            if name.contains(['"', '<', '>']) {
                return Err(bad());
            }
            Some(name.to_owned())
        };
        if display_name
            .as_deref()
            .is_some_and(|n| n.chars().any(char::is_control))
        {
            return Err(bad());
        }
        Ok(CpimAddress {
            display_name: display_name.filter(|n| !n.is_empty()),
            uri: uri.to_owned(),
        })
    }
}

impl fmt::Display for CpimAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            write!(
                f,
                "\"{}\" ",
                name.replace('\\', "\\\\").replace('"', "\\\"")
            )?;
        }
        write!(f, "<{}>", self.uri)
    }
}

fn unescape_quoted(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// One header line as written: `prefix.Name: value` (prefix optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpimHeader {
    /// The namespace URI the prefix resolved to (`None`: the CPIM core namespace).
    pub namespace: Option<String>,
    /// The header name without prefix.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
}

/// A parsed CPIM message that keeps its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpim {
    raw: Vec<u8>,
    headers: Vec<CpimHeader>,
    mime_headers: Vec<(String, String)>,
    content_start: usize,
    from: CpimAddress,
    to: Vec<CpimAddress>,
    datetime: Option<String>,
}

impl Cpim {
    /// Parses `bytes` (the body of a `message/cpim` SIP MESSAGE or MSRP SEND), keeping them.
    pub fn parse(bytes: Vec<u8>) -> Result<Cpim, CpimError> {
        if bytes.len() > MAX_CPIM_SIZE {
            return Err(CpimError::TooLarge);
        }
        let mut count = 0;
        let (message_lines, after_message) = header_block(&bytes, 0, &mut count)?;
        let (mime_lines, content_start) = header_block(&bytes, after_message, &mut count)?;
        // RFC 3862 section 5.1: an NS header applies to the headers after it.
        let mut namespaces: Vec<(String, String)> = Vec::new();
        let mut headers = Vec::with_capacity(message_lines.len());
        for (name, value) in message_lines {
            let (prefix, bare) = match name.split_once('.') {
                Some((p, n)) => (Some(p), n),
                None => (None, name.as_str()),
            };
            if !is_token(bare) || prefix.is_some_and(|p| !is_token(p)) {
                return Err(CpimError::BadHeaderName);
            }
            let namespace = match prefix {
                None => None,
                Some(p) => Some(
                    namespaces
                        .iter()
                        .rev()
                        .find(|(q, _)| q == p)
                        .map(|(_, uri)| uri.clone())
                        .ok_or_else(|| CpimError::UnknownPrefix(p.to_owned()))?,
                ),
            };
            if namespace.is_none() && bare.eq_ignore_ascii_case("NS") {
                namespaces.push(parse_ns(&value)?);
            }
            headers.push(CpimHeader {
                namespace,
                name: bare.to_owned(),
                value,
            });
        }
        let core = |name: &'static str| {
            headers
                .iter()
                .filter(move |h| h.namespace.is_none() && h.name.eq_ignore_ascii_case(name))
        };
        let mut froms = core("From");
        let from = froms.next().ok_or(CpimError::MissingFrom)?;
        if froms.next().is_some() {
            return Err(CpimError::Duplicate("From"));
        }
        let from = CpimAddress::parse(&from.value, "From")?;
        let to = core("To")
            .map(|h| CpimAddress::parse(&h.value, "To"))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(CpimError::MissingTo);
        }
        let mut datetimes = core("DateTime");
        let datetime = datetimes.next().map(|h| h.value.clone());
        if datetimes.next().is_some() {
            return Err(CpimError::Duplicate("DateTime"));
        }
        if datetime.as_deref().is_some_and(|d| !is_rfc3339(d)) {
            return Err(CpimError::BadDateTime);
        }
        if !mime_lines
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
        {
            return Err(CpimError::MissingContentType);
        }
        Ok(Cpim {
            raw: bytes,
            headers,
            mime_headers: mime_lines,
            content_start,
            from,
            to,
            datetime,
        })
    }

    /// The bytes as received.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Gives the bytes back.
    pub fn into_raw(self) -> Vec<u8> {
        self.raw
    }

    /// The sender.
    pub fn from(&self) -> &CpimAddress {
        &self.from
    }

    /// The recipients (at least one).
    pub fn to(&self) -> &[CpimAddress] {
        &self.to
    }

    /// `DateTime` as written (validated RFC 3339).
    pub fn datetime(&self) -> Option<&str> {
        self.datetime.as_deref()
    }

    /// Every message header, in order, with its prefix resolved.
    pub fn headers(&self) -> &[CpimHeader] {
        &self.headers
    }

    /// The first value of header `name` in `namespace` (`None`: CPIM core headers).
    pub fn header(&self, namespace: Option<&str>, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.namespace.as_deref() == namespace && h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// `imdn.Message-ID` (RFC 5438 section 6.3).
    pub fn imdn_message_id(&self) -> Option<&str> {
        self.header(Some(IMDN_NS), "Message-ID")
    }

    /// `imdn.Disposition-Notification` values, lower-cased (RFC 5438 section 6.2):
    /// `positive-delivery`, `negative-delivery`, `display`, `processing`.
    pub fn disposition_notification(&self) -> Vec<String> {
        self.header(Some(IMDN_NS), "Disposition-Notification")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The encapsulated MIME headers (`Content-Type`, ...), as written.
    pub fn mime_headers(&self) -> &[(String, String)] {
        &self.mime_headers
    }

    /// The content's `Content-Type` value as written (parameters included).
    pub fn content_type(&self) -> &str {
        self.mime_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
            .map_or("", |(_, v)| v.as_str())
    }

    /// The content's media type without parameters, lower-cased (`text/plain`).
    pub fn media_type(&self) -> String {
        media_type(self.content_type())
    }

    /// The content, byte-exact.
    pub fn content(&self) -> &[u8] {
        self.raw.get(self.content_start..).unwrap_or(&[])
    }
}

/// `type/subtype` of a Content-Type value, lower-cased, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// `NS: [prefix] <uri>`.
fn parse_ns(value: &str) -> Result<(String, String), CpimError> {
    let value = value.trim();
    let open = value.find('<').ok_or(CpimError::BadNamespace)?;
    let uri = value[open + 1..]
        .strip_suffix('>')
        .ok_or(CpimError::BadNamespace)?;
    let prefix = value[..open].trim();
    if uri.is_empty() || uri.contains(['<', '>']) || (!prefix.is_empty() && !is_token(prefix)) {
        return Err(CpimError::BadNamespace);
    }
    Ok((prefix.to_owned(), uri.to_owned()))
}

/// One header block from `start`: its lines and where the next part starts.
fn header_block(
    bytes: &[u8],
    start: usize,
    count: &mut usize,
) -> Result<(Vec<(String, String)>, usize), CpimError> {
    let mut lines = Vec::new();
    let mut pos = start;
    loop {
        let rest = bytes.get(pos..).unwrap_or(&[]);
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(CpimError::Truncated)?;
        let line = &rest[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        if line.is_empty() {
            return Ok((lines, pos));
        }
        if line.len() > MAX_HEADER_LINE {
            return Err(CpimError::LineTooLong);
        }
        let line = std::str::from_utf8(line).map_err(|_| CpimError::NotUtf8)?;
        // RFC 3862 section 3.1 has no folding, but MIME headers may fold (RFC 5322 2.2.3).
        if line.starts_with([' ', '\t']) {
            let last: &mut (String, String) = lines.last_mut().ok_or(CpimError::BadHeaderLine)?;
            last.1.push(' ');
            last.1.push_str(line.trim());
            continue;
        }
        *count += 1;
        if *count > MAX_HEADERS {
            return Err(CpimError::TooManyHeaders);
        }
        let (name, value) = line.split_once(':').ok_or(CpimError::BadHeaderLine)?;
        let name = name.trim_end();
        if name.is_empty() || !name.split('.').all(is_token) {
            return Err(CpimError::BadHeaderName);
        }
        lines.push((name.to_owned(), value.trim().to_owned()));
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-!%*_+`'~".contains(&b))
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)` (`t`/`z` accepted).
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|d| d.len() == r.len() && d.iter().all(u8::is_ascii_digit))
    };
    let num =
        |r: std::ops::Range<usize>| -> u32 { s.get(r).and_then(|t| t.parse().ok()).unwrap_or(99) };
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !matches!(b[10], b'T' | b't' | b' ')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    if !(1..=12).contains(&num(5..7))
        || !(1..=31).contains(&num(8..10))
        || num(11..13) > 23
        || num(14..16) > 59
        || num(17..19) > 60
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            i + 6 == b.len()
                && digits(i + 1..i + 3)
                && b[i + 3] == b':'
                && digits(i + 4..i + 6)
                && num(i + 1..i + 3) <= 23
                && num(i + 4..i + 6) <= 59
        }
        _ => false,
    }
}

/// Writes a CPIM message (RFC 3862 section 3): `From`, `To`, `DateTime`, the IMDN
/// namespace and its headers when a message id is set, extra headers, then the MIME
/// headers and the content unchanged.
#[derive(Debug, Clone)]
pub struct CpimBuilder {
    from: CpimAddress,
    to: CpimAddress,
    datetime: Option<String>,
    message_id: Option<String>,
    disposition: Vec<String>,
    extra: Vec<(String, String)>,
    content_type: String,
    content: Vec<u8>,
}

impl CpimBuilder {
    /// A message from `from` to `to` carrying `content` of `content_type`.
    pub fn new(
        from: CpimAddress,
        to: CpimAddress,
        content_type: &str,
        content: Vec<u8>,
    ) -> CpimBuilder {
        CpimBuilder {
            from,
            to,
            datetime: None,
            message_id: None,
            disposition: Vec::new(),
            extra: Vec::new(),
            content_type: content_type.to_owned(),
            content,
        }
    }

    /// `DateTime` (RFC 3339; not checked here: [`is_rfc3339`]).
    pub fn datetime(mut self, datetime: &str) -> CpimBuilder {
        self.datetime = Some(datetime.to_owned());
        self
    }

    /// `imdn.Message-ID` (declares the IMDN namespace as prefix `imdn`).
    pub fn message_id(mut self, id: &str) -> CpimBuilder {
        self.message_id = Some(id.to_owned());
        self
    }

    /// `imdn.Disposition-Notification` values (e.g. `positive-delivery`, `display`).
    pub fn disposition_notification(mut self, values: &[&str]) -> CpimBuilder {
        self.disposition = values.iter().map(|v| (*v).to_owned()).collect();
        self
    }

    /// Another message header line, written as given (`name` may carry a declared prefix).
    pub fn header(mut self, name: &str, value: &str) -> CpimBuilder {
        self.extra.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The message's bytes. CR and LF in header values become spaces, so a value from a
    /// client cannot add header lines.
    pub fn build(self) -> Vec<u8> {
        let clean = |v: &str| v.replace(['\r', '\n'], " ");
        let mut head = String::with_capacity(256);
        head.push_str(&format!("From: {}\r\n", clean(&self.from.to_string())));
        head.push_str(&format!("To: {}\r\n", clean(&self.to.to_string())));
        if let Some(d) = &self.datetime {
            head.push_str(&format!("DateTime: {}\r\n", clean(d)));
        }
        if let Some(id) = &self.message_id {
            head.push_str(&format!("NS: imdn <{IMDN_NS}>\r\n"));
            head.push_str(&format!("imdn.Message-ID: {}\r\n", clean(id)));
            if !self.disposition.is_empty() {
                head.push_str(&format!(
                    "imdn.Disposition-Notification: {}\r\n",
                    clean(&self.disposition.join(", "))
                ));
            }
        }
        for (n, v) in &self.extra {
            head.push_str(&format!("{}: {}\r\n", clean(n), clean(v)));
        }
        head.push_str("\r\n");
        head.push_str(&format!("Content-Type: {}\r\n", clean(&self.content_type)));
        head.push_str(&format!("Content-Length: {}\r\n\r\n", self.content.len()));
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.content);
        out
    }
}

#[cfg(test)]
mod tests;
