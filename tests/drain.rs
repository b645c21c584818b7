//! Graceful drain of the real binary with real calls (an aiortc WebRTC client through the
//! gateway to SIPp's RTP echo): SIGTERM refuses new work (readiness 503, upgrades 503 with
//! Retry-After) and lets idle connections go at once but the call finish; the drain timeout
//! ends what is left with BYE and a `terminated` to the browser; a second SIGTERM does that
//! at once.

mod common;

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::client::run_sylkrtc_client;
use common::peers::{free_udp_range, Sipp};
use common::*;
use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

/// A gateway with a metrics listener, its own media ports and `drain_timeout`.
fn gateway(drain_timeout: u64) -> Gateway {
    let base = free_udp_range(40);
    Gateway::start(
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:0\"\n[shutdown]\ndrain_timeout = {drain_timeout}\n\
             [media]\nrtp_ports = \"{base}-{}\"\n",
            base + 39
        ),
        &[],
    )
}

fn echo_uas() -> Sipp {
    Sipp::echo_uas("uas_echo.xml")
}

/// The aiortc client calling SIPp's echo for `seconds`, in the background.
fn start_call(gw: &Gateway, uas: &Sipp, seconds: u32) -> JoinHandle<(Vec<Value>, Value)> {
    let ws = gw.ws_url();
    let target = format!("echo@{}", uas.sip_addr());
    std::thread::spawn(move || {
        run_sylkrtc_client(&[
            "call",
            "--ws",
            &ws,
            "--account",
            "alice@example.test",
            "--ha1",
            HA1,
            "--to",
            &target,
            "--seconds",
            &seconds.to_string(),
        ])
    })
}

/// Waits until the gateway reports one established call.
fn wait_established(metrics: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, _, text) = http(metrics, "GET", "/metrics");
        let up = metric(
            &text,
            "sylk_calls",
            "direction=\"outgoing\",state=\"established\"",
        );
        if up == Some(1.0) {
            return;
        }
        assert!(Instant::now() < deadline, "no established call:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The reason of the client's `terminated` event.
fn terminated_reason(events: &[Value]) -> String {
    events
        .iter()
        .find(|e| e["state"] == "terminated")
        .and_then(|e| e["reason"].as_str())
        .unwrap_or_else(|| panic!("no terminated event: {events:#?}"))
        .to_owned()
}

/// The code of the close frame `ws` gets next.
fn close_code(ws: &mut Client) -> Option<CloseCode> {
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => return frame.map(|f| f.code),
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

#[test]
fn sigterm_refuses_new_work_and_lets_the_call_finish() {
    let mut gw = gateway(60);
    let m = gw.metrics.unwrap();
    let uas = echo_uas();
    let browser = start_call(&gw, &uas, 5);
    let mut idle = connect_v2(&gw);
    call(
        &mut idle,
        json!({"sylkrtc":"account-add","transaction":"t","account":"bob@example.test","password":HA1}),
    );
    wait_established(m);
    gw.signal("TERM");
    // The idle connection goes at once, with 1001.
    assert_eq!(close_code(&mut idle), Some(CloseCode::Away));
    // New work is refused; liveness holds.
    for addr in [m, gw.ws] {
        let (status, _, body) = http(addr, "GET", "/ready");
        assert_eq!(status, 503, "{addr}: {body}");
        assert!(body.contains("draining"), "{body}");
        assert_eq!(http(addr, "GET", "/health").0, 200);
    }
    let upgrade = raw_http(
        gw.ws,
        "GET /webrtcgateway/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: sylkRTC-2\r\n\r\n",
    );
    assert!(
        upgrade.starts_with("HTTP/1.1 503 ") && upgrade.contains("Retry-After: 5\r\n"),
        "{upgrade}"
    );
    let (_, _, text) = http(m, "GET", "/metrics");
    assert_eq!(metric(&text, "sylk_draining", ""), Some(1.0));
    assert!(
        gw.wait_exit(Duration::from_millis(500)).is_none(),
        "the call is still up: the gateway must wait"
    );
    // The call runs its course: audio all along, ended by the client's own hang-up.
    let (events, result) = browser.join().unwrap();
    assert!(result["frames"].as_u64().unwrap_or(0) >= 150, "{result}");
    assert_eq!(terminated_reason(&events), "200 Local hangup");
    uas.wait_for_message("BYE sip:", Duration::from_secs(5));
    // Then the gateway lets the connection go and exits.
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("exits once the call is over");
    assert!(status.success(), "{status:?}");
    assert!(gw
        .log_lines()
        .iter()
        .any(|l| l.contains("drained: nothing left in progress")));
}

#[test]
fn the_drain_timeout_ends_the_call_with_bye() {
    let mut gw = gateway(2);
    let m = gw.metrics.unwrap();
    let uas = echo_uas();
    let call = start_call(&gw, &uas, 30);
    wait_established(m);
    let signalled = Instant::now();
    gw.signal("TERM");
    let (events, _) = call.join().unwrap();
    let ended = signalled.elapsed();
    assert_eq!(terminated_reason(&events), "503 Server shutting down");
    assert!(
        ended >= Duration::from_millis(1500) && ended < Duration::from_secs(10),
        "ended after {ended:?}"
    );
    uas.wait_for_message("BYE sip:", Duration::from_secs(5));
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("exits after the drain timeout");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_second_sigterm_ends_the_call_at_once() {
    let mut gw = gateway(300);
    let m = gw.metrics.unwrap();
    let uas = echo_uas();
    let call = start_call(&gw, &uas, 30);
    wait_established(m);
    gw.signal("TERM");
    gw.wait_for_log("draining for at most 300 s", Duration::from_secs(5));
    let second = Instant::now();
    gw.signal("TERM");
    let (events, _) = call.join().unwrap();
    assert_eq!(terminated_reason(&events), "503 Server shutting down");
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("exits after the second SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(
        second.elapsed() < Duration::from_secs(8),
        "took {:?}",
        second.elapsed()
    );
    uas.wait_for_message("BYE sip:", Duration::from_secs(5));
}
