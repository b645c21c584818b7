//! The operational endpoints of the real binary, scraped with real values: `/health`,
//! `/ready`, `/metrics` on the separate metrics listener (and not on the public port), a
//! real call from an aiortc WebRTC client through the gateway to SIPp's RTP echo moving
//! the call, media, SIP and connection numbers, every exposition accepted by Prometheus's
//! own linter (`promtool check metrics`), and the sample Grafana dashboard asking only for
//! metrics the gateway exports.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::client::run_sylkrtc_client;
use common::peers::{free_udp_range, require, Sipp};
use common::*;

fn scrape(addr: SocketAddr) -> String {
    let (status, head, body) = http(addr, "GET", "/metrics");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    body
}

/// `promtool check metrics` (Debian's prometheus package): the exposition parses and
/// follows the naming conventions (it exits non-zero on either).
fn promtool_check(text: &str) {
    require("promtool");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Scrapes until `name{labels}` satisfies `ok` (panics with the last scrape after 20 s).
fn scrape_until(addr: SocketAddr, name: &str, labels: &str, ok: impl Fn(f64) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(addr);
        if metric(&text, name, labels).is_some_and(&ok) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{{{labels}}} never got there:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn value(text: &str, name: &str, labels: &str) -> f64 {
    metric(text, name, labels).unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{text}"))
}

#[test]
fn endpoints_answer_and_a_real_call_moves_the_numbers() {
    let base = free_udp_range(40);
    let gw = Gateway::start(
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:0\"\n[media]\nrtp_ports = \"{base}-{}\"\n",
            base + 39
        ),
        &[],
    );
    let m = gw.metrics.expect("metrics listener");
    // Liveness and readiness on both listeners; metrics and the drain switch only on the
    // metrics listener.
    assert_eq!(http(m, "GET", "/health"), http(gw.ws, "GET", "/health"));
    let (status, _, body) = http(m, "GET", "/ready");
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    assert_eq!(http(gw.ws, "GET", "/ready").0, 200);
    assert_eq!(http(gw.ws, "GET", "/metrics").0, 404);
    assert_eq!(http(gw.ws, "POST", "/admin/drain").0, 404);
    assert_eq!(http(m, "GET", "/admin/drain").0, 405);
    assert_eq!(http(m, "GET", "/webrtcgateway/ws").0, 404);
    let (status, head, body) = http(m, "HEAD", "/metrics");
    assert_eq!(status, 200);
    assert!(
        body.is_empty() && head.contains("Content-Length: "),
        "{head}"
    );

    let before = scrape(m);
    promtool_check(&before);
    for (name, labels) in [
        ("sylk_calls_started_total", "direction=\"outgoing\""),
        ("sylk_clients", ""),
        (
            "sylk_media_packets_total",
            "leg=\"webrtc\",direction=\"in\"",
        ),
        ("sylk_srtp_auth_failures_total", "leg=\"sip\""),
        ("sylk_draining", ""),
    ] {
        assert_eq!(
            metric(&before, name, labels),
            Some(0.0),
            "{name}{{{labels}}}"
        );
    }
    assert!(value(&before, "sylk_reactor_iteration_seconds_count", "") > 0.0);
    assert!(value(&before, "process_resident_memory_bytes", "") > 1e6);
    assert_eq!(
        value(
            &before,
            "sylk_build_info",
            &format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))
        ),
        1.0
    );

    // A real call: aiortc -> gateway -> SIPp answering with RTP echo, for 4 s.
    let uas = Sipp::echo_uas("uas_echo.xml");
    let target = format!("echo@{}", uas.sip_addr());
    let ws_url = gw.ws_url();
    let client = std::thread::spawn(move || {
        run_sylkrtc_client(&[
            "call",
            "--ws",
            &ws_url,
            "--account",
            "alice@example.test",
            "--ha1",
            HA1,
            "--to",
            &target,
            "--seconds",
            "4",
        ])
    });
    // While it is up.
    let during = scrape_until(
        m,
        "sylk_calls",
        "direction=\"outgoing\",state=\"established\"",
        |v| v == 1.0,
    );
    assert_eq!(
        value(
            &during,
            "sylk_websocket_connections",
            "dialect=\"sylkRTC-2\",transport=\"ws\""
        ),
        1.0
    );
    assert_eq!(value(&during, "sylk_clients", ""), 1.0);
    assert_eq!(value(&during, "sylk_accounts", ""), 1.0);
    assert_eq!(
        value(
            &during,
            "sylk_calls_answered_total",
            "direction=\"outgoing\""
        ),
        1.0
    );
    let (events, result) = client.join().unwrap();
    assert!(
        result["frames"].as_u64().unwrap_or(0) >= 100,
        "{result} {events:?}"
    );

    // Afterwards: the call ended by our hang-up, its numbers stay.
    let after = scrape_until(
        m,
        "sylk_calls_ended_total",
        "direction=\"outgoing\",cause=\"local_hangup\",answered=\"true\"",
        |v| v == 1.0,
    );
    let after = if value(&after, "sylk_clients", "") == 0.0 {
        after
    } else {
        scrape_until(m, "sylk_clients", "", |v| v == 0.0)
    };
    promtool_check(&after);
    let v = |name: &str, labels: &str| value(&after, name, labels);
    assert_eq!(v("sylk_calls_started_total", "direction=\"outgoing\""), 1.0);
    assert_eq!(
        v("sylk_calls", "direction=\"outgoing\",state=\"established\""),
        0.0
    );
    assert_eq!(v("sylk_accounts", ""), 0.0);
    assert_eq!(
        v(
            "sylk_websocket_connections_opened_total",
            "dialect=\"sylkRTC-2\",transport=\"ws\""
        ),
        1.0
    );
    assert_eq!(
        v("sylk_call_setup_seconds_count", "direction=\"outgoing\""),
        1.0
    );
    assert_eq!(
        v(
            "sylk_call_media_setup_seconds_count",
            "direction=\"outgoing\""
        ),
        1.0
    );
    assert_eq!(v("sylk_call_post_dial_delay_seconds_count", ""), 1.0);
    let setup = v("sylk_call_setup_seconds_sum", "direction=\"outgoing\"");
    assert!(setup > 0.0 && setup < 20.0, "setup took {setup} s");
    // 4 s of 20 ms audio each way: ~200 packets per leg and direction.
    for leg in ["webrtc", "sip"] {
        for direction in ["in", "out"] {
            let labels = format!("leg=\"{leg}\",direction=\"{direction}\"");
            let packets = v("sylk_media_packets_total", &labels);
            assert!(packets >= 100.0, "{labels}: {packets} packets");
            assert!(v("sylk_media_bytes_total", &labels) > packets * 20.0);
        }
    }
    assert_eq!(v("sylk_srtp_auth_failures_total", "leg=\"webrtc\""), 0.0);
    assert_eq!(v("sylk_ice_failures_total", ""), 0.0);
    // The SIP side: our INVITE answered 200, our BYE answered 200.
    for method in ["INVITE", "BYE"] {
        assert_eq!(
            v(
                "sylk_sip_transactions_total",
                &format!("role=\"client\",method=\"{method}\",code=\"200\"")
            ),
            1.0,
            "{method}"
        );
    }
    assert!(
        v("sylk_reactor_iteration_seconds_count", "")
            > value(&before, "sylk_reactor_iteration_seconds_count", "")
    );
    assert!(v("sylk_reactor_longest_iteration_seconds", "") > 0.0);
    assert!(v("sylk_endpoint_requests_total", "endpoint=\"metrics\"") >= 3.0);
    // Peer-caused drops by kind (engine::drops): a junk SIP datagram is counted.
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    junk.send_to(b"\x00\x01 not SIP at all\r\n\r\n", gw.sip)
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while value(
        &scrape(m),
        "sylk_dropped_inputs_total",
        "kind=\"sip_malformed\"",
    ) < v("sylk_dropped_inputs_total", "kind=\"sip_malformed\"") + 1.0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the junk datagram was not counted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Counters never go back.
    for (name, labels) in [
        ("sylk_media_packets_total", "leg=\"sip\",direction=\"in\""),
        (
            "sylk_sip_transactions_total",
            "role=\"client\",method=\"INVITE\",code=\"200\"",
        ),
    ] {
        assert!(value(&scrape(m), name, labels) >= v(name, labels));
    }

    // The sample dashboard asks only for what is exported.
    let exported: BTreeSet<String> = after
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect();
    for name in dashboard_metrics() {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        assert!(
            exported.contains(family),
            "the dashboard uses {name}, which /metrics does not export"
        );
    }

    // The drain switch: readiness turns 503 at once, and with nothing in progress the
    // process exits 0 right away.
    let mut gw = gw;
    let (status, _, body) = http(m, "POST", "/admin/drain");
    assert_eq!((status, body.as_str()), (202, "draining\n"));
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("exits after the drain");
    assert!(status.success(), "{status:?}");
}

/// Every metric name the sample Grafana dashboard's queries use.
fn dashboard_metrics() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/grafana/sylk-gateway.json"
    ))
    .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut names = BTreeSet::new();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            exprs.push(t["expr"].as_str().unwrap().to_owned());
        }
    }
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            exprs.push(q.to_owned());
        }
    }
    assert!(exprs.len() >= 10, "the dashboard has its queries");
    for expr in exprs {
        let mut word = String::new();
        for c in expr.chars().chain([' ']) {
            if c.is_ascii_alphanumeric() || c == '_' {
                word.push(c);
            } else {
                if word.starts_with("sylk_") || word.starts_with("process_") {
                    names.insert(std::mem::take(&mut word));
                }
                word.clear();
            }
        }
    }
    names
}
