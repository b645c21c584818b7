//! The addressbook's part of the store, used when no XCAP server is configured: contacts,
//! groups and policies of each account, each kept as its sylkRTC JSON object (the gateway
//! validates them; the store does not look inside), in the order they were added.

/// Which kind of addressbook entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A contact.
    Contact,
    /// A group.
    Group,
    /// A policy.
    Policy,
}

impl EntryKind {
    /// `contact`, `group`, `policy` (sylkRTC's `type` values and the database's).
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Contact => "contact",
            EntryKind::Group => "group",
            EntryKind::Policy => "policy",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<EntryKind> {
        Some(match s {
            "contact" => EntryKind::Contact,
            "group" => EntryKind::Group,
            "policy" => EntryKind::Policy,
            _ => return None,
        })
    }
}

/// How a put treats an existing entry with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Only a new id (`add`): an existing one changes nothing.
    Insert,
    /// Only an existing id (`update`): a missing one changes nothing.
    Update,
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressbookEntry {
    /// Its kind.
    pub kind: EntryKind,
    /// Its id (unique per account and kind).
    pub id: String,
    /// Its JSON object, as text.
    pub data: String,
}
