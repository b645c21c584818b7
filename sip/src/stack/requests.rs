//! The books of non-INVITE requests, both directions.
//!
//! Client side: out-of-dialog requests ([`SipStack::send_request`], RFC 3261 section 8.1:
//! MESSAGE now, PUBLISH and SUBSCRIBE later) and requests inside a call's dialog
//! ([`SipStack::send_in_dialog`], section 12.2.1: MESSAGE, INFO, REFER, UPDATE), each a
//! [`ClientRequest`] whose one [`RequestOutcome`] comes back as [`SipEvent::Request`].
//!
//! Server side: requests the gateway answers itself ([`SipStack::set_incoming_methods`]):
//! addressed to a registration's Contact token outside dialogs, or arriving inside a call's
//! dialog. Each becomes [`SipEvent::IncomingRequest`] with an [`IncomingRequestId`] to answer
//! with [`SipStack::answer_request`]; one not answered within [`INCOMING_ANSWER_WAIT`] gets
//! 500 with a Retry-After (RFC 3261 section 21.5.1), so the peer's transaction never hangs
//! on us.

use std::time::{Duration, Instant};

use super::{AccountIdentity, CallId, SipEvent, SipStack};
use crate::msg::{Method, SipRequest};
use crate::registration::RegId;
use crate::request::{ClientRequest, RequestAction, RequestConfig, RequestError, RequestId};
use crate::transport::Transport;
use crate::txn::TxnId;

/// How long the gateway may take to answer an incoming request (a store write, say) before
/// the stack answers 500 for it; well under the peer's Timer F of 32 s.
pub const INCOMING_ANSWER_WAIT: Duration = Duration::from_secs(8);

/// Most client requests in flight per stack (over it: [`RequestError::TooManyRequests`]).
pub const MAX_REQUESTS: usize = 10_000;

/// Most incoming requests waiting for the gateway's answer (over it: 503 at once).
pub const MAX_PENDING_INCOMING: usize = 10_000;

/// A client request and what the stack filed for it.
#[derive(Debug)]
pub(super) struct RequestEntry {
    req: ClientRequest,
    serial: u64,
    lookup: Option<crate::locate::LookupId>,
    /// Who waits for its outcome (and, for a call's, whose dialog it is in: its copies
    /// after a challenge take the dialog's CSeq).
    owner: super::RequestOwner,
}

/// An incoming request the gateway has to answer; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IncomingRequestId(TxnId);

/// Whom an incoming request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestTarget {
    /// Outside dialogs, to this registration's Contact token.
    Registration(RegId),
    /// Inside this call's dialog.
    Call(CallId),
    /// Outside dialogs, to an address that is no registration's token: the Request-URI
    /// names the addressee.
    Address,
}

/// An incoming request waiting for the gateway's answer.
#[derive(Debug)]
pub(super) struct PendingIncoming {
    request: Box<SipRequest>,
}

impl SipStack {
    /// Which methods the gateway answers itself (MESSAGE; NOTIFY later): outside dialogs
    /// for registrations' Contacts, and inside calls' dialogs. Others keep the UAS core's
    /// answers (405 outside dialogs, the call's own inside).
    pub fn set_incoming_methods(&mut self, methods: &[Method]) {
        self.incoming_methods = methods.to_vec();
    }

    /// Whether the gateway answers `method` itself.
    pub(super) fn surfaces(&self, method: &Method) -> bool {
        self.incoming_methods.contains(method)
    }

    /// Sends `method` from `identity` to `target` (`user@domain[:port]`) outside any dialog:
    /// located by RFC 3263 on the target's domain (or the outbound proxy), 401/407 answered
    /// from the HA1, failed over on timeout, transport error and 503. Exactly one
    /// [`SipEvent::Request`] follows.
    pub fn send_request(
        &mut self,
        now: Instant,
        identity: &AccountIdentity,
        method: Method,
        target: &str,
        headers: Vec<(String, String)>,
        body: Option<(String, Vec<u8>)>,
    ) -> Result<RequestId, RequestError> {
        if self.requests.len() >= MAX_REQUESTS {
            return Err(RequestError::TooManyRequests);
        }
        // A user of the local domain bound at SIP phones only gets it there directly.
        let redirected = self.local_redirect(now, target);
        let target = redirected.as_deref().unwrap_or(target);
        let config = RequestConfig {
            method,
            user: identity.user.clone(),
            domain: identity.domain.clone(),
            display_name: identity.display_name.clone(),
            user_agent: identity
                .user_agent
                .clone()
                .unwrap_or_else(|| self.config.user_agent.clone()),
            target: target.to_owned(),
            call_id: format!("{}@sylk-gateway", self.random_token(20)),
            from_tag: self.random_token(10),
            headers,
            body,
        };
        let req = ClientRequest::new(config, identity.ha1.clone())?;
        let id = self.insert_request_for(req, super::RequestOwner::Gateway);
        self.drive(now);
        Ok(id)
    }

    /// Sends `method` inside the confirmed dialog of `call` (RFC 3261 section 12.2.1.1: its
    /// route set, remote target and next CSeq) over the hop of its INVITE, with `headers`
    /// after the dialog's and `body`. One [`SipEvent::Request`] follows; there is no digest
    /// retry and no fail-over inside a dialog.
    pub fn send_in_dialog(
        &mut self,
        now: Instant,
        call: CallId,
        method: Method,
        headers: Vec<(String, String)>,
        body: Option<(String, Vec<u8>)>,
    ) -> Result<RequestId, RequestError> {
        if self.requests.len() >= MAX_REQUESTS {
            return Err(RequestError::TooManyRequests);
        }
        let e = self.call_entry(call).ok_or(RequestError::NoDialog)?;
        let (mut request, hop) = e
            .call
            .dialog_request(method)
            .ok_or(RequestError::NoDialog)?;
        let digest = e.call.digest();
        request.headers.extend(headers);
        request.body = body;
        let id = self.insert_request_for(
            ClientRequest::in_dialog(request, hop, digest),
            super::RequestOwner::Call(call),
        );
        self.drive(now);
        Ok(id)
    }

    /// Answers an incoming request with `status` (2xx-6xx) and `extra` headers (e.g.
    /// `Retry-After` on a 503). Fails if it was answered already (or auto-answered late).
    pub fn answer_request(
        &mut self,
        now: Instant,
        id: IncomingRequestId,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) -> Result<(), RequestError> {
        let pending = self.incoming.remove(&id.0).ok_or(RequestError::NoDialog)?;
        self.incoming_deadlines.cancel(id.0);
        let status = if (200..700).contains(&status) {
            status
        } else {
            500
        };
        self.respond(now, id.0, &pending.request, status, reason, extra);
        self.drive(now);
        Ok(())
    }

    /// Number of client requests in flight (leak checks).
    pub fn request_count(&self) -> usize {
        self.requests.len()
    }

    /// Number of incoming requests waiting for an answer (leak checks).
    pub fn pending_incoming_count(&self) -> usize {
        self.incoming.len()
    }

    /// Files a request the gateway answers and tells it.
    pub(super) fn file_incoming(
        &mut self,
        now: Instant,
        txn: TxnId,
        request: Box<SipRequest>,
        target: RequestTarget,
    ) {
        if let Some(id) = self.file_pending(now, txn, &request) {
            self.events.push_back(SipEvent::IncomingRequest {
                id,
                target,
                request,
            });
        }
    }

    /// Files a request the gateway will answer (503 at once when too many wait).
    pub(super) fn file_pending(
        &mut self,
        now: Instant,
        txn: TxnId,
        request: &SipRequest,
    ) -> Option<IncomingRequestId> {
        if self.incoming.len() >= MAX_PENDING_INCOMING {
            self.respond(
                now,
                txn,
                request,
                503,
                "Service Unavailable",
                &[("Retry-After", "5")],
            );
            return None;
        }
        self.incoming.insert(
            txn,
            PendingIncoming {
                request: Box::new(request.clone()),
            },
        );
        self.incoming_deadlines
            .set(txn, Some(now + INCOMING_ANSWER_WAIT));
        Some(IncomingRequestId(txn))
    }

    /// Answers incoming requests the gateway left waiting too long.
    pub(super) fn expire_incoming(&mut self, now: Instant) {
        while let Some(txn) = self.incoming_deadlines.pop_due(now) {
            if let Some(p) = self.incoming.remove(&txn) {
                log::info!(
                    "sip: {} {} not answered in time, refused",
                    p.request.method(),
                    p.request.call_id()
                );
                let retry_after = self.rng.below_or_equal(10).to_string();
                self.respond(
                    now,
                    txn,
                    &p.request,
                    500,
                    "Server Internal Error",
                    &[("Retry-After", &retry_after)],
                );
            }
        }
    }

    /// A server transaction ended: an unanswered request of it is gone too.
    pub(super) fn forget_incoming(&mut self, txn: TxnId) {
        if self.incoming.remove(&txn).is_some() {
            self.incoming_deadlines.cancel(txn);
        }
    }

    /// Files a request whose outcome goes to `owner`.
    pub(super) fn insert_request_for(
        &mut self,
        req: ClientRequest,
        owner: super::RequestOwner,
    ) -> RequestId {
        self.next_request_serial += 1;
        let serial = self.next_request_serial;
        let tcp = self.config.transports.contains(&Transport::Tcp);
        let key = self.requests.insert(RequestEntry {
            req: req.with_tcp_for_large(tcp),
            serial,
            lookup: None,
            owner,
        });
        let id = RequestId { key, serial };
        self.dirty_requests.push(id);
        id
    }

    pub(super) fn request_entry(&mut self, id: RequestId) -> Option<&mut ClientRequest> {
        self.requests
            .get_mut(id.key)
            .filter(|e| e.serial == id.serial)
            .map(|e| &mut e.req)
    }

    /// A request's lookup finished.
    pub(super) fn request_located(
        &mut self,
        id: RequestId,
        result: Result<crate::locate::TargetList, crate::locate::LocateError>,
    ) {
        if let Some(e) = self
            .requests
            .get_mut(id.key)
            .filter(|e| e.serial == id.serial)
        {
            e.lookup = None;
            e.req.handle_located(result);
            self.dirty_requests.push(id);
        }
    }

    /// Executes a request's actions.
    pub(super) fn run_request(&mut self, now: Instant, id: RequestId) {
        loop {
            let Some(req) = self.request_entry(id) else {
                return;
            };
            let Some(action) = req.poll_action() else {
                return;
            };
            match action {
                RequestAction::Locate(parts) => {
                    let lookup = self.locator.locate(now, &parts);
                    if let Some(e) = self.requests.get_mut(id.key) {
                        e.lookup = Some(lookup);
                    }
                    self.request_lookups.insert(lookup, id);
                }
                RequestAction::Send {
                    mut request,
                    hop,
                    renumber,
                    contact_user,
                } => {
                    let call = self.requests.get(id.key).and_then(|e| match e.owner {
                        super::RequestOwner::Call(call) => Some(call),
                        _ => None,
                    });
                    if let (true, Some(call)) = (renumber, call) {
                        let seq = self.call_entry(call).and_then(|e| e.call.next_local_cseq());
                        if let (Some(seq), Some(req)) = (seq, self.request_entry(id)) {
                            req.renumber(&mut request, seq);
                        }
                    }
                    let sent = self
                        .send_call_request(now, &request, &hop, contact_user.as_deref())
                        .map(|s| s.txn);
                    if let Ok(txn) = sent {
                        self.request_txns.insert(txn, id);
                    }
                    if let Some(req) = self.request_entry(id) {
                        req.handle_sent(sent);
                    }
                }
                RequestAction::Finished(outcome) => {
                    let e = self.requests.remove(id.key);
                    if let Some(lookup) = e.lookup {
                        self.locator.cancel(lookup);
                        self.request_lookups.remove(&lookup);
                    }
                    if let Some(txn) = e.req.txn() {
                        self.request_txns.remove(&txn);
                    }
                    match e.owner {
                        super::RequestOwner::Gateway | super::RequestOwner::Call(_) => {
                            self.events.push_back(SipEvent::Request {
                                request: id,
                                outcome,
                            })
                        }
                        super::RequestOwner::Detached => {
                            if !outcome.is_success() {
                                log::info!("sip: {} ended {outcome}", e.req.method());
                            }
                        }
                        super::RequestOwner::Subscription(sub) => {
                            self.subscription_request_done(now, sub, id, e.req, outcome)
                        }
                        super::RequestOwner::Publication(p) => {
                            self.publication_request_done(now, p, id, outcome)
                        }
                    }
                    return;
                }
            }
        }
    }
}
