//! Video calls end to end with real peers on 127.0.0.1 (issue 4: audio and video in one
//! session, VP8 and H.264 forwarded untouched, PLI/FIR relayed between the legs).
//!
//! The WebRTC side is the aiortc sylkRTC client (`tests/clients/sylkrtc_peer.py --video`): it
//! sends a 440/660 Hz tone and a moving 320x240 test pattern at 30 fps with its frame counter
//! painted as a barcode (12 bits plus a 4-bit check), and reports the video it decoded (frames,
//! size, counters read, colours), the key frames it sent and received, the PLI/FIR it sent and
//! the ones that reached its video sender, and how many received RTP payloads are
//! byte-identical to payloads it sent. The SIP side is SIPp echoing RTP and RTCP, or baresip
//! with VP8 and fakevideo's red/green/blue bars.
//!
//! Each test holds [`ONE_AT_A_TIME`]: four real-time video calls at once on a 2-core machine
//! would measure the machine, not the gateway.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::client::{parse_client_output, run_sylkrtc_client, AnsweringClient, SYLKRTC_CLIENT};
use common::peers::Sipp;
use common::peers::{free_udp_range, Baresip, BaresipOpts, BaresipVideo, Kamailio, KamailioOpts};
use common::*;
use serde_json::Value;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// A gateway with its own media port range and `extra_sip` keys in `[sip]`.
fn gateway_with(extra_sip: &str) -> Gateway {
    let base = free_udp_range(40);
    Gateway::start(
        &format!(
            "[sip]\n{extra_sip}\n[media]\nrtp_ports = \"{base}-{}\"\n",
            base + 39
        ),
        &[],
    )
}

fn states(result: &Value) -> Vec<&str> {
    result["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect()
}

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// The received audio is the peer's (or our echoed) tone of `hz`.
fn assert_audio(result: &Value, hz: f64) {
    let freq = result["freq"].as_f64().unwrap();
    assert!(u(result, "frames") >= 100, "audio did not flow: {result}");
    assert!((freq - hz).abs() < 40.0, "audio is not {hz} Hz: {result}");
}

/// At least `min` frames of 320x240 video were decoded.
fn assert_decoded(video: &Value, min: u64) {
    assert!(
        u(video, "frames") >= min,
        "fewer than {min} video frames decoded: {video}"
    );
    assert_eq!(
        (u(video, "width"), u(video, "height")),
        (320, 240),
        "{video}"
    );
}

/// Calls SIPp's audio+video RTP echo (`uas_echo_video.xml`) for 5 s with `extra` client
/// arguments; returns the client's RESULT after checking the call went through its states.
fn call_video_echo(extra: &[&str]) -> Value {
    let gw = gateway_with("");
    let uas = Sipp::echo_uas("uas_echo_video.xml");
    let target = format!("echo@{}", uas.sip_addr());
    let mut args = strings(&[
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
        "5",
        "--video",
    ]);
    args.extend(strings(extra));
    let (events, result) = run_sylkrtc_client(&args);
    eprintln!("client result: {result}");
    assert_eq!(
        states(&result),
        [
            "progress",
            "ringing",
            "accepted",
            "established",
            "terminated"
        ],
        "{events:#?}"
    );
    // SIPp's answer had both m-lines with real ports, so the gateway offered both.
    let seen = uas.wait_for_message("BYE sip:", Duration::from_secs(5));
    let invite = &seen[seen.find("INVITE sip:").unwrap()..];
    assert!(
        !invite.contains("m=video 0 "),
        "video not offered to SIP: {seen}"
    );
    result
}

/// What SIPp's echo proves: audio came back; the video we sent came back decodable with its
/// painted counters in order; every RTP payload we received is byte-identical to one we sent
/// (the gateway forwarded it untouched both ways); our key frame requests crossed to the SIP
/// leg, came back in SIPp's RTCP echo and reached our sender as PLI (`requests` of them were
/// sent, one a second).
fn assert_echoed_video(result: &Value, codec: &str, requests: &str) {
    assert_audio(result, 440.0);
    let video = &result["video"];
    assert_eq!(video["codec"], codec, "{video}");
    // 5 s at 30 fps is ~150 frames; a loaded machine still manages half.
    assert_decoded(video, 75);
    // The barcode survived the codec in (nearly) every frame, and counters only go forward.
    let frames = u(video, "frames");
    assert!(u(video, "counted") * 10 >= frames * 9, "{video}");
    assert_eq!(u(video, "counter_regressions"), 0, "{video}");
    assert!(
        u(video, "last_counter") < u(video, "frames_sent"),
        "{video}"
    );
    let received = u(video, "payloads_received");
    assert!(received >= 75, "{video}");
    assert_eq!(
        u(video, "payloads_echoed"),
        received,
        "payloads changed on the way: {video}"
    );
    let sent = u(video, requests);
    assert!(sent >= 3, "{video}");
    // Each request came back as one PLI (the gateway asks the browser with PLI, RFC 4585,
    // whichever the SIP side used); without the round trip it would be 0.
    let back = u(video, "pli_received");
    assert!(back >= 3, "key frame requests did not cross: {video}");
    // And each made our encoder send a key frame (aiortc's VP8 encoder makes none on its own
    // after the first), which came back through the echo too.
    assert!(u(video, "keyframes_sent") > 2, "{video}");
    assert!(u(video, "keyframes_received") > 2, "{video}");
}

#[test]
fn video_call_vp8_to_sipp_echo_with_pli_round_trip() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let result = call_video_echo(&["--video-codec", "VP8", "--pli-every", "1"]);
    assert_echoed_video(&result, "VP8", "pli_sent");
}

#[test]
fn video_call_h264_to_sipp_echo_with_fir_round_trip() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // RFC 5104 FIR from the browser goes to SIP as FIR and comes back from the echo as a key
    // frame request the gateway relays to the browser as PLI.
    let result = call_video_echo(&["--video-codec", "H264", "--fir-every", "1"]);
    assert_echoed_video(&result, "H264", "fir_sent");
    assert_eq!(u(&result["video"], "fir_received"), 0);
}

/// Waits for baresip's call to be up, then `settle` more.
fn wait_established(bs: &mut Baresip, settle: Duration) {
    bs.wait_for_log("Call established", Duration::from_secs(20));
    std::thread::sleep(settle);
}

/// baresip's video counters now (the call must be up).
fn baresip_video(bs: &Baresip) -> BaresipVideo {
    let v = bs
        .video_stats()
        .unwrap_or_else(|| panic!("baresip has no video stream:\n{}", bs.log()));
    eprintln!("baresip video: {v:?}");
    v
}

/// Asks baresip for a snapshot of the next frame it decodes (its `snapshot` module writes
/// `snapshot-recv-*.png` into its run dir) and returns the file.
fn baresip_snapshot(bs: &Baresip) -> PathBuf {
    bs.command("snapshot").expect("snapshot");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = std::fs::read_dir(bs.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with("snapshot-recv") && name.ends_with(".png")
            });
        if let Some(png) = found {
            // written in one go by baresip's thread: give it a moment to finish
            std::thread::sleep(Duration::from_millis(200));
            return png;
        }
        assert!(Instant::now() < deadline, "no snapshot:\n{}", bs.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The painted counter in an image (`sylkrtc_peer.py read-frame`).
fn read_frame(png: &PathBuf) -> Value {
    let out = Command::new("python3")
        .arg(SYLKRTC_CLIENT)
        .arg("read-frame")
        .arg(png)
        .output()
        .expect("python3");
    parse_client_output(&String::from_utf8_lossy(&out.stdout), &out.stderr).1
}

/// The last frame we decoded from baresip shows fakevideo's bars: red, green, blue from left
/// to right (checked on U/V: red has high V, blue high U, green both low).
fn assert_baresip_bars(video: &Value) {
    let thirds = &video["last_frame_yuv_at_thirds"];
    let at = |i: usize, c: usize| {
        thirds[i][c]
            .as_u64()
            .unwrap_or_else(|| panic!("no colours: {video}"))
    };
    let uv = |i: usize| (at(i, 1), at(i, 2));
    let ((ru, rv), (gu, gv), (bu, bv)) = (uv(0), uv(1), uv(2));
    assert!(rv > 200 && ru < 128, "left third is not red: {video}");
    assert!(gu < 100 && gv < 100, "middle third is not green: {video}");
    assert!(bu > 200 && bv < 160, "right third is not blue: {video}");
}

#[test]
fn video_call_vp8_to_baresip_both_ways_with_pli() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_with(&format!("outbound_proxy = \"sip:{}\"", kam.sip_addr()));
    let mut bs = Baresip::start(
        &kam,
        BaresipOpts {
            user: "bob".into(),
            video: true,
            ..BaresipOpts::default()
        },
    );
    bs.wait_for_registration(Duration::from_secs(10));
    let args = strings(&[
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
        "7",
        "--hz",
        "660",
        "--video",
        "--pli-every",
        "1",
    ]);
    let client = std::thread::spawn(move || run_sylkrtc_client(&args));
    wait_established(&mut bs, Duration::from_secs(4));
    let seen = baresip_video(&bs);
    // baresip decodes our 320x240 VP8 (30 fps: ~120 frames in 4 s).
    assert_eq!((seen.width, seen.height), (320, 240), "{seen:?}");
    assert!(seen.displayed_frames >= 50, "{seen:?}");
    assert!(seen.keyframes >= 1, "{seen:?}");
    // ... and what it decoded is our picture: the counter painted into it reads back.
    let snapshot = read_frame(&baresip_snapshot(&bs));
    eprintln!("baresip's snapshot: {snapshot}");
    assert!(
        snapshot["counter"].is_u64(),
        "no counter in what baresip decoded: {snapshot}"
    );
    let (events, result) = client.join().unwrap();
    eprintln!("client result: {result}");
    assert!(
        states(&result).ends_with(&["accepted", "established", "terminated"]),
        "{events:#?}"
    );
    // baresip's 440 Hz sine and its bars at 15 fps (~100 frames in 7 s).
    assert_audio(&result, 440.0);
    let video = &result["video"];
    assert_eq!(video["codec"], "VP8", "{video}");
    assert_decoded(video, 40);
    assert_baresip_bars(video);
    // Our PLIs (one a second) reached baresip, whose encoder answers each with a key frame
    // (on its own it sent one in this time: the first).
    assert!(u(video, "pli_sent") >= 5, "{video}");
    assert!(
        u(video, "keyframes_received") >= 4,
        "baresip did not get our PLIs: {video}"
    );
}

#[test]
fn incoming_video_call_from_baresip_with_loss_and_keyframe_requests() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_with(&format!("outbound_proxy = \"sip:{}\"", kam.sip_addr()));
    // The browser side answers with video, and its network loses one of its video packets
    // every 1.5 s: baresip cannot decode what follows and asks for a key frame each time.
    let client = AnsweringClient::start(
        &gw,
        &kam.ha1("alice"),
        &[
            "--seconds",
            "7",
            "--hz",
            "660",
            "--video",
            "--lose-video-every",
            "1.5",
        ],
    );
    let mut bs = Baresip::start(
        &kam,
        BaresipOpts {
            user: "bob".into(),
            video: true,
            ..BaresipOpts::default()
        },
    );
    bs.wait_for_registration(Duration::from_secs(10));
    bs.command("dial sip:alice@example.test").expect("dial");
    wait_established(&mut bs, Duration::from_secs(5));
    let seen = baresip_video(&bs);
    assert_eq!((seen.width, seen.height), (320, 240), "{seen:?}");
    assert!(seen.displayed_frames >= 50, "{seen:?}");
    assert!(
        seen.picture_updates >= 1,
        "baresip never missed a packet: {seen:?}"
    );
    // baresip's requests (RFC 2032 FIR: our SDP has no rtcp-fb) crossed to the browser,
    // which sent fresh key frames that baresip decoded.
    assert!(
        seen.keyframes >= 2,
        "baresip got no key frame after asking: {seen:?}"
    );
    let result = client.result();
    assert_eq!(
        states(&result),
        ["accepted", "established", "terminated"],
        "{result}"
    );
    assert_eq!(result["originator"]["uri"], "bob@example.test", "{result}");
    assert_audio(&result, 440.0);
    let video = &result["video"];
    assert!(u(video, "rtp_dropped") >= 3, "{video}");
    assert_decoded(video, 40);
    assert_baresip_bars(video);
    assert!(
        u(video, "pli_received") >= 1,
        "baresip's key frame requests did not reach the browser: {video}"
    );
    assert!(u(video, "keyframes_sent") >= 2, "{video}");
}

/// A SIP re-INVITE moves the video of a call from VP8 to H.264 (RFC 3264 section 8.3.2, no
/// transcoding): the browser answers `update` `received` with H.264, the 200 to SIPp takes
/// it, and our video comes back through SIPp's echo as H.264, decoded; audio goes on.
#[test]
fn a_sip_reinvite_moves_the_video_from_vp8_to_h264() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let gw = gateway_with("");
    let uas = Sipp::echo_uas("uas_video_codec_change.xml");
    let target = format!("echo@{}", uas.sip_addr());
    let args = strings(&[
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
        // aiortc offers VP8 and H.264: SIPp takes VP8 first, then moves to H.264.
        "--video",
        "--steps",
        r#"[{"answer-update":15},{"measure":4}]"#,
    ]);
    let (events, result) = run_sylkrtc_client(&args);
    eprintln!("client result: {result}");
    let steps = result["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "{events:#?}");
    let after = &steps[1];
    assert_eq!(after["video_codec"], "H264", "{after}");
    let h264 = after["video_payload_types"]["99"].as_u64().unwrap_or(0);
    assert!(h264 >= 50, "H.264 did not come back: {after}");
    assert!(u(after, "video_frames") >= 40, "no decoded H.264: {after}");
    assert!(u(after, "frames") >= 100, "audio stopped: {after}");
    let seen = uas.wait_for_message("BYE sip:", Duration::from_secs(5));
    assert!(seen.contains("RTP/AVP 99"), "{seen}");
}
