//! Incoming frames: requests checked and answered (RFC 4975 section 7.2: 200, or 400, 403,
//! 413, 415, 481, 501), chunks reassembled by Byte-Range (RFC 4975 section 7.1.1) within
//! [`MsrpConfig::max_message_size`](super::MsrpConfig::max_message_size), success REPORTs
//! sent when asked (section 7.1.2), and responses and REPORTs to our own requests handed to
//! the outgoing side.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use engine::drops::{self, DropKind};

use super::outgoing::reason_phrase;
use super::{CloseReason, MsrpConnection, MsrpEvent, Timer};
use crate::frame::{
    write_request, write_response, BadHead, ByteRange, Continuation, FailureReport, FrameHead,
    FrameKind, FrameReader, Headers, Method, Parsed, Status,
};
use crate::uri::MsrpUri;

/// Checks a complete incoming message: `Err((status, comment))` refuses it (the status
/// answers its last chunk).
pub type Validator = fn(content_type: &str, body: &[u8]) -> Result<(), (u16, &'static str)>;

/// Most message ids remembered as refused for size: their further chunks are refused at once.
const REFUSED_MEMORY: usize = 8;
/// Chunks of refused messages a peer may still send before it is cut off.
const MAX_REFUSED_CHUNKS: u32 = 32;
/// Most byte ranges one message may arrive in (chunks that overlap or leave gaps).
const MAX_RANGES: usize = 64;

/// A message being reassembled.
#[derive(Debug)]
struct Reassembly {
    content_type: Option<String>,
    buf: Vec<u8>,
    /// Received byte ranges, 0-based half-open, sorted and merged.
    ranges: Vec<(u64, u64)>,
    total: Option<u64>,
    seq: u64,
}

/// The frame being read.
#[derive(Debug)]
enum Current {
    /// A chunk of a message.
    Send(Box<SendFrame>),
    /// A REPORT: handled at its end.
    Report(Box<Headers>),
    /// A request answered with an error at its end (its body skipped).
    Refuse(Box<Refusal>),
    /// Nothing to do with the rest of the frame.
    Skip,
}

#[derive(Debug)]
struct Refusal {
    tid: String,
    code: u16,
    comment: &'static str,
    /// Our URI as the request named it.
    to: MsrpUri,
    /// The previous hop.
    from: MsrpUri,
}

#[derive(Debug)]
struct SendFrame {
    tid: String,
    message_id: String,
    /// 0-based position of the chunk's first byte, and of the next body byte.
    start: u64,
    offset: u64,
    refused: Option<(u16, &'static str)>,
    failure_report: FailureReport,
    success_report: bool,
    /// Where the response goes (the previous hop) and the whole path back (REPORTs).
    from_path: Vec<MsrpUri>,
    /// Our URI as the sender wrote it.
    to: MsrpUri,
}

/// The incoming side's books.
#[derive(Debug, Default)]
pub(super) struct InState {
    current: Option<Current>,
    messages: HashMap<String, Reassembly>,
    refused: VecDeque<String>,
    refused_chunks: u32,
}

impl MsrpConnection {
    /// Reads and handles every complete piece of what arrived.
    pub(super) fn read_frames(&mut self, now: Instant) {
        let mut reader = std::mem::replace(&mut self.reader, FrameReader::new(self.config.limits));
        loop {
            let parsed = match reader.read() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    self.stats.malformed += 1;
                    drops::record(
                        now,
                        DropKind::MsrpMalformed,
                        format_args!("msrp {}: {e}", self.local),
                    );
                    self.finish(CloseReason::Protocol(e), true);
                    break;
                }
            };
            match parsed {
                Parsed::Head(head) => {
                    if self.spend_frame(now) {
                        self.on_head(now, head);
                    }
                }
                Parsed::BadHead(bad) => {
                    if self.spend_frame(now) {
                        self.on_bad_head(now, *bad);
                    }
                }
                Parsed::Body(bytes) => self.on_body(bytes),
                Parsed::End(flag) => self.on_end(now, flag),
            }
            if self.closed {
                break;
            }
        }
        self.reader = reader;
    }

    /// Takes one frame from the peer's budget; `false` (and the connection cut) when it
    /// sends faster than `max_frame_rate`.
    fn spend_frame(&mut self, now: Instant) -> bool {
        const UNIT: u64 = 1_000_000;
        let rate = u64::from(self.config.max_frame_rate);
        if let Some(at) = self.budget_at {
            let us = now
                .saturating_duration_since(at)
                .as_micros()
                .min(u128::from(u32::MAX)) as u64;
            self.budget = (self.budget + us * rate).min(rate * UNIT);
        }
        self.budget_at = Some(now);
        if self.budget < UNIT {
            self.finish(CloseReason::Flood, true);
            return false;
        }
        self.budget -= UNIT;
        true
    }

    fn on_head(&mut self, now: Instant, head: Box<FrameHead>) {
        let FrameHead {
            transaction_id: tid,
            kind,
            headers,
            has_body,
        } = *head;
        let method = match &kind {
            FrameKind::Response { .. } => {
                self.handle_response(now, &tid, &kind, &headers);
                self.inc.current = Some(Current::Skip);
                return;
            }
            FrameKind::Request(m) => m.clone(),
        };
        let to = headers.to_path[0].clone();
        let from = headers.from_path[0].clone();
        let refuse = |code, comment| {
            Current::Refuse(Box::new(Refusal {
                tid: tid.clone(),
                code,
                comment,
                to: to.clone(),
                from: from.clone(),
            }))
        };
        // RFC 4975 section 7.3: a request for another session gets 481.
        if to.session_id != self.local.session_id || headers.to_path.len() != 1 {
            self.inc.current = Some(match method {
                Method::Report => Current::Skip,
                _ => refuse(481, "Session Does Not Exist"),
            });
            return;
        }
        let peer_ok = match (self.peer_path.last(), headers.from_path.last()) {
            (Some(peer), Some(sender)) => peer.session_id == sender.session_id,
            _ => true,
        };
        self.inc.current = Some(match method {
            Method::Send if !peer_ok => refuse(403, "Forbidden"),
            Method::Send => self.check_send(tid, headers, has_body, to),
            Method::Report => Current::Report(Box::new(headers)),
            Method::Auth => refuse(403, "Forbidden"),
            Method::Other(_) => refuse(501, "Method Not Implemented"),
        });
    }

    fn on_bad_head(&mut self, now: Instant, bad: BadHead) {
        self.stats.malformed += 1;
        drops::record(
            now,
            DropKind::MsrpMalformed,
            format_args!("msrp {}: malformed frame: {}", self.local, bad.error),
        );
        self.inc.current = Some(match (bad.is_request, bad.paths) {
            (true, Some((to_path, from_path))) => Current::Refuse(Box::new(Refusal {
                tid: bad.transaction_id,
                code: 400,
                comment: "Bad Request",
                to: to_path[0].clone(),
                from: from_path[0].clone(),
            })),
            _ => Current::Skip,
        });
    }

    /// Decides what a SEND's head allows: its chunk is stored, or refused at its end.
    fn check_send(&mut self, tid: String, h: Headers, has_body: bool, to: MsrpUri) -> Current {
        let range = h.byte_range.unwrap_or(ByteRange {
            start: 1,
            end: None,
            total: None,
        });
        let max = self.config.max_message_size as u64;
        let mut refused = None;
        let message_id = match h.message_id {
            Some(id) => id,
            None => {
                refused = Some((400, "Message-ID missing"));
                String::new()
            }
        };
        let content_ok = match (&h.content_type, has_body) {
            (Some(ct), _) => accepts(&self.config.accept_types, ct),
            (None, false) => true,
            (None, true) => false,
        };
        if refused.is_some() {
            // Message-ID missing: nothing else to check.
        } else if self.inc.refused.contains(&message_id) {
            self.inc.refused_chunks += 1;
            if self.inc.refused_chunks > MAX_REFUSED_CHUNKS {
                self.finish(CloseReason::Flood, true);
                return Current::Skip;
            }
            refused = Some((413, "Message Too Large"));
        } else if !content_ok {
            refused = Some((415, "Unsupported Media Type"));
        } else if range.total.is_some_and(|t| t > max) || range.start - 1 > max {
            refused = Some((413, "Message Too Large"));
        } else if !self.inc.messages.contains_key(&message_id)
            && self.inc.messages.len() >= self.config.max_incomplete
        {
            refused = Some((413, "Too many incomplete messages"));
        }
        if refused.is_none() && !self.inc.messages.contains_key(&message_id) {
            let seq = self.next_seq();
            self.inc.messages.insert(
                message_id.clone(),
                Reassembly {
                    content_type: h.content_type.clone(),
                    buf: Vec::new(),
                    ranges: Vec::new(),
                    total: None,
                    seq,
                },
            );
        }
        if let (None, Some(m)) = (refused, self.inc.messages.get_mut(&message_id)) {
            if m.total.is_none() {
                m.total = range.total;
            }
            if m.content_type.is_none() {
                m.content_type = h.content_type.clone();
            }
        }
        Current::Send(Box::new(SendFrame {
            tid,
            message_id,
            start: range.start - 1,
            offset: range.start - 1,
            refused,
            failure_report: h.failure_report.unwrap_or(FailureReport::Yes),
            success_report: h.success_report.unwrap_or(false),
            from_path: h.from_path,
            to,
        }))
    }

    fn on_body(&mut self, bytes: &[u8]) {
        let max = self.config.max_message_size as u64;
        let Some(Current::Send(f)) = &mut self.inc.current else {
            return;
        };
        if f.refused.is_some() {
            return;
        }
        let end = f.offset + bytes.len() as u64;
        if end > max {
            f.refused = Some((413, "Message Too Large"));
            self.inc.messages.remove(&f.message_id);
            return;
        }
        let Some(m) = self.inc.messages.get_mut(&f.message_id) else {
            return;
        };
        let (from, to) = (f.offset as usize, end as usize);
        if m.buf.len() < to {
            m.buf.resize(to, 0);
        }
        m.buf[from..to].copy_from_slice(bytes);
        f.offset = end;
        self.stats.bytes_in += bytes.len() as u64;
    }

    fn on_end(&mut self, now: Instant, flag: Continuation) {
        match self.inc.current.take() {
            Some(Current::Send(f)) => self.end_send(now, *f, flag),
            Some(Current::Report(h)) => self.handle_report(&h),
            Some(Current::Refuse(r)) => {
                self.stats.refused += 1;
                drops::record(
                    now,
                    DropKind::MsrpRefused,
                    format_args!("msrp {}: refused {} {}", self.local, r.code, r.comment),
                );
                let frame = write_response(
                    &r.tid,
                    r.code,
                    r.comment,
                    &r.from,
                    &r.to,
                    &Headers::default(),
                );
                self.transmit(frame);
            }
            Some(Current::Skip) | None => {}
        }
    }

    fn end_send(&mut self, now: Instant, f: SendFrame, flag: Continuation) {
        let mut verdict = f.refused;
        let mut complete = None;
        if verdict.is_none() {
            if let Some(m) = self.inc.messages.get_mut(&f.message_id) {
                if f.offset > f.start && !add_range(&mut m.ranges, (f.start, f.offset)) {
                    verdict = Some((400, "Too many byte ranges"));
                } else {
                    let total = match (m.total, flag) {
                        (Some(t), _) => Some(t),
                        (None, Continuation::Complete) => Some(f.offset),
                        (None, _) => None,
                    };
                    let covered =
                        total.is_some_and(|t| t == 0 || m.ranges.first() == Some(&(0, t)));
                    if flag == Continuation::Aborted {
                        complete = Some(false);
                    } else if covered {
                        complete = Some(true);
                    } else if flag == Continuation::Complete && total.is_some() {
                        // The last chunk came and bytes are missing.
                        verdict = Some((400, "Incomplete message"));
                    }
                }
            }
        }
        if let Some((code, _)) = verdict {
            if code == 413 && !self.inc.refused.contains(&f.message_id) {
                if self.inc.refused.len() == REFUSED_MEMORY {
                    self.inc.refused.pop_front();
                }
                self.inc.refused.push_back(f.message_id.clone());
            }
            self.drop_message(&f.message_id);
        }
        let mut delivered = None;
        match complete {
            Some(true) if verdict.is_none() => {
                if let Some(m) = self.drop_message(&f.message_id) {
                    let content_type = m.content_type.unwrap_or_default();
                    if let Some(check) = self.config.validate.filter(|_| !m.buf.is_empty()) {
                        verdict = check(&content_type, &m.buf).err();
                    }
                    if verdict.is_none() {
                        delivered = Some((content_type, m.buf));
                    }
                }
            }
            Some(false) => {
                self.drop_message(&f.message_id);
            }
            _ => {
                if let Some(seq) = self.inc.messages.get(&f.message_id).map(|m| m.seq) {
                    self.deadlines.set(
                        Timer::Reassembly(seq),
                        Some(now + self.config.reassembly_timeout),
                    );
                }
            }
        }
        let (code, comment) = verdict.unwrap_or((200, "OK"));
        if code != 200 {
            self.stats.refused += 1;
            drops::record(
                now,
                DropKind::MsrpRefused,
                format_args!("msrp {}: refused {code} {comment}", self.local),
            );
        }
        let answer = match f.failure_report {
            FailureReport::Yes => true,
            FailureReport::Partial => code != 200,
            FailureReport::No => false,
        };
        if answer {
            let frame = write_response(
                &f.tid,
                code,
                comment,
                &f.from_path[0],
                &f.to,
                &Headers::default(),
            );
            self.transmit(frame);
        }
        if code != 200 {
            return;
        }
        // The peer's SEND bound the connection (passive end), or is one more proof of a
        // working session: RFC 4975 section 5.4.
        self.bound = true;
        self.became_ready();
        let Some((content_type, body)) = delivered else {
            return;
        };
        let size = body.len() as u64;
        if f.success_report {
            let headers = Headers {
                to_path: f.from_path.clone(),
                from_path: vec![self.local.clone()],
                message_id: Some(f.message_id.clone()),
                byte_range: Some(ByteRange {
                    start: 1,
                    end: Some(size),
                    total: Some(size),
                }),
                status: Some(Status {
                    namespace: 0,
                    code: 200,
                    comment: Some(reason_phrase(200).to_owned()),
                }),
                ..Headers::default()
            };
            let tid = self.transaction_id();
            let frame = write_request(
                &tid,
                &Method::Report,
                &headers,
                None,
                Continuation::Complete,
            );
            self.transmit(frame);
        }
        if size > 0 || !content_type.is_empty() {
            self.stats.messages_in += 1;
            self.event(MsrpEvent::Message {
                message_id: f.message_id,
                content_type,
                body,
            });
        }
    }

    fn drop_message(&mut self, message_id: &str) -> Option<Reassembly> {
        let m = self.inc.messages.remove(message_id)?;
        self.deadlines.cancel(Timer::Reassembly(m.seq));
        Some(m)
    }

    /// An incomplete message waited too long for its next chunk: dropped.
    pub(super) fn reassembly_timeout(&mut self, seq: u64) {
        self.inc.messages.retain(|_, m| m.seq != seq);
    }
}

/// Adds `r` to sorted, merged `ranges`; `false` when there would be too many.
fn add_range(ranges: &mut Vec<(u64, u64)>, r: (u64, u64)) -> bool {
    ranges.push(r);
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for &(s, e) in ranges.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    *ranges = merged;
    ranges.len() <= MAX_RANGES
}

/// Whether `content_type` (parameters ignored) matches one of `accepted` (`*`, `type/*`).
pub(super) fn accepts(accepted: &[String], content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    accepted.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        a == "*"
            || a == media
            || a.strip_suffix("/*")
                .is_some_and(|major| media.split('/').next() == Some(major))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_types_match() {
        let mut r = Vec::new();
        assert!(add_range(&mut r, (10, 20)));
        assert!(add_range(&mut r, (0, 10)));
        assert!(add_range(&mut r, (15, 30)));
        assert_eq!(r, vec![(0, 30)]);
        let types = vec!["message/cpim".to_owned(), "text/*".to_owned()];
        assert!(accepts(&types, "Message/CPIM"));
        assert!(accepts(&types, "text/plain; charset=utf-8"));
        assert!(!accepts(&types, "application/im-iscomposing+xml"));
        assert!(accepts(&["*".to_owned()], "image/png"));
    }
}
