//! Deterministic gateway tests through the switchboard (the SIP stack, the bridges and the
//! gateway as production wires them): scripted clients, virtual time, every reply checked.

use std::time::Instant;

use serde_json::{json, Value};

use super::*;
use crate::config::SylkRtcConfig;
use crate::gateway::{GatewayCommand, GatewayConfig};
use sip::msg::{Framing, SipMessage};
use sip::transport::SipTransmit;

const HA1: &str = "0123456789abcdef0123456789abcdef";

/// A client's handle in these tests: the connection reference itself.
type ClientId = ConnRef;

fn gateway(domains: &[&str], max_accounts: usize) -> Switchboard {
    gateway_with_media(
        domains,
        max_accounts,
        crate::config::Config::default().media,
    )
}

fn gateway_with_media(
    domains: &[&str],
    max_accounts: usize,
    media: crate::config::MediaConfig,
) -> Switchboard {
    gateway_with_chat(
        domains,
        max_accounts,
        media,
        crate::gateway::ChatSettings {
            listen: Some("127.0.0.1:2855".parse().unwrap()),
            address: Some("127.0.0.1".parse().unwrap()),
            max_message_size: 1 << 20,
            auth_expires: 600,
            ..Default::default()
        },
    )
}

fn gateway_with_chat(
    domains: &[&str],
    max_accounts: usize,
    media: crate::config::MediaConfig,
    chat: crate::gateway::ChatSettings,
) -> Switchboard {
    let max_calls = media.max_calls;
    let gateway = Gateway::new(
        GatewayConfig {
            sylkrtc: SylkRtcConfig {
                sip_domains: domains.iter().map(|d| d.to_string()).collect(),
                max_accounts_per_connection: max_accounts,
            },
            trace_websocket: false,
            media,
            decline_code: 486,
            push_parameters: Default::default(),
            messaging: crate::config::Config::default().messaging,
            contacts: crate::config::Config::default().contacts,
            chat,
            dtls_identity: identity(),
        },
        engine::Rng::seed_from_u64(1),
    )
    .unwrap();
    Switchboard::new(gateway, test_stack(), max_calls)
}

/// One DTLS identity for every test gateway (making one costs a key generation).
fn identity() -> std::sync::Arc<media::webrtc_leg::DtlsIdentity> {
    static IDENTITY: std::sync::OnceLock<std::sync::Arc<media::webrtc_leg::DtlsIdentity>> =
        std::sync::OnceLock::new();
    IDENTITY
        .get_or_init(|| std::sync::Arc::new(media::webrtc_leg::DtlsIdentity::generate().unwrap()))
        .clone()
}

/// A SIP stack on a documentation address that nothing in these tests sends to.
fn test_stack() -> SipStack {
    use sip::dns::{Resolver, ResolverConfig};
    use sip::stack::StackConfig;
    use sip::transport::LocalAddresses;
    use sip::transport::Transport;
    SipStack::new(
        StackConfig {
            local: LocalAddresses {
                udp_tcp: "127.0.0.1:5070".parse().unwrap(),
                tls: None,
                advertised_host: None,
            },
            transports: vec![Transport::Udp],
            outbound_proxy: None,
            register_expires: 600,
            user_agent: "test".into(),
        },
        Resolver::new(
            ResolverConfig::with_nameservers(vec!["127.0.0.1:53".parse().unwrap()]),
            engine::Rng::seed_from_u64(1),
        ),
        engine::Rng::seed_from_u64(7),
    )
}

/// Drains all outputs for `conn` as JSON values.
fn sent(g: &mut Switchboard, conn: ConnRef) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(output) = g.poll_output() {
        let Command::Gateway(GatewayCommand::Send { conn: c, text }) = output else {
            continue;
        };
        assert_eq!(c, conn, "output routed to the wrong connection");
        out.push(serde_json::from_str(&text).unwrap());
    }
    out
}

fn request(g: &mut Switchboard, now: Instant, client: ClientId, v: Value) {
    g.handle_client_text(now, client, &v.to_string());
}

/// Opens a client on connection `conn`; its handle is `conn`.
fn open(
    g: &mut Switchboard,
    now: Instant,
    conn: ConnRef,
    dialect: Dialect,
    log_id: u64,
) -> ClientId {
    g.handle_client_open(now, conn, dialect, log_id);
    conn
}

fn add(account: &str, tx: &str) -> Value {
    json!({"sylkrtc":"account-add","transaction":tx,"account":account,"password":HA1})
}

#[test]
fn ready_then_one_reply_per_request_in_order() {
    let now = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c = open(&mut g, now, 7, Dialect::V2, 1);
    assert_eq!(sent(&mut g, 7), [json!({"sylkrtc":"ready-event"})]);
    request(&mut g, now, c, json!({"sylkrtc":"ping","transaction":"p1"}));
    request(&mut g, now, c, add("sip:alice@example.com", "a1"));
    request(&mut g, now, c, add("alice@example.com", "a2"));
    request(
        &mut g,
        now,
        c,
        json!({"sylkrtc":"account-remove","transaction":"r1","account":"bob@example.com"}),
    );
    request(
        &mut g,
        now,
        c,
        json!({"sylkrtc":"account-remove","transaction":"r2","account":"alice@example.com"}),
    );
    request(&mut g, now, c, add("alice@example.com", "a3"));
    assert_eq!(
        sent(&mut g, 7),
        [
            json!({"sylkrtc":"ack","transaction":"p1"}),
            json!({"sylkrtc":"ack","transaction":"a1"}),
            json!({"sylkrtc":"error","transaction":"a2","error":"Account alice@example.com already added"}),
            json!({"sylkrtc":"error","transaction":"r1","error":"Unknown account specified: bob@example.com"}),
            json!({"sylkrtc":"ack","transaction":"r2"}),
            json!({"sylkrtc":"ack","transaction":"a3"}),
        ]
    );
}

#[test]
fn v1_ready_and_garbage_is_dropped_without_reply() {
    let now = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c = open(&mut g, now, 1, Dialect::V1, 1);
    assert_eq!(
        sent(&mut g, 1),
        [json!({"sylkrtc":"event","event":"ready"})]
    );
    for garbage in [
        "",
        "{",
        "[]",
        "null",
        r#"{"transaction":"t"}"#,
        r#"{"sylkrtc":"ping"}"#,
    ] {
        g.handle_client_text(now, c, garbage);
    }
    assert!(sent(&mut g, 1).is_empty());
    g.handle_client_text(now, c, r#"{"sylkrtc":"ping","transaction":"still-up"}"#);
    assert_eq!(
        sent(&mut g, 1),
        [json!({"sylkrtc":"ack","transaction":"still-up"})]
    );
}

#[test]
fn domain_allow_list_and_account_limit() {
    let now = Instant::now();
    let mut g = gateway(&["example.com"], 2);
    let c = open(&mut g, now, 1, Dialect::V2, 1);
    sent(&mut g, 1);
    request(&mut g, now, c, add("a@other.org", "t1"));
    request(&mut g, now, c, add("a@EXAMPLE.com", "t2"));
    request(&mut g, now, c, add("b@example.com", "t3"));
    request(&mut g, now, c, add("c@example.com", "t4"));
    let replies = sent(&mut g, 1);
    assert_eq!(replies[0]["error"], "SIP domain not allowed: other.org");
    assert_eq!(replies[1]["sylkrtc"], "ack");
    assert_eq!(replies[2]["sylkrtc"], "ack");
    assert_eq!(
        replies[3]["error"],
        "Too many accounts on this connection (at most 2)"
    );
}

#[test]
fn later_features_answer_not_supported_yet() {
    let now = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c = open(&mut g, now, 1, Dialect::V2, 1);
    sent(&mut g, 1);
    request(&mut g, now, c, add("a@example.com", "t0"));
    request(
        &mut g,
        now,
        c,
        json!({"sylkrtc":"account-register","transaction":"t1","account":"a@example.com"}),
    );
    request(
        &mut g,
        now,
        c,
        json!({"sylkrtc":"account-register","transaction":"t2","account":"x@example.com"}),
    );
    request(
        &mut g,
        now,
        c,
        json!({"sylkrtc":"session-create","transaction":"t3","account":"a@example.com",
        "session":"s","uri":"b@example.com","sdp":"v=0"}),
    );
    request(
        &mut g,
        now,
        c,
        json!({"sylkrtc":"videoroom-leave","transaction":"t4","session":"s"}),
    );
    request(
        &mut g,
        now,
        c,
        json!({"sylkrtc":"nonsense","transaction":"t5"}),
    );
    let replies = sent(&mut g, 1);
    assert_eq!(replies.len(), 7, "{replies:#?}");
    assert_eq!(replies[1], json!({"sylkrtc":"ack","transaction":"t1"}));
    assert_eq!(
        replies[2]["state"], "registering",
        "the event follows its request's ack"
    );
    assert_eq!(
        replies[3]["error"],
        "Unknown account specified: x@example.com"
    );
    assert!(
        replies[4]["error"]
            .as_str()
            .unwrap()
            .starts_with("Invalid SDP: "),
        "{}",
        replies[4]
    );
    assert_eq!(replies[5]["error"], "not supported yet: videoroom-leave");
    assert_eq!(replies[6]["error"], "Unknown request type: nonsense");
}

#[test]
fn same_account_on_two_connections_and_close_frees_everything() {
    let now = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c1 = open(&mut g, now, 1, Dialect::V2, 1);
    let c2 = open(&mut g, now, 2, Dialect::V1, 2);
    while g.poll_output().is_some() {}
    request(&mut g, now, c1, add("a@example.com", "t1"));
    request(&mut g, now, c1, add("b@example.com", "t2"));
    request(&mut g, now, c2, add("a@example.com", "t3"));
    let mut acks = 0;
    while let Some(Command::Gateway(GatewayCommand::Send { text, .. })) = g.poll_output() {
        assert!(text.contains("\"ack\""), "{text}");
        acks += 1;
    }
    assert_eq!(acks, 3);
    assert_eq!(g.gateway().account_count(), 3);
    assert_eq!(g.gateway().account_instances("a@example.com"), 2);
    g.handle_client_closed(now, c1);
    assert_eq!(g.gateway().account_count(), 1);
    assert_eq!(g.gateway().client_count(), 1);
    assert_eq!(g.gateway().account_instances("b@example.com"), 0);
    // Events for a closed client go nowhere; a stale id is ignored.
    g.handle_client_text(now, c1, r#"{"sylkrtc":"ping","transaction":"x"}"#);
    assert!(g.poll_output().is_none());
    g.handle_client_closed(now, c2);
    assert_eq!(
        (g.gateway().client_count(), g.gateway().account_count()),
        (0, 0)
    );
    assert_eq!(g.gateway().aor_count(), 0);
}

/// Drains every output: client texts as JSON, SIP datagrams as parsed messages.
fn drain(g: &mut Switchboard) -> (Vec<Value>, Vec<(std::net::SocketAddr, SipMessage)>) {
    let (mut texts, mut sip) = (Vec::new(), Vec::new());
    while let Some(out) = g.poll_output() {
        match out {
            Command::Gateway(GatewayCommand::Send { text, .. }) => {
                texts.push(serde_json::from_str(&text).unwrap())
            }
            Command::Sip(SipTransmit::Datagram { to, bytes }) => {
                sip.push((to, sip::msg::parse(&bytes, Framing::Datagram).unwrap()))
            }
            other => panic!("unexpected output {other:?}"),
        }
    }
    (texts, sip)
}

fn md5_hex(s: &str) -> String {
    use md5::Digest;
    md5::Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn param<'a>(header: &'a str, name: &str) -> &'a str {
    header
        .split(',')
        .filter_map(|p| p.trim().trim_start_matches("Digest ").split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .unwrap_or_else(|| panic!("no {name} in {header}"))
}

#[test]
fn register_with_digest_then_unregister_on_close() {
    use sip::msg::ResponseBuilder;
    let t0 = Instant::now();
    let registrar: std::net::SocketAddr = "127.0.0.1:5099".parse().unwrap();
    let mut g = gateway(&["*"], 10);
    let c = open(&mut g, t0, 1, Dialect::V2, 1);
    drain(&mut g);
    // HA1 = md5("alice:127.0.0.1:5099:secret"): the realm is the domain, as sylkrtc.js does.
    let ha1 = md5_hex("alice:127.0.0.1:5099:secret");
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"account-add","transaction":"a","account":"alice@127.0.0.1:5099","password":ha1}),
    );
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"account-register","transaction":"r","account":"alice@127.0.0.1:5099"}),
    );
    let (texts, sip) = drain(&mut g);
    assert_eq!(texts[0]["sylkrtc"], "ack");
    assert_eq!(texts[1], json!({"sylkrtc":"ack","transaction":"r"}));
    assert_eq!(
        texts[2],
        json!({"sylkrtc":"account-event","account":"alice@127.0.0.1:5099","event":"registration-state","state":"registering"})
    );
    let [(to, SipMessage::Request(first))] = &sip[..] else {
        panic!("{sip:?}")
    };
    assert_eq!(*to, registrar);
    assert_eq!(first.expires(), Some(600));
    let challenge = ResponseBuilder::from_request(first, 401, "Unauthorized", Some("x"))
        .header(
            "WWW-Authenticate",
            "Digest realm=\"127.0.0.1:5099\", nonce=\"abc\", qop=\"auth\"",
        )
        .to_bytes();
    g.handle_sip_datagram(t0, registrar, &challenge);
    let (texts, sip) = drain(&mut g);
    assert!(texts.is_empty(), "{texts:?}");
    let [(_, SipMessage::Request(second))] = &sip[..] else {
        panic!("{sip:?}")
    };
    // Check the digest independently (RFC 2617 section 3.2.2.1).
    let auth = second.header("Authorization").unwrap();
    let ha2 = md5_hex("REGISTER:sip:127.0.0.1:5099");
    let expected = md5_hex(&format!(
        "{ha1}:abc:{}:{}:auth:{ha2}",
        param(auth, "nc"),
        param(auth, "cnonce")
    ));
    assert_eq!(param(auth, "response"), expected);
    let contact = &second.contacts().as_slice()[0].uri;
    let ok = ResponseBuilder::from_request(second, 200, "OK", Some("x"))
        .header("Contact", &format!("<{contact}>;expires=120"))
        .to_bytes();
    g.handle_sip_datagram(t0, registrar, &ok);
    let (texts, _) = drain(&mut g);
    assert_eq!(
        texts,
        [
            json!({"sylkrtc":"account-event","account":"alice@127.0.0.1:5099","event":"registration-state","state":"registered"})
        ]
    );
    // The refresh comes at half of a short granted expiry (other timers fire on the way).
    let refresh = loop {
        let t = g.poll_timeout().unwrap();
        g.handle_timeout(t);
        let (texts, sip) = drain(&mut g);
        assert!(texts.is_empty());
        if let [(_, SipMessage::Request(r))] = &sip[..] {
            break (t, r.clone());
        }
    };
    assert_eq!(refresh.0 - t0, std::time::Duration::from_secs(60));
    assert_eq!(refresh.1.cseq().seq, 3);
    let ok = ResponseBuilder::from_request(&refresh.1, 200, "OK", Some("x"))
        .header("Expires", "120")
        .to_bytes();
    g.handle_sip_datagram(refresh.0, registrar, &ok);
    assert!(
        drain(&mut g).0.is_empty(),
        "no event for an unchanged state"
    );
    // The client goes away: REGISTER with Expires 0, then nothing is left.
    g.handle_client_closed(t0, c);
    let (texts, sip) = drain(&mut g);
    assert!(texts.is_empty());
    let [(_, SipMessage::Request(bye))] = &sip[..] else {
        panic!("{sip:?}")
    };
    assert_eq!(bye.expires(), Some(0));
    assert!(
        bye.header("Authorization").is_some(),
        "credentials are reused"
    );
    assert_eq!(g.sip().registration_count(), 1);
    let ok = ResponseBuilder::from_request(bye, 200, "OK", Some("x")).to_bytes();
    g.handle_sip_datagram(t0, registrar, &ok);
    drain(&mut g);
    assert_eq!(g.sip().registration_count(), 0);
    assert_eq!(
        (g.gateway().client_count(), g.gateway().account_count()),
        (0, 0)
    );
}

#[test]
fn unanswered_register_fails_with_408() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c = open(&mut g, t0, 1, Dialect::V1, 1);
    drain(&mut g);
    request(&mut g, t0, c, add("bob@127.0.0.1:5098", "a"));
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"account-register","transaction":"r","account":"bob@127.0.0.1:5098"}),
    );
    drain(&mut g);
    let mut retransmits = 0;
    let (t, failed) = loop {
        let t = g
            .poll_timeout()
            .expect("a timer runs while the REGISTER is pending");
        g.handle_timeout(t);
        let (texts, sip) = drain(&mut g);
        retransmits += sip.len();
        if let Some(e) = texts.first() {
            break (t, e.clone());
        }
    };
    // Timer F = 64*T1 = 32 s; Timer E retransmits at 0.5, 1, 2, 4, 4, ... s (RFC 3261 17.1.2.2).
    assert_eq!(t - t0, std::time::Duration::from_secs(32));
    assert_eq!(retransmits, 10);
    assert_eq!(
        failed,
        json!({"sylkrtc":"account_event","account":"bob@127.0.0.1:5098","event":"registration_state",
               "data":{"state":"failed","reason":"408 Request Timeout"}})
    );
}

#[test]
fn options_and_unknown_methods_are_answered() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let peer: std::net::SocketAddr = "127.0.0.1:6000".parse().unwrap();
    for (method, status) in [
        ("OPTIONS", 200),
        ("INVITE", 480),
        ("SUBSCRIBE", 405),
        ("REFER", 405),
        ("FOO", 501),
    ] {
        let msg = format!(
            "{method} sip:x@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{method};rport\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: {method}@b\r\nCSeq: 1 {method}\r\n\
             Contact: <sip:a@10.0.0.1>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        g.handle_sip_datagram(t0, peer, msg.as_bytes());
        let (_, sip) = drain(&mut g);
        // An INVITE also gets the transaction layer's 100 Trying first (RFC 3261 17.2.1).
        let Some((to, SipMessage::Response(r))) = sip.last() else {
            panic!("{method}: {sip:?}")
        };
        assert_eq!(r.status(), status, "{method}");
        // RFC 3581: answered to the real source, with received and rport filled in.
        assert_eq!(*to, peer);
        let via = r.top_via().unwrap();
        assert_eq!(via.received().as_deref(), Some("127.0.0.1"));
        assert_eq!(via.rport(), Some(Some(6000)));
    }
    // A malformed request gets a stateless 400, garbage is dropped.
    g.handle_sip_datagram(t0, peer, b"OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\r\n");
    let (_, sip) = drain(&mut g);
    assert!(
        matches!(&sip[..], [(_, SipMessage::Response(r))] if r.status() == 400),
        "{sip:?}"
    );
    g.handle_sip_datagram(t0, peer, b"\x00\xffgarbage");
    assert!(drain(&mut g).1.is_empty());
}

// ---- calls, with the SIP peer scripted and virtual time --------------------------------

const CHROME_OFFER: &str = include_str!("../../../media/tests/fixtures/sdp/chrome_offer.sdp");
const SIP_ANSWER: &str = include_str!("../../../media/tests/fixtures/sdp/sipp_uas_echo_answer.sdp");

/// Everything the gateway produced, sorted by kind.
#[derive(Default, Debug)]
struct Drained {
    texts: Vec<Value>,
    sip: Vec<(std::net::SocketAddr, SipMessage)>,
    opened: Vec<MediaId>,
    /// The sockets of every OpenMedia, in order.
    sockets: Vec<(MediaSocketKind, std::net::SocketAddr)>,
    closed: Vec<MediaId>,
    /// Connections the gateway let go (draining).
    closes: Vec<ConnRef>,
    /// MSRP socket work of chats (no socket here: it goes nowhere).
    msrp: Vec<msrp::MsrpTransmit>,
    /// The connection each of `msrp` is for.
    msrp_ids: Vec<MsrpId>,
}

fn drain_all(g: &mut Switchboard) -> Drained {
    let mut d = Drained::default();
    // What the reactor's settle loop does: until nothing moves.
    let mut again = true;
    while again {
        again = false;
        while let Some(out) = g.poll_output() {
            again = true;
            match out {
                Command::Gateway(GatewayCommand::Send { text, .. }) => {
                    d.texts.push(serde_json::from_str(&text).unwrap())
                }
                Command::Sip(SipTransmit::Datagram { to, bytes }) => d
                    .sip
                    .push((to, sip::msg::parse(&bytes, Framing::Datagram).unwrap())),
                Command::Gateway(GatewayCommand::OpenMedia { media, sockets }) => {
                    d.opened.push(media);
                    d.sockets.extend(sockets);
                }
                Command::Gateway(GatewayCommand::CloseMedia { media }) => {
                    d.closed.push(media);
                    // Flush the bridge's last datagrams, then release.
                    g.bridges.drain(media, |_| {});
                    g.handle_media_closed(media);
                }
                Command::Gateway(GatewayCommand::Close { conn }) => d.closes.push(conn),
                Command::Msrp { id, transmit } => {
                    d.msrp.push(transmit);
                    d.msrp_ids.push(id);
                }
                other => panic!("unexpected output {other:?}"),
            }
        }
        while let Some(m) = g.bridges.poll_dirty() {
            again = true;
            g.bridges.drain(m, |_| {});
        }
        again |= g.route_bridge_events(Instant::now());
    }
    d
}

fn sip_requests(d: &Drained) -> Vec<sip::msg::SipRequest> {
    d.sip
        .iter()
        .filter_map(|(_, m)| match m {
            SipMessage::Request(r) => Some(r.clone()),
            SipMessage::Response(_) => None,
        })
        .collect()
}

/// A client with alice, which calls bob at a scripted UAS; returns the INVITE.
fn outgoing_call(g: &mut Switchboard, t0: Instant) -> (ClientId, sip::msg::SipRequest) {
    let (c, invite) = start_outgoing_call(g, t0);
    // The SIP offer is the translated one: plain RTP/AVP on the gateway's media address.
    let body = String::from_utf8_lossy(invite.body()).into_owned();
    assert!(
        body.contains("RTP/AVP") && !body.contains("a=fingerprint"),
        "{body}"
    );
    (c, invite)
}

/// [`outgoing_call`] without looking at the offer.
fn start_outgoing_call(g: &mut Switchboard, t0: Instant) -> (ClientId, sip::msg::SipRequest) {
    let c = open(g, t0, 1, Dialect::V2, 1);
    request(g, t0, c, add("alice@example.test", "a"));
    request(
        g,
        t0,
        c,
        json!({"sylkrtc":"session-create","transaction":"c","account":"alice@example.test",
               "session":"s1","uri":"bob@127.0.0.1:5099","sdp":CHROME_OFFER}),
    );
    // A trickle may follow before anything else happens (strict in-order processing).
    request(
        g,
        t0,
        c,
        json!({"sylkrtc":"session-trickle","transaction":"t","session":"s1","candidates":[
            {"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host","sdpMid":"0","sdpMLineIndex":0}]}),
    );
    let d = drain_all(g);
    assert_eq!(
        d.texts[2],
        json!({"sylkrtc":"ack","transaction":"c"}),
        "{:#?}",
        d.texts
    );
    assert_eq!(
        d.texts[3],
        json!({"sylkrtc":"ack","transaction":"t"}),
        "{:#?}",
        d.texts
    );
    assert_eq!(d.opened.len(), 1);
    let invite = sip_requests(&d)
        .into_iter()
        .find(|r| *r.method() == sip::msg::Method::Invite)
        .unwrap();
    (c, invite)
}

/// The `m=<kind>` port of a SIP body.
fn mline_port(body: &[u8], kind: &str) -> Option<u16> {
    String::from_utf8_lossy(body).lines().find_map(|l| {
        l.strip_prefix(&format!("m={kind} "))?
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}

#[test]
fn video_offer_gets_a_sip_video_port_pair_and_audio_only_does_not() {
    use MediaSocketKind::{Rtcp, Rtp, Webrtc};
    // Chrome's offer has audio and video: the INVITE offers both on their own RTP/RTCP
    // pairs, and the reactor is asked for WebRTC + 2 x (RTP, RTCP) sockets.
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let pairs_before = g.gateway().media_pairs_available();
    let c = open(&mut g, t0, 1, Dialect::V2, 1);
    request(&mut g, t0, c, add("alice@example.test", "a"));
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-create","transaction":"c","account":"alice@example.test",
               "session":"s1","uri":"bob@127.0.0.1:5099","sdp":CHROME_OFFER}),
    );
    let d = drain_all(&mut g);
    let invite = &sip_requests(&d)[0];
    let audio = mline_port(invite.body(), "audio").unwrap();
    let video = mline_port(invite.body(), "video").unwrap();
    assert!(
        video != 0 && video != audio,
        "{}",
        String::from_utf8_lossy(invite.body())
    );
    let kinds: Vec<MediaSocketKind> = d.sockets.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [Webrtc, Rtp, Rtcp, Rtp, Rtcp]);
    assert_eq!(d.sockets[1].1.port(), audio);
    assert_eq!(d.sockets[3].1.port(), video);
    assert_eq!(d.sockets[4].1.port(), video + 1);
    assert_eq!(g.gateway().media_pairs_available(), pairs_before - 3);
    // The same offer with video turned off (port 0): no video pair, m=video stays 0.
    let mut g = gateway(&["*"], 10);
    let c = open(&mut g, t0, 1, Dialect::V2, 1);
    request(&mut g, t0, c, add("alice@example.test", "a"));
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-create","transaction":"c","account":"alice@example.test",
               "session":"s1","uri":"bob@127.0.0.1:5099",
               "sdp":CHROME_OFFER.replace("m=video 9 ", "m=video 0 ")}),
    );
    let d = drain_all(&mut g);
    let invite = &sip_requests(&d)[0];
    assert_eq!(
        mline_port(invite.body(), "video"),
        Some(0),
        "{}",
        String::from_utf8_lossy(invite.body())
    );
    let kinds: Vec<MediaSocketKind> = d.sockets.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [Webrtc, Rtp, Rtcp]);
    assert_eq!(g.gateway().media_pairs_available(), pairs_before - 2);
}

#[test]
fn websocket_drop_mid_call_leaves_nothing_behind() {
    use sip::msg::ResponseBuilder;
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let pairs_before = g.gateway().media_pairs_available();
    let uas: std::net::SocketAddr = "127.0.0.1:5099".parse().unwrap();
    let (c, invite) = outgoing_call(&mut g, t0);
    // WebRTC, SIP audio and SIP video (Chrome's offer has video).
    assert_eq!(g.gateway().media_pairs_available(), pairs_before - 3);
    let ok = ResponseBuilder::from_request(&invite, 200, "OK", Some("uas"))
        .header("Contact", "<sip:bob@127.0.0.1:5099>")
        .body("application/sdp", SIP_ANSWER.as_bytes().to_vec())
        .to_bytes();
    g.handle_sip_datagram(t0, uas, &ok);
    let d = drain_all(&mut g);
    let accepted = d
        .texts
        .iter()
        .find(|e| e["state"] == "accepted")
        .expect("accepted");
    assert!(accepted["sdp"]
        .as_str()
        .unwrap()
        .contains("a=end-of-candidates"));
    assert!(sip_requests(&d)
        .iter()
        .any(|r| *r.method() == sip::msg::Method::Ack));
    // The WebSocket goes away: BYE, media closed, ports back.
    g.handle_client_closed(t0, c);
    let d = drain_all(&mut g);
    let bye = sip_requests(&d)
        .into_iter()
        .find(|r| *r.method() == sip::msg::Method::Bye)
        .expect("BYE");
    assert_eq!(d.closed.len(), 1);
    assert_eq!(g.gateway().call_count(), 0);
    assert_eq!(g.gateway().media_pairs_available(), pairs_before);
    assert_eq!(g.bridges.closing_count(), 0);
    g.handle_sip_datagram(
        t0,
        uas,
        &ResponseBuilder::from_request(&bye, 200, "OK", None).to_bytes(),
    );
    drain_all(&mut g);
    // Run out every timer: no dialog, call, transaction or timer may remain.
    let mut t = t0;
    while let Some(next) = g.poll_timeout() {
        assert!(
            next - t0 < std::time::Duration::from_secs(120),
            "a timer keeps re-arming"
        );
        t = next.max(t);
        g.handle_timeout(t);
        drain_all(&mut g);
    }
    assert_eq!(g.sip().call_count(), 0);
    assert_eq!(g.sip().dialog_count(), 0);
    assert_eq!(g.sip().transaction_count(), 0);
    assert_eq!(
        (g.gateway().client_count(), g.gateway().account_count()),
        (0, 0)
    );
}

#[test]
fn cancel_crossing_a_200_ends_with_ack_and_bye() {
    use sip::msg::{Method, ResponseBuilder};
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let uas: std::net::SocketAddr = "127.0.0.1:5099".parse().unwrap();
    let (c, invite) = outgoing_call(&mut g, t0);
    let ringing = ResponseBuilder::from_request(&invite, 180, "Ringing", Some("uas")).to_bytes();
    g.handle_sip_datagram(t0, uas, &ringing);
    drain_all(&mut g);
    // The browser hangs up while ringing: CANCEL goes out...
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-terminate","transaction":"x","session":"s1"}),
    );
    let d = drain_all(&mut g);
    let cancel = sip_requests(&d)
        .into_iter()
        .find(|r| *r.method() == Method::Cancel)
        .expect("CANCEL");
    assert!(d.texts.iter().any(|e| e["state"] == "terminated"));
    // ...but the callee's 200 for the INVITE crosses it (RFC 3261 section 9.1): ACK + BYE.
    let ok = ResponseBuilder::from_request(&invite, 200, "OK", Some("uas"))
        .header("Contact", "<sip:bob@127.0.0.1:5099>")
        .body("application/sdp", SIP_ANSWER.as_bytes().to_vec())
        .to_bytes();
    g.handle_sip_datagram(
        t0,
        uas,
        &ResponseBuilder::from_request(&cancel, 200, "OK", None).to_bytes(),
    );
    g.handle_sip_datagram(t0, uas, &ok);
    let d = drain_all(&mut g);
    let methods: Vec<Method> = sip_requests(&d)
        .iter()
        .map(|r| r.method().clone())
        .collect();
    assert!(
        methods.contains(&Method::Ack) && methods.contains(&Method::Bye),
        "{methods:?}"
    );
    assert!(
        d.texts.is_empty(),
        "the client heard the end once: {:?}",
        d.texts
    );
}

#[test]
fn untranslatable_incoming_offer_is_declined_488() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c = open(&mut g, t0, 1, Dialect::V2, 1);
    request(&mut g, t0, c, add("alice@127.0.0.1:5099", "a"));
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"account-register","transaction":"r","account":"alice@127.0.0.1:5099"}),
    );
    let d = drain_all(&mut g);
    let register = sip_requests(&d).remove(0);
    let contact = register.contacts().as_slice()[0].uri.clone();
    let ok = sip::msg::ResponseBuilder::from_request(&register, 200, "OK", Some("r"))
        .header("Contact", &format!("<{contact}>;expires=600"))
        .to_bytes();
    let registrar: std::net::SocketAddr = "127.0.0.1:5099".parse().unwrap();
    g.handle_sip_datagram(t0, registrar, &ok);
    drain_all(&mut g);
    // Only a codec the gateway cannot pass (no transcoding): 488, nothing for the client.
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 6000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let invite = format!(
        "INVITE {contact} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKinv1;rport\r\n\
         From: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: inv1@b\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.1:5099>\r\nMax-Forwards: 70\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    g.handle_sip_datagram(t0, registrar, invite.as_bytes());
    let d = drain_all(&mut g);
    let statuses: Vec<u16> = d
        .sip
        .iter()
        .filter_map(|(_, m)| match m {
            SipMessage::Response(r) => Some(r.status()),
            SipMessage::Request(_) => None,
        })
        .collect();
    assert!(statuses.contains(&488), "{statuses:?}");
    assert!(d.texts.is_empty(), "{:?}", d.texts);
    assert_eq!(g.gateway().call_count(), 0);
}

// ---- media.sip_srtp: SDES-SRTP in our own offers (RFC 4568) --------------------------------

/// The `a=crypto` lines of a SIP body, as (tag, suite) and the whole value.
fn offered_cryptos(body: &[u8]) -> Vec<(u32, String, String)> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.strip_prefix("a=crypto:"))
        .map(|v| {
            let mut f = v.split(' ');
            let tag = f.next().unwrap().parse().unwrap();
            (tag, f.next().unwrap().to_owned(), v.to_owned())
        })
        .collect()
}

/// SIPp's echo answer as RTP/SAVP, accepting our crypto line `tag` of `suite` with the
/// peer's own key (30 bytes: the AES-CM suites).
fn savp_answer(tag: u32, suite: &str) -> String {
    SIP_ANSWER.replace("RTP/AVP", "RTP/SAVP").replace(
        "a=sendrecv",
        &format!(
            "a=crypto:{tag} {suite} inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\na=sendrecv"
        ),
    )
}

fn media_with_srtp(mode: crate::config::SipSrtp) -> crate::config::MediaConfig {
    crate::config::MediaConfig {
        sip_srtp: mode,
        ..crate::config::Config::default().media
    }
}

fn reply(
    g: &mut Switchboard,
    t: Instant,
    req: &sip::msg::SipRequest,
    status: u16,
    phrase: &str,
    sdp: Option<&str>,
) {
    use sip::msg::ResponseBuilder;
    let uas: std::net::SocketAddr = "127.0.0.1:5099".parse().unwrap();
    let mut b = ResponseBuilder::from_request(req, status, phrase, Some("uas"))
        .header("Contact", "<sip:bob@127.0.0.1:5099>");
    if let Some(sdp) = sdp {
        b = b.body("application/sdp", sdp.as_bytes().to_vec());
    }
    g.handle_sip_datagram(t, uas, &b.to_bytes());
}

fn states(d: &Drained) -> Vec<String> {
    d.texts
        .iter()
        .filter_map(|e| e["state"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn sip_srtp_auto_retries_a_488_once_with_sdes_and_the_browser_never_sees_it() {
    use sip::msg::Method;
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    // "auto" is the default: the first INVITE offers plain RTP/AVP.
    let (_c, invite) = outgoing_call(&mut g, t0);
    assert!(offered_cryptos(invite.body()).is_empty());
    reply(&mut g, t0, &invite, 100, "Trying", None);
    reply(&mut g, t0, &invite, 488, "Not Acceptable Here", None);
    let d = drain_all(&mut g);
    let sent = sip_requests(&d);
    let methods: Vec<&Method> = sent.iter().map(|r| r.method()).collect();
    assert_eq!(
        methods,
        [&Method::Ack, &Method::Invite],
        "exactly one retry"
    );
    let retry = &sent[1];
    assert_eq!(retry.call_id(), invite.call_id());
    assert_eq!(retry.from().tag(), invite.from().tag());
    assert_eq!(retry.cseq().seq, invite.cseq().seq + 1);
    let body = String::from_utf8_lossy(retry.body()).into_owned();
    assert!(
        body.contains("m=audio ") && body.contains(" RTP/SAVP "),
        "{body}"
    );
    let shape: Vec<(u32, String)> = offered_cryptos(retry.body())
        .into_iter()
        .map(|(t, s, _)| (t, s))
        .collect();
    // One fresh set of keys for each m-line: audio, then video.
    let suites = [
        (1, "AES_CM_128_HMAC_SHA1_80".to_owned()),
        (2, "AEAD_AES_128_GCM".to_owned()),
        (3, "AES_CM_128_HMAC_SHA1_32".to_owned()),
    ];
    assert_eq!(shape, [&suites[..], &suites[..]].concat());
    assert!(
        !d.texts.iter().any(|e| e["state"] == "terminated"),
        "the browser never hears of the 488: {:?}",
        d.texts
    );
    // The retry rings and is answered with SRTP on our tag 1: the call is up.
    reply(&mut g, t0, retry, 180, "Ringing", None);
    reply(
        &mut g,
        t0,
        retry,
        200,
        "OK",
        Some(&savp_answer(1, "AES_CM_128_HMAC_SHA1_80")),
    );
    let d = drain_all(&mut g);
    assert_eq!(states(&d), ["ringing", "accepted"], "{:?}", d.texts);
    assert_eq!(
        sip_requests(&d)
            .iter()
            .map(|r| r.method().clone())
            .collect::<Vec<_>>(),
        [Method::Ack]
    );
    assert_eq!(g.gateway().call_count(), 1);
}

#[test]
fn sip_srtp_auto_ends_the_call_on_a_second_488() {
    use sip::msg::Method;
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (_c, invite) = outgoing_call(&mut g, t0);
    reply(&mut g, t0, &invite, 488, "Not Acceptable Here", None);
    let retry = sip_requests(&drain_all(&mut g)).pop().unwrap();
    assert_eq!(*retry.method(), Method::Invite);
    reply(&mut g, t0, &retry, 488, "Not Acceptable Here", None);
    let d = drain_all(&mut g);
    let methods: Vec<Method> = sip_requests(&d)
        .iter()
        .map(|r| r.method().clone())
        .collect();
    assert_eq!(methods, [Method::Ack], "no third INVITE");
    assert_eq!(
        d.texts,
        [
            json!({"sylkrtc":"session-event","session":"s1","event":"state",
                "state":"terminated","reason":"488 Not Acceptable Here"})
        ]
    );
    assert_eq!(g.gateway().call_count(), 0);
    assert_eq!(d.closed.len(), 1, "media released");
}

#[test]
fn sip_srtp_off_takes_the_488_as_final() {
    use sip::msg::Method;
    let t0 = Instant::now();
    let mut g = gateway_with_media(&["*"], 10, media_with_srtp(crate::config::SipSrtp::Off));
    let (_c, invite) = outgoing_call(&mut g, t0);
    reply(&mut g, t0, &invite, 488, "Not Acceptable Here", None);
    let d = drain_all(&mut g);
    let methods: Vec<Method> = sip_requests(&d)
        .iter()
        .map(|r| r.method().clone())
        .collect();
    assert_eq!(methods, [Method::Ack]);
    assert_eq!(states(&d), ["terminated"]);
    assert_eq!(d.texts[0]["reason"], "488 Not Acceptable Here");
}

#[test]
fn sip_srtp_mandatory_offers_sdes_and_refuses_answers_without_our_keys() {
    use sip::msg::Method;
    let mandatory = || {
        gateway_with_media(
            &["*"],
            10,
            media_with_srtp(crate::config::SipSrtp::Mandatory),
        )
    };
    let cases = [
        (
            SIP_ANSWER.to_owned(),
            "488 Not Acceptable Here (SRTP refused: RTP/SAVP offered, plain RTP/AVP answered on m= line 0)",
        ),
        (
            savp_answer(7, "AES_CM_128_HMAC_SHA1_80"),
            "488 Not Acceptable Here (no usable a=crypto on m= line 0)",
        ),
        (
            savp_answer(2, "AES_CM_128_HMAC_SHA1_80"),
            "488 Not Acceptable Here (no usable a=crypto on m= line 0)",
        ),
    ];
    for (answer, reason) in cases {
        let t0 = Instant::now();
        let mut g = mandatory();
        let (_c, invite) = start_outgoing_call(&mut g, t0);
        let body = String::from_utf8_lossy(invite.body()).into_owned();
        assert!(
            body.contains(" RTP/SAVP ") && !body.contains("RTP/AVP"),
            "{body}"
        );
        // Three suites for each m-line (audio and video).
        assert_eq!(offered_cryptos(invite.body()).len(), 6, "{body}");
        reply(&mut g, t0, &invite, 200, "OK", Some(&answer));
        let d = drain_all(&mut g);
        // The 2xx is ACKed (RFC 3261 13.2.2.4), then the unusable session ends with BYE.
        let methods: Vec<Method> = sip_requests(&d)
            .iter()
            .map(|r| r.method().clone())
            .collect();
        assert_eq!(methods, [Method::Ack, Method::Bye], "{reason}");
        assert_eq!(states(&d), ["terminated"], "{reason}");
        assert_eq!(d.texts[0]["reason"], reason);
        assert_eq!(g.gateway().call_count(), 0);
    }
    // A 488 to a mandatory offer is final: nothing plainer exists to offer.
    let t0 = Instant::now();
    let mut g = mandatory();
    let (_c, invite) = start_outgoing_call(&mut g, t0);
    reply(&mut g, t0, &invite, 488, "Not Acceptable Here", None);
    let d = drain_all(&mut g);
    assert_eq!(sip_requests(&d).len(), 1, "ACK only");
    assert_eq!(d.texts[0]["reason"], "488 Not Acceptable Here");
    // And the answer that takes one of our lines brings the call up.
    let mut g = mandatory();
    let (_c, invite) = start_outgoing_call(&mut g, t0);
    reply(
        &mut g,
        t0,
        &invite,
        200,
        "OK",
        Some(&savp_answer(3, "AES_CM_128_HMAC_SHA1_32")),
    );
    let d = drain_all(&mut g);
    assert_eq!(states(&d), ["accepted"], "{:?}", d.texts);
}

/// A browser's answer to the gateway's WebRTC offer, written by hand: PCMU on every
/// m-line, the offer's mids, DTLS active (the engine checks the fingerprint only in the
/// handshake, which these tests never reach).
fn browser_answer_to(offer: &str) -> String {
    let mut s = String::from(
        "v=0\r\no=- 42 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
         a=fingerprint:sha-256 5E:2A:91:0C:7D:33:F4:18:B6:C9:52:E0:4A:97:1D:63:AF:08:C5:72:3B:E6:19:D4:80:2F:6B:A3:5C:E1:97:40\r\n",
    );
    let mids: Vec<&str> = offer
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=mid:"))
        .collect();
    s.push_str(&format!("a=group:BUNDLE {}\r\n", mids.join(" ")));
    for mid in mids {
        s.push_str(&format!(
            "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=setup:active\r\na=mid:{mid}\r\n\
             a=ice-ufrag:xJqPzLmNoBvCdEfG\r\na=ice-pwd:aBcDeFgHiJkLmNoPqRsTuVwXyZ012345\r\n\
             a=rtcp-mux\r\na=rtpmap:0 PCMU/8000\r\na=ssrc:1122334455 cname:browser\r\na=sendrecv\r\n"
        ));
    }
    s
}

/// alice registered at 127.0.0.1:5099 on a gateway with `mode`; bob's INVITE without SDP
/// answered by the browser. Returns the gateway and the 200 with our offer.
fn late_offer_answered(
    mode: crate::config::SipSrtp,
    t0: Instant,
) -> (Switchboard, sip::msg::SipResponse) {
    use sip::msg::{Method, ResponseBuilder};
    let mut g = gateway_with_media(&["*"], 10, media_with_srtp(mode));
    let registrar: std::net::SocketAddr = "127.0.0.1:5099".parse().unwrap();
    let c = open(&mut g, t0, 1, Dialect::V2, 1);
    request(&mut g, t0, c, add("alice@127.0.0.1:5099", "a"));
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"account-register","transaction":"r","account":"alice@127.0.0.1:5099"}),
    );
    let register = sip_requests(&drain_all(&mut g)).remove(0);
    let contact = register.contacts().as_slice()[0].uri.clone();
    let ok = ResponseBuilder::from_request(&register, 200, "OK", Some("r"))
        .header("Contact", &format!("<{contact}>;expires=600"))
        .to_bytes();
    g.handle_sip_datagram(t0, registrar, &ok);
    drain_all(&mut g);
    let invite = format!(
        "INVITE {contact} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKlate1;rport\r\n\
         From: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: late1@b\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.1:5099>\r\nMax-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    g.handle_sip_datagram(t0, registrar, invite.as_bytes());
    let d = drain_all(&mut g);
    let incoming = d
        .texts
        .iter()
        .find(|e| e["event"] == "incoming-session")
        .unwrap_or_else(|| panic!("{:?}", d.texts));
    let session = incoming["session"].as_str().unwrap().to_owned();
    let answer = browser_answer_to(incoming["sdp"].as_str().unwrap());
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-answer","transaction":"ans","session":session,"sdp":answer}),
    );
    let d = drain_all(&mut g);
    assert!(
        d.texts
            .iter()
            .any(|e| e["sylkrtc"] == "ack" && e["transaction"] == "ans"),
        "{:?}",
        d.texts
    );
    let ok = d
        .sip
        .iter()
        .find_map(|(_, m)| match m {
            SipMessage::Response(r) if r.status() == 200 && r.cseq().method == Method::Invite => {
                Some(r.clone())
            }
            _ => None,
        })
        .expect("200 with our offer");
    (g, ok)
}

/// The ACK for `ok` carrying `sdp`, from bob at 127.0.0.1:5099.
fn ack_with(g: &mut Switchboard, t: Instant, ok: &sip::msg::SipResponse, sdp: &str) {
    let tag = ok.to().tag().unwrap();
    let contact = ok.contacts().as_slice()[0].uri.clone();
    let ack = format!(
        "ACK {contact} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKlateack;rport\r\n\
         From: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>;tag={tag}\r\n\
         Call-ID: late1@b\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    g.handle_sip_datagram(t, "127.0.0.1:5099".parse().unwrap(), ack.as_bytes());
}

#[test]
fn sip_srtp_mandatory_late_offer_is_savp_and_the_ack_must_take_a_key() {
    use crate::config::SipSrtp;
    use sip::msg::Method;
    let t0 = Instant::now();
    // "mandatory": the 200 offers RTP/SAVP with every key; an ACK taking tag 1 is fine.
    let (mut g, ok) = late_offer_answered(SipSrtp::Mandatory, t0);
    let body = String::from_utf8_lossy(ok.body()).into_owned();
    assert!(
        body.contains(" RTP/SAVP ") && !body.contains("m=audio 9 "),
        "{body}"
    );
    assert_eq!(offered_cryptos(ok.body()).len(), 3, "{body}");
    ack_with(&mut g, t0, &ok, &savp_answer(1, "AES_CM_128_HMAC_SHA1_80"));
    let d = drain_all(&mut g);
    assert!(sip_requests(&d).is_empty(), "{:?}", d.sip);
    assert!(d.texts.is_empty(), "{:?}", d.texts);
    assert_eq!(g.gateway().call_count(), 1);
    // An ACK whose answer drops to plain RTP ends the call: BYE, and the reason says why.
    let (mut g, ok) = late_offer_answered(SipSrtp::Mandatory, t0);
    ack_with(&mut g, t0, &ok, SIP_ANSWER);
    let d = drain_all(&mut g);
    let methods: Vec<Method> = sip_requests(&d)
        .iter()
        .map(|r| r.method().clone())
        .collect();
    assert_eq!(methods, [Method::Bye]);
    assert_eq!(states(&d), ["terminated"]);
    assert_eq!(
        d.texts[0]["reason"],
        "488 Not Acceptable Here (SRTP refused: RTP/SAVP offered, plain RTP/AVP answered on m= line 0)"
    );
    assert_eq!(g.gateway().call_count(), 0);
}

#[test]
fn sip_srtp_auto_late_offer_is_plain() {
    let t0 = Instant::now();
    let (mut g, ok) = late_offer_answered(crate::config::SipSrtp::Auto, t0);
    let body = String::from_utf8_lossy(ok.body()).into_owned();
    assert!(
        body.contains(" RTP/AVP ") && !body.contains("a=crypto"),
        "{body}"
    );
    ack_with(&mut g, t0, &ok, SIP_ANSWER);
    let d = drain_all(&mut g);
    assert!(sip_requests(&d).is_empty() && d.texts.is_empty(), "{d:?}");
    assert_eq!(g.gateway().call_count(), 1);
}
mod chat_calls;
mod renegotiation;

/// Issue 16: a browser offer without ICE credentials or a DTLS fingerprint was acked and
/// dialled although the call could never connect. It is refused with an error naming what
/// is missing, and nothing is sent to SIP nor any media port taken.
#[test]
fn browser_offer_without_ice_credentials_or_fingerprint_is_refused_before_dialling() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c = open(&mut g, t0, 1, Dialect::V2, 1);
    request(&mut g, t0, c, add("alice@example.test", "a"));
    drain_all(&mut g);
    let free = g.gateway.media_pairs_available();
    for (i, (strip, says)) in [
        ("a=ice-ufrag:", "no ICE credentials"),
        ("a=ice-pwd:", "no ICE credentials"),
        ("a=fingerprint:", "no DTLS fingerprint"),
    ]
    .into_iter()
    .enumerate()
    {
        let sdp: String = CHROME_OFFER
            .split_inclusive('\n')
            .filter(|l| !l.starts_with(strip))
            .collect();
        let tx = format!("c{i}");
        request(
            &mut g,
            t0,
            c,
            json!({"sylkrtc":"session-create","transaction":tx,"account":"alice@example.test",
                   "session":format!("s{i}"),"uri":"bob@127.0.0.1:5099","sdp":sdp}),
        );
        let d = drain_all(&mut g);
        assert_eq!(d.texts.len(), 1, "{:#?}", d.texts);
        assert_eq!(d.texts[0]["sylkrtc"], "error", "{:#?}", d.texts);
        let error = d.texts[0]["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{error}");
        assert!(d.sip.is_empty(), "nothing dialled: {:?}", d.sip);
        assert!(d.opened.is_empty());
        assert_eq!(g.gateway.media_pairs_available(), free);
    }
}

#[test]
fn draining_lets_idle_clients_go_refuses_new_calls_and_closes_after_the_last_call() {
    use crate::gateway::CallDirection;
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let (c, invite) = start_outgoing_call(&mut g, t0);
    let idle = open(&mut g, t0, 2, Dialect::V2, 2);
    request(&mut g, t0, idle, add("bob@example.test", "b"));
    drain_all(&mut g);
    g.handle_drain(t0);
    let d = drain_all(&mut g);
    assert_eq!(d.closes, [idle], "only the connection without a call goes");
    let mut reasons = Vec::new();
    g.not_ready(&mut reasons);
    assert_eq!(reasons, ["gateway draining"]);
    // No new calls, even on a connection that has one.
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-create","transaction":"c2","account":"alice@example.test",
               "session":"s2","uri":"bob@127.0.0.1:5099","sdp":CHROME_OFFER}),
    );
    let d = drain_all(&mut g);
    assert_eq!(
        d.texts,
        [json!({"sylkrtc":"error","transaction":"c2",
                "error":"Service unavailable: the gateway is shutting down, try again"})]
    );
    // The call in progress goes on to its end; then its connection goes too.
    reply(&mut g, t0, &invite, 200, "OK", Some(SIP_ANSWER));
    let d = drain_all(&mut g);
    assert_eq!(states(&d), ["accepted"]);
    assert!(d.closes.is_empty());
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-terminate","transaction":"x","session":"s1"}),
    );
    let d = drain_all(&mut g);
    let bye = sip_requests(&d)
        .into_iter()
        .find(|r| *r.method() == sip::msg::Method::Bye)
        .expect("BYE");
    reply(&mut g, t0, &bye, 200, "OK", None);
    let after = drain_all(&mut g);
    assert_eq!([states(&d), states(&after)].concat(), ["terminated"]);
    assert_eq!([d.closes, after.closes].concat(), [c]);
    let stats = g.gateway().stats();
    assert_eq!(stats.started(CallDirection::Outgoing), 1);
    assert_eq!(stats.answered(CallDirection::Outgoing), 1);
    assert_eq!(
        stats.ended().collect::<Vec<_>>(),
        [("outgoing", "local_hangup", true, 1)]
    );
    assert_eq!(stats.refusals().collect::<Vec<_>>(), [("draining", 1)]);
}

#[test]
fn srtp_authentication_failures_are_counted_per_leg() {
    let t0 = Instant::now();
    let mut g = gateway_with_media(
        &["*"],
        10,
        media_with_srtp(crate::config::SipSrtp::Mandatory),
    );
    let c = open(&mut g, t0, 1, Dialect::V2, 1);
    request(&mut g, t0, c, add("alice@example.test", "a"));
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"session-create","transaction":"c","account":"alice@example.test",
               "session":"s1","uri":"bob@127.0.0.1:5099","sdp":CHROME_OFFER}),
    );
    let d = drain_all(&mut g);
    let media = d.opened[0];
    let rtp = d
        .sockets
        .iter()
        .find(|(k, _)| *k == MediaSocketKind::Rtp)
        .map(|(_, a)| *a)
        .unwrap();
    let invite = sip_requests(&d)
        .into_iter()
        .find(|r| *r.method() == sip::msg::Method::Invite)
        .unwrap();
    reply(
        &mut g,
        t0,
        &invite,
        200,
        "OK",
        Some(&savp_answer(1, "AES_CM_128_HMAC_SHA1_80")),
    );
    let d = drain_all(&mut g);
    assert_eq!(states(&d), ["accepted"], "{:?}", d.texts);
    // An RTP packet whose SRTP tag is wrong: dropped and counted, the call goes on.
    let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
    packet.extend([0xd5; 160]);
    packet.extend([0xee; 10]);
    let peer: std::net::SocketAddr = "127.0.0.1:6000".parse().unwrap();
    for _ in 0..3 {
        let mut p = packet.clone();
        g.handle_media_datagram(t0, media, MediaSocketKind::Rtp, rtp, peer, &mut p, |_| {});
    }
    let counters = *g.bridges.counters();
    assert_eq!(counters.srtp_auth_failures_sip, 3);
    assert_eq!(counters.srtp_auth_failures_webrtc, 0);
    assert!(g.bridges.totals().dropped >= 3);
    assert_eq!(g.gateway().call_count(), 1);
}

// ---- the message store's health -----------------------------------------------------------

/// A backend that answers its first batch and panics on the next (a crashed storage thread).
struct CrashOnSecond(usize);

impl ::store::MessageStore for CrashOnSecond {
    fn execute_batch(
        &mut self,
        requests: Vec<::store::StoreRequest>,
    ) -> Vec<Result<::store::StoreResult, ::store::StoreError>> {
        self.0 += 1;
        assert!(self.0 < 2, "storage backend crash (deliberate, in a test)");
        requests
            .iter()
            .map(|r| match r {
                ::store::StoreRequest::AddMessage(_) => {
                    Ok(::store::StoreResult::Added { new: true, seq: 1 })
                }
                _ => Ok(::store::StoreResult::Changed(0)),
            })
            .collect()
    }
}

fn message_to(user: &str, n: u32) -> String {
    format!(
        "MESSAGE sip:{user}@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bKm{n};rport\r\n\
         From: <sip:bob@example.test>;tag=m{n}\r\nTo: <sip:{user}@example.test>\r\nCall-ID: msg{n}@b\r\n\
         CSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
    )
}

/// The storage thread dies: what it held fails (the SIP sender gets 503, not silence),
/// `/ready` says the store is down, later MESSAGEs get 503 with Retry-After at once, and the
/// metrics count it.
#[test]
fn a_dead_storage_thread_is_visible_and_answered_503() {
    let t0 = Instant::now();
    let mut g = gateway(&["example.test"], 10);
    let woken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let w = std::sync::Arc::clone(&woken);
    let worker = ::store::worker::StoreWorker::spawn(
        Box::new(CrashOnSecond(0)),
        8,
        Box::new(move || {
            w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }),
    )
    .unwrap();
    g.set_store(Store::new(worker));
    let peer: std::net::SocketAddr = "127.0.0.1:6000".parse().unwrap();
    let wait_wake = |n: usize| {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while woken.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "the storage thread never woke us"
            );
            std::thread::yield_now();
        }
    };
    let answers = |g: &mut Switchboard| -> Vec<(u16, Option<String>)> {
        drain(g)
            .1
            .into_iter()
            .filter_map(|(_, m)| match m {
                SipMessage::Response(r) => {
                    Some((r.status(), r.header("Retry-After").map(str::to_owned)))
                }
                SipMessage::Request(_) => None,
            })
            .collect()
    };

    // First MESSAGE: stored (nobody connected: 202).
    g.handle_sip_datagram(t0, peer, message_to("alice", 1).as_bytes());
    wait_wake(1);
    while g.handle_store_ready(t0) {}
    assert_eq!(answers(&mut g), [(202, None)]);
    let mut reasons = Vec::new();
    g.not_ready(&mut reasons);
    assert!(reasons.is_empty(), "{reasons:?}");

    // Second: the thread crashes on it. Its answer is 503, not a wait.
    g.handle_sip_datagram(t0, peer, message_to("alice", 2).as_bytes());
    wait_wake(2); // the batch never answers; the thread's exit wakes us
    while g.handle_store_ready(t0) {}
    assert_eq!(answers(&mut g), [(503, Some("1".to_owned()))]);
    assert_eq!(g.store_outstanding(), 0);
    let mut reasons = Vec::new();
    g.not_ready(&mut reasons);
    assert_eq!(reasons, ["message store down"]);

    // Third: refused at once.
    g.handle_sip_datagram(t0, peer, message_to("alice", 3).as_bytes());
    assert_eq!(answers(&mut g), [(503, Some("1".to_owned()))]);

    let mut out = crate::metrics::Exposition::new();
    crate::metrics::Collect::collect(&g, &mut out);
    let text = out.finish();
    for line in [
        "sylk_store_up 0",
        "sylk_store_queue_depth 0",
        "sylk_store_requests_total{result=\"ok\"} 1",
        "sylk_store_requests_total{result=\"unavailable\"} 2",
        "sylk_messages_in_total{result=\"stored\"} 1",
        "sylk_messages_in_total{result=\"refused\"} 2",
        "sylk_store_request_seconds_count 2",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

/// A backend whose database fails while `down` is set.
struct Flaky(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl ::store::MessageStore for Flaky {
    fn execute_batch(
        &mut self,
        requests: Vec<::store::StoreRequest>,
    ) -> Vec<Result<::store::StoreResult, ::store::StoreError>> {
        let down = self.0.load(std::sync::atomic::Ordering::SeqCst);
        requests
            .iter()
            .map(|r| match r {
                _ if down => Err(::store::StoreError::Database("disk full".into())),
                ::store::StoreRequest::AddMessage(_) => {
                    Ok(::store::StoreResult::Added { new: true, seq: 1 })
                }
                _ => Ok(::store::StoreResult::Changed(0)),
            })
            .collect()
    }
}

/// A database that fails writes makes `/ready` say so; the periodic probe notices when it
/// takes writes again, with no traffic needed.
#[test]
fn a_failing_database_is_not_ready_until_a_probe_succeeds() {
    let t0 = Instant::now();
    let mut g = gateway(&["example.test"], 10);
    let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let worker = ::store::worker::StoreWorker::spawn(
        Box::new(Flaky(std::sync::Arc::clone(&down))),
        8,
        Box::new(|| {}),
    )
    .unwrap();
    g.set_store(Store::new(worker));
    // Collects results until nothing is outstanding (the worker is a real thread: poll with
    // a deadline).
    let settle = |g: &mut Switchboard, now: Instant| {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while g.store_outstanding() > 0 {
            assert!(
                Instant::now() < deadline,
                "no result from the storage thread"
            );
            std::thread::yield_now();
            while g.handle_store_ready(now) {}
        }
    };
    let peer: std::net::SocketAddr = "127.0.0.1:6000".parse().unwrap();
    g.handle_sip_datagram(t0, peer, message_to("alice", 1).as_bytes());
    settle(&mut g, t0);
    let (_, sip) = drain(&mut g);
    assert!(
        matches!(&sip[..], [(_, SipMessage::Response(r))] if r.status() == 500),
        "{sip:?}"
    );
    let mut reasons = Vec::new();
    g.not_ready(&mut reasons);
    assert_eq!(reasons, ["message store not writable"]);

    // Virtual time runs to the next probe (other engines' timers may come first).
    let to_probe = |g: &mut Switchboard| -> Instant {
        for _ in 0..1000 {
            let t = g.poll_timeout().expect("a probe is scheduled");
            g.handle_timeout(t);
            if g.store_outstanding() > 0 {
                return t;
            }
        }
        panic!("no probe was sent");
    };
    // Still down at the first probe; up at the next one.
    let t1 = to_probe(&mut g);
    settle(&mut g, t1);
    let mut reasons = Vec::new();
    g.not_ready(&mut reasons);
    assert_eq!(reasons, ["message store not writable"]);
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    let t2 = to_probe(&mut g);
    assert!(
        t2 - t1 <= std::time::Duration::from_secs(2),
        "failing: probed often"
    );
    settle(&mut g, t2);
    let mut reasons = Vec::new();
    g.not_ready(&mut reasons);
    assert!(reasons.is_empty(), "{reasons:?}");
    // Probes never reach the SIP side or a client.
    assert!(drain(&mut g).1.is_empty());
}

/// A backend that hangs on every batch until `release` is set (a query waiting forever).
struct Hanging(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl ::store::MessageStore for Hanging {
    fn execute_batch(
        &mut self,
        requests: Vec<::store::StoreRequest>,
    ) -> Vec<Result<::store::StoreResult, ::store::StoreError>> {
        let (released, wake) = &*self.0;
        let mut r = released.lock().unwrap();
        while !*r {
            r = wake.wait(r).unwrap();
        }
        requests
            .iter()
            .map(|r| match r {
                ::store::StoreRequest::AddMessage(_) => {
                    Ok(::store::StoreResult::Added { new: true, seq: 1 })
                }
                _ => Ok(::store::StoreResult::Changed(0)),
            })
            .collect()
    }
}

/// The watchdog: a storage thread that is alive but does not answer makes `/ready` say
/// "stalled" once the oldest request has waited `STALLED_AFTER` (virtual time), and the
/// metrics count it; when it answers again, the store is ready and MESSAGEs are stored.
#[test]
fn a_hanging_storage_thread_is_caught_by_the_watchdog() {
    let t0 = Instant::now();
    let mut g = gateway(&["example.test"], 10);
    let gate = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let worker = ::store::worker::StoreWorker::spawn(
        Box::new(Hanging(std::sync::Arc::clone(&gate))),
        8,
        Box::new(|| {}),
    )
    .unwrap();
    g.set_store(Store::new(worker));
    let peer: std::net::SocketAddr = "127.0.0.1:6000".parse().unwrap();
    let not_ready = |g: &Switchboard| {
        let mut reasons = Vec::new();
        g.not_ready(&mut reasons);
        reasons
    };
    let statuses = |g: &mut Switchboard| -> Vec<u16> {
        drain(g)
            .1
            .into_iter()
            .filter_map(|(_, m)| match m {
                SipMessage::Response(r) => Some(r.status()),
                SipMessage::Request(_) => None,
            })
            .collect()
    };
    g.handle_sip_datagram(t0, peer, message_to("alice", 1).as_bytes());
    assert_eq!(g.store_outstanding(), 1);
    // Virtual time up to the watchdog (probes and other engines' timers come on the way).
    let mut now = t0;
    while now < t0 + store::STALLED_AFTER {
        assert!(not_ready(&g).is_empty(), "{:?}", not_ready(&g));
        let t = g.poll_timeout().expect("the watchdog is scheduled");
        assert!(
            t <= t0 + store::STALLED_AFTER,
            "watchdog late: {:?}",
            t - t0
        );
        now = t;
        g.handle_timeout(now);
    }
    assert_eq!(not_ready(&g), ["message store stalled"]);
    let mut out = crate::metrics::Exposition::new();
    crate::metrics::Collect::collect(&g, &mut out);
    let text = out.finish();
    for line in ["sylk_store_up 0", "sylk_store_stalls_total 1"] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    // The SIP stack did not keep the sender waiting meanwhile (its own 500 + Retry-After).
    assert_eq!(statuses(&mut g), [500]);

    // It answers again: ready; the late result answers nobody twice; a new MESSAGE is stored.
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    let settle = |g: &mut Switchboard| {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while g.store_outstanding() > 0 {
            assert!(Instant::now() < deadline, "no result after the release");
            std::thread::yield_now();
            while g.handle_store_ready(now) {}
        }
    };
    settle(&mut g);
    assert!(not_ready(&g).is_empty(), "{:?}", not_ready(&g));
    assert!(statuses(&mut g).is_empty());
    g.handle_sip_datagram(now, peer, message_to("alice", 2).as_bytes());
    settle(&mut g);
    assert_eq!(statuses(&mut g), [202]);
}

#[test]
fn timers_left_for_want_of_time_stay_due_and_run_on_the_next_call() {
    let t0 = Instant::now();
    let mut g = gateway(&["*"], 10);
    let c = open(&mut g, t0, 1, Dialect::V2, 1);
    request(&mut g, t0, c, add("alice@127.0.0.1:5099", "a"));
    request(
        &mut g,
        t0,
        c,
        json!({"sylkrtc":"account-register","transaction":"r","account":"alice@127.0.0.1:5099"}),
    );
    let (_, sip) = drain(&mut g);
    assert_eq!(sip.len(), 1, "the REGISTER");
    // Its retransmission timer (RFC 3261 17.1.2.2, Timer E) is the earliest deadline.
    let due = g.poll_timeout().expect("a retransmission timer");
    // No time: nothing runs, nothing is sent, the deadline stays due.
    let mut asked = 0;
    g.handle_timeout_while(due, &mut || {
        asked += 1;
        false
    });
    assert!(asked >= 1, "asked before the SIP stack's timers");
    assert!(drain(&mut g).1.is_empty());
    assert!(g.poll_timeout().is_some_and(|t| t <= due), "still due");
    // With time, the same deadline runs: the REGISTER goes again.
    g.handle_timeout_while(due, &mut || true);
    let (_, sip) = drain(&mut g);
    assert_eq!(sip.len(), 1, "the retransmitted REGISTER");
    assert!(g.poll_timeout().is_some_and(|t| t > due));
}
