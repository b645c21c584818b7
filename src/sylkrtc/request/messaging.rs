//! Messaging requests (spec section 6.2: `account-message` ... `account-remove-conversation`,
//! `session-message`, `lookup-public-key`), validated as SylkServer HEAD's models do.

use super::{Fields, RequestError};
use crate::sylkrtc::aor::Aor;
use crate::sylkrtc::fields::invalid;

/// `account-message`: a message to `uri` (SIP MESSAGE with CPIM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountMessage {
    /// The sending account.
    pub account: Aor,
    /// The recipient.
    pub uri: Aor,
    /// The client's id for it (the CPIM `imdn.Message-ID`).
    pub message_id: String,
    /// The content, any type (text, HTML, `application/sylk-*`, PGP armour).
    pub content: String,
    /// Its MIME type.
    pub content_type: String,
    /// When the client sent it (RFC 3339; the CPIM `DateTime`).
    pub timestamp: String,
}

/// `account-disposition-notification`: an IMDN for a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispositionRequest {
    /// The account that received the message.
    pub account: Aor,
    /// Its sender, who gets the IMDN.
    pub uri: Aor,
    /// The message's id.
    pub message_id: String,
    /// `delivered`, `failed`, `displayed`, `forbidden` or `error`.
    pub state: &'static str,
    /// The message's timestamp (the IMDN `datetime`).
    pub timestamp: String,
}

/// `account-sync-conversations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConversations {
    /// The account.
    pub account: Aor,
    /// Replay after this message.
    pub message_id: Option<String>,
    /// Replay what arrived at or after this instant (RFC 3339).
    pub since: Option<String>,
    /// Most messages (default 5000).
    pub limit: u32,
}

/// `session-message`: a message inside a call's dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMessage {
    /// The session.
    pub session: String,
    /// The client's id.
    pub message_id: String,
    /// The content.
    pub content: String,
    /// Its MIME type.
    pub content_type: String,
    /// When the client sent it.
    pub timestamp: String,
}

/// SylkServer's default `limit` of `account-sync-conversations`.
pub const DEFAULT_SYNC_LIMIT: u32 = 5000;

fn timestamp(f: &Fields<'_>) -> Result<String, RequestError> {
    let t = f.str("timestamp")?;
    if !im::cpim::is_rfc3339(t) {
        return Err(invalid(
            "timestamp",
            &serde_json::Value::from(t),
            "an RFC 3339 date-time",
        ));
    }
    Ok(t.to_owned())
}

fn content_type(f: &Fields<'_>) -> Result<String, RequestError> {
    let t = f.str("content_type")?;
    let media = im::cpim::media_type(t);
    let valid = media
        .split_once('/')
        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !t.contains(['\r', '\n']));
    if !valid {
        return Err(invalid(
            "content_type",
            &serde_json::Value::from(t),
            "a MIME type",
        ));
    }
    Ok(t.to_owned())
}

pub(super) fn account_message(f: &Fields<'_>) -> Result<AccountMessage, RequestError> {
    Ok(AccountMessage {
        account: f.aor("account")?,
        uri: f.aor("uri")?,
        message_id: f.non_empty_str("message_id")?.to_owned(),
        content: f.str("content")?.to_owned(),
        content_type: content_type(f)?,
        timestamp: timestamp(f)?,
    })
}

pub(super) fn disposition(f: &Fields<'_>) -> Result<DispositionRequest, RequestError> {
    Ok(DispositionRequest {
        account: f.aor("account")?,
        uri: f.aor("uri")?,
        message_id: f.non_empty_str("message_id")?.to_owned(),
        state: f.one_of(
            "state",
            &["delivered", "failed", "displayed", "forbidden", "error"],
        )?,
        timestamp: timestamp(f)?,
    })
}

pub(super) fn sync_conversations(f: &Fields<'_>) -> Result<SyncConversations, RequestError> {
    let since = f.opt_str("since")?.map(str::to_owned);
    if let Some(s) = &since {
        if !im::cpim::is_rfc3339(s) {
            return Err(invalid(
                "since",
                &serde_json::Value::from(s.as_str()),
                "an RFC 3339 date-time",
            ));
        }
    }
    let limit = match f.opt_u64("limit")? {
        None => DEFAULT_SYNC_LIMIT,
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| (1..=DEFAULT_SYNC_LIMIT).contains(n))
            .ok_or_else(|| invalid("limit", &serde_json::Value::from(n), "1 to 5000"))?,
    };
    Ok(SyncConversations {
        account: f.aor("account")?,
        message_id: f.opt_str("message_id")?.map(str::to_owned),
        since,
        limit,
    })
}

pub(super) fn session_message(f: &Fields<'_>) -> Result<SessionMessage, RequestError> {
    Ok(SessionMessage {
        session: f.str("session")?.to_owned(),
        message_id: f.non_empty_str("message_id")?.to_owned(),
        content: f.str("content")?.to_owned(),
        content_type: content_type(f)?,
        timestamp: timestamp(f)?,
    })
}
