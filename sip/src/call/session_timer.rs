//! RFC 4028 session timers, as refresher and as refreshee: the `Session-Expires` and `Min-SE`
//! of our INVITEs and of our 2xx answers, the refresh re-INVITE we send at half the interval
//! when we refresh, and the BYE when the peer that should refresh does not.
//!
//! Who refreshes is the `refresher` parameter of the 2xx (RFC 4028 section 7.1, 9): `uac` is
//! the side that sent the INVITE (or re-INVITE, or UPDATE) of that transaction, `uas` the side
//! that answered it. A refresh is a re-INVITE with the unchanged session (section 10).

use std::time::{Duration, Instant};

use super::local_offer::ReInvitePurpose;
use super::usage::DialogUsage;
use super::{CallEnd, CallEndCause};
use crate::msg::{SipRequest, SipResponse};

/// The smallest interval we accept and ask for (RFC 4028 section 4: Min-SE at least 90 s).
pub const MIN_SE: u32 = 90;

/// An interval in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ActiveTimer {
    /// The negotiated Session-Expires in seconds.
    interval: u32,
    /// We refresh (else the peer does, and we end the session if it does not).
    we_refresh: bool,
    /// When we refresh, or when we give up on the peer's refresh.
    due: Instant,
}

/// The session timer of one dialog.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct SessionTimer {
    /// The interval we ask for in our INVITEs and grant when the peer asks for none (0:
    /// we ask for none, but honour the peer's).
    pub(super) wanted: u32,
    pub(super) active: Option<ActiveTimer>,
}

/// Who refreshes, from a `refresher` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresher {
    Uac,
    Uas,
}

/// `Session-Expires: <delta>[;refresher=uac|uas]` (RFC 4028 section 4), also in its compact
/// form `x`; `None` when absent or unreadable.
pub(crate) fn session_expires(value: Option<&str>) -> Option<(u32, Option<Refresher>)> {
    let mut parts = value?.split(';');
    let delta = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("refresher") {
            return None;
        }
        match value.trim().to_ascii_lowercase().as_str() {
            "uac" => Some(Refresher::Uac),
            "uas" => Some(Refresher::Uas),
            _ => None,
        }
    });
    Some((delta, refresher))
}

fn header<'a>(headers: &'a crate::msg::Headers, name: &str, compact: &str) -> Option<&'a str> {
    headers.get(name).or_else(|| headers.get(compact))
}

/// Whether an option tag is listed in `Supported` (compact `k`) or `Require`.
pub(super) fn supports(headers: &crate::msg::Headers, tag: &str) -> bool {
    ["Supported", "k", "Require"].iter().any(|name| {
        headers
            .get_all(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(tag))
    })
}

/// What we answer to a request's session timer (RFC 4028 section 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TimerAnswer {
    /// Headers for the 2xx (empty: no session timer).
    Headers(Vec<(String, String)>),
    /// The interval is below our minimum: 422 with this Min-SE (section 9).
    TooSmall(u32),
}

impl ActiveTimer {
    fn new(now: Instant, interval: u32, we_refresh: bool) -> ActiveTimer {
        let secs = u64::from(interval);
        let due = if we_refresh {
            // Section 10: the refresher refreshes at half the interval.
            now + Duration::from_secs(secs / 2)
        } else {
            // Section 10: without a refresh, BYE "prior to the expiration, by the minimum of
            // 32 seconds and one third of the session interval".
            now + Duration::from_secs(secs - (secs / 3).min(32))
        };
        ActiveTimer {
            interval,
            we_refresh,
            due,
        }
    }
}

impl<S: Copy + PartialEq> DialogUsage<S> {
    /// The session timer headers of an INVITE or re-INVITE we send (beside `Supported`,
    /// which lists `timer` always): the interval in force (we stay the refresher if we are
    /// one) or the one we want.
    pub(super) fn session_timer_request_headers(&self) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        let (interval, refresher) = match self.session_timer.active {
            Some(a) => (a.interval, Some(if a.we_refresh { "uac" } else { "uas" })),
            None if self.session_timer.wanted > 0 => (self.session_timer.wanted, None),
            None => return headers,
        };
        let value = match refresher {
            Some(r) => format!("{interval};refresher={r}"),
            None => interval.to_string(),
        };
        headers.push(("Session-Expires".to_owned(), value));
        headers.push(("Min-SE".to_owned(), MIN_SE.to_string()));
        headers
    }

    /// The 2xx to our INVITE or re-INVITE: its `Session-Expires` is the interval, and
    /// `refresher=uac` makes us the refresher (section 7.2); none means no timer.
    pub(super) fn handle_session_timer_response(&mut self, now: Instant, response: &SipResponse) {
        self.session_timer.active =
            session_expires(header(response.headers(), "Session-Expires", "x")).map(
                |(interval, refresher)| {
                    let interval = interval.max(MIN_SE);
                    ActiveTimer::new(now, interval, refresher != Some(Refresher::Uas))
                },
            );
    }

    /// The interval and refresher we would grant `request` (section 9), `Ok(None)` for no
    /// session timer, `Err(min_se)` when its interval is below our minimum (422).
    fn session_timer_grant(&self, request: &SipRequest) -> Result<Option<(u32, Refresher)>, u32> {
        let asked = session_expires(header(request.headers(), "Session-Expires", "x"));
        let peer_supports = supports(request.headers(), "timer");
        Ok(Some(match asked {
            Some((interval, _)) if interval < MIN_SE => return Err(MIN_SE),
            // Section 9: the request's choice stands; without one, a UAC that supports
            // timers refreshes, otherwise we do.
            Some((interval, Some(r))) => (interval, r),
            Some((interval, None)) if peer_supports => (interval, Refresher::Uac),
            Some((interval, None)) => (interval, Refresher::Uas),
            None if peer_supports && self.session_timer.wanted > 0 => {
                (self.session_timer.wanted, Refresher::Uac)
            }
            None => return Ok(None),
        }))
    }

    /// Whether `request`'s session interval is acceptable: `Some(min_se)` for a 422 (section
    /// 9), before anything else is done with it.
    pub(super) fn session_interval_too_small(&self, request: &SipRequest) -> Option<u32> {
        self.session_timer_grant(request).err()
    }

    /// Our answer to the session timer of `request` (an INVITE, re-INVITE or UPDATE we are
    /// about to accept), and the timer from then on (section 9).
    pub(super) fn session_timer_answer(
        &mut self,
        now: Instant,
        request: &SipRequest,
    ) -> TimerAnswer {
        let (interval, refresher) = match self.session_timer_grant(request) {
            Err(min_se) => return TimerAnswer::TooSmall(min_se),
            Ok(Some(grant)) => grant,
            Ok(None) => {
                self.session_timer.active = None;
                return TimerAnswer::Headers(Vec::new());
            }
        };
        self.session_timer.active =
            Some(ActiveTimer::new(now, interval, refresher == Refresher::Uas));
        let name = match refresher {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        };
        let mut headers = vec![(
            "Session-Expires".to_owned(),
            format!("{interval};refresher={name}"),
        )];
        if refresher == Refresher::Uac {
            // Section 9: the UAC must then refresh, so it must support the extension.
            headers.push(("Require".to_owned(), "timer".to_owned()));
        }
        TimerAnswer::Headers(headers)
    }

    /// When the session timer wants [`handle_session_timer_timeout`](Self::handle_session_timer_timeout).
    pub(super) fn session_timer_deadline(&self) -> Option<Instant> {
        self.session_timer.active.map(|a| a.due)
    }

    /// Refreshes (a re-INVITE with the unchanged session), or ends a session the peer did
    /// not refresh with BYE (section 10).
    pub(super) fn handle_session_timer_timeout(&mut self, now: Instant) {
        let Some(active) = self.session_timer.active.filter(|a| now >= a.due) else {
            return;
        };
        if !active.we_refresh {
            log::info!("sip: session not refreshed in time (RFC 4028): BYE");
            self.session_timer.active = None;
            self.terminate(CallEnd::new(CallEndCause::SessionExpired));
            self.send_bye();
            self.finish();
            return;
        }
        let sdp = self.local_sdp.clone().unwrap_or_default();
        let retry = match self.start_reinvite(sdp, Vec::new(), ReInvitePurpose::Refresh) {
            // The 2xx re-arms the timer; until then, nothing more is due.
            Ok(()) => Duration::from_secs(u64::from(active.interval) / 2),
            // An INVITE transaction is in progress: try again shortly.
            Err(_) => Duration::from_secs(1),
        };
        if let Some(a) = self.session_timer.active.as_mut() {
            a.due = now + retry;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_expires_values() {
        assert_eq!(
            session_expires(Some("1800;refresher=uac")),
            Some((1800, Some(Refresher::Uac)))
        );
        assert_eq!(
            session_expires(Some("90 ; Refresher = UAS")),
            Some((90, Some(Refresher::Uas)))
        );
        assert_eq!(session_expires(Some("600")), Some((600, None)));
        assert_eq!(session_expires(Some("soon")), None);
        assert_eq!(session_expires(None), None);
    }

    #[test]
    fn refreshee_gives_up_before_expiry_and_refresher_refreshes_at_half() {
        let t = Instant::now();
        assert_eq!(
            ActiveTimer::new(t, 1800, true).due,
            t + Duration::from_secs(900)
        );
        assert_eq!(
            ActiveTimer::new(t, 1800, false).due,
            t + Duration::from_secs(1768)
        );
        assert_eq!(
            ActiveTimer::new(t, 90, false).due,
            t + Duration::from_secs(60)
        );
    }
}
