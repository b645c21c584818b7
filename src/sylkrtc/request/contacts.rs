//! Addressbook requests (spec section 6.2: `account-fetch-addressbook`,
//! `account-update-addressbook`, validated as SylkServer's `models/xcap.py` does) and our
//! presence extension `account-publish-presence`.

use serde_json::Value;

use super::{Fields, RequestError};
use crate::sylkrtc::aor::Aor;
use crate::sylkrtc::contacts::{Entry, UpdateAction, UserPresence};
use crate::sylkrtc::fields::invalid;
use store::addressbook::EntryKind;

/// Longest entry id accepted.
pub const MAX_ID_LEN: usize = 256;
/// Longest presence note accepted, in characters.
pub const MAX_NOTE_CHARS: usize = 1024;

/// `account-update-addressbook`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressbookUpdate {
    /// The account.
    pub account: Aor,
    /// Add, update or delete.
    pub action: UpdateAction,
    /// Contact, group or policy.
    pub kind: EntryKind,
    /// The entry's id.
    pub id: String,
    /// The entry (add and update; a delete needs only the id).
    pub entry: Option<Entry>,
}

/// `account-publish-presence` (our extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishPresence {
    /// The account.
    pub account: Aor,
    /// The state.
    pub state: UserPresence,
    /// A note for watchers.
    pub note: Option<String>,
}

pub(super) fn update(f: &Fields<'_>) -> Result<AddressbookUpdate, RequestError> {
    let account = f.aor("account")?;
    let action = match f.one_of("action", &["add", "update", "delete"])? {
        "add" => UpdateAction::Add,
        "update" => UpdateAction::Update,
        _ => UpdateAction::Delete,
    };
    let kind_name = f.one_of("type", &["contact", "group", "policy"])?;
    let kind = EntryKind::parse(kind_name).unwrap_or(EntryKind::Contact);
    let data = f
        .map
        .get("data")
        .filter(|v| !v.is_null())
        .ok_or(RequestError::MissingField {
            request: f.request,
            field: "data",
        })?;
    let expected = match kind {
        EntryKind::Contact => "a contact object",
        EntryKind::Group => "a group object",
        EntryKind::Policy => "a policy object",
    };
    let (id, entry) = match (action, data) {
        // sylkrtc.js deletes groups and policies by id alone.
        (UpdateAction::Delete, Value::String(id)) => (id.clone(), None),
        (UpdateAction::Delete, Value::Object(m)) => match m.get("id") {
            Some(Value::String(id)) => (id.clone(), None),
            _ => return Err(invalid("data", data, "an object with a string id")),
        },
        (_, Value::Object(_)) => {
            let entry = Entry::from_json(kind, data).map_err(|e| RequestError::InvalidField {
                field: "data",
                value: shorten(&e.to_string()),
                expected,
            })?;
            (entry.id().to_owned(), Some(entry))
        }
        _ => return Err(invalid("data", data, expected)),
    };
    if id.is_empty() || id.len() > MAX_ID_LEN || id.contains(['\r', '\n']) {
        return Err(invalid(
            "data",
            &Value::from(id),
            "an id of 1 to 256 characters",
        ));
    }
    Ok(AddressbookUpdate {
        account,
        action,
        kind,
        id,
        entry,
    })
}

pub(super) fn publish_presence(f: &Fields<'_>) -> Result<PublishPresence, RequestError> {
    let account = f.aor("account")?;
    let state = f.one_of("state", &["online", "away", "busy", "offline"])?;
    let note = f.opt_str("note")?.map(str::to_owned);
    if note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
    {
        return Err(invalid(
            "note",
            &Value::from("..."),
            "a note of at most 1024 characters",
        ));
    }
    Ok(PublishPresence {
        account,
        state: UserPresence::parse(state).unwrap_or(UserPresence::Online),
        note,
    })
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(120).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}
