//! The PostgreSQL backend: one database shared by every gateway instance of a deployment,
//! so a device finds its history and its other devices' journal whichever instance it
//! lands on (issue 15, scale-out).
//!
//! It runs on the store's worker thread with the synchronous `postgres` client (its
//! current-thread runtime lives on this thread; give the server as an IP address so no
//! resolver thread is needed). Each batch is one transaction, like SQLite's; a batch in
//! which one request fails is rolled back and its requests run again one transaction each,
//! so one bad request never fails the others. A lost connection fails the batch it broke
//! and is opened again on the next one (the probe of readiness included).
//!
//! Ordering across instances: every write for an account first takes a transaction-scoped
//! advisory lock on the account, so its journal positions (`seq`) are handed out in commit
//! order and a `Sync` after position N never misses a row that commits later with a smaller
//! one. The schema is versioned in `sylk_schema`; [`MIGRATIONS`] run under a global
//! advisory lock, so instances starting together migrate once.

use std::time::Duration;

use postgres::{Client, NoTls, Row, Statement, Transaction};

use crate::addressbook::{AddressbookEntry, EntryKind, PutMode};
use crate::{
    Direction, MessageState, MessageStore, StoreError, StoreRequest, StoreResult, StoredMessage,
};

/// Schema migrations, version = index + 1. Never edit one that shipped: add the next.
pub const MIGRATIONS: &[&str] = &[
    // 1: messages (the journal of every account, both directions) and public keys.
    "CREATE TABLE messages (
        seq BIGSERIAL PRIMARY KEY,
        account TEXT NOT NULL,
        contact TEXT NOT NULL,
        message_id TEXT NOT NULL,
        direction TEXT NOT NULL,
        content_type TEXT NOT NULL,
        content TEXT NOT NULL,
        \"timestamp\" TEXT NOT NULL,
        state TEXT NOT NULL,
        disposition TEXT NOT NULL,
        stored_at BIGINT NOT NULL,
        UNIQUE (account, message_id)
    );
    CREATE INDEX messages_by_account ON messages (account, seq);
    CREATE INDEX messages_by_conversation ON messages (account, contact);
    CREATE INDEX messages_by_age ON messages (stored_at);
    CREATE TABLE public_keys (
        uri TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    );",
    // 2: the addressbook (contacts, groups, policies as sylkRTC JSON), in insertion order,
    // as SQLite's migration 2.
    "CREATE TABLE addressbook (
        seq BIGSERIAL PRIMARY KEY,
        account TEXT NOT NULL,
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        data TEXT NOT NULL,
        UNIQUE (account, kind, id)
    );",
];

/// Advisory lock keys (first half of the two-key form): schema migration, per account.
const LOCK_MIGRATE: i32 = 0x5379_6c6b; // "Sylk"
const LOCK_ACCOUNT: i32 = 0x5379_6c6d;

/// How long one statement may run (lock waits included) before it fails, unless the URL's
/// `options` set one.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting may take before the batch fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const COLUMNS: &str = "seq, account, contact, message_id, direction, content_type, content, \
                       \"timestamp\", state, disposition, stored_at";

/// The statements every batch uses, prepared once per connection.
struct Statements {
    lock_account: Statement,
    insert: Statement,
    seq_of: Statement,
    select_one: Statement,
    set_state: Statement,
    mark_read: Statement,
    remove_message: Statement,
    remove_conversation: Statement,
    sync: Statement,
    set_key: Statement,
    lookup_key: Statement,
    expire: Statement,
    addressbook_fetch: Statement,
    addressbook_insert: Statement,
    addressbook_update: Statement,
    addressbook_delete: Statement,
}

impl Statements {
    fn prepare(c: &mut Client) -> Result<Statements, postgres::Error> {
        Ok(Statements {
            lock_account: c.prepare("SELECT pg_advisory_xact_lock($1::int4, hashtext($2))")?,
            insert: c.prepare(
                "INSERT INTO messages (account, contact, message_id, direction, content_type, \
                 content, \"timestamp\", state, disposition, stored_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (account, message_id) DO NOTHING RETURNING seq",
            )?,
            seq_of: c.prepare("SELECT seq FROM messages WHERE account = $1 AND message_id = $2")?,
            select_one: c.prepare(&format!(
                "SELECT {COLUMNS} FROM messages WHERE account = $1 AND message_id = $2"
            ))?,
            set_state: c.prepare("UPDATE messages SET state = $1 WHERE seq = $2")?,
            mark_read: c.prepare(
                "UPDATE messages SET state = 'displayed' WHERE account = $1 AND contact = $2 \
                 AND direction = 'incoming' AND state <> 'displayed'",
            )?,
            remove_message: c.prepare(
                "DELETE FROM messages WHERE account = $1 AND contact = $2 AND message_id = $3",
            )?,
            // The journal entries that record removals and read markers stay: they tell
            // other devices about this removal.
            remove_conversation: c.prepare(
                "DELETE FROM messages WHERE account = $1 AND contact = $2 \
                 AND content_type NOT LIKE 'application/sylk-%'",
            )?,
            sync: c.prepare(&format!(
                "SELECT {COLUMNS} FROM messages WHERE account = $1 AND seq > $2 \
                 AND stored_at >= $3 ORDER BY seq LIMIT $4"
            ))?,
            set_key: c.prepare(
                "INSERT INTO public_keys (uri, key, updated_at) \
                 VALUES ($1, $2, (extract(epoch FROM now()) * 1000)::bigint) \
                 ON CONFLICT (uri) DO UPDATE SET key = excluded.key, \
                 updated_at = excluded.updated_at",
            )?,
            lookup_key: c.prepare("SELECT key FROM public_keys WHERE uri = $1")?,
            expire: c.prepare("DELETE FROM messages WHERE stored_at < $1")?,
            addressbook_fetch: c.prepare(
                "SELECT kind, id, data FROM addressbook WHERE account = $1 ORDER BY seq",
            )?,
            addressbook_insert: c.prepare(
                "INSERT INTO addressbook (account, kind, id, data) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (account, kind, id) DO NOTHING",
            )?,
            addressbook_update: c.prepare(
                "UPDATE addressbook SET data = $4 WHERE account = $1 AND kind = $2 AND id = $3",
            )?,
            addressbook_delete: c
                .prepare("DELETE FROM addressbook WHERE account = $1 AND kind = $2 AND id = $3")?,
        })
    }
}

/// An open connection with its statements.
struct Session {
    client: Client,
    statements: Statements,
}

/// The PostgreSQL message store.
pub struct PostgresStore {
    config: postgres::Config,
    session: Option<Session>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it carries the password.
        f.debug_struct("PostgresStore")
            .field("connected", &self.session.is_some())
            .finish()
    }
}

fn db(e: postgres::Error) -> StoreError {
    // The server's own words and SQLSTATE: `Display` alone says only "db error".
    StoreError::Database(match e.as_db_error() {
        Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
        None => e.to_string(),
    })
}

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`, libpq's URL form)
    /// and brings the schema up to date. Plain TCP only: keep the database on loopback or a
    /// private network.
    pub fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Database(format!("bad URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // A server that vanishes without closing the connection (host down, network cut)
        // is noticed in about 25 s by TCP keep-alives and unacknowledged writes, and a
        // statement that waits (a lock) ends after STATEMENT_TIMEOUT: the storage thread
        // never hangs for long, and the reactor's watchdog (30 s) only fires on a real hang.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        config.keepalives_interval(Duration::from_secs(5));
        config.keepalives_retries(3);
        config.tcp_user_timeout(Duration::from_secs(25));
        if config.get_options().is_none() {
            config.options(&format!(
                "-c statement_timeout={}",
                STATEMENT_TIMEOUT.as_millis()
            ));
        }
        config.application_name("sylk-gateway");
        let mut store = PostgresStore {
            config,
            session: None,
        };
        store.open()?;
        Ok(store)
    }

    /// The schema version of the database.
    pub fn schema_version(&mut self) -> Result<usize, StoreError> {
        let s = self.open()?;
        schema_version(&mut s.client)
    }

    fn open(&mut self) -> Result<&mut Session, StoreError> {
        if self.session.as_ref().is_some_and(|s| s.client.is_closed()) {
            self.session = None;
        }
        if self.session.is_none() {
            let mut client = self
                .config
                .connect(NoTls)
                .map_err(|e| StoreError::Database(format!("cannot connect: {e}")))?;
            migrate(&mut client)?;
            let statements = Statements::prepare(&mut client).map_err(db)?;
            self.session = Some(Session { client, statements });
        }
        self.session.as_mut().ok_or(StoreError::Unavailable)
    }

    /// Runs `requests` in one transaction; `Err` when any failed (and nothing was kept).
    fn run(
        session: &mut Session,
        requests: &[StoreRequest],
    ) -> Result<Vec<StoreResult>, StoreError> {
        let Session { client, statements } = session;
        let mut tx = client.transaction().map_err(db)?;
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            out.push(execute(&mut tx, statements, r)?);
        }
        tx.commit().map_err(db)?;
        Ok(out)
    }
}

fn schema_version(client: &mut Client) -> Result<usize, StoreError> {
    let row = client
        .query_opt("SELECT version FROM sylk_schema", &[])
        .map_err(db)?;
    Ok(row.map_or(0, |r| usize::try_from(r.get::<_, i32>(0)).unwrap_or(0)))
}

/// Brings the schema up to date under a global advisory lock (instances starting together
/// wait for each other's migration instead of racing it).
fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(db)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1::int4, 0)",
        &[&LOCK_MIGRATE],
    )
    .map_err(db)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS sylk_schema (version INTEGER NOT NULL)")
        .map_err(db)?;
    let current = tx
        .query_opt("SELECT version FROM sylk_schema", &[])
        .map_err(db)?
        .map_or(0, |r| usize::try_from(r.get::<_, i32>(0)).unwrap_or(0));
    if current > MIGRATIONS.len() {
        return Err(StoreError::Database(format!(
            "database schema version {current} is newer than this gateway's {}",
            MIGRATIONS.len()
        )));
    }
    for sql in MIGRATIONS.iter().skip(current) {
        tx.batch_execute(sql).map_err(db)?;
    }
    let version = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    if current == 0 {
        tx.execute("INSERT INTO sylk_schema (version) VALUES ($1)", &[&version])
            .map_err(db)?;
    } else if current < MIGRATIONS.len() {
        tx.execute("UPDATE sylk_schema SET version = $1", &[&version])
            .map_err(db)?;
    }
    tx.commit().map_err(db)
}

fn row_message(r: &Row) -> StoredMessage {
    let disposition: String = r.get(9);
    let state: String = r.get(8);
    let direction: String = r.get(4);
    StoredMessage {
        seq: r.get(0),
        account: r.get(1),
        contact: r.get(2),
        message_id: r.get(3),
        direction: Direction::parse(&direction),
        content_type: r.get(5),
        content: r.get(6),
        timestamp: r.get(7),
        state: MessageState::parse(&state).unwrap_or(MessageState::Received),
        disposition: disposition
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        stored_at_ms: r.get(10),
    }
}

/// Serialises this transaction's writes for `account` with every other instance's.
fn lock_account(
    tx: &mut Transaction<'_>,
    st: &Statements,
    account: &str,
) -> Result<(), StoreError> {
    tx.execute(&st.lock_account, &[&LOCK_ACCOUNT, &account])
        .map(drop)
        .map_err(db)
}

fn execute(
    tx: &mut Transaction<'_>,
    st: &Statements,
    request: &StoreRequest,
) -> Result<StoreResult, StoreError> {
    match request {
        StoreRequest::AddMessage(m) => {
            lock_account(tx, st, &m.account)?;
            let inserted = tx
                .query_opt(
                    &st.insert,
                    &[
                        &m.account,
                        &m.contact,
                        &m.message_id,
                        &m.direction.as_str(),
                        &m.content_type,
                        &m.content,
                        &m.timestamp,
                        &m.state.as_str(),
                        &m.disposition.join(","),
                        &m.stored_at_ms,
                    ],
                )
                .map_err(db)?;
            match inserted {
                Some(row) => Ok(StoreResult::Added {
                    new: true,
                    seq: row.get(0),
                }),
                None => {
                    let row = tx
                        .query_one(&st.seq_of, &[&m.account, &m.message_id])
                        .map_err(db)?;
                    Ok(StoreResult::Added {
                        new: false,
                        seq: row.get(0),
                    })
                }
            }
        }
        StoreRequest::SetState {
            account,
            message_id,
            state,
        } => {
            let Some(row) = tx
                .query_opt(&st.select_one, &[account, message_id])
                .map_err(db)?
            else {
                return Ok(StoreResult::StateSet(None));
            };
            let mut m = row_message(&row);
            if state.rank() > m.state.rank()
                || (state.rank() == m.state.rank() && *state != m.state)
            {
                tx.execute(&st.set_state, &[&state.as_str(), &m.seq])
                    .map_err(db)?;
                m.state = *state;
            }
            Ok(StoreResult::StateSet(Some(m)))
        }
        StoreRequest::MarkConversationRead { account, contact } => tx
            .execute(&st.mark_read, &[account, contact])
            .map(StoreResult::Changed)
            .map_err(db),
        StoreRequest::RemoveMessage {
            account,
            contact,
            message_id,
        } => tx
            .execute(&st.remove_message, &[account, contact, message_id])
            .map(StoreResult::Changed)
            .map_err(db),
        StoreRequest::RemoveConversation { account, contact } => tx
            .execute(&st.remove_conversation, &[account, contact])
            .map(StoreResult::Changed)
            .map_err(db),
        StoreRequest::Sync {
            account,
            after_message_id,
            since_ms,
            limit,
        } => {
            let after_seq: i64 = match after_message_id {
                Some(id) => tx
                    .query_opt(&st.seq_of, &[account, id])
                    .map_err(db)?
                    .map_or(0, |r| r.get(0)),
                None => 0,
            };
            let since = since_ms.unwrap_or(i64::MIN);
            let rows = tx
                .query(&st.sync, &[account, &after_seq, &since, &i64::from(*limit)])
                .map_err(db)?;
            Ok(StoreResult::Messages(
                rows.iter().map(row_message).collect(),
            ))
        }
        StoreRequest::SetPublicKey { uri, key } => {
            tx.execute(&st.set_key, &[uri, key]).map_err(db)?;
            Ok(StoreResult::PublicKey(None))
        }
        StoreRequest::LookupPublicKey { uri } => {
            let key = tx
                .query_opt(&st.lookup_key, &[uri])
                .map_err(db)?
                .map(|r| r.get(0));
            Ok(StoreResult::PublicKey(key))
        }
        StoreRequest::AddressbookFetch { account } => {
            let rows = tx.query(&st.addressbook_fetch, &[account]).map_err(db)?;
            let entries = rows
                .iter()
                .filter_map(|r| {
                    let kind: String = r.get(0);
                    Some(AddressbookEntry {
                        kind: EntryKind::parse(&kind)?,
                        id: r.get(1),
                        data: r.get(2),
                    })
                })
                .collect();
            Ok(StoreResult::Addressbook(entries))
        }
        StoreRequest::AddressbookPut {
            account,
            kind,
            id,
            data,
            mode,
        } => {
            lock_account(tx, st, account)?;
            let statement = match mode {
                PutMode::Insert => &st.addressbook_insert,
                PutMode::Update => &st.addressbook_update,
            };
            tx.execute(statement, &[account, &kind.as_str(), id, data])
                .map(StoreResult::Changed)
                .map_err(db)
        }
        StoreRequest::AddressbookDelete { account, kind, id } => tx
            .execute(&st.addressbook_delete, &[account, &kind.as_str(), id])
            .map(StoreResult::Changed)
            .map_err(db),
        StoreRequest::Expire { before_ms } => tx
            .execute(&st.expire, &[before_ms])
            .map(StoreResult::Changed)
            .map_err(db),
        StoreRequest::Probe => {
            // A standby (or a database set read-only) takes no writes.
            let row = tx
                .query_one("SHOW transaction_read_only", &[])
                .map_err(db)?;
            let read_only: String = row.get(0);
            if read_only == "on" {
                return Err(StoreError::Database("the database is read-only".into()));
            }
            Ok(StoreResult::Changed(0))
        }
    }
}

impl MessageStore for PostgresStore {
    fn execute_batch(
        &mut self,
        requests: Vec<StoreRequest>,
    ) -> Vec<Result<StoreResult, StoreError>> {
        let count = requests.len();
        let session = match self.open() {
            Ok(s) => s,
            Err(e) => return vec![Err(e); count],
        };
        match PostgresStore::run(session, &requests) {
            Ok(results) => return results.into_iter().map(Ok).collect(),
            Err(e) if count == 1 || session.client.is_closed() => {
                if session.client.is_closed() {
                    self.session = None;
                }
                return vec![Err(e); count];
            }
            Err(_) => {}
        }
        // One request failed and took the transaction with it: each on its own, so the
        // others still succeed and the failure lands on the one that caused it.
        let mut out = Vec::with_capacity(count);
        for r in requests {
            let result = match self.open() {
                Ok(s) => PostgresStore::run(s, std::slice::from_ref(&r))
                    .map(|mut v| v.pop().unwrap_or(StoreResult::Changed(0))),
                Err(e) => Err(e),
            };
            out.push(result);
        }
        out
    }
}
