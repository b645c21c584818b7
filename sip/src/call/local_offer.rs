//! Our own re-INVITE inside a confirmed dialog (RFC 3261 section 14.1): the request with our
//! new offer (or our unchanged session for an RFC 4028 refresh), its ACK, digest answers to
//! 401/407 from the HA1, the glare back-off after 491, and how a failure leaves the session
//! (unchanged after most refusals, ended after 481, 408 or no answer at all).
//!
//! One re-INVITE at a time per dialog, never while the peer's INVITE is being answered or
//! our 2xx waits for its ACK (section 14.1: "MUST NOT initiate a new INVITE transaction
//! within a dialog while another INVITE transaction is in progress in either direction"):
//! one asked for then waits and goes out when the other is done.

use std::time::{Duration, Instant};

use engine::Rng;

use super::usage::{sdp_of, DialogUsage, Phase};
use super::{
    CallAction, CallEnd, CallEndCause, CallError, CallEvent, SendPurpose, Sent, ALLOW, SUPPORTED,
};
use crate::auth::DigestRequest;
use crate::dialog::OutgoingRequest;
use crate::msg::{Method, SipResponse};
use crate::stack::SendError;
use crate::txn::TxnId;

/// How often a re-INVITE refused with 491 goes out again (RFC 3261 section 14.1: "once
/// more"), and how often a digest challenge is answered.
const MAX_GLARE_RETRIES: u8 = 1;
const MAX_AUTH_RETRIES: u8 = 2;

/// Why we send a re-INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReInvitePurpose {
    /// A new offer the gateway asked for: its outcome is reported.
    Offer,
    /// An RFC 4028 session refresh with the unchanged session: only a failure that ends the
    /// dialog is reported.
    Refresh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnState {
    /// Not sent yet: an INVITE transaction of the dialog is in progress (the peer's, or our
    /// 2xx waiting for its ACK).
    Waiting,
    /// Handed to the stack, no transaction yet.
    Sending,
    /// In transaction `txn` with CSeq `cseq`.
    InFlight { txn: TxnId, cseq: u32 },
    /// Refused with 491: sent again at `until` (section 14.1's randomised back-off).
    BackOff { until: Instant },
}

/// Our re-INVITE in progress.
#[derive(Debug, Clone)]
pub(super) struct OwnReInvite {
    purpose: ReInvitePurpose,
    sdp: String,
    headers: Vec<(String, String)>,
    state: OwnState,
    glare_retries: u8,
    auth_retries: u8,
    /// The Authorization/Proxy-Authorization of the last copy sent, which the ACK for its
    /// 2xx repeats (RFC 3261 section 22.1).
    credentials: Vec<(String, String)>,
}

/// The ACK we sent for our re-INVITE's 2xx, resent for its retransmissions.
#[derive(Debug, Clone)]
pub(super) struct ReInviteAck {
    txn: TxnId,
    ack: OutgoingRequest,
}

impl OwnReInvite {
    /// When the back-off ends, if backing off.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.state {
            OwnState::BackOff { until } => Some(until),
            _ => None,
        }
    }

    /// The INVITE client transaction, while one is under way.
    pub(super) fn txn(&self) -> Option<TxnId> {
        match self.state {
            OwnState::InFlight { txn, .. } => Some(txn),
            _ => None,
        }
    }

    /// Whether our INVITE transaction is in progress (a peer's re-INVITE then gets 491).
    pub(super) fn in_progress(&self) -> bool {
        matches!(self.state, OwnState::Sending | OwnState::InFlight { .. })
    }
}

/// RFC 3261 section 14.1's back-off after 491: 2.1-4 s for the owner of the Call-ID (the
/// UAC of the dialog's INVITE), 0-2 s otherwise, in units of 10 ms, so the two sides do not
/// collide again.
pub(super) fn glare_backoff(owns_call_id: bool, rng: &mut Rng) -> Duration {
    let tens_of_ms = if owns_call_id {
        210 + rng.below_or_equal(190)
    } else {
        rng.below_or_equal(200)
    };
    Duration::from_millis(u64::from(tens_of_ms) * 10)
}

impl<S: Copy + PartialEq> DialogUsage<S> {
    /// Starts a re-INVITE offering `sdp` with `headers` (after the dialog's own). Refused
    /// ([`CallError::InvalidState`]) before the dialog is confirmed, while an offer of ours
    /// is out, or while the peer's offer waits for our answer; while our 2xx waits for its
    /// ACK it waits too and goes out after.
    pub(super) fn start_reinvite(
        &mut self,
        sdp: String,
        headers: Vec<(String, String)>,
        purpose: ReInvitePurpose,
    ) -> Result<(), CallError> {
        if self.phase != Phase::Confirmed || self.own.is_some() || self.has_remote_offer() {
            return Err(CallError::InvalidState);
        }
        self.own = Some(Box::new(OwnReInvite {
            purpose,
            sdp,
            headers,
            state: OwnState::Waiting,
            glare_retries: 0,
            auth_retries: 0,
            credentials: Vec::new(),
        }));
        self.send_own_reinvite_if_free();
        Ok(())
    }

    /// Sends our waiting re-INVITE once no INVITE transaction of the dialog is in progress.
    pub(super) fn send_own_reinvite_if_free(&mut self) {
        let waiting = self
            .own
            .as_ref()
            .is_some_and(|o| o.state == OwnState::Waiting);
        if !waiting || self.pending_2xx_outstanding() || self.has_remote_offer() {
            return;
        }
        if self.phase != Phase::Confirmed {
            self.own = None;
            return;
        }
        let Some(hop) = self.in_dialog_hop() else {
            self.fail_own(503, "Service Unavailable");
            return;
        };
        let cnonce_base = self.dialog_cnonce_base();
        let session_timer = self.session_timer_request_headers();
        let Some(dialog) = self.dialog.as_mut() else {
            return;
        };
        let mut request = dialog.request(Method::Invite);
        let Some(own) = self.own.as_mut() else {
            return;
        };
        let body = own.sdp.as_bytes().to_vec();
        // Section 14.1: a re-INVITE is a target refresh and carries our Contact.
        if let Some(contact) = &self.contact {
            request
                .headers
                .push(("Contact".to_owned(), contact.to_string()));
        }
        request
            .headers
            .push(("User-Agent".to_owned(), self.user_agent.clone()));
        request.headers.push(("Allow".to_owned(), ALLOW.to_owned()));
        request
            .headers
            .push(("Supported".to_owned(), SUPPORTED.to_owned()));
        request.headers.extend(session_timer);
        request.headers.extend(own.headers.iter().cloned());
        if let Some(digest) = self.digest.as_mut() {
            let uri = request.uri.to_string();
            let cnonce = format!("{cnonce_base}{}", request_cseq(&request));
            let digest_request = DigestRequest {
                method: "INVITE",
                uri: &uri,
                body: &body,
                cnonce: &cnonce,
            };
            own.credentials.clear();
            if let Ok(auth) = digest.authorize(&digest_request) {
                for h in auth {
                    own.credentials.push((h.name.to_owned(), h.value));
                }
            }
            request.headers.extend(own.credentials.iter().cloned());
        }
        request.body = Some(("application/sdp".to_owned(), body));
        own.state = OwnState::Sending;
        self.push(CallAction::SendRequest {
            request,
            hop,
            contact_user: None,
            purpose: SendPurpose::ReInvite,
        });
    }

    /// The stack sent (or could not send) our re-INVITE.
    pub(super) fn handle_reinvite_sent(&mut self, result: Result<Sent, SendError>) {
        let Some(own) = self.own.as_mut().filter(|o| o.state == OwnState::Sending) else {
            return;
        };
        match result {
            Ok(sent) => {
                own.state = OwnState::InFlight {
                    txn: sent.txn,
                    cseq: sent.request.cseq().seq,
                }
            }
            Err(why) => {
                log::info!("sip: re-INVITE not sent: {why}");
                self.fail_own(503, "Service Unavailable");
            }
        }
    }

    /// A response on a client transaction of the usage: our re-INVITE's (also a
    /// retransmitted 2xx after we ACKed it). Returns whether it was ours.
    pub(super) fn handle_reinvite_response(
        &mut self,
        now: Instant,
        txn: TxnId,
        response: &SipResponse,
        rng: &mut Rng,
    ) -> bool {
        if let Some(acked) = self.reinvite_ack.as_ref().filter(|a| a.txn == txn) {
            // Section 13.2.2.4: every retransmission of the 2xx gets the ACK again.
            if (200..300).contains(&response.status()) {
                if let Some(hop) = self.in_dialog_hop() {
                    let ack = acked.ack.clone();
                    self.push(CallAction::SendAck { request: ack, hop });
                }
            }
            return true;
        }
        let Some((own_txn, cseq)) = self.own.as_ref().and_then(|o| match o.state {
            OwnState::InFlight { txn, cseq } => Some((txn, cseq)),
            _ => None,
        }) else {
            return false;
        };
        if own_txn != txn {
            return false;
        }
        let status = response.status();
        match status {
            100..=199 => {}
            200..=299 => self.reinvite_accepted(now, txn, cseq, response),
            491 => self.reinvite_glare(now, rng),
            401 | 407 => self.reinvite_challenged(response),
            _ => self.fail_own(status, response.reason()),
        }
        true
    }

    /// Our re-INVITE's transaction timed out or its transport failed (section 14.1: the
    /// dialog is over).
    pub(super) fn handle_reinvite_failure(&mut self, txn: TxnId) -> bool {
        if self.own.as_ref().and_then(|o| o.txn()) != Some(txn) {
            return false;
        }
        self.fail_own(408, "Request Timeout");
        true
    }

    /// The back-off after 491 is over: the re-INVITE goes out once more.
    pub(super) fn handle_reinvite_timeout(&mut self, now: Instant) {
        if let Some(own) = self.own.as_mut() {
            if let OwnState::BackOff { until } = own.state {
                if now >= until {
                    own.state = OwnState::Waiting;
                    self.send_own_reinvite_if_free();
                }
            }
        }
    }

    fn reinvite_accepted(&mut self, now: Instant, txn: TxnId, cseq: u32, response: &SipResponse) {
        let Some(own) = self.own.take() else {
            return;
        };
        if let Some(d) = self.dialog.as_mut() {
            d.refresh_target(response.contacts().as_slice().first());
        }
        let credentials = own.credentials.clone();
        if let (Some(dialog), Some(hop)) = (self.dialog.as_ref(), self.in_dialog_hop()) {
            let ack = dialog.ack(cseq, &credentials);
            self.reinvite_ack = Some(ReInviteAck {
                txn,
                ack: ack.clone(),
            });
            self.push(CallAction::SendAck { request: ack, hop });
        }
        if let Some(d) = self.digest.as_mut() {
            d.handle_success();
        }
        let answer = sdp_of(response.content_type(), response.body());
        self.local_sdp = Some(own.sdp);
        if answer.is_some() {
            self.remote_sdp = answer.clone();
        }
        self.handle_session_timer_response(now, response);
        if own.purpose == ReInvitePurpose::Offer {
            self.report(CallEvent::ReOfferAnswered { sdp: answer });
        }
    }

    fn reinvite_glare(&mut self, now: Instant, rng: &mut Rng) {
        let owns_call_id = self.owns_call_id;
        let Some(own) = self.own.as_mut() else {
            return;
        };
        if own.glare_retries >= MAX_GLARE_RETRIES {
            self.fail_own(491, "Request Pending");
            return;
        }
        own.glare_retries += 1;
        let wait = glare_backoff(owns_call_id, rng);
        log::info!("sip: re-INVITE crossed the peer's (491): again in {wait:?}");
        own.state = OwnState::BackOff { until: now + wait };
    }

    fn reinvite_challenged(&mut self, response: &SipResponse) {
        let answered = match (self.digest.as_mut(), self.own.as_ref()) {
            (Some(d), Some(own)) if own.auth_retries < MAX_AUTH_RETRIES => {
                d.handle_challenge(response).is_ok()
            }
            _ => false,
        };
        if !answered {
            self.fail_own(response.status(), response.reason());
            return;
        }
        if let Some(own) = self.own.as_mut() {
            own.auth_retries += 1;
            own.state = OwnState::Waiting;
        }
        self.send_own_reinvite_if_free();
    }

    /// Our re-INVITE failed with `code`: the session stays as it was (section 14.1), except
    /// after 481, 408 or no answer, which end the dialog (section 12.2.1.2).
    /// The peer's offer arrived while our re-INVITE waits out its 491 back-off (the peer,
    /// not owning the Call-ID, retries first, RFC 3261 section 14.1): its offer goes first and
    /// ours is given up (reported as refused with 491), since it was made against a session
    /// the peer's offer is about to change; the gateway may offer again afterwards. A
    /// backed-off session refresh is dropped silently (the peer's offer refreshes too).
    pub(super) fn yield_backed_off_offer(&mut self) {
        if self.own.as_ref().is_some_and(|o| o.deadline().is_some()) {
            log::info!("sip: the peer offered during our 491 back-off: ours is given up");
            self.fail_own(491, "Request Pending");
        }
    }

    fn fail_own(&mut self, code: u16, phrase: &str) {
        let Some(own) = self.own.take() else {
            return;
        };
        if own.purpose == ReInvitePurpose::Offer {
            self.report(CallEvent::ReOfferFailed {
                code,
                reason: phrase.to_owned(),
            });
        }
        if matches!(code, 408 | 481) {
            log::info!("sip: re-INVITE answered {code}: the dialog is over");
            self.terminate(CallEnd {
                code,
                cause: CallEndCause::Rejected {
                    phrase: phrase.to_owned(),
                },
            });
            if code == 408 {
                self.send_bye();
            }
            self.finish();
        }
    }

    /// Unique per request: the dialog's Call-ID and our tag with the CSeq make it so.
    fn dialog_cnonce_base(&self) -> String {
        self.dialog
            .as_ref()
            .map(|d| d.key().local_tag.clone())
            .unwrap_or_default()
    }
}

/// The CSeq number of a request the dialog built.
fn request_cseq(request: &OutgoingRequest) -> u32 {
    request
        .header("CSeq")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glare_backoff_ranges_follow_section_14_1() {
        let mut rng = Rng::seed_from_u64(3);
        for _ in 0..200 {
            let owner = glare_backoff(true, &mut rng);
            assert!(
                (Duration::from_millis(2100)..=Duration::from_millis(4000)).contains(&owner),
                "{owner:?}"
            );
            assert_eq!(owner.as_millis() % 10, 0, "units of 10 ms");
            let other = glare_backoff(false, &mut rng);
            assert!(other <= Duration::from_millis(2000), "{other:?}");
        }
    }
}
