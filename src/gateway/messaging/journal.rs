//! Requests answered from the store: `account-sync-conversations`, read markers, removals
//! and `lookup-public-key`. Read markers and removals are also written to the account's
//! journal as SylkServer's control messages (`application/sylk-conversation-read`,
//! `application/sylk-message-remove`, `application/sylk-conversation-remove`, JSON content),
//! so a device that syncs later learns of them, and forked as `sync` events to the
//! account's other connections at once.

use serde_json::json;
use store::{Direction, MessageState, StoreError, StoreRequest, StoreResult, StoredMessage};

use super::{unix_ms, Pending};
use crate::gateway::{ClientId, Engines, Gateway, GatewayError};
use crate::sylkrtc::messaging::{MessagingEvent, SyncedMessage};
use crate::sylkrtc::request::SyncConversations;
use crate::sylkrtc::{Aor, Event};

impl Gateway {
    /// `account-sync-conversations`: the journal after `message_id` / since `since`.
    pub(super) fn sync_conversations(
        &mut self,
        client: ClientId,
        transaction: &str,
        request: SyncConversations,
        e: &mut Engines<'_>,
    ) -> Result<bool, GatewayError> {
        let aor = request.account.as_str().to_owned();
        self.messaging_account(client, &aor)?;
        let since_ms = request
            .since
            .as_deref()
            .and_then(store::time::parse_rfc3339_ms);
        self.submit(
            e.store,
            StoreRequest::Sync {
                account: aor.clone(),
                after_message_id: request.message_id,
                since_ms,
                limit: request.limit,
            },
            Pending::Sync {
                client,
                transaction: transaction.to_owned(),
                account: aor,
            },
        )
        .map_err(GatewayError::Store)?;
        Ok(true)
    }

    /// `account-mark-conversation-read`.
    pub(super) fn mark_conversation_read(
        &mut self,
        client: ClientId,
        transaction: &str,
        account: &Aor,
        contact: &Aor,
        e: &mut Engines<'_>,
    ) -> Result<bool, GatewayError> {
        self.messaging_account(client, account.as_str())?;
        self.submit(
            e.store,
            StoreRequest::MarkConversationRead {
                account: account.as_str().to_owned(),
                contact: contact.as_str().to_owned(),
            },
            Pending::MarkRead {
                client,
                transaction: transaction.to_owned(),
                account: account.as_str().to_owned(),
                contact: contact.as_str().to_owned(),
            },
        )
        .map_err(GatewayError::Store)?;
        Ok(true)
    }

    /// `account-remove-message`.
    pub(super) fn remove_message(
        &mut self,
        client: ClientId,
        transaction: &str,
        account: &Aor,
        contact: &Aor,
        message_id: String,
        e: &mut Engines<'_>,
    ) -> Result<bool, GatewayError> {
        self.messaging_account(client, account.as_str())?;
        self.submit(
            e.store,
            StoreRequest::RemoveMessage {
                account: account.as_str().to_owned(),
                contact: contact.as_str().to_owned(),
                message_id: message_id.clone(),
            },
            Pending::RemoveMessage {
                client,
                transaction: transaction.to_owned(),
                account: account.as_str().to_owned(),
                contact: contact.as_str().to_owned(),
                message_id,
            },
        )
        .map_err(GatewayError::Store)?;
        Ok(true)
    }

    /// `account-remove-conversation`.
    pub(super) fn remove_conversation(
        &mut self,
        client: ClientId,
        transaction: &str,
        account: &Aor,
        contact: &Aor,
        e: &mut Engines<'_>,
    ) -> Result<bool, GatewayError> {
        self.messaging_account(client, account.as_str())?;
        self.submit(
            e.store,
            StoreRequest::RemoveConversation {
                account: account.as_str().to_owned(),
                contact: contact.as_str().to_owned(),
            },
            Pending::RemoveConversation {
                client,
                transaction: transaction.to_owned(),
                account: account.as_str().to_owned(),
                contact: contact.as_str().to_owned(),
            },
        )
        .map_err(GatewayError::Store)?;
        Ok(true)
    }

    /// `lookup-public-key`: the key `uri` published in a `text/pgp-public-key` message.
    pub(super) fn lookup_public_key(
        &mut self,
        client: ClientId,
        transaction: &str,
        uri: &str,
        e: &mut Engines<'_>,
    ) -> Result<bool, GatewayError> {
        self.submit(
            e.store,
            StoreRequest::LookupPublicKey {
                uri: uri.to_owned(),
            },
            Pending::LookupKey {
                client,
                transaction: transaction.to_owned(),
                uri: uri.to_owned(),
            },
        )
        .map_err(GatewayError::Store)?;
        Ok(true)
    }

    /// Writes a control message to `account`'s journal (for devices that sync later).
    fn journal_entry(
        &mut self,
        e: &mut Engines<'_>,
        account: &str,
        contact: &str,
        content_type: &str,
        content: serde_json::Value,
    ) {
        let entry = StoredMessage {
            seq: 0,
            account: account.to_owned(),
            contact: contact.to_owned(),
            message_id: self.rng.token(20),
            direction: Direction::Outgoing,
            content_type: content_type.to_owned(),
            content: content.to_string(),
            timestamp: store::time::format_rfc3339_ms(unix_ms(self.wall)),
            state: MessageState::Accepted,
            disposition: Vec::new(),
            stored_at_ms: unix_ms(self.wall),
        };
        self.submit_quiet(e.store, "journal entry", StoreRequest::AddMessage(entry));
    }

    /// A journal request's result: the reply and the `sync` to the other connections.
    pub(super) fn journal_result(
        &mut self,
        pending: Pending,
        result: Result<StoreResult, StoreError>,
        e: &mut Engines<'_>,
    ) {
        match (pending, result) {
            (
                Pending::Sync {
                    client,
                    transaction,
                    account,
                },
                Ok(StoreResult::Messages(list)),
            ) => {
                let messages = list
                    .into_iter()
                    .map(|m| SyncedMessage {
                        contact: m.contact,
                        timestamp: m.timestamp,
                        disposition: m.disposition,
                        message_id: m.message_id,
                        content_type: m.content_type,
                        content: m.content,
                        direction: m.direction.as_str(),
                        state: m.state.as_str(),
                    })
                    .collect();
                self.reply(client, &transaction, Ok(()));
                let event = MessagingEvent::SyncConversations { account, messages };
                self.send_event(client, &Event::Messaging(event));
            }
            (
                Pending::MarkRead {
                    client,
                    transaction,
                    account,
                    contact,
                },
                Ok(_),
            ) => {
                self.reply(client, &transaction, Ok(()));
                let content = json!({"contact": contact});
                self.journal_entry(
                    e,
                    &account,
                    &contact,
                    "application/sylk-conversation-read",
                    content.clone(),
                );
                self.fork_sync(client, &account, "conversation", "read", content);
            }
            (
                Pending::RemoveMessage {
                    client,
                    transaction,
                    account,
                    contact,
                    message_id,
                },
                Ok(StoreResult::Changed(n)),
            ) => {
                if n == 0 {
                    let err = GatewayError::UnknownMessage(message_id);
                    self.reply(client, &transaction, Err(err));
                    return;
                }
                self.reply(client, &transaction, Ok(()));
                let content = json!({"message_id": message_id, "contact": contact});
                self.journal_entry(
                    e,
                    &account,
                    &contact,
                    "application/sylk-message-remove",
                    content.clone(),
                );
                self.fork_sync(client, &account, "message", "remove", content);
            }
            (
                Pending::RemoveConversation {
                    client,
                    transaction,
                    account,
                    contact,
                },
                Ok(StoreResult::Changed(n)),
            ) => {
                if n == 0 {
                    self.reply(
                        client,
                        &transaction,
                        Err(GatewayError::UnknownContact(contact)),
                    );
                    return;
                }
                self.reply(client, &transaction, Ok(()));
                let content = json!({"contact": contact});
                self.journal_entry(
                    e,
                    &account,
                    &contact,
                    "application/sylk-conversation-remove",
                    content.clone(),
                );
                self.fork_sync(client, &account, "conversation", "remove", content);
            }
            (
                Pending::LookupKey {
                    client,
                    transaction,
                    uri,
                },
                Ok(StoreResult::PublicKey(public_key)),
            ) => {
                // SylkServer sends the event before the ack (spec section 12 item 9).
                let event = MessagingEvent::PublicKey { uri, public_key };
                self.send_event(client, &Event::Messaging(event));
                self.reply(client, &transaction, Ok(()));
            }
            (pending, result) => {
                let (client, transaction) = match pending {
                    Pending::Sync {
                        client,
                        transaction,
                        ..
                    }
                    | Pending::MarkRead {
                        client,
                        transaction,
                        ..
                    }
                    | Pending::RemoveMessage {
                        client,
                        transaction,
                        ..
                    }
                    | Pending::RemoveConversation {
                        client,
                        transaction,
                        ..
                    }
                    | Pending::LookupKey {
                        client,
                        transaction,
                        ..
                    } => (client, transaction),
                    other => {
                        log::warn!("messaging: unexpected store result for {other:?}");
                        return;
                    }
                };
                let err = match result {
                    Err(err) => GatewayError::Store(err),
                    Ok(other) => {
                        log::warn!("messaging: unexpected store result {other:?}");
                        GatewayError::Internal
                    }
                };
                self.reply(client, &transaction, Err(err));
            }
        }
    }

    fn fork_sync(
        &mut self,
        client: ClientId,
        account: &str,
        kind: &'static str,
        action: &'static str,
        content: serde_json::Value,
    ) {
        self.send_to_account(
            account,
            Some(client),
            MessagingEvent::Sync {
                account: account.to_owned(),
                kind,
                action,
                content,
            },
        );
    }
}
