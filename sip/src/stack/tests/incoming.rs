//! Incoming calls: ringing, answering, the ACK, CANCEL, declines, limits.

use super::*;

#[test]
fn incoming_call_rings_is_answered_acked_and_byed() {
    let mut h = Harness::new();
    let (reg, token) = registered(&mut h);
    incoming_invite(&mut h, &token, Some(OFFER));
    let events = h.events();
    let call = match events.as_slice() {
        [(
            call,
            CallEvent::Incoming {
                reg: r,
                from_uri,
                from_display_name,
                call_id,
                sdp,
                replaces: None,
                ..
            },
        )] => {
            assert_eq!(*r, reg);
            assert_eq!(from_uri, "sip:bob@127.0.0.1:5080");
            assert_eq!(from_display_name.as_deref(), Some("Bob"));
            assert_eq!(call_id, "in-call-1@peer");
            assert_eq!(sdp.as_deref(), Some(OFFER));
            *call
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(h.responses()[0].status(), 100);
    h.stack.ring(h.now, call).unwrap();
    let ringing = h.responses().pop().unwrap();
    assert_eq!(ringing.status(), 180);
    let tag = ringing.to().tag().expect("180 carries our tag");
    h.stack.answer(h.now, call, ANSWER.into()).unwrap();
    let ok = h.responses().pop().unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.to().tag().as_deref(),
        Some(tag.as_str()),
        "same tag as the 180"
    );
    assert_eq!(ok.body(), ANSWER.as_bytes());
    let contact = &ok.contacts().as_slice()[0];
    assert_eq!(
        contact.uri.as_str(),
        format!("sip:{token}@127.0.0.1:5070;transport=udp")
    );
    // No ACK yet: the 200 is retransmitted after T1, then 2*T1 (RFC 3261 13.3.1.4).
    h.advance(Duration::from_millis(500));
    assert_eq!(h.responses()[0].status(), 200);
    h.advance(Duration::from_millis(500));
    assert!(h.responses().is_empty());
    h.advance(Duration::from_millis(500));
    assert_eq!(h.responses()[0].status(), 200);
    let ack = h.peer_request(
        Method::Ack,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "10 ACK"),
        None,
    );
    h.deliver(ack);
    assert_eq!(
        h.events(),
        [(call, CallEvent::Confirmed { sdp_in_ack: None })]
    );
    h.advance(Duration::from_secs(4));
    assert!(h.responses().is_empty(), "no retransmission after the ACK");
    h.stack.hangup(h.now, call).unwrap();
    let bye = h.one_request(Method::Bye);
    assert_eq!(bye.uri().as_str(), "sip:bob@127.0.0.1:5080");
    assert_eq!(bye.to().tag().as_deref(), Some("bob-tag"));
    assert_eq!(bye.from().tag().as_deref(), Some(tag.as_str()));
    assert_eq!(h.events(), [hung_up(call)]);
    h.reply(&bye, 200, "OK", &[]);
    h.assert_clean_after_timers();
    assert_eq!(h.stack.registration_count(), 1);
}

#[test]
fn incoming_call_remote_bye() {
    let mut h = Harness::new();
    let (call, tag, token) = incoming_confirmed(&mut h);
    let bye = h.peer_request(
        Method::Bye,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "11 BYE"),
        None,
    );
    h.deliver(bye);
    assert_eq!(h.responses()[0].status(), 200);
    assert_eq!(h.events(), [remote_bye(call)]);
    h.assert_clean_after_timers();
}

#[test]
fn incoming_without_sdp_takes_the_answer_from_the_ack() {
    let mut h = Harness::new();
    let (_, token) = registered(&mut h);
    incoming_invite(&mut h, &token, None);
    let call = match h.events().as_slice() {
        [(call, CallEvent::Incoming { sdp: None, .. })] => *call,
        other => panic!("{other:?}"),
    };
    h.responses();
    h.stack.answer(h.now, call, OFFER.into()).unwrap();
    let ok = h.responses().pop().unwrap();
    assert_eq!(ok.body(), OFFER.as_bytes(), "our offer in the 200");
    let tag = ok.to().tag().unwrap();
    let ack = h.peer_request(
        Method::Ack,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "10 ACK"),
        Some(ANSWER),
    );
    h.deliver(ack);
    assert_eq!(
        h.events(),
        [(
            call,
            CallEvent::Confirmed {
                sdp_in_ack: Some(ANSWER.into())
            }
        )]
    );
    h.stack.hangup(h.now, call).unwrap();
    h.one_request(Method::Bye);
    assert_eq!(h.events(), [hung_up(call)]);
    h.assert_clean_after_timers();
}

#[test]
fn caller_cancel_gets_200_and_487() {
    let mut h = Harness::new();
    let (_, token) = registered(&mut h);
    let headers = incoming_invite(&mut h, &token, Some(OFFER));
    let call = match h.events().as_slice() {
        [(call, CallEvent::Incoming { .. })] => *call,
        other => panic!("{other:?}"),
    };
    h.responses();
    h.stack.ring(h.now, call).unwrap();
    h.responses();
    // CANCEL: same branch as the INVITE (RFC 3261 9.1).
    h.branch -= 1;
    let mut cancel_headers = headers.clone();
    cancel_headers[3].1 = "10 CANCEL".into();
    let cancel = h.peer_request(
        Method::Cancel,
        &format!("sip:{token}@127.0.0.1:5070"),
        &cancel_headers,
        None,
    );
    h.deliver(cancel);
    let mut statuses: Vec<(u16, String)> = h
        .responses()
        .iter()
        .map(|r| (r.status(), r.cseq().method.to_string()))
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [(200, "CANCEL".to_owned()), (487, "INVITE".to_owned())]
    );
    assert_eq!(
        h.events(),
        [terminated(
            call,
            CallEnd::new(CallEndCause::Cancelled),
            "487 Request Terminated"
        )]
    );
    assert_eq!(
        h.stack.answer(h.now, call, ANSWER.into()),
        Err(CallError::UnknownCall)
    );
    h.assert_clean_after_timers();
}

#[test]
fn decline_and_hangup_of_unanswered_incoming_calls() {
    let mut h = Harness::new();
    let (_, token) = registered(&mut h);
    incoming_invite(&mut h, &token, Some(OFFER));
    let call = match h.events().as_slice() {
        [(call, CallEvent::Incoming { .. })] => *call,
        other => panic!("{other:?}"),
    };
    h.responses();
    h.stack.decline(h.now, call, 603).unwrap();
    assert_eq!(h.responses()[0].status(), 603);
    assert_eq!(
        h.events(),
        [terminated(call, CallEnd::declined(603), "603 Decline")]
    );

    // A second call, ended by hangup (WebSocket drop): 486.
    h.branch += 10;
    let invite = h.peer_request(
        Method::Invite,
        &format!("sip:{token}@127.0.0.1:5070"),
        &[
            ("From", "<sip:carol@127.0.0.1:5080>;tag=c1".to_owned()),
            ("To", format!("<sip:{token}@127.0.0.1:5070>")),
            ("Call-ID", "in-call-2@peer".to_owned()),
            ("CSeq", "1 INVITE".to_owned()),
            ("Contact", "<sip:carol@127.0.0.1:5080>".to_owned()),
        ],
        None,
    );
    h.deliver(invite);
    let call2 = match h.events().as_slice() {
        [(call, CallEvent::Incoming { .. })] => *call,
        other => panic!("{other:?}"),
    };
    assert_ne!(call2, call);
    h.responses();
    h.stack.hangup(h.now, call2).unwrap();
    assert_eq!(h.responses()[0].status(), 486);
    assert_eq!(h.events(), [hung_up(call2)]);
    h.assert_clean_after_timers();
}

#[test]
fn invite_for_unknown_token_gets_480_and_over_limit_503() {
    let mut h = Harness::new();
    let (_, token) = registered(&mut h);
    incoming_invite(&mut h, "nobody", Some(OFFER));
    let statuses: Vec<u16> = h.responses().iter().map(|r| r.status()).collect();
    assert_eq!(statuses, [100, 480]);
    h.stack.set_max_calls(0);
    h.branch += 1;
    incoming_invite(&mut h, &token, Some(OFFER));
    let statuses: Vec<u16> = h.responses().iter().map(|r| r.status()).collect();
    assert_eq!(statuses, [100, 503]);
    assert!(h.events().is_empty());
    assert_eq!(
        h.stack
            .invite(h.now, &identity(), "bob@127.0.0.1:5080", OFFER.into()),
        Err(CallError::TooManyCalls)
    );
    h.assert_clean_after_timers();
}

#[test]
fn answered_call_without_ack_is_ended_with_bye_after_64_t1() {
    let mut h = Harness::new();
    let (_, token) = registered(&mut h);
    incoming_invite(&mut h, &token, Some(OFFER));
    let call = match h.events().as_slice() {
        [(call, CallEvent::Incoming { .. })] => *call,
        other => panic!("{other:?}"),
    };
    assert_eq!(h.responses()[0].status(), 100);
    h.stack.answer(h.now, call, ANSWER.into()).unwrap();
    assert_eq!(h.responses()[0].status(), 200);
    let mut retransmissions = 0;
    let mut bye = None;
    for _ in 0..66 {
        h.advance(Duration::from_millis(500));
        for m in h.sent() {
            match m {
                SipMessage::Response(r) if r.status() == 200 => retransmissions += 1,
                SipMessage::Request(r) if *r.method() == Method::Bye => bye = Some(r),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // T1, 2T1, 4T1, then T2 = 4 s until 32 s: 0.5+1+2+4*7 .. about 10 retransmissions.
    assert!((8..=12).contains(&retransmissions), "{retransmissions}");
    assert!(bye.is_some(), "BYE after the ACK timeout");
    assert_eq!(
        h.events(),
        [terminated(
            call,
            CallEnd::new(CallEndCause::AckTimeout),
            "408 Request Timeout"
        )]
    );
    h.assert_clean_after_timers();
}

#[test]
fn hangup_between_200_and_ack_sends_bye_when_the_ack_arrives() {
    let mut h = Harness::new();
    let (_, token) = registered(&mut h);
    incoming_invite(&mut h, &token, Some(OFFER));
    let call = match h.events().as_slice() {
        [(call, CallEvent::Incoming { .. })] => *call,
        other => panic!("{other:?}"),
    };
    h.responses();
    h.stack.answer(h.now, call, ANSWER.into()).unwrap();
    let tag = h.responses().pop().unwrap().to().tag().unwrap();
    h.stack.hangup(h.now, call).unwrap();
    assert_eq!(h.events(), [hung_up(call)]);
    assert!(
        h.requests().is_empty(),
        "no BYE before the ACK (RFC 3261 15)"
    );
    let ack = h.peer_request(
        Method::Ack,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "10 ACK"),
        None,
    );
    h.deliver(ack);
    let bye = h.one_request(Method::Bye);
    assert_eq!(bye.to().tag().as_deref(), Some("bob-tag"));
    assert!(h.events().is_empty(), "terminated only once");
    h.assert_clean_after_timers();
}

/// Issue 16: an INVITE without Contact got 480 (nobody takes it) instead of 400; RFC 3261
/// section 8.1.1.8 makes Contact mandatory in an INVITE, whoever it is for.
#[test]
fn invite_without_contact_gets_400_whoever_it_is_for() {
    let mut h = Harness::new();
    let (_, token) = registered(&mut h);
    for target in ["nobody", token.as_str()] {
        let headers: Vec<_> = incoming_headers(target)
            .into_iter()
            .filter(|(n, _)| *n != "Contact")
            .collect();
        let invite = h.peer_request(
            Method::Invite,
            &format!("sip:{target}@127.0.0.1:5070"),
            &headers,
            Some(OFFER),
        );
        h.deliver(invite);
        let answers: Vec<(u16, String)> = h
            .responses()
            .iter()
            .map(|r| (r.status(), r.reason().to_owned()))
            .collect();
        assert_eq!(
            answers.last(),
            Some(&(400, "Missing Contact".to_owned())),
            "{target}: {answers:?}"
        );
    }
    assert!(h.events().is_empty());
}

/// Issue 16: requests missing From, To, Call-ID or CSeq, or with `CSeq: abc`, were dropped
/// silently; RFC 3261 sections 8.2 and 16.3 want a 400 whose reason names the defect.
#[test]
fn requests_missing_mandatory_headers_get_400_naming_the_defect() {
    let mut h = Harness::new();
    let cases: [(&str, Option<&str>, &str); 5] = [
        ("From", None, "missing From"),
        ("To", None, "missing To"),
        ("Call-ID", None, "missing Call-ID"),
        ("CSeq", None, "missing CSeq"),
        ("CSeq", Some("abc"), "malformed CSeq"),
    ];
    for (name, replacement, defect) in cases {
        let headers: Vec<(&str, String)> = incoming_headers("nobody")
            .into_iter()
            .filter_map(|(n, v)| match (n == name, replacement) {
                (false, _) => Some((n, v)),
                (true, Some(r)) => Some((n, r.to_owned())),
                (true, None) => None,
            })
            .collect();
        let options = h.peer_request(Method::Options, "sip:nobody@127.0.0.1:5070", &headers, None);
        h.deliver(options);
        let sent = h.sent_bytes();
        let reply = sent
            .iter()
            .find(|b| b.starts_with(b"SIP/2.0 "))
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_else(|| panic!("no answer without {name}"));
        let status_line = reply.lines().next().unwrap_or_default();
        assert!(status_line.starts_with("SIP/2.0 400 "), "{status_line}");
        assert!(status_line.contains(defect), "{status_line}");
        assert!(
            reply.contains("branch=z9hG4bKpeer"),
            "the Via routes it: {reply}"
        );
    }
}

#[test]
fn draining_refuses_new_calls_with_retry_after_and_counts_transactions() {
    use crate::registration::RegState;
    use crate::txn::TxnRole;
    let mut h = Harness::new();
    let (_reg, token) = registered(&mut h);
    assert_eq!(h.stack.registration_states(), [0, 1, 0, 0]);
    assert_eq!(RegState::ALL[1], RegState::Registered);
    h.stack.set_refuse_new_calls(Some(5));
    incoming_invite(&mut h, &token, Some(OFFER));
    assert!(h.events().is_empty(), "no call reaches the gateway");
    let refusal = h.responses().pop().unwrap();
    assert_eq!(refusal.status(), 503);
    assert_eq!(refusal.headers().get("Retry-After"), Some("5"));
    h.assert_clean_after_timers();
    let stats = h.stack.transaction_stats();
    assert_eq!(stats.count(TxnRole::Server, "INVITE", 503), 1);
    assert_eq!(stats.count(TxnRole::Client, "REGISTER", 200), 1);
    // Back to normal: the next INVITE rings.
    h.stack.set_refuse_new_calls(None);
    incoming_invite(&mut h, &token, Some(OFFER));
    assert!(matches!(
        h.events().as_slice(),
        [(_, CallEvent::Incoming { .. })]
    ));
}
