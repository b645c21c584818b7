//! Deterministic transaction tests on virtual time: retransmit schedules, timeouts, late and
//! duplicate messages, ACK handling, reliable-transport variants.

use std::time::{Duration, Instant};

use super::*;
use crate::msg::{
    parse, Framing, Host, Method, NameAddr, Param, RequestBuilder, ResponseBuilder, SipMessage,
    SipRequest, SipResponse, Uri, Via,
};

fn target(reliable: bool) -> Destination {
    Destination {
        remote: "192.0.2.1:5060".parse().expect("addr"),
        flow: 7,
        reliable,
    }
}

fn request(method: Method, branch: &str) -> SipRequest {
    let uri = |s: &str| Uri::parse(s).expect("uri");
    RequestBuilder::new(method, uri("sip:bob@example.com"))
        .via(&Via::new(
            "UDP",
            Host::Domain("client.example.com".into()),
            Some(5060),
            branch,
        ))
        .max_forwards(70)
        .from(
            &NameAddr::new(uri("sip:alice@example.com")).with_param(Param::raw("tag", Some("a1"))),
        )
        .to(&NameAddr::new(uri("sip:bob@example.com")))
        .call_id("call-1")
        .cseq(1)
        .header("Route", "<sip:proxy.example.com;lr>")
        .build()
        .expect("request")
}

fn response(req: &SipRequest, status: u16) -> SipResponse {
    ResponseBuilder::from_request(req, status, "Reason", Some("b1"))
        .build()
        .expect("response")
}

fn parse_request(bytes: &[u8]) -> SipRequest {
    match parse(bytes, Framing::Stream) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

/// Drives the layer on virtual time and records what came out, in ms since the start.
struct Harness {
    layer: TxnLayer,
    start: Instant,
    now: Instant,
}

#[derive(Debug, PartialEq, Eq)]
enum Out {
    Sent(u64, Vec<u8>),
    Event(u64, String),
}

impl Harness {
    fn new() -> Harness {
        let start = Instant::now();
        Harness {
            layer: TxnLayer::new(TxnConfig::default()),
            start,
            now: start,
        }
    }

    fn ms(&self) -> u64 {
        u64::try_from((self.now - self.start).as_millis()).expect("small")
    }

    fn drain(&mut self) -> Vec<Out> {
        let mut out = Vec::new();
        while let Some(t) = self.layer.poll_transmit() {
            out.push(Out::Sent(self.ms(), t.bytes));
        }
        while let Some(e) = self.layer.poll_event() {
            let name = match e {
                TxnEvent::Request { request, .. } => format!("request {}", request.method()),
                TxnEvent::Cancel { cancels, .. } => format!("cancel matched={}", cancels.is_some()),
                TxnEvent::Ack { txn, .. } => format!("ack txn={}", txn.is_some()),
                TxnEvent::Response { response, .. } => format!("response {}", response.status()),
                TxnEvent::Timeout { .. } => "timeout".into(),
                TxnEvent::TransportError { .. } => "transport error".into(),
                TxnEvent::Terminated { .. } => "terminated".into(),
            };
            out.push(Out::Event(self.ms(), name));
        }
        out
    }

    /// Fires timers in order until `until_ms`, returning everything emitted.
    fn run_until(&mut self, until_ms: u64) -> Vec<Out> {
        let until = self.start + Duration::from_millis(until_ms);
        let mut out = Vec::new();
        while let Some(at) = self.layer.poll_timeout() {
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            self.layer.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = self.now.max(until);
        out
    }

    fn at(&mut self, ms: u64) -> Instant {
        self.now = self.start + Duration::from_millis(ms);
        self.now
    }
}

fn sent_times(out: &[Out]) -> Vec<u64> {
    out.iter()
        .filter_map(|o| match o {
            Out::Sent(t, _) => Some(*t),
            Out::Event(..) => None,
        })
        .collect()
}

fn events(out: &[Out]) -> Vec<(u64, &str)> {
    out.iter()
        .filter_map(|o| match o {
            Out::Event(t, e) => Some((*t, e.as_str())),
            Out::Sent(..) => None,
        })
        .collect()
}

#[test]
fn invite_timer_a_doubles_and_timer_b_times_out() {
    let mut h = Harness::new();
    let now = h.now;
    h.layer
        .send_request(now, request(Method::Invite, "z9hG4bKa"), target(false))
        .expect("txn");
    assert_eq!(sent_times(&h.drain()), [0]);
    let out = h.run_until(40_000);
    // RFC 3261 section 17.1.1.2: intervals 0.5, 1, 2, 4, 8, 16 s (no T2 cap for INVITE),
    // Timer B at 64*T1 = 32 s.
    assert_eq!(sent_times(&out), [500, 1_500, 3_500, 7_500, 15_500, 31_500]);
    assert_eq!(events(&out), [(32_000, "timeout"), (32_000, "terminated")]);
    assert!(h.layer.is_empty());
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn non_invite_timer_e_is_capped_at_t2_and_timer_f_times_out() {
    let mut h = Harness::new();
    let now = h.now;
    h.layer
        .send_request(now, request(Method::Register, "z9hG4bKe"), target(false))
        .expect("txn");
    h.drain();
    let out = h.run_until(40_000);
    assert_eq!(
        sent_times(&out),
        [500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    assert_eq!(events(&out), [(32_000, "timeout"), (32_000, "terminated")]);
}

#[test]
fn non_invite_proceeding_retransmits_every_t2() {
    let mut h = Harness::new();
    let now = h.now;
    let req = request(Method::Options, "z9hG4bKp");
    h.layer
        .send_request(now, req.clone(), target(false))
        .expect("txn");
    h.drain();
    let at = h.at(100);
    h.layer.handle_response(at, response(&req, 100));
    assert_eq!(events(&h.drain()), [(100, "response 100")]);
    let out = h.run_until(9_000);
    // E was armed for 500 ms in Trying; in Proceeding each firing re-arms at T2.
    assert_eq!(sent_times(&out), [500, 4_500, 8_500]);
}

#[test]
fn invite_non_2xx_is_acked_by_the_transaction_and_late_finals_absorbed() {
    let mut h = Harness::new();
    let now = h.now;
    let invite = request(Method::Invite, "z9hG4bKn");
    h.layer
        .send_request(now, invite.clone(), target(false))
        .expect("txn");
    h.drain();
    let at = h.at(200);
    h.layer.handle_response(at, response(&invite, 180));
    assert_eq!(events(&h.drain()), [(200, "response 180")]);
    let at = h.at(300);
    h.layer.handle_response(at, response(&invite, 486));
    let out = h.drain();
    assert_eq!(events(&out), [(300, "response 486")]);
    let [Out::Sent(300, ack_bytes)] = &out[..1] else {
        panic!("ACK first: {out:?}")
    };
    let ack = parse_request(ack_bytes);
    // RFC 3261 section 17.1.1.3.
    assert_eq!(ack.method(), &Method::Ack);
    assert_eq!(
        ack.top_via().and_then(|v| v.branch()).as_deref(),
        Some("z9hG4bKn")
    );
    assert_eq!(ack.cseq().seq, 1);
    assert_eq!(ack.cseq().method, Method::Ack);
    assert_eq!(ack.to().tag().as_deref(), Some("b1"));
    assert_eq!(ack.uri(), invite.uri());
    assert_eq!(ack.route().len(), 1);

    // A retransmitted 486 gets the same ACK again and nothing reaches the TU.
    let at = h.at(1_000);
    h.layer.handle_response(at, response(&invite, 486));
    let out = h.drain();
    assert!(
        matches!(&out[..], [Out::Sent(1_000, b)] if b == ack_bytes),
        "{out:?}"
    );
    // No retransmission of the INVITE after a response; Timer D ends it at 32 s.
    let out = h.run_until(40_000);
    assert_eq!(sent_times(&out), Vec::<u64>::new());
    assert_eq!(events(&out), [(32_300, "terminated")]);
    // A response after termination matches nothing and is dropped.
    let at = h.at(41_000);
    h.layer.handle_response(at, response(&invite, 486));
    assert!(h.drain().is_empty());
}

#[test]
fn invite_2xx_goes_to_accepted_and_retransmissions_reach_the_tu() {
    let mut h = Harness::new();
    let now = h.now;
    let invite = request(Method::Invite, "z9hG4bK2");
    h.layer
        .send_request(now, invite.clone(), target(false))
        .expect("txn");
    h.drain();
    let at = h.at(100);
    h.layer.handle_response(at, response(&invite, 200));
    let mut out = h.drain();
    let at = h.at(600);
    h.layer.handle_response(at, response(&invite, 200));
    out.extend(h.drain());
    // The TU ACKs 2xx itself; the transaction sends nothing.
    assert_eq!(sent_times(&out), Vec::<u64>::new());
    assert_eq!(events(&out), [(100, "response 200"), (600, "response 200")]);
    let out = h.run_until(40_000);
    assert_eq!(events(&out), [(32_100, "terminated")]);
}

#[test]
fn non_invite_final_then_timer_k_and_absorbed_retransmissions() {
    for (reliable, k_ms) in [(false, 5_000), (true, 0)] {
        let mut h = Harness::new();
        let now = h.now;
        let req = request(Method::Register, "z9hG4bKk");
        h.layer
            .send_request(now, req.clone(), target(reliable))
            .expect("txn");
        h.drain();
        let at = h.at(50);
        h.layer.handle_response(at, response(&req, 200));
        assert_eq!(events(&h.drain()), [(50, "response 200")]);
        if !reliable {
            let at = h.at(60);
            h.layer.handle_response(at, response(&req, 200));
            assert!(h.drain().is_empty(), "retransmitted 200 absorbed");
        }
        let out = h.run_until(60_000);
        assert_eq!(
            events(&out),
            [(50 + k_ms, "terminated")],
            "reliable={reliable}"
        );
        assert_eq!(sent_times(&out), Vec::<u64>::new(), "reliable={reliable}");
    }
}

#[test]
fn reliable_transports_do_not_retransmit_but_still_time_out() {
    let mut h = Harness::new();
    let now = h.now;
    h.layer
        .send_request(now, request(Method::Invite, "z9hG4bKr"), target(true))
        .expect("txn");
    h.drain();
    let out = h.run_until(40_000);
    assert_eq!(sent_times(&out), Vec::<u64>::new());
    assert_eq!(events(&out), [(32_000, "timeout"), (32_000, "terminated")]);

    // Timer D is zero: a 486 over TCP ends the transaction at once.
    let mut h = Harness::new();
    let now = h.now;
    let invite = request(Method::Invite, "z9hG4bKr2");
    h.layer
        .send_request(now, invite.clone(), target(true))
        .expect("txn");
    h.drain();
    let at = h.at(10);
    h.layer.handle_response(at, response(&invite, 486));
    h.drain();
    let out = h.run_until(10);
    assert_eq!(events(&out), [(10, "terminated")]);
}

#[test]
fn server_non_invite_answers_duplicates_and_ends_on_timer_j() {
    for (reliable, j_ms) in [(false, 32_000), (true, 0)] {
        let mut h = Harness::new();
        let req = request(Method::Options, "z9hG4bKs");
        let now = h.now;
        h.layer.handle_request(now, req.clone(), target(reliable));
        let out = h.drain();
        assert_eq!(events(&out), [(0, "request OPTIONS")]);
        assert_eq!(sent_times(&out), Vec::<u64>::new(), "no 100 for non-INVITE");
        let txn = h.layer.server_index.values().next().copied().expect("txn");

        // Duplicate while Trying: absorbed, not a new request.
        let at = h.at(100);
        h.layer.handle_request(at, req.clone(), target(reliable));
        assert!(h.drain().is_empty());

        assert!(h.layer.request(txn).is_some());
        let at = h.at(200);
        h.layer
            .send_response(at, txn, response(&req, 200))
            .expect("200");
        let sent = h.drain();
        assert_eq!(sent_times(&sent), [200]);
        assert_eq!(
            h.layer.send_response(at, txn, response(&req, 500)),
            Err(TxnError::InvalidState)
        );
        // Completed keeps the response's bytes only (RFC 3261 17.2.2), not the request.
        assert!(h.layer.request(txn).is_none());

        if !reliable {
            let at = h.at(300);
            h.layer.handle_request(at, req.clone(), target(reliable));
            let out = h.drain();
            assert_eq!(out, [Out::Sent(300, response(&req, 200).to_bytes())]);
        }
        let out = h.run_until(60_000);
        assert_eq!(
            events(&out),
            [(200 + j_ms, "terminated")],
            "reliable={reliable}"
        );
        assert_eq!(
            h.layer.send_response(h.now, txn, response(&req, 200)),
            Err(TxnError::UnknownTransaction)
        );
    }
}

#[test]
fn server_invite_retransmits_final_until_ack_then_timer_i() {
    let mut h = Harness::new();
    let invite = request(Method::Invite, "z9hG4bKsi");
    let now = h.now;
    h.layer.handle_request(now, invite.clone(), target(false));
    let out = h.drain();
    assert_eq!(events(&out), [(0, "request INVITE")]);
    let [Out::Sent(0, trying), ..] = &out[..] else {
        panic!("100 Trying: {out:?}")
    };
    assert!(trying.starts_with(b"SIP/2.0 100 Trying\r\n"));
    let txn = h.layer.server_index.values().next().copied().expect("txn");

    // A retransmitted INVITE gets the last provisional.
    let at = h.at(50);
    h.layer.handle_request(at, invite.clone(), target(false));
    assert_eq!(h.drain(), [Out::Sent(50, trying.clone())]);

    let at = h.at(100);
    h.layer
        .send_response(at, txn, response(&invite, 486))
        .expect("486");
    assert_eq!(sent_times(&h.drain()), [100]);
    // Timer G: 0.5, 1, 2, 4, 4 s (capped at T2).
    let out = h.run_until(11_700);
    assert_eq!(sent_times(&out), [600, 1_600, 3_600, 7_600, 11_600]);

    // The ACK (same branch) confirms; ACK retransmissions are absorbed; nothing to the TU.
    let ack_req = request(Method::Ack, "z9hG4bKsi");
    let at = h.at(12_000);
    h.layer.handle_request(at, ack_req.clone(), target(false));
    let at = h.at(12_100);
    h.layer.handle_request(at, ack_req, target(false));
    assert!(h.drain().is_empty());
    let out = h.run_until(60_000);
    assert_eq!(sent_times(&out), Vec::<u64>::new(), "no G after ACK");
    assert_eq!(events(&out), [(17_000, "terminated")]);
}

#[test]
fn server_invite_without_ack_times_out_on_timer_h() {
    let mut h = Harness::new();
    let invite = request(Method::Invite, "z9hG4bKh");
    let now = h.now;
    h.layer.handle_request(now, invite.clone(), target(true));
    h.drain();
    let txn = h.layer.server_index.values().next().copied().expect("txn");
    h.layer
        .send_response(now, txn, response(&invite, 404))
        .expect("404");
    h.drain();
    let out = h.run_until(60_000);
    assert_eq!(
        sent_times(&out),
        Vec::<u64>::new(),
        "no Timer G on reliable transports"
    );
    assert_eq!(events(&out), [(32_000, "timeout"), (32_000, "terminated")]);
}

#[test]
fn server_invite_2xx_accepted_state_and_acks() {
    let mut h = Harness::new();
    let invite = request(Method::Invite, "z9hG4bKacc");
    let now = h.now;
    h.layer.handle_request(now, invite.clone(), target(false));
    h.drain();
    let txn = h.layer.server_index.values().next().copied().expect("txn");
    h.layer
        .send_response(now, txn, response(&invite, 200))
        .expect("200");
    assert_eq!(sent_times(&h.drain()), [0]);
    // RFC 6026: retransmitted INVITE absorbed, the TU retransmits the 2xx through us.
    let at = h.at(500);
    h.layer.handle_request(at, invite.clone(), target(false));
    assert!(h.drain().is_empty());
    h.layer
        .send_response(at, txn, response(&invite, 200))
        .expect("2xx again");
    assert_eq!(sent_times(&h.drain()), [500]);
    assert_eq!(
        h.layer.send_response(at, txn, response(&invite, 486)),
        Err(TxnError::InvalidState)
    );
    // An ACK for the 2xx normally has its own branch: it goes to the dialog layer.
    let at = h.at(600);
    h.layer
        .handle_request(at, request(Method::Ack, "z9hG4bKother"), target(false));
    assert_eq!(events(&h.drain()), [(600, "ack txn=false")]);
    let out = h.run_until(60_000);
    assert_eq!(events(&out), [(32_000, "terminated")]);
}

#[test]
fn cancel_is_its_own_transaction_and_finds_its_invite() {
    let mut h = Harness::new();
    let invite = request(Method::Invite, "z9hG4bKc");
    let now = h.now;
    h.layer.handle_request(now, invite.clone(), target(false));
    h.drain();
    let cancel = build_cancel(&invite).expect("cancel");
    assert_eq!(
        cancel.top_via().and_then(|v| v.branch()).as_deref(),
        Some("z9hG4bKc")
    );
    h.layer.handle_request(now, cancel.clone(), target(false));
    assert_eq!(events(&h.drain()), [(0, "cancel matched=true")]);
    // A retransmitted CANCEL is absorbed by the CANCEL's transaction.
    h.layer.handle_request(now, cancel, target(false));
    assert!(h.drain().is_empty());
    let stray = build_cancel(&request(Method::Invite, "z9hG4bKnone")).expect("cancel");
    h.layer.handle_request(now, stray, target(false));
    assert_eq!(events(&h.drain()), [(0, "cancel matched=false")]);
    assert_eq!(h.layer.len(), 3);
}

#[test]
fn spurious_wakeups_and_errors() {
    let mut h = Harness::new();
    let now = h.now;
    let req = request(Method::Register, "z9hG4bKx");
    let txn = h
        .layer
        .send_request(now, req.clone(), target(false))
        .expect("txn");
    h.drain();
    // Waking early or twice does nothing.
    let at = h.at(100);
    h.layer.handle_timeout(at);
    h.layer.handle_timeout(at);
    assert!(h.drain().is_empty());
    assert_eq!(
        h.layer.send_request(now, req.clone(), target(false)),
        Err(TxnError::DuplicateBranch)
    );
    assert_eq!(
        h.layer
            .send_request(now, request(Method::Ack, "z9hG4bKy"), target(false)),
        Err(TxnError::AckIsNotATransaction)
    );
    assert_eq!(
        h.layer
            .send_request(now, request(Method::Options, "nocookie"), target(false)),
        Err(TxnError::MissingBranch)
    );
    assert_eq!(
        h.layer.send_response(now, txn, response(&req, 200)),
        Err(TxnError::InvalidState),
        "client transactions take no TU responses"
    );
    h.layer.handle_transport_error(at, txn);
    assert_eq!(
        events(&h.drain()),
        [(100, "transport error"), (100, "terminated")]
    );
    // Its timers are now stale heap entries: firing them is a no-op.
    let out = h.run_until(60_000);
    assert!(out.is_empty());
    assert!(h.layer.is_empty());
}

/// Issue 16: a response that matches no client transaction is dropped (RFC 3261 section
/// 18.1.2) and counted, not passed up.
#[test]
fn stray_responses_are_dropped_and_counted() {
    use engine::drops::{count, DropKind};
    let mut h = Harness::new();
    let before = count(DropKind::SipStrayResponse);
    let now = h.at(0);
    h.layer.handle_response(
        now,
        response(&request(Method::Options, "z9hG4bKnobody"), 200),
    );
    assert!(h.drain().is_empty());
    assert!(count(DropKind::SipStrayResponse) > before);
}
