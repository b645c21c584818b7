//! The INVITE dialog usage both call directions share (RFC 3261 sections 12-15): requests
//! inside the dialog, re-INVITEs, our 2xx retransmitted until its ACK, where in-dialog
//! requests go, and how a call reports and finishes. The direction-specific setup (the
//! INVITE we send or the one we answer) lives in [`super::outgoing`] and
//! [`super::incoming`] and is a [`Phase::Setup`] here.

use std::collections::VecDeque;
use std::time::Instant;

use engine::Rng;

use super::local_offer::{OwnReInvite, ReInviteAck};
use super::remote_offer::PendingRemoteOffer;
use super::route::LocatedHop;
use super::session_timer::SessionTimer;
use super::{CallAction, CallEnd, CallEvent, Hop, ALLOW};
use crate::auth::DigestClient;
use crate::dialog::{Dialog, OutgoingRequest};
use crate::msg::{Method, MsgError, NameAddr, ResponseBuilder, SipRequest, SipResponse};
use crate::transport::Transport;
use crate::txn::{TxnConfig, TxnId};

/// Where a call is: setting up (in its direction's terms `S`), established, or over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase<S> {
    /// The initial INVITE transaction is under way.
    Setup(S),
    /// Dialog confirmed both ways.
    Confirmed,
    /// Finished.
    Done,
}

/// A 2xx we retransmit until its ACK (RFC 3261 section 13.3.1.4; RFC 6026 leaves this to
/// the TU): T1 doubling up to T2, giving up after 64*T1.
#[derive(Debug, Clone)]
struct Pending2xx {
    txn: TxnId,
    cseq: u32,
    response: SipResponse,
    interval: std::time::Duration,
    next_at: Instant,
    give_up_at: Instant,
}

/// What a request inside the dialog did to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InDialog {
    /// Answered; the call goes on.
    Handled,
    /// A BYE, answered 200 (and a pending re-INVITE 487): the direction ends the call.
    Bye,
    /// A PRACK (RFC 3262): the direction answers it.
    Prack,
}

/// The state both directions share.
#[derive(Debug)]
pub(super) struct DialogUsage<S> {
    pub(super) phase: Phase<S>,
    pub(super) timers: TxnConfig,
    pub(super) dialog: Option<Dialog>,
    /// Our Contact, for 2xx responses (RFC 3261 section 12.1.1) and target refreshes.
    pub(super) contact: Option<NameAddr>,
    /// Where in-dialog requests go when the next hop is not a literal address.
    pub(super) hop: Option<Hop>,
    /// False with an outbound proxy: every request goes through it.
    pub(super) route_by_dialog: bool,
    /// Our last SDP in the dialog (offer or answer).
    pub(super) local_sdp: Option<String>,
    /// The peer's last SDP in the dialog.
    pub(super) remote_sdp: Option<String>,
    /// Boxed, like the next one: each is ~0.6 KiB and most calls never have them.
    pending_2xx: Option<Box<Pending2xx>>,
    pub(super) remote_offer: Option<Box<PendingRemoteOffer>>,
    /// Our own re-INVITE, from the moment it is asked for until its outcome.
    pub(super) own: Option<Box<OwnReInvite>>,
    /// The ACK of our last accepted re-INVITE, for its 2xx retransmissions.
    pub(super) reinvite_ack: Option<ReInviteAck>,
    /// We sent the dialog's INVITE, so we own its Call-ID (RFC 3261 section 14.1 back-off).
    pub(super) owns_call_id: bool,
    /// Answers 401/407 to our requests inside the dialog from the account's HA1.
    pub(super) digest: Option<DigestClient>,
    /// User-Agent of our requests inside the dialog.
    pub(super) user_agent: String,
    /// The next hop host name of the dialog located by RFC 3263 (`route.rs`).
    pub(super) located: Option<LocatedHop>,
    /// RFC 4028 session timer.
    pub(super) session_timer: SessionTimer,
    /// An UPDATE may carry an offer before the dialog is confirmed: the early answer to our
    /// INVITE arrived (RFC 3311 section 5.1).
    pub(super) early_offers_allowed: bool,
    /// `Terminated` was reported; nothing more is.
    ended: bool,
    actions: VecDeque<CallAction>,
}

impl<S: Copy + PartialEq> DialogUsage<S> {
    pub(super) fn new(setup: S, timers: TxnConfig, route_by_dialog: bool) -> Self {
        DialogUsage {
            phase: Phase::Setup(setup),
            timers,
            dialog: None,
            contact: None,
            hop: None,
            route_by_dialog,
            local_sdp: None,
            remote_sdp: None,
            pending_2xx: None,
            remote_offer: None,
            own: None,
            reinvite_ack: None,
            owns_call_id: false,
            digest: None,
            user_agent: String::new(),
            located: None,
            session_timer: SessionTimer::default(),
            early_offers_allowed: false,
            ended: false,
            actions: VecDeque::new(),
        }
    }

    /// The setup phase, while there is one.
    pub(super) fn setup(&self) -> Option<S> {
        match self.phase {
            Phase::Setup(s) => Some(s),
            Phase::Confirmed | Phase::Done => None,
        }
    }

    pub(super) fn poll_action(&mut self) -> Option<CallAction> {
        self.locate_next_hop();
        let action = self.actions.pop_front();
        if action.is_none() && self.actions.capacity() > 0 {
            // Drained: an action is ~350 bytes and a call spends its life idle, so its
            // queue holds no room (1.4 KiB) between the rare bursts of signalling.
            self.actions = VecDeque::new();
        }
        action
    }

    pub(super) fn push(&mut self, action: CallAction) {
        self.actions.push_back(action);
    }

    /// The 2xx retransmission and re-INVITE answer deadlines.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        [
            self.pending_2xx
                .as_ref()
                .map(|p| p.next_at.min(p.give_up_at)),
            self.remote_offer.as_ref().map(|r| r.answer_by),
            self.own.as_ref().and_then(|o| o.deadline()),
            self.session_timer_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Retransmits our 2xx or gives up on its ACK; refuses a re-INVITE the gateway did not
    /// answer in time. Early calls are harmless.
    pub(super) fn handle_timeout(&mut self, now: Instant, rng: &mut Rng) {
        if let Some(p) = self.pending_2xx.as_mut() {
            if now >= p.give_up_at {
                // RFC 3261 section 13.3.1.4: no ACK after 64*T1: end the session with BYE.
                self.pending_2xx = None;
                self.terminate(CallEnd::new(super::CallEndCause::AckTimeout));
                self.send_bye();
                self.finish();
                return;
            }
            if now >= p.next_at {
                p.interval = (p.interval * 2).min(self.timers.t2);
                p.next_at = now + p.interval;
                let (txn, response) = (p.txn, p.response.clone());
                self.respond(txn, response);
            }
        }
        if let Some(r) = self
            .remote_offer
            .as_mut()
            .filter(|r| now >= r.answer_by && !r.warned)
        {
            // The gateway may still answer on its own (without the browser) right away.
            r.warned = true;
            r.answer_by = now + super::remote_offer::REOFFER_GRACE;
            self.report(CallEvent::ReOfferUnanswered);
        }
        if self
            .remote_offer
            .as_ref()
            .is_some_and(|r| now >= r.answer_by)
        {
            if let Some(r) = self.remote_offer.take() {
                // The gateway did not answer in time: the offer is refused for now and the
                // call keeps its session (RFC 3261 section 14.2); the peer may retry.
                log::info!(
                    "sip: re-INVITE {} not answered in time, refused",
                    r.request.call_id()
                );
                self.refuse_for_now(r.txn, &r.request, rng);
                self.send_own_reinvite_if_free();
            }
        }
        self.handle_reinvite_timeout(now);
        self.handle_session_timer_timeout(now);
    }

    /// An ACK matched the dialog. When it acknowledges our pending 2xx, returns the SDP it
    /// carries (`Some(None)`: none); `None` for any other ACK.
    pub(super) fn handle_ack(&mut self, request: &SipRequest) -> Option<Option<String>> {
        let pending = self.pending_2xx.as_ref()?;
        if request.cseq().seq != pending.cseq {
            return None;
        }
        self.pending_2xx = None;
        let sdp = sdp_of(request.content_type(), request.body());
        self.send_own_reinvite_if_free();
        Some(sdp)
    }

    /// Whether our 2xx to an INVITE still waits for its ACK.
    pub(super) fn pending_2xx_outstanding(&self) -> bool {
        self.pending_2xx.is_some()
    }

    /// Whether the peer's offer (re-INVITE) waits for our answer.
    pub(super) fn has_remote_offer(&self) -> bool {
        self.remote_offer.is_some()
    }

    /// A request (not ACK) matched the dialog, in server transaction `txn`.
    pub(super) fn handle_in_dialog_request(
        &mut self,
        now: Instant,
        txn: TxnId,
        request: &SipRequest,
        rng: &mut Rng,
    ) -> InDialog {
        let Some(dialog) = self.dialog.as_mut() else {
            return InDialog::Handled;
        };
        if dialog.accept_remote_cseq(request).is_err() {
            self.respond_plain(txn, request, 500, "Server Internal Error", &[]);
            return InDialog::Handled;
        }
        match request.method() {
            Method::Bye => {
                self.respond_plain(txn, request, 200, "OK", &[]);
                // RFC 3261 section 15.1.2: pending requests of the dialog get 487.
                if let Some(r) = self.remote_offer.take() {
                    self.respond_plain(r.txn, &r.request, 487, "Request Terminated", &[]);
                }
                return InDialog::Bye;
            }
            Method::Invite => self.handle_reinvite(now, txn, request, rng),
            Method::Update => self.handle_update(now, txn, request, rng),
            Method::Options => self.respond_plain(txn, request, 200, "OK", &[]),
            Method::Prack => return InDialog::Prack,
            // MESSAGE (RFC 3428), REFER, NOTIFY, ...: the stack hands them to the gateway when
            // it answers that method itself, and answers 501 otherwise.
            _ => self.push(CallAction::IncomingRequest {
                txn,
                request: Box::new(request.clone()),
            }),
        }
        InDialog::Handled
    }

    /// A new request inside the confirmed dialog (next CSeq, route set) and where it goes;
    /// `None` before the dialog is confirmed or after it ended.
    pub(super) fn dialog_request(&mut self, method: Method) -> Option<(OutgoingRequest, Hop)> {
        if self.phase != Phase::Confirmed {
            return None;
        }
        let hop = self.in_dialog_hop()?;
        let mut request = self.dialog.as_mut()?.request(method);
        if !self.user_agent.is_empty() {
            request
                .headers
                .push(("User-Agent".to_owned(), self.user_agent.clone()));
        }
        Some((request, hop))
    }

    /// Ends an established call from our side: pending re-INVITE 487, BYE.
    pub(super) fn hang_up_confirmed(&mut self) {
        self.terminate(CallEnd::new(super::CallEndCause::LocalHangup));
        if let Some(r) = self.remote_offer.take() {
            self.respond_plain(r.txn, &r.request, 487, "Request Terminated", &[]);
        }
        self.send_bye();
        self.finish();
    }

    /// Sends a 2xx and retransmits it until its ACK.
    pub(super) fn send_2xx(&mut self, now: Instant, txn: TxnId, cseq: u32, response: SipResponse) {
        self.respond(txn, response.clone());
        // Reliable transports need no retransmission (section 13.3.1.4), but the ACK still
        // has to come within 64*T1.
        let reliable = matches!(self.hop, Some(Hop::Flow { target, .. }) if target.reliable);
        let interval = self.timers.t1;
        self.pending_2xx = Some(Box::new(Pending2xx {
            txn,
            cseq,
            response,
            interval,
            next_at: if reliable {
                now + self.timers.timeout()
            } else {
                now + interval
            },
            give_up_at: now + self.timers.timeout(),
        }));
    }

    /// Sends BYE (RFC 3261 section 15.1.1). It outlives the call, as a request of the stack
    /// that answers 401/407 from the HA1.
    pub(super) fn send_bye(&mut self) {
        let Some(dialog) = self.dialog.as_mut() else {
            return;
        };
        let mut bye = dialog.request(Method::Bye);
        bye.headers
            .push(("User-Agent".to_owned(), self.user_agent.clone()));
        if let Some(hop) = self.in_dialog_hop() {
            self.push(CallAction::SendDetached {
                request: bye,
                hop,
                digest: self.digest.clone(),
            });
        }
    }

    pub(super) fn send_request_to(&mut self, request: OutgoingRequest, hop: Hop) {
        self.push(CallAction::SendRequest {
            request,
            hop,
            contact_user: None,
            purpose: super::SendPurpose::Detached,
        });
    }

    /// A response carrying our tag; dialog-establishing ones (101-299) also carry Contact
    /// and the Record-Route of the request (RFC 3261 section 12.1.1).
    pub(super) fn response_with_contact(
        &self,
        request: &SipRequest,
        status: u16,
        reason: &str,
        sdp: Option<&str>,
        extra: &[(String, String)],
    ) -> Result<SipResponse, MsgError> {
        let tag = self.dialog.as_ref().map(|d| d.key().local_tag.clone());
        let mut builder = ResponseBuilder::from_request(request, status, reason, tag.as_deref());
        if (101..300).contains(&status) {
            for rr in request.headers().get_all("Record-Route") {
                builder = builder.header("Record-Route", rr);
            }
            if let Some(contact) = &self.contact {
                builder = builder.contact(contact);
            }
        }
        if status == 200 {
            builder = builder.header("Allow", ALLOW);
        }
        for (name, value) in extra {
            builder = builder.header(name, value);
        }
        if let Some(sdp) = sdp {
            builder = builder.body("application/sdp", sdp.as_bytes().to_vec());
        }
        builder.build()
    }

    pub(super) fn respond_plain(
        &mut self,
        txn: TxnId,
        request: &SipRequest,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let tag = self.dialog.as_ref().map(|d| d.key().local_tag.clone());
        let mut builder = ResponseBuilder::from_request(request, status, reason, tag.as_deref());
        for (name, value) in extra {
            builder = builder.header(name, value);
        }
        match builder.build() {
            Ok(response) => self.respond(txn, response),
            Err(e) => log::warn!("sip: cannot build a {status}: {e}"),
        }
    }

    pub(super) fn respond(&mut self, txn: TxnId, response: SipResponse) {
        self.push(CallAction::Respond {
            txn,
            response: Box::new(response),
        });
    }

    /// Files `dialog` under its key and keeps it.
    pub(super) fn set_dialog(&mut self, dialog: Dialog) {
        self.push(CallAction::DialogCreated(dialog.key().clone()));
        self.dialog = Some(dialog);
    }

    /// Forgets the dialog, if any.
    pub(super) fn drop_dialog(&mut self) {
        if let Some(d) = self.dialog.take() {
            self.push(CallAction::DialogRemoved(d.key().clone()));
        }
    }

    pub(super) fn report(&mut self, event: CallEvent) {
        if !self.ended {
            self.push(CallAction::Report(event));
        }
    }

    /// Reports the end, once.
    pub(super) fn terminate(&mut self, end: CallEnd) {
        if !self.ended {
            self.push(CallAction::Report(CallEvent::Terminated(end)));
            self.ended = true;
        }
    }

    /// Nothing more to do: the stack forgets the call.
    pub(super) fn finish(&mut self) {
        if self.phase == Phase::Done {
            return;
        }
        self.phase = Phase::Done;
        self.pending_2xx = None;
        self.remote_offer = None;
        self.own = None;
        self.drop_dialog();
        self.push(CallAction::Finished);
    }
}

/// The body as SDP text, if there is a non-empty `application/sdp` (or untyped) body.
pub(super) fn sdp_of(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let is_sdp = content_type.is_none_or(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"))
    });
    if !is_sdp {
        return None;
    }
    std::str::from_utf8(body).ok().map(str::to_owned)
}

/// The transport of a Via or URI `transport` token (UDP for anything else).
pub(super) fn transport_of(token: &str) -> Transport {
    if token.eq_ignore_ascii_case("tls") {
        Transport::Tls
    } else if token.eq_ignore_ascii_case("tcp") {
        Transport::Tcp
    } else {
        Transport::Udp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_of_ignores_other_bodies() {
        assert_eq!(sdp_of(Some("application/sdp"), b"v=0"), Some("v=0".into()));
        assert_eq!(sdp_of(Some("text/plain"), b"v=0"), None);
        assert_eq!(sdp_of(Some("application/sdp"), b""), None);
    }
}
