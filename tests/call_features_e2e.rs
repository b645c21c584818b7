//! Call features end to end with real peers on 127.0.0.1: DTMF by SIP INFO and custom
//! headers both ways (SIPp), reliable provisional responses (a SIPp UAS requiring 100rel),
//! blind transfer by REFER both ways (SIPp), re-INVITE glare (SIPp), and forking through
//! Kamailio to two registered baresips.

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

fn call_args<'a>(gw: &'a str, target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "call",
        "--ws",
        gw,
        "--account",
        "alice@example.test",
        "--ha1",
        HA1,
        "--to",
        target,
    ];
    v.extend_from_slice(extra);
    v
}

fn states(result: &Value) -> Vec<&str> {
    result["states"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
        .unwrap_or_default()
}

#[test]
fn dtmf_by_info_and_headers_both_ways_with_sipp() {
    let gw = gateway_with_media();
    let uas = Sipp::uas(
        "uas_dtmf_headers.xml",
        SippOpts {
            rtp_echo: true,
            calls: Some(1),
            ..SippOpts::default()
        },
    );
    let target = format!("dtmf@{}", uas.sip_addr());
    let ws = gw.ws_url();
    let (events, result) = run_sylkrtc_client(&call_args(
        &ws,
        &target,
        &[
            "--seconds",
            "1",
            "--header",
            "X-Sylk-Test: ping",
            "--prefix",
            "X-Sylk",
            "--steps",
            r#"[{"wait":"dtmf","timeout":10},{"dtmf":"7#"},{"sleep":2}]"#,
        ],
    ));
    eprintln!("client result: {result}");
    // The 200's X-Sylk-Reply reached the browser in `accepted`.
    assert_eq!(
        result["accepted_headers"]["X-Sylk-Reply"], "pong",
        "{events:#?}"
    );
    // SIPp's key 5 (INFO) reached the browser as a `dtmf` event.
    let pressed = &result["steps"][0]["event"];
    assert_eq!(pressed["digit"], "5", "{result}");
    assert_eq!(pressed["duration"], 160, "{result}");
    assert_eq!(pressed["method"], "info", "{result}");
    // Our keys reached SIPp as two INFOs in order (its scenario checks them) and the call
    // ended normally.
    let seen = uas.wait_for_sequence(
        &["Signal=7", "Signal=#", "BYE sip:"],
        Duration::from_secs(10),
    );
    assert!(seen.contains("X-Sylk-Test: ping"), "{seen}");
    assert!(states(&result).ends_with(&["terminated"]), "{result}");
}

#[test]
fn reliable_early_media_from_a_sipp_uas_requiring_100rel_is_pracked() {
    let gw = gateway_with_media();
    let uas = Sipp::uas(
        "uas_prack.xml",
        SippOpts {
            rtp_echo: true,
            calls: Some(1),
            pause: Some(Duration::from_secs(2)),
            ..SippOpts::default()
        },
    );
    let target = format!("prack@{}", uas.sip_addr());
    let ws = gw.ws_url();
    let (events, result) = run_sylkrtc_client(&call_args(&ws, &target, &["--seconds", "3"]));
    eprintln!("client result: {result}");
    // DTLS may come up on the early media, before the 200.
    let st = states(&result);
    assert_eq!(
        st[..3],
        ["progress", "proceeding", "early-media"],
        "{events:#?}"
    );
    assert!(
        st.contains(&"accepted") && st.contains(&"established"),
        "{events:#?}"
    );
    // The early answer set the media up: our tone came back through SIPp's echo.
    let freq = result["freq"].as_f64().unwrap_or(0.0);
    assert!(
        result["frames"].as_u64().unwrap_or(0) >= 100 && (400.0..480.0).contains(&freq),
        "{result}"
    );
    let seen = uas.wait_for_sequence(
        &["PRACK sip:", "RAck: 1 1 INVITE", "BYE sip:"],
        Duration::from_secs(5),
    );
    assert_eq!(seen.matches("PRACK sip:").count(), 1, "one PRACK: {seen}");
}

#[test]
fn blind_transfer_by_refer_to_a_sipp_transferee() {
    let gw = gateway_with_media();
    let uas = Sipp::uas(
        "uas_refer.xml",
        SippOpts {
            rtp_echo: true,
            calls: Some(1),
            ..SippOpts::default()
        },
    );
    let target = format!("transferee@{}", uas.sip_addr());
    let ws = gw.ws_url();
    let (events, result) = run_sylkrtc_client(&call_args(
        &ws,
        &target,
        &[
            "--seconds",
            "1",
            "--steps",
            r#"[{"transfer":"carol@example.test"}]"#,
        ],
    ));
    eprintln!("client result: {result}");
    // 202 (trying), NOTIFY 100 (trying), NOTIFY 200 (accepted), then our BYE.
    let step = &result["steps"][0];
    assert_eq!(
        step["states"],
        serde_json::json!([
            "trying",
            "trying",
            "accepted",
            "terminated:200 Call transferred"
        ]),
        "{events:#?}"
    );
    let seen = uas.wait_for_sequence(
        &[
            "REFER sip:",
            "Refer-To: <sip:carol@example.test>",
            "BYE sip:",
        ],
        Duration::from_secs(10),
    );
    assert!(
        seen.contains("Referred-By: <sip:alice@example.test>"),
        "{seen}"
    );
}

/// The messages of a SIPp `messages.log` with their time (seconds of the day) and whether
/// SIPp sent them.
fn timed_messages(log: &str) -> Vec<(f64, bool, &str)> {
    log.split("----------------------------------------------- ")
        .filter_map(|block| {
            let (stamp, rest) = block.split_once('\n')?;
            let time = stamp.trim().split(' ').nth(1)?;
            let mut hms = time.split(':').map(|v| v.parse::<f64>().ok());
            let secs = hms.next()?? * 3600.0 + hms.next()?? * 60.0 + hms.next()??;
            let sent = rest.trim_start().starts_with("UDP message sent");
            let text = rest
                .split_once("\n\n")
                .map_or(rest, |(_, m)| m)
                .trim_start();
            Some((secs, sent, text))
        })
        .collect()
}

#[test]
fn glare_with_a_sipp_uas_both_rounds_of_rfc_3261_section_14_1() {
    let gw = gateway_with_media();
    let mut uas = Sipp::uas(
        "uas_glare.xml",
        SippOpts {
            rtp_echo: true,
            calls: Some(1),
            ..SippOpts::default()
        },
    );
    let target = format!("glare@{}", uas.sip_addr());
    let ws = gw.ws_url();
    let (events, result) = run_sylkrtc_client(&call_args(
        &ws,
        &target,
        &[
            "--seconds",
            "1",
            "--auto-answer-updates",
            "--steps",
            r#"[{"update":"hold"},{"update":"unhold"},{"sleep":2}]"#,
        ],
    ));
    eprintln!("client result: {result}");
    assert_eq!(
        uas.wait_exit(Duration::from_secs(15)),
        0,
        "{}",
        uas.errors()
    );
    // Round 1: our offer went again after the back-off and was accepted.
    let s = &result["steps"];
    assert_eq!(s[0]["state"], "accepted", "{events:#?}");
    assert_eq!(s[0]["answer"][0]["direction"], "recvonly", "{}", s[0]);
    // Round 2: SIPp's retry came first; our offer was given up and the browser answered
    // SIPp's.
    assert_eq!(s[1]["state"], "failed", "{}", s[1]);
    assert_eq!(s[1]["reason"], "491 Request Pending", "{}", s[1]);
    assert_eq!(result["updates_answered"], 1, "{result}");
    // Our retry came 2.1-4 s after SIPp's 491 (we own the Call-ID).
    let log = uas.messages();
    let msgs = timed_messages(&log);
    let refused = msgs
        .iter()
        .find(|(_, sent, m)| *sent && m.starts_with("SIP/2.0 491"))
        .expect("SIPp's 491")
        .0;
    let invites: Vec<f64> = msgs
        .iter()
        .filter(|(_, sent, m)| !*sent && m.starts_with("INVITE "))
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(invites.len(), 4, "initial, round 1 twice, round 2: {log}");
    let backoff = invites[2] - refused;
    eprintln!("our back-off: {backoff:.2} s");
    assert!((2.05..4.3).contains(&backoff), "back-off {backoff} s");
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
fn forking_through_kamailio_early_media_from_one_baresip_answer_from_the_other() {
    use common::peers::{Baresip, BaresipOpts, Kamailio, KamailioOpts};
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam);
    // bob registered twice: the first sends early media (330 Hz) and rings, the second
    // rings (180 without SDP) until it is told to accept, then sends 880 Hz.
    let mut early = Baresip::start(
        &kam,
        BaresipOpts {
            answermode: "early",
            sine_hz: 330,
            ..BaresipOpts::default()
        },
    );
    let mut answering = Baresip::start(
        &kam,
        BaresipOpts {
            answermode: "manual",
            sine_hz: 880,
            ..BaresipOpts::default()
        },
    );
    early.wait_for_registration(Duration::from_secs(10));
    answering.wait_for_registration(Duration::from_secs(10));
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
        "1",
        "--steps",
        r#"[{"measure":3}]"#,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let client = std::thread::spawn(move || run_sylkrtc_client(&args));
    // (baresip in early mode logs no "Incoming call", only the media it receives)
    early.wait_for_log("incoming rtp for 'audio'", Duration::from_secs(10));
    answering.wait_for_log("Incoming call", Duration::from_secs(10));
    // Some early media from the first fork before the second answers.
    std::thread::sleep(Duration::from_millis(1500));
    answering.command("accept").expect("accept");
    let (events, result) = client.join().unwrap();
    eprintln!("client result: {result}");
    let st = states(&result);
    assert!(st.contains(&"early-media"), "{events:#?}");
    assert!(
        st.contains(&"accepted") && st.contains(&"established"),
        "{events:#?}"
    );
    // After the answer the browser hears the answering fork, not the early one.
    let after = &result["steps"][0];
    let freq = after["freq"].as_f64().unwrap_or(0.0);
    assert!(
        after["frames"].as_u64().unwrap_or(0) >= 100 && (800.0..960.0).contains(&freq),
        "{result}"
    );
    answering.wait_for_log("Call established", Duration::from_secs(5));
    // Our audio reached the early fork during early media (the wait above) and Kamailio
    // cancelled it once the other answered.
    early.wait_for_log("session closed", Duration::from_secs(5));
    assert!(!early.log().contains("Call established"), "{}", early.log());
}

#[test]
fn incoming_refer_is_followed_by_the_browser_with_notifies_to_the_transferor() {
    use common::client::AnsweringClient;
    use common::peers::{Kamailio, KamailioOpts};
    // The gateway answers the REFER 202 and then sends its first NOTIFY (RFC 3515 section
    // 2.4.4); two Kamailio workers may forward them in the other order, and SIPp cannot
    // take a response while it is about to send (its scenario allows either order only
    // while it waits). One worker keeps the gateway's order.
    let kam = Kamailio::start(KamailioOpts {
        udp_workers: Some(1),
        ..KamailioOpts::default()
    });
    let gw = gateway_via(&kam);
    // carol: the transfer target, echoing our audio.
    let carol = Sipp::uas(
        "uas_echo.xml",
        SippOpts {
            rtp_echo: true,
            calls: Some(1),
            ..SippOpts::default()
        },
    );
    // The browser follows the transfer-request with a new call naming the first in `refer`.
    let client = AnsweringClient::start(
        &gw,
        &kam.ha1("alice"),
        &["--seconds", "1", "--steps", r#"[{"follow-transfer":2}]"#],
    );
    let mut transferor = Sipp::uac(
        "uac_refer.xml",
        kam.sip_addr(),
        SippOpts {
            pause: Some(Duration::from_secs(1)),
            keys: vec![("target".into(), carol.sip_addr().to_string())],
            ..SippOpts::call("bob", "alice")
        },
    );
    assert_eq!(
        transferor.wait_exit(Duration::from_secs(30)),
        0,
        "{}\n{}",
        transferor.errors(),
        transferor.messages()
    );
    let result = client.result();
    eprintln!("client result: {result}");
    let step = &result["steps"][0];
    assert_eq!(
        step["followed"],
        format!("carol@{}", carol.sip_addr()),
        "{result}"
    );
    assert_eq!(step["referred_by"], "bob@example.test", "{result}");
    assert_eq!(step["state"], "accepted", "{result}");
    // carol echoed our tone on the new call.
    let freq = step["freq"].as_f64().unwrap_or(0.0);
    assert!(
        step["frames"].as_u64().unwrap_or(0) >= 50 && (400.0..480.0).contains(&freq),
        "{result}"
    );
    // The transferor hung up once the NOTIFY said 200.
    assert!(step["original_terminated"].is_string(), "{result}");
    let messages = transferor.messages();
    assert!(messages.contains("SIP/2.0 100 Trying"), "{messages}");
    // The last NOTIFY ended the subscription with carol's 200 as its sipfrag.
    let last = messages
        .split("Subscription-State: terminated")
        .nth(1)
        .expect("a final NOTIFY");
    let body = last
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.is_empty())
        .find(|l| !l.is_empty());
    assert_eq!(body, Some("SIP/2.0 200 OK"), "{last}");
    // In-dialog requests carry no credentials nobody asked for.
    assert!(!messages.contains("Authorization:"), "{messages}");
    let seen = carol.wait_for_message("Referred-By:", Duration::from_secs(5));
    assert!(
        seen.contains("Referred-By: <sip:bob@example.test>"),
        "{seen}"
    );
}

#[test]
fn push_token_reaches_kamailio_in_the_register_contact() {
    use common::client::AnsweringClient;
    use common::peers::{Kamailio, KamailioOpts};
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam);
    let mut client = AnsweringClient::start(
        &gw,
        &kam.ha1("alice"),
        &[
            "--device-token",
            r#"{"token":"tok-e2e-123","platform":"ios","app":"com.example.sylk","silent":true}"#,
        ],
    );
    // Kamailio lists alice's binding, RFC 8599 parameters included, to a query REGISTER.
    let mut query = Sipp::uac(
        "register_query.xml",
        kam.sip_addr(),
        SippOpts {
            service: Some("alice".into()),
            auth: Some(("alice".into(), common::peers::password("alice").into())),
            ..SippOpts::default()
        },
    );
    let code = query.wait_exit(Duration::from_secs(10));
    client.kill();
    assert_eq!(code, 0, "{}\n{}", query.errors(), query.messages());
}
