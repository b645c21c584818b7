//! The reactor: the one thread's `mio` loop and the only code that touches sockets or reads
//! the clock.
//!
//! Each iteration: wait for readiness or the earliest engine deadline; read every ready
//! socket until `WouldBlock` and hand the bytes to its engine; run due timers; drain every
//! engine's events and route them (WebSocket -> gateway -> WebSocket); write what the engines
//! produced; recompute interest from what is still queued.

mod stream;
mod tls;
pub mod token;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use rustls::ServerConfig;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::config::Config;
use crate::gateway::{Gateway, GatewayConfig, GatewayOutput};
use crate::ws::{WsConnection, WsEvent, WsLimits};
use stream::ClientStream;
use token::{Generations, TokenKind};

/// How long a shutdown waits for close handshakes (and, later, SIP clean-up) to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Size of the shared read buffer.
const SCRATCH_SIZE: usize = 64 * 1024;

/// A listening WebSocket socket.
struct Listener {
    socket: TcpListener,
    /// `Some` for `wss://`.
    tls: Option<Arc<ServerConfig>>,
}

/// The addresses the reactor actually listens on (useful with port 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoundAddresses {
    /// `ws://` listener.
    pub ws: Option<SocketAddr>,
    /// `wss://` listener.
    pub wss: Option<SocketAddr>,
}

/// The event loop and everything it drives.
pub struct Reactor {
    poll: Poll,
    listeners: Vec<Listener>,
    streams: Slab<ClientStream>,
    generations: Generations,
    /// Min-heap of (deadline, token); entries are checked against the stream's armed
    /// deadline when popped, so outdated ones are skipped instead of searched for.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    gateway: Gateway,
    limits: WsLimits,
    max_connections: usize,
    next_log_id: u64,
    signals: Signals,
    shutdown_deadline: Option<Instant>,
    scratch: Vec<u8>,
    /// Streams touched in this iteration, to flush and re-arm once.
    touched: Vec<usize>,
}

impl Reactor {
    /// Binds the listeners of `config` and prepares the loop.
    pub fn new(config: &Config) -> Result<Reactor, String> {
        let poll = Poll::new().map_err(|e| format!("cannot create poll: {e}"))?;
        let ws = &config.websocket;
        let mut listeners = Vec::new();
        let tls = match ws.wss_listen {
            Some(_) => Some(tls::server_config(&ws.tls)?),
            None => None,
        };
        for (addr, tls) in [(ws.ws_listen, None), (ws.wss_listen, tls)] {
            let Some(addr) = addr else { continue };
            let mut socket =
                TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let token = token::encode(TokenKind::Listener, listeners.len(), 0);
            poll.registry()
                .register(&mut socket, token, Interest::READABLE)
                .map_err(|e| format!("cannot register listener: {e}"))?;
            listeners.push(Listener { socket, tls });
        }
        let mut signals =
            Signals::new([SIGTERM, SIGINT]).map_err(|e| format!("cannot catch signals: {e}"))?;
        poll.registry()
            .register(
                &mut signals,
                token::encode(TokenKind::Signals, 0, 0),
                Interest::READABLE,
            )
            .map_err(|e| format!("cannot register signals: {e}"))?;
        Ok(Reactor {
            poll,
            listeners,
            streams: Slab::new(),
            generations: Generations::default(),
            timers: BinaryHeap::new(),
            gateway: Gateway::new(GatewayConfig {
                sylkrtc: config.sylkrtc.clone(),
                trace_websocket: config.log.trace_websocket,
            }),
            limits: WsLimits {
                origins: ws.origins.clone(),
                max_message_size: ws.max_message_size,
                max_queued_output: ws.max_queued_output,
                ping_interval: ws.ping_interval,
                pong_timeout: ws.pong_timeout(),
            },
            max_connections: ws.max_connections,
            next_log_id: 0,
            signals,
            shutdown_deadline: None,
            scratch: vec![0; SCRATCH_SIZE],
            touched: Vec::new(),
        })
    }

    /// The bound listener addresses.
    pub fn bound_addresses(&self) -> BoundAddresses {
        let mut out = BoundAddresses::default();
        for l in &self.listeners {
            let addr = l.socket.local_addr().ok();
            if l.tls.is_some() {
                out.wss = addr;
            } else {
                out.ws = addr;
            }
        }
        out
    }

    /// Runs until SIGTERM/SIGINT, then closes every connection cleanly and returns.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if let Some(deadline) = self.shutdown_deadline {
                if self.streams.is_empty() || now >= deadline {
                    log::info!(
                        "shutdown complete ({} connections dropped)",
                        self.streams.len()
                    );
                    return Ok(());
                }
            }
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(now));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            for event in events.iter() {
                self.dispatch(now, event.token(), event.is_writable());
            }
            self.run_timers(now);
            self.settle(now);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((t, _))| *t);
        [timer, self.gateway.poll_timeout(), self.shutdown_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    fn dispatch(&mut self, now: Instant, token: Token, writable: bool) {
        let Some(parts) = token::decode(token) else {
            return;
        };
        match parts.kind {
            TokenKind::Listener => self.accept(now, parts.key),
            TokenKind::Signals => {
                let caught: Vec<i32> = self.signals.pending().collect();
                if !caught.is_empty() {
                    self.begin_shutdown(now, caught[0]);
                }
            }
            TokenKind::WsConn => {
                let Some(s) = self.streams.get_mut(parts.key) else {
                    return;
                };
                if s.generation != parts.generation {
                    return; // stale event for a connection whose key was reused
                }
                // Read on every event: errors and hang-ups are reported as readable too.
                s.read_ready(now, &mut self.scratch);
                if writable {
                    s.write_ready(now);
                }
                self.touched.push(parts.key);
            }
        }
    }

    fn accept(&mut self, now: Instant, index: usize) {
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            let (mut socket, peer) = match listener.socket.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: leave the rest in the backlog for the next event.
                    log::warn!("accept failed: {e}");
                    return;
                }
            };
            if self.streams.len() >= self.max_connections || self.shutdown_deadline.is_some() {
                log::warn!("refusing connection from {peer}: at the connection limit");
                if listener.tls.is_none() {
                    let _ = socket.write(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
                continue;
            }
            let tls = match &listener.tls {
                Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
                    Ok(c) => Some(Box::new(c)),
                    Err(e) => {
                        log::warn!("tls setup failed for {peer}: {e}");
                        continue;
                    }
                },
                None => None,
            };
            let _ = socket.set_nodelay(true);
            self.next_log_id += 1;
            let log_id = self.next_log_id;
            let generation = self.generations.advance();
            let entry = self.streams.vacant_entry();
            let key = entry.key();
            let token = token::encode(TokenKind::WsConn, key, generation);
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut socket, token, Interest::READABLE)
            {
                log::warn!("cannot register connection from {peer}: {e}");
                continue;
            }
            log::info!(
                "conn={log_id} accepted from {peer} ({})",
                if tls.is_some() { "wss" } else { "ws" }
            );
            entry.insert(ClientStream {
                generation,
                log_id,
                peer,
                socket,
                tls,
                ws: WsConnection::new(now, self.limits.clone()),
                client: None,
                interest: Interest::READABLE,
                armed_timeout: None,
                dead: false,
            });
            self.touched.push(key);
        }
    }

    fn run_timers(&mut self, now: Instant) {
        while let Some(Reverse((deadline, key))) = self.timers.peek().copied() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let Some(s) = self.streams.get_mut(key) else {
                continue;
            };
            if s.armed_timeout != Some(deadline) {
                continue; // superseded by a later arming
            }
            s.armed_timeout = None;
            s.ws.handle_timeout(now);
            self.touched.push(key);
        }
        if self.gateway.poll_timeout().is_some_and(|t| t <= now) {
            self.gateway.handle_timeout(now);
        }
    }

    /// Routes events until every engine is quiet, then flushes, re-arms and reaps.
    fn settle(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            let mut i = 0;
            while i < self.touched.len() {
                let key = self.touched[i];
                i += 1;
                progressed |= self.route_ws_events(now, key);
            }
            while let Some(out) = self.gateway.poll_output() {
                progressed = true;
                match out {
                    GatewayOutput::Send { conn, text } => {
                        let Some(parts) = token::decode(Token(conn)) else {
                            continue;
                        };
                        if let Some(s) = self.streams.get_mut(parts.key) {
                            if s.generation == parts.generation {
                                s.ws.send_text(now, text);
                                self.touched.push(parts.key);
                            }
                        }
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for key in touched.drain(..) {
            self.flush_and_rearm(now, key);
        }
        self.touched = touched;
    }

    /// Hands a stream's WebSocket events to the gateway. Returns whether any arrived.
    fn route_ws_events(&mut self, now: Instant, key: usize) -> bool {
        let Some(s) = self.streams.get_mut(key) else {
            return false;
        };
        let mut any = false;
        while let Some(event) = s.ws.poll_event() {
            any = true;
            match event {
                WsEvent::Open { dialect, origin } => {
                    log::info!(
                        "conn={} websocket open, {} origin={}",
                        s.log_id,
                        dialect.subprotocol(),
                        origin.as_deref().unwrap_or("-")
                    );
                    let conn = token::encode(TokenKind::WsConn, key, s.generation).0;
                    s.client = Some(
                        self.gateway
                            .handle_client_open(now, conn, dialect, s.log_id),
                    );
                }
                WsEvent::Text(text) => {
                    if let Some(client) = s.client {
                        self.gateway.handle_client_text(now, client, &text);
                    }
                }
                WsEvent::Closed(reason) => {
                    log::info!("conn={} websocket closed: {reason:?}", s.log_id);
                    if let Some(client) = s.client.take() {
                        self.gateway.handle_client_closed(now, client);
                    }
                }
            }
        }
        any
    }

    fn flush_and_rearm(&mut self, now: Instant, key: usize) {
        let Some(s) = self.streams.get_mut(key) else {
            return;
        };
        s.write_ready(now);
        if s.is_finished() {
            self.reap(now, key);
            return;
        }
        let wanted = if s.wants_write() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if wanted != s.interest {
            let token = token::encode(TokenKind::WsConn, key, s.generation);
            if self
                .poll
                .registry()
                .reregister(&mut s.socket, token, wanted)
                .is_ok()
            {
                s.interest = wanted;
            }
        }
        let deadline = s.ws.poll_timeout();
        if deadline != s.armed_timeout {
            s.armed_timeout = deadline;
            if let Some(d) = deadline {
                self.timers.push(Reverse((d, key)));
            }
        }
    }

    /// Drops a finished connection, telling the gateway if it had not heard yet.
    fn reap(&mut self, now: Instant, key: usize) {
        if !self.streams.contains(key) {
            return;
        }
        let mut s = self.streams.remove(key);
        if let Some(client) = s.client.take() {
            self.gateway.handle_client_closed(now, client);
        }
        s.shutdown();
        let _ = self.poll.registry().deregister(&mut s.socket);
        log::info!("conn={} connection from {} released", s.log_id, s.peer);
        // The gateway may have produced output for other connections while cleaning up.
        self.settle_gateway_only(now);
    }

    fn settle_gateway_only(&mut self, now: Instant) {
        while let Some(GatewayOutput::Send { conn, text }) = self.gateway.poll_output() {
            if let Some(parts) = token::decode(Token(conn)) {
                if let Some(s) = self.streams.get_mut(parts.key) {
                    if s.generation == parts.generation {
                        s.ws.send_text(now, text);
                        self.touched.push(parts.key);
                    }
                }
            }
        }
    }

    fn begin_shutdown(&mut self, now: Instant, signal: i32) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        log::info!(
            "signal {signal}: shutting down, closing {} connections",
            self.streams.len()
        );
        self.shutdown_deadline = Some(now + SHUTDOWN_GRACE);
        for l in &mut self.listeners {
            let _ = self.poll.registry().deregister(&mut l.socket);
        }
        let keys: Vec<usize> = self.streams.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(s) = self.streams.get_mut(key) {
                if s.ws.is_open() {
                    s.ws.close(now, CloseCode::Away, "server shutting down");
                    self.touched.push(key);
                } else {
                    self.reap(now, key);
                }
            }
        }
    }
}
