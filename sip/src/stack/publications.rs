//! The books of publications (RFC 3903, [`Publication`]): creating, changing and removing
//! them, and carrying out what each asks ([`PubAction`]) with the stack's client requests.

use std::time::Instant;

use super::{AccountIdentity, SipEvent, SipStack};
use crate::publication::{PubAction, PubId, Publication, PublishParams};
use crate::request::{RequestError, RequestId, RequestOutcome};

/// Most publications per stack.
pub const MAX_PUBLICATIONS: usize = 100_000;

/// A publication and what the stack filed for it.
#[derive(Debug)]
pub(super) struct PubEntry {
    publication: Publication,
    serial: u64,
    request: Option<RequestId>,
}

impl SipStack {
    /// Publishes `params` for `identity` to its own address (RFC 3903); refreshed until
    /// [`unpublish`](Self::unpublish). [`SipEvent::Publication`] events follow.
    pub fn publish(
        &mut self,
        now: Instant,
        identity: &AccountIdentity,
        params: PublishParams,
    ) -> Result<PubId, RequestError> {
        if self.publications.len() >= MAX_PUBLICATIONS {
            return Err(RequestError::TooManyRequests);
        }
        let user_agent = identity
            .user_agent
            .clone()
            .unwrap_or_else(|| self.config.user_agent.clone());
        let mut publication = Publication::new(identity, user_agent, params);
        publication.start(&mut self.rng)?;
        self.next_pub_serial += 1;
        let serial = self.next_pub_serial;
        let key = self.publications.insert(PubEntry {
            publication,
            serial,
            request: None,
        });
        let id = PubId { key, serial };
        self.dirty_pubs.push(id);
        self.drive(now);
        Ok(id)
    }

    /// Replaces a publication's state with `body` (RFC 3903 section 4.5).
    pub fn modify_publication(&mut self, now: Instant, id: PubId, body: Vec<u8>) {
        let rng = &mut self.rng;
        if let Some(e) = self
            .publications
            .get_mut(id.key)
            .filter(|e| e.serial == id.serial)
        {
            e.publication.modify(body, rng);
            self.dirty_pubs.push(id);
            self.drive(now);
        }
    }

    /// Removes a publication's state (Expires 0); [`SipEvent::PublicationFinished`] follows.
    pub fn unpublish(&mut self, now: Instant, id: PubId) {
        let rng = &mut self.rng;
        if let Some(e) = self
            .publications
            .get_mut(id.key)
            .filter(|e| e.serial == id.serial)
        {
            e.publication.stop(rng);
            self.dirty_pubs.push(id);
            self.drive(now);
        }
    }

    /// Number of live publications (leak checks).
    pub fn publication_count(&self) -> usize {
        self.publications.len()
    }

    /// A publication's PUBLISH finished.
    pub(super) fn publication_request_done(
        &mut self,
        now: Instant,
        id: PubId,
        request_id: RequestId,
        outcome: RequestOutcome,
    ) {
        let rng = &mut self.rng;
        let Some(e) = self
            .publications
            .get_mut(id.key)
            .filter(|e| e.serial == id.serial)
        else {
            return;
        };
        if e.request != Some(request_id) {
            return;
        }
        e.request = None;
        e.publication.handle_outcome(now, outcome, rng);
        self.dirty_pubs.push(id);
    }

    /// Runs due publication timers.
    pub(super) fn publication_timeouts(&mut self, now: Instant) {
        while let Some(id) = self.pub_deadlines.pop_due(now) {
            if let Some(e) = self
                .publications
                .get_mut(id.key)
                .filter(|e| e.serial == id.serial)
            {
                e.publication.handle_timeout(now, &mut self.rng);
                self.dirty_pubs.push(id);
            }
        }
    }

    /// Executes a publication's actions, then re-arms its timer.
    pub(super) fn run_publication(&mut self, id: PubId) {
        loop {
            let Some(e) = self
                .publications
                .get_mut(id.key)
                .filter(|e| e.serial == id.serial)
            else {
                return;
            };
            let Some(action) = e.publication.poll_action() else {
                let at = e.publication.poll_timeout();
                self.pub_deadlines.set(id, at);
                return;
            };
            match action {
                PubAction::Send(request) => {
                    let request_id =
                        self.insert_request_for(*request, super::RequestOwner::Publication(id));
                    if let Some(e) = self.publications.get_mut(id.key) {
                        e.request = Some(request_id);
                    }
                }
                PubAction::Report(status) => self.events.push_back(SipEvent::Publication {
                    publication: id,
                    status,
                }),
                PubAction::Finished => {
                    self.publications.remove(id.key);
                    self.pub_deadlines.cancel(id);
                    self.events
                        .push_back(SipEvent::PublicationFinished { publication: id });
                    return;
                }
            }
        }
    }
}
