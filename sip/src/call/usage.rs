//! The INVITE dialog usage both call directions share (RFC 3261 sections 12-15): requests
//! inside the dialog, re-INVITEs, our 2xx retransmitted until its ACK, where in-dialog
//! requests go, and how a call reports and finishes. The direction-specific setup (the
//! INVITE we send or the one we answer) lives in [`super::outgoing`] and
//! [`super::incoming`] and is a [`Phase::Setup`] here.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use engine::Rng;

use super::{
    reason_phrase, CallAction, CallEnd, CallError, CallEvent, Hop, ALLOW, REINVITE_ANSWER_WAIT,
};
use crate::dialog::{Dialog, OutgoingRequest};
use crate::locate::Target;
use crate::msg::{Host, Method, MsgError, NameAddr, ResponseBuilder, SipRequest, SipResponse};
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

/// An unanswered re-INVITE from the peer.
#[derive(Debug, Clone)]
struct PendingReInvite {
    txn: TxnId,
    request: SipRequest,
    offer: String,
    answer_by: Instant,
}

/// What a request inside the dialog did to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InDialog {
    /// Answered; the call goes on.
    Handled,
    /// A BYE, answered 200 (and a pending re-INVITE 487): the direction ends the call.
    Bye,
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
    route_by_dialog: bool,
    /// Our last SDP in the dialog (offer or answer).
    pub(super) local_sdp: Option<String>,
    /// The peer's last SDP in the dialog.
    pub(super) remote_sdp: Option<String>,
    /// Boxed, like the next one: each is ~0.6 KiB and most calls never have them.
    pending_2xx: Option<Box<Pending2xx>>,
    reinvite: Option<Box<PendingReInvite>>,
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
            reinvite: None,
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
        self.actions.pop_front()
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
            self.reinvite.as_ref().map(|r| r.answer_by),
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
        if self.reinvite.as_ref().is_some_and(|r| now >= r.answer_by) {
            if let Some(r) = self.reinvite.take() {
                // The gateway did not answer in time: the offer is refused for now and the
                // call keeps its session (RFC 3261 section 14.2); the peer may retry.
                log::info!(
                    "sip: re-INVITE {} not answered in time, refused",
                    r.request.call_id()
                );
                self.refuse_for_now(r.txn, &r.request, rng);
            }
        }
    }

    /// An ACK matched the dialog. When it acknowledges our pending 2xx, returns the SDP it
    /// carries (`Some(None)`: none); `None` for any other ACK.
    pub(super) fn handle_ack(&mut self, request: &SipRequest) -> Option<Option<String>> {
        let pending = self.pending_2xx.as_ref()?;
        if request.cseq().seq != pending.cseq {
            return None;
        }
        self.pending_2xx = None;
        Some(sdp_of(request.content_type(), request.body()))
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
                if let Some(r) = self.reinvite.take() {
                    self.respond_plain(r.txn, &r.request, 487, "Request Terminated", &[]);
                }
                return InDialog::Bye;
            }
            Method::Invite => self.handle_reinvite(now, txn, request, rng),
            Method::Update => {
                // RFC 4028 refreshes by UPDATE carry no SDP; UPDATE offers are not supported.
                if request.body().is_empty() {
                    if let Some(d) = self.dialog.as_mut() {
                        d.refresh_target(request.contacts().as_slice().first());
                    }
                    self.respond_with_contact(txn, request, 200, "OK", None);
                } else {
                    self.respond_plain(txn, request, 488, "Not Acceptable Here", &[]);
                }
            }
            Method::Options | Method::Info => self.respond_plain(txn, request, 200, "OK", &[]),
            // MESSAGE (RFC 3428), REFER, NOTIFY, ...: the stack hands them to the gateway when
            // it answers that method itself, and answers 501 otherwise.
            _ => self.push(CallAction::IncomingRequest {
                txn,
                request: Box::new(request.clone()),
            }),
        }
        InDialog::Handled
    }

    /// A re-INVITE (RFC 3261 section 14.2).
    fn handle_reinvite(&mut self, now: Instant, txn: TxnId, request: &SipRequest, rng: &mut Rng) {
        if self.reinvite.is_some() {
            // Section 14.2: a second INVITE before we answered the first.
            self.refuse_for_now(txn, request, rng);
            return;
        }
        if self.pending_2xx.is_some() || self.phase != Phase::Confirmed {
            // Our previous offer/answer is not complete (its ACK is outstanding, or the call
            // is not set up): RFC 3261 section 14.2 / RFC 3264 section 4 glare, 491.
            self.respond_plain(txn, request, 491, "Request Pending", &[]);
            return;
        }
        if let Some(d) = self.dialog.as_mut() {
            d.refresh_target(request.contacts().as_slice().first());
        }
        let offer = sdp_of(request.content_type(), request.body());
        match offer {
            // An offer-less re-INVITE (session refresh, RFC 4028) or an unchanged offer: answer
            // with what we have, no need to involve the gateway.
            None => {
                let sdp = self.local_sdp.clone();
                self.answer_reinvite_with(now, txn, request, sdp);
            }
            Some(offer) if Some(&offer) == self.remote_sdp.as_ref() => {
                let sdp = self.local_sdp.clone();
                self.answer_reinvite_with(now, txn, request, sdp);
            }
            Some(offer) => {
                self.reinvite = Some(Box::new(PendingReInvite {
                    txn,
                    request: request.clone(),
                    offer: offer.clone(),
                    answer_by: now + REINVITE_ANSWER_WAIT,
                }));
                self.report(CallEvent::ReInvite { sdp: offer });
            }
        }
    }

    /// RFC 3261 section 14.2: 500 with a Retry-After of a random 0-10 s, so the peer's retry
    /// does not collide again.
    fn refuse_for_now(&mut self, txn: TxnId, request: &SipRequest, rng: &mut Rng) {
        let retry_after = rng.below_or_equal(10).to_string();
        self.respond_plain(
            txn,
            request,
            500,
            "Server Internal Error",
            &[("Retry-After", &retry_after)],
        );
    }

    /// The gateway's answer to a [`CallEvent::ReInvite`].
    pub(super) fn answer_reinvite(&mut self, now: Instant, sdp: String) -> Result<(), CallError> {
        let pending = self.reinvite.take().ok_or(CallError::InvalidState)?;
        self.remote_sdp = Some(pending.offer);
        self.answer_reinvite_with(now, pending.txn, &pending.request, Some(sdp));
        Ok(())
    }

    /// Refuses the pending [`CallEvent::ReInvite`] with `code` (488 when the offer cannot be
    /// translated); the call goes on with the previous session (RFC 3261 section 14.2).
    pub(super) fn reject_reinvite(&mut self, code: u16) -> Result<(), CallError> {
        let pending = self.reinvite.take().ok_or(CallError::InvalidState)?;
        let code = if (400..700).contains(&code) {
            code
        } else {
            488
        };
        self.respond_plain(
            pending.txn,
            &pending.request,
            code,
            reason_phrase(code),
            &[],
        );
        Ok(())
    }

    fn answer_reinvite_with(
        &mut self,
        now: Instant,
        txn: TxnId,
        request: &SipRequest,
        sdp: Option<String>,
    ) {
        if let Some(s) = &sdp {
            self.local_sdp = Some(s.clone());
        }
        let built = self.response_with_contact(request, 200, "OK", sdp.as_deref());
        match built {
            Ok(response) => self.send_2xx(now, txn, request.cseq().seq, response),
            Err(e) => log::warn!("sip: cannot build re-INVITE answer: {e}"),
        }
    }

    /// A new request inside the confirmed dialog (next CSeq, route set) and where it goes;
    /// `None` before the dialog is confirmed or after it ended.
    pub(super) fn dialog_request(&mut self, method: Method) -> Option<(OutgoingRequest, Hop)> {
        if self.phase != Phase::Confirmed {
            return None;
        }
        let hop = self.in_dialog_hop()?;
        let request = self.dialog.as_mut()?.request(method);
        Some((request, hop))
    }

    /// Ends an established call from our side: pending re-INVITE 487, BYE.
    pub(super) fn hang_up_confirmed(&mut self) {
        self.terminate(CallEnd::new(super::CallEndCause::LocalHangup));
        if let Some(r) = self.reinvite.take() {
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

    pub(super) fn send_bye(&mut self) {
        let Some(dialog) = self.dialog.as_mut() else {
            return;
        };
        let bye = dialog.request(Method::Bye);
        if let Some(hop) = self.in_dialog_hop() {
            self.send_request_to(bye, hop);
        }
    }

    pub(super) fn send_request_to(&mut self, request: OutgoingRequest, hop: Hop) {
        self.push(CallAction::SendRequest {
            request,
            hop,
            contact_user: None,
        });
    }

    pub(super) fn in_dialog_hop(&self) -> Option<Hop> {
        self.dialog.as_ref().and_then(|d| self.hop_for(d))
    }

    /// Where in-dialog requests go. The next hop URI (first Route or remote target) when it
    /// is a literal address reachable over UDP; otherwise (domain names, stream flows that
    /// must be reused through NATs, or an outbound proxy) the flow of the INVITE.
    pub(super) fn hop_for(&self, dialog: &Dialog) -> Option<Hop> {
        dialog_hop(dialog, self.hop.clone(), self.route_by_dialog)
    }

    /// A response carrying our tag; dialog-establishing ones (101-299) also carry Contact
    /// and the Record-Route of the request (RFC 3261 section 12.1.1).
    pub(super) fn response_with_contact(
        &self,
        request: &SipRequest,
        status: u16,
        reason: &str,
        sdp: Option<&str>,
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
        if let Some(sdp) = sdp {
            builder = builder.body("application/sdp", sdp.as_bytes().to_vec());
        }
        builder.build()
    }

    fn respond_with_contact(
        &mut self,
        txn: TxnId,
        request: &SipRequest,
        status: u16,
        reason: &str,
        sdp: Option<&str>,
    ) {
        match self.response_with_contact(request, status, reason, sdp) {
            Ok(response) => self.respond(txn, response),
            Err(e) => log::warn!("sip: cannot build a {status}: {e}"),
        }
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
        self.reinvite = None;
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
/// Where requests inside `dialog` go (shared by calls and subscriptions): the next hop URI
/// (first Route or remote target) when it is a literal address reachable over UDP;
/// otherwise (domain names, stream flows that must be reused through NATs, or an outbound
/// proxy, `route_by_dialog` false) `fallback`, the hop of the dialog-creating request.
pub(crate) fn dialog_hop(
    dialog: &Dialog,
    fallback: Option<Hop>,
    route_by_dialog: bool,
) -> Option<Hop> {
    let udp = matches!(
        fallback,
        Some(Hop::Flow {
            kind: Transport::Udp,
            ..
        }) | None
    );
    if !route_by_dialog || !udp {
        return fallback;
    }
    let uri = dialog.next_hop();
    let transport = uri
        .param("transport")
        .and_then(|p| p.value())
        .map(|t| transport_of(&t))
        .unwrap_or(Transport::Udp);
    let ip = match uri.host() {
        Some(Host::Ipv4(a)) => Some(IpAddr::V4(*a)),
        Some(Host::Ipv6(a)) => Some(IpAddr::V6(*a)),
        _ => None,
    };
    match (ip, transport) {
        (Some(ip), Transport::Udp) => Some(Hop::Located(Target {
            transport,
            address: SocketAddr::new(ip, uri.port().unwrap_or(5060)),
            domain: ip.to_string(),
        })),
        _ => fallback,
    }
}

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
