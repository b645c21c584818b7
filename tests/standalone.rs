//! Standalone mode (issue 15 item 6): the gateway serves `local.domain` itself, with no SIP
//! server anywhere. On the embedded default configuration (domain `sylk.local`, open), two
//! browser clients register, chat (live and offline) and call each other with audio both
//! ways; with users listed by HA1, a SIP phone (baresip) registers with digest, calls and
//! messages browser users and is called and messaged by them, and un-registers on exit.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::client::{parse_client_output, SYLKRTC_CLIENT};
use common::conn::{is_message, Conn};
use common::peers::{Baresip, BaresipOpts};
use common::*;
use serde_json::Value;

const DOMAIN: &str = "sylk.local";

/// MD5(user:sylk.local:password), as the demo page computes it.
fn ha1(user: &str, password: &str) -> String {
    use md5::{Digest as _, Md5};
    use std::fmt::Write as _;
    let digest = Md5::digest(format!("{user}:{DOMAIN}:{password}").as_bytes());
    let mut s = String::new();
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The aiortc client answering calls for `aor` on `gw` (in the background), once it has
/// registered; it hangs up after `seconds` unless the caller does first.
fn answering(gw: &Gateway, aor: &str, ha1: &str, hz: &str, seconds: &str) -> std::process::Child {
    let mut child = Command::new("python3")
        .arg(SYLKRTC_CLIENT)
        .args([
            "answer",
            "--ws",
            &gw.ws_url(),
            "--account",
            aor,
            "--ha1",
            ha1,
        ])
        .args(["--seconds", seconds, "--hz", hz])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (tests/run-all.sh installs the peers)");
    // It prints REGISTERED once registered; read up to there.
    use std::io::BufRead as _;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line == "REGISTERED" {
                let _ = tx.send(None);
            }
            all.push_str(&line);
            all.push('\n');
        }
        let _ = tx.send(Some(all));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(None) => {}
        other => {
            let _ = child.kill();
            panic!("the answering client never registered: {other:?}");
        }
    }
    // The rest of its output is gathered by the thread; `finish` collects it.
    ANSWER_OUTPUT.with(|o| *o.borrow_mut() = Some(rx));
    child
}

thread_local! {
    static ANSWER_OUTPUT: std::cell::RefCell<Option<std::sync::mpsc::Receiver<Option<String>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Waits for the answering client and returns its RESULT.
fn finish(mut child: std::process::Child) -> Value {
    let status = child.wait().unwrap();
    let out = ANSWER_OUTPUT
        .with(|o| o.borrow_mut().take())
        .and_then(|rx| rx.recv_timeout(Duration::from_secs(10)).ok().flatten())
        .unwrap_or_default();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "{out}\n{err}");
    parse_client_output(&out, err.as_bytes()).1
}

/// The aiortc client calling `to` from `aor` on `gw` for 3 s; its RESULT.
fn calling(gw: &Gateway, aor: &str, ha1: &str, to: &str, hz: &str) -> Value {
    let out = Command::new("python3")
        .arg(SYLKRTC_CLIENT)
        .args(["call", "--ws", &gw.ws_url(), "--account", aor, "--ha1", ha1])
        .args(["--to", to, "--seconds", "3", "--hz", hz])
        .output()
        .expect("python3");
    parse_client_output(&String::from_utf8_lossy(&out.stdout), &out.stderr).1
}

/// A free media port range for one gateway (`--rtp-ports`).
fn own_rtp_ports() -> String {
    let base = common::peers::free_udp_range(40);
    format!("{base}-{}", base + 39)
}

fn assert_heard(who: &str, result: &Value, hz: f64) {
    let freq = result["freq"].as_f64().unwrap_or(0.0);
    assert!(
        (freq - hz).abs() < hz * 0.05,
        "{who} should hear {hz} Hz: {result}"
    );
}

#[test]
fn two_browsers_chat_and_call_on_the_embedded_default() {
    // No configuration at all: the README's run command (ports aside: media ports too, a
    // range of its own, as other tests' gateways run at the same time).
    let gw = Gateway::start("", &["--rtp-ports", &own_rtp_ports()]);
    let mut alice = Conn::open(gw.ws);
    let mut bob = Conn::open(gw.ws);
    // Open lab mode: any HA1 registers.
    alice.register_as("alice@sylk.local", HA1);
    bob.register_as("bob@sylk.local", HA1);
    let text = http(gw.ws, "GET", "/metrics").2;
    assert_eq!(
        metric(&text, "sylk_local_bindings", ""),
        Some(2.0),
        "{text}"
    );
    alice.send_message("alice@sylk.local", "bob@sylk.local", "hello-1");
    let m = bob.event(Duration::from_secs(10), is_message("hello-1"));
    assert_eq!(m["sender"]["uri"], "alice@sylk.local");
    assert_eq!(m["content"], "text of hello-1");
    assert_eq!(alice.disposition("hello-1")["state"], "accepted");
    // Bob goes away; a message for him is kept and his next session syncs it.
    bob.close();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&http(gw.ws, "GET", "/metrics").2, "sylk_clients", "") != Some(1.0) {
        assert!(Instant::now() < deadline, "bob's connection did not go");
        std::thread::sleep(Duration::from_millis(20));
    }
    alice.send_message("alice@sylk.local", "bob@sylk.local", "while-away");
    let d = alice.disposition("while-away");
    assert_eq!(
        (d["state"].as_str(), d["code"].as_u64()),
        (Some("accepted"), Some(202)),
        "{d}"
    );
    let mut bob = Conn::open(gw.ws);
    bob.register_as("bob@sylk.local", HA1);
    assert_eq!(bob.sync_ids("bob@sylk.local"), ["hello-1", "while-away"]);
    // An unknown domain is not ours: it leaves over SIP (and fails here, no DNS for it).
    alice.close();
    bob.close();

    // A call: bob's browser answers, alice's calls; both hear the other.
    // The callee waits longer than the caller's 3 s, so the caller hangs up (both ending
    // at once would race their BYEs against their session-terminates).
    let callee = answering(&gw, "bob@sylk.local", HA1, "660", "10");
    let heard_by_alice = calling(&gw, "alice@sylk.local", HA1, "bob@sylk.local", "440");
    let heard_by_bob = finish(callee);
    assert_heard("alice", &heard_by_alice, 660.0);
    assert_heard("bob", &heard_by_bob, 440.0);
    let text = http(gw.ws, "GET", "/metrics").2;
    assert_eq!(
        metric(&text, "sylk_calls_answered_total", "direction=\"outgoing\""),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "sylk_calls_answered_total", "direction=\"incoming\""),
        Some(1.0)
    );
}

#[test]
fn a_sip_phone_registers_with_digest_and_talks_to_browsers() {
    let config = format!(
        "[local]\ndomain = \"{DOMAIN}\"\nopen = false\n[local.users]\n\
         alice = \"{}\"\ncarol = \"{}\"\n",
        ha1("alice", "alicepass"),
        ha1("carol", "carolpass"),
    );
    let gw = Gateway::start(&config, &["--rtp-ports", &own_rtp_ports()]);
    // A browser with the wrong password is refused by the registrar's challenge.
    let mut wrong = Conn::open(gw.ws);
    wrong.ack(
        serde_json::json!({"sylkrtc":"account-add","account":"alice@sylk.local",
        "password":ha1("alice", "guess")}),
    );
    wrong.ack(serde_json::json!({"sylkrtc":"account-register","account":"alice@sylk.local"}));
    let state = wrong.event(Duration::from_secs(10), |v| {
        v["event"] == "registration-state" && v["state"] != "registering"
    });
    assert_eq!(
        (state["state"].as_str(), state["reason"].as_str()),
        (Some("failed"), Some("401 Unauthorized")),
        "{state}"
    );
    wrong.close();

    // baresip registers as carol at the gateway (digest from the configured HA1).
    let mut carol = Baresip::start_at(
        gw.sip,
        DOMAIN,
        "carolpass",
        BaresipOpts {
            user: "carol".into(),
            contacts: vec!["sip:alice@sylk.local".into()],
            ..BaresipOpts::default()
        },
    );
    carol.wait_for_registration(Duration::from_secs(10));

    // Browser -> phone: a message, then a call (baresip answers by itself).
    let mut alice = Conn::open(gw.ws);
    alice.register_as("alice@sylk.local", &ha1("alice", "alicepass"));
    alice.send_message("alice@sylk.local", "carol@sylk.local", "to-phone");
    let d = alice.disposition("to-phone");
    assert_eq!(
        (d["state"].as_str(), d["code"].as_u64()),
        (Some("accepted"), Some(200)),
        "{d}"
    );
    carol.wait_for_log("text of to-phone", Duration::from_secs(5));
    // Phone -> browser: a message.
    carol.command("contact_next").unwrap();
    carol.command("message Hi from the phone").unwrap();
    let m = alice.event(Duration::from_secs(10), |v| v["event"] == "message");
    assert_eq!(m["sender"]["uri"], "carol@sylk.local");
    assert_eq!(m["content"], "Hi from the phone");
    alice.close();

    let heard = calling(
        &gw,
        "alice@sylk.local",
        &ha1("alice", "alicepass"),
        "carol@sylk.local",
        "440",
    );
    assert_eq!(
        heard["states"]
            .as_array()
            .map(|s| s.iter().any(|s| s == "established")),
        Some(true),
        "{heard}"
    );
    assert!(
        heard["frames"].as_u64().unwrap_or(0) > 50,
        "audio from the phone: {heard}"
    );

    // Phone -> browser: a call to alice's browser, answered there.
    let callee = answering(
        &gw,
        "alice@sylk.local",
        &ha1("alice", "alicepass"),
        "660",
        "3",
    );
    carol.command("dial sip:alice@sylk.local").unwrap();
    let heard_by_alice = finish(callee);
    assert!(
        heard_by_alice["frames"].as_u64().unwrap_or(0) > 50,
        "{heard_by_alice}"
    );
    assert_heard("alice", &heard_by_alice, 440.0);

    // The phone un-registers on exit: calls to carol then get 480, reported as failed.
    carol.stop();
    let after = calling(
        &gw,
        "alice@sylk.local",
        &ha1("alice", "alicepass"),
        "carol@sylk.local",
        "440",
    );
    let text = after.to_string();
    assert!(text.contains("480"), "{text}");
}
