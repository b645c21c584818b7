//! Contacts end to end with real peers on 127.0.0.1 (issue 13): sylkRTC-2 clients of the
//! real gateway keep their addressbook in the embedded store (no XCAP server configured):
//! fetch, add/update/delete of contacts, groups and policies forked to the account's other
//! connection, failures as `addressbook-update-failed`, the addressbook surviving a
//! restart; and presence through Kamailio's presence server: one account publishes
//! (`account-publish-presence`, PUBLISH), the other watches it as a contact (SUBSCRIBE,
//! NOTIFY) and sees `presence` account events; baresip's `presence` module going offline
//! and online; a SIPp presentity NOTIFYing bad bodies (400, 415, counted), a good PIDF
//! with RPID, and getting the un-SUBSCRIBE when the account unregisters.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::conn::Conn;
use common::peers::{Kamailio, KamailioOpts, RunDir};
use common::*;
use serde_json::{json, Value};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";

/// The addressbook requests, on the tests' shared sylkRTC-2 connection.
trait Addressbook {
    fn fetch(&mut self, account: &str) -> Value;
    fn update(&mut self, account: &str, action: &str, kind: &str, data: Value) -> Value;
}

impl Addressbook for Conn {
    /// `account-fetch-addressbook`, then its `addressbook-fetched` event.
    fn fetch(&mut self, account: &str) -> Value {
        self.ack(json!({"sylkrtc":"account-fetch-addressbook","account":account}));
        let ev = self.event(Duration::from_secs(10), |v| {
            v["event"] == "addressbook-fetched" && v["account"] == account
        });
        payload(&ev)["addressbook"].clone()
    }

    /// `account-update-addressbook`, then its `addressbook-updated` or `-update-failed`.
    fn update(&mut self, account: &str, action: &str, kind: &str, data: Value) -> Value {
        self.ack(
            json!({"sylkrtc":"account-update-addressbook","account":account,
                        "action":action,"type":kind,"data":data}),
        );
        self.event(Duration::from_secs(10), |v| {
            v["account"] == account
                && matches!(
                    v["event"].as_str(),
                    Some("addressbook-updated" | "addressbook-update-failed")
                )
        })
    }
}

/// The event's payload: sylkRTC-2 carries it in `data` or inline.
fn payload(ev: &Value) -> &Value {
    match ev.get("data") {
        Some(d) if d.is_object() => d,
        _ => ev,
    }
}

fn gateway_via(proxy: SocketAddr, args: &[&str]) -> Gateway {
    Gateway::start(
        &format!("[sip]\noutbound_proxy = \"sip:{proxy};transport=udp\"\n"),
        args,
    )
}

fn ids(list: &Value) -> Vec<&str> {
    let mut v: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn addressbook_from_the_store_forks_fails_clearly_and_survives_a_restart() {
    let kam = Kamailio::start(KamailioOpts::default());
    let dir = RunDir::new("contacts-db");
    let db = dir.path().join("gateway.sqlite");
    let db = db.to_str().unwrap();
    let mut gw = gateway_via(kam.sip_addr(), &["--database", db]);
    let mut one = Conn::open(gw.ws);
    let mut two = Conn::open(gw.ws);
    // Not before a successful registration on this connection.
    one.ack(json!({"sylkrtc":"account-add","account":ALICE,"password":kam.ha1("alice")}));
    assert_eq!(
        one.error(json!({"sylkrtc":"account-fetch-addressbook","account":ALICE})),
        "Account not authenticated"
    );
    one.ack(json!({"sylkrtc":"account-register","account":ALICE}));
    one.event(Duration::from_secs(10), |v| v["state"] == "registered");
    two.register(&kam, "alice", None);

    let empty = one.fetch(ALICE);
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
                     "dialog":{"policy":"allow","subscribe":false},"presence":{"policy":"allow","subscribe":false},
                     "attributes":{"color":"red"}});
    let ev = one.update(ALICE, "add", "contact", bob.clone());
    assert_eq!(ev["event"], "addressbook-updated", "{ev}");
    let p = payload(&ev);
    assert_eq!(
        (p["type"].as_str(), p["action"].as_str()),
        (Some("contact"), Some("add"))
    );
    assert_eq!(p["contact"]["attributes"]["color"], "red", "{ev}");
    // Forked to the account's other connection.
    let forked = two.event(Duration::from_secs(10), |v| {
        v["event"] == "addressbook-updated"
    });
    assert_eq!(payload(&forked)["contact"]["id"], "c-bob", "{forked}");

    let group = json!({"id":"g-friends","name":"Friends","contacts":[bob.clone()]});
    assert_eq!(
        one.update(ALICE, "add", "group", group)["event"],
        "addressbook-updated"
    );
    let policy = json!({"id":"p-eve","name":"Eve","uri":"sip:eve@example.test","dialog":{"policy":"deny"},"presence":{"policy":"deny"}});
    assert_eq!(
        one.update(ALICE, "add", "policy", policy)["event"],
        "addressbook-updated"
    );

    // Adding twice, changing or deleting what is not there: the failure event, with why.
    let dup = one.update(ALICE, "add", "contact", bob.clone());
    assert_eq!(dup["event"], "addressbook-update-failed", "{dup}");
    let p = payload(&dup);
    assert_eq!(
        (p["id"].as_str(), p["action"].as_str()),
        (Some("c-bob"), Some("add"))
    );
    assert!(
        p["error"].as_str().unwrap().contains("already exists"),
        "{dup}"
    );
    let missing = one.update(ALICE, "delete", "group", json!("g-none"));
    assert_eq!(missing["event"], "addressbook-update-failed", "{missing}");
    assert!(payload(&missing)["error"]
        .as_str()
        .unwrap()
        .contains("Unknown group"));

    let mut renamed = bob.clone();
    renamed["name"] = "Robert".into();
    assert_eq!(
        one.update(ALICE, "update", "contact", renamed)["event"],
        "addressbook-updated"
    );
    assert_eq!(
        one.update(ALICE, "delete", "policy", json!("p-eve"))["event"],
        "addressbook-updated"
    );

    let ab = two.fetch(ALICE);
    assert_eq!(ids(&ab["contacts"]), vec!["c-bob"], "{ab}");
    assert_eq!(ab["contacts"][0]["name"], "Robert", "{ab}");
    assert_eq!(ids(&ab["groups"]), vec!["g-friends"], "{ab}");
    assert_eq!(ab["groups"][0]["contacts"][0]["id"], "c-bob", "{ab}");
    assert_eq!(ids(&ab["policies"]), Vec::<&str>::new(), "{ab}");

    // Another account's addressbook is its own.
    let mut other = Conn::open(gw.ws);
    other.register(&kam, "bob", None);
    assert_eq!(ids(&other.fetch(BOB)["contacts"]), Vec::<&str>::new());

    // The store keeps it across a restart.
    drop((one, two, other));
    assert!(gw.terminate().success());
    let gw = gateway_via(kam.sip_addr(), &["--database", db]);
    let mut back = Conn::open(gw.ws);
    back.register(&kam, "alice", None);
    let ab = back.fetch(ALICE);
    assert_eq!(ids(&ab["contacts"]), vec!["c-bob"], "{ab}");
    assert_eq!(ab["contacts"][0]["attributes"]["color"], "red", "{ab}");
}

#[test]
fn presence_published_by_one_account_reaches_the_other_through_kamailio() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(kam.sip_addr(), &[]);
    let mut bob = Conn::open(gw.ws);
    bob.register(&kam, "bob", None);
    bob.ack(
        json!({"sylkrtc":"account-publish-presence","account":BOB,"state":"away","note":"lunch"}),
    );

    let mut alice = Conn::open(gw.ws);
    alice.register(&kam, "alice", None);
    let contact = json!({"id":"c-bob","name":"Bob","uris":[{"id":"u1","uri":"sip:bob@example.test"}],
                         "presence":{"policy":"allow","subscribe":true}});
    assert_eq!(
        alice.update(ALICE, "add", "contact", contact)["event"],
        "addressbook-updated"
    );
    let is_presence = |v: &Value| v["event"] == "presence" && v["account"] == ALICE;
    let away = alice.event(Duration::from_secs(15), |v| {
        is_presence(v) && payload(v)["state"] == "open" && payload(v)["note"] == "lunch"
    });
    let p = payload(&away);
    assert_eq!(
        (p["contact"].as_str(), p["uri"].as_str()),
        (Some("c-bob"), Some("sip:bob@example.test")),
        "{away}"
    );
    assert!(
        p["activities"].as_array().unwrap().contains(&json!("away")),
        "{away}"
    );

    // A change is seen as it happens (only what follows it counts).
    alice.forget_events();
    bob.ack(json!({"sylkrtc":"account-publish-presence","account":BOB,"state":"busy"}));
    alice.event(Duration::from_secs(15), |v| {
        is_presence(v)
            && payload(v)["activities"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("busy")))
    });
    // Offline: the document says closed.
    alice.forget_events();
    bob.ack(json!({"sylkrtc":"account-publish-presence","account":BOB,"state":"offline"}));
    alice.event(Duration::from_secs(15), |v| {
        is_presence(v) && payload(v)["state"] == "closed"
    });
    // A fetch is followed by the snapshot of what is known.
    alice.fetch(ALICE);
    let snap = alice.event(Duration::from_secs(10), is_presence);
    assert_eq!(payload(&snap)["contact"], "c-bob", "{snap}");
}

#[test]
fn presence_of_baresip_through_kamailio_follows_its_commands() {
    use common::peers::{Baresip, BaresipOpts};
    let kam = Kamailio::start(KamailioOpts::default());
    let mut bob = Baresip::start(
        &kam,
        BaresipOpts {
            presence: true,
            ..BaresipOpts::default()
        },
    );
    bob.wait_for_registration(Duration::from_secs(10));
    let gw = gateway_via(kam.sip_addr(), &[]);
    let mut alice = Conn::open(gw.ws);
    alice.register(&kam, "alice", None);
    let contact = json!({"id":"c-bob","name":"Bob","uris":[{"id":"u1","uri":"sip:bob@example.test"}],
                         "presence":{"policy":"allow","subscribe":true}});
    assert_eq!(
        alice.update(ALICE, "add", "contact", contact)["event"],
        "addressbook-updated"
    );
    let state_is = |want: &'static str| {
        move |v: &Value| {
            v["event"] == "presence"
                && v["account"] == ALICE
                && payload(v)["contact"] == "c-bob"
                && payload(v)["state"] == want
        }
    };
    // baresip publishes itself online once registered.
    alice.event(Duration::from_secs(15), state_is("open"));
    // Only what follows each command counts.
    alice.forget_events();
    bob.command("presence_offline").expect("presence_offline");
    alice.event(Duration::from_secs(15), state_is("closed"));
    alice.forget_events();
    bob.command("presence_online").expect("presence_online");
    alice.event(Duration::from_secs(15), state_is("open"));
}

#[test]
fn bad_notify_bodies_are_refused_good_ones_seen_and_unregister_unsubscribes() {
    use common::peers::{Sipp, SippOpts};
    let kam = Kamailio::start(KamailioOpts::default());
    // carol is her own notifier at SIPp's address: Kamailio relays the SUBSCRIBE there.
    let mut carol = Sipp::uas(
        "uas_presence_notify.xml",
        SippOpts {
            calls: Some(1),
            ..SippOpts::default()
        },
    );
    let carol_uri = format!("sip:carol@{}", carol.sip_addr());
    let gw = gateway_via(kam.sip_addr(), &[]);
    let mut alice = Conn::open(gw.ws);
    alice.register(&kam, "alice", None);
    let contact = json!({"id":"c-carol","name":"Carol","uris":[{"id":"u1","uri":carol_uri}],
                         "presence":{"policy":"allow","subscribe":true}});
    assert_eq!(
        alice.update(ALICE, "add", "contact", contact)["event"],
        "addressbook-updated"
    );
    let seen = alice.event(Duration::from_secs(15), |v| {
        v["event"] == "presence" && payload(v)["note"] == "in a meeting"
    });
    let p = payload(&seen);
    assert_eq!(
        (p["contact"].as_str(), p["state"].as_str()),
        (Some("c-carol"), Some("open")),
        "{seen}"
    );
    assert_eq!(p["activities"], json!(["meeting"]), "{seen}");
    // The last registration goes: the subscription ends with an un-SUBSCRIBE.
    alice.ack(json!({"sylkrtc":"account-unregister","account":ALICE}));
    assert_eq!(
        carol.wait_exit(Duration::from_secs(15)),
        0,
        "{}",
        carol.messages()
    );
    let trace = carol.messages();
    assert!(trace.contains("Expires: 0"), "{trace}");
    // Each refused body is counted by why.
    let (_, _, text) = http(gw.ws, "GET", "/metrics");
    for (result, n) in [("bad_body", 1.0), ("unsupported", 1.0)] {
        let labels = format!("result=\"{result}\"");
        assert_eq!(
            metric(&text, "sylk_presence_notifies_total", &labels),
            Some(n),
            "{result} in\n{text}"
        );
    }
}

#[test]
fn subscriptions_are_made_again_after_the_presence_server_restarts() {
    let mut kam = Kamailio::start(KamailioOpts::default());
    // Short subscriptions, so the refresh that meets the restarted server comes soon.
    let gw = Gateway::start(
        &format!(
            "[sip]\noutbound_proxy = \"sip:{};transport=udp\"\n\
             [presence]\nsubscribe_expires = 10\n",
            kam.sip_addr()
        ),
        &[],
    );
    let mut bob = Conn::open(gw.ws);
    bob.register(&kam, "bob", None);
    bob.ack(json!({"sylkrtc":"account-publish-presence","account":BOB,"state":"online"}));
    let mut alice = Conn::open(gw.ws);
    alice.register(&kam, "alice", None);
    let contact = json!({"id":"c-bob","name":"Bob","uris":[{"id":"u1","uri":"sip:bob@example.test"}],
                         "presence":{"policy":"allow","subscribe":true}});
    assert_eq!(
        alice.update(ALICE, "add", "contact", contact)["event"],
        "addressbook-updated"
    );
    let bob_is = |state: &'static str, note: Option<&'static str>| {
        move |v: &Value| {
            v["event"] == "presence"
                && v["account"] == ALICE
                && payload(v)["contact"] == "c-bob"
                && payload(v)["state"] == state
                && note.is_none_or(|n| payload(v)["note"] == n)
        }
    };
    alice.event(Duration::from_secs(15), bob_is("open", None));

    // The presence server comes back with no state at all (a fresh database): the refresh
    // in the old dialog fails (481, or 408 while it was down), the browser is told the
    // contact is unknown, and a new subscription is made after the jittered delay.
    alice.forget_events();
    let down = std::time::Instant::now();
    kam.restart();
    alice.event(Duration::from_secs(20), bob_is("unknown", None));
    let failed = gw.wait_for_log(
        "presence: alice@example.test: subscription to bob@example.test failed",
        Duration::from_secs(5),
    );
    eprintln!("the failure: {failed}");
    // bob changes state after the restart (his PUBLISH refresh meets a 412 and is made
    // anew); alice sees it through her new subscription.
    bob.ack(
        json!({"sylkrtc":"account-publish-presence","account":BOB,"state":"away","note":"back soon"}),
    );
    let seen = alice.event(Duration::from_secs(40), bob_is("open", Some("back soon")));
    assert!(
        payload(&seen)["activities"]
            .as_array()
            .unwrap()
            .contains(&json!("away")),
        "{seen}"
    );
    // Within the refresh (10 s) plus the retry spread (10 s) plus slack on a loaded machine.
    assert!(
        down.elapsed() < Duration::from_secs(45),
        "{:?}",
        down.elapsed()
    );
    // And it goes on: the next change is seen too.
    alice.forget_events();
    bob.ack(json!({"sylkrtc":"account-publish-presence","account":BOB,"state":"offline"}));
    alice.event(Duration::from_secs(15), bob_is("closed", None));
}
