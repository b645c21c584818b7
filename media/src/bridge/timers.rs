//! The bridge's timers: its legs' (ICE, DTLS, RTCP reports) and the inactivity watches.

use std::time::{Duration, Instant};

use super::{push_bounded, Bridge, BridgeEvent, MediaLeg, Negotiation};
use crate::error::BridgeError;

/// Inactivity watch of one leg.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct InactivityWatch {
    pub(super) armed_at: Option<Instant>,
    pub(super) last_rx: Option<Instant>,
    pub(super) reported: bool,
}

impl InactivityWatch {
    pub(super) fn deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.reported {
            return None;
        }
        let since = match (self.armed_at, self.last_rx) {
            (Some(a), Some(r)) => a.max(r),
            (Some(a), None) => a,
            _ => return None,
        };
        Some(since + timeout)
    }

    pub(super) fn on_packet(&mut self, now: Instant) {
        self.last_rx = Some(now);
        self.reported = false;
    }
}

impl Bridge {
    /// Advance timers: the WebRTC leg's, the RTP legs' (RTCP reports, inactivity), the WebRTC
    /// inactivity watch. Call when [`Bridge::poll_output`]'s timeout is due; early calls are
    /// harmless.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), BridgeError> {
        if matches!(self.negotiation, Negotiation::Closed) {
            return Ok(());
        }
        if let Some(engine) = self.webrtc.as_mut() {
            if engine.poll_timeout().is_some_and(|t| t <= now) {
                if let Err(e) = engine.handle_timeout(now) {
                    log::debug!("WebRTC leg timeout: {e}");
                }
            }
        }
        for stream in self.fwd.sip.iter_mut().flatten() {
            if stream.leg.poll_timeout().is_some_and(|t| t <= now) {
                stream.leg.handle_timeout(now);
            }
        }
        self.drain_webrtc(now);
        let timeout = self.config.inactivity_timeout;
        if self
            .fwd
            .webrtc_watch
            .deadline(timeout)
            .is_some_and(|d| d <= now)
        {
            self.fwd.webrtc_watch.reported = true;
            push_bounded(
                &mut self.events,
                BridgeEvent::RtpInactive {
                    leg: MediaLeg::Webrtc,
                },
            );
        }
        Ok(())
    }

    /// When [`Bridge::handle_timeout`] must be called next; `None` = no timer (closed).
    pub(super) fn next_deadline(&mut self) -> Option<Instant> {
        if matches!(self.negotiation, Negotiation::Closed) {
            return None;
        }
        let timeout = self.config.inactivity_timeout;
        let engine = self.webrtc.as_mut().and_then(|e| e.poll_timeout());
        let legs = self
            .fwd
            .sip
            .iter()
            .flatten()
            .filter_map(|s| s.leg.poll_timeout());
        engine
            .into_iter()
            .chain(legs)
            .chain(self.fwd.webrtc_watch.deadline(timeout))
            .min()
    }
}
