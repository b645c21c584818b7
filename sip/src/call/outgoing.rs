//! An outgoing call (UAC side of RFC 3261 section 13.2): locating the callee (RFC 3263),
//! the INVITE with fail-over, digest challenges, one retry with a second offer after 488,
//! early dialogs, forked 2xx, CANCEL, and the ACK.

use std::time::Instant;

use engine::Rng;

use super::early::{EarlyFork, ForkState, Provisional};
use super::usage::{sdp_of, DialogUsage, InDialog, Phase};
use super::{
    CallAction, CallEnd, CallEndCause, CallError, CallEvent, Hop, OutgoingConfig, SendPurpose,
    Sent, TxnFailure, ALLOW, SUPPORTED,
};
use crate::auth::{DigestClient, DigestRequest, Ha1};
use crate::dialog::{Dialog, DialogState, OutgoingRequest};
use crate::locate::{LocateError, SipScheme, SipUriParts, Target, TargetList};
use crate::msg::{Method, NameAddr, Param, SipRequest, SipResponse, Uri};
use crate::stack::SendError;
use crate::transport::FlowId;
use crate::txn::{TxnConfig, TxnId};

/// Where an outgoing call's setup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OutgoingSetup {
    /// Waiting for the RFC 3263 lookup.
    Locating,
    /// INVITE sent, nothing but maybe 100 back. `cancel_wanted`: hang up as soon as a
    /// provisional arrives (RFC 3261 section 9.1 forbids CANCEL before one).
    Calling { txn: TxnId, cancel_wanted: bool },
    /// A provisional arrived.
    Proceeding { txn: TxnId },
    /// CANCEL sent; waiting for the INVITE's final response until `give_up_at`.
    Cancelling { txn: TxnId, give_up_at: Instant },
}

/// An outgoing call leg.
#[derive(Debug)]
pub struct OutgoingCall {
    pub(super) usage: DialogUsage<OutgoingSetup>,
    config: OutgoingConfig,
    request_uri: Uri,
    from: NameAddr,
    to: NameAddr,
    digest: DigestClient,
    cseq: u32,
    targets: TargetList,
    current: Option<Target>,
    pub(super) invite: Option<Sent>,
    /// The ACK for the accepted 2xx, resent for its retransmissions.
    ack: Option<OutgoingRequest>,
    /// A provisional response arrived (no fail-over after that, RFC 3263 section 4.3).
    provisional_seen: bool,
    /// The offer for one retry after 488 (taken when used, dropped after an early answer).
    retry_offer: Option<String>,
    /// The retry offer went out: a second 488 means no offer is left.
    offer_retried: bool,
    /// The INVITE went out again with a larger session interval after a 422.
    interval_raised: bool,
    /// Early dialogs of other forks, waiting aside (`early.rs`).
    pub(super) forks: Vec<EarlyFork>,
    /// What we know of the usage's current early dialog.
    pub(super) current_fork: ForkState,
    /// When the INVITE, its ACK and the setup's leftovers stop being needed: 64*T1 after
    /// the accepted 2xx, when the peer has stopped retransmitting it and no other fork's
    /// 2xx can still come (RFC 3261 sections 13.3.1.4 and 17.1.1.2, RFC 6026 Timer M).
    /// Until then they answer retransmissions; after, a call holds only its dialog.
    forget_setup_at: Option<Instant>,
}

impl OutgoingCall {
    /// A call to `config.callee`; it starts by asking to locate the callee's domain.
    pub fn new(
        mut config: OutgoingConfig,
        ha1: Ha1,
        timers: TxnConfig,
        route_by_dialog: bool,
    ) -> Result<OutgoingCall, CallError> {
        // The offer is kept for the call's life (a retry after 401/407, fail-over): without
        // the room its writer reserved.
        config.sdp.shrink_to_fit();
        let invalid = || CallError::InvalidCallee(config.callee.clone());
        let callee = config.callee.trim();
        if !callee.contains('@') || callee.contains(['<', '>', ' ']) {
            return Err(invalid());
        }
        let request_uri = Uri::parse(&format!("sip:{callee}")).map_err(|_| invalid())?;
        let host = request_uri.host().ok_or_else(invalid)?.to_string();
        let parts = SipUriParts {
            scheme: SipScheme::Sip,
            host,
            port: request_uri.port(),
            transport: request_uri
                .param("transport")
                .and_then(|p| p.value())
                .map(|v| v.to_ascii_lowercase()),
        };
        let mut from = NameAddr::new(Uri::parse(&format!(
            "sip:{}@{}",
            config.user, config.domain
        ))?);
        from.display_name = config.display_name.clone();
        let from = from.with_param(Param::raw("tag", Some(&config.from_tag)));
        let to = NameAddr::new(request_uri.clone());
        let mut usage = DialogUsage::new(OutgoingSetup::Locating, timers, route_by_dialog);
        usage.local_sdp = Some(config.sdp.clone());
        usage.owns_call_id = true;
        usage.digest = Some(DigestClient::new(&config.user, ha1.clone()));
        usage.user_agent = config.user_agent.clone();
        usage.session_timer.wanted = config.session_expires;
        usage.push(CallAction::Locate(parts));
        Ok(OutgoingCall {
            usage,
            retry_offer: config.retry_offer.clone(),
            digest: DigestClient::new(&config.user, ha1),
            config,
            request_uri,
            from,
            to,
            cseq: 0,
            targets: TargetList::default(),
            current: None,
            invite: None,
            ack: None,
            provisional_seen: false,
            offer_retried: false,
            interval_raised: false,
            forget_setup_at: None,
            forks: Vec::new(),
            current_fork: ForkState::default(),
        })
    }

    /// Whether the callee's domain is being located.
    pub fn is_locating(&self) -> bool {
        self.usage.setup() == Some(OutgoingSetup::Locating)
    }

    /// The callee lookup finished.
    pub fn handle_located(&mut self, result: Result<TargetList, LocateError>) {
        if self.usage.setup() != Some(OutgoingSetup::Locating) {
            return;
        }
        match result {
            Ok(targets) => {
                self.targets = targets;
                self.next_target(CallEnd::new(CallEndCause::NoTarget));
            }
            Err(e) => {
                log::info!("sip: call target lookup failed: {e}");
                self.usage.terminate(CallEnd::new(CallEndCause::Dns(e)));
                self.usage.finish();
            }
        }
    }

    /// The stack sent (or failed to send) our INVITE.
    pub fn handle_request_sent(&mut self, result: Result<Sent, SendError>) {
        match result {
            Ok(sent) => {
                let txn = sent.txn;
                self.usage.hop = Some(Hop::Flow {
                    target: sent.target,
                    kind: sent.kind,
                });
                self.usage.contact = sent.contact.clone();
                let cancel_wanted = matches!(
                    self.usage.setup(),
                    Some(OutgoingSetup::Calling {
                        cancel_wanted: true,
                        ..
                    })
                );
                self.invite = Some(sent);
                self.usage.phase = Phase::Setup(OutgoingSetup::Calling { txn, cancel_wanted });
            }
            Err(why) => {
                log::info!("sip: INVITE not sent: {why}");
                self.invite_failed(CallEnd::new(CallEndCause::NotSent(why)));
            }
        }
    }

    /// A response on one of the call's client transactions.
    pub fn handle_response(&mut self, now: Instant, txn: TxnId, response: &SipResponse) {
        if self.invite.as_ref().map(|s| s.txn) != Some(txn) {
            return;
        }
        match response.status() {
            100..=199 => self.handle_provisional(now, response),
            200..=299 => self.handle_2xx(now, response),
            _ => self.handle_failure_response(response),
        }
    }

    fn handle_provisional(&mut self, now: Instant, response: &SipResponse) {
        self.provisional_seen = true;
        if matches!(
            self.usage.setup(),
            Some(OutgoingSetup::Calling { .. } | OutgoingSetup::Proceeding { .. })
        ) {
            // RFC 3261 section 12.1.2: a provisional with a To tag creates an early dialog,
            // one per fork (`early.rs`); a reliable one is PRACKed (RFC 3262).
            if let Provisional::Repeated = self.take_provisional(response) {
                return;
            }
        }
        match self.usage.setup() {
            Some(OutgoingSetup::Calling {
                txn,
                cancel_wanted: true,
            }) => self.send_cancel(now, txn),
            Some(OutgoingSetup::Calling { txn, .. } | OutgoingSetup::Proceeding { txn }) => {
                self.usage.phase = Phase::Setup(OutgoingSetup::Proceeding { txn });
                let sdp = sdp_of(response.content_type(), response.body());
                if sdp.is_some() {
                    // The first offer has an (early) answer the gateway may already use:
                    // a later 488 ends the call rather than switching offers under it.
                    self.retry_offer = None;
                    // And the callee may now send offers of its own in UPDATE (RFC 3311
                    // section 5.1).
                    self.usage.early_offers_allowed = true;
                }
                self.usage.report(CallEvent::Progress {
                    code: response.status(),
                    reason: response.reason().to_owned(),
                    sdp,
                });
            }
            _ => {}
        }
    }

    fn handle_2xx(&mut self, now: Instant, response: &SipResponse) {
        self.digest.handle_success();
        let Some(invite) = self.invite.as_ref() else {
            return;
        };
        let tag = response.to().tag();
        let credentials: Vec<(String, String)> = ["Authorization", "Proxy-Authorization"]
            .iter()
            .flat_map(|name| {
                invite
                    .request
                    .headers()
                    .get_all(name)
                    .map(|v| ((*name).to_owned(), v.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let invite_cseq = invite.request.cseq().seq;
        let confirmed_tag = self
            .usage
            .dialog
            .as_ref()
            .filter(|d| d.state() == DialogState::Confirmed)
            .map(|d| d.key().remote_tag.clone());
        match confirmed_tag {
            // A retransmission of the 2xx we accepted: ACK again (RFC 3261 13.2.2.4).
            Some(t) if Some(&t) == tag.as_ref() => {
                if let (Some(ack), Some(hop)) = (self.ack.clone(), self.usage.in_dialog_hop()) {
                    self.usage.push(CallAction::SendAck { request: ack, hop });
                }
                return;
            }
            // Another fork answered too: ACK it and end that dialog at once (13.2.2.4).
            Some(_) => {
                if let Ok(mut stray) = Dialog::uac(&invite.request, response) {
                    let ack = stray.ack(invite_cseq, &credentials);
                    let bye = stray.request(Method::Bye);
                    if let Some(hop) = self.usage.hop_for(&stray) {
                        self.usage.push(CallAction::SendAck {
                            request: ack,
                            hop: hop.clone(),
                        });
                        self.usage.send_request_to(bye, hop);
                    }
                }
                return;
            }
            None => {}
        }
        // Create the dialog from the 2xx, or confirm the early one it belongs to; the early
        // dialogs of other forks go.
        let early_answer = self.settle_forks(tag.as_deref());
        let dialog = match self.usage.dialog.take() {
            Some(mut d) if Some(&d.key().remote_tag) == tag.as_ref() => {
                d.confirm(response);
                d
            }
            previous => {
                if let Some(p) = previous {
                    self.usage.push(CallAction::DialogRemoved(p.key().clone()));
                }
                let Some(invite) = self.invite.as_ref() else {
                    return;
                };
                match Dialog::uac(&invite.request, response) {
                    Ok(d) => {
                        self.usage.push(CallAction::DialogCreated(d.key().clone()));
                        d
                    }
                    Err(e) => {
                        // A 2xx we cannot ACK properly (no tag or Contact): the session cannot
                        // be used; the peer will time out its 2xx and tear down.
                        log::info!("sip: unusable 2xx for INVITE: {e}");
                        self.usage
                            .terminate(CallEnd::new(CallEndCause::UnusableAnswer(e)));
                        self.usage.finish();
                        return;
                    }
                }
            }
        };
        let ack = dialog.ack(invite_cseq, &credentials);
        self.usage.dialog = Some(dialog);
        self.ack = Some(ack.clone());
        if let Some(hop) = self.usage.in_dialog_hop() {
            self.usage.push(CallAction::SendAck { request: ack, hop });
        }
        match self.usage.setup() {
            // The 2xx crossed our CANCEL (or came before any provisional after a hangup):
            // the session exists, so it must be ended with BYE (RFC 3261 section 15).
            Some(
                OutgoingSetup::Cancelling { .. }
                | OutgoingSetup::Calling {
                    cancel_wanted: true,
                    ..
                },
            ) => {
                self.usage.send_bye();
                self.usage.finish();
            }
            Some(OutgoingSetup::Calling { .. } | OutgoingSetup::Proceeding { .. }) => {
                self.usage.phase = Phase::Confirmed;
                self.forget_setup_at = Some(now + self.usage.timers.t1 * 64);
                self.usage.handle_session_timer_response(now, response);
                // RFC 3261 section 13.2.1: an answer already given in a reliable provisional
                // of this dialog need not be repeated in the 2xx.
                self.usage.remote_sdp =
                    sdp_of(response.content_type(), response.body()).or(early_answer);
                self.usage.report(CallEvent::Accepted {
                    sdp: self.usage.remote_sdp.clone(),
                    headers: response.headers().clone(),
                });
            }
            _ => {}
        }
    }

    fn handle_failure_response(&mut self, response: &SipResponse) {
        let status = response.status();
        let phrase = response.reason();
        match self.usage.setup() {
            // The INVITE ended (487 normally): the hangup is complete.
            Some(
                OutgoingSetup::Cancelling { .. }
                | OutgoingSetup::Calling {
                    cancel_wanted: true,
                    ..
                },
            ) => self.usage.finish(),
            Some(OutgoingSetup::Calling { .. } | OutgoingSetup::Proceeding { .. }) => {
                // The early dialogs (if any) end with the INVITE (RFC 3261 section 12.3).
                self.usage.drop_dialog();
                self.drop_forks();
                match status {
                    401 | 407 => match self.digest.handle_challenge(response) {
                        Ok(()) => self.send_invite(),
                        Err(error) => {
                            log::info!("sip: not answering INVITE challenge: {error}");
                            self.usage.terminate(CallEnd {
                                code: status,
                                cause: CallEndCause::Unauthorized {
                                    phrase: phrase.to_owned(),
                                    error,
                                },
                            });
                            self.usage.finish();
                        }
                    },
                    // RFC 3261 section 21.4.26: the offer was not acceptable; try the second
                    // offer once, in a new INVITE transaction exactly like the 401/407 retry
                    // (same Call-ID and From tag, next CSeq, credentials of the realms
                    // already challenged).
                    488 if self.take_retry_offer() => {
                        self.usage.report(CallEvent::OfferRetried { code: status });
                        self.send_invite();
                    }
                    // RFC 4028 section 6: our interval is below the callee's (or a proxy's)
                    // minimum; ask again with that minimum, once.
                    422 if !self.interval_raised => {
                        let min_se = response
                            .header("Min-SE")
                            .and_then(|v| v.split(';').next()?.trim().parse::<u32>().ok());
                        match min_se {
                            Some(min) => {
                                self.interval_raised = true;
                                self.digest.handle_success();
                                self.usage.session_timer.wanted =
                                    min.max(self.usage.session_timer.wanted);
                                self.send_invite();
                            }
                            None => {
                                self.usage.terminate(CallEnd::rejected(status, phrase));
                                self.usage.finish();
                            }
                        }
                    }
                    // RFC 3263 section 4.3: a 503 before anything else moves on.
                    503 if !self.provisional_seen => {
                        self.invite_failed(CallEnd::rejected(status, phrase))
                    }
                    _ => {
                        self.digest.handle_success();
                        let end = if status == 488 && self.offer_retried {
                            CallEnd::new(CallEndCause::OfferRetryExhausted {
                                phrase: phrase.to_owned(),
                            })
                        } else {
                            CallEnd::rejected(status, phrase)
                        };
                        self.usage.terminate(end);
                        self.usage.finish();
                    }
                }
            }
            _ => {}
        }
    }

    /// The INVITE client transaction timed out (Timer B) or hit a transport error.
    pub fn handle_txn_failure(&mut self, txn: TxnId, failure: TxnFailure) {
        match self.usage.setup() {
            Some(OutgoingSetup::Calling { txn: t, .. } | OutgoingSetup::Proceeding { txn: t })
                if t == txn =>
            {
                if self.provisional_seen {
                    self.usage.terminate(failure.end());
                    self.usage.finish();
                } else {
                    self.invite_failed(failure.end());
                }
            }
            Some(OutgoingSetup::Cancelling { txn: t, .. }) if t == txn => self.usage.finish(),
            _ => {}
        }
    }

    /// The client INVITE transaction still waiting for its final response and the flow it
    /// travels on, so the stack can fail it over when that connection closes.
    pub fn pending_invite(&self) -> Option<(TxnId, FlowId)> {
        let flow = self.invite.as_ref().map(|s| s.target.flow)?;
        match self.usage.setup() {
            Some(OutgoingSetup::Calling { txn, .. } | OutgoingSetup::Proceeding { txn }) => {
                Some((txn, flow))
            }
            _ => None,
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
                self.usage.terminate(CallEnd::new(CallEndCause::RemoteBye));
                self.usage.finish();
            }
            // We send no reliable provisional responses as the caller.
            InDialog::Prack => {
                self.usage
                    .respond_plain(txn, request, 481, "Call/Transaction Does Not Exist", &[])
            }
            InDialog::Handled => {}
        }
    }

    /// Ends the call from our side, whatever its state: CANCEL (once a provisional arrived),
    /// BYE. Reports `Terminated` with [`CallEndCause::LocalHangup`] at once.
    pub fn hangup(&mut self, now: Instant) {
        let hangup = || CallEnd::new(CallEndCause::LocalHangup);
        match self.usage.phase {
            Phase::Setup(OutgoingSetup::Locating) => {
                self.usage.terminate(hangup());
                self.usage.finish();
            }
            Phase::Setup(OutgoingSetup::Calling { txn, .. }) => {
                self.usage.terminate(hangup());
                self.usage.phase = Phase::Setup(OutgoingSetup::Calling {
                    txn,
                    cancel_wanted: true,
                });
            }
            Phase::Setup(OutgoingSetup::Proceeding { txn }) => {
                self.usage.terminate(hangup());
                self.send_cancel(now, txn);
            }
            Phase::Confirmed => self.usage.hang_up_confirmed(),
            Phase::Setup(OutgoingSetup::Cancelling { .. }) | Phase::Done => {}
        }
    }

    /// Runs due timers; early calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut Rng) {
        if self.forget_setup_at.is_some_and(|at| now >= at) {
            self.forget_setup();
        }
        if let Some(OutgoingSetup::Cancelling { txn, give_up_at }) = self.usage.setup() {
            if now >= give_up_at {
                self.usage.push(CallAction::Abandon { txn });
                self.usage.finish();
                return;
            }
        }
        self.usage.handle_timeout(now, rng);
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let cancel = match self.usage.setup() {
            Some(OutgoingSetup::Cancelling { give_up_at, .. }) => Some(give_up_at),
            _ => None,
        };
        [cancel, self.forget_setup_at, self.usage.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether the call still holds its INVITE as sent (tests of [`Self::forget_setup`]).
    #[cfg(test)]
    pub(crate) fn holds_invite(&self) -> bool {
        self.invite.is_some() || self.ack.is_some()
    }

    /// Drops what only the setup needed (see `forget_setup_at`): the INVITE as sent (a
    /// parsed request and its offer, a few KiB per call), the ACK, the fork states and the
    /// offers kept for retries. A late 2xx then finds no INVITE and is ignored.
    fn forget_setup(&mut self) {
        self.forget_setup_at = None;
        self.invite = None;
        self.ack = None;
        self.forks = Vec::new();
        self.current_fork = ForkState::default();
        self.retry_offer = None;
        self.config.sdp = String::new();
    }

    /// Makes the retry offer the call's offer, if there is one left; the request that got
    /// the 488 was authenticated, so the digest state is settled as after any final answer.
    fn take_retry_offer(&mut self) -> bool {
        let Some(offer) = self.retry_offer.take() else {
            return false;
        };
        self.digest.handle_success();
        self.config.sdp = offer.clone();
        self.usage.local_sdp = Some(offer);
        self.offer_retried = true;
        true
    }

    /// Tries the next target after a failure before any provisional (RFC 3263 section 4.3).
    fn invite_failed(&mut self, end_if_none: CallEnd) {
        if matches!(
            self.usage.setup(),
            Some(OutgoingSetup::Calling {
                cancel_wanted: true,
                ..
            })
        ) {
            self.usage.finish();
            return;
        }
        self.next_target(end_if_none);
    }

    fn next_target(&mut self, end_if_none: CallEnd) {
        match self.targets.next_target() {
            Some(target) => {
                self.current = Some(target);
                self.send_invite();
            }
            None => {
                self.usage.terminate(end_if_none);
                self.usage.finish();
            }
        }
    }

    /// Sends the INVITE (again: new branch, next CSeq, credentials for challenged realms).
    fn send_invite(&mut self) {
        let Some(target) = self.current.clone() else {
            return;
        };
        self.cseq += 1;
        let uri = self.request_uri.to_string();
        let mut headers = vec![
            ("Max-Forwards".to_owned(), "70".to_owned()),
            ("From".to_owned(), self.from.to_string()),
            ("To".to_owned(), self.to.to_string()),
            ("Call-ID".to_owned(), self.config.call_id.clone()),
            ("CSeq".to_owned(), format!("{} INVITE", self.cseq)),
            ("User-Agent".to_owned(), self.config.user_agent.clone()),
            ("Allow".to_owned(), ALLOW.to_owned()),
            ("Supported".to_owned(), SUPPORTED.to_owned()),
        ];
        headers.extend(self.usage.session_timer_request_headers());
        headers.extend(self.config.headers.iter().cloned());
        let body = self.config.sdp.as_bytes().to_vec();
        // The cnonce only has to be unique per use; Call-ID and CSeq make it so.
        let cnonce = format!("{}{}", self.config.from_tag, self.cseq);
        let digest_request = DigestRequest {
            method: "INVITE",
            uri: &uri,
            body: &body,
            cnonce: &cnonce,
        };
        // Credentials only for realms that challenged us; an error here was already
        // reported when the challenge arrived.
        if let Ok(auth) = self.digest.authorize(&digest_request) {
            for h in auth {
                headers.push((h.name.to_owned(), h.value));
            }
        }
        let request = OutgoingRequest {
            method: Method::Invite,
            uri: self.request_uri.clone(),
            headers,
            body: Some(("application/sdp".to_owned(), body)),
        };
        // Until the stack reports the transaction, the call counts as calling without one.
        self.usage.push(CallAction::SendRequest {
            request,
            hop: Hop::Located(target),
            contact_user: Some(self.config.contact_user.clone()),
            purpose: SendPurpose::Invite,
        });
    }

    fn send_cancel(&mut self, now: Instant, txn: TxnId) {
        if let Some(target) = self.invite.as_ref().map(|s| s.target) {
            self.usage.push(CallAction::SendCancel {
                invite: txn,
                target,
            });
        }
        // RFC 3261 section 9.1: without a final response 64*T1 after the CANCEL, the INVITE
        // transaction is considered cancelled.
        self.usage.phase = Phase::Setup(OutgoingSetup::Cancelling {
            txn,
            give_up_at: now + self.usage.timers.timeout(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_callee_is_refused() {
        let config = OutgoingConfig {
            user: "a".into(),
            domain: "d.test".into(),
            display_name: None,
            user_agent: "ua".into(),
            callee: "no-at-sign".into(),
            call_id: "c".into(),
            from_tag: "t".into(),
            contact_user: "u".into(),
            sdp: "v=0".into(),
            retry_offer: None,
            session_expires: 0,
            headers: Vec::new(),
        };
        let ha1 = Ha1::from_hex("0123456789abcdef0123456789abcdef").unwrap();
        assert!(matches!(
            OutgoingCall::new(config, ha1, TxnConfig::default(), true),
            Err(CallError::InvalidCallee(_))
        ));
    }
}
