//! Where the reactor's long iterations spend their time: a debugging aid, on when the
//! environment has `SYLK_REACTOR_PHASES=1`. Each iteration's work is cut into phases by
//! laps (the time since the previous lap is charged to the phase named); for the iterations
//! over 2 ms the phases' totals and maxima are kept and logged at exit next to the
//! iteration figures, with how much of them the thread spent on the CPU and waiting for one
//! (`/proc/thread-self/schedstat`, read twice per iteration: on only for this). Off, a lap
//! is one branch.

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
    /// Signals, the store's results and XCAP connections.
    Other,
    /// Due timers.
    Timers,
    /// What settling does besides the phases below.
    Settle,
    /// Opening a call's media sockets (within settling).
    OpenMedia,
    /// Routing WebSocket requests to the gateway (within settling).
    Route,
    /// Carrying out the engines' commands and routing bridge and MSRP events (within
    /// settling).
    Commands,
    /// Flushing, re-arming and reaping the touched WebSocket streams (within settling).
    Flush,
}

const N: usize = 12;

const PHASES: [(Phase, &str); N] = [
    (Phase::Carried, "carried"),
    (Phase::Ws, "ws"),
    (Phase::Media, "media"),
    (Phase::Sip, "sip"),
    (Phase::Msrp, "msrp"),
    (Phase::Other, "other"),
    (Phase::Timers, "timers"),
    (Phase::Settle, "settle"),
    (Phase::OpenMedia, "open_media"),
    (Phase::Route, "route"),
    (Phase::Commands, "commands"),
    (Phase::Flush, "flush"),
];

/// Phase times of the iterations over 2 ms.
#[derive(Debug)]
pub(super) struct PhaseTimes {
    enabled: bool,
    mark: Instant,
    /// This iteration's time and laps per phase.
    current: [(Duration, u32); N],
    /// Iterations over 2 ms seen.
    long: u64,
    /// Over those: total time, longest single-iteration time, total laps.
    total: [(Duration, Duration, u64); N],
    /// The thread's (on-CPU, waiting-for-a-CPU) nanoseconds when this iteration started.
    sched: (u64, u64),
    /// Over the long iterations: how many had more than 2 ms on the CPU, the most on the
    /// CPU, and the total time spent waiting for a CPU (a long iteration on a busy machine
    /// may be mostly the scheduler's).
    on_cpu_over_2ms: u64,
    most_on_cpu: Duration,
    waited: Duration,
    /// Over the iterations with more than 2 ms on the CPU (the ones the goal is about, on a
    /// shared machine): total time, longest single-iteration time, total laps per phase, and
    /// in how many of them each phase took the largest share.
    on_cpu_total: [(Duration, Duration, u64); N],
    on_cpu_largest: [u64; N],
}

/// The reactor thread's on-CPU and run-queue nanoseconds (`/proc/thread-self/schedstat`).
fn schedstat() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut fields = text.split_whitespace().map(|f| f.parse().unwrap_or(0));
    (fields.next().unwrap_or(0), fields.next().unwrap_or(0))
}

impl PhaseTimes {
    /// On when `SYLK_REACTOR_PHASES` is set to `1`.
    pub(super) fn from_env() -> PhaseTimes {
        PhaseTimes {
            enabled: std::env::var("SYLK_REACTOR_PHASES").is_ok_and(|v| v == "1"),
            mark: Instant::now(),
            current: [(Duration::ZERO, 0); N],
            long: 0,
            total: [(Duration::ZERO, Duration::ZERO, 0); N],
            sched: (0, 0),
            on_cpu_over_2ms: 0,
            most_on_cpu: Duration::ZERO,
            waited: Duration::ZERO,
            on_cpu_total: [(Duration::ZERO, Duration::ZERO, 0); N],
            on_cpu_largest: [0; N],
        }
    }

    /// An iteration's work starts at `now`.
    pub(super) fn start(&mut self, now: Instant) {
        if self.enabled {
            self.mark = now;
            self.current = [(Duration::ZERO, 0); N];
            self.sched = schedstat();
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
        let (cpu, wait) = schedstat();
        let on_cpu = Duration::from_nanos(cpu.saturating_sub(self.sched.0));
        self.on_cpu_over_2ms += u64::from(on_cpu > Duration::from_millis(2));
        self.most_on_cpu = self.most_on_cpu.max(on_cpu);
        self.waited += Duration::from_nanos(wait.saturating_sub(self.sched.1));
        add(&mut self.total, &self.current);
        if on_cpu > Duration::from_millis(2) {
            add(&mut self.on_cpu_total, &self.current);
            let largest = (0..N).max_by_key(|&i| self.current[i].0).unwrap_or(0);
            self.on_cpu_largest[largest] += 1;
        }
    }

    /// Logs the phases of the long iterations (at exit, when on).
    pub(super) fn log(&self) {
        if !self.enabled {
            return;
        }
        let line = render(&self.total);
        log::info!(
            "reactor: phases of the {} iterations over 2 ms (total/max us/laps):{line}; \
             {} of them over 2 ms on the CPU (the most {} us), {} us waiting for a CPU in all",
            self.long,
            self.on_cpu_over_2ms,
            self.most_on_cpu.as_micros(),
            self.waited.as_micros()
        );
        let largest: String = PHASES
            .iter()
            .zip(self.on_cpu_largest)
            .filter(|(_, n)| *n > 0)
            .map(|((_, name), n)| format!(" {name}={n}"))
            .collect();
        log::info!(
            "reactor: phases of the {} iterations over 2 ms on the CPU (total/max us/laps):{}; \
             the largest phase in them:{largest}",
            self.on_cpu_over_2ms,
            render(&self.on_cpu_total)
        );
    }
}

/// Adds one iteration's phase times to `totals`.
fn add(totals: &mut [(Duration, Duration, u64); N], current: &[(Duration, u32); N]) {
    for (total, (d, n)) in totals.iter_mut().zip(current) {
        total.0 += *d;
        total.1 = total.1.max(*d);
        total.2 += u64::from(*n);
    }
}

/// ` name=total/maxus/laps` per phase.
fn render(totals: &[(Duration, Duration, u64); N]) -> String {
    let mut line = String::new();
    for ((_, name), (total, max, laps)) in PHASES.iter().zip(totals) {
        line.push_str(&format!(
            " {name}={}/{}us/{laps}",
            total.as_micros(),
            max.as_micros()
        ));
    }
    line
}
