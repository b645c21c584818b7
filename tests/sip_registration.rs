//! account-register / account-unregister against a real Kamailio registrar (digest against
//! HA1, domain example.test) on 127.0.0.1, over UDP and TCP. The binding is checked from the
//! outside: an OPTIONS to the AOR through Kamailio reaches the gateway (200) only while the
//! account is registered.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::peers::{Kamailio, KamailioOpts};
use common::*;
use serde_json::{json, Value};

fn gateway_for(kam: &Kamailio, transport: &str) -> Gateway {
    let proxy: SocketAddr = kam.sip_addr();
    let config = format!(
        "[sip]\noutbound_proxy = \"sip:{proxy};transport={transport}\"\nuser_agent = \"sylk-gateway-test\"\n"
    );
    Gateway::start(&config, &[])
}

fn add_and_register(ws: &mut Client, kam: &Kamailio, user: &str) -> Vec<Value> {
    let aor = format!("{user}@{}", kam.domain());
    let add =
        json!({"sylkrtc":"account-add","transaction":"a","account":aor,"password":kam.ha1(user)});
    assert_eq!(call(ws, add)["sylkrtc"], "ack");
    let reg = json!({"sylkrtc":"account-register","transaction":"r","account":aor});
    assert_eq!(call(ws, reg)["sylkrtc"], "ack");
    vec![recv_json(ws), recv_json(ws)]
}

fn registration(account: &str, state: &str) -> Value {
    json!({"sylkrtc":"account-event","account":account,"event":"registration-state","state":state})
}

#[test]
fn register_and_unregister_over_udp() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_for(&kam, "udp");
    let mut ws = connect_v2(&gw);
    let events = add_and_register(&mut ws, &kam, "alice");
    assert_eq!(
        events,
        [
            registration("alice@example.test", "registering"),
            registration("alice@example.test", "registered")
        ]
    );
    // The registrar routes requests for the AOR to the gateway's unique Contact.
    assert_eq!(
        kam.options_to("alice"),
        (200, "sylk-gateway-test".to_owned())
    );
    let unreg =
        json!({"sylkrtc":"account-unregister","transaction":"u","account":"alice@example.test"});
    assert_eq!(call(&mut ws, unreg)["sylkrtc"], "ack");
    // No event follows account-unregister (as in SylkServer); the binding goes away.
    let gone = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        kam.options_to("alice").0 != 200
    });
    assert!(gone, "binding still present after account-unregister");
}

#[test]
fn register_over_tcp_and_a_closing_websocket_unregisters() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_for(&kam, "tcp");
    let mut ws = connect_v2(&gw);
    let events = add_and_register(&mut ws, &kam, "bob");
    assert_eq!(events[1], registration("bob@example.test", "registered"));
    assert_eq!(kam.options_to("bob").0, 200);
    drop(ws);
    let gone = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        kam.options_to("bob").0 != 200
    });
    assert!(gone, "binding still present after the WebSocket closed");
}

#[test]
fn wrong_password_fails_with_the_registrar_reason() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_for(&kam, "udp");
    let mut ws = connect_v2(&gw);
    let aor = "carol@example.test";
    // The HA1 of another password: the digest response is wrong.
    let bad = "00000000000000000000000000000000";
    call(
        &mut ws,
        json!({"sylkrtc":"account-add","transaction":"a","account":aor,"password":bad}),
    );
    call(
        &mut ws,
        json!({"sylkrtc":"account-register","transaction":"r","account":aor}),
    );
    assert_eq!(recv_json(&mut ws), registration(aor, "registering"));
    let failed = recv_json(&mut ws);
    assert_eq!(failed["state"], "failed");
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason == "401 Unauthorized" || reason.starts_with("403 "),
        "unexpected reason {reason}"
    );
}

#[test]
fn same_account_on_two_connections_registers_two_contacts() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_for(&kam, "udp");
    let mut a = connect_v2(&gw);
    let (mut b, _) = connect(&gw, "sylkRTC-1");
    assert_eq!(recv_json(&mut b)["event"], "ready");
    assert_eq!(
        add_and_register(&mut a, &kam, "alice")[1]["state"],
        "registered"
    );
    let v1 = add_and_register(&mut b, &kam, "alice");
    assert_eq!(
        v1[1],
        json!({"sylkrtc":"account_event","account":"alice@example.test","event":"registration_state","data":{"state":"registered"}})
    );
    // One connection leaves: the other's binding keeps the AOR reachable.
    let unreg =
        json!({"sylkrtc":"account-remove","transaction":"x","account":"alice@example.test"});
    assert_eq!(call(&mut a, unreg)["sylkrtc"], "ack");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(kam.options_to("alice").0, 200);
}
