//! How much work one reactor turn may start, so that no turn keeps every socket waiting for
//! long (the goal: no iteration over 2 ms).
//!
//! A wave of call setups is what made long turns: 100 browsers' `session-create`s, their
//! DTLS handshakes (a signature, a verification and an ECDH each) and the SIP answers of
//! their calls all arrive within a few turns, and the soak's longest turn was 27 ms (104 ms
//! on a loaded machine) with media, WebSocket routing and SIP reads each taking several ms.
//! So each turn serves ready sockets (those the last turn had no time for first, then reads
//! carried over from it, then the new events) only until [`READ_TIME`] has passed since it
//! woke, and routes WebSocket
//! requests to the gateway only for [`ROUTE_TIME`]; what is left (sockets not served,
//! requests not routed) is carried to the next turn, which polls without sleeping. The first
//! socket and the first request of a turn are always served, so every turn makes progress.
//! Nothing is dropped or reordered within one socket: the budget only moves work to the
//! next turn.

use std::time::{Duration, Instant};

/// Time one turn may spend serving ready sockets before the rest wait for the next turn.
pub(super) const READ_TIME: Duration = Duration::from_micros(800);
/// Time one turn may spend routing WebSocket requests before the rest wait.
pub(super) const ROUTE_TIME: Duration = Duration::from_micros(800);

/// One turn's budget.
#[derive(Debug)]
pub(super) struct TurnBudget {
    reads_until: Instant,
    route_until: Option<Instant>,
    served: u32,
    routed: u32,
}

impl TurnBudget {
    /// A budget for a turn that woke at `woke`.
    pub(super) fn new(woke: Instant) -> TurnBudget {
        TurnBudget {
            reads_until: woke + READ_TIME,
            route_until: None,
            served: 0,
            routed: 0,
        }
    }

    /// A new turn woke at `woke`.
    pub(super) fn start(&mut self, woke: Instant) {
        *self = TurnBudget::new(woke);
    }

    /// Whether one more ready socket may be served in this turn (the first always is).
    pub(super) fn may_serve(&mut self) -> bool {
        let ok = self.served == 0 || Instant::now() < self.reads_until;
        self.served += u32::from(ok);
        ok
    }

    /// When reading must stop in this turn (for sockets that loop over many inputs, such as
    /// SIP UDP's datagrams).
    pub(super) fn reads_until(&self) -> Instant {
        self.reads_until
    }

    /// Whether one more WebSocket request may be routed in this turn (the first always is);
    /// routing's time counts from its first request.
    pub(super) fn may_route(&mut self) -> bool {
        let now = Instant::now();
        let until = *self.route_until.get_or_insert(now + ROUTE_TIME);
        let ok = self.routed == 0 || now < until;
        self.routed += u32::from(ok);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_turn_still_serves_and_routes_one_then_nothing_more() {
        let long_ago = Instant::now() - Duration::from_secs(1);
        let mut b = TurnBudget::new(long_ago);
        assert!(b.may_serve(), "the first socket of a turn is always served");
        assert!(!b.may_serve());
        assert!(!b.may_serve());
        // Routing has its own time, from its first request.
        assert!(b.may_route());
    }

    #[test]
    fn a_turn_with_time_left_serves_and_routes_on() {
        // Woken "in the future": its time cannot run out while the test runs, however
        // loaded the machine.
        let mut b = TurnBudget::new(Instant::now() + Duration::from_secs(3600));
        assert!(b.may_serve());
        assert!(b.may_serve());
        assert!(b.may_serve());
        // A new turn starts afresh.
        b.start(Instant::now() - Duration::from_secs(1));
        assert!(b.may_serve());
        assert!(!b.may_serve());
    }
}
