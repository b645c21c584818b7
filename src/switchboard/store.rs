//! The message store as the switchboard holds it: the worker thread's handle, or nothing
//! (then every request fails with [`StoreError::Unavailable`], which the gateway reports).
//!
//! Besides passing requests through, it keeps what operations need: how long requests take
//! from submission to collection (queue wait included), how many are outstanding, and
//! whether the store is usable at all. A worker thread that died (a panic in the backend)
//! is noticed on the next collection: what it held fails with `Unavailable`, so nobody waits
//! for an answer that will never come, and `/ready` says so. A failing database (disk full,
//! PostgreSQL down or read-only) shows in `/ready` until a request succeeds again; a
//! [`StoreRequest::Probe`] runs now and then so that readiness follows the database even
//! while no traffic does (and so it recovers by itself).
//!
//! A worker that is alive but stuck (a query waiting on a lock, a database that stopped
//! answering without closing the connection) is caught by a watchdog: when the oldest
//! outstanding request has waited [`STALLED_AFTER`], the store is `Stalled` in `/ready` and
//! the metrics until results flow again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use engine::histogram::{Histogram, SLOW_BOUNDS_US};
use store::worker::{StoreTicket, StoreWorker};
use store::{StoreError, StoreRequest, StoreResult};

/// How often a healthy store is probed (a database that went away is noticed by `/ready`
/// within this, even with no messages flowing).
const PROBE_HEALTHY: Duration = Duration::from_secs(15);
/// How often a failing store is probed (how soon `/ready` recovers).
const PROBE_FAILING: Duration = Duration::from_secs(2);

/// How long the oldest outstanding request may wait before the store counts as stalled.
/// PostgreSQL statements time out after less (the backend sets `statement_timeout`), so a
/// stall means the thread itself or the connection hangs.
pub const STALLED_AFTER: Duration = Duration::from_secs(30);

/// What the store's requests came to, for the metrics endpoint.
#[derive(Debug, Clone)]
pub struct StoreStats {
    /// Submission to collection of each request, queue wait included.
    pub latency: Histogram,
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests the database failed.
    pub failed: u64,
    /// Requests refused because the queue was full.
    pub busy: u64,
    /// Requests refused or lost because the worker was gone.
    pub unavailable: u64,
    /// Times the watchdog found the storage thread stalled.
    pub stalls: u64,
}

impl Default for StoreStats {
    fn default() -> StoreStats {
        StoreStats {
            latency: Histogram::new(SLOW_BOUNDS_US),
            ok: 0,
            failed: 0,
            busy: 0,
            unavailable: 0,
            stalls: 0,
        }
    }
}

/// Why the store cannot take work now (`/ready`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreHealth {
    /// Requests succeed.
    Ready,
    /// The worker thread is gone: nothing will be stored until a restart.
    Down,
    /// The database fails requests (the last one, or the last probe).
    Failing,
    /// The queue is full.
    Busy,
    /// The oldest outstanding request has waited [`STALLED_AFTER`] or more: the worker hangs.
    Stalled,
}

/// The store's handle, lent to the gateway in [`Engines`](crate::gateway::Engines).
#[derive(Debug, Default)]
pub struct Store {
    worker: Option<StoreWorker>,
    /// The reactor iteration's `now`, set before the gateway is lent the store.
    now: Option<Instant>,
    /// When each outstanding request was submitted, in ticket order (the worker answers in
    /// that order). Bounded by the worker's capacity.
    submitted: VecDeque<(StoreTicket, Instant)>,
    /// The last result was a database failure.
    failing: bool,
    /// The watchdog fired and no result came since.
    stalled: bool,
    /// The probe in flight, if any (its result is kept here, not given to the gateway).
    probe: Option<StoreTicket>,
    next_probe: Option<Instant>,
    stats: StoreStats,
}

impl Store {
    /// A store backed by `worker`.
    pub fn new(worker: StoreWorker) -> Store {
        let capacity = worker.capacity();
        Store {
            worker: Some(worker),
            submitted: VecDeque::with_capacity(capacity),
            ..Store::default()
        }
    }

    /// The current iteration's instant (submission times and probe deadlines).
    pub(super) fn set_now(&mut self, now: Instant) {
        self.now = Some(now);
        if self.next_probe.is_none() && self.worker.is_some() {
            self.next_probe = Some(now + PROBE_HEALTHY);
        }
    }

    /// Queues `request` without blocking.
    pub fn submit(&mut self, request: StoreRequest) -> Result<StoreTicket, StoreError> {
        let result = match self.worker.as_mut() {
            Some(w) => w.submit(request),
            None => Err(StoreError::Unavailable),
        };
        match &result {
            Ok(ticket) => {
                if let Some(now) = self.now {
                    self.submitted.push_back((*ticket, now));
                }
            }
            Err(StoreError::QueueFull) => self.stats.busy += 1,
            Err(_) => self.stats.unavailable += 1,
        }
        result
    }

    /// A finished request for the gateway, if any (probe results stay here).
    pub fn poll_result(&mut self) -> Option<(StoreTicket, Result<StoreResult, StoreError>)> {
        loop {
            let (ticket, result) = self.worker.as_mut()?.poll_result()?;
            if self.stalled {
                log::info!("store: the storage thread answers again");
                self.stalled = false;
            }
            while let Some(&(t, at)) = self.submitted.front() {
                if t > ticket {
                    break;
                }
                self.submitted.pop_front();
                if t == ticket {
                    if let Some(now) = self.now {
                        self.stats
                            .latency
                            .observe(now.saturating_duration_since(at));
                    }
                }
            }
            match &result {
                Ok(_) => {
                    self.stats.ok += 1;
                    self.failing = false;
                }
                Err(StoreError::Database(e)) => {
                    self.stats.failed += 1;
                    if !self.failing {
                        log::warn!("store: the database fails requests: {e}");
                    }
                    self.failing = true;
                }
                Err(StoreError::Unavailable) => {
                    self.stats.unavailable += 1;
                    log::error!("store: the storage thread is gone, request {ticket:?} lost");
                }
                Err(_) => {}
            }
            if self.probe == Some(ticket) {
                self.probe = None;
                continue;
            }
            return Some((ticket, result));
        }
    }

    /// Requests submitted and not collected yet.
    pub fn outstanding(&self) -> usize {
        self.worker.as_ref().map_or(0, StoreWorker::outstanding)
    }

    /// Whether the store can take work now. Without a worker (a switchboard built without
    /// a store, as some tests do) there is nothing to be ready for: `Ready`.
    pub fn health(&self) -> StoreHealth {
        match &self.worker {
            None => StoreHealth::Ready,
            Some(w) if !w.is_alive() => StoreHealth::Down,
            Some(_) if self.stalled => StoreHealth::Stalled,
            Some(_) if self.failing => StoreHealth::Failing,
            Some(w) if w.outstanding() >= w.capacity() => StoreHealth::Busy,
            Some(_) => StoreHealth::Ready,
        }
    }

    /// The store's counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// How long the oldest outstanding request has waited at `now` (zero when none).
    pub fn oldest_wait(&self, now: Instant) -> Duration {
        self.submitted
            .front()
            .map_or(Duration::ZERO, |&(_, at)| now.saturating_duration_since(at))
    }

    /// When the watchdog looks next: the oldest outstanding request's [`STALLED_AFTER`],
    /// unless it fired already.
    fn stall_deadline(&self) -> Option<Instant> {
        if self.stalled {
            return None;
        }
        let alive = self.worker.as_ref().is_some_and(StoreWorker::is_alive);
        let &(_, at) = self.submitted.front().filter(|_| alive)?;
        Some(at + STALLED_AFTER)
    }

    /// When the next probe or watchdog check is due.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let probe = if self.probe.is_some() {
            None
        } else {
            self.next_probe
        };
        match (probe, self.stall_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the watchdog, and sends a probe when one is due.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        if self.stall_deadline().is_some_and(|t| t <= now) {
            self.stalled = true;
            self.stats.stalls += 1;
            log::error!(
                "store: the storage thread has not answered for {} s ({} request(s) waiting)",
                self.oldest_wait(now).as_secs(),
                self.outstanding()
            );
        }
        if self.probe.is_some() || self.next_probe.is_none_or(|t| t > now) {
            return;
        }
        let alive = self.worker.as_ref().is_some_and(StoreWorker::is_alive);
        if !alive {
            // A dead worker stays dead: nothing to probe (readiness says Down).
            self.next_probe = None;
            return;
        }
        self.next_probe = Some(
            now + if self.failing {
                PROBE_FAILING
            } else {
                PROBE_HEALTHY
            },
        );
        if let Ok(ticket) = self.submit(StoreRequest::Probe) {
            self.probe = Some(ticket);
        }
    }
}
