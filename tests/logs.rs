//! The gateway's log lines as a log shipper sees them (`log.format = "json"`), with real
//! peers: a browser (aiortc) registered through Kamailio with digest answers a call from
//! SIPp, and the call can be followed from the WebSocket to SIP by the stable keys `conn`,
//! `account`, `call` and `sip_call_id`. At the most verbose level, with every WebSocket frame
//! traced, neither the HA1 nor any Authorization header (which carries a digest of it)
//! reaches the log.

mod common;

use std::time::Duration;

use common::client::AnsweringClient;
use common::peers::{free_udp_range, Kamailio, KamailioOpts, Sipp, SippOpts};
use common::*;
use serde_json::{json, Value};

fn gateway(kam: &Kamailio, level: &str) -> Gateway {
    let base = free_udp_range(40);
    Gateway::start(
        &format!(
            "[sip]\noutbound_proxy = \"sip:{}\"\n[media]\nrtp_ports = \"{base}-{}\"\n\
             [log]\nlevel = \"{level}\"\nformat = \"json\"\ntrace_websocket = true\n",
            kam.sip_addr(),
            base + 39
        ),
        &[],
    )
}

/// Every stderr line, each of which must be one JSON object with the four base fields.
fn json_lines(gw: &Gateway) -> Vec<Value> {
    gw.log_lines()
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            for field in ["ts", "level", "target", "msg"] {
                assert!(v[field].is_string(), "no {field}: {l}");
            }
            v
        })
        .collect()
}

/// No secret in any line: the HA1, an Authorization/Proxy-Authorization header or a digest
/// `response=` parameter.
fn assert_no_secrets(gw: &Gateway, ha1: &str) {
    let lines = gw.log_lines();
    assert!(lines.len() > 10, "too few lines to mean anything");
    for l in &lines {
        let lower = l.to_ascii_lowercase();
        assert!(!l.contains(ha1), "the HA1 leaked: {l}");
        assert!(
            !lower.contains("authorization:"),
            "an Authorization header: {l}"
        );
        assert!(!lower.contains("response=\\\""), "a digest response: {l}");
    }
}

#[test]
fn a_call_is_followed_by_its_keys_from_websocket_to_sip() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway(&kam, "debug");
    let ha1 = kam.ha1("alice");
    let client = AnsweringClient::start(&gw, &ha1, &["--seconds", "8"]);
    let mut uac = Sipp::uac(
        "uac_late_offer.xml",
        kam.sip_addr(),
        SippOpts {
            pause: Some(Duration::from_secs(2)),
            ..SippOpts::call("bob", "alice")
        },
    );
    let result = client.result();
    assert_eq!(
        uac.wait_exit(Duration::from_secs(15)),
        0,
        "{}",
        uac.errors()
    );
    assert!(result["states"]
        .as_array()
        .unwrap()
        .contains(&json!("established")));
    gw.wait_for_log("ended: 200 BYE received", Duration::from_secs(5));

    let lines = json_lines(&gw);
    let find = |needle: &str| {
        lines
            .iter()
            .find(|l| l["msg"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}: {lines:#?}"))
            .clone()
    };
    let incoming = find("incoming from");
    let (conn, call, sip_call_id) = (
        incoming["conn"].as_str().expect("conn").to_owned(),
        incoming["call"].as_str().expect("call").to_owned(),
        incoming["sip_call_id"]
            .as_str()
            .expect("sip_call_id")
            .to_owned(),
    );
    assert_eq!(incoming["account"], "alice@example.test");
    // The same keys on every line of the call, from the WebSocket's opening to the end.
    assert!(
        lines
            .iter()
            .any(|l| l["conn"] == conn.as_str()
                && l["msg"].as_str().unwrap().contains("websocket open")),
        "the connection's own lines carry conn={conn}"
    );
    for needle in ["answered", "established after", "ended: 200 BYE received"] {
        let l = find(needle);
        assert_eq!(
            (&l["conn"], &l["account"], &l["call"], &l["sip_call_id"]),
            (
                &json!(conn),
                &json!("alice@example.test"),
                &json!(call),
                &json!(sip_call_id)
            ),
            "{l}"
        );
    }
    assert_no_secrets(&gw, &ha1);
}

#[test]
fn nothing_secret_at_trace_level() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway(&kam, "trace");
    let ha1 = kam.ha1("alice");
    let mut ws = connect_v2(&gw);
    let aor = "alice@example.test";
    let add = json!({"sylkrtc":"account-add","transaction":"a","account":aor,"password":ha1});
    assert_eq!(call(&mut ws, add)["sylkrtc"], "ack");
    let reg = json!({"sylkrtc":"account-register","transaction":"r","account":aor});
    assert_eq!(call(&mut ws, reg)["sylkrtc"], "ack");
    // registering, then registered: the REGISTER was challenged and answered with digest.
    assert_eq!(recv_json(&mut ws)["state"], "registering");
    assert_eq!(recv_json(&mut ws)["state"], "registered");
    let remove = json!({"sylkrtc":"account-remove","transaction":"x","account":aor});
    assert_eq!(call(&mut ws, remove)["sylkrtc"], "ack");
    drop(ws);
    gw.wait_for_log("connection from", Duration::from_secs(5));
    // The frames were traced (with the HA1 redacted), so the test saw what it guards.
    let traced = json_lines(&gw)
        .into_iter()
        .any(|l| l["msg"].as_str().unwrap().contains("account-add"));
    assert!(traced, "trace_websocket logged the frames");
    assert_no_secrets(&gw, &ha1);
}
