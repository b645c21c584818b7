//! The embedded SQLite backend (rusqlite with the library bundled, so no system package).
//!
//! The schema is versioned with `PRAGMA user_version`: [`MIGRATIONS`] are applied in order,
//! each in its own transaction, from the database's version up; a database newer than this
//! binary is refused rather than misread. WAL lets a reader (a backup) run beside the
//! writer, and `synchronous = NORMAL` makes each commit one fsync of the log. A batch of
//! requests runs in one transaction: one commit for everything the worker found queued.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::addressbook::{AddressbookEntry, EntryKind, PutMode};
use crate::{
    Direction, MessageState, MessageStore, StoreError, StoreRequest, StoreResult, StoredMessage,
};

/// Schema migrations, version = index + 1. Never edit one that shipped: add the next.
pub const MIGRATIONS: &[&str] = &[
    // 1: messages (the journal of every account, both directions) and public keys.
    "CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL,
        contact TEXT NOT NULL,
        message_id TEXT NOT NULL,
        direction TEXT NOT NULL,
        content_type TEXT NOT NULL,
        content TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        state TEXT NOT NULL,
        disposition TEXT NOT NULL,
        stored_at INTEGER NOT NULL,
        UNIQUE (account, message_id)
    );
    CREATE INDEX messages_by_conversation ON messages (account, contact);
    CREATE INDEX messages_by_age ON messages (stored_at);
    CREATE TABLE public_keys (
        uri TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );",
    // 2: the addressbook (contacts, groups, policies as sylkRTC JSON), in insertion order.
    "CREATE TABLE addressbook (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL,
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        data TEXT NOT NULL,
        UNIQUE (account, kind, id)
    );",
];

/// The SQLite message store.
pub struct SqliteStore {
    conn: Connection,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish()
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens (creating) the database at `path` (`":memory:"` for one that lives as long as
    /// the process) and brings its schema up to date.
    pub fn open(path: &str) -> Result<SqliteStore, StoreError> {
        let conn = if path == ":memory:" {
            Connection::open_in_memory().map_err(db)?
        } else {
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Database(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            Connection::open(path).map_err(db)?
        };
        // WAL (a no-op for :memory:, which answers "memory").
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(db)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        let mut store = SqliteStore { conn };
        store.migrate()?;
        Ok(store)
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        let v: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db)?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let current = self.schema_version()?;
        if current > MIGRATIONS.len() {
            return Err(StoreError::Database(format!(
                "database schema version {current} is newer than this gateway's {}",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            let tx = self.conn.transaction().map_err(db)?;
            tx.execute_batch(sql).map_err(db)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(db)?;
            tx.commit().map_err(db)?;
        }
        Ok(())
    }
}

const COLUMNS: &str = "seq, account, contact, message_id, direction, content_type, content, \
                       timestamp, state, disposition, stored_at";

fn row_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    let disposition: String = r.get(9)?;
    let state: String = r.get(8)?;
    let direction: String = r.get(4)?;
    Ok(StoredMessage {
        seq: r.get(0)?,
        account: r.get(1)?,
        contact: r.get(2)?,
        message_id: r.get(3)?,
        direction: Direction::parse(&direction),
        content_type: r.get(5)?,
        content: r.get(6)?,
        timestamp: r.get(7)?,
        state: MessageState::parse(&state).unwrap_or(MessageState::Received),
        disposition: disposition
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        stored_at_ms: r.get(10)?,
    })
}

fn execute(tx: &Transaction<'_>, request: StoreRequest) -> Result<StoreResult, StoreError> {
    match request {
        StoreRequest::AddMessage(m) => {
            let changed = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO messages (account, contact, message_id, direction, \
                     content_type, content, timestamp, state, disposition, stored_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        m.account,
                        m.contact,
                        m.message_id,
                        m.direction.as_str(),
                        m.content_type,
                        m.content,
                        m.timestamp,
                        m.state.as_str(),
                        m.disposition.join(","),
                        m.stored_at_ms
                    ])
                })
                .map_err(db)?;
            let seq = if changed == 1 {
                tx.last_insert_rowid()
            } else {
                tx.query_row(
                    "SELECT seq FROM messages WHERE account = ?1 AND message_id = ?2",
                    params![m.account, m.message_id],
                    |r| r.get(0),
                )
                .map_err(db)?
            };
            Ok(StoreResult::Added {
                new: changed == 1,
                seq,
            })
        }
        StoreRequest::SetState {
            account,
            message_id,
            state,
        } => {
            let select =
                format!("SELECT {COLUMNS} FROM messages WHERE account = ?1 AND message_id = ?2");
            let found = tx
                .prepare_cached(&select)
                .and_then(|mut s| {
                    s.query_row(params![account, message_id], row_message)
                        .optional()
                })
                .map_err(db)?;
            let Some(mut m) = found else {
                return Ok(StoreResult::StateSet(None));
            };
            if state.rank() > m.state.rank() || (state.rank() == m.state.rank() && state != m.state)
            {
                tx.prepare_cached("UPDATE messages SET state = ?1 WHERE seq = ?2")
                    .and_then(|mut s| s.execute(params![state.as_str(), m.seq]))
                    .map_err(db)?;
                m.state = state;
            }
            Ok(StoreResult::StateSet(Some(m)))
        }
        StoreRequest::MarkConversationRead { account, contact } => {
            let n = tx
                .execute(
                    "UPDATE messages SET state = 'displayed' WHERE account = ?1 AND contact = ?2 \
                     AND direction = 'incoming' AND state != 'displayed'",
                    params![account, contact],
                )
                .map_err(db)?;
            Ok(StoreResult::Changed(n as u64))
        }
        StoreRequest::RemoveMessage {
            account,
            contact,
            message_id,
        } => {
            let n = tx
                .execute(
                    "DELETE FROM messages WHERE account = ?1 AND contact = ?2 AND message_id = ?3",
                    params![account, contact, message_id],
                )
                .map_err(db)?;
            Ok(StoreResult::Changed(n as u64))
        }
        StoreRequest::RemoveConversation { account, contact } => {
            // The journal entries that record removals and read markers stay: they are
            // what tells other devices about this removal.
            let n = tx
                .execute(
                    "DELETE FROM messages WHERE account = ?1 AND contact = ?2 \
                     AND content_type NOT LIKE 'application/sylk-%'",
                    params![account, contact],
                )
                .map_err(db)?;
            Ok(StoreResult::Changed(n as u64))
        }
        StoreRequest::Sync {
            account,
            after_message_id,
            since_ms,
            limit,
        } => {
            let after_seq: i64 = match after_message_id {
                Some(id) => tx
                    .query_row(
                        "SELECT seq FROM messages WHERE account = ?1 AND message_id = ?2",
                        params![account, id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db)?
                    .unwrap_or(0),
                None => 0,
            };
            let select = format!(
                "SELECT {COLUMNS} FROM messages WHERE account = ?1 AND seq > ?2 AND stored_at >= ?3 \
                 ORDER BY seq LIMIT ?4"
            );
            let mut s = tx.prepare_cached(&select).map_err(db)?;
            let rows = s
                .query_map(
                    params![account, after_seq, since_ms.unwrap_or(i64::MIN), limit],
                    row_message,
                )
                .map_err(db)?;
            let messages = rows.collect::<Result<Vec<_>, _>>().map_err(db)?;
            Ok(StoreResult::Messages(messages))
        }
        StoreRequest::SetPublicKey { uri, key } => {
            tx.execute(
                "INSERT INTO public_keys (uri, key, updated_at) VALUES (?1, ?2, \
                 CAST(strftime('%s','now') AS INTEGER) * 1000) \
                 ON CONFLICT(uri) DO UPDATE SET key = excluded.key, updated_at = excluded.updated_at",
                params![uri, key],
            )
            .map_err(db)?;
            Ok(StoreResult::PublicKey(None))
        }
        StoreRequest::LookupPublicKey { uri } => {
            let key = tx
                .query_row(
                    "SELECT key FROM public_keys WHERE uri = ?1",
                    params![uri],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            Ok(StoreResult::PublicKey(key))
        }
        StoreRequest::AddressbookFetch { account } => {
            let mut s = tx
                .prepare_cached(
                    "SELECT kind, id, data FROM addressbook WHERE account = ?1 ORDER BY seq",
                )
                .map_err(db)?;
            let rows = s
                .query_map(params![account], |r| {
                    let kind: String = r.get(0)?;
                    Ok((kind, r.get(1)?, r.get(2)?))
                })
                .map_err(db)?;
            let mut entries = Vec::new();
            for row in rows {
                let (kind, id, data) = row.map_err(db)?;
                if let Some(kind) = EntryKind::parse(&kind) {
                    entries.push(AddressbookEntry { kind, id, data });
                }
            }
            Ok(StoreResult::Addressbook(entries))
        }
        StoreRequest::AddressbookPut {
            account,
            kind,
            id,
            data,
            mode,
        } => {
            let sql = match mode {
                PutMode::Insert => {
                    "INSERT OR IGNORE INTO addressbook (account, kind, id, data) \
                     VALUES (?1, ?2, ?3, ?4)"
                }
                PutMode::Update => {
                    "UPDATE addressbook SET data = ?4 WHERE account = ?1 AND kind = ?2 AND id = ?3"
                }
            };
            let n = tx
                .prepare_cached(sql)
                .and_then(|mut s| s.execute(params![account, kind.as_str(), id, data]))
                .map_err(db)?;
            Ok(StoreResult::Changed(n as u64))
        }
        StoreRequest::AddressbookDelete { account, kind, id } => {
            let n = tx
                .execute(
                    "DELETE FROM addressbook WHERE account = ?1 AND kind = ?2 AND id = ?3",
                    params![account, kind.as_str(), id],
                )
                .map_err(db)?;
            Ok(StoreResult::Changed(n as u64))
        }
        StoreRequest::Expire { before_ms } => {
            let n = tx
                .execute(
                    "DELETE FROM messages WHERE stored_at < ?1",
                    params![before_ms],
                )
                .map_err(db)?;
            Ok(StoreResult::Changed(n as u64))
        }
        // The batch's transaction holds the write lock from its start (IMMEDIATE), so
        // reaching here means the database took it; the commit proves the rest.
        StoreRequest::Probe => Ok(StoreResult::Changed(0)),
    }
}

impl MessageStore for SqliteStore {
    fn execute_batch(
        &mut self,
        requests: Vec<StoreRequest>,
    ) -> Vec<Result<StoreResult, StoreError>> {
        let count = requests.len();
        // IMMEDIATE: the write lock is taken at the start, so a database that cannot be
        // written (locked by another process, read-only file) fails the batch up front.
        let tx = match self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => return vec![Err(db(e)); count],
        };
        let results: Vec<_> = requests.into_iter().map(|r| execute(&tx, r)).collect();
        match tx.commit() {
            Ok(()) => results,
            // Nothing of the batch is on disk: every request failed.
            Err(e) => vec![Err(db(e)); count],
        }
    }
}

#[cfg(test)]
mod tests;
