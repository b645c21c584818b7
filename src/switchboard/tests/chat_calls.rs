//! Chat sessions under the call features, with virtual time and a scripted SIP peer: the
//! `m=message` line keeps its place through re-offers both ways beside audio/video, and a
//! chat-only session refuses what needs a bridge (`session-update`, `session-dtmf-info`)
//! with a clear error while its re-INVITEs are answered and its transfer goes out. An
//! incoming session with audio and chat answered before the relay accepted our AUTH
//! (RFC 4976) gets its 200 only once AUTH is done, with the chat refused if AUTH fails.

use std::time::{Duration, Instant};

use serde_json::json;
use sip::msg::{Method, ResponseBuilder, SipResponse};

use super::renegotiation::{
    chrome_reanswer, events, from_bob, peer, reply_of, requests_of, responses_of,
};
use super::*;

/// Bob's MSRP line (he listens; we connect).
const BOB_CHAT: &str = "m=message 2856 TCP/MSRP *\r\na=accept-types:message/cpim\r\n\
                        a=path:msrp://127.0.0.1:2856/bobchat;tcp\r\na=setup:passive\r\n";

/// Bob's answer to audio, video and chat: audio as SIPp answers, video refused, chat.
fn bob_answer(direction: &str) -> String {
    format!(
        "{}m=video 0 RTP/AVP 96\r\n{BOB_CHAT}",
        SIP_ANSWER.replace("a=sendrecv", direction)
    )
}

/// The `m=` lines of a SIP body, in order (kind and port).
fn mlines(body: &[u8]) -> Vec<(String, u16)> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| {
            let mut words = l.strip_prefix("m=")?.split(' ');
            Some((words.next()?.to_owned(), words.next()?.parse().ok()?))
        })
        .collect()
}

/// A client with alice, whose session `s1` calls bob with `media`.
fn create(g: &mut Switchboard, t0: Instant, media: Value) -> (ClientId, Drained) {
    let c = open(g, t0, 1, Dialect::V2, 1);
    request(g, t0, c, add("alice@example.test", "a"));
    let mut create = json!({"sylkrtc":"session-create","transaction":"c",
        "account":"alice@example.test","session":"s1","uri":"bob@127.0.0.1:5099",
        "media":media});
    if media != json!(["chat"]) {
        create["sdp"] = CHROME_OFFER.into();
    }
    request(g, t0, c, create);
    let d = drain_all(g);
    assert_eq!(reply_of(&d, "c")["sylkrtc"], "ack", "{:?}", d.texts);
    (c, d)
}

#[test]
fn beside_audio_the_chat_line_keeps_its_place_in_reoffers_both_ways() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, d) = create(&mut g, t0, json!(["audio", "chat"]));
    let invite = requests_of(&d, Method::Invite).remove(0);
    let lines = mlines(invite.body());
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[2].0, "message");
    reply(
        &mut g,
        t0,
        &invite,
        200,
        "OK",
        Some(&bob_answer("a=sendrecv")),
    );
    let d = drain_all(&mut g);
    assert!(states(&d).contains(&"accepted".to_owned()), "{:?}", d.texts);
    // Our hold: the re-INVITE keeps the chat's line third, as the INVITE had it.
    let hold = CHROME_OFFER.replace("a=sendrecv", "a=sendonly");
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-update","transaction":"u1","session":"s1","sdp":hold}),
    );
    let d = drain_all(&mut g);
    assert_eq!(reply_of(&d, "u1")["sylkrtc"], "ack", "{:?}", d.texts);
    let re = requests_of(&d, Method::Invite).remove(0);
    assert_eq!(
        mlines(re.body()),
        lines,
        "{}",
        String::from_utf8_lossy(re.body())
    );
    assert!(String::from_utf8_lossy(re.body()).contains("a=path:msrp://127.0.0.1:2855/"));
    reply(&mut g, t0, &re, 200, "OK", Some(&bob_answer("a=recvonly")));
    let d = drain_all(&mut g);
    let up = events(&d, "update");
    assert_eq!(up[0]["state"], "accepted", "{:?}", d.texts);
    // Bob's re-offer (audio moved): the browser answers, the 200 has the chat third.
    let moved = bob_answer("a=sendrecv").replace("m=audio 6000", "m=audio 6002");
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
    assert_eq!(up[0]["state"], "received", "{:?}", d.texts);
    let offer = up[0]["sdp"].as_str().unwrap();
    assert!(
        !offer.contains("m=message"),
        "the browser sees no chat line: {offer}"
    );
    let answer = chrome_reanswer(offer);
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-update","transaction":"a1","session":"s1","sdp":answer}),
    );
    let d = drain_all(&mut g);
    let ok = responses_of(&d)
        .into_iter()
        .find(|r| r.status() == 200 && r.cseq().seq == 70)
        .expect("200 to the re-INVITE");
    let answered = mlines(ok.body());
    assert_eq!(answered.len(), 3, "{answered:?}");
    assert_eq!(answered[2].0, "message");
    assert_ne!(answered[2].1, 0, "the chat goes on");
    assert!(!d.msrp.contains(&msrp::MsrpTransmit::Close), "{:?}", d.msrp);
    let ack = from_bob(&invite, "ACK", 70, &[], None);
    g.handle_sip_datagram(t0, peer(), ack.as_bytes());
    drain_all(&mut g);
    // A re-offer refusing the chat (port 0) ends the chat, not the call.
    let refused = moved.replace("m=message 2856", "m=message 0");
    let re = from_bob(
        &invite,
        "INVITE",
        71,
        &[],
        Some(("application/sdp", &refused)),
    );
    g.handle_sip_datagram(t0, peer(), re.as_bytes());
    let d = drain_all(&mut g);
    let ok = responses_of(&d)
        .into_iter()
        .find(|r| r.status() == 200 && r.cseq().seq == 71)
        .expect("200 to the re-INVITE refusing the chat");
    let answered = mlines(ok.body());
    assert_eq!(answered[2], ("message".to_owned(), 0), "{answered:?}");
    assert!(
        !states(&d).contains(&"terminated".to_owned()),
        "{:?}",
        d.texts
    );
    // The browser learns it from our `chat` event.
    let chat = events(&d, "chat");
    assert_eq!(chat.len(), 1, "{:?}", d.texts);
    assert_eq!(chat[0]["state"], "ended");
    assert_eq!(chat[0]["reason"], "Chat removed by the remote party");
}

#[test]
fn a_lost_msrp_connection_beside_audio_is_a_chat_event_and_the_call_goes_on() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, d) = create(&mut g, t0, json!(["audio", "chat"]));
    let invite = requests_of(&d, Method::Invite).remove(0);
    reply(
        &mut g,
        t0,
        &invite,
        200,
        "OK",
        Some(&bob_answer("a=sendrecv")),
    );
    let d = drain_all(&mut g);
    assert!(states(&d).contains(&"accepted".to_owned()), "{:?}", d.texts);
    // Bob listens (a=setup:passive): we connect.
    let at = d
        .msrp
        .iter()
        .position(|t| matches!(t, msrp::MsrpTransmit::Connect { .. }))
        .expect("a connect to bob's path");
    let id = d.msrp_ids[at];
    g.handle_msrp_connected(t0, id);
    drain_all(&mut g);
    // The connection drops mid-call (the peer's process died, a relay went away).
    g.handle_msrp_closed(t0, id);
    let d = drain_all(&mut g);
    let chat = events(&d, "chat");
    assert_eq!(
        chat,
        [
            json!({"sylkrtc":"session-event","session":"s1","event":"chat",
                "state":"failed","reason":"MSRP connection lost"})
        ],
        "{:?}",
        d.texts
    );
    assert!(
        !states(&d).contains(&"terminated".to_owned()),
        "{:?}",
        d.texts
    );
    assert!(
        !d.sip.iter().any(|(_, m)| matches!(m, SipMessage::Request(r)
            if r.method() == &Method::Bye)),
        "the call goes on: {:?}",
        d.sip
    );
    // A message now fails at once with a clear error; the call is still up.
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-message","transaction":"m1","session":"s1",
               "message_id":"m1","content":"hi","content_type":"text/plain",
               "timestamp":"2026-01-01T00:00:00.000Z"}),
    );
    let d = drain_all(&mut g);
    let r = reply_of(&d, "m1");
    assert_eq!(r["sylkrtc"], "error", "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("Cannot send message"),
        "{r}"
    );
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-terminate","transaction":"t1","session":"s1"}),
    );
    let d = drain_all(&mut g);
    assert!(requests_of(&d, Method::Bye).len() == 1, "{:?}", d.sip);
}

#[test]
fn a_chat_only_session_refuses_update_and_dtmf_answers_reinvites_and_transfers() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, d) = create(&mut g, t0, json!(["chat"]));
    let invite = requests_of(&d, Method::Invite).remove(0);
    let answer = format!(
        "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{BOB_CHAT}"
    );
    reply(&mut g, t0, &invite, 200, "OK", Some(&answer));
    let d = drain_all(&mut g);
    assert!(states(&d).contains(&"accepted".to_owned()), "{:?}", d.texts);
    for (tx, req) in [
        (
            "u1",
            json!({"sylkrtc":"session-update","transaction":"u1","session":"s1","sdp":CHROME_OFFER}),
        ),
        (
            "d1",
            json!({"sylkrtc":"session-dtmf-info","transaction":"d1","session":"s1","digit":"5"}),
        ),
    ] {
        request(&mut g, t0, c, req);
        let d = drain_all(&mut g);
        let r = reply_of(&d, tx);
        assert_eq!(r["sylkrtc"], "error", "{r}");
        let error = r["error"].as_str().unwrap();
        assert!(error.contains("Session s1 is chat only"), "{error}");
        assert!(d.sip.is_empty(), "nothing goes out: {:?}", d.sip);
    }
    // Bob's re-INVITE (a session refresh): answered with our line, the chat goes on.
    let re = from_bob(
        &invite,
        "INVITE",
        70,
        &[],
        Some(("application/sdp", &answer)),
    );
    g.handle_sip_datagram(t0, peer(), re.as_bytes());
    let d = drain_all(&mut g);
    let ok = responses_of(&d)
        .into_iter()
        .find(|r| r.cseq().seq == 70 && r.status() >= 200)
        .expect("a final answer to the re-INVITE");
    assert_eq!(ok.status(), 200);
    assert_eq!(mlines(ok.body()), [("message".to_owned(), 2855)]);
    assert!(events(&d, "update").is_empty(), "{:?}", d.texts);
    // Blind transfer needs no media: the REFER goes out.
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-transfer","transaction":"x1","session":"s1",
               "uri":"carol@example.test"}),
    );
    let d = drain_all(&mut g);
    assert_eq!(reply_of(&d, "x1")["sylkrtc"], "ack", "{:?}", d.texts);
    let refer = requests_of(&d, Method::Refer).remove(0);
    assert_eq!(refer.header("Refer-To"), Some("<sip:carol@example.test>"));
}

/// The relay alice's chats authenticate to (RFC 4976).
const RELAY: &str = "127.0.0.1:2860";

/// A gateway whose chats go through [`RELAY`], with no MSRP listener of its own.
fn gateway_with_relay() -> Switchboard {
    gateway_with_chat(
        &["*"],
        10,
        crate::config::Config::default().media,
        crate::gateway::ChatSettings {
            address: Some("127.0.0.1".parse().unwrap()),
            relay: Some(crate::gateway::RelayTarget {
                uri: msrp::MsrpUri::parse(&format!("msrp://{RELAY};tcp")).unwrap(),
                addr: RELAY.parse().unwrap(),
            }),
            max_message_size: 1 << 20,
            auth_expires: 600,
            ..Default::default()
        },
    )
}

/// alice (taking chat) registered at the peer; carol's INVITE with audio and chat came in
/// and the browser answered it. Returns the gateway, the client, the INVITE's Call-ID
/// and the MSRP connection to the relay (its connect already reported).
fn audio_and_chat_answered_before_auth(t0: Instant) -> (Switchboard, ClientId, MsrpId) {
    let mut g = gateway_with_relay();
    let c = open(&mut g, t0, 1, Dialect::V2, 1);
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"account-add","transaction":"a","account":"alice@127.0.0.1:5099",
               "password":HA1,"chat":true}),
    );
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"account-register","transaction":"r","account":"alice@127.0.0.1:5099"}),
    );
    let register = requests_of(&drain_all(&mut g), Method::Register).remove(0);
    let contact = register.contacts().as_slice()[0].uri.as_str().to_owned();
    let ok = ResponseBuilder::from_request(&register, 200, "OK", Some("r"))
        .header("Contact", &format!("<{contact}>;expires=600"))
        .to_bytes();
    g.handle_sip_datagram(t0, peer(), &ok);
    drain_all(&mut g);
    let body = format!(
        "{SIP_ANSWER}m=message 2856 TCP/MSRP *\r\na=accept-types:message/cpim\r\n\
         a=path:msrp://127.0.0.1:2856/carolchat;tcp\r\na=setup:actpass\r\n"
    );
    let invite = format!(
        "INVITE {contact} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKac1;rport\r\n\
         From: <sip:carol@127.0.0.1>;tag=c1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: ac1@c\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:carol@127.0.0.1:5099>\r\nMax-Forwards: 70\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    g.handle_sip_datagram(t0, peer(), invite.as_bytes());
    let d = drain_all(&mut g);
    let incoming = events(&d, "incoming-session").remove(0);
    assert_eq!(incoming["media"], json!(["audio", "chat"]), "{incoming}");
    let at = d
        .msrp
        .iter()
        .position(|t| {
            matches!(t, msrp::MsrpTransmit::Connect { addr, .. }
            if *addr == RELAY.parse::<std::net::SocketAddr>().unwrap())
        })
        .expect("a connect to the relay");
    let relay = d.msrp_ids[at];
    // The browser answers at once, before the relay connection is even up.
    let session = incoming["session"].as_str().unwrap().to_owned();
    let answer = chrome_reanswer(incoming["sdp"].as_str().unwrap());
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-answer","transaction":"ans","session":session,"sdp":answer}),
    );
    let d = drain_all(&mut g);
    assert_eq!(reply_of(&d, "ans")["sylkrtc"], "ack", "{:?}", d.texts);
    assert!(
        responses_of(&d).iter().all(|r| r.status() < 200),
        "no 200 before the relay's AUTH: {:?}",
        d.sip
    );
    g.handle_msrp_connected(t0, relay);
    (g, c, relay)
}

/// The AUTH request the relay just got (its transaction id).
fn auth_transaction(d: &Drained) -> String {
    d.msrp
        .iter()
        .find_map(|t| match t {
            msrp::MsrpTransmit::Data(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                let mut words = text.split_whitespace();
                (words.next() == Some("MSRP") && text.lines().next()?.ends_with(" AUTH"))
                    .then(|| words.next().map(str::to_owned))?
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no AUTH in {:?}", d.msrp))
}

/// The relay's answer to AUTH `tid`.
fn relay_answers(g: &mut Switchboard, t: Instant, relay: MsrpId, tid: &str, status: &str) {
    let frame = format!(
        "MSRP {tid} {status}\r\nTo-Path: msrp://127.0.0.1:2855/x;tcp\r\nFrom-Path: msrp://{RELAY};tcp\r\n\
         Use-Path: msrp://{RELAY}/relaysess1;tcp\r\nExpires: 600\r\n-------{tid}$\r\n"
    );
    g.handle_msrp_data(t, relay, frame.as_bytes());
}

/// The one 200 to the INVITE in `d`.
fn the_200(d: &Drained) -> SipResponse {
    let oks: Vec<_> = responses_of(d)
        .into_iter()
        .filter(|r| r.status() == 200 && r.cseq().method == Method::Invite)
        .collect();
    assert_eq!(oks.len(), 1, "{:?}", d.sip);
    oks[0].clone()
}

#[test]
fn an_audio_and_chat_answer_waits_for_the_relays_auth_and_carries_its_path() {
    let t0 = Instant::now();
    let (mut g, _c, relay) = audio_and_chat_answered_before_auth(t0);
    let d = drain_all(&mut g);
    assert!(
        responses_of(&d).iter().all(|r| r.status() < 200),
        "{:?}",
        d.sip
    );
    let tid = auth_transaction(&d);
    let t1 = t0 + Duration::from_millis(30);
    relay_answers(&mut g, t1, relay, &tid, "200 OK");
    let d = drain_all(&mut g);
    let ok = the_200(&d);
    let lines = mlines(ok.body());
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0].0, "audio");
    assert_eq!(lines[1].0, "message");
    assert_ne!(lines[1].1, 0, "the chat is accepted");
    let body = String::from_utf8_lossy(ok.body()).into_owned();
    assert!(
        body.contains(&format!(
            "a=path:msrp://{RELAY}/relaysess1;tcp msrp://127.0.0.1:"
        )),
        "our path starts with the relay's Use-Path: {body}"
    );
    assert!(events(&d, "chat").is_empty(), "{:?}", d.texts);
    // Over the relay we connect: the bind SEND goes through the relay to carol's path.
    assert!(
        d.msrp
            .iter()
            .any(|t| matches!(t, msrp::MsrpTransmit::Data(b)
            if String::from_utf8_lossy(b).contains("SEND")
                && String::from_utf8_lossy(b).contains("carolchat"))),
        "{:?}",
        d.msrp
    );
}

#[test]
fn a_refused_or_unanswered_auth_sends_the_held_200_with_the_chat_at_port_0() {
    // The relay refuses (403), or never answers (the AUTH transaction times out).
    for refuse in [true, false] {
        let t0 = Instant::now();
        let (mut g, _c, relay) = audio_and_chat_answered_before_auth(t0);
        let d = drain_all(&mut g);
        let tid = auth_transaction(&d);
        let d = if refuse {
            relay_answers(&mut g, t0, relay, &tid, "403 Forbidden");
            drain_all(&mut g)
        } else {
            let mut d = Drained::default();
            while responses_of(&d).iter().all(|r| r.status() < 200) {
                let t = g.poll_timeout().expect("a deadline while AUTH is pending");
                assert!(t < t0 + Duration::from_secs(60), "no end to AUTH");
                g.handle_timeout(t);
                d = drain_all(&mut g);
            }
            d
        };
        let ok = the_200(&d);
        let body = String::from_utf8_lossy(ok.body()).into_owned();
        let lines = mlines(ok.body());
        assert_eq!(lines.len(), 2, "{body}");
        assert!(lines[0].0 == "audio" && lines[0].1 != 0, "{body}");
        assert!(body.contains("m=message 0 TCP/MSRP *"), "{body}");
        let chat = events(&d, "chat");
        assert_eq!(chat.len(), 1, "{:?}", d.texts);
        assert_eq!(chat[0]["state"], "failed", "{:?}", d.texts);
        assert!(
            !states(&d).contains(&"terminated".to_owned()),
            "{:?}",
            d.texts
        );
        // The call goes on without its chat.
        assert_eq!(g.gateway().call_count(), 1);
        assert_eq!(g.gateway().chat_count(), 1);
    }
}
