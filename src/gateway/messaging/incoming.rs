//! SIP MESSAGEs for the gateway's accounts (RFC 3428): CPIM (RFC 3862) or a plain body,
//! IMDN documents (RFC 5438) inside CPIM, and MESSAGEs inside a call's dialog.
//!
//! Outside dialogs a MESSAGE is for the account whose registration Contact it was sent to,
//! or, with no registration's token, for the address in its Request-URI (a proxy forking
//! MESSAGEs to the gateway, as SylkServer is deployed) when that domain is one of
//! `sylkrtc.sip_domains`. It is stored first; then every connection where the account is
//! authenticated gets the `message` event, and the answer is 200 when one did, 202 when the
//! message is only stored (`account-sync-conversations` delivers it later). Malformed CPIM
//! or IMDN gets 400 with a reason phrase saying what is wrong, and nothing is stored.

use std::time::Instant;

use im::cpim::{media_type, Cpim};
use im::imdn::{Imdn, IMDN_CONTENT_TYPE};
use sip::msg::SipRequest;
use sip::stack::{IncomingRequestId, RequestTarget};
use store::{Direction, MessageState, StoreRequest, StoreResult, StoredMessage};

use super::{unix_ms, Pending};
use crate::gateway::calls::bare_uri;
use crate::gateway::{Engines, Gateway};
use crate::sylkrtc::event::Originator;
use crate::sylkrtc::messaging::{Disposition, MessagingEvent, ReceivedMessage};
use crate::sylkrtc::Aor;

/// The header with which a proxy marks the copy of a MESSAGE sent by one of the account's
/// own SIP devices (SylkServer's name for it).
pub(super) const REPLICATED_HEADER: &str = "X-Sylk-From-Sip";

/// What a MESSAGE carried, once understood.
pub(super) enum Content {
    /// A message to show and store.
    Message(ReceivedMessage),
    /// A disposition notification about one of the account's messages.
    Imdn(Imdn),
}

/// A refusal: status and reason phrase.
pub(super) type Refusal = (u16, String);

impl Gateway {
    /// A SIP request the stack handed to the gateway (MESSAGE).
    pub(in crate::gateway) fn handle_incoming_request(
        &mut self,
        now: Instant,
        id: IncomingRequestId,
        target: RequestTarget,
        request: SipRequest,
        e: &mut Engines<'_>,
    ) {
        let result = match target {
            RequestTarget::Call(call) => self.in_dialog_message(now, call, &request),
            // A copy of what one of the account's own SIP devices sent (SylkServer's
            // X-Sylk-From-Sip, forked by the proxy): the sender's history and devices.
            RequestTarget::Address | RequestTarget::Registration(_)
                if request.header(REPLICATED_HEADER).is_some() =>
            {
                self.replicated_message_in(now, id, &request, e)
            }
            RequestTarget::Registration(reg) => {
                let account = self
                    .registration_owner
                    .get(&reg)
                    .and_then(|a| self.accounts.get(a.0))
                    .map(|a| a.aor.as_str().to_owned());
                match account {
                    Some(aor) => self.account_message_in(now, id, &aor, &request, e),
                    None => Err((480, "Temporarily Unavailable".to_owned())),
                }
            }
            RequestTarget::Address => {
                let addressee = request
                    .uri()
                    .user()
                    .zip(request.uri().host())
                    .and_then(|(u, h)| Aor::parse(&format!("{u}@{h}")).ok())
                    .filter(|a| self.config.sylkrtc.domain_allowed(a.host()));
                match addressee {
                    Some(aor) => self.account_message_in(now, id, aor.as_str(), &request, e),
                    None => Err((404, "Not Found".to_owned())),
                }
            }
        };
        self.answer_message(now, id, result, e);
    }

    /// Answers a MESSAGE unless the answer waits for the store (`Ok(None)`).
    pub(super) fn answer_message(
        &mut self,
        now: Instant,
        id: IncomingRequestId,
        result: Result<Option<u16>, Refusal>,
        e: &mut Engines<'_>,
    ) {
        let answer = match result {
            // Answered once the store has it.
            Ok(None) => return,
            Ok(Some(status)) => (status, "OK".to_owned()),
            Err(refusal) => refusal,
        };
        self.messaging.stats.count_in(answer.0);
        let extra = retry_after(answer.0);
        if let Err(err) = e.sip.answer_request(now, id, answer.0, &answer.1, extra) {
            log::debug!("messaging: MESSAGE not answered: {err}");
        }
    }

    /// A MESSAGE for `aor`: `Ok(None)` when the answer waits for the store.
    fn account_message_in(
        &mut self,
        now: Instant,
        id: IncomingRequestId,
        aor: &str,
        request: &SipRequest,
        e: &mut Engines<'_>,
    ) -> Result<Option<u16>, Refusal> {
        let sender_key = bare_uri(request.from().uri.as_str());
        if !self.messaging.incoming_limit.allow(now, &sender_key) {
            return Err((503, "Service Unavailable (too many messages)".to_owned()));
        }
        let content = self.understand(request)?;
        self.store_incoming(id, aor, content, e)
    }

    /// Stores what a MESSAGE for `aor` carried: `Ok(None)` when the answer waits for it.
    pub(super) fn store_incoming(
        &mut self,
        id: IncomingRequestId,
        aor: &str,
        content: Content,
        e: &mut Engines<'_>,
    ) -> Result<Option<u16>, Refusal> {
        match content {
            Content::Message(message) => {
                if media_type(&message.content_type) == "text/pgp-public-key" {
                    let request = StoreRequest::SetPublicKey {
                        uri: message.sender.uri.clone(),
                        key: message.content.clone(),
                    };
                    self.submit_quiet(e.store, "public key", request);
                }
                let stored = StoredMessage {
                    seq: 0,
                    account: aor.to_owned(),
                    contact: message.sender.uri.clone(),
                    message_id: message.message_id.clone(),
                    direction: Direction::Incoming,
                    content_type: message.content_type.clone(),
                    content: message.content.clone(),
                    timestamp: message.timestamp.clone(),
                    state: MessageState::Received,
                    disposition: message.disposition_notification.clone(),
                    stored_at_ms: unix_ms(self.wall),
                };
                let pending = Pending::Incoming {
                    id,
                    account: aor.to_owned(),
                    message: Box::new(message),
                };
                self.store_or_refuse(e, StoreRequest::AddMessage(stored), pending)
            }
            Content::Imdn(imdn) => {
                let state =
                    MessageState::parse(imdn.status.as_str()).unwrap_or(MessageState::Error);
                let pending = Pending::IncomingImdn {
                    id,
                    account: aor.to_owned(),
                    message_id: imdn.message_id.clone(),
                    message_timestamp: imdn.datetime.clone(),
                    state: imdn.status.as_str(),
                };
                let request = StoreRequest::SetState {
                    account: aor.to_owned(),
                    message_id: imdn.message_id,
                    state,
                };
                self.store_or_refuse(e, request, pending)
            }
        }
    }

    fn store_or_refuse(
        &mut self,
        e: &mut Engines<'_>,
        request: StoreRequest,
        pending: Pending,
    ) -> Result<Option<u16>, Refusal> {
        match self.submit(e.store, request, pending) {
            Ok(()) => Ok(None),
            Err(err) => Err(store_refusal(&err)),
        }
    }

    /// Reads a MESSAGE's body: CPIM (with an IMDN inside, or a message) or a plain body.
    pub(super) fn understand(&mut self, request: &SipRequest) -> Result<Content, Refusal> {
        let max = self.messaging.config.max_content_size;
        let body = request.body();
        if body.len() > max + 4096 {
            return Err((413, "Request Entity Too Large".to_owned()));
        }
        let content_type = request.content_type().unwrap_or("text/plain");
        let sip_sender = Originator {
            uri: bare_uri(request.from().uri.as_str()),
            display_name: request.from().display_name.clone(),
        };
        let now_text = store::time::format_rfc3339_ms(unix_ms(self.wall));
        if media_type(content_type) != "message/cpim" {
            if body.len() > max {
                return Err((413, "Request Entity Too Large".to_owned()));
            }
            let text = text_of(body)?;
            return Ok(Content::Message(ReceivedMessage {
                sender: sip_sender,
                timestamp: now_text,
                disposition_notification: Vec::new(),
                message_id: self.rng.token(20),
                content_type: content_type.to_owned(),
                content: text,
            }));
        }
        let cpim = Cpim::parse(body.to_vec()).map_err(|err| (400, capitalise(&err.to_string())))?;
        if cpim.content().len() > max {
            return Err((413, "Request Entity Too Large".to_owned()));
        }
        if cpim.media_type() == IMDN_CONTENT_TYPE {
            let imdn =
                Imdn::parse(cpim.content()).map_err(|err| (400, capitalise(&err.to_string())))?;
            return Ok(Content::Imdn(imdn));
        }
        let sender = Originator {
            uri: bare_uri(&cpim.from().uri),
            display_name: cpim.from().display_name.clone().or(sip_sender.display_name),
        };
        Ok(Content::Message(ReceivedMessage {
            sender,
            timestamp: cpim.datetime().map_or(now_text, str::to_owned),
            disposition_notification: cpim.disposition_notification(),
            message_id: match cpim.imdn_message_id() {
                Some(id) if !id.is_empty() => id.to_owned(),
                _ => self.rng.token(20),
            },
            content_type: cpim.content_type().to_owned(),
            content: text_of(cpim.content())?,
        }))
    }

    /// An incoming message is stored: show it, answer 200 (someone has it) or 202.
    pub(super) fn incoming_stored(
        &mut self,
        now: Instant,
        id: IncomingRequestId,
        aor: &str,
        message: ReceivedMessage,
        result: Result<StoreResult, store::StoreError>,
        e: &mut Engines<'_>,
    ) {
        let (status, reason) = match result {
            Ok(StoreResult::Added { new, .. }) => {
                // Not new in the store: a sender's retry of one this instance showed
                // already, or (with a store shared by instances) the copy of a MESSAGE
                // forked to this instance's connections too, which they must see.
                let shown_here = !new && self.messaging.shown.contains(aor, &message.message_id);
                let shown = if shown_here {
                    self.authenticated_clients(aor).len()
                } else {
                    self.messaging.shown.insert(aor, &message.message_id);
                    self.send_to_account(
                        aor,
                        None,
                        MessagingEvent::Message {
                            account: aor.to_owned(),
                            message,
                        },
                    )
                };
                if shown > 0 {
                    (200, "OK".to_owned())
                } else {
                    (202, "Accepted".to_owned())
                }
            }
            Ok(other) => {
                log::warn!("messaging: unexpected store result {other:?}");
                (500, "Server Internal Error".to_owned())
            }
            Err(err) => {
                log::warn!("messaging: incoming message for {aor} not stored: {err}");
                store_refusal(&err)
            }
        };
        self.messaging.stats.count_in(status);
        if let Err(err) = e
            .sip
            .answer_request(now, id, status, &reason, retry_after(status))
        {
            log::debug!("messaging: MESSAGE not answered: {err}");
        }
    }

    /// An incoming IMDN was applied to the store.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn imdn_stored(
        &mut self,
        now: Instant,
        id: IncomingRequestId,
        aor: &str,
        message_id: String,
        message_timestamp: String,
        state: &'static str,
        result: Result<StoreResult, store::StoreError>,
        e: &mut Engines<'_>,
    ) {
        let (status, reason) = match result {
            Ok(_) => {
                self.send_to_account(
                    aor,
                    None,
                    MessagingEvent::Disposition {
                        account: aor.to_owned(),
                        disposition: Disposition {
                            message_id,
                            message_timestamp,
                            state,
                            code: 200,
                            reason: "OK".to_owned(),
                        },
                    },
                );
                (200, "OK".to_owned())
            }
            Err(err) => store_refusal(&err),
        };
        self.messaging.stats.count_in(status);
        if let Err(err) = e
            .sip
            .answer_request(now, id, status, &reason, retry_after(status))
        {
            log::debug!("messaging: IMDN not answered: {err}");
        }
    }

    /// A MESSAGE inside a call's dialog: to the call's connection as a session event.
    fn in_dialog_message(
        &mut self,
        _now: Instant,
        call: sip::stack::CallId,
        request: &SipRequest,
    ) -> Result<Option<u16>, Refusal> {
        let Some((client, session)) = self
            .calls_by_sip
            .get(&call)
            .and_then(|k| self.calls.get(k.0))
            .map(|c| (c.client, c.session.clone()))
        else {
            return Err((481, "Call/Transaction Does Not Exist".to_owned()));
        };
        let event = match self.understand(request)? {
            Content::Message(message) => MessagingEvent::SessionMessage { session, message },
            Content::Imdn(imdn) => MessagingEvent::SessionDisposition {
                session,
                disposition: Disposition {
                    message_id: imdn.message_id,
                    message_timestamp: imdn.datetime,
                    state: imdn.status.as_str(),
                    code: 200,
                    reason: "OK".to_owned(),
                },
            },
        };
        self.send_event(client, &crate::sylkrtc::Event::Messaging(event));
        Ok(Some(200))
    }
}

/// sylkRTC carries text: a body that is not UTF-8 is refused (RFC 3261 21.4.13).
/// Extra headers of an answer: a 503 says when to try again (RFC 3261 section 21.5.4).
fn retry_after(status: u16) -> &'static [(&'static str, &'static str)] {
    if status == 503 {
        &[("Retry-After", "1")]
    } else {
        &[]
    }
}

/// The SIP answer to a MESSAGE the store could not take: 503 (with Retry-After, so the
/// sender or a proxy tries again or elsewhere) when the store is busy or gone, 500 when the
/// database failed the write.
pub(super) fn store_refusal(err: &store::StoreError) -> Refusal {
    match err {
        store::StoreError::QueueFull => (503, "Service Unavailable (message store busy)".into()),
        store::StoreError::Unavailable => (
            503,
            "Service Unavailable (message store unavailable)".into(),
        ),
        other => (500, format!("Server Internal Error ({other})")),
    }
}

fn text_of(bytes: &[u8]) -> Result<String, Refusal> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        (
            415,
            "Unsupported Media Type (content is not UTF-8)".to_owned(),
        )
    })
}

/// A reason phrase from an error text (`malformed CPIM From header` -> `Malformed ...`).
fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
