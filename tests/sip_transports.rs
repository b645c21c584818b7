//! The gateway's SIP transports with real sockets on 127.0.0.1: OPTIONS over UDP and TCP,
//! REGISTER over TLS (both directions: the gateway registers through its own TLS listener,
//! which answers 405), and a failed DNS lookup reported as `DNS lookup error: ...`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn options(target: SocketAddr, transport: &str, local: SocketAddr, branch: &str) -> String {
    format!(
        "OPTIONS sip:ping@{target} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK{branch};rport\r\n\
         From: <sip:tester@127.0.0.1>;tag=t1\r\nTo: <sip:ping@{target}>\r\nCall-ID: {branch}@tester\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn options_over_udp_and_tcp_get_200() {
    let gw = Gateway::start("", &[]);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = udp.local_addr().unwrap();
    udp.send_to(options(gw.sip, "UDP", local, "u1").as_bytes(), gw.sip)
        .unwrap();
    let mut buf = [0u8; 4096];
    let (n, from) = udp.recv_from(&mut buf).unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]);
    assert_eq!(from, gw.sip);
    assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");
    assert!(
        reply.contains(&format!("rport={}", local.port())),
        "RFC 3581: {reply}"
    );

    let mut tcp = TcpStream::connect(gw.sip).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = tcp.local_addr().unwrap();
    // A CRLFCRLF keep-alive first (RFC 5626 section 3.5.1): answered with CRLF.
    tcp.write_all(b"\r\n\r\n").unwrap();
    tcp.write_all(options(gw.sip, "TCP", local, "t1").as_bytes())
        .unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("Content-Length: 0\r\n\r\n") {
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("\r\nSIP/2.0 200 OK\r\n"), "{text:?}");
}

#[test]
fn register_over_tls_with_certificate_verification() {
    // The gateway's own TLS listener plays registrar: it answers REGISTER with 405, which
    // proves the TLS client (verifying the dev certificate via tls_ca_file) and server work.
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/certs/localhost.crt");
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tls_port = probe.local_addr().unwrap().port();
    drop(probe);
    let config = format!(
        "[sip]\ntls_ca_file = \"{ca}\"\noutbound_proxy = \"sip:127.0.0.1:{tls_port};transport=tls\"\n"
    );
    let gw = Gateway::start(
        &config,
        &["--sip-tls-listen", &format!("127.0.0.1:{tls_port}")],
    );
    let mut ws = connect_v2(&gw);
    call(
        &mut ws,
        json!({"sylkrtc":"account-add","transaction":"a","account":"alice@127.0.0.1","password":HA1}),
    );
    call(
        &mut ws,
        json!({"sylkrtc":"account-register","transaction":"r","account":"alice@127.0.0.1"}),
    );
    assert_eq!(recv_json(&mut ws)["state"], "registering");
    let failed = recv_json(&mut ws);
    assert_eq!(
        failed,
        json!({"sylkrtc":"account-event","account":"alice@127.0.0.1","event":"registration-state",
               "state":"failed","reason":"405 Method Not Allowed"})
    );
}

/// A DNS server that answers every query with NXDOMAIN (RFC 1035 RCODE 3).
fn nxdomain_server() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            let mut reply = buf[..n].to_vec();
            reply[2] = 0x81; // QR=1, RD=1
            reply[3] = 0x83; // RA=1, RCODE=NXDOMAIN
            let _ = sock.send_to(&reply, from);
        }
    });
    addr
}

#[test]
fn unresolvable_domain_reports_a_dns_lookup_error() {
    let dns = nxdomain_server();
    let gw = Gateway::start(&format!("[sip]\nnameservers = [\"{dns}\"]\n"), &[]);
    let mut ws = connect_v2(&gw);
    call(
        &mut ws,
        json!({"sylkrtc":"account-add","transaction":"a","account":"alice@nowhere.test","password":HA1}),
    );
    call(
        &mut ws,
        json!({"sylkrtc":"account-register","transaction":"r","account":"alice@nowhere.test"}),
    );
    assert_eq!(recv_json(&mut ws)["state"], "registering");
    let failed: Value = recv_json(&mut ws);
    assert_eq!(failed["state"], "failed");
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.starts_with("DNS lookup error: "), "{reason}");
}
