//! The addressbook on a real XCAP server (issue 13 item 2): Kamailio's `xcap_server` on
//! 127.0.0.1 with digest auth, the gateway configured with `xcap.root`. After every update
//! the document is read on the server's side with curl (an independent HTTP client, digest
//! with the plain password), a conflicting write by another client in between is re-read
//! and retried, and a blocking policy written to `pres-rules` really stops a watcher.

mod common;

use std::process::Command;
use std::time::Duration;

use common::conn::Conn;
use common::peers::{password, poll, Kamailio, KamailioDb, KamailioOpts};
use common::*;
use serde_json::{json, Value};

const ALICE: &str = "alice@example.test";

fn payload(ev: &Value) -> &Value {
    match ev.get("data") {
        Some(d) if d.is_object() => d,
        _ => ev,
    }
}

fn fetch(c: &mut Conn, account: &str) -> Value {
    c.ack(json!({"sylkrtc":"account-fetch-addressbook","account":account}));
    let ev = c.event(Duration::from_secs(10), |v| {
        v["event"] == "addressbook-fetched" && v["account"] == account
    });
    payload(&ev)["addressbook"].clone()
}

fn update(c: &mut Conn, account: &str, action: &str, kind: &str, data: Value) -> Value {
    c.ack(
        json!({"sylkrtc":"account-update-addressbook","account":account,
                 "action":action,"type":kind,"data":data}),
    );
    c.event(Duration::from_secs(10), |v| {
        v["account"] == account
            && matches!(
                v["event"].as_str(),
                Some("addressbook-updated" | "addressbook-update-failed")
            )
    })
}

fn ids(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    v.sort_unstable();
    v
}

/// A document of `user` on the server: (status, ETag, body), read with curl.
fn server_doc(kam: &Kamailio, user: &str, auid: &str) -> (u16, String, String) {
    let url = format!(
        "http://{}/xcap-root/{auid}/users/sip:{user}@example.test/index",
        kam.xcap_addr().unwrap()
    );
    curl(user, &["-X", "GET", &url])
}

/// Writes a document as another client would (curl, digest, unconditional).
fn server_put(kam: &Kamailio, user: &str, auid: &str, content_type: &str, body: &str) -> u16 {
    let url = format!(
        "http://{}/xcap-root/{auid}/users/sip:{user}@example.test/index",
        kam.xcap_addr().unwrap()
    );
    let ct = format!("Content-Type: {content_type}");
    curl(user, &["-X", "PUT", "-H", &ct, "--data-binary", body, &url]).0
}

fn curl(user: &str, args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--digest", "-u"])
        .arg(format!("{user}:{}", password(user)))
        .args(["-D", "-"])
        .args(args)
        .output()
        .expect("curl (tests/peers/requirements.deb)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // With digest, curl prints the 401's head too: the last response is the answer.
    let last = text.rfind("HTTP/1.").map_or(&text[..], |i| &text[i..]);
    let (head, body) = last.split_once("\r\n\r\n").unwrap_or((last, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let etag = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case("etag"))
        })
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    (status, etag, body.to_owned())
}

/// A gateway whose addressbooks are on `kam`'s XCAP server, logging its XCAP requests;
/// `extra` is more configuration.
fn gateway_with_xcap(kam: &Kamailio, extra: &str) -> Gateway {
    Gateway::start(
        &format!(
            "[sip]\noutbound_proxy = \"sip:{};transport=udp\"\n[xcap]\nroot = \"http://{}/xcap-root/\"\n[log]\nlevel = \"debug\"\n{extra}",
            kam.sip_addr(),
            kam.xcap_addr().unwrap()
        ),
        &[],
    )
}

/// Waits until the gateway has taken `n` good NOTIFYs in all (a subscription is up).
fn wait_notifies(gw: &Gateway, n: f64) {
    let got = poll(Duration::from_secs(15), || {
        let m = http(gw.metrics.unwrap_or(gw.ws), "GET", "/metrics").2;
        (metric(&m, "sylk_presence_notifies_total", "result=\"ok\"").unwrap_or(0.0) >= n)
            .then_some(())
    });
    assert!(got.is_some(), "{n} NOTIFYs did not arrive");
}

#[test]
fn addressbook_lives_in_the_users_xcap_documents() {
    let kam = Kamailio::start(KamailioOpts {
        xcap: true,
        ..KamailioOpts::default()
    });
    let gw = gateway_with_xcap(&kam, "");
    let mut one = Conn::open(gw.ws);
    one.register(&kam, "alice", None);

    // No documents yet (404): an empty addressbook.
    assert_eq!(server_doc(&kam, "alice", "resource-lists").0, 404);
    let empty = fetch(&mut one, ALICE);
    assert_eq!(
        (
            ids(&empty["contacts"]),
            ids(&empty["groups"]),
            ids(&empty["policies"])
        ),
        (vec![], vec![], vec![]),
        "{empty}"
    );

    let bob = json!({"id":"c-bob","name":"Bob","uris":[{"id":"u1","uri":"sip:bob@example.test","type":"sip","default":true}],
                     "presence":{"policy":"allow","subscribe":false},"attributes":{"color":"red"}});
    let ev = update(&mut one, ALICE, "add", "contact", bob.clone());
    assert_eq!(ev["event"], "addressbook-updated", "{ev}");
    let (status, etag1, doc) = server_doc(&kam, "alice", "resource-lists");
    assert_eq!(status, 200, "{doc}");
    assert!(!etag1.is_empty());
    assert!(doc.contains("<list name=\"contacts\">"), "{doc}");
    assert!(
        doc.contains("<entry uri=\"sip:bob@example.test\"><display-name>Bob</display-name>"),
        "{doc}"
    );
    assert!(
        doc.contains("urn:ag-projects:xml:ns:sylk-gateway:addressbook"),
        "{doc}"
    );
    assert!(doc.contains("color"), "{doc}");

    let group = json!({"id":"g-friends","name":"Friends","contacts":[bob.clone()]});
    let ev = update(&mut one, ALICE, "add", "group", group);
    assert_eq!(ev["event"], "addressbook-updated", "{ev}");
    let (_, etag2, doc) = server_doc(&kam, "alice", "resource-lists");
    assert_ne!(etag1, etag2);
    assert!(doc.contains("<list name=\"g-friends\">"), "{doc}");
    assert!(
        doc.contains("<display-name>Friends</display-name>"),
        "{doc}"
    );

    let policy = json!({"id":"p-eve","name":"Eve","uri":"sip:eve@example.test","presence":{"policy":"block"}});
    assert_eq!(
        update(&mut one, ALICE, "add", "policy", policy)["event"],
        "addressbook-updated"
    );
    let (status, _, rules) = server_doc(&kam, "alice", "pres-rules");
    assert_eq!(status, 200, "{rules}");
    assert!(
        rules.contains("<cr:one id=\"sip:eve@example.test\"/>"),
        "{rules}"
    );
    assert!(
        rules.contains("<pr:sub-handling>block</pr:sub-handling>"),
        "{rules}"
    );

    // Rename: the contact's entry and its group membership follow.
    let mut renamed = bob.clone();
    renamed["name"] = "Robert".into();
    assert_eq!(
        update(&mut one, ALICE, "update", "contact", renamed)["event"],
        "addressbook-updated"
    );
    let (_, _, doc) = server_doc(&kam, "alice", "resource-lists");
    assert_eq!(
        doc.matches("<display-name>Robert</display-name>").count(),
        2,
        "{doc}"
    );
    assert!(!doc.contains(">Bob<"), "{doc}");

    // Another client writes the document meanwhile (our ETag is stale): the update is
    // re-read, applied to what is there now, and written; the other client's entry stays.
    let (_, _, current) = server_doc(&kam, "alice", "resource-lists");
    let foreign = current.replace(
        "<list name=\"contacts\">",
        "<list name=\"contacts\">\n    <entry uri=\"sip:carol@example.test\"><display-name>Carol</display-name></entry>",
    );
    assert_eq!(
        server_put(
            &kam,
            "alice",
            "resource-lists",
            "application/resource-lists+xml",
            &foreign
        ),
        200
    );
    let dave =
        json!({"id":"c-dave","name":"Dave","uris":[{"id":"u1","uri":"sip:dave@example.test"}]});
    let ev = update(&mut one, ALICE, "add", "contact", dave);
    assert_eq!(ev["event"], "addressbook-updated", "{ev}");
    let (_, _, doc) = server_doc(&kam, "alice", "resource-lists");
    assert!(doc.contains("sip:carol@example.test"), "{doc}");
    assert!(doc.contains("sip:dave@example.test"), "{doc}");
    // The fetch now shows the other client's entry as a contact (its id is its URI).
    let ab = fetch(&mut one, ALICE);
    assert_eq!(
        ids(&ab["contacts"]),
        ["c-bob", "c-dave", "sip:carol@example.test"],
        "{ab}"
    );
    assert_eq!(ab["groups"][0]["contacts"][0]["name"], "Robert", "{ab}");
    assert_eq!(ab["policies"][0]["presence"]["policy"], "block", "{ab}");
    let bob_now = ab["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "c-bob")
        .unwrap();
    assert_eq!(bob_now["attributes"]["color"], "red", "{ab}");
    assert_eq!(bob_now["presence"]["policy"], "allow", "{ab}");
    // It was a conflict indeed (412 to our If-Match), retried once.
    gw.wait_for_log("changed meanwhile (412); retrying", Duration::from_secs(5));

    // A fetch reads the documents again: what another client wrote shows up.
    let (_, _, current) = server_doc(&kam, "alice", "resource-lists");
    let foreign = current.replace(
        "</resource-lists>",
        "<list name=\"work\"><display-name>Work</display-name><entry uri=\"sip:erin@example.test\"/></list></resource-lists>",
    );
    let ct = "application/resource-lists+xml";
    assert_eq!(
        server_put(&kam, "alice", "resource-lists", ct, &foreign),
        200
    );
    let ab = fetch(&mut one, ALICE);
    assert_eq!(ids(&ab["groups"]), ["g-friends", "work"], "{ab}");

    // Deletes: the contact leaves its group too; the policy's rule goes.
    assert_eq!(
        update(&mut one, ALICE, "delete", "contact", json!({"id":"c-bob"}))["event"],
        "addressbook-updated"
    );
    assert_eq!(
        update(&mut one, ALICE, "delete", "policy", json!({"id":"p-eve"}))["event"],
        "addressbook-updated"
    );
    let (_, _, doc) = server_doc(&kam, "alice", "resource-lists");
    assert!(!doc.contains("sip:bob@example.test"), "{doc}");
    assert!(doc.contains("<list name=\"g-friends\">"), "{doc}");
    let (_, _, rules) = server_doc(&kam, "alice", "pres-rules");
    assert!(!rules.contains("eve@"), "{rules}");

    // Deleting what is not there: the failure event, with why.
    let ev = update(&mut one, ALICE, "delete", "group", json!({"id":"nope"}));
    assert_eq!(ev["event"], "addressbook-update-failed", "{ev}");
    drop(gw);
}

#[test]
fn a_blocking_policy_in_pres_rules_hides_the_user_from_a_watcher() {
    let kam = Kamailio::start(KamailioOpts {
        xcap: true,
        pres_rules: true,
        ..KamailioOpts::default()
    });
    // One subscription per contact (this Kamailio has no RLS; the list attempt would add
    // SUBSCRIBEs to count).
    let gw = gateway_with_xcap(&kam, "[presence]\nrls = false\n");
    let mut alice = Conn::open(gw.ws);
    alice.register(&kam, "alice", None);
    let mut bob = Conn::open(gw.ws);
    bob.register(&kam, "bob", None);
    let mut carol = Conn::open(gw.ws);
    carol.register(&kam, "carol", None);
    const BOB: &str = "bob@example.test";
    const CAROL: &str = "carol@example.test";

    // Alice allows Bob (Kamailio enforces pres-rules: without a rule he would stay pending).
    let allow = json!({"id":"p-bob","name":"Bob","uri":"sip:bob@example.test","presence":{"policy":"allow"}});
    let ev = update(&mut alice, ALICE, "add", "policy", allow.clone());
    assert_eq!(ev["event"], "addressbook-updated", "{ev}");
    let allow_carol =
        json!({"id":"p-carol","uri":"sip:carol@example.test","presence":{"policy":"allow"}});
    let ev = update(&mut alice, ALICE, "add", "policy", allow_carol);
    assert_eq!(ev["event"], "addressbook-updated", "{ev}");

    // Bob (and Carol) watch Alice; she goes online and he sees it.
    let contact = json!({"id":"c-alice","name":"Alice","uris":[{"id":"u1","uri":"sip:alice@example.test"}],
                         "presence":{"policy":"allow","subscribe":true}});
    let ev = update(&mut bob, BOB, "add", "contact", contact.clone());
    assert_eq!(ev["event"], "addressbook-updated", "{ev}");
    wait_notifies(&gw, 1.0);
    let ev = update(&mut carol, CAROL, "add", "contact", contact);
    assert_eq!(ev["event"], "addressbook-updated", "{ev}");
    wait_notifies(&gw, 2.0);
    alice.ack(json!({"sylkrtc":"account-publish-presence","account":ALICE,"state":"online","note":"here"}));
    let is_alice = |v: &Value| {
        v["event"] == "presence" && v["account"] == BOB && payload(v)["contact"] == "c-alice"
    };
    bob.event(Duration::from_secs(15), |v| {
        is_alice(v) && payload(v)["state"] == "open" && payload(v)["note"] == "here"
    });

    // Alice blocks him: the rule on the server says so, and Kamailio ends his view of her.
    bob.forget_events();
    let mut block = allow;
    block["presence"]["policy"] = "block".into();
    let ev = update(&mut alice, ALICE, "update", "policy", block);
    assert_eq!(ev["event"], "addressbook-updated", "{ev}");
    let (_, _, rules) = server_doc(&kam, "alice", "pres-rules");
    assert!(
        rules.contains("<cr:one id=\"sip:bob@example.test\"/>")
            && rules.contains("<pr:sub-handling>block</pr:sub-handling>"),
        "{rules}"
    );
    let hidden = bob.event(Duration::from_secs(15), |v| {
        is_alice(v) && payload(v)["state"] != "open"
    });
    assert_eq!(payload(&hidden)["state"], "unknown", "{hidden}");
    // Her next change reaches Carol, still allowed, and not him.
    alice.ack(
        json!({"sylkrtc":"account-publish-presence","account":ALICE,"state":"away","note":"gone"}),
    );
    carol.event(Duration::from_secs(15), |v| {
        v["event"] == "presence" && v["account"] == CAROL && payload(v)["note"] == "gone"
    });
    assert!(
        !bob.gets(Duration::from_millis(500), |v| is_alice(v)
            && payload(v)["note"] == "gone"),
        "a blocked watcher saw the change"
    );
}

#[test]
fn an_unreachable_xcap_server_fails_the_requests_with_the_cause() {
    let kam = Kamailio::start(KamailioOpts::default());
    // Nothing listens at the root.
    let closed = common::peers::free_tcp_port();
    let gw = Gateway::start(
        &format!(
            "[sip]\noutbound_proxy = \"sip:{};transport=udp\"\n[xcap]\nroot = \"http://127.0.0.1:{closed}/xcap-root\"\n",
            kam.sip_addr(),
        ),
        &[],
    );
    let mut one = Conn::open(gw.ws);
    one.register(&kam, "alice", None);
    let error = one.error(json!({"sylkrtc":"account-fetch-addressbook","account":ALICE}));
    assert_eq!(
        error, "Addressbook unavailable: XCAP server unreachable",
        "{error}"
    );
    // The update fails the same way (the load it needs fails).
    let error = one.error(
        json!({"sylkrtc":"account-update-addressbook","account":ALICE,
        "action":"add","type":"contact","data":{"id":"c1","name":"X","uris":[]}}),
    );
    assert!(error.contains("XCAP server unreachable"), "{error}");
}

#[test]
fn an_https_xcap_root_works_through_tls() {
    let kam = Kamailio::start(KamailioOpts {
        xcap: true,
        ..KamailioOpts::default()
    });
    // HAProxy terminates TLS (the dev certificate for 127.0.0.1) in front of Kamailio's
    // plain XCAP listener; the gateway verifies it against that certificate.
    let front = common::peers::Haproxy::start_tls_front(kam.xcap_addr().unwrap());
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/certs/localhost.crt");
    let gw = Gateway::start(
        &format!(
            "[sip]\noutbound_proxy = \"sip:{};transport=udp\"\ntls_ca_file = \"{ca}\"\n\
             [xcap]\nroot = \"https://{}/xcap-root\"\n",
            kam.sip_addr(),
            front.addr()
        ),
        &[],
    );
    let mut one = Conn::open(gw.ws);
    one.register(&kam, "alice", None);
    let dave =
        json!({"id":"c-dave","name":"Dave","uris":[{"id":"u1","uri":"sip:dave@example.test"}]});
    let ev = update(&mut one, ALICE, "add", "contact", dave);
    assert_eq!(ev["event"], "addressbook-updated", "{ev}");
    let (status, _, doc) = server_doc(&kam, "alice", "resource-lists");
    assert_eq!(status, 200, "{doc}");
    assert!(doc.contains("sip:dave@example.test"), "{doc}");
    assert_eq!(ids(&fetch(&mut one, ALICE)["contacts"]), ["c-dave"]);
}

/// RFC 4662 through Kamailio's `rls`: the gateway writes the user's rls-services document
/// with the service `sip:alice-buddies@example.test` listing the contacts she watches
/// (not dave, whose `presence.subscribe` is false, until it is true), subscribes to the
/// list once, and the RLS takes it as a list: it subscribes to each resource itself
/// (Kamailio's presence then NOTIFYs the RLS, not the gateway, about bob). Presence coming
/// back through the RLS is checked on PostgreSQL (the next test): over SQLite Kamailio's
/// RLS sends no list updates (README, "What is left").
#[test]
fn the_buddy_list_is_one_subscription_served_by_the_rls() {
    let kam = Kamailio::start(KamailioOpts {
        xcap: true,
        rls: true,
        ..KamailioOpts::default()
    });
    let gw = gateway_with_xcap(&kam, "");
    let mut alice = Conn::open(gw.ws);
    alice.register(&kam, "alice", None);
    let dave = json!({"id":"c-dave","name":"Dave","uris":[{"id":"u1","uri":"sip:dave@example.test"}],
                      "presence":{"policy":"allow","subscribe":false}});
    let ev = update(&mut alice, ALICE, "add", "contact", dave.clone());
    assert_eq!(ev["event"], "addressbook-updated", "{ev}");
    let contact = json!({"id":"c-bob","name":"Bob","uris":[{"id":"u1","uri":"sip:bob@example.test"}],
                         "presence":{"policy":"allow","subscribe":true}});
    let ev = update(&mut alice, ALICE, "add", "contact", contact);
    assert_eq!(ev["event"], "addressbook-updated", "{ev}");
    // The rls-services document on the server lists bob, the one contact she watches.
    let services = |want: &str| {
        poll(Duration::from_secs(10), || {
            let (status, _, doc) = server_doc(&kam, "alice", "rls-services");
            (status == 200 && doc.contains(want)).then_some(doc)
        })
    };
    let doc = services("<entry uri=\"sip:bob@example.test\"/>").expect("no service for bob");
    assert!(
        doc.contains("<service uri=\"sip:alice-buddies@example.test\"><list xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><entry uri=\"sip:bob@example.test\"/></list>"),
        "{doc}"
    );
    // The RLS subscribed to bob on the list's behalf: presence NOTIFYs it (its contact is
    // Kamailio's own address), so the list subscription was taken as one.
    let rls = format!(
        "via sip:{} on behalf of sip:bob@example.test",
        kam.sip_addr()
    );
    let served = poll(Duration::from_secs(10), || {
        kam.log().contains(&rls).then_some(())
    });
    assert!(
        served.is_some(),
        "the RLS did not subscribe to bob:\n{}",
        kam.log()
    );
    // Dave is in her contacts list but not watched, by the RLS either.
    let (_, _, lists) = server_doc(&kam, "alice", "resource-lists");
    assert!(lists.contains("sip:dave@example.test"), "{lists}");
    let rls_dave = format!(
        "via sip:{} on behalf of sip:dave@example.test",
        kam.sip_addr()
    );
    assert!(!kam.log().contains(&rls_dave), "{}", kam.log());
    // Once she watches him the service lists him, and the RLS subscribes to him.
    let mut dave = dave;
    dave["presence"]["subscribe"] = true.into();
    let ev = update(&mut alice, ALICE, "update", "contact", dave);
    assert_eq!(ev["event"], "addressbook-updated", "{ev}");
    services("<entry uri=\"sip:dave@example.test\"/>").expect("dave not in the service");
    let served = poll(Duration::from_secs(10), || {
        kam.log().contains(&rls_dave).then_some(())
    });
    assert!(
        served.is_some(),
        "the RLS did not subscribe to dave:\n{}",
        kam.log()
    );
    // And the gateway did not fall back to watching them itself.
    assert!(
        !gw.log_lines()
            .iter()
            .any(|l| l.contains("no resource list")),
        "{}",
        gw.log_lines().join("\n")
    );
}

/// Presence through the RLS end to end (RFC 4662 over RFC 3856): Kamailio on PostgreSQL
/// serves alice's buddy list; bob is baresip with its `presence` module, PUBLISHing to
/// Kamailio's presence server; the RLS watches him and tells the gateway in RLMI NOTIFYs,
/// which become alice's `presence` events as he goes online, offline and online again.
/// carol, a second contact who never publishes, shows that the gateway holds one
/// subscription (the list) and not one per contact.
#[test]
fn presence_of_a_contact_arrives_through_the_rls() {
    use common::peers::{Baresip, BaresipOpts};
    let kam = Kamailio::start(KamailioOpts {
        xcap: true,
        rls: true,
        database: KamailioDb::Postgres,
        ..KamailioOpts::default()
    });
    let mut bob = Baresip::start(
        &kam,
        BaresipOpts {
            presence: true,
            ..BaresipOpts::default()
        },
    );
    bob.wait_for_registration(Duration::from_secs(10));
    let gw = gateway_with_xcap(&kam, "");
    let mut alice = Conn::open(gw.ws);
    alice.register(&kam, "alice", None);
    for (id, user) in [("c-bob", "bob"), ("c-carol", "carol")] {
        let contact = json!({"id":id,"name":user,"uris":[{"id":"u1","uri":format!("sip:{user}@example.test")}],
                             "presence":{"policy":"allow","subscribe":true}});
        let ev = update(&mut alice, ALICE, "add", "contact", contact);
        assert_eq!(ev["event"], "addressbook-updated", "{ev}");
    }
    let state_is = |want: &'static str| {
        move |v: &Value| {
            v["event"] == "presence"
                && v["account"] == ALICE
                && payload(v)["contact"] == "c-bob"
                && payload(v)["state"] == want
        }
    };
    let wait = |alice: &mut Conn, want: &'static str| {
        let got = alice.gets(Duration::from_secs(20), state_is(want));
        assert!(
            got,
            "bob never {want} through the RLS\n--- kamailio:\n{}\n--- gateway:\n{}",
            kam.log(),
            gw.log_lines().join("\n")
        );
    };
    // baresip publishes itself online once registered.
    wait(&mut alice, "open");
    alice.forget_events();
    bob.command("presence_offline").expect("presence_offline");
    wait(&mut alice, "closed");
    alice.forget_events();
    bob.command("presence_online").expect("presence_online");
    wait(&mut alice, "open");
    // All of it came through the list: one subscription (not one per contact), active.
    let phases = || {
        let m = http(gw.metrics.unwrap_or(gw.ws), "GET", "/metrics").2;
        [
            "subscribing",
            "pending",
            "active",
            "retrying",
            "unsubscribing",
        ]
        .map(|p| metric(&m, "sylk_sip_subscriptions", &format!("phase=\"{p}\"")).unwrap_or(0.0))
    };
    let one = poll(Duration::from_secs(10), || {
        (phases() == [0.0, 0.0, 1.0, 0.0, 0.0]).then_some(())
    });
    assert!(
        one.is_some(),
        "subscriptions by phase: {:?}\n{}",
        phases(),
        gw.log_lines().join("\n")
    );
    assert!(
        !gw.log_lines()
            .iter()
            .any(|l| l.contains("no resource list")),
        "{}",
        gw.log_lines().join("\n")
    );
}
