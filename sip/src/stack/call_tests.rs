//! Calls through the whole stack with virtual time and a scripted SIP peer on
//! 127.0.0.1:5080, over in-memory datagrams: every message the stack sends is parsed and
//! checked, every answer is built with the message builders.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::call::{CallEnd, CallEndCause, CallError, CallEvent};
use crate::dns::{Resolver, ResolverConfig};
use crate::msg::{
    parse, Framing, Host, Method, RequestBuilder, ResponseBuilder, SipMessage, SipRequest,
    SipResponse, Uri, Via,
};
use crate::registration::RegId;
use crate::transport::LocalAddresses;
use crate::transport::SipTransmit;
use engine::Output;

const HA1: &str = "0123456789abcdef0123456789abcdef";
const OFFER: &str =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n";
const ANSWER: &str = "v=0\r\no=peer 7 7 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=sendrecv\r\n";
const PEER_CONTACT: &str = "<sip:bob@127.0.0.1:5080>";

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5080))
}

fn identity() -> AccountIdentity {
    AccountIdentity {
        user: "alice".into(),
        domain: "127.0.0.1:5080".into(),
        display_name: Some("Alice Example".into()),
        user_agent: None,
        ha1: Ha1::from_hex(HA1).unwrap(),
    }
}

struct Harness {
    stack: SipStack,
    now: Instant,
    branch: u32,
    /// Drained from [`SipStack::poll_output`], not yet looked at.
    transmits: VecDeque<SipTransmit>,
    events: VecDeque<SipEvent>,
}

impl Harness {
    fn new() -> Harness {
        Harness::with_transports(vec![Transport::Udp])
    }

    fn with_transports(transports: Vec<Transport>) -> Harness {
        let mut stack = SipStack::new(
            StackConfig {
                local: LocalAddresses {
                    udp_tcp: "127.0.0.1:5070".parse().unwrap(),
                    tls: None,
                    advertised_host: None,
                },
                transports,
                outbound_proxy: None,
                register_expires: 600,
                user_agent: "test-gw".into(),
            },
            Resolver::new(
                ResolverConfig::with_nameservers(vec!["127.0.0.1:53".parse().unwrap()]),
                Rng::seed_from_u64(1),
            ),
            Rng::seed_from_u64(42),
        );
        stack.set_incoming_calls(true);
        Harness {
            stack,
            now: Instant::now(),
            branch: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Everything the stack sent since the last call, parsed (all to the peer).
    fn sent(&mut self) -> Vec<SipMessage> {
        let mut out = Vec::new();
        while let Some(t) = self.poll_transmit() {
            let SipTransmit::Datagram { to, bytes } = t else {
                panic!("unexpected transmit {t:?}");
            };
            assert_eq!(to, peer(), "sent somewhere else");
            out.push(parse(&bytes, Framing::Datagram).expect("stack sent garbage"));
        }
        out
    }

    fn requests(&mut self) -> Vec<SipRequest> {
        self.sent()
            .into_iter()
            .map(|m| match m {
                SipMessage::Request(r) => r,
                SipMessage::Response(r) => panic!("expected a request, got {}", r.status()),
            })
            .collect()
    }

    fn responses(&mut self) -> Vec<SipResponse> {
        self.sent()
            .into_iter()
            .map(|m| match m {
                SipMessage::Response(r) => r,
                SipMessage::Request(r) => panic!("expected a response, got {}", r.method()),
            })
            .collect()
    }

    /// The one request sent, checked to be `method`.
    fn one_request(&mut self, method: Method) -> SipRequest {
        let mut all = self.requests();
        assert_eq!(all.len(), 1, "expected one {method}: {all:?}");
        let r = all.remove(0);
        assert_eq!(*r.method(), method);
        r
    }

    fn deliver(&mut self, bytes: Vec<u8>) {
        self.stack.handle_datagram(self.now, peer(), &bytes);
    }

    fn reply(&mut self, req: &SipRequest, status: u16, reason: &str, extra: &[(&str, &str)]) {
        self.reply_with(req, status, reason, extra, None);
    }

    fn reply_with(
        &mut self,
        req: &SipRequest,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
        sdp: Option<&str>,
    ) {
        let mut b = ResponseBuilder::from_request(req, status, reason, Some("peer-tag"));
        for (n, v) in extra {
            b = b.header(n, v);
        }
        if let Some(sdp) = sdp {
            b = b.body("application/sdp", sdp.as_bytes().to_vec());
        }
        self.deliver(b.to_bytes());
    }

    /// Drains the stack's output until its timeout into `transmits` and `events`.
    fn pump(&mut self) {
        loop {
            match self.stack.poll_output() {
                Output::Transmit(t) => self.transmits.push_back(t),
                Output::Event(e) => self.events.push_back(e),
                Output::Timeout(_) => return,
            }
        }
    }

    /// The next socket action, if any.
    fn poll_transmit(&mut self) -> Option<SipTransmit> {
        self.pump();
        self.transmits.pop_front()
    }

    /// The call events since the last call (registration events are dropped).
    fn events(&mut self) -> Vec<(CallId, CallEvent)> {
        self.pump();
        self.events
            .drain(..)
            .filter_map(|e| match e {
                SipEvent::Call { call, event } => Some((call, event)),
                _ => None,
            })
            .collect()
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.stack.handle_timeout(self.now);
    }

    fn next_branch(&mut self) -> String {
        self.branch += 1;
        format!("z9hG4bKpeer{}", self.branch)
    }

    /// A request from the peer (Via with a fresh branch, Max-Forwards, the given headers).
    fn peer_request(
        &mut self,
        method: Method,
        uri: &str,
        headers: &[(&str, String)],
        sdp: Option<&str>,
    ) -> Vec<u8> {
        let via = Via::new(
            "UDP",
            Host::Ipv4([127, 0, 0, 1].into()),
            Some(5080),
            &self.next_branch(),
        );
        let mut b = RequestBuilder::new(method, Uri::parse(uri).unwrap())
            .via(&via)
            .max_forwards(70);
        for (n, v) in headers {
            b = b.header(n, v);
        }
        if let Some(sdp) = sdp {
            b = b.body("application/sdp", sdp.as_bytes().to_vec());
        }
        b.to_bytes()
    }

    /// Lets every timer run out (73 s of virtual time), ignoring what is sent, then checks
    /// nothing of any call is left.
    fn assert_clean_after_timers(&mut self) {
        for _ in 0..146 {
            self.advance(Duration::from_millis(500));
            self.sent();
        }
        assert!(self.events().is_empty(), "no events after the end");
        assert_eq!(self.stack.call_count(), 0, "calls left");
        assert_eq!(self.stack.dialog_count(), 0, "dialogs left");
        assert_eq!(self.stack.transaction_count(), 0, "transactions left");
        assert!(self.stack.call_txns.is_empty(), "transaction owners left");
        assert!(self.stack.call_lookups.is_empty(), "lookups left");
        assert!(self.stack.call_deadlines.is_empty(), "call timers left");
    }

    /// Starts an outgoing call to bob and returns it with the INVITE as sent.
    fn call_bob(&mut self) -> (CallId, SipRequest) {
        let call = self
            .stack
            .invite(self.now, &identity(), "bob@127.0.0.1:5080", OFFER.into())
            .unwrap();
        let invite = self.one_request(Method::Invite);
        (call, invite)
    }
}

use crate::transport::Transport;

/// The call's `Terminated` event ending with `end`, checked to render as `text` (the
/// sylkRTC reason the gateway sends).
fn terminated(call: CallId, end: CallEnd, text: &str) -> (CallId, CallEvent) {
    assert_eq!(end.to_string(), text);
    (call, CallEvent::Terminated(end))
}

fn hung_up(call: CallId) -> (CallId, CallEvent) {
    terminated(
        call,
        CallEnd::new(CallEndCause::LocalHangup),
        "200 Local hangup",
    )
}

fn remote_bye(call: CallId) -> (CallId, CallEvent) {
    terminated(
        call,
        CallEnd::new(CallEndCause::RemoteBye),
        "200 BYE received",
    )
}

fn header<'a>(r: &'a SipRequest, name: &str) -> &'a str {
    r.header(name)
        .unwrap_or_else(|| panic!("{name} missing in {}", r.method()))
}

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
    assert_eq!(
        h.events(),
        [(
            call,
            CallEvent::Accepted {
                sdp: Some(ANSWER.into())
            }
        )]
    );
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
    assert_eq!(
        h.events(),
        [(
            call,
            CallEvent::Accepted {
                sdp: Some(ANSWER.into())
            }
        )]
    );
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

/// Registers alice at the peer and returns the Contact token the peer would call.
fn registered(h: &mut Harness) -> (RegId, String) {
    let reg = h.stack.register(h.now, identity());
    let register = h.one_request(Method::Register);
    let contact = register.contacts().as_slice()[0].clone();
    h.reply(
        &register,
        200,
        "OK",
        &[("Contact", &format!("{};expires=600", contact))],
    );
    let token = contact.uri.user().unwrap().to_owned();
    (reg, token)
}

/// Sends an initial INVITE from the peer to `token`; returns its headers for later requests.
fn incoming_invite(h: &mut Harness, token: &str, sdp: Option<&str>) -> Vec<(&'static str, String)> {
    let headers = vec![
        (
            "From",
            "\"Bob\" <sip:bob@127.0.0.1:5080>;tag=bob-tag".to_owned(),
        ),
        ("To", format!("<sip:{token}@127.0.0.1:5070>")),
        ("Call-ID", "in-call-1@peer".to_owned()),
        ("CSeq", "10 INVITE".to_owned()),
        ("Contact", PEER_CONTACT.to_owned()),
    ];
    let invite = h.peer_request(
        Method::Invite,
        &format!("sip:{token}@127.0.0.1:5070"),
        &headers,
        sdp,
    );
    h.deliver(invite);
    headers
}

/// In-dialog headers from the peer for the incoming call (To gets our tag).
fn in_dialog(local_tag: &str, token: &str, cseq: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "From",
            "\"Bob\" <sip:bob@127.0.0.1:5080>;tag=bob-tag".to_owned(),
        ),
        (
            "To",
            format!("<sip:{token}@127.0.0.1:5070>;tag={local_tag}"),
        ),
        ("Call-ID", "in-call-1@peer".to_owned()),
        ("CSeq", cseq.to_owned()),
        ("Contact", PEER_CONTACT.to_owned()),
    ]
}

/// An incoming call answered and ACKed; returns call, our tag, token.
fn incoming_confirmed(h: &mut Harness) -> (CallId, String, String) {
    let (_, token) = registered(h);
    incoming_invite(h, &token, Some(OFFER));
    let call = match h.events().as_slice() {
        [(call, CallEvent::Incoming { .. })] => *call,
        other => panic!("{other:?}"),
    };
    h.responses();
    h.stack.answer(h.now, call, ANSWER.into()).unwrap();
    let ok = h.responses().pop().unwrap();
    let tag = ok.to().tag().unwrap();
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
    (call, tag, token)
}

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
        [(call, CallEvent::ReInvite { sdp: hold.clone() })]
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
    // The gateway does not answer: RFC 3261 section 14.2's 500 with a random 0-10 s
    // Retry-After, and the call keeps its session.
    h.advance(crate::call::REINVITE_ANSWER_WAIT);
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

/// Answers every DNS query of the stack: two A records for `example.test`, nothing else
/// (no NAPTR, SRV or AAAA), so RFC 3263 yields 127.0.0.1:5060 then 127.0.0.2:5060 over UDP.
fn answer_dns(h: &mut Harness) {
    use crate::dns::test_encoder::ResponseBuilder as DnsResponse;
    use crate::dns::{RecordData, RecordType};
    loop {
        // Only the DNS queries: SIP datagrams stay queued for the test.
        h.pump();
        let Some(at) = h
            .transmits
            .iter()
            .position(|t| matches!(t, SipTransmit::Dns { .. }))
        else {
            return;
        };
        let Some(SipTransmit::Dns {
            to: server,
            bytes: query,
        }) = h.transmits.remove(at)
        else {
            unreachable!("position() found a DNS query");
        };
        let parsed = crate::dns::wire::parse_query(&query).unwrap();
        let mut answer = DnsResponse::answering(&query);
        if parsed.question.rtype == RecordType::A.code() {
            for ip in [[127, 0, 0, 1], [127, 0, 0, 2]] {
                answer = answer.answer(&parsed.question.name, 60, RecordData::A(ip.into()));
            }
        } else {
            answer = answer.soa(60, 60);
        }
        h.stack.handle_dns_datagram(h.now, server, &answer.build());
    }
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
        [(_, CallEvent::ReInvite { .. })]
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
    let mut flow = None;
    while let Some(t) = h.poll_transmit() {
        match t {
            SipTransmit::Connect {
                flow: f, remote, ..
            } => {
                assert_eq!(remote, peer());
                flow = Some(f);
            }
            SipTransmit::Stream { bytes, .. } => {
                let Ok(SipMessage::Request(r)) = parse(&bytes, Framing::Stream) else {
                    panic!("not a request");
                };
                assert_eq!(*r.method(), Method::Invite);
                assert!(header(&r, "Via").starts_with("SIP/2.0/TCP "));
                let contact = r.contacts().as_slice()[0].uri.to_string();
                assert!(contact.ends_with(";transport=tcp"), "{contact}");
            }
            other => panic!("{other:?}"),
        }
    }
    let flow = flow.expect("a connection is opened");
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

const SAVP_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n\
    a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\na=sendrecv\r\n";

impl Harness {
    /// An outgoing call to bob with [`SAVP_OFFER`] as the retry offer after 488.
    fn call_bob_with_retry(&mut self) -> (CallId, SipRequest) {
        let call = self
            .stack
            .invite_with_retry_offer(
                self.now,
                &identity(),
                "bob@127.0.0.1:5080",
                OFFER.into(),
                Some(SAVP_OFFER.into()),
            )
            .unwrap();
        let invite = self.one_request(Method::Invite);
        (call, invite)
    }

    /// After a final non-2xx to `invite`: its ACK, then the requests that followed.
    fn acked_then(&mut self, invite: &SipRequest) -> Vec<SipRequest> {
        let mut sent = self.requests();
        assert!(!sent.is_empty(), "nothing sent");
        let ack = sent.remove(0);
        assert_eq!(*ack.method(), Method::Ack);
        assert_eq!(
            ack.top_via().unwrap().branch(),
            invite.top_via().unwrap().branch(),
            "the final response is ACKed in its own transaction (RFC 3261 17.1.1.3)"
        );
        sent
    }
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
    assert_eq!(
        h.events(),
        [(
            call,
            CallEvent::Accepted {
                sdp: Some(ANSWER.into())
            }
        )]
    );
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
