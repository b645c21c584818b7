//! SIP accounts added by client connections, and their registrations.

use std::time::Instant;

use engine::Key;
use sip::auth::Ha1;
use sip::registration::{RegId, RegistrationStatus};
use sip::stack::{AccountIdentity, SipEvent};

use super::{ClientId, Engines, Gateway, GatewayError};
use crate::sylkrtc::event::RegistrationState;
use crate::sylkrtc::request::AccountAdd;
use crate::sylkrtc::{Aor, Event};

/// Identifies an account instance (one per connection that added it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountId(pub(super) Key);

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
    /// The client takes incoming chat sessions (`account-add` with `chat: true`).
    pub chat: bool,
    /// The SIP registration, between `account-register` and `account-unregister`.
    pub registration: Option<RegId>,
    /// Push parameters for the REGISTER Contact (`account-devicetoken`, `push.rs`).
    pub push: Option<Vec<(String, String)>>,
    /// The account registered successfully on this connection at least once: messaging
    /// is allowed (SylkServer's `auth_state`; before it, `Account not authenticated`).
    pub authenticated: bool,
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
            chat: add.chat,
            registration: None,
            push: None,
            authenticated: false,
        }
    }

    /// What the SIP stack needs to act for this account.
    pub fn identity(&self) -> AccountIdentity {
        AccountIdentity {
            user: self.aor.user().to_owned(),
            domain: self.aor.domain().to_owned(),
            display_name: self.display_name.clone(),
            user_agent: self.user_agent.clone(),
            ha1: self.ha1.clone(),
        }
    }
}

impl Gateway {
    /// `account-add`.
    pub(super) fn add_account(
        &mut self,
        client: ClientId,
        add: AccountAdd,
    ) -> Result<(), GatewayError> {
        let aor = add.account.as_str().to_owned();
        let c = self.clients.get(client.0).ok_or(GatewayError::Internal)?;
        if c.accounts.iter().any(|id| {
            self.accounts
                .get(id.0)
                .is_some_and(|a| a.aor.as_str() == aor)
        }) {
            return Err(GatewayError::AccountExists(aor));
        }
        let host = add
            .account
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if !self.config.sylkrtc.domain_allowed(host) {
            return Err(GatewayError::DomainNotAllowed(host.to_owned()));
        }
        let max = self.config.sylkrtc.max_accounts_per_connection;
        if c.accounts.len() >= max {
            return Err(GatewayError::TooManyAccounts(max));
        }
        let log_id = c.log_id;
        let id = AccountId(self.accounts.insert(Account::new(client, add)));
        self.accounts_by_aor
            .entry(aor.clone())
            .or_default()
            .push(id);
        if let Some(c) = self.clients.get_mut(client.0) {
            c.accounts.push(id);
        }
        log::info!("conn={log_id} account {aor} added");
        Ok(())
    }

    /// The account `aor` of `client`.
    pub(super) fn find_account(
        &self,
        client: ClientId,
        aor: &str,
    ) -> Result<AccountId, GatewayError> {
        self.clients
            .get(client.0)
            .and_then(|c| {
                c.accounts.iter().copied().find(|id| {
                    self.accounts
                        .get(id.0)
                        .is_some_and(|a| a.aor.as_str() == aor)
                })
            })
            .ok_or_else(|| GatewayError::UnknownAccount(aor.to_owned()))
    }

    /// `account-register`: REGISTER now (again after a failure); events report the outcome.
    pub(super) fn register_account(&mut self, now: Instant, id: AccountId, e: &mut Engines<'_>) {
        let Some(account) = self.accounts.get(id.0) else {
            return;
        };
        let push = account.push.clone().unwrap_or_default();
        if let Some(reg) = account.registration {
            e.sip.set_contact_params(reg, push);
            e.sip.start(now, reg);
            return;
        }
        // Own the registration before it can emit its first event.
        let reg = e.sip.register_deferred(account.identity());
        e.sip.set_contact_params(reg, push);
        self.registration_owner.insert(reg, id);
        if let Some(a) = self.accounts.get_mut(id.0) {
            a.registration = Some(reg);
        }
        e.sip.start(now, reg);
    }

    /// `account-unregister` (and removal/close): REGISTER with Expires 0; SylkServer sends no
    /// event for it, so the registration's later events are no longer routed.
    pub(super) fn unregister_account(&mut self, now: Instant, id: AccountId, e: &mut Engines<'_>) {
        // SylkServer drops the stored push token with the registration.
        if let Some(a) = self.accounts.get_mut(id.0) {
            a.push = None;
        }
        // Its presence subscriptions and publication go with the registration.
        self.contacts_member_gone(id);
        let Some(reg) = self
            .accounts
            .get_mut(id.0)
            .and_then(|a| a.registration.take())
        else {
            return;
        };
        self.registration_owner.remove(&reg);
        e.sip.unregister(now, reg);
    }

    /// `account-remove`: the account leaves its connection.
    pub(super) fn detach_account(
        &mut self,
        now: Instant,
        client: ClientId,
        id: AccountId,
        e: &mut Engines<'_>,
    ) {
        if let Some(c) = self.clients.get_mut(client.0) {
            c.accounts.retain(|a| *a != id);
            log::info!("conn={} account removed", c.log_id);
        }
        self.remove_account(now, id, e);
    }

    pub(super) fn remove_account(&mut self, now: Instant, id: AccountId, e: &mut Engines<'_>) {
        if !self.accounts.contains(id.0) {
            return;
        }
        self.unregister_account(now, id, e);
        let Some(account) = self.accounts.remove(id.0) else {
            return;
        };
        if let Some(list) = self.accounts_by_aor.get_mut(account.aor.as_str()) {
            list.retain(|a| *a != id);
            if list.is_empty() {
                self.accounts_by_aor.remove(account.aor.as_str());
            }
        }
    }

    /// Registration events of the SIP stack, to the account's connection.
    pub(super) fn handle_sip_event(&mut self, event: SipEvent) {
        match event {
            SipEvent::Registration { reg, status } => {
                let Some(&account_id) = self.registration_owner.get(&reg) else {
                    return;
                };
                if status == RegistrationStatus::Registered {
                    if let Some(a) = self.accounts.get_mut(account_id.0) {
                        a.authenticated = true;
                    }
                    // Presence on the user's behalf goes live (issue 13).
                    self.contacts_member_registered(account_id);
                }
                let Some(account) = self.accounts.get(account_id.0) else {
                    return;
                };
                // The sylkRTC reason is rendered here, at the edge.
                let (state, reason) = match status {
                    RegistrationStatus::Registering => (RegistrationState::Registering, None),
                    RegistrationStatus::Registered => (RegistrationState::Registered, None),
                    RegistrationStatus::Failed(why) => {
                        (RegistrationState::Failed, Some(why.to_string()))
                    }
                };
                let event = Event::Registration {
                    account: account.aor.as_str().to_owned(),
                    state,
                    reason,
                };
                let client = account.client;
                self.send_event(client, &event);
            }
            SipEvent::RegistrationFinished { reg } => {
                if let Some(account_id) = self.registration_owner.remove(&reg) {
                    if let Some(a) = self.accounts.get_mut(account_id.0) {
                        a.registration = None;
                    }
                }
            }
            // Routed to the calls and to messaging by `handle`.
            SipEvent::Call { .. }
            | SipEvent::Request { .. }
            | SipEvent::IncomingRequest { .. }
            | SipEvent::Subscription { .. }
            | SipEvent::SubscriptionFinished { .. }
            | SipEvent::Publication { .. }
            | SipEvent::PublicationFinished { .. } => {}
        }
    }
}
