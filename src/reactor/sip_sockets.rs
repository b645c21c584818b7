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
use rustls::{ClientConfig, Connection, ServerConfig};
use slab::Slab;

use engine::drops::{self, DropKind};
use mio::Token;

use super::stream::{self, ReadStatus};
use super::stream_set::{self, StreamSet, TcpConn};
use super::tcp::{self, SocketError};
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
fn bind_udp_and_tcp(listen: SocketAddr) -> Result<(UdpSocket, TcpListener), SocketError> {
    const ATTEMPTS: usize = 16;
    let mut last_error = None;
    for _ in 0..ATTEMPTS {
        let udp = UdpSocket::bind(listen).map_err(|source| SocketError::Bind {
            what: "SIP UDP",
            addr: listen,
            source,
        })?;
        // Bursts (every call's BYE at once when many clients leave) overflow the default
        // ~200 KiB receive buffer while one reactor iteration runs; the kernel may cap this.
        if let Err(e) = socket2::SockRef::from(&udp).set_recv_buffer_size(SIP_UDP_RCVBUF) {
            log::warn!("sip: cannot enlarge the UDP receive buffer: {e}");
        }
        let bound = udp.local_addr().map_err(|source| SocketError::Bind {
            what: "SIP UDP",
            addr: listen,
            source,
        })?;
        let error = match TcpListener::bind(bound) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(source) => SocketError::Bind {
                what: "SIP TCP",
                addr: bound,
                source,
            },
        };
        match &error {
            SocketError::Bind { source, .. }
                if listen.port() == 0 && source.kind() == io::ErrorKind::AddrInUse =>
            {
                last_error = Some(error);
            }
            _ => return Err(error),
        }
    }
    Err(last_error.unwrap_or(SocketError::Bind {
        what: "SIP TCP",
        addr: listen,
        source: io::ErrorKind::AddrInUse.into(),
    }))
}

/// One SIP TCP/TLS connection.
struct SipConnection {
    tcp: TcpConn,
    flow: FlowId,
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
    ) -> Result<SipSockets, SocketError> {
        let (mut udp, mut tcp) = bind_udp_and_tcp(listen)?;
        let readable = Interest::READABLE;
        let token = token::encode(TokenKind::SipUdp, 0, 0);
        tcp::register(registry, &mut udp, token, readable, "SIP UDP")?;
        let token = token::encode(TokenKind::SipListener, TCP_LISTENER, 0);
        tcp::register(registry, &mut tcp, token, readable, "SIP TCP")?;
        let (tls_listener, tls_server) = match tls_listen {
            Some((addr, config)) => {
                let token = token::encode(TokenKind::SipListener, TLS_LISTENER, 0);
                let l = tcp::listen(registry, addr, token, "SIP TLS")?;
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
            let addr = SocketAddr::new(local, 0);
            let mut s = UdpSocket::bind(addr).map_err(|source| SocketError::Bind {
                what: "DNS",
                addr,
                source,
            })?;
            let token = token::encode(TokenKind::Dns, key, 0);
            tcp::register(registry, &mut s, token, readable, "DNS")?;
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

    /// Reads up to a turn's budget of datagrams from the SIP UDP socket, and none after
    /// `until` (each may set up or end a call: the turn's time is bounded, `budget.rs`);
    /// the first is always read.
    pub fn read_udp(
        &mut self,
        now: Instant,
        until: Instant,
        board: &mut Switchboard,
        buf: &mut [u8],
    ) -> ReadStatus {
        for i in 0..UDP_BUDGET {
            if i > 0 && Instant::now() >= until {
                return ReadStatus::More;
            }
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
        let tls = self.tls_server.clone().filter(|_| key == TLS_LISTENER);
        loop {
            let Some(listener) = self.listeners.get(key).and_then(|l| l.as_ref()) else {
                return;
            };
            let Some(a) = tcp::accept_next(listener, tls.as_ref(), "sip") else {
                return;
            };
            let Some(flow) = board.handle_sip_stream_accepted(now, a.tls.is_some(), a.remote)
            else {
                drops::record(
                    now,
                    DropKind::SipConnectionLimit,
                    format_args!(
                        "refusing connection from {}: too many connections",
                        a.remote
                    ),
                );
                continue;
            };
            if !self.insert(
                registry,
                generations,
                flow,
                a.remote,
                a.socket,
                a.tls,
                false,
            ) {
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
        socket: TcpStream,
        tls: Option<Box<Connection>>,
        connecting: bool,
    ) -> bool {
        let entry = self.connections.vacant_entry();
        let Some(tcp) = TcpConn::register(
            registry,
            generations,
            (TokenKind::SipStream, entry.key()),
            remote,
            socket,
            tls,
            connecting,
        )
        .ok() else {
            return false;
        };
        self.by_flow.insert(flow, entry.key());
        entry.insert(SipConnection {
            tcp,
            flow,
            pong_queued: false,
            read_paused: false,
        });
        true
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
                let tls = tls_server_name
                    .as_deref()
                    .map(|name| (&self.tls_client, name));
                let ok = match tcp::connect(remote, tls) {
                    Ok((socket, tls)) => {
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
                        format_args!("keep-alive pong to {} coalesced", c.tcp.remote),
                    );
                    return;
                }
                if c.tcp.out.len() + bytes.len() > MAX_STREAM_QUEUE {
                    drops::record(
                        now,
                        DropKind::SipStreamClosed,
                        format_args!("connection to {} is not reading; closing it", c.tcp.remote),
                    );
                    self.close(key, now, registry, board);
                    return;
                }
                c.pong_queued |= pong;
                c.tcp.out.push(&bytes);
                stream_set::flush(self, key, now, registry, board);
            }
            SipTransmit::Close { flow } => {
                if let Some(&key) = self.by_flow.get(&flow) {
                    if let Some(mut c) = self.remove(key, registry) {
                        stream::shutdown(&mut c.tcp.socket, c.tcp.tls.as_deref_mut());
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

    fn remove(&mut self, key: usize, registry: &Registry) -> Option<SipConnection> {
        if !self.connections.contains(key) {
            return None;
        }
        let mut c = self.connections.remove(key);
        self.by_flow.remove(&c.flow);
        let _ = registry.deregister(&mut c.tcp.socket);
        Some(c)
    }
}

impl StreamSet for SipSockets {
    const LABEL: &'static str = "sip";
    const KIND: TokenKind = TokenKind::SipStream;

    fn tcp(&mut self, key: usize) -> Option<&mut TcpConn> {
        self.connections.get_mut(key).map(|c| &mut c.tcp)
    }

    fn handle_connected(&mut self, _key: usize, _now: Instant, _board: &mut Switchboard) {}

    /// Reads unless the peer leaves our output unread (then TCP's flow control pushes back
    /// on it until [`handle_written`](StreamSet::handle_written) resumes the reads).
    fn read(
        &mut self,
        key: usize,
        now: Instant,
        _registry: &Registry,
        board: &mut Switchboard,
        buf: &mut [u8],
    ) -> ReadStatus {
        let Some(c) = self.connections.get_mut(key) else {
            return ReadStatus::Closed;
        };
        if c.tcp.out.len() > PAUSE_READ_QUEUE {
            c.read_paused = true;
            return ReadStatus::Drained;
        }
        let flow = c.flow;
        c.tcp.read(buf, &mut |bytes| {
            board.handle_sip_stream_data(now, flow, bytes)
        })
    }

    fn handle_written(&mut self, key: usize, _board: &mut Switchboard) {
        let Some(c) = self.connections.get_mut(key) else {
            return;
        };
        if c.tcp.out.is_empty() {
            c.pong_queued = false;
        }
        if c.read_paused && c.tcp.out.len() <= PAUSE_READ_QUEUE {
            c.read_paused = false;
            self.resumed
                .push(token::encode(TokenKind::SipStream, key, c.tcp.generation));
        }
    }

    /// Tells the SIP stack the flow is gone.
    fn close(&mut self, key: usize, now: Instant, registry: &Registry, board: &mut Switchboard) {
        if let Some(c) = self.remove(key, registry) {
            board.handle_sip_stream_closed(now, c.flow);
        }
    }
}
