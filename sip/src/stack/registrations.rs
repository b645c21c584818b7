//! The books of registrations: creating and stopping them, carrying out what each one asks
//! ([`RegAction`]), and the REGISTER transaction of each.

use std::time::Instant;

use super::{AccountIdentity, RegEntry, SendError, SipEvent, SipStack};
use crate::locate::Target;
use crate::registration::{RegAction, RegId, Registration, RegistrationConfig};
use crate::transport::FlowId;
use crate::txn::{TxnId, MAGIC_COOKIE};

impl SipStack {
    /// Starts registering an account; `Registration` events follow.
    pub fn register(&mut self, now: Instant, account: AccountIdentity) -> RegId {
        let reg = self.register_deferred(account);
        self.start(now, reg);
        reg
    }

    /// Creates a registration without sending anything, so the caller can record the id
    /// before the first event; [`start`](Self::start) it next.
    pub fn register_deferred(&mut self, account: AccountIdentity) -> RegId {
        let contact_user = format!("sylk-{}", self.random_token(12));
        let call_id = format!("{}@sylk-gateway", self.random_token(20));
        let from_tag = self.random_token(10);
        let config = RegistrationConfig {
            user: account.user,
            domain: account.domain,
            display_name: account.display_name,
            user_agent: account
                .user_agent
                .unwrap_or_else(|| self.config.user_agent.clone()),
            expires: self.config.register_expires,
            contact_user: contact_user.clone(),
            call_id,
            from_tag,
        };
        let key = self.registrations.insert(RegEntry {
            reg: Registration::new(config, account.ha1),
            lookup: None,
            txn: None,
            flow: None,
        });
        let id = RegId(key);
        self.by_contact_user.insert(contact_user, id);
        id
    }

    /// Starts a registration, or re-registers after a failure (a second `account-register`).
    pub fn start(&mut self, now: Instant, reg: RegId) {
        if let Some(e) = self.registrations.get_mut(reg.0) {
            e.reg.start(now);
            self.dirty_regs.push(reg);
            self.drive(now);
        }
    }

    /// URI parameters of the registration's Contact from its next REGISTER on (RFC 8599
    /// push parameters: `pn-provider`, `pn-prid`, `pn-param`; empty removes them).
    pub fn set_contact_params(&mut self, reg: RegId, params: Vec<(String, String)>) {
        if let Some(e) = self.registrations.get_mut(reg.0) {
            e.reg.set_contact_params(params);
        }
    }

    /// Removes the binding (REGISTER with expiry 0) and then forgets the registration;
    /// `RegistrationFinished` follows.
    pub fn unregister(&mut self, now: Instant, reg: RegId) {
        if let Some(e) = self.registrations.get_mut(reg.0) {
            e.reg.stop(now);
            self.dirty_regs.push(reg);
            self.drive(now);
        }
    }

    /// Executes a registration's requested actions, then re-arms its timer.
    pub(super) fn run_registration(&mut self, now: Instant, reg: RegId) {
        loop {
            let Some(e) = self.registrations.get_mut(reg.0) else {
                return;
            };
            let Some(action) = e.reg.poll_action() else {
                break;
            };
            match action {
                RegAction::Locate(parts) => {
                    let lookup = self.locator.locate(now, &parts);
                    if let Some(e) = self.registrations.get_mut(reg.0) {
                        e.lookup = Some(lookup);
                    }
                    self.reg_lookups.insert(lookup, reg);
                }
                RegAction::Send { target, expires } => {
                    self.send_register(now, reg, target, expires)
                }
                RegAction::Report(status) => self
                    .events
                    .push_back(SipEvent::Registration { reg, status }),
                RegAction::Finished => {
                    let e = self.registrations.remove(reg.0);
                    if let Some(lookup) = e.lookup {
                        self.locator.cancel(lookup);
                        self.reg_lookups.remove(&lookup);
                    }
                    self.reg_deadlines.cancel(reg);
                    self.by_contact_user.remove(e.reg.contact_user());
                    self.events
                        .push_back(SipEvent::RegistrationFinished { reg });
                    return;
                }
            }
        }
        if let Some(e) = self.registrations.get(reg.0) {
            self.reg_deadlines.set(reg, e.reg.poll_timeout());
        }
    }

    /// Sends a REGISTER to `target` (fresh branch and cnonce, our Contact for its
    /// transport) in a new transaction; a failure to send counts as a transport error.
    fn send_register(&mut self, now: Instant, reg: RegId, target: Target, expires: u32) {
        let kind = target.transport;
        let branch = format!("{MAGIC_COOKIE}{}", self.random_token(16));
        let cnonce = self.random_token(16);
        let via = self.transport.via(kind, &branch);
        let (host, port) = self.transport.sent_by(kind);
        let contact = format!(
            "{host}:{port};transport={}",
            kind.to_string().to_ascii_lowercase()
        );
        let Some(e) = self.registrations.get_mut(reg.0) else {
            return;
        };
        let (transport, txn_layer) = (&mut self.transport, &mut self.txn);
        let sent = (|| -> Result<(TxnId, FlowId), SendError> {
            let destination =
                transport.destination_for(now, kind, target.address, &target.domain)?;
            let request = e.reg.build_register(&via, &contact, expires, &cnonce)?;
            let txn = txn_layer.send_request(now, request, destination)?;
            Ok((txn, destination.flow))
        })();
        match sent {
            Ok((txn, flow)) => {
                e.txn = Some(txn);
                e.flow = Some(flow);
                self.reg_txns.insert(txn, reg);
            }
            Err(why) => {
                log::info!("sip: REGISTER to {} not sent: {why}", target.address);
                e.reg.handle_no_response(now, true);
            }
        }
        self.dirty_regs.push(reg);
    }
}
