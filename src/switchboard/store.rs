//! The message store as the switchboard holds it: the worker thread's handle, or nothing
//! (then every request fails with [`StoreError::Unavailable`], which the gateway reports).

use store::worker::{StoreTicket, StoreWorker};
use store::{StoreError, StoreRequest, StoreResult};

/// The store's handle, lent to the gateway in [`Engines`](crate::gateway::Engines).
#[derive(Debug, Default)]
pub struct Store {
    worker: Option<StoreWorker>,
}

impl Store {
    /// A store backed by `worker`.
    pub fn new(worker: StoreWorker) -> Store {
        Store {
            worker: Some(worker),
        }
    }

    /// Queues `request` without blocking.
    pub fn submit(&mut self, request: StoreRequest) -> Result<StoreTicket, StoreError> {
        match self.worker.as_mut() {
            Some(w) => w.submit(request),
            None => Err(StoreError::Unavailable),
        }
    }

    /// A finished request, if any.
    pub fn poll_result(&mut self) -> Option<(StoreTicket, Result<StoreResult, StoreError>)> {
        self.worker.as_mut()?.poll_result()
    }

    /// Requests submitted and not collected yet.
    pub fn outstanding(&self) -> usize {
        self.worker.as_ref().map_or(0, StoreWorker::outstanding)
    }
}
