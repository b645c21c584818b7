//! Messages over a chat's MSRP connection: `session-message` out as SEND (CPIM byte for
//! byte, anything else wrapped in CPIM), SENDs in as `session-event message` with the CPIM
//! exactly as received, transaction results and REPORTs as `disposition-notification`, and
//! so does an IMDN (RFC 5438) the peer sends inside CPIM, as over a dialog's MESSAGE.

use std::time::Instant;

use im::imdn::{Imdn, IMDN_CONTENT_TYPE};
use im::{Cpim, CpimAddress, CpimBuilder};
use msrp::{Delivery, OutgoingId};

use crate::gateway::calls::{bare_uri, CallState};
use crate::gateway::{CallKey, ClientId, Engines, Gateway, GatewayError};
use crate::sylkrtc::event::Originator;
use crate::sylkrtc::messaging::{Disposition, MessagingEvent, ReceivedMessage};
use crate::sylkrtc::request::SessionMessage;
use crate::sylkrtc::Event;

/// The CPIM media type: what MSRP carries here, and what passes through untouched.
const CPIM: &str = "message/cpim";
/// RFC 3994 composing indications.
const ISCOMPOSING: &str = "application/im-iscomposing+xml";
/// IMDN notifications the gateway asks for in the CPIM it writes (as for SIP MESSAGE).
const DISPOSITION: &[&str] = &["positive-delivery", "display"];

impl Gateway {
    /// `session-message` on a session whose chat is up: a SEND, acked once queued. `None`
    /// for a session without chat (the caller sends an in-dialog MESSAGE instead).
    pub(in crate::gateway) fn chat_session_message(
        &mut self,
        now: Instant,
        client: ClientId,
        message: &SessionMessage,
        e: &mut Engines<'_>,
    ) -> Option<Result<bool, GatewayError>> {
        let key = self.session_key(client, &message.session).ok()?;
        let chat = self.chat.sessions.get(&key)?;
        // A refused chat (port 0 in the answer) leaves the dialog's MESSAGE.
        if chat.msrp.is_none() && chat.line.as_ref().is_some_and(|l| l.port == 0) {
            return None;
        }
        Some(self.send_chat_message(now, key, message, e))
    }

    fn send_chat_message(
        &mut self,
        now: Instant,
        key: CallKey,
        message: &SessionMessage,
        e: &mut Engines<'_>,
    ) -> Result<bool, GatewayError> {
        let call = self.calls.get(key.0).ok_or(GatewayError::Internal)?;
        if !matches!(call.state, CallState::Accepted | CallState::Established) {
            return Err(GatewayError::SessionMessageState {
                session: message.session.clone(),
                state: call.state.as_str(),
            });
        }
        let id = self
            .chat
            .sessions
            .get(&key)
            .and_then(|c| c.msrp)
            .ok_or(GatewayError::ChatSend(msrp::SendError::Closed))?;
        // CPIM from the client passes byte for byte (the blueprint: "the payload will remain
        // unchanged"); anything else is wrapped as SylkServer wraps SIP MESSAGEs.
        let body = if im::cpim::media_type(&message.content_type) == CPIM {
            message.content.clone().into_bytes()
        } else {
            // An IMDN asks for no IMDN about itself (RFC 5438 section 7.1.1), nor does a
            // composing indication (RFC 3994: a status, not a message).
            let media_type = im::cpim::media_type(&message.content_type);
            let disposition: &[&str] =
                if media_type == IMDN_CONTENT_TYPE || media_type == ISCOMPOSING {
                    &[]
                } else {
                    DISPOSITION
                };
            let account = self
                .accounts
                .get(call.account.0)
                .ok_or(GatewayError::Internal)?;
            CpimBuilder::new(
                CpimAddress {
                    display_name: account.display_name.clone(),
                    uri: format!("sip:{}", account.aor),
                },
                CpimAddress {
                    display_name: None,
                    uri: format!("sip:{}", call.peer),
                },
                &message.content_type,
                message.content.clone().into_bytes(),
            )
            .datetime(&message.timestamp)
            .message_id(&message.message_id)
            .disposition_notification(disposition)
            .build()
        };
        let engine = e
            .msrp
            .get_mut(id)
            .ok_or(GatewayError::ChatSend(msrp::SendError::Closed))?;
        let sent = engine.send(now, CPIM, body, true);
        e.msrp.touched(id);
        let outgoing = sent.map_err(GatewayError::ChatSend)?;
        self.chat.stats.messages_out += 1;
        if let Some(chat) = self.chat.sessions.get_mut(&key) {
            chat.sent.insert(
                outgoing,
                (message.message_id.clone(), message.timestamp.clone()),
            );
        }
        Ok(false)
    }

    /// A complete message from the peer (checked as CPIM and UTF-8 by the engine): to the
    /// session's client with the CPIM exactly as received; an IMDN about one of the client's
    /// messages as `disposition-notification` instead.
    pub(super) fn chat_message_received(
        &mut self,
        key: CallKey,
        msrp_message_id: &str,
        content_type: &str,
        body: Vec<u8>,
    ) {
        let Some(call) = self.calls.get(key.0) else {
            return;
        };
        let (client, session) = (call.client, call.session.clone());
        let now_text = store::time::format_rfc3339_ms(super::super::messaging::unix_ms(self.wall));
        let Ok(cpim) = Cpim::parse(body) else {
            return;
        };
        if cpim.media_type() == IMDN_CONTENT_TYPE {
            if let Ok(imdn) = Imdn::parse(cpim.content()) {
                self.chat.stats.messages_in += 1;
                let disposition = Disposition {
                    message_id: imdn.message_id,
                    message_timestamp: imdn.datetime,
                    state: imdn.status.as_str(),
                    code: 200,
                    reason: "OK".to_owned(),
                };
                self.send_event(
                    client,
                    &Event::Messaging(MessagingEvent::SessionDisposition {
                        session,
                        disposition,
                    }),
                );
                return;
            }
        }
        let message = ReceivedMessage {
            sender: Originator {
                uri: bare_uri(&cpim.from().uri),
                display_name: cpim.from().display_name.clone(),
            },
            timestamp: cpim.datetime().map_or(now_text, str::to_owned),
            disposition_notification: cpim.disposition_notification(),
            message_id: match cpim.imdn_message_id() {
                Some(id) if !id.is_empty() => id.to_owned(),
                _ => msrp_message_id.to_owned(),
            },
            content_type: content_type.to_owned(),
            content: String::from_utf8(cpim.into_raw()).unwrap_or_default(),
        };
        self.chat.stats.messages_in += 1;
        self.send_event(
            client,
            &Event::Messaging(MessagingEvent::SessionMessage { session, message }),
        );
    }

    /// News about one of our messages: `disposition-notification` with the sylkRTC id.
    pub(super) fn chat_delivery(&mut self, key: CallKey, id: OutgoingId, delivery: Delivery) {
        let Some(chat) = self.chat.sessions.get_mut(&key) else {
            return;
        };
        let (state, code, reason, settled) = match delivery {
            Delivery::Accepted => ("accepted", 200, "OK".to_owned(), false),
            Delivery::Delivered => ("delivered", 200, "OK".to_owned(), true),
            Delivery::Failed { code, reason } => ("failed", code, reason, true),
        };
        let Some((message_id, timestamp)) = (if settled {
            chat.sent.remove(&id)
        } else {
            chat.sent.get(&id).cloned()
        }) else {
            return;
        };
        match state {
            "delivered" => self.chat.stats.delivered += 1,
            "failed" => self.chat.stats.delivery_failures += 1,
            _ => {}
        }
        let Some(call) = self.calls.get(key.0) else {
            return;
        };
        let (client, session) = (call.client, call.session.clone());
        self.send_event(
            client,
            &Event::Messaging(MessagingEvent::SessionDisposition {
                session,
                disposition: Disposition {
                    message_id,
                    message_timestamp: timestamp,
                    state,
                    code,
                    reason,
                },
            }),
        );
    }

    /// The chat's connection is gone (the call goes on): its unsettled messages were failed
    /// by the engine already.
    pub(super) fn fail_pending_messages(&mut self, key: CallKey) {
        if let Some(chat) = self.chat.sessions.get_mut(&key) {
            chat.sent.clear();
        }
    }
}
