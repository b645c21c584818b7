//! Messaging (spec sections 6.2, 6.3 and 10): 1:1 messages over SIP MESSAGE with CPIM and
//! IMDN, the message store, and multi-device sync.
//!
//! - `outgoing.rs`: `account-message` (stored `pending`, acked once stored, then a SIP
//!   MESSAGE with CPIM; its SIP result becomes `disposition-notification`),
//!   `account-disposition-notification` (an IMDN in CPIM) and `session-message` (in-dialog).
//! - `incoming.rs`: SIP MESSAGEs for an account (CPIM, plain bodies, IMDNs), stored, then
//!   shown to every connection holding the account, answered 200 (a connection has it) or
//!   202 (only stored); in-dialog MESSAGEs to the call's connection.
//! - `replicated.rs`: copies of MESSAGEs the account's own SIP devices sent
//!   (`X-Sylk-From-Sip`), kept in the sender's history and synced to its connections.
//! - `journal.rs`: `account-sync-conversations`, read markers, removals and
//!   `lookup-public-key`, all answered from the store.
//! - `rate.rs`: the per-account and per-sender rate limits.
//!
//! Every store request is submitted to the worker without blocking; the reply (or the SIP
//! answer) waits for its result, so a full queue or a failed write is an `error` to the
//! client (503 or 500 to SIP) and never a silent loss. Only connections on which the
//! account registered successfully (SylkServer's `auth_state`) send or see messages:
//! `Account not authenticated` otherwise.

mod incoming;
mod journal;
mod outgoing;
mod rate;
mod replicated;

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sip::request::RequestId;
use sip::stack::IncomingRequestId;
use store::worker::StoreTicket;
use store::{StoreError, StoreRequest, StoreResult};

use super::{ClientId, Engines, Gateway, GatewayError};
use crate::config::MessagingConfig;
use crate::switchboard::Store;
use crate::sylkrtc::messaging::{MessagingEvent, ReceivedMessage};
use crate::sylkrtc::request::AccountMessage;
use crate::sylkrtc::{Event, Request};

/// How often expired messages are deleted (`messaging.max_age_days`).
const EXPIRY_INTERVAL_MS: i64 = 3600 * 1000;

/// What waits for a store result.
#[derive(Debug)]
enum Pending {
    /// `account-message` stored: ack, send the SIP MESSAGE, fork `sync`.
    Outgoing {
        client: ClientId,
        transaction: String,
        message: Box<AccountMessage>,
    },
    /// `account-sync-conversations`.
    Sync {
        client: ClientId,
        transaction: String,
        account: String,
    },
    /// `account-mark-conversation-read`.
    MarkRead {
        client: ClientId,
        transaction: String,
        account: String,
        contact: String,
    },
    /// `account-remove-message`.
    RemoveMessage {
        client: ClientId,
        transaction: String,
        account: String,
        contact: String,
        message_id: String,
    },
    /// `account-remove-conversation`.
    RemoveConversation {
        client: ClientId,
        transaction: String,
        account: String,
        contact: String,
    },
    /// `lookup-public-key`.
    LookupKey {
        client: ClientId,
        transaction: String,
        uri: String,
    },
    /// An incoming message stored: show it, answer 200/202.
    Incoming {
        id: IncomingRequestId,
        account: String,
        message: Box<ReceivedMessage>,
    },
    /// An incoming IMDN applied: tell the account's connections, answer 200.
    IncomingImdn {
        id: IncomingRequestId,
        account: String,
        message_id: String,
        message_timestamp: String,
        state: &'static str,
    },
    /// A copy of a MESSAGE from one of the account's SIP devices stored: sync, deliver,
    /// answer.
    Replicated {
        id: IncomingRequestId,
        copy: Box<replicated::Replicated>,
    },
    /// Nothing waits (state updates, journal entries, keys, expiry); failures are logged.
    Quiet(&'static str),
}

/// A SIP MESSAGE we sent, by its request id.
#[derive(Debug)]
enum Sent {
    /// An `account-message`.
    Account {
        account: String,
        message_id: String,
        timestamp: String,
        /// Kept for one resend without CPIM to a peer that refuses it (415).
        unwrapped: Option<Box<Unwrapped>>,
    },
    /// A `session-message`.
    Session {
        client: ClientId,
        session: String,
        message_id: String,
        timestamp: String,
    },
    /// An IMDN we sent; its result changes nothing.
    Imdn,
}

/// What an `account-message` resend without CPIM needs.
#[derive(Debug)]
struct Unwrapped {
    to: String,
    content_type: String,
    content: String,
}

/// Messages counted by result, for the metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessagingStats {
    /// Messages we sent (`account-message`, `session-message`) that SIP accepted (2xx).
    pub out_accepted: u64,
    /// Messages we sent that failed (a final non-2xx, a timeout, or not sent at all).
    pub out_failed: u64,
    /// SIP MESSAGEs received and shown to at least one connection (200).
    pub in_delivered: u64,
    /// SIP MESSAGEs received and only stored (202: no connection of the account).
    pub in_stored: u64,
    /// SIP MESSAGEs refused (4xx/5xx: malformed, too large, rate, store failure, unknown).
    pub in_refused: u64,
}

impl MessagingStats {
    fn count_in(&mut self, status: u16) {
        match status {
            200..=201 => self.in_delivered += 1,
            202..=299 => self.in_stored += 1,
            _ => self.in_refused += 1,
        }
    }

    fn count_out(&mut self, accepted: bool) {
        if accepted {
            self.out_accepted += 1;
        } else {
            self.out_failed += 1;
        }
    }
}

/// Messaging's books.
#[derive(Debug)]
pub(super) struct Messaging {
    config: MessagingConfig,
    pending: HashMap<StoreTicket, Pending>,
    sent: HashMap<RequestId, Sent>,
    send_limit: rate::RateLimiter,
    incoming_limit: rate::RateLimiter,
    next_expiry_ms: i64,
    stats: MessagingStats,
    /// Incoming messages this instance showed its connections lately.
    shown: RecentlyShown,
}

/// The last [`RecentlyShown::CAPACITY`] incoming messages shown by this instance, by account
/// and message id: a store that says "not new" cannot tell a sender's retry (shown here
/// already) from a copy forked to this instance while another one stored it first.
#[derive(Debug, Default)]
struct RecentlyShown {
    order: std::collections::VecDeque<(String, String)>,
    set: std::collections::HashSet<(String, String)>,
}

impl RecentlyShown {
    const CAPACITY: usize = 4096;

    fn contains(&self, account: &str, message_id: &str) -> bool {
        self.set
            .contains(&(account.to_owned(), message_id.to_owned()))
    }

    fn insert(&mut self, account: &str, message_id: &str) {
        let key = (account.to_owned(), message_id.to_owned());
        if !self.set.insert(key.clone()) {
            return;
        }
        self.order.push_back(key);
        if self.order.len() > Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

impl Messaging {
    pub(super) fn new(config: &MessagingConfig) -> Messaging {
        Messaging {
            config: config.clone(),
            pending: HashMap::new(),
            sent: HashMap::new(),
            send_limit: rate::RateLimiter::new(config.send_rate),
            incoming_limit: rate::RateLimiter::new(config.incoming_rate),
            next_expiry_ms: i64::MIN,
            stats: MessagingStats::default(),
            shown: RecentlyShown::default(),
        }
    }

    /// The counters.
    pub(super) fn stats(&self) -> &MessagingStats {
        &self.stats
    }

    /// Store results and SIP MESSAGEs still awaited (leak checks).
    pub(super) fn in_flight(&self) -> usize {
        self.pending.len() + self.sent.len()
    }
}

/// Unix milliseconds of `wall`.
pub(super) fn unix_ms(wall: SystemTime) -> i64 {
    wall.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Gateway {
    /// The messaging requests (everything `handle_request` does not answer itself).
    pub(super) fn handle_messaging_request(
        &mut self,
        now: Instant,
        client: ClientId,
        transaction: String,
        request: Request,
        e: &mut Engines<'_>,
    ) {
        // `Ok(true)`: answered later (after the store), `Ok(false)`: ack now.
        let result = match request {
            Request::AccountMessage(m) => self.account_message(now, client, &transaction, m, e),
            Request::AccountDisposition(d) => self.account_disposition(now, client, d, e),
            Request::AccountSyncConversations(s) => {
                self.sync_conversations(client, &transaction, s, e)
            }
            Request::AccountMarkConversationRead { account, contact } => {
                self.mark_conversation_read(client, &transaction, &account, &contact, e)
            }
            Request::AccountRemoveMessage {
                account,
                message_id,
                contact,
            } => self.remove_message(client, &transaction, &account, &contact, message_id, e),
            Request::AccountRemoveConversation { account, contact } => {
                self.remove_conversation(client, &transaction, &account, &contact, e)
            }
            Request::SessionMessage(m) => self.session_message(now, client, m, e),
            Request::LookupPublicKey { uri } => {
                self.lookup_public_key(client, &transaction, uri.as_str(), e)
            }
            other => {
                log::warn!("unexpected request reached messaging: {other:?}");
                Err(GatewayError::Internal)
            }
        };
        match result {
            Ok(true) => {}
            Ok(false) => self.reply(client, &transaction, Ok(())),
            Err(err) => self.reply(client, &transaction, Err(err)),
        }
    }

    /// The account `aor` of `client`, if it may use messaging (and contacts).
    pub(super) fn messaging_account(
        &self,
        client: ClientId,
        aor: &str,
    ) -> Result<super::AccountId, GatewayError> {
        let id = self.find_account(client, aor)?;
        match self.accounts.get(id.0) {
            Some(a) if a.authenticated => Ok(id),
            Some(_) => Err(GatewayError::NotAuthenticated),
            None => Err(GatewayError::Internal),
        }
    }

    /// The connections where `aor` is authenticated.
    pub(super) fn authenticated_clients(&self, aor: &str) -> Vec<ClientId> {
        let mut out: Vec<ClientId> = self
            .accounts_by_aor
            .get(aor)
            .into_iter()
            .flatten()
            .filter_map(|id| self.accounts.get(id.0))
            .filter(|a| a.authenticated)
            .map(|a| a.client)
            .collect();
        out.dedup();
        out
    }

    /// Sends `event` to every connection where `aor` is authenticated but `except`;
    /// returns how many got it.
    fn send_to_account(
        &mut self,
        aor: &str,
        except: Option<ClientId>,
        event: MessagingEvent,
    ) -> usize {
        let clients = self.authenticated_clients(aor);
        let event = Event::Messaging(event);
        let mut n = 0;
        for c in clients.into_iter().filter(|c| Some(*c) != except) {
            self.send_event(c, &event);
            n += 1;
        }
        n
    }

    /// Submits a request nobody waits for.
    fn submit_quiet(&mut self, store: &mut Store, what: &'static str, request: StoreRequest) {
        match store.submit(request) {
            Ok(ticket) => {
                self.messaging.pending.insert(ticket, Pending::Quiet(what));
            }
            Err(err) => log::warn!("messaging: {what} not stored: {err}"),
        }
    }

    /// Submits a request whose result `pending` waits for.
    fn submit(
        &mut self,
        store: &mut Store,
        request: StoreRequest,
        pending: Pending,
    ) -> Result<(), StoreError> {
        let ticket = store.submit(request)?;
        self.messaging.pending.insert(ticket, pending);
        Ok(())
    }

    /// Deletes messages older than `messaging.max_age_days`, at most once an hour.
    pub(super) fn expire_messages(&mut self, store: &mut Store) {
        let now_ms = unix_ms(self.wall);
        if now_ms < self.messaging.next_expiry_ms || now_ms == 0 {
            return;
        }
        self.messaging.next_expiry_ms = now_ms + EXPIRY_INTERVAL_MS;
        let max_age = i64::from(self.messaging.config.max_age_days) * 86_400_000;
        self.submit_quiet(
            store,
            "expiry",
            StoreRequest::Expire {
                before_ms: now_ms - max_age,
            },
        );
    }

    /// A store request finished.
    pub(super) fn handle_store_result(
        &mut self,
        now: Instant,
        ticket: StoreTicket,
        result: Result<StoreResult, StoreError>,
        e: &mut Engines<'_>,
    ) {
        let Some(pending) = self.messaging.pending.remove(&ticket) else {
            return;
        };
        match pending {
            Pending::Outgoing {
                client,
                transaction,
                message,
            } => self.outgoing_stored(now, client, &transaction, *message, result, e),
            Pending::Incoming {
                id,
                account,
                message,
            } => self.incoming_stored(now, id, &account, *message, result, e),
            Pending::Replicated { id, copy } => self.replicated_stored(now, id, *copy, result, e),
            Pending::IncomingImdn {
                id,
                account,
                message_id,
                message_timestamp,
                state,
            } => self.imdn_stored(
                now,
                id,
                &account,
                message_id,
                message_timestamp,
                state,
                result,
                e,
            ),
            Pending::Quiet(what) => match result {
                Ok(StoreResult::Changed(n)) if what == "expiry" && n > 0 => {
                    log::info!("messaging: {n} expired messages deleted")
                }
                Ok(_) => {}
                Err(err) => log::warn!("messaging: {what} not stored: {err}"),
            },
            journal => self.journal_result(journal, result, e),
        }
    }
}
