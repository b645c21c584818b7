//! Call signalling scenarios against real SIPp and Kamailio on 127.0.0.1, each asserting the
//! sylkRTC events the client gets and what the SIP peer saw: busy, no answer cancelled by the
//! client, remote BYE, early media, hold/unhold re-INVITEs, a WebSocket drop mid-call, a
//! caller CANCEL (missed-session), an attended transfer, and request errors. The browser's offer is a real Chrome
//! offer; media is not needed for signalling (the end-to-end audio tests are in call_e2e.rs).

mod common;

use std::time::Duration;

use common::peers::{free_udp_range, Kamailio, KamailioOpts, Sipp, SippOpts};
use common::*;
use serde_json::{json, Value};

const CHROME_OFFER: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/media/tests/fixtures/sdp/chrome_offer.sdp"
));

/// A gateway with its own media port range; `sip` and `media` are extra keys of those tables.
fn gateway_with(sip: &str, media: &str) -> Gateway {
    let base = free_udp_range(40);
    Gateway::start(
        &format!(
            "[sip]\n{sip}\n[media]\n{media}\nrtp_ports = \"{base}-{}\"\n",
            base + 39
        ),
        &[],
    )
}

fn gateway(sip: &str) -> Gateway {
    gateway_with(sip, "")
}

/// A v2 client with alice added.
fn client(gw: &Gateway, ha1: &str) -> Client {
    let mut ws = connect_v2(gw);
    let add = json!({"sylkrtc":"account-add","transaction":"a","account":"alice@example.test","password":ha1});
    assert_eq!(call(&mut ws, add)["sylkrtc"], "ack");
    ws
}

fn create_request(session: &str, uri: &str) -> Value {
    json!({"sylkrtc":"session-create","transaction":format!("c-{session}-{}", rand_suffix()),
           "account":"alice@example.test","session":session,"uri":uri,"sdp":CHROME_OFFER})
}

/// Distinct transaction ids for repeated requests.
fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn create(ws: &mut Client, session: &str, uri: &str) -> Value {
    call(ws, create_request(session, uri))
}

/// Session states until one of `until` (inclusive).
fn states_until(ws: &mut Client, until: &[&str]) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let e = recv_json(ws);
        if e["sylkrtc"] != "session-event" {
            continue;
        }
        let done = until.iter().any(|u| e["state"] == *u);
        got.push(e);
        if done {
            return got;
        }
    }
}

fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["state"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn busy_callee_terminates_with_486() {
    let gw = gateway("");
    let uas = Sipp::uas("uas_busy.xml", SippOpts::default());
    let mut ws = client(&gw, HA1);
    assert_eq!(
        create(&mut ws, "s1", &format!("bob@{}", uas.sip_addr()))["sylkrtc"],
        "ack"
    );
    let events = states_until(&mut ws, &["terminated"]);
    assert_eq!(
        events.last().unwrap()["reason"],
        "486 Busy Here",
        "{events:#?}"
    );
    // The transaction layer ACKed the 486 (RFC 3261 17.1.1.3).
    uas.wait_for_sequence(&["SIP/2.0 486", "ACK sip:"], Duration::from_secs(5));
    // The session is gone: a late trickle is told so.
    let t = call(
        &mut ws,
        json!({"sylkrtc":"session-trickle","transaction":"t","session":"s1","candidates":[]}),
    );
    assert_eq!(t["error"], "Session s1 is terminated");
}

#[test]
fn client_hangs_up_a_ringing_call_with_cancel() {
    let gw = gateway("");
    let uas = Sipp::uas("uas_ring_forever.xml", SippOpts::default());
    let mut ws = client(&gw, HA1);
    create(&mut ws, "s2", &format!("bob@{}", uas.sip_addr()));
    let events = states_until(&mut ws, &["ringing"]);
    assert_eq!(names(&events), ["progress", "ringing"]);
    let t = call(
        &mut ws,
        json!({"sylkrtc":"session-terminate","transaction":"x","session":"s2"}),
    );
    assert_eq!(t["sylkrtc"], "ack");
    let events = states_until(&mut ws, &["terminated"]);
    assert_eq!(names(&events), ["terminated"]);
    uas.wait_for_sequence(&["CANCEL sip:", "SIP/2.0 487"], Duration::from_secs(5));
}

#[test]
fn remote_bye_terminates_with_a_clear_reason() {
    let gw = gateway("");
    let uas = Sipp::uas(
        "uas_bye.xml",
        SippOpts {
            pause: Some(Duration::from_millis(500)),
            ..SippOpts::default()
        },
    );
    let mut ws = client(&gw, HA1);
    create(&mut ws, "s3", &format!("bob@{}", uas.sip_addr()));
    let events = states_until(&mut ws, &["terminated"]);
    assert_eq!(
        names(&events),
        ["progress", "ringing", "accepted", "terminated"]
    );
    assert!(events[2]["sdp"]
        .as_str()
        .unwrap()
        .contains("a=end-of-candidates"));
    assert_eq!(events[3]["reason"], "200 BYE received");
    uas.wait_for_sequence(&["BYE sip:", "SIP/2.0 200"], Duration::from_secs(5));
}

#[test]
fn early_media_carries_the_answer_and_accepted_does_not() {
    let gw = gateway("");
    let uas = Sipp::uas(
        "uas_early_media.xml",
        SippOpts {
            pause: Some(Duration::from_millis(300)),
            ..SippOpts::default()
        },
    );
    let mut ws = client(&gw, HA1);
    create(&mut ws, "s4", &format!("bob@{}", uas.sip_addr()));
    let events = states_until(&mut ws, &["accepted"]);
    let early = events
        .iter()
        .find(|e| e["state"] == "early-media")
        .expect("early-media");
    let sdp = early["sdp"].as_str().unwrap();
    assert!(
        sdp.contains("a=candidate:") && sdp.contains("a=end-of-candidates"),
        "{sdp}"
    );
    assert!(early["call_id"].as_str().is_some_and(|c| !c.is_empty()));
    let accepted = events.last().unwrap();
    assert!(
        accepted.get("sdp").is_none(),
        "accepted after early media has no SDP: {accepted}"
    );
    call(
        &mut ws,
        json!({"sylkrtc":"session-terminate","transaction":"x","session":"s4"}),
    );
    states_until(&mut ws, &["terminated"]);
    uas.wait_for_message("BYE sip:", Duration::from_secs(5));
}

/// What Chrome answers to the gateway's re-offer `offer` (its first codec per line, the
/// direction answering sendrecv, the DTLS role kept).
fn chrome_reanswer(offer: &str) -> String {
    let sdp = media::sdp::SessionDescription::parse(offer.as_bytes()).unwrap();
    let mut s =
        String::from("v=0\r\no=- 4611731400430051336 3 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
    let mids: Vec<&str> = sdp
        .media
        .iter()
        .filter(|m| m.port != 0)
        .filter_map(|m| m.mid())
        .collect();
    s.push_str(&format!("a=group:BUNDLE {}\r\n", mids.join(" ")));
    for (i, m) in sdp.media.iter().enumerate() {
        let codec = m.codecs().into_iter().next().unwrap();
        let (mid, pt) = (m.mid().unwrap_or("0"), codec.payload_type);
        if m.port == 0 {
            let kind = m.kind.as_str();
            s.push_str(&format!(
                "m={kind} 0 UDP/TLS/RTP/SAVPF {pt}\r\na=mid:{mid}\r\n"
            ));
            continue;
        }
        let setup = if m.setup() == Some("active") {
            "passive"
        } else {
            "active"
        };
        let direction = sdp
            .media_direction(i)
            .answer_to(media::sdp::MediaDirection::SendRecv);
        s.push_str(&format!(
            "m={} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\n\
             a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
             a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F\r\n\
             a=setup:{setup}\r\na=rtcp-mux\r\na=rtpmap:{pt} {}/{}\r\na={}\r\n",
            m.kind.as_str(),
            codec.name,
            codec.clock_rate,
            direction.as_str(),
        ));
    }
    s
}

#[test]
fn hold_and_unhold_reinvites_are_answered_by_the_browser_without_dropping_the_call() {
    let gw = gateway("");
    let uas = Sipp::uas(
        "uas_hold.xml",
        SippOpts {
            pause: Some(Duration::from_millis(300)),
            ..SippOpts::default()
        },
    );
    let mut ws = client(&gw, HA1);
    create(&mut ws, "s5", &format!("bob@{}", uas.sip_addr()));
    states_until(&mut ws, &["accepted"]);
    // Each re-INVITE changes the direction: the browser is asked (`update` `received`) and
    // its answer goes in the 200.
    for (n, offered) in ["a=sendonly", "a=sendrecv"].iter().enumerate() {
        let received = loop {
            let e = recv_json(&mut ws);
            if e["event"] == "update" {
                break e;
            }
        };
        assert_eq!(received["state"], "received", "{received}");
        let offer = received["sdp"].as_str().unwrap();
        assert!(offer.contains(offered), "{offer}");
        let answer = chrome_reanswer(offer);
        let up = json!({"sylkrtc":"session-update","transaction":format!("u{n}"),
                        "session":"s5","sdp":answer});
        assert_eq!(call(&mut ws, up)["sylkrtc"], "ack");
    }
    // Both re-INVITEs got a 200 whose SDP mirrors the direction (RFC 3264 section 6.1).
    let trace = uas.wait_for_sequence(
        &[
            "a=sendonly",
            "SIP/2.0 200",
            "a=recvonly",
            "a=sendrecv",
            "SIP/2.0 200",
            "a=sendrecv",
        ],
        Duration::from_secs(8),
    );
    assert!(!trace.contains("BYE sip:"), "the call was dropped: {trace}");
    call(
        &mut ws,
        json!({"sylkrtc":"session-terminate","transaction":"x","session":"s5"}),
    );
    let events = states_until(&mut ws, &["terminated"]);
    assert_eq!(events.last().unwrap()["reason"], "200 Local hangup");
    uas.wait_for_message("BYE sip:", Duration::from_secs(5));
}

#[test]
fn websocket_drop_mid_call_sends_bye() {
    let gw = gateway("");
    let uas = Sipp::uas("uas_echo.xml", SippOpts::default());
    let mut ws = client(&gw, HA1);
    create(&mut ws, "s6", &format!("bob@{}", uas.sip_addr()));
    states_until(&mut ws, &["accepted"]);
    drop(ws);
    uas.wait_for_sequence(&["BYE sip:", "SIP/2.0 200"], Duration::from_secs(5));
}

#[test]
fn caller_cancel_is_terminated_and_missed() {
    let kam = Kamailio::start(KamailioOpts::default());
    let gw = gateway(&format!("outbound_proxy = \"sip:{}\"", kam.sip_addr()));
    let mut ws = client(&gw, &kam.ha1("alice"));
    call(
        &mut ws,
        json!({"sylkrtc":"account-register","transaction":"r","account":"alice@example.test"}),
    );
    while recv_json(&mut ws)["state"] != "registered" {}
    let mut uac = Sipp::uac(
        "uac_cancel.xml",
        kam.sip_addr(),
        SippOpts::call("bob", "alice"),
    );
    let incoming = recv_json(&mut ws);
    assert_eq!(incoming["event"], "incoming-session", "{incoming}");
    assert_eq!(incoming["originator"]["uri"], "bob@example.test");
    let sdp = incoming["sdp"].as_str().unwrap();
    assert!(
        sdp.contains("a=sendrecv") && sdp.contains("a=end-of-candidates"),
        "{sdp}"
    );
    let session = incoming["session"].as_str().unwrap().to_owned();
    let terminated = recv_json(&mut ws);
    assert_eq!(terminated["session"], session.as_str());
    assert_eq!(terminated["state"], "terminated");
    assert_eq!(terminated["reason"], "487 Request Terminated");
    let missed = recv_json(&mut ws);
    assert_eq!(
        missed,
        json!({"sylkrtc":"account-event","account":"alice@example.test","event":"missed-session",
               "originator":{"uri":"bob@example.test","display_name":null}})
    );
    assert_eq!(
        uac.wait_exit(Duration::from_secs(10)),
        0,
        "{}",
        uac.messages()
    );
}

/// Sends a request and returns its reply, skipping events that arrive in between.
fn reply_to(ws: &mut Client, request: Value) -> Value {
    let tx = request["transaction"].clone();
    send_json(ws, &request);
    loop {
        let m = recv_json(ws);
        if m["transaction"] == tx {
            return m;
        }
    }
}

#[test]
fn session_request_errors() {
    let gw = gateway_with("", "max_calls_per_connection = 1");
    let uas = Sipp::uas("uas_ring_forever.xml", SippOpts::default());
    let mut ws = client(&gw, HA1);
    let target = format!("bob@{}", uas.sip_addr());
    assert_eq!(create(&mut ws, "dup", &target)["sylkrtc"], "ack");
    assert_eq!(
        reply_to(&mut ws, create_request("dup", &target))["error"],
        "Session ID dup already in use"
    );
    assert_eq!(
        reply_to(&mut ws, create_request("other", &target))["error"],
        "Too many sessions on this connection (at most 1)"
    );
    let bad = reply_to(
        &mut ws,
        json!({"sylkrtc":"session-create","transaction":"b","account":"alice@example.test",
               "session":"bad","uri":"not a uri","sdp":CHROME_OFFER}),
    );
    assert_eq!(bad["error"], "invalid SIP URI: not a uri");
    let unknown = reply_to(
        &mut ws,
        json!({"sylkrtc":"session-answer","transaction":"u","session":"nope","sdp":"v=0"}),
    );
    assert_eq!(unknown["error"], "Unknown session nope");
    let outgoing = reply_to(
        &mut ws,
        json!({"sylkrtc":"session-answer","transaction":"o","session":"dup","sdp":"v=0"}),
    );
    assert_eq!(outgoing["error"], "Cannot answer outgoing session dup");
}

/// Issue 16: a media port held by another process (seen with `media.rtp_ports` inside the
/// kernel's ephemeral range) failed the call with `503 Media ports unavailable`. The next
/// free pair is used instead.
#[test]
fn a_media_port_held_elsewhere_is_skipped() {
    let base = free_udp_range(8);
    // Another process's sockets on the first two pairs (RTP of one, RTCP of the other).
    let _held = [
        std::net::UdpSocket::bind(("127.0.0.1", base)).unwrap(),
        std::net::UdpSocket::bind(("127.0.0.1", base + 3)).unwrap(),
    ];
    let gw = Gateway::start(
        &format!("[media]\nrtp_ports = \"{base}-{}\"\n", base + 7),
        &[],
    );
    let uas = Sipp::uas("uas_echo.xml", SippOpts::default());
    let mut ws = client(&gw, HA1);
    create(&mut ws, "p1", &format!("bob@{}", uas.sip_addr()));
    let events = states_until(&mut ws, &["accepted", "terminated"]);
    assert_eq!(
        events.last().unwrap()["state"],
        "accepted",
        "the call got the free pairs: {events:?}"
    );
    call(
        &mut ws,
        json!({"sylkrtc":"session-terminate","transaction":"x","session":"p1"}),
    );
    states_until(&mut ws, &["terminated"]);
}

/// The `transfer` states of `session` and its end, in order, until it is terminated.
fn transfer_states(ws: &mut Client, session: &str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let e = recv_json(ws);
        if e["sylkrtc"] != "session-event" || e["session"] != session {
            continue;
        }
        if e["event"] == "transfer" {
            let data = e.get("data").unwrap_or(&e);
            got.push(data["state"].as_str().unwrap_or("").to_owned());
        } else if e["state"] == "terminated" {
            got.push(format!("terminated:{}", e["reason"].as_str().unwrap_or("")));
            return got;
        }
    }
}

#[test]
fn attended_transfer_refers_the_first_party_to_the_second_with_replaces() {
    // RFC 5589 section 7: alice talks to bob, consults carol, then transfers bob to carol;
    // bob's REFER names carol's dialog in Replaces (RFC 3891) so carol's side takes over.
    let gw = gateway("");
    let bob = Sipp::uas("uas_refer_attended.xml", SippOpts::default());
    let carol = Sipp::uas("uas_echo.xml", SippOpts::default());
    let mut ws = client(&gw, HA1);
    create(&mut ws, "to-bob", &format!("bob@{}", bob.sip_addr()));
    states_until(&mut ws, &["accepted"]);
    create(&mut ws, "to-carol", &format!("carol@{}", carol.sip_addr()));
    states_until(&mut ws, &["accepted"]);
    let itself = json!({"sylkrtc":"session-transfer","transaction":"t0","session":"to-bob",
                        "replaces":"to-bob"});
    assert_eq!(
        call(&mut ws, itself)["error"],
        "Session to-bob cannot replace itself"
    );
    let unknown = json!({"sylkrtc":"session-transfer","transaction":"t1","session":"to-bob",
                         "replaces":"nope"});
    assert_eq!(call(&mut ws, unknown)["error"], "Unknown session nope");
    let transfer = json!({"sylkrtc":"session-transfer","transaction":"t2","session":"to-bob",
                          "replaces":"to-carol"});
    assert_eq!(call(&mut ws, transfer)["sylkrtc"], "ack");
    assert_eq!(
        transfer_states(&mut ws, "to-bob"),
        [
            "trying",
            "trying",
            "accepted",
            "terminated:200 Call transferred"
        ]
    );
    // The Replaces bob got names carol's dialog as carol knows it: her tag as to-tag.
    let refer = bob.wait_for_message("Refer-To:", Duration::from_secs(5));
    let refer_to = refer
        .lines()
        .find(|l| l.starts_with("Refer-To:"))
        .expect("Refer-To")
        .to_owned();
    let trace = carol.wait_for_message("SIP/2.0 200 OK", Duration::from_secs(5));
    let ok = &trace[trace.find("SIP/2.0 200 OK").expect("the 200")..];
    let header = |name: &str| {
        ok.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| panic!("{name} in {ok}"))
    };
    let tag = |value: &str| value.split(";tag=").nth(1).unwrap_or("").to_owned();
    let escaped = |s: &str| s.replace('@', "%40");
    let expected = format!(
        "?Replaces={}%3Bto-tag%3D{}%3Bfrom-tag%3D{}>",
        escaped(&header("Call-ID:")),
        tag(&header("To:")),
        tag(&header("From:")),
    );
    assert!(
        refer_to.ends_with(&expected),
        "{refer_to}\nwanted {expected}"
    );
    assert!(
        refer_to.contains(&carol.sip_addr().to_string()),
        "{refer_to}"
    );
    // The consultation call is still up until carol's side ends it.
    let end = json!({"sylkrtc":"session-terminate","transaction":"t3","session":"to-carol"});
    assert_eq!(call(&mut ws, end)["sylkrtc"], "ack");
    carol.wait_for_sequence(&["BYE sip:", "SIP/2.0 200"], Duration::from_secs(5));
}
