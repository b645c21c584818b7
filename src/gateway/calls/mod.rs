//! sylkRTC sessions bound to SIP calls and media bridges (spec section 7).
//!
//! Outgoing ([`outgoing`]): `session-create` -> the bridge answers the browser's offer and
//! yields the SIP offer -> INVITE; provisional responses become `progress`,
//! `proceeding`/`ringing` (v2) and `early-media`; the 2xx's answer becomes the browser's
//! answer in `accepted`; DTLS up becomes `established`. Incoming ([`incoming`]): INVITE ->
//! the bridge offers to the browser in `incoming-session` and 180 goes out;
//! `session-answer` -> 200 with the translated answer. Every end, from either side or from
//! the media, becomes exactly one `terminated` with a [`CallEnd`].

mod dtmf;
mod exercise;
mod incoming;
mod outgoing;
mod transfer;
mod update;

use std::collections::VecDeque;
use std::time::Instant;

use media::bridge::{BridgeEvent, MediaLeg};

use super::ports::CallPorts;
use super::{
    AccountId, CallEnd, CallKey, ClientId, Engines, Gateway, GatewayCommand, GatewayError,
};
use crate::switchboard::MediaId;
use crate::sylkrtc::event::{Originator, SessionState};
use crate::sylkrtc::request::IceCandidate;
use crate::sylkrtc::Event;
use sip::call::CallEvent;
use sip::msg::{Method, SipRequest};
use sip::request::RequestOutcome;
use sip::stack::{CallId as SipCallId, IncomingRequestId};

pub(super) use dtmf::DtmfQueue;
pub use exercise::exercise_call_fields;
pub(super) use transfer::{OutgoingTransfer, ReferContext};
pub(super) use update::Update;

/// Terminated sessions remembered per connection, so a late trickle gets `Session <id> is
/// terminated` rather than `Unknown session` (sylkrtc.js ends a call on any trickle error).
const TERMINATED_MEMORY: usize = 32;

/// Which side placed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDirection {
    /// The browser called out (`session-create`).
    Outgoing,
    /// A SIP peer called in (`incoming-session`).
    Incoming,
}

/// Where a call is, in sylkRTC terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Outgoing: INVITE sent, no provisional yet. Incoming: offered to the browser.
    Connecting,
    /// Outgoing: a provisional response arrived.
    Progress,
    /// Answered on both sides.
    Accepted,
    /// ICE and DTLS are up.
    Established,
}

/// What a request of ours inside a call's dialog is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallRequest {
    /// An INFO carrying a key press.
    Dtmf,
    /// Our REFER (`session-transfer`).
    Refer,
    /// A NOTIFY about a REFER we accepted.
    Notify,
}

impl CallState {
    /// Every state, in label order.
    pub const ALL: [CallState; 4] = [
        CallState::Connecting,
        CallState::Progress,
        CallState::Accepted,
        CallState::Established,
    ];

    /// The sylkRTC name of the state (also a metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Connecting => "connecting",
            CallState::Progress => "progress",
            CallState::Accepted => "accepted",
            CallState::Established => "established",
        }
    }
}

/// One sylkRTC session and what carries it.
#[derive(Debug)]
pub(super) struct GwCall {
    pub client: ClientId,
    pub account: AccountId,
    pub session: String,
    pub direction: CallDirection,
    pub state: CallState,
    pub sip: Option<SipCallId>,
    pub sip_call_id: Option<String>,
    /// The call's bridge and sockets; `None` for a chat-only session (`chat/`).
    pub media: Option<MediaId>,
    pub ports: CallPorts,
    pub originator: Option<Originator>,
    /// The other party, bare `user@domain` (CPIM `To` of `session-message`).
    pub peer: String,
    /// The browser answer already sent in `early-media` (a 183 with SDP, RFC 3960). A
    /// sylkRTC-1 client has no such event and gets it in `accepted` instead.
    pub early_answer: Option<String>,
    pub progress_sent: bool,
    /// Incoming INVITE without SDP: our offer goes in the 200, the answer comes in the ACK.
    /// Holds that offer once sent.
    pub late_offer: Option<String>,
    pub is_late_offer: bool,
    /// The SIP side put the call on hold (its last offer was sendonly/inactive): silence
    /// from SIP is then expected, not a dead call.
    pub held_by_sip: bool,
    /// When the call started (session-create, INVITE arrival), for the setup latency.
    pub started: Instant,
    /// When it was answered (2xx received, session-answer).
    pub answered_at: Option<Instant>,
    /// A renegotiation under way (`update.rs`).
    pub update: Option<Update>,
    /// Key presses waiting to go out as INFO (`dtmf.rs`).
    pub dtmf: DtmfQueue,
    /// Our REFER of this call (`transfer.rs`).
    pub transfer: Option<OutgoingTransfer>,
    /// A REFER the SIP side sent on this call, for the NOTIFYs about its transfer.
    pub refer: Option<Box<ReferContext>>,
    /// The call whose REFER this call carries out (its NOTIFYs report our progress).
    pub referred_from: Option<CallKey>,
    /// An INVITE with `Replaces` for this call, waiting for its answer.
    pub replacing: Option<SipCallId>,
    /// Outgoing: the last early answer the bridge took (forking: another one re-points it).
    pub early_sdp: Option<String>,
}

impl GwCall {
    /// A call with nothing under way yet.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        client: ClientId,
        account: AccountId,
        session: String,
        direction: CallDirection,
        sip: Option<SipCallId>,
        sip_call_id: Option<String>,
        media: Option<MediaId>,
        ports: CallPorts,
        peer: String,
        now: Instant,
    ) -> GwCall {
        GwCall {
            client,
            account,
            session,
            direction,
            state: CallState::Connecting,
            sip,
            sip_call_id,
            media,
            ports,
            originator: None,
            peer,
            early_answer: None,
            progress_sent: false,
            late_offer: None,
            is_late_offer: false,
            held_by_sip: false,
            started: now,
            answered_at: None,
            update: None,
            dtmf: DtmfQueue::default(),
            transfer: None,
            refer: None,
            referred_from: None,
            replacing: None,
            early_sdp: None,
        }
    }
}

/// Per-connection session bookkeeping.
#[derive(Debug, Default)]
pub(super) struct ClientSessions {
    /// Live sessions by id.
    pub live: std::collections::HashMap<String, CallKey>,
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
    /// `session-trickle`: the browser's candidates; `[]` is end-of-candidates.
    pub(super) fn trickle_session(
        &mut self,
        client: ClientId,
        session: &str,
        candidates: &[IceCandidate],
        e: &mut Engines<'_>,
    ) -> Result<(), GatewayError> {
        let key = self.session_key(client, session)?;
        let Some(media) = self.calls.get(key.0).ok_or(GatewayError::Internal)?.media else {
            // A chat-only session has no ICE to trickle to.
            return Ok(());
        };
        let bridge = e.bridges.get_mut(media).ok_or(GatewayError::Internal)?;
        let result = if candidates.is_empty() {
            bridge.add_remote_candidate("")
        } else {
            candidates
                .iter()
                .try_for_each(|c| bridge.add_remote_candidate(&c.candidate))
        };
        e.bridges.touched(media);
        result.map_err(GatewayError::InvalidCandidate)
    }

    /// `session-terminate`: decline an unanswered incoming call, otherwise hang up.
    pub(super) fn terminate_session(
        &mut self,
        now: Instant,
        client: ClientId,
        session: &str,
        e: &mut Engines<'_>,
    ) -> Result<(), GatewayError> {
        let key = self.session_key(client, session)?;
        let call = self.calls.get(key.0).ok_or(GatewayError::Internal)?;
        let unanswered_incoming =
            call.direction == CallDirection::Incoming && call.state == CallState::Connecting;
        match call.sip {
            Some(sip) if unanswered_incoming => {
                let code = self.config.decline_code;
                if let Err(err) = e.sip.decline(now, sip, code) {
                    log::info!("{} decline {code} not sent: {err}", self.call_context(key));
                }
            }
            Some(sip) => {
                if let Err(err) = e.sip.hangup(now, sip) {
                    log::info!("{} hangup not sent: {err}", self.call_context(key));
                }
            }
            None => self.end_call(now, key, CallEnd::LocalHangup, true, e),
        }
        Ok(())
    }

    /// The stack's events about call `sip`.
    pub(super) fn handle_call_event(
        &mut self,
        now: Instant,
        sip: SipCallId,
        event: CallEvent,
        e: &mut Engines<'_>,
    ) {
        match event {
            CallEvent::Incoming {
                replaces: Some(old),
                sdp: Some(sdp),
                ..
            } if self.calls_by_sip.contains_key(&old) => {
                let key = self.calls_by_sip[&old];
                self.replacing_invite(now, key, sip, &sdp, e)
            }
            CallEvent::Incoming {
                reg,
                from_uri,
                from_display_name,
                call_id,
                sdp,
                headers,
                ..
            } => self.incoming_call(
                now,
                incoming::IncomingInvite {
                    sip,
                    reg,
                    from_uri,
                    from_display_name,
                    call_id,
                    sdp,
                    headers,
                },
                e,
            ),
            CallEvent::Progress { code, sdp, .. } => self.call_progress(now, sip, code, sdp, e),
            CallEvent::OfferRetried { code } => self.call_offer_retried(now, sip, code, e),
            CallEvent::Accepted { sdp, headers } => self.call_accepted(now, sip, sdp, &headers, e),
            CallEvent::Confirmed { sdp_in_ack } => self.call_confirmed(now, sip, sdp_in_ack, e),
            CallEvent::ReOffer { sdp } => self.sip_reoffer(now, sip, &sdp, e),
            CallEvent::ReOfferUnanswered => self.call_reoffer_unanswered(now, sip, e),
            CallEvent::ReOfferAnswered { sdp } => self.call_reoffer_answered(now, sip, sdp, e),
            CallEvent::ReOfferFailed { code, reason } => {
                self.call_reoffer_failed(sip, code, &reason, e)
            }
            CallEvent::Terminated(end) => {
                let Some(key) = self.calls_by_sip.remove(&sip) else {
                    return;
                };
                if self
                    .calls
                    .get(key.0)
                    .is_some_and(|c| c.replacing == Some(sip))
                {
                    // The INVITE that was to replace the call gave up; the call goes on.
                    self.replacing_ended(key, e);
                    return;
                }
                if let Some(c) = self.calls.get_mut(key.0) {
                    c.sip = None;
                }
                self.end_call(now, key, CallEnd::Sip(end), true, e);
            }
        }
    }

    /// A request of ours inside a call's dialog ended.
    pub(super) fn call_request_done(
        &mut self,
        now: Instant,
        key: CallKey,
        what: CallRequest,
        outcome: &RequestOutcome,
        e: &mut Engines<'_>,
    ) {
        match what {
            CallRequest::Dtmf => self.dtmf_sent(now, key, outcome, e),
            CallRequest::Refer => self.refer_answered(key, outcome),
            CallRequest::Notify => {
                if !outcome.is_success() {
                    log::debug!("NOTIFY about a transfer answered {outcome}");
                }
            }
        }
    }

    /// A request of the SIP side inside call `sip`'s dialog that the gateway answers (INFO,
    /// REFER, NOTIFY); `false` for other methods (another feature's).
    pub(super) fn call_incoming_request(
        &mut self,
        now: Instant,
        sip: SipCallId,
        id: IncomingRequestId,
        request: &SipRequest,
        e: &mut Engines<'_>,
    ) -> bool {
        let key = self.calls_by_sip.get(&sip).copied();
        let method = request.method().clone();
        match (key, method) {
            (Some(key), Method::Info) => self.incoming_info(now, key, id, request, e),
            (Some(key), Method::Refer) => self.incoming_refer(now, key, id, request, e),
            (Some(key), Method::Notify) => self.incoming_notify(now, key, id, request, e),
            (None, Method::Info | Method::Refer | Method::Notify) => {
                let _ = e
                    .sip
                    .answer_request(now, id, 481, "Call/Transaction Does Not Exist", &[]);
            }
            _ => return false,
        }
        true
    }

    /// A bridge event for call `key`.
    pub(super) fn handle_bridge_event(
        &mut self,
        now: Instant,
        key: CallKey,
        event: BridgeEvent,
        e: &mut Engines<'_>,
    ) {
        match event {
            BridgeEvent::DtlsConnected => self.call_established(now, key),
            BridgeEvent::IceFailed => self.fail_call(now, key, CallEnd::IceFailure, e),
            BridgeEvent::DtlsFailed => self.fail_call(now, key, CallEnd::DtlsFailure, e),
            BridgeEvent::RtpInactive { leg: MediaLeg::Sip }
                if self.calls.get(key.0).is_some_and(|c| c.held_by_sip) =>
            {
                // On hold the SIP side sends nothing by design (RFC 3264 section 8.4).
            }
            BridgeEvent::RtpInactive { leg } => {
                self.fail_call(now, key, CallEnd::MediaTimeout(leg), e)
            }
            BridgeEvent::Dtmf { digit, duration_ms } => self.dtmf_event(
                key,
                digit,
                duration_ms,
                crate::sylkrtc::event::DtmfMethod::Rfc4733,
            ),
            _ => {}
        }
    }

    /// The session's media is up (DTLS with the browser, or a chat-only session's first MSRP
    /// transaction): `established`, once.
    pub(super) fn call_established(&mut self, now: Instant, key: CallKey) {
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        if call.state == CallState::Established {
            return;
        }
        call.state = CallState::Established;
        let since_start = now.saturating_duration_since(call.started);
        let since_answer = call.answered_at.map(|a| now.saturating_duration_since(a));
        self.stats
            .established(call.direction, since_start, since_answer);
        log::info!(
            "{} established after {} ms",
            self.call_context(key),
            since_start.as_millis()
        );
        self.session_event(key, SessionState::Established);
    }

    /// Ends a call for a gateway-side reason: hang up SIP, then report `end`.
    pub(super) fn fail_call(
        &mut self,
        now: Instant,
        key: CallKey,
        end: CallEnd,
        e: &mut Engines<'_>,
    ) {
        self.end_call(now, key, end, true, e);
    }

    /// Removes call `key`: `terminated` (and `missed-session` for an unanswered incoming
    /// call the caller cancelled) to the client when `notify`; the SIP side is hung up if
    /// it is still there; the media is released.
    pub(super) fn end_call(
        &mut self,
        now: Instant,
        key: CallKey,
        end: CallEnd,
        notify: bool,
        e: &mut Engines<'_>,
    ) {
        if !self.calls.contains(key.0) {
            return;
        }
        log::info!("{} ended: {end}", self.call_context(key));
        if notify {
            self.fail_pending_update(key);
        }
        if notify {
            self.session_event(
                key,
                SessionState::Terminated {
                    reason: end.to_string(),
                },
            );
        }
        // Its chat (MSRP connection) goes with it.
        self.end_chat(now, key, e);
        let Some(mut call) = self.calls.remove(key.0).inspect(|c| {
            self.contacts_call_changed(c.account, false);
        }) else {
            return;
        };
        if let Some(new) = call.replacing.take() {
            self.calls_by_sip.remove(&new);
            let _ = e.sip.decline(now, new, 481);
        }
        if !matches!(call.state, CallState::Accepted | CallState::Established) {
            // A call carrying out a transfer failed: its final NOTIFY (RFC 3515 2.4.4).
            let (code, reason) = match &end {
                CallEnd::Sip(end) if end.code >= 300 => (end.code, end.phrase().to_owned()),
                _ => (487, "Request Terminated".to_owned()),
            };
            self.report_transfer_progress(now, call.referred_from, code, &reason, e);
        }
        self.call_requests.retain(|_, (k, _)| *k != key);
        self.stats
            .call_ended(call.direction, &end, call.answered_at.is_some());
        if let Some(sip) = call.sip.take() {
            self.calls_by_sip.remove(&sip);
            if let Err(err) = e.sip.hangup(now, sip) {
                log::debug!("call={} SIP side already gone: {err}", call.session);
            }
        }
        let missed = notify
            && call.direction == CallDirection::Incoming
            && call.state == CallState::Connecting
            && end.is_cancelled();
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
        let mut last_call_of_draining_client = None;
        if let Some(c) = self.clients.get_mut(call.client.0) {
            c.sessions.live.remove(&call.session);
            c.sessions.remember_terminated(call.session.clone());
            if self.draining && c.sessions.live.is_empty() {
                last_call_of_draining_client = Some(c.conn);
            }
        }
        self.ports.release(&call.ports);
        if let Some(media) = call.media {
            self.calls_by_media.remove(&media);
            // RTCP BYE and DTLS close_notify still go out before the sockets close.
            e.bridges.close(now, media);
            self.outputs.push_back(GatewayCommand::CloseMedia { media });
        }
        if let Some(conn) = last_call_of_draining_client {
            // Draining: a connection is let go once its last call is over.
            self.outputs.push_back(GatewayCommand::Close { conn });
        }
    }

    /// Ends every call of a client that is going away (BYE/CANCEL/486 on the SIP side).
    pub(super) fn end_client_calls(&mut self, now: Instant, client: ClientId, e: &mut Engines<'_>) {
        let keys: Vec<CallKey> = self
            .clients
            .get(client.0)
            .map(|c| c.sessions.live.values().copied().collect())
            .unwrap_or_default();
        for key in keys {
            self.end_call(now, key, CallEnd::WebSocketClosed, false, e);
        }
    }

    pub(super) fn session_key(
        &self,
        client: ClientId,
        session: &str,
    ) -> Result<CallKey, GatewayError> {
        let c = self.clients.get(client.0).ok_or(GatewayError::Internal)?;
        match c.sessions.live.get(session) {
            Some(&key) => Ok(key),
            None if c.sessions.terminated.iter().any(|s| s == session) => {
                Err(GatewayError::SessionTerminated(session.to_owned()))
            }
            None => Err(GatewayError::UnknownSession(session.to_owned())),
        }
    }

    pub(super) fn session_event(&mut self, key: CallKey, state: SessionState) {
        let Some(call) = self.calls.get(key.0) else {
            return;
        };
        let (client, session) = (call.client, call.session.clone());
        self.send_event(client, &Event::SessionState { session, state });
    }

    /// `conn=<n> account=<aor> call=<session> sip_call_id=<Call-ID>`: the stable keys every
    /// log line about a call starts with, so one call can be followed from the WebSocket to
    /// SIP (`-` for what is not known).
    pub(super) fn call_context(&self, key: CallKey) -> CallContext<'_> {
        let call = self.calls.get(key.0);
        CallContext {
            conn: call
                .and_then(|c| self.clients.get(c.client.0))
                .map(|c| c.log_id),
            account: call
                .and_then(|c| self.accounts.get(c.account.0))
                .map(|a| a.aor.as_str()),
            session: call.map(|c| c.session.as_str()),
            sip_call_id: call.and_then(|c| c.sip_call_id.as_deref()),
        }
    }

    /// Files a new call everywhere it is looked up, and asks the reactor for its sockets
    /// (none for a chat-only session).
    pub(super) fn insert_call(
        &mut self,
        call: GwCall,
        sockets: Option<super::ports::CallAddrs>,
    ) -> CallKey {
        self.stats.call_started(call.direction);
        // Presence: automatic busy while the account has a call (issue 13).
        self.contacts_call_changed(call.account, true);
        let (client, session, media, sip) =
            (call.client, call.session.clone(), call.media, call.sip);
        let key = CallKey(self.calls.insert(call));
        if let Some(c) = self.clients.get_mut(client.0) {
            c.sessions.live.insert(session, key);
        }
        if let Some(sip) = sip {
            self.calls_by_sip.insert(sip, key);
        }
        if let (Some(media), Some(sockets)) = (media, sockets) {
            self.calls_by_media.insert(media, key);
            self.outputs.push_back(GatewayCommand::OpenMedia {
                media,
                sockets: super::ports::MediaPorts::sockets(sockets),
            });
        }
        key
    }

    /// The call of a SIP call id, with its key.
    pub(super) fn call_of_sip(&mut self, sip: SipCallId) -> Option<(CallKey, &mut GwCall)> {
        let key = *self.calls_by_sip.get(&sip)?;
        Some((key, self.calls.get_mut(key.0)?))
    }
}

/// The stable log keys of one call; see [`Gateway::call_context`].
#[derive(Debug, Clone, Copy)]
pub(super) struct CallContext<'a> {
    conn: Option<u64>,
    account: Option<&'a str>,
    session: Option<&'a str>,
    sip_call_id: Option<&'a str>,
}

impl std::fmt::Display for CallContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.conn {
            Some(n) => write!(f, "conn={n}")?,
            None => f.write_str("conn=-")?,
        }
        write!(
            f,
            " account={} call={} sip_call_id={}",
            self.account.unwrap_or("-"),
            self.session.unwrap_or("-"),
            self.sip_call_id.unwrap_or("-")
        )
    }
}

/// `sip:user@host;params` -> `user@host`, as sylkRTC carries addresses.
pub(super) fn bare_uri(uri: &str) -> String {
    let s = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let s = s
        .strip_prefix("sips:")
        .or_else(|| s.strip_prefix("sip:"))
        .unwrap_or(s);
    s.split([';', '?', '>']).next().unwrap_or(s).to_owned()
}

#[cfg(test)]
mod tests {
    use super::bare_uri;

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
