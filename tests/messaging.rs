//! Messaging end to end with real peers on 127.0.0.1 (issue 11 item 7): sylkRTC-2 clients of
//! the real gateway chat through Kamailio with baresip (plain MESSAGEs both ways) and SIPp
//! (CPIM and IMDN, exact bytes), two connections of one account stay in sync, a message
//! that arrives while nobody is connected is delivered by `account-sync-conversations`,
//! the store survives a restart, copies from the account's own SIP devices
//! (`X-Sylk-From-Sip`) join its history, large MESSAGEs go over TCP, and SIP failures (401/407 answered, 404, 488, 408) become
//! `failed` dispositions.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::conn::Conn;
use common::peers::{Baresip, BaresipOpts, Kamailio, KamailioOpts, RunDir, Sipp, SippOpts};
use common::*;
use serde_json::{json, Value};

const ALICE: &str = "alice@example.test";

fn message(to: &str, id: &str, content: &str) -> Value {
    json!({"sylkrtc":"account-message","account":ALICE,"uri":to,"message_id":id,
           "content":content,"content_type":"text/plain","timestamp":"2024-05-06T07:08:09.123Z"})
}

fn disposition_of<'a>(id: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |v: &Value| v["event"] == "disposition-notification" && v["message_id"] == id
}

fn gateway_via(proxy: SocketAddr, transport: &str, args: &[&str]) -> Gateway {
    Gateway::start(
        &format!("[sip]\noutbound_proxy = \"sip:{proxy};transport={transport}\"\n"),
        args,
    )
}

/// A SIPp UAC scenario sending one MESSAGE with `body` (`content_type`) from `from` to
/// `to@example.test`, expecting `expect`; written into `dir`.
fn message_scenario(
    dir: &Path,
    name: &str,
    content_type: &str,
    body: &str,
    expect: u16,
) -> PathBuf {
    let path = dir.join(format!("{name}.xml"));
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
  <send>
    <![CDATA[
      MESSAGE sip:[service]@[domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "SIPp Bob" <sip:bob@[domain]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[domain]>
      Call-ID: [call_id]
      CSeq: 1 MESSAGE
      Max-Forwards: 70
      Content-Type: {content_type}
      Content-Length: [len]

{body}
    ]]>
  </send>
  <recv response="{expect}"/>
</scenario>
"#
    );
    std::fs::write(&path, xml).unwrap();
    path
}

/// Kamailio, bob as a SIPp UAS answering MESSAGEs 200, and a gateway reaching Kamailio over
/// UDP with alice registered on one connection.
struct Chat {
    _kam: Kamailio,
    _scenarios: RunDir,
    bob: Sipp,
    gw: Gateway,
    alice: Conn,
}

impl Chat {
    fn start(display_name: Option<&str>) -> Chat {
        let kam = Kamailio::start(KamailioOpts::default());
        let scenarios = RunDir::new("msg-scenarios");
        let bob = sipp_uas(scenarios.path(), &kam, "bob", 200, "OK");
        let gw = gateway_via(kam.sip_addr(), "udp", &[]);
        let mut alice = Conn::open(gw.ws);
        alice.register(&kam, "alice", display_name);
        Chat {
            _kam: kam,
            _scenarios: scenarios,
            bob,
            gw,
            alice,
        }
    }
}

fn run_uac(scenario: &Path, gw: &Gateway, user: &str) -> Sipp {
    let mut uac = Sipp::uac(
        scenario.to_str().unwrap(),
        gw.sip,
        SippOpts {
            service: Some(user.to_owned()),
            ..SippOpts::default()
        },
    );
    let code = uac.wait_exit(Duration::from_secs(15));
    assert_eq!(code, 0, "{}\n{}", uac.messages(), uac.errors());
    uac
}

/// A SIPp UAS answering every MESSAGE with `code reason`, registered at `kam` as `user`
/// (its scenario is written into `dir`).
fn sipp_uas(dir: &Path, kam: &Kamailio, user: &str, code: u16, reason: &str) -> Sipp {
    let path = dir.join(format!("uas_message_{code}.xml"));
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="uas message {code}">
  <recv request="MESSAGE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 {code} {reason}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <timewait milliseconds="1000"/>
</scenario>
"#
    );
    std::fs::write(&path, xml).unwrap();
    let uas = Sipp::uas(path.to_str().unwrap(), SippOpts::default());
    uas.register_at(kam, user);
    uas
}

#[test]
fn baresip_and_a_browser_chat_through_kamailio_both_ways() {
    let kam = Kamailio::start(KamailioOpts::default());
    let mut bob = Baresip::start(
        &kam,
        BaresipOpts {
            contacts: vec![format!("sip:{ALICE}")],
            ..BaresipOpts::default()
        },
    );
    bob.wait_for_registration(Duration::from_secs(10));
    let gw = gateway_via(kam.sip_addr(), "udp", &[]);
    let mut alice = Conn::open(gw.ws);
    alice.register(&kam, "alice", Some("Alice"));
    // Browser -> baresip: baresip takes only text/plain (415 with Accept), so the gateway
    // sends the content unwrapped once and reports the 200.
    alice.ack(message(
        "bob@example.test",
        "to-bob-1",
        "Hello from the browser",
    ));
    let d = alice.event(Duration::from_secs(10), disposition_of("to-bob-1"));
    assert_eq!(
        (d["state"].as_str(), d["code"].as_u64()),
        (Some("accepted"), Some(200)),
        "{d}"
    );
    bob.wait_for_log("Hello from the browser", Duration::from_secs(5));
    // baresip -> browser: its `message` command sends a plain MESSAGE to the contact.
    bob.command("contact_next").unwrap();
    bob.command("message Hi from baresip").unwrap();
    let m = alice.event(Duration::from_secs(10), |v| v["event"] == "message");
    assert_eq!(m["account"], ALICE);
    assert_eq!(m["sender"]["uri"], "bob@example.test");
    assert_eq!(m["content"], "Hi from baresip");
    assert_eq!(m["content_type"], "text/plain");
    assert!(m["message_id"].as_str().is_some_and(|s| !s.is_empty()));
}

#[test]
fn a_message_too_large_for_udp_goes_to_kamailio_over_tcp() {
    // RFC 3261 section 18.1.1: over 1300 bytes, a congestion-controlled transport, though
    // the outbound proxy is reached over UDP otherwise.
    let Chat {
        _kam,
        _scenarios,
        bob,
        gw,
        mut alice,
    } = Chat::start(None);
    alice.ack(message("bob@example.test", "small", "a few bytes"));
    let d = alice.event(Duration::from_secs(10), disposition_of("small"));
    assert_eq!(d["state"], "accepted", "{d}");
    let big = "y".repeat(6000);
    alice.ack(message("bob@example.test", "large", &big));
    let d = alice.event(Duration::from_secs(10), disposition_of("large"));
    assert_eq!(d["state"], "accepted", "{d}");
    let trace = bob.wait_for_message(&big, Duration::from_secs(5));
    // Kamailio's Via is on top; the gateway's tells how the request reached Kamailio.
    let via_of = |id: &str| -> String {
        let at = trace.find(&format!("imdn.Message-ID: {id}")).expect(id);
        let start = trace[..at].rfind("MESSAGE sip:").expect("the request line");
        trace[start..at]
            .lines()
            .filter(|l| l.starts_with("Via:"))
            .find(|l| l.contains(&format!(" {}", gw.sip)))
            .unwrap_or_else(|| panic!("no gateway Via for {id}: {}", &trace[start..at]))
            .to_owned()
    };
    assert!(
        via_of("small").contains("SIP/2.0/UDP"),
        "{}",
        via_of("small")
    );
    assert!(
        via_of("large").contains("SIP/2.0/TCP"),
        "{}",
        via_of("large")
    );
}

/// A SIPp UAC scenario sending the copy of a MESSAGE from `from` to `to` that a proxy forks
/// to the gateway for the sender's own SIP device (`X-Sylk-From-Sip`), expecting `expect`.
fn device_copy_scenario(dir: &Path, name: &str, from: &str, to: &str, expect: u16) -> PathBuf {
    let path = dir.join(format!("{name}.xml"));
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
  <send>
    <![CDATA[
      MESSAGE sip:{to} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{from}>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{to}>
      Call-ID: [call_id]
      CSeq: 1 MESSAGE
      Max-Forwards: 70
      X-Sylk-From-Sip: yes
      Content-Type: message/cpim
      Content-Length: [len]

From: <sip:{from}>
To: <sip:{to}>
DateTime: 2024-05-06T09:00:00Z
NS: imdn <urn:ietf:params:imdn>
imdn.Message-ID: {name}

Content-Type: text/plain

sent from the desk phone
    ]]>
  </send>
  <recv response="{expect}"/>
</scenario>
"#
    );
    std::fs::write(&path, xml).unwrap();
    path
}

#[test]
fn messages_from_the_accounts_own_sip_devices_join_its_history() {
    // SylkServer's X-Sylk-From-Sip: the proxy forks a copy of what alice's desk phone sent;
    // alice's browsers see it as sent from another device, and her history keeps it.
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = Gateway::start(
        &format!(
            "[sip]\noutbound_proxy = \"sip:{};transport=udp\"\n[sylkrtc]\nsip_domains = [\"example.test\"]\n",
            kam.sip_addr()
        ),
        &[],
    );
    let mut alice = Conn::open(gw.ws);
    alice.register(&kam, "alice", None);
    let dir = RunDir::new("msg-device");
    let s = device_copy_scenario(dir.path(), "desk1", ALICE, "carol@elsewhere.test", 200);
    run_uac(&s, &gw, "carol");
    let sync = alice.event(Duration::from_secs(5), |v| v["event"] == "sync");
    assert_eq!(
        (sync["type"].as_str(), sync["action"].as_str()),
        (Some("message"), Some("add")),
        "{sync}"
    );
    assert_eq!(sync["content"]["sylkrtc"], "account-message");
    assert_eq!(sync["content"]["uri"], "carol@elsewhere.test");
    assert_eq!(sync["content"]["message_id"], "desk1");
    assert_eq!(sync["content"]["content"], "sent from the desk phone\r\n");
    // The same copy again (a retransmission or a second fork): no second sync.
    run_uac(&s, &gw, "carol");
    assert!(!alice.gets(Duration::from_millis(500), |v| v["event"] == "sync"));
    // To one of ours: bob's history gets it as received too (202: only stored).
    let s = device_copy_scenario(dir.path(), "desk2", ALICE, "bob@example.test", 202);
    run_uac(&s, &gw, "bob");
    alice.event(Duration::from_secs(5), |v| {
        v["event"] == "sync" && v["content"]["message_id"] == "desk2"
    });
    // A sender of another domain is refused.
    let s = device_copy_scenario(dir.path(), "desk3", "mallory@evil.test", ALICE, 403);
    run_uac(&s, &gw, "alice");
    assert!(!alice.gets(Duration::from_millis(300), |v| v["event"] == "message"));
    // alice's history: both, outgoing and accepted.
    let history = alice.request(json!({"sylkrtc":"account-sync-conversations","account":ALICE}));
    assert_eq!(history["sylkrtc"], "ack", "{history}");
    let journal = alice.event(Duration::from_secs(5), |v| {
        v["event"] == "sync-conversations"
    });
    let mine: Vec<(&str, &str, &str, &str)> = journal["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["message_id"].as_str().unwrap_or(""),
                m["contact"].as_str().unwrap_or(""),
                m["direction"].as_str().unwrap_or(""),
                m["state"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        mine,
        [
            ("desk1", "carol@elsewhere.test", "outgoing", "accepted"),
            ("desk2", "bob@example.test", "outgoing", "accepted"),
        ],
        "{journal}"
    );
}

#[test]
fn cpim_and_imdn_with_sipp_both_ways_exact_bytes() {
    let Chat {
        _kam,
        _scenarios,
        bob: uas,
        gw,
        mut alice,
    } = Chat::start(Some("Alice A"));
    let dir = RunDir::new("msg-scenarios");
    let text = "Gr\u{fc}\u{df}e \u{1f600} <b>&</b>";
    alice.ack(message("bob@example.test", "m-utf8", text));
    let d = alice.event(Duration::from_secs(10), disposition_of("m-utf8"));
    assert_eq!(d["state"], "accepted", "{d}");
    assert_eq!(d["code"], 200);
    assert_eq!(d["message_timestamp"], "2024-05-06T07:08:09.123Z");
    let trace = uas.wait_for_message("imdn.Message-ID: m-utf8", Duration::from_secs(5));
    assert!(trace.contains("Content-Type: message/cpim"), "{trace}");
    let body = format!(
        "From: \"Alice A\" <sip:alice@example.test>\nTo: <sip:bob@example.test>\n\
         DateTime: 2024-05-06T07:08:09.123Z\nNS: imdn <urn:ietf:params:imdn>\n\
         imdn.Message-ID: m-utf8\nimdn.Disposition-Notification: positive-delivery, display\n\n\
         Content-Type: text/plain\nContent-Length: {}\n\n{text}",
        text.len()
    );
    assert!(
        trace.replace("\r\n", "\n").contains(&body),
        "CPIM body not as expected:\n{trace}"
    );
    // SIPp -> gateway, as a proxy forking to it: an IMDN for our message...
    let imdn = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\">\n\
<message-id>m-utf8</message-id>\n<datetime>2024-05-06T07:08:09.123Z</datetime>\n\
<delivery-notification><status><delivered/></status></delivery-notification>\n</imdn>";
    let cpim_imdn = format!(
        "From: <sip:bob@example.test>\nTo: <sip:alice@example.test>\nDateTime: 2024-05-06T07:09:00Z\n\
NS: imdn <urn:ietf:params:imdn>\nimdn.Message-ID: imdn-1\n\nContent-Type: message/imdn+xml\n\n{imdn}"
    );
    let s = message_scenario(dir.path(), "imdn", "message/cpim", &cpim_imdn, 200);
    run_uac(&s, &gw, "alice");
    let d = alice.event(Duration::from_secs(5), |v| {
        v["event"] == "disposition-notification" && v["state"] == "delivered"
    });
    assert_eq!(d["message_id"], "m-utf8");
    // ...a CPIM message with IMDN headers...
    let cpim = "From: \"Bob B\" <sip:bob@example.test>\nTo: <sip:alice@example.test>\n\
DateTime: 2024-05-06T07:10:00.5+02:00\nNS: imdn <urn:ietf:params:imdn>\nimdn.Message-ID: sipp-1\n\
imdn.Disposition-Notification: positive-delivery, display\n\nContent-Type: text/plain;charset=utf-8\n\n\
Sch\u{f6}ne Gr\u{fc}\u{df}e";
    let s = message_scenario(dir.path(), "cpim", "message/cpim", cpim, 200);
    run_uac(&s, &gw, "alice");
    let m = alice.event(Duration::from_secs(5), |v| v["event"] == "message");
    assert_eq!(
        m,
        json!({"sylkrtc":"account-event","account":ALICE,"event":"message",
               "sender":{"uri":"bob@example.test","display_name":"Bob B"},
               "timestamp":"2024-05-06T07:10:00.5+02:00",
               "disposition_notification":["positive-delivery","display"],
               "message_id":"sipp-1","content_type":"text/plain;charset=utf-8",
               // byte-exact: SIPp ends its body with CRLF
               "content":"Sch\u{f6}ne Gr\u{fc}\u{df}e\r\n"})
    );
    // ...and malformed CPIM: 400 saying what is wrong, nothing delivered.
    let bad = "From: <sip:bob@example.test>\n\nContent-Type: text/plain\n\nx";
    let s = message_scenario(dir.path(), "bad", "message/cpim", bad, 400);
    let uac = run_uac(&s, &gw, "alice");
    assert!(
        uac.messages().contains("400 CPIM To header missing"),
        "{}",
        uac.messages()
    );
    assert!(!alice.gets(Duration::from_millis(500), |v| v["event"] == "message"));
    // The browser's read receipt goes out as an IMDN document in CPIM.
    alice.ack(
        json!({"sylkrtc":"account-disposition-notification","account":ALICE,
        "uri":"bob@example.test","message_id":"sipp-1","state":"displayed",
        "timestamp":"2024-05-06T07:10:00.5+02:00"}),
    );
    let trace = uas.wait_for_message("<message-id>sipp-1</message-id>", Duration::from_secs(5));
    let t = trace.replace("\r\n", "\n");
    assert!(t.contains("Content-Type: message/imdn+xml"), "{t}");
    assert!(
        t.contains("<display-notification><status><displayed/></status></display-notification>"),
        "{t}"
    );
    assert!(
        t.contains("<datetime>2024-05-06T07:10:00.5+02:00</datetime>"),
        "{t}"
    );
}

#[test]
fn two_connections_sync_offline_delivery_and_a_restart_keep_messages() {
    let kam = Kamailio::start(KamailioOpts::default());
    let scen = RunDir::new("msg-scenarios");
    let uas = sipp_uas(scen.path(), &kam, "bob", 200, "OK");
    let dir = RunDir::new("msg-db");
    let db = dir.path().join("messages.sqlite");
    let db = db.to_str().unwrap();
    let mut gw = gateway_via(kam.sip_addr(), "udp", &["--database", db]);
    let mut one = Conn::open(gw.ws);
    let mut two = Conn::open(gw.ws);
    // Before a successful registration messaging is refused.
    two.ack(json!({"sylkrtc":"account-add","account":ALICE,"password":kam.ha1("alice")}));
    assert_eq!(
        two.error(message("bob@example.test", "early", "x")),
        "Account not authenticated"
    );
    two.ack(json!({"sylkrtc":"account-remove","account":ALICE}));
    one.register(&kam, "alice", None);
    two.register(&kam, "alice", None);
    // Sent on one: the other gets sync (the request itself), both the disposition.
    one.ack(message("bob@example.test", "s1", "first"));
    let sync = two.event(Duration::from_secs(5), |v| v["event"] == "sync");
    assert_eq!(
        (sync["type"].as_str(), sync["action"].as_str()),
        (Some("message"), Some("add"))
    );
    assert_eq!(sync["content"]["message_id"], "s1");
    assert_eq!(sync["content"]["sylkrtc"], "account-message");
    for c in [&mut one, &mut two] {
        assert_eq!(
            c.event(Duration::from_secs(10), disposition_of("s1"))["state"],
            "accepted"
        );
    }
    uas.wait_for_message("imdn.Message-ID: s1", Duration::from_secs(5));
    // Received: both connections get it.
    let cpim = |id: &str, text: &str| {
        format!("From: <sip:bob@example.test>\nTo: <sip:alice@example.test>\nDateTime: 2024-05-06T08:00:00Z\n\
NS: imdn <urn:ietf:params:imdn>\nimdn.Message-ID: {id}\n\nContent-Type: text/plain\n\n{text}")
    };
    let s = message_scenario(
        scen.path(),
        "in1",
        "message/cpim",
        &cpim("r1", "to both"),
        200,
    );
    run_uac(&s, &gw, "alice");
    for c in [&mut one, &mut two] {
        let m = c.event(Duration::from_secs(5), |v| v["event"] == "message");
        assert_eq!(
            (m["message_id"].as_str(), m["content"].as_str()),
            (Some("r1"), Some("to both\r\n"))
        );
    }
    // A read marker on one reaches the other as sync.
    one.ack(json!({"sylkrtc":"account-mark-conversation-read","account":ALICE,"contact":"bob@example.test"}));
    let read = two.event(Duration::from_secs(5), |v| {
        v["event"] == "sync" && v["action"] == "read"
    });
    assert_eq!(read["content"]["contact"], "bob@example.test");
    assert_eq!(
        one.error(json!({"sylkrtc":"account-remove-message","account":ALICE,"message_id":"nope","contact":"bob@example.test"})),
        "Unknown message nope"
    );
    // A published public key is what lookup-public-key answers.
    let key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nxsBNBGZ\n-----END PGP PUBLIC KEY BLOCK-----";
    one.ack(
        json!({"sylkrtc":"account-message","account":ALICE,"uri":"bob@example.test",
        "message_id":"key-1","content":key,"content_type":"text/pgp-public-key",
        "timestamp":"2024-05-06T08:01:00Z"}),
    );
    one.ack(json!({"sylkrtc":"lookup-public-key","uri":ALICE}));
    let found = one.event(Duration::from_secs(5), |v| {
        v["sylkrtc"] == "lookup-public-key-event"
    });
    assert_eq!(
        found,
        json!({"sylkrtc":"lookup-public-key-event","uri":ALICE,"public_key":key})
    );
    one.ack(json!({"sylkrtc":"lookup-public-key","uri":"nobody@example.test"}));
    let none = one.event(Duration::from_secs(5), |v| {
        v["sylkrtc"] == "lookup-public-key-event"
    });
    assert_eq!(none["public_key"], Value::Null);
    drop(one);
    drop(two);
    // Nobody holds alice now: the message is only stored (202).
    std::thread::sleep(Duration::from_millis(300));
    let s = message_scenario(
        scen.path(),
        "offline",
        "message/cpim",
        &cpim("r2", "while away"),
        202,
    );
    run_uac(&s, &gw, "alice");
    // The store survives a restart.
    assert!(gw.terminate().success());
    let gw = gateway_via(kam.sip_addr(), "udp", &["--database", db]);
    let mut back = Conn::open(gw.ws);
    back.register(&kam, "alice", None);
    back.ack(json!({"sylkrtc":"account-sync-conversations","account":ALICE}));
    let synced = back.event(Duration::from_secs(5), |v| {
        v["event"] == "sync-conversations"
    });
    let list = synced["messages"].as_array().unwrap();
    let ids: Vec<&str> = list
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(&ids[..2], ["s1", "r1"], "{synced}");
    assert!(ids.contains(&"key-1"), "{synced}");
    assert!(ids.contains(&"r2"), "{synced}");
    let r1 = &list[1];
    assert_eq!(r1["state"], "displayed", "marked read: {r1}");
    assert_eq!(r1["direction"], "incoming");
    assert_eq!(list[0]["state"], "accepted");
    assert_eq!(list[0]["direction"], "outgoing");
    assert!(list
        .iter()
        .any(|m| m["content_type"] == "application/sylk-conversation-read"));
    let r2 = list.iter().find(|m| m["message_id"] == "r2").unwrap();
    assert_eq!(r2["content"], "while away\r\n");
    // Only what follows a given message.
    back.ack(json!({"sylkrtc":"account-sync-conversations","account":ALICE,"message_id":"r1"}));
    let after = back.event(Duration::from_secs(5), |v| {
        v["event"] == "sync-conversations"
    });
    let ids: Vec<&str> = after["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&"s1") && !ids.contains(&"r1") && ids.contains(&"r2"),
        "{after}"
    );
}

#[test]
fn sip_failures_become_failed_dispositions_and_challenges_are_answered() {
    // Kamailio challenges MESSAGEs of its users with 407; bob (SIPp) challenges with 401;
    // both are answered from the HA1.
    let kam = Kamailio::start(KamailioOpts {
        proxy_auth: true,
        ..KamailioOpts::default()
    });
    let bob = Sipp::uas("uas_message_auth.xml", SippOpts::default());
    bob.register_at(&kam, "bob");
    let scen = RunDir::new("msg-scenarios");
    let carol = sipp_uas(scen.path(), &kam, "carol", 488, "Not Acceptable Here");
    let gw = Gateway::start(
        &format!(
            "[sip]\noutbound_proxy = \"sip:{};transport=udp\"\n[messaging]\nsend_rate = 4\nmax_content_size = 2048\n",
            kam.sip_addr()
        ),
        &[],
    );
    let mut alice = Conn::open(gw.ws);
    alice.register(&kam, "alice", None);
    alice.ack(message("bob@example.test", "auth", "challenged twice"));
    let d = alice.event(Duration::from_secs(10), disposition_of("auth"));
    assert_eq!(
        (d["state"].as_str(), d["code"].as_u64()),
        (Some("accepted"), Some(200)),
        "{d}"
    );
    let trace = bob.messages();
    // Kamailio consumes the Proxy-Authorization of the 407 retry (CSeq 2); SIPp's 401 is
    // answered by CSeq 3 with credentials for alice.
    assert!(trace.contains("CSeq: 2 MESSAGE"), "407 answered: {trace}");
    assert!(trace.contains("CSeq: 3 MESSAGE"), "401 answered: {trace}");
    assert!(
        trace.contains("Authorization: Digest username=\"alice\""),
        "{trace}"
    );
    // 404: nobody is registered as that user.
    alice.ack(message("nobody@example.test", "f404", "x"));
    let d = alice.event(Duration::from_secs(10), disposition_of("f404"));
    assert_eq!(
        (d["state"].as_str(), d["code"].as_u64()),
        (Some("failed"), Some(404)),
        "{d}"
    );
    assert_eq!(d["reason"], "Not Found");
    // 488 from the recipient.
    alice.ack(message("carol@example.test", "f488", "x"));
    let d = alice.event(Duration::from_secs(10), disposition_of("f488"));
    assert_eq!(
        (d["state"].as_str(), d["code"].as_u64()),
        (Some("failed"), Some(488)),
        "{d}"
    );
    assert_eq!(d["reason"], "Not Acceptable Here");
    carol.wait_for_message("imdn.Message-ID: f488", Duration::from_secs(2));
    // Request limits.
    let big = "x".repeat(3000);
    assert!(alice
        .error(message("carol@example.test", "big", &big))
        .starts_with("Message too large"));
    std::thread::sleep(Duration::from_millis(1100));
    let limited = (0..8).any(|i| {
        let r = alice.request(message("carol@example.test", &format!("burst{i}"), "x"));
        r["error"] == "Too many messages"
    });
    assert!(limited, "the send rate limit (4 a second here)");
    // 408: bob no longer answers; Kamailio's transaction times out (fr_timer 10 s).
    bob.unregister_at(&kam, "bob");
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    register_contact_only(&kam, "bob", silent_port);
    std::thread::sleep(Duration::from_millis(1100));
    alice.ack(message("bob@example.test", "f408", "x"));
    let d = alice.event(Duration::from_secs(40), disposition_of("f408"));
    assert_eq!(
        (d["state"].as_str(), d["code"].as_u64()),
        (Some("failed"), Some(408)),
        "{d}"
    );
}

/// Registers `user` at `kam` with a Contact on 127.0.0.1:`port` where nothing answers.
fn register_contact_only(kam: &Kamailio, user: &str, port: u16) {
    let mut reg = Sipp::uac(
        "register.xml",
        kam.sip_addr(),
        SippOpts {
            service: Some(user.to_owned()),
            auth: Some((user.to_owned(), common::peers::password(user).to_owned())),
            keys: vec![
                ("contact_port".into(), port.to_string()),
                ("expires".into(), "300".into()),
            ],
            ..SippOpts::default()
        },
    );
    assert_eq!(
        reg.wait_exit(Duration::from_secs(10)),
        0,
        "{}",
        reg.messages()
    );
}

const CHROME_OFFER: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/media/tests/fixtures/sdp/chrome_offer.sdp"
));

#[test]
fn session_messages_inside_a_call_both_ways() {
    let kam = Kamailio::start(KamailioOpts::default());
    let uas = Sipp::uas("uas_message_in_call.xml", SippOpts::default());
    uas.register_at(&kam, "bob");
    let base = common::peers::free_udp_range(40);
    let gw = Gateway::start(
        &format!(
            "[sip]\noutbound_proxy = \"sip:{};transport=udp\"\n[media]\nrtp_ports = \"{base}-{}\"\n",
            kam.sip_addr(),
            base + 39
        ),
        &[],
    );
    let mut alice = Conn::open(gw.ws);
    alice.register(&kam, "alice", None);
    let session = "s-msg-1";
    let early = json!({"sylkrtc":"session-message","session":session,"message_id":"x",
        "content":"too early","content_type":"text/plain","timestamp":"2024-05-06T09:00:00Z"});
    assert_eq!(alice.error(early), "Unknown session s-msg-1");
    alice.ack(
        json!({"sylkrtc":"session-create","account":ALICE,"session":session,
        "uri":"bob@example.test","sdp":CHROME_OFFER}),
    );
    alice.event(Duration::from_secs(10), |v| {
        v["event"] == "state" && v["state"] == "accepted"
    });
    alice.ack(json!({"sylkrtc":"session-message","session":session,"message_id":"dlg-1",
        "content":"hello in the call","content_type":"text/plain","timestamp":"2024-05-06T09:00:01Z"}));
    let d = alice.event(Duration::from_secs(10), |v| {
        v["sylkrtc"] == "session-event" && v["event"] == "disposition-notification"
    });
    assert_eq!(
        (
            d["session"].as_str(),
            d["message_id"].as_str(),
            d["state"].as_str(),
            d["code"].as_u64()
        ),
        (Some(session), Some("dlg-1"), Some("accepted"), Some(200)),
        "{d}"
    );
    let m = alice.event(Duration::from_secs(10), |v| {
        v["sylkrtc"] == "session-event" && v["event"] == "message"
    });
    assert_eq!(m["session"], session);
    assert_eq!(m["message_id"], "in-call-1");
    assert_eq!(m["sender"]["uri"], "bob@example.test");
    assert_eq!(m["content"], "in the call\r\n");
    let trace = uas.wait_for_message("imdn.Message-ID: dlg-1", Duration::from_secs(5));
    let t = trace.replace("\r\n", "\n");
    assert!(t.contains("MESSAGE sip:"), "{t}");
    assert!(t.contains("Content-Type: message/cpim"), "{t}");
    assert!(t.contains("hello in the call"), "{t}");
    alice.ack(json!({"sylkrtc":"session-terminate","session":session}));
    uas.wait_for_message("BYE sip:", Duration::from_secs(5));
}

#[test]
fn a_python_client_chats_with_baresip_through_kamailio() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let kam = Kamailio::start(KamailioOpts::default());
    let mut bob = Baresip::start(
        &kam,
        BaresipOpts {
            contacts: vec![format!("sip:{ALICE}")],
            ..BaresipOpts::default()
        },
    );
    bob.wait_for_registration(Duration::from_secs(10));
    let gw = gateway_via(kam.sip_addr(), "udp", &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sylkrtc_chat.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args([
            "--url",
            &gw.ws_url(),
            "--account",
            ALICE,
            "--ha1",
            &kam.ha1("alice"),
        ])
        .args(["--to", "bob@example.test", "--text", "from python"])
        .args(["--expect-from", "bob@example.test"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 (run tests/run-all.sh to install the peers)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut result = None;
    while let Some(Ok(line)) = lines.next() {
        if line == "WAITING" {
            bob.wait_for_log("from python", Duration::from_secs(5));
            bob.command("contact_next").unwrap();
            bob.command("message reply from baresip").unwrap();
        }
        if let Some(r) = line.strip_prefix("RESULT ") {
            result = Some(serde_json::from_str::<Value>(r).unwrap());
        }
    }
    let _ = child.wait();
    let result = result.expect("the client printed no RESULT");
    assert_eq!(result["registration"], "registered", "{result}");
    assert_eq!(result["sent"]["state"], "accepted", "{result}");
    assert_eq!(
        result["received"]["content"], "reply from baresip",
        "{result}"
    );
    let history = result["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{result}");
    assert_eq!(history[0]["direction"], "outgoing");
    assert_eq!(history[0]["state"], "accepted");
    assert_eq!(history[1]["content"], "reply from baresip");
}
