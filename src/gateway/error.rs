//! What the gateway answers and reports, as types: [`GatewayError`] for a refused request
//! (sylkRTC `error`) and [`CallEnd`] for why a call ended (sylkRTC `terminated` reason).
//! The texts are rendered here, at the edge, and nowhere is a decision taken on them.

use std::fmt;

use media::bridge::MediaLeg;
use media::error::BridgeError;
use sip::call::CallError;

use crate::sylkrtc::RequestError;

/// Why a client request was refused. `Display` is the `error` text sylkrtc.js shows, in
/// SylkServer's wording where SylkServer has one.
#[derive(Debug)]
#[non_exhaustive]
pub enum GatewayError {
    /// The request did not decode (missing or invalid field, unknown request type).
    Request(RequestError),
    /// A broken internal invariant (a client or call vanished mid-request); never expected.
    Internal,
    /// `account-add` of an account this connection already added.
    AccountExists(String),
    /// `account-add` for a domain outside `sylkrtc.sip_domains`.
    DomainNotAllowed(String),
    /// `account-add` beyond `sylkrtc.max_accounts_per_connection`.
    TooManyAccounts(usize),
    /// A request names an account this connection did not add.
    UnknownAccount(String),
    /// `session-create` with a session id this connection already uses.
    SessionInUse(String),
    /// `session-create` beyond `media.max_calls_per_connection`.
    TooManySessions(usize),
    /// `session-create` beyond `media.max_calls`.
    GatewayFull,
    /// The media port range is exhausted.
    NoMediaPorts,
    /// The browser's SDP cannot be used.
    Sdp(BridgeError),
    /// The SIP stack refused to place the call.
    CannotCall {
        /// The callee as requested.
        uri: String,
        /// Why.
        error: CallError,
    },
    /// `session-answer` of a call the browser placed.
    CannotAnswerOutgoing(String),
    /// `session-answer` of a call that is past ringing.
    AnswerState {
        /// The session.
        session: String,
        /// Its state.
        state: &'static str,
    },
    /// The SIP stack refused the answer.
    CannotAnswer {
        /// The session.
        session: String,
        /// Why.
        error: CallError,
    },
    /// A trickled candidate the WebRTC leg refused.
    InvalidCandidate(BridgeError),
    /// A request for a session that ended recently.
    SessionTerminated(String),
    /// A request for a session this connection does not have.
    UnknownSession(String),
    /// A request the gateway does not implement yet.
    NotSupportedYet(&'static str),
    /// A client header the SIP stack writes itself.
    HeaderNotAllowed(String),
    /// A client header whose name or value is not valid SIP.
    InvalidHeader(String),
    /// More client headers than one request may carry.
    TooManyHeaders(usize),
    /// `session-update`, `session-dtmf-info` or `session-transfer` in a state that does not
    /// allow it.
    CallState {
        /// What was asked.
        action: &'static str,
        /// The session.
        session: String,
        /// Its state.
        state: &'static str,
    },
    /// `session-create` while the gateway drains before shutting down.
    Draining,
    /// Messaging before the account registered successfully on this connection.
    NotAuthenticated,
    /// Message content over `messaging.max_content_size`.
    MessageTooLarge(usize),
    /// The account's send rate limit.
    TooManyMessages,
    /// The message store refused or failed.
    Store(store::StoreError),
    /// The SIP MESSAGE could not be started.
    CannotSendMessage(sip::request::RequestError),
    /// `session-message` on a call that is not up.
    SessionMessageState {
        /// The session.
        session: String,
        /// Its state.
        state: &'static str,
    },
    /// A renegotiation of the session is already under way.
    UpdatePending(String),
    /// The browser's SDP for `session-update` could not be used.
    UpdateSdp(BridgeError),
    /// The SIP stack refused a request inside the call.
    CannotSend {
        /// What was asked.
        action: &'static str,
        /// Why.
        error: String,
    },
    /// Too many DTMF digits are waiting to be sent on the session.
    DtmfQueueFull(usize),
    /// A transfer of the session is already under way.
    TransferPending(String),
    /// An attended transfer naming the transferred call as its own consultation call.
    TransferToItself(String),
    /// `session-create` with `refer` naming a session that got no transfer request.
    NoTransferRequest(String),
    /// `account-remove-message` of a message the store does not have.
    UnknownMessage(String),
    /// `account-remove-conversation` of a conversation the store does not have.
    UnknownContact(String),
    /// The addressbook could not be read (store or XCAP server).
    AddressbookUnavailable(super::contacts::AddressbookError),
    /// Too many addressbook requests of one account wait already.
    AddressbookBusy,
    /// A chat session cannot be set up (no MSRP listener and no relay, a relay URI whose
    /// host is not an address, ...).
    ChatUnavailable(&'static str),
    /// `session-message` over MSRP refused by the session's connection (too large, queue
    /// full, connection gone).
    ChatSend(msrp::SendError),
    /// `session-update` or `session-dtmf-info` on a chat-only session: it has no audio or
    /// video to renegotiate or send key presses in.
    ChatOnlySession {
        /// What was asked.
        action: &'static str,
        /// The session.
        session: String,
    },
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatewayError::Request(e) => e.fmt(f),
            GatewayError::Internal => f.write_str("Internal error"),
            GatewayError::AccountExists(aor) => write!(f, "Account {aor} already added"),
            GatewayError::DomainNotAllowed(d) => write!(f, "SIP domain not allowed: {d}"),
            GatewayError::TooManyAccounts(max) => {
                write!(f, "Too many accounts on this connection (at most {max})")
            }
            GatewayError::UnknownAccount(aor) => write!(f, "Unknown account specified: {aor}"),
            GatewayError::SessionInUse(id) => write!(f, "Session ID {id} already in use"),
            GatewayError::TooManySessions(max) => {
                write!(f, "Too many sessions on this connection (at most {max})")
            }
            GatewayError::GatewayFull => f.write_str("Too many sessions on the gateway"),
            GatewayError::NoMediaPorts => f.write_str("No media ports available"),
            GatewayError::Sdp(BridgeError::NoCommonCodec) => {
                f.write_str("No common codec (the gateway does not transcode)")
            }
            GatewayError::Sdp(e) => write!(f, "Invalid SDP: {e}"),
            GatewayError::CannotCall { uri, error } => write!(f, "Cannot call {uri}: {error}"),
            GatewayError::CannotAnswerOutgoing(s) => {
                write!(f, "Cannot answer outgoing session {s}")
            }
            GatewayError::AnswerState { session, state } => {
                write!(f, "Invalid state for answering session {session}: {state}")
            }
            GatewayError::CannotAnswer { session, error } => {
                write!(f, "Cannot answer session {session}: {error}")
            }
            GatewayError::InvalidCandidate(e) => write!(f, "Invalid candidate: {e}"),
            GatewayError::SessionTerminated(s) => write!(f, "Session {s} is terminated"),
            GatewayError::UnknownSession(s) => write!(f, "Unknown session {s}"),
            GatewayError::NotSupportedYet(name) => write!(f, "not supported yet: {name}"),
            GatewayError::HeaderNotAllowed(name) => {
                write!(f, "Header {name} is not allowed (the gateway writes it)")
            }
            GatewayError::InvalidHeader(name) => write!(f, "Invalid header: {name}"),
            GatewayError::TooManyHeaders(max) => write!(f, "Too many headers (at most {max})"),
            GatewayError::CallState {
                action,
                session,
                state,
            } => write!(
                f,
                "Invalid state for {action} on session {session}: {state}"
            ),
            GatewayError::UpdatePending(s) => write!(f, "Session {s} is already being updated"),
            GatewayError::UpdateSdp(BridgeError::NoCommonCodec) => {
                f.write_str("No common codec (the gateway does not transcode)")
            }
            GatewayError::UpdateSdp(e) => write!(f, "Invalid SDP: {e}"),
            GatewayError::CannotSend { action, error } => write!(f, "Cannot {action}: {error}"),
            GatewayError::DtmfQueueFull(max) => {
                write!(f, "Too many DTMF digits waiting (at most {max})")
            }
            GatewayError::TransferToItself(s) => {
                write!(f, "Session {s} cannot replace itself")
            }
            GatewayError::TransferPending(s) => {
                write!(f, "Session {s} is already being transferred")
            }
            GatewayError::NoTransferRequest(s) => {
                write!(f, "Session {s} has no transfer request")
            }
            GatewayError::Draining => {
                f.write_str("Service unavailable: the gateway is shutting down, try again")
            }
            GatewayError::NotAuthenticated => f.write_str("Account not authenticated"),
            GatewayError::MessageTooLarge(max) => {
                write!(f, "Message too large (at most {max} bytes)")
            }
            GatewayError::TooManyMessages => f.write_str("Too many messages"),
            GatewayError::Store(e) => {
                let text = e.to_string();
                let mut c = text.chars();
                match c.next() {
                    Some(first) => write!(f, "{}{}", first.to_uppercase(), c.as_str()),
                    None => Ok(()),
                }
            }
            GatewayError::CannotSendMessage(e) => write!(f, "Cannot send message: {e}"),
            GatewayError::SessionMessageState { session, state } => {
                write!(
                    f,
                    "Invalid state for sending a message in session {session}: {state}"
                )
            }
            GatewayError::UnknownMessage(id) => write!(f, "Unknown message {id}"),
            GatewayError::UnknownContact(c) => write!(f, "Unknown contact {c}"),
            GatewayError::AddressbookUnavailable(why) => {
                write!(f, "Addressbook unavailable: {why}")
            }
            GatewayError::AddressbookBusy => f.write_str("Addressbook busy, try again"),
            GatewayError::ChatUnavailable(why) => write!(f, "Chat not available: {why}"),
            GatewayError::ChatSend(e) => write!(f, "Cannot send message: {e}"),
            GatewayError::ChatOnlySession { action, session } => {
                write!(
                    f,
                    "Session {session} is chat only: no {action} without audio or video"
                )
            }
        }
    }
}

impl std::error::Error for GatewayError {}

impl From<RequestError> for GatewayError {
    fn from(e: RequestError) -> Self {
        GatewayError::Request(e)
    }
}

/// Why a call ended. `Display` is the sylkRTC `terminated` reason.
#[derive(Debug)]
#[non_exhaustive]
pub enum CallEnd {
    /// The SIP side ended it (final response, BYE, CANCEL, timeout, DNS).
    Sip(sip::call::CallEnd),
    /// `session-terminate` of a call that had no SIP side left.
    LocalHangup,
    /// ICE with the browser failed.
    IceFailure,
    /// DTLS with the browser failed.
    DtlsFailure,
    /// No RTP on a leg for `media.inactivity_timeout`.
    MediaTimeout(MediaLeg),
    /// The SIP answer could not be used (the SIP side gets ACK and BYE); SRTP causes are
    /// named (RFC 4568).
    AnswerUnusable(BridgeError),
    /// The callee refused our plain offer with 488 and the SDES retry could not be made.
    SrtpRetryFailed,
    /// The reactor could not bind the call's media sockets.
    MediaPortsUnavailable,
    /// The client's WebSocket closed (nobody is told).
    WebSocketClosed,
    /// The call was transferred (`session-transfer`, and the target answered).
    Transferred,
    /// The gateway shut down with the call still up (the drain timeout passed, or a second
    /// SIGTERM came).
    Shutdown,
    /// A chat-only session's MSRP connection ended or could not be set up (the SIP side gets
    /// BYE).
    Chat(msrp::CloseReason),
    /// The SIP answer has no usable `m=message` line for a chat-only session (the SIP side
    /// gets ACK and BYE).
    ChatRefused,
}

/// Why the chat of a session with audio/video stopped while the call goes on (reported as
/// the `chat` session event; a chat-only session ends with [`CallEnd`] instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatStop {
    /// Its MSRP connection ended or could not be set up (lost, timed out, relay refused,
    /// peer cut off).
    Closed(msrp::CloseReason),
    /// The SIP answer to our offer has no usable `m=message` line.
    Refused,
    /// The peer's offer was accepted but the chat could not be set up on our side (the
    /// relay not authenticated in time, an unusable path).
    NotStarted,
    /// A SIP re-offer set the `m=message` port to 0 (RFC 3264 section 8.2).
    Removed,
}

impl ChatStop {
    /// The event's state: a removal is the peer's choice, the rest are failures.
    pub fn state(&self) -> crate::sylkrtc::ChatState {
        match self {
            ChatStop::Removed => crate::sylkrtc::ChatState::Ended,
            _ => crate::sylkrtc::ChatState::Failed,
        }
    }
}

impl fmt::Display for ChatStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatStop::Closed(reason) => reason.fmt(f),
            ChatStop::Refused => f.write_str("488 Not Acceptable Here (no usable m=message)"),
            ChatStop::NotStarted => f.write_str("MSRP session could not be set up"),
            ChatStop::Removed => f.write_str("Chat removed by the remote party"),
        }
    }
}

impl CallEnd {
    /// Whether the caller gave up before the call was answered (CANCEL, 487), which
    /// sylkRTC reports with `missed-session`.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, CallEnd::Sip(end) if end.cause == sip::call::CallEndCause::Cancelled)
    }
}

impl fmt::Display for CallEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// SylkServer's reason when the SIP answer cannot be used.
        const NOT_ACCEPTABLE: &str = "488 Not Acceptable Here";
        match self {
            CallEnd::Sip(end) => end.fmt(f),
            CallEnd::LocalHangup => f.write_str("200 Local hangup"),
            CallEnd::IceFailure => f.write_str("ICE failure"),
            CallEnd::DtlsFailure => f.write_str("DTLS failure"),
            CallEnd::MediaTimeout(MediaLeg::Webrtc) => f.write_str("Media timeout (browser)"),
            CallEnd::MediaTimeout(MediaLeg::Sip) => f.write_str("Media timeout (SIP)"),
            CallEnd::AnswerUnusable(e) => {
                use media::sdp::SdpError;
                match e {
                    BridgeError::Sdp {
                        error:
                            error @ (SdpError::SrtpRefused { .. }
                            | SdpError::UnexpectedSrtp { .. }
                            | SdpError::NoUsableCrypto { .. }
                            | SdpError::BadCrypto),
                        ..
                    } => write!(f, "{NOT_ACCEPTABLE} ({error})"),
                    BridgeError::KeyGeneration => write!(f, "{NOT_ACCEPTABLE} ({e})"),
                    _ => f.write_str(NOT_ACCEPTABLE),
                }
            }
            CallEnd::SrtpRetryFailed => f.write_str(NOT_ACCEPTABLE),
            CallEnd::MediaPortsUnavailable => f.write_str("503 Media ports unavailable"),
            CallEnd::WebSocketClosed => f.write_str("WebSocket closed"),
            CallEnd::Transferred => f.write_str("200 Call transferred"),
            CallEnd::Shutdown => f.write_str("503 Server shutting down"),
            CallEnd::Chat(reason) => reason.fmt(f),
            CallEnd::ChatRefused => write!(f, "{NOT_ACCEPTABLE} (no usable m=message)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_render_as_sylkserver_words_them() {
        assert_eq!(CallEnd::LocalHangup.to_string(), "200 Local hangup");
        assert_eq!(
            CallEnd::MediaTimeout(MediaLeg::Sip).to_string(),
            "Media timeout (SIP)"
        );
        assert_eq!(
            CallEnd::AnswerUnusable(BridgeError::NoCommonCodec).to_string(),
            "488 Not Acceptable Here"
        );
    }

    #[test]
    fn only_a_cancel_is_a_missed_call() {
        use sip::call::{CallEnd as SipCallEnd, CallEndCause};
        assert!(CallEnd::Sip(SipCallEnd {
            code: 487,
            cause: CallEndCause::Cancelled
        })
        .is_cancelled());
        assert!(!CallEnd::Sip(SipCallEnd {
            code: 200,
            cause: CallEndCause::RemoteBye
        })
        .is_cancelled());
        assert!(!CallEnd::LocalHangup.is_cancelled());
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert_eq!(
            GatewayError::UnknownAccount("a@b".into()).to_string(),
            "Unknown account specified: a@b"
        );
        assert_eq!(
            GatewayError::Sdp(BridgeError::NoCommonCodec).to_string(),
            "No common codec (the gateway does not transcode)"
        );
        assert_eq!(
            GatewayError::NotSupportedYet("account-message").to_string(),
            "not supported yet: account-message"
        );
    }
}
