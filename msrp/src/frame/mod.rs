//! MSRP frames (RFC 4975 section 7): their typed heads ([`FrameHead`], [`Headers`]), the
//! streaming reader ([`FrameReader`]) and the writer ([`write_request`], [`write_response`]).
//!
//! A frame is a start line, headers, an optional body and the end-line
//! `-------<transaction-id><flag>`, whose flag says whether the message is complete (`$`),
//! continues in another chunk (`+`) or was aborted (`#`). The reader streams bodies out in
//! pieces as they arrive, so a message of any size never sits twice in memory; heads are
//! bounded by [`FrameLimits`].

mod headers;
mod parse;
mod write;

use std::fmt;

pub use headers::{ByteRange, FailureReport, Headers, Status};
pub use parse::{FrameReader, Parsed};
pub use write::{write_request, write_response, Body};

use crate::uri::UriError;

/// Longest transaction id RFC 4975 allows (`ident = ALPHANUM 3*31ident-char`).
pub const MAX_TRANSACTION_ID: usize = 32;
/// Most URIs in one To-Path, From-Path or Use-Path (an endpoint and a few relays).
pub const MAX_PATH: usize = 8;
/// Most header lines in one frame (a SEND has about eight).
pub const MAX_HEADERS: usize = 32;

/// Bounds of the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest start line plus headers, in bytes.
    pub max_head: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_head: 16 * 1024,
        }
    }
}

/// An MSRP method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `SEND`: a chunk of a message (RFC 4975 section 7.1.1).
    Send,
    /// `REPORT`: an end-to-end delivery report (RFC 4975 section 7.1.2).
    Report,
    /// `AUTH`: authentication to a relay (RFC 4976 section 5).
    Auth,
    /// Any other method (answered 501).
    Other(String),
}

impl Method {
    fn parse(s: &str) -> Method {
        match s {
            "SEND" => Method::Send,
            "REPORT" => Method::Report,
            "AUTH" => Method::Auth,
            other => Method::Other(other.to_owned()),
        }
    }

    /// The token on the start line.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Send => "SEND",
            Method::Report => "REPORT",
            Method::Auth => "AUTH",
            Method::Other(s) => s,
        }
    }
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameKind {
    /// A request.
    Request(Method),
    /// A transaction response.
    Response {
        /// Status code (200, 4xx, ...).
        code: u16,
        /// The comment after the code, if any.
        comment: Option<String>,
    },
}

/// The end-line's flag (RFC 4975 section 7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuation {
    /// `$`: the last chunk of the message.
    Complete,
    /// `+`: more chunks follow.
    More,
    /// `#`: the sender abandoned the message.
    Aborted,
}

impl Continuation {
    fn from_byte(b: u8) -> Option<Continuation> {
        match b {
            b'$' => Some(Continuation::Complete),
            b'+' => Some(Continuation::More),
            b'#' => Some(Continuation::Aborted),
            _ => None,
        }
    }

    fn as_byte(self) -> u8 {
        match self {
            Continuation::Complete => b'$',
            Continuation::More => b'+',
            Continuation::Aborted => b'#',
        }
    }
}

/// A parsed start line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameHead {
    /// The transaction id.
    pub transaction_id: String,
    /// Request or response.
    pub kind: FrameKind,
    /// The headers.
    pub headers: Headers,
    /// Whether a body follows (a blank line ended the headers).
    pub has_body: bool,
}

impl FrameHead {
    /// The method of a request.
    pub fn method(&self) -> Option<&Method> {
        match &self.kind {
            FrameKind::Request(m) => Some(m),
            FrameKind::Response { .. } => None,
        }
    }
}

/// A head whose start line was readable but whose headers were not: the frame is skipped
/// to its end-line and, when the paths parsed, answered 400 (RFC 4975 section 7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHead {
    /// The transaction id from the start line.
    pub transaction_id: String,
    /// Whether it was a request.
    pub is_request: bool,
    /// To-Path and From-Path, when both parsed (to answer it).
    pub paths: Option<(Vec<crate::MsrpUri>, Vec<crate::MsrpUri>)>,
    /// What is wrong.
    pub error: HeadError,
}

/// What is wrong with a frame's headers (the frame is answered 400 when it can be).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeadError {
    /// A header line without `name: value`.
    MalformedHeader,
    /// More than [`MAX_HEADERS`] headers.
    TooManyHeaders,
    /// To-Path or From-Path is missing.
    MissingPath,
    /// A path header does not parse.
    BadPath(UriError),
    /// `Byte-Range` does not parse.
    BadByteRange,
    /// `Status` does not parse.
    BadStatus,
    /// `Expires` (or Min-/Max-Expires) is not a number.
    BadExpires,
    /// `Success-Report` or `Failure-Report` has an unknown value.
    BadReportHeader,
    /// A header appears twice where only one is allowed.
    Duplicate,
    /// A header value is not UTF-8.
    NotUtf8,
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::MalformedHeader => f.write_str("malformed header line"),
            HeadError::TooManyHeaders => f.write_str("too many headers"),
            HeadError::MissingPath => f.write_str("To-Path or From-Path missing"),
            HeadError::BadPath(e) => write!(f, "bad path: {e}"),
            HeadError::BadByteRange => f.write_str("bad Byte-Range"),
            HeadError::BadStatus => f.write_str("bad Status"),
            HeadError::BadExpires => f.write_str("bad Expires"),
            HeadError::BadReportHeader => f.write_str("bad Success-Report or Failure-Report"),
            HeadError::Duplicate => f.write_str("duplicate header"),
            HeadError::NotUtf8 => f.write_str("header not UTF-8"),
        }
    }
}

/// Framing broken beyond repair: the connection must close (RFC 4975 gives no way to find
/// the next frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The start line is not `MSRP <transaction-id> <method|code>`.
    BadStartLine,
    /// Start line and headers exceed [`FrameLimits::max_head`] without ending.
    HeadTooLarge,
    /// The bytes after an end-line's transaction id are not a flag and CRLF.
    BadEndLine,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameError::BadStartLine => "malformed MSRP start line",
            FrameError::HeadTooLarge => "MSRP frame head too large",
            FrameError::BadEndLine => "malformed MSRP end-line",
        })
    }
}

impl std::error::Error for FrameError {}

/// Whether `s` is a valid transaction id (RFC 4975 section 9: `ident`).
pub fn is_transaction_id(s: &str) -> bool {
    (4..=MAX_TRANSACTION_ID).contains(&s.len())
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'%' | b'='))
}
