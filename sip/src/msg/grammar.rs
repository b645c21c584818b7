//! Hand-written RFC 3261 section 25 grammar pieces that ezk-sip-types gets wrong or lacks:
//! strict comma lists, parameters with LWS and case-insensitive names, quoted strings with
//! quoted-pairs, name-addr / addr-spec, Via and sent-by.
//!
//! Everything here works on already unfolded header values (the assembler replaced every
//! CRLF + WSP by a single SP, RFC 3261 section 7.3.1), returns `Err` on anything it does not
//! understand and never indexes peer input directly.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Host, MsgError, NameAddr, Param, Params, Uri, Via};

/// RFC 3261 section 25.1 `token` characters.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// A non-empty `token`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Linear white space after unfolding: SP and HTAB (CR/LF are tolerated for values built by
/// hand).
pub(crate) fn is_lws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

pub(crate) fn trim_lws(s: &str) -> &str {
    s.trim_matches(is_lws)
}

/// Reads a `quoted-string` at the start of `s` (which must begin with `"`), returning the
/// unescaped content and the rest after the closing quote. `quoted-pair` may escape any octet
/// except CR and LF (RFC 3261 section 25.1), which is how `\"` and `\\` appear in display names.
pub(crate) fn read_quoted(s: &str) -> Result<(String, &str), MsgError> {
    let mut chars = s.char_indices();
    if chars.next().map(|(_, c)| c) != Some('"') {
        return Err(MsgError::BadHeader("quoted-string expected"));
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, s.get(i + 1..).unwrap_or(""))),
            '\\' => match chars.next() {
                Some((_, '\r' | '\n')) | None => {
                    return Err(MsgError::BadHeader("bad quoted-pair"));
                }
                Some((_, escaped)) => out.push(escaped),
            },
            _ => out.push(c),
        }
    }
    Err(MsgError::BadHeader("unterminated quoted-string"))
}

/// Splits `value` at `sep` where the separator is outside quoted strings and `<...>`.
/// Elements are LWS-trimmed; an empty element or an unbalanced quote/bracket is an error, so a
/// list never silently loses its tail (sip-parser.md gap 6).
pub(crate) fn split_top_level(value: &str, sep: char) -> Result<Vec<&str>, MsgError> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    let mut in_angle = false;
    for (i, c) in value.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '<' if !in_angle => in_angle = true,
            '>' if in_angle => in_angle = false,
            c if c == sep && !in_angle => {
                parts.push(trim_lws(value.get(start..i).unwrap_or("")));
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if in_quotes || in_angle {
        return Err(MsgError::BadHeader("unbalanced quote or angle bracket"));
    }
    parts.push(trim_lws(value.get(start..).unwrap_or("")));
    if parts.iter().any(|p| p.is_empty()) {
        return Err(MsgError::BadHeader("empty list element"));
    }
    Ok(parts)
}

/// Parses `*( SEMI generic-param )`. `s` is either empty or starts (after LWS) with `;`.
/// LWS around `;` and `=` is allowed (RFC 3261 section 25.1 SEMI and EQUAL); the value may be a
/// token, a quoted string or an IPv6 reference (Via `received`), and is stored as written so
/// that quoted values such as `+sip.instance="<urn:...>"` print back unchanged.
pub(crate) fn parse_params(s: &str) -> Result<Params, MsgError> {
    let s = trim_lws(s);
    let mut params = Params::default();
    if s.is_empty() {
        return Ok(params);
    }
    let Some(rest) = s.strip_prefix(';') else {
        return Err(MsgError::BadHeader("junk before parameters"));
    };
    for part in split_top_level(rest, ';')? {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (trim_lws(n), Some(trim_lws(v))),
            None => (part, None),
        };
        if !is_token(name) {
            return Err(MsgError::BadHeader("bad parameter name"));
        }
        if let Some(v) = value {
            if !is_param_value(v) {
                return Err(MsgError::BadHeader("bad parameter value"));
            }
        }
        params.push(Param::raw(name, value));
    }
    Ok(params)
}

fn is_param_value(v: &str) -> bool {
    if v.starts_with('"') {
        return matches!(read_quoted(v), Ok((_, rest)) if rest.is_empty());
    }
    if let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().is_ok();
    }
    // Unbracketed IPv6 in `received` is common in the wild (RFC 5118 section 4.5 shows it).
    is_token(v) || v.parse::<Ipv6Addr>().is_ok()
}

/// Parses `host [ ":" port ]` (sent-by, RFC 3261 section 20.42) with IPv6 references.
pub(crate) fn parse_host_port(s: &str) -> Result<(Host, Option<u16>), MsgError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or(MsgError::BadHeader("unterminated IPv6 reference"))?;
        let addr = v6
            .parse::<Ipv6Addr>()
            .map_err(|_| MsgError::BadHeader("bad IPv6 address"))?;
        (Host::Ipv6(addr), after)
    } else {
        let end = s.find(':').unwrap_or(s.len());
        let name = s.get(..end).unwrap_or("");
        let after = s.get(end..).unwrap_or("");
        (parse_host_name(name)?, after)
    };
    let port = match port.strip_prefix(':') {
        None if port.is_empty() => None,
        None => return Err(MsgError::BadHeader("junk after host")),
        Some(p) => Some(parse_port(trim_lws(p))?),
    };
    Ok((host, port))
}

fn parse_port(p: &str) -> Result<u16, MsgError> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MsgError::BadHeader("bad port"));
    }
    p.parse()
        .map_err(|_| MsgError::BadHeader("port out of range"))
}

fn parse_host_name(name: &str) -> Result<Host, MsgError> {
    if let Ok(v4) = name.parse::<Ipv4Addr>() {
        return Ok(Host::Ipv4(v4));
    }
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(Host::Domain(name.to_ascii_lowercase()))
    } else {
        Err(MsgError::BadHeader("bad host"))
    }
}

/// Parses one `via-parm` (RFC 3261 section 20.42): `SIP / 2.0 / transport sent-by *params`.
pub(crate) fn parse_via(s: &str) -> Result<Via, MsgError> {
    let bad = || MsgError::BadHeader("bad Via");
    let mut rest = trim_lws(s);
    for expected in ["SIP", "/", "2.0", "/"] {
        rest = trim_lws(rest.strip_prefix(expected).ok_or_else(bad)?);
    }
    let transport_end = rest
        .find(|c: char| !c.is_ascii() || !is_token_byte(c as u8))
        .unwrap_or(rest.len());
    let transport = rest.get(..transport_end).unwrap_or("");
    if transport.is_empty() {
        return Err(bad());
    }
    rest = trim_lws(rest.get(transport_end..).unwrap_or(""));
    let sent_by_end = rest
        .find(|c: char| c == ';' || is_lws(c))
        .unwrap_or(rest.len());
    let (host, port) = parse_host_port(rest.get(..sent_by_end).unwrap_or(""))?;
    let params = parse_params(rest.get(sent_by_end..).unwrap_or(""))?;
    Ok(Via {
        transport: transport.to_ascii_uppercase(),
        host,
        port,
        params,
    })
}

/// Parses `(name-addr / addr-spec) *(SEMI param)` as used by From, To, Contact, Route and
/// Record-Route (RFC 3261 section 20.10). In the addr-spec form a `;` starts header
/// parameters, and `,`, `?` or `;`-bearing URIs are not allowed without `<>` (RFC 4475
/// section 3.1.2.13).
pub(crate) fn parse_name_addr(s: &str) -> Result<NameAddr, MsgError> {
    let s = trim_lws(s);
    let (display_name, after_display) = if s.starts_with('"') {
        let (name, rest) = read_quoted(s)?;
        let rest = trim_lws(rest);
        if !rest.starts_with('<') {
            return Err(MsgError::BadHeader("quoted display name without <URI>"));
        }
        (Some(name), rest)
    } else if let Some(lt) = s.find('<') {
        let name = trim_lws(s.get(..lt).unwrap_or(""));
        // Unquoted display names are `*(token LWS)`: RFC 4475 section 3.1.2.15 (`Bell, Alexander`).
        // Non-ASCII letters are let through: UAs send unquoted UTF-8 names and nothing in them
        // can be mistaken for a delimiter.
        let word_char = |c: char| !c.is_ascii() || is_token_byte(c as u8);
        if !name.split(is_lws).all(|w| w.chars().all(word_char)) {
            return Err(MsgError::BadHeader("display name is not a token list"));
        }
        let name = (!name.is_empty()).then(|| name.to_owned());
        (name, s.get(lt..).unwrap_or(""))
    } else {
        // addr-spec form.
        let end = s.find(';').unwrap_or(s.len());
        let uri_text = trim_lws(s.get(..end).unwrap_or(""));
        if uri_text.contains([',', '?', ' ', '\t']) {
            return Err(MsgError::BadHeader("addr-spec needs <> around this URI"));
        }
        let uri = Uri::parse(uri_text).map_err(|_| MsgError::BadHeader("bad URI"))?;
        let params = parse_params(s.get(end..).unwrap_or(""))?;
        return Ok(NameAddr {
            display_name: None,
            uri,
            params,
        });
    };
    let inner = after_display
        .strip_prefix('<')
        .ok_or(MsgError::BadHeader("< expected"))?;
    let (uri_text, rest) = inner
        .split_once('>')
        .ok_or(MsgError::BadHeader("unterminated <URI>"))?;
    // RFC 4475 section 3.1.2.14: LWS inside <> is not allowed.
    if uri_text.contains(is_lws) {
        return Err(MsgError::BadHeader("white space inside <URI>"));
    }
    let uri = Uri::parse(uri_text).map_err(|_| MsgError::BadHeader("bad URI"))?;
    let params = parse_params(rest)?;
    Ok(NameAddr {
        display_name,
        uri,
        params,
    })
}

/// Writes `s` as a quoted-string, escaping `"` and `\`.
pub(crate) fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

/// Parses `1*DIGIT` into a `u32`, rejecting signs, blanks and overflow.
pub(crate) fn parse_u32_digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
