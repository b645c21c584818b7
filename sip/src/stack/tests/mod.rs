//! Calls through the whole stack with virtual time and a scripted SIP peer on
//! 127.0.0.1:5080, over in-memory datagrams: every message the stack sends is parsed and
//! checked, every answer is built with the message builders. The harness and helpers are
//! here; the tests are grouped by what they exercise.

mod in_dialog;
mod incoming;
mod outgoing;
mod renegotiation;
mod requests;
mod subscriptions;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use engine::Output;

use super::*;
use crate::call::{CallEnd, CallEndCause, CallError, CallEvent};
use crate::dns::{Resolver, ResolverConfig};
use crate::msg::{
    parse, Framing, Host, Method, RequestBuilder, ResponseBuilder, SipMessage, SipRequest,
    SipResponse, Uri, Via,
};
use crate::registration::RegId;
use crate::transport::{LocalAddresses, SipTransmit, Transport};

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

/// The events are exactly `call`'s `Accepted` with `sdp`.
fn assert_accepted(events: Vec<(CallId, CallEvent)>, call: CallId, sdp: &str) {
    match events.as_slice() {
        [(c, CallEvent::Accepted { sdp: Some(s), .. })] if *c == call && s == sdp => {}
        other => panic!("expected Accepted with the answer: {other:?}"),
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

    /// The connection opened and the request written on it, when the stack sent over TCP.
    fn over_tcp(&mut self) -> Option<(crate::transport::FlowId, SipRequest)> {
        let mut flow = None;
        let mut request = None;
        while let Some(t) = self.poll_transmit() {
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
                    request = Some(r);
                }
                SipTransmit::Datagram { bytes, .. } => {
                    self.transmits
                        .push_front(SipTransmit::Datagram { to: peer(), bytes });
                    return None;
                }
                other => panic!("{other:?}"),
            }
        }
        Some((flow.expect("a connection"), request.expect("a request")))
    }

    /// What was sent, unparsed (stateless answers to broken requests do not parse).
    fn sent_bytes(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(t) = self.poll_transmit() {
            if let SipTransmit::Datagram { bytes, .. } = t {
                out.push(bytes);
            }
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
    let headers = incoming_headers(token);
    let invite = h.peer_request(
        Method::Invite,
        &format!("sip:{token}@127.0.0.1:5070"),
        &headers,
        sdp,
    );
    h.deliver(invite);
    headers
}

/// The headers of a new INVITE from the peer for `token`.
fn incoming_headers(token: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "From",
            "\"Bob\" <sip:bob@127.0.0.1:5080>;tag=bob-tag".to_owned(),
        ),
        ("To", format!("<sip:{token}@127.0.0.1:5070>")),
        ("Call-ID", "in-call-1@peer".to_owned()),
        ("CSeq", "10 INVITE".to_owned()),
        ("Contact", PEER_CONTACT.to_owned()),
    ]
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
