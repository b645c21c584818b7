use super::*;

fn msg(
    account: &str,
    contact: &str,
    id: &str,
    direction: Direction,
    stored_at_ms: i64,
) -> StoredMessage {
    StoredMessage {
        seq: 0,
        account: account.into(),
        contact: contact.into(),
        message_id: id.into(),
        direction,
        content_type: "text/plain".into(),
        content: format!("text of {id}"),
        timestamp: "2024-01-02T03:04:05Z".into(),
        state: MessageState::Received,
        disposition: Vec::new(),
        stored_at_ms,
    }
}

fn one(store: &mut SqliteStore, r: StoreRequest) -> StoreResult {
    store.execute_batch(vec![r]).pop().unwrap().unwrap()
}

fn sync(store: &mut SqliteStore) -> Vec<String> {
    match one(
        store,
        StoreRequest::Sync {
            account: "alice@x".into(),
            after_message_id: None,
            since_ms: None,
            limit: 10,
        },
    ) {
        StoreResult::Messages(m) => m.into_iter().map(|m| m.message_id).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_backend_conformance() {
    let mut s = SqliteStore::open(":memory:").unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
    crate::conformance::journal_replays_in_order(&mut s, "");
    crate::conformance::states_markers_removals_keys_and_expiry(&mut s, "");
    crate::conformance::one_failure_spares_the_batch(&mut s, "");
    crate::conformance::addressbook_keeps_order_and_modes(&mut s, "");
}

#[test]
fn public_keys_retention_and_reopening_keep_the_data() {
    let dir = std::env::temp_dir().join(format!("sylk-store-test-{}", std::process::id()));
    let path = dir.join("sub/messages.sqlite");
    let path = path.to_str().unwrap();
    {
        let mut s = SqliteStore::open(path).unwrap();
        one(
            &mut s,
            StoreRequest::SetPublicKey {
                uri: "bob@y".into(),
                key: "K1".into(),
            },
        );
        one(
            &mut s,
            StoreRequest::SetPublicKey {
                uri: "bob@y".into(),
                key: "K2".into(),
            },
        );
        one(
            &mut s,
            StoreRequest::AddMessage(msg("alice@x", "bob@y", "old", Direction::Incoming, 10)),
        );
        one(
            &mut s,
            StoreRequest::AddMessage(msg("alice@x", "bob@y", "new", Direction::Incoming, 1000)),
        );
    }
    let mut s = SqliteStore::open(path).unwrap();
    assert_eq!(
        one(
            &mut s,
            StoreRequest::LookupPublicKey {
                uri: "bob@y".into()
            }
        ),
        StoreResult::PublicKey(Some("K2".into()))
    );
    assert_eq!(sync(&mut s), ["old", "new"]);
    assert_eq!(
        one(&mut s, StoreRequest::Expire { before_ms: 500 }),
        StoreResult::Changed(1)
    );
    assert_eq!(sync(&mut s), ["new"]);
    let mode: String = s
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // A database from a newer gateway is refused, not misread.
    s.conn.pragma_update(None, "user_version", 99).unwrap();
    drop(s);
    assert!(SqliteStore::open(path).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn addressbook_entries_are_added_updated_deleted_in_order_per_account() {
    use crate::addressbook::{AddressbookEntry, EntryKind, PutMode};
    let mut s = SqliteStore::open(":memory:").unwrap();
    let put = |s: &mut SqliteStore, account: &str, kind, id: &str, data: &str, mode| {
        one(
            s,
            StoreRequest::AddressbookPut {
                account: account.into(),
                kind,
                id: id.into(),
                data: data.into(),
                mode,
            },
        )
    };
    let fetch = |s: &mut SqliteStore, account: &str| match one(
        s,
        StoreRequest::AddressbookFetch {
            account: account.into(),
        },
    ) {
        StoreResult::Addressbook(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        put(
            &mut s,
            "a@x",
            EntryKind::Contact,
            "c1",
            "{\"id\":\"c1\"}",
            PutMode::Insert
        ),
        StoreResult::Changed(1)
    );
    assert_eq!(
        put(
            &mut s,
            "a@x",
            EntryKind::Contact,
            "c1",
            "{}",
            PutMode::Insert
        ),
        StoreResult::Changed(0),
        "an existing id is not added twice"
    );
    assert_eq!(
        put(
            &mut s,
            "a@x",
            EntryKind::Policy,
            "p9",
            "{}",
            PutMode::Update
        ),
        StoreResult::Changed(0),
        "a missing id is not updated"
    );
    put(
        &mut s,
        "a@x",
        EntryKind::Group,
        "g1",
        "{\"id\":\"g1\"}",
        PutMode::Insert,
    );
    put(
        &mut s,
        "b@x",
        EntryKind::Contact,
        "c1",
        "{\"other\":1}",
        PutMode::Insert,
    );
    put(
        &mut s,
        "a@x",
        EntryKind::Contact,
        "c1",
        "{\"id\":\"c1\",\"n\":2}",
        PutMode::Update,
    );
    assert_eq!(
        fetch(&mut s, "a@x"),
        [
            AddressbookEntry {
                kind: EntryKind::Contact,
                id: "c1".into(),
                data: "{\"id\":\"c1\",\"n\":2}".into()
            },
            AddressbookEntry {
                kind: EntryKind::Group,
                id: "g1".into(),
                data: "{\"id\":\"g1\"}".into()
            }
        ]
    );
    assert_eq!(
        one(
            &mut s,
            StoreRequest::AddressbookDelete {
                account: "a@x".into(),
                kind: EntryKind::Contact,
                id: "c1".into()
            }
        ),
        StoreResult::Changed(1)
    );
    assert_eq!(fetch(&mut s, "a@x").len(), 1);
    assert_eq!(fetch(&mut s, "b@x").len(), 1);
    assert_eq!(s.schema_version().unwrap(), 2);
}
