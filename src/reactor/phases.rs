//! Where the reactor's long iterations spend their time: a debugging aid, on when the
//! environment has `SYLK_REACTOR_PHASES=1`. Each iteration's work is cut into phases by
//! laps (the time since the previous lap is charged to the phase named); for the iterations
//! over 2 ms the phases' totals and maxima are kept and logged at exit next to the
//! iteration figures. Off, a lap is one branch.

use std::time::{Duration, Instant};

/// A part of one iteration's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Reads carried over from the previous turn (read budgets).
    Carried,
    /// WebSocket accepts and reads.
    Ws,
    /// Media socket reads (ICE, DTLS, SRTP through the bridges).
    Media,
    /// SIP UDP, TCP/TLS and DNS reads.
    Sip,
    /// MSRP accepts and reads.
    Msrp,
    /// Signals and the store's results.
    Other,
    /// Due timers.
    Timers,
    /// Routing events and carrying out commands.
    Settle,
    /// Opening a call's media sockets (within settling).
    OpenMedia,
}

const PHASES: [(Phase, &str); 9] = [
    (Phase::Carried, "carried"),
    (Phase::Ws, "ws"),
    (Phase::Media, "media"),
    (Phase::Sip, "sip"),
    (Phase::Msrp, "msrp"),
    (Phase::Other, "other"),
    (Phase::Timers, "timers"),
    (Phase::Settle, "settle"),
    (Phase::OpenMedia, "open_media"),
];

/// Phase times of the iterations over 2 ms.
#[derive(Debug)]
pub(super) struct PhaseTimes {
    enabled: bool,
    mark: Instant,
    /// This iteration's time and laps per phase.
    current: [(Duration, u32); 9],
    /// Iterations over 2 ms seen.
    long: u64,
    /// Over those: total time, longest single-iteration time, total laps.
    total: [(Duration, Duration, u64); 9],
}

impl PhaseTimes {
    /// On when `SYLK_REACTOR_PHASES` is set to `1`.
    pub(super) fn from_env() -> PhaseTimes {
        PhaseTimes {
            enabled: std::env::var("SYLK_REACTOR_PHASES").is_ok_and(|v| v == "1"),
            mark: Instant::now(),
            current: [(Duration::ZERO, 0); 9],
            long: 0,
            total: [(Duration::ZERO, Duration::ZERO, 0); 9],
        }
    }

    /// An iteration's work starts at `now`.
    pub(super) fn start(&mut self, now: Instant) {
        if self.enabled {
            self.mark = now;
            self.current = [(Duration::ZERO, 0); 9];
        }
    }

    /// Charges the time since the last lap to `phase`.
    pub(super) fn lap(&mut self, phase: Phase) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let i = phase as usize;
        self.current[i].0 += now.saturating_duration_since(self.mark);
        self.current[i].1 += 1;
        self.mark = now;
    }

    /// The iteration took `took`: keeps its phases if that is over 2 ms.
    pub(super) fn end(&mut self, took: Duration) {
        if !self.enabled || took <= Duration::from_millis(2) {
            return;
        }
        self.long += 1;
        for (total, (d, n)) in self.total.iter_mut().zip(self.current) {
            total.0 += d;
            total.1 = total.1.max(d);
            total.2 += u64::from(n);
        }
    }

    /// Logs the phases of the long iterations (at exit, when on).
    pub(super) fn log(&self) {
        if !self.enabled {
            return;
        }
        let mut line = String::new();
        for ((_, name), (total, max, laps)) in PHASES.iter().zip(self.total) {
            line.push_str(&format!(
                " {name}={}/{}us/{laps}",
                total.as_micros(),
                max.as_micros()
            ));
        }
        log::info!(
            "reactor: phases of the {} iterations over 2 ms (total/max us/laps):{line}",
            self.long
        );
    }
}
