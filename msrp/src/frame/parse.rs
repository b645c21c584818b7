//! The streaming frame reader: bytes in, heads, body pieces and end-lines out.

use super::{
    is_transaction_id, BadHead, Continuation, FrameError, FrameHead, FrameKind, FrameLimits,
    Headers, Method,
};

/// The end-line prefix (RFC 4975 section 7.1: seven dashes, then the transaction id).
const DASHES: &[u8] = b"-------";
/// Buffer capacity kept between frames; a larger one left by a burst is given back.
const IDLE_CAPACITY: usize = 4096;

/// One step of reading.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A frame started.
    Head(Box<FrameHead>),
    /// A frame started whose headers are malformed; its body (if any) and end follow and
    /// are to be ignored.
    BadHead(Box<BadHead>),
    /// A piece of the current frame's body, in order.
    Body(&'a [u8]),
    /// The current frame ended.
    End(Continuation),
}

#[derive(Debug)]
enum State {
    /// Between frames, or inside a head not complete yet.
    Head,
    /// A head without body was read; its end-line flag is reported next.
    End(Continuation),
    /// Inside a body; the frame ends at `\r\n` + `marker` + flag + `\r\n`.
    Body { marker: Vec<u8> },
}

/// Reads frames from a byte stream. Feed it with [`push`](Self::push), then call
/// [`read`](Self::read) until it returns `Ok(None)`. After an `Err` the stream is
/// unusable: close the connection.
#[derive(Debug)]
pub struct FrameReader {
    limits: FrameLimits,
    buf: Vec<u8>,
    pos: usize,
    state: State,
}

impl FrameReader {
    /// A reader with `limits`.
    pub fn new(limits: FrameLimits) -> FrameReader {
        FrameReader {
            limits,
            buf: Vec::new(),
            pos: 0,
            state: State::Head,
        }
    }

    /// Appends bytes read from the connection.
    pub fn push(&mut self, data: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Whether a frame is partly read (for the stalled-peer timer).
    pub fn in_frame(&self) -> bool {
        !matches!(self.state, State::Head) || self.pos < self.buf.len()
    }

    /// Bytes held (memory accounting).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The next step, `Ok(None)` when more bytes are needed.
    pub fn read(&mut self) -> Result<Option<Parsed<'_>>, FrameError> {
        match &self.state {
            State::Head => self.read_head(),
            State::End(flag) => {
                let flag = *flag;
                self.state = State::Head;
                Ok(Some(Parsed::End(flag)))
            }
            State::Body { .. } => self.read_body(),
        }
    }

    fn idle(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.buf.capacity() > IDLE_CAPACITY {
                self.buf.shrink_to(IDLE_CAPACITY);
            }
        }
    }

    fn read_head(&mut self) -> Result<Option<Parsed<'_>>, FrameError> {
        let data = &self.buf[self.pos..];
        if data.is_empty() {
            self.idle();
            return Ok(None);
        }
        // The start line must be complete before anything else can be said.
        let Some(first_end) = find_crlf(data, 0) else {
            if data.len() > self.limits.max_head {
                return Err(FrameError::HeadTooLarge);
            }
            // Reject garbage early instead of buffering up to max_head of it.
            if !b"MSRP ".starts_with(&data[..data.len().min(5)]) {
                return Err(FrameError::BadStartLine);
            }
            return Ok(None);
        };
        let (tid, kind) = parse_start_line(&data[..first_end])?;
        let mut lines: Vec<(usize, usize)> = Vec::new();
        let mut at = first_end + 2;
        let (head_end, has_body, flag) = loop {
            let Some(end) = find_crlf(data, at) else {
                if data.len() > self.limits.max_head {
                    return Err(FrameError::HeadTooLarge);
                }
                return Ok(None);
            };
            if end > self.limits.max_head {
                return Err(FrameError::HeadTooLarge);
            }
            let line = &data[at..end];
            if line.is_empty() {
                break (end + 2, true, None);
            }
            if let Some(rest) = line.strip_prefix(DASHES) {
                let flag = rest
                    .strip_prefix(tid.as_bytes())
                    .filter(|f| f.len() == 1)
                    .and_then(|f| Continuation::from_byte(f[0]))
                    .ok_or(FrameError::BadEndLine)?;
                break (end + 2, false, Some(flag));
            }
            lines.push((at, end));
            at = end + 2;
        };
        let headers = Headers::parse(lines.iter().map(|&(s, e)| &data[s..e]));
        self.pos += head_end;
        self.state = match flag {
            Some(flag) => State::End(flag),
            None => {
                let mut marker = Vec::with_capacity(2 + DASHES.len() + tid.len());
                marker.extend_from_slice(b"\r\n");
                marker.extend_from_slice(DASHES);
                marker.extend_from_slice(tid.as_bytes());
                State::Body { marker }
            }
        };
        let is_request = matches!(kind, FrameKind::Request(_));
        Ok(Some(match headers {
            (headers, None) => Parsed::Head(Box::new(FrameHead {
                transaction_id: tid,
                kind,
                headers,
                has_body,
            })),
            (partial, Some(error)) => Parsed::BadHead(Box::new(BadHead {
                transaction_id: tid,
                is_request,
                paths: (!partial.to_path.is_empty() && !partial.from_path.is_empty())
                    .then_some((partial.to_path, partial.from_path)),
                error,
            })),
        }))
    }

    fn read_body(&mut self) -> Result<Option<Parsed<'_>>, FrameError> {
        let State::Body { marker } = &self.state else {
            return Ok(None);
        };
        let data = &self.buf[self.pos..];
        // A body may itself start with the end-line's CRLF (an empty body), so the search
        // starts at the current position.
        let mut from = 0;
        let found = loop {
            let Some(i) = find(data, marker, from) else {
                break None;
            };
            let after = i + marker.len();
            if data.len() < after + 3 {
                break Some((i, None));
            }
            match Continuation::from_byte(data[after]) {
                Some(flag) if &data[after + 1..after + 3] == b"\r\n" => {
                    break Some((i, Some((flag, after + 3))))
                }
                // `-------<tid>` followed by something else is body content.
                _ => from = i + 1,
            }
        };
        match found {
            Some((0, Some((flag, len)))) => {
                self.pos += len;
                self.state = State::Head;
                Ok(Some(Parsed::End(flag)))
            }
            Some((i, _)) if i > 0 => {
                let start = self.pos;
                self.pos += i;
                Ok(Some(Parsed::Body(&self.buf[start..start + i])))
            }
            Some(_) => Ok(None),
            None => {
                // Keep what could be the start of the end-line.
                let keep = marker.len() + 2;
                let safe = data.len().saturating_sub(keep);
                if safe == 0 {
                    return Ok(None);
                }
                let start = self.pos;
                self.pos += safe;
                Ok(Some(Parsed::Body(&self.buf[start..start + safe])))
            }
        }
    }
}

/// `MSRP <tid> <METHOD>` or `MSRP <tid> <code>[ <comment>]` (RFC 4975 section 9).
fn parse_start_line(line: &[u8]) -> Result<(String, FrameKind), FrameError> {
    let line = std::str::from_utf8(line).map_err(|_| FrameError::BadStartLine)?;
    let rest = line.strip_prefix("MSRP ").ok_or(FrameError::BadStartLine)?;
    let (tid, rest) = rest.split_once(' ').ok_or(FrameError::BadStartLine)?;
    if !is_transaction_id(tid) {
        return Err(FrameError::BadStartLine);
    }
    let kind = if rest.len() >= 3 && rest.as_bytes()[..3].iter().all(u8::is_ascii_digit) {
        let (code, comment) = match rest.split_once(' ') {
            Some((c, comment)) => (c, Some(comment.trim().to_owned())),
            None => (rest, None),
        };
        if code.len() != 3 {
            return Err(FrameError::BadStartLine);
        }
        FrameKind::Response {
            code: code.parse().map_err(|_| FrameError::BadStartLine)?,
            comment: comment.filter(|c| !c.is_empty()),
        }
    } else if !rest.is_empty() && rest.len() <= 32 && rest.bytes().all(|b| b.is_ascii_uppercase()) {
        FrameKind::Request(Method::parse(rest))
    } else {
        return Err(FrameError::BadStartLine);
    };
    Ok((tid.to_owned(), kind))
}

fn find_crlf(data: &[u8], from: usize) -> Option<usize> {
    find(data, b"\r\n", from)
}

/// First index `>= from` where `needle` starts.
fn find(data: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while i + needle.len() <= data.len() {
        let j = data[i..].iter().position(|&b| b == first)? + i;
        if j + needle.len() > data.len() {
            return None;
        }
        if &data[j..j + needle.len()] == needle {
            return Some(j);
        }
        i = j + 1;
    }
    None
}
