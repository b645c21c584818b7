//! The books of subscriptions (RFC 6665, [`Subscription`]): creating and stopping them,
//! carrying out what each asks ([`SubAction`]) with the stack's client requests, and routing
//! NOTIFYs to them by Call-ID.

use std::time::Instant;

use super::{AccountIdentity, SipEvent, SipStack};
use crate::msg::SipRequest;
use crate::request::{ClientRequest, RequestError, RequestId, RequestOutcome};
use crate::subscription::{
    SubAction, SubId, SubPhase, SubscribeParams, Subscription, SubscriptionEvent,
};
use crate::txn::TxnId;

/// Most subscriptions per stack (the gateway's own limits are far lower).
pub const MAX_SUBSCRIPTIONS: usize = 1_000_000;

/// Most subscription requests (SUBSCRIBE, refresh, un-SUBSCRIBE) in flight at once; the
/// rest wait their turn in order. Accounts registering together would otherwise send every
/// contact's SUBSCRIBE in one burst: a presence server on UDP drops what overflows its socket
/// buffer, retransmissions pile on, and the initial requests end in 408 (measured with
/// `benches/presence_load.rs`: 10,000 at once against Kamailio, 4,441 timed out).
pub const MAX_SUBSCRIBES_IN_FLIGHT: usize = 128;

/// A subscription and what the stack filed for it.
#[derive(Debug)]
pub(super) struct SubEntry {
    sub: Subscription,
    serial: u64,
    /// Its request in flight: outcomes of older ones (a dialog that ended meanwhile) are
    /// dropped.
    request: Option<RequestId>,
}

impl SipStack {
    /// Subscribes for `identity` to `params.target` (RFC 6665): the initial SUBSCRIBE is
    /// located like a MESSAGE, refreshed inside its dialog, made again after failures;
    /// [`SipEvent::Subscription`] events follow, and [`SipEvent::SubscriptionFinished`]
    /// when it is over.
    pub fn subscribe(
        &mut self,
        now: Instant,
        identity: &AccountIdentity,
        params: SubscribeParams,
    ) -> Result<SubId, RequestError> {
        if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return Err(RequestError::TooManyRequests);
        }
        let contact_user = format!("sylk-{}", self.random_token(12));
        let user_agent = identity
            .user_agent
            .clone()
            .unwrap_or_else(|| self.config.user_agent.clone());
        let mut sub = Subscription::new(
            identity,
            user_agent,
            params,
            contact_user,
            self.config.outbound_proxy.is_none(),
        )?;
        sub.start(&mut self.rng);
        self.next_sub_serial += 1;
        let serial = self.next_sub_serial;
        let key = self.subscriptions.insert(SubEntry {
            sub,
            serial,
            request: None,
        });
        let id = SubId { key, serial };
        self.dirty_subs.push(id);
        self.drive(now);
        Ok(id)
    }

    /// Ends a subscription (SUBSCRIBE with Expires 0 when it has a dialog);
    /// [`SipEvent::SubscriptionFinished`] follows. No more NOTIFYs are reported.
    pub fn unsubscribe(&mut self, now: Instant, id: SubId) {
        if let Some(e) = self.sub_entry(id) {
            e.sub.stop();
            self.dirty_subs.push(id);
            self.drive(now);
        }
    }

    /// Number of live subscriptions (leak checks).
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }

    /// Live subscriptions per phase, in [`SubPhase::ALL`] order (metrics; O(subscriptions)).
    pub fn subscription_phases(&self) -> [usize; 5] {
        let mut out = [0; 5];
        for (_, e) in &self.subscriptions {
            if let Some(i) = SubPhase::ALL.iter().position(|p| *p == e.sub.phase()) {
                out[i] += 1;
            }
        }
        out
    }

    fn sub_entry(&mut self, id: SubId) -> Option<&mut SubEntry> {
        self.subscriptions
            .get_mut(id.key)
            .filter(|e| e.serial == id.serial)
    }

    /// A NOTIFY: true when a subscription took it (by Call-ID).
    pub(super) fn route_notify(&mut self, now: Instant, txn: TxnId, request: &SipRequest) -> bool {
        let Some(&id) = self.subs_by_call_id.get(request.call_id()) else {
            return false;
        };
        let Some(e) = self
            .subscriptions
            .get_mut(id.key)
            .filter(|e| e.serial == id.serial)
        else {
            return false;
        };
        e.sub.handle_notify(now, txn, request, &mut self.rng);
        self.dirty_subs.push(id);
        true
    }

    /// A subscription's request finished.
    pub(super) fn subscription_request_done(
        &mut self,
        now: Instant,
        id: SubId,
        request_id: RequestId,
        request: ClientRequest,
        outcome: RequestOutcome,
    ) {
        let rng = &mut self.rng;
        let Some(e) = self
            .subscriptions
            .get_mut(id.key)
            .filter(|e| e.serial == id.serial)
        else {
            return;
        };
        if e.request != Some(request_id) {
            return;
        }
        e.request = None;
        e.sub.handle_outcome(now, outcome, request, rng);
        self.dirty_subs.push(id);
    }

    /// Hands a subscription's request to the transaction layer.
    fn send_subscription_request(&mut self, id: SubId, request: ClientRequest) {
        self.sub_requests_in_flight += 1;
        let request_id = self.insert_request_for(request, super::RequestOwner::Subscription(id));
        if let Some(e) = self.sub_entry(id) {
            e.request = Some(request_id);
        }
    }

    /// Sends waiting subscription requests while there is room (those of subscriptions
    /// that are gone are dropped).
    pub(super) fn release_subscription_requests(&mut self) {
        while self.sub_requests_in_flight < MAX_SUBSCRIBES_IN_FLIGHT {
            let Some((id, request)) = self.sub_send_queue.pop_front() else {
                return;
            };
            if self.sub_entry(id).is_some() {
                self.send_subscription_request(id, request);
            }
        }
    }

    /// Subscription requests waiting for room (metrics, tests).
    pub fn subscription_requests_waiting(&self) -> usize {
        self.sub_send_queue.len()
    }

    /// Runs due subscription timers.
    pub(super) fn subscription_timeouts(&mut self, now: Instant) {
        while let Some(id) = self.sub_deadlines.pop_due(now) {
            if let Some(e) = self
                .subscriptions
                .get_mut(id.key)
                .filter(|e| e.serial == id.serial)
            {
                e.sub.handle_timeout(now, &mut self.rng);
                self.dirty_subs.push(id);
            }
        }
    }

    /// Executes a subscription's actions, then re-arms its timer.
    pub(super) fn run_subscription(&mut self, now: Instant, id: SubId) {
        loop {
            let Some(e) = self.sub_entry(id) else {
                return;
            };
            let Some(action) = e.sub.poll_action() else {
                break;
            };
            match action {
                SubAction::Send(request) => {
                    if self.sub_requests_in_flight < MAX_SUBSCRIBES_IN_FLIGHT {
                        self.send_subscription_request(id, *request);
                    } else {
                        self.sub_send_queue.push_back((id, *request));
                    }
                }
                SubAction::Listen(call_id) => {
                    self.subs_by_call_id.insert(call_id, id);
                }
                SubAction::Unlisten(call_id) => {
                    if self.subs_by_call_id.get(&call_id) == Some(&id) {
                        self.subs_by_call_id.remove(&call_id);
                    }
                }
                SubAction::Respond {
                    txn,
                    request,
                    status,
                    reason,
                } => self.respond(now, txn, &request, status, reason, &[]),
                SubAction::Notify {
                    txn,
                    request,
                    state,
                } => {
                    if let Some(incoming) = self.file_pending(now, txn, &request) {
                        self.events.push_back(SipEvent::Subscription {
                            sub: id,
                            event: SubscriptionEvent::Notify {
                                id: incoming,
                                state,
                                request,
                            },
                        });
                    }
                }
                SubAction::Report(status) => self.events.push_back(SipEvent::Subscription {
                    sub: id,
                    event: SubscriptionEvent::Status(status),
                }),
                SubAction::Finished => {
                    self.subscriptions.remove(id.key);
                    self.sub_deadlines.cancel(id);
                    self.events
                        .push_back(SipEvent::SubscriptionFinished { sub: id });
                    return;
                }
            }
        }
        if let Some(e) = self.sub_entry(id) {
            let at = e.sub.poll_timeout();
            self.sub_deadlines.set(id, at);
        }
    }
}

#[cfg(test)]
mod tests {
    /// The slab holds every subscription inline, with or without a dialog: the dialog
    /// (about 0.5 KiB) and the digest state are boxed so an entry stays small (README,
    /// "Presence at scale").
    #[test]
    fn a_subscription_entry_stays_small() {
        let size = std::mem::size_of::<super::SubEntry>();
        assert!(size <= 448, "SubEntry is {size} bytes");
    }
}
