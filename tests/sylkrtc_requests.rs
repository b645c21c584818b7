//! sylkRTC requests against the real binary: one ack or error per request, in order, with
//! SylkServer's texts; garbage is dropped without killing the connection; limits close it
//! with the right code.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use serde_json::json;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

#[test]
fn accounts_add_remove_and_errors() {
    let gw = Gateway::start(
        "[sylkrtc]\nsip_domains = [\"example.com\"]\nmax_accounts_per_connection = 2\n",
        &[],
    );
    let mut ws = connect_v2(&gw);
    let add = |tx: &str, account: &str| json!({"sylkrtc":"account-add","transaction":tx,"account":account,"password":HA1,"display_name":"Alice"});
    assert_eq!(
        call(&mut ws, add("1", "sip:alice@example.com"))["sylkrtc"],
        "ack"
    );
    assert_eq!(
        call(&mut ws, add("2", "alice@example.com"))["error"],
        "Account alice@example.com already added"
    );
    assert_eq!(
        call(&mut ws, add("3", "bob@elsewhere.org"))["error"],
        "SIP domain not allowed: elsewhere.org"
    );
    assert_eq!(call(&mut ws, add("4", "bob@example.com"))["sylkrtc"], "ack");
    assert_eq!(
        call(&mut ws, add("5", "carol@example.com"))["error"],
        "Too many accounts on this connection (at most 2)"
    );
    assert_eq!(
        call(
            &mut ws,
            json!({"sylkrtc":"account-remove","transaction":"6","account":"carol@example.com"})
        )["error"],
        "Unknown account specified: carol@example.com"
    );
    assert_eq!(
        call(
            &mut ws,
            json!({"sylkrtc":"account-remove","transaction":"7","account":"sips:bob@example.com"})
        )["sylkrtc"],
        "ack"
    );
    assert_eq!(
        call(&mut ws, json!({"sylkrtc":"account-add","transaction":"8","account":"x@example.com","password":"short"}))["error"],
        "Invalid value for 'password' property: <redacted> (expected the HA1 as 32 (MD5) or 64 (SHA-256) hex digits)"
    );
    assert_eq!(
        call(
            &mut ws,
            json!({"sylkrtc":"account-add","transaction":"9","account":"not-an-aor"})
        )["error"],
        "invalid SIP URI: not-an-aor"
    );
    assert_eq!(
        call(
            &mut ws,
            json!({"sylkrtc":"account-add","transaction":"10","password":HA1})
        )["error"],
        "Mandatory property 'account' of 'account-add' request is missing"
    );
}

#[test]
fn the_same_account_on_two_connections_and_v1_clients() {
    let gw = Gateway::start("", &[]);
    let mut a = connect_v2(&gw);
    let (mut b, _) = connect(&gw, "sylkRTC-1");
    assert_eq!(recv_json(&mut b)["event"], "ready");
    let add = json!({"sylkrtc":"account-add","transaction":"t","account":"alice@example.com","password":HA1});
    assert_eq!(call(&mut a, add.clone())["sylkrtc"], "ack");
    assert_eq!(call(&mut b, add)["sylkrtc"], "ack");
}

#[test]
fn garbage_is_dropped_and_the_connection_stays_up() {
    let gw = Gateway::start("", &[]);
    let mut ws = connect_v2(&gw);
    for text in [
        "not json",
        "[1,2]",
        "{}",
        r#"{"sylkrtc":1,"transaction":"x"}"#,
        r#"{"sylkrtc":"ping"}"#,
    ] {
        ws.send(Message::Text(text.into())).unwrap();
    }
    ws.send(Message::Binary(vec![0, 1, 2].into())).unwrap();
    // The next reply is the ping's: nothing was answered for the garbage.
    assert_eq!(
        call(&mut ws, json!({"sylkrtc":"ping","transaction":"alive"})),
        json!({"sylkrtc":"ack","transaction":"alive"})
    );
    assert_eq!(
        call(&mut ws, json!({"sylkrtc":"foo-bar","transaction":"u"}))["error"],
        "Unknown request type: foo-bar"
    );
}

#[test]
fn later_features_are_refused_with_an_error_never_silence() {
    let gw = Gateway::start("", &[]);
    let mut ws = connect_v2(&gw);
    call(
        &mut ws,
        json!({"sylkrtc":"account-add","transaction":"a","account":"alice@example.com","password":HA1}),
    );
    let cases = [
        (
            json!({"sylkrtc":"session-create","transaction":"2","account":"alice@example.com","session":"s","uri":"bob@example.com","sdp":"v=0"}),
            "Invalid SDP: Webrtc SDP: SDP has no o= line",
        ),
        (
            json!({"sylkrtc":"session-trickle","transaction":"3","session":"s","candidates":[]}),
            "Unknown session s",
        ),
        (
            json!({"sylkrtc":"account-fetch-addressbook","transaction":"4","account":"alice@example.com"}),
            "Account not authenticated",
        ),
        (
            json!({"sylkrtc":"videoroom-join","transaction":"5","session":"r","account":"alice@example.com","uri":"room@example.com","sdp":"v=0"}),
            "not supported yet: videoroom-join",
        ),
        (
            json!({"sylkrtc":"session-create","transaction":"6","account":"alice@example.com","session":"s","uri":"bob@example.com","sdp":5}),
            "Invalid value for 'sdp' property: 5 (expected a string)",
        ),
    ];
    for (request, error) in cases {
        assert_eq!(call(&mut ws, request)["error"], error);
    }
}

#[test]
fn oversized_message_closes_with_1009() {
    let gw = Gateway::start("[websocket]\nmax_message_size = 2048\n", &[]);
    let mut ws = connect_v2(&gw);
    let big = format!(
        r#"{{"sylkrtc":"ping","transaction":"{}"}}"#,
        "x".repeat(4000)
    );
    ws.send(Message::Text(big.into())).unwrap();
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Size),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => panic!("no close frame: {e}"),
    }
}

#[test]
fn server_pings_and_drops_a_silent_peer() {
    let gw = Gateway::start("[websocket]\nping_interval = 1\n", &[]);
    // A raw socket that completes the handshake but never answers pings.
    let mut s = TcpStream::connect(gw.ws).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"GET /webrtcgateway/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: sylkRTC-2\r\n\r\n",
    )
    .unwrap();
    let mut all = Vec::new();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) => panic!("connection not closed by the gateway: {e}"),
        }
    }
    let elapsed = started.elapsed();
    // ready event, then a ping frame (0x89), then a close frame (0x88) with 1001.
    let body = &all[all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    assert!(
        body.windows(2).any(|w| w == [0x89, 0x00]),
        "no ping in {body:?}"
    );
    assert!(
        body.windows(4)
            .any(|w| w[0] == 0x88 && w[2..] == [0x03, 0xe9]),
        "no 1001 close in {body:?}"
    );
    // One interval to the ping plus half an interval for the pong.
    assert!(elapsed >= Duration::from_millis(1400), "{elapsed:?}");
}

/// A burst of requests from several clients at once is more than one reactor turn may route
/// (its routing budget, `src/reactor/budget.rs`): the rest is carried to the next turns, and
/// every request still gets its reply, in order per client, with nothing lost or stuck.
#[test]
fn a_burst_of_requests_from_several_clients_is_answered_whole_and_in_order() {
    const CLIENTS: usize = 4;
    const REQUESTS: usize = 400;
    let gw = Gateway::start("", &[]);
    let mut clients: Vec<Client> = (0..CLIENTS).map(|_| connect_v2(&gw)).collect();
    for ws in &mut clients {
        for i in 0..REQUESTS {
            let ping = json!({"sylkrtc":"ping","transaction":format!("p{i}")});
            ws.write(Message::Text(ping.to_string().into())).unwrap();
        }
    }
    for ws in &mut clients {
        ws.flush().unwrap();
    }
    for (c, ws) in clients.iter_mut().enumerate() {
        for i in 0..REQUESTS {
            let reply = recv_json(ws);
            assert_eq!(reply["sylkrtc"], "ack", "client {c}, request {i}: {reply}");
            assert_eq!(
                reply["transaction"],
                format!("p{i}"),
                "client {c}: reply out of order"
            );
        }
    }
}
