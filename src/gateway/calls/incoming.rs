//! Incoming calls: an INVITE for a registration's Contact -> `incoming-session`, and
//! `session-answer` -> 200.

use std::time::Instant;

use media::bridge::Bridge;
use media::error::BridgeError;
use sip::registration::RegId;
use sip::stack::CallId as SipCallId;

use super::{bare_uri, CallDirection, CallState, GwCall};
use crate::gateway::chat::{ChatInvite, ChatSplit};
use crate::gateway::ports::offers_video;
use crate::gateway::{headers, CallEnd, CallKey, ClientId, Engines, Gateway, GatewayError};
use crate::sylkrtc::event::{Originator, SessionState};
use crate::sylkrtc::Event;

/// What the stack reported of a new INVITE.
#[derive(Debug)]
pub(super) struct IncomingInvite {
    /// The stack's call.
    pub sip: SipCallId,
    /// The registration whose Contact was called.
    pub reg: RegId,
    /// The caller's URI (From).
    pub from_uri: String,
    /// The caller's display name.
    pub from_display_name: Option<String>,
    /// The SIP Call-ID.
    pub call_id: String,
    /// The offer; `None`: our offer goes in the 200, the answer comes in the ACK.
    pub sdp: Option<String>,
    /// The INVITE's header fields.
    pub headers: sip::msg::Headers,
}

impl Gateway {
    /// A new INVITE: offer it to the browser of the account whose registration was called.
    pub(super) fn incoming_call(
        &mut self,
        now: Instant,
        invite: IncomingInvite,
        e: &mut Engines<'_>,
    ) {
        let IncomingInvite {
            sip,
            reg,
            from_uri,
            from_display_name,
            call_id,
            sdp,
            headers: sip_headers,
        } = invite;
        let decline = |e: &mut Engines<'_>, code: u16| {
            log::info!("sip_call_id={call_id} incoming call declined with {code}");
            if let Err(err) = e.sip.decline(now, sip, code) {
                log::info!("sip_call_id={call_id} {code} not sent: {err}");
            }
        };
        let Some(&account) = self.registration_owner.get(&reg) else {
            return decline(e, 480);
        };
        let Some(client) = self.accounts.get(account.0).map(|a| a.client) else {
            return decline(e, 480);
        };
        let live = self
            .clients
            .get(client.0)
            .map_or(0, |c| c.sessions.live.len());
        if live >= self.ports.config.max_calls_per_connection
            || self.calls.len() >= self.ports.config.max_calls
        {
            return decline(e, 503);
        }
        // An m=message line for a client that takes chat (chat/): chat alone is a session
        // without bridge; beside audio/video the bridge gets the offer without it.
        let (sdp, chat) = match sdp.map(|sdp| self.split_chat_offer(account, sdp)) {
            Some(ChatSplit::ChatOnly { offer }) => {
                let invite = ChatInvite {
                    sip,
                    from_uri,
                    from_display_name,
                    call_id,
                    headers: self.reported_headers(account, &sip_headers),
                };
                return self.incoming_chat_only(now, invite, account, client, offer, e);
            }
            Some(ChatSplit::WithMedia { sdp, index, offer }) => (Some(sdp), Some((index, offer))),
            Some(ChatSplit::None(sdp)) => (Some(sdp), None),
            None => (None, None),
        };
        // A late offer (no SDP): the browser is offered what we can do, video included
        // when a pair is free (the browser's answer decides whether it is used).
        let video = sdp.as_deref().is_none_or(offers_video);
        let Some((ports, addrs)) = self.ports.allocate(video) else {
            return decline(e, 503);
        };
        let mut config = self.ports.bridge_config(addrs, self.wall, self.rng.fork());
        // An INVITE without SDP (RFC 3261 section 13.2.1): the browser still needs an offer
        // before the user answers, so it gets one made from what we can do; its answer
        // becomes our offer in the 200 and the SIP answer arrives in the ACK.
        let is_late_offer = sdp.is_none();
        let sdp = match sdp {
            Some(sdp) => sdp,
            None => match Bridge::capabilities_offer(now, &mut config) {
                Ok(sdp) => sdp,
                Err(err) => {
                    log::warn!("sip_call_id={call_id} no offer for the browser: {err}");
                    self.ports.release(&ports);
                    return decline(e, 500);
                }
            },
        };
        let (bridge, webrtc_offer) = match Bridge::new_offerer(now, config, &sdp) {
            Ok(pair) => pair,
            Err(err) => {
                log::info!("sip_call_id={call_id} offer unusable: {err}");
                self.ports.release(&ports);
                return decline(e, 488);
            }
        };
        let session = self.incoming_session_id(client, &call_id);
        let originator = Originator {
            uri: bare_uri(&from_uri),
            display_name: from_display_name,
        };
        let media = e.bridges.insert(Box::new(bridge));
        let mut call = GwCall::new(
            client,
            account,
            session.clone(),
            CallDirection::Incoming,
            Some(sip),
            Some(call_id.clone()),
            Some(media),
            ports,
            originator.uri.clone(),
            now,
        );
        call.originator = Some(originator.clone());
        call.is_late_offer = is_late_offer;
        let key = self.insert_call(call, Some(addrs));
        let media = match chat {
            Some((index, offer)) => self.attach_incoming_chat(now, key, index, offer, video, e),
            None => Vec::new(),
        };
        let account_aor = self
            .accounts
            .get(account.0)
            .map(|a| a.aor.as_str().to_owned())
            .unwrap_or_default();
        let reported = self.reported_headers(account, &sip_headers);
        self.send_event(
            client,
            &Event::IncomingSession {
                account: account_aor,
                session,
                originator,
                sdp: Some(webrtc_offer),
                call_id: call_id.clone(),
                media,
                headers: reported,
            },
        );
        log::info!("{} incoming from {}", self.call_context(key), from_uri);
        if let Err(err) = e.sip.ring(now, sip) {
            log::info!("{} 180 not sent: {err}", self.call_context(key));
        }
    }

    /// SylkServer's `incoming_header_prefixes`: the INVITE's headers the account asked for.
    pub(in crate::gateway) fn reported_headers(
        &self,
        account: crate::gateway::AccountId,
        sip_headers: &sip::msg::Headers,
    ) -> Vec<(String, String)> {
        self.accounts
            .get(account.0)
            .map(|a| headers::matching(sip_headers, &a.incoming_header_prefixes))
            .unwrap_or_default()
    }

    /// `session-answer`: the browser takes an incoming call; `extra` go in the 200.
    pub(in crate::gateway) fn answer_session(
        &mut self,
        now: Instant,
        client: ClientId,
        session: &str,
        sdp: &str,
        extra: &[crate::sylkrtc::request::ExtraHeader],
        e: &mut Engines<'_>,
    ) -> Result<(), GatewayError> {
        let extra = headers::client_headers(extra)?;
        let key = self.session_key(client, session)?;
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
        let media = call.media.ok_or(GatewayError::Internal)?;
        let bridge = e.bridges.get_mut(media).ok_or(GatewayError::Internal)?;
        // For an INVITE without SDP what goes into the 200 is our offer (RFC 3264 section 4),
        // with every SDES key when it is RTP/SAVP.
        let sip_answer = if call.is_late_offer {
            bridge.apply_webrtc_answer_as_offer(now, sdp)
        } else {
            bridge.apply_webrtc_answer(now, sdp)
        };
        e.bridges.touched(media);
        let sip_answer = sip_answer.map_err(GatewayError::Sdp)?;
        let sip = call.sip.ok_or(GatewayError::Internal)?;
        call.state = CallState::Accepted;
        call.answered_at = Some(now);
        if call.is_late_offer {
            call.late_offer = Some(sip_answer.clone());
        }
        // A chat whose relay has not accepted AUTH yet holds the 200: our path in it needs
        // the relay's Use-Path (RFC 4976 section 6; chat/).
        if let Some((sip_answer, extra)) = self.hold_answer_for_relay(key, sip_answer, extra) {
            self.send_answer(now, key, sip, sip_answer, extra, e)
                .map_err(|error| GatewayError::CannotAnswer {
                    session: session.to_owned(),
                    error,
                })?;
        }
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
        Ok(())
    }

    /// The 200 with the bridge's answer (and a chat's `m=message` line put back at the
    /// offer's index, chat/); the chat's engine starts.
    pub(in crate::gateway) fn send_answer(
        &mut self,
        now: Instant,
        key: CallKey,
        sip: SipCallId,
        sip_answer: String,
        extra: Vec<(String, String)>,
        e: &mut Engines<'_>,
    ) -> Result<(), sip::call::CallError> {
        let sip_answer = self.chat_splice_answer(now, key, sip_answer, e);
        e.sip.answer_with(now, sip, sip_answer, extra)?;
        self.start_incoming_chat(now, key, e);
        Ok(())
    }

    /// The ACK for our 200; for an INVITE without SDP it carries the SIP answer.
    pub(super) fn call_confirmed(
        &mut self,
        now: Instant,
        sip: SipCallId,
        sdp_in_ack: Option<String>,
        e: &mut Engines<'_>,
    ) {
        let Some((key, call)) = self.call_of_sip(sip) else {
            return;
        };
        let Some(our_offer) = call.late_offer.take() else {
            return;
        };
        let Some(media) = call.media else { return };
        let result = match (sdp_in_ack, e.bridges.get_mut(media)) {
            (Some(answer), Some(bridge)) => {
                bridge.apply_sip_answer_to_our_offer(now, &our_offer, &answer)
            }
            _ => Err(BridgeError::WrongState("ACK without the SDP answer")),
        };
        e.bridges.touched(media);
        if let Err(err) = result {
            log::info!(
                "{} late-offer answer unusable: {err}",
                self.call_context(key)
            );
            self.fail_call(now, key, CallEnd::AnswerUnusable(err), e);
        }
    }

    /// The session id of an incoming call: SylkServer (since 2020) derives it from the
    /// SIP Call-ID as a UUID-formatted MD5, stable across the user's devices.
    pub(in crate::gateway) fn incoming_session_id(
        &self,
        client: ClientId,
        call_id: &str,
    ) -> String {
        use md5::Digest;
        let mut input = call_id.to_owned();
        loop {
            let d = md5::Md5::digest(input.as_bytes());
            let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
            let id = format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            );
            let taken = self
                .clients
                .get(client.0)
                .is_some_and(|c| c.sessions.live.contains_key(&id));
            if !taken {
                return id;
            }
            // The same Call-ID twice on one connection (a fork loop): derive another id.
            input.push('+');
        }
    }
}
