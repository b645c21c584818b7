//! Chat sessions under the call features, with virtual time and a scripted SIP peer: the
//! `m=message` line keeps its place through re-offers both ways beside audio/video, and a
//! chat-only session refuses what needs a bridge (`session-update`, `session-dtmf-info`)
//! with a clear error while its re-INVITEs are answered and its transfer goes out.

use std::time::Instant;

use serde_json::json;
use sip::msg::Method;

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
