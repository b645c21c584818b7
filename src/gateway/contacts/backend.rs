//! Where addressbooks live: the message store's `addressbook` table by default, or the
//! user's XCAP documents when `xcap.root` (or `xcap.domains`) names a server for the
//! account's domain.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use presence::pres_rules::{Ruleset, PRES_RULES_CONTENT_TYPE};
use presence::resource_lists::{ResourceLists, RESOURCE_LISTS_CONTENT_TYPE};
use store::addressbook::{AddressbookEntry, PutMode};
use store::StoreRequest;
use xcap::{
    Credentials, Method, Precondition, RequestId, XcapEvent, XcapRequest, XcapResponse, XcapRoot,
};

use super::xcap_docs::{self, Doc, XcapDocs, RLS_SERVICES_CONTENT_TYPE};
use super::{AddressbookError, Load, Pending};
use crate::gateway::{ClientId, Engines, Gateway};
use crate::sylkrtc::contacts::{Addressbook, Entry, UpdateAction};
use crate::sylkrtc::request::AddressbookUpdate;

/// The XCAP application usages (RFC 4826 section 3.4, RFC 5025 section 9) and the
/// document name under each user's tree.
const LISTS_AUID: &str = "resource-lists";
const RULES_AUID: &str = "pres-rules";
const RLS_AUID: &str = "rls-services";
const DOCUMENT: &str = "index";

/// Where and as whom an AOR's documents are read and written.
struct XcapTarget {
    root: XcapRoot,
    /// The XCAP User Identifier (RFC 4825 section 4): the account's SIP URI.
    xui: String,
    credentials: Credentials,
}

/// An update on its way to the server.
#[derive(Debug)]
struct XcapUpdate {
    aor: Arc<str>,
    client: ClientId,
    transaction: String,
    update: Box<AddressbookUpdate>,
    /// The documents with the update applied, written on success.
    staged: Box<XcapDocs>,
    doc: Doc,
    /// The one re-read and retry after a 409/412 was used.
    retried: bool,
}

/// What an XCAP request is for.
#[derive(Debug)]
enum XcapPending {
    /// One of the two documents of a load.
    Load { aor: Arc<str>, doc: Doc },
    /// The PUT of an update.
    Put(XcapUpdate),
    /// The re-read after a conflict, before the retry.
    Reread(XcapUpdate),
    /// The user's rls-services document, read to see whether it has our service.
    RlsRead { aor: Arc<str> },
    /// The rls-services document written with our service.
    RlsWrite { aor: Arc<str> },
}

/// Whether the RLS can serve an AOR's buddy list (RFC 4662): its rls-services document
/// names the service `sip:<user>-buddies@<domain>` over the URIs the user watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RlsState {
    Checking,
    Ready,
    Refused,
}

/// An AOR's buddy-list service: whether it can be used, and which URIs it lists.
#[derive(Debug)]
struct RlsService {
    state: RlsState,
    /// The URIs (`user@host`) of the last write (or check) begun; a write happens when the
    /// watched ones differ, so an unchanged addressbook costs no request.
    attempted: Vec<Arc<str>>,
    /// A read or write is in flight.
    busy: bool,
}

/// A load collecting its two documents.
#[derive(Debug, Default)]
struct Loading {
    docs: XcapDocs,
    left: u8,
    error: Option<AddressbookError>,
}

/// What the XCAP backend keeps: each AOR's documents as last read or written (with their
/// entity tags), loads collecting their documents, and requests in flight.
#[derive(Debug, Default)]
pub(in crate::gateway) struct XcapBooks {
    docs: HashMap<Arc<str>, XcapDocs>,
    loading: HashMap<Arc<str>, Loading>,
    requests: HashMap<RequestId, XcapPending>,
    rls: HashMap<Arc<str>, RlsService>,
}

impl XcapBooks {
    /// The AOR's book is gone.
    pub(super) fn forget(&mut self, aor: &Arc<str>) {
        self.docs.remove(aor);
        self.rls.remove(aor);
    }

    /// The AOR's rls-services document has our buddy-list service: a list subscription
    /// may be tried.
    pub(super) fn rls_ready(&self, aor: &str) -> bool {
        self.rls.get(aor).map(|r| r.state) == Some(RlsState::Ready)
    }

    /// The AOR's first rls-services check is in flight: whether the list can be used is
    /// not known yet, so presence subscribes to nothing meanwhile (rather than to each
    /// contact, undone a moment later).
    pub(super) fn rls_checking(&self, aor: &str) -> bool {
        self.rls
            .get(aor)
            .is_some_and(|r| r.state == RlsState::Checking && r.busy)
    }

    /// Requests in flight (leak checks).
    pub(super) fn in_flight(&self) -> usize {
        self.requests.len()
    }
}

/// A document answer: its bytes parsed, or none (404), or the refusal.
fn read_doc(
    docs: &mut XcapDocs,
    doc: Doc,
    result: Result<XcapResponse, xcap::XcapError>,
) -> Result<(), AddressbookError> {
    let r = result.map_err(AddressbookError::Xcap)?;
    match (r.status, doc) {
        (404, Doc::Lists) => {
            docs.lists = ResourceLists::default();
            docs.lists_etag = None;
        }
        (404, Doc::Rules) => {
            docs.rules = Ruleset::default();
            docs.rules_etag = None;
        }
        (200, Doc::Lists) => {
            docs.lists = ResourceLists::parse(&r.body).map_err(AddressbookError::BadLists)?;
            docs.lists_etag = r.etag;
        }
        (200, Doc::Rules) => {
            docs.rules = Ruleset::parse(&r.body).map_err(AddressbookError::BadRules)?;
            docs.rules_etag = r.etag;
        }
        (status, _) => return Err(AddressbookError::XcapRefused { status }),
    }
    Ok(())
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
        if self.on_xcap(aor) {
            let target = match self.xcap_target(aor) {
                Ok(t) => t,
                Err(error) => return self.addressbook_loaded(now, aor, Err(error), e),
            };
            self.contacts.xcap.loading.insert(
                Arc::clone(aor),
                Loading {
                    left: 2,
                    ..Loading::default()
                },
            );
            for doc in [Doc::Lists, Doc::Rules] {
                let request = get(&target, doc);
                let submitted = e.xcap.submit(now, request);
                self.xcap_submitted(
                    now,
                    submitted,
                    XcapPending::Load {
                        aor: Arc::clone(aor),
                        doc,
                    },
                    e,
                );
            }
            return;
        }
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
        if self.on_xcap(aor) {
            let mut staged = Box::new(
                self.contacts
                    .xcap
                    .docs
                    .get(aor)
                    .cloned()
                    .unwrap_or_default(),
            );
            match staged.apply(&update) {
                Ok(doc) => {
                    let u = XcapUpdate {
                        aor: Arc::clone(aor),
                        client,
                        transaction,
                        update,
                        staged,
                        doc,
                        retried: false,
                    };
                    self.xcap_put(now, u, e);
                }
                Err(error) => {
                    self.update_applied(now, aor, (client, &transaction), &update, Err(error), e);
                }
            }
            return;
        }
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

/// The GET of one of the user's documents.
fn get(target: &XcapTarget, doc: Doc) -> XcapRequest {
    let auid = match doc {
        Doc::Lists => LISTS_AUID,
        Doc::Rules => RULES_AUID,
    };
    XcapRequest {
        method: Method::Get,
        url: target.root.user_document(auid, &target.xui, DOCUMENT),
        content_type: None,
        body: Vec::new(),
        precondition: Precondition::None,
        credentials: Some(target.credentials.clone()),
    }
}

impl Gateway {
    /// Whether `aor`'s addressbook is on an XCAP server (its domain has a root).
    pub(super) fn on_xcap(&self, aor: &str) -> bool {
        let domain = aor.rsplit_once('@').map_or(aor, |(_, d)| d);
        self.contacts.config.xcap.root_for(domain).is_some()
    }

    /// Where `aor`'s documents are and as whom to ask (one of its accounts' credentials).
    fn xcap_target(&self, aor: &str) -> Result<XcapTarget, AddressbookError> {
        let domain = aor.rsplit_once('@').map_or(aor, |(_, d)| d);
        let root = self
            .contacts
            .config
            .xcap
            .root_for(domain)
            .and_then(|r| XcapRoot::parse(r).ok())
            .ok_or(AddressbookError::Xcap(xcap::XcapError::BadUrl))?;
        let account = self
            .accounts_by_aor
            .get(aor)
            .and_then(|ids| ids.iter().find_map(|id| self.accounts.get(id.0)))
            .ok_or(AddressbookError::NoCredentials)?;
        let identity = account.identity();
        Ok(XcapTarget {
            root,
            xui: format!("sip:{aor}"),
            credentials: Credentials {
                username: identity.user,
                ha1: identity.ha1,
            },
        })
    }

    /// Files a submitted request, or fails what it was for.
    fn xcap_submitted(
        &mut self,
        now: Instant,
        submitted: Result<RequestId, xcap::XcapError>,
        pending: XcapPending,
        e: &mut Engines<'_>,
    ) {
        match submitted {
            Ok(id) => {
                self.contacts.xcap.requests.insert(id, pending);
            }
            Err(err) => self.xcap_answered(now, pending, Err(err), e),
        }
    }

    /// PUTs the staged document of an update, conditional on the ETag read.
    fn xcap_put(&mut self, now: Instant, u: XcapUpdate, e: &mut Engines<'_>) {
        let target = match self.xcap_target(&u.aor) {
            Ok(t) => t,
            Err(error) => {
                let (client, transaction) = (u.client, u.transaction.as_str());
                self.update_applied(now, &u.aor, (client, transaction), &u.update, Err(error), e);
                return;
            }
        };
        let (auid, body, content_type, etag) = match u.doc {
            Doc::Lists => (
                LISTS_AUID,
                u.staged.lists.to_xml(),
                RESOURCE_LISTS_CONTENT_TYPE,
                &u.staged.lists_etag,
            ),
            Doc::Rules => (
                RULES_AUID,
                u.staged.rules.to_xml(),
                PRES_RULES_CONTENT_TYPE,
                &u.staged.rules_etag,
            ),
        };
        // RFC 4825 section 7.11: a write conditional on the version read; a document not
        // there yet is created only if still absent.
        let precondition = match etag {
            Some(tag) => Precondition::IfMatch(tag.clone()),
            None => Precondition::IfNoneMatchAny,
        };
        let request = XcapRequest {
            method: Method::Put,
            url: target.root.user_document(auid, &target.xui, DOCUMENT),
            content_type: Some(content_type.to_owned()),
            body: body.into_bytes(),
            precondition,
            credentials: Some(target.credentials),
        };
        let submitted = e.xcap.submit(now, request);
        self.xcap_submitted(now, submitted, XcapPending::Put(u), e);
    }

    /// The XCAP client finished a request.
    pub(in crate::gateway) fn handle_xcap_event(
        &mut self,
        now: Instant,
        event: XcapEvent,
        e: &mut Engines<'_>,
    ) {
        let XcapEvent::Done { id, result } = event;
        if let Some(pending) = self.contacts.xcap.requests.remove(&id) {
            self.xcap_answered(now, pending, result, e);
        }
    }

    fn xcap_answered(
        &mut self,
        now: Instant,
        pending: XcapPending,
        result: Result<XcapResponse, xcap::XcapError>,
        e: &mut Engines<'_>,
    ) {
        match pending {
            XcapPending::Load { aor, doc } => {
                let Some(l) = self.contacts.xcap.loading.get_mut(&aor) else {
                    return;
                };
                if let Err(err) = read_doc(&mut l.docs, doc, result) {
                    l.error.get_or_insert(err);
                }
                l.left = l.left.saturating_sub(1);
                if l.left > 0 {
                    return;
                }
                let Some(l) = self.contacts.xcap.loading.remove(&aor) else {
                    return;
                };
                let loaded = match l.error {
                    Some(err) => Err(err),
                    None => {
                        let ab = l.docs.addressbook();
                        self.contacts.xcap.docs.insert(Arc::clone(&aor), l.docs);
                        Ok(ab)
                    }
                };
                self.addressbook_loaded(now, &aor, loaded, e);
            }
            XcapPending::Put(mut u) => {
                let outcome = match result {
                    Ok(r) if (200..300).contains(&r.status) => {
                        match u.doc {
                            Doc::Lists => u.staged.lists_etag = r.etag,
                            Doc::Rules => u.staged.rules_etag = r.etag,
                        }
                        Ok(())
                    }
                    // RFC 4825 section 7.11: someone else changed the document. Read it
                    // again, apply the same change to it, and try once more.
                    Ok(r) if matches!(r.status, 409 | 412) && !u.retried => {
                        u.retried = true;
                        log::info!(
                            "contacts: XCAP document of {} changed meanwhile ({}); retrying",
                            u.aor,
                            r.status
                        );
                        match self.xcap_target(&u.aor) {
                            Ok(target) => {
                                let submitted = e.xcap.submit(now, get(&target, u.doc));
                                self.xcap_submitted(now, submitted, XcapPending::Reread(u), e);
                                return;
                            }
                            Err(error) => Err(error),
                        }
                    }
                    Ok(r) if matches!(r.status, 409 | 412) => Err(AddressbookError::XcapConflict),
                    Ok(r) => Err(AddressbookError::XcapRefused { status: r.status }),
                    Err(err) => Err(AddressbookError::Xcap(err)),
                };
                if outcome.is_ok() {
                    let ab = u.staged.addressbook();
                    self.contacts
                        .xcap
                        .docs
                        .insert(Arc::clone(&u.aor), *u.staged);
                    if let Some(book) = self.contacts.books.get_mut(&u.aor) {
                        book.load = Load::Loaded(ab);
                    }
                }
                self.update_applied(
                    now,
                    &u.aor,
                    (u.client, &u.transaction),
                    &u.update,
                    outcome,
                    e,
                );
            }
            XcapPending::RlsRead { aor } => {
                let existing = match result {
                    Ok(r) if r.status == 200 => Some((r.body, r.etag)),
                    Ok(r) if r.status == 404 => None,
                    other => {
                        log::info!("contacts: rls-services of {aor} not read: {other:?}");
                        return self.rls_settled(&aor, RlsState::Refused);
                    }
                };
                let written = self.put_rls_services(now, &aor, existing, e);
                if let Some(state) = written {
                    self.rls_settled(&aor, state);
                }
            }
            XcapPending::RlsWrite { aor } => {
                let state = match result {
                    Ok(r) if (200..300).contains(&r.status) => RlsState::Ready,
                    other => {
                        log::info!("contacts: rls-services of {aor} not written: {other:?}");
                        RlsState::Refused
                    }
                };
                self.rls_settled(&aor, state);
            }
            XcapPending::Reread(mut u) => {
                let mut fresh = self
                    .contacts
                    .xcap
                    .docs
                    .get(&u.aor)
                    .cloned()
                    .unwrap_or_default();
                let applied =
                    read_doc(&mut fresh, u.doc, result).and_then(|()| fresh.apply(&u.update));
                match applied {
                    Ok(_) => {
                        u.staged = Box::new(fresh);
                        self.xcap_put(now, u, e);
                    }
                    Err(err) => {
                        self.update_applied(
                            now,
                            &u.aor,
                            (u.client, &u.transaction),
                            &u.update,
                            Err(err),
                            e,
                        );
                    }
                }
            }
        }
    }
}

impl Gateway {
    /// With `presence.rls` and XCAP, makes sure the AOR's rls-services document (RFC 4826
    /// section 4) has the service its list subscription names, listing exactly `watched`
    /// (the URIs presence watches: contacts whose `presence.subscribe` is false are not the
    /// RLS's business); once there, presence may subscribe to the list (RFC 4662) instead
    /// of each contact. Called whenever presence looks at the AOR; a request goes out only
    /// when the watched URIs differ from those of the last attempt.
    pub(super) fn sync_rls_services(
        &mut self,
        now: Instant,
        aor: &Arc<str>,
        watched: &[Arc<str>],
        e: &mut Engines<'_>,
    ) {
        let presence = &self.contacts.config.presence;
        if !presence.enabled || !presence.rls {
            return;
        }
        let Ok(target) = self.xcap_target(aor) else {
            return;
        };
        let rls = self
            .contacts
            .xcap
            .rls
            .entry(Arc::clone(aor))
            .or_insert_with(|| RlsService {
                state: RlsState::Checking,
                attempted: Vec::new(),
                busy: false,
            });
        // Nothing to watch and no service yet: no document to write.
        let fresh = rls.state == RlsState::Checking && watched.is_empty();
        if rls.busy || fresh || rls.attempted == watched {
            return;
        }
        rls.busy = true;
        rls.attempted = watched.to_vec();
        let request = XcapRequest {
            method: Method::Get,
            url: target.root.user_document(RLS_AUID, &target.xui, DOCUMENT),
            content_type: None,
            body: Vec::new(),
            precondition: Precondition::None,
            credentials: Some(target.credentials),
        };
        let submitted = e.xcap.submit(now, request);
        self.xcap_submitted(
            now,
            submitted,
            XcapPending::RlsRead {
                aor: Arc::clone(aor),
            },
            e,
        );
    }

    /// Writes the rls-services document with our service (listing the URIs of the last
    /// attempt) added to `existing` or changed in it; `Some`: the outcome is known already
    /// (nothing to write, or it cannot be).
    fn put_rls_services(
        &mut self,
        now: Instant,
        aor: &Arc<str>,
        existing: Option<(Vec<u8>, Option<String>)>,
        e: &mut Engines<'_>,
    ) -> Option<RlsState> {
        let Ok(target) = self.xcap_target(aor) else {
            return Some(RlsState::Refused);
        };
        let (user, domain) = aor.split_once('@').unwrap_or((aor, ""));
        let service = format!("sip:{user}-buddies@{domain}");
        let (existing, etag) = match existing {
            Some((body, etag)) => (Some(body), etag),
            None => (None, None),
        };
        let entries: Vec<String> = self
            .contacts
            .xcap
            .rls
            .get(aor)
            .map(|r| r.attempted.iter().map(|u| format!("sip:{u}")).collect())
            .unwrap_or_default();
        let body = match xcap_docs::with_rls_service(existing.as_deref(), &service, &entries) {
            Ok(Some(body)) => body,
            Ok(None) => return Some(RlsState::Ready),
            Err(err) => {
                log::info!("contacts: rls-services of {aor} kept as is: {err:?}");
                return Some(RlsState::Refused);
            }
        };
        let request = XcapRequest {
            method: Method::Put,
            url: target.root.user_document(RLS_AUID, &target.xui, DOCUMENT),
            content_type: Some(RLS_SERVICES_CONTENT_TYPE.to_owned()),
            body: body.into_bytes(),
            // Written over the version read (a conflict leaves list subscriptions off).
            precondition: match (existing.is_some(), etag) {
                (_, Some(tag)) => Precondition::IfMatch(tag),
                (true, None) => Precondition::None,
                (false, None) => Precondition::IfNoneMatchAny,
            },
            credentials: Some(target.credentials),
        };
        let submitted = e.xcap.submit(now, request);
        self.xcap_submitted(
            now,
            submitted,
            XcapPending::RlsWrite {
                aor: Arc::clone(aor),
            },
            e,
        );
        None
    }

    /// The RLS question is answered: presence takes another look (and the service is
    /// written again if the watched URIs changed meanwhile). A service that was usable
    /// stays so when a later write fails: the RLS still serves the list as it was.
    fn rls_settled(&mut self, aor: &Arc<str>, state: RlsState) {
        if let Some(r) = self.contacts.xcap.rls.get_mut(aor) {
            r.busy = false;
            if r.state != RlsState::Ready || state == RlsState::Ready {
                r.state = state;
            }
        }
        self.contacts.mark_dirty(aor);
    }
}
