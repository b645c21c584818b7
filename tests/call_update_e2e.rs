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
    let uas = Sipp::echo_uas("uas_updates.xml");
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

/// A gateway sending everything through `kam`.
fn gateway_via(kam: &common::peers::Kamailio) -> Gateway {
    let base = free_udp_range(40);
    Gateway::start(
        &format!(
            "[sip]\noutbound_proxy = \"sip:{}\"\n[media]\nrtp_ports = \"{base}-{}\"\n",
            kam.sip_addr(),
            base + 39
        ),
        &[],
    )
}

#[test]
fn hold_unhold_and_video_upgrade_by_session_update_to_baresip() {
    use common::peers::{Baresip, BaresipOpts, Kamailio, KamailioOpts};
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam);
    // baresip with video (VP8, fakevideo bars) takes the upgrade; it answers re-INVITEs
    // itself, directions mirrored.
    let mut bs = Baresip::start(
        &kam,
        BaresipOpts {
            user: "bob".into(),
            video: true,
            ..BaresipOpts::default()
        },
    );
    bs.wait_for_registration(Duration::from_secs(10));
    let script = r#"[{"update":"hold"},{"measure":2},{"update":"unhold"},{"measure":2},
        {"update":"add-video"},{"measure":5}]"#;
    let args: Vec<String> = [
        "call",
        "--ws",
        &gw.ws_url(),
        "--account",
        "alice@example.test",
        "--ha1",
        &kam.ha1("alice"),
        "--to",
        "bob@example.test",
        "--seconds",
        "2",
        "--hz",
        "660",
        "--steps",
        script,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let client = std::thread::spawn(move || run_sylkrtc_client(&args));
    // Once upgraded, baresip decodes our test pattern.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let decoded = loop {
        if let Some(v) = bs.video_stats().filter(|v| v.displayed_frames >= 20) {
            break Some(v);
        }
        if std::time::Instant::now() > deadline || client.is_finished() {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (events, result) = client.join().unwrap();
    eprintln!("client result: {result}");
    let decoded = decoded.expect("baresip never decoded our video after the upgrade");
    assert_eq!((decoded.width, decoded.height), (320, 240), "{decoded:?}");
    let s = steps(&result);
    assert_eq!(s.len(), 6, "{events:#?}");
    // baresip's 440 Hz sine before any change.
    let freq = result["freq"].as_f64().unwrap_or(0.0);
    assert!(
        u(&result, "frames") >= 50 && (400.0..480.0).contains(&freq),
        "{result}"
    );
    assert_eq!(s[0]["state"], "accepted", "{}", s[0]);
    assert_eq!(s[0]["answer"][0]["direction"], "recvonly", "{}", s[0]);
    assert!(u(&s[1], "frames") < 10, "audio during hold: {}", s[1]);
    assert_eq!(s[2]["state"], "accepted", "{}", s[2]);
    let back = s[3]["freq"].as_f64().unwrap_or(0.0);
    assert!(
        u(&s[3], "frames") >= 50 && (400.0..480.0).contains(&back),
        "baresip's audio after unhold: {}",
        s[3]
    );
    assert_eq!(s[4]["state"], "accepted", "{}", s[4]);
    assert!(
        s[4]["answer"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["kind"] == "video" && u(m, "port") != 0),
        "{}",
        s[4]
    );
    assert!(
        u(&s[5], "frames") >= 100,
        "audio after the upgrade: {}",
        s[5]
    );
    assert!(
        u(&s[5], "video_frames") >= 20,
        "baresip's video did not arrive: {}",
        s[5]
    );
}

#[test]
fn sip_reinvites_with_new_sdes_keys_and_added_video_are_answered_by_the_browser() {
    use common::client::AnsweringClient;
    use common::peers::{Kamailio, KamailioOpts};
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam);
    // The browser answers every `update` `received` at once.
    let client = AnsweringClient::start(
        &gw,
        &kam.ha1("alice"),
        &["--seconds", "12", "--auto-answer-updates"],
    );
    let mut uac = Sipp::uac(
        "uac_reinvites.xml",
        kam.sip_addr(),
        SippOpts {
            pause: Some(Duration::from_secs(2)),
            ..SippOpts::call("bob", "alice")
        },
    );
    assert_eq!(
        uac.wait_exit(Duration::from_secs(30)),
        0,
        "{}\n{}",
        uac.errors(),
        uac.messages()
    );
    let result = client.result();
    eprintln!("client result: {result}");
    assert_eq!(u(&result, "updates_answered"), 2, "{result}");
    let messages = uac.messages();
    // Each 200 kept SDES on audio; the last one took video with a key of its own.
    assert_eq!(messages.matches("RTP/SAVP 0").count(), 6, "{messages}");
}

/// Codec change mid-call (RFC 3264 section 8.3.2; the gateway does not transcode, so both
/// legs move): a call on PCMU; SIPp re-INVITEs with G.729 only (488, the call goes on), then
/// with PCMA only (the browser answers `update` `received`, the 200 carries PCMA); then the
/// browser's `session-update` offers PCMU only and SIPp answers it; its offer of Opus only
/// gets 488 (`update` `failed`, the call stays on PCMU). After each change the
/// echoed tone comes back with the new payload type (SIPp echoes what it received, so the
/// type also went out to it).
#[test]
fn codec_changes_from_sip_and_from_the_browser_move_both_legs() {
    let gw = gateway_with_media();
    let uas = Sipp::echo_uas("uas_codec_change.xml");
    let target = format!("echo@{}", uas.sip_addr());
    // SIPp: G.729 re-INVITE 2.5 s after its ACK, PCMA 3 s later.
    let script = r#"[{"measure":2.5},{"answer-update":15},{"measure":3},
        {"update":"codec:PCMU"},{"measure":3},{"update":"codec:opus"},{"measure":2}]"#;
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
        "1.5",
        "--steps",
        script,
    ]);
    eprintln!("client result: {result}");
    let s = steps(&result);
    assert_eq!(s.len(), 7, "{result}");
    let only = |phase: &Value, pt: &str| {
        let pts = phase["payload_types"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(
            pts.get(pt).and_then(Value::as_u64).unwrap_or(0) >= 50 && pts.keys().all(|k| k == pt),
            "payload type {pt} alone expected: {phase}"
        );
    };
    // The G.729 offer was refused and nothing changed for the browser: PCMU goes on.
    assert_tone(&s[0], "after the refused G.729 offer");
    only(&s[0], "0");
    // PCMA only: offered to the browser with PCMA only; its answer took it.
    assert_eq!(s[1]["answer_formats"][0], "8", "{}", s[1]);
    assert_tone(&s[2], "after the move to PCMA");
    only(&s[2], "8");
    // The browser's offer of PCMU only: a re-INVITE SIPp answered with PCMU.
    assert_eq!(s[3]["state"], "accepted", "{events:#?}");
    assert_eq!(s[3]["sending"], "PCMU/0", "{}", s[3]);
    assert_tone(&s[4], "after the move back to PCMU");
    only(&s[4], "0");
    // Opus only: SIPp refuses it (488), the browser is told and the call stays on PCMU.
    assert_eq!(s[5]["state"], "failed", "{}", s[5]);
    assert!(
        s[5]["reason"].as_str().unwrap_or("").starts_with("488"),
        "{}",
        s[5]
    );
    assert_tone(&s[6], "after the refused move to Opus");
    only(&s[6], "0");
    let seen = uas.wait_for_message("BYE sip:", Duration::from_secs(5));
    assert_eq!(seen.matches("SIP/2.0 488").count(), 2, "{seen}");
    assert_eq!(seen.matches("INVITE sip:").count(), 5, "{seen}");
}

/// An incoming call (its browser offered nothing, it answered our offer) moved to another
/// codec by the caller: SIPp offers PCMU and PCMA, then re-INVITEs with PCMA only; the
/// browser answers `update` `received` and the 200 carries PCMA; the echoed tone comes back
/// as PCMA.
#[test]
fn an_incoming_call_follows_the_callers_codec_change() {
    use common::client::AnsweringClient;
    use common::peers::{Kamailio, KamailioOpts};
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam);
    let client = AnsweringClient::start(
        &gw,
        &kam.ha1("alice"),
        &[
            "--seconds",
            "2",
            "--steps",
            r#"[{"answer-update":15},{"measure":2.5},{"measure":15}]"#,
        ],
    );
    let mut uac = Sipp::uac(
        "uac_codec_change.xml",
        kam.sip_addr(),
        SippOpts {
            pause: Some(Duration::from_secs(4)),
            rtp_echo: true,
            ..SippOpts::call("bob", "alice")
        },
    );
    assert_eq!(
        uac.wait_exit(Duration::from_secs(30)),
        0,
        "{}\n{}",
        uac.errors(),
        uac.messages()
    );
    let result = client.result();
    eprintln!("client result: {result}");
    assert_tone(&result, "before the change");
    let s = steps(&result);
    assert_eq!(s.len(), 3, "{result}");
    assert_eq!(s[0]["answer_formats"][0], "8", "{}", s[0]);
    assert_tone(&s[1], "after the move to PCMA");
    let pts = s[1]["payload_types"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        u(&s[1]["payload_types"], "8") >= 50 && pts.keys().all(|k| k == "8"),
        "PCMA alone expected: {}",
        s[1]
    );
}
