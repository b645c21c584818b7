//! Deterministic gateway tests: scripted clients, virtual time, every reply checked.

use std::time::Instant;

use serde_json::{json, Value};

use super::*;

const HA1: &str = "0123456789abcdef0123456789abcdef";

fn gateway(domains: &[&str], max_accounts: usize) -> Gateway {
    Gateway::new(GatewayConfig {
        sylkrtc: SylkRtcConfig {
            sip_domains: domains.iter().map(|d| d.to_string()).collect(),
            max_accounts_per_connection: max_accounts,
        },
        trace_websocket: false,
    })
}

/// Drains all outputs for `conn` as JSON values.
fn sent(g: &mut Gateway, conn: ConnRef) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(GatewayOutput::Send { conn: c, text }) = g.poll_output() {
        assert_eq!(c, conn, "output routed to the wrong connection");
        out.push(serde_json::from_str(&text).unwrap());
    }
    out
}

fn request(g: &mut Gateway, now: Instant, client: ClientId, v: Value) {
    g.handle_client_text(now, client, &v.to_string());
}

fn add(account: &str, tx: &str) -> Value {
    json!({"sylkrtc":"account-add","transaction":tx,"account":account,"password":HA1})
}

#[test]
fn ready_then_one_reply_per_request_in_order() {
    let now = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c = g.handle_client_open(now, 7, Dialect::V2, 1);
    assert_eq!(sent(&mut g, 7), [json!({"sylkrtc":"ready-event"})]);
    request(&mut g, now, c, json!({"sylkrtc":"ping","transaction":"p1"}));
    request(&mut g, now, c, add("sip:alice@example.com", "a1"));
    request(&mut g, now, c, add("alice@example.com", "a2"));
    request(
        &mut g,
        now,
        c,
        json!({"sylkrtc":"account-remove","transaction":"r1","account":"bob@example.com"}),
    );
    request(
        &mut g,
        now,
        c,
        json!({"sylkrtc":"account-remove","transaction":"r2","account":"alice@example.com"}),
    );
    request(&mut g, now, c, add("alice@example.com", "a3"));
    assert_eq!(
        sent(&mut g, 7),
        [
            json!({"sylkrtc":"ack","transaction":"p1"}),
            json!({"sylkrtc":"ack","transaction":"a1"}),
            json!({"sylkrtc":"error","transaction":"a2","error":"Account alice@example.com already added"}),
            json!({"sylkrtc":"error","transaction":"r1","error":"Unknown account specified: bob@example.com"}),
            json!({"sylkrtc":"ack","transaction":"r2"}),
            json!({"sylkrtc":"ack","transaction":"a3"}),
        ]
    );
}

#[test]
fn v1_ready_and_garbage_is_dropped_without_reply() {
    let now = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c = g.handle_client_open(now, 1, Dialect::V1, 1);
    assert_eq!(
        sent(&mut g, 1),
        [json!({"sylkrtc":"event","event":"ready"})]
    );
    for garbage in [
        "",
        "{",
        "[]",
        "null",
        r#"{"transaction":"t"}"#,
        r#"{"sylkrtc":"ping"}"#,
    ] {
        g.handle_client_text(now, c, garbage);
    }
    assert!(sent(&mut g, 1).is_empty());
    g.handle_client_text(now, c, r#"{"sylkrtc":"ping","transaction":"still-up"}"#);
    assert_eq!(
        sent(&mut g, 1),
        [json!({"sylkrtc":"ack","transaction":"still-up"})]
    );
}

#[test]
fn domain_allow_list_and_account_limit() {
    let now = Instant::now();
    let mut g = gateway(&["example.com"], 2);
    let c = g.handle_client_open(now, 1, Dialect::V2, 1);
    sent(&mut g, 1);
    request(&mut g, now, c, add("a@other.org", "t1"));
    request(&mut g, now, c, add("a@EXAMPLE.com", "t2"));
    request(&mut g, now, c, add("b@example.com", "t3"));
    request(&mut g, now, c, add("c@example.com", "t4"));
    let replies = sent(&mut g, 1);
    assert_eq!(replies[0]["error"], "SIP domain not allowed: other.org");
    assert_eq!(replies[1]["sylkrtc"], "ack");
    assert_eq!(replies[2]["sylkrtc"], "ack");
    assert_eq!(
        replies[3]["error"],
        "Too many accounts on this connection (at most 2)"
    );
}

#[test]
fn later_features_answer_not_supported_yet() {
    let now = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c = g.handle_client_open(now, 1, Dialect::V2, 1);
    sent(&mut g, 1);
    request(&mut g, now, c, add("a@example.com", "t0"));
    request(
        &mut g,
        now,
        c,
        json!({"sylkrtc":"account-register","transaction":"t1","account":"a@example.com"}),
    );
    request(
        &mut g,
        now,
        c,
        json!({"sylkrtc":"account-register","transaction":"t2","account":"x@example.com"}),
    );
    request(
        &mut g,
        now,
        c,
        json!({"sylkrtc":"session-create","transaction":"t3","account":"a@example.com",
        "session":"s","uri":"b@example.com","sdp":"v=0"}),
    );
    request(
        &mut g,
        now,
        c,
        json!({"sylkrtc":"videoroom-leave","transaction":"t4","session":"s"}),
    );
    request(
        &mut g,
        now,
        c,
        json!({"sylkrtc":"nonsense","transaction":"t5"}),
    );
    let replies = sent(&mut g, 1);
    assert_eq!(replies.len(), 6);
    assert_eq!(replies[1]["error"], "not supported yet: account-register");
    assert_eq!(
        replies[2]["error"],
        "Unknown account specified: x@example.com"
    );
    assert_eq!(replies[3]["error"], "not supported yet: session-create");
    assert_eq!(replies[4]["error"], "not supported yet: videoroom-leave");
    assert_eq!(replies[5]["error"], "Unknown request type: nonsense");
}

#[test]
fn same_account_on_two_connections_and_close_frees_everything() {
    let now = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c1 = g.handle_client_open(now, 1, Dialect::V2, 1);
    let c2 = g.handle_client_open(now, 2, Dialect::V1, 2);
    while g.poll_output().is_some() {}
    request(&mut g, now, c1, add("a@example.com", "t1"));
    request(&mut g, now, c1, add("b@example.com", "t2"));
    request(&mut g, now, c2, add("a@example.com", "t3"));
    let mut acks = 0;
    while let Some(GatewayOutput::Send { text, .. }) = g.poll_output() {
        assert!(text.contains("\"ack\""), "{text}");
        acks += 1;
    }
    assert_eq!(acks, 3);
    assert_eq!(g.account_count(), 3);
    assert_eq!(g.accounts_by_aor["a@example.com"].len(), 2);
    g.handle_client_closed(now, c1);
    assert_eq!(g.account_count(), 1);
    assert_eq!(g.client_count(), 1);
    assert!(!g.accounts_by_aor.contains_key("b@example.com"));
    // Events for a closed client go nowhere; a stale id is ignored.
    g.handle_client_text(now, c1, r#"{"sylkrtc":"ping","transaction":"x"}"#);
    assert!(g.poll_output().is_none());
    g.handle_client_closed(now, c2);
    assert_eq!((g.client_count(), g.account_count()), (0, 0));
    assert!(g.accounts_by_aor.is_empty());
}
