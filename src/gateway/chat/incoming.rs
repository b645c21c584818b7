//! Incoming chat sessions: an INVITE whose offer has an `m=message` line, for an account
//! whose client takes chat (`account-add` with `chat: true`). A chat-only offer becomes an
//! `incoming-session` with `media: ["chat"]` and no SDP, answered by `session-answer`
//! without SDP; beside audio/video the bridge translates the rest and the chat's line is
//! put back into its answer at the same index.

use std::time::Instant;

use media::sdp::{MediaSection, SessionDescription, Setup};
use msrp::Role;
use sip::stack::CallId as SipCallId;

use super::outgoing::Waiting;
use super::sdp::{answer_role, our_line, refused_line, PeerLine};
use super::ChatSession;
use crate::gateway::calls::{bare_uri, CallDirection, CallState, GwCall};
use crate::gateway::ports::CallPorts;
use crate::gateway::{
    AccountId, CallEnd, CallKey, ChatStop, ClientId, Engines, Gateway, GatewayError,
};
use crate::sylkrtc::event::{Originator, SessionState};
use crate::sylkrtc::request::{ExtraHeader, RequestError};
use crate::sylkrtc::Event;

/// What an incoming offer means for chat.
#[derive(Debug)]
pub(in crate::gateway) enum ChatSplit {
    /// No chat (none offered, or the client does not take chat): the bridge gets the SDP as
    /// it is (and refuses any `m=message` line, as for any call).
    None(String),
    /// Chat and nothing else.
    ChatOnly {
        /// The offered line.
        offer: MediaSection,
    },
    /// Chat beside audio/video: the bridge gets `sdp`, the offer without the line.
    WithMedia {
        /// The rest of the offer.
        sdp: String,
        /// Where the line was.
        index: usize,
        /// The offered line.
        offer: MediaSection,
    },
}

/// The parts of a new INVITE a chat-only session keeps.
#[derive(Debug)]
pub(in crate::gateway) struct ChatInvite {
    /// The stack's call.
    pub sip: SipCallId,
    /// The caller.
    pub from_uri: String,
    /// Its display name.
    pub from_display_name: Option<String>,
    /// The SIP Call-ID.
    pub call_id: String,
    /// The INVITE's headers the account asked for (`incoming_header_prefixes`).
    pub headers: Vec<(String, String)>,
}

impl Gateway {
    /// What to do with the chat of an incoming offer for `account`.
    pub(in crate::gateway) fn split_chat_offer(
        &self,
        account: AccountId,
        sdp: String,
    ) -> ChatSplit {
        let takes_chat = self.accounts.get(account.0).is_some_and(|a| a.chat);
        let parsed = SessionDescription::parse(sdp.as_bytes());
        let (Ok(d), true) = (parsed, takes_chat) else {
            return ChatSplit::None(sdp);
        };
        let Some(index) = d.msrp_index() else {
            return ChatSplit::None(sdp);
        };
        let offer = d.media[index].clone();
        if !d.has_active_rtp_media() {
            return ChatSplit::ChatOnly { offer };
        }
        ChatSplit::WithMedia {
            sdp: d.without_media(index).to_sdp_string(),
            index,
            offer,
        }
    }

    /// Our answer role to an offered line and whether the chat can be set up at all.
    fn plan_incoming_chat(
        &self,
        account: AccountId,
        offer: &MediaSection,
    ) -> Result<(PeerLine, Role, Setup, bool), &'static str> {
        let peer = PeerLine::read(offer)?;
        let domain = self
            .accounts
            .get(account.0)
            .map(|a| a.aor.domain().to_owned())
            .unwrap_or_default();
        let relay = self.config.chat.relay_for(&domain);
        if relay.is_some_and(|r| r.uri.secure != peer.tls) {
            return Err("the relay's transport differs from the offer's");
        }
        let (role, setup) = answer_role(peer.setup, self.can_listen(peer.tls), relay.is_some())
            .ok_or("no way to connect (a=setup)")?;
        if role == Role::Active
            && relay.is_none()
            && peer.path.first().and_then(|u| u.socket_addr()).is_none()
        {
            return Err("the peer's path does not start with an IP address");
        }
        Ok((peer, role, setup, relay.is_some()))
    }

    /// A chat-only INVITE: `incoming-session` with `media: ["chat"]`, 180, and AUTH to the
    /// relay meanwhile.
    pub(in crate::gateway) fn incoming_chat_only(
        &mut self,
        now: Instant,
        invite: ChatInvite,
        account: AccountId,
        client: ClientId,
        offer: MediaSection,
        e: &mut Engines<'_>,
    ) {
        let ChatInvite {
            sip,
            from_uri,
            from_display_name,
            call_id,
            headers,
        } = invite;
        let plan = self.plan_incoming_chat(account, &offer);
        let engine = plan.as_ref().map_err(|why| *why).and_then(|(peer, ..)| {
            self.open_chat_engine(now, account, peer.tls, e)
                .map_err(|_| "internal error")
        });
        let ((peer, role, setup, _), (msrp, relay)) = match (plan, engine) {
            (Ok(plan), Ok(engine)) => (plan, engine),
            (Err(why), _) | (_, Err(why)) => {
                log::info!("sip_call_id={call_id} chat offer unusable: {why}; declined with 488");
                if let Err(err) = e.sip.decline(now, sip, 488) {
                    log::info!("sip_call_id={call_id} 488 not sent: {err}");
                }
                return;
            }
        };
        let session = self.incoming_session_id(client, &call_id);
        let originator = Originator {
            uri: bare_uri(&from_uri),
            display_name: from_display_name,
        };
        let mut call = GwCall::new(
            client,
            account,
            session.clone(),
            CallDirection::Incoming,
            Some(sip),
            Some(call_id.clone()),
            None,
            CallPorts::default(),
            originator.uri.clone(),
            now,
        );
        call.originator = Some(originator.clone());
        let key = self.insert_call(call, None);
        self.chat.stats.started[1] += 1;
        let mut chat = ChatSession::new(
            msrp,
            0,
            peer.tls,
            relay,
            true,
            relay.then_some(Waiting::Answer {
                answered: false,
                headers: Vec::new(),
            }),
            self.rng.next_u64(),
        );
        chat.peer = Some(peer);
        chat.role = Some(role);
        chat.line = Some(setup_placeholder(setup, chat.tls));
        self.insert_chat(key, chat);
        let account_aor = self
            .accounts
            .get(account.0)
            .map(|a| a.aor.as_str().to_owned())
            .unwrap_or_default();
        self.send_event(
            client,
            &Event::IncomingSession {
                account: account_aor,
                session,
                originator,
                sdp: None,
                call_id,
                media: vec!["chat"],
                headers,
            },
        );
        log::info!("{} incoming chat from {from_uri}", self.call_context(key));
        if let Err(err) = e.sip.ring(now, sip) {
            log::info!("{} 180 not sent: {err}", self.call_context(key));
        }
    }

    /// Chat beside audio/video in an incoming offer: the chat is filed (or refused, then
    /// its line is answered with port 0); returns the `media` list for `incoming-session`.
    pub(in crate::gateway) fn attach_incoming_chat(
        &mut self,
        now: Instant,
        key: CallKey,
        index: usize,
        offer: MediaSection,
        video: bool,
        e: &mut Engines<'_>,
    ) -> Vec<&'static str> {
        let Some(account) = self.calls.get(key.0).map(|c| c.account) else {
            return Vec::new();
        };
        let mut media = vec!["audio"];
        if video {
            media.push("video");
        }
        let plan = self.plan_incoming_chat(account, &offer).and_then(|plan| {
            self.open_chat_engine(now, account, plan.0.tls, e)
                .map(|engine| (plan, engine))
                .map_err(|_| "internal error")
        });
        let chat = match plan {
            Ok(((peer, role, setup, _), (msrp, relay))) => {
                media.push("chat");
                self.chat.stats.started[1] += 1;
                let mut chat = ChatSession::new(
                    msrp,
                    index,
                    peer.tls,
                    relay,
                    false,
                    None,
                    self.rng.next_u64(),
                );
                chat.peer = Some(peer);
                chat.role = Some(role);
                chat.line = Some(setup_placeholder(setup, chat.tls));
                chat
            }
            Err(why) => {
                log::info!("{} chat offer refused: {why}", self.call_context(key));
                ChatSession {
                    msrp: None,
                    line: Some(refused_line(&offer)),
                    ..ChatSession::new_refused(index)
                }
            }
        };
        self.insert_chat(key, chat);
        media
    }

    /// `session-answer`: a chat-only session is answered without SDP; anything else needs
    /// the browser's answer.
    pub(in crate::gateway) fn answer_any_session(
        &mut self,
        now: Instant,
        client: ClientId,
        session: &str,
        sdp: Option<&str>,
        extra: &[ExtraHeader],
        e: &mut Engines<'_>,
    ) -> Result<(), GatewayError> {
        let key = self.session_key(client, session)?;
        if self.chat.sessions.get(&key).is_some_and(|c| c.chat_only) {
            let extra = crate::gateway::headers::client_headers(extra)?;
            return self.answer_chat_only(now, key, session, extra, e);
        }
        let sdp = sdp.ok_or(GatewayError::Request(RequestError::MissingField {
            request: "session-answer",
            field: "sdp",
        }))?;
        self.answer_session(now, client, session, sdp, extra, e)
    }

    /// `session-answer` of a chat-only session.
    fn answer_chat_only(
        &mut self,
        now: Instant,
        key: CallKey,
        session: &str,
        extra: Vec<(String, String)>,
        e: &mut Engines<'_>,
    ) -> Result<(), GatewayError> {
        let call = self.calls.get_mut(key.0).ok_or(GatewayError::Internal)?;
        if call.direction == CallDirection::Outgoing {
            return Err(GatewayError::CannotAnswerOutgoing(session.to_owned()));
        }
        if call.state != CallState::Connecting {
            return Err(GatewayError::AnswerState {
                session: session.to_owned(),
                state: call.state.as_str(),
            });
        }
        call.state = CallState::Accepted;
        call.answered_at = Some(now);
        self.stats.call_answered(CallDirection::Incoming);
        log::info!("{} answered", self.call_context(key));
        self.session_event(
            key,
            SessionState::Accepted {
                sdp: None,
                call_id: None,
                headers: Vec::new(),
            },
        );
        let chat = self
            .chat
            .sessions
            .get_mut(&key)
            .ok_or(GatewayError::Internal)?;
        if chat.relay && !chat.authenticated {
            // The 200 needs our path, which needs the relay's Use-Path.
            chat.waiting = Some(Waiting::Answer {
                answered: true,
                headers: extra,
            });
            return Ok(());
        }
        self.send_chat_answer(now, key, extra, e);
        Ok(())
    }

    /// The 200 of a chat-only session, then the engine starts.
    pub(super) fn send_chat_answer(
        &mut self,
        now: Instant,
        key: CallKey,
        extra: Vec<(String, String)>,
        e: &mut Engines<'_>,
    ) {
        let Some(line) = self.chat_line(key, e) else {
            return self.fail_call(now, key, CallEnd::ChatRefused, e);
        };
        let Some(chat) = self.chat.sessions.get_mut(&key) else {
            return;
        };
        chat.waiting = None;
        let ip = line
            .msrp_path()
            .and_then(|p| p.rsplit(' ').next())
            .and_then(|u| msrp::MsrpUri::parse(u).ok())
            .and_then(|u| u.socket_addr())
            .map_or(self.ports.config.address, |a| a.ip());
        let sdp = SessionDescription::chat_only(ip, &mut chat.origin, line).to_sdp_string();
        let Some(sip) = self.calls.get(key.0).and_then(|c| c.sip) else {
            return;
        };
        if let Err(err) = e.sip.answer_with(now, sip, sdp, extra) {
            log::info!("{} 200 not sent: {err}", self.call_context(key));
            return self.fail_call(now, key, CallEnd::ChatRefused, e);
        }
        self.start_incoming_chat(now, key, e);
    }

    /// `session-answer` of a session with audio/video beside a chat whose relay has not
    /// accepted AUTH yet: the 200 waits (our path in it needs the relay's Use-Path, RFC 4976
    /// section 6). Gives the answer back when there is nothing to wait for.
    pub(in crate::gateway) fn hold_answer_for_relay(
        &mut self,
        key: CallKey,
        sip_answer: String,
        headers: Vec<(String, String)>,
    ) -> Option<(String, Vec<(String, String)>)> {
        let Some(chat) = self
            .chat
            .sessions
            .get_mut(&key)
            .filter(|c| c.msrp.is_some() && c.relay && !c.authenticated && !c.chat_only)
        else {
            return Some((sip_answer, headers));
        };
        chat.waiting = Some(Waiting::MediaAnswer {
            sip_answer,
            headers,
        });
        log::info!("{} 200 held until the relay's AUTH", self.call_context(key));
        None
    }

    /// The held 200 goes out: with our line after AUTH succeeded, at port 0 after it
    /// failed (the chat's end was reported; the call goes on).
    pub(super) fn send_held_answer(&mut self, now: Instant, key: CallKey, e: &mut Engines<'_>) {
        let Some(chat) = self.chat.sessions.get_mut(&key) else {
            return;
        };
        let Some(Waiting::MediaAnswer {
            sip_answer,
            headers,
        }) = chat.waiting.take()
        else {
            return;
        };
        let Some(sip) = self.calls.get(key.0).and_then(|c| c.sip) else {
            return;
        };
        if let Err(err) = self.send_answer(now, key, sip, sip_answer, headers, e) {
            log::info!("{} 200 not sent: {err}", self.call_context(key));
            self.fail_call(now, key, CallEnd::LocalHangup, e);
        }
    }

    /// Our answer's `m=message` line (now that the relay's Use-Path is known), filed in the
    /// chat; `None` when the chat cannot be answered.
    fn chat_line(&mut self, key: CallKey, e: &mut Engines<'_>) -> Option<MediaSection> {
        let chat = self.chat.sessions.get_mut(&key)?;
        let setup = chat.line.as_ref().and_then(MediaSection::setup_role)?;
        let engine = e.msrp.get(chat.msrp?)?;
        if chat.relay && !chat.authenticated {
            return None;
        }
        let line = our_line(engine.local(), engine.use_path(), chat.tls, setup);
        chat.line = Some(line.clone());
        Some(line)
    }

    /// The browser's answer translated by the bridge: our `m=message` line goes back at the
    /// offer's index (port 0 when the chat was refused or its relay is not ready).
    pub(in crate::gateway) fn chat_splice_answer(
        &mut self,
        now: Instant,
        key: CallKey,
        sip_answer: String,
        e: &mut Engines<'_>,
    ) -> String {
        let Some(chat) = self.chat.sessions.get(&key) else {
            return sip_answer;
        };
        let index = chat.index;
        let line = match self.chat_line(key, e) {
            Some(line) => line,
            None => {
                let refused = self
                    .chat
                    .sessions
                    .get(&key)
                    .and_then(|c| c.line.clone())
                    .map(|l| refused_line(&l));
                self.chat_refused(now, key, ChatStop::NotStarted, e);
                if let Some(c) = self.chat.sessions.get_mut(&key) {
                    c.line = refused.clone();
                }
                match refused {
                    Some(l) => l,
                    None => return sip_answer,
                }
            }
        };
        match SessionDescription::parse(sip_answer.as_bytes()) {
            Ok(d) => d.with_media_at(index, line).to_sdp_string(),
            Err(_) => sip_answer,
        }
    }

    /// Our 200 went out: the engine starts (active: connects and binds; passive: waits).
    pub(in crate::gateway) fn start_incoming_chat(
        &mut self,
        now: Instant,
        key: CallKey,
        e: &mut Engines<'_>,
    ) {
        let Some(chat) = self.chat.sessions.get(&key) else {
            return;
        };
        let (Some(id), Some(peer), Some(role)) = (chat.msrp, chat.peer.as_ref(), chat.role) else {
            return;
        };
        let result = e
            .msrp
            .get_mut(id)
            .map(|c| c.start(now, role, peer.path.clone()));
        e.msrp.touched(id);
        if !matches!(result, Some(Ok(()))) {
            log::info!("{} chat cannot start: {result:?}", self.call_context(key));
            self.chat_refused(now, key, ChatStop::NotStarted, e);
        }
    }
}

/// Holds the `a=setup` our answer will carry until the line can be written (and the
/// protocol a refusal must repeat, RFC 3264 section 6).
fn setup_placeholder(setup: Setup, tls: bool) -> MediaSection {
    let mut m = MediaSection::new(
        media::sdp::MediaType::Other("message".to_owned()),
        9,
        if tls { "TCP/TLS/MSRP" } else { "TCP/MSRP" },
        vec!["*".to_owned()],
    );
    m.attributes
        .push(media::sdp::Attribute::new("setup", setup.as_str()));
    m
}

impl ChatSession {
    /// A refused chat: no engine, its line answered with port 0.
    fn new_refused(index: usize) -> ChatSession {
        ChatSession {
            msrp: None,
            index,
            line: None,
            peer: None,
            tls: false,
            relay: false,
            authenticated: false,
            waiting: None,
            role: None,
            ready: false,
            chat_only: false,
            sent: Default::default(),
            origin: media::sdp::LocalOrigin::new(1, 1),
        }
    }
}
