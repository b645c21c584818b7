//! The engine with virtual time and scripted server bytes.

use std::time::{Duration, Instant};

use engine::{Output, Rng};
use sip::auth::{Ha1, HashFamily};

use crate::*;

struct Harness {
    c: XcapClient,
    now: Instant,
}

fn root() -> XcapRoot {
    XcapRoot::parse("http://127.0.0.1:5081/xcap-root").unwrap()
}

fn get(doc: &str) -> XcapRequest {
    XcapRequest {
        method: Method::Get,
        url: root().user_document("resource-lists", "sip:alice@example.test", doc),
        content_type: None,
        body: Vec::new(),
        precondition: Precondition::None,
        credentials: Some(Credentials {
            username: "alice".into(),
            ha1: Ha1::from_password(HashFamily::Md5, "alice", "example.test", "secret"),
        }),
    }
}

impl Harness {
    fn new() -> Harness {
        Harness {
            c: XcapClient::new(XcapClientConfig::default(), Rng::seed_from_u64(7)),
            now: Instant::now(),
        }
    }

    fn drain(&mut self) -> (Vec<XcapTransmit>, Vec<XcapEvent>, Option<Instant>) {
        let (mut t, mut e) = (Vec::new(), Vec::new());
        loop {
            match self.c.poll_output() {
                Output::Transmit(x) => t.push(x),
                Output::Event(x) => e.push(x),
                Output::Timeout(d) => return (t, e, d),
            }
        }
    }
}

fn conn_of(t: &[XcapTransmit]) -> ConnId {
    match t.first() {
        Some(XcapTransmit::Connect { conn, .. }) => *conn,
        other => panic!("{other:?}"),
    }
}

fn sent(t: &[XcapTransmit]) -> String {
    t.iter()
        .filter_map(|x| match x {
            XcapTransmit::Data { bytes, .. } => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

const CHALLENGE: &[u8] = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"example.test\", nonce=\"n1\", qop=\"auth\"\r\nContent-Length: 0\r\n\r\n";

#[test]
fn digest_challenge_then_keep_alive_reuses_the_nonce() {
    let mut h = Harness::new();
    let id = h.c.submit(h.now, get("index")).unwrap();
    let (t, e, deadline) = h.drain();
    assert!(e.is_empty());
    assert_eq!(deadline, Some(h.now + Duration::from_secs(10)));
    let conn = conn_of(&t);
    h.c.handle_connected(h.now, conn);
    let (t, _, _) = h.drain();
    let first = sent(&t);
    assert!(first.starts_with(
        "GET /xcap-root/resource-lists/users/sip:alice@example.test/index HTTP/1.1\r\nHost: 127.0.0.1:5081\r\n"
    ));
    assert!(!first.contains("Authorization"));
    h.c.handle_data(h.now, conn, CHALLENGE);
    let (t, e, _) = h.drain();
    assert!(e.is_empty());
    let second = sent(&t);
    assert!(second.contains("Authorization: Digest username=\"alice\", realm=\"example.test\", nonce=\"n1\", uri=\"/xcap-root/resource-lists/users/sip:alice@example.test/index\""));
    assert!(second.contains("qop=auth, nc=00000001"));
    h.c.handle_data(
        h.now,
        conn,
        b"HTTP/1.1 200 OK\r\nETag: \"e7\"\r\nContent-Type: application/resource-lists+xml\r\nContent-Length: 2\r\n\r\nok",
    );
    let (_, e, deadline) = h.drain();
    assert_eq!(
        e,
        vec![XcapEvent::Done {
            id,
            result: Ok(XcapResponse {
                status: 200,
                etag: Some("\"e7\"".into()),
                content_type: Some("application/resource-lists+xml".into()),
                body: b"ok".to_vec(),
            }),
        }]
    );
    // Idle: only the keep-alive timer remains.
    assert_eq!(deadline, Some(h.now + Duration::from_secs(30)));
    // The next request goes on the same connection, authorised up front (nc 2).
    let mut put = get("index");
    put.method = Method::Put;
    put.body = b"<x/>".to_vec();
    put.content_type = Some("application/resource-lists+xml".into());
    put.precondition = Precondition::IfMatch("\"e7\"".into());
    h.c.submit(h.now, put).unwrap();
    let (t, _, _) = h.drain();
    let third = sent(&t);
    assert!(third.starts_with("PUT "), "{third}");
    assert!(third.contains("nc=00000002"));
    assert!(third.contains("If-Match: \"e7\"\r\n"));
    assert!(third.ends_with("Content-Length: 4\r\n\r\n<x/>"));
    assert_eq!(h.c.connection_count(), 1);
}

#[test]
fn wrong_credentials_end_after_one_retry() {
    let mut h = Harness::new();
    let id = h.c.submit(h.now, get("index")).unwrap();
    let (t, _, _) = h.drain();
    let conn = conn_of(&t);
    h.c.handle_connected(h.now, conn);
    h.c.handle_data(h.now, conn, CHALLENGE);
    h.drain();
    h.c.handle_data(h.now, conn, CHALLENGE);
    let (_, e, _) = h.drain();
    assert_eq!(
        e,
        vec![XcapEvent::Done {
            id,
            result: Err(XcapError::Auth(sip::auth::AuthError::Rejected)),
        }]
    );
}

#[test]
fn connection_close_moves_the_retry_to_a_new_connection() {
    let mut h = Harness::new();
    let id = h.c.submit(h.now, get("index")).unwrap();
    let (t, _, _) = h.drain();
    let conn = conn_of(&t);
    h.c.handle_connected(h.now, conn);
    h.drain();
    let mut closing = CHALLENGE.to_vec();
    closing.splice(27..27, b"Connection: close\r\n".iter().copied());
    h.c.handle_data(h.now, conn, &closing);
    let (t, e, _) = h.drain();
    assert!(e.is_empty());
    assert_eq!(t[0], XcapTransmit::Close { conn });
    let conn2 = match &t[1] {
        XcapTransmit::Connect { conn, .. } => *conn,
        other => panic!("{other:?}"),
    };
    assert_ne!(conn, conn2);
    h.c.handle_connected(h.now, conn2);
    let (t, _, _) = h.drain();
    assert!(sent(&t).contains("Authorization: Digest"));
    // The server answers and closes without a length: the close completes the body.
    h.c.handle_data(
        h.now,
        conn2,
        b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nnope",
    );
    h.c.handle_closed(h.now, conn2);
    let (_, e, _) = h.drain();
    match &e[..] {
        [XcapEvent::Done {
            id: got,
            result: Ok(r),
        }] => {
            assert_eq!((*got, r.status, &r.body[..]), (id, 404, &b"nope"[..]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((h.c.connection_count(), h.c.request_count()), (0, 0));
}

#[test]
fn timeouts_failures_and_limits() {
    let mut h = Harness::new();
    let a = h.c.submit(h.now, get("a")).unwrap();
    let b = h.c.submit(h.now, get("b")).unwrap();
    let (t, _, _) = h.drain();
    let conn = conn_of(&t);
    h.c.handle_closed(h.now, conn);
    let (_, e, _) = h.drain();
    assert_eq!(
        e,
        vec![
            XcapEvent::Done {
                id: a,
                result: Err(XcapError::ConnectFailed)
            },
            XcapEvent::Done {
                id: b,
                result: Err(XcapError::ConnectFailed)
            },
        ]
    );
    // A request in flight past its deadline closes its connection; the next one moves on.
    let a = h.c.submit(h.now, get("a")).unwrap();
    let (t, _, _) = h.drain();
    let conn = conn_of(&t);
    h.c.handle_connected(h.now, conn);
    h.drain();
    h.now += Duration::from_secs(5);
    let b = h.c.submit(h.now, get("b")).unwrap();
    h.now += Duration::from_secs(5);
    h.c.handle_timeout(h.now);
    let (t, e, deadline) = h.drain();
    assert_eq!(
        e,
        vec![XcapEvent::Done {
            id: a,
            result: Err(XcapError::Timeout)
        }]
    );
    assert_eq!(t[0], XcapTransmit::Close { conn });
    assert!(matches!(t[1], XcapTransmit::Connect { .. }));
    assert_eq!(deadline, Some(h.now + Duration::from_secs(5)));
    // A body over the limit fails the request.
    let conn = conn_of(&t[1..]);
    h.c.handle_connected(h.now, conn);
    h.drain();
    h.c.handle_data(
        h.now,
        conn,
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
    );
    let (t, e, _) = h.drain();
    assert_eq!(
        e,
        vec![XcapEvent::Done {
            id: b,
            result: Err(XcapError::Response(ParseError::BodyTooLarge)),
        }]
    );
    assert_eq!(t, vec![XcapTransmit::Close { conn }]);
    assert_eq!((h.c.connection_count(), h.c.request_count()), (0, 0));
}

#[test]
fn a_stale_keep_alive_connection_resends_once() {
    let mut h = Harness::new();
    h.c.submit(h.now, get("a")).unwrap();
    let (t, _, _) = h.drain();
    let conn = conn_of(&t);
    h.c.handle_connected(h.now, conn);
    h.drain();
    h.c.handle_data(h.now, conn, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    h.drain();
    let b = h.c.submit(h.now, get("b")).unwrap();
    h.drain();
    // The server had closed the idle connection: the request goes once more, elsewhere.
    h.c.handle_closed(h.now, conn);
    let (t, e, _) = h.drain();
    assert!(e.is_empty());
    let conn2 = conn_of(&t);
    h.c.handle_connected(h.now, conn2);
    h.drain();
    h.c.handle_closed(h.now, conn2);
    let (_, e, _) = h.drain();
    assert_eq!(
        e,
        vec![XcapEvent::Done {
            id: b,
            result: Err(XcapError::ConnectionClosed)
        }]
    );
}
