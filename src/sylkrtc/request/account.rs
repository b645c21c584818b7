//! `account-*` requests.

use super::{Fields, RequestError};
use crate::sylkrtc::aor::Aor;
use crate::sylkrtc::fields::invalid;
use sip::auth::Ha1;

/// `account-add`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountAdd {
    /// The account's AOR.
    pub account: Aor,
    /// The digest HA1 (sylkrtc.js computes `md5(user:realm:password)`, spec section 8.4).
    pub ha1: Ha1,
    /// Display name for From headers, quotes and blanks stripped.
    pub display_name: Option<String>,
    /// User-Agent for this account's SIP requests.
    pub user_agent: Option<String>,
    /// Header-name prefixes of incoming INVITE headers to pass to the client.
    pub incoming_header_prefixes: Vec<String>,
    /// `chat: true` (our extension): the client takes incoming sessions with chat (MSRP);
    /// without it such INVITEs get their `m=message` line refused (or 488 when it is all
    /// they offer), so clients that never heard of chat see nothing new.
    pub chat: bool,
}

pub(super) fn account_add(f: &Fields<'_>) -> Result<AccountAdd, RequestError> {
    let account = f.aor("account")?;
    let password = f.str("password")?;
    let ha1 = Ha1::from_hex(password).map_err(|_| RequestError::InvalidField {
        field: "password",
        value: "<redacted>".to_owned(),
        expected: "the HA1 as 32 (MD5) or 64 (SHA-256) hex digits",
    })?;
    let display_name = f
        .opt_str("display_name")?
        .map(|d| d.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace()))
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let user_agent = f.opt_str("user_agent")?.map(str::to_owned);
    let mut incoming_header_prefixes = f
        .opt_list("incoming_header_prefixes", |v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| invalid("incoming_header_prefixes", v, "a list of strings"))
        })?
        .unwrap_or_default();
    // Declared unique in SylkServer's model: duplicates are dropped silently (spec 4.3).
    let mut seen = std::collections::HashSet::new();
    incoming_header_prefixes.retain(|p| seen.insert(p.clone()));
    Ok(AccountAdd {
        account,
        ha1,
        display_name,
        user_agent,
        incoming_header_prefixes,
        chat: f.opt_bool("chat")?.unwrap_or(false),
    })
}

/// `account-devicetoken` (SylkServer HEAD's fields; sylkRTC-2 of 2016-2020 sent
/// `old_token`/`new_token`, read as `token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceToken {
    /// The account.
    pub account: Aor,
    /// The push token; `None` (or empty) removes the stored one.
    pub token: Option<String>,
    /// `ios`, `android`, `firebase`, ...
    pub platform: Option<String>,
    /// The device's id.
    pub device: Option<String>,
    /// Whether pushes should be silent.
    pub silent: bool,
    /// The application's id (e.g. its bundle id).
    pub app: Option<String>,
}

pub(super) fn device_token(f: &Fields<'_>) -> Result<DeviceToken, RequestError> {
    let account = f.aor("account")?;
    let owned = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_owned);
    let token = owned(f.opt_str("token")?).or(owned(f.opt_str("new_token")?));
    Ok(DeviceToken {
        account,
        token,
        platform: owned(f.opt_str("platform")?),
        device: owned(f.opt_str("device")?),
        silent: f.opt_bool("silent")?.unwrap_or(false),
        app: owned(f.opt_str("app")?),
    })
}
