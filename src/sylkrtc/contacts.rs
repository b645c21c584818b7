//! The addressbook's wire types (SylkServer's `models/xcap.py`, spec sections 6.2, 6.3 and
//! 10) and the contacts events: `addressbook-fetched`, `addressbook-updated`,
//! `addressbook-update-failed`, and our presence extension `presence` (README, "Contacts
//! and presence").
//!
//! Contacts, groups and policies are typed for what the gateway acts on (URIs to watch,
//! policies for `pres-rules`) and keep every other key of the client's object (`extra`),
//! so a client's own fields survive a round trip through the store or the XCAP server.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::event::account_event;
use super::Dialect;

/// `{policy, subscribe}` of a contact's or policy's `dialog` and `presence`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventHandling {
    /// `allow`, `block`, `polite-block`, `confirm` or `default`.
    #[serde(default = "default_policy")]
    pub policy: String,
    /// Whether the gateway subscribes (to the contact's presence or dialog state).
    #[serde(default)]
    pub subscribe: bool,
}

fn default_policy() -> String {
    "default".to_owned()
}

impl Default for EventHandling {
    fn default() -> Self {
        EventHandling {
            policy: default_policy(),
            subscribe: false,
        }
    }
}

/// One URI of a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactUri {
    /// Its id (unique in the contact).
    pub id: String,
    /// The URI (`sip:bob@example.test`, `tel:+123`, or bare `bob@example.test`).
    pub uri: String,
    /// What kind (`sip`, `tel`, `work`, ...).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The preferred URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// The client's own fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
}

/// A contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Its id (unique per account).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Its URIs.
    #[serde(default)]
    pub uris: Vec<ContactUri>,
    /// Dialog-state handling.
    #[serde(default)]
    pub dialog: EventHandling,
    /// Presence handling: `subscribe` makes the gateway watch the contact's URIs.
    #[serde(default)]
    pub presence: EventHandling,
    /// The client's own fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
    /// The preferred URI (SylkServer defaults it to the first).
    #[serde(
        rename = "defaultUri",
        alias = "default_uri",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_uri: Option<ContactUri>,
    /// Every other key, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A group of contacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Its id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Its members, as contact objects (sylkrtc.js keeps them so).
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// The client's own fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
    /// Every other key, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A policy: how a watcher (`uri`) is treated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Its id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// The watcher it is about.
    pub uri: String,
    /// Dialog-state handling.
    #[serde(default)]
    pub dialog: EventHandling,
    /// Presence handling: `policy` becomes the watcher's `sub-handling` in `pres-rules`.
    #[serde(default)]
    pub presence: EventHandling,
    /// The client's own fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
    /// Every other key, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A whole addressbook.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Addressbook {
    /// Contacts in order.
    pub contacts: Vec<Contact>,
    /// Groups in order.
    pub groups: Vec<Group>,
    /// Policies in order.
    pub policies: Vec<Policy>,
}

impl Addressbook {
    /// `{contacts, groups, policies}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "contacts": self.contacts,
            "groups": self.groups,
            "policies": self.policies,
        })
    }
}

/// What `account-update-addressbook` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateAction {
    /// A new entry.
    Add,
    /// A changed entry.
    Update,
    /// An entry removed.
    Delete,
}

impl UpdateAction {
    /// `add`, `update`, `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateAction::Add => "add",
            UpdateAction::Update => "update",
            UpdateAction::Delete => "delete",
        }
    }
}

/// The entry of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A contact.
    Contact(Contact),
    /// A group.
    Group(Group),
    /// A policy.
    Policy(Policy),
}

impl Entry {
    /// Its id.
    pub fn id(&self) -> &str {
        match self {
            Entry::Contact(c) => &c.id,
            Entry::Group(g) => &g.id,
            Entry::Policy(p) => &p.id,
        }
    }

    /// `contact`, `group`, `policy`.
    pub fn kind(&self) -> store::addressbook::EntryKind {
        match self {
            Entry::Contact(_) => store::addressbook::EntryKind::Contact,
            Entry::Group(_) => store::addressbook::EntryKind::Group,
            Entry::Policy(_) => store::addressbook::EntryKind::Policy,
        }
    }

    /// The object as sylkRTC carries it.
    pub fn to_json(&self) -> Value {
        let v = match self {
            Entry::Contact(c) => serde_json::to_value(c),
            Entry::Group(g) => serde_json::to_value(g),
            Entry::Policy(p) => serde_json::to_value(p),
        };
        v.unwrap_or(Value::Null)
    }

    /// Reads an entry of `kind` from its JSON object.
    pub fn from_json(
        kind: store::addressbook::EntryKind,
        value: &Value,
    ) -> Result<Entry, serde_json::Error> {
        use store::addressbook::EntryKind;
        Ok(match kind {
            EntryKind::Contact => Entry::Contact(Contact::deserialize(value)?),
            EntryKind::Group => Entry::Group(Group::deserialize(value)?),
            EntryKind::Policy => Entry::Policy(Policy::deserialize(value)?),
        })
    }
}

/// The state a user publishes with `account-publish-presence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserPresence {
    /// Reachable.
    Online,
    /// Reachable, away (RPID `away`).
    Away,
    /// Reachable, busy (RPID `busy`).
    Busy,
    /// Not reachable (PIDF `closed`).
    Offline,
}

impl UserPresence {
    /// The sylkRTC name.
    pub fn as_str(self) -> &'static str {
        match self {
            UserPresence::Online => "online",
            UserPresence::Away => "away",
            UserPresence::Busy => "busy",
            UserPresence::Offline => "offline",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<UserPresence> {
        Some(match s {
            "online" => UserPresence::Online,
            "away" => UserPresence::Away,
            "busy" => UserPresence::Busy,
            "offline" => UserPresence::Offline,
            _ => return None,
        })
    }
}

/// A watched contact's presence, as the `presence` event carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPresence {
    /// The addressbook contact's id.
    pub contact: String,
    /// The URI watched, bare `user@domain`.
    pub uri: String,
    /// `open`, `closed` or `unknown`.
    pub state: &'static str,
    /// RPID activities.
    pub activities: Vec<String>,
    /// A note.
    pub note: Option<String>,
    /// When the state was set (the document's timestamp, else when it arrived; RFC 3339).
    pub timestamp: String,
}

/// A contacts event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContactsEvent {
    /// The answer to `account-fetch-addressbook`.
    Fetched {
        /// The account.
        account: String,
        /// Its addressbook.
        addressbook: Value,
    },
    /// An entry changed (to the connection that asked and the account's others).
    Updated {
        /// The account.
        account: String,
        /// `contact`, `group`, `policy`.
        kind: &'static str,
        /// `add`, `update`, `delete`.
        action: &'static str,
        /// The entry.
        data: Value,
    },
    /// An update could not be made.
    UpdateFailed {
        /// The account.
        account: String,
        /// `contact`, `group`, `policy`.
        kind: &'static str,
        /// `add`, `update`, `delete`.
        action: &'static str,
        /// Why.
        error: String,
        /// The entry's id.
        id: String,
    },
    /// A watched contact's presence (our extension).
    Presence {
        /// The account.
        account: String,
        /// What.
        presence: ContactPresence,
    },
}

impl ContactsEvent {
    /// The event in `dialect`'s shape.
    pub fn encode(&self, dialect: Dialect) -> Value {
        let mut data = Map::new();
        let (account, name) = match self {
            ContactsEvent::Fetched {
                account,
                addressbook,
            } => {
                data.insert("addressbook".into(), addressbook.clone());
                (account, "addressbook_fetched")
            }
            ContactsEvent::Updated {
                account,
                kind,
                action,
                data: entry,
            } => {
                data.insert("type".into(), (*kind).into());
                data.insert("action".into(), (*action).into());
                data.insert((*kind).into(), entry.clone());
                (account, "addressbook_updated")
            }
            ContactsEvent::UpdateFailed {
                account,
                kind,
                action,
                error,
                id,
            } => {
                data.insert("type".into(), (*kind).into());
                data.insert("action".into(), (*action).into());
                data.insert("error".into(), error.clone().into());
                data.insert("id".into(), id.clone().into());
                (account, "addressbook_update_failed")
            }
            ContactsEvent::Presence { account, presence } => {
                data.insert("contact".into(), presence.contact.clone().into());
                data.insert("uri".into(), presence.uri.clone().into());
                data.insert("state".into(), presence.state.into());
                data.insert("activities".into(), presence.activities.clone().into());
                if let Some(n) = &presence.note {
                    data.insert("note".into(), n.clone().into());
                }
                data.insert("timestamp".into(), presence.timestamp.clone().into());
                (account, "presence")
            }
        };
        account_event(dialect, account, None, name, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contacts_keep_unknown_keys_and_default_what_is_missing() {
        let v = json!({"id": "c1", "name": "Bob", "uris": [{"id": "u1", "uri": "sip:bob@x", "type": "sip"}],
                       "presence": {"policy": "allow", "subscribe": true}, "color": "red"});
        let Entry::Contact(c) =
            Entry::from_json(store::addressbook::EntryKind::Contact, &v).unwrap()
        else {
            panic!()
        };
        assert_eq!(c.uris[0].kind.as_deref(), Some("sip"));
        assert!(c.presence.subscribe);
        assert_eq!(c.dialog, EventHandling::default());
        assert_eq!(c.extra["color"], "red");
        let back = Entry::Contact(c).to_json();
        assert_eq!(back["color"], "red");
        assert_eq!(back["uris"][0]["type"], "sip");
        assert!(
            Entry::from_json(store::addressbook::EntryKind::Policy, &json!({"id": "p"})).is_err()
        );
    }

    #[test]
    fn events_in_sylkrtc_2_shape() {
        let e = ContactsEvent::Updated {
            account: "a@x".into(),
            kind: "contact",
            action: "add",
            data: json!({"id": "c1"}),
        };
        assert_eq!(
            e.encode(Dialect::V2),
            json!({"sylkrtc": "account-event", "account": "a@x", "event": "addressbook-updated",
                   "type": "contact", "action": "add", "contact": {"id": "c1"}})
        );
        let p = ContactsEvent::Presence {
            account: "a@x".into(),
            presence: ContactPresence {
                contact: "c1".into(),
                uri: "bob@x".into(),
                state: "open",
                activities: vec!["away".into()],
                note: None,
                timestamp: "2024-01-01T00:00:00Z".into(),
            },
        };
        assert_eq!(
            p.encode(Dialect::V2),
            json!({"sylkrtc": "account-event", "account": "a@x", "event": "presence", "contact": "c1",
                   "uri": "bob@x", "state": "open", "activities": ["away"],
                   "timestamp": "2024-01-01T00:00:00Z"})
        );
        assert_eq!(p.encode(Dialect::V1)["data"]["state"], "open");
    }
}
