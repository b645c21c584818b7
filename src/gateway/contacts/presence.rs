//! Presence on the user's behalf: one subscription (RFC 3856) per watched contact URI, or
//! one to the buddy list through an RLS (RFC 4662); NOTIFY bodies (PIDF, or RLMI with PIDF
//! parts) turned into `presence` events for every contact with that URI; the user's own
//! state published (RFC 3903) from `account-publish-presence`, with `busy`
//! (`on-the-phone`) while the account has a call.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use ::presence::pidf::{Basic, PidfBuilder, Presence, PIDF_CONTENT_TYPE};
use ::presence::rlmi::{self, InstanceState};
use sip::publication::{PublicationStatus, PublishParams};
use sip::stack::{IncomingRequestId, SipEvent};
use sip::subscription::{
    EventPackage, SubId, SubscribeParams, SubscriptionEvent, SubscriptionState, SubscriptionStatus,
};

use super::{key, Book, Load};
use crate::gateway::{AccountId, ClientId, Engines, Gateway};
use crate::sylkrtc::contacts::{Addressbook, ContactPresence, ContactsEvent, UserPresence};
use crate::sylkrtc::Event;

/// What is known of one watched URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UriPresence {
    basic: Basic,
    activities: Vec<String>,
    note: Option<String>,
    timestamp: String,
}

/// The document published now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::gateway) struct Published {
    open: bool,
    activities: Vec<&'static str>,
    note: Option<String>,
}

/// What became of a NOTIFY (metric labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyResult {
    /// Accepted (a state, or none to apply).
    Ok,
    /// Its body does not parse (400).
    BadBody,
    /// Its body is over `presence.max_notify_size` (413).
    TooLarge,
    /// Its Content-Type is not one we asked for (415).
    Unsupported,
}

impl NotifyResult {
    /// Every result, in label order.
    pub const ALL: [NotifyResult; 4] = [
        NotifyResult::Ok,
        NotifyResult::BadBody,
        NotifyResult::TooLarge,
        NotifyResult::Unsupported,
    ];

    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyResult::Ok => "ok",
            NotifyResult::BadBody => "bad_body",
            NotifyResult::TooLarge => "too_large",
            NotifyResult::Unsupported => "unsupported",
        }
    }
}

/// Counters of contacts and presence (metrics).
#[derive(Debug, Clone, Default)]
pub struct ContactsStats {
    notifies: [u64; 4],
    presence_events: u64,
    publish_ok: u64,
    publish_failed: u64,
    updates_failed: u64,
    subscriptions_refused: u64,
}

impl ContactsStats {
    /// NOTIFYs by result.
    pub fn notifies(&self, r: NotifyResult) -> u64 {
        self.notifies[r as usize]
    }

    /// `presence` events sent.
    pub fn presence_events(&self) -> u64 {
        self.presence_events
    }

    /// PUBLISHes accepted / refused.
    pub fn publishes(&self) -> (u64, u64) {
        (self.publish_ok, self.publish_failed)
    }

    /// `addressbook-update-failed` sent.
    pub fn updates_failed(&self) -> u64 {
        self.updates_failed
    }

    /// Contact URIs not watched: over the per-account limit, or not a SIP address.
    pub fn subscriptions_refused(&self) -> u64 {
        self.subscriptions_refused
    }

    pub(super) fn update_failed(&mut self) {
        self.updates_failed += 1;
    }
}

/// `user@host[:port]` of a SIP URI (`sip:`, `sips:` or bare; parameters dropped); `None`
/// for other schemes (`tel:`, `mailto:`) and anything that is not an address.
pub(super) fn sip_target(uri: &str) -> Option<String> {
    let u = uri.trim().trim_start_matches('<').trim_end_matches('>');
    // A scheme is a token before the first ':' that comes before any '@'.
    let scheme_end = u.find(':').filter(|&i| u.find('@').is_none_or(|at| i < at));
    let rest = match scheme_end {
        Some(i) if u[..i].eq_ignore_ascii_case("sip") || u[..i].eq_ignore_ascii_case("sips") => {
            &u[i + 1..]
        }
        Some(_) => return None,
        None => u,
    };
    let rest = rest.split([';', '?', '>']).next().unwrap_or_default();
    let (user, host) = rest.rsplit_once('@')?;
    let ok =
        |s: &str| !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || "<>\"".contains(c));
    (ok(user) && ok(host)).then(|| format!("{user}@{}", host.to_ascii_lowercase()))
}

/// The URIs to watch: every SIP URI of every contact with `presence.subscribe`, first
/// come first served up to `max`; the number left out comes second.
fn watch_targets(ab: &Addressbook, max: usize) -> (Vec<Arc<str>>, usize) {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut left_out = 0;
    for c in ab.contacts.iter().filter(|c| c.presence.subscribe) {
        for u in &c.uris {
            let Some(t) = sip_target(&u.uri) else {
                continue;
            };
            if seen.contains(&t) {
                continue;
            }
            if out.len() >= max {
                left_out += 1;
                continue;
            }
            seen.insert(t.clone());
            out.push(Arc::from(t));
        }
    }
    (out, left_out)
}

/// What the account should publish now: the user's state, `busy`/`on-the-phone` during a
/// call (`presence.auto_busy`; not over an explicit `offline`); nothing when neither asks.
fn desired(book: &Book, auto_busy: bool) -> Option<Published> {
    let on_call = auto_busy && book.calls > 0;
    let (state, note) = match &book.user_state {
        Some((s, n)) => (Some(*s), n.clone()),
        None => (None, None),
    };
    let (open, activities): (bool, Vec<&'static str>) = match (state, on_call) {
        (Some(UserPresence::Offline), _) => (false, vec![]),
        (_, true) => (true, vec!["busy", "on-the-phone"]),
        (Some(UserPresence::Online), false) => (true, vec![]),
        (Some(UserPresence::Away), false) => (true, vec!["away"]),
        (Some(UserPresence::Busy), false) => (true, vec!["busy"]),
        (None, false) => return None,
    };
    Some(Published {
        open,
        activities,
        note,
    })
}

impl Gateway {
    /// Brings `aor`'s subscriptions and publication in line with its members, addressbook
    /// and calls.
    pub(super) fn sync_presence(&mut self, now: Instant, aor: &Arc<str>, e: &mut Engines<'_>) {
        let config = self.contacts.config.presence.clone();
        let Some(book) = self.contacts.books.get(aor) else {
            return;
        };
        let live = config.enabled && !book.members.is_empty() && book.identity.is_some();
        let (targets, left_out) = match (&book.load, live) {
            (Load::Loaded(ab), true) => watch_targets(ab, config.max_subscriptions_per_account),
            _ => (Vec::new(), 0),
        };
        if live && matches!(book.load, Load::Loaded(_)) {
            self.sync_rls_services(now, aor, &targets, e);
        }
        // The list exists at the RLS only once the user's rls-services document names it.
        let use_rls = config.rls && self.contacts.xcap.rls_ready(aor);
        let rls_checking = config.rls && self.contacts.xcap.rls_checking(aor);
        let Some(book) = self.contacts.books.get_mut(aor) else {
            return;
        };
        if left_out > 0 {
            self.contacts.stats.subscriptions_refused += left_out as u64;
            log::warn!(
                "presence: {aor}: {left_out} contact URIs not watched \
                 (presence.max_subscriptions_per_account = {})",
                config.max_subscriptions_per_account
            );
        }
        let wanted: HashSet<&Arc<str>> = targets.iter().collect();
        let list_mode = use_rls && !book.rls_refused && !targets.is_empty();
        // URIs no longer watched go, with their subscriptions.
        let gone: Vec<Arc<str>> = book
            .watched
            .keys()
            .filter(|u| !wanted.contains(u))
            .cloned()
            .collect();
        let mut stop: Vec<SubId> = Vec::new();
        for u in gone {
            if let Some(w) = book.watched.remove(&u) {
                stop.extend(w.sub);
            }
        }
        if list_mode {
            stop.extend(book.watched.values_mut().filter_map(|w| w.sub.take()));
        } else if let Some(l) = book.list_sub.take() {
            stop.push(l);
        }
        for u in &targets {
            book.watched.entry(Arc::clone(u)).or_default();
        }
        let identity = book.identity.clone();
        for sub in stop {
            e.sip.unsubscribe(now, sub);
        }
        let Some(identity) = identity.filter(|_| live && !rls_checking) else {
            self.sync_publication(now, aor, e);
            return;
        };
        let mut started: Vec<(SubId, Option<Arc<str>>)> = Vec::new();
        // Unsubscribing above does not touch the books, so the book is still there.
        let Some(book) = self.contacts.books.get_mut(aor) else {
            return;
        };
        if list_mode {
            if book.list_sub.is_none() {
                let (user, domain) = aor.split_once('@').unwrap_or((aor, ""));
                let params = SubscribeParams {
                    target: format!("{user}-buddies@{domain}"),
                    package: EventPackage::PresenceList,
                    expires: config.subscribe_expires,
                };
                match e.sip.subscribe(now, &identity, params) {
                    Ok(sub) => {
                        book.list_sub = Some(sub);
                        started.push((sub, None));
                    }
                    Err(err) => log::warn!("presence: {aor}: no list subscription: {err}"),
                }
            }
        } else {
            for u in &targets {
                let Some(w) = book.watched.get_mut(u) else {
                    continue;
                };
                if w.sub.is_some() {
                    continue;
                }
                let params = SubscribeParams {
                    target: u.to_string(),
                    package: EventPackage::Presence,
                    expires: config.subscribe_expires,
                };
                match e.sip.subscribe(now, &identity, params) {
                    Ok(sub) => {
                        w.sub = Some(sub);
                        started.push((sub, Some(Arc::clone(u))));
                    }
                    Err(err) => {
                        self.contacts.stats.subscriptions_refused += 1;
                        log::info!("presence: {aor}: {u} not watched: {err}");
                    }
                }
            }
        }
        for (sub, uri) in started {
            self.contacts.subs.insert(sub, (Arc::clone(aor), uri));
        }
        self.sync_publication(now, aor, e);
    }

    /// Publishes, changes or removes the account's state to match [`desired`].
    fn sync_publication(&mut self, now: Instant, aor: &Arc<str>, e: &mut Engines<'_>) {
        let auto_busy = self.contacts.config.presence.auto_busy;
        let expires = self.contacts.config.presence.publish_expires;
        let wall_ms = self
            .wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let Some(book) = self.contacts.books.get_mut(aor) else {
            return;
        };
        let live = !book.members.is_empty() && book.identity.is_some();
        let want = if live { desired(book, auto_busy) } else { None };
        if want == book.published {
            return;
        }
        let Some(want) = want else {
            book.published = None;
            if let Some(p) = book.publication {
                e.sip.unpublish(now, p);
            }
            return;
        };
        let entity = format!("sip:{aor}");
        let timestamp = store::time::format_rfc3339_ms(wall_ms);
        let doc = PidfBuilder {
            entity: &entity,
            open: want.open,
            activities: &want.activities,
            note: want.note.as_deref(),
            timestamp: Some(&timestamp),
            tuple_id: &format!("t{}", book.pidf_id),
            person_id: &format!("p{}", book.pidf_id),
        }
        .build()
        .into_bytes();
        book.published = Some(want);
        match book.publication {
            Some(p) => e.sip.modify_publication(now, p, doc),
            None => {
                let Some(identity) = book.identity.clone() else {
                    return;
                };
                let params = PublishParams {
                    event: "presence",
                    content_type: PIDF_CONTENT_TYPE.to_owned(),
                    body: doc,
                    expires,
                };
                match e.sip.publish(now, &identity, params) {
                    Ok(p) => {
                        book.publication = Some(p);
                        self.contacts.pubs.insert(p, Arc::clone(aor));
                    }
                    Err(err) => log::warn!("presence: {aor}: cannot publish: {err}"),
                }
            }
        }
    }

    /// `account-publish-presence`.
    pub(super) fn publish_user_presence(
        &mut self,
        now: Instant,
        account: AccountId,
        state: UserPresence,
        note: Option<String>,
        e: &mut Engines<'_>,
    ) {
        let Some(a) = self.accounts.get(account.0) else {
            return;
        };
        let k = key(a.aor.as_str());
        let identity = a.identity();
        let book = self.contacts.books.entry(Arc::clone(&k)).or_default();
        book.user_state = Some((state, note));
        if book.identity.is_none() && !book.members.is_empty() {
            book.identity = Some(identity);
        }
        self.sync_publication(now, &k, e);
    }

    /// A call of `account` started (`true`) or ended: automatic busy follows.
    pub(in crate::gateway) fn contacts_call_changed(&mut self, account: AccountId, started: bool) {
        let Some(a) = self.accounts.get(account.0) else {
            return;
        };
        let k = key(a.aor.as_str());
        let Some(book) = self.contacts.books.get_mut(&k) else {
            return;
        };
        book.calls = if started {
            book.calls + 1
        } else {
            book.calls.saturating_sub(1)
        };
        self.contacts.mark_dirty(&k);
    }

    /// Subscription and publication events of the SIP stack.
    pub(in crate::gateway) fn handle_presence_event(
        &mut self,
        now: Instant,
        event: SipEvent,
        e: &mut Engines<'_>,
    ) {
        match event {
            SipEvent::Subscription {
                sub,
                event: SubscriptionEvent::Notify { id, state, request },
            } => self.presence_notify(now, sub, id, &state, &request, e),
            SipEvent::Subscription {
                sub,
                event: SubscriptionEvent::Status(status),
            } => {
                let Some((aor, uri)) = self.contacts.subs.get(&sub).cloned() else {
                    return;
                };
                let target = uri.as_deref().unwrap_or("the buddy list");
                match status {
                    SubscriptionStatus::Retrying { cause, retry_in } => {
                        log::info!(
                            "presence: {aor}: subscription to {target} failed ({cause}); \
                             subscribing again in {} ms",
                            retry_in.as_millis()
                        );
                        self.mark_unknown(&aor, uri.as_ref());
                    }
                    SubscriptionStatus::Terminated(cause) => {
                        log::info!("presence: {aor}: subscription to {target} ended ({cause})");
                        self.mark_unknown(&aor, uri.as_ref());
                    }
                    SubscriptionStatus::NotAList => {
                        log::info!(
                            "presence: {aor}: the buddy list is no resource list (no Require: \
                             eventlist); subscribing per contact"
                        );
                        if let Some(book) = self.contacts.books.get_mut(&aor) {
                            book.rls_refused = true;
                        }
                        self.contacts.mark_dirty(&aor);
                    }
                    SubscriptionStatus::Active | SubscriptionStatus::Pending => {}
                }
            }
            SipEvent::SubscriptionFinished { sub } => {
                let Some((aor, uri)) = self.contacts.subs.remove(&sub) else {
                    return;
                };
                if let Some(book) = self.contacts.books.get_mut(&aor) {
                    match &uri {
                        Some(u) => {
                            if let Some(w) = book.watched.get_mut(u) {
                                if w.sub == Some(sub) {
                                    w.sub = None;
                                }
                            }
                        }
                        None if book.list_sub == Some(sub) => book.list_sub = None,
                        None => {}
                    }
                    self.contacts.mark_dirty(&aor);
                }
            }
            SipEvent::Publication {
                publication,
                status,
            } => match status {
                PublicationStatus::Published { .. } => self.contacts.stats.publish_ok += 1,
                PublicationStatus::Retrying { cause, .. } | PublicationStatus::Failed(cause) => {
                    self.contacts.stats.publish_failed += 1;
                    let aor = self.contacts.pubs.get(&publication).cloned();
                    log::info!(
                        "presence: PUBLISH for {} failed: {cause}",
                        aor.as_deref().unwrap_or("?")
                    );
                }
            },
            SipEvent::PublicationFinished { publication } => {
                let Some(aor) = self.contacts.pubs.remove(&publication) else {
                    return;
                };
                if let Some(book) = self.contacts.books.get_mut(&aor) {
                    if book.publication == Some(publication) {
                        book.publication = None;
                        // A state asked for meanwhile is published anew.
                        book.published = None;
                    }
                    self.contacts.mark_dirty(&aor);
                }
            }
            _ => {}
        }
        self.flush_contacts(now, e);
    }

    /// A NOTIFY: its body becomes presence, and it is answered.
    fn presence_notify(
        &mut self,
        now: Instant,
        sub: SubId,
        id: IncomingRequestId,
        state: &SubscriptionState,
        request: &sip::msg::SipRequest,
        e: &mut Engines<'_>,
    ) {
        let (result, status, reason) = self.presence_notify_body(sub, state, request);
        self.contacts.stats.notifies[result as usize] += 1;
        let accept = [("Accept", "application/pidf+xml, multipart/related")];
        let extra: &[(&str, &str)] = if result == NotifyResult::Unsupported {
            &accept
        } else {
            &[]
        };
        if let Err(err) = e.sip.answer_request(now, id, status, &reason, extra) {
            log::debug!("presence: NOTIFY not answered: {err}");
        }
    }

    /// Applies a NOTIFY's body; the status and reason phrase to answer with.
    fn presence_notify_body(
        &mut self,
        sub: SubId,
        state: &SubscriptionState,
        request: &sip::msg::SipRequest,
    ) -> (NotifyResult, u16, String) {
        let Some((aor, uri)) = self.contacts.subs.get(&sub).cloned() else {
            // Being unsubscribed: nothing to do with it, but the dialog is still ours.
            return (NotifyResult::Ok, 200, "OK".into());
        };
        let body = request.body();
        if body.len() > self.contacts.config.presence.max_notify_size {
            log::info!(
                "presence: {aor}: NOTIFY body of {} bytes refused",
                body.len()
            );
            return (
                NotifyResult::TooLarge,
                413,
                "Request Entity Too Large".into(),
            );
        }
        let pending = matches!(state, SubscriptionState::Pending { .. });
        if body.is_empty() {
            if pending {
                self.mark_unknown(&aor, uri.as_ref());
            }
            return (NotifyResult::Ok, 200, "OK".into());
        }
        let content_type = request.content_type().unwrap_or_default();
        let media = rlmi::media_type(content_type);
        match (media.as_str(), &uri) {
            (PIDF_CONTENT_TYPE, Some(u)) => match Presence::parse(body) {
                Ok(p) => {
                    let wall = self.wall;
                    self.set_presence(&aor, u, Some(presence_of(&p, wall)));
                    (NotifyResult::Ok, 200, "OK".into())
                }
                Err(err) => {
                    log::info!("presence: {aor}: bad PIDF from {u}: {err}");
                    (NotifyResult::BadBody, 400, format!("Bad PIDF ({err})"))
                }
            },
            // An RLS that is not one: a plain PIDF for the list URI. Per-contact from now on.
            (PIDF_CONTENT_TYPE, None) => {
                log::info!(
                    "presence: {aor}: the buddy list is no resource list; subscribing per contact"
                );
                if let Some(book) = self.contacts.books.get_mut(&aor) {
                    book.rls_refused = true;
                }
                self.contacts.mark_dirty(&aor);
                (NotifyResult::Ok, 200, "OK".into())
            }
            ("multipart/related", None) => match rlmi::parse_list_notify(content_type, body) {
                Ok(list) => {
                    let wall = self.wall;
                    for r in &list.resources {
                        let Some(target) = sip_target(&r.uri) else {
                            continue;
                        };
                        let p = match (&r.state, &r.presence) {
                            (InstanceState::Active, Some(p)) => Some(presence_of(p, wall)),
                            (InstanceState::Active, None) => continue,
                            _ => None,
                        };
                        self.set_presence(&aor, &key(&target), p);
                    }
                    (NotifyResult::Ok, 200, "OK".into())
                }
                Err(err) => {
                    log::info!("presence: {aor}: bad resource-list NOTIFY: {err}");
                    (NotifyResult::BadBody, 400, format!("Bad RLMI ({err})"))
                }
            },
            _ => (
                NotifyResult::Unsupported,
                415,
                "Unsupported Media Type".into(),
            ),
        }
    }

    /// Every URI of the subscription (one, or the whole list) is unknown now.
    fn mark_unknown(&mut self, aor: &Arc<str>, uri: Option<&Arc<str>>) {
        let uris: Vec<Arc<str>> = match uri {
            Some(u) => vec![Arc::clone(u)],
            None => self
                .contacts
                .books
                .get(aor)
                .map(|b| b.watched.keys().cloned().collect())
                .unwrap_or_default(),
        };
        for u in uris {
            self.set_presence(aor, &u, None);
        }
    }

    /// Records what is known of `uri` and tells the account's connections on a change.
    fn set_presence(&mut self, aor: &Arc<str>, uri: &Arc<str>, p: Option<UriPresence>) {
        let Some(w) = self
            .contacts
            .books
            .get_mut(aor)
            .and_then(|b| b.watched.get_mut(uri))
        else {
            return;
        };
        if w.presence == p {
            return;
        }
        w.presence = p;
        let clients = self.authenticated_clients(aor);
        for event in self.presence_events(aor, Some(uri)) {
            self.contacts.stats.presence_events += clients.len() as u64;
            for c in &clients {
                self.send_event(*c, &event);
            }
        }
    }

    /// Every watched contact's presence, to one connection (after a fetch).
    pub(super) fn send_presence_snapshot(&mut self, client: ClientId, aor: &Arc<str>) {
        let events = self.presence_events(aor, None);
        self.contacts.stats.presence_events += events.len() as u64;
        for event in events {
            self.send_event(client, &event);
        }
    }

    /// `presence` events for the contacts watching `only` (or every watched URI).
    fn presence_events(&self, aor: &Arc<str>, only: Option<&Arc<str>>) -> Vec<Event> {
        let Some(book) = self.contacts.books.get(aor) else {
            return Vec::new();
        };
        let Load::Loaded(ab) = &book.load else {
            return Vec::new();
        };
        let now_text = store::time::format_rfc3339_ms(
            self.wall
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        );
        let mut out = Vec::new();
        for c in ab.contacts.iter().filter(|c| c.presence.subscribe) {
            let mut seen = HashSet::new();
            for u in &c.uris {
                let Some(t) = sip_target(&u.uri) else {
                    continue;
                };
                if only.is_some_and(|o| **o != *t) || !seen.insert(t.clone()) {
                    continue;
                }
                let Some(w) = book.watched.get(t.as_str()) else {
                    continue;
                };
                let unknown = UriPresence {
                    basic: Basic::Unknown,
                    activities: Vec::new(),
                    note: None,
                    timestamp: now_text.clone(),
                };
                let p = w.presence.as_ref().unwrap_or(&unknown);
                out.push(Event::Contacts(ContactsEvent::Presence {
                    account: aor.to_string(),
                    presence: ContactPresence {
                        contact: c.id.clone(),
                        // As the addressbook spells it, so the client finds it.
                        uri: u.uri.clone(),
                        state: p.basic.as_str(),
                        activities: p.activities.clone(),
                        note: p.note.clone(),
                        timestamp: p.timestamp.clone(),
                    },
                }));
            }
        }
        out
    }
}

fn presence_of(p: &Presence, wall: std::time::SystemTime) -> UriPresence {
    UriPresence {
        basic: p.basic,
        activities: p.activities.clone(),
        note: p.note.clone(),
        timestamp: p.timestamp.clone().unwrap_or_else(|| {
            store::time::format_rfc3339_ms(
                wall.duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_targets_of_contact_uris() {
        assert_eq!(
            sip_target("sip:Bob@Example.TEST").as_deref(),
            Some("Bob@example.test")
        );
        assert_eq!(
            sip_target("SIPS:bob@x;transport=tls").as_deref(),
            Some("bob@x")
        );
        assert_eq!(
            sip_target("<sip:bob@x:5080>").as_deref(),
            Some("bob@x:5080")
        );
        assert_eq!(sip_target("bob@x").as_deref(), Some("bob@x"));
        assert_eq!(sip_target("tel:+1234"), None);
        assert_eq!(sip_target("mailto:bob@x"), None);
        assert_eq!(sip_target("sip:nobody"), None);
        assert_eq!(sip_target("sip:a b@x"), None);
    }
}
