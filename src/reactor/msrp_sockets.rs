//! Chat sessions' MSRP sockets: the TCP (and optional TLS) listener for peers that connect
//! to us, and one TCP/TLS connection per session (ours, or accepted). Bytes go to the
//! session's engine in the switchboard; its transmits come back here.
//!
//! An accepted connection belongs to no session until its first frame names one in its
//! To-Path ([`Switchboard::claim_msrp`], RFC 4975 section 5.4); it may send at most
//! [`MAX_CLAIM_BYTES`] and take [`CLAIM_TIMEOUT`] to do so. Output waiting for a socket is
//! bounded ([`MAX_QUEUE`]); the engine hears how much waits after every write, and produces
//! no further chunks while a slow peer has not taken the last ones.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::Deadlines;
use mio::net::{TcpListener, TcpStream};
use mio::Registry;
use rustls::{ClientConfig, Connection, ServerConfig};
use slab::Slab;

use super::stream::{self, ReadStatus};
use super::stream_set::{self, StreamSet, TcpConn};
use super::tcp::{self, SocketError};
use super::token::{self, Generations, TokenKind};
use crate::switchboard::{Claim, MsrpId, Switchboard, MAX_CLAIM_BYTES};
use msrp::MsrpTransmit;

/// Most output bytes queued for one MSRP connection before it is closed (a peer that stopped
/// reading while we answer its frames; the engine itself stops sending chunks far earlier).
const MAX_QUEUE: usize = 1024 * 1024;
/// How long an accepted connection may take to name its session.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections open at once (ours and accepted), a bound on what peers can make us
/// hold.
const MAX_CONNECTIONS: usize = 20_000;
/// Listener keys inside [`TokenKind::MsrpListener`].
const PLAIN: usize = 0;
const TLS: usize = 1;

struct MsrpSocket {
    tcp: TcpConn,
    /// The session's engine; `None` for an accepted connection that has not named it yet.
    engine: Option<MsrpId>,
    /// An accepted connection's first bytes, until they name a session.
    claim: Vec<u8>,
    /// The backlog last reported to the engine.
    reported: usize,
}

/// The addresses the MSRP listeners are bound to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsrpAddresses {
    /// Plain TCP.
    pub plain: Option<SocketAddr>,
    /// TLS.
    pub tls: Option<SocketAddr>,
}

/// The MSRP sockets.
pub struct MsrpSockets {
    listeners: [Option<TcpListener>; 2],
    tls_server: Option<Arc<ServerConfig>>,
    tls_client: Arc<ClientConfig>,
    conns: Slab<MsrpSocket>,
    by_engine: HashMap<MsrpId, usize>,
    /// Accepted connections that must name their session by then.
    claims: Deadlines<usize>,
    /// Accepted connections closed because they named no live session (metrics).
    pub refused: u64,
}

impl MsrpSockets {
    /// Binds the listeners.
    pub fn bind(
        registry: &Registry,
        plain: Option<SocketAddr>,
        tls: Option<(SocketAddr, Arc<ServerConfig>)>,
        tls_client: Arc<ClientConfig>,
    ) -> Result<MsrpSockets, SocketError> {
        let mut listeners = [None, None];
        let mut tls_server = None;
        for (key, addr) in [(PLAIN, plain), (TLS, tls.as_ref().map(|(a, _)| *a))] {
            let Some(addr) = addr else { continue };
            let token = token::encode(TokenKind::MsrpListener, key, 0);
            listeners[key] = Some(tcp::listen(registry, addr, token, "MSRP listener")?);
        }
        if let Some((_, config)) = tls {
            tls_server = Some(config);
        }
        Ok(MsrpSockets {
            listeners,
            tls_server,
            tls_client,
            conns: Slab::new(),
            by_engine: HashMap::new(),
            claims: Deadlines::new(),
            refused: 0,
        })
    }

    /// The bound listener addresses.
    pub fn addresses(&self) -> MsrpAddresses {
        let addr = |k: usize| self.listeners[k].as_ref().and_then(|l| l.local_addr().ok());
        MsrpAddresses {
            plain: addr(PLAIN),
            tls: addr(TLS),
        }
    }

    /// Replaces the TLS server certificate for connections accepted from now on (SIGHUP).
    pub fn set_tls_server(&mut self, config: Arc<ServerConfig>) {
        if self.tls_server.is_some() {
            self.tls_server = Some(config);
        }
    }

    /// Open connections (leak checks, metrics).
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Accepted connections still to name a session must by then.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.claims.earliest()
    }

    /// Closes accepted connections that did not name a session in time.
    pub fn handle_timeout(&mut self, now: Instant, registry: &Registry) {
        while let Some(key) = self.claims.pop_due(now) {
            if self.conns.get(key).is_some_and(|c| c.engine.is_none()) {
                self.refused += 1;
                self.drop_socket(key, registry);
            }
        }
    }

    /// Accepts every pending connection on listener `key`.
    pub fn accept(
        &mut self,
        key: usize,
        now: Instant,
        registry: &Registry,
        generations: &mut Generations,
    ) {
        let tls = self.tls_server.clone().filter(|_| key == TLS);
        loop {
            let Some(listener) = self.listeners.get(key).and_then(|l| l.as_ref()) else {
                return;
            };
            let Some(a) = tcp::accept_next(listener, tls.as_ref(), "msrp") else {
                return;
            };
            if self.conns.len() >= MAX_CONNECTIONS {
                log::warn!(
                    "msrp: refusing connection from {}: too many connections",
                    a.remote
                );
                self.refused += 1;
                continue;
            }
            if let Some(k) = self.insert(
                registry,
                generations,
                None,
                a.remote,
                a.socket,
                a.tls,
                false,
            ) {
                self.claims.set(k, Some(now + CLAIM_TIMEOUT));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        registry: &Registry,
        generations: &mut Generations,
        engine: Option<MsrpId>,
        remote: SocketAddr,
        socket: TcpStream,
        tls: Option<Box<Connection>>,
        connecting: bool,
    ) -> Option<usize> {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let tcp = TcpConn::register(
            registry,
            generations,
            (TokenKind::MsrpStream, key),
            remote,
            socket,
            tls,
            connecting,
        )
        .ok()?;
        entry.insert(MsrpSocket {
            tcp,
            engine,
            claim: Vec::new(),
            reported: 0,
        });
        if let Some(id) = engine {
            self.by_engine.insert(id, key);
        }
        Some(key)
    }

    /// Carries out one transmit of `id`'s engine.
    pub fn transmit(
        &mut self,
        id: MsrpId,
        t: MsrpTransmit,
        now: Instant,
        registry: &Registry,
        generations: &mut Generations,
        board: &mut Switchboard,
    ) {
        match t {
            MsrpTransmit::Connect { addr, tls } => {
                let tls = tls.as_deref().map(|name| (&self.tls_client, name));
                let inserted = match tcp::connect(addr, tls) {
                    Ok((socket, tls)) => {
                        self.insert(registry, generations, Some(id), addr, socket, tls, true)
                    }
                    Err(e) => {
                        log::info!("msrp: cannot connect to {addr}: {e}");
                        None
                    }
                };
                if inserted.is_none() {
                    board.handle_msrp_closed(now, id);
                }
            }
            MsrpTransmit::Data(bytes) => {
                let Some(&key) = self.by_engine.get(&id) else {
                    board.handle_msrp_closed(now, id);
                    return;
                };
                let Some(c) = self.conns.get_mut(key) else {
                    return;
                };
                if c.tcp.out.len() + bytes.len() > MAX_QUEUE {
                    log::warn!(
                        "msrp: connection to {} is not reading; closing it",
                        c.tcp.remote
                    );
                    self.close(key, now, registry, board);
                    return;
                }
                c.tcp.out.push(&bytes);
                stream_set::flush(self, key, now, registry, board);
            }
            MsrpTransmit::Close => {
                if let Some(&key) = self.by_engine.get(&id) {
                    if let Some(c) = self.conns.get_mut(key) {
                        // What is queued (a last response) goes first, best effort.
                        let c = &mut c.tcp;
                        let _ = stream::write_available(
                            &mut c.socket,
                            c.tls.as_deref_mut(),
                            &mut c.out,
                        );
                        stream::shutdown(&mut c.socket, c.tls.as_deref_mut());
                    }
                    self.drop_socket(key, registry);
                }
            }
        }
    }

    fn drop_socket(&mut self, key: usize, registry: &Registry) {
        if !self.conns.contains(key) {
            return;
        }
        let mut c = self.conns.remove(key);
        if let Some(id) = c.engine {
            if self.by_engine.get(&id) == Some(&key) {
                self.by_engine.remove(&id);
            }
        }
        self.claims.cancel(key);
        let _ = registry.deregister(&mut c.tcp.socket);
    }
}

impl StreamSet for MsrpSockets {
    const LABEL: &'static str = "msrp";
    const KIND: TokenKind = TokenKind::MsrpStream;

    fn tcp(&mut self, key: usize) -> Option<&mut TcpConn> {
        self.conns.get_mut(key).map(|c| &mut c.tcp)
    }

    fn handle_connected(&mut self, key: usize, now: Instant, board: &mut Switchboard) {
        if let Some(id) = self.conns.get(key).and_then(|c| c.engine) {
            board.handle_msrp_connected(now, id);
        }
    }

    /// An accepted connection's first bytes must name a waiting session
    /// ([`Switchboard::claim_msrp`]); one that names none is dropped.
    fn read(
        &mut self,
        key: usize,
        now: Instant,
        registry: &Registry,
        board: &mut Switchboard,
        buf: &mut [u8],
    ) -> ReadStatus {
        let Some(c) = self.conns.get_mut(key) else {
            return ReadStatus::Closed;
        };
        let MsrpSocket {
            tcp, engine, claim, ..
        } = c;
        let mut refused = false;
        let mut bound = None;
        let status = tcp.read(buf, &mut |bytes| {
            if refused {
                return;
            }
            if let Some(id) = *engine {
                board.handle_msrp_data(now, id, bytes);
                return;
            }
            claim.extend_from_slice(&bytes[..bytes.len().min(MAX_CLAIM_BYTES)]);
            match board.claim_msrp(claim) {
                Claim::NeedMore => {}
                Claim::Refuse => refused = true,
                Claim::Session(id) => {
                    *engine = Some(id);
                    bound = Some(id);
                    board.handle_msrp_connected(now, id);
                    board.handle_msrp_data(now, id, claim);
                    *claim = Vec::new();
                }
            }
        });
        if let Some(id) = bound {
            self.claims.cancel(key);
            self.by_engine.insert(id, key);
        }
        if refused {
            log::info!(
                "msrp: connection from {} names no waiting session",
                self.conns[key].tcp.remote
            );
            self.refused += 1;
            self.drop_socket(key, registry);
            return ReadStatus::Closed;
        }
        status
    }

    /// The engine produces chunks only while little waits here: it hears the backlog after
    /// every write (a number and a flag; routed once per reactor pass).
    fn handle_written(&mut self, key: usize, board: &mut Switchboard) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let queued = c.tcp.out.len();
        if let (Some(id), true) = (c.engine, queued != c.reported || queued == 0) {
            c.reported = queued;
            board.handle_msrp_backlog(id, queued);
        }
    }

    fn close(&mut self, key: usize, now: Instant, registry: &Registry, board: &mut Switchboard) {
        let engine = self.conns.get(key).and_then(|c| c.engine);
        self.drop_socket(key, registry);
        if let Some(id) = engine {
            board.handle_msrp_closed(now, id);
        }
    }
}
