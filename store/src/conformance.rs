//! The behaviour every [`MessageStore`] backend must show, as functions over
//! `&mut dyn MessageStore` that panic on a difference: each backend's own tests run them
//! (SQLite's unit tests; PostgreSQL's in `tests/store_postgres.rs` against a real server).
//! `ns` prefixes every account and contact so runs can share a database.

use crate::{Direction, MessageState, MessageStore, StoreRequest, StoreResult, StoredMessage};

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

fn one(store: &mut dyn MessageStore, r: StoreRequest) -> StoreResult {
    store
        .execute_batch(vec![r])
        .pop()
        .expect("one result")
        .expect("success")
}

fn sync(
    store: &mut dyn MessageStore,
    account: &str,
    after: Option<&str>,
    since: Option<i64>,
    limit: u32,
) -> Vec<String> {
    match one(
        store,
        StoreRequest::Sync {
            account: account.into(),
            after_message_id: after.map(str::to_owned),
            since_ms: since,
            limit,
        },
    ) {
        StoreResult::Messages(m) => m.into_iter().map(|m| m.message_id).collect(),
        other => panic!("{other:?}"),
    }
}

/// The journal replays in order, after a message id, since an instant and up to a limit;
/// a message id is stored once per account.
pub fn journal_replays_in_order(s: &mut dyn MessageStore, ns: &str) {
    let alice = format!("{ns}alice@x");
    let bob = format!("{ns}bob@y");
    let carol = format!("{ns}carol@x");
    let batch: Vec<_> = (1..=5)
        .map(|i| {
            let dir = if i % 2 == 0 {
                Direction::Outgoing
            } else {
                Direction::Incoming
            };
            StoreRequest::AddMessage(msg(&alice, &bob, &format!("m{i}"), dir, i * 1000))
        })
        .chain([StoreRequest::AddMessage(msg(
            &carol,
            &bob,
            "c1",
            Direction::Incoming,
            1,
        ))])
        .collect();
    let results = s.execute_batch(batch);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(StoreResult::Added { new: true, .. }))),
        "{results:?}"
    );
    assert_eq!(
        sync(s, &alice, None, None, 5000),
        ["m1", "m2", "m3", "m4", "m5"]
    );
    assert_eq!(sync(s, &alice, Some("m3"), None, 5000), ["m4", "m5"]);
    assert_eq!(sync(s, &alice, Some("unknown"), None, 2), ["m1", "m2"]);
    assert_eq!(sync(s, &alice, None, Some(4000), 5000), ["m4", "m5"]);
    // The same id again is not stored twice.
    let dup = one(
        s,
        StoreRequest::AddMessage(msg(&alice, &bob, "m1", Direction::Incoming, 9)),
    );
    assert!(matches!(dup, StoreResult::Added { new: false, .. }));
    let all = match one(
        s,
        StoreRequest::Sync {
            account: alice.clone(),
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
    assert_eq!(all[0].contact, bob);
}

/// States only move forward; read markers and removals apply; keys are kept and replaced;
/// retention deletes by age; a probe succeeds.
pub fn states_markers_removals_keys_and_expiry(s: &mut dyn MessageStore, ns: &str) {
    let alice = format!("{ns}st-alice@x");
    let bob = format!("{ns}bob@y");
    for (id, dir, at) in [
        ("o1", Direction::Outgoing, 1),
        ("i1", Direction::Incoming, 2),
        ("i2", Direction::Incoming, 3),
    ] {
        one(s, StoreRequest::AddMessage(msg(&alice, &bob, id, dir, at)));
    }
    let set = |s: &mut dyn MessageStore, id: &str, state| match one(
        s,
        StoreRequest::SetState {
            account: alice.clone(),
            message_id: id.into(),
            state,
        },
    ) {
        StoreResult::StateSet(m) => m.map(|m| m.state),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        set(s, "o1", MessageState::Accepted),
        Some(MessageState::Accepted)
    );
    assert_eq!(
        set(s, "o1", MessageState::Displayed),
        Some(MessageState::Displayed)
    );
    assert_eq!(
        set(s, "o1", MessageState::Delivered),
        Some(MessageState::Displayed),
        "never back"
    );
    assert_eq!(set(s, "nope", MessageState::Delivered), None);
    let read = one(
        s,
        StoreRequest::MarkConversationRead {
            account: alice.clone(),
            contact: bob.clone(),
        },
    );
    assert_eq!(read, StoreResult::Changed(2));
    let removed = one(
        s,
        StoreRequest::RemoveMessage {
            account: alice.clone(),
            contact: bob.clone(),
            message_id: "i1".into(),
        },
    );
    assert_eq!(removed, StoreResult::Changed(1));
    assert_eq!(sync(s, &alice, None, None, 10), ["o1", "i2"]);
    let gone = one(
        s,
        StoreRequest::RemoveConversation {
            account: alice.clone(),
            contact: bob.clone(),
        },
    );
    assert_eq!(gone, StoreResult::Changed(2));
    assert!(sync(s, &alice, None, None, 10).is_empty());

    let key_owner = format!("{ns}bob@y");
    one(
        s,
        StoreRequest::SetPublicKey {
            uri: key_owner.clone(),
            key: "K1".into(),
        },
    );
    one(
        s,
        StoreRequest::SetPublicKey {
            uri: key_owner.clone(),
            key: "K2".into(),
        },
    );
    assert_eq!(
        one(s, StoreRequest::LookupPublicKey { uri: key_owner }),
        StoreResult::PublicKey(Some("K2".into()))
    );
    assert_eq!(
        one(
            s,
            StoreRequest::LookupPublicKey {
                uri: format!("{ns}nobody@y")
            }
        ),
        StoreResult::PublicKey(None)
    );
    // Retention: stored_at far in the past for this namespace only.
    let dave = format!("{ns}dave@x");
    one(
        s,
        StoreRequest::AddMessage(msg(&dave, &bob, "old", Direction::Incoming, -5_000_000)),
    );
    one(
        s,
        StoreRequest::AddMessage(msg(&dave, &bob, "new", Direction::Incoming, i64::MAX / 2)),
    );
    match one(
        s,
        StoreRequest::Expire {
            before_ms: -4_000_000,
        },
    ) {
        StoreResult::Changed(n) => assert!(n >= 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(sync(s, &dave, None, None, 10), ["new"]);
    assert_eq!(one(s, StoreRequest::Probe), StoreResult::Changed(0));
}

/// A batch whose one request fails still carries out the others.
pub fn one_failure_spares_the_batch(s: &mut dyn MessageStore, ns: &str) {
    let alice = format!("{ns}erin@x");
    let bob = format!("{ns}bob@y");
    let mut bad = msg(&alice, &bob, "bad", Direction::Incoming, 1);
    // NUL cannot be stored in a text column of PostgreSQL; SQLite takes it, so this
    // exercise only checks the others come through.
    bad.content = "nul \u{0} inside".into();
    let results = s.execute_batch(vec![
        StoreRequest::AddMessage(msg(&alice, &bob, "a", Direction::Incoming, 1)),
        StoreRequest::AddMessage(bad),
        StoreRequest::AddMessage(msg(&alice, &bob, "b", Direction::Incoming, 2)),
    ]);
    assert_eq!(results.len(), 3);
    assert!(
        matches!(results[0], Ok(StoreResult::Added { new: true, .. })),
        "{results:?}"
    );
    assert!(
        matches!(results[2], Ok(StoreResult::Added { new: true, .. })),
        "{results:?}"
    );
    let got = sync(s, &alice, None, None, 10);
    assert!(
        got.starts_with(&["a".to_owned()]) && got.ends_with(&["b".to_owned()]),
        "{got:?}"
    );
}

/// The addressbook keeps each account's entries in the order they were added; an insert of
/// an existing id and an update of a missing one change nothing (0); kinds and accounts
/// have separate id spaces.
pub fn addressbook_keeps_order_and_modes(s: &mut dyn MessageStore, ns: &str) {
    use crate::addressbook::{EntryKind, PutMode};
    let alice = format!("{ns}ab-alice@example.com");
    let bob = format!("{ns}ab-bob@example.com");
    let put = |account: &str, kind, id: &str, data: &str, mode| StoreRequest::AddressbookPut {
        account: account.into(),
        kind,
        id: id.into(),
        data: data.into(),
        mode,
    };
    let changed = |r| match r {
        StoreResult::Changed(n) => n,
        other => panic!("{other:?}"),
    };
    let (c, g) = (EntryKind::Contact, EntryKind::Group);
    assert_eq!(
        changed(one(s, put(&alice, c, "2", "{\"n\":2}", PutMode::Insert))),
        1
    );
    assert_eq!(
        changed(one(s, put(&alice, c, "1", "{\"n\":1}", PutMode::Insert))),
        1
    );
    assert_eq!(
        changed(one(s, put(&alice, g, "1", "{\"g\":1}", PutMode::Insert))),
        1
    );
    assert_eq!(
        changed(one(s, put(&bob, c, "1", "{\"b\":1}", PutMode::Insert))),
        1
    );
    assert_eq!(
        changed(one(s, put(&alice, c, "1", "{\"x\":0}", PutMode::Insert))),
        0
    );
    assert_eq!(
        changed(one(s, put(&alice, c, "9", "{\"x\":0}", PutMode::Update))),
        0
    );
    assert_eq!(
        changed(one(s, put(&alice, c, "2", "{\"n\":22}", PutMode::Update))),
        1
    );
    let fetch = |s: &mut dyn MessageStore, account: &str| match one(
        s,
        StoreRequest::AddressbookFetch {
            account: account.into(),
        },
    ) {
        StoreResult::Addressbook(entries) => entries
            .into_iter()
            .map(|e| (e.kind, e.id, e.data))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        fetch(s, &alice),
        [
            (c, "2".to_owned(), "{\"n\":22}".to_owned()),
            (c, "1".to_owned(), "{\"n\":1}".to_owned()),
            (g, "1".to_owned(), "{\"g\":1}".to_owned()),
        ]
    );
    let delete = |id: &str, kind| StoreRequest::AddressbookDelete {
        account: alice.clone(),
        kind,
        id: id.into(),
    };
    assert_eq!(changed(one(s, delete("1", c))), 1);
    assert_eq!(changed(one(s, delete("1", c))), 0);
    assert_eq!(fetch(s, &alice).len(), 2);
    assert_eq!(
        fetch(s, &bob),
        [(c, "1".to_owned(), "{\"b\":1}".to_owned())]
    );
}
