//! The XCAP client's TCP (and TLS, for `https://` roots) connections: bytes go to the XCAP
//! engine in the switchboard, its transmits come back here.
//!
//! Host names of the configured XCAP roots are resolved once at start-up ([`XcapHosts`]):
//! the reactor never blocks on a resolver, and the SIP resolver serves SRV/NAPTR for SIP
//! only. Output waiting for a socket is bounded ([`MAX_QUEUE`]: a request is at most one
//! document plus its head).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry};
use rustls::{ClientConfig, Connection};
use slab::Slab;
use xcap::{ConnId, Origin, XcapTransmit};

use super::stream::{self, ByteQueue, ReadStatus, READ_BUDGET};
use super::tcp::{self, ConnectProgress};
use super::token::{self, Generations, TokenKind};
use crate::config::XcapConfig;
use crate::switchboard::Switchboard;

/// Most output bytes queued for one connection (one PUT of the largest document and its
/// head, twice over).
const MAX_QUEUE: usize = 2 * (16 * 1024 * 1024 + 16 * 1024);
/// Most connections open at once (the engine keeps one per origin).
const MAX_CONNECTIONS: usize = 1024;

/// The addresses of the configured XCAP servers, resolved at start-up.
#[derive(Debug, Default, Clone)]
pub struct XcapHosts(HashMap<(String, u16), SocketAddr>);

impl XcapHosts {
    /// Resolves the host of every root in `config` (IP literals need no lookup); a name that
    /// does not resolve is logged, and requests to it fail as unreachable.
    pub fn resolve(config: &XcapConfig) -> XcapHosts {
        let mut out = HashMap::new();
        for root in config.root.iter().chain(config.domains.values()) {
            let Ok(root) = xcap::XcapRoot::parse(root) else {
                continue;
            };
            let Origin { host, port, .. } = root.origin;
            if let Ok(ip) = host.parse::<IpAddr>() {
                out.insert((host, port), SocketAddr::new(ip, port));
                continue;
            }
            match (host.as_str(), port).to_socket_addrs() {
                Ok(mut addrs) => {
                    if let Some(a) = addrs.next() {
                        log::info!("xcap: {host} is {}", a.ip());
                        out.insert((host, port), a);
                    }
                }
                Err(e) => log::warn!("xcap: cannot resolve {host}: {e}"),
            }
        }
        XcapHosts(out)
    }
}

struct XcapSocket {
    generation: u32,
    conn: ConnId,
    remote: SocketAddr,
    socket: TcpStream,
    tls: Option<Box<Connection>>,
    out: ByteQueue,
    connecting: bool,
    interest: Interest,
}

/// The XCAP connections.
pub struct XcapSockets {
    hosts: XcapHosts,
    tls_client: Arc<ClientConfig>,
    conns: Slab<XcapSocket>,
    by_conn: HashMap<ConnId, usize>,
}

impl XcapSockets {
    /// No connection yet; `hosts` are the servers' addresses, `tls_client` verifies
    /// `https://` servers as SIP TLS peers are (`sip.tls_verify`, `sip.tls_ca_file`).
    pub fn new(hosts: XcapHosts, tls_client: Arc<ClientConfig>) -> XcapSockets {
        XcapSockets {
            hosts,
            tls_client,
            conns: Slab::new(),
            by_conn: HashMap::new(),
        }
    }

    /// Open connections (leak checks, metrics).
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Readiness on connection `key`: completes a connect, reads at most [`READ_BUDGET`]
    /// bytes, writes what waits.
    pub fn stream_ready(
        &mut self,
        key: usize,
        generation: u32,
        now: Instant,
        registry: &Registry,
        board: &mut Switchboard,
        buf: &mut [u8],
    ) -> ReadStatus {
        let Some(c) = self.conns.get_mut(key) else {
            return ReadStatus::Drained;
        };
        if c.generation != generation {
            return ReadStatus::Drained;
        }
        if c.connecting {
            match tcp::connect_progress(&c.socket) {
                ConnectProgress::Done => {
                    c.connecting = false;
                    let conn = c.conn;
                    board.handle_xcap_connected(now, conn);
                }
                ConnectProgress::Pending => return ReadStatus::Drained,
                ConnectProgress::Failed => {
                    log::info!("xcap: connection to {} failed", c.remote);
                    self.close(key, now, registry, board);
                    return ReadStatus::Closed;
                }
            }
        }
        let Some(c) = self.conns.get_mut(key) else {
            return ReadStatus::Closed;
        };
        let conn = c.conn;
        let status = stream::read_available(
            &mut c.socket,
            c.tls.as_deref_mut(),
            buf,
            READ_BUDGET,
            &mut |bytes| board.handle_xcap_data(now, conn, bytes),
        );
        // The engine may have closed the connection while reading (a complete answer
        // with `Connection: close`): its transmits run after this and find it gone.
        if status == ReadStatus::Closed {
            self.close(key, now, registry, board);
            return status;
        }
        self.flush(key, now, registry, board);
        status
    }

    /// Carries out one transmit of the engine.
    pub fn transmit(
        &mut self,
        t: XcapTransmit,
        now: Instant,
        registry: &Registry,
        generations: &mut Generations,
        board: &mut Switchboard,
    ) {
        match t {
            XcapTransmit::Connect { conn, origin } => {
                if !self.connect(conn, &origin, registry, generations) {
                    board.handle_xcap_closed(now, conn);
                }
            }
            XcapTransmit::Data { conn, bytes } => {
                let Some(&key) = self.by_conn.get(&conn) else {
                    board.handle_xcap_closed(now, conn);
                    return;
                };
                let Some(c) = self.conns.get_mut(key) else {
                    return;
                };
                if c.out.len() + bytes.len() > MAX_QUEUE {
                    log::warn!("xcap: {} is not reading; closing the connection", c.remote);
                    self.close(key, now, registry, board);
                    return;
                }
                c.out.push(&bytes);
                self.flush(key, now, registry, board);
            }
            XcapTransmit::Close { conn } => {
                if let Some(&key) = self.by_conn.get(&conn) {
                    if let Some(c) = self.conns.get_mut(key) {
                        stream::shutdown(&mut c.socket, c.tls.as_deref_mut());
                    }
                    self.drop_socket(key, registry);
                }
            }
        }
    }

    /// Opens the connection; false: it cannot be (the engine hears it as closed).
    fn connect(
        &mut self,
        conn: ConnId,
        origin: &Origin,
        registry: &Registry,
        generations: &mut Generations,
    ) -> bool {
        if self.conns.len() >= MAX_CONNECTIONS {
            log::warn!("xcap: too many connections; not connecting to {origin}");
            return false;
        }
        let Some(&addr) = self.hosts.0.get(&(origin.host.clone(), origin.port)) else {
            log::info!("xcap: no address for {origin} (not a configured root?)");
            return false;
        };
        let tls = origin
            .tls
            .then_some((&self.tls_client, origin.host.as_str()));
        let (mut socket, tls) = match tcp::connect(addr, tls) {
            Ok(pair) => pair,
            Err(e) => {
                log::info!("xcap: cannot connect to {origin} ({addr}): {e}");
                return false;
            }
        };
        let generation = generations.advance();
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let interest = tcp::interest(false, tls.as_deref(), true);
        let token = token::encode(TokenKind::XcapStream, key, generation);
        if let Err(e) = tcp::register(registry, &mut socket, token, interest, "XCAP") {
            log::info!("xcap: {e}");
            return false;
        }
        entry.insert(XcapSocket {
            generation,
            conn,
            remote: addr,
            socket,
            tls,
            out: ByteQueue::default(),
            connecting: true,
            interest,
        });
        self.by_conn.insert(conn, key);
        true
    }

    fn flush(&mut self, key: usize, now: Instant, registry: &Registry, board: &mut Switchboard) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.connecting {
            return;
        }
        if let Err(e) = stream::write_available(&mut c.socket, c.tls.as_deref_mut(), &mut c.out) {
            log::info!("xcap: write to {} failed: {e}", c.remote);
            self.close(key, now, registry, board);
            return;
        }
        let wanted = tcp::interest(!c.out.is_empty(), c.tls.as_deref(), false);
        let token = token::encode(TokenKind::XcapStream, key, c.generation);
        tcp::rearm(registry, &mut c.socket, token, &mut c.interest, wanted);
    }

    /// Drops connection `key` and tells the engine.
    fn close(&mut self, key: usize, now: Instant, registry: &Registry, board: &mut Switchboard) {
        let conn = self.conns.get(key).map(|c| c.conn);
        self.drop_socket(key, registry);
        if let Some(conn) = conn {
            board.handle_xcap_closed(now, conn);
        }
    }

    fn drop_socket(&mut self, key: usize, registry: &Registry) {
        if !self.conns.contains(key) {
            return;
        }
        let mut c = self.conns.remove(key);
        if self.by_conn.get(&c.conn) == Some(&key) {
            self.by_conn.remove(&c.conn);
        }
        let _ = registry.deregister(&mut c.socket);
    }
}
