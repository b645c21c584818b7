//! Renegotiation of a running call, both ways (SylkServer HEAD's `session-update` and
//! `update` event, spec section 7.5).
//!
//! The browser offers (`session-update` with no update of ours pending): the bridge turns
//! its offer into a SIP re-offer (a video socket pair is bound first when it adds video),
//! a re-INVITE goes out, and its outcome becomes `update` `accepted` with the browser's
//! answer, or `failed` with the SIP status; after an acked `session-update` one of the two
//! always follows (sylkrtc.js 1.8 waits for it without a timeout), even when the call ends
//! first. The SIP side offers (re-INVITE or UPDATE): an offer that changes nothing the
//! browser sees is answered at once; otherwise a sylkRTC-2 browser of an answered call gets
//! `update` `received` with our offer and answers with `session-update`, whose answer goes
//! in the 200. Without that answer in time, and for sylkRTC-1 clients and calls not answered
//! yet, the gateway answers with the browser's media as it is.

use std::time::Instant;

use media::bridge::SipReoffer;
use sip::stack::CallId as SipCallId;

use super::{CallKey, CallState};
use crate::gateway::ports::offers_video;
use crate::gateway::{headers, Engines, Gateway, GatewayError};
use crate::sylkrtc::event::UpdateState;
use crate::sylkrtc::request::SessionUpdate;
use crate::sylkrtc::{Dialect, Event};

/// A renegotiation of a call under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::gateway) enum Update {
    /// The browser offered; our re-INVITE is out.
    Local,
    /// The SIP side offered; the browser was sent `update` `received`.
    Remote(RemoteOffer),
}

/// Where the SIP offer the browser is to answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::gateway) enum RemoteOffer {
    /// A re-INVITE or UPDATE in the call's dialog.
    InDialog,
    /// A new INVITE that replaces the call's dialog (RFC 3891).
    Replacing(SipCallId),
}

impl Gateway {
    /// `session-update`: a new offer of the browser, or its answer to our `received`.
    pub(in crate::gateway) fn update_session(
        &mut self,
        now: Instant,
        client: crate::gateway::ClientId,
        update: SessionUpdate,
        e: &mut Engines<'_>,
    ) -> Result<(), GatewayError> {
        let key = self.session_key(client, &update.session)?;
        let extra = headers::client_headers(&update.headers)?;
        let call = self.calls.get(key.0).ok_or(GatewayError::Internal)?;
        if call.media.is_none() {
            return Err(GatewayError::ChatOnlySession {
                action: "update",
                session: update.session,
            });
        }
        match call.update {
            Some(Update::Remote(via)) => self.browser_answers(now, key, via, &update.sdp, extra, e),
            Some(Update::Local) => Err(GatewayError::UpdatePending(update.session)),
            None => self.browser_offers(now, key, &update.sdp, extra, e),
        }
    }

    /// The browser re-offers: our re-INVITE goes out.
    fn browser_offers(
        &mut self,
        now: Instant,
        key: CallKey,
        sdp: &str,
        extra: Vec<(String, String)>,
        e: &mut Engines<'_>,
    ) -> Result<(), GatewayError> {
        let call = self.calls.get(key.0).ok_or(GatewayError::Internal)?;
        if !matches!(call.state, CallState::Accepted | CallState::Established) {
            return Err(GatewayError::CallState {
                action: "update",
                session: call.session.clone(),
                state: call.state.as_str(),
            });
        }
        let sip = call.sip.ok_or(GatewayError::Internal)?;
        if offers_video(sdp) {
            self.ensure_video_socket(key, e);
        }
        let media = self.calls.get(key.0).ok_or(GatewayError::Internal)?.media;
        let media = media.ok_or(GatewayError::Internal)?;
        let bridge = e.bridges.get_mut(media).ok_or(GatewayError::Internal)?;
        let sip_offer = bridge
            .handle_webrtc_reoffer(now, sdp)
            .map_err(GatewayError::UpdateSdp)?;
        e.bridges.touched(media);
        // A chat's m=message line stays in the re-offer (chat/reoffer.rs).
        let sip_offer = self.chat_restore(key, sip_offer);
        if let Err(error) = e.sip.reinvite(now, sip, sip_offer, extra) {
            if let Some(bridge) = e.bridges.get_mut(media) {
                bridge.cancel_renegotiation();
            }
            return Err(GatewayError::CannotSend {
                action: "update",
                error: error.to_string(),
            });
        }
        if let Some(call) = self.calls.get_mut(key.0) {
            call.update = Some(Update::Local);
        }
        Ok(())
    }

    /// Binds a SIP video socket pair for a call that has none, so a renegotiation may carry
    /// video. Without a free pair the call goes on with audio only (video is refused).
    pub(super) fn ensure_video_socket(&mut self, key: CallKey, e: &mut Engines<'_>) {
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        let Some(media) = call.media else {
            return;
        };
        if e.bridges
            .get_mut(media)
            .is_none_or(|b| b.has_sip_video_socket())
        {
            return;
        }
        let Some(addr) = self.ports.allocate_video(&mut call.ports) else {
            log::info!("session {}: no port pair for video", call.session);
            return;
        };
        if let Some(bridge) = e.bridges.get_mut(media) {
            bridge.add_sip_video_socket(addr);
        }
        self.outputs
            .push_back(crate::gateway::GatewayCommand::OpenMedia {
                media,
                sockets: crate::gateway::ports::MediaPorts::pair_sockets(addr),
            });
    }

    /// The 2xx to our re-INVITE: the browser gets the answer.
    pub(super) fn call_reoffer_answered(
        &mut self,
        now: Instant,
        sip: SipCallId,
        sdp: Option<String>,
        e: &mut Engines<'_>,
    ) {
        let Some((key, call)) = self.call_of_sip(sip) else {
            return;
        };
        if call.update != Some(Update::Local) {
            return;
        }
        call.update = None;
        let Some(media) = call.media else {
            return;
        };
        // The bridge answers for audio/video only (chat/reoffer.rs).
        let sdp = sdp.map(|sdp| self.chat_strip(now, key, &sdp, e));
        let result = match (sdp, e.bridges.get_mut(media)) {
            (Some(sdp), Some(bridge)) => bridge.apply_sip_reanswer(now, &sdp),
            (None, Some(bridge)) => {
                bridge.cancel_renegotiation();
                Err(media::error::BridgeError::WrongState("2xx without SDP"))
            }
            _ => Err(media::error::BridgeError::Closed),
        };
        e.bridges.touched(media);
        match result {
            Ok(answer) => self.update_event(key, UpdateState::Accepted, Some(answer), None),
            Err(err) => {
                // The SIP side took an answer the bridge cannot use: the media stays as it
                // was (a later offer of either side can bring them together again).
                log::info!("session update: SIP answer unusable: {err}");
                let reason = format!("488 Not Acceptable Here ({err})");
                self.update_event(key, UpdateState::Failed, None, Some(reason));
            }
        }
    }

    /// Our re-INVITE was refused: the browser's offer failed, the media stays.
    pub(super) fn call_reoffer_failed(
        &mut self,
        sip: SipCallId,
        code: u16,
        reason: &str,
        e: &mut Engines<'_>,
    ) {
        let Some((key, call)) = self.call_of_sip(sip) else {
            return;
        };
        if call.update != Some(Update::Local) {
            return;
        }
        call.update = None;
        if let Some(bridge) = call.media.and_then(|m| e.bridges.get_mut(m)) {
            bridge.cancel_renegotiation();
        }
        self.update_event(
            key,
            UpdateState::Failed,
            None,
            Some(format!("{code} {reason}")),
        );
    }

    /// A SIP re-offer (re-INVITE or UPDATE).
    pub(super) fn sip_reoffer(
        &mut self,
        now: Instant,
        sip: SipCallId,
        sdp: &str,
        e: &mut Engines<'_>,
    ) {
        let Some((key, _)) = self.call_of_sip(sip) else {
            return;
        };
        if self.is_chat_only(key) {
            return self.chat_only_reoffer(now, sip, sdp, e);
        }
        self.take_sip_offer(now, key, sip, RemoteOffer::InDialog, sdp, e);
    }

    /// An offer from the SIP side for call `key`, arriving on SIP call `from` (its own
    /// dialog, or an INVITE that replaces it).
    pub(super) fn take_sip_offer(
        &mut self,
        now: Instant,
        key: CallKey,
        from: SipCallId,
        via: RemoteOffer,
        sdp: &str,
        e: &mut Engines<'_>,
    ) {
        // The bridge sees audio/video only; a chat's line comes back in our answer.
        let sdp = &self.chat_strip(now, key, sdp, e);
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        let parsed = media::sdp::SessionDescription::parse(sdp.as_bytes());
        call.held_by_sip = parsed.as_ref().is_ok_and(|d| d.is_hold());
        let answered = matches!(call.state, CallState::Accepted | CallState::Established);
        let dialect = self
            .clients
            .get(call.client.0)
            .map_or(Dialect::V1, |c| c.dialect);
        if offers_video(sdp) && answered {
            self.ensure_video_socket(key, e);
        }
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        let Some(media) = call.media else {
            // No bridge (a chat-only session): refused, the session stays as it was.
            let refused = Err(media::error::BridgeError::Closed);
            return self.answer_sip_offer(now, key, from, via, refused, Vec::new(), e);
        };
        let Some(bridge) = e.bridges.get_mut(media) else {
            return;
        };
        let reoffer = bridge.handle_sip_reoffer(now, sdp);
        let answer = match reoffer {
            Ok(SipReoffer::Unchanged(answer)) => Ok(answer),
            Ok(SipReoffer::Browser(offer)) if answered && dialect == Dialect::V2 => {
                e.bridges.touched(media);
                call.update = Some(Update::Remote(via));
                log::info!("session {}: SIP offer handed to the browser", call.session);
                self.update_event(key, UpdateState::Received, Some(offer), None);
                return;
            }
            // The browser cannot be asked (sylkRTC-1, or the call is not answered yet):
            // answer with its media as it is.
            Ok(SipReoffer::Browser(_)) => bridge.answer_sip_reoffer_locally(now),
            Ok(_) => Err(media::error::BridgeError::WrongState(
                "unknown re-offer outcome",
            )),
            Err(err) => Err(err),
        };
        e.bridges.touched(media);
        self.answer_sip_offer(now, key, from, via, answer, Vec::new(), e);
    }

    /// Sends our answer to a SIP offer (or refuses it with 488: RFC 3261 section 14.2, the
    /// session stays as it was).
    #[allow(clippy::too_many_arguments)]
    fn answer_sip_offer(
        &mut self,
        now: Instant,
        key: CallKey,
        from: SipCallId,
        via: RemoteOffer,
        answer: Result<String, media::error::BridgeError>,
        extra: Vec<(String, String)>,
        e: &mut Engines<'_>,
    ) {
        match (via, answer) {
            (RemoteOffer::InDialog, Ok(sdp)) => {
                let sdp = self.chat_restore(key, sdp);
                if let Err(err) = e.sip.answer_reinvite_with(now, from, sdp, extra) {
                    log::info!("re-offer not answered: {err}");
                }
            }
            (RemoteOffer::InDialog, Err(err)) => {
                log::info!("re-offer refused: {err}");
                if let Err(err) = e.sip.reject_reinvite(now, from, 488) {
                    log::info!("re-offer not refused: {err}");
                }
            }
            (RemoteOffer::Replacing(new), result) => {
                self.finish_replacing(now, key, new, result, extra, e)
            }
        }
    }

    /// The browser answers our `update` `received`.
    fn browser_answers(
        &mut self,
        now: Instant,
        key: CallKey,
        via: RemoteOffer,
        sdp: &str,
        extra: Vec<(String, String)>,
        e: &mut Engines<'_>,
    ) -> Result<(), GatewayError> {
        let call = self.calls.get_mut(key.0).ok_or(GatewayError::Internal)?;
        let media = call.media.ok_or(GatewayError::Internal)?;
        let from = match via {
            RemoteOffer::InDialog => call.sip.ok_or(GatewayError::Internal)?,
            RemoteOffer::Replacing(new) => new,
        };
        let bridge = e.bridges.get_mut(media).ok_or(GatewayError::Internal)?;
        let answer = bridge.apply_webrtc_reanswer(now, sdp);
        e.bridges.touched(media);
        call.update = None;
        match answer {
            Ok(sip_answer) => {
                self.answer_sip_offer(now, key, from, via, Ok(sip_answer), extra, e);
                Ok(())
            }
            Err(err) => {
                // The SIP side still gets an answer: the browser's media as it was.
                let local = e
                    .bridges
                    .get_mut(media)
                    .map(|b| b.answer_sip_reoffer_locally(now))
                    .unwrap_or(Err(media::error::BridgeError::Closed));
                self.answer_sip_offer(now, key, from, via, local, Vec::new(), e);
                Err(GatewayError::UpdateSdp(err))
            }
        }
    }

    /// The browser did not answer `update` `received` in time: the gateway answers with its
    /// media as it is, and the browser's late answer will be refused.
    pub(super) fn call_reoffer_unanswered(
        &mut self,
        now: Instant,
        sip: SipCallId,
        e: &mut Engines<'_>,
    ) {
        let Some((key, call)) = self.call_of_sip(sip) else {
            return;
        };
        let Some(Update::Remote(via)) = call.update else {
            return;
        };
        call.update = None;
        let media = call.media;
        log::info!(
            "session {}: no answer to update, answered for the browser",
            call.session
        );
        let answer = media
            .and_then(|m| e.bridges.get_mut(m))
            .map(|b| b.answer_sip_reoffer_locally(now))
            .unwrap_or(Err(media::error::BridgeError::Closed));
        if let Some(media) = media {
            e.bridges.touched(media);
        }
        self.answer_sip_offer(now, key, sip, via, answer, Vec::new(), e);
        self.update_event(
            key,
            UpdateState::Failed,
            None,
            Some("408 Request Timeout (not answered in time)".to_owned()),
        );
    }

    /// A call with a browser offer pending ends: sylkrtc.js waits for `update` whatever
    /// happens, so it gets `failed` before `terminated`.
    pub(super) fn fail_pending_update(&mut self, key: CallKey) {
        let pending = self
            .calls
            .get_mut(key.0)
            .and_then(|c| c.update.take())
            .is_some_and(|u| u == Update::Local);
        if pending {
            self.update_event(
                key,
                UpdateState::Failed,
                None,
                Some("Call terminated".to_owned()),
            );
        }
    }

    pub(super) fn update_event(
        &mut self,
        key: CallKey,
        state: UpdateState,
        sdp: Option<String>,
        reason: Option<String>,
    ) {
        let Some(call) = self.calls.get(key.0) else {
            return;
        };
        let (client, session) = (call.client, call.session.clone());
        self.send_event(
            client,
            &Event::SessionUpdate {
                session,
                state,
                sdp,
                reason,
            },
        );
    }
}
