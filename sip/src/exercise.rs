//! One entry point that pushes arbitrary bytes through every SIP parser of this crate and
//! checks the invariants that must hold for any input. Shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/sip_msg.rs`) and the deterministic mutation test, so both check the same.

use std::collections::HashMap;
use std::time::Instant;

use super::auth::{Challenge, Ha1, HashFamily};
use super::call::{rack, session_expires, Refresher};
use super::framing::{StreamFramer, StreamItem};
use super::msg::{parse, Disposition, Framing, SipMessage, SipRequest};
use super::registrar::{Registrar, RegistrarConfig, MAX_BINDINGS_PER_AOR};
use super::stack::replaces_key;

/// Parses `data` as a datagram and as a stream message, reads every accessor, re-parses what
/// the printer emits, feeds it through the stream framer in two pieces, parses each header
/// value as a digest challenge and as digest credentials, and hands each request to the
/// local registrar (open and with users), twice.
///
/// # Panics
///
/// Only on a broken invariant (printed message not re-parseable, framer disagreeing with the
/// parser) — that is the point of calling it from a fuzzer. Malformed input never panics.
pub fn exercise_parsers(data: &[u8]) {
    for framing in [Framing::Datagram, Framing::Stream] {
        match parse(data, framing) {
            Ok(message) => check_message(&message),
            Err(rejection) => {
                if let (Disposition::Reply { status, .. }, Some(reply)) =
                    (rejection.disposition(), rejection.reply("fuzz"))
                {
                    assert_eq!(reply.status(), status);
                }
            }
        }
    }
    let split = data.len() / 2;
    let mut framer = StreamFramer::new();
    for part in [data.get(..split), data.get(split..)].into_iter().flatten() {
        if framer.handle_bytes(part).is_err() {
            return;
        }
        while let Ok(Some(item)) = framer.poll_item() {
            if let StreamItem::Message(bytes) = item {
                if let Ok(message) = parse(&bytes, Framing::Stream) {
                    check_message(&message);
                }
            }
        }
    }
}

fn check_message(message: &SipMessage) {
    let printed = message.to_bytes();
    let reparsed = match parse(&printed, Framing::Stream) {
        Ok(m) => m,
        Err(r) => panic!(
            "printed message does not re-parse: {:?}\n{}",
            r.error,
            String::from_utf8_lossy(&printed)
        ),
    };
    let (head, again) = match (message, &reparsed) {
        (SipMessage::Request(a), SipMessage::Request(b)) => {
            assert_eq!(a.method(), b.method());
            assert_eq!(a.uri(), b.uri());
            check_registrar(a);
            (a.headers(), b.headers())
        }
        (SipMessage::Response(a), SipMessage::Response(b)) => {
            assert_eq!(a.status(), b.status());
            for value in a.www_authenticate().chain(a.proxy_authenticate()) {
                let _ = Challenge::parse(value);
            }
            let _ = a.min_expires();
            (a.headers(), b.headers())
        }
        _ => panic!("request/response flipped by printing"),
    };
    assert_eq!(
        head.iter().filter(|h| h.name != "Content-Length").count(),
        again.iter().filter(|h| h.name != "Content-Length").count()
    );
    for field in head.iter() {
        let _ = Challenge::parse(&field.value);
        let _ = super::registrar::parse_credentials(&field.value);
    }
}

/// The local registrar (RFC 3261 section 10.3) on any request, as if addressed to it: in
/// open mode and with users (`alice`, `bob` of `example.com`, the domain of the fixtures),
/// the request twice (refresh and CSeq paths). Its answer is one of the registrar's codes,
/// a challenge parses, and a 200 lists no more bindings than an address-of-record may hold.
fn check_registrar(request: &SipRequest) {
    let now = Instant::now();
    let mut rng = engine::Rng::seed_from_u64(7);
    for open in [true, false] {
        let users: HashMap<String, Ha1> = ["alice", "bob"]
            .into_iter()
            .map(|u| {
                let ha1 = Ha1::from_password(HashFamily::Md5, u, "example.com", "pw");
                (u.to_owned(), ha1)
            })
            .collect();
        let mut registrar = Registrar::new(RegistrarConfig {
            domain: "example.com".to_owned(),
            open,
            users,
            min_expires: 60,
            max_expires: 3600,
            default_expires: 600,
        });
        for _ in 0..2 {
            let answer = registrar.handle_register(now, request, &mut rng);
            assert!(
                matches!(answer.status, 200 | 400 | 401 | 403 | 404 | 423 | 500 | 503),
                "registrar answered {}",
                answer.status
            );
            if answer.status == 401 {
                let challenges: Vec<_> = answer
                    .headers
                    .iter()
                    .filter(|(n, _)| *n == "WWW-Authenticate")
                    .collect();
                assert_eq!(challenges.len(), 1);
                assert!(Challenge::parse(&challenges[0].1).is_ok());
            }
            if answer.status == 200 {
                let contacts = answer.headers.iter().filter(|(n, _)| *n == "Contact");
                assert!(contacts.count() <= MAX_BINDINGS_PER_AOR);
            }
        }
        let _ = registrar.lookup(now, "alice");
    }
}

/// Reads `data` as each header value a call's peer controls and the call machinery parses
/// itself (`RAck` of a PRACK, `Session-Expires` of RFC 4028, `Replaces` of RFC 3891), line
/// by line and whole, and checks what comes out.
///
/// # Panics
///
/// Only on a broken invariant; malformed values give `None`, never a panic.
pub fn exercise_call_fields(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for value in text.lines().chain(std::iter::once(text)) {
        if let Some((_, _, method)) = rack(value) {
            assert!(!method.is_empty() && !method.contains(char::is_whitespace));
        }
        if let Some((_, refresher)) = session_expires(Some(value)) {
            assert!(matches!(
                refresher,
                None | Some(Refresher::Uac | Refresher::Uas)
            ));
        }
        if let Some(key) = replaces_key(value) {
            assert!(!key.call_id.contains(';'));
            assert!(!key.local_tag.contains(';') && !key.remote_tag.contains(';'));
        }
    }
}
