//! Outgoing messages: the queue, chunking (RFC 4975 section 7.1.1: each chunk its own SEND
//! transaction, messages interleaved chunk by chunk so a short one is not stuck behind a
//! long one), transaction responses, REPORTs and their timeouts.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::{CloseReason, Delivery, MsrpConnection, MsrpEvent, OutgoingId, SendError, Timer};
use crate::frame::{write_request, Body, ByteRange, Continuation, FrameKind, Headers, Method};

/// A request of ours waiting for its response.
#[derive(Debug)]
pub(super) struct Pending {
    pub seq: u64,
    pub what: PendingKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PendingKind {
    /// The first, empty SEND (RFC 4975 section 5.4).
    Bind,
    /// AUTH to the relay.
    Auth,
    /// A chunk of a message; `last`: its final chunk.
    Chunk { id: OutgoingId, last: bool },
}

/// A message with chunks still to send.
#[derive(Debug)]
struct Sending {
    id: OutgoingId,
    message_id: String,
    content_type: String,
    body: Vec<u8>,
    /// Bytes sent so far.
    sent: usize,
    success_report: bool,
}

/// A message between `send` and its outcome.
#[derive(Debug)]
struct Open {
    message_id: String,
    success_report: bool,
    /// The last chunk's 200 arrived (`Accepted` reported).
    accepted: bool,
}

/// The outgoing side's books.
#[derive(Debug, Default)]
pub(super) struct OutQueue {
    sending: VecDeque<Sending>,
    open: HashMap<OutgoingId, Open>,
    by_message_id: HashMap<String, OutgoingId>,
    queued_bytes: usize,
    next_id: u64,
}

impl OutQueue {
    /// Whether chunks wait to be sent.
    pub fn has_chunks(&self) -> bool {
        !self.sending.is_empty()
    }

    /// Every open message (the connection is ending).
    pub fn drain_all(&mut self) -> Vec<OutgoingId> {
        let mut ids: Vec<OutgoingId> = self.open.keys().copied().collect();
        ids.sort();
        *self = OutQueue {
            next_id: self.next_id,
            ..OutQueue::default()
        };
        ids
    }

    fn forget(&mut self, id: OutgoingId) -> Option<Open> {
        let open = self.open.remove(&id)?;
        self.by_message_id.remove(&open.message_id);
        if let Some(i) = self.sending.iter().position(|s| s.id == id) {
            if let Some(s) = self.sending.remove(i) {
                self.queued_bytes -= s.body.len() - s.sent;
            }
        }
        Some(open)
    }
}

impl MsrpConnection {
    /// Queues a message: `body` of `content_type`, sent in chunks once the session is
    /// bound. `success_report` asks the peer for a REPORT (RFC 4975 section 7.1.2). Its
    /// fate comes as [`MsrpEvent::Delivery`] events.
    pub fn send(
        &mut self,
        now: Instant,
        content_type: &str,
        body: Vec<u8>,
        success_report: bool,
    ) -> Result<OutgoingId, SendError> {
        self.clock = Some(now);
        if self.closed {
            return Err(SendError::Closed);
        }
        if body.len() > self.config.max_message_size {
            return Err(SendError::TooLarge);
        }
        if self.out.queued_bytes + body.len() > self.config.max_queued {
            return Err(SendError::QueueFull);
        }
        self.out.next_id += 1;
        let id = OutgoingId(self.out.next_id);
        let message_id = self.rng.token(16);
        self.out.queued_bytes += body.len();
        self.out.by_message_id.insert(message_id.clone(), id);
        self.out.open.insert(
            id,
            Open {
                message_id: message_id.clone(),
                success_report,
                accepted: false,
            },
        );
        self.out.sending.push_back(Sending {
            id,
            message_id,
            content_type: content_type.to_owned(),
            body,
            sent: 0,
            success_report,
        });
        Ok(id)
    }

    /// The headers every SEND of ours carries: To-Path = our relays' Use-Path then the
    /// peer's path (RFC 4976 section 6), From-Path = our URI.
    fn send_headers(&self, message_id: String) -> Headers {
        let mut to_path = self.use_path.clone();
        to_path.extend(self.peer_path.iter().cloned());
        Headers {
            to_path,
            from_path: vec![self.local.clone()],
            message_id: Some(message_id),
            ..Headers::default()
        }
    }

    /// The active end's first SEND: empty, it binds the connection to the session (RFC 4975
    /// section 5.4).
    pub(super) fn send_bind(&mut self, now: Instant) {
        let message_id = self.rng.token(16);
        let mut headers = self.send_headers(message_id);
        headers.byte_range = Some(ByteRange {
            start: 1,
            end: Some(0),
            total: Some(0),
        });
        let tid = self.transaction_id();
        let frame = write_request(&tid, &Method::Send, &headers, None, Continuation::Complete);
        self.track(now, tid, PendingKind::Bind);
        self.transmit(frame);
    }

    /// Files a request of ours and arms its response timer.
    pub(super) fn track(&mut self, now: Instant, tid: String, what: PendingKind) {
        let seq = self.next_seq();
        self.transactions.insert(tid, Pending { seq, what });
        self.deadlines.set(
            Timer::Transaction(seq),
            Some(now + self.config.transaction_timeout),
        );
    }

    /// The next chunk when the session may send one and the socket keeps up.
    pub(super) fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let now = self.clock?;
        let may_send = !self.closed
            && self.connected
            && self.started
            && self.bound
            && self.backlog < self.config.max_backlog
            && self.transactions.len() < self.config.max_in_flight;
        if !may_send || self.out.sending.is_empty() {
            return None;
        }
        let mut msg = self.out.sending.pop_front()?;
        let total = msg.body.len();
        let len = (total - msg.sent).min(self.config.chunk_size);
        let start = msg.sent + 1;
        let end = msg.sent + len;
        let last = end == total;
        let mut headers = self.send_headers(msg.message_id.clone());
        headers.byte_range = Some(ByteRange {
            start: start as u64,
            end: Some(end as u64),
            total: Some(total as u64),
        });
        if msg.success_report {
            headers.success_report = Some(true);
        }
        let tid = self.transaction_id();
        let frame = write_request(
            &tid,
            &Method::Send,
            &headers,
            Some(Body {
                content_type: &msg.content_type,
                bytes: &msg.body[msg.sent..end],
            }),
            if last {
                Continuation::Complete
            } else {
                Continuation::More
            },
        );
        self.track(now, tid, PendingKind::Chunk { id: msg.id, last });
        msg.sent = end;
        self.out.queued_bytes -= len;
        self.stats.bytes_out += len as u64;
        self.backlog += frame.len();
        if last {
            self.stats.messages_out += 1;
        } else {
            // Round robin: the next message gets the next chunk.
            self.out.sending.push_back(msg);
        }
        Some(frame)
    }

    /// A transaction response to one of our requests.
    pub(super) fn handle_response(
        &mut self,
        now: Instant,
        tid: &str,
        kind: &FrameKind,
        headers: &Headers,
    ) {
        let FrameKind::Response { code, comment } = kind else {
            return;
        };
        let Some(pending) = self.transactions.remove(tid) else {
            // A late response, or one for a transaction we never had: nothing to do.
            return;
        };
        self.deadlines.cancel(Timer::Transaction(pending.seq));
        let code = *code;
        match pending.what {
            PendingKind::Auth => self.handle_auth_response(now, code, headers),
            PendingKind::Bind if code == 200 => self.became_ready(),
            PendingKind::Bind => self.finish(CloseReason::Refused { code }, true),
            PendingKind::Chunk { id, last } => {
                if code != 200 {
                    let reason = comment
                        .clone()
                        .unwrap_or_else(|| reason_phrase(code).to_owned());
                    self.fail(id, code, reason);
                    return;
                }
                self.became_ready();
                if !last {
                    return;
                }
                let Some(open) = self.out.open.get_mut(&id) else {
                    return;
                };
                open.accepted = true;
                let wants_report = open.success_report;
                self.event(MsrpEvent::Delivery {
                    id,
                    delivery: Delivery::Accepted,
                });
                if wants_report {
                    self.deadlines
                        .set(Timer::Report(id.0), Some(now + self.config.report_timeout));
                } else {
                    self.out.forget(id);
                }
            }
        }
    }

    /// A REPORT about one of our messages (RFC 4975 section 7.1.2).
    pub(super) fn handle_report(&mut self, headers: &Headers) {
        let (Some(message_id), Some(status)) = (&headers.message_id, &headers.status) else {
            return;
        };
        let Some(&id) = self.out.by_message_id.get(message_id) else {
            return;
        };
        if status.code == 200 {
            // A partial success report (a Byte-Range short of the whole) is not delivery.
            let whole = headers
                .byte_range
                .is_none_or(|r| r.end.is_some() && r.end == r.total);
            if !whole {
                return;
            }
            self.deadlines.cancel(Timer::Report(id.0));
            if self.out.forget(id).is_some() {
                self.event(MsrpEvent::Delivery {
                    id,
                    delivery: Delivery::Delivered,
                });
            }
        } else {
            let reason = status
                .comment
                .clone()
                .unwrap_or_else(|| reason_phrase(status.code).to_owned());
            self.fail(id, status.code, reason);
        }
    }

    /// Fails one message: no more chunks, no more timers.
    fn fail(&mut self, id: OutgoingId, code: u16, reason: String) {
        self.deadlines.cancel(Timer::Report(id.0));
        if self.out.forget(id).is_some() {
            self.event(MsrpEvent::Delivery {
                id,
                delivery: Delivery::Failed { code, reason },
            });
        }
    }

    /// A request got no response in time: the peer (or the path to it) is dead.
    pub(super) fn transaction_timeout(&mut self, seq: u64) {
        if self.transactions.values().any(|p| p.seq == seq) {
            self.finish(CloseReason::TransactionTimeout, true);
        }
    }

    /// A success report did not come: the message fails, the session goes on.
    pub(super) fn report_timeout(&mut self, id: OutgoingId) {
        self.fail(id, 408, "No delivery report".to_owned());
    }
}

/// RFC 4975 section 10's reason phrases.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        413 => "Message Too Large",
        415 => "Unsupported Media Type",
        423 => "Interval Out-of-Bounds",
        481 => "Session Does Not Exist",
        501 => "Method Not Implemented",
        506 => "Wrong Session",
        _ => "Error",
    }
}
