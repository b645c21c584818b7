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
