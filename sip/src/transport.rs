//! The SIP transport layer (RFC 3261 section 18), sans-IO: flows, stream framing, RFC 5626
//! keep-alives, RFC 3581 response routing and connection reuse.
//!
//! A *flow* is where a message travels: [`UDP_FLOW`] is the UDP socket (the remote address
//! travels with each datagram); every TCP or TLS connection is a flow of its own, outbound
//! (opened on our request) or inbound (accepted). The reactor owns the sockets and reports
//! what happens to each flow.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use engine::drops::{self, DropKind};

use super::framing::{self, Datagram, StreamFramer, StreamItem};
use super::msg::{Host, Param, SipMessage, SipRequest, Via};
use super::txn::Destination;

/// Identifies a flow. Stream flows count up from 1 and are never reused.
pub type FlowId = u64;

/// The flow of the UDP socket.
pub const UDP_FLOW: FlowId = 0;

/// RFC 5626 section 4.4.1: clients send a CRLFCRLF keep-alive on connection-oriented flows;
/// 120 s is the recommended default for TCP/TLS when no `Flow-Timer` was given.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(120);
/// Inbound connections nobody uses are closed after this long (they are the peer's to keep).
const INBOUND_IDLE: Duration = Duration::from_secs(600);
/// Most simultaneous stream flows, so a peer cannot exhaust our memory or descriptors.
const MAX_STREAMS: usize = 4096;

/// A SIP transport the gateway can speak (the `transport` of a Via or URI, RFC 3261 section
/// 18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// SIP over UDP.
    Udp,
    /// SIP over TCP.
    Tcp,
    /// SIP over TLS over TCP.
    Tls,
}

impl Transport {
    /// RFC 3261 section 19.1.2: 5060 for UDP and TCP, 5061 for TLS.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 5060,
            Transport::Tls => 5061,
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        })
    }
}

/// Something the reactor must do with one of the SIP stack's sockets: the SIP UDP socket,
/// a SIP stream connection, or the resolver's DNS socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipTransmit {
    /// Send a datagram from the SIP UDP socket.
    Datagram {
        /// Destination.
        to: SocketAddr,
        /// A complete SIP message (or keep-alive).
        bytes: Vec<u8>,
    },
    /// Open a TCP (or TLS, when `tls_server_name` is set) connection for `flow`; bytes for it
    /// follow as [`SipTransmit::Stream`] and must be queued until it is connected.
    Connect {
        /// The new flow.
        flow: FlowId,
        /// Where to connect.
        remote: SocketAddr,
        /// TLS: the name the server certificate must match (SNI).
        tls_server_name: Option<String>,
    },
    /// Write bytes on a stream flow.
    Stream {
        /// The flow.
        flow: FlowId,
        /// Bytes (one or more messages, or a keep-alive).
        bytes: Vec<u8>,
    },
    /// Close a stream flow.
    Close {
        /// The flow.
        flow: FlowId,
    },
    /// Send a DNS query from the resolver's UDP socket (the socket of `to`'s address
    /// family; see [`crate::dns`]). The transport layer never produces this; the stack's
    /// locator does.
    Dns {
        /// The nameserver.
        to: SocketAddr,
        /// The query message.
        bytes: Vec<u8>,
    },
}

/// Addresses we listen on and advertise in Via and Contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddresses {
    /// UDP socket (and TCP listener, same address).
    pub udp_tcp: SocketAddr,
    /// TLS listener, if any.
    pub tls: Option<SocketAddr>,
    /// Host advertised instead of the listen IP (NAT).
    pub advertised_host: Option<String>,
}

/// Why a message could not go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportError {
    /// The stream flow is closed (or never existed).
    FlowClosed,
    /// Too many stream flows are open.
    TooManyFlows,
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransportError::FlowClosed => "connection closed",
            TransportError::TooManyFlows => "too many connections",
        })
    }
}

impl std::error::Error for TransportError {}

/// A message that arrived, with the target its responses (or our replies) go to.
#[derive(Debug)]
pub struct Inbound {
    /// The validated message.
    pub message: SipMessage,
    /// Where it came from, in the form the transaction layer sends to.
    pub source: Destination,
}

#[derive(Debug)]
struct Stream {
    kind: Transport,
    remote: SocketAddr,
    outbound: bool,
    framer: StreamFramer,
    last_activity: Instant,
    next_keepalive: Option<Instant>,
}

/// Counters of what the transport dropped, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Datagrams or stream messages dropped as malformed.
    pub dropped_malformed: u64,
    /// Malformed requests answered statelessly with 400/416/505.
    pub rejected_requests: u64,
}

/// The transport engine.
#[derive(Debug)]
pub struct SipTransport {
    local: LocalAddresses,
    streams: HashMap<FlowId, Stream>,
    /// Connection reuse (RFC 3261 section 18.1.1): one outbound flow per transport and remote.
    reuse: HashMap<(Transport, SocketAddr), FlowId>,
    next_flow: FlowId,
    transmits: VecDeque<SipTransmit>,
    inbound: VecDeque<Inbound>,
    stats: TransportStats,
}

impl SipTransport {
    /// A transport with no streams.
    pub fn new(local: LocalAddresses) -> SipTransport {
        SipTransport {
            local,
            streams: HashMap::new(),
            reuse: HashMap::new(),
            next_flow: 1,
            transmits: VecDeque::new(),
            inbound: VecDeque::new(),
            stats: TransportStats::default(),
        }
    }

    /// Our addresses.
    pub fn local(&self) -> &LocalAddresses {
        &self.local
    }

    /// Drop counters.
    pub fn stats(&self) -> TransportStats {
        self.stats
    }

    /// Number of open stream flows (for leak checks).
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// The target for sending to `remote` over `kind`, reusing an open connection or asking
    /// the reactor for a new one (RFC 3261 section 18.1.1).
    pub fn destination_for(
        &mut self,
        now: Instant,
        kind: Transport,
        remote: SocketAddr,
        tls_server_name: &str,
    ) -> Result<Destination, TransportError> {
        if kind == Transport::Udp {
            return Ok(Destination {
                remote,
                flow: UDP_FLOW,
                reliable: false,
            });
        }
        if let Some(&flow) = self.reuse.get(&(kind, remote)) {
            if self.streams.contains_key(&flow) {
                return Ok(Destination {
                    remote,
                    flow,
                    reliable: true,
                });
            }
        }
        let flow = self
            .open_stream(now, kind, remote, true)
            .ok_or(TransportError::TooManyFlows)?;
        self.reuse.insert((kind, remote), flow);
        self.transmits.push_back(SipTransmit::Connect {
            flow,
            remote,
            tls_server_name: (kind == Transport::Tls).then(|| tls_server_name.to_owned()),
        });
        Ok(Destination {
            remote,
            flow,
            reliable: true,
        })
    }

    /// Queues `bytes` for `target`.
    pub fn send(
        &mut self,
        now: Instant,
        target: &Destination,
        bytes: Vec<u8>,
    ) -> Result<(), TransportError> {
        if target.flow == UDP_FLOW {
            self.transmits.push_back(SipTransmit::Datagram {
                to: target.remote,
                bytes,
            });
            return Ok(());
        }
        let stream = self
            .streams
            .get_mut(&target.flow)
            .ok_or(TransportError::FlowClosed)?;
        stream.last_activity = now;
        self.transmits.push_back(SipTransmit::Stream {
            flow: target.flow,
            bytes,
        });
        Ok(())
    }

    /// The Via for a request we send over `kind` (RFC 3261 section 18.1.1 sent-by, with an
    /// empty `rport` so the server answers to where the request really came from, RFC 3581).
    pub fn via(&self, kind: Transport, branch: &str) -> Via {
        let (host, port) = self.sent_by(kind);
        let mut via = Via::new(&kind.to_string(), host, Some(port), branch);
        via.params.push(Param::raw("rport", None));
        via
    }

    /// The host and port we advertise for `kind`.
    pub fn sent_by(&self, kind: Transport) -> (Host, u16) {
        let addr = match kind {
            Transport::Tls => self.local.tls.unwrap_or(self.local.udp_tcp),
            Transport::Udp | Transport::Tcp => self.local.udp_tcp,
        };
        let host = match &self.local.advertised_host {
            Some(h) => match h.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => Host::Ipv4(a),
                Ok(IpAddr::V6(a)) => Host::Ipv6(a),
                Err(_) => Host::Domain(h.to_ascii_lowercase()),
            },
            None => match addr.ip() {
                IpAddr::V4(a) => Host::Ipv4(a),
                IpAddr::V6(a) => Host::Ipv6(a),
            },
        };
        (host, addr.port())
    }

    /// A datagram arrived on the SIP UDP socket.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let source = Destination {
            remote: from,
            flow: UDP_FLOW,
            reliable: false,
        };
        match framing::handle_datagram(data) {
            Ok(Datagram::KeepAlive) => {}
            Ok(Datagram::Message(message)) => self.accept(*message, source),
            Err(rejection) => self.reject(now, rejection, source),
        }
    }

    /// The reactor accepted a TCP/TLS connection from `remote`; returns its flow.
    pub fn handle_stream_accepted(
        &mut self,
        now: Instant,
        kind: Transport,
        remote: SocketAddr,
    ) -> Option<FlowId> {
        let flow = self.open_stream(now, kind, remote, false)?;
        // Requests we send to this peer later may reuse its connection (RFC 5923 spirit).
        self.reuse.entry((kind, remote)).or_insert(flow);
        Some(flow)
    }

    /// Bytes arrived on a stream flow.
    pub fn handle_stream_data(&mut self, now: Instant, flow: FlowId, data: &[u8]) {
        let Some(stream) = self.streams.get_mut(&flow) else {
            return;
        };
        stream.last_activity = now;
        let remote = stream.remote;
        if let Err(e) = stream.framer.handle_bytes(data) {
            drops::record(
                now,
                DropKind::SipStreamClosed,
                format_args!("closing the connection from {remote}: {e}"),
            );
            self.stats.dropped_malformed += 1;
            self.close(flow);
            return;
        }
        // RFC 5626 section 3.5.1 asks for a pong per ping, but any number of pings read
        // together are answered by one: a peer that pipelines millions must not make us queue
        // millions of replies (issue 16: 5 MB of pings once grew the process by 124 MB).
        let mut ponged = false;
        loop {
            let Some(stream) = self.streams.get_mut(&flow) else {
                return;
            };
            match stream.framer.poll_item() {
                Ok(None) => return,
                Ok(Some(StreamItem::Ping)) if ponged => {}
                Ok(Some(StreamItem::Ping)) => {
                    ponged = true;
                    self.transmits.push_back(SipTransmit::Stream {
                        flow,
                        bytes: framing::PONG.to_vec(),
                    });
                }
                Ok(Some(StreamItem::Pong)) => {}
                Ok(Some(StreamItem::Message(bytes))) => {
                    let source = Destination {
                        remote,
                        flow,
                        reliable: true,
                    };
                    match framing::parse_stream_message(&bytes) {
                        Ok(message) => self.accept(message, source),
                        Err(rejection) => self.reject(now, rejection, source),
                    }
                }
                Err(e) => {
                    // RFC 3261 section 18.3: a stream without valid framing cannot be
                    // resynchronised; close it.
                    drops::record(
                        now,
                        DropKind::SipStreamClosed,
                        format_args!("closing the connection from {remote}: {e}"),
                    );
                    self.stats.dropped_malformed += 1;
                    self.close(flow);
                    return;
                }
            }
        }
    }

    /// The reactor reports a stream flow closed or failed. Returns whether it was ours.
    pub fn handle_stream_closed(&mut self, flow: FlowId) -> bool {
        let Some(stream) = self.streams.remove(&flow) else {
            return false;
        };
        if self.reuse.get(&(stream.kind, stream.remote)) == Some(&flow) {
            self.reuse.remove(&(stream.kind, stream.remote));
        }
        true
    }

    /// Sends keep-alives on outbound flows and closes idle inbound ones.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut idle = Vec::new();
        for (&flow, s) in &mut self.streams {
            if s.next_keepalive.is_some_and(|at| at <= now) {
                self.transmits.push_back(SipTransmit::Stream {
                    flow,
                    bytes: framing::PING.to_vec(),
                });
                s.next_keepalive = Some(now + KEEPALIVE_INTERVAL);
            }
            if !s.outbound && now.saturating_duration_since(s.last_activity) >= INBOUND_IDLE {
                idle.push(flow);
            }
        }
        for flow in idle {
            self.close(flow);
        }
    }

    /// The earliest keep-alive or idle deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.streams
            .values()
            .filter_map(|s| {
                if s.outbound {
                    s.next_keepalive
                } else {
                    Some(s.last_activity + INBOUND_IDLE)
                }
            })
            .min()
    }

    /// The next socket action.
    pub fn poll_transmit(&mut self) -> Option<SipTransmit> {
        self.transmits.pop_front()
    }

    /// The next message that arrived.
    pub fn poll_inbound(&mut self) -> Option<Inbound> {
        self.inbound.pop_front()
    }

    /// A new stream flow; outbound ones send RFC 5626 keep-alives. `None` at the limit.
    fn open_stream(
        &mut self,
        now: Instant,
        kind: Transport,
        remote: SocketAddr,
        outbound: bool,
    ) -> Option<FlowId> {
        if self.streams.len() >= MAX_STREAMS {
            return None;
        }
        let flow = self.next_flow;
        self.next_flow += 1;
        self.streams.insert(
            flow,
            Stream {
                kind,
                remote,
                outbound,
                framer: StreamFramer::new(),
                last_activity: now,
                next_keepalive: outbound.then(|| now + KEEPALIVE_INTERVAL),
            },
        );
        Some(flow)
    }

    fn close(&mut self, flow: FlowId) {
        if self.handle_stream_closed(flow) {
            self.transmits.push_back(SipTransmit::Close { flow });
        }
    }

    fn accept(&mut self, mut message: SipMessage, mut source: Destination) {
        if let SipMessage::Request(request) = &mut message {
            // Record the real source in the top Via first: every response built from the
            // request, including the transaction layer's own 100 Trying, carries it.
            request.stamp_source(source.remote);
            source.remote = response_address(request, source);
        }
        self.inbound.push_back(Inbound { message, source });
    }

    /// A malformed message: requests get the RFC's stateless answer, the rest is dropped.
    fn reject(&mut self, now: Instant, rejection: super::msg::Rejection, source: Destination) {
        if let Some(reply) = rejection.reply_bytes("sylk-reject") {
            self.stats.rejected_requests += 1;
            drops::record(
                now,
                DropKind::SipRejected,
                format_args!(
                    "answered a request from {}: {}",
                    source.remote, rejection.error
                ),
            );
            if let Err(e) = self.send(now, &source, reply) {
                log::debug!("sip: no stateless reply to {}: {e}", source.remote);
            }
            return;
        }
        self.stats.dropped_malformed += 1;
        drops::record(
            now,
            DropKind::SipMalformed,
            format_args!(
                "dropped a message from {}: {}",
                source.remote, rejection.error
            ),
        );
    }
}

/// Where responses to `request` go (RFC 3261 section 18.2.2, RFC 3581 section 4): over a
/// stream, back on the same connection; over UDP, to the source IP, at the source port when
/// the client asked with `rport` (already stamped with the port), else at the Via port.
fn response_address(request: &SipRequest, source: Destination) -> SocketAddr {
    if source.reliable {
        return source.remote;
    }
    match request.top_via() {
        Some(via) if via.rport().is_none() => {
            SocketAddr::new(source.remote.ip(), via.port.unwrap_or(5060))
        }
        _ => source.remote,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport() -> SipTransport {
        SipTransport::new(LocalAddresses {
            udp_tcp: "127.0.0.1:5060".parse().expect("addr"),
            tls: None,
            advertised_host: None,
        })
    }

    /// Issue 16 problem 1: a client that pipelines keep-alive pings got one queued pong
    /// each (5 MB of pings -> +124 MB). Pings read together are answered once.
    #[test]
    fn pipelined_pings_get_one_pong_per_read() {
        let now = Instant::now();
        let mut t = transport();
        let remote = "127.0.0.1:40000".parse().expect("addr");
        let flow = t
            .handle_stream_accepted(now, Transport::Tcp, remote)
            .expect("flow");
        t.handle_stream_data(now, flow, &framing::PING.repeat(10_000));
        let mut pongs = 0;
        while let Some(tx) = t.poll_transmit() {
            assert_eq!(
                tx,
                SipTransmit::Stream {
                    flow,
                    bytes: framing::PONG.to_vec()
                }
            );
            pongs += 1;
        }
        assert_eq!(pongs, 1);
        // The next read's pings are answered again.
        t.handle_stream_data(now, flow, framing::PING);
        assert!(t.poll_transmit().is_some());
    }
}
