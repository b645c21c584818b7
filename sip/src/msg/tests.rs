//! Facade behaviour beyond RFC 4475: IPv6 (RFC 5118), compact names, folding, extension
//! methods, RFC 5626 Contacts, Content-Length policy, builders.

use super::*;

fn wire(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

fn req(text: &str) -> SipRequest {
    match parse(&wire(text), Framing::Datagram) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn resp(text: &str) -> SipResponse {
    match parse(&wire(text), Framing::Datagram) {
        Ok(SipMessage::Response(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn error(text: &str, framing: Framing) -> MsgError {
    parse(&wire(text), framing)
        .expect_err("must be rejected")
        .error
}

const OPTIONS_HEAD: &str = "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\n\
To: <sip:a@example.com>\nFrom: <sip:b@example.com>;tag=1\nCall-ID: c1\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n";

#[test]
fn ipv6_hosts_in_request_uri_via_and_contact() {
    // RFC 5118 section 4.1 style.
    let r = req("REGISTER sip:[2001:db8::10]:5070;transport=tcp SIP/2.0\n\
Via: SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bKas3-111;received=[2001:db8::9:255];rport=5061\n\
Via: SIP/2.0/TCP [2001:db8::1];branch=z9hG4bK2;received=2001:db8::9:255\n\
To: <sip:user@[2001:db8::10]>\nFrom: <sip:user@[2001:db8::10]>;tag=81x2\n\
Call-ID: SSG9559905523997077@hlau_4100\nCSeq: 1 REGISTER\nMax-Forwards: 70\n\
Contact: \"Caller\" <sip:caller@[2001:db8::1]:5062;transport=udp>\nContent-Length: 0\n\n");
    let v6 = |s: &str| Host::Ipv6(s.parse().expect("v6"));
    assert_eq!(r.uri().host(), Some(&v6("2001:db8::10")));
    assert_eq!(r.uri().port(), Some(5070));
    assert_eq!(
        r.uri()
            .param("TRANSPORT")
            .and_then(|p| p.value())
            .as_deref(),
        Some("tcp")
    );
    let via = r.top_via().expect("via");
    assert_eq!(via.host, v6("2001:db8::9:1"));
    assert_eq!(via.sent_by(), "[2001:db8::9:1]:5060");
    assert_eq!(via.received().as_deref(), Some("[2001:db8::9:255]"));
    assert_eq!(via.rport(), Some(Some(5061)));
    assert_eq!(r.vias()[1].received().as_deref(), Some("2001:db8::9:255"));
    let contact = &r.contacts().as_slice()[0];
    assert_eq!(contact.uri.host(), Some(&v6("2001:db8::1")));
    assert_eq!(contact.uri.port(), Some(5062));
}

#[test]
fn compact_names_and_case_insensitive_lookup() {
    let r = req(
        "INVITE sip:a@example.com SIP/2.0\nv: SIP/2.0/UDP h;branch=z9hG4bK1\n\
t: <sip:a@example.com>\nf: <sip:b@example.com>;TAG=x1\ni: c2\nCSEQ: 5 INVITE\nmax-forwards: 70\n\
m: <sip:b@h>\nc: application/sdp\nk: 100rel\ns: hi\nl: 3\n\nabc",
    );
    assert_eq!(r.call_id(), "c2");
    assert_eq!(r.from().tag().as_deref(), Some("x1"));
    assert_eq!(r.content_type(), Some("application/sdp"));
    assert_eq!(r.header("Supported"), Some("100rel"));
    assert_eq!(r.header("subject"), Some("hi"));
    assert_eq!(r.header("k"), Some("100rel"));
    assert_eq!(r.body(), b"abc");
    // Printing uses canonical names.
    let printed = String::from_utf8(r.to_bytes()).expect("utf8");
    assert!(printed.contains("\r\nCall-ID: c2\r\n"), "{printed}");
    assert!(
        printed.contains("\r\nContent-Length: 3\r\n\r\nabc"),
        "{printed}"
    );
}

#[test]
fn folded_headers_are_unfolded() {
    let r = req(
        "OPTIONS sip:a@example.com SIP/2.0\nVia: SIP/2.0/UDP h.example.com\n ;branch=z9hG4bK7\n\
To:\n\t<sip:a@example.com>\nFrom: <sip:b@example.com>\n  ;tag=9\nCall-ID: c3\nCSeq: 1\n OPTIONS\n\
Max-Forwards: 70\nSubject: one\n two\n\n",
    );
    assert_eq!(
        r.top_via().and_then(Via::branch).as_deref(),
        Some("z9hG4bK7")
    );
    assert_eq!(r.from().tag().as_deref(), Some("9"));
    assert_eq!(r.header("Subject"), Some("one two"));
    assert_eq!(r.cseq().method, Method::Options);
}

#[test]
fn extension_methods_are_exact_and_marked() {
    for m in ["FOO", "INVITEX", "invite", "Invite"] {
        let r = req(&format!(
            "{m} sip:a@example.com SIP/2.0\n{}\n",
            OPTIONS_HEAD.replace("1 OPTIONS", &format!("1 {m}"))
        ));
        assert_eq!(r.method(), &Method::Extension(m.to_owned()));
        assert!(r.method().is_extension());
        let reply = ResponseBuilder::from_request(&r, 501, "Not Implemented", Some("t1"))
            .build()
            .expect("501");
        assert_eq!(reply.cseq().method.as_str(), m);
    }
}

#[test]
fn rfc5626_contacts_round_trip_with_quotes_intact() {
    let instance = "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";
    let contact =
        NameAddr::new(Uri::parse("sip:alice@[2001:db8::5]:5060;transport=tcp;ob").expect("uri"))
            .with_param(Param::quoted("+sip.instance", instance))
            .with_param(Param::raw("reg-id", Some("1")))
            .with_param(Param::raw("expires", Some("600")));
    let request = RequestBuilder::new(
        Method::Register,
        Uri::parse("sip:example.com").expect("uri"),
    )
    .via(&Via::new(
        "TCP",
        Host::Domain("client.example.com".into()),
        Some(5060),
        "z9hG4bKreg1",
    ))
    .max_forwards(70)
    .from(
        &NameAddr::new(Uri::parse("sip:alice@example.com").expect("uri"))
            .with_param(Param::raw("tag", Some("a1"))),
    )
    .to(&NameAddr::new(
        Uri::parse("sip:alice@example.com").expect("uri"),
    ))
    .call_id("reg-1@client")
    .cseq(1)
    .contact(&contact)
    .contact(&NameAddr::new(
        Uri::parse("sip:alice@192.0.2.1").expect("uri"),
    ))
    .header("Expires", "600")
    .build()
    .expect("valid REGISTER");
    let printed = String::from_utf8(request.to_bytes()).expect("utf8");
    assert!(
        printed.contains(&format!("+sip.instance=\"{instance}\";reg-id=1")),
        "{printed}"
    );
    let reparsed = match parse(printed.as_bytes(), Framing::Stream) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("{other:?}"),
    };
    let contacts = reparsed.contacts().as_slice();
    assert_eq!(contacts.len(), 2);
    assert_eq!(
        contacts[0].params.value("+SIP.INSTANCE").as_deref(),
        Some(instance)
    );
    assert_eq!(contacts[0].params.value("reg-id").as_deref(), Some("1"));
    assert_eq!(contacts[0].expires(), Some(600));
    assert!(contacts[0].uri.param("ob").is_some());
    assert_eq!(reparsed.expires(), Some(600));

    // A registrar's 200 with a comma list of three bindings.
    let ok = resp("SIP/2.0 200 OK\nVia: SIP/2.0/TCP client.example.com:5060;branch=z9hG4bKreg1\n\
To: <sip:alice@example.com>;tag=r1\nFrom: <sip:alice@example.com>;tag=a1\nCall-ID: reg-1@client\nCSeq: 1 REGISTER\n\
Contact: <sip:alice@[2001:db8::5]:5060;transport=tcp;ob>;+sip.instance=\"<urn:uuid:1>\";reg-id=1;expires=600, \
<sip:alice@192.0.2.1>;expires=30, \"Desk, 2\" <sip:alice@192.0.2.2>;expires=60\nContent-Length: 0\n\n");
    let list = ok.contacts().as_slice();
    assert_eq!(list.len(), 3);
    assert_eq!(
        list[0].params.value("+sip.instance").as_deref(),
        Some("<urn:uuid:1>")
    );
    assert_eq!(list[2].display_name.as_deref(), Some("Desk, 2"));
    assert_eq!(list[2].expires(), Some(60));
}

#[test]
fn contact_star_and_broken_lists() {
    let r = req(&format!(
        "REGISTER sip:example.com SIP/2.0\n{}Contact: *\nExpires: 0\n\n",
        OPTIONS_HEAD.replace("1 OPTIONS", "1 REGISTER")
    ));
    assert_eq!(r.contacts(), &Contacts::Star);
    // A bad element in the middle is an error, not a short list.
    let e = error(
        &format!(
            "REGISTER sip:example.com SIP/2.0\n{}Contact: <sip:a@h>, <sip:b@h> junk, <sip:c@h>\n\n",
            OPTIONS_HEAD.replace("1 OPTIONS", "1 REGISTER")
        ),
        Framing::Datagram,
    );
    assert!(matches!(e, MsgError::BadHeader(_)), "{e:?}");
    let e = error("OPTIONS sip:a@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1, garbage\nTo: <sip:a@h>\nFrom: <sip:b@h>;tag=1\nCall-ID: c\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n\n", Framing::Datagram);
    assert!(matches!(e, MsgError::BadHeader(_)), "{e:?}");
    // tel: inside a list is kept, not a silent end of list.
    let r = req(&format!("OPTIONS sip:a@h SIP/2.0\n{OPTIONS_HEAD}Contact: <sip:a@h>, <tel:+1-201-555-0123>, <sip:b@h>\n\n"));
    assert_eq!(r.contacts().as_slice().len(), 3);
}

#[test]
fn escaped_quotes_in_display_names() {
    let r = req("OPTIONS sip:a@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n\
To: \"a \\\"quoted\\\" <name> \\\\ x\" <sip:a@h>\nFrom: <sip:b@h>;tag=1\nCall-ID: c\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n\n");
    assert_eq!(
        r.to().display_name.as_deref(),
        Some("a \"quoted\" <name> \\ x")
    );
    let printed = r.to().to_string();
    assert_eq!(
        NameAddr::parse(&printed).expect("round trip").display_name,
        r.to().display_name
    );
}

#[test]
fn content_length_policy() {
    let base = format!("OPTIONS sip:a@h SIP/2.0\n{OPTIONS_HEAD}");
    // Datagram: missing CL -> rest is body; CL shorter -> cut; longer -> 400.
    assert_eq!(req(&format!("{base}\nhello")).body(), b"hello");
    assert_eq!(
        req(&format!("{base}Content-Length: 2\n\nhello")).body(),
        b"he"
    );
    assert_eq!(
        error(
            &format!("{base}Content-Length: 9\n\nhello"),
            Framing::Datagram
        ),
        MsgError::BodyTooShort
    );
    assert_eq!(
        error(&format!("{base}Content-Length: -1\n\n"), Framing::Datagram),
        MsgError::BadContentLength
    );
    assert_eq!(
        error(
            &format!("{base}Content-Length: 1\nl: 2\n\nab"),
            Framing::Datagram
        ),
        MsgError::BadContentLength
    );
    assert!(req(&format!("{base}Content-Length: 2\nl: 2\n\nab")).body() == b"ab");
    // Stream: required.
    assert_eq!(
        error(&format!("{base}\n"), Framing::Stream),
        MsgError::MissingContentLength
    );
    // Size limit.
    let big = format!("{base}X-Pad: {}\n\n", "a".repeat(MAX_MESSAGE_SIZE));
    let rejection = parse(big.as_bytes(), Framing::Datagram).expect_err("too big");
    assert_eq!(rejection.error, MsgError::TooLarge);
    assert_eq!(rejection.disposition(), Disposition::Drop);
    // Leading CRLFs are ignored (RFC 3261 section 7.5).
    assert!(parse(&wire(&format!("\n\n{base}\n")), Framing::Datagram).is_ok());
}

#[test]
fn start_line_and_mandatory_header_checks() {
    let head = OPTIONS_HEAD;
    assert_eq!(
        error(
            &format!("OPTIONS sip:a@h SIP/2.01\n{head}\n"),
            Framing::Datagram
        ),
        MsgError::VersionNotSupported
    );
    assert_eq!(
        error(
            &format!("OPTIONS sip:a@h SIP/2.0 x\n{head}\n"),
            Framing::Datagram
        ),
        MsgError::BadRequestLine
    );
    assert_eq!(
        error(
            &format!(
                "OPTIONS sip:a@h SIP/2.0\n{}\n",
                head.replace("Max-Forwards: 70\n", "")
            ),
            Framing::Datagram
        ),
        MsgError::MissingHeader("Max-Forwards")
    );
    assert_eq!(
        error(
            &format!("OPTIONS sip:a@h SIP/2.0\n{head}Call-ID: again\n\n"),
            Framing::Datagram
        ),
        MsgError::DuplicateHeader("Call-ID")
    );
    assert_eq!(
        error(
            &format!("OPTIONS sip:a@h SIP/2.0\n{head}: empty\n\n"),
            Framing::Datagram
        ),
        MsgError::BadHeader("bad header name")
    );
    // tel: Request-URI is accepted (the UA decides), unknown schemes get 416.
    let r = req(&format!(
        "OPTIONS tel:+1-201-555-0123;phone-context=example.com SIP/2.0\n{head}\n"
    ));
    assert!(matches!(r.uri().kind(), UriKind::Tel { number, .. } if number == "+1-201-555-0123"));
    // Responses: status 100..=699, three digits; never answered.
    let resp_head = "Via: SIP/2.0/UDP h;branch=z9hG4bK1\nTo: <sip:a@h>\nFrom: <sip:b@h>;tag=1\nCall-ID: c\nCSeq: 1 OPTIONS\n\n";
    for line in [
        "SIP/2.0 99 Low",
        "SIP/2.0 700 High",
        "SIP/2.0 20 Short",
        "SIP/2.00 200 OK",
    ] {
        let rejection =
            parse(&wire(&format!("{line}\n{resp_head}")), Framing::Datagram).expect_err(line);
        assert_eq!(rejection.disposition(), Disposition::Drop, "{line}");
    }
    let r = resp(&format!("SIP/2.0 180 Ringing\n{resp_head}"));
    assert_eq!((r.status(), r.reason()), (180, "Ringing"));
}

#[test]
fn response_from_request_copies_and_tags() {
    let r = req(&format!(
        "OPTIONS sip:a@h SIP/2.0\n{OPTIONS_HEAD}Via: SIP/2.0/TCP second;branch=z9hG4bK2\n\n"
    ));
    let ok = ResponseBuilder::from_request(&r, 200, "OK", Some("srv"))
        .header("WWW-Authenticate", "Digest realm=\"x\", nonce=\"n\"")
        .header("Min-Expires", "60")
        .body("text/plain", b"hi".to_vec())
        .build()
        .expect("200");
    assert_eq!(ok.vias().len(), 2);
    assert_eq!(ok.to().tag().as_deref(), Some("srv"));
    assert_eq!(ok.from().tag().as_deref(), Some("1"));
    assert_eq!(ok.cseq(), r.cseq());
    assert_eq!(
        ok.www_authenticate().collect::<Vec<_>>(),
        ["Digest realm=\"x\", nonce=\"n\""]
    );
    assert_eq!(ok.min_expires(), Some(60));
    assert_eq!(ok.body(), b"hi");
    // 100 Trying gets no tag (RFC 3261 section 8.2.6.2).
    let trying = ResponseBuilder::from_request(&r, 100, "Trying", Some("srv"))
        .build()
        .expect("100");
    assert_eq!(trying.to().tag(), None);
    // CR/LF in values cannot inject header lines.
    let injected = ResponseBuilder::from_request(&r, 200, "OK\r\nX-Evil: 1", None)
        .build()
        .expect("sanitised");
    assert_eq!(injected.header("X-Evil"), None);
}

#[test]
fn unquoted_utf8_display_names_pass_and_credentials_stay_out_of_debug() {
    let r = req("OPTIONS sip:a@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n\
To: Jos\u{e9} M\u{fc}ller <sip:a@h>\nFrom: <sip:b@h>;tag=1\nCall-ID: c\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n\
Authorization: Digest username=\"b\", response=\"feedface\"\n\n");
    assert_eq!(
        r.to().display_name.as_deref(),
        Some("Jos\u{e9} M\u{fc}ller")
    );
    let debug = format!("{r:?}");
    assert!(!debug.contains("feedface"), "{debug}");
    assert!(debug.contains("Authorization: \"<redacted>\""), "{debug}");
}

#[test]
fn stamp_source_adds_received_and_rport_for_responses() {
    let mut r = req("OPTIONS sip:a@h SIP/2.0\nVia: SIP/2.0/UDP client.example.com:5060;rport;branch=z9hG4bK1, SIP/2.0/UDP p;branch=z9hG4bK0\n\
To: <sip:a@h>\nFrom: <sip:b@h>;tag=1\nCall-ID: c\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n\n");
    r.stamp_source("192.0.2.7:6000".parse().expect("addr"));
    let top = r.top_via().expect("via");
    assert_eq!(top.received().as_deref(), Some("192.0.2.7"));
    assert_eq!(top.rport(), Some(Some(6000)));
    assert_eq!(r.vias().len(), 2);
    let ok = ResponseBuilder::from_request(&r, 200, "OK", Some("t"))
        .build()
        .expect("200");
    assert_eq!(
        ok.top_via().and_then(Via::received).as_deref(),
        Some("192.0.2.7")
    );
    assert_eq!(ok.top_via().and_then(Via::rport), Some(Some(6000)));
    assert_eq!(ok.vias().len(), 2);
    assert_eq!(
        ok.top_via().and_then(Via::branch).as_deref(),
        Some("z9hG4bK1")
    );

    // Same literal address and no rport: nothing to add (RFC 3261 section 18.2.1).
    let mut r = req(&format!(
        "OPTIONS sip:a@h SIP/2.0\n{}\n",
        OPTIONS_HEAD.replace("h.example.com", "[2001:db8::1]:5060")
    ));
    r.stamp_source("[2001:db8::1]:5060".parse().expect("addr"));
    assert_eq!(r.top_via().and_then(Via::received), None);
    r.stamp_source("[2001:db8::2]:5060".parse().expect("addr"));
    assert_eq!(
        r.top_via().and_then(Via::received).as_deref(),
        Some("2001:db8::2")
    );
}
