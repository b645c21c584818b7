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
        content: format!("text of {id} \u{1f600}"),
        timestamp: "2024-01-02T03:04:05Z".into(),
        state: match direction {
            Direction::Outgoing => MessageState::Pending,
            Direction::Incoming => MessageState::Received,
        },
        disposition: vec!["positive-delivery".into(), "display".into()],
        stored_at_ms,
    }
}

fn one(store: &mut SqliteStore, r: StoreRequest) -> StoreResult {
    store.execute_batch(vec![r]).pop().unwrap().unwrap()
}

fn sync(
    store: &mut SqliteStore,
    after: Option<&str>,
    since: Option<i64>,
    limit: u32,
) -> Vec<String> {
    match one(
        store,
        StoreRequest::Sync {
            account: "alice@x".into(),
            after_message_id: after.map(str::to_owned),
            since_ms: since,
            limit,
        },
    ) {
        StoreResult::Messages(m) => m.into_iter().map(|m| m.message_id).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn journal_replays_in_order_after_an_id_since_a_time_and_up_to_a_limit() {
    let mut s = SqliteStore::open(":memory:").unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
    let batch: Vec<_> = (1..=5)
        .map(|i| {
            let dir = if i % 2 == 0 {
                Direction::Outgoing
            } else {
                Direction::Incoming
            };
            StoreRequest::AddMessage(msg("alice@x", "bob@y", &format!("m{i}"), dir, i * 1000))
        })
        .chain([StoreRequest::AddMessage(msg(
            "carol@x",
            "bob@y",
            "c1",
            Direction::Incoming,
            1,
        ))])
        .collect();
    let results = s.execute_batch(batch);
    assert!(results
        .iter()
        .all(|r| matches!(r, Ok(StoreResult::Added { new: true, .. }))));
    assert_eq!(
        sync(&mut s, None, None, 5000),
        ["m1", "m2", "m3", "m4", "m5"]
    );
    assert_eq!(sync(&mut s, Some("m3"), None, 5000), ["m4", "m5"]);
    assert_eq!(sync(&mut s, Some("unknown"), None, 2), ["m1", "m2"]);
    assert_eq!(sync(&mut s, None, Some(4000), 5000), ["m4", "m5"]);
    // The same id again is not stored twice.
    let dup = one(
        &mut s,
        StoreRequest::AddMessage(msg("alice@x", "bob@y", "m1", Direction::Incoming, 9)),
    );
    assert!(matches!(dup, StoreResult::Added { new: false, .. }));
    let all = match one(
        &mut s,
        StoreRequest::Sync {
            account: "alice@x".into(),
            after_message_id: None,
            since_ms: None,
            limit: 1,
        },
    ) {
        StoreResult::Messages(m) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(all[0].content, "text of m1 \u{1f600}");
    assert_eq!(all[0].disposition, ["positive-delivery", "display"]);
    assert_eq!(all[0].direction, Direction::Incoming);
}

#[test]
fn states_only_move_forward_and_markers_and_removals_apply() {
    let mut s = SqliteStore::open(":memory:").unwrap();
    one(
        &mut s,
        StoreRequest::AddMessage(msg("alice@x", "bob@y", "o1", Direction::Outgoing, 1)),
    );
    one(
        &mut s,
        StoreRequest::AddMessage(msg("alice@x", "bob@y", "i1", Direction::Incoming, 2)),
    );
    one(
        &mut s,
        StoreRequest::AddMessage(msg("alice@x", "bob@y", "i2", Direction::Incoming, 3)),
    );
    let set = |s: &mut SqliteStore, id: &str, state| match one(
        s,
        StoreRequest::SetState {
            account: "alice@x".into(),
            message_id: id.into(),
            state,
        },
    ) {
        StoreResult::StateSet(m) => m.map(|m| m.state),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        set(&mut s, "o1", MessageState::Accepted),
        Some(MessageState::Accepted)
    );
    assert_eq!(
        set(&mut s, "o1", MessageState::Displayed),
        Some(MessageState::Displayed)
    );
    assert_eq!(
        set(&mut s, "o1", MessageState::Delivered),
        Some(MessageState::Displayed),
        "never back"
    );
    assert_eq!(set(&mut s, "nope", MessageState::Delivered), None);
    let read = one(
        &mut s,
        StoreRequest::MarkConversationRead {
            account: "alice@x".into(),
            contact: "bob@y".into(),
        },
    );
    assert_eq!(read, StoreResult::Changed(2));
    let removed = one(
        &mut s,
        StoreRequest::RemoveMessage {
            account: "alice@x".into(),
            contact: "bob@y".into(),
            message_id: "i1".into(),
        },
    );
    assert_eq!(removed, StoreResult::Changed(1));
    assert_eq!(sync(&mut s, None, None, 10), ["o1", "i2"]);
    let gone = one(
        &mut s,
        StoreRequest::RemoveConversation {
            account: "alice@x".into(),
            contact: "bob@y".into(),
        },
    );
    assert_eq!(gone, StoreResult::Changed(2));
    assert!(sync(&mut s, None, None, 10).is_empty());
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
    assert_eq!(sync(&mut s, None, None, 10), ["old", "new"]);
    assert_eq!(
        one(&mut s, StoreRequest::Expire { before_ms: 500 }),
        StoreResult::Changed(1)
    );
    assert_eq!(sync(&mut s, None, None, 10), ["new"]);
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
