//! Moving bytes between a non-blocking TCP socket, optional TLS, and an engine. Shared by
//! WebSocket clients and SIP connections. Reads are drained to `WouldBlock` (mio readiness
//! is edge-triggered).

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::Connection;

/// Plaintext handed to rustls per call: one TLS record's worth, so the queue stays with the
/// engine (where its limit applies) instead of growing unbounded inside rustls.
const TLS_CHUNK: usize = 16 * 1024;

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

/// Reads everything available, handing plaintext to `deliver`. Returns true on EOF or a
/// fatal error (the connection is over).
pub fn read_available(
    socket: &mut TcpStream,
    tls: Option<&mut Connection>,
    buf: &mut [u8],
    deliver: &mut dyn FnMut(&[u8]),
) -> bool {
    match tls {
        None => read_plain(socket, buf, deliver),
        Some(tls) => read_tls(socket, tls, buf, deliver),
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

fn read_plain(socket: &mut TcpStream, buf: &mut [u8], deliver: &mut dyn FnMut(&[u8])) -> bool {
    loop {
        match socket.read(buf) {
            Ok(0) => return true,
            Ok(n) => deliver(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

fn read_tls(
    socket: &mut TcpStream,
    tls: &mut Connection,
    buf: &mut [u8],
    deliver: &mut dyn FnMut(&[u8]),
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
                    deliver(&buf[..n]);
                }
                Err(_) => break,
            }
        }
        if state.peer_has_closed() {
            return true;
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
