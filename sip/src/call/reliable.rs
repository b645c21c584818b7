//! Reliable provisional responses of an incoming call (RFC 3262 section 3): when the caller
//! requires `100rel`, our 180 carries `Require: 100rel` and an `RSeq`, is retransmitted
//! from T1 doubling until the PRACK that names it arrives, and the INVITE is refused with
//! 500 when none arrives within 64*T1. One reliable provisional at a time: the next waits for
//! the PRACK of the previous.

use std::time::{Duration, Instant};

use super::incoming::{IncomingCall, IncomingSetup};
use super::{CallEnd, CallEndCause};
use crate::msg::{SipRequest, SipResponse};
use crate::txn::TxnId;

/// A reliable provisional response waiting for its PRACK.
#[derive(Debug, Clone)]
pub(super) struct ReliableProvisional {
    rseq: u32,
    txn: TxnId,
    response: SipResponse,
    interval: Duration,
    next_at: Instant,
    give_up_at: Instant,
}

impl ReliableProvisional {
    pub(super) fn deadline(&self) -> Instant {
        self.next_at.min(self.give_up_at)
    }
}

/// `RAck: <RSeq> <CSeq number> <method>` (RFC 3262 section 7.2).
pub(crate) fn rack(value: &str) -> Option<(u32, u32, String)> {
    let mut parts = value.split_whitespace();
    let rseq = parts.next()?.parse().ok()?;
    let cseq = parts.next()?.parse().ok()?;
    let method = parts.next()?.to_owned();
    Some((rseq, cseq, method))
}

impl IncomingCall {
    /// Whether our provisional responses must be reliable (the INVITE requires `100rel`).
    pub(super) fn reliable_required(&self) -> bool {
        self.invite
            .headers()
            .get_all("Require")
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("100rel"))
    }

    /// Sends `response` (a 1xx other than 100) reliably: `Require: 100rel` and the next
    /// RSeq; retransmitted until its PRACK. `false` (nothing sent) while an earlier one
    /// still waits for its PRACK.
    pub(super) fn send_reliable(
        &mut self,
        now: Instant,
        txn: TxnId,
        response: SipResponse,
    ) -> bool {
        if self.reliable.is_some() {
            return false;
        }
        self.next_rseq = self.next_rseq.wrapping_add(1).clamp(1, (1 << 31) - 1);
        self.usage.respond(txn, response.clone());
        let timers = self.usage.timers;
        // Over a reliable transport the transport is reliable but the PRACK still is due.
        self.reliable = Some(Box::new(ReliableProvisional {
            rseq: self.next_rseq,
            txn,
            response,
            interval: timers.t1,
            next_at: now + timers.t1,
            give_up_at: now + timers.timeout(),
        }));
        true
    }

    /// The RSeq the next reliable provisional takes.
    pub(super) fn upcoming_rseq(&self) -> u32 {
        self.next_rseq.wrapping_add(1).clamp(1, (1 << 31) - 1)
    }

    /// A PRACK in the dialog (RFC 3262 section 3): 200 when it acknowledges our pending
    /// reliable provisional, 481 otherwise.
    pub(super) fn handle_prack(&mut self, txn: TxnId, request: &SipRequest) {
        let invite_cseq = self.invite.cseq().seq;
        let matches = match (
            request.header("RAck").and_then(rack),
            self.reliable.as_ref(),
        ) {
            (Some((rseq, cseq, method)), Some(r)) => {
                rseq == r.rseq && cseq == invite_cseq && method.eq_ignore_ascii_case("INVITE")
            }
            _ => false,
        };
        if matches {
            self.reliable = None;
            self.usage.respond_plain(txn, request, 200, "OK", &[]);
        } else {
            self.usage
                .respond_plain(txn, request, 481, "Call/Transaction Does Not Exist", &[]);
        }
    }

    /// Retransmits the pending reliable provisional, or gives up on its PRACK (500).
    pub(super) fn handle_reliable_timeout(&mut self, now: Instant) {
        let Some(r) = self.reliable.as_mut() else {
            return;
        };
        if !matches!(self.usage.setup(), Some(IncomingSetup::Offered { .. })) {
            // Answered: the final response ended the provisional phase.
            self.reliable = None;
            return;
        }
        if now >= r.give_up_at {
            log::info!("sip: no PRACK for our reliable provisional: INVITE refused");
            self.reliable = None;
            let end = CallEnd::new(CallEndCause::Timeout);
            if self.refuse(500, end).is_err() {
                self.usage.finish();
            }
            return;
        }
        if now >= r.next_at {
            r.interval *= 2;
            r.next_at = now + r.interval;
            let (txn, response) = (r.txn, r.response.clone());
            self.usage.respond(txn, response);
        }
    }
}
