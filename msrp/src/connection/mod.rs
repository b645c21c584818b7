//! [`MsrpConnection`]: one MSRP session over one TCP or TLS connection, as a sans-IO state
//! machine.
//!
//! The owner creates it with the session's own URI, may ask it to authenticate to a relay
//! first ([`authenticate`](MsrpConnection::authenticate), RFC 4976), and
//! [`start`](MsrpConnection::start)s it once the SDP offer/answer gave the peer's path and
//! who connects (RFC 6135 `a=setup`; RFC 4975 section 5.4's default: the offerer). The
//! reactor carries out its [`MsrpTransmit`]s (connect, bytes, close) and feeds back
//! `handle_connected`, `handle_data`, `handle_closed` and how much output still waits for
//! the socket (`handle_backlog`, the backpressure that keeps chunks from piling up for a
//! slow peer). Everything comes out of [`poll_output`](MsrpConnection::poll_output), drained
//! after every input until it returns `Timeout`.
//!
//! No keep-alive: a dead peer shows as a closed TCP connection, a transaction without
//! response for [`MsrpConfig::transaction_timeout`] (RFC 4975 section 7.1.1: the session is
//! then considered broken) or a silent peer in the middle of a frame
//! ([`MsrpConfig::stall_timeout`]); a success report that never comes fails only its
//! message ([`MsrpConfig::report_timeout`]).

mod incoming;
mod outgoing;
mod relay;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{Deadlines, Output, Rng};
use sip::auth::Ha1;

use crate::frame::{FrameLimits, FrameReader};
use crate::uri::MsrpUri;

pub use incoming::Validator;
pub use outgoing::reason_phrase;

/// Settings of a connection.
#[derive(Debug, Clone)]
pub struct MsrpConfig {
    /// Most body bytes per outgoing chunk (RFC 4975 section 7.1.1 lets senders choose;
    /// small chunks let a short message overtake a long one).
    pub chunk_size: usize,
    /// Largest message, sent or received (reassembled), in bytes.
    pub max_message_size: usize,
    /// Most bytes of outgoing messages queued and not yet sent; beyond it `send` fails.
    pub max_queued: usize,
    /// Output bytes waiting for the socket above which no further chunk is produced.
    pub max_backlog: usize,
    /// Most chunks sent and not yet answered.
    pub max_in_flight: usize,
    /// How long a request may wait for its response (RFC 4975 section 7.1.1: 30 s).
    pub transaction_timeout: Duration,
    /// How long a message that asked for a success report waits for it.
    pub report_timeout: Duration,
    /// How long the connection may take to come up (connect, or the peer connecting to us).
    pub connect_timeout: Duration,
    /// How long a peer may stay silent in the middle of a frame.
    pub stall_timeout: Duration,
    /// How long an incomplete incoming message is kept between two of its chunks.
    pub reassembly_timeout: Duration,
    /// Frames per second a peer may send (as many in a burst); beyond: cut off.
    pub max_frame_rate: u32,
    /// Most incoming messages being reassembled at once.
    pub max_incomplete: usize,
    /// Frame head limits.
    pub limits: FrameLimits,
    /// Media types a SEND may carry (`*` and `type/*` wildcards); others get 415.
    pub accept_types: Vec<String>,
    /// Checks a complete incoming message before it is answered; its refusal becomes the
    /// last chunk's response (RFC 4975 section 7.2).
    pub validate: Option<Validator>,
    /// `Expires` asked of the relay in AUTH (RFC 4976 section 5.1).
    pub auth_expires: u32,
}

impl Default for MsrpConfig {
    fn default() -> Self {
        MsrpConfig {
            chunk_size: 2048,
            max_message_size: 1024 * 1024,
            max_queued: 4 * 1024 * 1024,
            max_backlog: 64 * 1024,
            max_in_flight: 64,
            transaction_timeout: Duration::from_secs(30),
            report_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            reassembly_timeout: Duration::from_secs(120),
            max_frame_rate: 2000,
            max_incomplete: 8,
            limits: FrameLimits::default(),
            accept_types: vec!["message/cpim".to_owned()],
            validate: None,
            auth_expires: 600,
        }
    }
}

/// Who opens the connection (RFC 6135 `a=setup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We connect (to the peer's first path URI, or to our relay).
    Active,
    /// The peer connects to the URI we gave.
    Passive,
}

/// The relay to authenticate to and the account's credentials (RFC 4976 section 5).
#[derive(Clone)]
pub struct RelayAuth {
    /// The relay's URI (no session id).
    pub relay: MsrpUri,
    /// Where it is.
    pub addr: SocketAddr,
    /// Digest user name (the account's user part).
    pub username: String,
    /// The account's HA1.
    pub ha1: Ha1,
}

impl fmt::Debug for RelayAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayAuth")
            .field("relay", &self.relay.to_string())
            .field("addr", &self.addr)
            .field("username", &self.username)
            .finish()
    }
}

/// Socket work for the reactor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsrpTransmit {
    /// Open the connection; then report `handle_connected` or `handle_closed`.
    Connect {
        /// Where to.
        addr: SocketAddr,
        /// `Some(server name)` for TLS (`msrps`).
        tls: Option<String>,
    },
    /// Bytes for the connection.
    Data(Vec<u8>),
    /// Close the connection (after what was queued).
    Close,
}

/// An outgoing message, as [`MsrpConnection::send`] named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutgoingId(pub u64);

/// What became of an outgoing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The next hop took the last chunk (200 to it).
    Accepted,
    /// The peer reported success (a REPORT with status 200, RFC 4975 section 7.1.2).
    Delivered,
    /// It failed: an error response, a failure REPORT, a timeout or the connection's end.
    Failed {
        /// MSRP status (408 for timeouts, 481 when the connection went away).
        code: u16,
        /// Why.
        reason: String,
    },
}

/// Why the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The owner closed it.
    Local,
    /// The peer closed the TCP connection, or it failed (or could not be opened).
    ConnectionLost,
    /// The connection did not come up within [`MsrpConfig::connect_timeout`].
    NoConnection,
    /// A request got no response within [`MsrpConfig::transaction_timeout`].
    TransactionTimeout,
    /// The first SEND was refused (e.g. 481 from a relay that does not know the peer).
    Refused {
        /// The status.
        code: u16,
    },
    /// The relay refused AUTH.
    AuthFailed {
        /// Its status (or 0 when its challenge could not be answered).
        code: u16,
    },
    /// The peer broke the framing (RFC 4975 gives no way to recover).
    Protocol(crate::frame::FrameError),
    /// The peer stopped in the middle of a frame.
    Stalled,
    /// The peer sent frames faster than [`MsrpConfig::max_frame_rate`], or kept sending a
    /// message refused as too large.
    Flood,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Local => f.write_str("closed"),
            CloseReason::ConnectionLost => f.write_str("MSRP connection lost"),
            CloseReason::NoConnection => f.write_str("MSRP connection not established"),
            CloseReason::TransactionTimeout => f.write_str("MSRP transaction timeout"),
            CloseReason::AuthFailed { code } => {
                write!(f, "MSRP relay authentication failed ({code})")
            }
            CloseReason::Refused { code } => write!(f, "MSRP session refused ({code})"),
            CloseReason::Protocol(e) => write!(f, "MSRP protocol error: {e}"),
            CloseReason::Stalled => f.write_str("MSRP peer stalled mid-frame"),
            CloseReason::Flood => f.write_str("MSRP peer flooding"),
        }
    }
}

impl CloseReason {
    /// A fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            CloseReason::Local => "local",
            CloseReason::ConnectionLost => "connection_lost",
            CloseReason::NoConnection => "no_connection",
            CloseReason::TransactionTimeout => "transaction_timeout",
            CloseReason::AuthFailed { .. } => "auth_failed",
            CloseReason::Refused { .. } => "refused",
            CloseReason::Protocol(_) => "protocol",
            CloseReason::Stalled => "stalled",
            CloseReason::Flood => "flood",
        }
    }
}

/// What the connection reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsrpEvent {
    /// The relay accepted AUTH (also after each refresh): the path to put before our URI in
    /// `a=path`, and for how long.
    Authenticated {
        /// The relay's `Use-Path`.
        use_path: Vec<MsrpUri>,
        /// Granted seconds.
        expires: u32,
    },
    /// The session works: the first transaction succeeded (our first SEND was answered
    /// 200, or we answered the peer's first SEND).
    Ready,
    /// A complete incoming message (empty SENDs, which only bind connections, are not
    /// reported).
    Message {
        /// Its MSRP Message-ID.
        message_id: String,
        /// Its Content-Type.
        content_type: String,
        /// The reassembled body, exactly as sent.
        body: Vec<u8>,
    },
    /// News about an outgoing message.
    Delivery {
        /// Which.
        id: OutgoingId,
        /// What.
        delivery: Delivery,
    },
    /// The connection is over; nothing follows.
    Closed(CloseReason),
}

/// Why [`MsrpConnection::send`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// Larger than [`MsrpConfig::max_message_size`].
    TooLarge,
    /// [`MsrpConfig::max_queued`] bytes already wait.
    QueueFull,
    /// The connection is closed.
    Closed,
    /// The peer's first path URI is not an IP address (names are not resolved).
    UnresolvedHost,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::TooLarge => "message too large",
            SendError::QueueFull => "too many messages queued",
            SendError::Closed => "MSRP connection closed",
            SendError::UnresolvedHost => "MSRP peer host is not an IP address",
        })
    }
}

impl std::error::Error for SendError {}

/// Counters of one connection, summed by the owner (metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsrpStats {
    /// Complete messages received (empty SENDs not counted).
    pub messages_in: u64,
    /// Messages whose last chunk was sent.
    pub messages_out: u64,
    /// Body bytes received.
    pub bytes_in: u64,
    /// Body bytes sent.
    pub bytes_out: u64,
    /// Requests answered with an error status (400, 403, 413, 415, 481, 501).
    pub refused: u64,
    /// Malformed frames (answered 400, dropped, or the connection closed).
    pub malformed: u64,
}

/// Deadlines of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Timer {
    /// A request's response (by transaction sequence number).
    Transaction(u64),
    /// A success report (by outgoing id).
    Report(u64),
    /// An incomplete incoming message (by its sequence number).
    Reassembly(u64),
    /// The AUTH refresh.
    Refresh,
    /// The connection must be up.
    Connect,
    /// A frame started and the peer went silent.
    Stall,
}

/// One MSRP session over one connection. See the module docs.
#[derive(Debug)]
pub struct MsrpConnection {
    /// Shared by every connection of the owner (it never changes per connection).
    config: Arc<MsrpConfig>,
    local: MsrpUri,
    /// Our relay's Use-Path (empty without relay): put before the peer's path in To-Path.
    use_path: Vec<MsrpUri>,
    /// The peer's `a=path`.
    peer_path: Vec<MsrpUri>,
    role: Role,
    /// `start` was called.
    started: bool,
    connecting: bool,
    connected: bool,
    /// Passive: the peer's first SEND arrived. Active: our first SEND went out.
    bound: bool,
    ready: bool,
    closed: bool,
    reader: FrameReader,
    rng: Rng,
    /// Boxed: most sessions have no relay, and an idle session's size counts.
    relay: Option<Box<relay::RelayState>>,
    /// Our requests awaiting a response, by transaction id.
    transactions: HashMap<String, outgoing::Pending>,
    next_seq: u64,
    out: outgoing::OutQueue,
    inc: incoming::InState,
    /// Control frames and events in order.
    queue: VecDeque<Output<MsrpTransmit, MsrpEvent>>,
    deadlines: Deadlines<Timer>,
    /// Output bytes believed queued for the socket.
    backlog: usize,
    /// Frame budget in millionths of a frame, and when it was last refilled.
    budget: u64,
    budget_at: Option<Instant>,
    /// The `now` of the latest input (for deadlines armed while producing output).
    clock: Option<Instant>,
    stats: MsrpStats,
}

impl MsrpConnection {
    /// A session whose URI is `local`, not connected yet. `config` may be shared by many
    /// connections (an `Arc<MsrpConfig>`), or given by value.
    pub fn new(config: impl Into<Arc<MsrpConfig>>, local: MsrpUri, rng: Rng) -> MsrpConnection {
        let config = config.into();
        MsrpConnection {
            reader: FrameReader::new(config.limits),
            budget: u64::from(config.max_frame_rate) * 1_000_000,
            config,
            local,
            use_path: Vec::new(),
            peer_path: Vec::new(),
            role: Role::Active,
            started: false,
            connecting: false,
            connected: false,
            bound: false,
            ready: false,
            closed: false,
            rng,
            relay: None,
            transactions: HashMap::new(),
            next_seq: 0,
            out: outgoing::OutQueue::default(),
            inc: incoming::InState::default(),
            queue: VecDeque::new(),
            deadlines: Deadlines::new(),
            backlog: 0,
            budget_at: None,
            clock: None,
            stats: MsrpStats::default(),
        }
    }

    /// Our session URI.
    pub fn local(&self) -> &MsrpUri {
        &self.local
    }

    /// The relay's Use-Path, once authenticated.
    pub fn use_path(&self) -> &[MsrpUri] {
        &self.use_path
    }

    /// The counters.
    pub fn stats(&self) -> &MsrpStats {
        &self.stats
    }

    /// Whether the session carries messages (see [`MsrpEvent::Ready`]).
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether the connection is up (or being opened) by us or by the peer.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Connects to `relay` and authenticates (RFC 4976 section 5); reports
    /// [`MsrpEvent::Authenticated`] (or closes with [`CloseReason::AuthFailed`]). Call
    /// before [`start`](Self::start); the session then runs over this connection.
    pub fn authenticate(&mut self, now: Instant, relay: RelayAuth) {
        self.clock = Some(now);
        if self.relay.is_some() || self.started || self.closed {
            return;
        }
        let addr = relay.addr;
        let tls = relay.relay.secure.then(|| relay.relay.host.clone());
        self.relay = Some(Box::new(relay::RelayState::new(relay)));
        self.connect(now, addr, tls);
    }

    /// The offer/answer is done: `peer_path` is the peer's `a=path`, `role` who connects
    /// (always [`Role::Active`] over a relay). Active without relay: connects to the first
    /// path URI (an IP address). Then the first SEND goes out (RFC 4975 section 5.4: the
    /// active end binds the connection with a SEND, empty if need be).
    pub fn start(
        &mut self,
        now: Instant,
        role: Role,
        peer_path: Vec<MsrpUri>,
    ) -> Result<(), SendError> {
        self.clock = Some(now);
        if self.closed {
            return Err(SendError::Closed);
        }
        if self.started {
            return Ok(());
        }
        let first = peer_path.first().ok_or(SendError::UnresolvedHost)?.clone();
        self.peer_path = peer_path;
        self.started = true;
        if self.relay.is_some() {
            self.role = Role::Active;
            self.maybe_bind(now);
            return Ok(());
        }
        self.role = role;
        match role {
            Role::Active => {
                let addr = first.socket_addr().ok_or(SendError::UnresolvedHost)?;
                let tls = first.secure.then(|| first.host.clone());
                self.connect(now, addr, tls);
            }
            Role::Passive if !self.connected => {
                self.deadlines
                    .set(Timer::Connect, Some(now + self.config.connect_timeout));
            }
            Role::Passive => {}
        }
        Ok(())
    }

    /// The connection is up: ours (after [`MsrpTransmit::Connect`]) or one the peer opened
    /// to our listener and that named our session.
    pub fn handle_connected(&mut self, now: Instant) {
        self.clock = Some(now);
        if self.closed || self.connected {
            return;
        }
        self.connecting = false;
        self.connected = true;
        self.deadlines.cancel(Timer::Connect);
        if self.relay.is_some() {
            self.send_auth(now);
        }
        self.maybe_bind(now);
    }

    /// Bytes from the connection.
    pub fn handle_data(&mut self, now: Instant, data: &[u8]) {
        self.clock = Some(now);
        if self.closed {
            return;
        }
        self.reader.push(data);
        self.read_frames(now);
        if self.closed {
            return;
        }
        let stall = self
            .reader
            .in_frame()
            .then(|| now + self.config.stall_timeout);
        self.deadlines.set(Timer::Stall, stall);
    }

    /// The connection closed, failed or could not be opened.
    pub fn handle_closed(&mut self, _now: Instant) {
        if !self.closed {
            self.finish(CloseReason::ConnectionLost, false);
        }
    }

    /// `queued` output bytes still wait for the socket (after a write): chunks resume
    /// below [`MsrpConfig::max_backlog`].
    pub fn handle_backlog(&mut self, queued: usize) {
        self.backlog = queued;
    }

    /// Whether output is pending (chunks of queued messages, control frames, events): the
    /// owner polls after a backlog change only then.
    pub fn wants_output(&self) -> bool {
        !self.queue.is_empty() || self.out.has_chunks()
    }

    /// Runs due timers; early calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock = Some(now);
        while let Some(timer) = self.deadlines.pop_due(now) {
            if self.closed {
                return;
            }
            match timer {
                Timer::Transaction(seq) => self.transaction_timeout(seq),
                Timer::Report(id) => self.report_timeout(OutgoingId(id)),
                Timer::Reassembly(seq) => self.reassembly_timeout(seq),
                Timer::Refresh => self.send_auth(now),
                Timer::Connect => self.finish(CloseReason::NoConnection, true),
                Timer::Stall => self.finish(CloseReason::Stalled, true),
            }
        }
    }

    /// Ends the session: the connection is closed, unsent and unanswered messages fail.
    pub fn close(&mut self, _now: Instant) {
        if !self.closed {
            self.finish(CloseReason::Local, true);
        }
    }

    /// The next thing to do: a transmit, an event, or (when quiet) the next deadline.
    pub fn poll_output(&mut self) -> Output<MsrpTransmit, MsrpEvent> {
        if let Some(o) = self.queue.pop_front() {
            return o;
        }
        if let Some(frame) = self.next_chunk() {
            return Output::Transmit(MsrpTransmit::Data(frame));
        }
        Output::Timeout(self.deadlines.earliest())
    }

    fn connect(&mut self, now: Instant, addr: SocketAddr, tls: Option<String>) {
        if self.connecting || self.connected {
            return;
        }
        self.connecting = true;
        self.queue
            .push_back(Output::Transmit(MsrpTransmit::Connect { addr, tls }));
        self.deadlines
            .set(Timer::Connect, Some(now + self.config.connect_timeout));
    }

    /// Active: once started, connected and (over a relay) authenticated, the first SEND.
    fn maybe_bind(&mut self, now: Instant) {
        let relay_ok = self.relay.as_ref().is_none_or(|r| r.is_authenticated());
        if self.started && self.connected && relay_ok && self.role == Role::Active && !self.bound {
            self.bound = true;
            self.send_bind(now);
        }
    }

    /// A control frame for the connection.
    fn transmit(&mut self, frame: Vec<u8>) {
        self.backlog += frame.len();
        self.queue
            .push_back(Output::Transmit(MsrpTransmit::Data(frame)));
    }

    fn event(&mut self, event: MsrpEvent) {
        self.queue.push_back(Output::Event(event));
    }

    fn became_ready(&mut self) {
        if !self.ready {
            self.ready = true;
            self.event(MsrpEvent::Ready);
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn transaction_id(&mut self) -> String {
        self.rng.token(16)
    }

    /// Ends everything: pending messages fail, the socket closes (`close_socket`: unless the
    /// reactor told us it is gone), and [`MsrpEvent::Closed`] is the last event.
    fn finish(&mut self, reason: CloseReason, close_socket: bool) {
        self.closed = true;
        let code = match reason {
            CloseReason::TransactionTimeout => 408,
            _ => 481,
        };
        for id in self.out.drain_all() {
            self.event(MsrpEvent::Delivery {
                id,
                delivery: Delivery::Failed {
                    code,
                    reason: reason.to_string(),
                },
            });
        }
        self.transactions.clear();
        self.inc = incoming::InState::default();
        self.deadlines = Deadlines::new();
        if close_socket && (self.connected || self.connecting) {
            self.queue.push_back(Output::Transmit(MsrpTransmit::Close));
        }
        self.connected = false;
        self.connecting = false;
        self.event(MsrpEvent::Closed(reason));
    }
}
