//! Chat sessions over MSRP end to end (issue 14) with real peers on 127.0.0.1: sylkRTC-2
//! clients of the real gateway chat through Kamailio as SIP proxy, directly and through
//! Kamailio's `msrp` module as RFC 4976 relay (AUTH with digest), both directions; CPIM goes
//! through byte for byte; a WebSocket drop mid-chat leaves no socket behind; a chat that
//! fails beside audio (its relay gone) is a `chat` event and the audio goes on.

mod common;

use std::time::Duration;

use common::conn::Conn;
use common::peers::{Kamailio, KamailioMsrp, KamailioOpts};
use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(15);

fn gateway_via(kam: &Kamailio, extra: &str) -> Gateway {
    Gateway::start(
        &format!(
            "[sip]\noutbound_proxy = \"sip:{};transport=udp\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n{extra}",
            kam.sip_addr()
        ),
        &[],
    )
}

/// A connection with `user` added (taking chat) and registered at `kam`.
fn chat_client(gw: &Gateway, kam: &Kamailio, user: &str) -> Conn {
    let mut c = Conn::open(gw.ws);
    let aor = format!("{user}@example.test");
    c.ack(json!({"sylkrtc":"account-add","account":aor,"password":kam.ha1(user),"chat":true}));
    c.ack(json!({"sylkrtc":"account-register","account":aor}));
    let state = c.event(T, |v| {
        v["event"] == "registration-state" && v["state"] != "registering"
    });
    assert_eq!(state["state"], "registered", "{state}");
    c
}

fn state_of<'a>(session: &'a str, state: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |v: &Value| v["event"] == "state" && v["session"] == session && v["state"] == state
}

fn disposition<'a>(id: &'a str, state: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |v: &Value| {
        v["event"] == "disposition-notification" && v["message_id"] == id && v["state"] == state
    }
}

fn message_event(v: &Value) -> bool {
    v["sylkrtc"] == "session-event" && v["event"] == "message"
}

/// `from` calls `to` with a chat-only session, `to` answers; both reach `established`.
/// Returns the two session ids.
fn start_chat(
    from: &mut Conn,
    from_user: &str,
    to: &mut Conn,
    to_user: &str,
    id: &str,
) -> (String, String) {
    from.ack(
        json!({"sylkrtc":"session-create","account":format!("{from_user}@example.test"),
                    "session":id,"uri":format!("{to_user}@example.test"),"media":["chat"]}),
    );
    let incoming = to.event(T, |v| v["event"] == "incoming-session");
    assert_eq!(incoming["media"], json!(["chat"]), "{incoming}");
    assert!(incoming.get("sdp").is_none(), "{incoming}");
    assert_eq!(
        incoming["originator"]["uri"],
        format!("{from_user}@example.test")
    );
    let theirs = incoming["session"].as_str().unwrap().to_owned();
    to.ack(json!({"sylkrtc":"session-answer","session":theirs}));
    let accepted = from.event(T, state_of(id, "accepted"));
    assert!(accepted.get("sdp").is_none(), "{accepted}");
    from.event(T, state_of(id, "established"));
    to.event(T, state_of(&theirs, "accepted"));
    to.event(T, state_of(&theirs, "established"));
    (id.to_owned(), theirs)
}

fn say(c: &mut Conn, session: &str, id: &str, content_type: &str, content: &str) {
    c.ack(
        json!({"sylkrtc":"session-message","session":session,"message_id":id,
                 "content":content,"content_type":content_type,
                 "timestamp":"2026-05-06T07:08:09.123Z"}),
    );
}

/// Messages both ways in one session: text wrapped in CPIM by the gateway, CPIM from a
/// client byte for byte, success reports as `delivered`.
fn chat_both_ways(
    a: &mut Conn,
    a_user: &str,
    a_session: &str,
    b: &mut Conn,
    b_user: &str,
    b_session: &str,
) {
    say(a, a_session, "m1", "text/plain", "Hello \u{2713} over MSRP");
    let got = b.event(T, message_event);
    assert_eq!(got["session"], b_session);
    assert_eq!(got["content_type"], "message/cpim");
    let cpim = got["content"].as_str().unwrap();
    assert!(
        cpim.contains(&format!("From: <sip:{a_user}@example.test>")),
        "{cpim}"
    );
    assert!(cpim.contains("imdn.Message-ID: m1"), "{cpim}");
    assert!(
        cpim.ends_with("\r\n\r\nHello \u{2713} over MSRP"),
        "{cpim:?}"
    );
    assert_eq!(got["message_id"], "m1");
    assert_eq!(got["sender"]["uri"], format!("{a_user}@example.test"));
    assert_eq!(got["timestamp"], "2026-05-06T07:08:09.123Z");
    a.event(T, disposition("m1", "accepted"));
    a.event(T, disposition("m1", "delivered"));
    // The other way, CPIM written by the client: byte for byte, whitespace included.
    let raw = format!(
        "From: Bob <sip:{b_user}@example.test>\r\nTo: <sip:{a_user}@example.test>\r\n\
         DateTime: 2026-05-06T07:08:10Z\r\nNS: imdn <urn:ietf:params:imdn>\r\n\
         imdn.Message-ID: m2\r\nX-Odd:   kept  \r\n\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         line one\r\n-------not an end-line\r\n\r\n  trailing  "
    );
    say(b, b_session, "m2", "message/cpim", &raw);
    let got = a.event(T, message_event);
    assert_eq!(
        got["content"],
        raw.as_str(),
        "CPIM byte-identical end to end"
    );
    assert_eq!(
        got["sender"],
        json!({"uri":format!("{b_user}@example.test"),"display_name":"Bob"})
    );
    assert_eq!(got["message_id"], "m2");
    b.event(T, disposition("m2", "delivered"));
}

fn metrics(gw: &Gateway) -> String {
    http(gw.metrics.unwrap(), "GET", "/metrics").2
}

/// Waits until the gateway holds no chat and no MSRP socket.
fn wait_no_chat(gw: &Gateway) {
    let deadline = std::time::Instant::now() + T;
    loop {
        let m = metrics(gw);
        let chats = metric(&m, "sylk_chat_sessions", "");
        let sockets = metric(&m, "sylk_msrp_sockets", "");
        if chats == Some(0.0) && sockets == Some(0.0) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "chats {chats:?}, sockets {sockets:?} left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_accounts_chat_directly_through_kamailio_both_ways() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam, "");
    let mut alice = chat_client(&gw, &kam, "alice");
    let mut bob = chat_client(&gw, &kam, "bob");
    let (a, b) = start_chat(&mut alice, "alice", &mut bob, "bob", "chat-1");
    chat_both_ways(&mut alice, "alice", &a, &mut bob, "bob", &b);
    // bob's client says it displayed m1: an IMDN (RFC 5438) wrapped in CPIM by the gateway,
    // a session disposition-notification for alice, as over a dialog's MESSAGE.
    say(
        &mut bob,
        &b,
        "imdn-1",
        "message/imdn+xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
         <imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>m1</message-id>\
         <datetime>2026-05-06T07:08:09.123Z</datetime><display-notification><status>\
         <displayed/></status></display-notification></imdn>",
    );
    let shown = alice.event(T, disposition("m1", "displayed"));
    assert_eq!(shown["session"], a.as_str(), "{shown}");
    // RFC 3994 is-composing passes inside CPIM like any message.
    let composing = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
        <isComposing xmlns=\"urn:ietf:params:xml:ns:im-iscomposing\"><state>active</state>\
        <contenttype>text/plain</contenttype></isComposing>";
    say(
        &mut alice,
        &a,
        "typing-1",
        "application/im-iscomposing+xml",
        composing,
    );
    let got = bob.event(T, message_event);
    let cpim = got["content"].as_str().unwrap();
    assert!(
        cpim.contains("\r\n\r\nContent-Type: application/im-iscomposing+xml\r\n")
            && !cpim.contains("Disposition-Notification"),
        "{cpim}"
    );
    assert!(cpim.ends_with(composing), "{cpim}");
    // And a session the other way round.
    let (b2, a2) = start_chat(&mut bob, "bob", &mut alice, "alice", "chat-2");
    chat_both_ways(&mut bob, "bob", &b2, &mut alice, "alice", &a2);
    let m = metrics(&gw);
    assert_eq!(metric(&m, "sylk_chat_sessions", ""), Some(4.0), "{m}");
    assert!(metric(&m, "sylk_msrp_messages_total", "direction=\"in\"").unwrap() >= 4.0);
    alice.ack(json!({"sylkrtc":"session-terminate","session":a}));
    alice.event(T, state_of(&a, "terminated"));
    let t = bob.event(T, state_of(&b, "terminated"));
    assert_eq!(t["reason"], "200 BYE received");
    bob.ack(json!({"sylkrtc":"session-terminate","session":b2}));
    alice.event(T, state_of(&a2, "terminated"));
    wait_no_chat(&gw);
}

#[test]
fn two_accounts_chat_through_the_kamailio_msrp_relay_with_auth_both_ways() {
    let kam = Kamailio::start(KamailioOpts::default());
    let relay = KamailioMsrp::start();
    // No MSRP listener: over the relay the gateway only ever connects out.
    let gw = gateway_via(
        &kam,
        &format!("[msrp]\nlisten = \"off\"\nrelay = \"{}\"\n", relay.uri()),
    );
    let mut alice = chat_client(&gw, &kam, "alice");
    let mut bob = chat_client(&gw, &kam, "bob");
    let (a, b) = start_chat(&mut alice, "alice", &mut bob, "bob", "relay-1");
    chat_both_ways(&mut alice, "alice", &a, &mut bob, "bob", &b);
    let (b2, a2) = start_chat(&mut bob, "bob", &mut alice, "alice", "relay-2");
    chat_both_ways(&mut bob, "bob", &b2, &mut alice, "alice", &a2);
    // Every session authenticated at the relay with digest from its account's HA1.
    let log = relay.log();
    assert_eq!(log.matches("msrp AUTH ok for alice").count(), 2, "{log}");
    assert_eq!(log.matches("msrp AUTH ok for bob").count(), 2, "{log}");
    // The SDP the peer saw carries the relay's Use-Path before the session URI.
    let lines = gw.log_lines().join("\n");
    assert!(
        lines.contains(&format!(
            "relay Use-Path msrp://127.0.0.1:{}/",
            relay.addr().port()
        )),
        "{lines}"
    );
    alice.ack(json!({"sylkrtc":"session-terminate","session":a}));
    bob.event(T, state_of(&b, "terminated"));
    alice.ack(json!({"sylkrtc":"session-terminate","session":a2}));
    bob.event(T, state_of(&b2, "terminated"));
    wait_no_chat(&gw);
}

#[test]
fn two_accounts_chat_through_the_kamailio_msrp_relay_over_tls() {
    let kam = Kamailio::start(KamailioOpts::default());
    let relay = KamailioMsrp::start_tls();
    assert!(relay.uri().starts_with("msrps://"), "{}", relay.uri());
    // The relay's certificate is the dev one; the gateway verifies it as SIP TLS does.
    let certs = concat!(env!("CARGO_MANIFEST_DIR"), "/certs");
    let gw = Gateway::start(
        &format!(
            "[sip]\noutbound_proxy = \"sip:{};transport=udp\"\ntls_ca_file = \"{certs}/localhost.crt\"\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\
             [msrp]\nlisten = \"off\"\nrelay = \"{}\"\n",
            kam.sip_addr(),
            relay.uri()
        ),
        &[],
    );
    let mut alice = chat_client(&gw, &kam, "alice");
    let mut bob = chat_client(&gw, &kam, "bob");
    let (a, b) = start_chat(&mut alice, "alice", &mut bob, "bob", "tls-relay-1");
    chat_both_ways(&mut alice, "alice", &a, &mut bob, "bob", &b);
    let log = relay.log();
    assert_eq!(log.matches("msrp AUTH ok for alice").count(), 1, "{log}");
    assert_eq!(log.matches("msrp AUTH ok for bob").count(), 1, "{log}");
    // Over TLS the relay hands out msrps:// Use-Paths, and the peers' paths carry them.
    let lines = gw.log_lines().join("\n");
    assert!(
        lines.contains(&format!(
            "relay Use-Path msrps://127.0.0.1:{}/",
            relay.addr().port()
        )),
        "{lines}"
    );
    alice.ack(json!({"sylkrtc":"session-terminate","session":a}));
    bob.event(T, state_of(&b, "terminated"));
    wait_no_chat(&gw);
}

#[test]
fn the_relay_of_the_accounts_domain_wins_over_the_default_relay() {
    let kam = Kamailio::start(KamailioOpts::default());
    let ours = KamailioMsrp::start();
    let default = KamailioMsrp::start();
    // `msrp.relays` per account domain (case-insensitive) beside `msrp.relay` for the rest.
    let gw = gateway_via(
        &kam,
        &format!(
            "[msrp]\nlisten = \"off\"\nrelay = \"{}\"\n[msrp.relays]\n\"Example.TEST\" = \"{}\"\n",
            default.uri(),
            ours.uri()
        ),
    );
    let mut alice = chat_client(&gw, &kam, "alice");
    let mut bob = chat_client(&gw, &kam, "bob");
    let (a, b) = start_chat(&mut alice, "alice", &mut bob, "bob", "domain-relay-1");
    chat_both_ways(&mut alice, "alice", &a, &mut bob, "bob", &b);
    let log = ours.log();
    assert_eq!(log.matches("msrp AUTH ok for alice").count(), 1, "{log}");
    assert_eq!(log.matches("msrp AUTH ok for bob").count(), 1, "{log}");
    let log = default.log();
    assert!(!log.contains("msrp AUTH ok"), "{log}");
    alice.ack(json!({"sylkrtc":"session-terminate","session":a}));
    bob.event(T, state_of(&b, "terminated"));
    wait_no_chat(&gw);
}

#[test]
fn a_wrong_ha1_is_refused_by_the_relay_and_ends_the_session() {
    let kam = Kamailio::start(KamailioOpts::default());
    let relay = KamailioMsrp::start();
    let gw = gateway_via(&kam, &format!("[msrp]\nrelay = \"{}\"\n", relay.uri()));
    let mut alice = Conn::open(gw.ws);
    alice.ack(
        json!({"sylkrtc":"account-add","account":"alice@example.test",
                     "password":"0123456789abcdef0123456789abcdef","chat":true}),
    );
    alice.ack(
        json!({"sylkrtc":"session-create","account":"alice@example.test",
                     "session":"bad-auth","uri":"bob@example.test","media":["chat"]}),
    );
    let t = alice.event(T, state_of("bad-auth", "terminated"));
    assert_eq!(t["reason"], "MSRP relay authentication failed (401)", "{t}");
    wait_no_chat(&gw);
}

/// The independent MSRP endpoint (`tests/clients/msrp_endpoint.py`) in the background.
struct Endpoint {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Endpoint {
    fn start(args: &[&str]) -> Endpoint {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/clients/msrp_endpoint.py"
            ))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("python3");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Endpoint {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line starting with `prefix` (its rest); fails on a RESULT with an error.
    fn wait(&mut self, prefix: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("endpoint: no {prefix} line; saw {:#?}", self.seen));
            self.seen.push(line.clone());
            if line.starts_with("RESULT {\"error\"") {
                panic!("endpoint failed: {line}\n{:#?}", self.seen);
            }
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }

    /// The JSON of step `name`.
    fn step(&mut self, name: &str) -> Value {
        let rest = self.wait(&format!("STEP {name} "));
        serde_json::from_str(&rest).unwrap()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_independent_endpoint_sends_200_kib_in_chunks_reports_failure_breaks_a_frame_and_drops_tcp() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam, "");
    let dir = common::peers::RunDir::new("msrp-endpoint");
    let proxy = kam.sip_addr().to_string();
    let ha1 = kam.ha1("carol");
    let out = dir.path().display().to_string();
    let mut ep = Endpoint::start(&[
        "uas",
        "--proxy",
        &proxy,
        "--user",
        "carol",
        "--ha1",
        &ha1,
        "--setup",
        "passive",
        "--out",
        &out,
        "--script",
        "recv:1,fail-next,send-big:204800,malformed,drop-mid,wait-bye",
    ]);
    ep.wait("READY");
    let mut alice = chat_client(&gw, &kam, "alice");
    alice.ack(
        json!({"sylkrtc":"session-create","account":"alice@example.test",
                     "session":"ep-1","uri":"carol@example.test","media":["chat"]}),
    );
    alice.event(T, state_of("ep-1", "accepted"));
    alice.event(T, state_of("ep-1", "established"));
    // A message of ours: wrapped in CPIM, reported delivered by the endpoint's REPORT.
    say(&mut alice, "ep-1", "m1", "text/plain", "first from alice");
    let got = ep.step("recv");
    let m = &got["messages"][0];
    assert_eq!(m["content_type"], "message/cpim", "{got}");
    assert!(
        m["text"]
            .as_str()
            .unwrap()
            .ends_with("\r\n\r\nfirst from alice"),
        "{got}"
    );
    alice.event(T, disposition("m1", "delivered"));
    // The endpoint answers the next one 200, then reports failure (000 415).
    say(&mut alice, "ep-1", "m2", "text/plain", "second from alice");
    ep.step("fail-next");
    let failed = alice.event(T, disposition("m2", "failed"));
    assert_eq!(
        (failed["code"].as_u64(), failed["reason"].as_str()),
        (Some(415), Some("Unsupported Media Type")),
        "{failed}"
    );
    // 200 KiB of CPIM in 2048-byte chunks: one message, byte for byte, reported delivered.
    let big = ep.step("send-big");
    assert_eq!(big["chunks"], 100, "{big}");
    assert_eq!(
        big["codes"],
        json!([200]),
        "every chunk answered 200: {big}"
    );
    assert_eq!(big["report"], "000 200 OK", "{big}");
    let sent = std::fs::read(dir.path().join("big.cpim")).unwrap();
    let got = alice.event(T, message_event);
    assert_eq!(got["content"].as_str().unwrap().len(), sent.len());
    assert!(
        got["content"].as_str().unwrap().as_bytes() == &sent[..],
        "200 KiB CPIM differs"
    );
    // A malformed frame gets 400 and the session goes on; a connection dropped mid-chunk
    // ends it: BYE to the endpoint, `terminated` to the client, nothing left.
    assert_eq!(ep.step("malformed")["code"], 400);
    ep.step("drop-mid");
    let t = alice.event(T, state_of("ep-1", "terminated"));
    assert_eq!(t["reason"], "MSRP connection lost", "{t}");
    assert_eq!(ep.step("wait-bye")["bye"], true);
    ep.wait("RESULT");
    let m = metrics(&gw);
    assert!(
        metric(&m, "sylk_msrp_errors_total", "kind=\"malformed\"").unwrap() >= 1.0,
        "{m}"
    );
    // The same drop, in the family of every listener's malformed input.
    assert!(
        metric(&m, "sylk_dropped_inputs_total", "kind=\"msrp_malformed\"").unwrap() >= 1.0,
        "{m}"
    );
    wait_no_chat(&gw);
}

#[test]
fn an_rfc_4975_offerer_without_setup_connects_to_the_gateways_listener() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam, "");
    let mut bob = chat_client(&gw, &kam, "bob");
    let proxy = kam.sip_addr().to_string();
    let ha1 = kam.ha1("carol");
    let mut ep = Endpoint::start(&[
        "uac",
        "--proxy",
        &proxy,
        "--user",
        "carol",
        "--ha1",
        &ha1,
        "--call",
        "bob",
        "--script",
        "bind,send:hello from an RFC 4975 endpoint,recv:1,bye",
    ]);
    let incoming = bob.event(T, |v| v["event"] == "incoming-session");
    assert_eq!(incoming["media"], json!(["chat"]));
    let session = incoming["session"].as_str().unwrap().to_owned();
    bob.ack(json!({"sylkrtc":"session-answer","session":session}));
    // No a=setup in the offer: the offerer connects (RFC 4975 section 5.4), we listen.
    assert_eq!(ep.wait("EVENT answered"), "setup=passive");
    assert_eq!(ep.step("bind")["code"], 200);
    bob.event(T, state_of(&session, "established"));
    let got = bob.event(T, message_event);
    assert!(got["content"]
        .as_str()
        .unwrap()
        .ends_with("hello from an RFC 4975 endpoint"));
    assert_eq!(got["sender"]["uri"], "carol@example.test");
    assert_eq!(ep.step("send")["report"], "000 200 OK");
    say(&mut bob, &session, "b1", "text/plain", "hi carol");
    let recv = ep.step("recv");
    assert!(
        recv["messages"][0]["text"]
            .as_str()
            .unwrap()
            .ends_with("hi carol"),
        "{recv}"
    );
    bob.event(T, disposition("b1", "delivered"));
    assert_eq!(ep.step("bye")["code"], 200);
    let t = bob.event(T, state_of(&session, "terminated"));
    assert_eq!(t["reason"], "200 BYE received");
    wait_no_chat(&gw);
}

/// The chat's `message` events a client's RESULT lists, as (sender, text after the CPIM).
fn chat_received(result: &Value) -> Vec<(String, String)> {
    result["chat"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "message")
        .map(|e| {
            let cpim = e["content"].as_str().unwrap();
            let text = cpim.rsplit("\r\n\r\n").next().unwrap().to_owned();
            (e["sender"]["uri"].as_str().unwrap().to_owned(), text)
        })
        .collect()
}

#[test]
fn chat_beside_audio_in_one_session_between_two_webrtc_clients() {
    use common::client::{run_sylkrtc_client, AnsweringClient};
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam, "");
    // alice (aiortc, 880 Hz) answers; bob (aiortc, 440 Hz) calls with audio and chat.
    let alice = AnsweringClient::start(
        &gw,
        &kam.ha1("alice"),
        &[
            "--chat",
            "hi bob, alice here",
            "--hz",
            "880",
            "--seconds",
            "6",
        ],
    );
    let bob_ha1 = kam.ha1("bob");
    let ws = gw.ws_url();
    let (_, bob) = run_sylkrtc_client(&[
        "call",
        "--ws",
        &ws,
        "--account",
        "bob@example.test",
        "--ha1",
        &bob_ha1,
        "--to",
        "alice@example.test",
        "--chat",
        "hi alice, bob here",
        "--seconds",
        "4",
    ]);
    let alice = alice.result();
    // One INVITE dialog carries both: alice was offered audio and chat, with an SDP.
    assert_eq!(alice["media"], json!(["audio", "chat"]), "{alice}");
    for (who, r, hz) in [("bob", &bob, 880.0), ("alice", &alice, 440.0)] {
        let frames = r["frames"].as_u64().unwrap();
        let freq = r["freq"].as_f64().unwrap();
        assert!(frames >= 100, "{who} got {frames} audio frames: {r}");
        assert!((freq - hz).abs() < 60.0, "{who} heard {freq} Hz: {r}");
    }
    assert_eq!(
        chat_received(&bob),
        [(
            "alice@example.test".to_owned(),
            "hi bob, alice here".to_owned()
        )],
        "{bob}"
    );
    assert_eq!(
        chat_received(&alice),
        [(
            "bob@example.test".to_owned(),
            "hi alice, bob here".to_owned()
        )],
        "{alice}"
    );
    for r in [&bob, &alice] {
        assert!(
            r["chat"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| { e["event"] == "disposition-notification" && e["state"] == "delivered" }),
            "{r}"
        );
    }
    wait_no_chat(&gw);
}

#[test]
fn chat_beside_audio_survives_hold_and_unhold_re_invites() {
    use common::client::{run_sylkrtc_client, AnsweringClient};
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam, "");
    // alice answers every `update` `received`; bob holds and unholds by `session-update`,
    // then chats again: each re-INVITE (and its answer) carries the m=message line where
    // the INVITE had it, so the MSRP connection goes on through both.
    let alice = AnsweringClient::start(
        &gw,
        &kam.ha1("alice"),
        &[
            "--chat",
            "hi bob",
            "--auto-answer-updates",
            "--seconds",
            "30",
        ],
    );
    let bob_ha1 = kam.ha1("bob");
    let ws = gw.ws_url();
    let steps = json!([{"update":"hold"},{"update":"unhold"},{"say":"after the updates"},
                       {"measure":1}])
    .to_string();
    let (_, bob) = run_sylkrtc_client(&[
        "call",
        "--ws",
        &ws,
        "--account",
        "bob@example.test",
        "--ha1",
        &bob_ha1,
        "--to",
        "alice@example.test",
        "--chat",
        "before the updates",
        "--seconds",
        "2",
        "--steps",
        &steps,
    ]);
    let alice = alice.result();
    assert_eq!(alice["media"], json!(["audio", "chat"]), "{alice}");
    let states: Vec<&Value> = bob["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.get("update").is_some())
        .map(|s| &s["state"])
        .collect();
    assert_eq!(states, [&json!("accepted"), &json!("accepted")], "{bob}");
    let from_bob: Vec<String> = chat_received(&alice)
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    assert_eq!(
        from_bob,
        ["before the updates", "after the updates"],
        "{alice}"
    );
    let delivered = bob["chat"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "disposition-notification" && e["state"] == "delivered")
        .count();
    assert_eq!(delivered, 2, "{bob}");
    wait_no_chat(&gw);
}

/// The `chat` events (our extension: the chat of a call is over) a client's RESULT lists.
fn chat_state_events(result: &Value) -> Vec<Value> {
    result["chat"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "chat")
        .cloned()
        .collect()
}

/// What a client's steps measured after its `chat` event: (frames, Hz).
fn audio_after_chat(result: &Value) -> (u64, f64) {
    let steps = result["steps"].as_array().unwrap();
    assert_eq!(steps[0]["wait"], "chat", "{result}");
    (
        steps[1]["frames"].as_u64().unwrap(),
        steps[1]["freq"].as_f64().unwrap(),
    )
}

#[test]
fn a_relay_gone_mid_call_fails_the_chat_with_an_event_and_the_audio_goes_on() {
    use common::client::{run_sylkrtc_client, AnsweringClient};
    let kam = Kamailio::start(KamailioOpts::default());
    let mut relay = KamailioMsrp::start();
    let gw = gateway_via(
        &kam,
        &format!("[msrp]\nlisten = \"off\"\nrelay = \"{}\"\n", relay.uri()),
    );
    // Both wait (30 s at most) for the `chat` event, then measure the audio of the call
    // that goes on; bob hangs up after his measure.
    let steps =
        |seconds: u32| json!([{"wait":"chat","timeout":30},{"measure":seconds}]).to_string();
    let alice_steps = steps(3);
    // alice answers at once, whether or not her side's relay AUTH is done: the 200 waits
    // for it.
    let alice = AnsweringClient::start(
        &gw,
        &kam.ha1("alice"),
        &[
            "--chat",
            "hi bob",
            "--hz",
            "880",
            "--seconds",
            "1",
            "--steps",
            &alice_steps,
        ],
    );
    let bob_ha1 = kam.ha1("bob");
    let ws = gw.ws_url();
    let bob_steps = steps(2);
    let bob = std::thread::spawn(move || {
        run_sylkrtc_client(&[
            "call",
            "--ws",
            &ws,
            "--account",
            "bob@example.test",
            "--ha1",
            &bob_ha1,
            "--to",
            "alice@example.test",
            "--chat",
            "hi alice",
            "--seconds",
            "1",
            "--steps",
            &bob_steps,
        ])
        .1
    });
    // Both messages went through the relay (and were reported delivered): the relay goes.
    let deadline = std::time::Instant::now() + T;
    while metric(
        &metrics(&gw),
        "sylk_chat_deliveries_total",
        "state=\"delivered\"",
    ) != Some(2.0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no deliveries: {}",
            metrics(&gw)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    relay.stop();
    let bob = bob.join().expect("bob's client");
    let alice = alice.result();
    assert_eq!(alice["media"], json!(["audio", "chat"]), "{alice}");
    for (who, r, hz) in [("bob", &bob, 880.0), ("alice", &alice, 440.0)] {
        assert_eq!(
            chat_state_events(r),
            [
                json!({"sylkrtc":"session-event","session":r["chat"][0]["session"],
                    "event":"chat","state":"failed","reason":"MSRP connection lost"})
            ],
            "{who}: {r}"
        );
        assert_eq!(chat_received(r).len(), 1, "{who}: {r}");
        // The call went on: audio at the peer's tone after the chat failed, and the
        // session ended only by the hangup.
        let (frames, freq) = audio_after_chat(r);
        assert!(
            frames >= 50,
            "{who} got {frames} frames after the chat failed: {r}"
        );
        assert!((freq - hz).abs() < 60.0, "{who} heard {freq} Hz: {r}");
        let states: Vec<&str> = r["states"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(states.last(), Some(&"terminated"), "{who}: {r}");
        assert_eq!(
            states.iter().filter(|s| **s == "terminated").count(),
            1,
            "{who}: {r}"
        );
    }
    assert_eq!(
        metric(&metrics(&gw), "sylk_chat_failures_total", ""),
        Some(2.0)
    );
    wait_no_chat(&gw);
}

#[test]
fn msrps_over_tls_to_an_independent_endpoint() {
    let kam = Kamailio::start(KamailioOpts::default());
    let certs = concat!(env!("CARGO_MANIFEST_DIR"), "/certs");
    // The endpoint's certificate is the dev one; the gateway verifies it as SIP TLS does.
    let gw = Gateway::start(
        &format!(
            "[sip]\noutbound_proxy = \"sip:{};transport=udp\"\ntls_ca_file = \"{certs}/localhost.crt\"\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\
             [msrp]\ntls = true\ntls_listen = \"127.0.0.1:0\"\n",
            kam.sip_addr()
        ),
        &[],
    );
    let proxy = kam.sip_addr().to_string();
    let ha1 = kam.ha1("carol");
    let (cert, key) = (
        format!("{certs}/localhost.crt"),
        format!("{certs}/localhost.key"),
    );
    let mut ep = Endpoint::start(&[
        "uas",
        "--proxy",
        &proxy,
        "--user",
        "carol",
        "--ha1",
        &ha1,
        "--tls",
        &cert,
        &key,
        "--script",
        "recv:1,send:hello over TLS,bye",
    ]);
    ep.wait("READY");
    let mut alice = chat_client(&gw, &kam, "alice");
    alice.ack(
        json!({"sylkrtc":"session-create","account":"alice@example.test",
                     "session":"tls-1","uri":"carol@example.test","media":["chat"]}),
    );
    // msrp.tls: the offer is TCP/TLS/MSRP with an msrps:// path on the TLS listener.
    let offered = ep.wait("EVENT offered");
    assert!(
        offered.starts_with("TCP/TLS/MSRP msrps://127.0.0.1:"),
        "{offered}"
    );
    assert!(ep.wait("EVENT tls").starts_with("TLSv1."));
    alice.event(T, state_of("tls-1", "established"));
    say(
        &mut alice,
        "tls-1",
        "t1",
        "text/plain",
        "hello carol, encrypted",
    );
    let recv = ep.step("recv");
    let text = recv["messages"][0]["text"].as_str().unwrap();
    assert!(text.ends_with("\r\n\r\nhello carol, encrypted"), "{recv}");
    alice.event(T, disposition("t1", "delivered"));
    let got = alice.event(T, message_event);
    assert!(
        got["content"].as_str().unwrap().ends_with("hello over TLS"),
        "{got}"
    );
    assert_eq!(ep.step("send")["report"], "000 200 OK");
    assert_eq!(ep.step("bye")["code"], 200);
    let t = alice.event(T, state_of("tls-1", "terminated"));
    assert_eq!(t["reason"], "200 BYE received", "{t}");
    wait_no_chat(&gw);
}

#[test]
fn a_websocket_drop_mid_chat_ends_the_session_on_both_sides() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam, "");
    let mut alice = chat_client(&gw, &kam, "alice");
    let mut bob = chat_client(&gw, &kam, "bob");
    let (a, b) = start_chat(&mut alice, "alice", &mut bob, "bob", "drop-1");
    say(&mut alice, &a, "d1", "text/plain", "about to vanish");
    bob.event(T, message_event);
    // alice's WebSocket goes away with its chat up: BYE to bob, both MSRP ends closed.
    drop(alice);
    let t = bob.event(T, state_of(&b, "terminated"));
    assert_eq!(t["reason"], "200 BYE received", "{t}");
    wait_no_chat(&gw);
}

#[test]
fn a_flooding_peer_is_cut_off_and_other_chats_go_on() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam, "");
    let proxy = kam.sip_addr().to_string();
    let ha1 = kam.ha1("carol");
    let mut ep = Endpoint::start(&[
        "uas",
        "--proxy",
        &proxy,
        "--user",
        "carol",
        "--ha1",
        &ha1,
        "--script",
        "recv:1,flood:6000,wait-bye",
    ]);
    ep.wait("READY");
    let mut alice = chat_client(&gw, &kam, "alice");
    let mut bob = chat_client(&gw, &kam, "bob");
    let (a, b) = start_chat(&mut alice, "alice", &mut bob, "bob", "calm-1");
    alice.ack(
        json!({"sylkrtc":"session-create","account":"alice@example.test",
                     "session":"flood-1","uri":"carol@example.test","media":["chat"]}),
    );
    alice.event(T, state_of("flood-1", "established"));
    say(
        &mut alice,
        "flood-1",
        "f0",
        "text/plain",
        "before the flood",
    );
    ep.step("recv");
    // 6,000 frames at once is over msrp's 2,000 per second: that connection is cut off,
    // its session ends with BYE, and the other chat of the same account goes on.
    let flood = ep.step("flood");
    assert_eq!(flood["closed"], true, "{flood}");
    let t = alice.event(T, state_of("flood-1", "terminated"));
    assert_eq!(t["reason"], "MSRP peer flooding", "{t}");
    assert_eq!(ep.step("wait-bye")["bye"], true);
    chat_both_ways(&mut alice, "alice", &a, &mut bob, "bob", &b);
    let m = metrics(&gw);
    assert!(
        metric(&m, "sylk_msrp_errors_total", "kind=\"cut_off\"").unwrap() >= 1.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "sylk_dropped_inputs_total",
            "kind=\"msrp_stream_closed\""
        )
        .unwrap()
            >= 1.0,
        "{m}"
    );
    alice.ack(json!({"sylkrtc":"session-terminate","session":a}));
    bob.event(T, state_of(&b, "terminated"));
    wait_no_chat(&gw);
}

/// A connection with `user` added (taking chat, reporting `X-` headers) and registered.
fn chat_client_with_prefix(gw: &Gateway, kam: &Kamailio, user: &str) -> Conn {
    let mut c = Conn::open(gw.ws);
    let aor = format!("{user}@example.test");
    c.ack(
        json!({"sylkrtc":"account-add","account":aor,"password":kam.ha1(user),"chat":true,
                 "incoming_header_prefixes":["X-"]}),
    );
    c.ack(json!({"sylkrtc":"account-register","account":aor}));
    let state = c.event(T, |v| {
        v["event"] == "registration-state" && v["state"] != "registering"
    });
    assert_eq!(state["state"], "registered", "{state}");
    c
}

#[test]
fn call_features_on_a_chat_only_session_headers_pass_update_and_dtmf_are_refused() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway_via(&kam, "");
    let mut alice = chat_client_with_prefix(&gw, &kam, "alice");
    let mut bob = chat_client_with_prefix(&gw, &kam, "bob");
    // The client's headers go into the chat's INVITE and 200, and come out as the other
    // side's `incoming-session` and `accepted` headers, as for calls.
    alice.ack(
        json!({"sylkrtc":"session-create","account":"alice@example.test",
                     "session":"chat-h","uri":"bob@example.test","media":["chat"],
                     "headers":[{"name":"X-Topic","value":"lunch"}]}),
    );
    let incoming = bob.event(T, |v| v["event"] == "incoming-session");
    assert_eq!(incoming["media"], json!(["chat"]), "{incoming}");
    assert_eq!(incoming["headers"]["X-Topic"], "lunch", "{incoming}");
    let b = incoming["session"].as_str().unwrap().to_owned();
    bob.ack(json!({"sylkrtc":"session-answer","session":b,
                   "headers":[{"name":"X-Answer","value":"yes"}]}));
    let accepted = alice.event(T, state_of("chat-h", "accepted"));
    assert_eq!(accepted["headers"]["X-Answer"], "yes", "{accepted}");
    alice.event(T, state_of("chat-h", "established"));
    bob.event(T, state_of(&b, "established"));
    // Nothing to renegotiate or send key presses in: clear errors, the chat goes on.
    let err = alice.error(json!({"sylkrtc":"session-update","session":"chat-h","sdp":"v=0\r\n"}));
    assert!(err.contains("is chat only"), "{err}");
    let err = bob.error(json!({"sylkrtc":"session-dtmf-info","session":b,"digit":"1"}));
    assert!(err.contains("is chat only"), "{err}");
    chat_both_ways(&mut alice, "alice", "chat-h", &mut bob, "bob", &b);
    alice.ack(json!({"sylkrtc":"session-terminate","session":"chat-h"}));
    alice.event(T, state_of("chat-h", "terminated"));
    bob.event(T, state_of(&b, "terminated"));
    wait_no_chat(&gw);
}
