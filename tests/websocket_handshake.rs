//! The WebSocket endpoint of the real binary: upgrade only at /webrtcgateway/ws with a
//! sylkRTC subprotocol, over ws:// and wss://, with the ready event right after.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::*;
use serde_json::json;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;

fn upgrade(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

#[test]
fn dialect_follows_the_offered_subprotocol() {
    let gw = Gateway::start("", &[]);
    let (mut v1, proto) = connect(&gw, "sylkRTC-1");
    assert_eq!(proto.as_deref(), Some("sylkRTC-1"));
    assert_eq!(
        recv_json(&mut v1),
        json!({"sylkrtc":"event","event":"ready"})
    );
    let (mut v2, proto) = connect(&gw, "sylkRTC-2");
    assert_eq!(proto.as_deref(), Some("sylkRTC-2"));
    assert_eq!(recv_json(&mut v2), json!({"sylkrtc":"ready-event"}));
    let (mut both, proto) = connect(&gw, "sylkRTC-1, sylkRTC-2");
    assert_eq!(proto.as_deref(), Some("sylkRTC-2"));
    assert_eq!(recv_json(&mut both), json!({"sylkrtc":"ready-event"}));
}

#[test]
fn wrong_path_is_404_and_no_subprotocol_is_406() {
    let gw = Gateway::start("", &[]);
    let r = raw_http(
        gw.ws,
        &upgrade("/somewhere", "Sec-WebSocket-Protocol: sylkRTC-2\r\n"),
    );
    assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
    let r = raw_http(gw.ws, &upgrade("/webrtcgateway/ws", ""));
    assert!(r.starts_with("HTTP/1.1 406 "), "{r}");
    assert!(r.contains("No compatible protocol specified"), "{r}");
    let r = raw_http(
        gw.ws,
        &upgrade("/webrtcgateway/ws", "Sec-WebSocket-Protocol: sylkRTC-3\r\n"),
    );
    assert!(r.starts_with("HTTP/1.1 406 "), "{r}");
    // `/` serves the demo page since issue 6 (tests/browser_e2e.rs); other paths stay 404.
    let r = raw_http(gw.ws, "GET /index.php HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
    // The gateway is still serving.
    connect_v2(&gw);
}

/// Sends `request` and reads until `end` appears (the connection stays open).
fn raw_http_until(addr: std::net::SocketAddr, request: &str, end: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&out).contains(end) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn origin_allow_list_is_enforced() {
    let gw = Gateway::start("[websocket]\norigins = [\"https://app.example\"]\n", &[]);
    let proto = "Sec-WebSocket-Protocol: sylkRTC-2\r\n";
    let r = raw_http(
        gw.ws,
        &upgrade(
            "/webrtcgateway/ws",
            &format!("{proto}Origin: https://evil.example\r\n"),
        ),
    );
    assert!(r.starts_with("HTTP/1.1 403 "), "{r}");
    let r = raw_http(
        gw.ws,
        &upgrade("/webrtcgateway/ws", &format!("{proto}Origin: null\r\n")),
    );
    assert!(r.starts_with("HTTP/1.1 403 "), "null stays refused: {r}");
    // Issue 16: a native client sends no Origin at all; it was refused with 403.
    let r = raw_http_until(gw.ws, &upgrade("/webrtcgateway/ws", proto), "\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 101 "), "no Origin passes: {r}");
    let strict = Gateway::start(
        "[websocket]\norigins = [\"https://app.example\"]\nallow_missing_origin = false\n",
        &[],
    );
    let r = raw_http(strict.ws, &upgrade("/webrtcgateway/ws", proto));
    assert!(r.starts_with("HTTP/1.1 403 "), "unless configured: {r}");
    let mut req = gw.ws_url().into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("sylkRTC-2"),
    );
    req.headers_mut()
        .insert("Origin", HeaderValue::from_static("https://app.example"));
    let (mut ws, _) = tungstenite::client(req, TcpStream::connect(gw.ws).unwrap()).unwrap();
    assert_eq!(recv_json(&mut ws), json!({"sylkrtc":"ready-event"}));
}

#[test]
fn wss_with_the_dev_certificate() {
    let gw = Gateway::start("", &[]);
    let addr = gw.wss.expect("wss listener");
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let server_name = "localhost".try_into().unwrap();
    let conn = rustls::ClientConnection::new(dev_tls_client(), server_name).unwrap();
    let tls = rustls::StreamOwned::new(conn, tcp);
    let mut req = format!("wss://localhost:{}/webrtcgateway/ws", addr.port())
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("sylkRTC-2"),
    );
    let (mut ws, _) = tungstenite::client(req, tls).expect("wss handshake");
    assert_eq!(recv_json(&mut ws), json!({"sylkrtc":"ready-event"}));
    let reply = call(&mut ws, json!({"sylkrtc":"ping","transaction":"p"}));
    assert_eq!(reply, json!({"sylkrtc":"ack","transaction":"p"}));
    let version = ws.get_ref().conn.protocol_version().unwrap();
    assert!(matches!(
        version,
        rustls::ProtocolVersion::TLSv1_3 | rustls::ProtocolVersion::TLSv1_2
    ));
}

#[test]
fn connection_limit_answers_503() {
    let gw = Gateway::start("[websocket]\nmax_connections = 2\n", &[]);
    let _a = connect_v2(&gw);
    let _b = connect_v2(&gw);
    let r = raw_http(
        gw.ws,
        &upgrade("/webrtcgateway/ws", "Sec-WebSocket-Protocol: sylkRTC-2\r\n"),
    );
    assert!(r.starts_with("HTTP/1.1 503 "), "{r}");
}
