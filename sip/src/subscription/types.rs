//! The vocabulary of subscriptions: ids, what to subscribe to, the `Subscription-State`
//! header (RFC 6665 section 8.2.3), why a subscription ends, and what the gateway hears.

use std::fmt;
use std::time::Duration;

use crate::msg::SipRequest;
use crate::request::{ClientRequest, RequestError, RequestOutcome};
use crate::stack::IncomingRequestId;
use crate::txn::TxnId;

/// Identifies a subscription for its lifetime; never confused with a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubId {
    pub(crate) key: usize,
    pub(crate) serial: u64,
}

/// The event package subscribed to (RFC 6665 section 7.2) and the bodies accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventPackage {
    /// `presence` of one resource (RFC 3856): PIDF.
    Presence,
    /// `presence` of a resource list (RFC 4662): `Supported: eventlist`, RLMI in
    /// `multipart/related` with PIDF parts, or plain PIDF from a server without RLS.
    PresenceList,
}

impl EventPackage {
    /// The `Event` header value.
    pub fn event(self) -> &'static str {
        "presence"
    }

    pub(crate) fn accept(self) -> &'static str {
        match self {
            EventPackage::Presence => "application/pidf+xml",
            EventPackage::PresenceList => {
                "multipart/related, application/rlmi+xml, application/pidf+xml"
            }
        }
    }
}

/// What to subscribe to.
#[derive(Debug, Clone)]
pub struct SubscribeParams {
    /// The resource, `user@domain[:port]`: the Request-URI and To.
    pub target: String,
    /// The event package.
    pub package: EventPackage,
    /// Requested duration in seconds.
    pub expires: u32,
}

/// Why a subscription was terminated by its notifier (RFC 6665 section 4.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminationReason {
    /// Retry at once (the notifier moved, e.g. a server shutting down).
    Deactivated,
    /// Retry later (`retry-after`).
    Probation,
    /// Refused by policy: never retried.
    Rejected,
    /// The subscription expired: retry at once.
    Timeout,
    /// The notifier could not authorise in time: retry later.
    Giveup,
    /// The resource does not exist: never retried.
    Noresource,
    /// The resource will never be available: never retried.
    Invariant,
    /// Another reason token.
    Other(String),
}

impl TerminationReason {
    fn parse(token: &str) -> TerminationReason {
        match token.to_ascii_lowercase().as_str() {
            "deactivated" => TerminationReason::Deactivated,
            "probation" => TerminationReason::Probation,
            "rejected" => TerminationReason::Rejected,
            "timeout" => TerminationReason::Timeout,
            "giveup" => TerminationReason::Giveup,
            "noresource" => TerminationReason::Noresource,
            "invariant" => TerminationReason::Invariant,
            other => TerminationReason::Other(other.to_owned()),
        }
    }

    /// The reason token.
    pub fn as_str(&self) -> &str {
        match self {
            TerminationReason::Deactivated => "deactivated",
            TerminationReason::Probation => "probation",
            TerminationReason::Rejected => "rejected",
            TerminationReason::Timeout => "timeout",
            TerminationReason::Giveup => "giveup",
            TerminationReason::Noresource => "noresource",
            TerminationReason::Invariant => "invariant",
            TerminationReason::Other(s) => s,
        }
    }
}

/// A `Subscription-State` header (RFC 6665 section 8.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionState {
    /// Authorised; NOTIFYs carry state.
    Active {
        /// Seconds left, when given.
        expires: Option<u32>,
    },
    /// Waiting for authorisation (a NOTIFY then carries no state).
    Pending {
        /// Seconds left, when given.
        expires: Option<u32>,
    },
    /// Over.
    Terminated {
        /// Why, when given.
        reason: Option<TerminationReason>,
        /// When a new subscription may be tried, in seconds.
        retry_after: Option<u32>,
    },
}

impl SubscriptionState {
    /// Parses `active;expires=600`, `pending`, `terminated;reason=timeout;retry-after=30`;
    /// `None` for another substate value or a malformed parameter.
    pub fn parse(value: &str) -> Option<SubscriptionState> {
        let mut parts = value.split(';').map(str::trim);
        let state = parts.next()?.to_ascii_lowercase();
        let (mut expires, mut reason, mut retry_after) = (None, None, None);
        for p in parts {
            let (name, v) = p.split_once('=').unwrap_or((p, ""));
            let v = v.trim().trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "expires" => expires = Some(v.parse().ok()?),
                "retry-after" => retry_after = Some(v.parse().ok()?),
                "reason" => reason = Some(TerminationReason::parse(v)),
                _ => {}
            }
        }
        Some(match state.as_str() {
            "active" => SubscriptionState::Active { expires },
            "pending" => SubscriptionState::Pending { expires },
            "terminated" => SubscriptionState::Terminated {
                reason,
                retry_after,
            },
            _ => return None,
        })
    }
}

/// Why a subscription (one dialog of it) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionEnd {
    /// The SUBSCRIBE (initial or refresh) failed.
    Failed(RequestOutcome),
    /// The 2xx could not create a dialog (no To tag or Contact).
    NoDialog,
    /// A NOTIFY said `terminated`.
    Notified(Option<TerminationReason>),
    /// A 2xx granted no time.
    ZeroExpires,
    /// The SUBSCRIBE could not be built (the account's user or domain).
    Invalid(RequestError),
}

impl fmt::Display for SubscriptionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscriptionEnd::Failed(o) => o.fmt(f),
            SubscriptionEnd::NoDialog => f.write_str("2xx without a dialog (To tag, Contact)"),
            SubscriptionEnd::Notified(Some(r)) => write!(f, "terminated ({})", r.as_str()),
            SubscriptionEnd::Notified(None) => f.write_str("terminated"),
            SubscriptionEnd::ZeroExpires => f.write_str("2xx with Expires 0"),
            SubscriptionEnd::Invalid(e) => e.fmt(f),
        }
    }
}

/// A change the gateway hears about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// A NOTIFY said `pending`.
    Pending,
    /// A NOTIFY said `active`.
    Active,
    /// The dialog ended; a new subscription is tried after `retry_in`.
    Retrying {
        /// Why it ended.
        cause: SubscriptionEnd,
        /// The delay drawn.
        retry_in: Duration,
    },
    /// Over for good (never retried); `SubscriptionFinished` follows.
    Terminated(SubscriptionEnd),
    /// A list subscription ([`EventPackage::PresenceList`]) was answered 2xx without
    /// `Require: eventlist` (RFC 4662 section 5.1): the notifier is no RLS, the URI no list.
    /// The subscription goes on; the user decides whether to keep it.
    NotAList,
}

/// What a subscription tells the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionEvent {
    /// A NOTIFY in the dialog: answer it with
    /// [`SipStack::answer_request`](crate::stack::SipStack::answer_request) (200, or 400
    /// for a body that does not parse). The subscription already applied its
    /// `Subscription-State`.
    Notify {
        /// The handle to answer by.
        id: IncomingRequestId,
        /// Its `Subscription-State`.
        state: SubscriptionState,
        /// The request (Content-Type and body).
        request: Box<SipRequest>,
    },
    /// The subscription's state changed.
    Status(SubscriptionStatus),
}

/// Where a subscription is, for the metrics gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubPhase {
    /// The initial SUBSCRIBE is on its way, or its 2xx came and no NOTIFY yet.
    Subscribing,
    /// The notifier said `pending`.
    Pending,
    /// The notifier said `active`.
    Active,
    /// Waiting to subscribe again after a failure.
    Retrying,
    /// Removing it (SUBSCRIBE with Expires 0).
    Unsubscribing,
}

impl SubPhase {
    /// Every phase, in a stable order.
    pub const ALL: [SubPhase; 5] = [
        SubPhase::Subscribing,
        SubPhase::Pending,
        SubPhase::Active,
        SubPhase::Retrying,
        SubPhase::Unsubscribing,
    ];

    /// A snake_case name for labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SubPhase::Subscribing => "subscribing",
            SubPhase::Pending => "pending",
            SubPhase::Active => "active",
            SubPhase::Retrying => "retrying",
            SubPhase::Unsubscribing => "unsubscribing",
        }
    }
}

/// What the subscription asks its stack to do.
#[derive(Debug)]
pub enum SubAction {
    /// Run this request; report its end with [`Subscription::handle_outcome`].
    Send(Box<ClientRequest>),
    /// NOTIFYs with this Call-ID are this subscription's from now on.
    Listen(String),
    /// ... and no longer.
    Unlisten(String),
    /// Answer a NOTIFY that is not the gateway's business (481, 489, 400, 500).
    Respond {
        /// Its server transaction.
        txn: TxnId,
        /// The NOTIFY.
        request: Box<SipRequest>,
        /// Status.
        status: u16,
        /// Reason phrase.
        reason: &'static str,
    },
    /// A NOTIFY for the gateway.
    Notify {
        /// Its server transaction.
        txn: TxnId,
        /// The NOTIFY.
        request: Box<SipRequest>,
        /// Its parsed `Subscription-State`.
        state: SubscriptionState,
    },
    /// Tell the gateway.
    Report(SubscriptionStatus),
    /// Nothing more: forget the subscription.
    Finished,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_state_parses_substates_and_parameters() {
        assert_eq!(
            SubscriptionState::parse("active;expires=600"),
            Some(SubscriptionState::Active { expires: Some(600) })
        );
        assert_eq!(
            SubscriptionState::parse(" Pending "),
            Some(SubscriptionState::Pending { expires: None })
        );
        assert_eq!(
            SubscriptionState::parse("terminated;reason=probation;retry-after=30"),
            Some(SubscriptionState::Terminated {
                reason: Some(TerminationReason::Probation),
                retry_after: Some(30)
            })
        );
        assert_eq!(
            SubscriptionState::parse("terminated;reason=\"NoResource\""),
            Some(SubscriptionState::Terminated {
                reason: Some(TerminationReason::Noresource),
                retry_after: None
            })
        );
        assert_eq!(SubscriptionState::parse("active;expires=soon"), None);
        assert_eq!(SubscriptionState::parse("waiting"), None);
        assert_eq!(SubscriptionState::parse(""), None);
    }
}
