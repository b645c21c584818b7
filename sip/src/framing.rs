//! Message framing for SIP over TCP/TLS (RFC 3261 section 18.3) and RFC 5626 CRLF keep-alives,
//! plus datagram checks for UDP. Sans-IO: the reactor feeds bytes in, pulls items out.
//!
//! On a stream, Content-Length is the only way to find the end of a body, so a message without
//! it (or with a bad one) loses framing for good: every [`FramingError`] means "close the
//! connection".

use std::fmt;

use super::msg::{self, Framing, Rejection, SipMessage, MAX_MESSAGE_SIZE};

/// The accumulator never holds more than one maximal message plus one maximal read.
const MAX_BUFFER: usize = 2 * MAX_MESSAGE_SIZE;

/// One item cut from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// Exactly one message (head and Content-Length body), ready for [`msg::parse`] with
    /// [`Framing::Stream`].
    Message(Vec<u8>),
    /// A CRLFCRLF keep-alive ping (RFC 5626 section 3.5.1): write [`PONG`] back.
    Ping,
    /// A single CRLF between messages: the pong to our own ping (RFC 5626 section 4.4.1).
    Pong,
}

/// The pong sent in answer to a [`StreamItem::Ping`].
pub const PONG: &[u8] = b"\r\n";

/// The ping a client sends to keep a flow alive (RFC 5626 section 4.4.1).
pub const PING: &[u8] = b"\r\n\r\n";

/// Why a stream cannot be framed any more; the connection must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramingError {
    /// A message (or unterminated head) exceeds [`MAX_MESSAGE_SIZE`], or the peer sent more
    /// than the buffer bound without a complete message.
    TooLarge,
    /// A message head has no Content-Length (mandatory on streams, RFC 3261 section 18.3).
    MissingContentLength,
    /// Content-Length is not a number, or two copies disagree.
    BadContentLength,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FramingError::TooLarge => "message too large",
            FramingError::MissingContentLength => "missing Content-Length on a stream",
            FramingError::BadContentLength => "malformed Content-Length",
        })
    }
}

impl std::error::Error for FramingError {}

/// A bounded accumulator for one TCP/TLS connection.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already handed out: consumed by moving this offset, and
    /// compacted once per [`StreamFramer::handle_bytes`], so a run of tiny items (a peer
    /// pipelining keep-alives) costs O(1) each instead of a memmove of the buffer each.
    start: usize,
    /// How far the search for the blank line has got, so a peer trickling bytes cannot make
    /// every read rescan the whole buffer (quadratic work).
    scanned: usize,
    /// Head length + Content-Length of the message at the front, once its head is complete.
    pending_total: Option<usize>,
}

impl StreamFramer {
    /// An empty framer.
    pub fn new() -> StreamFramer {
        StreamFramer::default()
    }

    /// Appends bytes read from the connection. Call [`StreamFramer::poll_item`] until it
    /// returns `Ok(None)` after every call.
    pub fn handle_bytes(&mut self, data: &[u8]) -> Result<(), FramingError> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.len().saturating_add(data.len()) > MAX_BUFFER {
            return Err(FramingError::TooLarge);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Bytes held waiting for the rest of a message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    fn pending(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.scanned = 0;
        if self.start >= self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// The next complete item, `Ok(None)` if more bytes are needed.
    pub fn poll_item(&mut self) -> Result<Option<StreamItem>, FramingError> {
        if let Some(total) = self.pending_total {
            return Ok(self.take_message(total));
        }
        // Keep-alives sit between messages (RFC 5626 section 3.5.1). A ping split across two
        // reads looks like two pongs; only clients send pings and we are the client towards
        // registrars, so that case costs at most a missed pong on the peer's side.
        if self.pending().starts_with(PING) {
            self.consume(PING.len());
            return Ok(Some(StreamItem::Ping));
        }
        if self.pending().starts_with(b"\r\n") {
            self.consume(2);
            return Ok(Some(StreamItem::Pong));
        }
        // Resume a few bytes back: the blank line may straddle two reads.
        let from = self.scanned.saturating_sub(3);
        let pending = self.pending();
        let Some(head_end) = find_blank_line(pending.get(from..).unwrap_or(&[])).map(|e| e + from)
        else {
            if pending.len() > MAX_MESSAGE_SIZE {
                return Err(FramingError::TooLarge);
            }
            self.scanned = pending.len();
            return Ok(None);
        };
        let head = pending.get(..head_end).unwrap_or(&[]);
        let content_length = content_length(head)?;
        let total = head_end
            .checked_add(content_length)
            .filter(|t| *t <= MAX_MESSAGE_SIZE)
            .ok_or(FramingError::TooLarge)?;
        self.pending_total = Some(total);
        Ok(self.take_message(total))
    }

    fn take_message(&mut self, total: usize) -> Option<StreamItem> {
        let message = self.pending().get(..total)?.to_vec();
        self.pending_total = None;
        self.consume(total);
        Some(StreamItem::Message(message))
    }
}

/// Index just past the first empty line (CRLFCRLF or LFLF).
fn find_blank_line(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads Content-Length (or compact `l`) from a raw head.
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<usize> = None;
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line.get(..colon).unwrap_or(&[]).trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = line.get(colon + 1..).unwrap_or(&[]).trim_ascii();
        let n = std::str::from_utf8(value)
            .ok()
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or(FramingError::BadContentLength)?;
        if found.is_some_and(|prev| prev != n) {
            return Err(FramingError::BadContentLength);
        }
        found = Some(n);
    }
    found.ok_or(FramingError::MissingContentLength)
}

/// What a UDP datagram turned out to be.
#[derive(Debug)]
pub enum Datagram {
    /// Only CR/LF octets: a keep-alive some clients send over UDP; ignore it.
    KeepAlive,
    /// A validated message, body cut to Content-Length (RFC 3261 section 18.3).
    Message(Box<SipMessage>),
}

/// Validates one UDP datagram; a short body, oversize or malformed message is a
/// [`Rejection`] whose disposition says whether to answer 400 or drop.
pub fn handle_datagram(data: &[u8]) -> Result<Datagram, Rejection> {
    if data.iter().all(|&b| b == b'\r' || b == b'\n') {
        return Ok(Datagram::KeepAlive);
    }
    msg::parse(data, Framing::Datagram).map(|m| Datagram::Message(Box::new(m)))
}

/// Parses a framed stream message (a [`StreamItem::Message`]).
pub fn parse_stream_message(bytes: &[u8]) -> Result<SipMessage, Rejection> {
    msg::parse(bytes, Framing::Stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::MsgError;

    fn message(body: &str) -> Vec<u8> {
        format!(
            "OPTIONS sip:a@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nTo: <sip:a@h>\r\n\
             From: <sip:b@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\
             l: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[test]
    fn messages_split_and_coalesced_across_reads() {
        let mut stream = Vec::new();
        stream.extend(message("hello"));
        stream.extend_from_slice(PING);
        stream.extend(message(""));
        stream.extend_from_slice(PONG);
        // Feed one byte at a time: every prefix must be "not yet", never an error.
        let mut framer = StreamFramer::new();
        let mut items = Vec::new();
        for b in &stream {
            framer
                .handle_bytes(std::slice::from_ref(b))
                .expect("bounded");
            while let Some(item) = framer.poll_item().expect("frames") {
                items.push(item);
            }
        }
        // The ping arrives byte by byte, so it is seen as two pongs (documented limitation).
        assert_eq!(
            items,
            [
                StreamItem::Message(message("hello")),
                StreamItem::Pong,
                StreamItem::Pong,
                StreamItem::Message(message("")),
                StreamItem::Pong,
            ]
        );
        // All at once: the ping is recognised.
        let mut framer = StreamFramer::new();
        framer.handle_bytes(&stream).expect("bounded");
        let mut items = Vec::new();
        while let Some(item) = framer.poll_item().expect("frames") {
            items.push(item);
        }
        assert_eq!(items.get(1), Some(&StreamItem::Ping));
        assert_eq!(items.len(), 4);
        assert_eq!(framer.buffered(), 0);
        let StreamItem::Message(bytes) = &items[0] else {
            panic!("message first")
        };
        let parsed = parse_stream_message(bytes).expect("valid");
        assert!(matches!(parsed, SipMessage::Request(r) if r.body() == b"hello"));
    }

    #[test]
    fn framing_errors_close_the_connection() {
        let mut framer = StreamFramer::new();
        framer
            .handle_bytes(b"OPTIONS sip:a@h SIP/2.0\r\nCall-ID: x\r\n\r\n")
            .expect("bounded");
        assert_eq!(framer.poll_item(), Err(FramingError::MissingContentLength));

        let mut framer = StreamFramer::new();
        framer
            .handle_bytes(b"OPTIONS sip:a@h SIP/2.0\r\nContent-Length: -1\r\n\r\n")
            .expect("bounded");
        assert_eq!(framer.poll_item(), Err(FramingError::BadContentLength));

        let mut framer = StreamFramer::new();
        framer
            .handle_bytes(b"OPTIONS sip:a@h SIP/2.0\r\nContent-Length: 70000\r\n\r\n")
            .expect("bounded");
        assert_eq!(framer.poll_item(), Err(FramingError::TooLarge));

        // A head that never ends.
        let mut framer = StreamFramer::new();
        let junk = vec![b'a'; MAX_MESSAGE_SIZE + 1];
        framer.handle_bytes(&junk).expect("within buffer bound");
        assert_eq!(framer.poll_item(), Err(FramingError::TooLarge));
        assert_eq!(
            framer.handle_bytes(&junk),
            Err(FramingError::TooLarge),
            "the buffer itself is bounded"
        );
    }

    #[test]
    fn datagrams_are_cut_or_rejected() {
        assert!(matches!(
            handle_datagram(b"\r\n\r\n"),
            Ok(Datagram::KeepAlive)
        ));
        let mut data = message("hi");
        data.extend_from_slice(b"trailing junk");
        match handle_datagram(&data) {
            Ok(Datagram::Message(m)) => {
                assert!(matches!(*m, SipMessage::Request(ref r) if r.body() == b"hi"))
            }
            other => panic!("{other:?}"),
        }
        let short = message("hello");
        let cut = short.get(..short.len() - 2).expect("len");
        let rejection = handle_datagram(cut).expect_err("short body");
        assert_eq!(rejection.error, MsgError::BodyTooShort);
        assert!(rejection.reply("t").is_some_and(|r| r.status() == 400));
    }
}
