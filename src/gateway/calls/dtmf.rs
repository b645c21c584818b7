//! Key presses both ways (SylkServer HEAD's `session-dtmf-info`, our `dtmf` event).
//!
//! The browser's digits go out as SIP INFO with `application/dtmf-relay` (`Signal`,
//! `Duration`, the de-facto format of Cisco and most SIP phones), one INFO per digit and one
//! INFO transaction at a time per dialog, in order: sylkrtc.js 1.8 sends the application's
//! whole string in one request. The SIP side's INFO (`application/dtmf-relay` or
//! `application/dtmf`) and RFC 4733 events (reported by the bridge; the packets themselves
//! reach the browser as they are) become `dtmf` session events.

use std::collections::VecDeque;
use std::time::Instant;

use sip::msg::{Method, SipRequest};
use sip::request::{RequestId, RequestOutcome};
use sip::stack::IncomingRequestId;

use super::{CallKey, CallState};
use crate::gateway::{ClientId, Engines, Gateway, GatewayError};
use crate::sylkrtc::event::DtmfMethod;
use crate::sylkrtc::request::DtmfInfo;
use crate::sylkrtc::Event;

/// A tone's length when the client gives none (SylkServer's and sylkrtc.js's default).
pub(in crate::gateway) const DEFAULT_DTMF_MS: u32 = 100;

/// Digits waiting per call at most (each is one INFO transaction).
const MAX_WAITING: usize = 128;

/// The INFO queue of one call.
#[derive(Debug, Default)]
pub(in crate::gateway) struct DtmfQueue {
    waiting: VecDeque<(char, u32)>,
    in_flight: Option<RequestId>,
}

/// The key press an INFO body carries (`application/dtmf-relay`: `Signal=5` and
/// `Duration=160` lines; `application/dtmf`: the key alone), with its length in ms.
pub(in crate::gateway) fn info_key(content_type: Option<&str>, body: &[u8]) -> Option<(char, u32)> {
    let kind = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let key = |s: &str| {
        let c = s.trim().chars().next()?.to_ascii_uppercase();
        (c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')).then_some(c)
    };
    match kind.as_str() {
        "application/dtmf-relay" => {
            let mut signal = None;
            let mut duration = DEFAULT_DTMF_MS;
            for line in text.lines() {
                let Some((name, value)) = line.split_once('=') else {
                    continue;
                };
                match name.trim().to_ascii_lowercase().as_str() {
                    "signal" => signal = key(value),
                    "duration" => {
                        duration = value.trim().parse().unwrap_or(DEFAULT_DTMF_MS).min(10_000)
                    }
                    _ => {}
                }
            }
            signal.map(|s| (s, duration))
        }
        "application/dtmf" => key(text).map(|k| (k, DEFAULT_DTMF_MS)),
        _ => None,
    }
}

impl Gateway {
    /// `session-dtmf-info`: the digits join the call's INFO queue.
    pub(in crate::gateway) fn dtmf_info(
        &mut self,
        now: Instant,
        client: ClientId,
        info: DtmfInfo,
        e: &mut Engines<'_>,
    ) -> Result<(), GatewayError> {
        let key = self.session_key(client, &info.session)?;
        let call = self.calls.get_mut(key.0).ok_or(GatewayError::Internal)?;
        if call.media.is_none() {
            return Err(GatewayError::ChatOnlySession {
                action: "DTMF",
                session: info.session,
            });
        }
        if !matches!(call.state, CallState::Accepted | CallState::Established) {
            return Err(GatewayError::CallState {
                action: "DTMF",
                session: info.session,
                state: call.state.as_str(),
            });
        }
        if call.dtmf.waiting.len() + info.digits.len() > MAX_WAITING {
            return Err(GatewayError::DtmfQueueFull(MAX_WAITING));
        }
        let duration = info.duration.unwrap_or(DEFAULT_DTMF_MS);
        call.dtmf
            .waiting
            .extend(info.digits.iter().map(|&d| (d, duration)));
        self.send_next_dtmf(now, key, e);
        Ok(())
    }

    /// Sends the next waiting digit unless an INFO of the call is in flight.
    fn send_next_dtmf(&mut self, now: Instant, key: CallKey, e: &mut Engines<'_>) {
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        if call.dtmf.in_flight.is_some() {
            return;
        }
        let (Some((digit, duration)), Some(sip)) = (call.dtmf.waiting.pop_front(), call.sip) else {
            return;
        };
        let body = format!("Signal={digit}\r\nDuration={duration}\r\n").into_bytes();
        let sent = e.sip.send_in_dialog(
            now,
            sip,
            Method::Info,
            Vec::new(),
            Some(("application/dtmf-relay".to_owned(), body)),
        );
        match sent {
            Ok(id) => {
                call.dtmf.in_flight = Some(id);
                self.call_requests
                    .insert(id, (key, super::CallRequest::Dtmf));
            }
            Err(err) => {
                log::info!("session {}: DTMF INFO not sent: {err}", call.session);
                call.dtmf.waiting.clear();
            }
        }
    }

    /// An INFO of ours ended: the next digit goes.
    pub(super) fn dtmf_sent(
        &mut self,
        now: Instant,
        key: CallKey,
        outcome: &RequestOutcome,
        e: &mut Engines<'_>,
    ) {
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        call.dtmf.in_flight = None;
        if !outcome.is_success() {
            log::info!("session {}: DTMF INFO answered {outcome}", call.session);
        }
        self.send_next_dtmf(now, key, e);
    }

    /// An INFO from the SIP side in the call's dialog: a key press becomes `dtmf`; every
    /// INFO is answered 200 (RFC 6086 section 4.2 legacy INFO usage: its content is the
    /// peer's business).
    pub(super) fn incoming_info(
        &mut self,
        now: Instant,
        key: CallKey,
        id: IncomingRequestId,
        request: &SipRequest,
        e: &mut Engines<'_>,
    ) {
        if let Err(err) = e.sip.answer_request(now, id, 200, "OK", &[]) {
            log::debug!("INFO not answered: {err}");
        }
        if let Some((digit, duration)) = info_key(request.content_type(), request.body()) {
            self.dtmf_event(key, digit, duration, DtmfMethod::Info);
        }
    }

    pub(super) fn dtmf_event(
        &mut self,
        key: CallKey,
        digit: char,
        duration: u32,
        method: DtmfMethod,
    ) {
        let Some(call) = self.calls.get(key.0) else {
            return;
        };
        let (client, session) = (call.client, call.session.clone());
        self.send_event(
            client,
            &Event::SessionDtmf {
                session,
                digit,
                duration,
                method,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::info_key;

    #[test]
    fn info_bodies() {
        let relay = Some("application/dtmf-relay");
        assert_eq!(
            info_key(relay, b"Signal=5\r\nDuration=160\r\n"),
            Some(('5', 160))
        );
        assert_eq!(
            info_key(relay, b"signal= #\nduration=250"),
            Some(('#', 250))
        );
        assert_eq!(info_key(relay, b"Signal=d"), Some(('D', 100)));
        assert_eq!(info_key(relay, b"Signal=x"), None);
        assert_eq!(info_key(Some("application/dtmf"), b"7"), Some(('7', 100)));
        assert_eq!(info_key(Some("text/plain"), b"Signal=5"), None);
        assert_eq!(info_key(None, b"Signal=5"), None);
        assert_eq!(info_key(relay, &[0xff, 0xfe]), None);
    }
}
