//! One TCP (or TLS) connection's life as every engine that speaks over TCP (SIP, MSRP,
//! XCAP) has it: registered with its token, a connect completed when the socket turns
//! writable, reads bounded by the turn's [`READ_BUDGET`], what
//! is queued written and the interest re-armed, and closed on end of stream or a failed
//! write. What differs per engine (where the bytes go, what a connect or a close tells it,
//! what it keeps after a write) is its [`StreamSet`]'s.

use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry};
use rustls::Connection;

use super::stream::{self, ByteQueue, Outgoing, ReadStatus, READ_BUDGET};
use super::tcp::{self, ConnectProgress, SocketError};
use super::token::{self, Generations, TokenKind};
use crate::switchboard::Switchboard;

/// The part of a connection the driver handles, the same for every engine.
#[derive(Debug)]
pub(super) struct TcpConn {
    /// Tells this connection's readiness events from those of an earlier one with its key.
    pub(super) generation: u32,
    pub(super) remote: SocketAddr,
    pub(super) socket: TcpStream,
    pub(super) tls: Option<Box<Connection>>,
    /// Bytes waiting for the socket.
    pub(super) out: ByteQueue,
    /// Outbound connect still in progress.
    pub(super) connecting: bool,
    /// What the socket is registered for.
    pub(super) interest: Interest,
}

impl TcpConn {
    /// Registers `socket` as connection `key` of `kind` (readable, and writable while it
    /// connects).
    pub(super) fn register(
        registry: &Registry,
        generations: &mut Generations,
        (kind, key): (TokenKind, usize),
        remote: SocketAddr,
        mut socket: TcpStream,
        tls: Option<Box<Connection>>,
        connecting: bool,
    ) -> Result<TcpConn, SocketError> {
        let generation = generations.advance();
        let interest = tcp::interest(false, None, connecting);
        let what = match kind {
            TokenKind::SipStream => "SIP",
            TokenKind::MsrpStream => "MSRP",
            TokenKind::XcapStream => "XCAP",
            _ => "TCP",
        };
        let token = token::encode(kind, key, generation);
        tcp::register(registry, &mut socket, token, interest, what)?;
        Ok(TcpConn {
            generation,
            remote,
            socket,
            tls,
            out: ByteQueue::default(),
            connecting,
            interest,
        })
    }

    /// Reads at most a turn's [`READ_BUDGET`] (ciphertext for TLS), handing the plaintext
    /// to `deliver`.
    pub(super) fn read(&mut self, buf: &mut [u8], deliver: &mut dyn FnMut(&[u8])) -> ReadStatus {
        stream::read_available(
            &mut self.socket,
            self.tls.as_deref_mut(),
            buf,
            READ_BUDGET,
            deliver,
        )
    }
}

/// An engine's connections, as [`handle_ready`] and [`flush`] drive them.
pub(super) trait StreamSet {
    /// Log prefix (`sip`, `msrp`, `xcap`).
    const LABEL: &'static str;
    /// The token kind of the connections.
    const KIND: TokenKind;

    /// Connection `key`'s TCP part.
    fn tcp(&mut self, key: usize) -> Option<&mut TcpConn>;

    /// `key`'s outbound connect completed.
    fn handle_connected(&mut self, key: usize, now: Instant, board: &mut Switchboard);

    /// Reads what `key` has, within the turn's budget, into its engine. The driver closes
    /// the connection when this says [`ReadStatus::Closed`] (an engine that refuses the
    /// connection may drop it here first).
    fn read(
        &mut self,
        key: usize,
        now: Instant,
        registry: &Registry,
        board: &mut Switchboard,
        buf: &mut [u8],
    ) -> ReadStatus;

    /// `key`'s queue was written (all or some of it, see `out`).
    fn handle_written(&mut self, key: usize, board: &mut Switchboard);

    /// Drops connection `key` (if it is still there) and tells its engine.
    fn close(&mut self, key: usize, now: Instant, registry: &Registry, board: &mut Switchboard);
}

/// Readiness on connection `key` of `set`: finishes a connect, reads within the turn's
/// budget, writes. [`ReadStatus::More`] asks for a read on the next turn.
pub(super) fn handle_ready<S: StreamSet>(
    set: &mut S,
    (key, generation): (usize, u32),
    now: Instant,
    registry: &Registry,
    board: &mut Switchboard,
    buf: &mut [u8],
) -> ReadStatus {
    let Some(c) = set.tcp(key).filter(|c| c.generation == generation) else {
        // Stale: an event for a connection whose key was reused.
        return ReadStatus::Drained;
    };
    if c.connecting {
        // A non-blocking connect is done when the socket turns writable; SO_ERROR (or a
        // missing peer address) tells whether it worked.
        match tcp::connect_progress(&c.socket) {
            ConnectProgress::Done => {
                c.connecting = false;
                set.handle_connected(key, now, board);
            }
            ConnectProgress::Pending => return ReadStatus::Drained,
            ConnectProgress::Failed => {
                log::info!("{}: connection to {} failed", S::LABEL, c.remote);
                set.close(key, now, registry, board);
                return ReadStatus::Closed;
            }
        }
    }
    let status = set.read(key, now, registry, board, buf);
    if status == ReadStatus::Closed {
        set.close(key, now, registry, board);
        return status;
    }
    flush(set, key, now, registry, board);
    status
}

/// Writes what connection `key` of `set` has queued, as far as the socket takes it, and
/// re-arms its interest; a failed write closes it.
pub(super) fn flush<S: StreamSet>(
    set: &mut S,
    key: usize,
    now: Instant,
    registry: &Registry,
    board: &mut Switchboard,
) {
    let Some(c) = set.tcp(key) else {
        return;
    };
    if c.connecting {
        return;
    }
    if let Err(e) = stream::write_available(&mut c.socket, c.tls.as_deref_mut(), &mut c.out) {
        log::info!("{}: write to {} failed: {e}", S::LABEL, c.remote);
        set.close(key, now, registry, board);
        return;
    }
    let wanted = tcp::interest(c.out.pending().is_some(), c.tls.as_deref(), false);
    let token = token::encode(S::KIND, key, c.generation);
    tcp::rearm(registry, &mut c.socket, token, &mut c.interest, wanted);
    set.handle_written(key, board);
}
