//! Subscriptions (RFC 6665) and publications (RFC 3903) through the whole stack: the
//! initial SUBSCRIBE with digest, the dialog from the 2xx or from a NOTIFY that overtook it,
//! NOTIFYs to the gateway, refreshes, 423, 481 and terminated NOTIFYs with their jittered
//! resubscriptions, the un-SUBSCRIBE; PUBLISH with SIP-ETag refresh, 412, modify, removal.

use super::*;
use crate::publication::{PublicationStatus, PublishParams};
use crate::subscription::{
    EventPackage, SubId, SubPhase, SubscribeParams, SubscriptionEnd, SubscriptionEvent,
    SubscriptionState, SubscriptionStatus, TerminationReason, IMMEDIATE_SPREAD,
};

const PIDF: &str = "<?xml version=\"1.0\"?><presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
    entity=\"sip:bob@127.0.0.1:5080\"><tuple id=\"t\"><status><basic>open</basic></status>\
    </tuple></presence>";

fn subscribe(h: &mut Harness, expires: u32) -> SubId {
    h.stack
        .subscribe(
            h.now,
            &identity(),
            SubscribeParams {
                target: "bob@127.0.0.1:5080".into(),
                package: EventPackage::Presence,
                expires,
            },
        )
        .unwrap()
}

/// The subscription events since the last call.
fn sub_events(h: &mut Harness) -> Vec<SipEvent> {
    h.pump();
    h.events
        .drain(..)
        .filter(|e| {
            matches!(
                e,
                SipEvent::Subscription { .. }
                    | SipEvent::SubscriptionFinished { .. }
                    | SipEvent::Publication { .. }
                    | SipEvent::PublicationFinished { .. }
            )
        })
        .collect()
}

fn statuses(h: &mut Harness) -> Vec<SubscriptionStatus> {
    sub_events(h)
        .into_iter()
        .filter_map(|e| match e {
            SipEvent::Subscription {
                event: SubscriptionEvent::Status(s),
                ..
            } => Some(s),
            _ => None,
        })
        .collect()
}

/// A NOTIFY from the peer in the dialog of `subscribe` (our tag in To, the peer's in From).
fn notify(h: &mut Harness, subscribe: &SipRequest, cseq: u32, state: &str, body: bool) {
    let our_tag = subscribe.from().tag().unwrap();
    let headers = vec![
        ("From", "<sip:bob@127.0.0.1:5080>;tag=peer-tag".to_owned()),
        ("To", format!("{};tag={our_tag}", subscribe.from().uri)),
        ("Call-ID", subscribe.call_id().to_owned()),
        ("CSeq", format!("{cseq} NOTIFY")),
        ("Contact", "<sip:presence@127.0.0.1:5080>".to_owned()),
        ("Event", "presence".to_owned()),
        ("Subscription-State", state.to_owned()),
    ];
    let contact = subscribe.contacts().as_slice()[0].uri.to_string();
    let mut bytes = h.peer_request(Method::Notify, &contact, &headers, None);
    if body {
        let text = String::from_utf8(bytes).unwrap().replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Content-Type: application/pidf+xml\r\nContent-Length: {}\r\n\r\n{PIDF}",
                PIDF.len()
            ),
        );
        bytes = text.into_bytes();
    }
    h.deliver(bytes);
}

/// Takes the NOTIFY event, checks it, answers 200 and checks the answer went out.
fn answer_notify(h: &mut Harness, sub: SubId, expected: SubscriptionState) -> Vec<SipEvent> {
    h.pump();
    let mut rest = Vec::new();
    let mut answered = false;
    for e in sub_events(h) {
        match e {
            SipEvent::Subscription {
                sub: s,
                event: SubscriptionEvent::Notify { id, state, request },
            } if s == sub && !answered => {
                assert_eq!(state, expected);
                assert!(request.header("Subscription-State").is_some());
                h.stack.answer_request(h.now, id, 200, "OK", &[]).unwrap();
                answered = true;
            }
            other => rest.push(other),
        }
    }
    assert!(answered, "no NOTIFY reached the gateway: {rest:?}");
    let ok = h.responses().pop().unwrap();
    assert_eq!(ok.status(), 200);
    rest
}

/// Subscribes and gets the subscription active: SUBSCRIBE, 200, NOTIFY active.
fn active(h: &mut Harness, expires: u32) -> (SubId, SipRequest) {
    let sub = subscribe(h, expires);
    let s = h.one_request(Method::Subscribe);
    h.reply(
        &s,
        200,
        "OK",
        &[
            ("Contact", "<sip:presence@127.0.0.1:5080>"),
            ("Expires", &expires.to_string()),
        ],
    );
    notify(h, &s, 1, &format!("active;expires={expires}"), true);
    let rest = answer_notify(
        h,
        sub,
        SubscriptionState::Active {
            expires: Some(expires),
        },
    );
    assert!(rest.iter().any(|e| matches!(
        e,
        SipEvent::Subscription {
            event: SubscriptionEvent::Status(SubscriptionStatus::Active),
            ..
        }
    )));
    (sub, s)
}

#[test]
fn subscribe_with_digest_notify_refresh_and_unsubscribe() {
    let mut h = Harness::new();
    let sub = subscribe(&mut h, 600);
    let first = h.one_request(Method::Subscribe);
    assert_eq!(first.uri().as_str(), "sip:bob@127.0.0.1:5080");
    assert_eq!(header(&first, "Event"), "presence");
    assert_eq!(header(&first, "Accept"), "application/pidf+xml");
    assert_eq!(header(&first, "Expires"), "600");
    assert!(first.to().tag().is_none());
    let contact = &first.contacts().as_slice()[0];
    assert!(contact.uri.user().unwrap().starts_with("sylk-"));
    h.reply(
        &first,
        407,
        "Proxy Authentication Required",
        &[(
            "Proxy-Authenticate",
            "Digest realm=\"127.0.0.1:5080\", nonce=\"n1\", qop=\"auth\"",
        )],
    );
    let s = h.one_request(Method::Subscribe);
    assert_eq!(header(&s, "CSeq"), "2 SUBSCRIBE");
    assert_eq!(s.call_id(), first.call_id());
    assert!(header(&s, "Proxy-Authorization").contains("nc=00000001"));
    assert_eq!(h.stack.subscription_phases()[0], 1, "subscribing");
    h.reply(
        &s,
        200,
        "OK",
        &[
            ("Contact", "<sip:presence@127.0.0.1:5080>"),
            ("Expires", "300"),
        ],
    );
    assert!(statuses(&mut h).is_empty(), "a 2xx alone changes nothing");
    notify(&mut h, &s, 1, "pending", false);
    let rest = answer_notify(&mut h, sub, SubscriptionState::Pending { expires: None });
    assert!(matches!(
        rest.as_slice(),
        [SipEvent::Subscription {
            event: SubscriptionEvent::Status(SubscriptionStatus::Pending),
            ..
        }]
    ));
    notify(&mut h, &s, 2, "active;expires=300", true);
    answer_notify(
        &mut h,
        sub,
        SubscriptionState::Active { expires: Some(300) },
    );
    assert_eq!(h.stack.subscription_phases()[2], 1, "active");
    // A NOTIFY out of order: 500, and the gateway hears nothing.
    notify(&mut h, &s, 2, "active;expires=300", true);
    assert_eq!(h.responses().pop().unwrap().status(), 500);
    assert!(sub_events(&mut h).is_empty());
    // Refreshed inside the dialog before expiry, with the credentials ready.
    h.advance(Duration::from_secs(100));
    assert!(h.requests().is_empty(), "not yet");
    h.advance(Duration::from_secs(140));
    let refresh = h.one_request(Method::Subscribe);
    assert_eq!(refresh.call_id(), s.call_id());
    assert_eq!(refresh.to().tag().as_deref(), Some("peer-tag"));
    assert_eq!(refresh.uri().as_str(), "sip:presence@127.0.0.1:5080");
    assert_eq!(header(&refresh, "CSeq"), "3 SUBSCRIBE");
    assert_eq!(header(&refresh, "Expires"), "600");
    assert!(header(&refresh, "Proxy-Authorization").contains("nc=00000002"));
    assert!(!refresh.contacts().as_slice().is_empty());
    h.reply(&refresh, 200, "OK", &[("Expires", "300")]);
    assert!(statuses(&mut h).is_empty());
    // Unsubscribe: Expires 0 inside the dialog, then the final NOTIFY is still answered.
    h.stack.unsubscribe(h.now, sub);
    let un = h.one_request(Method::Subscribe);
    assert_eq!(header(&un, "Expires"), "0");
    assert_eq!(header(&un, "CSeq"), "4 SUBSCRIBE");
    h.reply(&un, 200, "OK", &[("Expires", "0")]);
    assert!(sub_events(&mut h).is_empty(), "waits for the final NOTIFY");
    notify(&mut h, &s, 3, "terminated;reason=timeout", false);
    h.pump();
    let events: Vec<_> = h.events.drain(..).collect();
    let id = events
        .iter()
        .find_map(|e| match e {
            SipEvent::Subscription {
                event: SubscriptionEvent::Notify { id, .. },
                ..
            } => Some(*id),
            _ => None,
        })
        .expect("the final NOTIFY reaches the gateway");
    assert!(events.contains(&SipEvent::SubscriptionFinished { sub }));
    h.stack.answer_request(h.now, id, 200, "OK", &[]).unwrap();
    assert_eq!(h.responses().pop().unwrap().status(), 200);
    assert_eq!(h.stack.subscription_count(), 0);
    // A NOTIFY for the finished subscription: 481 from the UAS core.
    notify(&mut h, &s, 4, "active", true);
    assert_eq!(h.responses().pop().unwrap().status(), 481);
    h.assert_clean_after_timers();
    assert!(h.stack.subs_by_call_id.is_empty());
    assert!(h.stack.sub_deadlines.is_empty());
    assert_eq!(h.stack.request_count(), 0);
}

#[test]
fn a_notify_that_overtakes_the_2xx_creates_the_dialog() {
    let mut h = Harness::new();
    let sub = subscribe(&mut h, 600);
    let s = h.one_request(Method::Subscribe);
    notify(&mut h, &s, 1, "active;expires=600", true);
    answer_notify(
        &mut h,
        sub,
        SubscriptionState::Active { expires: Some(600) },
    );
    h.reply(&s, 202, "Accepted", &[("Expires", "600")]);
    assert!(statuses(&mut h).is_empty());
    h.advance(Duration::from_secs(541));
    let refresh = h.one_request(Method::Subscribe);
    assert_eq!(refresh.to().tag().as_deref(), Some("peer-tag"));
    assert_eq!(header(&refresh, "CSeq"), "2 SUBSCRIBE");
    // A NOTIFY of another (forked) dialog is refused.
    let our_tag = s.from().tag().unwrap();
    let headers = vec![
        ("From", "<sip:bob@127.0.0.1:5080>;tag=fork-2".to_owned()),
        ("To", format!("{};tag={our_tag}", s.from().uri)),
        ("Call-ID", s.call_id().to_owned()),
        ("CSeq", "1 NOTIFY".to_owned()),
        ("Contact", "<sip:presence@127.0.0.1:5080>".to_owned()),
        ("Event", "presence".to_owned()),
        ("Subscription-State", "active".to_owned()),
    ];
    let fork = h.peer_request(Method::Notify, "sip:x@127.0.0.1:5070", &headers, None);
    h.deliver(fork);
    assert_eq!(h.responses().pop().unwrap().status(), 481);
}

#[test]
fn bad_notifies_are_answered_by_the_stack() {
    let mut h = Harness::new();
    let (_, s) = active(&mut h, 600);
    let our_tag = s.from().tag().unwrap();
    let base = |event: &str, state: Option<&str>| {
        let mut v = vec![
            ("From", "<sip:bob@127.0.0.1:5080>;tag=peer-tag".to_owned()),
            ("To", format!("{};tag={our_tag}", s.from().uri)),
            ("Call-ID", s.call_id().to_owned()),
            ("CSeq", "9 NOTIFY".to_owned()),
            ("Contact", "<sip:presence@127.0.0.1:5080>".to_owned()),
            ("Event", event.to_owned()),
        ];
        if let Some(st) = state {
            v.push(("Subscription-State", st.to_owned()));
        }
        v
    };
    for (headers, status) in [
        (base("dialog", Some("active")), 489),
        (base("presence", None), 400),
        (base("presence", Some("bogus")), 400),
    ] {
        let n = h.peer_request(Method::Notify, "sip:x@127.0.0.1:5070", &headers, None);
        h.deliver(n);
        assert_eq!(h.responses().pop().unwrap().status(), status);
        assert!(sub_events(&mut h).is_empty());
    }
}

#[test]
fn refresh_answered_481_resubscribes_with_a_new_dialog_after_a_jittered_delay() {
    let mut delays = Vec::new();
    for seed in 0..6 {
        let mut h = Harness::new();
        h.stack.rng = Rng::seed_from_u64(seed);
        let (sub, s) = active(&mut h, 120);
        h.advance(Duration::from_secs(67));
        let refresh = h.one_request(Method::Subscribe);
        h.reply(&refresh, 481, "Subscription Does Not Exist", &[]);
        let retry_in = match statuses(&mut h).as_slice() {
            [SubscriptionStatus::Retrying {
                cause: SubscriptionEnd::Failed(o),
                retry_in,
            }] if o.code() == 481 => *retry_in,
            other => panic!("{other:?}"),
        };
        assert!(retry_in <= IMMEDIATE_SPREAD);
        assert_eq!(h.stack.subscription_phases()[3], 1, "retrying");
        delays.push(retry_in);
        h.advance(retry_in);
        let again = h.one_request(Method::Subscribe);
        assert_ne!(again.call_id(), s.call_id(), "a new subscription");
        assert!(again.to().tag().is_none());
        let _ = sub;
    }
    delays.sort();
    delays.dedup();
    assert!(delays.len() > 3, "the delays are spread: {delays:?}");
}

#[test]
fn terminated_notifies_retry_or_end_by_reason() {
    // deactivated: a new subscription within the spread.
    let mut h = Harness::new();
    let (sub, s) = active(&mut h, 600);
    notify(&mut h, &s, 2, "terminated;reason=deactivated", false);
    let rest = answer_notify(
        &mut h,
        sub,
        SubscriptionState::Terminated {
            reason: Some(TerminationReason::Deactivated),
            retry_after: None,
        },
    );
    let retry_in = match rest.as_slice() {
        [SipEvent::Subscription {
            event: SubscriptionEvent::Status(SubscriptionStatus::Retrying { retry_in, .. }),
            ..
        }] => *retry_in,
        other => panic!("{other:?}"),
    };
    assert!(retry_in <= IMMEDIATE_SPREAD);
    h.advance(retry_in);
    h.one_request(Method::Subscribe);
    // probation with retry-after: that long.
    let mut h = Harness::new();
    let (sub, s) = active(&mut h, 600);
    notify(
        &mut h,
        &s,
        2,
        "terminated;reason=probation;retry-after=90",
        false,
    );
    let rest = answer_notify(
        &mut h,
        sub,
        SubscriptionState::Terminated {
            reason: Some(TerminationReason::Probation),
            retry_after: Some(90),
        },
    );
    assert!(matches!(
        rest.as_slice(),
        [SipEvent::Subscription {
            event: SubscriptionEvent::Status(SubscriptionStatus::Retrying { retry_in, .. }),
            ..
        }] if *retry_in == Duration::from_secs(90)
    ));
    // rejected: over for good.
    let mut h = Harness::new();
    let (sub, s) = active(&mut h, 600);
    notify(&mut h, &s, 2, "terminated;reason=rejected", false);
    let rest = answer_notify(
        &mut h,
        sub,
        SubscriptionState::Terminated {
            reason: Some(TerminationReason::Rejected),
            retry_after: None,
        },
    );
    assert_eq!(
        rest,
        [
            SipEvent::Subscription {
                sub,
                event: SubscriptionEvent::Status(SubscriptionStatus::Terminated(
                    SubscriptionEnd::Notified(Some(TerminationReason::Rejected))
                )),
            },
            SipEvent::SubscriptionFinished { sub }
        ]
    );
    h.assert_clean_after_timers();
    assert_eq!(h.stack.subscription_count(), 0);
}

#[test]
fn initial_failures_back_off_or_end() {
    let mut h = Harness::new();
    let sub = subscribe(&mut h, 600);
    let s = h.one_request(Method::Subscribe);
    h.reply(&s, 423, "Interval Too Brief", &[("Min-Expires", "1800")]);
    let again = h.one_request(Method::Subscribe);
    assert_eq!(header(&again, "Expires"), "1800");
    // Nobody answers: 408, then a retry after 2.5-5 s.
    for _ in 0..70 {
        h.advance(Duration::from_millis(500));
        h.sent();
    }
    let retry_in = match statuses(&mut h).as_slice() {
        [SubscriptionStatus::Retrying { cause, retry_in }] => {
            assert_eq!(cause.to_string(), "408 Request Timeout");
            *retry_in
        }
        other => panic!("{other:?}"),
    };
    assert!(retry_in >= Duration::from_millis(2500) && retry_in <= Duration::from_secs(5));
    h.advance(retry_in);
    let third = h.one_request(Method::Subscribe);
    // A definite refusal ends it.
    h.reply(&third, 404, "Not Found", &[]);
    h.pump();
    let events: Vec<_> = h.events.drain(..).collect();
    assert!(matches!(
        events.as_slice(),
        [SipEvent::Subscription {
            event: SubscriptionEvent::Status(SubscriptionStatus::Terminated(SubscriptionEnd::Failed(o))),
            ..
        }, SipEvent::SubscriptionFinished { sub: s }] if o.code() == 404 && *s == sub
    ));
    // Stopping while the initial SUBSCRIBE is in flight: un-SUBSCRIBE after its 2xx.
    let sub = subscribe(&mut h, 600);
    let s = h.one_request(Method::Subscribe);
    h.stack.unsubscribe(h.now, sub);
    assert!(h.requests().is_empty());
    h.reply(
        &s,
        200,
        "OK",
        &[("Contact", "<sip:presence@127.0.0.1:5080>")],
    );
    let un = h.one_request(Method::Subscribe);
    assert_eq!(header(&un, "Expires"), "0");
    h.reply(&un, 481, "Subscription Does Not Exist", &[]);
    assert!(sub_events(&mut h).contains(&SipEvent::SubscriptionFinished { sub }));
    h.assert_clean_after_timers();
    assert_eq!(h.stack.subscription_count(), 0);
    assert_eq!(h.stack.request_count(), 0);
}

#[test]
fn list_subscriptions_ask_for_rlmi() {
    let mut h = Harness::new();
    h.stack
        .subscribe(
            h.now,
            &identity(),
            SubscribeParams {
                target: "alice-buddies@127.0.0.1:5080".into(),
                package: EventPackage::PresenceList,
                expires: 600,
            },
        )
        .unwrap();
    let s = h.one_request(Method::Subscribe);
    assert_eq!(header(&s, "Supported"), "eventlist");
    assert!(header(&s, "Accept").contains("multipart/related"));
    assert!(header(&s, "Accept").contains("application/rlmi+xml"));
    assert_eq!(SubPhase::ALL.len(), h.stack.subscription_phases().len());
}

fn publications(h: &mut Harness) -> Vec<PublicationStatus> {
    sub_events(h)
        .into_iter()
        .filter_map(|e| match e {
            SipEvent::Publication { status, .. } => Some(status),
            _ => None,
        })
        .collect()
}

#[test]
fn publish_refresh_412_modify_and_remove() {
    let mut h = Harness::new();
    let p = h
        .stack
        .publish(
            h.now,
            &identity(),
            PublishParams {
                event: "presence",
                content_type: "application/pidf+xml".into(),
                body: PIDF.as_bytes().to_vec(),
                expires: 120,
            },
        )
        .unwrap();
    let first = h.one_request(Method::Publish);
    assert_eq!(first.uri().as_str(), "sip:alice@127.0.0.1:5080");
    assert_eq!(header(&first, "Event"), "presence");
    assert_eq!(header(&first, "Expires"), "120");
    assert!(first.header("SIP-If-Match").is_none());
    assert_eq!(first.body(), PIDF.as_bytes());
    h.reply(&first, 200, "OK", &[("SIP-ETag", "e1"), ("Expires", "120")]);
    assert_eq!(
        publications(&mut h),
        [PublicationStatus::Published { expires: 120 }]
    );
    // Refresh half-way: the entity-tag, no body.
    h.advance(Duration::from_secs(60));
    let refresh = h.one_request(Method::Publish);
    assert_eq!(header(&refresh, "SIP-If-Match"), "e1");
    assert!(refresh.body().is_empty());
    // The server forgot us (a restart): the whole state again, without the tag.
    h.reply(&refresh, 412, "Conditional Request Failed", &[]);
    let full = h.one_request(Method::Publish);
    assert!(full.header("SIP-If-Match").is_none());
    assert_eq!(full.body(), PIDF.as_bytes());
    h.reply(&full, 200, "OK", &[("SIP-ETag", "e2"), ("Expires", "120")]);
    publications(&mut h);
    // A new state: the body, with the tag.
    h.stack
        .modify_publication(h.now, p, b"<presence/>".to_vec());
    let modify = h.one_request(Method::Publish);
    assert_eq!(header(&modify, "SIP-If-Match"), "e2");
    assert_eq!(modify.body(), b"<presence/>");
    // Changed again before the answer: sent after it.
    h.stack
        .modify_publication(h.now, p, b"<presence>2</presence>".to_vec());
    assert!(h.requests().is_empty());
    h.reply(
        &modify,
        200,
        "OK",
        &[("SIP-ETag", "e3"), ("Expires", "120")],
    );
    let second = h.one_request(Method::Publish);
    assert_eq!(header(&second, "SIP-If-Match"), "e3");
    assert_eq!(second.body(), b"<presence>2</presence>");
    h.reply(
        &second,
        200,
        "OK",
        &[("SIP-ETag", "e4"), ("Expires", "120")],
    );
    publications(&mut h);
    // Removal: Expires 0 with the tag.
    h.stack.unpublish(h.now, p);
    let remove = h.one_request(Method::Publish);
    assert_eq!(header(&remove, "Expires"), "0");
    assert_eq!(header(&remove, "SIP-If-Match"), "e4");
    assert!(remove.body().is_empty());
    h.reply(&remove, 200, "OK", &[]);
    assert!(sub_events(&mut h).contains(&SipEvent::PublicationFinished { publication: p }));
    assert_eq!(h.stack.publication_count(), 0);
    h.assert_clean_after_timers();
    assert!(h.stack.pub_deadlines.is_empty());
    assert_eq!(h.stack.request_count(), 0);
}

#[test]
fn publish_failures_retry_or_end() {
    let mut h = Harness::new();
    let params = PublishParams {
        event: "presence",
        content_type: "application/pidf+xml".into(),
        body: PIDF.as_bytes().to_vec(),
        expires: 600,
    };
    let p = h.stack.publish(h.now, &identity(), params.clone()).unwrap();
    let first = h.one_request(Method::Publish);
    h.reply(&first, 503, "Service Unavailable", &[]);
    let retry_in = match publications(&mut h).as_slice() {
        [PublicationStatus::Retrying { retry_in, .. }] => *retry_in,
        other => panic!("{other:?}"),
    };
    h.advance(retry_in);
    let again = h.one_request(Method::Publish);
    assert_eq!(again.body(), PIDF.as_bytes());
    h.reply(&again, 489, "Bad Event", &[]);
    let events = sub_events(&mut h);
    assert!(events.contains(&SipEvent::PublicationFinished { publication: p }));
    // Removing a publication nobody holds yet: nothing to send.
    let p = h.stack.publish(h.now, &identity(), params).unwrap();
    let first = h.one_request(Method::Publish);
    h.stack.unpublish(h.now, p);
    h.reply(&first, 200, "OK", &[("SIP-ETag", "x"), ("Expires", "600")]);
    let remove = h.one_request(Method::Publish);
    assert_eq!(header(&remove, "Expires"), "0");
    h.reply(&remove, 200, "OK", &[]);
    assert_eq!(h.stack.publication_count(), 0);
}

/// RFC 4662 section 5.1: an RLS answers a list subscription with `Require: eventlist`; a
/// 2xx without it means the notifier took the list URI for a plain presentity.
#[test]
fn a_list_subscription_answered_without_require_eventlist_is_reported() {
    for (require, reported) in [(None, true), (Some("eventlist"), false)] {
        let mut h = Harness::new();
        h.stack
            .subscribe(
                h.now,
                &identity(),
                SubscribeParams {
                    target: "alice-buddies@127.0.0.1:5080".into(),
                    package: EventPackage::PresenceList,
                    expires: 600,
                },
            )
            .unwrap();
        let s = h.one_request(Method::Subscribe);
        assert_eq!(s.header("Supported"), Some("eventlist"));
        let mut headers = vec![
            ("Contact", "<sip:presence@127.0.0.1:5080>"),
            ("Expires", "600"),
        ];
        if let Some(r) = require {
            headers.push(("Require", r));
        }
        h.reply(&s, 200, "OK", &headers);
        let got = statuses(&mut h);
        assert_eq!(
            got.contains(&SubscriptionStatus::NotAList),
            reported,
            "{require:?}: {got:?}"
        );
    }
}
