//! account-register / account-unregister against a real Kamailio registrar (digest against
//! HA1, domain example.test) on 127.0.0.1, over UDP and TCP. The binding is checked from the
//! outside: an OPTIONS to the AOR through Kamailio reaches the gateway (200) only while the
//! account is registered.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::peers::{Kamailio, KamailioOpts};
use common::*;
use serde_json::{json, Value};

/// Sends OPTIONS for `user@example.test` through Kamailio and returns the final status and
/// the Server header of the answer.
fn options_via_proxy(kam: &Kamailio, user: &str) -> (u16, String) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = sock.local_addr().unwrap();
    let branch = format!("z9hG4bK{}", local.port());
    let msg = format!(
        "OPTIONS sip:{user}@example.test SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
         From: <sip:probe@example.test>;tag=p1\r\nTo: <sip:{user}@example.test>\r\n\
         Call-ID: {branch}@probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(msg.as_bytes(), kam.sip_addr()).unwrap();
    let mut buf = [0u8; 8192];
    loop {
        let (n, _) = sock.recv_from(&mut buf).expect("an answer to OPTIONS");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let status: u16 = text.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0);
        if status >= 200 {
            let server = text
                .lines()
                .find_map(|l| l.strip_prefix("Server: "))
                .unwrap_or("")
                .to_owned();
            return (status, server);
        }
    }
}

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
        options_via_proxy(&kam, "alice"),
        (200, "sylk-gateway-test".to_owned())
    );
    let unreg =
        json!({"sylkrtc":"account-unregister","transaction":"u","account":"alice@example.test"});
    assert_eq!(call(&mut ws, unreg)["sylkrtc"], "ack");
    // No event follows account-unregister (as in SylkServer); the binding goes away.
    let gone = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        options_via_proxy(&kam, "alice").0 != 200
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
    assert_eq!(options_via_proxy(&kam, "bob").0, 200);
    drop(ws);
    let gone = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        options_via_proxy(&kam, "bob").0 != 200
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
    assert_eq!(options_via_proxy(&kam, "alice").0, 200);
}
