//! Where addressbooks live: the message store's `addressbook` table by default, or the
//! user's XCAP documents when `xcap.root` (or `xcap.domains`) names a server for the
//! account's domain.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use store::addressbook::{AddressbookEntry, PutMode};
use store::StoreRequest;

use super::{AddressbookError, Pending};
use crate::gateway::{ClientId, Engines, Gateway};
use crate::sylkrtc::contacts::{Addressbook, Entry, UpdateAction};
use crate::sylkrtc::request::AddressbookUpdate;

/// What the XCAP backend keeps per AOR (entity-tags of the documents last read).
#[derive(Debug, Default)]
pub(in crate::gateway) struct XcapBooks {
    etags: HashMap<Arc<str>, ()>,
}

impl XcapBooks {
    /// The AOR's book is gone.
    pub(super) fn forget(&mut self, aor: &Arc<str>) {
        self.etags.remove(aor);
    }
}

/// An addressbook from the store's entries (entries that no longer parse are skipped).
pub(super) fn from_store(entries: &[AddressbookEntry]) -> Addressbook {
    let mut ab = Addressbook::default();
    for e in entries {
        let parsed = serde_json::from_str::<serde_json::Value>(&e.data)
            .map_err(|err| err.to_string())
            .and_then(|v| Entry::from_json(e.kind, &v).map_err(|err| err.to_string()));
        match parsed {
            Ok(Entry::Contact(c)) => ab.contacts.push(c),
            Ok(Entry::Group(g)) => ab.groups.push(g),
            Ok(Entry::Policy(p)) => ab.policies.push(p),
            Err(err) => log::warn!(
                "contacts: stored {} {} skipped: {err}",
                e.kind.as_str(),
                e.id
            ),
        }
    }
    ab
}

impl Gateway {
    /// Starts loading `aor`'s addressbook; [`Gateway::addressbook_loaded`] follows.
    pub(super) fn load_addressbook(&mut self, now: Instant, aor: &Arc<str>, e: &mut Engines<'_>) {
        let request = StoreRequest::AddressbookFetch {
            account: aor.to_string(),
        };
        match e.store.submit(request) {
            Ok(ticket) => {
                self.contacts.pending.insert(
                    ticket,
                    Pending::Load {
                        aor: Arc::clone(aor),
                    },
                );
            }
            Err(err) => self.addressbook_loaded(now, aor, Err(AddressbookError::Store(err)), e),
        }
    }

    /// Applies a checked update to the backend; [`Gateway::update_applied`] follows.
    pub(super) fn apply_update(
        &mut self,
        now: Instant,
        aor: &Arc<str>,
        client: ClientId,
        transaction: String,
        update: Box<AddressbookUpdate>,
        e: &mut Engines<'_>,
    ) {
        let request = match (&update.entry, update.action) {
            (_, UpdateAction::Delete) | (None, _) => StoreRequest::AddressbookDelete {
                account: aor.to_string(),
                kind: update.kind,
                id: update.id.clone(),
            },
            (Some(entry), action) => StoreRequest::AddressbookPut {
                account: aor.to_string(),
                kind: entry.kind(),
                id: update.id.clone(),
                data: entry.to_json().to_string(),
                mode: if action == UpdateAction::Add {
                    PutMode::Insert
                } else {
                    PutMode::Update
                },
            },
        };
        match e.store.submit(request) {
            Ok(ticket) => {
                self.contacts.pending.insert(
                    ticket,
                    Pending::Update {
                        aor: Arc::clone(aor),
                        client,
                        transaction,
                        update,
                    },
                );
            }
            Err(err) => {
                let error = AddressbookError::Store(err);
                self.update_applied(now, aor, (client, &transaction), &update, Err(error), e);
            }
        }
    }
}
