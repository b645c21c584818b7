//! Moving bytes between a non-blocking TCP socket, optional TLS, and an engine. Shared by
//! WebSocket clients and SIP connections.
//!
//! Reads are bounded: one call reads at most a budget of bytes, so one peer that keeps its
//! socket full cannot starve the others (mio readiness is edge-triggered, so the reactor
//! remembers a connection whose budget ran out and reads it again on its next turn).

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::Connection;

/// Plaintext handed to rustls per call: one TLS record's worth, so the queue stays with the
/// engine (where its limit applies) instead of growing unbounded inside rustls.
const TLS_CHUNK: usize = 16 * 1024;

/// Bytes one connection may read per reactor turn: a few reads of the scratch buffer, enough
/// for any legitimate burst (an SDP offer is a few KiB), small enough that a flooding peer
/// costs the others well under a millisecond per turn.
pub const READ_BUDGET: usize = 16 * 1024;

/// How a bounded read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    /// The socket said `WouldBlock`: wait for the next readiness event.
    Drained,
    /// The budget ran out with the socket possibly still readable: read again next turn.
    More,
    /// End of stream or a fatal error: the connection is over.
    Closed,
}

/// Output waiting for a socket.
pub trait Outgoing {
    /// The bytes to write next, if any.
    fn pending(&self) -> Option<&[u8]>;
    /// `n` bytes of [`pending`](Self::pending) were written.
    fn advance(&mut self, n: usize);
}

/// A plain byte queue (SIP connections).
#[derive(Debug, Default)]
pub struct ByteQueue(Vec<u8>);

impl ByteQueue {
    /// Appends bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Outgoing for ByteQueue {
    fn pending(&self) -> Option<&[u8]> {
        (!self.0.is_empty()).then_some(&self.0[..])
    }

    fn advance(&mut self, n: usize) {
        let n = n.min(self.0.len());
        self.0.drain(..n);
    }
}

/// Reads up to `budget` bytes from the socket (ciphertext for TLS), handing plaintext to
/// `deliver`.
pub fn read_available(
    socket: &mut TcpStream,
    tls: Option<&mut Connection>,
    buf: &mut [u8],
    budget: usize,
    deliver: &mut dyn FnMut(&[u8]),
) -> ReadStatus {
    match tls {
        None => read_plain(socket, buf, budget, deliver),
        Some(tls) => read_tls(socket, tls, buf, budget, deliver),
    }
}

/// Writes as much of `out` as the socket takes.
pub fn write_available(
    socket: &mut TcpStream,
    tls: Option<&mut Connection>,
    out: &mut dyn Outgoing,
) -> io::Result<()> {
    match tls {
        None => write_plain(socket, out),
        Some(tls) => write_tls(socket, tls, out),
    }
}

fn read_plain(
    socket: &mut TcpStream,
    buf: &mut [u8],
    mut budget: usize,
    deliver: &mut dyn FnMut(&[u8]),
) -> ReadStatus {
    loop {
        if budget == 0 {
            return ReadStatus::More;
        }
        let len = buf.len().min(budget);
        match socket.read(&mut buf[..len]) {
            Ok(0) => return ReadStatus::Closed,
            Ok(n) => {
                budget -= n;
                deliver(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadStatus::Drained,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return ReadStatus::Closed,
        }
    }
}

fn read_tls(
    socket: &mut TcpStream,
    tls: &mut Connection,
    buf: &mut [u8],
    mut budget: usize,
    deliver: &mut dyn FnMut(&[u8]),
) -> ReadStatus {
    loop {
        if budget == 0 {
            return ReadStatus::More;
        }
        match tls.read_tls(socket) {
            Ok(0) => return ReadStatus::Closed,
            Ok(n) => budget = budget.saturating_sub(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadStatus::Drained,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return ReadStatus::Closed,
        }
        let state = match tls.process_new_packets() {
            Ok(state) => state,
            Err(e) => {
                log::info!("tls: handshake or record error: {e}");
                // Send the alert rustls queued, then give up on the connection.
                let _ = tls.write_tls(socket);
                return ReadStatus::Closed;
            }
        };
        let mut plain = state.plaintext_bytes_to_read();
        while plain > 0 {
            match tls.reader().read(buf) {
                Ok(0) => break,
                Ok(n) => {
                    plain = plain.saturating_sub(n);
                    deliver(&buf[..n]);
                }
                Err(_) => break,
            }
        }
        if state.peer_has_closed() {
            return ReadStatus::Closed;
        }
    }
}

fn write_plain(socket: &mut TcpStream, out: &mut dyn Outgoing) -> io::Result<()> {
    while let Some(bytes) = out.pending() {
        match socket.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => out.advance(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn write_tls(
    socket: &mut TcpStream,
    tls: &mut Connection,
    out: &mut dyn Outgoing,
) -> io::Result<()> {
    loop {
        if !tls.wants_write() {
            // Feed rustls only once its previous records left (see TLS_CHUNK).
            let Some(bytes) = out.pending() else {
                return Ok(());
            };
            if tls.is_handshaking() && matches!(tls, Connection::Server(_)) {
                // A server has nothing to say before the handshake completes.
                return Ok(());
            }
            // A client's early writes are buffered by rustls until the handshake is done.
            let n = tls.writer().write(&bytes[..bytes.len().min(TLS_CHUNK)])?;
            out.advance(n);
            if n == 0 {
                return Ok(());
            }
        }
        match tls.write_tls(socket) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Best-effort TLS close_notify and TCP shutdown before a socket is dropped.
pub fn shutdown(socket: &mut TcpStream, tls: Option<&mut Connection>) {
    if let Some(tls) = tls {
        tls.send_close_notify();
        let _ = tls.write_tls(socket);
    }
    let _ = socket.shutdown(std::net::Shutdown::Both);
}
