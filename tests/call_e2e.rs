//! Calls end to end with real peers on 127.0.0.1: a WebRTC client (aiortc, speaking sylkRTC-2
//! over the WebSocket) calls through the real gateway binary to SIPp answering with RTP echo,
//! and audio is verified both ways (our 440 Hz tone comes back through SIP and the bridge).

mod common;

use std::time::Duration;

use common::client::{run_sylkrtc_client, AnsweringClient};
use common::peers::{free_udp_range, Sipp, SippOpts};
use common::*;
use serde_json::Value;

/// Runs the aiortc sylkRTC client and returns its events and RESULT line.
fn run_client(args: &[&str]) -> (Vec<Value>, Value) {
    run_sylkrtc_client(args)
}

/// A gateway with its own media port range and `extra_sip` keys in `[sip]`.
fn gateway_with(extra_sip: &str) -> Gateway {
    gateway_with_args(extra_sip, &[])
}

/// [`gateway_with`] plus command-line `args`.
fn gateway_with_args(extra_sip: &str, args: &[&str]) -> Gateway {
    let base = free_udp_range(40);
    Gateway::start(
        &format!(
            "[sip]\n{extra_sip}\n[media]\nrtp_ports = \"{base}-{}\"\n",
            base + 39
        ),
        args,
    )
}

fn gateway_with_media() -> Gateway {
    gateway_with("")
}

/// A gateway sending everything through Kamailio.
fn gateway_via(kam: &common::peers::Kamailio) -> Gateway {
    gateway_with(&format!("outbound_proxy = \"sip:{}\"", kam.sip_addr()))
}

/// Issue 16 problem 4: after a 183 with SDP and then the 200, a sylkRTC-1 client got
/// `progress` and then `accepted` without SDP (v1 has no early-media event), so it never had
/// an answer and the call could not connect. Now `accepted` carries the early answer for v1,
/// the call is established and the echoed tone comes back; v2 keeps its early-media event
/// and an SDP-less `accepted` (call_scenarios.rs).
#[test]
fn v1_client_gets_the_early_answer_in_accepted_and_a_working_call() {
    let gw = gateway_with_media();
    let uas = Sipp::uas(
        "uas_early_media.xml",
        SippOpts {
            rtp_echo: true,
            pause: Some(Duration::from_millis(500)),
            ..SippOpts::default()
        },
    );
    let target = format!("echo@{}", uas.sip_addr());
    let (events, result) = run_client(&[
        "call",
        "--v1",
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
    ]);
    eprintln!("client result: {result}");
    let accepted = events
        .iter()
        .find(|e| e["sylkrtc"] == "session_event" && e["data"]["state"] == "accepted")
        .unwrap_or_else(|| panic!("no v1 accepted event: {events:#?}"));
    assert!(
        accepted["data"]["sdp"]
            .as_str()
            .is_some_and(|sdp| sdp.contains("a=fingerprint:")),
        "v1 accepted carries the answer: {accepted}"
    );
    let states: Vec<&str> = result["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert_eq!(
        states,
        ["progress", "accepted", "established", "terminated"],
        "{events:#?}"
    );
    let frames = result["frames"].as_u64().unwrap();
    assert!(
        frames >= 50,
        "only {frames} audio frames came back: {result}"
    );
}

#[test]
fn outgoing_call_to_sipp_with_rtp_echo() {
    let gw = gateway_with_media();
    let uas = Sipp::echo_uas("uas_echo.xml");
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

/// Waits for baresip's call to end and checks its decoded-audio dump holds a tone of `hz`.
fn assert_baresip_heard(bs: &mut common::peers::Baresip, hz: f64) {
    bs.wait_for_log("terminated", Duration::from_secs(5));
    let dump = std::fs::read_dir(bs.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .expect("baresip's decoded-audio dump");
    let (freq, loud) = wav_frequency(&std::fs::read(&dump).unwrap(), 0.5);
    eprintln!("baresip received {freq:.1} Hz, {loud} loud samples");
    assert!(loud > 8000, "baresip received almost no audio");
    assert!(
        (freq - hz).abs() < 50.0,
        "baresip did not receive our {hz} Hz tone: {freq} Hz"
    );
}

/// Zero-crossing frequency estimate of a 16-bit PCM WAV (first channel), skipping `skip_s`.
fn wav_frequency(bytes: &[u8], skip_s: f64) -> (f64, usize) {
    let rate = u32::from_le_bytes(bytes[24..28].try_into().unwrap()) as f64;
    let channels = u16::from_le_bytes(bytes[22..24].try_into().unwrap()) as usize;
    let data = bytes
        .windows(4)
        .position(|w| w == b"data")
        .map(|p| p + 8)
        .expect("WAV data chunk");
    let samples: Vec<i16> = bytes[data..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .step_by(channels)
        .skip((skip_s * rate) as usize)
        .collect();
    let loud: Vec<i16> = samples
        .iter()
        .copied()
        .filter(|s| s.unsigned_abs() > 200)
        .collect();
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] >= 0) != (w[1] >= 0))
        .count();
    let secs = samples.len() as f64 / rate;
    (crossings as f64 / 2.0 / secs.max(1e-9), loud.len())
}

#[test]
fn incoming_call_without_sdp_is_offered_in_the_200() {
    use common::peers::{Kamailio, KamailioOpts};
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam);
    // The client listens longer than SIPp talks: SIPp hangs up (its scenario ends with BYE).
    let client = AnsweringClient::start(&gw, &kam.ha1("alice"), &["--hz", "660", "--seconds", "8"]);
    // SIPp (bob) sends an INVITE without SDP; it checks our 200 carries the offer, answers in
    // the ACK and plays a 440 Hz tone to the offered address.
    let mut uac = Sipp::uac(
        "uac_late_offer.xml",
        kam.sip_addr(),
        SippOpts {
            pause: Some(Duration::from_secs(4)),
            ..SippOpts::call("bob", "alice")
        },
    );
    let result = client.result();
    let states: Vec<&str> = result["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert_eq!(
        states,
        ["accepted", "established", "terminated"],
        "{result}"
    );
    let freq = result["freq"].as_f64().unwrap();
    assert!(result["frames"].as_u64().unwrap() >= 100, "{result}");
    assert!(
        (400.0..480.0).contains(&freq),
        "SIPp's tone did not arrive: {result}"
    );
    assert_eq!(
        uac.wait_exit(Duration::from_secs(15)),
        0,
        "{}\n{}",
        uac.errors(),
        uac.messages()
    );
}

#[test]
fn incoming_call_from_baresip_through_kamailio() {
    use common::peers::{Baresip, BaresipOpts, Kamailio, KamailioOpts};

    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam);
    // The browser side: registers alice and answers with a 660 Hz tone.
    let client = AnsweringClient::start(&gw, &kam.ha1("alice"), &["--hz", "660", "--seconds", "3"]);
    // The SIP side: baresip (bob) calls alice through Kamailio with a 440 Hz tone and
    // records what it receives.
    let mut bs = Baresip::start(
        &kam,
        BaresipOpts {
            user: "bob".into(),
            wav_audio: true,
            record_audio: true,
            ..BaresipOpts::default()
        },
    );
    bs.wait_for_registration(Duration::from_secs(10));
    bs.command("dial sip:alice@example.test").expect("dial");
    let result = client.result();
    assert_eq!(result["originator"]["uri"], "bob@example.test", "{result}");
    assert_eq!(
        result["offer_has_sendrecv"], true,
        "sylkrtc.js needs a=sendrecv"
    );
    assert_eq!(result["offer_has_end_of_candidates"], true);
    let states: Vec<&str> = result["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert_eq!(
        states,
        ["accepted", "established", "terminated"],
        "{result}"
    );
    // SIP -> browser: baresip's 440 Hz arrived.
    let freq = result["freq"].as_f64().unwrap();
    assert!(result["frames"].as_u64().unwrap() >= 100, "{result}");
    assert!((400.0..480.0).contains(&freq), "{result}");
    // Browser -> SIP: baresip decoded our 660 Hz.
    assert_baresip_heard(&mut bs, 660.0);
}

#[test]
fn outgoing_call_to_baresip_through_kamailio_with_proxy_auth() {
    use common::peers::{Baresip, BaresipOpts, Kamailio, KamailioOpts};
    // Kamailio challenges the INVITE with 407: the gateway answers from alice's HA1.
    let kam = Kamailio::start(KamailioOpts {
        proxy_auth: true,
        ..KamailioOpts::default()
    });
    let gw = gateway_via(&kam);
    let mut bs = Baresip::start(
        &kam,
        BaresipOpts {
            user: "bob".into(),
            // The call negotiates Opus (48 kHz): baresip's aufile source only plays 48 kHz WAVs
            // there, so it sends its built-in sine (ausine, 440 Hz).
            wav_audio: false,
            record_audio: true,
            ..BaresipOpts::default()
        },
    );
    bs.wait_for_registration(Duration::from_secs(10));
    let (events, result) = run_client(&[
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
        "3",
        "--hz",
        "660",
    ]);
    eprintln!("client result: {result}");
    let states: Vec<&str> = result["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert!(
        states.ends_with(&["accepted", "established", "terminated"]),
        "{events:#?}"
    );
    // baresip -> browser: its 440 Hz tone.
    let freq = result["freq"].as_f64().unwrap();
    assert!(result["frames"].as_u64().unwrap() >= 100, "{result}");
    assert!((400.0..480.0).contains(&freq), "{result}");
    // browser -> baresip: our 660 Hz.
    assert_baresip_heard(&mut bs, 660.0);
}

/// An aiortc client (alice) calls bob through Kamailio (which challenges the INVITE with
/// 407); bob is baresip with `mediaenc=srtp-mand`, so it takes only RTP/SAVP with SDES keys
/// (RFC 4568). The gateway runs with `--sip-srtp <mode>`. Audio is checked both ways: the
/// client hears baresip's 440 Hz, baresip decodes our 660 Hz. Returns baresip's log.
fn call_srtp_only_baresip(mode: &str) -> String {
    use common::peers::{Baresip, BaresipOpts, Kamailio, KamailioOpts};
    let kam = Kamailio::start(KamailioOpts {
        proxy_auth: true,
        ..KamailioOpts::default()
    });
    let gw = gateway_with_args(
        &format!("outbound_proxy = \"sip:{}\"", kam.sip_addr()),
        &["--sip-srtp", mode],
    );
    let mut bs = Baresip::start(
        &kam,
        BaresipOpts {
            user: "bob".into(),
            wav_audio: false,
            record_audio: true,
            mediaenc: Some("srtp-mand".into()),
            ..BaresipOpts::default()
        },
    );
    bs.wait_for_registration(Duration::from_secs(10));
    let (events, result) = run_client(&[
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
        "3",
        "--hz",
        "660",
    ]);
    eprintln!("client result: {result}");
    let states: Vec<&str> = result["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert!(
        states.ends_with(&["accepted", "established", "terminated"]),
        "{events:#?}\nbaresip:\n{}",
        bs.log()
    );
    assert!(
        !events
            .iter()
            .any(|e| e["state"] == "terminated" && e["reason"] != "200 Local hangup"),
        "{events:#?}"
    );
    // baresip -> browser: its 440 Hz tone, decrypted from SRTP by the gateway.
    let freq = result["freq"].as_f64().unwrap();
    assert!(result["frames"].as_u64().unwrap() >= 100, "{result}");
    assert!((400.0..480.0).contains(&freq), "{result}");
    // browser -> baresip: our 660 Hz, which baresip could only decode from our SRTP.
    assert_baresip_heard(&mut bs, 660.0);
    bs.log()
}

/// What baresip 1.0 logs when it refuses an offer it cannot take (it answers 488).
const BARESIP_REFUSED: &str = "no common audio codecs - rejected";

#[test]
fn outgoing_call_to_srtp_only_baresip_with_sip_srtp_auto_retries_after_488() {
    let log = call_srtp_only_baresip("auto");
    // baresip refused the plain RTP/AVP offer (with 488 Not Acceptable Here: with
    // mediaenc=srtp-mand its audio stream is RTP/SAVP, so the offered RTP/AVP line matches
    // nothing), then took the RTP/SAVP retry and keyed SRTP from our first crypto line.
    assert_eq!(log.matches(BARESIP_REFUSED).count(), 1, "{log}");
    assert!(
        log.contains("SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)"),
        "{log}"
    );
}

#[test]
fn outgoing_call_to_srtp_only_baresip_with_sip_srtp_mandatory() {
    let log = call_srtp_only_baresip("mandatory");
    // The first INVITE already offered RTP/SAVP: nothing was refused.
    assert!(!log.contains(BARESIP_REFUSED), "{log}");
    assert!(log.contains("SRTP is Enabled"), "{log}");
}

#[test]
fn outgoing_call_to_srtp_only_baresip_with_sip_srtp_off_ends_with_488() {
    use common::peers::{Baresip, BaresipOpts, Kamailio, KamailioOpts};
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_with_args(
        &format!("outbound_proxy = \"sip:{}\"", kam.sip_addr()),
        &["--sip-srtp", "off"],
    );
    let mut bs = Baresip::start(
        &kam,
        BaresipOpts {
            mediaenc: Some("srtp-mand".into()),
            ..BaresipOpts::default()
        },
    );
    bs.wait_for_registration(Duration::from_secs(10));
    let (events, result) = run_client(&[
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
        "1",
    ]);
    // No retry: the plain offer's 488 reaches the browser as the reason.
    assert_eq!(
        result["error"], "not accepted: 488 Not Acceptable Here",
        "{events:#?}"
    );
    assert_eq!(bs.log().matches(BARESIP_REFUSED).count(), 1, "{}", bs.log());
}
