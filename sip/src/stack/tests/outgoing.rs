//! Outgoing calls: progress, challenges, fail-over, CANCEL, forks, the 488 retry offer.

use super::*;

#[test]
fn outgoing_call_progress_early_media_accept_and_local_bye() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob();
    assert_eq!(invite.uri().as_str(), "sip:bob@127.0.0.1:5080");
    assert_eq!(invite.from().display_name.as_deref(), Some("Alice Example"));
    assert_eq!(invite.from().uri.as_str(), "sip:alice@127.0.0.1:5080");
    assert_eq!(invite.to().uri.as_str(), "sip:bob@127.0.0.1:5080");
    assert!(invite.to().tag().is_none());
    assert_eq!(invite.body(), OFFER.as_bytes());
    assert_eq!(invite.content_type(), Some("application/sdp"));
    assert_eq!(header(&invite, "User-Agent"), "test-gw");
    let contact = &invite.contacts().as_slice()[0];
    assert!(contact.uri.as_str().starts_with("sip:sylk-"));
    assert!(contact
        .uri
        .as_str()
        .ends_with("@127.0.0.1:5070;transport=udp"));
    h.reply(&invite, 100, "Trying", &[]);
    h.reply(&invite, 180, "Ringing", &[("Contact", PEER_CONTACT)]);
    h.reply_with(
        &invite,
        183,
        "Session Progress",
        &[("Contact", PEER_CONTACT)],
        Some(ANSWER),
    );
    assert_eq!(
        h.events(),
        [
            (
                call,
                CallEvent::Progress {
                    code: 100,
                    reason: "Trying".into(),
                    sdp: None
                }
            ),
            (
                call,
                CallEvent::Progress {
                    code: 180,
                    reason: "Ringing".into(),
                    sdp: None
                }
            ),
            (
                call,
                CallEvent::Progress {
                    code: 183,
                    reason: "Session Progress".into(),
                    sdp: Some(ANSWER.into())
                }
            ),
        ]
    );
    assert_eq!(h.stack.dialog_count(), 1, "early dialog");
    h.reply_with(
        &invite,
        200,
        "OK",
        &[
            ("Contact", PEER_CONTACT),
            ("Record-Route", "<sip:127.0.0.1:5080;lr>"),
        ],
        Some(ANSWER),
    );
    assert_accepted(h.events(), call, ANSWER);
    let ack = h.one_request(Method::Ack);
    assert_eq!(ack.uri().as_str(), "sip:bob@127.0.0.1:5080");
    assert_eq!(ack.cseq().seq, invite.cseq().seq);
    assert_eq!(ack.to().tag().as_deref(), Some("peer-tag"));
    assert_eq!(header(&ack, "Route"), "<sip:127.0.0.1:5080;lr>");
    assert_ne!(
        ack.top_via().unwrap().branch(),
        invite.top_via().unwrap().branch(),
        "the 2xx ACK is a new transaction (RFC 3261 17.1.1.3)"
    );
    // A retransmitted 200 is ACKed again.
    h.reply_with(
        &invite,
        200,
        "OK",
        &[("Contact", PEER_CONTACT)],
        Some(ANSWER),
    );
    h.one_request(Method::Ack);
    assert!(h.events().is_empty());

    h.stack.hangup(h.now, call).unwrap();
    assert_eq!(h.events(), [hung_up(call)]);
    let bye = h.one_request(Method::Bye);
    assert_eq!(bye.cseq().seq, invite.cseq().seq + 1);
    assert_eq!(bye.call_id(), invite.call_id());
    assert_eq!(bye.from().tag(), invite.from().tag());
    assert_eq!(bye.to().tag().as_deref(), Some("peer-tag"));
    assert_eq!(h.stack.call_count(), 0);
    h.reply(&bye, 200, "OK", &[]);
    assert_eq!(h.stack.hangup(h.now, call), Err(CallError::UnknownCall));
    h.assert_clean_after_timers();
}

#[test]
fn outgoing_call_ended_by_remote_bye() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob();
    h.reply_with(
        &invite,
        200,
        "OK",
        &[("Contact", PEER_CONTACT)],
        Some(ANSWER),
    );
    h.one_request(Method::Ack);
    h.events();
    let bye = h.peer_request(
        Method::Bye,
        header(&invite, "Contact").trim_matches(['<', '>']),
        &[
            ("From", "<sip:bob@127.0.0.1:5080>;tag=peer-tag".to_owned()),
            ("To", invite.from().to_string()),
            ("Call-ID", invite.call_id().to_owned()),
            ("CSeq", "1 BYE".to_owned()),
        ],
        None,
    );
    h.deliver(bye.clone());
    let ok = h.responses();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].status(), 200);
    assert_eq!(h.events(), [remote_bye(call)]);
    // A retransmitted BYE is answered by its transaction, not by a call that is gone.
    h.deliver(bye);
    assert_eq!(h.responses()[0].status(), 200);
    h.assert_clean_after_timers();
}

#[test]
fn challenge_is_answered_once_from_the_ha1() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob();
    let challenge = [(
        "Proxy-Authenticate",
        "Digest realm=\"127.0.0.1\", nonce=\"abc\", qop=\"auth\"",
    )];
    h.reply(&invite, 407, "Proxy Authentication Required", &challenge);
    let mut sent = h.requests();
    assert_eq!(sent.len(), 2, "ACK for the 407, then the new INVITE");
    assert_eq!(*sent[0].method(), Method::Ack);
    let second = sent.remove(1);
    assert_eq!(*second.method(), Method::Invite);
    assert_eq!(second.cseq().seq, invite.cseq().seq + 1);
    assert_eq!(second.call_id(), invite.call_id());
    assert_eq!(second.from().tag(), invite.from().tag());
    let auth = header(&second, "Proxy-Authorization");
    assert!(auth.contains("username=\"alice\""), "{auth}");
    assert!(auth.contains("uri=\"sip:bob@127.0.0.1:5080\""), "{auth}");
    assert!(h.events().is_empty(), "challenges are not reported");
    // The same challenge again means the credentials are wrong: give up.
    h.reply(&second, 407, "Proxy Authentication Required", &challenge);
    h.one_request(Method::Ack);
    assert_eq!(
        h.events(),
        [terminated(
            call,
            CallEnd {
                code: 407,
                cause: CallEndCause::Unauthorized {
                    phrase: "Proxy Authentication Required".into(),
                    error: crate::auth::AuthError::Rejected,
                },
            },
            "407 Proxy Authentication Required"
        )]
    );
    h.assert_clean_after_timers();
}

#[test]
fn challenge_then_accepted_with_credentials_in_ack() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob();
    h.reply(
        &invite,
        401,
        "Unauthorized",
        &[("WWW-Authenticate", "Digest realm=\"r\", nonce=\"n1\"")],
    );
    let second = h.requests().pop().unwrap();
    let auth = header(&second, "Authorization").to_owned();
    h.reply_with(
        &second,
        200,
        "OK",
        &[("Contact", PEER_CONTACT)],
        Some(ANSWER),
    );
    let ack = h.one_request(Method::Ack);
    assert_eq!(header(&ack, "Authorization"), auth, "RFC 3261 22.1");
    assert_accepted(h.events(), call, ANSWER);
    h.stack.hangup(h.now, call).unwrap();
    h.one_request(Method::Bye);
    assert_eq!(h.events(), [hung_up(call)]);
    h.assert_clean_after_timers();
}

#[test]
fn the_invite_is_forgotten_64_t1_after_the_2xx_and_the_dialog_goes_on() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob();
    h.reply_with(
        &invite,
        200,
        "OK",
        &[("Contact", PEER_CONTACT)],
        Some(ANSWER),
    );
    h.one_request(Method::Ack);
    assert_accepted(h.events(), call, ANSWER);
    // Within 64*T1 a retransmitted 2xx is ACKed again (RFC 3261 section 13.2.2.4)...
    h.advance(Duration::from_secs(20));
    h.sent();
    h.reply_with(
        &invite,
        200,
        "OK",
        &[("Contact", PEER_CONTACT)],
        Some(ANSWER),
    );
    h.one_request(Method::Ack);
    assert_eq!(h.stack.calls_holding_invite(), 1);
    // ...after it the peer retransmits no more: the INVITE and its ACK are dropped (a call
    // then holds only its dialog), and the dialog is untouched.
    h.advance(Duration::from_secs(13));
    h.sent();
    assert_eq!(h.stack.calls_holding_invite(), 0);
    assert!(h.events().is_empty());
    h.stack.hangup(h.now, call).unwrap();
    h.one_request(Method::Bye);
    assert_eq!(h.events(), [hung_up(call)]);
    h.assert_clean_after_timers();
}

#[test]
fn busy_is_reported_with_code_and_phrase() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob();
    h.reply(&invite, 180, "Ringing", &[("Contact", PEER_CONTACT)]);
    h.reply(&invite, 486, "Busy Here", &[]);
    let ack = h.one_request(Method::Ack);
    assert_eq!(
        ack.top_via().unwrap().branch(),
        invite.top_via().unwrap().branch(),
        "non-2xx ACK is the transaction's (RFC 3261 17.1.1.3)"
    );
    let events = h.events();
    assert_eq!(
        events.last(),
        Some(&terminated(
            call,
            CallEnd::rejected(486, "Busy Here"),
            "486 Busy Here"
        ))
    );
    h.assert_clean_after_timers();
}

#[test]
fn no_answer_at_all_times_out_with_408() {
    let mut h = Harness::new();
    let (call, _invite) = h.call_bob();
    // Timer B: 64*T1 = 32 s, with Timer A retransmissions on the way.
    let mut retransmissions = 0;
    for _ in 0..64 {
        h.advance(Duration::from_millis(500));
        retransmissions += h.requests().len();
        if h.stack.call_count() == 0 {
            break;
        }
    }
    assert!(
        retransmissions >= 5,
        "Timer A retransmits: {retransmissions}"
    );
    assert_eq!(
        h.events(),
        [terminated(
            call,
            CallEnd::new(CallEndCause::Timeout),
            "408 Request Timeout"
        )]
    );
    h.assert_clean_after_timers();
}

#[test]
fn hangup_before_provisional_waits_then_cancels() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob();
    h.stack.hangup(h.now, call).unwrap();
    assert_eq!(h.events(), [hung_up(call)]);
    assert!(
        h.requests().is_empty(),
        "no CANCEL before a provisional (RFC 3261 9.1)"
    );
    h.reply(&invite, 180, "Ringing", &[("Contact", PEER_CONTACT)]);
    let cancel = h.one_request(Method::Cancel);
    assert_eq!(
        cancel.top_via().unwrap().branch(),
        invite.top_via().unwrap().branch()
    );
    assert_eq!(cancel.cseq().seq, invite.cseq().seq);
    h.reply(&cancel, 200, "OK", &[]);
    h.reply(&invite, 487, "Request Terminated", &[]);
    h.one_request(Method::Ack);
    assert!(
        h.events().is_empty(),
        "terminated was reported once, at hangup"
    );
    assert_eq!(h.stack.call_count(), 0);
    h.assert_clean_after_timers();
}

#[test]
fn hangup_after_provisional_cancels_at_once() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob();
    h.reply(
        &invite,
        183,
        "Session Progress",
        &[("Contact", PEER_CONTACT)],
    );
    h.events();
    h.stack.hangup(h.now, call).unwrap();
    assert_eq!(h.events(), [hung_up(call)]);
    let cancel = h.one_request(Method::Cancel);
    h.reply(&cancel, 200, "OK", &[]);
    // The peer never sends the 487: the INVITE transaction is given up after 64*T1.
    assert_eq!(h.stack.call_count(), 1);
    h.assert_clean_after_timers();
}

#[test]
fn ok_crossing_cancel_is_acked_and_byed() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob();
    h.reply(&invite, 180, "Ringing", &[("Contact", PEER_CONTACT)]);
    h.events();
    h.stack.hangup(h.now, call).unwrap();
    let cancel = h.one_request(Method::Cancel);
    h.reply_with(
        &invite,
        200,
        "OK",
        &[("Contact", PEER_CONTACT)],
        Some(ANSWER),
    );
    let sent = h.requests();
    let methods: Vec<_> = sent.iter().map(|r| r.method().clone()).collect();
    assert_eq!(methods, [Method::Ack, Method::Bye]);
    assert_eq!(sent[1].to().tag().as_deref(), Some("peer-tag"));
    h.reply(&cancel, 481, "Call/Transaction Does Not Exist", &[]);
    h.reply(&sent[1], 200, "OK", &[]);
    let events = h.events();
    assert_eq!(events, [hung_up(call)]);
    h.assert_clean_after_timers();
}

#[test]
fn unreachable_first_target_is_not_retried_without_more_targets() {
    // One numeric target; a 503 before any provisional fails over, and with nothing left the
    // call ends with that status.
    let mut h = Harness::new();
    let (call, invite) = h.call_bob();
    h.reply(&invite, 503, "Service Unavailable", &[]);
    h.one_request(Method::Ack);
    assert_eq!(
        h.events(),
        [terminated(
            call,
            CallEnd::rejected(503, "Service Unavailable"),
            "503 Service Unavailable"
        )]
    );
    h.assert_clean_after_timers();
}

#[test]
fn timeout_before_any_provisional_fails_over_to_the_next_target() {
    let mut h = Harness::new();
    let call = h
        .stack
        .invite(h.now, &identity(), "bob@example.test", OFFER.into())
        .unwrap();
    for _ in 0..5 {
        answer_dns(&mut h);
    }
    let first_target = SocketAddr::from(([127, 0, 0, 1], 5060));
    let second_target = SocketAddr::from(([127, 0, 0, 2], 5060));
    let mut to_first = 0;
    let mut second = None;
    // Timer B on the first target (32 s), with Timer A retransmissions to it.
    for _ in 0..70 {
        while let Some(t) = h.poll_transmit() {
            let SipTransmit::Datagram { to, bytes } = t else {
                panic!("{t:?}");
            };
            let Ok(SipMessage::Request(r)) = parse(&bytes, Framing::Datagram) else {
                panic!("not a request");
            };
            assert_eq!(*r.method(), Method::Invite);
            if to == first_target {
                to_first += 1;
            } else {
                assert_eq!(to, second_target);
                second.get_or_insert(r);
            }
        }
        if second.is_some() {
            break;
        }
        h.advance(Duration::from_millis(500));
    }
    assert!(to_first >= 5, "INVITE retransmitted to the first target");
    let second = second.expect("INVITE to the second target after Timer B");
    assert_eq!(second.uri().as_str(), "sip:bob@example.test");
    assert!(h.events().is_empty(), "fail-over is silent");
    // The second target answers (through the test socket: responses carry our Via only).
    let busy = ResponseBuilder::from_request(&second, 486, "Busy Here", Some("x")).to_bytes();
    h.stack.handle_datagram(h.now, second_target, &busy);
    assert_eq!(
        h.events(),
        [terminated(
            call,
            CallEnd::rejected(486, "Busy Here"),
            "486 Busy Here"
        )]
    );
    while h.poll_transmit().is_some() {}
    for _ in 0..80 {
        h.advance(Duration::from_millis(500));
        while h.poll_transmit().is_some() {}
    }
    assert_eq!(h.stack.call_count(), 0);
    assert_eq!(h.stack.transaction_count(), 0);
}

#[test]
fn invite_over_a_connection_that_closes_fails_at_once() {
    let mut h = Harness::with_transports(vec![Transport::Udp, Transport::Tcp]);
    let call = h
        .stack
        .invite(
            h.now,
            &identity(),
            "bob@127.0.0.1:5080;transport=tcp",
            OFFER.into(),
        )
        .unwrap();
    let (flow, r) = h.over_tcp().expect("a connection is opened");
    assert_eq!(*r.method(), Method::Invite);
    assert!(header(&r, "Via").starts_with("SIP/2.0/TCP "));
    let contact = r.contacts().as_slice()[0].uri.to_string();
    assert!(contact.ends_with(";transport=tcp"), "{contact}");
    h.stack.handle_stream_closed(h.now, flow);
    assert_eq!(
        h.events(),
        [terminated(
            call,
            CallEnd::new(CallEndCause::TransportError),
            "503 Service Unavailable"
        )]
    );
    assert_eq!(h.stack.call_count(), 0);
    assert_eq!(h.stack.transaction_count(), 0);
}

#[test]
fn not_acceptable_retries_once_with_the_second_offer_in_a_new_transaction() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob_with_retry();
    assert_eq!(invite.body(), OFFER.as_bytes());
    h.reply(&invite, 100, "Trying", &[]);
    h.reply(&invite, 488, "Not Acceptable Here", &[]);
    let [second] = &h.acked_then(&invite)[..] else {
        panic!("one new INVITE after the ACK")
    };
    assert_eq!(*second.method(), Method::Invite);
    // RFC 3261 section 8.1.3.5: same Call-ID, From tag and To (no tag), next CSeq, new branch.
    assert_eq!(second.call_id(), invite.call_id());
    assert_eq!(second.from().tag(), invite.from().tag());
    assert_eq!(second.to().tag(), None);
    assert_eq!(second.cseq().seq, invite.cseq().seq + 1);
    assert_ne!(
        second.top_via().unwrap().branch(),
        invite.top_via().unwrap().branch()
    );
    assert_eq!(second.body(), SAVP_OFFER.as_bytes());
    let events = h.events();
    assert_eq!(
        events.last(),
        Some(&(call, CallEvent::OfferRetried { code: 488 })),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, (_, CallEvent::Terminated(..)))),
        "{events:?}"
    );
    // The retry is answered: the call goes on as usual.
    h.reply_with(
        second,
        200,
        "OK",
        &[("Contact", PEER_CONTACT)],
        Some(ANSWER),
    );
    h.one_request(Method::Ack);
    assert_accepted(h.events(), call, ANSWER);
    h.stack.hangup(h.now, call).unwrap();
    h.one_request(Method::Bye);
    assert_eq!(h.events(), [hung_up(call)]);
    h.assert_clean_after_timers();
}

#[test]
fn a_second_488_ends_the_call_and_no_retry_without_a_second_offer() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob_with_retry();
    h.reply(&invite, 488, "Not Acceptable Here", &[]);
    let second = h.acked_then(&invite).pop().unwrap();
    assert_eq!(h.events(), [(call, CallEvent::OfferRetried { code: 488 })]);
    h.reply(&second, 488, "Not Acceptable Here", &[]);
    assert!(h.acked_then(&second).is_empty(), "exactly one retry");
    assert_eq!(
        h.events(),
        [terminated(
            call,
            CallEnd::new(CallEndCause::OfferRetryExhausted {
                phrase: "Not Acceptable Here".into()
            }),
            "488 Not Acceptable Here"
        )]
    );
    h.assert_clean_after_timers();

    // Without a retry offer (media.sip_srtp "off" or "mandatory") the first 488 is final.
    let (call, invite) = h.call_bob();
    h.reply(&invite, 488, "Not Acceptable Here", &[]);
    assert!(h.acked_then(&invite).is_empty());
    assert_eq!(
        h.events(),
        [terminated(
            call,
            CallEnd::rejected(488, "Not Acceptable Here"),
            "488 Not Acceptable Here"
        )]
    );
    h.assert_clean_after_timers();
}

#[test]
fn retry_after_488_keeps_the_credentials_of_a_407() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob_with_retry();
    let challenge = [(
        "Proxy-Authenticate",
        "Digest realm=\"127.0.0.1\", nonce=\"abc\", qop=\"auth\"",
    )];
    h.reply(&invite, 407, "Proxy Authentication Required", &challenge);
    let authed = h.acked_then(&invite).pop().unwrap();
    let first_auth = header(&authed, "Proxy-Authorization").to_owned();
    h.reply(&authed, 488, "Not Acceptable Here", &[]);
    let retried = h.acked_then(&authed).pop().unwrap();
    assert_eq!(retried.cseq().seq, invite.cseq().seq + 2);
    assert_eq!(retried.body(), SAVP_OFFER.as_bytes());
    let auth = header(&retried, "Proxy-Authorization");
    assert!(auth.contains("nonce=\"abc\""), "{auth}");
    assert_ne!(auth, first_auth, "nc counts up and the body changed");
    assert_eq!(h.events(), [(call, CallEvent::OfferRetried { code: 488 })]);
    // A fresh challenge for the retry (another nonce) is answered too.
    let challenge2 = [(
        "Proxy-Authenticate",
        "Digest realm=\"127.0.0.1\", nonce=\"def\", qop=\"auth\"",
    )];
    h.reply(&retried, 407, "Proxy Authentication Required", &challenge2);
    let again = h.acked_then(&retried).pop().unwrap();
    assert!(header(&again, "Proxy-Authorization").contains("nonce=\"def\""));
    assert_eq!(again.body(), SAVP_OFFER.as_bytes());
    assert!(h.events().is_empty());
    h.stack.hangup(h.now, call).unwrap();
    h.sent();
    h.reply(&again, 487, "Request Terminated", &[]);
    h.sent();
    assert_eq!(h.events(), [hung_up(call)]);
    h.assert_clean_after_timers();
}

#[test]
fn no_offer_switch_after_an_early_answer() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob_with_retry();
    // 183 with SDP: the first offer has an early answer (RFC 3960) the gateway may use.
    h.reply_with(
        &invite,
        183,
        "Session Progress",
        &[("Contact", PEER_CONTACT)],
        Some(ANSWER),
    );
    h.events();
    h.reply(&invite, 488, "Not Acceptable Here", &[]);
    assert!(h.acked_then(&invite).is_empty());
    assert_eq!(
        h.events(),
        [terminated(
            call,
            CallEnd::rejected(488, "Not Acceptable Here"),
            "488 Not Acceptable Here"
        )]
    );
    h.assert_clean_after_timers();
}

#[test]
fn poll_output_gives_transmits_and_events_then_the_earliest_deadline() {
    let mut h = Harness::new();
    assert_eq!(
        h.stack.poll_output(),
        Output::Timeout(None),
        "an idle stack"
    );
    let call = h
        .stack
        .invite(h.now, &identity(), "bob@127.0.0.1:5080", OFFER.into())
        .unwrap();
    let Output::Transmit(SipTransmit::Datagram { to, .. }) = h.stack.poll_output() else {
        panic!("the INVITE first");
    };
    assert_eq!(to, peer());
    // Timer A (T1, RFC 3261 section 17.1.1.2) is the earliest deadline; asking again
    // without an input gives the same.
    let timer_a = Output::Timeout(Some(h.now + Duration::from_millis(500)));
    assert_eq!(h.stack.poll_output(), timer_a);
    assert_eq!(h.stack.poll_output(), timer_a);
    // An input that only reports: the event, then the unchanged deadline.
    h.stack.hangup(h.now, call).unwrap();
    assert!(matches!(
        h.stack.poll_output(),
        Output::Event(SipEvent::Call {
            event: CallEvent::Terminated(_),
            ..
        })
    ));
    assert_eq!(h.stack.poll_output(), timer_a);
}
