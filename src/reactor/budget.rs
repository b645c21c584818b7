//! How much work one reactor turn may start, so that no turn keeps every socket waiting for
//! long (the goal: no iteration over 2 ms).
//!
//! A wave of call setups is what made long turns: 100 browsers' `session-create`s, their
//! DTLS handshakes (a signature, a verification and an ECDH each) and the SIP answers of
//! their calls all arrive within a few turns, and the soak's longest turn was 27 ms (104 ms
//! on a loaded machine) with media, WebSocket routing and SIP reads each taking several ms.
//!
//! A turn's work comes in phases ([`Work`]), in this order: serving ready sockets (those the
//! last turn had no time for first, then reads carried over from it, then the new events),
//! running due timers, routing WebSocket requests to the gateway, carrying out the engines'
//! commands, and flushing, re-arming and reaping the touched streams. Each phase has a share
//! of the turn ([`SHARES`], 1.9 ms in all): it may start work until the end of its share
//! counted from the turn's wake-up, so time an earlier phase left unused passes on, and a
//! turn whose time is spent does not start the later phases' work. What is left (sockets not
//! served, timers not run, requests not routed, commands not carried out, streams not
//! flushed) is carried to the next turn, which polls without sleeping and serves it first
//! within its phase. No phase starves: every phase starts its first item in every turn,
//! whatever the time, so a turn spent by one long item still moves every queue by one. (An
//! earlier form owed a refused phase its first item in the next turn only: under a stream
//! flood, whose every read spent the turn, a client's ping then waited a turn for its read,
//! its routing, its answer and its flush each, 60-90 ms p99 in `tests/abuse.rs`.) Nothing is
//! dropped or reordered within one socket: the budget only moves work to the next turn.
//!
//! One item is never divided: a single request or DTLS flight that takes longer than its
//! phase's share still makes a long turn.

use std::time::{Duration, Instant};

/// A phase of a turn's work, in the order a turn does them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Work {
    /// Serving ready sockets (reads, accepts, writes).
    Serve,
    /// Running due timers (WebSocket and engine deadlines).
    Timers,
    /// Routing WebSocket requests to the gateway.
    Route,
    /// Carrying out the engines' commands, flushing dirty bridges, routing bridge and MSRP
    /// events.
    Commands,
    /// Flushing, re-arming and reaping the touched WebSocket streams.
    Flush,
}

const PHASES: usize = 5;

/// Each phase's share of a turn, in turn order; 1.9 ms in all, under the 2 ms goal with
/// room for the one item that overruns its phase.
pub(super) const SHARES: [Duration; PHASES] = [
    Duration::from_micros(600),
    Duration::from_micros(200),
    Duration::from_micros(500),
    Duration::from_micros(400),
    Duration::from_micros(200),
];

/// One turn's budget.
#[derive(Debug)]
pub(super) struct TurnBudget {
    woke: Instant,
    /// Items started per phase in this turn.
    started: [u32; PHASES],
}

impl TurnBudget {
    /// A budget for a turn that woke at `woke`.
    pub(super) fn new(woke: Instant) -> TurnBudget {
        TurnBudget {
            woke,
            started: [0; PHASES],
        }
    }

    /// A new turn woke at `woke`.
    pub(super) fn start(&mut self, woke: Instant) {
        *self = TurnBudget::new(woke);
    }

    /// Whether one more item of `work` may start in this turn.
    pub(super) fn may(&mut self, work: Work) -> bool {
        self.may_at(work, Instant::now())
    }

    /// [`may`](Self::may) at `now`.
    fn may_at(&mut self, work: Work, now: Instant) -> bool {
        let i = work as usize;
        let first = self.started[i] == 0;
        // Every phase starts its first item in every turn: a turn spent by one long read
        // (a peer flooding a stream) must not hold a client's request, its answer and its
        // flush a turn each (issue 16's ping p99 under attack).
        let ok = now < self.until(work) || first;
        if ok {
            self.started[i] += 1;
        }
        ok
    }

    /// When `work`'s share ends in this turn (for sockets that loop over many inputs, such
    /// as SIP UDP's datagrams).
    pub(super) fn until(&self, work: Work) -> Instant {
        self.woke + SHARES[..=work as usize].iter().sum::<Duration>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Work; PHASES] = [
        Work::Serve,
        Work::Timers,
        Work::Route,
        Work::Commands,
        Work::Flush,
    ];
    const US: Duration = Duration::from_micros(1);

    #[test]
    fn each_phase_works_until_its_share_ends_and_unused_time_passes_on() {
        let woke = Instant::now();
        let mut b = TurnBudget::new(woke);
        // Serving stops at its share.
        assert!(b.may_at(Work::Serve, woke));
        assert!(b.may_at(Work::Serve, woke + SHARES[0] - US));
        assert!(!b.may_at(Work::Serve, woke + SHARES[0]));
        // Timers had nothing to do; routing starts early and may use their share too.
        let route_end = woke + SHARES[0] + SHARES[1] + SHARES[2];
        assert!(b.may_at(Work::Route, woke + SHARES[0]));
        assert!(b.may_at(Work::Route, route_end - US));
        assert!(!b.may_at(Work::Route, route_end));
        // The last phase ends at the sum of the shares.
        let all: Duration = SHARES.iter().sum();
        assert!(b.may_at(Work::Flush, route_end));
        assert!(b.may_at(Work::Flush, woke + all - US));
        assert!(!b.may_at(Work::Flush, woke + all));
    }

    #[test]
    fn a_spent_turn_still_starts_one_item_of_every_phase() {
        let woke = Instant::now();
        let late = woke + Duration::from_secs(1);
        let mut b = TurnBudget::new(woke);
        for work in ALL {
            assert!(
                b.may_at(work, late),
                "{work:?}: its first item always starts"
            );
            assert!(!b.may_at(work, late), "{work:?}: one item only");
        }
        // The next turn starts afresh.
        b.start(late);
        assert!(b.may_at(Work::Route, late));
        assert!(b.may_at(Work::Route, late + US));
    }

    #[test]
    fn no_phase_waits_a_turn_whatever_the_others_take() {
        // Every turn is spent before it starts; each phase always has work.
        let mut b = TurnBudget::new(Instant::now());
        let mut t = Instant::now();
        let mut last_moved = [0usize; PHASES];
        for turn in 1..=10 {
            t += Duration::from_secs(1);
            b.start(t);
            for (i, work) in ALL.into_iter().enumerate() {
                if b.may_at(work, t + Duration::from_secs(1)) {
                    last_moved[i] = turn;
                }
                assert_eq!(last_moved[i], turn, "{work:?} starved at turn {turn}");
            }
        }
    }

    #[test]
    fn shares_add_up_under_two_ms_and_end_in_turn_order() {
        assert!(SHARES.iter().sum::<Duration>() < Duration::from_millis(2));
        let woke = Instant::now();
        let b = TurnBudget::new(woke);
        let ends: Vec<Instant> = ALL.iter().map(|&w| b.until(w)).collect();
        assert!(ends.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ends[0], woke + SHARES[0]);
    }
}
