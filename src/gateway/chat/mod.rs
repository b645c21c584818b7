//! Chat sessions over MSRP (RFC 4975), our sylkRTC extension (README, "Chat sessions").
//!
//! A chat is part of a sylkRTC session: the session's INVITE dialog (the call machinery in
//! `calls/`) carries an `m=message` line besides, or instead of, audio and video; a
//! chat-only session has no bridge. Each chat has one MSRP connection engine (owned by the
//! switchboard, lent through [`Engines::msrp`]), over which:
//!
//! - `session-message` goes out as SEND: `message/cpim` content byte for byte as the client
//!   wrote it, any other type wrapped in CPIM by the gateway (`messages.rs`);
//! - a complete incoming message becomes `session-event message` with the CPIM exactly as
//!   received, and delivery results and REPORTs become `disposition-notification`;
//! - the first successful transaction makes a chat-only session `established`; its
//!   connection's end ends the session (BYE), and any end of the session closes the
//!   connection (no socket or timer left).
//!
//! `sdp.rs` writes and reads the `m=message` lines and decides who connects (RFC 6135);
//! `outgoing.rs` and `incoming.rs` bind them to the two directions of the call machinery.

mod incoming;
mod messages;
mod outgoing;
mod reoffer;
mod sdp;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use media::sdp::MediaSection;
use msrp::{MsrpConfig, MsrpEvent, MsrpUri, OutgoingId, RelayAuth, Role};

use super::calls::CallState;
use super::{AccountId, CallEnd, CallKey, ChatStop, Engines, Gateway};
use crate::switchboard::MsrpId;
use crate::sylkrtc::Event;

pub(super) use incoming::{ChatInvite, ChatSplit};
pub(super) use outgoing::BridgedOffer;

/// A relay the gateway authenticates to (RFC 4976), resolved at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayTarget {
    /// Its URI (no session id).
    pub uri: MsrpUri,
    /// Where it is.
    pub addr: SocketAddr,
}

/// How chat sessions reach peers: the MSRP listeners, relays and limits.
#[derive(Debug, Clone, Default)]
pub struct ChatSettings {
    /// The plain TCP listener's bound address, if any.
    pub listen: Option<SocketAddr>,
    /// The TLS listener's bound address, if any.
    pub tls_listen: Option<SocketAddr>,
    /// The address written into our MSRP URIs and `c=` (`msrp.advertised_host`, else the
    /// listener's, else the media address).
    pub address: Option<IpAddr>,
    /// Offer `TCP/TLS/MSRP`.
    pub offer_tls: bool,
    /// The relay of accounts whose domain has none of its own.
    pub relay: Option<RelayTarget>,
    /// Relays per account domain (lower case).
    pub relays: Vec<(String, RelayTarget)>,
    /// Largest message, in bytes.
    pub max_message_size: usize,
    /// `Expires` asked of relays.
    pub auth_expires: u32,
}

impl ChatSettings {
    fn relay_for(&self, domain: &str) -> Option<&RelayTarget> {
        self.relays
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .map(|(_, r)| r)
            .or(self.relay.as_ref())
    }
}

/// Counters of chat sessions (metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatStats {
    /// Chat sessions started, by direction (outgoing, incoming).
    pub started: [u64; 2],
    /// Chats that ended.
    pub ended: u64,
    /// Chats whose MSRP connection failed (lost, timed out, relay refused, peer cut off).
    pub failed: u64,
    /// Messages handed to MSRP from `session-message`.
    pub messages_out: u64,
    /// Messages delivered to the client from MSRP.
    pub messages_in: u64,
    /// Outgoing messages reported failed (error response, REPORT, timeout, connection end).
    pub delivery_failures: u64,
    /// Outgoing messages the peer reported delivered.
    pub delivered: u64,
}

/// One chat: the MSRP side of a session.
#[derive(Debug)]
pub(super) struct ChatSession {
    /// The session's MSRP connection engine; `None` when the chat was refused (its
    /// `m=message` line is answered with port 0) or is over.
    pub msrp: Option<MsrpId>,
    /// Position of the `m=message` line in the SIP session's SDP.
    pub index: usize,
    /// Our `m=message` line (offer or answer), once written.
    pub line: Option<MediaSection>,
    /// The peer's line: its path and `a=setup`, once known.
    pub peer: Option<sdp::PeerLine>,
    /// TLS (`msrps`).
    pub tls: bool,
    /// Over a relay (AUTH first; our engine is always the active end).
    pub relay: bool,
    /// The relay answered AUTH.
    pub authenticated: bool,
    /// What waits for the relay's answer to AUTH.
    pub waiting: Option<outgoing::Waiting>,
    /// Our role once decided.
    pub role: Option<Role>,
    /// The session has no audio or video (no bridge).
    pub chat_only: bool,
    /// The MSRP connection is up (its first transaction succeeded). Over a relay the
    /// peer's first SEND can overtake the SIP 2xx that tells us its path, so a chat-only
    /// session reports `established` only once it is also `accepted`.
    pub ready: bool,
    /// Messages sent and not settled: the sylkRTC id and timestamp they report under.
    pub sent: HashMap<OutgoingId, (String, String)>,
    /// `o=` state of chat-only descriptions we write.
    pub origin: media::sdp::LocalOrigin,
}

/// The chats of every session.
#[derive(Debug, Default)]
pub(super) struct Chats {
    pub sessions: HashMap<CallKey, ChatSession>,
    pub by_msrp: HashMap<MsrpId, CallKey>,
    pub stats: ChatStats,
    /// The engines' settings, built once and shared by every chat's engine.
    pub engine_config: Option<Arc<MsrpConfig>>,
}

/// Checks a complete incoming MSRP message before it is answered (RFC 4975 section 7.2):
/// CPIM that parses and is UTF-8 (a sylkRTC event carries it as JSON text).
fn validate_cpim(_content_type: &str, body: &[u8]) -> Result<(), (u16, &'static str)> {
    if std::str::from_utf8(body).is_err() {
        return Err((415, "Content not UTF-8"));
    }
    im::Cpim::parse(body.to_vec()).map_err(|_| (400, "Bad CPIM"))?;
    Ok(())
}

impl Gateway {
    /// Chat counters (metrics).
    pub fn chat_stats(&self) -> &ChatStats {
        &self.chat.stats
    }

    /// Live chats (leak checks).
    pub fn chat_count(&self) -> usize {
        self.chat.sessions.len()
    }

    /// The engine settings of every chat.
    fn msrp_config(&mut self) -> Arc<MsrpConfig> {
        let chat = &self.config.chat;
        Arc::clone(self.chat.engine_config.get_or_insert_with(|| {
            Arc::new(MsrpConfig {
                max_message_size: chat.max_message_size,
                auth_expires: chat.auth_expires,
                accept_types: vec!["message/cpim".to_owned()],
                validate: Some(validate_cpim),
                ..MsrpConfig::default()
            })
        }))
    }

    /// Opens the MSRP engine of a new chat for `account`: our URI (`msrps` with `tls`), and
    /// AUTH to the account's relay when it has one.
    fn open_chat_engine(
        &mut self,
        now: Instant,
        account: AccountId,
        tls: bool,
        e: &mut Engines<'_>,
    ) -> Result<(MsrpId, bool), super::GatewayError> {
        let settings = &self.config.chat;
        let acc = self
            .accounts
            .get(account.0)
            .ok_or(super::GatewayError::Internal)?;
        let relay = settings.relay_for(acc.aor.domain()).cloned();
        let listener = if tls {
            settings.tls_listen
        } else {
            settings.listen
        };
        let ip = settings
            .address
            .or(listener.map(|l| l.ip()))
            .unwrap_or(self.ports.config.address);
        // Without a listener our URI only names us (we connect out); port 9 (discard) as
        // RFC 4145 examples write for an active end.
        let port = listener.map_or(9, |l| l.port());
        let session_id = self.rng.token(20);
        let local = MsrpUri::new(tls, SocketAddr::new(ip, port), &session_id);
        let auth = relay.map(|r| RelayAuth {
            relay: r.uri,
            addr: r.addr,
            username: acc.aor.user().to_owned(),
            ha1: acc.ha1.clone(),
        });
        let over_relay = auth.is_some();
        let config = self.msrp_config();
        let id = e.msrp.open(config, local, self.rng.fork());
        if let Some(auth) = auth {
            if let Some(c) = e.msrp.get_mut(id) {
                c.authenticate(now, auth);
            }
            e.msrp.touched(id);
        }
        Ok((id, over_relay))
    }

    /// Files a chat for call `key`.
    fn insert_chat(&mut self, key: CallKey, chat: ChatSession) {
        if let Some(id) = chat.msrp {
            self.chat.by_msrp.insert(id, key);
        }
        self.chat.sessions.insert(key, chat);
    }

    /// An event of a chat's MSRP engine.
    pub(super) fn handle_msrp_event(
        &mut self,
        now: Instant,
        id: MsrpId,
        event: MsrpEvent,
        e: &mut Engines<'_>,
    ) {
        let Some(&key) = self.chat.by_msrp.get(&id) else {
            return;
        };
        match event {
            MsrpEvent::Authenticated { use_path, expires } => {
                self.chat_authenticated(now, key, use_path, expires, e)
            }
            MsrpEvent::Ready => {
                log::info!("{} chat ready", self.call_context(key));
                let Some(chat) = self.chat.sessions.get_mut(&key) else {
                    return;
                };
                chat.ready = true;
                let answered = self
                    .calls
                    .get(key.0)
                    .is_some_and(|c| c.state == CallState::Accepted);
                if chat.chat_only && answered {
                    self.call_established(now, key);
                }
            }
            MsrpEvent::Message {
                message_id,
                content_type,
                body,
            } => self.chat_message_received(key, &message_id, &content_type, body),
            MsrpEvent::Delivery { id, delivery } => self.chat_delivery(key, id, delivery),
            MsrpEvent::Closed(reason) => {
                self.chat.by_msrp.remove(&id);
                self.chat.stats.failed += 1;
                log::info!("{} chat over: {reason}", self.call_context(key));
                let chat_only = match self.chat.sessions.get_mut(&key) {
                    Some(c) => {
                        c.msrp = None;
                        c.chat_only
                    }
                    None => return,
                };
                if chat_only {
                    self.fail_call(now, key, CallEnd::Chat(reason), e);
                } else {
                    // The call's audio/video goes on without its chat.
                    self.fail_pending_messages(key);
                    self.chat_stopped(key, ChatStop::Closed(reason));
                    // AUTH failed or timed out with the 200 held for it: it goes out with
                    // the chat's line at port 0.
                    self.send_held_answer(now, key, e);
                }
            }
        }
    }

    /// The chat of call `key` (with audio/video) is over and the call goes on: its client
    /// gets the `chat` session event (our extension; sylkrtc.js 1.8 dispatches session
    /// events by name and ignores names it does not know).
    pub(super) fn chat_stopped(&mut self, key: CallKey, why: ChatStop) {
        let Some(call) = self.calls.get(key.0) else {
            return;
        };
        let (client, session) = (call.client, call.session.clone());
        self.send_event(
            client,
            &Event::SessionChat {
                session,
                state: why.state(),
                reason: why.to_string(),
            },
        );
    }

    /// Call `key` ended: its chat's connection is closed, its engine and timers dropped.
    pub(super) fn end_chat(&mut self, now: Instant, key: CallKey, e: &mut Engines<'_>) {
        let Some(chat) = self.chat.sessions.remove(&key) else {
            return;
        };
        self.chat.stats.ended += 1;
        if let Some(id) = chat.msrp {
            self.chat.by_msrp.remove(&id);
            e.msrp.close(now, id);
        }
    }
}
