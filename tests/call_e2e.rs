//! Calls end to end with real peers on 127.0.0.1: a WebRTC client (aiortc, speaking sylkRTC-2
//! over the WebSocket) calls through the real gateway binary to SIPp answering with RTP echo,
//! and audio is verified both ways (our 440 Hz tone comes back through SIP and the bridge).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::peers::{free_udp_range, Sipp, SippOpts};
use common::*;
use serde_json::Value;

/// Runs the aiortc sylkRTC client and returns its events and RESULT line.
fn run_client(args: &[&str]) -> (Vec<Value>, Value) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sylkrtc_peer.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("python3 (run tests/run-all.sh to install the peers)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("EVENT "))
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect();
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_else(|| {
            panic!(
                "client gave no RESULT (exit {:?})\nstdout:\n{stdout}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (events, result)
}

fn gateway_with_media() -> Gateway {
    let base = free_udp_range(40);
    Gateway::start(
        &format!("[media]\nrtp_ports = \"{base}-{}\"\n", base + 39),
        &[],
    )
}

#[test]
fn outgoing_call_to_sipp_with_rtp_echo() {
    let gw = gateway_with_media();
    let uas = Sipp::uas(
        "uas_echo.xml",
        SippOpts {
            rtp_echo: true,
            ..SippOpts::default()
        },
    );
    let target = format!("echo@{}", uas.sip_addr());
    let (events, result) = run_client(&[
        "call",
        "--ws",
        &gw.ws_url(),
        "--account",
        "alice@example.test",
        "--ha1",
        HA1,
        "--to",
        &target,
        "--seconds",
        "3",
    ]);
    eprintln!("client result: {result}");
    let states: Vec<&str> = result["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert_eq!(
        states,
        [
            "progress",
            "ringing",
            "accepted",
            "established",
            "terminated"
        ],
        "{events:#?}"
    );
    // Our 440 Hz tone went browser -> gateway -> SIPp and back through the bridge.
    let frames = result["frames"].as_u64().unwrap();
    let freq = result["freq"].as_f64().unwrap();
    assert!(
        frames >= 100,
        "only {frames} audio frames came back: {result}"
    );
    assert!(
        (400.0..480.0).contains(&freq),
        "echoed audio is not our tone: {result}"
    );
    // The accepted event carried the browser-ready answer with all our candidates.
    let accepted = events
        .iter()
        .find(|e| e["state"] == "accepted")
        .expect("accepted event");
    let sdp = accepted["sdp"].as_str().unwrap();
    assert!(sdp.contains("a=end-of-candidates"), "{sdp}");
    assert!(sdp.contains("a=candidate:"), "{sdp}");
    // What SIPp saw: INVITE, ACK and our BYE.
    let seen = uas.wait_for_message("BYE sip:", Duration::from_secs(5));
    assert!(seen.contains("INVITE sip:echo@"), "{seen}");
    assert!(seen.contains("ACK sip:"), "{seen}");
}
