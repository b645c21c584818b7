//! The demo page (src/web/) end to end in a real browser: headless Debian Chromium, driven by
//! `tests/browser/demo.mjs` (playwright-core) with fake microphone and camera, loads the page
//! from the gateway binary, registers against Kamailio (the gateway's outbound proxy), calls
//! SIPp (RTP echo) and baresip, answers a call from SIPp, hangs up from either side, and shows
//! a message when the WebSocket drops, two pages chat over MSRP through Kamailio's relay, and
//! the contacts panel adds, renames and deletes a contact whose presence dot follows another
//! account's PUBLISHes through Kamailio's presence server while the page publishes its own.
//! Audio both ways is checked through the page's getStats.
//!
//! Needs `/usr/bin/chromium` and `tests/browser/node_modules` (both installed by
//! `tests/run-all.sh`); without them the tests fail with that hint. Everything on 127.0.0.1.
//! Screenshots go to `$CARGO_TARGET_TMPDIR/browser-e2e/` and their paths are printed.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::peers::{
    free_udp_range, password, Baresip, BaresipOpts, Kamailio, KamailioMsrp, KamailioOpts, Sipp,
    SippOpts,
};
use common::*;
use serde_json::Value;

/// One browser at a time: two cores are shared with the gateway, SIP peers and media.
static BROWSER: Mutex<()> = Mutex::new(());

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Fails (never skips) when the browser or the node modules are missing.
fn require_browser() {
    let hint = "run tests/run-all.sh (installs Debian chromium and `npm ci` in tests/browser)";
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: {hint}"
    );
    assert!(
        browser_dir()
            .join("node_modules/playwright-core/package.json")
            .is_file(),
        "tests/browser/node_modules is missing: {hint}"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is missing: {hint}"
    );
}

/// Where screenshots are kept (not removed after the test, to be looked at).
fn out_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("browser-e2e")
        .join(test);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `demo.mjs`: its stdout lines arrive through a channel so every wait is bounded.
struct Driver {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Driver {
    fn start(scenario: &str, args: &[(&str, &str)]) -> Driver {
        require_browser();
        let mut cmd = Command::new("node");
        cmd.arg(browser_dir().join("demo.mjs")).arg(scenario);
        for (k, v) in args {
            // An empty value is a flag (`--video`).
            cmd.arg(format!("--{k}"));
            if !v.is_empty() {
                cmd.arg(v);
            }
        }
        let mut child = cmd
            .current_dir(browser_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node");
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
            s
        });
        Driver {
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Waits for a stdout line starting with `prefix`; fails with the output so far.
    fn wait_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    eprintln!("[browser] {}", truncate(&line));
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                    if line.starts_with("RESULT ") {
                        self.fail(&format!("ended before {prefix:?}"));
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.fail(&format!("no {prefix:?} in time")),
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail(&format!("exited before {prefix:?}"))
                }
            }
        }
    }

    fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!("browser driver {what}\nstdout:\n{}", self.seen.join("\n"));
    }

    /// The RESULT JSON; asserts the driver exited 0.
    fn result(mut self, timeout: Duration) -> Value {
        let line = self.wait_line("RESULT ", timeout);
        let result: Value = serde_json::from_str(&line["RESULT ".len()..]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("browser driver did not exit after its RESULT");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        assert!(
            status.success(),
            "browser driver failed ({status}): {:#}\nstderr:\n{stderr}",
            result
        );
        if let Some(shot) = result["screenshot"].as_str() {
            println!("screenshot: {shot}");
            eprintln!("screenshot: {shot}");
            assert!(Path::new(shot).is_file(), "no screenshot at {shot}");
        }
        assert_eq!(result["http_status"], 200, "{result:#}");
        assert!(
            result["csp"]
                .as_str()
                .is_some_and(|c| c.contains("script-src 'self'")),
            "{result:#}"
        );
        // CSP violations and script errors show up as console errors.
        assert_eq!(
            result["console_errors"],
            serde_json::json!([]),
            "{result:#}"
        );
        result
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn truncate(line: &str) -> &str {
    match line.char_indices().nth(400) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

/// The gateway with Kamailio as outbound proxy and its own media port range.
fn gateway_via(kam: &Kamailio) -> Gateway {
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

fn page_url(gw: &Gateway, path: &str) -> String {
    format!("http://{}{path}?ice=loopback", gw.ws)
}

fn states(result: &Value) -> Vec<&str> {
    result["states"]
        .as_array()
        .unwrap_or_else(|| panic!("no states: {result:#}"))
        .iter()
        .filter_map(|s| s.as_str())
        .collect()
}

fn stat(result: &Value, when: &str, name: &str) -> u64 {
    result[when][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {when}.{name}: {result:#}"))
}

/// Audio flowed both ways during the measurement: packets sent and received kept growing.
fn assert_audio_both_ways(result: &Value) {
    for name in ["packetsSent", "packetsReceived"] {
        let (a, b) = (
            stat(result, "stats_start", name),
            stat(result, "stats_end", name),
        );
        // 3 s of 20 ms packets is 150; allow for start-up and pacing.
        assert!(b >= a + 75, "{name} grew only from {a} to {b}: {result:#}");
    }
    assert!(stat(result, "stats_end", "bytesReceived") > 0, "{result:#}");
    assert!(
        result["stats_end"]["codec"]
            .as_str()
            .is_some_and(|c| c.starts_with("audio/")),
        "{result:#}"
    );
    assert_eq!(result["remote_audio_tracks"], 1, "{result:#}");
    assert_eq!(result["dtmf_sent"], "1#", "DTMF keypad: {result:#}");
    // The stats table on the page shows the live numbers.
    assert_ne!(result["stats_shown"]["received"], "-", "{result:#}");
}

fn account_args<'a>(kam: &'a Kamailio, user: &str) -> (String, &'static str, &'a str) {
    (
        format!("{user}@{}", kam.domain()),
        password(user),
        kam.domain(),
    )
}

#[test]
fn page_calls_sipp_echo_through_kamailio_and_hangs_up() {
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    require_browser();
    let kam = Kamailio::start(KamailioOpts::default());
    let uas = Sipp::echo_uas("uas_echo.xml");
    uas.register_at(&kam, "bob");
    let gw = gateway_via(&kam);
    let (address, pw, domain) = account_args(&kam, "alice");
    let out = out_dir("call-sipp");
    let target = format!("bob@{domain}");
    let url = page_url(&gw, "/");
    let driver = Driver::start(
        "call",
        &[
            ("url", &url),
            ("address", &address),
            ("password", pw),
            ("target", &target),
            ("out", out.to_str().unwrap()),
            ("hangup", "page"),
        ],
    );
    let result = driver.result(Duration::from_secs(100));
    eprintln!("result: {result:#}");
    assert_eq!(result["registered"], true);
    let states = states(&result);
    assert!(
        states.ends_with(&["accepted", "established", "terminated"]),
        "{states:?}"
    );
    assert!(states.contains(&"progress"), "{states:?}");
    assert_audio_both_ways(&result);
    assert_eq!(result["hangup_enabled_after"], false);
    // The page's hang-up reached SIPp as a BYE.
    let seen = uas.wait_for_message("BYE sip:", Duration::from_secs(5));
    assert!(seen.contains("INVITE sip:bob@"), "{seen}");
}

#[test]
fn page_calls_baresip_and_baresip_hangs_up() {
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    require_browser();
    let kam = Kamailio::start(KamailioOpts::default());
    let mut bs = Baresip::start(
        &kam,
        BaresipOpts {
            user: "carol".into(),
            ..BaresipOpts::default()
        },
    );
    bs.wait_for_registration(Duration::from_secs(10));
    let gw = gateway_via(&kam);
    let (address, pw, domain) = account_args(&kam, "alice");
    let out = out_dir("call-baresip");
    let target = format!("sip:carol@{domain}");
    let url = page_url(&gw, "/webrtcgateway/");
    let mut driver = Driver::start(
        "call",
        &[
            ("url", &url),
            ("address", &address),
            ("password", pw),
            ("target", &target),
            ("out", out.to_str().unwrap()),
            ("hangup", "remote"),
            // With the (fake) camera on: baresip-core has no video codec, so video is
            // declined while audio must still flow.
            ("video", ""),
        ],
    );
    // After the measurement and the screenshot, baresip hangs up.
    driver.wait_line("SCREENSHOT ", Duration::from_secs(60));
    bs.command("hangup").expect("baresip hangup");
    let result = driver.result(Duration::from_secs(30));
    eprintln!("result: {result:#}");
    let states = states(&result);
    assert!(
        states.ends_with(&["accepted", "established", "terminated"]),
        "{states:?}"
    );
    assert_audio_both_ways(&result);
    assert_eq!(
        result["local_video_mlines"], 1,
        "camera not offered: {result:#}"
    );
    let reason = result["reason"].as_str().unwrap();
    assert!(reason.contains("BYE"), "remote hang-up reason: {reason:?}");
}

/// A plain MESSAGE from `from` to `to` straight at the gateway (as a proxy forking it
/// there); returns the status of the answer.
fn message_to_gateway(gw: &Gateway, from: &str, to: &str, text: &str) -> u16 {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = sock.local_addr().unwrap();
    let msg = format!(
        "MESSAGE sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKchat{}\r\n\
         From: <sip:{from}>;tag=f1\r\nTo: <sip:{to}>\r\nCall-ID: chat-{}@test\r\nCSeq: 1 MESSAGE\r\n\
         Max-Forwards: 70\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
        local.port(),
        local.port(),
        text.len()
    );
    sock.send_to(msg.as_bytes(), gw.sip).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer to MESSAGE");
    String::from_utf8_lossy(&buf[8..n.min(11)])
        .parse()
        .unwrap_or(0)
}

#[test]
fn page_chats_with_baresip_history_unread_and_ticks() {
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    require_browser();
    let kam = Kamailio::start(KamailioOpts::default());
    let mut bob = Baresip::start(
        &kam,
        BaresipOpts {
            contacts: vec!["sip:alice@example.test".into()],
            ..BaresipOpts::default()
        },
    );
    bob.wait_for_registration(Duration::from_secs(10));
    let gw = gateway_via(&kam);
    // Stored while nobody holds alice: the page gets it as history.
    assert_eq!(
        message_to_gateway(
            &gw,
            "bob@example.test",
            "alice@example.test",
            "while you were away"
        ),
        202
    );
    let (address, pw, _) = account_args(&kam, "alice");
    let out = out_dir("chat");
    let url = page_url(&gw, "/");
    let mut driver = Driver::start(
        "chat",
        &[
            ("url", &url),
            ("address", &address),
            ("password", pw),
            ("target", "bob@example.test"),
            ("out", out.to_str().unwrap()),
        ],
    );
    driver.wait_line("HISTORY", Duration::from_secs(60));
    bob.command("contact_next").unwrap();
    bob.command("message live from baresip").unwrap();
    let result = driver.result(Duration::from_secs(60));
    eprintln!("result: {result:#}");
    assert_eq!(
        result["history"],
        serde_json::json!(["while you were away"])
    );
    assert_eq!(result["unread_after_history"], 1);
    assert_eq!(result["unread_before_open"], 2);
    assert_eq!(result["unread_badge"], "2");
    assert_eq!(result["unread_after_open"], 0);
    assert_eq!(result["tick"], "\u{2713}", "accepted: {result:#}");
    bob.wait_for_log("hello from the page", Duration::from_secs(5));
}

#[test]
fn page_answers_a_call_from_sipp_and_sipp_hangs_up() {
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    require_browser();
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam);
    let (address, pw, _) = account_args(&kam, "alice");
    let out = out_dir("answer-sipp");
    let url = page_url(&gw, "/");
    let mut driver = Driver::start(
        "answer",
        &[
            ("url", &url),
            ("address", &address),
            ("password", pw),
            ("out", out.to_str().unwrap()),
            ("hangup", "remote"),
        ],
    );
    driver.wait_line("REGISTERED", Duration::from_secs(40));
    // bob calls alice through Kamailio, streams a PCMU tone for 12 s after the answer, BYE.
    let mut uac = Sipp::uac(
        "uac_call.xml",
        kam.sip_addr(),
        SippOpts {
            pause: Some(Duration::from_secs(12)),
            ..SippOpts::call("bob", "alice")
        },
    );
    let result = driver.result(Duration::from_secs(60));
    eprintln!("result: {result:#}");
    assert!(
        result["incoming_from"]
            .as_str()
            .is_some_and(|f| f.contains("bob@")),
        "{result:#}"
    );
    assert_eq!(states(&result), ["accepted", "established", "terminated"]);
    for name in ["packetsSent", "packetsReceived"] {
        let (a, b) = (
            stat(&result, "stats_start", name),
            stat(&result, "stats_end", name),
        );
        assert!(b >= a + 75, "{name} grew only from {a} to {b}: {result:#}");
    }
    assert!(stat(&result, "stats_end", "bytesReceived") > 0);
    assert_eq!(result["dtmf_sent"], "1#");
    let reason = result["reason"].as_str().unwrap();
    assert!(reason.contains("BYE"), "remote hang-up reason: {reason:?}");
    assert_eq!(uac.wait_exit(Duration::from_secs(10)), 0, "{}", uac.log());
}

#[test]
fn page_declines_a_call_from_sipp() {
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    require_browser();
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam);
    let (address, pw, _) = account_args(&kam, "alice");
    let out = out_dir("decline-sipp");
    let url = page_url(&gw, "/");
    let mut driver = Driver::start(
        "decline",
        &[
            ("url", &url),
            ("address", &address),
            ("password", pw),
            ("out", out.to_str().unwrap()),
        ],
    );
    driver.wait_line("REGISTERED", Duration::from_secs(40));
    let mut uac = Sipp::uac(
        "uac_call.xml",
        kam.sip_addr(),
        SippOpts::call("bob", "alice"),
    );
    let result = driver.result(Duration::from_secs(40));
    eprintln!("result: {result:#}");
    assert_eq!(result["prompt_hidden"], true);
    let reason = result["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("486"),
        "decline reason shown: {reason:?}"
    );
    assert_eq!(result["call_enabled_after"], true);
    // The gateway's decline code (486 by default) reached the caller.
    uac.wait_exit(Duration::from_secs(10));
    let trace = uac.messages();
    assert!(trace.contains("SIP/2.0 486"), "{trace}");
    assert!(!trace.contains("SIP/2.0 200"), "{trace}");
}

#[test]
fn page_over_https_reports_a_dropped_websocket() {
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    require_browser();
    let kam = Kamailio::start(KamailioOpts::default());
    let mut gw = gateway_via(&kam);
    let (address, pw, _) = account_args(&kam, "alice");
    let out = out_dir("drop");
    // The wss listener serves the page over https (dev certificate) and the page uses wss.
    let url = format!(
        "https://{}/webrtcgateway/?ice=loopback",
        gw.wss.expect("wss listener")
    );
    let mut driver = Driver::start(
        "drop",
        &[
            ("url", &url),
            ("address", &address),
            ("password", pw),
            ("out", out.to_str().unwrap()),
        ],
    );
    driver.wait_line("RECONNECTED", Duration::from_secs(60));
    gw.terminate();
    let result = driver.result(Duration::from_secs(40));
    eprintln!("result: {result:#}");
    let first = result["first_banner"].as_str().unwrap();
    assert!(first.contains("code 1000"), "{first}");
    assert_eq!(result["banner_hidden_after_reconnect"], true);
    let banner = result["banner"].as_str().unwrap();
    assert!(
        banner.contains("connection to the gateway was lost"),
        "{banner}"
    );
    assert_eq!(result["reconnect_visible"], true);
    assert_eq!(result["conn_state"], "closed");
    assert_eq!(result["reg_state"], "unregistered");
}

/// The files over plain HTTP from the real binary (no browser needed).
#[test]
fn the_binary_serves_the_page_and_keeps_404_and_426() {
    let gw = Gateway::start("", &[]);
    let page = raw_http(gw.ws, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = page.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/html; charset=utf-8\r\n"));
    assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
    assert!(head.contains("Cache-Control: no-cache\r\n"));
    assert!(body.contains("sylkrtc-client.js"));
    let module = raw_http(
        gw.ws,
        "GET /webrtcgateway/sylkrtc-client.js HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(module.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(module.contains("Content-Type: text/javascript; charset=utf-8\r\n"));
    assert!(module.contains("export class SylkClient"));
    let head_only = raw_http(gw.ws, "HEAD /webrtcgateway/ HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head_only.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(head_only.ends_with("\r\n\r\n"), "{head_only}");
    let missing = raw_http(gw.ws, "GET /nope.html HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    let plain = raw_http(gw.ws, "GET /webrtcgateway/ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(plain.starts_with("HTTP/1.1 426 "), "{plain}");
    // The WebSocket still works on the same listener.
    let _ = connect_v2(&gw);
}

/// Standalone mode (issue 15 item 6): the README's run command (the embedded configuration,
/// local domain `sylk.local`, open) and the demo page in two browsers, with no SIP server:
/// the page chats with another client (history kept while it was away, a live message, its
/// answer delivered), then one page calls the other and both carry audio.
#[test]
fn two_pages_chat_and_call_on_the_embedded_default_with_no_sip_server() {
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    require_browser();
    // The embedded configuration; media ports of its own (other gateways run meanwhile).
    let base = free_udp_range(40);
    let gw = Gateway::start("", &["--rtp-ports", &format!("{base}-{}", base + 39)]);
    let url = page_url(&gw, "/");

    // Chat: another client (alice) writes to bob before and after bob's page registers.
    let mut alice = common::conn::Conn::open(gw.ws);
    alice.register_as("alice@sylk.local", HA1);
    alice.send_message("alice@sylk.local", "bob@sylk.local", "history");
    assert_eq!(alice.disposition("history")["code"], 202);
    let out = out_dir("standalone-chat");
    let mut page = Driver::start(
        "chat",
        &[
            ("url", &url),
            ("address", "bob@sylk.local"),
            ("password", "any"),
            ("target", "alice@sylk.local"),
            ("out", out.to_str().unwrap()),
        ],
    );
    page.wait_line("HISTORY", Duration::from_secs(60));
    alice.send_message("alice@sylk.local", "bob@sylk.local", "live from alice");
    let result = page.result(Duration::from_secs(60));
    assert_eq!(result["history"], serde_json::json!(["text of history"]));
    assert_eq!(result["tick"], "\u{2713}", "accepted: {result:#}");
    let m = alice.event(Duration::from_secs(10), |v| v["event"] == "message");
    assert_eq!(m["content"], "hello from the page \u{1f600}");
    assert_eq!(m["sender"]["uri"], "bob@sylk.local");
    alice.close();

    // A call between two pages: bob answers, alice calls and hangs up.
    let (out_callee, out_caller) = (out_dir("standalone-callee"), out_dir("standalone-caller"));
    let mut callee = Driver::start(
        "answer",
        &[
            ("url", &url),
            ("address", "bob@sylk.local"),
            ("password", "any"),
            ("out", out_callee.to_str().unwrap()),
            ("hangup", "remote"),
        ],
    );
    callee.wait_line("REGISTERED", Duration::from_secs(60));
    let caller = Driver::start(
        "call",
        &[
            ("url", &url),
            ("address", "alice@sylk.local"),
            ("password", "any"),
            ("target", "bob@sylk.local"),
            ("out", out_caller.to_str().unwrap()),
        ],
    );
    let called = caller.result(Duration::from_secs(90));
    let answered = callee.result(Duration::from_secs(60));
    eprintln!("caller: {called:#}\ncallee: {answered:#}");
    assert_audio_both_ways(&called);
    assert_eq!(states(&answered), ["accepted", "established", "terminated"]);
    for name in ["packetsSent", "packetsReceived"] {
        let (a, b) = (
            stat(&answered, "stats_start", name),
            stat(&answered, "stats_end", name),
        );
        assert!(
            b >= a + 75,
            "{name} grew only from {a} to {b}: {answered:#}"
        );
    }
    assert!(
        answered["incoming_from"]
            .as_str()
            .is_some_and(|f| f.contains("alice@sylk.local")),
        "{answered:#}"
    );
}

/// Two pages chat over MSRP (our extension) through Kamailio as SIP proxy and Kamailio's
/// `msrp` module as RFC 4976 relay: one starts the session, the other accepts it, each reads
/// the other's message from the CPIM it parsed, both see ✓✓ from the delivery reports.
#[test]
fn two_pages_chat_over_msrp_through_the_kamailio_relay() {
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    require_browser();
    let kam = Kamailio::start(KamailioOpts::default());
    let relay = KamailioMsrp::start();
    let gw = Gateway::start(
        &format!(
            "[sip]\noutbound_proxy = \"sip:{}\"\n[msrp]\nlisten = \"off\"\nrelay = \"{}\"\n",
            kam.sip_addr(),
            relay.uri()
        ),
        &[],
    );
    let out = out_dir("chat-session");
    let out = out.to_str().unwrap();
    let url = page_url(&gw, "/");
    let (alice, alice_pw, _) = account_args(&kam, "alice");
    let (bob, bob_pw, _) = account_args(&kam, "bob");
    let mut answering = Driver::start(
        "chat-session-answer",
        &[
            ("url", &url),
            ("address", &alice),
            ("password", alice_pw),
            ("out", out),
        ],
    );
    answering.wait_line("REGISTERED", Duration::from_secs(60));
    let starting = Driver::start(
        "chat-session-start",
        &[
            ("url", &url),
            ("address", &bob),
            ("password", bob_pw),
            ("target", &alice),
            ("out", out),
        ],
    );
    let first = starting.result(Duration::from_secs(90));
    let second = answering.result(Duration::from_secs(30));
    assert_eq!(second["incoming_from"], bob.as_str(), "{second:#}");
    // Each page parsed the CPIM it got: sender, time and content type from its headers.
    let got = &second["received"][0];
    assert_eq!(
        got["body"], "hello from the first page \u{1f600}",
        "{second:#}"
    );
    assert_eq!(got["from"], format!("<sip:{bob}>"), "{second:#}");
    assert_eq!(got["contentType"], "text/plain", "{second:#}");
    assert!(
        got["datetime"].as_str().is_some_and(|d| d.ends_with('Z')),
        "{second:#}"
    );
    assert_eq!(
        first["received"][0]["body"], "and hello back from the second",
        "{first:#}"
    );
    assert_eq!(
        first["received"][0]["from"],
        format!("<sip:{alice}>"),
        "{first:#}"
    );
    for r in [&first, &second] {
        assert_eq!(r["tick"], "\u{2713}\u{2713}", "delivered: {r:#}");
        assert!(states(r).contains(&"established"), "{r:#}");
    }
    assert_eq!(second["reason"], "200 BYE received", "{second:#}");
    let log = relay.log();
    for user in ["alice", "bob"] {
        assert!(log.contains(&format!("msrp AUTH ok for {user}")), "{log}");
    }
}

#[test]
fn page_contacts_panel_adds_renames_sees_presence_publishes_and_deletes() {
    use common::conn::Conn;
    use serde_json::json;
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    require_browser();
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam);
    // bob: a second account of the gateway, offline for now, watching alice.
    let mut bob = Conn::open(gw.ws);
    bob.register(&kam, "bob", None);
    bob.ack(json!({"sylkrtc":"account-publish-presence","account":"bob@example.test","state":"offline"}));
    bob.ack(json!({"sylkrtc":"account-update-addressbook","account":"bob@example.test",
                   "action":"add","type":"contact",
                   "data":{"id":"c-alice","name":"Alice","uris":[{"id":"u1","uri":"sip:alice@example.test"}],
                           "presence":{"policy":"allow","subscribe":true}}}));
    let (address, pw, _) = account_args(&kam, "alice");
    let out = out_dir("contacts");
    let url = page_url(&gw, "/");
    let mut driver = Driver::start(
        "contacts",
        &[
            ("url", &url),
            ("address", &address),
            ("password", pw),
            ("target", "bob@example.test"),
            ("out", out.to_str().unwrap()),
        ],
    );
    driver.wait_line("WATCHING", Duration::from_secs(60));
    bob.ack(
        json!({"sylkrtc":"account-publish-presence","account":"bob@example.test","state":"online"}),
    );
    driver.wait_line("PUBLISHED", Duration::from_secs(40));
    // What the page published reaches bob through Kamailio.
    let seen = bob.event(Duration::from_secs(20), |v| {
        v["event"] == "presence"
            && v["contact"] == "c-alice"
            && v["state"] == "open"
            && v["note"] == "at lunch"
    });
    assert_eq!(seen["activities"], json!(["away"]), "{seen}");
    bob.ack(
        json!({"sylkrtc":"account-publish-presence","account":"bob@example.test","state":"busy"}),
    );
    let result = driver.result(Duration::from_secs(60));
    eprintln!("result: {result:#}");
    assert_eq!(result["contacts_at_start"], json!([]), "{result:#}");
    assert_eq!(result["empty_note_shown"], true, "{result:#}");
    assert_eq!(result["added"], json!(["Bob"]), "{result:#}");
    assert_eq!(result["uri_shown"], "bob@example.test", "{result:#}");
    let stored = &result["stored"][0];
    assert_eq!(
        stored["uris"][0]["uri"], "sip:bob@example.test",
        "{result:#}"
    );
    assert_eq!(stored["presence"]["subscribe"], true, "{result:#}");
    assert_eq!(result["renamed"], json!(["Robert"]), "{result:#}");
    assert_eq!(
        (result["dot_before"].as_str(), result["dot_after"].as_str()),
        (Some("closed"), Some("open")),
        "{result:#}"
    );
    // The page's green (--ok: #1a7f37).
    assert_eq!(result["dot_color"], "rgb(26, 127, 55)", "{result:#}");
    assert_eq!(result["my_presence"], "away", "{result:#}");
    assert!(
        result["info"].as_str().is_some_and(|i| i.contains("busy")),
        "{result:#}"
    );
    assert_eq!(result["after_delete"], json!([]), "{result:#}");
    assert_eq!(result["refetched"], json!([]), "{result:#}");
    assert_eq!(result["errors"], "", "{result:#}");
}
