//! The peer's offers inside the dialog: re-INVITEs (RFC 3261 section 14.2) and UPDATEs
//! (RFC 3311), in the confirmed dialog and, for UPDATE, in the early dialog of an outgoing
//! call once its early answer arrived. An unchanged offer (a session refresh) is answered at
//! once with our current session; a changed one goes to the gateway
//! ([`CallEvent::ReOffer`]), whose answer goes in the 200. Offers that cross one of ours get
//! 491, offers that arrive while another waits for our answer 500 with a Retry-After.

use std::time::Instant;

use engine::Rng;

use super::session_timer::TimerAnswer;
use super::usage::{sdp_of, DialogUsage, Phase};
use super::{reason_phrase, CallError, CallEvent, REINVITE_ANSWER_WAIT};
use crate::msg::{Method, SipRequest};
use crate::txn::TxnId;

/// An unanswered offer from the peer.
#[derive(Debug, Clone)]
pub(super) struct PendingRemoteOffer {
    pub(super) txn: TxnId,
    pub(super) request: SipRequest,
    pub(super) offer: String,
    pub(super) answer_by: Instant,
    /// [`CallEvent::ReOfferUnanswered`] went out: the next expiry refuses the offer.
    pub(super) warned: bool,
}

/// How long the gateway has after [`CallEvent::ReOfferUnanswered`] to answer on its own.
pub const REOFFER_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

impl<S: Copy + PartialEq> DialogUsage<S> {
    /// A re-INVITE (RFC 3261 section 14.2).
    pub(super) fn handle_reinvite(
        &mut self,
        now: Instant,
        txn: TxnId,
        request: &SipRequest,
        rng: &mut Rng,
    ) {
        if self.remote_offer.is_some() {
            // Section 14.2: a second INVITE before we answered the first.
            self.refuse_for_now(txn, request, rng);
            return;
        }
        let ours_in_progress = self.own.as_ref().is_some_and(|o| o.in_progress());
        if self.pending_2xx_outstanding() || self.phase != Phase::Confirmed || ours_in_progress {
            // Our previous offer/answer is not complete (its ACK is outstanding, our own
            // re-INVITE is in progress, or the call is not set up): RFC 3261 section 14.2 /
            // RFC 3264 section 4 glare, 491.
            self.respond_plain(txn, request, 491, "Request Pending", &[]);
            return;
        }
        self.yield_backed_off_offer();
        self.take_offer(now, txn, request);
    }

    /// An UPDATE (RFC 3311 section 5.2): a target refresh, a session refresh (RFC 4028) when
    /// it has no body, a new offer when it has one.
    pub(super) fn handle_update(
        &mut self,
        now: Instant,
        txn: TxnId,
        request: &SipRequest,
        rng: &mut Rng,
    ) {
        let early = matches!(self.phase, Phase::Setup(_));
        let has_offer = sdp_of(request.content_type(), request.body()).is_some();
        if has_offer {
            let ours_in_progress = self.own.as_ref().is_some_and(|o| o.in_progress());
            if ours_in_progress {
                // Section 5.2: an offer of ours is waiting for its answer.
                self.respond_plain(txn, request, 491, "Request Pending", &[]);
                return;
            }
            if self.remote_offer.is_some()
                || self.pending_2xx_outstanding()
                || (early && !self.early_offers_allowed)
            {
                // Section 5.2: an offer of the peer's is not answered yet (or, before an early
                // answer, the INVITE's offer/answer is not complete).
                self.refuse_for_now(txn, request, rng);
                return;
            }
        }
        if matches!(self.phase, Phase::Done) {
            self.respond_plain(txn, request, 481, "Call/Transaction Does Not Exist", &[]);
            return;
        }
        if has_offer {
            self.yield_backed_off_offer();
        }
        self.take_offer(now, txn, request);
    }

    /// Answers an unchanged (or absent) offer at once, hands a changed one to the gateway.
    fn take_offer(&mut self, now: Instant, txn: TxnId, request: &SipRequest) {
        if let Some(min_se) = self.session_interval_too_small(request) {
            // RFC 4028 section 9.
            let min_se = min_se.to_string();
            self.respond_plain(
                txn,
                request,
                422,
                "Session Interval Too Small",
                &[("Min-SE", &min_se)],
            );
            return;
        }
        if let Some(d) = self.dialog.as_mut() {
            d.refresh_target(request.contacts().as_slice().first());
        }
        match sdp_of(request.content_type(), request.body()) {
            // No offer (a session refresh, RFC 4028; for a re-INVITE our 200 then carries our
            // session as the offer) or the offer we already have: answer with our session,
            // no need to involve the gateway.
            None => {
                let sdp = match request.method() {
                    Method::Invite => self.local_sdp.clone(),
                    _ => None,
                };
                self.answer_offer_with(now, txn, request, sdp);
            }
            Some(offer) if Some(&offer) == self.remote_sdp.as_ref() => {
                let sdp = self.local_sdp.clone();
                self.answer_offer_with(now, txn, request, sdp);
            }
            Some(offer) => {
                self.remote_offer = Some(Box::new(PendingRemoteOffer {
                    txn,
                    request: request.clone(),
                    offer: offer.clone(),
                    answer_by: now + REINVITE_ANSWER_WAIT,
                    warned: false,
                }));
                self.report(CallEvent::ReOffer { sdp: offer });
            }
        }
    }

    /// RFC 3261 section 14.2: 500 with a Retry-After of a random 0-10 s, so the peer's retry
    /// does not collide again (also RFC 3311 section 5.2 for UPDATE).
    pub(super) fn refuse_for_now(&mut self, txn: TxnId, request: &SipRequest, rng: &mut Rng) {
        let retry_after = rng.below_or_equal(10).to_string();
        self.respond_plain(
            txn,
            request,
            500,
            "Server Internal Error",
            &[("Retry-After", &retry_after)],
        );
    }

    /// The gateway's answer to a [`CallEvent::ReOffer`], with `headers` after ours.
    pub(super) fn answer_reinvite(
        &mut self,
        now: Instant,
        sdp: String,
        headers: Vec<(String, String)>,
    ) -> Result<(), CallError> {
        let pending = self.remote_offer.take().ok_or(CallError::InvalidState)?;
        self.remote_sdp = Some(pending.offer);
        self.answer_offer_with_headers(now, pending.txn, &pending.request, Some(sdp), headers);
        Ok(())
    }

    /// Refuses the pending [`CallEvent::ReOffer`] with `code` (488 when the offer cannot be
    /// translated); the call goes on with the previous session (RFC 3261 section 14.2).
    pub(super) fn reject_reinvite(&mut self, code: u16) -> Result<(), CallError> {
        let pending = self.remote_offer.take().ok_or(CallError::InvalidState)?;
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
        self.send_own_reinvite_if_free();
        Ok(())
    }

    /// The 200 to the peer's re-INVITE (retransmitted until its ACK) or UPDATE, with `sdp`
    /// and our session timer answer (RFC 4028 section 9).
    fn answer_offer_with(
        &mut self,
        now: Instant,
        txn: TxnId,
        request: &SipRequest,
        sdp: Option<String>,
    ) {
        self.answer_offer_with_headers(now, txn, request, sdp, Vec::new());
    }

    fn answer_offer_with_headers(
        &mut self,
        now: Instant,
        txn: TxnId,
        request: &SipRequest,
        sdp: Option<String>,
        headers: Vec<(String, String)>,
    ) {
        if let Some(s) = &sdp {
            self.local_sdp = Some(s.clone());
        }
        let mut extra = match self.session_timer_answer(now, request) {
            TimerAnswer::Headers(h) => h,
            TimerAnswer::TooSmall(_) => Vec::new(),
        };
        extra.extend(headers);
        let built = self.response_with_contact(request, 200, "OK", sdp.as_deref(), &extra);
        match (built, request.method()) {
            (Ok(response), Method::Invite) => self.send_2xx(now, txn, request.cseq().seq, response),
            // A non-INVITE server transaction retransmits its final response by itself.
            (Ok(response), _) => {
                self.respond(txn, response);
                self.send_own_reinvite_if_free();
            }
            (Err(e), _) => log::warn!("sip: cannot build the answer to an offer: {e}"),
        }
    }
}
