// A valid upgrade followed by arbitrary frame bytes, fed in arbitrary chunks, through the
// whole WebSocket engine and gateway: nothing may panic.
//
// The body of fuzz target `ws_frames`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/ws_frames.rs`) and the stable harness (`tests/fuzz_stable.rs`).

use std::time::{Duration, Instant};

use sylk_gateway::ws::{WsConnection, WsEvent, WsLimits};

const UPGRADE: &[u8] = b"GET /webrtcgateway/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Protocol: sylkRTC-2\r\n\r\n";

/// One input: must not panic.
pub fn run(data: &[u8]) {
    let now = Instant::now();
    let mut ws = WsConnection::new(
        now,
        WsLimits {
            origins: vec!["*".into()],
            allow_missing_origin: true,
            max_message_size: 4096,
            max_queued_output: 65536,
            ping_interval: Duration::from_secs(1),
            pong_timeout: Duration::from_millis(500),
        },
    );
    ws.handle_input(now, UPGRADE);
    let chunk = data.first().map_or(1, |b| *b as usize % 64 + 1);
    for (i, part) in data.chunks(chunk).enumerate() {
        let t = now + Duration::from_millis(i as u64 * 100);
        ws.handle_input(t, part);
        ws.handle_timeout(t);
        while let Some(event) = ws.poll_event() {
            if let WsEvent::Text(text) = event {
                let _ = sylk_gateway::sylkrtc::decode(&text);
                ws.send_text(t, text);
            }
        }
        let n = ws.queued_output();
        ws.advance_transmit(n / 2);
    }
    ws.handle_eof(now);
}
