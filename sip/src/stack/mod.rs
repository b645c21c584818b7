//! The SIP user agent as one sans-IO engine: transport -> transactions -> registrations,
//! calls (INVITE dialogs) and the UAS core, with RFC 3263 server location underneath.
//!
//! # Driving it
//!
//! Inputs are `handle_*(now, ..)` (datagrams, stream events, DNS answers, timeouts) and the
//! gateway's commands ([`SipStack::register`], [`SipStack::invite`], [`SipStack::answer`],
//! ...). After **every** input, call [`SipStack::poll_output`] until it returns
//! [`Output::Timeout`]:
//!
//! - [`Output::Transmit`]: a [`SipTransmit`] for the reactor's SIP sockets, or a DNS query
//!   for the resolver's socket ([`SipTransmit::Dns`]); socket actions first, in the order
//!   they were produced;
//! - [`Output::Event`]: a [`SipEvent`] for the gateway (registrations and calls, in the
//!   order they happened). Handling it may feed new inputs: keep polling;
//! - [`Output::Timeout`]: nothing more to do until that instant (call
//!   [`SipStack::handle_timeout`] then) or the next input. `None`: no timer.
//!
//! Calls: [`SipStack::invite`] starts an outgoing call; incoming INVITEs for a registration's
//! Contact token become [`CallEvent::Incoming`] once [`SipStack::set_incoming_calls`] is on
//! (until then they are answered 480). See [`crate::call`] for how calls end.
//!
//! The files: `routing.rs` moves messages between transport, transactions, location and the
//! registrations and calls; `uas.rs` is the RFC 3261 section 8.2 UAS core;
//! `registrations.rs` and `calls.rs` keep the books of the two kinds of usage.

mod calls;
mod local;
mod publications;
mod registrations;
mod requests;
mod routing;
mod subscriptions;
mod uas;

pub use calls::InviteOptions;
pub use publications::MAX_PUBLICATIONS;
pub use requests::{IncomingRequestId, RequestTarget, INCOMING_ANSWER_WAIT};
pub use subscriptions::MAX_SUBSCRIPTIONS;
pub(crate) use uas::replaces_key;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use engine::{Deadlines, Output, Rng};
use slab::Slab;

use super::auth::Ha1;
use super::call::{Call, CallEvent};
use super::dialog::DialogKey;
use super::dns::Resolver;
use super::locate::{Locator, LocatorConfig, LookupId, SipUriParts};
use super::msg::{Method, MsgError, SipRequest};
use super::publication::{PubId, PublicationStatus};
use super::registration::{RegId, RegState, Registration, RegistrationStatus};
use super::request::{RequestId, RequestOutcome};
use super::subscription::{SubId, SubscriptionEvent};
use super::transport::{
    FlowId, LocalAddresses, SipTransmit, SipTransport, Transport, TransportError,
};
use super::txn::{TxnConfig, TxnError, TxnId, TxnLayer};

/// Default most simultaneous calls per stack (over it: 503 to SIP, an error to the gateway).
pub const DEFAULT_MAX_CALLS: usize = 1000;

/// Identifies a call for its lifetime; ids are never confused with a later call's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId {
    key: usize,
    serial: u64,
}

/// What the stack tells the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipEvent {
    /// A registration changed state.
    Registration {
        /// Which.
        reg: RegId,
        /// Where it is now.
        status: RegistrationStatus,
    },
    /// A registration is finished (unregistered or stopped) and its id is gone.
    RegistrationFinished {
        /// Which.
        reg: RegId,
    },
    /// Something happened to a call.
    Call {
        /// Which.
        call: CallId,
        /// What.
        event: CallEvent,
    },
    /// A non-INVITE request we sent ([`SipStack::send_request`],
    /// [`SipStack::send_in_dialog`]) is finished; its id is dead afterwards.
    Request {
        /// Which.
        request: RequestId,
        /// How it ended.
        outcome: RequestOutcome,
    },
    /// A request of a method the gateway answers itself
    /// ([`SipStack::set_incoming_methods`]); answer it with [`SipStack::answer_request`]
    /// within [`INCOMING_ANSWER_WAIT`].
    IncomingRequest {
        /// The handle to answer it by.
        id: IncomingRequestId,
        /// The registration or call it is for.
        target: RequestTarget,
        /// The request (validated).
        request: Box<SipRequest>,
    },
    /// Something happened to a subscription ([`SipStack::subscribe`]).
    Subscription {
        /// Which.
        sub: SubId,
        /// What.
        event: SubscriptionEvent,
    },
    /// A subscription is over (unsubscribed, or terminated for good); its id is dead.
    SubscriptionFinished {
        /// Which.
        sub: SubId,
    },
    /// A publication changed state ([`SipStack::publish`]).
    Publication {
        /// Which.
        publication: PubId,
        /// Where it is.
        status: PublicationStatus,
    },
    /// A publication is over (removed, or refused for good); its id is dead.
    PublicationFinished {
        /// Which.
        publication: PubId,
    },
}

/// Who waits for a client request's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestOwner {
    /// The gateway ([`SipEvent::Request`]).
    Gateway,
    /// The gateway, for a request inside this call's dialog.
    Call(CallId),
    /// Nobody (a call's BYE that outlives its call): failures are logged.
    Detached,
    /// A subscription's SUBSCRIBE.
    Subscription(SubId),
    /// A publication's PUBLISH.
    Publication(PubId),
}

/// Why the stack could not send a request (the errors of the layers below, as one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The transport has no flow for it (too many connections, or the connection closed).
    Transport(TransportError),
    /// The request (or our Contact) could not be built.
    Message(MsgError),
    /// The transaction layer refused it.
    Transaction(TxnError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Transport(e) => e.fmt(f),
            SendError::Message(e) => write!(f, "cannot build the request: {e}"),
            SendError::Transaction(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SendError {}

impl From<TransportError> for SendError {
    fn from(e: TransportError) -> Self {
        SendError::Transport(e)
    }
}

impl From<MsgError> for SendError {
    fn from(e: MsgError) -> Self {
        SendError::Message(e)
    }
}

impl From<TxnError> for SendError {
    fn from(e: TxnError) -> Self {
        SendError::Transaction(e)
    }
}

/// Stack settings.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Listen and advertised addresses.
    pub local: LocalAddresses,
    /// Transports for outgoing requests, most preferred first.
    pub transports: Vec<Transport>,
    /// Global outbound proxy (overrides RFC 3263 lookups of the target).
    pub outbound_proxy: Option<SipUriParts>,
    /// Requested registration lifetime.
    pub register_expires: u32,
    /// Default User-Agent.
    pub user_agent: String,
}

/// What `register` and `invite` need to know about an account.
#[derive(Debug, Clone)]
pub struct AccountIdentity {
    /// User part of the AOR.
    pub user: String,
    /// Domain of the AOR.
    pub domain: String,
    /// Display name.
    pub display_name: Option<String>,
    /// User-Agent override.
    pub user_agent: Option<String>,
    /// Digest HA1.
    pub ha1: Ha1,
}

/// A live call and what the stack filed for it.
#[derive(Debug)]
struct CallEntry {
    call: Call,
    serial: u64,
    /// The SIP Call-ID, which the browser side reports (`call_id` in sylkRTC-2 events).
    sip_call_id: String,
    lookup: Option<LookupId>,
    /// Client and server INVITE transactions mapped to this call.
    txns: Vec<TxnId>,
}

/// A live registration and what the stack filed for it.
#[derive(Debug)]
struct RegEntry {
    reg: Registration,
    lookup: Option<LookupId>,
    txn: Option<TxnId>,
    /// The flow the pending REGISTER travels on, to fail it over when that flow closes.
    flow: Option<FlowId>,
}

/// The SIP stack.
#[derive(Debug)]
pub struct SipStack {
    config: StackConfig,
    transport: SipTransport,
    txn: TxnLayer,
    locator: Locator,
    rng: Rng,
    registrations: Slab<RegEntry>,
    by_contact_user: HashMap<String, RegId>,
    reg_lookups: HashMap<LookupId, RegId>,
    reg_txns: HashMap<TxnId, RegId>,
    reg_deadlines: Deadlines<RegId>,
    dirty_regs: Vec<RegId>,
    calls: Slab<CallEntry>,
    next_call_serial: u64,
    max_calls: usize,
    incoming_calls: bool,
    /// The RFC 4028 interval our INVITEs ask for (0: none).
    session_expires: u32,
    /// Path and instance ids on every REGISTER.
    register_extensions: crate::registration::RegisterExtensions,
    /// The registrar of the local domain (standalone mode).
    registrar: Option<crate::registrar::Registrar>,
    /// Draining: new INVITEs get 503 with this Retry-After.
    refuse_new_calls: Option<u32>,
    dialogs: HashMap<DialogKey, CallId>,
    call_lookups: HashMap<LookupId, CallId>,
    call_txns: HashMap<TxnId, CallId>,
    call_deadlines: Deadlines<CallId>,
    dirty_calls: Vec<CallId>,
    requests: Slab<requests::RequestEntry>,
    next_request_serial: u64,
    request_lookups: HashMap<LookupId, RequestId>,
    request_txns: HashMap<TxnId, RequestId>,
    dirty_requests: Vec<RequestId>,
    /// Methods the gateway answers itself.
    incoming_methods: Vec<Method>,
    /// Methods the gateway answers itself inside calls' dialogs only.
    in_dialog_methods: Vec<Method>,
    /// Incoming requests waiting for the gateway's answer, by server transaction.
    incoming: HashMap<TxnId, requests::PendingIncoming>,
    incoming_deadlines: Deadlines<TxnId>,
    subscriptions: Slab<subscriptions::SubEntry>,
    next_sub_serial: u64,
    /// NOTIFYs find their subscription by Call-ID (unique per subscription dialog).
    subs_by_call_id: HashMap<String, SubId>,
    sub_deadlines: Deadlines<SubId>,
    dirty_subs: Vec<SubId>,
    publications: Slab<publications::PubEntry>,
    next_pub_serial: u64,
    pub_deadlines: Deadlines<PubId>,
    dirty_pubs: Vec<PubId>,
    /// Events for the gateway, in the order they happened.
    events: VecDeque<SipEvent>,
    /// The earliest deadline of every layer, recomputed after an input changed it.
    deadline: Option<Instant>,
    deadline_stale: bool,
    /// Source of the request whose transaction events are being drained.
    inbound_source: Option<super::txn::Destination>,
}

impl SipStack {
    /// A stack over `resolver`; `rng` draws tags, branches, Call-IDs, cnonces, Contact tokens,
    /// Retry-After values and (forked) the SRV weights. Seed it from the OS in production:
    /// RFC 3261 sections 8.1.1.4, 8.1.1.7 and 19.3 want these unguessable; with a constant
    /// in tests.
    pub fn new(config: StackConfig, resolver: Resolver, mut rng: Rng) -> SipStack {
        let locator = Locator::new(
            resolver,
            LocatorConfig {
                transports: config.transports.clone(),
                outbound_proxy: config.outbound_proxy.clone(),
                address_families: Default::default(),
            },
            rng.fork(),
        );
        SipStack {
            transport: SipTransport::new(config.local.clone()),
            config,
            txn: TxnLayer::new(TxnConfig::default()),
            locator,
            rng,
            registrations: Slab::new(),
            by_contact_user: HashMap::new(),
            reg_lookups: HashMap::new(),
            reg_txns: HashMap::new(),
            reg_deadlines: Deadlines::new(),
            dirty_regs: Vec::new(),
            calls: Slab::new(),
            next_call_serial: 0,
            max_calls: DEFAULT_MAX_CALLS,
            incoming_calls: false,
            session_expires: 0,
            register_extensions: Default::default(),
            registrar: None,
            refuse_new_calls: None,
            dialogs: HashMap::new(),
            call_lookups: HashMap::new(),
            call_txns: HashMap::new(),
            call_deadlines: Deadlines::new(),
            dirty_calls: Vec::new(),
            requests: Slab::new(),
            next_request_serial: 0,
            request_lookups: HashMap::new(),
            request_txns: HashMap::new(),
            dirty_requests: Vec::new(),
            incoming_methods: Vec::new(),
            in_dialog_methods: Vec::new(),
            incoming: HashMap::new(),
            incoming_deadlines: Deadlines::new(),
            subscriptions: Slab::new(),
            next_sub_serial: 0,
            subs_by_call_id: HashMap::new(),
            sub_deadlines: Deadlines::new(),
            dirty_subs: Vec::new(),
            publications: Slab::new(),
            next_pub_serial: 0,
            pub_deadlines: Deadlines::new(),
            dirty_pubs: Vec::new(),
            events: VecDeque::new(),
            deadline: None,
            deadline_stale: false,
            inbound_source: None,
        }
    }

    /// The next thing for the reactor or the gateway; call after every input until it
    /// returns [`Output::Timeout`] (see the [module docs](self)).
    pub fn poll_output(&mut self) -> Output<SipTransmit, SipEvent> {
        if let Some(t) = self.transport.poll_transmit() {
            return Output::Transmit(t);
        }
        if let Some(t) = self.locator.poll_transmit() {
            return Output::Transmit(SipTransmit::Dns {
                to: t.destination,
                bytes: t.payload,
            });
        }
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        if self.deadline_stale {
            self.deadline_stale = false;
            self.deadline = [
                self.txn.poll_timeout(),
                self.locator.poll_timeout(),
                self.transport.poll_timeout(),
                self.reg_deadlines.earliest(),
                self.call_deadlines.earliest(),
                self.incoming_deadlines.earliest(),
                self.sub_deadlines.earliest(),
                self.pub_deadlines.earliest(),
            ]
            .into_iter()
            .flatten()
            .min();
        }
        Output::Timeout(self.deadline)
    }

    /// A datagram arrived on the SIP UDP socket.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.transport.handle_datagram(now, from, data);
        self.drive(now);
    }

    /// The reactor accepted a TCP or TLS connection; `None` means refuse (close it).
    pub fn handle_stream_accepted(
        &mut self,
        now: Instant,
        tls: bool,
        remote: SocketAddr,
    ) -> Option<FlowId> {
        let kind = if tls { Transport::Tls } else { Transport::Tcp };
        // The new flow's idle deadline counts.
        self.deadline_stale = true;
        self.transport.handle_stream_accepted(now, kind, remote)
    }

    /// Bytes arrived on a stream flow.
    pub fn handle_stream_data(&mut self, now: Instant, flow: FlowId, data: &[u8]) {
        self.transport.handle_stream_data(now, flow, data);
        self.drive(now);
    }

    /// A stream flow closed or failed to connect: transactions on it fail over.
    pub fn handle_stream_closed(&mut self, now: Instant, flow: FlowId) {
        if self.transport.handle_stream_closed(flow) {
            // Client transactions bound to this flow learn of it when they next transmit;
            // REGISTERs and INVITEs in flight are failed over right away (an INVITE over a
            // stream is never retransmitted, so it would otherwise wait for Timer B).
            let mut stuck: Vec<TxnId> = self
                .registrations
                .iter()
                .filter(|(_, e)| e.flow == Some(flow))
                .filter_map(|(_, e)| e.txn)
                .chain(
                    self.calls
                        .iter()
                        .filter_map(|(_, e)| e.call.pending_invite())
                        .filter(|(_, f)| *f == flow)
                        .map(|(txn, _)| txn),
                )
                // Non-INVITE requests over a stream are never retransmitted either: without
                // this a refused connection would wait for Timer F (32 s).
                .chain(
                    self.request_txns
                        .keys()
                        .copied()
                        .filter(|t| self.txn.destination(*t).is_some_and(|d| d.flow == flow)),
                )
                .collect();
            stuck.sort_unstable();
            for txn in stuck {
                self.txn.handle_transport_error(now, txn);
            }
        }
        self.drive(now);
    }

    /// A DNS answer arrived on the resolver's socket.
    pub fn handle_dns_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.locator.handle_datagram(now, from, data);
        self.drive(now);
    }

    /// Runs every due timer; early calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.txn.handle_timeout(now);
        self.locator.handle_timeout(now);
        self.transport.handle_timeout(now);
        while let Some(reg) = self.reg_deadlines.pop_due(now) {
            if let Some(e) = self.registrations.get_mut(reg.0) {
                e.reg.handle_timeout(now);
                self.dirty_regs.push(reg);
            }
        }
        while let Some(call) = self.call_deadlines.pop_due(now) {
            if let Some(e) = self
                .calls
                .get_mut(call.key)
                .filter(|e| e.serial == call.serial)
            {
                e.call.handle_timeout(now, &mut self.rng);
                self.dirty_calls.push(call);
            }
        }
        self.expire_incoming(now);
        self.subscription_timeouts(now);
        self.publication_timeouts(now);
        self.drive(now);
    }

    /// Number of live registrations (for leak checks).
    pub fn registration_count(&self) -> usize {
        self.registrations.len()
    }

    /// Live registrations per state, in [`RegState::ALL`] order (metrics; O(registrations)).
    pub fn registration_states(&self) -> [usize; 4] {
        let mut out = [0; 4];
        for (_, e) in &self.registrations {
            let state = e.reg.state();
            if let Some(i) = RegState::ALL.iter().position(|s| *s == state) {
                out[i] += 1;
            }
        }
        out
    }

    /// Finished transactions by role, method and final status (metrics).
    pub fn transaction_stats(&self) -> &crate::txn::TxnStats {
        self.txn.stats()
    }

    /// Number of live transactions (for leak checks).
    pub fn transaction_count(&self) -> usize {
        self.txn.len()
    }

    /// Number of open stream flows (for leak checks).
    pub fn stream_count(&self) -> usize {
        self.transport.stream_count()
    }

    /// `len` lower-case letters and digits: what tags, branches and tokens always looked
    /// like on the wire (case-folding elements cannot alter them).
    fn random_token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut out = String::with_capacity(len);
        let mut bits = 0u64;
        for i in 0..len {
            if i % 10 == 0 {
                bits = self.rng.next_u64();
            }
            out.push(ALPHABET[(bits % 36) as usize] as char);
            bits /= 36;
        }
        out
    }
}

#[cfg(test)]
mod tests;
