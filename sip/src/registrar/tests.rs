use super::*;
use crate::auth::{credentials, Challenge, DigestRequest, Qop};
use crate::msg::{Framing, SipMessage};

const DOMAIN: &str = "sylk.local";

fn registrar(open: bool) -> Registrar {
    let mut users = HashMap::new();
    users.insert(
        "alice".to_owned(),
        Ha1::from_password(HashFamily::Md5, "alice", DOMAIN, "secret"),
    );
    users.insert(
        "bob".to_owned(),
        Ha1::from_password(HashFamily::Md5, "bob", DOMAIN, "bobpw"),
    );
    Registrar::new(RegistrarConfig {
        domain: DOMAIN.into(),
        open,
        users,
        min_expires: 60,
        max_expires: 3600,
        default_expires: 3600,
    })
}

/// A REGISTER for `user` from `contact` (a Contact header value), CSeq `cseq`.
fn register(user: &str, contact: &str, cseq: u32, extra: &str) -> SipRequest {
    let text = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5100;branch=z9hG4bK{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=f1\r\nTo: <sip:{user}@{DOMAIN}>\r\n\
         Call-ID: reg-{user}@phone\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\n{extra}\
         Content-Length: 0\r\n\r\n"
    );
    match crate::msg::parse(text.as_bytes(), Framing::Datagram) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn header<'a>(a: &'a RegistrarAnswer, name: &str) -> Vec<&'a str> {
    a.headers
        .iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The Authorization value answering `answer`'s challenge for `user` with `password`.
fn authorization(answer: &RegistrarAnswer, user: &str, password: &str) -> String {
    let challenge = Challenge::parse(header(answer, "WWW-Authenticate")[0]).unwrap();
    let ha1 = Ha1::from_password(HashFamily::Md5, user, DOMAIN, password);
    let request = DigestRequest {
        method: "REGISTER",
        uri: &format!("sip:{DOMAIN}"),
        body: &[],
        cnonce: "cn0123",
    };
    credentials(user, &ha1, &challenge, Some(Qop::Auth), &request, 1).unwrap()
}

fn registered(
    r: &mut Registrar,
    rng: &mut Rng,
    t: Instant,
    user: &str,
    pw: &str,
    contact: &str,
    cseq: u32,
) -> RegistrarAnswer {
    let first = r.handle_register(t, &register(user, contact, cseq, ""), rng);
    assert_eq!(first.status, 401);
    let auth = authorization(&first, user, pw);
    r.handle_register(
        t,
        &register(
            user,
            contact,
            cseq + 1,
            &format!("Authorization: {auth}\r\n"),
        ),
        rng,
    )
}

#[test]
fn digest_from_the_ha1_then_binding_refresh_expiry_and_removal() {
    let t0 = Instant::now();
    let mut rng = Rng::seed_from_u64(3);
    let mut r = registrar(false);
    let ok = registered(
        &mut r,
        &mut rng,
        t0,
        "alice",
        "secret",
        "<sip:alice@127.0.0.1:5100>;expires=600",
        1,
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(
        header(&ok, "Contact"),
        ["<sip:alice@127.0.0.1:5100>;expires=600"]
    );
    let found = r.lookup(t0, "alice");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].contact.uri.as_str(), "sip:alice@127.0.0.1:5100");

    // A wrong password is challenged again; another user's credentials are forbidden.
    let first = r.handle_register(t0, &register("alice", "<sip:x@1.2.3.4>", 10, ""), &mut rng);
    let wrong = authorization(&first, "alice", "guess");
    let again = r.handle_register(
        t0,
        &register(
            "alice",
            "<sip:x@1.2.3.4>",
            11,
            &format!("Authorization: {wrong}\r\n"),
        ),
        &mut rng,
    );
    assert_eq!(again.status, 401);
    let bobs = authorization(&first, "bob", "bobpw");
    let forbidden = r.handle_register(
        t0,
        &register(
            "alice",
            "<sip:x@1.2.3.4>",
            12,
            &format!("Authorization: {bobs}\r\n"),
        ),
        &mut rng,
    );
    assert_eq!(forbidden.status, 403);
    assert_eq!(r.lookup(t0, "alice").len(), 1, "nothing changed");
    // Unknown users: 404 before any challenge.
    assert_eq!(
        r.handle_register(t0, &register("mallory", "<sip:m@1.2.3.4>", 1, ""), &mut rng)
            .status,
        404
    );

    // Too brief: 423 with Min-Expires.
    let brief = registered(
        &mut r,
        &mut rng,
        t0,
        "alice",
        "secret",
        "<sip:alice@127.0.0.1:5100>;expires=5",
        20,
    );
    assert_eq!(
        (brief.status, header(&brief, "Min-Expires")),
        (423, vec!["60"])
    );
    // A long ask is cut to max_expires.
    let long = registered(
        &mut r,
        &mut rng,
        t0,
        "alice",
        "secret",
        "<sip:alice@127.0.0.1:5100>;expires=86400",
        30,
    );
    assert_eq!(
        header(&long, "Contact"),
        ["<sip:alice@127.0.0.1:5100>;expires=3600"]
    );

    // A second phone; both listed, newest first in lookups.
    let two = registered(
        &mut r,
        &mut rng,
        t0,
        "alice",
        "secret",
        "<sip:alice@127.0.0.1:5200>;expires=120",
        40,
    );
    assert_eq!(header(&two, "Contact").len(), 2);
    let found = r.lookup(t0, "alice");
    assert_eq!(found[0].contact.uri.as_str(), "sip:alice@127.0.0.1:5200");
    // It lapses on its own.
    let later = t0 + Duration::from_secs(121);
    let found = r.lookup(later, "alice");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].contact.uri.as_str(), "sip:alice@127.0.0.1:5100");
    // Un-REGISTER (expires=0) removes that binding; `*` with Expires 0 removes all.
    let gone = registered(
        &mut r,
        &mut rng,
        later,
        "alice",
        "secret",
        "<sip:alice@127.0.0.1:5100>;expires=0",
        50,
    );
    assert_eq!(gone.status, 200);
    assert!(header(&gone, "Contact").is_empty());
    assert!(r.lookup(later, "alice").is_empty());
    registered(
        &mut r,
        &mut rng,
        later,
        "alice",
        "secret",
        "<sip:alice@127.0.0.1:5100>",
        60,
    );
    let first = r.handle_register(
        later,
        &register("alice", "*", 70, "Expires: 0\r\n"),
        &mut rng,
    );
    let auth = authorization(&first, "alice", "secret");
    let star = r.handle_register(
        later,
        &register(
            "alice",
            "*",
            71,
            &format!("Expires: 0\r\nAuthorization: {auth}\r\n"),
        ),
        &mut rng,
    );
    assert_eq!(star.status, 200);
    assert_eq!(r.binding_count(), 0);
    // `*` without Expires 0 is malformed.
    let first = r.handle_register(later, &register("alice", "*", 80, ""), &mut rng);
    let auth = authorization(&first, "alice", "secret");
    let bad = r.handle_register(
        later,
        &register("alice", "*", 81, &format!("Authorization: {auth}\r\n")),
        &mut rng,
    );
    assert_eq!(bad.status, 400);
}

#[test]
fn stale_nonces_out_of_order_cseq_instance_ids_and_open_mode() {
    let t0 = Instant::now();
    let mut rng = Rng::seed_from_u64(4);
    let mut r = registrar(false);
    let first = r.handle_register(t0, &register("bob", "<sip:b@1.2.3.4>", 1, ""), &mut rng);
    let auth = authorization(&first, "bob", "bobpw");
    // The nonce is too old by now: challenged again, stale=true (the password was right).
    let late = t0 + Duration::from_secs(301);
    let stale = r.handle_register(
        late,
        &register(
            "bob",
            "<sip:b@1.2.3.4>",
            2,
            &format!("Authorization: {auth}\r\n"),
        ),
        &mut rng,
    );
    assert_eq!(stale.status, 401);
    assert!(header(&stale, "WWW-Authenticate")[0].ends_with("stale=true"));
    // CSeq going backwards on the same Call-ID: 500 (RFC 3261 section 10.3 step 7).
    let ok = registered(
        &mut r,
        &mut rng,
        late,
        "bob",
        "bobpw",
        "<sip:b@1.2.3.4>",
        10,
    );
    assert_eq!(ok.status, 200);
    let first = r.handle_register(late, &register("bob", "<sip:b@1.2.3.4>", 5, ""), &mut rng);
    let auth = authorization(&first, "bob", "bobpw");
    let old = r.handle_register(
        late,
        &register(
            "bob",
            "<sip:b@1.2.3.4>",
            5,
            &format!("Authorization: {auth}\r\n"),
        ),
        &mut rng,
    );
    assert_eq!(old.status, 500);
    // RFC 5626: the same instance and reg-id from a new address replaces the binding.
    let inst = "+sip.instance=\"<urn:uuid:00000000-0000-4000-8000-000000000001>\";reg-id=1";
    registered(
        &mut r,
        &mut rng,
        late,
        "bob",
        "bobpw",
        &format!("<sip:b@10.0.0.1:5060>;{inst}"),
        20,
    );
    let moved = registered(
        &mut r,
        &mut rng,
        late,
        "bob",
        "bobpw",
        &format!("<sip:b@10.0.0.2:5060>;{inst}"),
        30,
    );
    let contacts = header(&moved, "Contact");
    assert_eq!(contacts.len(), 2, "{contacts:?}");
    assert!(contacts
        .iter()
        .any(|c| c.starts_with("<sip:b@10.0.0.2:5060>")));
    assert!(!contacts
        .iter()
        .any(|c| c.starts_with("<sip:b@10.0.0.1:5060>")));

    // Open: no challenge, any user of the domain, but only of the domain.
    let mut open = registrar(true);
    let ok = open.handle_register(t0, &register("zoe", "<sip:z@1.2.3.4>", 1, ""), &mut rng);
    assert_eq!(ok.status, 200);
    assert_eq!(open.lookup(t0, "zoe").len(), 1);
    let text = "REGISTER sip:other.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5100;branch=z9hG4bKx\r\n\
                Max-Forwards: 70\r\nFrom: <sip:zoe@other.test>;tag=f\r\nTo: <sip:zoe@other.test>\r\n\
                Call-ID: x@y\r\nCSeq: 1 REGISTER\r\nContact: <sip:z@1.2.3.4>\r\nContent-Length: 0\r\n\r\n";
    let Ok(SipMessage::Request(other)) = crate::msg::parse(text.as_bytes(), Framing::Datagram)
    else {
        panic!()
    };
    assert_eq!(open.handle_register(t0, &other, &mut rng).status, 404);
}

#[test]
fn bindings_per_user_are_bounded() {
    let t0 = Instant::now();
    let mut rng = Rng::seed_from_u64(5);
    let mut open = registrar(true);
    for i in 0..(MAX_BINDINGS_PER_AOR as u32 + 5) {
        let req = register("zoe", &format!("<sip:z@10.0.0.1:{}>", 5000 + i), i + 1, "");
        assert_eq!(open.handle_register(t0, &req, &mut rng).status, 200);
    }
    let found = open.lookup(t0, "zoe");
    assert_eq!(found.len(), MAX_BINDINGS_PER_AOR);
    // The oldest made way for the newest.
    assert_eq!(
        found[0].contact.uri.as_str(),
        format!("sip:z@10.0.0.1:{}", 5000 + MAX_BINDINGS_PER_AOR as u32 + 4)
    );
}
