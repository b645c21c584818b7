//! A client's TCP stream, optionally wrapped in TLS, moving bytes between the socket and its
//! WebSocket engine. Reads are drained to `WouldBlock` (mio readiness is edge-triggered).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::Interest;
use rustls::ServerConnection;

use crate::gateway::ClientId;
use crate::ws::WsConnection;

/// Plaintext handed to rustls per call: one TLS record's worth, so the queue stays in the
/// engine where its limit applies.
const TLS_CHUNK: usize = 16 * 1024;

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
    pub tls: Option<Box<ServerConnection>>,
    /// The WebSocket engine.
    pub ws: WsConnection,
    /// The gateway's id once the handshake completed.
    pub client: Option<ClientId>,
    /// The interest currently registered with mio.
    pub interest: Interest,
    /// The deadline already pushed to the reactor's timer heap.
    pub armed_timeout: Option<Instant>,
    /// The socket failed or reached EOF: no more reads or writes.
    pub dead: bool,
}

impl ClientStream {
    /// Reads everything available into the engine. `scratch` is the reactor's shared buffer.
    pub fn read_ready(&mut self, now: Instant, scratch: &mut [u8]) {
        if self.dead {
            return;
        }
        let eof = match &mut self.tls {
            None => read_plain(&mut self.socket, &mut self.ws, now, scratch),
            Some(tls) => read_tls(&mut self.socket, tls, &mut self.ws, now, scratch),
        };
        if eof {
            self.dead = true;
            self.ws.handle_eof(now);
        }
    }

    /// Writes as much pending output as the socket takes. Errors mark the stream dead.
    pub fn write_ready(&mut self, now: Instant) {
        if self.dead {
            return;
        }
        let result = match &mut self.tls {
            None => write_plain(&mut self.socket, &mut self.ws),
            Some(tls) => write_tls(&mut self.socket, tls, &mut self.ws),
        };
        if let Err(e) = result {
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
        if let (Some(tls), false) = (&mut self.tls, self.dead) {
            tls.send_close_notify();
            let _ = tls.write_tls(&mut self.socket);
        }
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

/// Returns true on EOF or a fatal error.
fn read_plain(socket: &mut TcpStream, ws: &mut WsConnection, now: Instant, buf: &mut [u8]) -> bool {
    loop {
        match socket.read(buf) {
            Ok(0) => return true,
            Ok(n) => ws.handle_input(now, &buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// Returns true on EOF or a fatal error.
fn read_tls(
    socket: &mut TcpStream,
    tls: &mut ServerConnection,
    ws: &mut WsConnection,
    now: Instant,
    buf: &mut [u8],
) -> bool {
    loop {
        match tls.read_tls(socket) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
        let state = match tls.process_new_packets() {
            Ok(state) => state,
            Err(e) => {
                log::info!("tls: handshake or record error: {e}");
                // Send the alert rustls queued, then give up on the connection.
                let _ = tls.write_tls(socket);
                return true;
            }
        };
        let mut plain = state.plaintext_bytes_to_read();
        while plain > 0 {
            match tls.reader().read(buf) {
                Ok(0) => break,
                Ok(n) => {
                    plain = plain.saturating_sub(n);
                    ws.handle_input(now, &buf[..n]);
                }
                Err(_) => break,
            }
        }
        if state.peer_has_closed() {
            return true;
        }
    }
}

fn write_plain(socket: &mut TcpStream, ws: &mut WsConnection) -> io::Result<()> {
    while let Some(out) = ws.poll_transmit() {
        match socket.write(out) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => ws.advance_transmit(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn write_tls(
    socket: &mut TcpStream,
    tls: &mut ServerConnection,
    ws: &mut WsConnection,
) -> io::Result<()> {
    loop {
        if !tls.wants_write() {
            // Only feed rustls once its previous records left, keeping at most one chunk
            // inside it (its own buffer is not bounded by our limit).
            let Some(out) = ws.poll_transmit() else {
                return Ok(());
            };
            if tls.is_handshaking() {
                // Application data waits for the handshake; rustls would buffer it anyway.
                return Ok(());
            }
            let n = tls.writer().write(&out[..out.len().min(TLS_CHUNK)])?;
            ws.advance_transmit(n);
        }
        match tls.write_tls(socket) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
