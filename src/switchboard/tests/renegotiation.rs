//! The gateway's side of running calls, with virtual time and a scripted SIP peer: session
//! updates both ways (and their races: glare, a BYE crossing our re-INVITE, no browser
//! answer), DTMF by INFO both ways, headers, transfer by REFER both ways, push tokens.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sip::msg::{Method, ResponseBuilder, SipRequest, SipResponse};

use super::*;

const PEER: &str = "127.0.0.1:5099";

pub(super) fn peer() -> std::net::SocketAddr {
    PEER.parse().unwrap()
}

/// alice's call to bob answered (200 with SIPp's answer, ACKed): returns the client and the
/// INVITE.
fn answered_call(g: &mut Switchboard, t0: Instant) -> (ClientId, SipRequest) {
    let (c, invite) = outgoing_call(g, t0);
    reply(g, t0, &invite, 200, "OK", Some(SIP_ANSWER));
    let d = drain_all(g);
    assert!(states(&d).contains(&"accepted".to_owned()), "{:?}", d.texts);
    (c, invite)
}

pub(super) fn events(d: &Drained, name: &str) -> Vec<Value> {
    d.texts
        .iter()
        .filter(|e| e["event"] == name)
        .cloned()
        .collect()
}

pub(super) fn reply_of(d: &Drained, transaction: &str) -> Value {
    d.texts
        .iter()
        .find(|e| e["transaction"] == transaction)
        .cloned()
        .unwrap_or_else(|| panic!("no reply to {transaction}: {:?}", d.texts))
}

pub(super) fn requests_of(d: &Drained, method: Method) -> Vec<SipRequest> {
    sip_requests(d)
        .into_iter()
        .filter(|r| *r.method() == method)
        .collect()
}

pub(super) fn responses_of(d: &Drained) -> Vec<SipResponse> {
    d.sip
        .iter()
        .filter_map(|(_, m)| match m {
            SipMessage::Response(r) => Some(r.clone()),
            SipMessage::Request(_) => None,
        })
        .collect()
}

/// A request from bob inside the dialog of our INVITE `invite` (its 200 had tag `uas`).
pub(super) fn from_bob(
    invite: &SipRequest,
    method: &str,
    cseq: u32,
    extra: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> String {
    let mut s = format!(
        "{method} sip:alice@127.0.0.1:5070 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {PEER};branch=z9hG4bKbob{method}{cseq};rport\r\n\
         From: <sip:bob@127.0.0.1:5099>;tag=uas\r\nTo: {}\r\nCall-ID: {}\r\n\
         CSeq: {cseq} {method}\r\nContact: <sip:bob@{PEER}>\r\nMax-Forwards: 70\r\n",
        invite.from(),
        invite.call_id()
    );
    for (n, v) in extra {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    match body {
        Some((ct, b)) => s.push_str(&format!(
            "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )),
        None => s.push_str("Content-Length: 0\r\n\r\n"),
    }
    s
}

/// What a browser (Chrome, the fixture's identity) answers to our re-offer: every active
/// m-line accepted with its first codec and its direction mirrored, our DTLS role kept.
pub(super) fn chrome_reanswer(offer: &str) -> String {
    let sdp = media::sdp::SessionDescription::parse(offer.as_bytes()).unwrap();
    let mut s =
        String::from("v=0\r\no=- 4611731400430051336 3 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
    let mids: Vec<String> = sdp
        .media
        .iter()
        .filter(|m| m.port != 0)
        .filter_map(|m| m.mid().map(str::to_owned))
        .collect();
    s.push_str(&format!("a=group:BUNDLE {}\r\n", mids.join(" ")));
    for (i, m) in sdp.media.iter().enumerate() {
        let codec = m.codecs().into_iter().next().unwrap();
        let mid = m.mid().unwrap_or("0");
        if m.port == 0 {
            s.push_str(&format!(
                "m={} 0 UDP/TLS/RTP/SAVPF {}\r\na=mid:{mid}\r\n",
                m.kind.as_str(),
                codec.payload_type
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
            pt = codec.payload_type,
        ));
    }
    s
}

fn update(g: &mut Switchboard, t: Instant, c: ClientId, tx: &str, sdp: &str) {
    request(
        g,
        t,
        c,
        json!({"sylkrtc":"session-update","transaction":tx,"session":"s1","sdp":sdp}),
    );
}

#[test]
fn session_update_hold_goes_out_as_a_reinvite_and_accepted_brings_the_answer() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, invite) = answered_call(&mut g, t0);
    let hold = CHROME_OFFER.replace("a=sendrecv", "a=sendonly");
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-update","transaction":"u1","session":"s1","sdp":hold,
               "headers":[{"name":"X-Why","value":"hold"}]}),
    );
    let d = drain_all(&mut g);
    assert_eq!(reply_of(&d, "u1")["sylkrtc"], "ack");
    let re = requests_of(&d, Method::Invite).remove(0);
    assert_eq!(re.call_id(), invite.call_id());
    assert_eq!(re.header("X-Why"), Some("hold"));
    let body = String::from_utf8_lossy(re.body()).into_owned();
    assert!(body.contains("a=sendonly"), "{body}");
    assert!(events(&d, "update").is_empty(), "nothing before the answer");
    reply(
        &mut g,
        t0,
        &re,
        200,
        "OK",
        Some(&SIP_ANSWER.replace("a=sendrecv", "a=recvonly")),
    );
    let d = drain_all(&mut g);
    assert_eq!(requests_of(&d, Method::Ack).len(), 1);
    let up = events(&d, "update");
    assert_eq!(up.len(), 1, "{:?}", d.texts);
    assert_eq!(up[0]["state"], "accepted");
    let sdp = up[0]["sdp"].as_str().unwrap();
    assert!(sdp.contains("a=recvonly"), "{sdp}");
    assert!(sdp.contains("a=end-of-candidates"), "{sdp}");
}

#[test]
fn glare_491_is_retried_after_the_back_off_and_a_488_fails_the_update() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, invite) = answered_call(&mut g, t0);
    update(
        &mut g,
        t0,
        c,
        "u1",
        &CHROME_OFFER.replace("a=sendrecv", "a=inactive"),
    );
    let d = drain_all(&mut g);
    let first = requests_of(&d, Method::Invite).remove(0);
    // bob's re-INVITE crosses ours: 491 for it (RFC 3261 14.2), and bob refuses ours too.
    let crossing = from_bob(
        &invite,
        "INVITE",
        50,
        &[],
        Some(("application/sdp", SIP_ANSWER)),
    );
    g.handle_sip_datagram(t0, peer(), crossing.as_bytes());
    let d = drain_all(&mut g);
    assert!(responses_of(&d).iter().any(|r| r.status() == 491));
    reply(&mut g, t0, &first, 491, "Request Pending", None);
    let d = drain_all(&mut g);
    assert!(events(&d, "update").is_empty(), "{:?}", d.texts);
    // We own the Call-ID (RFC 3261 14.1): again after 2.1-4 s.
    let mut t = t0;
    let again = loop {
        t += Duration::from_millis(100);
        assert!(t - t0 <= Duration::from_secs(4), "no retry in 4 s");
        g.handle_timeout(t);
        if let Some(r) = requests_of(&drain_all(&mut g), Method::Invite).pop() {
            break r;
        }
    };
    assert!(t - t0 >= Duration::from_millis(2100), "{:?}", t - t0);
    assert!(again.cseq().seq > first.cseq().seq);
    reply(&mut g, t, &again, 488, "Not Acceptable Here", None);
    let d = drain_all(&mut g);
    let up = events(&d, "update");
    assert_eq!(up.len(), 1, "{:?}", d.texts);
    assert_eq!(up[0]["state"], "failed");
    assert_eq!(up[0]["reason"], "488 Not Acceptable Here");
    // The call goes on: another update is possible.
    update(&mut g, t, c, "u2", CHROME_OFFER);
    let d = drain_all(&mut g);
    assert_eq!(reply_of(&d, "u2")["sylkrtc"], "ack");
}

#[test]
fn the_peers_retry_during_our_back_off_fails_our_update_then_goes_to_the_browser() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, invite) = answered_call(&mut g, t0);
    update(
        &mut g,
        t0,
        c,
        "u1",
        &CHROME_OFFER.replace("a=sendrecv", "a=sendonly"),
    );
    let d = drain_all(&mut g);
    let first = requests_of(&d, Method::Invite).remove(0);
    reply(&mut g, t0, &first, 491, "Request Pending", None);
    drain_all(&mut g);
    // bob does not own the Call-ID: its retry (RFC 3261 14.1, 0-2 s) beats ours.
    let t = t0 + Duration::from_millis(700);
    let hold = SIP_ANSWER.replace("a=sendrecv", "a=sendonly");
    let re = from_bob(&invite, "INVITE", 60, &[], Some(("application/sdp", &hold)));
    g.handle_sip_datagram(t, peer(), re.as_bytes());
    let d = drain_all(&mut g);
    // sylkrtc.js must hear of its own update's end before it is asked to answer.
    let up = events(&d, "update");
    assert_eq!(up.len(), 2, "{:?}", d.texts);
    assert_eq!(up[0]["state"], "failed");
    assert_eq!(up[0]["reason"], "491 Request Pending");
    assert_eq!(up[1]["state"], "received");
    let answer = chrome_reanswer(up[1]["sdp"].as_str().unwrap());
    request(
        &mut g,
        t,
        c,
        json!({"sylkrtc":"session-update","transaction":"a1","session":"s1","sdp":answer}),
    );
    let d = drain_all(&mut g);
    assert!(
        responses_of(&d)
            .iter()
            .any(|r| r.status() == 200 && r.cseq().seq == 60),
        "{:?}",
        d.texts
    );
    // Our given-up re-INVITE is not sent again.
    for ms in (100..4000).step_by(100) {
        g.handle_timeout(t + Duration::from_millis(ms));
    }
    let d = drain_all(&mut g);
    assert!(requests_of(&d, Method::Invite).is_empty());
}

#[test]
fn a_bye_crossing_our_reinvite_still_gets_the_update_failed_before_terminated() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, invite) = answered_call(&mut g, t0);
    update(
        &mut g,
        t0,
        c,
        "u1",
        &CHROME_OFFER.replace("a=sendrecv", "a=sendonly"),
    );
    let d = drain_all(&mut g);
    let re = requests_of(&d, Method::Invite).remove(0);
    let bye = from_bob(&invite, "BYE", 60, &[], None);
    g.handle_sip_datagram(t0, peer(), bye.as_bytes());
    let d = drain_all(&mut g);
    let names: Vec<String> = d
        .texts
        .iter()
        .map(|e| format!("{}:{}", e["event"], e["state"]))
        .collect();
    assert_eq!(
        names,
        ["\"update\":\"failed\"", "\"state\":\"terminated\""],
        "{:?}",
        d.texts
    );
    // bob's late answer to our re-INVITE changes nothing.
    reply(
        &mut g,
        t0,
        &re,
        481,
        "Call/Transaction Does Not Exist",
        None,
    );
    let d = drain_all(&mut g);
    assert!(d.texts.is_empty(), "{:?}", d.texts);
    assert_eq!(g.gateway().call_count(), 0);
}

#[test]
fn a_changed_sip_offer_goes_to_the_browser_and_its_answer_goes_in_the_200() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, invite) = answered_call(&mut g, t0);
    let moved = SIP_ANSWER.replace("m=audio 6000", "m=audio 6002");
    let re = from_bob(
        &invite,
        "INVITE",
        70,
        &[],
        Some(("application/sdp", &moved)),
    );
    g.handle_sip_datagram(t0, peer(), re.as_bytes());
    let d = drain_all(&mut g);
    let up = events(&d, "update");
    assert_eq!(up.len(), 1, "{:?}", d.texts);
    assert_eq!(up[0]["state"], "received");
    let offer = up[0]["sdp"].as_str().unwrap();
    assert!(offer.contains("a=candidate:"), "{offer}");
    assert!(
        !responses_of(&d).iter().any(|r| r.status() == 200),
        "no 200 before the browser answers"
    );
    let answer = chrome_reanswer(offer);
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-update","transaction":"a1","session":"s1","sdp":answer}),
    );
    let d = drain_all(&mut g);
    assert_eq!(reply_of(&d, "a1")["sylkrtc"], "ack", "{:?}", d.texts);
    let ok = responses_of(&d)
        .into_iter()
        .find(|r| r.status() == 200 && r.cseq().seq == 70)
        .expect("200 to the re-INVITE");
    let body = String::from_utf8_lossy(ok.body()).into_owned();
    assert!(body.contains("m=audio "), "{body}");
    assert!(body.contains("PCMU"), "{body}");
}

#[test]
fn a_sip_offer_of_another_codec_moves_the_call_and_one_without_a_common_codec_gets_488() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, invite) = answered_call(&mut g, t0);
    // G.729 only: nothing both sides carry; refused at once, the browser is not asked.
    let g729 = SIP_ANSWER
        .replace("RTP/AVP 0 101", "RTP/AVP 18 101")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000");
    let re = from_bob(&invite, "INVITE", 90, &[], Some(("application/sdp", &g729)));
    g.handle_sip_datagram(t0, peer(), re.as_bytes());
    let d = drain_all(&mut g);
    assert!(events(&d, "update").is_empty(), "{:?}", d.texts);
    assert!(
        responses_of(&d)
            .iter()
            .any(|r| r.status() == 488 && r.cseq().seq == 90),
        "488 to the G.729 offer"
    );
    // PCMA only (the call runs PCMU): the browser is offered PCMA alone.
    let pcma = SIP_ANSWER
        .replace("RTP/AVP 0 101", "RTP/AVP 8 101")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000");
    let re = from_bob(&invite, "INVITE", 91, &[], Some(("application/sdp", &pcma)));
    g.handle_sip_datagram(t0, peer(), re.as_bytes());
    let d = drain_all(&mut g);
    let up = events(&d, "update");
    assert_eq!(up.len(), 1, "{:?}", d.texts);
    assert_eq!(up[0]["state"], "received");
    let offer = up[0]["sdp"].as_str().unwrap();
    let m = offer.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert!(
        m.ends_with("SAVPF 8 126"),
        "PCMA and telephone-event: {offer}"
    );
    assert!(!offer.contains("PCMU"), "{offer}");
    let answer = chrome_reanswer(offer);
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-update","transaction":"a2","session":"s1","sdp":answer}),
    );
    let d = drain_all(&mut g);
    assert_eq!(reply_of(&d, "a2")["sylkrtc"], "ack", "{:?}", d.texts);
    let ok = responses_of(&d)
        .into_iter()
        .find(|r| r.status() == 200 && r.cseq().seq == 91)
        .expect("200 to the re-INVITE");
    let body = String::from_utf8_lossy(ok.body()).into_owned();
    assert!(body.contains("RTP/AVP 8\r\n"), "{body}");
    assert!(body.contains("a=rtpmap:8 PCMA/8000"), "{body}");
}

#[test]
fn a_browser_offer_of_another_codec_goes_out_and_a_488_keeps_the_old_one() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, _invite) = answered_call(&mut g, t0);
    // Chrome's offer with PCMA (and telephone-event) alone on its audio line.
    let pcma = CHROME_OFFER.replace(
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
        "m=audio 9 UDP/TLS/RTP/SAVPF 8 126",
    );
    update(&mut g, t0, c, "u1", &pcma);
    let d = drain_all(&mut g);
    assert_eq!(reply_of(&d, "u1")["sylkrtc"], "ack", "{:?}", d.texts);
    let re = requests_of(&d, Method::Invite).remove(0);
    let body = String::from_utf8_lossy(re.body()).into_owned();
    let m = body.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert!(m.contains("RTP/AVP 8"), "{body}");
    assert!(!body.contains("PCMU") && !body.contains("opus"), "{body}");
    reply(&mut g, t0, &re, 488, "Not Acceptable Here", None);
    let d = drain_all(&mut g);
    let up = events(&d, "update");
    assert_eq!(up.len(), 1, "{:?}", d.texts);
    assert_eq!(up[0]["state"], "failed");
    assert_eq!(up[0]["reason"], "488 Not Acceptable Here");
    // Later the SIP side takes PCMA: the answer goes back to the browser.
    update(&mut g, t0, c, "u2", &pcma);
    let d = drain_all(&mut g);
    let re = requests_of(&d, Method::Invite).remove(0);
    let pcma_answer = SIP_ANSWER
        .replace("RTP/AVP 0 101", "RTP/AVP 8 101")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000");
    reply(&mut g, t0, &re, 200, "OK", Some(&pcma_answer));
    let d = drain_all(&mut g);
    let up = events(&d, "update");
    assert_eq!(up[0]["state"], "accepted", "{:?}", d.texts);
    let sdp = up[0]["sdp"].as_str().unwrap();
    let m = sdp.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert!(m.ends_with("SAVPF 8 126"), "{sdp}");
}

#[test]
fn without_the_browsers_answer_the_gateway_answers_for_it() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (_c, invite) = answered_call(&mut g, t0);
    let hold = SIP_ANSWER.replace("a=sendrecv", "a=sendonly");
    let re = from_bob(&invite, "INVITE", 80, &[], Some(("application/sdp", &hold)));
    g.handle_sip_datagram(t0, peer(), re.as_bytes());
    let d = drain_all(&mut g);
    assert_eq!(events(&d, "update")[0]["state"], "received");
    let t = t0 + sip::call::REINVITE_ANSWER_WAIT;
    g.handle_timeout(t);
    let d = drain_all(&mut g);
    let ok = responses_of(&d)
        .into_iter()
        .find(|r| r.status() == 200 && r.cseq().seq == 80)
        .expect("answered for the browser");
    assert!(String::from_utf8_lossy(ok.body()).contains("a=recvonly"));
    let up = events(&d, "update");
    assert_eq!(up[0]["state"], "failed", "{:?}", d.texts);
}

#[test]
fn a_sylkrtc_1_client_never_sees_an_update_and_the_gateway_answers_at_once() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c = open(&mut g, t0, 1, Dialect::V1, 1);
    request(&mut g, t0, c, add("alice@example.test", "a"));
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-create","transaction":"c","account":"alice@example.test",
               "session":"s1","uri":"bob@127.0.0.1:5099","sdp":CHROME_OFFER}),
    );
    let invite = requests_of(&drain_all(&mut g), Method::Invite).remove(0);
    reply(&mut g, t0, &invite, 200, "OK", Some(SIP_ANSWER));
    drain_all(&mut g);
    let moved = SIP_ANSWER.replace("m=audio 6000", "m=audio 6004");
    let re = from_bob(
        &invite,
        "INVITE",
        90,
        &[],
        Some(("application/sdp", &moved)),
    );
    g.handle_sip_datagram(t0, peer(), re.as_bytes());
    let d = drain_all(&mut g);
    assert!(d.texts.is_empty(), "{:?}", d.texts);
    assert!(responses_of(&d)
        .iter()
        .any(|r| r.status() == 200 && r.cseq().seq == 90));
}

#[test]
fn dtmf_digits_go_out_as_info_one_at_a_time_and_incoming_info_is_reported() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, invite) = answered_call(&mut g, t0);
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-dtmf-info","transaction":"d1","session":"s1","digit":"1a#"}),
    );
    let mut d = drain_all(&mut g);
    assert_eq!(reply_of(&d, "d1")["sylkrtc"], "ack");
    let mut sent = Vec::new();
    for _ in 0..3 {
        let infos = requests_of(&d, Method::Info);
        assert_eq!(infos.len(), 1, "one INFO in flight at a time");
        let info = &infos[0];
        assert_eq!(info.content_type(), Some("application/dtmf-relay"));
        sent.push(String::from_utf8_lossy(info.body()).into_owned());
        reply(&mut g, t0, info, 200, "OK", None);
        d = drain_all(&mut g);
    }
    assert_eq!(
        sent,
        [
            "Signal=1\r\nDuration=100\r\n",
            "Signal=A\r\nDuration=100\r\n",
            "Signal=#\r\nDuration=100\r\n"
        ]
    );
    assert!(requests_of(&d, Method::Info).is_empty());
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-dtmf-info","transaction":"d2","session":"s1","digit":"x"}),
    );
    assert_eq!(reply_of(&drain_all(&mut g), "d2")["sylkrtc"], "error");
    // bob presses 9.
    let info = from_bob(
        &invite,
        "INFO",
        100,
        &[],
        Some(("application/dtmf-relay", "Signal=9\r\nDuration=250\r\n")),
    );
    g.handle_sip_datagram(t0, peer(), info.as_bytes());
    let d = drain_all(&mut g);
    assert!(responses_of(&d).iter().any(|r| r.status() == 200));
    assert_eq!(
        events(&d, "dtmf"),
        [
            json!({"sylkrtc":"session-event","session":"s1","event":"dtmf",
                "digit":"9","duration":250,"method":"info"})
        ]
    );
}

#[test]
fn client_headers_go_into_the_invite_and_stack_owned_ones_are_refused() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c = open(&mut g, t0, 1, Dialect::V2, 1);
    request(&mut g, t0, c, add("alice@example.test", "a"));
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-create","transaction":"bad","account":"alice@example.test",
               "session":"s0","uri":"bob@127.0.0.1:5099","sdp":CHROME_OFFER,
               "headers":[{"name":"Call-ID","value":"mine"}]}),
    );
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-create","transaction":"ok","account":"alice@example.test",
               "session":"s1","uri":"bob@127.0.0.1:5099","sdp":CHROME_OFFER,
               "headers":[{"name":"X-Room","value":"42"}]}),
    );
    let d = drain_all(&mut g);
    assert_eq!(
        reply_of(&d, "bad")["error"],
        "Header Call-ID is not allowed (the gateway writes it)"
    );
    let invite = requests_of(&d, Method::Invite).remove(0);
    assert_eq!(invite.header("X-Room"), Some("42"));
}

#[test]
fn transfer_by_refer_reports_the_notifys_and_ends_the_call() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, invite) = answered_call(&mut g, t0);
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-transfer","transaction":"x1","session":"s1","uri":"carol@example.test"}),
    );
    let d = drain_all(&mut g);
    assert_eq!(reply_of(&d, "x1")["sylkrtc"], "ack");
    let refer = requests_of(&d, Method::Refer).remove(0);
    assert_eq!(refer.header("Refer-To"), Some("<sip:carol@example.test>"));
    assert_eq!(
        refer.header("Referred-By"),
        Some("<sip:alice@example.test>")
    );
    reply(&mut g, t0, &refer, 202, "Accepted", None);
    let d = drain_all(&mut g);
    assert_eq!(events(&d, "transfer")[0]["state"], "trying");
    let notify = |cseq: u32, frag: &str, state: &str| {
        from_bob(
            &invite,
            "NOTIFY",
            cseq,
            &[("Event", "refer"), ("Subscription-State", state)],
            Some(("message/sipfrag;version=2.0", frag)),
        )
    };
    g.handle_sip_datagram(
        t0,
        peer(),
        notify(200, "SIP/2.0 180 Ringing\r\n", "active").as_bytes(),
    );
    let d = drain_all(&mut g);
    assert_eq!(
        events(&d, "transfer"),
        [
            json!({"sylkrtc":"session-event","session":"s1","event":"transfer",
                "state":"trying","code":180,"reason":"Ringing"})
        ]
    );
    g.handle_sip_datagram(
        t0,
        peer(),
        notify(201, "SIP/2.0 200 OK\r\n", "terminated;reason=noresource").as_bytes(),
    );
    let d = drain_all(&mut g);
    assert_eq!(events(&d, "transfer")[0]["state"], "accepted");
    assert_eq!(
        events(&d, "state").last().unwrap()["reason"],
        "200 Call transferred"
    );
    assert_eq!(
        requests_of(&d, Method::Bye).len(),
        1,
        "the transferor hangs up"
    );
}

#[test]
fn an_incoming_refer_is_accepted_notified_and_the_referred_call_reports_back() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, invite) = answered_call(&mut g, t0);
    let refer = from_bob(
        &invite,
        "REFER",
        300,
        &[
            ("Refer-To", "<sip:carol@127.0.0.1:5099>"),
            ("Referred-By", "<sip:bob@example.test>"),
        ],
        None,
    );
    g.handle_sip_datagram(t0, peer(), refer.as_bytes());
    let d = drain_all(&mut g);
    assert!(responses_of(&d).iter().any(|r| r.status() == 202));
    let notify = requests_of(&d, Method::Notify).remove(0);
    assert_eq!(notify.header("Event"), Some("refer"));
    assert_eq!(notify.body(), b"SIP/2.0 100 Trying\r\n");
    assert_eq!(
        events(&d, "transfer-request"),
        [
            json!({"sylkrtc":"session-event","session":"s1","event":"transfer-request",
                "uri":"carol@127.0.0.1:5099","referred_by":"bob@example.test"})
        ]
    );
    // The browser calls carol on behalf of the REFER.
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-create","transaction":"c2","account":"alice@example.test",
               "session":"s2","uri":"carol@127.0.0.1:5099","sdp":CHROME_OFFER,"refer":"s1"}),
    );
    let d = drain_all(&mut g);
    assert_eq!(reply_of(&d, "c2")["sylkrtc"], "ack", "{:?}", d.texts);
    let to_carol = requests_of(&d, Method::Invite).remove(0);
    assert_eq!(
        to_carol.header("Referred-By"),
        Some("<sip:bob@example.test>")
    );
    reply(&mut g, t0, &to_carol, 180, "Ringing", None);
    let d = drain_all(&mut g);
    let n = requests_of(&d, Method::Notify).remove(0);
    assert_eq!(n.body(), b"SIP/2.0 180 Ringing\r\n");
    reply(&mut g, t0, &to_carol, 200, "OK", Some(SIP_ANSWER));
    let d = drain_all(&mut g);
    let n = requests_of(&d, Method::Notify).remove(0);
    assert_eq!(n.body(), b"SIP/2.0 200 OK\r\n");
    assert!(n
        .header("Subscription-State")
        .is_some_and(|s| s.starts_with("terminated")));
}

#[test]
fn device_tokens_go_into_the_register_contact() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c = open(&mut g, t0, 1, Dialect::V2, 1);
    request(&mut g, t0, c, add("alice@127.0.0.1:5099", "a"));
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"account-devicetoken","transaction":"t","account":"alice@127.0.0.1:5099",
               "token":"tok/1","platform":"android","device":"d1","silent":false,"app":"sylk"}),
    );
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"account-register","transaction":"r","account":"alice@127.0.0.1:5099"}),
    );
    let d = drain_all(&mut g);
    assert_eq!(reply_of(&d, "t")["sylkrtc"], "ack");
    let register = requests_of(&d, Method::Register).remove(0);
    let contact = register.contacts().as_slice()[0].uri.as_str().to_owned();
    assert!(
        contact.ends_with(";pn-provider=fcm;pn-prid=tok/1;pn-param=sylk"),
        "{contact}"
    );
}

/// alice registered at the peer; returns the client and her Contact.
fn registered_alice(g: &mut Switchboard, t0: Instant, prefixes: &[&str]) -> (ClientId, String) {
    let c = open(g, t0, 1, Dialect::V2, 1);
    request(
        g,
        t0,
        c,
        json!({"sylkrtc":"account-add","transaction":"a","account":"alice@127.0.0.1:5099",
               "password":HA1,"incoming_header_prefixes":prefixes}),
    );
    request(
        g,
        t0,
        c,
        json!({"sylkrtc":"account-register","transaction":"r","account":"alice@127.0.0.1:5099"}),
    );
    let register = requests_of(&drain_all(g), Method::Register).remove(0);
    let contact = register.contacts().as_slice()[0].uri.as_str().to_owned();
    let ok = ResponseBuilder::from_request(&register, 200, "OK", Some("r"))
        .header("Contact", &format!("<{contact}>;expires=600"))
        .to_bytes();
    g.handle_sip_datagram(t0, peer(), &ok);
    drain_all(g);
    (c, contact)
}

fn invite_to(contact: &str, call_id: &str, extra: &[(&str, &str)]) -> String {
    let mut s = format!(
        "INVITE {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch=z9hG4bK{};rport\r\n\
         From: <sip:carol@127.0.0.1>;tag=c1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:carol@{PEER}>\r\nMax-Forwards: 70\r\n",
        call_id.replace('@', "-")
    );
    for (n, v) in extra {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str(&format!(
        "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SIP_ANSWER}",
        SIP_ANSWER.len()
    ));
    s
}

#[test]
fn incoming_headers_with_the_accounts_prefixes_are_reported() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (_c, contact) = registered_alice(&mut g, t0, &["X-Sylk", "x-app-"]);
    let invite = invite_to(
        &contact,
        "h1@c",
        &[("X-Sylk-Room", "7"), ("X-App-Id", "a"), ("X-Other", "no")],
    );
    g.handle_sip_datagram(t0, peer(), invite.as_bytes());
    let d = drain_all(&mut g);
    let incoming = events(&d, "incoming-session").remove(0);
    assert_eq!(
        incoming["headers"],
        json!({"X-Sylk-Room":"7","X-App-Id":"a"})
    );
}

#[test]
fn an_invite_replacing_an_established_call_takes_it_over() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, contact) = registered_alice(&mut g, t0, &[]);
    // bob calls alice; she answers.
    let first = invite_to(&contact, "r1@b", &[]).replace("carol", "bob");
    g.handle_sip_datagram(t0, peer(), first.as_bytes());
    let d = drain_all(&mut g);
    let incoming = events(&d, "incoming-session").remove(0);
    let session = incoming["session"].as_str().unwrap().to_owned();
    let answer = chrome_reanswer(incoming["sdp"].as_str().unwrap());
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-answer","transaction":"ans","session":session,"sdp":answer}),
    );
    let d = drain_all(&mut g);
    let ok = responses_of(&d)
        .into_iter()
        .find(|r| r.status() == 200)
        .expect("200");
    let our_tag = ok.to().tag().unwrap();
    let ack = format!(
        "ACK {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch=z9hG4bKack1;rport\r\n\
         From: <sip:bob@127.0.0.1>;tag=c1\r\nTo: <sip:alice@127.0.0.1>;tag={our_tag}\r\n\
         Call-ID: r1@b\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    g.handle_sip_datagram(t0, peer(), ack.as_bytes());
    drain_all(&mut g);
    // carol's INVITE replaces bob's dialog (RFC 3891: to-tag ours, from-tag bob's).
    let replaces = format!("r1@b;to-tag={our_tag};from-tag=c1");
    let second = invite_to(&contact, "r2@c", &[("Replaces", &replaces)])
        .replace("m=audio 6000", "m=audio 6010");
    g.handle_sip_datagram(t0, peer(), second.as_bytes());
    let d = drain_all(&mut g);
    assert!(events(&d, "incoming-session").is_empty(), "no new session");
    let up = events(&d, "update");
    assert_eq!(up[0]["state"], "received", "{:?}", d.texts);
    assert_eq!(up[0]["session"], session.as_str());
    let answer = chrome_reanswer(up[0]["sdp"].as_str().unwrap());
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-update","transaction":"u","session":session,"sdp":answer}),
    );
    let d = drain_all(&mut g);
    assert_eq!(reply_of(&d, "u")["sylkrtc"], "ack", "{:?}", d.texts);
    assert!(
        responses_of(&d)
            .iter()
            .any(|r| r.status() == 200 && r.call_id() == "r2@c"),
        "carol's INVITE answered"
    );
    let bye = requests_of(&d, Method::Bye).remove(0);
    assert_eq!(bye.call_id(), "r1@b", "bob's dialog ends");
    assert_eq!(events(&d, "transfer")[0]["state"], "replaced");
    assert_eq!(g.gateway().call_count(), 1);
}
