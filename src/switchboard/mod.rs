//! The engines side by side, and the routing of typed events between them.
//!
//! The [`Switchboard`] owns the SIP stack, every call's bridge ([`Bridges`]) and the
//! [`Gateway`] that binds them. The reactor gives it socket input with `now` and carries out
//! its [`Command`]s; media datagrams go from socket to bridge ([`Bridges::handle_datagram`])
//! and back without reaching the gateway. Everything above the sockets lives here, so tests
//! drive exactly what production runs, with virtual time and no sockets.
//!
//! After every input the switchboard routes until every engine is quiet: the SIP stack's
//! events and the bridges' events go to the gateway (lending it the engines through
//! [`Engines`]), whose calls on the engines may produce more. Socket work collects in one
//! queue, in the order it was produced.

mod bridges;
mod msrps;
mod store;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use engine::Output;
use media::bridge::BridgeTransmit;
use sip::stack::SipStack;
use sip::transport::{FlowId, SipTransmit};

use crate::gateway::{ConnRef, Engines, Gateway, GatewayCommand, GatewayInput};
use crate::sylkrtc::Dialect;

pub use bridges::{Bridges, MediaCounters, MediaId, MediaSocketKind};
pub use msrps::{Claim, MsrpCounters, MsrpId, Msrps, MAX_CLAIM_BYTES};
pub use store::{Store, StoreHealth, StoreStats};

/// Store results handed to the gateway per [`Switchboard::handle_store_ready`]: each may
/// send a SIP MESSAGE and several WebSocket messages (tens of microseconds), and the worker
/// returns up to a whole transaction's batch at once, so the reactor takes them in slices
/// between its sockets (issue 11: no reactor iteration over 2 ms).
pub const STORE_RESULTS_PER_CALL: usize = 16;

/// Socket work for the reactor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// What the gateway asked for (WebSocket text, media sockets).
    Gateway(GatewayCommand),
    /// A SIP socket action (or a DNS query of its resolver).
    Sip(SipTransmit),
    /// A chat session's MSRP socket action.
    Msrp {
        /// Whose.
        id: MsrpId,
        /// What.
        transmit: msrp::MsrpTransmit,
    },
    /// An XCAP connection's socket action.
    Xcap(xcap::XcapTransmit),
}

/// The SIP stack, the bridges and the gateway, with the routing between them.
pub struct Switchboard {
    gateway: Gateway,
    sip: SipStack,
    /// Every call's bridge; the reactor drains their datagrams directly.
    pub bridges: Bridges,
    /// Every chat session's MSRP connection.
    msrps: Msrps,
    /// The message store's worker.
    store: Store,
    /// The XCAP client.
    xcap: xcap::XcapClient,
    /// Its deadline as its last `poll_output` gave it.
    xcap_deadline: Option<Instant>,
    /// The SIP stack's deadline as its last `poll_output` gave it.
    sip_deadline: Option<Instant>,
    /// The wall clock read with the current iteration's `now`.
    wall: SystemTime,
    commands: VecDeque<Command>,
}

impl std::fmt::Debug for Switchboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switchboard")
            .field("gateway", &self.gateway)
            .field("bridges", &self.bridges)
            .finish()
    }
}

impl Switchboard {
    /// The engines of one gateway process.
    pub fn new(gateway: Gateway, mut sip: SipStack, max_calls: usize) -> Switchboard {
        sip.set_incoming_calls(true);
        // RFC 3428 MESSAGE, outside dialogs and inside calls: the gateway's messaging.
        sip.set_incoming_methods(&[sip::msg::Method::Message]);
        sip.set_max_calls(max_calls);
        // Inside calls: key presses (INFO), transfers (REFER) and their progress (NOTIFY).
        sip.enable_in_dialog_methods(&[
            sip::msg::Method::Info,
            sip::msg::Method::Refer,
            sip::msg::Method::Notify,
        ]);
        Switchboard {
            gateway,
            sip,
            bridges: Bridges::default(),
            msrps: Msrps::default(),
            store: Store::default(),
            xcap: xcap::XcapClient::new(
                xcap::XcapClientConfig::default(),
                engine::Rng::seed_from_u64(0),
            ),
            xcap_deadline: None,
            sip_deadline: None,
            wall: SystemTime::UNIX_EPOCH,
            commands: VecDeque::new(),
        }
    }

    /// The wall clock as the reactor read it with the `now` of the inputs that follow (RTCP
    /// sender reports and message timestamps need it; engines never read clocks).
    pub fn set_wall_clock(&mut self, wall: SystemTime) {
        self.wall = wall;
    }

    /// Gives the switchboard the message store's worker; results are collected with
    /// [`handle_store_ready`](Self::handle_store_ready) when its notifier fires.
    pub fn set_store(&mut self, store: Store) {
        self.store = store;
    }

    /// The store's worker signalled results: up to [`STORE_RESULTS_PER_CALL`] go to the
    /// gateway. Returns whether more may be waiting (call again soon: the worker does not
    /// signal the same results twice).
    pub fn handle_store_ready(&mut self, now: Instant) -> bool {
        self.store.set_now(now);
        for _ in 0..STORE_RESULTS_PER_CALL {
            let Some((ticket, result)) = self.store.poll_result() else {
                return false;
            };
            self.deliver(now, GatewayInput::Store { ticket, result });
        }
        true
    }

    /// Gives the switchboard its XCAP client (limits from `[xcap]`, randomness seeded by the
    /// caller).
    pub fn set_xcap(&mut self, client: xcap::XcapClient) {
        self.xcap = client;
    }

    /// An XCAP connection is up.
    pub fn handle_xcap_connected(&mut self, now: Instant, conn: xcap::ConnId) {
        self.xcap.handle_connected(now, conn);
        self.route(now);
    }

    /// Bytes arrived on an XCAP connection.
    pub fn handle_xcap_data(&mut self, now: Instant, conn: xcap::ConnId, data: &[u8]) {
        self.xcap.handle_data(now, conn, data);
        self.route(now);
    }

    /// An XCAP connection closed or could not be opened.
    pub fn handle_xcap_closed(&mut self, now: Instant, conn: xcap::ConnId) {
        self.xcap.handle_closed(now, conn);
        self.route(now);
    }

    /// The XCAP client (leak checks, metrics).
    pub fn xcap(&self) -> &xcap::XcapClient {
        &self.xcap
    }

    /// Store requests submitted and not collected yet (tests wait for 0).
    pub fn store_outstanding(&self) -> usize {
        self.store.outstanding()
    }

    /// A WebSocket completed its handshake.
    pub fn handle_client_open(
        &mut self,
        now: Instant,
        conn: ConnRef,
        dialect: Dialect,
        log_id: u64,
    ) {
        self.deliver(
            now,
            GatewayInput::ClientOpen {
                conn,
                dialect,
                log_id,
            },
        );
    }

    /// A text message from a client.
    pub fn handle_client_text(&mut self, now: Instant, conn: ConnRef, text: &str) {
        self.deliver(now, GatewayInput::ClientText { conn, text });
    }

    /// A client's WebSocket is gone.
    pub fn handle_client_closed(&mut self, now: Instant, conn: ConnRef) {
        self.deliver(now, GatewayInput::ClientClosed { conn });
    }

    /// Graceful shutdown: every call still up ends, every client is released (accounts
    /// unregistered).
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.deliver(now, GatewayInput::Shutdown);
    }

    /// Draining: no new calls; connections without a call are let go (see
    /// [`GatewayInput::Drain`]).
    pub fn handle_drain(&mut self, now: Instant) {
        self.deliver(now, GatewayInput::Drain);
    }

    /// Adds to `out` why the engines cannot take new work now (the `/ready` endpoint; empty
    /// means ready). An engine with a readiness condition (a store that must be writable, a
    /// pool that must have room) adds one line here.
    pub fn not_ready(&self, out: &mut Vec<&'static str>) {
        if self.gateway.is_draining() {
            out.push("gateway draining");
        }
        match self.store.health() {
            StoreHealth::Ready => {}
            StoreHealth::Down => out.push("message store down"),
            StoreHealth::Failing => out.push("message store not writable"),
            StoreHealth::Busy => out.push("message store busy"),
            StoreHealth::Stalled => out.push("message store stalled"),
        }
    }

    /// The message store (metrics).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A datagram arrived on the SIP UDP socket.
    pub fn handle_sip_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.sip.handle_datagram(now, from, data);
        self.route(now);
    }

    /// A SIP TCP/TLS connection was accepted; `None`: refuse it.
    pub fn handle_sip_stream_accepted(
        &mut self,
        now: Instant,
        tls: bool,
        remote: SocketAddr,
    ) -> Option<FlowId> {
        let flow = self.sip.handle_stream_accepted(now, tls, remote);
        self.route(now);
        flow
    }

    /// Bytes arrived on a SIP stream.
    pub fn handle_sip_stream_data(&mut self, now: Instant, flow: FlowId, data: &[u8]) {
        self.sip.handle_stream_data(now, flow, data);
        self.route(now);
    }

    /// A SIP stream closed or could not connect.
    pub fn handle_sip_stream_closed(&mut self, now: Instant, flow: FlowId) {
        self.sip.handle_stream_closed(now, flow);
        self.route(now);
    }

    /// A DNS answer arrived.
    pub fn handle_dns_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.sip.handle_dns_datagram(now, from, data);
        self.route(now);
    }

    /// A media datagram for `media`: the bridge's answer goes straight to `send` (a socket
    /// of that call), and state changes it caused reach the gateway at once.
    #[allow(clippy::too_many_arguments)] // the hot path: a datagram's parts, no struct to build
    pub fn handle_media_datagram(
        &mut self,
        now: Instant,
        media: MediaId,
        kind: MediaSocketKind,
        local: SocketAddr,
        from: SocketAddr,
        data: &mut [u8],
        send: impl FnMut(BridgeTransmit<'_>),
    ) {
        self.bridges
            .handle_datagram(now, media, kind, local, from, data);
        self.bridges.drain(media, send);
        if self.bridges.has_events() {
            self.route(now);
        }
    }

    /// Routes the events that draining bridges outside a datagram (after signalling or a
    /// timer) queued. Returns whether there were any.
    pub fn route_bridge_events(&mut self, now: Instant) -> bool {
        if !self.bridges.has_events() {
            return false;
        }
        self.route(now);
        true
    }

    /// Whose session an accepted MSRP connection's first bytes name.
    pub fn claim_msrp(&mut self, first_bytes: &[u8]) -> Claim {
        self.msrps.claim(first_bytes)
    }

    /// An MSRP connection is up (ours, or an accepted one that named its session).
    pub fn handle_msrp_connected(&mut self, now: Instant, id: MsrpId) {
        self.msrps.handle_connected(now, id);
        self.route(now);
    }

    /// Bytes arrived on an MSRP connection.
    pub fn handle_msrp_data(&mut self, now: Instant, id: MsrpId, data: &[u8]) {
        self.msrps.handle_data(now, id, data);
        self.route(now);
    }

    /// An MSRP connection closed or could not be opened.
    pub fn handle_msrp_closed(&mut self, now: Instant, id: MsrpId) {
        self.msrps.handle_closed(now, id);
        self.route(now);
    }

    /// `queued` bytes still wait for an MSRP socket. Only notes it; the engine's next chunks
    /// are collected by [`route_msrps`](Self::route_msrps).
    pub fn handle_msrp_backlog(&mut self, id: MsrpId, queued: usize) {
        self.msrps.handle_backlog(id, queued);
    }

    /// Collects what MSRP engines produced outside an input of theirs (after a backlog
    /// change). Returns whether there was any.
    pub fn route_msrps(&mut self, now: Instant) -> bool {
        if !self.msrps.has_dirty() {
            return false;
        }
        self.route(now);
        true
    }

    /// The MSRP engines (leak checks, metrics).
    pub fn msrps(&self) -> &Msrps {
        &self.msrps
    }

    /// The reactor could not bind a call's sockets.
    pub fn handle_media_unavailable(&mut self, now: Instant, media: MediaId) {
        self.deliver(now, GatewayInput::MediaUnavailable { media });
    }

    /// The reactor flushed a finished call's last datagrams and closed its sockets.
    pub fn handle_media_closed(&mut self, media: MediaId) {
        self.bridges.remove(media);
    }

    /// Runs due timers of every engine; early calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.handle_timeout_while(now, &mut || true);
    }

    /// Runs due timers while `more` says there is time: `more` is asked before each
    /// engine's timers and before each bridge's. What is not run stays due, so
    /// [`poll_timeout`](Self::poll_timeout) asks for it again at once.
    pub fn handle_timeout_while(&mut self, now: Instant, more: &mut dyn FnMut() -> bool) {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.sip_deadline) && more() {
            self.sip.handle_timeout(now);
        }
        self.bridges.handle_timeout_while(now, more);
        if due(self.store.poll_timeout()) && more() {
            self.store.handle_timeout(now);
        }
        if due(self.msrps.poll_timeout()) && more() {
            self.msrps.handle_timeout(now);
        }
        if due(self.xcap_deadline) && more() {
            self.xcap.handle_timeout(now);
        }
        self.route(now);
    }

    /// The earliest instant an engine needs [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        [
            self.sip_deadline,
            self.bridges.poll_timeout(),
            self.store.poll_timeout(),
            self.msrps.poll_timeout(),
            self.xcap_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next socket action, in the order the engines produced them.
    pub fn poll_output(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// Whether [`poll_output`](Self::poll_output) has a command.
    pub fn has_command(&self) -> bool {
        !self.commands.is_empty()
    }

    /// Whether anything waits for the reactor without a socket or timer to wake it: a
    /// command, a bridge to flush, bridge or MSRP events to route (left for want of time).
    pub fn has_output(&self) -> bool {
        self.has_command()
            || self.bridges.has_dirty()
            || self.bridges.has_events()
            || self.msrps.has_dirty()
    }

    /// True when no SIP work is pending that a shutdown should wait for (un-REGISTERs,
    /// BYEs and CANCELs).
    pub fn is_idle(&self) -> bool {
        self.sip.registration_count() == 0
            && self.sip.call_count() == 0
            && self.sip.subscription_count() == 0
            && self.sip.publication_count() == 0
    }

    /// The gateway (leak checks, counts).
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The SIP stack (leak checks).
    pub fn sip(&self) -> &SipStack {
        &self.sip
    }

    fn deliver(&mut self, now: Instant, input: GatewayInput<'_>) {
        self.store.set_now(now);
        let mut engines = Engines {
            sip: &mut self.sip,
            bridges: &mut self.bridges,
            msrp: &mut self.msrps,
            store: &mut self.store,
            xcap: &mut self.xcap,
        };
        self.gateway.handle(now, self.wall, input, &mut engines);
        self.route(now);
    }

    /// Moves events to the gateway and socket work to the queue until all is quiet: the SIP
    /// stack is drained to its `Timeout` after every input (its output contract), and the
    /// gateway's reactions may give it more.
    fn route(&mut self, now: Instant) {
        self.store.set_now(now);
        loop {
            while let Some(command) = self.gateway.poll_output() {
                self.commands.push_back(Command::Gateway(command));
            }
            self.msrps.drain(now);
            while let Some((id, transmit)) = self.msrps.poll_transmit() {
                if matches!(transmit, msrp::MsrpTransmit::Connect { .. }) {
                    self.msrps.count_connect();
                }
                self.commands.push_back(Command::Msrp { id, transmit });
            }
            let xcap_event = loop {
                match self.xcap.poll_output() {
                    Output::Transmit(t) => self.commands.push_back(Command::Xcap(t)),
                    Output::Event(e) => break Some(e),
                    Output::Timeout(deadline) => {
                        self.xcap_deadline = deadline;
                        break None;
                    }
                }
            };
            if let Some(event) = xcap_event {
                let mut engines = Engines {
                    sip: &mut self.sip,
                    bridges: &mut self.bridges,
                    msrp: &mut self.msrps,
                    store: &mut self.store,
                    xcap: &mut self.xcap,
                };
                self.gateway
                    .handle(now, self.wall, GatewayInput::Xcap(event), &mut engines);
                continue;
            }
            let input = match self.sip.poll_output() {
                Output::Transmit(t) => {
                    self.commands.push_back(Command::Sip(t));
                    continue;
                }
                Output::Event(event) => GatewayInput::Sip(event),
                Output::Timeout(deadline) => {
                    self.sip_deadline = deadline;
                    if let Some((media, event)) = self.bridges.poll_event() {
                        GatewayInput::Bridge { media, event }
                    } else if let Some((id, event)) = self.msrps.poll_event() {
                        GatewayInput::Msrp { id, event }
                    } else {
                        break;
                    }
                }
            };
            let mut engines = Engines {
                sip: &mut self.sip,
                bridges: &mut self.bridges,
                msrp: &mut self.msrps,
                store: &mut self.store,
                xcap: &mut self.xcap,
            };
            self.gateway.handle(now, self.wall, input, &mut engines);
        }
    }
}

#[cfg(test)]
mod tests;
