//! Renegotiation of running calls end to end with real peers on 127.0.0.1: the aiortc
//! sylkRTC client (`tests/clients/sylkrtc_peer.py --steps`) puts the call on hold, takes it
//! off hold and adds video with `session-update` toward SIPp (re-INVITEs answered with
//! directions mirrored, RTP echoed) and toward baresip; the media is measured after each
//! change.

mod common;

use std::time::Duration;

use common::client::run_sylkrtc_client;
use common::peers::{free_udp_range, Sipp, SippOpts};
use common::*;
use serde_json::Value;

fn gateway_with_media() -> Gateway {
    let base = free_udp_range(40);
    Gateway::start(
        &format!("[media]\nrtp_ports = \"{base}-{}\"\n", base + 39),
        &[],
    )
}

fn steps(result: &Value) -> &Vec<Value> {
    result["steps"].as_array().expect("steps in RESULT")
}

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// A measured phase carried our 440 Hz tone back (through the echo).
fn assert_tone(phase: &Value, what: &str) {
    let freq = phase["freq"].as_f64().unwrap_or(0.0);
    assert!(
        u(phase, "frames") >= 50 && (400.0..480.0).contains(&freq),
        "{what}: no echoed tone: {phase}"
    );
}

#[test]
fn hold_unhold_and_video_upgrade_by_session_update_to_sipp() {
    let gw = gateway_with_media();
    let uas = Sipp::uas(
        "uas_updates.xml",
        SippOpts {
            rtp_echo: true,
            ..SippOpts::default()
        },
    );
    let target = format!("echo@{}", uas.sip_addr());
    let script = r#"[{"update":"hold"},{"measure":2},{"update":"unhold"},{"measure":2},
        {"update":"add-video"},{"measure":4}]"#;
    let (events, result) = run_sylkrtc_client(&[
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
        "2",
        "--steps",
        script,
    ]);
    eprintln!("client result: {result}");
    let s = steps(&result);
    assert_eq!(s.len(), 6, "{result}");
    // Before any change: the echo carries our tone.
    assert!(u(&result, "frames") >= 50, "{result}");
    // Hold: the SIP side answered recvonly and the gateway sends the browser nothing.
    assert_eq!(s[0]["state"], "accepted", "{events:#?}");
    assert_eq!(s[0]["answer"][0]["direction"], "recvonly", "{}", s[0]);
    assert!(
        u(&s[1], "frames") < 10,
        "audio reached a browser on hold: {}",
        s[1]
    );
    // Unhold: sendrecv again and the echo comes back.
    assert_eq!(s[2]["state"], "accepted");
    assert_eq!(s[2]["answer"][0]["direction"], "sendrecv", "{}", s[2]);
    assert_tone(&s[3], "after unhold");
    // Video added: the SIP side took it, our video comes back decoded, audio goes on.
    assert_eq!(s[4]["state"], "accepted", "{}", s[4]);
    let answer = s[4]["answer"].as_array().unwrap();
    assert!(
        answer
            .iter()
            .any(|m| m["kind"] == "video" && u(m, "port") != 0),
        "{}",
        s[4]
    );
    assert_tone(&s[5], "after the video upgrade");
    assert!(u(&s[5], "video_frames") >= 20, "no echoed video: {}", s[5]);
    // What SIPp saw: three re-INVITEs, the third with video.
    let seen = uas.wait_for_message("BYE sip:", Duration::from_secs(5));
    assert_eq!(
        seen.matches("INVITE sip:").count(),
        4,
        "initial + 3 re-INVITEs"
    );
    assert!(seen.contains("a=sendonly"), "{seen}");
}
