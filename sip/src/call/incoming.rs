//! An incoming call (UAS side of RFC 3261 section 13.3): the INVITE we ring, answer or
//! decline, a CANCEL from the caller, and our 200 confirmed by the ACK.

use std::time::Instant;

use engine::Rng;

use super::reliable::ReliableProvisional;
use super::session_timer::TimerAnswer;
use super::usage::{sdp_of, transport_of, DialogUsage, InDialog, Phase};
use super::{
    reason_phrase, CallEnd, CallEndCause, CallError, CallEvent, Hop, TxnFailure, SUPPORTED,
};
use crate::auth::DigestClient;
use crate::dialog::Dialog;
use crate::msg::{NameAddr, SipRequest, SipResponse};
use crate::transport::Transport;
use crate::txn::{self, TxnConfig, TxnId};

/// Where an incoming call's setup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IncomingSetup {
    /// Not answered yet.
    Offered { txn: TxnId },
    /// 200 sent, waiting for the ACK (the usage retransmits the 200).
    Answered,
}

/// An incoming call leg.
#[derive(Debug)]
pub struct IncomingCall {
    pub(super) usage: DialogUsage<IncomingSetup>,
    /// The INVITE (boxed: ~0.6 KiB, and the call lives boxed in the stack anyway).
    pub(super) invite: Box<SipRequest>,
    /// Our reliable provisional waiting for its PRACK (RFC 3262, `reliable.rs`).
    pub(super) reliable: Option<Box<ReliableProvisional>>,
    /// RSeq of our last reliable provisional.
    pub(super) next_rseq: u32,
    /// Answered, then hung up before the ACK: send BYE once it arrives (RFC 3261 section 15).
    bye_after_ack: bool,
}

impl IncomingCall {
    /// A call for an INVITE that server transaction `txn` received from `source`. `contact`
    /// is our Contact for the transport it came over; `local_tag` our To tag.
    pub fn new(
        invite: SipRequest,
        txn: TxnId,
        source: txn::Destination,
        local_tag: &str,
        contact: NameAddr,
        timers: TxnConfig,
        route_by_dialog: bool,
    ) -> Result<IncomingCall, CallError> {
        let dialog = Dialog::uas(&invite, local_tag).map_err(|_| CallError::BadInvite)?;
        let kind = invite
            .top_via()
            .map(|v| transport_of(&v.transport))
            .unwrap_or(Transport::Udp);
        let mut usage = DialogUsage::new(IncomingSetup::Offered { txn }, timers, route_by_dialog);
        usage.remote_sdp = sdp_of(invite.content_type(), invite.body());
        usage.hop = Some(Hop::Flow {
            target: source,
            kind,
        });
        usage.contact = Some(contact);
        usage.set_dialog(dialog);
        Ok(IncomingCall {
            usage,
            invite: Box::new(invite),
            reliable: None,
            next_rseq: 0,
            bye_after_ack: false,
        })
    }

    /// The called account's side of the dialog: `digest` answers 401/407 to our requests
    /// inside it (re-INVITE, BYE, INFO, ...) from its HA1, with `user_agent`.
    pub fn set_account(&mut self, digest: DigestClient, user_agent: String) {
        self.usage.digest = Some(digest);
        self.usage.user_agent = user_agent;
    }

    /// The INVITE's offer (`None`: the INVITE had none; offer in the 200).
    pub fn remote_sdp(&self) -> Option<&str> {
        self.usage.remote_sdp.as_deref()
    }

    /// Sends 180 Ringing on an unanswered call, reliably (RFC 3262) when the caller
    /// requires it.
    pub fn ring(&mut self, now: Instant) -> Result<(), CallError> {
        let Some(IncomingSetup::Offered { txn }) = self.usage.setup() else {
            return Err(CallError::InvalidState);
        };
        if self.reliable_required() {
            let extra = [
                ("Require".to_owned(), "100rel".to_owned()),
                ("RSeq".to_owned(), self.upcoming_rseq().to_string()),
            ];
            let response =
                self.usage
                    .response_with_contact(&self.invite, 180, "Ringing", None, &extra)?;
            self.send_reliable(now, txn, response);
            return Ok(());
        }
        let response = self.response_to_invite(180, "Ringing", None)?;
        self.usage.respond(txn, response);
        Ok(())
    }

    /// The session interval the INVITE asks for is below our minimum: `Some(min_se)` for
    /// the 422 (RFC 4028 section 9).
    pub fn session_interval_too_small(&self) -> Option<u32> {
        self.usage.session_interval_too_small(&self.invite)
    }

    /// The session interval (RFC 4028) we grant when the caller supports timers but asks
    /// for none (0: none).
    pub fn set_session_expires(&mut self, seconds: u32) {
        self.usage.session_timer.wanted = seconds;
    }

    /// Answers with 200, `sdp` and `headers` (after ours); retransmitted until the ACK.
    pub fn answer(
        &mut self,
        now: Instant,
        sdp: String,
        headers: Vec<(String, String)>,
    ) -> Result<(), CallError> {
        let Some(IncomingSetup::Offered { txn }) = self.usage.setup() else {
            return Err(CallError::InvalidState);
        };
        let mut extra = match self.usage.session_timer_answer(now, &self.invite) {
            TimerAnswer::Headers(h) => h,
            TimerAnswer::TooSmall(_) => Vec::new(),
        };
        extra.push(("Supported".to_owned(), SUPPORTED.to_owned()));
        extra.extend(headers);
        let response =
            self.usage
                .response_with_contact(&self.invite, 200, "OK", Some(&sdp), &extra)?;
        self.usage.local_sdp = Some(sdp);
        let cseq = self.invite.cseq().seq;
        self.usage.send_2xx(now, txn, cseq, response);
        self.usage.phase = Phase::Setup(IncomingSetup::Answered);
        Ok(())
    }

    /// Rejects an unanswered call with `code` (3xx-6xx; anything else means 486).
    pub fn decline(&mut self, code: u16) -> Result<(), CallError> {
        let code = if (300..700).contains(&code) {
            code
        } else {
            486
        };
        self.refuse(code, CallEnd::declined(code))
    }

    /// Rejects with `code` and reports `end`.
    pub(super) fn refuse(&mut self, code: u16, end: CallEnd) -> Result<(), CallError> {
        let Some(IncomingSetup::Offered { txn }) = self.usage.setup() else {
            return Err(CallError::InvalidState);
        };
        let response = self.response_to_invite(code, reason_phrase(code), None)?;
        self.usage.respond(txn, response);
        // The server transaction retransmits the final and absorbs the ACK by itself.
        self.usage.terminate(end);
        self.usage.finish();
        Ok(())
    }

    /// The caller sent a CANCEL matching our INVITE server transaction (RFC 3261 section 9.2;
    /// the stack already answered the CANCEL 200).
    pub fn handle_cancel(&mut self) {
        if let Some(IncomingSetup::Offered { txn }) = self.usage.setup() {
            self.respond_to_invite(txn, 487, "Request Terminated");
            self.usage.terminate(CallEnd::new(CallEndCause::Cancelled));
            self.usage.finish();
        }
        // Once answered the CANCEL has no effect (section 9.2); the caller will BYE.
    }

    /// An ACK matched the dialog: the ACK for our 2xx (initial or re-INVITE).
    pub fn handle_ack(&mut self, request: &SipRequest) {
        let Some(sdp_in_ack) = self.usage.handle_ack(request) else {
            return;
        };
        if self.usage.setup() == Some(IncomingSetup::Answered) {
            self.usage.phase = Phase::Confirmed;
            if sdp_in_ack.is_some() {
                self.usage.remote_sdp = sdp_in_ack.clone();
            }
            if self.bye_after_ack {
                self.usage.send_bye();
                self.usage.finish();
                return;
            }
            self.usage.report(CallEvent::Confirmed { sdp_in_ack });
        }
    }

    /// A request (not ACK) matched the dialog, in server transaction `txn`.
    pub fn handle_in_dialog_request(
        &mut self,
        now: Instant,
        txn: TxnId,
        request: &SipRequest,
        rng: &mut Rng,
    ) {
        match self.usage.handle_in_dialog_request(now, txn, request, rng) {
            InDialog::Bye => {
                // A BYE before we answered ends the INVITE too (RFC 3261 section 15.1.2).
                if let Some(IncomingSetup::Offered { txn }) = self.usage.setup() {
                    self.respond_to_invite(txn, 487, "Request Terminated");
                }
                self.usage.terminate(CallEnd::new(CallEndCause::RemoteBye));
                self.usage.finish();
            }
            InDialog::Prack => self.handle_prack(txn, request),
            InDialog::Handled => {}
        }
    }

    /// The INVITE server transaction failed before we answered.
    pub fn handle_txn_failure(&mut self, txn: TxnId, failure: TxnFailure) {
        if self.usage.setup() == Some(IncomingSetup::Offered { txn }) {
            self.usage.terminate(failure.end());
            self.usage.finish();
        }
    }

    /// Ends the call from our side: declined with 486 before the answer, BYE after (once
    /// the ACK came). Reports `Terminated` with [`CallEndCause::LocalHangup`] at once.
    pub fn hangup(&mut self) {
        match self.usage.phase {
            Phase::Setup(IncomingSetup::Offered { .. }) => {
                let end = CallEnd::new(CallEndCause::LocalHangup);
                if let Err(e) = self.refuse(486, end.clone()) {
                    // Without a 486 the caller times out; the call is over here either way.
                    log::warn!("sip: INVITE {} not declined: {e}", self.invite.call_id());
                    self.usage.terminate(end);
                    self.usage.finish();
                }
            }
            Phase::Setup(IncomingSetup::Answered) => {
                // RFC 3261 section 15: no BYE before the ACK (or its timeout).
                self.usage
                    .terminate(CallEnd::new(CallEndCause::LocalHangup));
                self.bye_after_ack = true;
            }
            Phase::Confirmed => self.usage.hang_up_confirmed(),
            Phase::Done => {}
        }
    }

    /// Runs due timers; early calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut Rng) {
        self.handle_reliable_timeout(now);
        self.usage.handle_timeout(now, rng);
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let reliable = self.reliable.as_ref().map(|r| r.deadline());
        [reliable, self.usage.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn response_to_invite(
        &self,
        status: u16,
        reason: &str,
        sdp: Option<&str>,
    ) -> Result<SipResponse, CallError> {
        Ok(self
            .usage
            .response_with_contact(&self.invite, status, reason, sdp, &[])?)
    }

    fn respond_to_invite(&mut self, txn: TxnId, status: u16, reason: &str) {
        match self.response_to_invite(status, reason, None) {
            Ok(response) => self.usage.respond(txn, response),
            Err(e) => log::warn!("sip: cannot build a {status}: {e}"),
        }
    }
}
