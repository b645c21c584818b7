//! One entry point that pushes arbitrary bytes through every parser of the calls feature
//! that reads what a SIP peer sends (INFO key presses, `Refer-To`, NOTIFY `message/sipfrag`)
//! and through the SIP stack's call header parsers. Shared by the cargo-fuzz target
//! (`fuzz/targets/call_fields.rs`) and the stable harness (`tests/fuzz_stable.rs`).

use super::dtmf::info_key;
use super::transfer::{refer_to, sipfrag_status};

/// Reads `data` as an INFO body of both DTMF types, as a `Refer-To` value (each line and
/// whole) and as a sipfrag body, and checks what comes out.
///
/// # Panics
///
/// Only on a broken invariant; malformed input gives `None`, never a panic.
pub fn exercise_call_fields(data: &[u8]) {
    sip::exercise::exercise_call_fields(data);
    for content_type in ["application/dtmf-relay", "application/dtmf; x=1"] {
        if let Some((key, duration)) = info_key(Some(content_type), data) {
            assert!(key.is_ascii_digit() || matches!(key, '*' | '#' | 'A'..='D'));
            assert!(duration <= 10_000);
        }
    }
    if let Some((code, _)) = sipfrag_status(data) {
        assert!((100..700).contains(&code));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for value in text.lines().chain(std::iter::once(text)) {
        if let Some((target, _replaces)) = refer_to(value) {
            assert!(!target.contains('?'));
        }
    }
}
