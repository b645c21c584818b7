//! The SIP message facade: the only module that touches a SIP parser (ezk-sip-types, pinned
//! `=0.6.5`, used for sip/sips URIs and header-name resolution).
//!
//! [`parse`] turns bytes into a validated [`SipMessage`] once, at the boundary: size limit,
//! start line, Content-Length policy (RFC 3261 section 18.3), mandatory headers, CSeq method,
//! strict Via/Contact/Route lists. Engines above only ever see validated types. A rejected
//! message comes back as a [`Rejection`] that says whether to answer (400/416/505) or drop,
//! and can build the answer.
//!
//! Why our own grammar for lists, parameters and name-addrs (see `design/sip-parser.md`):
//! ezk stops silently at the first bad list element, compares parameter names
//! case-sensitively, rejects `\"` in display names, maps `Contact: *` to an empty list and
//! percent-encodes quoted parameter values when printing. Header values are therefore kept
//! as written and parsed by `grammar`, and printing uses the stored text.

mod build;
pub(crate) mod grammar;
mod types;

#[cfg(test)]
mod mutation;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod torture;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ezk_sip_types::Name;

pub use build::{RequestBuilder, ResponseBuilder};
pub use types::{CSeq, Contacts, Host, Method, NameAddr, Param, Params, Uri, UriKind, Via};

/// Largest message accepted, head and body (issue 3: 64 KiB).
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// How the bytes arrived, which decides the Content-Length policy (RFC 3261 section 18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// UDP: Content-Length optional (body = rest of datagram), body cut to it, short body is an
    /// error.
    Datagram,
    /// TCP/TLS/WS: Content-Length required; `sip::framing` hands over exactly one message.
    Stream,
}

/// Why a message was rejected. Each variant documents what to do with it; see
/// [`MsgError::disposition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MsgError {
    /// Larger than [`MAX_MESSAGE_SIZE`]: drop (on a stream, close the connection).
    TooLarge,
    /// No blank line ends the head, or no start line at all: drop.
    Truncated,
    /// The head is not UTF-8: 400 for requests, drop responses.
    NotUtf8,
    /// Malformed request line (extra SP, `<URI>`, trailing blanks): 400.
    BadRequestLine,
    /// Malformed status line or status code outside 100..=699: drop (responses are never
    /// answered).
    BadStatusLine,
    /// A well-formed `SIP/x.y` other than 2.0: 505 (RFC 3261 section 21.5.6; RFC 4475 section
    /// 3.1.2.16).
    VersionNotSupported,
    /// Request-URI scheme is not sip, sips or tel: 416 (RFC 3261 section 8.2.2.1).
    UnsupportedUriScheme,
    /// A URI that does not parse: 400.
    BadUri,
    /// Request-URI carries `?headers` (RFC 4475 section 3.1.2.11): 400.
    HeadersInRequestUri,
    /// A header line or value that does not parse; the text says which rule: 400.
    BadHeader(&'static str),
    /// A mandatory header is missing (RFC 3261 section 8.1.1): 400.
    MissingHeader(&'static str),
    /// A single-valued header appears more than once: 400.
    DuplicateHeader(&'static str),
    /// CSeq is not `number method` or the number is 2**31 or more: 400.
    BadCSeq,
    /// The CSeq method differs from the request method (RFC 4475 section 3.1.2.17): 400.
    CSeqMethodMismatch,
    /// Max-Forwards is not a number in 0..=255: 400.
    BadMaxForwards,
    /// Content-Length is not a non-negative number, or copies disagree: 400.
    BadContentLength,
    /// Content-Length missing on a stream transport (RFC 3261 section 18.3): 400, then close.
    MissingContentLength,
    /// Content-Length larger than the datagram (RFC 3261 section 18.3): 400.
    BodyTooShort,
}

/// What the transport should do with a rejected message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Answer statelessly with this status and reason phrase.
    Reply {
        /// Status code (400, 416 or 505).
        status: u16,
        /// Reason phrase.
        reason: String,
    },
    /// Discard silently.
    Drop,
}

impl MsgError {
    /// What to do with a message that failed with this error; `is_request` tells whether its
    /// start line looked like a request (responses are never answered, RFC 3261 section 18.1.2).
    pub fn disposition(&self, is_request: bool) -> Disposition {
        let reply = |status: u16, reason: String| Disposition::Reply { status, reason };
        match self {
            MsgError::TooLarge | MsgError::Truncated | MsgError::BadStatusLine => Disposition::Drop,
            _ if !is_request => Disposition::Drop,
            MsgError::VersionNotSupported => reply(505, "Version Not Supported".into()),
            MsgError::UnsupportedUriScheme => reply(416, "Unsupported URI Scheme".into()),
            other => reply(400, format!("Bad Request ({other})")),
        }
    }
}

impl fmt::Display for MsgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MsgError::TooLarge => f.write_str("message too large"),
            MsgError::Truncated => f.write_str("truncated message"),
            MsgError::NotUtf8 => f.write_str("head is not UTF-8"),
            MsgError::BadRequestLine => f.write_str("malformed request line"),
            MsgError::BadStatusLine => f.write_str("malformed status line"),
            MsgError::VersionNotSupported => f.write_str("SIP version not supported"),
            MsgError::UnsupportedUriScheme => f.write_str("unsupported URI scheme"),
            MsgError::BadUri => f.write_str("malformed URI"),
            MsgError::HeadersInRequestUri => f.write_str("headers in Request-URI"),
            MsgError::BadHeader(what) => write!(f, "malformed header: {what}"),
            MsgError::MissingHeader(name) => write!(f, "missing {name}"),
            MsgError::DuplicateHeader(name) => write!(f, "duplicate {name}"),
            MsgError::BadCSeq => f.write_str("malformed CSeq"),
            MsgError::CSeqMethodMismatch => f.write_str("CSeq method mismatch"),
            MsgError::BadMaxForwards => f.write_str("malformed Max-Forwards"),
            MsgError::BadContentLength => f.write_str("malformed Content-Length"),
            MsgError::MissingContentLength => f.write_str("missing Content-Length"),
            MsgError::BodyTooShort => f.write_str("body shorter than Content-Length"),
        }
    }
}

impl std::error::Error for MsgError {}

/// A message that failed validation, with enough of it kept to answer statelessly.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// Why.
    pub error: MsgError,
    is_request: bool,
    /// The raw Via/From/To/Call-ID/CSeq fields, if the head could be split into fields.
    headers: Headers,
}

impl Rejection {
    /// Answer (status + reason) or drop.
    pub fn disposition(&self) -> Disposition {
        self.error.disposition(self.is_request)
    }

    /// The stateless error response, when the disposition is `Reply` and the request carried
    /// Via, From, To, Call-ID and CSeq (RFC 3261 section 8.2.6.2 copies them). `to_tag` is added
    /// when To has none; the caller supplies it because the facade owns no randomness.
    pub fn reply(&self, to_tag: &str) -> Option<SipResponse> {
        self.reply_builder(to_tag, true)?.build().ok()
    }

    /// The stateless error response as bytes, for requests that lack some of the headers a
    /// response copies: RFC 3261 section 8.2 (and 16.3 for proxies) wants a 400 for a request
    /// missing From, To, Call-ID or CSeq, or with one that does not parse, and the reason
    /// phrase names the defect. Such a response cannot be a validated [`SipResponse`]: it
    /// carries what the request had. Only the Via is required (it routes the response, section
    /// 18.2.2); without one the request is dropped.
    pub fn reply_bytes(&self, to_tag: &str) -> Option<Vec<u8>> {
        Some(self.reply_builder(to_tag, false)?.to_bytes())
    }

    fn reply_builder(&self, to_tag: &str, complete: bool) -> Option<ResponseBuilder> {
        let Disposition::Reply { status, reason } = self.disposition() else {
            return None;
        };
        let mut builder = ResponseBuilder::new(status, &reason);
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            let mut found = false;
            for value in self.headers.get_all(name) {
                found = true;
                let value = if name == "To" {
                    add_to_tag(value, to_tag)
                } else {
                    value.to_owned()
                };
                builder = builder.header(name, &value);
            }
            if !found && (complete || name == "Via") {
                return None;
            }
        }
        Some(builder)
    }
}

/// Adds `;tag=` to a raw To value that parses and has none; anything else is copied as is.
fn add_to_tag(to: &str, tag: &str) -> String {
    match NameAddr::parse(to) {
        Ok(addr) if addr.tag().is_none() => format!("{to};tag={tag}"),
        _ => to.to_owned(),
    }
}

/// One header field as received (name canonicalised, value unfolded and trimmed). `Debug`
/// hides credentials (architecture.md: never log Authorization values).
#[derive(Clone, PartialEq, Eq)]
pub struct HeaderField {
    /// Canonical name: compact forms expanded (`v` -> `Via`), known names in their RFC
    /// spelling, unknown names as written.
    pub name: String,
    /// The value as written, after unfolding.
    pub value: String,
}

impl fmt::Debug for HeaderField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = ["Authorization", "Proxy-Authorization"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&self.name));
        let value: &str = if secret { "<redacted>" } else { &self.value };
        write!(f, "{}: {:?}", self.name, value)
    }
}

/// All header fields in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<HeaderField>);

impl Headers {
    /// The first value of `name` (case-insensitive, canonical or compact name).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    /// Every value of `name` in order (one per header line; comma lists are not split).
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = canonical_name(name);
        self.0
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(&name))
            .map(|h| h.value.as_str())
    }

    /// Iterates over all fields.
    pub fn iter(&self) -> impl Iterator<Item = &HeaderField> {
        self.0.iter()
    }

    fn push(&mut self, name: &str, value: &str) {
        self.0.push(HeaderField {
            name: canonical_name(name),
            value: value.to_owned(),
        });
    }
}

/// Expands compact forms and normalises the case of known names (RFC 3261 section 7.3.3).
fn canonical_name(name: &str) -> String {
    // ezk's name table knows every IANA compact form; unknown names come back as written.
    Name::from(name.to_owned()).as_print_str().to_owned()
}

/// Validated fields every request and response carries.
#[derive(Debug, Clone)]
struct Head {
    headers: Headers,
    vias: Vec<Via>,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    cseq: CSeq,
    contacts: Contacts,
    route: Vec<NameAddr>,
    record_route: Vec<NameAddr>,
    body: Vec<u8>,
}

/// Accessors shared by [`SipRequest`] and [`SipResponse`].
macro_rules! head_accessors {
    () => {
        /// All header fields as received.
        pub fn headers(&self) -> &Headers {
            &self.head.headers
        }
        /// Every Via value, top first, across all Via lines.
        pub fn vias(&self) -> &[Via] {
            &self.head.vias
        }
        /// The top Via (always present in a validated message).
        pub fn top_via(&self) -> Option<&Via> {
            self.head.vias.first()
        }
        /// From.
        pub fn from(&self) -> &NameAddr {
            &self.head.from
        }
        /// To.
        pub fn to(&self) -> &NameAddr {
            &self.head.to
        }
        /// Call-ID.
        pub fn call_id(&self) -> &str {
            &self.head.call_id
        }
        /// CSeq.
        pub fn cseq(&self) -> &CSeq {
            &self.head.cseq
        }
        /// Contact header fields.
        pub fn contacts(&self) -> &Contacts {
            &self.head.contacts
        }
        /// Route values in order.
        pub fn route(&self) -> &[NameAddr] {
            &self.head.route
        }
        /// Record-Route values in order.
        pub fn record_route(&self) -> &[NameAddr] {
            &self.head.record_route
        }
        /// Expires as delta-seconds; `None` if absent or not a valid 32-bit number (RFC 4475
        /// section 3.1.2.4 lets an invalid value be treated as absent).
        pub fn expires(&self) -> Option<u32> {
            self.header("Expires")
                .and_then(|v| grammar::parse_u32_digits(grammar::trim_lws(v)))
        }
        /// The first value of a header by name (any case, compact forms too).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.head.headers.get(name)
        }
        /// Content-Type, if any.
        pub fn content_type(&self) -> Option<&str> {
            self.header("Content-Type")
        }
        /// The body, already cut to Content-Length.
        pub fn body(&self) -> &[u8] {
            &self.head.body
        }
        /// Serialises the message; Content-Length is always computed from the body.
        pub fn to_bytes(&self) -> Vec<u8> {
            build::print(&self.start_line(), &self.head.headers, &self.head.body)
        }
    };
}

/// A validated request.
#[derive(Debug, Clone)]
pub struct SipRequest {
    method: Method,
    uri: Uri,
    max_forwards: u32,
    head: Head,
}

impl SipRequest {
    head_accessors!();

    /// The method, exact (unknown methods are [`Method::Extension`]).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The Request-URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Max-Forwards (mandatory in requests, 0..=255).
    pub fn max_forwards(&self) -> u32 {
        self.max_forwards
    }

    /// Records where the request really came from in its top Via, so that responses built from
    /// it route back correctly: `received` when sent-by is not the source address (RFC 3261
    /// section 18.2.1), and `rport=<port>` plus `received` when the client asked with a bare
    /// `rport` (RFC 3581 section 4). Call once, on arrival, before the transaction layer.
    pub fn stamp_source(&mut self, source: SocketAddr) {
        let Some(top) = self.head.vias.first_mut() else {
            return;
        };
        let wants_rport = matches!(top.rport(), Some(None));
        let same_host = match (&top.host, source.ip()) {
            (Host::Ipv4(a), IpAddr::V4(b)) => *a == b,
            (Host::Ipv6(a), IpAddr::V6(b)) => *a == b,
            _ => false,
        };
        if same_host && !wants_rport {
            return;
        }
        top.params.remove("received");
        // RFC 3261 section 25.1: received carries IPv4address / IPv6address, no brackets.
        top.params
            .push(Param::raw("received", Some(&source.ip().to_string())));
        if wants_rport {
            top.params.remove("rport");
            top.params
                .push(Param::raw("rport", Some(&source.port().to_string())));
        }
        let stamped = top.to_string();
        // Rewrite the first element of the first Via line, keeping any further hops on it.
        if let Some(field) = self.head.headers.0.iter_mut().find(|h| h.name == "Via") {
            let rest = grammar::split_top_level(&field.value, ',')
                .map(|parts| parts.into_iter().skip(1).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            field.value = if rest.is_empty() {
                stamped
            } else {
                format!("{stamped}, {rest}")
            };
        }
    }

    fn start_line(&self) -> String {
        format!("{} {} SIP/2.0", self.method, self.uri)
    }
}

/// A validated response.
#[derive(Debug, Clone)]
pub struct SipResponse {
    status: u16,
    reason: String,
    head: Head,
}

impl SipResponse {
    head_accessors!();

    /// Status code, 100..=699.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Reason phrase (may be empty).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// WWW-Authenticate challenges of a 401, one raw value per header line (RFC 8760 allows
    /// several); `sip::auth` parses them.
    pub fn www_authenticate(&self) -> impl Iterator<Item = &str> {
        self.head.headers.get_all("WWW-Authenticate")
    }

    /// Proxy-Authenticate challenges of a 407.
    pub fn proxy_authenticate(&self) -> impl Iterator<Item = &str> {
        self.head.headers.get_all("Proxy-Authenticate")
    }

    /// Min-Expires of a 423 (RFC 3261 section 10.3 step 7).
    pub fn min_expires(&self) -> Option<u32> {
        self.header("Min-Expires")
            .and_then(|v| grammar::parse_u32_digits(grammar::trim_lws(v)))
    }

    fn start_line(&self) -> String {
        if self.reason.is_empty() {
            format!("SIP/2.0 {} ", self.status)
        } else {
            format!("SIP/2.0 {} {}", self.status, self.reason)
        }
    }
}

/// Two messages are equal when they serialise to the same bytes (events carrying messages
/// are compared in tests).
impl PartialEq for SipRequest {
    fn eq(&self, other: &Self) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

impl Eq for SipRequest {}

/// As for requests: equal when they serialise to the same bytes.
impl PartialEq for SipResponse {
    fn eq(&self, other: &Self) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

impl Eq for SipResponse {}

/// A validated request or response.
#[derive(Debug, Clone)]
pub enum SipMessage {
    /// A request.
    Request(SipRequest),
    /// A response.
    Response(SipResponse),
}

impl SipMessage {
    /// Serialises the message.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            SipMessage::Request(r) => r.to_bytes(),
            SipMessage::Response(r) => r.to_bytes(),
        }
    }
}

enum StartLine {
    Request { method: Method, uri: Uri },
    Response { status: u16, reason: String },
}

/// Parses and validates one message. On datagrams the body is cut to Content-Length and
/// trailing octets are ignored (RFC 4475 section 3.1.1.8); on streams Content-Length is
/// required. Leading CRLFs are skipped (RFC 3261 section 7.5).
pub fn parse(bytes: &[u8], framing: Framing) -> Result<SipMessage, Rejection> {
    let reject = |error, is_request, headers| Rejection {
        error,
        is_request,
        headers,
    };
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(reject(MsgError::TooLarge, false, Headers::default()));
    }
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    let bytes = bytes.get(start..).unwrap_or(&[]);
    let is_request = !bytes.starts_with(b"SIP/");
    let Some((head_len, body_start)) = find_head_end(bytes) else {
        return Err(reject(MsgError::Truncated, is_request, Headers::default()));
    };
    let head = bytes.get(..head_len).unwrap_or(&[]);
    let rest = bytes.get(body_start..).unwrap_or(&[]);
    let Ok(head) = std::str::from_utf8(head) else {
        return Err(reject(MsgError::NotUtf8, is_request, Headers::default()));
    };
    let (start_line, headers) = match split_head(head) {
        Ok(parts) => parts,
        Err(e) => return Err(reject(e, is_request, Headers::default())),
    };
    match validate(start_line, &headers, rest, framing, is_request) {
        Ok(msg) => Ok(msg),
        Err(e) => Err(reject(e, is_request, headers)),
    }
}

/// Returns (end of head, start of body): the head ends at the first empty line (CRLF CRLF, or
/// bare LF LF which some peers send).
fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut line_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        let line = bytes.get(line_start..i).unwrap_or(&[]);
        if line.is_empty() || line == b"\r" {
            return Some((line_start, i + 1));
        }
        line_start = i + 1;
    }
    None
}

/// Splits the head into the start line and unfolded header fields (RFC 3261 section 7.3.1).
fn split_head(head: &str) -> Result<(&str, Headers), MsgError> {
    // The head slice ends with the last header's line terminator.
    let head = head.strip_suffix('\n').unwrap_or(head);
    let head = head.strip_suffix('\r').unwrap_or(head);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().ok_or(MsgError::Truncated)?;
    let mut fields: Vec<(&str, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = fields
                .last_mut()
                .ok_or(MsgError::BadHeader("continuation line without header"))?;
            last.1.push(' ');
            last.1.push_str(grammar::trim_lws(line));
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(MsgError::BadHeader("header line without colon"))?;
        let name = name.trim_end_matches([' ', '\t']);
        if !grammar::is_token(name) {
            return Err(MsgError::BadHeader("bad header name"));
        }
        fields.push((name, grammar::trim_lws(value).to_owned()));
    }
    let mut headers = Headers::default();
    for (name, value) in fields {
        headers.push(name, grammar::trim_lws(&value));
    }
    Ok((start_line, headers))
}

fn parse_start_line(line: &str, is_request: bool) -> Result<StartLine, MsgError> {
    if !is_request {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 section 7.2).
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let code = parts.next().unwrap_or("");
        let reason = parts.next().unwrap_or("");
        if version != "SIP/2.0" || code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MsgError::BadStatusLine);
        }
        let status: u16 = code.parse().map_err(|_| MsgError::BadStatusLine)?;
        if !(100..=699).contains(&status) {
            return Err(MsgError::BadStatusLine);
        }
        return Ok(StartLine::Response {
            status,
            reason: reason.to_owned(),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly single spaces
    // (RFC 4475 sections 3.1.2.8 to 3.1.2.10 are rejected).
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(MsgError::BadRequestLine);
    };
    if version != "SIP/2.0" {
        let well_formed = version.strip_prefix("SIP/").is_some_and(|v| {
            v.split_once('.').is_some_and(|(a, b)| {
                grammar::parse_u32_digits(a).is_some() && grammar::parse_u32_digits(b).is_some()
            })
        });
        return Err(if well_formed {
            MsgError::VersionNotSupported
        } else {
            MsgError::BadRequestLine
        });
    }
    let method = Method::from_token(method).ok_or(MsgError::BadRequestLine)?;
    let uri = Uri::parse(uri)?;
    match uri.kind() {
        UriKind::Sip { has_headers, .. } if *has_headers => {
            return Err(MsgError::HeadersInRequestUri);
        }
        UriKind::Other { .. } => return Err(MsgError::UnsupportedUriScheme),
        _ => {}
    }
    Ok(StartLine::Request { method, uri })
}

fn single<'a>(headers: &'a Headers, name: &'static str) -> Result<Option<&'a str>, MsgError> {
    let mut values = headers.get_all(name);
    let first = values.next();
    if values.next().is_some() {
        return Err(MsgError::DuplicateHeader(name));
    }
    Ok(first)
}

fn required<'a>(headers: &'a Headers, name: &'static str) -> Result<&'a str, MsgError> {
    single(headers, name)?.ok_or(MsgError::MissingHeader(name))
}

fn name_addr_list(headers: &Headers, name: &str) -> Result<Vec<NameAddr>, MsgError> {
    let mut out = Vec::new();
    for value in headers.get_all(name) {
        for item in grammar::split_top_level(value, ',')? {
            out.push(NameAddr::parse(item)?);
        }
    }
    Ok(out)
}

fn validate(
    start_line: &str,
    headers: &Headers,
    rest: &[u8],
    framing: Framing,
    is_request: bool,
) -> Result<SipMessage, MsgError> {
    let start = parse_start_line(start_line, is_request)?;

    let mut vias = Vec::new();
    for value in headers.get_all("Via") {
        for item in grammar::split_top_level(value, ',')? {
            vias.push(Via::parse(item)?);
        }
    }
    if vias.is_empty() {
        return Err(MsgError::MissingHeader("Via"));
    }
    let from = NameAddr::parse(required(headers, "From")?)?;
    let to = NameAddr::parse(required(headers, "To")?)?;
    let call_id = required(headers, "Call-ID")?;
    if call_id.is_empty() || call_id.contains(grammar::is_lws) {
        return Err(MsgError::BadHeader("Call-ID"));
    }
    let cseq = CSeq::parse(required(headers, "CSeq")?)?;

    let contact_values: Vec<&str> = headers.get_all("Contact").collect();
    let contacts = match contact_values.as_slice() {
        [] => Contacts::None,
        // RFC 3261 section 20.10: `*` stands alone.
        [star] if grammar::trim_lws(star) == "*" => Contacts::Star,
        _ => Contacts::List(name_addr_list(headers, "Contact")?),
    };
    let route = name_addr_list(headers, "Route")?;
    let record_route = name_addr_list(headers, "Record-Route")?;

    let mut content_length = None;
    for value in headers.get_all("Content-Length") {
        let n = grammar::parse_u32_digits(grammar::trim_lws(value))
            .ok_or(MsgError::BadContentLength)?;
        if content_length.is_some_and(|prev| prev != n) {
            return Err(MsgError::BadContentLength);
        }
        content_length = Some(n);
    }
    let body = match (content_length, framing) {
        (None, Framing::Stream) => return Err(MsgError::MissingContentLength),
        (None, Framing::Datagram) => rest,
        (Some(n), _) => {
            let n = usize::try_from(n).map_err(|_| MsgError::BadContentLength)?;
            rest.get(..n).ok_or(MsgError::BodyTooShort)?
        }
    };

    let head = Head {
        headers: headers.clone(),
        vias,
        from,
        to,
        call_id: call_id.to_owned(),
        cseq,
        contacts,
        route,
        record_route,
        body: body.to_vec(),
    };
    match start {
        StartLine::Request { method, uri } => {
            let max_forwards = required(headers, "Max-Forwards")?;
            let max_forwards = grammar::parse_u32_digits(grammar::trim_lws(max_forwards))
                .filter(|n| *n <= 255)
                .ok_or(MsgError::BadMaxForwards)?;
            if head.cseq.method != method {
                return Err(MsgError::CSeqMethodMismatch);
            }
            Ok(SipMessage::Request(SipRequest {
                method,
                uri,
                max_forwards,
                head,
            }))
        }
        StartLine::Response { status, reason } => Ok(SipMessage::Response(SipResponse {
            status,
            reason,
            head,
        })),
    }
}
