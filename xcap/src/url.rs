//! XCAP roots and document URIs (RFC 4825 section 6): `<root>/<auid>/users/<xui>/<document>`.

use std::fmt;

use crate::XcapError;

/// Where a server is: one keep-alive connection per origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// `https://`.
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Origin {
    /// The `Host` field value (RFC 9110 section 7.2).
    pub fn host_field(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.host_field())
    }
}

/// An XCAP root (`http://xcap.example.test:8080/xcap-root`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct XcapRoot {
    /// The server.
    pub origin: Origin,
    /// The root's path without a trailing `/` (may be empty).
    pub path: String,
}

/// One document on a server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentUrl {
    /// The server.
    pub origin: Origin,
    /// The absolute, percent-encoded request target.
    pub path: String,
}

impl XcapRoot {
    /// Parses an `http://` or `https://` root with a host, an optional port and path, and no
    /// userinfo, query or fragment.
    pub fn parse(url: &str) -> Result<XcapRoot, XcapError> {
        let url = url.trim();
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(XcapError::BadUrl);
        };
        if rest.contains(['?', '#', '@', ' ']) {
            return Err(XcapError::BadUrl);
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(XcapError::BadUrl)?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| XcapError::BadUrl)?,
            None if tls => 443,
            None => 80,
        };
        if host.is_empty() || port == 0 {
            return Err(XcapError::BadUrl);
        }
        Ok(XcapRoot {
            origin: Origin {
                tls,
                host: host.to_ascii_lowercase(),
                port,
            },
            path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The document `<auid>/users/<xui>/<name>` (RFC 4825 section 6.2); the XUI is one
    /// path segment, percent-encoded where it holds characters a segment may not.
    pub fn user_document(&self, auid: &str, xui: &str, name: &str) -> DocumentUrl {
        DocumentUrl {
            origin: self.origin.clone(),
            path: format!(
                "{}/{}/users/{}/{}",
                self.path,
                encode_segment(auid),
                encode_segment(xui),
                encode_segment(name)
            ),
        }
    }
}

/// Percent-encodes what is not a `pchar` (RFC 3986 section 3.3).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_documents() {
        let r = XcapRoot::parse("http://127.0.0.1:5081/xcap-root/").unwrap();
        assert_eq!(r.origin.port, 5081);
        assert_eq!(
            r.user_document("resource-lists", "sip:alice@example.test", "index")
                .path,
            "/xcap-root/resource-lists/users/sip:alice@example.test/index"
        );
        assert_eq!(r.origin.host_field(), "127.0.0.1:5081");
        let r = XcapRoot::parse("https://[::1]/x").unwrap();
        assert_eq!(
            (r.origin.tls, r.origin.port, &r.origin.host[..]),
            (true, 443, "::1")
        );
        assert_eq!(r.origin.host_field(), "[::1]");
        assert_eq!(
            r.user_document("a", "sip:a b/c@x", "index").path,
            "/x/a/users/sip:a%20b%2Fc@x/index"
        );
        for bad in [
            "ftp://x",
            "http://",
            "http://:80/",
            "http://x:y/",
            "http://u@x/",
            "http://x/?q",
        ] {
            assert_eq!(XcapRoot::parse(bad), Err(XcapError::BadUrl), "{bad}");
        }
    }
}
