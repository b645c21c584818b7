//! The subscriber side of an RFC 6665 subscription (a SUBSCRIBE-created dialog) as a sans-IO
//! state machine, beside the INVITE dialogs of [`crate::call`]: presence (RFC 3856) of one
//! resource, or of a resource list (RFC 4662) through an RLS.
//!
//! Like a [`Registration`](crate::registration::Registration) it decides *what* to do
//! ([`SubAction`]) and the stack carries it out. Its requests are [`ClientRequest`]s, the
//! stack's non-INVITE client machinery: the initial SUBSCRIBE is located by RFC 3263 (or
//! the outbound proxy) with digest from the HA1 and fail-over; refreshes and the
//! un-SUBSCRIBE go inside the dialog with the credentials the initial one earned.
//!
//! - The dialog comes from the 2xx, or from a NOTIFY that overtook it (section 4.1.2.4).
//! - It refreshes before expiry (jittered, so subscriptions made together do not refresh
//!   together), raises its expiry on 423 (section 4.1.2.1 via RFC 3261's Min-Expires).
//! - A refresh answered 481, 408 or not at all, a transport failure, or a NOTIFY with
//!   `Subscription-State: terminated` ends the dialog; a new subscription (new Call-ID) is
//!   made after a delay drawn from the injected [`Rng`]: spread over [`IMMEDIATE_SPREAD`]
//!   for `deactivated`/`timeout`/481 (section 4.2.2: "retry immediately", which after a
//!   server restart would be a storm), `retry-after` or doubling backoff otherwise, never for
//!   `rejected`, `noresource` and `invariant`.
//! - [`Subscription::stop`] sends SUBSCRIBE with Expires 0 (section 4.1.2.3) and waits a
//!   moment for the final NOTIFY before finishing.

use std::collections::VecDeque;

use std::time::{Duration, Instant};

use engine::Rng;

use super::auth::{DigestClient, Ha1};
use super::call::{dialog_hop, Hop};
use super::dialog::Dialog;
use super::msg::{Method, NameAddr, Param, SipRequest, Uri};
use super::request::{ClientRequest, RequestConfig, RequestError, RequestOutcome};
use super::stack::AccountIdentity;
use super::txn::TxnId;

mod types;

pub use types::{
    EventPackage, SubAction, SubId, SubPhase, SubscribeParams, SubscriptionEnd, SubscriptionEvent,
    SubscriptionState, SubscriptionStatus, TerminationReason,
};

/// First retry delay after a failure; doubles per failure in a row up to [`RETRY_MAX`].
pub const RETRY_BASE: Duration = Duration::from_secs(5);
/// Longest retry delay.
pub const RETRY_MAX: Duration = Duration::from_secs(600);
/// Window over which "retry at once" is spread (section 4.2.2 `deactivated`/`timeout`, and
/// a 481 to a refresh: the notifier lost its state, as every subscriber of a restarted
/// server finds out at about the same time).
pub const IMMEDIATE_SPREAD: Duration = Duration::from_secs(10);
/// How long an un-SUBSCRIBE answered 2xx waits for the final NOTIFY (section 4.1.2.3).
pub const LINGER: Duration = Duration::from_secs(2);
/// How often a 423 may raise the requested expiry in a row (no loops).
const MAX_INTERVAL_TOO_BRIEF: u8 = 2;

/// Which of our requests is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InFlight {
    Initial,
    Refresh,
    Unsubscribe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Refresh,
    Retry,
    Linger,
}

/// One subscription (its successive dialogs, each a new Call-ID).
#[derive(Debug)]
pub struct Subscription {
    user: String,
    domain: String,
    display_name: Option<String>,
    user_agent: String,
    ha1: Ha1,
    target: String,
    package: EventPackage,
    /// The duration we ask for (raised by 423).
    expires: u32,
    contact_user: String,
    /// False with an outbound proxy: every request goes through it.
    route_by_dialog: bool,
    call_id: String,
    from_tag: String,
    /// Random base of our digest client nonces inside the dialog (never on the wire alone).
    cnonce_base: String,
    listening: bool,
    /// Boxed: a dialog is about 0.5 KiB, and the stack's slab holds every subscription
    /// inline, also those between dialogs (retrying) or before their first.
    dialog: Option<Box<Dialog>>,
    /// The hop of the initial SUBSCRIBE, where in-dialog requests fall back to.
    hop: Option<Hop>,
    /// Boxed for the same reason: only a challenged subscription has one.
    digest: Option<Box<DigestClient>>,
    phase: SubPhase,
    in_flight: Option<InFlight>,
    timer: Option<(Instant, Timer)>,
    failures: u32,
    too_brief: u8,
    stopping: bool,
    done: bool,
    actions: VecDeque<SubAction>,
}

impl Subscription {
    /// A subscription for `identity` (not started). Fails on a target that is not
    /// `user@domain[:port]`.
    pub fn new(
        identity: &AccountIdentity,
        user_agent: String,
        params: SubscribeParams,
        contact_user: String,
        route_by_dialog: bool,
    ) -> Result<Subscription, RequestError> {
        let target = params.target.trim();
        if !target.contains('@')
            || target.contains(['<', '>', ' ', ';', '?'])
            || Uri::parse(&format!("sip:{target}")).is_err()
        {
            return Err(RequestError::InvalidTarget(params.target));
        }
        Ok(Subscription {
            user: identity.user.clone(),
            domain: identity.domain.clone(),
            display_name: identity.display_name.clone(),
            user_agent,
            ha1: identity.ha1.clone(),
            target: target.to_owned(),
            package: params.package,
            expires: params.expires.max(1),
            contact_user,
            route_by_dialog,
            call_id: String::new(),
            from_tag: String::new(),
            cnonce_base: String::new(),
            listening: false,
            dialog: None,
            hop: None,
            digest: None,
            phase: SubPhase::Subscribing,
            in_flight: None,
            timer: None,
            failures: 0,
            too_brief: 0,
            stopping: false,
            done: false,
            actions: VecDeque::new(),
        })
    }

    /// The resource subscribed to.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The event package.
    pub fn package(&self) -> EventPackage {
        self.package
    }

    /// Where it is (metrics).
    pub fn phase(&self) -> SubPhase {
        self.phase
    }

    /// Our tag in the current dialog (the To tag NOTIFYs must carry).
    pub fn local_tag(&self) -> &str {
        &self.from_tag
    }

    /// The next thing for the stack to do.
    pub fn poll_action(&mut self) -> Option<SubAction> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.map(|(at, _)| at)
    }

    /// Sends the initial SUBSCRIBE.
    pub fn start(&mut self, rng: &mut Rng) {
        self.begin(rng);
    }

    /// Ends the subscription: SUBSCRIBE with Expires 0 when a dialog exists, then
    /// [`SubAction::Finished`].
    pub fn stop(&mut self) {
        if self.done || self.stopping {
            return;
        }
        self.stopping = true;
        self.phase = SubPhase::Unsubscribing;
        match self.in_flight {
            // Its outcome decides: a 2xx is followed by the un-SUBSCRIBE.
            Some(InFlight::Initial | InFlight::Refresh | InFlight::Unsubscribe) => {}
            None if self.dialog.is_some() => self.send_in_dialog(InFlight::Unsubscribe),
            None => self.finish(),
        }
    }

    /// A timer is due.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut Rng) {
        let Some((at, timer)) = self.timer else {
            return;
        };
        if at > now || self.done {
            return;
        }
        self.timer = None;
        match timer {
            Timer::Refresh if self.in_flight.is_none() => self.send_in_dialog(InFlight::Refresh),
            Timer::Refresh => {}
            Timer::Retry => self.begin(rng),
            Timer::Linger => self.finish(),
        }
    }

    /// One of our SUBSCRIBEs ended: `request` is the finished [`ClientRequest`] (its hop,
    /// digest state and last CSeq are kept).
    pub fn handle_outcome(
        &mut self,
        now: Instant,
        outcome: RequestOutcome,
        mut request: ClientRequest,
        rng: &mut Rng,
    ) {
        let Some(kind) = self.in_flight.take() else {
            return;
        };
        if let Some(d) = request.take_digest() {
            self.digest = Some(Box::new(d));
        }
        match kind {
            InFlight::Initial => self.initial_done(now, outcome, &request, rng),
            InFlight::Refresh => self.refresh_done(now, outcome, rng),
            InFlight::Unsubscribe => {
                if outcome.is_success() && self.dialog.is_some() {
                    self.timer = Some((now + LINGER, Timer::Linger));
                } else {
                    self.finish();
                }
            }
        }
    }

    /// A NOTIFY whose Call-ID is ours.
    pub fn handle_notify(&mut self, now: Instant, txn: TxnId, request: &SipRequest, rng: &mut Rng) {
        let respond = |status, reason| SubAction::Respond {
            txn,
            request: Box::new(request.clone()),
            status,
            reason,
        };
        if self.done || request.to().tag().as_deref() != Some(self.from_tag.as_str()) {
            self.actions
                .push_back(respond(481, "Subscription Does Not Exist"));
            return;
        }
        let event = request.header("Event").unwrap_or_default();
        let package = event.split(';').next().unwrap_or_default().trim();
        if !package.eq_ignore_ascii_case(self.package.event()) {
            self.actions.push_back(respond(489, "Bad Event"));
            return;
        }
        let Some(state) = request
            .header("Subscription-State")
            .and_then(SubscriptionState::parse)
        else {
            self.actions
                .push_back(respond(400, "Missing or Bad Subscription-State"));
            return;
        };
        let remote_tag = request.from().tag().unwrap_or_default();
        match self.dialog.as_mut() {
            Some(d) if d.key().remote_tag != remote_tag => {
                // A second dialog of a forked SUBSCRIBE: we keep the first one.
                self.actions
                    .push_back(respond(481, "Subscription Does Not Exist"));
                return;
            }
            Some(d) => {
                if d.accept_remote_cseq(request).is_err() {
                    self.actions.push_back(respond(500, "CSeq Out of Order"));
                    return;
                }
                // NOTIFY is a target refresh request (RFC 6665 section 4.1.3).
                d.refresh_target(request.contacts().as_slice().first());
            }
            None if matches!(
                self.in_flight,
                Some(InFlight::Initial | InFlight::Unsubscribe)
            ) =>
            {
                match self
                    .local()
                    .map(|local| Dialog::from_notify(local, 1, false, request))
                {
                    Some(Ok(d)) => self.dialog = Some(Box::new(d)),
                    _ => {
                        self.actions
                            .push_back(respond(400, "Missing Contact or From Tag"));
                        return;
                    }
                }
            }
            None => {
                self.actions
                    .push_back(respond(481, "Subscription Does Not Exist"));
                return;
            }
        }
        self.actions.push_back(SubAction::Notify {
            txn,
            request: Box::new(request.clone()),
            state: state.clone(),
        });
        self.apply_state(now, state, rng);
    }

    fn apply_state(&mut self, now: Instant, state: SubscriptionState, rng: &mut Rng) {
        match state {
            SubscriptionState::Active { expires } | SubscriptionState::Pending { expires } => {
                let phase = match state {
                    SubscriptionState::Active { .. } => SubPhase::Active,
                    _ => SubPhase::Pending,
                };
                if !self.stopping && self.phase != phase {
                    self.phase = phase;
                    self.actions.push_back(SubAction::Report(match phase {
                        SubPhase::Active => SubscriptionStatus::Active,
                        _ => SubscriptionStatus::Pending,
                    }));
                }
                // The notifier may shorten the subscription (section 4.1.3): refresh earlier.
                if let (Some(e), Some((at, Timer::Refresh))) = (expires, self.timer) {
                    let sooner = now + refresh_delay(e, rng);
                    if sooner < at {
                        self.timer = Some((sooner, Timer::Refresh));
                    }
                }
            }
            SubscriptionState::Terminated {
                reason,
                retry_after,
            } => {
                self.dialog = None;
                if self.stopping {
                    self.finish();
                    return;
                }
                // A request of the ended dialog still in flight is of no use now.
                self.in_flight = None;
                let cause = SubscriptionEnd::Notified(reason.clone());
                match reason {
                    Some(TerminationReason::Deactivated | TerminationReason::Timeout) => {
                        let delay = spread(rng, IMMEDIATE_SPREAD);
                        self.retry_in(now, delay, cause);
                    }
                    Some(
                        TerminationReason::Rejected
                        | TerminationReason::Noresource
                        | TerminationReason::Invariant,
                    ) => self.terminate(cause),
                    _ => {
                        let delay = match retry_after {
                            Some(s) => Duration::from_secs(u64::from(s)),
                            None => self.backoff(rng),
                        };
                        self.retry_in(now, delay, cause);
                    }
                }
            }
        }
    }

    fn initial_done(
        &mut self,
        now: Instant,
        outcome: RequestOutcome,
        request: &ClientRequest,
        rng: &mut Rng,
    ) {
        if outcome.is_success() {
            let Some(response) = outcome.response() else {
                return;
            };
            self.hop = request.last_hop().cloned();
            match self.dialog.as_mut() {
                Some(d) => d.raise_local_cseq(request.cseq()),
                None => {
                    let dialog = self.local().map(|local| {
                        Dialog::uac_parts(&self.call_id, local, request.cseq(), false, response)
                    });
                    match dialog {
                        Some(Ok(d)) => self.dialog = Some(Box::new(d)),
                        _ => return self.fail(now, SubscriptionEnd::NoDialog, rng),
                    }
                }
            }
            let granted = response.expires().unwrap_or(self.expires);
            let is_list = response.header("Require").is_some_and(|r| {
                r.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("eventlist"))
            });
            if self.package == EventPackage::PresenceList && !is_list {
                self.actions
                    .push_back(SubAction::Report(SubscriptionStatus::NotAList));
            }
            self.granted(now, granted, rng);
            return;
        }
        if self.raise_on_423(&outcome) {
            if self.stopping {
                self.finish();
            } else {
                self.begin(rng);
            }
            return;
        }
        self.dialog = None;
        if self.stopping {
            self.finish();
        } else if retryable(&outcome) {
            self.fail(now, SubscriptionEnd::Failed(outcome), rng);
        } else {
            self.terminate(SubscriptionEnd::Failed(outcome));
        }
    }

    fn refresh_done(&mut self, now: Instant, outcome: RequestOutcome, rng: &mut Rng) {
        if outcome.is_success() {
            let granted = outcome
                .response()
                .and_then(|r| r.expires())
                .unwrap_or(self.expires);
            self.granted(now, granted, rng);
            return;
        }
        if self.raise_on_423(&outcome) && self.dialog.is_some() {
            if self.stopping {
                self.send_in_dialog(InFlight::Unsubscribe);
            } else {
                self.send_in_dialog(InFlight::Refresh);
            }
            return;
        }
        self.dialog = None;
        if self.stopping {
            self.finish();
            return;
        }
        if outcome.code() == 481 {
            // The notifier forgot us (a restart): everyone learns it at about the same time.
            let delay = spread(rng, IMMEDIATE_SPREAD);
            self.failures += 1;
            self.retry_in(now, delay, SubscriptionEnd::Failed(outcome));
        } else {
            self.fail(now, SubscriptionEnd::Failed(outcome), rng);
        }
    }

    /// A 2xx granted `seconds`.
    fn granted(&mut self, now: Instant, seconds: u32, rng: &mut Rng) {
        if self.stopping {
            self.send_in_dialog(InFlight::Unsubscribe);
            return;
        }
        if seconds == 0 {
            self.dialog = None;
            return self.fail(now, SubscriptionEnd::ZeroExpires, rng);
        }
        self.failures = 0;
        self.too_brief = 0;
        self.timer = Some((now + refresh_delay(seconds, rng), Timer::Refresh));
    }

    /// On a 423 with Min-Expires: raises the requested expiry; true when worth resending.
    fn raise_on_423(&mut self, outcome: &RequestOutcome) -> bool {
        let Some(min) = outcome.response().filter(|r| r.status() == 423) else {
            return false;
        };
        match min.min_expires() {
            Some(m) if self.too_brief < MAX_INTERVAL_TOO_BRIEF && m > self.expires => {
                self.too_brief += 1;
                self.expires = m;
                true
            }
            _ => false,
        }
    }

    /// A new subscription: fresh Call-ID and tag, the initial SUBSCRIBE out of dialog.
    fn begin(&mut self, rng: &mut Rng) {
        if self.listening {
            self.actions
                .push_back(SubAction::Unlisten(std::mem::take(&mut self.call_id)));
        }
        self.call_id = format!("{}@sylk-gateway", rng.token(20));
        self.from_tag = rng.token(10);
        self.cnonce_base = rng.token(12);
        self.dialog = None;
        self.phase = SubPhase::Subscribing;
        let mut headers = self.headers(self.expires);
        headers.retain(|(n, _)| n != "User-Agent");
        let config = RequestConfig {
            method: Method::Subscribe,
            user: self.user.clone(),
            domain: self.domain.clone(),
            display_name: self.display_name.clone(),
            user_agent: self.user_agent.clone(),
            target: self.target.clone(),
            call_id: self.call_id.clone(),
            from_tag: self.from_tag.clone(),
            headers,
            body: None,
        };
        match ClientRequest::new(config, self.ha1.clone()) {
            Ok(r) => {
                self.actions
                    .push_back(SubAction::Listen(self.call_id.clone()));
                self.listening = true;
                self.in_flight = Some(InFlight::Initial);
                self.actions.push_back(SubAction::Send(Box::new(
                    r.with_contact(self.contact_user.clone()),
                )));
            }
            Err(e) => self.terminate(SubscriptionEnd::Invalid(e)),
        }
    }

    /// The SUBSCRIBE inside the dialog: a refresh, or the un-SUBSCRIBE (Expires 0).
    fn send_in_dialog(&mut self, kind: InFlight) {
        let expires = if kind == InFlight::Unsubscribe {
            0
        } else {
            self.expires
        };
        let headers = self.headers(expires);
        let Some(dialog) = self.dialog.as_mut() else {
            return self.finish();
        };
        let Some(hop) = dialog_hop(dialog, self.hop.clone(), self.route_by_dialog) else {
            self.dialog = None;
            return self.finish();
        };
        let mut request = dialog.request(Method::Subscribe);
        request.headers.extend(headers);
        self.in_flight = Some(kind);
        self.actions
            .push_back(SubAction::Send(Box::new(ClientRequest::in_dialog_with(
                request,
                hop,
                self.digest.take().map(|d| *d),
                Some(self.contact_user.clone()),
                self.cnonce_base.clone(),
            ))));
    }

    fn headers(&self, expires: u32) -> Vec<(String, String)> {
        let mut h = vec![
            ("User-Agent".to_owned(), self.user_agent.clone()),
            ("Event".to_owned(), self.package.event().to_owned()),
            ("Accept".to_owned(), self.package.accept().to_owned()),
        ];
        if self.package == EventPackage::PresenceList {
            h.push(("Supported".to_owned(), "eventlist".to_owned()));
        }
        h.push(("Expires".to_owned(), expires.to_string()));
        h
    }

    /// Our From (with our tag) as the initial SUBSCRIBE carried it (`None` only when the
    /// account's address does not parse, and then no SUBSCRIBE was sent).
    fn local(&self) -> Option<NameAddr> {
        let uri = Uri::parse(&format!("sip:{}@{}", self.user, self.domain)).ok()?;
        let mut from = NameAddr::new(uri);
        from.display_name = self.display_name.clone();
        Some(from.with_param(Param::raw("tag", Some(&self.from_tag))))
    }

    /// A failure worth retrying with backoff.
    fn fail(&mut self, now: Instant, cause: SubscriptionEnd, rng: &mut Rng) {
        self.failures += 1;
        let delay = self.backoff(rng);
        self.retry_in(now, delay, cause);
    }

    fn backoff(&self, rng: &mut Rng) -> Duration {
        let shift = self.failures.saturating_sub(1).min(16);
        let full = RETRY_BASE.saturating_mul(1 << shift).min(RETRY_MAX);
        full / 2 + spread(rng, full / 2)
    }

    fn retry_in(&mut self, now: Instant, delay: Duration, cause: SubscriptionEnd) {
        self.phase = SubPhase::Retrying;
        self.timer = Some((now + delay, Timer::Retry));
        self.actions
            .push_back(SubAction::Report(SubscriptionStatus::Retrying {
                cause,
                retry_in: delay,
            }));
    }

    fn terminate(&mut self, cause: SubscriptionEnd) {
        self.actions
            .push_back(SubAction::Report(SubscriptionStatus::Terminated(cause)));
        self.finish();
    }

    fn finish(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.timer = None;
        self.dialog = None;
        if self.listening {
            self.listening = false;
            self.actions
                .push_back(SubAction::Unlisten(std::mem::take(&mut self.call_id)));
        }
        self.actions.push_back(SubAction::Finished);
    }
}

/// Worth a new subscription after backoff: no answer, a transport or DNS failure, 408, 429,
/// 480 and 5xx but 501; other failures are the notifier's definite answer (403, 404, 489,
/// 6xx, unanswerable challenges).
fn retryable(outcome: &RequestOutcome) -> bool {
    match outcome {
        RequestOutcome::Response(r) => matches!(r.status(), 408 | 429 | 480 | 500 | 502..=599),
        RequestOutcome::Unauthorized { .. } => false,
        _ => true,
    }
}

/// When to refresh a subscription granted `seconds`: a minute or more before expiry for
/// long ones, around half-way for short ones, jittered (section 4.1.2.2 leaves the time to
/// the subscriber; subscriptions made in a burst must not refresh in one).
fn refresh_delay(seconds: u32, rng: &mut Rng) -> Duration {
    let s = Duration::from_secs(u64::from(seconds));
    let (lo, hi) = if seconds > 240 {
        (s.mul_f32(0.75), s.saturating_sub(Duration::from_secs(60)))
    } else {
        (s.mul_f32(0.45), s.mul_f32(0.55))
    };
    let lo = lo.max(Duration::from_secs(1));
    lo + spread(rng, hi.saturating_sub(lo))
}

/// A uniform draw in `0..=window` (millisecond steps).
fn spread(rng: &mut Rng, window: Duration) -> Duration {
    let ms = u32::try_from(window.as_millis()).unwrap_or(u32::MAX);
    Duration::from_millis(u64::from(rng.below_or_equal(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_delays_are_jittered_inside_their_window() {
        let mut rng = Rng::seed_from_u64(5);
        let long: Vec<Duration> = (0..50).map(|_| refresh_delay(3600, &mut rng)).collect();
        assert!(long
            .iter()
            .all(|d| *d >= Duration::from_secs(2700) && *d <= Duration::from_secs(3540)));
        assert!(long.iter().any(|d| *d != long[0]), "jittered");
        let short: Vec<Duration> = (0..50).map(|_| refresh_delay(20, &mut rng)).collect();
        assert!(short
            .iter()
            .all(|d| *d >= Duration::from_secs(9) && *d <= Duration::from_secs(11)));
    }
}
