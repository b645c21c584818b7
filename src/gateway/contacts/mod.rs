//! Contacts (spec sections 6.2, 6.3 and 10; issue 13): the addressbook with SylkServer's
//! requests and events, and presence on the user's behalf.
//!
//! - this file: one [`Book`] per account address (AOR) that is in use: its addressbook
//!   (loaded once, then kept in step with every update), the account instances registered
//!   on their connections (presence is live while any is), and the requests
//!   (`account-fetch-addressbook`, `account-update-addressbook`) queued while the
//!   addressbook loads or another update of the same AOR is under way, so updates apply in
//!   order;
//! - `backend.rs`: where addressbooks live: the message store's tables by default, the
//!   user's XCAP documents when `xcap.root` (or `xcap.domains`) names a server;
//! - `presence.rs`: subscriptions to the contacts whose `presence.subscribe` is true, their
//!   NOTIFYs turned into `presence` events, `account-publish-presence` and the automatic
//!   `busy` during calls.
//!
//! As with messaging, only connections on which the account registered successfully use
//! or see any of it (`Account not authenticated` otherwise).

mod backend;
mod error;
mod presence;
mod xcap_docs;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use sip::publication::PubId;
use sip::stack::AccountIdentity;
use sip::subscription::SubId;
use store::addressbook::EntryKind;
use store::worker::StoreTicket;
use store::{StoreError, StoreResult};

use super::{AccountId, ClientId, Engines, Gateway, GatewayError};
use crate::config::ContactsConfig;
use crate::sylkrtc::contacts::{Addressbook, ContactsEvent, Entry, UpdateAction, UserPresence};
use crate::sylkrtc::request::AddressbookUpdate;
use crate::sylkrtc::Event;

pub use error::AddressbookError;
pub use presence::{ContactsStats, NotifyResult};

/// Requests one AOR may have queued behind a load or an update.
const MAX_WAITING: usize = 64;

/// A request waiting for its AOR's addressbook.
#[derive(Debug)]
enum Waiting {
    Fetch {
        client: ClientId,
        transaction: String,
        /// The addressbook was read again for it (XCAP: other clients write there too).
        reread: bool,
    },
    Update {
        client: ClientId,
        transaction: String,
        update: Box<AddressbookUpdate>,
    },
}

/// Where a book's addressbook is.
#[derive(Debug, Default)]
enum Load {
    /// Not asked for yet.
    #[default]
    Idle,
    /// A load is under way.
    Loading,
    /// In memory, in step with the backend.
    Loaded(Addressbook),
}

/// One watched URI.
#[derive(Debug, Default)]
pub(super) struct Watched {
    /// Its subscription (per-contact mode).
    sub: Option<SubId>,
    /// What we know.
    presence: Option<presence::UriPresence>,
}

/// Everything kept for one AOR in use.
#[derive(Debug, Default)]
pub(super) struct Book {
    /// Account instances registered on their connection, in order.
    members: Vec<AccountId>,
    /// Who subscribes and publishes (the first member's identity).
    identity: Option<AccountIdentity>,
    load: Load,
    /// An update is being applied (the next waits).
    updating: bool,
    /// The loaded addressbook is being read again for a fetch (what waits, waits; presence
    /// keeps using the addressbook as it was until the answer).
    refreshing: bool,
    waiting: VecDeque<Waiting>,
    /// Watched URIs (`user@domain`) and what is known of them.
    watched: HashMap<Arc<str>, Watched>,
    /// The buddy-list subscription (RLS mode), if any.
    list_sub: Option<SubId>,
    /// The RLS did not answer as one: per-contact subscriptions from now on.
    rls_refused: bool,
    /// Calls of the AOR's instances (automatic busy).
    calls: usize,
    /// What the user published last.
    user_state: Option<(UserPresence, Option<String>)>,
    /// The publication and what it carries now.
    publication: Option<PubId>,
    published: Option<presence::Published>,
    /// Ids of our PIDF tuple and person (stable per book).
    pidf_id: String,
    /// Presence needs another look (members, addressbook or calls changed).
    dirty: bool,
}

/// What a store request is for.
#[derive(Debug)]
enum Pending {
    Load {
        aor: Arc<str>,
    },
    Update {
        aor: Arc<str>,
        client: ClientId,
        transaction: String,
        update: Box<AddressbookUpdate>,
    },
}

/// The contacts books.
#[derive(Debug)]
pub(super) struct Contacts {
    config: ContactsConfig,
    books: HashMap<Arc<str>, Book>,
    pending: HashMap<StoreTicket, Pending>,
    /// Subscriptions: whose, and which URI (`None`: the buddy list).
    subs: HashMap<SubId, (Arc<str>, Option<Arc<str>>)>,
    pubs: HashMap<PubId, Arc<str>>,
    /// AORs whose presence needs another look after this input.
    dirty: Vec<Arc<str>>,
    xcap: backend::XcapBooks,
    stats: ContactsStats,
}

impl Contacts {
    pub(super) fn new(config: &ContactsConfig) -> Contacts {
        Contacts {
            config: config.clone(),
            books: HashMap::new(),
            pending: HashMap::new(),
            subs: HashMap::new(),
            pubs: HashMap::new(),
            dirty: Vec::new(),
            xcap: backend::XcapBooks::default(),
            stats: ContactsStats::default(),
        }
    }

    /// Whether `ticket` is one of ours.
    pub(super) fn owns(&self, ticket: &StoreTicket) -> bool {
        self.pending.contains_key(ticket)
    }

    /// Books, store requests and SIP usages kept (leak checks).
    pub(super) fn in_use(&self) -> usize {
        self.books.len()
            + self.pending.len()
            + self.subs.len()
            + self.pubs.len()
            + self.xcap.in_flight()
    }

    pub(super) fn stats(&self) -> &ContactsStats {
        &self.stats
    }

    fn mark_dirty(&mut self, aor: &Arc<str>) {
        if let Some(b) = self.books.get_mut(aor) {
            if !b.dirty {
                b.dirty = true;
                self.dirty.push(Arc::clone(aor));
            }
        }
    }
}

/// The AOR key shared by every map of a book.
fn key(aor: &str) -> Arc<str> {
    Arc::from(aor)
}

impl Gateway {
    /// The addressbook and presence requests.
    pub(super) fn handle_contacts_request(
        &mut self,
        now: Instant,
        client: ClientId,
        transaction: String,
        request: crate::sylkrtc::Request,
        e: &mut Engines<'_>,
    ) {
        use crate::sylkrtc::Request;
        let result = match request {
            Request::AccountFetchAddressbook { account } => self
                .contacts_account(client, account.as_str())
                .and_then(|_| {
                    let fetch = Waiting::Fetch {
                        client,
                        transaction: transaction.clone(),
                        reread: false,
                    };
                    self.queue_contacts(now, account.as_str(), fetch, e)
                }),
            Request::AccountUpdateAddressbook(update) => {
                let aor = update.account.as_str().to_owned();
                self.contacts_account(client, &aor).and_then(|_| {
                    let update = Waiting::Update {
                        client,
                        transaction: transaction.clone(),
                        update,
                    };
                    self.queue_contacts(now, &aor, update, e)
                })
            }
            Request::AccountPublishPresence(p) => {
                let aor = p.account.as_str().to_owned();
                match self.contacts_account(client, &aor) {
                    Ok(id) => {
                        self.publish_user_presence(now, id, p.state, p.note, e);
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            }
            other => {
                log::warn!("unexpected request reached contacts: {other:?}");
                Err(GatewayError::Internal)
            }
        };
        match result {
            // The reply follows the backend's answer.
            Ok(true) => {}
            Ok(false) => self.reply(client, &transaction, Ok(())),
            Err(err) => self.reply(client, &transaction, Err(err)),
        }
    }

    /// The account `aor` of `client`, if it may use contacts (registered on it once).
    fn contacts_account(&self, client: ClientId, aor: &str) -> Result<AccountId, GatewayError> {
        self.messaging_account(client, aor)
    }

    /// Queues a request for `aor`'s addressbook and runs what can run. Returns `Ok(true)`:
    /// the reply comes later.
    fn queue_contacts(
        &mut self,
        now: Instant,
        aor: &str,
        request: Waiting,
        e: &mut Engines<'_>,
    ) -> Result<bool, GatewayError> {
        let k = key(aor);
        let book = self.contacts.books.entry(Arc::clone(&k)).or_default();
        if book.waiting.len() >= MAX_WAITING {
            return Err(GatewayError::AddressbookBusy);
        }
        book.waiting.push_back(request);
        self.run_contacts(now, &k, e);
        Ok(true)
    }

    /// Loads `aor`'s addressbook if needed, then answers what waits, in order.
    fn run_contacts(&mut self, now: Instant, aor: &Arc<str>, e: &mut Engines<'_>) {
        loop {
            let Some(book) = self.contacts.books.get_mut(aor) else {
                return;
            };
            match book.load {
                Load::Loading => return,
                Load::Idle => {
                    book.load = Load::Loading;
                    // Its answer (or a refusal right away) runs what waits; looping here
                    // would ask again and again of a store that refuses.
                    self.load_addressbook(now, aor, e);
                    return;
                }
                Load::Loaded(_) => {}
            }
            if book.updating || book.refreshing {
                return;
            }
            let Some(next) = book.waiting.pop_front() else {
                self.maybe_drop_book(aor);
                return;
            };
            match next {
                // XCAP documents may have been changed by other clients since they were
                // read: a fetch reads them again (the store has no other writer).
                Waiting::Fetch {
                    client,
                    transaction,
                    reread: false,
                } if self.on_xcap(aor) => {
                    if let Some(book) = self.contacts.books.get_mut(aor) {
                        book.waiting.push_front(Waiting::Fetch {
                            client,
                            transaction,
                            reread: true,
                        });
                        book.refreshing = true;
                    }
                    self.load_addressbook(now, aor, e);
                    return;
                }
                Waiting::Fetch {
                    client,
                    transaction,
                    ..
                } => self.answer_fetch(client, &transaction, aor),
                Waiting::Update {
                    client,
                    transaction,
                    update,
                } => self.start_update(now, aor, client, transaction, update, e),
            }
        }
    }

    /// A load finished (`Err`: it failed; what waits gets the error).
    fn addressbook_loaded(
        &mut self,
        now: Instant,
        aor: &Arc<str>,
        result: Result<Addressbook, AddressbookError>,
        e: &mut Engines<'_>,
    ) {
        let Some(book) = self.contacts.books.get_mut(aor) else {
            return;
        };
        let refreshed = std::mem::take(&mut book.refreshing);
        match result {
            Ok(ab) => {
                book.load = Load::Loaded(ab);
                self.contacts.mark_dirty(aor);
                self.run_contacts(now, aor, e);
            }
            Err(why) => {
                log::warn!("contacts: addressbook of {aor} not loaded: {why}");
                // A failed re-read keeps what was loaded (presence goes on with it).
                if !refreshed {
                    book.load = Load::Idle;
                }
                let waiting: Vec<Waiting> = book.waiting.drain(..).collect();
                for w in waiting {
                    let (client, transaction) = match w {
                        Waiting::Fetch {
                            client,
                            transaction,
                            ..
                        }
                        | Waiting::Update {
                            client,
                            transaction,
                            ..
                        } => (client, transaction),
                    };
                    self.reply(
                        client,
                        &transaction,
                        Err(GatewayError::AddressbookUnavailable(why.clone())),
                    );
                }
                self.maybe_drop_book(aor);
            }
        }
    }

    /// `account-fetch-addressbook`: ack, `addressbook-fetched`, then the presence snapshot.
    fn answer_fetch(&mut self, client: ClientId, transaction: &str, aor: &Arc<str>) {
        let Some(Book {
            load: Load::Loaded(ab),
            ..
        }) = self.contacts.books.get(aor)
        else {
            return;
        };
        let event = Event::Contacts(ContactsEvent::Fetched {
            account: aor.to_string(),
            addressbook: ab.to_json(),
        });
        self.reply(client, transaction, Ok(()));
        self.send_event(client, &event);
        self.send_presence_snapshot(client, aor);
    }

    /// Applies one update to the backend; its result ends it.
    fn start_update(
        &mut self,
        now: Instant,
        aor: &Arc<str>,
        client: ClientId,
        transaction: String,
        update: Box<AddressbookUpdate>,
        e: &mut Engines<'_>,
    ) {
        let max = self.contacts.config.addressbook.max_entries;
        let Some(Book {
            load: Load::Loaded(ab),
            ..
        }) = self.contacts.books.get(aor)
        else {
            return;
        };
        let problem = check_update(ab, &update, max);
        if let Some(error) = problem {
            self.update_done(client, &transaction, aor, &update, Err(error));
            return;
        }
        if let Some(book) = self.contacts.books.get_mut(aor) {
            book.updating = true;
        }
        self.apply_update(now, aor, client, transaction, update, e);
    }

    /// An update's backend result: the cache follows, the events go out, the next waits.
    fn update_applied(
        &mut self,
        now: Instant,
        aor: &Arc<str>,
        (client, transaction): (ClientId, &str),
        update: &AddressbookUpdate,
        result: Result<(), AddressbookError>,
        e: &mut Engines<'_>,
    ) {
        if let Some(book) = self.contacts.books.get_mut(aor) {
            book.updating = false;
            if result.is_ok() {
                if let Load::Loaded(ab) = &mut book.load {
                    apply_to(ab, update);
                }
            }
        }
        if result.is_ok() {
            self.contacts.mark_dirty(aor);
        }
        self.update_done(client, transaction, aor, update, result);
        self.run_contacts(now, aor, e);
    }

    /// Tells the requester (and, on success, the account's other connections).
    fn update_done(
        &mut self,
        client: ClientId,
        transaction: &str,
        aor: &Arc<str>,
        update: &AddressbookUpdate,
        result: Result<(), AddressbookError>,
    ) {
        let kind = update.kind.as_str();
        let action = update.action.as_str();
        match result {
            Ok(()) => {
                let data = match &update.entry {
                    Some(entry) => entry.to_json(),
                    None => serde_json::json!({ "id": update.id }),
                };
                let event = Event::Contacts(ContactsEvent::Updated {
                    account: aor.to_string(),
                    kind,
                    action,
                    data,
                });
                self.reply(client, transaction, Ok(()));
                self.send_event(client, &event);
                // SylkServer forks the change to the account's other connections.
                for other in self.authenticated_clients(aor) {
                    if other != client {
                        self.send_event(other, &event);
                    }
                }
            }
            Err(error) => {
                self.contacts.stats.update_failed();
                log::info!(
                    "contacts: {action} {kind} {} of {aor} failed: {error}",
                    update.id
                );
                let event = Event::Contacts(ContactsEvent::UpdateFailed {
                    account: aor.to_string(),
                    kind,
                    action,
                    error: error.to_string(),
                    id: update.id.clone(),
                });
                // SylkServer: the failure event, then the ack (the request itself was fine).
                self.send_event(client, &event);
                self.reply(client, transaction, Ok(()));
            }
        }
    }

    /// A store result of ours.
    pub(super) fn handle_contacts_store_result(
        &mut self,
        now: Instant,
        ticket: StoreTicket,
        result: Result<StoreResult, StoreError>,
        e: &mut Engines<'_>,
    ) {
        let Some(pending) = self.contacts.pending.remove(&ticket) else {
            return;
        };
        match pending {
            Pending::Load { aor } => {
                let loaded = match result {
                    Ok(StoreResult::Addressbook(entries)) => Ok(backend::from_store(&entries)),
                    Ok(_) => Err(AddressbookError::UnexpectedAnswer),
                    Err(err) => Err(AddressbookError::Store(err)),
                };
                self.addressbook_loaded(now, &aor, loaded, e);
            }
            Pending::Update {
                aor,
                client,
                transaction,
                update,
            } => {
                let outcome = match (result, update.action) {
                    (Ok(StoreResult::Changed(0)), UpdateAction::Add) => {
                        Err(AddressbookError::Exists {
                            kind: update.kind,
                            id: update.id.clone(),
                        })
                    }
                    (Ok(StoreResult::Changed(0)), _) => Err(AddressbookError::Unknown {
                        kind: update.kind,
                        id: update.id.clone(),
                    }),
                    (Ok(_), _) => Ok(()),
                    (Err(err), _) => Err(AddressbookError::Store(err)),
                };
                self.update_applied(now, &aor, (client, &transaction), &update, outcome, e);
            }
        }
    }

    /// An account instance registered on its connection: presence for its AOR goes live.
    pub(super) fn contacts_member_registered(&mut self, account: AccountId) {
        let Some(a) = self.accounts.get(account.0) else {
            return;
        };
        if !self.contacts.config.presence.enabled {
            return;
        }
        let k = key(a.aor.as_str());
        let identity = a.identity();
        let book = self.contacts.books.entry(Arc::clone(&k)).or_default();
        if book.members.contains(&account) {
            return;
        }
        book.members.push(account);
        if book.identity.is_none() {
            book.identity = Some(identity);
        }
        if book.pidf_id.is_empty() {
            book.pidf_id = self.rng.token(10);
        }
        self.contacts.mark_dirty(&k);
    }

    /// An account instance unregistered, was removed or lost its connection.
    pub(super) fn contacts_member_gone(&mut self, account: AccountId) {
        let Some(a) = self.accounts.get(account.0) else {
            return;
        };
        let k = key(a.aor.as_str());
        let Some(book) = self.contacts.books.get_mut(&k) else {
            return;
        };
        let before = book.members.len();
        book.members.retain(|m| *m != account);
        if book.members.len() != before {
            if book.members.is_empty() {
                book.identity = None;
            }
            self.contacts.mark_dirty(&k);
        }
    }

    /// After every input: presence of the books that changed follows (subscriptions,
    /// publication), and books nobody uses any more go.
    pub(super) fn flush_contacts(&mut self, now: Instant, e: &mut Engines<'_>) {
        while let Some(aor) = self.contacts.dirty.pop() {
            if let Some(book) = self.contacts.books.get_mut(&aor) {
                book.dirty = false;
            }
            let members = self.contacts.books.get(&aor).map_or(0, |b| b.members.len());
            if members > 0 {
                let loaded = matches!(
                    self.contacts.books.get(&aor).map(|b| &b.load),
                    Some(Load::Loaded(_))
                );
                if !loaded {
                    self.run_contacts(now, &aor, e);
                }
            }
            self.sync_presence(now, &aor, e);
            self.maybe_drop_book(&aor);
        }
    }

    /// Drops a book that has nothing left: no member, nothing waiting or in flight, no
    /// subscription or publication.
    fn maybe_drop_book(&mut self, aor: &Arc<str>) {
        let idle = self.contacts.books.get(aor).is_some_and(|b| {
            b.members.is_empty()
                && b.waiting.is_empty()
                && !b.updating
                && !b.refreshing
                && !matches!(b.load, Load::Loading)
                && b.publication.is_none()
                && b.list_sub.is_none()
                && b.watched.values().all(|w| w.sub.is_none())
                && b.calls == 0
        });
        if idle {
            self.contacts.books.remove(aor);
            self.contacts.xcap.forget(aor);
        }
    }
}

/// Why an update cannot be made, checked against the loaded addressbook.
fn check_update(
    ab: &Addressbook,
    update: &AddressbookUpdate,
    max: usize,
) -> Option<AddressbookError> {
    let exists = match update.kind {
        EntryKind::Contact => ab.contacts.iter().any(|c| c.id == update.id),
        EntryKind::Group => ab.groups.iter().any(|g| g.id == update.id),
        EntryKind::Policy => ab.policies.iter().any(|p| p.id == update.id),
    };
    let (kind, id) = (update.kind, update.id.clone());
    match update.action {
        UpdateAction::Add if exists => Some(AddressbookError::Exists { kind, id }),
        UpdateAction::Add if ab.contacts.len() + ab.groups.len() + ab.policies.len() >= max => {
            Some(AddressbookError::Full { max })
        }
        UpdateAction::Update | UpdateAction::Delete if !exists => {
            Some(AddressbookError::Unknown { kind, id })
        }
        _ => None,
    }
}

/// The addressbook after `update` (checked, and applied by the backend).
fn apply_to(ab: &mut Addressbook, update: &AddressbookUpdate) {
    let id = update.id.as_str();
    match (update.action, &update.entry) {
        (UpdateAction::Delete, _) => match update.kind {
            EntryKind::Contact => ab.contacts.retain(|c| c.id != id),
            EntryKind::Group => ab.groups.retain(|g| g.id != id),
            EntryKind::Policy => ab.policies.retain(|p| p.id != id),
        },
        (_, Some(Entry::Contact(c))) => {
            replace_or_push(&mut ab.contacts, c.clone(), |x| x.id == id)
        }
        (_, Some(Entry::Group(g))) => replace_or_push(&mut ab.groups, g.clone(), |x| x.id == id),
        (_, Some(Entry::Policy(p))) => replace_or_push(&mut ab.policies, p.clone(), |x| x.id == id),
        (_, None) => {}
    }
}

fn replace_or_push<T>(list: &mut Vec<T>, item: T, same: impl Fn(&T) -> bool) {
    match list.iter_mut().find(|x| same(x)) {
        Some(slot) => *slot = item,
        None => list.push(item),
    }
}
