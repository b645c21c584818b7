//! Messages sent by one of the account's own SIP devices (a desk phone, a softphone), as
//! SylkServer takes them: the proxy forks a copy of the device's MESSAGE to the gateway
//! marked `X-Sylk-From-Sip` (spec section 10). The copy is stored in the sender's history
//! as an outgoing, `accepted` message and shown to the sender's connections as `sync
//! {type: message, action: add}`, exactly as a message sent from another browser is; when
//! the recipient is an address of `sylkrtc.sip_domains` it is delivered to them as well,
//! since the copy may be the only one the gateway gets.
//!
//! The header is trusted as SylkServer trusts it: the proxy sets it. Only senders of
//! `sylkrtc.sip_domains` are taken (403 otherwise), so list the real domains there.

use std::time::Instant;

use im::cpim::media_type;
use im::imdn::IMDN_CONTENT_TYPE;
use sip::msg::SipRequest;
use sip::stack::IncomingRequestId;
use store::{Direction, MessageState, StoreRequest, StoreResult, StoredMessage};

use super::incoming::{store_refusal, Content, Refusal};
use super::{unix_ms, Pending};
use crate::gateway::calls::bare_uri;
use crate::gateway::{Engines, Gateway};
use crate::sylkrtc::messaging::{MessagingEvent, ReceivedMessage};
use crate::sylkrtc::Aor;

/// Content types a device's copy is not kept for (SylkServer's list): typing
/// notifications, keys and receipts are not messages of the conversation.
const NOT_KEPT: [&str; 3] = [
    "application/im-iscomposing+xml",
    "text/pgp-public-key",
    IMDN_CONTENT_TYPE,
];

/// A device's copy waiting for the store.
#[derive(Debug)]
pub(super) struct Replicated {
    /// The sender: the account whose history it joins.
    pub(super) sender: String,
    /// The recipient, when it is an address of ours (it gets the message too).
    pub(super) local_recipient: Option<String>,
    /// The message (its `sender` is the device's account).
    pub(super) message: ReceivedMessage,
    /// The recipient as the conversation names it (`user@host`).
    pub(super) contact: String,
}

impl Gateway {
    /// A MESSAGE marked `X-Sylk-From-Sip`: `Ok(None)` when the answer waits for the store.
    pub(super) fn replicated_message_in(
        &mut self,
        now: Instant,
        id: IncomingRequestId,
        request: &SipRequest,
        e: &mut Engines<'_>,
    ) -> Result<Option<u16>, Refusal> {
        let aor_of = |uri: &str| {
            Aor::parse(&bare_uri(uri))
                .ok()
                .filter(|a| self.config.sylkrtc.domain_allowed(a.host()))
        };
        let Some(sender) = aor_of(request.from().uri.as_str()) else {
            return Err((403, "Forbidden (sender not of this domain)".to_owned()));
        };
        let contact = bare_uri(request.to().uri.as_str());
        let local_recipient = aor_of(request.to().uri.as_str()).map(|a| a.as_str().to_owned());
        if !self.messaging.incoming_limit.allow(now, sender.as_str()) {
            return Err((503, "Service Unavailable (too many messages)".to_owned()));
        }
        let content = self.understand(request)?;
        let message = match content {
            Content::Message(m) if !NOT_KEPT.contains(&media_type(&m.content_type).as_str()) => m,
            // Not part of the sender's history: only the recipient's business.
            other => {
                return match local_recipient {
                    Some(aor) => self.store_incoming(id, &aor, other, e),
                    None => Ok(Some(200)),
                }
            }
        };
        let stored = StoredMessage {
            seq: 0,
            account: sender.as_str().to_owned(),
            contact: contact.clone(),
            message_id: message.message_id.clone(),
            direction: Direction::Outgoing,
            content_type: message.content_type.clone(),
            content: message.content.clone(),
            timestamp: message.timestamp.clone(),
            // The device's proxy took it; receipts move it on from here.
            state: MessageState::Accepted,
            disposition: message.disposition_notification.clone(),
            stored_at_ms: unix_ms(self.wall),
        };
        let pending = Pending::Replicated {
            id,
            copy: Box::new(Replicated {
                sender: sender.as_str().to_owned(),
                local_recipient,
                message,
                contact,
            }),
        };
        match self.submit(e.store, StoreRequest::AddMessage(stored), pending) {
            Ok(()) => Ok(None),
            Err(err) => Err(store_refusal(&err)),
        }
    }

    /// A device's copy is in the sender's history: the sender's connections learn of it,
    /// then the recipient gets it when it is ours, else the answer is 200.
    pub(super) fn replicated_stored(
        &mut self,
        now: Instant,
        id: IncomingRequestId,
        copy: Replicated,
        result: Result<StoreResult, store::StoreError>,
        e: &mut Engines<'_>,
    ) {
        let Replicated {
            sender,
            local_recipient,
            message,
            contact,
        } = copy;
        match result {
            // Not new: a retransmission or a second fork of the same copy, shown already.
            Ok(StoreResult::Added { new, .. }) => {
                if new {
                    // The shape sylkrtc.js knows from a message sent on another device
                    // (spec 6.3: the serialised `account-message`).
                    let content = serde_json::json!({
                        "sylkrtc": "account-message",
                        "transaction": "1",
                        "account": sender,
                        "uri": contact,
                        "message_id": message.message_id,
                        "content": message.content,
                        "content_type": message.content_type,
                        "timestamp": message.timestamp,
                    });
                    self.send_to_account(
                        &sender,
                        None,
                        MessagingEvent::Sync {
                            account: sender.clone(),
                            kind: "message",
                            action: "add",
                            content,
                        },
                    );
                }
                let result = match local_recipient {
                    Some(aor) => self.store_incoming(id, &aor, Content::Message(message), e),
                    None => Ok(Some(200)),
                };
                self.answer_message(now, id, result, e);
            }
            Ok(other) => {
                log::warn!("messaging: unexpected store result {other:?}");
                self.answer_message(now, id, Err((500, "Server Internal Error".into())), e);
            }
            Err(err) => {
                log::warn!("messaging: device copy for {sender} not stored: {err}");
                self.answer_message(now, id, Err(store_refusal(&err)), e);
            }
        }
    }
}
