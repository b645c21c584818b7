//! The books of calls: the gateway's call commands, carrying out what each call asks
//! ([`CallAction`]), and the transactions, lookups, dialogs and deadlines filed for it.

use std::time::Instant;

use super::{AccountIdentity, CallEntry, CallId, SendError, SipEvent, SipStack};
use crate::call::{
    Call, CallAction, CallError, Hop, OutgoingCall, OutgoingConfig, SendPurpose, Sent,
};
use crate::dialog::OutgoingRequest;
use crate::msg::{NameAddr, SipRequest};
use crate::transport::Transport;
use crate::txn::{build_cancel, Destination, TxnConfig, MAGIC_COOKIE};

/// What an outgoing INVITE carries beyond its offer.
#[derive(Debug, Clone, Default)]
pub struct InviteOptions {
    /// A second offer, sent once in a new INVITE after 488 (see
    /// [`SipStack::invite_with_retry_offer`]).
    pub retry_offer: Option<String>,
    /// Header fields added after ours (the gateway validated their names).
    pub headers: Vec<(String, String)>,
}

impl SipStack {
    /// The session interval (RFC 4028) our INVITEs ask for and our answers grant when the
    /// peer asks for none; 0 asks for none (peers' own intervals are still honoured).
    pub fn set_session_expires(&mut self, seconds: u32) {
        self.session_expires = seconds;
    }

    /// Adds `methods` to those the gateway answers itself inside calls' dialogs only (INFO,
    /// REFER, NOTIFY of a call); outside dialogs they keep the UAS core's answers. Adds to
    /// [`SipStack::set_incoming_methods`]'s list, which applies both inside and outside.
    pub fn enable_in_dialog_methods(&mut self, methods: &[crate::msg::Method]) {
        for m in methods {
            if !self.in_dialog_methods.contains(m) {
                self.in_dialog_methods.push(m.clone());
            }
        }
    }

    /// Answers INVITEs for registration Contacts with calls (`true`) or 480 (`false`, the
    /// default until the gateway handles call events).
    pub fn set_incoming_calls(&mut self, enabled: bool) {
        self.incoming_calls = enabled;
    }

    /// While `Some(seconds)`, new incoming calls are refused with 503 Service Unavailable and
    /// `Retry-After: seconds` (RFC 3261 section 21.5.4, 20.33): the gateway is draining and
    /// a proxy should try another instance. Calls in progress are not affected.
    pub fn set_refuse_new_calls(&mut self, retry_after: Option<u32>) {
        self.refuse_new_calls = retry_after;
    }

    /// Sets the most simultaneous calls (incoming over it get 503, `invite` fails).
    pub fn set_max_calls(&mut self, max: usize) {
        self.max_calls = max;
    }

    /// Number of live calls, including ones still finishing a CANCEL or BYE (leak checks).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// How many outgoing calls still hold their INVITE as sent (memory tests).
    #[cfg(test)]
    pub(crate) fn calls_holding_invite(&self) -> usize {
        self.calls
            .iter()
            .filter(|(_, e)| matches!(&e.call, crate::call::Call::Outgoing(c) if c.holds_invite()))
            .count()
    }

    /// Where and how another party takes over `call`'s confirmed dialog (attended transfer,
    /// RFC 5589 section 7): the peer's Contact and the `Replaces` value naming the dialog.
    pub fn replacement_of(&self, call: CallId) -> Option<(String, String)> {
        let dialog = self
            .calls
            .get(call.key)
            .filter(|e| e.serial == call.serial)?
            .call
            .dialog()
            .filter(|d| d.state() == crate::dialog::DialogState::Confirmed)?;
        Some((dialog.remote_target().to_string(), dialog.replaces()))
    }

    /// Number of dialogs filed for in-dialog matching (leak checks).
    pub fn dialog_count(&self) -> usize {
        self.dialogs.len()
    }

    /// Calls `callee` (`user@domain[:port]`) from `identity` with the SDP `offer`: the target
    /// is located by RFC 3263 on the callee's domain (or the outbound proxy), 401/407 are
    /// answered from the HA1, and call events follow. The account need not be registered.
    pub fn invite(
        &mut self,
        now: Instant,
        identity: &AccountIdentity,
        callee: &str,
        offer: String,
    ) -> Result<CallId, CallError> {
        self.invite_with_retry_offer(now, identity, callee, offer, None)
    }

    /// [`SipStack::invite`] with a second offer: if the callee refuses the first with 488
    /// Not Acceptable Here, the INVITE goes out once more with `retry_offer` (new
    /// transaction, same Call-ID and From tag, next CSeq: the mechanism of the 401/407 retry)
    /// and [`CallEvent::OfferRetried`](crate::call::CallEvent::OfferRetried) tells the
    /// gateway which offer the answer will answer. A second 488 ends the call as usual.
    pub fn invite_with_retry_offer(
        &mut self,
        now: Instant,
        identity: &AccountIdentity,
        callee: &str,
        offer: String,
        retry_offer: Option<String>,
    ) -> Result<CallId, CallError> {
        let options = InviteOptions {
            retry_offer,
            ..InviteOptions::default()
        };
        self.invite_with(now, identity, callee, offer, options)
    }

    /// [`SipStack::invite`] with [`InviteOptions`]: a second offer for a 488, the gateway's
    /// own header fields.
    pub fn invite_with(
        &mut self,
        now: Instant,
        identity: &AccountIdentity,
        callee: &str,
        offer: String,
        options: InviteOptions,
    ) -> Result<CallId, CallError> {
        let InviteOptions {
            retry_offer,
            headers,
        } = options;
        if self.calls.len() >= self.max_calls {
            return Err(CallError::TooManyCalls);
        }
        // A user of the local domain bound at SIP phones only is called there directly.
        let callee = self
            .local_redirect(now, callee)
            .unwrap_or_else(|| callee.to_owned());
        let callee = callee.as_str();
        let config = OutgoingConfig {
            user: identity.user.clone(),
            domain: identity.domain.clone(),
            display_name: identity.display_name.clone(),
            user_agent: identity
                .user_agent
                .clone()
                .unwrap_or_else(|| self.config.user_agent.clone()),
            callee: callee.to_owned(),
            call_id: format!("{}@sylk-gateway", self.random_token(20)),
            from_tag: self.random_token(10),
            contact_user: format!("sylk-{}", self.random_token(12)),
            sdp: offer,
            retry_offer,
            session_expires: self.session_expires,
            headers,
        };
        let sip_call_id = config.call_id.clone();
        let call = OutgoingCall::new(
            config,
            identity.ha1.clone(),
            TxnConfig::default(),
            self.config.outbound_proxy.is_none(),
        )?;
        let id = self.insert_call(Call::outgoing(call), sip_call_id);
        self.dirty_calls.push(id);
        self.drive(now);
        Ok(id)
    }

    /// The SIP Call-ID of a live call.
    pub fn call_id_of(&self, call: CallId) -> Option<&str> {
        self.calls
            .get(call.key)
            .filter(|e| e.serial == call.serial)
            .map(|e| e.sip_call_id.as_str())
    }

    /// Our last SDP in a live call's dialog (offer or answer, then re-INVITE answers), e.g.
    /// to answer a hold re-INVITE with the same media, directions mirrored.
    pub fn local_sdp(&self, call: CallId) -> Option<&str> {
        self.calls
            .get(call.key)
            .filter(|e| e.serial == call.serial)
            .and_then(|e| e.call.local_sdp())
    }

    /// Sends 180 Ringing for an incoming call.
    pub fn ring(&mut self, now: Instant, call: CallId) -> Result<(), CallError> {
        self.with_call(now, call, |c, now| c.incoming_mut()?.ring(now))
    }

    /// Answers an incoming call with 200 OK carrying `sdp` (an answer, or our offer when the
    /// INVITE had none); retransmitted until the ACK, then
    /// [`CallEvent::Confirmed`](crate::call::CallEvent::Confirmed).
    pub fn answer(&mut self, now: Instant, call: CallId, sdp: String) -> Result<(), CallError> {
        self.answer_with(now, call, sdp, Vec::new())
    }

    /// [`SipStack::answer`] with the gateway's own header fields in the 200.
    pub fn answer_with(
        &mut self,
        now: Instant,
        call: CallId,
        sdp: String,
        headers: Vec<(String, String)>,
    ) -> Result<(), CallError> {
        self.with_call(now, call, |c, now| {
            c.incoming_mut()?.answer(now, sdp, headers)
        })
    }

    /// Rejects an unanswered incoming call with `code` (3xx-6xx; anything else means 486).
    pub fn decline(&mut self, now: Instant, call: CallId, code: u16) -> Result<(), CallError> {
        self.with_call(now, call, |c, _| c.incoming_mut()?.decline(code))
    }

    /// Ends a call in whatever state it is (CANCEL, decline 486, or BYE); reports
    /// [`CallEvent::Terminated`](crate::call::CallEvent::Terminated) with
    /// [`CallEndCause::LocalHangup`](crate::call::CallEndCause::LocalHangup).
    pub fn hangup(&mut self, now: Instant, call: CallId) -> Result<(), CallError> {
        self.with_call(now, call, |c, now| {
            c.hangup(now);
            Ok(())
        })
    }

    /// Answers the pending [`CallEvent::ReOffer`](crate::call::CallEvent::ReOffer) with
    /// 200 OK and `sdp`.
    pub fn answer_reinvite(
        &mut self,
        now: Instant,
        call: CallId,
        sdp: String,
    ) -> Result<(), CallError> {
        self.answer_reinvite_with(now, call, sdp, Vec::new())
    }

    /// [`SipStack::answer_reinvite`] with the gateway's own header fields in the 200.
    pub fn answer_reinvite_with(
        &mut self,
        now: Instant,
        call: CallId,
        sdp: String,
        headers: Vec<(String, String)>,
    ) -> Result<(), CallError> {
        self.with_call(now, call, |c, now| c.answer_reinvite(now, sdp, headers))
    }

    /// Sends a re-INVITE offering `sdp` in the confirmed dialog of `call`, with `headers`
    /// after the dialog's own (RFC 3261 section 14.1): 401/407 answered from the account's
    /// HA1, a 491 retried once after the section 14.1 back-off, a wait while an INVITE of
    /// the peer is being answered. [`CallEvent::ReOfferAnswered`](crate::call::CallEvent)
    /// or [`CallEvent::ReOfferFailed`](crate::call::CallEvent) follows.
    pub fn reinvite(
        &mut self,
        now: Instant,
        call: CallId,
        sdp: String,
        headers: Vec<(String, String)>,
    ) -> Result<(), CallError> {
        self.with_call(now, call, |c, _| c.reinvite(sdp, headers))
    }

    /// Refuses the pending [`CallEvent::ReOffer`](crate::call::CallEvent::ReOffer) with
    /// `code` (4xx-6xx, else 488); the call keeps its previous session.
    pub fn reject_reinvite(
        &mut self,
        now: Instant,
        call: CallId,
        code: u16,
    ) -> Result<(), CallError> {
        self.with_call(now, call, |c, _| c.reject_reinvite(code))
    }

    fn with_call(
        &mut self,
        now: Instant,
        call: CallId,
        f: impl FnOnce(&mut Call, Instant) -> Result<(), CallError>,
    ) -> Result<(), CallError> {
        let e = self.call_entry(call).ok_or(CallError::UnknownCall)?;
        let result = f(&mut e.call, now);
        self.dirty_calls.push(call);
        self.drive(now);
        result
    }

    /// The live entry of `call`.
    pub(super) fn call_entry(&mut self, call: CallId) -> Option<&mut CallEntry> {
        self.calls
            .get_mut(call.key)
            .filter(|e| e.serial == call.serial)
    }

    pub(super) fn insert_call(&mut self, call: Call, sip_call_id: String) -> CallId {
        self.next_call_serial += 1;
        let serial = self.next_call_serial;
        let key = self.calls.insert(CallEntry {
            call,
            serial,
            sip_call_id,
            lookup: None,
            txns: Vec::new(),
        });
        CallId { key, serial }
    }

    /// Resolves a call's hop to a transaction destination and its transport.
    fn resolve_hop(
        &mut self,
        now: Instant,
        hop: &Hop,
    ) -> Result<(Destination, Transport), SendError> {
        match hop {
            Hop::Flow { target, kind } => Ok((*target, *kind)),
            Hop::Located(t) => {
                let destination =
                    self.transport
                        .destination_for(now, t.transport, t.address, &t.domain)?;
                Ok((destination, t.transport))
            }
        }
    }

    /// Builds one request of a call with a fresh Via (and our Contact for `contact_user`)
    /// for the transport of `hop`.
    fn prepare_call_request(
        &mut self,
        now: Instant,
        request: &OutgoingRequest,
        hop: &Hop,
        contact_user: Option<&str>,
    ) -> Result<(SipRequest, Destination, Transport, Option<NameAddr>), SendError> {
        let (target, kind) = self.resolve_hop(now, hop)?;
        let branch = format!("{MAGIC_COOKIE}{}", self.random_token(16));
        let via = self.transport.via(kind, &branch);
        let contact = match contact_user {
            Some(user) => Some(self.contact_for(user, kind)?),
            None => None,
        };
        let built = request.build(&via, contact.as_ref())?;
        Ok((built, target, kind, contact))
    }

    /// Sends a request of a call (or a non-INVITE client request) in a new client
    /// transaction.
    pub(super) fn send_call_request(
        &mut self,
        now: Instant,
        request: &OutgoingRequest,
        hop: &Hop,
        contact_user: Option<&str>,
    ) -> Result<Sent, SendError> {
        let (built, target, kind, contact) =
            self.prepare_call_request(now, request, hop, contact_user)?;
        let txn = self.txn.send_request(now, built.clone(), target)?;
        Ok(Sent {
            txn,
            target,
            kind,
            request: built,
            contact,
        })
    }

    /// Executes a call's requested actions, then re-arms its timer.
    pub(super) fn run_call(&mut self, now: Instant, id: CallId) {
        loop {
            let Some(e) = self.call_entry(id) else {
                return;
            };
            let Some(action) = e.call.poll_action() else {
                break;
            };
            match action {
                CallAction::Locate(parts) => {
                    let lookup = self.locator.locate(now, &parts);
                    if let Some(e) = self.call_entry(id) {
                        e.lookup = Some(lookup);
                    }
                    self.call_lookups.insert(lookup, id);
                }
                CallAction::SendRequest {
                    request,
                    hop,
                    contact_user,
                    purpose,
                } => {
                    let sent = self.send_call_request(now, &request, &hop, contact_user.as_deref());
                    match (&sent, purpose) {
                        (Ok(_), SendPurpose::Detached) => {}
                        (Ok(s), _) => {
                            // Its responses come back to the call.
                            self.call_txns.insert(s.txn, id);
                            if let Some(e) = self.call_entry(id) {
                                e.txns.push(s.txn);
                            }
                        }
                        (Err(why), _) => log::info!("sip: {} not sent: {why}", request.method),
                    }
                    if let Some(e) = self.call_entry(id) {
                        e.call.handle_request_sent(purpose, sent);
                    }
                }
                CallAction::SendDetached {
                    request,
                    hop,
                    digest,
                } => {
                    let req = crate::request::ClientRequest::in_dialog(request, hop, digest);
                    self.insert_request_for(req, super::RequestOwner::Detached);
                }
                CallAction::SendAck { request, hop } => {
                    // The ACK for a 2xx is not a transaction (RFC 3261 section 17.1.1.3).
                    let sent = self
                        .prepare_call_request(now, &request, &hop, None)
                        .and_then(|(ack, target, _, _)| {
                            Ok(self.transport.send(now, &target, ack.to_bytes())?)
                        });
                    if let Err(why) = sent {
                        log::info!("sip: ACK not sent: {why}");
                    }
                }
                CallAction::SendCancel { invite, target } => {
                    let cancel = self.txn.request(invite).map(build_cancel);
                    match cancel {
                        Some(Ok(cancel)) => {
                            // The CANCEL's own transaction needs no owner: its answer changes
                            // nothing, the INVITE's final response does (RFC 3261 9.1).
                            if let Err(e) = self.txn.send_request(now, cancel, target) {
                                log::info!("sip: CANCEL not sent: {e}");
                            }
                        }
                        Some(Err(e)) => log::info!("sip: CANCEL not built: {e}"),
                        None => {}
                    }
                }
                CallAction::Respond { txn, response } => {
                    if let Err(e) = self.txn.send_response(now, txn, *response) {
                        log::debug!("sip: call response not sent: {e}");
                    }
                }
                CallAction::Abandon { txn } => {
                    self.call_txns.remove(&txn);
                    // The transaction layer has no "destroy": a transport error ends a
                    // Proceeding INVITE transaction at once, and its event finds no owner.
                    self.txn.handle_transport_error(now, txn);
                }
                CallAction::DialogCreated(key) => {
                    self.dialogs.insert(key, id);
                }
                CallAction::DialogRemoved(key) => {
                    if self.dialogs.get(&key) == Some(&id) {
                        self.dialogs.remove(&key);
                    }
                }
                CallAction::IncomingRequest { txn, request } => {
                    let method = request.method();
                    if self.surfaces(method) || self.in_dialog_methods.contains(method) {
                        self.file_incoming(now, txn, request, super::RequestTarget::Call(id));
                    } else {
                        let allow = [("Allow", crate::call::ALLOW)];
                        self.respond(now, txn, &request, 501, "Not Implemented", &allow);
                    }
                }
                CallAction::Report(event) => {
                    self.events.push_back(SipEvent::Call { call: id, event })
                }
                CallAction::Finished => {
                    let e = self.calls.remove(id.key);
                    if let Some(lookup) = e.lookup {
                        self.locator.cancel(lookup);
                        self.call_lookups.remove(&lookup);
                    }
                    for txn in e.txns {
                        self.call_txns.remove(&txn);
                    }
                    for key in e.call.dialog_keys() {
                        if self.dialogs.get(&key) == Some(&id) {
                            self.dialogs.remove(&key);
                        }
                    }
                    self.call_deadlines.cancel(id);
                    return;
                }
            }
        }
        if let Some(deadline) = self.call_entry(id).map(|e| e.call.poll_timeout()) {
            self.call_deadlines.set(id, deadline);
        }
    }
}
