//! MSRP URIs (RFC 4975 section 9): `msrp://host:port/session-id;tcp`, `msrps://...` for TLS.
//!
//! Parsed once into [`MsrpUri`]; compared the RFC 4975 section 6.1 way (scheme, host and
//! transport case-insensitively, port with its default, session id exactly, userinfo
//! ignored) by [`MsrpUri::same_as`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The port an MSRP URI without one means (RFC 4975 section 15.5, IANA).
pub const DEFAULT_PORT: u16 = 2855;
/// Longest URI accepted: relay URIs carry session ids of a few dozen characters.
pub const MAX_URI_LEN: usize = 512;

/// Why a URI does not parse; no variant carries peer bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriError {
    /// Longer than [`MAX_URI_LEN`].
    TooLong,
    /// Not `msrp://` or `msrps://`.
    Scheme,
    /// The host is missing or not a host name, IPv4 address or bracketed IPv6 address.
    Host,
    /// The port is not a number from 1 to 65535.
    Port,
    /// The session id has characters RFC 4975 does not allow.
    SessionId,
    /// No `;transport` parameter, or a bad one.
    Transport,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UriError::TooLong => "MSRP URI too long",
            UriError::Scheme => "MSRP URI scheme is not msrp or msrps",
            UriError::Host => "bad host in MSRP URI",
            UriError::Port => "bad port in MSRP URI",
            UriError::SessionId => "bad session id in MSRP URI",
            UriError::Transport => "missing or bad transport in MSRP URI",
        })
    }
}

impl std::error::Error for UriError {}

/// One MSRP URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsrpUri {
    /// `msrps` (TLS).
    pub secure: bool,
    /// `userinfo@`, if any (never compared).
    pub user: Option<String>,
    /// Host as written (IPv6 without brackets).
    pub host: String,
    /// Port; `None` means [`DEFAULT_PORT`].
    pub port: Option<u16>,
    /// Session id; relay URIs used for AUTH have none.
    pub session_id: Option<String>,
    /// Transport (`tcp`), lower case.
    pub transport: String,
    /// Further `;name[=value]` parameters as written.
    pub params: Vec<String>,
}

impl MsrpUri {
    /// A URI for a session of ours at `addr`.
    pub fn new(secure: bool, addr: SocketAddr, session_id: &str) -> MsrpUri {
        MsrpUri {
            secure,
            user: None,
            host: addr.ip().to_string(),
            port: Some(addr.port()),
            session_id: Some(session_id.to_owned()),
            transport: "tcp".to_owned(),
            params: Vec::new(),
        }
    }

    /// Parses one URI.
    pub fn parse(s: &str) -> Result<MsrpUri, UriError> {
        if s.len() > MAX_URI_LEN {
            return Err(UriError::TooLong);
        }
        let (secure, rest) = if let Some(r) = strip_prefix_ci(s, "msrps://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(s, "msrp://") {
            (false, r)
        } else {
            return Err(UriError::Scheme);
        };
        let (before_params, params) = rest.split_once(';').ok_or(UriError::Transport)?;
        let (authority, session_id) = match before_params.split_once('/') {
            Some((a, id)) => (a, Some(id)),
            None => (before_params, None),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, hp)) => (Some(u.to_owned()), hp),
            None => (None, authority),
        };
        let (host, port) = split_hostport(hostport)?;
        let session_id = match session_id {
            Some(id) if !id.is_empty() && id.bytes().all(is_session_id_char) => Some(id.to_owned()),
            Some(_) => return Err(UriError::SessionId),
            None => None,
        };
        let mut params = params.split(';');
        let transport = params.next().unwrap_or("");
        if transport.is_empty() || !transport.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(UriError::Transport);
        }
        Ok(MsrpUri {
            secure,
            user,
            host,
            port,
            session_id,
            transport: transport.to_ascii_lowercase(),
            params: params.map(str::to_owned).collect(),
        })
    }

    /// Parses a space-separated list (To-Path, From-Path, Use-Path, `a=path`); at most `max`.
    pub fn parse_list(s: &str, max: usize) -> Result<Vec<MsrpUri>, UriError> {
        // Exactly as many as there are (a path is usually one or two URIs): a growing Vec
        // would keep room for four, 0.5 KiB held by every session's path.
        let n = s.split_ascii_whitespace().count().min(max);
        let mut out = Vec::with_capacity(n);
        for part in s.split_ascii_whitespace() {
            if out.len() == max {
                return Err(UriError::TooLong);
            }
            out.push(MsrpUri::parse(part)?);
        }
        if out.is_empty() {
            return Err(UriError::Host);
        }
        Ok(out)
    }

    /// The port, with the default applied.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_PORT)
    }

    /// The socket address when the host is an IP address (names are not resolved here).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port_or_default()))
    }

    /// RFC 4975 section 6.1 equality: scheme, host (case-insensitive), port (default
    /// applied), session id (exactly) and transport (case-insensitive); userinfo and other
    /// parameters do not count.
    pub fn same_as(&self, other: &MsrpUri) -> bool {
        self.secure == other.secure
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.port_or_default() == other.port_or_default()
            && self.session_id == other.session_id
            && self.transport.eq_ignore_ascii_case(&other.transport)
    }
}

impl fmt::Display for MsrpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "msrps://" } else { "msrp://" })?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(id) = &self.session_id {
            write!(f, "/{id}")?;
        }
        write!(f, ";{}", self.transport)?;
        for p in &self.params {
            write!(f, ";{p}")?;
        }
        Ok(())
    }
}

/// Writes a path list as headers and `a=path` carry it: URIs separated by one space.
pub fn format_path(path: &[MsrpUri]) -> String {
    let mut out = String::new();
    for (i, uri) in path.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&uri.to_string());
    }
    out
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// RFC 4975 section 9: `session-id = 1*( unreserved / "+" / "=" / "/" )`; `%` escapes are
/// unreserved-adjacent and kept as written.
fn is_session_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'=' | b'/' | b'%')
}

fn split_hostport(s: &str) -> Result<(String, Option<u16>), UriError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(UriError::Host)?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UriError::Host);
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(UriError::Port)?),
        };
        (v6.to_owned(), port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (s.to_owned(), None),
        }
    };
    let valid_name = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    if !valid_name {
        return Err(UriError::Host);
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(UriError::Port),
        },
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_rfc_examples() {
        let u = MsrpUri::parse("msrp://atlanta.example.com:7654/jshA7weztas;tcp").unwrap();
        assert!(!u.secure);
        assert_eq!(u.host, "atlanta.example.com");
        assert_eq!(u.port, Some(7654));
        assert_eq!(u.session_id.as_deref(), Some("jshA7weztas"));
        assert_eq!(u.transport, "tcp");
        assert_eq!(
            u.to_string(),
            "msrp://atlanta.example.com:7654/jshA7weztas;tcp"
        );
        let relay = MsrpUri::parse("msrps://bob@relay.example.net;tcp").unwrap();
        assert!(relay.secure && relay.session_id.is_none());
        assert_eq!(relay.port_or_default(), DEFAULT_PORT);
        let v6 = MsrpUri::parse("msrp://[::1]:2855/a+b=c;tcp;x=y").unwrap();
        assert_eq!(v6.socket_addr(), Some("[::1]:2855".parse().unwrap()));
        assert_eq!(v6.to_string(), "msrp://[::1]:2855/a+b=c;tcp;x=y");
    }

    #[test]
    fn compares_as_rfc_4975_section_6_1_says() {
        let a = MsrpUri::parse("MSRP://Host.Example:2855/ABC;TCP").unwrap();
        let b = MsrpUri::parse("msrp://user@host.example/ABC;tcp").unwrap();
        let c = MsrpUri::parse("msrp://host.example/abc;tcp").unwrap();
        assert!(a.same_as(&b));
        assert!(!a.same_as(&c), "session ids are case-sensitive");
    }

    #[test]
    fn refuses_what_is_not_an_msrp_uri() {
        for bad in [
            "sip:a@b",
            "msrp://h/s",
            "msrp://:1/s;tcp",
            "msrp://h:0/s;tcp",
            "msrp://h:99999/s;tcp",
            "msrp://h/s s;tcp",
            "msrp://h/;tcp",
            "msrp://[zz]/s;tcp",
            "msrp://h/s;",
            "msrp://h\u{e9}/s;tcp",
        ] {
            assert!(MsrpUri::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(MsrpUri::parse_list("", 4), Err(UriError::Host));
        let list = "msrp://a/1;tcp msrp://b/2;tcp msrp://c/3;tcp";
        assert_eq!(MsrpUri::parse_list(list, 2), Err(UriError::TooLong));
        assert_eq!(format_path(&MsrpUri::parse_list(list, 3).unwrap()), list);
    }
}
