//! Chat sessions over MSRP end to end (issue 14) with real peers on 127.0.0.1: sylkRTC-2
//! clients of the real gateway chat through Kamailio as SIP proxy, directly and through
//! Kamailio's `msrp` module as RFC 4976 relay (AUTH with digest), both directions; CPIM goes
//! through byte for byte; a WebSocket drop mid-chat leaves no socket behind.

mod common;

use std::time::Duration;

use common::conn::Conn;
use common::peers::{Kamailio, KamailioMsrp, KamailioOpts};
use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(15);

fn gateway_via(kam: &Kamailio, extra: &str) -> Gateway {
    Gateway::start(
        &format!(
            "[sip]\noutbound_proxy = \"sip:{};transport=udp\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n{extra}",
            kam.sip_addr()
        ),
        &[],
    )
}

/// A connection with `user` added (taking chat) and registered at `kam`.
fn chat_client(gw: &Gateway, kam: &Kamailio, user: &str) -> Conn {
    let mut c = Conn::open(gw);
    let aor = format!("{user}@example.test");
    c.ack(json!({"sylkrtc":"account-add","account":aor,"password":kam.ha1(user),"chat":true}));
    c.ack(json!({"sylkrtc":"account-register","account":aor}));
    let state = c.event(T, |v| {
        v["event"] == "registration-state" && v["state"] != "registering"
    });
    assert_eq!(state["state"], "registered", "{state}");
    c
}

fn state_of<'a>(session: &'a str, state: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |v: &Value| v["event"] == "state" && v["session"] == session && v["state"] == state
}

fn disposition<'a>(id: &'a str, state: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |v: &Value| {
        v["event"] == "disposition-notification" && v["message_id"] == id && v["state"] == state
    }
}

fn message_event(v: &Value) -> bool {
    v["sylkrtc"] == "session-event" && v["event"] == "message"
}

/// `from` calls `to` with a chat-only session, `to` answers; both reach `established`.
/// Returns the two session ids.
fn start_chat(
    from: &mut Conn,
    from_user: &str,
    to: &mut Conn,
    to_user: &str,
    id: &str,
) -> (String, String) {
    from.ack(
        json!({"sylkrtc":"session-create","account":format!("{from_user}@example.test"),
                    "session":id,"uri":format!("{to_user}@example.test"),"media":["chat"]}),
    );
    let incoming = to.event(T, |v| v["event"] == "incoming-session");
    assert_eq!(incoming["media"], json!(["chat"]), "{incoming}");
    assert!(incoming.get("sdp").is_none(), "{incoming}");
    assert_eq!(
        incoming["originator"]["uri"],
        format!("{from_user}@example.test")
    );
    let theirs = incoming["session"].as_str().unwrap().to_owned();
    to.ack(json!({"sylkrtc":"session-answer","session":theirs}));
    let accepted = from.event(T, state_of(id, "accepted"));
    assert!(accepted.get("sdp").is_none(), "{accepted}");
    from.event(T, state_of(id, "established"));
    to.event(T, state_of(&theirs, "accepted"));
    to.event(T, state_of(&theirs, "established"));
    (id.to_owned(), theirs)
}

fn say(c: &mut Conn, session: &str, id: &str, content_type: &str, content: &str) {
    c.ack(
        json!({"sylkrtc":"session-message","session":session,"message_id":id,
                 "content":content,"content_type":content_type,
                 "timestamp":"2026-05-06T07:08:09.123Z"}),
    );
}

/// Messages both ways in one session: text wrapped in CPIM by the gateway, CPIM from a
/// client byte for byte, success reports as `delivered`.
fn chat_both_ways(
    a: &mut Conn,
    a_user: &str,
    a_session: &str,
    b: &mut Conn,
    b_user: &str,
    b_session: &str,
) {
    say(a, a_session, "m1", "text/plain", "Hello \u{2713} over MSRP");
    let got = b.event(T, message_event);
    assert_eq!(got["session"], b_session);
    assert_eq!(got["content_type"], "message/cpim");
    let cpim = got["content"].as_str().unwrap();
    assert!(
        cpim.contains(&format!("From: <sip:{a_user}@example.test>")),
        "{cpim}"
    );
    assert!(cpim.contains("imdn.Message-ID: m1"), "{cpim}");
    assert!(
        cpim.ends_with("\r\n\r\nHello \u{2713} over MSRP"),
        "{cpim:?}"
    );
    assert_eq!(got["message_id"], "m1");
    assert_eq!(got["sender"]["uri"], format!("{a_user}@example.test"));
    assert_eq!(got["timestamp"], "2026-05-06T07:08:09.123Z");
    a.event(T, disposition("m1", "accepted"));
    a.event(T, disposition("m1", "delivered"));
    // The other way, CPIM written by the client: byte for byte, whitespace included.
    let raw = format!(
        "From: Bob <sip:{b_user}@example.test>\r\nTo: <sip:{a_user}@example.test>\r\n\
         DateTime: 2026-05-06T07:08:10Z\r\nNS: imdn <urn:ietf:params:imdn>\r\n\
         imdn.Message-ID: m2\r\nX-Odd:   kept  \r\n\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         line one\r\n-------not an end-line\r\n\r\n  trailing  "
    );
    say(b, b_session, "m2", "message/cpim", &raw);
    let got = a.event(T, message_event);
    assert_eq!(
        got["content"],
        raw.as_str(),
        "CPIM byte-identical end to end"
    );
    assert_eq!(
        got["sender"],
        json!({"uri":format!("{b_user}@example.test"),"display_name":"Bob"})
    );
    assert_eq!(got["message_id"], "m2");
    b.event(T, disposition("m2", "delivered"));
}

fn metrics(gw: &Gateway) -> String {
    http(gw.metrics.unwrap(), "GET", "/metrics").2
}

/// Waits until the gateway holds no chat and no MSRP socket.
fn wait_no_chat(gw: &Gateway) {
    let deadline = std::time::Instant::now() + T;
    loop {
        let m = metrics(gw);
        let chats = metric(&m, "sylk_chat_sessions", "");
        let sockets = metric(&m, "sylk_msrp_sockets", "");
        if chats == Some(0.0) && sockets == Some(0.0) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "chats {chats:?}, sockets {sockets:?} left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_accounts_chat_directly_through_kamailio_both_ways() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam, "");
    let mut alice = chat_client(&gw, &kam, "alice");
    let mut bob = chat_client(&gw, &kam, "bob");
    let (a, b) = start_chat(&mut alice, "alice", &mut bob, "bob", "chat-1");
    chat_both_ways(&mut alice, "alice", &a, &mut bob, "bob", &b);
    // And a session the other way round.
    let (b2, a2) = start_chat(&mut bob, "bob", &mut alice, "alice", "chat-2");
    chat_both_ways(&mut bob, "bob", &b2, &mut alice, "alice", &a2);
    let m = metrics(&gw);
    assert_eq!(metric(&m, "sylk_chat_sessions", ""), Some(4.0), "{m}");
    assert!(metric(&m, "sylk_msrp_messages_total", "direction=\"in\"").unwrap() >= 4.0);
    alice.ack(json!({"sylkrtc":"session-terminate","session":a}));
    alice.event(T, state_of(&a, "terminated"));
    let t = bob.event(T, state_of(&b, "terminated"));
    assert_eq!(t["reason"], "200 BYE received");
    bob.ack(json!({"sylkrtc":"session-terminate","session":b2}));
    alice.event(T, state_of(&a2, "terminated"));
    wait_no_chat(&gw);
}

#[test]
fn two_accounts_chat_through_the_kamailio_msrp_relay_with_auth_both_ways() {
    let kam = Kamailio::start(KamailioOpts::default());
    let relay = KamailioMsrp::start();
    // No MSRP listener: over the relay the gateway only ever connects out.
    let gw = gateway_via(
        &kam,
        &format!("[msrp]\nlisten = \"off\"\nrelay = \"{}\"\n", relay.uri()),
    );
    let mut alice = chat_client(&gw, &kam, "alice");
    let mut bob = chat_client(&gw, &kam, "bob");
    let (a, b) = start_chat(&mut alice, "alice", &mut bob, "bob", "relay-1");
    chat_both_ways(&mut alice, "alice", &a, &mut bob, "bob", &b);
    let (b2, a2) = start_chat(&mut bob, "bob", &mut alice, "alice", "relay-2");
    chat_both_ways(&mut bob, "bob", &b2, &mut alice, "alice", &a2);
    // Every session authenticated at the relay with digest from its account's HA1.
    let log = relay.log();
    assert_eq!(log.matches("msrp AUTH ok for alice").count(), 2, "{log}");
    assert_eq!(log.matches("msrp AUTH ok for bob").count(), 2, "{log}");
    // The SDP the peer saw carries the relay's Use-Path before the session URI.
    let lines = gw.log_lines().join("\n");
    assert!(
        lines.contains(&format!(
            "relay Use-Path msrp://127.0.0.1:{}/",
            relay.addr().port()
        )),
        "{lines}"
    );
    alice.ack(json!({"sylkrtc":"session-terminate","session":a}));
    bob.event(T, state_of(&b, "terminated"));
    alice.ack(json!({"sylkrtc":"session-terminate","session":a2}));
    bob.event(T, state_of(&b2, "terminated"));
    wait_no_chat(&gw);
}

#[test]
fn a_wrong_ha1_is_refused_by_the_relay_and_ends_the_session() {
    let kam = Kamailio::start(KamailioOpts::default());
    let relay = KamailioMsrp::start();
    let gw = gateway_via(&kam, &format!("[msrp]\nrelay = \"{}\"\n", relay.uri()));
    let mut alice = Conn::open(&gw);
    alice.ack(
        json!({"sylkrtc":"account-add","account":"alice@example.test",
                     "password":"0123456789abcdef0123456789abcdef","chat":true}),
    );
    alice.ack(
        json!({"sylkrtc":"session-create","account":"alice@example.test",
                     "session":"bad-auth","uri":"bob@example.test","media":["chat"]}),
    );
    let t = alice.event(T, state_of("bad-auth", "terminated"));
    assert_eq!(t["reason"], "MSRP relay authentication failed (401)", "{t}");
    wait_no_chat(&gw);
}
