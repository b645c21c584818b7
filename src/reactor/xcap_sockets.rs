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

use mio::Registry;
use rustls::ClientConfig;
use slab::Slab;
use xcap::{ConnId, Origin, XcapTransmit};

use super::stream::{self, ReadStatus};
use super::stream_set::{self, StreamSet, TcpConn};
use super::tcp;
use super::token::{Generations, TokenKind};
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
    tcp: TcpConn,
    conn: ConnId,
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
                if c.tcp.out.len() + bytes.len() > MAX_QUEUE {
                    log::warn!(
                        "xcap: {} is not reading; closing the connection",
                        c.tcp.remote
                    );
                    self.close(key, now, registry, board);
                    return;
                }
                c.tcp.out.push(&bytes);
                stream_set::flush(self, key, now, registry, board);
            }
            XcapTransmit::Close { conn } => {
                if let Some(&key) = self.by_conn.get(&conn) {
                    if let Some(c) = self.conns.get_mut(key) {
                        stream::shutdown(&mut c.tcp.socket, c.tcp.tls.as_deref_mut());
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
        let (socket, tls) = match tcp::connect(addr, tls) {
            Ok(pair) => pair,
            Err(e) => {
                log::info!("xcap: cannot connect to {origin} ({addr}): {e}");
                return false;
            }
        };
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let kind = (TokenKind::XcapStream, key);
        let tcp = match TcpConn::register(registry, generations, kind, addr, socket, tls, true) {
            Ok(tcp) => tcp,
            Err(e) => {
                log::info!("xcap: {e}");
                return false;
            }
        };
        entry.insert(XcapSocket { tcp, conn });
        self.by_conn.insert(conn, key);
        true
    }

    fn drop_socket(&mut self, key: usize, registry: &Registry) {
        if !self.conns.contains(key) {
            return;
        }
        let mut c = self.conns.remove(key);
        if self.by_conn.get(&c.conn) == Some(&key) {
            self.by_conn.remove(&c.conn);
        }
        let _ = registry.deregister(&mut c.tcp.socket);
    }
}

impl StreamSet for XcapSockets {
    const LABEL: &'static str = "xcap";
    const KIND: TokenKind = TokenKind::XcapStream;

    fn tcp(&mut self, key: usize) -> Option<&mut TcpConn> {
        self.conns.get_mut(key).map(|c| &mut c.tcp)
    }

    fn handle_connected(&mut self, key: usize, now: Instant, board: &mut Switchboard) {
        if let Some(c) = self.conns.get(key) {
            board.handle_xcap_connected(now, c.conn);
        }
    }

    /// The engine may close the connection while reading (a complete answer with
    /// `Connection: close`): its transmits run after this and find it gone.
    fn read(
        &mut self,
        key: usize,
        now: Instant,
        _registry: &Registry,
        board: &mut Switchboard,
        buf: &mut [u8],
    ) -> ReadStatus {
        let Some(c) = self.conns.get_mut(key) else {
            return ReadStatus::Closed;
        };
        let conn = c.conn;
        c.tcp
            .read(buf, &mut |bytes| board.handle_xcap_data(now, conn, bytes))
    }

    fn handle_written(&mut self, _key: usize, _board: &mut Switchboard) {}

    fn close(&mut self, key: usize, now: Instant, registry: &Registry, board: &mut Switchboard) {
        let conn = self.conns.get(key).map(|c| c.conn);
        self.drop_socket(key, registry);
        if let Some(conn) = conn {
            board.handle_xcap_closed(now, conn);
        }
    }
}
