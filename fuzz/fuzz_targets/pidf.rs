//! Fuzzes the presence crate's pidf parser: no input may panic, and what it accepts must
//! survive being written and read again (the checks of `presence::exercise::pidf`, which the
//! normal suite runs over deterministic mutations).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| presence::exercise::pidf(data));
