//! A WebSocket client's socket: TCP, optional TLS, and its WebSocket engine.

use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::Interest;
use rustls::Connection;

use super::stream::{self, Outgoing, ReadStatus, READ_BUDGET};
use crate::gateway::ConnRef;
use crate::ws::WsConnection;

impl Outgoing for WsConnection {
    fn pending(&self) -> Option<&[u8]> {
        self.poll_transmit()
    }

    fn advance(&mut self, n: usize) {
        self.advance_transmit(n);
    }
}

/// One accepted client connection.
pub struct ClientStream {
    /// Generation of this slab entry (see `token`).
    pub generation: u32,
    /// Connection id for log lines.
    pub log_id: u64,
    /// Remote address.
    pub peer: SocketAddr,
    /// The socket.
    pub socket: TcpStream,
    /// TLS state for `wss://`.
    pub tls: Option<Box<Connection>>,
    /// The WebSocket engine.
    pub ws: WsConnection,
    /// Its handle as the gateway knows it, once the handshake completed.
    pub client: Option<ConnRef>,
    /// The negotiated dialect, from the handshake on (until the stream is reaped).
    pub dialect: Option<crate::sylkrtc::Dialect>,
    /// The interest currently registered with mio.
    pub interest: Interest,
    /// The deadline already pushed to the reactor's timer heap.
    pub armed_timeout: Option<Instant>,
    /// The socket failed or reached EOF: no more reads or writes.
    pub dead: bool,
    /// A read was skipped because the engine wanted no input (output backlog).
    pub read_paused: bool,
    /// Requests read but not routed yet (the turn's routing budget ran out): it is in the
    /// reactor's `ws_backlog`, and not read until they are routed.
    pub backlog: bool,
}

impl ClientStream {
    /// Reads up to one turn's budget into the engine, unless the engine wants no input now
    /// (its client does not read our output). `scratch` is the reactor's shared buffer.
    /// Returns [`ReadStatus::More`] when the socket may hold more for the next turn.
    pub fn read_ready(&mut self, now: Instant, scratch: &mut [u8]) -> ReadStatus {
        if self.dead {
            return ReadStatus::Closed;
        }
        if !self.ws.wants_input() {
            // Left in the kernel: TCP flow control pushes back on the client. The reactor
            // reads again once the output drained (see `Reactor::flush_and_rearm`).
            self.read_paused = true;
            return ReadStatus::Drained;
        }
        let ws = &mut self.ws;
        let status = stream::read_available(
            &mut self.socket,
            self.tls.as_deref_mut(),
            scratch,
            READ_BUDGET,
            &mut |bytes| ws.handle_input(now, bytes),
        );
        if status == ReadStatus::Closed {
            self.dead = true;
            self.ws.handle_eof(now);
        }
        status
    }

    /// True once, when reading was paused and the engine wants input again.
    pub fn take_resumed(&mut self) -> bool {
        if self.read_paused && !self.dead && self.ws.wants_input() {
            self.read_paused = false;
            return true;
        }
        false
    }

    /// Writes as much pending output as the socket takes. Errors mark the stream dead.
    pub fn write_ready(&mut self, now: Instant) {
        if self.dead {
            return;
        }
        if let Err(e) =
            stream::write_available(&mut self.socket, self.tls.as_deref_mut(), &mut self.ws)
        {
            log::debug!("conn={} write failed: {e}", self.log_id);
            self.dead = true;
            self.ws.handle_eof(now);
        }
    }

    /// Whether anything waits for the socket.
    pub fn wants_write(&self) -> bool {
        !self.dead
            && (self.ws.queued_output() > 0 || self.tls.as_ref().is_some_and(|t| t.wants_write()))
    }

    /// True when the connection can be dropped: the engine is done and its output flushed,
    /// or the socket is dead.
    pub fn is_finished(&self) -> bool {
        self.dead || (self.ws.is_finished() && !self.wants_write())
    }

    /// Best-effort TLS close_notify before the socket is dropped.
    pub fn shutdown(&mut self) {
        let tls = if self.dead {
            None
        } else {
            self.tls.as_deref_mut()
        };
        stream::shutdown(&mut self.socket, tls);
    }
}
