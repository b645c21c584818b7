//! The message store of sylk-gateway: what is kept of every message, both directions, with
//! its state transitions, read markers, removals and the public keys seen.
//!
//! - [`MessageStore`]: the small trait every backend implements. Requests and results are
//!   enums ([`StoreRequest`], [`StoreResult`]), so a server database shared by several
//!   gateway instances implements the same trait later.
//! - [`sqlite::SqliteStore`]: the embedded default (rusqlite with SQLite bundled), versioned
//!   schema migrations, WAL, retention.
//! - [`postgres::PostgresStore`]: PostgreSQL, one database shared by several gateway
//!   instances (history and multi-device sync wherever a device lands), same schema.
//! - [`worker::StoreWorker`]: the one allowed second thread. The reactor submits requests
//!   to a bounded queue and never blocks on disk; results come back through a channel and a
//!   notifier (the reactor's `mio::Waker`; this crate does not know mio). A full queue is
//!   an error to the submitter, never a silent drop.
//!
//! The addressbook (contacts, groups and policies, when no XCAP server is configured) lives
//! in the same database ([`addressbook`], schema version 2).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addressbook;
pub mod conformance;
pub mod postgres;
pub mod sqlite;
pub mod time;
pub mod worker;

use std::fmt;

/// Which way a message went, seen from the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The account received it.
    Incoming,
    /// The account sent it.
    Outgoing,
}

impl Direction {
    /// `incoming` / `outgoing`, as sylkRTC and the database spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "incoming",
            Direction::Outgoing => "outgoing",
        }
    }

    fn parse(s: &str) -> Direction {
        if s == "outgoing" {
            Direction::Outgoing
        } else {
            Direction::Incoming
        }
    }
}

/// Where a message is (sylkRTC's `state` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    /// Outgoing, handed to SIP, no answer yet.
    Pending,
    /// Outgoing, the SIP MESSAGE got a 2xx.
    Accepted,
    /// Incoming, stored (and shown to the account's connections, if any).
    Received,
    /// The recipient's device has it (IMDN delivered).
    Delivered,
    /// The recipient read it (IMDN displayed, or a read marker).
    Displayed,
    /// The SIP MESSAGE failed, or an IMDN said so.
    Failed,
    /// An IMDN said `forbidden`.
    Forbidden,
    /// An IMDN said `error`.
    Error,
    /// An intermediary processed it.
    Processed,
    /// An intermediary stored it.
    Stored,
}

impl MessageState {
    /// The sylkRTC text.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Pending => "pending",
            MessageState::Accepted => "accepted",
            MessageState::Received => "received",
            MessageState::Delivered => "delivered",
            MessageState::Displayed => "displayed",
            MessageState::Failed => "failed",
            MessageState::Forbidden => "forbidden",
            MessageState::Error => "error",
            MessageState::Processed => "processed",
            MessageState::Stored => "stored",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<MessageState> {
        Some(match s {
            "pending" => MessageState::Pending,
            "accepted" => MessageState::Accepted,
            "received" => MessageState::Received,
            "delivered" => MessageState::Delivered,
            "displayed" => MessageState::Displayed,
            "failed" => MessageState::Failed,
            "forbidden" => MessageState::Forbidden,
            "error" => MessageState::Error,
            "processed" => MessageState::Processed,
            "stored" => MessageState::Stored,
            _ => return None,
        })
    }

    /// How far along a message is: a state never moves back (a late `delivered` IMDN after
    /// `displayed` changes nothing), except that failures replace anything but `displayed`.
    fn rank(self) -> u8 {
        match self {
            MessageState::Pending => 0,
            MessageState::Received | MessageState::Accepted => 1,
            MessageState::Processed | MessageState::Stored => 2,
            MessageState::Delivered => 3,
            MessageState::Failed | MessageState::Forbidden | MessageState::Error => 4,
            MessageState::Displayed => 5,
        }
    }
}

/// One stored message (or journal entry: read markers and removals are stored as messages
/// of SylkServer's `application/sylk-*` types, so a replay carries them to other devices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Position in the store's journal (assigned by the store; 0 when adding).
    pub seq: i64,
    /// The account (`user@domain`) whose conversation it is in.
    pub account: String,
    /// The other party (`user@domain`).
    pub contact: String,
    /// The client's (or CPIM's) message id.
    pub message_id: String,
    /// Which way.
    pub direction: Direction,
    /// MIME type of the content.
    pub content_type: String,
    /// The content (sylkRTC carries strings).
    pub content: String,
    /// The message's timestamp (RFC 3339), as the client or CPIM DateTime gave it.
    pub timestamp: String,
    /// Where it is.
    pub state: MessageState,
    /// The IMDN notifications the sender asked for (`positive-delivery`, `display`, ...).
    pub disposition: Vec<String>,
    /// When the store took it, Unix milliseconds (retention and `since`).
    pub stored_at_ms: i64,
}

/// What a backend is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreRequest {
    /// Store a message (or journal entry). A second message with the same account and
    /// message id is not stored again ([`StoreResult::Added`] says so).
    AddMessage(StoredMessage),
    /// Move a message of `account` to `state` (never backwards, see [`MessageState`]).
    SetState {
        /// The account.
        account: String,
        /// The message.
        message_id: String,
        /// The new state.
        state: MessageState,
    },
    /// Mark every incoming message of the conversation `displayed`.
    MarkConversationRead {
        /// The account.
        account: String,
        /// The other party.
        contact: String,
    },
    /// Delete one message.
    RemoveMessage {
        /// The account.
        account: String,
        /// The other party.
        contact: String,
        /// The message.
        message_id: String,
    },
    /// Delete a whole conversation.
    RemoveConversation {
        /// The account.
        account: String,
        /// The other party.
        contact: String,
    },
    /// The journal of `account` in order: after message `after_message_id` when given (from
    /// the start when it is unknown), stored at or after `since_ms`, at most `limit`.
    Sync {
        /// The account.
        account: String,
        /// Replay after this message.
        after_message_id: Option<String>,
        /// Replay what was stored at or after this instant (Unix ms).
        since_ms: Option<i64>,
        /// Most entries.
        limit: u32,
    },
    /// Remember the public key published by `uri` (a `text/pgp-public-key` message).
    SetPublicKey {
        /// Whose.
        uri: String,
        /// The armoured key.
        key: String,
    },
    /// The public key of `uri`, if one was seen.
    LookupPublicKey {
        /// Whose.
        uri: String,
    },
    /// Delete what was stored before `before_ms` (retention).
    Expire {
        /// Unix milliseconds.
        before_ms: i64,
    },
    /// Whether the database takes writes now (readiness): answered
    /// [`StoreResult::Changed`]`(0)`, or the error that stops writes.
    Probe,
    /// Every addressbook entry of `account`, in the order they were added.
    AddressbookFetch {
        /// The account.
        account: String,
    },
    /// Add or replace one entry ([`StoreResult::Changed`]: 1 when done, 0 when `mode`
    /// refused: the id exists for an insert, is missing for an update).
    AddressbookPut {
        /// The account.
        account: String,
        /// Its kind.
        kind: addressbook::EntryKind,
        /// Its id.
        id: String,
        /// Its JSON object.
        data: String,
        /// Insert or update.
        mode: addressbook::PutMode,
    },
    /// Delete one entry ([`StoreResult::Changed`]: how many).
    AddressbookDelete {
        /// The account.
        account: String,
        /// Its kind.
        kind: addressbook::EntryKind,
        /// Its id.
        id: String,
    },
}

/// What a backend answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreResult {
    /// [`StoreRequest::AddMessage`]: whether it was new, and its journal position.
    Added {
        /// False for a duplicate (same account and message id).
        new: bool,
        /// Its position.
        seq: i64,
    },
    /// [`StoreRequest::SetState`]: the message as it is now (`None`: no such message).
    StateSet(Option<StoredMessage>),
    /// How many rows a mark/remove/expire changed.
    Changed(u64),
    /// [`StoreRequest::Sync`].
    Messages(Vec<StoredMessage>),
    /// [`StoreRequest::LookupPublicKey`] (and `SetPublicKey`: `None`).
    PublicKey(Option<String>),
    /// [`StoreRequest::AddressbookFetch`].
    Addressbook(Vec<addressbook::AddressbookEntry>),
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The queue to the worker is full: try again later.
    QueueFull,
    /// The worker is gone (shut down or crashed).
    Unavailable,
    /// The database said no (disk full, corrupt, locked...).
    Database(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::QueueFull => f.write_str("message store busy"),
            StoreError::Unavailable => f.write_str("message store unavailable"),
            StoreError::Database(e) => write!(f, "message store error: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A message store backend. Runs on the worker thread; each call may block on disk.
pub trait MessageStore: Send {
    /// Carries out a batch of requests as one unit where the backend can (one SQLite
    /// transaction): one result per request, in order.
    fn execute_batch(
        &mut self,
        requests: Vec<StoreRequest>,
    ) -> Vec<Result<StoreResult, StoreError>>;
}
