//! The PostgreSQL message store against a real PostgreSQL server (Debian's, a fresh cluster
//! on a free port of 127.0.0.1): the same behaviour as SQLite (`store::conformance`), two
//! instances sharing one database, a lock held forever elsewhere, and a database that goes
//! away.

mod common;

use std::time::{Duration, Instant};

use common::peers::Postgres;
use store::postgres::PostgresStore;
use store::{
    Direction, MessageState, MessageStore, StoreError, StoreRequest, StoreResult, StoredMessage,
};

fn message(account: &str, id: &str) -> StoredMessage {
    StoredMessage {
        seq: 0,
        account: account.into(),
        contact: "bob@example.test".into(),
        message_id: id.into(),
        direction: Direction::Outgoing,
        content_type: "text/plain".into(),
        content: format!("text {id}"),
        timestamp: "2026-01-01T00:00:00Z".into(),
        state: MessageState::Pending,
        disposition: Vec::new(),
        stored_at_ms: 1,
    }
}

#[test]
fn postgres_backend_behaves_like_sqlite_and_is_shared_by_instances() {
    let pg = Postgres::start();
    let mut a = PostgresStore::connect(&pg.url()).expect("connect");
    assert_eq!(
        a.schema_version().unwrap(),
        store::postgres::MIGRATIONS.len()
    );
    store::conformance::journal_replays_in_order(&mut a, "t1.");
    store::conformance::states_markers_removals_keys_and_expiry(&mut a, "t2.");
    store::conformance::one_failure_spares_the_batch(&mut a, "t3.");
    store::conformance::addressbook_keeps_order_and_modes(&mut a, "t4.");

    // A second instance finds the schema in place and sees the first one's writes at once.
    let mut b = PostgresStore::connect(&pg.url()).expect("second connect");
    let r = b.execute_batch(vec![StoreRequest::AddMessage(message("x@d", "from-b"))]);
    assert!(matches!(r[0], Ok(StoreResult::Added { new: true, .. })));
    let r = a.execute_batch(vec![StoreRequest::AddMessage(message("x@d", "from-b"))]);
    assert!(
        matches!(r[0], Ok(StoreResult::Added { new: false, .. })),
        "a duplicate across instances is one message: {r:?}"
    );

    // Writers on two threads (two instances) interleave; the journal of the account lists
    // every message once, in an order each reader sees the same.
    let url = pg.url();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut s = PostgresStore::connect(&url).unwrap();
                for i in 0..50 {
                    let r = s.execute_batch(vec![StoreRequest::AddMessage(message(
                        "shared@d",
                        &format!("w{w}-{i}"),
                    ))]);
                    assert!(
                        matches!(r[0], Ok(StoreResult::Added { new: true, .. })),
                        "{r:?}"
                    );
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let sync = |s: &mut PostgresStore, after: Option<String>| match s
        .execute_batch(vec![StoreRequest::Sync {
            account: "shared@d".into(),
            after_message_id: after,
            since_ms: None,
            limit: 5000,
        }])
        .pop()
    {
        Some(Ok(StoreResult::Messages(m))) => m,
        other => panic!("{other:?}"),
    };
    let seen_a = sync(&mut a, None);
    let seen_b = sync(&mut b, None);
    assert_eq!(seen_a.len(), 100);
    assert_eq!(seen_a, seen_b);
    assert!(seen_a.windows(2).all(|w| w[0].seq < w[1].seq));
    let mid = seen_a[49].message_id.clone();
    assert_eq!(sync(&mut b, Some(mid)).len(), 50);

    // Another session holds the account's lock and never lets go (a stuck instance): the
    // write waits at most the statement timeout (10 s), then fails; the storage thread
    // never hangs on it. The holder is psql, stopped by its pid.
    let mut holder = std::process::Command::new("psql")
        .arg(pg.url())
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(
            "BEGIN; SELECT pg_advisory_xact_lock(1400466541, hashtext('locked@d')); \
             SELECT pg_sleep(60); COMMIT;",
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("psql (Debian's postgresql-client, with the postgresql package)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::process::Command::new("psql")
        .arg(pg.url())
        .args([
            "-tAc",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
        ])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "1")
    {
        assert!(Instant::now() < deadline, "psql never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let r = a.execute_batch(vec![StoreRequest::AddMessage(message("locked@d", "waits"))]);
    let waited = started.elapsed();
    // Killing psql does not end its server session (it sleeps on, lock held): end it too.
    let _ = holder.kill();
    let _ = holder.wait();
    let ended = std::process::Command::new("psql")
        .arg(pg.url())
        .args([
            "-tAc",
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                        WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ended.stdout).trim(),
        "1",
        "{ended:?}"
    );
    assert!(
        matches!(&r[0], Err(StoreError::Database(e)) if e.contains("statement timeout")),
        "{r:?}"
    );
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "the lock wait ended after {waited:?}"
    );
    let r = a.execute_batch(vec![StoreRequest::AddMessage(message("locked@d", "after"))]);
    assert!(
        matches!(r[0], Ok(StoreResult::Added { new: true, .. })),
        "{r:?}"
    );

    // The database goes away: requests fail with the database's error (never a hang), the
    // probe too; nothing panics.
    let mut pg = pg;
    pg.stop();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = a.execute_batch(vec![StoreRequest::Probe]);
        match &r[0] {
            Err(StoreError::Database(_)) => break,
            Ok(_) => assert!(Instant::now() < deadline, "probe still succeeds"),
            other => panic!("{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = a.execute_batch(vec![
        StoreRequest::AddMessage(message("x@d", "lost-1")),
        StoreRequest::Sync {
            account: "x@d".into(),
            after_message_id: None,
            since_ms: None,
            limit: 1,
        },
    ]);
    assert_eq!(r.len(), 2);
    assert!(
        r.iter().all(|r| matches!(r, Err(StoreError::Database(_)))),
        "{r:?}"
    );
}
