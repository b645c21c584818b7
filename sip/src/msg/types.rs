//! The facade's own value types: methods, URIs, hosts, parameters, name-addrs, Via, CSeq.
//! sip/sips URIs are parsed by ezk-sip-types (IPv6 references, escapes, `?headers` work there);
//! nothing of ezk leaks out of this file.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ezk_sip_types::host::Host as EzkHost;
use ezk_sip_types::uri::{SipUri as EzkSipUri, SipUriUserPart};

use super::grammar;
use super::MsgError;

/// A SIP request method (RFC 3261 section 7.1 and extensions), matched exactly: methods are
/// case-sensitive, so `invite` and `INVITEX` are extension methods, not INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// REGISTER (RFC 3261).
    Register,
    /// OPTIONS (RFC 3261).
    Options,
    /// INFO (RFC 6086).
    Info,
    /// UPDATE (RFC 3311).
    Update,
    /// PRACK (RFC 3262).
    Prack,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// REFER (RFC 3515).
    Refer,
    /// MESSAGE (RFC 3428).
    Message,
    /// PUBLISH (RFC 3903).
    Publish,
    /// Any other token; the UA answers such requests with 501 (RFC 3261 section 8.2.1).
    Extension(String),
}

impl Method {
    /// Maps a method token exactly; `None` if `token` is not an RFC 3261 `token`.
    pub fn from_token(token: &str) -> Option<Method> {
        Some(match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other if grammar::is_token(other) => Method::Extension(other.to_owned()),
            _ => return None,
        })
    }

    /// The method token as it goes on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(token) => token,
        }
    }

    /// True for methods this stack does not know; the UA answers them 501.
    pub fn is_extension(&self) -> bool {
        matches!(self, Method::Extension(_))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host: domain name (lower-cased), IPv4 or IPv6 address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name, lower-cased (host names compare case-insensitively, RFC 3261 19.1.4).
    Domain(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (printed as an IPv6 reference in brackets).
    Ipv6(Ipv6Addr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// One `generic-param`. The value is kept as written (a quoted value keeps its quotes) so that
/// printing never re-encodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    name: String,
    value: Option<String>,
}

impl Param {
    /// A parameter whose value is printed exactly as given (token, or an already quoted string).
    pub fn raw(name: &str, value: Option<&str>) -> Param {
        Param {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        }
    }

    /// A parameter whose value is printed as a quoted-string, e.g. RFC 5626
    /// `+sip.instance="<urn:uuid:...>"`.
    pub fn quoted(name: &str, value: &str) -> Param {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        Param {
            name: name.to_owned(),
            value: Some(format!("\"{escaped}\"")),
        }
    }

    /// The name as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value as written (quotes included), `None` for a flag parameter.
    pub fn raw_value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// The value with quotes removed and quoted-pairs unescaped.
    pub fn value(&self) -> Option<String> {
        let v = self.value.as_deref()?;
        if v.starts_with('"') {
            grammar::read_quoted(v).ok().map(|(s, _)| s)
        } else {
            Some(v.to_owned())
        }
    }
}

/// An ordered parameter list with case-insensitive lookup by name (RFC 3261 section 7.3.1:
/// parameter names are case-insensitive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<Param>);

impl Params {
    /// Appends a parameter.
    pub fn push(&mut self, param: Param) {
        self.0.push(param);
    }

    /// The first parameter called `name` (any case).
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.0.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The unquoted value of `name`; `None` if absent or a flag.
    pub fn value(&self, name: &str) -> Option<String> {
        self.get(name).and_then(Param::value)
    }

    /// True if `name` is present, with or without a value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Removes every parameter called `name` (any case).
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
    }

    /// Iterates in order.
    pub fn iter(&self) -> impl Iterator<Item = &Param> {
        self.0.iter()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            write!(f, ";{}", p.name)?;
            if let Some(v) = &p.value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

/// The scheme-specific view of a [`Uri`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriKind {
    /// `sip:` or `sips:` (RFC 3261 section 19.1).
    Sip {
        /// True for `sips:`.
        secure: bool,
        /// The user part, percent-decoded.
        user: Option<String>,
        /// The host.
        host: Host,
        /// The port, if given.
        port: Option<u16>,
        /// URI parameters (`;transport=tcp;lr`), values percent-decoded.
        params: Params,
        /// True if the URI carries `?headers` (not allowed in a Request-URI).
        has_headers: bool,
    },
    /// `tel:` (RFC 3966), kept as the subscriber number plus parameters.
    Tel {
        /// The number as written (`+1-201-555-0123` or a local number).
        number: String,
        /// Parameters after the number.
        params: Params,
    },
    /// Any other absolute URI, only its scheme is known (lower-cased).
    Other {
        /// The scheme.
        scheme: String,
    },
}

/// A URI as written plus its parsed view. Printing uses the original text, so nothing is
/// re-encoded on the way through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    text: String,
    kind: UriKind,
}

impl Uri {
    /// Parses an absolute URI; sip/sips are fully validated, tel: loosely, other schemes only
    /// for `scheme ":" non-blank`.
    pub fn parse(text: &str) -> Result<Uri, MsgError> {
        let bad = MsgError::BadUri;
        let (scheme, rest) = text.split_once(':').ok_or(bad)?;
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok || rest.is_empty() || text.contains(grammar::is_lws) {
            return Err(bad);
        }
        let scheme = scheme.to_ascii_lowercase();
        let kind = match scheme.as_str() {
            "sip" | "sips" => parse_sip_uri(text)?,
            "tel" => {
                let end = rest.find(';').unwrap_or(rest.len());
                let number = rest.get(..end).unwrap_or("");
                let number_ok = !number.is_empty()
                    && number
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b"+-.()*#".contains(&b));
                if !number_ok {
                    return Err(bad);
                }
                UriKind::Tel {
                    number: number.to_owned(),
                    params: grammar::parse_params(rest.get(end..).unwrap_or(""))
                        .map_err(|_| bad)?,
                }
            }
            _ => UriKind::Other { scheme },
        };
        Ok(Uri {
            text: text.to_owned(),
            kind,
        })
    }

    /// The parsed view.
    pub fn kind(&self) -> &UriKind {
        &self.kind
    }

    /// The URI as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True for sip: and sips:.
    pub fn is_sip(&self) -> bool {
        matches!(self.kind, UriKind::Sip { .. })
    }

    /// The host of a sip/sips URI.
    pub fn host(&self) -> Option<&Host> {
        match &self.kind {
            UriKind::Sip { host, .. } => Some(host),
            _ => None,
        }
    }

    /// The port of a sip/sips URI, if given.
    pub fn port(&self) -> Option<u16> {
        match &self.kind {
            UriKind::Sip { port, .. } => *port,
            _ => None,
        }
    }

    /// The percent-decoded user of a sip/sips URI.
    pub fn user(&self) -> Option<&str> {
        match &self.kind {
            UriKind::Sip { user, .. } => user.as_deref(),
            _ => None,
        }
    }

    /// A URI parameter (case-insensitive name) of a sip/sips or tel URI.
    pub fn param(&self, name: &str) -> Option<&Param> {
        match &self.kind {
            UriKind::Sip { params, .. } | UriKind::Tel { params, .. } => params.get(name),
            UriKind::Other { .. } => None,
        }
    }
}

impl FromStr for Uri {
    type Err = MsgError;
    fn from_str(s: &str) -> Result<Uri, MsgError> {
        Uri::parse(s)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_sip_uri(text: &str) -> Result<UriKind, MsgError> {
    // ezk-sip-types matches the scheme case-sensitively; normalise it (RFC 3261 19.1.4).
    let normalised;
    let text = match text.split_once(':') {
        Some((scheme, rest)) if scheme != scheme.to_ascii_lowercase() => {
            normalised = format!("{}:{rest}", scheme.to_ascii_lowercase());
            normalised.as_str()
        }
        _ => text,
    };
    let uri = EzkSipUri::from_str(text).map_err(|_| MsgError::BadUri)?;
    let host = match &uri.host_port.host {
        EzkHost::IP4(a) => Host::Ipv4(*a),
        EzkHost::IP6(a) => Host::Ipv6(*a),
        EzkHost::Name(n) => Host::Domain(n.to_ascii_lowercase()),
    };
    let user = match &uri.user_part {
        SipUriUserPart::Empty => None,
        SipUriUserPart::User(u) => Some(u.to_string()),
        SipUriUserPart::UserPw(up) => Some(up.user.to_string()),
    };
    // ezk validated the whole URI but does not expose its parameter list; re-read it from the
    // text. The user part cannot contain an unescaped `@` and neither can uri-parameters or
    // headers (RFC 3261 section 25.1), so the host part starts after the last `@`.
    let after_user = text.rsplit_once('@').map_or(text, |(_, h)| h);
    let host_part = after_user.split_once('?').map_or(after_user, |(h, _)| h);
    let mut params = Params::default();
    if let Some((_, list)) = host_part.split_once(';') {
        for item in list.split(';').filter(|i| !i.is_empty()) {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n, Some(percent_decode(v))),
                None => (item, None),
            };
            params.push(Param::raw(&percent_decode(name), value.as_deref()));
        }
    }
    Ok(UriKind::Sip {
        secure: uri.sips,
        user,
        host,
        port: uri.host_port.port,
        params,
        // A `?` in the user part (RFC 4475 section 3.1.1.2) is not a header separator.
        has_headers: after_user.contains('?'),
    })
}

/// Decodes `%XX` escapes; malformed escapes are kept literally.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `[display-name] <URI> *(;param)` (From, To, Contact, Route, Record-Route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted and unescaped.
    pub display_name: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q`, `+sip.instance`, `reg-id`, ...).
    pub params: Params,
}

impl NameAddr {
    /// A name-addr without display name or parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display_name: None,
            uri,
            params: Params::default(),
        }
    }

    /// Parses one name-addr / addr-spec with parameters.
    pub fn parse(text: &str) -> Result<NameAddr, MsgError> {
        grammar::parse_name_addr(text)
    }

    /// Adds a parameter (builder style).
    pub fn with_param(mut self, param: Param) -> NameAddr {
        self.params.push(param);
        self
    }

    /// The `tag` parameter (From/To, RFC 3261 section 19.3).
    pub fn tag(&self) -> Option<String> {
        self.params.value("tag")
    }

    /// The `expires` parameter of a Contact (RFC 3261 section 10.2.1.1); `None` if absent or
    /// not a valid delta-seconds.
    pub fn expires(&self) -> Option<u32> {
        self.params
            .value("expires")
            .and_then(|v| grammar::parse_u32_digits(&v))
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            grammar::write_quoted(f, name)?;
            f.write_str(" ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// One Via value (RFC 3261 section 20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper-cased (`UDP`, `TCP`, `TLS`, `WS`, ...).
    pub transport: String,
    /// sent-by host.
    pub host: Host,
    /// sent-by port, if given.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`, ...).
    pub params: Params,
}

impl Via {
    /// A Via with a branch, as a client transaction sends it (RFC 3261 section 8.1.1.7).
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::default();
        params.push(Param::raw("branch", Some(branch)));
        Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        }
    }

    /// Parses one via-parm.
    pub fn parse(text: &str) -> Result<Via, MsgError> {
        grammar::parse_via(text)
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<String> {
        self.params.value("branch")
    }

    /// sent-by as `host[:port]` text, for transaction matching (RFC 3261 section 17.2.3).
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }

    /// The `received` parameter (RFC 3261 section 18.2.1).
    pub fn received(&self) -> Option<String> {
        self.params.value("received")
    }

    /// `rport` (RFC 3581): `None` if absent, `Some(None)` if present without a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        let p = self.params.get("rport")?;
        Some(p.value().and_then(|v| v.parse().ok()))
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// CSeq (RFC 3261 section 20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number, less than 2**31.
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(text: &str) -> Result<CSeq, MsgError> {
        let text = grammar::trim_lws(text);
        let split = text.find(grammar::is_lws).ok_or(MsgError::BadCSeq)?;
        let number = text.get(..split).unwrap_or("");
        let method = grammar::trim_lws(text.get(split..).unwrap_or(""));
        let seq = grammar::parse_u32_digits(number).ok_or(MsgError::BadCSeq)?;
        // RFC 3261 section 8.1.1.5: the sequence number MUST be less than 2**31.
        if seq >= 1 << 31 {
            return Err(MsgError::BadCSeq);
        }
        let method = Method::from_token(method).ok_or(MsgError::BadCSeq)?;
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// The Contact header field(s) of a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Contacts {
    /// No Contact header.
    #[default]
    None,
    /// `Contact: *` (REGISTER "remove all bindings", RFC 3261 section 10.2.2).
    Star,
    /// One or more contacts, across all Contact header lines, in order.
    List(Vec<NameAddr>),
}

impl Contacts {
    /// The contacts as a slice (empty for `None` and `Star`).
    pub fn as_slice(&self) -> &[NameAddr] {
        match self {
            Contacts::List(v) => v,
            Contacts::None | Contacts::Star => &[],
        }
    }
}
