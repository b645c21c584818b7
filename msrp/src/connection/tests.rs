//! The connection engine with virtual time: two endpoints wired back to back, and
//! hand-written frames for peers that misbehave or relays.

use std::time::{Duration, Instant};

use engine::{Output, Rng};
use sip::auth::{credentials, Challenge, DigestRequest, Ha1, HashFamily, Qop};

use super::*;
use crate::frame::{FrameReader, Parsed};

fn uri(port: u16, id: &str) -> MsrpUri {
    MsrpUri::new(false, format!("127.0.0.1:{port}").parse().unwrap(), id)
}

/// Everything an engine put out until it was quiet.
#[derive(Default, Debug)]
struct Out {
    data: Vec<Vec<u8>>,
    events: Vec<MsrpEvent>,
    connects: Vec<SocketAddr>,
    closed: bool,
    deadline: Option<Instant>,
}

fn drain(c: &mut MsrpConnection) -> Out {
    let mut out = Out::default();
    loop {
        match c.poll_output() {
            Output::Transmit(MsrpTransmit::Data(d)) => out.data.push(d),
            Output::Transmit(MsrpTransmit::Connect { addr, .. }) => out.connects.push(addr),
            Output::Transmit(MsrpTransmit::Close) => out.closed = true,
            Output::Event(e) => out.events.push(e),
            Output::Timeout(t) => {
                out.deadline = t;
                return out;
            }
        }
    }
}

/// Two endpoints on one virtual connection: bytes of each go to the other until both are
/// quiet; events are collected per side.
struct Pair {
    a: MsrpConnection,
    b: MsrpConnection,
    a_events: Vec<MsrpEvent>,
    b_events: Vec<MsrpEvent>,
    now: Instant,
}

impl Pair {
    fn new(config: MsrpConfig) -> Pair {
        let now = Instant::now();
        let a_uri = uri(1000, "alice1234");
        let b_uri = uri(2000, "bob12345");
        let mut a = MsrpConnection::new(config.clone(), a_uri.clone(), Rng::seed_from_u64(1));
        let mut b = MsrpConnection::new(config, b_uri.clone(), Rng::seed_from_u64(2));
        b.start(now, Role::Passive, vec![a_uri]).unwrap();
        a.start(now, Role::Active, vec![b_uri]).unwrap();
        let mut p = Pair {
            a,
            b,
            a_events: Vec::new(),
            b_events: Vec::new(),
            now,
        };
        let out = drain(&mut p.a);
        assert_eq!(out.connects, vec!["127.0.0.1:2000".parse().unwrap()]);
        p.a.handle_connected(now);
        p.b.handle_connected(now);
        p.pump();
        p
    }

    fn pump(&mut self) {
        loop {
            let a = drain(&mut self.a);
            let b = drain(&mut self.b);
            self.a_events.extend(a.events);
            self.b_events.extend(b.events);
            if a.data.is_empty() && b.data.is_empty() {
                return;
            }
            for d in a.data {
                self.b.handle_data(self.now, &d);
            }
            for d in b.data {
                self.a.handle_data(self.now, &d);
            }
            self.a.handle_backlog(0);
            self.b.handle_backlog(0);
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.pump();
    }
}

fn messages(events: &[MsrpEvent]) -> Vec<(String, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            MsrpEvent::Message {
                content_type, body, ..
            } => Some((content_type.clone(), body.clone())),
            _ => None,
        })
        .collect()
}

fn deliveries(events: &[MsrpEvent]) -> Vec<(OutgoingId, Delivery)> {
    events
        .iter()
        .filter_map(|e| match e {
            MsrpEvent::Delivery { id, delivery } => Some((*id, delivery.clone())),
            _ => None,
        })
        .collect()
}

fn cpim(n: usize) -> Vec<u8> {
    let mut body =
        b"From: <sip:a@x>\r\nTo: <sip:b@y>\r\n\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    let filler = b"0123456789abcdef\r\n-------";
    body.extend((0..n).map(|i| filler[i % filler.len()]));
    body
}

#[test]
fn both_ends_become_ready_through_the_bind_send() {
    let p = Pair::new(MsrpConfig::default());
    assert_eq!(p.a_events, vec![MsrpEvent::Ready]);
    assert_eq!(p.b_events, vec![MsrpEvent::Ready]);
    assert!(p.a.is_ready() && p.b.is_ready());
}

#[test]
fn a_large_message_goes_in_small_chunks_and_arrives_byte_identical_with_a_report() {
    let mut p = Pair::new(MsrpConfig::default());
    let body = cpim(200 * 1024);
    let id = p.a.send(p.now, "message/cpim", body.clone(), true).unwrap();
    // Every chunk on the wire carries at most 2048 bytes of body.
    let mut chunks = 0;
    loop {
        let out = drain(&mut p.a);
        p.a_events.extend(out.events);
        if out.data.is_empty() {
            break;
        }
        for d in out.data {
            let mut r = FrameReader::new(Default::default());
            r.push(&d);
            let mut body_len = 0;
            while let Some(x) = r.read().unwrap() {
                if let Parsed::Body(b) = x {
                    body_len += b.len();
                }
            }
            assert!(body_len <= 2048, "chunk of {body_len} bytes");
            chunks += 1;
            p.b.handle_data(p.now, &d);
        }
        let b_out = drain(&mut p.b);
        p.b_events.extend(b_out.events);
        for d in b_out.data {
            p.a.handle_data(p.now, &d);
        }
        p.a.handle_backlog(0);
    }
    p.pump();
    assert_eq!(chunks, body.len().div_ceil(2048));
    let got = messages(&p.b_events);
    assert!(
        got.len() == 1 && got[0].0 == "message/cpim" && got[0].1 == body,
        "{} messages",
        got.len()
    );
    assert_eq!(
        deliveries(&p.a_events),
        vec![(id, Delivery::Accepted), (id, Delivery::Delivered)]
    );
    assert_eq!(p.b.stats().messages_in, 1);
    assert_eq!(p.a.stats().messages_out, 1);
}

#[test]
fn a_short_message_overtakes_a_long_one() {
    let mut p = Pair::new(MsrpConfig::default());
    let long = cpim(64 * 1024);
    let short = cpim(10);
    p.a.send(p.now, "message/cpim", long.clone(), false)
        .unwrap();
    p.a.send(p.now, "message/cpim", short.clone(), false)
        .unwrap();
    p.pump();
    let got = messages(&p.b_events);
    assert!(
        got.len() == 2 && got[0].1 == short && got[1].1 == long,
        "order or content differs"
    );
}

#[test]
fn chunks_wait_while_the_socket_backlog_is_full() {
    let mut p = Pair::new(MsrpConfig::default());
    p.a.send(p.now, "message/cpim", cpim(200 * 1024), false)
        .unwrap();
    p.a.handle_backlog(1 << 20);
    assert!(
        drain(&mut p.a).data.is_empty(),
        "nothing while the socket is full"
    );
    p.a.handle_backlog(0);
    let out = drain(&mut p.a);
    let bytes: usize = out.data.iter().map(Vec::len).sum();
    assert!(!out.data.is_empty());
    assert!(
        bytes < 64 * 1024 + 4096,
        "{bytes} bytes produced past the backlog limit"
    );
}

#[test]
fn oversized_messages_get_413_and_fail_at_the_sender() {
    let config = MsrpConfig {
        max_message_size: 8 * 1024,
        ..MsrpConfig::default()
    };
    let mut p = Pair::new(config);
    // The sender's own limit refuses it outright...
    assert_eq!(
        p.a.send(p.now, "message/cpim", cpim(9 * 1024), false),
        Err(SendError::TooLarge)
    );
    // ...a peer with a larger limit gets 413 from the receiver.
    std::sync::Arc::make_mut(&mut p.a.config).max_message_size = 1 << 20;
    let id =
        p.a.send(p.now, "message/cpim", cpim(20 * 1024), false)
            .unwrap();
    p.pump();
    assert!(messages(&p.b_events).is_empty());
    assert!(matches!(
        deliveries(&p.a_events).as_slice(),
        [(i, Delivery::Failed { code: 413, .. })] if *i == id
    ));
    assert!(
        !p.b.is_closed(),
        "one refused message does not end the session"
    );
}

#[test]
fn unaccepted_types_get_415_and_validation_refusals_their_own_code() {
    let config = MsrpConfig {
        validate: Some(|_, body| {
            if body.starts_with(b"From:") {
                Ok(())
            } else {
                Err((400, "Bad CPIM"))
            }
        }),
        ..MsrpConfig::default()
    };
    let mut p = Pair::new(config);
    let a =
        p.a.send(p.now, "text/plain", b"hi".to_vec(), false)
            .unwrap();
    let b =
        p.a.send(p.now, "message/cpim", b"garbage".to_vec(), false)
            .unwrap();
    p.pump();
    let d = deliveries(&p.a_events);
    assert!(
        matches!(&d[0], (i, Delivery::Failed { code: 415, .. }) if *i == a),
        "{d:?}"
    );
    assert!(
        matches!(&d[1], (i, Delivery::Failed { code: 400, reason }) if *i == b && reason == "Bad CPIM"),
        "{d:?}"
    );
    assert_eq!(p.b.stats().refused, 2);
}

#[test]
fn a_silent_peer_times_out_the_transaction_and_ends_the_session() {
    let mut p = Pair::new(MsrpConfig::default());
    let id = p.a.send(p.now, "message/cpim", cpim(10), false).unwrap();
    let out = drain(&mut p.a);
    assert_eq!(out.data.len(), 1, "the chunk goes out (and is lost)");
    p.now += Duration::from_secs(31);
    p.a.handle_timeout(p.now);
    let out = drain(&mut p.a);
    assert!(out.closed);
    assert!(
        matches!(
            out.events.as_slice(),
            [MsrpEvent::Delivery { id: i, delivery: Delivery::Failed { code: 408, .. } }, MsrpEvent::Closed(CloseReason::TransactionTimeout)] if *i == id
        ),
        "{:?}",
        out.events
    );
    assert_eq!(out.deadline, None, "no timer left");
}

#[test]
fn a_missing_success_report_fails_only_its_message() {
    let mut p = Pair::new(MsrpConfig::default());
    let id = p.a.send(p.now, "message/cpim", cpim(10), true).unwrap();
    // The chunk reaches B, B's 200 comes back, B's REPORT is lost.
    for d in drain(&mut p.a).data {
        p.b.handle_data(p.now, &d);
    }
    let b_out = drain(&mut p.b);
    assert_eq!(b_out.data.len(), 2, "200 and REPORT");
    p.a.handle_data(p.now, &b_out.data[0]);
    p.advance(Duration::from_secs(31));
    assert_eq!(
        deliveries(&p.a_events),
        vec![
            (id, Delivery::Accepted),
            (
                id,
                Delivery::Failed {
                    code: 408,
                    reason: "No delivery report".into()
                }
            )
        ]
    );
    assert!(!p.a.is_closed());
}

#[test]
fn the_passive_end_gives_up_when_nobody_connects() {
    let now = Instant::now();
    let mut c = MsrpConnection::new(
        MsrpConfig::default(),
        uri(1, "abcd1234"),
        Rng::seed_from_u64(3),
    );
    c.start(now, Role::Passive, vec![uri(2, "peer1234")])
        .unwrap();
    let out = drain(&mut c);
    assert!(out.connects.is_empty());
    assert_eq!(out.deadline, Some(now + Duration::from_secs(30)));
    c.handle_timeout(now + Duration::from_secs(30));
    let out = drain(&mut c);
    assert_eq!(
        out.events,
        vec![MsrpEvent::Closed(CloseReason::NoConnection)]
    );
    assert!(!out.closed, "no socket to close");
}

/// A passive endpoint fed hand-written frames.
fn passive() -> (MsrpConnection, Instant) {
    let now = Instant::now();
    let mut c = MsrpConnection::new(
        MsrpConfig::default(),
        uri(2000, "bob12345"),
        Rng::seed_from_u64(4),
    );
    c.start(now, Role::Passive, vec![uri(1000, "alice1234")])
        .unwrap();
    c.handle_connected(now);
    drain(&mut c);
    (c, now)
}

fn send_frame(
    tid: &str,
    to: &str,
    message_id: &str,
    range: &str,
    body: &str,
    flag: char,
) -> String {
    format!(
        "MSRP {tid} SEND\r\nTo-Path: msrp://127.0.0.1:2000/{to};tcp\r\nFrom-Path: msrp://127.0.0.1:1000/alice1234;tcp\r\n\
         Message-ID: {message_id}\r\nByte-Range: {range}\r\nContent-Type: message/cpim\r\n\r\n{body}\r\n-------{tid}{flag}\r\n"
    )
}

fn responses(out: &Out) -> Vec<String> {
    out.data
        .iter()
        .map(|d| {
            let s = String::from_utf8_lossy(d);
            s.lines().next().unwrap_or("").to_owned()
        })
        .collect()
}

#[test]
fn chunks_reassemble_across_any_split_of_the_stream() {
    let frames = [
        send_frame("tid00001", "bob12345", "m1", "1-5/11", "hello", '+'),
        send_frame("tid00002", "bob12345", "m1", "6-11/11", " world", '$'),
    ]
    .concat();
    for step in [1, 2, 3, 7, 64, frames.len()] {
        let (mut c, now) = passive();
        for piece in frames.as_bytes().chunks(step) {
            c.handle_data(now, piece);
        }
        let out = drain(&mut c);
        assert_eq!(
            responses(&out),
            vec!["MSRP tid00001 200 OK", "MSRP tid00002 200 OK"]
        );
        assert_eq!(
            messages(&out.events),
            vec![("message/cpim".to_owned(), b"hello world".to_vec())],
            "split every {step} bytes"
        );
    }
}

#[test]
fn wrong_sessions_malformed_requests_and_unknown_methods_are_answered() {
    let (mut c, now) = passive();
    let mut input = send_frame("tid00001", "someoneelse", "m1", "1-2/2", "hi", '$');
    input += "MSRP tid00002 SEND\r\nTo-Path: msrp://127.0.0.1:2000/bob12345;tcp\r\nFrom-Path: msrp://127.0.0.1:1000/alice1234;tcp\r\nByte-Range: x\r\n-------tid00002$\r\n";
    input += "MSRP tid00003 FOO\r\nTo-Path: msrp://127.0.0.1:2000/bob12345;tcp\r\nFrom-Path: msrp://127.0.0.1:1000/alice1234;tcp\r\n-------tid00003$\r\n";
    input += "MSRP tid00004 SEND\r\nTo-Path: msrp://127.0.0.1:2000/bob12345;tcp\r\nFrom-Path: msrp://127.0.0.1:1000/intruder99;tcp\r\nMessage-ID: x\r\n-------tid00004$\r\n";
    c.handle_data(now, input.as_bytes());
    let out = drain(&mut c);
    assert_eq!(
        responses(&out),
        vec![
            "MSRP tid00001 481 Session Does Not Exist",
            "MSRP tid00002 400 Bad Request",
            "MSRP tid00003 501 Method Not Implemented",
            "MSRP tid00004 403 Forbidden"
        ]
    );
    assert!(!c.is_closed());
    assert_eq!(c.stats().malformed, 1);
}

#[test]
fn broken_framing_closes_the_connection() {
    for garbage in [
        &b"HTTP/1.1 200 OK\r\n\r\n"[..],
        b"MSRP x SEND\r\n",
        b"MSRP tid00001 SEND\r\nTo-Path: msrp://127.0.0.1:2000/bob12345;tcp\r\nFrom-Path: msrp://a/b;tcp\r\n-------tid00002$\r\n",
    ] {
        let (mut c, now) = passive();
        c.handle_data(now, garbage);
        let out = drain(&mut c);
        assert!(out.closed, "{}", String::from_utf8_lossy(garbage));
        assert!(matches!(out.events.last(), Some(MsrpEvent::Closed(CloseReason::Protocol(_)))));
    }
    // A head that never ends is cut off at the limit, not buffered forever.
    let (mut c, now) = passive();
    c.handle_data(now, b"MSRP tid00001 SEND\r\n");
    for _ in 0..2000 {
        c.handle_data(now, b"X-Filler: aaaaaaaaaaaaaaaa\r\n");
        if c.is_closed() {
            break;
        }
    }
    assert!(c.is_closed());
}

#[test]
fn a_peer_that_stops_mid_chunk_is_cut_off() {
    let (mut c, now) = passive();
    let frame = send_frame("tid00001", "bob12345", "m1", "1-5/5", "hello", '$');
    c.handle_data(now, &frame.as_bytes()[..frame.len() - 10]);
    let out = drain(&mut c);
    assert_eq!(out.deadline, Some(now + Duration::from_secs(30)));
    c.handle_timeout(now + Duration::from_secs(30));
    let out = drain(&mut c);
    assert!(out.closed);
    assert_eq!(out.events, vec![MsrpEvent::Closed(CloseReason::Stalled)]);
}

#[test]
fn a_flood_of_frames_is_cut_off() {
    let (mut c, now) = passive();
    let mut input = String::new();
    for i in 0..2100 {
        input += &send_frame(
            &format!("tid{i:05}"),
            "bob12345",
            &format!("m{i}"),
            "1-1/1",
            "x",
            '$',
        );
    }
    c.handle_data(now, input.as_bytes());
    let out = drain(&mut c);
    assert!(out.closed);
    assert_eq!(
        out.events.last(),
        Some(&MsrpEvent::Closed(CloseReason::Flood))
    );
    // The same rate spread over time is fine.
    let (mut c, mut now) = passive();
    for i in 0..4000 {
        now += Duration::from_millis(1);
        c.handle_data(
            now,
            send_frame(
                &format!("tid{i:05}"),
                "bob12345",
                &format!("m{i}"),
                "1-1/1",
                "x",
                '$',
            )
            .as_bytes(),
        );
    }
    assert!(!c.is_closed());
}

#[test]
fn a_message_that_keeps_coming_after_413_is_cut_off() {
    let (mut c, now) = passive();
    let big = 2 * 1024 * 1024;
    let mut closed_after = None;
    for i in 0..64u64 {
        let start = i * 2048 + 1;
        let f = send_frame(
            &format!("tid{i:05}"),
            "bob12345",
            "huge",
            &format!("{start}-{}/{big}", start + 2047),
            &"y".repeat(2048),
            '+',
        );
        c.handle_data(now, f.as_bytes());
        if c.is_closed() {
            closed_after = Some(i);
            break;
        }
    }
    let out = drain(&mut c);
    assert!(responses(&out)
        .iter()
        .all(|r| r.ends_with("413 Message Too Large")));
    assert!(closed_after.is_some_and(|i| i < 40), "{closed_after:?}");
}

#[test]
fn relay_auth_answers_the_digest_challenge_from_the_ha1_and_refreshes() {
    let now = Instant::now();
    let ha1 = Ha1::from_password(HashFamily::Md5, "alice", "example.test", "alicepass");
    let relay_uri = MsrpUri::parse("msrp://127.0.0.1:2855;tcp").unwrap();
    let mut c = MsrpConnection::new(
        MsrpConfig::default(),
        uri(40000, "alice1234"),
        Rng::seed_from_u64(5),
    );
    c.authenticate(
        now,
        RelayAuth {
            relay: relay_uri.clone(),
            addr: "127.0.0.1:2855".parse().unwrap(),
            username: "alice".into(),
            ha1: ha1.clone(),
        },
    );
    let out = drain(&mut c);
    assert_eq!(out.connects, vec!["127.0.0.1:2855".parse().unwrap()]);
    c.handle_connected(now);
    let first = parse_one(&drain(&mut c).data[0]);
    assert_eq!(first.method(), Some(&crate::frame::Method::Auth));
    assert_eq!(first.headers.expires, Some(600));
    assert!(first.headers.authorization.is_none());
    let tid = &first.transaction_id;
    let challenge = "Digest realm=\"example.test\", nonce=\"abc123\", qop=\"auth\"";
    c.handle_data(
        now,
        format!("MSRP {tid} 401 Unauthorized\r\nTo-Path: msrp://127.0.0.1:40000/alice1234;tcp\r\nFrom-Path: msrp://127.0.0.1:2855;tcp\r\nWWW-Authenticate: {challenge}\r\n-------{tid}$\r\n").as_bytes(),
    );
    let second = parse_one(&drain(&mut c).data[0]);
    let auth = second.headers.authorization.clone().expect("credentials");
    let param = |name: &str| {
        auth.split(", ")
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap()
    };
    assert_eq!(param("uri"), relay_uri.to_string());
    let expected = credentials(
        "alice",
        &ha1,
        &Challenge::parse(challenge).unwrap(),
        Some(Qop::Auth),
        &DigestRequest {
            method: "AUTH",
            uri: &relay_uri.to_string(),
            body: &[],
            cnonce: &param("cnonce"),
        },
        1,
    )
    .unwrap();
    assert!(expected.contains(&format!("response=\"{}\"", param("response"))));
    let tid = &second.transaction_id;
    c.handle_data(
        now,
        format!("MSRP {tid} 200 OK\r\nTo-Path: msrp://127.0.0.1:40000/alice1234;tcp\r\nFrom-Path: msrp://127.0.0.1:2855;tcp\r\nUse-Path: msrp://127.0.0.1:2855/relaysess1;tcp\r\nExpires: 120\r\n-------{tid}$\r\n").as_bytes(),
    );
    let out = drain(&mut c);
    assert_eq!(
        out.events,
        vec![MsrpEvent::Authenticated {
            use_path: vec![MsrpUri::parse("msrp://127.0.0.1:2855/relaysess1;tcp").unwrap()],
            expires: 120
        }]
    );
    assert_eq!(out.deadline, Some(now + Duration::from_secs(90)));
    // Started over the relay: the bind SEND goes to Use-Path + the peer's path.
    c.start(now, Role::Passive, vec![uri(50000, "bob12345")])
        .unwrap();
    let bind = parse_one(&drain(&mut c).data[0]);
    assert_eq!(
        crate::uri::format_path(&bind.headers.to_path),
        "msrp://127.0.0.1:2855/relaysess1;tcp msrp://127.0.0.1:50000/bob12345;tcp"
    );
    let tid = &bind.transaction_id;
    c.handle_data(now, format!("MSRP {tid} 200 OK\r\nTo-Path: msrp://127.0.0.1:40000/alice1234;tcp\r\nFrom-Path: msrp://127.0.0.1:2855/relaysess1;tcp\r\n-------{tid}$\r\n").as_bytes());
    assert_eq!(drain(&mut c).events, vec![MsrpEvent::Ready]);
    c.handle_timeout(now + Duration::from_secs(90));
    let refresh = parse_one(&drain(&mut c).data[0]);
    assert_eq!(refresh.method(), Some(&crate::frame::Method::Auth));
    assert!(
        refresh.headers.authorization.is_some(),
        "nc 2 on the same nonce"
    );
}

#[test]
fn relay_auth_failures_close_the_connection() {
    for (code, extra) in [(403, ""), (401, "WWW-Authenticate: Basic realm=\"x\"\r\n")] {
        let now = Instant::now();
        let mut c = MsrpConnection::new(
            MsrpConfig::default(),
            uri(40000, "alice1234"),
            Rng::seed_from_u64(6),
        );
        c.authenticate(
            now,
            RelayAuth {
                relay: MsrpUri::parse("msrp://127.0.0.1:2855;tcp").unwrap(),
                addr: "127.0.0.1:2855".parse().unwrap(),
                username: "alice".into(),
                ha1: Ha1::from_hex("0123456789abcdef0123456789abcdef").unwrap(),
            },
        );
        drain(&mut c);
        c.handle_connected(now);
        let auth = parse_one(&drain(&mut c).data[0]);
        let tid = &auth.transaction_id;
        c.handle_data(now, format!("MSRP {tid} {code} No\r\nTo-Path: msrp://127.0.0.1:40000/alice1234;tcp\r\nFrom-Path: msrp://127.0.0.1:2855;tcp\r\n{extra}-------{tid}$\r\n").as_bytes());
        let out = drain(&mut c);
        assert!(out.closed);
        assert_eq!(
            out.events,
            vec![MsrpEvent::Closed(CloseReason::AuthFailed { code })]
        );
    }
}

fn parse_one(frame: &[u8]) -> crate::frame::FrameHead {
    let mut r = FrameReader::new(Default::default());
    r.push(frame);
    match r.read().unwrap() {
        Some(Parsed::Head(h)) => *h,
        other => panic!("{other:?} in {}", String::from_utf8_lossy(frame)),
    }
}
