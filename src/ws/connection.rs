//! One WebSocket connection as a sans-IO state machine.
//!
//! Bytes from the socket go in through [`WsConnection::handle_input`]; bytes for the socket
//! come out of [`WsConnection::poll_transmit`]. The frame codec is tungstenite's
//! `WebSocketContext`, run over an in-memory buffer so it never touches a socket.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error as WsError, Message};

use engine::drops::{self, DropKind};

use super::http::{handle_request, Endpoint, Service, Upgrade};
use crate::sylkrtc::Dialect;

/// How long a client may take to send its upgrade request (guards against idle sockets).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long we wait for the client's reply to our close frame before dropping the socket.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// tungstenite's read buffer: it reads from our in-memory wire in chunks of this size and
/// grows the buffer to the size of a larger frame when one comes. Its default (128 KiB) is
/// allocated per connection and zero-filled on the first read, which made it 95 % of an idle
/// connection's memory; sylkRTC messages are small (an SDP offer is a few KiB).
const READ_BUFFER_SIZE: usize = 4096;
/// Buffers of an idle connection that grew past this for a burst are given back.
const KEEP_CAPACITY: usize = 16 * 1024;

/// Limits and timers of a connection.
#[derive(Debug, Clone)]
pub struct WsLimits {
    /// Allowed origins (`*` = any).
    pub origins: Vec<String>,
    /// With an allow-list, let requests without an Origin header through.
    pub allow_missing_origin: bool,
    /// Largest message and frame from the client.
    pub max_message_size: usize,
    /// Largest output waiting for the socket before the connection is closed.
    pub max_queued_output: usize,
    /// Server ping interval; zero disables pings.
    pub ping_interval: Duration,
    /// How long a pong may take.
    pub pong_timeout: Duration,
}

/// What the connection reports to the layer above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// The handshake completed; sylkRTC traffic may flow.
    Open {
        /// The negotiated dialect.
        dialect: Dialect,
        /// The browser's Origin header.
        origin: Option<String>,
    },
    /// A text message from the client.
    Text(String),
    /// The WebSocket is over (reported once, only after `Open`); remaining output should
    /// still be flushed before the socket is closed.
    Closed(CloseReason),
    /// An operational endpoint was asked for (never after `Open`): answer with
    /// [`WsConnection::respond`].
    Endpoint {
        /// Which.
        endpoint: Endpoint,
        /// `HEAD`: the response goes without its body.
        head: bool,
    },
}

/// Why a connection ended, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent a close frame (code as sent).
    ClientClosed(Option<u16>),
    /// We closed it (shutdown or a limit), with this code.
    ServerClosed(u16),
    /// The TCP connection ended without a close handshake.
    Eof,
    /// No pong within the timeout.
    PingTimeout,
    /// The client broke the protocol.
    ProtocolError(String),
}

#[derive(Debug)]
enum State {
    /// Collecting the HTTP upgrade request.
    Handshake { deadline: Instant },
    /// An endpoint request waits for the reactor's [`WsConnection::respond`].
    Endpoint { deadline: Instant },
    /// Frames flow.
    Open { ctx: Box<WebSocketContext> },
    /// We sent a close frame and wait for the client's reply until `deadline`.
    Closing {
        ctx: Box<WebSocketContext>,
        deadline: Instant,
    },
    /// Finished: flush what is left, then the socket may go.
    Done,
}

/// The in-memory "socket" tungstenite reads from and writes to.
#[derive(Debug, Default)]
struct WireBuffer {
    input: Vec<u8>,
    read_pos: usize,
    output: Vec<u8>,
    eof: bool,
}

impl Read for WireBuffer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.input.get(self.read_pos..).unwrap_or_default();
        if available.is_empty() {
            self.input.clear();
            if self.input.capacity() > KEEP_CAPACITY {
                self.input = Vec::new();
            }
            self.read_pos = 0;
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.read_pos += n;
        Ok(n)
    }
}

impl Write for WireBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A WebSocket connection engine.
#[derive(Debug)]
pub struct WsConnection {
    limits: WsLimits,
    service: Service,
    state: State,
    wire: WireBuffer,
    events: VecDeque<WsEvent>,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    opened: bool,
    /// The code of the client's close frame, reported once the handshake completes.
    client_close_code: Option<u16>,
    /// Why we started closing, reported when the close completes or times out.
    our_close: Option<CloseReason>,
}

impl WsConnection {
    /// A new connection accepted at `now`.
    pub fn new(now: Instant, limits: WsLimits) -> WsConnection {
        WsConnection {
            limits,
            service: Service::WEB,
            state: State::Handshake {
                deadline: now + HANDSHAKE_TIMEOUT,
            },
            wire: WireBuffer::default(),
            events: VecDeque::new(),
            next_ping: None,
            pong_deadline: None,
            opened: false,
            client_close_code: None,
            our_close: None,
        }
    }

    /// What the connection's listener serves (before any input; [`Service::WEB`] unless
    /// set).
    pub fn set_service(&mut self, service: Service) {
        self.service = service;
    }

    /// Draining: an upgrade request that has not been decided yet gets 503 with
    /// `Retry-After: retry_after` seconds.
    pub fn set_draining(&mut self, retry_after: u32) {
        self.service.draining = Some(retry_after);
    }

    /// Answers an [`WsEvent::Endpoint`] request with a complete HTTP response; the
    /// connection then closes.
    pub fn respond(&mut self, response: &[u8]) {
        if matches!(self.state, State::Endpoint { .. }) {
            self.wire.output.extend_from_slice(response);
            self.state = State::Done;
        }
    }

    /// Call with every chunk read from the socket (decrypted for TLS).
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if matches!(self.state, State::Done) {
            return;
        }
        self.wire.input.extend_from_slice(data);
        self.process(now);
    }

    /// Call when the socket reported end of stream (or an error).
    pub fn handle_eof(&mut self, now: Instant) {
        self.wire.eof = true;
        self.process(now);
        if !matches!(self.state, State::Done) {
            self.finish(CloseReason::Eof);
        }
    }

    /// Call when [`poll_timeout`](Self::poll_timeout) is due; early calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.state {
            State::Handshake { deadline } | State::Endpoint { deadline } if now >= *deadline => {
                // Not a WebSocket yet: nothing to report upward, just drop the socket.
                self.state = State::Done;
            }
            State::Closing { deadline, .. } if now >= *deadline => {
                let reason = self
                    .our_close
                    .take()
                    .unwrap_or(CloseReason::ServerClosed(1000));
                self.finish(reason);
            }
            State::Open { .. } => {
                if self.pong_deadline.is_some_and(|d| now >= d) {
                    self.close(now, CloseCode::Away, "ping timeout");
                    self.finish(CloseReason::PingTimeout);
                } else if self.next_ping.is_some_and(|p| now >= p) {
                    self.write_message(now, Message::Ping(Vec::new().into()));
                    self.pong_deadline = Some(now + self.limits.pong_timeout);
                    self.next_ping = Some(now + self.limits.ping_interval);
                }
            }
            _ => {}
        }
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Handshake { deadline }
            | State::Endpoint { deadline }
            | State::Closing { deadline, .. } => Some(*deadline),
            State::Open { .. } => match (self.next_ping, self.pong_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            State::Done => None,
        }
    }

    /// The next event for the layer above.
    pub fn poll_event(&mut self) -> Option<WsEvent> {
        self.events.pop_front()
    }

    /// Whether [`poll_event`](Self::poll_event) has an event.
    pub fn has_event(&self) -> bool {
        !self.events.is_empty()
    }

    /// Bytes waiting for the socket; after writing some, call
    /// [`advance_transmit`](Self::advance_transmit) with how many were written.
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        (!self.wire.output.is_empty()).then_some(&self.wire.output[..])
    }

    /// Marks `n` bytes of [`poll_transmit`](Self::poll_transmit) as written.
    pub fn advance_transmit(&mut self, n: usize) {
        let n = n.min(self.wire.output.len());
        self.wire.output.drain(..n);
        if self.wire.output.is_empty() && self.wire.output.capacity() > KEEP_CAPACITY {
            self.wire.output = Vec::new();
        }
    }

    /// Whether the reactor should read from the socket now: not while half the output limit
    /// waits for a client that does not read (its requests would only queue more replies;
    /// TCP flow control then pushes back on it), and not once the connection is done.
    pub fn wants_input(&self) -> bool {
        !matches!(self.state, State::Done)
            && self.wire.output.len() <= self.limits.max_queued_output / 2
    }

    /// Bytes queued for the socket.
    pub fn queued_output(&self) -> usize {
        self.wire.output.len()
    }

    /// True when the connection is over and all output has been handed to the socket: the
    /// reactor may close the socket now.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done) && self.wire.output.is_empty()
    }

    /// True once the WebSocket handshake completed.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open { .. })
    }

    /// Queues a text message. When the output queue would exceed its limit the connection
    /// is closed with 1008 instead (a client that does not read must not grow our memory).
    pub fn send_text(&mut self, now: Instant, text: String) {
        if !self.is_open() {
            return;
        }
        if self.wire.output.len() + text.len() > self.limits.max_queued_output {
            drops::record(
                now,
                DropKind::WsOutputOverflow,
                format_args!("closing a connection whose client does not read"),
            );
            self.close(now, CloseCode::Policy, "output queue overflow");
            return;
        }
        self.write_message(now, Message::Text(text.into()));
    }

    /// Starts the closing handshake with `code` (RFC 6455 section 7.1.2). Before the
    /// handshake completed the socket is just dropped. Messages received but not yet polled
    /// are discarded: nothing more from this client is processed (section 1.4: after sending
    /// a Close frame an endpoint needs no further data).
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) {
        let before = self.events.len();
        self.events.retain(|e| !matches!(e, WsEvent::Text(_)));
        if self.events.len() < before {
            drops::record(
                now,
                DropKind::WsAfterClose,
                format_args!(
                    "{} queued messages discarded on close",
                    before - self.events.len()
                ),
            );
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Open { mut ctx } => {
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                self.our_close
                    .get_or_insert(CloseReason::ServerClosed(code.into()));
                match ctx.close(&mut self.wire, Some(frame)) {
                    Ok(()) => {
                        self.state = State::Closing {
                            ctx,
                            deadline: now + CLOSE_TIMEOUT,
                        }
                    }
                    Err(_) => {
                        let reason = self
                            .our_close
                            .take()
                            .unwrap_or(CloseReason::ServerClosed(code.into()));
                        self.finish(reason);
                    }
                }
            }
            State::Closing { ctx, deadline } => self.state = State::Closing { ctx, deadline },
            State::Handshake { .. } | State::Endpoint { .. } | State::Done => {}
        }
    }

    fn write_message(&mut self, now: Instant, message: Message) {
        if let State::Open { ctx } = &mut self.state {
            if let Err(e) = ctx
                .write(&mut self.wire, message)
                .and_then(|()| ctx.flush(&mut self.wire))
            {
                self.fail(now, e);
            }
        }
    }

    /// Reports the end once; the socket is closed after the output drains.
    fn finish(&mut self, reason: CloseReason) {
        self.state = State::Done;
        self.pong_deadline = None;
        self.next_ping = None;
        if self.opened {
            self.opened = false;
            self.events.push_back(WsEvent::Closed(reason));
        }
    }

    fn process(&mut self, now: Instant) {
        if let State::Handshake { .. } = self.state {
            self.process_handshake(now);
        }
        self.process_frames(now);
    }

    fn process_handshake(&mut self, now: Instant) {
        let pending = self
            .wire
            .input
            .get(self.wire.read_pos..)
            .unwrap_or_default();
        let deadline = match self.state {
            State::Handshake { deadline } => deadline,
            _ => now,
        };
        match handle_request(
            pending,
            &self.limits.origins,
            self.limits.allow_missing_origin,
            &self.service,
        ) {
            Upgrade::Endpoint { endpoint, head } => {
                self.wire.input.clear();
                self.wire.read_pos = 0;
                self.state = State::Endpoint { deadline };
                self.events.push_back(WsEvent::Endpoint { endpoint, head });
            }
            Upgrade::Incomplete => {
                if self.wire.eof {
                    self.state = State::Done;
                }
            }
            Upgrade::Reject { status, response } => {
                drops::record_quiet(
                    DropKind::WsUpgradeRefused,
                    format_args!("upgrade refused with {status}"),
                );
                self.wire.output.extend_from_slice(response.as_bytes());
                self.wire.input.clear();
                self.wire.read_pos = 0;
                self.state = State::Done;
            }
            Upgrade::Accept {
                dialect,
                origin,
                response,
                consumed,
            } => {
                self.wire.output.extend_from_slice(response.as_bytes());
                self.wire.read_pos += consumed;
                let config = WebSocketConfig::default()
                    .read_buffer_size(READ_BUFFER_SIZE)
                    .max_message_size(Some(self.limits.max_message_size))
                    .max_frame_size(Some(self.limits.max_message_size));
                self.state = State::Open {
                    ctx: Box::new(WebSocketContext::new(Role::Server, Some(config))),
                };
                self.opened = true;
                if !self.limits.ping_interval.is_zero() {
                    self.next_ping = Some(now + self.limits.ping_interval);
                }
                self.events.push_back(WsEvent::Open { dialect, origin });
            }
        }
    }

    fn process_frames(&mut self, now: Instant) {
        loop {
            let ctx = match &mut self.state {
                State::Open { ctx } | State::Closing { ctx, .. } => ctx,
                State::Handshake { .. } | State::Endpoint { .. } | State::Done => return,
            };
            match ctx.read(&mut self.wire) {
                Ok(Message::Text(text)) => {
                    if let State::Open { .. } = self.state {
                        self.events.push_back(WsEvent::Text(text.to_string()));
                    } else {
                        drops::record(
                            now,
                            DropKind::WsAfterClose,
                            format_args!("message received while closing"),
                        );
                    }
                }
                Ok(Message::Binary(data)) => {
                    // sylkRTC is JSON text only; SylkServer logs and ignores binary frames.
                    drops::record(
                        now,
                        DropKind::WsBinaryFrame,
                        format_args!("ignoring a binary frame of {} bytes", data.len()),
                    );
                }
                Ok(Message::Pong(_)) => self.pong_deadline = None,
                Ok(Message::Ping(_) | Message::Frame(_)) => {}
                Ok(Message::Close(frame)) => {
                    // tungstenite queued our reply; the next read reports ConnectionClosed.
                    if let State::Open { .. } = self.state {
                        self.client_close_code = frame.map(|f| u16::from(f.code));
                    }
                }
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                    let reason = match self.state {
                        State::Closing { .. } => self
                            .our_close
                            .take()
                            .unwrap_or(CloseReason::ServerClosed(1000)),
                        _ => CloseReason::ClientClosed(self.client_close_code),
                    };
                    self.finish(reason);
                    return;
                }
                Err(e) => {
                    self.fail(now, e);
                    return;
                }
            }
        }
    }

    /// A protocol violation or limit: close with the matching code (RFC 6455 section 7.4.1).
    fn fail(&mut self, now: Instant, e: WsError) {
        let code = match &e {
            WsError::Capacity(_) => CloseCode::Size,
            WsError::Utf8(_) => CloseCode::Invalid,
            WsError::Protocol(_) => CloseCode::Protocol,
            _ => CloseCode::Error,
        };
        let reason = match &e {
            WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
                CloseReason::Eof
            }
            _ => CloseReason::ProtocolError(e.to_string()),
        };
        if self.wire.eof {
            self.finish(reason);
            return;
        }
        drops::record(
            now,
            DropKind::WsProtocolError,
            format_args!("closing with {}: {e}", u16::from(code)),
        );
        // RFC 6455 section 7.1.7, "Fail the WebSocket Connection": send our close frame and
        // drop the connection without waiting; the input may be desynchronised anyway.
        self.close(now, code, "");
        self.finish(reason);
    }
}

#[cfg(test)]
mod tests;
