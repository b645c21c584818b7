//! Sans-IO XCAP client (RFC 4825) for sylk-gateway: HTTP/1.1 GET, PUT and DELETE of the
//! users' documents over connections the reactor owns.
//!
//! - [`client`]: the engine, [`XcapClient`]: `submit` requests, feed it socket input through
//!   `handle_*(now, ..)`, take [`XcapTransmit`]s and [`XcapEvent`]s from one `poll_output`
//!   (deadline included). One keep-alive connection per origin, requests queued on it;
//!   digest auth (RFC 7616 / 2617, `qop=auth`) from the account's HA1 with the SIP crate's
//!   digest code; `If-Match` / `If-None-Match` preconditions (RFC 4825 section 7.11);
//!   per-request timeout; the response body limit.
//! - [`response`]: the incremental response reader (`httparse` for the head;
//!   `Content-Length`, chunked and close-delimited bodies).
//! - [`url`]: XCAP roots and document URIs (RFC 4825 section 6).
//!
//! The engine never reads the clock or the OS's randomness: `now` comes with every input,
//! client nonces from the injected [`engine::Rng`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
/// Parser invariant checks for the fuzz target and the mutation test; panics by design on a
/// broken invariant and is never called by the gateway itself.
pub mod exercise;
pub mod response;
pub mod url;

#[cfg(test)]
mod mutation;
#[cfg(test)]
mod tests;

use std::fmt;

pub use client::{
    ConnId, Credentials, Method, Precondition, RequestId, XcapClient, XcapClientConfig, XcapEvent,
    XcapRequest, XcapResponse, XcapTransmit,
};
pub use response::ParseError;
pub use url::{DocumentUrl, Origin, XcapRoot};

/// Why a request has no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum XcapError {
    /// The XCAP root is not an `http://` or `https://` URL with a host.
    BadUrl,
    /// Too many requests wait for the server already.
    QueueFull,
    /// No complete answer within `xcap.timeout`.
    Timeout,
    /// The server could not be reached.
    ConnectFailed,
    /// The connection closed before the answer was complete.
    ConnectionClosed,
    /// The answer is not acceptable HTTP (or exceeds the size limits).
    Response(ParseError),
    /// The server's challenge could not be answered, or it refused our credentials.
    Auth(sip::auth::AuthError),
}

impl fmt::Display for XcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XcapError::BadUrl => f.write_str("bad XCAP root URL"),
            XcapError::QueueFull => f.write_str("too many XCAP requests waiting"),
            XcapError::Timeout => f.write_str("XCAP server did not answer in time"),
            XcapError::ConnectFailed => f.write_str("XCAP server unreachable"),
            XcapError::ConnectionClosed => f.write_str("XCAP server closed the connection"),
            XcapError::Response(e) => write!(f, "XCAP server answer: {e}"),
            XcapError::Auth(e) => write!(f, "XCAP authentication: {e}"),
        }
    }
}

impl std::error::Error for XcapError {}
