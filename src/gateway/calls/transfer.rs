//! Transfer, our extension to sylkRTC (it has no verb for it): blind transfer by REFER
//! (RFC 3515) both ways, and attended transfer by an INVITE with `Replaces` (RFC 3891).
//!
//! `session-transfer {session, uri}` sends REFER with `Referred-By` (RFC 3892); its answer
//! and the NOTIFYs of the implicit subscription (`message/sipfrag`, RFC 3420) become
//! `transfer` session events (`trying`, `accepted`, `failed`), and the call ends once the
//! target answered (RFC 5589 section 6.1: the transferor hangs up). An incoming REFER is
//! answered 202 and reported as `transfer-request {uri, referred_by}`; a `session-create`
//! with `refer` naming that session calls the target with the REFER's `Referred-By` (and
//! the `Replaces` a `Refer-To` may embed), and its progress goes back in NOTIFYs. An
//! incoming INVITE whose `Replaces` names one of our established calls takes that call
//! over: the bridge renegotiates toward the new party (the browser answers an `update`
//! `received` when it can), the new INVITE gets the 200, the old dialog a BYE, and the
//! browser a `transfer` `replaced`.

use std::time::Instant;

use sip::msg::{Method, NameAddr, SipRequest};
use sip::request::RequestOutcome;
use sip::stack::{CallId as SipCallId, IncomingRequestId};

use super::update::RemoteOffer;
use super::{bare_uri, CallKey, CallRequest, CallState};
use crate::gateway::{CallEnd, ClientId, Engines, Gateway, GatewayError};
use crate::sylkrtc::event::TransferState;
use crate::sylkrtc::{Aor, Event};

/// The `Subscription-State` of the NOTIFYs of a REFER we accepted (RFC 3515 section 2.4.4:
/// a minute is plenty for the transfer to finish).
const REFER_SUBSCRIPTION_SECS: u32 = 60;

/// A REFER we accepted on a call, kept for the NOTIFYs about the transfer it asked for.
#[derive(Debug, Clone)]
pub(in crate::gateway) struct ReferContext {
    /// The REFER's `Referred-By`, repeated in the INVITE to the target (RFC 3892).
    referred_by: Option<String>,
    /// A `Replaces` the `Refer-To` URI carries (attended transfer, RFC 3891 section 7).
    replaces: Option<String>,
    /// The subscription ended (a final NOTIFY went out).
    done: bool,
}

/// Our REFER of a call and the progress its NOTIFYs reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::gateway) enum OutgoingTransfer {
    /// The REFER is out.
    Referring,
    /// The REFER was accepted; NOTIFYs report the progress.
    Accepted,
}

/// `%XX` decoding of a URI header value (RFC 3261 section 19.1.1: `Replaces` is escaped
/// inside the `Refer-To` URI).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `%XX` encoding of a URI header value: everything but RFC 3261's `unreserved` and
/// `hnv-unreserved` characters (section 25.1: `;`, `=`, `@` and `&` are escaped).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for b in s.bytes() {
        let plain = b.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&b);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The target of a `Refer-To` and the `Replaces` its URI carries as a header.
pub(super) fn refer_to(value: &str) -> Option<(String, Option<String>)> {
    let addr = NameAddr::parse(value).ok()?;
    let uri = addr.uri.as_str();
    let (target, headers) = uri.split_once('?').unwrap_or((uri, ""));
    let replaces = headers.split('&').find_map(|h| {
        let (name, v) = h.split_once('=')?;
        name.eq_ignore_ascii_case("Replaces").then(|| unescape(v))
    });
    Some((target.to_owned(), replaces))
}

/// The status line of a `message/sipfrag` body (RFC 3420): `SIP/2.0 200 OK`.
pub(super) fn sipfrag_status(body: &[u8]) -> Option<(u16, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let rest = line.strip_prefix("SIP/2.0 ")?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let code: u16 = code.parse().ok().filter(|c| (100..700).contains(c))?;
    Some((code, reason.trim().to_owned()))
}

impl Gateway {
    /// `session-transfer`: a blind transfer by REFER to `uri`, or an attended one (RFC 5589
    /// section 7) when `replaces` names the consultation call: the REFER's `Refer-To`
    /// then carries that call's dialog as `Replaces` (RFC 3891), so its party takes over.
    pub(in crate::gateway) fn transfer_session(
        &mut self,
        now: Instant,
        client: ClientId,
        session: &str,
        uri: Option<&Aor>,
        replaces: Option<String>,
        e: &mut Engines<'_>,
    ) -> Result<(), GatewayError> {
        let key = self.session_key(client, session)?;
        let refer_to = match replaces {
            Some(other) => self.consultation_target(client, session, &other, uri, e)?,
            None => format!("<sip:{}>", uri.ok_or(GatewayError::Internal)?.as_str()),
        };
        let call = self.calls.get(key.0).ok_or(GatewayError::Internal)?;
        if !matches!(call.state, CallState::Accepted | CallState::Established) {
            return Err(GatewayError::CallState {
                action: "transfer",
                session: session.to_owned(),
                state: call.state.as_str(),
            });
        }
        if call.transfer.is_some() {
            return Err(GatewayError::TransferPending(session.to_owned()));
        }
        let sip = call.sip.ok_or(GatewayError::Internal)?;
        let account = self
            .accounts
            .get(call.account.0)
            .map(|a| a.aor.as_str().to_owned())
            .unwrap_or_default();
        let headers = vec![
            ("Refer-To".to_owned(), refer_to),
            ("Referred-By".to_owned(), format!("<sip:{account}>")),
        ];
        let id = e
            .sip
            .send_in_dialog(now, sip, Method::Refer, headers, None)
            .map_err(|error| GatewayError::CannotSend {
                action: "transfer",
                error: error.to_string(),
            })?;
        self.call_requests.insert(id, (key, CallRequest::Refer));
        if let Some(call) = self.calls.get_mut(key.0) {
            call.transfer = Some(OutgoingTransfer::Referring);
        }
        Ok(())
    }

    /// The `Refer-To` of an attended transfer: the party of `other` (a call of the same
    /// connection, answered, with a confirmed dialog) at its Contact, or at `uri`, with
    /// `Replaces` naming the consultation dialog.
    fn consultation_target(
        &self,
        client: ClientId,
        session: &str,
        other: &str,
        uri: Option<&Aor>,
        e: &Engines<'_>,
    ) -> Result<String, GatewayError> {
        if other == session {
            return Err(GatewayError::TransferToItself(session.to_owned()));
        }
        let consultation = self.session_key(client, other)?;
        let call = self
            .calls
            .get(consultation.0)
            .ok_or(GatewayError::Internal)?;
        let answered = matches!(call.state, CallState::Accepted | CallState::Established);
        let dialog = call
            .sip
            .filter(|_| answered)
            .and_then(|sip| e.sip.replacement_of(sip));
        let Some((contact, replaces)) = dialog else {
            return Err(GatewayError::CallState {
                action: "transfer to",
                session: other.to_owned(),
                state: call.state.as_str(),
            });
        };
        let target = match uri {
            Some(uri) => format!("sip:{}", uri.as_str()),
            None => contact,
        };
        // RFC 3261 section 19.1.1: URI headers after `?`, their values escaped.
        let sep = if target.contains('?') { '&' } else { '?' };
        Ok(format!("<{target}{sep}Replaces={}>", escape(&replaces)))
    }

    /// Our REFER was answered.
    pub(super) fn refer_answered(&mut self, key: CallKey, outcome: &RequestOutcome) {
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        if outcome.is_success() {
            call.transfer = Some(OutgoingTransfer::Accepted);
            let code = Some(outcome.code());
            self.transfer_event(key, TransferState::Trying, code, Some(outcome.phrase()));
        } else {
            call.transfer = None;
            let code = Some(outcome.code());
            self.transfer_event(key, TransferState::Failed, code, Some(outcome.phrase()));
        }
    }

    /// A NOTIFY in the call's dialog: the progress of our REFER (RFC 3515 section 2.4.4).
    pub(super) fn incoming_notify(
        &mut self,
        now: Instant,
        key: CallKey,
        id: IncomingRequestId,
        request: &SipRequest,
        e: &mut Engines<'_>,
    ) {
        let refer_event = request.header("Event").is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("refer"))
        });
        let ours = self.calls.get(key.0).is_some_and(|c| c.transfer.is_some());
        if !refer_event || !ours {
            // RFC 6665 section 4.1.3: a NOTIFY for no subscription of ours.
            let _ = e
                .sip
                .answer_request(now, id, 481, "Subscription Does Not Exist", &[]);
            return;
        }
        let _ = e.sip.answer_request(now, id, 200, "OK", &[]);
        let terminated = request
            .header("Subscription-State")
            .is_some_and(|s| s.trim().to_ascii_lowercase().starts_with("terminated"));
        match sipfrag_status(request.body()) {
            Some((code, reason)) if code < 200 => {
                self.transfer_event(key, TransferState::Trying, Some(code), Some(&reason));
            }
            Some((code, reason)) if code < 300 => {
                if let Some(call) = self.calls.get_mut(key.0) {
                    call.transfer = None;
                }
                self.transfer_event(key, TransferState::Accepted, Some(code), Some(&reason));
                // RFC 5589 section 6.1: the transfer succeeded, the transferor hangs up.
                self.end_call(now, key, CallEnd::Transferred, true, e);
            }
            Some((code, reason)) => {
                if let Some(call) = self.calls.get_mut(key.0) {
                    call.transfer = None;
                }
                self.transfer_event(key, TransferState::Failed, Some(code), Some(&reason));
            }
            None if terminated => {
                if let Some(call) = self.calls.get_mut(key.0) {
                    call.transfer = None;
                }
                self.transfer_event(key, TransferState::Failed, None, Some("no final status"));
            }
            None => {}
        }
    }

    /// A REFER in the call's dialog (RFC 3515): 202, a first NOTIFY, `transfer-request`.
    pub(super) fn incoming_refer(
        &mut self,
        now: Instant,
        key: CallKey,
        id: IncomingRequestId,
        request: &SipRequest,
        e: &mut Engines<'_>,
    ) {
        let target = request.header("Refer-To").and_then(refer_to);
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        let Some((uri, replaces)) = target else {
            let _ = e.sip.answer_request(now, id, 400, "Bad Refer-To", &[]);
            return;
        };
        if call.refer.as_ref().is_some_and(|r| !r.done) {
            // One transfer at a time per call.
            let _ = e.sip.answer_request(now, id, 491, "Request Pending", &[]);
            return;
        }
        let referred_by = request.header("Referred-By").map(str::to_owned);
        call.refer = Some(Box::new(ReferContext {
            referred_by: referred_by.clone(),
            replaces,
            done: false,
        }));
        let _ = e.sip.answer_request(now, id, 202, "Accepted", &[]);
        // RFC 3515 section 2.4.4: a NOTIFY right away.
        self.notify_refer(now, key, 100, "Trying", e);
        let (client, session) = (call_client(self, key), call_session(self, key));
        if let (Some(client), Some(session)) = (client, session) {
            self.send_event(
                client,
                &Event::TransferRequest {
                    session,
                    uri: bare_uri(&uri),
                    referred_by: referred_by.as_deref().map(bare_uri),
                },
            );
        }
    }

    /// The header fields of a `session-create` with `refer`: the REFER's `Referred-By` and
    /// the `Replaces` its `Refer-To` carried; the call that got the REFER is returned, to
    /// hear of the new call's progress.
    pub(in crate::gateway) fn refer_headers(
        &mut self,
        client: ClientId,
        session: &str,
    ) -> Result<(CallKey, Vec<(String, String)>), GatewayError> {
        let key = self.session_key(client, session)?;
        let refer = self
            .calls
            .get(key.0)
            .and_then(|c| c.refer.as_ref())
            .ok_or_else(|| GatewayError::NoTransferRequest(session.to_owned()))?;
        let mut headers = Vec::new();
        if let Some(by) = &refer.referred_by {
            headers.push(("Referred-By".to_owned(), by.clone()));
        }
        if let Some(replaces) = &refer.replaces {
            headers.push(("Replaces".to_owned(), replaces.clone()));
        }
        Ok((key, headers))
    }

    /// The call that carries out a transfer made progress: a NOTIFY to the call that got the
    /// REFER (`code` 1xx: progress; 2xx or more: the final one, ending the subscription).
    pub(super) fn report_transfer_progress(
        &mut self,
        now: Instant,
        referring: Option<CallKey>,
        code: u16,
        reason: &str,
        e: &mut Engines<'_>,
    ) {
        let Some(referring) = referring else {
            return;
        };
        self.notify_refer(now, referring, code, reason, e);
    }

    /// A NOTIFY about the REFER accepted on call `key`.
    fn notify_refer(
        &mut self,
        now: Instant,
        key: CallKey,
        code: u16,
        reason: &str,
        e: &mut Engines<'_>,
    ) {
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        let (Some(sip), Some(refer)) = (call.sip, call.refer.as_mut()) else {
            return;
        };
        if refer.done {
            return;
        }
        let state = if code >= 200 {
            refer.done = true;
            "terminated;reason=noresource".to_owned()
        } else {
            format!("active;expires={REFER_SUBSCRIPTION_SECS}")
        };
        let headers = vec![
            ("Event".to_owned(), "refer".to_owned()),
            ("Subscription-State".to_owned(), state),
        ];
        let body = format!("SIP/2.0 {code} {reason}\r\n").into_bytes();
        match e.sip.send_in_dialog(
            now,
            sip,
            Method::Notify,
            headers,
            Some(("message/sipfrag;version=2.0".to_owned(), body)),
        ) {
            Ok(id) => {
                self.call_requests.insert(id, (key, CallRequest::Notify));
            }
            Err(err) => log::info!("NOTIFY for the transfer not sent: {err}"),
        }
    }

    /// An INVITE whose `Replaces` names call `key`'s dialog: its offer goes to the bridge
    /// as a re-offer; [`finish_replacing`](Self::finish_replacing) completes it.
    pub(super) fn replacing_invite(
        &mut self,
        now: Instant,
        key: CallKey,
        new: SipCallId,
        sdp: &str,
        e: &mut Engines<'_>,
    ) {
        if self.has_chat(key) {
            // A chat's MSRP connection and m=message line belong to the old dialog's
            // parties (chat/): the session cannot be taken over (RFC 3891 section 3 lets
            // the UAS refuse).
            log::info!(
                "{} replacing INVITE for a chat session: 488",
                self.call_context(key)
            );
            let _ = e.sip.decline(now, new, 488);
            return;
        }
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        if call.update.is_some() || call.replacing.is_some() {
            // An offer/answer of the call is under way: the new party tries again later
            // (RFC 3261 section 14.2's 491, the same refusal a crossing re-INVITE gets).
            log::info!(
                "session {}: replacing INVITE during an update: 491",
                call.session
            );
            let _ = e.sip.decline(now, new, 491);
            return;
        }
        call.replacing = Some(new);
        self.calls_by_sip.insert(new, key);
        if let Err(err) = e.sip.ring(now, new) {
            log::debug!("180 for the replacing INVITE not sent: {err}");
        }
        self.take_sip_offer(now, key, new, RemoteOffer::Replacing(new), sdp, e);
    }

    /// The answer to an INVITE that replaces call `key`'s dialog: on success the new dialog
    /// is the call's (200 with the answer, BYE to the old one, `transfer` `replaced`),
    /// otherwise the INVITE is refused (488) and the call goes on as it was.
    pub(super) fn finish_replacing(
        &mut self,
        now: Instant,
        key: CallKey,
        new: SipCallId,
        answer: Result<String, media::error::BridgeError>,
        extra: Vec<(String, String)>,
        e: &mut Engines<'_>,
    ) {
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        call.replacing = None;
        let answered = match answer {
            Ok(sdp) => e
                .sip
                .answer_with(now, new, sdp, extra)
                .map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        if let Err(err) = answered {
            log::info!("session {}: replacing INVITE refused: {err}", call.session);
            self.calls_by_sip.remove(&new);
            let _ = e.sip.decline(now, new, 488);
            return;
        }
        let old = call.sip.replace(new);
        call.sip_call_id = e.sip.call_id_of(new).map(str::to_owned);
        if let Some(old) = old {
            self.calls_by_sip.remove(&old);
            if let Err(err) = e.sip.hangup(now, old) {
                log::debug!("replaced dialog already gone: {err}");
            }
        }
        log::info!("session {}: dialog replaced (RFC 3891)", call.session);
        self.transfer_event(key, TransferState::Replaced, None, None);
    }

    /// The INVITE that was to replace call `key`'s dialog ended before it was answered.
    pub(super) fn replacing_ended(&mut self, key: CallKey, e: &mut Engines<'_>) {
        let Some(call) = self.calls.get_mut(key.0) else {
            return;
        };
        if let Some(new) = call.replacing.take() {
            self.calls_by_sip.remove(&new);
        }
        if matches!(
            call.update,
            Some(super::update::Update::Remote(RemoteOffer::Replacing(_)))
        ) {
            call.update = None;
            if let Some(bridge) = call.media.and_then(|m| e.bridges.get_mut(m)) {
                bridge.cancel_renegotiation();
            }
        }
    }

    fn transfer_event(
        &mut self,
        key: CallKey,
        state: TransferState,
        code: Option<u16>,
        reason: Option<&str>,
    ) {
        let (Some(client), Some(session)) = (call_client(self, key), call_session(self, key))
        else {
            return;
        };
        self.send_event(
            client,
            &Event::SessionTransfer {
                session,
                state,
                code,
                reason: reason.map(str::to_owned),
            },
        );
    }
}

fn call_client(g: &Gateway, key: CallKey) -> Option<ClientId> {
    g.calls.get(key.0).map(|c| c.client)
}

fn call_session(g: &Gateway, key: CallKey) -> Option<String> {
    g.calls.get(key.0).map(|c| c.session.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refer_to_and_sipfrag() {
        assert_eq!(
            refer_to("<sip:carol@example.test>"),
            Some(("sip:carol@example.test".to_owned(), None))
        );
        assert_eq!(
            refer_to("<sip:carol@example.test?Replaces=abc%40x%3Bto-tag%3D1%3Bfrom-tag%3D2>"),
            Some((
                "sip:carol@example.test".to_owned(),
                Some("abc@x;to-tag=1;from-tag=2".to_owned())
            ))
        );
        assert_eq!(refer_to("not a uri"), None);
        assert_eq!(
            sipfrag_status(b"SIP/2.0 180 Ringing\r\n"),
            Some((180, "Ringing".to_owned()))
        );
        assert_eq!(
            sipfrag_status(b"SIP/2.0 200 OK"),
            Some((200, "OK".to_owned()))
        );
        assert_eq!(sipfrag_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 abc"), None);
    }
}
