//! HTTP/1.1 responses read incrementally from a byte stream (RFC 9112): the head through
//! `httparse`, the body framed by `Content-Length`, `Transfer-Encoding: chunked` (section
//! 7.1) or the end of the connection (section 6.3, rule 8). Bytes arrive as the socket gives
//! them; [`ResponseParser::push`] keeps what it needs and says when a response is complete.
//!
//! Limits: the head at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] fields, the body at most
//! the configured document size (decoded), a chunk-size line at most [`MAX_CHUNK_LINE`].
//! Everything else a peer sends comes back as a [`ParseError`].

use std::fmt;

/// Largest response head (status line and fields).
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header fields in one response.
pub const MAX_HEADERS: usize = 64;
/// Longest chunk-size line (with extensions) or trailer line.
pub const MAX_CHUNK_LINE: usize = 1024;

/// Why the bytes are not an acceptable response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The head is not HTTP/1.x (httparse's reason).
    Head(&'static str),
    /// The head exceeds [`MAX_HEAD`] or [`MAX_HEADERS`].
    HeadTooLarge,
    /// `Content-Length` is not a number, or two disagree (section 6.3, rule 5).
    BadContentLength,
    /// A transfer coding other than `chunked` alone.
    UnsupportedTransferEncoding,
    /// A chunk-size line or chunk terminator is malformed.
    BadChunk,
    /// The body exceeds the document size limit.
    BodyTooLarge,
    /// The connection ended inside a response.
    Truncated,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Head(why) => write!(f, "malformed response head ({why})"),
            ParseError::HeadTooLarge => f.write_str("response head too large"),
            ParseError::BadContentLength => f.write_str("bad Content-Length"),
            ParseError::UnsupportedTransferEncoding => f.write_str("unsupported Transfer-Encoding"),
            ParseError::BadChunk => f.write_str("malformed chunked body"),
            ParseError::BodyTooLarge => f.write_str("response body too large"),
            ParseError::Truncated => f.write_str("connection closed inside a response"),
        }
    }
}

impl std::error::Error for ParseError {}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header fields in order (names as sent; values lossily UTF-8).
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Vec<u8>,
    /// The server keeps the connection open for the next request (HTTP/1.1 without
    /// `Connection: close`, and a body not delimited by the close).
    pub keep_alive: bool,
}

impl Response {
    /// The first field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every field called `name`, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked(Chunk),
    UntilClose,
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// `n` data bytes of the current chunk are still to come.
    Data(usize),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer fields after the last chunk, until an empty line.
    Trailer,
}

#[derive(Debug)]
enum State {
    Head,
    Body(Framing),
}

/// Reads one response after another from a connection.
#[derive(Debug)]
pub struct ResponseParser {
    max_body: usize,
    /// Bytes not consumed yet.
    buf: Vec<u8>,
    state: State,
    /// The response being read (head known).
    current: Response,
    /// The request was HEAD or the status has no body (1xx, 204, 304).
    no_body: bool,
}

impl ResponseParser {
    /// A parser accepting bodies up to `max_body` bytes (decoded).
    pub fn new(max_body: usize) -> ResponseParser {
        ResponseParser {
            max_body,
            buf: Vec::new(),
            state: State::Head,
            current: Response::default(),
            no_body: false,
        }
    }

    /// Nothing of a response has been read.
    pub fn is_idle(&self) -> bool {
        self.buf.is_empty() && matches!(self.state, State::Head)
    }

    /// Bytes held, not yet part of a returned response.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next response will answer a HEAD request (no body whatever the fields say).
    pub fn expect_no_body(&mut self, yes: bool) {
        self.no_body = yes;
    }

    /// Feeds bytes; `Ok(Some)` when a response completed (bytes after it stay for the next
    /// call, which may pass an empty slice). Interim (1xx) responses are skipped.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<Response>, ParseError> {
        // Every state bounds what it leaves buffered (head, chunk line, body limit), and
        // the reactor hands at most one read budget per call.
        self.buf.extend_from_slice(bytes);
        loop {
            match self.state {
                State::Head => {
                    if !self.parse_head()? {
                        return Ok(None);
                    }
                }
                State::Body(framing) => return self.parse_body(framing),
            }
        }
    }

    /// The connection ended: completes a close-delimited body, or fails a partial response.
    pub fn finish(&mut self) -> Result<Option<Response>, ParseError> {
        match self.state {
            State::Body(Framing::UntilClose) => {
                let mut r = std::mem::take(&mut self.current);
                self.state = State::Head;
                r.body = std::mem::take(&mut self.buf);
                if r.body.len() > self.max_body {
                    return Err(ParseError::BodyTooLarge);
                }
                r.keep_alive = false;
                Ok(Some(r))
            }
            State::Head if self.buf.is_empty() => Ok(None),
            _ => Err(ParseError::Truncated),
        }
    }

    /// Parses the head if complete; returns whether it did.
    fn parse_head(&mut self) -> Result<bool, ParseError> {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut head = httparse::Response::new(&mut fields);
        let used = match head.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if self.buf.len() > MAX_HEAD {
                    return Err(ParseError::HeadTooLarge);
                }
                return Ok(false);
            }
            Err(httparse::Error::TooManyHeaders) => return Err(ParseError::HeadTooLarge),
            Err(e) => return Err(ParseError::Head(error_name(e))),
        };
        if used > MAX_HEAD {
            return Err(ParseError::HeadTooLarge);
        }
        let status = head.code.unwrap_or(0);
        let version = head.version.unwrap_or(0);
        let headers: Vec<(String, String)> = head
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).trim().to_owned(),
                )
            })
            .collect();
        self.buf.drain(..used);
        if (100..200).contains(&status) {
            // Interim responses (100 Continue) precede the real one.
            return Ok(true);
        }
        let mut r = Response {
            status,
            headers,
            body: Vec::new(),
            keep_alive: version == 1,
        };
        if r.headers_named("Connection").any(|v| has_token(v, "close")) {
            r.keep_alive = false;
        }
        let framing = if self.no_body || status == 204 || status == 304 {
            Framing::Length(0)
        } else if let Some(te) = r.header("Transfer-Encoding") {
            // Section 6.3 rule 4: chunked must be last; we take it alone (servers send
            // nothing else to a client that sent no TE).
            if te.trim().eq_ignore_ascii_case("chunked") {
                Framing::Chunked(Chunk::Size)
            } else {
                return Err(ParseError::UnsupportedTransferEncoding);
            }
        } else {
            let mut length = None;
            for v in r.headers_named("Content-Length") {
                for part in v.split(',') {
                    let n: usize = part
                        .trim()
                        .parse()
                        .map_err(|_| ParseError::BadContentLength)?;
                    if length.is_some_and(|l| l != n) {
                        return Err(ParseError::BadContentLength);
                    }
                    length = Some(n);
                }
            }
            match length {
                Some(n) if n > self.max_body => return Err(ParseError::BodyTooLarge),
                Some(n) => Framing::Length(n),
                None => {
                    r.keep_alive = false;
                    Framing::UntilClose
                }
            }
        };
        self.no_body = false;
        self.current = r;
        self.state = State::Body(framing);
        Ok(true)
    }

    fn parse_body(&mut self, framing: Framing) -> Result<Option<Response>, ParseError> {
        match framing {
            Framing::Length(n) => {
                if self.buf.len() < n {
                    return Ok(None);
                }
                let rest = self.buf.split_off(n);
                self.current.body = std::mem::replace(&mut self.buf, rest);
                Ok(Some(self.complete()))
            }
            Framing::UntilClose => {
                if self.buf.len() > self.max_body {
                    return Err(ParseError::BodyTooLarge);
                }
                Ok(None)
            }
            Framing::Chunked(mut chunk) => {
                let done = self.parse_chunks(&mut chunk)?;
                if done {
                    return Ok(Some(self.complete()));
                }
                self.state = State::Body(Framing::Chunked(chunk));
                Ok(None)
            }
        }
    }

    /// Decodes what is buffered; returns whether the body ended.
    fn parse_chunks(&mut self, chunk: &mut Chunk) -> Result<bool, ParseError> {
        let mut at = 0;
        let result = loop {
            let rest = &self.buf[at..];
            match *chunk {
                Chunk::Size | Chunk::Trailer => {
                    let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
                        // One more byte may be the CR of a line at the limit.
                        if rest.len() > MAX_CHUNK_LINE + 1 {
                            break Err(ParseError::BadChunk);
                        }
                        break Ok(false);
                    };
                    if end > MAX_CHUNK_LINE {
                        break Err(ParseError::BadChunk);
                    }
                    let line = &rest[..end];
                    at += end + 2;
                    if *chunk == Chunk::Trailer {
                        if line.is_empty() {
                            break Ok(true);
                        }
                        continue;
                    }
                    // chunk-size [ chunk-ext ]: extensions are ignored (section 7.1.1).
                    let size = line.split(|&b| b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(size)
                        .ok()
                        .map(|s| s.trim_matches([' ', '\t']))
                        .filter(|s| !s.is_empty() && s.len() <= 16)
                        .and_then(|s| usize::from_str_radix(s, 16).ok())
                        .ok_or(ParseError::BadChunk)?;
                    if size == 0 {
                        *chunk = Chunk::Trailer;
                    } else if self.current.body.len().saturating_add(size) > self.max_body {
                        break Err(ParseError::BodyTooLarge);
                    } else {
                        *chunk = Chunk::Data(size);
                    }
                }
                Chunk::Data(n) => {
                    if rest.is_empty() {
                        break Ok(false);
                    }
                    let take = n.min(rest.len());
                    self.current.body.extend_from_slice(&rest[..take]);
                    at += take;
                    *chunk = if take == n {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(n - take)
                    };
                }
                Chunk::DataEnd => {
                    if rest.len() < 2 {
                        break Ok(false);
                    }
                    if &rest[..2] != b"\r\n" {
                        break Err(ParseError::BadChunk);
                    }
                    at += 2;
                    *chunk = Chunk::Size;
                }
            }
        };
        self.buf.drain(..at.min(self.buf.len()));
        result
    }

    fn complete(&mut self) -> Response {
        self.state = State::Head;
        std::mem::take(&mut self.current)
    }
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn error_name(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "header name",
        httparse::Error::HeaderValue => "header value",
        httparse::Error::NewLine => "new line",
        httparse::Error::Status => "status",
        httparse::Error::Token => "token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "version",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Result<Option<Response>, ParseError> {
        ResponseParser::new(1000).push(bytes)
    }

    #[test]
    fn content_length_body_and_leftover_for_the_next() {
        let mut p = ResponseParser::new(1000);
        let r = p
            .push(b"HTTP/1.1 200 OK\r\nETag: \"e1\"\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 404 N")
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.status, &r.body[..], r.keep_alive),
            (200, &b"abc"[..], true)
        );
        assert_eq!(r.header("etag"), Some("\"e1\""));
        assert_eq!(
            p.push(b"o\r\nContent-Length: 0\r\n\r\n")
                .unwrap()
                .unwrap()
                .status,
            404
        );
        assert!(p.is_idle());
    }

    #[test]
    fn byte_by_byte_chunked_with_extensions_and_trailer() {
        let text = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        let mut p = ResponseParser::new(1000);
        let mut got = None;
        for b in text.iter() {
            if let Some(r) = p.push(std::slice::from_ref(b)).unwrap() {
                got = Some(r);
            }
        }
        let r = got.unwrap();
        assert_eq!(r.body, b"abc0123456789");
        assert!(p.is_idle());
    }

    #[test]
    fn close_delimited_and_connection_close() {
        let mut p = ResponseParser::new(1000);
        assert_eq!(p.push(b"HTTP/1.0 200 OK\r\n\r\nhello").unwrap(), None);
        let r = p.finish().unwrap().unwrap();
        assert_eq!((&r.body[..], r.keep_alive), (&b"hello"[..], false));
        let r = one(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!r.keep_alive);
        let mut p = ResponseParser::new(1000);
        p.push(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
            .unwrap();
        assert_eq!(p.finish(), Err(ParseError::Truncated));
    }

    #[test]
    fn limits_and_malformed_framing() {
        assert_eq!(
            one(b"HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n"),
            Err(ParseError::BodyTooLarge)
        );
        assert_eq!(
            one(b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n"),
            Err(ParseError::BadContentLength)
        );
        assert_eq!(
            one(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Err(ParseError::UnsupportedTransferEncoding)
        );
        assert_eq!(
            one(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n"),
            Err(ParseError::BodyTooLarge)
        );
        assert_eq!(
            one(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Err(ParseError::BadChunk)
        );
        assert_eq!(
            one(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX"),
            Err(ParseError::BadChunk)
        );
        assert!(matches!(
            one(b"SIP/2.0 200 OK\r\n\r\n"),
            Err(ParseError::Head(_))
        ));
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        assert_eq!(one(&big), Err(ParseError::HeadTooLarge));
        let mut p = ResponseParser::new(10);
        p.push(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
        assert_eq!(p.push(&[b'x'; 11]), Err(ParseError::BodyTooLarge));
        let mut p = ResponseParser::new(10);
        p.expect_no_body(true);
        let r = p
            .push(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(r.body.is_empty());
    }
}
