//! SIP addresses-of-record as sylkRTC carries them: bare `user@domain`.
//!
//! SylkServer accepts an optional `sip:`/`sips:` prefix and echoes the normalised bare form
//! (spec section 4.3); sylkrtc.js keys its account map by that exact string.

use std::fmt;

/// A validated, normalised `user@domain`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aor {
    text: String,
    at: usize,
}

/// Why a string is not an AOR; its Display is SylkServer's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidAor(pub String);

impl fmt::Display for InvalidAor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid SIP URI: {}", self.0)
    }
}

impl std::error::Error for InvalidAor {}

impl Aor {
    /// Parses `user@domain`, `sip:user@domain` or `sips:user@domain` (scheme case-insensitive).
    ///
    /// The user part takes the RFC 3261 section 25.1 `user` characters (unreserved,
    /// `%` escapes and user-unreserved); the domain is a hostname, an IPv4 address or a
    /// bracketed IPv6 reference, optionally with a port. URI parameters and headers are not
    /// part of an AOR and are refused.
    pub fn parse(input: &str) -> Result<Aor, InvalidAor> {
        let bad = || InvalidAor(input.to_owned());
        let s = input.trim();
        let lower_prefix = |p: &str| {
            s.get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p))
        };
        let bare = if lower_prefix("sips:") {
            &s[5..]
        } else if lower_prefix("sip:") {
            &s[4..]
        } else {
            s
        };
        let at = bare.rfind('@').ok_or_else(bad)?;
        let (user, domain) = (&bare[..at], &bare[at + 1..]);
        if user.is_empty() || !user.bytes().all(is_user_char) || !valid_hostport(domain) {
            return Err(bad());
        }
        Ok(Aor {
            text: format!("{user}@{}", domain.to_ascii_lowercase()),
            at,
        })
    }

    /// The normalised `user@domain`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The user part.
    pub fn user(&self) -> &str {
        &self.text[..self.at]
    }

    /// The domain (host with optional port), lower-cased.
    pub fn domain(&self) -> &str {
        &self.text[self.at + 1..]
    }

    /// The host of the domain without a port (IPv6 keeps its brackets).
    pub fn host(&self) -> &str {
        let d = self.domain();
        if d.starts_with('[') {
            d.find(']').map_or(d, |end| &d[..=end])
        } else {
            d.split(':').next().unwrap_or(d)
        }
    }
}

impl fmt::Display for Aor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// RFC 3261 section 25.1: `user = 1*( unreserved / escaped / user-unreserved )`.
fn is_user_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()%&=+$,;?/".contains(&b)
}

fn valid_hostport(s: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((addr, tail)) = rest.split_once(']') else {
            return false;
        };
        let port = match tail {
            "" => None,
            t => match t.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        (addr.parse::<std::net::Ipv6Addr>().is_ok(), port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (valid_hostname(h), Some(p)),
            None => (valid_hostname(s), None),
        }
    };
    host_ok && port.is_none_or(|p| p.len() <= 5 && p.parse::<u16>().is_ok_and(|n| n != 0))
}

/// Hostname or IPv4 address: dot-separated labels of letters, digits and inner hyphens.
fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_prefixes_and_domain_case() {
        for input in [
            "alice@Example.com",
            "sip:alice@example.com",
            "SIPS:alice@EXAMPLE.com",
        ] {
            let a = Aor::parse(input).unwrap();
            assert_eq!(a.as_str(), "alice@example.com");
            assert_eq!(a.user(), "alice");
            assert_eq!(a.domain(), "example.com");
        }
        let a = Aor::parse("+31-20%20x@[2001:db8::1]:5070").unwrap();
        assert_eq!(a.domain(), "[2001:db8::1]:5070");
        assert_eq!(a.host(), "[2001:db8::1]");
        assert_eq!(
            Aor::parse("bob@127.0.0.1:5060").unwrap().host(),
            "127.0.0.1"
        );
    }

    #[test]
    fn refuses_what_is_not_user_at_domain() {
        for input in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "al ice@example.com",
            "alice@exa mple.com",
            "alice@-bad.com",
            "alice@example.com;transport=tcp",
            "alice@[::1",
            "alice@[nothex]",
            "alice@example.com:0",
            "alice@example.com:99999",
            "alice@example.com:",
            "sip:",
        ] {
            let e = Aor::parse(input).unwrap_err();
            assert_eq!(e.to_string(), format!("invalid SIP URI: {input}"));
        }
    }
}
