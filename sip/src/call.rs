//! One call leg (an INVITE dialog usage, RFC 3261 sections 13-15) as a sans-IO state machine,
//! outgoing or incoming.
//!
//! Like [`Registration`](super::registration::Registration) it decides *what* to do and asks
//! the stack through [`CallAction`]s; the stack picks transports and Vias, runs the
//! transactions and feeds results back. SDP bodies are opaque strings: the media layer
//! translates them. The only SDP the call touches is the fallback answer to a re-INVITE the
//! gateway leaves unanswered (see [`mirror_direction`]).
//!
//! # Termination reasons
//!
//! Exactly one [`CallEvent::Terminated`] is reported per call, after which the call reports
//! nothing more (it may live on briefly to finish a CANCEL or wait for an ACK). Its reason is
//! `"<code> <phrase>"` of the SIP final response that ended the call (`"486 Busy Here"`,
//! `"408 Request Timeout"` for Timer B or a missing ACK, `"503 Service Unavailable"` when no
//! target could be reached, `"487 Request Terminated"` when the caller cancelled an incoming
//! call), or one of [`REASON_REMOTE_BYE`] and [`REASON_LOCAL_HANGUP`].

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::auth::{DigestClient, DigestRequest, Ha1};
use super::dialog::{Dialog, DialogKey, OutgoingRequest};
use super::locate::{LocateError, SipScheme, SipUriParts, Target, TargetList};
use super::msg::{
    Host, Method, MsgError, NameAddr, Param, ResponseBuilder, SipRequest, SipResponse, Uri,
};
use super::transport::Transport;
use super::txn::{self, TxnConfig, TxnId};

/// Reason of a call the peer ended with BYE (a 200 answered it).
pub const REASON_REMOTE_BYE: &str = "200 BYE received";
/// Reason of a call ended by [`Call::hangup`] (or a decline the gateway asked for by hangup).
pub const REASON_LOCAL_HANGUP: &str = "200 Local hangup";
/// Methods a call answers inside its dialog, for `Allow` (RFC 3261 section 20.5).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";
/// How long the gateway may take to answer a re-INVITE offer before the call answers it
/// itself with its last SDP, directions mirrored (well under the peer's Timer B of 32 s).
pub const REINVITE_ANSWER_WAIT: Duration = Duration::from_secs(4);

/// What a call reports; the stack forwards it as a `SipEvent` with the call's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// Outgoing: a provisional response (a 183 with SDP means early media).
    Progress {
        /// Status code (100-199).
        code: u16,
        /// Reason phrase.
        reason: String,
        /// SDP body, if any.
        sdp: Option<String>,
    },
    /// Outgoing: the INVITE was refused with 488 Not Acceptable Here and went out again,
    /// in a new transaction, with [`OutgoingConfig::retry_offer`]; the answer still to come
    /// answers that offer. Reported at most once per call.
    OfferRetried {
        /// The status that was refused (488).
        code: u16,
    },
    /// Outgoing: a 2xx arrived and was ACKed.
    Accepted {
        /// The answer SDP (`None` if the 2xx had no body).
        sdp: Option<String>,
    },
    /// Incoming: the ACK for our 200 arrived.
    Confirmed {
        /// The SDP answer carried by the ACK (INVITE without offer, RFC 3264 section 4).
        sdp_in_ack: Option<String>,
    },
    /// A re-INVITE with a new offer: answer with `answer_reinvite` within
    /// [`REINVITE_ANSWER_WAIT`], or the call answers with its last SDP mirrored.
    ReInvite {
        /// The new offer.
        sdp: String,
    },
    /// The call is over (see the module docs for the reasons).
    Terminated {
        /// `"<code> <phrase>"`.
        reason: String,
    },
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    /// A located server: the stack finds or opens the flow.
    Located(Target),
    /// An existing flow (the one the INVITE used or came from).
    Flow {
        /// The transaction target.
        target: txn::Destination,
        /// Its transport.
        kind: Transport,
    },
}

/// What the call asks its stack to do.
#[derive(Debug, Clone)]
pub enum CallAction {
    /// Locate the callee's domain (RFC 3263); answer with [`Call::handle_located`].
    Locate(SipUriParts),
    /// Add a Via with a fresh branch (and our Contact when `contact_user` is set), send in a
    /// new client transaction, and report with [`Call::handle_request_sent`].
    SendRequest {
        /// The request without Via.
        request: OutgoingRequest,
        /// Where to.
        hop: Hop,
        /// Contact user part to advertise (INVITE only).
        contact_user: Option<String>,
    },
    /// Add a Via with a fresh branch and send outside any transaction: the ACK for a 2xx
    /// (RFC 3261 section 13.2.2.4).
    SendAck {
        /// The ACK without Via.
        request: OutgoingRequest,
        /// Where to.
        hop: Hop,
    },
    /// Send a CANCEL for our INVITE transaction (RFC 3261 section 9.1) to where it went.
    SendCancel {
        /// The INVITE client transaction.
        invite: TxnId,
        /// Its target.
        target: txn::Destination,
    },
    /// Send a response through a server transaction.
    Respond {
        /// The server transaction.
        txn: TxnId,
        /// The response (boxed: it dwarfs the other actions).
        response: Box<SipResponse>,
    },
    /// Give up on a client INVITE transaction that will never get its final response (RFC
    /// 3261 section 9.1: 64*T1 after the CANCEL).
    Abandon {
        /// The INVITE client transaction.
        txn: TxnId,
    },
    /// File the dialog under this key (for in-dialog requests).
    DialogCreated(DialogKey),
    /// Forget this dialog key.
    DialogRemoved(DialogKey),
    /// Tell the gateway.
    Report(CallEvent),
    /// Nothing more to do: forget the call.
    Finished,
}

/// Errors of the call layer (caused by the gateway's input, never by the network).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// The callee is not a valid `user@domain`.
    InvalidCallee(String),
    /// No such call (already over).
    UnknownCall,
    /// The per-stack call limit is reached.
    TooManyCalls,
    /// The operation does not fit the call's state (e.g. `answer` on an outgoing call).
    InvalidState,
    /// The incoming INVITE cannot start a dialog (no Contact).
    BadInvite,
    /// A message could not be built.
    Message(MsgError),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::InvalidCallee(c) => write!(f, "invalid callee {c:?}"),
            CallError::UnknownCall => f.write_str("unknown call"),
            CallError::TooManyCalls => f.write_str("too many calls"),
            CallError::InvalidState => f.write_str("not possible in the call's state"),
            CallError::BadInvite => f.write_str("INVITE without Contact"),
            CallError::Message(e) => write!(f, "cannot build message: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

impl From<MsgError> for CallError {
    fn from(e: MsgError) -> Self {
        CallError::Message(e)
    }
}

/// What an outgoing call needs.
#[derive(Debug, Clone)]
pub struct OutgoingConfig {
    /// Caller's user part.
    pub user: String,
    /// Caller's domain.
    pub domain: String,
    /// Caller's display name (in From).
    pub display_name: Option<String>,
    /// User-Agent.
    pub user_agent: String,
    /// Callee `user@domain`.
    pub callee: String,
    /// Call-ID.
    pub call_id: String,
    /// From tag.
    pub from_tag: String,
    /// Contact user part.
    pub contact_user: String,
    /// The SDP offer.
    pub sdp: String,
    /// A second offer, sent once in a new INVITE if the first is refused with 488 Not
    /// Acceptable Here (RFC 3261 section 21.4.26: "the offer could not be accepted"), e.g.
    /// `RTP/SAVP` with SDES keys after a plain `RTP/AVP` offer a peer requiring SRTP refused.
    /// Like the retry after a 401/407 the new INVITE keeps Call-ID and From tag and takes
    /// the next CSeq (RFC 3261 section 8.1.3.5). Not used once a provisional response has
    /// carried an answer to the first offer (early media, RFC 3960).
    pub retry_offer: Option<String>,
}

/// The stack's result of sending a request for the call.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The client transaction.
    pub txn: TxnId,
    /// Where it went.
    pub target: txn::Destination,
    /// Over which transport.
    pub kind: Transport,
    /// The request as sent.
    pub request: SipRequest,
    /// The Contact added, if any.
    pub contact: Option<NameAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Outgoing: waiting for the RFC 3263 lookup.
    Locating,
    /// Outgoing: INVITE sent, nothing but maybe 100 back. `cancel_wanted`: hang up as soon
    /// as a provisional arrives (RFC 3261 section 9.1 forbids CANCEL before one).
    Calling { txn: TxnId, cancel_wanted: bool },
    /// Outgoing: a provisional arrived.
    Proceeding { txn: TxnId },
    /// Outgoing: CANCEL sent; waiting for the INVITE's final response until `give_up_at`.
    Cancelling { txn: TxnId, give_up_at: Instant },
    /// Incoming: not answered yet.
    Offered { txn: TxnId },
    /// Incoming: 200 sent, waiting for the ACK (retransmissions run in `pending_2xx`).
    Answered,
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
    interval: Duration,
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

/// State only an outgoing call has.
#[derive(Debug)]
struct Outgoing {
    config: OutgoingConfig,
    request_uri: Uri,
    from: NameAddr,
    to: NameAddr,
    digest: DigestClient,
    cseq: u32,
    targets: TargetList,
    current: Option<Target>,
    invite: Option<Sent>,
    /// The ACK for the accepted 2xx, resent for its retransmissions.
    ack: Option<OutgoingRequest>,
    /// A provisional response arrived (no fail-over after that, RFC 3263 section 4.3).
    provisional_seen: bool,
    /// The offer for one retry after 488 (taken when used, dropped after an early answer).
    retry_offer: Option<String>,
}

/// One call leg.
#[derive(Debug)]
pub struct Call {
    phase: Phase,
    timers: TxnConfig,
    outgoing: Option<Outgoing>,
    dialog: Option<Dialog>,
    /// Our Contact, for 2xx responses (RFC 3261 section 12.1.1) and target refreshes.
    contact: Option<NameAddr>,
    /// Where in-dialog requests go when the next hop is not a literal address.
    hop: Option<Hop>,
    /// False with an outbound proxy: every request goes through it.
    route_by_dialog: bool,
    /// Incoming: the INVITE. This and the next two are boxed: each is ~0.6 KiB and most
    /// calls never have them (outgoing calls have no INVITE here, most have no re-INVITE).
    invite: Option<Box<SipRequest>>,
    local_sdp: Option<String>,
    remote_sdp: Option<String>,
    pending_2xx: Option<Box<Pending2xx>>,
    reinvite: Option<Box<PendingReInvite>>,
    /// Incoming, answered, hung up before the ACK: send BYE once it arrives (RFC 3261 15).
    bye_after_ack: bool,
    /// `Terminated` was reported; nothing more is.
    ended: bool,
    actions: VecDeque<CallAction>,
}

impl Call {
    fn blank(timers: TxnConfig, route_by_dialog: bool) -> Call {
        Call {
            phase: Phase::Locating,
            timers,
            outgoing: None,
            dialog: None,
            contact: None,
            hop: None,
            route_by_dialog,
            invite: None,
            local_sdp: None,
            remote_sdp: None,
            pending_2xx: None,
            reinvite: None,
            bye_after_ack: false,
            ended: false,
            actions: VecDeque::new(),
        }
    }

    /// An outgoing call; it starts by asking to locate the callee's domain.
    pub fn outgoing(
        config: OutgoingConfig,
        ha1: Ha1,
        timers: TxnConfig,
        route_by_dialog: bool,
    ) -> Result<Call, CallError> {
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
        let mut call = Call::blank(timers, route_by_dialog);
        call.local_sdp = Some(config.sdp.clone());
        call.outgoing = Some(Outgoing {
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
        });
        call.actions.push_back(CallAction::Locate(parts));
        Ok(call)
    }

    /// An incoming call for an INVITE that server transaction `txn` received from `source`.
    /// `contact` is our Contact for the transport it came over; `local_tag` our To tag.
    pub fn incoming(
        invite: SipRequest,
        txn: TxnId,
        source: txn::Destination,
        local_tag: &str,
        contact: NameAddr,
        timers: TxnConfig,
        route_by_dialog: bool,
    ) -> Result<Call, CallError> {
        let dialog = Dialog::uas(&invite, local_tag).map_err(|_| CallError::BadInvite)?;
        let kind = invite
            .top_via()
            .map(|v| transport_of(&v.transport))
            .unwrap_or(Transport::Udp);
        let mut call = Call::blank(timers, route_by_dialog);
        call.phase = Phase::Offered { txn };
        call.remote_sdp = sdp_of(invite.content_type(), invite.body());
        call.hop = Some(Hop::Flow {
            target: source,
            kind,
        });
        call.contact = Some(contact);
        call.actions
            .push_back(CallAction::DialogCreated(dialog.key().clone()));
        call.dialog = Some(dialog);
        call.invite = Some(Box::new(invite));
        Ok(call)
    }

    /// The offer of an incoming INVITE (`None`: the INVITE had none; offer in the 200).
    pub fn remote_sdp(&self) -> Option<&str> {
        self.remote_sdp.as_deref()
    }

    /// The dialog, once there is one.
    pub fn dialog(&self) -> Option<&Dialog> {
        self.dialog.as_ref()
    }

    /// The next thing for the stack to do.
    pub fn poll_action(&mut self) -> Option<CallAction> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let cancel = match self.phase {
            Phase::Cancelling { give_up_at, .. } => Some(give_up_at),
            _ => None,
        };
        [
            cancel,
            self.pending_2xx
                .as_ref()
                .map(|p| p.next_at.min(p.give_up_at)),
            self.reinvite.as_ref().map(|r| r.answer_by),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- outgoing ------------------------------------------------------------------------

    /// The callee lookup finished.
    pub fn handle_located(&mut self, _now: Instant, result: Result<TargetList, LocateError>) {
        if self.phase != Phase::Locating {
            return;
        }
        match result {
            Ok(targets) => {
                if let Some(out) = self.outgoing.as_mut() {
                    out.targets = targets;
                }
                self.next_target("503 Service Unavailable");
            }
            Err(e) => {
                log::info!("sip: call target lookup failed: {e}");
                self.terminate("503 Service Unavailable".to_owned());
                self.finish();
            }
        }
    }

    /// The stack sent (or failed to send) a [`CallAction::SendRequest`].
    pub fn handle_request_sent(
        &mut self,
        now: Instant,
        method: &Method,
        result: Result<Sent, String>,
    ) {
        if *method != Method::Invite {
            // BYEs are fire and forget: the call is already over when one is sent.
            return;
        }
        match result {
            Ok(sent) => {
                let txn = sent.txn;
                self.hop = Some(Hop::Flow {
                    target: sent.target,
                    kind: sent.kind,
                });
                self.contact = sent.contact.clone();
                let cancel_wanted = matches!(
                    self.phase,
                    Phase::Calling {
                        cancel_wanted: true,
                        ..
                    }
                );
                if let Some(out) = self.outgoing.as_mut() {
                    out.invite = Some(sent);
                }
                self.phase = Phase::Calling { txn, cancel_wanted };
            }
            Err(why) => {
                log::info!("sip: INVITE not sent: {why}");
                self.invite_failed(now, "503 Service Unavailable");
            }
        }
    }

    /// A response on one of the call's client transactions.
    pub fn handle_response(&mut self, now: Instant, txn: TxnId, response: &SipResponse) {
        let invite_txn = self
            .outgoing
            .as_ref()
            .and_then(|o| o.invite.as_ref())
            .map(|s| s.txn);
        if invite_txn != Some(txn) {
            return;
        }
        let status = response.status();
        match status {
            100..=199 => self.handle_provisional(now, response),
            200..=299 => self.handle_2xx(response),
            _ => self.handle_failure_response(now, response),
        }
    }

    fn handle_provisional(&mut self, now: Instant, response: &SipResponse) {
        if let Some(out) = self.outgoing.as_mut() {
            out.provisional_seen = true;
        }
        // RFC 3261 section 12.1.2: a provisional with a To tag creates an early dialog (one
        // per call here: later forks only report progress).
        if self.dialog.is_none() && response.to().tag().is_some() {
            let invite = self
                .outgoing
                .as_ref()
                .and_then(|o| o.invite.as_ref())
                .map(|s| &s.request);
            if let Some(Ok(dialog)) = invite.map(|i| Dialog::uac(i, response)) {
                self.actions
                    .push_back(CallAction::DialogCreated(dialog.key().clone()));
                self.dialog = Some(dialog);
            }
        }
        match self.phase {
            Phase::Calling {
                txn,
                cancel_wanted: true,
            } => self.send_cancel(now, txn),
            Phase::Calling { txn, .. } | Phase::Proceeding { txn } => {
                self.phase = Phase::Proceeding { txn };
                let sdp = sdp_of(response.content_type(), response.body());
                if sdp.is_some() {
                    // The first offer has an (early) answer the gateway may already use:
                    // a later 488 ends the call rather than switching offers under it.
                    if let Some(out) = self.outgoing.as_mut() {
                        out.retry_offer = None;
                    }
                }
                self.report(CallEvent::Progress {
                    code: response.status(),
                    reason: response.reason().to_owned(),
                    sdp,
                });
            }
            _ => {}
        }
    }

    fn handle_2xx(&mut self, response: &SipResponse) {
        let Some(out) = self.outgoing.as_mut() else {
            return;
        };
        out.digest.handle_success();
        let Some(invite) = out.invite.as_ref() else {
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
            .dialog
            .as_ref()
            .filter(|d| d.state() == super::dialog::DialogState::Confirmed)
            .map(|d| d.key().remote_tag.clone());
        match confirmed_tag {
            // A retransmission of the 2xx we accepted: ACK again (RFC 3261 13.2.2.4).
            Some(t) if Some(&t) == tag.as_ref() => {
                if let (Some(ack), Some(hop)) = (out.ack.clone(), self.in_dialog_hop()) {
                    self.actions
                        .push_back(CallAction::SendAck { request: ack, hop });
                }
                return;
            }
            // Another fork answered too: ACK it and end that dialog at once (13.2.2.4).
            Some(_) => {
                if let Ok(mut stray) = Dialog::uac(&invite.request, response) {
                    let ack = stray.ack(invite_cseq, &credentials);
                    let bye = stray.request(Method::Bye);
                    if let Some(hop) = self.hop_for(&stray) {
                        self.actions.push_back(CallAction::SendAck {
                            request: ack,
                            hop: hop.clone(),
                        });
                        self.send_request_to(bye, hop);
                    }
                }
                return;
            }
            None => {}
        }
        // Create the dialog from the 2xx, or confirm the early one it belongs to; an early
        // dialog of another fork is replaced.
        let dialog = match self.dialog.take() {
            Some(mut d) if Some(&d.key().remote_tag) == tag.as_ref() => {
                d.confirm(response);
                d
            }
            previous => {
                if let Some(p) = previous {
                    self.actions
                        .push_back(CallAction::DialogRemoved(p.key().clone()));
                }
                match Dialog::uac(&invite.request, response) {
                    Ok(d) => {
                        self.actions
                            .push_back(CallAction::DialogCreated(d.key().clone()));
                        d
                    }
                    Err(e) => {
                        // A 2xx we cannot ACK properly (no tag or Contact): the session cannot
                        // be used; the peer will time out its 2xx and tear down.
                        log::info!("sip: unusable 2xx for INVITE: {e}");
                        self.terminate(format!("502 Bad Gateway ({e})"));
                        self.finish();
                        return;
                    }
                }
            }
        };
        let ack = dialog.ack(invite_cseq, &credentials);
        self.dialog = Some(dialog);
        if let Some(out) = self.outgoing.as_mut() {
            out.ack = Some(ack.clone());
        }
        if let Some(hop) = self.in_dialog_hop() {
            self.actions
                .push_back(CallAction::SendAck { request: ack, hop });
        }
        match self.phase {
            // The 2xx crossed our CANCEL (or came before any provisional after a hangup):
            // the session exists, so it must be ended with BYE (RFC 3261 section 15).
            Phase::Cancelling { .. }
            | Phase::Calling {
                cancel_wanted: true,
                ..
            } => {
                self.send_bye();
                self.finish();
            }
            Phase::Calling { .. } | Phase::Proceeding { .. } => {
                self.phase = Phase::Confirmed;
                self.remote_sdp = sdp_of(response.content_type(), response.body());
                self.report(CallEvent::Accepted {
                    sdp: self.remote_sdp.clone(),
                });
            }
            _ => {}
        }
    }

    fn handle_failure_response(&mut self, now: Instant, response: &SipResponse) {
        let status = response.status();
        let reason = format!("{status} {}", response.reason());
        match self.phase {
            Phase::Cancelling { .. } => {
                // The INVITE ended (487 normally): the hangup is complete.
                self.finish();
            }
            Phase::Calling {
                cancel_wanted: true,
                ..
            } => self.finish(),
            Phase::Calling { .. } | Phase::Proceeding { .. } => {
                // The early dialog (if any) ends with the INVITE (RFC 3261 section 12.3).
                if let Some(d) = self.dialog.take() {
                    self.actions
                        .push_back(CallAction::DialogRemoved(d.key().clone()));
                }
                match status {
                    401 | 407 => {
                        let retry = self
                            .outgoing
                            .as_mut()
                            .map(|o| o.digest.handle_challenge(response));
                        match retry {
                            Some(Ok(())) => self.send_invite(),
                            Some(Err(e)) => {
                                log::info!("sip: not answering INVITE challenge: {e}");
                                self.terminate(reason);
                                self.finish();
                            }
                            None => self.finish(),
                        }
                    }
                    // RFC 3261 section 21.4.26: the offer was not acceptable; try the second
                    // offer once, in a new INVITE transaction exactly like the 401/407 retry
                    // (same Call-ID and From tag, next CSeq, credentials of the realms
                    // already challenged).
                    488 if self.take_retry_offer() => {
                        self.report(CallEvent::OfferRetried { code: status });
                        self.send_invite();
                    }
                    // RFC 3263 section 4.3: a 503 before anything else moves on.
                    503 if !self.provisional_seen() => self.invite_failed(now, &reason),
                    _ => {
                        if let Some(o) = self.outgoing.as_mut() {
                            o.digest.handle_success();
                        }
                        self.terminate(reason);
                        self.finish();
                    }
                }
            }
            _ => {}
        }
    }

    /// An INVITE client transaction timed out (Timer B) or hit a transport error.
    pub fn handle_txn_failure(&mut self, now: Instant, txn: TxnId, timeout: bool) {
        let reason = if timeout {
            "408 Request Timeout"
        } else {
            "503 Service Unavailable"
        };
        match self.phase {
            Phase::Calling { txn: t, .. } | Phase::Proceeding { txn: t } if t == txn => {
                if self.provisional_seen() {
                    self.terminate(reason.to_owned());
                    self.finish();
                } else {
                    self.invite_failed(now, reason);
                }
            }
            Phase::Cancelling { txn: t, .. } if t == txn => self.finish(),
            Phase::Offered { txn: t } if t == txn => {
                self.terminate(reason.to_owned());
                self.finish();
            }
            _ => {}
        }
    }

    /// The client INVITE transaction still waiting for its final response and the flow it
    /// travels on, so the stack can fail it over when that connection closes.
    pub fn pending_invite(&self) -> Option<(TxnId, u64)> {
        let flow = self
            .outgoing
            .as_ref()
            .and_then(|o| o.invite.as_ref())
            .map(|s| s.target.flow)?;
        match self.phase {
            Phase::Calling { txn, .. } | Phase::Proceeding { txn } => Some((txn, flow)),
            _ => None,
        }
    }

    /// Makes the retry offer the call's offer, if there is one left; the request that got
    /// the 488 was authenticated, so the digest state is settled as after any final answer.
    fn take_retry_offer(&mut self) -> bool {
        let Some(out) = self.outgoing.as_mut() else {
            return false;
        };
        let Some(offer) = out.retry_offer.take() else {
            return false;
        };
        out.digest.handle_success();
        out.config.sdp = offer.clone();
        self.local_sdp = Some(offer);
        true
    }

    fn provisional_seen(&self) -> bool {
        self.outgoing.as_ref().is_some_and(|o| o.provisional_seen)
    }

    /// Tries the next target after a failure before any provisional (RFC 3263 section 4.3).
    fn invite_failed(&mut self, _now: Instant, reason: &str) {
        if matches!(
            self.phase,
            Phase::Calling {
                cancel_wanted: true,
                ..
            }
        ) {
            self.finish();
            return;
        }
        self.next_target(reason);
    }

    fn next_target(&mut self, reason_if_none: &str) {
        let next = self.outgoing.as_mut().and_then(|o| o.targets.next_target());
        match next {
            Some(target) => {
                if let Some(out) = self.outgoing.as_mut() {
                    out.current = Some(target);
                }
                self.send_invite();
            }
            None => {
                self.terminate(reason_if_none.to_owned());
                self.finish();
            }
        }
    }

    /// Sends the INVITE (again: new branch, next CSeq, credentials for challenged realms).
    fn send_invite(&mut self) {
        let Some(out) = self.outgoing.as_mut() else {
            return;
        };
        let Some(target) = out.current.clone() else {
            return;
        };
        out.cseq += 1;
        let uri = out.request_uri.to_string();
        let mut headers = vec![
            ("Max-Forwards".to_owned(), "70".to_owned()),
            ("From".to_owned(), out.from.to_string()),
            ("To".to_owned(), out.to.to_string()),
            ("Call-ID".to_owned(), out.config.call_id.clone()),
            ("CSeq".to_owned(), format!("{} INVITE", out.cseq)),
            ("User-Agent".to_owned(), out.config.user_agent.clone()),
            ("Allow".to_owned(), ALLOW.to_owned()),
        ];
        let body = out.config.sdp.as_bytes().to_vec();
        // The cnonce only has to be unique per use; Call-ID and CSeq make it so.
        let cnonce = format!("{}{}", out.config.from_tag, out.cseq);
        let digest_request = DigestRequest {
            method: "INVITE",
            uri: &uri,
            body: &body,
            cnonce: &cnonce,
        };
        if let Ok(auth) = out.digest.authorize(&digest_request) {
            for h in auth {
                headers.push((h.name.to_owned(), h.value));
            }
        }
        let request = OutgoingRequest {
            method: Method::Invite,
            uri: out.request_uri.clone(),
            headers,
            body: Some(("application/sdp".to_owned(), body)),
        };
        let contact_user = Some(out.config.contact_user.clone());
        // Until the stack reports the transaction, the call counts as calling without one.
        self.actions.push_back(CallAction::SendRequest {
            request,
            hop: Hop::Located(target),
            contact_user,
        });
    }

    fn send_cancel(&mut self, now: Instant, txn: TxnId) {
        let target = self
            .outgoing
            .as_ref()
            .and_then(|o| o.invite.as_ref())
            .map(|s| s.target);
        if let Some(target) = target {
            self.actions.push_back(CallAction::SendCancel {
                invite: txn,
                target,
            });
        }
        // RFC 3261 section 9.1: without a final response 64*T1 after the CANCEL, the INVITE
        // transaction is considered cancelled.
        self.phase = Phase::Cancelling {
            txn,
            give_up_at: now + self.timers.timeout(),
        };
    }

    // ---- incoming ------------------------------------------------------------------------

    /// Sends 180 Ringing on an unanswered incoming call.
    pub fn ring(&mut self) -> Result<(), CallError> {
        let Phase::Offered { txn } = self.phase else {
            return Err(CallError::InvalidState);
        };
        let response = self.response_to_invite(180, "Ringing", None)?;
        self.actions.push_back(CallAction::Respond {
            txn,
            response: Box::new(response),
        });
        Ok(())
    }

    /// Answers an incoming call with 200 and `sdp`; retransmitted until the ACK.
    pub fn answer(&mut self, now: Instant, sdp: String) -> Result<(), CallError> {
        let Phase::Offered { txn } = self.phase else {
            return Err(CallError::InvalidState);
        };
        let response = self.response_to_invite(200, "OK", Some(&sdp))?;
        self.local_sdp = Some(sdp);
        let cseq = self.invite.as_ref().map(|i| i.cseq().seq).unwrap_or(0);
        self.send_2xx(now, txn, cseq, response);
        self.phase = Phase::Answered;
        Ok(())
    }

    /// Rejects an unanswered incoming call with `code` (486 Busy Here by default in the
    /// stack).
    pub fn decline(&mut self, code: u16, reason_for_event: Option<&str>) -> Result<(), CallError> {
        let Phase::Offered { txn } = self.phase else {
            return Err(CallError::InvalidState);
        };
        let code = if (300..700).contains(&code) {
            code
        } else {
            486
        };
        let phrase = reason_phrase(code);
        let response = self.response_to_invite(code, phrase, None)?;
        self.actions.push_back(CallAction::Respond {
            txn,
            response: Box::new(response),
        });
        // The server transaction retransmits the final and absorbs the ACK by itself.
        self.terminate(
            reason_for_event
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{code} {phrase}")),
        );
        self.finish();
        Ok(())
    }

    /// The caller sent a CANCEL matching our INVITE server transaction (RFC 3261 section 9.2;
    /// the stack already answered the CANCEL 200).
    pub fn handle_cancel(&mut self) {
        if let Phase::Offered { txn } = self.phase {
            if let Ok(response) = self.response_to_invite(487, "Request Terminated", None) {
                self.actions.push_back(CallAction::Respond {
                    txn,
                    response: Box::new(response),
                });
            }
            self.terminate("487 Request Terminated".to_owned());
            self.finish();
        }
        // Once answered the CANCEL has no effect (section 9.2); the caller will BYE.
    }

    /// An ACK matched the call's dialog: the ACK for our 2xx (initial or re-INVITE).
    pub fn handle_ack(&mut self, request: &SipRequest) {
        let Some(pending) = self.pending_2xx.as_ref() else {
            return;
        };
        if request.cseq().seq != pending.cseq {
            return;
        }
        self.pending_2xx = None;
        let sdp_in_ack = sdp_of(request.content_type(), request.body());
        if self.phase == Phase::Answered {
            self.phase = Phase::Confirmed;
            if sdp_in_ack.is_some() {
                self.remote_sdp = sdp_in_ack.clone();
            }
            if self.bye_after_ack {
                self.send_bye();
                self.finish();
                return;
            }
            self.report(CallEvent::Confirmed { sdp_in_ack });
        }
    }

    // ---- in-dialog requests ----------------------------------------------------------------

    /// A request (not ACK) matched the call's dialog, in server transaction `txn`.
    pub fn handle_in_dialog_request(&mut self, now: Instant, txn: TxnId, request: &SipRequest) {
        let Some(dialog) = self.dialog.as_mut() else {
            return;
        };
        if dialog.accept_remote_cseq(request).is_err() {
            self.respond_plain(txn, request, 500, "Server Internal Error", &[]);
            return;
        }
        match request.method() {
            Method::Bye => {
                self.respond_plain(txn, request, 200, "OK", &[]);
                // RFC 3261 section 15.1.2: pending requests of the dialog get 487.
                if let Some(r) = self.reinvite.take() {
                    self.respond_plain(r.txn, &r.request, 487, "Request Terminated", &[]);
                }
                if let Phase::Offered { txn: invite_txn } = self.phase {
                    if let Ok(response) = self.response_to_invite(487, "Request Terminated", None) {
                        self.actions.push_back(CallAction::Respond {
                            txn: invite_txn,
                            response: Box::new(response),
                        });
                    }
                }
                self.terminate(REASON_REMOTE_BYE.to_owned());
                self.finish();
            }
            Method::Invite => self.handle_reinvite(now, txn, request),
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
            _ => self.respond_plain(txn, request, 501, "Not Implemented", &[("Allow", ALLOW)]),
        }
    }

    /// A re-INVITE (RFC 3261 section 14.2).
    fn handle_reinvite(&mut self, now: Instant, txn: TxnId, request: &SipRequest) {
        if self.reinvite.is_some() {
            // Section 14.2: a second INVITE before we answered the first gets 500 with a
            // Retry-After (0-10 s).
            self.respond_plain(
                txn,
                request,
                500,
                "Server Internal Error",
                &[("Retry-After", "3")],
            );
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

    /// The gateway's answer to a [`CallEvent::ReInvite`].
    pub fn answer_reinvite(&mut self, now: Instant, sdp: String) -> Result<(), CallError> {
        let pending = self.reinvite.take().ok_or(CallError::InvalidState)?;
        self.remote_sdp = Some(pending.offer);
        self.answer_reinvite_with(now, pending.txn, &pending.request, Some(sdp));
        Ok(())
    }

    /// Refuses the pending [`CallEvent::ReInvite`] with `code` (488 when the offer cannot be
    /// translated); the call goes on with the previous session (RFC 3261 section 14.2).
    pub fn reject_reinvite(&mut self, code: u16) -> Result<(), CallError> {
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

    // ---- hangup and timers -----------------------------------------------------------------

    /// Ends the call from our side, whatever its state: CANCEL (once a provisional arrived),
    /// decline, BYE. Reports `Terminated` with [`REASON_LOCAL_HANGUP`] at once.
    pub fn hangup(&mut self, now: Instant) {
        match self.phase {
            Phase::Locating => {
                self.terminate(REASON_LOCAL_HANGUP.to_owned());
                self.finish();
            }
            Phase::Calling { txn, .. } => {
                self.terminate(REASON_LOCAL_HANGUP.to_owned());
                self.phase = Phase::Calling {
                    txn,
                    cancel_wanted: true,
                };
            }
            Phase::Proceeding { txn } => {
                self.terminate(REASON_LOCAL_HANGUP.to_owned());
                self.send_cancel(now, txn);
            }
            Phase::Offered { .. } => {
                let _ = self.decline(486, Some(REASON_LOCAL_HANGUP));
            }
            Phase::Answered => {
                // RFC 3261 section 15: no BYE before the ACK (or its timeout).
                self.terminate(REASON_LOCAL_HANGUP.to_owned());
                self.bye_after_ack = true;
            }
            Phase::Confirmed => {
                self.terminate(REASON_LOCAL_HANGUP.to_owned());
                if let Some(r) = self.reinvite.take() {
                    self.respond_plain(r.txn, &r.request, 487, "Request Terminated", &[]);
                }
                self.send_bye();
                self.finish();
            }
            Phase::Cancelling { .. } | Phase::Done => {}
        }
    }

    /// Runs due timers; early calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Phase::Cancelling { txn, give_up_at } = self.phase {
            if now >= give_up_at {
                self.actions.push_back(CallAction::Abandon { txn });
                self.finish();
                return;
            }
        }
        if let Some(p) = self.pending_2xx.as_mut() {
            if now >= p.give_up_at {
                // RFC 3261 section 13.3.1.4: no ACK after 64*T1: end the session with BYE.
                self.pending_2xx = None;
                self.terminate("408 Request Timeout".to_owned());
                self.send_bye();
                self.finish();
                return;
            }
            if now >= p.next_at {
                p.interval = (p.interval * 2).min(self.timers.t2);
                p.next_at = now + p.interval;
                let (txn, response) = (p.txn, p.response.clone());
                self.actions.push_back(CallAction::Respond {
                    txn,
                    response: Box::new(response),
                });
            }
        }
        if self.reinvite.as_ref().is_some_and(|r| now >= r.answer_by) {
            // The gateway did not answer in time: keep the call up with the current media.
            self.answer_reinvite_with_current_media(now);
        }
    }

    /// Answers the pending re-INVITE with our last SDP, directions mirrored per RFC 3264
    /// section 6.1 (a hold offer gets a recvonly answer), so the media keeps flowing as it
    /// is. Does nothing without a pending re-INVITE.
    pub fn answer_reinvite_with_current_media(&mut self, now: Instant) {
        if let Some(r) = self.reinvite.take() {
            let sdp = self
                .local_sdp
                .as_deref()
                .map(|local| mirror_direction(local, &r.offer));
            self.remote_sdp = Some(r.offer.clone());
            self.answer_reinvite_with(now, r.txn, &r.request, sdp);
        }
    }

    // ---- helpers ---------------------------------------------------------------------------

    fn send_2xx(&mut self, now: Instant, txn: TxnId, cseq: u32, response: SipResponse) {
        self.actions.push_back(CallAction::Respond {
            txn,
            response: Box::new(response.clone()),
        });
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

    fn send_bye(&mut self) {
        let Some(dialog) = self.dialog.as_mut() else {
            return;
        };
        let bye = dialog.request(Method::Bye);
        if let Some(hop) = self.in_dialog_hop() {
            self.send_request_to(bye, hop);
        }
    }

    fn send_request_to(&mut self, request: OutgoingRequest, hop: Hop) {
        self.actions.push_back(CallAction::SendRequest {
            request,
            hop,
            contact_user: None,
        });
    }

    fn in_dialog_hop(&self) -> Option<Hop> {
        self.dialog.as_ref().and_then(|d| self.hop_for(d))
    }

    /// Where in-dialog requests go. The next hop URI (first Route or remote target) when it
    /// is a literal address reachable over UDP; otherwise (domain names, stream flows that
    /// must be reused through NATs, or an outbound proxy) the flow of the INVITE.
    fn hop_for(&self, dialog: &Dialog) -> Option<Hop> {
        let fallback = self.hop.clone();
        let udp = matches!(
            fallback,
            Some(Hop::Flow {
                kind: Transport::Udp,
                ..
            }) | None
        );
        if !self.route_by_dialog || !udp {
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

    fn response_to_invite(
        &self,
        status: u16,
        reason: &str,
        sdp: Option<&str>,
    ) -> Result<SipResponse, CallError> {
        let invite = self.invite.as_ref().ok_or(CallError::InvalidState)?;
        Ok(self.response_with_contact(invite, status, reason, sdp)?)
    }

    /// A response carrying our tag; dialog-establishing ones (101-299) also carry Contact
    /// and the Record-Route of the request (RFC 3261 section 12.1.1).
    fn response_with_contact(
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
            Ok(response) => self.actions.push_back(CallAction::Respond {
                txn,
                response: Box::new(response),
            }),
            Err(e) => log::warn!("sip: cannot build a {status}: {e}"),
        }
    }

    fn respond_plain(
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
            Ok(response) => self.actions.push_back(CallAction::Respond {
                txn,
                response: Box::new(response),
            }),
            Err(e) => log::warn!("sip: cannot build a {status}: {e}"),
        }
    }

    fn report(&mut self, event: CallEvent) {
        if !self.ended {
            self.actions.push_back(CallAction::Report(event));
        }
    }

    fn terminate(&mut self, reason: String) {
        if !self.ended {
            self.actions
                .push_back(CallAction::Report(CallEvent::Terminated { reason }));
            self.ended = true;
        }
    }

    fn finish(&mut self) {
        if self.phase == Phase::Done {
            return;
        }
        self.phase = Phase::Done;
        self.pending_2xx = None;
        self.reinvite = None;
        if let Some(d) = self.dialog.take() {
            self.actions
                .push_back(CallAction::DialogRemoved(d.key().clone()));
        }
        self.actions.push_back(CallAction::Finished);
    }
}

/// The body as SDP text, if there is a non-empty `application/sdp` (or untyped) body.
fn sdp_of(content_type: Option<&str>, body: &[u8]) -> Option<String> {
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

fn transport_of(token: &str) -> Transport {
    if token.eq_ignore_ascii_case("tls") {
        Transport::Tls
    } else if token.eq_ignore_ascii_case("tcp") {
        Transport::Tcp
    } else {
        Transport::Udp
    }
}

/// RFC 3261 section 21 phrases for the codes a call may send.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        180 => "Ringing",
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Declined",
    }
}

/// Our last SDP answered to `offer` with the media direction mirrored (RFC 3264 section
/// 6.1: sendonly -> recvonly, recvonly -> sendonly, inactive -> inactive, else sendrecv),
/// and the `o=` version incremented because the session changed (section 8).
///
/// The direction is taken from the offer's first direction attribute (session or media
/// level) and applied to every media section of ours: enough for the single audio/video
/// sessions a hold or unhold re-INVITE concerns. This is only the fallback when the
/// gateway does not answer a re-INVITE itself.
pub fn mirror_direction(local: &str, offer: &str) -> String {
    const DIRECTIONS: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];
    let offered = offer
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a="))
        .find(|a| DIRECTIONS.contains(a))
        .unwrap_or("sendrecv");
    let mirrored = match offered {
        "sendonly" => "recvonly",
        "recvonly" => "sendonly",
        "inactive" => "inactive",
        _ => "sendrecv",
    };
    let mut out: Vec<String> = Vec::new();
    let mut in_media = false;
    for line in local.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(attr) = line.strip_prefix("a=") {
            if DIRECTIONS.contains(&attr) {
                continue;
            }
        }
        if line.starts_with("m=") {
            if in_media {
                out.push(format!("a={mirrored}"));
            }
            in_media = true;
        }
        if let Some(origin) = line.strip_prefix("o=") {
            let mut fields: Vec<String> = origin.split(' ').map(str::to_owned).collect();
            if let Some(version) = fields.get_mut(2) {
                if let Ok(v) = version.parse::<u64>() {
                    *version = v.wrapping_add(1).to_string();
                }
            }
            out.push(format!("o={}", fields.join(" ")));
            continue;
        }
        out.push(line.to_owned());
    }
    if in_media {
        out.push(format!("a={mirrored}"));
    }
    let mut text = out.join("\r\n");
    text.push_str("\r\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_direction_answers_hold_with_recvonly_and_bumps_version() {
        let local = "v=0\r\no=- 1 5 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\nm=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
        let hold = "v=0\r\no=x 9 9 IN IP4 5.6.7.8\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=sendonly\r\n";
        let answer = mirror_direction(local, hold);
        assert!(answer.contains("o=- 1 6 IN IP4 1.2.3.4\r\n"), "{answer}");
        assert_eq!(answer.matches("a=recvonly").count(), 2, "{answer}");
        assert!(!answer.contains("sendrecv"));
        let unhold = "v=0\r\nm=audio 5000 RTP/AVP 0\r\n";
        assert_eq!(
            mirror_direction(local, unhold)
                .matches("a=sendrecv")
                .count(),
            2
        );
        assert!(mirror_direction(local, "a=inactive\r\n").contains("a=inactive"));
    }

    #[test]
    fn sdp_of_ignores_other_bodies() {
        assert_eq!(sdp_of(Some("application/sdp"), b"v=0"), Some("v=0".into()));
        assert_eq!(sdp_of(Some("text/plain"), b"v=0"), None);
        assert_eq!(sdp_of(Some("application/sdp"), b""), None);
    }

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
        };
        let ha1 = Ha1::from_hex("0123456789abcdef0123456789abcdef").unwrap();
        assert!(matches!(
            Call::outgoing(config, ha1, TxnConfig::default(), true),
            Err(CallError::InvalidCallee(_))
        ));
    }
}
