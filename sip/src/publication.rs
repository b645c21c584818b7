//! Event state publication (RFC 3903, PUBLISH) as a sans-IO state machine: the account's
//! presence document goes to its presence server, is refreshed with `SIP-If-Match` before
//! it expires (section 4.4), replaced by a new body (section 4.5) and removed with Expires 0
//! (section 4.6). Each PUBLISH is a [`ClientRequest`] of the stack (RFC 3263 location,
//! digest from the HA1, fail-over), sent to the account's own address.
//!
//! A 412 Conditional Request Failed (the server lost our entity-tag, e.g. after a restart)
//! publishes the whole state again; a 423 raises the expiry; other failures that may heal
//! (timeouts, 5xx) retry with jittered doubling backoff.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use engine::Rng;

use super::auth::Ha1;
use super::msg::Method;
use super::request::{ClientRequest, RequestConfig, RequestError, RequestOutcome};
use super::stack::AccountIdentity;
use super::subscription::{RETRY_BASE, RETRY_MAX};

/// Identifies a publication for its lifetime; never confused with a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PubId {
    pub(crate) key: usize,
    pub(crate) serial: u64,
}

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishParams {
    /// The event package (`presence`).
    pub event: &'static str,
    /// The body's Content-Type (`application/pidf+xml`).
    pub content_type: String,
    /// The event state.
    pub body: Vec<u8>,
    /// Requested lifetime in seconds.
    pub expires: u32,
}

/// What the gateway hears about a publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicationStatus {
    /// The server holds our state for `expires` seconds.
    Published {
        /// Granted lifetime.
        expires: u32,
    },
    /// A PUBLISH failed; the whole state is published again after `retry_in`.
    Retrying {
        /// What happened.
        cause: RequestOutcome,
        /// The delay drawn.
        retry_in: Duration,
    },
    /// The server refused for good (403, 489, ...); `PublicationFinished` follows.
    Failed(RequestOutcome),
}

/// What the publication asks its stack to do.
#[derive(Debug)]
pub enum PubAction {
    /// Run this PUBLISH; report its end with [`Publication::handle_outcome`].
    Send(Box<ClientRequest>),
    /// Tell the gateway.
    Report(PublicationStatus),
    /// Nothing more: forget the publication.
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Refresh,
    Retry,
}

/// One publication of one account's event state.
#[derive(Debug)]
pub struct Publication {
    identity: AccountIdentity,
    user_agent: String,
    params: PublishParams,
    /// The server's entity-tag for our state (`SIP-ETag`).
    etag: Option<String>,
    /// A new body asked for while a PUBLISH was in flight.
    pending_body: bool,
    in_flight: bool,
    /// The PUBLISH in flight removes the state.
    removing: bool,
    timer: Option<(Instant, Timer)>,
    failures: u32,
    too_brief: u8,
    stopping: bool,
    done: bool,
    actions: VecDeque<PubAction>,
}

impl Publication {
    /// A publication for `identity` (not started).
    pub fn new(
        identity: &AccountIdentity,
        user_agent: String,
        params: PublishParams,
    ) -> Publication {
        Publication {
            identity: identity.clone(),
            user_agent,
            params,
            etag: None,
            pending_body: false,
            in_flight: false,
            removing: false,
            timer: None,
            failures: 0,
            too_brief: 0,
            stopping: false,
            done: false,
            actions: VecDeque::new(),
        }
    }

    /// The next thing for the stack to do.
    pub fn poll_action(&mut self) -> Option<PubAction> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.map(|(at, _)| at)
    }

    /// Whether the server holds our state now.
    pub fn is_published(&self) -> bool {
        self.etag.is_some()
    }

    /// Publishes the initial state.
    pub fn start(&mut self, rng: &mut Rng) -> Result<(), RequestError> {
        self.send(rng, true)
    }

    /// Replaces the state with `body` (section 4.5).
    pub fn modify(&mut self, body: Vec<u8>, rng: &mut Rng) {
        if self.done || self.stopping {
            return;
        }
        self.params.body = body;
        if self.in_flight {
            self.pending_body = true;
        } else {
            let _ = self.send(rng, true);
        }
    }

    /// Removes the state (section 4.6), then [`PubAction::Finished`].
    pub fn stop(&mut self, rng: &mut Rng) {
        if self.done || self.stopping {
            return;
        }
        self.stopping = true;
        self.timer = None;
        if self.in_flight {
            return;
        }
        if self.etag.is_some() {
            self.remove(rng);
        } else {
            self.finish();
        }
    }

    /// A timer is due.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut Rng) {
        let Some((at, timer)) = self.timer else {
            return;
        };
        if at > now || self.done || self.in_flight {
            return;
        }
        self.timer = None;
        let _ = match timer {
            // Section 4.4: a refresh carries the entity-tag and no body.
            Timer::Refresh if self.etag.is_some() => self.send(rng, false),
            Timer::Refresh | Timer::Retry => self.send(rng, true),
        };
    }

    /// A PUBLISH ended.
    pub fn handle_outcome(&mut self, now: Instant, outcome: RequestOutcome, rng: &mut Rng) {
        if !self.in_flight {
            return;
        }
        self.in_flight = false;
        if std::mem::take(&mut self.removing) {
            self.etag = None;
            return self.finish();
        }
        if let Some(r) = outcome.response().filter(|_| outcome.is_success()) {
            self.etag = r.header("SIP-ETag").map(|t| t.trim().to_owned());
            let granted = r.expires().unwrap_or(self.params.expires);
            self.failures = 0;
            self.too_brief = 0;
            if self.stopping {
                return self.remove(rng);
            }
            if std::mem::take(&mut self.pending_body) {
                let _ = self.send(rng, true);
                return;
            }
            let s = Duration::from_secs(u64::from(granted.max(2)));
            let refresh = if granted > 240 {
                s - Duration::from_secs(60)
            } else {
                s / 2
            };
            self.timer = Some((now + refresh, Timer::Refresh));
            self.actions
                .push_back(PubAction::Report(PublicationStatus::Published {
                    expires: granted,
                }));
            return;
        }
        let code = outcome.code();
        if self.stopping {
            return self.finish();
        }
        if code == 412 && self.etag.is_some() {
            // Section 4.4/4.5: the entity-tag is unknown there; publish the whole state.
            self.etag = None;
            let _ = self.send(rng, true);
            return;
        }
        if let Some(min) = outcome.response().and_then(|r| r.min_expires()) {
            if code == 423 && self.too_brief < 2 && min > self.params.expires {
                self.too_brief += 1;
                self.params.expires = min;
                let _ = self.send(rng, true);
                return;
            }
        }
        let retryable = match &outcome {
            RequestOutcome::Response(r) => {
                matches!(r.status(), 408 | 412 | 429 | 480 | 500 | 502..=599)
            }
            RequestOutcome::Unauthorized { .. } => false,
            _ => true,
        };
        self.etag = None;
        if retryable {
            self.failures += 1;
            let shift = (self.failures - 1).min(16);
            let full = RETRY_BASE.saturating_mul(1 << shift).min(RETRY_MAX);
            let ms = u32::try_from((full / 2).as_millis()).unwrap_or(u32::MAX);
            let delay = full / 2 + Duration::from_millis(u64::from(rng.below_or_equal(ms)));
            self.timer = Some((now + delay, Timer::Retry));
            self.actions
                .push_back(PubAction::Report(PublicationStatus::Retrying {
                    cause: outcome,
                    retry_in: delay,
                }));
        } else {
            self.actions
                .push_back(PubAction::Report(PublicationStatus::Failed(outcome)));
            self.finish();
        }
    }

    fn remove(&mut self, rng: &mut Rng) {
        self.removing = true;
        if self.send(rng, false).is_err() {
            self.removing = false;
            self.finish();
        }
    }

    /// One PUBLISH: with the body (initial or modify), or without (refresh, remove).
    fn send(&mut self, rng: &mut Rng, with_body: bool) -> Result<(), RequestError> {
        let expires = if self.removing {
            0
        } else {
            self.params.expires
        };
        let mut headers = vec![
            ("Event".to_owned(), self.params.event.to_owned()),
            ("Expires".to_owned(), expires.to_string()),
        ];
        if let Some(etag) = &self.etag {
            headers.push(("SIP-If-Match".to_owned(), etag.clone()));
        }
        let config = RequestConfig {
            method: Method::Publish,
            user: self.identity.user.clone(),
            domain: self.identity.domain.clone(),
            display_name: self.identity.display_name.clone(),
            user_agent: self.user_agent.clone(),
            target: format!("{}@{}", self.identity.user, self.identity.domain),
            call_id: format!("{}@sylk-gateway", rng.token(20)),
            from_tag: rng.token(10),
            headers,
            body: (with_body || self.etag.is_none())
                .then(|| (self.params.content_type.clone(), self.params.body.clone())),
        };
        let ha1: Ha1 = self.identity.ha1.clone();
        let request = ClientRequest::new(config, ha1)?;
        self.in_flight = true;
        self.actions.push_back(PubAction::Send(Box::new(request)));
        Ok(())
    }

    fn finish(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.timer = None;
        self.actions.push_back(PubAction::Finished);
    }
}
