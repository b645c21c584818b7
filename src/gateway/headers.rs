//! SIP header fields between sylkRTC and SIP: the `headers` a client asks to add to its
//! INVITE, 200 or re-INVITE (names checked, the ones the stack owns refused), and the
//! incoming ones an account asked to see (`incoming_header_prefixes`, SylkServer's feature).

use sip::msg::Headers;

use super::GatewayError;
use crate::sylkrtc::request::ExtraHeader;

/// Header fields the SIP stack writes itself (RFC 3261 sections 8.1.1 and 20, plus what
/// RFC 3262, 3311, 3515, 3891 and 4028 make it write): a client may not add or override
/// them. Compact forms are refused too.
const STACK_OWNED: &[&str] = &[
    "Via",
    "v",
    "From",
    "f",
    "To",
    "t",
    "Call-ID",
    "i",
    "CSeq",
    "Max-Forwards",
    "Contact",
    "m",
    "Route",
    "Record-Route",
    "Content-Type",
    "c",
    "Content-Length",
    "l",
    "Content-Encoding",
    "e",
    "Content-Disposition",
    "Content-Language",
    "Authorization",
    "Proxy-Authorization",
    "WWW-Authenticate",
    "Proxy-Authenticate",
    "Allow",
    "Supported",
    "k",
    "Require",
    "Proxy-Require",
    "RSeq",
    "RAck",
    "Session-Expires",
    "x",
    "Min-SE",
    "Refer-To",
    "r",
    "Referred-By",
    "b",
    "Replaces",
    "Event",
    "o",
    "Subscription-State",
    "Expires",
];

/// The longest header value accepted from a client.
const MAX_VALUE_LEN: usize = 1024;

/// At most this many headers per request.
const MAX_HEADERS: usize = 32;

/// RFC 3261 section 25.1 `token` characters.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// The client's `headers`, checked: names are RFC 3261 tokens and not [`STACK_OWNED`],
/// values one line of printable text.
pub(super) fn client_headers(
    headers: &[ExtraHeader],
) -> Result<Vec<(String, String)>, GatewayError> {
    if headers.len() > MAX_HEADERS {
        return Err(GatewayError::TooManyHeaders(MAX_HEADERS));
    }
    let mut out = Vec::with_capacity(headers.len());
    for h in headers {
        let name = h.name.trim();
        if !is_token(name) {
            return Err(GatewayError::InvalidHeader(h.name.clone()));
        }
        if STACK_OWNED.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            return Err(GatewayError::HeaderNotAllowed(name.to_owned()));
        }
        let value = h.value.trim();
        if value.len() > MAX_VALUE_LEN || value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(GatewayError::InvalidHeader(h.name.clone()));
        }
        out.push((name.to_owned(), value.to_owned()));
    }
    Ok(out)
}

/// The header fields of `headers` whose names start with one of `prefixes` (case
/// insensitively, as SIP header names compare), in order.
pub(super) fn matching(headers: &Headers, prefixes: &[String]) -> Vec<(String, String)> {
    if prefixes.is_empty() {
        return Vec::new();
    }
    headers
        .iter()
        .filter(|h| {
            prefixes.iter().any(|p| {
                h.name
                    .get(..p.len())
                    .is_some_and(|start| start.eq_ignore_ascii_case(p))
            })
        })
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> ExtraHeader {
        ExtraHeader {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn client_headers_refuse_what_the_stack_owns_and_bad_names() {
        assert_eq!(
            client_headers(&[h("X-Room", " 42 ")]).unwrap(),
            [("X-Room".to_owned(), "42".to_owned())]
        );
        for owned in ["Via", "call-id", "CSeq", "Contact", "Content-Type", "k"] {
            let e = client_headers(&[h(owned, "x")]).unwrap_err();
            assert!(matches!(e, GatewayError::HeaderNotAllowed(_)), "{owned}");
        }
        assert!(matches!(
            client_headers(&[h("X Bad", "x")]).unwrap_err(),
            GatewayError::InvalidHeader(_)
        ));
        assert!(matches!(
            client_headers(&[h("X-Evil", "a\r\nVia: x")]).unwrap_err(),
            GatewayError::InvalidHeader(_)
        ));
    }
}
