//! Writing frames (RFC 4975 section 7.1).

use std::io::Write as _;

use super::{Continuation, Headers, Method};
use crate::uri::{format_path, MsrpUri};

/// The body of a request and its type.
#[derive(Debug, Clone, Copy)]
pub struct Body<'a> {
    /// `Content-Type`.
    pub content_type: &'a str,
    /// The bytes (one chunk).
    pub bytes: &'a [u8],
}

/// A request frame. `headers.content_type` is ignored: the body's type is written last,
/// before the body, as RFC 4975 section 7.1 orders it.
pub fn write_request(
    transaction_id: &str,
    method: &Method,
    headers: &Headers,
    body: Option<Body<'_>>,
    flag: Continuation,
) -> Vec<u8> {
    let body_len = body.map_or(0, |b| b.bytes.len() + b.content_type.len() + 20);
    let mut out = Vec::with_capacity(256 + body_len);
    let _ = write!(out, "MSRP {transaction_id} {}\r\n", method.as_str());
    headers.write_to(&mut out);
    if let Some(b) = body {
        let _ = write!(out, "Content-Type: {}\r\n\r\n", b.content_type);
        out.extend_from_slice(b.bytes);
        out.extend_from_slice(b"\r\n");
    }
    end_line(&mut out, transaction_id, flag);
    out
}

/// A transaction response: hop by hop, so To-Path names only the previous hop (RFC 4975
/// section 7.2).
pub fn write_response(
    transaction_id: &str,
    code: u16,
    comment: &str,
    to: &MsrpUri,
    from: &MsrpUri,
    extra: &Headers,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let _ = write!(out, "MSRP {transaction_id} {code:03}");
    if !comment.is_empty() {
        let _ = write!(out, " {comment}");
    }
    let _ = write!(
        out,
        "\r\nTo-Path: {}\r\nFrom-Path: {}\r\n",
        format_path(std::slice::from_ref(to)),
        format_path(std::slice::from_ref(from))
    );
    extra.write_to(&mut out);
    end_line(&mut out, transaction_id, Continuation::Complete);
    out
}

fn end_line(out: &mut Vec<u8>, transaction_id: &str, flag: Continuation) {
    out.extend_from_slice(b"-------");
    out.extend_from_slice(transaction_id.as_bytes());
    out.push(flag.as_byte());
    out.extend_from_slice(b"\r\n");
}
