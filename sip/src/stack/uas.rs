//! The UAS core (RFC 3261 section 8.2): every new request that is not a CANCEL or ACK.
//! In-dialog requests go to their call (section 12.2.2; 481 when no dialog matches), INVITEs
//! for a registration's Contact token become incoming calls (section 13.3), OPTIONS is
//! answered here, and anything else gets the section 8.2.1 refusal.

use std::time::Instant;

use super::{CallId, SipEvent, SipStack};
use crate::call::{Call, CallEvent, IncomingCall};
use crate::dialog::DialogKey;
use crate::msg::{Contacts, Method, MsgError, NameAddr, ResponseBuilder, SipRequest, Uri};
use crate::registration::RegId;
use crate::transport::Transport;
use crate::txn::{TxnConfig, TxnId};

/// Methods we answer outside dialogs, for `Allow` (RFC 3261 section 20.5).
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS";

impl SipStack {
    /// A new request in server transaction `txn`.
    pub(super) fn handle_request(&mut self, now: Instant, txn: TxnId, request: &SipRequest) {
        if let Some(key) = DialogKey::of_incoming(request) {
            if let Some(&call) = self.dialogs.get(&key) {
                if let Some(e) = self
                    .calls
                    .get_mut(call.key)
                    .filter(|e| e.serial == call.serial)
                {
                    e.call
                        .handle_in_dialog_request(now, txn, request, &mut self.rng);
                    self.dirty_calls.push(call);
                    return;
                }
            }
            if *request.method() != Method::Options {
                self.respond(
                    now,
                    txn,
                    request,
                    481,
                    "Call/Transaction Does Not Exist",
                    &[],
                );
                return;
            }
        }
        // RFC 3261 section 8.1.1.8: an INVITE MUST carry a Contact; without one no dialog
        // can be formed, whoever the INVITE is for (section 8.2: a 400 naming the defect).
        if *request.method() == Method::Invite && matches!(request.contacts(), Contacts::None) {
            self.respond(now, txn, request, 400, "Missing Contact", &[]);
            return;
        }
        if *request.method() == Method::Invite && self.incoming_calls {
            let owner = request
                .uri()
                .user()
                .and_then(|u| self.by_contact_user.get(u))
                .copied();
            if let Some(reg) = owner {
                self.incoming_call(now, txn, request, reg);
                return;
            }
        }
        if self.surfaces(request.method()) {
            let owner = request
                .uri()
                .user()
                .and_then(|u| self.by_contact_user.get(u))
                .copied();
            // Without a registration's token the Request-URI names the addressee itself
            // (a proxy forking MESSAGEs to the gateway, as SylkServer deployments do); the
            // gateway decides whether it keeps messages for that address.
            let target = match owner {
                Some(reg) => super::RequestTarget::Registration(reg),
                None => super::RequestTarget::Address,
            };
            self.file_incoming(now, txn, Box::new(request.clone()), target);
            return;
        }
        let allow = [("Allow", ALLOW)];
        let (status, reason, extra): (u16, &str, &[(&str, &str)]) = match request.method() {
            Method::Options => (
                200,
                "OK",
                &[("Allow", ALLOW), ("Accept", "application/sdp")],
            ),
            Method::Invite => {
                let owner = request
                    .uri()
                    .user()
                    .and_then(|u| self.by_contact_user.get(u));
                log::info!(
                    "sip: INVITE {} for {}: nobody takes it",
                    request.call_id(),
                    if owner.is_some() {
                        "a registered account"
                    } else {
                        "no account"
                    }
                );
                (480, "Temporarily Unavailable", &[])
            }
            Method::Bye => (481, "Call/Transaction Does Not Exist", &[]),
            m if m.is_extension() => (501, "Not Implemented", &allow),
            _ => (405, "Method Not Allowed", &allow),
        };
        self.respond(now, txn, request, status, reason, extra);
    }

    /// Answers `request` statelessly from the UA's point of view (a fresh To tag).
    pub(super) fn respond(
        &mut self,
        now: Instant,
        txn: TxnId,
        request: &SipRequest,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let to_tag = self.random_token(10);
        // The request's top Via was stamped with received/rport on arrival.
        let mut builder = ResponseBuilder::from_request(request, status, reason, Some(&to_tag))
            .header("Server", &self.config.user_agent);
        for (name, value) in extra {
            builder = builder.header(name, value);
        }
        match builder.build() {
            Ok(response) => {
                if let Err(e) = self.txn.send_response(now, txn, response) {
                    log::debug!("sip: cannot answer {}: {e}", request.call_id());
                }
            }
            Err(e) => log::warn!("sip: failed to build a {status} response: {e}"),
        }
    }

    /// A new INVITE for the Contact token of `reg` (RFC 3261 section 13.3).
    fn incoming_call(&mut self, now: Instant, txn: TxnId, request: &SipRequest, reg: RegId) {
        if let Some(seconds) = self.refuse_new_calls {
            let retry_after = seconds.to_string();
            log::info!(
                "sip: INVITE {} refused with 503: draining",
                request.call_id()
            );
            self.respond(
                now,
                txn,
                request,
                503,
                "Service Unavailable",
                &[("Retry-After", &retry_after)],
            );
            return;
        }
        if self.calls.len() >= self.max_calls {
            self.respond(now, txn, request, 503, "Service Unavailable", &[]);
            return;
        }
        let Some(source) = self.inbound_source else {
            self.respond(now, txn, request, 500, "Server Internal Error", &[]);
            return;
        };
        if let Some(unsupported) = unsupported_requirements(request) {
            // RFC 3261 section 8.2.2.3.
            let extra = [("Unsupported", unsupported.as_str())];
            self.respond(now, txn, request, 420, "Bad Extension", &extra);
            return;
        }
        let replaces = match request.header("Replaces") {
            None => None,
            Some(value) => match self.replaced_call(value) {
                Some(call) => Some(call),
                None => {
                    // RFC 3891 section 3: no confirmed dialog of ours matches.
                    let reason = "Call/Transaction Does Not Exist";
                    self.respond(now, txn, request, 481, reason, &[]);
                    return;
                }
            },
        };
        let kind = match request.top_via().map(|v| v.transport.to_ascii_uppercase()) {
            Some(t) if t == "TLS" => Transport::Tls,
            Some(t) if t == "TCP" => Transport::Tcp,
            _ => Transport::Udp,
        };
        let token = request.uri().user().unwrap_or_default().to_owned();
        let contact = match self.contact_for(&token, kind) {
            Ok(contact) => contact,
            Err(e) => {
                log::warn!("sip: INVITE {}: no Contact of ours: {e}", request.call_id());
                self.respond(now, txn, request, 500, "Server Internal Error", &[]);
                return;
            }
        };
        let local_tag = self.random_token(10);
        let call = match IncomingCall::new(
            request.clone(),
            txn,
            source,
            &local_tag,
            contact,
            TxnConfig::default(),
            self.config.outbound_proxy.is_none(),
        ) {
            Ok(call) => call,
            Err(e) => {
                log::info!("sip: INVITE {} refused: {e}", request.call_id());
                self.respond(now, txn, request, 400, "Missing Contact", &[]);
                return;
            }
        };
        let mut call = call;
        if let Some(min_se) = call.session_interval_too_small() {
            // RFC 4028 section 9.
            let min_se = min_se.to_string();
            let extra = [("Min-SE", min_se.as_str())];
            self.respond(now, txn, request, 422, "Session Interval Too Small", &extra);
            return;
        }
        if let Some(e) = self.registrations.get(reg.0) {
            call.set_account(e.reg.digest_client(), e.reg.config().user_agent.clone());
        }
        call.set_session_expires(self.session_expires);
        let sdp = call.remote_sdp().map(str::to_owned);
        let id = self.insert_call(Call::incoming(call), request.call_id().to_owned());
        self.call_txns.insert(txn, id);
        if let Some(e) = self.call_entry(id) {
            e.txns.push(txn);
        }
        self.events.push_back(SipEvent::Call {
            call: id,
            event: CallEvent::Incoming {
                reg,
                from_uri: request.from().uri.to_string(),
                from_display_name: request.from().display_name.clone(),
                call_id: request.call_id().to_owned(),
                sdp,
                headers: request.headers().clone(),
                replaces,
            },
        });
        self.dirty_calls.push(id);
    }

    /// The call whose confirmed dialog a `Replaces` value names (RFC 3891 section 3: the
    /// to-tag is our tag, the from-tag the peer's); `None` when none matches, or with
    /// `early-only`.
    fn replaced_call(&self, value: &str) -> Option<CallId> {
        let key = replaces_key(value)?;
        let call = *self.dialogs.get(&key)?;
        let e = self
            .calls
            .get(call.key)
            .filter(|e| e.serial == call.serial)?;
        e.call
            .dialog()
            .filter(|d| d.state() == crate::dialog::DialogState::Confirmed)
            .map(|_| call)
    }

    /// Our Contact for `kind`: `<sip:user@host:port;transport=kind>`.
    pub(super) fn contact_for(&self, user: &str, kind: Transport) -> Result<NameAddr, MsgError> {
        let (host, port) = self.transport.sent_by(kind);
        let uri = Uri::parse(&format!(
            "sip:{user}@{host}:{port};transport={}",
            kind.to_string().to_ascii_lowercase()
        ))?;
        Ok(NameAddr::new(uri))
    }
}

/// The option tags of `Require` we do not support, comma-separated (RFC 3261 section
/// 8.2.2.3), or `None` when we support them all.
fn unsupported_requirements(request: &SipRequest) -> Option<String> {
    let supported: Vec<&str> = crate::call::SUPPORTED.split(',').map(str::trim).collect();
    let unsupported: Vec<&str> = request
        .headers()
        .get_all("Require")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty() && !supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .collect();
    (!unsupported.is_empty()).then(|| unsupported.join(", "))
}

/// The dialog a `Replaces` value names (RFC 3891 section 6.1: `call-id;to-tag=..;from-tag=..`,
/// the tags as the sender of the INVITE sees them); `None` when a tag is missing or the
/// value asks for an early dialog only (`early-only`, which we never replace).
pub(crate) fn replaces_key(value: &str) -> Option<DialogKey> {
    let mut parts = value.split(';');
    let call_id = parts.next()?.trim().to_owned();
    let (mut to_tag, mut from_tag) = (None, None);
    for p in parts {
        let (name, v) = p.split_once('=').unwrap_or((p, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "to-tag" => to_tag = Some(v.trim().to_owned()),
            "from-tag" => from_tag = Some(v.trim().to_owned()),
            "early-only" => return None,
            _ => {}
        }
    }
    Some(DialogKey {
        call_id,
        local_tag: to_tag?,
        remote_tag: from_tag?,
    })
}
