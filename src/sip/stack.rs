//! The SIP user agent as one sans-IO engine: transport -> transactions -> registrations and
//! the UAS core, with RFC 3263 server location underneath.
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
use super::dns::{Resolver, SplitMix64};
use super::locate::{
    LocateEvent, Locator, LocatorConfig, LookupId, SipUriParts, Transport as TransportKind,
};
use super::msg::{Method, ResponseBuilder, SipMessage, SipRequest};
use super::registration::{RegAction, Registration, RegistrationConfig, RegistrationState};
use super::transport::{FlowId, LocalAddresses, SipTransmit, SipTransport};
use super::txn::{TxnConfig, TxnEvent, TxnId, TxnLayer, MAGIC_COOKIE};

/// Methods we answer, for `Allow` (RFC 3261 section 20.5).
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS";

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
    pub transports: Vec<TransportKind>,
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
    rng: SplitMix64,
    registrations: Slab<RegEntry>,
    by_contact_user: HashMap<String, RegId>,
    lookups: HashMap<LookupId, RegId>,
    client_txns: HashMap<TxnId, RegId>,
    reg_timers: BinaryHeap<Reverse<(Instant, usize)>>,
    dirty: Vec<RegId>,
    events: VecDeque<SipEvent>,
}

impl SipStack {
    /// A stack over `resolver`; `seed` feeds tags, branches, Call-IDs and cnonces (take it from
    /// the OS's random source: predictable values make spoofing easier).
    pub fn new(config: StackConfig, resolver: Resolver, seed: u64) -> SipStack {
        let locator = Locator::new(
            resolver,
            LocatorConfig {
                transports: config.transports.clone(),
                outbound_proxy: config.outbound_proxy.clone(),
                address_families: Default::default(),
            },
            seed ^ 0x5bd1_e995,
        );
        SipStack {
            transport: SipTransport::new(config.local.clone()),
            config,
            txn: TxnLayer::new(TxnConfig::default()),
            locator,
            rng: SplitMix64::new(seed),
            registrations: Slab::new(),
            by_contact_user: HashMap::new(),
            lookups: HashMap::new(),
            client_txns: HashMap::new(),
            reg_timers: BinaryHeap::new(),
            dirty: Vec::new(),
            events: VecDeque::new(),
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
        let kind = if tls {
            TransportKind::Tls
        } else {
            TransportKind::Tcp
        };
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
            // registrations in flight are failed over right away.
            let stuck: Vec<TxnId> = self
                .registrations
                .iter()
                .filter(|(_, e)| e.flow == Some(flow))
                .filter_map(|(_, e)| e.txn)
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
        self.drive(now);
    }

    /// The earliest instant any layer needs [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.txn.poll_timeout(),
            self.locator.poll_timeout(),
            self.transport.poll_timeout(),
            self.reg_timers.peek().map(|Reverse((t, _))| *t),
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
                        self.txn.handle_request(now, request, inbound.source)
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
                if let Some(reg) = self.lookups.remove(&lookup) {
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
                    if let Some(&reg) = self.client_txns.get(&txn) {
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
                    if let Some(&reg) = self.client_txns.get(&txn) {
                        if let Some(e) = self.registrations.get_mut(reg.0) {
                            e.txn = None;
                            e.reg.handle_no_response(now, transport);
                            self.dirty.push(reg);
                        }
                    }
                }
                TxnEvent::Terminated { txn } => {
                    self.client_txns.remove(&txn);
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
                }
                // 2xx ACKs belong to dialogs, which arrive with calls.
                TxnEvent::Ack { .. } => {}
            }
        }
        any
    }

    /// The UAS core until calls arrive (RFC 3261 section 8.2).
    fn answer_request(&mut self, now: Instant, txn: TxnId, request: &SipRequest) {
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
                    "sip: INVITE {} for {}: calls are not supported yet",
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
            .target_for(now, kind, target.address, &target.domain)
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
