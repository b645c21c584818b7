//! Fuzzes the presence crate's pres_rules parser: no input may panic, and what it accepts must
//! survive being written and read again (the checks of `presence::exercise::pres_rules`, which the
//! normal suite runs over deterministic mutations).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| presence::exercise::pres_rules(data));
