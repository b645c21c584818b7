//! CPU cost of one sylkRTC request through the whole web side, without sockets: a masked
//! WebSocket frame in -> frame decoding -> JSON decoding -> gateway -> ack encoding -> frame
//! out. Reports ns of thread CPU per request for `ping` and `account-add`/`account-remove`.
//!
//! Run: `cargo bench --bench sylkrtc_request`. The reference figure for tungstenite +
//! serde_json request+ack is ~7.9 us of server CPU per message including syscalls
//! (`../shared/design/performance.md`); this measures our engines alone.

use std::hint::black_box;
use std::time::{Duration, Instant};

use sip::dns::{Resolver, ResolverConfig};
use sip::stack::{SipStack, StackConfig};
use sip::transport::LocalAddresses;
use sylk_gateway::config::Config;
use sylk_gateway::gateway::{Gateway, GatewayCommand, GatewayConfig};
use sylk_gateway::switchboard::{Command, Switchboard};
use sylk_gateway::sylkrtc::Dialect;
use sylk_gateway::ws::{WsConnection, WsEvent, WsLimits};

/// CPU time of this thread (ns), from /proc (no unsafe clock_gettime needed).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A client frame: FIN + text opcode, masked as RFC 6455 section 5.3 requires.
fn masked_text_frame(text: &str) -> Vec<u8> {
    let payload = text.as_bytes();
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut f = vec![0x81];
    if payload.len() < 126 {
        f.push(0x80 | payload.len() as u8);
    } else {
        f.push(0x80 | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fn setup() -> (WsConnection, Switchboard, sylk_gateway::gateway::ConnRef) {
    let now = Instant::now();
    let config = Config::default();
    let stack = SipStack::new(
        StackConfig {
            local: LocalAddresses {
                udp_tcp: config.sip.listen,
                tls: None,
                advertised_host: None,
            },
            transports: config.sip.transports.clone(),
            outbound_proxy: None,
            register_expires: 600,
            user_agent: "bench".into(),
        },
        Resolver::new(
            ResolverConfig::with_nameservers(vec!["127.0.0.1:53".parse().unwrap()]),
            engine::Rng::seed_from_u64(1),
        ),
        engine::Rng::seed_from_u64(1),
    );
    let gateway = Gateway::new(
        GatewayConfig {
            sylkrtc: config.sylkrtc.clone(),
            trace_websocket: false,
            media: config.media.clone(),
            decline_code: 486,
            push_parameters: Default::default(),
            messaging: config.messaging.clone(),
            contacts: config.contacts.clone(),
            chat: Default::default(),
            dtls_identity: std::sync::Arc::new(
                media::webrtc_leg::DtlsIdentity::generate().expect("DTLS identity"),
            ),
        },
        engine::Rng::seed_from_u64(1),
    )
    .expect("gateway");
    let mut gateway = Switchboard::new(gateway, stack, config.media.max_calls);
    let mut ws = WsConnection::new(
        now,
        WsLimits {
            origins: vec!["*".into()],
            allow_missing_origin: true,
            max_message_size: 65536,
            max_queued_output: 1 << 30,
            ping_interval: Duration::ZERO,
            pong_timeout: Duration::ZERO,
        },
    );
    ws.handle_input(
        now,
        b"GET /webrtcgateway/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: sylkRTC-2\r\n\r\n",
    );
    let Some(WsEvent::Open { .. }) = ws.poll_event() else {
        panic!("handshake failed")
    };
    let client = 1;
    gateway.handle_client_open(now, client, Dialect::V2, 1);
    while gateway.poll_output().is_some() {} // the ready event
    (ws, gateway, client)
}

/// Runs `frames` through the engines, returning thread-CPU ns per frame.
fn run(frames: &[Vec<u8>], rounds: usize) -> f64 {
    let (mut ws, mut gateway, client) = setup();
    let now = Instant::now();
    let start = thread_cpu_ns();
    let mut replies = 0usize;
    for _ in 0..rounds {
        for frame in frames {
            ws.handle_input(now, frame);
            while let Some(event) = ws.poll_event() {
                if let WsEvent::Text(text) = event {
                    gateway.handle_client_text(now, client, &text);
                }
            }
            while let Some(out) = gateway.poll_output() {
                if let Command::Gateway(GatewayCommand::Send { text, .. }) = out {
                    ws.send_text(now, text);
                    replies += 1;
                }
            }
            let n = ws.queued_output();
            black_box(ws.poll_transmit());
            ws.advance_transmit(n);
        }
    }
    let spent = thread_cpu_ns() - start;
    assert_eq!(
        replies,
        frames.len() * rounds,
        "every request gets one reply"
    );
    spent as f64 / (frames.len() * rounds) as f64
}

fn main() {
    let ping = vec![masked_text_frame(
        r#"{"sylkrtc":"ping","transaction":"3f1c2a9e-6b1d-4a52-9c7e-2f8d6a1b0c3d"}"#,
    )];
    let accounts = vec![
        masked_text_frame(
            r#"{"sylkrtc":"account-add","transaction":"7a1e","account":"alice@example.com","password":"0123456789abcdef0123456789abcdef","display_name":"Alice","user_agent":"SylkRTC (Chrome 120 on Linux)"}"#,
        ),
        masked_text_frame(
            r#"{"sylkrtc":"account-remove","transaction":"7a1f","account":"alice@example.com"}"#,
        ),
    ];
    // `cargo bench` passes --bench; under `cargo test --benches` this is a short smoke run
    // of a debug build whose figures mean nothing (it still checks one reply per request).
    let timing = std::env::args().any(|a| a == "--bench");
    let (pings, account_pairs) = if timing {
        (200_000, 50_000)
    } else {
        (500, 100)
    };
    // Warm up, then measure.
    run(&ping, 2_000.min(pings));
    let ping_ns = run(&ping, pings);
    let account_ns = run(&accounts, account_pairs);
    println!("sylkrtc ping request -> ack:               {ping_ns:>8.0} ns thread CPU per request");
    println!(
        "sylkrtc account-add/remove request -> ack: {account_ns:>8.0} ns thread CPU per request"
    );
    println!(
        "per core: {:.0} pings/s, {:.0} account requests/s (engines only, no syscalls)",
        1e9 / ping_ns,
        1e9 / account_ns
    );
}
