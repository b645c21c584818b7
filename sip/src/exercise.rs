//! One entry point that pushes arbitrary bytes through every SIP parser of this crate and
//! checks the invariants that must hold for any input. Shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/sip_msg.rs`) and the deterministic mutation test, so both check the same.

use super::auth::Challenge;
use super::call::{rack, session_expires, Refresher};
use super::framing::{StreamFramer, StreamItem};
use super::msg::{parse, Disposition, Framing, SipMessage};
use super::stack::replaces_key;

/// Parses `data` as a datagram and as a stream message, reads every accessor, re-parses what
/// the printer emits, feeds it through the stream framer in two pieces and parses each
/// header value as a digest challenge.
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
