//! The RFC 3261 transaction timers (table 4 of section A) as one small fixed table per
//! transaction. A fired or cancelled entry is `None`, so a late wake-up finds nothing due and
//! does nothing.

use std::time::{Duration, Instant};

/// Timer names from RFC 3261 section 17 (A-K) and RFC 6026 (L, M).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmit (client, unreliable only).
    A,
    /// INVITE transaction timeout (client).
    B,
    /// Wait time for response retransmits (client INVITE, Completed).
    D,
    /// Non-INVITE request retransmit (client, unreliable only).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE final response retransmit (server, unreliable only).
    G,
    /// Wait time for ACK receipt (server INVITE).
    H,
    /// Wait time for ACK retransmits (server INVITE, Confirmed).
    I,
    /// Wait time for non-INVITE request retransmits (server).
    J,
    /// Wait time for response retransmits (client non-INVITE, Completed).
    K,
    /// Wait time for accepted INVITE request retransmits (server, RFC 6026).
    L,
    /// Wait time for 2xx retransmits (client INVITE, Accepted, RFC 6026).
    M,
}

const ALL: [Timer; 12] = [
    Timer::A,
    Timer::B,
    Timer::D,
    Timer::E,
    Timer::F,
    Timer::G,
    Timer::H,
    Timer::I,
    Timer::J,
    Timer::K,
    Timer::L,
    Timer::M,
];

/// Timer base values (RFC 3261 section 17.1.1.1 and table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnConfig {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, default 5 s.
    pub t4: Duration,
}

impl Default for TxnConfig {
    fn default() -> TxnConfig {
        TxnConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TxnConfig {
    /// 64*T1: timers B, F, H, L, M and J on unreliable transports.
    pub fn timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D: at least 32 s on unreliable transports, zero on reliable ones.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32).max(self.timeout() / 2)
        }
    }

    /// Timers I and K: T4 on unreliable transports, zero on reliable ones.
    pub fn timer_i_k(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }

    /// Timer J: 64*T1 on unreliable transports, zero on reliable ones.
    pub fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timeout()
        }
    }
}

/// Deadlines of one transaction, indexed by [`Timer`].
#[derive(Debug, Default, Clone)]
pub(super) struct TimerTable {
    deadlines: [Option<Instant>; 12],
}

fn index(timer: Timer) -> usize {
    // Fieldless enum: discriminants are 0..12 in declaration order, the order of `ALL`.
    timer as usize
}

impl TimerTable {
    pub(super) fn arm(&mut self, timer: Timer, at: Instant) {
        if let Some(slot) = self.deadlines.get_mut(index(timer)) {
            *slot = Some(at);
        }
    }

    pub(super) fn cancel(&mut self, timer: Timer) {
        if let Some(slot) = self.deadlines.get_mut(index(timer)) {
            *slot = None;
        }
    }

    /// The earliest armed deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the first timer due at `now`, in table order.
    pub(super) fn take_due(&mut self, now: Instant) -> Option<Timer> {
        let (i, slot) = self
            .deadlines
            .iter_mut()
            .enumerate()
            .find(|(_, d)| d.is_some_and(|d| d <= now))?;
        *slot = None;
        ALL.get(i).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_order_matches_discriminants() {
        for (i, timer) in ALL.iter().enumerate() {
            assert_eq!(index(*timer), i);
        }
    }
}
