//! One call leg (an INVITE dialog usage, RFC 3261 sections 13-15) as a sans-IO state
//! machine: [`OutgoingCall`] (we send the INVITE) or [`IncomingCall`] (we answer it), both
//! built on the dialog usage they share (`usage.rs`), with [`CallEnd`] in `end.rs`.
//!
//! Like [`Registration`](super::registration::Registration) a call decides *what* to do and
//! asks the stack through [`CallAction`]s; the stack picks transports and Vias, runs the
//! transactions and feeds results back. SDP bodies are opaque strings the media layer
//! translates: a call never reads or writes SDP text.
//!
//! # How calls end
//!
//! Exactly one [`CallEvent::Terminated`] is reported per call, carrying a [`CallEnd`]; after
//! it the call reports nothing more (it may live on briefly to finish a CANCEL or wait for
//! an ACK). [`CallEndCause`] lists the causes; `CallEnd`'s `Display` renders the sylkRTC
//! `"<code> <phrase>"` text: the final response that ended the call (`"486 Busy Here"`),
//! `"408 Request Timeout"` for Timer B or a missing ACK, `"503 Service Unavailable"` when no
//! target could be reached (DNS failure, transport errors, nothing sent), `"487 Request
//! Terminated"` when the caller cancelled an incoming call, `"200 BYE received"` and
//! `"200 Local hangup"`.

mod early;
mod end;
mod incoming;
mod local_offer;
mod outgoing;
mod reliable;
pub(crate) mod remote_offer;
mod route;
mod session_timer;
mod usage;

use std::time::{Duration, Instant};

use engine::Rng;

pub use end::{reason_phrase, CallEnd, CallEndCause};
pub use incoming::IncomingCall;
pub use outgoing::OutgoingCall;
pub(crate) use reliable::rack;
pub(crate) use session_timer::{session_expires, Refresher};

use super::auth::DigestClient;
use super::dialog::{Dialog, DialogKey, OutgoingRequest};
use super::locate::{LocateError, SipUriParts, Target, TargetList};
use super::msg::{Headers, MsgError, NameAddr, SipRequest, SipResponse};
use super::registration::RegId;
use super::stack::SendError;
use super::transport::{FlowId, Transport};
use super::txn::{self, TxnId};

/// Methods a call answers inside its dialog, for `Allow` (RFC 3261 section 20.5).
pub const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, INFO, UPDATE, REFER, NOTIFY, MESSAGE";
/// Option tags we support, for `Supported` (RFC 3261 section 20.37): reliable provisional
/// responses (RFC 3262), session timers (RFC 4028), Replaces (RFC 3891).
pub const SUPPORTED: &str = "100rel, timer, replaces";
/// How long the gateway may take to answer a re-INVITE offer (the browser's answer to
/// `update` `received` included) before [`CallEvent::ReOfferUnanswered`]; the peer's
/// transaction waits on our 100 Trying meanwhile (RFC 3261 section 14.2 lets the UAS take
/// its time; Timer B stops at a provisional).
pub const REINVITE_ANSWER_WAIT: Duration = Duration::from_secs(10);

/// What happens to a call, for the gateway; the stack reports it with the call's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// An INVITE for a registration's Contact; 100 Trying is sent. Follow with
    /// [`SipStack::ring`](super::stack::SipStack::ring), then
    /// [`answer`](super::stack::SipStack::answer) or
    /// [`decline`](super::stack::SipStack::decline).
    Incoming {
        /// The registration whose Contact was called.
        reg: RegId,
        /// The caller's URI (From).
        from_uri: String,
        /// The caller's display name.
        from_display_name: Option<String>,
        /// The SIP Call-ID.
        call_id: String,
        /// The offer; `None` means offer in our 200, answer in the ACK.
        sdp: Option<String>,
        /// The INVITE's header fields (the gateway reports some to the browser).
        headers: Headers,
        /// The established call this INVITE replaces (RFC 3891 `Replaces` matching one of
        /// our confirmed dialogs; one that matches none was answered 481).
        replaces: Option<crate::stack::CallId>,
    },
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
        /// The 2xx's header fields.
        headers: Headers,
    },
    /// Incoming: the ACK for our 200 arrived.
    Confirmed {
        /// The SDP answer carried by the ACK (INVITE without offer, RFC 3264 section 4).
        sdp_in_ack: Option<String>,
    },
    /// A re-INVITE with a new offer: answer with
    /// [`SipStack::answer_reinvite`](super::stack::SipStack::answer_reinvite) (or refuse it)
    /// within [`REINVITE_ANSWER_WAIT`], or the call refuses it for now (500 with
    /// Retry-After) and keeps its session.
    ReOffer {
        /// The new offer.
        sdp: String,
    },
    /// The [`CallEvent::ReOffer`] was not answered within [`REINVITE_ANSWER_WAIT`]: the
    /// gateway may answer it on its own now; a second later it is refused (500 with
    /// Retry-After, RFC 3261 section 14.2) and the session stays as it was.
    ReOfferUnanswered,
    /// Our re-INVITE ([`SipStack::reinvite`](super::stack::SipStack::reinvite)) was
    /// accepted and ACKed.
    ReOfferAnswered {
        /// The answer (`None`: the 2xx had no body, the session is unchanged).
        sdp: Option<String>,
    },
    /// Our re-INVITE was refused with `code` (after one more try following a 491, RFC 3261
    /// section 14.1, and digest answers): the session stays as it was. After 408 and 481
    /// the dialog is over and [`CallEvent::Terminated`] follows.
    ReOfferFailed {
        /// The final status (408 for no answer, 503 when it could not be sent).
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// The call is over (see the module docs); its id is dead afterwards.
    Terminated(CallEnd),
}

/// What a request of a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendPurpose {
    /// The INVITE that sets the call up: its responses come back to the call.
    Invite,
    /// Our re-INVITE inside the dialog: its responses come back to the call.
    ReInvite,
    /// Fire and forget (BYE once the call is over, PRACK): responses are not needed.
    Detached,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    /// A located server: the stack finds or opens the flow.
    Located(Target),
    /// An existing flow (the one the INVITE used or came from).
    Flow {
        /// The transaction destination.
        target: txn::Destination,
        /// Its transport.
        kind: Transport,
    },
}

/// What a call asks its stack to do.
#[derive(Debug, Clone)]
pub enum CallAction {
    /// Locate the callee's domain (RFC 3263); answer with
    /// [`OutgoingCall::handle_located`].
    Locate(SipUriParts),
    /// Add a Via with a fresh branch (and our Contact when `contact_user` is set), send in a
    /// new client transaction, and report with [`OutgoingCall::handle_request_sent`].
    SendRequest {
        /// The request without Via.
        request: OutgoingRequest,
        /// Where to.
        hop: Hop,
        /// Contact user part to advertise (INVITE only).
        contact_user: Option<String>,
        /// What the request is for, which says whether its responses come back to the call.
        purpose: SendPurpose,
    },
    /// A request that outlives the call (its BYE): the stack sends it as one of its own
    /// client requests, answering 401/407 with `digest`, and reports nothing.
    SendDetached {
        /// The request without Via.
        request: OutgoingRequest,
        /// Where to.
        hop: Hop,
        /// The account's digest client.
        digest: Option<DigestClient>,
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
        /// Its destination.
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
    /// A request inside the dialog that the call does not answer itself (MESSAGE, REFER,
    /// NOTIFY, ...): the stack hands it to the gateway (or answers 501).
    IncomingRequest {
        /// Its server transaction.
        txn: TxnId,
        /// The request.
        request: Box<SipRequest>,
    },
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
    /// The operation does not fit the call's state or direction (e.g. `answer` on an
    /// outgoing call, `answer_reinvite` without a pending re-INVITE).
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
    /// The session interval to ask for (RFC 4028 `Session-Expires`); 0 asks for none.
    pub session_expires: u32,
    /// Header fields the gateway adds to the INVITE, after ours.
    pub headers: Vec<(String, String)>,
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

/// How a transaction of a call failed (RFC 3261 section 8.1.3.1 treats both like a
/// response: 408 and 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnFailure {
    /// Timer B (client INVITE) or H (server INVITE) fired.
    Timeout,
    /// The transport could not carry a message of the transaction.
    TransportError,
}

impl TxnFailure {
    fn end(self) -> CallEnd {
        CallEnd::new(match self {
            TxnFailure::Timeout => CallEndCause::Timeout,
            TxnFailure::TransportError => CallEndCause::TransportError,
        })
    }
}

/// One call leg, either direction. Boxed: a call is kilobytes (requests kept for
/// retransmission and CANCEL), and the stack's slab of calls keeps spare capacity.
#[derive(Debug)]
pub enum Call {
    /// We sent the INVITE.
    Outgoing(Box<OutgoingCall>),
    /// We answer the INVITE.
    Incoming(Box<IncomingCall>),
}

/// Runs `$body` on the shared dialog usage of either direction.
macro_rules! on_usage {
    ($call:expr, $usage:ident => $body:expr) => {
        match $call {
            Call::Outgoing(c) => {
                let $usage = &mut c.usage;
                $body
            }
            Call::Incoming(c) => {
                let $usage = &mut c.usage;
                $body
            }
        }
    };
}

impl Call {
    /// An outgoing call.
    pub fn outgoing(call: OutgoingCall) -> Call {
        Call::Outgoing(Box::new(call))
    }

    /// An incoming call.
    pub fn incoming(call: IncomingCall) -> Call {
        Call::Incoming(Box::new(call))
    }

    /// A lookup the call asked for ([`CallAction::Locate`]) answered: the callee's domain
    /// while an outgoing call locates it, else the next hop of the dialog.
    pub fn handle_located(&mut self, result: Result<TargetList, LocateError>) {
        match self {
            Call::Outgoing(c) if c.is_locating() => c.handle_located(result),
            call => on_usage!(call, u => u.handle_next_hop_located(result)),
        }
    }

    /// The incoming call, or [`CallError::InvalidState`] for an outgoing one.
    pub fn incoming_mut(&mut self) -> Result<&mut IncomingCall, CallError> {
        match self {
            Call::Incoming(c) => Ok(c),
            Call::Outgoing(_) => Err(CallError::InvalidState),
        }
    }

    /// The outgoing call, if this is one.
    pub fn outgoing_mut(&mut self) -> Option<&mut OutgoingCall> {
        match self {
            Call::Outgoing(c) => Some(c),
            Call::Incoming(_) => None,
        }
    }

    /// The dialog, once there is one.
    pub fn dialog(&self) -> Option<&Dialog> {
        match self {
            Call::Outgoing(c) => c.usage.dialog.as_ref(),
            Call::Incoming(c) => c.usage.dialog.as_ref(),
        }
    }

    /// The keys of every dialog of the call: the usage's and early dialogs of other forks.
    pub fn dialog_keys(&self) -> Vec<DialogKey> {
        let mut keys: Vec<DialogKey> = self.dialog().map(|d| d.key().clone()).into_iter().collect();
        if let Call::Outgoing(c) = self {
            keys.extend(c.forks.iter().map(|f| f.dialog.key().clone()));
        }
        keys
    }

    /// Our last SDP in the dialog: the offer of an outgoing call (the retry offer once it
    /// went out), the answer of an incoming one, then our last re-INVITE answer.
    pub fn local_sdp(&self) -> Option<&str> {
        match self {
            Call::Outgoing(c) => c.usage.local_sdp.as_deref(),
            Call::Incoming(c) => c.usage.local_sdp.as_deref(),
        }
    }

    /// The client INVITE transaction still waiting for its final response and its flow.
    pub fn pending_invite(&self) -> Option<(TxnId, FlowId)> {
        match self {
            Call::Outgoing(c) => c.pending_invite(),
            Call::Incoming(_) => None,
        }
    }

    /// The next thing for the stack to do.
    pub fn poll_action(&mut self) -> Option<CallAction> {
        on_usage!(self, u => u.poll_action())
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Call::Outgoing(c) => c.poll_timeout(),
            Call::Incoming(c) => c.poll_timeout(),
        }
    }

    /// Runs due timers (`rng` draws a Retry-After); early calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut Rng) {
        match self {
            Call::Outgoing(c) => c.handle_timeout(now, rng),
            Call::Incoming(c) => c.handle_timeout(now, rng),
        }
    }

    /// A request (not ACK) matched the call's dialog, in server transaction `txn`.
    pub fn handle_in_dialog_request(
        &mut self,
        now: Instant,
        txn: TxnId,
        request: &SipRequest,
        rng: &mut Rng,
    ) {
        match self {
            Call::Outgoing(c) => c.handle_in_dialog_request(now, txn, request, rng),
            Call::Incoming(c) => c.handle_in_dialog_request(now, txn, request, rng),
        }
    }

    /// An ACK matched the call's dialog.
    pub fn handle_ack(&mut self, request: &SipRequest) {
        match self {
            // Outgoing calls only see ACKs for their re-INVITE answers.
            Call::Outgoing(c) => {
                c.usage.handle_ack(request);
            }
            Call::Incoming(c) => c.handle_ack(request),
        }
    }

    /// An INVITE transaction of the call failed.
    pub fn handle_txn_failure(&mut self, txn: TxnId, failure: TxnFailure) {
        if on_usage!(self, u => u.handle_reinvite_failure(txn)) {
            return;
        }
        match self {
            Call::Outgoing(c) => c.handle_txn_failure(txn, failure),
            Call::Incoming(c) => c.handle_txn_failure(txn, failure),
        }
    }

    /// The stack sent (or could not send) a [`CallAction::SendRequest`] of `purpose`.
    pub fn handle_request_sent(&mut self, purpose: SendPurpose, result: Result<Sent, SendError>) {
        match (purpose, self) {
            (SendPurpose::Invite, Call::Outgoing(c)) => c.handle_request_sent(result),
            (SendPurpose::ReInvite, call) => on_usage!(call, u => u.handle_reinvite_sent(result)),
            _ => {}
        }
    }

    /// A response on one of the call's client transactions (its INVITE, or our re-INVITE);
    /// `rng` draws the back-off after a 491 (RFC 3261 section 14.1).
    pub fn handle_response(
        &mut self,
        now: Instant,
        txn: TxnId,
        response: &SipResponse,
        rng: &mut Rng,
    ) {
        if on_usage!(self, u => u.handle_reinvite_response(now, txn, response, rng)) {
            return;
        }
        if let Call::Outgoing(c) = self {
            c.handle_response(now, txn, response);
        }
    }

    /// Sends a re-INVITE offering `sdp` with `headers` (RFC 3261 section 14.1);
    /// [`CallEvent::ReOfferAnswered`] or [`CallEvent::ReOfferFailed`] follows.
    pub fn reinvite(
        &mut self,
        sdp: String,
        headers: Vec<(String, String)>,
    ) -> Result<(), CallError> {
        on_usage!(self, u => u.start_reinvite(sdp, headers, local_offer::ReInvitePurpose::Offer))
    }

    /// Ends the call from our side, whatever its state (CANCEL, 486, or BYE).
    pub fn hangup(&mut self, now: Instant) {
        match self {
            Call::Outgoing(c) => c.hangup(now),
            Call::Incoming(c) => c.hangup(),
        }
    }

    /// The gateway's answer to a [`CallEvent::ReOffer`], with `headers` after ours.
    pub fn answer_reinvite(
        &mut self,
        now: Instant,
        sdp: String,
        headers: Vec<(String, String)>,
    ) -> Result<(), CallError> {
        on_usage!(self, u => u.answer_reinvite(now, sdp, headers))
    }

    /// Refuses the pending [`CallEvent::ReOffer`] with `code` (4xx-6xx, else 488).
    pub fn reject_reinvite(&mut self, code: u16) -> Result<(), CallError> {
        on_usage!(self, u => u.reject_reinvite(code))
    }

    /// The account's digest client for requests inside the dialog.
    pub fn digest(&self) -> Option<DigestClient> {
        match self {
            Call::Outgoing(c) => c.usage.digest.clone(),
            Call::Incoming(c) => c.usage.digest.clone(),
        }
    }

    /// The dialog's next local CSeq number (RFC 3261 section 12.2.1.1), for a request of
    /// the stack inside it; `None` without a dialog.
    pub fn next_local_cseq(&mut self) -> Option<u32> {
        on_usage!(self, u => u.dialog.as_mut().map(|d| d.next_cseq()))
    }

    /// A new request of `method` inside the confirmed dialog and its hop, for
    /// [`SipStack::send_in_dialog`](super::stack::SipStack::send_in_dialog).
    pub fn dialog_request(&mut self, method: super::msg::Method) -> Option<(OutgoingRequest, Hop)> {
        on_usage!(self, u => u.dialog_request(method))
    }
}
