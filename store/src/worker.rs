//! The store's worker thread: the one thread besides the reactor.
//!
//! The reactor [`submit`](StoreWorker::submit)s requests without blocking: a bounded
//! number may be outstanding (queued, running, or finished but not yet collected), and one
//! more is refused with [`StoreError::QueueFull`] for the caller to report. The worker takes
//! everything queued, runs it as one batch (one transaction), sends the results back and
//! calls the notifier once per batch; the reactor's notifier is a `mio::Waker`, after which
//! it collects with [`poll_result`](StoreWorker::poll_result).

use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;

use crate::{MessageStore, StoreError, StoreRequest, StoreResult};

/// Identifies a submitted request; its result comes back with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreTicket(pub u64);

/// Most requests one batch (transaction) takes.
const MAX_BATCH: usize = 512;

type Job = (StoreTicket, StoreRequest);
type Done = (StoreTicket, Result<StoreResult, StoreError>);

/// The handle the reactor thread holds.
pub struct StoreWorker {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    capacity: usize,
    outstanding: usize,
    /// The last ticket handed out (tickets are consecutive from 1).
    next_ticket: u64,
    /// The last ticket whose result was collected.
    collected: u64,
    /// The worker thread is known to have ended.
    gone: bool,
}

/// The worker's end of the results: sends them, wakes the reactor, and on the way out (a
/// normal end or a panic unwinding) closes the channel before one last wake-up, so the
/// reactor sees the disconnection when it looks.
struct Link {
    outbox: Option<Sender<Done>>,
    notify: Box<dyn Fn() + Send>,
}

impl Link {
    /// Sends a batch's results and wakes the reactor; false when the reactor is gone.
    fn send(&mut self, done: impl Iterator<Item = Done>) -> bool {
        let Some(outbox) = self.outbox.as_ref() else {
            return false;
        };
        for d in done {
            if outbox.send(d).is_err() {
                return false;
            }
        }
        (self.notify)();
        true
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.outbox = None;
        (self.notify)();
    }
}

impl std::fmt::Debug for StoreWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWorker")
            .field("capacity", &self.capacity)
            .field("outstanding", &self.outstanding)
            .finish()
    }
}

impl StoreWorker {
    /// Starts the worker thread over `store`; at most `capacity` requests are outstanding.
    /// `notify` is called on the worker thread after each batch's results are sent, and
    /// once more if the thread ends for any reason (a panic included), so the reactor learns
    /// of a dead worker through [`poll_result`](Self::poll_result) instead of waiting.
    pub fn spawn(
        mut store: Box<dyn MessageStore>,
        capacity: usize,
        notify: Box<dyn Fn() + Send>,
    ) -> std::io::Result<StoreWorker> {
        let capacity = capacity.max(1);
        let (jobs, inbox) = mpsc::sync_channel::<Job>(capacity);
        let (outbox, results) = mpsc::channel::<Done>();
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                let mut link = Link {
                    outbox: Some(outbox),
                    notify,
                };
                // Ends when the reactor drops its sender (shutdown), or by a panic in the
                // backend: either way `link`'s drop closes the results and wakes the reactor.
                while let Ok(first) = inbox.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match inbox.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let (tickets, requests): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    let results = store.execute_batch(requests);
                    if !link.send(tickets.into_iter().zip(results)) {
                        return;
                    }
                }
            })?;
        Ok(StoreWorker {
            jobs: Some(jobs),
            results,
            thread: Some(thread),
            capacity,
            outstanding: 0,
            next_ticket: 0,
            collected: 0,
            gone: false,
        })
    }

    /// Queues `request` without blocking; its result comes back with the ticket.
    pub fn submit(&mut self, request: StoreRequest) -> Result<StoreTicket, StoreError> {
        if self.gone {
            return Err(StoreError::Unavailable);
        }
        if self.outstanding >= self.capacity {
            return Err(StoreError::QueueFull);
        }
        let jobs = self.jobs.as_ref().ok_or(StoreError::Unavailable)?;
        let ticket = StoreTicket(self.next_ticket + 1);
        match jobs.try_send((ticket, request)) {
            Ok(()) => {
                self.next_ticket = ticket.0;
                self.outstanding += 1;
                Ok(ticket)
            }
            Err(TrySendError::Full(_)) => Err(StoreError::QueueFull),
            Err(TrySendError::Disconnected(_)) => {
                self.gone = true;
                Err(StoreError::Unavailable)
            }
        }
    }

    /// A finished request, if any (call after the notifier fired, until `None`). Once the
    /// worker is gone (it panicked, or [`finish`](Self::finish) ran), every request still
    /// outstanding comes back as [`StoreError::Unavailable`], in order: nothing submitted
    /// is left waiting.
    pub fn poll_result(&mut self) -> Option<(StoreTicket, Result<StoreResult, StoreError>)> {
        let done = match self.results.try_recv() {
            Ok(done) => done,
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Disconnected) => {
                self.gone = true;
                if self.outstanding == 0 {
                    return None;
                }
                // The worker answers in submission order and tickets are consecutive, so
                // the lost ones are exactly those after the last collected.
                (
                    StoreTicket(self.collected + 1),
                    Err(StoreError::Unavailable),
                )
            }
        };
        self.outstanding -= 1;
        self.collected = done.0 .0;
        Some(done)
    }

    /// False once the worker thread has ended (a panic in the backend, or shutdown).
    pub fn is_alive(&self) -> bool {
        !self.gone && self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// The most requests that may be outstanding.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Requests submitted and not yet collected.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Waits until every submitted request has run (shutdown, tests): blocks the caller.
    pub fn finish(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for StoreWorker {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A store that blocks until told, to fill the queue deterministically.
    struct Gate(Arc<std::sync::Mutex<()>>);

    impl MessageStore for Gate {
        fn execute_batch(
            &mut self,
            requests: Vec<StoreRequest>,
        ) -> Vec<Result<StoreResult, StoreError>> {
            let _held = self.0.lock().unwrap();
            requests
                .iter()
                .map(|_| Ok(StoreResult::Changed(0)))
                .collect()
        }
    }

    fn wait_results(
        w: &mut StoreWorker,
        n: usize,
    ) -> Vec<(StoreTicket, Result<StoreResult, StoreError>)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut out = Vec::new();
        while out.len() < n {
            match w.poll_result() {
                Some(r) => out.push(r),
                None if Instant::now() > deadline => panic!("results missing"),
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        out
    }

    #[test]
    fn results_come_back_with_their_tickets_and_the_notifier_fires() {
        let fired = Arc::new(AtomicUsize::new(0));
        let f = Arc::clone(&fired);
        let store = SqliteStore::open(":memory:").unwrap();
        let mut w = StoreWorker::spawn(
            Box::new(store),
            8,
            Box::new(move || {
                f.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
        let t1 = w
            .submit(StoreRequest::LookupPublicKey { uri: "a@b".into() })
            .unwrap();
        let t2 = w.submit(StoreRequest::Expire { before_ms: 0 }).unwrap();
        let got = wait_results(&mut w, 2);
        assert_eq!(got[0], (t1, Ok(StoreResult::PublicKey(None))));
        assert_eq!(got[1], (t2, Ok(StoreResult::Changed(0))));
        assert!(fired.load(Ordering::SeqCst) >= 1);
        assert_eq!(w.outstanding(), 0);
    }

    #[test]
    fn a_full_queue_is_an_error_not_a_wait() {
        let gate = Arc::new(std::sync::Mutex::new(()));
        let held = gate.lock().unwrap();
        let mut w =
            StoreWorker::spawn(Box::new(Gate(Arc::clone(&gate))), 3, Box::new(|| {})).unwrap();
        for _ in 0..3 {
            w.submit(StoreRequest::Expire { before_ms: 0 }).unwrap();
        }
        assert_eq!(
            w.submit(StoreRequest::Expire { before_ms: 0 }),
            Err(StoreError::QueueFull)
        );
        drop(held);
        wait_results(&mut w, 3);
        assert!(w.submit(StoreRequest::Expire { before_ms: 0 }).is_ok());
        w.finish();
        assert_eq!(
            w.submit(StoreRequest::Expire { before_ms: 0 }),
            Err(StoreError::Unavailable)
        );
    }

    /// A backend that panics on its second batch.
    struct Fragile(usize);

    impl MessageStore for Fragile {
        fn execute_batch(
            &mut self,
            requests: Vec<StoreRequest>,
        ) -> Vec<Result<StoreResult, StoreError>> {
            self.0 += 1;
            assert!(self.0 < 2, "backend failure (deliberate, in a test)");
            requests
                .iter()
                .map(|_| Ok(StoreResult::Changed(0)))
                .collect()
        }
    }

    #[test]
    fn a_dead_worker_fails_what_it_held_and_wakes_the_reactor() {
        let fired = Arc::new(AtomicUsize::new(0));
        let f = Arc::clone(&fired);
        let mut w = StoreWorker::spawn(
            Box::new(Fragile(0)),
            8,
            Box::new(move || {
                f.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
        let t1 = w.submit(StoreRequest::Expire { before_ms: 0 }).unwrap();
        assert_eq!(
            wait_results(&mut w, 1),
            vec![(t1, Ok(StoreResult::Changed(0)))]
        );
        assert!(w.is_alive());
        let woken = fired.load(Ordering::SeqCst);
        // The second batch panics: both requests in it come back failed, in order.
        let t2 = w.submit(StoreRequest::Expire { before_ms: 0 }).unwrap();
        let t3 = w.submit(StoreRequest::Expire { before_ms: 1 }).ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        while fired.load(Ordering::SeqCst) == woken {
            assert!(Instant::now() < deadline, "no wake-up from the dead worker");
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut got = Vec::new();
        while let Some(r) = w.poll_result() {
            got.push(r);
        }
        let mut want = vec![(t2, Err(StoreError::Unavailable))];
        if let Some(t3) = t3 {
            want.push((t3, Err(StoreError::Unavailable)));
        }
        assert_eq!(got, want);
        assert_eq!(w.outstanding(), 0);
        assert!(!w.is_alive());
        assert_eq!(
            w.submit(StoreRequest::Expire { before_ms: 0 }),
            Err(StoreError::Unavailable)
        );
    }
}
