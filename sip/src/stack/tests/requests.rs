//! Non-INVITE requests: MESSAGE outside dialogs both ways (digest, timeout, failure
//! responses, the gateway's answer or the stack's 500 for it) and inside a call's dialog.

use super::*;
use crate::request::RequestOutcome;
use crate::stack::{RequestTarget, INCOMING_ANSWER_WAIT};

const CPIM: &str =
    "From: <sip:alice@x>\r\nTo: <sip:bob@y>\r\n\r\nContent-Type: text/plain\r\n\r\nhi";

fn message_harness() -> Harness {
    let mut h = Harness::new();
    h.stack.set_incoming_methods(&[Method::Message]);
    h
}

fn send_message(h: &mut Harness) -> crate::request::RequestId {
    send_body(h, "message/cpim", CPIM.as_bytes().to_vec())
}

/// A MESSAGE to bob carrying `body`.
fn send_body(h: &mut Harness, content_type: &str, body: Vec<u8>) -> crate::request::RequestId {
    h.stack
        .send_request(
            h.now,
            &identity(),
            Method::Message,
            "bob@127.0.0.1:5080",
            vec![],
            Some((content_type.into(), body)),
        )
        .unwrap()
}

/// The outcome events since the last call.
fn outcomes(h: &mut Harness) -> Vec<(crate::request::RequestId, RequestOutcome)> {
    h.pump();
    h.events
        .drain(..)
        .filter_map(|e| match e {
            SipEvent::Request { request, outcome } => Some((request, outcome)),
            _ => None,
        })
        .collect()
}

#[test]
fn message_is_sent_answers_a_challenge_and_reports_the_final_response() {
    let mut h = message_harness();
    let id = send_message(&mut h);
    let first = h.one_request(Method::Message);
    assert_eq!(first.uri().as_str(), "sip:bob@127.0.0.1:5080");
    assert_eq!(header(&first, "CSeq"), "1 MESSAGE");
    assert_eq!(first.content_type(), Some("message/cpim"));
    assert_eq!(first.body(), CPIM.as_bytes());
    assert_eq!(first.from().display_name.as_deref(), Some("Alice Example"));
    assert!(first.from().tag().is_some());
    assert!(first.to().tag().is_none());
    assert!(
        first.contacts().as_slice().is_empty(),
        "MESSAGE has no Contact"
    );
    h.reply(
        &first,
        407,
        "Proxy Authentication Required",
        &[(
            "Proxy-Authenticate",
            "Digest realm=\"127.0.0.1:5080\", nonce=\"n1\", qop=\"auth\"",
        )],
    );
    assert!(outcomes(&mut h).is_empty(), "a challenge is not the end");
    let second = h.one_request(Method::Message);
    assert_eq!(header(&second, "CSeq"), "2 MESSAGE");
    assert_eq!(second.call_id(), first.call_id());
    assert!(header(&second, "Proxy-Authorization").contains("response="));
    assert_ne!(
        second.top_via().unwrap().branch(),
        first.top_via().unwrap().branch()
    );
    h.reply(&second, 202, "Accepted", &[]);
    let done = outcomes(&mut h);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, id);
    assert_eq!(done[0].1.code(), 202);
    assert!(done[0].1.is_success());
    assert_eq!(done[0].1.to_string(), "202 Accepted");
    assert_eq!(h.stack.request_count(), 0);
}

#[test]
fn message_failures_are_typed_outcomes() {
    let mut h = message_harness();
    send_message(&mut h);
    let m = h.one_request(Method::Message);
    h.reply(&m, 404, "Not Found", &[]);
    let done = outcomes(&mut h);
    assert_eq!(done[0].1.to_string(), "404 Not Found");
    assert!(!done[0].1.is_success());
    // A second challenge of the same realm means wrong credentials: no loop.
    send_message(&mut h);
    let challenge = [("WWW-Authenticate", "Digest realm=\"r\", nonce=\"n1\"")];
    let m = h.one_request(Method::Message);
    h.reply(&m, 401, "Unauthorized", &challenge);
    let m = h.one_request(Method::Message);
    h.reply(&m, 401, "Unauthorized", &challenge);
    let done = outcomes(&mut h);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].1.code(), 401);
    assert!(matches!(done[0].1, RequestOutcome::Unauthorized { .. }));
    // Nobody answers: Timer F, 408.
    send_message(&mut h);
    h.one_request(Method::Message);
    for _ in 0..70 {
        h.advance(Duration::from_millis(500));
        h.sent();
    }
    let done = outcomes(&mut h);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].1, RequestOutcome::Timeout);
    assert_eq!(done[0].1.to_string(), "408 Request Timeout");
    assert!(h
        .stack
        .send_request(h.now, &identity(), Method::Message, "nobody", vec![], None)
        .is_err());
    h.assert_clean_after_timers();
    assert_eq!(h.stack.request_count(), 0);
}

fn incoming_message(h: &mut Harness, token: &str, call_id: &str) {
    let headers = vec![
        ("From", "\"Bob\" <sip:bob@127.0.0.1:5080>;tag=m1".to_owned()),
        ("To", format!("<sip:{token}@127.0.0.1:5070>")),
        ("Call-ID", call_id.to_owned()),
        ("CSeq", "1 MESSAGE".to_owned()),
    ];
    let mut bytes = h.peer_request(
        Method::Message,
        &format!("sip:{token}@127.0.0.1:5070"),
        &headers,
        None,
    );
    // peer_request only sets SDP bodies; splice a text body in.
    let text = String::from_utf8(bytes).unwrap().replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    );
    bytes = text.into_bytes();
    h.deliver(bytes);
}

#[test]
fn message_to_a_contact_reaches_the_gateway_and_gets_its_answer() {
    let mut h = message_harness();
    let (reg, token) = registered(&mut h);
    h.events();
    incoming_message(&mut h, &token, "m-1@peer");
    h.pump();
    let (id, request) = match h.events.pop_front() {
        Some(SipEvent::IncomingRequest {
            id,
            target: RequestTarget::Registration(r),
            request,
        }) if r == reg => (id, request),
        other => panic!("{other:?}"),
    };
    assert_eq!(request.body(), b"hello");
    assert_eq!(request.content_type(), Some("text/plain"));
    assert!(h.sent().is_empty(), "no answer before the gateway's");
    h.stack
        .answer_request(h.now, id, 202, "Accepted", &[])
        .unwrap();
    let ok = h.responses().pop().unwrap();
    assert_eq!((ok.status(), ok.reason()), (202, "Accepted"));
    assert!(
        ok.to().tag().is_some(),
        "a To tag is added (RFC 3261 8.2.6.2)"
    );
    assert!(h.stack.answer_request(h.now, id, 200, "OK", &[]).is_err());
    // Left unanswered: the stack answers 500 with a Retry-After for the gateway.
    incoming_message(&mut h, &token, "m-2@peer");
    h.pump();
    assert!(matches!(
        h.events.pop_front(),
        Some(SipEvent::IncomingRequest { .. })
    ));
    h.advance(INCOMING_ANSWER_WAIT);
    let late = h.responses().pop().unwrap();
    assert_eq!(late.status(), 500);
    assert!(late.header("Retry-After").is_some());
    assert_eq!(h.stack.pending_incoming_count(), 0);
    // No registration's token: the gateway decides for the address in the Request-URI.
    incoming_message(&mut h, "alice", "m-3@peer");
    h.pump();
    let id = match h.events.pop_front() {
        Some(SipEvent::IncomingRequest {
            id,
            target: RequestTarget::Address,
            request,
        }) if request.uri().user() == Some("alice") => id,
        other => panic!("{other:?}"),
    };
    h.stack
        .answer_request(h.now, id, 404, "Not Found", &[])
        .unwrap();
    assert_eq!(h.responses().pop().unwrap().status(), 404);
}

#[test]
fn message_is_refused_unless_the_gateway_takes_it() {
    let mut h = Harness::new();
    let (_, token) = registered(&mut h);
    incoming_message(&mut h, &token, "m-1@peer");
    let r = h.responses().pop().unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.header("Allow").is_some());
}

#[test]
fn messages_inside_a_call_dialog_both_ways() {
    let mut h = message_harness();
    let (call, tag, token) = incoming_confirmed(&mut h);
    let id = h
        .stack
        .send_in_dialog(
            h.now,
            call,
            Method::Message,
            vec![],
            Some(("message/cpim".into(), CPIM.as_bytes().to_vec())),
        )
        .unwrap();
    let m = h.one_request(Method::Message);
    assert_eq!(
        m.uri().as_str(),
        "sip:bob@127.0.0.1:5080",
        "the remote target"
    );
    assert_eq!(m.to().tag().as_deref(), Some("bob-tag"));
    assert_eq!(m.from().tag().as_deref(), Some(tag.as_str()));
    assert_eq!(m.call_id(), "in-call-1@peer");
    assert_eq!(header(&m, "CSeq"), "1 MESSAGE");
    h.reply(&m, 200, "OK", &[]);
    let done = outcomes(&mut h);
    assert_eq!((done[0].0, done[0].1.code()), (id, 200));
    // The peer's MESSAGE in the dialog goes to the gateway with the call as its target.
    let msg = h.peer_request(
        Method::Message,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "11 MESSAGE"),
        None,
    );
    h.deliver(msg);
    h.pump();
    let incoming = match h.events.pop_front() {
        Some(SipEvent::IncomingRequest {
            id,
            target: RequestTarget::Call(c),
            ..
        }) if c == call => id,
        other => panic!("{other:?}"),
    };
    h.stack
        .answer_request(h.now, incoming, 200, "OK", &[])
        .unwrap();
    let ok = h.responses().pop().unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.to().tag().as_deref(),
        Some(tag.as_str()),
        "the dialog's tag"
    );
    // An in-dialog REFER the gateway does not take: 501.
    let refer = h.peer_request(
        Method::Refer,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "12 REFER"),
        None,
    );
    h.deliver(refer);
    assert_eq!(h.responses().pop().unwrap().status(), 501);
    h.stack.hangup(h.now, call).unwrap();
    h.one_request(Method::Bye);
    assert!(h
        .stack
        .send_in_dialog(h.now, call, Method::Message, vec![], None)
        .is_err());
    h.events();
    h.assert_clean_after_timers();
    assert_eq!(h.stack.request_count(), 0);
}

/// A MESSAGE to bob carrying `body_len` bytes of text.
fn send_sized_message(h: &mut Harness, body_len: usize) -> crate::request::RequestId {
    send_body(h, "text/plain", vec![b'x'; body_len])
}

#[test]
fn a_message_too_large_for_udp_goes_over_tcp_and_back_to_udp_if_refused() {
    // RFC 3261 section 18.1.1: over 1300 bytes, a congestion-controlled transport.
    let mut h = Harness::with_transports(vec![Transport::Udp, Transport::Tcp]);
    let id = send_sized_message(&mut h, 1200);
    let (flow, first) = h.over_tcp().expect("the large MESSAGE goes over TCP");
    assert!(header(&first, "Via").starts_with("SIP/2.0/TCP "));
    assert_eq!(first.body().len(), 1200);
    // The connection is refused: the same server over UDP at once, not after Timer F.
    h.stack.handle_stream_closed(h.now, flow);
    let retry = h.one_request(Method::Message);
    assert!(header(&retry, "Via").starts_with("SIP/2.0/UDP "));
    assert_eq!(retry.call_id(), first.call_id());
    assert_eq!(retry.body().len(), 1200);
    h.reply(&retry, 200, "OK", &[]);
    let done = outcomes(&mut h);
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].0, done[0].1.code()), (id, 200));
}

#[test]
fn small_messages_stay_on_udp_and_a_tcp_answer_is_final() {
    let mut h = Harness::with_transports(vec![Transport::Udp, Transport::Tcp]);
    send_sized_message(&mut h, 200);
    let small = h.one_request(Method::Message);
    assert!(header(&small, "Via").starts_with("SIP/2.0/UDP "));
    h.reply(&small, 200, "OK", &[]);
    assert_eq!(outcomes(&mut h)[0].1.code(), 200);
    // Over TCP, a 503 from the server is its answer: no second try over UDP.
    send_sized_message(&mut h, 4000);
    let (flow, big) = h.over_tcp().expect("over TCP");
    let reply = ResponseBuilder::from_request(&big, 503, "Service Unavailable", None).to_bytes();
    h.stack.handle_stream_data(h.now, flow, &reply);
    let done = outcomes(&mut h);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].1.code(), 503);
    assert!(h.requests().is_empty(), "nothing sent over UDP");
}

#[test]
fn without_tcp_a_large_message_still_goes_over_udp() {
    let mut h = Harness::new();
    send_sized_message(&mut h, 4000);
    let m = h.one_request(Method::Message);
    assert!(header(&m, "Via").starts_with("SIP/2.0/UDP "));
    assert_eq!(m.body().len(), 4000);
}
