//! A SIP account added by a client connection.

use super::ClientId;
use crate::sylkrtc::request::AccountAdd;
use crate::sylkrtc::Aor;
use sip::auth::Ha1;
use sip::registration::RegId;

/// Identifies an account instance (one per connection that added it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountId(pub(super) usize);

/// One account as added by one connection.
#[derive(Debug)]
pub struct Account {
    /// The connection that owns it.
    pub client: ClientId,
    /// The address-of-record.
    pub aor: Aor,
    /// Digest HA1 (Debug redacts it).
    pub ha1: Ha1,
    /// Display name for From headers.
    pub display_name: Option<String>,
    /// User-Agent for this account's requests.
    pub user_agent: Option<String>,
    /// Prefixes of incoming headers to pass to the client.
    pub incoming_header_prefixes: Vec<String>,
    /// The SIP registration, between `account-register` and `account-unregister`.
    pub registration: Option<RegId>,
}

impl Account {
    /// A new account from an `account-add` request.
    pub fn new(client: ClientId, add: AccountAdd) -> Account {
        Account {
            client,
            aor: add.account,
            ha1: add.ha1,
            display_name: add.display_name,
            user_agent: add.user_agent,
            incoming_header_prefixes: add.incoming_header_prefixes,
            registration: None,
        }
    }
}
