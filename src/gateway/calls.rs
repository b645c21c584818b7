//! sylkRTC sessions bound to SIP calls and media bridges (spec section 7).
//!
//! Outgoing: `session-create` -> the bridge answers the browser's offer and yields the SIP
//! offer -> INVITE; provisional responses become `progress`, `proceeding`/`ringing` (v2) and
//! `early-media`; the 2xx's answer SDP becomes the browser's answer in `accepted`; DTLS up
//! becomes `established`. Incoming: INVITE -> the bridge offers to the browser in
//! `incoming-session` and 180 goes out; `session-answer` -> 200 with the translated answer.
//! Every end, from either side or from the media, becomes exactly one `terminated`.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use media::bridge::{Bridge, BridgeEvent, MediaLeg};
use media::error::BridgeError;

use super::media::{offers_video, CallPorts, MediaRef};
use super::{AccountId, ClientId, Gateway, GatewayOutput};
use crate::config::SipSrtp;
use crate::sylkrtc::event::{Originator, SessionState};
use crate::sylkrtc::request::{IceCandidate, SessionCreate};
use crate::sylkrtc::Event;
use sip::stack::{AccountIdentity, CallId as SipCallId, CallNotice};

/// Terminated sessions remembered per connection, so a late trickle gets `Session <id> is
/// terminated` rather than `Unknown session` (sylkrtc.js ends a call on any trickle error).
const TERMINATED_MEMORY: usize = 32;

/// Which side placed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// The browser called out (`session-create`).
    Outgoing,
    /// A SIP peer called in (`incoming-session`).
    Incoming,
}

/// Where a call is, in sylkRTC terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallState {
    /// Outgoing: INVITE sent, no provisional yet. Incoming: offered to the browser.
    Connecting,
    /// Outgoing: a provisional response arrived.
    Progress,
    /// Answered on both sides.
    Accepted,
    /// ICE and DTLS are up.
    Established,
}

impl CallState {
    fn as_str(self) -> &'static str {
        match self {
            CallState::Connecting => "connecting",
            CallState::Progress => "progress",
            CallState::Accepted => "accepted",
            CallState::Established => "established",
        }
    }
}

/// One sylkRTC session and what carries it.
pub(super) struct GwCall {
    pub client: ClientId,
    pub account: AccountId,
    pub session: String,
    pub direction: Direction,
    pub state: CallState,
    pub sip: Option<SipCallId>,
    pub sip_call_id: Option<String>,
    /// Boxed: a bridge is ~4.8 KiB, and the slab of calls keeps spare capacity.
    pub bridge: Option<Box<Bridge>>,
    pub media_ref: MediaRef,
    pub media_armed: Option<Instant>,
    /// Listed in the gateway's queue of bridges to drain.
    pub dirty: bool,
    pub ports: CallPorts,
    pub originator: Option<Originator>,
    pub early_media: bool,
    pub progress_sent: bool,
    /// Incoming INVITE without SDP: our offer goes in the 200, the answer comes in the ACK.
    /// Holds that offer once sent.
    pub late_offer: Option<String>,
    pub is_late_offer: bool,
    /// The SIP side put the call on hold (its last offer was sendonly/inactive): silence
    /// from SIP is then expected, not a dead call.
    pub held_by_sip: bool,
}

impl std::fmt::Debug for GwCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GwCall")
            .field("session", &self.session)
            .field("direction", &self.direction)
            .field("state", &self.state)
            .field("sip", &self.sip)
            .field("media_ref", &self.media_ref)
            .finish()
    }
}

/// Per-connection session bookkeeping.
#[derive(Debug, Default)]
pub(super) struct ClientSessions {
    /// Live sessions by id.
    pub live: std::collections::HashMap<String, usize>,
    /// Recently terminated session ids.
    pub terminated: VecDeque<String>,
}

impl ClientSessions {
    fn remember_terminated(&mut self, session: String) {
        if self.terminated.len() >= TERMINATED_MEMORY {
            self.terminated.pop_front();
        }
        self.terminated.push_back(session);
    }
}

impl Gateway {
    /// `session-create`: an outgoing call.
    pub(super) fn create_session(
        &mut self,
        now: Instant,
        client: ClientId,
        create: SessionCreate,
    ) -> Result<(), String> {
        let account = self.find_account(client, create.account.as_str())?;
        let c = self.clients.get(client.0).ok_or("Internal error")?;
        if c.sessions.live.contains_key(&create.session) {
            return Err(format!("Session ID {} already in use", create.session));
        }
        let per_client = self.media.config.max_calls_per_connection;
        if c.sessions.live.len() >= per_client {
            return Err(format!(
                "Too many sessions on this connection (at most {per_client})"
            ));
        }
        if self.calls.len() >= self.media.config.max_calls {
            return Err("Too many sessions on the gateway".to_owned());
        }
        let (ports, addrs) = self
            .media
            .allocate(offers_video(&create.sdp))
            .ok_or("No media ports available")?;
        let media_ref = self.next_media_ref();
        let config = self
            .media
            .bridge_config(addrs, SystemTime::now(), self.rng.fork());
        let (mut bridge, sip_offer) = match Bridge::new_answerer(now, config, &create.sdp) {
            Ok(pair) => pair,
            Err(e) => {
                self.media.release(&ports);
                return Err(sdp_error_text(&e));
            }
        };
        // media.sip_srtp = "auto": a callee that insists on SRTP refuses the plain offer with
        // 488 (RFC 3261 section 21.4.26); the stack then sends the INVITE once more with this
        // RTP/SAVP + SDES offer (RFC 4568) and reports `OfferRetried`.
        let retry_offer = match self.media.config.sip_srtp {
            SipSrtp::Auto => match bridge.prepare_sdes_retry() {
                Ok(sdp) => Some(sdp),
                Err(e) => {
                    log::warn!("session {}: no SRTP retry offer: {e}", create.session);
                    None
                }
            },
            SipSrtp::Mandatory | SipSrtp::Off => None,
        };
        let identity = self.identity(account).ok_or("Internal error")?;
        let sip = match self.sip.invite_with_retry_offer(
            now,
            &identity,
            create.uri.as_str(),
            sip_offer,
            retry_offer,
        ) {
            Ok(sip) => sip,
            Err(e) => {
                self.media.release(&ports);
                return Err(format!("Cannot call {}: {e}", create.uri));
            }
        };
        let key = self.calls.insert(GwCall {
            client,
            account,
            session: create.session.clone(),
            direction: Direction::Outgoing,
            state: CallState::Connecting,
            sip: Some(sip),
            sip_call_id: self.sip.call_id_of(sip).map(str::to_owned),
            bridge: Some(Box::new(bridge)),
            media_ref,
            media_armed: None,
            dirty: false,
            ports,
            originator: None,
            early_media: false,
            progress_sent: false,
            late_offer: None,
            is_late_offer: false,
            held_by_sip: false,
        });
        self.index_call(key, client, &create.session, media_ref, Some(sip));
        self.open_media(media_ref, addrs);
        self.after_bridge_input(key);
        log::info!("session {}: calling {}", create.session, create.uri);
        Ok(())
    }

    /// `session-answer`: the browser takes an incoming call.
    pub(super) fn answer_session(
        &mut self,
        now: Instant,
        client: ClientId,
        session: &str,
        sdp: &str,
    ) -> Result<(), String> {
        let key = self.session_key(client, session)?;
        let call = self.calls.get_mut(key).ok_or("Internal error")?;
        if call.direction == Direction::Outgoing {
            return Err(format!("Cannot answer outgoing session {session}"));
        }
        if call.state != CallState::Connecting {
            return Err(format!(
                "Invalid state for answering session {session}: {}",
                call.state.as_str()
            ));
        }
        let bridge = call.bridge.as_mut().ok_or("Internal error")?;
        // For an INVITE without SDP what goes into the 200 is our offer (RFC 3264 section 4),
        // with every SDES key when it is RTP/SAVP.
        let sip_answer = if call.is_late_offer {
            bridge.apply_webrtc_answer_as_offer(now, sdp)
        } else {
            bridge.apply_webrtc_answer(now, sdp)
        }
        .map_err(|e| sdp_error_text(&e))?;
        let sip = call.sip.ok_or("Internal error")?;
        call.state = CallState::Accepted;
        if call.is_late_offer {
            call.late_offer = Some(sip_answer.clone());
        }
        self.sip
            .answer(now, sip, sip_answer)
            .map_err(|e| format!("Cannot answer session {session}: {e}"))?;
        self.after_bridge_input(key);
        self.session_event(
            key,
            SessionState::Accepted {
                sdp: None,
                call_id: None,
            },
        );
        Ok(())
    }

    /// `session-trickle`: the browser's candidates; `[]` is end-of-candidates.
    pub(super) fn trickle_session(
        &mut self,
        client: ClientId,
        session: &str,
        candidates: &[IceCandidate],
    ) -> Result<(), String> {
        let key = self.session_key(client, session)?;
        let bridge = self
            .calls
            .get_mut(key)
            .and_then(|c| c.bridge.as_mut())
            .ok_or("Internal error")?;
        if candidates.is_empty() {
            bridge
                .add_remote_candidate("")
                .map_err(|e| format!("Invalid candidate: {e}"))?;
        }
        for c in candidates {
            bridge
                .add_remote_candidate(&c.candidate)
                .map_err(|e| format!("Invalid candidate: {e}"))?;
        }
        self.after_bridge_input(key);
        Ok(())
    }

    /// `session-terminate`: decline an unanswered incoming call, otherwise hang up.
    pub(super) fn terminate_session(
        &mut self,
        now: Instant,
        client: ClientId,
        session: &str,
    ) -> Result<(), String> {
        let key = self.session_key(client, session)?;
        let call = self.calls.get(key).ok_or("Internal error")?;
        let unanswered_incoming =
            call.direction == Direction::Incoming && call.state == CallState::Connecting;
        match call.sip {
            Some(sip) if unanswered_incoming => {
                let code = self.decline_code;
                let _ = self.sip.decline(now, sip, code);
            }
            Some(sip) => {
                let _ = self.sip.hangup(now, sip);
            }
            None => self.end_call(now, key, "200 Local hangup", true),
        }
        Ok(())
    }

    /// The stack's call notices.
    pub(super) fn handle_call_notice(&mut self, now: Instant, notice: CallNotice) {
        match notice {
            CallNotice::Incoming {
                call,
                reg,
                from_uri,
                from_display_name,
                call_id,
                sdp,
            } => self.incoming_call(now, call, reg, from_uri, from_display_name, call_id, sdp),
            CallNotice::Progress {
                call, code, sdp, ..
            } => self.call_progress(now, call, code, sdp),
            CallNotice::OfferRetried { call, code } => self.call_offer_retried(now, call, code),
            CallNotice::Accepted { call, sdp } => self.call_accepted(now, call, sdp),
            CallNotice::Confirmed { call, sdp_in_ack } => {
                self.call_confirmed(now, call, sdp_in_ack)
            }
            // The bridge does not renegotiate yet: answer at once with our last SDP,
            // directions mirrored (RFC 3264 section 6.1), which keeps hold/unhold, session
            // refreshes and address changes of the same media working.
            CallNotice::ReInvite { call, sdp } => {
                log::info!("sip call {call:?}: re-INVITE answered with the current media");
                if let Some(c) = self
                    .calls_by_sip
                    .get(&call)
                    .and_then(|&k| self.calls.get_mut(k))
                {
                    c.held_by_sip = is_hold_offer(&sdp);
                }
                let _ = self.sip.answer_reinvite_with_current_media(now, call);
            }
            CallNotice::Terminated { call, reason } => {
                if let Some(key) = self.calls_by_sip.remove(&call) {
                    if let Some(c) = self.calls.get_mut(key) {
                        c.sip = None;
                    }
                    self.end_call(now, key, &reason, true);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn incoming_call(
        &mut self,
        now: Instant,
        sip: SipCallId,
        reg: sip::stack::RegId,
        from_uri: String,
        from_display_name: Option<String>,
        call_id: String,
        sdp: Option<String>,
    ) {
        let Some(&account) = self.registration_owner.get(&reg) else {
            let _ = self.sip.decline(now, sip, 480);
            return;
        };
        let Some(client) = self.accounts.get(account.0).map(|a| a.client) else {
            let _ = self.sip.decline(now, sip, 480);
            return;
        };
        let live = self
            .clients
            .get(client.0)
            .map_or(0, |c| c.sessions.live.len());
        if live >= self.media.config.max_calls_per_connection
            || self.calls.len() >= self.media.config.max_calls
        {
            let _ = self.sip.decline(now, sip, 503);
            return;
        }
        // A late offer (no SDP) stays audio-only: the browser is offered what we can do
        // without knowing whether the caller has video.
        let video = sdp.as_deref().is_some_and(offers_video);
        let Some((ports, addrs)) = self.media.allocate(video) else {
            let _ = self.sip.decline(now, sip, 503);
            return;
        };
        let media_ref = self.next_media_ref();
        let mut config = self
            .media
            .bridge_config(addrs, SystemTime::now(), self.rng.fork());
        // An INVITE without SDP (RFC 3261 section 13.2.1): the browser still needs an offer
        // before the user answers, so it gets one made from what we can do; its answer
        // becomes our offer in the 200 and the SIP answer arrives in the ACK.
        let is_late_offer = sdp.is_none();
        let sdp = match sdp {
            Some(sdp) => sdp,
            None => match Bridge::capabilities_offer(now, &mut config) {
                Ok(sdp) => sdp,
                Err(e) => {
                    log::warn!("incoming call {call_id}: {e}");
                    self.media.release(&ports);
                    let _ = self.sip.decline(now, sip, 500);
                    return;
                }
            },
        };
        let (bridge, webrtc_offer) = match Bridge::new_offerer(now, config, &sdp) {
            Ok(pair) => pair,
            Err(e) => {
                log::info!("incoming call {call_id}: {e}");
                self.media.release(&ports);
                let _ = self.sip.decline(now, sip, 488);
                return;
            }
        };
        let session = self.incoming_session_id(client, &call_id);
        let originator = Originator {
            uri: bare_uri(&from_uri),
            display_name: from_display_name,
        };
        let key = self.calls.insert(GwCall {
            client,
            account,
            session: session.clone(),
            direction: Direction::Incoming,
            state: CallState::Connecting,
            sip: Some(sip),
            sip_call_id: Some(call_id.clone()),
            bridge: Some(Box::new(bridge)),
            media_ref,
            media_armed: None,
            dirty: false,
            ports,
            originator: Some(originator.clone()),
            early_media: false,
            progress_sent: false,
            late_offer: None,
            is_late_offer,
            held_by_sip: false,
        });
        self.index_call(key, client, &session, media_ref, Some(sip));
        self.open_media(media_ref, addrs);
        self.after_bridge_input(key);
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
                sdp: webrtc_offer,
                call_id,
            },
        );
        let _ = self.sip.ring(now, sip);
    }

    fn call_progress(&mut self, now: Instant, sip: SipCallId, code: u16, sdp: Option<String>) {
        let Some(&key) = self.calls_by_sip.get(&sip) else {
            return;
        };
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        let first = !call.progress_sent;
        call.progress_sent = true;
        if call.state == CallState::Connecting {
            call.state = CallState::Progress;
        }
        if first {
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
        // RFC 3960 early media: a provisional with SDP carries the answer.
        let Some(sdp) = sdp else { return };
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        if call.early_media {
            return;
        }
        let Some(bridge) = call.bridge.as_mut() else {
            return;
        };
        match bridge.apply_sip_answer(now, &sdp) {
            Ok(answer) => {
                call.early_media = true;
                let call_id = call.sip_call_id.clone().unwrap_or_default();
                self.after_bridge_input(key);
                self.session_event(
                    key,
                    SessionState::EarlyMedia {
                        sdp: answer,
                        call_id,
                    },
                );
            }
            Err(e) => {
                log::info!("early media SDP unusable: {e}");
                self.fail_call(now, key, &answer_failure_reason(&e));
            }
        }
    }

    /// The callee refused our plain offer with 488 and the stack re-sent the INVITE with the
    /// RTP/SAVP one (`media.sip_srtp = "auto"`): the answer to come answers that offer. The
    /// browser hears nothing of it; it keeps its progress events.
    fn call_offer_retried(&mut self, now: Instant, sip: SipCallId, code: u16) {
        let Some(&key) = self.calls_by_sip.get(&sip) else {
            return;
        };
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        let switched = match call.bridge.as_mut() {
            Some(bridge) => bridge.use_sdes_retry(),
            None => Err(BridgeError::WrongState("call without bridge")),
        };
        match switched {
            Ok(()) => log::info!(
                "session {}: {code} to the plain offer, INVITE sent again with SRTP (SDES)",
                call.session
            ),
            Err(e) => {
                log::warn!(
                    "session {}: cannot switch to the SRTP offer: {e}",
                    call.session
                );
                self.fail_call(now, key, "488 Not Acceptable Here");
            }
        }
    }

    /// The ACK for our 200; for an INVITE without SDP it carries the SIP answer.
    fn call_confirmed(&mut self, now: Instant, sip: SipCallId, sdp_in_ack: Option<String>) {
        let Some(&key) = self.calls_by_sip.get(&sip) else {
            return;
        };
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        let Some(our_offer) = call.late_offer.take() else {
            return;
        };
        let result = match (sdp_in_ack, call.bridge.as_mut()) {
            (Some(answer), Some(bridge)) => {
                bridge.apply_sip_answer_to_our_offer(now, &our_offer, &answer)
            }
            _ => Err(BridgeError::WrongState("ACK without the SDP answer")),
        };
        match result {
            Ok(()) => self.after_bridge_input(key),
            Err(e) => {
                log::info!("late-offer answer unusable: {e}");
                self.fail_call(now, key, &answer_failure_reason(&e));
            }
        }
    }

    fn call_accepted(&mut self, now: Instant, sip: SipCallId, sdp: Option<String>) {
        let Some(&key) = self.calls_by_sip.get(&sip) else {
            return;
        };
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        call.state = CallState::Accepted;
        let call_id = call.sip_call_id.clone();
        if call.early_media {
            // The browser already has the answer from early-media (SylkServer SS@d4ad858).
            self.session_event(key, SessionState::Accepted { sdp: None, call_id });
            return;
        }
        let answer = match (sdp, call.bridge.as_mut()) {
            (Some(sdp), Some(bridge)) => bridge.apply_sip_answer(now, &sdp),
            _ => Err(BridgeError::WrongState("2xx without SDP")),
        };
        match answer {
            Ok(answer) => {
                self.after_bridge_input(key);
                self.session_event(
                    key,
                    SessionState::Accepted {
                        sdp: Some(answer),
                        call_id,
                    },
                );
            }
            Err(e) => {
                log::info!("SIP answer unusable: {e}");
                self.fail_call(now, key, &answer_failure_reason(&e));
            }
        }
    }

    /// A bridge event for call `key`.
    pub(super) fn handle_bridge_event(&mut self, now: Instant, key: usize, event: BridgeEvent) {
        match event {
            BridgeEvent::DtlsConnected => {
                if let Some(call) = self.calls.get_mut(key) {
                    if call.state != CallState::Established {
                        call.state = CallState::Established;
                        self.session_event(key, SessionState::Established);
                    }
                }
            }
            BridgeEvent::IceFailed => self.fail_call(now, key, "ICE failure"),
            BridgeEvent::DtlsFailed => self.fail_call(now, key, "DTLS failure"),
            BridgeEvent::RtpInactive { leg: MediaLeg::Sip }
                if self.calls.get(key).is_some_and(|c| c.held_by_sip) =>
            {
                // On hold the SIP side sends nothing by design (RFC 3264 section 8.4).
            }
            BridgeEvent::RtpInactive { leg } => {
                let reason = match leg {
                    MediaLeg::Webrtc => "Media timeout (browser)",
                    MediaLeg::Sip => "Media timeout (SIP)",
                };
                self.fail_call(now, key, reason);
            }
            _ => {}
        }
    }

    /// Ends a call for a gateway-side reason: hang up SIP, then report `reason`.
    pub(super) fn fail_call(&mut self, now: Instant, key: usize, reason: &str) {
        if let Some(sip) = self.calls.get_mut(key).and_then(|c| c.sip.take()) {
            self.calls_by_sip.remove(&sip);
            let _ = self.sip.hangup(now, sip);
        }
        self.end_call(now, key, reason, true);
    }

    /// Removes call `key`: `terminated` (and `missed-session` for an unanswered incoming
    /// call the caller cancelled) to the client when `notify`, media released.
    pub(super) fn end_call(&mut self, now: Instant, key: usize, reason: &str, notify: bool) {
        if !self.calls.contains(key) {
            return;
        }
        if notify {
            self.session_event(
                key,
                SessionState::Terminated {
                    reason: reason.to_owned(),
                },
            );
        }
        let mut call = self.calls.remove(key);
        if let Some(sip) = call.sip.take() {
            self.calls_by_sip.remove(&sip);
            let _ = self.sip.hangup(now, sip);
        }
        let missed = notify
            && call.direction == Direction::Incoming
            && call.state == CallState::Connecting
            && reason.starts_with("487");
        if let (true, Some(originator)) = (missed, call.originator.clone()) {
            let account = self
                .accounts
                .get(call.account.0)
                .map(|a| a.aor.as_str().to_owned())
                .unwrap_or_default();
            self.send_event(
                call.client,
                &Event::MissedSession {
                    account,
                    originator,
                },
            );
        }
        if let Some(c) = self.clients.get_mut(call.client.0) {
            c.sessions.live.remove(&call.session);
            c.sessions.remember_terminated(call.session.clone());
        }
        self.calls_by_media.remove(&call.media_ref);
        self.media.release(&call.ports);
        if let Some(mut bridge) = call.bridge.take() {
            // RTCP BYE and DTLS close_notify still go out before the sockets close.
            bridge.close(now);
            self.closing_bridges
                .insert(call.media_ref, super::ClosingBridge(bridge));
        }
        self.outputs.push_back(GatewayOutput::CloseMedia {
            media: call.media_ref,
        });
        log::info!("session {} ended: {reason}", call.session);
    }

    /// Ends every call of a client that is going away (BYE/CANCEL/486 on the SIP side).
    pub(super) fn end_client_calls(&mut self, now: Instant, client: ClientId) {
        let keys: Vec<usize> = self
            .clients
            .get(client.0)
            .map(|c| c.sessions.live.values().copied().collect())
            .unwrap_or_default();
        for key in keys {
            self.end_call(now, key, "WebSocket closed", false);
        }
    }

    fn session_key(&self, client: ClientId, session: &str) -> Result<usize, String> {
        let c = self.clients.get(client.0).ok_or("Internal error")?;
        match c.sessions.live.get(session) {
            Some(&key) => Ok(key),
            None if c.sessions.terminated.iter().any(|s| s == session) => {
                Err(format!("Session {session} is terminated"))
            }
            None => Err(format!("Unknown session {session}")),
        }
    }

    fn session_event(&mut self, key: usize, state: SessionState) {
        let Some(call) = self.calls.get(key) else {
            return;
        };
        let (client, session) = (call.client, call.session.clone());
        self.send_event(client, &Event::SessionState { session, state });
    }

    fn index_call(
        &mut self,
        key: usize,
        client: ClientId,
        session: &str,
        media: MediaRef,
        sip: Option<SipCallId>,
    ) {
        if let Some(c) = self.clients.get_mut(client.0) {
            c.sessions.live.insert(session.to_owned(), key);
        }
        self.calls_by_media.insert(media, key);
        if let Some(sip) = sip {
            self.calls_by_sip.insert(sip, key);
        }
    }

    fn identity(&self, account: AccountId) -> Option<AccountIdentity> {
        let a = self.accounts.get(account.0)?;
        Some(AccountIdentity {
            user: a.aor.user().to_owned(),
            domain: a.aor.domain().to_owned(),
            display_name: a.display_name.clone(),
            user_agent: a.user_agent.clone(),
            ha1: a.ha1.clone(),
        })
    }

    fn next_media_ref(&mut self) -> MediaRef {
        let r = MediaRef(self.media.next_ref);
        self.media.next_ref += 1;
        r
    }

    /// The session id of an incoming call: SylkServer (since 2020) derives it from the
    /// SIP Call-ID as a UUID-formatted MD5, stable across the user's devices.
    fn incoming_session_id(&self, client: ClientId, call_id: &str) -> String {
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

/// `sip:user@host;params` -> `user@host`, as sylkRTC carries addresses.
fn bare_uri(uri: &str) -> String {
    let s = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let s = s
        .strip_prefix("sips:")
        .or_else(|| s.strip_prefix("sip:"))
        .unwrap_or(s);
    s.split([';', '?', '>']).next().unwrap_or(s).to_owned()
}

/// Whether an SDP offer puts us on hold (RFC 3264 section 8.4: `sendonly`/`inactive`, or
/// the RFC 2543 style `c=0.0.0.0`).
fn is_hold_offer(sdp: &str) -> bool {
    media::sdp::SessionDescription::parse(sdp.as_bytes()).is_ok_and(|d| d.is_hold())
}

/// The `terminated` reason when the SIP answer cannot be used (the SIP side gets BYE):
/// `"488 Not Acceptable Here"` as SylkServer says it, with the cause appended when it is
/// about SRTP, e.g. a peer that answered our RTP/SAVP offer with plain RTP (RFC 4568).
fn answer_failure_reason(e: &BridgeError) -> String {
    use media::sdp::SdpError;
    const REASON: &str = "488 Not Acceptable Here";
    match e {
        BridgeError::Sdp {
            error:
                error @ (SdpError::SrtpRefused { .. }
                | SdpError::UnexpectedSrtp { .. }
                | SdpError::NoUsableCrypto { .. }
                | SdpError::BadCrypto),
            ..
        } => format!("{REASON} ({error})"),
        BridgeError::KeyGeneration => format!("{REASON} ({e})"),
        _ => REASON.to_owned(),
    }
}

/// The client-facing text for an SDP problem.
fn sdp_error_text(e: &BridgeError) -> String {
    match e {
        BridgeError::NoCommonCodec => "No common codec (the gateway does not transcode)".to_owned(),
        other => format!("Invalid SDP: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::bare_uri;

    #[test]
    fn hold_offers() {
        use super::is_hold_offer;
        let offer = |c: &str, a: &str| {
            format!("v=0\r\no=- 1 1 IN IP4 {c}\r\ns=-\r\nc=IN IP4 {c}\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n{a}")
        };
        assert!(is_hold_offer(&offer("10.0.0.1", "a=sendonly\r\n")));
        assert!(is_hold_offer(&offer("0.0.0.0", "")));
        assert!(!is_hold_offer(&offer("10.0.0.1", "a=sendrecv\r\n")));
        assert!(!is_hold_offer("not SDP"));
    }

    #[test]
    fn bare_uris() {
        assert_eq!(
            bare_uri("sip:bob@example.com;transport=tcp"),
            "bob@example.com"
        );
        assert_eq!(bare_uri("<sips:bob@example.com>"), "bob@example.com");
        assert_eq!(bare_uri("bob@example.com"), "bob@example.com");
    }
}
