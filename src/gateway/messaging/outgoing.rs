//! Messages the browser sends: `account-message` (RFC 3428 MESSAGE with RFC 3862 CPIM and
//! RFC 5438 IMDN headers), `account-disposition-notification` (an IMDN document in CPIM)
//! and `session-message` (MESSAGE inside the call's dialog), and their SIP results.

use std::time::Instant;

use im::cpim::{CpimAddress, CpimBuilder};
use im::imdn::{Imdn, ImdnStatus, IMDN_CONTENT_TYPE};
use sip::msg::Method;
use sip::request::{RequestId, RequestOutcome};
use store::{Direction, MessageState, StoreRequest, StoreResult, StoredMessage};

use super::{unix_ms, Pending, Sent};
use crate::gateway::calls::CallState;
use crate::gateway::{ClientId, Engines, Gateway, GatewayError};
use crate::sylkrtc::messaging::{Disposition, MessagingEvent};
use crate::sylkrtc::request::{AccountMessage, DispositionRequest, SessionMessage};

/// What SylkServer asks for in every message (spec section 10).
const DISPOSITION: &[&str] = &["positive-delivery", "display"];

/// CPIM `message/cpim` content type.
const CPIM: &str = "message/cpim";

impl Gateway {
    /// `account-message`: checks, then stores it `pending`; the ack, the SIP MESSAGE and the
    /// `sync` to the account's other connections follow once it is stored.
    pub(super) fn account_message(
        &mut self,
        now: Instant,
        client: ClientId,
        transaction: &str,
        message: AccountMessage,
        e: &mut Engines<'_>,
    ) -> Result<bool, GatewayError> {
        self.messaging_account(client, message.account.as_str())?;
        let max = self.messaging.config.max_content_size;
        if message.content.len() > max {
            return Err(GatewayError::MessageTooLarge(max));
        }
        if !self
            .messaging
            .send_limit
            .allow(now, message.account.as_str())
        {
            return Err(GatewayError::TooManyMessages);
        }
        let stored = StoredMessage {
            seq: 0,
            account: message.account.as_str().to_owned(),
            contact: message.uri.as_str().to_owned(),
            message_id: message.message_id.clone(),
            direction: Direction::Outgoing,
            content_type: message.content_type.clone(),
            content: message.content.clone(),
            timestamp: message.timestamp.clone(),
            state: MessageState::Pending,
            disposition: DISPOSITION.iter().map(|s| (*s).to_owned()).collect(),
            stored_at_ms: unix_ms(self.wall),
        };
        if im::cpim::media_type(&message.content_type) == "text/pgp-public-key" {
            // SylkServer answers lookup-public-key from the keys accounts publish.
            let request = StoreRequest::SetPublicKey {
                uri: message.account.as_str().to_owned(),
                key: message.content.clone(),
            };
            self.submit_quiet(e.store, "public key", request);
        }
        self.submit(
            e.store,
            StoreRequest::AddMessage(stored),
            Pending::Outgoing {
                client,
                transaction: transaction.to_owned(),
                message: Box::new(message),
            },
        )
        .map_err(GatewayError::Store)?;
        Ok(true)
    }

    /// The `account-message` is stored (or not).
    pub(super) fn outgoing_stored(
        &mut self,
        now: Instant,
        client: ClientId,
        transaction: &str,
        message: AccountMessage,
        result: Result<StoreResult, store::StoreError>,
        e: &mut Engines<'_>,
    ) {
        if let Err(err) = result {
            self.reply(client, transaction, Err(GatewayError::Store(err)));
            return;
        }
        self.reply(client, transaction, Ok(()));
        let aor = message.account.as_str().to_owned();
        // The other devices of the account learn of it (spec 6.3: the serialised request).
        let content = serde_json::json!({
            "sylkrtc": "account-message",
            "transaction": transaction,
            "account": aor,
            "uri": message.uri.as_str(),
            "message_id": message.message_id,
            "content": message.content,
            "content_type": message.content_type,
            "timestamp": message.timestamp,
        });
        self.send_to_account(
            &aor,
            Some(client),
            MessagingEvent::Sync {
                account: aor.clone(),
                kind: "message",
                action: "add",
                content,
            },
        );
        let Some(identity) = self
            .find_account(client, &aor)
            .ok()
            .and_then(|id| self.accounts.get(id.0))
            .map(|a| a.identity())
        else {
            // The connection let go of the account meanwhile: the message stays stored.
            self.message_failed(
                e,
                &aor,
                &message.message_id,
                &message.timestamp,
                480,
                "Account removed",
            );
            return;
        };
        let from = CpimAddress {
            display_name: identity.display_name.clone(),
            uri: format!("sip:{aor}"),
        };
        let to = CpimAddress {
            display_name: None,
            uri: format!("sip:{}", message.uri),
        };
        let body = CpimBuilder::new(
            from,
            to,
            &message.content_type,
            message.content.clone().into_bytes(),
        )
        .datetime(&message.timestamp)
        .message_id(&message.message_id)
        .disposition_notification(DISPOSITION)
        .build();
        match e.sip.send_request(
            now,
            &identity,
            Method::Message,
            message.uri.as_str(),
            Vec::new(),
            Some((CPIM.to_owned(), body)),
        ) {
            Ok(request) => {
                self.messaging.sent.insert(
                    request,
                    Sent::Account {
                        account: aor,
                        message_id: message.message_id,
                        timestamp: message.timestamp,
                        unwrapped: Some(Box::new(super::Unwrapped {
                            to: message.uri.as_str().to_owned(),
                            content_type: message.content_type,
                            content: message.content,
                        })),
                    },
                );
            }
            Err(err) => {
                log::info!("messaging: MESSAGE to {} not sent: {err}", message.uri);
                let (id, ts) = (message.message_id, message.timestamp);
                self.message_failed(e, &aor, &id, &ts, 503, "Service Unavailable");
            }
        }
    }

    /// Reports a message failed before it reached SIP, and stores that.
    fn message_failed(
        &mut self,
        e: &mut Engines<'_>,
        aor: &str,
        message_id: &str,
        timestamp: &str,
        code: u16,
        reason: &str,
    ) {
        self.messaging.stats.count_out(false);
        self.disposition_to_account(
            e,
            aor,
            message_id,
            timestamp,
            MessageState::Failed,
            code,
            reason,
        );
    }

    /// Stores a new state of `aor`'s message and tells the account's connections.
    #[allow(clippy::too_many_arguments)]
    fn disposition_to_account(
        &mut self,
        e: &mut Engines<'_>,
        aor: &str,
        message_id: &str,
        timestamp: &str,
        state: MessageState,
        code: u16,
        reason: &str,
    ) {
        self.submit_quiet(
            e.store,
            "message state",
            StoreRequest::SetState {
                account: aor.to_owned(),
                message_id: message_id.to_owned(),
                state,
            },
        );
        self.send_to_account(
            aor,
            None,
            MessagingEvent::Disposition {
                account: aor.to_owned(),
                disposition: Disposition {
                    message_id: message_id.to_owned(),
                    message_timestamp: timestamp.to_owned(),
                    state: state.as_str(),
                    code,
                    reason: reason.to_owned(),
                },
            },
        );
    }

    /// A SIP MESSAGE we sent is finished.
    pub(in crate::gateway) fn handle_request_outcome(
        &mut self,
        now: Instant,
        request: RequestId,
        outcome: RequestOutcome,
        e: &mut Engines<'_>,
    ) {
        let Some(sent) = self.messaging.sent.remove(&request) else {
            return;
        };
        let (state, code, reason) = if outcome.is_success() {
            ("accepted", outcome.code(), outcome.phrase().to_owned())
        } else {
            ("failed", outcome.code(), outcome.phrase().to_owned())
        };
        match sent {
            Sent::Account {
                account,
                message_id,
                timestamp,
                unwrapped,
            } => {
                log::info!("messaging: MESSAGE {message_id} of {account}: {outcome}");
                // RFC 3428 section 11.4 / RFC 3261 21.4.13: a peer that takes no CPIM but
                // accepts the content's own type (a plain SIP phone) gets it unwrapped.
                if let (415, Some(plain)) = (outcome.code(), unwrapped) {
                    let accepted = outcome
                        .response()
                        .and_then(|r| r.header("Accept"))
                        .is_some_and(|accept| {
                            let want = im::cpim::media_type(&plain.content_type);
                            accept.split(',').any(|t| im::cpim::media_type(t) == want)
                        });
                    if accepted {
                        let resent = self.send_unwrapped(now, &account, &plain, e);
                        if let Some(request) = resent {
                            self.messaging.sent.insert(
                                request,
                                Sent::Account {
                                    account,
                                    message_id,
                                    timestamp,
                                    unwrapped: None,
                                },
                            );
                            return;
                        }
                    }
                }
                self.messaging.stats.count_out(outcome.is_success());
                let state = if outcome.is_success() {
                    MessageState::Accepted
                } else {
                    MessageState::Failed
                };
                self.disposition_to_account(
                    e,
                    &account,
                    &message_id,
                    &timestamp,
                    state,
                    code,
                    &reason,
                );
            }
            Sent::Session {
                client,
                session,
                message_id,
                timestamp,
            } => {
                self.messaging.stats.count_out(outcome.is_success());
                let event = MessagingEvent::SessionDisposition {
                    session,
                    disposition: Disposition {
                        message_id,
                        message_timestamp: timestamp,
                        state,
                        code,
                        reason,
                    },
                };
                self.send_event(client, &crate::sylkrtc::Event::Messaging(event));
            }
            Sent::Imdn => {
                if !outcome.is_success() {
                    log::info!("messaging: IMDN not delivered: {outcome}");
                }
            }
        }
    }

    /// Sends an `account-message`'s content as a plain MESSAGE body (no CPIM).
    fn send_unwrapped(
        &mut self,
        now: Instant,
        aor: &str,
        plain: &super::Unwrapped,
        e: &mut Engines<'_>,
    ) -> Option<RequestId> {
        let identity = self
            .accounts_by_aor
            .get(aor)?
            .iter()
            .find_map(|id| self.accounts.get(id.0))?
            .identity();
        e.sip
            .send_request(
                now,
                &identity,
                Method::Message,
                &plain.to,
                Vec::new(),
                Some((
                    plain.content_type.clone(),
                    plain.content.clone().into_bytes(),
                )),
            )
            .ok()
    }

    /// `account-disposition-notification`: an IMDN (RFC 5438) in CPIM to the sender, and
    /// the received message's state in the store.
    pub(super) fn account_disposition(
        &mut self,
        now: Instant,
        client: ClientId,
        request: DispositionRequest,
        e: &mut Engines<'_>,
    ) -> Result<bool, GatewayError> {
        let id = self.messaging_account(client, request.account.as_str())?;
        let identity = self
            .accounts
            .get(id.0)
            .map(|a| a.identity())
            .ok_or(GatewayError::Internal)?;
        let status = ImdnStatus::parse(request.state).ok_or(GatewayError::Internal)?;
        let aor = request.account.as_str();
        let imdn = Imdn {
            message_id: request.message_id.clone(),
            datetime: request.timestamp.clone(),
            recipient_uri: Some(format!("sip:{aor}")),
            original_recipient_uri: None,
            kind: status.kind(),
            status,
        };
        let now_text = store::time::format_rfc3339_ms(unix_ms(self.wall));
        let imdn_id = self.rng.token(16);
        let body = CpimBuilder::new(
            CpimAddress {
                display_name: identity.display_name.clone(),
                uri: format!("sip:{aor}"),
            },
            CpimAddress {
                display_name: None,
                uri: format!("sip:{}", request.uri),
            },
            IMDN_CONTENT_TYPE,
            imdn.to_xml().into_bytes(),
        )
        .datetime(&now_text)
        .message_id(&imdn_id)
        .build();
        let sent = e
            .sip
            .send_request(
                now,
                &identity,
                Method::Message,
                request.uri.as_str(),
                Vec::new(),
                Some((CPIM.to_owned(), body)),
            )
            .map_err(GatewayError::CannotSendMessage)?;
        self.messaging.sent.insert(sent, Sent::Imdn);
        if let Some(state) = MessageState::parse(request.state) {
            self.submit_quiet(
                e.store,
                "message state",
                StoreRequest::SetState {
                    account: aor.to_owned(),
                    message_id: request.message_id,
                    state,
                },
            );
        }
        Ok(false)
    }

    /// `session-message`: MESSAGE with CPIM inside the established call's dialog; its SIP
    /// result comes back as a session `disposition-notification`.
    pub(super) fn session_message(
        &mut self,
        now: Instant,
        client: ClientId,
        message: SessionMessage,
        e: &mut Engines<'_>,
    ) -> Result<bool, GatewayError> {
        // A session with chat carries its messages over MSRP (our extension).
        if let Some(result) = self.chat_session_message(now, client, &message, e) {
            return result;
        }
        let key = self.session_key(client, &message.session)?;
        let call = self.calls.get(key.0).ok_or(GatewayError::Internal)?;
        let (Some(sip), CallState::Accepted | CallState::Established) = (call.sip, call.state)
        else {
            return Err(GatewayError::SessionMessageState {
                session: message.session,
                state: call.state.as_str(),
            });
        };
        let max = self.messaging.config.max_content_size;
        if message.content.len() > max {
            return Err(GatewayError::MessageTooLarge(max));
        }
        let account = self
            .accounts
            .get(call.account.0)
            .ok_or(GatewayError::Internal)?;
        let from = CpimAddress {
            display_name: account.display_name.clone(),
            uri: format!("sip:{}", account.aor),
        };
        let to = CpimAddress {
            display_name: None,
            uri: format!("sip:{}", call.peer),
        };
        let body = CpimBuilder::new(
            from,
            to,
            &message.content_type,
            message.content.clone().into_bytes(),
        )
        .datetime(&message.timestamp)
        .message_id(&message.message_id)
        .disposition_notification(DISPOSITION)
        .build();
        let request = e
            .sip
            .send_in_dialog(
                now,
                sip,
                Method::Message,
                Vec::new(),
                Some((CPIM.to_owned(), body)),
            )
            .map_err(GatewayError::CannotSendMessage)?;
        self.messaging.sent.insert(
            request,
            Sent::Session {
                client,
                session: message.session,
                message_id: message.message_id,
                timestamp: message.timestamp,
            },
        );
        Ok(false)
    }
}
