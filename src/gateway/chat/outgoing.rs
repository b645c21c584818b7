//! Outgoing chat sessions: `session-create` with `media: ["chat"]` (chat only) or with chat
//! beside the browser's audio/video, the INVITE once our `m=message` line can be written
//! (after the relay's AUTH when there is one), and the answer's line starting the engine.

use std::time::Instant;

use media::bridge::Bridge;
use media::sdp::SessionDescription;
use msrp::{MsrpUri, Role};
use sip::stack::{CallId as SipCallId, InviteOptions};

use super::sdp::{offer_setup, our_line, role_after_answer, PeerLine};
use super::ChatSession;
use crate::gateway::calls::{CallDirection, GwCall};
use crate::gateway::ports::{CallAddrs, CallPorts};
use crate::gateway::{CallEnd, CallKey, ChatStop, ClientId, Engines, Gateway, GatewayError};
use crate::sylkrtc::request::{ChatSessionCreate, SessionCreate};

/// What the bridge made of the browser's offer, for a session that adds chat to it.
pub(in crate::gateway) struct BridgedOffer {
    /// The call's bridge.
    pub bridge: Bridge,
    /// Its ports.
    pub ports: CallPorts,
    /// Their addresses.
    pub addrs: CallAddrs,
    /// The SIP offer (audio/video).
    pub sip_offer: String,
    /// The RTP/SAVP retry offer (`media.sip_srtp = "auto"`).
    pub retry_offer: Option<String>,
    /// The client's extra INVITE headers (validated), with a transfer's Referred-By.
    pub headers: Vec<(String, String)>,
    /// The session whose transfer request this call carries out (`refer`).
    pub referred_from: Option<CallKey>,
}

/// What waits for the relay's answer to AUTH.
#[derive(Debug)]
pub(in crate::gateway) enum Waiting {
    /// Our INVITE to `uri`, with the bridge's offers when the session has audio/video.
    Invite {
        uri: String,
        offers: Option<(String, Option<String>)>,
        headers: Vec<(String, String)>,
    },
    /// The 200 to an incoming chat-only INVITE, once the client answered (`answered`),
    /// with the client's extra headers for it.
    Answer {
        answered: bool,
        headers: Vec<(String, String)>,
    },
    /// The 200 to an incoming INVITE with audio/video beside the chat, once the client
    /// answered: the bridge's SIP answer (the chat's line joins it) and the client's extra
    /// headers. Sent with our path once AUTH succeeds, with the line at port 0 if it fails.
    MediaAnswer {
        sip_answer: String,
        headers: Vec<(String, String)>,
    },
}

impl Gateway {
    /// Whether a peer can connect to us over `tls` (a listener of that kind).
    pub(super) fn can_listen(&self, tls: bool) -> bool {
        if tls {
            self.config.chat.tls_listen.is_some()
        } else {
            self.config.chat.listen.is_some()
        }
    }

    /// The checks every new session passes (as `session-create` does for calls).
    fn check_new_session(&self, client: ClientId, session: &str) -> Result<(), GatewayError> {
        if self.draining {
            return Err(GatewayError::Draining);
        }
        let c = self.clients.get(client.0).ok_or(GatewayError::Internal)?;
        if c.sessions.live.contains_key(session) {
            return Err(GatewayError::SessionInUse(session.to_owned()));
        }
        let per_client = self.ports.config.max_calls_per_connection;
        if c.sessions.live.len() >= per_client {
            return Err(GatewayError::TooManySessions(per_client));
        }
        if self.calls.len() >= self.ports.config.max_calls {
            return Err(GatewayError::GatewayFull);
        }
        Ok(())
    }

    /// Whether a chat of `account` uses TLS: its relay's scheme, else `msrp.tls`.
    fn chat_tls(&self, account: crate::gateway::AccountId) -> bool {
        let domain = self
            .accounts
            .get(account.0)
            .map(|a| a.aor.domain().to_owned())
            .unwrap_or_default();
        match self.config.chat.relay_for(&domain) {
            Some(r) => r.uri.secure,
            None => self.config.chat.offer_tls,
        }
    }

    /// `session-create` with `media: ["chat"]`: a chat-only INVITE.
    pub(in crate::gateway) fn create_chat_session(
        &mut self,
        now: Instant,
        client: ClientId,
        create: ChatSessionCreate,
        e: &mut Engines<'_>,
    ) -> Result<(), GatewayError> {
        let account = self.find_account(client, create.account.as_str())?;
        let mut headers = crate::gateway::headers::client_headers(&create.headers)?;
        let referred_from = match &create.refer {
            Some(session) => {
                let (key, refer_headers) = self.refer_headers(client, session)?;
                headers.extend(refer_headers);
                Some(key)
            }
            None => None,
        };
        self.check_new_session(client, &create.session)?;
        let tls = self.chat_tls(account);
        let (msrp, relay) = self.open_chat_engine(now, account, tls, e)?;
        let mut call = new_call(
            client,
            account,
            &create.session,
            create.uri.as_str(),
            None,
            now,
        );
        call.referred_from = referred_from;
        let key = self.insert_call(call, None);
        self.chat.stats.started[0] += 1;
        let origin_id = self.rng.next_u64();
        self.insert_chat(
            key,
            ChatSession::new(
                msrp,
                0,
                tls,
                relay,
                true,
                Some(Waiting::Invite {
                    uri: create.uri.as_str().to_owned(),
                    offers: None,
                    headers,
                }),
                origin_id,
            ),
        );
        log::info!("{} chat with {}", self.call_context(key), create.uri);
        if !relay {
            self.send_chat_invite(now, key, e)
                .inspect_err(|_| self.end_call(now, key, CallEnd::LocalHangup, false, e))?;
        }
        Ok(())
    }

    /// `session-create` with `media` listing chat beside audio/video: the bridge made its
    /// offers; the `m=message` line goes after them.
    pub(in crate::gateway) fn create_chat_call(
        &mut self,
        now: Instant,
        client: ClientId,
        account: crate::gateway::AccountId,
        create: SessionCreate,
        offer: BridgedOffer,
        e: &mut Engines<'_>,
    ) -> Result<(), GatewayError> {
        let tls = self.chat_tls(account);
        let index = SessionDescription::parse(offer.sip_offer.as_bytes())
            .map(|d| d.media.len())
            .unwrap_or(0);
        let (msrp, relay) = match self.open_chat_engine(now, account, tls, e) {
            Ok(pair) => pair,
            Err(err) => {
                self.ports.release(&offer.ports);
                return Err(err);
            }
        };
        let media = e.bridges.insert(Box::new(offer.bridge));
        let mut call = new_call(
            client,
            account,
            &create.session,
            create.uri.as_str(),
            Some(media),
            now,
        );
        call.ports = offer.ports;
        call.referred_from = offer.referred_from;
        let key = self.insert_call(call, Some(offer.addrs));
        self.chat.stats.started[0] += 1;
        let origin_id = self.rng.next_u64();
        self.insert_chat(
            key,
            ChatSession::new(
                msrp,
                index,
                tls,
                relay,
                false,
                Some(Waiting::Invite {
                    uri: create.uri.as_str().to_owned(),
                    offers: Some((offer.sip_offer, offer.retry_offer)),
                    headers: offer.headers,
                }),
                origin_id,
            ),
        );
        log::info!(
            "{} calling {} with chat",
            self.call_context(key),
            create.uri
        );
        if !relay {
            self.send_chat_invite(now, key, e)
                .inspect_err(|_| self.end_call(now, key, CallEnd::LocalHangup, false, e))?;
        }
        Ok(())
    }

    /// Writes our `m=message` line into the offer and sends the INVITE.
    pub(super) fn send_chat_invite(
        &mut self,
        now: Instant,
        key: CallKey,
        e: &mut Engines<'_>,
    ) -> Result<(), GatewayError> {
        let can_listen = self
            .chat
            .sessions
            .get(&key)
            .is_some_and(|c| self.can_listen(c.tls));
        let Some(chat) = self.chat.sessions.get_mut(&key) else {
            return Err(GatewayError::Internal);
        };
        let Some(Waiting::Invite {
            uri,
            offers,
            headers,
        }) = chat.waiting.take()
        else {
            return Err(GatewayError::Internal);
        };
        let engine = chat
            .msrp
            .and_then(|id| e.msrp.get(id))
            .ok_or(GatewayError::Internal)?;
        let line = our_line(
            engine.local(),
            engine.use_path(),
            chat.tls,
            offer_setup(can_listen, chat.relay),
        );
        chat.line = Some(line.clone());
        let splice = |sdp: &str| -> String {
            match SessionDescription::parse(sdp.as_bytes()) {
                Ok(d) => d.with_media_at(chat.index, line.clone()).to_sdp_string(),
                Err(_) => sdp.to_owned(),
            }
        };
        let (offer, retry) = match &offers {
            Some((offer, retry)) => (splice(offer), retry.as_deref().map(splice)),
            None => {
                let ip = local_ip(engine.local());
                let d = SessionDescription::chat_only(ip, &mut chat.origin, line);
                (d.to_sdp_string(), None)
            }
        };
        let call = self.calls.get(key.0).ok_or(GatewayError::Internal)?;
        let identity = self
            .accounts
            .get(call.account.0)
            .ok_or(GatewayError::Internal)?
            .identity();
        let options = InviteOptions {
            retry_offer: retry,
            headers,
        };
        let sip = e
            .sip
            .invite_with(now, &identity, &uri, offer, options)
            .map_err(|error| GatewayError::CannotCall { uri, error })?;
        self.bind_sip(key, sip, e);
        Ok(())
    }

    /// Files the INVITE of call `key`.
    fn bind_sip(&mut self, key: CallKey, sip: SipCallId, e: &mut Engines<'_>) {
        let sip_call_id = e.sip.call_id_of(sip).map(str::to_owned);
        if let Some(c) = self.calls.get_mut(key.0) {
            c.sip = Some(sip);
            c.sip_call_id = sip_call_id;
        }
        self.calls_by_sip.insert(sip, key);
    }

    /// The relay accepted AUTH: what waited for our path goes out.
    pub(super) fn chat_authenticated(
        &mut self,
        now: Instant,
        key: CallKey,
        use_path: Vec<MsrpUri>,
        expires: u32,
        e: &mut Engines<'_>,
    ) {
        let Some(chat) = self.chat.sessions.get_mut(&key) else {
            return;
        };
        let first = !chat.authenticated;
        chat.authenticated = true;
        log::info!(
            "{} relay Use-Path {} for {expires} s",
            self.call_context(key),
            msrp::uri::format_path(&use_path)
        );
        let Some(chat) = self.chat.sessions.get_mut(&key) else {
            return;
        };
        match chat.waiting {
            Some(Waiting::Invite { .. }) => {
                if let Err(err) = self.send_chat_invite(now, key, e) {
                    log::info!("{} INVITE not sent: {err}", self.call_context(key));
                    self.fail_call(now, key, CallEnd::LocalHangup, e);
                }
            }
            Some(Waiting::Answer { answered: true, .. }) => {
                let headers = match chat.waiting.take() {
                    Some(Waiting::Answer { headers, .. }) => headers,
                    _ => Vec::new(),
                };
                self.send_chat_answer(now, key, headers, e)
            }
            Some(Waiting::MediaAnswer { .. }) => self.send_held_answer(now, key, e),
            _ if !first => log::debug!(
                "{} AUTH refreshed; the peer keeps the path it has",
                self.call_context(key)
            ),
            _ => {}
        }
    }

    /// An answer (provisional or final) to our INVITE: the chat keeps its `m=message`
    /// line; what the bridge must see is returned (`None` for a chat-only session, and
    /// the SDP unchanged for a session without chat).
    pub(in crate::gateway) fn chat_answer_part(
        &mut self,
        key: CallKey,
        sdp: String,
    ) -> Option<String> {
        let Some(chat) = self.chat.sessions.get_mut(&key) else {
            return Some(sdp);
        };
        let Ok(d) = SessionDescription::parse(sdp.as_bytes()) else {
            return (!chat.chat_only).then_some(sdp);
        };
        if let Some(m) = d.media.get(chat.index) {
            chat.peer = PeerLine::read(m).ok();
        }
        if chat.chat_only {
            return None;
        }
        Some(d.without_media(chat.index).to_sdp_string())
    }

    /// Our INVITE was answered (2xx): the chat starts with the role the answer gave us, or
    /// ends when the answer refused or broke its line.
    pub(in crate::gateway) fn chat_accepted(
        &mut self,
        now: Instant,
        key: CallKey,
        e: &mut Engines<'_>,
    ) {
        let Some(chat) = self.chat.sessions.get_mut(&key) else {
            return;
        };
        let role = if chat.relay {
            Role::Active
        } else {
            role_after_answer(chat.peer.as_ref().and_then(|p| p.setup))
        };
        chat.role = Some(role);
        let started = match (&chat.peer, chat.msrp) {
            (Some(peer), Some(id)) => {
                let path = peer.path.clone();
                let result = e.msrp.get_mut(id).map(|c| c.start(now, role, path));
                e.msrp.touched(id);
                matches!(result, Some(Ok(())))
            }
            _ => false,
        };
        if !started {
            log::info!("{} chat refused by the answer", self.call_context(key));
            self.chat_refused(now, key, ChatStop::Refused, e);
            return;
        }
        // The peer's first SEND came (through the relay) before the 2xx.
        if self
            .chat
            .sessions
            .get(&key)
            .is_some_and(|c| c.chat_only && c.ready)
        {
            self.call_established(now, key);
        }
    }

    /// The chat cannot go on: a chat-only session ends (488), a session with audio/video
    /// keeps its call without chat and its client gets the `chat` event.
    pub(super) fn chat_refused(
        &mut self,
        now: Instant,
        key: CallKey,
        why: ChatStop,
        e: &mut Engines<'_>,
    ) {
        let Some(chat) = self.chat.sessions.get_mut(&key) else {
            return;
        };
        if chat.chat_only {
            self.fail_call(now, key, CallEnd::ChatRefused, e);
            return;
        }
        if let Some(id) = chat.msrp.take() {
            self.chat.by_msrp.remove(&id);
            e.msrp.close(now, id);
            self.chat_stopped(key, why);
        }
    }
}

/// The IP of our URI (for `c=` of a chat-only description).
fn local_ip(local: &MsrpUri) -> std::net::IpAddr {
    local
        .socket_addr()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |a| a.ip())
}

/// A new outgoing session's call record, before its INVITE.
fn new_call(
    client: ClientId,
    account: crate::gateway::AccountId,
    session: &str,
    peer: &str,
    media: Option<crate::switchboard::MediaId>,
    now: Instant,
) -> GwCall {
    GwCall::new(
        client,
        account,
        session.to_owned(),
        CallDirection::Outgoing,
        None,
        None,
        media,
        CallPorts::default(),
        peer.to_owned(),
        now,
    )
}

impl ChatSession {
    /// A chat whose engine is `msrp`, its line at `index`.
    pub(super) fn new(
        msrp: crate::switchboard::MsrpId,
        index: usize,
        tls: bool,
        relay: bool,
        chat_only: bool,
        waiting: Option<Waiting>,
        origin_id: u64,
    ) -> ChatSession {
        ChatSession {
            msrp: Some(msrp),
            index,
            line: None,
            peer: None,
            tls,
            relay,
            authenticated: false,
            waiting,
            role: None,
            ready: false,
            chat_only,
            sent: Default::default(),
            // RFC 8866 section 5.2: a sess-id of 63 bits keeps it a valid NTP-size number.
            origin: media::sdp::LocalOrigin::new(origin_id >> 1, 1),
        }
    }
}
