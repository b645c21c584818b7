//! The gateway: bindings and policy. It binds each client connection to its accounts, each
//! account to its SIP registration, each sylkRTC session to a SIP call and a media bridge,
//! and decides what every request and event means for the others.
//!
//! It owns no engine. The [`Switchboard`](crate::switchboard::Switchboard) holds the SIP
//! stack and the bridges side by side and lends them for one input ([`Engines`]); the gateway
//! takes one typed [`GatewayInput`] at a time, calls the engines it binds, and leaves the
//! socket work to the reactor as typed [`GatewayCommand`]s. No datagram passes through it.
//! Requests of one connection are handled strictly in arrival order, each answered with
//! exactly one `ack` or `error` (spec section 4.1).

mod account;
mod calls;
mod chat;
mod client;
mod contacts;
mod error;
mod headers;
mod messaging;
mod ports;
mod push;
mod stats;
mod trace;

use std::collections::{HashMap, VecDeque};
use std::time::{Instant, SystemTime};

use engine::drops::{self, DropKind};
use engine::{Key, Rng, Table};
use media::bridge::BridgeEvent;
use sip::stack::{RequestTarget, SipEvent, SipStack};

use crate::config::{ContactsConfig, MediaConfig, MessagingConfig, SylkRtcConfig};
use crate::switchboard::{Bridges, MediaId, MediaSocketKind, MsrpId, Msrps, Store};
use crate::sylkrtc::{self, Decoded, Dialect, Envelope, Event, Request};

pub use account::{Account, AccountId};
pub use calls::{exercise_call_fields, CallDirection, CallState};
pub use chat::{ChatSettings, ChatStats, RelayTarget};
pub use contacts::{ContactsStats, NotifyResult};
pub use error::{CallEnd, ChatStop, GatewayError};
pub use messaging::MessagingStats;
pub use ports::{AssumeFree, PortProbe, PortRangeError};
pub use stats::GatewayStats;

/// `Retry-After` (seconds) of the 503s a draining gateway gives new calls: long enough for
/// a load balancer's health check to take this instance out, short enough that a client
/// tries again soon (and lands on another instance).
pub const DRAIN_RETRY_AFTER: u32 = 5;

use client::Client;

/// The reactor's handle for a WebSocket connection (its mio token, generation included),
/// opaque to the gateway and echoed in [`GatewayCommand::Send`].
pub type ConnRef = usize;

/// Identifies a client connection inside the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(Key);

/// Identifies a sylkRTC session (call) inside the gateway for its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallKey(Key);

/// One input to the gateway.
#[derive(Debug)]
pub enum GatewayInput<'a> {
    /// A WebSocket completed its handshake; the client gets the ready event at once
    /// (sylkrtc.js counts missed pings from socket open, spec section 12 item 2).
    ClientOpen {
        /// The reactor's handle.
        conn: ConnRef,
        /// The negotiated subprotocol.
        dialect: Dialect,
        /// Connection number for log lines.
        log_id: u64,
    },
    /// A text message from a client. Anything may arrive here; nothing panics.
    ClientText {
        /// Which connection.
        conn: ConnRef,
        /// The message.
        text: &'a str,
    },
    /// The client's WebSocket is gone: everything it owned is released (calls ended on the
    /// SIP side, accounts unregistered).
    ClientClosed {
        /// Which connection.
        conn: ConnRef,
    },
    /// An event of the SIP stack (registrations, calls).
    Sip(SipEvent),
    /// A state change of a call's media bridge.
    Bridge {
        /// Whose.
        media: MediaId,
        /// What.
        event: BridgeEvent,
    },
    /// An event of a chat session's MSRP connection.
    Msrp {
        /// Whose.
        id: MsrpId,
        /// What.
        event: msrp::MsrpEvent,
    },
    /// The reactor could not bind a call's sockets ([`GatewayCommand::OpenMedia`]).
    MediaUnavailable {
        /// Whose.
        media: MediaId,
    },
    /// Start draining: new calls are refused (an `error` to `session-create`, 503 with
    /// Retry-After to INVITEs), connections without a call are let go at once (1001) and the
    /// others once their last call ends ([`GatewayCommand::Close`]).
    Drain,
    /// A message store request finished.
    Store {
        /// Which request.
        ticket: store::worker::StoreTicket,
        /// Its result.
        result: Result<store::StoreResult, store::StoreError>,
    },
    /// An XCAP request finished.
    Xcap(xcap::XcapEvent),
    /// Graceful shutdown: every call still up ends (BYE/CANCEL, `terminated` to its client)
    /// and every client is released (accounts unregistered).
    Shutdown,
}

/// Socket work the gateway asks of the reactor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayCommand {
    /// Send a text message on a connection.
    Send {
        /// The connection.
        conn: ConnRef,
        /// The JSON text.
        text: String,
    },
    /// Bind a call's media sockets; on failure report [`GatewayInput::MediaUnavailable`].
    OpenMedia {
        /// The call's media.
        media: MediaId,
        /// What to bind.
        sockets: Vec<(MediaSocketKind, std::net::SocketAddr)>,
    },
    /// The call is over: flush what its bridge still has (RTCP BYE, DTLS close_notify),
    /// close its sockets and drop the bridge.
    CloseMedia {
        /// The call's media.
        media: MediaId,
    },
    /// Draining: close this client's WebSocket with 1001 (going away); the reactor reports
    /// [`GatewayInput::ClientClosed`] when it is gone.
    Close {
        /// The connection.
        conn: ConnRef,
    },
}

/// The engines the gateway binds, lent by their owner for one input.
pub struct Engines<'a> {
    /// The SIP user agent.
    pub sip: &'a mut SipStack,
    /// Every call's media bridge.
    pub bridges: &'a mut Bridges,
    /// Every chat session's MSRP connection.
    pub msrp: &'a mut Msrps,
    /// The message store (its worker thread).
    pub store: &'a mut Store,
    /// The XCAP client (addressbooks on the users' XCAP servers).
    pub xcap: &'a mut xcap::XcapClient,
}

/// Gateway settings.
#[derive(Clone)]
pub struct GatewayConfig {
    /// sylkRTC/account settings.
    pub sylkrtc: SylkRtcConfig,
    /// Log every frame in and out (HA1 redacted).
    pub trace_websocket: bool,
    /// Media settings.
    pub media: MediaConfig,
    /// SIP code for `session-terminate` of an unanswered incoming call.
    pub decline_code: u16,
    /// How push tokens go into the REGISTER Contact.
    pub push_parameters: crate::config::PushParameters,
    /// Messaging limits and retention.
    pub messaging: MessagingConfig,
    /// Addressbook, XCAP and presence.
    pub contacts: ContactsConfig,
    /// Chat sessions over MSRP: listeners, relays, limits.
    pub chat: ChatSettings,
    /// The certificate every call's DTLS presents, made once at start-up.
    pub dtls_identity: std::sync::Arc<media::webrtc_leg::DtlsIdentity>,
}

/// The gateway.
pub struct Gateway {
    config: GatewayConfig,
    clients: Table<Client>,
    clients_by_conn: HashMap<ConnRef, ClientId>,
    accounts: Table<Account>,
    /// Every account instance per AOR: the same account may be added on several connections
    /// (spec section 3, "State is per connection"); incoming calls fan out through this.
    accounts_by_aor: HashMap<String, Vec<AccountId>>,
    /// Which account a live registration belongs to; gone once the account lets go of it.
    registration_owner: HashMap<sip::registration::RegId, AccountId>,
    calls: Table<calls::GwCall>,
    calls_by_media: HashMap<MediaId, CallKey>,
    calls_by_sip: HashMap<sip::stack::CallId, CallKey>,
    /// Our requests inside calls' dialogs (INFO, REFER, NOTIFY) and what each is for.
    call_requests: HashMap<sip::request::RequestId, (CallKey, calls::CallRequest)>,
    ports: ports::MediaPorts,
    /// Randomness for the bridges' SSRCs, ICE credentials and SDES keys.
    rng: Rng,
    /// The wall clock at the current input (RTCP sender reports map `now` onto it).
    wall: SystemTime,
    /// Draining before shutdown: no new calls.
    draining: bool,
    /// Counters for the metrics endpoint.
    stats: GatewayStats,
    /// Messaging's books: store requests and SIP MESSAGEs in flight, rate limits.
    messaging: messaging::Messaging,
    /// Contacts' books: addressbooks, presence subscriptions and publications.
    contacts: contacts::Contacts,
    /// The chats of sessions, by call.
    chat: chat::Chats,
    outputs: VecDeque<GatewayCommand>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("clients", &self.clients.len())
            .field("accounts", &self.accounts.len())
            .field("calls", &self.calls.len())
            .finish()
    }
}

impl Gateway {
    /// A gateway with no clients. Fails only on a media port range the allocator cannot use.
    pub fn new(config: GatewayConfig, rng: Rng) -> Result<Gateway, ports::PortRangeError> {
        Ok(Gateway {
            messaging: messaging::Messaging::new(&config.messaging),
            contacts: contacts::Contacts::new(&config.contacts),
            chat: chat::Chats::default(),
            ports: ports::MediaPorts::new(config.media.clone(), config.dtls_identity.clone())?,
            config,
            clients: Table::new(),
            clients_by_conn: HashMap::new(),
            accounts: Table::new(),
            accounts_by_aor: HashMap::new(),
            registration_owner: HashMap::new(),
            calls: Table::new(),
            calls_by_media: HashMap::new(),
            calls_by_sip: HashMap::new(),
            call_requests: HashMap::new(),
            rng,
            wall: SystemTime::UNIX_EPOCH,
            draining: false,
            stats: GatewayStats::default(),
            outputs: VecDeque::new(),
        })
    }

    /// Sets how the port allocator checks that a media port can be bound (the reactor's
    /// probe; [`AssumeFree`] until set).
    pub fn set_port_probe(&mut self, probe: Box<dyn PortProbe>) {
        self.ports.probe = probe;
    }

    /// Handles one input at `now` (monotonic) and `wall` (the wall clock read with it),
    /// calling the engines it binds through `engines`. Drain
    /// [`poll_output`](Self::poll_output) and the engines' outputs after every input.
    pub fn handle(
        &mut self,
        now: Instant,
        wall: SystemTime,
        input: GatewayInput<'_>,
        engines: &mut Engines<'_>,
    ) {
        self.wall = wall;
        self.expire_messages(engines.store);
        match input {
            GatewayInput::ClientOpen {
                conn,
                dialect,
                log_id,
            } => self.client_open(conn, dialect, log_id),
            GatewayInput::ClientText { conn, text } => {
                if let Some(&client) = self.clients_by_conn.get(&conn) {
                    self.client_text(now, client, text, engines);
                }
            }
            GatewayInput::ClientClosed { conn } => {
                if let Some(client) = self.clients_by_conn.remove(&conn) {
                    self.client_closed(now, client, engines);
                }
            }
            GatewayInput::Sip(SipEvent::Call { call, event }) => {
                self.handle_call_event(now, call, event, engines)
            }
            GatewayInput::Sip(SipEvent::Request { request, outcome })
                if self.call_requests.contains_key(&request) =>
            {
                if let Some((key, what)) = self.call_requests.remove(&request) {
                    self.call_request_done(now, key, what, &outcome, engines);
                }
            }
            GatewayInput::Sip(SipEvent::IncomingRequest {
                id,
                target: RequestTarget::Call(call),
                request,
            }) if self.call_incoming_request(now, call, id, &request, engines) => {}
            GatewayInput::Sip(SipEvent::Request { request, outcome }) => {
                self.handle_request_outcome(now, request, outcome, engines)
            }
            GatewayInput::Sip(SipEvent::IncomingRequest {
                id,
                target,
                request,
            }) => self.handle_incoming_request(now, id, target, *request, engines),
            GatewayInput::Store { ticket, result } if self.contacts.owns(&ticket) => {
                self.handle_contacts_store_result(now, ticket, result, engines)
            }
            GatewayInput::Store { ticket, result } => {
                self.handle_store_result(now, ticket, result, engines)
            }
            GatewayInput::Sip(
                event @ (SipEvent::Subscription { .. }
                | SipEvent::SubscriptionFinished { .. }
                | SipEvent::Publication { .. }
                | SipEvent::PublicationFinished { .. }),
            ) => self.handle_presence_event(now, event, engines),
            GatewayInput::Sip(event) => self.handle_sip_event(event),
            GatewayInput::Bridge { media, event } => {
                if let Some(&key) = self.calls_by_media.get(&media) {
                    self.handle_bridge_event(now, key, event, engines);
                }
            }
            GatewayInput::Msrp { id, event } => self.handle_msrp_event(now, id, event, engines),
            GatewayInput::Xcap(event) => self.handle_xcap_event(now, event, engines),
            GatewayInput::MediaUnavailable { media } => {
                if let Some(&key) = self.calls_by_media.get(&media) {
                    self.fail_call(now, key, CallEnd::MediaPortsUnavailable, engines);
                }
            }
            GatewayInput::Drain => self.drain(engines),
            GatewayInput::Shutdown => {
                let keys: Vec<CallKey> = self.calls.iter().map(|(k, _)| CallKey(k)).collect();
                for key in keys {
                    self.end_call(now, key, CallEnd::Shutdown, true, engines);
                }
                for (_, client) in std::mem::take(&mut self.clients_by_conn) {
                    self.client_closed(now, client, engines);
                }
            }
        }
        // Presence follows what this input changed (members, addressbooks, calls).
        self.flush_contacts(now, engines);
    }

    /// The next socket action for the reactor.
    pub fn poll_output(&mut self) -> Option<GatewayCommand> {
        self.outputs.pop_front()
    }

    /// Counters of calls and refused requests (metrics).
    pub fn stats(&self) -> &GatewayStats {
        &self.stats
    }

    /// Counters of messages in and out (metrics).
    pub fn messaging_stats(&self) -> &MessagingStats {
        self.messaging.stats()
    }

    /// Live calls per direction and state, in [`CallDirection::ALL`] x [`CallState::ALL`]
    /// order (metrics; O(calls), at scrape time only).
    pub fn call_gauges(&self) -> [[usize; 4]; 2] {
        let mut out = [[0; 4]; 2];
        for (_, call) in self.calls.iter() {
            let d = CallDirection::ALL.iter().position(|d| *d == call.direction);
            let s = CallState::ALL.iter().position(|s| *s == call.state);
            if let (Some(d), Some(s)) = (d, s) {
                out[d][s] += 1;
            }
        }
        out
    }

    /// Whether the gateway is draining (no new calls).
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    fn drain(&mut self, e: &mut Engines<'_>) {
        if self.draining {
            return;
        }
        self.draining = true;
        e.sip.set_refuse_new_calls(Some(DRAIN_RETRY_AFTER));
        let mut idle = 0;
        for (_, c) in self.clients.iter() {
            if c.sessions.live.is_empty() {
                idle += 1;
                self.outputs
                    .push_back(GatewayCommand::Close { conn: c.conn });
            }
        }
        log::info!(
            "draining: {idle} connections without a call let go, {} calls left to finish",
            self.calls.len()
        );
    }

    /// Number of connected clients (for limits and leak checks).
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Number of accounts over all clients (for leak checks).
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// Number of calls (for limits and leak checks).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Account instances of `aor` over all connections (for leak checks).
    pub fn account_instances(&self, aor: &str) -> usize {
        self.accounts_by_aor.get(aor).map_or(0, Vec::len)
    }

    /// Distinct AORs with at least one account instance (for leak checks).
    pub fn aor_count(&self) -> usize {
        self.accounts_by_aor.len()
    }

    /// Store results and SIP MESSAGEs messaging still waits for (leak checks).
    pub fn messages_in_flight(&self) -> usize {
        self.messaging.in_flight()
    }

    /// Addressbooks, store requests, subscriptions and publications contacts keep (leak
    /// checks: 0 once every client left and the SIP stack finished).
    pub fn contacts_in_use(&self) -> usize {
        self.contacts.in_use()
    }

    /// Counters of contacts and presence (metrics).
    pub fn contacts_stats(&self) -> &ContactsStats {
        self.contacts.stats()
    }

    /// Free media port pairs (leak checks: back to the start value when no call runs).
    pub fn media_pairs_available(&self) -> usize {
        self.ports.available()
    }

    fn client_text(&mut self, now: Instant, client: ClientId, text: &str, e: &mut Engines<'_>) {
        let Some(c) = self.clients.get(client.0) else {
            return;
        };
        let log_id = c.log_id;
        if self.config.trace_websocket {
            log::info!("conn={log_id} ws <- {}", trace::redact(text));
        }
        match sylkrtc::decode(text) {
            Decoded::Request(envelope) => self.handle_request(now, client, envelope, e),
            Decoded::Invalid { transaction, error } => {
                drops::record(
                    now,
                    DropKind::SylkrtcRefused,
                    format_args!("conn={log_id} refused request: {error}"),
                );
                self.reply(client, &transaction, Err(error.into()));
            }
            Decoded::Dropped(reason) => {
                drops::record(
                    now,
                    DropKind::SylkrtcDropped,
                    format_args!("conn={log_id} dropped message: {reason}"),
                );
            }
        }
    }

    fn handle_request(
        &mut self,
        now: Instant,
        client: ClientId,
        envelope: Envelope,
        e: &mut Engines<'_>,
    ) {
        let Envelope {
            transaction,
            request,
        } = envelope;
        let result = match request {
            Request::Ping => Ok(()),
            Request::AccountAdd(add) => self.add_account(client, add),
            Request::AccountRemove { account } => self
                .find_account(client, account.as_str())
                .map(|id| self.detach_account(now, client, id, e)),
            Request::AccountRegister { account } => self
                .find_account(client, account.as_str())
                .map(|id| self.register_account(now, id, e)),
            Request::AccountUnregister { account } => self
                .find_account(client, account.as_str())
                .map(|id| self.unregister_account(now, id, e)),
            Request::SessionCreate(create) => self.create_session(now, client, create, e),
            Request::ChatSessionCreate(create) => self.create_chat_session(now, client, create, e),
            Request::SessionAnswer {
                session,
                sdp,
                headers,
            } => self.answer_any_session(now, client, &session, sdp.as_deref(), &headers, e),
            Request::SessionTrickle {
                session,
                candidates,
            } => self.trickle_session(client, &session, &candidates, e),
            Request::SessionTerminate { session } => {
                self.terminate_session(now, client, &session, e)
            }
            Request::SessionUpdate(update) => self.update_session(now, client, update, e),
            Request::SessionDtmfInfo(info) => self.dtmf_info(now, client, info, e),
            Request::SessionTransfer {
                session,
                uri,
                replaces,
            } => self.transfer_session(now, client, &session, uri.as_ref(), replaces, e),
            Request::AccountDevicetoken(token) => self.device_token(client, token),
            Request::NotYetSupported { name } => Err(GatewayError::NotSupportedYet(name)),
            contacts @ (Request::AccountFetchAddressbook { .. }
            | Request::AccountUpdateAddressbook(_)
            | Request::AccountPublishPresence(_)) => {
                return self.handle_contacts_request(now, client, transaction, contacts, e)
            }
            messaging => {
                return self.handle_messaging_request(now, client, transaction, messaging, e)
            }
        };
        self.reply(client, &transaction, result);
    }

    fn reply(&mut self, client: ClientId, transaction: &str, result: Result<(), GatewayError>) {
        let text = match result {
            Ok(()) => sylkrtc::encode_ack(transaction),
            Err(e) => {
                self.stats.refused(&e);
                sylkrtc::encode_error(transaction, &e.to_string())
            }
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
            .push_back(GatewayCommand::Send { conn: c.conn, text });
    }
}
