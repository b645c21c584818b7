//! The gateway's counters for the metrics endpoint: calls started, answered and ended (by
//! direction and [`CallEnd`] cause), refused requests (by [`GatewayError`] kind) and the
//! call setup latency histograms. Updated where the event happens, read at scrape time by
//! [`crate::metrics`]; nothing here is on the media path.

use std::collections::BTreeMap;
use std::time::Duration;

use engine::histogram::{Histogram, SLOW_BOUNDS_US};
use sip::call::CallEndCause;

use super::calls::CallDirection;
use super::{CallEnd, GatewayError};

impl CallDirection {
    /// `outgoing` (the browser called) or `incoming`, for labels.
    pub fn as_str(self) -> &'static str {
        match self {
            CallDirection::Outgoing => "outgoing",
            CallDirection::Incoming => "incoming",
        }
    }

    fn index(self) -> usize {
        match self {
            CallDirection::Outgoing => 0,
            CallDirection::Incoming => 1,
        }
    }

    /// Both, in label order.
    pub const ALL: [CallDirection; 2] = [CallDirection::Outgoing, CallDirection::Incoming];
}

impl CallEnd {
    /// A stable snake_case name of why the call ended (a metric label; the sylkRTC reason
    /// is [`Display`](std::fmt::Display)).
    pub fn cause_label(&self) -> &'static str {
        match self {
            CallEnd::Sip(end) => match &end.cause {
                CallEndCause::Rejected { .. } => "rejected",
                CallEndCause::OfferRetryExhausted { .. } => "offer_refused",
                CallEndCause::Unauthorized { .. } => "unauthorized",
                CallEndCause::Dns(_) => "dns",
                CallEndCause::NoTarget => "no_target",
                CallEndCause::NotSent(_) => "not_sent",
                CallEndCause::TransportError => "transport_error",
                CallEndCause::Timeout => "timeout",
                CallEndCause::AckTimeout => "ack_timeout",
                CallEndCause::UnusableAnswer(_) => "unusable_answer",
                CallEndCause::RemoteBye => "remote_bye",
                CallEndCause::LocalHangup => "local_hangup",
                CallEndCause::Declined => "declined",
                CallEndCause::Cancelled => "cancelled",
                CallEndCause::SessionExpired => "session_expired",
                _ => "sip_other",
            },
            CallEnd::LocalHangup => "local_hangup",
            CallEnd::IceFailure => "ice_failure",
            CallEnd::DtlsFailure => "dtls_failure",
            CallEnd::MediaTimeout(_) => "media_timeout",
            CallEnd::AnswerUnusable(_) => "answer_unusable",
            CallEnd::SrtpRetryFailed => "srtp_retry_failed",
            CallEnd::MediaPortsUnavailable => "media_ports_unavailable",
            CallEnd::WebSocketClosed => "websocket_closed",
            CallEnd::Shutdown => "shutdown",
            CallEnd::Chat(_) => "chat_failure",
            CallEnd::ChatRefused => "chat_refused",
            CallEnd::Transferred => "transferred",
        }
    }
}

impl GatewayError {
    /// A stable snake_case name of the refusal (a metric label).
    pub fn kind_label(&self) -> &'static str {
        match self {
            GatewayError::Request(_) => "bad_request",
            GatewayError::Internal => "internal",
            GatewayError::AccountExists(_) => "account_exists",
            GatewayError::DomainNotAllowed(_) => "domain_not_allowed",
            GatewayError::TooManyAccounts(_) => "too_many_accounts",
            GatewayError::UnknownAccount(_) => "unknown_account",
            GatewayError::SessionInUse(_) => "session_in_use",
            GatewayError::TooManySessions(_) => "too_many_sessions",
            GatewayError::GatewayFull => "gateway_full",
            GatewayError::NoMediaPorts => "no_media_ports",
            GatewayError::Sdp(_) => "sdp",
            GatewayError::CannotCall { .. } => "cannot_call",
            GatewayError::CannotAnswerOutgoing(_) => "cannot_answer_outgoing",
            GatewayError::AnswerState { .. } => "answer_state",
            GatewayError::CannotAnswer { .. } => "cannot_answer",
            GatewayError::InvalidCandidate(_) => "invalid_candidate",
            GatewayError::SessionTerminated(_) => "session_terminated",
            GatewayError::UnknownSession(_) => "unknown_session",
            GatewayError::NotSupportedYet(_) => "not_supported_yet",
            GatewayError::Draining => "draining",
            GatewayError::NotAuthenticated => "not_authenticated",
            GatewayError::MessageTooLarge(_) => "message_too_large",
            GatewayError::TooManyMessages => "too_many_messages",
            GatewayError::Store(_) => "store",
            GatewayError::CannotSendMessage(_) => "cannot_send_message",
            GatewayError::SessionMessageState { .. } => "session_message_state",
            GatewayError::UnknownMessage(_) => "unknown_message",
            GatewayError::UnknownContact(_) => "unknown_contact",
            GatewayError::ChatUnavailable(_) => "chat_unavailable",
            GatewayError::ChatSend(_) => "chat_send",
            GatewayError::ChatOnlySession { .. } => "chat_only_session",
            GatewayError::HeaderNotAllowed(_) => "header_not_allowed",
            GatewayError::InvalidHeader(_) => "invalid_header",
            GatewayError::TooManyHeaders(_) => "too_many_headers",
            GatewayError::CallState { .. } => "call_state",
            GatewayError::UpdatePending(_) => "update_pending",
            GatewayError::UpdateSdp(_) => "update_sdp",
            GatewayError::CannotSend { .. } => "cannot_send",
            GatewayError::DtmfQueueFull(_) => "dtmf_queue_full",
            GatewayError::TransferPending(_) => "transfer_pending",
            GatewayError::TransferToItself(_) => "transfer_to_itself",
            GatewayError::NoTransferRequest(_) => "no_transfer_request",
            GatewayError::AddressbookUnavailable(_) => "addressbook_unavailable",
            GatewayError::AddressbookBusy => "addressbook_busy",
        }
    }
}

/// Counters of the gateway's calls and requests.
#[derive(Debug, Clone)]
pub struct GatewayStats {
    started: [u64; 2],
    answered: [u64; 2],
    /// `(direction, cause, answered)` -> calls ended. Bounded by the label sets; a key is
    /// allocated once, the first time it occurs.
    ended: BTreeMap<(&'static str, &'static str, bool), u64>,
    /// Refused requests by kind.
    refused: BTreeMap<&'static str, u64>,
    /// Call start (session-create, INVITE arrival) to media up (DTLS connected).
    setup: [Histogram; 2],
    /// Outgoing: session-create to the first provisional response (post-dial delay).
    post_dial: Histogram,
    /// Answer (2xx received, session-answer) to media up: the gateway's ICE and DTLS.
    media_setup: [Histogram; 2],
}

impl Default for GatewayStats {
    fn default() -> Self {
        let slow = || Histogram::new(SLOW_BOUNDS_US);
        GatewayStats {
            started: [0; 2],
            answered: [0; 2],
            ended: BTreeMap::new(),
            refused: BTreeMap::new(),
            setup: [slow(), slow()],
            post_dial: slow(),
            media_setup: [slow(), slow()],
        }
    }
}

impl GatewayStats {
    pub(super) fn call_started(&mut self, direction: CallDirection) {
        self.started[direction.index()] += 1;
    }

    pub(super) fn call_answered(&mut self, direction: CallDirection) {
        self.answered[direction.index()] += 1;
    }

    pub(super) fn call_ended(&mut self, direction: CallDirection, end: &CallEnd, answered: bool) {
        *self
            .ended
            .entry((direction.as_str(), end.cause_label(), answered))
            .or_default() += 1;
    }

    pub(super) fn refused(&mut self, error: &GatewayError) {
        *self.refused.entry(error.kind_label()).or_default() += 1;
    }

    pub(super) fn established(
        &mut self,
        direction: CallDirection,
        since_start: Duration,
        since_answer: Option<Duration>,
    ) {
        self.setup[direction.index()].observe(since_start);
        if let Some(d) = since_answer {
            self.media_setup[direction.index()].observe(d);
        }
    }

    pub(super) fn first_provisional(&mut self, since_start: Duration) {
        self.post_dial.observe(since_start);
    }

    /// Calls started in `direction`.
    pub fn started(&self, direction: CallDirection) -> u64 {
        self.started[direction.index()]
    }

    /// Calls answered in `direction`.
    pub fn answered(&self, direction: CallDirection) -> u64 {
        self.answered[direction.index()]
    }

    /// `(direction, cause, answered, count)` of ended calls.
    pub fn ended(&self) -> impl Iterator<Item = (&'static str, &'static str, bool, u64)> + '_ {
        self.ended.iter().map(|(&(d, c, a), &n)| (d, c, a, n))
    }

    /// `(kind, count)` of refused requests.
    pub fn refusals(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.refused.iter().map(|(&k, &n)| (k, n))
    }

    /// Start-to-media-up latency of `direction`.
    pub fn setup_latency(&self, direction: CallDirection) -> &Histogram {
        &self.setup[direction.index()]
    }

    /// Answer-to-media-up latency of `direction`.
    pub fn media_setup_latency(&self, direction: CallDirection) -> &Histogram {
        &self.media_setup[direction.index()]
    }

    /// Post-dial delay of outgoing calls.
    pub fn post_dial_delay(&self) -> &Histogram {
        &self.post_dial
    }
}
