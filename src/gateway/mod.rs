//! The gateway engine: owns every client connection's sylkRTC state and its accounts, and
//! (as later layers land) binds them to SIP and media.
//!
//! Sans-IO like the protocol engines: the reactor hands it WebSocket events with `now`, and
//! drains [`GatewayOutput`]s. Requests of one connection are handled strictly in the order
//! they arrive, each answered with exactly one `ack` or `error` (spec section 4.1).

mod account;
mod calls;
mod media;
mod trace;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use slab::Slab;

use crate::config::{MediaConfig, SylkRtcConfig};
use crate::sylkrtc::event::RegistrationState;
use crate::sylkrtc::request::AccountAdd;
use crate::sylkrtc::{self, Decoded, Dialect, Envelope, Event, Request};
use sip::registration::RegistrationState as SipRegistrationState;
use sip::stack::{AccountIdentity, RegId, SipEvent, SipStack};
use sip::transport::{FlowId, SipTransmit};

pub use account::{Account, AccountId};
pub use media::{MediaMap, MediaRef, MediaSocketKind};

/// Identifies a client connection inside the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(usize);

/// The reactor's handle for a connection, opaque to the gateway and echoed in outputs.
pub type ConnRef = usize;

/// Something the reactor must do for the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayOutput {
    /// Send a text message on a connection.
    Send {
        /// The connection.
        conn: ConnRef,
        /// The JSON text.
        text: String,
    },
    /// A SIP socket action.
    Sip(SipTransmit),
    /// A DNS query to send from the resolver socket.
    Dns {
        /// The nameserver.
        to: std::net::SocketAddr,
        /// The query.
        bytes: Vec<u8>,
    },
    /// Bind a call's media sockets; on failure call
    /// [`Gateway::handle_media_unavailable`].
    OpenMedia {
        /// The call's media.
        media: MediaRef,
        /// What to bind.
        sockets: Vec<(MediaSocketKind, std::net::SocketAddr)>,
    },
    /// Flush what the call's bridge still has ([`Gateway::drain_media`]), close its
    /// sockets, then call [`Gateway::handle_media_closed`].
    CloseMedia {
        /// The call's media.
        media: MediaRef,
    },
}

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// sylkRTC/account settings.
    pub sylkrtc: SylkRtcConfig,
    /// Log every frame in and out (HA1 redacted).
    pub trace_websocket: bool,
    /// Media settings.
    pub media: MediaConfig,
    /// SIP code for `session-terminate` of an unanswered incoming call.
    pub decline_code: u16,
    /// Per-call randomness (SSRCs, ICE credentials, SDES keys): each bridge gets a fork.
    /// Seeded from the OS in production, with a constant in tests.
    pub rng: engine::Rng,
    /// The DTLS certificate of every call's WebRTC leg, made once at start-up.
    pub dtls_identity: std::sync::Arc<::media::webrtc_leg::DtlsIdentity>,
}

/// One WebSocket client's sylkRTC state.
#[derive(Debug)]
struct Client {
    conn: ConnRef,
    dialect: Dialect,
    /// Connection id used in log lines.
    log_id: u64,
    /// The accounts this connection added, by AOR. Small (10 by default), so a Vec.
    accounts: Vec<AccountId>,
    /// Its sessions (calls).
    sessions: calls::ClientSessions,
}

/// A finished call's bridge, kept until the reactor flushed its last datagrams.
struct ClosingBridge(Box<::media::bridge::Bridge>);

impl std::fmt::Debug for ClosingBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClosingBridge")
    }
}

/// The gateway engine.
#[derive(Debug)]
pub struct Gateway {
    config: GatewayConfig,
    clients: Slab<Client>,
    accounts: Slab<Account>,
    /// Every account instance per AOR: the same account may be added on several connections
    /// (spec section 3, "State is per connection"); incoming calls fan out through this.
    accounts_by_aor: HashMap<String, Vec<AccountId>>,
    /// The SIP user agent.
    sip: SipStack,
    /// Which account a live registration belongs to; gone once the account lets go of it.
    registration_owner: HashMap<RegId, AccountId>,
    /// Calls (sessions) of every client.
    calls: Slab<calls::GwCall>,
    calls_by_media: media::MediaMap<usize>,
    calls_by_sip: HashMap<sip::stack::CallId, usize>,
    /// Bridges of ended calls whose last datagrams (RTCP BYE, DTLS close_notify) the reactor
    /// still flushes before closing the sockets.
    closing_bridges: media::MediaMap<ClosingBridge>,
    media: media::MediaState,
    decline_code: u16,
    rng: engine::Rng,
    outputs: VecDeque<GatewayOutput>,
}

impl Gateway {
    /// A gateway with no clients, speaking SIP through `sip`. Fails only on a media port
    /// range the allocator cannot use.
    pub fn new(config: GatewayConfig, mut sip: SipStack) -> Result<Gateway, String> {
        let media = media::MediaState::new(config.media.clone(), config.dtls_identity.clone())?;
        sip.set_incoming_calls(true);
        sip.set_max_calls(config.media.max_calls);
        Ok(Gateway {
            decline_code: config.decline_code,
            rng: config.rng.clone(),
            config,
            clients: Slab::new(),
            accounts: Slab::new(),
            accounts_by_aor: HashMap::new(),
            sip,
            registration_owner: HashMap::new(),
            calls: Slab::new(),
            calls_by_media: Default::default(),
            calls_by_sip: HashMap::new(),
            closing_bridges: Default::default(),
            media,
            outputs: VecDeque::new(),
        })
    }

    /// The reactor flushed and closed a finished call's sockets.
    pub fn handle_media_closed(&mut self, media: MediaRef) {
        self.closing_bridges.remove(&media);
    }

    /// Number of calls (for limits and leak checks).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Free media port pairs (leak checks: back to the start value when no call runs).
    pub fn media_pairs_available(&self) -> usize {
        self.media.ports.available()
    }

    /// Bridges of ended calls still waiting for the reactor to flush and close them.
    pub fn closing_media_count(&self) -> usize {
        self.closing_bridges.len()
    }

    /// A datagram arrived on the SIP UDP socket.
    pub fn handle_sip_datagram(&mut self, now: Instant, from: std::net::SocketAddr, data: &[u8]) {
        self.sip.handle_datagram(now, from, data);
        self.pump_sip(now);
    }

    /// A SIP TCP/TLS connection was accepted; `None`: refuse it.
    pub fn handle_sip_stream_accepted(
        &mut self,
        now: Instant,
        tls: bool,
        remote: std::net::SocketAddr,
    ) -> Option<FlowId> {
        let flow = self.sip.handle_stream_accepted(now, tls, remote);
        self.pump_sip(now);
        flow
    }

    /// Bytes arrived on a SIP stream.
    pub fn handle_sip_stream_data(&mut self, now: Instant, flow: FlowId, data: &[u8]) {
        self.sip.handle_stream_data(now, flow, data);
        self.pump_sip(now);
    }

    /// A SIP stream closed or could not connect.
    pub fn handle_sip_stream_closed(&mut self, now: Instant, flow: FlowId) {
        self.sip.handle_stream_closed(now, flow);
        self.pump_sip(now);
    }

    /// A DNS answer arrived.
    pub fn handle_dns_datagram(&mut self, now: Instant, from: std::net::SocketAddr, data: &[u8]) {
        self.sip.handle_dns_datagram(now, from, data);
        self.pump_sip(now);
    }

    /// Starts a graceful shutdown: every client is released (accounts unregistered).
    pub fn handle_shutdown(&mut self, now: Instant) {
        let clients: Vec<usize> = self.clients.iter().map(|(k, _)| k).collect();
        for key in clients {
            self.handle_client_closed(now, ClientId(key));
        }
        self.pump_sip(now);
    }

    /// True when no SIP work is pending that a shutdown should wait for (un-REGISTERs,
    /// BYEs and CANCELs).
    pub fn is_idle(&self) -> bool {
        self.sip.registration_count() == 0 && self.sip.call_count() == 0
    }

    /// The SIP stack, for leak checks in tests.
    pub fn sip(&self) -> &SipStack {
        &self.sip
    }

    /// A WebSocket completed its handshake: register the client and send it the ready event
    /// at once (sylkrtc.js counts missed pings from socket open, spec section 12 item 2).
    pub fn handle_client_open(
        &mut self,
        _now: Instant,
        conn: ConnRef,
        dialect: Dialect,
        log_id: u64,
    ) -> ClientId {
        let id = ClientId(self.clients.insert(Client {
            conn,
            dialect,
            log_id,
            accounts: Vec::new(),
            sessions: calls::ClientSessions::default(),
        }));
        log::info!("conn={log_id} sylkrtc: ready ({})", dialect.subprotocol());
        self.send_event(id, &Event::Ready);
        id
    }

    /// A text message from a client. Anything may arrive here; nothing panics.
    pub fn handle_client_text(&mut self, now: Instant, client: ClientId, text: &str) {
        let Some(c) = self.clients.get(client.0) else {
            return;
        };
        let log_id = c.log_id;
        if self.config.trace_websocket {
            log::info!("conn={log_id} ws <- {}", trace::redact(text));
        }
        match sylkrtc::decode(text) {
            Decoded::Request(envelope) => {
                self.handle_request(now, client, envelope);
                // Events the request caused (e.g. `registering`) follow its ack at once,
                // before the replies to later requests.
                self.pump_sip(now);
            }
            Decoded::Invalid { transaction, error } => {
                log::info!("conn={log_id} sylkrtc: refused request: {error}");
                self.reply(client, &transaction, Err(error.to_string()));
            }
            Decoded::Dropped(reason) => {
                log::info!("conn={log_id} sylkrtc: dropped message: {reason}");
            }
        }
    }

    /// The client's WebSocket is gone: free everything it owned.
    pub fn handle_client_closed(&mut self, now: Instant, client: ClientId) {
        if !self.clients.contains(client.0) {
            return;
        }
        self.end_client_calls(now, client);
        let c = self.clients.remove(client.0);
        for account in c.accounts {
            self.remove_account(now, account);
        }
        self.pump_sip(now);
        log::info!("conn={} sylkrtc: client state released", c.log_id);
    }

    /// The next action for the reactor.
    pub fn poll_output(&mut self) -> Option<GatewayOutput> {
        self.outputs.pop_front()
    }

    /// The earliest instant the gateway needs [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.sip.poll_timeout(), self.media_poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs due timers; early calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sip.handle_timeout(now);
        self.handle_media_timeouts(now);
        self.pump_sip(now);
    }

    /// Moves the SIP stack's events to clients and its transmits to the output queue.
    fn pump_sip(&mut self, now: Instant) {
        loop {
            let mut any = false;
            while let Some(event) = self.sip.poll_event() {
                any = true;
                self.handle_sip_event(event);
            }
            while let Some(notice) = self.sip.poll_call_event() {
                any = true;
                self.handle_call_notice(now, notice);
            }
            if !any {
                break;
            }
        }
        while let Some(t) = self.sip.poll_transmit() {
            self.outputs.push_back(GatewayOutput::Sip(t));
        }
        while let Some((to, bytes)) = self.sip.poll_dns_transmit() {
            self.outputs.push_back(GatewayOutput::Dns { to, bytes });
        }
    }

    fn handle_sip_event(&mut self, event: SipEvent) {
        match event {
            SipEvent::Registration { reg, state, reason } => {
                let Some(&account_id) = self.registration_owner.get(&reg) else {
                    return;
                };
                let Some(account) = self.accounts.get(account_id.0) else {
                    return;
                };
                let state = match state {
                    SipRegistrationState::Registering => RegistrationState::Registering,
                    SipRegistrationState::Registered => RegistrationState::Registered,
                    SipRegistrationState::Failed => RegistrationState::Failed,
                };
                let event = Event::Registration {
                    account: account.aor.as_str().to_owned(),
                    state,
                    reason,
                };
                let client = account.client;
                self.send_event(client, &event);
            }
            SipEvent::RegistrationFinished { reg } => {
                if let Some(account_id) = self.registration_owner.remove(&reg) {
                    if let Some(a) = self.accounts.get_mut(account_id.0) {
                        a.registration = None;
                    }
                }
            }
        }
    }

    /// Number of connected clients (for limits and leak checks).
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Number of accounts over all clients (for leak checks).
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    fn handle_request(&mut self, now: Instant, client: ClientId, envelope: Envelope) {
        let Envelope {
            transaction,
            request,
        } = envelope;
        let result = match request {
            Request::Ping => Ok(()),
            Request::AccountAdd(add) => self.add_account(client, add),
            Request::AccountRemove { account } => self
                .find_account(client, account.as_str())
                .map(|id| self.detach_account(now, client, id)),
            Request::AccountRegister { account } => self
                .find_account(client, account.as_str())
                .map(|id| self.register_account(now, id)),
            Request::AccountUnregister { account } => self
                .find_account(client, account.as_str())
                .map(|id| self.unregister_account(now, id)),
            Request::SessionCreate(create) => self.create_session(now, client, create),
            Request::SessionAnswer { session, sdp, .. } => {
                self.answer_session(now, client, &session, &sdp)
            }
            Request::SessionTrickle {
                session,
                candidates,
            } => self.trickle_session(client, &session, &candidates),
            Request::SessionTerminate { session } => self.terminate_session(now, client, &session),
            Request::NotYetSupported { name } => Err(not_yet(name)),
        };
        self.reply(client, &transaction, result);
    }

    fn add_account(&mut self, client: ClientId, add: AccountAdd) -> Result<(), String> {
        let aor = add.account.as_str().to_owned();
        let c = self.clients.get(client.0).ok_or("Internal error")?;
        if c.accounts.iter().any(|id| {
            self.accounts
                .get(id.0)
                .is_some_and(|a| a.aor.as_str() == aor)
        }) {
            return Err(format!("Account {aor} already added"));
        }
        let host = add
            .account
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if !self.config.sylkrtc.domain_allowed(host) {
            return Err(format!("SIP domain not allowed: {host}"));
        }
        let max = self.config.sylkrtc.max_accounts_per_connection;
        if c.accounts.len() >= max {
            return Err(format!(
                "Too many accounts on this connection (at most {max})"
            ));
        }
        let log_id = c.log_id;
        let id = AccountId(self.accounts.insert(Account::new(client, add)));
        self.accounts_by_aor
            .entry(aor.clone())
            .or_default()
            .push(id);
        if let Some(c) = self.clients.get_mut(client.0) {
            c.accounts.push(id);
        }
        log::info!("conn={log_id} account {aor} added");
        Ok(())
    }

    fn find_account(&self, client: ClientId, aor: &str) -> Result<AccountId, String> {
        self.clients
            .get(client.0)
            .and_then(|c| {
                c.accounts.iter().copied().find(|id| {
                    self.accounts
                        .get(id.0)
                        .is_some_and(|a| a.aor.as_str() == aor)
                })
            })
            .ok_or_else(|| format!("Unknown account specified: {aor}"))
    }

    /// `account-register`: REGISTER now (again after a failure); events report the outcome.
    fn register_account(&mut self, now: Instant, id: AccountId) {
        let Some(account) = self.accounts.get(id.0) else {
            return;
        };
        if let Some(reg) = account.registration {
            self.sip.start(now, reg);
            return;
        }
        let identity = AccountIdentity {
            user: account.aor.user().to_owned(),
            domain: account.aor.domain().to_owned(),
            display_name: account.display_name.clone(),
            user_agent: account.user_agent.clone(),
            ha1: account.ha1.clone(),
        };
        // Own the registration before it can emit its first event.
        let reg = self.sip.register_deferred(identity);
        self.registration_owner.insert(reg, id);
        if let Some(a) = self.accounts.get_mut(id.0) {
            a.registration = Some(reg);
        }
        self.sip.start(now, reg);
    }

    /// `account-unregister` (and removal/close): REGISTER with Expires 0; SylkServer sends no
    /// event for it, so the registration's later events are no longer routed.
    fn unregister_account(&mut self, now: Instant, id: AccountId) {
        let Some(reg) = self
            .accounts
            .get_mut(id.0)
            .and_then(|a| a.registration.take())
        else {
            return;
        };
        self.registration_owner.remove(&reg);
        self.sip.unregister(now, reg);
    }

    /// `account-remove`: the account leaves its connection.
    fn detach_account(&mut self, now: Instant, client: ClientId, id: AccountId) {
        if let Some(c) = self.clients.get_mut(client.0) {
            c.accounts.retain(|a| *a != id);
            log::info!("conn={} account removed", c.log_id);
        }
        self.remove_account(now, id);
    }

    fn remove_account(&mut self, now: Instant, id: AccountId) {
        if !self.accounts.contains(id.0) {
            return;
        }
        self.unregister_account(now, id);
        let account = self.accounts.remove(id.0);
        if let Some(list) = self.accounts_by_aor.get_mut(account.aor.as_str()) {
            list.retain(|a| *a != id);
            if list.is_empty() {
                self.accounts_by_aor.remove(account.aor.as_str());
            }
        }
    }

    fn reply(&mut self, client: ClientId, transaction: &str, result: Result<(), String>) {
        let text = match result {
            Ok(()) => sylkrtc::encode_ack(transaction),
            Err(e) => sylkrtc::encode_error(transaction, &e),
        };
        self.send_text(client, text);
    }

    fn send_event(&mut self, client: ClientId, event: &Event) {
        let Some(c) = self.clients.get(client.0) else {
            return;
        };
        if let Some(text) = event.encode(c.dialect) {
            self.send_text(client, text);
        }
    }

    fn send_text(&mut self, client: ClientId, text: String) {
        let Some(c) = self.clients.get(client.0) else {
            return;
        };
        if self.config.trace_websocket {
            log::info!("conn={} ws -> {text}", c.log_id);
        }
        self.outputs
            .push_back(GatewayOutput::Send { conn: c.conn, text });
    }
}

fn not_yet(name: &str) -> String {
    format!("not supported yet: {name}")
}

#[cfg(test)]
mod tests;
