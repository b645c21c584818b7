//! Client requests: decoding and validation of both dialects (their request names are the
//! same; spec section 6.1). Each feature area decodes its own requests in its own module;
//! this one holds the envelope, the errors and the dispatch by name.

use std::fmt;

use serde_json::Value;

use super::aor::{Aor, InvalidAor};
use super::fields::Fields;

mod account;
mod contacts;
mod generic;
mod messaging;
mod session;

pub use account::{AccountAdd, DeviceToken};
pub use contacts::{AddressbookUpdate, PublishPresence};
pub use messaging::{
    AccountMessage, DispositionRequest, SessionMessage, SyncConversations, DEFAULT_SYNC_LIMIT,
};
pub use session::{
    ChatSessionCreate, DtmfInfo, ExtraHeader, IceCandidate, SessionCreate, SessionMedia,
    SessionUpdate,
};

/// A validated request and the transaction its reply must carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Client-chosen id echoed in the `ack`/`error`.
    pub transaction: String,
    /// What the client asks for.
    pub request: Request,
}

/// The outcome of decoding one text frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A valid request.
    Request(Envelope),
    /// A request that can be answered, but only with this error.
    Invalid {
        /// The transaction to answer.
        transaction: String,
        /// Why the request was refused; its Display is the error text.
        error: RequestError,
    },
    /// Nothing to answer: logged and dropped, the connection stays up (spec section 4.2).
    Dropped(DropReason),
}

/// Why a frame could not be answered at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not valid JSON.
    NotJson,
    /// Valid JSON but not an object.
    NotObject,
    /// No string `sylkrtc` key.
    NoType,
    /// No string `transaction` key, so no reply can be matched by the client.
    NoTransaction,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::NotJson => "invalid JSON",
            DropReason::NotObject => "JSON is not an object",
            DropReason::NoType => "could not get message type (no string 'sylkrtc' key)",
            DropReason::NoTransaction => "request without a string 'transaction'",
        })
    }
}

/// Why a request was refused. The Display text goes to the client as the `error` value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// A mandatory field is absent or `null`.
    MissingField {
        /// The request name.
        request: &'static str,
        /// The field name.
        field: &'static str,
    },
    /// A field has the wrong type or an unacceptable value.
    InvalidField {
        /// The field name.
        field: &'static str,
        /// The value as JSON, shortened.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A field's value is not one of a fixed set.
    NotAllowed {
        /// The field name.
        field: &'static str,
        /// The value given.
        value: String,
        /// The accepted values.
        allowed: &'static [&'static str],
    },
    /// A SIP address field is not `user@domain`.
    InvalidUri(InvalidAor),
    /// The `sylkrtc` value names no known request.
    UnknownRequest(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::MissingField { request, field } => {
                write!(
                    f,
                    "Mandatory property '{field}' of '{request}' request is missing"
                )
            }
            RequestError::InvalidField {
                field,
                value,
                expected,
            } => write!(
                f,
                "Invalid value for '{field}' property: {value} (expected {expected})"
            ),
            RequestError::NotAllowed {
                field,
                value,
                allowed,
            } => write!(
                f,
                "Invalid value for '{field}' property: '{value}' (expected: {})",
                allowed.join(", ")
            ),
            RequestError::InvalidUri(e) => e.fmt(f),
            RequestError::UnknownRequest(name) => write!(f, "Unknown request type: {name}"),
        }
    }
}

impl std::error::Error for RequestError {}

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// `ping` (sylkRTC-2 keepalive): ack only.
    Ping,
    /// `account-add`.
    AccountAdd(AccountAdd),
    /// `account-remove`.
    AccountRemove {
        /// The account.
        account: Aor,
    },
    /// `account-register`.
    AccountRegister {
        /// The account.
        account: Aor,
    },
    /// `account-unregister`.
    AccountUnregister {
        /// The account.
        account: Aor,
    },
    /// `session-create`.
    SessionCreate(SessionCreate),
    /// `session-create` of a chat-only session (`media: ["chat"]`, no `sdp`).
    ChatSessionCreate(ChatSessionCreate),
    /// `session-answer`.
    SessionAnswer {
        /// The session id.
        session: String,
        /// The browser's SDP answer; absent for a chat-only session.
        sdp: Option<String>,
        /// Extra SIP headers for the 200 OK.
        headers: Vec<ExtraHeader>,
    },
    /// `session-trickle`; an empty list means end-of-candidates.
    SessionTrickle {
        /// The session id.
        session: String,
        /// The candidates.
        candidates: Vec<IceCandidate>,
    },
    /// `session-terminate`.
    SessionTerminate {
        /// The session id.
        session: String,
    },
    /// `session-update`: a new offer of the browser, or its answer to ours.
    SessionUpdate(SessionUpdate),
    /// `session-dtmf-info`: key presses sent as SIP INFO.
    SessionDtmfInfo(DtmfInfo),
    /// `session-transfer` (our extension): a blind transfer by REFER, or an attended one
    /// when `replaces` names the connection's consultation call.
    SessionTransfer {
        /// The session id.
        session: String,
        /// Where to transfer the call (optional with `replaces`: the consultation call's
        /// party is reached at its Contact).
        uri: Option<Aor>,
        /// Attended transfer: the session whose party takes the call over.
        replaces: Option<String>,
    },
    /// `account-devicetoken`: a push token for the account's next REGISTER.
    AccountDevicetoken(DeviceToken),
    /// `account-message`.
    AccountMessage(AccountMessage),
    /// `account-disposition-notification`.
    AccountDisposition(DispositionRequest),
    /// `account-sync-conversations`.
    AccountSyncConversations(SyncConversations),
    /// `account-mark-conversation-read`.
    AccountMarkConversationRead {
        /// The account.
        account: Aor,
        /// The other party.
        contact: Aor,
    },
    /// `account-remove-message`.
    AccountRemoveMessage {
        /// The account.
        account: Aor,
        /// The message.
        message_id: String,
        /// The other party.
        contact: Aor,
    },
    /// `account-remove-conversation`.
    AccountRemoveConversation {
        /// The account.
        account: Aor,
        /// The other party.
        contact: Aor,
    },
    /// `session-message`.
    SessionMessage(SessionMessage),
    /// `lookup-public-key`.
    LookupPublicKey {
        /// Whose key.
        uri: Aor,
    },
    /// `account-fetch-addressbook`.
    AccountFetchAddressbook {
        /// The account.
        account: Aor,
    },
    /// `account-update-addressbook`.
    AccountUpdateAddressbook(Box<AddressbookUpdate>),
    /// `account-publish-presence` (our extension).
    AccountPublishPresence(PublishPresence),
    /// A request that validated but whose feature a later release implements; answered with
    /// `not supported yet: <name>`.
    NotYetSupported {
        /// The request name.
        name: &'static str,
    },
}

/// Decodes one text frame. Never panics, whatever the input.
pub fn decode(text: &str) -> Decoded {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Decoded::Dropped(DropReason::NotJson);
    };
    let Value::Object(map) = value else {
        return Decoded::Dropped(DropReason::NotObject);
    };
    let Some(Value::String(kind)) = map.get("sylkrtc") else {
        return Decoded::Dropped(DropReason::NoType);
    };
    let Some(Value::String(transaction)) = map.get("transaction") else {
        return Decoded::Dropped(DropReason::NoTransaction);
    };
    let transaction = transaction.clone();
    match decode_request(kind, &map) {
        Ok(request) => Decoded::Request(Envelope {
            transaction,
            request,
        }),
        Err(error) => Decoded::Invalid { transaction, error },
    }
}

fn decode_request(
    kind: &str,
    map: &serde_json::Map<String, Value>,
) -> Result<Request, RequestError> {
    let name = request_name(kind).ok_or_else(|| RequestError::UnknownRequest(kind.to_owned()))?;
    let f = Fields { request: name, map };
    Ok(match name {
        "ping" => Request::Ping,
        "account-add" => Request::AccountAdd(account::account_add(&f)?),
        "account-remove" => Request::AccountRemove {
            account: f.aor("account")?,
        },
        "account-register" => Request::AccountRegister {
            account: f.aor("account")?,
        },
        "account-unregister" => Request::AccountUnregister {
            account: f.aor("account")?,
        },
        "session-create" => {
            let account = f.aor("account")?;
            let session = f.non_empty_str("session")?.to_owned();
            let uri = f.aor("uri")?;
            let media = session::media(&f)?;
            let headers = session::headers(&f)?;
            match media {
                // Chat alone needs no browser SDP: the gateway writes the m=message offer.
                Some(m) if m.chat && !m.audio && !m.video => {
                    Request::ChatSessionCreate(ChatSessionCreate {
                        account,
                        session,
                        uri,
                        headers,
                        refer: f.opt_str("refer")?.map(str::to_owned),
                    })
                }
                _ => Request::SessionCreate(SessionCreate {
                    account,
                    session,
                    uri,
                    sdp: f.str("sdp")?.to_owned(),
                    headers,
                    chat: media.is_some_and(|m| m.chat),
                    refer: f.opt_str("refer")?.map(str::to_owned),
                }),
            }
        }
        "session-update" => Request::SessionUpdate(SessionUpdate {
            session: f.str("session")?.to_owned(),
            sdp: f.str("sdp")?.to_owned(),
            headers: session::headers(&f)?,
        }),
        "session-dtmf-info" => Request::SessionDtmfInfo(session::dtmf_info(&f)?),
        "session-transfer" => {
            let replaces = f.opt_str("replaces")?.map(str::to_owned);
            Request::SessionTransfer {
                session: f.str("session")?.to_owned(),
                uri: match replaces {
                    Some(_) if f.opt_str("uri")?.is_none() => None,
                    _ => Some(f.aor("uri")?),
                },
                replaces,
            }
        }
        "account-devicetoken" => Request::AccountDevicetoken(account::device_token(&f)?),
        "session-answer" => Request::SessionAnswer {
            session: f.str("session")?.to_owned(),
            sdp: f.opt_str("sdp")?.map(str::to_owned),
            headers: session::headers(&f)?,
        },
        "session-trickle" => Request::SessionTrickle {
            session: f.str("session")?.to_owned(),
            candidates: f.list("candidates", session::candidate)?,
        },
        "session-terminate" => Request::SessionTerminate {
            session: f.str("session")?.to_owned(),
        },
        "account-message" => Request::AccountMessage(messaging::account_message(&f)?),
        "account-disposition-notification" => {
            Request::AccountDisposition(messaging::disposition(&f)?)
        }
        "account-sync-conversations" => {
            Request::AccountSyncConversations(messaging::sync_conversations(&f)?)
        }
        "account-mark-conversation-read" => Request::AccountMarkConversationRead {
            account: f.aor("account")?,
            contact: f.aor("contact")?,
        },
        "account-remove-message" => Request::AccountRemoveMessage {
            account: f.aor("account")?,
            message_id: f.non_empty_str("message_id")?.to_owned(),
            contact: f.aor("contact")?,
        },
        "account-remove-conversation" => Request::AccountRemoveConversation {
            account: f.aor("account")?,
            contact: f.aor("contact")?,
        },
        "session-message" => Request::SessionMessage(messaging::session_message(&f)?),
        "lookup-public-key" => Request::LookupPublicKey { uri: f.aor("uri")? },
        "account-fetch-addressbook" => Request::AccountFetchAddressbook {
            account: f.aor("account")?,
        },
        "account-update-addressbook" => {
            Request::AccountUpdateAddressbook(Box::new(contacts::update(&f)?))
        }
        "account-publish-presence" => {
            Request::AccountPublishPresence(contacts::publish_presence(&f)?)
        }
        generic => {
            generic::validate(&f)?;
            Request::NotYetSupported { name: generic }
        }
    })
}

/// Maps the wire name to a `'static` one, so errors and events can name it without copying.
fn request_name(kind: &str) -> Option<&'static str> {
    const TYPED: &[&str] = &[
        "ping",
        "account-add",
        "account-remove",
        "account-register",
        "account-unregister",
        "session-create",
        "session-answer",
        "session-trickle",
        "session-terminate",
        "session-update",
        "session-dtmf-info",
        "session-transfer",
        "account-devicetoken",
        "account-message",
        "account-disposition-notification",
        "account-sync-conversations",
        "account-mark-conversation-read",
        "account-remove-message",
        "account-remove-conversation",
        "session-message",
        "lookup-public-key",
        "account-fetch-addressbook",
        "account-update-addressbook",
        "account-publish-presence",
    ];
    TYPED
        .iter()
        .copied()
        .chain(generic::names())
        .find(|name| *name == kind)
}

#[cfg(test)]
mod tests;
