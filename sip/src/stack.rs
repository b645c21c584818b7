//! The SIP user agent as one sans-IO engine: transport -> transactions -> registrations,
//! calls (INVITE dialogs) and the UAS core, with RFC 3263 server location underneath.
//!
//! Calls: [`SipStack::invite`] starts an outgoing call; incoming INVITEs for a registration's
//! Contact token become [`CallNotice::Incoming`] once [`SipStack::set_incoming_calls`] is on
//! (until then they are answered 480 as before). Call notices come from
//! [`SipStack::poll_call_event`]; see [`super::call`] for the termination reasons.
//!
//! The reactor feeds it datagrams, stream events and DNS answers, drains
//! [`SipStack::poll_transmit`] / [`SipStack::poll_dns_transmit`] to its sockets, and reports
//! [`SipEvent`]s to the gateway. Each input is followed by [`SipStack`]'s internal `drive`,
//! which moves messages between the layers until all of them are quiet.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use slab::Slab;

use super::auth::Ha1;
use super::call::{Call, CallAction, CallError, CallEvent, Hop, OutgoingConfig, Sent};
use super::dialog::DialogKey;
use super::dns::Resolver;
use super::locate::{LocateEvent, Locator, LocatorConfig, LookupId, SipUriParts};
use super::msg::{Method, NameAddr, ResponseBuilder, SipMessage, SipRequest, Uri};
use super::registration::{RegAction, Registration, RegistrationConfig, RegistrationState};
use super::transport::{FlowId, LocalAddresses, SipTransmit, SipTransport, Transport};
use super::txn::{build_cancel, TxnConfig, TxnEvent, TxnId, TxnLayer, MAGIC_COOKIE};
use engine::Rng;

/// Methods we answer, for `Allow` (RFC 3261 section 20.5).
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS";
/// Default most simultaneous calls per stack (over it: 503 to SIP, an error to the gateway).
pub const DEFAULT_MAX_CALLS: usize = 1000;

/// Identifies a call for its lifetime; ids are never confused with a later call's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallId {
    key: usize,
    serial: u64,
}

/// What the stack tells the gateway about calls ([`SipStack::poll_call_event`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallNotice {
    /// An INVITE for a registration's Contact; 100 Trying is sent. Follow with
    /// [`SipStack::ring`], then [`SipStack::answer`] or [`SipStack::decline`].
    Incoming {
        /// The new call.
        call: CallId,
        /// The registration whose Contact was called.
        reg: RegId,
        /// The caller's URI (From).
        from_uri: String,
        /// The caller's display name.
        from_display_name: Option<String>,
        /// The SIP Call-ID.
        call_id: String,
        /// The offer; `None` means offer in our 200, answer in the ACK.
        sdp: Option<String>,
    },
    /// Outgoing: a provisional response (183 with SDP: early media).
    Progress {
        /// Which call.
        call: CallId,
        /// Status code.
        code: u16,
        /// Reason phrase.
        reason: String,
        /// SDP body, if any.
        sdp: Option<String>,
    },
    /// Outgoing: the INVITE was refused with 488 and sent again with the retry offer given
    /// to [`SipStack::invite_with_retry_offer`] (at most once per call); the answer to come
    /// answers that offer.
    OfferRetried {
        /// Which call.
        call: CallId,
        /// The refusal's status code (488).
        code: u16,
    },
    /// Outgoing: a 2xx arrived; the ACK is sent.
    Accepted {
        /// Which call.
        call: CallId,
        /// The answer SDP.
        sdp: Option<String>,
    },
    /// Incoming: the ACK for our 200 arrived.
    Confirmed {
        /// Which call.
        call: CallId,
        /// The SDP answer in the ACK (when the INVITE had no offer).
        sdp_in_ack: Option<String>,
    },
    /// A re-INVITE with a new offer: answer with [`SipStack::answer_reinvite`] within
    /// [`REINVITE_ANSWER_WAIT`](super::call::REINVITE_ANSWER_WAIT), or the stack answers
    /// with the last local SDP, directions mirrored (RFC 3264 section 6.1).
    ReInvite {
        /// Which call.
        call: CallId,
        /// The new offer.
        sdp: String,
    },
    /// The call is over, exactly once per call; its id is dead afterwards. `reason` is
    /// `"<code> <phrase>"` ([`super::call`] documents the local and BYE reasons).
    Terminated {
        /// Which call.
        call: CallId,
        /// Why.
        reason: String,
    },
}

/// Identifies a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegId(usize);

/// What the stack tells the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipEvent {
    /// A registration changed state.
    Registration {
        /// Which.
        reg: RegId,
        /// The new state.
        state: RegistrationState,
        /// Why, for `Failed`.
        reason: Option<String>,
    },
    /// A registration is finished (unregistered or stopped) and its id is gone.
    RegistrationFinished {
        /// Which.
        reg: RegId,
    },
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

/// What `register` needs to know about an account.
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

#[derive(Debug)]
struct CallEntry {
    /// Boxed: a call is ~4.7 KiB (requests kept for retransmission and CANCEL), and the slab
    /// of calls keeps spare capacity.
    call: Box<Call>,
    serial: u64,
    /// The SIP Call-ID, which the browser side reports (`call_id` in sylkRTC-2 events).
    sip_call_id: String,
    lookup: Option<LookupId>,
    /// Client and server INVITE transactions mapped to this call.
    txns: Vec<TxnId>,
    armed: Option<Instant>,
}

#[derive(Debug)]
struct RegEntry {
    reg: Registration,
    lookup: Option<LookupId>,
    txn: Option<TxnId>,
    /// The flow the pending REGISTER travels on, to fail it over when that flow closes.
    flow: Option<FlowId>,
    armed: Option<Instant>,
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
    lookups: HashMap<LookupId, RegId>,
    client_txns: HashMap<TxnId, RegId>,
    reg_timers: BinaryHeap<Reverse<(Instant, usize)>>,
    dirty: Vec<RegId>,
    events: VecDeque<SipEvent>,
    calls: Slab<CallEntry>,
    next_call_serial: u64,
    max_calls: usize,
    incoming_calls: bool,
    dialogs: HashMap<DialogKey, CallId>,
    call_lookups: HashMap<LookupId, CallId>,
    call_txns: HashMap<TxnId, CallId>,
    call_timers: BinaryHeap<Reverse<(Instant, usize)>>,
    dirty_calls: Vec<CallId>,
    call_events: VecDeque<CallNotice>,
    /// Source of the request whose transaction events are being drained.
    inbound_source: Option<super::txn::Destination>,
}

impl SipStack {
    /// A stack over `resolver`; `rng` draws tags, branches, Call-IDs, cnonces, Contact tokens
    /// and (forked) the SRV weights. Seed it from the OS in production: RFC 3261 sections
    /// 8.1.1.4, 8.1.1.7 and 19.3 want these unguessable; with a constant in tests.
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
            lookups: HashMap::new(),
            client_txns: HashMap::new(),
            reg_timers: BinaryHeap::new(),
            dirty: Vec::new(),
            events: VecDeque::new(),
            calls: Slab::new(),
            next_call_serial: 0,
            max_calls: DEFAULT_MAX_CALLS,
            incoming_calls: false,
            dialogs: HashMap::new(),
            call_lookups: HashMap::new(),
            call_txns: HashMap::new(),
            call_timers: BinaryHeap::new(),
            dirty_calls: Vec::new(),
            call_events: VecDeque::new(),
            inbound_source: None,
        }
    }

    /// Starts registering an account; `Registration` events follow.
    pub fn register(&mut self, now: Instant, account: AccountIdentity) -> RegId {
        let reg = self.register_deferred(account);
        self.start(now, reg);
        reg
    }

    /// Creates a registration without sending anything, so the caller can record the id
    /// before the first event; [`start`](Self::start) it next.
    pub fn register_deferred(&mut self, account: AccountIdentity) -> RegId {
        let contact_user = format!("sylk-{}", self.random_token(12));
        let call_id = format!("{}@sylk-gateway", self.random_token(20));
        let from_tag = self.random_token(10);
        let config = RegistrationConfig {
            user: account.user,
            domain: account.domain,
            display_name: account.display_name,
            user_agent: account
                .user_agent
                .unwrap_or_else(|| self.config.user_agent.clone()),
            expires: self.config.register_expires,
            contact_user: contact_user.clone(),
            call_id,
            from_tag,
        };
        let key = self.registrations.insert(RegEntry {
            reg: Registration::new(config, account.ha1),
            lookup: None,
            txn: None,
            flow: None,
            armed: None,
        });
        let id = RegId(key);
        self.by_contact_user.insert(contact_user, id);
        id
    }

    /// Starts a registration, or re-registers after a failure (a second `account-register`).
    pub fn start(&mut self, now: Instant, reg: RegId) {
        if let Some(e) = self.registrations.get_mut(reg.0) {
            e.reg.start(now);
            self.dirty.push(reg);
            self.drive(now);
        }
    }

    /// Removes the binding (REGISTER with expiry 0) and then forgets the registration;
    /// `RegistrationFinished` follows.
    pub fn unregister(&mut self, now: Instant, reg: RegId) {
        if let Some(e) = self.registrations.get_mut(reg.0) {
            e.reg.stop(now);
            self.dirty.push(reg);
            self.drive(now);
        }
    }

    /// Number of live registrations (for leak checks).
    pub fn registration_count(&self) -> usize {
        self.registrations.len()
    }

    /// Number of live transactions (for leak checks).
    pub fn transaction_count(&self) -> usize {
        self.txn.len()
    }

    /// Number of open stream flows (for leak checks).
    pub fn stream_count(&self) -> usize {
        self.transport.stream_count()
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
            let stuck: Vec<TxnId> = self
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
                .collect();
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
        while let Some(Reverse((at, key))) = self.reg_timers.peek().copied() {
            if at > now {
                break;
            }
            self.reg_timers.pop();
            if let Some(e) = self.registrations.get_mut(key) {
                if e.armed == Some(at) {
                    e.armed = None;
                    e.reg.handle_timeout(now);
                    self.dirty.push(RegId(key));
                }
            }
        }
        while let Some(Reverse((at, key))) = self.call_timers.peek().copied() {
            if at > now {
                break;
            }
            self.call_timers.pop();
            if let Some(e) = self.calls.get_mut(key) {
                if e.armed == Some(at) {
                    e.armed = None;
                    e.call.handle_timeout(now);
                    self.dirty_calls.push(CallId {
                        key,
                        serial: e.serial,
                    });
                }
            }
        }
        self.drive(now);
    }

    /// The earliest instant any layer needs [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.txn.poll_timeout(),
            self.locator.poll_timeout(),
            self.transport.poll_timeout(),
            self.reg_timers.peek().map(|Reverse((t, _))| *t),
            self.call_timers.peek().map(|Reverse((t, _))| *t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next socket action for the SIP sockets.
    pub fn poll_transmit(&mut self) -> Option<SipTransmit> {
        self.transport.poll_transmit()
    }

    /// The next DNS query: `(nameserver, bytes)`.
    pub fn poll_dns_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.locator
            .poll_transmit()
            .map(|t| (t.destination, t.payload))
    }

    /// The next event for the gateway.
    pub fn poll_event(&mut self) -> Option<SipEvent> {
        self.events.pop_front()
    }

    /// Moves work between the layers until every one is quiet.
    fn drive(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(inbound) = self.transport.poll_inbound() {
                progressed = true;
                match inbound.message {
                    SipMessage::Response(response) => self.txn.handle_response(now, response),
                    SipMessage::Request(request) => {
                        // A new INVITE's call needs the flow it came on: its transaction
                        // event is produced right here, so drain it while the source is known.
                        self.inbound_source = Some(inbound.source);
                        self.txn.handle_request(now, request, inbound.source);
                        self.drain_txn_events(now);
                        self.inbound_source = None;
                    }
                }
            }
            progressed |= self.drain_txn_events(now);
            while let Some(t) = self.txn.poll_transmit() {
                progressed = true;
                if self.transport.send(now, &t.target, t.bytes).is_err() {
                    self.txn.handle_transport_error(now, t.txn);
                }
            }
            while let Some(LocateEvent { lookup, result }) = self.locator.poll_event() {
                progressed = true;
                if let Some(call) = self.call_lookups.remove(&lookup) {
                    if let Some(e) = self.call_entry(call) {
                        e.lookup = None;
                        e.call.handle_located(now, result);
                        self.dirty_calls.push(call);
                    }
                } else if let Some(reg) = self.lookups.remove(&lookup) {
                    if let Some(e) = self.registrations.get_mut(reg.0) {
                        e.lookup = None;
                        e.reg.handle_located(now, result);
                        self.dirty.push(reg);
                    }
                }
            }
            while let Some(reg) = self.dirty.pop() {
                progressed = true;
                self.run_registration(now, reg);
            }
            while let Some(call) = self.dirty_calls.pop() {
                progressed = true;
                self.run_call(now, call);
            }
            if !progressed {
                return;
            }
        }
    }

    fn drain_txn_events(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(event) = self.txn.poll_event() {
            any = true;
            match event {
                TxnEvent::Response { txn, response } => {
                    if let Some(&call) = self.call_txns.get(&txn) {
                        if let Some(e) = self.call_entry(call) {
                            e.call.handle_response(now, txn, &response);
                            self.dirty_calls.push(call);
                        }
                    } else if let Some(&reg) = self.client_txns.get(&txn) {
                        if let Some(e) = self.registrations.get_mut(reg.0) {
                            if response.status() >= 200 {
                                e.txn = None;
                            }
                            e.reg.handle_response(now, &response);
                            self.dirty.push(reg);
                        }
                    }
                }
                TxnEvent::Timeout { txn } | TxnEvent::TransportError { txn } => {
                    let transport = !matches!(event, TxnEvent::Timeout { .. });
                    if let Some(&call) = self.call_txns.get(&txn) {
                        if let Some(e) = self.call_entry(call) {
                            e.call.handle_txn_failure(now, txn, !transport);
                            self.dirty_calls.push(call);
                        }
                    } else if let Some(&reg) = self.client_txns.get(&txn) {
                        if let Some(e) = self.registrations.get_mut(reg.0) {
                            e.txn = None;
                            e.reg.handle_no_response(now, transport);
                            self.dirty.push(reg);
                        }
                    }
                }
                TxnEvent::Terminated { txn } => {
                    self.client_txns.remove(&txn);
                    if let Some(call) = self.call_txns.remove(&txn) {
                        if let Some(e) = self.call_entry(call) {
                            e.txns.retain(|t| *t != txn);
                        }
                    }
                }
                TxnEvent::Request { txn, request } => self.answer_request(now, txn, &request),
                TxnEvent::Cancel {
                    txn,
                    cancels,
                    request,
                } => {
                    // RFC 3261 section 9.2: 200 for a CANCEL that matched, else 481.
                    let (status, reason) = match cancels {
                        Some(_) => (200, "OK"),
                        None => (481, "Call/Transaction Does Not Exist"),
                    };
                    self.respond(now, txn, &request, status, reason, &[]);
                    if let Some(call) = cancels.and_then(|t| self.call_txns.get(&t).copied()) {
                        if let Some(e) = self.call_entry(call) {
                            e.call.handle_cancel();
                            self.dirty_calls.push(call);
                        }
                    }
                }
                // 2xx ACKs belong to dialogs (RFC 3261 section 13.3.1.4); others are dropped.
                TxnEvent::Ack { request, .. } => {
                    let call = DialogKey::of_incoming(&request)
                        .and_then(|key| self.dialogs.get(&key).copied());
                    if let Some(call) = call {
                        if let Some(e) = self.call_entry(call) {
                            e.call.handle_ack(&request);
                            self.dirty_calls.push(call);
                        }
                    }
                }
            }
        }
        any
    }

    /// The UAS core (RFC 3261 section 8.2): in-dialog requests go to their call (section
    /// 12.2.2, 481 when no dialog matches), new INVITEs for a Contact token become calls.
    fn answer_request(&mut self, now: Instant, txn: TxnId, request: &SipRequest) {
        if let Some(key) = DialogKey::of_incoming(request) {
            if let Some(&call) = self.dialogs.get(&key) {
                if let Some(e) = self.call_entry(call) {
                    e.call.handle_in_dialog_request(now, txn, request);
                    self.dirty_calls.push(call);
                    return;
                }
            }
            if *request.method() != Method::Options {
                self.respond(
                    now,
                    txn,
                    request,
                    481,
                    "Call/Transaction Does Not Exist",
                    &[],
                );
                return;
            }
        }
        if *request.method() == Method::Invite && self.incoming_calls {
            let owner = request
                .uri()
                .user()
                .and_then(|u| self.by_contact_user.get(u))
                .copied();
            if let Some(reg) = owner {
                self.incoming_call(now, txn, request, reg);
                return;
            }
        }
        let allow = [("Allow", ALLOW)];
        let (status, reason, extra): (u16, &str, &[(&str, &str)]) = match request.method() {
            Method::Options => (
                200,
                "OK",
                &[("Allow", ALLOW), ("Accept", "application/sdp")],
            ),
            Method::Invite => {
                let owner = request
                    .uri()
                    .user()
                    .and_then(|u| self.by_contact_user.get(u));
                log::info!(
                    "sip: INVITE {} for {}: nobody takes it",
                    request.call_id(),
                    if owner.is_some() {
                        "a registered account"
                    } else {
                        "no account"
                    }
                );
                (480, "Temporarily Unavailable", &[])
            }
            Method::Bye => (481, "Call/Transaction Does Not Exist", &[]),
            m if m.is_extension() => (501, "Not Implemented", &allow),
            _ => (405, "Method Not Allowed", &allow),
        };
        self.respond(now, txn, request, status, reason, extra);
    }

    fn respond(
        &mut self,
        now: Instant,
        txn: TxnId,
        request: &SipRequest,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let to_tag = self.random_token(10);
        // The request's top Via was stamped with received/rport on arrival.
        let mut builder = ResponseBuilder::from_request(request, status, reason, Some(&to_tag))
            .header("Server", &self.config.user_agent);
        for (name, value) in extra {
            builder = builder.header(name, value);
        }
        match builder.build() {
            Ok(response) => {
                if let Err(e) = self.txn.send_response(now, txn, response) {
                    log::debug!("sip: cannot answer {}: {e:?}", request.call_id());
                }
            }
            Err(e) => log::warn!("sip: failed to build a {status} response: {e}"),
        }
    }

    /// Executes a registration's requested actions, then re-arms its timer.
    fn run_registration(&mut self, now: Instant, reg: RegId) {
        loop {
            let Some(e) = self.registrations.get_mut(reg.0) else {
                return;
            };
            let Some(action) = e.reg.poll_action() else {
                break;
            };
            match action {
                RegAction::Locate(parts) => {
                    let lookup = self.locator.locate(now, &parts);
                    if let Some(e) = self.registrations.get_mut(reg.0) {
                        e.lookup = Some(lookup);
                    }
                    self.lookups.insert(lookup, reg);
                }
                RegAction::Send { target, expires } => {
                    self.send_register(now, reg, target, expires)
                }
                RegAction::Report { state, reason } => self
                    .events
                    .push_back(SipEvent::Registration { reg, state, reason }),
                RegAction::Finished => {
                    let e = self.registrations.remove(reg.0);
                    if let Some(lookup) = e.lookup {
                        self.locator.cancel(lookup);
                        self.lookups.remove(&lookup);
                    }
                    self.by_contact_user.remove(e.reg.contact_user());
                    self.events
                        .push_back(SipEvent::RegistrationFinished { reg });
                    return;
                }
            }
        }
        if let Some(e) = self.registrations.get_mut(reg.0) {
            let deadline = e.reg.poll_timeout();
            if deadline != e.armed {
                e.armed = deadline;
                if let Some(at) = deadline {
                    self.reg_timers.push(Reverse((at, reg.0)));
                }
            }
        }
    }

    fn send_register(
        &mut self,
        now: Instant,
        reg: RegId,
        target: super::locate::Target,
        expires: u32,
    ) {
        let kind = target.transport;
        let branch = format!("{MAGIC_COOKIE}{}", self.random_token(16));
        let cnonce = self.random_token(16);
        let via = self.transport.via(kind, &branch);
        let (host, port) = self.transport.sent_by(kind);
        let contact = format!(
            "{host}:{port};transport={}",
            kind.to_string().to_ascii_lowercase()
        );
        let sent = self
            .transport
            .destination_for(now, kind, target.address, &target.domain)
            .map_err(|e| e.to_string())
            .and_then(|txn_target| {
                let e = self
                    .registrations
                    .get_mut(reg.0)
                    .ok_or_else(|| "gone".to_owned())?;
                let request = e
                    .reg
                    .build_register(&via, &contact, expires, &cnonce)
                    .map_err(|e| e.to_string())?;
                self.txn
                    .send_request(now, request, txn_target)
                    .map(|txn| (txn, txn_target.flow))
                    .map_err(|e| format!("{e:?}"))
            });
        let Some(e) = self.registrations.get_mut(reg.0) else {
            return;
        };
        match sent {
            Ok((txn, flow)) => {
                e.txn = Some(txn);
                e.flow = Some(flow);
                self.client_txns.insert(txn, reg);
            }
            Err(why) => {
                log::info!("sip: REGISTER to {} not sent: {why}", target.address);
                e.reg.handle_no_response(now, true);
            }
        }
        self.dirty.push(reg);
    }

    // ---- calls -------------------------------------------------------------------------------

    /// Answers INVITEs for registration Contacts with calls (`true`) or 480 (`false`, the
    /// default until the gateway handles [`CallNotice`]s).
    pub fn set_incoming_calls(&mut self, enabled: bool) {
        self.incoming_calls = enabled;
    }

    /// Sets the most simultaneous calls (incoming over it get 503, `invite` fails).
    pub fn set_max_calls(&mut self, max: usize) {
        self.max_calls = max;
    }

    /// Number of live calls, including ones still finishing a CANCEL or BYE (leak checks).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Number of dialogs filed for in-dialog matching (leak checks).
    pub fn dialog_count(&self) -> usize {
        self.dialogs.len()
    }

    /// The next call notice for the gateway.
    pub fn poll_call_event(&mut self) -> Option<CallNotice> {
        self.call_events.pop_front()
    }

    /// Calls `callee` (`user@domain[:port]`) from `identity` with the SDP `offer`: the target
    /// is located by RFC 3263 on the callee's domain (or the outbound proxy), 401/407 are
    /// answered from the HA1, and [`CallNotice`]s follow. The account need not be registered.
    pub fn invite(
        &mut self,
        now: Instant,
        identity: &AccountIdentity,
        callee: &str,
        offer: String,
    ) -> Result<CallId, CallError> {
        self.invite_with_retry_offer(now, identity, callee, offer, None)
    }

    /// [`SipStack::invite`] with a second offer: if the callee refuses the first with 488
    /// Not Acceptable Here, the INVITE goes out once more with `retry_offer` (new
    /// transaction, same Call-ID and From tag, next CSeq: the mechanism of the 401/407 retry)
    /// and [`CallNotice::OfferRetried`] tells the gateway which offer the answer will
    /// answer. A second 488 ends the call as usual.
    pub fn invite_with_retry_offer(
        &mut self,
        now: Instant,
        identity: &AccountIdentity,
        callee: &str,
        offer: String,
        retry_offer: Option<String>,
    ) -> Result<CallId, CallError> {
        if self.calls.len() >= self.max_calls {
            return Err(CallError::TooManyCalls);
        }
        let config = OutgoingConfig {
            user: identity.user.clone(),
            domain: identity.domain.clone(),
            display_name: identity.display_name.clone(),
            user_agent: identity
                .user_agent
                .clone()
                .unwrap_or_else(|| self.config.user_agent.clone()),
            callee: callee.to_owned(),
            call_id: format!("{}@sylk-gateway", self.random_token(20)),
            from_tag: self.random_token(10),
            contact_user: format!("sylk-{}", self.random_token(12)),
            sdp: offer,
            retry_offer,
        };
        let sip_call_id = config.call_id.clone();
        let call = Call::outgoing(
            config,
            identity.ha1.clone(),
            TxnConfig::default(),
            self.config.outbound_proxy.is_none(),
        )?;
        let id = self.insert_call(call, sip_call_id);
        self.dirty_calls.push(id);
        self.drive(now);
        Ok(id)
    }

    /// The SIP Call-ID of a live call.
    pub fn call_id_of(&self, call: CallId) -> Option<&str> {
        self.calls
            .get(call.key)
            .filter(|e| e.serial == call.serial)
            .map(|e| e.sip_call_id.as_str())
    }

    /// Sends 180 Ringing for an incoming call.
    pub fn ring(&mut self, now: Instant, call: CallId) -> Result<(), CallError> {
        self.with_call(now, call, |c, _| c.ring())
    }

    /// Answers an incoming call with 200 OK carrying `sdp` (an answer, or our offer when the
    /// INVITE had none); retransmitted until the ACK, then [`CallNotice::Confirmed`].
    pub fn answer(&mut self, now: Instant, call: CallId, sdp: String) -> Result<(), CallError> {
        self.with_call(now, call, |c, now| c.answer(now, sdp))
    }

    /// Rejects an unanswered incoming call with `code` (3xx-6xx; anything else means 486).
    pub fn decline(&mut self, now: Instant, call: CallId, code: u16) -> Result<(), CallError> {
        self.with_call(now, call, |c, _| c.decline(code, None))
    }

    /// Ends a call in whatever state it is (CANCEL, decline 486, or BYE); reports
    /// [`CallNotice::Terminated`] with [`REASON_LOCAL_HANGUP`](super::call::REASON_LOCAL_HANGUP).
    pub fn hangup(&mut self, now: Instant, call: CallId) -> Result<(), CallError> {
        self.with_call(now, call, |c, now| {
            c.hangup(now);
            Ok(())
        })
    }

    /// Answers the pending [`CallNotice::ReInvite`] with 200 OK and `sdp`.
    pub fn answer_reinvite(
        &mut self,
        now: Instant,
        call: CallId,
        sdp: String,
    ) -> Result<(), CallError> {
        self.with_call(now, call, |c, now| c.answer_reinvite(now, sdp))
    }

    /// Answers the pending [`CallNotice::ReInvite`] at once with the call's current SDP,
    /// directions mirrored (RFC 3264 section 6.1): hold and unhold without renegotiating.
    pub fn answer_reinvite_with_current_media(
        &mut self,
        now: Instant,
        call: CallId,
    ) -> Result<(), CallError> {
        self.with_call(now, call, |c, now| {
            c.answer_reinvite_with_current_media(now);
            Ok(())
        })
    }

    /// Refuses the pending [`CallNotice::ReInvite`] with `code` (4xx-6xx, else 488); the
    /// call keeps its previous session.
    pub fn reject_reinvite(
        &mut self,
        now: Instant,
        call: CallId,
        code: u16,
    ) -> Result<(), CallError> {
        self.with_call(now, call, |c, _| c.reject_reinvite(code))
    }

    fn with_call(
        &mut self,
        now: Instant,
        call: CallId,
        f: impl FnOnce(&mut Call, Instant) -> Result<(), CallError>,
    ) -> Result<(), CallError> {
        let e = self.call_entry(call).ok_or(CallError::UnknownCall)?;
        let result = f(&mut e.call, now);
        self.dirty_calls.push(call);
        self.drive(now);
        result
    }

    fn call_entry(&mut self, call: CallId) -> Option<&mut CallEntry> {
        self.calls
            .get_mut(call.key)
            .filter(|e| e.serial == call.serial)
    }

    fn insert_call(&mut self, call: Call, sip_call_id: String) -> CallId {
        self.next_call_serial += 1;
        let serial = self.next_call_serial;
        let key = self.calls.insert(CallEntry {
            call: Box::new(call),
            serial,
            sip_call_id,
            lookup: None,
            txns: Vec::new(),
            armed: None,
        });
        CallId { key, serial }
    }

    /// A new INVITE for the Contact token of `reg` (RFC 3261 section 13.3).
    fn incoming_call(&mut self, now: Instant, txn: TxnId, request: &SipRequest, reg: RegId) {
        if self.calls.len() >= self.max_calls {
            self.respond(now, txn, request, 503, "Service Unavailable", &[]);
            return;
        }
        let Some(source) = self.inbound_source else {
            self.respond(now, txn, request, 500, "Server Internal Error", &[]);
            return;
        };
        let kind = match request.top_via().map(|v| v.transport.to_ascii_uppercase()) {
            Some(t) if t == "TLS" => Transport::Tls,
            Some(t) if t == "TCP" => Transport::Tcp,
            _ => Transport::Udp,
        };
        let token = request.uri().user().unwrap_or_default().to_owned();
        let Ok(contact) = self.contact_for(&token, kind) else {
            self.respond(now, txn, request, 500, "Server Internal Error", &[]);
            return;
        };
        let local_tag = self.random_token(10);
        let call = match Call::incoming(
            request.clone(),
            txn,
            source,
            &local_tag,
            contact,
            TxnConfig::default(),
            self.config.outbound_proxy.is_none(),
        ) {
            Ok(call) => call,
            Err(e) => {
                log::info!("sip: INVITE {} refused: {e}", request.call_id());
                self.respond(now, txn, request, 400, "Missing Contact", &[]);
                return;
            }
        };
        let sdp = call.remote_sdp().map(str::to_owned);
        let id = self.insert_call(call, request.call_id().to_owned());
        self.call_txns.insert(txn, id);
        if let Some(e) = self.call_entry(id) {
            e.txns.push(txn);
        }
        self.call_events.push_back(CallNotice::Incoming {
            call: id,
            reg,
            from_uri: request.from().uri.to_string(),
            from_display_name: request.from().display_name.clone(),
            call_id: request.call_id().to_owned(),
            sdp,
        });
        self.dirty_calls.push(id);
    }

    /// Our Contact for `kind`: `<sip:user@host:port;transport=kind>`.
    fn contact_for(&self, user: &str, kind: Transport) -> Result<NameAddr, super::msg::MsgError> {
        let (host, port) = self.transport.sent_by(kind);
        let uri = Uri::parse(&format!(
            "sip:{user}@{host}:{port};transport={}",
            kind.to_string().to_ascii_lowercase()
        ))?;
        Ok(NameAddr::new(uri))
    }

    /// Resolves a call's hop to a transaction target and its transport.
    fn resolve_hop(
        &mut self,
        now: Instant,
        hop: &Hop,
    ) -> Result<(super::txn::Destination, Transport), String> {
        match hop {
            Hop::Flow { target, kind } => Ok((*target, *kind)),
            Hop::Located(t) => self
                .transport
                .destination_for(now, t.transport, t.address, &t.domain)
                .map(|target| (target, t.transport))
                .map_err(|e| e.to_string()),
        }
    }

    /// Builds one request of a call with a fresh Via (and our Contact for `contact_user`)
    /// for the transport of `hop`.
    fn prepare_call_request(
        &mut self,
        now: Instant,
        request: &super::dialog::OutgoingRequest,
        hop: &Hop,
        contact_user: Option<&str>,
    ) -> Result<
        (
            SipRequest,
            super::txn::Destination,
            Transport,
            Option<NameAddr>,
        ),
        String,
    > {
        let (target, kind) = self.resolve_hop(now, hop)?;
        let branch = format!("{MAGIC_COOKIE}{}", self.random_token(16));
        let via = self.transport.via(kind, &branch);
        let contact = match contact_user {
            Some(user) => Some(self.contact_for(user, kind).map_err(|e| e.to_string())?),
            None => None,
        };
        let built = request
            .build(&via, contact.as_ref())
            .map_err(|e| e.to_string())?;
        Ok((built, target, kind, contact))
    }

    /// Sends a request of a call in a new client transaction.
    fn send_call_request(
        &mut self,
        now: Instant,
        request: &super::dialog::OutgoingRequest,
        hop: &Hop,
        contact_user: Option<&str>,
    ) -> Result<Sent, String> {
        let (built, target, kind, contact) =
            self.prepare_call_request(now, request, hop, contact_user)?;
        let txn = self
            .txn
            .send_request(now, built.clone(), target)
            .map_err(|e| e.to_string())?;
        Ok(Sent {
            txn,
            target,
            kind,
            request: built,
            contact,
        })
    }

    /// Executes a call's requested actions, then re-arms its timer.
    fn run_call(&mut self, now: Instant, id: CallId) {
        loop {
            let Some(e) = self.call_entry(id) else {
                return;
            };
            let Some(action) = e.call.poll_action() else {
                break;
            };
            match action {
                CallAction::Locate(parts) => {
                    let lookup = self.locator.locate(now, &parts);
                    if let Some(e) = self.call_entry(id) {
                        e.lookup = Some(lookup);
                    }
                    self.call_lookups.insert(lookup, id);
                }
                CallAction::SendRequest {
                    request,
                    hop,
                    contact_user,
                } => {
                    let sent = self.send_call_request(now, &request, &hop, contact_user.as_deref());
                    if let (Ok(s), Method::Invite) = (&sent, &request.method) {
                        self.call_txns.insert(s.txn, id);
                        if let Some(e) = self.call_entry(id) {
                            e.txns.push(s.txn);
                        }
                    }
                    if let Err(why) = &sent {
                        log::info!("sip: {} not sent: {why}", request.method);
                    }
                    if let Some(e) = self.call_entry(id) {
                        e.call.handle_request_sent(now, &request.method, sent);
                    }
                }
                CallAction::SendAck { request, hop } => {
                    // The ACK for a 2xx is not a transaction (RFC 3261 section 17.1.1.3).
                    let sent = self
                        .prepare_call_request(now, &request, &hop, None)
                        .and_then(|(ack, target, _, _)| {
                            self.transport
                                .send(now, &target, ack.to_bytes())
                                .map_err(|e| e.to_string())
                        });
                    if let Err(why) = sent {
                        log::info!("sip: ACK not sent: {why}");
                    }
                }
                CallAction::SendCancel { invite, target } => {
                    let cancel = self.txn.request(invite).map(build_cancel);
                    match cancel {
                        Some(Ok(cancel)) => {
                            // The CANCEL's own transaction needs no owner: its answer changes
                            // nothing, the INVITE's final response does (RFC 3261 9.1).
                            if let Err(e) = self.txn.send_request(now, cancel, target) {
                                log::info!("sip: CANCEL not sent: {e}");
                            }
                        }
                        Some(Err(e)) => log::info!("sip: CANCEL not built: {e}"),
                        None => {}
                    }
                }
                CallAction::Respond { txn, response } => {
                    if let Err(e) = self.txn.send_response(now, txn, *response) {
                        log::debug!("sip: call response not sent: {e}");
                    }
                }
                CallAction::Abandon { txn } => {
                    self.call_txns.remove(&txn);
                    // The transaction layer has no "destroy": a transport error ends a
                    // Proceeding INVITE transaction at once, and its event finds no owner.
                    self.txn.handle_transport_error(now, txn);
                }
                CallAction::DialogCreated(key) => {
                    self.dialogs.insert(key, id);
                }
                CallAction::DialogRemoved(key) => {
                    if self.dialogs.get(&key) == Some(&id) {
                        self.dialogs.remove(&key);
                    }
                }
                CallAction::Report(event) => self.call_events.push_back(match event {
                    CallEvent::Progress { code, reason, sdp } => CallNotice::Progress {
                        call: id,
                        code,
                        reason,
                        sdp,
                    },
                    CallEvent::OfferRetried { code } => CallNotice::OfferRetried { call: id, code },
                    CallEvent::Accepted { sdp } => CallNotice::Accepted { call: id, sdp },
                    CallEvent::Confirmed { sdp_in_ack } => CallNotice::Confirmed {
                        call: id,
                        sdp_in_ack,
                    },
                    CallEvent::ReInvite { sdp } => CallNotice::ReInvite { call: id, sdp },
                    CallEvent::Terminated { reason } => CallNotice::Terminated { call: id, reason },
                }),
                CallAction::Finished => {
                    let e = self.calls.remove(id.key);
                    if let Some(lookup) = e.lookup {
                        self.locator.cancel(lookup);
                        self.call_lookups.remove(&lookup);
                    }
                    for txn in e.txns {
                        self.call_txns.remove(&txn);
                    }
                    if let Some(d) = e.call.dialog() {
                        self.dialogs.remove(d.key());
                    }
                    return;
                }
            }
        }
        if let Some(e) = self.call_entry(id) {
            let deadline = e.call.poll_timeout();
            if deadline != e.armed {
                e.armed = deadline;
                if let Some(at) = deadline {
                    self.call_timers.push(Reverse((at, id.key)));
                }
            }
        }
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
mod call_tests;
