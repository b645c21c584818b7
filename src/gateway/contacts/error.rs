//! Why an addressbook could not be loaded or changed: one enum for the checks against the
//! loaded addressbook and the backend's answers alike, rendered once, as the text of
//! `addressbook-update-failed` and of the `error` that answers a fetch.

use std::fmt;

use store::addressbook::EntryKind;
use store::StoreError;

use crate::gateway::GatewayError;

/// Why an addressbook request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressbookError {
    /// `add` of an id that exists already.
    Exists {
        /// Contact, group or policy.
        kind: EntryKind,
        /// The id.
        id: String,
    },
    /// `add` beyond `addressbook.max_entries`.
    Full {
        /// The limit.
        max: usize,
    },
    /// `update` or `delete` of an id that does not exist.
    Unknown {
        /// Contact, group or policy.
        kind: EntryKind,
        /// The id.
        id: String,
    },
    /// The store refused or failed.
    Store(StoreError),
    /// The store answered something other than what was asked (a bug, reported, not hidden).
    UnexpectedAnswer,
    /// The XCAP server could not be asked (unreachable, timeout, bad answer, credentials).
    Xcap(xcap::XcapError),
    /// No account of the AOR is here to authenticate to the XCAP server with.
    NoCredentials,
    /// The XCAP server refused a request with this status.
    XcapRefused {
        /// The HTTP status.
        status: u16,
    },
    /// The document changed under us again after one re-read and retry (409 or 412).
    XcapConflict,
    /// The user's `resource-lists` document does not parse.
    BadLists(presence::resource_lists::ListsError),
    /// The user's `pres-rules` document does not parse.
    BadRules(presence::pres_rules::RulesError),
}

impl fmt::Display for AddressbookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressbookError::Exists { kind, id } => {
                write!(f, "{} {id} already exists", capital(kind.as_str()))
            }
            AddressbookError::Full { max } => {
                write!(f, "Addressbook full (at most {max} entries)")
            }
            AddressbookError::Unknown { kind, id } => write!(f, "Unknown {} {id}", kind.as_str()),
            AddressbookError::Store(e) => fmt::Display::fmt(&GatewayError::Store(e.clone()), f),
            AddressbookError::UnexpectedAnswer => f.write_str("Unexpected answer of the store"),
            AddressbookError::Xcap(e) => write!(f, "{e}"),
            AddressbookError::NoCredentials => {
                f.write_str("No account to authenticate to the XCAP server")
            }
            AddressbookError::XcapRefused { status } => {
                write!(f, "XCAP server refused the request ({status})")
            }
            AddressbookError::XcapConflict => {
                f.write_str("XCAP document changed by another client; try again")
            }
            AddressbookError::BadLists(e) => write!(f, "XCAP {e}"),
            AddressbookError::BadRules(e) => write!(f, "XCAP {e}"),
        }
    }
}

impl std::error::Error for AddressbookError {}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
