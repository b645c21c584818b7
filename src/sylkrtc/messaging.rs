//! Messaging events (spec section 6.3): `message`, `disposition-notification`,
//! `sync-conversations` and `sync` account events, their session-event twins for messages
//! inside a call, and `lookup-public-key-event`. sylkRTC-1 never had messaging; a v1
//! connection gets the same events in its own shape (`account_event`, `data`).

use serde_json::{json, Map, Value};

use super::event::{account_event, put_payload, Originator};
use super::Dialect;

/// One entry of `sync-conversations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedMessage {
    /// The other party.
    pub contact: String,
    /// The message's timestamp.
    pub timestamp: String,
    /// The notifications its sender asked for.
    pub disposition: Vec<String>,
    /// Its id.
    pub message_id: String,
    /// MIME type.
    pub content_type: String,
    /// Content.
    pub content: String,
    /// `incoming` / `outgoing`.
    pub direction: &'static str,
    /// Its state (`pending`, `accepted`, `delivered`, `displayed`, `failed`, ...).
    pub state: &'static str,
}

/// A received message, as `message` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Who sent it.
    pub sender: Originator,
    /// When (RFC 3339).
    pub timestamp: String,
    /// IMDN notifications asked for.
    pub disposition_notification: Vec<String>,
    /// Its id.
    pub message_id: String,
    /// MIME type.
    pub content_type: String,
    /// Content.
    pub content: String,
}

/// A delivery result or IMDN, as `disposition-notification` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    /// The message it is about.
    pub message_id: String,
    /// That message's timestamp.
    pub message_timestamp: String,
    /// `accepted`, `delivered`, `displayed`, `failed`, ...
    pub state: &'static str,
    /// SIP status (200 for IMDNs).
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
}

/// A messaging event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessagingEvent {
    /// An account received a message.
    Message {
        /// The account.
        account: String,
        /// The message.
        message: ReceivedMessage,
    },
    /// A message of the account changed state.
    Disposition {
        /// The account.
        account: String,
        /// What happened.
        disposition: Disposition,
    },
    /// The reply to `account-sync-conversations`.
    SyncConversations {
        /// The account.
        account: String,
        /// The journal entries in order.
        messages: Vec<SyncedMessage>,
    },
    /// Another connection of the account did something (multi-device sync).
    Sync {
        /// The account.
        account: String,
        /// `message` or `conversation`.
        kind: &'static str,
        /// `add`, `remove` or `read`.
        action: &'static str,
        /// What (for message/add the whole `account-message` request).
        content: Value,
    },
    /// A message inside a call's dialog.
    SessionMessage {
        /// The session.
        session: String,
        /// The message.
        message: ReceivedMessage,
    },
    /// The result of a `session-message`.
    SessionDisposition {
        /// The session.
        session: String,
        /// What happened.
        disposition: Disposition,
    },
    /// The answer to `lookup-public-key`.
    PublicKey {
        /// Whose.
        uri: String,
        /// The key, if one was seen.
        public_key: Option<String>,
    },
}

impl ReceivedMessage {
    fn fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("sender".into(), self.sender.to_json());
        m.insert("timestamp".into(), self.timestamp.clone().into());
        m.insert(
            "disposition_notification".into(),
            self.disposition_notification.clone().into(),
        );
        m.insert("message_id".into(), self.message_id.clone().into());
        m.insert("content_type".into(), self.content_type.clone().into());
        m.insert("content".into(), self.content.clone().into());
        m
    }
}

impl Disposition {
    fn fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("message_id".into(), self.message_id.clone().into());
        m.insert(
            "message_timestamp".into(),
            self.message_timestamp.clone().into(),
        );
        m.insert("state".into(), self.state.into());
        m.insert("code".into(), self.code.into());
        m.insert("reason".into(), self.reason.clone().into());
        m
    }
}

fn session_event(
    dialect: Dialect,
    session: &str,
    v1_name: &str,
    data: Map<String, Value>,
) -> Value {
    let v1 = dialect == Dialect::V1;
    let mut m = Map::new();
    m.insert(
        "sylkrtc".into(),
        if v1 { "session_event" } else { "session-event" }.into(),
    );
    m.insert("session".into(), session.into());
    let name = if v1 {
        v1_name.to_owned()
    } else {
        v1_name.replace('_', "-")
    };
    m.insert("event".into(), name.into());
    put_payload(&mut m, dialect, data);
    Value::Object(m)
}

impl MessagingEvent {
    /// The event in `dialect`'s shape.
    pub fn encode(&self, dialect: Dialect) -> Value {
        match self {
            MessagingEvent::Message { account, message } => {
                account_event(dialect, account, None, "message", message.fields())
            }
            MessagingEvent::Disposition {
                account,
                disposition,
            } => account_event(
                dialect,
                account,
                None,
                "disposition_notification",
                disposition.fields(),
            ),
            MessagingEvent::SyncConversations { account, messages } => {
                let list: Vec<Value> = messages
                    .iter()
                    .map(|m| {
                        json!({
                            "contact": m.contact,
                            "timestamp": m.timestamp,
                            "disposition": m.disposition,
                            "message_id": m.message_id,
                            "content_type": m.content_type,
                            "content": m.content,
                            "direction": m.direction,
                            "state": m.state,
                        })
                    })
                    .collect();
                let mut data = Map::new();
                data.insert("messages".into(), Value::Array(list));
                account_event(dialect, account, None, "sync_conversations", data)
            }
            MessagingEvent::Sync {
                account,
                kind,
                action,
                content,
            } => {
                let mut data = Map::new();
                data.insert("type".into(), (*kind).into());
                data.insert("action".into(), (*action).into());
                data.insert("content".into(), content.clone());
                account_event(dialect, account, None, "sync", data)
            }
            MessagingEvent::SessionMessage { session, message } => {
                session_event(dialect, session, "message", message.fields())
            }
            MessagingEvent::SessionDisposition {
                session,
                disposition,
            } => session_event(
                dialect,
                session,
                "disposition_notification",
                disposition.fields(),
            ),
            MessagingEvent::PublicKey { uri, public_key } => {
                let mut m = Map::new();
                m.insert(
                    "sylkrtc".into(),
                    match dialect {
                        Dialect::V1 => "lookup_public_key_event",
                        Dialect::V2 => "lookup-public-key-event",
                    }
                    .into(),
                );
                m.insert("uri".into(), uri.clone().into());
                m.insert("public_key".into(), public_key.clone().into());
                Value::Object(m)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> Originator {
        Originator {
            uri: "bob@x".into(),
            display_name: Some("Bob".into()),
        }
    }

    #[test]
    fn message_and_disposition_per_dialect() {
        let e = MessagingEvent::Message {
            account: "a@x".into(),
            message: ReceivedMessage {
                sender: sender(),
                timestamp: "2024-01-02T03:04:05Z".into(),
                disposition_notification: vec!["positive-delivery".into()],
                message_id: "m1".into(),
                content_type: "text/plain".into(),
                content: "hi".into(),
            },
        };
        assert_eq!(
            e.encode(Dialect::V2),
            json!({"sylkrtc":"account-event","account":"a@x","event":"message",
                   "sender":{"uri":"bob@x","display_name":"Bob"},"timestamp":"2024-01-02T03:04:05Z",
                   "disposition_notification":["positive-delivery"],"message_id":"m1",
                   "content_type":"text/plain","content":"hi"})
        );
        assert_eq!(e.encode(Dialect::V1)["data"]["content"], "hi");
        let d = MessagingEvent::Disposition {
            account: "a@x".into(),
            disposition: Disposition {
                message_id: "m1".into(),
                message_timestamp: "t".into(),
                state: "failed",
                code: 404,
                reason: "Not Found".into(),
            },
        };
        assert_eq!(
            d.encode(Dialect::V2),
            json!({"sylkrtc":"account-event","account":"a@x","event":"disposition-notification",
                   "message_id":"m1","message_timestamp":"t","state":"failed","code":404,"reason":"Not Found"})
        );
        let s = MessagingEvent::SessionDisposition {
            session: "s1".into(),
            disposition: Disposition {
                message_id: "m1".into(),
                message_timestamp: "t".into(),
                state: "accepted",
                code: 200,
                reason: "OK".into(),
            },
        };
        assert_eq!(s.encode(Dialect::V2)["sylkrtc"], "session-event");
        assert_eq!(s.encode(Dialect::V2)["event"], "disposition-notification");
        let k = MessagingEvent::PublicKey {
            uri: "bob@x".into(),
            public_key: None,
        };
        assert_eq!(
            k.encode(Dialect::V2),
            json!({"sylkrtc":"lookup-public-key-event","uri":"bob@x","public_key":null})
        );
    }
}
