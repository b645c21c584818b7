//! Fuzzes the presence crate's resource_lists parser: no input may panic, and what it accepts must
//! survive being written and read again (the checks of `presence::exercise::resource_lists`, which the
//! normal suite runs over deterministic mutations).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| presence::exercise::resource_lists(data));
