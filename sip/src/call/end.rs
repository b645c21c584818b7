//! How a call ended, as a type: the SIP status standing for the outcome and its cause.
//!
//! The stack reports exactly one [`CallEnd`] per call. The gateway renders the sylkRTC
//! `reason` from it at the edge ([`CallEnd`]'s `Display`, the `"<code> <phrase>"` texts
//! SylkServer uses) and branches on [`CallEndCause`], never on text.

use std::fmt;

use crate::auth::AuthError;
use crate::dialog::DialogError;
use crate::locate::LocateError;
use crate::stack::SendError;

/// How a call ended: `code` is the SIP status that stands for the outcome (the final
/// response that ended it, 200 for a BYE either way, 408 for a timeout, 503 when no target
/// could be reached, ...), `cause` says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEnd {
    /// The SIP status code of the outcome.
    pub code: u16,
    /// Why the call ended.
    pub cause: CallEndCause,
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallEndCause {
    /// Outgoing: the callee (or a proxy) answered the INVITE with a final response `code`
    /// (3xx-6xx); `phrase` is its reason phrase as received.
    Rejected {
        /// The reason phrase of the final response.
        phrase: String,
    },
    /// Outgoing: the retry offer sent after a first 488 was refused too (RFC 3261 section
    /// 21.4.26), so no offer is left to try.
    OfferRetryExhausted {
        /// The reason phrase of the second refusal.
        phrase: String,
    },
    /// Outgoing: the INVITE was challenged (401/407) and the challenge cannot be answered
    /// (wrong credentials, unsupported algorithm, ...).
    Unauthorized {
        /// The reason phrase of the challenge.
        phrase: String,
        /// Why it was not answered.
        error: AuthError,
    },
    /// Outgoing: the callee's domain could not be located (RFC 3263); reported as 503.
    Dns(LocateError),
    /// Outgoing: the lookup succeeded but left no target to try; reported as 503.
    NoTarget,
    /// Outgoing: the INVITE could not be handed to any target; reported as 503.
    NotSent(SendError),
    /// A transaction of the call failed in the transport (RFC 3261 section 8.1.3.1: as a
    /// 503 when no other target is left).
    TransportError,
    /// Outgoing: no final response to the INVITE (Timer B, RFC 3261 section 17.1.1.2): 408.
    Timeout,
    /// Our 2xx was never acknowledged within 64*T1 (RFC 3261 section 13.3.1.4): 408, and the
    /// session is ended with BYE.
    AckTimeout,
    /// Outgoing: a 2xx we cannot use (no To tag or Contact), 502; the peer will time out.
    UnusableAnswer(DialogError),
    /// The peer ended the established (or early) session with BYE; reported as 200.
    RemoteBye,
    /// We ended the call ([`SipStack::hangup`](crate::stack::SipStack::hangup), or a
    /// decline asked for by hangup); reported as 200.
    LocalHangup,
    /// Incoming: we declined the call with final response `code`.
    Declined,
    /// Incoming: the caller cancelled before we answered (RFC 3261 section 9.2): 487.
    Cancelled,
    /// The session timer ran out without the refresh the peer had to send (RFC 4028 section
    /// 10): ended with BYE, reported as 408.
    SessionExpired,
}

impl CallEnd {
    /// Ended with `cause` and the status that stands for it. Causes whose status is not
    /// fixed (a received final response, a decline) use [`CallEnd::rejected`] and
    /// [`CallEnd::declined`] instead.
    pub(crate) fn new(cause: CallEndCause) -> CallEnd {
        let code = match &cause {
            CallEndCause::RemoteBye | CallEndCause::LocalHangup => 200,
            CallEndCause::Timeout | CallEndCause::AckTimeout | CallEndCause::SessionExpired => 408,
            CallEndCause::Cancelled => 487,
            CallEndCause::OfferRetryExhausted { .. } => 488,
            CallEndCause::UnusableAnswer(_) => 502,
            _ => 503,
        };
        CallEnd { code, cause }
    }

    /// A final response `code` with `phrase` ended the outgoing call.
    pub(crate) fn rejected(code: u16, phrase: &str) -> CallEnd {
        CallEnd {
            code,
            cause: CallEndCause::Rejected {
                phrase: phrase.to_owned(),
            },
        }
    }

    /// We declined the incoming call with `code`.
    pub(crate) fn declined(code: u16) -> CallEnd {
        CallEnd {
            code,
            cause: CallEndCause::Declined,
        }
    }

    /// The reason phrase of the outcome, as SylkServer words it: the received phrase for a
    /// final response, `"BYE received"` and `"Local hangup"` for the two BYEs, the RFC 3261
    /// section 21 phrase otherwise.
    pub fn phrase(&self) -> &str {
        match &self.cause {
            CallEndCause::Rejected { phrase }
            | CallEndCause::OfferRetryExhausted { phrase }
            | CallEndCause::Unauthorized { phrase, .. } => phrase,
            CallEndCause::RemoteBye => "BYE received",
            CallEndCause::LocalHangup => "Local hangup",
            CallEndCause::UnusableAnswer(_) => "Bad Gateway",
            CallEndCause::SessionExpired => "Session Expired",
            _ => reason_phrase(self.code),
        }
    }
}

/// `"<code> <phrase>"`, the text of the sylkRTC `terminated` reason (`"486 Busy Here"`,
/// `"200 BYE received"`, `"200 Local hangup"`, `"408 Request Timeout"`, `"503 Service
/// Unavailable"`, `"487 Request Terminated"`, `"502 Bad Gateway (<why>)"`).
impl fmt::Display for CallEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.phrase())?;
        if let CallEndCause::UnusableAnswer(e) = &self.cause {
            write!(f, " ({e})")?;
        }
        Ok(())
    }
}

/// RFC 3261 section 21 phrases for the codes a call may send or report.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_texts_sylkserver_reports() {
        let text = |end: CallEnd| end.to_string();
        assert_eq!(text(CallEnd::rejected(486, "Busy Here")), "486 Busy Here");
        assert_eq!(text(CallEnd::rejected(404, "Nobody")), "404 Nobody");
        assert_eq!(
            text(CallEnd::new(CallEndCause::RemoteBye)),
            "200 BYE received"
        );
        assert_eq!(
            text(CallEnd::new(CallEndCause::LocalHangup)),
            "200 Local hangup"
        );
        assert_eq!(
            text(CallEnd::new(CallEndCause::Timeout)),
            "408 Request Timeout"
        );
        assert_eq!(
            text(CallEnd::new(CallEndCause::AckTimeout)),
            "408 Request Timeout"
        );
        assert_eq!(
            text(CallEnd::new(CallEndCause::Cancelled)),
            "487 Request Terminated"
        );
        assert_eq!(
            text(CallEnd::new(CallEndCause::TransportError)),
            "503 Service Unavailable"
        );
        assert_eq!(
            text(CallEnd::new(CallEndCause::NoTarget)),
            "503 Service Unavailable"
        );
        let dns = LocateError::NoRecords {
            host: "example.test".into(),
        };
        assert_eq!(
            text(CallEnd::new(CallEndCause::Dns(dns))),
            "503 Service Unavailable"
        );
        assert_eq!(text(CallEnd::declined(603)), "603 Decline");
        assert_eq!(text(CallEnd::declined(499)), "499 Declined");
        assert_eq!(
            text(CallEnd::new(CallEndCause::UnusableAnswer(
                DialogError::MissingContact
            ))),
            format!("502 Bad Gateway ({})", DialogError::MissingContact)
        );
        assert_eq!(
            text(CallEnd::new(CallEndCause::OfferRetryExhausted {
                phrase: "Not Acceptable Here".into()
            })),
            "488 Not Acceptable Here"
        );
    }
}
