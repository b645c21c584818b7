//! WebSocket engine tests with virtual time: a tungstenite client codec on the other side of
//! an in-memory pipe, no sockets, no sleeps.

use super::*;

const UPGRADE: &str = "GET /webrtcgateway/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Protocol: sylkRTC-2\r\n\r\n";

fn limits() -> WsLimits {
    WsLimits {
        origins: vec!["*".into()],
        allow_missing_origin: true,
        max_message_size: 1024,
        max_queued_output: 4096,
        ping_interval: Duration::from_secs(120),
        pong_timeout: Duration::from_secs(60),
    }
}

/// The browser side: a client codec and the bytes it has received.
struct Peer {
    ctx: WebSocketContext,
    wire: WireBuffer,
}

impl Peer {
    fn new() -> Peer {
        Peer {
            ctx: WebSocketContext::new(Role::Client, None),
            wire: WireBuffer::default(),
        }
    }

    fn send(&mut self, server: &mut WsConnection, now: Instant, msg: Message) {
        self.ctx.write(&mut self.wire, msg).unwrap();
        self.ctx.flush(&mut self.wire).unwrap();
        let bytes = std::mem::take(&mut self.wire.output);
        server.handle_input(now, &bytes);
    }

    /// Moves the server's output to us and decodes every complete message.
    fn receive(&mut self, server: &mut WsConnection) -> Vec<Message> {
        if let Some(out) = server.poll_transmit() {
            self.wire.input.extend_from_slice(out);
            let n = out.len();
            server.advance_transmit(n);
        }
        let mut got = Vec::new();
        while let Ok(m) = self.ctx.read(&mut self.wire) {
            got.push(m);
        }
        // Replies the codec queued (pong, close echo) go back to the server on next send.
        got
    }

    fn flush_to(&mut self, server: &mut WsConnection, now: Instant) {
        let _ = self.ctx.flush(&mut self.wire);
        let bytes = std::mem::take(&mut self.wire.output);
        if !bytes.is_empty() {
            server.handle_input(now, &bytes);
        }
    }
}

fn open(now: Instant, limits: WsLimits) -> (WsConnection, Peer) {
    let mut ws = WsConnection::new(now, limits);
    ws.handle_input(now, UPGRADE.as_bytes());
    assert!(ws.is_open());
    assert_eq!(
        ws.poll_event(),
        Some(WsEvent::Open {
            dialect: Dialect::V2,
            origin: None
        })
    );
    let out = ws.poll_transmit().unwrap();
    let text = String::from_utf8_lossy(out).to_string();
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    let n = out.len();
    ws.advance_transmit(n);
    (ws, Peer::new())
}

#[test]
fn upgrade_split_across_reads_and_text_both_ways() {
    let now = Instant::now();
    let mut ws = WsConnection::new(now, limits());
    let (a, b) = UPGRADE.as_bytes().split_at(40);
    ws.handle_input(now, a);
    assert!(!ws.is_open());
    ws.handle_input(now, b);
    assert!(ws.is_open());
    let out_len = ws.poll_transmit().unwrap().len();
    ws.advance_transmit(out_len);
    assert!(matches!(ws.poll_event(), Some(WsEvent::Open { .. })));
    let mut peer = Peer::new();
    peer.send(&mut ws, now, Message::Text("{\"a\":1}".into()));
    assert_eq!(ws.poll_event(), Some(WsEvent::Text("{\"a\":1}".into())));
    ws.send_text(now, "hello".into());
    assert_eq!(peer.receive(&mut ws), [Message::Text("hello".into())]);
}

#[test]
fn messages_larger_than_the_read_buffer_arrive_whole_and_burst_buffers_shrink() {
    let now = Instant::now();
    let (mut ws, mut peer) = open(
        now,
        WsLimits {
            max_message_size: 65536,
            max_queued_output: 1 << 20,
            ..limits()
        },
    );
    // Three messages in one input burst, the middle one ten times the read buffer, fed in
    // uneven chunks.
    let big = "s".repeat(10 * READ_BUFFER_SIZE + 123);
    for m in ["a", big.as_str(), "b"] {
        peer.ctx
            .write(&mut peer.wire, Message::Text(m.into()))
            .unwrap();
    }
    peer.ctx.flush(&mut peer.wire).unwrap();
    let bytes = std::mem::take(&mut peer.wire.output);
    for chunk in bytes.chunks(1000) {
        ws.handle_input(now, chunk);
    }
    assert_eq!(ws.poll_event(), Some(WsEvent::Text("a".into())));
    assert_eq!(ws.poll_event(), Some(WsEvent::Text(big.clone())));
    assert_eq!(ws.poll_event(), Some(WsEvent::Text("b".into())));
    // A big reply goes out, and once written its buffer is given back.
    ws.send_text(now, big.clone());
    assert_eq!(peer.receive(&mut ws), [Message::Text(big.into())]);
    assert_eq!(ws.queued_output(), 0);
    assert!(ws.wire.output.capacity() <= KEEP_CAPACITY);
    assert!(ws.wire.input.capacity() <= KEEP_CAPACITY);
}

#[test]
fn refused_upgrade_sends_response_then_finishes_without_events() {
    let now = Instant::now();
    let mut ws = WsConnection::new(now, limits());
    ws.handle_input(now, UPGRADE.replace("/webrtcgateway/ws", "/x").as_bytes());
    assert!(String::from_utf8_lossy(ws.poll_transmit().unwrap()).starts_with("HTTP/1.1 404"));
    assert!(!ws.is_finished(), "the response must be flushed first");
    let n = ws.queued_output();
    ws.advance_transmit(n);
    assert!(ws.is_finished());
    assert_eq!(ws.poll_event(), None);
}

#[test]
fn handshake_timeout_drops_idle_sockets() {
    let now = Instant::now();
    let mut ws = WsConnection::new(now, limits());
    let deadline = ws.poll_timeout().unwrap();
    assert_eq!(deadline, now + HANDSHAKE_TIMEOUT);
    ws.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!ws.is_finished());
    ws.handle_timeout(deadline);
    assert!(ws.is_finished());
}

#[test]
fn pings_on_schedule_and_pong_timeout_closes() {
    let t0 = Instant::now();
    let mut l = limits();
    l.ping_interval = Duration::from_secs(10);
    l.pong_timeout = Duration::from_secs(5);
    let (mut ws, mut peer) = open(t0, l);
    assert_eq!(ws.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    let t1 = t0 + Duration::from_secs(10);
    ws.handle_timeout(t1);
    assert!(matches!(peer.receive(&mut ws)[..], [Message::Ping(_)]));
    // The peer's codec queued a pong; delivering it clears the deadline.
    peer.flush_to(&mut ws, t1);
    assert_eq!(ws.poll_timeout(), Some(t1 + Duration::from_secs(10)));
    let t2 = t1 + Duration::from_secs(10);
    ws.handle_timeout(t2);
    assert!(matches!(peer.receive(&mut ws)[..], [Message::Ping(_)]));
    assert_eq!(ws.poll_timeout(), Some(t2 + Duration::from_secs(5)));
    ws.handle_timeout(t2 + Duration::from_secs(5));
    assert_eq!(
        ws.poll_event(),
        Some(WsEvent::Closed(CloseReason::PingTimeout))
    );
    let frames = peer.receive(&mut ws);
    assert!(matches!(&frames[..], [Message::Close(Some(f))] if f.code == CloseCode::Away));
    assert!(ws.is_finished());
}

#[test]
fn oversized_message_closes_with_1009() {
    let now = Instant::now();
    let (mut ws, mut peer) = open(now, limits());
    peer.send(&mut ws, now, Message::Text("x".repeat(2000).into()));
    let frames = peer.receive(&mut ws);
    assert!(
        matches!(&frames[..], [Message::Close(Some(f))] if f.code == CloseCode::Size),
        "{frames:?}"
    );
    // Failing the connection does not wait for the echo (RFC 6455 section 7.1.7).
    assert!(matches!(
        ws.poll_event(),
        Some(WsEvent::Closed(CloseReason::ProtocolError(_)))
    ));
    assert!(ws.is_finished());
}

#[test]
fn output_overflow_closes_with_1008() {
    let now = Instant::now();
    let (mut ws, mut peer) = open(now, limits());
    ws.send_text(now, "a".repeat(3000));
    ws.send_text(now, "b".repeat(3000));
    let frames = peer.receive(&mut ws);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert!(matches!(&frames[1], Message::Close(Some(f)) if f.code == CloseCode::Policy));
    // No reply from the client: the close times out.
    let deadline = ws.poll_timeout().unwrap();
    ws.handle_timeout(deadline);
    assert_eq!(
        ws.poll_event(),
        Some(WsEvent::Closed(CloseReason::ServerClosed(1008)))
    );
    assert!(ws.is_finished());
}

#[test]
fn binary_frames_are_ignored_and_client_close_is_echoed() {
    let now = Instant::now();
    let (mut ws, mut peer) = open(now, limits());
    peer.send(&mut ws, now, Message::Binary(vec![1, 2, 3].into()));
    assert_eq!(ws.poll_event(), None);
    assert!(ws.is_open());
    peer.send(
        &mut ws,
        now,
        Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })),
    );
    assert_eq!(
        ws.poll_event(),
        Some(WsEvent::Closed(CloseReason::ClientClosed(Some(1000))))
    );
    assert!(matches!(&peer.receive(&mut ws)[..], [Message::Close(_)]));
    assert!(ws.is_finished());
}

#[test]
fn eof_mid_message_reports_closed_once() {
    let now = Instant::now();
    let (mut ws, _peer) = open(now, limits());
    ws.handle_input(now, &[0x81, 0x85, 1, 2]);
    ws.handle_eof(now);
    assert_eq!(ws.poll_event(), Some(WsEvent::Closed(CloseReason::Eof)));
    assert_eq!(ws.poll_event(), None);
    ws.handle_eof(now);
    assert_eq!(ws.poll_event(), None);
}

#[test]
fn server_close_waits_for_the_echo() {
    let now = Instant::now();
    let (mut ws, mut peer) = open(now, limits());
    ws.close(now, CloseCode::Away, "shutting down");
    assert!(
        matches!(&peer.receive(&mut ws)[..], [Message::Close(Some(f))] if f.code == CloseCode::Away)
    );
    assert!(!ws.is_finished());
    peer.flush_to(&mut ws, now);
    assert_eq!(
        ws.poll_event(),
        Some(WsEvent::Closed(CloseReason::ServerClosed(1001)))
    );
    assert!(ws.is_finished());
}

#[test]
fn unmasked_client_frame_is_a_protocol_error() {
    let now = Instant::now();
    let (mut ws, mut peer) = open(now, limits());
    // RFC 6455 section 5.1: a server must close on an unmasked client frame.
    ws.handle_input(now, &[0x81, 0x02, b'h', b'i']);
    let frames = peer.receive(&mut ws);
    assert!(
        matches!(&frames[..], [Message::Close(Some(f))] if f.code == CloseCode::Protocol),
        "{frames:?}"
    );
}

/// Issue 16 problem 2: after a connection was closed for output overflow, every request
/// still queued from the same read was processed. Closing discards them, and input that
/// arrives while closing is not delivered.
#[test]
fn nothing_is_delivered_once_the_connection_is_closing() {
    let now = Instant::now();
    let (mut ws, mut peer) = open(now, limits());
    // Many small requests pipelined in one read.
    let mut batch = Vec::new();
    for i in 0..100 {
        peer.ctx
            .write(
                &mut peer.wire,
                Message::Text(format!("{{\"n\":{i}}}").into()),
            )
            .unwrap();
    }
    peer.ctx.flush(&mut peer.wire).unwrap();
    batch.append(&mut peer.wire.output);
    ws.handle_input(now, &batch);
    assert_eq!(ws.poll_event(), Some(WsEvent::Text("{\"n\":0}".into())));
    // The layer above answers the first one so fast the client falls behind: overflow.
    ws.send_text(now, "a".repeat(3000));
    ws.send_text(now, "b".repeat(3000));
    assert!(!ws.is_open());
    assert_eq!(ws.poll_event(), None, "queued requests are discarded");
    let before = drops::count(DropKind::WsAfterClose);
    peer.send(&mut ws, now, Message::Text("{\"late\":1}".into()));
    assert_eq!(
        ws.poll_event(),
        None,
        "input while closing is not delivered"
    );
    assert!(drops::count(DropKind::WsAfterClose) > before);
}

/// Reads pause while the client leaves half the output limit unread (TCP flow control then
/// pushes back on it) and resume once it drained.
#[test]
fn input_is_paused_while_output_backs_up() {
    let now = Instant::now();
    let (mut ws, mut peer) = open(now, limits());
    assert!(ws.wants_input());
    ws.send_text(now, "a".repeat(2100));
    assert!(!ws.wants_input());
    peer.receive(&mut ws);
    assert!(ws.wants_input());
}
