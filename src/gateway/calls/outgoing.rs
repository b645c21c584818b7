//! Outgoing calls: `session-create` -> INVITE, and the SIP answers that come back.

use std::time::Instant;

use media::bridge::Bridge;
use media::error::BridgeError;
use sip::stack::{CallId as SipCallId, InviteOptions};

use super::{CallDirection, CallState, GwCall};
use crate::config::SipSrtp;
use crate::gateway::ports::offers_video;
use crate::gateway::{headers, CallEnd, ClientId, Engines, Gateway, GatewayError};
use crate::sylkrtc::event::SessionState;
use crate::sylkrtc::request::SessionCreate;
use crate::sylkrtc::Dialect;

impl Gateway {
    /// `session-create`: an outgoing call.
    pub(in crate::gateway) fn create_session(
        &mut self,
        now: Instant,
        client: ClientId,
        create: SessionCreate,
        e: &mut Engines<'_>,
    ) -> Result<(), GatewayError> {
        let account = self.find_account(client, create.account.as_str())?;
        if self.draining {
            return Err(GatewayError::Draining);
        }
        let mut extra = headers::client_headers(&create.headers)?;
        let referred_from = match &create.refer {
            Some(session) => {
                let (key, refer_headers) = self.refer_headers(client, session)?;
                extra.extend(refer_headers);
                Some(key)
            }
            None => None,
        };
        let c = self.clients.get(client.0).ok_or(GatewayError::Internal)?;
        let log_id = c.log_id;
        if c.sessions.live.contains_key(&create.session) {
            return Err(GatewayError::SessionInUse(create.session));
        }
        let per_client = self.ports.config.max_calls_per_connection;
        if c.sessions.live.len() >= per_client {
            return Err(GatewayError::TooManySessions(per_client));
        }
        if self.calls.len() >= self.ports.config.max_calls {
            return Err(GatewayError::GatewayFull);
        }
        let (ports, addrs) = self
            .ports
            .allocate(offers_video(&create.sdp))
            .ok_or(GatewayError::NoMediaPorts)?;
        let config = self.ports.bridge_config(addrs, self.wall, self.rng.fork());
        let (mut bridge, sip_offer) = match Bridge::new_answerer(now, config, &create.sdp) {
            Ok(pair) => pair,
            Err(err) => {
                self.ports.release(&ports);
                return Err(GatewayError::Sdp(err));
            }
        };
        // media.sip_srtp = "auto": a callee that insists on SRTP refuses the plain offer with
        // 488 (RFC 3261 section 21.4.26); the stack then sends the INVITE once more with this
        // RTP/SAVP + SDES offer (RFC 4568) and reports `OfferRetried`.
        let retry_offer = match self.ports.config.sip_srtp {
            SipSrtp::Auto => match bridge.prepare_sdes_retry() {
                Ok(sdp) => Some(sdp),
                Err(err) => {
                    log::warn!(
                        "conn={log_id} call={} no SRTP retry offer: {err}",
                        create.session
                    );
                    None
                }
            },
            SipSrtp::Mandatory | SipSrtp::Off => None,
        };
        if create.chat {
            // Chat beside the media: the m=message line joins the offer (chat/).
            let offer = crate::gateway::chat::BridgedOffer {
                bridge,
                ports,
                addrs,
                sip_offer,
                retry_offer,
                headers: extra,
                referred_from,
            };
            return self.create_chat_call(now, client, account, create, offer, e);
        }
        let identity = self
            .accounts
            .get(account.0)
            .ok_or(GatewayError::Internal)?
            .identity();
        let options = InviteOptions {
            retry_offer,
            headers: extra,
        };
        let sip = match e
            .sip
            .invite_with(now, &identity, create.uri.as_str(), sip_offer, options)
        {
            Ok(sip) => sip,
            Err(error) => {
                self.ports.release(&ports);
                return Err(GatewayError::CannotCall {
                    uri: create.uri.as_str().to_owned(),
                    error,
                });
            }
        };
        let media = e.bridges.insert(Box::new(bridge));
        let sip_call_id = e.sip.call_id_of(sip).map(str::to_owned);
        let mut call = GwCall::new(
            client,
            account,
            create.session.clone(),
            CallDirection::Outgoing,
            Some(sip),
            sip_call_id,
            Some(media),
            ports,
            create.uri.as_str().to_owned(),
            now,
        );
        call.referred_from = referred_from;
        let key = self.insert_call(call, Some(addrs));
        log::info!("{} calling {}", self.call_context(key), create.uri);
        Ok(())
    }

    /// A provisional response to our INVITE; with SDP it carries early media (RFC 3960).
    pub(super) fn call_progress(
        &mut self,
        now: Instant,
        sip: SipCallId,
        code: u16,
        sdp: Option<String>,
        e: &mut Engines<'_>,
    ) {
        let Some((key, call)) = self.call_of_sip(sip) else {
            return;
        };
        let referred_from = call.referred_from;
        let first = !call.progress_sent;
        call.progress_sent = true;
        let since_start = now.saturating_duration_since(call.started);
        if call.state == CallState::Connecting {
            call.state = CallState::Progress;
        }
        if first {
            self.stats.first_provisional(since_start);
            self.session_event(key, SessionState::Progress);
        }
        self.session_event(
            key,
            if code == 180 {
                SessionState::Ringing
            } else {
                SessionState::Proceeding { code }
            },
        );
        if code > 100 {
            let reason = sip::call::reason_phrase(code);
            self.report_transfer_progress(now, referred_from, code, reason, e);
        }
        // A chat keeps its m=message line (chat/); the bridge gets the rest.
        let Some(sdp) = sdp.and_then(|sdp| self.chat_answer_part(key, sdp)) else {
            return;
        };
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        let Some(media) = call.media else { return };
        if call.early_answer.is_some() {
            // Another early answer (a forked early dialog, RFC 3261 section 12.1.2): the
            // SIP side follows the latest one with SDP; the browser keeps its media.
            if call.early_sdp.as_deref() != Some(sdp.as_str()) {
                if let Some(bridge) = e.bridges.get_mut(media) {
                    match bridge.apply_other_sip_answer(now, &sdp) {
                        Ok(()) => call.early_sdp = Some(sdp),
                        Err(err) => log::info!("early answer of another fork unusable: {err}"),
                    }
                }
                e.bridges.touched(media);
            }
            return;
        }
        let Some(bridge) = e.bridges.get_mut(media) else {
            return;
        };
        let answer = bridge.apply_sip_answer(now, &sdp);
        e.bridges.touched(media);
        match answer {
            Ok(answer) => {
                call.early_answer = Some(answer.clone());
                call.early_sdp = Some(sdp);
                let call_id = call.sip_call_id.clone().unwrap_or_default();
                self.session_event(
                    key,
                    SessionState::EarlyMedia {
                        sdp: answer,
                        call_id,
                    },
                );
            }
            Err(err) => {
                log::info!("{} early media SDP unusable: {err}", self.call_context(key));
                self.fail_call(now, key, CallEnd::AnswerUnusable(err), e);
            }
        }
    }

    /// The callee refused our plain offer with 488 and the stack re-sent the INVITE with the
    /// RTP/SAVP one (`media.sip_srtp = "auto"`): the answer to come answers that offer. The
    /// browser hears nothing of it; it keeps its progress events.
    pub(super) fn call_offer_retried(
        &mut self,
        now: Instant,
        sip: SipCallId,
        code: u16,
        e: &mut Engines<'_>,
    ) {
        let Some((key, call)) = self.call_of_sip(sip) else {
            return;
        };
        let switched = match call.media.and_then(|m| e.bridges.get_mut(m)) {
            Some(bridge) => bridge.use_sdes_retry(),
            None => Err(BridgeError::WrongState("call without bridge")),
        };
        match switched {
            Ok(()) => log::info!(
                "{} {code} to the plain offer, INVITE sent again with SRTP (SDES)",
                self.call_context(key)
            ),
            Err(err) => {
                log::warn!(
                    "{} cannot switch to the SRTP offer: {err}",
                    self.call_context(key)
                );
                self.fail_call(now, key, CallEnd::SrtpRetryFailed, e);
            }
        }
    }

    /// The 2xx to our INVITE (the ACK is sent by the stack).
    pub(super) fn call_accepted(
        &mut self,
        now: Instant,
        sip: SipCallId,
        sdp: Option<String>,
        sip_headers: &sip::msg::Headers,
        e: &mut Engines<'_>,
    ) {
        let Some((key, call)) = self.call_of_sip(sip) else {
            return;
        };
        call.state = CallState::Accepted;
        call.answered_at = Some(now);
        self.stats.call_answered(CallDirection::Outgoing);
        // A chat keeps its m=message line (chat/); the bridge gets the rest.
        let sdp = sdp.and_then(|sdp| self.chat_answer_part(key, sdp));
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        let call_id = call.sip_call_id.clone();
        let referred_from = call.referred_from;
        let account = call.account;
        let prefixes = self
            .accounts
            .get(account.0)
            .map(|a| a.incoming_header_prefixes.clone())
            .unwrap_or_default();
        // SylkServer reports the 2xx's headers the account asked for in `accepted`.
        let reported = headers::matching(sip_headers, &prefixes);
        self.report_transfer_progress(now, referred_from, 200, "OK", e);
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        // A sylkRTC-2 browser already has the answer from early-media (SylkServer
        // SS@d4ad858). sylkRTC-1 has no early-media event: its only answer is the one in
        // `accepted`, so it gets the early answer there (the 2xx's SDP must match it, RFC
        // 3261 section 13.2.1 and RFC 6337 section 3.1).
        if let Some(early) = call.early_answer.clone() {
            // A 2xx from another fork than the early media's, or with another answer: the
            // SIP side follows it (RFC 3261 section 13.2.1); the browser keeps its media.
            let other = sdp.filter(|s| call.early_sdp.as_deref() != Some(s.as_str()));
            if let (Some(sdp), Some(media)) = (other, call.media) {
                if let Some(bridge) = e.bridges.get_mut(media) {
                    if let Err(err) = bridge.apply_other_sip_answer(now, &sdp) {
                        log::info!("2xx answer unusable after early media: {err}");
                    }
                }
                e.bridges.touched(media);
            }
            let client = call.client;
            let v1 = self
                .clients
                .get(client.0)
                .is_some_and(|c| c.dialect == Dialect::V1);
            let sdp = v1.then_some(early);
            self.session_event(
                key,
                SessionState::Accepted {
                    sdp,
                    call_id,
                    headers: reported,
                },
            );
            self.chat_accepted(now, key, e);
            return;
        }
        // A chat-only session has no browser SDP at all.
        let Some(media) = call.media else {
            self.session_event(
                key,
                SessionState::Accepted {
                    sdp: None,
                    call_id,
                    headers: reported,
                },
            );
            self.chat_accepted(now, key, e);
            return;
        };
        let answer = match (sdp, e.bridges.get_mut(media)) {
            (Some(sdp), Some(bridge)) => bridge.apply_sip_answer(now, &sdp),
            _ => Err(BridgeError::WrongState("2xx without SDP")),
        };
        e.bridges.touched(media);
        match answer {
            Ok(answer) => {
                self.session_event(
                    key,
                    SessionState::Accepted {
                        sdp: Some(answer),
                        call_id,
                        headers: reported,
                    },
                );
                self.chat_accepted(now, key, e);
            }
            Err(err) => {
                log::info!("{} SIP answer unusable: {err}", self.call_context(key));
                self.fail_call(now, key, CallEnd::AnswerUnusable(err), e);
            }
        }
    }
}
