//! Requests inside a dialog: re-INVITEs (answered, refused, overlapping), refreshes, 481.

use super::*;

#[test]
fn remote_hold_reinvite_is_answered_by_the_gateway() {
    let mut h = Harness::new();
    let (call, tag, token) = incoming_confirmed(&mut h);
    let hold = ANSWER.replace("a=sendrecv", "a=sendonly");
    let reinvite = h.peer_request(
        Method::Invite,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "11 INVITE"),
        Some(&hold),
    );
    h.deliver(reinvite);
    assert_eq!(
        h.events(),
        [(call, CallEvent::ReOffer { sdp: hold.clone() })]
    );
    h.responses(); // 100 Trying
    let recvonly = OFFER.replace("a=sendrecv", "a=recvonly");
    h.stack
        .answer_reinvite(h.now, call, recvonly.clone())
        .unwrap();
    let ok = h.responses().pop().unwrap();
    assert_eq!((ok.status(), ok.cseq().seq), (200, 11));
    assert_eq!(ok.body(), recvonly.as_bytes());
    assert_eq!(h.stack.local_sdp(call), Some(recvonly.as_str()));
    assert!(
        !ok.contacts().as_slice().is_empty(),
        "2xx to re-INVITE has Contact"
    );
    let ack = h.peer_request(
        Method::Ack,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "11 ACK"),
        None,
    );
    h.deliver(ack);
    h.advance(Duration::from_secs(2));
    assert!(h.responses().is_empty(), "ACKed: no retransmission");
    assert!(h.events().is_empty(), "the call goes on");
    h.stack.hangup(h.now, call).unwrap();
    h.one_request(Method::Bye);
    assert_eq!(h.events(), [hung_up(call)]);
    h.assert_clean_after_timers();
}

#[test]
fn unanswered_reinvite_is_refused_for_now_and_refresh_is_answered() {
    let mut h = Harness::new();
    let (call, tag, token) = incoming_confirmed(&mut h);
    assert_eq!(h.stack.local_sdp(call), Some(ANSWER), "our 200's SDP");
    let hold = ANSWER.replace("a=sendrecv", "a=sendonly");
    let reinvite = h.peer_request(
        Method::Invite,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "11 INVITE"),
        Some(&hold),
    );
    h.deliver(reinvite);
    h.events();
    h.responses();
    // The gateway does not answer: it is told once, then RFC 3261 section 14.2's 500 with a
    // random 0-10 s Retry-After, and the call keeps its session.
    h.advance(crate::call::REINVITE_ANSWER_WAIT);
    assert_eq!(h.events(), [(call, CallEvent::ReOfferUnanswered)]);
    assert!(h.responses().is_empty(), "the gateway may still answer");
    h.advance(crate::call::remote_offer::REOFFER_GRACE);
    let refused = h.responses().pop().unwrap();
    assert_eq!((refused.status(), refused.cseq().seq), (500, 11));
    let retry_after: u32 = refused.header("Retry-After").unwrap().parse().unwrap();
    assert!(retry_after <= 10, "{retry_after}");
    assert!(refused.body().is_empty());
    assert!(h.events().is_empty(), "the call goes on");
    assert_eq!(h.stack.local_sdp(call), Some(ANSWER));
    let body = ANSWER;
    // An ACK that acknowledges no 2xx of ours changes nothing.
    let ack = h.peer_request(
        Method::Ack,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "11 ACK"),
        None,
    );
    h.deliver(ack);
    // An RFC 4028 refresh: re-INVITE without SDP, answered with the current SDP, no event.
    let refresh = h.peer_request(
        Method::Invite,
        "sip:x@127.0.0.1:5070",
        &[
            in_dialog(&tag, &token, "12 INVITE"),
            vec![("Session-Expires", "1800;refresher=uac".to_owned())],
        ]
        .concat(),
        None,
    );
    h.deliver(refresh);
    let ok = h.responses().pop().unwrap();
    assert_eq!((ok.status(), ok.cseq().seq), (200, 12));
    assert_eq!(ok.body(), body.as_bytes());
    assert!(h.events().is_empty());
    // UPDATE refreshes without SDP are answered 200 too.
    let update = h.peer_request(
        Method::Update,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "13 UPDATE"),
        None,
    );
    h.deliver(update);
    let statuses: Vec<u16> = h.responses().iter().map(|r| r.status()).collect();
    assert_eq!(statuses, [200]);
    let ack = h.peer_request(
        Method::Ack,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "12 ACK"),
        None,
    );
    h.deliver(ack);
    h.stack.hangup(h.now, call).unwrap();
    h.one_request(Method::Bye);
    assert_eq!(h.events(), [hung_up(call)]);
    h.assert_clean_after_timers();
}

#[test]
fn overlapping_reinvites_get_500_and_491() {
    let mut h = Harness::new();
    let (call, tag, token) = incoming_confirmed(&mut h);
    let offer2 = ANSWER.replace("5000", "5002");
    let first = h.peer_request(
        Method::Invite,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "11 INVITE"),
        Some(&offer2),
    );
    h.deliver(first);
    h.events();
    h.responses();
    // A second re-INVITE while the first is unanswered: 500 + Retry-After (RFC 3261 14.2).
    let second = h.peer_request(
        Method::Invite,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "12 INVITE"),
        Some(&offer2),
    );
    h.deliver(second);
    let r = h.responses();
    let last = r.last().unwrap();
    assert_eq!(last.status(), 500);
    assert!(last.header("Retry-After").is_some());
    h.stack.answer_reinvite(h.now, call, OFFER.into()).unwrap();
    h.responses();
    // Answered but not ACKed yet: a new offer collides with ours, 491 (glare).
    let third = h.peer_request(
        Method::Invite,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "13 INVITE"),
        Some(&offer2),
    );
    h.deliver(third);
    let statuses: Vec<u16> = h.responses().iter().map(|r| r.status()).collect();
    assert_eq!(statuses.last(), Some(&491));
    // An older CSeq is refused with 500 (RFC 3261 12.2.2).
    let stale = h.peer_request(
        Method::Options,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "5 OPTIONS"),
        None,
    );
    h.deliver(stale);
    assert_eq!(h.responses()[0].status(), 500);
    assert!(h.events().is_empty());
    // Hang up with the 200 still unacknowledged: BYE waits for the ACK (RFC 3261 15).
    h.stack.hangup(h.now, call).unwrap();
    assert_eq!(h.events(), [hung_up(call)]);
    h.assert_clean_after_timers();
}

#[test]
fn in_dialog_request_for_unknown_dialog_gets_481() {
    let mut h = Harness::new();
    let bye = h.peer_request(
        Method::Bye,
        "sip:x@127.0.0.1:5070",
        &in_dialog("nope", "t", "2 BYE"),
        None,
    );
    h.deliver(bye);
    assert_eq!(h.responses()[0].status(), 481);
}

#[test]
fn untranslatable_reinvite_offer_is_rejected_and_the_call_goes_on() {
    let mut h = Harness::new();
    let (call, tag, token) = incoming_confirmed(&mut h);
    let reinvite = h.peer_request(
        Method::Invite,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "11 INVITE"),
        Some("v=0\r\nm=application 9 UDP/BFCP *\r\n"),
    );
    h.deliver(reinvite);
    assert!(matches!(
        h.events().as_slice(),
        [(_, CallEvent::ReOffer { .. })]
    ));
    h.responses();
    h.stack.reject_reinvite(h.now, call, 488).unwrap();
    let r = h.responses().pop().unwrap();
    assert_eq!((r.status(), r.cseq().seq), (488, 11));
    assert_eq!(
        h.stack.reject_reinvite(h.now, call, 488),
        Err(CallError::InvalidState),
        "nothing pending any more"
    );
    // No fallback answer later, and the call is still up.
    h.advance(Duration::from_secs(5));
    assert!(h.responses().iter().all(|r| r.status() == 488));
    assert!(h.events().is_empty());
    assert_eq!(h.stack.call_count(), 1);
    h.stack.hangup(h.now, call).unwrap();
    assert_eq!(h.events(), [hung_up(call)]);
    h.assert_clean_after_timers();
}
