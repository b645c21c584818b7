//! Server-to-client events, encoded per dialect (spec sections 5.2, 6.1 and 6.3).
//!
//! sylkRTC-1 wraps payloads in `data` and uses underscores (`account_event`,
//! `registration_state`); sylkRTC-2 flattens them and uses dashes.

use serde_json::{json, Map, Value};

use super::Dialect;

/// Registration states reported in `registration_state` / `registration-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// REGISTER sent, no final answer yet.
    Registering,
    /// The registrar accepted the binding.
    Registered,
    /// The registration failed; a reason accompanies it.
    Failed,
}

impl RegistrationState {
    fn as_str(self) -> &'static str {
        match self {
            RegistrationState::Registering => "registering",
            RegistrationState::Registered => "registered",
            RegistrationState::Failed => "failed",
        }
    }
}

/// The party that placed an incoming call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originator {
    /// Bare `user@domain`.
    pub uri: String,
    /// Display name from the From header, if any.
    pub display_name: Option<String>,
}

impl Originator {
    /// `{uri, display_name}` (display_name null when absent, as SylkServer sends it).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("uri".into(), self.uri.clone().into());
        // SylkServer sends the key with null when there is no display name.
        m.insert("display_name".into(), self.display_name.clone().into());
        Value::Object(m)
    }
}

/// Where a renegotiation (`update` session event) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateState {
    /// The SIP side offers: `sdp` is our offer; answer with `session-update`.
    Received,
    /// The browser's `session-update` offer was accepted: `sdp` is the answer.
    Accepted,
    /// It failed (`reason`); the call goes on with its previous media.
    Failed,
}

impl UpdateState {
    fn as_str(self) -> &'static str {
        match self {
            UpdateState::Received => "received",
            UpdateState::Accepted => "accepted",
            UpdateState::Failed => "failed",
        }
    }
}

/// How a key press of the SIP side arrived (our `dtmf` extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfMethod {
    /// SIP INFO (`application/dtmf-relay` or `application/dtmf`).
    Info,
    /// RFC 4733 telephone-event in the media.
    Rfc4733,
}

/// Progress of a transfer (our `transfer` extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    /// The REFER is accepted or the transfer target is being called.
    Trying,
    /// The transfer target answered: the call ends.
    Accepted,
    /// The transfer did not happen (`code`, `reason`); the call goes on.
    Failed,
    /// An INVITE with `Replaces` took this call over (RFC 3891): the other party changed.
    Replaced,
}

impl TransferState {
    fn as_str(self) -> &'static str {
        match self {
            TransferState::Trying => "trying",
            TransferState::Accepted => "accepted",
            TransferState::Failed => "failed",
            TransferState::Replaced => "replaced",
        }
    }
}

/// What became of a session's chat while its audio/video goes on (our `chat` extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatState {
    /// The chat's MSRP connection failed or could not be set up.
    Failed,
    /// The SIP side removed the chat (a re-offer with its `m=message` port 0).
    Ended,
}

impl ChatState {
    fn as_str(self) -> &'static str {
        match self {
            ChatState::Failed => "failed",
            ChatState::Ended => "ended",
        }
    }
}

/// Call states reported in `session_event`/`session-event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// First provisional response received.
    Progress,
    /// A provisional response (sylkRTC-2 only).
    Proceeding {
        /// Its status code.
        code: u16,
    },
    /// 180 Ringing (sylkRTC-2 only).
    Ringing,
    /// 183 with SDP (sylkRTC-2 only).
    EarlyMedia {
        /// Browser-ready answer SDP.
        sdp: String,
        /// SIP Call-ID.
        call_id: String,
    },
    /// The call was answered; SDP only for outgoing calls without early media.
    Accepted {
        /// Browser-ready answer SDP, when the browser still needs it.
        sdp: Option<String>,
        /// SIP Call-ID (sylkRTC-2 only).
        call_id: Option<String>,
        /// Headers of the 2xx the account asked for (`incoming_header_prefixes`,
        /// sylkRTC-2 only, when there are any).
        headers: Vec<(String, String)>,
    },
    /// ICE and DTLS are up.
    Established,
    /// The call ended.
    Terminated {
        /// `"<code> <phrase>"` or another clear reason.
        reason: String,
    },
}

/// An event for one client connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Sent immediately after the handshake.
    Ready,
    /// An account's registration changed.
    Registration {
        /// The account.
        account: String,
        /// The new state.
        state: RegistrationState,
        /// Why it failed (`"<code> <phrase>"`).
        reason: Option<String>,
    },
    /// An incoming call for an account.
    IncomingSession {
        /// The called account.
        account: String,
        /// Server-chosen session id.
        session: String,
        /// The caller.
        originator: Originator,
        /// The gateway's WebRTC offer; `None` for a chat-only session.
        sdp: Option<String>,
        /// SIP Call-ID (sylkRTC-2 only).
        call_id: String,
        /// The session's streams when it has chat (our extension: `["chat"]`,
        /// `["audio", "chat"]`, ...); empty (and not sent) for a plain call.
        media: Vec<&'static str>,
        /// INVITE headers matching the account's `incoming_header_prefixes` (sylkRTC-2).
        headers: Vec<(String, String)>,
    },
    /// A call that ended before it was answered.
    MissedSession {
        /// The called account.
        account: String,
        /// The caller.
        originator: Originator,
    },
    /// A call changed state.
    SessionState {
        /// The session id.
        session: String,
        /// The new state.
        state: SessionState,
    },
    /// A renegotiation (`update`, SylkServer HEAD).
    SessionUpdate {
        /// The session id.
        session: String,
        /// Where it is.
        state: UpdateState,
        /// Our offer (`received`) or answer (`accepted`).
        sdp: Option<String>,
        /// Why it failed.
        reason: Option<String>,
    },
    /// Our extension: the SIP side pressed a key.
    SessionDtmf {
        /// The session id.
        session: String,
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digit: char,
        /// Its length in milliseconds.
        duration: u32,
        /// How it arrived.
        method: DtmfMethod,
    },
    /// Our extension: progress of a transfer of this call.
    SessionTransfer {
        /// The session id.
        session: String,
        /// Where it is.
        state: TransferState,
        /// The SIP status of a failure, or of the target's last answer.
        code: Option<u16>,
        /// Its reason phrase.
        reason: Option<String>,
    },
    /// Our extension: the SIP side asks this call to be transferred (an incoming REFER).
    TransferRequest {
        /// The session id.
        session: String,
        /// Where to (`Refer-To`), bare `user@domain`.
        uri: String,
        /// Who asks (`Referred-By`), bare `user@domain`.
        referred_by: Option<String>,
    },
    /// Our extension: the chat of a session with audio/video is over; the call goes on
    /// (a chat-only session ends with `terminated` instead).
    SessionChat {
        /// The session id.
        session: String,
        /// What happened.
        state: ChatState,
        /// Why, rendered (`MSRP connection lost`, ...).
        reason: String,
    },
    /// Messaging: messages, dispositions, sync (see [`super::messaging`]).
    Messaging(super::messaging::MessagingEvent),
    /// Addressbook and presence (see [`super::contacts`]).
    Contacts(super::contacts::ContactsEvent),
}

impl Event {
    /// Encodes the event for `dialect`; `None` when the dialect has no such event (the
    /// sylkRTC-2 additions `proceeding`, `ringing` and `early-media` do not exist in v1).
    pub fn encode(&self, dialect: Dialect) -> Option<String> {
        let v1 = dialect == Dialect::V1;
        let value = match self {
            Event::Messaging(m) => return Some(m.encode(dialect).to_string()),
            Event::Contacts(c) => return Some(c.encode(dialect).to_string()),
            Event::Ready if v1 => json!({"sylkrtc": "event", "event": "ready"}),
            Event::Ready => json!({"sylkrtc": "ready-event"}),
            Event::Registration {
                account,
                state,
                reason,
            } => {
                let mut data = Map::new();
                data.insert("state".into(), state.as_str().into());
                if let Some(r) = reason {
                    data.insert("reason".into(), r.clone().into());
                }
                account_event(dialect, account, None, "registration_state", data)
            }
            Event::IncomingSession {
                account,
                session,
                originator,
                sdp,
                call_id,
                media,
                headers,
            } => {
                let mut data = Map::new();
                data.insert("originator".into(), originator.to_json());
                if let Some(sdp) = sdp {
                    data.insert("sdp".into(), sdp.clone().into());
                }
                if !v1 {
                    data.insert("call_id".into(), call_id.clone().into());
                    if !headers.is_empty() {
                        data.insert("headers".into(), headers_json(headers));
                    }
                }
                if !media.is_empty() {
                    data.insert("media".into(), media.clone().into());
                }
                account_event(dialect, account, Some(session), "incoming_session", data)
            }
            Event::MissedSession {
                account,
                originator,
            } => {
                let mut data = Map::new();
                data.insert("originator".into(), originator.to_json());
                account_event(dialect, account, None, "missed_session", data)
            }
            Event::SessionState { session, state } => {
                let mut data = Map::new();
                let name = match state {
                    SessionState::Progress => "progress",
                    SessionState::Proceeding { code } => {
                        data.insert("code".into(), (*code).into());
                        "proceeding"
                    }
                    SessionState::Ringing => "ringing",
                    SessionState::EarlyMedia { sdp, call_id } => {
                        data.insert("sdp".into(), sdp.clone().into());
                        data.insert("call_id".into(), call_id.clone().into());
                        "early-media"
                    }
                    SessionState::Accepted {
                        sdp,
                        call_id,
                        headers,
                    } => {
                        if let Some(sdp) = sdp {
                            data.insert("sdp".into(), sdp.clone().into());
                        }
                        if let (Some(call_id), false) = (call_id, v1) {
                            data.insert("call_id".into(), call_id.clone().into());
                        }
                        if !v1 && !headers.is_empty() {
                            data.insert("headers".into(), headers_json(headers));
                        }
                        "accepted"
                    }
                    SessionState::Established => "established",
                    SessionState::Terminated { reason } => {
                        data.insert("reason".into(), reason.clone().into());
                        "terminated"
                    }
                };
                if v1 && matches!(name, "proceeding" | "ringing" | "early-media") {
                    return None;
                }
                data.insert("state".into(), name.into());
                let mut m = Map::new();
                m.insert(
                    "sylkrtc".into(),
                    if v1 { "session_event" } else { "session-event" }.into(),
                );
                m.insert("session".into(), session.clone().into());
                m.insert("event".into(), "state".into());
                put_payload(&mut m, dialect, data);
                Value::Object(m)
            }
            Event::SessionUpdate {
                session,
                state,
                sdp,
                reason,
            } => {
                // sylkRTC-1 has no renegotiation.
                if v1 {
                    return None;
                }
                let mut data = Map::new();
                data.insert("state".into(), state.as_str().into());
                if let Some(sdp) = sdp {
                    data.insert("sdp".into(), sdp.clone().into());
                }
                if let Some(reason) = reason {
                    data.insert("reason".into(), reason.clone().into());
                }
                session_event(dialect, session, "update", data)
            }
            Event::SessionDtmf {
                session,
                digit,
                duration,
                method,
            } => {
                let mut data = Map::new();
                data.insert("digit".into(), digit.to_string().into());
                data.insert("duration".into(), (*duration).into());
                let method = match method {
                    DtmfMethod::Info => "info",
                    DtmfMethod::Rfc4733 => "rfc4733",
                };
                data.insert("method".into(), method.into());
                session_event(dialect, session, "dtmf", data)
            }
            Event::SessionTransfer {
                session,
                state,
                code,
                reason,
            } => {
                let mut data = Map::new();
                data.insert("state".into(), state.as_str().into());
                if let Some(code) = code {
                    data.insert("code".into(), (*code).into());
                }
                if let Some(reason) = reason {
                    data.insert("reason".into(), reason.clone().into());
                }
                session_event(dialect, session, "transfer", data)
            }
            Event::SessionChat {
                session,
                state,
                reason,
            } => {
                let mut data = Map::new();
                data.insert("state".into(), state.as_str().into());
                data.insert("reason".into(), reason.clone().into());
                session_event(dialect, session, "chat", data)
            }
            Event::TransferRequest {
                session,
                uri,
                referred_by,
            } => {
                let mut data = Map::new();
                data.insert("uri".into(), uri.clone().into());
                data.insert("referred_by".into(), referred_by.clone().into());
                let name = if v1 {
                    "transfer_request"
                } else {
                    "transfer-request"
                };
                session_event(dialect, session, name, data)
            }
        };
        Some(value.to_string())
    }
}

/// A `session_event`/`session-event` named `event` with `data` (flattened in sylkRTC-2).
fn session_event(dialect: Dialect, session: &str, event: &str, data: Map<String, Value>) -> Value {
    let mut m = Map::new();
    let kind = match dialect {
        Dialect::V1 => "session_event",
        Dialect::V2 => "session-event",
    };
    m.insert("sylkrtc".into(), kind.into());
    m.insert("session".into(), session.into());
    m.insert("event".into(), event.into());
    put_payload(&mut m, dialect, data);
    Value::Object(m)
}

/// SIP headers as sylkRTC carries them: an object of name -> value (SylkServer's form; a
/// repeated name keeps its last value).
fn headers_json(headers: &[(String, String)]) -> Value {
    let mut m = Map::new();
    for (name, value) in headers {
        m.insert(name.clone(), value.clone().into());
    }
    Value::Object(m)
}

/// Builds an `account_event`/`account-event`; `v1_name` uses underscores and becomes dashed
/// for sylkRTC-2.
pub(super) fn account_event(
    dialect: Dialect,
    account: &str,
    session: Option<&String>,
    v1_name: &str,
    data: Map<String, Value>,
) -> Value {
    let mut m = Map::new();
    let (kind, name) = match dialect {
        Dialect::V1 => ("account_event", v1_name.to_owned()),
        Dialect::V2 => ("account-event", v1_name.replace('_', "-")),
    };
    m.insert("sylkrtc".into(), kind.into());
    m.insert("account".into(), account.into());
    if let Some(s) = session {
        m.insert("session".into(), s.clone().into());
    }
    m.insert("event".into(), name.into());
    put_payload(&mut m, dialect, data);
    Value::Object(m)
}

pub(super) fn put_payload(m: &mut Map<String, Value>, dialect: Dialect, data: Map<String, Value>) {
    match dialect {
        Dialect::V1 => {
            m.insert("data".into(), Value::Object(data));
        }
        Dialect::V2 => m.extend(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(e: &Event, d: Dialect) -> Value {
        serde_json::from_str(&e.encode(d).unwrap()).unwrap()
    }

    #[test]
    fn ready_per_dialect() {
        assert_eq!(
            enc(&Event::Ready, Dialect::V1),
            json!({"sylkrtc":"event","event":"ready"})
        );
        assert_eq!(
            enc(&Event::Ready, Dialect::V2),
            json!({"sylkrtc":"ready-event"})
        );
    }

    #[test]
    fn registration_per_dialect() {
        let e = Event::Registration {
            account: "a@b".into(),
            state: RegistrationState::Failed,
            reason: Some("408 Request Timeout".into()),
        };
        assert_eq!(
            enc(&e, Dialect::V1),
            json!({"sylkrtc":"account_event","account":"a@b","event":"registration_state",
                   "data":{"state":"failed","reason":"408 Request Timeout"}})
        );
        assert_eq!(
            enc(&e, Dialect::V2),
            json!({"sylkrtc":"account-event","account":"a@b","event":"registration-state",
                   "state":"failed","reason":"408 Request Timeout"})
        );
    }

    #[test]
    fn incoming_and_missed_per_dialect() {
        let o = Originator {
            uri: "bob@x".into(),
            display_name: Some("Bob".into()),
        };
        let e = Event::IncomingSession {
            account: "a@b".into(),
            session: "s".into(),
            originator: o.clone(),
            sdp: Some("v=0".into()),
            call_id: "c1".into(),
            media: Vec::new(),
            headers: vec![("X-Tag".into(), "1".into())],
        };
        assert_eq!(
            enc(&e, Dialect::V1),
            json!({"sylkrtc":"account_event","account":"a@b","session":"s","event":"incoming_session",
                   "data":{"originator":{"uri":"bob@x","display_name":"Bob"},"sdp":"v=0"}})
        );
        assert_eq!(
            enc(&e, Dialect::V2),
            json!({"sylkrtc":"account-event","account":"a@b","session":"s","event":"incoming-session",
                   "originator":{"uri":"bob@x","display_name":"Bob"},"sdp":"v=0","call_id":"c1",
                   "headers":{"X-Tag":"1"}})
        );
        let chat = Event::IncomingSession {
            account: "a@b".into(),
            session: "s".into(),
            originator: o.clone(),
            sdp: None,
            call_id: "c1".into(),
            media: vec!["chat"],
            headers: Vec::new(),
        };
        assert_eq!(
            enc(&chat, Dialect::V2),
            json!({"sylkrtc":"account-event","account":"a@b","session":"s","event":"incoming-session",
                   "originator":{"uri":"bob@x","display_name":"Bob"},"call_id":"c1","media":["chat"]})
        );
        let m = Event::MissedSession {
            account: "a@b".into(),
            originator: o,
        };
        assert_eq!(enc(&m, Dialect::V2)["event"], "missed-session");
        assert_eq!(enc(&m, Dialect::V1)["event"], "missed_session");
    }

    #[test]
    fn session_states_per_dialect() {
        let s = |state| Event::SessionState {
            session: "s".into(),
            state,
        };
        assert_eq!(
            enc(
                &s(SessionState::Terminated {
                    reason: "486 Busy Here".into()
                }),
                Dialect::V1
            ),
            json!({"sylkrtc":"session_event","session":"s","event":"state",
                   "data":{"state":"terminated","reason":"486 Busy Here"}})
        );
        assert_eq!(
            enc(&s(SessionState::Proceeding { code: 183 }), Dialect::V2),
            json!({"sylkrtc":"session-event","session":"s","event":"state","state":"proceeding","code":183})
        );
        assert_eq!(s(SessionState::Ringing).encode(Dialect::V1), None);
        let accepted = s(SessionState::Accepted {
            sdp: Some("v=0".into()),
            call_id: Some("c".into()),
            headers: Vec::new(),
        });
        assert_eq!(
            enc(&accepted, Dialect::V1),
            json!({"sylkrtc":"session_event","session":"s","event":"state","data":{"state":"accepted","sdp":"v=0"}})
        );
        assert_eq!(enc(&accepted, Dialect::V2)["call_id"], "c");
    }
}

#[cfg(test)]
mod extension_tests {
    use super::*;

    fn enc(e: &Event, d: Dialect) -> Option<Value> {
        e.encode(d).map(|t| serde_json::from_str(&t).unwrap())
    }

    #[test]
    fn update_is_sylkrtc_2_only() {
        let e = Event::SessionUpdate {
            session: "s".into(),
            state: UpdateState::Failed,
            sdp: None,
            reason: Some("488 Not Acceptable Here".into()),
        };
        assert_eq!(
            enc(&e, Dialect::V2),
            Some(
                json!({"sylkrtc":"session-event","session":"s","event":"update",
                        "state":"failed","reason":"488 Not Acceptable Here"})
            )
        );
        assert_eq!(enc(&e, Dialect::V1), None);
    }

    #[test]
    fn extensions_per_dialect() {
        let dtmf = Event::SessionDtmf {
            session: "s".into(),
            digit: '#',
            duration: 160,
            method: DtmfMethod::Rfc4733,
        };
        assert_eq!(
            enc(&dtmf, Dialect::V2),
            Some(
                json!({"sylkrtc":"session-event","session":"s","event":"dtmf",
                        "digit":"#","duration":160,"method":"rfc4733"})
            )
        );
        assert_eq!(
            enc(&dtmf, Dialect::V1),
            Some(
                json!({"sylkrtc":"session_event","session":"s","event":"dtmf",
                        "data":{"digit":"#","duration":160,"method":"rfc4733"}})
            )
        );
        let t = Event::SessionTransfer {
            session: "s".into(),
            state: TransferState::Failed,
            code: Some(486),
            reason: Some("Busy Here".into()),
        };
        assert_eq!(
            enc(&t, Dialect::V2),
            Some(
                json!({"sylkrtc":"session-event","session":"s","event":"transfer",
                        "state":"failed","code":486,"reason":"Busy Here"})
            )
        );
        let chat = Event::SessionChat {
            session: "s".into(),
            state: ChatState::Failed,
            reason: "MSRP connection lost".into(),
        };
        assert_eq!(
            enc(&chat, Dialect::V2),
            Some(
                json!({"sylkrtc":"session-event","session":"s","event":"chat",
                        "state":"failed","reason":"MSRP connection lost"})
            )
        );
        assert_eq!(
            enc(&chat, Dialect::V1),
            Some(
                json!({"sylkrtc":"session_event","session":"s","event":"chat",
                        "data":{"state":"failed","reason":"MSRP connection lost"}})
            )
        );
        let r = Event::TransferRequest {
            session: "s".into(),
            uri: "carol@x".into(),
            referred_by: None,
        };
        assert_eq!(
            enc(&r, Dialect::V2),
            Some(
                json!({"sylkrtc":"session-event","session":"s","event":"transfer-request",
                        "uri":"carol@x","referred_by":null})
            )
        );
    }
}
