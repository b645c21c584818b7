//! Offers inside dialogs both ways and their races, with virtual time: our re-INVITE (ACK,
//! 491 glare with the RFC 3261 section 14.1 back-off, digest, failures), a re-INVITE crossing
//! the peer's BYE, UPDATE offers in early and confirmed dialogs (RFC 3311).

use super::*;

const NEW_OFFER: &str =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n";
const NEW_ANSWER: &str = "v=0\r\no=peer 7 8 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=recvonly\r\n";

/// An outgoing call to bob, answered and ACKed; returns it with its INVITE.
fn outgoing_confirmed(h: &mut Harness) -> (CallId, SipRequest) {
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
    (call, invite)
}

/// Headers of a request from bob inside the dialog of our INVITE `invite`.
fn from_bob(invite: &SipRequest, cseq: &str) -> Vec<(&'static str, String)> {
    vec![
        ("From", "<sip:bob@127.0.0.1:5080>;tag=peer-tag".to_owned()),
        ("To", invite.from().to_string()),
        ("Call-ID", invite.call_id().to_owned()),
        ("CSeq", cseq.to_owned()),
        ("Contact", PEER_CONTACT.to_owned()),
    ]
}

fn reply_tagged(
    h: &mut Harness,
    req: &SipRequest,
    status: u16,
    reason: &str,
    tag: &str,
    extra: &[(&str, &str)],
    sdp: Option<&str>,
) {
    let mut b = ResponseBuilder::from_request(req, status, reason, Some(tag));
    for (n, v) in extra {
        b = b.header(n, v);
    }
    if let Some(sdp) = sdp {
        b = b.body("application/sdp", sdp.as_bytes().to_vec());
    }
    h.deliver(b.to_bytes());
}

#[test]
fn our_reinvite_carries_contact_and_offer_and_its_2xx_is_acked() {
    let mut h = Harness::new();
    let (call, invite) = outgoing_confirmed(&mut h);
    h.stack
        .reinvite(
            h.now,
            call,
            NEW_OFFER.into(),
            vec![("X-Reason".into(), "hold".into())],
        )
        .unwrap();
    let re = h.one_request(Method::Invite);
    assert_eq!(re.cseq().seq, invite.cseq().seq + 1);
    assert_eq!(re.to().tag().as_deref(), Some("peer-tag"));
    assert_eq!(re.uri().as_str(), "sip:bob@127.0.0.1:5080");
    assert!(!re.contacts().as_slice().is_empty(), "RFC 3261 14.1");
    assert_eq!(re.body(), NEW_OFFER.as_bytes());
    assert_eq!(header(&re, "X-Reason"), "hold");
    assert!(header(&re, "Supported").contains("timer"));
    // A second offer while this one is out is refused.
    assert_eq!(
        h.stack.reinvite(h.now, call, OFFER.into(), Vec::new()),
        Err(CallError::InvalidState)
    );
    h.reply(&re, 100, "Trying", &[]);
    h.reply_with(
        &re,
        200,
        "OK",
        &[("Contact", PEER_CONTACT)],
        Some(NEW_ANSWER),
    );
    let ack = h.one_request(Method::Ack);
    assert_eq!(ack.cseq().seq, re.cseq().seq);
    assert_eq!(
        h.events(),
        [(
            call,
            CallEvent::ReOfferAnswered {
                sdp: Some(NEW_ANSWER.into())
            }
        )]
    );
    assert_eq!(h.stack.local_sdp(call), Some(NEW_OFFER));
    // The 2xx retransmitted: ACKed again, reported once.
    h.reply_with(
        &re,
        200,
        "OK",
        &[("Contact", PEER_CONTACT)],
        Some(NEW_ANSWER),
    );
    h.one_request(Method::Ack);
    assert!(h.events().is_empty());
    h.stack.hangup(h.now, call).unwrap();
    let bye = h.one_request(Method::Bye);
    assert_eq!(bye.cseq().seq, re.cseq().seq + 1);
    h.events();
    h.reply(&bye, 200, "OK", &[]);
    h.assert_clean_after_timers();
}

#[test]
fn glare_gets_491_both_ways_and_the_owner_of_the_call_id_retries_after_2_1_to_4_s() {
    let mut h = Harness::new();
    let (call, invite) = outgoing_confirmed(&mut h);
    h.stack
        .reinvite(h.now, call, NEW_OFFER.into(), Vec::new())
        .unwrap();
    let ours = h.one_request(Method::Invite);
    // The peer's re-INVITE crosses ours: RFC 3261 section 14.2, 491.
    let theirs = h.peer_request(
        Method::Invite,
        "sip:x@127.0.0.1:5070",
        &from_bob(&invite, "40 INVITE"),
        Some(NEW_ANSWER),
    );
    h.deliver(theirs.clone());
    let refused = h.responses();
    assert_eq!(refused.last().map(|r| r.status()), Some(491), "{refused:?}");
    // The peer ACKs our 491 (RFC 3261 17.2.1), so it is not retransmitted.
    let mut ack_headers = from_bob(&invite, "40 ACK");
    ack_headers[1].1 = refused.last().unwrap().to().to_string();
    let branch = format!("z9hG4bKpeer{}", h.branch);
    let via = Via::new(
        "UDP",
        Host::Ipv4([127, 0, 0, 1].into()),
        Some(5080),
        &branch,
    );
    let mut b = RequestBuilder::new(Method::Ack, Uri::parse("sip:x@127.0.0.1:5070").unwrap())
        .via(&via)
        .max_forwards(70);
    for (n, v) in &ack_headers {
        b = b.header(n, v);
    }
    h.deliver(b.to_bytes());
    assert!(h.events().is_empty(), "the gateway hears nothing of it");
    // The peer refuses ours the same way: ACK (transaction layer), no event yet.
    h.reply(&ours, 491, "Request Pending", &[]);
    h.one_request(Method::Ack);
    assert!(h.events().is_empty());
    // We own the Call-ID: the retry comes between 2.1 and 4 s later.
    h.advance(Duration::from_millis(2090));
    assert!(h.requests().is_empty(), "not before 2.1 s");
    let mut waited = Duration::from_millis(2090);
    let again = loop {
        h.advance(Duration::from_millis(10));
        waited += Duration::from_millis(10);
        let sent = h.requests();
        if let Some(r) = sent.into_iter().next() {
            break r;
        }
        assert!(waited <= Duration::from_secs(4), "no retry within 4 s");
    };
    assert_eq!(*again.method(), Method::Invite);
    assert!(again.cseq().seq > ours.cseq().seq, "a new transaction");
    assert_eq!(again.body(), NEW_OFFER.as_bytes(), "the same offer");
    h.reply_with(
        &again,
        200,
        "OK",
        &[("Contact", PEER_CONTACT)],
        Some(NEW_ANSWER),
    );
    h.one_request(Method::Ack);
    assert_eq!(
        h.events(),
        [(
            call,
            CallEvent::ReOfferAnswered {
                sdp: Some(NEW_ANSWER.into())
            }
        )]
    );
}

#[test]
fn the_peers_offer_during_our_back_off_goes_first_and_ours_is_given_up() {
    let mut h = Harness::new();
    let (call, invite) = outgoing_confirmed(&mut h);
    h.stack
        .reinvite(h.now, call, NEW_OFFER.into(), Vec::new())
        .unwrap();
    let ours = h.one_request(Method::Invite);
    h.reply(&ours, 491, "Request Pending", &[]);
    h.one_request(Method::Ack);
    assert!(h.events().is_empty());
    // The peer does not own the Call-ID: its retry (0-2 s) comes during our back-off.
    h.advance(Duration::from_millis(500));
    let theirs = h.peer_request(
        Method::Invite,
        "sip:x@127.0.0.1:5070",
        &from_bob(&invite, "41 INVITE"),
        Some(NEW_ANSWER),
    );
    h.deliver(theirs);
    assert_eq!(
        h.events(),
        [
            (
                call,
                CallEvent::ReOfferFailed {
                    code: 491,
                    reason: "Request Pending".into()
                }
            ),
            (
                call,
                CallEvent::ReOffer {
                    sdp: NEW_ANSWER.into()
                }
            )
        ]
    );
    h.stack
        .answer_reinvite(h.now, call, NEW_OFFER.into())
        .unwrap();
    let ok = h.responses().pop().unwrap();
    assert_eq!((ok.status(), ok.cseq().seq), (200, 41));
    // Our back-off ends with nothing to send: the offer was given up.
    h.advance(Duration::from_secs(4));
    assert!(
        h.sent()
            .iter()
            .all(|m| !matches!(m, SipMessage::Request(r) if *r.method() == Method::Invite)),
        "no retry of a given-up offer (only our 200's retransmissions)"
    );
    // A new offer of ours is possible once the peer's exchange is complete (its ACK).
    let mut ack = from_bob(&invite, "41 ACK");
    ack[1].1 = ok.to().to_string();
    let ack = h.peer_request(Method::Ack, "sip:x@127.0.0.1:5070", &ack, None);
    h.deliver(ack);
    h.stack
        .reinvite(h.now, call, NEW_OFFER.into(), Vec::new())
        .unwrap();
    h.one_request(Method::Invite);
}

#[test]
fn a_second_491_is_reported_and_the_session_stays() {
    let mut h = Harness::new();
    let (call, _, _) = incoming_confirmed(&mut h);
    h.stack
        .reinvite(h.now, call, NEW_OFFER.into(), Vec::new())
        .unwrap();
    let first = h.one_request(Method::Invite);
    h.reply(&first, 491, "Request Pending", &[]);
    h.one_request(Method::Ack);
    // Not the owner of the Call-ID: 0-2 s.
    h.advance(Duration::from_millis(2000));
    let second = h.one_request(Method::Invite);
    h.reply(&second, 491, "Request Pending", &[]);
    h.one_request(Method::Ack);
    assert_eq!(
        h.events(),
        [(
            call,
            CallEvent::ReOfferFailed {
                code: 491,
                reason: "Request Pending".into()
            }
        )]
    );
    assert_eq!(
        h.stack.local_sdp(call),
        Some(ANSWER),
        "the session as it was"
    );
    h.advance(Duration::from_secs(5));
    assert!(h.requests().is_empty(), "no third try");
    h.stack.hangup(h.now, call).unwrap();
    h.one_request(Method::Bye);
}

#[test]
fn our_reinvite_crossing_the_peers_bye_ends_the_call_once() {
    let mut h = Harness::new();
    let (call, invite) = outgoing_confirmed(&mut h);
    h.stack
        .reinvite(h.now, call, NEW_OFFER.into(), Vec::new())
        .unwrap();
    let ours = h.one_request(Method::Invite);
    let bye = h.peer_request(
        Method::Bye,
        "sip:x@127.0.0.1:5070",
        &from_bob(&invite, "41 BYE"),
        None,
    );
    h.deliver(bye);
    assert_eq!(h.responses().last().map(|r| r.status()), Some(200));
    assert_eq!(h.events(), [remote_bye(call)]);
    // The peer's answer to our re-INVITE arrives after its BYE: nothing more happens.
    h.reply(&ours, 481, "Call/Transaction Does Not Exist", &[]);
    h.sent();
    assert!(h.events().is_empty());
    h.assert_clean_after_timers();
}

#[test]
fn a_challenged_reinvite_is_answered_from_the_ha1_and_its_ack_repeats_the_credentials() {
    let mut h = Harness::new();
    let (call, _) = outgoing_confirmed(&mut h);
    h.stack
        .reinvite(h.now, call, NEW_OFFER.into(), Vec::new())
        .unwrap();
    let first = h.one_request(Method::Invite);
    h.reply(
        &first,
        407,
        "Proxy Authentication Required",
        &[(
            "Proxy-Authenticate",
            "Digest realm=\"127.0.0.1:5080\", nonce=\"n1\", qop=\"auth\"",
        )],
    );
    let mut sent = h.acked_then(&first);
    assert_eq!(sent.len(), 1);
    let again = sent.remove(0);
    assert_eq!(again.cseq().seq, first.cseq().seq + 1);
    let auth = header(&again, "Proxy-Authorization").to_owned();
    assert!(auth.contains("username=\"alice\""), "{auth}");
    h.reply_with(
        &again,
        200,
        "OK",
        &[("Contact", PEER_CONTACT)],
        Some(NEW_ANSWER),
    );
    let ack = h.one_request(Method::Ack);
    assert_eq!(header(&ack, "Proxy-Authorization"), auth, "RFC 3261 22.1");
    assert!(matches!(
        h.events().as_slice(),
        [(_, CallEvent::ReOfferAnswered { .. })]
    ));
}

#[test]
fn a_refused_reinvite_keeps_the_session_and_a_timed_out_one_ends_the_dialog() {
    let mut h = Harness::new();
    let (call, _) = outgoing_confirmed(&mut h);
    h.stack
        .reinvite(h.now, call, NEW_OFFER.into(), Vec::new())
        .unwrap();
    let re = h.one_request(Method::Invite);
    h.reply(&re, 488, "Not Acceptable Here", &[]);
    h.one_request(Method::Ack);
    assert_eq!(
        h.events(),
        [(
            call,
            CallEvent::ReOfferFailed {
                code: 488,
                reason: "Not Acceptable Here".into()
            }
        )]
    );
    assert_eq!(h.stack.local_sdp(call), Some(OFFER));
    // The next one is never answered: Timer B, and RFC 3261 14.1 ends the dialog.
    h.stack
        .reinvite(h.now, call, NEW_OFFER.into(), Vec::new())
        .unwrap();
    h.one_request(Method::Invite);
    for _ in 0..70 {
        h.advance(Duration::from_millis(500));
    }
    let events = h.events();
    assert!(
        matches!(
            events.as_slice(),
            [
                (_, CallEvent::ReOfferFailed { code: 408, .. }),
                (_, CallEvent::Terminated(CallEnd { code: 408, .. }))
            ]
        ),
        "{events:?}"
    );
    let sent = h.requests();
    assert!(sent.iter().any(|r| *r.method() == Method::Bye), "{sent:?}");
}

#[test]
fn update_offer_in_the_early_dialog_after_the_early_answer() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob();
    h.reply(&invite, 180, "Ringing", &[("Contact", PEER_CONTACT)]);
    // Before any early answer an UPDATE offer is refused for now (RFC 3311 section 5.2).
    let early = h.peer_request(
        Method::Update,
        "sip:x@127.0.0.1:5070",
        &from_bob(&invite, "30 UPDATE"),
        Some(NEW_ANSWER),
    );
    h.deliver(early);
    let refused = h.responses().pop().unwrap();
    assert_eq!(refused.status(), 500);
    assert!(refused.header("Retry-After").is_some());
    h.reply_with(
        &invite,
        183,
        "Session Progress",
        &[("Contact", PEER_CONTACT)],
        Some(ANSWER),
    );
    h.events();
    let update = h.peer_request(
        Method::Update,
        "sip:x@127.0.0.1:5070",
        &from_bob(&invite, "31 UPDATE"),
        Some(NEW_ANSWER),
    );
    h.deliver(update);
    assert_eq!(
        h.events(),
        [(
            call,
            CallEvent::ReOffer {
                sdp: NEW_ANSWER.into()
            }
        )]
    );
    h.stack
        .answer_reinvite(h.now, call, NEW_OFFER.into())
        .unwrap();
    let ok = h.responses().pop().unwrap();
    assert_eq!((ok.status(), ok.cseq().seq), (200, 31));
    assert_eq!(ok.body(), NEW_OFFER.as_bytes());
    assert!(
        !ok.contacts().as_slice().is_empty(),
        "UPDATE refreshes the target"
    );
    // Then the call is answered as usual.
    h.reply_with(&invite, 200, "OK", &[("Contact", PEER_CONTACT)], None);
    h.one_request(Method::Ack);
    assert!(matches!(
        h.events().as_slice(),
        [(_, CallEvent::Accepted { sdp: Some(_), .. })]
    ));
}

#[test]
fn update_in_the_confirmed_dialog_refresh_and_offer() {
    let mut h = Harness::new();
    let (call, tag, token) = incoming_confirmed(&mut h);
    let refresh = h.peer_request(
        Method::Update,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "11 UPDATE"),
        None,
    );
    h.deliver(refresh);
    let ok = h.responses().pop().unwrap();
    assert_eq!((ok.status(), ok.body().len()), (200, 0));
    assert!(h.events().is_empty());
    let offer = h.peer_request(
        Method::Update,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "12 UPDATE"),
        Some(NEW_ANSWER),
    );
    h.deliver(offer);
    assert_eq!(
        h.events(),
        [(
            call,
            CallEvent::ReOffer {
                sdp: NEW_ANSWER.into()
            }
        )]
    );
    // A re-INVITE while the UPDATE's offer waits: 500 with Retry-After.
    let reinvite = h.peer_request(
        Method::Invite,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "13 INVITE"),
        Some(NEW_ANSWER),
    );
    h.deliver(reinvite);
    let statuses: Vec<u16> = h.responses().iter().map(|r| r.status()).collect();
    assert_eq!(statuses.last(), Some(&500), "{statuses:?}");
    h.stack.reject_reinvite(h.now, call, 488).unwrap();
    let refused = h.responses().pop().unwrap();
    assert_eq!((refused.status(), refused.cseq().seq), (488, 12));
}

#[test]
fn reliable_provisionals_are_pracked_once_per_rseq() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob();
    assert!(header(&invite, "Supported").contains("100rel"));
    let reliable = [
        ("Contact", PEER_CONTACT),
        ("Require", "100rel"),
        ("RSeq", "7"),
    ];
    h.reply(&invite, 180, "Ringing", &reliable);
    let prack = h.one_request(Method::Prack);
    assert_eq!(
        header(&prack, "RAck"),
        format!("7 {} INVITE", invite.cseq().seq)
    );
    assert_eq!(prack.to().tag().as_deref(), Some("peer-tag"));
    assert!(prack.cseq().seq > invite.cseq().seq);
    h.reply(&prack, 200, "OK", &[]);
    assert_eq!(h.events().len(), 1, "one Progress");
    // Its retransmission: no second PRACK, no second event.
    h.reply(&invite, 180, "Ringing", &reliable);
    assert!(h.requests().is_empty());
    assert!(h.events().is_empty());
    // The next reliable one (with the early answer) gets its own PRACK.
    h.reply_with(
        &invite,
        183,
        "Session Progress",
        &[
            ("Contact", PEER_CONTACT),
            ("Require", "100rel"),
            ("RSeq", "8"),
        ],
        Some(ANSWER),
    );
    let prack = h.one_request(Method::Prack);
    assert_eq!(
        header(&prack, "RAck"),
        format!("8 {} INVITE", invite.cseq().seq)
    );
    assert!(matches!(
        h.events().as_slice(),
        [(c, CallEvent::Progress { code: 183, sdp: Some(_), .. })] if *c == call
    ));
    // The 2xx may leave the answer out: the reliable provisional gave it (RFC 3261 13.2.1).
    h.reply(&invite, 200, "OK", &[("Contact", PEER_CONTACT)]);
    h.one_request(Method::Ack);
    assert_accepted(h.events(), call, ANSWER);
}

#[test]
fn a_caller_requiring_100rel_gets_a_reliable_180_until_its_prack() {
    let mut h = Harness::new();
    let (_, token) = registered(&mut h);
    let mut headers = vec![
        (
            "From",
            "\"Bob\" <sip:bob@127.0.0.1:5080>;tag=bob-tag".to_owned(),
        ),
        ("To", format!("<sip:{token}@127.0.0.1:5070>")),
        ("Call-ID", "in-call-1@peer".to_owned()),
        ("CSeq", "10 INVITE".to_owned()),
        ("Contact", PEER_CONTACT.to_owned()),
    ];
    headers.push(("Require", "100rel".to_owned()));
    let invite = h.peer_request(
        Method::Invite,
        &format!("sip:{token}@127.0.0.1:5070"),
        &headers,
        Some(OFFER),
    );
    h.deliver(invite);
    let call = match h.events().as_slice() {
        [(call, CallEvent::Incoming { .. })] => *call,
        other => panic!("{other:?}"),
    };
    h.responses();
    h.stack.ring(h.now, call).unwrap();
    let ringing = h.responses().pop().unwrap();
    assert_eq!(ringing.status(), 180);
    assert_eq!(ringing.header("Require"), Some("100rel"));
    let rseq = ringing.header("RSeq").unwrap().to_owned();
    let tag = ringing.to().tag().unwrap();
    // Not PRACKed: retransmitted at T1, then 2*T1.
    h.advance(Duration::from_millis(500));
    assert_eq!(h.responses().len(), 1);
    h.advance(Duration::from_millis(1000));
    assert_eq!(h.responses().len(), 1);
    let mut prack_headers = in_dialog(&tag, &token, "11 PRACK");
    prack_headers.push(("RAck", format!("{rseq} 10 INVITE")));
    let prack = h.peer_request(Method::Prack, "sip:x@127.0.0.1:5070", &prack_headers, None);
    h.deliver(prack);
    let ok = h.responses().pop().unwrap();
    assert_eq!(
        (ok.status(), ok.cseq().method.clone()),
        (200, Method::Prack)
    );
    h.advance(Duration::from_secs(4));
    assert!(h.responses().is_empty(), "PRACKed: no more retransmissions");
    // A PRACK for nothing pending: 481.
    let mut stray_headers = in_dialog(&tag, &token, "12 PRACK");
    stray_headers.push(("RAck", format!("{rseq} 10 INVITE")));
    let stray = h.peer_request(Method::Prack, "sip:x@127.0.0.1:5070", &stray_headers, None);
    h.deliver(stray);
    assert_eq!(h.responses().pop().unwrap().status(), 481);
}

#[test]
fn forked_early_dialogs_the_latest_with_sdp_leads_and_the_first_2xx_wins() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob();
    let contact_a = [("Contact", "<sip:bob@127.0.0.1:5080;fork=a>")];
    let contact_b = [("Contact", "<sip:bob@127.0.0.1:5080;fork=b>")];
    reply_tagged(&mut h, &invite, 180, "Ringing", "fork-a", &contact_a, None);
    reply_tagged(&mut h, &invite, 180, "Ringing", "fork-b", &contact_b, None);
    assert_eq!(h.stack.dialog_count(), 2, "one early dialog per fork");
    let answer_b = ANSWER.replace("5000", "5002");
    reply_tagged(
        &mut h,
        &invite,
        183,
        "Session Progress",
        "fork-b",
        &contact_b,
        Some(&answer_b),
    );
    let events = h.events();
    assert!(
        matches!(events.last(), Some((_, CallEvent::Progress { sdp: Some(s), .. })) if *s == answer_b),
        "{events:?}"
    );
    // Fork a answers first, with its own SDP.
    reply_tagged(
        &mut h,
        &invite,
        200,
        "OK",
        "fork-a",
        &contact_a,
        Some(ANSWER),
    );
    let ack = h.one_request(Method::Ack);
    assert_eq!(ack.to().tag().as_deref(), Some("fork-a"));
    assert_accepted(h.events(), call, ANSWER);
    assert_eq!(h.stack.dialog_count(), 1, "the other early dialog is gone");
    // Fork b answers too: ACK and BYE it at once (RFC 3261 13.2.2.4).
    reply_tagged(
        &mut h,
        &invite,
        200,
        "OK",
        "fork-b",
        &contact_b,
        Some(&answer_b),
    );
    let sent = h.requests();
    let methods: Vec<Method> = sent.iter().map(|r| r.method().clone()).collect();
    assert_eq!(methods, [Method::Ack, Method::Bye]);
    assert!(sent
        .iter()
        .all(|r| r.to().tag().as_deref() == Some("fork-b")));
    assert!(h.events().is_empty(), "the call goes on with fork a");
    h.stack.hangup(h.now, call).unwrap();
    let bye = h.one_request(Method::Bye);
    assert_eq!(bye.to().tag().as_deref(), Some("fork-a"));
}

#[test]
fn session_timer_as_refresher_refreshes_at_half_the_interval() {
    let mut h = Harness::new();
    h.stack.set_session_expires(1800);
    let (call, invite) = h.call_bob();
    assert_eq!(header(&invite, "Session-Expires"), "1800");
    assert_eq!(header(&invite, "Min-SE"), "90");
    h.reply_with(
        &invite,
        200,
        "OK",
        &[
            ("Contact", PEER_CONTACT),
            ("Session-Expires", "120;refresher=uac"),
            ("Require", "timer"),
        ],
        Some(ANSWER),
    );
    h.one_request(Method::Ack);
    h.events();
    h.advance(Duration::from_secs(59));
    assert!(h.requests().is_empty());
    h.advance(Duration::from_secs(1));
    let refresh = h.one_request(Method::Invite);
    assert_eq!(refresh.body(), OFFER.as_bytes(), "the unchanged session");
    assert_eq!(header(&refresh, "Session-Expires"), "120;refresher=uac");
    h.reply_with(
        &refresh,
        200,
        "OK",
        &[
            ("Contact", PEER_CONTACT),
            ("Session-Expires", "120;refresher=uac"),
        ],
        Some(ANSWER),
    );
    h.one_request(Method::Ack);
    assert!(h.events().is_empty(), "a refresh is not reported");
    h.advance(Duration::from_secs(60));
    h.one_request(Method::Invite);
    let _ = call;
}

#[test]
fn session_timer_as_refreshee_ends_an_unrefreshed_session_with_bye() {
    let mut h = Harness::new();
    let (_, token) = registered(&mut h);
    let headers = vec![
        (
            "From",
            "\"Bob\" <sip:bob@127.0.0.1:5080>;tag=bob-tag".to_owned(),
        ),
        ("To", format!("<sip:{token}@127.0.0.1:5070>")),
        ("Call-ID", "in-call-1@peer".to_owned()),
        ("CSeq", "10 INVITE".to_owned()),
        ("Contact", PEER_CONTACT.to_owned()),
        ("Supported", "timer".to_owned()),
        ("Session-Expires", "90".to_owned()),
    ];
    let invite = h.peer_request(
        Method::Invite,
        &format!("sip:{token}@127.0.0.1:5070"),
        &headers,
        Some(OFFER),
    );
    h.deliver(invite);
    let call = match h.events().as_slice() {
        [(call, CallEvent::Incoming { .. })] => *call,
        other => panic!("{other:?}"),
    };
    h.responses();
    h.stack.answer(h.now, call, ANSWER.into()).unwrap();
    let ok = h.responses().pop().unwrap();
    assert_eq!(ok.header("Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(ok.header("Require"), Some("timer"));
    let tag = ok.to().tag().unwrap();
    let ack = h.peer_request(
        Method::Ack,
        "sip:x@127.0.0.1:5070",
        &in_dialog(&tag, &token, "10 ACK"),
        None,
    );
    h.deliver(ack);
    h.events();
    // A refresh by UPDATE at 40 s restarts the interval.
    h.advance(Duration::from_secs(40));
    let mut refresh_headers = in_dialog(&tag, &token, "11 UPDATE");
    refresh_headers.push(("Session-Expires", "90;refresher=uac".to_owned()));
    let refresh = h.peer_request(
        Method::Update,
        "sip:x@127.0.0.1:5070",
        &refresh_headers,
        None,
    );
    h.deliver(refresh);
    let ok = h.responses().pop().unwrap();
    assert_eq!(ok.header("Session-Expires"), Some("90;refresher=uac"));
    // Then nothing: BYE 32 s before the end of the interval (60 s after the refresh).
    h.advance(Duration::from_secs(59));
    assert!(h.requests().is_empty());
    h.advance(Duration::from_secs(1));
    h.one_request(Method::Bye);
    let events = h.events();
    assert!(
        matches!(events.as_slice(), [(_, CallEvent::Terminated(end))] if end.to_string() == "408 Session Expired"),
        "{events:?}"
    );
}

#[test]
fn too_small_intervals_get_422_and_a_422_raises_ours() {
    let mut h = Harness::new();
    let (_, token) = registered(&mut h);
    let headers = vec![
        ("From", "<sip:bob@127.0.0.1:5080>;tag=bob-tag".to_owned()),
        ("To", format!("<sip:{token}@127.0.0.1:5070>")),
        ("Call-ID", "in-call-9@peer".to_owned()),
        ("CSeq", "10 INVITE".to_owned()),
        ("Contact", PEER_CONTACT.to_owned()),
        ("Session-Expires", "30".to_owned()),
    ];
    let invite = h.peer_request(
        Method::Invite,
        &format!("sip:{token}@127.0.0.1:5070"),
        &headers,
        Some(OFFER),
    );
    h.deliver(invite);
    let refused = h.responses().pop().unwrap();
    assert_eq!(refused.status(), 422);
    assert_eq!(refused.header("Min-SE"), Some("90"));
    assert!(h.events().is_empty());

    h.stack.set_session_expires(100);
    let (_, invite) = h.call_bob();
    h.reply(
        &invite,
        422,
        "Session Interval Too Small",
        &[("Min-SE", "600")],
    );
    let again = h.acked_then(&invite).remove(0);
    assert_eq!(header(&again, "Session-Expires"), "600");
}

#[test]
fn requirements_we_do_not_support_get_420() {
    let mut h = Harness::new();
    let (_, token) = registered(&mut h);
    let headers = vec![
        ("From", "<sip:bob@127.0.0.1:5080>;tag=bob-tag".to_owned()),
        ("To", format!("<sip:{token}@127.0.0.1:5070>")),
        ("Call-ID", "in-call-7@peer".to_owned()),
        ("CSeq", "10 INVITE".to_owned()),
        ("Contact", PEER_CONTACT.to_owned()),
        ("Require", "100rel, precondition".to_owned()),
    ];
    let invite = h.peer_request(
        Method::Invite,
        &format!("sip:{token}@127.0.0.1:5070"),
        &headers,
        Some(OFFER),
    );
    h.deliver(invite);
    let refused = h.responses().pop().unwrap();
    assert_eq!(refused.status(), 420);
    assert_eq!(refused.header("Unsupported"), Some("precondition"));
}

#[test]
fn a_challenged_info_takes_the_dialogs_next_cseq() {
    let mut h = Harness::new();
    let (call, _) = outgoing_confirmed(&mut h);
    h.stack
        .send_in_dialog(
            h.now,
            call,
            Method::Info,
            vec![],
            Some((
                "application/dtmf-relay".into(),
                b"Signal=5\r\nDuration=100\r\n".to_vec(),
            )),
        )
        .unwrap();
    let info = h.one_request(Method::Info);
    h.reply(
        &info,
        401,
        "Unauthorized",
        &[(
            "WWW-Authenticate",
            "Digest realm=\"127.0.0.1:5080\", nonce=\"n2\"",
        )],
    );
    let again = h.one_request(Method::Info);
    assert_eq!(again.cseq().seq, info.cseq().seq + 1);
    assert!(again.header("Authorization").is_some());
    h.reply(&again, 200, "OK", &[]);
    h.stack.hangup(h.now, call).unwrap();
    let bye = h.one_request(Method::Bye);
    assert_eq!(bye.cseq().seq, again.cseq().seq + 1, "CSeq keeps rising");
}

#[test]
fn a_host_name_as_next_hop_is_located_by_rfc_3263() {
    let mut h = Harness::new();
    let (call, invite) = h.call_bob();
    h.reply_with(
        &invite,
        200,
        "OK",
        &[("Contact", "<sip:bob@phone.example.test:5082>")],
        Some(ANSWER),
    );
    // The lookup of the remote target's host name starts with the dialog.
    h.pump();
    let queried = h.transmits.iter().any(|t| match t {
        SipTransmit::Dns { bytes, .. } => crate::dns::wire::parse_query(bytes)
            .is_ok_and(|q| q.question.name.to_string().contains("phone.example.test")),
        _ => false,
    });
    assert!(queried, "{:?}", h.transmits);
    answer_dns(&mut h);
    h.one_request(Method::Ack);
    h.events();
    // Located: 127.0.0.1 first, with the port of the URI (not the INVITE's flow, :5080).
    h.stack.hangup(h.now, call).unwrap();
    h.pump();
    let to = h
        .transmits
        .drain(..)
        .find_map(|t| match t {
            SipTransmit::Datagram { to, bytes } if bytes.starts_with(b"BYE ") => Some(to),
            _ => None,
        })
        .expect("a BYE");
    assert_eq!(to, SocketAddr::from(([127, 0, 0, 1], 5082)));
}
