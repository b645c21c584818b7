//! The SIP side's sockets: the UDP socket, the TCP (and optional TLS) listener, SIP stream
//! connections (inbound and outbound), and the DNS resolver's UDP sockets. Everything read
//! goes to the SIP stack; its transmits come back here.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Interest, Registry};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use slab::Slab;

use engine::drops::{self, DropKind};
use mio::Token;

use super::stream::{self, ByteQueue, ReadStatus, READ_BUDGET};
use super::token::{self, Generations, TokenKind};
use crate::switchboard::Switchboard;
use sip::framing;
use sip::transport::{FlowId, SipTransmit};

/// Most bytes queued for one SIP connection before it is closed (a peer that stops reading).
const MAX_STREAM_QUEUE: usize = 4 * 1024 * 1024;
/// Reading a SIP connection pauses while this much output waits for it: a peer that sends
/// requests (or keep-alive pings) and never reads the answers is pushed back on by TCP flow
/// control instead of growing our queue.
const PAUSE_READ_QUEUE: usize = 64 * 1024;
/// Datagrams read from the SIP UDP socket per reactor turn (each is parsed: a flood must
/// not starve the WebSocket clients and the media).
const UDP_BUDGET: usize = 64;
/// Receive buffer asked for on the SIP UDP socket.
const SIP_UDP_RCVBUF: usize = 4 * 1024 * 1024;
/// Listener keys inside [`TokenKind::SipListener`].
const TCP_LISTENER: usize = 0;
const TLS_LISTENER: usize = 1;
/// DNS socket keys inside [`TokenKind::Dns`].
const DNS_V4: usize = 0;
const DNS_V6: usize = 1;

/// Binds UDP and TCP on one address. With port 0 the kernel picks the UDP port, and TCP on
/// that same port can be taken by someone else; then a few other ports are tried.
fn bind_udp_and_tcp(listen: SocketAddr) -> Result<(UdpSocket, TcpListener), String> {
    const ATTEMPTS: usize = 16;
    let mut last_error = String::new();
    for _ in 0..ATTEMPTS {
        let udp =
            UdpSocket::bind(listen).map_err(|e| format!("cannot bind SIP UDP {listen}: {e}"))?;
        // Bursts (every call's BYE at once when many clients leave) overflow the default
        // ~200 KiB receive buffer while one reactor iteration runs; the kernel may cap this.
        if let Err(e) = socket2::SockRef::from(&udp).set_recv_buffer_size(SIP_UDP_RCVBUF) {
            log::warn!("sip: cannot enlarge the UDP receive buffer: {e}");
        }
        let bound = udp.local_addr().map_err(|e| e.to_string())?;
        match TcpListener::bind(bound) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if listen.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => {
                last_error = format!("cannot listen on SIP TCP {bound}: {e}");
            }
            Err(e) => return Err(format!("cannot listen on SIP TCP {bound}: {e}")),
        }
    }
    Err(last_error)
}

/// One SIP TCP/TLS connection.
struct SipConnection {
    generation: u32,
    flow: FlowId,
    remote: SocketAddr,
    socket: TcpStream,
    tls: Option<Box<Connection>>,
    out: ByteQueue,
    /// Outbound connect still in progress.
    connecting: bool,
    interest: Interest,
    /// An RFC 5626 pong waits in `out`: further ones are coalesced into it (a peer that
    /// pings without reading gets one pong, not one per ping).
    pong_queued: bool,
    /// A read was skipped because `out` was over [`PAUSE_READ_QUEUE`].
    read_paused: bool,
}

/// The SIP side's sockets.
pub struct SipSockets {
    udp: UdpSocket,
    listeners: [Option<TcpListener>; 2],
    tls_server: Option<Arc<ServerConfig>>,
    tls_client: Arc<ClientConfig>,
    dns: [Option<UdpSocket>; 2],
    connections: Slab<SipConnection>,
    by_flow: HashMap<FlowId, usize>,
    /// Datagrams the kernel would not take (UDP retransmission recovers them).
    pub dropped_sends: u64,
    /// Connections whose reads resumed after their output drained: the reactor reads them
    /// on its next turn (readiness is edge-triggered).
    pub resumed: Vec<Token>,
}

impl SipSockets {
    /// Binds UDP and TCP on `listen`, TLS on `tls_listen` (with `tls_server`), and the DNS
    /// client sockets for the families of `nameservers`.
    pub fn bind(
        registry: &Registry,
        listen: SocketAddr,
        tls_listen: Option<(SocketAddr, Arc<ServerConfig>)>,
        tls_client: Arc<ClientConfig>,
        nameservers: &[SocketAddr],
    ) -> Result<SipSockets, String> {
        let (mut udp, mut tcp) = bind_udp_and_tcp(listen)?;
        registry
            .register(
                &mut udp,
                token::encode(TokenKind::SipUdp, 0, 0),
                Interest::READABLE,
            )
            .map_err(|e| e.to_string())?;
        registry
            .register(
                &mut tcp,
                token::encode(TokenKind::SipListener, TCP_LISTENER, 0),
                Interest::READABLE,
            )
            .map_err(|e| e.to_string())?;
        let (tls_listener, tls_server) = match tls_listen {
            Some((addr, config)) => {
                let mut l = TcpListener::bind(addr)
                    .map_err(|e| format!("cannot listen on SIP TLS {addr}: {e}"))?;
                registry
                    .register(
                        &mut l,
                        token::encode(TokenKind::SipListener, TLS_LISTENER, 0),
                        Interest::READABLE,
                    )
                    .map_err(|e| e.to_string())?;
                (Some(l), Some(config))
            }
            None => (None, None),
        };
        let mut dns = [None, None];
        for (key, wanted, any) in [
            (
                DNS_V4,
                nameservers.iter().any(|n| n.is_ipv4()),
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ),
            (
                DNS_V6,
                nameservers.iter().any(|n| n.is_ipv6()),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ),
        ] {
            if !wanted {
                continue;
            }
            // A loopback nameserver only needs a loopback socket.
            let local = if nameservers.iter().all(|n| n.ip().is_loopback()) {
                match any {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                }
            } else {
                any
            };
            let mut s = UdpSocket::bind(SocketAddr::new(local, 0))
                .map_err(|e| format!("cannot bind DNS socket: {e}"))?;
            registry
                .register(
                    &mut s,
                    token::encode(TokenKind::Dns, key, 0),
                    Interest::READABLE,
                )
                .map_err(|e| e.to_string())?;
            dns[key] = Some(s);
        }
        Ok(SipSockets {
            udp,
            listeners: [Some(tcp), tls_listener],
            tls_server,
            tls_client,
            dns,
            connections: Slab::new(),
            by_flow: HashMap::new(),
            dropped_sends: 0,
            resumed: Vec::new(),
        })
    }

    /// SIP TCP/TLS connections open.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Whether there is a SIP TLS listener.
    pub fn has_tls(&self) -> bool {
        self.tls_server.is_some()
    }

    /// Replaces the TLS server certificate for connections accepted from now on (SIGHUP);
    /// no-op without a TLS listener.
    pub fn set_tls_server(&mut self, config: Arc<ServerConfig>) {
        if self.tls_server.is_some() {
            self.tls_server = Some(config);
        }
    }

    /// The UDP/TCP address actually bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.udp.local_addr().ok()
    }

    /// The TLS listener's address, if any.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.listeners[TLS_LISTENER]
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Reads up to a turn's budget of datagrams from the SIP UDP socket.
    pub fn read_udp(
        &mut self,
        now: Instant,
        board: &mut Switchboard,
        buf: &mut [u8],
    ) -> ReadStatus {
        for _ in 0..UDP_BUDGET {
            match self.udp.recv_from(buf) {
                Ok((n, from)) => board.handle_sip_datagram(now, from, &buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadStatus::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ICMP errors surface here on Linux; they concern one datagram, not the socket.
                Err(_) => {}
            }
        }
        ReadStatus::More
    }

    /// Reads every DNS answer waiting on resolver socket `key`.
    pub fn read_dns(&mut self, key: usize, now: Instant, board: &mut Switchboard, buf: &mut [u8]) {
        let Some(socket) = self.dns.get(key).and_then(|s| s.as_ref()) else {
            return;
        };
        loop {
            match socket.recv_from(buf) {
                Ok((n, from)) => board.handle_dns_datagram(now, from, &buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {}
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
        board: &mut Switchboard,
    ) {
        loop {
            let Some(listener) = self.listeners.get(key).and_then(|l| l.as_ref()) else {
                return;
            };
            let (socket, remote) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("sip: accept failed: {e}");
                    return;
                }
            };
            let tls = key == TLS_LISTENER;
            let Some(flow) = board.handle_sip_stream_accepted(now, tls, remote) else {
                drops::record(
                    now,
                    DropKind::SipConnectionLimit,
                    format_args!("refusing connection from {remote}: too many connections"),
                );
                continue;
            };
            let tls = match (&self.tls_server, tls) {
                (Some(config), true) => match ServerConnection::new(Arc::clone(config)) {
                    Ok(c) => Some(Box::new(Connection::Server(c))),
                    Err(_) => {
                        board.handle_sip_stream_closed(now, flow);
                        continue;
                    }
                },
                _ => None,
            };
            let _ = socket.set_nodelay(true);
            if !self.insert(registry, generations, flow, remote, socket, tls, false) {
                board.handle_sip_stream_closed(now, flow);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        registry: &Registry,
        generations: &mut Generations,
        flow: FlowId,
        remote: SocketAddr,
        mut socket: TcpStream,
        tls: Option<Box<Connection>>,
        connecting: bool,
    ) -> bool {
        let generation = generations.advance();
        let entry = self.connections.vacant_entry();
        let key = entry.key();
        let interest = if connecting {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if registry
            .register(
                &mut socket,
                token::encode(TokenKind::SipStream, key, generation),
                interest,
            )
            .is_err()
        {
            return false;
        }
        entry.insert(SipConnection {
            generation,
            flow,
            remote,
            socket,
            tls,
            out: ByteQueue::default(),
            connecting,
            interest,
            pong_queued: false,
            read_paused: false,
        });
        self.by_flow.insert(flow, key);
        true
    }

    /// Readiness on SIP connection `key`: finishes a connect, reads up to a turn's budget
    /// (unless the peer leaves our output unread) and writes.
    pub fn stream_ready(
        &mut self,
        key: usize,
        generation: u32,
        now: Instant,
        registry: &Registry,
        board: &mut Switchboard,
        buf: &mut [u8],
    ) -> ReadStatus {
        let Some(c) = self.connections.get_mut(key) else {
            return ReadStatus::Closed;
        };
        if c.generation != generation {
            return ReadStatus::Closed;
        }
        if c.connecting {
            // RFC-less but classic: a non-blocking connect is done when the socket turns
            // writable; SO_ERROR (or a missing peer address) tells whether it worked.
            match (c.socket.take_error(), c.socket.peer_addr()) {
                (Ok(None), Ok(_)) => c.connecting = false,
                (Ok(None), Err(e)) if e.kind() == io::ErrorKind::NotConnected => {
                    return ReadStatus::Drained
                }
                _ => {
                    log::info!("sip: connection to {} failed", c.remote);
                    self.close(key, now, registry, board);
                    return ReadStatus::Closed;
                }
            }
        }
        let status = if c.out.len() > PAUSE_READ_QUEUE {
            c.read_paused = true;
            ReadStatus::Drained
        } else {
            let flow = c.flow;
            stream::read_available(
                &mut c.socket,
                c.tls.as_deref_mut(),
                buf,
                READ_BUDGET,
                &mut |bytes| board.handle_sip_stream_data(now, flow, bytes),
            )
        };
        if status == ReadStatus::Closed {
            self.close(key, now, registry, board);
            return status;
        }
        self.flush(key, now, registry, board);
        status
    }

    /// Executes one SIP transmit of the SIP stack.
    pub fn transmit(
        &mut self,
        t: SipTransmit,
        now: Instant,
        registry: &Registry,
        generations: &mut Generations,
        board: &mut Switchboard,
    ) {
        match t {
            SipTransmit::Dns { to, bytes } => self.send_dns(to, &bytes),
            SipTransmit::Datagram { to, bytes } => match self.udp.send_to(&bytes, to) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.dropped_sends += 1,
                Err(e) => log::debug!("sip: send to {to} failed: {e}"),
            },
            SipTransmit::Connect {
                flow,
                remote,
                tls_server_name,
            } => {
                let tls = match tls_server_name {
                    Some(name) => {
                        let server_name = ServerName::try_from(name.clone())
                            .unwrap_or_else(|_| ServerName::IpAddress(remote.ip().into()));
                        match ClientConnection::new(Arc::clone(&self.tls_client), server_name) {
                            Ok(c) => Some(Box::new(Connection::Client(c))),
                            Err(e) => {
                                log::info!("sip: TLS to {remote} ({name}): {e}");
                                board.handle_sip_stream_closed(now, flow);
                                return;
                            }
                        }
                    }
                    None => None,
                };
                let ok = match TcpStream::connect(remote) {
                    Ok(socket) => {
                        let _ = socket.set_nodelay(true);
                        self.insert(registry, generations, flow, remote, socket, tls, true)
                    }
                    Err(e) => {
                        log::info!("sip: cannot connect to {remote}: {e}");
                        false
                    }
                };
                if !ok {
                    board.handle_sip_stream_closed(now, flow);
                }
            }
            SipTransmit::Stream { flow, bytes } => {
                let Some(&key) = self.by_flow.get(&flow) else {
                    board.handle_sip_stream_closed(now, flow);
                    return;
                };
                let Some(c) = self.connections.get_mut(key) else {
                    return;
                };
                // A lone CRLF on a stream is only ever a keep-alive pong (RFC 5626 section
                // 3.5.1); one waiting is as good as many.
                let pong = bytes == framing::PONG;
                if pong && c.pong_queued {
                    drops::record(
                        now,
                        DropKind::SipPongCoalesced,
                        format_args!("keep-alive pong to {} coalesced", c.remote),
                    );
                    return;
                }
                if c.out.len() + bytes.len() > MAX_STREAM_QUEUE {
                    drops::record(
                        now,
                        DropKind::SipStreamClosed,
                        format_args!("connection to {} is not reading; closing it", c.remote),
                    );
                    self.close(key, now, registry, board);
                    return;
                }
                c.pong_queued |= pong;
                c.out.push(&bytes);
                self.flush(key, now, registry, board);
            }
            SipTransmit::Close { flow } => {
                if let Some(&key) = self.by_flow.get(&flow) {
                    if let Some(mut c) = self.remove(key, registry) {
                        stream::shutdown(&mut c.socket, c.tls.as_deref_mut());
                    }
                }
            }
        }
    }

    /// Sends a DNS query from the socket of the nameserver's family.
    pub fn send_dns(&mut self, to: SocketAddr, bytes: &[u8]) {
        let key = if to.is_ipv4() { DNS_V4 } else { DNS_V6 };
        if let Some(Some(socket)) = self.dns.get(key) {
            if let Err(e) = socket.send_to(bytes, to) {
                log::debug!("dns: send to {to} failed: {e}");
            }
        }
    }

    fn flush(&mut self, key: usize, now: Instant, registry: &Registry, board: &mut Switchboard) {
        let Some(c) = self.connections.get_mut(key) else {
            return;
        };
        if c.connecting {
            return;
        }
        if let Err(e) = stream::write_available(&mut c.socket, c.tls.as_deref_mut(), &mut c.out) {
            log::info!("sip: write to {} failed: {e}", c.remote);
            self.close(key, now, registry, board);
            return;
        }
        if c.out.is_empty() {
            c.pong_queued = false;
        }
        if c.read_paused && c.out.len() <= PAUSE_READ_QUEUE {
            c.read_paused = false;
            self.resumed
                .push(token::encode(TokenKind::SipStream, key, c.generation));
        }
        let wants_write = !c.out.is_empty() || c.tls.as_ref().is_some_and(|t| t.wants_write());
        let interest = if wants_write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if interest != c.interest {
            let token = token::encode(TokenKind::SipStream, key, c.generation);
            if registry.reregister(&mut c.socket, token, interest).is_ok() {
                c.interest = interest;
            }
        }
    }

    /// Drops connection `key` and tells the SIP stack its flow is gone.
    fn close(&mut self, key: usize, now: Instant, registry: &Registry, board: &mut Switchboard) {
        if let Some(c) = self.remove(key, registry) {
            board.handle_sip_stream_closed(now, c.flow);
        }
    }

    fn remove(&mut self, key: usize, registry: &Registry) -> Option<SipConnection> {
        if !self.connections.contains(key) {
            return None;
        }
        let mut c = self.connections.remove(key);
        self.by_flow.remove(&c.flow);
        let _ = registry.deregister(&mut c.socket);
        Some(c)
    }
}
